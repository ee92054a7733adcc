//! Split a single-track fragmented MP4 file (ffmpeg's `empty_moov` output) into its CMAF
//! header (ftyp+moov) and an index of fragments, reading only box headers and `moof` boxes
//! (media data is skipped with a seek). Segments are then byte ranges of the same file: a
//! segment is one or more whole fragments, contiguous on disk.

use std::io::SeekFrom;
use std::path::Path;

use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::boxes::{self, BoxError, FragmentInfo, TrackInfo};

/// Largest `ftyp`/`moov`/`moof` we read into memory.
const MAX_META_BOX: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("reading {0}: {1}")]
    Io(String, std::io::Error),
    #[error("fragmented MP4: {0}")]
    Box(#[from] BoxError),
    #[error("fragmented MP4: {0}")]
    Invalid(&'static str),
}

/// One fragment (moof + mdat) of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Byte offset of the `moof`.
    pub offset: u64,
    /// Through the end of the following `mdat`.
    pub len: u64,
    pub info: FragmentInfo,
}

/// A fragmented single-track file, indexed.
#[derive(Debug, Clone)]
pub struct Indexed {
    /// ftyp + moov, verbatim: the CMAF header.
    pub init: Vec<u8>,
    pub track: TrackInfo,
    pub fragments: Vec<Fragment>,
}

async fn read_exact_at(
    f: &mut tokio::fs::File,
    buf: &mut [u8],
    what: &str,
) -> Result<usize, SegmentError> {
    let mut got = 0;
    while got < buf.len() {
        let n = f
            .read(&mut buf[got..])
            .await
            .map_err(|e| SegmentError::Io(what.to_owned(), e))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Index `path`.
pub async fn index(path: &Path) -> Result<Indexed, SegmentError> {
    let what = path.display().to_string();
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| SegmentError::Io(what.clone(), e))?;
    let file_len = f
        .metadata()
        .await
        .map_err(|e| SegmentError::Io(what.clone(), e))?
        .len();
    let mut init = Vec::new();
    let mut track: Option<TrackInfo> = None;
    let mut fragments = Vec::new();
    // A moof waiting for its mdat: (offset, info).
    let mut open: Option<(u64, FragmentInfo)> = None;
    let mut pos = 0u64;
    let mut head = [0u8; 32];
    while pos < file_len {
        f.seek(SeekFrom::Start(pos))
            .await
            .map_err(|e| SegmentError::Io(what.clone(), e))?;
        let n = read_exact_at(&mut f, &mut head, &what).await?;
        let h = boxes::header(&head[..n])?.ok_or(SegmentError::Invalid("truncated box header"))?;
        let size = h.size.unwrap_or(file_len - pos);
        if pos.saturating_add(size) > file_len {
            return Err(SegmentError::Invalid("box runs past the end of the file"));
        }
        match &h.kind {
            b"ftyp" | b"moov" | b"moof" => {
                if size > MAX_META_BOX {
                    return Err(SegmentError::Invalid("metadata box too large"));
                }
                let len = usize::try_from(size).map_err(|_| SegmentError::Invalid("box size"))?;
                let mut b = vec![0u8; len];
                f.seek(SeekFrom::Start(pos))
                    .await
                    .map_err(|e| SegmentError::Io(what.clone(), e))?;
                if read_exact_at(&mut f, &mut b, &what).await? != len {
                    return Err(SegmentError::Invalid("short read"));
                }
                let hl = usize::try_from(h.header_len).unwrap_or(len).min(len);
                match &h.kind {
                    b"moov" => {
                        let tracks = boxes::parse_moov(&b[hl..])?;
                        track = Some(
                            tracks
                                .into_iter()
                                .next()
                                .ok_or(SegmentError::Invalid("moov has no track"))?,
                        );
                        init.extend_from_slice(&b);
                    }
                    b"ftyp" => init.extend_from_slice(&b),
                    _ => {
                        let info = boxes::parse_moof(&b[hl..], track.as_ref())?;
                        open = Some((pos, info));
                    }
                }
            }
            b"mdat" => {
                if let Some((offset, info)) = open.take() {
                    fragments.push(Fragment {
                        offset,
                        len: pos + size - offset,
                        info,
                    });
                }
            }
            _ => {}
        }
        pos += size.max(8);
    }
    let track = track.ok_or(SegmentError::Invalid("no moov"))?;
    Ok(Indexed {
        init,
        track,
        fragments,
    })
}

/// Segment boundaries (decode times in seconds) from the fragments of the reference (video)
/// track: a segment starts at a fragment that starts with a sync sample, at least `min_secs`
/// after the previous boundary.
pub fn boundaries(reference: &Indexed, min_secs: f64) -> Vec<f64> {
    let ts = f64::from(reference.track.timescale.max(1));
    let mut out: Vec<f64> = Vec::new();
    for fr in &reference.fragments {
        let t = fr.info.decode_time as f64 / ts;
        match out.last() {
            None => out.push(t),
            Some(&last) if fr.info.starts_with_sync && t - last >= min_secs - 1e-6 => out.push(t),
            _ => {}
        }
    }
    out
}

/// A planned segment of one track: a contiguous byte range and its timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub offset: u64,
    pub len: u64,
    /// Decode time of the first sample, track timescale.
    pub start: u64,
    /// Track timescale.
    pub duration: u64,
}

/// Assign the fragments of `track` to the segments that start at `bounds` (seconds): a
/// fragment belongs to the last boundary at or before its start (with half a frame of slack
/// for rounding). Empty segments are skipped, so every track has at most `bounds.len()`.
pub fn plan(track: &Indexed, bounds: &[f64]) -> Vec<Vec<Planned>> {
    let ts = f64::from(track.track.timescale.max(1));
    let mut segs: Vec<Vec<Fragment>> = vec![Vec::new(); bounds.len().max(1)];
    for fr in &track.fragments {
        let t = fr.info.decode_time as f64 / ts + 0.010;
        let i = bounds.partition_point(|b| *b <= t).saturating_sub(1);
        if let Some(s) = segs.get_mut(i) {
            s.push(*fr);
        }
    }
    segs.into_iter()
        .map(|frs| {
            // Split into runs of contiguous fragments (normally one run).
            let mut runs: Vec<Planned> = Vec::new();
            for fr in frs {
                match runs.last_mut() {
                    Some(r) if r.offset + r.len == fr.offset => {
                        r.len += fr.len;
                        r.duration += fr.info.duration;
                    }
                    _ => runs.push(Planned {
                        offset: fr.offset,
                        len: fr.len,
                        start: fr.info.decode_time,
                        duration: fr.info.duration,
                    }),
                }
            }
            runs
        })
        .collect()
}

/// Whether the file at `path` begins like an ISO-BMFF (MP4/MOV) file: its first box header
/// names one of the top-level boxes such files start with. Such an upload completes when its
/// bytes are whole ([`whole_iso_bmff`]); the idle rule for uploads of unknown length must not
/// cut one short.
pub async fn starts_like_iso_bmff(path: &Path) -> bool {
    const FIRST: [&[u8; 4]; 7] = [
        b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide",
    ];
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return false;
    };
    let mut head = [0u8; 8];
    if f.read_exact(&mut head).await.is_err() {
        return false;
    }
    FIRST.iter().any(|k| head[4..8] == k[..])
}

/// Whether the first `len` bytes of `path` are a whole ISO-BMFF file: top-level boxes tile
/// them exactly (no box of unknown size) and include `moov` and `mdat`. Reads box headers
/// only. How an upload of unknown length learns that it is complete.
pub async fn whole_iso_bmff(path: &Path, len: u64) -> bool {
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return false;
    };
    let (mut pos, mut moov, mut mdat) = (0u64, false, false);
    let mut head = [0u8; 32];
    for _ in 0..10_000 {
        if pos == len {
            return moov && mdat;
        }
        if pos > len || f.seek(SeekFrom::Start(pos)).await.is_err() {
            return false;
        }
        let Ok(n) = read_exact_at(&mut f, &mut head, "").await else {
            return false;
        };
        let avail = usize::try_from((len - pos).min(n as u64)).unwrap_or(0);
        let Ok(Some(h)) = boxes::header(&head[..avail]) else {
            return false;
        };
        if !h.kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return false;
        }
        let Some(size) = h.size else {
            return false;
        };
        moov |= &h.kind == b"moov";
        mdat |= &h.kind == b"mdat";
        pos = pos.saturating_add(size);
    }
    false
}
