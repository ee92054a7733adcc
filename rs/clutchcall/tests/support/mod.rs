//! Starts the real `clutchcall` binary on free loopback ports for integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A new, empty data directory for one engine of this test process.
fn fresh_data_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("clutchcall-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A running engine; SIGTERM on drop.
pub struct Engine {
    child: Child,
    pub http: SocketAddr,
    pub relay: SocketAddr,
    pub data_dir: PathBuf,
    pub stdout: Vec<String>,
}

impl Engine {
    /// `serve` with an open namespace prefix (`--public-prefix ""`) plus `extra` flags.
    pub fn start(extra: &[&str]) -> Engine {
        Self::start_with(&["--public-prefix", ""], extra)
    }

    pub fn start_with(base: &[&str], extra: &[&str]) -> Engine {
        Self::spawn(
            fresh_data_dir(),
            ("127.0.0.1:0", "127.0.0.1:0"),
            base,
            extra,
            &[],
        )
    }

    /// [`Engine::start_with`] on given HTTP and relay addresses (to restart an engine where
    /// its peers expect it).
    pub fn start_on(http: SocketAddr, relay: SocketAddr, base: &[&str], extra: &[&str]) -> Engine {
        let (http, relay) = (http.to_string(), relay.to_string());
        Self::spawn(fresh_data_dir(), (&http, &relay), base, extra, &[])
    }

    /// Run `serve` on `data_dir` with HTTP and relay on `ports`, RTMP on a free port, then
    /// `base` and `extra` flags and `env`; wait for its `clutchcall listening` line.
    fn spawn(
        data_dir: PathBuf,
        ports: (&str, &str),
        base: &[&str],
        extra: &[&str],
        env: &[(&str, std::ffi::OsString)],
    ) -> Engine {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_clutchcall"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .args([
                "--http",
                ports.0,
                "--relay",
                ports.1,
                "--rtmp",
                "127.0.0.1:0",
            ])
            .args(base)
            .args(extra)
            .env(
                "CLUTCHCALL_LOG",
                std::env::var("CLUTCHCALL_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn clutchcall");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        let (http, relay) = loop {
            assert!(
                Instant::now() < deadline,
                "engine did not start; stdout: {seen:?}"
            );
            let Some(Ok(line)) = lines.next() else {
                panic!("engine exited early; stdout: {seen:?}")
            };
            seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("clutchcall listening ") {
                let part = |key: &str| {
                    rest.split_whitespace()
                        .find_map(|p| p.strip_prefix(key))
                        .and_then(|v| v.split(',').next())
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                };
                break (
                    part("http=").expect("http addr"),
                    part("relay=").expect("relay addr"),
                );
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Engine {
            child,
            http,
            relay,
            data_dir,
            stdout: seen,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn moqt_url(&self) -> String {
        format!("moqt://{}/", self.relay)
    }

    pub fn https_url(&self) -> String {
        format!("https://{}/", self.relay)
    }

    /// Plain HTTP GET on the engine's HTTP port: (status, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.http).expect("connect http");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.http
        )
        .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    pub fn cert_sha256(&self) -> String {
        let (status, body) = self.http_get("/certificate.sha256");
        assert_eq!(status, 200);
        body.trim().to_string()
    }

    /// Send SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn terminate(mut self) -> Option<i32> {
        let code = self.stop();
        std::mem::forget(self);
        code
    }

    fn stop(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.data_dir);
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---- restarts on the same data directory (vod_restart.rs) ----

impl Engine {
    /// `serve` (open namespace prefix, as [`Engine::start`]) on an existing `data_dir`: an
    /// engine restart. Fresh loopback ports, so the HTTP address may differ from the last run.
    pub fn start_in(data_dir: &std::path::Path, extra: &[&str]) -> Engine {
        Self::start_in_env(data_dir, extra, &[])
    }

    /// [`Engine::start_in`] with extra environment variables for the engine process.
    pub fn start_in_env(
        data_dir: &std::path::Path,
        extra: &[&str],
        env: &[(&str, std::ffi::OsString)],
    ) -> Engine {
        Self::spawn(
            data_dir.to_path_buf(),
            ("127.0.0.1:0", "127.0.0.1:0"),
            &["--public-prefix", ""],
            extra,
            env,
        )
    }

    /// SIGKILL (a crash: no drain, no cleanup) and reap; the data directory is kept and
    /// returned for [`Engine::start_in`]. Children of the engine (ffmpeg) are not signalled.
    pub fn kill(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::take(&mut self.data_dir);
        // Reaped: never signal this pid again (it may be reused).
        std::mem::forget(self);
        dir
    }
}

// ---- HTTP/1.1 without a client library (tests read raw statuses and headers) ----

use std::io::{Read as _, Write as _};
use std::path::Path;

/// One HTTP/1.1 exchange (`Connection: close`): status, lower-cased headers, body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One request on a fresh connection; chunked bodies are decoded.
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
}

/// The admin API key and org id `serve` wrote to `<data_dir>/credentials` on first start.
pub fn credentials(data_dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(data_dir.join("credentials")).expect("credentials");
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .unwrap_or_else(|| panic!("{k} in credentials"))
    };
    (get("CLUTCHCALL_CREDENTIALS="), get("CLUTCHCALL_ORG_ID="))
}
