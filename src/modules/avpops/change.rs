//! Operations that compute new AVP values and look at them: `avp_op`,
//! `avp_subst`, `avp_subst_pv`, `is_avp_set`, `avp_print`.

use super::args::{flags, seg_pv, segments, AvpName};
use super::ops::{op_value, Operand};
use crate::script::ctx::MsgCtx;
use crate::script::pvkind::AvpKey;
use crate::script::registry::{Arg, Args, ModParams};
use crate::script::transform::Subst;
use crate::script::value::Value;

#[derive(Debug)]
struct Op {
    src: AvpName,
    dst: Option<AvpName>,
    op: String,
    value: Operand,
    /// `g` is accepted and, as in Kamailio, changes nothing: every value is used.
    delete: bool,
}

pub(super) fn fixup_op(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let s1 = segments(args.get(0))?;
    let src = AvpName::from_seg(&s1[0], "the first argument")?;
    let dst = match s1.get(1) {
        Some(s) => Some(AvpName::from_seg(s, "the destination")?),
        None => None,
    };
    let (op, value, f) = op_value(args.get(1), "gd")?;
    let op = ["add", "sub", "mul", "div", "mod", "and", "or", "xor", "not"]
        .into_iter()
        .find(|o| op.starts_with(o))
        .ok_or_else(|| format!("unknown operation <{op}>"))?
        .to_string();
    if matches!(value, Operand::Str(_)) {
        return Err("operations require integer values".into());
    }
    args.0 = vec![Arg::Custom(Box::new(Op {
        src,
        dst,
        op,
        value,
        delete: f.contains('d'),
    }))];
    Ok(())
}

/// `avp_op("$avp(a)[/$avp(b)]", "op/value[/d]")`: integer arithmetic
/// (add sub mul div mod and or xor; `not` gives the complement of the
/// value) of each integer value of `a` (newest first) with each integer
/// value of the operand in turn (a result is the left side of the next
/// operation), every result added to `b` (or to `a`); `d`
/// deletes the source values. Division by zero gives 0. 1, -1 when `a` has
/// no integer value.
pub(super) fn avp_op(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(o) = args.custom::<Op>(0) else {
        return -1;
    };
    let src = o.src.key(ctx);
    let dst = o.dst.as_ref().map_or_else(|| src.clone(), |d| d.key(ctx));
    let ints = |v: Vec<Value<'static>>| -> Vec<i32> {
        v.into_iter()
            .filter_map(|v| match v {
                Value::Int(i) => Some(i as i32),
                _ => None,
            })
            .collect()
    };
    let sources = ints(ctx.attrs.avp_values(&src).cloned().collect());
    if sources.is_empty() && o.op != "not" {
        return -1;
    }
    let operands: Vec<i32> = match &o.value {
        Operand::Int(i) => vec![*i as i32],
        Operand::Pv(pv) => match AvpName::of(pv) {
            Some(n) => {
                let key = n.key(ctx);
                let v = ints(ctx.attrs.avp_values(&key).cloned().collect());
                if v.is_empty() {
                    return -1;
                }
                v
            }
            None => match ctx.read_pv(pv) {
                Value::Int(i) => vec![i as i32],
                _ => {
                    log::error!("avp_op: the value is not an integer");
                    return -1;
                }
            },
        },
        _ => return -1,
    };
    let mut results = Vec::new();
    // As Kamailio: with several operand values, each result is the left
    // side of the next operation on the same source value.
    for x in &sources {
        let mut x = *x;
        for y in &operands {
            x = match o.op.as_str() {
                "add" => x.wrapping_add(*y),
                "sub" => x.wrapping_sub(*y),
                "mul" => x.wrapping_mul(*y),
                "div" | "mod" if *y == 0 => {
                    log::error!("avp_op: division by 0");
                    0
                }
                "div" => x.wrapping_div(*y),
                "mod" => x.wrapping_rem(*y),
                "and" => x & y,
                "or" => x | y,
                "xor" => x ^ y,
                _ => !y,
            };
            results.push(x);
        }
    }
    if o.delete {
        // Only the integer values were operated on (and are deleted).
        let mut left = sources.len();
        ctx.attrs.avp_retain(|k, v| {
            if left > 0 && k.matches(&src) && matches!(v, Value::Int(_)) {
                left -= 1;
                return false;
            }
            true
        });
    }
    for r in results {
        ctx.attrs.avp_push(dst.clone(), Value::Int(i64::from(r)));
    }
    1
}

#[derive(Debug)]
struct SubstSpec {
    src: AvpName,
    dst: Option<AvpName>,
    all: bool,
    delete: bool,
}

fn subst_spec(arg: Option<&Arg>) -> Result<SubstSpec, String> {
    let segs = segments(arg)?;
    let src = AvpName::from_seg(&segs[0], "the first argument")?;
    let mut rest = segs[1..].iter();
    let mut dst = None;
    let mut f = String::new();
    if let Some(s) = rest.next() {
        if seg_pv(s).is_some() {
            dst = Some(AvpName::from_seg(s, "the destination")?);
            f = flags(rest.next(), "gd")?;
        } else {
            f = flags(Some(s), "gd")?;
        }
    }
    if rest.next().is_some() {
        return Err("expected $avp(src)[/$avp(dst)][/flags]".into());
    }
    Ok(SubstSpec {
        src,
        dst,
        all: f.contains('g'),
        delete: f.contains('d'),
    })
}

pub(super) fn fixup_subst(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let spec = subst_spec(args.get(0))?;
    match args.get(1) {
        Some(Arg::Str(s)) => {
            let subst = Subst::parse(&String::from_utf8_lossy(s))?;
            args.0 = vec![Arg::Custom(Box::new(spec)), Arg::Custom(Box::new(subst))];
        }
        // Variables in the replacement are read per message, as Kamailio's
        // substitution parser reads them.
        Some(Arg::Fmt(_)) => args.0[0] = Arg::Custom(Box::new(spec)),
        _ => return Err("the substitution must be /re/repl/flags".into()),
    }
    Ok(())
}

pub(super) fn fixup_subst_pv(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let spec = subst_spec(args.get(0))?;
    args.0[0] = Arg::Custom(Box::new(spec));
    Ok(())
}

fn do_subst(ctx: &mut MsgCtx<'_>, spec: &SubstSpec, subst: &Subst) -> i32 {
    let src = spec.src.key(ctx);
    let dst = spec.dst.as_ref().map(|d| d.key(ctx));
    let values: Vec<Value<'static>> = ctx.attrs.avp_values(&src).cloned().collect();
    let take = if spec.all {
        values.len()
    } else {
        values.len().min(1)
    };
    let mut n = 0;
    let mut out = Vec::new();
    for v in values.iter().take(take) {
        let Value::Str(s) = v else { continue };
        if let Some(r) = subst.apply(s) {
            out.push(r);
            n += 1;
        }
    }
    if n == 0 {
        return -1;
    }
    if dst.is_none() || spec.delete {
        for _ in 0..take {
            ctx.attrs.avp_remove_newest(&src);
        }
    }
    let to = dst.unwrap_or(src);
    for r in out.into_iter().rev() {
        ctx.attrs.avp_push(to.clone(), Value::owned(r));
    }
    1
}

/// `avp_subst("$avp(a)[/$avp(b)][/gd]", "/re/repl/flags")`: the substitution
/// on the newest (`g`: every) string value of `a`, results to `b` (or
/// replacing `a`'s). 1 when anything was replaced, else -1.
pub(super) fn avp_subst(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match args.custom::<Subst>(1) {
        Some(subst) => match args.custom::<SubstSpec>(0) {
            Some(spec) => do_subst(ctx, spec, subst),
            None => -1,
        },
        None => avp_subst_pv(ctx, args),
    }
}

/// `avp_subst_pv`: as `avp_subst`, the substitution printed per message.
pub(super) fn avp_subst_pv(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(spec) = args.custom::<SubstSpec>(0) else {
        return -1;
    };
    let text = String::from_utf8_lossy(&args.str(ctx, 1)).into_owned();
    match Subst::parse(&text) {
        Ok(s) => do_subst(ctx, spec, &s),
        Err(e) => {
            log::error!("avp_subst_pv: bad subst re {text}: {e}");
            -1
        }
    }
}

#[derive(Debug)]
struct IsSet {
    name: AvpName,
    empty: bool,
    int: bool,
    string: bool,
}

pub(super) fn fixup_is_set(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let segs = segments(args.get(0))?;
    let name = AvpName::from_seg(&segs[0], "the argument")?;
    let f = flags(segs.get(1), "ens")?;
    if f.contains('n') && f.contains('s') {
        return Err("invalid flag combination 'n' and 's'".into());
    }
    args.0 = vec![Arg::Custom(Box::new(IsSet {
        name,
        empty: f.contains('e'),
        int: f.contains('n'),
        string: f.contains('s'),
    }))];
    Ok(())
}

/// `is_avp_set("$avp(x)[/e|n|s]")`: without flags 1 when the AVP has a
/// value; with flags the newest value must be an integer (`n`), a string
/// (`s`), and empty or 0 (`e`). Else -1.
pub(super) fn is_avp_set(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(s) = args.custom::<IsSet>(0) else {
        return -1;
    };
    let key = s.name.key(ctx);
    let Some(v) = ctx.attrs.avp_values(&key).next() else {
        return -1;
    };
    if !(s.empty || s.int || s.string) {
        return 1;
    }
    let is_str = matches!(v, Value::Str(_));
    if s.int && is_str || s.string && !is_str {
        return -1;
    }
    let ok = !s.empty
        || match v {
            Value::Str(t) => t.is_empty(),
            Value::Int(i) => *i == 0,
            Value::Null => true,
        };
    if ok {
        1
    } else {
        -1
    }
}

/// `avp_print()`: logs every AVP. 1.
pub(super) fn avp_print(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    for (k, v) in ctx.attrs.avps().iter().rev() {
        match k {
            AvpKey::Str(n) => log::info!("avp name=<{}>", String::from_utf8_lossy(n)),
            AvpKey::Int(i) => log::info!("avp id=<{i}>"),
        }
        match v {
            Value::Str(s) => log::info!("\tval_str=<{} / {}>", String::from_utf8_lossy(s), s.len()),
            other => log::info!("\tval_int=<{}>", other.to_int() as i32),
        }
    }
    1
}
