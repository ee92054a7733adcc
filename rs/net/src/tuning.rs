//! QUIC transport parameters shared by the server and the client.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::quinn;

/// Congestion controller used for every connection of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Congestion {
    /// CUBIC (quinn's default): the safe choice on shared networks.
    #[default]
    Cubic,
    /// NewReno.
    NewReno,
    /// BBR (quinn marks it experimental): lower queueing delay, useful for live media.
    Bbr,
}

/// QUIC transport tuning for a media relay that fans one publisher out to many viewers.
///
/// A viewer receives one unidirectional stream per group per track (CMSF: one group per GOP), and
/// old streams may still be draining while new ones open, so stream limits are high. The windows
/// are limits, not allocations: memory is only used when a peer actually sends that much.
#[derive(Debug, Clone)]
pub struct TransportTuning {
    /// Unidirectional streams the peer may have open at once. Default 10 000.
    pub max_concurrent_uni_streams: u32,
    /// Bidirectional streams (MoQT requests) the peer may have open at once. Default 1 000.
    pub max_concurrent_bidi_streams: u32,
    /// Bytes the peer may send on one stream before we read them. Default 4 MiB
    /// (a few seconds of a high-bitrate keyframe group).
    pub stream_receive_window: u32,
    /// Bytes the peer may send on the whole connection before we read them. Default 32 MiB.
    pub receive_window: u32,
    /// Bytes we buffer unacknowledged per connection. Default 32 MiB.
    pub send_window: u64,
    /// Send a PING when nothing else was sent for this long, keeping NAT bindings alive.
    /// Default 4 s; `None` disables.
    pub keep_alive: Option<Duration>,
    /// Close a connection after this long without hearing from the peer. The effective timeout
    /// is the smaller of both sides' values. Default 30 s.
    pub idle_timeout: Duration,
    /// Received QUIC datagrams buffered before the oldest are dropped. Default 1 MiB.
    pub datagram_receive_buffer: usize,
    /// Outgoing QUIC datagrams buffered before the oldest are dropped. Default 1 MiB.
    pub datagram_send_buffer: usize,
    /// Initial RTT estimate before the first sample. Default 100 ms (quinn uses 333 ms).
    pub initial_rtt: Duration,
    /// Congestion controller. Default [`Congestion::Cubic`].
    pub congestion: Congestion,
    /// Largest UDP payload MTU discovery may probe up to. Default 1452 (quinn's, safe on the
    /// internet). Raise it where the path allows it (jumbo frames in a datacenter, loopback):
    /// fewer, larger packets cost far less CPU per byte. Probes that fail are harmless.
    pub max_udp_payload: u16,
    /// SO_RCVBUF / SO_SNDBUF requested for the UDP socket, so bursts to or from many peers are
    /// not dropped by the kernel (which caps the request at `net.core.rmem_max`/`wmem_max`).
    /// Default 4 MiB; `None` keeps the system default.
    pub udp_buffer: Option<usize>,
}

impl Default for TransportTuning {
    fn default() -> Self {
        Self {
            max_concurrent_uni_streams: 10_000,
            max_concurrent_bidi_streams: 1_000,
            stream_receive_window: 4 * 1024 * 1024,
            receive_window: 32 * 1024 * 1024,
            send_window: 32 * 1024 * 1024,
            keep_alive: Some(Duration::from_secs(4)),
            idle_timeout: Duration::from_secs(30),
            datagram_receive_buffer: 1024 * 1024,
            datagram_send_buffer: 1024 * 1024,
            initial_rtt: Duration::from_millis(100),
            congestion: Congestion::Cubic,
            max_udp_payload: 1452,
            udp_buffer: Some(4 * 1024 * 1024),
        }
    }
}

impl TransportTuning {
    /// Builds the quinn transport configuration.
    pub fn to_quinn(&self) -> Arc<quinn::TransportConfig> {
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_uni_streams(self.max_concurrent_uni_streams.into())
            .max_concurrent_bidi_streams(self.max_concurrent_bidi_streams.into())
            .stream_receive_window(self.stream_receive_window.into())
            .receive_window(self.receive_window.into())
            .send_window(self.send_window)
            .keep_alive_interval(self.keep_alive)
            // An idle timeout beyond QUIC's varint range is the same as "never": use the maximum.
            .max_idle_timeout(Some(
                quinn::IdleTimeout::try_from(self.idle_timeout)
                    .unwrap_or_else(|_| quinn::IdleTimeout::from(quinn::VarInt::MAX)),
            ))
            .datagram_receive_buffer_size(Some(self.datagram_receive_buffer))
            .datagram_send_buffer_size(self.datagram_send_buffer)
            .initial_rtt(self.initial_rtt);
        let mut mtu = quinn::MtuDiscoveryConfig::default();
        mtu.upper_bound(self.max_udp_payload.max(1200));
        t.mtu_discovery_config(Some(mtu));
        match self.congestion {
            Congestion::Cubic => {
                t.congestion_controller_factory(
                    Arc::new(quinn::congestion::CubicConfig::default()),
                );
            }
            Congestion::NewReno => {
                t.congestion_controller_factory(Arc::new(
                    quinn::congestion::NewRenoConfig::default(),
                ));
            }
            Congestion::Bbr => {
                t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
            }
        }
        Arc::new(t)
    }
}

/// Binds a UDP socket at `addr`. An IPv6 socket is IPv6-only when `v6_only`, else dual-stack.
pub(crate) fn bind_udp(
    addr: SocketAddr,
    buffer: Option<usize>,
    v6_only: bool,
) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(v6_only)?;
    }
    if let Some(size) = buffer {
        // Best effort: an unprivileged process gets at most the sysctl maximum.
        if let Err(err) = socket.set_recv_buffer_size(size) {
            tracing::debug!(%addr, %err, "cannot set UDP receive buffer");
        }
        if let Err(err) = socket.set_send_buffer_size(size) {
            tracing::debug!(%addr, %err, "cannot set UDP send buffer");
        }
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}
