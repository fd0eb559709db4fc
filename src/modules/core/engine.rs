//! The per-core message pipeline (DESIGN.md "The path of one message"):
//! parse → (replies) core reply route, then back along the Via path;
//! (requests) absorb ACKs to our stateless replies, then `request_route`.
//!
//! Sans-IO: [`Engine::on_inbound`] takes a packet and `now` and appends what to
//! send; the runtime owns sockets and time.

use std::sync::Arc;
use std::time::Instant;

use crate::script::ctx::{CoreState, Env, MsgCtx};
use crate::script::ir::Program;
use crate::script::registry::RouteType;
use crate::script::vm::{self, Outcome};
use crate::sip::{Edits, Inbound, Message, Transmit};

use super::forward::{self, Reject};
use crate::modules::sl;

/// Counters a core keeps about what it dropped and why.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    pub received: u64,
    /// Messages that could not be framed or parsed (dropped, or answered 400).
    pub parse_errors: u64,
    /// Requests answered with 400 because a required header was unreadable.
    pub bad_requests: u64,
    /// Replies not ours (top Via is not this proxy) or with no Via to route back on.
    pub unroutable_replies: u64,
    /// ACKs to our own stateless replies, absorbed.
    pub absorbed_acks: u64,
}

/// One core's engine: the shared program and settings, and this core's state.
pub struct Engine {
    env: Arc<Env>,
    program: Arc<Program>,
    core: CoreState,
    stats: EngineStats,
}

impl Engine {
    pub fn new(env: Arc<Env>, program: Arc<Program>) -> Engine {
        let core = CoreState::new(&program);
        Engine {
            env,
            program,
            core,
            stats: EngineStats::default(),
        }
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Handles one received message.
    pub fn on_inbound(&mut self, pkt: Inbound, now: Instant, out: &mut Vec<Transmit>) {
        self.stats.received += 1;
        // A keep-alive (CRLF only) or a datagram too short to be SIP is not an error worth a log line.
        if pkt.data.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        let msg = match Message::parse(pkt.data.clone()) {
            Ok(m) => m,
            Err(e) => {
                self.stats.parse_errors += 1;
                log::debug!("dropping unparsable message from {}: {e}", pkt.src);
                return;
            }
        };
        if msg.is_request() {
            self.on_request(&msg, &pkt, now, out);
        } else {
            self.on_reply(&msg, &pkt, now, out);
        }
    }

    /// The context for running a route on `msg` (borrows this core's state).
    fn ctx<'a>(
        &'a mut self,
        msg: &'a Message,
        pkt: &Inbound,
        now: Instant,
        route_type: RouteType,
        out: &'a mut Vec<Transmit>,
    ) -> MsgCtx<'a> {
        MsgCtx {
            env: &self.env,
            program: &self.program,
            core: &mut self.core,
            msg,
            src: pkt.src,
            local: pkt.local,
            proto: pkt.proto,
            socket: pkt.socket,
            conn: pkt.conn,
            now,
            route_type,
            edits: Edits::new(),
            new_uri: None,
            dst_uri: None,
            flags: 0,
            retcode: 1,
            out,
        }
    }

    fn on_request(&mut self, msg: &Message, pkt: &Inbound, now: Instant, out: &mut Vec<Transmit>) {
        // A request we cannot route a reply for (no readable top Via) is dropped;
        // one with unreadable essentials gets a 400 naming the problem.
        match forward::check_request(msg) {
            Ok(()) => {}
            Err(Reject::Drop(e)) => {
                self.stats.bad_requests += 1;
                log::debug!(
                    "dropping request from {} that cannot be answered: {e}",
                    pkt.src
                );
                return;
            }
            Err(Reject::Answer(e)) => {
                self.stats.bad_requests += 1;
                let mut ctx = self.ctx(msg, pkt, now, RouteType::Request, out);
                sl::send_reply(&mut ctx, 400, e.kind.reason().as_bytes());
                return;
            }
        }
        if msg.method_bytes() == b"ACK" && sl::is_ack_to_own_reply(&self.env, msg) {
            self.stats.absorbed_acks += 1;
            return;
        }
        let Some(route) = self.program.request_route else {
            return;
        };
        let mut ctx = self.ctx(msg, pkt, now, RouteType::Request, out);
        // request_route has no implicit action at its end (Kamailio semantics).
        let _ = vm::run_route(&mut ctx, route);
    }

    fn on_reply(&mut self, msg: &Message, pkt: &Inbound, now: Instant, out: &mut Vec<Transmit>) {
        let mut ctx = self.ctx(msg, pkt, now, RouteType::Reply, out);
        if let Some(route) = ctx.program.reply_route {
            // drop, 0 or a negative final value discard the reply (KAMAILIO-REFERENCE §0).
            match vm::run_route(&mut ctx, route) {
                Outcome::Done(code) | Outcome::Exit(code) if code <= 0 => return,
                Outcome::Drop => return,
                Outcome::Exit(_) | Outcome::Done(_) => {}
            }
        }
        if forward::reply(&mut ctx) < 0 {
            self.stats.unroutable_replies += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    //! RFC 3261 §18.2.2 over streams, sans-IO: a reply goes back on the
    //! connection its request came on, statelessly answered or forwarded.

    use std::net::SocketAddr;

    use bytes::Bytes;

    use super::*;
    use crate::script::compile::compile;
    use crate::script::ctx::SocketInfo;
    use crate::sip::{ConnId, Proto};

    const CFG: &str = r#"
loadmodule "sl.so"
request_route {
    if (method == "OPTIONS") { sl_send_reply("200", "OK"); exit; }
    forward("127.0.0.2", "5080");
}
"#;

    fn engine() -> Engine {
        let opts = crate::script::Options::default();
        let parsed = crate::script::parse_str("t.cfg", CFG, &opts).expect("parses");
        let compiled = compile(&parsed).expect("compiles");
        let addr: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let sockets = [Proto::Udp, Proto::Tcp]
            .into_iter()
            .map(|proto| SocketInfo {
                proto,
                addr,
                advertise: None,
            })
            .collect();
        let env = Env {
            sockets,
            ..Env::default()
        };
        Engine::new(Arc::new(env), Arc::new(compiled.program))
    }

    fn request(method: &str) -> Bytes {
        Bytes::from(format!(
            "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKc1\r\n\
             From: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c1\r\n\
             CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        ))
    }

    fn over_tcp(data: Bytes, conn: ConnId) -> Inbound {
        Inbound {
            data,
            src: "10.0.0.1:40000".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            proto: Proto::Tcp,
            socket: 1,
            conn: Some(conn),
        }
    }

    #[test]
    fn stateless_reply_goes_back_on_the_requests_connection() {
        let mut e = engine();
        let conn = ConnId::from_raw(0x0001_0002_0000_0003);
        let mut out = Vec::new();
        e.on_inbound(over_tcp(request("OPTIONS"), conn), Instant::now(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].conn, out[0].proto), (Some(conn), Proto::Tcp));
        assert_eq!(out[0].dst, "10.0.0.1:40000".parse().unwrap());
    }

    #[test]
    fn forwarded_requests_reply_comes_back_on_its_connection() {
        let mut e = engine();
        let conn = ConnId::from_raw(0x0001_0002_0000_0003);
        let mut out = Vec::new();
        e.on_inbound(over_tcp(request("INVITE"), conn), Instant::now(), &mut out);
        assert_eq!(out.len(), 1);
        let fwd = String::from_utf8_lossy(&out[0].data).into_owned();
        assert_eq!((out[0].proto, out[0].conn), (Proto::Udp, None));
        let our_via = fwd.lines().find(|l| l.starts_with("Via:")).unwrap();
        assert!(our_via.ends_with(";i=0001000200000003"), "{our_via}");

        // The UAS answers over UDP with both Vias.
        let vias: Vec<&str> = fwd.lines().filter(|l| l.starts_with("Via:")).collect();
        let reply = format!(
            "SIP/2.0 200 OK\r\n{}\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\n\
             To: <sip:bob@127.0.0.1>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n",
            vias.join("\r\n")
        );
        let mut back = Vec::new();
        let from_uas = Inbound {
            data: Bytes::from(reply),
            src: "127.0.0.2:5080".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            proto: Proto::Udp,
            socket: 0,
            conn: None,
        };
        e.on_inbound(from_uas, Instant::now(), &mut back);
        assert_eq!(back.len(), 1, "{:?}", e.stats());
        assert_eq!((back[0].proto, back[0].conn), (Proto::Tcp, Some(conn)));
        assert!(!String::from_utf8_lossy(&back[0].data).contains(";i="));
    }
}
