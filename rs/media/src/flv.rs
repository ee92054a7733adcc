//! FLV tag bodies (the payloads of RTMP audio/video messages), legacy and enhanced RTMP, and a
//! minimal FLV file writer/reader (the writer feeds ffmpeg's stdin).

use bytes::Bytes;

use crate::codec::{AudioConfig, VideoConfig};
use crate::{Error, Reader};

/// Largest FLV tag body we accept (also the RTMP message limit for media).
pub const MAX_TAG: usize = 16 << 20;

/// A parsed video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Video {
    /// A decoder configuration (sequence header / SequenceStart).
    Config(VideoConfig),
    /// One access unit, length-prefixed NAL units (AVC/HEVC) or OBUs (AV1).
    Frame(VideoFrame),
    /// End of sequence, command frames, metadata and anything we skip.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub keyframe: bool,
    /// Composition time offset in milliseconds (pts - dts).
    pub cts: i32,
    pub data: Bytes,
}

/// A parsed audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audio {
    Config(AudioConfig),
    Frame(Bytes),
    Other,
}

fn si24(v: u32) -> i32 {
    ((v << 8) as i32) >> 8
}

/// Parse a video tag body (RTMP message type 9).
pub fn parse_video(body: &Bytes) -> Result<Video, Error> {
    let mut r = Reader::new(body, "video tag");
    let b0 = r.u8()?;
    if b0 & 0x80 != 0 {
        // Enhanced RTMP: [IsExHeader:1][FrameType:3][PacketType:4][FourCC:32].
        let frame_type = (b0 >> 4) & 0x07;
        let packet_type = b0 & 0x0f;
        let fourcc = r.bytes(4)?;
        if frame_type == 5 || packet_type == 4 {
            return Ok(Video::Other); // command frame / metadata
        }
        let kind = match fourcc {
            b"avc1" => 0,
            b"hvc1" => 1,
            b"av01" => 2,
            _ => {
                return Err(Error::invalid(
                    "video tag",
                    format!("unsupported FourCC {}", String::from_utf8_lossy(fourcc)),
                ))
            }
        };
        return match packet_type {
            0 => {
                let rec = r.rest().to_vec();
                Ok(Video::Config(match kind {
                    0 => VideoConfig::Avc(rec),
                    1 => VideoConfig::Hevc(rec),
                    _ => VideoConfig::Av1(rec),
                }))
            }
            1 | 3 => {
                let cts = if packet_type == 1 && kind != 2 {
                    si24(r.u24()?)
                } else {
                    0
                };
                let start = r.pos();
                Ok(Video::Frame(VideoFrame {
                    keyframe: frame_type == 1,
                    cts,
                    data: body.slice(start..),
                }))
            }
            2 => Ok(Video::Other),
            5 => Ok(Video::Other), // MPEG-2 TS sequence start (AV1): unsupported, skipped
            6 | 7 => Err(Error::invalid(
                "video tag",
                "multitrack/ModEx not supported",
            )),
            _ => Ok(Video::Other),
        };
    }
    let frame_type = b0 >> 4;
    let codec = b0 & 0x0f;
    if frame_type == 5 {
        return Ok(Video::Other);
    }
    if codec != 7 {
        return Err(Error::invalid(
            "video tag",
            format!("unsupported codec id {codec} (only H.264 or enhanced RTMP)"),
        ));
    }
    let packet_type = r.u8()?;
    let cts = si24(r.u24()?);
    match packet_type {
        0 => Ok(Video::Config(VideoConfig::Avc(r.rest().to_vec()))),
        1 => {
            let start = r.pos();
            Ok(Video::Frame(VideoFrame {
                keyframe: frame_type == 1,
                cts,
                data: body.slice(start..),
            }))
        }
        _ => Ok(Video::Other),
    }
}

/// Parse an audio tag body (RTMP message type 8).
pub fn parse_audio(body: &Bytes) -> Result<Audio, Error> {
    let mut r = Reader::new(body, "audio tag");
    let b0 = r.u8()?;
    let format = b0 >> 4;
    if format == 9 {
        // Enhanced RTMP audio: [SoundFormat=9:4][PacketType:4][FourCC:32].
        let packet_type = b0 & 0x0f;
        let fourcc = r.bytes(4)?;
        let opus = match fourcc {
            b"Opus" => true,
            b"mp4a" => false,
            _ => {
                return Err(Error::invalid(
                    "audio tag",
                    format!("unsupported FourCC {}", String::from_utf8_lossy(fourcc)),
                ))
            }
        };
        return match packet_type {
            0 => {
                let rec = r.rest().to_vec();
                Ok(Audio::Config(if opus {
                    AudioConfig::Opus(rec)
                } else {
                    AudioConfig::Aac(rec)
                }))
            }
            1 => {
                let start = r.pos();
                Ok(Audio::Frame(body.slice(start..)))
            }
            _ => Ok(Audio::Other),
        };
    }
    if format != 10 {
        return Err(Error::invalid(
            "audio tag",
            format!("unsupported sound format {format} (only AAC, or Opus via enhanced RTMP)"),
        ));
    }
    match r.u8()? {
        0 => Ok(Audio::Config(AudioConfig::Aac(r.rest().to_vec()))),
        1 => {
            let start = r.pos();
            Ok(Audio::Frame(body.slice(start..)))
        }
        _ => Ok(Audio::Other),
    }
}

/// FLV tag types.
pub const TAG_AUDIO: u8 = 8;
pub const TAG_VIDEO: u8 = 9;
pub const TAG_SCRIPT: u8 = 18;

/// The 9-byte FLV header plus PreviousTagSize0.
pub fn file_header(audio: bool, video: bool) -> Vec<u8> {
    let flags = (u8::from(audio) << 2) | u8::from(video);
    vec![b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// One FLV tag (header, body, PreviousTagSize). `timestamp` in ms (wraps at 2^32).
pub fn write_tag(out: &mut Vec<u8>, tag_type: u8, timestamp: u32, body: &[u8]) {
    let len = body.len().min(0x00ff_ffff) as u32;
    out.push(tag_type);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&timestamp.to_be_bytes()[1..]);
    out.push((timestamp >> 24) as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&body[..len as usize]);
    out.extend_from_slice(&(len + 11).to_be_bytes());
}

/// Legacy AVC video tag body for a frame (for feeding ffmpeg).
pub fn avc_frame_body(keyframe: bool, cts: i32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5);
    out.push(if keyframe { 0x17 } else { 0x27 });
    out.push(1);
    out.extend_from_slice(&cts.to_be_bytes()[1..]);
    out.extend_from_slice(data);
    out
}

/// Legacy AVC sequence header tag body.
pub fn avc_config_body(avcc: &[u8]) -> Vec<u8> {
    let mut out = vec![0x17, 0, 0, 0, 0];
    out.extend_from_slice(avcc);
    out
}

/// A tag read from an FLV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub tag_type: u8,
    pub timestamp: u32,
    pub body: Bytes,
}

/// Parse one FLV tag at the front of `buf` (after the file header). Returns the tag and the
/// bytes consumed including PreviousTagSize, or `Ok(None)` when more bytes are needed.
pub fn read_tag(buf: &Bytes) -> Result<Option<(Tag, usize)>, Error> {
    if buf.len() < 11 {
        return Ok(None);
    }
    let mut r = Reader::new(buf, "flv tag");
    let tag_type = r.u8()? & 0x1f;
    let len = r.u24()? as usize;
    let ts = r.u24()?;
    let ext = r.u8()?;
    r.skip(3)?;
    if !matches!(tag_type, TAG_AUDIO | TAG_VIDEO | TAG_SCRIPT) {
        return Err(Error::invalid(
            "flv tag",
            format!("unknown tag type {tag_type}"),
        ));
    }
    if buf.len() < 11 + len + 4 {
        return Ok(None);
    }
    Ok(Some((
        Tag {
            tag_type,
            timestamp: ts | (u32::from(ext) << 24),
            body: buf.slice(11..11 + len),
        },
        11 + len + 4,
    )))
}

/// Check an FLV file header; returns its size including PreviousTagSize0.
pub fn read_file_header(buf: &[u8]) -> Result<usize, Error> {
    let mut r = Reader::new(buf, "flv header");
    if r.bytes(3)? != b"FLV" {
        return Err(Error::invalid("flv header", "bad signature"));
    }
    r.skip(2)?;
    let off = r.u32()? as usize;
    if !(9..=1024).contains(&off) {
        return Err(Error::invalid("flv header", "bad data offset"));
    }
    Ok(off + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc_and_aac() {
        let cfg = Bytes::from(avc_config_body(&[1, 0x64, 0, 0x1f, 0xff]));
        assert!(matches!(
            parse_video(&cfg),
            Ok(Video::Config(VideoConfig::Avc(_)))
        ));
        let f = Bytes::from(avc_frame_body(true, -33, &[0, 0, 0, 1, 0x65]));
        match parse_video(&f) {
            Ok(Video::Frame(fr)) => {
                assert!(fr.keyframe);
                assert_eq!(fr.cts, -33);
                assert_eq!(&fr.data[..], &[0, 0, 0, 1, 0x65]);
            }
            other => panic!("{other:?}"),
        }
        let a = Bytes::from_static(&[0xaf, 0, 0x12, 0x10]);
        assert_eq!(
            parse_audio(&a),
            Ok(Audio::Config(AudioConfig::Aac(vec![0x12, 0x10])))
        );
        assert!(parse_audio(&Bytes::from_static(&[0x2f, 1])).is_err());
        assert!(parse_video(&Bytes::new()).is_err());
    }

    #[test]
    fn enhanced_hevc() {
        let mut b = vec![0x90];
        b.extend_from_slice(b"hvc1");
        b.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            parse_video(&Bytes::from(b)),
            Ok(Video::Config(VideoConfig::Hevc(_)))
        ));
        let mut f = vec![0x93];
        f.extend_from_slice(b"hvc1");
        f.extend_from_slice(&[9, 9]);
        match parse_video(&Bytes::from(f)) {
            Ok(Video::Frame(fr)) => assert!(fr.keyframe && fr.cts == 0 && fr.data.len() == 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn file_round_trip() {
        let mut out = file_header(false, true);
        write_tag(&mut out, TAG_VIDEO, 0x0100_0002, b"abc");
        let buf = Bytes::from(out);
        let h = read_file_header(&buf).unwrap_or(0);
        assert_eq!(h, 13);
        let (tag, n) = read_tag(&buf.slice(h..))
            .ok()
            .flatten()
            .map_or((None, 0), |(t, n)| (Some(t), n));
        assert_eq!(n, 11 + 3 + 4);
        let tag = tag.unwrap_or(Tag {
            tag_type: 0,
            timestamp: 0,
            body: Bytes::new(),
        });
        assert_eq!(tag.timestamp, 0x0100_0002);
        assert_eq!(&tag.body[..], b"abc");
    }
}
