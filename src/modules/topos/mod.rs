//! topos: topology stripping (Kamailio's module of that name). Each side of
//! a call sees only this proxy: requests and replies leave with this
//! proxy's Via alone, no Record-Route of the other side, and a Contact
//! `<sip:atpsh-<uid>@proxy>` (towards the caller) or `<sip:btpsh-<uid>@proxy>`
//! (towards the callee); what was removed is kept in dialog and transaction
//! records (Kamailio's `topos_d` / `topos_t` tables, in the database of
//! `db_url`) and put back when the answer or the next in-dialog request
//! comes in. Call-ID is kept. See [`msg`] for the rewriting.
//!
//! Like topoh it is a step of the engine's raw-bytes pipeline beside the
//! network intercept stage, through the same hook ([`Topology`]):
//! `event_route[topos:msg-outgoing]` runs before a message is looked at,
//! `event_route[topos:msg-sending]` once it is parsed; `drop` in either
//! sends that message as it is (`event_mode` bits 1 and 2). The routes on
//! received messages (`topos:msg-incoming`, `topos:msg-receiving`, bits 4
//! and 8) are refused at start-up when their bit is on.

pub mod msg;
pub mod record;
pub mod storage;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::script::ctx::{CoreState, Env};
use crate::script::ir::{Program, RouteId};
use crate::script::registry::{param, ModParams, ModuleDef, ParamKind, ParamValue};
use crate::sip::{Inbound, Transmit};
use crate::store::StoreHandle;

pub use msg::Topos;
use record::{Change, Tables};

pub const EVENT_OUTGOING: &str = "topos:msg-outgoing";
pub const EVENT_SENDING: &str = "topos:msg-sending";
/// Event routes of Kamailio 5.6 on received messages, not run by ringsip,
/// with their `event_mode` bits.
pub const EVENTS_NOT_YET: &[(&str, i64)] = &[("topos:msg-incoming", 4), ("topos:msg-receiving", 8)];
const EVENT_MODE_OUTGOING: i64 = 1;
const EVENT_MODE_SENDING: i64 = 2;
/// Kamailio 5.6's default: every event route.
pub const EVENT_MODE_DEFAULT: i64 = 15;

/// Refuses, at its `modparam` line, a value ringsip does not implement.
pub fn check_param(param: &str, value: &ParamValue) -> Result<(), String> {
    let not_yet = |what: String| Err(format!("{what} is not implemented in ringsip yet"));
    match (param, value) {
        ("storage", ParamValue::Str(s)) if s != "db" => {
            not_yet(format!("storage \"{s}\" (only \"db\", through db_url)"))
        }
        ("mask_callid", ParamValue::Int(n)) if *n != 0 => {
            not_yet("mask_callid (Call-ID masking through topoh)".into())
        }
        ("contact_mode", ParamValue::Int(n)) if *n != 0 => not_yet(format!(
            "contact_mode {n} (only 0, the uid as contact user)"
        )),
        ("rr_update", ParamValue::Int(n)) if *n != 0 => not_yet("rr_update".into()),
        (
            "event_callback"
            | "xavu_cfg"
            | "xavu_field_a_contact"
            | "xavu_field_b_contact"
            | "xavu_field_contact_host"
            | "context",
            ParamValue::Str(s),
        ) if !s.is_empty() => not_yet(param.to_string()),
        ("branch_expire" | "dialog_expire" | "clean_interval", ParamValue::Int(n)) if *n <= 0 => {
            Err(format!("{param} must be more than 0"))
        }
        _ => Ok(()),
    }
}

/// topos as the configuration set it, with its records (shared by every core).
#[derive(Debug)]
pub struct ToposShared {
    pub topos: Topos,
    pub event_mode: i64,
    pub branch_expire: i64,
    pub dialog_expire: i64,
    pub clean_interval: i64,
    state: Mutex<State>,
    db: Option<StoreHandle>,
}

#[derive(Debug, Default)]
struct State {
    tables: Tables,
    counter: u64,
    /// Unix seconds of the next clean-up.
    next_clean: i64,
}

/// How long start-up waits for the records to load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

impl ToposShared {
    /// Reads the `modparam`s and loads the records from `db`.
    pub fn open(
        mp: &ModParams,
        sanity_loaded: bool,
        process: u32,
        db: Option<StoreHandle>,
    ) -> Result<ToposShared, String> {
        let int = |name: &str, default: i64| mp.int("topos", name).unwrap_or(default);
        let sanity = if int("sanity_checks", 0) != 0 {
            if !sanity_loaded {
                return Err("topos: sanity_checks needs loadmodule \"sanity.so\"".into());
            }
            Some(crate::modules::sanity::DefaultChecks::from_modparams(mp))
        } else {
            None
        };
        let contact_host = mp
            .str("topos", "contact_host")
            .filter(|h| !h.is_empty())
            .map(|h| h.as_bytes().to_vec());
        let mut state = State::default();
        if let Some(db) = &db {
            let loaded = db.call(
                |s| {
                    let d = s.query(storage::LOAD_DIALOGS)?;
                    let b = s.query(storage::LOAD_BRANCHES)?;
                    Ok::<_, crate::store::StoreError>((d, b))
                },
                LOAD_TIMEOUT,
            );
            match loaded {
                Some(Ok((d, b))) => storage::load(&mut state.tables, &d, &b),
                Some(Err(e)) => {
                    return Err(format!(
                        "topos: reading topos_d/topos_t from {} failed: {e}",
                        db.url()
                    ))
                }
                None => return Err(format!("topos: {} did not answer", db.url())),
            }
        }
        Ok(ToposShared {
            topos: Topos {
                contact_host,
                sanity,
                process,
            },
            event_mode: int("event_mode", EVENT_MODE_DEFAULT),
            branch_expire: int("branch_expire", 180),
            dialog_expire: int("dialog_expire", 10800),
            clean_interval: int("clean_interval", 60),
            state: Mutex::new(state),
            db,
        })
    }

    /// Runs `f` on the records at unix time `unix`, cleaning them first when
    /// `clean_interval` has passed; the changes go to the database.
    fn with<R>(&self, unix: i64, f: impl FnOnce(&mut msg::Io<'_>) -> R) -> R {
        let mut changes = Vec::new();
        let r = {
            let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let st = &mut *guard;
            if st.next_clean == 0 {
                st.next_clean = unix + self.clean_interval;
            } else if unix >= st.next_clean {
                st.next_clean = unix + self.clean_interval;
                let c = Change::Clean {
                    dialogs_before: unix - self.dialog_expire,
                    unconfirmed_before: unix - self.branch_expire,
                    branches_before: unix - self.branch_expire,
                };
                if let Change::Clean {
                    dialogs_before,
                    unconfirmed_before,
                    branches_before,
                } = c
                {
                    st.tables
                        .clean(dialogs_before, unconfirmed_before, branches_before);
                }
                changes.push(c);
            }
            let mut io = msg::Io {
                tables: &mut st.tables,
                unix,
                counter: &mut st.counter,
                changes: &mut changes,
            };
            f(&mut io)
        };
        if let Some(db) = &self.db {
            for c in &changes {
                let sql = storage::statements(c);
                if !sql.is_empty() {
                    db.submit(move |s| {
                        for q in sql {
                            let _ = s.query(&q);
                        }
                    });
                }
            }
        }
        r
    }
}

/// The topology step of one core's pipeline: topoh's masking or topos's
/// stripping (a configuration loads one of them).
#[derive(Debug)]
pub enum Topology {
    Hide(Box<crate::modules::topoh::Stage>),
    Strip(Stage),
}

impl Topology {
    pub fn for_program(env: &Env, program: &Program) -> Option<Topology> {
        if let Some(s) = Stage::for_program(env, program) {
            return Some(Topology::Strip(s));
        }
        crate::modules::topoh::Stage::for_program(env, program).map(|s| Topology::Hide(Box::new(s)))
    }

    /// A received message, rewritten in place.
    pub fn incoming(&self, env: &Env, pkt: &mut Inbound, now: Instant) {
        match self {
            Topology::Hide(s) => s.incoming(env, pkt),
            Topology::Strip(s) => s.incoming(env, pkt, now),
        }
    }

    /// A message about to be sent, rewritten in place.
    pub fn outgoing(
        &self,
        env: &Env,
        program: &Program,
        core: &mut CoreState,
        t: &mut Transmit,
        now: Instant,
    ) {
        match self {
            Topology::Hide(s) => s.outgoing(env, program, core, t, now),
            Topology::Strip(s) => s.outgoing(env, program, core, t, now),
        }
    }
}

/// topos as a step of one core's pipeline.
#[derive(Debug)]
pub struct Stage {
    shared: std::sync::Arc<ToposShared>,
    outgoing_route: Option<RouteId>,
    sending_route: Option<RouteId>,
}

impl Stage {
    /// `None` when topos is not loaded.
    pub fn for_program(env: &Env, program: &Program) -> Option<Stage> {
        if !program.loaded_modules.contains(&"topos") {
            return None;
        }
        let shared = env.services.get_arc::<ToposShared>()?;
        let route = |name: &str, bit: i64| {
            (shared.event_mode & bit != 0)
                .then(|| program.event_routes.get(name).copied())
                .flatten()
        };
        Some(Stage {
            outgoing_route: route(EVENT_OUTGOING, EVENT_MODE_OUTGOING),
            sending_route: route(EVENT_SENDING, EVENT_MODE_SENDING),
            shared,
        })
    }

    fn unix(env: &Env, now: Instant) -> i64 {
        (env.epoch.unix_ms(now) / 1000) as i64
    }

    pub fn incoming(&self, env: &Env, pkt: &mut Inbound, now: Instant) {
        let topos = &self.shared.topos;
        if let Some(data) = self
            .shared
            .with(Self::unix(env, now), |io| topos.incoming(io, &pkt.data))
        {
            pkt.data = data;
        }
    }

    pub fn outgoing(
        &self,
        env: &Env,
        program: &Program,
        core: &mut CoreState,
        t: &mut Transmit,
        now: Instant,
    ) {
        let routes = (self.outgoing_route, self.sending_route);
        if crate::modules::topoh::outgoing_events(env, program, core, t, routes, now) {
            return;
        }
        let topos = &self.shared.topos;
        if let Some(data) = self
            .shared
            .with(Self::unix(env, now), |io| topos.outgoing(io, &t.data))
        {
            t.data = data;
        }
    }
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "topos",
    aliases: &[],
    functions: &[],
    params: &[
        param("storage", ParamKind::Str),
        param("db_url", ParamKind::Str),
        param("mask_callid", ParamKind::Int),
        param("sanity_checks", ParamKind::Int),
        param("branch_expire", ParamKind::Int),
        param("dialog_expire", ParamKind::Int),
        param("clean_interval", ParamKind::Int),
        param("event_callback", ParamKind::Str),
        param("event_mode", ParamKind::Int),
        param("contact_host", ParamKind::Str),
        param("contact_mode", ParamKind::Int),
        param("cparam_name", ParamKind::Str),
        param("xavu_cfg", ParamKind::Str),
        param("xavu_field_a_contact", ParamKind::Str),
        param("xavu_field_b_contact", ParamKind::Str),
        param("xavu_field_contact_host", ParamKind::Str),
        param("rr_update", ParamKind::Int),
        param("context", ParamKind::Str),
    ],
    always: false,
};

#[cfg(test)]
mod tests;
