//! Combining single-track CMAF into one multi-track fragmented MP4.
//!
//! A live broadcast carries each media type on its own track: one init segment (ftyp+moov with
//! one trak) per track in the catalog, and objects that are CMAF chunks (moof+mdat) of that track
//! alone. A file on disk wants one init segment describing every track and fragments that name
//! their track. This module:
//!
//! - [`merge_init`]: builds one ftyp+moov from several single-track init segments: the first
//!   one's ftyp and mvhd (next_track_ID fixed), each input's first trak with its tkhd track_ID
//!   renumbered 1, 2, …, and an mvex with one trex per track (the input's own, renumbered, or a
//!   neutral one).
//! - [`Rewriter`]: rewrites a chunk for that file: keeps its moof and mdat boxes (drops styp,
//!   prft, emsg, sidx, …), sets every tfhd's track_ID and renumbers mfhd sequence numbers
//!   across the whole file. Sizes never change, so trun data offsets (relative to the moof)
//!   stay valid; the tfdt (base media decode time) is kept and reported.
//! - [`Interleaver`]: orders chunks of several tracks by decode time, waiting a bounded time
//!   for a track that is late.
//!
//! No I/O. Every parser takes untrusted bytes and returns [`Error`] instead of panicking.
//! Written to move into `rs/media` later (it depends on nothing else of this crate).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Why some bytes could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A box is cut short or its size field is impossible.
    #[error("truncated or malformed {0} box")]
    Malformed(&'static str),
    /// A box this module needs is missing.
    #[error("missing {0} box")]
    Missing(&'static str),
    /// Valid MP4 that this module does not support.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

/// One box inside a buffer: `start..end` is the whole box, `body` the first byte after its
/// header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BoxAt {
    kind: [u8; 4],
    start: usize,
    body: usize,
    end: usize,
}

/// The boxes directly inside `buf[from..to]`.
fn children(buf: &[u8], from: usize, to: usize) -> Result<Vec<BoxAt>, Error> {
    let mut out = Vec::new();
    let mut pos = from;
    while pos < to {
        if to - pos < 8 {
            return Err(Error::Malformed("box header"));
        }
        let size32 = u32::from_be_bytes(read4(buf, pos)?);
        let kind = read4(buf, pos + 4)?;
        let (size, header) = match size32 {
            0 => (to - pos, 8),
            1 => {
                let hi = u32::from_be_bytes(read4(buf, pos + 8)?);
                let lo = u32::from_be_bytes(read4(buf, pos + 12)?);
                let large = (u64::from(hi) << 32) | u64::from(lo);
                (
                    usize::try_from(large).map_err(|_| Error::Malformed("largesize"))?,
                    16,
                )
            }
            n => (n as usize, 8),
        };
        if size < header || size > to - pos {
            return Err(Error::Malformed("box size"));
        }
        out.push(BoxAt {
            kind,
            start: pos,
            body: pos + header,
            end: pos + size,
        });
        pos += size;
    }
    Ok(out)
}

fn read4(buf: &[u8], at: usize) -> Result<[u8; 4], Error> {
    buf.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .ok_or(Error::Malformed("field"))
}

fn read_u32(buf: &[u8], at: usize) -> Result<u32, Error> {
    Ok(u32::from_be_bytes(read4(buf, at)?))
}

fn read_u64(buf: &[u8], at: usize) -> Result<u64, Error> {
    Ok((u64::from(read_u32(buf, at)?) << 32) | u64::from(read_u32(buf, at + 4)?))
}

fn write_u32(buf: &mut [u8], at: usize, v: u32) -> Result<(), Error> {
    let dst = buf.get_mut(at..at + 4).ok_or(Error::Malformed("field"))?;
    dst.copy_from_slice(&v.to_be_bytes());
    Ok(())
}

fn find(boxes: &[BoxAt], kind: &[u8; 4]) -> Option<BoxAt> {
    boxes.iter().copied().find(|b| &b.kind == kind)
}

fn child(
    buf: &[u8],
    parent: BoxAt,
    kind: &'static [u8; 4],
    what: &'static str,
) -> Result<BoxAt, Error> {
    find(&children(buf, parent.body, parent.end)?, kind).ok_or(Error::Missing(what))
}

/// A box with `body` as its payload.
fn make_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// What [`parse_init`] learned from a single-track init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInit {
    /// The media timescale (mdhd): units of tfdt and sample durations.
    pub timescale: u32,
    /// The handler type (`vide`, `soun`, …).
    pub handler: [u8; 4],
    ftyp: Vec<u8>,
    mvhd: Vec<u8>,
    trak: Vec<u8>,
    trex: Option<Vec<u8>>,
}

/// Reads an init segment (ftyp + moov); its first trak is the track.
pub fn parse_init(init: &[u8]) -> Result<TrackInit, Error> {
    let top = children(init, 0, init.len())?;
    let moov = find(&top, b"moov").ok_or(Error::Missing("moov"))?;
    let ftyp = find(&top, b"ftyp").map(|b| init[b.start..b.end].to_vec());
    let inner = children(init, moov.body, moov.end)?;
    let mvhd = find(&inner, b"mvhd").ok_or(Error::Missing("mvhd"))?;
    let trak = find(&inner, b"trak").ok_or(Error::Missing("trak"))?;
    let mdia = child(init, trak, b"mdia", "mdia")?;
    let mdia_children = children(init, mdia.body, mdia.end)?;
    let mdhd = find(&mdia_children, b"mdhd").ok_or(Error::Missing("mdhd"))?;
    let version = *init.get(mdhd.body).ok_or(Error::Malformed("mdhd"))?;
    let ts_at = mdhd.body + if version == 1 { 20 } else { 12 };
    let timescale = read_u32(init, ts_at).map_err(|_| Error::Malformed("mdhd"))?;
    if timescale == 0 {
        return Err(Error::Malformed("mdhd"));
    }
    let handler = match find(&mdia_children, b"hdlr") {
        Some(h) => read4(init, h.body + 8).map_err(|_| Error::Malformed("hdlr"))?,
        None => *b"\0\0\0\0",
    };
    let trex = match find(&inner, b"mvex") {
        Some(mvex) => find(&children(init, mvex.body, mvex.end)?, b"trex")
            .map(|b| init[b.start..b.end].to_vec()),
        None => None,
    };
    Ok(TrackInit {
        timescale,
        handler,
        ftyp: ftyp.unwrap_or_else(default_ftyp),
        mvhd: init[mvhd.start..mvhd.end].to_vec(),
        trak: init[trak.start..trak.end].to_vec(),
        trex,
    })
}

fn default_ftyp() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(b"iso6");
    body.extend_from_slice(&0u32.to_be_bytes());
    for brand in [b"iso6", b"cmfc", b"mp41"] {
        body.extend_from_slice(brand);
    }
    make_box(b"ftyp", &body)
}

/// One init segment for several tracks; track `i` of the input gets track_ID `i + 1`.
pub fn merge_init(tracks: &[TrackInit]) -> Result<Vec<u8>, Error> {
    let first = tracks.first().ok_or(Error::Missing("trak"))?;
    if tracks.len() > 255 {
        return Err(Error::Unsupported("more than 255 tracks"));
    }
    let mut mvhd = first.mvhd.clone();
    let len = mvhd.len();
    if len < 12 {
        return Err(Error::Malformed("mvhd"));
    }
    // next_track_ID is the last field of mvhd.
    write_u32(&mut mvhd, len - 4, tracks.len() as u32 + 1)?;

    let mut moov = mvhd;
    let mut mvex = Vec::new();
    for (i, t) in tracks.iter().enumerate() {
        let id = i as u32 + 1;
        let mut trak = t.trak.clone();
        let outer = children(&trak, 0, trak.len())?;
        let trak_box = outer.first().copied().ok_or(Error::Missing("trak"))?;
        let tkhd = child(&trak, trak_box, b"tkhd", "tkhd")?;
        let version = *trak.get(tkhd.body).ok_or(Error::Malformed("tkhd"))?;
        let id_at = tkhd.body + if version == 1 { 20 } else { 12 };
        write_u32(&mut trak, id_at, id).map_err(|_| Error::Malformed("tkhd"))?;
        moov.extend_from_slice(&trak);
        match &t.trex {
            Some(trex) if trex.len() >= 32 => {
                let mut trex = trex.clone();
                write_u32(&mut trex, 12, id)?;
                mvex.extend_from_slice(&trex);
            }
            _ => {
                let mut body = vec![0u8; 4]; // version + flags
                body.extend_from_slice(&id.to_be_bytes());
                body.extend_from_slice(&1u32.to_be_bytes()); // sample description index
                body.extend_from_slice(&[0u8; 12]); // duration, size, flags
                mvex.extend_from_slice(&make_box(b"trex", &body));
            }
        }
    }
    moov.extend_from_slice(&make_box(b"mvex", &mvex));
    let mut out = first.ftyp.clone();
    out.extend_from_slice(&make_box(b"moov", &moov));
    Ok(out)
}

/// A chunk rewritten by [`Rewriter::rewrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// moof+mdat boxes, ready to append to the file.
    pub data: Vec<u8>,
    /// The first traf's base media decode time (tfdt), in the track's timescale.
    pub decode_time: Option<u64>,
}

/// Rewrites chunks for the merged file: track ids, and mfhd sequence numbers counting up
/// from 1 across every track.
#[derive(Debug, Clone, Default)]
pub struct Rewriter {
    sequence: u32,
}

impl Rewriter {
    /// A rewriter whose first fragment gets sequence number 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the moof and mdat boxes of `chunk`, sets their track to `track_id`.
    pub fn rewrite(&mut self, chunk: &[u8], track_id: u32) -> Result<Rewritten, Error> {
        let top = children(chunk, 0, chunk.len())?;
        let mut data = Vec::with_capacity(chunk.len());
        let mut decode_time = None;
        let mut moofs = 0;
        for b in &top {
            match &b.kind {
                b"moof" => {
                    let offset = data.len();
                    data.extend_from_slice(&chunk[b.start..b.end]);
                    let moof = BoxAt {
                        kind: b.kind,
                        start: offset,
                        body: offset + (b.body - b.start),
                        end: offset + (b.end - b.start),
                    };
                    let dt = self.patch_moof(&mut data, moof, track_id)?;
                    if decode_time.is_none() {
                        decode_time = dt;
                    }
                    moofs += 1;
                }
                b"mdat" => data.extend_from_slice(&chunk[b.start..b.end]),
                _ => {}
            }
        }
        if moofs == 0 {
            return Err(Error::Missing("moof"));
        }
        Ok(Rewritten { data, decode_time })
    }

    fn patch_moof(
        &mut self,
        buf: &mut [u8],
        moof: BoxAt,
        track_id: u32,
    ) -> Result<Option<u64>, Error> {
        let inner = children(buf, moof.body, moof.end)?;
        let mut decode_time = None;
        let mut trafs = 0;
        for b in inner {
            match &b.kind {
                b"mfhd" => {
                    self.sequence = self.sequence.wrapping_add(1).max(1);
                    write_u32(buf, b.body + 4, self.sequence)
                        .map_err(|_| Error::Malformed("mfhd"))?;
                }
                b"traf" => {
                    trafs += 1;
                    let parts = children(buf, b.body, b.end)?;
                    let tfhd = find(&parts, b"tfhd").ok_or(Error::Missing("tfhd"))?;
                    let flags = read_u32(buf, tfhd.body).map_err(|_| Error::Malformed("tfhd"))?
                        & 0x00ff_ffff;
                    if flags & 0x1 != 0 {
                        // Absolute data offsets would point into the original object.
                        return Err(Error::Unsupported("tfhd base-data-offset"));
                    }
                    write_u32(buf, tfhd.body + 4, track_id)
                        .map_err(|_| Error::Malformed("tfhd"))?;
                    if let Some(tfdt) = find(&parts, b"tfdt") {
                        let version = *buf.get(tfdt.body).ok_or(Error::Malformed("tfdt"))?;
                        let t = if version == 1 {
                            read_u64(buf, tfdt.body + 4)
                        } else {
                            read_u32(buf, tfdt.body + 4).map(u64::from)
                        }
                        .map_err(|_| Error::Malformed("tfdt"))?;
                        decode_time.get_or_insert(t);
                    }
                }
                _ => {}
            }
        }
        if trafs == 0 {
            return Err(Error::Missing("traf"));
        }
        Ok(decode_time)
    }
}

/// Splits a fragmented MP4 (one track) into its init segment and its chunks (each moof with
/// the boxes after it up to the next moof). For tools that publish files as live tracks.
pub fn split_fragmented(file: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), Error> {
    let top = children(file, 0, file.len())?;
    let first_moof = top
        .iter()
        .position(|b| &b.kind == b"moof")
        .ok_or(Error::Missing("moof"))?;
    let init_end = top[first_moof].start;
    let init = top[..first_moof]
        .iter()
        .filter(|b| &b.kind == b"ftyp" || &b.kind == b"moov")
        .flat_map(|b| file[b.start..b.end].iter().copied())
        .collect::<Vec<u8>>();
    let _ = init_end;
    let mut chunks = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for b in &top[first_moof..] {
        if &b.kind == b"moof" && !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
        }
        if matches!(&b.kind, b"moof" | b"mdat") {
            current.extend_from_slice(&file[b.start..b.end]);
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    Ok((init, chunks))
}

/// Adds `delta` to every tfdt in a chunk (in place). For looping a file as a live source.
pub fn shift_decode_time(chunk: &mut [u8], delta: u64) -> Result<(), Error> {
    let top = children(chunk, 0, chunk.len())?;
    for moof in top.iter().filter(|b| &b.kind == b"moof") {
        for traf in children(chunk, moof.body, moof.end)?
            .iter()
            .filter(|b| &b.kind == b"traf")
        {
            for tfdt in children(chunk, traf.body, traf.end)?
                .iter()
                .filter(|b| &b.kind == b"tfdt")
            {
                let version = *chunk.get(tfdt.body).ok_or(Error::Malformed("tfdt"))?;
                if version == 1 {
                    let t = read_u64(chunk, tfdt.body + 4)?.wrapping_add(delta);
                    write_u32(chunk, tfdt.body + 4, (t >> 32) as u32)?;
                    write_u32(chunk, tfdt.body + 8, t as u32)?;
                } else {
                    let t = u64::from(read_u32(chunk, tfdt.body + 4)?).wrapping_add(delta);
                    let t = u32::try_from(t).map_err(|_| Error::Unsupported("tfdt v0 overflow"))?;
                    write_u32(chunk, tfdt.body + 4, t)?;
                }
            }
        }
    }
    Ok(())
}

/// A chunk waiting in the [`Interleaver`], with whatever the caller attaches to it.
#[derive(Debug)]
struct Waiting<T> {
    /// Decode time in nanoseconds.
    at_ns: u128,
    since: Instant,
    item: T,
}

/// Orders chunks of several tracks by decode time. A chunk leaves once every unfinished track
/// has a chunk waiting (the smallest decode time goes first), or once it has waited
/// `max_wait` (a track that stalls delays the others only that long).
#[derive(Debug)]
pub struct Interleaver<T> {
    queues: Vec<VecDeque<Waiting<T>>>,
    timescales: Vec<u32>,
    done: Vec<bool>,
    max_wait: Duration,
}

impl<T> Interleaver<T> {
    /// One queue per track, with these timescales.
    pub fn new(timescales: Vec<u32>, max_wait: Duration) -> Self {
        Self {
            queues: timescales.iter().map(|_| VecDeque::new()).collect(),
            done: vec![false; timescales.len()],
            timescales,
            max_wait,
        }
    }

    /// Queues a chunk of `track` with decode time `decode_time` (track timescale).
    pub fn push(&mut self, track: usize, decode_time: u64, now: Instant, item: T) {
        let Some(q) = self.queues.get_mut(track) else {
            return;
        };
        let ts = u128::from(self.timescales[track].max(1));
        q.push_back(Waiting {
            at_ns: u128::from(decode_time) * 1_000_000_000 / ts,
            since: now,
            item,
        });
    }

    /// Marks a track finished: the others no longer wait for it.
    pub fn finish(&mut self, track: usize) {
        if let Some(d) = self.done.get_mut(track) {
            *d = true;
        }
    }

    /// Chunks that may leave now, in order.
    pub fn ready(&mut self, now: Instant) -> Vec<T> {
        let mut out = Vec::new();
        loop {
            let all_waiting = self
                .queues
                .iter()
                .zip(&self.done)
                .all(|(q, done)| *done || !q.is_empty());
            let overdue = self.queues.iter().any(|q| {
                q.front()
                    .is_some_and(|w| now.saturating_duration_since(w.since) >= self.max_wait)
            });
            if !(all_waiting || overdue) {
                break;
            }
            match self.pop_min() {
                Some(item) => out.push(item),
                None => break,
            }
        }
        out
    }

    /// Everything still queued, in order.
    pub fn drain(&mut self) -> Vec<T> {
        let mut out = Vec::new();
        while let Some(item) = self.pop_min() {
            out.push(item);
        }
        out
    }

    fn pop_min(&mut self) -> Option<T> {
        let idx = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|w| (w.at_ns, i)))
            .min()?
            .1;
        self.queues[idx].pop_front().map(|w| w.item)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn full_box(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut b = vec![version];
        b.extend_from_slice(&flags.to_be_bytes()[1..]);
        b.extend_from_slice(body);
        make_box(kind, &b)
    }

    fn u32s(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    /// A single-track init segment like ffmpeg's (track_ID 1).
    fn init(handler: &[u8; 4], timescale: u32, with_trex: bool) -> Vec<u8> {
        let mut mvhd = u32s(&[0, 0, 1000, 0]);
        mvhd.extend_from_slice(&[0u8; 76]);
        mvhd.extend_from_slice(&2u32.to_be_bytes());
        let mvhd = full_box(b"mvhd", 0, 0, &mvhd);
        let tkhd = full_box(
            b"tkhd",
            0,
            3,
            &[u32s(&[0, 0, 1, 0, 0]), vec![0u8; 60]].concat(),
        );
        let mdhd = full_box(
            b"mdhd",
            0,
            0,
            &[u32s(&[0, 0, timescale, 0]), vec![0x55, 0xc4, 0, 0]].concat(),
        );
        let hdlr = full_box(
            b"hdlr",
            0,
            0,
            &[u32s(&[0]), handler.to_vec(), vec![0u8; 13]].concat(),
        );
        let minf = make_box(b"minf", &make_box(b"stbl", &[]));
        let mdia = make_box(b"mdia", &[mdhd, hdlr, minf].concat());
        let trak = make_box(b"trak", &[tkhd, mdia].concat());
        let mut moov = [mvhd, trak].concat();
        if with_trex {
            let trex = full_box(b"trex", 0, 0, &u32s(&[1, 1, 512, 0, 0x0101_0000]));
            moov.extend_from_slice(&make_box(b"mvex", &trex));
        }
        let ftyp = make_box(b"ftyp", b"iso5\0\0\0\x01iso6mp41");
        [ftyp, make_box(b"moov", &moov)].concat()
    }

    fn chunk(decode_time: u64, payload: &[u8]) -> Vec<u8> {
        let mfhd = full_box(b"mfhd", 0, 0, &u32s(&[7]));
        let tfhd = full_box(b"tfhd", 0, 0x020000, &u32s(&[1]));
        let tfdt = full_box(b"tfdt", 1, 0, &decode_time.to_be_bytes());
        let trun = full_box(b"trun", 0, 0x1, &u32s(&[1, 0]));
        let traf = make_box(b"traf", &[tfhd, tfdt, trun].concat());
        let styp = make_box(b"styp", b"msdh\0\0\0\0");
        [
            styp,
            make_box(b"moof", &[mfhd, traf].concat()),
            make_box(b"mdat", payload),
        ]
        .concat()
    }

    fn track_ids(buf: &[u8]) -> Vec<u32> {
        let mut ids = Vec::new();
        let top = children(buf, 0, buf.len()).unwrap();
        let moov = find(&top, b"moov").unwrap();
        for b in children(buf, moov.body, moov.end).unwrap() {
            if &b.kind == b"trak" {
                let tkhd = child(buf, b, b"tkhd", "tkhd").unwrap();
                ids.push(read_u32(buf, tkhd.body + 12).unwrap());
            }
            if &b.kind == b"mvex" {
                for t in children(buf, b.body, b.end).unwrap() {
                    ids.push(1000 + read_u32(buf, t.body + 4).unwrap());
                }
            }
        }
        ids
    }

    #[test]
    fn merges_two_single_track_inits() {
        let v = parse_init(&init(b"vide", 90000, true)).unwrap();
        let a = parse_init(&init(b"soun", 48000, false)).unwrap();
        assert_eq!((v.timescale, &v.handler), (90000, b"vide"));
        assert_eq!((a.timescale, &a.handler), (48000, b"soun"));
        let merged = merge_init(&[v, a]).unwrap();
        assert_eq!(track_ids(&merged), vec![1, 2, 1001, 1002]);
        // mvhd next_track_ID = 3.
        let top = children(&merged, 0, merged.len()).unwrap();
        let moov = find(&top, b"moov").unwrap();
        let mvhd = child(&merged, moov, b"mvhd", "mvhd").unwrap();
        assert_eq!(read_u32(&merged, mvhd.end - 4).unwrap(), 3);
        // The merged init parses again, and its tracks keep their timescales.
        assert_eq!(parse_init(&merged).unwrap().timescale, 90000);
    }

    #[test]
    fn rewrites_track_and_sequence_keeps_tfdt() {
        let mut r = Rewriter::new();
        let a = r.rewrite(&chunk(1234, b"abc"), 2).unwrap();
        let b = r.rewrite(&chunk(5678, b"de"), 1).unwrap();
        assert_eq!(a.decode_time, Some(1234));
        assert_eq!(b.decode_time, Some(5678));
        // styp dropped; same sizes otherwise.
        assert_eq!(a.data.len(), chunk(0, b"abc").len() - 16);
        let top = children(&a.data, 0, a.data.len()).unwrap();
        assert_eq!(
            top.iter().map(|b| b.kind).collect::<Vec<_>>(),
            vec![*b"moof", *b"mdat"]
        );
        let mfhd = child(&a.data, top[0], b"mfhd", "mfhd").unwrap();
        assert_eq!(read_u32(&a.data, mfhd.body + 4).unwrap(), 1);
        let traf = child(&a.data, top[0], b"traf", "traf").unwrap();
        let tfhd = child(&a.data, traf, b"tfhd", "tfhd").unwrap();
        assert_eq!(read_u32(&a.data, tfhd.body + 4).unwrap(), 2);
        let top = children(&b.data, 0, b.data.len()).unwrap();
        let mfhd = child(&b.data, top[0], b"mfhd", "mfhd").unwrap();
        assert_eq!(read_u32(&b.data, mfhd.body + 4).unwrap(), 2);
    }

    #[test]
    fn split_and_shift() {
        let file = [init(b"vide", 1000, true), chunk(0, b"x"), chunk(40, b"y")].concat();
        let (i, chunks) = split_fragmented(&file).unwrap();
        assert_eq!(parse_init(&i).unwrap().timescale, 1000);
        assert_eq!(chunks.len(), 2);
        let mut c = chunks[1].clone();
        shift_decode_time(&mut c, 1000).unwrap();
        assert_eq!(
            Rewriter::new().rewrite(&c, 1).unwrap().decode_time,
            Some(1040)
        );
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        let good = chunk(9, b"payload");
        for cut in 0..good.len() {
            let _ = Rewriter::new().rewrite(&good[..cut], 1);
            let _ = split_fragmented(&good[..cut]);
            let _ = parse_init(&good[..cut]);
        }
        let i = init(b"vide", 1000, true);
        for cut in 0..i.len() {
            let _ = parse_init(&i[..cut]);
        }
        // Corrupt size fields everywhere.
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let mut c = good.clone();
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = x as usize % c.len();
            c[at] = (x >> 8) as u8;
            let _ = Rewriter::new().rewrite(&c, 1);
            let _ = shift_decode_time(&mut c, 5);
        }
        assert!(Rewriter::new().rewrite(b"", 1).is_err());
        let tiny = make_box(b"moof", &[]);
        assert_eq!(
            Rewriter::new().rewrite(&tiny, 1),
            Err(Error::Missing("traf"))
        );
    }

    #[test]
    fn interleaves_by_decode_time_with_bounded_wait() {
        let t0 = Instant::now();
        let mut il = Interleaver::new(vec![90000, 48000], Duration::from_millis(500));
        il.push(0, 0, t0, "v0");
        il.push(0, 3000, t0, "v1");
        assert!(il.ready(t0).is_empty(), "waits for audio");
        il.push(1, 1024, t0, "a0");
        // v0 (0 s) < a0 (21 ms) < v1 (33 ms); v1 waits for the next audio chunk.
        assert_eq!(il.ready(t0), vec!["v0", "a0"]);
        assert_eq!(il.ready(t0 + Duration::from_millis(600)), vec!["v1"]);
        il.push(1, 2048, t0, "a1");
        il.finish(0);
        assert_eq!(il.ready(t0), vec!["a1"]);
        il.push(1, 4096, t0, "a2");
        assert_eq!(il.drain(), vec!["a2"]);
    }
}
