//! The websocket module's methods, as Kamailio 5.6 names and answers them
//! (checked live with kamcmd): `ws.dump [order]`, `ws.close ID`,
//! `ws.ping ID`, `ws.pong ID`, `ws.disable`, `ws.enable`. The connections
//! are the ones the runtime lists in [`WsPeers`]; a close, ping or pong is
//! queued there and sent by the connection's worker at its next sweep
//! (within a second).

use std::time::Instant;

use serde_json::{json, Map, Value};

use super::methods::{Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::websocket::{WsCommand, WsPeers};
use crate::sip::{ConnId, Proto};

pub static METHODS: &[Method] = &[
    Method {
        name: "ws.dump",
        help: "ws.dump [id_hash|used_desc|used_asc]: the first 50 WebSocket connections.",
        call: dump,
    },
    Method {
        name: "ws.close",
        help: "ws.close ID: start the closing handshake of a WebSocket connection.",
        call: close,
    },
    Method {
        name: "ws.ping",
        help: "ws.ping ID: send a Ping frame on a WebSocket connection.",
        call: ping,
    },
    Method {
        name: "ws.pong",
        help: "ws.pong ID: send a Pong frame on a WebSocket connection.",
        call: pong,
    },
    Method {
        name: "ws.disable",
        help: "Refuse new WebSocket handshakes (503).",
        call: disable,
    },
    Method {
        name: "ws.enable",
        help: "Accept new WebSocket handshakes again.",
        call: enable,
    },
];

/// Kamailio lists at most this many.
const DUMP_MAX: usize = 50;

fn peers(ctl: &Ctl) -> Result<&WsPeers, RpcError> {
    ctl.services
        .get::<WsPeers>()
        .ok_or_else(|| RpcError::failed("websocket is not loaded"))
}

/// Kamailio's text for one connection: `ws:PEER -> ws:LOCAL (state: OPEN,
/// last used Ns ago, sub-protocol: sip)` (two spaces after the comma, as
/// Kamailio writes it).
fn describe(
    proto: Proto,
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    idle: u64,
) -> String {
    let t = proto.lower_name();
    format!("{t}:{peer} -> {t}:{local} (state: OPEN,  last used {idle}s ago, sub-protocol: sip)")
}

fn dump(ctl: &Ctl, params: &Params) -> Result<Value, RpcError> {
    let peers = peers(ctl)?;
    let mut all = peers.list();
    let now = Instant::now();
    let idle = |at: Option<Instant>| at.map_or(0, |a| now.saturating_duration_since(a).as_secs());
    match params.text(0).as_deref() {
        None | Some("id_hash") => {}
        Some("used_desc") => all.sort_by_key(|e| std::cmp::Reverse(e.2.last_used)),
        Some("used_asc") => all.sort_by_key(|e| e.2.last_used),
        Some(other) => return Err(RpcError::params(format!("bad order {other:?}"))),
    }
    let mut connections = Map::new();
    for (proto, peer, p) in all.iter().take(DUMP_MAX) {
        connections.insert(
            p.id.raw().to_string(),
            Value::String(describe(*proto, *peer, p.local, idle(p.last_used))),
        );
    }
    let truncated = if all.len() > DUMP_MAX { "yes" } else { "no" };
    Ok(json!({
        "connections": connections,
        "info": {"wscounter": all.len(), "truncated": truncated},
    }))
}

fn command(ctl: &Ctl, params: &Params, what: WsCommand) -> Result<Value, RpcError> {
    let id = params.need_text(0, "connection id")?;
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| RpcError::params(format!("bad connection id {id:?}")))?;
    if !peers(ctl)?.command(ConnId::from_raw(id), what) {
        return Err(RpcError::new(500, "Unknown connection ID"));
    }
    Ok(json!({}))
}

fn close(ctl: &Ctl, params: &Params) -> Result<Value, RpcError> {
    command(ctl, params, WsCommand::Close)
}

fn ping(ctl: &Ctl, params: &Params) -> Result<Value, RpcError> {
    command(ctl, params, WsCommand::Ping)
}

fn pong(ctl: &Ctl, params: &Params) -> Result<Value, RpcError> {
    command(ctl, params, WsCommand::Pong)
}

fn disable(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    peers(ctl)?.set_enabled(false);
    Ok(json!({}))
}

fn enable(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    peers(ctl)?.set_enabled(true);
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_reads_as_kamailio_writes_it() {
        let peer = "127.0.0.1:34004".parse().unwrap();
        let local = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(
            describe(Proto::Ws, peer, local, 0),
            "ws:127.0.0.1:34004 -> ws:127.0.0.1:8080 (state: OPEN,  last used 0s ago, sub-protocol: sip)"
        );
    }

    #[test]
    fn commands_reach_the_owner_only_for_known_connections() {
        let p = WsPeers::default();
        let peer = "127.0.0.1:34004".parse().unwrap();
        let local = "127.0.0.1:8080".parse().unwrap();
        let id = ConnId::from_raw(5);
        assert!(!p.command(id, WsCommand::Ping), "unknown id");
        p.add(Proto::Ws, peer, local, id);
        assert!(p.command(id, WsCommand::Ping));
        assert!(p.take_commands(|_| false).is_empty(), "not this worker's");
        assert_eq!(p.take_commands(|i| i == id), [(id, WsCommand::Ping)]);
        assert!(p.take_commands(|_| true).is_empty(), "taken once");
        p.remove(Proto::Ws, peer, ConnId::from_raw(6));
        assert!(p.connected(Proto::Ws, peer), "another connection's removal");
        p.remove(Proto::Ws, peer, id);
        assert!(!p.connected(Proto::Ws, peer));
    }
}
