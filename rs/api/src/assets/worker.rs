//! The durable packaging job runner: jobs live in the `jobs` table, are claimed with a lease
//! (renewed while they run), and a job whose node died is claimed again once its lease ends
//! (at once by the same node after a restart: its leases are released at start-up). A source
//! that is not media errors the asset with a code (no retries); other failures retry with
//! back-off up to `job_max_attempts`.

use std::time::{Duration, Instant};

use super::db::{self, JobRow};
use super::{JOB, UPLOAD};
use crate::secret::{self, prefix};
use crate::{now_ms, Api, Error};

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Api {
    /// The VOD worker: runs packaging jobs, and completes idle uploads of unknown length
    /// (`upload_idle_complete`), until the future is dropped (put it in the binary's
    /// `select!`). Spawns nothing; the ffmpeg children of a job die with it.
    pub async fn run_vod_worker(&self) {
        tokio::join!(self.run_jobs(), self.run_idle_completion());
    }

    async fn run_jobs(&self) {
        let vod = self.vod();
        // Scratch left by runs of this node that died (the work dir is this node's own).
        let work = &self.inner.config.vod.packager.work_dir;
        if let Ok(mut dir) = tokio::fs::read_dir(work).await {
            while let Ok(Some(e)) = dir.next_entry().await {
                if e.file_name().to_string_lossy().starts_with("job_") {
                    let p = e.path();
                    if tokio::fs::remove_dir_all(&p).await.is_err() {
                        let _ = tokio::fs::remove_file(&p).await;
                    }
                }
            }
        }
        match db::release_leases(&self.inner.db, &vod.node).await {
            Ok(n) if n > 0 => {
                tracing::info!(jobs = n, "resuming packaging jobs interrupted by a restart")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "releasing old job leases failed"),
        }
        let mut last_sweep: Option<Instant> = None;
        loop {
            if last_sweep.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                last_sweep = Some(Instant::now());
                if let Err(e) = self.sweep_expired_uploads().await {
                    tracing::warn!(error = %e, "sweeping expired uploads failed");
                }
            }
            let lease = self.inner.config.vod.job_lease;
            let claimed = db::claim_job(
                &self.inner.db,
                &vod.node,
                now_ms(),
                now_ms().saturating_add(ms(lease)),
            )
            .await;
            match claimed {
                Ok(Some(job)) => self.run_job(job).await,
                Ok(None) => {
                    tokio::select! {
                        _ = vod.jobs.notified() => {}
                        _ = tokio::time::sleep(self.inner.config.vod.worker_poll) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a packaging job failed");
                    tokio::time::sleep(self.inner.config.vod.worker_poll).await;
                }
            }
        }
    }

    /// Complete uploads of unknown length that went idle (see [`super::VodConfig`]): checked
    /// every quarter of the idle period (at most every 5 s), independently of running jobs.
    async fn run_idle_completion(&self) {
        let idle = self.inner.config.vod.upload_idle_complete;
        if idle.is_zero() {
            return std::future::pending().await;
        }
        let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.complete_idle_uploads(idle).await {
                tracing::warn!(error = %e, "completing idle uploads failed");
            }
        }
    }

    async fn complete_idle_uploads(&self, idle: Duration) -> Result<(), Error> {
        let db = &self.inner.db;
        let vod = self.vod();
        let before = now_ms().saturating_sub(ms(idle));
        for u in db::idle_uploads(db, before, now_ms()).await? {
            // A PATCH still running holds the lock (its offset is not committed yet): skip.
            let lock = vod.lock_for(&u.id);
            let Ok(_guard) = lock.try_lock_owned() else {
                continue;
            };
            let Some(u) = db::get_upload(db, &u.id).await? else {
                continue;
            };
            if u.completed_at.is_some() || u.upload_length.is_some() || u.updated_at >= before {
                continue;
            }
            // An MP4/MOV completes when its bytes are whole; a paused one must not be cut
            // short (it expires instead if its client never comes back).
            if vod::segment::starts_like_iso_bmff(&vod.staging_file(&u.id)).await {
                continue;
            }
            let job = secret::new_id(JOB)?;
            if db::complete_upload(db, &u, u.upload_offset, &job, now_ms()).await? {
                vod.jobs.notify_one();
                metrics::counter!("clutchcall_vod_uploads_completed_total").increment(1);
                tracing::info!(upload = %u.id, asset = %u.asset_id, bytes = u.upload_offset, idle_secs = idle.as_secs(), "idle upload of unknown length complete; packaging queued");
            }
        }
        Ok(())
    }

    async fn sweep_expired_uploads(&self) -> Result<(), Error> {
        for u in db::expired_uploads(&self.inner.db, now_ms()).await? {
            let _ = tokio::fs::remove_file(self.vod().staging_file(&u.id)).await;
            db::set_asset_error(
                &self.inner.db,
                &u.asset_id,
                "upload_expired",
                "the upload expired before it completed",
                now_ms(),
            )
            .await?;
            db::delete_upload(&self.inner.db, &u.id).await?;
            self.vod().forget_lock(&u.id);
            tracing::info!(upload = %u.id, asset = %u.asset_id, "upload expired");
        }
        Ok(())
    }

    async fn run_job(&self, job: JobRow) {
        let started = Instant::now();
        let lease = self.inner.config.vod.job_lease;
        let renew = async {
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = now_ms().saturating_add(ms(lease));
                match db::renew_lease(&self.inner.db, &job.id, &self.vod().node, until).await {
                    Ok(true) => {}
                    // Lost the lease (deleted asset, or another node took over): stop.
                    Ok(false) => return,
                    Err(e) => tracing::warn!(error = %e, "renewing a job lease failed"),
                }
            }
        };
        let outcome = tokio::select! {
            r = self.package_asset(&job) => Some(r),
            _ = renew => None,
        };
        let now = now_ms();
        let db = &self.inner.db;
        let result = match outcome {
            None => {
                tracing::warn!(job = %job.id, "job lease lost; abandoning the run");
                return;
            }
            Some(Ok(Some((pb, duration)))) => {
                metrics::counter!("clutchcall_vod_jobs_total", "outcome" => "ready").increment(1);
                metrics::histogram!("clutchcall_vod_packaging_seconds")
                    .record(started.elapsed().as_secs_f64());
                tracing::info!(job = %job.id, asset = %job.asset_id, playback_id = %pb, secs = started.elapsed().as_secs_f64(), "asset ready");
                db::finish_job(db, &job.id, &job.asset_id, &pb, duration, now).await
            }
            Some(Ok(None)) => db::finish_job(db, &job.id, &job.asset_id, "", 0, now).await,
            Some(Err(JobError::Permanent(code, msg))) => {
                metrics::counter!("clutchcall_vod_jobs_total", "outcome" => "errored").increment(1);
                tracing::info!(job = %job.id, asset = %job.asset_id, code, %msg, "asset errored");
                db::fail_job(db, &job.id, &job.asset_id, code, &msg, now).await
            }
            Some(Err(JobError::Transient(code, msg))) => {
                let max = i64::from(self.inner.config.vod.job_max_attempts);
                if job.attempts >= max {
                    metrics::counter!("clutchcall_vod_jobs_total", "outcome" => "errored")
                        .increment(1);
                    tracing::warn!(job = %job.id, attempts = job.attempts, %msg, "packaging failed for good");
                    db::fail_job(db, &job.id, &job.asset_id, code, &msg, now).await
                } else {
                    metrics::counter!("clutchcall_vod_jobs_total", "outcome" => "retry")
                        .increment(1);
                    tracing::warn!(job = %job.id, attempts = job.attempts, %msg, "packaging failed; will retry");
                    let backoff = 2_000i64.saturating_mul(1 << job.attempts.clamp(0, 10));
                    db::retry_job(db, &job.id, &msg, now.saturating_add(backoff), now).await
                }
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, job = %job.id, "recording a job outcome failed; the lease will expire and it runs again");
        }
    }

    /// Move the upload into the store (if still staged), package it. `Ok(None)`: the asset is
    /// gone (deleted meanwhile).
    async fn package_asset(&self, job: &JobRow) -> Result<Option<(String, i64)>, JobError> {
        let db = &self.inner.db;
        let Some(asset) = db::get_asset_any(db, &job.asset_id)
            .await
            .map_err(JobError::store)?
        else {
            return Ok(None);
        };
        let vod = self.vod();
        let source_key = format!("uploads/{}/source", asset.id);
        if let Some(u) = db::upload_of_asset(db, &asset.id)
            .await
            .map_err(JobError::store)?
        {
            let staged = vod.staging_file(&u.id);
            if u.id.starts_with(UPLOAD) && tokio::fs::metadata(&staged).await.is_ok() {
                // Keep exactly the committed bytes.
                if let Ok(f) = tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(&staged)
                    .await
                {
                    let _ = f.set_len(u64::try_from(u.upload_offset).unwrap_or(0)).await;
                }
                vod.storage
                    .put_file(&source_key, &staged)
                    .await
                    .map_err(|e| JobError::Transient("storage_error", e.to_string()))?;
            }
        }
        let cfg = &self.inner.config.vod.packager;
        let scratch = cfg.work_dir.join(format!("{}.source", job.id));
        if let Some(dir) = scratch.parent() {
            let _ = tokio::fs::create_dir_all(dir).await;
        }
        let source = vod
            .storage
            .to_local_file(&source_key, &scratch)
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    JobError::Permanent("source_missing", "the uploaded file is missing".into())
                } else {
                    JobError::Transient("storage_error", e.to_string())
                }
            })?;
        // A scratch directory per attempt: the ffmpeg of an attempt whose engine was killed
        // (SIGKILL leaves children running) must never write into the files of the next.
        let result = vod::package(
            cfg,
            &source,
            &vod.storage,
            &format!("vod/{}", asset.id),
            &format!("{}.{}", job.id, job.attempts),
        )
        .await;
        if !vod.storage.is_local() {
            let _ = tokio::fs::remove_file(&scratch).await;
        }
        let packaged = result.map_err(|e| {
            if e.permanent() {
                JobError::Permanent(e.code(), e.to_string())
            } else {
                JobError::Transient(e.code(), e.to_string())
            }
        })?;
        tracing::info!(
            asset = %asset.id,
            remuxed = packaged.remuxed,
            ffmpeg_secs = packaged.ffmpeg_secs,
            total_secs = packaged.total_secs,
            tracks = packaged.catalog.tracks.len(),
            "packaged"
        );
        let pb = match asset.playback_id {
            Some(pb) => pb,
            None => secret::new_id(prefix::VOD_PLAYBACK).map_err(JobError::store)?,
        };
        Ok(Some((
            pb,
            i64::try_from(packaged.duration_ms).unwrap_or(i64::MAX),
        )))
    }
}

enum JobError {
    Permanent(&'static str, String),
    Transient(&'static str, String),
}

impl JobError {
    fn store(e: Error) -> JobError {
        JobError::Transient("storage_error", e.to_string())
    }
}
