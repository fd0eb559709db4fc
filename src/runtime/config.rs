//! What the runtime is told to do (listen addresses, workers, IO driver) and
//! what it tells each worker's handler when it creates it.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::sip::packet::Proto;

/// One `listen=` line: a transport and the address to bind on every worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    pub proto: Proto,
    /// Port 0 binds an ephemeral port, the same one on every worker (see
    /// [`WorkerInfo::locals`] and [`Server::local_addrs`](super::Server::local_addrs)).
    pub addr: SocketAddr,
    /// Host and port to write in Via/Record-Route instead of `addr`
    /// (Kamailio's `advertise`); the runtime only carries it.
    pub advertise: Option<(String, u16)>,
}

impl ListenSpec {
    /// A UDP listen on `addr` with nothing advertised.
    pub fn udp(addr: SocketAddr) -> ListenSpec {
        ListenSpec {
            proto: Proto::Udp,
            addr,
            advertise: None,
        }
    }

    /// A TCP listen on `addr` with nothing advertised.
    pub fn tcp(addr: SocketAddr) -> ListenSpec {
        ListenSpec {
            proto: Proto::Tcp,
            ..ListenSpec::udp(addr)
        }
    }

    /// A TLS listen on `addr` (needs [`RuntimeConfig::tls_certificate`] and
    /// [`RuntimeConfig::tls_private_key`]).
    pub fn tls(addr: SocketAddr) -> ListenSpec {
        ListenSpec {
            proto: Proto::Tls,
            ..ListenSpec::udp(addr)
        }
    }
}

/// Which IO driver the workers should run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoMode {
    /// io_uring when the kernel allows it, else the poll driver (logged).
    #[default]
    Auto,
    /// io_uring or fail: for benchmarks and for tests that must not fall back.
    Uring,
    /// The poll (epoll) driver even where io_uring works.
    Poll,
}

/// The IO driver a worker actually runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoDriver {
    IoUring,
    Poll,
}

impl IoDriver {
    /// `io_uring` or `poll`, as logs print it.
    pub fn name(self) -> &'static str {
        match self {
            IoDriver::IoUring => "io_uring",
            IoDriver::Poll => "poll",
        }
    }
}

impl fmt::Display for IoDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything [`start`](super::start) needs.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Index `i` here is `SocketId` `i` in [`Inbound`](crate::sip::packet::Inbound)
    /// and [`Transmit`](crate::sip::packet::Transmit), on every worker.
    pub listens: Vec<ListenSpec>,
    /// Number of worker threads; 0 means one per core.
    pub workers: usize,
    pub io: IoMode,
    /// Pin worker `i` to core `i` (modulo the number of cores).
    pub pin_cores: bool,
    /// Stop on SIGINT/SIGTERM. A second signal after a stop was requested
    /// runs the default action (the process ends). Tests that start many
    /// servers in one process turn this off.
    pub handle_signals: bool,
    /// SO_RCVBUF to ask for on every socket (best effort: the kernel caps it
    /// at `net.core.rmem_max`).
    pub recv_buffer_size: usize,
    /// SO_SNDBUF to ask for on every socket (best effort, `net.core.wmem_max`).
    pub send_buffer_size: usize,
    /// Largest datagram accepted; longer ones are dropped (logged at debug).
    pub max_datagram: usize,
    /// io_uring receive buffers per worker, shared by its sockets (rounded up
    /// to a power of two, at most 32768). Each holds one datagram of
    /// `max_datagram` bytes plus its addresses, so the default costs about
    /// 4 MiB per worker. A burst larger than this waits in the socket buffer
    /// for one more kernel round trip. (The poll driver uses one buffer per
    /// socket instead.)
    pub recv_buffers: u16,

    // Stream transports (TCP and TLS). Names and defaults are Kamailio's
    // core parameters where it has one.
    /// Close a connection after this long without traffic either way
    /// (`tcp_connection_lifetime`, 120 s).
    pub tcp_connection_lifetime: Duration,
    /// Connections open at once, accepted and outgoing, in the whole process
    /// (`tcp_max_connections`, 2048). One more is accepted and closed at once.
    pub tcp_max_connections: usize,
    /// An outgoing connection must be established (and for TLS, its
    /// handshake started) within this (`tcp_connect_timeout`, 10 s).
    pub tcp_connect_timeout: Duration,
    /// A connection with data to send that makes no progress for this long
    /// is closed (`tcp_send_timeout`, 10 s).
    pub tcp_send_timeout: Duration,
    /// Once the first byte of a message (or of a TLS handshake) arrived, the
    /// whole of it must arrive within this, else the connection is closed:
    /// a slow sender cannot hold a connection's buffer for ever
    /// (`tcp_msg_read_timeout`, 20 s).
    pub tcp_msg_read_timeout: Duration,
    /// A message without Content-Length on a stream is taken as having no
    /// body instead of closing the connection (`tcp_accept_no_cl`, off).
    pub tcp_accept_no_cl: bool,
    /// Largest message on a stream, headers and body (65535); a longer one
    /// closes the connection. A connection buffers at most this plus one read.
    pub tcp_max_message: usize,
    /// Bytes a connection may have waiting to be sent (`tcp_conn_wq_max`,
    /// 256 KiB); a peer that does not read is disconnected beyond it.
    pub tcp_send_queue_max: usize,
    /// PEM certificate chain for `tls:` listens (and offered as client
    /// certificate on outgoing TLS).
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key of `tls_certificate`.
    pub tls_private_key: Option<PathBuf>,
    /// PEM CA certificates: verifies servers we connect to, and clients when
    /// `tls_verify_client`.
    pub tls_ca_list: Option<PathBuf>,
    /// Require a client certificate that chains to `tls_ca_list`.
    pub tls_verify_client: bool,
    /// Accept any server certificate on outgoing TLS. Risky: anyone on the
    /// path can then read and change the traffic.
    pub tls_dangerous_skip_server_verification: bool,
    /// `tls.cfg` profiles and `tls` modparams; when set, the `tls_*` fields
    /// above are not used.
    pub tls_profiles: Option<super::stream::tls_config::TlsProfiles>,
    /// TLS connections open at once (`tls_max_connections`, 2048), counted
    /// within `tcp_max_connections` too.
    pub tls_max_connections: usize,
    /// Keep-alive frames on idle WebSocket connections (websocket's
    /// `keepalive_*` parameters); `None`: none.
    pub ws_keepalive: Option<crate::modules::websocket::Keepalive>,
    /// The WebSocket clients connected, kept up to date here for tm.
    pub ws_peers: Option<std::sync::Arc<crate::modules::websocket::WsPeers>>,
}

impl RuntimeConfig {
    /// Defaults for production: one worker per core, pinned, io_uring when
    /// available, signals handled, 4 MiB socket buffers, 64 KiB datagrams.
    pub fn new(listens: Vec<ListenSpec>) -> RuntimeConfig {
        RuntimeConfig {
            listens,
            workers: 0,
            io: IoMode::Auto,
            pin_cores: true,
            handle_signals: true,
            recv_buffer_size: 4 << 20,
            send_buffer_size: 4 << 20,
            max_datagram: u16::MAX as usize,
            recv_buffers: 64,
            tcp_connection_lifetime: Duration::from_secs(120),
            tcp_max_connections: 2048,
            tcp_connect_timeout: Duration::from_secs(10),
            tcp_send_timeout: Duration::from_secs(10),
            tcp_msg_read_timeout: Duration::from_secs(20),
            tcp_accept_no_cl: false,
            tcp_max_message: u16::MAX as usize,
            tcp_send_queue_max: 256 << 10,
            tls_certificate: None,
            tls_private_key: None,
            tls_ca_list: None,
            tls_verify_client: false,
            tls_dangerous_skip_server_verification: false,
            tls_profiles: None,
            tls_max_connections: 2048,
            ws_keepalive: None,
            ws_peers: None,
        }
    }

    /// `workers`, with 0 resolved to the number of cores.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// What a worker's [`Handler`](super::Handler) learns when it is created.
#[derive(Clone, Debug)]
pub struct WorkerInfo {
    /// 0-based index of this worker (the core that owns it when pinned).
    pub index: usize,
    /// Number of workers.
    pub count: usize,
    /// Resolved local address of each listen (same order as
    /// [`RuntimeConfig::listens`]), e.g. the port chosen for port 0.
    pub locals: Arc<[SocketAddr]>,
    /// The IO driver this worker runs.
    pub driver: IoDriver,
}
