//! A throwaway PostgreSQL for tests: `postgres_database()` gives a fresh database on
//! `CLUTCHCALL_TEST_DATABASE_URL`'s server, or on a cluster started once per test binary from
//! Debian's binaries (see `mod.rs` for the rules; with `CI` set, no server is a failure).
//! Used by the API tests and, through `#[path]`, by the engine's relay-mesh test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct Cluster {
    /// Server URL without database name, e.g. `postgres://postgres@127.0.0.1:5999`.
    server: String,
    /// Query string to append (may be empty).
    query: String,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// A fresh database on the test cluster; `None` to skip.
pub async fn postgres_database() -> Option<String> {
    let cluster = CLUSTER.get_or_init(|| {
        if let Ok(url) = std::env::var("CLUTCHCALL_TEST_DATABASE_URL") {
            return Ok(split_url(&url));
        }
        start_cluster()
    });
    let cluster = match cluster {
        Ok(c) => c,
        Err(why) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL tests need a server but none is available (CI is set): {why}. Install Debian's `postgresql` or set CLUTCHCALL_TEST_DATABASE_URL.");
            }
            eprintln!("SKIPPED (PostgreSQL unavailable: {why}; set CLUTCHCALL_TEST_DATABASE_URL or install postgresql)");
            return None;
        }
    };
    let name = format!("cc_test_{}", hex_rand());
    let admin = format!("{}/postgres{}", cluster.server, cluster.query);
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect to test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = sqlx::Connection::close(conn).await;
    Some(format!("{}/{name}{}", cluster.server, cluster.query))
}

fn hex_rand() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:016x}", h.finish())
}

/// `postgres://u@h:p/db?x` → (`postgres://u@h:p`, `?x`).
fn split_url(url: &str) -> Cluster {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = main.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match main[after_scheme..].find('/') {
        Some(i) => &main[..after_scheme + i],
        None => main,
    };
    Cluster {
        server: server.to_owned(),
        query,
    }
}

fn find_pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn start_cluster() -> Result<Cluster, String> {
    let bin = find_pg_bin().ok_or("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")?;
    let dir = std::env::temp_dir().join(format!(
        "clutchcall-pg-{}-{}",
        std::process::id(),
        hex_rand()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let root = is_root();
    // initdb refuses to run as root: hand the directory to `postgres` and run as that user.
    let as_user = |program: &Path| {
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    if root {
        run(Command::new("chown").args(["postgres:postgres"]).arg(&dir))?;
    }
    let data = dir.join("data");
    run(as_user(&bin.join("initdb")).arg("-D").arg(&data).args([
        "-A",
        "trust",
        "-U",
        "postgres",
        "-E",
        "UTF8",
        "--no-sync",
        "--no-instructions",
    ]))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
        dir.display()
    );
    run(as_user(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(&data)
        .args(["-o", &opts, "-l"])
        .arg(dir.join("log"))
        .args(["-w", "-t", "60", "start"]))?;
    // Watchdog: stop the cluster and remove its files when this test process exits.
    let pg_ctl = bin.join("pg_ctl");
    let stop = if root {
        format!(
            "runuser -u postgres -- {} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "{} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("watchdog: {e}"))?;
    Ok(Cluster {
        server: format!("postgres://postgres@127.0.0.1:{port}"),
        query: String::new(),
    })
}
