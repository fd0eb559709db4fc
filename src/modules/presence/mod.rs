//! presence and presence_xml: a presence server (RFC 3856, RFC 3903), as
//! Kamailio 5.6 runs one with its stock `route[PRESENCE]`.
//!
//! ```text
//!  PUBLISH ─handle_publish()─▶ presentity (user, domain, event, ETag) ──┐
//!     200 OK, SIP-ETag, Expires │ 412 unknown ETag │ 489 Bad Event      │ changed
//!                                                                       ▼
//!  SUBSCRIBE ─handle_subscribe()─▶ subscription (Call-ID, To-tag, From-tag)
//!     200 OK, Expires, Contact ──▶ NOTIFY (Subscription-State, the aggregated PIDF)
//! ```
//!
//! Parts: [`state`] holds the presentities and subscriptions of every core
//! (the decisions, on plain values and unix time); `functions` are the
//! script functions (the request read, the reply and the NOTIFYs sent, a
//! NOTIFY as a tm local client transaction); [`notify`] writes a NOTIFY and
//! a watcher-info document; [`pidf`] aggregates the published documents;
//! [`db`] writes the `presentity`, `active_watchers` and `watchers` tables
//! (Kamailio's schema) when `db_url` is set, and loads them at start-up;
//! [`timer`] forgets lapsed state every `clean_period` and sends the
//! NOTIFYs that follow (also on `presence.cleanup` / `presence.refreshWatchers`).
//!
//! Events: `presence` (PIDF, published) and `presence.winfo` (RFC 3857,
//! made here: the presentity's watchers). presence_xml's `force_active` is
//! how authorization works here: every watcher is active (XCAP rules are
//! not read).

use std::time::Duration;

use crate::script::registry::{func as f, param as p, ModParams, ModuleDef, ParamKind, RouteMask};

pub mod db;
mod functions;
pub mod notify;
pub mod pidf;
pub mod state;
pub mod timer;

#[cfg(test)]
mod tests;

pub use state::{Presence, Subscription};

/// The module parameters (presence and presence_xml), read once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceConfig {
    /// `max_expires` (3600): longer Expires are cut to it.
    pub max_expires: u32,
    /// `min_expires` (0: none): a shorter non-zero SUBSCRIBE Expires is
    /// answered 423 (`min_expires_action` 1) or raised to it (2).
    pub min_expires: u32,
    pub min_expires_action: u8,
    /// Without an Expires header: the event's default (3600, as
    /// presence_xml registers `presence`; not a parameter).
    pub default_expires: u32,
    /// `server_address`: the Contact of replies and NOTIFYs (else built
    /// from the socket the request came in on).
    pub server_address: Option<String>,
    pub presentity_table: String,
    pub active_watchers_table: String,
    pub watchers_table: String,
    /// `subs_db_mode` (Kamailio's default 2, write-back; here every mode
    /// but 0 writes through).
    pub subs_db_mode: u8,
    /// `clean_period` / `db_update_period` (100 s): the expiry timer.
    pub clean_period: Duration,
    /// presence_xml `force_active`.
    pub force_active: bool,
}

impl Default for PresenceConfig {
    fn default() -> PresenceConfig {
        PresenceConfig::from_modparams(&ModParams::default()).expect("defaults are valid")
    }
}

impl PresenceConfig {
    /// Reads the parameters; the error names the bad one.
    pub fn from_modparams(mp: &ModParams) -> Result<PresenceConfig, String> {
        let secs = |name: &str, default: i64| -> Result<u32, String> {
            let v = mp.int("presence", name).unwrap_or(default);
            u32::try_from(v).map_err(|_| format!("presence: {name} {v} is not a number of seconds"))
        };
        let table = |name: &str, default: &str| -> Result<String, String> {
            let t = mp
                .str("presence", name)
                .unwrap_or(default)
                .trim()
                .to_string();
            if crate::store::is_identifier(&t) {
                Ok(t)
            } else {
                Err(format!("presence: {name} \"{t}\" is not a table name"))
            }
        };
        let action = mp.int("presence", "min_expires_action").unwrap_or(1);
        if !(1..=2).contains(&action) {
            return Err(format!(
                "presence: min_expires_action {action} is not 1 or 2"
            ));
        }
        let subs_db_mode = mp.int("presence", "subs_db_mode").unwrap_or(2);
        if !(0..=3).contains(&subs_db_mode) {
            return Err(format!("presence: subs_db_mode {subs_db_mode} is not 0..3"));
        }
        let clean = secs("clean_period", 100)?.max(1);
        Ok(PresenceConfig {
            max_expires: secs("max_expires", 3600)?,
            min_expires: secs("min_expires", 0)?,
            min_expires_action: action as u8,
            // Not a parameter in Kamailio 5.6: presence_xml registers the
            // event with 3600.
            default_expires: 3600,
            server_address: mp
                .str("presence", "server_address")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
            presentity_table: table("presentity_table", "presentity")?,
            active_watchers_table: table("active_watchers_table", "active_watchers")?,
            watchers_table: table("watchers_table", "watchers")?,
            subs_db_mode: subs_db_mode as u8,
            clean_period: Duration::from_secs(u64::from(clean)),
            force_active: mp.int("presence_xml", "force_active").unwrap_or(0) != 0,
        })
    }
}

/// Parameters accepted with a warning when set: they change nothing here.
pub fn unsupported_params(mp: &ModParams) -> Vec<String> {
    let mut out = Vec::new();
    for (module, name) in [
        ("presence", "send_fast_notify"),
        ("presence", "notifier_processes"),
        ("presence", "publ_cache"),
        ("presence", "enable_sphere_check"),
        ("presence", "timeout_rm_subs"),
        ("presence_xml", "disable_presence"),
        ("presence_xml", "disable_winfo"),
        ("presence_xml", "xcap_table"),
        ("presence_xml", "xcap_server"),
        ("presence_xml", "passive_mode"),
        ("presence_xml", "force_dummy_presence"),
    ] {
        if mp.int(module, name).is_some() || mp.str(module, name).is_some() {
            out.push(format!("{module} {name}"));
        }
    }
    if mp.int("presence_xml", "force_active") == Some(0) {
        out.push(
            "presence_xml force_active 0 (XCAP authorization rules are not read: \
             every watcher is active)"
                .into(),
        );
    }
    out
}

const REQ: RouteMask = RouteMask::REQUEST;

/// The presence module.
pub static MODULE: ModuleDef = ModuleDef {
    name: "presence",
    aliases: &[],
    functions: &[
        f("handle_publish", 0, 1, REQ, None, functions::handle_publish),
        f(
            "handle_subscribe",
            0,
            1,
            REQ,
            None,
            functions::handle_subscribe,
        ),
    ],
    params: &[
        p("db_url", ParamKind::Str),
        p("presentity_table", ParamKind::Str),
        p("active_watchers_table", ParamKind::Str),
        p("watchers_table", ParamKind::Str),
        p("clean_period", ParamKind::Int),
        p("db_update_period", ParamKind::Int),
        p("waitn_time", ParamKind::Int),
        p("notifier_poll_rate", ParamKind::Int),
        p("notifier_processes", ParamKind::Int),
        p("expires_offset", ParamKind::Int),
        p("max_expires", ParamKind::Int),
        p("min_expires", ParamKind::Int),
        p("min_expires_action", ParamKind::Int),
        p("server_address", ParamKind::Str),
        p("subs_db_mode", ParamKind::Int),
        p("publ_cache", ParamKind::Int),
        p("subs_htable_size", ParamKind::Int),
        p("pres_htable_size", ParamKind::Int),
        p("send_fast_notify", ParamKind::Int),
        p("enable_sphere_check", ParamKind::Int),
        p("timeout_rm_subs", ParamKind::Int),
        p("local_log_level", ParamKind::Int),
        p("local_log_facility", ParamKind::Str),
        p("retrieve_order", ParamKind::Int),
        p("sip_uri_match", ParamKind::Int),
    ],
    always: false,
};

/// The presence_xml module: the `presence` event's documents (PIDF).
pub static MODULE_XML: ModuleDef = ModuleDef {
    name: "presence_xml",
    aliases: &[],
    functions: &[],
    params: &[
        p("db_url", ParamKind::Str),
        p("xcap_table", ParamKind::Str),
        p("force_active", ParamKind::Int),
        p("integrated_xcap_server", ParamKind::Int),
        p("xcap_server", ParamKind::Str),
        p("passive_mode", ParamKind::Int),
        p("disable_presence", ParamKind::Int),
        p("disable_winfo", ParamKind::Int),
        p("disable_bla", ParamKind::Int),
        p("disable_xcapdiff", ParamKind::Int),
        p("force_dummy_presence", ParamKind::Int),
        p("force_presence_single_body", ParamKind::Int),
    ],
    always: false,
};
