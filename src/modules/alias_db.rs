//! alias_db: aliases of users kept in a database table (`dbaliases` as
//! `kamdbctl` makes it: `alias_username, alias_domain, username, domain`),
//! read per call on the store thread of `db_url`, as Kamailio 5.6 queries
//! its database each time.
//!
//! - `alias_db_lookup(table[, flags])`: the R-URI's user (and host, with
//!   the domain flag) is looked up as an alias; the first row found
//!   becomes the R-URI `sip:username@domain`, and with `append_branches` 1
//!   each further row a branch (q 0). 1 found; -1 not found or error.
//! - `alias_db_find(table, in, out[, flags])`: the same for the URI in
//!   variable `in`, the result written to `out` (an `$avp` or `$var`; with
//!   `append_branches` every row is written, else the first only).
//! - flags (a constant string): `d` match the user only, `u` match user
//!   and domain, `r` reverse lookup (user → alias). Without `d`/`u` the
//!   domain is matched when `use_domain` is 1. Any other letter is a
//!   start-up error.
//! - `domain_prefix`: stripped from the URI host (without case) before a
//!   domain is matched, when the host is longer.

use std::sync::Arc;

use bytes::Bytes;

use crate::modules::sqlops;
use crate::script::ctx::{Branch, MsgCtx};
use crate::script::ir::FormatPart;
use crate::script::pvkind::{PvKind, PvRef};
use crate::script::registry::{func, param, Arg, Args, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::script::value::Value;
use crate::sip::uri::Uri;
use crate::store::{is_identifier, sql_literal, SqlValue, StoreHandle};

/// The module's table columns and settings, shared by every core.
#[derive(Debug, Clone)]
pub struct AliasDb {
    pub store: StoreHandle,
    pub user_col: String,
    pub domain_col: String,
    pub alias_user_col: String,
    pub alias_domain_col: String,
    pub domain_prefix: String,
    pub use_domain: bool,
    pub append_branches: bool,
}

/// Opens `db_url` for the module (it has no default database in ringsip).
pub fn open(
    mp: &ModParams,
    handle: impl FnOnce(&str) -> Result<StoreHandle, String>,
) -> Result<Arc<AliasDb>, String> {
    let url = mp
        .str("alias_db", "db_url")
        .ok_or("alias_db: db_url is not set (the aliases are read from the database)")?;
    let col =
        |name: &str, default: &str| crate::modules::db::name_param(mp, "alias_db", name, default);
    Ok(Arc::new(AliasDb {
        user_col: col("user_column", "username")?,
        domain_col: col("domain_column", "domain")?,
        alias_user_col: col("alias_user_column", "alias_username")?,
        alias_domain_col: col("alias_domain_column", "alias_domain")?,
        domain_prefix: mp
            .str("alias_db", "domain_prefix")
            .unwrap_or("")
            .to_string(),
        use_domain: mp.int("alias_db", "use_domain").unwrap_or(0) != 0,
        append_branches: mp.int("alias_db", "append_branches").unwrap_or(0) != 0,
        store: handle(url).map_err(|e| format!("alias_db: {e}"))?,
    }))
}

/// Match the domain too.
const DOMAIN: u8 = 1;
/// User → alias instead of alias → user.
const REVERSE: u8 = 2;

/// The flags of a call, from its constant string (`None`: the default).
#[derive(Debug, Clone, Copy)]
struct Flags(u8);

fn parse_flags(text: &[u8], use_domain: bool) -> Result<u8, String> {
    let mut f = if use_domain { DOMAIN } else { 0 };
    for c in text {
        match c {
            b'd' | b'D' => f &= !DOMAIN,
            b'r' | b'R' => f |= REVERSE,
            b'u' | b'U' => f |= DOMAIN,
            other => return Err(format!("unsupported flag '{}'", *other as char)),
        }
    }
    Ok(f)
}

/// The flags argument at `i` (a constant), or the default, as a [`Flags`] at `i`.
fn fixup_flags(args: &mut Args, i: usize, mp: &ModParams) -> Result<(), String> {
    let use_domain = mp.int("alias_db", "use_domain").unwrap_or(0) != 0;
    let f = match args.get(i) {
        None => parse_flags(b"", use_domain)?,
        Some(Arg::Str(s)) => parse_flags(s, use_domain)?,
        Some(_) => return Err("the flags must be a constant string".into()),
    };
    if args.len() > i {
        args.0[i] = Arg::Custom(Box::new(Flags(f)));
    } else {
        args.0.push(Arg::Custom(Box::new(Flags(f))));
    }
    Ok(())
}

/// A constant table name must be usable in SQL.
fn check_table(args: &Args) -> Result<(), String> {
    match args.get(0) {
        Some(Arg::Str(t)) if !is_identifier(std::str::from_utf8(t).unwrap_or("")) => Err(format!(
            "{:?} is not a usable table name",
            String::from_utf8_lossy(t)
        )),
        _ => Ok(()),
    }
}

fn fixup_lookup(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    check_table(args)?;
    fixup_flags(args, 1, mp)
}

fn single_pv(arg: Option<&Arg>) -> Option<PvRef> {
    match arg? {
        Arg::Pv(p) => Some(p.clone()),
        Arg::Fmt(f) => match f.parts.as_slice() {
            [FormatPart::Pv(p)] => Some(p.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn fixup_find(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    check_table(args)?;
    let input = single_pv(args.get(1)).ok_or("the second argument must be a variable")?;
    let out = single_pv(args.get(2)).ok_or("the third argument must be a variable")?;
    if !matches!(
        out.kind,
        PvKind::Avp(_) | PvKind::AvpDyn(_) | PvKind::Var(_)
    ) {
        return Err("the third argument must be an $avp or a $var".into());
    }
    args.0[1] = Arg::Pv(input);
    args.0[2] = Arg::Pv(out);
    fixup_flags(args, 3, mp)
}

fn service(ctx: &MsgCtx<'_>) -> Option<Arc<AliasDb>> {
    let d = ctx.env.services.get::<Arc<AliasDb>>().cloned();
    if d.is_none() {
        log::error!("alias_db: no database (db_url)");
    }
    d
}

/// The URIs `user`@`host` is an alias of (or, reversed, has as aliases),
/// `sip:user@domain` each, in the database's order; `None` when there is
/// none or the query failed (both -1 in Kamailio).
fn query(db: &AliasDb, table: &[u8], user: &[u8], host: &[u8], flags: u8) -> Option<Vec<Vec<u8>>> {
    let Some(table) = std::str::from_utf8(table).ok().filter(|t| is_identifier(t)) else {
        log::error!(
            "alias_db: bad table name {:?}",
            String::from_utf8_lossy(table)
        );
        return None;
    };
    let (keys, cols) = if flags & REVERSE != 0 {
        (
            (&db.user_col, &db.domain_col),
            (&db.alias_user_col, &db.alias_domain_col),
        )
    } else {
        (
            (&db.alias_user_col, &db.alias_domain_col),
            (&db.user_col, &db.domain_col),
        )
    };
    let lit = |v: &[u8]| {
        sql_literal(v).or_else(|| {
            log::error!("alias_db: a value with a backslash cannot be used in a query");
            None
        })
    };
    let mut sql = format!(
        "SELECT {}, {} FROM {table} WHERE {}={}",
        cols.0,
        cols.1,
        keys.0,
        lit(user)?
    );
    if flags & DOMAIN != 0 {
        let p = db.domain_prefix.as_bytes();
        let host = match host.get(..p.len()) {
            Some(head) if !p.is_empty() && p.len() < host.len() && head.eq_ignore_ascii_case(p) => {
                &host[p.len()..]
            }
            _ => host,
        };
        sql.push_str(&format!(" AND {}={}", keys.1, lit(host)?));
    }
    let rows = sqlops::run_on(&db.store, "alias_db", sql.into_bytes())?;
    if rows
        .rows
        .first()
        .and_then(|r| r.first())
        .is_none_or(|v| *v == SqlValue::Null)
    {
        log::debug!("alias_db: no alias found");
        return None;
    }
    let part = |v: Option<&SqlValue>| -> Vec<u8> {
        match v {
            Some(SqlValue::Str(s)) => s.clone(),
            Some(SqlValue::Int(i) | SqlValue::BigInt(i)) => i.to_string().into_bytes(),
            _ => Vec::new(),
        }
    };
    Some(
        rows.rows
            .iter()
            .map(|r| {
                let mut uri = b"sip:".to_vec();
                uri.extend(part(r.first()));
                uri.push(b'@');
                uri.extend(part(r.get(1)));
                uri
            })
            .collect(),
    )
}

fn flags_of(args: &Args, i: usize) -> u8 {
    args.custom::<Flags>(i).map_or(0, |f| f.0)
}

/// `alias_db_lookup(table[, flags])`.
fn alias_db_lookup(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(db) = service(ctx) else { return -1 };
    let table = args.str(ctx, 0).into_owned();
    let ruri = ctx.ruri().to_vec();
    let Ok(uri) = Uri::parse(&ruri) else {
        log::error!("alias_db: cannot parse the R-URI");
        return -1;
    };
    let user = uri.user().unwrap_or_default();
    let Some(found) = query(&db, &table, user, uri.host_raw(), flags_of(args, 1)) else {
        return -1;
    };
    let mut found = found.into_iter();
    if let Some(first) = found.next() {
        ctx.new_uri = Some(Bytes::from(first));
    }
    if db.append_branches {
        for uri in found {
            ctx.branches.push(Branch {
                uri: Bytes::from(uri),
                q: 0,
                ..Branch::default()
            });
        }
    }
    1
}

/// `alias_db_find(table, in, out[, flags])`.
fn alias_db_find(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(db) = service(ctx) else { return -1 };
    let (Some(Arg::Pv(input)), Some(Arg::Pv(out))) = (args.get(1), args.get(2)) else {
        return -1;
    };
    let table = args.str(ctx, 0).into_owned();
    let text = match ctx.read_pv(input) {
        Value::Str(s) => s.into_owned(),
        _ => {
            log::error!("alias_db: the input variable holds no string");
            return -1;
        }
    };
    let Ok(uri) = Uri::parse(&text) else {
        log::error!(
            "alias_db: failed to parse uri {}",
            String::from_utf8_lossy(&text)
        );
        return -1;
    };
    let user = uri.user().unwrap_or_default();
    let Some(found) = query(&db, &table, user, uri.host_raw(), flags_of(args, 3)) else {
        return -1;
    };
    let n = if db.append_branches { found.len() } else { 1 };
    for alias in found.into_iter().take(n) {
        if let Err(e) = ctx.write_pv(out, Value::owned(alias)) {
            log::error!("alias_db: setting the result failed: {e}");
            return -1;
        }
    }
    1
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "alias_db",
    aliases: &[],
    functions: &[
        func(
            "alias_db_lookup",
            1,
            2,
            RouteMask::REQUEST.or(RouteMask::FAILURE),
            Some(fixup_lookup),
            alias_db_lookup,
        ),
        func(
            "alias_db_find",
            3,
            4,
            RouteMask::REQUEST
                .or(RouteMask::FAILURE)
                .or(RouteMask::ONREPLY)
                .or(RouteMask::BRANCH),
            Some(fixup_find),
            alias_db_find,
        ),
    ],
    params: &[
        param("db_url", ParamKind::Str),
        param("user_column", ParamKind::Str),
        param("domain_column", ParamKind::Str),
        param("alias_user_column", ParamKind::Str),
        param("alias_domain_column", ParamKind::Str),
        param("use_domain", ParamKind::Int),
        param("domain_prefix", ParamKind::Str),
        param("append_branches", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
#[path = "alias_db_tests.rs"]
mod tests;
