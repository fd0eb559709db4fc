//! The dialog module's script functions. Return codes as Kamailio's: 1
//! true / done, -1 false or failed.

use super::{create, dialogs, in_dialog, lookup_request, match_request, msg_state, DlgId};
use crate::modules::dialog::DlgParams;
use crate::script::ctx::MsgCtx;
use crate::script::ir::FormatPart;
use crate::script::registry::{fixup_int, Arg, Args, ModParams, RouteType};
use crate::script::value::Value;

/// A profile argument after fixup.
#[derive(Debug)]
pub(super) struct ProfileArg {
    index: usize,
    with_value: bool,
}

/// `dlg_manage()`: an initial INVITE gets its dialog (with the `did`
/// Record-Route parameter); an in-dialog request is matched to its dialog
/// and moves it on (ACK, BYE). 1, or -1 when there is nothing to do.
pub(super) fn dlg_manage(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let has_totag = matches!(ctx.msg.to_tag(), Some(Some(t)) if !t.is_empty());
    if has_totag {
        in_dialog(ctx);
        return if current(ctx).is_some() { 1 } else { -1 };
    }
    if create(ctx).is_some() {
        1
    } else {
        -1
    }
}

/// The dialog of the message in `ctx`: the one made or matched for it, else
/// (a reply, or a failure/branch route of the INVITE) the one its Call-ID,
/// From-tag and CSeq name, else an in-dialog request's by its Route and tags.
pub fn current(ctx: &MsgCtx<'_>) -> Option<DlgId> {
    if let Some(id) = ctx.dlg.as_ref().and_then(|m| m.current) {
        return Some(id);
    }
    let d = dialogs(ctx.env)?;
    let msg = ctx.msg;
    let ids = super::ids(msg)?;
    let initial = ids.cseq_method == b"INVITE" && (!msg.is_request() || ids.to_tag.is_empty());
    match ctx.route_type {
        _ if initial => d.match_answer(ids.callid, ids.from_tag, ids.cseq),
        RouteType::Request if !ids.to_tag.is_empty() => lookup_request(ctx, d).map(|(id, _)| id),
        _ => None,
    }
}

/// Profile name (constant, declared), optional value, checked at start-up.
pub(super) fn fixup_profile(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    let params = DlgParams::from_modparams(mp)?;
    let name = match args.get(0) {
        Some(Arg::Str(s)) => String::from_utf8_lossy(s).trim().to_string(),
        _ => return Err("the profile name must be a constant string".into()),
    };
    let index = params
        .profile(&name)
        .ok_or_else(|| format!("no dialog profile \"{name}\" (declare it with profiles_with_value or profiles_no_value)"))?;
    let with_value = params.profiles[index].with_value;
    if !with_value && args.len() > 1 {
        return Err(format!("dialog profile \"{name}\" has no value"));
    }
    args.0[0] = Arg::Custom(Box::new(ProfileArg { index, with_value }));
    Ok(())
}

/// `get_profile_size(profile, [value,] $var)`: the last argument is written.
pub(super) fn fixup_profile_size(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    let last = args.len() - 1;
    // "$var(n)" in quotes is a format of one variable: that variable.
    if let Some(Arg::Fmt(f)) = args.get(last) {
        if let [FormatPart::Pv(pv)] = f.parts.as_slice() {
            args.0[last] = Arg::Pv(pv.clone());
        }
    }
    match args.get(last) {
        Some(Arg::Pv(pv)) if pv.is_writable() => {}
        _ => return Err(format!("argument {} must be a writable variable", last + 1)),
    }
    let out = args.0.pop();
    let r = fixup_profile(args, mp);
    args.0.extend(out);
    r
}

/// The profile and value of a call; `None` value when not given.
fn profile_args(ctx: &MsgCtx<'_>, args: &Args, n: usize) -> Option<(usize, bool, Option<Vec<u8>>)> {
    let p = args.custom::<ProfileArg>(0)?;
    let value = (n > 1).then(|| args.str(ctx, 1).into_owned());
    Some((p.index, p.with_value, value))
}

/// `set_dlg_profile(profile[, value])`: before the dialog exists (flag
/// mode, before `t_relay`), the request keeps it and the dialog gets it
/// when made. A profile with values needs one. 1 or -1.
pub(super) fn set_dlg_profile(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some((p, with_value, value)) = profile_args(ctx, args, args.len()) else {
        return -1;
    };
    if with_value && value.is_none() {
        log::warn!("set_dlg_profile: a profile with values needs a value");
        return -1;
    }
    let Some(d) = dialogs(ctx.env) else {
        return -1;
    };
    match current(ctx) {
        Some(id) if d.set_profile(id, p, value.as_deref()) => 1,
        Some(_) => -1,
        // Only an initial request can still make a dialog.
        None if ctx.route_type == RouteType::Request && ctx.msg.to_tag() == Some(None) => {
            let m = msg_state(ctx);
            let v = value.map(Vec::into_boxed_slice);
            if !m.pending.iter().any(|(q, w)| *q == p && *w == v) {
                m.pending.push((p, v));
            }
            1
        }
        None => -1,
    }
}

/// `unset_dlg_profile(profile[, value])`: 1 when the dialog was in it.
pub(super) fn unset_dlg_profile(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some((p, _, value)) = profile_args(ctx, args, args.len()) else {
        return -1;
    };
    let (Some(d), Some(id)) = (dialogs(ctx.env), current(ctx)) else {
        // Still pending: taken off the list.
        if let Some(m) = ctx.dlg.as_deref_mut() {
            let before = m.pending.len();
            m.pending.retain(|(q, v)| {
                !(*q == p && (value.is_none() || v.as_deref() == value.as_deref()))
            });
            if m.pending.len() < before {
                return 1;
            }
        }
        return -1;
    };
    if d.unset_profile(id, p, value.as_deref()) {
        1
    } else {
        -1
    }
}

/// `is_in_profile(profile[, value])`.
pub(super) fn is_in_profile(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some((p, _, value)) = profile_args(ctx, args, args.len()) else {
        return -1;
    };
    let (Some(d), Some(id)) = (dialogs(ctx.env), current(ctx)) else {
        return -1;
    };
    if d.in_profile(id, p, value.as_deref()) {
        1
    } else {
        -1
    }
}

/// `get_profile_size(profile, [value,] $var)`: how many dialogs are in the
/// profile (with that value), written to the variable. 1, or -1 when the
/// variable refuses it.
pub(super) fn get_profile_size(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let n = args.len();
    let Some((p, _, value)) = profile_args(ctx, args, n - 1) else {
        return -1;
    };
    let Some(d) = dialogs(ctx.env) else {
        return -1;
    };
    let size = d.profile_size(p, value.as_deref());
    let Some(Arg::Pv(pv)) = args.get(n - 1) else {
        return -1;
    };
    match ctx.write_pv(pv, Value::Int(size as i64)) {
        Ok(()) => 1,
        Err(e) => {
            log::warn!("get_profile_size: {e}");
            -1
        }
    }
}

/// `is_known_dlg()`: 1 when the message belongs to a known dialog.
pub(super) fn is_known_dlg(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    if ctx.route_type == RouteType::Request && ctx.dlg.as_ref().is_none_or(|m| !m.matched) {
        match_request(ctx);
    }
    if current(ctx).is_some() {
        1
    } else {
        -1
    }
}

/// Dialog flags are 0..31, checked once.
pub(super) fn fixup_dlg_flag(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)?;
    match args.get(0) {
        Some(Arg::Int(f)) if !(0..=31).contains(f) => {
            Err(format!("dialog flag {f} is out of 0..31"))
        }
        _ => Ok(()),
    }
}

fn flag_bit(ctx: &MsgCtx<'_>, args: &Args) -> Option<u32> {
    let f = args.int(ctx, 0)?;
    (0..=31).contains(&f).then(|| 1u32 << f)
}

/// `dlg_setflag(f)` / `dlg_resetflag(f)`: on the dialog, or kept for the
/// dialog this request is about to make.
fn change_flag(ctx: &mut MsgCtx<'_>, args: &Args, set: bool) -> i32 {
    let Some(bit) = flag_bit(ctx, args) else {
        return -1;
    };
    let apply = |flags: &mut u32| {
        if set {
            *flags |= bit
        } else {
            *flags &= !bit
        }
    };
    match (dialogs(ctx.env), current(ctx)) {
        (Some(d), Some(id)) => d.with(id, |dlg| apply(&mut dlg.flags)).map_or(-1, |_| 1),
        (Some(_), None) if ctx.route_type == RouteType::Request => {
            apply(&mut msg_state(ctx).flags);
            1
        }
        _ => -1,
    }
}

pub(super) fn dlg_setflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    change_flag(ctx, args, true)
}

pub(super) fn dlg_resetflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    change_flag(ctx, args, false)
}

/// `dlg_isflagset(f)`: 1 when the flag is set on the dialog (or, before
/// the dialog exists, among the flags kept for it).
pub(super) fn dlg_isflagset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(bit) = flag_bit(ctx, args) else {
        return -1;
    };
    let flags = match (dialogs(ctx.env), current(ctx)) {
        (Some(d), Some(id)) => d.with(id, |dlg| dlg.flags),
        _ => ctx.dlg.as_ref().map(|m| m.flags),
    };
    if flags.is_some_and(|f| f & bit != 0) {
        1
    } else {
        -1
    }
}

/// `dlg_set_timeout(t[, h_entry, h_id])`: the lifetime of this message's
/// dialog (or of the one named), in seconds; before the dialog exists it is
/// kept for it. 1 or -1.
pub(super) fn dlg_set_timeout(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(t) = args
        .int(ctx, 0)
        .and_then(|t| u32::try_from(t).ok())
        .filter(|&t| t > 0)
    else {
        return -1;
    };
    let Some(d) = dialogs(ctx.env) else {
        return -1;
    };
    let named = match (args.len(), args.int(ctx, 1), args.int(ctx, 2)) {
        (3, Some(e), Some(i)) => match (u32::try_from(e), u32::try_from(i)) {
            (Ok(entry), Ok(id)) => Some(DlgId { entry, id }),
            _ => return -1,
        },
        (1, _, _) => None,
        _ => return -1,
    };
    let now = ctx.unix_ms();
    match named.or_else(|| current(ctx)) {
        Some(id) if d.set_timeout(id, t, now) => 1,
        Some(_) => -1,
        None if ctx.route_type == RouteType::Request => {
            msg_state(ctx).timeout = Some(t);
            1
        }
        None => -1,
    }
}

/// `dlg_get(callid, ftag, ttag)`: makes the dialog with these identifiers
/// (either way round) this message's dialog, and sets `$dlg_ctx(dir)`. 1,
/// or -1 when there is none.
pub(super) fn dlg_get(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (callid, ftag, ttag) = (
        args.str(ctx, 0).into_owned(),
        args.str(ctx, 1).into_owned(),
        args.str(ctx, 2).into_owned(),
    );
    if callid.is_empty() || ftag.is_empty() || ttag.is_empty() {
        return -1;
    }
    let Some((id, dir)) = dialogs(ctx.env).and_then(|d| d.match_tags(&callid, &ftag, &ttag)) else {
        return -1;
    };
    let m = msg_state(ctx);
    m.current = Some(id);
    m.ctx_dir = Some(dir);
    1
}
