//! textops: tests and edits on the message text (KAMAILIO-REFERENCE §7.5).
//! Functions return 1 for true and -1 for false.

use crate::script::ctx::MsgCtx;
use crate::script::registry::{Arg, Args, FunctionDef, ModParams, ModuleDef, RouteMask};

/// `is_method("INVITE|BYE")`: the method list is split once, at start-up.
fn fixup_methods(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let list = match args.get(0) {
        Some(Arg::Str(s)) => std::str::from_utf8(s)
            .map_err(|_| "method list is not text".to_string())?
            .to_string(),
        _ => return Err("is_method needs a constant list of methods".into()),
    };
    let methods: Vec<Vec<u8>> = list
        .split('|')
        .map(|m| m.trim().as_bytes().to_vec())
        .filter(|m| !m.is_empty())
        .collect();
    if methods.is_empty() {
        return Err("empty method list".into());
    }
    args.0[0] = Arg::Custom(Box::new(methods));
    Ok(())
}

/// Whether the request's method (a reply's CSeq method) is in the list; names
/// compare case-insensitively as Kamailio's method parser does.
fn is_method(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(methods) = args.custom::<Vec<Vec<u8>>>(0) else {
        return -1;
    };
    let m = ctx.msg.method_bytes();
    if methods.iter().any(|x| x.eq_ignore_ascii_case(m)) {
        1
    } else {
        -1
    }
}

/// `is_present_hf(name)`: whether a header with that name (compact forms count) exists.
fn is_present_hf(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0);
    if ctx.msg.headers_named(&name).next().is_some() {
        1
    } else {
        -1
    }
}

/// `has_body([content-type])`: a non-empty body (of that type when given).
fn has_body(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if ctx.msg.body().is_empty() {
        return -1;
    }
    if args.is_empty() {
        return 1;
    }
    let want = args.str(ctx, 0);
    let ctype = ctx
        .msg
        .header_value(crate::sip::HeaderName::ContentType)
        .unwrap_or(b"");
    let base = ctype
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii();
    if base.eq_ignore_ascii_case(want.trim_ascii()) {
        1
    } else {
        -1
    }
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
    name: "textops",
    aliases: &[],
    functions: &[
        f!("is_method", 1, 1, Some(fixup_methods), is_method),
        f!("is_present_hf", 1, 1, None, is_present_hf),
        f!("has_body", 0, 1, None, has_body),
    ],
    params: &[],
    always: false,
};
pub static MODULE_X: ModuleDef = ModuleDef {
    name: "textopsx",
    aliases: &[],
    functions: &[],
    params: &[],
    always: false,
};
