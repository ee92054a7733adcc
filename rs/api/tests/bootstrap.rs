//! First start: org + admin key, `<data-dir>/credentials` (mode 0600, shell-sourceable); a
//! second start creates nothing; the CLI subcommands work on the same store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

use std::os::unix::fs::PermissionsExt as _;

use api::cli::{KeysCommand, OrgArg, SigningKeysCommand};
use api::Api;
use reqwest::{Method, StatusCode};
use support::{send, Backend, TestServer};

async fn credentials_file_and_reopen(s: TestServer) {
    let path = s.dir.path().join("credentials");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("CLUTCHCALL_CREDENTIALS={}\n", s.creds.api_key)));
    assert!(text.contains(&format!("CLUTCHCALL_ORG_ID={}\n", s.creds.org_id)));

    // `set -a; . credentials` yields working variables.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "set -a; . '{}'; printf '%s %s' \"$CLUTCHCALL_CREDENTIALS\" \"$CLUTCHCALL_ORG_ID\"",
            path.display()
        ))
        .output()
        .unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out, format!("{} {}", s.creds.api_key, s.creds.org_id));
    let (st, _) = send(
        s.anon(Method::GET, &s.org_path(""))
            .bearer_auth(out.split(' ').next().unwrap()),
    )
    .await;
    assert_eq!(st, StatusCode::OK);

    // A second engine on the same database bootstraps nothing and accepts the same key.
    let config = support::test_config(s.dir.path(), s.api.config().database_url.clone(), &s.base);
    let again = Api::open(config.clone()).await.unwrap();
    assert!(again.bootstrap_credentials().is_none());
    assert_eq!(again.list_orgs().await.unwrap().len(), 1);
    assert!(again
        .authenticate(&s.creds.api_key)
        .await
        .unwrap()
        .is_some());

    // CLI: keys create / list / revoke, signing-keys rotate / list.
    let org = || OrgArg { org: None };
    api::cli::run_keys(
        config.clone(),
        KeysCommand::Create {
            name: "cli".into(),
            org: org(),
        },
    )
    .await
    .unwrap();
    api::cli::run_keys(config.clone(), KeysCommand::List { org: org() })
        .await
        .unwrap();
    let keys = again
        .list_api_keys(&s.creds.org_id, None, 100)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2);
    let cli_key = keys.iter().find(|k| k.name == "cli").unwrap();
    api::cli::run_keys(
        config.clone(),
        KeysCommand::Revoke {
            id: cli_key.id.clone(),
            org: org(),
        },
    )
    .await
    .unwrap();
    let keys = again
        .list_api_keys(&s.creds.org_id, None, 100)
        .await
        .unwrap();
    assert!(keys
        .iter()
        .find(|k| k.name == "cli")
        .unwrap()
        .revoked_at
        .is_some());
    assert!(api::cli::run_keys(
        config.clone(),
        KeysCommand::Revoke {
            id: "ak_nope".into(),
            org: org()
        }
    )
    .await
    .is_err());

    let before = again.list_signing_keys(&s.creds.org_id).await.unwrap();
    api::cli::run_signing_keys(
        config.clone(),
        SigningKeysCommand::Rotate {
            alg: Some(api::tokens::SigningAlg::ES256),
            org: org(),
        },
    )
    .await
    .unwrap();
    api::cli::run_signing_keys(config.clone(), SigningKeysCommand::List { org: org() })
        .await
        .unwrap();
    let after = again.list_signing_keys(&s.creds.org_id).await.unwrap();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after.iter().filter(|k| k.retired_at.is_none()).count(), 1);
    assert_eq!(
        after.iter().find(|k| k.retired_at.is_none()).unwrap().alg,
        "ES256"
    );
    // Two orgs: the CLI wants --org.
    again.create_org("second").await.unwrap();
    assert!(
        api::cli::run_keys(config.clone(), KeysCommand::List { org: org() })
            .await
            .is_err()
    );
    api::cli::run_keys(
        config,
        KeysCommand::List {
            org: OrgArg {
                org: Some(s.creds.org_id.clone()),
            },
        },
    )
    .await
    .unwrap();
    again.close().await;
}

db_tests!(credentials_file_and_reopen);

#[tokio::test]
async fn bad_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = support::test_config(dir.path(), None, "http://x");
    c.token_ttl_min = 100;
    c.token_ttl_max = 10;
    assert!(matches!(Api::open(c).await, Err(api::Error::Config(_))));
    let mut c = support::test_config(dir.path(), Some("mysql://x".into()), "http://x");
    c.token_ttl_min = 1;
    assert!(matches!(Api::open(c).await, Err(api::Error::Config(_))));
    let _ = Backend::Sqlite;
}
