//! Object storage through `object_store`: a local directory (the default, under the data
//! directory) or an S3-compatible bucket (`s3://bucket/prefix?option=value…`, credentials
//! from the usual `AWS_*` environment variables; see [`Storage::from_url`]; tested against
//! moto's S3 server in `tests/python/test_vod_s3.py`). Large files go up as multipart uploads
//! with 8 MiB parts (S3's minimum is 5 MiB); on local disk a finished upload is moved into
//! place (a rename, no copy).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt as _;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt as _;

/// Multipart part size: above S3's 5 MiB minimum.
pub const PART_BYTES: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("object store url: {0}")]
    Config(String),
}

impl StoreError {
    fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StoreError::Store(object_store::Error::NotFound { .. })
        )
    }
}

/// Bytes of (part of) an object.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Bytes,
    /// Size of the whole object.
    pub size: u64,
    /// The range returned (whole object when no range was asked).
    pub range: Range<u64>,
}

/// Where assets live. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Root directory when the store is the local file system.
    local_root: Option<PathBuf>,
}

impl Storage {
    /// A local directory (created if missing).
    pub fn local(root: &Path) -> Result<Storage, StoreError> {
        std::fs::create_dir_all(root)
            .map_err(|e| StoreError::io(format!("create {}", root.display()), e))?;
        let root = root
            .canonicalize()
            .map_err(|e| StoreError::io(format!("resolve {}", root.display()), e))?;
        let fs = LocalFileSystem::new_with_prefix(&root)?;
        Ok(Storage {
            store: Arc::new(fs),
            local_root: Some(root),
        })
    }

    /// `s3://bucket[/prefix][?key=value&…]` (S3-compatible) or `file:///abs/dir`.
    ///
    /// S3 settings come from the usual `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, …), and the
    /// URL's query may set any `object_store` S3 option over them, e.g.
    /// `s3://media/vod?endpoint=http://127.0.0.1:9000&region=us-east-1&allow_http=true` for a
    /// local MinIO. Requests are path-style (`endpoint/bucket/key`) unless
    /// `virtual_hosted_style_request=true`. Keys belong in the environment, not in the URL.
    pub fn from_url(url: &str) -> Result<Storage, StoreError> {
        if let Some(path) = url.strip_prefix("file://") {
            return Storage::local(Path::new(path));
        }
        #[cfg(feature = "s3")]
        if url.starts_with("s3://") {
            return Storage::s3(url);
        }
        Err(StoreError::Config(format!(
            "unsupported object store url {url:?} (file:///dir or s3://bucket/prefix)"
        )))
    }

    #[cfg(feature = "s3")]
    fn s3(url: &str) -> Result<Storage, StoreError> {
        use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
        let parsed = url::Url::parse(url).map_err(|e| StoreError::Config(e.to_string()))?;
        let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
            StoreError::Config("s3 url needs a bucket: s3://bucket/prefix".into())
        })?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in parsed.query_pairs() {
            let key: AmazonS3ConfigKey = k.parse().map_err(|_| {
                StoreError::Config(format!("unknown s3 option {k:?} in the object store url"))
            })?;
            if matches!(key, AmazonS3ConfigKey::Bucket) {
                return Err(StoreError::Config(
                    "the bucket is the url's host (s3://bucket/prefix)".into(),
                ));
            }
            builder = builder.with_config(key, v.as_ref());
        }
        let s3 = builder.build()?;
        let prefix = parsed.path().trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
        };
        Ok(Storage {
            store,
            local_root: None,
        })
    }

    /// Wrap any store (tests, other backends).
    pub fn from_store(store: Arc<dyn ObjectStore>) -> Storage {
        Storage {
            store,
            local_root: None,
        }
    }

    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// The file behind `key` when the store is a local directory.
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.local_root.as_ref().map(|r| r.join(key))
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.store
            .put(&Key::from(key), PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    /// Store the file at `path` under `key`, consuming the file: a rename on local disk, a
    /// multipart upload (8 MiB parts) elsewhere. Returns its size.
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<u64, StoreError> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| StoreError::io(format!("stat {}", path.display()), e))?
            .len();
        if let Some(dest) = self.local_path(key) {
            if let Some(dir) = dest.parent() {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| StoreError::io(format!("create {}", dir.display()), e))?;
            }
            match tokio::fs::rename(path, &dest).await {
                Ok(()) => return Ok(size),
                // Another file system: copy, then remove.
                Err(_) => {
                    tokio::fs::copy(path, &dest)
                        .await
                        .map_err(|e| StoreError::io(format!("copy to {}", dest.display()), e))?;
                    let _ = tokio::fs::remove_file(path).await;
                    return Ok(size);
                }
            }
        }
        let upload = self.store.put_multipart(&Key::from(key)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| StoreError::io(format!("open {}", path.display()), e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| StoreError::io(format!("read {}", path.display()), e))?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await?;
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        let _ = tokio::fs::remove_file(path).await;
        Ok(size)
    }

    /// A local file with the object's bytes: the object itself on local disk, otherwise a
    /// download into `scratch`.
    pub async fn to_local_file(&self, key: &str, scratch: &Path) -> Result<PathBuf, StoreError> {
        if let Some(p) = self.local_path(key) {
            return Ok(p);
        }
        let res = self.store.get(&Key::from(key)).await?;
        let mut stream = res.into_stream();
        let mut f = tokio::fs::File::create(scratch)
            .await
            .map_err(|e| StoreError::io(format!("create {}", scratch.display()), e))?;
        while let Some(chunk) = stream.try_next().await? {
            tokio::io::AsyncWriteExt::write_all(&mut f, &chunk)
                .await
                .map_err(|e| StoreError::io(format!("write {}", scratch.display()), e))?;
        }
        // tokio's `File` completes its last write in the background: without a flush the
        // file could still be short when ffprobe opens it.
        tokio::io::AsyncWriteExt::flush(&mut f)
            .await
            .map_err(|e| StoreError::io(format!("write {}", scratch.display()), e))?;
        Ok(scratch.to_path_buf())
    }

    /// The object, or `range` of it (clamped to its size).
    pub async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<Object, StoreError> {
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let res = self.store.get_opts(&Key::from(key), opts).await?;
        let size = res.meta.size;
        let range = res.range.clone();
        let bytes = res.bytes().await?;
        Ok(Object { bytes, size, range })
    }

    /// Size of an object, `None` if missing.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.store.head(&Key::from(key)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete every object under `prefix` (a directory-like key).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let p = Key::from(prefix);
        let keys: Vec<_> = self
            .store
            .list(Some(&p))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for k in keys {
            match self.store.delete(&k).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(dir) = self.local_path(prefix) {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "s3"))]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        let ok = Storage::from_url(
            "s3://media/vod?endpoint=http://127.0.0.1:9000&region=us-east-1&allow_http=true",
        );
        assert!(ok.is_ok_and(|s| !s.is_local()));
        for bad in [
            "s3://media/vod?no_such_option=1",
            "s3://media/vod?bucket=other",
            "s3:///vod",
            "gs://media/vod",
        ] {
            assert!(
                matches!(Storage::from_url(bad), Err(StoreError::Config(_))),
                "{bad}"
            );
        }
    }
}
