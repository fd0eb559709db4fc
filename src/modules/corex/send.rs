//! corex sending and socket functions (KAMAILIO-REFERENCE §8): `send_udp`
//! (alias `send`) and `send_tcp` relay a raw copy of the received message
//! (no Via added), `send_data` and `sendx` send arbitrary bytes,
//! `set_send_socket`, `set_recv_socket`, `set_source_address`, and
//! `forward_reply()`. They queue transmissions in `ctx.out`; the runtime
//! sends them (through the outgoing intercept stage like everything else).

use std::net::SocketAddr;

use bytes::Bytes;

use crate::modules::core::forward::{self, resolve_hop};
use crate::modules::core::send::SocketSpec;
use crate::script::ctx::{MsgCtx, ReadCache};
use crate::script::registry::{Arg, Args, ModParams};
use crate::sip::uri::{Scheme, Uri};
use crate::sip::Proto;

/// Splits `host[:port]` (IPv6 in brackets); `None` for a bad port.
pub fn split_host_port(s: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let s = s.trim_ascii();
    let port_of = |p: &[u8]| std::str::from_utf8(p).ok()?.parse::<u16>().ok();
    if let Some(rest) = s.strip_prefix(b"[") {
        let end = rest.iter().position(|&b| b == b']')?;
        let host = &s[..end + 2];
        return match &rest[end + 1..] {
            [] => Some((host, None)),
            [b':', port @ ..] => Some((host, Some(port_of(port)?))),
            _ => None,
        };
    }
    // A bare IPv6 address has several colons and no port.
    if s.iter().filter(|&&b| b == b':').count() > 1 {
        return Some((s, None));
    }
    match s.iter().rposition(|&b| b == b':') {
        Some(i) => Some((&s[..i], Some(port_of(&s[i + 1..])?))),
        None => Some((s, None)),
    }
}

/// The message as received, unchanged.
fn raw_copy(ctx: &MsgCtx<'_>) -> Bytes {
    let msg = ctx.msg;
    msg.buf().slice(..msg.len().min(msg.buf().len()))
}

/// `send_udp([host[:port]])` / `send_tcp(…)`: without an argument, to `$du`
/// or the Request-URI. Port 5060 unless given.
fn send_raw(ctx: &mut MsgCtx<'_>, args: &Args, proto: Proto) -> i32 {
    let target = (!args.is_empty()).then(|| args.str(ctx, 0).into_owned());
    let (host, port) = match target.as_deref().map(split_host_port) {
        None => (None, None),
        Some(Some((h, p))) => (Some(h), p),
        Some(None) => {
            log::warn!(
                "send: bad host[:port] {:?}",
                String::from_utf8_lossy(target.as_deref().unwrap_or(b""))
            );
            return -1;
        }
    };
    let hop = match resolve_hop(ctx, host, port, Some(proto)) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let t = hop.transmit(ctx, raw_copy(ctx));
    ctx.out.push(t);
    1
}

pub fn send_udp(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    send_raw(ctx, args, Proto::Udp)
}

pub fn send_tcp(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    send_raw(ctx, args, Proto::Tcp)
}

/// Where a SIP URI points: host, port and transport (`sips:` means TLS).
fn uri_target(uri: &[u8]) -> Option<(Vec<u8>, Option<u16>, Proto)> {
    let u = Uri::parse(uri).ok()?;
    let proto = u.transport().unwrap_or(match u.scheme() {
        Scheme::Sips => Proto::Tls,
        _ => Proto::Udp,
    });
    Some((u.host_raw().to_vec(), u.port(), proto))
}

/// Sends `data` to `uri`, from `socket` when given; the script code.
fn send_to_uri(ctx: &mut MsgCtx<'_>, uri: &[u8], socket: Option<&SocketSpec>, data: Bytes) -> i32 {
    let Some((host, port, proto)) = uri_target(uri) else {
        log::warn!("send_data: bad URI {:?}", String::from_utf8_lossy(uri));
        return -1;
    };
    let saved = ctx.force_socket;
    if let Some(spec) = socket {
        match spec.find(ctx) {
            Some(id) => ctx.force_socket = Some(id),
            None => {
                log::warn!("sendx: {spec:?} is not a listening socket");
                return -1;
            }
        }
    }
    let hop = resolve_hop(ctx, Some(&host), port, Some(proto));
    ctx.force_socket = saved;
    match hop {
        Ok(hop) => {
            let t = hop.transmit(ctx, data);
            ctx.out.push(t);
            1
        }
        Err(code) => code,
    }
}

/// `send_data(uri, data)`.
pub fn send_data(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let uri = args.str(ctx, 0).into_owned();
    let data = Bytes::from(args.str(ctx, 1).into_owned());
    send_to_uri(ctx, &uri, None, data)
}

/// `sendx(uri, socket, data)`: the socket is `proto:ip:port`, one of ours.
pub fn sendx(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let uri = args.str(ctx, 0).into_owned();
    let sock = args.str(ctx, 1).into_owned();
    let Some(spec) = std::str::from_utf8(&sock).ok().and_then(SocketSpec::parse) else {
        log::warn!("sendx: bad socket {:?}", String::from_utf8_lossy(&sock));
        return -1;
    };
    let data = Bytes::from(args.str(ctx, 2).into_owned());
    send_to_uri(ctx, &uri, Some(&spec), data)
}

/// `is_incoming()`: 1 for a message as received, -1 for one being sent
/// (the outgoing run of `event_route[network:msg]`, `onsend_route`).
pub fn is_incoming(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    if ctx.send_dst.is_some() {
        -1
    } else {
        1
    }
}

/// `set_send_socket(s)`: `force_send_socket` under corex's name.
pub fn set_send_socket(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    crate::modules::core::send::force_send_socket(ctx, args)
}

/// `set_recv_socket(s)`: the message is handled as if it arrived on `s`.
pub fn set_recv_socket(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(spec) = args.custom::<SocketSpec>(0) else {
        return -1;
    };
    let Some(id) = spec.find(ctx) else {
        log::warn!("set_recv_socket: {spec:?} is not a listening socket");
        return -1;
    };
    let Some(info) = ctx.env.sockets.get(usize::from(id)) else {
        return -1;
    };
    ctx.socket = id;
    ctx.proto = info.proto;
    ctx.local = if info.addr.ip().is_unspecified() {
        SocketAddr::new(spec.ip, info.addr.port())
    } else {
        info.addr
    };
    ctx.cache = ReadCache::default();
    1
}

/// `set_source_address("ip:port")`: `$si`/`$sp` and where replies go. A
/// constant is checked at start-up; an address in variables
/// (`"$hdr(X-Src-Addr)"`) when the message runs (-1 when it is not ip:port).
pub fn set_source_address(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let addr = match args.custom::<SocketAddr>(0) {
        Some(addr) => *addr,
        None => {
            let text = String::from_utf8_lossy(&args.str(ctx, 0)).into_owned();
            match source_address(&text) {
                Ok(addr) => addr,
                Err(e) => {
                    log::warn!("set_source_address: {e}");
                    return -1;
                }
            }
        }
    };
    ctx.src = addr;
    ctx.cache = ReadCache::default();
    1
}

fn source_address(text: &str) -> Result<SocketAddr, String> {
    let spec = SocketSpec::parse(text)
        .filter(|s| s.proto.is_none())
        .ok_or_else(|| format!("\"{text}\" is not ip:port"))?;
    Ok(SocketAddr::new(spec.ip, spec.port.unwrap_or(5060)))
}

pub fn fixup_source_address(args: &mut Args, _: &ModParams) -> Result<(), String> {
    match args.get(0) {
        Some(Arg::Str(s)) => {
            let addr = source_address(&String::from_utf8_lossy(s))?;
            args.0[0] = Arg::Custom(Box::new(addr));
            Ok(())
        }
        Some(Arg::Fmt(_) | Arg::Pv(_)) => Ok(()),
        _ => Err("the address must be ip:port".into()),
    }
}

/// `forward_reply()`: the reply goes on along its Via path now (reply routes).
pub fn forward_reply(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    forward::reply(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port(b"10.0.0.1"), Some((&b"10.0.0.1"[..], None)));
        assert_eq!(
            split_host_port(b"10.0.0.1:5080"),
            Some((&b"10.0.0.1"[..], Some(5080)))
        );
        assert_eq!(
            split_host_port(b"[::1]:5080"),
            Some((&b"[::1]"[..], Some(5080)))
        );
        assert_eq!(split_host_port(b"[::1]"), Some((&b"[::1]"[..], None)));
        assert_eq!(split_host_port(b"::1"), Some((&b"::1"[..], None)));
        assert_eq!(split_host_port(b"h:99999"), None);
        assert_eq!(split_host_port(b"[::1]x"), None);
    }
}
