//! The syntax tree of a parsed configuration.
//!
//! Everything here is as written, after preprocessing: `#!define` names are
//! replaced, `include_file` text is inlined, `#!subst` rules are applied,
//! adjacent double-quoted strings are joined. Nothing is resolved yet: module
//! and function names, flag names, route names and pseudo-variable classes
//! are plain strings for the compiler to check. Every node has a [`Span`].
//!
//! Route kinds are the phases of message handling:
//!
//! ```text
//!  request ─▶ request_route ──route(X)──▶ route[X]
//!               │ t_relay() with t_on_branch / t_on_reply / t_on_failure
//!               ├─▶ branch_route[B]      once per outgoing branch
//!               │        ▼  onsend_route before each send
//!  reply   ─▶ reply_route ─▶ onreply_route[R] (transaction's reply)
//!               └─▶ failure_route[F]     all branches failed
//!  module events ─▶ event_route[module:event]
//! ```

use std::net::IpAddr;

use super::diag::{SourceMap, Span};
use super::pv::Pv;

/// A whole configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// The files read, for rendering spans.
    pub sources: SourceMap,
    /// Compatibility mode chosen by the `#!KAMAILIO`/`#!SER`/`#!MAXCOMPAT` header.
    pub compat: Compat,
    /// `#!define`d names at the end of preprocessing, in definition order.
    pub defines: Vec<DefineInfo>,
    /// `name = value` core and custom (`group.name`) parameters, in order.
    pub globals: Vec<GlobalParam>,
    /// `flags NAME:bit, …` declarations.
    pub flags: Vec<FlagDecl>,
    /// `avpflags name, …` declarations.
    pub avpflags: Vec<FlagDecl>,
    /// `loadpath "dir"` / `mpath="dir"`.
    pub load_paths: Vec<LoadPath>,
    /// `loadmodule "x.so"`, in order.
    pub modules: Vec<LoadModule>,
    /// `modparam("mod", "param", value)`, in order.
    pub modparams: Vec<ModParam>,
    /// Route blocks in the order written.
    pub routes: Vec<RouteBlock>,
}

impl Config {
    /// The block of `kind` with `name` (`None` for the unnamed blocks:
    /// `request_route`, `reply_route`, bare `onsend_route`…).
    pub fn route(&self, kind: RouteKind, name: Option<&str>) -> Option<&RouteBlock> {
        self.routes
            .iter()
            .find(|r| r.kind == kind && r.name.as_deref() == name)
    }

    /// All blocks of one kind.
    pub fn routes_of(&self, kind: RouteKind) -> impl Iterator<Item = &RouteBlock> {
        self.routes.iter().filter(move |r| r.kind == kind)
    }

    /// The last value given to a global parameter.
    pub fn global(&self, name: &str) -> Option<&GlobalParam> {
        self.globals.iter().rev().find(|g| g.name == name)
    }

    /// The modparams that apply to `module` (a `mod1|mod2` list matches each).
    pub fn modparams_for<'a>(&'a self, module: &'a str) -> impl Iterator<Item = &'a ModParam> {
        self.modparams
            .iter()
            .filter(move |m| m.module_names().any(|n| n == module))
    }

    /// Whether `name` was defined at the end of preprocessing.
    pub fn is_defined(&self, name: &str) -> bool {
        self.defines.iter().any(|d| d.name == name)
    }
}

/// The compatibility mode of the header line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compat {
    /// `#!KAMAILIO`, `#!OPENSER` or no header.
    #[default]
    Kamailio,
    /// `#!SER`
    Ser,
    /// `#!MAXCOMPAT` / `#!ALL`
    Max,
}

/// A `#!define`d name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefineInfo {
    /// The name.
    pub name: String,
    /// The value text, if any.
    pub value: Option<String>,
    /// Where it was (last) defined.
    pub span: Span,
}

/// `name = value [desc "text"]`.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalParam {
    /// `debug`, `listen`, or `group.name` for a custom parameter.
    pub name: String,
    /// The value.
    pub value: Value,
    /// The `desc "…"` of a custom parameter.
    pub description: Option<String>,
    /// Where the name was written.
    pub span: Span,
}

/// A parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A number (possibly negative).
    Int(i64),
    /// A string (adjacent double-quoted strings joined).
    Str(String),
    /// `yes|true|on|enable` or `no|false|off|disable`.
    Bool(bool),
    /// An unquoted word: a name (`LOG_LOCAL0`), host or address as written.
    Word(String),
    /// The socket list of `listen=` / `alias=`.
    Sockets(Vec<Socket>),
}

/// One `[proto:]host[:port]` of a `listen`/`alias` list, with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socket {
    /// `udp`, `tcp`, `tls`, `sctp`, `ws`, `wss` (lowercase), or `None`
    /// (any, also for `*`).
    pub proto: Option<String>,
    /// Address or name; more than one for `(a, b)` multihoming (SCTP).
    pub hosts: Vec<String>,
    /// Port; `Some(0)` for `*`.
    pub port: Option<u16>,
    /// `advertise host[:port]`.
    pub advertise: Option<Advertise>,
    /// `name "id"`.
    pub name: Option<String>,
    /// `virtual`: the address may be absent from the host (a floating IP).
    pub virtual_ip: bool,
    /// Where the socket was written.
    pub span: Span,
}

/// The public address announced for a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertise {
    /// Host or address.
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
}

/// `flags NAME[:bit]` or `avpflags NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagDecl {
    /// The flag's name.
    pub name: String,
    /// The bit, if given.
    pub bit: Option<u32>,
    /// Where it was declared.
    pub span: Span,
}

/// `loadpath "dir"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPath {
    /// The directory (or `dir1:dir2` list) as written.
    pub path: String,
    /// Where it was written.
    pub span: Span,
}

/// `loadmodule "name"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadModule {
    /// As written: `tm.so`, `tm`, or a path.
    pub path: String,
    /// Where it was written.
    pub span: Span,
}

impl LoadModule {
    /// The module name: the file name without directory and `.so`.
    pub fn name(&self) -> &str {
        module_stem(&self.path)
    }
}

/// The module name of a `loadmodule` argument.
pub(crate) fn module_stem(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".so").unwrap_or(file)
}

/// `modparam("module", "param", value)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModParam {
    /// The module name as written, possibly `mod1|mod2`.
    pub module: String,
    /// The parameter name.
    pub param: String,
    /// The value: [`Value::Int`], [`Value::Str`] or [`Value::Bool`].
    pub value: Value,
    /// Where `modparam` was written.
    pub span: Span,
}

impl ModParam {
    /// The module names a `mod1|mod2` list stands for.
    pub fn module_names(&self) -> impl Iterator<Item = &str> {
        self.module
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// The phases a route block runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    /// `request_route {}` / `route {}`: every received request.
    Request,
    /// `route[NAME] {}`: called with `route(NAME)`.
    Named,
    /// `failure_route[NAME]`: armed by `t_on_failure`.
    Failure,
    /// `branch_route[NAME]`: armed by `t_on_branch`.
    Branch,
    /// `onreply_route[NAME]`: armed by `t_on_reply`.
    TmReply,
    /// `reply_route {}` / `onreply_route {}` / `onreply_route[0]`: every reply.
    Reply,
    /// `onsend_route {}`: before a request is sent.
    OnSend,
    /// `event_route[module:event]`.
    Event,
}

impl RouteKind {
    /// The keyword that introduces this kind.
    pub fn keyword(self) -> &'static str {
        match self {
            RouteKind::Request => "request_route",
            RouteKind::Named => "route",
            RouteKind::Failure => "failure_route",
            RouteKind::Branch => "branch_route",
            RouteKind::TmReply => "onreply_route",
            RouteKind::Reply => "reply_route",
            RouteKind::OnSend => "onsend_route",
            RouteKind::Event => "event_route",
        }
    }
}

/// A route block.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteBlock {
    /// Which phase.
    pub kind: RouteKind,
    /// The name in `[...]` (an identifier, number or string as text).
    pub name: Option<String>,
    /// The statements.
    pub body: Block,
    /// Where the keyword was written.
    pub span: Span,
}

/// `{ statements }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// The statements in order.
    pub stmts: Vec<Stmt>,
    /// Where `{` was written.
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// What it does.
    pub kind: StmtKind,
    /// Where it starts.
    pub span: Span,
}

/// Statement kinds.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `;`
    Empty,
    /// `{ … }`
    Block(Block),
    /// `if (cond) then [else otherwise]`
    If {
        /// The condition.
        cond: Expr,
        /// Runs when the condition is true.
        then: Box<Stmt>,
        /// Runs otherwise (`else if` is an `If` here).
        otherwise: Option<Box<Stmt>>,
    },
    /// `switch (subject) { case …: … default: … }` (cases fall through until `break`).
    Switch {
        /// The value switched on.
        subject: Expr,
        /// Cases in order.
        cases: Vec<Case>,
    },
    /// `while (cond) body`
    While {
        /// The condition.
        cond: Expr,
        /// The loop body.
        body: Box<Stmt>,
    },
    /// `break`
    Break,
    /// `return [value]`
    Return(Option<Expr>),
    /// `exit [value]`
    Exit(Option<Expr>),
    /// `drop [value]`
    Drop(Option<Expr>),
    /// `route(NAME)`
    Route(RouteTarget),
    /// A function call: `f(args)` or a bare `f` where that is allowed.
    Call(Call),
    /// `$pv = value`, `$pv := value`, `$pv += value`
    Assign {
        /// The variable written.
        target: Pv,
        /// The operator.
        op: AssignOp,
        /// The value.
        value: Expr,
    },
}

/// One `case` (or `default`) of a switch.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// `None` for `default:`.
    pub label: Option<CaseLabel>,
    /// Statements until the next label.
    pub body: Vec<Stmt>,
    /// Where `case`/`default` was written.
    pub span: Span,
}

/// The value after `case`.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseLabel {
    /// A constant expression (string or integer).
    pub value: Expr,
    /// `case /"regex":` matches a regular expression.
    pub regex: bool,
}

/// Assignment operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    /// `=`
    Assign,
    /// `:=`
    ColonAssign,
    /// `+=`
    AddAssign,
}

/// The argument of `route(...)`.
#[derive(Clone, Debug, PartialEq)]
pub enum RouteTarget {
    /// A fixed name (identifier, number or string as text).
    Name(String),
    /// A name computed at run time.
    Dynamic(Box<Expr>),
}

/// A function call.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The function name.
    pub name: String,
    /// Arguments in order.
    pub args: Vec<Expr>,
    /// Written with parentheses (`f()` rather than `f`).
    pub parens: bool,
    /// Where the name was written.
    pub span: Span,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it starts.
    pub span: Span,
}

/// Expression kinds.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A number (`yes`/`on`/… are 1, `no`/`off`/… are 0, as in Kamailio).
    Int(i64),
    /// A string as written (escapes decoded; `$…` inside is not split, see
    /// [`crate::script::format::parse_format`]).
    Str(String),
    /// `$null`
    Null,
    /// A pseudo-variable.
    Pv(Pv),
    /// A select, `@via[1].host` (text after `@`).
    Select(String),
    /// A message keyword: `method`, `uri`, `src_ip` …
    Keyword(CondKeyword),
    /// `myself`
    Myself,
    /// An IP address.
    Ip(IpAddr),
    /// A network `addr/bits` or `addr/mask`.
    Net {
        /// The address.
        addr: IpAddr,
        /// The mask.
        mask: NetMask,
    },
    /// An unquoted word: `INET`, `UDP`, a host name, `udp:1.2.3.4:5060`,
    /// a flag name, `uri:host` …
    Word(String),
    /// A function call used as a value (its return code).
    Call(Call),
    /// `route(NAME)` used as a value.
    Route(RouteTarget),
    /// A prefix operator.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// Its operand.
        operand: Box<Expr>,
    },
    /// An infix operator.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
    },
}

/// Message keywords usable as operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CondKeyword {
    /// `method`
    Method,
    /// `uri`
    Uri,
    /// `status`
    Status,
    /// `from_uri`
    FromUri,
    /// `to_uri`
    ToUri,
    /// `src_ip`
    SrcIp,
    /// `src_port`
    SrcPort,
    /// `dst_ip`
    DstIp,
    /// `dst_port`
    DstPort,
    /// `snd_ip`
    SndIp,
    /// `snd_port`
    SndPort,
    /// `snd_proto` / `to_proto`
    SndProto,
    /// `snd_af` / `to_af`
    SndAf,
    /// `to_ip`
    ToIp,
    /// `to_port`
    ToPort,
    /// `proto`
    Proto,
    /// `af`
    Af,
    /// `msg:len`
    MsgLen,
}

impl CondKeyword {
    /// Whether a bare word may follow a comparison with this keyword: a
    /// method name after `method`, a host name after an address keyword.
    pub fn takes_word_operand(self) -> bool {
        use CondKeyword::*;
        matches!(self, Method | SrcIp | DstIp | SndIp | ToIp)
    }

    /// The keyword for an identifier (`msg:len` is handled by the parser).
    pub fn from_ident(s: &str) -> Option<Self> {
        use CondKeyword::*;
        Some(match s {
            "method" => Method,
            "uri" => Uri,
            "status" => Status,
            "from_uri" => FromUri,
            "to_uri" => ToUri,
            "src_ip" => SrcIp,
            "src_port" => SrcPort,
            "dst_ip" => DstIp,
            "dst_port" => DstPort,
            "snd_ip" => SndIp,
            "snd_port" => SndPort,
            "snd_proto" | "to_proto" => SndProto,
            "snd_af" | "to_af" => SndAf,
            "to_ip" => ToIp,
            "to_port" => ToPort,
            "proto" => Proto,
            "af" => Af,
            _ => return None,
        })
    }
}

/// The mask of a network literal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetMask {
    /// `/8`
    Bits(u8),
    /// `/255.0.0.0`
    Addr(IpAddr),
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!` / `not`
    Not,
    /// `-`
    Neg,
    /// `~`
    BitNot,
    /// `defined`
    Defined,
    /// `strlen(…)`
    StrLen,
    /// `strempty(…)`
    StrEmpty,
    /// `(int)`
    IntCast,
    /// `(str)`
    StrCast,
}

/// Infix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `||` / `or`
    Or,
    /// `&&` / `and`
    And,
    /// `|`
    BitOr,
    /// `&`
    BitAnd,
    /// `^`
    BitXor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `=~` (regex match)
    Match,
    /// `!~` (regex does not match)
    NotMatch,
    /// `eq` (string comparison)
    StrEq,
    /// `ne`
    StrNe,
    /// `ieq` (integer comparison)
    IntEq,
    /// `ine`
    IntNe,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%` / `mod`
    Mod,
}

impl BinaryOp {
    /// Comparison operators (their right side may be a bare word when the
    /// left is a message keyword, as in `src_ip == gw.example.com`).
    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(
            self,
            Eq | Ne | Match | NotMatch | StrEq | StrNe | IntEq | IntNe | Lt | Le | Gt | Ge
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names() {
        let m = LoadModule {
            path: "/usr/lib/kamailio/modules/tm.so".into(),
            span: Span::default(),
        };
        assert_eq!(m.name(), "tm");
        let m = LoadModule {
            path: "sl".into(),
            span: Span::default(),
        };
        assert_eq!(m.name(), "sl");
        let p = ModParam {
            module: "nathelper|registrar".into(),
            param: "received_avp".into(),
            value: Value::Str("$avp(RECEIVED)".into()),
            span: Span::default(),
        };
        assert_eq!(
            p.module_names().collect::<Vec<_>>(),
            ["nathelper", "registrar"]
        );
    }

    #[test]
    fn keywords() {
        assert_eq!(
            CondKeyword::from_ident("to_proto"),
            Some(CondKeyword::SndProto)
        );
        assert_eq!(CondKeyword::from_ident("xyz"), None);
        assert!(BinaryOp::Match.is_comparison());
        assert!(!BinaryOp::Add.is_comparison());
        assert_eq!(RouteKind::TmReply.keyword(), "onreply_route");
    }
}
