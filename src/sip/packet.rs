//! What crosses the boundary between the IO runtime and the sans-IO layers:
//! a received packet with its addresses, and a transmission to make.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

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

    /// The transport a listening socket of this one is: WebSocket runs on
    /// the TCP (`ws`) or TLS (`wss`) listeners, after an HTTP upgrade.
    pub fn carrier(self) -> Proto {
        match self {
            Proto::Ws => Proto::Tcp,
            Proto::Wss => Proto::Tls,
            p => p,
        }
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

/// A stream connection (TCP or TLS) of the runtime, as an opaque number: the
/// runtime encodes which worker owns it and which of its connections it is
/// (with a generation, so an id outlives its connection harmlessly: sending
/// on a closed connection's id falls back to `dst`). The sans-IO layers only
/// copy it: from an [`Inbound`] to the [`Transmit`] that answers it, or
/// through a Via parameter (`;i=`, as Kamailio does) to the reply of a
/// forwarded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    pub const fn from_raw(raw: u64) -> ConnId {
        ConnId(raw)
    }

    pub const fn raw(self) -> u64 {
        self.0
    }
}

/// One message (a datagram, or one framed message of a stream) as received.
#[derive(Clone, Debug)]
pub struct Inbound {
    /// The message. Empty on a `ws`/`wss` connection: the connection's
    /// WebSocket closing handshake is done (the runtime never delivers an
    /// empty WebSocket message), for `event_route[websocket:closed]`.
    pub data: Bytes,
    /// Where it came from.
    pub src: SocketAddr,
    /// The local address it arrived on (from IP_PKTINFO when bound to a wildcard).
    pub local: SocketAddr,
    pub proto: Proto,
    /// Which listening socket received it (for a connection this server
    /// opened: the listen it was opened for).
    pub socket: SocketId,
    /// The stream connection it arrived on; `None` for a datagram.
    pub conn: Option<ConnId>,
    /// When the kernel received it (a datagram's receive timestamp, on the
    /// monotonic clock), an input like the `now` of a round: it may be
    /// earlier than the round that handles it. `None` when unknown (streams,
    /// messages made up by tests): the round's start stands in.
    pub arrived: Option<Instant>,
}

/// What the script asked of a send over TCP or TLS (ignored for UDP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendFlags {
    /// Send only on a connection that is already open; never open one
    /// (`set_forward_no_connect`, `set_reply_no_connect`).
    pub no_connect: bool,
    /// Close the connection once this message is sent
    /// (`set_forward_close`, `set_reply_close`).
    pub close: bool,
    /// What the send means to a WebSocket connection (websocket module).
    pub websocket: WsSend,
}

/// What a send means on a connection that speaks, or is to speak,
/// WebSocket (RFC 6455).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WsSend {
    /// A message: sent in one text frame when the connection speaks
    /// WebSocket, as it is otherwise.
    #[default]
    Message,
    /// The `101 Switching Protocols` answer to a handshake: sent as it is,
    /// then the connection speaks WebSocket (`ws`, or `wss` over TLS) and
    /// is found under that transport.
    Upgrade,
    /// `data` is the payload of a close frame (status code, reason): sent
    /// as one, then the connection closes (`ws_close`). The connection is
    /// the one named, whatever `dst`.
    Close,
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
    /// For a stream transport: send on this connection (RFC 3261 §18.2.2: a
    /// response goes back on the connection its request came on) when it is
    /// still open and its peer has `dst`'s IP address. Otherwise, or when
    /// `None`, the runtime reuses a connection to `dst` (by address, or by a
    /// Via `;alias`, RFC 5923) or opens one. Ignored for UDP.
    pub conn: Option<ConnId>,
    /// `no_connect` and `close` for a stream; ignored for UDP.
    pub flags: SendFlags,
}
