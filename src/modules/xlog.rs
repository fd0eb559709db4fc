//! xlog: formatted log lines from the script (`xlog`, `xdbg`, `xinfo`, …).
//! A line is printed when its level is at or below the global `debug` level;
//! below it, the format is not even evaluated.
//!
//! As Kamailio 5.6 (checked live): `xlogl([[facility,] level,] format)` and
//! `xdbgl(format)` put the configuration line of the call in front
//! (`<script>: 19:text`); `xlogm(level, format)` logs only for a message
//! whose method (a reply's: its CSeq's) is not in `methods_filter`, a mask
//! of Kamailio's method ids, -1 (every method filtered) by default. The
//! facility argument is accepted; ringsip has one log.

use crate::script::ctx::MsgCtx;
use crate::script::registry::{
    Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};

/// Kamailio's log levels.
pub const L_ALERT: i64 = -5;
pub const L_BUG: i64 = -4;
pub const L_CRIT: i64 = -3;
pub const L_ERR: i64 = -1;
pub const L_WARN: i64 = 0;
pub const L_NOTICE: i64 = 1;
pub const L_INFO: i64 = 2;
pub const L_DBG: i64 = 3;

/// A level name (`L_INFO`, `INFO`, `info`…) or number.
pub fn level_from_name(name: &str) -> Option<i64> {
    let n = name.trim();
    let n = n
        .strip_prefix("L_")
        .or_else(|| n.strip_prefix("l_"))
        .unwrap_or(n);
    Some(match n.to_ascii_uppercase().as_str() {
        "ALERT" => L_ALERT,
        "BUG" => L_BUG,
        "CRIT" => L_CRIT,
        "ERR" | "ERROR" => L_ERR,
        "WARN" | "WARNING" => L_WARN,
        "NOTICE" => L_NOTICE,
        "INFO" => L_INFO,
        "DBG" | "DEBUG" => L_DBG,
        other => other.parse().ok()?,
    })
}

/// Writes one script log line at a Kamailio level.
pub fn emit(level: i64, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    let text = text.trim_end_matches('\n');
    let lvl = match level {
        i64::MIN..=L_ERR => log::Level::Error,
        L_WARN => log::Level::Warn,
        L_NOTICE | L_INFO => log::Level::Info,
        _ => log::Level::Debug,
    };
    log::log!(target: "script", lvl, "<script>: {text}");
}

/// `xlog([[facility,] level,] format)`: the level argument is fixed up to an
/// integer when constant.
fn fixup_xlog(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if args.len() >= 2 {
        let level_at = args.len() - 2;
        if let Arg::Str(s) = &args.0[level_at] {
            let name = std::str::from_utf8(s).map_err(|_| "log level is not text".to_string())?;
            let level =
                level_from_name(name).ok_or_else(|| format!("unknown log level \"{name}\""))?;
            args.0[level_at] = Arg::Int(level);
        }
    }
    Ok(())
}

fn log_at(ctx: &mut MsgCtx<'_>, level: i64, args: &Args, fmt_at: usize) -> i32 {
    if level > i64::from(ctx.state.debug_level(ctx.env.debug)) {
        return 1;
    }
    let text = args.str(ctx, fmt_at);
    emit(level, &text);
    1
}

/// Functions whose last argument the compiler adds: the call's line.
pub const WANTS_LINE: &[&str] = &["xlogl", "xdbgl"];

/// `xlogl`/`xdbgl`: the format at `fmt_at`, the line after it.
fn log_with_line(ctx: &mut MsgCtx<'_>, level: i64, args: &Args, fmt_at: usize) -> i32 {
    if level > i64::from(ctx.state.debug_level(ctx.env.debug)) {
        return 1;
    }
    let line = args.int(ctx, fmt_at + 1).unwrap_or(0);
    let mut text = format!("{line}:").into_bytes();
    text.extend_from_slice(&args.str(ctx, fmt_at));
    emit(level, &text);
    1
}

fn xlogl(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    // The compiler appended the line: the format is the one before it.
    match args.len() {
        2 => log_with_line(ctx, L_ERR, args, 0),
        n => {
            let level = args.int(ctx, n - 3).unwrap_or(L_ERR);
            log_with_line(ctx, level, args, n - 2)
        }
    }
}

fn xdbgl(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    log_with_line(ctx, L_DBG, args, 0)
}

/// `xlogm(level, format)`: as `xlog(level, format)` unless the method is in
/// `methods_filter` (fixed up into a third argument).
fn xlogm(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let filter = args.int(ctx, 2).unwrap_or(-1);
    let msg = ctx.msg;
    let method = if msg.is_request() {
        Some(msg.method_bytes())
    } else {
        msg.header_value(crate::sip::HeaderName::CSeq)
            .and_then(|v| crate::sip::headers::CSeq::parse(v).ok())
            .map(|c| c.method.as_bytes())
    };
    let id = method.map_or(0, |m| {
        crate::modules::usrloc::method_bit(m).map_or(1 << 19, i64::from)
    });
    if filter & id != 0 {
        return 1;
    }
    let level = args.int(ctx, 0).unwrap_or(L_ERR);
    log_at(ctx, level, args, 1)
}

fn fixup_xlogm(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    fixup_xlog(args, mp)?;
    let filter = mp.int("xlog", "methods_filter").unwrap_or(-1);
    args.0.push(Arg::Int(filter));
    Ok(())
}

fn xlog(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match args.len() {
        1 => log_at(ctx, L_ERR, args, 0),
        n => {
            let level = args.int(ctx, n - 2).unwrap_or(L_ERR);
            log_at(ctx, level, args, n - 1)
        }
    }
}

macro_rules! fixed_level {
    ($name:ident, $level:expr) => {
        fn $name(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
            log_at(ctx, $level, args, 0)
        }
    };
}

fixed_level!(xdbg, L_DBG);
fixed_level!(xinfo, L_INFO);
fixed_level!(xnotice, L_NOTICE);
fixed_level!(xwarn, L_WARN);
fixed_level!(xerr, L_ERR);
fixed_level!(xbug, L_BUG);
fixed_level!(xcrit, L_CRIT);
fixed_level!(xalert, L_ALERT);

const fn one(name: &'static str, call: crate::script::registry::Handler) -> FunctionDef {
    FunctionDef {
        name,
        min_args: 1,
        max_args: 1,
        routes: RouteMask::ANY,
        fixup: None,
        call,
    }
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "xlog",
    aliases: &[],
    functions: &[
        FunctionDef {
            name: "xlog",
            min_args: 1,
            max_args: 3,
            routes: RouteMask::ANY,
            fixup: Some(fixup_xlog),
            call: xlog,
        },
        FunctionDef {
            name: "xlogl",
            min_args: 1,
            max_args: 3,
            routes: RouteMask::ANY,
            fixup: Some(fixup_xlog),
            call: xlogl,
        },
        one("xdbgl", xdbgl),
        FunctionDef {
            name: "xlogm",
            min_args: 2,
            max_args: 2,
            routes: RouteMask::ANY,
            fixup: Some(fixup_xlogm),
            call: xlogm,
        },
        one("xdbg", xdbg),
        one("xinfo", xinfo),
        one("xnotice", xnotice),
        one("xwarn", xwarn),
        one("xerr", xerr),
        one("xbug", xbug),
        one("xcrit", xcrit),
        one("xalert", xalert),
    ],
    params: &[
        ParamDef {
            name: "buf_size",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "prefix",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "prefix_mode",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "force_color",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "long_format",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "log_facility",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "log_colors",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "methods_filter",
            kind: ParamKind::Int,
        },
    ],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names() {
        assert_eq!(level_from_name("L_INFO"), Some(L_INFO));
        assert_eq!(level_from_name("L_DBG"), Some(L_DBG));
        assert_eq!(level_from_name("err"), Some(L_ERR));
        assert_eq!(level_from_name("L_ALERT"), Some(L_ALERT));
        assert_eq!(level_from_name("-3"), Some(-3));
        assert_eq!(level_from_name("L_LOUD"), None);
    }
}
