//! tm: the script side of stateful proxying (KAMAILIO-REFERENCE §3). The
//! transaction layer itself is [`crate::tm`]; this module binds it to the
//! script: `t_relay`, `t_on_failure`/`t_on_reply`/`t_on_branch`,
//! `t_check_trans`, `t_reply`, and the state a transaction keeps for the
//! failure route.

use bytes::Bytes;

use crate::modules::core::forward;
use crate::modules::core::functions::{fixup_port, host_port};
use crate::script::ctx::MsgCtx;
use crate::script::ir::RouteId;
use crate::script::registry::{Arg, Args, FunctionDef, ModParams, ModuleDef, RouteMask, RouteType};
use crate::sip::{Message, Proto};
use crate::tm::{LocalReply, RequestMatch, Source, Tid, TmConfig, TmError, TransactionTable};

mod config;
mod control;
mod fork;
mod query;
mod serial;
mod settings;

pub use fork::UriMark;

pub use config::{config_from, unsupported_params};

/// What a transaction keeps for the script: the routes armed for it, and
/// the request as it was relayed, restored when `failure_route` runs.
#[derive(Debug, Default)]
pub struct TxData {
    pub on_failure: Option<RouteId>,
    pub on_reply: Option<RouteId>,
    pub on_branch: Option<RouteId>,
    /// The request as received, parsed, kept only when acc is loaded (it
    /// accounts every final). The failure route parses the transaction's
    /// stored copy ([`TransactionTable::request`]) when it runs: a parsed
    /// message is some 600 bytes and a copy per transaction, for a route
    /// most transactions never run.
    pub request: Option<Box<Message>>,
    /// The Request-URI and `$du` at relay time (failure_route starts from them).
    pub ruri: Option<Bytes>,
    pub dst_uri: Option<Bytes>,
    /// Message flags at relay time.
    pub flags: u64,
    /// Where the request came from (failure_route runs as if it just arrived).
    pub source: Option<Source>,
    /// `$avp` / `$xavp` at relay time (failure_route sees them, e.g. the
    /// dispatcher's failover list).
    pub attrs: crate::script::attrs::Attrs,
    /// The last final response sent upstream, kept when acc is loaded (its
    /// `report_ack` line reads the reason).
    pub final_reply: Option<Bytes>,
    /// What the script did to the request before relaying it, kept while a
    /// failure_route is armed: the branches that route adds carry it.
    pub relayed: Option<Box<RelayedRequest>>,
    /// The request's internal flags at relay time (corex `msg_iflag`; uac
    /// restores From/To in the replies when they say so).
    pub iflags: u32,
    /// A request uac sent itself (`uac_req_send`) whose final response runs
    /// `event_route[uac:reply]`: what `$uac_req` held when it was sent.
    pub uac_req: Option<Box<crate::modules::uac::send::UacReq>>,
    /// Each branch's flags as it was sent (after branch_route) and as
    /// onreply_route left them, by branch index; empty while they are all
    /// 0 (the usual case: nothing to keep).
    pub branch_flags: Vec<u32>,
}

impl TxData {
    /// The flags of branch `i` (`$bf` in its onreply_route).
    pub fn bflags(&self, i: usize) -> u32 {
        self.branch_flags.get(i).copied().unwrap_or(0)
    }

    /// Keeps `flags` as branch `i`'s.
    pub fn set_bflags(&mut self, i: usize, flags: u32) {
        if self.branch_flags.len() <= i {
            if flags == 0 {
                return;
            }
            self.branch_flags.resize(i + 1, 0);
        }
        self.branch_flags[i] = flags;
    }
}

/// The changes the script made to a request up to `t_relay` (Kamailio keeps
/// them with the transaction's copy of the request): a branch added in
/// failure_route is built from the request with these, so it has the
/// Record-Route, the decremented Max-Forwards and the added headers of the
/// first branches. Edits are offsets into the received buffer, which the
/// transaction stores byte for byte.
#[derive(Debug, Default, Clone)]
pub struct RelayedRequest {
    pub edits: crate::sip::edit::Edits,
    pub rr: crate::modules::rr::RrState,
    pub state: crate::modules::state::MsgState,
    pub path_vec: Option<Bytes>,
    pub force_socket: Option<crate::sip::packet::SocketId>,
}

impl RelayedRequest {
    /// What `ctx` holds now.
    pub fn of(ctx: &MsgCtx<'_>) -> RelayedRequest {
        RelayedRequest {
            edits: ctx.edits.clone(),
            rr: ctx.rr.clone(),
            state: ctx.state.clone(),
            path_vec: ctx.path_vec.clone(),
            force_socket: ctx.force_socket,
        }
    }

    /// Puts it back into the context a failure_route runs in.
    pub fn restore(self, ctx: &mut MsgCtx<'_>) {
        ctx.edits = self.edits;
        ctx.rr = self.rr;
        ctx.state = self.state;
        ctx.path_vec = self.path_vec;
        ctx.force_socket = self.force_socket;
    }
}

/// Per-message tm state in the script context.
#[derive(Debug, Default, Clone, Copy)]
pub struct TmMsg {
    /// The transaction this message belongs to (made by `t_relay`/`t_newtran`,
    /// or the one a failure/reply route runs for).
    pub tid: Option<Tid>,
    /// What the transaction table said about this request when it arrived.
    pub matched: Option<RequestMatch>,
    pub on_failure: Option<RouteId>,
    pub on_reply: Option<RouteId>,
    pub on_branch: Option<RouteId>,
    /// `$T_reply_code`: the reply's code (reply routes), the winning code (failure route).
    pub reply_code: u16,
    /// `$T_branch_idx`.
    pub branch_idx: u32,
    /// The R-URI and `$du` as the last `t_relay` consumed them (see [`fork`]).
    pub consumed: Option<fork::UriMark>,
    /// `t_set_fr()` before the transaction exists: (fr_inv_timer, fr_timer) in
    /// ms, `None` unchanged; applied when the transaction is created.
    pub fr: Option<(Option<u32>, Option<u32>)>,
    /// `t_set_retr()`, `t_set_max_lifetime()`… before the transaction
    /// exists: applied when it is created.
    pub tuning: crate::tm::Tuning,
    /// The error of the last `t_relay` that failed in request_route (its
    /// Kamailio code), cleared by one that works: Kamailio answers it when
    /// the script ends, if the script did not reply (see [`end_of_request`]).
    pub delayed_error: Option<i32>,
    /// A branch could not be sent (a WebSocket client no longer
    /// connected): tm answers 477, the script sees -1 (Kamailio 5.6, live).
    pub send_failed: bool,
    /// `t_set_disable_failover(1)`: no DNS failover for the branches
    /// `t_relay` adds from this message.
    pub no_dns_failover: bool,
}

/// The table of this core, made on first use.
pub fn table<'c>(ctx: &'c mut MsgCtx<'_>) -> &'c mut TransactionTable<TxData> {
    let now = ctx.now;
    ctx.core
        .tm
        .get_or_insert_with(|| TransactionTable::new(TmConfig::default(), 0, now))
}

fn source(ctx: &MsgCtx<'_>) -> Source {
    Source {
        src: ctx.src,
        local: ctx.local,
        proto: ctx.proto,
        socket: ctx.socket,
        conn: ctx.conn,
    }
}

/// The transaction of the request in `ctx`, made now if there is none;
/// `trying`: an INVITE's transaction made here answers 100 Trying
/// (`auto_inv_100`), as only `t_relay()` does in Kamailio.
pub(crate) fn ensure_transaction(ctx: &mut MsgCtx<'_>, trying: bool) -> Result<Tid, TmError> {
    if let Some(tid) = ctx.t.tid {
        return Ok(tid);
    }
    let src = source(ctx);
    let data = TxData {
        request: ctx.program.acc.enabled.then(|| Box::new(ctx.msg.clone())),
        source: Some(src),
        flags: ctx.flags,
        ..TxData::default()
    };
    let now = ctx.now;
    let msg = ctx.msg;
    let table = ctx
        .core
        .tm
        .get_or_insert_with(|| TransactionTable::new(TmConfig::default(), 0, now));
    let opts = crate::tm::NewServer {
        trying,
        force_rport: ctx.state.force_rport,
        tuning: ctx.t.tuning,
    };
    let (tid, created) = match table.create_server_with(msg, &src, data, now, ctx.out, &opts) {
        Ok(tid) => (tid, true),
        Err(TmError::Exists(tid)) => (tid, false),
        Err(e) => return Err(e),
    };
    ctx.t.tid = Some(tid);
    if let Some((fr_inv, fr)) = ctx.t.fr.take() {
        let ms = |v: Option<u32>| v.map(|ms| std::time::Duration::from_millis(u64::from(ms)));
        table.set_fr(tid, ms(fr_inv), ms(fr), now, ctx.out);
    }
    if created {
        // dialog's `dlg_flag`: the dialog is made with the transaction.
        crate::modules::dialog::on_transaction(ctx);
    }
    Ok(tid)
}

/// Kamailio's `t_newtran` parses the whole header section first; a request
/// with a header field its parser refuses ([`crate::sip::Message::broken_header`])
/// gets no transaction: `E_BAD_REQ` (-400), nothing sent.
fn refuse_broken(ctx: &MsgCtx<'_>) -> Option<i32> {
    if ctx.route_type != RouteType::Request || ctx.t.tid.is_some() {
        return None;
    }
    let at = ctx.msg.broken_header()?;
    log::error!("tm: parse_headers failed (header field #{at})");
    Some(-400)
}

/// Records what the script armed and the request state in the transaction.
fn save_state(ctx: &mut MsgCtx<'_>, tid: Tid) {
    let (f, r, b) = (ctx.t.on_failure, ctx.t.on_reply, ctx.t.on_branch);
    let (ruri, du, flags) = (ctx.new_uri.clone(), ctx.dst_uri.clone(), ctx.flags);
    // Usually no AVP on either side: then nothing to copy, nor to drop.
    let attrs = (!ctx.attrs.is_empty()).then(|| ctx.attrs.clone());
    // Only a failure_route reads it: no copy for the transactions without one.
    let relayed = f.map(|_| Box::new(RelayedRequest::of(ctx)));
    let table = table(ctx);
    if let Some(data) = table.user_mut(tid) {
        match attrs {
            Some(attrs) => data.attrs = attrs,
            None if !data.attrs.is_empty() => data.attrs.clear(),
            None => {}
        }
        data.relayed = relayed;
        data.on_failure = f;
        data.on_reply = r;
        data.on_branch = b;
        data.ruri = ruri;
        data.dst_uri = du;
        data.flags = flags;
    }
    table.set_failure_hook(tid, f.is_some());
}

/// Relays the request in `ctx` statefully to `host[:port]` or its next hop.
/// Kamailio's codes: 1 relayed, negative on error (-477 send, -478
/// unresolvable, -479 bad URI, -1 otherwise).
pub fn relay(
    ctx: &mut MsgCtx<'_>,
    host: Option<&[u8]>,
    port: Option<u16>,
    proto: Option<Proto>,
) -> i32 {
    let method = ctx.msg.method_bytes();
    if let Some(rc) = refuse_broken(ctx) {
        return rc;
    }
    if ctx.route_type == RouteType::Request && ctx.t.tid.is_none() {
        match ctx.t.matched {
            // The ACK of a 2xx and a CANCEL that matches nothing are forwarded statelessly (§16.10, §17.2.3).
            Some(RequestMatch::AckPassOn { .. }) | Some(RequestMatch::CancelUnmatched) => {
                return forward::request(ctx, host, port, proto);
            }
            Some(RequestMatch::Cancel { invite }) => {
                let src = source(ctx);
                let (now, msg) = (ctx.now, ctx.msg);
                let table = ctx
                    .core
                    .tm
                    .get_or_insert_with(|| TransactionTable::new(TmConfig::default(), 0, now));
                return match table.cancel(invite, msg, &src, now, ctx.out) {
                    Ok(_) => 1,
                    Err(e) => {
                        log::debug!("t_relay of CANCEL: {e:?}");
                        -1
                    }
                };
            }
            _ if method == b"ACK" => return forward::request(ctx, host, port, proto),
            _ => {}
        }
    }
    let tid = match ensure_transaction(ctx, true) {
        Ok(tid) => tid,
        Err(e) => {
            log::warn!("t_relay: cannot create a transaction: {e:?}");
            return -1;
        }
    };
    let ruri_new = fork::ruri_is_new(ctx, Some(tid));
    save_state(ctx, tid);
    let flags = ctx.state.reply_flags();
    table(ctx).set_response_flags(tid, flags);
    let rc = fork::relay_set(ctx, tid, ruri_new, fork::Forced { host, port, proto });
    // After branch_route, which may have changed them (uac_replace_from).
    let iflags = ctx.state.iflags;
    if let Some(d) = table(ctx).user_mut(tid) {
        d.iflags |= iflags;
    }
    if ctx.route_type == RouteType::Request {
        // Kamailio answers a request it could not relay itself (tm's
        // kill_transaction), but only when the script ends: a reply the
        // script sends first wins, a t_relay that works after cancels it.
        ctx.t.delayed_error = (rc < 0).then_some(rc);
    }
    if std::mem::take(&mut ctx.t.send_failed) && rc == -477 {
        return -1;
    }
    rc
}

/// The reply code and reason Kamailio's tm gives an internal error `rc`
/// (its `err2reason_phrase`, signature `TM`).
pub fn error_reply(rc: i32) -> (u16, String) {
    let n = rc.unsigned_abs();
    let (code, text) = match rc {
        -477 => (477, "Unfortunately error on sending to next hop occurred"),
        -478 => (478, "Unresolvable destination"),
        -479 => (479, "Regretfully, we were not able to process the URI"),
        -400 => (400, "Bad Request"),
        _ => (500, "I'm terribly sorry, server error occurred"),
    };
    (code, format!("{text} ({n}/TM)"))
}

/// At the end of request_route: the reply to a `t_relay` that failed
/// ([`TmMsg::delayed_error`]), unless the transaction was answered. It
/// carries no `append_to_reply` header (checked live).
pub fn end_of_request(ctx: &mut MsgCtx<'_>) {
    if let Some(tid) = ctx.t.tid {
        keep_attrs(ctx, tid);
    }
    let (Some(rc), Some(tid)) = (ctx.t.delayed_error.take(), ctx.t.tid) else {
        return;
    };
    let now = ctx.now;
    let Some(table) = ctx.core.tm.as_mut() else {
        return;
    };
    if table.status(tid).is_some_and(|s| s >= 200) {
        return;
    }
    let (code, reason) = error_reply(rc);
    let spec = LocalReply {
        code,
        reason: reason.as_bytes(),
        headers: &[],
        body: None,
    };
    if let Err(e) = table.reply(tid, &spec, now, ctx.out) {
        log::debug!("tm: delayed error reply {code}: {e:?}");
    }
}

/// The transaction keeps the AVPs and XAVPs as request_route leaves them,
/// set after `t_relay()` too (Kamailio 5.6, checked live: its reply and
/// failure routes read them).
fn keep_attrs(ctx: &mut MsgCtx<'_>, tid: Tid) {
    let Some(data) = ctx.core.tm.as_mut().and_then(|t| t.user_mut(tid)) else {
        return;
    };
    if !(ctx.attrs.is_empty() && data.attrs.is_empty()) {
        data.attrs = ctx.attrs.clone();
    }
}

/// Replies on the transaction of the request in `ctx` (`t_reply`; `send_reply`
/// when a transaction exists). Returns 1 or -1.
pub fn reply(ctx: &mut MsgCtx<'_>, code: u16, reason: &[u8]) -> i32 {
    reply_with(ctx, code, reason, b"")
}

/// [`reply`] with whole header lines `extra` added after those the script
/// queued for the reply (`append_to_reply`), and the body it set
/// (`set_reply_body`), as Kamailio's reply lumps go into `t_reply`.
pub fn reply_with(ctx: &mut MsgCtx<'_>, code: u16, reason: &[u8], extra: &[u8]) -> i32 {
    let Ok(tid) = ensure_transaction(ctx, false) else {
        return -1;
    };
    let now = ctx.now;
    let flags = ctx.flags;
    let table = ctx
        .core
        .tm
        .get_or_insert_with(|| TransactionTable::new(TmConfig::default(), 0, now));
    table.set_response_flags(tid, ctx.state.reply_flags());
    // The request's flags as they are when the script replies (acc reads them).
    if let Some(data) = table.user_mut(tid) {
        data.flags = flags;
    }
    let queued;
    let headers = if extra.is_empty() {
        &ctx.state.reply_headers[..]
    } else {
        queued = [&ctx.state.reply_headers[..], extra].concat();
        &queued[..]
    };
    let spec = LocalReply {
        code,
        reason,
        headers,
        body: ctx
            .state
            .reply_body
            .as_ref()
            .map(|(b, t)| (b.as_ref(), t.as_ref())),
    };
    match table.reply(tid, &spec, now, ctx.out) {
        Ok(()) => 1,
        Err(e) => {
            log::debug!("t_reply {code}: {e:?}");
            -1
        }
    }
}

fn relay_with(ctx: &mut MsgCtx<'_>, args: &Args, proto: Option<Proto>) -> i32 {
    match host_port(ctx, args) {
        Ok((host, port)) => relay(ctx, host.as_deref(), port, proto),
        Err(code) => code,
    }
}

fn t_relay(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    relay_with(ctx, args, None)
}

fn t_relay_to_udp(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    relay_with(ctx, args, Some(Proto::Udp))
}

fn t_relay_to_tcp(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    relay_with(ctx, args, Some(Proto::Tcp))
}

fn t_relay_to_tls(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    relay_with(ctx, args, Some(Proto::Tls))
}

fn route_arg(args: &Args) -> Option<RouteId> {
    match args.get(0) {
        Some(Arg::Int(id)) => RouteId::try_from(*id).ok(),
        _ => None,
    }
}

/// `t_on_failure(name)`: the compiler has replaced the name by the route's index.
fn t_on_failure(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    ctx.t.on_failure = route_arg(args);
    1
}

fn t_on_reply(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    ctx.t.on_reply = route_arg(args);
    1
}

fn t_on_branch(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    ctx.t.on_branch = route_arg(args);
    1
}

/// `t_check_trans()`: whether the message belongs to a transaction. A
/// retransmission never reaches the script (it is absorbed first), so in a
/// request route this is true for a CANCEL or an ACK that matched one.
fn t_check_trans(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    if ctx.route_type != RouteType::Request {
        return if ctx.t.tid.is_some() { 1 } else { -1 };
    }
    match ctx.t.matched {
        Some(RequestMatch::Cancel { .. }) | Some(RequestMatch::AckPassOn { tid: Some(_) }) => 1,
        _ if ctx.t.tid.is_some() => 1,
        _ => -1,
    }
}

/// `t_precheck_trans()`: whether another copy of this request is being
/// handled; retransmissions are absorbed before the script, so never.
fn t_precheck_trans(_: &mut MsgCtx<'_>, _: &Args) -> i32 {
    -1
}

fn t_newtran(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    if ctx.msg.method_bytes() == b"ACK" {
        return -1;
    }
    if let Some(rc) = refuse_broken(ctx) {
        return rc;
    }
    match ensure_transaction(ctx, false) {
        Ok(_) => 1,
        Err(_) => -1,
    }
}

fn t_reply(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    // As in Kamailio, t_reply answers a transaction the script already has
    // (t_newtran, t_relay, t_check_trans, or a failure/reply route's);
    // it never makes one: without, nothing is sent and it fails.
    if ctx.t.tid.is_none() {
        log::error!(
            "t_reply: the request has no transaction yet (call t_newtran() first); nothing sent"
        );
        return -1;
    }
    let code = match args.int(ctx, 0) {
        Some(c) if (100..=699).contains(&c) => c as u16,
        _ => return -1,
    };
    let reason = args.str(ctx, 1).into_owned();
    reply(ctx, code, &reason)
}

fn t_release(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(tid) = ctx.t.tid else { return -1 };
    if table(ctx).release(tid) {
        ctx.t.tid = None;
        1
    } else {
        -1
    }
}

/// `t_is_set("failure_route"|"branch_route"|"onreply_route")`.
fn t_is_set(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let which = args.str(ctx, 0);
    let set = match which.as_ref() {
        b"failure_route" => ctx.t.on_failure.is_some(),
        b"branch_route" => ctx.t.on_branch.is_some(),
        b"onreply_route" => ctx.t.on_reply.is_some(),
        _ => false,
    };
    if set {
        1
    } else {
        -1
    }
}

/// `t_check_status(re)`: the reply code (`$T_reply_code`) matches.
fn t_check_status(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(re) = args.custom::<regex::Regex>(0) else {
        return -1;
    };
    let code = match ctx.route_type {
        RouteType::Reply | RouteType::OnReply => ctx.msg.status().unwrap_or(0),
        _ => ctx.t.reply_code,
    };
    if code != 0 && re.is_match(itoa::Buffer::new().format(code)) {
        1
    } else {
        -1
    }
}

fn fixup_regex(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let text = match args.get(0) {
        Some(Arg::Str(s)) => String::from_utf8_lossy(s).into_owned(),
        Some(Arg::Int(i)) => i.to_string(),
        _ => return Err("needs a constant regular expression".into()),
    };
    let re = regex::Regex::new(&text).map_err(|e| format!("bad regular expression: {e}"))?;
    args.0[0] = Arg::Custom(Box::new(re));
    Ok(())
}

/// `t_is_branch_route()`: whether the script is running in a branch_route.
fn t_is_branch_route(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    if ctx.route_type == RouteType::Branch {
        1
    } else {
        -1
    }
}

fn t_is_canceled(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(tid) = ctx.t.tid else { return -1 };
    if table(ctx).is_canceled(tid) {
        1
    } else {
        -1
    }
}

/// Whether any branch (or the winning one, for `t_branch_*`) satisfies `pred`.
fn branch_test(
    ctx: &mut MsgCtx<'_>,
    winning_only: bool,
    pred: fn(&TransactionTable<TxData>, Tid, u8) -> bool,
) -> i32 {
    let Some(tid) = ctx.t.tid else { return -1 };
    let table = table(ctx);
    let hit = if winning_only {
        table.winning(tid).is_some_and(|(b, _)| pred(table, tid, b))
    } else {
        (0..table.branch_count(tid))
            .filter_map(|b| u8::try_from(b).ok())
            .any(|b| pred(table, tid, b))
    };
    if hit {
        1
    } else {
        -1
    }
}

fn t_branch_timeout(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    branch_test(ctx, true, |t, tid, b| t.branch_timed_out(tid, b))
}

fn t_branch_replied(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    branch_test(ctx, true, |t, tid, b| t.branch_replied(tid, b))
}

fn t_any_timeout(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    branch_test(ctx, false, |t, tid, b| t.branch_timed_out(tid, b))
}

fn t_any_replied(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    branch_test(ctx, false, |t, tid, b| t.branch_replied(tid, b))
}

/// `t_set_fr(fr_inv[, fr])` (ms; 0 leaves a value unchanged): this
/// transaction's timers, also for its running branches. Before the
/// transaction exists they wait in the message state. 1, or -1 for a
/// negative value.
fn t_set_fr(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let value = |i: usize| -> Result<Option<u32>, ()> {
        if i >= args.len() {
            return Ok(None);
        }
        match args.int(ctx, i) {
            Some(0) => Ok(None),
            Some(v) if v > 0 => Ok(Some(u32::try_from(v).unwrap_or(u32::MAX))),
            _ => Err(()),
        }
    };
    let (Ok(fr_inv), Ok(fr)) = (value(0), value(1)) else {
        return -1;
    };
    set_fr(ctx, fr_inv, fr)
}

/// `t_reset_fr()`: back to the configured `fr_inv_timer` and `fr_timer`.
fn t_reset_fr(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    // A zero duration means "the configured value" to the table.
    set_fr(ctx, Some(0), Some(0))
}

fn set_fr(ctx: &mut MsgCtx<'_>, fr_inv: Option<u32>, fr: Option<u32>) -> i32 {
    let Some(tid) = ctx.t.tid else {
        let (old_inv, old_fr) = ctx.t.fr.unwrap_or((None, None));
        ctx.t.fr = Some((fr_inv.or(old_inv), fr.or(old_fr)));
        return 1;
    };
    let ms = |v: Option<u32>| v.map(|ms| std::time::Duration::from_millis(u64::from(ms)));
    let now = ctx.now;
    let out = &mut *ctx.out;
    let set = ctx
        .core
        .tm
        .as_mut()
        .is_some_and(|t| t.set_fr(tid, ms(fr_inv), ms(fr), now, out));
    if set {
        1
    } else {
        -1
    }
}

/// `t_drop_replies(["a"|"l"|"n"])` (FAILURE): when this failure route ends,
/// drop all stored replies (`a`, the default), those of the leg that just
/// failed (`l`), or none (`n`), so that they are no longer candidates for
/// the reply sent upstream.
fn t_drop_replies(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    use crate::tm::DropReplies;
    let mode = if !args.is_empty() {
        match args.str(ctx, 0).as_ref() {
            b"a" => DropReplies::All,
            b"l" => DropReplies::PreviousLeg,
            b"n" => DropReplies::Keep,
            _ => return -1,
        }
    } else {
        DropReplies::All
    };
    let Some(tid) = ctx.t.tid else { return -1 };
    if table(ctx).set_drop_replies(tid, mode) {
        1
    } else {
        -1
    }
}

fn fixup_reply(args: &mut Args, _: &ModParams) -> Result<(), String> {
    crate::script::registry::fixup_int(args, 0)?;
    match args.get(0) {
        Some(Arg::Int(c)) if !(100..=699).contains(c) => {
            Err(format!("reply code {c} is not in 100..699"))
        }
        _ => Ok(()),
    }
}

const REQ: RouteMask = RouteMask::REQUEST;
const REQ_FAIL: RouteMask = RouteMask::REQUEST.or(RouteMask::FAILURE);
const RELAY: RouteMask = RouteMask::REQUEST
    .or(RouteMask::FAILURE)
    .or(RouteMask::BRANCH);
const ANY: RouteMask = RouteMask::ANY;
const FAIL_REPLY: RouteMask = RouteMask::FAILURE
    .or(RouteMask::ONREPLY)
    .or(RouteMask::BRANCH)
    .or(RouteMask::REQUEST);

macro_rules! f {
    ($name:expr, $min:expr, $max:expr, $routes:expr, $fixup:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $min,
            max_args: $max,
            routes: $routes,
            fixup: $fixup,
            call: $call,
        }
    };
}

/// Functions whose first argument names a route of the given kind; the
/// compiler replaces the name by the route's index (and reports a missing one).
pub const ROUTE_NAME_ARGS: &[(&str, crate::script::ast::RouteKind)] = &[
    ("t_on_failure", crate::script::ast::RouteKind::Failure),
    ("t_on_reply", crate::script::ast::RouteKind::TmReply),
    ("t_on_branch", crate::script::ast::RouteKind::Branch),
];

pub static MODULE: ModuleDef = ModuleDef {
    name: "tm",
    aliases: &["tmx"],
    functions: &[
        f!("t_relay", 0, 2, REQ_FAIL, Some(fixup_port), t_relay),
        f!(
            "t_relay_to_udp",
            0,
            2,
            REQ_FAIL,
            Some(fixup_port),
            t_relay_to_udp
        ),
        f!(
            "t_relay_to_tcp",
            0,
            2,
            REQ_FAIL,
            Some(fixup_port),
            t_relay_to_tcp
        ),
        f!(
            "t_relay_to_tls",
            0,
            2,
            REQ_FAIL,
            Some(fixup_port),
            t_relay_to_tls
        ),
        f!("t_on_failure", 1, 1, RELAY, None, t_on_failure),
        f!("t_on_reply", 1, 1, RELAY, None, t_on_reply),
        f!("t_on_branch", 1, 1, RELAY, None, t_on_branch),
        f!("t_check_trans", 0, 0, ANY, None, t_check_trans),
        f!("t_precheck_trans", 0, 0, REQ, None, t_precheck_trans),
        f!("t_newtran", 0, 0, REQ, None, t_newtran),
        f!("t_reply", 2, 2, REQ_FAIL, Some(fixup_reply), t_reply),
        f!("t_release", 0, 0, REQ, None, t_release),
        f!("t_is_set", 1, 1, ANY, None, t_is_set),
        f!(
            "t_check_status",
            1,
            1,
            FAIL_REPLY,
            Some(fixup_regex),
            t_check_status
        ),
        f!("t_is_canceled", 0, 0, ANY, None, t_is_canceled),
        f!("t_is_branch_route", 0, 0, ANY, None, t_is_branch_route),
        f!(
            "t_branch_timeout",
            0,
            0,
            RouteMask::FAILURE,
            None,
            t_branch_timeout
        ),
        f!(
            "t_branch_replied",
            0,
            0,
            RouteMask::FAILURE,
            None,
            t_branch_replied
        ),
        f!("t_any_timeout", 0, 0, ANY, None, t_any_timeout),
        f!("t_set_fr", 1, 2, FAIL_REPLY, None, t_set_fr),
        f!("t_reset_fr", 0, 0, FAIL_REPLY, None, t_reset_fr),
        f!(
            "t_drop_replies",
            0,
            1,
            RouteMask::FAILURE,
            None,
            t_drop_replies
        ),
        f!("t_any_replied", 0, 0, ANY, None, t_any_replied),
        f!("t_relay_cancel", 0, 0, REQ, None, control::t_relay_cancel),
        f!(
            "t_cancel_branches",
            1,
            1,
            RouteMask::ONREPLY,
            Some(control::fixup_cancel_branches),
            control::t_cancel_branches
        ),
        f!(
            "t_retransmit_reply",
            0,
            0,
            REQ,
            None,
            control::t_retransmit_reply
        ),
        f!("t_flush_flags", 0, 0, ANY, None, control::t_flush_flags),
        f!("t_reply_callid", 4, 4, ANY, None, control::t_reply_callid),
        f!("t_cancel_callid", 3, 4, ANY, None, control::t_cancel_callid),
        f!("t_lookup_request", 0, 0, REQ, None, query::t_lookup_request),
        f!("t_lookup_cancel", 0, 1, REQ, None, query::t_lookup_cancel),
        f!(
            "t_get_status_code",
            0,
            0,
            ANY,
            None,
            query::t_get_status_code
        ),
        f!(
            "t_grep_status",
            1,
            1,
            FAIL_REPLY,
            None,
            query::t_grep_status
        ),
        f!("t_is_expired", 0, 0, FAIL_REPLY, None, query::t_is_expired),
        f!(
            "t_is_failure_route",
            0,
            0,
            ANY,
            None,
            query::t_is_failure_route
        ),
        f!("t_is_reply_route", 0, 0, ANY, None, query::t_is_reply_route),
        f!(
            "t_is_request_route",
            0,
            0,
            ANY,
            None,
            query::t_is_request_route
        ),
        f!(
            "t_suspend",
            0,
            0,
            REQ_FAIL,
            None,
            crate::modules::r#async::t_suspend
        ),
        f!(
            "t_continue",
            3,
            3,
            ANY,
            None,
            crate::modules::r#async::t_continue
        ),
        f!(
            "t_set_auto_inv_100",
            1,
            1,
            FAIL_REPLY,
            None,
            settings::t_set_auto_inv_100
        ),
        f!(
            "t_set_disable_6xx",
            1,
            1,
            FAIL_REPLY,
            None,
            settings::t_set_disable_6xx
        ),
        f!(
            "t_set_disable_failover",
            1,
            1,
            FAIL_REPLY,
            None,
            settings::t_set_disable_failover
        ),
        f!(
            "t_set_no_e2e_cancel_reason",
            1,
            1,
            FAIL_REPLY,
            None,
            settings::t_set_no_e2e_cancel_reason
        ),
        f!("t_set_retr", 2, 2, FAIL_REPLY, None, settings::t_set_retr),
        f!(
            "t_reset_retr",
            0,
            0,
            FAIL_REPLY,
            None,
            settings::t_reset_retr
        ),
        f!(
            "t_set_max_lifetime",
            2,
            2,
            FAIL_REPLY,
            None,
            settings::t_set_max_lifetime
        ),
        f!(
            "t_reset_max_lifetime",
            0,
            0,
            FAIL_REPLY,
            None,
            settings::t_reset_max_lifetime
        ),
        f!(
            "t_load_contacts",
            0,
            1,
            REQ_FAIL,
            Some(serial::fixup_load),
            serial::t_load_contacts
        ),
        f!(
            "t_next_contacts",
            0,
            0,
            REQ_FAIL,
            Some(serial::fixup_next),
            serial::t_next_contacts
        ),
    ],
    params: config::PARAMS,
    always: false,
};

#[cfg(test)]
mod parse_tests {
    use crate::modules::testutil::{call, Harness, INVITE};
    use crate::script::registry::ModParams;

    /// Kamailio's reasons for tm's internal errors (the texts seen live
    /// for -7 and -478, the rest from its error table).
    #[test]
    fn error_replies_are_kamailios() {
        let r = |rc| {
            let (code, reason) = super::error_reply(rc);
            format!("{code} {reason}")
        };
        assert_eq!(
            r(-7),
            "500 I'm terribly sorry, server error occurred (7/TM)"
        );
        assert_eq!(
            r(-6),
            "500 I'm terribly sorry, server error occurred (6/TM)"
        );
        assert_eq!(r(-478), "478 Unresolvable destination (478/TM)");
        assert_eq!(
            r(-477),
            "477 Unfortunately error on sending to next hop occurred (477/TM)"
        );
        assert_eq!(
            r(-479),
            "479 Regretfully, we were not able to process the URI (479/TM)"
        );
        assert_eq!(r(-400), "400 Bad Request (400/TM)");
        assert_eq!(
            r(-1),
            "500 I'm terribly sorry, server error occurred (1/TM)"
        );
    }

    /// Kamailio's t_newtran parses the whole header section: a header
    /// field its parser refuses (a second Max-Forwards past the required
    /// ones) makes `t_relay` and `t_newtran` return -400 with nothing sent
    /// (checked live).
    #[test]
    fn no_transaction_for_a_request_with_a_broken_header() {
        let text = INVITE.replacen("Content-Type:", "Max-Forwards: 9\nContent-Type:", 1);
        for f in ["t_relay", "t_newtran"] {
            let mut h = Harness::new(&text);
            let mut ctx = h.ctx();
            let rc = call(&mut ctx, &super::MODULE, f, &[], &ModParams::default());
            assert_eq!(rc, -400, "{f}");
            assert!(h.out.is_empty(), "{f}");
        }
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(
            call(
                &mut ctx,
                &super::MODULE,
                "t_newtran",
                &[],
                &ModParams::default()
            ),
            1
        );
    }
}
