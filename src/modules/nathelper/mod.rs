//! nathelper: helping SIP through NAT (KAMAILIO-REFERENCE §7.8): tests for a
//! client behind NAT (`nat_uac_test`), Contact rewriting and the `;alias`
//! parameter that lets replies and in-dialog requests reach the address a
//! request really came from, `received` for the registrar, SDP address
//! rewriting, and keep-alive pings to registered contacts behind NAT
//! ([`ping`]).

use crate::script::registry::{func as f, param as p};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::ir::FormatPart;
use crate::script::registry::{fixup_int, Arg, Args, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::script::value::Value;
use crate::sip::host::Host;
use crate::sip::nameaddr::{contacts, Contact};
use crate::sip::uri::Uri;
use crate::sip::{HeaderName, Proto};

mod alias;
pub mod ping;
mod sdp;

use alias::*;
use sdp::fix_nated_sdp;

#[cfg(test)]
mod tests;

/// Parameters that are accepted but whose effect ringsip does not have,
/// for a start-up warning and `ringsip check --verbose`.
pub fn unsupported_params(mp: &ModParams) -> Vec<String> {
    let mut out = Vec::new();
    let set = |p: &str| !mp.all("nathelper", p).is_empty();
    if mp.int("nathelper", "keepalive_timeout").unwrap_or(0) > 0 {
        out.push(
            "nathelper keepalive_timeout (contacts that stop answering SIP pings are not removed)"
                .into(),
        );
    }
    if mp.int("nathelper", "udpping_from_path").unwrap_or(0) != 0 {
        out.push(
            "nathelper udpping_from_path (pings go to the received or Contact address)".into(),
        );
    }
    for p in ["natping_socket", "force_socket"] {
        if set(p) {
            out.push(format!(
                "nathelper {p} (pings leave from the contact's own socket)"
            ));
        }
    }
    if set("natping_processes") {
        out.push("nathelper natping_processes (the worker cores send the pings)".into());
    }
    out
}

/// `nat_uac_test` bits.
pub const TEST_CONTACT_PRIVATE: i64 = 1;
pub const TEST_VIA_RECEIVED: i64 = 2;
pub const TEST_VIA_PRIVATE: i64 = 4;
pub const TEST_SDP_PRIVATE: i64 = 8;
pub const TEST_VIA_PORT: i64 = 16;
pub const TEST_SRC_PRIVATE: i64 = 32;
pub const TEST_WEBSOCKET: i64 = 64;
pub const TEST_CONTACT_PORT: i64 = 128;
pub const TEST_SDP_SRCIP: i64 = 256;
/// Every bit ringsip knows.
const KNOWN_TESTS: i64 = 511;

/// Whether `ip` is in a private or shared range: RFC 1918, RFC 6598
/// (100.64/10) and 192.0.0.0/29 (RFC 7335); with `nat_addr_mode` 1 (the
/// default) all of 192.0.0.0/24.
pub fn is_private(ip: IpAddr, nat_addr_mode: i64) -> bool {
    let IpAddr::V4(v4) = ip else {
        return false;
    };
    let a = u32::from(v4);
    let within = |net: Ipv4Addr, bits: u32| {
        let mask = u32::MAX << (32 - bits);
        a & mask == u32::from(net) & mask
    };
    within(Ipv4Addr::new(10, 0, 0, 0), 8)
        || within(Ipv4Addr::new(172, 16, 0, 0), 12)
        || within(Ipv4Addr::new(192, 168, 0, 0), 16)
        || within(Ipv4Addr::new(100, 64, 0, 0), 10)
        || within(Ipv4Addr::new(192, 0, 0, 0), 29)
        || (nat_addr_mode == 1 && within(Ipv4Addr::new(192, 0, 0, 0), 24))
}

fn host_ip(h: Host<'_>) -> Option<IpAddr> {
    match h {
        Host::V4(a) => Some(IpAddr::V4(a)),
        Host::V6(a) => Some(IpAddr::V6(a)),
        Host::Name(n) => std::str::from_utf8(n).ok()?.parse().ok(),
    }
}

fn nat_addr_mode(ctx: &MsgCtx<'_>) -> i64 {
    ctx.env
        .services
        .get::<NatParams>()
        .map_or(1, |p| p.nat_addr_mode)
}

/// The parameters the functions read (kept in `Env::services`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatParams {
    pub nat_addr_mode: i64,
    pub alias_name: String,
    pub nortpproxy_str: String,
    /// `append_sdp_oldmediaip`: note replaced SDP addresses in `a=oldmediaip:`.
    pub append_oldmediaip: bool,
}

impl Default for NatParams {
    fn default() -> NatParams {
        NatParams {
            nat_addr_mode: 1,
            alias_name: "alias".into(),
            nortpproxy_str: "a=nortpproxy:yes\r\n".into(),
            append_oldmediaip: true,
        }
    }
}

impl NatParams {
    pub fn from_modparams(mp: &ModParams) -> NatParams {
        let d = NatParams::default();
        NatParams {
            nat_addr_mode: mp
                .int("nathelper", "nat_addr_mode")
                .unwrap_or(d.nat_addr_mode),
            alias_name: mp
                .str("nathelper", "alias_name")
                .map_or(d.alias_name, str::to_string),
            nortpproxy_str: mp
                .str("nathelper", "nortpproxy_str")
                .map_or(d.nortpproxy_str, str::to_string),
            append_oldmediaip: mp
                .int("nathelper", "append_sdp_oldmediaip")
                .map_or(d.append_oldmediaip, |v| v != 0),
        }
    }
}

fn params(ctx: &MsgCtx<'_>) -> NatParams {
    ctx.env
        .services
        .get::<NatParams>()
        .cloned()
        .unwrap_or_default()
}

/// The first Contact of the message: the header's index, and the contact's
/// URI and whole range in the message buffer.
fn first_contact(ctx: &MsgCtx<'_>) -> Option<(usize, Range<usize>, Range<usize>, bool)> {
    let msg = ctx.msg;
    let (idx, h) = msg
        .headers()
        .iter()
        .enumerate()
        .find(|(_, h)| h.id == HeaderName::Contact)?;
    let value = msg.value(h);
    let at = h.value.start as usize;
    match contacts(value).next()? {
        Ok(Contact::Addr(na)) => {
            let uri = na.uri_range();
            let span = na.span();
            Some((
                idx,
                at + uri.start..at + uri.end,
                at + span.start..at + span.end,
                na.has_brackets(),
            ))
        }
        _ => None,
    }
}

/// The top Via's sent-by host and port (`None` port: not written).
fn top_via(ctx: &MsgCtx<'_>) -> Option<(Option<IpAddr>, Vec<u8>, Option<u16>)> {
    let v = ctx.msg.header_value(HeaderName::Via)?;
    let via = crate::sip::via::vias(v).next()?.ok()?;
    Some((host_ip(via.host()), via.host_raw().to_vec(), via.port()))
}

/// The IPv4/IPv6 addresses of the SDP `c=` lines.
fn sdp_addresses(body: &[u8]) -> Vec<IpAddr> {
    body.split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
            let rest = line.strip_prefix("c=")?;
            let addr = rest.split_whitespace().nth(2)?;
            addr.split('/').next()?.parse().ok()
        })
        .collect()
}

/// `nat_uac_test(flags)`: 1 when any of the tests `flags` selects finds NAT, else -1.
fn nat_uac_test(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(flags) = args.int(ctx, 0) else {
        return -1;
    };
    let mode = nat_addr_mode(ctx);
    let src = ctx.src;
    let contact_uri = || {
        let (_, uri, _, _) = first_contact(ctx)?;
        let text = &ctx.msg.buf()[uri];
        let u = Uri::parse(text).ok()?;
        Some((u.host().and_then(host_ip), u.port()))
    };
    if flags & TEST_CONTACT_PRIVATE != 0
        && contact_uri().is_some_and(|(ip, _)| ip.is_some_and(|ip| is_private(ip, mode)))
    {
        return 1;
    }
    if flags & (TEST_VIA_RECEIVED | TEST_VIA_PRIVATE | TEST_VIA_PORT) != 0 {
        if let Some((ip, _, port)) = top_via(ctx) {
            if flags & TEST_VIA_RECEIVED != 0 && ip != Some(src.ip()) {
                return 1;
            }
            if flags & TEST_VIA_PRIVATE != 0 && ip.is_some_and(|ip| is_private(ip, mode)) {
                return 1;
            }
            if flags & TEST_VIA_PORT != 0 && port.unwrap_or(5060) != src.port() {
                return 1;
            }
        }
    }
    if flags & (TEST_SDP_PRIVATE | TEST_SDP_SRCIP) != 0 {
        let addrs = sdp_addresses(ctx.msg.body());
        if flags & TEST_SDP_PRIVATE != 0 && addrs.iter().any(|ip| is_private(*ip, mode)) {
            return 1;
        }
        if flags & TEST_SDP_SRCIP != 0 && addrs.iter().any(|ip| *ip != src.ip()) {
            return 1;
        }
    }
    if flags & TEST_SRC_PRIVATE != 0 && is_private(src.ip(), mode) {
        return 1;
    }
    if flags & TEST_WEBSOCKET != 0 && matches!(ctx.proto, Proto::Ws | Proto::Wss) {
        return 1;
    }
    if flags & TEST_CONTACT_PORT != 0
        && contact_uri().is_some_and(|(_, port)| port.unwrap_or(5060) != src.port())
    {
        return 1;
    }
    -1
}

fn fixup_tests(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)?;
    if let Some(Arg::Int(n)) = args.get(0) {
        if *n & !KNOWN_TESTS != 0 {
            return Err(format!(
                "test bits {} are not supported (1, 2, 4, 8, 16, 32, 64, 128, 256 are)",
                n & !KNOWN_TESTS
            ));
        }
    }
    Ok(())
}

/// `ip:port` as written in a URI (IPv6 in brackets).
fn hostport(addr: SocketAddr) -> String {
    crate::script::ctx::fmt_hostport(addr)
}

/// Where host[:port] is in the URI at `uri` (a range of the message buffer).
fn host_port_in(buf: &[u8], uri: &Range<usize>) -> Option<Range<usize>> {
    let text = &buf[uri.clone()];
    let u = Uri::parse(text).ok()?;
    let host = u.host_raw();
    let start = host.as_ptr() as usize - text.as_ptr() as usize;
    let mut end = start + host.len();
    if text.get(end) == Some(&b':') {
        end += 1;
        while text.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    Some(uri.start + start..uri.start + end)
}

/// `fix_nated_contact()`: the first Contact's host:port becomes the source address.
fn fix_nated_contact(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some((_, uri, _, _)) = first_contact(ctx) else {
        return -1;
    };
    let Some(range) = host_port_in(ctx.msg.buf(), &uri) else {
        return -1;
    };
    let text = hostport(ctx.src);
    ctx.edits.replace(range, Bytes::from(text));
    1
}

fn transport_suffix(proto: Proto) -> &'static str {
    match proto {
        Proto::Udp => "",
        Proto::Tcp => ";transport=tcp",
        Proto::Tls => ";transport=tls",
        Proto::Sctp => ";transport=sctp",
        Proto::Ws => ";transport=ws",
        Proto::Wss => ";transport=wss",
    }
}

/// `sip:SRCIP:SRCPORT[;transport=x]`: where a request really came from.
fn source_uri(ctx: &MsgCtx<'_>) -> String {
    format!("sip:{}{}", hostport(ctx.src), transport_suffix(ctx.proto))
}

/// The variable a `*_avp`-style parameter names (one pseudo-variable).
fn param_pv(ctx: &MsgCtx<'_>, param: &str) -> Option<crate::script::pvkind::PvRef> {
    let f = ctx.program.param_format("nathelper", param)?;
    match f.parts.as_slice() {
        [FormatPart::Pv(pv)] => Some(pv.clone()),
        _ => None,
    }
}

/// `fix_nated_register()`: puts the source URI in `received_avp` for the
/// registrar to store with the contact. 1, or -1 without the parameter.
fn fix_nated_register(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(pv) = param_pv(ctx, "received_avp") else {
        log::error!("fix_nated_register: the received_avp parameter is not set");
        return -1;
    };
    let uri = source_uri(ctx);
    match ctx.write_pv(&pv, Value::owned(uri.into_bytes())) {
        Ok(()) => 1,
        Err(e) => {
            log::error!("fix_nated_register: {e}");
            -1
        }
    }
}

/// `add_rcv_param([flag])`: `;received="sip:ip:port"` on every Contact
/// (flag ≠ 0: as a URI parameter, `;received=sip:ip:port`, inside the brackets).
fn add_rcv_param(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let in_uri = args.int(ctx, 0).unwrap_or(0) != 0;
    let rcv = source_uri(ctx);
    let msg = ctx.msg;
    let mut edits = Vec::new();
    for h in msg.headers().iter().filter(|h| h.id == HeaderName::Contact) {
        let at = h.value.start as usize;
        for c in contacts(msg.value(h)) {
            let Ok(Contact::Addr(na)) = c else { continue };
            if in_uri {
                let uri = na.uri_range();
                let text = format!(";received={rcv}");
                if na.has_brackets() {
                    edits.push((at + uri.end, text));
                } else {
                    edits.push((at + uri.start, "<".to_string()));
                    edits.push((at + uri.end, format!("{text}>")));
                }
            } else {
                let end = na.span().end;
                edits.push((at + end, format!(";received=\"{rcv}\"")));
            }
        }
    }
    if edits.is_empty() {
        return -1;
    }
    for (pos, text) in edits {
        ctx.edits.insert(pos, Bytes::from(text));
    }
    1
}

/// `is_rfc1918(ip)`: 1 private, -1 not (or not an address).
fn is_rfc1918(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let text = args.str(ctx, 0);
    let ip = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.trim().parse::<IpAddr>().ok());
    match ip {
        Some(ip) if is_private(ip, nat_addr_mode(ctx)) => 1,
        _ => -1,
    }
}

fn fixup_first_int(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if args.is_empty() {
        return Ok(());
    }
    fixup_int(args, 0)
}

fn fixup_alias_args(args: &mut Args, _: &ModParams) -> Result<(), String> {
    match args.len() {
        0 => Ok(()),
        3 => fixup_int(args, 1),
        n => Err(format!(
            "takes no arguments or three (ip, port, proto), not {n}"
        )),
    }
}

const REQ: RouteMask = RouteMask::REQUEST;
const ONREPLY: RouteMask = RouteMask::ONREPLY.or(RouteMask::REPLY);

pub static MODULE: ModuleDef = ModuleDef {
    name: "nathelper",
    aliases: &[],
    functions: &[
        f(
            "nat_uac_test",
            1,
            1,
            REQ.or(ONREPLY).or(RouteMask::FAILURE).or(RouteMask::BRANCH),
            Some(fixup_tests),
            nat_uac_test,
        ),
        f(
            "fix_nated_contact",
            0,
            0,
            REQ.or(ONREPLY).or(RouteMask::BRANCH).or(RouteMask::FAILURE),
            None,
            fix_nated_contact,
        ),
        f("fix_nated_register", 0, 0, REQ, None, fix_nated_register),
        f(
            "add_rcv_param",
            0,
            1,
            REQ,
            Some(fixup_first_int),
            add_rcv_param,
        ),
        f(
            "add_contact_alias",
            0,
            3,
            REQ.or(ONREPLY).or(RouteMask::BRANCH).or(RouteMask::FAILURE),
            Some(fixup_alias_args),
            add_contact_alias,
        ),
        f(
            "set_contact_alias",
            0,
            1,
            REQ.or(ONREPLY).or(RouteMask::BRANCH).or(RouteMask::FAILURE),
            Some(fixup_first_int),
            set_contact_alias,
        ),
        f(
            "handle_ruri_alias",
            0,
            1,
            REQ.or(RouteMask::BRANCH).or(RouteMask::FAILURE),
            Some(fixup_ruri_alias),
            handle_ruri_alias,
        ),
        f("is_rfc1918", 1, 1, RouteMask::ANY, None, is_rfc1918),
        f(
            "fix_nated_sdp",
            1,
            2,
            REQ.or(ONREPLY).or(RouteMask::FAILURE).or(RouteMask::BRANCH),
            Some(fixup_first_int),
            fix_nated_sdp,
        ),
    ],
    params: &[
        p("natping_interval", ParamKind::Int),
        p("ping_nated_only", ParamKind::Int),
        p("natping_processes", ParamKind::Int),
        p("natping_socket", ParamKind::Str),
        p("force_socket", ParamKind::Str),
        p("sipping_bflag", ParamKind::Int),
        p("sipping_from", ParamKind::Str),
        p("sipping_method", ParamKind::Str),
        p("natping_disable_bflag", ParamKind::Int),
        p("received_avp", ParamKind::Pv),
        p("keepalive_timeout", ParamKind::Int),
        p("udpping_from_path", ParamKind::Int),
        p("nortpproxy_str", ParamKind::Str),
        p("alias_name", ParamKind::Str),
        p("nat_addr_mode", ParamKind::Int),
        p("append_sdp_oldmediaip", ParamKind::Int),
    ],
    always: false,
};
