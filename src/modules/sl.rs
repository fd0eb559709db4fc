//! sl: stateless replies (KAMAILIO-REFERENCE §4). A reply copies the request's
//! transaction headers, gets a To-tag that is the same for every
//! retransmission of the request (`<32 hex>.<8 hex>`), and is sent back where
//! RFC 3261 §18.2.2 and RFC 3581 say. An ACK carrying that To-tag is absorbed.

use bytes::Bytes;
use smallvec::SmallVec;

use crate::modules::core::forward;
use crate::modules::core::hash::{fnv1a, push_hex};
use crate::script::ctx::{Env, MsgCtx};
use crate::script::registry::{
    fixup_int, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::sip::nameaddr::NameAddr;
use crate::sip::reply::{self, ReplySpec};
use crate::sip::{HeaderName, Message, Transmit};

/// The first part of every local To-tag: the same for all replies of this server.
fn tag_prefix(env: &Env, out: &mut Vec<u8>) {
    out.extend_from_slice(&prefix_digits(env));
}

/// [`tag_prefix`] on the stack: 32 lower-case hex digits.
fn prefix_digits(env: &Env) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 32];
    let halves = [
        fnv1a(env.secret, &[b"ringsip-sl-prefix-a"]),
        fnv1a(env.secret, &[b"ringsip-sl-prefix-b"]),
    ];
    for (half, v) in digits.chunks_mut(16).zip(halves) {
        for (i, d) in half.iter_mut().enumerate() {
            *d = HEX[((v >> ((15 - i) * 4)) & 0xf) as usize];
        }
    }
    digits
}

/// The To-tag for a reply to `msg`: stable across retransmissions of the request
/// and equal for the ACK of a negative reply (same From, Call-ID, CSeq number, top Via).
pub fn local_to_tag(env: &Env, msg: &Message, out: &mut Vec<u8>) {
    tag_prefix(env, out);
    out.push(b'.');
    let from = msg.header_value(HeaderName::From).unwrap_or(b"");
    let call_id = msg.call_id().unwrap_or(b"");
    let cseq = msg.header_value(HeaderName::CSeq).unwrap_or(b"");
    let cseq_num = &cseq[..cseq
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(cseq.len())];
    let via = msg.header_value(HeaderName::Via).unwrap_or(b"");
    push_hex(out, fnv1a(env.secret, &[from, call_id, cseq_num, via]), 8);
}

/// Length of a local To-tag: 32 hex digits, `.`, 8 hex digits.
const TAG_LEN: usize = 41;

/// Whether `msg` (an ACK) acknowledges a reply this server sent statelessly.
pub fn is_ack_to_own_reply(env: &Env, msg: &Message) -> bool {
    // Most ACKs acknowledge a 2xx and carry the callee's tag: a To that does
    // not contain our tag prefix anywhere is told apart before it is parsed,
    // and a tag of another length before the request's fields are hashed.
    let Some(to) = msg.header_value(HeaderName::To) else {
        return false;
    };
    if !has_tag_shape(to) {
        return false;
    }
    let prefix = prefix_digits(env);
    if memchr::memmem::find(to, &prefix).is_none() {
        return false;
    }
    let Some(tag) = NameAddr::parse(to).ok().and_then(|na| na.tag()) else {
        return false;
    };
    if tag.len() != TAG_LEN || !tag.starts_with(&prefix) {
        return false;
    }
    let mut ours = Vec::with_capacity(TAG_LEN);
    local_to_tag(env, msg, &mut ours);
    tag == ours.as_slice()
}

/// Whether `to` holds `<32 lower-case hex digits>.` somewhere, as every To
/// carrying one of our tags does: told before the prefix is computed (two
/// keyed hashes) and searched for.
fn has_tag_shape(to: &[u8]) -> bool {
    memchr::memchr_iter(b'.', to).any(|dot| {
        dot.checked_sub(32)
            .and_then(|start| to.get(start..dot))
            .is_some_and(|d| d.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    })
}

/// Sends a stateless reply to the request in `ctx`. Returns 1, or -1 for an
/// ACK (never answered) or a request with no way back.
pub fn send_reply(ctx: &mut MsgCtx<'_>, code: u16, reason: &[u8]) -> i32 {
    send_reply_with(ctx, code, reason, b"")
}

/// [`send_reply`] with whole header lines (`Name: value\r\n`) added
/// (registrar's Contact list, auth challenges).
pub fn send_reply_with(
    ctx: &mut MsgCtx<'_>,
    code: u16,
    reason: &[u8],
    extra_headers: &[u8],
) -> i32 {
    if !ctx.msg.is_request() || ctx.msg.method_bytes() == b"ACK" {
        return -1;
    }
    // Kamailio builds a reply from the whole parsed header section: a
    // header field its parser refuses leaves it nothing to send.
    if let Some(at) = ctx.msg.broken_header() {
        log::error!("sl: cannot build a reply, header field #{at} does not parse");
        return -1;
    }
    let Some(dst) = forward::reply_destination(ctx) else {
        return -1;
    };
    // As Kamailio's own replies have it: rport filled where it is, received at the end.
    let via_fix = forward::received_fix(ctx, forward::ViaFixAt::ParamsEnd);
    let via_edits: SmallVec<[(std::ops::Range<usize>, &[u8]); 2]> = via_fix
        .iter()
        .map(|(r, d)| (r.clone(), d.as_ref()))
        .collect();
    let mut tag = Vec::new();
    if code >= 180 {
        local_to_tag(ctx.env, ctx.msg, &mut tag);
    }
    // append_to_reply() headers and a set_reply_body() body go into every local reply.
    let mut extra = ctx.state.reply_headers.clone();
    extra.extend_from_slice(extra_headers);
    let body = ctx.state.reply_body.clone();
    let spec = ReplySpec {
        code,
        reason,
        to_tag: (!tag.is_empty()).then_some(tag.as_slice()),
        via_edits: &via_edits,
        extra_headers: &extra,
        server: &ctx.env.server_header,
        body: body.as_ref().map(|(b, t)| (b.as_ref(), t.as_ref())),
    };
    let out = &mut ctx.core.scratch;
    reply::build(ctx.msg, &spec, out);
    let data = Bytes::copy_from_slice(out);
    ctx.out.push(Transmit {
        data,
        dst,
        proto: ctx.proto,
        socket: Some(ctx.socket),
        local: Some(ctx.local),
        // RFC 3261 §18.2.2: over a stream, back on the request's connection.
        conn: ctx.conn,
        flags: ctx.state.reply_flags(),
    });
    1
}

/// `sl_send_reply(code, reason)`; code and reason may hold pseudo-variables.
fn sl_send_reply(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let code = match args.int(ctx, 0) {
        Some(c) if (100..=699).contains(&c) => c as u16,
        other => {
            log::error!("sl_send_reply: invalid reply code {other:?}");
            return -1;
        }
    };
    let reason = args.str(ctx, 1).into_owned();
    send_reply(ctx, code, &reason)
}

/// A reply the way modules send theirs (registrar, auth): on the request's
/// transaction when there is one (tm), else stateless, with whole header
/// lines `extra_headers` added.
pub fn freply(ctx: &mut MsgCtx<'_>, code: u16, reason: &[u8], extra_headers: &[u8]) -> i32 {
    if ctx.t.tid.is_none() && ctx.route_type == crate::script::registry::RouteType::Request {
        return send_reply_with(ctx, code, reason, extra_headers);
    }
    crate::modules::tm::reply_with(ctx, code, reason, extra_headers)
}

/// `send_reply(code, reason)`: on the transaction when there is one (tm),
/// else stateless.
fn send_reply_fn(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if ctx.t.tid.is_none() && ctx.route_type == crate::script::registry::RouteType::Request {
        return sl_send_reply(ctx, args);
    }
    let code = match args.int(ctx, 0) {
        Some(c) if (100..=699).contains(&c) => c as u16,
        _ => return -1,
    };
    let reason = args.str(ctx, 1).into_owned();
    freply(ctx, code, &reason, b"")
}

/// `sl_reply_error()`: a reply derived from the error code of the action just
/// before it (KAMAILIO-REFERENCE §4), with ` (N/SL)` after the reason.
fn sl_reply_error(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let (code, reason) = match ctx.retcode {
        -477 => (477, "Unfortunately error on sending to next hop occurred"),
        -478 => (478, "Unresolvable destination"),
        -479 => (479, "Unable to parse the URI"),
        -400 => (400, "Bad Request"),
        -487 => (487, "Transaction canceled"),
        _ => (500, "I'm terribly sorry, server error occurred"),
    };
    // The number is the internal error's (Kamailio's E_UNSPEC, 1, when there is none).
    let number = if code == 500 { 1 } else { code };
    let text = format!("{reason} ({number}/SL)");
    send_reply(ctx, code, text.as_bytes())
}

fn fixup_reply(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(crate::script::registry::Arg::Str(_)) = args.get(0) {
        fixup_int(args, 0)?;
        if let Some(crate::script::registry::Arg::Int(c)) = args.get(0) {
            if !(100..=699).contains(c) {
                return Err(format!("reply code {c} is not in 100..699"));
            }
        }
    }
    Ok(())
}

const REQ: RouteMask = RouteMask::REQUEST;

pub static MODULE: ModuleDef = ModuleDef {
    name: "sl",
    aliases: &[],
    functions: &[
        FunctionDef {
            name: "sl_reply_error",
            min_args: 0,
            max_args: 0,
            routes: REQ,
            fixup: None,
            call: sl_reply_error,
        },
        FunctionDef {
            name: "sl_send_reply",
            min_args: 2,
            max_args: 2,
            routes: REQ,
            fixup: Some(fixup_reply),
            call: sl_send_reply,
        },
        FunctionDef {
            name: "sl_reply",
            min_args: 2,
            max_args: 2,
            routes: REQ,
            fixup: Some(fixup_reply),
            call: sl_send_reply,
        },
        // Without a transaction, send_reply is stateless (tm makes it stateful when one exists).
        FunctionDef {
            name: "send_reply",
            min_args: 2,
            max_args: 2,
            routes: RouteMask::REQUEST
                .or(RouteMask::FAILURE)
                .or(RouteMask::ONREPLY),
            fixup: Some(fixup_reply),
            call: send_reply_fn,
        },
    ],
    params: &[
        ParamDef {
            name: "default_code",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "default_reason",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "bind_tm",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "rich_redirect",
            kind: ParamKind::Int,
        },
    ],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> Message {
        Message::parse(Bytes::from(text.replace('\n', "\r\n"))).expect("parses")
    }

    fn ack(to_tag: &str) -> Message {
        msg(&format!(
            "ACK sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKack1
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>;tag={to_tag}
Call-ID: sl-ack-1
CSeq: 7 ACK
Content-Length: 0

"
        ))
    }

    #[test]
    fn ack_to_own_reply_is_told_by_its_to_tag() {
        let env = Env::default();
        let mut hex = Vec::new();
        push_hex(&mut hex, fnv1a(env.secret, &[b"ringsip-sl-prefix-a"]), 16);
        push_hex(&mut hex, fnv1a(env.secret, &[b"ringsip-sl-prefix-b"]), 16);
        assert_eq!(prefix_digits(&env).as_slice(), hex.as_slice());
        let invite = msg("INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKack1
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>
Call-ID: sl-ack-1
CSeq: 7 INVITE
Content-Length: 0

");
        let mut tag = Vec::new();
        local_to_tag(&env, &invite, &mut tag);
        assert_eq!(tag.len(), TAG_LEN);
        let tag = String::from_utf8(tag).unwrap();
        assert!(is_ack_to_own_reply(&env, &ack(&tag)), "our tag: {tag}");

        // The last digit differs: the hash of the request's fields decides.
        let last = if tag.ends_with('0') { '1' } else { '0' };
        let other = format!("{}{last}", &tag[..TAG_LEN - 1]);
        assert!(!is_ack_to_own_reply(&env, &ack(&other)));
        // Our length, another prefix.
        let first = if tag.starts_with('f') { '0' } else { 'f' };
        let foreign = format!("{first}{}", &tag[1..]);
        assert!(!is_ack_to_own_reply(&env, &ack(&foreign)));
        // A callee's tag (the ACK of a 2xx) and no tag at all.
        assert!(!is_ack_to_own_reply(&env, &ack("1SIPpTag01")));
        let no_tag = msg("ACK sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKack1
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>
Call-ID: sl-ack-1
CSeq: 7 ACK
Content-Length: 0

");
        assert!(!is_ack_to_own_reply(&env, &no_tag));
        // Our tag behind a display name and URI with dots of their own.
        let dotted = msg(&format!(
            "ACK sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKack1
From: <sip:alice@example.com>;tag=a1
To: \"B. Bob\" <sip:bob.b@a.b.example.com:5060>;tag={tag}
Call-ID: sl-ack-1
CSeq: 7 ACK
Content-Length: 0

"
        ));
        let mut t2 = Vec::new();
        local_to_tag(&env, &dotted, &mut t2);
        assert_eq!(t2, tag.as_bytes(), "the To does not enter the tag");
        assert!(is_ack_to_own_reply(&env, &dotted));
    }

    /// Kamailio cannot build a reply for a request with a header field its
    /// parser refuses (here a second CSeq past the required ones): -1,
    /// nothing sent (checked live).
    #[test]
    fn no_reply_to_a_request_with_a_broken_header() {
        let text = "OPTIONS sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKb1
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>
Call-ID: sl-broken
CSeq: 7 OPTIONS
X-After: yes
CSeq: 8 OPTIONS
Content-Length: 0

";
        let mut h = crate::modules::testutil::Harness::new(text);
        let mut ctx = h.ctx();
        assert_eq!(send_reply(&mut ctx, 200, b"OK"), -1);
        assert!(h.out.is_empty());
        let mut h = crate::modules::testutil::Harness::new(&text.replace("CSeq: 8 OPTIONS\n", ""));
        let mut ctx = h.ctx();
        assert_eq!(send_reply(&mut ctx, 200, b"OK"), 1);
        assert_eq!(h.out.len(), 1);
    }

    #[test]
    fn tag_shape_is_32_hex_digits_then_a_dot() {
        let hex32 = "0123456789abcdef0123456789abcdef";
        assert!(has_tag_shape(
            format!("<sip:b@x>;tag={hex32}.12345678").as_bytes()
        ));
        assert!(has_tag_shape(format!("{hex32}.").as_bytes()));
        assert!(!has_tag_shape(format!("{}.", &hex32[1..]).as_bytes()));
        assert!(!has_tag_shape(
            format!("{}.", hex32.to_uppercase()).as_bytes()
        ));
        assert!(!has_tag_shape(b"<sip:bob@127.0.0.1:5062>;tag=1SIPpTag01"));
        assert!(!has_tag_shape(b""));
        assert!(!has_tag_shape(b"."));
    }
}
