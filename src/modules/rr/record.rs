//! Record-Route (RFC 3261 §16.6 step 4, KAMAILIO-REFERENCE §2): the script
//! asks with `record_route()` & co.; [`write_record_route`] writes the
//! header(s) when the request is sent, from the outgoing socket.
//!
//! Our entry: `<sip:[user@]host[:port][;transport=t][;r2=on];lr[;ftag=TAG][params]>`
//! — port left out when 5060 (unless advertised, or over TLS), transport left out for UDP,
//! `lr=on` with `enable_full_lr`. When the request leaves on another socket or
//! transport than it came in on, two entries are written (top: outgoing
//! side, then incoming side, both `;r2=on`), so each side of the dialog sees
//! an address it can reach (the "double Record-Route").

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use super::{config, flow, RrConfig};
use crate::script::ctx::{push_host, push_hostport, MsgCtx};
use crate::script::registry::{Args, RouteType};
use crate::sip::headers::route_set;
use crate::sip::nameaddr::{contacts, NameAddr};
use crate::sip::uri::{Scheme, Uri};
use crate::sip::via::vias;
use crate::sip::{Edits, HeaderName, Proto, SocketId};

/// Where our address in the Record-Route comes from.
#[derive(Debug, Clone)]
enum RrAddr {
    /// `record_route()`: the sockets the request comes in and goes out on.
    Socket,
    /// `record_route_advertised_address(addr)`: a fixed address.
    Advertised(Bytes),
    /// `record_route_preset(addr[, addr2])`: written as given.
    Preset(Bytes, Option<Bytes>),
}

/// A Record-Route the script asked for, written when the request is sent.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    addr: RrAddr,
    /// User part: the R-URI user (`add_username`) or a flow token.
    user: Option<Bytes>,
    /// `;ftag=` value.
    tag: Option<Bytes>,
    /// `record_route(params)` text, starting with `;`.
    params: Bytes,
    /// `sips:` instead of `sip:`.
    sips: bool,
    cfg: Arc<RrConfig>,
}

/// One side of the proxy as a Record-Route URI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Side<'e> {
    /// `ip[:port]` or the advertised `host:port`, as written.
    hostport: HostPort<'e>,
    proto: Proto,
}

/// The text of a [`Side`]: the socket's own, formatted once per `Env`, or
/// formatted here for a wildcard bind (on the stack: it is only copied into
/// the header line).
#[derive(Debug, Clone)]
enum HostPort<'e> {
    Cached(&'e [u8]),
    Formatted(SmallVec<[u8; 64]>),
}

impl std::ops::Deref for HostPort<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            HostPort::Cached(t) => t,
            HostPort::Formatted(t) => t,
        }
    }
}

impl PartialEq for HostPort<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for HostPort<'_> {}

impl<'e> Side<'e> {
    fn of_socket(ctx: &MsgCtx<'e>, socket: SocketId, local_ip: Option<IpAddr>) -> Option<Side<'e>> {
        let env = ctx.env;
        let info = env.sockets.get(usize::from(socket))?;
        // A bound (or advertised) address does not depend on `local_ip`.
        if let Some((text, rr_len)) = env.sent_by(socket) {
            return Some(Side {
                hostport: HostPort::Cached(&text[..rr_len]),
                proto: info.proto,
            });
        }
        let mut hostport = SmallVec::new();
        match &info.advertise {
            Some((h, p)) => {
                hostport.extend_from_slice(h.as_bytes());
                hostport.push(b':');
                hostport.extend_from_slice(itoa::Buffer::new().format(*p).as_bytes());
            }
            None => {
                let ip = local_ip
                    .filter(|_| info.addr.ip().is_unspecified())
                    .unwrap_or(info.addr.ip());
                if ip.is_unspecified() {
                    // A wildcard bind with no address known: nothing reachable to write.
                    return None;
                }
                let addr = SocketAddr::new(ip, info.addr.port());
                if crate::script::ctx::omits_port(info.proto, addr.port()) {
                    push_host(&mut hostport, ip);
                } else {
                    push_hostport(&mut hostport, addr);
                }
            }
        }
        Some(Side {
            hostport: HostPort::Formatted(hostport),
            proto: info.proto,
        })
    }
}

/// The fields every Record-Route function starts from. `Err` is the script code.
fn prepare(ctx: &MsgCtx<'_>, args: &Args) -> Result<Pending, i32> {
    // A second Record-Route for the same request is refused (outside
    // branch_route, where each branch may record its own).
    if ctx.rr.pending.is_some() && ctx.route_type != RouteType::Branch {
        log::error!("record_route: double attempt to record-route");
        return Err(-1);
    }
    let cfg = config(args).clone();
    let msg = ctx.msg;
    let ruri = match &ctx.new_uri {
        Some(uri) => Uri::parse(uri).ok(),
        None => msg.parsed_uri().and_then(Result::ok),
    };
    let mut user = None;
    if cfg.add_username {
        user = ruri
            .and_then(|u| u.user())
            .map(Bytes::copy_from_slice)
            .filter(|u| !u.is_empty());
    }
    if let Some(key) = &cfg.flow_key {
        if wants_outbound(ctx, &cfg) {
            let f = flow::Flow {
                proto: ctx.proto,
                local: ctx.local,
                remote: ctx.src,
            };
            user = Some(Bytes::from(flow::encode(key, &f)));
        }
    }
    let mut tag = None;
    if cfg.append_fromtag {
        let from = msg
            .header_value(HeaderName::From)
            .and_then(|v| NameAddr::parse(v).ok())
            .ok_or(-1)?;
        // An in-dialog request going upstream carries the caller's tag in To (RFC 3261 §12.2.1.1).
        let t = if super::loose::direction(ctx) == super::loose::Direction::Upstream {
            msg.header_value(HeaderName::To)
                .and_then(|v| NameAddr::parse(v).ok())
                .and_then(|na| na.tag())
        } else {
            from.tag()
        };
        // A handle on the message buffer the tag lies in: no copy.
        tag = t.filter(|t| !t.is_empty()).map(|t| msg.buf().slice_ref(t));
    }
    let sips = !cfg.ignore_sips && ruri.is_some_and(|u| u.scheme() == Scheme::Sips);
    let pending = Pending {
        addr: RrAddr::Socket,
        user,
        tag,
        params: Bytes::new(),
        sips,
        cfg,
    };
    Ok(pending)
}

/// RFC 5626 §5.3 / §5.7: the edge proxy of an outbound client records a flow
/// token when the request comes straight from the agent (one Via) and the
/// agent asks for outbound (`ob` in its Contact URI, or in our top Route).
fn wants_outbound(ctx: &MsgCtx<'_>, cfg: &RrConfig) -> bool {
    let msg = ctx.msg;
    let via_count: usize = msg
        .headers_of(HeaderName::Via)
        .map(|h| vias(msg.value(h)).take(2).count())
        .sum();
    if via_count != 1 {
        return false;
    }
    let contact_ob = msg
        .headers_of(HeaderName::Contact)
        .flat_map(|h| contacts(msg.value(h)))
        .flatten()
        .filter_map(|c| c.name_addr().copied())
        .any(|na| na.uri().is_ok_and(|u| u.param(b"ob").is_some()));
    let route_ob = msg
        .header(HeaderName::Route)
        .and_then(|h| route_set(msg.value(h)).next())
        .and_then(|r| r.ok())
        .and_then(|r| r.uri().ok())
        .is_some_and(|u| u.param(b"ob").is_some() && cfg.is_myself(ctx.env, &u));
    contact_ob || route_ob
}

/// Parameters given as script text, with the leading `;` added when missing.
fn param_text(raw: &[u8]) -> Bytes {
    let raw = raw.trim_ascii();
    if raw.is_empty() {
        return Bytes::new();
    }
    let mut out = Vec::with_capacity(raw.len() + 1);
    if raw[0] != b';' {
        out.push(b';');
    }
    out.extend_from_slice(raw);
    Bytes::from(out)
}

/// `record_route([params])`: 1, or -1 for a second attempt or an unreadable From.
pub(super) fn record_route(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let mut pending = match prepare(ctx, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if args.get(0).is_some_and(|a| !is_config(a)) {
        pending.params = param_text(&args.str(ctx, 0));
    }
    ctx.rr.pending = Some(pending);
    1
}

/// `record_route_preset(addr[, addr2])`: `addr` is `host[:port][;params]`
/// without scheme; two addresses make two entries (the first on top).
pub(super) fn record_route_preset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let mut pending = match prepare(ctx, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let first = Bytes::from(args.str(ctx, 0).trim_ascii().to_vec());
    if first.is_empty() {
        return -1;
    }
    let second = args
        .get(1)
        .filter(|a| !is_config(a))
        .map(|_| Bytes::from(args.str(ctx, 1).trim_ascii().to_vec()))
        .filter(|s| !s.is_empty());
    pending.addr = RrAddr::Preset(first, second);
    ctx.rr.pending = Some(pending);
    1
}

/// `record_route_advertised_address(addr)`: our entry names `addr` (`host[:port]`).
pub(super) fn record_route_advertised_address(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let mut pending = match prepare(ctx, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let addr = Bytes::from(args.str(ctx, 0).trim_ascii().to_vec());
    if addr.is_empty() {
        return -1;
    }
    pending.addr = RrAddr::Advertised(addr);
    ctx.rr.pending = Some(pending);
    1
}

/// `add_rr_param(param)`: a parameter for our Record-Route entry, before or
/// after the Record-Route function. 1, or -1 when empty.
pub(super) fn add_rr_param(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let text = param_text(&args.str(ctx, 0));
    if text.is_empty() {
        return -1;
    }
    ctx.rr.extra_params.extend_from_slice(&text);
    1
}

/// `remove_record_route()`: forgets the Record-Route asked for (and its
/// parameters); a new one may then be asked for. 1.
pub(super) fn remove_record_route(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.rr.pending = None;
    ctx.rr.extra_params.clear();
    1
}

fn is_config(a: &crate::script::registry::Arg) -> bool {
    matches!(a, crate::script::registry::Arg::Custom(c) if c.is::<Arc<RrConfig>>())
}

/// Record-Route header lines, built on the stack.
pub type RrLines = SmallVec<[u8; 256]>;

/// Writes the Record-Route header(s) asked for into `edits`, at the top of
/// the headers, for a request leaving on `socket` over `proto` (from
/// `local_ip` when the socket is a wildcard bind). Does nothing when none was
/// asked for.
pub fn write_record_route(
    ctx: &MsgCtx<'_>,
    socket: SocketId,
    proto: Proto,
    local_ip: Option<IpAddr>,
    edits: &mut Edits,
) {
    let mut lines = RrLines::new();
    record_route_lines(ctx, socket, proto, local_ip, &mut lines);
    if !lines.is_empty() {
        edits.prepend_header(ctx.msg, Bytes::copy_from_slice(&lines));
    }
}

/// The Record-Route line(s) [`write_record_route`] writes, appended to
/// `lines` in order, for the caller to insert at the top of the headers
/// (the forwarding code, once per outgoing request, without a `Bytes` of
/// their own). Nothing when none was asked for.
pub fn record_route_lines(
    ctx: &MsgCtx<'_>,
    socket: SocketId,
    proto: Proto,
    local_ip: Option<IpAddr>,
    lines: &mut RrLines,
) {
    let Some(p) = &ctx.rr.pending else {
        return;
    };
    let extra = &ctx.rr.extra_params;
    let double = p.cfg.double_rr;
    match &p.addr {
        RrAddr::Socket => {
            // The transport the request came over: `ws` on a TCP socket
            // after a WebSocket handshake.
            let incoming = Side::of_socket(ctx, ctx.socket, Some(ctx.local.ip())).map(|mut s| {
                s.proto = ctx.proto;
                s
            });
            let outgoing = Side::of_socket(ctx, socket, local_ip).map(|mut s| {
                s.proto = proto;
                s
            });
            let (out, inc) = match (outgoing, incoming) {
                (Some(o), Some(i)) => (o, Some(i)),
                (Some(o), None) => (o, None),
                (None, Some(i)) => (i, None),
                (None, None) => {
                    log::warn!("record_route: no address to record for socket {socket}");
                    return;
                }
            };
            let inc = inc.filter(|i| double == 2 || (double == 1 && *i != out));
            match inc {
                Some(inc) => {
                    let explicit = double == 2;
                    push_line(
                        lines,
                        p,
                        extra,
                        &out.hostport,
                        Some((out.proto, explicit)),
                        true,
                    );
                    push_line(
                        lines,
                        p,
                        extra,
                        &inc.hostport,
                        Some((inc.proto, explicit)),
                        true,
                    );
                }
                None => push_line(
                    lines,
                    p,
                    extra,
                    &out.hostport,
                    Some((out.proto, false)),
                    false,
                ),
            }
        }
        RrAddr::Advertised(addr) => {
            let addr = String::from_utf8_lossy(addr);
            let addr = addr.as_bytes();
            if double == 2 || (double == 1 && proto != ctx.proto) {
                let explicit = double == 2;
                push_line(lines, p, extra, addr, Some((proto, explicit)), true);
                push_line(lines, p, extra, addr, Some((ctx.proto, explicit)), true);
            } else {
                push_line(lines, p, extra, addr, Some((proto, false)), false);
            }
        }
        RrAddr::Preset(first, second) => {
            push_preset(lines, p, extra, first);
            if let Some(second) = second {
                push_preset(lines, p, extra, second);
            }
        }
    }
}

/// Appends `sip:` / `sips:` and the user part.
fn push_start(line: &mut RrLines, p: &Pending) {
    line.extend_from_slice(if p.sips {
        b"Record-Route: <sips:"
    } else {
        b"Record-Route: <sip:"
    });
    if let Some(user) = &p.user {
        line.extend_from_slice(user);
        line.push(b'@');
    }
}

fn push_lr(line: &mut RrLines, p: &Pending) {
    line.extend_from_slice(if p.cfg.full_lr { b";lr=on" } else { b";lr" });
}

fn push_tag_and_params(line: &mut RrLines, p: &Pending, extra: &[u8]) {
    if let Some(tag) = &p.tag {
        line.extend_from_slice(b";ftag=");
        line.extend_from_slice(tag);
    }
    line.extend_from_slice(&p.params);
    line.extend_from_slice(extra);
}

/// One `record_route()` / advertised entry; `transport` is the side's
/// transport and whether to write it even for UDP.
fn push_line(
    line: &mut RrLines,
    p: &Pending,
    extra: &[u8],
    hostport: &[u8],
    transport: Option<(Proto, bool)>,
    r2: bool,
) {
    push_start(line, p);
    line.extend_from_slice(hostport);
    if let Some((proto, explicit)) = transport {
        if explicit || proto != Proto::Udp {
            line.extend_from_slice(b";transport=");
            line.extend_from_slice(proto.lower_name().as_bytes());
        }
    }
    if r2 {
        line.extend_from_slice(b";r2=on");
    }
    push_lr(line, p);
    push_tag_and_params(line, p, extra);
    line.extend_from_slice(b">\r\n");
}

/// One `record_route_preset()` entry: the text as given, then ftag, params and lr.
fn push_preset(line: &mut RrLines, p: &Pending, extra: &[u8], addr: &[u8]) {
    push_start(line, p);
    line.extend_from_slice(addr);
    push_tag_and_params(line, p, extra);
    push_lr(line, p);
    line.extend_from_slice(b">\r\n");
}
