//! Transaction layer tests on virtual time: a driver feeds messages to a
//! [`TransactionTable`], moves the clock from deadline to deadline, and
//! records every transmission with the millisecond it was made at. No socket,
//! no sleep.
//!
//! Cast: a UAC at 192.0.2.10:5060 (upstream), the proxy at 10.0.0.1:5060,
//! downstream UASes at 10.0.0.2, 10.0.0.3, 10.0.0.4 (port 5060).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::sip::reply::{self, ReplySpec};
use crate::sip::{Message, Proto, Transmit};

mod cancel;
mod client_timers;
mod finals;
mod matching;
mod proxy;
mod scale;
mod server_timers;

pub(super) const UAC: &str = "192.0.2.10:5060";
pub(super) const PROXY: &str = "10.0.0.1:5060";
pub(super) const B1: &str = "10.0.0.2:5060";
pub(super) const B2: &str = "10.0.0.3:5060";
pub(super) const B3: &str = "10.0.0.4:5060";

/// The epoch of virtual time. Rust makes an `Instant` only by reading the
/// clock; its value never matters (every instant a test uses is this one plus
/// a virtual offset) and the table itself never reads the clock. This is the
/// one clock read in `src/tm`, test-only: `tests/layering.rs` bans the usual
/// spelling in sans-IO folders, so it is written as a qualified path here.
pub(crate) fn test_epoch() -> Instant {
    <Instant>::now()
}

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// A request from the UAC. `branch` is its Via branch (with cookie or not).
pub(super) fn request(method: &str, branch: &str, cseq: u32) -> String {
    let body = if method == "INVITE" { "v=0\r\n" } else { "" };
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@example.com>;tag=from1\r\n\
To: Bob <sip:bob@example.com>\r\n\
Call-ID: call-{branch}@192.0.2.10\r\n\
CSeq: {cseq} {method}\r\n\
Contact: <sip:alice@192.0.2.10>\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

pub(super) fn invite(branch: &str) -> String {
    request("INVITE", branch, 1)
}

/// The CANCEL a UAC sends for `invite` (§9.1: same Via, R-URI, From, To, Call-ID, CSeq number).
pub(super) fn cancel_for(invite: &str, reason: Option<&str>) -> String {
    let mut s = invite
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replace(" INVITE\r\n", " CANCEL\r\n")
        .replace(
            "Content-Length: 5\r\n\r\nv=0\r\n",
            "Content-Length: 0\r\n\r\n",
        );
    if let Some(r) = reason {
        s = s.replace(
            "Content-Length: 0",
            &format!("Reason: {r}\r\nContent-Length: 0"),
        );
    }
    s
}

/// The ACK a UAC sends for a non-2xx final to `invite` (§17.1.1.3), with the response's To tag.
pub(super) fn ack_for(invite: &str, to_tag: &str) -> String {
    invite
        .replacen("INVITE sip:", "ACK sip:", 1)
        .replace(" INVITE\r\n", " ACK\r\n")
        .replace(
            "To: Bob <sip:bob@example.com>\r\n",
            &format!("To: Bob <sip:bob@example.com>;tag={to_tag}\r\n"),
        )
        .replace(
            "Content-Length: 5\r\n\r\nv=0\r\n",
            "Content-Length: 0\r\n\r\n",
        )
}

/// One transmission, with the virtual millisecond it was made at.
#[derive(Clone, Debug)]
pub(super) struct Sent {
    pub at: u64,
    pub dst: SocketAddr,
    pub proto: Proto,
    pub data: Bytes,
}

impl Sent {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    pub fn msg(&self) -> Message {
        Message::parse(self.data.clone()).expect("we send parsable messages")
    }

    /// `INVITE`, `ACK`, `CANCEL`… or the status code as text (`"180"`).
    pub fn what(&self) -> String {
        let m = self.msg();
        match m.status() {
            Some(c) => c.to_string(),
            None => String::from_utf8_lossy(m.method_bytes()).into_owned(),
        }
    }

    pub fn status(&self) -> Option<u16> {
        self.msg().status()
    }
}

/// The test driver: a table on virtual time, and a log of what it sent.
pub(super) struct Driver {
    pub t: TransactionTable<()>,
    epoch: Instant,
    pub now: u64,
    out: Vec<Transmit>,
    pub sent: Vec<Sent>,
    pub events: Vec<(u64, TmEvent)>,
}

impl Driver {
    pub fn new() -> Driver {
        Driver::with(TmConfig::default())
    }

    pub fn with(cfg: TmConfig) -> Driver {
        let epoch = test_epoch();
        Driver {
            t: TransactionTable::new(cfg, 0, epoch),
            epoch,
            now: 0,
            out: Vec::new(),
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn instant(&self) -> Instant {
        self.epoch + Duration::from_millis(self.now)
    }

    fn collect(&mut self) {
        for t in self.out.drain(..) {
            self.sent.push(Sent {
                at: self.now,
                dst: t.dst,
                proto: t.proto,
                data: t.data,
            });
        }
    }

    /// Moves the clock to `ms`, firing every timer due on the way at its deadline.
    pub fn run_until(&mut self, ms: u64) {
        loop {
            let due = self
                .t
                .next_deadline()
                .map(|d| d.saturating_duration_since(self.epoch).as_millis() as u64);
            match due {
                Some(d) if d <= ms => {
                    self.now = self.now.max(d);
                    let mut events = Vec::new();
                    let now = self.instant();
                    self.t.on_timer(now, &mut self.out, &mut events);
                    self.collect();
                    let at = self.now;
                    self.events.extend(events.into_iter().map(|e| (at, e)));
                }
                _ => break,
            }
        }
        self.now = self.now.max(ms);
    }

    pub fn advance(&mut self, ms: u64) {
        let to = self.now + ms;
        self.run_until(to);
    }

    /// Takes the transmissions logged so far.
    pub fn drain(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.sent)
    }

    /// Transmissions logged so far, summarized as `(ms, destination, what)`.
    pub fn summary(&mut self) -> Vec<(u64, String, String)> {
        self.drain()
            .iter()
            .map(|s| (s.at, s.dst.to_string(), s.what()))
            .collect()
    }

    pub fn source(proto: Proto) -> Source {
        Source {
            src: addr(UAC),
            local: addr(PROXY),
            proto,
            socket: 0,
            conn: None,
        }
    }

    /// A request arrives from the UAC.
    pub fn recv(&mut self, text: &str) -> RequestMatch {
        let msg = Message::parse(Bytes::from(text.to_owned())).expect("test request parses");
        let now = self.instant();
        let r = self.t.on_request(&msg, now, &mut self.out);
        self.collect();
        r
    }

    /// A new request arrives and the script creates its transaction (`t_newtran`).
    pub fn create(&mut self, text: &str) -> Tid {
        self.create_over(text, Proto::Udp)
    }

    pub fn create_over(&mut self, text: &str, proto: Proto) -> Tid {
        assert_eq!(self.recv(text), RequestMatch::New);
        let msg = Message::parse(Bytes::from(text.to_owned())).expect("test request parses");
        let now = self.instant();
        let tid = self
            .t
            .create_server(&msg, &Driver::source(proto), (), now, &mut self.out)
            .expect("create_server");
        self.collect();
        tid
    }

    /// Adds a branch toward `dst`: the request gets our Via on top. Returns
    /// its index and the bytes sent (to build downstream responses from).
    pub fn fork(&mut self, tid: Tid, dst: &str) -> (u8, Bytes) {
        self.fork_over(tid, dst, Proto::Udp).expect("add_branch")
    }

    pub fn fork_over(&mut self, tid: Tid, dst: &str, proto: Proto) -> Result<(u8, Bytes), TmError> {
        let upstream = self.t.request(tid).cloned().expect("live transaction");
        let target = Target {
            dst: addr(dst),
            proto,
            socket: Some(0),
            local: None,
            conn: None,
            flags: Default::default(),
        };
        let mut sent = Bytes::new();
        let now = self.instant();
        let idx = self.t.add_branch(
            tid,
            target,
            |branch| {
                let text = String::from_utf8_lossy(&upstream).into_owned();
                let (first, rest) = text.split_once("\r\n").expect("request line");
                let via = format!(
                    "Via: SIP/2.0/{} {PROXY};branch={}\r\n",
                    proto.via_name(),
                    String::from_utf8_lossy(branch.as_bytes())
                );
                sent = Bytes::from(format!("{first}\r\n{via}{rest}"));
                sent.clone()
            },
            now,
            &mut self.out,
        )?;
        self.collect();
        Ok((idx, sent))
    }

    /// A downstream response to `branch_req` (as the UAS builds it: all Vias copied).
    pub fn response(branch_req: &Bytes, code: u16, to_tag: Option<&str>, extra: &str) -> Bytes {
        let req = Message::parse(branch_req.clone()).expect("branch request parses");
        let spec = ReplySpec {
            code,
            reason: reason(code).as_bytes(),
            to_tag: to_tag.map(str::as_bytes),
            extra_headers: extra.as_bytes(),
            ..ReplySpec::default()
        };
        let mut out = Vec::new();
        reply::build(&req, &spec, &mut out);
        Bytes::from(out)
    }

    /// A reply arrives from downstream.
    pub fn recv_reply(&mut self, data: Bytes) -> ReplyAction {
        let msg = Message::parse(data).expect("test reply parses");
        let now = self.instant();
        let r = self.t.on_reply(&msg, None, now, &mut self.out);
        self.collect();
        r
    }

    /// The downstream UAS answers `branch_req` with `code` (To tag `b-<code>` for finals).
    pub fn answer(&mut self, branch_req: &Bytes, code: u16) -> ReplyAction {
        let tag = format!("uas-{code}");
        let data = Driver::response(branch_req, code, (code > 100).then_some(tag.as_str()), "");
        self.recv_reply(data)
    }

    pub fn reply_local(&mut self, tid: Tid, code: u16) -> Result<(), TmError> {
        let now = self.instant();
        let spec = LocalReply {
            code,
            reason: reason(code).as_bytes(),
            ..LocalReply::default()
        };
        let r = self.t.reply(tid, &spec, now, &mut self.out);
        self.collect();
        r
    }

    /// The UAC's CANCEL arrives and the script relays it (`t_relay` → `cancel`).
    pub fn cancel(
        &mut self,
        invite_text: &str,
        reason: Option<&str>,
    ) -> Result<CancelOutcome, TmError> {
        let text = cancel_for(invite_text, reason);
        let RequestMatch::Cancel { invite } = self.recv(&text) else {
            panic!("CANCEL did not match its INVITE");
        };
        let msg = Message::parse(Bytes::from(text)).expect("cancel parses");
        let now = self.instant();
        let r = self.t.cancel(
            invite,
            &msg,
            &Driver::source(Proto::Udp),
            now,
            &mut self.out,
        );
        self.collect();
        r
    }

    pub fn failure_done(&mut self, tid: Tid) -> Option<u16> {
        let now = self.instant();
        let r = self.t.failure_done(tid, now, &mut self.out);
        self.collect();
        r
    }
}

pub(super) fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        302 => "Moved Temporarily",
        401 => "Unauthorized",
        404 => "Not Found",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Whatever",
    }
}

/// The ms at which `what` was sent to `dst`, in order.
pub(super) fn times(log: &[Sent], dst: &str, what: &str) -> Vec<u64> {
    log.iter()
        .filter(|s| s.dst == addr(dst) && s.what() == what)
        .map(|s| s.at)
        .collect()
}
