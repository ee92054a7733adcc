//! A small ISO-BMFF (MP4) box reader: box headers, child iteration, and the few boxes the
//! packager needs (`moov` → tracks, `moof` → fragment timing). Every function takes untrusted
//! bytes and returns [`BoxError`] instead of panicking; no loop runs longer than its input.

/// Why some bytes are not the boxes we expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoxError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("missing {0}")]
    Missing(&'static str),
}

/// A box header: type, header length (8 or 16, +16 for `uuid`) and total size. `size` is
/// `None` for a box that extends to the end of its container (size field 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: [u8; 4],
    pub header_len: u64,
    pub size: Option<u64>,
}

/// Parse the header at the start of `buf`. `Ok(None)`: `buf` is too short to tell yet.
pub fn header(buf: &[u8]) -> Result<Option<BoxHeader>, BoxError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let size32 = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let kind = [buf[4], buf[5], buf[6], buf[7]];
    let (mut header_len, size) = match size32 {
        0 => (8u64, None),
        1 => {
            if buf.len() < 16 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[8..16]);
            (16, Some(u64::from_be_bytes(b)))
        }
        n => (8, Some(u64::from(n))),
    };
    if &kind == b"uuid" {
        header_len += 16;
        if (buf.len() as u64) < header_len {
            return Ok(None);
        }
    }
    if let Some(s) = size {
        if s < header_len {
            return Err(BoxError::Invalid("box size smaller than its header"));
        }
    }
    Ok(Some(BoxHeader {
        kind,
        header_len,
        size,
    }))
}

/// Iterates the child boxes of a container body: `(type, body)`.
pub struct Children<'a> {
    buf: &'a [u8],
    failed: bool,
}

/// The children of `body` (a container box's payload).
pub fn children(body: &[u8]) -> Children<'_> {
    Children {
        buf: body,
        failed: false,
    }
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<([u8; 4], &'a [u8]), BoxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let h = match header(self.buf) {
            Ok(Some(h)) => h,
            Ok(None) => {
                self.failed = true;
                return Some(Err(BoxError::Truncated("child box header")));
            }
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let total = h.size.unwrap_or(self.buf.len() as u64);
        let Ok(total) = usize::try_from(total) else {
            self.failed = true;
            return Some(Err(BoxError::Invalid("box size")));
        };
        if total > self.buf.len() {
            self.failed = true;
            return Some(Err(BoxError::Truncated("child box")));
        }
        let hl = usize::try_from(h.header_len)
            .unwrap_or(usize::MAX)
            .min(total);
        let body = &self.buf[hl..total];
        self.buf = &self.buf[total..];
        Some(Ok((h.kind, body)))
    }
}

/// The body of the first child of type `kind`.
pub fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, BoxError> {
    for c in children(body) {
        let (k, b) = c?;
        if &k == kind {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

fn need<'a>(body: &'a [u8], kind: &[u8; 4], what: &'static str) -> Result<&'a [u8], BoxError> {
    child(body, kind)?.ok_or(BoxError::Missing(what))
}

fn u32_at(b: &[u8], at: usize, what: &'static str) -> Result<u32, BoxError> {
    let s = b
        .get(at..at.saturating_add(4))
        .ok_or(BoxError::Truncated(what))?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize, what: &'static str) -> Result<u64, BoxError> {
    let s = b
        .get(at..at.saturating_add(8))
        .ok_or(BoxError::Truncated(what))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_be_bytes(a))
}

/// One track of a `moov`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub track_id: u32,
    pub timescale: u32,
    /// `vide`, `soun`, …
    pub handler: [u8; 4],
    /// The first sample entry box (header included), verbatim.
    pub sample_entry: Vec<u8>,
    /// Visual sample entry size (0 for audio).
    pub width: u32,
    pub height: u32,
    /// Audio sample entry (0 for video).
    pub channels: u16,
    pub samplerate: u32,
    /// `trex` defaults (0 when absent).
    pub default_duration: u32,
    pub default_flags: u32,
}

/// The tracks of a `moov` body.
pub fn parse_moov(moov: &[u8]) -> Result<Vec<TrackInfo>, BoxError> {
    let mut tracks = Vec::new();
    let mut trex: Vec<(u32, u32, u32)> = Vec::new();
    for c in children(moov) {
        let (k, body) = c?;
        match &k {
            b"trak" => tracks.push(parse_trak(body)?),
            b"mvex" => {
                for c in children(body) {
                    let (k, b) = c?;
                    if &k == b"trex" {
                        // version/flags, track_ID, desc index, duration, size, flags
                        trex.push((
                            u32_at(b, 4, "trex")?,
                            u32_at(b, 12, "trex")?,
                            u32_at(b, 20, "trex")?,
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    for t in &mut tracks {
        if let Some((_, d, f)) = trex.iter().find(|(id, _, _)| *id == t.track_id) {
            t.default_duration = *d;
            t.default_flags = *f;
        }
    }
    Ok(tracks)
}

fn parse_trak(trak: &[u8]) -> Result<TrackInfo, BoxError> {
    let tkhd = need(trak, b"tkhd", "tkhd")?;
    let version = *tkhd.first().ok_or(BoxError::Truncated("tkhd"))?;
    let track_id = u32_at(tkhd, if version == 1 { 20 } else { 12 }, "tkhd")?;
    let mdia = need(trak, b"mdia", "mdia")?;
    let mdhd = need(mdia, b"mdhd", "mdhd")?;
    let v = *mdhd.first().ok_or(BoxError::Truncated("mdhd"))?;
    let timescale = u32_at(mdhd, if v == 1 { 20 } else { 12 }, "mdhd")?;
    if timescale == 0 {
        return Err(BoxError::Invalid("mdhd timescale 0"));
    }
    let hdlr = need(mdia, b"hdlr", "hdlr")?;
    let h = hdlr.get(8..12).ok_or(BoxError::Truncated("hdlr"))?;
    let handler = [h[0], h[1], h[2], h[3]];
    let stsd = need(
        need(need(mdia, b"minf", "minf")?, b"stbl", "stbl")?,
        b"stsd",
        "stsd",
    )?;
    // version/flags(4), entry_count(4), then sample entries (full boxes with headers).
    let entries = stsd.get(8..).ok_or(BoxError::Truncated("stsd"))?;
    let h = header(entries)?.ok_or(BoxError::Truncated("sample entry"))?;
    let len = usize::try_from(h.size.unwrap_or(entries.len() as u64))
        .map_err(|_| BoxError::Invalid("sample entry size"))?;
    let entry = entries
        .get(..len)
        .ok_or(BoxError::Truncated("sample entry"))?;
    let (mut width, mut height, mut channels, mut samplerate) = (0, 0, 0, 0);
    if &handler == b"vide" {
        // 8 header + 6 reserved + 2 dref + 16 predefined → width(2) height(2) at 32.
        width = u32::from(u16::from_be_bytes([
            *entry.get(32).ok_or(BoxError::Truncated("visual entry"))?,
            *entry.get(33).ok_or(BoxError::Truncated("visual entry"))?,
        ]));
        height = u32::from(u16::from_be_bytes([
            *entry.get(34).ok_or(BoxError::Truncated("visual entry"))?,
            *entry.get(35).ok_or(BoxError::Truncated("visual entry"))?,
        ]));
    } else if &handler == b"soun" {
        // 8 header + 6 reserved + 2 dref + 8 reserved → channels(2) size(2) pre(2) res(2) rate(4, 16.16)
        channels = u16::from_be_bytes([
            *entry.get(24).ok_or(BoxError::Truncated("audio entry"))?,
            *entry.get(25).ok_or(BoxError::Truncated("audio entry"))?,
        ]);
        samplerate = u32_at(entry, 32, "audio entry")? >> 16;
    }
    Ok(TrackInfo {
        track_id,
        timescale,
        handler,
        sample_entry: entry.to_vec(),
        width,
        height,
        channels,
        samplerate,
        default_duration: 0,
        default_flags: 0,
    })
}

/// Timing of one movie fragment (first `traf` only: the packager writes one track per file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentInfo {
    pub track_id: u32,
    /// `tfdt` base media decode time, track timescale.
    pub decode_time: u64,
    /// Sum of the sample durations.
    pub duration: u64,
    pub samples: u32,
    /// Whether the first sample is a sync sample (a keyframe).
    pub starts_with_sync: bool,
}

/// `sample_is_non_sync_sample` in the sample flags.
const NON_SYNC: u32 = 0x0001_0000;

/// Timing of a `moof` body; `track` supplies the `trex` defaults.
pub fn parse_moof(moof: &[u8], defaults: Option<&TrackInfo>) -> Result<FragmentInfo, BoxError> {
    let traf = need(moof, b"traf", "traf")?;
    let tfhd = need(traf, b"tfhd", "tfhd")?;
    let flags = u32_at(tfhd, 0, "tfhd")? & 0x00ff_ffff;
    let track_id = u32_at(tfhd, 4, "tfhd")?;
    let mut at = 8usize;
    if flags & 0x01 != 0 {
        at += 8;
    }
    if flags & 0x02 != 0 {
        at += 4;
    }
    let mut default_duration = defaults.map_or(0, |t| t.default_duration);
    let mut default_flags = defaults.map_or(0, |t| t.default_flags);
    if flags & 0x08 != 0 {
        default_duration = u32_at(tfhd, at, "tfhd")?;
        at += 4;
    }
    if flags & 0x10 != 0 {
        at += 4;
    }
    if flags & 0x20 != 0 {
        default_flags = u32_at(tfhd, at, "tfhd")?;
    }
    let decode_time = match child(traf, b"tfdt")? {
        Some(t) => match t.first() {
            Some(1) => u64_at(t, 4, "tfdt")?,
            Some(_) => u64::from(u32_at(t, 4, "tfdt")?),
            None => return Err(BoxError::Truncated("tfdt")),
        },
        None => return Err(BoxError::Missing("tfdt")),
    };
    let mut duration = 0u64;
    let mut samples = 0u32;
    let mut first_flags: Option<u32> = None;
    for c in children(traf) {
        let (k, trun) = c?;
        if &k != b"trun" {
            continue;
        }
        let f = u32_at(trun, 0, "trun")? & 0x00ff_ffff;
        let count = u32_at(trun, 4, "trun")?;
        let mut p = 8usize;
        if f & 0x01 != 0 {
            p += 4;
        }
        let mut first_sample_flags = None;
        if f & 0x04 != 0 {
            first_sample_flags = Some(u32_at(trun, p, "trun")?);
            p += 4;
        }
        let per = [0x100u32, 0x200, 0x400, 0x800]
            .iter()
            .filter(|b| f & **b != 0)
            .count()
            * 4;
        if per == 0 {
            duration = duration.saturating_add(u64::from(count) * u64::from(default_duration));
        } else {
            let need_len = (count as usize)
                .checked_mul(per)
                .and_then(|n| n.checked_add(p))
                .ok_or(BoxError::Invalid("trun sample count"))?;
            if need_len > trun.len() {
                return Err(BoxError::Truncated("trun samples"));
            }
            for i in 0..count as usize {
                let base = p + i * per;
                let d = if f & 0x100 != 0 {
                    u32_at(trun, base, "trun")?
                } else {
                    default_duration
                };
                duration = duration.saturating_add(u64::from(d));
                if i == 0 && first_flags.is_none() && samples == 0 {
                    let mut q = base;
                    if f & 0x100 != 0 {
                        q += 4;
                    }
                    if f & 0x200 != 0 {
                        q += 4;
                    }
                    if f & 0x400 != 0 {
                        first_flags = Some(u32_at(trun, q, "trun")?);
                    }
                }
            }
        }
        if samples == 0 {
            if let Some(ff) = first_sample_flags {
                first_flags = Some(ff);
            }
        }
        samples = samples.saturating_add(count);
    }
    let ff = first_flags.unwrap_or(default_flags);
    Ok(FragmentInfo {
        track_id,
        decode_time,
        duration,
        samples,
        starts_with_sync: ff & NON_SYNC == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn headers() {
        assert_eq!(header(b"\0\0\0"), Ok(None));
        let h = header(b"\0\0\0\x10moovxxxxxxxx").ok().flatten();
        assert_eq!(h.map(|h| (h.kind, h.size)), Some((*b"moov", Some(16))));
        assert!(header(b"\0\0\0\x04moov").is_err());
        let big = [0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            header(&big).ok().flatten().and_then(|h| h.size),
            Some(1 << 32)
        );
        assert_eq!(
            header(b"\0\0\0\0mdat").ok().flatten().map(|h| h.size),
            Some(None)
        );
    }

    #[test]
    fn moof_timing() {
        let mut tfhd = vec![0, 0, 0, 0x08];
        tfhd.extend_from_slice(&1u32.to_be_bytes());
        tfhd.extend_from_slice(&512u32.to_be_bytes());
        let mut tfdt = vec![1, 0, 0, 0];
        tfdt.extend_from_slice(&9000u64.to_be_bytes());
        // trun: first-sample-flags + sizes
        let mut trun = vec![0, 0, 0x02, 0x04];
        trun.extend_from_slice(&3u32.to_be_bytes());
        trun.extend_from_slice(&0u32.to_be_bytes());
        for s in [10u32, 20, 30] {
            trun.extend_from_slice(&s.to_be_bytes());
        }
        let traf = [bx(b"tfhd", &tfhd), bx(b"tfdt", &tfdt), bx(b"trun", &trun)].concat();
        let moof = bx(b"traf", &traf);
        let f = parse_moof(&moof, None);
        assert_eq!(
            f,
            Ok(FragmentInfo {
                track_id: 1,
                decode_time: 9000,
                duration: 1536,
                samples: 3,
                starts_with_sync: true
            })
        );
        // Truncated trun: error, not panic.
        let bad = bx(
            b"traf",
            &[
                bx(b"tfhd", &tfhd),
                bx(b"tfdt", &tfdt),
                bx(b"trun", &trun[..14]),
            ]
            .concat(),
        );
        assert!(parse_moof(&bad, None).is_err());
    }
}
