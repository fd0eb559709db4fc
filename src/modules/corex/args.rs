//! Argument fixups shared by the corex functions: variables given as quoted
//! strings (`"$mb"`, `"$avp(msg)"`) are read and written as variables, so
//! binary values are never printed through a format.

use std::borrow::Cow;

use crate::script::ctx::MsgCtx;
use crate::script::ir::FormatPart;
use crate::script::registry::{Arg, Args};

/// Turns argument `i` into a variable when it is one alone in a string.
pub fn as_pv(args: &mut Args, i: usize) {
    if let Some(Arg::Fmt(f)) = args.0.get(i) {
        if let [FormatPart::Pv(pv)] = f.parts.as_slice() {
            let pv = pv.clone();
            args.0[i] = Arg::Pv(pv);
        }
    }
}

/// Argument `i` must be a writable variable (`$avp(x)`, `$var(x)`…).
pub fn out_pv(args: &mut Args, i: usize) -> Result<(), String> {
    as_pv(args, i);
    match args.0.get(i) {
        Some(Arg::Pv(pv)) if pv.is_writable() => Ok(()),
        _ => Err(format!("argument {} must be a writable variable", i + 1)),
    }
}

/// The bytes of argument `i` for this message (a variable read without a copy
/// when it is a string).
pub fn bytes<'a>(ctx: &'a MsgCtx<'_>, args: &'a Args, i: usize) -> Cow<'a, [u8]> {
    args.str(ctx, i)
}

/// Writes `value` to the output variable `i`; false when it refuses it.
pub fn write(ctx: &mut MsgCtx<'_>, args: &Args, i: usize, value: Vec<u8>, what: &str) -> bool {
    let Some(Arg::Pv(pv)) = args.get(i) else {
        return false;
    };
    match ctx.write_pv(pv, crate::script::value::Value::owned(value)) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("{what}: {e}");
            false
        }
    }
}
