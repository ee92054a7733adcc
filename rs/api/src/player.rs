//! `/watch/{id}`: a minimal player page. The TypeScript SDK engineer replaces the body with the
//! real player; the contract stays: the page reads the id from the path and the token from
//! `?token=`, asks `GET /v1/playback/{id}` how to play it, then plays.

/// The page for a playback id the caller has already checked to be `[A-Za-z0-9_]+`.
pub(crate) fn page(id: &str) -> String {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>ClutchCall Streams · {id}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; background: #111; color: #eee; }}
main {{ max-width: 960px; margin: 0 auto; padding: 1rem; }}
video {{ width: 100%; background: #000; aspect-ratio: 16 / 9; }}
pre {{ white-space: pre-wrap; word-break: break-all; font-size: .8rem; color: #9c9; }}
</style>
</head>
<body>
<main>
<video id="video" data-playback-id="{id}" controls autoplay muted playsinline></video>
<p id="state">Loading playback information…</p>
<pre id="info"></pre>
</main>
<script type="module">
const id = "{id}";
const token = new URLSearchParams(location.search).get("token") ?? "";
const state = document.getElementById("state");
const info = document.getElementById("info");
try {{
  const res = await fetch(`/v1/playback/${{encodeURIComponent(id)}}?token=${{encodeURIComponent(token)}}`);
  const body = await res.json();
  if (!res.ok) {{
    state.textContent = `Cannot play: ${{body.error?.code ?? res.status}}`;
  }} else {{
    state.textContent = body.kind === "live" ? "Live stream ready" : "Video ready";
    info.textContent = JSON.stringify({{ ...body, token: undefined }}, null, 2);
    window.dispatchEvent(new CustomEvent("clutchcall:playback", {{ detail: body }}));
  }}
}} catch (e) {{
  state.textContent = `Cannot reach the engine: ${{e}}`;
}}
</script>
</body>
</html>
"#
    )
}
