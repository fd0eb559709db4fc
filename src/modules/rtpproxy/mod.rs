//! rtpproxy: media relaying through an RTPProxy server, controlled over its
//! UDP text protocol. A request is `COOKIE SP COMMAND`, the answer
//! `COOKIE SP RESULT`:
//!
//! * `U[mods] CALLID IP PORT TAG1[;N] [TAG2[;N]]` — offer (create or update
//!   the session for media stream N); `L…` the same for an answer (lookup).
//!   TAG1 is the tag of the party whose SDP this is. Answer: `PORT [IP]` —
//!   where the relay receives that party's media — or `E<code>`.
//! * `D CALLID FROMTAG [TOTAG]` — delete; answer `0` or `E<code>`.
//!
//! The functions return 1 when the relay answered and the SDP was rewritten,
//! -1 otherwise (no SDP, no relay, an error answer): as in Kamailio, a call
//! whose script ignores the result goes on without the relay. The shared
//! part with rtpengine (relay sets, selection, the transport) is [`relay`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::registry::{
    func as f, param as p, Arg, Args, ModParams, ModuleDef, ParamKind, ParamValue, RouteMask,
    RouteType,
};
use crate::sip::nameaddr::NameAddr;
use crate::sip::HeaderName;

pub mod relay;
pub mod sdp;

use relay::{RelayTransport, Relays};
use sdp::Sdp;

/// The module's state, in `Env::services`.
#[derive(Debug)]
pub struct Rtpproxy {
    pub relays: Relays,
    /// SDP line (`nortpproxy_str`) added to a relayed SDP; an SDP that has it
    /// is not relayed again (unless flag `f`). Empty: neither.
    pub nortpproxy: String,
}

impl Rtpproxy {
    pub fn from_modparams(
        mp: &ModParams,
        transport: Arc<dyn RelayTransport>,
        cookie_prefix: u32,
        resolve: relay::Resolve<'_>,
    ) -> Result<Rtpproxy, String> {
        let secs = mp.int("rtpproxy", "rtpproxy_tout").unwrap_or(1).max(1);
        let timeout = Duration::from_secs(secs as u64);
        Ok(Rtpproxy {
            relays: Relays::from_modparams(
                mp,
                "rtpproxy",
                timeout,
                transport,
                cookie_prefix,
                resolve,
            )?,
            nortpproxy: mp
                .str("rtpproxy", "nortpproxy_str")
                .unwrap_or("a=nortpproxy:yes\r\n")
                .to_string(),
        })
    }
}

/// Every value of a repeatable socket parameter, as text.
pub fn sock_values(mp: &ModParams, module: &str, param: &str) -> Vec<String> {
    mp.all(module, param)
        .iter()
        .map(|v| match v {
            ParamValue::Str(s) => s.clone(),
            ParamValue::Int(i) => i.to_string(),
        })
        .collect()
}

/// Checks one `modparam` value at start-up (the compiler reports the error
/// at the `modparam` line).
pub fn check_param(param: &str, value: &ParamValue) -> Result<(), String> {
    match (param, value) {
        ("rtpproxy_sock", ParamValue::Str(s)) => {
            relay::parse_sock_value(s, &relay::any_name).map(|_| ())
        }
        ("rtpproxy_tout" | "rtpproxy_retr", ParamValue::Int(n)) if *n < 1 => {
            Err(format!("{param} must be at least 1"))
        }
        _ => Ok(()),
    }
}

/// Parameters accepted but without effect, for a start-up warning and `ringsip check --verbose`.
pub fn unsupported_params(mp: &ModParams) -> Vec<String> {
    mp.set_among(
        "rtpproxy",
        &[
            "timeout_socket",
            "ice_candidate_priority_avp",
            "extra_id_pv",
            "db_url",
            "table_name",
            "rtp_inst_pvar",
            "rtpp_notify_socket",
        ],
    )
}

/// The options of `rtpproxy_manage`/`_offer`/`_answer`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags {
    /// Modifiers passed on to the relay in the U/L command.
    pub modifiers: String,
    /// `r`: send the address in the SDP to the relay (else the SIP source address).
    pub trust_address: bool,
    /// `c`: rewrite the session-level `c=` too.
    pub session_c: bool,
    /// `o`: rewrite the `o=` address.
    pub origin: bool,
    /// `f`: relay even when the SDP carries the nortpproxy mark.
    pub force: bool,
    /// `l`: look the session up only (L), never create it.
    pub lookup: bool,
}

impl Flags {
    pub fn parse(text: &str) -> Result<Flags, String> {
        let mut f = Flags::default();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                // Direction (1/2: caller/callee side) and both-families (x):
                // the relay address family follows the SDP's.
                '1' | '2' | 'x' | 'X' => {}
                'a' | 'A' => f.modifiers.push('A'),
                'i' | 'I' => f.modifiers.push('I'),
                'e' | 'E' => f.modifiers.push('E'),
                'w' | 'W' => f.modifiers.push('S'),
                'r' | 'R' => f.trust_address = true,
                'c' | 'C' => f.session_c = true,
                'o' | 'O' => f.origin = true,
                'f' | 'F' => f.force = true,
                'l' | 'L' => f.lookup = true,
                'z' | 'Z' => {
                    // zNN: repacketize to NN ms.
                    let mut n = String::new();
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        n.push(*d);
                        chars.next();
                    }
                    if n.is_empty() {
                        return Err("flag z needs a number of milliseconds".into());
                    }
                    f.modifiers.push('Z');
                    f.modifiers.push_str(&n);
                }
                c if c.is_whitespace() => {}
                other => return Err(format!("unknown flag '{other}'")),
            }
        }
        Ok(f)
    }
}

/// Offer (U) or answer (L).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Offer,
    Answer,
}

/// `U`/`L` command for stream number `stream` (from 1) whose media is at
/// `media`; `tags` are the SDP sender's tag, then the other party's if known.
pub fn update_command(
    side: Side,
    flags: &Flags,
    call_id: &[u8],
    media: (IpAddr, u16),
    tags: (&[u8], Option<&[u8]>),
    stream: usize,
) -> Vec<u8> {
    let (ip, port) = media;
    let (sender_tag, other_tag) = tags;
    let letter = if side == Side::Answer || flags.lookup {
        'L'
    } else {
        'U'
    };
    let mut out = format!("{letter}{} ", flags.modifiers).into_bytes();
    out.extend_from_slice(call_id);
    out.extend_from_slice(format!(" {ip} {port} ").as_bytes());
    out.extend_from_slice(sender_tag);
    out.extend_from_slice(format!(";{stream}").as_bytes());
    if let Some(t) = other_tag {
        out.push(b' ');
        out.extend_from_slice(t);
        out.extend_from_slice(format!(";{stream}").as_bytes());
    }
    out
}

/// `D` command.
pub fn delete_command(call_id: &[u8], from_tag: &[u8], to_tag: Option<&[u8]>) -> Vec<u8> {
    let mut out = b"D ".to_vec();
    out.extend_from_slice(call_id);
    out.push(b' ');
    out.extend_from_slice(from_tag);
    if let Some(t) = to_tag {
        out.push(b' ');
        out.extend_from_slice(t);
    }
    out
}

/// The answer to U/L: the relay's port and, if it says, its address.
pub fn parse_update_reply(answer: &[u8]) -> Result<(u16, Option<IpAddr>), String> {
    let text = std::str::from_utf8(answer).map_err(|_| "answer is not text".to_string())?;
    let mut words = text.split_whitespace();
    let first = words.next().ok_or("empty answer")?;
    if first.starts_with('E') {
        return Err(format!("relay error {first}"));
    }
    let port: u16 = first
        .parse()
        .map_err(|_| format!("answer \"{}\" has no port", text.trim()))?;
    if port == 0 {
        return Err("relay gave port 0".into());
    }
    let ip = match words.next() {
        Some(w) => Some(
            w.parse::<IpAddr>()
                .map_err(|_| format!("answer \"{}\" has a bad address", text.trim()))?,
        ),
        None => None,
    };
    Ok((port, ip))
}

/// The Call-ID and the From and To tags.
pub fn dialog_ids(ctx: &MsgCtx<'_>) -> Option<(Bytes, Bytes, Option<Bytes>)> {
    let msg = ctx.msg;
    let call_id = Bytes::copy_from_slice(msg.call_id()?);
    let tag = |id| {
        let v = msg.header_value(id)?;
        NameAddr::parse(v).ok()?.tag().map(Bytes::copy_from_slice)
    };
    Some((call_id, tag(HeaderName::From)?, tag(HeaderName::To)))
}

/// The method a message is about: a request's own, a reply's CSeq method.
pub fn method_of(ctx: &MsgCtx<'_>) -> Vec<u8> {
    if ctx.msg.is_request() {
        return ctx.msg.method_bytes().to_vec();
    }
    ctx.msg
        .header_value(HeaderName::CSeq)
        .and_then(|v| {
            v.split(|b| b.is_ascii_whitespace())
                .rfind(|w| !w.is_empty())
        })
        .map_or_else(Vec::new, <[u8]>::to_vec)
}

/// Whether the transaction's request (for a reply) carried a body; `true`
/// when it is not known, as Kamailio assumes without tm.
pub fn request_had_body(ctx: &MsgCtx<'_>) -> bool {
    let Some(tid) = ctx.t.tid else {
        return true;
    };
    ctx.core
        .tm
        .as_ref()
        .and_then(|t| t.user(tid))
        .and_then(|u| u.request.as_ref())
        .is_none_or(|r| !r.body().is_empty())
}

/// What `*_manage` does with this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manage {
    Engage(Side),
    Delete,
    Nothing,
}

/// Kamailio's `*_manage` rule: failure route, BYE, CANCEL and negative
/// replies delete; an INVITE/UPDATE with SDP offers; an ACK/PRACK with SDP
/// answers; a 1xx/2xx with SDP answers when the request had SDP, else offers.
pub fn manage_action(ctx: &MsgCtx<'_>) -> Manage {
    if ctx.route_type == RouteType::Failure {
        return Manage::Delete;
    }
    let has_sdp = Sdp::parse(ctx.msg.body()).is_some();
    let method = method_of(ctx);
    if ctx.msg.is_request() {
        return match method.as_slice() {
            b"BYE" | b"CANCEL" => Manage::Delete,
            b"INVITE" | b"UPDATE" if has_sdp => Manage::Engage(Side::Offer),
            b"ACK" | b"PRACK" if has_sdp => Manage::Engage(Side::Answer),
            _ => Manage::Nothing,
        };
    }
    let status = ctx.msg.status().unwrap_or(0);
    if status >= 300 {
        return if method == b"INVITE" {
            Manage::Delete
        } else {
            Manage::Nothing
        };
    }
    if !has_sdp || !matches!(method.as_slice(), b"INVITE" | b"UPDATE" | b"PRACK") {
        return Manage::Nothing;
    }
    if request_had_body(ctx) {
        Manage::Engage(Side::Answer)
    } else {
        Manage::Engage(Side::Offer)
    }
}

fn state<'c>(ctx: &'c MsgCtx<'_>) -> Option<&'c Rtpproxy> {
    let s = ctx.env.services.get::<Rtpproxy>();
    if s.is_none() {
        log::error!("rtpproxy: no relay configured (modparam rtpproxy_sock)");
    }
    s
}

/// The flags and SDP address of a call (`rtpproxy_*([flags[, ip]])`).
fn call_args(ctx: &MsgCtx<'_>, args: &Args) -> Result<(Flags, Option<IpAddr>), String> {
    let flags = match args.custom::<Flags>(0) {
        Some(f) => f.clone(),
        None if args.is_empty() => Flags::default(),
        None => Flags::parse(&String::from_utf8_lossy(&args.str(ctx, 0)))?,
    };
    let ip = if args.len() > 1 {
        let text = String::from_utf8_lossy(&args.str(ctx, 1))
            .trim()
            .to_string();
        Some(
            text.parse::<IpAddr>()
                .map_err(|_| format!("\"{text}\" is not an IP address"))?,
        )
    } else {
        None
    };
    Ok((flags, ip))
}

/// Engages the relay for every stream of the SDP and rewrites it.
fn engage(ctx: &mut MsgCtx<'_>, args: &Args, side: Side) -> i32 {
    let (flags, sdp_ip) = match call_args(ctx, args) {
        Ok(x) => x,
        Err(e) => {
            log::error!("rtpproxy: {e}");
            return -1;
        }
    };
    let Some(rp) = state(ctx) else { return -1 };
    let Some(sdp) = Sdp::parse(ctx.msg.body()) else {
        return -1;
    };
    if !flags.force && sdp.has_line(&rp.nortpproxy) {
        return -1;
    }
    let Some((call_id, from_tag, to_tag)) = dialog_ids(ctx) else {
        return -1;
    };
    // The first tag is the tag of the party that sent this SDP: the callee
    // for a reply.
    let (sender, other) = if ctx.msg.is_request() {
        (from_tag, to_tag)
    } else {
        match to_tag {
            Some(t) => (t, Some(from_tag)),
            None => return -1,
        }
    };
    let unix_ms = ctx.unix_ms();
    let mut relayed = Vec::with_capacity(sdp.streams.len());
    for (i, s) in sdp.streams.iter().enumerate() {
        if s.port == 0 {
            relayed.push(None);
            continue;
        }
        let media_ip = match (flags.trust_address, s.addr) {
            (true, Some(a)) => a,
            _ => ctx.src.ip(),
        };
        let cmd = update_command(
            side,
            &flags,
            &call_id,
            (media_ip, s.port),
            (&sender, other.as_deref()),
            i + 1,
        );
        let (answer, node) = match rp.relays.send(&call_id, &cmd, unix_ms) {
            Ok(a) => a,
            Err(e) => {
                log::error!("rtpproxy: no answer from any relay ({e:?})");
                return -1;
            }
        };
        match parse_update_reply(&answer) {
            Ok((port, ip)) => {
                let ip = sdp_ip.or(ip).unwrap_or(node.addr.ip());
                relayed.push(Some((port, ip)));
            }
            Err(e) => {
                log::error!("rtpproxy: {}: {e}", node.url);
                return -1;
            }
        }
    }
    if relayed.iter().all(Option::is_none) {
        return -1;
    }
    let mut body = sdp.rewrite(&relayed, flags.session_c, flags.origin);
    // The mark tells a later proxy with a relay of its own that this SDP is
    // relayed already (it checks for it unless told `f`).
    if !rp.nortpproxy.is_empty() && !sdp.has_line(&rp.nortpproxy) {
        if !body.ends_with('\n') {
            body.push_str("\r\n");
        }
        body.push_str(&rp.nortpproxy);
    }
    let msg = ctx.msg;
    ctx.edits.set_body(msg, Bytes::from(body));
    1
}

fn delete(ctx: &mut MsgCtx<'_>) -> i32 {
    let Some(rp) = state(ctx) else { return -1 };
    let Some((call_id, from_tag, to_tag)) = dialog_ids(ctx) else {
        return -1;
    };
    let cmd = delete_command(&call_id, &from_tag, to_tag.as_deref());
    match rp.relays.send(&call_id, &cmd, ctx.unix_ms()) {
        Ok((answer, node)) => {
            if answer.first() == Some(&b'E') {
                log::warn!(
                    "rtpproxy: {} refused to delete: {}",
                    node.url,
                    String::from_utf8_lossy(&answer).trim()
                );
                return -1;
            }
            1
        }
        Err(e) => {
            log::error!("rtpproxy: delete: no answer from any relay ({e:?})");
            -1
        }
    }
}

fn rtpproxy_offer(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    engage(ctx, args, Side::Offer)
}

fn rtpproxy_answer(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    engage(ctx, args, Side::Answer)
}

fn rtpproxy_manage(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match manage_action(ctx) {
        Manage::Engage(side) => engage(ctx, args, side),
        Manage::Delete => delete(ctx),
        Manage::Nothing => -1,
    }
}

fn unforce_rtp_proxy(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    delete(ctx)
}

/// Constant flags are checked and parsed once, at start-up.
fn fixup_flags(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(Arg::Str(s)) = args.get(0) {
        let flags = Flags::parse(&String::from_utf8_lossy(s))?;
        args.0[0] = Arg::Custom(Box::new(flags));
    }
    if let Some(Arg::Str(s)) = args.get(1) {
        let text = String::from_utf8_lossy(s);
        text.trim()
            .parse::<IpAddr>()
            .map_err(|_| format!("\"{text}\" is not an IP address"))?;
    }
    Ok(())
}

const WHERE: RouteMask = RouteMask::REQUEST
    .or(RouteMask::ONREPLY)
    .or(RouteMask::FAILURE)
    .or(RouteMask::BRANCH);

pub static MODULE: ModuleDef = ModuleDef {
    name: "rtpproxy",
    aliases: &[],
    functions: &[
        f(
            "rtpproxy_manage",
            0,
            2,
            WHERE,
            Some(fixup_flags),
            rtpproxy_manage,
        ),
        f(
            "rtpproxy_offer",
            0,
            2,
            WHERE,
            Some(fixup_flags),
            rtpproxy_offer,
        ),
        f(
            "rtpproxy_answer",
            0,
            2,
            WHERE,
            Some(fixup_flags),
            rtpproxy_answer,
        ),
        f("unforce_rtp_proxy", 0, 0, WHERE, None, unforce_rtp_proxy),
        f("rtpproxy_destroy", 0, 1, WHERE, None, unforce_rtp_proxy),
    ],
    params: &[
        p("rtpproxy_sock", ParamKind::Str),
        p("rtpproxy_tout", ParamKind::Int),
        p("rtpproxy_retr", ParamKind::Int),
        p("rtpproxy_disable_tout", ParamKind::Int),
        p("nortpproxy_str", ParamKind::Str),
        p("timeout_socket", ParamKind::Str),
        p("ice_candidate_priority_avp", ParamKind::Str),
        p("extra_id_pv", ParamKind::Str),
        p("db_url", ParamKind::Str),
        p("table_name", ParamKind::Str),
        p("rtp_inst_pvar", ParamKind::Str),
        p("rtpp_notify_socket", ParamKind::Str),
    ],
    always: false,
};

#[cfg(test)]
pub(crate) mod tests;
