//! Starting the workers, stopping them (programmatically or on SIGINT /
//! SIGTERM) and waiting for them.

use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Waker;
use std::thread;

use futures_util::task::AtomicWaker;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle as SignalsHandle, Signals};

use super::config::{IoDriver, RuntimeConfig, WorkerInfo};
use super::driver::PoolShape;
use super::socket::{bind_tcp, bind_udp, BufferSizes};
use super::stats::StreamStats;
use super::stream::{tls, Shared as StreamShared};
use super::worker::Bound;
use super::{worker, Handler};
use crate::sip::packet::Proto;

/// Room in each pool buffer besides the datagram: the `io_uring_recvmsg_out`
/// header, a `sockaddr_storage` and the control messages.
/// Listens per server (`SocketId` is a `u16`; far more than any config has).
const MAX_LISTENS: usize = 1024;

const POOL_BUFFER_OVERHEAD: usize = 16 + 128 + super::cmsg::RECV_CONTROL_LEN;

/// Starts `cfg.workers` workers, each with its own socket per listen address
/// and the handler `make` builds for it on its own thread. Returns once every
/// worker runs (or the first start-up error, with the others stopped).
pub fn start<H, F>(cfg: RuntimeConfig, make: F) -> io::Result<Server>
where
    H: Handler,
    F: Fn(WorkerInfo) -> H + Send + Sync + 'static,
{
    check(&cfg)?;
    let count = cfg.worker_count();
    let streams = stream_state(&cfg, count)?;
    let inbox = Arc::new(super::handoff::Mailboxes::new(count));
    let (mut sockets, locals) = bind_all(&cfg, count)?;
    let stop = Arc::new(StopState::new(count));
    let make = Arc::new(make);
    let cores = match cfg.pin_cores {
        true => core_affinity::get_core_ids().filter(|cores| !cores.is_empty()),
        false => None,
    };
    let pool = PoolShape {
        // io_uring takes at most 32768 provided buffers per ring.
        buffers: NonZeroU16::new(cfg.recv_buffers.min(1 << 15)).unwrap_or(NonZeroU16::MIN),
        buffer_len: cfg.max_datagram + POOL_BUFFER_OVERHEAD,
    };

    let mut server = Server {
        workers: Vec::with_capacity(count),
        stop: StopHandle(stop.clone()),
        drivers: Vec::with_capacity(count),
        locals: locals.clone(),
        signals: None,
        streams: streams.clone(),
    };
    if cfg.handle_signals {
        // Before the workers: a worker serves as soon as it runs, so a peer
        // (or a supervisor) may see it and send SIGTERM while the others are
        // still starting; that must be a graceful stop, not the default kill.
        server.signals = Some(SignalThread::start(stop.clone())?);
    }
    let mut readies = Vec::with_capacity(count);
    for (index, sockets) in sockets.drain(..).enumerate() {
        let (ready, ready_rx) = mpsc::channel();
        let setup = worker::Setup {
            index,
            count,
            sockets,
            streams: streams.clone(),
            inbox: inbox.clone(),
            locals: locals.clone(),
            io: cfg.io,
            core: cores.as_ref().map(|c| c[index % c.len()]),
            pool,
            max_datagram: cfg.max_datagram,
            make: make.clone(),
            stop: stop.clone(),
            ready,
        };
        let spawned = thread::Builder::new()
            .name(format!("ringsip-w{index}"))
            .spawn(move || worker::run(setup));
        match spawned {
            Ok(handle) => server.workers.push(handle),
            Err(e) => return Err(server.fail(e)),
        }
        readies.push(ready_rx);
    }
    for (index, ready) in readies.into_iter().enumerate() {
        match ready.recv() {
            Ok(Ok(driver)) => server.drivers.push(driver),
            Ok(Err(e)) => return Err(server.fail(e)),
            Err(_) => {
                let e = io::Error::other(format!("worker {index} ended while starting"));
                return Err(server.fail(e));
            }
        }
    }
    log::info!(
        "runtime started: {count} workers, drivers {:?}, listening on {}",
        server.drivers.iter().map(|d| d.name()).collect::<Vec<_>>(),
        cfg.listens
            .iter()
            .zip(server.locals.iter())
            .map(|(spec, local)| format!("{}:{local}", spec.proto))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(server)
}

fn check(cfg: &RuntimeConfig) -> io::Result<()> {
    let invalid = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    let served = |p: Proto| matches!(p, Proto::Udp | Proto::Tcp | Proto::Tls);
    if let Some(spec) = cfg.listens.iter().find(|l| !served(l.proto)) {
        return invalid(format!(
            "listen {}:{}: only udp, tcp and tls are supported",
            spec.proto, spec.addr
        ));
    }
    if cfg.tcp_max_message == 0 || cfg.tcp_send_queue_max == 0 {
        return invalid("tcp_max_message and tcp_send_queue_max must be positive".into());
    }
    if cfg.listens.len() > MAX_LISTENS {
        return invalid(format!("{} listens: too many", cfg.listens.len()));
    }
    if cfg.max_datagram == 0 || cfg.max_datagram > usize::from(u16::MAX) {
        return invalid(format!(
            "max_datagram {}: must be 1..=65535",
            cfg.max_datagram
        ));
    }
    Ok(())
}

/// The state the stream transports of all workers share, when a listen is
/// a stream; TLS files are read here, so a bad one fails the start.
fn stream_state(cfg: &RuntimeConfig, count: usize) -> io::Result<Option<Arc<StreamShared>>> {
    if !cfg.listens.iter().any(|l| l.proto.is_reliable()) {
        return Ok(None);
    }
    let tls_listens: Vec<SocketAddr> = cfg
        .listens
        .iter()
        .filter(|l| l.proto == Proto::Tls)
        .map(|l| l.addr)
        .collect();
    let tls = match !tls_listens.is_empty() || cfg.tls_profiles.is_some() {
        true => Some(tls::load(cfg, &tls_listens)?),
        false => None,
    };
    Ok(Some(Arc::new(StreamShared::new(cfg, count, tls))))
}

/// One socket per worker per listen; port 0 is resolved by the first worker's
/// bind and reused by the others (SO_REUSEPORT).
type AllBound = (Vec<Vec<Bound>>, Arc<[SocketAddr]>);

fn bind_all(cfg: &RuntimeConfig, count: usize) -> io::Result<AllBound> {
    let sizes = BufferSizes {
        recv: cfg.recv_buffer_size,
        send: cfg.send_buffer_size,
    };
    let bind = |proto: Proto, addr: SocketAddr| -> io::Result<(Bound, SocketAddr)> {
        match proto {
            Proto::Udp => {
                let s = bind_udp(addr, sizes)?;
                let local = s.local_addr()?;
                Ok((Bound::Udp(s), local))
            }
            _ => {
                let s = bind_tcp(addr)?;
                let local = s.local_addr()?;
                Ok((Bound::Stream(proto, s), local))
            }
        }
    };
    let mut sockets: Vec<Vec<Bound>> = (0..count).map(|_| Vec::new()).collect();
    let mut locals = Vec::with_capacity(cfg.listens.len());
    for spec in &cfg.listens {
        let (first, local) = bind(spec.proto, spec.addr)?;
        sockets[0].push(first);
        for worker in sockets.iter_mut().skip(1) {
            worker.push(bind(spec.proto, local)?.0);
        }
        locals.push(local);
    }
    Ok((sockets, locals.into()))
}

/// The running workers. Dropping it stops them and waits.
pub struct Server {
    workers: Vec<thread::JoinHandle<io::Result<()>>>,
    stop: StopHandle,
    drivers: Vec<IoDriver>,
    locals: Arc<[SocketAddr]>,
    signals: Option<SignalThread>,
    streams: Option<Arc<StreamShared>>,
}

impl Server {
    /// Counters of the TCP and TLS transports and of the cross-core
    /// hand-off, all workers together (zero without a stream listen).
    pub fn stream_stats(&self) -> StreamStats {
        self.streams
            .as_ref()
            .map(|s| s.stats.snapshot())
            .unwrap_or_default()
    }

    /// Asks every worker to stop; returns at once ([`wait`](Server::wait) waits).
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// A handle that can stop the server from elsewhere (another thread, a
    /// control command).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The IO driver each worker runs, by worker index.
    pub fn drivers(&self) -> &[IoDriver] {
        &self.drivers
    }

    /// The bound address of each listen (by `SocketId`), ports resolved.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.locals
    }

    /// Blocks until every worker has stopped (after [`stop`](Server::stop),
    /// a signal, or a worker failing, which stops the others). Returns the
    /// first worker error.
    pub fn wait(mut self) -> io::Result<()> {
        self.join()
    }

    fn join(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for (index, worker) in self.workers.drain(..).enumerate() {
            let result = worker
                .join()
                .unwrap_or_else(|_| Err(io::Error::other(format!("worker {index} panicked"))));
            if let (Err(e), true) = (result, first.is_ok()) {
                first = Err(e);
            }
        }
        if let Some(signals) = self.signals.take() {
            signals.close();
        }
        first
    }

    /// Stops and joins what started, and returns `e`.
    fn fail(&mut self, e: io::Error) -> io::Error {
        self.stop();
        let _ = self.join();
        e
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            self.stop();
            let _ = self.join();
        }
    }
}

/// Stops a [`Server`]; cheap to clone and to send to other threads.
#[derive(Clone)]
pub struct StopHandle(Arc<StopState>);

impl StopHandle {
    /// Asks every worker to stop (idempotent).
    pub fn stop(&self) {
        self.0.request();
    }
}

/// The stop request shared by the workers, the server and the signal thread.
pub(super) struct StopState {
    /// Also the condition under which SIGINT/SIGTERM run their default action.
    requested: Arc<AtomicBool>,
    /// One per worker: its task, to wake when a stop is requested.
    wakers: Box<[AtomicWaker]>,
}

impl StopState {
    fn new(workers: usize) -> StopState {
        StopState {
            requested: Arc::new(AtomicBool::new(false)),
            wakers: (0..workers).map(|_| AtomicWaker::new()).collect(),
        }
    }

    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        for waker in self.wakers.iter() {
            waker.wake();
        }
    }

    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Registers the task of worker `index`; call before [`requested`](Self::requested).
    pub fn register(&self, index: usize, waker: &Waker) {
        if let Some(slot) = self.wakers.get(index) {
            slot.register(waker);
        }
    }
}

/// A thread that turns SIGINT/SIGTERM into a stop request.
struct SignalThread {
    handle: SignalsHandle,
    thread: thread::JoinHandle<()>,
}

impl SignalThread {
    fn start(stop: Arc<StopState>) -> io::Result<SignalThread> {
        for signal in [SIGINT, SIGTERM] {
            // Once a stop is under way (or done), a further signal ends the
            // process the default way, so a stuck shutdown can be cut short
            // and the process stays killable after `wait` returned.
            signal_hook::flag::register_conditional_default(signal, stop.requested.clone())?;
        }
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let thread = thread::Builder::new()
            .name("ringsip-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    log::info!("signal {signal}: stopping");
                    stop.request();
                }
            })?;
        Ok(SignalThread { handle, thread })
    }

    fn close(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}
