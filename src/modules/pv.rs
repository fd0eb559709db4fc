//! pv: the pseudo-variables themselves live in the script layer
//! (`script::pvread`, `script::pvwrite`); this module carries the parameters
//! that set start values: `shvset` (`$shv`, shared by all cores) and
//! `varset` (`$var`, per core). Both take `name=i:number` or `name=s:text`
//! and may be given many times; the compiler reads them.
//!
//! Its functions test and drop variables: `pv_isset`, `pv_unset`, `is_int`,
//! `typeof`, `not_empty`, `xavp_rm` / `xavu_rm` / `xavi_rm`, and log the
//! extended AVPs with `pv_xavp_print` / `pv_xavu_print` / `pv_xavi_print`.
//! The variable is given as a string holding it alone (`"$var(x)"`), as in
//! Kamailio. 1 true, -1 false. `sbranch_set_ruri`, `sbranch_append` and
//! `sbranch_reset` use the static branch `$sbranch(...)` (its send socket is
//! kept but not applied).

use crate::modules::corex::args::as_pv;
use crate::script::attrs::{Xavp, XavpValue};
use crate::script::ctx::MsgCtx;
use crate::script::pvkind::XavpClass;
use crate::script::registry::truth;
use crate::script::registry::{
    Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::script::value::Value;

/// The first argument must be one variable alone in a string.
fn fixup_pv(args: &mut Args, _: &ModParams) -> Result<(), String> {
    as_pv(args, 0);
    match args.get(0) {
        Some(Arg::Pv(_)) => Ok(()),
        _ => Err("the first argument must be a pseudo-variable, such as \"$var(x)\"".into()),
    }
}

/// `pv_unset` needs a variable the script may assign.
fn fixup_writable(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    fixup_pv(args, mp)?;
    match args.get(0) {
        Some(Arg::Pv(pv)) if pv.is_writable() => Ok(()),
        _ => Err("the first argument must be a writable variable".into()),
    }
}

/// `typeof(pv, type)`: the type is `int`, `str` or `null`.
fn fixup_typeof(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    fixup_pv(args, mp)?;
    match args.get(1) {
        Some(Arg::Str(t)) if matches!(t.as_ref(), b"int" | b"str" | b"null") => Ok(()),
        Some(Arg::Str(t)) => Err(format!(
            "unknown type \"{}\": use int, str or null",
            String::from_utf8_lossy(t)
        )),
        _ => Err("the second argument must be int, str or null".into()),
    }
}

fn pv_value<'s>(ctx: &'s MsgCtx<'_>, args: &'s Args) -> Value<'s> {
    match args.get(0) {
        Some(Arg::Pv(pv)) => ctx.read_pv(pv),
        _ => Value::Null,
    }
}

/// `pv_isset(pv)`: the variable holds a value (an unset `$var` holds 0).
fn pv_isset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(!matches!(pv_value(ctx, args), Value::Null))
}

/// `pv_unset(pv)`: as assigning `$null` (an AVP or XAVP goes, a `$var` reads 0).
fn pv_unset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(Arg::Pv(pv)) = args.get(0) else {
        return -1;
    };
    match ctx.write_pv(pv, Value::Null) {
        Ok(()) => 1,
        Err(e) => {
            log::warn!("pv_unset: {e}");
            -1
        }
    }
}

/// `is_int(pv)`: the value is an integer (a string of digits is not).
fn is_int(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(matches!(pv_value(ctx, args), Value::Int(_)))
}

/// `typeof(pv, int|str|null)`.
fn type_of(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let want: &[u8] = match args.get(1) {
        Some(Arg::Str(t)) => t,
        _ => return -1,
    };
    let is = match pv_value(ctx, args) {
        Value::Null => &b"null"[..],
        Value::Int(_) => b"int",
        Value::Str(_) => b"str",
    };
    truth(is == want)
}

/// `not_empty(pv)`: a string value that is not empty (an integer is not).
fn not_empty(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(matches!(pv_value(ctx, args), Value::Str(s) if !s.is_empty()))
}

fn xavx_rm(ctx: &mut MsgCtx<'_>, args: &Args, class: XavpClass) -> i32 {
    let mut name = args.str(ctx, 0).into_owned();
    if class == XavpClass::Xavi {
        name.make_ascii_lowercase();
    }
    ctx.attrs.xavp_remove_in(class, &name, None);
    1
}

fn xavp_rm(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    xavx_rm(ctx, args, XavpClass::Xavp)
}

fn xavu_rm(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    xavx_rm(ctx, args, XavpClass::Xavu)
}

fn xavi_rm(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    xavx_rm(ctx, args, XavpClass::Xavi)
}

/// One line per root and per field, newest first, indented by depth.
pub fn dump(roots: &[Xavp]) -> Vec<String> {
    fn walk(list: &[Xavp], depth: usize, out: &mut Vec<String>) {
        for x in list.iter().rev() {
            let name = String::from_utf8_lossy(&x.name);
            match &x.value {
                XavpValue::Value(Value::Int(i)) => {
                    out.push(format!("{:depth$}{name} (int): {i}", ""))
                }
                XavpValue::Value(Value::Str(s)) => out.push(format!(
                    "{:depth$}{name} (str): {}",
                    "",
                    String::from_utf8_lossy(s)
                )),
                XavpValue::Value(Value::Null) => out.push(format!("{:depth$}{name} (null)", "")),
                XavpValue::List(fields) => {
                    out.push(format!("{:depth$}{name} (list)", ""));
                    walk(fields, depth + 2, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(roots, 0, &mut out);
    out
}

fn print(ctx: &MsgCtx<'_>, class: XavpClass, what: &str) -> i32 {
    let lines = dump(ctx.attrs.roots(class));
    log::info!(
        "{what}: {} root(s)",
        lines.iter().filter(|l| !l.starts_with(' ')).count()
    );
    for l in lines {
        log::info!("{what}:   {l}");
    }
    1
}

fn pv_xavp_print(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    print(ctx, XavpClass::Xavp, "xavp")
}

fn pv_xavu_print(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    print(ctx, XavpClass::Xavu, "xavu")
}

fn pv_xavi_print(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    print(ctx, XavpClass::Xavi, "xavi")
}

/// `sbranch_set_ruri()`: the static branch becomes the Request-URI branch
/// (R-URI, `$du`, Path, q, branch flags). -1 when it has no URI.
fn sbranch_set_ruri(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(b) = ctx.core.sbranch.clone().filter(|b| !b.uri.is_empty()) else {
        return -1;
    };
    ctx.new_uri = Some(b.uri);
    ctx.dst_uri = b.dst_uri;
    ctx.path_vec = b.path;
    ctx.state.bflags = b.flags;
    ctx.state.ruri_q = (b.q >= 0).then_some(b.q);
    1
}

/// `sbranch_append()`: a copy of the static branch joins the destination set.
fn sbranch_append(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(b) = ctx.core.sbranch.clone().filter(|b| !b.uri.is_empty()) else {
        return -1;
    };
    ctx.branches.push(b);
    1
}

/// `sbranch_reset()`: empties the static branch.
fn sbranch_reset(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.core.sbranch = None;
    1
}

macro_rules! f {
    ($name:expr, $min:expr, $max:expr, $fixup:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $min,
            max_args: $max,
            routes: RouteMask::ANY,
            fixup: $fixup,
            call: $call,
        }
    };
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "pv",
    aliases: &[],
    functions: &[
        f!("pv_isset", 1, 1, Some(fixup_pv), pv_isset),
        f!("pv_unset", 1, 1, Some(fixup_writable), pv_unset),
        f!("is_int", 1, 1, Some(fixup_pv), is_int),
        f!("typeof", 2, 2, Some(fixup_typeof), type_of),
        f!("not_empty", 1, 1, Some(fixup_pv), not_empty),
        f!("xavp_rm", 1, 1, None, xavp_rm),
        f!("xavu_rm", 1, 1, None, xavu_rm),
        f!("xavi_rm", 1, 1, None, xavi_rm),
        f!("pv_xavp_print", 0, 0, None, pv_xavp_print),
        f!("pv_xavu_print", 0, 0, None, pv_xavu_print),
        f!("pv_xavi_print", 0, 0, None, pv_xavi_print),
        f!("sbranch_set_ruri", 0, 0, None, sbranch_set_ruri),
        f!("sbranch_append", 0, 0, None, sbranch_append),
        f!("sbranch_reset", 0, 0, None, sbranch_reset),
    ],
    params: &[
        ParamDef {
            name: "shvset",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "varset",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "avp_aliases",
            kind: ParamKind::Str,
        },
    ],
    always: false,
};

#[cfg(test)]
#[path = "pv_tests.rs"]
mod tests;
