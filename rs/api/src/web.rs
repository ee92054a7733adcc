//! Browser-facing assets of the engine: the demo page at `/` (recipe 1's publishing half: create
//! an input with a typed-in API key, publish the webcam, show the signed URL) and the browser SDK
//! bundle at `/sdk/streams.js` that it and the `/watch/{id}` player page ([`crate::player`]) load.
//!
//! `web/streams.js` is generated from `sdk/ts/src` by `sdk/ts/scripts/bundle.mjs` and committed,
//! so building the engine never needs npm; `npm test` in sdk/ts fails when it is stale.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};

use crate::Api;

/// `@clutchcall/sdk/streams` as one ES module.
pub(crate) const SDK_BUNDLE: &str = include_str!("web/streams.js");

const DEMO: &str = include_str!("web/demo.html");

/// `GET /`
pub(crate) async fn demo_page(State(api): State<Api>) -> Html<String> {
    let (urls, _) = api.relay_info();
    Html(DEMO.replace(
        "__RELAY_URL__",
        &js_string(urls.first().map(String::as_str)),
    ))
}

/// `GET /sdk/streams.js`
pub(crate) async fn sdk_bundle() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SDK_BUNDLE,
    )
}

/// A JavaScript literal for an inline `<script>`: a JSON string (or `null`) that cannot end
/// the script element.
pub(crate) fn js_string(s: Option<&str>) -> String {
    match s {
        Some(s) => serde_json::to_string(s)
            .unwrap_or_else(|_| "null".into())
            .replace('<', "\\u003c"),
        None => "null".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_string_is_inert_in_html() {
        assert_eq!(js_string(Some("a\"</script>")), r#""a\"\u003c/script>""#);
        assert_eq!(js_string(None), "null");
    }

    #[test]
    fn bundle_is_an_es_module_exporting_streams() {
        assert!(SDK_BUNDLE.contains("export {"));
        assert!(SDK_BUNDLE.contains("Streams"));
        assert!(DEMO.contains("__RELAY_URL__"));
    }
}
