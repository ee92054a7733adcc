//! The generated certificate, pinning and rotation.

mod common;

use std::time::Duration;

use common::*;
use net::client::{self, ClientError, Verify};
use net::server::Server;
use net::tls::{self, Certs, Fingerprint, Source};
use net::Transport;
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

#[test]
fn generated_certificate_fits_server_certificate_hashes() -> Result {
    let certs = certs()?;
    let identity = certs.current();
    assert_eq!(identity.source(), Source::Generated);
    let der = identity.leaf().ok_or("no leaf")?;

    // Hash = SHA-256 of the DER, in bytes and lowercase hex.
    let digest: [u8; 32] = Sha256::digest(der.as_ref()).into();
    assert_eq!(certs.fingerprint().as_bytes(), &digest);
    assert_eq!(certs.fingerprint().to_hex(), hex::encode(digest));
    assert_eq!(certs.fingerprint().to_string(), hex::encode(digest));

    let (rest, cert) = X509Certificate::from_der(der.as_ref())?;
    assert!(rest.is_empty());

    // ECDSA P-256 key, signed with ecdsa-with-SHA256.
    let spki = cert.public_key();
    assert_eq!(
        spki.algorithm.algorithm,
        x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
    );
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .ok_or("no curve")?
        .as_oid()?;
    assert_eq!(curve, x509_parser::oid_registry::OID_EC_P256);
    assert_eq!(
        cert.signature_algorithm.algorithm,
        x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256
    );

    // Validity at most 14 days, already started, not over.
    let validity = cert.validity();
    let span = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert!(span <= 14 * 24 * 3600, "validity {span} s");
    assert!(span >= 13 * 24 * 3600, "validity {span} s");
    let now = ::time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(validity.not_before.timestamp() < now - 60);
    assert!(validity.not_after.timestamp() > now);
    assert_eq!(
        identity.not_after().map(|t| t.unix_timestamp()),
        Some(validity.not_after.timestamp())
    );

    // SANs.
    let san = cert
        .subject_alternative_name()?
        .ok_or("no subjectAltName")?;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(n) => dns.push(n.to_string()),
            GeneralName::IPAddress(ip) => ips.push(ip.to_vec()),
            _ => {}
        }
    }
    assert!(dns.contains(&"localhost".to_string()), "{dns:?}");
    assert!(dns.contains(&"relay.test".to_string()), "{dns:?}");
    assert!(ips.contains(&vec![127, 0, 0, 1]), "{ips:?}");
    let v6_loopback = std::net::Ipv6Addr::LOCALHOST.octets().to_vec();
    assert!(ips.contains(&v6_loopback), "{ips:?}");

    // Not a CA.
    let constraints = cert.basic_constraints()?;
    assert!(constraints.is_none_or(|c| !c.value.ca));
    Ok(())
}

#[tokio::test]
async fn pinned_client_accepts_the_hash_and_rejects_others() -> Result {
    let certs = certs()?;
    let server = Server::bind(server_config(certs.clone()))?;
    let addr = server.local_addrs()[0];
    let _accepted = spawn_echo(server);

    for transport in [Transport::Quic, Transport::WebTransport] {
        let good = pinned(&certs)?;
        within("pinned connect", good.connect(&url(transport, addr, "/")?)).await??;

        let wrong = client::Client::new(client::Config {
            verify: Verify::Pinned(vec![Fingerprint([0x42; 32])]),
            ..client::Config::default()
        })?;
        let result = within("wrong pin", wrong.connect(&url(transport, addr, "/")?)).await?;
        assert!(
            matches!(result, Err(ClientError::Connection(_))),
            "{transport}: {result:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn rotation_swaps_the_served_certificate() -> Result {
    // Renew when less than 14 days remain: every check of a fresh certificate is due.
    let certs = Certs::new(tls::Config {
        renew_before: Duration::from_secs(14 * 24 * 3600),
        check_interval: Duration::from_millis(300),
        ..tls::Config::default()
    })?;
    let first = certs.fingerprint();
    let server = Server::bind(server_config(certs.clone()))?;
    let addr = server.local_addrs()[0];
    let _accepted = spawn_echo(server);

    // A session opened before the rotation.
    let before = pinned(&certs)?;
    let early = within("connect", before.connect(&url(Transport::Quic, addr, "/")?)).await??;

    let mut watch = certs.subscribe();
    let rotation = tokio::spawn(certs.clone().run_rotation());
    within("rotation", watch.changed()).await??;
    rotation.abort();
    let _ = rotation.await;
    let second = watch.borrow_and_update().fingerprint();
    assert_ne!(first, second);
    assert_eq!(certs.fingerprint(), second);

    // New connections get the new certificate: the old pin fails, the new one works.
    // (A fresh client: `before` could resume its TLS session without seeing a certificate.)
    let old_pin = client::Client::new(client::Config {
        verify: Verify::Pinned(vec![first]),
        ..client::Config::default()
    })?;
    let url_wt = url(Transport::WebTransport, addr, "/")?;
    let result = within("old pin", old_pin.connect(&url_wt)).await?;
    assert!(
        matches!(result, Err(ClientError::Connection(_))),
        "{result:?}"
    );
    let new_pin = pinned(&certs)?;
    within(
        "new pin",
        new_pin.connect(&url(Transport::WebTransport, addr, "/")?),
    )
    .await??;

    // The session from before keeps working.
    let (mut send, mut recv) = early.session.open_bi().await?;
    send.write_all(b"still here").await?;
    send.finish()?;
    assert_eq!(
        within("old session", recv.read_to_end(64)).await??,
        b"echo:still here"
    );
    Ok(())
}

#[test]
fn pem_files_are_loaded_and_reloaded() -> Result {
    let dir = std::env::temp_dir().join(format!(
        "clutchcall-net-pem-{}-{}",
        std::process::id(),
        ::time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let write = |name: &str| -> Result<Fingerprint> {
        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])?.self_signed(&key)?;
        std::fs::write(&cert_path, cert.pem())?;
        std::fs::write(&key_path, key.serialize_pem())?;
        Ok(Fingerprint::of(cert.der()))
    };

    let first = write("a.test")?;
    let certs = Certs::new(tls::Config {
        cert: Some(cert_path.clone()),
        key: Some(key_path.clone()),
        ..tls::Config::default()
    })?;
    assert_eq!(certs.fingerprint(), first);
    assert_eq!(certs.current().source(), Source::Files);
    assert!(!certs.refresh()?, "unchanged files must not swap");

    let second = write("b.test")?;
    assert!(certs.refresh()?);
    assert_eq!(certs.fingerprint(), second);

    // A broken file keeps the current certificate.
    std::fs::write(&key_path, "not a key")?;
    assert!(certs.refresh().is_err());
    assert_eq!(certs.fingerprint(), second);

    // Only one of the two is a configuration error.
    assert!(Certs::new(tls::Config {
        cert: Some(cert_path),
        ..tls::Config::default()
    })
    .is_err());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
