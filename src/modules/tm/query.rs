//! Questions the script asks about the transaction and the route it runs in
//! (Kamailio tm and tmx): `t_lookup_request`, `t_lookup_cancel`,
//! `t_get_status_code`, `t_grep_status`, `t_is_expired`, `t_is_*_route`.

use super::table;
use crate::script::ctx::MsgCtx;
use crate::script::registry::truth;
use crate::script::registry::{Args, RouteType};
use crate::tm::RequestMatch;

/// `t_lookup_request()`: whether the request belongs to a transaction. A
/// retransmission is answered before the script runs, so in request_route
/// this is the transaction `t_newtran()` made, or the INVITE of an ACK
/// that matched one.
pub(super) fn t_lookup_request(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let acked = matches!(
        ctx.t.matched,
        Some(RequestMatch::AckPassOn { tid: Some(_) })
    );
    truth(ctx.t.tid.is_some() || acked)
}

/// `t_lookup_cancel([1])`: for a CANCEL, whether its INVITE transaction
/// exists; with 1 the message flags become the INVITE's.
pub(super) fn t_lookup_cancel(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(RequestMatch::Cancel { invite }) = ctx.t.matched else {
        return -1;
    };
    let Some(flags) = table(ctx).user(invite).map(|d| d.flags) else {
        return -1;
    };
    if !args.is_empty() && args.int(ctx, 0) == Some(1) {
        ctx.flags = flags;
    }
    1
}

/// `t_get_status_code()`: the status of the transaction (the final reply
/// sent upstream, else the last provisional; in failure_route the winning
/// reply's code, as Kamailio 5.6 answers there), or -1 when there is no
/// transaction or no reply yet (0 would end the script).
pub(super) fn t_get_status_code(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(tid) = ctx.t.tid else { return -1 };
    if ctx.route_type == RouteType::Failure && ctx.t.reply_code > 0 {
        return i32::from(ctx.t.reply_code);
    }
    match table(ctx).status(tid) {
        Some(code) if code > 0 => i32::from(code),
        _ => -1,
    }
}

/// `t_grep_status("code")`: whether a branch got (or was given locally)
/// this reply. In failure_route the reply that completed the transaction
/// does not count: Kamailio 5.6 records it on its branch only after the
/// route (seen live: a 486 then a 404 greps 486, not 404).
pub(super) fn t_grep_status(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(code) = args.int(ctx, 0).and_then(|c| u16::try_from(c).ok()) else {
        return -1;
    };
    let Some(tid) = ctx.t.tid else { return -1 };
    let in_failure = ctx.route_type == RouteType::Failure;
    let t = table(ctx);
    let completing = t.last_final(tid).filter(|_| in_failure);
    let hit = (0..t.branch_count(tid))
        .filter_map(|b| u8::try_from(b).ok())
        .filter(|b| Some(*b) != completing)
        .any(|b| t.branch_code(tid, b) == Some(code));
    truth(hit)
}

/// `t_is_expired()`: whether the transaction's max lifetime has passed.
pub(super) fn t_is_expired(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(tid) = ctx.t.tid else { return -1 };
    truth(table(ctx).is_expired(tid))
}

/// tmx `t_is_failure_route()`.
pub(super) fn t_is_failure_route(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    truth(ctx.route_type == RouteType::Failure)
}

/// tmx `t_is_reply_route()`: a reply route, tm's `onreply_route[NAME]` or
/// the core one (both are Kamailio's ONREPLY_ROUTE).
pub(super) fn t_is_reply_route(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    truth(matches!(
        ctx.route_type,
        RouteType::OnReply | RouteType::Reply
    ))
}

/// tmx `t_is_request_route()`.
pub(super) fn t_is_request_route(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    truth(ctx.route_type == RouteType::Request)
}
