//! An incremental reader for fragmented MP4 streams (ffmpeg's ladder output): the moov's tracks,
//! then the samples of each moof+mdat pair. Bounded: boxes above 64 MiB are refused.

use bytes::{Buf, Bytes, BytesMut};

use crate::{Error, Reader as R};

const MAX_BOX: u64 = 64 << 20;
const MAX_SAMPLES: u32 = 1 << 16;

/// One track of the moov.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub track_id: u32,
    pub timescale: u32,
    /// `vide`, `soun`, …
    pub handler: [u8; 4],
    /// The first sample entry box, verbatim.
    pub sample_entry: Vec<u8>,
    /// From the visual sample entry (0 for audio).
    pub width: u32,
    pub height: u32,
    default_duration: u32,
    default_size: u32,
    default_flags: u32,
    next_dts: u64,
}

/// One sample read from a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub track_id: u32,
    /// Decode time in the track's timescale.
    pub dts: u64,
    pub duration: u32,
    pub cts: i32,
    pub sync: bool,
    pub data: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Init(Vec<Track>),
    Samples(Vec<Sample>),
}

/// Feed bytes with [`Reader::push`], then drain [`Reader::next`].
#[derive(Debug, Default)]
pub struct Reader {
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    offset: u64,
    tracks: Vec<Track>,
    /// The last moof and its stream offset, waiting for its mdat.
    moof: Option<(Bytes, u64)>,
}

struct Run {
    track: usize,
    data_offset: i64,
    entries: Vec<(u32, u32, u32, i32)>,
    base_dts: u64,
}

impl Reader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// The next event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, Error> {
        loop {
            if self.buf.len() < 8 {
                return Ok(None);
            }
            let mut size = u64::from(u32::from_be_bytes([
                self.buf[0],
                self.buf[1],
                self.buf[2],
                self.buf[3],
            ]));
            let kind = [self.buf[4], self.buf[5], self.buf[6], self.buf[7]];
            let mut header = 8;
            if size == 1 {
                if self.buf.len() < 16 {
                    return Ok(None);
                }
                let mut a = [0u8; 8];
                a.copy_from_slice(&self.buf[8..16]);
                size = u64::from_be_bytes(a);
                header = 16;
            }
            if size < header as u64 || size > MAX_BOX {
                return Err(Error::TooLarge("mp4 box"));
            }
            if (self.buf.len() as u64) < size {
                return Ok(None);
            }
            let start = self.offset;
            let whole = self.buf.split_to(size as usize).freeze();
            self.offset += size;
            let body = whole.slice(header..);
            match &kind {
                b"moov" => {
                    self.tracks = parse_moov(&body)?;
                    return Ok(Some(Event::Init(self.tracks.clone())));
                }
                b"moof" => self.moof = Some((whole, start)),
                b"mdat" => {
                    if let Some((moof, moof_start)) = self.moof.take() {
                        let samples =
                            self.samples(&moof, moof_start, start + header as u64, &body)?;
                        return Ok(Some(Event::Samples(samples)));
                    }
                }
                _ => {}
            }
        }
    }

    fn samples(
        &mut self,
        moof: &Bytes,
        moof_start: u64,
        mdat_data_start: u64,
        mdat: &Bytes,
    ) -> Result<Vec<Sample>, Error> {
        let mut runs = Vec::new();
        for (kind, traf) in children(&moof[8..])? {
            if &kind == b"traf" {
                self.parse_traf(traf, moof_start, &mut runs)?;
            }
        }
        let mut out = Vec::new();
        for run in runs {
            let mut pos = run.data_offset - (mdat_data_start - moof_start) as i64;
            let tid = self.tracks[run.track].track_id;
            let mut dts = run.base_dts;
            for (duration, size, flags, cts) in run.entries {
                let begin =
                    usize::try_from(pos).map_err(|_| Error::invalid("trun", "data before mdat"))?;
                let end = begin
                    .checked_add(size as usize)
                    .filter(|&e| e <= mdat.len())
                    .ok_or(Error::Truncated("mdat"))?;
                out.push(Sample {
                    track_id: tid,
                    dts,
                    duration,
                    cts,
                    sync: flags & 0x0001_0000 == 0,
                    data: mdat.slice(begin..end),
                });
                dts += u64::from(duration);
                pos += i64::from(size);
            }
            self.tracks[run.track].next_dts = dts;
        }
        Ok(out)
    }

    fn parse_traf(
        &mut self,
        traf: &[u8],
        moof_start: u64,
        runs: &mut Vec<Run>,
    ) -> Result<(), Error> {
        let mut track = None;
        let (mut dur, mut size, mut flags) = (0, 0, 0);
        let mut base: Option<u64> = None;
        let mut tfdt = None;
        for (kind, b) in children(traf)? {
            let mut r = R::new(b, "traf");
            match &kind {
                b"tfhd" => {
                    let vf = r.u32()?;
                    let f = vf & 0x00ff_ffff;
                    let id = r.u32()?;
                    let idx = self
                        .tracks
                        .iter()
                        .position(|t| t.track_id == id)
                        .ok_or_else(|| Error::invalid("tfhd", "unknown track"))?;
                    let t = &self.tracks[idx];
                    (dur, size, flags) = (t.default_duration, t.default_size, t.default_flags);
                    if f & 0x01 != 0 {
                        base = Some(r.u64()?);
                    }
                    if f & 0x02 != 0 {
                        r.u32()?;
                    }
                    if f & 0x08 != 0 {
                        dur = r.u32()?;
                    }
                    if f & 0x10 != 0 {
                        size = r.u32()?;
                    }
                    if f & 0x20 != 0 {
                        flags = r.u32()?;
                    }
                    track = Some(idx);
                }
                b"tfdt" => {
                    let v = r.u8()?;
                    r.skip(3)?;
                    tfdt = Some(if v == 1 {
                        r.u64()?
                    } else {
                        u64::from(r.u32()?)
                    });
                }
                b"trun" => {
                    let idx = track.ok_or_else(|| Error::invalid("traf", "trun before tfhd"))?;
                    let vf = r.u32()?;
                    let version = vf >> 24;
                    let f = vf & 0x00ff_ffff;
                    let count = r.u32()?;
                    if count > MAX_SAMPLES {
                        return Err(Error::TooLarge("trun"));
                    }
                    let data_offset = if f & 0x01 != 0 {
                        i64::from(r.u32()? as i32)
                    } else {
                        0
                    };
                    let base_rel = match base {
                        Some(b) => b as i64 - moof_start as i64,
                        None => 0,
                    };
                    let mut first_flags = None;
                    if f & 0x04 != 0 {
                        first_flags = Some(r.u32()?);
                    }
                    let mut entries = Vec::with_capacity(count.min(1024) as usize);
                    for i in 0..count {
                        let d = if f & 0x100 != 0 { r.u32()? } else { dur };
                        let s = if f & 0x200 != 0 { r.u32()? } else { size };
                        let mut fl = if f & 0x400 != 0 { r.u32()? } else { flags };
                        if i == 0 {
                            if let Some(ff) = first_flags {
                                fl = ff;
                            }
                        }
                        let c = if f & 0x800 != 0 {
                            let raw = r.u32()?;
                            if version == 0 {
                                raw.min(i32::MAX as u32) as i32
                            } else {
                                raw as i32
                            }
                        } else {
                            0
                        };
                        entries.push((d, s, fl, c));
                    }
                    let base_dts = tfdt.unwrap_or(self.tracks[idx].next_dts);
                    let run_dts: u64 = entries.iter().map(|e| u64::from(e.0)).sum();
                    self.tracks[idx].next_dts = base_dts + run_dts;
                    tfdt = Some(base_dts + run_dts);
                    runs.push(Run {
                        track: idx,
                        data_offset: base_rel + data_offset,
                        entries,
                        base_dts,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Child boxes of a container body: (type, body).
type Boxes<'a> = Vec<([u8; 4], &'a [u8])>;

fn children(mut b: &[u8]) -> Result<Boxes<'_>, Error> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 8 {
            return Err(Error::Truncated("mp4 box"));
        }
        let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let kind = [b[4], b[5], b[6], b[7]];
        if size < 8 || size > b.len() {
            return Err(Error::invalid("mp4 box", "bad size"));
        }
        out.push((kind, &b[8..size]));
        b.advance(size);
        if out.len() > 4096 {
            return Err(Error::TooLarge("mp4 box children"));
        }
    }
    Ok(out)
}

fn child<'a>(b: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, Error> {
    Ok(children(b)?
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, v)| v))
}

fn parse_moov(moov: &[u8]) -> Result<Vec<Track>, Error> {
    let mut tracks = Vec::new();
    let mut trex = Vec::new();
    for (kind, b) in children(moov)? {
        match &kind {
            b"trak" => tracks.push(parse_trak(b)?),
            b"mvex" => {
                for (k, t) in children(b)? {
                    if &k == b"trex" {
                        let mut r = R::new(t, "trex");
                        r.skip(4)?;
                        trex.push((r.u32()?, {
                            r.u32()?;
                            (r.u32()?, r.u32()?, r.u32()?)
                        }));
                    }
                }
            }
            _ => {}
        }
    }
    for (id, (d, s, f)) in trex {
        if let Some(t) = tracks.iter_mut().find(|t| t.track_id == id) {
            (t.default_duration, t.default_size, t.default_flags) = (d, s, f);
        }
    }
    Ok(tracks)
}

fn parse_trak(trak: &[u8]) -> Result<Track, Error> {
    let missing = |w: &'static str| Error::invalid("moov", format!("missing {w}"));
    let tkhd = child(trak, b"tkhd")?.ok_or_else(|| missing("tkhd"))?;
    let mut r = R::new(tkhd, "tkhd");
    let v = r.u8()?;
    r.skip(3)?;
    r.skip(if v == 1 { 16 } else { 8 })?;
    let track_id = r.u32()?;
    let mdia = child(trak, b"mdia")?.ok_or_else(|| missing("mdia"))?;
    let mdhd = child(mdia, b"mdhd")?.ok_or_else(|| missing("mdhd"))?;
    let mut r = R::new(mdhd, "mdhd");
    let v = r.u8()?;
    r.skip(3)?;
    r.skip(if v == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    if timescale == 0 {
        return Err(Error::invalid("mdhd", "zero timescale"));
    }
    let hdlr = child(mdia, b"hdlr")?.ok_or_else(|| missing("hdlr"))?;
    let mut r = R::new(hdlr, "hdlr");
    r.skip(8)?;
    let h = r.bytes(4)?;
    let handler = [h[0], h[1], h[2], h[3]];
    let minf = child(mdia, b"minf")?.ok_or_else(|| missing("minf"))?;
    let stbl = child(minf, b"stbl")?.ok_or_else(|| missing("stbl"))?;
    let stsd = child(stbl, b"stsd")?.ok_or_else(|| missing("stsd"))?;
    let mut r = R::new(stsd, "stsd");
    r.skip(8)?;
    let entries = r.rest();
    let size = entries
        .get(..4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
        .ok_or(Error::Truncated("stsd"))?;
    let sample_entry = entries
        .get(..size)
        .ok_or(Error::Truncated("stsd"))?
        .to_vec();
    let (mut width, mut height) = (0, 0);
    if &handler == b"vide" && sample_entry.len() >= 8 + 28 {
        width = u32::from(u16::from_be_bytes([sample_entry[32], sample_entry[33]]));
        height = u32::from(u16::from_be_bytes([sample_entry[34], sample_entry[35]]));
    }
    Ok(Track {
        track_id,
        timescale,
        handler,
        sample_entry,
        width,
        height,
        default_duration: 0,
        default_size: 0,
        default_flags: 0,
        next_dts: 0,
    })
}

/// The codec configuration box payload (avcC/hvcC/av1C/esds…) inside a sample entry.
pub fn entry_config<'a>(sample_entry: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    // Visual sample entries have 78 bytes of fixed fields after the 8-byte header.
    let body = sample_entry.get(8 + 78..)?;
    children(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, v)| v)
}
