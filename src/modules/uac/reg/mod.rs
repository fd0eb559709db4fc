//! uac remote registrations (Kamailio's `uac_reg`): the proxy registers
//! accounts of the `uacreg` table at their providers and keeps them
//! registered, and the script maps calls between local users and those
//! accounts.
//!
//! ```text
//!  uacreg row ──load──▶ Registrations (shared, one lock)
//!                          │ tick every ~250 ms on any core (try_lock)
//!                          ▼
//!   REGISTER sip:r_domain ─────▶ auth_proxy      401/407 ─▶ REGISTER + Authorization
//!   From/To sip:r_username@r_domain              200 ─▶ online until send + expires
//!   Contact <sip:l_uuid@contact_addr>            else ─▶ retry / disabled
//! ```
//!
//! - [`machine`]: when a REGISTER goes out and what an answer does (the
//!   timing rules are documented there).
//! - [`functions`]: `uac_reg_lookup`, `uac_reg_lookup_uri` (by
//!   `l_username`, and `l_domain` with `reg_use_domain`),
//!   `uac_reg_status`, `uac_reg_request_to`, `uac_reg_enable/disable`,
//!   `uac_reg_refresh`.
//! - [`rpc`]: `uac.reg_dump`, `uac.reg_info`, `uac.reg_enable/disable`,
//!   `uac.reg_reload`, `uac.reg_refresh`, `uac.reg_add/remove`,
//!   `uac.reg_unregister`, `uac.reg_active`.
//!
//! Not in ringsip yet (refused at start-up): `event_callback`. Kamailio
//! sends no un-REGISTER when it stops (checked live), and neither does
//! ringsip; `uac.reg_unregister` sends one on request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::script::ctx::{fmt_hostport, omits_port, Env, LocalEvent, LocalRequests};
use crate::script::registry::ModParams;
use crate::sip::{Message, Proto, Transmit};
use crate::store::{is_identifier, SqlValue, StoreHandle};

pub mod functions;
pub mod machine;
pub mod rpc;

#[cfg(test)]
mod tests;

/// Record flags, as `uac.reg_dump` shows them.
pub const DISABLED: u32 = 1;
pub const ONGOING: u32 = 2;
pub const ONLINE: u32 = 4;
pub const AUTHSENT: u32 = 8;
pub const INIT: u32 = 16;

/// How often the cores look at the registrations (retransmissions,
/// timeouts, rounds).
const TICK: Duration = Duration::from_millis(250);

/// The `uac` module parameters of remote registration.
#[derive(Clone, Debug)]
pub struct RegConfig {
    pub db_url: String,
    pub table: String,
    /// `reg_timer_interval`, seconds (90).
    pub timer_interval: u64,
    /// `reg_retry_interval`, seconds (0: a failure disables the record).
    pub retry_interval: u64,
    pub keep_callid: bool,
    /// `reg_random_delay`: the start delay of a record without `reg_delay`
    /// is drawn below this many seconds.
    pub random_delay: u32,
    /// `reg_active`: whether registrations are sent at all (RPC `uac.reg_active`).
    pub active: bool,
    /// `reg_contact_addr`: `host[:port]` of the Contact (required).
    pub contact_addr: String,
    /// `default_socket`: `proto:host:port` to send from.
    pub default_socket: Option<String>,
    /// `reg_gc_interval`: seconds between two `uac.reg_reload` (150).
    pub gc_interval: u64,
    /// tm's `fr_timer`: how long a REGISTER waits for a final answer.
    pub fr_timeout_ms: u64,
    /// `reg_use_domain`: the lookups by local user match the URI's host
    /// with `l_domain` too.
    pub use_domain: bool,
}

impl RegConfig {
    /// The remote-registration parameters; `None` when `reg_db_url` is not
    /// set (no registrations, as in Kamailio).
    pub fn from_modparams(mp: &ModParams) -> Result<Option<RegConfig>, String> {
        let Some(db_url) = mp.str("uac", "reg_db_url").filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        for name in ["event_callback"] {
            if mp.str("uac", name).is_some_and(|v| !v.is_empty()) {
                return Err(format!("uac: {name} is not implemented in ringsip yet"));
            }
        }
        let contact_addr = mp
            .str("uac", "reg_contact_addr")
            .filter(|c| !c.is_empty())
            .ok_or("uac: reg_contact_addr is not set (needed with reg_db_url)")?
            .to_string();
        let table = mp
            .str("uac", "reg_db_table")
            .unwrap_or("uacreg")
            .to_string();
        if !is_identifier(&table) {
            return Err(format!("uac: reg_db_table {table:?} is not a usable name"));
        }
        let secs = |name: &str, default: i64| -> Result<u64, String> {
            let v = mp.int("uac", name).unwrap_or(default);
            u64::try_from(v).map_err(|_| format!("uac: {name} cannot be negative"))
        };
        let default_socket = mp
            .str("uac", "default_socket")
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if let Some(s) = &default_socket {
            parse_socket(s).ok_or_else(|| format!("uac: bad socket <{s}>"))?;
        }
        Ok(Some(RegConfig {
            db_url: db_url.to_string(),
            table,
            timer_interval: secs("reg_timer_interval", 90)?.max(1),
            retry_interval: secs("reg_retry_interval", 0)?,
            keep_callid: mp.int("uac", "reg_keep_callid").unwrap_or(0) != 0,
            random_delay: secs("reg_random_delay", 0)?.min(u64::from(u32::MAX)) as u32,
            active: mp.int("uac", "reg_active").unwrap_or(1) != 0,
            contact_addr,
            default_socket,
            gc_interval: secs("reg_gc_interval", 150)?,
            fr_timeout_ms: mp
                .int("tm", "fr_timer")
                .filter(|v| *v > 0)
                .map_or(30_000, |v| v as u64),
            use_domain: mp.int("uac", "reg_use_domain").unwrap_or(0) != 0,
        }))
    }
}

/// The remote-registration parameters accepted with no effect, as "uac NAME"
/// (`check -v`): the hash table size only orders Kamailio's memory.
pub fn unsupported_params(mp: &ModParams) -> Vec<String> {
    mp.set_among("uac", &["reg_hash_size"])
}

/// `proto:host:port` (or `host:port`, UDP).
pub fn parse_socket(s: &str) -> Option<(Proto, std::net::SocketAddr)> {
    let (proto, rest) = match s.split_once(':') {
        Some((p, rest)) if matches!(p.to_ascii_lowercase().as_str(), "udp" | "tcp" | "tls") => {
            (Proto::from_name(p.as_bytes())?, rest)
        }
        _ => (Proto::Udp, s),
    };
    let rest = rest.trim();
    let addr = rest
        .parse()
        .ok()
        .or_else(|| format!("{rest}:5060").parse().ok())?;
    Some((proto, addr))
}

/// One row of the `uacreg` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub l_uuid: String,
    pub l_username: String,
    pub l_domain: String,
    pub r_username: String,
    pub r_domain: String,
    pub realm: String,
    pub auth_username: String,
    pub auth_password: String,
    pub auth_ha1: String,
    pub auth_proxy: String,
    pub expires: u32,
    pub flags: u32,
    pub reg_delay: u32,
    pub contact_addr: String,
    pub socket: String,
}

/// The columns read, in this order.
pub const COLUMNS: &[&str] = &[
    "l_uuid",
    "l_username",
    "l_domain",
    "r_username",
    "r_domain",
    "realm",
    "auth_username",
    "auth_password",
    "auth_ha1",
    "auth_proxy",
    "expires",
    "flags",
    "reg_delay",
    "contact_addr",
    "socket",
];

impl Record {
    /// A row in [`COLUMNS`] order; the error says why Kamailio would skip
    /// it (an empty required column, no password nor HA1).
    pub fn from_row(row: &[SqlValue]) -> Result<Record, String> {
        let text = |i: usize| match row.get(i) {
            Some(SqlValue::Str(s)) => String::from_utf8_lossy(s).into_owned(),
            Some(SqlValue::Int(n) | SqlValue::BigInt(n)) => n.to_string(),
            Some(SqlValue::Double(d)) => d.to_string(),
            Some(SqlValue::Null) | None => String::new(),
        };
        let int = |i: usize| match row.get(i) {
            Some(SqlValue::Int(n) | SqlValue::BigInt(n)) => *n as u32,
            Some(SqlValue::Double(d)) => *d as u32,
            Some(SqlValue::Str(s)) => String::from_utf8_lossy(s).trim().parse().unwrap_or(0),
            _ => 0,
        };
        let rec = Record {
            l_uuid: text(0),
            l_username: text(1),
            l_domain: text(2),
            r_username: text(3),
            r_domain: text(4),
            realm: text(5),
            auth_username: text(6),
            auth_password: text(7),
            auth_ha1: text(8),
            auth_proxy: text(9),
            expires: int(10),
            flags: int(11),
            reg_delay: int(12),
            contact_addr: text(13),
            socket: text(14),
        };
        rec.check()?;
        Ok(rec)
    }

    /// Kamailio's checks of a record before it is kept.
    pub fn check(&self) -> Result<(), String> {
        let required = [
            ("l_uuid", &self.l_uuid),
            ("l_username", &self.l_username),
            ("l_domain", &self.l_domain),
            ("r_username", &self.r_username),
            ("r_domain", &self.r_domain),
            ("auth_username", &self.auth_username),
            ("auth_proxy", &self.auth_proxy),
        ];
        for (name, v) in required {
            if v.is_empty() {
                return Err(format!("empty value not allowed for column '{name}'"));
            }
        }
        if self.auth_password.is_empty() && self.auth_ha1.is_empty() {
            return Err("no password value provided".into());
        }
        // An MD5 HA1 in hex, even when a password is there too.
        if !self.auth_ha1.is_empty() && self.auth_ha1.len() != 32 {
            return Err(format!("invalid HA1 length: {}", self.auth_ha1.len()));
        }
        Ok(())
    }
}

/// One record with its registration state.
#[derive(Clone, Debug)]
pub struct Reg {
    pub rec: Record,
    pub flags: u32,
    /// Unix seconds: the end of the registration (while online), the send
    /// time (while a REGISTER waits), or when to retry.
    pub timer_expires: u64,
    /// Unix seconds when the record was loaded.
    pub reg_init: u64,
    /// The start delay in effect (`reg_delay`, else a random one).
    pub reg_delay: u32,
    /// The Contact's `host[:port]`: the row's `contact_addr`, else `reg_contact_addr`.
    pub contact_addr: String,
    pub callid: Vec<u8>,
    pub cseq: u32,
    pub tag: Vec<u8>,
    pub fr_timeout_ms: u64,
    pub pending: Option<machine::Pending>,
    /// `uac.reg_unregister` asked for a REGISTER now (with `expires` 0).
    pub send_now: bool,
}

#[derive(Debug, Default)]
pub struct RegState {
    pub regs: Vec<Reg>,
    pub next_round: Option<u64>,
    pub seq: u64,
    /// Unix seconds of the last `uac.reg_reload`.
    pub last_reload: Option<u64>,
    pub counters: Counters,
}

/// Kamailio's `uac:regactive` and `uac:regdisabled` counters, kept with
/// its arithmetic: a REGISTER sent takes one from `regactive`, each end of
/// a transaction (success or failure) adds one; a record disabled by a
/// failure adds one to `regdisabled`, `uac.reg_enable` takes one (found or
/// not) and `uac.reg_disable` adds one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub regactive: i64,
    pub regdisabled: i64,
}

/// The `uac:` statistics (`stats.get_statistics uac:`), as Kamailio 5.6
/// prints them (unsigned: a negative value wraps).
pub fn statistics(r: &Registrations) -> Vec<(&'static str, String, u64)> {
    let st = r.lock();
    vec![
        ("uac", "regactive".to_string(), st.counters.regactive as u64),
        (
            "uac",
            "regdisabled".to_string(),
            st.counters.regdisabled as u64,
        ),
        ("uac", "regtotal".to_string(), st.regs.len() as u64),
    ]
}

/// The registrations shared by the cores.
#[derive(Debug)]
pub struct Registrations {
    pub cfg: RegConfig,
    /// Mixed into branches, tags and Call-IDs so runs do not collide.
    base: u64,
    active: AtomicBool,
    pub(super) state: Mutex<RegState>,
    store: Option<StoreHandle>,
}

impl Registrations {
    /// The registrations of `records`, loaded at `now` (unix seconds).
    pub fn new(
        cfg: RegConfig,
        records: Vec<Record>,
        base: u64,
        now: u64,
        store: Option<StoreHandle>,
    ) -> Registrations {
        let r = Registrations {
            active: AtomicBool::new(cfg.active),
            cfg,
            base,
            state: Mutex::new(RegState::default()),
            store,
        };
        {
            let mut st = r.lock();
            for rec in records {
                let reg = r.new_reg(rec, now, &mut st.seq);
                st.regs.push(reg);
            }
        }
        r
    }

    fn new_reg(&self, rec: Record, now: u64, seq: &mut u64) -> Reg {
        *seq += 1;
        let reg_delay = if rec.reg_delay > 0 {
            rec.reg_delay
        } else if self.cfg.random_delay > 0 {
            let r = crate::modules::core::hash::fnv1a(
                self.base,
                &[b"uacreg-delay", &seq.to_le_bytes()],
            );
            (r % u64::from(self.cfg.random_delay)) as u32
        } else {
            0
        };
        let contact_addr = if rec.contact_addr.is_empty() {
            self.cfg.contact_addr.clone()
        } else {
            rec.contact_addr.clone()
        };
        Reg {
            flags: rec.flags,
            timer_expires: 0,
            reg_init: now,
            reg_delay,
            contact_addr,
            callid: Vec::new(),
            cseq: 0,
            tag: Vec::new(),
            fr_timeout_ms: self.cfg.fr_timeout_ms,
            pending: None,
            send_now: false,
            rec,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, RegState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Sets `reg_active`; the old value.
    pub fn set_active(&self, on: bool) -> bool {
        self.active.swap(on, Ordering::Relaxed)
    }

    /// Adds a record (`uac.reg_add`); false when its `l_uuid` exists.
    pub fn add(&self, rec: Record, now: u64) -> bool {
        let mut st = self.lock();
        if st.regs.iter().any(|r| r.rec.l_uuid == rec.l_uuid) {
            return false;
        }
        let reg = self.new_reg(rec, now, &mut st.seq);
        st.regs.push(reg);
        true
    }

    /// Removes a record (`uac.reg_remove`); false when there is none.
    pub fn remove(&self, l_uuid: &str) -> bool {
        let mut st = self.lock();
        let before = st.regs.len();
        st.regs.retain(|r| r.rec.l_uuid != l_uuid);
        st.regs.len() != before
    }

    /// Puts a record read again from the database in place of the one in
    /// memory, or adds it; only a REGISTER waiting for its answer carries
    /// over (as in Kamailio: the record is not registered until the next
    /// round registers it).
    pub fn replace(&self, rec: Record, now: u64) {
        let mut st = self.lock();
        let mut reg = self.new_reg(rec, now, &mut st.seq);
        if let Some(at) = st.regs.iter().position(|r| r.rec.l_uuid == reg.rec.l_uuid) {
            let old = st.regs.remove(at);
            reg.flags |= old.flags & (ONGOING | AUTHSENT);
            reg.pending = old.pending;
        }
        st.regs.push(reg);
    }

    /// Every record in memory replaced by `records` (registered again at
    /// the next round, which keeps its time).
    pub fn reload(&self, records: Vec<Record>, now: u64) {
        let mut st = self.lock();
        st.regs.clear();
        // Kamailio resets its counters with the old table.
        st.counters = Counters::default();
        for rec in records {
            let reg = self.new_reg(rec, now, &mut st.seq);
            st.regs.push(reg);
        }
    }

    /// The table read again (`uac.reg_reload`, `uac.reg_refresh`); `l_uuid`: one record.
    pub fn read_table(&self, l_uuid: Option<&str>) -> Result<Vec<Record>, String> {
        let store = self.store.as_ref().ok_or("no database")?;
        load(store, &self.cfg.table, l_uuid)
    }

    /// Where `reg`'s REGISTER goes: `auth_proxy` (a host name resolved
    /// through `resolve`), from the record's socket, else `default_socket`,
    /// else the first of the transport and family.
    fn route(&self, env: &Env, reg: &Reg, now: Instant) -> Option<machine::Route> {
        let uri = crate::sip::uri::Uri::parse(reg.rec.auth_proxy.as_bytes()).ok()?;
        let proto = uri.transport().unwrap_or(Proto::Udp);
        let host = uri.host_raw();
        let port = uri.port().unwrap_or(proto.default_port());
        let ip = match std::str::from_utf8(host)
            .ok()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<std::net::IpAddr>().ok())
        {
            Some(ip) => ip,
            None => {
                let resolver = env.services.get::<crate::modules::core::dns::Resolver>()?;
                *resolver.resolve(host, now).first()?
            }
        };
        let dst = std::net::SocketAddr::new(ip, port);
        let wanted = [
            reg.rec.socket.as_str(),
            self.cfg.default_socket.as_deref().unwrap_or(""),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .find_map(parse_socket)
        .and_then(|(p, a)| {
            env.sockets
                .iter()
                .position(|s| s.proto == p && s.addr == a)
                .map(|i| i as crate::sip::packet::SocketId)
        });
        let socket = env.socket_for(proto, &dst, wanted)?;
        let info = &env.sockets[usize::from(socket)];
        let via_host = match &info.advertise {
            Some((h, p)) => format!("{h}:{p}"),
            None => {
                let mut a = info.addr;
                if a.ip().is_unspecified() && dst.ip().is_loopback() {
                    a.set_ip(dst.ip());
                }
                if omits_port(proto, a.port()) {
                    let text = fmt_hostport(a);
                    text[..text.rfind(':').unwrap_or(text.len())].to_string()
                } else {
                    fmt_hostport(a)
                }
            }
        };
        Some(machine::Route {
            dst,
            proto,
            socket: Some(socket),
            via_host: via_host.into_bytes(),
        })
    }
}

/// Reads the table (every row, or the one of `l_uuid`); rows Kamailio
/// would skip are logged and left out.
pub fn load(store: &StoreHandle, table: &str, l_uuid: Option<&str>) -> Result<Vec<Record>, String> {
    let mut sql = format!("SELECT {} FROM {table}", COLUMNS.join(", "));
    if let Some(u) = l_uuid {
        let lit = crate::store::sql_literal(u.as_bytes()).ok_or("uac: unusable l_uuid")?;
        sql.push_str(&format!(" WHERE l_uuid = {lit}"));
    }
    let rows = store
        .call(move |s| s.query(&sql), Duration::from_secs(10))
        .ok_or("uac: the database did not answer")?
        .map_err(|e| format!("uac: cannot load {table}: {e}"))?;
    let mut out = Vec::new();
    for row in &rows.rows {
        match Record::from_row(row) {
            Ok(r) => out.push(r),
            Err(e) => log::error!("uac: {e} - ignoring record"),
        }
    }
    Ok(out)
}

impl LocalRequests for Registrations {
    fn interval(&self) -> Duration {
        TICK
    }

    fn on_timer(&self, env: &Env, now: Instant, out: &mut Vec<Transmit>, _: &mut Vec<LocalEvent>) {
        let now_ms = env.epoch.unix_ms(now);
        let route = |reg: &Reg| self.route(env, reg, now);
        self.tick(now_ms, &route, &env.user_agent, out);
    }

    fn on_reply(&self, msg: &Message, _: Instant, _: &mut Vec<LocalEvent>) -> bool {
        // The engine calls `on_reply_sending`; this only says whose it is.
        machine::is_ours(msg)
    }

    fn on_reply_sending(
        &self,
        env: &Env,
        msg: &Message,
        now: Instant,
        out: &mut Vec<Transmit>,
        _: &mut Vec<LocalEvent>,
    ) -> bool {
        Registrations::on_reply(self, msg, env.epoch.unix_ms(now), &env.user_agent, out)
    }
}
