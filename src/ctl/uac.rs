//! `uac.reg_*`: uac's remote registrations (see
//! [`crate::modules::uac::reg::rpc`]); an error when `reg_db_url` is not set.

use serde_json::Value;

use super::methods::{unix_now, Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::uac::reg::{rpc, Record, Registrations};

pub static METHODS: &[Method] = &[
    Method {
        name: "uac.reg_dump",
        help: "Every remote registration record with its state.",
        call: dump,
    },
    Method {
        name: "uac.reg_info",
        help:
            "uac.reg_info ATTR VALUE: one record (l_uuid, l_username, r_username or auth_username).",
        call: info,
    },
    Method {
        name: "uac.reg_enable",
        help: "uac.reg_enable ATTR VALUE: registrations of the record on again.",
        call: |c, p| enable(c, p, false),
    },
    Method {
        name: "uac.reg_disable",
        help: "uac.reg_disable ATTR VALUE: no more registrations for the record.",
        call: |c, p| enable(c, p, true),
    },
    Method {
        name: "uac.reg_reload",
        help: "Every record read again from the database (at most once per reg_gc_interval).",
        call: reload,
    },
    Method {
        name: "uac.reg_refresh",
        help: "uac.reg_refresh L_UUID: one record read again from the database.",
        call: refresh,
    },
    Method {
        name: "uac.reg_remove",
        help: "uac.reg_remove L_UUID: the record out of memory.",
        call: remove,
    },
    Method {
        name: "uac.reg_add",
        help: "uac.reg_add L_UUID L_USERNAME L_DOMAIN R_USERNAME R_DOMAIN REALM AUTH_USERNAME \
               AUTH_PASSWORD AUTH_HA1 AUTH_PROXY EXPIRES FLAGS REG_DELAY SOCKET CONTACT_ADDR: \
               a record in memory ('.' for no AUTH_HA1 or CONTACT_ADDR).",
        call: add,
    },
    Method {
        name: "uac.reg_unregister",
        help: "uac.reg_unregister ATTR VALUE: a REGISTER with Expires 0 now, and no more after.",
        call: unregister,
    },
    Method {
        name: "uac.reg_active",
        help: "uac.reg_active 0|1: registrations sent or not; the old and new mode.",
        call: active,
    },
];

fn regs(ctl: &Ctl) -> Result<&Registrations, RpcError> {
    ctl.services
        .get::<Registrations>()
        .ok_or_else(|| RpcError::new(500, "Not enabled"))
}

fn fault((code, message): rpc::Fault) -> RpcError {
    RpcError::new(i64::from(code), message)
}

fn two(p: &Params) -> Result<(String, String), RpcError> {
    match (p.text(0), p.text(1)) {
        (Some(a), Some(v)) => Ok((a, v)),
        _ => Err(RpcError::new(400, "Invalid Parameters")),
    }
}

fn one(p: &Params) -> Result<String, RpcError> {
    p.text(0)
        .ok_or_else(|| RpcError::new(400, "Invalid Parameters"))
}

fn dump(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    Ok(rpc::dump(regs(ctl)?, unix_now()))
}

fn info(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let r = regs(ctl)?;
    let (attr, value) = two(p)?;
    rpc::info(r, &attr, &value, unix_now()).map_err(fault)
}

fn enable(ctl: &Ctl, p: &Params, disable: bool) -> Result<Value, RpcError> {
    let r = regs(ctl)?;
    let (attr, value) = two(p)?;
    rpc::enable(r, &attr, &value, disable, unix_now()).map_err(fault)
}

fn unregister(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let r = regs(ctl)?;
    let (attr, value) = two(p)?;
    rpc::unregister_one(r, &attr, &value).map_err(fault)
}

fn reload(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    rpc::reload(regs(ctl)?, unix_now()).map_err(fault)
}

fn refresh(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let r = regs(ctl)?;
    rpc::refresh_one(r, &one(p)?, unix_now()).map_err(fault)
}

fn remove(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let r = regs(ctl)?;
    rpc::remove(r, &one(p)?).map_err(fault)
}

fn add(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let r = regs(ctl)?;
    if p.len() < 15 {
        return Err(RpcError::new(400, "Invalid Parameters"));
    }
    let t = |i: usize| p.text(i).unwrap_or_default();
    let dot = |i: usize| Some(t(i)).filter(|v| v != ".").unwrap_or_default();
    let n = |i: usize| {
        p.text(i)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    let rec = Record {
        l_uuid: t(0),
        l_username: t(1),
        l_domain: t(2),
        r_username: t(3),
        r_domain: t(4),
        realm: t(5),
        auth_username: t(6),
        auth_password: t(7),
        auth_ha1: dot(8),
        auth_proxy: t(9),
        expires: n(10),
        flags: n(11),
        reg_delay: n(12),
        socket: t(13),
        contact_addr: dot(14),
    };
    rpc::add(r, rec, unix_now()).map_err(fault)
}

/// Kamailio reads the mode as an integer: a string counts as 0.
fn active(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let r = regs(ctl)?;
    let on = match p.get(0) {
        None => return Err(RpcError::new(500, "Missing parameter")),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
        Some(Value::Bool(b)) => *b,
        Some(_) => false,
    };
    Ok(rpc::active(r, on))
}
