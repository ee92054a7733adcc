//! Subcommands the `clutchcall` binary embeds: `clutchcall keys …`, `clutchcall signing-keys …`.
//!
//! Each opens the store from the same [`Config`] as `serve` (so an empty database is
//! bootstrapped exactly as `serve` would) and prints its result to stdout.

use clap::{Args, Subcommand};

use crate::tokens::SigningAlg;
use crate::{rfc3339, Api, Config, Error};

/// Pick the org: `--org`, or the only org of the database.
#[derive(Debug, Clone, Args)]
pub struct OrgArg {
    /// Org id (`org_…`). Defaults to the only org (the one created at bootstrap).
    #[arg(long, env = "CLUTCHCALL_ORG_ID")]
    pub org: Option<String>,
}

/// Manage control-plane API keys.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; its secret is printed once.
    Create {
        /// A label for the key.
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        org: OrgArg,
    },
    /// List API keys (secrets are never shown again).
    List {
        #[command(flatten)]
        org: OrgArg,
    },
    /// Revoke an API key by id (`ak_…`); it stops working at once.
    Revoke {
        /// Key id, `ak_…`.
        id: String,
        #[command(flatten)]
        org: OrgArg,
    },
}

/// Manage playback-token signing keys.
#[derive(Debug, Clone, Subcommand)]
pub enum SigningKeysCommand {
    /// Create a new active signing key; the previous one keeps verifying until the tokens it
    /// signed expire (the configured maximum token TTL).
    Rotate {
        /// ES256 or EdDSA (default: the configured algorithm).
        #[arg(long)]
        alg: Option<SigningAlg>,
        #[command(flatten)]
        org: OrgArg,
    },
    /// List the signing keys that still verify.
    List {
        #[command(flatten)]
        org: OrgArg,
    },
}

impl clap::ValueEnum for SigningAlg {
    fn value_variants<'a>() -> &'a [Self] {
        &[SigningAlg::ES256, SigningAlg::EdDSA]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

async fn resolve_org(api: &Api, org: &OrgArg) -> Result<String, Error> {
    if let Some(o) = &org.org {
        return api
            .store()
            .get_org(o)
            .await?
            .map(|o| o.id)
            .ok_or(Error::NotFound);
    }
    let orgs = api.list_orgs().await?;
    match orgs.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(Error::Config(
            "no org exists; run `clutchcall serve` once".into(),
        )),
        _ => Err(Error::Config("several orgs exist; pass --org".into())),
    }
}

/// Run `clutchcall keys …`.
pub async fn run_keys(config: Config, cmd: KeysCommand) -> Result<(), Error> {
    let api = Api::open(config).await?;
    let result = async {
        match cmd {
            KeysCommand::Create { name, org } => {
                let org = resolve_org(&api, &org).await?;
                let (row, secret) = api.create_api_key(&org, &name).await?;
                println!(
                    "created API key {} ({}) in {org}; the secret is shown once:",
                    row.id, row.name
                );
                println!("CLUTCHCALL_CREDENTIALS={secret}");
            }
            KeysCommand::List { org } => {
                let org = resolve_org(&api, &org).await?;
                let mut after = None;
                println!("{:<28} {:<24} {:<22} REVOKED", "ID", "NAME", "CREATED");
                loop {
                    let rows = api.list_api_keys(&org, after.as_ref(), 100).await?;
                    for r in &rows {
                        let revoked = r.revoked_at.map(rfc3339).unwrap_or_else(|| "-".into());
                        println!(
                            "{:<28} {:<24} {:<22} {revoked}",
                            r.id,
                            r.name,
                            rfc3339(r.created_at)
                        );
                    }
                    match rows.last() {
                        Some(r) if rows.len() == 100 => {
                            after = Some(crate::store::Cursor {
                                created_at: r.created_at,
                                id: r.id.clone(),
                            })
                        }
                        _ => break,
                    }
                }
            }
            KeysCommand::Revoke { id, org } => {
                let org = resolve_org(&api, &org).await?;
                api.revoke_api_key(&org, &id).await?;
                println!("revoked {id}");
            }
        }
        Ok(())
    }
    .await;
    api.close().await;
    result
}

/// Run `clutchcall signing-keys …`.
pub async fn run_signing_keys(config: Config, cmd: SigningKeysCommand) -> Result<(), Error> {
    let api = Api::open(config).await?;
    let result = async {
        match cmd {
            SigningKeysCommand::Rotate { alg, org } => {
                let org = resolve_org(&api, &org).await?;
                let key = api.rotate_signing_key(&org, alg).await?;
                println!("new active signing key {} ({}) for {org}", key.kid, key.alg);
            }
            SigningKeysCommand::List { org } => {
                let org = resolve_org(&api, &org).await?;
                println!("{:<30} {:<6} {:<7} VERIFIES UNTIL", "KID", "ALG", "ACTIVE");
                for k in api.list_signing_keys(&org).await? {
                    let until = k.verify_until.map(rfc3339).unwrap_or_else(|| "-".into());
                    println!(
                        "{:<30} {:<6} {:<7} {until}",
                        k.kid,
                        k.alg,
                        k.retired_at.is_none()
                    );
                }
            }
        }
        Ok(())
    }
    .await;
    api.close().await;
    result
}
