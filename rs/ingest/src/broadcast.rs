//! One broadcast (`stream/<org>/<lv_id>`): its tracks in the relay, group numbering, the
//! timeline across encoder reconnects, CMAF packaging of the source, and the catalog.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use media::catalog::{self, Catalog};
use media::codec::{opus_packet_samples, AudioConfig, VideoConfig};
use media::fmp4::{self, Media, Sample, TrackInit};
use relay::registry::{FeedId, Registry};
use relay::track::{Object, Subgroup, SubgroupEnd, Track, TrackEnd, TrackInfo, TrackName};
use tokio::sync::{mpsc, watch};

use crate::ladder::{self, LadderInput};
use crate::{Config, Status};

pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;
pub(crate) const PRIO_CATALOG: u8 = 0;
pub(crate) const PRIO_AUDIO: u8 = 1;
/// Ladder rungs get 2, 3, … from the lowest; the source comes after them.
pub(crate) const PRIO_LADDER_BASE: u8 = 2;

/// Statuses of every broadcast, by lv id.
pub(crate) type StatusMap = watch::Sender<BTreeMap<String, Status>>;

/// A track this broadcast feeds.
pub(crate) struct Publication {
    name: TrackName,
    track: Arc<Track>,
    feed: FeedId,
    priority: u8,
    group: Option<(u64, Arc<Subgroup>)>,
    next_object: u64,
    sequence: u32,
    /// CMAF chunks are written here and split off as objects: one allocation per
    /// [`SLAB_BYTES`] instead of one per frame.
    slab: BytesMut,
    /// Full slabs, oldest first. Once the relay's cache has dropped every object in one (it
    /// evicts in order) it is taken back and refilled: a long-running stream reuses the same
    /// memory instead of freeing it and faulting fresh pages in for the next slab.
    retired: VecDeque<BytesMut>,
    /// The chunk header being built (reused).
    scratch: Vec<u8>,
}

/// Size of the buffers source chunks are packed into.
const SLAB_BYTES: usize = 1 << 20;
/// Full slabs kept for reuse per track (the relay's cache holds at most 64 MiB per track, i.e.
/// ~64 slabs in use; with its default 10 s window, a 3 Mbit/s source uses about 5).
const MAX_RETIRED: usize = 128;

impl Publication {
    fn claim(registry: &Registry, ns: &[Bytes], name: &str, session: u64, priority: u8) -> Self {
        let name = TrackName::new(ns.to_vec(), Bytes::copy_from_slice(name.as_bytes()));
        let claim = registry.claim(
            &name,
            session,
            TrackInfo {
                publisher_priority: priority,
                group_order: 1,
                properties: Default::default(),
            },
        );
        Self {
            name,
            track: claim.track,
            feed: claim.feed,
            priority,
            group: None,
            next_object: 0,
            sequence: 0,
            slab: BytesMut::new(),
            retired: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    /// Another publisher took the track over. (The claim's stop token says the same, but
    /// reading it takes a lock; this is checked per frame and is one atomic load.)
    fn stopped(&self) -> bool {
        self.track.generation() != self.feed.generation
    }

    pub(crate) fn current_group(&self) -> Option<u64> {
        self.group.as_ref().map(|(g, _)| *g)
    }

    pub(crate) fn start_group(&mut self, group: u64) {
        self.end_group();
        if self.stopped() {
            return;
        }
        if let Some(sg) = self
            .track
            .create_subgroup(group, 0, self.priority, true, false)
        {
            self.group = Some((group, sg));
            self.next_object = 0;
        }
    }

    pub(crate) fn end_group(&mut self) {
        if let Some((_, sg)) = self.group.take() {
            self.track.end_subgroup(&sg, SubgroupEnd::Finished);
        }
    }

    pub(crate) fn push(&mut self, payload: Bytes) {
        if self.stopped() {
            return;
        }
        self.push_unchecked(payload, Instant::now());
    }

    /// [`Publication::push`] without the `stopped` check (the caller just made it);
    /// `received`: when its bytes arrived.
    fn push_unchecked(&mut self, payload: Bytes, received: Instant) {
        if let Some((_, sg)) = &self.group {
            self.track.push_object(
                sg,
                Object {
                    id: self.next_object,
                    status: moqt::ObjectStatus::Normal,
                    properties: Default::default(),
                    payload,
                    received,
                },
            );
            self.next_object += 1;
        }
    }

    /// Package one sample as a CMAF chunk (`prft` when `ntp` is set, `moof`, `mdat`) and push
    /// it as the next object; `received`: when its bytes arrived (the socket read).
    fn push_sample(
        &mut self,
        received: Instant,
        ntp: Option<u64>,
        track_id: u32,
        base_decode_time: u64,
        sample: Sample,
    ) {
        if self.stopped() || self.group.is_none() {
            return;
        }
        let seq = self.next_sequence();
        let samples = [sample];
        self.scratch.clear();
        fmp4::chunk_header(
            &mut self.scratch,
            ntp,
            seq,
            track_id,
            base_decode_time,
            &samples,
        );
        let len = self.scratch.len() + samples[0].data.len();
        if self.slab.capacity() - self.slab.len() < len {
            self.next_slab(len);
        }
        self.slab.extend_from_slice(&self.scratch);
        self.slab.extend_from_slice(&samples[0].data);
        let chunk = self.slab.split().freeze();
        self.push_unchecked(chunk, received);
    }

    /// Replace the full slab with one that has room for `len` bytes: a retired slab that
    /// nothing references any more (the oldest such), else a new one.
    fn next_slab(&mut self, len: usize) {
        let found = if len <= SLAB_BYTES {
            self.retired
                .iter_mut()
                .position(|old| old.try_reclaim(SLAB_BYTES))
        } else {
            None
        };
        let reused = found.and_then(|i| self.retired.remove(i));
        let next = reused.unwrap_or_else(|| BytesMut::with_capacity(len.max(SLAB_BYTES)));
        let full = std::mem::replace(&mut self.slab, next);
        // A slab with no spare room left (or the initial empty one) is not kept. The queue is
        // bounded: past it, the oldest is let go (a viewer still holding its objects frees it
        // when done), so slabs we hold but nobody uses stay few.
        if full.capacity() > 0 {
            if self.retired.len() >= MAX_RETIRED {
                self.retired.pop_front();
            }
            self.retired.push_back(full);
        }
    }

    pub(crate) fn next_sequence(&mut self) -> u32 {
        self.sequence = self.sequence.wrapping_add(1);
        self.sequence
    }

    fn release(mut self, registry: &Arc<Registry>, reason: &str) {
        self.end_group();
        registry.release(
            &self.name,
            self.feed,
            TrackEnd {
                code: 2,
                reason: reason.to_owned(),
            },
        );
    }
}

struct VideoState {
    config: VideoConfig,
    pub_: Publication,
    entry: catalog::Track,
    last_dts: Option<i64>,
    duration: u32,
    avc_for_ladder: bool,
}

struct AudioState {
    config: AudioConfig,
    pub_: Publication,
    entry: catalog::Track,
    rate: u32,
    /// Next expected decode time (in `rate`), to smooth millisecond timestamps.
    next: Option<u64>,
    frames_in_group: u32,
}

struct State {
    video: Option<VideoState>,
    audio: Option<AudioState>,
    /// Ladder rungs currently producing: catalog entries by track name.
    ladder: BTreeMap<String, catalog::Track>,
    catalog: Option<Publication>,
    catalog_json: Vec<u8>,
    /// The next group id to hand out (video keyframes; audio-only groups).
    next_group: u64,
    /// Group the source video is in.
    video_group: Option<u64>,
    /// Timeline: normalized ms = connection ms + offset.
    offset: Option<i64>,
    /// Largest normalized ms seen.
    last_ms: i64,
    metadata: Metadata,
    closed: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Metadata {
    pub framerate: Option<f64>,
    pub video_bitrate: Option<u64>,
    pub audio_bitrate: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Shared by the connection task feeding the source and the ladder supervisor.
pub(crate) struct Broadcast {
    pub(crate) lv: String,
    pub(crate) ns: Vec<Bytes>,
    pub(crate) session: u64,
    pub(crate) registry: Arc<Registry>,
    state: Mutex<State>,
    statuses: StatusMap,
    ladder_tx: Mutex<Option<mpsc::Sender<LadderInput>>>,
    /// Towards the transcoder: dropping until the next keyframe (the queue was full), and a
    /// configuration that did not fit in the queue yet.
    ladder_gap: Mutex<LadderGap>,
    ladder_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Ladder rung tracks, kept claimed across transcoder restarts.
    pub(crate) rungs: Mutex<BTreeMap<String, Publication>>,
    /// Stamp source chunks with a `prft` box ([`Config::producer_reference_time`]).
    prft: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Broadcast {
    pub(crate) fn new(
        main: &tokio::runtime::Handle,
        config: &Config,
        registry: Arc<Registry>,
        org: &str,
        lv: &str,
        session: u64,
        statuses: StatusMap,
    ) -> Arc<Self> {
        let ns: Vec<Bytes> = ["stream", org, lv]
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        let b = Arc::new(Self {
            lv: lv.to_owned(),
            ns,
            session,
            registry,
            state: Mutex::new(State {
                video: None,
                audio: None,
                ladder: BTreeMap::new(),
                catalog: None,
                catalog_json: Vec::new(),
                next_group: 0,
                video_group: None,
                offset: None,
                last_ms: -1,
                metadata: Metadata::default(),
                closed: false,
            }),
            statuses,
            ladder_tx: Mutex::new(None),
            ladder_gap: Mutex::new(LadderGap::default()),
            ladder_task: Mutex::new(None),
            rungs: Mutex::new(BTreeMap::new()),
            prft: config.producer_reference_time,
        });
        if !config.ladder.is_empty() {
            let (tx, rx) = mpsc::channel(ladder::QUEUE);
            *lock(&b.ladder_tx) = Some(tx);
            let task = main.spawn(ladder::supervise(config.clone(), Arc::downgrade(&b), rx));
            *lock(&b.ladder_task) = Some(task);
        }
        b.status(|s| s.live = true);
        b
    }

    /// Wallclock for a `prft` box, when enabled. Taken as the chunk is made, which is right
    /// after its RTMP message was reassembled from the socket (same task, no queue between).
    fn ntp_now(&self) -> Option<u64> {
        self.prft.then(|| {
            fmp4::ntp_timestamp(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default(),
            )
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn status(&self, f: impl FnOnce(&mut Status)) {
        self.statuses
            .send_modify(|m| f(m.entry(self.lv.clone()).or_default()));
    }

    /// A (re)connected encoder starts feeding: its timestamps are rebased onto our timeline.
    pub(crate) fn attach(&self) {
        let mut st = self.state();
        st.offset = None;
        drop(st);
        self.status(|s| s.live = true);
    }

    pub(crate) fn detach(&self) {
        self.status(|s| s.live = false);
    }

    fn normalize(st: &mut State, ts: u32) -> i64 {
        let ts = i64::from(ts);
        let offset = *st.offset.get_or_insert_with(|| {
            if st.last_ms < 0 {
                -ts
            } else {
                st.last_ms + 40 - ts
            }
        });
        let t = ts + offset;
        st.last_ms = st.last_ms.max(t);
        t
    }

    pub(crate) fn set_metadata(&self, m: Metadata) {
        self.state().metadata = m;
    }

    pub(crate) fn video_config(&self, config: VideoConfig) {
        let mut st = self.state();
        let meta = st.metadata;
        let codec = match config.codec_string() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(lv = %self.lv, error = %e, "unusable video configuration");
                return;
            }
        };
        if st.video.as_ref().is_some_and(|v| v.config == config) {
            return;
        }
        let pic = config.picture();
        let width = pic.map(|p| p.width).or(meta.width).unwrap_or(0);
        let height = pic.map(|p| p.height).or(meta.height).unwrap_or(0);
        let init = fmp4::init_segment(&TrackInit {
            track_id: 1,
            timescale: VIDEO_TIMESCALE,
            media: Media::Video { width, height },
            sample_entry: fmp4::video_sample_entry(&config, width, height),
        });
        let entry = catalog::Track {
            name: "video/source".into(),
            packaging: "cmaf".into(),
            is_live: true,
            role: Some("video".into()),
            codec: Some(codec),
            width: Some(width),
            height: Some(height),
            framerate: meta.framerate,
            bitrate: Some(meta.video_bitrate.unwrap_or(6_000_000)),
            timescale: Some(VIDEO_TIMESCALE),
            alt_group: Some(1),
            render_group: Some(1),
            init_data: Some(catalog::base64(&init)),
            max_grp_sap_starting_type: Some(2),
            label: Some("source".into()),
            ..Default::default()
        };
        let avc = matches!(config, VideoConfig::Avc(_));
        match &mut st.video {
            Some(v) => {
                v.config = config.clone();
                v.entry = entry;
                v.avc_for_ladder = avc;
            }
            None => {
                let prio = PRIO_LADDER_BASE.saturating_add(16);
                let pub_ = Publication::claim(
                    &self.registry,
                    &self.ns,
                    "video/source",
                    self.session,
                    prio,
                );
                st.video = Some(VideoState {
                    config: config.clone(),
                    pub_,
                    entry,
                    last_dts: None,
                    duration: 3000,
                    avc_for_ladder: avc,
                });
            }
        }
        self.publish_catalog(&mut st);
        drop(st);
        if avc {
            if let VideoConfig::Avc(avcc) = config {
                self.to_ladder(LadderInput::Config {
                    avcc,
                    width,
                    height,
                    framerate: meta.framerate,
                });
            }
        } else {
            tracing::warn!(lv = %self.lv, "ladder needs H.264 input; publishing the source rendition only");
            self.to_ladder(LadderInput::Unsupported);
        }
    }

    /// A video frame of the source; `received`: when the socket read that completed it
    /// returned (one clock read per read, not per frame).
    pub(crate) fn video_frame(
        &self,
        received: Instant,
        ts: u32,
        keyframe: bool,
        cts_ms: i32,
        data: Bytes,
    ) {
        let mut st = self.state();
        let t = Self::normalize(&mut st, ts);
        let Some(_) = st.video.as_ref() else { return };
        if keyframe {
            let g = st.next_group;
            st.next_group += 1;
            st.video_group = Some(g);
        }
        let Some(group) = st.video_group else { return }; // waiting for the first keyframe
        let dts = t * i64::from(VIDEO_TIMESCALE / 1000);
        let framerate = st.metadata.framerate;
        let Some(v) = st.video.as_mut() else { return };
        if let Some(prev) = v.last_dts {
            let d = dts - prev;
            if d > 0 && d < i64::from(VIDEO_TIMESCALE) {
                v.duration = d as u32;
            }
        } else if let Some(fr) = framerate.filter(|f| *f > 0.0) {
            v.duration = (f64::from(VIDEO_TIMESCALE) / fr) as u32;
        }
        v.last_dts = Some(dts);
        if keyframe || v.pub_.current_group() != Some(group) {
            v.pub_.start_group(group);
        }
        let cts = cts_ms.saturating_mul((VIDEO_TIMESCALE / 1000) as i32);
        let sample = Sample {
            duration: v.duration,
            cts,
            sync: keyframe,
            data: data.clone(),
        };
        v.pub_
            .push_sample(received, self.ntp_now(), 1, dts.max(0) as u64, sample);
        let to_ladder = v.avc_for_ladder;
        drop(st);
        if to_ladder {
            self.to_ladder(LadderInput::Frame {
                dts_ms: t,
                cts_ms,
                keyframe,
                group,
                data,
            });
        }
    }

    pub(crate) fn audio_config(&self, config: AudioConfig) {
        let mut st = self.state();
        if st.audio.as_ref().is_some_and(|a| a.config == config) {
            return;
        }
        let (entry_box, rate, channels) =
            match (fmp4::audio_sample_entry(&config), config.codec_string()) {
                (Ok(e), Ok(_)) => e,
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(lv = %self.lv, error = %e, "unusable audio configuration");
                    return;
                }
            };
        let codec = config.codec_string().unwrap_or_default();
        let init = fmp4::init_segment(&TrackInit {
            track_id: 2,
            timescale: rate,
            media: Media::Audio {
                sample_rate: rate,
                channels,
            },
            sample_entry: entry_box,
        });
        let entry = catalog::Track {
            name: "audio/source".into(),
            packaging: "cmaf".into(),
            is_live: true,
            role: Some("audio".into()),
            codec: Some(codec),
            bitrate: Some(st.metadata.audio_bitrate.unwrap_or(128_000)),
            timescale: Some(rate),
            samplerate: Some(rate),
            channel_config: Some(channels.to_string()),
            alt_group: Some(2),
            render_group: Some(1),
            init_data: Some(catalog::base64(&init)),
            ..Default::default()
        };
        match &mut st.audio {
            Some(a) => {
                a.config = config;
                a.entry = entry;
                a.rate = rate;
                a.next = None;
            }
            None => {
                let pub_ = Publication::claim(
                    &self.registry,
                    &self.ns,
                    "audio/source",
                    self.session,
                    PRIO_AUDIO,
                );
                st.audio = Some(AudioState {
                    config,
                    pub_,
                    entry,
                    rate,
                    next: None,
                    frames_in_group: 0,
                });
            }
        }
        self.publish_catalog(&mut st);
    }

    /// An audio frame of the source; `received` as for [`Broadcast::video_frame`].
    pub(crate) fn audio_frame(&self, received: Instant, ts: u32, data: Bytes) {
        let mut st = self.state();
        let t = Self::normalize(&mut st, ts);
        let has_video = st.video.is_some();
        let video_group = st.video_group;
        let mut fresh_group = None;
        {
            let Some(a) = st.audio.as_ref() else { return };
            let cur = a.pub_.current_group();
            if has_video {
                match video_group {
                    Some(g) if cur.is_none_or(|c| c < g) => fresh_group = Some(g),
                    None => return, // audio before the first keyframe: skip (keeps groups aligned)
                    _ => {}
                }
            } else if cur.is_none() || a.frames_in_group >= 50 {
                fresh_group = Some(u64::MAX);
            }
        }
        if fresh_group == Some(u64::MAX) {
            let g = st.next_group;
            st.next_group += 1;
            fresh_group = Some(g);
        }
        let Some(a) = st.audio.as_mut() else { return };
        if let Some(g) = fresh_group {
            a.pub_.start_group(g);
            a.frames_in_group = 0;
        }
        let rate = u64::from(a.rate);
        let from_ts = (t.max(0) as u64) * rate / 1000;
        let duration = match &a.config {
            AudioConfig::Aac(_) => 1024,
            AudioConfig::Opus(_) => opus_packet_samples(&data).unwrap_or(960),
        };
        let dts = match a.next {
            Some(n) if n.abs_diff(from_ts) < u64::from(duration) => n,
            _ => from_ts,
        };
        a.next = Some(dts + u64::from(duration));
        a.frames_in_group += 1;
        let ntp = self.ntp_now();
        a.pub_.push_sample(
            received,
            ntp,
            2,
            dts,
            Sample {
                duration,
                cts: 0,
                sync: true,
                data,
            },
        );
    }

    /// Queue `input` for the transcoder without ever waiting (see [`LadderGap::offer`]).
    fn to_ladder(&self, input: LadderInput) {
        let Some(tx) = lock(&self.ladder_tx).clone() else {
            return;
        };
        lock(&self.ladder_gap).offer(&self.lv, input, |i| tx.try_send(i));
    }

    /// A ladder rung produced its init segment (appears in the catalog).
    pub(crate) fn ladder_up(&self, entry: catalog::Track) {
        let mut st = self.state();
        if st.closed {
            return;
        }
        st.ladder.insert(entry.name.clone(), entry);
        self.publish_catalog(&mut st);
    }

    /// The ladder stopped: its rungs leave the catalog (their tracks stay claimed).
    pub(crate) fn ladder_down(&self) {
        let mut st = self.state();
        if st.ladder.is_empty() || st.closed {
            return;
        }
        st.ladder.clear();
        self.publish_catalog(&mut st);
    }

    pub(crate) fn source_info(&self) -> (Option<f64>, Option<u64>) {
        let st = self.state();
        (
            st.metadata.framerate,
            st.video.as_ref().and_then(|v| v.entry.bitrate),
        )
    }

    fn publish_catalog(&self, st: &mut State) {
        let mut tracks = Vec::new();
        if let Some(v) = &st.video {
            tracks.push(v.entry.clone());
        }
        tracks.extend(st.ladder.values().cloned());
        if let Some(a) = &st.audio {
            tracks.push(a.entry.clone());
        }
        let names: Vec<String> = tracks.iter().map(|t| t.name.clone()).collect();
        let body = Catalog::new(now_ms(), tracks.clone()).to_json();
        // generatedAt changes every time; compare without it.
        let mut key = Catalog::new(0, tracks);
        key.generated_at = None;
        let key = key.to_json();
        if key == st.catalog_json {
            return;
        }
        st.catalog_json = key;
        let group = st.next_group;
        st.next_group += 1;
        let p = st.catalog.get_or_insert_with(|| {
            Publication::claim(
                &self.registry,
                &self.ns,
                catalog::TRACK,
                self.session,
                PRIO_CATALOG,
            )
        });
        p.start_group(group);
        p.push(Bytes::from(body));
        p.end_group();
        self.status(|s| s.renditions = names);
    }

    /// The broadcast is over: release every track, stop the transcoder.
    pub(crate) fn close(&self, reason: &str) {
        if let Some(t) = lock(&self.ladder_task).take() {
            t.abort();
        }
        lock(&self.ladder_tx).take();
        let mut st = self.state();
        st.closed = true;
        if let Some(v) = st.video.take() {
            v.pub_.release(&self.registry, reason);
        }
        if let Some(a) = st.audio.take() {
            a.pub_.release(&self.registry, reason);
        }
        if let Some(c) = st.catalog.take() {
            c.release(&self.registry, reason);
        }
        drop(st);
        let rungs = std::mem::take(&mut *lock(&self.rungs));
        for (_, p) in rungs {
            p.release(&self.registry, reason);
        }
        self.statuses.send_modify(|m| {
            m.remove(&self.lv);
        });
    }

    /// Run `f` on the publication of ladder track `name`, claiming it on first use.
    pub(crate) fn with_rung<R>(
        &self,
        name: &str,
        priority: u8,
        f: impl FnOnce(&mut Publication) -> R,
    ) -> Option<R> {
        if self.state().closed {
            return None;
        }
        let mut rungs = lock(&self.rungs);
        let p = rungs.entry(name.to_owned()).or_insert_with(|| {
            Publication::claim(&self.registry, &self.ns, name, self.session, priority)
        });
        Some(f(p))
    }
}

impl Drop for Broadcast {
    fn drop(&mut self) {
        if let Some(t) = lock(&self.ladder_task).take() {
            t.abort();
        }
    }
}

/// The transcoder's input queue state: see [`LadderGap::offer`].
#[derive(Debug, Default)]
pub(crate) struct LadderGap {
    /// Dropping frames until the next keyframe.
    dropping: bool,
    dropped: u64,
    /// A configuration that did not fit in the queue yet.
    config: Option<LadderInput>,
}

impl LadderGap {
    /// Offer `input` to `send` (a non-blocking queue). When the queue is full the frame is
    /// dropped and so is every following frame until the next keyframe: a decoder fed a
    /// P-frame whose reference is missing damages the picture until then. Configurations are
    /// never lost: one that does not fit is kept and sent before the next frame.
    pub(crate) fn offer(
        &mut self,
        lv: &str,
        input: LadderInput,
        mut send: impl FnMut(LadderInput) -> Result<(), mpsc::error::TrySendError<LadderInput>>,
    ) {
        use mpsc::error::TrySendError::{Closed, Full};
        let frame = match &input {
            LadderInput::Frame { keyframe, .. } => Some(*keyframe),
            _ => None,
        };
        let input = match frame {
            None => {
                self.config = Some(input);
                None
            }
            Some(false) if self.dropping => {
                self.dropped += 1;
                return;
            }
            Some(_) => Some(input),
        };
        if let Some(config) = self.config.take() {
            match send(config) {
                Ok(()) => {}
                Err(Full(c)) => {
                    self.config = Some(c);
                    if input.is_some() {
                        self.start_gap(lv);
                    }
                    return;
                }
                Err(Closed(_)) => return,
            }
        }
        let Some(input) = input else { return };
        match send(input) {
            Ok(()) => {
                if self.dropping {
                    tracing::info!(lv = %lv, dropped = self.dropped, "transcoder caught up at a keyframe");
                    self.dropping = false;
                    self.dropped = 0;
                }
            }
            Err(Full(_)) => self.start_gap(lv),
            Err(Closed(_)) => {}
        }
    }

    fn start_gap(&mut self, lv: &str) {
        if !self.dropping {
            tracing::warn!(lv = %lv, "transcoder is behind (queue full): dropping its input until the next keyframe");
            self.dropping = true;
        }
        self.dropped += 1;
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks are packed into slabs, and a slab the relay's cache no longer references is
    /// refilled instead of a new one being allocated; the objects are still right.
    #[test]
    fn slabs_are_reused_once_evicted() {
        let registry = Registry::new(
            relay::track::CacheLimits {
                bytes: 2 << 20,
                ..Default::default()
            },
            std::time::Duration::from_secs(1),
        );
        let ns = vec![Bytes::from_static(b"stream"), Bytes::from_static(b"t")];
        let mut p = Publication::claim(&registry, &ns, "video/source", 1, 1);
        let frame = Bytes::from(vec![7u8; 100_000]);
        for i in 0..400u64 {
            if i % 10 == 0 {
                p.start_group(i / 10);
            }
            p.push_sample(
                Instant::now(),
                None,
                1,
                i * 3000,
                Sample {
                    duration: 3000,
                    cts: 0,
                    sync: i % 10 == 0,
                    data: frame.clone(),
                },
            );
        }
        // 40 MB went through a 2 MiB cache: without reuse there would be ~40 slabs.
        assert!(p.retired.len() <= 6, "{} slabs retired", p.retired.len());
        let last = p
            .group
            .as_ref()
            .and_then(|(_, sg)| sg.get(sg.progress().len - 1));
        let payload = last.map(|o| o.payload).unwrap_or_default();
        assert_eq!(
            payload.len(),
            fmp4::chunk(
                1,
                1,
                0,
                &[Sample {
                    duration: 3000,
                    cts: 0,
                    sync: false,
                    data: frame.clone()
                }]
            )
            .len()
        );
        assert!(payload.ends_with(&frame));
    }

    fn frame(n: u64, keyframe: bool) -> LadderInput {
        LadderInput::Frame {
            dts_ms: n as i64,
            cts_ms: 0,
            keyframe,
            group: n,
            data: Bytes::new(),
        }
    }

    fn config() -> LadderInput {
        LadderInput::Config {
            avcc: vec![1],
            width: 2,
            height: 2,
            framerate: None,
        }
    }

    /// A full queue drops frames until the next keyframe, then resumes with it.
    #[test]
    fn full_queue_drops_until_keyframe() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut gap = LadderGap::default();
        let offer = |gap: &mut LadderGap, i| gap.offer("lv_t", i, |i| tx.try_send(i));
        offer(&mut gap, config());
        offer(&mut gap, frame(0, true));
        offer(&mut gap, frame(1, false)); // full: dropped, gap starts
                                          // Room again, but P-frames keep being dropped until a keyframe.
        let got: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(got.len(), 2);
        offer(&mut gap, frame(2, false));
        offer(&mut gap, frame(3, false));
        assert!(rx.try_recv().is_err());
        offer(&mut gap, frame(4, true));
        offer(&mut gap, frame(5, false));
        let got: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|i| match i {
                LadderInput::Frame { dts_ms, .. } => dts_ms,
                _ => -1,
            })
            .collect();
        assert_eq!(got, vec![4, 5]);
    }

    /// A configuration that does not fit is kept and sent before the next frame.
    #[test]
    fn config_is_never_lost() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut gap = LadderGap::default();
        gap.offer("lv_t", frame(0, true), |i| tx.try_send(i));
        gap.offer("lv_t", config(), |i| tx.try_send(i)); // full: kept
        assert!(matches!(rx.try_recv(), Ok(LadderInput::Frame { .. })));
        gap.offer("lv_t", frame(1, false), |i| tx.try_send(i));
        // The configuration went first; the frame did not fit and opened a gap.
        assert!(matches!(rx.try_recv(), Ok(LadderInput::Config { .. })));
        assert!(rx.try_recv().is_err());
        gap.offer("lv_t", frame(2, true), |i| tx.try_send(i));
        assert!(matches!(
            rx.try_recv(),
            Ok(LadderInput::Frame { keyframe: true, .. })
        ));
    }
}
