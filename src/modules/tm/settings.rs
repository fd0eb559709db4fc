//! Per-transaction settings (Kamailio tm's `t_set_*` / `t_reset_*`): on the
//! request's transaction when it exists, else kept in the message state and
//! given to the transaction `t_relay()` / `t_newtran()` makes next.

use std::time::Duration;

use crate::script::ctx::MsgCtx;
use crate::script::registry::Args;
use crate::tm::{Setting, Tuning};

/// Applies `tuning` to the current transaction, or keeps it for the next one.
fn tune(ctx: &mut MsgCtx<'_>, tuning: Tuning) -> i32 {
    let Some(tid) = ctx.t.tid else {
        ctx.t.tuning = ctx.t.tuning.then(tuning);
        return 1;
    };
    let now = ctx.now;
    let out = &mut *ctx.out;
    let done = ctx
        .core
        .tm
        .as_mut()
        .is_some_and(|t| t.tune(tid, &tuning, now, out));
    if done {
        1
    } else {
        -1
    }
}

/// Argument `i` as a switch (0 off, anything else on).
fn switch(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> Option<bool> {
    args.int(ctx, i).map(|v| v != 0)
}

/// Argument `i` as milliseconds; 0 keeps the current value, negative is an error.
fn millis(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> Option<Setting<Duration>> {
    match args.int(ctx, i)? {
        0 => Some(Setting::Keep),
        ms if ms > 0 => Some(Setting::Set(Duration::from_millis(ms as u64))),
        _ => None,
    }
}

/// `t_set_auto_inv_100(0|1)`: whether the INVITE transaction made next
/// answers 100 Trying at once (overrides `auto_inv_100`).
pub(super) fn t_set_auto_inv_100(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(on) = switch(ctx, args, 0) else {
        return -1;
    };
    tune(
        ctx,
        Tuning {
            auto_inv_100: Setting::Set(on),
            ..Tuning::default()
        },
    )
}

/// `t_set_disable_6xx(0|1)`: 1 treats a 6xx like any other final reply
/// (overrides `disable_6xx_block`).
pub(super) fn t_set_disable_6xx(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(on) = switch(ctx, args, 0) else {
        return -1;
    };
    tune(
        ctx,
        Tuning {
            disable_6xx_block: Setting::Set(on),
            ..Tuning::default()
        },
    )
}

/// `t_set_no_e2e_cancel_reason(0|1)`: 1 stops copying the Reason headers of
/// a received CANCEL into the CANCELs sent downstream.
pub(super) fn t_set_no_e2e_cancel_reason(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(on) = switch(ctx, args, 0) else {
        return -1;
    };
    tune(
        ctx,
        Tuning {
            e2e_cancel_reason: Setting::Set(!on),
            ..Tuning::default()
        },
    )
}

/// `t_set_disable_failover(0|1)`: Kamailio turns DNS failover (trying the
/// next SRV/A address of a destination after a 503 or a timeout) off for
/// the branches `t_relay` adds from this message.
pub(super) fn t_set_disable_failover(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match switch(ctx, args, 0) {
        Some(off) => {
            ctx.t.no_dns_failover = off;
            1
        }
        None => -1,
    }
}

/// `t_set_retr(t1, t2)` (ms; 0 keeps a value): this transaction's
/// retransmission intervals; running branches use them from their next
/// retransmission on.
pub(super) fn t_set_retr(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (Some(t1), Some(t2)) = (millis(ctx, args, 0), millis(ctx, args, 1)) else {
        return -1;
    };
    tune(
        ctx,
        Tuning {
            t1,
            t2,
            ..Tuning::default()
        },
    )
}

/// `t_reset_retr()`: back to `retr_timer1` / `retr_timer2`.
pub(super) fn t_reset_retr(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    tune(
        ctx,
        Tuning {
            t1: Setting::Reset,
            t2: Setting::Reset,
            ..Tuning::default()
        },
    )
}

/// `t_set_max_lifetime(inv, noninv)` (ms; 0 keeps a value): this
/// transaction's max lifetime (of an existing one: counted from now).
pub(super) fn t_set_max_lifetime(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (Some(inv), Some(noninv)) = (millis(ctx, args, 0), millis(ctx, args, 1)) else {
        return -1;
    };
    tune(
        ctx,
        Tuning {
            max_inv_lifetime: inv,
            max_noninv_lifetime: noninv,
            ..Tuning::default()
        },
    )
}

/// `t_reset_max_lifetime()`: back to `max_inv_lifetime` / `max_noninv_lifetime`.
pub(super) fn t_reset_max_lifetime(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    tune(
        ctx,
        Tuning {
            max_inv_lifetime: Setting::Reset,
            max_noninv_lifetime: Setting::Reset,
            ..Tuning::default()
        },
    )
}
