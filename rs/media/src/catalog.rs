//! The MSF catalog (draft-ietf-moq-msf) with the CMSF extension, in the shape the TypeScript
//! SDK writes and reads (`sdk/ts/src/media/catalog.ts`), so one viewer plays both.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Catalog track name in ClutchCall namespaces (the recipes' name; MSF's own is `catalog`).
pub const TRACK: &str = ".catalog";
/// MSF version string we write (same as the SDK).
pub const VERSION: &str = "draft-01";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    pub version: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<u64>,
    pub tracks: Vec<Track>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Track {
    pub name: String,
    pub packaging: String,
    pub is_live: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framerate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timescale: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_group: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub render_group: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samplerate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_config: Option<String>,
    /// base64 CMAF header (ftyp+moov).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_grp_sap_starting_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Catalog {
    pub fn new(generated_at: u64, tracks: Vec<Track>) -> Self {
        Self {
            version: serde_json::Value::String(VERSION.to_owned()),
            generated_at: Some(generated_at),
            tracks,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn parse(b: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(b)
    }
}

pub fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub fn unbase64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_shape() {
        let c = Catalog::new(
            1,
            vec![Track {
                name: "video/source".into(),
                packaging: "cmaf".into(),
                is_live: true,
                role: Some("video".into()),
                alt_group: Some(1),
                init_data: Some(base64(b"init")),
                ..Default::default()
            }],
        );
        let j: serde_json::Value = serde_json::from_slice(&c.to_json()).unwrap_or_default();
        assert_eq!(j["tracks"][0]["altGroup"], 1);
        assert_eq!(j["tracks"][0]["isLive"], true);
        assert_eq!(j["tracks"][0]["initData"], "aW5pdA==");
        assert!(j["tracks"][0].get("width").is_none());
        assert_eq!(Catalog::parse(&c.to_json()).ok(), Some(c));
    }
}
