//! The TCP runtime on loopback: echo on both IO drivers, framing edge cases
//! (two messages in one segment, byte-by-byte, keep-alives, missing
//! Content-Length, oversized headers), limits and timeouts, many idle
//! connections next to a live client, outgoing connections reused by
//! destination, and the cross-core hand-off. Every wait is bounded; loads
//! are small (the machine is shared).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringsip::runtime::{
    self, Handler, IoDriver, IoMode, ListenSpec, RuntimeConfig, Server, WorkerInfo,
};
use ringsip::sip::packet::{ConnId, Inbound, Proto, Transmit};

const WAIT: Duration = Duration::from_secs(5);

/// A SIP-shaped message with a body (Content-Length set).
fn sip(body: &str) -> String {
    format!(
        "MESSAGE sip:echo SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Answers each message on its connection with a message whose body is
/// `<body of the request>|<worker>`.
struct Echo {
    worker: usize,
}

fn body(data: &[u8]) -> &[u8] {
    let at = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(data.len(), |i| i + 4);
    &data[at..]
}

fn answer(pkt: &Inbound, text: String) -> Transmit {
    Transmit {
        data: Bytes::from(sip(&text)),
        dst: pkt.src,
        proto: pkt.proto,
        socket: Some(pkt.socket),
        local: Some(pkt.local),
        conn: pkt.conn,
        flags: Default::default(),
    }
}

impl Handler for Echo {
    fn on_inbound(&mut self, pkt: Inbound, _now: Instant, out: &mut Vec<Transmit>) {
        let text = format!(
            "{}|{}",
            String::from_utf8_lossy(body(&pkt.data)),
            self.worker
        );
        out.push(answer(&pkt, text));
    }
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

fn config(workers: usize, io: IoMode) -> RuntimeConfig {
    RuntimeConfig {
        workers,
        io,
        pin_cores: false,
        handle_signals: false,
        recv_buffers: 16,
        ..RuntimeConfig::new(vec![ListenSpec::tcp("127.0.0.1:0".parse().unwrap())])
    }
}

fn start_echo(cfg: RuntimeConfig) -> Server {
    runtime::start(cfg, |info: WorkerInfo| Echo { worker: info.index }).expect("start runtime")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads one Content-Length framed message from `s`; its body.
fn read_message(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            Ok(_) => panic!("closed after {:?}", String::from_utf8_lossy(&buf)),
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&buf)),
        }
        // Keep-alive pongs before a message are skipped.
        if buf == b"\r\n" {
            buf.clear();
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    s.read_exact(&mut body).expect("body");
    String::from_utf8(body).unwrap()
}

/// Whether the server closed `s` (EOF or reset) within `WAIT`.
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    false
}

fn stop(server: Server) {
    server.stop();
    server.wait().expect("workers end cleanly");
}

fn echo_on(io: IoMode, expected: IoDriver) {
    let server = start_echo(config(1, io));
    assert_eq!(server.drivers(), &[expected]);
    let addr = server.local_addrs()[0];
    let mut c = connect(addr);
    for i in 0..20 {
        c.write_all(sip(&format!("hello {i}")).as_bytes()).unwrap();
        assert_eq!(read_message(&mut c), format!("hello {i}|0"));
    }
    // A large message (body over several reads).
    let big = "x".repeat(60_000);
    c.write_all(sip(&big).as_bytes()).unwrap();
    assert_eq!(read_message(&mut c), format!("{big}|0"));
    let stats = server.stream_stats();
    assert_eq!((stats.accepted, stats.open), (1, 1), "{stats:?}");
    assert_eq!(stats.messages_received, 21);
    drop(c);
    stop(server);
}

#[test]
fn echo_on_io_uring() {
    echo_on(IoMode::Uring, IoDriver::IoUring);
}

#[test]
fn echo_on_poll() {
    echo_on(IoMode::Poll, IoDriver::Poll);
}

fn framing_edge_cases(io: IoMode) {
    let server = start_echo(config(1, io));
    let addr = server.local_addrs()[0];

    // Two messages in one segment.
    let mut c = connect(addr);
    c.write_all(format!("{}{}", sip("one"), sip("two")).as_bytes())
        .unwrap();
    assert_eq!(read_message(&mut c), "one|0");
    assert_eq!(read_message(&mut c), "two|0");

    // One message byte by byte (headers and body split everywhere).
    for b in sip("split body").as_bytes() {
        c.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(read_message(&mut c), "split body|0");

    // CRLF CRLF ping → CRLF pong; lone CRLFs before a message are ignored.
    c.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    c.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"\r\n");
    c.write_all(format!("\r\n{}", sip("after crlf")).as_bytes())
        .unwrap();
    assert_eq!(read_message(&mut c), "after crlf|0");

    // No Content-Length: the connection is closed.
    let mut d = connect(addr);
    d.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n")
        .unwrap();
    assert!(closed(&mut d), "a message without Content-Length closes");

    // Headers that never end: closed once over the limit.
    let mut e = connect(addr);
    let line = format!("X-Filler: {}\r\n", "y".repeat(1000));
    let mut sent = e.write_all(b"OPTIONS sip:x SIP/2.0\r\n").is_ok();
    for _ in 0..80 {
        sent &= e.write_all(line.as_bytes()).is_ok();
        if !sent {
            break;
        }
    }
    assert!(!sent || closed(&mut e), "oversized headers close");

    // The first connection still works.
    c.write_all(sip("still here").as_bytes()).unwrap();
    assert_eq!(read_message(&mut c), "still here|0");
    let stats = server.stream_stats();
    assert_eq!(stats.framing_errors, 2, "{stats:?}");
    assert_eq!(stats.pings_answered, 1, "{stats:?}");
    stop(server);
}

#[test]
fn framing_edge_cases_on_io_uring() {
    framing_edge_cases(IoMode::Uring);
}

#[test]
fn framing_edge_cases_on_poll() {
    framing_edge_cases(IoMode::Poll);
}

#[test]
fn accept_no_cl_takes_the_message_as_bodiless() {
    let server = start_echo(RuntimeConfig {
        tcp_accept_no_cl: true,
        ..config(1, IoMode::Auto)
    });
    let mut c = connect(server.local_addrs()[0]);
    c.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n")
        .unwrap();
    assert_eq!(read_message(&mut c), "|0");
    stop(server);
}

#[test]
fn idle_and_slow_connections_are_closed() {
    let server = start_echo(RuntimeConfig {
        tcp_connection_lifetime: Duration::from_millis(600),
        tcp_msg_read_timeout: Duration::from_millis(300),
        ..config(1, IoMode::Auto)
    });
    let addr = server.local_addrs()[0];
    let mut idle = connect(addr);
    let mut slow = connect(addr);
    slow.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: ").unwrap();
    let started = Instant::now();
    assert!(closed(&mut slow), "half a message is dropped in time");
    // 300 ms plus at most a sweep interval; generous for a loaded machine.
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(closed(&mut idle), "an idle connection is closed");
    let stats = server.stream_stats();
    assert_eq!((stats.closed_slow, stats.closed_idle), (1, 1), "{stats:?}");
    assert_eq!(stats.open, 0);
    stop(server);
}

#[test]
fn max_connections_is_enforced_at_accept() {
    let server = start_echo(RuntimeConfig {
        tcp_max_connections: 3,
        ..config(2, IoMode::Auto)
    });
    let addr = server.local_addrs()[0];
    let mut kept: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
    for (i, c) in kept.iter_mut().enumerate() {
        c.write_all(sip(&format!("c{i}")).as_bytes()).unwrap();
        assert!(read_message(c).starts_with(&format!("c{i}|")));
    }
    let mut extra = connect(addr);
    assert!(closed(&mut extra), "the fourth connection is refused");
    assert_eq!(server.stream_stats().refused_at_limit, 1);
    drop(kept.pop());
    // Once one closed, a new one is served.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut again = connect(addr);
        again.write_all(sip("back").as_bytes()).unwrap();
        let mut buf = [0u8; 1];
        if again.peek(&mut buf).is_ok_and(|n| n > 0) {
            assert!(read_message(&mut again).starts_with("back|"));
            break;
        }
        assert!(Instant::now() < deadline, "no slot freed");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop(server);
}

/// 1,000 idle connections (each with a read in flight) do not slow down a
/// new client: it connects and gets its answer quickly.
#[test]
fn many_idle_connections_do_not_starve_a_new_client() {
    runtime::raise_open_files_limit(8192).unwrap();
    let server = start_echo(config(2, IoMode::Auto));
    let addr = server.local_addrs()[0];
    let idle: Vec<TcpStream> = (0..1000).map(|_| connect(addr)).collect();
    let deadline = Instant::now() + WAIT;
    while server.stream_stats().open < 1000 {
        assert!(Instant::now() < deadline, "{:?}", server.stream_stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let mut c = connect(addr);
    c.write_all(sip("quick").as_bytes()).unwrap();
    assert!(read_message(&mut c).starts_with("quick|"));
    let took = started.elapsed();
    // A starved client would wait for seconds.
    assert!(took < Duration::from_secs(1), "took {took:?}");
    drop(idle);
    stop(server);
}

/// Sends the messages the test queues for its worker to `dst`, naming a
/// connection or not; records the connections messages arrive on.
struct Relay {
    worker: usize,
    dst: SocketAddr,
    next: Instant,
    todo: Todo,
    seen: Seen,
}

impl Handler for Relay {
    fn on_inbound(&mut self, pkt: Inbound, _now: Instant, _out: &mut Vec<Transmit>) {
        if let Some(conn) = pkt.conn {
            self.seen.lock().unwrap().push((self.worker, conn, pkt.src));
        }
    }
    fn on_timer(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        // Look at the shared list every 5 ms (a test aid, not a pattern).
        self.next = now + Duration::from_millis(5);
        let mut todo = self.todo.lock().unwrap();
        let mine: Vec<_> = todo
            .iter()
            .filter(|t| t.0 == self.worker)
            .cloned()
            .collect();
        todo.retain(|t| t.0 != self.worker);
        for (_, text, conn) in mine {
            out.push(Transmit {
                data: Bytes::from(sip(&text)),
                dst: self.dst,
                proto: Proto::Tcp,
                socket: None,
                local: None,
                conn,
                flags: Default::default(),
            });
        }
    }
    fn next_deadline(&self) -> Option<Instant> {
        Some(self.next)
    }
}

/// Messages queued by the test for a worker to send: (worker, body, connection).
type Todo = Arc<Mutex<Vec<(usize, String, Option<ConnId>)>>>;
/// Connections messages arrived on: (worker, connection, peer).
type Seen = Arc<Mutex<Vec<(usize, ConnId, SocketAddr)>>>;

fn start_relay(dst: SocketAddr, io: IoMode) -> (Server, Todo, Seen) {
    let todo: Todo = Arc::default();
    let seen: Seen = Arc::default();
    let (t, s) = (todo.clone(), seen.clone());
    let server = runtime::start(config(2, io), move |info: WorkerInfo| Relay {
        worker: info.index,
        dst,
        next: Instant::now(),
        todo: t.clone(),
        seen: s.clone(),
    })
    .expect("start relay");
    (server, todo, seen)
}

fn accept_one(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(false).unwrap();
    let (s, _) = listener.accept().expect("accept");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Both workers send to one destination: the first opens the connection,
/// the other finds it in the directory and hands its message over; the
/// destination sees one connection carrying both, in order per worker.
fn outgoing_reuse_and_handoff(io: IoMode) {
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let (server, todo, _seen) = start_relay(peer.local_addr().unwrap(), io);
    todo.lock().unwrap().push((0, "from 0".into(), None));
    let mut s = accept_one(&peer);
    assert_eq!(read_message(&mut s), "from 0");
    todo.lock().unwrap().push((1, "from 1".into(), None));
    assert_eq!(read_message(&mut s), "from 1");
    peer.set_nonblocking(true).unwrap();
    assert!(
        peer.accept().is_err(),
        "the second worker reused the connection"
    );
    let stats = server.stream_stats();
    assert_eq!((stats.connected, stats.handoffs), (1, 1), "{stats:?}");
    stop(server);
}

#[test]
fn outgoing_connection_is_reused_across_workers_on_io_uring() {
    outgoing_reuse_and_handoff(IoMode::Uring);
}

#[test]
fn outgoing_connection_is_reused_across_workers_on_poll() {
    outgoing_reuse_and_handoff(IoMode::Poll);
}

/// A worker sends on a connection another worker accepted, naming it: the
/// message is handed to the owner and arrives on that connection.
#[test]
fn named_connection_of_another_worker_is_handed_off() {
    let (server, todo, seen) = start_relay("127.0.0.1:9".parse().unwrap(), IoMode::Auto);
    let addr = server.local_addrs()[0];
    let mut c = connect(addr);
    c.write_all(sip("hello").as_bytes()).unwrap();
    let deadline = Instant::now() + WAIT;
    let (owner, conn, peer) = loop {
        if let Some(s) = seen.lock().unwrap().first() {
            break *s;
        }
        assert!(Instant::now() < deadline, "message not received");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(peer, c.local_addr().unwrap());
    // The other worker sends on the owner's connection (the Relay's `dst`,
    // 127.0.0.1:9, has the IP address of the connection's peer, as the
    // runtime checks; its port does not matter).
    todo.lock()
        .unwrap()
        .push((1 - owner, "handed".into(), Some(conn)));
    assert_eq!(read_message(&mut c), "handed");
    // The sending worker counts the hand-off after posting it, so the owner
    // can deliver the message before the count is seen from here.
    let deadline = Instant::now() + Duration::from_secs(5);
    let stats = loop {
        let stats = server.stream_stats();
        if stats.handoffs > 0 || Instant::now() >= deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(stats.handoffs, 1, "{stats:?}");
    assert_eq!(stats.connected, 0, "no new connection was opened");
    stop(server);
}

#[test]
fn connect_failure_is_counted() {
    // A port nothing listens on: refused at once.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (server, todo, _) = start_relay(dead, IoMode::Auto);
    todo.lock().unwrap().push((0, "nobody".into(), None));
    let deadline = Instant::now() + WAIT;
    while server.stream_stats().connect_failed == 0 {
        assert!(Instant::now() < deadline, "{:?}", server.stream_stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.stream_stats().open, 0);
    stop(server);
}

#[test]
fn ipv6_listen_echoes() {
    let server = start_echo(RuntimeConfig {
        listens: vec![ListenSpec::tcp("[::1]:0".parse().unwrap())],
        ..config(1, IoMode::Auto)
    });
    let addr = server.local_addrs()[0];
    assert!(addr.is_ipv6());
    let mut c = connect(addr);
    c.write_all(sip("six").as_bytes()).unwrap();
    assert_eq!(read_message(&mut c), "six|0");
    stop(server);
}
