//! The one table of module functions and parameters. The compiler resolves a
//! call's name here once, runs the function's fixup on its arguments, and
//! stores the handler; the VM calls the handler directly.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use super::ctx::MsgCtx;
use super::ir::Format;
use super::pvkind::PvRef;

/// The kinds of route block, as a function's "where allowed" set names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteType {
    Request,
    Failure,
    Branch,
    /// tm `onreply_route[NAME]`
    OnReply,
    /// core `reply_route` / bare `onreply_route`
    Reply,
    OnSend,
    Event,
}

impl RouteType {
    pub fn mask(self) -> RouteMask {
        RouteMask(match self {
            RouteType::Request => RouteMask::REQUEST.0,
            RouteType::Failure => RouteMask::FAILURE.0,
            RouteType::Branch => RouteMask::BRANCH.0,
            RouteType::OnReply => RouteMask::ONREPLY.0,
            RouteType::Reply => RouteMask::REPLY.0,
            RouteType::OnSend => RouteMask::ONSEND.0,
            RouteType::Event => RouteMask::EVENT.0,
        })
    }
}

/// A set of route types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteMask(pub u16);

impl RouteMask {
    pub const REQUEST: RouteMask = RouteMask(1);
    pub const FAILURE: RouteMask = RouteMask(2);
    pub const BRANCH: RouteMask = RouteMask(4);
    pub const ONREPLY: RouteMask = RouteMask(8);
    pub const REPLY: RouteMask = RouteMask(16);
    pub const ONSEND: RouteMask = RouteMask(32);
    pub const EVENT: RouteMask = RouteMask(64);
    pub const ANY: RouteMask = RouteMask(0x7f);

    pub const fn or(self, other: RouteMask) -> RouteMask {
        RouteMask(self.0 | other.0)
    }

    pub fn allows(self, t: RouteType) -> bool {
        self.0 & t.mask().0 != 0
    }
}

/// One argument of a function call after fixup.
pub enum Arg {
    Int(i64),
    /// A constant string.
    Str(Bytes),
    /// A string with pseudo-variables, printed per message.
    Fmt(Format),
    /// A pseudo-variable to read or write (e.g. an output variable).
    Pv(PvRef),
    /// Whatever a module's fixup pre-parsed the argument into.
    Custom(Box<dyn Any + Send + Sync>),
}

impl fmt::Debug for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Int(i) => write!(f, "Int({i})"),
            Arg::Str(s) => write!(f, "Str({:?})", String::from_utf8_lossy(s)),
            Arg::Fmt(x) => write!(f, "Fmt({x:?})"),
            Arg::Pv(p) => write!(f, "Pv({p:?})"),
            Arg::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// The arguments of one call.
#[derive(Debug, Default)]
pub struct Args(pub Vec<Arg>);

impl Args {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Arg> {
        self.0.get(i)
    }

    /// Argument `i` as a string, printed for this message when it holds variables.
    pub fn str<'a>(&'a self, ctx: &'a MsgCtx<'_>, i: usize) -> Cow<'a, [u8]> {
        match self.0.get(i) {
            Some(Arg::Str(s)) => Cow::Borrowed(s.as_ref()),
            Some(Arg::Int(n)) => Cow::Owned(itoa::Buffer::new().format(*n).as_bytes().to_vec()),
            Some(Arg::Fmt(f)) => Cow::Owned(ctx.format(f)),
            Some(Arg::Pv(p)) => match ctx.read_pv(p) {
                super::value::Value::Str(s) => s,
                other => Cow::Owned(other.to_bytes().into_owned()),
            },
            Some(Arg::Custom(_)) | None => Cow::Borrowed(b""),
        }
    }

    /// Argument `i` as an integer (a string argument is read as a number).
    pub fn int(&self, ctx: &MsgCtx<'_>, i: usize) -> Option<i64> {
        match self.0.get(i) {
            Some(Arg::Int(n)) => Some(*n),
            Some(Arg::Str(s)) => std::str::from_utf8(s).ok()?.trim().parse().ok(),
            Some(Arg::Fmt(_)) | Some(Arg::Pv(_)) => {
                let s = self.str(ctx, i);
                std::str::from_utf8(&s).ok()?.trim().parse().ok()
            }
            Some(Arg::Custom(_)) | None => None,
        }
    }

    /// The pre-parsed form of argument `i`, when its fixup made one of type `T`.
    pub fn custom<T: 'static>(&self, i: usize) -> Option<&T> {
        match self.0.get(i) {
            Some(Arg::Custom(b)) => b.downcast_ref::<T>(),
            _ => None,
        }
    }
}

/// A test's script code: 1 true, -1 false.
pub fn truth(b: bool) -> i32 {
    if b {
        1
    } else {
        -1
    }
}

/// A function handler: returns the script code (> 0 true, < 0 false, 0 stops the script).
pub type Handler = fn(&mut MsgCtx<'_>, &Args) -> i32;

/// Validates and pre-parses arguments once, at start-up, with the module
/// parameters at hand; the error names the problem.
pub type Fixup = fn(&mut Args, &ModParams) -> Result<(), String>;

/// `modparam` values by module and parameter name (last one set wins for
/// single-valued parameters; every value is kept for repeatable ones).
#[derive(Debug, Default, Clone)]
pub struct ModParams {
    values: Vec<(&'static str, String, Vec<ParamValue>)>,
}

/// A `modparam` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    Int(i64),
    Str(String),
}

impl ModParams {
    /// Records a value for `module.param`.
    pub fn push(&mut self, module: &'static str, param: &str, value: ParamValue) {
        match self
            .values
            .iter_mut()
            .find(|(m, p, _)| *m == module && p == param)
        {
            Some((_, _, vals)) => vals.push(value),
            None => self.values.push((module, param.to_string(), vec![value])),
        }
    }

    /// Every value set for `module.param`, in order.
    pub fn all(&self, module: &str, param: &str) -> &[ParamValue] {
        self.values
            .iter()
            .find(|(m, p, _)| *m == module && p == param)
            .map_or(&[], |(_, _, v)| v.as_slice())
    }

    /// Which of `params` the configuration set for `module`, each as
    /// "module param" (`ringsip check -v` lists those accepted with no effect).
    pub fn set_among(&self, module: &str, params: &[&str]) -> Vec<String> {
        params
            .iter()
            .filter(|p| !self.all(module, p).is_empty())
            .map(|p| format!("{module} {p}"))
            .collect()
    }

    /// The last integer set for `module.param` (a numeric string counts).
    pub fn int(&self, module: &str, param: &str) -> Option<i64> {
        match self.all(module, param).last()? {
            ParamValue::Int(i) => Some(*i),
            ParamValue::Str(s) => s.trim().parse().ok(),
        }
    }

    /// The last string set for `module.param`.
    pub fn str(&self, module: &str, param: &str) -> Option<&str> {
        match self.all(module, param).last()? {
            ParamValue::Str(s) => Some(s),
            ParamValue::Int(_) => None,
        }
    }
}

/// A function a module offers to the script.
pub struct FunctionDef {
    pub name: &'static str,
    pub min_args: u8,
    pub max_args: u8,
    /// Route types where it may be called.
    pub routes: RouteMask,
    pub fixup: Option<Fixup>,
    pub call: Handler,
}

impl fmt::Debug for FunctionDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}..{}", self.name, self.min_args, self.max_args)
    }
}

/// A [`FunctionDef`] in one line, for modules' function tables.
pub const fn func(
    name: &'static str,
    min_args: u8,
    max_args: u8,
    routes: RouteMask,
    fixup: Option<Fixup>,
    call: Handler,
) -> FunctionDef {
    FunctionDef {
        name,
        min_args,
        max_args,
        routes,
        fixup,
        call,
    }
}

/// What a `modparam` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Int,
    Str,
    /// Integer or string.
    Any,
    /// A string with pseudo-variables (`hash_pvar`, `received_avp`), compiled
    /// at start-up into [`super::ir::Program::param_formats`].
    Pv,
}

/// A module parameter.
#[derive(Debug)]
pub struct ParamDef {
    pub name: &'static str,
    pub kind: ParamKind,
}

/// A [`ParamDef`] in one line, for modules' parameter tables.
pub const fn param(name: &'static str, kind: ParamKind) -> ParamDef {
    ParamDef { name, kind }
}

/// A module: the names it is loaded by, its functions and parameters.
#[derive(Debug)]
pub struct ModuleDef {
    /// Kamailio's module name (`loadmodule "sl.so"` → `sl`).
    pub name: &'static str,
    /// Other Kamailio module names that map to this module (split modules: `tmx` → tm…).
    pub aliases: &'static [&'static str],
    pub functions: &'static [FunctionDef],
    pub params: &'static [ParamDef],
    /// Loaded whether or not the configuration asks for it (the core).
    pub always: bool,
}

impl ModuleDef {
    /// Whether `loadmodule` of `name` (with or without directory and `.so`) loads this module.
    pub fn answers_to(&self, name: &str) -> bool {
        let base = name.rsplit('/').next().unwrap_or(name);
        let base = base.strip_suffix(".so").unwrap_or(base);
        self.name == base || self.aliases.contains(&base)
    }

    pub fn function(&self, name: &str) -> Option<&'static FunctionDef> {
        self.functions.iter().find(|f| f.name == name)
    }

    pub fn param(&self, name: &str) -> Option<&ParamDef> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// Fixup: the argument must be an integer constant (a numeric string counts).
pub fn fixup_int(args: &mut Args, i: usize) -> Result<(), String> {
    match args.0.get(i) {
        Some(Arg::Int(_)) => Ok(()),
        Some(Arg::Str(s)) => {
            let n = std::str::from_utf8(s)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .ok_or_else(|| format!("argument {} must be a number", i + 1))?;
            args.0[i] = Arg::Int(n);
            Ok(())
        }
        Some(_) => Ok(()),
        None => Err(format!("argument {} is missing", i + 1)),
    }
}
