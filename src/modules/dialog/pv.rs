//! `$dlg(attr)` (read-only attributes of the message's dialog),
//! `$dlg_var(name)` (values that live with the dialog) and
//! `$dlg_ctx(attr)` (what this message asks of the dialog it makes), and
//! the older `$DLG_count`, `$DLG_lifetime`, `$DLG_status`.

use bytes::Bytes;

use super::functions::current;
use super::{dialogs, msg_state, Direction};
use crate::script::ctx::MsgCtx;
use crate::script::value::Value;

/// A dialog pseudo-variable, resolved at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DlgPv {
    Attr(DlgAttr),
    Var(Bytes),
    Ctx(CtxAttr),
    /// `$DLG_count`: dialogs answered 2xx and not ended (states 3 and 4),
    /// Kamailio's `active` count.
    Count,
    /// `$DLG_lifetime` / `$DLG_status`: seconds since the dialog started
    /// and its state, as an in-dialog request (`loose_route()` or
    /// `dlg_manage()`) left them; `$null` for any other message (Kamailio
    /// 5.6, checked live: ACK 0 and 4, BYE 2 s later 2 and 5).
    RouteLifetime,
    RouteStatus,
}

/// `$dlg(...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DlgAttr {
    HId,
    HEntry,
    State,
    CallId,
    FromUri,
    ToUri,
    FromTag,
    ToTag,
    StartTs,
    InitTs,
    Lifetime,
    Flags,
}

/// `$dlg_ctx(...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxAttr {
    On,
    Flags,
    TimeoutRoute,
    TimeoutBye,
    TimeoutInt,
    Set,
    Dir,
}

/// Resolves `$dlg(name)`, `$dlg_var(name)` and `$dlg_ctx(name)`.
pub fn resolve(class: &str, inner: &str) -> Result<DlgPv, String> {
    let inner = inner.trim();
    Ok(match class {
        "DLG_count" | "DLG_lifetime" | "DLG_status" if !inner.is_empty() => {
            return Err(format!("${class} takes no name in parentheses"))
        }
        "DLG_count" => DlgPv::Count,
        "DLG_lifetime" => DlgPv::RouteLifetime,
        "DLG_status" => DlgPv::RouteStatus,
        "dlg" => DlgPv::Attr(match inner {
            "h_id" => DlgAttr::HId,
            "h_entry" => DlgAttr::HEntry,
            "state" => DlgAttr::State,
            "callid" => DlgAttr::CallId,
            "from_uri" => DlgAttr::FromUri,
            "to_uri" => DlgAttr::ToUri,
            "from_tag" => DlgAttr::FromTag,
            "to_tag" => DlgAttr::ToTag,
            "start_ts" => DlgAttr::StartTs,
            "init_ts" => DlgAttr::InitTs,
            // Kamailio's reference count of its shared-memory cell: ringsip
            // looks dialogs up by id and holds no references to count.
            "ref" => {
                return Err(
                    "$dlg(ref) is not available in ringsip (dialogs hold no reference count)"
                        .into(),
                )
            }
            "lifetime" => DlgAttr::Lifetime,
            "sflags" | "flags" => DlgAttr::Flags,
            other => return Err(format!("unknown $dlg({other})")),
        }),
        "dlg_var" => {
            if inner.is_empty() {
                return Err("$dlg_var needs a name in parentheses".into());
            }
            DlgPv::Var(Bytes::copy_from_slice(inner.as_bytes()))
        }
        "dlg_ctx" => DlgPv::Ctx(match inner {
            "on" => CtxAttr::On,
            "flags" => CtxAttr::Flags,
            "timeout_route" => CtxAttr::TimeoutRoute,
            "timeout_bye" => CtxAttr::TimeoutBye,
            "timeout_int" => CtxAttr::TimeoutInt,
            "set" => CtxAttr::Set,
            "dir" => CtxAttr::Dir,
            other => return Err(format!("unknown $dlg_ctx({other})")),
        }),
        other => return Err(format!("unknown pseudo-variable ${other}")),
    })
}

impl DlgPv {
    /// Whether the script may assign to it.
    pub fn is_writable(&self) -> bool {
        match self {
            DlgPv::Attr(_) | DlgPv::Count | DlgPv::RouteLifetime | DlgPv::RouteStatus => false,
            DlgPv::Var(_) => true,
            DlgPv::Ctx(c) => !matches!(c, CtxAttr::Set | CtxAttr::Dir),
        }
    }
}

/// Reads one for the message in `ctx`; `$null` where there is no dialog.
pub fn read(ctx: &MsgCtx<'_>, pv: &DlgPv) -> Value<'static> {
    let int = |n: i64| Value::Int(n);
    let bytes = |b: &[u8]| Value::owned(b.to_vec());
    match pv {
        DlgPv::Count => dialogs(ctx.env).map_or(int(0), |d| {
            let n = d.state_counts();
            int((n[2] + n[3]) as i64)
        }),
        DlgPv::RouteLifetime | DlgPv::RouteStatus => {
            match ctx.dlg.as_deref().and_then(|m| m.routed) {
                Some((lifetime, _)) if *pv == DlgPv::RouteLifetime => int(lifetime),
                Some((_, state)) => int(state),
                None => Value::Null,
            }
        }
        DlgPv::Ctx(c) => {
            let m = ctx.dlg.as_deref();
            match c {
                CtxAttr::On => int(m.map_or(0, |m| m.on)),
                CtxAttr::Flags => int(m.map_or(0, |m| i64::from(m.flags))),
                CtxAttr::TimeoutRoute => m
                    .and_then(|m| m.timeout_route.as_deref())
                    .map_or(Value::Null, bytes),
                CtxAttr::TimeoutBye => int(i64::from(m.is_some_and(|m| m.timeout_bye))),
                CtxAttr::TimeoutInt => int(m.and_then(|m| m.timeout).map_or(0, i64::from)),
                CtxAttr::Set => int(i64::from(current(ctx).is_some())),
                CtxAttr::Dir => int(match m.and_then(|m| m.ctx_dir) {
                    Some(Direction::Downstream) => 1,
                    Some(Direction::Upstream) => 2,
                    None => 0,
                }),
            }
        }
        DlgPv::Attr(a) => {
            let Some(dlg) = dialogs(ctx.env)
                .zip(current(ctx))
                .and_then(|(d, id)| d.get(id))
            else {
                return Value::Null;
            };
            match a {
                DlgAttr::HId => int(i64::from(dlg.id.id)),
                DlgAttr::HEntry => int(i64::from(dlg.id.entry)),
                DlgAttr::State => int(dlg.state as i64),
                DlgAttr::CallId => bytes(&dlg.callid),
                DlgAttr::FromUri => bytes(&dlg.from_uri),
                DlgAttr::ToUri => bytes(&dlg.to_uri),
                DlgAttr::FromTag => bytes(&dlg.from_tag),
                DlgAttr::ToTag => bytes(&dlg.to_tag),
                DlgAttr::StartTs => int(dlg.start_ts as i64),
                DlgAttr::InitTs => int(dlg.init_ts as i64),
                DlgAttr::Lifetime => int(i64::from(dlg.timeout)),
                DlgAttr::Flags => int(i64::from(dlg.flags)),
            }
        }
        DlgPv::Var(name) => {
            let (Some(d), Some(id)) = (dialogs(ctx.env), current(ctx)) else {
                // Set before the dialog exists: kept with the message.
                return ctx
                    .dlg
                    .as_deref()
                    .and_then(|m| m.pending_vars.iter().find(|(k, _)| **k == **name))
                    .map_or(Value::Null, |(_, v)| bytes(v));
            };
            d.with(id, |dlg| {
                dlg.vars
                    .iter()
                    .find(|(k, _)| **k == **name)
                    .map(|(_, v)| v.to_vec())
            })
            .flatten()
            .map_or(Value::Null, Value::owned)
        }
    }
}

/// Writes one for the message in `ctx`; `$null` deletes a `$dlg_var`.
pub fn write(ctx: &mut MsgCtx<'_>, pv: &DlgPv, value: Value<'_>) -> Result<(), &'static str> {
    match pv {
        DlgPv::Attr(_) => Err("$dlg is read-only"),
        DlgPv::Count | DlgPv::RouteLifetime | DlgPv::RouteStatus => Err("read-only"),
        DlgPv::Var(name) => {
            let new = (!value.is_null()).then(|| value.to_bytes().into_owned().into_boxed_slice());
            let (Some(d), Some(id)) = (dialogs(ctx.env), current(ctx)) else {
                // An initial request may still make its dialog (dlg_flag at
                // t_relay): the value waits with the message.
                if ctx.route_type != crate::script::registry::RouteType::Request
                    || ctx.msg.to_tag() != Some(None)
                {
                    return Err("$dlg_var: this message has no dialog");
                }
                let vars = &mut msg_state(ctx).pending_vars;
                let at = vars.iter().position(|(k, _)| **k == **name);
                match (at, new) {
                    (Some(i), Some(v)) => vars[i].1 = v,
                    (Some(i), None) => {
                        vars.remove(i);
                    }
                    (None, Some(v)) => vars.push((name.to_vec().into_boxed_slice(), v)),
                    (None, None) => {}
                }
                return Ok(());
            };
            d.with(id, |dlg| {
                let at = dlg.vars.iter().position(|(k, _)| **k == **name);
                match (at, new) {
                    (Some(i), Some(v)) => dlg.vars[i].1 = v,
                    (Some(i), None) => {
                        dlg.vars.remove(i);
                    }
                    (None, Some(v)) => dlg.vars.push((name.to_vec().into_boxed_slice(), v)),
                    (None, None) => {}
                }
            })
            .ok_or("$dlg_var: the dialog is gone")
        }
        DlgPv::Ctx(c) => {
            let n = value.to_int();
            let m = msg_state(ctx);
            match c {
                CtxAttr::On => m.on = n,
                CtxAttr::Flags => m.flags = n as u32,
                CtxAttr::TimeoutBye => m.timeout_bye = n != 0,
                CtxAttr::TimeoutInt => m.timeout = u32::try_from(n).ok().filter(|&t| t > 0),
                CtxAttr::TimeoutRoute => {
                    m.timeout_route =
                        (!value.is_null()).then(|| Bytes::from(value.to_bytes().into_owned()))
                }
                CtxAttr::Set | CtxAttr::Dir => return Err("$dlg_ctx(set|dir) is read-only"),
            }
            // On a dialog that exists already, the setting goes to it too.
            if let (Some(d), Some(id)) = (dialogs(ctx.env), current(ctx)) {
                let now = ctx.unix_ms();
                match c {
                    CtxAttr::TimeoutInt => {
                        if let Some(t) = u32::try_from(n).ok().filter(|&t| t > 0) {
                            d.set_timeout(id, t, now);
                        }
                    }
                    CtxAttr::TimeoutBye => {
                        d.with(id, |dlg| dlg.timeout_bye = n != 0);
                    }
                    CtxAttr::TimeoutRoute => {
                        let name = msg_state(ctx).timeout_route.as_deref().map(Box::from);
                        d.with(id, |dlg| dlg.timeout_route = name);
                    }
                    _ => {}
                }
            }
            Ok(())
        }
    }
}
