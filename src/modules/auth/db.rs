//! auth_db (credentials from the `subscriber` table) and uri_db (`check_to`,
//! `check_from`). Workers never query the database: each credentials table is
//! held in memory as a snapshot, loaded at start-up (or on first use of
//! another table) and reloaded by the store thread when the database changes
//! (`ringsip user add` from another process shows within a second).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::{
    authorize, func, ha1_of, param, uri_user, Kind, Secret, AUTHORIZED, ERROR, REQ, USER_MISMATCH,
    USER_UNKNOWN,
};
use crate::modules::auth::digest::Algorithm;
use crate::script::ctx::MsgCtx;
use crate::script::registry::{Args, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::sip::uri::Uri;
use crate::sip::HeaderName;
use crate::store::{StoreHandle, SubscriberColumns, SubscriberRow};

/// How long start-up (or a first use) waits for a table load.
const LOAD_WAIT: Duration = Duration::from_secs(10);

/// One credentials row, as kept in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cred {
    /// `password_column`: a plain password or an HA1, as `calculate_ha1` says.
    secret: Box<str>,
    ha1b: Box<str>,
}

/// username → domain → credentials (domain "" when `use_domain` is off and only one row).
type Table = HashMap<Box<str>, Vec<(Box<str>, Cred)>>;

/// Snapshots by table name.
type Tables = RwLock<Vec<(Box<str>, Arc<Table>)>>;

/// auth_db parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthDbParams {
    pub columns: SubscriberColumns,
    pub calculate_ha1: bool,
    pub use_domain: bool,
}

impl AuthDbParams {
    pub fn from_modparams(mp: &ModParams) -> AuthDbParams {
        let d = SubscriberColumns::default();
        let s = |n: &str, d: &str| mp.str("auth_db", n).unwrap_or(d).to_string();
        AuthDbParams {
            columns: SubscriberColumns {
                table: d.table,
                user: s("user_column", &d.user),
                domain: s("domain_column", &d.domain),
                password: s("password_column", &d.password),
                password2: s("password_column_2", &d.password2),
            },
            calculate_ha1: mp.int("auth_db", "calculate_ha1").unwrap_or(0) != 0,
            use_domain: mp.int("auth_db", "use_domain").unwrap_or(0) != 0,
        }
    }
}

/// The credentials tables, shared by every core.
#[derive(Debug)]
pub struct AuthDb {
    pub params: AuthDbParams,
    store: Option<StoreHandle>,
    tables: Arc<Tables>,
}

impl AuthDb {
    /// Loads the `subscriber` table and asks the store thread to reload it when the database changes.
    pub fn new(params: AuthDbParams, store: Option<StoreHandle>) -> Result<AuthDb, String> {
        let db = AuthDb {
            params,
            store,
            tables: Arc::new(RwLock::new(Vec::new())),
        };
        if db.store.is_some() {
            db.table("subscriber")
                .ok_or("auth_db: cannot load table subscriber")?;
            db.watch();
        }
        Ok(db)
    }

    /// Credentials from rows given directly (tests, or no database).
    pub fn from_rows(params: AuthDbParams, table: &str, rows: &[SubscriberRow]) -> AuthDb {
        let t = build(rows);
        AuthDb {
            params,
            store: None,
            tables: Arc::new(RwLock::new(vec![(table.into(), Arc::new(t))])),
        }
    }

    fn watch(&self) {
        let Some(store) = &self.store else { return };
        let tables = self.tables.clone();
        let cols = self.params.columns.clone();
        let mut seen = None;
        store.every(Duration::from_secs(1), move |s| {
            let Ok(v) = s.data_version() else { return };
            // The first look reloads too: the table may have changed between
            // the load at start-up and this first run.
            if seen.replace(v) == Some(v) {
                return;
            }
            let names: Vec<Box<str>> = read(&tables).iter().map(|(n, _)| n.clone()).collect();
            for name in names {
                let c = SubscriberColumns {
                    table: name.to_string(),
                    ..cols.clone()
                };
                match s.subscribers(&c) {
                    Ok(rows) => {
                        let t = Arc::new(build(&rows));
                        let mut all = tables.write().unwrap_or_else(|e| e.into_inner());
                        if let Some(slot) = all.iter_mut().find(|(n, _)| *n == name) {
                            slot.1 = t;
                        }
                        log::info!("auth_db: reloaded {} credentials of {name}", rows.len());
                    }
                    Err(e) => log::error!("auth_db: reloading {name}: {e}"),
                }
            }
        });
    }

    /// The snapshot of table `name`, loaded on first use.
    fn table(&self, name: &str) -> Option<Arc<Table>> {
        if let Some((_, t)) = read(&self.tables).iter().find(|(n, _)| &**n == name) {
            return Some(t.clone());
        }
        if !crate::store::is_identifier(name) {
            return None;
        }
        let store = self.store.as_ref()?;
        let cols = SubscriberColumns {
            table: name.to_string(),
            ..self.params.columns.clone()
        };
        let rows = match store.call(move |s| s.subscribers(&cols), LOAD_WAIT) {
            Some(Ok(rows)) => rows,
            Some(Err(e)) => {
                log::error!("auth_db: loading {name}: {e}");
                return None;
            }
            None => {
                log::error!("auth_db: loading {name}: no answer from the store thread");
                return None;
            }
        };
        log::info!("auth_db: loaded {} credentials of {name}", rows.len());
        let t = Arc::new(build(&rows));
        self.tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.into(), t.clone()));
        Some(t)
    }

    /// HA1 for `user` in `realm` from table `table`, or the auth code (-3 unknown, -1 error).
    pub fn ha1(
        &self,
        table: &str,
        user: &[u8],
        realm: &[u8],
        alg: Algorithm,
    ) -> Result<String, i32> {
        let t = self.table(table).ok_or(ERROR)?;
        // As Kamailio: the row of the digest user name's user part, and with
        // `use_domain` of its domain part, or of the realm when it has none.
        let (name, name_domain) = split_digest_username(user);
        let rows = t.get(&*String::from_utf8_lossy(name)).ok_or(USER_UNKNOWN)?;
        let cred = if self.params.use_domain {
            let domain = String::from_utf8_lossy(name_domain.unwrap_or(realm));
            rows.iter().find(|(d, _)| d.eq_ignore_ascii_case(&domain))
        } else {
            rows.first()
        };
        let (_, cred) = cred.ok_or(USER_UNKNOWN)?;
        if self.params.calculate_ha1 {
            // HA1 of the whole user name with the realm.
            return Ok(ha1_of(
                &Secret::Password(cred.secret.as_bytes()),
                user,
                realm,
                alg,
            ));
        }
        // A user name with @domain uses the second HA1 column (ha1b).
        let stored = if name_domain.is_some() {
            &cred.ha1b
        } else {
            &cred.secret
        };
        Ok(stored.to_string())
    }

    /// Whether `user` (in `domain`, with `use_domain`) is in `table`.
    pub fn exists(&self, table: &str, user: &[u8], domain: &[u8]) -> bool {
        let Some(t) = self.table(table) else {
            return false;
        };
        let user = String::from_utf8_lossy(user);
        let domain = String::from_utf8_lossy(domain);
        t.get(&*user).is_some_and(|rows| {
            !self.params.use_domain || rows.iter().any(|(d, _)| d.eq_ignore_ascii_case(&domain))
        })
    }
}

/// A digest user name as Kamailio splits it: the user before the first
/// `@` and the domain after it (`None` when absent or empty, and for names
/// of two bytes or less, which Kamailio leaves whole).
pub fn split_digest_username(whole: &[u8]) -> (&[u8], Option<&[u8]>) {
    if whole.len() <= 2 {
        return (whole, None);
    }
    match whole.iter().position(|&b| b == b'@') {
        Some(at) => {
            let domain = &whole[at + 1..];
            (&whole[..at], (!domain.is_empty()).then_some(domain))
        }
        None => (whole, None),
    }
}

fn read(l: &Tables) -> std::sync::RwLockReadGuard<'_, Vec<(Box<str>, Arc<Table>)>> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn build(rows: &[SubscriberRow]) -> Table {
    let mut t: Table = HashMap::with_capacity(rows.len());
    for r in rows {
        t.entry(r.username.as_str().into()).or_default().push((
            r.domain.as_str().into(),
            Cred {
                secret: r.ha1.as_str().into(),
                ha1b: r.ha1b.as_str().into(),
            },
        ));
    }
    t
}

/// `www_authorize(realm, table)` / `proxy_authorize` and their `_authenticate` names.
fn db_authorize(ctx: &mut MsgCtx<'_>, args: &Args, kind: Kind) -> i32 {
    let Some(db) = ctx.env.services.get::<AuthDb>() else {
        log::error!("auth_db: not set up (no db_url?)");
        return ERROR;
    };
    let realm = args.str(ctx, 0).into_owned();
    let table = String::from_utf8_lossy(&args.str(ctx, 1)).into_owned();
    let secret = |user: &[u8], realm: &[u8], alg| db.ha1(&table, user, realm, alg);
    authorize(ctx, &realm, kind, &secret)
}

fn www_authorize(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    db_authorize(ctx, args, Kind::Www)
}

fn proxy_authorize(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    db_authorize(ctx, args, Kind::Proxy)
}

/// `auth_check(realm, table, flags)` (KAMAILIO-REFERENCE §6): www for REGISTER,
/// proxy otherwise; flag 1 adds the identity checks (-8), flag 2 skips them
/// for INVITE, BYE, PRACK, UPDATE and MESSAGE.
fn auth_check(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let method = ctx.msg.method_bytes();
    if method == b"ACK" || method == b"CANCEL" {
        return AUTHORIZED;
    }
    let flags = super::flags_of(ctx, args, 2);
    let kind = if method == b"REGISTER" {
        Kind::Www
    } else {
        Kind::Proxy
    };
    let rc = db_authorize(ctx, args, kind);
    if rc != AUTHORIZED || flags & 1 == 0 {
        return rc;
    }
    if flags & 2 != 0
        && matches!(
            method,
            b"INVITE" | b"BYE" | b"PRACK" | b"UPDATE" | b"MESSAGE"
        )
    {
        return rc;
    }
    let Some(auth_user) = ctx.authorized.as_ref().map(|a| a.username.clone()) else {
        return ERROR;
    };
    let use_domain = ctx
        .env
        .services
        .get::<AuthDb>()
        .is_some_and(|db| db.params.use_domain);
    match identity_matches(ctx, &auth_user, use_domain) {
        Some(true) => rc,
        Some(false) => USER_MISMATCH,
        None => ERROR,
    }
}

/// The URI parts auth_check compares.
struct UserHost {
    user: Vec<u8>,
    host: Vec<u8>,
}

fn header_user_host(ctx: &MsgCtx<'_>, id: HeaderName) -> Option<UserHost> {
    let v = ctx.msg.header_value(id)?;
    let na = crate::sip::nameaddr::NameAddr::parse(v).ok()?;
    let uri = Uri::parse(na.uri_raw()).ok()?;
    Some(UserHost {
        user: uri.user().unwrap_or_default().to_vec(),
        host: uri.host_raw().to_vec(),
    })
}

/// auth_check's identity checks (flag 1), as Kamailio 5.6 makes them, case
/// sensitive: the digest user name's user part is the To user (REGISTER,
/// PUBLISH) or the From user; for REGISTER and PUBLISH the From user is
/// the To user and, with `use_domain`, the From host the To host; for
/// PUBLISH the From user (and host) is also the R-URI's. `None`: a URI
/// that cannot be read (-1).
fn identity_matches(ctx: &MsgCtx<'_>, auth_user: &[u8], use_domain: bool) -> Option<bool> {
    let (suser, _) = split_digest_username(auth_user);
    let from = header_user_host(ctx, HeaderName::From)?;
    let method = ctx.msg.method_bytes();
    let registrar = matches!(method, b"REGISTER" | b"PUBLISH");
    let to = if registrar {
        Some(header_user_host(ctx, HeaderName::To)?)
    } else {
        None
    };
    let checked = to.as_ref().unwrap_or(&from);
    if suser != checked.user.as_slice() {
        return Some(false);
    }
    if let Some(to) = &to {
        if from.user != to.user || (use_domain && from.host != to.host) {
            return Some(false);
        }
        if method == b"PUBLISH" {
            let ruri = Uri::parse(ctx.ruri()).ok()?;
            if from.user.as_slice() != ruri.user().unwrap_or_default()
                || (use_domain && from.host.as_slice() != ruri.host_raw())
            {
                return Some(false);
            }
        }
    }
    Some(true)
}

/// `is_subscriber(uri, table, flags)`: 1 if the URI's user is in the table.
fn is_subscriber(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(db) = ctx.env.services.get::<AuthDb>() else {
        return ERROR;
    };
    let uri = args.str(ctx, 0).into_owned();
    let table = String::from_utf8_lossy(&args.str(ctx, 1)).into_owned();
    let Ok(u) = Uri::parse(&uri) else {
        return ERROR;
    };
    let Some(user) = u.user() else { return ERROR };
    if db.exists(&table, user, u.host_raw()) {
        1
    } else {
        -1
    }
}

/// uri_db `check_to()` / `check_from()`: the URI user is the authorized digest
/// user (case-insensitive). 1 match, -2 no authorized credentials, -4 no user in the URI, -8 mismatch.
fn check_user(ctx: &MsgCtx<'_>, id: HeaderName) -> i32 {
    let Some(auth) = &ctx.authorized else {
        return -2;
    };
    let Some(user) = uri_user(ctx, id) else {
        return -4;
    };
    // A digest user name may carry @domain (ha1b users): compare its user part.
    let digest_user = auth
        .username
        .split(|&b| b == b'@')
        .next()
        .unwrap_or_default();
    if user.eq_ignore_ascii_case(&auth.username) || user.eq_ignore_ascii_case(digest_user) {
        1
    } else {
        USER_MISMATCH
    }
}

fn check_to(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    check_user(ctx, HeaderName::To)
}

fn check_from(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    check_user(ctx, HeaderName::From)
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "auth_db",
    aliases: &[],
    functions: &[
        func("www_authorize", 2, 2, REQ, www_authorize),
        func("www_authenticate", 2, 3, REQ, www_authorize),
        func("proxy_authorize", 2, 2, REQ, proxy_authorize),
        func("proxy_authenticate", 2, 3, REQ, proxy_authorize),
        func("auth_check", 3, 3, REQ, auth_check),
        func("is_subscriber", 3, 3, RouteMask::ANY, is_subscriber),
    ],
    params: &[
        param("db_url", ParamKind::Str),
        param("user_column", ParamKind::Str),
        param("domain_column", ParamKind::Str),
        param("password_column", ParamKind::Str),
        param("password_column_2", ParamKind::Str),
        param("calculate_ha1", ParamKind::Int),
        param("use_domain", ParamKind::Int),
        param("load_credentials", ParamKind::Str),
        param("version_table", ParamKind::Int),
        param("force_generate_avps", ParamKind::Int),
    ],
    always: false,
};

/// uri_db: `check_to()` / `check_from()` against the authorized user.
pub static URI_DB: ModuleDef = ModuleDef {
    name: "uri_db",
    aliases: &[],
    functions: &[
        func("check_to", 0, 0, REQ, check_to),
        func("check_from", 0, 0, REQ, check_from),
    ],
    params: &[
        param("db_url", ParamKind::Str),
        param("db_table", ParamKind::Str),
        param("use_uri_table", ParamKind::Int),
        param("use_domain", ParamKind::Int),
        param("user_column", ParamKind::Str),
        param("domain_column", ParamKind::Str),
    ],
    always: false,
};
