//! Message flags of corex: internal flags by name (`msg_iflag_set/reset/is_set`)
//! and the extended flags 0..63 (`setxflag`, `resetxflag`, `isxflagset`),
//! kept in `ctx.state` for the life of the message.

use crate::script::ctx::MsgCtx;
use crate::script::registry::{fixup_int, Arg, Args, ModParams, RouteType};

/// The internal flags a script may name (Kamailio's `FL_*` that corex exposes).
pub const IFLAGS: &[(&str, u32)] = &[("USE_UAC_FROM", 1), ("USE_UAC_TO", 2), ("UAC_AUTH", 4)];

/// The flag name is resolved at start-up (names are case-insensitive).
pub fn fixup_iflag(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let name = match args.get(0) {
        Some(Arg::Str(s)) => String::from_utf8_lossy(s).into_owned(),
        _ => return Err("the flag must be a constant name".into()),
    };
    let bit = IFLAGS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
        .map(|(_, b)| *b)
        .ok_or_else(|| {
            let known: Vec<_> = IFLAGS.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown message flag \"{name}\" (known: {})",
                known.join(", ")
            )
        })?;
    args.0[0] = Arg::Int(i64::from(bit));
    Ok(())
}

fn iflag(args: &Args) -> u32 {
    match args.get(0) {
        Some(Arg::Int(b)) => *b as u32,
        _ => 0,
    }
}

pub fn msg_iflag_set(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    ctx.state.iflags |= iflag(args);
    1
}

pub fn msg_iflag_reset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    ctx.state.iflags &= !iflag(args);
    1
}

pub fn msg_iflag_is_set(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let bit = iflag(args);
    if bit != 0 && ctx.state.iflags & bit == bit {
        1
    } else {
        -1
    }
}

/// An extended flag index: a number 0..63 (constant checked at start-up).
pub fn fixup_xflag(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)?;
    match args.get(0) {
        Some(Arg::Int(n)) if !(0..64).contains(n) => Err(format!("xflag {n} is not in 0..63")),
        _ => Ok(()),
    }
}

fn xbit(ctx: &MsgCtx<'_>, args: &Args) -> Option<u64> {
    match args.int(ctx, 0) {
        Some(n) if (0..64).contains(&n) => Some(1u64 << n),
        _ => None,
    }
}

pub fn setxflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match xbit(ctx, args) {
        Some(b) => {
            ctx.state.xflags |= b;
            1
        }
        None => -1,
    }
}

pub fn resetxflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match xbit(ctx, args) {
        Some(b) => {
            ctx.state.xflags &= !b;
            1
        }
        None => -1,
    }
}

pub fn isxflagset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match xbit(ctx, args) {
        Some(b) if ctx.state.xflags & b != 0 => 1,
        _ => -1,
    }
}

/// `is_faked_msg()`: true where the route runs on a stored copy of the
/// request rather than a received message (failure_route).
pub fn is_faked_msg(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    if ctx.route_type == RouteType::Failure {
        1
    } else {
        -1
    }
}
