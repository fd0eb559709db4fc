//! The VM: walks the compiled tree of a route with Kamailio's semantics
//! (KAMAILIO-REFERENCE.md §0 and §1.3–1.4):
//! - a function returning `> 0` is true, `< 0` false, and `0` stops the script;
//! - `return` alone returns 1, `return 0` stops the whole script;
//! - `exit` stops with code 1; `drop` stops and cancels the implicit action;
//! - `$retcode` holds the code of the last function or route call.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::ctx::MsgCtx;
use super::ir::{AssignOp, BinOp, Block, CaseLabel, Expr, RouteId, Stmt, UnOp};
use super::pvkind::PvKind;
use super::registry::{RouteMask, RouteType};
use super::value::Value;

/// Route calls nested deeper than this fail (Kamailio's limit).
const MAX_ROUTE_DEPTH: u32 = 256;
/// A `while` that loops more than this is aborted (Kamailio's `max_while_loops`).
const MAX_WHILE_LOOPS: u32 = 100;

/// How a route run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran to its end or returned; the value is the route's code.
    Done(i32),
    /// The script stopped: `exit` (code 1), or `return 0` / a function returning 0 (code 0).
    Exit(i32),
    /// `drop`: the implicit action (forwarding a reply, sending a branch) is cancelled.
    Drop,
}

/// Control flow inside a block.
enum Flow {
    Next,
    Break,
    Return(i32),
    Stop(Stop),
}

/// Why the whole script stops.
#[derive(Clone, Copy)]
enum Stop {
    /// With the script's final code: 1 for `exit`, 0 for `return 0` or a function returning 0.
    Exit(i32),
    Drop,
}

type Eval<T> = Result<T, Stop>;

/// Runs route `id` in `ctx`.
pub fn run_route(ctx: &mut MsgCtx<'_>, id: RouteId) -> Outcome {
    let mut vm = Vm { depth: 0, last: 1 };
    match vm.call_route(ctx, id) {
        Ok(code) => Outcome::Done(code),
        Err(Stop::Exit(code)) => Outcome::Exit(code),
        Err(Stop::Drop) => Outcome::Drop,
    }
}

/// Runs `onsend_route` (when the configuration has one) for a request about
/// to leave for `dst` over `proto` from `local`, with `data` readable as
/// `$snd(buf)`. Whether to send it: `drop` there stops the send; anything
/// else (its end, `exit`, `return`) lets it go. The route sees the received
/// message; what it changes in it does not reach `data` (as in Kamailio).
pub fn onsend(
    ctx: &mut MsgCtx<'_>,
    dst: std::net::SocketAddr,
    proto: crate::sip::Proto,
    local: Option<std::net::SocketAddr>,
    data: &bytes::Bytes,
) -> bool {
    let Some(route) = ctx.program.onsend_route else {
        return true;
    };
    // A send made from inside onsend_route does not run it again.
    if ctx.send_dst.is_some() {
        return true;
    }
    let saved_type = ctx.route_type;
    let saved_ret = ctx.retcode;
    ctx.route_type = super::registry::RouteType::OnSend;
    ctx.send_dst = Some((dst, proto));
    ctx.send_buf = Some(data.clone());
    ctx.send_local = local;
    let outcome = run_route(ctx, route);
    ctx.route_type = saved_type;
    ctx.retcode = saved_ret;
    ctx.send_dst = None;
    ctx.send_buf = None;
    ctx.send_local = None;
    outcome != Outcome::Drop
}

struct Vm {
    depth: u32,
    /// The value of the last statement run, which a route without `return`
    /// gives back (Kamailio: a function's code, 1 for an assignment, an `if`
    /// that ran no block, a loop); `$rc` keeps only function and route codes.
    last: i32,
}

impl Vm {
    fn call_route(&mut self, ctx: &mut MsgCtx<'_>, id: RouteId) -> Eval<i32> {
        if self.depth >= MAX_ROUTE_DEPTH {
            log::error!("route nesting deeper than {MAX_ROUTE_DEPTH}: route call fails");
            return Ok(-1);
        }
        self.depth += 1;
        let program = ctx.program;
        let route = program.route(id);
        // A route without `return` yields the value of its last statement.
        self.last = 1;
        let result = match self.block(ctx, &route.body) {
            Ok(Flow::Next) | Ok(Flow::Break) => Ok(self.last),
            Ok(Flow::Return(code)) => Ok(code),
            Ok(Flow::Stop(stop)) | Err(stop) => Err(stop),
        };
        self.depth -= 1;
        result
    }

    fn block(&mut self, ctx: &mut MsgCtx<'_>, block: &Block) -> Eval<Flow> {
        for stmt in block.iter() {
            match self.stmt(ctx, stmt)? {
                Flow::Next => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Next)
    }

    fn stmt(&mut self, ctx: &mut MsgCtx<'_>, stmt: &Stmt) -> Eval<Flow> {
        match stmt {
            Stmt::Eval(expr) => {
                let code = self.action(ctx, expr)?;
                self.last = code;
                if code == 0 {
                    return Ok(Flow::Stop(Stop::Exit(0)));
                }
                Ok(Flow::Next)
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                let taken = self.cond(ctx, cond)?;
                self.last = 1;
                if taken {
                    self.block(ctx, then)
                } else {
                    self.block(ctx, otherwise)
                }
            }
            Stmt::Switch {
                subject,
                cases,
                default,
                body,
            } => {
                let start = if is_pure(subject) {
                    let v = pure(ctx, subject);
                    case_start(&v, cases)
                } else {
                    let v = self.expr(ctx, subject)?.into_owned();
                    case_start(&v, cases)
                };
                self.last = 1;
                let Some(start) = start.or(*default) else {
                    return Ok(Flow::Next);
                };
                for stmt in body.iter().skip(start) {
                    match self.stmt(ctx, stmt)? {
                        Flow::Next => {}
                        Flow::Break => return Ok(Flow::Next),
                        other => return Ok(other),
                    }
                }
                Ok(Flow::Next)
            }
            Stmt::While { cond, body } => {
                let mut loops = 0;
                self.last = 1;
                // Kamailio loops while the condition is non-zero (negative
                // too), where `if` needs it positive.
                while self.loop_cond(ctx, cond)? {
                    self.last = 1;
                    loops += 1;
                    if loops > MAX_WHILE_LOOPS {
                        log::error!("while loop ran more than {MAX_WHILE_LOOPS} times: aborted");
                        break;
                    }
                    match self.block(ctx, body)? {
                        Flow::Next => {}
                        Flow::Break => break,
                        other => return Ok(other),
                    }
                }
                Ok(Flow::Next)
            }
            Stmt::Assign { target, op, value } => {
                self.last = 1;
                ARITH_FAILED.set(false);
                let v = self.expr(ctx, value)?.into_owned();
                if ARITH_FAILED.replace(false) {
                    // Kamailio: "rval expression evaluation failed", the
                    // variable keeps its value (checked live).
                    log::error!("cannot assign: the expression failed (division by zero)");
                    return Ok(Flow::Next);
                }
                let (op, v) = match op {
                    AssignOp::Add => (
                        AssignOp::Set,
                        add(ctx.read_pv(target), v.as_ref()).into_owned(),
                    ),
                    other => (*other, v),
                };
                if let Err(why) = ctx.assign_pv(target, op, v) {
                    log::error!("cannot assign: {why}");
                }
                Ok(Flow::Next)
            }
            Stmt::Return(None) => Ok(Flow::Return(1)),
            Stmt::Return(Some(e)) => {
                let code = self.expr(ctx, e)?.to_int() as i32;
                if code == 0 {
                    // `return 0` ends the whole script.
                    return Ok(Flow::Stop(Stop::Exit(0)));
                }
                Ok(Flow::Return(code))
            }
            Stmt::Exit => Ok(Flow::Stop(Stop::Exit(1))),
            Stmt::Drop => Ok(Flow::Stop(Stop::Drop)),
            Stmt::Break => Ok(Flow::Break),
        }
    }

    /// Runs a function call or route call and records `$retcode`.
    fn action(&mut self, ctx: &mut MsgCtx<'_>, expr: &Expr) -> Eval<i32> {
        let code = match expr {
            Expr::Call(call) => {
                if !runs_here(call.def.routes, ctx) {
                    log::error!(
                        "{}() is not allowed in this route type (line {})",
                        call.def.name,
                        call.line
                    );
                    -1
                } else {
                    (call.def.call)(ctx, &call.args)
                }
            }
            Expr::Route(id) => self.call_route(ctx, *id)?,
            Expr::DynRoute(name) => {
                let name = self.expr(ctx, name)?.into_owned();
                let program = ctx.program;
                match program.route_named(&name.to_bytes()) {
                    Some(id) => self.call_route(ctx, id)?,
                    None => {
                        log::error!("route({name}): no route with that name");
                        -1
                    }
                }
            }
            other => self.expr(ctx, other)?.to_int() as i32,
        };
        ctx.retcode = code;
        Ok(code)
    }

    fn cond(&mut self, ctx: &mut MsgCtx<'_>, expr: &Expr) -> Eval<bool> {
        match expr {
            Expr::Call(_) | Expr::Route(_) | Expr::DynRoute(_) => {
                let code = self.action(ctx, expr)?;
                if code == 0 {
                    return Err(Stop::Exit(0));
                }
                Ok(code > 0)
            }
            // `!` of a value is C's: true for 0 only (`!(-1)` is false).
            Expr::Unary(UnOp::Not, inner) => match &**inner {
                Expr::Call(_) | Expr::Route(_) | Expr::DynRoute(_) => Ok(!self.cond(ctx, inner)?),
                value => Ok(!self.expr(ctx, value)?.is_true()),
            },
            Expr::Binary(BinOp::And, a, b) => Ok(self.cond(ctx, a)? && self.cond(ctx, b)?),
            Expr::Binary(BinOp::Or, a, b) => Ok(self.cond(ctx, a)? || self.cond(ctx, b)?),
            other if is_pure(other) => Ok(pure(ctx, other).is_taken()),
            other => Ok(self.expr(ctx, other)?.is_taken()),
        }
    }

    /// A `while` condition: a call's code must be positive, a value non-zero.
    fn loop_cond(&mut self, ctx: &mut MsgCtx<'_>, expr: &Expr) -> Eval<bool> {
        match expr {
            Expr::Call(_) | Expr::Route(_) | Expr::DynRoute(_) => self.cond(ctx, expr),
            Expr::Unary(UnOp::Not, _) | Expr::Binary(BinOp::And | BinOp::Or, _, _) => {
                self.cond(ctx, expr)
            }
            other if is_pure(other) => Ok(pure(ctx, other).is_true()),
            other => Ok(self.expr(ctx, other)?.is_true()),
        }
    }

    fn expr<'c>(&mut self, ctx: &'c mut MsgCtx<'_>, expr: &'c Expr) -> Eval<Value<'c>> {
        if is_pure(expr) {
            return Ok(pure(ctx, expr));
        }
        Ok(match expr {
            Expr::Call(_) | Expr::Route(_) | Expr::DynRoute(_) => {
                let code = self.action(ctx, expr)?;
                if code == 0 {
                    return Err(Stop::Exit(0));
                }
                Value::Int(i64::from(code))
            }
            Expr::Unary(UnOp::Not, inner) => Value::Int(i64::from(!self.cond(ctx, inner)?)),
            Expr::Unary(op, inner) => {
                let v = self.expr(ctx, inner)?;
                unary(*op, v)
            }
            Expr::Binary(BinOp::And, _, _) | Expr::Binary(BinOp::Or, _, _) => {
                Value::Int(i64::from(self.cond(ctx, expr)?))
            }
            Expr::Binary(op, a, b) => {
                let special = special_eq(*op, b);
                let a = self.expr(ctx, a)?.into_owned();
                if let Some(special) = special {
                    return Ok(special.apply(*op, &a));
                }
                let b = self.expr(ctx, b)?;
                binary(*op, a, b).into_owned()
            }
            Expr::Match {
                subject,
                regex,
                negate,
            } => {
                let v = self.expr(ctx, subject)?;
                Value::Int(i64::from(regex.is_match(&v.to_bytes()) != *negate))
            }
            Expr::DynMatch {
                subject,
                pattern,
                negate,
            } => {
                let p = self.expr(ctx, pattern)?.into_owned();
                let v = self.expr(ctx, subject)?;
                Value::Int(i64::from(dyn_match(&p, &v) != *negate))
            }
            Expr::Myself { subject, negate } => {
                let env = ctx.env;
                let v = self.expr(ctx, subject)?;
                Value::Int(i64::from(is_myself_value(env, &v.to_bytes()) != *negate))
            }
            Expr::InNet {
                subject,
                net,
                negate,
            } => {
                let v = self.expr(ctx, subject)?;
                Value::Int(i64::from(in_net(net, &v) != *negate))
            }
            Expr::Const(_) | Expr::Pv(_) | Expr::Format(_) | Expr::Pure(_) => pure(ctx, expr),
        })
    }
}

/// Whether an expression calls nothing (so it can be read with shared access
/// to the context, borrowing instead of copying). The compiler marks compound
/// ones with [`Expr::Pure`], so this is one match.
fn is_pure(e: &Expr) -> bool {
    match e {
        Expr::Const(_) | Expr::Pv(_) | Expr::Format(_) | Expr::Pure(_) => true,
        // Unmarked trees (built by hand) are checked in full.
        other => other.calls_nothing(),
    }
}

/// Evaluates an expression for which [`is_pure`] holds.
fn pure<'c>(ctx: &'c MsgCtx<'_>, e: &'c Expr) -> Value<'c> {
    let truth = |t: bool| Value::Int(i64::from(t));
    match e {
        Expr::Const(v) => v.as_ref(),
        Expr::Pv(pv) => ctx.read_pv(pv),
        Expr::Format(f) => Value::Str(ctx.format_cow(f)),
        Expr::Pure(inner) => pure(ctx, inner),
        Expr::Unary(UnOp::Not, inner) => truth(!pure(ctx, inner).is_true()),
        Expr::Unary(op, inner) => unary(*op, pure(ctx, inner)),
        Expr::Binary(BinOp::And, a, b) => truth(pure(ctx, a).is_true() && pure(ctx, b).is_true()),
        Expr::Binary(BinOp::Or, a, b) => truth(pure(ctx, a).is_true() || pure(ctx, b).is_true()),
        Expr::Binary(op, a, b) => match special_eq(*op, b) {
            Some(special) => special.apply(*op, &pure(ctx, a)),
            None => binary(*op, pure(ctx, a), pure(ctx, b)),
        },
        Expr::Match {
            subject,
            regex,
            negate,
        } => truth(regex.is_match(&pure(ctx, subject).to_bytes()) != *negate),
        Expr::DynMatch {
            subject,
            pattern,
            negate,
        } => truth(dyn_match(&pure(ctx, pattern), &pure(ctx, subject)) != *negate),
        Expr::Myself { subject, negate } => {
            truth(is_myself_value(ctx.env, &pure(ctx, subject).to_bytes()) != *negate)
        }
        Expr::InNet {
            subject,
            net,
            negate,
        } => {
            // `src_ip`/`dst_ip` compare the address itself, not its text.
            let hit = match &**subject {
                Expr::Pv(pv) if pv.transforms.is_none() && pv.kind == PvKind::Si => {
                    net.contains(ctx.src.ip())
                }
                Expr::Pv(pv) if pv.transforms.is_none() && pv.kind == PvKind::Ri => {
                    net.contains(ctx.local.ip())
                }
                other => in_net(net, &pure(ctx, other)),
            };
            truth(hit != *negate)
        }
        // Not pure: callers check first.
        Expr::Call(_) | Expr::Route(_) | Expr::DynRoute(_) => Value::Null,
    }
}

fn unary<'a>(op: UnOp, v: Value<'a>) -> Value<'a> {
    match op {
        UnOp::Not => Value::Int(i64::from(!v.is_true())),
        UnOp::Neg => int(int32(&v).wrapping_neg()),
        UnOp::BitNot => int(!int32(&v)),
        UnOp::Defined => Value::Int(i64::from(!v.is_null())),
        UnOp::Strlen => Value::Int(v.to_bytes().len() as i64),
        UnOp::Strempty => Value::Int(i64::from(v.to_bytes().is_empty())),
        UnOp::CastInt => int(int32(&v)),
        UnOp::CastStr => match v {
            Value::Str(s) => Value::Str(s),
            other => Value::owned(other.to_bytes().into_owned()),
        },
    }
}

/// `x =~ $pattern`: the pattern compiled per message (case-insensitive).
fn dyn_match(pattern: &Value<'_>, v: &Value<'_>) -> bool {
    std::str::from_utf8(&pattern.to_bytes())
        .ok()
        .and_then(|p| {
            regex::bytes::RegexBuilder::new(p)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .ok()
        })
        .is_some_and(|re| re.is_match(&v.to_bytes()))
}

fn in_net(net: &super::ir::IpNet, v: &Value<'_>) -> bool {
    std::str::from_utf8(&v.to_bytes())
        .ok()
        .and_then(|s| s.trim_start_matches('[').trim_end_matches(']').parse().ok())
        .is_some_and(|ip| net.contains(ip))
}

/// The body position where a switch on `v` starts, if a case matches.
fn case_start(v: &Value<'_>, cases: &[(CaseLabel, usize)]) -> Option<usize> {
    cases
        .iter()
        .find(|(case, _)| switch_matches(v, case))
        .map(|(_, at)| *at)
}

/// `myself` compared with a URI (`sip:host:port`) or a bare host / `host:port`.
fn is_myself_value(env: &super::ctx::Env, text: &[u8]) -> bool {
    let rest = match text.iter().position(|&b| b == b':') {
        Some(i)
            if text[..i].eq_ignore_ascii_case(b"sip")
                || text[..i].eq_ignore_ascii_case(b"sips") =>
        {
            &text[i + 1..]
        }
        _ => text,
    };
    let rest = match rest.iter().position(|&b| b == b'@') {
        Some(i) => &rest[i + 1..],
        None => rest,
    };
    let end = rest
        .iter()
        .position(|&b| b == b';' || b == b'?' || b == b'>')
        .unwrap_or(rest.len());
    let hostport = &rest[..end];
    let (host, port) = split_hostport(hostport);
    env.is_myself(host, port, None)
}

/// Splits `host[:port]` (IPv6 in brackets).
pub(crate) fn split_hostport(hp: &[u8]) -> (&[u8], Option<u16>) {
    let colon = if hp.first() == Some(&b'[') {
        hp.iter()
            .position(|&b| b == b']')
            .and_then(|i| (hp.get(i + 1) == Some(&b':')).then_some(i + 1))
    } else {
        hp.iter().rposition(|&b| b == b':')
    };
    match colon {
        Some(i) => {
            let port = std::str::from_utf8(&hp[i + 1..])
                .ok()
                .and_then(|p| p.parse().ok());
            (&hp[..i], port)
        }
        None => (hp, None),
    }
}

fn switch_matches(v: &Value<'_>, case: &CaseLabel) -> bool {
    match case {
        CaseLabel::Value(Value::Int(i)) => v.as_exact_int() == Some(*i),
        CaseLabel::Value(Value::Str(s)) => v.to_bytes().as_ref() == s.as_ref(),
        CaseLabel::Value(Value::Null) => v.is_null(),
        CaseLabel::Regex(re) => re.is_match(&v.to_bytes()),
    }
}

thread_local! {
    /// Set when an integer operation failed (division or modulo by zero)
    /// while an expression was evaluated, so that the assignment it feeds
    /// is skipped as Kamailio skips it. Per thread: each core runs its own
    /// scripts, one statement at a time.
    static ARITH_FAILED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Kamailio's script integers are C `int`s: 32 bits, wrapping
/// (`2147483647 + 1` is `-2147483648`, checked live).
pub(crate) fn wrap32(n: i64) -> i64 {
    n as i32 as i64
}

/// An operand as Kamailio's arithmetic reads it: an int wrapped to 32 bits,
/// a string that is a number within 32 bits (`"4294967297"` fails the
/// conversion, which reads 0), else 0.
fn int32(v: &Value<'_>) -> i32 {
    match v {
        Value::Int(i) => *i as i32,
        Value::Str(_) => v
            .as_exact_int()
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(0),
        Value::Null => 0,
    }
}

fn int(n: i32) -> Value<'static> {
    Value::Int(i64::from(n))
}

/// `+`: the left operand decides: string + anything concatenates, int + x adds.
fn add<'a>(a: Value<'a>, b: Value<'_>) -> Value<'a> {
    match a {
        Value::Str(s) => {
            // Room for what usually follows, so a chain `"a" + $x + "b"` grows in place.
            let mut out = match s {
                Cow::Owned(v) => v,
                Cow::Borrowed(v) => {
                    let mut o = Vec::with_capacity(v.len() + 48);
                    o.extend_from_slice(v);
                    o
                }
            };
            match b {
                Value::Null => {}
                other => other.write_to(&mut out),
            }
            Value::Str(Cow::Owned(out))
        }
        Value::Int(i) => int((i as i32).wrapping_add(int32(&b))),
        Value::Null => match b {
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            other => int(int32(&other)),
        },
    }
}

fn binary<'a>(op: BinOp, a: Value<'a>, b: Value<'_>) -> Value<'a> {
    let truth = |t: bool| Value::Int(i64::from(t));
    match op {
        BinOp::Add => add(a, b),
        BinOp::Sub => int(int32(&a).wrapping_sub(int32(&b))),
        BinOp::Mul => int(int32(&a).wrapping_mul(int32(&b))),
        BinOp::Div => match int32(&b) {
            0 => {
                log::error!("division by zero in script");
                ARITH_FAILED.set(true);
                Value::Int(0)
            }
            d => int(int32(&a).wrapping_div(d)),
        },
        BinOp::Mod => match int32(&b) {
            0 => {
                log::error!("modulo by zero in script");
                ARITH_FAILED.set(true);
                Value::Int(0)
            }
            d => int(int32(&a).wrapping_rem(d)),
        },
        BinOp::BitAnd => int(int32(&a) & int32(&b)),
        BinOp::BitOr => int(int32(&a) | int32(&b)),
        BinOp::BitXor => int(int32(&a) ^ int32(&b)),
        BinOp::Shl => int(int32(&a).wrapping_shl(int32(&b) as u32)),
        BinOp::Shr => int(int32(&a).wrapping_shr(int32(&b) as u32)),
        BinOp::Eq => truth(equal(&a, &b)),
        BinOp::Ne => truth(!equal(&a, &b)),
        BinOp::IEq => truth(a.to_bytes().eq_ignore_ascii_case(&b.to_bytes())),
        BinOp::INe => truth(!a.to_bytes().eq_ignore_ascii_case(&b.to_bytes())),
        BinOp::StrEq => truth(a.to_bytes() == b.to_bytes()),
        BinOp::StrNe => truth(a.to_bytes() != b.to_bytes()),
        BinOp::IntEq => truth(a.to_int() == b.to_int()),
        BinOp::IntNe => truth(a.to_int() != b.to_int()),
        BinOp::Lt => truth(compare(&a, &b) == Ordering::Less),
        BinOp::Le => truth(compare(&a, &b) != Ordering::Greater),
        BinOp::Gt => truth(compare(&a, &b) == Ordering::Greater),
        BinOp::Ge => truth(compare(&a, &b) != Ordering::Less),
        BinOp::And => truth(a.is_true() && b.is_true()),
        BinOp::Or => truth(a.is_true() || b.is_true()),
    }
}

/// `==` as Kamailio 5.6 compares (seen side by side): the left operand's
/// type decides. An integer compares with the right one's integer reading
/// ([`Value::to_int`]: `"abc"`, `""` and `$null` read 0); a string with the
/// right one's text (`$null` reads ""); `$null` takes the right one's type
/// (equal to 0, to "" and to `$null`). Byte comparison, case-sensitive.
fn equal(a: &Value<'_>, b: &Value<'_>) -> bool {
    match a {
        Value::Int(x) => int32(b) == *x as i32,
        Value::Str(x) => x.as_ref() == b.to_bytes().as_ref(),
        Value::Null => match b {
            Value::Int(y) => *y == 0,
            Value::Str(y) => y.is_empty(),
            Value::Null => true,
        },
    }
}

/// A right operand of `==`/`!=` that Kamailio treats apart: the `$null`
/// constant (a test for `$null` itself: an integer 0 or an empty string is
/// not `$null`), and the empty string constant, which an integer cannot be
/// converted to (the comparison fails: false, with `!=` too).
#[derive(Clone, Copy)]
enum SpecialEq {
    NullConst,
    EmptyConst,
}

fn special_eq(op: BinOp, right: &Expr) -> Option<SpecialEq> {
    if !matches!(op, BinOp::Eq | BinOp::Ne) {
        return None;
    }
    match right {
        Expr::Const(Value::Null) => Some(SpecialEq::NullConst),
        Expr::Const(Value::Str(s)) if s.is_empty() => Some(SpecialEq::EmptyConst),
        _ => None,
    }
}

impl SpecialEq {
    fn apply(self, op: BinOp, left: &Value<'_>) -> Value<'static> {
        let eq = op == BinOp::Eq;
        let r = match (self, left) {
            (SpecialEq::NullConst, v) => v.is_null() == eq,
            (SpecialEq::EmptyConst, Value::Int(_)) => false,
            (SpecialEq::EmptyConst, v) => v.to_bytes().is_empty() == eq,
        };
        Value::Int(i64::from(r))
    }
}

fn compare(a: &Value<'_>, b: &Value<'_>) -> Ordering {
    // 32-bit ints: `"2147483648" > 5` is false in Kamailio (the string
    // does not convert and reads 0).
    int32(a).cmp(&int32(b))
}

/// Whether a function of `routes` runs in `ctx`'s route. Kamailio checks
/// where a function may be written when it loads the config, with a
/// `route[X]` block counted as a request route, and not again when it runs:
/// a request-route function in a sub-route called from `branch_route` or
/// `failure_route` runs there on the request (the stock config's
/// `route[NATMANAGE]` calls `check_route_param()` from `branch_route`). Not
/// on a reply.
fn runs_here(routes: RouteMask, ctx: &MsgCtx<'_>) -> bool {
    routes.allows(ctx.route_type)
        || (routes.allows(RouteType::Request)
            && matches!(ctx.route_type, RouteType::Branch | RouteType::Failure)
            && ctx.msg.is_request())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kamailio 5.6's C `int` arithmetic (sidebyside parity_script.cfg).
    #[test]
    fn integers_are_32_bits() {
        let i = |n: i64| Value::Int(n);
        let s = |t: &'static str| Value::str(t.as_bytes());
        let b = |op, a, c| binary(op, a, c).to_int();
        assert_eq!(b(BinOp::Add, i(2147483647), i(1)), -2147483648);
        assert_eq!(b(BinOp::Mul, i(2147483647), i(2)), -2);
        assert_eq!(b(BinOp::Mul, i(65536), i(65536)), 0);
        assert_eq!(b(BinOp::Sub, i(-2147483647), i(2)), 2147483647);
        assert_eq!(b(BinOp::Shl, i(1), i(31)), -2147483648);
        assert_eq!(b(BinOp::Div, i(-7), i(2)), -3);
        assert_eq!(b(BinOp::Mod, i(-7), i(2)), -1);
        // A string past 32 bits does not convert: it reads 0.
        assert_eq!(b(BinOp::Add, i(0), s("2147483647")), 2147483647);
        assert_eq!(b(BinOp::Add, i(0), s("2147483648")), 0);
        assert_eq!(b(BinOp::Add, i(0), s("-2147483648")), -2147483648);
        assert_eq!(b(BinOp::Add, i(0), s("-99999999999")), 0);
        assert_eq!(compare(&s("2147483648"), &i(5)), Ordering::Less);
        assert_eq!(wrap32(3_000_000_000), -1_294_967_296);
        // Division and modulo by zero fail the expression.
        for op in [BinOp::Div, BinOp::Mod] {
            ARITH_FAILED.set(false);
            let _ = binary(op, i(10), i(0));
            assert!(ARITH_FAILED.replace(false), "{op:?}");
        }
    }

    #[test]
    fn equality_rules() {
        assert!(equal(&Value::Int(5), &Value::str(b"5")));
        assert!(!equal(&Value::Int(5), &Value::str(b"5x")));
        assert!(!equal(&Value::str(b"abc"), &Value::str(b"ABC")));
        assert!(equal(&Value::Null, &Value::Null));
        // Kamailio 5.6, side by side (loadtest/sidebyside/configs/hunt_cmp.cfg):
        // the left operand's type decides; $null reads 0 or "".
        assert!(equal(&Value::Null, &Value::Int(0)));
        assert!(equal(&Value::Null, &Value::str(b"")));
        assert!(!equal(&Value::Null, &Value::str(b"0")));
        assert!(equal(&Value::Int(0), &Value::str(b"abc")));
        assert!(equal(&Value::Int(0), &Value::Null));
        assert!(!equal(&Value::Int(12), &Value::str(b"12abc")));
        assert!(equal(&Value::str(b""), &Value::Null));
        assert!(!equal(&Value::str(b"0"), &Value::Null));
        assert!(equal(&Value::str(b"0"), &Value::Int(0)));
    }

    #[test]
    fn plus_follows_the_left_operand() {
        assert_eq!(add(Value::str(b"x"), Value::Int(5)), Value::str(b"x5"));
        assert_eq!(add(Value::str(b"10"), Value::Int(1)), Value::str(b"101"));
        assert_eq!(add(Value::Int(5), Value::str(b"7")), Value::Int(12));
    }

    #[test]
    fn hostport_split() {
        assert_eq!(split_hostport(b"a.b:5070"), (&b"a.b"[..], Some(5070)));
        assert_eq!(split_hostport(b"[::1]:5070"), (&b"[::1]"[..], Some(5070)));
        assert_eq!(split_hostport(b"[::1]"), (&b"[::1]"[..], None));
        assert_eq!(split_hostport(b"host"), (&b"host"[..], None));
    }
}
