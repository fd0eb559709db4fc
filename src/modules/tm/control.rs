//! Script functions that act on an existing transaction (Kamailio tm and
//! tmx): `t_relay_cancel`, `t_cancel_branches`, `t_retransmit_reply`,
//! `t_flush_flags`.

use super::{source, table};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{Arg, Args, ModParams};
use crate::tm::RequestMatch;

/// `t_relay_cancel()` (request_route, first thing for a CANCEL): when the
/// INVITE's transaction exists, cancels its branches (answering the CANCEL
/// 200) and returns 0, which ends the script; 1 when none matched (or the
/// request is no CANCEL), -1 on error.
pub(super) fn t_relay_cancel(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(RequestMatch::Cancel { invite }) = ctx.t.matched else {
        return 1;
    };
    let src = source(ctx);
    let (now, msg) = (ctx.now, ctx.msg);
    let out = &mut *ctx.out;
    let Some(table) = ctx.core.tm.as_mut() else {
        return 1;
    };
    match table.cancel(invite, msg, &src, now, out) {
        Ok(_) => 0,
        Err(e) => {
            log::debug!("t_relay_cancel: {e:?}");
            -1
        }
    }
}

/// Which branches `t_cancel_branches` cancels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    All,
    /// All but the one whose reply is being handled.
    Others,
    /// Only the one whose reply is being handled.
    This,
}

pub(super) fn fixup_cancel_branches(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let which = match args.get(0) {
        Some(Arg::Str(s)) => match s.as_ref() {
            b"all" => Which::All,
            b"others" => Which::Others,
            b"this" => Which::This,
            other => {
                return Err(format!(
                    "\"{}\" is not all, others or this",
                    String::from_utf8_lossy(other)
                ))
            }
        },
        _ => return Err("needs a constant: all, others or this".into()),
    };
    args.0[0] = Arg::Custom(Box::new(which));
    Ok(())
}

/// tmx `t_cancel_branches("all"|"others"|"this")` (onreply_route): CANCELs
/// the pending branches chosen. 1 when any was pending, else -1.
pub(super) fn t_cancel_branches(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (Some(tid), Some(which)) = (ctx.t.tid, args.custom::<Which>(0).copied()) else {
        return -1;
    };
    let this = ctx.t.branch_idx;
    let now = ctx.now;
    let out = &mut *ctx.out;
    let Some(table) = ctx.core.tm.as_mut() else {
        return -1;
    };
    let any = table.cancel_some_branches(
        tid,
        |b| match which {
            Which::All => true,
            Which::Others => u32::from(b) != this,
            Which::This => u32::from(b) == this,
        },
        now,
        out,
    );
    if any {
        1
    } else {
        -1
    }
}

/// `t_retransmit_reply()`: sends the transaction's last reply again.
pub(super) fn t_retransmit_reply(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(tid) = ctx.t.tid else { return -1 };
    let now = ctx.now;
    let out = &mut *ctx.out;
    let sent = ctx
        .core
        .tm
        .as_mut()
        .is_some_and(|t| t.retransmit_reply(tid, now, out));
    if sent {
        1
    } else {
        -1
    }
}

/// tmx `t_flush_flags()`: the message flags as they are now become the
/// transaction's (after `t_newtran()` they are not copied otherwise).
pub(super) fn t_flush_flags(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(tid) = ctx.t.tid else { return -1 };
    let flags = ctx.flags;
    match table(ctx).user_mut(tid) {
        Some(d) => {
            d.flags = flags;
            1
        }
        None => -1,
    }
}
