//! websocket: SIP over WebSocket (RFC 7118), as Kamailio 5.6's module serves
//! it to WebRTC clients.
//!
//! A browser opens a TCP (or TLS) connection to a `listen=tcp:` (`tls:`)
//! socket and sends an HTTP upgrade request; xhttp runs
//! `event_route[xhttp:request]` on it, where `ws_handle_handshake()`
//! answers it (see [`crate::sip::websocket`] for what is checked and
//! answered). On `101 Switching Protocols` the runtime switches the
//! connection to WebSocket framing: from then on its messages arrive as
//! `ws` (`wss` over TLS) — `$proto`, `proto==WS`, `nat_uac_test("64")` —
//! and SIP sent to it goes out in text frames. Our Via on a request relayed
//! to it says `WS`, and Record-Route `;transport=ws` (two entries when the
//! transport changes, with rr's `enable_double_rr`).
//!
//! A WebSocket connection is only ever opened by the client: a request for
//! a `ws` destination goes on the client's connection (found by its address,
//! as `add_contact_alias`/`handle_ruri_alias` or a registration's `received`
//! name it) or is not sent.
//!
//! - `ws_handle_handshake()`: 1 when the connection was upgraded; 0 (the
//!   script stops) when the request was refused (400 or 426 sent, then the
//!   connection closes) or is not an HTTP request on a TCP/TLS connection.
//! - `ws_close([status, reason[, connection_id]])`: sends a close frame
//!   (1000 "Normal closure" by default) on the message's connection or the
//!   one named (`$ws_conid`), then closes it. -1 on a message that did not
//!   come over WebSocket.
//! - `$ws_conid`: the id of the message's connection (0 for UDP).
//! - `event_route[websocket:closed]`: runs once a closing handshake is done
//!   (the peer's close frame answered, or `ws_close` sent), on Kamailio's
//!   faked request from the peer's address, `$proto` reading `tcp`/`tls`
//!   as in Kamailio 5.6 (live). A connection that ends without a close
//!   frame runs nothing, as Kamailio 5.6 (live).
//!
//! Parameters: `cors_mode` (0: none; 1: `Access-Control-Allow-Origin: *`;
//! 2: the request's `Origin`), `keepalive_mechanism` (0 none, 1 ping,
//! 2 pong), `keepalive_timeout` (idle seconds before a keep-alive, 180),
//! `keepalive_interval` (how often idle connections are looked for: ringsip
//! looks at every connection sweep, at most a second apart),
//! `ping_application_data` (default: the Server header). `sub_protocols`
//! must be 1 (sip): msrp is not implemented. `keepalive_processes`,
//! `timer_interval`, `rm_delay_interval` and `verbose_list` are about
//! Kamailio's processes and logs and have no effect. `event_callback`
//! (KEMI) is not implemented in ringsip yet and refused at start-up.
//! The `ws.*` control commands are in `ctl::websocket`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::registry::{
    fixup_int, func, param, Arg, Args, ModParams, ModuleDef, ParamKind, RouteMask,
};
use crate::sip::http::{self, HttpReply};
use crate::sip::packet::{ConnId, Proto, SendFlags, Transmit, WsSend};
use crate::sip::websocket::{self, status};

/// The event route Kamailio runs when a WebSocket connection closes.
pub const EVENT_CLOSED: &str = "websocket:closed";

pub static MODULE: ModuleDef = ModuleDef {
    name: "websocket",
    aliases: &[],
    functions: &[
        func(
            "ws_handle_handshake",
            0,
            0,
            RouteMask::ANY,
            Some(fixup_handshake),
            ws_handle_handshake,
        ),
        func(
            "ws_close",
            0,
            3,
            RouteMask::ANY,
            Some(fixup_close),
            ws_close,
        ),
    ],
    params: &[
        param("keepalive_mechanism", ParamKind::Int),
        param("keepalive_timeout", ParamKind::Int),
        param("keepalive_processes", ParamKind::Int),
        param("keepalive_interval", ParamKind::Int),
        param("ping_application_data", ParamKind::Str),
        param("sub_protocols", ParamKind::Int),
        param("cors_mode", ParamKind::Int),
        param("verbose_list", ParamKind::Int),
        param("event_callback", ParamKind::Str),
        param("timer_interval", ParamKind::Int),
        param("rm_delay_interval", ParamKind::Int),
    ],
    always: false,
};

/// The WebSocket clients connected now, by transport and address, shared
/// by the runtime (which adds a connection at its handshake, notes when it
/// was last used, and removes it when it closes), tm (to fail a relay to a
/// client that is gone at once, as Kamailio's `t_relay` fails: a WebSocket
/// connection is never opened toward a client) and the `ws.*` control
/// commands (which queue frames for the runtime to send, and switch new
/// handshakes off and on).
#[derive(Debug, Default)]
pub struct WsPeers {
    peers: RwLock<HashMap<(Proto, SocketAddr), Peer>>,
    commands: Mutex<Vec<(ConnId, WsCommand)>>,
    disabled: AtomicBool,
    /// `ping_application_data`: what `ws.ping`/`ws.pong` frames carry.
    ping_data: OnceLock<Bytes>,
}

/// One connected client.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub id: ConnId,
    /// Our address it reached.
    pub local: SocketAddr,
    /// When it last sent or received, as the runtime's sweep saw it.
    pub last_used: Option<Instant>,
}

/// A frame the control socket asks a connection to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsCommand {
    /// Close with 1000 "Normal closure".
    Close,
    Ping,
    Pong,
}

impl WsPeers {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<(Proto, SocketAddr), Peer>> {
        // A poisoned lock still holds a consistent map (one change per write).
        self.peers.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<(Proto, SocketAddr), Peer>> {
        self.peers.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, proto: Proto, peer: SocketAddr, local: SocketAddr, id: ConnId) {
        let entry = Peer {
            id,
            local,
            last_used: None,
        };
        self.write().insert((proto, peer), entry);
    }

    /// Forgets `peer` if it is still connection `id`.
    pub fn remove(&self, proto: Proto, peer: SocketAddr, id: ConnId) {
        let mut map = self.write();
        if map.get(&(proto, peer)).is_some_and(|p| p.id == id) {
            map.remove(&(proto, peer));
        }
    }

    /// Notes when connection `id` to `peer` was last used.
    pub fn touch(&self, proto: Proto, peer: SocketAddr, id: ConnId, at: Instant) {
        let mut map = self.write();
        if let Some(p) = map.get_mut(&(proto, peer)).filter(|p| p.id == id) {
            p.last_used = Some(at);
        }
    }

    pub fn connected(&self, proto: Proto, peer: SocketAddr) -> bool {
        self.read().contains_key(&(proto, peer))
    }

    /// Every connection: transport, peer and what is known of it, by id.
    pub fn list(&self) -> Vec<(Proto, SocketAddr, Peer)> {
        let mut all: Vec<_> = self.read().iter().map(|(&(p, a), &e)| (p, a, e)).collect();
        all.sort_by_key(|e| e.2.id);
        all
    }

    /// Queues `command` for connection `id`; false when no such connection.
    pub fn command(&self, id: ConnId, command: WsCommand) -> bool {
        if !self.read().values().any(|p| p.id == id) {
            return false;
        }
        let mut q = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        q.push((id, command));
        true
    }

    /// The queued commands `mine` says are for this worker's connections.
    pub fn take_commands(&self, mine: impl Fn(ConnId) -> bool) -> Vec<(ConnId, WsCommand)> {
        let mut q = self.commands.lock().unwrap_or_else(|e| e.into_inner());
        if q.is_empty() {
            return Vec::new();
        }
        let (taken, kept) = q.drain(..).partition(|(id, _)| mine(*id));
        *q = kept;
        taken
    }

    /// `ws.disable` / `ws.enable`: new handshakes are refused while disabled.
    pub fn set_enabled(&self, on: bool) {
        self.disabled.store(!on, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        !self.disabled.load(Ordering::Relaxed)
    }

    pub fn set_ping_data(&self, data: Bytes) {
        let _ = self.ping_data.set(data);
    }

    pub fn ping_data(&self) -> Bytes {
        self.ping_data.get().cloned().unwrap_or_default()
    }
}

/// Whether a request to `dst` over `proto` can go out: any transport but
/// WebSocket, or a WebSocket client connected there. Without the module
/// (no [`WsPeers`]), nothing is known and the runtime decides.
pub fn reachable(ctx: &MsgCtx<'_>, proto: Proto, dst: SocketAddr) -> bool {
    if !matches!(proto, Proto::Ws | Proto::Wss) {
        return true;
    }
    ctx.env
        .services
        .get::<WsPeers>()
        .is_none_or(|p| p.connected(proto, dst))
}

/// Parameters that change nothing in ringsip (Kamailio's process layout and
/// debug logs), for `check -v`.
pub const NO_EFFECT: &[&str] = &[
    "keepalive_processes",
    "timer_interval",
    "rm_delay_interval",
    "verbose_list",
];

/// The parameters set that have no effect, for `check -v`.
pub fn unsupported_params(mp: &ModParams) -> Vec<String> {
    mp.set_among("websocket", NO_EFFECT)
}

/// `cors_mode`: what `Access-Control-Allow-Origin` the `101` carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cors {
    None,
    Any,
    Origin,
}

/// Keep-alives the runtime sends on idle WebSocket connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Ping (a pong comes back) or unsolicited pong frames.
    pub ping: bool,
    /// Idle time before one is sent.
    pub idle: Duration,
    /// Application data of the frame (at most 125 bytes are sent).
    pub data: Bytes,
}

/// Checks the module parameters: `Err` names what is refused.
pub fn check(mp: &ModParams) -> Result<(), String> {
    if mp
        .str("websocket", "event_callback")
        .is_some_and(|c| !c.is_empty())
    {
        return Err("websocket: event_callback (KEMI) is not implemented in ringsip yet".into());
    }
    match mp.int("websocket", "sub_protocols").unwrap_or(1) {
        1 => {}
        2 | 3 => {
            return Err(
                "websocket: sub_protocols with msrp (2) is not implemented in ringsip yet".into(),
            )
        }
        n => return Err(format!("websocket: sub_protocols {n}: must be 1, 2 or 3")),
    }
    cors(mp)?;
    match mp.int("websocket", "keepalive_mechanism").unwrap_or(1) {
        0..=2 => {}
        n => {
            return Err(format!(
                "websocket: keepalive_mechanism {n}: must be 0, 1 or 2"
            ))
        }
    }
    if mp
        .int("websocket", "keepalive_timeout")
        .is_some_and(|n| n <= 0)
    {
        return Err("websocket: keepalive_timeout must be positive".into());
    }
    Ok(())
}

fn cors(mp: &ModParams) -> Result<Cors, String> {
    match mp.int("websocket", "cors_mode").unwrap_or(0) {
        0 => Ok(Cors::None),
        1 => Ok(Cors::Any),
        2 => Ok(Cors::Origin),
        n => Err(format!(
            "websocket: bad value for cors_mode {n}: must be 0, 1 or 2"
        )),
    }
}

/// The keep-alive the parameters ask for (`None` for none), and the
/// application data of ping and pong frames (`ping_application_data`,
/// else `server_header`, the Server header's value).
pub fn keepalive_settings(mp: &ModParams, server_header: &[u8]) -> (Option<Keepalive>, Bytes) {
    let data = match mp.str("websocket", "ping_application_data") {
        Some(d) => Bytes::copy_from_slice(d.as_bytes()),
        None => Bytes::copy_from_slice(server_header),
    };
    let ping = match mp.int("websocket", "keepalive_mechanism").unwrap_or(1) {
        1 => true,
        2 => false,
        _ => return (None, data),
    };
    let secs = mp
        .int("websocket", "keepalive_timeout")
        .unwrap_or(180)
        .max(1);
    let keepalive = Keepalive {
        ping,
        idle: Duration::from_secs(secs as u64),
        data: data.clone(),
    };
    (Some(keepalive), data)
}

fn fixup_handshake(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    args.0.push(Arg::Custom(Box::new(cors(mp)?)));
    Ok(())
}

/// `ws_handle_handshake()`.
fn ws_handle_handshake(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let stream = matches!(ctx.proto, Proto::Tcp | Proto::Tls) && ctx.conn.is_some();
    if !ctx.msg.is_http() || !stream {
        log::error!("ws_handle_handshake: not an HTTP request on a TCP or TLS connection");
        return 0;
    }
    let (answer, refused) = match ctx.env.services.get::<WsPeers>() {
        // `ws.disable`: Kamailio 5.6 answers 503 with no WebSocket header (live).
        Some(p) if !p.enabled() => (
            websocket::HandshakeAnswer {
                code: 503,
                reason: "Service Unavailable",
                headers: String::new(),
            },
            Some(websocket::Refusal::Disabled),
        ),
        _ => websocket::handshake(ctx.msg),
    };
    let mut headers = ctx.state.reply_headers.clone();
    // Kamailio 5.6 writes Access-Control-Allow-Origin first (live).
    if answer.accepted() {
        let origin = ctx
            .msg
            .headers_named(b"Origin")
            .next()
            .map(|h| ctx.msg.value(h).trim_ascii().to_vec());
        match (
            args.custom::<Cors>(0).copied().unwrap_or(Cors::None),
            origin,
        ) {
            (Cors::Any, _) => headers.extend_from_slice(b"Access-Control-Allow-Origin: *\r\n"),
            (Cors::Origin, Some(o)) => {
                headers.extend_from_slice(b"Access-Control-Allow-Origin: ");
                headers.extend_from_slice(&o);
                headers.extend_from_slice(b"\r\n");
            }
            _ => {}
        }
    }
    headers.extend_from_slice(answer.headers.as_bytes());
    if let Some(why) = refused {
        log::warn!("ws_handle_handshake: {} refused: {why:?}", ctx.src);
    }
    let spec = HttpReply {
        code: answer.code,
        reason: answer.reason.as_bytes(),
        proto: ctx.proto,
        source: ctx.src,
        extra_headers: &headers,
        content_type: b"",
        server: &ctx.env.server_header,
        body: b"",
    };
    let out = &mut ctx.core.scratch;
    http::build(ctx.msg, &spec, out);
    let data = Bytes::copy_from_slice(out);
    let flags = match refused {
        None => SendFlags {
            websocket: WsSend::Upgrade,
            ..SendFlags::default()
        },
        // Kamailio closes the connection after a refusal.
        Some(_) => SendFlags {
            close: true,
            ..SendFlags::default()
        },
    };
    ctx.out.push(Transmit {
        data,
        dst: ctx.src,
        proto: ctx.proto,
        socket: Some(ctx.socket),
        local: Some(ctx.local),
        conn: ctx.conn,
        flags,
    });
    match refused {
        None => 1,
        Some(_) => 0,
    }
}

fn fixup_close(args: &mut Args, _: &ModParams) -> Result<(), String> {
    match args.len() {
        0 => Ok(()),
        1 => Err("ws_close: takes no parameter, status and reason, or all three".into()),
        2 => fixup_int(args, 0),
        _ => {
            fixup_int(args, 0)?;
            fixup_int(args, 2)
        }
    }
}

/// `ws_close([status, reason[, connection_id]])`.
fn ws_close(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (code, reason) = match args.len() {
        0 => (i64::from(status::NORMAL), b"Normal closure".to_vec()),
        _ => (
            args.int(ctx, 0).unwrap_or(-1),
            args.str(ctx, 1).into_owned(),
        ),
    };
    let Ok(code) = u16::try_from(code) else {
        log::error!("ws_close: bad status {code}");
        return -1;
    };
    let conn = match args.len() {
        3 => match args.int(ctx, 2) {
            Some(id) if id > 0 => ConnId::from_raw(id as u64),
            other => {
                log::error!("ws_close: bad connection id {other:?}");
                return -1;
            }
        },
        _ => match ctx.conn {
            Some(id) if matches!(ctx.proto, Proto::Ws | Proto::Wss) => id,
            _ => {
                log::error!("ws_close: the message did not come over websocket");
                return -1;
            }
        },
    };
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason);
    ctx.out.push(Transmit {
        data: Bytes::from(payload),
        dst: ctx.src,
        proto: match ctx.proto {
            Proto::Wss => Proto::Wss,
            _ => Proto::Ws,
        },
        socket: None,
        local: None,
        conn: Some(conn),
        flags: SendFlags {
            websocket: WsSend::Close,
            ..SendFlags::default()
        },
    });
    1
}

/// `$ws_conid`: the id of the message's connection, 0 without one.
pub fn conid(ctx: &MsgCtx<'_>) -> i64 {
    ctx.conn.map_or(0, |c| c.raw() as i64)
}

#[cfg(test)]
mod tests;
