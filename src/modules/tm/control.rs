//! Script functions that act on an existing transaction (Kamailio tm and
//! tmx): `t_relay_cancel`, `t_cancel_branches`, `t_retransmit_reply`,
//! `t_flush_flags`, `t_reply_callid`, `t_cancel_callid`.

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
        &bytes::Bytes::new(),
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

/// The INVITE transaction named by arguments 0 (Call-ID) and 1 (CSeq number).
fn by_callid(ctx: &mut MsgCtx<'_>, args: &Args) -> Option<crate::tm::Tid> {
    let callid = args.str(ctx, 0).into_owned();
    let cseq = u32::try_from(args.int(ctx, 1)?).ok()?;
    ctx.core.tm.as_ref()?.find_invite(&callid, cseq)
}

/// tmx `t_reply_callid(callid, cseq, code, reason)`: replies on the INVITE
/// transaction with this Call-ID and CSeq number. 1, or -1 when there is
/// none or it was answered already.
pub(super) fn t_reply_callid(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let code = match args.int(ctx, 2) {
        Some(c) if (100..=699).contains(&c) => c as u16,
        _ => return -1,
    };
    let reason = args.str(ctx, 3).into_owned();
    let Some(tid) = by_callid(ctx, args) else {
        return -1;
    };
    let spec = crate::tm::LocalReply {
        code,
        reason: &reason,
        headers: b"",
        body: None,
    };
    let now = ctx.now;
    let out = &mut *ctx.out;
    let sent = ctx
        .core
        .tm
        .as_mut()
        .is_some_and(|t| t.reply(tid, &spec, now, out).is_ok());
    if sent {
        1
    } else {
        -1
    }
}

/// tmx `t_cancel_callid(callid, cseq, flag[, rcode])`: CANCELs the pending
/// branches of the INVITE transaction with this Call-ID and CSeq number,
/// after setting message flag `flag` on it when above 0; `rcode` becomes
/// the cause of a `Reason` header in the CANCELs. 1, or -1 when there is
/// no such transaction.
pub(super) fn t_cancel_callid(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(flag) = args.int(ctx, 2) else {
        return -1;
    };
    let reason = match args.len() > 3 {
        true => match args.int(ctx, 3) {
            Some(code) if code > 0 => {
                bytes::Bytes::from(format!("Reason: SIP;cause={code}\r\n").into_bytes())
            }
            _ => return -1,
        },
        false => bytes::Bytes::new(),
    };
    let Some(tid) = by_callid(ctx, args) else {
        return -1;
    };
    if (1..64).contains(&flag) {
        if let Some(d) = table(ctx).user_mut(tid) {
            d.flags |= 1 << flag;
        }
    }
    let now = ctx.now;
    let out = &mut *ctx.out;
    if let Some(t) = ctx.core.tm.as_mut() {
        t.cancel_some_branches(tid, |_| true, &reason, now, out);
    }
    1
}
