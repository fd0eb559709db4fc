//! `via_add_srvid(flags)` and `via_add_xavp_params(flags)`: with 1, the Via
//! ringsip adds to this message carries `;srvid=` (the `server_id` core
//! parameter) or the fields of the `xavp_via_params` XAVP as parameters; 0
//! turns it off again. Written when the request is sent (core forward).

use crate::script::ctx::MsgCtx;
use crate::script::registry::Args;

fn flag(ctx: &MsgCtx<'_>, args: &Args) -> Option<bool> {
    args.int(ctx, 0).map(|f| f & 1 == 1)
}

pub fn via_add_srvid(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match flag(ctx, args) {
        Some(on) => {
            ctx.state.via_srvid = on;
            1
        }
        None => -1,
    }
}

pub fn via_add_xavp_params(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match flag(ctx, args) {
        Some(on) => {
            ctx.state.via_xavp_params = on;
            1
        }
        None => -1,
    }
}
