//! speeddial: per-user short numbers kept in a database table (`speed_dial`
//! as `kamdbctl` makes it: `username, domain, sd_username, sd_domain,
//! new_uri`), read per call on the store thread of `db_url`, as Kamailio
//! 5.6 queries its database each time.
//!
//! `sd_lookup(table[, owner])` (request route): the row of the owner (the
//! `owner` URI when given and not empty, else the From URI) whose
//! `sd_username` is the R-URI's user gives the new R-URI (`new_uri`, with
//! `sip:` put in front when it does not start so). 1 rewritten; -1 no such
//! row, a URI that cannot be read, or a database error.
//!
//! `use_domain` 1 matches the owner's domain too, 2 also `sd_domain` with
//! the R-URI's host; `domain_prefix` comes off both hosts (compared without
//! case, when the host is longer), as Kamailio 5.6 does (checked side by
//! side: loadtest/sidebyside/configs/stockdb_values.cfg).

use std::sync::Arc;

use bytes::Bytes;

use crate::modules::sqlops;
use crate::script::ctx::MsgCtx;
use crate::script::registry::{func, param, Arg, Args, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::sip::nameaddr::NameAddr;
use crate::sip::uri::Uri;
use crate::sip::HeaderName;
use crate::store::{is_identifier, sql_literal, SqlValue, StoreHandle};

/// The module's table columns and settings, shared by every core.
#[derive(Debug, Clone)]
pub struct Speeddial {
    pub store: StoreHandle,
    pub user_col: String,
    pub domain_col: String,
    pub sd_user_col: String,
    pub sd_domain_col: String,
    pub new_uri_col: String,
    pub use_domain: i64,
    pub domain_prefix: String,
}

/// Opens `db_url` for the module (it has no default database in ringsip).
pub fn open(
    mp: &ModParams,
    handle: impl FnOnce(&str) -> Result<StoreHandle, String>,
) -> Result<Arc<Speeddial>, String> {
    let url = mp
        .str("speeddial", "db_url")
        .ok_or("speeddial: db_url is not set (the numbers are read from the database)")?;
    let col =
        |name: &str, default: &str| crate::modules::db::name_param(mp, "speeddial", name, default);
    Ok(Arc::new(Speeddial {
        user_col: col("user_column", "username")?,
        domain_col: col("domain_column", "domain")?,
        sd_user_col: col("sd_user_column", "sd_username")?,
        sd_domain_col: col("sd_domain_column", "sd_domain")?,
        new_uri_col: col("new_uri_column", "new_uri")?,
        use_domain: mp.int("speeddial", "use_domain").unwrap_or(0),
        domain_prefix: mp
            .str("speeddial", "domain_prefix")
            .unwrap_or("")
            .to_string(),
        store: handle(url).map_err(|e| format!("speeddial: {e}"))?,
    }))
}

fn fixup(args: &mut Args, _: &ModParams) -> Result<(), String> {
    match args.get(0) {
        Some(Arg::Str(t)) if !is_identifier(std::str::from_utf8(t).unwrap_or("")) => Err(format!(
            "{:?} is not a usable table name",
            String::from_utf8_lossy(t)
        )),
        _ => Ok(()),
    }
}

fn lit(v: &[u8]) -> Option<String> {
    sql_literal(v).or_else(|| {
        log::error!("speeddial: a value with a backslash cannot be used in a query");
        None
    })
}

/// `host` without `prefix` (compared without case) when it is longer.
fn strip<'h>(host: &'h [u8], prefix: &str) -> &'h [u8] {
    let p = prefix.as_bytes();
    match host.get(..p.len()) {
        Some(head) if !p.is_empty() && p.len() < host.len() && head.eq_ignore_ascii_case(p) => {
            &host[p.len()..]
        }
        _ => host,
    }
}

/// `sd_lookup(table[, owner])`.
fn sd_lookup(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(sd) = ctx.env.services.get::<Arc<Speeddial>>().cloned() else {
        log::error!("speeddial: no database (db_url)");
        return -1;
    };
    let table = args.str(ctx, 0).into_owned();
    let Some(table) = std::str::from_utf8(&table)
        .ok()
        .filter(|t| is_identifier(t))
    else {
        log::error!("speeddial: invalid table parameter");
        return -1;
    };
    let owner_text = if args.len() > 1 {
        args.str(ctx, 1).into_owned()
    } else {
        Vec::new()
    };
    let from;
    let owner = if !owner_text.is_empty() {
        match Uri::parse(&owner_text) {
            Ok(u) => u,
            Err(_) => {
                log::error!("speeddial: bad owner SIP address!");
                return -1;
            }
        }
    } else {
        from = ctx
            .msg
            .header_value(HeaderName::From)
            .and_then(|v| NameAddr::parse(v).ok())
            .map(|na| na.uri_raw().to_vec());
        match from.as_deref().map(Uri::parse) {
            Some(Ok(u)) => u,
            _ => {
                log::error!("speeddial: failed to parse FROM header");
                return -1;
            }
        }
    };
    let mut conds = Vec::with_capacity(4);
    let Some(v) = lit(owner.user().unwrap_or_default()) else {
        return -1;
    };
    conds.push(format!("{}={v}", sd.user_col));
    if sd.use_domain >= 1 {
        let Some(v) = lit(strip(owner.host_raw(), &sd.domain_prefix)) else {
            return -1;
        };
        conds.push(format!("{}={v}", sd.domain_col));
    }
    let ruri = ctx.ruri().to_vec();
    let Ok(ruri) = Uri::parse(&ruri) else {
        log::error!("speeddial: failed to parse the Request-URI");
        return -1;
    };
    let Some(v) = lit(ruri.user().unwrap_or_default()) else {
        return -1;
    };
    conds.push(format!("{}={v}", sd.sd_user_col));
    if sd.use_domain >= 2 {
        let Some(v) = lit(strip(ruri.host_raw(), &sd.domain_prefix)) else {
            return -1;
        };
        conds.push(format!("{}={v}", sd.sd_domain_col));
    }
    let sql = format!(
        "SELECT {} FROM {table} WHERE {}",
        sd.new_uri_col,
        conds.join(" AND ")
    );
    let Some(rows) = sqlops::run_on(&sd.store, "speeddial", sql.into_bytes()) else {
        return -1;
    };
    let mut uri = match rows.rows.first().and_then(|r| r.first()) {
        Some(SqlValue::Str(s)) => s.clone(),
        Some(SqlValue::Null) | None => {
            log::debug!("speeddial: no sip address found for R-URI");
            return -1;
        }
        Some(_) => {
            log::error!("speeddial: unknown type of DB new_uri column");
            return -1;
        }
    };
    if !uri.starts_with(b"sip:") {
        uri.splice(0..0, *b"sip:");
    }
    ctx.new_uri = Some(Bytes::from(uri));
    1
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "speeddial",
    aliases: &[],
    functions: &[func(
        "sd_lookup",
        1,
        2,
        RouteMask::REQUEST,
        Some(fixup),
        sd_lookup,
    )],
    params: &[
        param("db_url", ParamKind::Str),
        param("user_column", ParamKind::Str),
        param("domain_column", ParamKind::Str),
        param("sd_user_column", ParamKind::Str),
        param("sd_domain_column", ParamKind::Str),
        param("new_uri_column", ParamKind::Str),
        param("use_domain", ParamKind::Int),
        param("domain_prefix", ParamKind::Str),
    ],
    always: false,
};

#[cfg(test)]
#[path = "speeddial_tests.rs"]
mod tests;
