//! The binary itself: start-up, health, certificate hash, clean SIGTERM, --help everywhere.

mod support;

use support::Engine;

#[test]
fn serve_reports_health_and_certificate_and_exits_cleanly_on_sigterm() {
    let engine = Engine::start(&[]);
    let (status, body) = engine.http_get("/healthz");
    assert_eq!(status, 200, "healthz body: {body}");
    let hash = engine.cert_sha256();
    assert_eq!(hash.len(), 64, "hex sha-256: {hash}");
    assert!(hash
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let (status, metrics) = engine.http_get("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.is_empty() || metrics.contains('#') || metrics.contains('_'));
    let creds =
        std::fs::read_to_string(engine.data_dir.join("credentials")).expect("credentials file");
    assert!(creds.contains("CLUTCHCALL_CREDENTIALS=") && creds.contains("CLUTCHCALL_ORG_ID=org_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(engine.data_dir.join("credentials"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "credentials must be private");
    }
    assert_eq!(engine.terminate(), Some(0), "serve exits 0 on SIGTERM");
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["keys", "--help"],
        vec!["signing-keys", "--help"],
        vec!["sample-config", "--help"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_clutchcall"))
            .args(&args)
            .output()
            .expect("run");
        assert!(out.status.success(), "{args:?} failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{args:?}: {text}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clutchcall"))
        .args(["serve", "--help"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--http",
        "--relay",
        "--data-dir",
        "--public-prefix",
        "CLUTCHCALL_HTTP",
        "CLUTCHCALL_RELAY",
    ] {
        assert!(text.contains(flag), "serve --help lacks {flag}");
    }
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = std::env::temp_dir().join(format!("clutchcall-busy-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clutchcall"))
        .args([
            "serve",
            "--relay",
            "127.0.0.1:0",
            "--http",
            &addr,
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use"),
        "stderr should say what to do: {err}"
    );
}
