//! permissions' trusted-table methods: `permissions.trustedReload` and
//! `permissions.trustedDump`, on the table the workers use. As Kamailio 5.6
//! (checked live), both answer 500 when the table is not kept in memory
//! (`db_mode` 0). The dump lists the rows in the order `allow_trusted` tries
//! them; Kamailio groups them under its hash-bucket numbers, which ringsip
//! does not have.

use serde_json::{json, Value};

use super::methods::{Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::permissions::trusted::Trusted;

pub static METHODS: &[Method] = &[
    Method {
        name: "permissions.trustedReload",
        help: "Read the trusted table again (db_mode 1).",
        call: reload,
    },
    Method {
        name: "permissions.trustedDump",
        help: "The trusted table in memory, in the order allow_trusted tries it (db_mode 1).",
        call: dump,
    },
];

fn trusted(ctl: &Ctl) -> Result<&Trusted, RpcError> {
    ctl.services
        .get::<Trusted>()
        .ok_or_else(|| RpcError::new(500, "No trusted table"))
}

fn reload(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    match trusted(ctl)?.reload() {
        Ok(_) => Ok(json!("Reload OK")),
        Err(e) => {
            log::error!("permissions.trustedReload: {e}");
            Err(RpcError::new(500, "Reload failed."))
        }
    }
}

fn dump(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let rows = trusted(ctl)?
        .dump()
        .ok_or_else(|| RpcError::new(500, "No trusted table"))?;
    let or_null = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".into());
    Ok(Value::Array(
        rows.iter()
            .map(|(r, proto)| {
                json!({
                    "ip": r.src_ip,
                    "proto": proto.number(),
                    "pattern": or_null(&r.from_pattern),
                    "ruri_pattern": or_null(&r.ruri_pattern),
                    "tag": or_null(&r.tag),
                    "priority": r.priority,
                })
            })
            .collect(),
    ))
}
