//! Codec configuration records (what goes into the sample entry) and RFC 6381 codec strings.

use crate::bits::{rbsp, Bits};
use crate::{Error, Reader};

/// A video codec configuration, as carried by an FLV sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoConfig {
    /// AVCDecoderConfigurationRecord (avcC payload).
    Avc(Vec<u8>),
    /// HEVCDecoderConfigurationRecord (hvcC payload).
    Hevc(Vec<u8>),
    /// AV1CodecConfigurationRecord (av1C payload).
    Av1(Vec<u8>),
}

/// An audio codec configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioConfig {
    /// AudioSpecificConfig (the DecoderSpecificInfo of esds).
    Aac(Vec<u8>),
    /// The Opus identification header (`OpusHead`, RFC 7845 §5.1).
    Opus(Vec<u8>),
}

/// Picture size and related facts read from a parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
}

impl VideoConfig {
    /// The RFC 6381 `codecs` value, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> Result<String, Error> {
        match self {
            VideoConfig::Avc(c) => avc_codec_string(c),
            VideoConfig::Hevc(c) => hevc_codec_string(c),
            VideoConfig::Av1(c) => av1_codec_string(c),
        }
    }

    /// Width and height from the first SPS (AVC only; others return `None`).
    pub fn picture(&self) -> Option<Picture> {
        match self {
            VideoConfig::Avc(c) => avc_first_sps(c).ok().and_then(|s| avc_sps_picture(&s).ok()),
            _ => None,
        }
    }
}

impl AudioConfig {
    pub fn codec_string(&self) -> Result<String, Error> {
        match self {
            AudioConfig::Aac(asc) => {
                let a = parse_asc(asc)?;
                Ok(format!("mp4a.40.{}", a.object_type))
            }
            AudioConfig::Opus(_) => Ok("opus".to_owned()),
        }
    }
}

/// `avc1.PPCCLL` from an AVCDecoderConfigurationRecord.
pub fn avc_codec_string(avcc: &[u8]) -> Result<String, Error> {
    if avcc.len() < 7 || avcc[0] != 1 {
        return Err(Error::invalid(
            "avcC",
            "not an AVCDecoderConfigurationRecord",
        ));
    }
    Ok(format!(
        "avc1.{:02x}{:02x}{:02x}",
        avcc[1], avcc[2], avcc[3]
    ))
}

/// `hvc1.P.C.TL.CC` (ISO/IEC 14496-15 Annex E) from an HEVCDecoderConfigurationRecord.
pub fn hevc_codec_string(hvcc: &[u8]) -> Result<String, Error> {
    let mut r = Reader::new(hvcc, "hvcC");
    if r.u8()? != 1 {
        return Err(Error::invalid("hvcC", "unknown version"));
    }
    let b = r.u8()?;
    let space = ["", "A", "B", "C"][usize::from(b >> 6)];
    let tier = if b & 0x20 != 0 { 'H' } else { 'L' };
    let profile = b & 0x1f;
    let compat = r.u32()?.reverse_bits();
    let constraint = r.bytes(6)?;
    let level = r.u8()?;
    let mut s = format!("hvc1.{space}{profile}.{compat:x}.{tier}{level}");
    let last = constraint
        .iter()
        .rposition(|&c| c != 0)
        .map_or(0, |i| i + 1);
    for c in &constraint[..last.max(1)] {
        s.push_str(&format!(".{c:X}"));
    }
    Ok(s)
}

/// `av01.P.LLT.DD` from an AV1CodecConfigurationRecord.
pub fn av1_codec_string(av1c: &[u8]) -> Result<String, Error> {
    let mut r = Reader::new(av1c, "av1C");
    let b0 = r.u8()?;
    if b0 != 0x81 {
        return Err(Error::invalid("av1C", "unknown marker/version"));
    }
    let b1 = r.u8()?;
    let b2 = r.u8()?;
    let profile = b1 >> 5;
    let level = b1 & 0x1f;
    let tier = if b2 & 0x80 != 0 { 'H' } else { 'M' };
    let high = b2 & 0x40 != 0;
    let twelve = b2 & 0x20 != 0;
    let depth = match (high, twelve) {
        (false, _) => 8,
        (true, false) => 10,
        (true, true) => 12,
    };
    Ok(format!("av01.{profile}.{level:02}{tier}.{depth:02}"))
}

/// The first SPS NAL unit of an avcC record.
pub fn avc_first_sps(avcc: &[u8]) -> Result<Vec<u8>, Error> {
    let mut r = Reader::new(avcc, "avcC");
    r.skip(5)?;
    let n = r.u8()? & 0x1f;
    if n == 0 {
        return Err(Error::invalid("avcC", "no SPS"));
    }
    let len = r.u16()? as usize;
    Ok(r.bytes(len)?.to_vec())
}

/// Build an avcC from one SPS and one PPS (NAL units without start codes).
pub fn avcc_from_parameter_sets(sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, Error> {
    if sps.len() < 4 || sps.len() > 0xffff || pps.is_empty() || pps.len() > 0xffff {
        return Err(Error::invalid("parameter sets", "bad SPS/PPS size"));
    }
    let mut out = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    out.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1);
    out.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    out.extend_from_slice(pps);
    Ok(out)
}

/// Width and height (after cropping) of an H.264 SPS NAL unit (with its header byte).
pub fn avc_sps_picture(sps: &[u8]) -> Result<Picture, Error> {
    let data = rbsp(sps.get(1..).ok_or(Error::Truncated("SPS"))?);
    let mut b = Bits::new(&data);
    let profile = b.u(8)?;
    b.u(16)?; // constraint flags + level
    b.ue()?; // sps id
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = b.ue()?;
        if chroma_format == 3 {
            b.u1()?;
        }
        b.ue()?;
        b.ue()?;
        b.u1()?;
        if b.u1()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.u1()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + b.se()?).rem_euclid(256);
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    b.ue()?; // log2_max_frame_num
    let poc_type = b.ue()?;
    if poc_type == 0 {
        b.ue()?;
    } else if poc_type == 1 {
        b.u1()?;
        b.se()?;
        b.se()?;
        let n = b.ue()?;
        if n > 255 {
            return Err(Error::invalid("SPS", "too many ref frames in POC cycle"));
        }
        for _ in 0..n {
            b.se()?;
        }
    }
    b.ue()?; // max refs
    b.u1()?;
    let w_mbs = b.ue()?.saturating_add(1);
    let h_map = b.ue()?.saturating_add(1);
    let frame_mbs_only = b.u1()?;
    if frame_mbs_only == 0 {
        b.u1()?;
    }
    b.u1()?;
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if b.u1()? == 1 {
        cl = b.ue()?;
        cr = b.ue()?;
        ct = b.ue()?;
        cb = b.ue()?;
    }
    let (sub_w, sub_h) = match chroma_format {
        0 | 3 => (1, 1),
        2 => (2, 1),
        _ => (2, 2),
    };
    let crop_x = sub_w;
    let crop_y = sub_h * (2 - frame_mbs_only);
    let width =
        (w_mbs.saturating_mul(16)).saturating_sub(crop_x * (cl.saturating_add(cr)).min(1 << 16));
    let height = (h_map.saturating_mul(16).saturating_mul(2 - frame_mbs_only))
        .saturating_sub(crop_y * (ct.saturating_add(cb)).min(1 << 16));
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return Err(Error::invalid("SPS", "implausible picture size"));
    }
    Ok(Picture { width, height })
}

/// Facts from an AAC AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asc {
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

pub fn parse_asc(asc: &[u8]) -> Result<Asc, Error> {
    let mut b = Bits::new(asc);
    let mut object_type = b.u(5)?;
    if object_type == 31 {
        object_type = 32 + b.u(6)?;
    }
    let idx = b.u(4)?;
    let sample_rate = if idx == 15 {
        b.u(24)?
    } else {
        *AAC_RATES
            .get(idx as usize)
            .ok_or_else(|| Error::invalid("AudioSpecificConfig", "bad sampling index"))?
    };
    let channels = b.u(4)? as u8;
    if sample_rate == 0 {
        return Err(Error::invalid("AudioSpecificConfig", "zero sample rate"));
    }
    Ok(Asc {
        object_type: object_type as u8,
        sample_rate,
        channels,
    })
}

/// Facts from an OpusHead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusHead {
    pub channels: u8,
    pub pre_skip: u16,
    pub input_rate: u32,
    pub gain: i16,
    pub mapping_family: u8,
}

pub fn parse_opus_head(h: &[u8]) -> Result<OpusHead, Error> {
    if h.len() < 19 || &h[..8] != b"OpusHead" {
        return Err(Error::invalid("OpusHead", "missing magic"));
    }
    Ok(OpusHead {
        channels: h[9],
        pre_skip: u16::from_le_bytes([h[10], h[11]]),
        input_rate: u32::from_le_bytes([h[12], h[13], h[14], h[15]]),
        gain: i16::from_le_bytes([h[16], h[17]]),
        mapping_family: h[18],
    })
}

/// Duration of an Opus packet in 48 kHz samples (RFC 6716 §3.1), if it parses.
pub fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    Some(frame * frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avc_sps_1280x720() {
        // SPS from x264, High profile, 1280x720.
        let sps = [
            0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00,
            0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
        ];
        assert_eq!(
            avc_sps_picture(&sps),
            Ok(Picture {
                width: 1280,
                height: 720
            })
        );
        let avcc = avcc_from_parameter_sets(&sps, &[0x68, 0xeb, 0xe3, 0xcb]).unwrap_or_default();
        assert_eq!(avc_codec_string(&avcc).ok().as_deref(), Some("avc1.64001f"));
        assert_eq!(
            VideoConfig::Avc(avcc)
                .picture()
                .map(|p| (p.width, p.height)),
            Some((1280, 720))
        );
    }

    #[test]
    fn aac_and_opus() {
        assert_eq!(
            parse_asc(&[0x11, 0x90]),
            Ok(Asc {
                object_type: 2,
                sample_rate: 48000,
                channels: 2
            })
        );
        assert_eq!(
            AudioConfig::Aac(vec![0x12, 0x10])
                .codec_string()
                .ok()
                .as_deref(),
            Some("mp4a.40.2")
        );
        assert_eq!(opus_packet_samples(&[0xfc]), Some(960));
        assert!(parse_asc(&[]).is_err());
    }

    #[test]
    fn av1_hevc_strings() {
        assert_eq!(
            av1_codec_string(&[0x81, 0x08, 0x0c, 0x00]).ok().as_deref(),
            Some("av01.0.08M.08")
        );
        let hvcc = [1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d];
        assert_eq!(
            hevc_codec_string(&hvcc).ok().as_deref(),
            Some("hvc1.1.6.L93.90")
        );
    }
}
