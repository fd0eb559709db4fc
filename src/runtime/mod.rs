//! The only IO: per-core workers, the io_uring driver and its poll fallback,
//! sockets, connections, cross-core channels and the clock.
//!
//! [`start`] binds one SO_REUSEPORT socket per listen address (UDP socket or
//! TCP listener) on each of N worker threads (DESIGN.md "Thread-per-core"),
//! gives each worker its own
//! compio runtime (its own ring) and a [`Handler`] made on that thread, and
//! returns a [`Server`]. The handler is the sans-IO engine of one core: the
//! runtime hands it every received datagram and every timer expiry, and sends
//! what it queues.
//!
//! ```no_run
//! use std::time::Instant;
//! use ringsip::runtime::{self, Handler, ListenSpec, RuntimeConfig, WorkerInfo};
//! use ringsip::sip::packet::{Inbound, Transmit};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_inbound(&mut self, pkt: Inbound, _now: Instant, out: &mut Vec<Transmit>) {
//!         out.push(Transmit {
//!             data: pkt.data,
//!             dst: pkt.src,
//!             proto: pkt.proto,
//!             socket: Some(pkt.socket),
//!             local: Some(pkt.local),
//!             conn: pkt.conn,
//!             flags: Default::default(),
//!         });
//!     }
//!     fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
//!     fn next_deadline(&self) -> Option<Instant> { None }
//! }
//!
//! let cfg = RuntimeConfig::new(vec![ListenSpec::udp("0.0.0.0:5060".parse().unwrap())]);
//! let server = runtime::start(cfg, |_: WorkerInfo| Echo)?;
//! server.wait()?; // until SIGINT/SIGTERM or Server::stop
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Module map: [`config`] what to run; `server` start/stop/wait and signals;
//! `worker` the per-core loop; `driver` io_uring or poll; `transport` the seam
//! a socket kind implements: `udp`, and `stream` (TCP and TLS listeners and
//! connections, with `framing` cutting messages out of streams); `handoff`
//! the cross-core queues; `stats` stream and hand-off counters; `socket`
//! socket options; `cmsg` packet-info control messages; `seccomp` a test aid.

use std::ops::Add;
use std::time::Instant;

use crate::sip::packet::{Inbound, Transmit};

mod clock;
mod cmsg;
pub mod config;
pub mod dns;
mod driver;
mod engine;
mod framing;
mod handoff;
mod http;
pub mod media;
mod memory;
mod metered;
mod process;
mod seccomp;
mod server;
mod socket;
mod stats;
mod stream;
mod transport;
mod udp;
mod worker;

pub use config::{IoDriver, IoMode, ListenSpec, RuntimeConfig, WorkerInfo};

pub use http::SystemHttp;
pub use memory::no_transparent_huge_pages;
pub use metered::Metered;
pub use process::SystemShell;
pub use seccomp::refuse_io_uring_in_this_thread;
pub use server::{start, Server, StopHandle};
pub use socket::raise_open_files_limit;
pub use stats::StreamStats;
pub use stream::tls_config::{self, TlsProfiles};

/// What the sans-IO engine of one core looks like to the runtime. It is made
/// on its worker's thread and stays there, so it need not be `Send`.
///
/// Per round the runtime calls `on_inbound` for each message that arrived
/// (a datagram, or a message framed out of a TCP/TLS connection; in arrival
/// order per socket and per connection), then `on_timer` if `next_deadline`
/// has passed, then sends everything pushed to `out`, in order, and sleeps
/// until the next message or `next_deadline`.
pub trait Handler: 'static {
    /// One received message, in arrival order for each socket: a flow is
    /// never reordered.
    fn on_inbound(&mut self, pkt: Inbound, now: Instant, out: &mut Vec<Transmit>);

    /// The deadline returned by [`next_deadline`](Handler::next_deadline) has
    /// passed. Afterwards `next_deadline` must be later than `now` (or `None`),
    /// or the worker calls again at once.
    fn on_timer(&mut self, now: Instant, out: &mut Vec<Transmit>);

    /// The network intercept stage on a message as received from a socket
    /// (not on one handed over by another worker: that one passed the stage
    /// already), before `on_inbound`; false drops it. It may replace the bytes.
    fn on_received(&mut self, _pkt: &mut Inbound, _now: Instant) -> bool {
        true
    }

    /// The network intercept stage on each message about to be sent; false
    /// drops it. It may replace the bytes.
    fn on_sending(&mut self, _transmit: &mut Transmit, _now: Instant) -> bool {
        true
    }

    /// Earliest timer deadline, if any.
    fn next_deadline(&self) -> Option<Instant>;

    /// Messages that arrived here but belong to another worker's state (a
    /// reply to a transaction that worker owns), as `(worker, message)`: the
    /// runtime delivers each to that worker's `on_inbound`.
    fn take_handoffs(&mut self, _into: &mut Vec<(usize, Inbound)>) {}

    /// Called once per round, just before what the round produced is handed
    /// to the sockets, with the clock reading the round already made (for
    /// latency measurement; nothing to do by default).
    fn on_dispatch(&mut self, _now: Instant) {}
}

/// Per-socket traffic counts of one worker (logged when it stops).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub received: u64,
    /// Received but not handed over (too long, no source address).
    pub dropped: u64,
    pub sent: u64,
    pub send_errors: u64,
}

impl Add for Counters {
    type Output = Counters;

    fn add(self, other: Counters) -> Counters {
        Counters {
            received: self.received + other.received,
            dropped: self.dropped + other.dropped,
            sent: self.sent + other.sent,
            send_errors: self.send_errors + other.send_errors,
        }
    }
}
