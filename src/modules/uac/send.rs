//! `uac_req_send()` and `$uac_req(...)`: the script fills `$uac_req`
//! (per core, as Kamailio's per process) and sends it as a request of the
//! proxy's own, through a tm client transaction
//! ([`crate::tm::TransactionTable::create_local`]): retransmitted, timed out
//! with 408. With `$uac_req(evroute)` set, `event_route[uac:reply]` runs on
//! its final response with `$uac_req(evcode)` (the status) and
//! `$uac_req(evtype)` (1 a received reply, 2 a local one: the timeout).
//!
//! The request, as Kamailio's tm writes it:
//!
//! ```text
//! METHOD ruri SIP/2.0
//! Via: SIP/2.0/UDP <socket>;branch=z9hG4bK…
//! To: <turi>                 (ruri when unset)
//! From: <furi>;tag=…         (ruri when unset)
//! CSeq: 10 METHOD
//! Call-ID: …                 ($uac_req(callid) when set)
//! Max-Forwards: 70
//! Content-Length: N
//! User-Agent: …
//! hdrs
//!
//! body
//! ```
//!
//! Not done: the second attempt with `auser`/`apasswd` after a 401/407,
//! and `$uac_req(sock)` choosing the socket (both are kept, not used).

use bytes::Bytes;

use crate::modules::core::forward;
use crate::modules::core::hash::{fnv1a, push_hex};
use crate::script::ctx::MsgCtx;
use crate::script::registry::Args;
use crate::script::value::Value;
use crate::tm::Target;

/// Kamailio's limits (uac_send.c): longer values are refused.
const MAX_URI: usize = 1024;
const MAX_HDRS: usize = 2048;
const MAX_BODY: usize = 4086;
const MAX_METHOD: usize = 32;

/// The request being prepared (`$uac_req`), and what an event route sees.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UacReq {
    pub flags: i64,
    pub method: Vec<u8>,
    pub ruri: Vec<u8>,
    pub turi: Vec<u8>,
    pub furi: Vec<u8>,
    pub ouri: Vec<u8>,
    pub hdrs: Vec<u8>,
    pub body: Vec<u8>,
    pub callid: Vec<u8>,
    pub auser: Vec<u8>,
    pub apasswd: Vec<u8>,
    pub sock: Vec<u8>,
    pub evparam: Vec<u8>,
    pub evroute: i64,
    pub evcode: i64,
    pub evtype: i64,
}

/// A `$uac_req(name)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    All,
    Ruri,
    Turi,
    Furi,
    Hdrs,
    Body,
    Ouri,
    Method,
    Evroute,
    Auser,
    Apasswd,
    Callid,
    Sock,
    Evparam,
    Evcode,
    Evtype,
}

/// The name inside `$uac_req(...)`.
pub fn resolve(name: &str) -> Result<Field, String> {
    Ok(match name.trim() {
        "all" => Field::All,
        "ruri" => Field::Ruri,
        "turi" => Field::Turi,
        "furi" => Field::Furi,
        "hdrs" => Field::Hdrs,
        "body" => Field::Body,
        "ouri" => Field::Ouri,
        "method" => Field::Method,
        "evroute" => Field::Evroute,
        "auser" => Field::Auser,
        "apasswd" => Field::Apasswd,
        "callid" => Field::Callid,
        "sock" => Field::Sock,
        "evparam" => Field::Evparam,
        "evcode" => Field::Evcode,
        "evtype" => Field::Evtype,
        other => return Err(format!("unknown $uac_req({other})")),
    })
}

impl UacReq {
    fn text(&mut self, f: Field) -> Option<(&mut Vec<u8>, usize)> {
        Some(match f {
            Field::Ruri => (&mut self.ruri, MAX_URI),
            Field::Turi => (&mut self.turi, MAX_URI),
            Field::Furi => (&mut self.furi, MAX_URI),
            Field::Ouri => (&mut self.ouri, MAX_URI),
            Field::Sock => (&mut self.sock, MAX_URI),
            Field::Hdrs => (&mut self.hdrs, MAX_HDRS),
            Field::Body => (&mut self.body, MAX_BODY),
            Field::Method => (&mut self.method, MAX_METHOD),
            Field::Auser => (&mut self.auser, 128),
            Field::Apasswd => (&mut self.apasswd, 64),
            Field::Callid => (&mut self.callid, 128),
            Field::Evparam => (&mut self.evparam, 128),
            _ => return None,
        })
    }

    fn number(&mut self, f: Field) -> Option<&mut i64> {
        match f {
            Field::Evroute => Some(&mut self.evroute),
            Field::Evcode => Some(&mut self.evcode),
            Field::Evtype => Some(&mut self.evtype),
            _ => None,
        }
    }
}

/// Reads `$uac_req(f)`: a string (null when empty) or a number.
pub fn read(ctx: &MsgCtx<'_>, f: Field) -> Value<'static> {
    let r = &ctx.core.uac_req;
    let text = |v: &Vec<u8>| {
        if v.is_empty() {
            Value::Null
        } else {
            Value::owned(v.clone())
        }
    };
    match f {
        Field::All => Value::Int(r.flags),
        Field::Ruri => text(&r.ruri),
        Field::Turi => text(&r.turi),
        Field::Furi => text(&r.furi),
        Field::Hdrs => text(&r.hdrs),
        Field::Body => text(&r.body),
        Field::Ouri => text(&r.ouri),
        Field::Method => text(&r.method),
        Field::Auser => text(&r.auser),
        Field::Apasswd => text(&r.apasswd),
        Field::Callid => text(&r.callid),
        Field::Sock => text(&r.sock),
        Field::Evparam => text(&r.evparam),
        Field::Evroute => Value::Int(r.evroute),
        Field::Evcode => Value::Int(r.evcode),
        Field::Evtype => Value::Int(r.evtype),
    }
}

/// Writes `$uac_req(f)`: `$null` clears it (`all`: everything but the
/// credentials and socket, as Kamailio); strings for the text fields,
/// numbers for `evroute`, `evcode`, `evtype`.
pub fn write(ctx: &mut MsgCtx<'_>, f: Field, value: Value<'_>) -> Result<(), &'static str> {
    let r = &mut ctx.core.uac_req;
    if f == Field::All {
        if value.is_null() {
            *r = UacReq {
                auser: std::mem::take(&mut r.auser),
                apasswd: std::mem::take(&mut r.apasswd),
                sock: std::mem::take(&mut r.sock),
                ..UacReq::default()
            };
        }
        return Ok(());
    }
    if let Some(n) = r.number(f) {
        *n = match value {
            Value::Null => 0,
            Value::Int(i) => i,
            _ => return Err("$uac_req: this field takes a number"),
        };
        return Ok(());
    }
    let Some((slot, max)) = r.text(f) else {
        return Err("$uac_req: unknown field");
    };
    match value {
        Value::Null => slot.clear(),
        Value::Int(_) => return Err("$uac_req: this field takes a string"),
        v => {
            let b = v.to_bytes();
            if b.len() >= max {
                return Err("$uac_req: value too long");
            }
            *slot = b.into_owned();
        }
    }
    Ok(())
}

/// `uac_req_send()`: 1 when the request went out, -1 without a method or
/// Request-URI, or when it cannot be sent.
pub(super) fn uac_req_send(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let req = ctx.core.uac_req.clone();
    if req.ruri.is_empty() || req.method.is_empty() {
        return -1;
    }
    // The next hop: the outbound URI, else the Request-URI.
    let target_uri = if req.ouri.is_empty() {
        &req.ruri
    } else {
        &req.ouri
    };
    let saved = ctx.dst_uri.replace(Bytes::copy_from_slice(target_uri));
    let hop = forward::resolve_hop(ctx, None, None, None);
    ctx.dst_uri = saved;
    let Ok(hop) = hop else {
        return -1;
    };
    let target = Target {
        dst: hop.dst,
        proto: hop.proto,
        socket: Some(hop.socket),
        local: hop.local(ctx),
        conn: None,
        flags: Default::default(),
    };
    let via_host = via_host(ctx, &hop);
    let secret = ctx.env.secret;
    let user_agent = ctx.env.user_agent.clone();
    let event = (req.evroute > 0).then(|| Box::new(req.clone()));
    let data = crate::modules::tm::TxData {
        uac_req: event,
        ..Default::default()
    };
    let now = ctx.now;
    crate::modules::tm::table(ctx);
    let Some(table) = ctx.core.tm.as_mut() else {
        return -1;
    };
    let built = table.create_local(
        target,
        |branch| {
            build(
                &req,
                &via_host,
                hop.proto,
                branch.as_bytes(),
                secret,
                &user_agent,
            )
        },
        data,
        now,
        ctx.out,
    );
    match built {
        Ok(_) => 1,
        Err(e) => {
            log::error!("uac_req_send: {e:?}");
            -1
        }
    }
}

/// `host[:port]` of our Via on the socket of `hop`.
pub(crate) fn via_host(ctx: &MsgCtx<'_>, hop: &forward::Hop) -> Vec<u8> {
    let info = &ctx.env.sockets[usize::from(hop.socket)];
    if let Some((h, p)) = &info.advertise {
        return format!("{h}:{p}").into_bytes();
    }
    let ip = hop.local_ip.unwrap_or(info.addr.ip());
    let mut out = Vec::new();
    if crate::script::ctx::omits_port(hop.proto, info.addr.port()) {
        crate::script::ctx::push_host(&mut out, ip);
    } else {
        crate::script::ctx::push_hostport(
            &mut out,
            std::net::SocketAddr::new(ip, info.addr.port()),
        );
    }
    out
}

/// The request bytes (see the module documentation).
pub fn build(
    req: &UacReq,
    via_host: &[u8],
    proto: crate::sip::Proto,
    branch: &[u8],
    secret: u64,
    user_agent: &[u8],
) -> Bytes {
    // The From tag and Call-ID come from the branch (unique per transaction).
    let mut tag = Vec::with_capacity(41);
    push_hex(&mut tag, fnv1a(secret, &[b"uac-tag-a", branch]), 16);
    push_hex(&mut tag, fnv1a(secret, &[b"uac-tag-b", branch]), 16);
    tag.push(b'-');
    push_hex(&mut tag, fnv1a(secret, &[b"uac-tag-c", branch]), 8);
    let callid = if req.callid.is_empty() {
        let mut c = Vec::with_capacity(40);
        push_hex(&mut c, fnv1a(secret, &[b"uac-callid", branch]), 16);
        c.push(b'@');
        c.extend_from_slice(via_host);
        c
    } else {
        req.callid.clone()
    };
    let first = Head {
        via_host,
        proto,
        branch,
        tag: &tag,
        callid: &callid,
        cseq: 10,
        user_agent,
    };
    build_with(req, &first)
}

/// What tm writes in a request of the proxy's own besides `$uac_req`.
pub struct Head<'a> {
    pub via_host: &'a [u8],
    pub proto: crate::sip::Proto,
    pub branch: &'a [u8],
    pub tag: &'a [u8],
    pub callid: &'a [u8],
    pub cseq: u32,
    pub user_agent: &'a [u8],
}

/// The request bytes with the Via, From tag, Call-ID and CSeq given (uac
/// registrations keep them across a challenge).
pub fn build_with(req: &UacReq, head: &Head<'_>) -> Bytes {
    let turi = if req.turi.is_empty() {
        &req.ruri
    } else {
        &req.turi
    };
    let furi = if req.furi.is_empty() {
        &req.ruri
    } else {
        &req.furi
    };
    let mut m = Vec::with_capacity(512 + req.hdrs.len() + req.body.len());
    let line = |m: &mut Vec<u8>, parts: &[&[u8]]| {
        for p in parts {
            m.extend_from_slice(p);
        }
        m.extend_from_slice(b"\r\n");
    };
    line(&mut m, &[&req.method, b" ", &req.ruri, b" SIP/2.0"]);
    line(
        &mut m,
        &[
            b"Via: SIP/2.0/",
            head.proto.via_name().as_bytes(),
            b" ",
            head.via_host,
            b";branch=",
            head.branch,
        ],
    );
    line(&mut m, &[b"To: <", turi, b">"]);
    line(&mut m, &[b"From: <", furi, b">;tag=", head.tag]);
    let cseq = itoa::Buffer::new().format(head.cseq).as_bytes().to_vec();
    line(&mut m, &[b"CSeq: ", &cseq, b" ", &req.method]);
    line(&mut m, &[b"Call-ID: ", head.callid]);
    line(&mut m, &[b"Max-Forwards: 70"]);
    line(
        &mut m,
        &[
            b"Content-Length: ",
            itoa::Buffer::new().format(req.body.len()).as_bytes(),
        ],
    );
    if !head.user_agent.is_empty() {
        line(&mut m, &[b"User-Agent: ", head.user_agent]);
    }
    m.extend_from_slice(&req.hdrs);
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(&req.body);
    Bytes::from(m)
}
