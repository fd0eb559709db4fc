//! The script functions of remote registration, with Kamailio 5.6's return
//! codes (checked live):
//!
//! - `uac_reg_lookup(uuid, dst)`: the record whose `l_uuid` is `uuid`;
//!   `dst` gets `sip:l_username@l_domain`. 1, or -1.
//! - `uac_reg_lookup_uri(uri, dst)`: the record whose `l_username` is the
//!   URI's user (and `l_domain` its host with `reg_use_domain`); `dst`
//!   gets its `l_uuid`. 1, -1, or -2 for a bad URI.
//! - `uac_reg_status(uuid)`: 1 registered, -2 a REGISTER waits for its
//!   answer, -3 disabled, -99 otherwise, -1 no such record.
//! - `uac_reg_request_to(id, mode)`: `$ru` = `sip:r_username@r_domain`,
//!   `$du` = `auth_proxy`, and the `auth_*_avp`s; mode bit 0: `id` is an
//!   `l_username` (a URI with `reg_use_domain`, its host matching
//!   `l_domain`; else an `l_uuid`), bit 1: the password AVP gets
//!   `auth_ha1`. A mode above 3 is -1.
//! - `uac_reg_enable/disable(attr, value)`: clears/sets the disabled flag
//!   of the record found by `l_uuid`, `l_username`, `r_username` or
//!   `auth_username`; it is looked at again within a second. 1, -2 when
//!   there is no such record, -3 for another attribute.
//! - `uac_reg_refresh(l_uuid)`: the record read again from the database
//!   (its registration state starts over: not registered until the next
//!   round registers it). 1, or -1.

use bytes::Bytes;

use super::{Reg, Registrations, DISABLED, ONGOING, ONLINE};
use crate::script::ctx::MsgCtx;
use crate::script::ir::FormatPart;
use crate::script::registry::{Arg, Args, ModParams};
use crate::script::value::Value;

fn regs<'a>(ctx: &'a MsgCtx<'_>) -> Option<&'a Registrations> {
    let r = ctx.env.services.get::<Registrations>();
    if r.is_none() {
        log::error!("uac: remote registrations are not enabled (reg_db_url)");
    }
    r
}

/// The second argument must be a writable variable.
pub(crate) fn fixup_dst(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(Arg::Fmt(f)) = args.get(1) {
        if let [FormatPart::Pv(pv)] = f.parts.as_slice() {
            args.0[1] = Arg::Pv(pv.clone());
        }
    }
    match args.get(1) {
        Some(Arg::Pv(pv)) if pv.is_writable() => Ok(()),
        _ => Err("uac: the second argument must be a writable variable".into()),
    }
}

fn set_dst(ctx: &mut MsgCtx<'_>, args: &Args, value: String) -> i32 {
    let Some(Arg::Pv(pv)) = args.get(1) else {
        return -1;
    };
    match ctx.write_pv(pv, Value::owned(value.into_bytes())) {
        Ok(()) => 1,
        Err(e) => {
            log::error!("uac: {e}");
            -1
        }
    }
}

fn text(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> String {
    String::from_utf8_lossy(&args.str(ctx, i)).into_owned()
}

pub(crate) fn uac_reg_lookup(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let uuid = text(ctx, args, 0);
    let Some(r) = regs(ctx) else {
        return -1;
    };
    let found = {
        let st = r.lock();
        st.regs
            .iter()
            .find(|g| g.rec.l_uuid == uuid)
            .map(|g| format!("sip:{}@{}", g.rec.l_username, g.rec.l_domain))
    };
    match found {
        Some(uri) => set_dst(ctx, args, uri),
        None => -1,
    }
}

pub(crate) fn uac_reg_lookup_uri(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let uri = args.str(ctx, 0).into_owned();
    let Ok(parsed) = crate::sip::uri::Uri::parse(&uri) else {
        log::error!("uac: failed to parse uri");
        return -2;
    };
    let user = String::from_utf8_lossy(parsed.user().unwrap_or_default()).into_owned();
    let host = String::from_utf8_lossy(parsed.host_raw()).into_owned();
    let Some(r) = regs(ctx) else {
        return -1;
    };
    let domain = r.cfg.use_domain.then_some(host.as_str());
    let found = {
        let st = r.lock();
        st.regs
            .iter()
            .find(|g| local_user_is(g, &user, domain))
            .map(|g| g.rec.l_uuid.clone())
    };
    match found {
        Some(uuid) => set_dst(ctx, args, uuid),
        None => -1,
    }
}

/// Whether `g` is the local user `user` (and of `domain`, when given).
fn local_user_is(g: &Reg, user: &str, domain: Option<&str>) -> bool {
    g.rec.l_username == user && domain.is_none_or(|d| g.rec.l_domain == d)
}

/// The status code of one record at `now` (unix seconds).
pub fn status(reg: &Reg, now: u64) -> i32 {
    if reg.flags & ONLINE != 0 && reg.timer_expires > now {
        1
    } else if reg.flags & ONGOING != 0 {
        -2
    } else if reg.flags & DISABLED != 0 {
        -3
    } else {
        -99
    }
}

pub(crate) fn uac_reg_status(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let uuid = text(ctx, args, 0);
    let now = ctx.unix_ms() / 1000;
    let Some(r) = regs(ctx) else {
        return -1;
    };
    let st = r.lock();
    st.regs
        .iter()
        .find(|g| g.rec.l_uuid == uuid)
        .map_or(-1, |g| status(g, now))
}

/// Writes one of the `auth_*_avp` parameters' variables.
fn set_auth_avp(ctx: &mut MsgCtx<'_>, param: &str, value: &str) -> bool {
    let Some(f) = ctx.program.param_format("uac", param) else {
        return true;
    };
    let [FormatPart::Pv(pv)] = f.parts.as_slice() else {
        return false;
    };
    let pv = pv.clone();
    ctx.write_pv(&pv, Value::owned(value.as_bytes().to_vec()))
        .is_ok()
}

pub(crate) fn uac_reg_request_to(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let id = text(ctx, args, 0);
    let Some(mode) = args.int(ctx, 1) else {
        return -1;
    };
    if !(0..=3).contains(&mode) {
        log::error!("uac: invalid mode");
        return -1;
    }
    let Some(r) = regs(ctx) else {
        return -1;
    };
    // With reg_use_domain, a local user is given as a URI.
    let (user, domain) = if mode & 1 != 0 && r.cfg.use_domain {
        let Ok(u) = crate::sip::uri::Uri::parse(id.as_bytes()) else {
            log::error!("uac: failed to parse uri");
            return -2;
        };
        let user = String::from_utf8_lossy(u.user().unwrap_or_default()).into_owned();
        (
            user,
            Some(String::from_utf8_lossy(u.host_raw()).into_owned()),
        )
    } else {
        (id.clone(), None)
    };
    let rec = {
        let st = r.lock();
        st.regs
            .iter()
            .find(|g| {
                if mode & 1 != 0 {
                    local_user_is(g, &user, domain.as_deref())
                } else {
                    g.rec.l_uuid == id
                }
            })
            .map(|g| g.rec.clone())
    };
    let Some(rec) = rec else {
        return -1;
    };
    ctx.new_uri = Some(Bytes::from(format!(
        "sip:{}@{}",
        rec.r_username, rec.r_domain
    )));
    ctx.dst_uri = Some(Bytes::from(rec.auth_proxy.clone()));
    let password = if mode & 2 != 0 {
        &rec.auth_ha1
    } else {
        &rec.auth_password
    };
    let ok = set_auth_avp(ctx, "auth_realm_avp", &rec.realm)
        && set_auth_avp(ctx, "auth_username_avp", &rec.auth_username)
        && set_auth_avp(ctx, "auth_password_avp", password);
    if ok {
        1
    } else {
        -1
    }
}

/// A filter attribute other than the four [`find_by`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedFilter;

/// The record chosen by `attr` = `value` (`l_uuid`, `l_username`,
/// `r_username`, `auth_username`); `Err` for another attribute.
pub fn find_by<'r>(
    regs: &'r mut [Reg],
    attr: &str,
    value: &str,
) -> Result<Option<&'r mut Reg>, UnsupportedFilter> {
    let field = |g: &Reg| -> Option<String> {
        Some(match attr {
            "l_uuid" => g.rec.l_uuid.clone(),
            "l_username" => g.rec.l_username.clone(),
            "r_username" => g.rec.r_username.clone(),
            "auth_username" => g.rec.auth_username.clone(),
            _ => return None,
        })
    };
    if !["l_uuid", "l_username", "r_username", "auth_username"].contains(&attr) {
        return Err(UnsupportedFilter);
    }
    Ok(regs.iter_mut().find(|g| field(g).as_deref() == Some(value)))
}

/// Sets (`disable`) or clears the disabled flag; the record is looked at
/// again one second from `now`. 1, -1 when not found, -2 for a bad attribute.
pub fn set_disabled(r: &Registrations, attr: &str, value: &str, disable: bool, now: u64) -> i32 {
    let mut st = r.lock();
    match find_by(&mut st.regs, attr, value) {
        Ok(Some(g)) => {
            if disable {
                g.flags |= DISABLED;
            } else {
                g.flags &= !DISABLED;
            }
            g.timer_expires = now + 1;
            1
        }
        Ok(None) => -1,
        Err(UnsupportedFilter) => {
            log::error!("uac: unsupported filter attribute {attr}");
            -2
        }
    }
}

fn enable_disable(ctx: &mut MsgCtx<'_>, args: &Args, disable: bool) -> i32 {
    let attr = text(ctx, args, 0);
    let value = text(ctx, args, 1);
    let now = ctx.unix_ms() / 1000;
    let Some(r) = regs(ctx) else {
        return -1;
    };
    // Kamailio 5.6: -2 no such record, -3 an attribute it does not know.
    match set_disabled(r, &attr, &value, disable, now) {
        1 => 1,
        -1 => -2,
        _ => -3,
    }
}

pub(crate) fn uac_reg_enable(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    enable_disable(ctx, args, false)
}

pub(crate) fn uac_reg_disable(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    enable_disable(ctx, args, true)
}

/// Reads one record again from the database: 1, -1 when it is not there
/// or the database fails.
pub fn refresh(r: &Registrations, l_uuid: &str, now: u64) -> Result<bool, String> {
    let mut rows = r.read_table(Some(l_uuid))?;
    match rows.pop() {
        Some(rec) => {
            r.replace(rec, now);
            Ok(true)
        }
        None => Ok(false),
    }
}

pub(crate) fn uac_reg_refresh(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let uuid = text(ctx, args, 0);
    let now = ctx.unix_ms() / 1000;
    let Some(r) = regs(ctx) else {
        return -1;
    };
    match refresh(r, &uuid, now) {
        Ok(true) => 1,
        Ok(false) => -1,
        Err(e) => {
            log::error!("{e}");
            -1
        }
    }
}

/// `uac.reg_unregister`: the record's `expires` set to 0 and a REGISTER
/// sent with it at the next tick; 1, -1 when not found, -2 for a bad attribute.
pub fn unregister(r: &Registrations, attr: &str, value: &str) -> i32 {
    let mut st = r.lock();
    match find_by(&mut st.regs, attr, value) {
        Ok(Some(g)) => {
            g.rec.expires = 0;
            g.send_now = true;
            1
        }
        Ok(None) => -1,
        Err(UnsupportedFilter) => -2,
    }
}
