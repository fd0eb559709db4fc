//! path: Path headers for proxies in front of a registrar (RFC 3327),
//! Kamailio 5.6 semantics.
//!
//! - `add_path([user[, params]])` asks for `Path: <sip:[user@]ADDR;lr[;params]>`;
//!   `add_path_received([user[, params]])` adds the address the request came
//!   from: `;received=sip:IP:PORT` (with `%3Btransport%3Dtcp` & co. for a
//!   stream, IPv6 in brackets), or `;received=IP~PORT~PROTO` with
//!   `received_format` 1. The parameter name is `received_name`.
//! - As Kamailio's send-address lump, ADDR is the socket the request *leaves*
//!   on (`ip[:port][;transport=t]`, port left out for 5060), so the header is
//!   written by the forwarding code ([`path_lines`]) once that socket is known.
//!   It goes before the first Path of the request, else at the end of the headers.
//! - `enable_r2`: every entry is written twice, `;r2=on` at the end of both,
//!   first with the outgoing socket, then with the receiving one.
//! - `use_received`: when `loose_route()` finds our own Route with a
//!   `received` parameter, that address becomes `$du` ([`RouteHook`]).
//! - `sockname_mode` is accepted; ringsip sockets have no names, so it adds nothing.
//! - RFC 5626 flow tokens in `add_path()` need Kamailio's outbound module,
//!   which ringsip does not have: `add_path()` never writes one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use crate::script::ctx::{push_host, push_hostport, MsgCtx};
use crate::script::registry::param as p;
use crate::script::registry::{Arg, Args, FunctionDef, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::sip::{Edits, HeaderName, Proto, SocketId};

/// The module parameters, read once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathConfig {
    /// `received_format`: 0 `sip:IP:PORT` (escaped transport), 1 `IP~PORT~PROTO`.
    pub received_format: u8,
    /// `received_name` (default `received`).
    pub received_name: Bytes,
    /// `enable_r2`: two entries per call, both ending in `;r2=on`.
    pub enable_r2: bool,
}

impl Default for PathConfig {
    fn default() -> PathConfig {
        PathConfig {
            received_format: 0,
            received_name: Bytes::from_static(b"received"),
            enable_r2: false,
        }
    }
}

impl PathConfig {
    /// Reads the `path` module parameters; the error names a bad value.
    pub fn from_params(params: &ModParams) -> Result<PathConfig, String> {
        let d = PathConfig::default();
        let received_format = match params.int("path", "received_format") {
            None => d.received_format,
            Some(v @ 0..=1) => v as u8,
            Some(v) => return Err(format!("path received_format must be 0 or 1 (got {v})")),
        };
        let received_name = match params.str("path", "received_name") {
            None => d.received_name,
            Some(s) if is_param_name(s.as_bytes()) => Bytes::copy_from_slice(s.as_bytes()),
            Some(s) => {
                return Err(format!(
                    "path received_name {s:?} is not a URI parameter name"
                ))
            }
        };
        Ok(PathConfig {
            received_format,
            received_name,
            enable_r2: params.int("path", "enable_r2").is_some_and(|v| v != 0),
        })
    }
}

fn is_param_name(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()[]/:&+$".contains(b))
}

/// A Path entry asked for, written when the request is sent.
#[derive(Debug, Clone)]
pub struct Pending {
    /// `user@` part, without the `@`.
    user: Option<Bytes>,
    /// Everything after `;lr`: `;received=…` and `;params`.
    suffix: Bytes,
    r2: bool,
}

/// Our transport as Kamailio's `received` value spells it after the port.
fn escaped_transport(proto: Proto) -> &'static str {
    match proto {
        Proto::Udp => "",
        Proto::Tcp => "%3Btransport%3Dtcp",
        Proto::Tls => "%3Btransport%3Dtls",
        Proto::Sctp => "%3Btransport%3Dsctp",
        Proto::Ws | Proto::Wss => "%3Btransport%3Dws",
    }
}

/// Kamailio's protocol numbers (`received_format` 1).
fn proto_number(proto: Proto) -> u8 {
    match proto {
        Proto::Udp => 1,
        Proto::Tcp => 2,
        Proto::Tls => 3,
        Proto::Sctp => 4,
        Proto::Ws => 5,
        Proto::Wss => 6,
    }
}

/// The `;received=…` parameter for a request from `src` over `proto`.
fn received_param(cfg: &PathConfig, src: SocketAddr, proto: Proto, out: &mut Vec<u8>) {
    out.push(b';');
    out.extend_from_slice(&cfg.received_name);
    out.push(b'=');
    let port = itoa::Buffer::new().format(src.port()).to_owned();
    if cfg.received_format == 0 {
        out.extend_from_slice(b"sip:");
        push_host(out, src.ip());
        out.push(b':');
        out.extend_from_slice(port.as_bytes());
        out.extend_from_slice(escaped_transport(proto).as_bytes());
    } else {
        push_host(out, src.ip());
        out.push(b'~');
        out.extend_from_slice(port.as_bytes());
        out.push(b'~');
        out.extend_from_slice(itoa::Buffer::new().format(proto_number(proto)).as_bytes());
    }
}

fn config(args: &Args) -> &PathConfig {
    static DEFAULT: std::sync::LazyLock<Arc<PathConfig>> = std::sync::LazyLock::new(Arc::default);
    args.0
        .iter()
        .rev()
        .find_map(|a| match a {
            Arg::Custom(c) => c.downcast_ref::<Arc<PathConfig>>(),
            _ => None,
        })
        .unwrap_or(&DEFAULT)
}

fn fixup(args: &mut Args, params: &ModParams) -> Result<(), String> {
    let cfg = PathConfig::from_params(params)?;
    args.0.push(Arg::Custom(Box::new(Arc::new(cfg))));
    Ok(())
}

/// The script's argument `i` (not the configuration pushed by the fixup).
fn script_arg(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> Option<Vec<u8>> {
    match args.get(i)? {
        Arg::Custom(_) => None,
        _ => Some(args.str(ctx, i).into_owned()),
    }
}

fn ask(ctx: &mut MsgCtx<'_>, args: &Args, received: bool) -> i32 {
    let cfg = config(args);
    let user = script_arg(ctx, args, 0)
        .filter(|u| !u.is_empty())
        .map(Bytes::from);
    let mut suffix = Vec::new();
    if received {
        received_param(cfg, ctx.src, ctx.proto, &mut suffix);
    }
    if let Some(p) = script_arg(ctx, args, 1).filter(|p| !p.is_empty()) {
        suffix.push(b';');
        suffix.extend_from_slice(&p);
    }
    ctx.state.path.push(Pending {
        user,
        suffix: Bytes::from(suffix),
        r2: cfg.enable_r2,
    });
    1
}

/// `add_path([user[, params]])`: 1.
fn add_path(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    ask(ctx, args, false)
}

/// `add_path_received([user[, params]])`: 1.
fn add_path_received(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    ask(ctx, args, true)
}

/// Path header lines, built on the stack.
pub type PathLines = SmallVec<[u8; 256]>;

/// `ip[:port][;transport=t]` of socket `socket` as a Path URI names it (the
/// advertised address if any; `local_ip` for a wildcard bind), `proto` the
/// transport it speaks.
fn socket_text(
    ctx: &MsgCtx<'_>,
    socket: SocketId,
    proto: Proto,
    local_ip: Option<IpAddr>,
    out: &mut PathLines,
) -> bool {
    let env = ctx.env;
    let Some(info) = env.sockets.get(usize::from(socket)) else {
        return false;
    };
    if let Some((text, len)) = env.sent_by(socket) {
        out.extend_from_slice(&text[..len]);
    } else if let Some((h, p)) = &info.advertise {
        out.extend_from_slice(h.as_bytes());
        out.push(b':');
        out.extend_from_slice(itoa::Buffer::new().format(*p).as_bytes());
    } else {
        let ip = local_ip
            .filter(|_| info.addr.ip().is_unspecified())
            .unwrap_or(info.addr.ip());
        if ip.is_unspecified() {
            return false;
        }
        if crate::script::ctx::omits_port(info.proto, info.addr.port()) {
            push_host(out, ip);
        } else {
            push_hostport(out, SocketAddr::new(ip, info.addr.port()));
        }
    }
    if proto != Proto::Udp {
        out.extend_from_slice(b";transport=");
        out.extend_from_slice(proto.lower_name().as_bytes());
    }
    true
}

fn push_entry(
    ctx: &MsgCtx<'_>,
    p: &Pending,
    socket: SocketId,
    proto: Proto,
    local_ip: Option<IpAddr>,
    lines: &mut PathLines,
) {
    let start = lines.len();
    lines.extend_from_slice(b"Path: <sip:");
    if let Some(u) = &p.user {
        lines.extend_from_slice(u);
        lines.push(b'@');
    }
    if !socket_text(ctx, socket, proto, local_ip, lines) {
        log::warn!("add_path: no address to write for socket {socket}");
        lines.truncate(start);
        return;
    }
    lines.extend_from_slice(b";lr");
    lines.extend_from_slice(&p.suffix);
    if p.r2 {
        lines.extend_from_slice(b";r2=on");
    }
    lines.extend_from_slice(b">\r\n");
}

/// The Path lines asked for, for a request leaving on `socket` over `proto`
/// (from `local_ip` on a wildcard bind), in call order; with `enable_r2`
/// each entry is followed by its twin naming the receiving socket.
pub fn path_lines(
    ctx: &MsgCtx<'_>,
    socket: SocketId,
    proto: Proto,
    local_ip: Option<IpAddr>,
    lines: &mut PathLines,
) {
    for p in &ctx.state.path {
        push_entry(ctx, p, socket, proto, local_ip, lines);
        if p.r2 {
            push_entry(ctx, p, ctx.socket, ctx.proto, Some(ctx.local.ip()), lines);
        }
    }
}

/// Writes the Path lines asked for into `edits`: before the request's first
/// Path header, else at the end of its headers. Nothing when none was asked for.
pub fn write_path(
    ctx: &MsgCtx<'_>,
    socket: SocketId,
    proto: Proto,
    local_ip: Option<IpAddr>,
    edits: &mut Edits,
) {
    if ctx.state.path.is_empty() {
        return;
    }
    let mut lines = PathLines::new();
    path_lines(ctx, socket, proto, local_ip, &mut lines);
    if lines.is_empty() {
        return;
    }
    let line = Bytes::copy_from_slice(&lines);
    if ctx.msg.header(HeaderName::Path).is_some() {
        edits.insert_before_first(ctx.msg, HeaderName::Path, line);
    } else {
        edits.append_header(ctx.msg, line);
    }
}

/// `use_received`: what `loose_route()` does with our own Route's parameters
/// (the rr module keeps one of these when the path module asks for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHook {
    cfg: PathConfig,
}

impl RouteHook {
    /// The hook the path parameters ask for: `None` unless `use_received` is set.
    pub fn from_params(params: &ModParams) -> Option<RouteHook> {
        if params.int("path", "use_received").is_none_or(|v| v == 0) {
            return None;
        }
        // A bad value is reported by the path functions' own fixups.
        let cfg = PathConfig::from_params(params).unwrap_or_default();
        Some(RouteHook { cfg })
    }

    /// The destination the `received` parameter in `params` (our Route
    /// URI's, from its first `;`) names, if any.
    pub fn destination(&self, params: &[u8]) -> Option<Vec<u8>> {
        let value = params
            .split(|&b| b == b';')
            .filter_map(|p| {
                let p = p.trim_ascii();
                let (name, value) = match p.iter().position(|&b| b == b'=') {
                    Some(i) => (p[..i].trim_ascii(), p[i + 1..].trim_ascii()),
                    None => (p, &b""[..]),
                };
                name.eq_ignore_ascii_case(&self.cfg.received_name)
                    .then_some(value)
            })
            .next()
            .filter(|v| !v.is_empty())?;
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            v => v,
        };
        if self.cfg.received_format == 0 {
            return unescape(value);
        }
        // `IP~PORT~PROTO`: `sip:IP:PORT[;transport=t]`.
        let mut parts = value.splitn(3, |&b| b == b'~');
        let (host, port, proto) = (parts.next()?, parts.next()?, parts.next()?);
        let mut out = b"sip:".to_vec();
        out.extend_from_slice(host);
        out.push(b':');
        out.extend_from_slice(port);
        let proto = match proto.first()? {
            b'1' => None,
            b'2' => Some("tcp"),
            b'3' => Some("tls"),
            b'4' => Some("sctp"),
            b'5' | b'6' => Some("ws"),
            _ => return None,
        };
        if let Some(t) = proto {
            out.extend_from_slice(b";transport=");
            out.extend_from_slice(t.as_bytes());
        }
        Some(out)
    }

    /// After `loose_route()` found our own Route with `params`: `$du` from
    /// its `received` parameter. Whether the destination changed.
    pub fn apply(&self, ctx: &mut MsgCtx<'_>, params: &[u8]) -> bool {
        match self.destination(params) {
            Some(uri) => {
                ctx.dst_uri = Some(Bytes::from(uri));
                true
            }
            None => false,
        }
    }
}

/// `%XX` escapes decoded; `None` for a broken escape.
fn unescape(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

const REQ: RouteMask = RouteMask::REQUEST;

macro_rules! f {
    ($name:expr, $min:expr, $max:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $min,
            max_args: $max,
            routes: REQ,
            fixup: Some(fixup),
            call: $call,
        }
    };
}

/// The path module.
pub static MODULE: ModuleDef = ModuleDef {
    name: "path",
    aliases: &[],
    functions: &[
        f!("add_path", 0, 2, add_path),
        f!("add_path_received", 0, 2, add_path_received),
    ],
    params: &[
        p("use_received", ParamKind::Int),
        p("received_format", ParamKind::Int),
        p("received_name", ParamKind::Str),
        p("enable_r2", ParamKind::Int),
        p("sockname_mode", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests;
