//! dialog: call (dialog) state in the proxy, Kamailio 5.6 semantics.
//!
//! ```text
//!  initial INVITE ─ dlg_manage() / dlg_flag at t_relay ─▶ Unconfirmed (1), ;did= in Record-Route
//!  1xx with To-tag ──────────────────────────────────────▶ Early (2)
//!  2xx sent upstream ─────────────────────────────────────▶ ConfirmedNa (3)  dialog:start
//!  ACK (loose_route / dlg_manage) ────────────────────────▶ Confirmed (4)
//!  BYE, final ≥ 300 sent upstream, timeout ───────────────▶ Deleted (5)      dialog:end / dialog:failed
//! ```
//!
//! Parts: [`table`] holds the dialogs of every core and counts the profiles;
//! [`functions`] are the script functions; [`pv`] reads and writes `$dlg`,
//! `$dlg_var` and `$dlg_ctx`; [`rpc`] answers `dlg.*` control-socket
//! methods. The hooks below are called by rr (`loose_route`), tm (a new
//! transaction) and the engine (answers to the INVITE).
//!
//! Dialogs live in memory only: `db_mode` other than 0 is accepted with a
//! warning at start-up, as are `db_url` and the other database parameters.

use bytes::Bytes;

use crate::script::ctx::{Env, MsgCtx, SharedTimer};
use crate::script::registry::{func as f, param as p, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::sip::headers::CSeq;
use crate::sip::nameaddr::NameAddr;
use crate::sip::{HeaderName, Message};

mod functions;
pub mod pv;
pub mod rpc;
pub mod table;

pub use table::{Dialog, Dialogs, Direction, DlgId, State, Transition};

use functions::*;

/// A profile declared with `profiles_with_value` / `profiles_no_value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileDef {
    pub name: String,
    pub with_value: bool,
}

/// The module parameters, read once at start-up.
#[derive(Clone, Debug)]
pub struct DlgParams {
    /// `rr_param` (default `did`).
    pub rr_param: Bytes,
    /// `dlg_flag`: the message flag that makes `t_relay` create a dialog.
    pub dlg_flag: Option<u32>,
    /// `default_timeout` (43200 s).
    pub default_timeout: u32,
    /// `early_timeout` (300 s): an unanswered dialog is dropped after it.
    pub early_timeout: u32,
    /// `noack_timeout` (60 s): a 2xx whose ACK does not come ends the dialog after it.
    pub noack_timeout: u32,
    /// `timeout_noreset`: in-dialog requests do not start the timeout again.
    pub timeout_noreset: bool,
    /// `dlg_match_mode`: 0 did only (Kamailio's default), 1 did then
    /// Call-ID and tags, 2 Call-ID and tags only (no did written).
    pub match_mode: u8,
    /// `detect_spirals` (default 1).
    pub detect_spirals: bool,
    /// `hash_size` (4096, a power of two).
    pub hash_size: u32,
    pub profiles: Vec<ProfileDef>,
}

impl Default for DlgParams {
    fn default() -> DlgParams {
        DlgParams::from_modparams(&ModParams::default()).expect("defaults are valid")
    }
}

impl DlgParams {
    pub fn from_modparams(mp: &ModParams) -> Result<DlgParams, String> {
        let int = |name: &str, d: i64| mp.int("dialog", name).unwrap_or(d);
        let secs = |name: &str, d: i64| {
            u32::try_from(int(name, d))
                .map_err(|_| format!("dialog: {name} must be a number of seconds"))
        };
        let match_mode = int("dlg_match_mode", 0);
        if !(0..=2).contains(&match_mode) {
            return Err(format!(
                "dialog: dlg_match_mode {match_mode} is not 0, 1 or 2"
            ));
        }
        let dlg_flag = match int("dlg_flag", -1) {
            -1 => None,
            f @ 0..=31 => Some(f as u32),
            f => return Err(format!("dialog: dlg_flag {f} is not a flag 0..31")),
        };
        let hash_size = u32::try_from(int("hash_size", 4096))
            .ok()
            .filter(|n| n.is_power_of_two())
            .ok_or("dialog: hash_size must be a power of two")?;
        let rr_param = mp.str("dialog", "rr_param").unwrap_or("did").trim();
        if rr_param.is_empty() || !rr_param.bytes().all(crate::sip::scan::is_token_char) {
            return Err(format!(
                "dialog: rr_param \"{rr_param}\" is not a URI parameter name"
            ));
        }
        let mut profiles: Vec<ProfileDef> = Vec::new();
        for (param, with_value) in [("profiles_with_value", true), ("profiles_no_value", false)] {
            for v in mp.all("dialog", param) {
                let crate::script::registry::ParamValue::Str(text) = v else {
                    return Err(format!("dialog: {param} needs names separated by ';'"));
                };
                for name in text.split(';').map(str::trim).filter(|n| !n.is_empty()) {
                    if profiles.iter().any(|p| p.name == name) {
                        return Err(format!("dialog: profile \"{name}\" is declared twice"));
                    }
                    profiles.push(ProfileDef {
                        name: name.to_string(),
                        with_value,
                    });
                }
            }
        }
        Ok(DlgParams {
            rr_param: Bytes::copy_from_slice(rr_param.as_bytes()),
            dlg_flag,
            default_timeout: secs("default_timeout", 43200)?,
            early_timeout: secs("early_timeout", 300)?,
            noack_timeout: secs("noack_timeout", 60)?,
            timeout_noreset: int("timeout_noreset", 0) != 0,
            match_mode: match_mode as u8,
            detect_spirals: int("detect_spirals", 1) != 0,
            hash_size,
            profiles,
        })
    }

    /// The index of profile `name`.
    pub fn profile(&self, name: &str) -> Option<usize> {
        self.profiles.iter().position(|p| p.name == name)
    }
}

/// What start-up should warn about: parameters accepted but not acted on.
pub fn unsupported_params(mp: &ModParams) -> Vec<String> {
    let mut out = Vec::new();
    let mode = mp.int("dialog", "db_mode").unwrap_or(0);
    if mode != 0 {
        out.push(format!(
            "dialog db_mode {mode} (dialogs are kept in memory only and lost on restart)"
        ));
    }
    for name in [
        "db_url",
        "dlg_extra_hdrs",
        "ka_timer",
        "ka_interval",
        "bridge_controller",
        "bridge_contact",
        "track_cseq_updates",
        "lreq_callee_headers",
        "event_callback",
        "keep_proxy_rr",
        "dlg_filter_mode",
        "wait_ack",
        "end_timeout",
    ] {
        if !mp.all("dialog", name).is_empty() {
            out.push(format!("dialog {name}"));
        }
    }
    if mp.int("dialog", "send_bye").unwrap_or(0) != 0 {
        out.push("dialog send_bye (no BYE is sent when a dialog times out)".into());
    }
    out
}

/// The dialog state of one message (`MsgCtx::dlg`), made when a dialog
/// function or hook first touches it.
#[derive(Clone, Debug, Default)]
pub struct DlgMsg {
    /// The dialog this message belongs to, once created or matched.
    pub current: Option<DlgId>,
    /// Which way an in-dialog request goes.
    pub dir: Option<Direction>,
    /// In-dialog matching was done for this message (once).
    pub matched: bool,
    /// The in-dialog request moved its dialog on (ACK, BYE…), once.
    pub processed: bool,
    /// This request made its dialog (not a spiral of an earlier one).
    pub created: bool,
    /// `set_dlg_profile` before the dialog exists (flag mode): attached when it is made.
    pub pending: Vec<(usize, Option<Box<[u8]>>)>,
    /// `$dlg_var` set before the dialog exists: moved to it when it is made.
    pub pending_vars: Vec<table::DlgVar>,
    /// `dlg_setflag` before the dialog exists / `$dlg_ctx(flags)`.
    pub flags: u32,
    /// `dlg_set_timeout` / `$dlg_ctx(timeout_int)` before the dialog exists.
    pub timeout: Option<u32>,
    /// `$dlg_ctx(timeout_bye)`.
    pub timeout_bye: bool,
    /// `$dlg_ctx(timeout_route)`: the `route[NAME]` its dialog runs when it times out.
    pub timeout_route: Option<Bytes>,
    /// `$dlg_ctx(on)`.
    pub on: i64,
    /// `$dlg_ctx(dir)`: set by `dlg_get()` only, as in Kamailio (routing
    /// an in-dialog request leaves it 0).
    pub ctx_dir: Option<Direction>,
    /// `$DLG_lifetime` and `$DLG_status`: seconds since its dialog started
    /// and the dialog's state once this in-dialog request moved it on.
    pub routed: Option<(i64, i64)>,
}

/// The shared table, when the module is loaded.
pub fn dialogs(env: &Env) -> Option<&Dialogs> {
    env.services.get::<Dialogs>()
}

/// This message's dialog state, made on first use.
pub fn msg_state<'c>(ctx: &'c mut MsgCtx<'_>) -> &'c mut DlgMsg {
    ctx.dlg.get_or_insert_with(Box::default)
}

/// The identifiers a dialog is found by.
pub struct Ids<'m> {
    pub callid: &'m [u8],
    pub from_tag: &'m [u8],
    pub to_tag: &'m [u8],
    pub cseq: u32,
    pub cseq_method: &'m [u8],
}

/// Call-ID, tags and CSeq of `msg`; `None` when one is missing or unreadable.
pub fn ids(msg: &Message) -> Option<Ids<'_>> {
    let callid = trim(msg.call_id()?);
    let from = NameAddr::parse(msg.header_value(HeaderName::From)?).ok()?;
    let cseq = CSeq::parse(msg.header_value(HeaderName::CSeq)?).ok()?;
    Some(Ids {
        callid,
        from_tag: from.tag()?,
        to_tag: msg.to_tag()?.unwrap_or_default(),
        cseq: cseq.seq,
        cseq_method: cseq.method.as_bytes(),
    })
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// The URI of a From or To header of `msg`.
fn header_uri(msg: &Message, h: HeaderName) -> &[u8] {
    msg.header_value(h)
        .and_then(|v| NameAddr::parse(v).ok())
        .map_or(&[][..], |na| na.uri_raw())
}

/// Makes the dialog of the initial INVITE in `ctx` (or finds the one a
/// spiral of it made), asks for the `did` Record-Route parameter, attaches
/// what the script set before, and makes it this message's dialog.
pub fn create(ctx: &mut MsgCtx<'_>) -> Option<DlgId> {
    if let Some(id) = ctx.dlg.as_ref().and_then(|d| d.current) {
        return Some(id);
    }
    let d = dialogs(ctx.env)?;
    let msg = ctx.msg;
    if msg.method_bytes() != b"INVITE" {
        return None;
    }
    let ids = ids(msg)?;
    if !ids.to_tag.is_empty() {
        return None;
    }
    let init = table::Initial {
        callid: ids.callid,
        from_uri: header_uri(msg, HeaderName::From),
        from_tag: ids.from_tag,
        to_uri: header_uri(msg, HeaderName::To),
        cseq: ids.cseq,
    };
    let timeout = ctx
        .dlg
        .as_ref()
        .and_then(|m| m.timeout)
        .or_else(|| timeout_avp(ctx))
        .unwrap_or(d.params.default_timeout);
    let now = ctx.unix_ms();
    let (id, new) = d.create(&init, timeout, now);
    if d.params.match_mode != 2 {
        let mut param = Vec::with_capacity(24);
        param.push(b';');
        param.extend_from_slice(&d.params.rr_param);
        param.push(b'=');
        param.extend_from_slice(&id.cookie());
        ctx.rr.add_param(&param);
    }
    let m = msg_state(ctx);
    m.current = Some(id);
    m.dir = Some(Direction::Downstream);
    m.matched = true;
    m.created = new;
    let pending = std::mem::take(&mut m.pending);
    let vars = std::mem::take(&mut m.pending_vars);
    let (flags, timeout_bye) = (m.flags, m.timeout_bye);
    let timeout_route = m.timeout_route.as_deref().map(Box::from);
    for (p, v) in pending {
        d.set_profile(id, p, v.as_deref());
    }
    d.with(id, |dlg| {
        dlg.flags |= flags;
        dlg.timeout_bye = timeout_bye;
        dlg.timeout_route = timeout_route;
        for (k, v) in vars {
            match dlg.vars.iter_mut().find(|(n, _)| *n == k) {
                Some(slot) => slot.1 = v,
                None => dlg.vars.push((k, v)),
            }
        }
    });
    Some(id)
}

/// The timeout the `timeout_avp` holds for this message, if it holds a positive number.
fn timeout_avp(ctx: &MsgCtx<'_>) -> Option<u32> {
    let f = ctx.program.param_format("dialog", "timeout_avp")?;
    let text = ctx.format(f);
    std::str::from_utf8(&text)
        .ok()?
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|&t| t > 0)
}

/// Finds the dialog of the in-dialog request in `ctx` (once per message),
/// by the `did` of our Route and/or Call-ID and tags as `dlg_match_mode`
/// says. `Some` with its id and direction.
pub fn match_request(ctx: &mut MsgCtx<'_>) -> Option<(DlgId, Direction)> {
    if let Some(m) = ctx.dlg.as_deref() {
        if m.matched {
            return m.current.zip(m.dir);
        }
    }
    let d = dialogs(ctx.env)?;
    let found = lookup_request(ctx, d);
    let m = msg_state(ctx);
    m.matched = true;
    if let Some((id, dir)) = found {
        m.current = Some(id);
        m.dir = Some(dir);
    }
    found
}

/// [`match_request`] without recording anything (reads only).
pub fn lookup_request(ctx: &MsgCtx<'_>, d: &Dialogs) -> Option<(DlgId, Direction)> {
    let ids = ids(ctx.msg)?;
    if ids.to_tag.is_empty() {
        return None;
    }
    let cookie = if d.params.match_mode == 2 {
        None
    } else {
        route_cookie(ctx, &d.params.rr_param)
    };
    match (cookie, d.params.match_mode) {
        (Some(c), _) => d.match_cookie(&c, ids.callid, ids.from_tag, ids.to_tag),
        (None, 0) => None,
        (None, _) => d.match_tags(ids.callid, ids.from_tag, ids.to_tag),
    }
}

/// The `did` value of our Route: what `loose_route()` found, else the top
/// Route of the message as received.
fn route_cookie(ctx: &MsgCtx<'_>, name: &[u8]) -> Option<Vec<u8>> {
    let params: Vec<u8> = match ctx.rr.routed_params() {
        Some(p) => p.to_vec(),
        None => {
            let v = ctx.msg.header_value(HeaderName::Route)?;
            let first = crate::sip::headers::route_set(v).next()?.ok()?;
            let uri = first.uri_raw();
            let at = uri.iter().position(|&b| b == b';')?;
            uri[at..].to_vec()
        }
    };
    params.split(|&b| b == b';').find_map(|p| {
        let (k, v) = match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &[][..]),
        };
        k.eq_ignore_ascii_case(name).then(|| v.to_vec())
    })
}

/// rr hook: `loose_route()` routed an in-dialog request on our Route. The
/// dialog moves on (ACK confirms, BYE ends, others refresh the timeout).
pub fn on_loose_route(ctx: &mut MsgCtx<'_>) {
    if dialogs(ctx.env).is_none() {
        return;
    }
    in_dialog(ctx);
}

/// The in-dialog request in `ctx` moves its dialog on (once per message,
/// whether `loose_route()` or `dlg_manage()` asks); returns what changed.
pub fn in_dialog(ctx: &mut MsgCtx<'_>) -> Option<Transition> {
    if ctx.dlg.as_ref().is_some_and(|m| m.processed) {
        return None;
    }
    let (id, _) = match_request(ctx)?;
    msg_state(ctx).processed = true;
    let d = dialogs(ctx.env)?;
    let method = ctx.msg.method_bytes();
    let now = ctx.unix_ms();
    let t = d.on_request(id, method, now);
    let routed = d.with(id, |dlg| {
        let lifetime = (now / 1000).saturating_sub(dlg.start_ts) as i64;
        (lifetime, dlg.state as i64)
    });
    if routed.is_some() {
        msg_state(ctx).routed = routed;
    }
    let t = t?;
    if let Some(dlg) = d.get(id) {
        events::run(ctx, &dlg, t);
    }
    Some(t)
}

/// Engine hook: request_route is done with the request in `ctx`. A dialog
/// it made whose INVITE got no transaction (answered statelessly, or
/// dropped) can never be answered through tm: it goes, as in Kamailio,
/// where such a dialog is released when the script ends.
pub fn on_request_done(ctx: &mut MsgCtx<'_>) {
    let Some(m) = ctx.dlg.as_deref() else {
        return;
    };
    if !m.created || ctx.t.tid.is_some() {
        return;
    }
    if let (Some(d), Some(id)) = (dialogs(ctx.env), m.current) {
        d.discard(id);
    }
}

/// tm hook: a transaction was made for the request in `ctx`. With
/// `dlg_flag` set on an initial INVITE, its dialog is made now.
pub fn on_transaction(ctx: &mut MsgCtx<'_>) {
    let Some(d) = dialogs(ctx.env) else {
        return;
    };
    let Some(flag) = d.params.dlg_flag else {
        return;
    };
    if ctx.flags & (1 << flag) != 0 && ctx.msg.method_bytes() == b"INVITE" {
        create(ctx);
    }
}

/// Engine hook: a provisional answer of one of our INVITE branches.
pub fn on_provisional(env: &Env, msg: &Message) {
    let Some(d) = dialogs(env) else {
        return;
    };
    if !matches!(msg.status(), Some(101..=199)) {
        return;
    }
    let Some(ids) = ids(msg) else {
        return;
    };
    if ids.to_tag.is_empty() || ids.cseq_method != b"INVITE" {
        return;
    }
    if let Some(id) = d.match_answer(ids.callid, ids.from_tag, ids.cseq) {
        d.on_provisional(id, ids.to_tag);
    }
}

/// Engine hook: the final answer `response` (as sent upstream) of a
/// transaction; for the initial INVITE of a dialog it confirms or fails it.
/// Returns the dialog and the change, for the event route.
pub fn on_final(env: &Env, response: &Bytes, unix_ms: u64) -> Option<(Dialog, Transition)> {
    let d = dialogs(env)?;
    let msg = Message::parse(response.clone()).ok()?;
    let ids = ids(&msg)?;
    if ids.cseq_method != b"INVITE" {
        return None;
    }
    let id = d.match_answer(ids.callid, ids.from_tag, ids.cseq)?;
    let t = d.on_final(id, msg.status()?, ids.to_tag, unix_ms)?;
    Some((d.get(id)?, t))
}

impl SharedTimer for Dialogs {
    fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    fn on_timer(&self, unix_ms: u64) {
        let ended = Dialogs::on_timer(self, unix_ms, 1000);
        for (dlg, t) in &ended {
            let what = match t {
                Transition::Ended => "ended",
                _ => "failed",
            };
            log::debug!("dialog {}:{} {what} on timeout", dlg.id.entry, dlg.id.id);
        }
        if !ended.is_empty() {
            self.queue_timed_out(ended);
        }
    }
}

/// The request an event route runs on for a dialog a timer ended (there
/// is no SIP message then; Kamailio fakes one too): a BYE within the
/// dialog, from the caller.
pub fn timeout_request(dlg: &Dialog) -> Bytes {
    let mut m = Vec::with_capacity(256);
    let to = if dlg.to_uri.is_empty() {
        &dlg.from_uri
    } else {
        &dlg.to_uri
    };
    m.extend_from_slice(b"BYE ");
    m.extend_from_slice(to);
    m.extend_from_slice(
        b" SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKdlgtimeout\r\nFrom: <",
    );
    m.extend_from_slice(&dlg.from_uri);
    m.extend_from_slice(b">;tag=");
    m.extend_from_slice(&dlg.from_tag);
    m.extend_from_slice(b"\r\nTo: <");
    m.extend_from_slice(to);
    m.extend_from_slice(b">");
    if !dlg.to_tag.is_empty() {
        m.extend_from_slice(b";tag=");
        m.extend_from_slice(&dlg.to_tag);
    }
    m.extend_from_slice(b"\r\nCall-ID: ");
    m.extend_from_slice(&dlg.callid);
    m.extend_from_slice(b"\r\nCSeq: ");
    m.extend_from_slice(
        itoa::Buffer::new()
            .format(dlg.cseq.saturating_add(1))
            .as_bytes(),
    );
    m.extend_from_slice(b" BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    Bytes::from(m)
}

/// Makes `id` the dialog of the message in `ctx` (an event route runs for it).
pub fn enter(ctx: &mut MsgCtx<'_>, id: DlgId) {
    let m = msg_state(ctx);
    m.current = Some(id);
    m.matched = true;
}

mod events {
    use super::*;
    use crate::script::registry::RouteType;

    /// Runs `event_route[dialog:start|end|failed]` for `dlg`, if the script
    /// has it, on the message in `ctx`, in a context of its own (what the
    /// event route changes does not leak into the message being routed).
    pub fn run(ctx: &mut MsgCtx<'_>, dlg: &Dialog, t: Transition) {
        let Some(&route) = ctx.program.event_routes.get(t.route()) else {
            return;
        };
        let from = crate::tm::Source {
            src: ctx.src,
            local: ctx.local,
            proto: ctx.proto,
            socket: ctx.socket,
            conn: ctx.conn,
        };
        let mut ev = MsgCtx::new(
            ctx.env,
            ctx.program,
            &mut *ctx.core,
            ctx.msg,
            from,
            ctx.now,
            RouteType::Event,
            &mut *ctx.out,
        );
        enter(&mut ev, dlg.id);
        let _ = crate::script::vm::run_route(&mut ev, route);
    }
}

const REQ: RouteMask = RouteMask::REQUEST;
const ANY: RouteMask = RouteMask::ANY;
const REQ_BR_FAIL_REPLY: RouteMask = RouteMask::REQUEST
    .or(RouteMask::BRANCH)
    .or(RouteMask::FAILURE)
    .or(RouteMask::ONREPLY);

pub static MODULE: ModuleDef = ModuleDef {
    name: "dialog",
    aliases: &[],
    functions: &[
        f("dlg_manage", 0, 0, REQ, None, dlg_manage),
        f(
            "set_dlg_profile",
            1,
            2,
            REQ_BR_FAIL_REPLY,
            Some(fixup_profile),
            set_dlg_profile,
        ),
        f(
            "unset_dlg_profile",
            1,
            2,
            REQ_BR_FAIL_REPLY,
            Some(fixup_profile),
            unset_dlg_profile,
        ),
        f(
            "is_in_profile",
            1,
            2,
            REQ_BR_FAIL_REPLY,
            Some(fixup_profile),
            is_in_profile,
        ),
        f(
            "get_profile_size",
            2,
            3,
            ANY,
            Some(fixup_profile_size),
            get_profile_size,
        ),
        f("is_known_dlg", 0, 0, ANY, None, is_known_dlg),
        f(
            "dlg_isflagset",
            1,
            1,
            ANY,
            Some(fixup_dlg_flag),
            dlg_isflagset,
        ),
        f("dlg_setflag", 1, 1, ANY, Some(fixup_dlg_flag), dlg_setflag),
        f(
            "dlg_resetflag",
            1,
            1,
            ANY,
            Some(fixup_dlg_flag),
            dlg_resetflag,
        ),
        f("dlg_set_timeout", 1, 3, ANY, None, dlg_set_timeout),
        f("dlg_get", 3, 3, ANY, None, dlg_get),
    ],
    params: &[
        p("enable_stats", ParamKind::Int),
        p("hash_size", ParamKind::Int),
        p("rr_param", ParamKind::Str),
        p("dlg_flag", ParamKind::Int),
        p("timeout_avp", ParamKind::Pv),
        p("default_timeout", ParamKind::Int),
        p("early_timeout", ParamKind::Int),
        p("noack_timeout", ParamKind::Int),
        p("end_timeout", ParamKind::Int),
        p("dlg_extra_hdrs", ParamKind::Str),
        p("dlg_match_mode", ParamKind::Int),
        p("detect_spirals", ParamKind::Int),
        p("db_url", ParamKind::Str),
        p("db_mode", ParamKind::Int),
        p("db_update_period", ParamKind::Int),
        p("db_fetch_rows", ParamKind::Int),
        p("db_skip_load", ParamKind::Int),
        p("table_name", ParamKind::Str),
        p("profiles_with_value", ParamKind::Str),
        p("profiles_no_value", ParamKind::Str),
        p("bridge_controller", ParamKind::Str),
        p("bridge_contact", ParamKind::Str),
        p("initial_cbs_inscript", ParamKind::Int),
        p("send_bye", ParamKind::Int),
        p("wait_ack", ParamKind::Int),
        p("ka_timer", ParamKind::Int),
        p("ka_interval", ParamKind::Int),
        p("timeout_noreset", ParamKind::Int),
        p("track_cseq_updates", ParamKind::Int),
        p("lreq_callee_headers", ParamKind::Str),
        p("event_callback", ParamKind::Str),
        p("h_id_start", ParamKind::Int),
        p("h_id_step", ParamKind::Int),
        p("keep_proxy_rr", ParamKind::Int),
        p("dlg_filter_mode", ParamKind::Int),
        p("dlg_ctxiuid_mode", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests;
