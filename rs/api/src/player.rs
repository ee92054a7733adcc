//! `/watch/{id}`: the player page that signed playback URLs open. It runs the viewer half of
//! recipe 1 with the SDK bundle the engine serves (`/sdk/streams.js`, see [`crate::web`]): the
//! SDK takes the token from the page's `?token=`, plays `lv_…` over MoQT and `pb_…` over HTTPS.

const PAGE: &str = include_str!("web/player.html");

/// The page for a playback id the caller has already checked to be `[A-Za-z0-9_]+`, with the
/// relay URL the engine advertises (None: the SDK asks `GET /v1/playback/{id}`).
pub(crate) fn page(id: &str, relay_url: Option<&str>) -> String {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    PAGE.replace("__ID__", &id)
        .replace("__RELAY_URL__", &crate::web::js_string(relay_url))
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_embeds_id_and_relay_url() {
        let p = super::page("lv_abc</script>", Some("https://127.0.0.1:4443"));
        assert!(p.contains(r#"const id = "lv_abcscript";"#));
        assert!(p.contains(r#"const relayUrl = "https://127.0.0.1:4443";"#));
        assert!(!p.contains("__"));
        let p = super::page("pb_x", None);
        assert!(p.contains("const relayUrl = null;"));
    }
}
