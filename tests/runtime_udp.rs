//! The UDP runtime on loopback: echo on both IO drivers, SO_REUSEPORT across
//! workers, IPv6, packet info on wildcard sockets, per-flow order, timers,
//! stop, and a worker that survives failing sends and odd datagrams.
//! Every wait is bounded; loads are small (the machine is shared).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringsip::runtime::{
    self, Handler, IoDriver, IoMode, ListenSpec, RuntimeConfig, Server, WorkerInfo,
};
use ringsip::sip::packet::{Inbound, Proto, Transmit};

/// How long an expected event (an echo, a timer call) may take: generous,
/// for a loaded 2-core machine; only a failing test waits it out.
const WAIT: Duration = Duration::from_secs(20);

/// Replies to the sender with `payload|local|worker`, from the address the
/// datagram arrived on.
struct Echo {
    worker: usize,
}

impl Handler for Echo {
    fn on_inbound(&mut self, pkt: Inbound, _now: Instant, out: &mut Vec<Transmit>) {
        let mut reply = pkt.data.to_vec();
        reply.extend_from_slice(format!("|{}|{}", pkt.local, self.worker).as_bytes());
        out.push(reply_to(&pkt, reply.into()));
    }
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

fn reply_to(pkt: &Inbound, data: Bytes) -> Transmit {
    Transmit {
        data,
        dst: pkt.src,
        proto: pkt.proto,
        socket: Some(pkt.socket),
        local: Some(pkt.local),
        conn: pkt.conn,
        flags: Default::default(),
    }
}

fn config(addrs: &[&str], workers: usize, io: IoMode) -> RuntimeConfig {
    let listens = addrs
        .iter()
        .map(|a| ListenSpec::udp(a.parse().unwrap()))
        .collect();
    RuntimeConfig {
        workers,
        io,
        pin_cores: false,
        handle_signals: false,
        recv_buffers: 16,
        ..RuntimeConfig::new(listens)
    }
}

fn start_echo(addr: &str, workers: usize, io: IoMode) -> Server {
    runtime::start(config(&[addr], workers, io), |info: WorkerInfo| Echo {
        worker: info.index,
    })
    .expect("start runtime")
}

fn client(bind: &str) -> UdpSocket {
    let socket = UdpSocket::bind(bind).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    socket
}

/// Sends `payload` to `to`; returns the reply split into (payload, local, worker) and its source.
fn echo(
    client: &UdpSocket,
    to: SocketAddr,
    payload: &[u8],
) -> (Vec<u8>, SocketAddr, usize, SocketAddr) {
    client.send_to(payload, to).unwrap();
    let mut buf = vec![0; 70_000];
    let (n, from) = client.recv_from(&mut buf).expect("echo reply");
    let reply = &buf[..n];
    let mut fields = reply.rsplitn(3, |b| *b == b'|');
    let worker = std::str::from_utf8(fields.next().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    let local = std::str::from_utf8(fields.next().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    (fields.next().unwrap().to_vec(), local, worker, from)
}

fn stop_and_wait(server: Server) {
    server.stop();
    server.wait().expect("workers end cleanly");
}

fn echo_on(io: IoMode, expected: IoDriver) {
    let server = start_echo("127.0.0.1:0", 1, io);
    assert_eq!(server.drivers(), &[expected]);
    let addr = server.local_addrs()[0];
    assert_ne!(addr.port(), 0);
    let c = client("127.0.0.1:0");
    for i in 0..10 {
        let payload = format!("hello {i}");
        let (data, local, worker, from) = echo(&c, addr, payload.as_bytes());
        assert_eq!(data, payload.as_bytes());
        assert_eq!((local, worker, from), (addr, 0, addr));
    }
    // The largest IPv4 datagram that fits with the echo's suffix.
    let big = vec![b'x'; 65_000];
    let (data, _, _, _) = echo(&c, addr, &big);
    assert_eq!(data, big);
    stop_and_wait(server);
}

#[test]
fn echo_on_the_poll_driver() {
    echo_on(IoMode::Poll, IoDriver::Poll);
}

#[test]
fn echo_on_io_uring() {
    // io_uring works on this machine: if it does not start, this fails (no skip).
    echo_on(IoMode::Uring, IoDriver::IoUring);
}

#[test]
fn auto_picks_io_uring_here() {
    let server = start_echo("127.0.0.1:0", 1, IoMode::Auto);
    assert_eq!(server.drivers(), &[IoDriver::IoUring]);
    stop_and_wait(server);
}

#[test]
fn auto_falls_back_to_poll_when_io_uring_is_refused() {
    // Seccomp applies to this thread and the workers it starts, not to the
    // rest of the test process.
    let result = std::thread::spawn(|| {
        runtime::refuse_io_uring_in_this_thread().expect("install seccomp filter");
        let refused = runtime::start(
            config(&["127.0.0.1:0"], 1, IoMode::Uring),
            |i: WorkerInfo| Echo { worker: i.index },
        );
        let err = refused
            .err()
            .expect("io mode uring must fail when io_uring is refused");
        assert!(err.to_string().contains("io_uring unavailable"), "{err}");

        let server = start_echo("127.0.0.1:0", 2, IoMode::Auto);
        assert_eq!(server.drivers(), &[IoDriver::Poll, IoDriver::Poll]);
        let c = client("127.0.0.1:0");
        let (data, ..) = echo(&c, server.local_addrs()[0], b"fallback");
        assert_eq!(data, b"fallback");
        stop_and_wait(server);
    })
    .join();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn two_workers_share_one_port() {
    for io in [IoMode::Uring, IoMode::Poll] {
        let server = start_echo("127.0.0.1:0", 2, io);
        assert_eq!(server.drivers().len(), 2);
        let addr = server.local_addrs()[0];
        let mut seen = [0usize; 2];
        // The kernel hashes each client's 4-tuple to one of the two sockets.
        for _ in 0..32 {
            let c = client("127.0.0.1:0");
            let (_, local, worker, _) = echo(&c, addr, b"which");
            assert_eq!(local, addr);
            seen[worker] += 1;
            // One flow stays on one worker.
            assert_eq!(echo(&c, addr, b"again").2, worker);
        }
        assert!(
            seen[0] > 0 && seen[1] > 0,
            "{io:?}: replies per worker {seen:?}"
        );
        stop_and_wait(server);
    }
}

#[test]
fn ipv6_loopback() {
    let server = start_echo("[::1]:0", 1, IoMode::Auto);
    let addr = server.local_addrs()[0];
    let c = client("[::1]:0");
    let (data, local, _, from) = echo(&c, addr, b"six");
    assert_eq!((data.as_slice(), local, from), (&b"six"[..], addr, addr));
    stop_and_wait(server);
}

#[test]
fn wildcard_v4_reports_and_answers_from_the_destination_address() {
    for io in [IoMode::Uring, IoMode::Poll] {
        let server = start_echo("0.0.0.0:0", 1, io);
        let port = server.local_addrs()[0].port();
        let c = client("127.0.0.1:0");
        // 127.0.0.2 is local too (127/8 on lo), but the kernel would answer
        // 127.0.0.1 from 127.0.0.1: only IP_PKTINFO on send makes it .2.
        for ip in ["127.0.0.1", "127.0.0.2"] {
            let to = SocketAddr::new(ip.parse().unwrap(), port);
            let (_, local, _, from) = echo(&c, to, b"where");
            assert_eq!(local, to, "{io:?}: Inbound.local from IP_PKTINFO");
            assert_eq!(from, to, "{io:?}: reply sent from the address asked");
        }
        stop_and_wait(server);
    }
}

#[test]
fn wildcard_v6_reports_the_destination_address() {
    let server = start_echo("[::]:0", 1, IoMode::Auto);
    let to = SocketAddr::new("::1".parse().unwrap(), server.local_addrs()[0].port());
    let c = client("[::1]:0");
    let (_, local, _, from) = echo(&c, to, b"where");
    assert_eq!((local, from), (to, to));
    stop_and_wait(server);
}

/// Records the sequence number each datagram carries, in arrival order.
struct Recorder {
    seen: Arc<Mutex<Vec<u32>>>,
}

impl Handler for Recorder {
    fn on_inbound(&mut self, pkt: Inbound, _now: Instant, _out: &mut Vec<Transmit>) {
        let seq = std::str::from_utf8(&pkt.data)
            .ok()
            .and_then(|s| s.parse().ok());
        self.seen.lock().unwrap().push(seq.unwrap_or(u32::MAX));
    }
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

#[test]
fn one_flow_arrives_in_order() {
    const COUNT: u32 = 1000;
    const BURST: u32 = 100;
    for io in [IoMode::Uring, IoMode::Poll] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = seen.clone();
        let server = runtime::start(config(&["127.0.0.1:0"], 2, io), move |_: WorkerInfo| {
            Recorder {
                seen: shared.clone(),
            }
        })
        .unwrap();
        let addr = server.local_addrs()[0];
        let c = client("127.0.0.1:0");
        // Bursts small enough for the default socket buffer, sent back to back.
        for burst in 0..COUNT / BURST {
            for seq in burst * BURST..(burst + 1) * BURST {
                c.send_to(seq.to_string().as_bytes(), addr).unwrap();
            }
            let until = Instant::now() + WAIT;
            while seen.lock().unwrap().len() < ((burst + 1) * BURST) as usize
                && Instant::now() < until
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        stop_and_wait(server);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), COUNT as usize, "{io:?}: all datagrams handled");
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "{io:?}: arrival order kept: {seen:?}"
        );
    }
}

/// Fires every 20 ms, three times, and reports each call.
struct Ticker {
    next: Option<Instant>,
    left: u32,
    fired: mpsc::Sender<(Instant, Instant)>,
}

impl Handler for Ticker {
    fn on_inbound(&mut self, _pkt: Inbound, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn on_timer(&mut self, now: Instant, _out: &mut Vec<Transmit>) {
        let Some(deadline) = self.next else { return };
        let _ = self.fired.send((deadline, now));
        self.left -= 1;
        self.next = (self.left > 0).then(|| now + Duration::from_millis(20));
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.next
    }
}

#[test]
fn timer_fires_at_the_deadline() {
    for io in [IoMode::Uring, IoMode::Poll] {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let server = runtime::start(config(&["127.0.0.1:0"], 1, io), move |_: WorkerInfo| {
            Ticker {
                next: Some(Instant::now() + Duration::from_millis(20)),
                left: 3,
                fired: tx.lock().unwrap().clone(),
            }
        })
        .unwrap();
        for _ in 0..3 {
            let (deadline, now) = rx.recv_timeout(WAIT).expect("on_timer called");
            assert!(now >= deadline, "{io:?}: called before its deadline");
            assert!(
                now - deadline < Duration::from_secs(1),
                "{io:?}: called late"
            );
        }
        stop_and_wait(server);
        assert!(rx.try_recv().is_err(), "no call without a deadline");
    }
}

/// Sets its deadline to "now + N ms" for each datagram "N" (replacing the
/// one it had), reports each on_timer call, and counts the worker's rounds.
struct Mover {
    next: Option<Instant>,
    fired: mpsc::Sender<(Instant, Instant)>,
    rounds: Arc<AtomicUsize>,
}

impl Handler for Mover {
    fn on_inbound(&mut self, pkt: Inbound, now: Instant, _out: &mut Vec<Transmit>) {
        let ms: u64 = std::str::from_utf8(&pkt.data).unwrap().parse().unwrap();
        self.next = Some(now + Duration::from_millis(ms));
    }
    fn on_timer(&mut self, now: Instant, _out: &mut Vec<Transmit>) {
        let Some(deadline) = self.next.take() else {
            return;
        };
        let _ = self.fired.send((deadline, now));
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.next
    }
    fn on_dispatch(&mut self, _now: Instant) {
        self.rounds.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_deadline_that_moves_fires_when_it_is_then_and_idle_waits_do_not_spin() {
    for io in [IoMode::Uring, IoMode::Poll] {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let rounds = Arc::new(AtomicUsize::new(0));
        let counted = rounds.clone();
        let server = runtime::start(config(&["127.0.0.1:0"], 1, io), move |_: WorkerInfo| {
            Mover {
                next: None,
                fired: tx.lock().unwrap().clone(),
                rounds: counted.clone(),
            }
        })
        .unwrap();
        let addr = server.local_addrs()[0];
        let c = client("127.0.0.1:0");
        // Far, then earlier: the earlier one fires, not at the far one.
        c.send_to(b"3000", addr).unwrap();
        c.send_to(b"40", addr).unwrap();
        let (deadline, now) = rx.recv_timeout(WAIT).expect("on_timer called");
        assert!(now >= deadline, "{io:?}: called before its deadline");
        assert!(
            now - deadline < Duration::from_secs(1),
            "{io:?}: the earlier deadline fired late: {:?}",
            now - deadline
        );
        // Near, then later: it fires at the later one, never before.
        c.send_to(b"20", addr).unwrap();
        c.send_to(b"300", addr).unwrap();
        let (deadline, now) = rx.recv_timeout(WAIT).expect("on_timer called");
        assert!(now >= deadline, "{io:?}: called before its deadline");
        assert!(
            now - deadline < Duration::from_secs(1),
            "{io:?}: called late"
        );
        assert!(rx.try_recv().is_err(), "{io:?}: one call per deadline");
        // Waiting for a deadline 2 s away takes a round or two, not a spin.
        c.send_to(b"2000", addr).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let before = rounds.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(300));
        let idle = rounds.load(Ordering::Relaxed) - before;
        assert!(idle <= 2, "{io:?}: {idle} rounds while idle");
        stop_and_wait(server);
        assert!(
            rx.try_recv().is_err(),
            "{io:?}: no call before the 2 s deadline"
        );
    }
}

#[test]
fn stop_returns_promptly_and_closes_the_sockets() {
    for io in [IoMode::Uring, IoMode::Poll] {
        let server = start_echo("127.0.0.1:0", 2, io);
        let addr = server.local_addrs()[0];
        let began = Instant::now();
        stop_and_wait(server);
        assert!(
            began.elapsed() < Duration::from_secs(1),
            "{io:?}: stop took {:?}",
            began.elapsed()
        );
        // Without SO_REUSEPORT this bind fails while any worker socket is open.
        UdpSocket::bind(addr).expect("port free after wait()");
    }
}

#[test]
fn stop_handle_works_from_another_thread_and_drop_stops() {
    let server = start_echo("127.0.0.1:0", 1, IoMode::Auto);
    let handle = server.stop_handle();
    let stopper = std::thread::spawn(move || handle.stop());
    stopper.join().unwrap();
    server.wait().unwrap();

    let server = start_echo("127.0.0.1:0", 1, IoMode::Auto);
    let addr = server.local_addrs()[0];
    drop(server);
    UdpSocket::bind(addr).expect("port free after drop");
}

/// Echoes, after queueing sends that cannot work.
struct Reckless {
    dead_port: SocketAddr,
}

impl Handler for Reckless {
    fn on_inbound(&mut self, pkt: Inbound, _now: Instant, out: &mut Vec<Transmit>) {
        let bad = |dst: &str| Transmit {
            data: pkt.data.clone(),
            dst: dst.parse().unwrap(),
            proto: Proto::Udp,
            socket: None,
            local: None,
            conn: None,
            flags: Default::default(),
        };
        out.push(Transmit {
            dst: self.dead_port,
            ..bad("0.0.0.0:0")
        });
        out.push(bad("255.255.255.255:9")); // EACCES without SO_BROADCAST
        out.push(bad("127.0.0.1:0")); // port 0
        out.push(bad("[::1]:5060")); // no IPv6 socket: not routed
        out.push(Transmit {
            proto: Proto::Tcp, // no TCP listen: logged and dropped
            ..bad("127.0.0.1:5060")
        });
        out.push(Transmit {
            local: Some("192.0.2.1:5060".parse().unwrap()), // not ours
            ..bad("127.0.0.1:9")
        });
        out.push(reply_to(&pkt, pkt.data.clone()));
    }
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

#[test]
fn failing_sends_and_odd_datagrams_do_not_stop_the_worker() {
    for io in [IoMode::Uring, IoMode::Poll] {
        // The client first: a port released a moment ago may be handed out
        // again, and the client must not get the dead port (it would receive
        // the copies sent there as extra answers).
        let c = client("127.0.0.1:0");
        let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dead_port = dead.local_addr().unwrap();
        drop(dead);
        let cfg = RuntimeConfig {
            max_datagram: 1000,
            ..config(&["0.0.0.0:0"], 1, io)
        };
        let server = runtime::start(cfg, move |_: WorkerInfo| Reckless { dead_port }).unwrap();
        let addr = SocketAddr::new("127.0.0.1".parse().unwrap(), server.local_addrs()[0].port());
        let mut buf = [0; 2048];
        for round in 0..5 {
            c.send_to(b"", addr).unwrap(); // empty datagram
            c.send_to(&[0xff; 1500], addr).unwrap(); // over max_datagram: dropped
            let payload = format!("still here {round}");
            c.send_to(payload.as_bytes(), addr).unwrap();
            // The empty datagram is echoed too (it is a datagram); skip it.
            let (n, _) = loop {
                let (n, from) = c.recv_from(&mut buf).expect("worker still answers");
                if n > 0 {
                    break (n, from);
                }
            };
            assert_eq!(&buf[..n], payload.as_bytes(), "{io:?}");
        }
        stop_and_wait(server);
    }
}

#[test]
fn start_rejects_what_it_cannot_serve() {
    let mut cfg = config(&["127.0.0.1:0"], 1, IoMode::Auto);
    cfg.listens[0].proto = Proto::Sctp;
    let err = runtime::start(cfg, |_: WorkerInfo| Echo { worker: 0 })
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    // A port another (non-reuseport) socket holds cannot be shared.
    let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let err = runtime::start(config(&[&taken], 1, IoMode::Auto), |_: WorkerInfo| Echo {
        worker: 0,
    })
    .err()
    .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
}

#[test]
fn handler_is_made_once_per_worker_with_its_info() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    let server = runtime::start(
        config(&["127.0.0.1:0", "[::1]:0"], 2, IoMode::Auto),
        move |info: WorkerInfo| {
            assert_eq!(info.count, 2);
            assert_eq!(info.locals.len(), 2);
            assert!(info.locals.iter().all(|a| a.port() != 0));
            counter.fetch_add(1, Ordering::SeqCst);
            Echo { worker: info.index }
        },
    )
    .unwrap();
    assert_eq!(made.load(Ordering::SeqCst), 2);
    let v6 = server.local_addrs()[1];
    let (_, local, _, _) = echo(&client("[::1]:0"), v6, b"second listen");
    assert_eq!(local, v6);
    stop_and_wait(server);
}

/// Hands every datagram it receives from its socket to the other worker,
/// which answers it with `payload|worker`: each answer went through the
/// other worker's inbox.
struct Passer {
    worker: usize,
    from_socket: bool,
    handoffs: Vec<(usize, Inbound)>,
}

impl Handler for Passer {
    fn on_received(&mut self, _pkt: &mut Inbound, _now: Instant) -> bool {
        self.from_socket = true;
        true
    }
    fn on_inbound(&mut self, pkt: Inbound, _now: Instant, out: &mut Vec<Transmit>) {
        if std::mem::take(&mut self.from_socket) {
            self.handoffs.push((self.worker ^ 1, pkt));
            return;
        }
        let mut reply = pkt.data.to_vec();
        reply.extend_from_slice(format!("|{}", self.worker).as_bytes());
        out.push(reply_to(&pkt, reply.into()));
    }
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
    fn take_handoffs(&mut self, into: &mut Vec<(usize, Inbound)>) {
        into.append(&mut self.handoffs);
    }
}

#[test]
fn hand_offs_between_workers_are_delivered_one_by_one_and_in_bursts() {
    for io in [IoMode::Uring, IoMode::Poll] {
        let server = runtime::start(config(&["127.0.0.1:0"], 2, io), |info: WorkerInfo| Passer {
            worker: info.index,
            from_socket: false,
            handoffs: Vec::new(),
        })
        .unwrap();
        let addr = server.local_addrs()[0];
        let c = client("127.0.0.1:0");
        let mut buf = [0u8; 256];
        let mut answered_by = None;
        // One at a time: every hand-off must wake the other worker again.
        for i in 0..100 {
            let payload = format!("one {i}");
            c.send_to(payload.as_bytes(), addr).unwrap();
            let n = c.recv(&mut buf).expect("answer from the other worker");
            let reply = std::str::from_utf8(&buf[..n]).unwrap();
            let (data, worker) = reply.rsplit_once('|').unwrap();
            assert_eq!(data, payload, "{io:?}");
            // The flow stays on one worker, so the other one answers each time.
            assert_eq!(
                *answered_by.get_or_insert(worker.to_owned()),
                worker,
                "{io:?}"
            );
        }
        // A burst: all of them arrive, in order (one flow, one hand-off queue).
        for i in 0..50 {
            c.send_to(format!("burst {i}").as_bytes(), addr).unwrap();
        }
        for i in 0..50 {
            let n = c.recv(&mut buf).expect("answer to the burst");
            let reply = std::str::from_utf8(&buf[..n]).unwrap();
            assert_eq!(
                reply.rsplit_once('|').unwrap().0,
                format!("burst {i}"),
                "{io:?}"
            );
        }
        stop_and_wait(server);
    }
}

/// Panics on the datagram `boom`: a bug in the engine.
struct Fragile;

impl Handler for Fragile {
    fn on_inbound(&mut self, pkt: Inbound, _now: Instant, _out: &mut Vec<Transmit>) {
        assert_ne!(&pkt.data[..], b"boom", "handler bug (expected by the test)");
    }
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

/// How long the server may take to stop after a handler panicked.
const PANIC_WAIT: Duration = Duration::from_secs(60);

#[test]
fn a_panicking_handler_stops_the_server_with_an_error() {
    let server = runtime::start(
        config(&["127.0.0.1:0"], 2, IoMode::Auto),
        |_: WorkerInfo| Fragile,
    )
    .unwrap();
    let addr = server.local_addrs()[0];
    let (done, finished) = mpsc::channel();
    let waiter = std::thread::spawn(move || done.send(server.wait()).unwrap());
    let c = client("127.0.0.1:0");
    c.send_to(b"fine", addr).unwrap();
    c.send_to(b"boom", addr).unwrap();
    // The panic hook runs before the worker unwinds and stops the others;
    // with RUST_BACKTRACE=1 (as .ci/run sets it) it symbolizes a backtrace
    // of this debug binary first, which takes seconds on a loaded machine.
    let result = finished
        .recv_timeout(PANIC_WAIT)
        .expect("a dead worker stops the others");
    let err = result.expect_err("wait() reports the panic");
    assert!(err.to_string().contains("panicked"), "{err}");
    waiter.join().unwrap();
}
