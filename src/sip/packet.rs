//! What crosses the boundary between the IO runtime and the sans-IO layers:
//! a received packet with its addresses, and a transmission to make.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

/// Transport protocol of a socket, a Via or a URI (`transport=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
}

impl Proto {
    /// Upper-case name as written in a Via sent-protocol (`SIP/2.0/UDP`).
    pub fn via_name(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
            Proto::Tls => "TLS",
            Proto::Sctp => "SCTP",
            Proto::Ws => "WS",
            Proto::Wss => "WSS",
        }
    }

    /// Lower-case name as Kamailio's `$pr` prints it and as `listen=` spells it.
    pub fn lower_name(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
            Proto::Sctp => "sctp",
            Proto::Ws => "ws",
            Proto::Wss => "wss",
        }
    }

    /// Parses a transport name case-insensitively (`udp`, `TCP`, `tls`, …).
    pub fn from_name(name: &[u8]) -> Option<Proto> {
        const NAMES: [(&[u8], Proto); 6] = [
            (b"udp", Proto::Udp),
            (b"tcp", Proto::Tcp),
            (b"tls", Proto::Tls),
            (b"sctp", Proto::Sctp),
            (b"ws", Proto::Ws),
            (b"wss", Proto::Wss),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
    }

    /// Whether the transport is a reliable stream (RFC 3261 §17: no retransmissions).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Proto::Udp)
    }

    /// Default port for this transport (RFC 3261 §19.1.2: 5060, 5061 for TLS).
    pub fn default_port(self) -> u16 {
        match self {
            Proto::Tls | Proto::Wss => 5061,
            _ => 5060,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lower_name())
    }
}

/// Index of a listening socket in the configured socket list (same on every core).
pub type SocketId = u16;

/// One message (a datagram, or one framed message of a stream) as received.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub data: Bytes,
    /// Where it came from.
    pub src: SocketAddr,
    /// The local address it arrived on (from IP_PKTINFO when bound to a wildcard).
    pub local: SocketAddr,
    pub proto: Proto,
    /// Which listening socket received it.
    pub socket: SocketId,
}

/// One message to send.
#[derive(Clone, Debug)]
pub struct Transmit {
    pub data: Bytes,
    pub dst: SocketAddr,
    pub proto: Proto,
    /// Send from this socket; `None` lets the runtime choose one matching `dst`.
    pub socket: Option<SocketId>,
    /// Send from this local address: copy [`Inbound::local`] when answering, because
    /// RFC 3581 §4 says the server "MUST send the response from the same IP address
    /// and port that the request was received on". It matters for a socket bound to
    /// a wildcard address (0.0.0.0, ::), where the socket alone does not say which
    /// address that was. `None` lets the kernel choose by route.
    pub local: Option<SocketAddr>,
}
