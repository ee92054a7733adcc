//! A minimal HTTP/1.1 GET for the engine's `/certificate.sha256` (plain HTTP, development only).

use std::time::Duration;

use net::tls::Fingerprint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::Error;

/// Largest response accepted.
const MAX_RESPONSE: u64 = 64 * 1024;

/// `GET {http_base}/certificate.sha256` and parse the hex fingerprint.
pub(crate) async fn certificate_fingerprint(
    http_base: &str,
    timeout: Duration,
) -> Result<Fingerprint, Error> {
    let base =
        net::Url::parse(http_base).map_err(|e| Error::Http(format!("URL {http_base:?}: {e}")))?;
    if base.scheme() != "http" {
        return Err(Error::Http(format!(
            "expected an http:// URL, got {http_base:?}"
        )));
    }
    let host = base
        .host_str()
        .ok_or_else(|| Error::Http("URL has no host".into()))?
        .to_owned();
    let port = base.port().unwrap_or(80);
    let url = base
        .join("/certificate.sha256")
        .map_err(|e| Error::Http(e.to_string()))?;
    let body = tokio::time::timeout(timeout, get(&host, port, url.path()))
        .await
        .map_err(|_| Error::Timeout("certificate fingerprint over HTTP"))??;
    body.trim().parse::<Fingerprint>().map_err(|e| {
        Error::Http(format!(
            "{e}: got {:?}",
            body.chars().take(80).collect::<String>()
        ))
    })
}

async fn get(host: &str, port: u16, path: &str) -> Result<String, Error> {
    let addr_host = host.trim_start_matches('[').trim_end_matches(']');
    let mut stream = TcpStream::connect((addr_host, port))
        .await
        .map_err(|e| Error::Http(format!("connecting to {host}:{port}: {e}")))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| Error::Http(e.to_string()))?;
    parse_response(&raw)
}

/// Status line, headers, body (identity or chunked).
fn parse_response(raw: &[u8]) -> Result<String, Error> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Error::Http("incomplete HTTP response".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split_whitespace().nth(1).unwrap_or_default();
    if code != "200" {
        return Err(Error::Http(format!("HTTP status {status:?}")));
    }
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    String::from_utf8(body).map_err(|_| Error::Http("body is not UTF-8".into()))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, Error> {
    let bad = || Error::Http("malformed chunked body".into());
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = std::str::from_utf8(&body[..eol]).map_err(|_| bad())?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err(bad());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_chunked_bodies() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc";
        assert_eq!(parse_response(r).ok().as_deref(), Some("abc"));
        let r =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).ok().as_deref(), Some("abc"));
        let r = b"HTTP/1.1 503 Service Unavailable\r\n\r\n";
        assert!(parse_response(r).is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }
}
