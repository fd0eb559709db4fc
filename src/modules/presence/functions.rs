//! `handle_publish([sender_uri])` and `handle_subscribe([watcher_uri])`: the
//! request read into [`PublishReq`] / [`SubscribeReq`], the decision of
//! [`Presence`] answered (on the transaction when the script made one, as
//! Kamailio's `slb.freply`), and each NOTIFY sent as a tm local client
//! transaction from this core.

use std::borrow::Cow;

use bytes::Bytes;

use super::notify::NotifyJob;
use super::state::{
    pres_uri, Event, Presence, PublishOutcome, PublishReq, SubscribeOutcome, SubscribeReq,
    ALLOW_EVENTS,
};
use crate::modules::core::forward;
use crate::script::ctx::MsgCtx;
use crate::script::registry::Args;
use crate::sip::nameaddr::{contacts, NameAddr};
use crate::sip::{HeaderName, Proto};
use crate::tm::Target;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn presence<'e>(ctx: &MsgCtx<'e>) -> Option<&'e Presence> {
    ctx.env.services.get::<Presence>()
}

/// An error answer as Kamailio's `send_error_reply`: a 489 lists the
/// events, a 423 the shortest interval.
fn error_reply(ctx: &mut MsgCtx<'_>, code: u16, reason: &str, min_expires: Option<u32>) -> i32 {
    let hdr = match (code, min_expires) {
        (489, _) => format!("Allow-Events: {ALLOW_EVENTS}\r\n"),
        (423, Some(m)) => format!("Min-Expires: {m}\r\n"),
        _ => String::new(),
    };
    crate::modules::sl::freply(ctx, code, reason.as_bytes(), hdr.as_bytes());
    -1
}

/// The Expires header: `None` without one (or empty), `Err` when it is not a number.
fn expires_header(ctx: &MsgCtx<'_>) -> Result<Option<u32>, ()> {
    match ctx.msg.header_value(HeaderName::Expires) {
        None => Ok(None),
        Some(v) if crate::sip::scan::trim_lws(v).is_empty() => Ok(None),
        Some(v) => crate::sip::headers::expires(v).map(Some).map_err(|_| ()),
    }
}

/// The Event header's package, if this server knows it.
fn event(ctx: &MsgCtx<'_>) -> Option<(Event, Option<String>)> {
    let v = ctx.msg.header_value(HeaderName::Event)?;
    let ev = Event::parse(v)?;
    let id = v.split(|&b| b == b';').skip(1).find_map(|p| {
        let p = crate::sip::scan::trim_lws(p);
        let (n, val) = p.split_at(p.iter().position(|&b| b == b'=').unwrap_or(p.len()));
        n.eq_ignore_ascii_case(b"id")
            .then(|| text(crate::sip::scan::trim_lws(val.get(1..).unwrap_or(b""))))
    });
    Some((ev, id))
}

/// `(user, host)` of the Request-URI (after the script's changes).
fn ruri_user_host(ctx: &MsgCtx<'_>) -> Option<(String, String)> {
    let ruri = ctx.ruri();
    let u = crate::sip::uri::Uri::parse(ruri).ok()?;
    Some((text(u.user().unwrap_or(b"")), text(u.host_raw())))
}

/// Unix seconds now.
fn unix(ctx: &MsgCtx<'_>) -> i64 {
    ctx.unix_now.as_secs() as i64
}

/// `handle_publish([sender_uri])`.
pub(super) fn handle_publish(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(p) = presence(ctx) else {
        log::error!("handle_publish: the presence module is not set up");
        return -1;
    };
    let Some((ev @ Event::Presence, _)) = event(ctx) else {
        // presence.winfo documents are made here, never published.
        return error_reply(ctx, 489, "Bad Event", None);
    };
    let if_match = ctx
        .msg
        .headers_named(b"SIP-If-Match")
        .next()
        .map(|h| text(crate::sip::scan::trim_lws(ctx.msg.value(h))));
    let Ok(expires) = expires_header(ctx) else {
        return error_reply(ctx, 500, "Server Internal Error", None);
    };
    let Some((user, domain)) = ruri_user_host(ctx) else {
        return error_reply(ctx, 400, "Bad request", None);
    };
    let sender = match args.len() {
        0 => String::new(),
        _ => {
            let s = args.str(ctx, 0).into_owned();
            if crate::sip::uri::Uri::parse(&s).is_err() {
                return error_reply(ctx, 400, "Bad request", None);
            }
            text(&s)
        }
    };
    let body = Bytes::copy_from_slice(ctx.msg.body());
    let req = PublishReq {
        user,
        domain,
        event: ev,
        if_match,
        expires,
        body,
        sender,
        now: unix(ctx),
    };
    match p.publish(req) {
        PublishOutcome::Error(code, reason) => error_reply(ctx, code, reason, None),
        PublishOutcome::Ok {
            expires,
            etag,
            notify,
        } => {
            let hdrs = format!("Expires: {expires}\r\nSIP-ETag: {etag}\r\n");
            crate::modules::sl::freply(ctx, 200, b"OK", hdrs.as_bytes());
            for job in &notify {
                send_notify(ctx, job);
            }
            1
        }
    }
}

/// `handle_subscribe([watcher_uri])`.
pub(super) fn handle_subscribe(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(p) = presence(ctx) else {
        log::error!("handle_subscribe: the presence module is not set up");
        return -1;
    };
    let Some((ev, event_id)) = event(ctx) else {
        return error_reply(ctx, 489, "Bad Event", None);
    };
    match subscribe_req(ctx, args, ev, event_id) {
        Err(code) => {
            let reason = if code == 400 {
                "Bad request"
            } else {
                "Server Internal Error"
            };
            error_reply(ctx, code, reason, None)
        }
        Ok(req) => match p.subscribe(req) {
            SubscribeOutcome::Error(code, reason) => error_reply(ctx, code, reason, None),
            SubscribeOutcome::TooBrief(min) => {
                error_reply(ctx, 423, "Interval Too Brief", Some(min))
            }
            SubscribeOutcome::Ok {
                expires,
                local_contact,
                notify,
                others,
            } => {
                let transport = match (local_contact.contains(";transport="), ctx.proto) {
                    (true, _) => "",
                    (false, Proto::Tcp) => ";transport=tcp",
                    (false, Proto::Tls) => ";transport=tls",
                    (false, Proto::Ws | Proto::Wss) => ";transport=ws",
                    (false, _) => "",
                };
                let hdrs =
                    format!("Expires: {expires}\r\nContact: <{local_contact}{transport}>\r\n");
                crate::modules::sl::freply(ctx, 200, b"OK", hdrs.as_bytes());
                send_notify(ctx, &notify);
                for job in &others {
                    send_notify(ctx, job);
                }
                1
            }
        },
    }
}

/// The subscription the SUBSCRIBE asks for; `Err(code)` when a part is
/// missing (Kamailio answers 500 for most, 400 for a bad watcher URI).
fn subscribe_req(
    ctx: &mut MsgCtx<'_>,
    args: &Args,
    ev: Event,
    event_id: Option<String>,
) -> Result<SubscribeReq, u16> {
    let expires = expires_header(ctx).map_err(|_| 500u16)?;
    let msg = ctx.msg;
    let to = msg.header_value(HeaderName::To).ok_or(500u16)?;
    let to = NameAddr::parse(to).map_err(|_| 500u16)?;
    let to_uri = to.uri().map_err(|_| 500u16)?;
    let from = msg.header_value(HeaderName::From).ok_or(500u16)?;
    let from = NameAddr::parse(from).map_err(|_| 500u16)?;
    let from_uri = from.uri().map_err(|_| 500u16)?;
    let from_tag = from
        .tag()
        .filter(|t| !t.is_empty())
        .map(text)
        .ok_or(500u16)?;
    let (watcher_user, watcher_domain) = if args.is_empty() {
        (
            text(from_uri.user().unwrap_or(b"")),
            text(from_uri.host_raw()),
        )
    } else {
        let w = args.str(ctx, 0);
        let u = crate::sip::uri::Uri::parse(&w).map_err(|_| 400u16)?;
        (text(u.user().unwrap_or(b"")), text(u.host_raw()))
    };
    let callid = text(msg.call_id().ok_or(500u16)?);
    let cseq = msg.header_value(HeaderName::CSeq).ok_or(500u16)?;
    let remote_cseq = crate::sip::headers::CSeq::parse(cseq)
        .map_err(|_| 500u16)?
        .seq;
    let contact_value = msg.header_value(HeaderName::Contact).ok_or(500u16)?;
    let contact = match contacts(contact_value).next() {
        Some(Ok(c)) => c.name_addr().map(|a| text(a.uri_raw())).ok_or(500u16)?,
        _ => return Err(500),
    };
    let in_dialog = to.tag().is_some_and(|t| !t.is_empty());
    let to_tag = match to.tag().filter(|t| !t.is_empty()) {
        Some(t) => text(t),
        None => local_to_tag(ctx),
    };
    let (pres_uri, record_route) = if in_dialog {
        (String::new(), String::new())
    } else {
        let (user, host) = ruri_user_host(ctx).ok_or(500u16)?;
        let rr: Vec<Cow<'_, str>> = msg
            .headers_of(HeaderName::RecordRoute)
            .map(|h| String::from_utf8_lossy(crate::sip::scan::trim_lws(msg.value(h))))
            .collect();
        (pres_uri(&user, &host), rr.join(","))
    };
    let user_agent = msg
        .header_value(HeaderName::UserAgent)
        .map(|v| text(crate::sip::scan::trim_lws(v)))
        .unwrap_or_default();
    let p = presence(ctx).ok_or(500u16)?;
    Ok(SubscribeReq {
        event: ev,
        event_id,
        expires,
        pres_uri,
        to_user: text(to_uri.user().unwrap_or(b"")),
        to_domain: text(to_uri.host_raw()),
        from_user: text(from_uri.user().unwrap_or(b"")),
        from_domain: text(from_uri.host_raw()),
        watcher_user,
        watcher_domain,
        to_tag,
        in_dialog,
        callid,
        from_tag,
        remote_cseq,
        contact,
        record_route,
        socket: socket_str(ctx),
        local_contact: p
            .cfg
            .server_address
            .clone()
            .unwrap_or_else(|| local_contact(ctx)),
        user_agent,
        now: unix(ctx),
    })
}

/// The To-tag the reply will carry: tm's when the request has a
/// transaction, sl's otherwise.
fn local_to_tag(ctx: &mut MsgCtx<'_>) -> String {
    if let (Some(tid), Some(table)) = (ctx.t.tid, ctx.core.tm.as_ref()) {
        return text(&table.reply_to_tag(tid));
    }
    let mut tag = Vec::new();
    crate::modules::sl::local_to_tag(ctx.env, ctx.msg, &mut tag);
    text(&tag)
}

/// `proto:ip:port` of the socket the request came in on (`socket_info`).
fn socket_str(ctx: &MsgCtx<'_>) -> String {
    let addr = ctx
        .env
        .sockets
        .get(usize::from(ctx.socket))
        .map_or(ctx.local, |s| s.addr);
    let addr = if addr.ip().is_unspecified() {
        ctx.local
    } else {
        addr
    };
    let mut host = Vec::new();
    crate::script::ctx::push_host(&mut host, addr.ip());
    format!(
        "{}:{}:{}",
        ctx.proto.via_name().to_ascii_lowercase(),
        text(&host),
        addr.port()
    )
}

/// `sip:ip:port;transport=x` of the socket (Kamailio's
/// `ps_fill_local_contact`), the advertised address when there is one.
fn local_contact(ctx: &MsgCtx<'_>) -> String {
    let info = ctx.env.sockets.get(usize::from(ctx.socket));
    let (host, port) = match info.and_then(|s| s.advertise.clone()) {
        Some((h, p)) => (h, p),
        None => {
            let addr = info.map_or(ctx.local, |s| s.addr);
            let ip = if addr.ip().is_unspecified() {
                ctx.local.ip()
            } else {
                addr.ip()
            };
            let mut h = Vec::new();
            crate::script::ctx::push_host(&mut h, ip);
            (text(&h), addr.port())
        }
    };
    let transport = match ctx.proto {
        Proto::Udp => "udp",
        Proto::Tcp => "tcp",
        Proto::Tls => "tls",
        Proto::Sctp => "sctp",
        Proto::Ws | Proto::Wss => "ws",
    };
    format!("sip:{host}:{port};transport={transport}")
}

/// Sends `job` as a NOTIFY (a tm local client transaction of this core):
/// toward the first route of the subscription's route set, else its Contact.
fn send_notify(ctx: &mut MsgCtx<'_>, job: &NotifyJob) -> bool {
    let hop_uri = job.next_hop();
    let saved = ctx.dst_uri.replace(Bytes::from(hop_uri.into_bytes()));
    let saved_force = ctx.force_socket.take();
    let hop = forward::resolve_hop(ctx, None, None, None);
    ctx.dst_uri = saved;
    ctx.force_socket = saved_force;
    let Ok(hop) = hop else {
        log::warn!("presence: no way to send the NOTIFY to {}", job.contact);
        return false;
    };
    let target = Target {
        dst: hop.dst,
        proto: hop.proto,
        socket: Some(hop.socket),
        local: hop.local(ctx),
        conn: None,
        flags: Default::default(),
    };
    let via_host = crate::modules::uac::send::via_host(ctx, &hop);
    let user_agent = ctx.env.user_agent.clone();
    let now = ctx.now;
    crate::modules::tm::table(ctx);
    let Some(table) = ctx.core.tm.as_mut() else {
        return false;
    };
    let built = table.create_local(
        target,
        |branch| job.build(hop.proto, &via_host, branch.as_bytes(), &user_agent),
        Default::default(),
        now,
        ctx.out,
    );
    if let Err(e) = &built {
        log::error!("presence: NOTIFY not sent: {e:?}");
    }
    built.is_ok()
}
