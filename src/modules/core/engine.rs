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
    /// When each of `env.shared.timers()` is due next (none without a clock anchor).
    deadlines: Vec<Instant>,
}

impl Engine {
    pub fn new(env: Arc<Env>, program: Arc<Program>) -> Engine {
        let core = CoreState::new(&program);
        let deadlines = match env.epoch.at {
            Some(at) => env
                .shared
                .timers()
                .iter()
                .map(|t| at + t.interval())
                .collect(),
            None => Vec::new(),
        };
        Engine {
            env,
            program,
            core,
            stats: EngineStats::default(),
            deadlines,
        }
    }

    /// When [`Engine::on_timer`] wants to be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().min().copied()
    }

    /// Runs the shared timers that are due (usrloc expiry and write-back…).
    pub fn on_timer(&mut self, now: Instant, _out: &mut [Transmit]) {
        let unix_ms = self.env.epoch.unix_ms(now);
        for (timer, due) in self.env.shared.timers().iter().zip(&mut self.deadlines) {
            if *due <= now {
                timer.on_timer(unix_ms);
                *due = now + timer.interval();
            }
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
            now,
            route_type,
            edits: Edits::new(),
            new_uri: None,
            dst_uri: None,
            flags: 0,
            retcode: 1,
            out,
            branches: Vec::new(),
            authorized: None,
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
