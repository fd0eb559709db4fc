//! Operations that read and move AVPs: `avp_delete`, `avp_copy`,
//! `avp_pushto`, `avp_check`.

use bytes::Bytes;

use super::args::{flags, seg_pv, seg_text, segments, AvpName};
use crate::script::ctx::MsgCtx;
use crate::script::ir::AssignOp;
use crate::script::pvkind::{AvpKey, PvKind, PvRef};
use crate::script::registry::{Arg, Args, ModParams};
use crate::script::value::Value;

// --- operations on AVPs ---------------------------------------------------------------------

/// `avp_delete`'s target: one AVP, or every AVP with a name of a kind.
#[derive(Debug)]
enum DeleteWhat {
    Named(AvpName),
    /// `*`/`a` (None), `s` (Some(true): string names), `i` (Some(false)).
    Kind(Option<bool>),
}

#[derive(Debug)]
struct Delete {
    what: DeleteWhat,
    all: bool,
}

pub(super) fn fixup_delete(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let segs = segments(args.get(0))?;
    let what = match (seg_pv(&segs[0]), seg_text(&segs[0])) {
        (Some(_), _) => DeleteWhat::Named(AvpName::from_seg(&segs[0], "the argument")?),
        (None, Some(t)) => {
            let (kind, rest) = t.split_at(t.len().min(1));
            if !rest.is_empty() && rest.parse::<u32>().is_err() {
                return Err("bad avp flags".into());
            }
            DeleteWhat::Kind(match kind {
                "s" | "S" => Some(true),
                "i" | "I" => Some(false),
                "*" | "a" | "A" => None,
                _ => return Err("bad param - expected: $avp(name), *, s or i".into()),
            })
        }
        _ => return Err("bad param - expected: $avp(name), *, s or i".into()),
    };
    let f = flags(segs.get(1), "g")?;
    let all = f.contains('g') || matches!(what, DeleteWhat::Kind(_));
    args.0[0] = Arg::Custom(Box::new(Delete { what, all }));
    Ok(())
}

/// `avp_delete("$avp(x)[/g]")` / `avp_delete("*|s|i")`: 1 when any was removed, else -1.
pub(super) fn avp_delete(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = args.custom::<Delete>(0) else {
        return -1;
    };
    let before = ctx.attrs.avps().len();
    match &d.what {
        DeleteWhat::Named(n) => {
            let key = n.key(ctx);
            if d.all {
                ctx.attrs.avp_remove_all(&key);
            } else {
                ctx.attrs.avp_remove_newest(&key);
            }
        }
        DeleteWhat::Kind(k) => ctx.attrs.avp_retain(|key, _| match k {
            None => false,
            Some(true) => !matches!(key, AvpKey::Str(_)),
            Some(false) => !matches!(key, AvpKey::Int(_)),
        }),
    }
    if ctx.attrs.avps().len() < before {
        1
    } else {
        -1
    }
}

#[derive(Debug)]
struct Copy {
    src: AvpName,
    dst: AvpName,
    all: bool,
    delete: bool,
    to_int: bool,
    to_str: bool,
}

pub(super) fn fixup_copy(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let s1 = segments(args.get(0))?;
    if s1.len() > 1 {
        return Err("the first argument takes no flags".into());
    }
    let src = AvpName::from_seg(&s1[0], "the first argument")?;
    let s2 = segments(args.get(1))?;
    let dst = AvpName::from_seg(&s2[0], "the second argument")?;
    let f = flags(s2.get(1), "gdns")?;
    args.0 = vec![Arg::Custom(Box::new(Copy {
        src,
        dst,
        all: f.contains('g'),
        delete: f.contains('d'),
        to_int: f.contains('n'),
        to_str: f.contains('s'),
    }))];
    Ok(())
}

/// A string read as Kamailio's `str2int`: digits only, else `None`.
fn str2int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s)
        .ok()?
        .parse::<u32>()
        .ok()
        .map(|u| i64::from(u as i32))
}

/// `avp_copy("$avp(a)", "$avp(b)[/gdns]")`: the newest (`g`: every) value
/// of `a` added to `b`; `d` deletes the copied ones, `n`/`s` convert to
/// integer / string. 1 when any was copied, else -1.
pub(super) fn avp_copy(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(c) = args.custom::<Copy>(0) else {
        return -1;
    };
    let (src, dst) = (c.src.key(ctx), c.dst.key(ctx));
    let values: Vec<Value<'static>> = ctx.attrs.avp_values(&src).cloned().collect();
    let take = if c.all {
        values.len()
    } else {
        values.len().min(1)
    };
    let mut n = 0;
    for v in values.into_iter().take(take) {
        let v = match v {
            Value::Str(s) if c.to_int => match str2int(&s) {
                Some(i) => Value::Int(i),
                None => {
                    log::error!("avp_copy: cannot convert str to int");
                    return -1;
                }
            },
            Value::Int(i) if c.to_str => Value::owned((i as i32).to_string().into_bytes()),
            v => v,
        };
        ctx.attrs.avp_push(dst.clone(), v);
        n += 1;
        if c.delete {
            // Each copied value is the newest left (copies go to another name).
            if src.matches(&dst) {
                continue;
            }
            ctx.attrs.avp_remove_newest(&src);
        }
    }
    if n > 0 {
        1
    } else {
        -1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PushTo {
    Ruri,
    RuriUser,
    RuriHost,
    Duri,
    Branch,
}

#[derive(Debug)]
struct Push {
    dst: PushTo,
    src: PvRef,
    all: bool,
}

pub(super) fn fixup_pushto(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let s1 = segments(args.get(0))?;
    let pv = seg_pv(&s1[0]).ok_or("bad param 1; expected: $ru $du ...")?;
    let flag = s1
        .get(1)
        .map(|s| seg_text(s).unwrap_or_default().to_ascii_lowercase());
    let dst = match (&pv.kind, flag.as_deref()) {
        (PvKind::Ru, None) => PushTo::Ruri,
        (PvKind::Ru, Some("username")) => PushTo::RuriUser,
        (PvKind::Ru, Some("domain")) => PushTo::RuriHost,
        (PvKind::Du, None) => PushTo::Duri,
        (PvKind::Br, None) => PushTo::Branch,
        (PvKind::Ru | PvKind::Du | PvKind::Br, Some(f)) => {
            return Err(format!("unknown flag \"{f}\""))
        }
        (PvKind::Hdr(_), _) => {
            return Err("push to header is obsolete - use append_hf() or append_to_reply()".into())
        }
        _ => return Err("unsupported destination; expected $ru, $du, $br".into()),
    };
    let s2 = segments(args.get(1))?;
    let src = seg_pv(&s2[0])
        .ok_or("bad param 2; expected: $pseudo-variable")?
        .clone();
    let all = flags(s2.get(1), "g")?.contains('g');
    args.0 = vec![Arg::Custom(Box::new(Push { dst, src, all }))];
    Ok(())
}

/// `avp_pushto("$ru[/username|/domain]"|"$du"|"$br", "$avp(x)[/g]")`: the
/// value into the Request-URI (or its user or host), `$du`, or a new
/// branch; with `g` every value (each further one to the R-URI pushes the
/// current R-URI into a branch first). 1, -1 when there is no value.
pub(super) fn avp_pushto(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(p) = args.custom::<Push>(0) else {
        return -1;
    };
    let values: Vec<Value<'static>> = match AvpName::of(&p.src) {
        Some(n) if p.src.index.is_none() => {
            let key = n.key(ctx);
            let all: Vec<_> = ctx.attrs.avp_values(&key).cloned().collect();
            if all.is_empty() {
                return -1;
            }
            if p.all {
                all
            } else {
                all.into_iter().take(1).collect()
            }
        }
        _ => vec![ctx.read_pv(&p.src).into_owned()],
    };
    for (n, v) in values.into_iter().enumerate() {
        let is_str = matches!(v, Value::Str(_));
        let text = match &v {
            Value::Int(i) => (*i as i32 as u32).to_string().into_bytes(),
            other => other.to_bytes().into_owned(),
        };
        let ok = match p.dst {
            PushTo::Ruri | PushTo::RuriUser | PushTo::RuriHost => {
                if n > 0 && crate::modules::corex::branch::append_branch(ctx, &Args::default()) != 1
                {
                    return -1;
                }
                let kind = match p.dst {
                    PushTo::RuriUser => PvKind::RUser,
                    PushTo::RuriHost => PvKind::RHost,
                    _ => PvKind::Ru,
                };
                ctx.assign_pv(&PvRef::new(kind), AssignOp::Set, Value::owned(text))
                    .is_ok()
            }
            PushTo::Duri => {
                is_str
                    && ctx
                        .assign_pv(&PvRef::new(PvKind::Du), AssignOp::Set, Value::owned(text))
                        .is_ok()
            }
            PushTo::Branch => {
                is_str
                    && crate::modules::corex::branch::append_branch(
                        ctx,
                        &Args(vec![Arg::Str(Bytes::from(text))]),
                    ) == 1
            }
        };
        if !ok {
            return -1;
        }
    }
    1
}

/// The comparison of `avp_check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Re,
    Fm,
    And,
    Or,
    Xor,
}

#[derive(Debug)]
pub(super) enum Operand {
    Pv(PvRef),
    Int(i64),
    Str(Vec<u8>),
    Re(regex::bytes::Regex),
}

#[derive(Debug)]
struct Check {
    src: PvRef,
    op: CheckOp,
    value: Operand,
    all: bool,
    icase: bool,
}

/// `i:NUM` / `s:TEXT` / `TEXT` (a string).
fn int_or_str(t: &str) -> Result<Operand, String> {
    let (kind, v) = match t.as_bytes() {
        [k, b':', ..] => (Some(k.to_ascii_lowercase()), &t[2..]),
        _ => (None, t),
    };
    match kind {
        Some(b'i') => {
            let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                u32::from_str_radix(h, 16).map(|u| i64::from(u as i32)).ok()
            } else {
                v.parse::<i32>().map(i64::from).ok()
            };
            n.map(Operand::Int)
                .ok_or_else(|| format!("value is not int as type says <{t}>"))
        }
        Some(b's') if !v.is_empty() => Ok(Operand::Str(v.as_bytes().to_vec())),
        Some(b's') => Err(format!("parse error around <{t}>")),
        Some(k) => Err(format!("unknown value type <{}>", k as char)),
        None if t.is_empty() => Err("missing value".into()),
        None => Ok(Operand::Str(t.as_bytes().to_vec())),
    }
}

/// `op/value[/flags]` of `avp_check` and `avp_op`: the operation, the value
/// (a pseudo-variable or `i:`/`s:` constant) and the flag letters.
pub(super) fn op_value(
    arg: Option<&Arg>,
    allowed_flags: &str,
) -> Result<(String, Operand, String), String> {
    let segs = segments(arg)?;
    let op = seg_text(&segs[0])
        .filter(|o| (2..=3).contains(&o.len()))
        .ok_or("expected op/value[/flags]")?
        .to_ascii_lowercase();
    let vseg = segs.get(1).ok_or("expected op/value[/flags]")?;
    let value = match (seg_pv(vseg), seg_text(vseg)) {
        (Some(pv), _) => Operand::Pv(pv.clone()),
        (None, Some(t)) => int_or_str(&t)?,
        _ => return Err("the value must be a constant or one pseudo-variable".into()),
    };
    let f = flags(segs.get(2), allowed_flags)?;
    if segs.len() > 3 {
        return Err("expected op/value[/flags]".into());
    }
    Ok((op, value, f))
}

pub(super) fn fixup_check(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let s1 = segments(args.get(0))?;
    let src = seg_pv(&s1[0])
        .ok_or("the first argument must be a pseudo-variable")?
        .clone();
    let (op, value, f) = op_value(args.get(1), "gi")?;
    // Kamailio compares the operation's first letters.
    let op = match op.as_str() {
        o if o.starts_with("eq") => CheckOp::Eq,
        o if o.starts_with("ne") => CheckOp::Ne,
        o if o.starts_with("lt") => CheckOp::Lt,
        o if o.starts_with("le") => CheckOp::Le,
        o if o.starts_with("gt") => CheckOp::Gt,
        o if o.starts_with("ge") => CheckOp::Ge,
        o if o.starts_with("re") => CheckOp::Re,
        o if o.starts_with("fm") => CheckOp::Fm,
        o if o.starts_with("and") => CheckOp::And,
        o if o.starts_with("or") => CheckOp::Or,
        o if o.starts_with("xor") => CheckOp::Xor,
        o => return Err(format!("unknown operation <{o}>")),
    };
    let value = match (op, value) {
        // Kamailio compiles constant expressions extended, case-insensitive.
        (CheckOp::Re, Operand::Str(s)) => Operand::Re(
            regex::bytes::RegexBuilder::new(&String::from_utf8_lossy(&s))
                .case_insensitive(true)
                .multi_line(true)
                .build()
                .map_err(|e| format!("bad re: {e}"))?,
        ),
        (CheckOp::Fm, Operand::Int(_)) => {
            return Err("fast_match operation requires string value or avp name".into())
        }
        (_, v) => v,
    };
    args.0 = vec![Arg::Custom(Box::new(Check {
        src,
        op,
        value,
        all: f.contains('g'),
        icase: f.contains('i'),
    }))];
    Ok(())
}

/// Kamailio's `strncasecmp(a, b, max(len))` on two strings.
fn casecmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        let c = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
        if c.is_ne() {
            return c;
        }
    }
    std::cmp::Ordering::Equal
}

/// A glob (`fnmatch` without flags: `*`, `?`, `[...]`).
fn glob(pattern: &[u8], text: &[u8], icase: bool) -> bool {
    let mut re = String::from("(?s-u)^");
    if icase {
        re.push_str("(?i)");
    }
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' => re.push_str(".*"),
            b'?' => re.push('.'),
            b'[' => match pattern[i..].iter().position(|b| *b == b']') {
                Some(end) if end > 1 => {
                    let class = &pattern[i + 1..i + end];
                    let class = match class.first() {
                        Some(b'!') => [b"^".as_slice(), &class[1..]].concat(),
                        _ => class.to_vec(),
                    };
                    re.push('[');
                    for b in class {
                        if b == b'\\' || b == b'[' {
                            re.push('\\');
                        }
                        re.push_str(&format!("\\x{b:02x}"));
                    }
                    re.push(']');
                    i += end;
                }
                _ => re.push_str("\\["),
            },
            b => re.push_str(&format!("\\x{b:02x}")),
        }
        i += 1;
    }
    re.push('$');
    regex::bytes::Regex::new(&re).is_ok_and(|r| r.is_match(text))
}

/// One comparison; `None` when the two values are not of one type.
fn compare(
    op: CheckOp,
    a: &Value<'_>,
    b: &Value<'_>,
    re: Option<&regex::bytes::Regex>,
    icase: bool,
) -> Option<bool> {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(match op {
            CheckOp::Eq if icase => x.eq_ignore_ascii_case(y),
            CheckOp::Eq => x == y,
            CheckOp::Ne if icase => !x.eq_ignore_ascii_case(y),
            CheckOp::Ne => x != y,
            CheckOp::Lt => casecmp(x, y) == Less,
            CheckOp::Le => casecmp(x, y) != Greater,
            CheckOp::Gt => casecmp(x, y) == Greater,
            CheckOp::Ge => casecmp(x, y) != Less,
            CheckOp::Re => match re {
                Some(r) => r.is_match(x),
                None => regex::bytes::RegexBuilder::new(&String::from_utf8_lossy(y))
                    .case_insensitive(true)
                    .multi_line(true)
                    .build()
                    .is_ok_and(|r| r.is_match(x)),
            },
            CheckOp::Fm => glob(y, x, icase),
            CheckOp::And | CheckOp::Or | CheckOp::Xor => false,
        }),
        (Value::Int(x), Value::Int(y)) => {
            let (x, y) = (*x as i32, *y as i32);
            Some(match op {
                CheckOp::Eq => x == y,
                CheckOp::Ne => x != y,
                CheckOp::Lt => x < y,
                CheckOp::Le => x <= y,
                CheckOp::Gt => x > y,
                CheckOp::Ge => x >= y,
                CheckOp::And => x & y != 0,
                CheckOp::Or => x | y != 0,
                CheckOp::Xor => x ^ y != 0,
                CheckOp::Re | CheckOp::Fm => false,
            })
        }
        _ => None,
    }
}

/// The values a pseudo-variable stands for in avpops: every value of an
/// AVP (newest first; `None` when there is none), else its one value.
pub(super) fn values_of(ctx: &MsgCtx<'_>, pv: &PvRef) -> Option<Vec<Value<'static>>> {
    match AvpName::of(pv) {
        Some(n) if pv.index.is_none() => {
            let key = n.key(ctx);
            let v: Vec<_> = ctx.attrs.avp_values(&key).cloned().collect();
            (!v.is_empty()).then_some(v)
        }
        _ => match ctx.read_pv(pv) {
            Value::Null => Some(vec![Value::owned(Vec::new())]),
            v => Some(vec![v.into_owned()]),
        },
    }
}

/// `avp_check(pv, "op/value[/gi]")`: 1 when the value (`g`: any value of
/// the AVP) compares true against the value (any value of a second AVP), else -1.
pub(super) fn avp_check(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(c) = args.custom::<Check>(0) else {
        return -1;
    };
    let Some(mut left) = values_of(ctx, &c.src) else {
        return -1;
    };
    if !c.all {
        left.truncate(1);
    }
    let (right, re) = match &c.value {
        Operand::Pv(pv) => match values_of(ctx, pv) {
            Some(v) => (v, None),
            None => return -1,
        },
        Operand::Int(i) => (vec![Value::Int(*i)], None),
        Operand::Str(s) => (vec![Value::owned(s.clone())], None),
        Operand::Re(r) => (vec![Value::owned(Vec::new())], Some(r)),
    };
    for a in &left {
        for b in &right {
            match compare(c.op, a, b, re, c.icase) {
                Some(true) => return 1,
                Some(false) => {}
                None => log::error!("avp_check: value types don't match"),
            }
        }
    }
    -1
}
