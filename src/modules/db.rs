//! Database driver modules (`db_sqlite`, `db_postgres`, `db_mysql`,
//! `db_text`): ringsip has its drivers built in (src/store), chosen by the
//! scheme of each `db_url`, so loading one of these only makes its name
//! known. A `db_url` the store cannot open (`mysql://`, `text://`) is a
//! start-up error at its `modparam` line ([`crate::store::check_url`]).

use crate::script::registry::{ModuleDef, ParamDef, ParamKind};

pub static MODULE: ModuleDef = ModuleDef {
    name: "db_sqlite",
    aliases: &["db_postgres", "db_mysql", "db_text"],
    functions: &[],
    // Connection tuning of Kamailio's drivers: accepted, the store sets its own.
    params: &[
        ParamDef {
            name: "ping_interval",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "timeout_interval",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "auto_reconnect",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "busy_timeout",
            kind: ParamKind::Int,
        },
    ],
    always: false,
};

/// A table or column name set by `modparam(module, param, …)`, else
/// `default`: refused at start-up unless the store can write it into SQL
/// as it is ([`crate::store::is_identifier`]).
pub fn name_param(
    mp: &crate::script::registry::ModParams,
    module: &str,
    param: &str,
    default: &str,
) -> Result<String, String> {
    let v = mp.str(module, param).unwrap_or(default);
    if crate::store::is_identifier(v) {
        Ok(v.to_string())
    } else {
        Err(format!(
            "{module}: {param} {v:?} is not a usable table or column name"
        ))
    }
}
