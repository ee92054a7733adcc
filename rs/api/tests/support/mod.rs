//! Test harness: the API router on a real loopback port, on SQLite or PostgreSQL.
//!
//! PostgreSQL comes from, in order:
//! 1. `CLUTCHCALL_TEST_DATABASE_URL` (a server URL; each test gets its own fresh database), or
//! 2. a throwaway cluster this harness starts once per test binary from Debian's binaries under
//!    `/usr/lib/postgresql/*/bin` (initdb into a temp dir, run as user `postgres` when we are
//!    root, loopback TCP on a free port, unix socket in the temp dir; a detached watchdog stops
//!    it and removes the dir when the test process exits), or
//! 3. nothing: the Postgres variants FAIL with a clear message when `CI` is set and are reported
//!    as skipped (a line on stderr, test passes) otherwise.
//!
//! The PostgreSQL part lives in `pg.rs` so the engine's tests can include it with `#[path]`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;

use api::{Api, Config, Credentials};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub api: Api,
    pub addr: SocketAddr,
    pub base: String,
    pub creds: Credentials,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A config for tests: quiet bootstrap, TTL bounds that allow short-lived tokens.
pub fn test_config(dir: &Path, database_url: Option<String>, base: &str) -> Config {
    let mut c = Config::new(dir);
    c.database_url = database_url;
    c.public_base_url = base.to_owned();
    c.announce_credentials = false;
    c.token_ttl_min = 1;
    c.relay_urls = vec!["https://relay.test:4443".into()];
    c
}

impl TestServer {
    /// Start a server; `None` when the backend is unavailable and the test should be skipped.
    pub async fn start(backend: Backend) -> Option<TestServer> {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
    ) -> Option<TestServer> {
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_database().await?),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let mut config = test_config(dir.path(), database_url, &base);
        tweak(&mut config);
        let api = Api::open(config).await.expect("Api::open");
        let creds = api
            .bootstrap_credentials()
            .expect("bootstrap credentials on an empty database");
        let router = api.router();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let client = reqwest::Client::builder().build().expect("client");
        Some(TestServer {
            api,
            addr,
            base,
            creds,
            client,
            backend,
            dir,
            server,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Request with the bootstrap admin key.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.creds.api_key)
    }

    /// Request with no key.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `/v1/orgs/<own org><rest>`
    pub fn org_path(&self, rest: &str) -> String {
        format!("/v1/orgs/{}{}", self.creds.org_id, rest)
    }
}

/// Send and decode: status and JSON body (`Value::Null` when empty or not JSON).
pub async fn send(rb: RequestBuilder) -> (StatusCode, Value) {
    let res = rb.send().await.expect("HTTP request");
    let status = res.status();
    let bytes = res.bytes().await.expect("body");
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

/// Assert a REST error: status, `error.code`, non-empty message.
pub fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(got.0, status, "status for {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "code in {}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "message in {}",
        got.1
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: in `pg.rs`, shared with the engine's multi-node tests.

#[path = "pg.rs"]
mod pg;
pub use pg::postgres_database;

/// Generate one `#[tokio::test]` per backend for each listed `async fn name(TestServer)`.
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(s) = crate::support::TestServer::start(crate::support::Backend::Sqlite).await else { return };
                    super::$name(s).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(s) = crate::support::TestServer::start(crate::support::Backend::Postgres).await else { return };
                    super::$name(s).await;
                }
            )*
        }
    };
}
