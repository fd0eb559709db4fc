//! SIGTERM stops the server gracefully. Its own process: the signal handlers
//! it installs are process-wide.

use std::time::{Duration, Instant};

use ringsip::runtime::{self, Handler, IoMode, ListenSpec, RuntimeConfig, WorkerInfo};
use ringsip::sip::packet::{Inbound, Transmit};
use signal_hook::consts::SIGTERM;

struct Idle;

impl Handler for Idle {
    fn on_inbound(&mut self, _pkt: Inbound, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

#[test]
fn sigterm_stops_every_worker() {
    let cfg = RuntimeConfig {
        workers: 2,
        io: IoMode::Auto,
        pin_cores: false,
        handle_signals: true,
        recv_buffers: 8,
        ..RuntimeConfig::new(vec![ListenSpec::udp("127.0.0.1:0".parse().unwrap())])
    };
    let server = runtime::start(cfg, |_: WorkerInfo| Idle).unwrap();
    let addr = server.local_addrs()[0];
    let (done, finished) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || done.send(server.wait()).unwrap());

    signal_hook::low_level::raise(SIGTERM).unwrap();
    let result = finished
        .recv_timeout(Duration::from_secs(5))
        .expect("wait() returns after SIGTERM");
    result.expect("workers end cleanly");
    waiter.join().unwrap();
    std::net::UdpSocket::bind(addr).expect("sockets closed");
}
