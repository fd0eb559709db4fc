//! Core functions (always available): forwarding, message flags, R-URI and
//! destination URI handling (KAMAILIO-REFERENCE §1.6).

use bytes::Bytes;

use super::forward;
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

/// `forward()`, `forward(host)`, `forward(host, port)` and the transport-specific forms.
fn forward_with(ctx: &mut MsgCtx<'_>, args: &Args, proto: Option<Proto>) -> i32 {
    let host = (!args.is_empty()).then(|| args.str(ctx, 0).into_owned());
    let port = if args.len() > 1 {
        match args.int(ctx, 1) {
            Some(p) if (0..=65535).contains(&p) => Some(p as u16),
            _ => return -1,
        }
    } else {
        None
    };
    forward::request(ctx, host.as_deref(), port, proto)
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

fn fixup_port(args: &mut Args, _: &ModParams) -> Result<(), String> {
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

/// `setdsturi(u)`: sets `$du`.
fn setdsturi(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let uri = args.str(ctx, 0).into_owned();
    if uri.is_empty() {
        return -1;
    }
    ctx.dst_uri = Some(Bytes::from(uri));
    1
}

fn resetdsturi(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.dst_uri = None;
    1
}

fn isdsturiset(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    if ctx.dst_uri.is_some() {
        1
    } else {
        -1
    }
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
        f!("setdsturi", 1, 1, ANY, None, setdsturi),
        f!("resetdsturi", 0, 0, ANY, None, resetdsturi),
        f!("isdsturiset", 0, 0, ANY, None, isdsturiset),
    ],
    params: &[],
    always: true,
};
