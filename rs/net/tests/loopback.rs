//! Loopback server + client over raw QUIC and WebTransport.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use net::client::{self, ClientError, Verify};
use net::server::{self, Server};
use net::{Transport, MOQT_18};

/// Uni and bi streams in both directions and datagrams both ways over one session.
async fn exercise(transport: Transport) -> Result {
    let certs = certs()?;
    let server = Server::bind(server_config(certs.clone()))?;
    let addr = server.local_addrs()[0];
    let mut accepted = spawn_echo(server);

    let client = pinned(&certs)?;
    let connected = within(
        "connect",
        client.connect(&url(transport, addr, "/stream/org_1/lv_x?jwt=abc")?),
    )
    .await??;
    assert_eq!(connected.transport, transport);
    assert_eq!(connected.protocol, MOQT_18);
    assert_eq!(connected.path, "/stream/org_1/lv_x?jwt=abc");
    assert_eq!(connected.authority, addr.to_string());
    let session = connected.session;

    let (server_transport, server_url, server_protocol) = within("server accept", accepted.recv())
        .await?
        .ok_or("server gone")?;
    assert_eq!(server_transport, transport);
    assert_eq!(server_protocol, MOQT_18);
    match transport {
        Transport::Quic => assert!(server_url.is_none()),
        Transport::WebTransport => {
            let server_url = server_url.ok_or("no CONNECT url")?;
            assert_eq!(server_url.path(), "/stream/org_1/lv_x");
            assert_eq!(server_url.query(), Some("jwt=abc"));
        }
    }

    // Client-opened uni stream; the answer comes on a server-opened uni stream.
    let mut send = session.open_uni().await?;
    send.write_all(b"uni").await?;
    send.finish()?;
    let mut recv = within("accept uni", session.accept_uni()).await??;
    assert_eq!(recv.read_to_end(1024).await?, b"echo:uni");

    // Client-opened bi stream.
    let (mut send, mut recv) = session.open_bi().await?;
    send.write_all(b"bi").await?;
    send.finish()?;
    assert_eq!(
        within("bi echo", recv.read_to_end(1024)).await??,
        b"echo:bi"
    );

    // Server-opened bi stream.
    let (mut send, mut recv) = within("accept bi", session.accept_bi()).await??;
    let data = recv.read_to_end(1024).await?;
    assert_eq!(data, b"hello from server");
    send.write_all(&[b"client:".as_slice(), &data].concat())
        .await?;
    send.finish()?;

    // Datagrams both ways (unreliable, but loopback does not lose them; resend to be safe).
    assert!(session.max_datagram_size() > 100);
    let reply = within("datagram echo", async {
        loop {
            session.send_datagram(Bytes::from_static(b"dgram"))?;
            if let Ok(reply) =
                tokio::time::timeout(Duration::from_millis(200), session.read_datagram()).await
            {
                return Ok::<_, Error>(reply?);
            }
        }
    })
    .await??;
    assert_eq!(&reply[..], b"echo:dgram");

    session.close(0, b"done");
    Ok(())
}

#[tokio::test]
async fn quic_streams_and_datagrams() -> Result {
    exercise(Transport::Quic).await
}

#[tokio::test]
async fn webtransport_streams_and_datagrams() -> Result {
    exercise(Transport::WebTransport).await
}

#[tokio::test]
async fn webtransport_without_moqt_18_is_rejected() -> Result {
    let certs = certs()?;
    let server = Server::bind(server_config(certs.clone()))?;
    let addr = server.local_addrs()[0];
    let mut accepted = spawn_echo(server);

    let client = client::Client::new(client::Config {
        verify: Verify::Pinned(vec![certs.fingerprint()]),
        protocols: vec!["moqt-17".into(), "other".into()],
        ..client::Config::default()
    })?;
    let result = within(
        "rejected connect",
        client.connect(&url(Transport::WebTransport, addr, "/")?),
    )
    .await?;
    assert!(
        matches!(result, Err(ClientError::Status(400))),
        "expected 400, got {result:?}"
    );

    // Raw QUIC with only an unknown ALPN fails the TLS handshake.
    let result = within(
        "alpn mismatch",
        client.connect(&url(Transport::Quic, addr, "/")?),
    )
    .await?;
    assert!(
        matches!(result, Err(ClientError::Connection(_))),
        "{result:?}"
    );

    // Neither reached the application, and the server still serves good clients.
    assert!(accepted.try_recv().is_err());
    let good = pinned(&certs)?;
    let connected = within(
        "good connect",
        good.connect(&url(Transport::WebTransport, addr, "/")?),
    )
    .await??;
    assert_eq!(connected.protocol, MOQT_18);
    let (transport, _, _) = within("accept", accepted.recv())
        .await?
        .ok_or("server gone")?;
    assert_eq!(transport, Transport::WebTransport);
    Ok(())
}

#[tokio::test]
async fn webtransport_without_protocol_list_is_accepted_as_moqt_18() -> Result {
    let certs = certs()?;
    let server = Server::bind(server_config(certs.clone()))?;
    let addr = server.local_addrs()[0];
    let mut accepted = spawn_echo(server);

    // A client that sends no WT-Available-Protocols at all (older browsers).
    let client = web_transport_quinn::ClientBuilder::new()
        .with_server_certificate_hashes(vec![certs.fingerprint().as_bytes().to_vec()])?;
    let url = url(Transport::WebTransport, addr, "/old")?;
    let session = within("connect", client.connect(url)).await??;
    assert_eq!(session.protocol(), None);

    let (transport, url, protocol) = within("accept", accepted.recv())
        .await?
        .ok_or("server gone")?;
    assert_eq!(transport, Transport::WebTransport);
    assert_eq!(protocol, MOQT_18);
    assert_eq!(url.ok_or("no url")?.path(), "/old");
    Ok(())
}

#[tokio::test]
async fn webtransport_selection_is_moqt_18_among_several() -> Result {
    let certs = certs()?;
    let server = Server::bind(server_config(certs.clone()))?;
    let addr = server.local_addrs()[0];
    let _accepted = spawn_echo(server);

    let client = client::Client::new(client::Config {
        verify: Verify::Pinned(vec![certs.fingerprint()]),
        protocols: vec!["moqt-99".into(), MOQT_18.into()],
        ..client::Config::default()
    })?;
    let connected = within(
        "connect",
        client.connect(&url(Transport::WebTransport, addr, "/")?),
    )
    .await??;
    assert_eq!(connected.protocol, MOQT_18);
    let response = connected.session.response().ok_or("no response")?;
    assert_eq!(response.protocol.as_deref(), Some(MOQT_18));
    Ok(())
}

#[tokio::test]
async fn slow_handshake_does_not_block_others_and_times_out() -> Result {
    let certs = certs()?;
    let server = Server::bind(server::Config {
        handshake_timeout: Duration::from_millis(500),
        ..server_config(certs.clone())
    })?;
    let addr = server.local_addrs()[0];
    let mut accepted = spawn_echo(server);

    // QUIC handshake with ALPN h3, then silence: no SETTINGS, no CONNECT.
    let client = pinned(&certs)?;
    let slow = within(
        "slow quic handshake",
        client.endpoint().connect_with(
            client.quic_config(Transport::WebTransport),
            addr,
            "localhost",
        )?,
    )
    .await??;

    // Others get through meanwhile.
    for transport in [Transport::WebTransport, Transport::Quic] {
        within("connect", client.connect(&url(transport, addr, "/")?)).await??;
        let (got, _, _) = within("accept", accepted.recv())
            .await?
            .ok_or("server gone")?;
        assert_eq!(got, transport);
    }

    // The silent one is dropped after the handshake timeout.
    within("slow client dropped", slow.closed()).await?;
    Ok(())
}

#[tokio::test]
async fn binds_port_zero_on_both_families() -> Result {
    let certs = certs()?;
    let server = Server::bind(server::Config {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0)), "[::1]:0".parse()?],
        ..server::Config::new(certs.clone())
    })?;
    let addrs = server.local_addrs().to_vec();
    assert!(!addrs.is_empty() && addrs.len() <= 2, "{addrs:?}");
    assert!(addrs.iter().all(|a| a.port() != 0), "{addrs:?}");
    assert!(addrs[0].is_ipv4());
    let _accepted = spawn_echo(server);

    // Every bound address serves.
    let client = pinned(&certs)?;
    for addr in addrs {
        within("connect", client.connect(&url(Transport::Quic, addr, "/")?)).await??;
    }

    // A taken port is an error, not a warning.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let result = Server::bind(server::Config {
        listen: vec![taken.local_addr()?],
        ..server::Config::new(certs)
    });
    assert!(
        matches!(result, Err(server::ServerError::Bind { .. })),
        "binding a taken port must fail"
    );
    Ok(())
}

#[tokio::test]
async fn many_sessions_share_one_client_socket() -> Result {
    let certs = certs()?;
    let server = Server::bind(server_config(certs.clone()))?;
    let addr = server.local_addrs()[0];
    let _accepted = spawn_echo(server);

    let client = pinned(&certs)?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let client = client.clone();
        let transport = if i % 2 == 0 {
            Transport::Quic
        } else {
            Transport::WebTransport
        };
        let url = url(transport, addr, "/")?;
        tasks.spawn(async move { client.connect(&url).await.map(|c| c.session) });
    }
    let mut sessions = Vec::new();
    while let Some(done) = within("connects", tasks.join_next()).await? {
        sessions.push(done??);
    }
    assert_eq!(sessions.len(), 50);
    assert_eq!(client.open_connections(), 50);
    Ok(())
}

#[tokio::test]
async fn verification_modes() -> Result {
    let certs = certs()?;
    let server = Server::bind(server_config(certs.clone()))?;
    let addr = server.local_addrs()[0];
    let _accepted = spawn_echo(server);

    let insecure = client::Client::new(client::Config {
        verify: Verify::InsecureAcceptAnyCertificate,
        ..client::Config::default()
    })?;
    within(
        "insecure connect",
        insecure.connect(&url(Transport::WebTransport, addr, "/")?),
    )
    .await??;

    // Self-signed: the platform roots do not trust it.
    if let Ok(roots) = client::Client::new(client::Config::default()) {
        let result = within(
            "roots connect",
            roots.connect(&url(Transport::Quic, addr, "/")?),
        )
        .await?;
        assert!(result.is_err());
    }

    // Explicit roots: the self-signed certificate as its own trust anchor, checked by name
    // (here the IP SAN 127.0.0.1).
    let leaf = certs.current().leaf().ok_or("no leaf")?.clone();
    let anchored = client::Client::new(client::Config {
        verify: Verify::Roots(vec![leaf]),
        ..client::Config::default()
    })?;
    within(
        "roots connect",
        anchored.connect(&url(Transport::WebTransport, addr, "/")?),
    )
    .await??;
    Ok(())
}
