//! The compiled form of a configuration: every route bound by index, every
//! function bound to its handler with pre-parsed arguments, every variable to
//! a slot. The VM walks this tree; it never looks a name up.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use super::pvkind::PvRef;
use super::registry::{Args, FunctionDef, RouteType};
use super::shared::HtableDef;
use super::value::Value;

/// Index of a route in [`Program::routes`].
pub type RouteId = u32;

/// A whole compiled configuration, shared read-only by every core.
#[derive(Debug, Default)]
pub struct Program {
    pub routes: Vec<Route>,
    /// `request_route` / `route {}`.
    pub request_route: Option<RouteId>,
    /// `onsend_route`, run before a request is sent (stateless or by tm).
    pub onsend_route: Option<RouteId>,
    /// Core `reply_route` / bare `onreply_route`, run for every received reply.
    pub reply_route: Option<RouteId>,
    /// `event_route[NAME]` by event name.
    pub event_routes: HashMap<String, RouteId>,
    /// Number of `$var(x)` slots each core keeps.
    pub var_slots: usize,
    /// Names of the `$var` slots, for diagnostics and the control socket.
    pub var_names: Vec<String>,
    /// The modules the configuration loads (and the core), by ringsip name.
    pub loaded_modules: Vec<&'static str>,
    /// `$var` start values (`modparam("pv", "varset", "x=i:1")`), by slot.
    pub var_init: Vec<(u32, Value<'static>)>,
    /// `route[NAME]` by name, for `route($var(x))` (names computed at run time).
    pub route_names: HashMap<Box<[u8]>, RouteId>,
    /// Names of the `$shv` slots.
    pub shv_names: Vec<String>,
    /// `$shv` start values by slot (`modparam("pv", "shvset", "x=i:1")`; else 0).
    pub shv_init: Vec<Value<'static>>,
    /// Hash tables declared with `modparam("htable", "htable", …)`, by index.
    pub htables: Vec<HtableDef>,
    /// Module parameters of kind [`super::registry::ParamKind::Pv`], compiled:
    /// (module, parameter, format).
    pub param_formats: Vec<(&'static str, String, Format)>,
    /// acc's settings (`enabled` when the configuration loads acc).
    pub acc: crate::modules::acc::AccConfig,
    /// What corex's `via_add_srvid()` / `via_add_xavp_params()` add to our Via.
    pub via: ViaExtras,
    /// xhttp's route and URL filters, when the configuration loads xhttp.
    pub xhttp: Option<crate::modules::xhttp::Xhttp>,
    /// mqueue's queues, in the order the configuration defines them.
    pub mqueues: Vec<crate::modules::mqueue::QueueDef>,
    /// log_custom's `log_udp` destination (`log_engine_data`).
    pub log_udp: Option<std::net::SocketAddr>,
}

/// The core parameters our Via's extra parameters come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViaExtras {
    /// `server_id=`: the `srvid` value.
    pub server_id: Option<i64>,
    /// `xavp_via_params=`: the XAVP whose fields become Via parameters.
    pub xavp_params: Option<bytes::Bytes>,
    /// `advertised_address=` / `advertised_port=`: what every message's
    /// Via names unless `set_advertised_address/port()` changes it — as if
    /// each message began with those calls (Kamailio 5.6 copies them into
    /// every received message; Record-Route and `myself` are not changed).
    pub advertised_address: Option<bytes::Bytes>,
    pub advertised_port: Option<u16>,
    /// `force_rport=yes`: every message starts as if it had called
    /// `force_rport()` (Kamailio 5.6, checked live: a reply to a request
    /// without `rport` goes to its source port, `;rport=` filled).
    pub force_rport: bool,
}

impl Program {
    pub fn route(&self, id: RouteId) -> &Route {
        &self.routes[id as usize]
    }

    /// A `route[NAME]` by name (`route($var(x))`).
    pub fn route_named(&self, name: &[u8]) -> Option<RouteId> {
        self.route_names.get(name).copied()
    }

    /// A compiled [`super::registry::ParamKind::Pv`] module parameter, if set.
    pub fn param_format(&self, module: &str, param: &str) -> Option<&Format> {
        self.param_formats
            .iter()
            .find(|(m, p, _)| *m == module && p == param)
            .map(|(_, _, f)| f)
    }
}

/// One route block.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub kind: RouteType,
    pub body: Block,
}

pub type Block = Box<[Stmt]>;

/// A statement; `line` fields are the source line (for `$cfg(line)` and logs).
#[derive(Debug)]
pub enum Stmt {
    /// An expression evaluated for its effect (function call, `route(X)`);
    /// its value becomes `$retcode`.
    Eval(Expr),
    If {
        cond: Expr,
        then: Block,
        otherwise: Block,
    },
    /// `switch`: the body is one block; cases jump into it (fall-through without `break`).
    Switch {
        subject: Expr,
        cases: Box<[(CaseLabel, usize)]>,
        default: Option<usize>,
        body: Block,
    },
    While {
        cond: Expr,
        body: Block,
    },
    Assign {
        target: PvRef,
        op: AssignOp,
        value: Expr,
    },
    Return(Option<Expr>),
    Exit,
    Drop,
    Break,
}

/// A `case` label: a constant, or `case /"regex":`.
#[derive(Debug)]
pub enum CaseLabel {
    Value(Value<'static>),
    Regex(Box<regex::bytes::Regex>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `:=` (sets, replacing all values of an AVP)
    SetAll,
    /// `+=`
    Add,
}

#[derive(Debug)]
pub enum Expr {
    Const(Value<'static>),
    /// A compound expression that calls nothing (marked by the compiler), so
    /// the VM reads it with shared access to the context, borrowing values.
    Pure(Box<Expr>),
    Pv(PvRef),
    /// A string with pseudo-variables in it.
    Format(Format),
    Call(Call),
    /// `route(NAME)` used as an expression.
    Route(RouteId),
    /// `route($var(x))`: the route named by the value, found at run time.
    DynRoute(Box<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `x =~ "re"` with a constant pattern compiled once (`negate` for `!~`).
    Match {
        subject: Box<Expr>,
        regex: Box<regex::bytes::Regex>,
        negate: bool,
    },
    /// `x =~ y` where the pattern is computed per message.
    DynMatch {
        subject: Box<Expr>,
        pattern: Box<Expr>,
        negate: bool,
    },
    /// `x == myself` (`negate` for `!=`).
    Myself {
        subject: Box<Expr>,
        negate: bool,
    },
    /// `src_ip == 10.0.0.0/8`.
    InNet {
        subject: Box<Expr>,
        net: IpNet,
        negate: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
    BitNot,
    /// `defined $x`
    Defined,
    /// `strlen(x)`
    Strlen,
    /// `strempty(x)`
    Strempty,
    /// `(int)x`
    CastInt,
    /// `(str)x`
    CastStr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
    /// `==` (string comparison is case-sensitive unless one side is a number)
    Eq,
    Ne,
    /// Case-insensitive string equality (core keywords `method`, `uri` compared to strings).
    IEq,
    INe,
    /// `eq`/`ne`: forced string comparison.
    StrEq,
    StrNe,
    /// `ieq`/`ine`: forced integer comparison.
    IntEq,
    IntNe,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
}

/// A bound function call.
pub struct Call {
    pub def: &'static FunctionDef,
    pub args: Args,
    /// Source line of the call (for logs).
    pub line: u32,
}

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(…)@{}", self.def.name, self.line)
    }
}

/// A string with pseudo-variables: literal parts and PV reads, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Format {
    pub parts: Vec<FormatPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatPart {
    Lit(Bytes),
    Pv(PvRef),
}

impl Format {
    /// A format made of one constant string.
    pub fn literal(s: impl Into<Bytes>) -> Format {
        Format {
            parts: vec![FormatPart::Lit(s.into())],
        }
    }

    /// The constant text, when the format holds no pseudo-variable.
    pub fn as_literal(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(b""),
            [FormatPart::Lit(b)] => Some(b),
            _ => None,
        }
    }
}

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V4(net), IpAddr::V6(ip)) => ip.to_ipv4_mapped().is_some_and(|v4| {
                IpNet {
                    addr: IpAddr::V4(net),
                    prefix: self.prefix,
                }
                .contains(IpAddr::V4(v4))
            }),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }

    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address (optionally in brackets) with `/n`.
    pub fn parse(text: &str) -> Option<IpNet> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: std::net::IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }
}

/// Shared handle to a compiled program.
pub type SharedProgram = Arc<Program>;

impl Expr {
    /// Whether evaluating it calls no function and no route.
    pub fn calls_nothing(&self) -> bool {
        match self {
            Expr::Const(_) | Expr::Pv(_) | Expr::Format(_) | Expr::Pure(_) => true,
            Expr::Call(_) | Expr::Route(_) | Expr::DynRoute(_) => false,
            Expr::Unary(_, inner) => inner.calls_nothing(),
            Expr::Binary(_, a, b) => a.calls_nothing() && b.calls_nothing(),
            Expr::Match { subject, .. }
            | Expr::Myself { subject, .. }
            | Expr::InNet { subject, .. } => subject.calls_nothing(),
            Expr::DynMatch {
                subject, pattern, ..
            } => subject.calls_nothing() && pattern.calls_nothing(),
        }
    }

    /// Wraps a compound expression that calls nothing in [`Expr::Pure`].
    pub fn mark_pure(self) -> Expr {
        match self {
            Expr::Const(_) | Expr::Pv(_) | Expr::Format(_) | Expr::Pure(_) => self,
            e if e.calls_nothing() => Expr::Pure(Box::new(e)),
            e => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_addresses() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:10.9.9.9".parse().unwrap()));
        let one = IpNet::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = IpNet::parse("[2001:db8::]/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_none());
        assert!(IpNet::parse("nope").is_none());
    }
}
