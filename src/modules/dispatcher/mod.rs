//! dispatcher: load balancing and failover over destination sets
//! (KAMAILIO-REFERENCE §7.9). Three parts, as pingora splits them:
//!
//! * set source — [`list`]: a `list_file` or the `dispatcher` table, held as
//!   one snapshot shared by every core and swapped whole on reload;
//! * selection — [`select`]: the algorithms, then failover order kept in the
//!   `_dsdst_` XAVPs (with `flags` bit 2) for `ds_next_dst()`;
//! * health — [`probe`]: keep-alive OPTIONS as a sans-IO state machine driven
//!   by the cores' timers, and the state changes that run
//!   `event_route[dispatcher:dst-down]` / `[dispatcher:dst-up]`.
//!
//! The control-socket methods `dispatcher.list`, `dispatcher.reload` and
//! `dispatcher.set_state` are plain functions in [`rpc`].

use crate::script::registry::{func as f, param as p};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;

use crate::modules::core::dns::Resolver;
use crate::script::registry::{ModParams, ModuleDef, ParamKind, RouteMask};
use crate::store::{DispatcherColumns, StoreHandle};

mod functions;
pub mod list;
pub mod probe;
pub mod rpc;
pub mod select;

use functions::*;
use list::{DestLists, DISABLED, INACTIVE};

pub use functions::parse_state;

/// `flags` bit 1: hash only the user part of URIs.
pub(crate) const FLAG_HASH_USER_ONLY: i64 = 1;
/// `flags` bit 2: keep the other destinations for failover.
pub(crate) const FLAG_FAILOVER: i64 = 2;

/// The module parameters, read once at start-up.
#[derive(Clone, Debug)]
pub struct DsParams {
    pub flags: i64,
    pub force_dst: bool,
    pub use_default: bool,
    pub xavp_dst: Bytes,
    pub xavp_ctx: Bytes,
    pub ping_method: String,
    pub ping_from: String,
    /// 0: no probing.
    pub ping_interval: Duration,
    pub probing_threshold: u32,
    pub inactive_threshold: u32,
    /// Reply codes besides 200 that count as alive (`class=N` as N00..N99).
    pub ping_reply_codes: Vec<u16>,
    pub probing_mode: u8,
    /// How long a keep-alive waits for its final reply (tm `fr_timer`, at most the interval).
    pub ping_timeout: Duration,
    /// `reload_delta`: for how many seconds after one `dispatcher.reload`
    /// the next is refused (Kamailio's default is 5).
    pub reload_delta: u64,
    /// `ds_hash_size` is set above 0: `dispatcher.list` shows each
    /// destination's call load (always 0 here: ringsip refuses algorithm 10).
    pub call_load_table: bool,
}

impl DsParams {
    pub fn from_modparams(mp: &ModParams) -> Result<DsParams, String> {
        let int = |p: &str, d: i64| mp.int("dispatcher", p).unwrap_or(d);
        let s = |p: &str, d: &str| mp.str("dispatcher", p).unwrap_or(d).to_string();
        let interval = Duration::from_secs(u64::try_from(int("ds_ping_interval", 0)).unwrap_or(0));
        let fr = Duration::from_millis(
            u64::try_from(mp.int("tm", "fr_timer").unwrap_or(30_000)).unwrap_or(30_000),
        );
        let mode = int("ds_probing_mode", 0);
        if !(0..=3).contains(&mode) {
            return Err(format!("dispatcher: ds_probing_mode {mode} is not 0..3"));
        }
        Ok(DsParams {
            flags: int("flags", 0),
            force_dst: int("force_dst", 1) != 0,
            use_default: int("use_default", 0) != 0,
            xavp_dst: Bytes::from(s("xavp_dst", "_dsdst_")),
            xavp_ctx: Bytes::from(s("xavp_ctx", "_dsctx_")),
            ping_method: s("ds_ping_method", "OPTIONS"),
            ping_from: s("ds_ping_from", "sip:dispatcher@localhost"),
            ping_interval: interval,
            probing_threshold: u32::try_from(int("ds_probing_threshold", 1))
                .unwrap_or(1)
                .max(1),
            inactive_threshold: u32::try_from(int("ds_inactive_threshold", 1))
                .unwrap_or(1)
                .max(1),
            ping_reply_codes: parse_reply_codes(&s("ds_ping_reply_codes", ""))?,
            probing_mode: mode as u8,
            ping_timeout: if interval.is_zero() {
                fr
            } else {
                fr.min(interval)
            },
            reload_delta: u64::try_from(int("reload_delta", 5)).unwrap_or(0),
            call_load_table: int("ds_hash_size", 0) > 0,
        })
    }
}

impl Default for DsParams {
    fn default() -> DsParams {
        DsParams::from_modparams(&ModParams::default()).expect("defaults are valid")
    }
}

/// `ds_ping_reply_codes`: `code=404;class=3;...`.
fn parse_reply_codes(text: &str) -> Result<Vec<u16>, String> {
    let mut codes = Vec::new();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let bad =
            || format!("dispatcher: ds_ping_reply_codes item \"{item}\" is not code=N or class=N");
        let (k, v) = item.split_once('=').ok_or_else(bad)?;
        let n: u16 = v.trim().parse().map_err(|_| bad())?;
        match k.trim() {
            "code" if (100..700).contains(&n) => codes.push(n),
            "class" if (1..7).contains(&n) => codes.extend(n * 100..n * 100 + 100),
            _ => return Err(bad()),
        }
    }
    Ok(codes)
}

/// Where the sets come from.
#[derive(Debug)]
enum Source {
    File(String),
    Db {
        store: StoreHandle,
        table: String,
        cols: DispatcherColumns,
    },
    /// Given by the caller (tests); reload keeps them.
    Fixed,
}

/// A state change to announce with `event_route[dispatcher:dst-up|dst-down]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DsEvent {
    pub up: bool,
    pub set: i32,
    pub uri: Bytes,
}

/// The dispatcher's shared state: parameters, the sets, keep-alive state.
#[derive(Debug)]
pub struct Dispatcher {
    pub params: DsParams,
    source: Source,
    /// Resolves destinations given by name, at each (re)load.
    names: Option<Arc<Resolver>>,
    lists: RwLock<Arc<DestLists>>,
    /// State for algorithm 6 (a counter mixed by splitmix64).
    random: AtomicU64,
    /// State changes not yet announced by an event route.
    events: Mutex<Vec<DsEvent>>,
    pub prober: probe::Prober,
    /// When (unix seconds) `dispatcher.reload` last reloaded, for `reload_delta`.
    rpc_reloaded_at: Mutex<Option<u64>>,
}

impl Dispatcher {
    fn with(params: DsParams, source: Source, lists: DestLists, seed: u64) -> Dispatcher {
        Dispatcher {
            prober: probe::Prober::new(seed),
            params,
            source,
            names: None,
            lists: RwLock::new(Arc::new(lists)),
            random: AtomicU64::new(seed),
            events: Mutex::new(Vec::new()),
            rpc_reloaded_at: Mutex::new(None),
        }
    }

    /// Whether a control-socket reload may run at `now` (unix seconds): not
    /// within `reload_delta` seconds of the last one that ran (a refused one
    /// does not count). Taking the turn records `now`.
    pub fn take_rpc_reload_turn(&self, now: u64) -> bool {
        let mut last = self
            .rpc_reloaded_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t + self.params.reload_delta > now) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Sets given as rows (tests, tools).
    pub fn from_lists(params: DsParams, lists: DestLists) -> Dispatcher {
        Dispatcher::with(params, Source::Fixed, lists, 0x5eed)
    }

    /// Loads `list_file` (or, with `db_url`, the table) as the parameters say.
    /// `seed` varies the random algorithm and keep-alive branches per run;
    /// `names` resolves destinations given by host name.
    pub fn from_modparams(
        mp: &ModParams,
        store: Option<StoreHandle>,
        seed: u64,
        names: Option<Arc<Resolver>>,
    ) -> Result<Dispatcher, String> {
        let params = DsParams::from_modparams(mp)?;
        let source = match store {
            Some(store) => {
                let col = |p: &str, d: &str| mp.str("dispatcher", p).unwrap_or(d).to_string();
                Source::Db {
                    store,
                    table: col("table_name", "dispatcher"),
                    cols: DispatcherColumns {
                        setid: col("setid_col", "setid"),
                        destination: col("destination_col", "destination"),
                        flags: col("flags_col", "flags"),
                        priority: col("priority_col", "priority"),
                        attrs: col("attrs_col", "attrs"),
                    },
                }
            }
            None => Source::File(
                mp.str("dispatcher", "list_file")
                    .unwrap_or("/etc/kamailio/dispatcher.list")
                    .to_string(),
            ),
        };
        let mut d = Dispatcher::with(params, source, DestLists::default(), seed);
        d.names = names;
        let n = d.reload()?;
        log::info!("dispatcher: {n} destination sets loaded");
        Ok(d)
    }

    /// Reads the sets again and swaps them in; how many sets there are.
    pub fn reload(&self) -> Result<usize, String> {
        let rows = match &self.source {
            Source::Fixed => return Ok(self.lists().sets.len()),
            Source::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("dispatcher: list_file {path}: {e}"))?;
                list::parse_list_file(&text)
                    .map_err(|e| format!("dispatcher: list_file {path}: {e}"))?
            }
            Source::Db { store, table, cols } => {
                let (t, c) = (table.clone(), cols.clone());
                store
                    .call(move |s| s.dispatchers(&t, &c), Duration::from_secs(10))
                    .ok_or("dispatcher: the store thread did not answer")?
                    .map_err(|e| format!("dispatcher: loading table {table}: {e}"))?
            }
        };
        let mut lists = DestLists::from_rows(&rows).map_err(|e| format!("dispatcher: {e}"))?;
        if let Some(r) = &self.names {
            lists.resolve_names(|host| r.resolve_uncached(host.as_bytes()).first().copied());
        }
        let n = lists.sets.len();
        *self.lists.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(lists);
        Ok(n)
    }

    /// The current sets.
    pub fn lists(&self) -> Arc<DestLists> {
        self.lists.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn random(&self) -> u64 {
        crate::modules::random::splitmix_next(&self.random)
    }

    /// Sets the state of destination `uri` in set `set` (`None`: every
    /// destination of the set); false when there is no such destination.
    /// A destination going down or coming up is queued for its event route.
    pub fn set_state(&self, set: i32, uri: Option<&[u8]>, state: u32) -> bool {
        let lists = self.lists();
        let Some(s) = lists.set(set) else {
            return false;
        };
        let mut found = false;
        for d in s
            .dests
            .iter()
            .filter(|d| uri.is_none_or(|u| uri_eq(&d.uri, u)))
        {
            found = true;
            let old = d.set_state(state);
            self.note_change(set, &d.uri, old, state);
        }
        found
    }

    /// Queues the event for a change from `old` to `new` state bits, if it is one.
    pub fn note_change(&self, set: i32, uri: &Bytes, old: u32, new: u32) {
        let down = |s: u32| s & (INACTIVE | DISABLED) != 0;
        if down(old) != down(new) {
            log::info!(
                "dispatcher: {} in set {set} is {}",
                String::from_utf8_lossy(uri),
                if down(new) { "down" } else { "up" }
            );
            self.events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(DsEvent {
                    up: !down(new),
                    set,
                    uri: uri.clone(),
                });
        }
    }

    /// The state changes not yet announced.
    pub fn take_events(&self) -> Vec<DsEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Destination URIs are compared as written, the scheme and host case-insensitively.
pub(crate) fn uri_eq(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

const REQ_FAIL: RouteMask = RouteMask::REQUEST.or(RouteMask::FAILURE);

pub static MODULE: ModuleDef = ModuleDef {
    name: "dispatcher",
    aliases: &[],
    functions: &[
        f(
            "ds_select_dst",
            2,
            3,
            REQ_FAIL,
            Some(fixup_select),
            ds_select_dst,
        ),
        f(
            "ds_select_domain",
            2,
            3,
            REQ_FAIL,
            Some(fixup_select),
            ds_select_domain,
        ),
        f(
            "ds_select",
            2,
            3,
            RouteMask::ANY,
            Some(fixup_select),
            ds_select,
        ),
        f(
            "ds_select_routes",
            2,
            3,
            REQ_FAIL,
            Some(fixup_routes),
            ds_select_routes,
        ),
        f("ds_next_dst", 0, 0, REQ_FAIL, None, ds_next_dst),
        f("ds_next_domain", 0, 0, REQ_FAIL, None, ds_next_domain),
        f("ds_set_dst", 0, 0, REQ_FAIL, None, ds_set_dst),
        f("ds_set_domain", 0, 0, REQ_FAIL, None, ds_set_domain),
        f(
            "ds_mark_dst",
            0,
            1,
            REQ_FAIL.or(RouteMask::ONREPLY).or(RouteMask::BRANCH),
            Some(fixup_state),
            ds_mark_dst,
        ),
        f(
            "ds_is_from_list",
            0,
            3,
            RouteMask::ANY,
            Some(fixup_ints),
            ds_is_from_list,
        ),
        f(
            "ds_list_exists",
            1,
            1,
            RouteMask::ANY,
            Some(fixup_ints),
            ds_list_exists,
        ),
        f(
            "ds_is_active",
            1,
            2,
            RouteMask::ANY,
            Some(fixup_ints),
            ds_is_active,
        ),
        f("ds_reload", 0, 0, RouteMask::ANY, None, ds_reload),
    ],
    params: &[
        p("list_file", ParamKind::Str),
        p("db_url", ParamKind::Str),
        p("table_name", ParamKind::Str),
        p("setid_col", ParamKind::Str),
        p("destination_col", ParamKind::Str),
        p("flags_col", ParamKind::Str),
        p("priority_col", ParamKind::Str),
        p("attrs_col", ParamKind::Str),
        p("flags", ParamKind::Int),
        p("force_dst", ParamKind::Int),
        p("use_default", ParamKind::Int),
        p("xavp_dst", ParamKind::Str),
        p("xavp_ctx", ParamKind::Str),
        p("hash_pvar", ParamKind::Pv),
        p("setid_pvname", ParamKind::Pv),
        p("attrs_pvname", ParamKind::Pv),
        p("ds_ping_method", ParamKind::Str),
        p("ds_ping_from", ParamKind::Str),
        p("ds_ping_interval", ParamKind::Int),
        p("ds_probing_threshold", ParamKind::Int),
        p("ds_inactive_threshold", ParamKind::Int),
        p("ds_ping_reply_codes", ParamKind::Str),
        p("ds_probing_mode", ParamKind::Int),
        p("reload_delta", ParamKind::Int),
        p("ds_hash_size", ParamKind::Int),
        p("ds_timer_mode", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests;

/// Parameters accepted with no effect: `ds_timer_mode` only chooses which
/// Kamailio timer process sends the keep-alives (ringsip's cores have none).
pub fn unsupported_params(mp: &ModParams) -> Vec<String> {
    mp.set_among("dispatcher", &["ds_timer_mode"])
}
