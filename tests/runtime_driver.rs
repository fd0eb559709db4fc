//! Which IO driver really runs: an io_uring worker owns a ring (an
//! `anon_inode:[io_uring]` fd), a poll worker owns none. One test in its own
//! process, so no other test's rings are counted.

use std::fs;
use std::time::Instant;

use ringsip::runtime::{self, Handler, IoDriver, IoMode, ListenSpec, RuntimeConfig, WorkerInfo};
use ringsip::sip::packet::{Inbound, Transmit};

struct Idle;

impl Handler for Idle {
    fn on_inbound(&mut self, _pkt: Inbound, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

fn rings() -> usize {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy() == "anon_inode:[io_uring]")
        .count()
}

/// [`rings`] once it reads `want`, or after 2 s whatever it reads: a ring
/// being set up or closed by another thread (the workers start and stop on
/// their own threads) can show for a moment on a loaded machine.
fn rings_settled(want: usize) -> usize {
    let deadline = Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let n = rings();
        if n == want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn start(io: IoMode) -> runtime::Server {
    let cfg = RuntimeConfig {
        workers: 2,
        io,
        pin_cores: false,
        handle_signals: false,
        recv_buffers: 8,
        ..RuntimeConfig::new(vec![ListenSpec::udp("127.0.0.1:0".parse().unwrap())])
    };
    runtime::start(cfg, |_: WorkerInfo| Idle).unwrap()
}

#[test]
fn each_driver_is_what_it_says() {
    assert_eq!(rings(), 0);

    let server = start(IoMode::Poll);
    assert_eq!(server.drivers(), &[IoDriver::Poll, IoDriver::Poll]);
    assert_eq!(rings(), 0, "poll workers must not create a ring");
    server.stop();
    server.wait().unwrap();

    let server = start(IoMode::Uring);
    assert_eq!(server.drivers(), &[IoDriver::IoUring, IoDriver::IoUring]);
    assert_eq!(rings_settled(2), 2, "one ring per io_uring worker");
    server.stop();
    server.wait().unwrap();
    assert_eq!(rings_settled(0), 0, "rings closed when the workers end");
}
