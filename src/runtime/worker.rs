//! One worker: an OS thread (pinned to a core when asked) with its own compio
//! runtime and ring, its own socket per listen address, and the handler made
//! for it. Everything runs in one task, one round at a time:
//!
//! ```text
//!  wake-up (completions reaped by compio: datagrams, reads, accepts,
//!  finished sends, hand-offs from other workers)
//!   ├─ read the clocks once (the round's `now`, and the pair that places
//!   │  kernel receive stamps)
//!   ├─ each transport: hand the messages that arrived to the handler, in
//!   │  order (UDP: per socket; streams: per connection)
//!   ├─ the handler's deadline has passed: on_timer
//!   ├─ route every queued Transmit to a socket and send it (UDP: one
//!   │  sendmsg, straight to the kernel; streams: queued on the connection)
//!   └─ poll the sends still in the ring (streams, a full UDP socket buffer)
//!  wait: one io_uring_enter submits what was queued and waits for the next
//!  event, at most until the handler's next deadline
//! ```
//!
//! No message gets a task of its own, so nothing can reorder a flow.
//!
//! The worker drives its compio runtime itself (`drive`) rather than through
//! `block_on`: the handler's next deadline becomes the timeout of the wait
//! directly, computed afresh before every wait, so no compio timer is armed
//! per deadline change (its timer wheel costs a map insert per arm and a map
//! split per wake-up), a later deadline costs nothing, and an earlier one is
//! the next wait's timeout. The wait can end before the deadline (an event,
//! or a kernel timeout rounded down), never after it except by scheduling:
//! the round then finds the deadline not yet due and waits again for the
//! rest. compio's own timers (the stream sweep, the drain at stop) still
//! bound the wait through `Runtime::current_timeout`.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use compio::runtime::Runtime;

use super::clock::Clocks;
use super::config::{IoDriver, IoMode, WorkerInfo};
use super::driver::{build_runtime, PoolShape};
use super::handoff::Mailboxes;
use super::server::StopState;
use super::stream::{Shared as StreamShared, Streams};
use super::transport::Transport;
use super::udp::UdpTransport;
use super::{Counters, Handler};
use crate::sip::packet::{Inbound, Proto, SocketId, Transmit};

/// Most steps one socket takes per round before the others, the timer and
/// the sends get their turn.
const RECV_BUDGET: usize = 64;

/// How long a stopping worker waits for its sends in flight, and then for
/// its sockets to close.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// One bound socket of a worker, by `SocketId`.
pub(super) enum Bound {
    Udp(std::net::UdpSocket),
    /// A listening TCP socket of a `tcp:` or `tls:` listen.
    Stream(Proto, std::net::TcpListener),
}

/// What a worker thread is given.
pub(super) struct Setup<F> {
    pub index: usize,
    pub count: usize,
    pub sockets: Vec<Bound>,
    /// What the stream transports of all workers share (if any listen is one).
    pub streams: Option<Arc<StreamShared>>,
    /// Messages handed to each worker by the others.
    pub inbox: Arc<Mailboxes<Inbound>>,
    pub locals: Arc<[SocketAddr]>,
    pub io: IoMode,
    pub core: Option<core_affinity::CoreId>,
    pub pool: PoolShape,
    pub max_datagram: usize,
    pub make: Arc<F>,
    pub stop: Arc<StopState>,
    /// Told once: the driver the worker runs, or why it could not start.
    pub ready: mpsc::Sender<io::Result<IoDriver>>,
}

/// The body of a worker thread. Start-up errors go to `setup.ready`; the
/// result is how the worker ended once it had started.
pub(super) fn run<H, F>(setup: Setup<F>) -> io::Result<()>
where
    H: Handler,
    F: Fn(WorkerInfo) -> H,
{
    // Whatever ends this worker (stop, error, a panicking handler) stops the others.
    let _stop_all = StopOnExit(setup.stop.clone());
    if let Some(core) = setup.core {
        if !core_affinity::set_for_current(core) {
            log::warn!("worker {}: could not pin to core {}", setup.index, core.id);
        }
    }
    let (rt, driver) = match build_runtime(setup.io, setup.pool) {
        Ok(built) => built,
        Err(e) => {
            let _ = setup.ready.send(Err(e));
            return Ok(());
        }
    };
    log::info!("worker {}: {} driver", setup.index, driver);
    let Some(mut worker) = rt.enter(|| Worker::start(setup, driver)) else {
        return Ok(());
    };
    let result = rt.enter(|| drive(&rt, &mut worker));
    rt.block_on(worker.finish());
    result
}

/// The worker's loop: a round, then one wait of the driver, until the worker
/// must stop (the module docs). Runs inside `rt.enter`.
fn drive<H: Handler>(rt: &Runtime, worker: &mut Worker<H>) -> io::Result<()> {
    // The driver's own waker: a wake from this thread during a round only
    // marks the driver notified (the next wait does not block); one from
    // another thread (a hand-off, a stop) also wakes the ring.
    let waker = rt.waker();
    let mut cx = Context::from_waker(&waker);
    // Once: the waker never changes, and a stop request (the only wake that
    // takes it) ends the loop.
    worker.stop.register(worker.index, &waker);
    loop {
        if let Poll::Ready(result) = worker.poll_round(&mut cx) {
            return result;
        }
        // Tasks compio itself may have spawned (none of ours).
        let tasks = rt.run();
        let timeout = match worker.again || tasks {
            true => Some(Duration::ZERO),
            false => earlier(worker.timeout(), rt.current_timeout()),
        };
        rt.poll_with(timeout);
    }
}

/// The shorter of two optional timeouts (`None`: no limit).
fn earlier(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

struct StopOnExit(Arc<StopState>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.request();
    }
}

struct Worker<H> {
    index: usize,
    handler: H,
    transports: Vec<Box<dyn Transport>>,
    /// `(proto, bound address)` of each socket, by `SocketId`, for routing.
    endpoints: Vec<(Proto, SocketAddr)>,
    /// The transport that serves each socket, by `SocketId`.
    owner: Vec<usize>,
    out: Vec<Transmit>,
    /// The last round stopped at a budget: the next wait must not block.
    again: bool,
    /// This worker's waker is registered with its inbox.
    inbox_armed: bool,
    stop: Arc<StopState>,
    inbox: Arc<Mailboxes<Inbound>>,
    handoffs: Vec<(usize, Inbound)>,
    /// Handed-off messages delivered here / dropped because a mailbox was full.
    handoffs_in: u64,
    handoffs_dropped: u64,
}

impl<H: Handler> Worker<H> {
    /// Takes over the sockets and makes the handler, inside the runtime;
    /// reports to `setup.ready` either way.
    fn start<F: Fn(WorkerInfo) -> H>(mut setup: Setup<F>, driver: IoDriver) -> Option<Worker<H>> {
        let sockets = std::mem::take(&mut setup.sockets);
        let (transports, endpoints, owner) = match Self::transports(&setup, sockets) {
            Ok(made) => made,
            Err(e) => {
                let _ = setup.ready.send(Err(e));
                return None;
            }
        };
        let handler = (setup.make)(WorkerInfo {
            index: setup.index,
            count: setup.count,
            locals: setup.locals,
            driver,
        });
        let _ = setup.ready.send(Ok(driver));
        Some(Worker {
            index: setup.index,
            handler,
            endpoints,
            owner,
            transports,
            out: Vec::new(),
            again: false,
            inbox_armed: false,
            stop: setup.stop,
            inbox: setup.inbox,
            handoffs: Vec::new(),
            handoffs_in: 0,
            handoffs_dropped: 0,
        })
    }

    /// One transport per UDP socket, one for all stream listeners; the
    /// endpoints and the transport serving each socket, by `SocketId`.
    #[allow(clippy::type_complexity)]
    fn transports<F>(
        setup: &Setup<F>,
        sockets: Vec<Bound>,
    ) -> io::Result<(
        Vec<Box<dyn Transport>>,
        Vec<(Proto, SocketAddr)>,
        Vec<usize>,
    )> {
        let mut transports: Vec<Box<dyn Transport>> = Vec::with_capacity(sockets.len());
        let mut endpoints = Vec::with_capacity(sockets.len());
        let mut owner = Vec::with_capacity(sockets.len());
        let mut listeners = Vec::new();
        for (id, socket) in sockets.into_iter().enumerate() {
            let id = id as SocketId;
            match socket {
                Bound::Udp(socket) => {
                    endpoints.push((Proto::Udp, socket.local_addr()?));
                    owner.push(transports.len());
                    let udp = UdpTransport::new(id, socket, setup.max_datagram)?;
                    transports.push(Box::new(udp));
                }
                Bound::Stream(proto, listener) => {
                    endpoints.push((proto, listener.local_addr()?));
                    owner.push(usize::MAX);
                    listeners.push((id, proto, listener));
                }
            }
        }
        if !listeners.is_empty() {
            let shared = setup
                .streams
                .clone()
                .ok_or_else(|| io::Error::other("stream listens without stream state"))?;
            for o in owner.iter_mut().filter(|o| **o == usize::MAX) {
                *o = transports.len();
            }
            transports.push(Box::new(Streams::new(setup.index, listeners, shared)?));
        }
        Ok((transports, endpoints, owner))
    }

    /// One round (see the module docs); ready when the worker must stop.
    fn poll_round(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.stop.requested() {
            return Poll::Ready(Ok(()));
        }
        let index = self.index;
        let mut clocks = Clocks::read();
        let mut again = false;
        // Messages other workers handed over: registered first, so a post
        // after the drain still wakes this task. A post's wake takes the
        // waker, so after taking a message (whose post may have taken it)
        // register again before looking at the queue once more; while no
        // message comes the waker stays registered (it never changes).
        let mut handed = 0;
        loop {
            if !self.inbox_armed {
                self.inbox.register(index, cx.waker());
                self.inbox_armed = true;
            }
            let Some(pkt) = self.inbox.take(index) else {
                break;
            };
            self.inbox_armed = false;
            self.handler.on_inbound(pkt, clocks.now, &mut self.out);
            handed += 1;
            if handed >= RECV_BUDGET {
                again = true;
                break;
            }
        }
        self.handoffs_in += handed as u64;
        if handed > 0 {
            // The hand-offs took time: the messages below are handled (and
            // their latency measured from) a fresh reading.
            clocks = Clocks::read();
        }
        let mut delivered = handed;
        let Worker {
            handler,
            transports,
            out,
            inbox,
            handoffs,
            handoffs_dropped,
            ..
        } = &mut *self;
        let now = clocks.now;
        for transport in transports.iter_mut() {
            let deliver = &mut |mut pkt| {
                delivered += 1;
                if handler.on_received(&mut pkt, now) {
                    handler.on_inbound(pkt, now, out);
                }
            };
            match transport.poll_recv(cx, RECV_BUDGET, &clocks, deliver) {
                Ok(steps) => again |= steps >= RECV_BUDGET,
                Err(e) => {
                    log::error!("worker {index}: {e}");
                    return Poll::Ready(Err(e));
                }
            }
        }
        handler.take_handoffs(handoffs);
        for (owner, pkt) in handoffs.drain(..) {
            if owner == index || inbox.post(owner, pkt).is_err() {
                // Never to itself (the engine would hand it off again), and a full mailbox drops.
                *handoffs_dropped += 1;
            }
        }
        // After handling messages the clock has moved; a round that handled
        // none is still at its start.
        let now = match delivered {
            0 => now,
            _ => Instant::now(),
        };
        if handler
            .next_deadline()
            .is_some_and(|deadline| deadline <= now)
        {
            handler.on_timer(now, out);
        }
        handler.on_dispatch(now);
        self.dispatch(now);
        for transport in &mut self.transports {
            transport.poll_sent(cx);
        }
        self.again = again;
        Poll::Pending
    }

    /// How long the wait after a round may last for the handler's sake: until
    /// its next deadline (zero if that has passed: it came due during the
    /// round, and the next round serves it), or no limit without one.
    fn timeout(&self) -> Option<Duration> {
        let deadline = self.handler.next_deadline()?;
        Some(deadline.saturating_duration_since(Instant::now()))
    }

    /// Starts the send of every queued transmission on the socket it goes out
    /// of, after the handler's outgoing intercept stage.
    fn dispatch(&mut self, now: Instant) {
        for mut transmit in self.out.drain(..) {
            if !self.handler.on_sending(&mut transmit, now) {
                continue;
            }
            transmit.dst = SocketAddr::new(transmit.dst.ip().to_canonical(), transmit.dst.port());
            match route(&transmit, &self.endpoints) {
                Some(i) => {
                    transmit.socket = Some(i as SocketId);
                    self.transports[self.owner[i]].send(transmit)
                }
                None => log::debug!(
                    "worker {}: no {} socket for {} (from {:?}): dropped",
                    self.index,
                    transmit.proto,
                    transmit.dst,
                    transmit.local
                ),
            }
        }
    }

    /// Graceful end: stop receiving, let the sends in flight finish, close the
    /// sockets (each step bounded).
    async fn finish(&mut self) {
        if self.handoffs_in > 0 || self.handoffs_dropped > 0 {
            log::info!(
                "worker {}: {} messages handed over by other workers, {} hand-offs dropped",
                self.index,
                self.handoffs_in,
                self.handoffs_dropped
            );
        }
        for transport in &mut self.transports {
            transport.stop_recv();
        }
        let transports = &mut self.transports;
        let drained = poll_fn(|cx| {
            let mut in_flight = 0;
            for transport in transports.iter_mut() {
                transport.poll_sent(cx);
                in_flight += transport.sends_in_flight();
            }
            match in_flight {
                0 => Poll::Ready(()),
                _ => Poll::Pending,
            }
        });
        if compio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
            log::debug!("worker {}: sends still in flight at stop", self.index);
        }
        let transports = &mut self.transports;
        let closed = poll_fn(|cx| {
            let mut open = 0;
            for transport in transports.iter_mut() {
                open += usize::from(transport.poll_close(cx).is_pending());
            }
            match open {
                0 => Poll::Ready(()),
                _ => Poll::Pending,
            }
        });
        if compio::time::timeout(DRAIN_TIMEOUT, closed).await.is_err() {
            log::warn!("worker {}: sockets still in use at stop", self.index);
        }
        let total = self
            .transports
            .iter()
            .fold(Counters::default(), |sum, t| sum + t.counters());
        log::info!(
            "worker {} stopped: {} received, {} dropped, {} sent, {} send errors",
            self.index,
            total.received,
            total.dropped,
            total.sent,
            total.send_errors
        );
    }
}

/// The socket a transmission leaves from: the one it names, if it can reach
/// `dst`; else one bound to its `local` address (exact address first, then a
/// wildcard on the same port); else the first of its protocol and family.
fn route(transmit: &Transmit, endpoints: &[(Proto, SocketAddr)]) -> Option<usize> {
    let fits = |(proto, addr): &(Proto, SocketAddr)| {
        *proto == transmit.proto.carrier() && addr.is_ipv4() == transmit.dst.is_ipv4()
    };
    if let Some(id) = transmit.socket {
        let i = usize::from(id);
        if endpoints.get(i).is_some_and(fits) {
            return Some(i);
        }
    }
    if let Some(local) = transmit.local {
        let same_port = |(_, addr): &(Proto, SocketAddr)| addr.port() == local.port();
        let exact = endpoints
            .iter()
            .position(|e| fits(e) && same_port(e) && e.1.ip() == local.ip());
        let wildcard = || {
            endpoints
                .iter()
                .position(|e| fits(e) && same_port(e) && e.1.ip().is_unspecified())
        };
        if let Some(i) = exact.or_else(wildcard) {
            return Some(i);
        }
    }
    endpoints.iter().position(fits)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn transmit(dst: &str, socket: Option<SocketId>, local: Option<&str>) -> Transmit {
        Transmit {
            data: Bytes::new(),
            dst: dst.parse().unwrap(),
            proto: Proto::Udp,
            socket,
            local: local.map(|l| l.parse().unwrap()),
            conn: None,
            flags: Default::default(),
        }
    }

    fn endpoints() -> Vec<(Proto, SocketAddr)> {
        [
            (Proto::Udp, "0.0.0.0:5060"),
            (Proto::Udp, "[::]:5060"),
            (Proto::Udp, "10.0.0.1:5080"),
            (Proto::Udp, "0.0.0.0:5080"),
            (Proto::Tcp, "0.0.0.0:5060"),
        ]
        .iter()
        .map(|(p, a)| (*p, a.parse().unwrap()))
        .collect()
    }

    #[test]
    fn named_socket_wins_when_it_can_reach_dst() {
        let e = endpoints();
        assert_eq!(route(&transmit("1.2.3.4:5060", Some(3), None), &e), Some(3));
        // A v6 socket cannot reach a v4 peer: fall back to the first v4 one.
        assert_eq!(route(&transmit("1.2.3.4:5060", Some(1), None), &e), Some(0));
        assert_eq!(
            route(&transmit("[2001:db8::1]:5060", None, None), &e),
            Some(1)
        );
        assert_eq!(
            route(&transmit("1.2.3.4:5060", Some(99), None), &e),
            Some(0)
        );
    }

    #[test]
    fn local_address_picks_exact_then_wildcard() {
        let e = endpoints();
        assert_eq!(
            route(&transmit("1.2.3.4:1", None, Some("10.0.0.1:5080")), &e),
            Some(2)
        );
        assert_eq!(
            route(&transmit("1.2.3.4:1", None, Some("10.0.0.9:5080")), &e),
            Some(3)
        );
        assert_eq!(
            route(&transmit("1.2.3.4:1", None, Some("10.0.0.9:7000")), &e),
            Some(0)
        );
    }

    #[test]
    fn no_socket_of_the_protocol_means_no_route() {
        let mut t = transmit("1.2.3.4:5060", None, None);
        t.proto = Proto::Tls;
        assert_eq!(route(&t, &endpoints()), None);
    }
}
