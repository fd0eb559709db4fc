//! What the runtime is told to do (listen addresses, workers, IO driver) and
//! what it tells each worker's handler when it creates it.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

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
        }
    }

    /// `workers`, with 0 resolved to the number of cores.
    pub(super) fn worker_count(&self) -> usize {
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
