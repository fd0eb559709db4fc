//! Core functions (always available): forwarding, message flags, the
//! Request-URI ([`super::ruri`]), send options ([`super::send`]), logging and
//! the destination set (KAMAILIO-REFERENCE §1.6). `setdsturi` and friends are
//! kex functions in Kamailio (`crate::modules::kex`).

use bytes::Bytes;

use super::{forward, ruri, send};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{fixup_int, Arg, Args, FunctionDef, ModParams, ModuleDef, RouteMask};
use crate::sip::Proto;

/// Message flags are numbered 0..=63.
const MAX_FLAG: i64 = 63;

fn fixup_flag(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)?;
    match args.get(0) {
        Some(Arg::Int(f)) if !(0..=MAX_FLAG).contains(f) => {
            Err(format!("flag {f} is out of 0..{MAX_FLAG}"))
        }
        _ => Ok(()),
    }
}

fn flag_bit(ctx: &MsgCtx<'_>, args: &Args) -> Option<u64> {
    args.int(ctx, 0)
        .filter(|f| (0..=MAX_FLAG).contains(f))
        .map(|f| 1u64 << f)
}

fn setflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(bit) = flag_bit(ctx, args) else {
        return -1;
    };
    ctx.flags |= bit;
    1
}

fn resetflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(bit) = flag_bit(ctx, args) else {
        return -1;
    };
    ctx.flags &= !bit;
    1
}

fn isflagset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match flag_bit(ctx, args) {
        Some(bit) if ctx.flags & bit != 0 => 1,
        _ => -1,
    }
}

/// The optional `host[, port]` arguments of `forward()`/`t_relay()`; `Err`
/// carries the script code for a bad port.
pub(crate) fn host_port(
    ctx: &MsgCtx<'_>,
    args: &Args,
) -> Result<(Option<Vec<u8>>, Option<u16>), i32> {
    let host = (!args.is_empty()).then(|| args.str(ctx, 0).into_owned());
    let port = match args.len() {
        0 | 1 => None,
        _ => match args.int(ctx, 1) {
            Some(p) if (0..=65535).contains(&p) => Some(p as u16),
            _ => return Err(-1),
        },
    };
    Ok((host, port))
}

/// `forward()`, `forward(host)`, `forward(host, port)` and the transport-specific forms.
fn forward_with(ctx: &mut MsgCtx<'_>, args: &Args, proto: Option<Proto>) -> i32 {
    match host_port(ctx, args) {
        Ok((host, port)) => forward::request(ctx, host.as_deref(), port, proto),
        Err(code) => code,
    }
}

fn forward_any(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    forward_with(ctx, args, None)
}

fn forward_udp(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    forward_with(ctx, args, Some(Proto::Udp))
}

fn forward_tcp(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    forward_with(ctx, args, Some(Proto::Tcp))
}

fn forward_tls(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    forward_with(ctx, args, Some(Proto::Tls))
}

pub(crate) fn fixup_port(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if args.len() > 1 {
        fixup_int(args, 1)?;
        if let Some(Arg::Int(p)) = args.get(1) {
            if !(0..=65535).contains(p) {
                return Err(format!("port {p} is out of 0..65535"));
            }
        }
    }
    Ok(())
}

/// `rewriteuri(u)` / `seturi(u)`: replaces the Request-URI.
fn seturi(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let uri = args.str(ctx, 0).into_owned();
    if uri.is_empty() {
        return -1;
    }
    ctx.new_uri = Some(Bytes::from(uri));
    1
}

/// `revert_uri()`: the Request-URI as received.
fn revert_uri(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.new_uri = None;
    1
}

/// A count or index argument: a number that is not negative.
fn fixup_count(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)?;
    match args.get(0) {
        Some(Arg::Int(n)) if *n < 0 => Err(format!("{n} is negative")),
        _ => Ok(()),
    }
}

/// Level of `log(text)` without one: below L_DBG, so printed only with `debug=4` or more.
const LOG_DEFAULT_LEVEL: i64 = crate::modules::xlog::L_DBG + 1;

fn fixup_log(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if args.len() == 2 {
        if let Some(Arg::Str(s)) = args.get(0) {
            let name = String::from_utf8_lossy(s).into_owned();
            let level = crate::modules::xlog::level_from_name(&name)
                .ok_or_else(|| format!("unknown log level \"{name}\""))?;
            args.0[0] = Arg::Int(level);
        }
    }
    Ok(())
}

/// `log([level,] text)`: 1.
fn log(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (level, text_at) = match args.len() {
        2 => (args.int(ctx, 0).unwrap_or(LOG_DEFAULT_LEVEL), 1),
        _ => (LOG_DEFAULT_LEVEL, 0),
    };
    if level <= i64::from(ctx.state.debug_level(ctx.env.debug)) {
        crate::modules::xlog::emit(level, &args.str(ctx, text_at));
    }
    1
}

/// `error(class, type)`: Kamailio only logs that it is not implemented; 1.
fn error(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    log::info!(
        "error(\"{}\", \"{}\") is not implemented",
        String::from_utf8_lossy(&args.str(ctx, 0)),
        String::from_utf8_lossy(&args.str(ctx, 1))
    );
    1
}

/// `remove_branch(i)`: removes branch `i` of the destination set (`append_branch`,
/// `lookup`); 1, or -1 when there is no such branch.
fn remove_branch(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match args.int(ctx, 0).and_then(|i| usize::try_from(i).ok()) {
        Some(i) if i < ctx.branches.len() => {
            ctx.branches.remove(i);
            1
        }
        _ => -1,
    }
}

/// `clear_branches()`: empties the destination set; 1.
fn clear_branches(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.branches.clear();
    1
}

const ANY: RouteMask = RouteMask::ANY;
const FWD: RouteMask = RouteMask::REQUEST
    .or(RouteMask::FAILURE)
    .or(RouteMask::BRANCH)
    .or(RouteMask::REPLY)
    .or(RouteMask::ONREPLY);
const REQ_LIKE: RouteMask = RouteMask::REQUEST
    .or(RouteMask::FAILURE)
    .or(RouteMask::BRANCH);

macro_rules! f {
    ($name:expr, $min:expr, $max:expr, $routes:expr, $fixup:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $min,
            max_args: $max,
            routes: $routes,
            fixup: $fixup,
            call: $call,
        }
    };
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "core",
    aliases: &[],
    functions: &[
        f!("forward", 0, 2, FWD, Some(fixup_port), forward_any),
        f!("forward_udp", 0, 2, FWD, Some(fixup_port), forward_udp),
        f!("forward_tcp", 0, 2, FWD, Some(fixup_port), forward_tcp),
        f!("forward_tls", 0, 2, FWD, Some(fixup_port), forward_tls),
        f!("setflag", 1, 1, ANY, Some(fixup_flag), setflag),
        f!("resetflag", 1, 1, ANY, Some(fixup_flag), resetflag),
        f!("isflagset", 1, 1, ANY, Some(fixup_flag), isflagset),
        f!("rewriteuri", 1, 1, REQ_LIKE, None, seturi),
        f!("seturi", 1, 1, REQ_LIKE, None, seturi),
        f!("revert_uri", 0, 0, REQ_LIKE, None, revert_uri),
        f!("strip", 1, 1, REQ_LIKE, Some(fixup_count), ruri::strip),
        f!(
            "strip_tail",
            1,
            1,
            REQ_LIKE,
            Some(fixup_count),
            ruri::strip_tail
        ),
        f!("prefix", 1, 1, REQ_LIKE, None, ruri::prefix),
        f!("rewriteuser", 1, 1, REQ_LIKE, None, ruri::rewriteuser),
        f!("setuser", 1, 1, REQ_LIKE, None, ruri::rewriteuser),
        f!(
            "rewriteuserpass",
            1,
            1,
            REQ_LIKE,
            None,
            ruri::rewriteuserpass
        ),
        f!("setuserpass", 1, 1, REQ_LIKE, None, ruri::rewriteuserpass),
        f!("rewritehost", 1, 1, REQ_LIKE, None, ruri::rewritehost),
        f!("sethost", 1, 1, REQ_LIKE, None, ruri::rewritehost),
        f!(
            "rewritehostport",
            1,
            1,
            REQ_LIKE,
            None,
            ruri::rewritehostport
        ),
        f!("sethostport", 1, 1, REQ_LIKE, None, ruri::rewritehostport),
        f!(
            "rewritehostporttrans",
            1,
            1,
            REQ_LIKE,
            None,
            ruri::rewritehostporttrans
        ),
        f!(
            "sethostporttrans",
            1,
            1,
            REQ_LIKE,
            None,
            ruri::rewritehostporttrans
        ),
        f!("rewriteport", 1, 1, REQ_LIKE, None, ruri::rewriteport),
        f!("setport", 1, 1, REQ_LIKE, None, ruri::rewriteport),
        f!("userphone", 0, 0, REQ_LIKE, None, ruri::userphone),
        f!("force_rport", 0, 0, ANY, None, send::force_rport),
        f!("add_rport", 0, 0, ANY, None, send::force_rport),
        f!("add_local_rport", 0, 0, ANY, None, send::add_local_rport),
        f!(
            "set_advertised_address",
            1,
            1,
            ANY,
            None,
            send::set_advertised_address
        ),
        f!(
            "set_advertised_port",
            1,
            1,
            ANY,
            None,
            send::set_advertised_port
        ),
        f!(
            "set_forward_no_connect",
            0,
            0,
            ANY,
            None,
            send::set_forward_no_connect
        ),
        f!(
            "set_reply_no_connect",
            0,
            0,
            ANY,
            None,
            send::set_reply_no_connect
        ),
        f!(
            "set_forward_close",
            0,
            0,
            ANY,
            None,
            send::set_forward_close
        ),
        f!("set_reply_close", 0, 0, ANY, None, send::set_reply_close),
        f!(
            "force_send_socket",
            1,
            1,
            ANY,
            Some(send::fixup_socket),
            send::force_send_socket
        ),
        f!("log", 1, 2, ANY, Some(fixup_log), log),
        f!("error", 2, 2, ANY, None, error),
        f!("remove_branch", 1, 1, ANY, Some(fixup_count), remove_branch),
        f!("clear_branches", 0, 0, ANY, None, clear_branches),
    ],
    params: &[],
    always: true,
};
