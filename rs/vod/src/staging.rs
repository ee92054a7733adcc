//! Appending one PATCH body to an upload's staging file, without copying it in user space.
//!
//! The HTTP side hands the body's `Bytes` frames (as the server received them) through a short
//! bounded channel to [`append`], which runs on one blocking thread for the whole request: it
//! gathers what is queued into one `writev` (up to [`BATCH_BYTES`]), so the only copies are the
//! kernel's (socket → frame, frame → page cache). Every [`WRITEBACK_BYTES`] it asks a helper
//! thread (scoped: joined before [`append`] returns) to `fdatasync`, which pushes what is
//! already written to the disk while the body keeps arriving and the writer keeps writing.
//!
//! The durability point is still the single [`Appender::commit`] before the offset is
//! acknowledged, but by then only the tail is left to write back instead of the whole PATCH
//! (64 MiB take ~30 ms on this project's disk, with the client idle). An intermediate sync
//! that fails fails the commit (Linux reports a writeback error once per open file).
//!
//! (Copying frames into a few large reused buffers instead, one `write` each, measured slower
//! on this project's machine: see `bench/upload-vod/RESULTS.md`.)
//!
//! Blocking I/O only; the caller runs [`append`] on a thread of its own (this crate spawns
//! nothing beyond the scoped helper).

use std::fs::File;
use std::io::{IoSlice, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Most bytes gathered into one `writev`.
pub const BATCH_BYTES: usize = 8 << 20;
/// Most frames in one `writev` (well under `IOV_MAX`).
const BATCH_FRAMES: usize = 256;
/// Written bytes after which an intermediate `fdatasync` starts the writeback.
pub const WRITEBACK_BYTES: u64 = 4 << 20;

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
    /// The first error of an intermediate (writeback) `fdatasync`.
    writeback: Option<std::io::Error>,
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
            writeback: None,
        })
    }

    /// Bytes appended so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Append `frames` in order (gathered writes; no copy).
    pub fn write(&mut self, frames: &[Bytes]) -> Result<(), StagingError> {
        self.written += write_frames(&self.file, frames)?;
        Ok(())
    }

    /// Make the appended bytes durable (`fdatasync`); returns how many there are.
    pub fn commit(self) -> Result<u64, StagingError> {
        if let Some(e) = self.writeback {
            return Err(io("write back staging file")(e));
        }
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

/// One gathered write of `frames` (as many `writev`s as the kernel needs); returns the bytes
/// written.
fn write_frames(mut file: &File, frames: &[Bytes]) -> Result<u64, StagingError> {
    let mut slices: Vec<IoSlice<'_>> = frames
        .iter()
        .filter(|f| !f.is_empty())
        .map(|f| IoSlice::new(f))
        .collect();
    let mut rest = &mut slices[..];
    let mut written = 0u64;
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => {
                return Err(StagingError::Io {
                    context: "write staging file",
                    source: std::io::ErrorKind::WriteZero.into(),
                })
            }
            Ok(n) => {
                written += n as u64;
                IoSlice::advance_slices(&mut rest, n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("write staging file")(e)),
        }
    }
    Ok(written)
}

/// Blocking: open `path` at `offset` and append every frame received until the sender is
/// dropped, starting writeback every [`WRITEBACK_BYTES`] on a scoped helper thread. Returns
/// the (uncommitted) appender; the caller commits or discards it. On an error the receiver is
/// dropped, so the sender's next `send` fails and the request stops reading.
pub fn append(
    path: &Path,
    offset: u64,
    mut rx: mpsc::Receiver<Bytes>,
) -> Result<Appender, StagingError> {
    let mut out = Appender::open(path, offset)?;
    let file = &out.file;
    let writeback: Mutex<Option<std::io::Error>> = Mutex::new(None);
    // At most one sync running and one queued.
    let (kick, kicks) = std::sync::mpsc::sync_channel::<()>(1);
    let written = std::thread::scope(|scope| {
        let writeback = &writeback;
        scope.spawn(move || {
            for () in kicks.iter() {
                if let Err(e) = file.sync_data() {
                    if let Ok(mut first) = writeback.lock() {
                        first.get_or_insert(e);
                    }
                }
            }
        });
        let mut written = 0u64;
        let mut since_sync = 0u64;
        let mut batch: Vec<Bytes> = Vec::with_capacity(BATCH_FRAMES);
        let result = loop {
            let Some(first) = rx.blocking_recv() else {
                break Ok(written);
            };
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
            let n = match write_frames(file, &batch) {
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            batch.clear();
            written += n;
            since_sync += n;
            if since_sync >= WRITEBACK_BYTES {
                since_sync = 0;
                // Full: a sync is already queued behind the running one.
                let _ = kick.try_send(());
            }
        };
        drop(kick);
        result
    })?;
    out.written = written;
    out.writeback = writeback.into_inner().ok().flatten();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_truncates_and_discards() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let path = dir.path().join("up");
        assert!(std::fs::write(&path, b"hello, garbage").is_ok());
        let Ok(mut a) = Appender::open(&path, 5) else {
            panic!("open")
        };
        let frames = [
            Bytes::from_static(b" wor"),
            Bytes::new(),
            Bytes::from_static(b"ld"),
        ];
        assert!(a.write(&frames).is_ok());
        assert_eq!(a.written(), 6);
        assert_eq!(a.commit().ok(), Some(6));
        assert_eq!(
            std::fs::read(&path).ok().as_deref(),
            Some(&b"hello world"[..])
        );

        let a = Appender::open(&path, 9);
        assert!(a.is_ok_and(
            |mut a| a.write(&[Bytes::from_static(b"xyz")]).is_ok() && a.discard().is_ok()
        ));
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
    fn append_keeps_order_across_batches_and_writebacks() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let path = dir.path().join("up");
        let (tx, rx) = mpsc::channel(4);
        let p = path.clone();
        let t = std::thread::spawn(move || append(&p, 0, rx).and_then(Appender::commit));
        // More than WRITEBACK_BYTES in all, so intermediate syncs run too.
        let frame = 100_003usize;
        let n = (WRITEBACK_BYTES as usize * 2) / frame + 7;
        for i in 0..n {
            assert!(tx
                .blocking_send(Bytes::from(vec![(i % 251) as u8; frame]))
                .is_ok());
        }
        drop(tx);
        let total = (n * frame) as u64;
        assert_eq!(t.join().ok().and_then(|r| r.ok()), Some(total));
        let data = std::fs::read(&path).unwrap_or_default();
        assert_eq!(data.len() as u64, total);
        assert!(data
            .chunks(frame)
            .enumerate()
            .all(|(i, c)| c.iter().all(|&b| usize::from(b) == i % 251)));
    }

    #[test]
    fn a_failed_writer_drops_the_receiver() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let (tx, rx) = mpsc::channel(1);
        // The staging path is a directory: open fails, the receiver goes with it.
        let r = append(dir.path(), 0, rx);
        assert!(matches!(r, Err(StagingError::Io { .. })));
        assert!(tx.blocking_send(Bytes::from_static(b"x")).is_err());
    }
}
