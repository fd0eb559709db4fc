//! domain: the local domains of a multi-domain proxy, read from the
//! `domain` and `domain_attrs` tables (as `kamdbctl` makes them) at start-up
//! and by `domain.reload`, shared by every core (Kamailio 5.6's domain
//! module; the table itself is in [`table`]).
//!
//! Functions and their codes:
//! - `is_from_local()`: 1 when the host of the From URI is a local domain,
//!   -1 when not, -2 when the From header cannot be read.
//! - `is_uri_host_local()`: the same for the Request-URI (in a
//!   `failure_route`, the first branch of the destination set; -1 without).
//! - `is_domain_local(domain)`: the same for any string.
//! - `lookup_domain(domain[, prefix])`: 1 when local, and then each
//!   attribute of its did becomes an AVP named `prefix` + name (integer for
//!   `type` 0, string for 2), and the did itself `$avp(prefix + "did")`;
//!   -1 when not local.
//!
//! With `register_myself` 1, `myself` (`uri==myself`, `from_uri==myself`,
//! `is_myself()`, `loose_route`…) also matches every domain of the table,
//! whatever the port, after the listen addresses and aliases
//! ([`crate::script::ctx::Env::is_myself`]).
//!
//! At start-up the `version` table must give `domain` version 2 and
//! `domain_attrs` version 1, as Kamailio checks.

pub mod table;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::pvkind::AvpKey;
use crate::script::registry::{
    func, param, Args, ModParams, ModuleDef, ParamKind, RouteMask, RouteType,
};
use crate::script::value::Value;
use crate::sip::nameaddr::NameAddr;
use crate::sip::uri::Uri;
use crate::sip::HeaderName;
use crate::store::{is_identifier, SqlRows, StoreHandle};

pub use table::{AttrValue, DomainTable, Found};

/// How long a load may wait for the store thread.
const LOAD_WAIT: Duration = Duration::from_secs(10);

/// Table and column names (modparams `domain_table`, `*_col`…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainParams {
    pub domain_table: String,
    pub attrs_table: String,
    pub did_col: String,
    pub domain_col: String,
    pub name_col: String,
    pub type_col: String,
    pub value_col: String,
    pub register_myself: bool,
}

impl Default for DomainParams {
    fn default() -> DomainParams {
        DomainParams {
            domain_table: "domain".into(),
            attrs_table: "domain_attrs".into(),
            did_col: "did".into(),
            domain_col: "domain".into(),
            name_col: "name".into(),
            type_col: "type".into(),
            value_col: "value".into(),
            register_myself: false,
        }
    }
}

impl DomainParams {
    /// From the modparams; every name must be usable in SQL text.
    pub fn from_modparams(mp: &ModParams) -> Result<DomainParams, String> {
        let d = DomainParams::default();
        let name = |p: &str, default: &str| -> Result<String, String> {
            let v = mp.str("domain", p).unwrap_or(default).to_string();
            if is_identifier(&v) {
                Ok(v)
            } else {
                Err(format!("domain: {p} {v:?} is not a usable name"))
            }
        };
        Ok(DomainParams {
            domain_table: name("domain_table", &d.domain_table)?,
            attrs_table: name("domain_attrs_table", &d.attrs_table)?,
            did_col: name("did_col", &d.did_col)?,
            domain_col: name("domain_col", &d.domain_col)?,
            name_col: name("name_col", &d.name_col)?,
            type_col: name("type_col", &d.type_col)?,
            value_col: name("value_col", &d.value_col)?,
            register_myself: mp.int("domain", "register_myself").unwrap_or(0) != 0,
        })
    }
}

/// The local domains, shared by every core.
#[derive(Debug)]
pub struct Domains {
    pub params: DomainParams,
    store: Option<StoreHandle>,
    current: RwLock<Arc<DomainTable>>,
    /// One reload at a time.
    reloading: Mutex<()>,
}

impl Domains {
    /// A table given directly (tests).
    pub fn from_table(params: DomainParams, table: DomainTable) -> Domains {
        Domains {
            params,
            store: None,
            current: RwLock::new(Arc::new(table)),
            reloading: Mutex::new(()),
        }
    }

    /// Checks the table versions and loads the tables from `store`.
    pub fn open(params: DomainParams, store: StoreHandle) -> Result<Domains, String> {
        let d = Domains {
            params,
            store: Some(store),
            current: RwLock::new(Arc::new(DomainTable::default())),
            reloading: Mutex::new(()),
        };
        d.check_version(&d.params.domain_table, 2)?;
        d.check_version(&d.params.attrs_table, 1)?;
        d.reload()?;
        Ok(d)
    }

    fn query(&self, sql: String) -> Result<SqlRows, String> {
        let store = self.store.as_ref().ok_or("domain: no database")?;
        let shown = sql.clone();
        store
            .call(move |s| s.query(&sql), LOAD_WAIT)
            .ok_or("domain: the database did not answer in time")?
            .map_err(|e| format!("domain: {shown}: {e}"))
    }

    fn check_version(&self, table: &str, want: i64) -> Result<(), String> {
        let rows = self.query(format!(
            "SELECT table_version FROM version WHERE table_name='{table}'"
        ))?;
        let found = rows.rows.first().and_then(|r| match r.first() {
            Some(crate::store::SqlValue::Int(v) | crate::store::SqlValue::BigInt(v)) => Some(*v),
            Some(crate::store::SqlValue::Str(s)) => {
                std::str::from_utf8(s).ok()?.trim().parse().ok()
            }
            _ => None,
        });
        match found {
            Some(v) if v == want => Ok(()),
            Some(v) => Err(format!(
                "domain: table {table} has version {v}, expected {want}"
            )),
            None => Err(format!(
                "domain: no version of table {table} in the version table (expected {want})"
            )),
        }
    }

    /// Reads both tables again and puts the new table in force (a failed
    /// load leaves the old one); how many domains there are.
    pub fn reload(&self) -> Result<usize, String> {
        let _one = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let p = &self.params;
        let attrs = self.query(format!(
            "SELECT {}, {}, {}, {} FROM {}",
            p.did_col, p.name_col, p.type_col, p.value_col, p.attrs_table
        ))?;
        let domains = self.query(format!(
            "SELECT {}, {} FROM {}",
            p.domain_col, p.did_col, p.domain_table
        ))?;
        let t =
            DomainTable::build(&attrs.rows, &domains.rows).map_err(|e| format!("domain: {e}"))?;
        let n = t.len();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(t);
        log::info!("domain: {n} domains loaded");
        Ok(n)
    }

    /// The table in force.
    pub fn table(&self) -> Arc<DomainTable> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether `host` is a local domain.
    pub fn is_local(&self, host: &[u8]) -> bool {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .lookup(host)
            .is_some()
    }

    /// `myself` with `register_myself`: `host` is a local domain.
    pub fn is_myself(&self, host: &[u8]) -> bool {
        self.params.register_myself && self.is_local(host)
    }
}

fn service<'e>(ctx: &MsgCtx<'e>) -> Option<&'e Domains> {
    let d = ctx.env.services.get::<Domains>();
    if d.is_none() {
        log::error!("domain: no domain table (db_url)");
    }
    d
}

fn code(local: bool) -> i32 {
    if local {
        1
    } else {
        -1
    }
}

/// `is_from_local()`.
fn is_from_local(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(d) = service(ctx) else { return -1 };
    let uri = ctx
        .msg
        .header_value(HeaderName::From)
        .and_then(|v| NameAddr::parse(v).ok())
        .and_then(|na| {
            Uri::parse(na.uri_raw())
                .ok()
                .map(|u| d.is_local(u.host_raw()))
        });
    match uri {
        Some(local) => code(local),
        None => {
            log::error!("domain: error while parsing From header");
            -2
        }
    }
}

/// `is_uri_host_local()`: the R-URI, or in a failure route the first branch.
fn is_uri_host_local(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(d) = service(ctx) else { return -1 };
    let uri: &[u8] = if ctx.route_type == RouteType::Failure {
        match ctx.branches.first() {
            Some(b) => &b.uri,
            None => {
                log::error!("domain: branch is missing, error in script");
                return -1;
            }
        }
    } else {
        ctx.ruri()
    };
    match Uri::parse(uri) {
        Ok(u) => code(d.is_local(u.host_raw())),
        Err(_) => {
            log::error!("domain: error while parsing the URI");
            -1
        }
    }
}

/// `is_domain_local(domain)`.
fn is_domain_local(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = service(ctx) else { return -1 };
    let host = args.str(ctx, 0);
    code(d.is_local(&host))
}

/// `lookup_domain(domain[, prefix])`.
fn lookup_domain(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = service(ctx) else { return -1 };
    let host = args.str(ctx, 0).into_owned();
    let prefix = if args.len() > 1 {
        args.str(ctx, 1).into_owned()
    } else {
        Vec::new()
    };
    let table = d.table();
    let Some(found) = table.lookup(&host) else {
        return -1;
    };
    let name = |n: &str| {
        let mut k = prefix.clone();
        k.extend_from_slice(n.as_bytes());
        AvpKey::Str(Bytes::from(k))
    };
    for a in found.attrs {
        let v = match &a.value {
            AttrValue::Int(i) => Value::Int(i64::from(*i)),
            AttrValue::Str(s) => Value::owned(s.as_bytes().to_vec()),
        };
        ctx.attrs.avp_push(name(&a.name), v);
    }
    ctx.attrs
        .avp_push(name("did"), Value::owned(found.did.as_bytes().to_vec()));
    1
}

/// Request, branch and failure routes (Kamailio also allows local routes).
const ROUTES: RouteMask = RouteMask::REQUEST
    .or(RouteMask::BRANCH)
    .or(RouteMask::FAILURE);

pub static MODULE: ModuleDef = ModuleDef {
    name: "domain",
    aliases: &[],
    functions: &[
        func("is_from_local", 0, 0, ROUTES, None, is_from_local),
        func("is_uri_host_local", 0, 0, ROUTES, None, is_uri_host_local),
        func("is_domain_local", 1, 1, ROUTES, None, is_domain_local),
        func("lookup_domain", 1, 2, ROUTES, None, lookup_domain),
    ],
    params: &[
        param("db_url", ParamKind::Str),
        param("domain_table", ParamKind::Str),
        param("domain_attrs_table", ParamKind::Str),
        param("did_col", ParamKind::Str),
        param("domain_col", ParamKind::Str),
        param("name_col", ParamKind::Str),
        param("type_col", ParamKind::Str),
        param("value_col", ParamKind::Str),
        param("register_myself", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests;
