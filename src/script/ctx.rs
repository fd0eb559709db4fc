//! The context a route runs in: the message, where it came from, what the
//! script changed so far, and what it asked to send. Shared settings live in
//! [`Env`] (read-only, all cores), per-core state in [`CoreState`].

use std::any::Any;
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::ir::{Format, FormatPart, Program};
use super::pvkind::{NamePart, PvKind, PvRef};
use super::registry::RouteType;
use super::value::Value;
use crate::sip::nameaddr::NameAddr;
use crate::sip::uri::Uri;
use crate::sip::{Edits, HeaderName, Message, Proto, SocketId, Transmit};

/// A listening socket as the script and the modules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    pub proto: Proto,
    /// The bound address (for a wildcard bind, the wildcard).
    pub addr: SocketAddr,
    /// `advertise host:port`: what to write in Via and Record-Route instead.
    pub advertise: Option<(String, u16)>,
}

/// Settings shared read-only by every core.
#[derive(Debug, Clone)]
pub struct Env {
    pub sockets: Vec<SocketInfo>,
    /// `alias=` host names and addresses (with an optional port) that are "myself".
    pub aliases: Vec<(String, Option<u16>)>,
    /// Log level (`debug=`): messages at or below it are printed.
    pub debug: i32,
    /// `Server:` / `User-Agent:` value on locally generated messages.
    pub server_header: Bytes,
    /// Secret mixed into stateless branches and To-tags.
    pub secret: u64,
    /// Wall-clock time as modules see it (registration expiry, nonces).
    pub epoch: Epoch,
    /// Module state shared by every core (registrations, credentials, address groups).
    pub shared: Shared,
}

/// Wall-clock time without reading the clock: `now` (monotonic) measured from
/// an anchor the runtime took once at start-up. With no anchor (tests), the
/// time is `unix_ms` for every `now`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Epoch {
    pub at: Option<Instant>,
    /// Milliseconds since 1970 at `at`.
    pub unix_ms: u64,
}

impl Epoch {
    /// Milliseconds since 1970 at `now`.
    pub fn unix_ms(&self, now: Instant) -> u64 {
        match self.at {
            Some(at) if now >= at => self.unix_ms + (now - at).as_millis() as u64,
            Some(at) => self.unix_ms.saturating_sub((at - now).as_millis() as u64),
            None => self.unix_ms,
        }
    }
}

/// Periodic work on shared module state (usrloc expiry and write-back). Every
/// core's engine calls it once per interval; an implementation that must run
/// once per interval in all makes the cores agree (e.g. with an atomic).
pub trait SharedTimer: Send + Sync {
    fn interval(&self) -> Duration;
    fn on_timer(&self, unix_ms: u64);
}

/// Module state shared by every core, built at start-up and looked up by type
/// (a handful of entries: a scan is cheaper than a hash).
#[derive(Clone, Default)]
pub struct Shared {
    items: Vec<Arc<dyn Any + Send + Sync>>,
    timers: Vec<Arc<dyn SharedTimer>>,
}

impl Shared {
    /// Adds (or replaces) the state of type `T`.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.items.retain(|i| !i.is::<T>());
        self.items.push(value);
    }

    /// The state of type `T`, if a module put one there.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.items.iter().find_map(|i| i.downcast_ref::<T>())
    }

    /// Registers periodic work (see [`SharedTimer`]).
    pub fn add_timer(&mut self, timer: Arc<dyn SharedTimer>) {
        self.timers.push(timer);
    }

    pub fn timers(&self) -> &[Arc<dyn SharedTimer>] {
        &self.timers
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shared({} items, {} timers)",
            self.items.len(),
            self.timers.len()
        )
    }
}

/// An extra target for the request besides the R-URI (usrloc `lookup` with
/// more than one contact). tm forks to these in parallel; the stateless
/// `forward()` uses only the R-URI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Branch {
    pub uri: Bytes,
    /// q in thousandths; -1 when unspecified.
    pub q: i32,
    /// Next hop (`$du` of the branch): the first Path URI or the received address.
    pub dst_uri: Option<Bytes>,
    /// The Path to put in Route headers.
    pub path: Option<Bytes>,
    /// Branch flags.
    pub flags: u32,
    /// The socket to send from (`udp:IP:PORT`), when the contact was bound to one.
    pub socket: Option<Bytes>,
}

/// Credentials that an auth function accepted for this message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    /// Index of the (Proxy-)Authorization header in the message.
    pub header: usize,
    pub username: Bytes,
    pub realm: Bytes,
}

impl Default for Env {
    fn default() -> Env {
        Env {
            sockets: Vec::new(),
            aliases: Vec::new(),
            debug: 2,
            server_header: Bytes::from_static(
                concat!("ringsip (", env!("CARGO_PKG_VERSION"), ")").as_bytes(),
            ),
            secret: 0x5eed_5eed_5eed_5eed,
            epoch: Epoch::default(),
            shared: Shared::default(),
        }
    }
}

impl Env {
    /// RFC 3261 "myself": a host (and port; none means the transport default)
    /// that is one of our listen addresses, advertised addresses or aliases.
    pub fn is_myself(&self, host: &[u8], port: Option<u16>, proto: Option<Proto>) -> bool {
        let host = trim_brackets(host);
        let ip: Option<IpAddr> = std::str::from_utf8(host).ok().and_then(|h| h.parse().ok());
        for s in &self.sockets {
            let default = proto.unwrap_or(s.proto).default_port();
            let want_port = port.unwrap_or(default);
            if let Some((adv_host, adv_port)) = &s.advertise {
                if adv_host.as_bytes().eq_ignore_ascii_case(host) && *adv_port == want_port {
                    return true;
                }
            }
            if s.addr.port() != want_port {
                continue;
            }
            if let Some(ip) = ip {
                if s.addr.ip() == ip || (s.addr.ip().is_unspecified() && ip.is_loopback()) {
                    return true;
                }
            }
        }
        self.aliases.iter().any(|(name, p)| {
            let name_ok = trim_brackets(name.as_bytes()).eq_ignore_ascii_case(host);
            let default = proto.unwrap_or(Proto::Udp).default_port();
            name_ok && p.is_none_or(|p| p == port.unwrap_or(default))
        })
    }

    /// The socket to send from toward `dst` over `proto`: the preferred one if it
    /// fits, else the first of the same transport and address family.
    pub fn socket_for(
        &self,
        proto: Proto,
        dst: &SocketAddr,
        preferred: Option<SocketId>,
    ) -> Option<SocketId> {
        let fits = |s: &SocketInfo| s.proto == proto && s.addr.is_ipv4() == dst.is_ipv4();
        if let Some(p) = preferred {
            if self.sockets.get(usize::from(p)).is_some_and(fits) {
                return Some(p);
            }
        }
        self.sockets.iter().position(fits).map(|i| i as SocketId)
    }
}

fn trim_brackets(h: &[u8]) -> &[u8] {
    match h {
        [b'[', inner @ .., b']'] => inner,
        _ => h,
    }
}

/// State a core keeps across messages.
#[derive(Debug, Default)]
pub struct CoreState {
    /// `$var(x)` values by slot (they persist across messages, as in Kamailio).
    pub vars: Vec<Value<'static>>,
    /// Reusable output buffer for serializing.
    pub scratch: Vec<u8>,
}

impl CoreState {
    pub fn new(program: &Program) -> CoreState {
        CoreState {
            vars: vec![Value::Int(0); program.var_slots],
            scratch: Vec::with_capacity(4096),
        }
    }
}

/// Everything a route sees and changes while handling one message.
pub struct MsgCtx<'a> {
    pub env: &'a Env,
    pub program: &'a Program,
    pub core: &'a mut CoreState,
    pub msg: &'a Message,
    pub src: SocketAddr,
    pub local: SocketAddr,
    pub proto: Proto,
    pub socket: SocketId,
    pub now: Instant,
    pub route_type: RouteType,
    /// Changes to the message, applied when it is sent.
    pub edits: Edits,
    /// The Request-URI after rewriting (`$ru = …`), if rewritten.
    pub new_uri: Option<Bytes>,
    /// `$du`: the next hop, if set.
    pub dst_uri: Option<Bytes>,
    /// Message flags (`setflag`).
    pub flags: u64,
    /// `$retcode` of the last function or route call.
    pub retcode: i32,
    /// Messages to send.
    pub out: &'a mut Vec<Transmit>,
    /// Targets besides the R-URI (see [`Branch`]).
    pub branches: Vec<Branch>,
    /// Credentials accepted by an auth function (for `consume_credentials`, `check_to`).
    pub authorized: Option<Authorized>,
}

impl<'a> MsgCtx<'a> {
    /// Milliseconds since 1970 for this message (see [`Epoch`]).
    pub fn unix_ms(&self) -> u64 {
        self.env.epoch.unix_ms(self.now)
    }

    /// The Request-URI as it is now (rewritten or as received).
    pub fn ruri(&self) -> &[u8] {
        match &self.new_uri {
            Some(u) => u,
            None => self.msg.request_uri().unwrap_or(b""),
        }
    }

    /// Reads a pseudo-variable. Values borrow the message or the context.
    pub fn read_pv(&self, pv: &PvRef) -> Value<'_> {
        let msg = self.msg;
        let opt = |v: Option<&'a [u8]>| v.map_or(Value::Null, Value::str);
        match &pv.kind {
            PvKind::Ru => {
                if msg.is_request() {
                    Value::str(self.ruri())
                } else {
                    Value::Null
                }
            }
            PvKind::Ou => opt(msg.request_uri()),
            PvKind::RUser | PvKind::RHost | PvKind::RPort => {
                if !msg.is_request() {
                    return Value::Null;
                }
                let Ok(uri) = Uri::parse(self.ruri()) else {
                    return Value::Null;
                };
                match pv.kind {
                    PvKind::RUser => uri.user().map_or(Value::Null, Value::str),
                    PvKind::RHost => Value::str(uri.host_raw()),
                    _ => uri
                        .effective_port()
                        .map_or(Value::Null, |p| Value::Int(i64::from(p))),
                }
            }
            PvKind::From(part) => name_part(msg, HeaderName::From, *part),
            PvKind::To(part) => name_part(msg, HeaderName::To, *part),
            PvKind::Du => self.dst_uri.as_deref().map_or(Value::Null, Value::str),
            PvKind::Rm => Value::str(msg.method_bytes()),
            PvKind::Rs => msg
                .status()
                .map_or(Value::Null, |c| Value::Int(i64::from(c))),
            PvKind::Rr => opt(msg.reason()),
            PvKind::Ci => opt(msg.call_id()),
            PvKind::Si => Value::owned(self.src.ip().to_string().into_bytes()),
            PvKind::Sp => Value::Int(i64::from(self.src.port())),
            PvKind::Su => Value::owned(format!("sip:{}", fmt_hostport(self.src)).into_bytes()),
            PvKind::Ri => Value::owned(self.local.ip().to_string().into_bytes()),
            PvKind::Rp => Value::Int(i64::from(self.local.port())),
            PvKind::Proto => Value::str(self.proto.lower_name().as_bytes()),
            PvKind::Af => Value::str(if self.local.is_ipv4() {
                b"INET"
            } else {
                b"INET6"
            }),
            PvKind::Ua => opt(msg.header_value(HeaderName::UserAgent)),
            PvKind::Mb => Value::str(&msg.buf()[..msg.len()]),
            PvKind::Ml => Value::Int(msg.len() as i64),
            PvKind::Mt => Value::Int(if msg.is_request() { 1 } else { 2 }),
            PvKind::Rb => Value::str(msg.body()),
            PvKind::Cl => msg
                .header_value(HeaderName::ContentLength)
                .map_or(Value::Null, |v| {
                    Value::str(v).as_exact_int().map_or(Value::Null, Value::Int)
                }),
            PvKind::Retcode => Value::Int(i64::from(self.retcode)),
            PvKind::Mf => Value::Int(self.flags as i64),
            PvKind::Null => Value::Null,
            PvKind::Var(slot) => self
                .core
                .vars
                .get(*slot as usize)
                .map_or(Value::Int(0), Value::as_ref),
            PvKind::Hdr(key) => {
                let mut it = msg.headers_named(&key.name);
                let found = match pv.index {
                    None | Some(0) => it.next(),
                    Some(i) if i > 0 => it.nth(i as usize),
                    Some(i) => {
                        let all: smallvec::SmallVec<[_; 8]> = it.collect();
                        all.len()
                            .checked_sub(i.unsigned_abs() as usize)
                            .map(|j| all[j])
                    }
                };
                found.map_or(Value::Null, |h| Value::str(msg.value(h)))
            }
            PvKind::Hdrc(key) => Value::Int(msg.headers_named(&key.name).count() as i64),
        }
    }

    /// Writes a pseudo-variable; `Err` names why it cannot be written.
    pub fn write_pv(&mut self, pv: &PvRef, value: Value<'static>) -> Result<(), &'static str> {
        match &pv.kind {
            PvKind::Ru => match value {
                Value::Str(s) if !s.is_empty() => {
                    self.new_uri = Some(Bytes::from(s.into_owned()));
                    Ok(())
                }
                _ => Err("$ru needs a non-empty string"),
            },
            PvKind::Du => {
                self.dst_uri = match value {
                    Value::Null => None,
                    Value::Str(s) if s.is_empty() => None,
                    v => Some(Bytes::from(v.to_bytes().into_owned())),
                };
                Ok(())
            }
            PvKind::Mf => {
                self.flags = value.to_int() as u64;
                Ok(())
            }
            PvKind::Var(slot) => {
                // Kamailio's $var holds an int or a string; $null makes it 0.
                let v = if value.is_null() {
                    Value::Int(0)
                } else {
                    value
                };
                if let Some(cell) = self.core.vars.get_mut(*slot as usize) {
                    *cell = v;
                }
                Ok(())
            }
            _ => Err("read-only pseudo-variable"),
        }
    }

    /// Prints a format string for this message.
    pub fn format(&self, f: &Format) -> Vec<u8> {
        let mut out = Vec::new();
        self.format_into(f, &mut out);
        out
    }

    /// Prints a format string, appending to `out`.
    pub fn format_into(&self, f: &Format, out: &mut Vec<u8>) {
        for part in &f.parts {
            match part {
                FormatPart::Lit(b) => out.extend_from_slice(b),
                FormatPart::Pv(pv) => self.read_pv(pv).write_to(out),
            }
        }
    }

    /// A string argument's bytes for this message, without copying a constant.
    pub fn format_cow<'f>(&self, f: &'f Format) -> Cow<'f, [u8]> {
        match f.as_literal() {
            Some(lit) => Cow::Borrowed(lit),
            None => Cow::Owned(self.format(f)),
        }
    }
}

/// A part of the From or To header (`$fu`, `$tU`, `$ft`…); `$null` when absent or unreadable.
fn name_part(msg: &Message, id: HeaderName, part: NamePart) -> Value<'_> {
    let Some(na) = msg.header_value(id).and_then(|v| NameAddr::parse(v).ok()) else {
        return Value::Null;
    };
    match part {
        NamePart::Uri => Value::str(na.uri_raw()),
        NamePart::Tag => na.tag().map_or(Value::Null, Value::str),
        NamePart::Display => na
            .display_name()
            .map_or(Value::Null, |d| Value::str(d.raw())),
        NamePart::User | NamePart::Host => {
            let Ok(uri) = na.uri() else {
                return Value::Null;
            };
            match part {
                NamePart::User => uri.user().map_or(Value::Null, Value::str),
                _ => Value::str(uri.host_raw()),
            }
        }
    }
}

/// `ip:port` with IPv6 in brackets.
pub fn fmt_hostport(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}
