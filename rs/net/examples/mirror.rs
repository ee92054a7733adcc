//! A development server for checking clients against `net` without the relay: it accepts raw
//! QUIC and WebTransport sessions and mirrors the first unidirectional stream a client opens
//! onto a unidirectional stream of its own (so a client that sends a MoQT SETUP gets a SETUP
//! back; this example, like the crate, never looks inside the bytes).
//!
//! ```text
//! cargo run -p clutchcall-net --example mirror -- 127.0.0.1:0
//! ```
//!
//! Prints one line `mirror listening <addr> sha256 <hex>` on stdout once bound.

use std::net::SocketAddr;

use net::server::{Config, Server};
use net::tls::{self, Certs};
use net::Session;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: Vec<SocketAddr> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let certs = Certs::new(tls::Config::default())?;
    let mut config = Config::new(certs.clone());
    if !listen.is_empty() {
        config.listen = listen;
    }
    let mut server = Server::bind(config)?;
    let addrs: Vec<String> = server.local_addrs().iter().map(|a| a.to_string()).collect();
    println!(
        "mirror listening {} sha256 {}",
        addrs.join(","),
        certs.fingerprint()
    );

    while let Some(incoming) = server.accept().await {
        eprintln!(
            "session from {} over {} ({}), url {:?}",
            incoming.remote,
            incoming.transport,
            incoming.protocol,
            incoming.url.as_ref().map(|u| u.as_str())
        );
        tokio::spawn(mirror(incoming.session));
    }
    Ok(())
}

async fn mirror(session: Session) {
    let result = async {
        let mut recv = session.accept_uni().await?;
        let mut send = session.open_uni().await?;
        let mut buf = vec![0u8; 64 * 1024];
        while let Some(n) = recv.read(&mut buf).await? {
            send.write_all(&buf[..n]).await?;
        }
        // Keep our stream open, as a control stream would be, until the client leaves.
        session.closed().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    if let Err(err) = result {
        eprintln!("session ended: {err}");
    }
}
