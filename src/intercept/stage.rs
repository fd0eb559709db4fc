//! The intercept stage as a step of a core's pipeline: `event_route[network:msg]`
//! run on the raw bytes of each received message before parsing, and on the
//! serialized bytes of each message before it is sent (KAMAILIO-REFERENCE §8).
//!
//! ```text
//!  received bytes ─▶ [len ≥ min?] ─▶ network:msg (is_incoming() = 1, $mb = bytes)
//!                                     ├─ a decoder failed and no AVP value: drop, count
//!                                     ├─ `drop`: drop
//!                                     ├─ msg AVP holds a value: it replaces the bytes
//!                                     └─ else the bytes as received ─▶ parse
//!  serialized bytes ─▶ [len ≥ min?] ─▶ network:msg (is_incoming() = -1) ─▶ same rules ─▶ send
//! ```
//!
//! In the route `$si`/`$sp` are the peer both ways (the source of a received
//! message, the destination of an outgoing one), `$Ri`/`$Rp` our side.
//! Transmissions the route makes itself (`send_data`…) are not sent. The
//! stage runs on each datagram and on each message framed out of a stream
//! (stream framing needs SIP text, so codecs are for UDP).
//!
//! With `nio_intercept` off the engine holds no stage, and the pipeline pays
//! one branch per message.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::script::ctx::{CoreState, Env, MsgCtx};
use crate::script::ir::{Program, RouteId};
use crate::script::pvkind::AvpKey;
use crate::script::registry::{ModParams, RouteType};
use crate::script::value::Value;
use crate::script::vm::{self, Outcome};
use crate::sip::{Inbound, Message, Transmit};
use crate::tm::Source;

/// The event route the stage runs.
pub const EVENT_ROUTE: &str = "network:msg";

/// The corex parameters of the stage. Kamailio 5.6 names them `nio_*`; the
/// older names (`network_io_intercept`, `min_msg_len`, `msg_avp`) are
/// accepted too, the last one set winning within each pair.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NioConfig {
    pub enabled: bool,
    /// Messages shorter than this skip the route.
    pub min_len: usize,
    /// The AVP whose newest value replaces the message after the route.
    pub msg_avp: Option<AvpKey>,
}

/// The `modparam` names of each setting: Kamailio 5.6's first.
pub const PARAM_INTERCEPT: [&str; 2] = ["nio_intercept", "network_io_intercept"];
pub const PARAM_MIN_LEN: [&str; 2] = ["nio_min_msg_len", "min_msg_len"];
pub const PARAM_MSG_AVP: [&str; 2] = ["nio_msg_avp", "msg_avp"];

impl NioConfig {
    /// Reads corex's parameters; an AVP name that is not `$avp(name)` is an error.
    pub fn from_modparams(mp: &ModParams) -> Result<NioConfig, String> {
        let int = |names: [&str; 2]| names.iter().find_map(|n| mp.int("corex", n));
        let min_len = int(PARAM_MIN_LEN).unwrap_or(0);
        let min_len = usize::try_from(min_len)
            .map_err(|_| format!("corex: {} must not be negative", PARAM_MIN_LEN[0]))?;
        let msg_avp = match PARAM_MSG_AVP.iter().find_map(|n| mp.str("corex", n)) {
            None | Some("") => None,
            Some(name) => Some(parse_avp_name(name).ok_or_else(|| {
                format!("corex: {} \"{name}\" is not $avp(name)", PARAM_MSG_AVP[0])
            })?),
        };
        Ok(NioConfig {
            enabled: int(PARAM_INTERCEPT).unwrap_or(0) != 0,
            min_len,
            msg_avp,
        })
    }
}

/// `$avp(name)`, `$avp(s:name)` or `$avp(i:N)` (also without `$avp(…)` around it).
pub fn parse_avp_name(text: &str) -> Option<AvpKey> {
    let t = text.trim();
    let inner = match t.strip_prefix("$avp(") {
        Some(rest) => rest.strip_suffix(')')?,
        None if t.starts_with('$') => return None,
        None => t,
    };
    if let Some(n) = inner.strip_prefix("i:") {
        return n.trim().parse().ok().map(AvpKey::Int);
    }
    let name = inner.strip_prefix("s:").unwrap_or(inner).trim();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    ok.then(|| AvpKey::Str(Bytes::copy_from_slice(name.as_bytes())))
}

/// What the stage did, per core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageStats {
    /// Route runs on received / outgoing messages.
    pub incoming: u64,
    pub outgoing: u64,
    /// Messages shorter than the minimum length (the route did not run).
    pub skipped: u64,
    /// Messages whose bytes the AVP replaced.
    pub replaced: u64,
    /// Messages dropped because a decoder failed on them.
    pub decode_failures: u64,
    /// Messages dropped by `drop` in the route.
    pub dropped: u64,
}

/// Least time between two log lines about decoding failures.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The stage of one core.
#[derive(Debug)]
pub struct Stage {
    route: RouteId,
    config: NioConfig,
    stats: StageStats,
    /// Rate limit of the failure log: when the last line went out, and how
    /// many failures were not logged since.
    last_log: Option<Instant>,
    unlogged: u64,
}

/// What the route decided for one buffer.
enum Verdict {
    Keep,
    Replace(Bytes),
    Drop,
}

impl Stage {
    /// The stage for `env` and `program`: `None` when `nio_intercept` is off
    /// (or corex is not loaded), so the pipeline pays one branch.
    pub fn for_program(env: &Env, program: &Program) -> Option<Stage> {
        let config = env.services.get::<NioConfig>()?;
        if !config.enabled {
            return None;
        }
        // The compiler refuses nio_intercept without the route; no route, no stage.
        let route = *program.event_routes.get(EVENT_ROUTE)?;
        Some(Stage::new(route, config.clone()))
    }

    pub fn new(route: RouteId, config: NioConfig) -> Stage {
        Stage {
            route,
            config,
            stats: StageStats::default(),
            last_log: None,
            unlogged: 0,
        }
    }

    pub fn stats(&self) -> StageStats {
        self.stats
    }

    /// Runs the route on a received message; false: drop it.
    pub fn incoming(
        &mut self,
        env: &Env,
        program: &Program,
        core: &mut CoreState,
        pkt: &mut Inbound,
        now: Instant,
    ) -> bool {
        if pkt.data.len() < self.config.min_len {
            self.stats.skipped += 1;
            return true;
        }
        self.stats.incoming += 1;
        let from = Source::from(&*pkt);
        match self.run(env, program, core, &pkt.data, from, None, now) {
            Verdict::Keep => true,
            Verdict::Replace(data) => {
                pkt.data = data;
                true
            }
            Verdict::Drop => {
                self.log_drop(pkt.src, "received", now);
                false
            }
        }
    }

    /// Runs the route on a message about to be sent; false: do not send it.
    pub fn outgoing(
        &mut self,
        env: &Env,
        program: &Program,
        core: &mut CoreState,
        t: &mut Transmit,
        now: Instant,
    ) -> bool {
        if t.data.len() < self.config.min_len {
            self.stats.skipped += 1;
            return true;
        }
        self.stats.outgoing += 1;
        let from = outgoing_source(env, t);
        let dst = Some((t.dst, t.proto));
        match self.run(env, program, core, &t.data, from, dst, now) {
            Verdict::Keep => true,
            Verdict::Replace(data) => {
                t.data = data;
                true
            }
            Verdict::Drop => {
                self.log_drop(t.dst, "outgoing", now);
                false
            }
        }
    }

    // The context needs each of these; bundling them would only move the list.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        env: &Env,
        program: &Program,
        core: &mut CoreState,
        data: &Bytes,
        from: Source,
        send_dst: Option<(SocketAddr, crate::sip::Proto)>,
        now: Instant,
    ) -> Verdict {
        let msg = Message::opaque(data.clone());
        // What the route sends itself (send_data…) is not intercepted again.
        let mut sent = Vec::new();
        let mut ctx = MsgCtx::new(
            env,
            program,
            core,
            &msg,
            from,
            now,
            RouteType::Event,
            &mut sent,
        );
        ctx.send_dst = send_dst;
        let outcome = vm::run_route(&mut ctx, self.route);
        let failed = ctx.state.codec_failed;
        let value = self
            .config
            .msg_avp
            .as_ref()
            .and_then(|key| ctx.attrs.avp(key, 0))
            .and_then(|v| match v {
                Value::Str(s) => Some(Bytes::copy_from_slice(s)),
                Value::Int(_) => Some(Bytes::from(v.to_bytes().into_owned())),
                Value::Null => None,
            });
        drop(ctx);
        if !sent.is_empty() {
            log::debug!(
                "{EVENT_ROUTE}: {} transmissions made in the route were not sent",
                sent.len()
            );
        }
        if matches!(outcome, Outcome::Drop) {
            self.stats.dropped += 1;
            return Verdict::Drop;
        }
        match value {
            Some(v) => {
                self.stats.replaced += 1;
                Verdict::Replace(v)
            }
            None if failed => {
                self.stats.decode_failures += 1;
                Verdict::Drop
            }
            None => Verdict::Keep,
        }
    }

    /// A log line per [`LOG_INTERVAL`] at most, with the count of drops since.
    fn log_drop(&mut self, peer: SocketAddr, what: &str, now: Instant) {
        self.unlogged += 1;
        if self
            .last_log
            .is_some_and(|at| now.saturating_duration_since(at) < LOG_INTERVAL)
        {
            return;
        }
        log::warn!(
            "{EVENT_ROUTE}: dropped {} message(s) since the last report (last: {what}, peer {peer}); \
             totals: {} failed to decode, {} dropped by the route",
            self.unlogged,
            self.stats.decode_failures,
            self.stats.dropped
        );
        self.unlogged = 0;
        self.last_log = Some(now);
    }
}

/// What a route run on an outgoing message sees as its source: the
/// destination it goes to (`$si`), from the local address it leaves by (the
/// socket's when the transmit names none).
pub(crate) fn outgoing_source(env: &Env, t: &Transmit) -> Source {
    let socket = t.socket.unwrap_or(0);
    let bound = env.sockets.get(usize::from(socket)).map(|s| s.addr);
    Source {
        src: t.dst,
        local: t.local.or(bound).unwrap_or(t.dst),
        proto: t.proto,
        socket,
        conn: t.conn,
    }
}
