//! Stateless forwarding (RFC 3261 §16.11) and the way back for replies (§18.2.2).
//!
//! - A forwarded request gets our Via on top with a branch computed from the
//!   request, so a retransmission, its CANCEL and the ACK of a negative reply
//!   get the same branch (§16.11).
//! - The received Via gets `received=` when the sent-by differs from the source
//!   address (§18.2.1), and its empty `rport` is filled (RFC 3581 §4).
//! - A reply whose top Via is ours loses it and goes to the next Via's
//!   `received`/`rport` address, else its sent-by.
//! - A request that came over a stream connection gets `;i=<connection id>` in
//!   our Via (Kamailio does the same), so its replies go back on that
//!   connection (RFC 3261 §18.2.2) without any state kept here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use smallvec::SmallVec;

use super::hash::fnv1a;
use crate::script::ctx::{push_hostport, MsgCtx};
use crate::sip::uri::{Scheme, Uri};
use crate::sip::via::{vias, Rport, Via};
use crate::sip::{
    serialize, serialize_with, ConnId, ErrorKind, HeaderName, Message, ParseError, Proto, SocketId,
    Transmit,
};

/// The RFC 3261 magic cookie that starts every branch we make.
const MAGIC: &[u8] = b"z9hG4bK";

/// Our Via parameter naming the connection a forwarded request came on.
const CONN_PARAM: &[u8] = b";i=";

/// The connection named by `;i=` in our own Via (16 hex digits), if any.
fn via_conn(via: &Via<'_>) -> Option<ConnId> {
    let value = via.param(b"i")?.value?;
    if value.len() != 16 {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    u64::from_str_radix(text, 16).ok().map(ConnId::from_raw)
}

/// Why a request cannot enter the script: Kamailio 5.6 answers none of
/// these, it drops them (`receive_msg`: "no via found in request",
/// "required headers not found in request"), so the error is only logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// No way to route it as Kamailio would: drop.
    Drop(ParseError),
}

/// Checks what every request must have before the script sees it, as
/// Kamailio's receive path does: a readable top Via, and a From, To,
/// Call-ID and CSeq, each found before the first header field its parser
/// refuses ([`Message::broken_header`]: Kamailio parses fields in order
/// and stops there). Nothing else is judged here: a CSeq number that is
/// not one (`CSeq: x INVITE`), a short body or a bad Max-Forwards reach the
/// script, where `sanity_check` and the modules decide.
pub fn check_request(msg: &Message) -> Result<(), Reject> {
    // Only whether it reads: no view of it is made here.
    match msg.top_via_at() {
        Some((_, Ok(_), _)) => {}
        Some((at, Err(e), _)) => return Err(Reject::Drop(e.shifted(at))),
        None => return Err(Reject::Drop(ParseError::new(ErrorKind::MissingHeader, 0))),
    }
    let limit = msg.broken_header().unwrap_or(usize::MAX);
    let headers = msg.headers();
    for id in [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        match headers.iter().position(|h| h.id == id) {
            Some(i) if i < limit => {}
            Some(i) => {
                let at = headers.get(limit).map_or(i, |h| h.name.start as usize);
                return Err(Reject::Drop(ParseError::new(ErrorKind::BadHeaderName, at)));
            }
            None => {
                return Err(Reject::Drop(ParseError::new(
                    ErrorKind::MissingHeader,
                    msg.headers_end(),
                )))
            }
        }
    }
    Ok(())
}

/// The first Via value of `msg`: the offset of its header value in the buffer, and its parse
/// (offsets inside the `Via` are relative to that header value).
fn top_via(msg: &Message) -> Option<(usize, crate::sip::error::Result<Via<'_>>)> {
    let (at, first) = msg.top_via()?;
    Some((at, first.map_err(|e| e.shifted(at))))
}

/// The top Via of the message in `ctx` (when readable), parsed once per message.
fn ctx_top_via<'c, 'a>(ctx: &'c MsgCtx<'a>) -> Option<(usize, &'c Via<'a>)> {
    let msg: &'a Message = ctx.msg;
    // The message keeps its top Via parsed; the cell only saves the lookup.
    // Lent, not copied: a `Via` is large.
    let cached = ctx.top_via.get_or_init(|| match top_via(msg) {
        Some((at, Ok(via))) => Some((at, via)),
        _ => None,
    });
    cached.as_ref().map(|(at, via)| (*at, via))
}

/// The second Via value (same header after a comma, or the next Via header).
fn second_via(msg: &Message) -> Option<Via<'_>> {
    let mut all = msg
        .headers_of(HeaderName::Via)
        .flat_map(|h| vias(msg.value(h)));
    let _first = all.next()?;
    all.next()?.ok()
}

pub use crate::sip::received::ViaFixAt;

/// The edits RFC 3261 §18.2.1 and RFC 3581 §4 make on the received top Via
/// of the request in `ctx` (the rule: [`crate::sip::received::received_fix`]).
pub fn received_fix(ctx: &MsgCtx<'_>, place: ViaFixAt) -> crate::sip::received::ViaFix {
    let Some((at, via)) = ctx_top_via(ctx) else {
        return crate::sip::received::ViaFix::new();
    };
    let facts = crate::sip::received::TopViaFacts::of(via);
    crate::sip::received::received_fix(&facts, at, ctx.src, ctx.state.force_rport, place)
}

/// Where a stateless reply to the request in `ctx` goes (RFC 3261 §18.2.2,
/// RFC 3581 §4): the source address; the source port when rport was asked
/// for or the transport is a stream, else the Via's sent-by port.
pub fn reply_destination(ctx: &MsgCtx<'_>) -> Option<SocketAddr> {
    let (_, via) = ctx_top_via(ctx)?;
    if ctx.proto.is_reliable() || ctx.state.force_rport || !matches!(via.rport(), Rport::Absent) {
        return Some(ctx.src);
    }
    let port = via
        .port()
        .unwrap_or_else(|| via.proto().unwrap_or(ctx.proto).default_port());
    Some(SocketAddr::new(ctx.src.ip(), port))
}

/// Reads a host that must be an address (DNS is not resolved here yet).
fn host_ip(host: &[u8]) -> Option<IpAddr> {
    let h = match host {
        [b'[', inner @ .., b']'] => inner,
        h => h,
    };
    if h.eq_ignore_ascii_case(b"localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    crate::sip::host::parse_ip_bytes(h)
}

/// The address of `host`: a literal, `localhost`, or a name the shared
/// [`Resolver`](super::dns::Resolver) knows (IPv4 first); `None` if it does
/// not resolve (Kamailio's -478).
fn host_addr(ctx: &MsgCtx<'_>, host: &[u8]) -> Option<IpAddr> {
    host_ip(host).or_else(|| {
        let resolver = ctx.env.services.get::<super::dns::Resolver>()?;
        resolver.resolve(host, ctx.now).first().copied()
    })
}

/// The next hop of a request: `$du` if set, else the Request-URI (RFC 3261
/// §16.6 step 7). The flag says whether DNS named it (RFC 3263 §4: a host
/// name without a port is looked up as NAPTR/SRV first).
fn next_hop(ctx: &MsgCtx<'_>, proto: Option<Proto>) -> Result<(SocketAddr, Proto, bool), i32> {
    let uri = match (&ctx.dst_uri, &ctx.new_uri) {
        (Some(target), _) | (None, Some(target)) => Uri::parse(target),
        // The received R-URI, parsed once per message.
        (None, None) => ctx.msg.parsed_uri().unwrap_or_else(|| Uri::parse(b"")),
    };
    let uri = uri.map_err(|_| -479)?;
    let named = proto.or(uri.transport());
    let proto = named.unwrap_or(match uri.scheme() {
        Scheme::Sips => Proto::Tls,
        _ => Proto::Udp,
    });
    // An address the URI parse already read is not read again from the
    // text, and costs no DNS work at all.
    if let Some(ip) = uri.host().and_then(|h| h.ip()) {
        let port = uri.port().unwrap_or(proto.default_port());
        return Ok((SocketAddr::new(ip, port), proto, false));
    }
    match uri.port() {
        Some(port) => {
            let ip = host_addr(ctx, uri.host_raw()).ok_or(-478)?;
            Ok((SocketAddr::new(ip, port), proto, true))
        }
        None => {
            let sips = uri.scheme() == Scheme::Sips;
            let first = sip_targets(ctx, uri.host_raw(), named, sips)
                .into_iter()
                .next()
                .ok_or(-478)?;
            Ok((first.addr, first.proto, true))
        }
    }
}

/// The RFC 3263 candidates for a host without a port: `localhost` and
/// literals as they are, names through the shared resolver.
fn sip_targets(
    ctx: &MsgCtx<'_>,
    host: &[u8],
    proto: Option<Proto>,
    sips: bool,
) -> Vec<super::dns::SipTarget> {
    if let Some(ip) = host_ip(host) {
        let p = proto.unwrap_or(if sips { Proto::Tls } else { Proto::Udp });
        return vec![super::dns::SipTarget {
            addr: SocketAddr::new(ip, p.default_port()),
            proto: p,
        }];
    }
    match ctx.env.services.get::<super::dns::Resolver>() {
        Some(r) => r.sip_targets(host, proto, sips, ctx.now),
        None => Vec::new(),
    }
}

/// With `use_dns_failover=yes`: the addresses after `hop` that DNS gave for
/// the request's next hop (`host` when forced), in the order to try, same
/// transport and address family (`host`/`port`: what `t_relay` forced).
/// Empty when failover is off or `hop` was not named by DNS.
pub fn failover_targets(
    ctx: &MsgCtx<'_>,
    hop: &Hop,
    host: Option<&[u8]>,
    port: Option<u16>,
) -> Vec<SocketAddr> {
    if !hop.named {
        return Vec::new();
    }
    let Some(resolver) = ctx.env.services.get::<super::dns::Resolver>() else {
        return Vec::new();
    };
    if !resolver.failover() {
        return Vec::new();
    }
    let (host, port, named, sips) = match host {
        Some(h) => (h.to_vec(), port, Some(hop.proto), false),
        None => {
            let uri = match (&ctx.dst_uri, &ctx.new_uri) {
                (Some(target), _) | (None, Some(target)) => Uri::parse(target),
                (None, None) => ctx.msg.parsed_uri().unwrap_or_else(|| Uri::parse(b"")),
            };
            let Ok(uri) = uri else {
                return Vec::new();
            };
            (
                uri.host_raw().to_vec(),
                uri.port(),
                Some(hop.proto),
                uri.scheme() == Scheme::Sips,
            )
        }
    };
    let list: Vec<SocketAddr> = match port {
        // A name with a port: its other addresses.
        Some(port) => resolver
            .resolve(&host, ctx.now)
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect(),
        None => resolver
            .sip_targets(&host, named, sips, ctx.now)
            .into_iter()
            .filter(|t| t.proto == hop.proto)
            .map(|t| t.addr)
            .collect(),
    };
    list.into_iter()
        .filter(|a| *a != hop.dst && a.is_ipv4() == hop.dst.is_ipv4())
        .collect()
}

/// Where a request goes: address, transport, and the socket (and, on a
/// wildcard socket, the local address) it leaves from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    pub dst: SocketAddr,
    pub proto: Proto,
    pub socket: SocketId,
    /// The local address to speak from when the socket is bound to a wildcard.
    pub local_ip: Option<IpAddr>,
    /// DNS named the address (not a literal): what DNS failover may replace.
    pub named: bool,
}

impl Hop {
    /// The local address to send from (wildcard sockets only).
    pub fn local(&self, ctx: &MsgCtx<'_>) -> Option<SocketAddr> {
        let port = ctx
            .env
            .sockets
            .get(usize::from(self.socket))
            .map_or(0, |s| s.addr.port());
        self.local_ip.map(|ip| SocketAddr::new(ip, port))
    }

    /// A transmission of `data` along this hop.
    pub fn transmit(&self, ctx: &MsgCtx<'_>, data: Bytes) -> Transmit {
        Transmit {
            data,
            dst: self.dst,
            proto: self.proto,
            socket: Some(self.socket),
            local: self.local(ctx),
            conn: None,
            flags: ctx.state.forward_flags(),
        }
    }
}

/// Resolves where the request in `ctx` goes: `host[:port]` when given, else
/// its next hop (`$du`, then the Request-URI). Errors are Kamailio's codes:
/// -477 no socket to send from, -478 unresolvable, -479 bad URI.
pub fn resolve_hop(
    ctx: &MsgCtx<'_>,
    host: Option<&[u8]>,
    port: Option<u16>,
    proto: Option<Proto>,
) -> Result<Hop, i32> {
    resolve_hop_or(ctx, host, port, proto, |_, _| -477)
}

/// [`resolve_hop`] with the code for "no socket to send from" given by
/// `no_socket` (tm has its own, see `tm::fork`).
pub fn resolve_hop_or(
    ctx: &MsgCtx<'_>,
    host: Option<&[u8]>,
    port: Option<u16>,
    proto: Option<Proto>,
    no_socket: fn(&MsgCtx<'_>, &SocketAddr) -> i32,
) -> Result<Hop, i32> {
    let (dst, proto, named) = match host {
        Some(h) => {
            let proto = proto.unwrap_or(Proto::Udp);
            let found = match (host_ip(h), port) {
                (Some(ip), port) => Some((
                    SocketAddr::new(ip, port.unwrap_or(proto.default_port())),
                    false,
                )),
                (None, Some(port)) => host_addr(ctx, h).map(|ip| (SocketAddr::new(ip, port), true)),
                // No port: RFC 3263 as for a URI (SRV for the transport).
                (None, None) => sip_targets(ctx, h, Some(proto), false)
                    .first()
                    .map(|t| (t.addr, true)),
            };
            let Some((dst, named)) = found else {
                log::warn!("cannot resolve {:?}", String::from_utf8_lossy(h));
                return Err(-478);
            };
            (dst, proto, named)
        }
        None => next_hop(ctx, proto).inspect_err(|code| {
            log::warn!(
                "no usable next hop in {:?} (code {code})",
                String::from_utf8_lossy(ctx.ruri())
            );
        })?,
    };
    let preferred = ctx.force_socket.unwrap_or(ctx.socket);
    let Some(socket) = ctx.env.socket_for(proto, &dst, Some(preferred)) else {
        log::warn!("no {proto} socket to reach {dst}");
        return Err(no_socket(ctx, &dst));
    };
    let info = &ctx.env.sockets[usize::from(socket)];
    // On a wildcard socket, speak from the address the request arrived on.
    let local_ip = (info.addr.ip().is_unspecified() && ctx.local.is_ipv4() == dst.is_ipv4())
        .then(|| ctx.local.ip());
    Ok(Hop {
        dst,
        proto,
        socket,
        local_ip,
        named,
    })
}

/// Serializes the request in `ctx` for `hop`: the script's edits, the
/// rewritten Request-URI, received/rport on the received Via, Record-Route,
/// and our Via with `branch` on top.
pub fn build_request(ctx: &mut MsgCtx<'_>, hop: &Hop, branch: &[u8]) -> Bytes {
    let msg = ctx.msg;
    let info = &ctx.env.sockets[usize::from(hop.socket)];
    // The script's edits plus this branch's, taken back once serialized:
    // no copy of the list per branch.
    let mark = ctx.edits.checkpoint();
    if let Some(uri) = &ctx.new_uri {
        ctx.edits.set_request_uri(msg, uri.clone());
    }
    if let Some(path) = ctx.path_vec.as_ref().filter(|p| !p.is_empty()) {
        // RFC 3327 §5.3: the registration's Path is the route set in front.
        let mut line = Vec::with_capacity(path.len() + 9);
        line.extend_from_slice(b"Route: ");
        line.extend_from_slice(path);
        line.extend_from_slice(b"\r\n");
        ctx.edits.insert_before_first(msg, HeaderName::Route, line);
    }
    for (range, data) in received_fix(ctx, ViaFixAt::SentBy) {
        if range.is_empty() {
            ctx.edits.insert(range.start, data);
        } else {
            ctx.edits.replace(range, data);
        }
    }
    // RFC 3261 §16.6 step 4: Record-Route names the socket the request leaves on.
    let mut rr = crate::modules::rr::RrLines::new();
    crate::modules::rr::record_route_lines(ctx, hop.socket, hop.proto, hop.local_ip, &mut rr);
    // RFC 3327 §4: our Path entry names the socket the REGISTER leaves on too.
    if !ctx.state.path.is_empty() {
        let mut edits = std::mem::take(&mut ctx.edits);
        crate::modules::path::write_path(ctx, hop.socket, hop.proto, hop.local_ip, &mut edits);
        ctx.edits = edits;
    }
    // Built on the stack and written from there.
    let mut via = SmallVec::<[u8; 160]>::new();
    via.extend_from_slice(b"Via: SIP/2.0/");
    via.extend_from_slice(hop.proto.via_name().as_bytes());
    via.push(b' ');
    if hop.proto == Proto::Ws {
        // Kamailio 5.6 writes `SIP/2.0/WS  host` (two spaces: it pads the
        // transport to three letters); written the same, for byte parity.
        via.push(b' ');
    }
    // The socket's own text, formatted once, unless a local address replaces
    // its bound one. As Kamailio writes it: a bound address on port 5060
    // without its port, an advertised one always with.
    let cached = ctx
        .env
        .sent_by(hop.socket)
        .filter(|_| info.advertise.is_some() || hop.local_ip.is_none());
    // set_advertised_address/port(), else the global advertised_address/port.
    let adv_host =
        (ctx.state.adv_host.as_deref()).or(ctx.program.via.advertised_address.as_deref());
    let adv_port = ctx.state.adv_port.or(ctx.program.via.advertised_port);
    if adv_host.is_some() || adv_port.is_some() {
        // set_advertised_address/port(): as Kamailio writes them, the
        // socket's port left out on 5060 unless a port was set.
        let (socket_host, socket_port) = match &info.advertise {
            Some((h, p)) => (h.as_bytes().to_vec(), *p),
            None => {
                let mut h = Vec::new();
                crate::script::ctx::push_host(&mut h, hop.local_ip.unwrap_or(info.addr.ip()));
                (h, info.addr.port())
            }
        };
        via.extend_from_slice(adv_host.unwrap_or(&socket_host));
        let port = adv_port.unwrap_or(socket_port);
        if adv_port.is_some() || !crate::script::ctx::omits_port(hop.proto, port) {
            via.push(b':');
            via.extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
        }
    } else {
        match (cached, &info.advertise) {
            (Some((text, short)), _) => via.extend_from_slice(&text[..short]),
            (None, Some((h, p))) => {
                via.extend_from_slice(h.as_bytes());
                via.push(b':');
                via.extend_from_slice(itoa::Buffer::new().format(*p).as_bytes());
            }
            (None, None) => {
                let ip = hop.local_ip.unwrap_or(info.addr.ip());
                match crate::script::ctx::omits_port(hop.proto, info.addr.port()) {
                    true => crate::script::ctx::push_host(&mut via, ip),
                    false => push_hostport(&mut via, SocketAddr::new(ip, info.addr.port())),
                }
            }
        }
    }
    via.extend_from_slice(b";branch=");
    via.extend_from_slice(branch);
    // corex via_add_srvid() / via_add_xavp_params(), as Kamailio 5.6
    // writes them: srvid first, then the XAVP's fields newest first.
    if ctx.state.via_srvid {
        if let Some(id) = ctx.program.via.server_id {
            via.extend_from_slice(b";srvid=");
            via.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        }
    }
    if ctx.state.via_xavp_params {
        let root = (ctx.program.via.xavp_params.as_ref()).and_then(|n| ctx.attrs.xavp(n, 0));
        if let Some(crate::script::attrs::XavpValue::List(fields)) = root.map(|r| &r.value) {
            for f in fields.iter().rev() {
                if let crate::script::attrs::XavpValue::Value(v) = &f.value {
                    via.push(b';');
                    via.extend_from_slice(&f.name);
                    if !v.is_null() {
                        via.push(b'=');
                        via.extend_from_slice(&v.to_bytes());
                    }
                }
            }
        }
    }
    // A request that came over a connection names it, so the reply goes back on it.
    if let Some(conn) = ctx.conn.filter(|_| ctx.proto.is_reliable()) {
        via.extend_from_slice(CONN_PARAM);
        via.extend_from_slice(&hex16(conn.raw()));
    }
    if ctx.state.add_local_rport {
        via.extend_from_slice(b";rport");
    }
    via.extend_from_slice(b"\r\n");
    if hop.proto.is_reliable() {
        ctx.edits.force_content_length();
    }
    let out = &mut ctx.core.scratch;
    // Record-Route at the top and our Via before the first one, after the
    // other edits (as `prepend_header` and `insert_before_first` would put
    // them), written from the stack: no `Bytes` of their own.
    let top = crate::sip::edit::header_start(msg, 0);
    let via_at = crate::sip::edit::before_first(msg, HeaderName::Via);
    serialize_with(msg, &ctx.edits, &[(top, &rr), (via_at, &via)], out);
    ctx.edits.rollback(mark);
    Bytes::copy_from_slice(out)
}

/// Forwards the request in `ctx` statelessly to `host[:port]`, or to its next
/// hop. Returns 1, or Kamailio's error codes: -477 send, -478 unresolvable, -479 bad URI.
pub fn request(
    ctx: &mut MsgCtx<'_>,
    host: Option<&[u8]>,
    port: Option<u16>,
    proto: Option<Proto>,
) -> i32 {
    if !ctx.msg.is_request() {
        return -1;
    }
    let hop = match resolve_hop(ctx, host, port, proto) {
        Ok(hop) => hop,
        Err(code) => return code,
    };
    let mut branch = SmallVec::<[u8; 32]>::new();
    stateless_branch(ctx, &mut branch);
    let data = build_request(ctx, &hop, &branch);
    let t = hop.transmit(ctx, data);
    let local = t
        .local
        .or_else(|| ctx.env.sockets.get(usize::from(hop.socket)).map(|s| s.addr));
    if !crate::script::vm::onsend(ctx, t.dst, t.proto, local, &t.data) {
        // Kamailio's E_SEND: the send did not happen.
        return -477;
    }
    ctx.out.push(t);
    1
}

/// RFC 3261 §16.11: a stateless branch that is the same for retransmissions.
/// From the received top Via's branch when it has the magic cookie (so CANCEL
/// and the ACK of a negative reply match the INVITE), else from the fields an
/// RFC 2543 transaction is identified by; the outgoing Request-URI is mixed in
/// so a spiral through this proxy gets a new branch.
fn stateless_branch(ctx: &MsgCtx<'_>, out: &mut SmallVec<[u8; 32]>) {
    let msg = ctx.msg;
    let ruri = ctx.ruri();
    let h = match ctx_top_via(ctx) {
        Some((_, via)) if via.branch().is_some_and(|b| b.starts_with(MAGIC)) => fnv1a(
            ctx.env.secret,
            &[via.branch().unwrap_or(b""), via.host_raw(), ruri],
        ),
        _ => {
            let get = |id| msg.header_value(id).unwrap_or(b"");
            let cseq = get(HeaderName::CSeq);
            let cseq_num = &cseq[..cseq
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(cseq.len())];
            fnv1a(
                ctx.env.secret,
                &[
                    get(HeaderName::To),
                    get(HeaderName::From),
                    get(HeaderName::CallId),
                    get(HeaderName::Via),
                    cseq_num,
                    ruri,
                ],
            )
        }
    };
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(b"sl");
    out.extend_from_slice(&hex16(h));
}

/// `v` as 16 lower-case hex digits (what `push_hex(out, v, 16)` appends).
fn hex16(v: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, d) in out.iter_mut().enumerate() {
        *d = b"0123456789abcdef"[((v >> ((15 - i) * 4)) & 0xf) as usize];
    }
    out
}

/// Sends the reply in `ctx` back along its Via path: removes our top Via and
/// sends to the next one. Returns 1, or -1 when the top Via is not ours or
/// there is no next Via.
pub fn reply(ctx: &mut MsgCtx<'_>) -> i32 {
    let msg = ctx.msg;
    let Some(h) = msg.header(HeaderName::Via) else {
        return -1;
    };
    let h_index = msg
        .headers()
        .iter()
        .position(|x| x.line == h.line)
        .unwrap_or(0);
    let mut values = vias(msg.value(h));
    let Some(Ok(top)) = values.next() else {
        return -1;
    };
    if !ctx.env.is_myself(top.host_raw(), top.port(), top.proto()) {
        log::debug!(
            "reply with a top Via that is not ours: {:?}",
            String::from_utf8_lossy(top.host_raw())
        );
        return -1;
    }
    let Some(next) = second_via(msg) else {
        log::debug!("reply with no Via left after ours: dropped");
        return -1;
    };
    let proto = next.proto().unwrap_or(Proto::Udp);
    let host = next.received().unwrap_or(next.host_raw());
    let Some(ip) = host_addr(ctx, host) else {
        log::warn!(
            "reply: cannot resolve Via host {:?}",
            String::from_utf8_lossy(host)
        );
        return -478;
    };
    let port = match next.rport() {
        Rport::Value(p) => p,
        _ => next.port().unwrap_or(proto.default_port()),
    };
    let dst = SocketAddr::new(ip, port);

    let mut edits = ctx.edits.clone();
    match values.next() {
        // More values in the same header: delete ours and the comma after it.
        Some(Ok(second)) => {
            let start = h.value.start as usize;
            edits.delete(start..start + second.span().start);
        }
        Some(Err(_)) => return -1,
        None => edits.remove_header(msg, h_index),
    }
    let Some(socket) = ctx.env.socket_for(proto, &dst, None) else {
        log::warn!("reply: no {proto} socket to reach {dst}");
        return -477;
    };
    // On a wildcard socket, answer from the address our Via named.
    let info = &ctx.env.sockets[usize::from(socket)];
    let local = host_ip(top.host_raw())
        .filter(|ip| info.addr.ip().is_unspecified() && ip.is_ipv4() == dst.is_ipv4())
        .map(|ip| SocketAddr::new(ip, info.addr.port()));
    let out = &mut ctx.core.scratch;
    serialize(msg, &edits, out);
    let data = Bytes::copy_from_slice(out);
    // RFC 3261 §18.2.2: over a stream, back on the request's connection.
    let conn = via_conn(&top).filter(|_| proto.is_reliable());
    ctx.out.push(Transmit {
        data,
        dst,
        proto,
        socket: Some(socket),
        local,
        conn,
        // A reply relayed statelessly: what onreply_route asked.
        flags: ctx.state.reply_flags(),
    });
    1
}

#[cfg(test)]
mod tests {
    use crate::modules::testutil::Harness;

    fn request_to(ruri: &str) -> String {
        format!(
            "OPTIONS {ruri} SIP/2.0\n\
Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKabc\n\
From: <sip:alice@example.com>;tag=1\n\
To: <sip:bob@example.com>\n\
Call-ID: c1\n\
CSeq: 1 OPTIONS\n\
Content-Length: 0\n\n"
        )
    }

    /// Where the R-URI (or `$du`) sends the request: the address the URI
    /// parse read, `localhost`, or Kamailio's error codes.
    #[test]
    fn next_hop_address_of_the_uri_host() {
        let hop = |ruri: &str, du: Option<&str>| {
            let mut h = Harness::new(&request_to(ruri));
            let mut ctx = h.ctx();
            ctx.dst_uri = du.map(|d| bytes::Bytes::copy_from_slice(d.as_bytes()));
            super::resolve_hop(&ctx, None, None, None).map(|h| (h.dst.to_string(), h.proto))
        };
        use crate::sip::Proto::{Tcp, Udp};
        assert_eq!(
            hop("sip:bob@192.0.2.99", None),
            Ok(("192.0.2.99:5060".into(), Udp))
        );
        assert_eq!(
            hop("sip:bob@192.0.2.99:5070;transport=tcp", None),
            Ok(("192.0.2.99:5070".into(), Tcp))
        );
        assert_eq!(
            hop("sip:bob@LocalHost:5099", None),
            Ok(("127.0.0.1:5099".into(), Udp))
        );
        assert_eq!(
            hop("sip:bob@example.com", Some("sip:192.0.2.98:5080")),
            Ok(("192.0.2.98:5080".into(), Udp))
        );
        // IPv6: read, but no IPv6 socket to send from.
        assert_eq!(hop("sip:bob@[2001:db8::9]", None), Err(-477));
        // A name and no resolver; a URI without host.
        assert_eq!(hop("sip:bob@unknown.example", None), Err(-478));
        assert_eq!(hop("tel:+15551234", None), Err(-478));
    }

    /// What Kamailio 5.6's receive path drops before the script (checked
    /// live with loadtest/sidebyside configs/parity.cfg) and what it lets in.
    #[test]
    fn requests_kamailio_drops_before_the_script() {
        use super::{check_request, Reject};
        use crate::sip::Message;
        let base = request_to("sip:bob@example.com").replace('\n', "\r\n");
        let check = |from: &str, to: &str| {
            assert!(base.contains(from), "{from}");
            let text = base.replacen(from, to, 1);
            let msg = Message::parse(bytes::Bytes::from(text)).expect("parses");
            check_request(&msg)
        };
        assert_eq!(check("", ""), Ok(()));
        for (from, to) in [
            ("CSeq: 1 OPTIONS", "CSeq: x OPTIONS"),
            ("CSeq: 1 OPTIONS", "CSeq: 99999999999 OPTIONS"),
            ("CSeq: 1 OPTIONS", "CSeq: 1 OPT/IONS"),
            ("To: <sip:bob@example.com>", "To: garbage"),
            ("Via: SIP/2.0/UDP", "Via: sip/2.0/udp"),
            ("Via: SIP/2.0/UDP", "Via: SIP/2.0/XYZ"),
            // A field it refuses after the required ones: the script runs.
            (
                "Content-Length: 0",
                "Max-Forwards: 1\r\nMax-Forwards: 2\r\nContent-Length: 0",
            ),
        ] {
            assert_eq!(check(from, to), Ok(()), "{to}");
        }
        for (from, to) in [
            ("Call-ID: c1\r\n", ""),
            ("CSeq: 1 OPTIONS\r\n", ""),
            ("From: <sip:alice@example.com>;tag=1\r\n", ""),
            ("To: <sip:bob@example.com>\r\n", ""),
            ("CSeq: 1 OPTIONS", "CSeq: 1"),
            ("CSeq: 1 OPTIONS", "CSeq: 1 OPTIONS x"),
            ("To: <sip:bob@example.com>", "To: <sip:bob@example.com"),
            ("Via: SIP/2.0/UDP", "Via: SIP/3.0/UDP"),
            ("Via: SIP/2.0/UDP", "Via: SIP/2.1/UDP"),
            // A field it refuses before a required one hides that one.
            ("From:", "Max-Forwards: 1\r\nMax-Forwards: 2\r\nFrom:"),
        ] {
            assert!(matches!(check(from, to), Err(Reject::Drop(_))), "{to:?}");
        }
    }

    #[test]
    fn hex16_is_push_hex() {
        for v in [0u64, 1, 0xabc, u64::MAX, 0x0123_4567_89ab_cdef] {
            let mut want = Vec::new();
            super::super::hash::push_hex(&mut want, v, 16);
            assert_eq!(super::hex16(v).to_vec(), want);
        }
    }
}
