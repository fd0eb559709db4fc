//! rtpengine: media relaying through Sipwise rtpengine, controlled over its
//! "ng" protocol: a datagram is `COOKIE SP BENCODED-DICTIONARY`
//! ([`bencode`]). The request names a `command` (`ping`, `offer`, `answer`,
//! `delete`), the dialog (`call-id`, `from-tag`, `to-tag`), the `sdp`, and
//! options (`flags`, `replace`, `direction`, `ICE`, `transport-protocol`…);
//! the answer says `result` (`ok`, `pong`, `error` with `error-reason`) and,
//! for offer and answer, carries the whole new `sdp`, which replaces the
//! message body.
//!
//! Functions return 1 when the relay answered `ok`, -1 otherwise; as in
//! Kamailio a script that ignores the result lets the call go on without the
//! relay. Relay sets, selection and the transport are shared with rtpproxy
//! ([`crate::modules::rtpproxy::relay`]).

pub mod bencode;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::modules::rtpproxy::relay::{self, RelayTransport, Relays};
use crate::modules::rtpproxy::sdp::Sdp;
use crate::modules::rtpproxy::{dialog_ids, manage_action, Manage, Side};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{
    func as f, param as p, Arg, Args, ModParams, ModuleDef, ParamKind, ParamValue, RouteMask,
};
use bencode::Value;

/// The module's state, in `Env::services`.
#[derive(Debug)]
pub struct Rtpengine {
    pub relays: Relays,
}

impl Rtpengine {
    pub fn from_modparams(
        mp: &ModParams,
        transport: Arc<dyn RelayTransport>,
        cookie_prefix: u32,
        resolve: relay::Resolve<'_>,
    ) -> Result<Rtpengine, String> {
        let ms = mp
            .int("rtpengine", "rtpengine_tout_ms")
            .unwrap_or(1000)
            .max(1);
        let timeout = Duration::from_millis(ms as u64);
        Ok(Rtpengine {
            relays: Relays::from_modparams(
                mp,
                "rtpengine",
                timeout,
                transport,
                cookie_prefix,
                resolve,
            )?,
        })
    }
}

/// Checks one `modparam` value at start-up.
pub fn check_param(param: &str, value: &ParamValue) -> Result<(), String> {
    match (param, value) {
        ("rtpengine_sock", ParamValue::Str(s)) => {
            relay::parse_sock_value(s, &relay::any_name).map(|_| ())
        }
        ("rtpengine_tout_ms" | "rtpengine_retr", ParamValue::Int(n)) if *n < 1 => {
            Err(format!("{param} must be at least 1"))
        }
        _ => Ok(()),
    }
}

/// Parameters accepted but without effect.
pub fn unsupported_params(mp: &ModParams) -> Vec<String> {
    mp.set_among("rtpengine", IGNORED)
}

const IGNORED: &[&str] = &[
    "queried_nodes_limit",
    "aggressive_redetection",
    "extra_id_pv",
    "setid_avp",
    "setid_default",
    "hash_table_size",
    "hash_table_tout",
    "force_send_interface",
    "read_sdp_pv",
    "write_sdp_pv",
    "rtp_inst_pvar",
    "db_url",
    "table_name",
    "ping_mode",
    "rtpengine_allow_op",
    "control_cmd_tos",
    "mos_min_pv",
    "mos_max_pv",
    "mos_average_pv",
];

/// The request dictionary for `command` with the options of a flags string
/// (Kamailio's syntax: words separated by spaces; `key=value` sets a key,
/// `replace-X`, `rtcp-mux-X`, `SDES-X` add X to that list,
/// `direction=X` adds to the direction list, a transport name such as
/// `RTP/AVP` sets `transport-protocol`, any other word is a flag).
pub fn build_request(command: &str, flags: &str) -> Vec<(Vec<u8>, Value)> {
    let mut dict: Vec<(Vec<u8>, Value)> = vec![(b"command".to_vec(), Value::str(command))];
    let list_add = |dict: &mut Vec<(Vec<u8>, Value)>, key: &str, item: &str| match dict
        .iter_mut()
        .find(|(k, _)| k == key.as_bytes())
    {
        Some((_, Value::List(l))) => l.push(Value::str(item)),
        _ => dict.push((key.as_bytes().to_vec(), Value::List(vec![Value::str(item)]))),
    };
    for word in flags.split_whitespace() {
        if let Some((key, val)) = word.split_once('=') {
            match key {
                "direction" | "replace" | "rtcp-mux" | "SDES" | "T.38" | "OSRTP" => {
                    list_add(&mut dict, key, val)
                }
                // Kamailio fills these itself from the message.
                "via-branch" | "call-id" | "from-tag" | "to-tag" => {}
                _ => {
                    dict.retain(|(k, _)| k != key.as_bytes());
                    dict.push((key.as_bytes().to_vec(), Value::str(val)));
                }
            }
        } else if let Some(x) = word.strip_prefix("replace-") {
            list_add(&mut dict, "replace", x);
        } else if let Some(x) = word.strip_prefix("rtcp-mux-") {
            list_add(&mut dict, "rtcp-mux", x);
        } else if let Some(x) = word.strip_prefix("SDES-") {
            list_add(&mut dict, "SDES", x);
        } else if word.contains('/') {
            dict.retain(|(k, _)| k != b"transport-protocol");
            dict.push((b"transport-protocol".to_vec(), Value::str(word)));
        } else if matches!(word, "internal" | "external") {
            list_add(&mut dict, "direction", word);
        } else {
            list_add(&mut dict, "flags", word);
        }
    }
    dict
}

/// The flags string of a call: a constant (checked at start-up) or printed now.
fn flags_text(ctx: &MsgCtx<'_>, args: &Args) -> String {
    String::from_utf8_lossy(&args.str(ctx, 0)).into_owned()
}

/// Sends `dict` and returns the answer dictionary when `result` is `ok`.
fn exchange(ctx: &MsgCtx<'_>, call_id: &[u8], dict: Vec<(Vec<u8>, Value)>) -> Option<Value> {
    let Some(re) = ctx.env.services.get::<Rtpengine>() else {
        log::error!("rtpengine: no relay configured (modparam rtpengine_sock)");
        return None;
    };
    let request = Value::Dict(dict).to_bytes();
    let (answer, node) = match re.relays.send(call_id, &request, ctx.unix_ms()) {
        Ok(a) => a,
        Err(e) => {
            log::error!("rtpengine: no answer from any relay ({e:?})");
            return None;
        }
    };
    let answer = match Value::decode(&answer) {
        Ok(v) => v,
        Err(e) => {
            log::error!("rtpengine: {}: bad answer: {e}", node.url);
            return None;
        }
    };
    match answer.get("result").and_then(Value::as_bytes) {
        Some(b"ok") | Some(b"pong") => Some(answer),
        other => {
            let reason = answer
                .get("error-reason")
                .and_then(Value::as_bytes)
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            log::error!(
                "rtpengine: {} answered {}: {reason}",
                node.url,
                other.map(String::from_utf8_lossy).unwrap_or_default()
            );
            None
        }
    }
}

fn source_family(ctx: &MsgCtx<'_>) -> &'static str {
    if ctx.src.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    }
}

/// The tags in the order rtpengine wants: `from-tag` is the offerer's. A
/// request that offers and a reply that answers keep From/To; an ACK that
/// answers or a reply that offers (late offer) swap them.
fn tags(ctx: &MsgCtx<'_>, side: Side) -> Option<(Bytes, Bytes, Option<Bytes>)> {
    let (call_id, from, to) = dialog_ids(ctx)?;
    let keep = ctx.msg.is_request() == (side == Side::Offer);
    if keep {
        Some((call_id, from, to))
    } else {
        let to = to?;
        Some((call_id, to, Some(from)))
    }
}

fn engage(ctx: &mut MsgCtx<'_>, args: &Args, side: Side) -> i32 {
    if Sdp::parse(ctx.msg.body()).is_none() {
        return -1;
    }
    let Some((call_id, from_tag, to_tag)) = tags(ctx, side) else {
        return -1;
    };
    let command = if side == Side::Offer {
        "offer"
    } else {
        "answer"
    };
    let mut dict = build_request(command, &flags_text(ctx, args));
    dict.push((b"call-id".to_vec(), Value::str(&call_id)));
    dict.push((b"from-tag".to_vec(), Value::str(&from_tag)));
    if let Some(t) = &to_tag {
        dict.push((b"to-tag".to_vec(), Value::str(t)));
    }
    dict.push((
        b"received-from".to_vec(),
        Value::List(vec![
            Value::str(source_family(ctx)),
            Value::str(ctx.src.ip().to_string()),
        ]),
    ));
    dict.push((b"sdp".to_vec(), Value::str(ctx.msg.body())));
    let Some(answer) = exchange(ctx, &call_id, dict) else {
        return -1;
    };
    let Some(sdp) = answer.get("sdp").and_then(Value::as_bytes) else {
        log::error!("rtpengine: {command} answer has no sdp");
        return -1;
    };
    let msg = ctx.msg;
    ctx.edits.set_body(msg, Bytes::copy_from_slice(sdp));
    1
}

fn delete(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some((call_id, from_tag, to_tag)) = dialog_ids(ctx) else {
        return -1;
    };
    let mut dict = build_request("delete", &flags_text(ctx, args));
    dict.push((b"call-id".to_vec(), Value::str(&call_id)));
    dict.push((b"from-tag".to_vec(), Value::str(&from_tag)));
    if let Some(t) = &to_tag {
        dict.push((b"to-tag".to_vec(), Value::str(t)));
    }
    match exchange(ctx, &call_id, dict) {
        Some(_) => 1,
        None => -1,
    }
}

fn rtpengine_offer(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    engage(ctx, args, Side::Offer)
}

fn rtpengine_answer(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    engage(ctx, args, Side::Answer)
}

fn rtpengine_delete(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    delete(ctx, args)
}

fn rtpengine_manage(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match manage_action(ctx) {
        Manage::Engage(side) => engage(ctx, args, side),
        Manage::Delete => delete(ctx, args),
        Manage::Nothing => -1,
    }
}

/// A constant flags string must be words (no quotes or control characters).
fn fixup_flags(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(Arg::Str(s)) = args.get(0) {
        if s.iter()
            .any(|b| b.is_ascii_control() && !b.is_ascii_whitespace())
        {
            return Err("the flags contain control characters".into());
        }
    }
    Ok(())
}

const WHERE: RouteMask = RouteMask::REQUEST
    .or(RouteMask::ONREPLY)
    .or(RouteMask::FAILURE)
    .or(RouteMask::BRANCH);

pub static MODULE: ModuleDef = ModuleDef {
    name: "rtpengine",
    aliases: &[],
    functions: &[
        f(
            "rtpengine_manage",
            0,
            1,
            WHERE,
            Some(fixup_flags),
            rtpengine_manage,
        ),
        f(
            "rtpengine_offer",
            0,
            1,
            WHERE,
            Some(fixup_flags),
            rtpengine_offer,
        ),
        f(
            "rtpengine_answer",
            0,
            1,
            WHERE,
            Some(fixup_flags),
            rtpengine_answer,
        ),
        f(
            "rtpengine_delete",
            0,
            1,
            WHERE,
            Some(fixup_flags),
            rtpengine_delete,
        ),
    ],
    params: &[
        p("rtpengine_sock", ParamKind::Str),
        p("rtpengine_tout_ms", ParamKind::Int),
        p("rtpengine_retr", ParamKind::Int),
        p("rtpengine_disable_tout", ParamKind::Int),
        p("queried_nodes_limit", ParamKind::Int),
        p("aggressive_redetection", ParamKind::Int),
        p("extra_id_pv", ParamKind::Str),
        p("setid_avp", ParamKind::Str),
        p("setid_default", ParamKind::Int),
        p("hash_table_size", ParamKind::Int),
        p("hash_table_tout", ParamKind::Int),
        p("force_send_interface", ParamKind::Str),
        p("read_sdp_pv", ParamKind::Str),
        p("write_sdp_pv", ParamKind::Str),
        p("rtp_inst_pvar", ParamKind::Str),
        p("db_url", ParamKind::Str),
        p("table_name", ParamKind::Str),
        p("ping_mode", ParamKind::Int),
        p("rtpengine_allow_op", ParamKind::Int),
        p("control_cmd_tos", ParamKind::Int),
        p("mos_min_pv", ParamKind::Str),
        p("mos_max_pv", ParamKind::Str),
        p("mos_average_pv", ParamKind::Str),
    ],
    always: false,
};

#[cfg(test)]
mod tests;
