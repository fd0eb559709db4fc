//! The UAC side: starts calls (or single requests) on a fixed schedule,
//! `rate` per second, open loop, whether or not earlier ones have been
//! answered, so a slow proxy shows up as latency and failures rather than as a
//! lower offered rate. One thread, non-blocking socket, `ppoll` with a
//! microsecond timeout between sends.
//!
//! No retransmissions: over loopback a lost datagram means a full socket
//! buffer somewhere, and the call counts as failed (timeout) instead.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::hist::Latency;
use crate::sip::{self, Uac};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// INVITE / 180 / 200 / ACK / BYE / 200.
    Calls,
    /// One request answered by a final response (OPTIONS, MESSAGE).
    Flood(&'static str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Inviting,
    Ringing,
    ByeSent,
    Done,
    Failed,
}

#[derive(Clone, Copy)]
struct Call {
    state: State,
    started: Instant,
    bye_sent: Instant,
}

pub struct Plan {
    pub mode: Mode,
    pub proxy: SocketAddr,
    pub rate: f64,
    pub count: usize,
    pub deadline: Duration,
    pub call_timeout: Duration,
    pub max_inflight: usize,
    /// Print an `INTERVAL` line this often (soak mode); zero: never.
    pub interval: Duration,
}

#[derive(Default)]
pub struct Outcome {
    pub started: usize,
    pub completed: usize,
    pub failures: BTreeMap<String, usize>,
    pub elapsed: Duration,
}

pub struct Histograms {
    /// Request sent → first response (180 for INVITE, the final one otherwise).
    pub first: Latency,
    /// INVITE → 200 (calls) or request → final response (flood).
    pub setup: Latency,
    /// BYE → 200 (calls only).
    pub bye: Latency,
}

pub fn run(sock: &UdpSocket, uac: &Uac, plan: &Plan) -> (Outcome, Histograms) {
    sock.set_nonblocking(true).expect("non-blocking socket");
    let t0 = Instant::now();
    let mut calls = vec![
        Call {
            state: State::Idle,
            started: t0,
            bye_sent: t0,
        };
        plan.count
    ];
    let mut out = Outcome::default();
    let mut h = Histograms {
        first: Latency::new(),
        setup: Latency::new(),
        bye: Latency::new(),
    };
    let mut window = Latency::new();
    let mut window_done = 0usize;
    let mut window_failed = 0usize;
    let mut next_report = t0 + plan.interval;
    let mut sendbuf = Vec::with_capacity(2048);
    let mut recvbuf = vec![0u8; 65_535];
    let gap = Duration::from_secs_f64(1.0 / plan.rate);
    let mut oldest = 0usize;
    let mut inflight = 0usize;
    let mut next_scan = t0;
    let method = match plan.mode {
        Mode::Calls => "INVITE",
        Mode::Flood(m) => m,
    };
    let fail = |out: &mut Outcome, why: String| *out.failures.entry(why).or_default() += 1;

    loop {
        let now = Instant::now();
        // Start what is due.
        while out.started < plan.count
            && t0 + gap.mul_f64(out.started as f64) <= now
            && inflight < plan.max_inflight
        {
            let n = out.started;
            uac.initial(&mut sendbuf, method, n);
            calls[n].started = Instant::now();
            out.started += 1;
            if sock.send_to(&sendbuf, plan.proxy).is_ok() {
                calls[n].state = State::Inviting;
                inflight += 1;
            } else {
                calls[n].state = State::Failed;
                fail(&mut out, "send error".into());
                window_failed += 1;
            }
        }
        // Read everything that is there.
        loop {
            let len = match sock.recv_from(&mut recvbuf) {
                Ok((len, _)) => len,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => continue,
            };
            let at = Instant::now();
            let Some(msg) = sip::parse(&recvbuf[..len]) else {
                continue;
            };
            let (Some(status), Some(n)) = (msg.status, sip::call_number(msg.call_id, uac.run))
            else {
                continue;
            };
            let Some(call) = calls.get_mut(n) else {
                continue;
            };
            let finished = match (plan.mode, msg.cseq_method, call.state, status) {
                (Mode::Calls, "INVITE", State::Inviting, 100..=199) => {
                    h.first.record(at - call.started);
                    call.state = State::Ringing;
                    None
                }
                (Mode::Calls, "INVITE", State::Inviting | State::Ringing, 200..=299) => {
                    if call.state == State::Inviting {
                        h.first.record(at - call.started);
                    }
                    h.setup.record(at - call.started);
                    window.record(at - call.started);
                    uac.in_dialog(&mut sendbuf, "ACK", n, &msg);
                    let ack = sock.send_to(&sendbuf, plan.proxy);
                    uac.in_dialog(&mut sendbuf, "BYE", n, &msg);
                    call.bye_sent = Instant::now();
                    let bye = sock.send_to(&sendbuf, plan.proxy);
                    if ack.is_ok() && bye.is_ok() {
                        call.state = State::ByeSent;
                        None
                    } else {
                        Some(Err("send error".to_string()))
                    }
                }
                (Mode::Calls, "BYE", State::ByeSent, 200..=299) => {
                    h.bye.record(at - call.bye_sent);
                    Some(Ok(()))
                }
                (Mode::Flood(_), _, State::Inviting, 200..=299) => {
                    h.first.record(at - call.started);
                    h.setup.record(at - call.started);
                    window.record(at - call.started);
                    Some(Ok(()))
                }
                (_, _, State::Inviting | State::Ringing | State::ByeSent, 300..=699) => {
                    Some(Err(format!("{} {status}", msg.cseq_method)))
                }
                // A retransmission, or a late answer to a failed call.
                _ => None,
            };
            match finished {
                Some(Ok(())) => {
                    call.state = State::Done;
                    out.completed += 1;
                    window_done += 1;
                    inflight -= 1;
                }
                Some(Err(why)) => {
                    call.state = State::Failed;
                    fail(&mut out, why);
                    window_failed += 1;
                    inflight -= 1;
                }
                None => {}
            }
        }
        let now = Instant::now();
        // Time out calls that have waited too long (every 20 ms).
        if now >= next_scan {
            next_scan = now + Duration::from_millis(20);
            while oldest < out.started && matches!(calls[oldest].state, State::Done | State::Failed)
            {
                oldest += 1;
            }
            for call in &mut calls[oldest..out.started] {
                if matches!(call.state, State::Done | State::Failed) {
                    continue;
                }
                if now - call.started > plan.call_timeout {
                    let why = match call.state {
                        State::ByeSent => "timeout (BYE)",
                        State::Ringing => "timeout (after 180)",
                        _ => "timeout",
                    };
                    call.state = State::Failed;
                    fail(&mut out, why.into());
                    window_failed += 1;
                    inflight -= 1;
                }
            }
        }
        if !plan.interval.is_zero() && now >= next_report {
            println!(
                "INTERVAL t_s={:.1} done={} failed={} rate={:.0} {}",
                (now - t0).as_secs_f64(),
                window_done,
                window_failed,
                window_done as f64 / plan.interval.as_secs_f64(),
                window.fields("setup")
            );
            window.reset();
            window_done = 0;
            window_failed = 0;
            next_report += plan.interval;
        }
        let finished = out.completed + out.failures.values().sum::<usize>();
        if finished >= plan.count {
            break;
        }
        if now - t0 >= plan.deadline {
            let left = calls[oldest..out.started]
                .iter()
                .filter(|c| !matches!(c.state, State::Done | State::Failed))
                .count();
            if left > 0 {
                *out.failures
                    .entry("unfinished at deadline".into())
                    .or_default() += left;
            }
            if plan.count > out.started {
                *out.failures
                    .entry("not started by deadline".into())
                    .or_default() += plan.count - out.started;
            }
            break;
        }
        // Sleep until the next start is due (or something arrives).
        let mut wait = Duration::from_millis(20);
        if out.started < plan.count && inflight < plan.max_inflight {
            let due = t0 + gap.mul_f64(out.started as f64);
            wait = wait.min(due.saturating_duration_since(now));
        }
        if !wait.is_zero() {
            poll_in(sock, wait);
        }
    }
    out.elapsed = t0.elapsed();
    (out, h)
}

/// Waits until `sock` is readable or `wait` has passed.
fn poll_in(sock: &UdpSocket, wait: Duration) {
    let mut pfd = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: wait.as_secs() as libc::time_t,
        tv_nsec: wait.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask.
    unsafe {
        libc::ppoll(&mut pfd, 1, &ts, std::ptr::null());
    }
}
