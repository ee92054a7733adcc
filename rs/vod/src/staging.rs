//! Appending one PATCH body to an upload's staging file, without copying it in user space.
//!
//! The HTTP side hands the body's `Bytes` frames (as the server received them) through a
//! bounded channel to [`append`], which runs on one blocking thread for the whole request:
//! it gathers what is queued into one `writev` (up to [`BATCH_BYTES`]), so the only copies
//! are the kernel's (socket → frame, frame → page cache). Every [`WRITEBACK_BYTES`] it calls
//! `fdatasync` to push what is already written to the disk while the network keeps filling
//! the channel: the durability point is still the single [`Appender::commit`] before the
//! offset is acknowledged, but by then only the tail is left to write back, instead of the
//! whole PATCH (64 MiB take ~30 ms on this project's disk, with the client idle).
//!
//! Blocking I/O only; the caller spawns the thread (this crate spawns nothing).

use std::fs::File;
use std::io::{IoSlice, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Most bytes gathered into one `writev`.
pub const BATCH_BYTES: usize = 8 << 20;
/// Most frames in one `writev` (well under `IOV_MAX`).
const BATCH_FRAMES: usize = 256;
/// Written bytes after which an intermediate `fdatasync` starts the writeback.
pub const WRITEBACK_BYTES: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("staging file holds {on_disk} bytes, fewer than the committed offset {offset}")]
    Short { on_disk: u64, offset: u64 },
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> StagingError {
    move |source| StagingError::Io { context, source }
}

/// An open staging file positioned at the committed offset.
#[derive(Debug)]
pub struct Appender {
    file: File,
    start: u64,
    written: u64,
    since_sync: u64,
}

impl Appender {
    /// Open (create) `path` to append at the committed `offset`; bytes past it (a crash
    /// between write and commit) are dropped. A file shorter than `offset` is an error: the
    /// acknowledged bytes are gone.
    pub fn open(path: &Path, offset: u64) -> Result<Appender, StagingError> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io("open staging file"))?;
        let on_disk = file.metadata().map_err(io("stat staging file"))?.len();
        if on_disk < offset {
            return Err(StagingError::Short { on_disk, offset });
        }
        if on_disk > offset {
            file.set_len(offset).map_err(io("truncate staging file"))?;
        }
        file.seek(SeekFrom::Start(offset))
            .map_err(io("seek staging file"))?;
        Ok(Appender {
            file,
            start: offset,
            written: 0,
            since_sync: 0,
        })
    }

    /// Bytes appended so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Append `frames` in order (gathered writes; no copy), then start writeback if enough
    /// has piled up since the last.
    pub fn write(&mut self, frames: &[Bytes]) -> Result<(), StagingError> {
        let mut slices: Vec<IoSlice<'_>> = frames
            .iter()
            .filter(|f| !f.is_empty())
            .map(|f| IoSlice::new(f))
            .collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match self.file.write_vectored(rest) {
                Ok(0) => {
                    return Err(StagingError::Io {
                        context: "write staging file",
                        source: std::io::ErrorKind::WriteZero.into(),
                    })
                }
                Ok(n) => {
                    self.written += n as u64;
                    self.since_sync += n as u64;
                    IoSlice::advance_slices(&mut rest, n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io("write staging file")(e)),
            }
        }
        if self.since_sync >= WRITEBACK_BYTES {
            self.since_sync = 0;
            self.file
                .sync_data()
                .map_err(io("write back staging file"))?;
        }
        Ok(())
    }

    /// Make the appended bytes durable (`fdatasync`); returns how many there are.
    pub fn commit(self) -> Result<u64, StagingError> {
        self.file.sync_data().map_err(io("sync staging file"))?;
        Ok(self.written)
    }

    /// Drop this append's bytes (the file ends at the committed offset again).
    pub fn discard(self) -> Result<(), StagingError> {
        self.file
            .set_len(self.start)
            .map_err(io("truncate staging file"))
    }
}

/// Blocking: open `path` at `offset` and append every frame received until the sender is
/// dropped. Returns the (uncommitted) appender; the caller commits or discards it. On an
/// error the receiver is dropped, so the sender's next `send` fails and the request stops
/// reading.
pub fn append(
    path: &Path,
    offset: u64,
    mut rx: mpsc::Receiver<Bytes>,
) -> Result<Appender, StagingError> {
    let mut out = Appender::open(path, offset)?;
    let mut batch: Vec<Bytes> = Vec::with_capacity(BATCH_FRAMES);
    while let Some(first) = rx.blocking_recv() {
        let mut bytes = first.len();
        batch.push(first);
        while bytes < BATCH_BYTES && batch.len() < BATCH_FRAMES {
            match rx.try_recv() {
                Ok(b) => {
                    bytes += b.len();
                    batch.push(b);
                }
                Err(_) => break,
            }
        }
        out.write(&batch)?;
        batch.clear();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_truncates_and_discards() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let Ok(dir) = dir else { return };
        let path = dir.path().join("up");
        std::fs::write(&path, b"hello, garbage").ok();
        let mut a = match Appender::open(&path, 5) {
            Ok(a) => a,
            Err(e) => panic!("open: {e}"),
        };
        let big = Bytes::from(vec![7u8; (WRITEBACK_BYTES as usize) + 3]);
        assert!(a
            .write(&[Bytes::from_static(b" wor"), Bytes::new(), big.clone()])
            .is_ok());
        assert!(a.write(&[Bytes::from_static(b"ld")]).is_ok());
        assert_eq!(a.written(), 4 + big.len() as u64 + 2);
        assert_eq!(a.commit().ok(), Some(4 + big.len() as u64 + 2));
        let data = std::fs::read(&path).unwrap_or_default();
        assert_eq!(&data[..9], b"hello wor");
        assert_eq!(&data[data.len() - 2..], b"ld");
        assert_eq!(data.len(), 5 + 4 + big.len() + 2);

        let a = Appender::open(&path, 9);
        assert!(a.is_ok_and(|mut a| a.write(&[Bytes::from_static(b"xyz")]).is_ok()
            && a.discard().is_ok()));
        assert_eq!(std::fs::read(&path).map(|d| d.len()).ok(), Some(9));
        assert!(matches!(
            Appender::open(&path, 100),
            Err(StagingError::Short {
                on_disk: 9,
                offset: 100
            })
        ));
    }

    #[test]
    fn append_drains_the_channel_in_order() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let path = dir.path().join("up");
        let (tx, rx) = mpsc::channel(4);
        let p = path.clone();
        let t = std::thread::spawn(move || append(&p, 0, rx).and_then(Appender::commit));
        for i in 0..100u8 {
            assert!(tx.blocking_send(Bytes::from(vec![i; 1000])).is_ok());
        }
        drop(tx);
        assert_eq!(t.join().ok().and_then(|r| r.ok()), Some(100_000));
        let data = std::fs::read(&path).unwrap_or_default();
        assert_eq!(data.len(), 100_000);
        assert!(data.chunks(1000).enumerate().all(|(i, c)| c.iter().all(|&b| usize::from(b) == i)));
    }
}
