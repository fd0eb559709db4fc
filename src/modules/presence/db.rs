//! The presence tables in the database (Kamailio's schema, as `kamdbctl`
//! makes them): `presentity` (one row per publication), `active_watchers`
//! (one per subscription) and `watchers` (who may watch whom). Written
//! through the store thread, never waited for; the state in memory is what
//! requests are answered from.

use crate::store::StoreHandle;

use super::state::{DialogKey, Event, PresKey, Publication, Status, Subscription};
use super::PresenceConfig;
use crate::store::{SqlRows, SqlValue};

/// The database of the presence module (`db_url`).
#[derive(Clone, Debug)]
pub struct Db {
    store: StoreHandle,
    /// MySQL reads backslashes in string literals as escapes.
    backslash_escapes: bool,
    /// `subs_db_mode` 0: subscriptions are not written.
    subs: bool,
}

impl Db {
    pub fn new(store: StoreHandle, subs_db_mode: u8) -> Db {
        let backslash_escapes = store.url().starts_with("mysql");
        Db {
            store,
            backslash_escapes,
            subs: subs_db_mode != 0,
        }
    }

    /// `text` as an SQL string literal.
    fn lit(&self, text: &str) -> String {
        sql_literal(text, self.backslash_escapes)
    }

    /// `bytes` as an SQL binary literal (the `body` column is a BLOB).
    fn blob(&self, bytes: &[u8]) -> String {
        blob_literal(bytes, self.store.url().starts_with("postgres"))
    }

    fn run(&self, sql: String) {
        self.store.submit(move |s| {
            if let Err(e) = s.query(&sql) {
                log::error!("presence: {e}");
            }
        });
    }

    pub fn presentity_insert(&self, cfg: &PresenceConfig, key: &PresKey, p: &Publication) {
        self.run(format!(
            "INSERT INTO {} (username, domain, event, etag, expires, received_time, body, sender, priority) \
             VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
            cfg.presentity_table,
            self.lit(&key.0),
            self.lit(&key.1),
            self.lit(key.2.name()),
            self.lit(&p.etag),
            p.expires,
            p.received,
            self.blob(&p.body),
            self.lit(&p.sender),
            p.priority
        ));
    }

    pub fn presentity_update(
        &self,
        cfg: &PresenceConfig,
        key: &PresKey,
        old_etag: &str,
        p: &Publication,
    ) {
        self.run(format!(
            "UPDATE {} SET etag = {}, expires = {}, received_time = {}, body = {} \
             WHERE username = {} AND domain = {} AND event = {} AND etag = {}",
            cfg.presentity_table,
            self.lit(&p.etag),
            p.expires,
            p.received,
            self.blob(&p.body),
            self.lit(&key.0),
            self.lit(&key.1),
            self.lit(key.2.name()),
            self.lit(old_etag)
        ));
    }

    pub fn presentity_delete(&self, cfg: &PresenceConfig, key: &PresKey, etag: &str) {
        self.run(format!(
            "DELETE FROM {} WHERE username = {} AND domain = {} AND event = {} AND etag = {}",
            cfg.presentity_table,
            self.lit(&key.0),
            self.lit(&key.1),
            self.lit(key.2.name()),
            self.lit(etag)
        ));
    }

    pub fn watcher_insert(&self, cfg: &PresenceConfig, s: &Subscription) {
        if !self.subs {
            return;
        }
        let event_id = s
            .event_id
            .as_deref()
            .map_or("NULL".to_string(), |i| self.lit(i));
        let reason = s
            .reason
            .as_deref()
            .map_or("NULL".to_string(), |r| self.lit(r));
        self.run(format!(
            "INSERT INTO {} (presentity_uri, watcher_username, watcher_domain, to_user, to_domain, \
             event, event_id, to_tag, from_tag, callid, local_cseq, remote_cseq, contact, record_route, \
             expires, status, reason, version, socket_info, local_contact, from_user, from_domain, \
             updated, updated_winfo, flags, user_agent) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, \
             {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, -1, -1, 0, {})",
            cfg.active_watchers_table,
            self.lit(&s.pres_uri),
            self.lit(&s.watcher_user),
            self.lit(&s.watcher_domain),
            self.lit(&s.to_user),
            self.lit(&s.to_domain),
            self.lit(s.event.name()),
            event_id,
            self.lit(&s.to_tag),
            self.lit(&s.from_tag),
            self.lit(&s.callid),
            s.local_cseq,
            s.remote_cseq,
            self.lit(&s.contact),
            self.lit(&s.record_route),
            s.expires,
            s.status as i32,
            reason,
            s.version,
            self.lit(&s.socket),
            self.lit(&s.local_contact),
            self.lit(&s.from_user),
            self.lit(&s.from_domain),
            self.lit(&s.user_agent)
        ));
    }

    /// After a NOTIFY or a refresh: the counters and the expiry.
    pub fn watcher_update(&self, cfg: &PresenceConfig, s: &Subscription) {
        if !self.subs {
            return;
        }
        self.run(format!(
            "UPDATE {} SET expires = {}, remote_cseq = {}, local_cseq = {}, version = {}, status = {} \
             WHERE callid = {} AND to_tag = {} AND from_tag = {}",
            cfg.active_watchers_table,
            s.expires,
            s.remote_cseq,
            s.local_cseq,
            s.version,
            s.status as i32,
            self.lit(&s.callid),
            self.lit(&s.to_tag),
            self.lit(&s.from_tag)
        ));
    }

    pub fn watcher_delete(&self, cfg: &PresenceConfig, key: &DialogKey) {
        if !self.subs {
            return;
        }
        self.run(format!(
            "DELETE FROM {} WHERE callid = {} AND to_tag = {} AND from_tag = {}",
            cfg.active_watchers_table,
            self.lit(&key.0),
            self.lit(&key.1),
            self.lit(&key.2)
        ));
    }

    /// The `watchers` row of an authorized (force_active) watcher, once.
    pub fn watchers_authorized(&self, cfg: &PresenceConfig, s: &Subscription, now: i64) {
        let t = &cfg.watchers_table;
        let (uri, user, domain, event) = (
            self.lit(&s.pres_uri),
            self.lit(&s.watcher_user),
            self.lit(&s.watcher_domain),
            self.lit(s.event.name()),
        );
        self.run(format!(
            "INSERT INTO {t} (presentity_uri, watcher_username, watcher_domain, event, status, reason, \
             inserted_time) SELECT {uri}, {user}, {domain}, {event}, {}, '', {} WHERE NOT EXISTS \
             (SELECT 1 FROM {t} WHERE presentity_uri = {uri} AND watcher_username = {user} AND \
             watcher_domain = {domain} AND event = {event})",
            s.status as i32,
            now
        ));
    }
}

/// What the tables held at start-up.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub presentities: Vec<(PresKey, Publication)>,
    pub subscriptions: Vec<Subscription>,
}

impl Db {
    /// Reads the live rows of `presentity` and `active_watchers` (Kamailio
    /// loads them at start-up too), on the store thread; `Err` names what failed.
    pub fn load(&self, cfg: &PresenceConfig, now: i64) -> Result<Loaded, String> {
        let pres = format!(
            "SELECT username, domain, event, etag, expires, received_time, body, sender, priority \
             FROM {} WHERE expires > {now} ORDER BY received_time",
            cfg.presentity_table
        );
        let subs = self.subs.then(|| {
            format!(
                "SELECT presentity_uri, event, event_id, to_user, to_domain, from_user, from_domain, \
                 watcher_username, watcher_domain, callid, to_tag, from_tag, remote_cseq, local_cseq, \
                 version, contact, record_route, expires, status, reason, socket_info, local_contact, \
                 user_agent FROM {} WHERE expires > {now}",
                cfg.active_watchers_table
            )
        });
        let got = self
            .store
            .call(
                move |s| -> Result<(SqlRows, Option<SqlRows>), String> {
                    let p = s.query(&pres).map_err(|e| e.to_string())?;
                    let w = match subs {
                        Some(q) => Some(s.query(&q).map_err(|e| e.to_string())?),
                        None => None,
                    };
                    Ok((p, w))
                },
                std::time::Duration::from_secs(10),
            )
            .ok_or("presence: the database did not answer")??;
        let mut out = Loaded::default();
        for r in &got.0.rows {
            let Some(event) = Event::parse(&bytes_of(r.get(2))) else {
                continue;
            };
            out.presentities.push((
                (text_of(r.first()), text_of(r.get(1)), event),
                Publication {
                    etag: text_of(r.get(3)),
                    expires: int_of(r.get(4)),
                    received: int_of(r.get(5)),
                    body: bytes::Bytes::from(bytes_of(r.get(6))),
                    sender: text_of(r.get(7)),
                    priority: int_of(r.get(8)),
                },
            ));
        }
        for r in got.1.iter().flat_map(|w| w.rows.iter()) {
            let Some(event) = Event::parse(&bytes_of(r.get(1))) else {
                continue;
            };
            let opt = |i: usize| Some(text_of(r.get(i))).filter(|t| !t.is_empty());
            out.subscriptions.push(Subscription {
                pres_uri: text_of(r.first()),
                event,
                event_id: opt(2),
                to_user: text_of(r.get(3)),
                to_domain: text_of(r.get(4)),
                from_user: text_of(r.get(5)),
                from_domain: text_of(r.get(6)),
                watcher_user: text_of(r.get(7)),
                watcher_domain: text_of(r.get(8)),
                callid: text_of(r.get(9)),
                to_tag: text_of(r.get(10)),
                from_tag: text_of(r.get(11)),
                remote_cseq: int_of(r.get(12)).clamp(0, i64::from(u32::MAX)) as u32,
                local_cseq: int_of(r.get(13)).clamp(0, i64::from(u32::MAX)) as u32,
                version: int_of(r.get(14)).clamp(0, i64::from(u32::MAX)) as u32,
                contact: text_of(r.get(15)),
                record_route: text_of(r.get(16)),
                expires: int_of(r.get(17)),
                status: match int_of(r.get(18)) {
                    2 => Status::Pending,
                    3 => Status::Terminated,
                    _ => Status::Active,
                },
                reason: opt(19),
                socket: text_of(r.get(20)),
                local_contact: text_of(r.get(21)),
                user_agent: text_of(r.get(22)),
            });
        }
        Ok(out)
    }
}

fn bytes_of(v: Option<&SqlValue>) -> Vec<u8> {
    match v {
        Some(SqlValue::Str(b)) => b.clone(),
        Some(SqlValue::Int(i) | SqlValue::BigInt(i)) => i.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

fn text_of(v: Option<&SqlValue>) -> String {
    String::from_utf8_lossy(&bytes_of(v)).into_owned()
}

fn int_of(v: Option<&SqlValue>) -> i64 {
    match v {
        Some(SqlValue::Int(i) | SqlValue::BigInt(i)) => *i,
        Some(SqlValue::Double(d)) => *d as i64,
        Some(SqlValue::Str(b)) => String::from_utf8_lossy(b).trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// `bytes` as a binary literal: `X'68…'` (SQLite, MySQL), or PostgreSQL's
/// `'\\x68…'::bytea`.
pub fn blob_literal(bytes: &[u8], postgres: bool) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2 + 16);
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    if postgres {
        format!("'\\x{hex}'::bytea")
    } else {
        format!("X'{hex}'")
    }
}

/// `text` in single quotes, quotes doubled (and backslashes for MySQL).
pub fn sql_literal(text: &str, backslash_escapes: bool) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if backslash_escapes => out.push_str("\\\\"),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}
