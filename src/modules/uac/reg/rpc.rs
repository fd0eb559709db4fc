//! The control-socket methods of remote registration, as plain functions
//! returning JSON; an error is Kamailio's fault (code, message). The
//! fields of a record are those `uac.reg_dump` shows in Kamailio 5.6
//! (an empty `auth_ha1` or `auth_proxy` reads `none`).

use serde_json::{json, Value};

use super::functions::{find_by, refresh, set_disabled, unregister, UnsupportedFilter};
use super::{Record, Reg, Registrations};

/// A JSON-RPC fault.
pub type Fault = (i32, String);

fn fault(code: i32, msg: &str) -> Fault {
    (code, msg.to_string())
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "none"
    } else {
        s
    }
}

/// An empty column reads `null` (Kamailio's JSON-RPC for an unset string).
fn text_or_null(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

/// What the methods that change something answer: an empty object.
fn done() -> Value {
    json!({})
}

/// One record as `uac.reg_dump` and `uac.reg_info` show it, at `now` (unix seconds).
pub fn record_json(g: &Reg, now: u64) -> Value {
    let r = &g.rec;
    json!({
        "l_uuid": r.l_uuid,
        "l_username": r.l_username,
        "l_domain": r.l_domain,
        "r_username": r.r_username,
        "r_domain": r.r_domain,
        "realm": text_or_null(&r.realm),
        "auth_username": r.auth_username,
        "auth_password": r.auth_password,
        "auth_ha1": or_none(&r.auth_ha1),
        "auth_proxy": or_none(&r.auth_proxy),
        "expires": r.expires,
        "flags": g.flags,
        "diff_expires": g.timer_expires as i64 - now as i64,
        "timer_expires": g.timer_expires,
        "reg_init": g.reg_init,
        "reg_delay": g.reg_delay,
        "contact_addr": g.contact_addr,
        "socket": text_or_null(&r.socket),
    })
}

/// `uac.reg_dump`: every record.
pub fn dump(r: &Registrations, now: u64) -> Value {
    let st = r.lock();
    Value::Array(st.regs.iter().map(|g| record_json(g, now)).collect())
}

/// `uac.reg_info ATTR VALUE`.
pub fn info(r: &Registrations, attr: &str, value: &str, now: u64) -> Result<Value, Fault> {
    if attr.is_empty() || value.is_empty() {
        return Err(fault(400, "Invalid Parameter Values"));
    }
    let mut st = r.lock();
    match find_by(&mut st.regs, attr, value) {
        Ok(Some(g)) => Ok(record_json(g, now)),
        Ok(None) => Err(fault(404, "Record not found")),
        Err(UnsupportedFilter) => Err(fault(400, "Unsupported filter attribute")),
    }
}

/// `uac.reg_enable` / `uac.reg_disable ATTR VALUE`.
pub fn enable(
    r: &Registrations,
    attr: &str,
    value: &str,
    disable: bool,
    now: u64,
) -> Result<Value, Fault> {
    // Kamailio counts whatever the outcome.
    r.lock().counters.regdisabled += if disable { 1 } else { -1 };
    if attr.is_empty() || value.is_empty() {
        return Err(fault(400, "Invalid Parameter Values"));
    }
    match set_disabled(r, attr, value, disable, now) {
        1 => Ok(done()),
        -1 => Err(fault(404, "Record not found")),
        _ => Err(fault(400, "Unsupported filter attribute")),
    }
}

/// `uac.reg_reload`: the table read again, refused within `reg_gc_interval`
/// seconds of the previous reload.
pub fn reload(r: &Registrations, now: u64) -> Result<Value, Fault> {
    {
        let mut st = r.lock();
        if st.last_reload.is_some_and(|t| t + r.cfg.gc_interval > now) {
            log::error!(
                "uac: shifting the memory table is not possible in less than {} secs",
                r.cfg.gc_interval
            );
            return Err(fault(500, "Failed to shift records - check log messages"));
        }
        st.last_reload = Some(now);
    }
    match r.read_table(None) {
        Ok(rows) => {
            r.reload(rows, now);
            Ok(done())
        }
        Err(e) => {
            log::error!("{e}");
            Err(fault(500, "Failed to reload records - check log messages"))
        }
    }
}

/// `uac.reg_refresh L_UUID`.
pub fn refresh_one(r: &Registrations, l_uuid: &str, now: u64) -> Result<Value, Fault> {
    match refresh(r, l_uuid, now) {
        Ok(true) => Ok(done()),
        Ok(false) => Err(fault(404, "Record not found")),
        Err(e) => {
            log::error!("{e}");
            Err(fault(500, "Failed to refresh record - check log messages"))
        }
    }
}

/// `uac.reg_remove L_UUID`.
pub fn remove(r: &Registrations, l_uuid: &str) -> Result<Value, Fault> {
    if r.remove(l_uuid) {
        Ok(done())
    } else {
        Err(fault(404, "Record not found"))
    }
}

/// `uac.reg_add` with the record's columns (`l_uuid` … `auth_ha1`,
/// `auth_proxy`, `expires`, `flags`, `reg_delay`, `socket`, `contact_addr`;
/// `.` stands for an empty `auth_ha1` or `contact_addr`).
pub fn add(r: &Registrations, rec: Record, now: u64) -> Result<Value, Fault> {
    if let Err(e) = rec.check() {
        log::error!("uac: {e}");
        return Err(fault(500, "Failed to add record - check log messages"));
    }
    if r.add(rec, now) {
        Ok(done())
    } else {
        Err(fault(409, "uuid already exists"))
    }
}

/// `uac.reg_active [0|1]`: the old and new `reg_active`.
pub fn active(r: &Registrations, on: bool) -> Value {
    let old = r.set_active(on);
    json!({ "omode": i32::from(old), "nmode": i32::from(on) })
}

/// `uac.reg_unregister ATTR VALUE`: a REGISTER with `Expires: 0` now, and
/// none after (the record's `expires` is 0).
pub fn unregister_one(r: &Registrations, attr: &str, value: &str) -> Result<Value, Fault> {
    match unregister(r, attr, value) {
        1 => Ok(done()),
        -1 => Err(fault(404, "Record not found")),
        _ => Err(fault(400, "Unsupported filter attribute")),
    }
}
