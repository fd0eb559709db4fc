//! usrloc: the location tables (KAMAILIO-REFERENCE §5.3). Registrations are
//! shared by every core: a [`Domain`] per table, sharded, written by `save`
//! and read by `lookup` without a global lock. The database, when there is
//! one, is reached only through the store thread:
//!
//! | `db_mode` | memory | database |
//! |---|---|---|
//! | 0 | all | none |
//! | 1 write-through | all | every change queued at once |
//! | 2 write-back | all | changed contacts flushed every `timer_interval`, and at shutdown |
//! | 3 DB-only | none | read (waiting for the store thread) and written per request |
//! | 4 | all | loaded at start, never written |
//!
//! Modes 1, 2 and 4 load the table at start-up, so registrations survive a restart.

mod domain;
mod record;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub use domain::Domain;
pub use record::{method_bit, row_aor, Record, Ucontact, ALL_METHODS};

use crate::script::ctx::SharedTimer;
use crate::script::registry::{ModParams, ModuleDef, ParamDef, ParamKind};
use crate::store::{LocationRow, StoreHandle};

/// How long a worker waits for the store thread where Kamailio waits for its database.
pub const DB_WAIT: Duration = Duration::from_secs(2);

/// usrloc parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UlParams {
    pub db_mode: u8,
    pub timer_interval: u32,
    pub use_domain: bool,
    /// Branch flag marking NATed contacts (stored in cflags); -1 unset.
    pub nat_bflag: i32,
    /// 0 contact, 1 contact + Call-ID, 2 contact + path, 3 Call-ID.
    pub matching_mode: u8,
    pub hash_size: u32,
    /// Seconds to accept a lower CSeq from the same Call-ID as a retransmission.
    pub cseq_delay: u32,
    pub server_id: i64,
}

impl Default for UlParams {
    fn default() -> UlParams {
        UlParams {
            db_mode: 0,
            timer_interval: 60,
            use_domain: false,
            nat_bflag: -1,
            matching_mode: 0,
            hash_size: 10,
            cseq_delay: 20,
            server_id: 0,
        }
    }
}

impl UlParams {
    pub fn from_modparams(mp: &ModParams) -> Result<UlParams, String> {
        let d = UlParams::default();
        let int = |name: &str, default: i64| mp.int("usrloc", name).unwrap_or(default);
        let p = UlParams {
            db_mode: match int("db_mode", 0) {
                m @ 0..=4 => m as u8,
                m => return Err(format!("usrloc db_mode {m} is not 0..4")),
            },
            timer_interval: int("timer_interval", 60).clamp(1, 86_400) as u32,
            use_domain: int("use_domain", 0) != 0,
            nat_bflag: int("nat_bflag", -1).clamp(-1, 31) as i32,
            matching_mode: int("matching_mode", 0).clamp(0, 3) as u8,
            hash_size: int("hash_size", i64::from(d.hash_size)).clamp(2, 14) as u32,
            cseq_delay: int("cseq_delay", 20).clamp(0, 3600) as u32,
            server_id: mp.int("core", "server_id").unwrap_or(0),
        };
        Ok(p)
    }
}

/// Why a usrloc operation failed (the registrar answers 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UlError {
    /// The store thread did not answer in time, or the database failed.
    Db(String),
}

impl std::fmt::Display for UlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UlError::Db(e) => write!(f, "database: {e}"),
        }
    }
}

/// All location tables, shared by every core.
#[derive(Debug)]
pub struct Usrloc {
    pub params: UlParams,
    store: Option<StoreHandle>,
    /// `location`, built at start-up: the one nearly every config uses.
    location: Arc<Domain>,
    /// Other tables, added on first use.
    others: RwLock<Vec<Arc<Domain>>>,
    /// Unique contact ids: `uloc-<start time>-<counter>`.
    ruid_prefix: Box<str>,
    ruid_counter: AtomicU64,
    /// When the shared timer next does its work (ms since 1970): the cores agree through it.
    next_timer_ms: AtomicU64,
    /// Whether the timer keeps the contacts it removes for
    /// `event_route[usrloc:contact-expired]` (the configuration has one).
    report_expired: AtomicBool,
    /// Contacts the timer removed, until a core takes them: (table, AoR, contact).
    expired: Mutex<Vec<Expired>>,
}

/// A contact the expiry timer removed.
pub type Expired = (Box<str>, Box<str>, Ucontact);

impl Usrloc {
    /// The tables, with `location` loaded from the database in modes 1, 2 and 4.
    /// `unix_ms` is the wall-clock time at start-up.
    pub fn new(
        params: UlParams,
        store: Option<StoreHandle>,
        unix_ms: u64,
    ) -> Result<Usrloc, String> {
        if params.db_mode != 0 && store.is_none() {
            return Err(format!("usrloc db_mode {} needs a db_url", params.db_mode));
        }
        let store = store.filter(|_| params.db_mode != 0);
        let ul = Usrloc {
            location: Arc::new(Domain::new("location", params.hash_size)),
            others: RwLock::new(Vec::new()),
            ruid_prefix: format!("uloc-{:x}", unix_ms / 1000).into(),
            ruid_counter: AtomicU64::new(1),
            next_timer_ms: AtomicU64::new(unix_ms + u64::from(params.timer_interval) * 1000),
            report_expired: AtomicBool::new(false),
            expired: Mutex::new(Vec::new()),
            params,
            store,
        };
        ul.load(&ul.location, (unix_ms / 1000) as i64)
            .map_err(|e| format!("usrloc: loading table location: {e}"))?;
        Ok(ul)
    }

    /// Memory only (tests, and `db_mode` 0).
    pub fn in_memory(params: UlParams) -> Usrloc {
        Usrloc {
            location: Arc::new(Domain::new("location", params.hash_size)),
            others: RwLock::new(Vec::new()),
            ruid_prefix: "uloc-0".into(),
            ruid_counter: AtomicU64::new(1),
            next_timer_ms: AtomicU64::new(0),
            report_expired: AtomicBool::new(false),
            expired: Mutex::new(Vec::new()),
            params: UlParams {
                db_mode: 0,
                ..params
            },
            store: None,
        }
    }

    fn load(&self, dom: &Domain, now: i64) -> Result<usize, UlError> {
        let Some(store) = self
            .store
            .as_ref()
            .filter(|_| matches!(self.params.db_mode, 1 | 2 | 4))
        else {
            return Ok(0);
        };
        let table = dom.name().to_string();
        let rows = store
            .call(
                move |s| {
                    s.ensure_location_table(&table)?;
                    s.location_load(&table)
                },
                DB_WAIT * 5,
            )
            .ok_or_else(|| UlError::Db("the store thread did not answer".into()))?
            .map_err(|e| UlError::Db(e.0))?;
        let mut n = 0;
        for row in rows.iter().filter(|r| r.expires == 0 || r.expires > now) {
            let aor = row_aor(row, self.params.use_domain);
            dom.update(&aor, |rec| {
                rec.contacts.push(Ucontact::from_row(row));
                rec.sort();
            });
            n += 1;
        }
        log::info!("usrloc: loaded {n} contacts into table {}", dom.name());
        Ok(n)
    }

    /// The table named `name`, created (and loaded, in modes 1, 2, 4) on first use.
    pub fn domain(&self, name: &[u8]) -> Option<Arc<Domain>> {
        if name == b"location" {
            return Some(self.location.clone());
        }
        let name = std::str::from_utf8(name).ok()?;
        if !crate::store::is_identifier(name) {
            return None;
        }
        let found = |v: &Vec<Arc<Domain>>| v.iter().find(|d| d.name() == name).cloned();
        if let Some(d) = found(&self.others.read().unwrap_or_else(|e| e.into_inner())) {
            return Some(d);
        }
        let mut others = self.others.write().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = found(&others) {
            return Some(d);
        }
        let dom = Arc::new(Domain::new(name, self.params.hash_size));
        if let Some(store) = &self.store {
            let table = name.to_string();
            store.submit(move |s| {
                if let Err(e) = s.ensure_location_table(&table) {
                    log::error!("usrloc: cannot create table {table}: {e}");
                }
            });
        }
        // First use of a table: its rows are read once, as Kamailio reads them at start-up.
        if let Err(e) = self.load(&dom, 0) {
            log::error!("usrloc: loading table {name}: {e}");
        }
        others.push(dom.clone());
        Some(dom)
    }

    /// A new unique contact id.
    pub fn new_ruid(&self) -> Box<str> {
        let n = self.ruid_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.ruid_prefix).into()
    }

    /// Reads `aor` in `dom` (from the database in `db_mode` 3).
    pub fn read<R>(
        &self,
        dom: &Domain,
        aor: &str,
        f: impl FnOnce(Option<&Record>) -> R,
    ) -> Result<R, UlError> {
        if self.params.db_mode == 3 {
            let rec = self.db_record(dom, aor)?;
            return Ok(f((!rec.contacts.is_empty()).then_some(&rec)));
        }
        Ok(dom.read(aor, f))
    }

    /// Changes `aor` in `dom` and sends the changes to the database as the mode says.
    /// `f` marks changed contacts `dirty` and removes with [`Record::remove`].
    pub fn update<R>(
        &self,
        dom: &Domain,
        aor: &str,
        f: impl FnOnce(&mut Record) -> R,
    ) -> Result<R, UlError> {
        if self.params.db_mode == 3 {
            // DB-only: the change is in the database before the caller
            // answers (another node may look it up at once), and a database
            // that fails makes the update fail.
            let mut rec = self.db_record(dom, aor)?;
            let r = f(&mut rec);
            self.write_now(dom, aor, &mut rec)?;
            return Ok(r);
        }
        let write_now = self.params.db_mode == 1;
        Ok(dom.update(aor, |rec| {
            let r = f(rec);
            self.write_changes(dom, aor, rec, write_now);
            r
        }))
    }

    /// The record's removals and, when `upserts`, its dirty contacts, taken
    /// out of it as the rows to write (`None` when there is nothing to write
    /// or no database to write to).
    fn take_changes(
        &self,
        aor: &str,
        rec: &mut Record,
        upserts: bool,
    ) -> Option<(Vec<String>, Vec<LocationRow>)> {
        let removed = std::mem::take(&mut rec.removed);
        if self.store.is_none() || self.params.db_mode == 4 {
            rec.contacts.iter_mut().for_each(|c| c.dirty = false);
            return None;
        }
        let rows: Vec<LocationRow> = if upserts {
            rec.contacts
                .iter_mut()
                .filter(|c| c.dirty)
                .map(|c| {
                    c.dirty = false;
                    self.row(c, aor)
                })
                .collect()
        } else {
            Vec::new()
        };
        if rows.is_empty() && removed.is_empty() {
            return None;
        }
        Some((removed.iter().map(|r| r.to_string()).collect(), rows))
    }

    /// Writes the record's changes and waits for the database (`db_mode` 3).
    fn write_now(&self, dom: &Domain, aor: &str, rec: &mut Record) -> Result<(), UlError> {
        let Some((ruids, rows)) = self.take_changes(aor, rec, true) else {
            return Ok(());
        };
        let Some(store) = self.store.as_ref() else {
            return Ok(());
        };
        let table = dom.name().to_string();
        store
            .call(
                move |s| {
                    s.location_delete(&table, &ruids)
                        .and_then(|()| s.location_upsert(&table, &rows))
                },
                DB_WAIT,
            )
            .ok_or_else(|| UlError::Db("the store thread did not answer in time".into()))?
            .map_err(|e| UlError::Db(e.0))
    }

    /// Queues the record's removals (every mode with a database) and, when
    /// `upserts`, its dirty contacts (write-back leaves them for the timer).
    fn write_changes(&self, dom: &Domain, aor: &str, rec: &mut Record, upserts: bool) {
        let Some((ruids, rows)) = self.take_changes(aor, rec, upserts) else {
            return;
        };
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let table = dom.name().to_string();
        if !store.submit(move |s| {
            let res = s
                .location_delete(&table, &ruids)
                .and_then(|()| s.location_upsert(&table, &rows));
            if let Err(e) = res {
                log::error!("usrloc: writing table {table}: {e}");
            }
        }) {
            log::warn!("usrloc: store queue full, a change of {aor} was not written");
        }
    }

    fn row(&self, c: &Ucontact, aor: &str) -> LocationRow {
        LocationRow {
            server_id: self.params.server_id,
            ..c.to_row(aor, self.params.use_domain)
        }
    }

    /// `aor`'s record as the database has it (`db_mode` 3).
    fn db_record(&self, dom: &Domain, aor: &str) -> Result<Record, UlError> {
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| UlError::Db("no database".into()))?;
        let (user, domain) = match aor.split_once('@') {
            Some((u, d)) if self.params.use_domain => (u.to_string(), Some(d.to_string())),
            _ => (aor.to_string(), None),
        };
        let table = dom.name().to_string();
        let rows = store
            .call(
                move |s| s.location_aor(&table, &user, domain.as_deref()),
                DB_WAIT,
            )
            .ok_or_else(|| UlError::Db("the store thread did not answer in time".into()))?
            .map_err(|e| UlError::Db(e.0))?;
        let mut rec = Record {
            contacts: rows.iter().map(Ucontact::from_row).collect(),
            removed: Vec::new(),
        };
        rec.sort();
        Ok(rec)
    }

    /// Every table in memory.
    pub fn domains(&self) -> Vec<Arc<Domain>> {
        let mut all = vec![self.location.clone()];
        all.extend(
            self.others
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        all
    }

    /// Write-back: queues every dirty contact (`db_mode` 2). Called by the timer and at shutdown.
    pub fn flush(&self) {
        let Some(store) = self.store.as_ref().filter(|_| self.params.db_mode == 2) else {
            return;
        };
        for dom in self.domains() {
            let mut rows = Vec::new();
            dom.for_each_mut(|aor, rec| {
                for c in rec.contacts.iter_mut().filter(|c| c.dirty) {
                    c.dirty = false;
                    rows.push(self.row(c, aor));
                }
            });
            if rows.is_empty() {
                continue;
            }
            let n = rows.len();
            let table = dom.name().to_string();
            let queued = store.submit(move |s| {
                if let Err(e) = s.location_upsert(&table, &rows) {
                    log::error!("usrloc: write-back of {table}: {e}");
                }
            });
            if !queued {
                // Keep them dirty for the next round.
                log::warn!("usrloc: store queue full, {n} contacts stay unwritten");
                dom.for_each_mut(|_, rec| rec.contacts.iter_mut().for_each(|c| c.dirty = true));
            }
        }
    }

    /// Drops expired contacts from memory and (modes 1–3) from the database.
    pub fn sweep(&self, now: i64) -> usize {
        let mut n = 0;
        let report = self.report_expired.load(Ordering::Relaxed);
        let mut removed = Vec::new();
        for dom in self.domains() {
            dom.for_each_mut(|aor, rec| {
                if report {
                    for c in rec.contacts.iter().filter(|c| !c.is_valid(now)) {
                        removed.push((dom.name().into(), aor.into(), c.clone()));
                    }
                }
                n += rec.expire(now)
            });
            if let Some(store) = self
                .store
                .as_ref()
                .filter(|_| matches!(self.params.db_mode, 1..=3))
            {
                let table = dom.name().to_string();
                store.submit(move |s| {
                    if let Err(e) = s.location_delete_expired(&table, now) {
                        log::error!("usrloc: deleting expired contacts of {table}: {e}");
                    }
                });
            }
        }
        if !removed.is_empty() {
            self.expired
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(removed);
        }
        n
    }
}

impl Usrloc {
    /// Keep the contacts the timer removes for [`Usrloc::take_expired`].
    pub fn report_expired(&self, on: bool) {
        self.report_expired.store(on, Ordering::Relaxed);
    }

    /// The contacts the timer removed since the last call.
    pub fn take_expired(&self) -> Vec<Expired> {
        let mut list = self.expired.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *list)
    }
}

impl SharedTimer for Usrloc {
    fn interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.params.timer_interval))
    }

    /// Every core calls this; the first to come after the due time does the work.
    fn on_timer(&self, unix_ms: u64) {
        let due = self.next_timer_ms.load(Ordering::Acquire);
        // A little slack: the cores' timers fire close to, not exactly at, the due time.
        if unix_ms + 500 < due {
            return;
        }
        let next = unix_ms + u64::from(self.params.timer_interval) * 1000;
        if self
            .next_timer_ms
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        self.flush();
        let expired = self.sweep((unix_ms / 1000) as i64);
        if expired > 0 {
            log::debug!("usrloc: {expired} contacts expired");
        }
    }
}

const fn param(name: &'static str, kind: ParamKind) -> ParamDef {
    ParamDef { name, kind }
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "usrloc",
    aliases: &[],
    functions: &[],
    params: &[
        param("db_url", ParamKind::Str),
        param("db_mode", ParamKind::Int),
        param("timer_interval", ParamKind::Int),
        param("timer_procs", ParamKind::Int),
        param("use_domain", ParamKind::Int),
        param("nat_bflag", ParamKind::Int),
        param("desc_time_order", ParamKind::Int),
        param("matching_mode", ParamKind::Int),
        param("cseq_delay", ParamKind::Int),
        param("hash_size", ParamKind::Int),
        param("handle_lost_tcp", ParamKind::Int),
        param("close_expired_tcp", ParamKind::Int),
        param("ka_mode", ParamKind::Int),
        param("db_load", ParamKind::Int),
        param("db_insert_update", ParamKind::Int),
        param("fetch_rows", ParamKind::Int),
        param("skip_remote_socket", ParamKind::Int),
        param("preload", ParamKind::Str),
        param("user_column", ParamKind::Str),
        param("domain_column", ParamKind::Str),
        param("contact_column", ParamKind::Str),
        param("expires_column", ParamKind::Str),
        param("q_column", ParamKind::Str),
        param("callid_column", ParamKind::Str),
        param("cseq_column", ParamKind::Str),
        param("methods_column", ParamKind::Str),
        param("flags_column", ParamKind::Str),
        param("cflags_column", ParamKind::Str),
        param("user_agent_column", ParamKind::Str),
        param("received_column", ParamKind::Str),
        param("socket_column", ParamKind::Str),
        param("path_column", ParamKind::Str),
        param("ruid_column", ParamKind::Str),
        param("instance_column", ParamKind::Str),
        param("server_id_column", ParamKind::Str),
        param("xavp_contact", ParamKind::Str),
        param("db_ops_ruid", ParamKind::Int),
        param("db_timer_clean", ParamKind::Int),
        param("rm_expired_delay", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// DESIGN target: a stored contact costs under 512 bytes plus its strings.
    #[test]
    fn memory_per_contact() {
        let fixed = std::mem::size_of::<Ucontact>();
        assert!(fixed <= 200, "Ucontact is {fixed} bytes");
        // One AoR with one contact in a shard: key, record, contact slot.
        let per_aor = std::mem::size_of::<(Box<str>, Record)>() + fixed;
        assert!(per_aor < 512, "{per_aor} bytes per single-contact AoR");
    }

    #[test]
    fn expired_contacts_are_kept_for_the_event_route_when_asked() {
        let ul = Usrloc::in_memory(UlParams::default());
        let dom = ul.domain(b"location").unwrap();
        let c = |exp| {
            Ucontact::from_row(&LocationRow {
                ruid: format!("r{exp}"),
                contact: format!("sip:a@h{exp}"),
                expires: exp,
                ..LocationRow::default()
            })
        };
        ul.update(&dom, "alice", |r| r.contacts.extend([c(10), c(20), c(500)]))
            .unwrap();
        assert_eq!(ul.sweep(15), 1);
        assert!(ul.take_expired().is_empty(), "not asked: nothing kept");
        ul.report_expired(true);
        ul.update(&dom, "bob", |r| r.contacts.push(c(30))).unwrap();
        assert_eq!(ul.sweep(100), 2);
        let mut got: Vec<(String, String, String)> = ul
            .take_expired()
            .into_iter()
            .map(|(d, a, c)| (d.into(), a.into(), c.contact.into()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("location".into(), "alice".into(), "sip:a@h20".into()),
                ("location".into(), "bob".into(), "sip:a@h30".into()),
            ]
        );
        assert!(ul.take_expired().is_empty());
    }

    #[test]
    fn ruids_are_unique_and_timer_runs_once_per_interval() {
        let ul = Usrloc::new(UlParams::default(), None, 1_000_000).unwrap();
        assert_ne!(ul.new_ruid(), ul.new_ruid());
        let dom = ul.domain(b"location").unwrap();
        let c = |exp| {
            Ucontact::from_row(&LocationRow {
                ruid: format!("r{exp}"),
                contact: format!("sip:a@h{exp}"),
                expires: exp,
                ..LocationRow::default()
            })
        };
        ul.update(&dom, "alice", |r| r.contacts.extend([c(1010), c(2000)]))
            .unwrap();
        // Not due yet: nothing expires.
        ul.on_timer(1_030_000);
        assert_eq!(dom.counts(), (1, 2));
        // Due (60 s after start): the first contact expired at 1010.
        ul.on_timer(1_060_000);
        assert_eq!(dom.counts(), (1, 1));
        // The second core's call in the same round does nothing more.
        ul.on_timer(1_060_001);
        assert_eq!(ul.sweep(3000), 1);
        assert_eq!(dom.counts(), (0, 0));
        assert!(ul.domain(b"bad name").is_none());
        assert_eq!(ul.domain(b"aliases").unwrap().name(), "aliases");
    }

    #[test]
    fn db_modes_need_a_url() {
        let p = UlParams {
            db_mode: 2,
            ..UlParams::default()
        };
        assert!(Usrloc::new(p, None, 0).is_err());
    }
}
