//! topoh: topology hiding (Kamailio's module of that name). Every message
//! this proxy sends has the addresses of the other side masked (Via,
//! Record-Route, Contact, optionally Call-ID) into values only this proxy
//! (or another with the same `mask_key`) can read back; every message it
//! receives has them decoded before parsing, so the script, tm and the
//! endpoints see what they would see without topoh.
//!
//! It runs as a step of the engine's raw-bytes pipeline, beside the network
//! intercept stage ([`crate::intercept`]): [`msg::Topoh::incoming`] on each
//! received buffer, [`msg::Topoh::outgoing`] on each buffer about to be sent.
//! Without `loadmodule "topoh.so"` the engine holds no stage and pays one
//! branch per message.
//!
//! `event_route[topoh:msg-outgoing]` runs before a message is looked at
//! (`$sndto(ip)`… tell where it goes), `event_route[topoh:msg-sending]` once it
//! is parsed; `drop` in either sends that message unmasked (`event_mode`
//! selects which run: 1, 2, or 3 for both).

pub mod mask;
pub mod msg;

use std::time::Instant;

use crate::script::ctx::{CoreState, Env, MsgCtx};
use crate::script::ir::{Program, RouteId};
use crate::script::registry::{param, ModParams, ModuleDef, ParamKind, RouteType};
use crate::script::vm::{self, Outcome};
use crate::sip::{Inbound, Message, Transmit};

pub use mask::Mask;
pub use msg::Topoh;

/// Kamailio 5.6's defaults.
pub const DEFAULT_KEY: &str = "aL9.n8~Hm]Z";
pub const DEFAULT_IP: &str = "127.0.0.8";

/// The event routes.
pub const EVENT_OUTGOING: &str = "topoh:msg-outgoing";
pub const EVENT_SENDING: &str = "topoh:msg-sending";
const EVENT_MODE_OUTGOING: i64 = 1;
const EVENT_MODE_SENDING: i64 = 2;

/// topoh's parameters as the configuration set them.
#[derive(Clone, Debug)]
pub struct TopohConfig {
    pub topoh: Topoh,
    /// `use_mode` 1: only the mask for other modules, no message handling.
    pub library_only: bool,
    pub event_mode: i64,
}

impl TopohConfig {
    /// Reads the `modparam`s; a value Kamailio refuses at start-up is an
    /// error (`sanity_loaded`: whether the configuration loads sanity, which
    /// `sanity_checks` needs).
    pub fn from_modparams(mp: &ModParams, sanity_loaded: bool) -> Result<TopohConfig, String> {
        let s = |name: &str, default: &str| -> Vec<u8> {
            mp.str("topoh", name).unwrap_or(default).as_bytes().to_vec()
        };
        let int = |name: &str, default: i64| mp.int("topoh", name).unwrap_or(default);
        let key = s("mask_key", DEFAULT_KEY);
        let mask = Mask::new(&key).ok_or("topoh: mask_key must not be empty")?;
        let ip = s("mask_ip", DEFAULT_IP);
        if ip.is_empty() {
            return Err("topoh: mask_ip must not be empty".into());
        }
        if ip.len() + 32 >= 1024 {
            return Err("topoh: mask_ip is too long".into());
        }
        let uri = [b"sip:".as_slice(), &ip].concat();
        if crate::sip::uri::Uri::parse(&uri).is_err() {
            return Err(format!(
                "topoh: mask_ip \"{}\" does not make a valid URI",
                String::from_utf8_lossy(&ip)
            ));
        }
        let sanity = if int("sanity_checks", 0) != 0 {
            if !sanity_loaded {
                return Err("topoh: sanity_checks needs loadmodule \"sanity.so\"".into());
            }
            Some(crate::modules::sanity::DefaultChecks::from_modparams(mp))
        } else {
            None
        };
        let uparam_name = s("uparam_name", "line");
        let uparam_prefix = s("uparam_prefix", "sr-");
        let vparam_name = s("vparam_name", "branch");
        let vparam_prefix = s("vparam_prefix", "z9hG4bKsr-");
        let via_prefix = [
            b"SIP/2.0/UDP ".as_slice(),
            &ip,
            b";",
            &vparam_name,
            b"=",
            &vparam_prefix,
        ]
        .concat();
        let uri_prefix = [uri.as_slice(), b";", &uparam_name, b"=", &uparam_prefix].concat();
        Ok(TopohConfig {
            topoh: Topoh {
                mask,
                ip,
                uparam_name,
                uparam_prefix,
                vparam_name,
                vparam_prefix,
                callid_prefix: s("callid_prefix", "!!:"),
                mask_callid: int("mask_callid", 0) != 0,
                uri_prefix_checks: int("uri_prefix_checks", 0) != 0,
                sanity,
                via_prefix,
                uri_prefix,
            },
            library_only: int("use_mode", 0) == 1,
            event_mode: int("event_mode", EVENT_MODE_OUTGOING | EVENT_MODE_SENDING),
        })
    }
}

/// topoh as a step of one core's pipeline.
#[derive(Debug)]
pub struct Stage {
    config: TopohConfig,
    outgoing_route: Option<RouteId>,
    sending_route: Option<RouteId>,
}

impl Stage {
    /// The stage for `env` and `program`: `None` when topoh is not loaded
    /// (or is in library mode).
    pub fn for_program(env: &Env, program: &Program) -> Option<Stage> {
        if !program.loaded_modules.contains(&"topoh") {
            return None;
        }
        let config = env.services.get::<TopohConfig>()?.clone();
        if config.library_only {
            return None;
        }
        let route = |name: &str, bit: i64| {
            (config.event_mode & bit != 0)
                .then(|| program.event_routes.get(name).copied())
                .flatten()
        };
        Some(Stage {
            outgoing_route: route(EVENT_OUTGOING, EVENT_MODE_OUTGOING),
            sending_route: route(EVENT_SENDING, EVENT_MODE_SENDING),
            config,
        })
    }

    /// Decodes a received message in place.
    pub fn incoming(&self, env: &Env, pkt: &mut Inbound) {
        if let Some(data) = self.config.topoh.incoming(env, &pkt.data) {
            pkt.data = data;
        }
    }

    /// Masks a message about to be sent, in place.
    pub fn outgoing(
        &self,
        env: &Env,
        program: &Program,
        core: &mut CoreState,
        t: &mut Transmit,
        now: Instant,
    ) {
        let routes = (self.outgoing_route, self.sending_route);
        if outgoing_events(env, program, core, t, routes, now) {
            return;
        }
        if let Some(data) = self.config.topoh.outgoing(env, &t.data) {
            t.data = data;
        }
    }
}

/// The event routes a topology step (topoh, topos) runs on a message about
/// to go: `…:msg-outgoing` on the raw buffer, then `…:msg-sending` on it
/// parsed. True when the message is to go out as it is: a route dropped
/// it, or it does not parse.
pub(crate) fn outgoing_events(
    env: &Env,
    program: &Program,
    core: &mut CoreState,
    t: &Transmit,
    (outgoing, sending): (Option<RouteId>, Option<RouteId>),
    now: Instant,
) -> bool {
    if let Some(route) = outgoing {
        let msg = Message::opaque(t.data.clone());
        if run_event(env, program, core, &msg, t, route, now) {
            return true;
        }
    }
    if let Some(route) = sending {
        let Ok(msg) = Message::parse(t.data.clone()) else {
            return true;
        };
        if run_event(env, program, core, &msg, t, route, now) {
            return true;
        }
    }
    false
}

/// Runs an event route on an outgoing message; true when it dropped it
/// (the message then goes out unmasked).
pub(crate) fn run_event(
    env: &Env,
    program: &Program,
    core: &mut CoreState,
    msg: &Message,
    t: &Transmit,
    route: RouteId,
    now: Instant,
) -> bool {
    let from = crate::intercept::stage::outgoing_source(env, t);
    let mut sent = Vec::new();
    let mut ctx = MsgCtx::new(
        env,
        program,
        core,
        msg,
        from,
        now,
        RouteType::Event,
        &mut sent,
    );
    ctx.send_dst = Some((t.dst, t.proto));
    let outcome = vm::run_route(&mut ctx, route);
    drop(ctx);
    matches!(outcome, Outcome::Drop)
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "topoh",
    aliases: &[],
    functions: &[],
    params: &[
        param("mask_key", ParamKind::Str),
        param("mask_ip", ParamKind::Str),
        param("mask_callid", ParamKind::Int),
        param("uparam_name", ParamKind::Str),
        param("uparam_prefix", ParamKind::Str),
        param("vparam_name", ParamKind::Str),
        param("vparam_prefix", ParamKind::Str),
        param("callid_prefix", ParamKind::Str),
        param("sanity_checks", ParamKind::Int),
        param("uri_prefix_checks", ParamKind::Int),
        param("event_callback", ParamKind::Str),
        param("event_mode", ParamKind::Int),
        param("use_mode", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests;
