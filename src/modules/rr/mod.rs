//! rr: Record-Route and loose routing (RFC 3261 §16.4, §16.6 steps 4–6,
//! §16.12; KAMAILIO-REFERENCE §2), with RFC 5626 flow tokens.
//!
//! - [`record`]: `record_route()` and its variants only *ask* for a
//!   Record-Route; the header is written by the forwarding code through
//!   [`write_record_route`] once the outgoing socket is known, because our
//!   address in it (and whether two entries are needed, §16.6 step 4 / double
//!   RR) depends on that socket.
//! - [`loose`]: `loose_route()` and the functions that read what it found
//!   (`check_route_param`, `is_direction`).
//! - [`flow`]: flow tokens in our Route/Record-Route user part.
//!
//! Per-message state lives in [`RrState`] (`MsgCtx::rr`); module parameters are
//! read once, at start-up, into an [`RrConfig`] each call site keeps.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;

use crate::script::ctx::Env;
use crate::script::registry::{
    Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::sip::uri::Uri;
use crate::sip::{Proto, SocketId};

pub mod flow;
pub mod loose;
pub mod record;

pub use record::{record_route_lines, write_record_route, RrLines};

/// The shortest `flow_token_key` accepted (RFC 2104 §3: no shorter than the MAC output kept).
const MIN_FLOW_KEY: usize = 16;

/// The module parameters, read once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrConfig {
    /// `enable_full_lr`: write `;lr=on` instead of `;lr` (for RFC 2543 parsers).
    pub full_lr: bool,
    /// `append_fromtag` (default on): `;ftag=` with the From tag in our entry.
    pub append_fromtag: bool,
    /// `enable_double_rr`: 0 never, 1 (default) when the outgoing socket or
    /// transport differs from the receiving one, 2 always (with explicit transport).
    pub double_rr: u8,
    /// `add_username`: put the Request-URI user into our Record-Route URI.
    pub add_username: bool,
    /// `ignore_user`: a Route to us whose user is this is not treated as ours.
    pub ignore_user: Option<Bytes>,
    /// `force_send_socket`: also force the send socket from a single Route to us.
    pub force_send_socket: bool,
    /// `enable_socket_mismatch_warning` (default on).
    pub socket_mismatch_warning: bool,
    /// `ignore_sips`: write `sip:` even when the Request-URI is `sips:`.
    pub ignore_sips: bool,
    /// `flow_token_key` (ringsip): the HMAC key of RFC 5626 flow tokens. Unset,
    /// flow tokens are neither written nor honoured (as Kamailio without the
    /// outbound module), so `loose_route()` never returns 2 or -2.
    pub flow_key: Option<Bytes>,
    /// path `use_received`: our Route's `received` parameter becomes `$du`.
    pub path_received: Option<crate::modules::path::RouteHook>,
}

impl Default for RrConfig {
    fn default() -> RrConfig {
        RrConfig {
            full_lr: false,
            append_fromtag: true,
            double_rr: 1,
            add_username: false,
            ignore_user: None,
            force_send_socket: false,
            socket_mismatch_warning: true,
            ignore_sips: false,
            flow_key: None,
            path_received: None,
        }
    }
}

impl RrConfig {
    /// Reads the `rr` module parameters; the error names a bad value.
    pub fn from_params(params: &ModParams) -> Result<RrConfig, String> {
        let d = RrConfig::default();
        let flag = |name: &str, default: bool| params.int("rr", name).map_or(default, |v| v != 0);
        let text = |name: &str| {
            params
                .str("rr", name)
                .filter(|s| !s.is_empty())
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        };
        let flow_key = text("flow_token_key");
        if let Some(k) = &flow_key {
            if k.len() < MIN_FLOW_KEY {
                return Err(format!(
                    "rr flow_token_key must be at least {MIN_FLOW_KEY} characters (got {})",
                    k.len()
                ));
            }
        }
        if params.str("rr", "custom_user_avp").is_some() {
            log::warn!(
                "rr custom_user_avp is accepted but not used: add_username takes the R-URI user"
            );
        }
        Ok(RrConfig {
            full_lr: flag("enable_full_lr", d.full_lr),
            append_fromtag: flag("append_fromtag", d.append_fromtag),
            double_rr: params
                .int("rr", "enable_double_rr")
                .map_or(d.double_rr, |v| v.clamp(0, 2) as u8),
            add_username: flag("add_username", d.add_username),
            ignore_user: text("ignore_user"),
            force_send_socket: flag("force_send_socket", d.force_send_socket),
            socket_mismatch_warning: flag(
                "enable_socket_mismatch_warning",
                d.socket_mismatch_warning,
            ),
            ignore_sips: flag("ignore_sips", d.ignore_sips),
            flow_key,
            path_received: crate::modules::path::RouteHook::from_params(params),
        })
    }

    /// Whether `uri` (a Route or Request-URI) points to this proxy: host and
    /// port are ours (no port: the scheme/transport default), it is not a GRUU
    /// (`;gr`), and its user is not `ignore_user`.
    pub fn is_myself(&self, env: &Env, uri: &Uri<'_>) -> bool {
        if !uri.scheme().is_sip() {
            return false;
        }
        // `Uri::effective_port`, with the transport read once for both uses.
        let transport = uri.transport();
        let secure = uri.scheme() == crate::sip::uri::Scheme::Sips
            || matches!(transport, Some(Proto::Tls | Proto::Wss));
        let port = uri.port().unwrap_or(if secure { 5061 } else { 5060 });
        // The address first: a URI that is not ours (most R-URIs) is not
        // scanned again for `gr`.
        let mine = match uri.host() {
            // The address the URI parse read: not parsed again from the text.
            Some(host) => env.is_myself_host(uri.host_raw(), host.ip(), Some(port), transport),
            None => env.is_myself(uri.host_raw(), Some(port), transport),
        };
        mine && !uri.is_gruu()
            && self
                .ignore_user
                .as_deref()
                .is_none_or(|u| uri.user() != Some(u))
    }
}

/// What the rr module knows about the message being routed.
#[derive(Debug, Default, Clone)]
pub struct RrState {
    /// The Record-Route asked for, written when the request is sent.
    pending: Option<record::Pending>,
    /// `add_rr_param()` values in call order, each starting with `;`.
    extra_params: Vec<u8>,
    /// The parameters of our own Route URI (from its first `;`), once
    /// `loose_route()` found it: `check_route_param` and `is_direction` read
    /// them. A copy of a few bytes: a handle on the message buffer would be
    /// the buffer's first clone on an ACK, which allocates.
    routed_params: Option<RoutedParams>,
    /// Route entries left for the next hop after `loose_route()`.
    routes_left: Option<usize>,
}

impl RrState {
    /// The parameters of this proxy's Route URI as `loose_route()` found them
    /// (`;lr;ftag=x…`), `None` before it ran or when the top Route was not ours.
    pub fn routed_params(&self) -> Option<&[u8]> {
        self.routed_params.as_deref()
    }

    /// Adds a parameter (starting with `;`) to the Record-Route, as
    /// `add_rr_param()` does (the dialog module's `did`).
    pub fn add_param(&mut self, param: &[u8]) {
        self.extra_params.extend_from_slice(param);
    }

    /// Whether a Record-Route will be written when the request is sent.
    pub fn has_pending_record_route(&self) -> bool {
        self.pending.is_some()
    }
}

/// Our Route's parameters as `loose_route()` kept them (see [`RrState`]).
type RoutedParams = smallvec::SmallVec<[u8; 64]>;

/// The configuration a call site's fixup stored, or the defaults.
fn config(args: &Args) -> &Arc<RrConfig> {
    static DEFAULT: LazyLock<Arc<RrConfig>> = LazyLock::new(Arc::default);
    args.0
        .iter()
        .rev()
        .find_map(|a| match a {
            Arg::Custom(c) => c.downcast_ref::<Arc<RrConfig>>(),
            _ => None,
        })
        .unwrap_or(&DEFAULT)
}

/// Fixup of every rr function: keeps the module parameters with the call.
fn fixup_config(args: &mut Args, params: &ModParams) -> Result<(), String> {
    let cfg = RrConfig::from_params(params)?;
    args.0.push(Arg::Custom(Box::new(Arc::new(cfg))));
    Ok(())
}

/// The listening socket `host:port` names (an address or an advertised name;
/// no port: the transport default), preferring one with that exact address
/// over a wildcard bind.
pub(crate) fn socket_named(
    env: &Env,
    host: &[u8],
    port: Option<u16>,
    proto: Option<crate::sip::Proto>,
) -> Option<SocketId> {
    let host = match host {
        [b'[', inner @ .., b']'] => inner,
        h => h,
    };
    let ip = crate::sip::host::parse_ip_bytes(host);
    let fits = |s: &crate::script::ctx::SocketInfo, exact: bool| {
        if proto.is_some_and(|p| p != s.proto) {
            return false;
        }
        let port = port.unwrap_or(s.proto.default_port());
        let advertised = s
            .advertise
            .as_ref()
            .is_some_and(|(h, p)| h.as_bytes().eq_ignore_ascii_case(host) && *p == port);
        let by_addr = s.addr.port() == port
            && match ip {
                Some(ip) if exact => s.addr.ip() == ip,
                Some(ip) => s.addr.ip().is_unspecified() && s.addr.is_ipv4() == ip.is_ipv4(),
                None => false,
            };
        advertised || by_addr
    };
    let pos = env
        .sockets
        .iter()
        .position(|s| fits(s, true))
        .or_else(|| env.sockets.iter().position(|s| fits(s, false)))?;
    SocketId::try_from(pos).ok()
}

const REQ: RouteMask = RouteMask::REQUEST;
const REQ_BR_FAIL: RouteMask = RouteMask::REQUEST
    .or(RouteMask::BRANCH)
    .or(RouteMask::FAILURE);

macro_rules! f {
    ($name:expr, $min:expr, $max:expr, $routes:expr, $fixup:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $min,
            max_args: $max,
            routes: $routes,
            fixup: Some($fixup),
            call: $call,
        }
    };
}

macro_rules! p {
    ($name:expr, $kind:ident) => {
        ParamDef {
            name: $name,
            kind: ParamKind::$kind,
        }
    };
}

/// The rr module.
pub static MODULE: ModuleDef = ModuleDef {
    name: "rr",
    aliases: &[],
    functions: &[
        f!(
            "record_route",
            0,
            1,
            REQ_BR_FAIL,
            fixup_config,
            record::record_route
        ),
        f!(
            "record_route_preset",
            1,
            2,
            REQ_BR_FAIL,
            fixup_config,
            record::record_route_preset
        ),
        f!(
            "record_route_advertised_address",
            1,
            1,
            REQ_BR_FAIL,
            fixup_config,
            record::record_route_advertised_address
        ),
        f!(
            "add_rr_param",
            1,
            1,
            REQ_BR_FAIL,
            fixup_config,
            record::add_rr_param
        ),
        f!(
            "remove_record_route",
            0,
            0,
            REQ.or(RouteMask::FAILURE),
            fixup_config,
            record::remove_record_route
        ),
        f!("loose_route", 0, 0, REQ, fixup_config, loose::loose_route),
        f!(
            "loose_route_preloaded",
            0,
            0,
            REQ,
            fixup_config,
            loose::loose_route_preloaded
        ),
        f!(
            "loose_route_mode",
            1,
            1,
            REQ,
            loose::fixup_mode,
            loose::loose_route_mode
        ),
        f!(
            "check_route_param",
            1,
            1,
            REQ,
            loose::fixup_regex,
            loose::check_route_param
        ),
        f!(
            "is_direction",
            1,
            1,
            REQ,
            loose::fixup_direction,
            loose::is_direction
        ),
        f!(
            "rr_next_hop_route",
            0,
            0,
            RouteMask::ANY,
            fixup_config,
            loose::rr_next_hop_route
        ),
    ],
    params: &[
        p!("enable_full_lr", Int),
        p!("append_fromtag", Int),
        p!("enable_double_rr", Int),
        p!("add_username", Int),
        p!("ignore_user", Str),
        p!("custom_user_avp", Str),
        p!("force_send_socket", Int),
        p!("enable_socket_mismatch_warning", Int),
        p!("ignore_sips", Int),
        p!("sockname_mode", Int),
        p!("flow_token_key", Str),
    ],
    always: false,
};

#[cfg(test)]
mod loose_tests;
#[cfg(test)]
mod record_tests;
#[cfg(test)]
pub(crate) mod testing;
