//! CMAF writer: init segments (ftyp+moov) and chunks (moof+mdat), one track each (CMSF).

use bytes::Bytes;

use crate::codec::{parse_asc, parse_opus_head, AudioConfig, VideoConfig};
use crate::Error;

/// Writes a box: size placeholder, type, body, then patches the size.
fn bx(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn full(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    bx(out, kind, |o| {
        o.push(version);
        o.extend_from_slice(&flags.to_be_bytes()[1..]);
        body(o);
    });
}

fn u16b(o: &mut Vec<u8>, v: u16) {
    o.extend_from_slice(&v.to_be_bytes());
}
fn u32b(o: &mut Vec<u8>, v: u32) {
    o.extend_from_slice(&v.to_be_bytes());
}

/// What an init segment describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    Video { width: u32, height: u32 },
    Audio { sample_rate: u32, channels: u16 },
}

/// One track's description for [`init_segment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInit {
    pub track_id: u32,
    pub timescale: u32,
    pub media: Media,
    /// The complete sample entry box (`avc1`, `hvc1`, `av01`, `mp4a`, `Opus`).
    pub sample_entry: Vec<u8>,
}

/// A visual sample entry for a codec configuration.
pub fn video_sample_entry(cfg: &VideoConfig, width: u32, height: u32) -> Vec<u8> {
    let (kind, cfg_kind, rec): (&[u8; 4], &[u8; 4], &[u8]) = match cfg {
        VideoConfig::Avc(r) => (b"avc1", b"avcC", r),
        VideoConfig::Hevc(r) => (b"hvc1", b"hvcC", r),
        VideoConfig::Av1(r) => (b"av01", b"av1C", r),
    };
    let mut out = Vec::new();
    bx(&mut out, kind, |o| {
        o.extend_from_slice(&[0; 6]);
        u16b(o, 1); // data_reference_index
        o.extend_from_slice(&[0; 16]);
        u16b(o, width.min(0xffff) as u16);
        u16b(o, height.min(0xffff) as u16);
        u32b(o, 0x0048_0000);
        u32b(o, 0x0048_0000);
        u32b(o, 0);
        u16b(o, 1); // frame_count
        o.extend_from_slice(&[0; 32]); // compressorname
        u16b(o, 0x0018);
        u16b(o, 0xffff);
        bx(o, cfg_kind, |o| o.extend_from_slice(rec));
    });
    out
}

fn descriptor(o: &mut Vec<u8>, tag: u8, body: &[u8]) {
    o.push(tag);
    let n = body.len() as u32;
    // 4-byte length form, understood everywhere.
    o.extend_from_slice(&[
        0x80 | ((n >> 21) & 0x7f) as u8,
        0x80 | ((n >> 14) & 0x7f) as u8,
        0x80 | ((n >> 7) & 0x7f) as u8,
        (n & 0x7f) as u8,
    ]);
    o.extend_from_slice(body);
}

/// An audio sample entry; returns it with the sample rate and channel count.
pub fn audio_sample_entry(cfg: &AudioConfig) -> Result<(Vec<u8>, u32, u16), Error> {
    let mut out = Vec::new();
    let (rate, channels) = match cfg {
        AudioConfig::Aac(asc) => {
            let a = parse_asc(asc)?;
            let channels = u16::from(a.channels.max(1));
            let rate = a.sample_rate;
            bx(&mut out, b"mp4a", |o| {
                audio_entry_head(o, channels, rate);
                full(o, b"esds", 0, 0, |o| {
                    let mut dsi = Vec::new();
                    descriptor(&mut dsi, 0x05, asc);
                    let mut dcd = vec![0x40, 0x15, 0, 0, 0];
                    dcd.extend_from_slice(&[0; 8]);
                    dcd.extend_from_slice(&dsi);
                    let mut es = vec![0, 1, 0];
                    descriptor(&mut es, 0x04, &dcd);
                    descriptor(&mut es, 0x06, &[0x02]);
                    descriptor(o, 0x03, &es);
                });
            });
            (rate, channels)
        }
        AudioConfig::Opus(head) => {
            let h = parse_opus_head(head)?;
            let channels = u16::from(h.channels.max(1));
            bx(&mut out, b"Opus", |o| {
                audio_entry_head(o, channels, 48000);
                bx(o, b"dOps", |o| {
                    o.push(0);
                    o.push(h.channels);
                    u16b(o, h.pre_skip);
                    u32b(o, h.input_rate);
                    o.extend_from_slice(&h.gain.to_be_bytes());
                    o.push(h.mapping_family);
                    if h.mapping_family != 0 {
                        // Stream count, coupled count, mapping: copied from the OpusHead.
                        if let Some(rest) = head.get(19..) {
                            o.extend_from_slice(rest);
                        }
                    }
                });
            });
            (48000, channels)
        }
    };
    Ok((out, rate, channels))
}

fn audio_entry_head(o: &mut Vec<u8>, channels: u16, rate: u32) {
    o.extend_from_slice(&[0; 6]);
    u16b(o, 1);
    o.extend_from_slice(&[0; 8]);
    u16b(o, channels);
    u16b(o, 16);
    u32b(o, 0);
    u32b(o, rate.min(0xffff) << 16);
}

/// ftyp + moov for one track, with an empty sample table and mvex/trex (fragmented).
pub fn init_segment(t: &TrackInit) -> Vec<u8> {
    let mut out = Vec::new();
    bx(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso6");
        u32b(o, 0);
        for b in [b"iso6", b"cmfc", b"isom", b"mp41"] {
            o.extend_from_slice(b);
        }
    });
    bx(&mut out, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            u32b(o, 0);
            u32b(o, 0);
            u32b(o, 1000);
            u32b(o, 0);
            u32b(o, 0x0001_0000);
            u16b(o, 0x0100);
            o.extend_from_slice(&[0; 10]);
            matrix(o);
            o.extend_from_slice(&[0; 24]);
            u32b(o, t.track_id + 1);
        });
        bx(o, b"trak", |o| {
            full(o, b"tkhd", 0, 3, |o| {
                u32b(o, 0);
                u32b(o, 0);
                u32b(o, t.track_id);
                u32b(o, 0);
                u32b(o, 0);
                o.extend_from_slice(&[0; 8]);
                u16b(o, 0);
                u16b(o, 0);
                match t.media {
                    Media::Audio { .. } => u16b(o, 0x0100),
                    Media::Video { .. } => u16b(o, 0),
                }
                u16b(o, 0);
                matrix(o);
                match t.media {
                    Media::Video { width, height } => {
                        u32b(o, width.min(0xffff) << 16);
                        u32b(o, height.min(0xffff) << 16);
                    }
                    Media::Audio { .. } => {
                        u32b(o, 0);
                        u32b(o, 0);
                    }
                }
            });
            bx(o, b"mdia", |o| {
                full(o, b"mdhd", 0, 0, |o| {
                    u32b(o, 0);
                    u32b(o, 0);
                    u32b(o, t.timescale);
                    u32b(o, 0);
                    u16b(o, 0x55c4); // "und"
                    u16b(o, 0);
                });
                let (handler, name): (&[u8; 4], &[u8]) = match t.media {
                    Media::Video { .. } => (b"vide", b"VideoHandler\0"),
                    Media::Audio { .. } => (b"soun", b"SoundHandler\0"),
                };
                full(o, b"hdlr", 0, 0, |o| {
                    u32b(o, 0);
                    o.extend_from_slice(handler);
                    o.extend_from_slice(&[0; 12]);
                    o.extend_from_slice(name);
                });
                bx(o, b"minf", |o| {
                    match t.media {
                        Media::Video { .. } => {
                            full(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8]))
                        }
                        Media::Audio { .. } => {
                            full(o, b"smhd", 0, 0, |o| o.extend_from_slice(&[0; 4]))
                        }
                    }
                    bx(o, b"dinf", |o| {
                        full(o, b"dref", 0, 0, |o| {
                            u32b(o, 1);
                            full(o, b"url ", 0, 1, |_| {});
                        });
                    });
                    bx(o, b"stbl", |o| {
                        full(o, b"stsd", 0, 0, |o| {
                            u32b(o, 1);
                            o.extend_from_slice(&t.sample_entry);
                        });
                        full(o, b"stts", 0, 0, |o| u32b(o, 0));
                        full(o, b"stsc", 0, 0, |o| u32b(o, 0));
                        full(o, b"stsz", 0, 0, |o| {
                            u32b(o, 0);
                            u32b(o, 0);
                        });
                        full(o, b"stco", 0, 0, |o| u32b(o, 0));
                    });
                });
            });
        });
        bx(o, b"mvex", |o| {
            full(o, b"trex", 0, 0, |o| {
                u32b(o, t.track_id);
                u32b(o, 1);
                u32b(o, 0);
                u32b(o, 0);
                u32b(o, 0);
            });
        });
    });
    out
}

fn matrix(o: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32b(o, v);
    }
}

/// One sample of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Composition offset (pts - dts) in the track's timescale.
    pub cts: i32,
    /// A sync sample (keyframe).
    pub sync: bool,
    pub data: Bytes,
}

/// Sample flags for sync and non-sync samples.
const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

/// A CMAF chunk: moof (mfhd, traf with tfhd/tfdt/trun) + mdat.
pub fn chunk(sequence: u32, track_id: u32, base_decode_time: u64, samples: &[Sample]) -> Bytes {
    chunk_with_prft(None, sequence, track_id, base_decode_time, samples)
}

/// Size of a version-1 `prft` box.
pub const PRFT_SIZE: usize = 32;

/// NTP timestamp (RFC 5905: seconds since 1900 in the high 32 bits, fraction in the low 32)
/// of `since_unix_epoch`.
pub fn ntp_timestamp(since_unix_epoch: std::time::Duration) -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let secs = since_unix_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The inverse of [`ntp_timestamp`].
pub fn ntp_to_unix(ntp: u64) -> std::time::Duration {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let secs = (ntp >> 32).saturating_sub(NTP_UNIX_OFFSET);
    let nanos = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
    std::time::Duration::new(secs, nanos as u32)
}

/// Like [`chunk`], preceded by a ProducerReferenceTimeBox (`prft`, ISO/IEC 14496-12 8.16.5,
/// version 1, flags 2: the wallclock `ntp` at which the fragment was made) when `ntp` is set.
pub fn chunk_with_prft(
    ntp: Option<u64>,
    sequence: u32,
    track_id: u32,
    base_decode_time: u64,
    samples: &[Sample],
) -> Bytes {
    let data_len: usize = samples.iter().map(|s| s.data.len()).sum();
    let mut out = Vec::with_capacity(data_len + 100 + PRFT_SIZE + samples.len() * 16);
    chunk_header(&mut out, ntp, sequence, track_id, base_decode_time, samples);
    for s in samples {
        out.extend_from_slice(&s.data);
    }
    Bytes::from(out)
}

/// Appends everything of [`chunk_with_prft`]'s chunk except the sample data: the `prft` box
/// (when `ntp` is set), the `moof` and the `mdat` header. The samples' data, in order, must
/// follow. Lets a caller place the chunk in a buffer of its own (no allocation per chunk).
pub fn chunk_header(
    out: &mut Vec<u8>,
    ntp: Option<u64>,
    sequence: u32,
    track_id: u32,
    base_decode_time: u64,
    samples: &[Sample],
) {
    let data_len: usize = samples.iter().map(|s| s.data.len()).sum();
    if let Some(ntp) = ntp {
        full(out, b"prft", 1, 2, |o| {
            u32b(o, track_id);
            o.extend_from_slice(&ntp.to_be_bytes());
            o.extend_from_slice(&base_decode_time.to_be_bytes());
        });
    }
    let moof_start = out.len();
    let mut offset_pos = 0;
    bx(out, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32b(o, sequence));
        bx(o, b"traf", |o| {
            // default-base-is-moof
            full(o, b"tfhd", 0, 0x02_0000, |o| u32b(o, track_id));
            full(o, b"tfdt", 1, 0, |o| {
                o.extend_from_slice(&base_decode_time.to_be_bytes())
            });
            // data-offset, duration, size, flags, composition offsets (signed, version 1)
            full(
                o,
                b"trun",
                1,
                0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800,
                |o| {
                    u32b(o, samples.len() as u32);
                    offset_pos = o.len();
                    u32b(o, 0);
                    for s in samples {
                        u32b(o, s.duration);
                        u32b(o, s.data.len() as u32);
                        u32b(o, if s.sync { SYNC } else { NON_SYNC });
                        o.extend_from_slice(&s.cts.to_be_bytes());
                    }
                },
            );
        });
    });
    let data_offset = (out.len() - moof_start + 8) as u32;
    out[offset_pos..offset_pos + 4].copy_from_slice(&data_offset.to_be_bytes());
    u32b(out, (data_len + 8) as u32);
    out.extend_from_slice(b"mdat");
}

/// The `prft` box at the start of a chunk made by [`chunk_with_prft`]: (reference track id,
/// NTP timestamp, media time). `None` when the chunk has none or it is malformed.
pub fn read_prft(chunk: &[u8]) -> Option<(u32, u64, u64)> {
    let b = chunk.get(..PRFT_SIZE)?;
    if &b[4..8] != b"prft" || b[8] != 1 || u32::from_be_bytes([b[0], b[1], b[2], b[3]]) != 32 {
        return None;
    }
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_be_bytes(a)
    };
    Some((
        u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
        u64_at(16),
        u64_at(24),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mp4read::{Event, Reader};

    #[test]
    fn prft_round_trip_and_chunk_still_reads() {
        let d = std::time::Duration::new(1_700_000_000, 123_456_789);
        let ntp = ntp_timestamp(d);
        let back = ntp_to_unix(ntp);
        assert!(back <= d && d - back < std::time::Duration::from_nanos(2));
        let sample = Sample {
            duration: 3000,
            cts: 0,
            sync: true,
            data: Bytes::from_static(b"frame"),
        };
        let c = chunk_with_prft(Some(ntp), 1, 1, 9000, std::slice::from_ref(&sample));
        assert_eq!(read_prft(&c), Some((1, ntp, 9000)));
        let plain = chunk(1, 1, 9000, &[sample]);
        assert_eq!(&c[PRFT_SIZE..], &plain[..]);
        assert_eq!(read_prft(&plain), None);
    }

    #[test]
    fn init_and_chunk_read_back() {
        let entry = video_sample_entry(
            &VideoConfig::Avc(vec![1, 0x64, 0, 0x1f, 0xff, 0xe0, 0]),
            640,
            360,
        );
        let init = init_segment(&TrackInit {
            track_id: 1,
            timescale: 90000,
            media: Media::Video {
                width: 640,
                height: 360,
            },
            sample_entry: entry.clone(),
        });
        let c = chunk(
            7,
            1,
            123_456,
            &[Sample {
                duration: 3000,
                cts: 0,
                sync: true,
                data: Bytes::from_static(b"frame"),
            }],
        );
        let mut r = Reader::new();
        r.push(&init);
        r.push(&c);
        let mut events = Vec::new();
        while let Ok(Some(e)) = r.next_event() {
            events.push(e);
        }
        assert_eq!(events.len(), 2, "{events:?}");
        match &events[0] {
            Event::Init(tracks) => {
                assert_eq!(tracks.len(), 1);
                assert_eq!(tracks[0].timescale, 90000);
                assert_eq!(tracks[0].sample_entry, entry);
                assert_eq!((tracks[0].width, tracks[0].height), (640, 360));
            }
            e => panic!("{e:?}"),
        }
        match &events[1] {
            Event::Samples(s) => {
                assert_eq!(s.len(), 1);
                assert_eq!(s[0].dts, 123_456);
                assert!(s[0].sync);
                assert_eq!(&s[0].data[..], b"frame");
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn audio_entries() {
        assert!(audio_sample_entry(&AudioConfig::Aac(vec![0x11, 0x90])).is_ok());
        let mut head = b"OpusHead".to_vec();
        head.extend_from_slice(&[1, 2, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0]);
        assert!(matches!(
            audio_sample_entry(&AudioConfig::Opus(head)),
            Ok((_, 48000, 2))
        ));
    }
}
