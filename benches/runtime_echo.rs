//! A small, bounded echo load to put figures on the runtime's cost per
//! datagram: on-CPU time of the worker thread (from its schedstat) per
//! datagram echoed, for io_uring, the poll driver, and a plain blocking
//! `recv_from`/`send_to` thread as the yardstick (a plain `main`, not
//! criterion: the figure is CPU per datagram, not wall time per iteration):
//!
//! ```text
//! cargo bench --bench runtime_echo
//! ```

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ringsip::runtime::{self, Handler, IoMode, ListenSpec, RuntimeConfig, WorkerInfo};
use ringsip::sip::packet::{Inbound, Transmit};

const RUN: Duration = Duration::from_millis(1500);
const WINDOW: usize = 32;
const PAYLOAD: usize = 512;

struct Echo;

impl Handler for Echo {
    fn on_inbound(&mut self, pkt: Inbound, _now: Instant, out: &mut Vec<Transmit>) {
        out.push(Transmit {
            data: pkt.data,
            dst: pkt.src,
            proto: pkt.proto,
            socket: Some(pkt.socket),
            local: Some(pkt.local),
            conn: pkt.conn,
            flags: Default::default(),
        });
    }
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

/// On-CPU nanoseconds of the first thread of this process named `name`.
fn thread_cpu_ns(name: &str) -> u64 {
    for task in fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = fs::read_to_string(task.path().join("schedstat")).unwrap();
            return stat.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    panic!("no thread named {name}");
}

/// Keeps `WINDOW` datagrams in flight against `server` for `RUN`; returns replies.
fn drive(server: SocketAddr) -> u64 {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(server).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let payload = vec![b's'; PAYLOAD];
    let mut buf = vec![0; 2048];
    for _ in 0..WINDOW {
        client.send(&payload).unwrap();
    }
    let mut replies = 0;
    let until = Instant::now() + RUN;
    while Instant::now() < until {
        match client.recv(&mut buf) {
            Ok(_) => {
                replies += 1;
                client.send(&payload).unwrap();
            }
            // A datagram lost under load: put one back in flight.
            Err(_) => {
                client.send(&payload).unwrap();
            }
        }
    }
    replies
}

fn report(what: &str, replies: u64, cpu_ns: u64) {
    println!(
        "{what:<24} {replies:>8} echoes in {RUN:?}: {:>7.0}/s, worker {:.2} µs CPU per datagram",
        replies as f64 / RUN.as_secs_f64(),
        cpu_ns as f64 / 1000.0 / replies as f64
    );
}

fn main() {
    for (what, io) in [
        ("ringsip io_uring", IoMode::Uring),
        ("ringsip poll", IoMode::Poll),
    ] {
        let cfg = RuntimeConfig {
            workers: 1,
            io,
            pin_cores: false,
            handle_signals: false,
            ..RuntimeConfig::new(vec![ListenSpec::udp("127.0.0.1:0".parse().unwrap())])
        };
        let server = runtime::start(cfg, |_: WorkerInfo| Echo).unwrap();
        let before = thread_cpu_ns("ringsip-w0");
        let replies = drive(server.local_addrs()[0]);
        let cpu = thread_cpu_ns("ringsip-w0") - before;
        server.stop();
        server.wait().unwrap();
        report(what, replies, cpu);
    }

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let plain = thread::Builder::new()
        .name("plain-udp".into())
        .spawn(move || {
            let mut buf = vec![0; 65_536];
            while !stopping.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        })
        .unwrap();
    thread::sleep(Duration::from_millis(20));
    let before = thread_cpu_ns("plain-udp");
    let replies = drive(addr);
    let cpu = thread_cpu_ns("plain-udp") - before;
    stop.store(true, Ordering::Relaxed);
    plain.join().unwrap();
    report("plain recv_from/send_to", replies, cpu);
}
