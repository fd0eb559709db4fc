//! async: park a request's transaction and go on with it later, without
//! holding the core meanwhile (Kamailio's async module, 5.6).
//!
//! - `async_route(route, seconds)` / `async_ms_route(route, ms)`: the
//!   request's transaction is made if there is none (an INVITE's answers
//!   100 Trying), the script stops, and `route` runs on the transaction's
//!   request once the time is up; there `t_relay()` relays it.
//! - `async_sleep(seconds)` / `async_ms_sleep(ms)`: the same, going on with
//!   the statements after the call in its block (the compiler makes them a
//!   route of their own, see [`CONTINUATION_ARG`]); as Kamailio, it fails
//!   when it is the last statement of its block.
//! - `async_task_route(route)`: `route` runs on the next round of the core.
//! - tmx `t_suspend()` / `t_continue(index, label, route)`: the same parking
//!   without a timer; `t_continue` (from any message, with the
//!   `$T(id_index)` / `$T(id_label)` read after `t_suspend`) runs the route
//!   at once, inside the call.
//!
//! ```text
//!  request_route ─ async_route(X, 1) ─▶ t_newtran, 100 Trying, Parked{due, X}
//!        (core serves other messages)        │
//!  Engine::on_timer(now ≥ due) ─▶ resume: the transaction's request, the
//!        script's changes so far (edits, $ru, $du, flags, $avp) ─▶ route[X]
//! ```
//!
//! What the resumed route sees, as in Kamailio: the request as the script
//! left it (header edits, `$ru`, `$du`, flags, `$avp`/`$xavp`, armed
//! `t_on_*` routes) and `$rc` 0. Differences: `$var` values are this core's
//! (Kamailio resumes in another process, whose `$var` differ); the timer is
//! exact to the millisecond (Kamailio's second timer ticks once a second,
//! so `async_route(X, 1)` waits up to one second); suspending in
//! failure_route is refused (-1).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::modules::tm::{RelayedRequest, TmMsg};
use crate::script::attrs::Attrs;
use crate::script::ctx::{Authorized, Branch, MsgCtx};
use crate::script::ir::RouteId;
use crate::script::registry::{
    Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask, RouteType,
};
use crate::tm::{Source, Tid};

/// `async_sleep()`'s argument that the compiler adds: the route holding the
/// statements after the call (`Arg::Int(route id)`).
pub const CONTINUATION_ARG: usize = 2;

/// The functions whose following statements become a continuation route.
pub const SLEEPS: &[&str] = &["async_sleep", "async_ms_sleep"];

/// Kamailio's second timer wheel has 100 slots: 1..=99 seconds.
const MAX_SECONDS: i64 = 99;

/// A request waiting for its route, with what the script had done to it.
#[derive(Debug)]
pub struct Parked {
    pub due: Instant,
    pub tid: Tid,
    pub route: RouteId,
    pub saved: Box<Saved>,
}

/// The script's state at the time of suspension.
#[derive(Debug)]
pub struct Saved {
    pub route_type: RouteType,
    pub source: Source,
    pub new_uri: Option<Bytes>,
    pub dst_uri: Option<Bytes>,
    pub flags: u64,
    pub attrs: Attrs,
    pub branches: Vec<Branch>,
    pub relayed: RelayedRequest,
    pub t: TmMsg,
    pub authorized: Option<Authorized>,
}

impl Saved {
    fn of(ctx: &MsgCtx<'_>) -> Saved {
        Saved {
            route_type: ctx.route_type,
            source: Source {
                src: ctx.src,
                local: ctx.local,
                proto: ctx.proto,
                socket: ctx.socket,
                conn: ctx.conn,
            },
            new_uri: ctx.new_uri.clone(),
            dst_uri: ctx.dst_uri.clone(),
            flags: ctx.flags,
            attrs: ctx.attrs.clone(),
            branches: ctx.branches.clone(),
            relayed: RelayedRequest::of(ctx),
            t: ctx.t,
            authorized: ctx.authorized.clone(),
        }
    }

    /// Puts the state back into the context the route resumes in.
    pub fn restore(self, ctx: &mut MsgCtx<'_>) {
        ctx.new_uri = self.new_uri;
        ctx.dst_uri = self.dst_uri;
        ctx.flags = self.flags;
        ctx.attrs = self.attrs;
        ctx.branches = self.branches;
        self.relayed.restore(ctx);
        ctx.t = self.t;
        ctx.authorized = self.authorized;
        // Kamailio starts the resumed route with $rc 0.
        ctx.retcode = 0;
    }
}

/// The parked requests of one core, earliest first, and those tmx's
/// `t_suspend()` parked until a `t_continue()`.
#[derive(Debug, Default)]
pub struct ParkedList(Vec<Parked>, Vec<Parked>);

impl ParkedList {
    pub fn push(&mut self, p: Parked) {
        // After those due at the same time: first parked, first resumed.
        let at = self.0.partition_point(|x| x.due <= p.due);
        self.0.insert(at, p);
    }

    /// When the first one is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.0.first().map(|p| p.due)
    }

    /// Takes those due at `now`, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<Parked> {
        let n = self.0.partition_point(|p| p.due <= now);
        self.0.drain(..n).collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps `p` until [`ParkedList::take_suspended`] asks for its transaction.
    pub fn suspend(&mut self, p: Parked) {
        self.1.retain(|x| x.tid != p.tid);
        self.1.push(p);
    }

    pub fn take_suspended(&mut self, tid: Tid) -> Option<Parked> {
        let i = self.1.iter().position(|p| p.tid == tid)?;
        Some(self.1.swap_remove(i))
    }
}

/// tm's `t_suspend()` sends an INVITE that has no answer yet its 100
/// Trying (when `auto_inv_100` is on), for the wait may be long.
fn trying(ctx: &mut MsgCtx<'_>, tid: Tid) {
    if ctx.msg.method_bytes() != b"INVITE" {
        return;
    }
    let (now, out) = (ctx.now, &mut *ctx.out);
    let Some(table) = ctx.core.tm.as_mut() else {
        return;
    };
    if table.status(tid) != Some(0) || !table.config().auto_inv_100 {
        return;
    }
    let spec = crate::tm::LocalReply {
        code: 100,
        reason: table.config().trying_reason,
        ..Default::default()
    };
    let _ = table.reply(tid, &spec, now, out);
}

/// tmx `t_suspend()`: the transaction of the request waits for a
/// `t_continue()` with its `$T(id_index)` and `$T(id_label)`; the script
/// goes on (1), or -1 without a transaction.
pub fn t_suspend(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(tid) = ctx.t.tid else {
        log::error!("t_suspend: no transaction for this request - use t_newtran()");
        return -1;
    };
    if ctx.route_type != RouteType::Request {
        log::error!("t_suspend: ringsip suspends requests in request_route only");
        return -1;
    }
    trying(ctx, tid);
    let saved = Box::new(Saved::of(ctx));
    ctx.core.parked.suspend(Parked {
        due: ctx.now,
        tid,
        route: 0,
        saved,
    });
    1
}

/// tmx `t_continue(index, label, route)`: runs `route` on the request of
/// the transaction a `t_suspend()` parked (the request as it was then), now,
/// from the message being handled; 1, or -1 when no such transaction waits.
pub fn t_continue(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (Some(index), Some(label)) = (args.int(ctx, 0), args.int(ctx, 1)) else {
        log::error!("t_continue: index and label must be numbers");
        return -1;
    };
    let name = args.str(ctx, 2).into_owned();
    let Some(&route) = ctx.program.route_names.get(&name[..]) else {
        log::error!(
            "t_continue: route block not found: {}",
            String::from_utf8_lossy(&name)
        );
        return -1;
    };
    let (Ok(slot), Ok(gen)) = (u32::try_from(index), u32::try_from(label)) else {
        return -1;
    };
    let tid = Tid { slot, gen };
    let Some(parked) = ctx.core.parked.take_suspended(tid) else {
        log::error!("t_continue: no suspended transaction {index}:{label}");
        return -1;
    };
    let request = ctx.core.tm.as_ref().and_then(|t| t.request(tid)).cloned();
    let Some(msg) = request.and_then(|b| crate::sip::Message::parse(b).ok()) else {
        return -1;
    };
    let saved = *parked.saved;
    let (source, route_type) = (saved.source, saved.route_type);
    let mut resumed = MsgCtx::new(
        ctx.env,
        ctx.program,
        &mut *ctx.core,
        &msg,
        source,
        ctx.now,
        route_type,
        &mut *ctx.out,
    );
    saved.restore(&mut resumed);
    let _ = crate::script::vm::run_route(&mut resumed, route);
    1
}

/// Parks the request of `ctx` until `delay` has passed, then `route` runs.
/// 0 (the script stops) or -1.
fn park(ctx: &mut MsgCtx<'_>, route: RouteId, delay: Duration, func: &str) -> i32 {
    if ctx.route_type != RouteType::Request {
        log::error!("{func}: ringsip suspends requests in request_route only");
        return -1;
    }
    if matches!(ctx.msg.method_bytes(), b"ACK" | b"CANCEL") {
        log::error!("{func}: an ACK or a CANCEL has no transaction to suspend");
        return -1;
    }
    let tid = match crate::modules::tm::ensure_transaction(ctx, true) {
        Ok(tid) => tid,
        Err(e) => {
            log::error!("{func}: cannot create the transaction: {e:?}");
            return -1;
        }
    };
    // One made by t_newtran() before has not answered yet.
    trying(ctx, tid);
    let saved = Box::new(Saved::of(ctx));
    ctx.core.parked.push(Parked {
        due: ctx.now + delay,
        tid,
        route,
        saved,
    });
    0
}

/// The route named by argument 0, looked up by name when it is computed.
fn route_named(ctx: &MsgCtx<'_>, args: &Args, func: &str) -> Option<RouteId> {
    let name = args.str(ctx, 0);
    let id = ctx.program.route_names.get(&name[..]).copied();
    if id.is_none() {
        log::error!(
            "{func}: route block not found: {}",
            String::from_utf8_lossy(&name)
        );
    }
    id
}

fn seconds(ctx: &MsgCtx<'_>, args: &Args, i: usize, func: &str) -> Option<Duration> {
    match args.int(ctx, i) {
        Some(s) if (1..=MAX_SECONDS).contains(&s) => Some(Duration::from_secs(s as u64)),
        other => {
            log::error!("{func}: the time must be 1 to {MAX_SECONDS} seconds ({other:?})");
            None
        }
    }
}

fn millis(ctx: &MsgCtx<'_>, args: &Args, i: usize, func: &str) -> Option<Duration> {
    // The fixup put the ms_timer parameter after the time: 0 disables.
    if !matches!(args.get(i + 1), Some(Arg::Int(t)) if *t > 0) {
        log::error!("{func}: disabled (the async module's ms_timer parameter is 0)");
        return None;
    }
    match args.int(ctx, i) {
        Some(ms) if ms > 0 => Some(Duration::from_millis(ms as u64)),
        other => {
            log::error!("{func}: the time must be positive milliseconds ({other:?})");
            None
        }
    }
}

fn async_route(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let f = "async_route";
    match (route_named(ctx, args, f), seconds(ctx, args, 1, f)) {
        (Some(r), Some(d)) => park(ctx, r, d, f),
        _ => -1,
    }
}

fn async_ms_route(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let f = "async_ms_route";
    match (route_named(ctx, args, f), millis(ctx, args, 1, f)) {
        (Some(r), Some(d)) => park(ctx, r, d, f),
        _ => -1,
    }
}

fn async_task_route(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let f = "async_task_route";
    match route_named(ctx, args, f) {
        Some(r) => park(ctx, r, Duration::ZERO, f),
        None => -1,
    }
}

fn continuation(args: &Args, func: &str) -> Option<RouteId> {
    match args.get(CONTINUATION_ARG) {
        Some(Arg::Int(id)) => RouteId::try_from(*id).ok(),
        _ => {
            log::error!("{func}: cannot be executed as last action in a route block");
            None
        }
    }
}

fn async_sleep(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let f = "async_sleep";
    match (continuation(args, f), seconds(ctx, args, 0, f)) {
        (Some(r), Some(d)) => park(ctx, r, d, f),
        _ => -1,
    }
}

fn async_ms_sleep(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let f = "async_ms_sleep";
    match (continuation(args, f), millis(ctx, args, 0, f)) {
        (Some(r), Some(d)) => park(ctx, r, d, f),
        _ => -1,
    }
}

/// The ms functions carry the module's `ms_timer` after their time.
fn fixup_ms(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    args.0
        .push(Arg::Int(mp.int("async", "ms_timer").unwrap_or(0).max(0)));
    Ok(())
}

/// `async_sleep(s)` keeps its arguments where `async_ms_sleep` has them.
fn fixup_sleep(args: &mut Args, _: &ModParams) -> Result<(), String> {
    args.0.push(Arg::Int(0));
    Ok(())
}

const REQ_FAIL: RouteMask = RouteMask::REQUEST.or(RouteMask::FAILURE);

const fn func(
    name: &'static str,
    min_args: u8,
    max_args: u8,
    fixup: Option<crate::script::registry::Fixup>,
    call: crate::script::registry::Handler,
) -> FunctionDef {
    FunctionDef {
        name,
        min_args,
        max_args,
        routes: REQ_FAIL,
        fixup,
        call,
    }
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "async",
    aliases: &[],
    functions: &[
        func("async_route", 2, 2, None, async_route),
        func("async_ms_route", 2, 2, Some(fixup_ms), async_ms_route),
        func("async_task_route", 1, 1, None, async_task_route),
        func("async_sleep", 1, 1, Some(fixup_sleep), async_sleep),
        func("async_ms_sleep", 1, 1, Some(fixup_ms), async_ms_sleep),
    ],
    params: &[
        ParamDef {
            name: "workers",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "ms_timer",
            kind: ParamKind::Int,
        },
    ],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn parked(base: Instant, ms: u64, route: RouteId) -> Parked {
        let ctx_source = Source {
            src: "127.0.0.1:5060".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            proto: crate::sip::Proto::Udp,
            socket: 0,
            conn: None,
        };
        Parked {
            due: base + Duration::from_millis(ms),
            tid: Tid { slot: 0, gen: 0 },
            route,
            saved: Box::new(Saved {
                route_type: RouteType::Request,
                source: ctx_source,
                new_uri: None,
                dst_uri: None,
                flags: 0,
                attrs: Attrs::default(),
                branches: Vec::new(),
                relayed: RelayedRequest::default(),
                t: TmMsg::default(),
                authorized: None,
            }),
        }
    }

    #[test]
    fn parked_requests_come_due_in_order() {
        let base = crate::modules::testutil::some_instant();
        let mut list = ParkedList::default();
        assert_eq!(list.next_due(), None);
        list.push(parked(base, 300, 1));
        list.push(parked(base, 100, 2));
        list.push(parked(base, 300, 3));
        list.push(parked(base, 0, 4));
        assert_eq!(list.next_due(), Some(base));
        let due: Vec<RouteId> = list
            .take_due(base + Duration::from_millis(100))
            .iter()
            .map(|p| p.route)
            .collect();
        assert_eq!(due, [4, 2]);
        assert_eq!(list.len(), 2);
        assert!(list.take_due(base + Duration::from_millis(299)).is_empty());
        // Equal deadlines: first parked, first resumed.
        let due: Vec<RouteId> = list
            .take_due(base + Duration::from_secs(1))
            .iter()
            .map(|p| p.route)
            .collect();
        assert_eq!(due, [1, 3]);
        assert!(list.is_empty());
    }

    mod engine {
        use std::sync::Arc;
        use std::time::Duration;

        use bytes::Bytes;

        use crate::modules::core::Engine;
        use crate::modules::testutil::{env, some_instant, INVITE, LOCAL, SOURCE};
        use crate::script::compile::compile;
        use crate::script::{parse_str, MemoryFiles, Options};
        use crate::sip::{Inbound, Proto, Transmit};

        const OPTIONS: &str = "OPTIONS sip:proxy@192.0.2.10 SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bKopt1
Max-Forwards: 70
To: <sip:proxy@192.0.2.10>
From: <sip:alice@example.org>;tag=9
Call-ID: opt-1
CSeq: 1 OPTIONS
Content-Length: 0

";

        fn engine(routes: &str) -> Engine {
            let text = format!(
                "loadmodule \"sl.so\"\nloadmodule \"tm.so\"\nloadmodule \"textops.so\"\n\
                 loadmodule \"async.so\"\nmodparam(\"async\", \"ms_timer\", 10)\n{routes}"
            );
            let files = MemoryFiles::new();
            let cfg = parse_str("t.cfg", &text, &Options::with_files(&files))
                .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
            let compiled = compile(&cfg).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
            Engine::new(Arc::new(env()), Arc::new(compiled.program))
        }

        fn receive(e: &mut Engine, text: &str, at: Duration) -> Vec<String> {
            let pkt = Inbound {
                data: Bytes::from(text.replace('\n', "\r\n")),
                src: SOURCE.parse().expect("address"),
                local: LOCAL.parse().expect("address"),
                proto: Proto::Udp,
                socket: 0,
                conn: None,
                arrived: None,
            };
            let mut out: Vec<Transmit> = Vec::new();
            e.on_inbound(pkt, some_instant() + at, &mut out);
            texts(&out)
        }

        fn timer(e: &mut Engine, at: Duration) -> Vec<String> {
            let mut out = Vec::new();
            e.on_timer(some_instant() + at, &mut out);
            texts(&out)
        }

        fn texts(out: &[Transmit]) -> Vec<String> {
            out.iter()
                .map(|t| String::from_utf8_lossy(&t.data).replace("\r\n", "\n"))
                .collect()
        }

        fn ms(n: u64) -> Duration {
            Duration::from_millis(n)
        }

        #[test]
        fn async_route_parks_the_invite_and_the_core_goes_on() {
            let mut e = engine(
                r#"request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "alive"); exit; }
    $avp(a) = "kept";
    append_hf("X-Before: 1\r\n");
    async_route("RELAY", "1");
    sl_send_reply("500", "not parked");
}
route[RELAY] {
    append_hf("X-Async: $avp(a) $rc\r\n");
    t_relay("10.0.0.2", "5080");
}"#,
            );
            let sent = receive(&mut e, INVITE, ms(0));
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert!(sent[0].starts_with("SIP/2.0 100 "), "{}", sent[0]);
            assert_eq!(e.next_deadline(), Some(some_instant() + ms(1000)));
            // Meanwhile another request is answered at once.
            let sent = receive(&mut e, OPTIONS, ms(10));
            assert!(sent[0].starts_with("SIP/2.0 200 alive"), "{sent:?}");
            // The INVITE's retransmission is absorbed (its 100 again).
            let sent = receive(&mut e, INVITE, ms(20));
            assert!(
                sent.iter().all(|m| m.starts_with("SIP/2.0 100 ")),
                "{sent:?}"
            );
            assert!(timer(&mut e, ms(999)).is_empty());
            let sent = timer(&mut e, ms(1000));
            assert_eq!(sent.len(), 1, "{sent:?}");
            let inv = &sent[0];
            assert!(
                inv.starts_with("INVITE sip:bob@example.com SIP/2.0\n"),
                "{inv}"
            );
            assert!(inv.contains("\nX-Before: 1\n"), "{inv}");
            assert!(inv.contains("\nX-Async: kept 0\n"), "{inv}");
            // Nothing parked any more: the next deadline is tm's own.
            assert!(e
                .next_deadline()
                .is_some_and(|d| d > some_instant() + ms(1000)));
        }

        #[test]
        fn async_sleep_goes_on_after_the_call() {
            let mut e = engine(
                r#"request_route {
    if ($rU == "bob") {
        append_hf("X-One: 1\r\n");
        async_ms_sleep("200");
        append_hf("X-Two: $rc\r\n");
        t_relay("10.0.0.2", "5080");
        exit;
    }
    sl_send_reply("404", "no");
}"#,
            );
            let sent = receive(&mut e, INVITE, ms(0));
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert!(timer(&mut e, ms(199)).is_empty());
            let sent = timer(&mut e, ms(200));
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert!(sent[0].contains("\nX-One: 1\nX-Two: 0\n"), "{}", sent[0]);
        }

        #[test]
        fn failures_leave_the_script_running() {
            // Last statement of its block, a time out of range, ms timer
            // disabled, an unknown route: -1, and the script goes on.
            let mut e = engine(
                r#"request_route {
    $var(r) = "";
    if ($rU == "bob") { async_sleep("1"); }
    $var(r) = $var(r) + $rc;
    async_sleep("0");
    $var(r) = $var(r) + $rc;
    async_sleep("100");
    $var(r) = $var(r) + $rc;
    async_route("NOPE", "1");
    $var(r) = $var(r) + $rc;
    async_route("R", "0");
    $var(r) = $var(r) + $rc;
    sl_send_reply("500", "r=$var(r)");
}
route[R] { t_relay(); }"#,
            );
            let sent = receive(&mut e, INVITE, ms(0));
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert!(
                sent[0].starts_with("SIP/2.0 500 r=-1-1-1-1-1\n"),
                "{}",
                sent[0]
            );
            assert_eq!(e.next_deadline(), None);
        }

        #[test]
        fn ms_functions_need_the_ms_timer() {
            let text = "loadmodule \"sl.so\"\nloadmodule \"tm.so\"\nloadmodule \"async.so\"\n\
                 request_route { async_ms_route(\"R\", \"100\"); sl_send_reply(\"500\", \"rc $rc\"); }\n\
                 route[R] { t_relay(); }";
            let files = MemoryFiles::new();
            let cfg = parse_str("t.cfg", text, &Options::with_files(&files)).expect("parses");
            let compiled = compile(&cfg).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
            let mut e = Engine::new(Arc::new(env()), Arc::new(compiled.program));
            let sent = receive(&mut e, INVITE, ms(0));
            assert!(sent[0].starts_with("SIP/2.0 500 rc -1\n"), "{sent:?}");
        }

        #[test]
        fn t_suspend_waits_for_t_continue_from_another_message() {
            let mut e = engine(
                r#"loadmodule "tmx.so"
request_route {
    if (is_method("OPTIONS")) {
        t_continue("$shv(i)", "$shv(l)", "R");
        $var(rc) = $rc;
        t_continue("$shv(i)", "$shv(l)", "R");
        sl_send_reply("200", "continued $var(rc) $rc");
        exit;
    }
    t_newtran();
    append_hf("X-Kept: 1
");
    if (t_suspend()) { $shv(i) = $T(id_index); $shv(l) = $T(id_label); }
    exit;
}
route[R] { t_relay("10.0.0.2", "5080"); }"#,
            );
            let sent = receive(&mut e, INVITE, ms(0));
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert!(sent[0].starts_with("SIP/2.0 100 trying"), "{}", sent[0]);
            let sent = receive(&mut e, OPTIONS, ms(50));
            assert_eq!(sent.len(), 2, "{sent:?}");
            assert!(
                sent[0].starts_with("INVITE sip:bob@example.com SIP/2.0\n"),
                "{}",
                sent[0]
            );
            assert!(sent[0].contains("\nX-Kept: 1\n"), "{}", sent[0]);
            assert!(
                sent[1].starts_with("SIP/2.0 200 continued 1 -1\n"),
                "{}",
                sent[1]
            );
        }

        #[test]
        fn task_route_runs_on_the_next_round() {
            let mut e = engine(
                r#"request_route { async_task_route("R"); }
route[R] { t_reply("486", "Busy From Task"); }"#,
            );
            let sent = receive(&mut e, INVITE, ms(0));
            assert!(sent[0].starts_with("SIP/2.0 100 "), "{sent:?}");
            assert_eq!(e.next_deadline(), Some(some_instant()));
            let sent = timer(&mut e, ms(0));
            assert!(
                sent[0].starts_with("SIP/2.0 486 Busy From Task\n"),
                "{sent:?}"
            );
        }
    }
}
