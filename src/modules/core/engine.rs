//! The per-core message pipeline (DESIGN.md "The path of one message"):
//!
//! ```text
//!  request ─▶ checks ─▶ transaction match ─┬─ retransmission / ACK of our reply: absorbed
//!                                          └─ request_route (t_relay makes the transaction)
//!  reply ───▶ reply_route ─▶ transaction match ─┬─ ours: onreply_route[X] ─▶ tm ─▶ failure_route[X]
//!                                               ├─ another core's: handed to it
//!                                               └─ none: back along the Via path (stateless)
//!  timers ──▶ tm (retransmissions, 408) ─▶ failure_route[X]
//! ```
//!
//! Sans-IO: [`Engine::on_inbound`] and [`Engine::on_timer`] take a packet or
//! `now` and append what to send; the runtime owns sockets and time.

use std::sync::Arc;
use std::time::Instant;

use crate::modules::sl;
use crate::modules::tm::TxData;
use crate::script::ctx::{CoreState, Env, LocalEvent, LocalRoute, MsgCtx};
use crate::script::ir::Program;
use crate::script::registry::RouteType;
use crate::script::vm::{self, Outcome};
use crate::sip::{Inbound, Message, Proto, Transmit};
use crate::tm::{
    ReplyAction, ReplyMatch, RequestMatch, Source, Tid, TmConfig, TmEvent, TransactionTable,
};

use super::forward::{self, Reject};

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
    /// Requests absorbed by their transaction (retransmissions, ACKs of our negative replies).
    pub absorbed_requests: u64,
    /// Replies for a transaction of another core, handed to it.
    pub handoffs: u64,
}

/// One core's engine: the shared program and settings, and this core's state.
pub struct Engine {
    env: Arc<Env>,
    program: Arc<Program>,
    core: CoreState,
    stats: EngineStats,
    tm_config: TmConfig,
    core_index: u16,
    /// Whether the configuration loads tm (a stateless one never pays for it).
    stateful: bool,
    /// Whether it loads dialog (which follows the answers to INVITEs).
    dialog: bool,
    /// Whether it loads uac (whose own requests report their final answer).
    uac: bool,
    /// The transaction table's next deadline, as of the end of the last
    /// input (the table keeps it: asking is cheap).
    deadline: Option<Instant>,
    events: Vec<TmEvent>,
    /// Replies that belong to another core's transactions: (core, packet).
    handoffs: Vec<(u16, Inbound)>,
    /// Where `msg_apply_changes()` puts re-parsed messages; emptied after each message.
    rebase: [std::cell::OnceCell<Message>; REBASE_SLOTS],
    /// When each of `env.services.timers()` is due next (none without a clock anchor).
    deadlines: Vec<Instant>,
    /// The earliest of `deadlines`, kept as they change (only in `on_timer`).
    shared_deadline: Option<Instant>,
    /// `event_route[network:msg]` (corex `nio_intercept`); `None` when off.
    intercept: Option<Box<crate::intercept::Stage>>,
    /// topoh's masking or topos's stripping; `None` when neither is loaded.
    topology: Option<Box<crate::modules::topos::Topology>>,
    route_timer: Option<RouteTimer>,
    /// Top-level route runs so far (the sampling counter of `route_timer`).
    route_runs: u64,
}

/// Script execution time per route, for the control socket: the clock is
/// handed in (this layer reads none itself), and only one message in
/// `Metrics::script_sample` pays for the two readings.
pub struct RouteTimer {
    pub metrics: Arc<crate::ctl::metrics::Metrics>,
    pub core: usize,
    pub clock: fn() -> Instant,
}

/// registrar's event for each contact the usrloc timer removes.
const CONTACT_EXPIRED: &str = "usrloc:contact-expired";

/// The request a route runs on when there is none (usrloc's expiry event,
/// rtimer): Kamailio 5.6's faked message, byte for byte (its source is
/// 127.0.0.1:5060, where Kamailio shows 1.0.0.127).
pub const FAKED_REQUEST: &[u8] = b"OPTIONS sip:you@kamailio.org SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1\r\n\
From: <sip:you@kamailio.org>;tag=123\r\n\
To: <sip:you@kamailio.org>\r\n\
Call-ID: 123\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

/// How many times one message may go through `msg_apply_changes()`.
const REBASE_SLOTS: usize = 4;

impl Engine {
    pub fn new(env: Arc<Env>, program: Arc<Program>) -> Engine {
        let core = CoreState::new(&program);
        let stateful = program.loaded_modules.contains(&"tm");
        let dialog = program.loaded_modules.contains(&"dialog");
        let uac = program.loaded_modules.contains(&"uac");
        // Shared timers first, then the modules that send requests of their own.
        let deadlines = match env.epoch.at {
            Some(at) => {
                let s = &env.services;
                let timers = s.timers().iter().map(|t| at + t.interval());
                let requesters = s.requesters().iter().map(|r| at + r.interval());
                timers.chain(requesters).collect()
            }
            None => Vec::new(),
        };
        let intercept = crate::intercept::Stage::for_program(&env, &program).map(Box::new);
        let topology = crate::modules::topos::Topology::for_program(&env, &program).map(Box::new);
        if program.event_routes.contains_key(CONTACT_EXPIRED) {
            if let Some(ul) = env.services.get::<crate::modules::usrloc::Usrloc>() {
                ul.report_expired(true);
            }
        }
        let shared_deadline = deadlines.iter().min().copied();
        Engine {
            env,
            program,
            core,
            stats: EngineStats::default(),
            tm_config: TmConfig::default(),
            core_index: 0,
            stateful,
            dialog,
            uac,
            deadline: None,
            events: Vec::new(),
            handoffs: Vec::new(),
            rebase: Default::default(),
            deadlines,
            shared_deadline,
            intercept,
            topology,
            route_timer: None,
            route_runs: 0,
        }
    }

    /// Times the routes of one message in `Metrics::script_sample`.
    pub fn with_route_timer(mut self, timer: RouteTimer) -> Engine {
        self.route_timer = Some(timer);
        self
    }

    /// The clock reading before a route runs, when this message is sampled.
    fn route_start(&mut self) -> Option<Instant> {
        let t = self.route_timer.as_ref()?;
        let every = t
            .metrics
            .script_sample
            .load(std::sync::atomic::Ordering::Relaxed);
        self.route_runs = self.route_runs.wrapping_add(1);
        (every != 0 && self.route_runs % u64::from(every) == 0).then(|| (t.clock)())
    }

    fn route_end(&self, start: Option<Instant>, route: crate::script::ir::RouteId) {
        if let (Some(start), Some(t)) = (start, self.route_timer.as_ref()) {
            let ns = (t.clock)().saturating_duration_since(start).as_nanos() as u64;
            t.metrics.core(t.core).route_time(route, ns);
        }
    }

    /// The network intercept stage on a message as received, before
    /// [`Engine::on_inbound`]; false: drop it. One branch when the stage is off.
    #[inline]
    pub fn intercept_received(&mut self, pkt: &mut Inbound, now: Instant) -> bool {
        let keep = match &mut self.intercept {
            None => true,
            Some(stage) => stage.incoming(&self.env, &self.program, &mut self.core, pkt, now),
        };
        // topoh / topos work on what the intercept stage gave (a decompressed message).
        if keep {
            if let Some(topology) = &self.topology {
                topology.incoming(&self.env, pkt, now);
            }
        }
        keep
    }

    /// The network intercept stage on a message about to be sent (requests,
    /// replies, retransmissions alike); false: do not send it.
    #[inline]
    pub fn intercept_sending(&mut self, t: &mut Transmit, now: Instant) -> bool {
        if t.data.is_empty() {
            // Only a connection's close (`close_stream`): no message to see.
            return true;
        }
        // topoh / topos first; the intercept stage then sees the message as it leaves.
        if let Some(topology) = &self.topology {
            topology.outgoing(&self.env, &self.program, &mut self.core, t, now);
        }
        match &mut self.intercept {
            None => true,
            Some(stage) => stage.outgoing(&self.env, &self.program, &mut self.core, t, now),
        }
    }

    /// What the intercept stage did on this core (`None`: it is off).
    pub fn intercept_stats(&self) -> Option<crate::intercept::StageStats> {
        self.intercept.as_ref().map(|s| s.stats())
    }

    /// Sets the transaction settings and the index of the core this engine runs on.
    pub fn with_tm(mut self, config: TmConfig, core_index: u16) -> Engine {
        self.tm_config = config;
        self.core_index = core_index;
        self
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Transactions of this core, when the configuration is stateful.
    pub fn transactions(&self) -> Option<&TransactionTable<TxData>> {
        self.core.tm.as_ref()
    }

    /// The earliest timer deadline (both parts are kept up to date as they
    /// change: nothing is scanned here, asked once or twice per round).
    pub fn next_deadline(&self) -> Option<Instant> {
        let first = match (self.deadline, self.shared_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (first, self.core.parked.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Replies received here for another core's transactions, to deliver there.
    pub fn take_handoffs(&mut self, into: &mut Vec<(u16, Inbound)>) {
        into.append(&mut self.handoffs);
    }

    fn ensure_table(&mut self, now: Instant) {
        if self.stateful && self.core.tm.is_none() {
            let mut table = TransactionTable::new(self.tm_config.clone(), self.core_index, now);
            // acc accounts each transaction when its final goes upstream.
            // dialog confirms or fails a dialog on the final of its INVITE.
            // uac: the final answer to a request of its own runs event_route[uac:reply].
            table.report_finals(self.program.acc.enabled || self.dialog || self.uac);
            self.core.tm = Some(table);
        }
    }

    fn refresh_deadline(&mut self) {
        self.deadline = self.core.tm.as_mut().and_then(|t| t.next_deadline());
    }

    /// Handles one received message.
    // Never inlined: `loadtest/compare.sh callgrind` counts the instructions
    // of this call as the "handler" figure (one call per message, no cost).
    #[inline(never)]
    pub fn on_inbound(&mut self, mut pkt: Inbound, now: Instant, out: &mut Vec<Transmit>) {
        self.stats.received += 1;
        for cell in &mut self.rebase {
            cell.take();
        }
        self.core.msg_id = self.core.msg_id.wrapping_add(1);
        // A keep-alive (CRLF only) is not an error worth a log line.
        if pkt.data.iter().all(|b| b.is_ascii_whitespace()) {
            if pkt.data.is_empty() && matches!(pkt.proto, Proto::Ws | Proto::Wss) {
                self.on_websocket_closed(&pkt, now, out);
            }
            return;
        }
        // The message takes the buffer itself: cloning it here would be its
        // first clone, which allocates when it was made from a Vec (`bytes`
        // then moves it to a shared, counted block). A message nothing keeps
        // (an ACK, most replies) is then freed as it was received.
        let data = std::mem::take(&mut pkt.data);
        // Borrowed where it was parsed: a `Message` is large to move.
        let parsed = Message::parse(data);
        let msg = match &parsed {
            Ok(m) => m,
            Err(e) => {
                self.stats.parse_errors += 1;
                log::debug!("dropping unparsable message from {}: {e}", pkt.src);
                close_stream(&pkt, out);
                return;
            }
        };
        if msg.is_http() {
            self.on_http(msg, &pkt, now, out);
            return;
        }
        self.ensure_table(now);
        let first_out = out.len();
        if msg.is_request() {
            if !self.core.siptrace.is_empty() && matches!(msg.method_bytes(), b"CANCEL" | b"ACK") {
                let traced = &mut self.core.siptrace;
                crate::modules::siptrace::trace_received(&self.env, traced, msg, &pkt, now, out);
            }
            self.on_request(msg, &pkt, now, out);
        } else {
            if !self.core.siptrace.is_empty() {
                let traced = &mut self.core.siptrace;
                crate::modules::siptrace::trace_received(&self.env, traced, msg, &pkt, now, out);
            }
            self.on_reply(msg, &pkt, now, out);
        }
        if self.stateful {
            self.account_finals(now, out);
            self.refresh_deadline();
        }
        self.trace_sent(first_out, now, out);
    }

    /// siptrace: copies of what was queued since `first_out` for the
    /// transactions it follows (one branch when nothing is traced).
    #[inline]
    fn trace_sent(&mut self, first_out: usize, now: Instant, out: &mut Vec<Transmit>) {
        if self.core.siptrace.needs_scan() {
            let traced = &mut self.core.siptrace;
            crate::modules::siptrace::trace_sent(&self.env, traced, first_out, now, out);
        }
    }

    /// Hands the finals sent upstream since the last call to acc, each with
    /// its transaction's request and flags.
    fn account_finals(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        let Some(table) = self.core.tm.as_mut() else {
            return;
        };
        let mut done = Vec::new();
        let mut dialog_finals = Vec::new();
        let mut uac_finals = Vec::new();
        let dialog = self.dialog;
        table.take_finals(|fin, mut data| {
            if let Some(req) = data.as_mut().and_then(|d| d.uac_req.take()) {
                uac_finals.push((req, fin.code, fin.response.clone()));
                return;
            }
            if dialog {
                dialog_finals.push(fin.response.clone());
            }
            if let Some(d) = data {
                d.final_reply = Some(fin.response.clone());
                if let (Some(req), Some(src)) = (&d.request, d.source) {
                    done.push((fin.clone(), Message::clone(req), src, d.flags));
                }
            }
        });
        for response in dialog_finals {
            let unix_ms = self.env.epoch.unix_ms(now);
            if let Some((dlg, t)) = crate::modules::dialog::on_final(&self.env, &response, unix_ms)
            {
                self.run_dialog_event(&dlg, t, &response, now, out);
            }
        }
        for (req, code, response) in uac_finals {
            self.run_uac_reply(*req, code, response, now, out);
        }
        for (fin, request, from, flags) in done {
            let mut ctx = self.ctx(&request, &from, now, RouteType::Request, out);
            ctx.flags = flags;
            crate::modules::acc::on_final(&ctx, &fin);
        }
    }

    /// Runs the transaction timers that are due.
    pub fn on_timer(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        let first_out = out.len();
        self.run_timers(now, out);
        self.trace_sent(first_out, now, out);
    }

    fn run_timers(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        if self.shared_deadline.is_some_and(|d| d <= now) {
            self.on_shared_timers(now, out);
            if self.dialog {
                self.run_dialog_timeouts(now, out);
            }
        }
        if self.core.parked.next_due().is_some_and(|d| d <= now) {
            for parked in self.core.parked.take_due(now) {
                self.resume(parked, now, out);
            }
        }
        let Some(table) = self.core.tm.as_mut() else {
            return;
        };
        let mut events = std::mem::take(&mut self.events);
        table.on_timer(now, out, &mut events);
        for event in events.drain(..) {
            if let TmEvent::NeedsFailureRoute { tid, code } = event {
                self.run_failure(tid, code, now, out);
            }
        }
        self.events = events;
        self.account_finals(now, out);
        self.refresh_deadline();
    }

    /// Runs the route of a request the async module parked, on the
    /// transaction's request with the script's changes of the time it was
    /// parked (a transaction gone meanwhile, e.g. cancelled, is skipped).
    fn resume(
        &mut self,
        parked: crate::modules::r#async::Parked,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) {
        let Some(bytes) = self.core.tm.as_ref().and_then(|t| t.request(parked.tid)) else {
            log::debug!("async: the parked transaction is gone");
            return;
        };
        let Ok(msg) = Message::parse(bytes.clone()) else {
            return;
        };
        let saved = *parked.saved;
        let source = saved.source;
        let started = self.route_start();
        let dialog = self.dialog;
        let mut ctx = self.ctx(&msg, &source, now, saved.route_type, out);
        saved.restore(&mut ctx);
        let _ = vm::run_route(&mut ctx, parked.route);
        if dialog {
            crate::modules::dialog::on_request_done(&mut ctx);
        }
        self.route_end(started, parked.route);
    }

    /// Runs the shared module timers and the requesters' timers that are due
    /// at `now`, and sets their next deadlines.
    fn on_shared_timers(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        // Shared module timers (usrloc expiry and write-back…).
        let unix_ms = self.env.epoch.unix_ms(now);
        let n_timers = self.env.services.timers().len();
        for (timer, due) in self.env.services.timers().iter().zip(&mut self.deadlines) {
            if *due <= now {
                timer.on_timer(unix_ms);
                *due = now + timer.interval();
            }
        }
        let env = self.env.clone();
        let mut events = Vec::new();
        let dues = self.deadlines.iter_mut().skip(n_timers);
        for (r, due) in env.services.requesters().iter().zip(dues) {
            if *due <= now {
                r.on_timer(&env, now, out, &mut events);
                *due = now + r.interval();
            }
        }
        self.shared_deadline = self.deadlines.iter().min().copied();
        self.run_local_events(events, now, out);
        self.run_contact_expired(now, out);
        self.run_htable_expired(now, out);
    }

    /// `event_route[htable:expired:NAME]` for each item of table NAME that
    /// expired, with `$shtrecord(key|value)` holding it; Kamailio runs it on
    /// its htable timer (`timer_interval`) on the faked OPTIONS, the item
    /// already gone. Whichever core drains an item runs its route.
    fn run_htable_expired(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        let program = self.program.clone();
        for (name, &route) in &program.event_routes {
            let Some(table) = name.strip_prefix("htable:expired:") else {
                continue;
            };
            let env = self.env.clone();
            let Some(t) = env.shared.htable_named(table) else {
                continue;
            };
            let expired = t.take_expired(now);
            if expired.is_empty() {
                continue;
            }
            let Some(msg) = faked_request() else {
                return;
            };
            for record in expired {
                self.core.sht_record = Some(record);
                let mut ctx = self.ctx(&msg, &faked_source(), now, RouteType::Event, out);
                let _ = vm::run_route(&mut ctx, route);
            }
            self.core.sht_record = None;
        }
    }

    /// `event_route[usrloc:contact-expired]` for each contact the usrloc
    /// timer removed, with `$ulc(exp=>…)` holding it (as registrar does).
    fn run_contact_expired(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        let Some(&route) = self.program.event_routes.get(CONTACT_EXPIRED) else {
            return;
        };
        let env = self.env.clone();
        let Some(ul) = env.services.get::<crate::modules::usrloc::Usrloc>() else {
            return;
        };
        let expired = ul.take_expired();
        if expired.is_empty() {
            return;
        }
        let (Some(msg), Some(from)) = (faked_request(), self.local_source()) else {
            return;
        };
        for (domain, aor, contact) in expired {
            let fetched = crate::modules::registrar::fetch::Fetched {
                aor,
                domain,
                contacts: vec![contact],
            };
            self.core.ulc.set(b"exp", fetched);
            let mut ctx = self.ctx(&msg, &from, now, RouteType::Event, out);
            let _ = vm::run_route(&mut ctx, route);
        }
    }

    /// `event_route[websocket:closed]` once a WebSocket connection's closing
    /// handshake is done: as Kamailio 5.6 runs it (live), on the faked
    /// request, from the peer's address, `$proto` reading the connection's
    /// own transport (`tcp`/`tls`), `$ws_conid` its id.
    fn on_websocket_closed(&mut self, pkt: &Inbound, now: Instant, out: &mut Vec<Transmit>) {
        let name = crate::modules::websocket::EVENT_CLOSED;
        let Some(&route) = self.program.event_routes.get(name) else {
            return;
        };
        let Some(msg) = faked_request() else {
            return;
        };
        let from = Source {
            src: pkt.src,
            local: pkt.local,
            proto: pkt.proto.carrier(),
            socket: pkt.socket,
            conn: pkt.conn,
        };
        let mut ctx = self.ctx(&msg, &from, now, RouteType::Event, out);
        let _ = vm::run_route(&mut ctx, route);
    }

    /// The context for running a route on `msg` (borrows this core's state).
    fn ctx<'a>(
        &'a mut self,
        msg: &'a Message,
        from: &Source,
        now: Instant,
        route_type: RouteType,
        out: &'a mut Vec<Transmit>,
    ) -> MsgCtx<'a> {
        let mut ctx = MsgCtx::new(
            &self.env,
            &self.program,
            &mut self.core,
            msg,
            from,
            now,
            route_type,
            out,
        );
        ctx.rebase = &self.rebase;
        ctx
    }

    /// An HTTP request on a stream listener runs xhttp's event route when
    /// xhttp is loaded and serves its URL. Otherwise it is dropped, as
    /// Kamailio drops a request that is not SIP and that no module takes
    /// (over UDP too: Kamailio's xhttp answers on streams only).
    fn on_http(&mut self, msg: &Message, pkt: &Inbound, now: Instant, out: &mut Vec<Transmit>) {
        let url = msg.request_uri().unwrap_or_default();
        let route = match &self.program.xhttp {
            Some(x) if pkt.conn.is_some() && x.serves(url) => x.route,
            _ => {
                log::debug!(
                    "dropping HTTP request {} {} from {}",
                    String::from_utf8_lossy(msg.method_bytes()),
                    String::from_utf8_lossy(url),
                    pkt.src
                );
                return;
            }
        };
        let from = Source::from(pkt);
        let mut ctx = self.ctx(msg, &from, now, RouteType::Event, out);
        let _ = vm::run_route(&mut ctx, route);
    }

    fn on_request(&mut self, msg: &Message, pkt: &Inbound, now: Instant, out: &mut Vec<Transmit>) {
        let from = Source::from(pkt);
        // A request without a readable top Via or one of the headers Kamailio
        // requires is dropped unanswered, as Kamailio does.
        if let Err(Reject::Drop(e)) = forward::check_request(msg) {
            self.stats.bad_requests += 1;
            log::debug!(
                "dropping request from {}: required headers not found: {e}",
                pkt.src
            );
            close_stream(pkt, out);
            return;
        }
        if msg.method_bytes() == b"ACK" && sl::is_ack_to_own_reply(&self.env, msg) {
            self.stats.absorbed_acks += 1;
            // siptrace's trace_sl_acks: traced whatever the script did.
            let traced = &mut self.core.siptrace;
            crate::modules::siptrace::trace_sl_ack(&self.env, traced, msg, pkt, now, out);
            return;
        }
        let matched = match self.core.tm.as_mut() {
            Some(table) => {
                let m = table.on_request(msg, now, out);
                if matches!(
                    m,
                    RequestMatch::Retransmission { .. } | RequestMatch::AckAbsorbed { .. }
                ) {
                    self.stats.absorbed_requests += 1;
                    return;
                }
                Some(m)
            }
            None => None,
        };
        // acc report_ack: the end-to-end ACK of an accounted INVITE (its flags, its status).
        let acked = match matched {
            Some(RequestMatch::AckPassOn { tid: Some(tid) }) if self.program.acc.report_ack => {
                self.core.tm.as_ref().and_then(|t| {
                    let data = t.user(tid)?;
                    Some((data.flags, t.status(tid)?, data.final_reply.clone()))
                })
            }
            _ => None,
        };
        if let Some((flags, status, reply)) = acked {
            let ctx = self.ctx(msg, &from, now, RouteType::Request, out);
            crate::modules::acc::on_ack(&ctx, flags, status, reply);
        }
        let Some(route) = self.program.request_route else {
            return;
        };
        let started = self.route_start();
        let dialog = self.dialog;
        let mut ctx = self.ctx(msg, &from, now, RouteType::Request, out);
        ctx.t.matched = matched;
        // request_route has no implicit action at its end (Kamailio semantics).
        let _ = vm::run_route(&mut ctx, route);
        crate::modules::tm::end_of_request(&mut ctx);
        if dialog {
            crate::modules::dialog::on_request_done(&mut ctx);
        }
        self.route_end(started, route);
    }

    fn on_reply(&mut self, msg: &Message, pkt: &Inbound, now: Instant, out: &mut Vec<Transmit>) {
        let from = Source::from(pkt);
        // Replies to a module's own requests (dispatcher keep-alives) stop here.
        if !self.env.services.requesters().is_empty() {
            let env = self.env.clone();
            let mut events = Vec::new();
            if env
                .services
                .requesters()
                .iter()
                .any(|r| r.on_reply_sending(&env, msg, now, out, &mut events))
            {
                self.run_local_events(events, now, out);
                return;
            }
        }
        let matched = self
            .core
            .tm
            .as_ref()
            .map_or(ReplyMatch::NoMatch, |t| t.match_reply(msg));
        if let ReplyMatch::OtherCore(core) = matched {
            // The core owning its transaction runs everything, the core
            // reply route included: run here too, it would run twice.
            self.stats.handoffs += 1;
            // `pkt` lent its buffer to `msg` (see `on_inbound`).
            let data = msg.buf().clone();
            self.handoffs.push((
                core,
                Inbound {
                    data,
                    ..pkt.clone()
                },
            ));
            return;
        }
        // What the core reply route changed goes out with the reply, as
        // Kamailio applies its lumps (add_contact_alias() on a WebSocket
        // client's reply, say).
        let mut core_edits = None;
        if let Some(route) = self.program.reply_route {
            let started = self.route_start();
            let mut ctx = self.ctx(msg, &from, now, RouteType::Reply, out);
            let outcome = vm::run_route(&mut ctx, route);
            core_edits = Some(std::mem::take(&mut ctx.edits)).filter(|e| !e.is_empty());
            self.route_end(started, route);
            // drop, 0 or a negative final value discard the reply (KAMAILIO-REFERENCE §0).
            match outcome {
                Outcome::Done(code) | Outcome::Exit(code) if code <= 0 => return,
                Outcome::Drop => return,
                Outcome::Exit(_) | Outcome::Done(_) => {}
            }
        }
        match matched {
            ReplyMatch::Branch { tid, branch, .. } => {
                self.on_branch_reply(msg, &from, matched, tid, branch, core_edits, now, out)
            }
            // Handed off above.
            ReplyMatch::OtherCore(_) => {}
            ReplyMatch::NoMatch => {
                let mut ctx = self.ctx(msg, &from, now, RouteType::Reply, out);
                if let Some(e) = core_edits {
                    ctx.edits = e;
                }
                if forward::reply(&mut ctx) < 0 {
                    self.stats.unroutable_replies += 1;
                }
            }
        }
    }

    /// Where a message the proxy made itself comes from, for an event route:
    /// its first socket.
    fn local_source(&self) -> Option<Source> {
        let info = self.env.sockets.first()?;
        Some(Source {
            src: info.addr,
            local: info.addr,
            proto: info.proto,
            socket: 0,
            conn: None,
        })
    }

    /// Event routes Kamailio runs once at start-up, before any message, on its
    /// faked OPTIONS request: `event_route[htable:mod-init]` (htable's module
    /// init; the hash tables it fills are shared by every core). Whatever the
    /// route would send is left in `out`; the caller drops it, as Kamailio
    /// has no listener open yet.
    pub fn run_startup_routes(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        for name in STARTUP_EVENT_ROUTES {
            let Some(&route) = self.program.event_routes.get(*name) else {
                continue;
            };
            let Some(msg) = faked_request() else {
                continue;
            };
            let mut ctx = self.ctx(&msg, &faked_source(), now, RouteType::Event, out);
            let _ = vm::run_route(&mut ctx, route);
        }
    }

    /// Runs the route of each module event: an `event_route` the script
    /// defines, or a `route[NAME]` (rtimer).
    fn run_local_events(&mut self, events: Vec<LocalEvent>, now: Instant, out: &mut Vec<Transmit>) {
        for ev in events {
            let (route, route_type, from) = match &ev.route {
                LocalRoute::Event(name) => {
                    let Some(&route) = self.program.event_routes.get(*name) else {
                        continue;
                    };
                    let Some(from) = self.local_source() else {
                        continue;
                    };
                    (route, RouteType::Event, from)
                }
                LocalRoute::Request(name) => {
                    let Some(route) = self.program.route_named(name.as_bytes()) else {
                        log::warn!("no route[{name}] to run");
                        continue;
                    };
                    (route, RouteType::Request, faked_source())
                }
            };
            let mut ctx = self.ctx(&ev.msg, &from, now, route_type, out);
            ctx.dst_uri = ev.dst_uri;
            let _ = vm::run_route(&mut ctx, route);
        }
    }

    /// `event_route[dialog:end|failed]` for the dialogs the dialog timer
    /// ended (whichever core drains them first runs them).
    fn run_dialog_timeouts(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        let env = self.env.clone();
        let Some(d) = crate::modules::dialog::dialogs(&env) else {
            return;
        };
        for (dlg, t) in d.take_timed_out() {
            let request = crate::modules::dialog::timeout_request(&dlg);
            // `$dlg_ctx(timeout_route)` first, then the state's event route.
            let named = dlg
                .timeout_route
                .as_deref()
                .and_then(|n| self.program.route_named(n));
            if let Some(route) = named.filter(|_| t == crate::modules::dialog::Transition::Ended) {
                self.run_dialog_route(&dlg, route, &request, now, out);
            }
            self.run_dialog_event(&dlg, t, &request, now, out);
        }
    }

    /// `event_route[dialog:start|failed]` on the final answer that moved a
    /// dialog, when the script has it.
    fn run_dialog_event(
        &mut self,
        dlg: &crate::modules::dialog::Dialog,
        t: crate::modules::dialog::Transition,
        response: &bytes::Bytes,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) {
        if let Some(&route) = self.program.event_routes.get(t.route()) {
            self.run_dialog_route(dlg, route, response, now, out);
        }
    }

    /// Runs `route` for `dlg` on the message `bytes` (an event of the dialog).
    fn run_dialog_route(
        &mut self,
        dlg: &crate::modules::dialog::Dialog,
        route: crate::script::ir::RouteId,
        bytes: &bytes::Bytes,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) {
        let (Ok(msg), Some(from)) = (Message::parse(bytes.clone()), self.local_source()) else {
            return;
        };
        let mut ctx = self.ctx(&msg, &from, now, RouteType::Event, out);
        crate::modules::dialog::enter(&mut ctx, dlg.id);
        let _ = vm::run_route(&mut ctx, route);
    }

    /// A reply to one of our branches (`matched`): its onreply_route, then the transaction.
    // The match and its parts: destructured once by the caller.
    #[allow(clippy::too_many_arguments)]
    fn on_branch_reply(
        &mut self,
        msg: &Message,
        from: &Source,
        matched: ReplyMatch,
        tid: Tid,
        branch: u8,
        core_edits: Option<crate::sip::Edits>,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) {
        let (on_reply, tx_flags, iflags) = self
            .core
            .tm
            .as_ref()
            .and_then(|t| t.user(tid))
            .map_or((None, 0, 0), |d| (d.on_reply, d.flags, d.iflags));
        // As in Kamailio, onreply_route reads and writes the transaction's
        // AVPs and XAVPs (checked live: what it sets, the next reply's
        // onreply_route and the failure_route read).
        // So are the flags of the reply's branch (`$bf`, `isbflagset`).
        // Taken, not copied: the route's end puts them back.
        let state = on_reply
            .and_then(|_| self.core.tm.as_mut()?.user_mut(tid))
            .map(|d| (std::mem::take(&mut d.attrs), d.bflags(usize::from(branch))));
        // uac: the caller sees its own From/To again (before onreply_route,
        // as Kamailio's TMCB_RESPONSE_IN callback).
        let mut edits = match iflags & crate::modules::uac::RESTORE_REPLIES != 0 {
            true => self.uac_reply_edits(tid, msg, iflags, core_edits),
            false => core_edits,
        };
        if let Some(route) = on_reply {
            let started = self.route_start();
            let mut ctx = self.ctx(msg, from, now, RouteType::OnReply, out);
            if let Some(e) = edits.take() {
                ctx.edits = e;
            }
            // As in Kamailio, onreply_route sees the transaction's message
            // flags (the stock config's FLT_NATS decides NATMANAGE there).
            ctx.flags = tx_flags;
            ctx.t.tid = Some(tid);
            ctx.t.reply_code = msg.status().unwrap_or(0);
            ctx.t.branch_idx = u32::from(branch);
            if let Some((attrs, bflags)) = state {
                ctx.attrs = attrs;
                ctx.state.bflags = bflags;
            }
            let _ = vm::run_route(&mut ctx, route);
            edits = Some(std::mem::take(&mut ctx.edits));
            // Its flags stay with the transaction too (Kamailio, checked
            // live: a flag set here is seen by the later reply and failure
            // routes).
            let (attrs, flags, bflags) =
                (std::mem::take(&mut ctx.attrs), ctx.flags, ctx.state.bflags);
            if let Some(d) = self.core.tm.as_mut().and_then(|t| t.user_mut(tid)) {
                d.attrs = attrs;
                d.flags = flags;
                d.set_bflags(usize::from(branch), bflags);
            }
            self.route_end(started, route);
        }
        let Some(table) = self.core.tm.as_mut() else {
            return;
        };
        let action = table.on_matched_reply(matched, msg, edits.as_ref(), now, out);
        if self.dialog {
            crate::modules::dialog::on_provisional(&self.env, msg);
        }
        if let ReplyAction::NeedsFailureRoute { tid, code } = action {
            self.run_failure(tid, code, now, out);
        }
    }

    /// `event_route[uac:reply]` for the final answer to a `uac_req_send()`
    /// request: `$uac_req` as it was sent, with `evcode` the status and
    /// `evtype` 1 for a received reply, 2 for one tm made (the timeout;
    /// such a reply still carries our Via, a received one lost it).
    fn run_uac_reply(
        &mut self,
        mut req: crate::modules::uac::send::UacReq,
        code: u16,
        response: bytes::Bytes,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) {
        let Some(&route) = self.program.event_routes.get("uac:reply") else {
            return;
        };
        let (Ok(msg), Some(from)) = (Message::parse(response), self.local_source()) else {
            return;
        };
        req.evcode = i64::from(code);
        req.evtype = if msg.header(crate::sip::HeaderName::Via).is_some() {
            2
        } else {
            1
        };
        self.core.uac_req = req;
        let mut ctx = self.ctx(&msg, &from, now, RouteType::Event, out);
        let _ = vm::run_route(&mut ctx, route);
    }

    /// The edits that restore From/To in a reply to a transaction whose
    /// request uac changed, from the request as received.
    /// `start`: the edits made so far (the core reply route's).
    fn uac_reply_edits(
        &self,
        tid: Tid,
        reply: &Message,
        iflags: u32,
        start: Option<crate::sip::Edits>,
    ) -> Option<crate::sip::Edits> {
        let request = self.core.tm.as_ref()?.request(tid)?;
        let request = Message::parse(request.clone()).ok()?;
        let mut edits = start.unwrap_or_default();
        crate::modules::uac::replace::reply_edits(&request, reply, iflags, &mut edits);
        Some(edits)
    }

    /// Every branch failed: run the armed failure_route on the request as it
    /// was relayed; it may add branches or reply. Then the best reply goes up
    /// unless it did either.
    fn run_failure(&mut self, tid: Tid, code: u16, now: Instant, out: &mut Vec<Transmit>) {
        let Some(table) = self.core.tm.as_mut() else {
            return;
        };
        let Some(data) = table.user_mut(tid) else {
            return;
        };
        let route = data.on_failure.take();
        // Branches added in failure_route keep the transaction's
        // onreply_route unless it arms another (Kamailio, checked live).
        let on_reply = data.on_reply;
        let picked = table.winning(tid).map_or(0, |(b, _)| usize::from(b));
        let Some(data) = table.user_mut(tid) else {
            return;
        };
        // `$bf` is the flags of the branch whose reply failed the call.
        let bflags = data.bflags(picked);
        let kept = data.request.as_deref().cloned();
        let from = data.source;
        let (ruri, du, flags) = (data.ruri.clone(), data.dst_uri.clone(), data.flags);
        let attrs = data.attrs.clone();
        let relayed = data.relayed.clone();
        table.set_failure_hook(tid, false);
        let request = match (route, kept) {
            (None, _) => None,
            (Some(_), Some(kept)) => Some(kept),
            // The request as received: the transaction's stored copy.
            (Some(_), None) => table
                .request(tid)
                .and_then(|b| Message::parse(b.clone()).ok()),
        };
        if let (Some(route), Some(request), Some(from)) = (route, request, from) {
            let started = self.route_start();
            let mut ctx = self.ctx(&request, &from, now, RouteType::Failure, out);
            ctx.t.tid = Some(tid);
            ctx.t.reply_code = code;
            ctx.t.on_reply = on_reply;
            ctx.new_uri = ruri;
            ctx.dst_uri = du;
            ctx.flags = flags;
            ctx.attrs = attrs;
            if let Some(relayed) = relayed {
                relayed.restore(&mut ctx);
            }
            ctx.state.bflags = bflags;
            let _ = vm::run_route(&mut ctx, route);
            // Flags set in failure_route stay with the transaction (acc reads
            // them), and so do its AVPs and XAVPs (as in Kamailio).
            let flags = ctx.flags;
            let attrs = std::mem::take(&mut ctx.attrs);
            // t_on_failure() called again without a new branch stays armed for the next failure.
            let rearmed = ctx.t.on_failure;
            if let Some(d) = self.core.tm.as_mut().and_then(|t| t.user_mut(tid)) {
                d.flags = flags;
                d.attrs = attrs;
            }
            self.route_end(started, route);
            if let (Some(f), Some(table)) = (rearmed, self.core.tm.as_mut()) {
                if let Some(d) = table.user_mut(tid) {
                    d.on_failure = Some(f);
                }
                table.set_failure_hook(tid, true);
            }
        }
        if let Some(table) = self.core.tm.as_mut() {
            table.failure_done(tid, now, out);
        }
    }
}

/// The event routes of [`Engine::run_startup_routes`], in Kamailio's order.
const STARTUP_EVENT_ROUTES: &[&str] = &["htable:mod-init"];

/// Kamailio's faked request ([`FAKED_REQUEST`]), parsed: what the event
/// routes that no message started run on.
fn faked_request() -> Option<Message> {
    Message::parse(bytes::Bytes::from_static(FAKED_REQUEST)).ok()
}

/// Where rtimer's made-up request comes from: as Kamailio's faked message,
/// 127.0.0.1:5060 to 127.0.0.1:5060 over UDP.
fn faked_source() -> Source {
    let lo = std::net::SocketAddr::from(([127, 0, 0, 1], 5060));
    Source {
        src: lo,
        local: lo,
        proto: crate::sip::Proto::Udp,
        socket: 0,
        conn: None,
    }
}

/// Kamailio closes a TCP or TLS connection whose message fails its core
/// parsing or lacks a header it requires (checked live: no answer, the
/// connection closed at once); its framing can no longer be trusted. A
/// transmission with no data and `close` asks the stream runtime for just that.
fn close_stream(pkt: &Inbound, out: &mut Vec<Transmit>) {
    let Some(conn) = pkt.conn else {
        return;
    };
    out.push(Transmit {
        data: bytes::Bytes::new(),
        dst: pkt.src,
        proto: pkt.proto,
        socket: Some(pkt.socket),
        local: Some(pkt.local),
        conn: Some(conn),
        flags: crate::sip::packet::SendFlags {
            no_connect: true,
            close: true,
            ..Default::default()
        },
    });
}
