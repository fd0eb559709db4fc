//! drouting: dynamic routing to carriers and gateways (Kamailio 5.6's
//! `drouting` module), from four tables read at start-up and by
//! `drouting.reload`: `dr_gateways`, `dr_rules`, `dr_gw_lists` (how they are
//! read: [`data`]; the `timerec` column: [`timerec`]) and `dr_groups`, which
//! is asked per call.
//!
//! Functions and their codes, as Kamailio 5.6:
//! - `do_routing([group])` (request, failure route): the group is the
//!   argument or the `dr_groups` row of the From URI's user (and host, with
//!   `use_domain` 1, the default). The rule of the longest prefix of the
//!   R-URI's user (else without prefix) for the group, valid now and of the
//!   highest priority, gives a list of gateways. Its `routeid` route runs
//!   first (a code below 1 stops with that code). The first gateway becomes
//!   the R-URI (`sip:` + gateway `pri_prefix` + user less `strip` digits +
//!   `@` + gateway address + the old parameters and headers); the others are
//!   kept in `ruri_avp` for `next_routing()`, their `attrs` in `attrs_avp`
//!   (the first gateway's on top). 1 routed; -1 no rule, no data, a user
//!   not longer than `strip`, no group.
//! - `next_routing()` (failure route) / `use_next_gw()` (request, failure):
//!   the next kept R-URI replaces the R-URI and leaves the AVP, with the top
//!   `attrs_avp` value; 1, or -1 when none is left.
//! - `is_from_gw([type[, flags]])`: the source IP (and port, when the
//!   gateway has one) is a gateway's (of `type`); a non-zero `flags` strips
//!   the gateway's `strip` digits from the R-URI user. 1 or -1.
//! - `goes_to_gw([type])`: the next hop (`$du`, else the R-URI) has the IP
//!   of a gateway (of `type`; a negative type is any); ports are not
//!   compared. 1 or -1.
//!
//! `sort_order`: 0 the list as written; 1 each `;` group in random order;
//! 2 one gateway taken at random from each group (one not taken before).
//!
//! Not done: `enable_keepalive` (refused at start-up).

pub mod data;

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;

use crate::modules::core::dns::Resolver;
use crate::modules::registrar::avp_param;
use crate::modules::sqlops;
use crate::modules::timerec;
use crate::script::ctx::MsgCtx;
use crate::script::pvkind::AvpKey;
use crate::script::registry::{func, param, Arg, Args, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::script::value::Value;
use crate::sip::host::Host;
use crate::sip::nameaddr::NameAddr;
use crate::sip::uri::Uri;
use crate::sip::HeaderName;
use crate::store::{sql_literal, SqlRows, SqlValue, StoreHandle};

use data::{Gateway, RoutingData, Rule, RuleRow};

/// Kamailio's default AVP ids for the kept R-URIs and attributes.
const RURI_AVP: i64 = 0xad34_6b2f_u32 as i32 as i64;
const ATTRS_AVP: i64 = 0xad34_6b30_u32 as i32 as i64;

/// The tables and settings of the module.
#[derive(Clone, Debug)]
pub struct DrParams {
    pub drd_table: String,
    pub drr_table: String,
    pub drg_table: String,
    pub drl_table: String,
    pub drg_user_col: String,
    pub drg_domain_col: String,
    pub drg_grpid_col: String,
    pub use_domain: bool,
    pub sort_order: i64,
    pub force_dns: bool,
    pub ruri_avp: AvpKey,
    pub attrs_avp: AvpKey,
}

impl DrParams {
    pub fn from_modparams(mp: &ModParams) -> Result<DrParams, String> {
        let name = |p: &str, d: &str| crate::modules::db::name_param(mp, "drouting", p, d);
        let avp = |p: &str, d: i64| -> Result<AvpKey, String> {
            match mp.str("drouting", p) {
                None => Ok(AvpKey::Int(d)),
                Some(t) => avp_param(t)
                    .ok_or_else(|| format!("drouting: malformed or non AVP [{t}] for {p}")),
            }
        };
        if mp.int("drouting", "enable_keepalive").unwrap_or(0) != 0 {
            return Err("drouting: enable_keepalive is not implemented in ringsip yet".into());
        }
        Ok(DrParams {
            drd_table: name("drd_table", "dr_gateways")?,
            drr_table: name("drr_table", "dr_rules")?,
            drg_table: name("drg_table", "dr_groups")?,
            drl_table: name("drl_table", "dr_gw_lists")?,
            drg_user_col: name("drg_user_col", "username")?,
            drg_domain_col: name("drg_domain_col", "domain")?,
            drg_grpid_col: name("drg_grpid_col", "groupid")?,
            use_domain: mp.int("drouting", "use_domain").unwrap_or(1) != 0,
            sort_order: mp.int("drouting", "sort_order").unwrap_or(0),
            force_dns: mp.int("drouting", "force_dns").unwrap_or(1) != 0,
            ruri_avp: avp("ruri_avp", RURI_AVP)?,
            attrs_avp: avp("attrs_avp", ATTRS_AVP)?,
        })
    }
}

/// The module's state, shared by every core.
pub struct Drouting {
    pub params: DrParams,
    store: Option<StoreHandle>,
    names: Option<Arc<Resolver>>,
    data: RwLock<Arc<RoutingData>>,
    random: AtomicU64,
}

impl std::fmt::Debug for Drouting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drouting")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

fn cell_int(v: Option<&SqlValue>, what: &str) -> Result<i64, String> {
    match v {
        Some(SqlValue::Int(i) | SqlValue::BigInt(i)) => Ok(*i),
        Some(SqlValue::Null) | None => Err(format!("null column {what}")),
        Some(_) => Err(format!("bad column type of {what}")),
    }
}

/// A text cell; `None` for NULL.
fn cell_str(v: Option<&SqlValue>, what: &str) -> Result<Option<Vec<u8>>, String> {
    match v {
        Some(SqlValue::Str(s)) => Ok(Some(s.clone())),
        Some(SqlValue::Int(i) | SqlValue::BigInt(i)) => Ok(Some(i.to_string().into_bytes())),
        Some(SqlValue::Null) | None => Ok(None),
        Some(SqlValue::Double(_)) => Err(format!("bad column type of {what}")),
    }
}

fn not_null(v: Option<&SqlValue>, what: &str) -> Result<Vec<u8>, String> {
    cell_str(v, what)?.ok_or_else(|| format!("null column {what}"))
}

impl Drouting {
    /// Reads the tables behind `store` (`names` resolves gateway host names).
    pub fn open(
        params: DrParams,
        store: StoreHandle,
        names: Option<Arc<Resolver>>,
        seed: u64,
    ) -> Result<Drouting, String> {
        let d = Drouting::with_data(params, RoutingData::default(), seed);
        let d = Drouting {
            store: Some(store),
            names,
            ..d
        };
        d.reload()?;
        Ok(d)
    }

    /// With data already built (tests).
    /// `seed` starts the random numbers of `sort_order` 1 and 2.
    pub fn with_data(params: DrParams, data: RoutingData, seed: u64) -> Drouting {
        Drouting {
            params,
            store: None,
            names: None,
            data: RwLock::new(Arc::new(data)),
            random: AtomicU64::new(seed),
        }
    }

    /// The data in force.
    pub fn data(&self) -> Arc<RoutingData> {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn query(&self, sql: String) -> Result<SqlRows, String> {
        let Some(store) = &self.store else {
            return Err("no database".into());
        };
        let shown = sql.clone();
        store
            .call(move |s| s.query(&sql), Duration::from_secs(10))
            .ok_or("the store thread did not answer")?
            .map_err(|e| format!("{shown}: {e}"))
    }

    /// Reads the tables again and swaps the data in (an error keeps the
    /// old data); how many rules are in force.
    pub fn reload(&self) -> Result<usize, String> {
        let p = &self.params;
        let rows = self
            .query(format!(
                "SELECT gwid,address,strip,pri_prefix,type,attrs FROM {}",
                p.drd_table
            ))
            .map_err(|e| format!("drouting: {e}"))?;
        let mut gateways = Vec::with_capacity(rows.rows.len());
        for r in &rows.rows {
            let gw = (|| -> Result<Gateway, String> {
                let address = not_null(r.get(1), "address")?;
                if address.is_empty() {
                    return Err("empty str column address".into());
                }
                Ok(Gateway {
                    id: cell_int(r.first(), "gwid")?,
                    address,
                    strip: cell_int(r.get(2), "strip")?,
                    pri_prefix: cell_str(r.get(3), "pri_prefix")?.unwrap_or_default(),
                    gw_type: cell_int(r.get(4), "type")?,
                    attrs: cell_str(r.get(5), "attrs")?.unwrap_or_default(),
                })
            })()
            .map_err(|e| format!("drouting: table {}: {e}", p.drd_table))?;
            gateways.push(gw);
        }
        let mut lists = Vec::new();
        let mut rules = Vec::new();
        if !gateways.is_empty() {
            let rows = self
                .query(format!("SELECT id,gwlist FROM {}", p.drl_table))
                .map_err(|e| format!("drouting: {e}"))?;
            for r in &rows.rows {
                let id = cell_int(r.first(), "id")
                    .map_err(|e| format!("drouting: table {}: {e}", p.drl_table))?;
                let l = not_null(r.get(1), "gwlist")
                    .map_err(|e| format!("drouting: table {}: {e}", p.drl_table))?;
                lists.push((id, l));
            }
            let rows = self
                .query(format!(
                    "SELECT ruleid,groupid,prefix,timerec,priority,routeid,gwlist FROM {}",
                    p.drr_table
                ))
                .map_err(|e| format!("drouting: {e}"))?;
            for r in &rows.rows {
                let row = (|| -> Result<RuleRow, String> {
                    Ok(RuleRow {
                        id: cell_int(r.first(), "ruleid")?,
                        groups: not_null(r.get(1), "groupid")?,
                        prefix: cell_str(r.get(2), "prefix")?.unwrap_or_default(),
                        timerec: not_null(r.get(3), "timerec")?,
                        priority: cell_int(r.get(4), "priority")?,
                        routeid: not_null(r.get(5), "routeid")?,
                        gwlist: not_null(r.get(6), "gwlist")?,
                    })
                })()
                .map_err(|e| format!("drouting: table {}: {e}", p.drr_table))?;
                rules.push(row);
            }
        }
        if rules
            .iter()
            .any(|r| timerec::TimeRec::parse(&r.timerec).is_ok_and(|t| t.has_start()))
        {
            crate::script::timefmt::local_zone_is_utc().map_err(|e| {
                format!(
                    "drouting: a timerec with a start date is read in local time, which \
                     ringsip only knows as UTC ({e})"
                )
            })?;
        }
        let force_dns = p.force_dns;
        let names = self.names.clone();
        let data = RoutingData::build(gateways, &lists, &rules, |gw| {
            gateway_ip(gw, force_dns, names.as_deref())
        });
        let n = data.rules.len();
        *self.data.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(data);
        log::info!("drouting: {n} rules loaded");
        Ok(n)
    }

    fn random(&self, below: usize) -> usize {
        (crate::modules::random::splitmix_next(&self.random) % below as u64) as usize
    }

    /// The order in which the gateways of a rule are used, by `sort_order`
    /// (positions in `rule.gws`).
    pub fn order(&self, rule: &Rule) -> Vec<usize> {
        let n = rule.gws.len().min(32);
        let so = self.params.sort_order;
        if so < 1 || n < 2 {
            return (0..n).collect();
        }
        let grp = |i: usize| rule.gws[i].1;
        let gw = |i: usize| rule.gws[i].0;
        let mut out: Vec<usize> = Vec::with_capacity(n);
        let mut j = 0;
        while j < n {
            let mut i = j + 1;
            while i < n && grp(i) == grp(j) {
                i += 1;
            }
            let size = i - j;
            if size == 1 {
                out.push(j);
            } else {
                let first = j + self.random(size);
                out.push(first);
                if so == 1 {
                    let second = if size == 2 {
                        j + (first - j + 1) % 2
                    } else {
                        loop {
                            let s = j + self.random(size);
                            if s != first {
                                break s;
                            }
                        }
                    };
                    out.push(second);
                    out.extend((j..i).filter(|&l| l != first && l != second));
                }
            }
            if so == 2 && out.len() > 1 {
                let last = out.len() - 1;
                let taken = |out: &[usize], at: usize| out[..last].iter().any(|&l| gw(l) == gw(at));
                // A group whose gateways were all taken gives none.
                if (j..i).all(|l| taken(&out, l)) {
                    out.pop();
                } else {
                    while taken(&out, out[last]) {
                        out[last] = j + self.random(size);
                    }
                }
            }
            j = i;
        }
        out
    }
}

/// The IP and port of a gateway for the source checks, resolving a host name.
fn gateway_ip(
    gw: &Gateway,
    force_dns: bool,
    names: Option<&Resolver>,
) -> Result<Option<(IpAddr, u16)>, String> {
    let a = &gw.address;
    let has_scheme = a.len() >= 5
        && (a[..4].eq_ignore_ascii_case(b"sip:") || a[..5].eq_ignore_ascii_case(b"sips:"));
    let text = if has_scheme {
        a.clone()
    } else {
        [b"sip:".as_slice(), a].concat()
    };
    let uri = Uri::parse(&text)
        .map_err(|_| format!("invalid uri <{}>", String::from_utf8_lossy(&text)))?;
    let port = uri.port().unwrap_or(0);
    let ip = match uri.host() {
        Some(Host::V4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::V6(ip)) => Some(IpAddr::V6(ip)),
        _ => names.and_then(|r| r.resolve_uncached(uri.host_raw()).first().copied()),
    };
    match ip {
        Some(ip) => Ok(Some((ip, port))),
        None if force_dns => Err(format!(
            "cannot resolve <{}>",
            String::from_utf8_lossy(uri.host_raw())
        )),
        None => Ok(None),
    }
}

fn service<'e>(ctx: &MsgCtx<'e>) -> Option<&'e Drouting> {
    let d = ctx.env.services.get::<Drouting>();
    if d.is_none() {
        log::error!("drouting: no routing data (db_url is not set)");
    }
    d
}

/// The new R-URI for a gateway, or `None` when stripping leaves no user.
fn gateway_ruri(uri: &Uri<'_>, gw: &Gateway) -> Option<Vec<u8>> {
    let user = uri.user().unwrap_or_default();
    let strip = usize::try_from(gw.strip.max(0)).unwrap_or(usize::MAX);
    if user.len() <= strip {
        log::error!(
            "drouting: stripping {} makes username <{}> null",
            gw.strip,
            String::from_utf8_lossy(user)
        );
        return None;
    }
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b"sip:");
    out.extend_from_slice(&gw.pri_prefix);
    out.extend_from_slice(&user[strip..]);
    if let Some(pw) = uri.password().filter(|p| !p.is_empty()) {
        out.push(b':');
        out.extend_from_slice(pw);
    }
    out.push(b'@');
    out.extend_from_slice(&gw.address);
    let params = uri.params_raw();
    let params = params.strip_prefix(b";").unwrap_or(params);
    if !params.is_empty() {
        out.push(b';');
        out.extend_from_slice(params);
    }
    if let Some(h) = uri.headers_raw().filter(|h| !h.is_empty()) {
        out.push(b'?');
        out.extend_from_slice(h);
    }
    Some(out)
}

/// The group of the From URI's user in the groups table.
fn from_group(ctx: &MsgCtx<'_>, d: &Drouting) -> Option<u32> {
    let from = ctx
        .msg
        .header_value(HeaderName::From)
        .and_then(|v| NameAddr::parse(v).ok())
        .map(|na| na.uri_raw().to_vec());
    let Some(from) = from else {
        log::error!("drouting: unable to parse from hdr");
        return None;
    };
    let Ok(uri) = Uri::parse(&from) else {
        log::error!("drouting: unable to parse from uri");
        return None;
    };
    let store = d.store.as_ref()?;
    let p = &d.params;
    let user = sql_literal(uri.user().unwrap_or_default())?;
    let mut sql = format!(
        "SELECT {} FROM {} WHERE {}={user}",
        p.drg_grpid_col, p.drg_table, p.drg_user_col
    );
    if p.use_domain {
        let host = sql_literal(uri.host_raw())?;
        sql.push_str(&format!(" AND {}={host}", p.drg_domain_col));
    }
    let rows = sqlops::run_on(store, "drouting", sql.into_bytes())?;
    match rows.rows.first().and_then(|r| r.first()) {
        None => {
            log::error!(
                "drouting: no group for user \"{}\"@\"{}\"",
                String::from_utf8_lossy(uri.user().unwrap_or_default()),
                String::from_utf8_lossy(uri.host_raw())
            );
            None
        }
        Some(SqlValue::Int(g) | SqlValue::BigInt(g)) => Some(*g as u32),
        Some(_) => {
            log::error!("drouting: null or non-integer group_id");
            None
        }
    }
}

/// `do_routing([group])`.
fn do_routing(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = service(ctx) else { return -1 };
    let group = if args.is_empty() {
        match from_group(ctx, d) {
            Some(g) => g,
            None => {
                log::error!("drouting: failed to get group id");
                return -1;
            }
        }
    } else {
        match args.int(ctx, 0) {
            Some(g) => g as u32,
            None => {
                log::error!("drouting: failed to get group id parameter");
                return -1;
            }
        }
    };
    route_group(ctx, d, group)
}

fn route_group(ctx: &mut MsgCtx<'_>, d: &Drouting, group: u32) -> i32 {
    let data = d.data();
    if data.gateways.is_empty() {
        log::debug!("drouting: empty routing table");
        return -1;
    }
    let ruri = ctx.ruri().to_vec();
    let Ok(uri) = Uri::parse(&ruri) else {
        log::error!("drouting: unable to parse RURI");
        return -1;
    };
    let now = ctx.unix_now.as_secs() as i64;
    let Some(rule) = data.lookup(uri.user().unwrap_or_default(), group, now) else {
        log::debug!("drouting: no rule for group {group}");
        return -1;
    };
    if let Some(id) = rule
        .route
        .as_deref()
        .and_then(|name| ctx.program.route_named(name))
    {
        let code = match crate::script::vm::run_route(ctx, id) {
            crate::script::vm::Outcome::Done(c) => c,
            _ => 0,
        };
        if code < 1 {
            log::debug!("drouting: the rule's route drops routing by {code}");
            return code;
        }
    }
    let order = d.order(rule);
    let gw_at = |k: usize| &data.gateways[rule.gws[order[k]].0];
    ctx.attrs.avp_remove_all(&d.params.ruri_avp);
    for k in (1..order.len()).rev() {
        let Some(u) = gateway_ruri(&uri, gw_at(k)) else {
            return -1;
        };
        ctx.attrs
            .avp_push(d.params.ruri_avp.clone(), Value::owned(u));
        ctx.attrs.avp_push(
            d.params.attrs_avp.clone(),
            Value::owned(gw_at(k).attrs.clone()),
        );
    }
    let Some(&first) = order.first() else {
        log::warn!("drouting: no destinations available");
        return -1;
    };
    let gw = &data.gateways[rule.gws[first].0];
    let new = gateway_ruri(&uri, gw);
    ctx.attrs
        .avp_push(d.params.attrs_avp.clone(), Value::owned(gw.attrs.clone()));
    match new {
        Some(u) => {
            ctx.new_uri = Some(Bytes::from(u));
            1
        }
        None => -1,
    }
}

fn is_str(v: &Value<'_>) -> bool {
    matches!(v, Value::Str(_))
}

/// `next_routing()` / `use_next_gw()`.
fn next_routing(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(d) = service(ctx) else { return -1 };
    let (rk, ak) = (&d.params.ruri_avp, &d.params.attrs_avp);
    let Some(uri) = ctx
        .attrs
        .avp_values(rk)
        .find(|v| is_str(v))
        .map(|v| v.to_bytes().into_owned())
    else {
        return -1;
    };
    ctx.new_uri = Some(Bytes::from(uri));
    remove_newest_str(ctx, rk);
    remove_newest_str(ctx, ak);
    1
}

/// Removes the newest string value of AVP `key`.
fn remove_newest_str(ctx: &mut MsgCtx<'_>, key: &AvpKey) {
    let target = ctx
        .attrs
        .avps()
        .iter()
        .rposition(|(k, v)| k.matches(key) && is_str(v));
    let Some(target) = target else { return };
    let mut i = 0usize;
    ctx.attrs.avp_retain(|_, _| {
        let keep = i != target;
        i += 1;
        keep
    });
}

fn src_matches(a: &data::GwAddr, ip: IpAddr, port: u16) -> bool {
    (a.port == 0 || a.port == port) && a.ip == ip
}

/// `is_from_gw([type[, flags]])`.
fn is_from_gw(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = service(ctx) else { return -1 };
    let gw_type = if args.is_empty() {
        None
    } else {
        match args.int(ctx, 0) {
            Some(t) => Some(t),
            None => {
                log::error!("drouting: failed to get parameter value");
                return -1;
            }
        }
    };
    let flags = if args.len() > 1 {
        match args.int(ctx, 1) {
            Some(f) => f,
            None => {
                log::error!("drouting: failed to get flags parameter value");
                return -1;
            }
        }
    } else {
        0
    };
    let data = d.data();
    let (ip, port) = (ctx.src.ip(), ctx.src.port());
    let found = data
        .addrs
        .iter()
        .find(|a| gw_type.is_none_or(|t| t == a.gw_type) && src_matches(a, ip, port));
    match found {
        Some(a) => {
            if flags != 0 && a.strip > 0 {
                if let Some(f) = crate::modules::core::MODULE.function("strip") {
                    (f.call)(ctx, &Args(vec![Arg::Int(a.strip)]));
                }
            }
            1
        }
        None => -1,
    }
}

/// `goes_to_gw([type])`.
fn goes_to_gw(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = service(ctx) else { return -1 };
    let gw_type = if args.is_empty() {
        -1
    } else {
        match args.int(ctx, 0) {
            Some(t) => t,
            None => {
                log::error!("drouting: failed to get parameter value");
                return -1;
            }
        }
    };
    let hop = match &ctx.dst_uri {
        Some(du) => du.to_vec(),
        None => ctx.ruri().to_vec(),
    };
    let Ok(uri) = Uri::parse(&hop) else {
        log::error!("drouting: bad uri <{}>", String::from_utf8_lossy(&hop));
        return -1;
    };
    let ip = match uri.host() {
        Some(Host::V4(ip)) => IpAddr::V4(ip),
        Some(Host::V6(ip)) => IpAddr::V6(ip),
        _ => return -1,
    };
    let data = d.data();
    let hit = data
        .addrs
        .iter()
        .any(|a| (gw_type < 0 || gw_type == a.gw_type) && a.ip == ip);
    if hit {
        1
    } else {
        -1
    }
}

const REQ_FAIL: RouteMask = RouteMask::REQUEST.or(RouteMask::FAILURE);
const REQ_FAIL_REPLY: RouteMask = REQ_FAIL.or(RouteMask::ONREPLY);

pub static MODULE: ModuleDef = ModuleDef {
    name: "drouting",
    aliases: &[],
    functions: &[
        func("do_routing", 0, 1, REQ_FAIL, None, do_routing),
        func("use_next_gw", 0, 0, REQ_FAIL, None, next_routing),
        func("next_routing", 0, 0, RouteMask::FAILURE, None, next_routing),
        func("is_from_gw", 0, 2, REQ_FAIL_REPLY, None, is_from_gw),
        func("goes_to_gw", 0, 1, REQ_FAIL_REPLY, None, goes_to_gw),
    ],
    params: &[
        param("db_url", ParamKind::Str),
        param("drd_table", ParamKind::Str),
        param("drr_table", ParamKind::Str),
        param("drg_table", ParamKind::Str),
        param("drl_table", ParamKind::Str),
        param("use_domain", ParamKind::Int),
        param("drg_user_col", ParamKind::Str),
        param("drg_domain_col", ParamKind::Str),
        param("drg_grpid_col", ParamKind::Str),
        param("ruri_avp", ParamKind::Str),
        param("attrs_avp", ParamKind::Str),
        param("sort_order", ParamKind::Int),
        param("fetch_rows", ParamKind::Int),
        param("force_dns", ParamKind::Int),
        param("enable_keepalive", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests;
