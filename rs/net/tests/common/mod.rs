//! Helpers shared by the integration tests: a loopback server that echoes everything.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use net::client::{self, Verify};
use net::server::{self, Incoming, Server};
use net::tls::{self, Certs};
use net::{Session, Transport};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T = ()> = std::result::Result<T, Error>;

/// Generous bound for anything that should happen promptly on loopback.
pub const STEP: Duration = Duration::from_secs(10);

pub fn certs() -> Result<Certs> {
    Ok(Certs::new(tls::Config {
        hostnames: vec!["relay.test".into()],
        ..tls::Config::default()
    })?)
}

pub fn server_config(certs: Certs) -> server::Config {
    server::Config {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        ..server::Config::new(certs)
    }
}

pub fn pinned(certs: &Certs) -> Result<client::Client> {
    Ok(client::Client::new(client::Config {
        verify: Verify::Pinned(vec![certs.fingerprint()]),
        ..client::Config::default()
    })?)
}

pub fn url(transport: Transport, addr: SocketAddr, path: &str) -> Result<url::Url> {
    let scheme = match transport {
        Transport::Quic => "moqt",
        Transport::WebTransport => "https",
    };
    Ok(url::Url::parse(&format!("{scheme}://{addr}{path}"))?)
}

pub async fn within<F: std::future::Future>(what: &str, f: F) -> Result<F::Output> {
    tokio::time::timeout(STEP, f)
        .await
        .map_err(|_| format!("timed out: {what}").into())
}

/// Runs `server`, echoing every session, and forwards each accepted session's metadata.
pub fn spawn_echo(
    mut server: Server,
) -> tokio::sync::mpsc::UnboundedReceiver<(Transport, Option<url::Url>, String)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let Incoming {
                session,
                transport,
                url,
                protocol,
                ..
            } = incoming;
            let _ = tx.send((transport, url, protocol));
            tokio::spawn(echo(session));
        }
    });
    rx
}

/// Echo: each incoming uni stream comes back on a new server-opened uni stream, each bi stream
/// on itself, each datagram as a datagram, all prefixed with `echo:`. The server also opens one
/// bi stream of its own, sends `hello from server` and expects the client to echo it.
pub async fn echo(session: Session) {
    let uni = {
        let session = session.clone();
        async move {
            loop {
                let mut recv = session.accept_uni().await?;
                let data = recv.read_to_end(1 << 20).await?;
                let mut send = session.open_uni().await?;
                send.write_all(&[b"echo:".as_slice(), &data].concat())
                    .await?;
                send.finish()?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        }
    };
    let bi = {
        let session = session.clone();
        async move {
            loop {
                let (mut send, mut recv) = session.accept_bi().await?;
                let data = recv.read_to_end(1 << 20).await?;
                send.write_all(&[b"echo:".as_slice(), &data].concat())
                    .await?;
                send.finish()?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        }
    };
    let datagrams = {
        let session = session.clone();
        async move {
            loop {
                let data = session.read_datagram().await?;
                session.send_datagram(Bytes::from([b"echo:".as_slice(), &data].concat()))?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        }
    };
    let server_bi = {
        let session = session.clone();
        async move {
            let (mut send, mut recv) = session.open_bi().await?;
            send.write_all(b"hello from server").await?;
            send.finish()?;
            let reply = recv.read_to_end(1 << 20).await?;
            if reply != b"client:hello from server" {
                return Err::<(), Error>("bad reply to server-opened stream".into());
            }
            // Keep the session alive until the client goes away.
            session.closed().await;
            Ok(())
        }
    };
    let _ = tokio::join!(uni, bi, datagrams, server_bi);
}
