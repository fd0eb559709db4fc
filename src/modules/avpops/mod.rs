//! avpops: AVPs loaded from and written to a database (`avp_db_query`,
//! `avp_db_load`, `avp_db_delete`, with `db_url` and `avp_table`), and
//! operations on AVPs (`avp_delete`, `avp_copy`, `avp_pushto`, `avp_check`,
//! `avp_op`, `avp_subst`, `avp_subst_pv`, `is_avp_set`, `avp_print`), with
//! Kamailio 5.6's argument grammar (`"$avp(x)/g"`, `"$ru/username"`,
//! `"eq/$avp(y)/i"`, see [`args`]).
//!
//! AVP values are integers or strings, as in Kamailio. Database work runs on
//! the store thread of `db_url`, waited for with a time limit.
//!
//! Not available: `avp_db_store` (Kamailio marks each AVP loaded from the
//! database so that storing skips it; ringsip's AVPs carry no such mark, so
//! the function is refused at start-up rather than storing loaded values
//! twice), and DB schemes (`db_scheme`, `"$avp(x)/$scheme"`).

pub mod args;
mod change;
mod db;
mod ops;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::script::registry::{func, param, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::store::StoreHandle;

/// The `usr_preferences` table and its columns (modparams `avp_table`, `*_column`).
#[derive(Debug, Clone)]
pub struct AvpDb {
    pub store: StoreHandle,
    pub table: String,
    pub uuid: String,
    pub attribute: String,
    pub value: String,
    pub type_: String,
    pub username: String,
    pub domain: String,
    pub use_domain: bool,
}

/// Opens `db_url` (when set) for the database functions.
pub fn open(
    mp: &ModParams,
    handle: impl FnOnce(&str) -> Result<StoreHandle, String>,
) -> Result<Option<Arc<AvpDb>>, String> {
    let Some(url) = mp.str("avpops", "db_url") else {
        return Ok(None);
    };
    let col = |name: &str, default: &str| -> Result<String, String> {
        let v = mp.str("avpops", name).unwrap_or(default).to_string();
        if crate::store::is_identifier(&v) {
            Ok(v)
        } else {
            Err(format!("avpops: {name} {v:?} is not a usable name"))
        }
    };
    let table = match mp.str("avpops", "avp_table") {
        Some(t) if !t.is_empty() => col("avp_table", t)?,
        _ => return Err("avpops: db_url is set but avp_table is empty".into()),
    };
    Ok(Some(Arc::new(AvpDb {
        store: handle(url).map_err(|e| format!("avpops: {e}"))?,
        table,
        uuid: col("uuid_column", "uuid")?,
        attribute: col("attribute_column", "attribute")?,
        value: col("value_column", "value")?,
        type_: col("type_column", "type")?,
        username: col("username_column", "username")?,
        domain: col("domain_column", "domain")?,
        use_domain: mp.int("avpops", "use_domain").unwrap_or(0) != 0,
    })))
}

use change::*;
use db::*;
use ops::*;

/// Every route type but `onsend_route` and event routes (Kamailio: request,
/// failure, branch, onreply and local routes).
const ROUTES: RouteMask = RouteMask::REQUEST
    .or(RouteMask::FAILURE)
    .or(RouteMask::BRANCH)
    .or(RouteMask::ONREPLY)
    .or(RouteMask::REPLY);

pub static MODULE: ModuleDef = ModuleDef {
    name: "avpops",
    aliases: &[],
    functions: &[
        func(
            "avp_db_query",
            1,
            2,
            ROUTES,
            Some(fixup_db_query),
            avp_db_query,
        ),
        func("avp_db_load", 2, 2, ROUTES, Some(fixup_db_avp), avp_db_load),
        func(
            "avp_db_delete",
            2,
            2,
            ROUTES,
            Some(fixup_db_avp),
            avp_db_delete,
        ),
        func(
            "avp_db_store",
            2,
            2,
            ROUTES,
            Some(fixup_refused_store),
            never,
        ),
        func("avp_delete", 1, 1, ROUTES, Some(fixup_delete), avp_delete),
        func("avp_copy", 2, 2, ROUTES, Some(fixup_copy), avp_copy),
        func("avp_pushto", 2, 2, ROUTES, Some(fixup_pushto), avp_pushto),
        func("avp_check", 2, 2, ROUTES, Some(fixup_check), avp_check),
        func("avp_op", 2, 2, ROUTES, Some(fixup_op), avp_op),
        func("avp_subst", 2, 2, ROUTES, Some(fixup_subst), avp_subst),
        func(
            "avp_subst_pv",
            2,
            2,
            ROUTES,
            Some(fixup_subst_pv),
            avp_subst_pv,
        ),
        func("is_avp_set", 1, 1, ROUTES, Some(fixup_is_set), is_avp_set),
        func("avp_print", 0, 0, ROUTES, None, avp_print),
    ],
    params: &[
        param("db_url", ParamKind::Str),
        param("avp_table", ParamKind::Str),
        param("use_domain", ParamKind::Int),
        param("uuid_column", ParamKind::Str),
        param("attribute_column", ParamKind::Str),
        param("value_column", ParamKind::Str),
        param("type_column", ParamKind::Str),
        param("username_column", ParamKind::Str),
        param("domain_column", ParamKind::Str),
    ],
    always: false,
};
