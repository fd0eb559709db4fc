//! Calls through `record_route(); t_relay();` with 10% UDP loss in every
//! direction, completing through retransmissions (issue 7, "Must show").
//!
//! sipp's `-lost` turned out flaky here (about one call in 300 ended with
//! the caller out of retransmissions, from how sipp re-answers a
//! retransmitted 2xx), so the two ends are small Rust user agents that
//! retransmit as RFC 3261 says and lose datagrams on purpose: each drops 10%
//! of what it sends and 10% of what it receives, decided by a seeded
//! generator, so every leg (caller↔proxy, proxy↔callee) loses 10% of its
//! datagrams each way. What recovers each loss:
//!
//! | lost | recovered by |
//! |---|---|
//! | INVITE caller→proxy | caller's Timer A (until any response) |
//! | 100/180 proxy→caller | caller's Timer A; the proxy re-sends its last reply |
//! | INVITE proxy→callee | the proxy's Timer A |
//! | 200 callee→proxy or proxy→caller | the callee re-sends the 2xx until the ACK (§13.3.1.4); the proxy relays every 2xx (§16.7 step 5) |
//! | ACK (either leg) | the next 2xx retransmission, ACKed again (§13.2.2.4) |
//! | BYE (either leg) | caller's Timer E; the proxy's Timer E |
//! | 200 to BYE (either leg) | BYE retransmitted; the proxy re-sends the stored 200 (§17.2.2), the callee answers again |

mod common;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::net::free_udp_addr;
use common::proxy::Proxy;
use common::ua::SipMsg;

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// A seeded generator (xorshift64*): the same seed drops the same positions
/// of the send/receive sequence.
struct Loss {
    state: u64,
    percent: u64,
    dropped: u64,
    passed: u64,
}

impl Loss {
    fn new(seed: u64, percent: u64) -> Loss {
        Loss {
            state: seed.max(1),
            percent,
            dropped: 0,
            passed: 0,
        }
    }

    fn lose(&mut self) -> bool {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33;
        let lost = r % 100 < self.percent;
        if lost {
            self.dropped += 1;
        } else {
            self.passed += 1;
        }
        lost
    }
}

/// A UDP socket that loses datagrams both ways.
struct LossySocket {
    sock: UdpSocket,
    loss: Loss,
    sent: u64,
}

impl LossySocket {
    fn bind(seed: u64) -> LossySocket {
        let sock = UdpSocket::bind(free_udp_addr()).expect("bind UA socket");
        sock.set_nonblocking(true).expect("non-blocking");
        LossySocket {
            sock,
            loss: Loss::new(seed, 10),
            sent: 0,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("local addr")
    }

    fn send(&mut self, to: SocketAddr, text: &str) {
        self.sent += 1;
        if !self.loss.lose() {
            let _ = self.sock.send_to(text.as_bytes(), to);
        }
    }

    /// The next datagram that was not lost, if one is waiting.
    fn recv(&mut self) -> Option<(SipMsg, SocketAddr)> {
        let mut buf = vec![0u8; 65536];
        loop {
            let (n, from) = self.sock.recv_from(&mut buf).ok()?;
            if self.loss.lose() {
                continue;
            }
            return Some((SipMsg::new(buf[..n].to_vec(), Some(from)), from));
        }
    }
}

/// A retransmission schedule: doubling from T1, capped at `cap`.
#[derive(Clone, Copy)]
struct Retx {
    at: Instant,
    interval: Duration,
    cap: Option<Duration>,
}

impl Retx {
    fn start(now: Instant, cap: Option<Duration>) -> Retx {
        Retx {
            at: now + T1,
            interval: T1,
            cap,
        }
    }

    fn due(&mut self, now: Instant) -> bool {
        if now < self.at {
            return false;
        }
        self.interval = match self.cap {
            Some(cap) => (self.interval * 2).min(cap),
            None => self.interval * 2,
        };
        self.at = now + self.interval;
        true
    }
}

#[derive(Default)]
struct CallerLeg {
    invite: String,
    /// Timer A: until any response to the INVITE.
    invite_retx: Option<Retx>,
    ack: Option<String>,
    bye: Option<String>,
    /// Timer E: until the final response to the BYE.
    bye_retx: Option<Retx>,
    done: bool,
}

#[derive(Default)]
struct CalleeLeg {
    ok: Option<String>,
    /// Timer G-like: the 2xx is re-sent until the ACK (§13.3.1.4).
    ok_retx: Option<Retx>,
    ok_to: Option<SocketAddr>,
    acked: bool,
    bye_seen: bool,
}

struct Callers {
    sock: LossySocket,
    proxy: SocketAddr,
    calls: Vec<CallerLeg>,
    retransmissions: u64,
}

fn call_index(msg: &SipMsg) -> Option<usize> {
    msg.header("Call-ID")?
        .strip_prefix("loss-")?
        .split('@')
        .next()?
        .parse()
        .ok()
}

fn cseq_method(msg: &SipMsg) -> &str {
    msg.header("CSeq")
        .and_then(|c| c.split_whitespace().nth(1))
        .unwrap_or("")
}

impl Callers {
    fn start_call(&mut self, i: usize, now: Instant) {
        let me = self.sock.addr();
        let invite = format!(
            "INVITE sip:callee@{proxy} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK-loss-{i}-inv\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:caller@{me}>;tag=c{i}\r\n\
             To: <sip:callee@{proxy}>\r\n\
             Call-ID: loss-{i}@{ip}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:caller@{me}>\r\n\
             Content-Length: 0\r\n\r\n",
            proxy = self.proxy,
            ip = me.ip(),
        );
        self.sock.send(self.proxy, &invite);
        self.calls[i] = CallerLeg {
            invite,
            invite_retx: Some(Retx::start(now, None)),
            ..CallerLeg::default()
        };
    }

    fn on_message(&mut self, msg: SipMsg, now: Instant) {
        let Some(i) = call_index(&msg) else { return };
        let Some(status) = msg.status() else { return };
        let me = self.sock.addr();
        let proxy = self.proxy;
        let Some(call) = self.calls.get_mut(i) else {
            return;
        };
        match cseq_method(&msg) {
            "INVITE" => {
                // §17.1.1.2: any response stops Timer A.
                call.invite_retx = None;
                if !(200..300).contains(&status) {
                    return;
                }
                if call.ack.is_none() {
                    let contact = msg.header("Contact").unwrap_or("").to_string();
                    let target = contact
                        .trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    // §12.1.2: the route set is the Record-Route list, reversed.
                    let mut routes: Vec<String> = msg
                        .headers("Record-Route")
                        .iter()
                        .flat_map(|h| h.split(','))
                        .map(|r| r.trim().to_string())
                        .collect();
                    routes.reverse();
                    let route_lines: String =
                        routes.iter().map(|r| format!("Route: {r}\r\n")).collect();
                    let to = msg.header("To").unwrap_or("");
                    let common = |method: &str, cseq: u32, branch: &str| {
                        format!(
                            "{method} {target} SIP/2.0\r\n\
                             Via: SIP/2.0/UDP {me};branch=z9hG4bK-loss-{i}-{branch}\r\n\
                             Max-Forwards: 70\r\n\
                             From: <sip:caller@{me}>;tag=c{i}\r\n\
                             To: {to}\r\n\
                             Call-ID: loss-{i}@{ip}\r\n\
                             CSeq: {cseq} {method}\r\n\
                             {route_lines}\
                             Content-Length: 0\r\n\r\n",
                            ip = me.ip(),
                        )
                    };
                    call.ack = Some(common("ACK", 1, "ack"));
                    call.bye = Some(common("BYE", 2, "bye"));
                    call.bye_retx = Some(Retx::start(now, Some(T2)));
                    if let Some(ack) = call.ack.clone() {
                        self.sock.send(proxy, &ack);
                    }
                    if let Some(bye) = call.bye.clone() {
                        self.sock.send(proxy, &bye);
                    }
                } else if let Some(ack) = call.ack.clone() {
                    // §13.2.2.4: every retransmission of the 2xx is ACKed again.
                    self.retransmissions += 1;
                    self.sock.send(proxy, &ack);
                }
            }
            "BYE" if status >= 200 => {
                call.bye_retx = None;
                call.done = true;
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant) {
        let proxy = self.proxy;
        for call in &mut self.calls {
            if let Some(r) = call.invite_retx.as_mut() {
                if r.due(now) {
                    self.retransmissions += 1;
                    self.sock.send(proxy, &call.invite);
                }
            }
            if let (Some(r), Some(bye)) = (call.bye_retx.as_mut(), call.bye.as_ref()) {
                if r.due(now) {
                    self.retransmissions += 1;
                    self.sock.send(proxy, bye);
                }
            }
        }
    }
}

struct Callees {
    sock: LossySocket,
    calls: HashMap<usize, CalleeLeg>,
    retransmissions: u64,
}

fn reply(req: &SipMsg, code: u16, reason: &str, tag: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers("Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    out.push_str(&format!("From: {}\r\n", req.header("From").unwrap_or("")));
    let to = req.header("To").unwrap_or("");
    if to.contains("tag=") {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag={tag}\r\n"));
    }
    out.push_str(&format!(
        "Call-ID: {}\r\n",
        req.header("Call-ID").unwrap_or("")
    ));
    out.push_str(&format!("CSeq: {}\r\n", req.header("CSeq").unwrap_or("")));
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

impl Callees {
    fn on_message(&mut self, msg: SipMsg, from: SocketAddr, now: Instant) {
        let Some(i) = call_index(&msg) else { return };
        let me = self.sock.addr();
        let call = self.calls.entry(i).or_default();
        match msg.method() {
            Some("INVITE") => {
                if call.acked || call.bye_seen {
                    return;
                }
                if call.ok.is_none() {
                    // §12.1.1: the Record-Route is copied into the 2xx.
                    let mut extra = String::new();
                    for rr in msg.headers("Record-Route") {
                        extra.push_str(&format!("Record-Route: {rr}\r\n"));
                    }
                    extra.push_str(&format!("Contact: <sip:callee@{me}>\r\n"));
                    let tag = format!("e{i}");
                    let ringing = reply(&msg, 180, "Ringing", &tag, &extra);
                    self.sock.send(from, &ringing);
                    call.ok = Some(reply(&msg, 200, "OK", &tag, &extra));
                    call.ok_retx = Some(Retx::start(now, Some(T2)));
                    call.ok_to = Some(from);
                } else {
                    self.retransmissions += 1;
                }
                if let Some(ok) = call.ok.clone() {
                    self.sock.send(from, &ok);
                }
            }
            Some("ACK") => {
                call.acked = true;
                call.ok_retx = None;
            }
            Some("BYE") => {
                // A BYE also ends the 2xx retransmissions (its ACK may be lost for good).
                call.bye_seen = true;
                call.ok_retx = None;
                let ok = reply(&msg, 200, "OK", "x", "");
                self.sock.send(from, &ok);
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, now: Instant) {
        for call in self.calls.values_mut() {
            let (Some(r), Some(ok), Some(to)) =
                (call.ok_retx.as_mut(), call.ok.as_ref(), call.ok_to)
            else {
                continue;
            };
            if r.due(now) {
                self.retransmissions += 1;
                self.sock.send(to, ok);
            }
        }
    }
}

fn config(callee: SocketAddr) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "textops.so"

request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{ t_relay(); }}
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    record_route();
    $du = "sip:{callee}";
    t_relay();
}}
"#
    )
}

/// Runs `calls` calls at `rate` per second through a fresh proxy, with both
/// ends losing 10% of datagrams each way; returns (calls completed at the
/// caller, at the callee, datagrams dropped, retransmissions by the ends).
fn lossy_calls(calls: usize, rate: u64, seed: u64) -> (usize, usize, u64, u64) {
    let mut callees = Callees {
        sock: LossySocket::bind(seed ^ 0x5eed),
        calls: HashMap::new(),
        retransmissions: 0,
    };
    let proxy = Proxy::start(&config(callees.sock.addr()), &[]);
    let mut callers = Callers {
        sock: LossySocket::bind(seed),
        proxy: proxy.addr(),
        calls: (0..calls).map(|_| CallerLeg::default()).collect(),
        retransmissions: 0,
    };
    let begin = Instant::now();
    let gap = Duration::from_micros(1_000_000 / rate.max(1));
    // Enough for the last call to go through a long run of losses (Timer E
    // reaches T2 = 4 s between BYE retransmissions).
    let deadline = begin + gap * calls as u32 + Duration::from_secs(40);
    let mut started = 0;
    loop {
        let now = Instant::now();
        while started < calls && begin + gap * started as u32 <= now {
            callers.start_call(started, now);
            started += 1;
        }
        let mut busy = false;
        while let Some((msg, _)) = callers.sock.recv() {
            busy = true;
            callers.on_message(msg, now);
        }
        while let Some((msg, from)) = callees.sock.recv() {
            busy = true;
            callees.on_message(msg, from, now);
        }
        callers.on_timer(now);
        callees.on_timer(now);
        let done_caller = callers.calls.iter().filter(|c| c.done).count();
        if started == calls && done_caller == calls || now > deadline {
            break;
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let done_caller = callers.calls.iter().filter(|c| c.done).count();
    let done_callee = callees.calls.values().filter(|c| c.bye_seen).count();
    let dropped = callers.sock.loss.dropped + callees.sock.loss.dropped;
    let total = dropped + callers.sock.loss.passed + callees.sock.loss.passed;
    eprintln!(
        "{calls} calls, seed {seed}: caller done {done_caller}, callee done {done_callee}, \
         dropped {dropped} of {total} datagrams, {} + {} retransmissions by the ends, {:?}",
        callers.retransmissions,
        callees.retransmissions,
        begin.elapsed()
    );
    assert!(
        proxy.stderr().lines().all(|l| !l.contains("panicked")),
        "{}",
        proxy.stderr()
    );
    (
        done_caller,
        done_callee,
        dropped,
        callers.retransmissions + callees.retransmissions,
    )
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 400 calls at 50 calls/s (about 8 s of calls plus the tail of the last
/// retransmissions; 11–20 s in a debug build) with 10% loss each way on both
/// legs: every call completes, through retransmissions on both sides of the
/// proxy. `RINGSIP_LOSS_CALLS=5000 RINGSIP_LOSS_RATE=200` runs the issue's
/// full figure.
#[test]
fn calls_complete_through_retransmissions_with_10_percent_udp_loss() {
    let calls = env_or("RINGSIP_LOSS_CALLS", 400) as usize;
    let rate = env_or("RINGSIP_LOSS_RATE", 50);
    let (caller, callee, dropped, retrans) = lossy_calls(calls, rate, 0x7e57_0001);
    assert!(
        dropped > calls as u64,
        "losses were injected ({dropped} datagrams)"
    );
    assert!(retrans > 0, "the ends retransmitted");
    assert_eq!(caller, calls, "every caller got the 200 to its BYE");
    assert_eq!(callee, calls, "every callee got the BYE");
}
