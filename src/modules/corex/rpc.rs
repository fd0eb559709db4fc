//! corex RPCs as plain functions of the shared settings; the control socket
//! (src/ctl) calls them and sends the value as the JSON-RPC result.

use serde_json::{json, Value};

use crate::script::ctx::Env;

use super::alias::AliasSubdomains;

/// `corex.list_sockets`: every listening socket (Kamailio's field names).
pub fn list_sockets(env: &Env) -> Value {
    let sockets: Vec<Value> = env
        .sockets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut v = json!({
                "INDEX": i,
                "PROTO": s.proto.lower_name(),
                "ADDRLIST": { "ADDR": s.addr.ip().to_string() },
                "PORT": s.addr.port(),
                "MCAST": "no",
                "MHOMED": "no",
            });
            if let Some((host, port)) = &s.advertise {
                v["ADVERTISE"] = json!(format!("{host}:{port}"));
            }
            v
        })
        .collect();
    json!({ "SOCKET": sockets })
}

/// `corex.list_aliases`: `alias=` entries, then `alias_subdomains` entries
/// (their domain written `*.domain`).
pub fn list_aliases(env: &Env) -> Value {
    let mut list: Vec<Value> = env
        .aliases
        .iter()
        .map(|(name, port)| {
            json!({ "PROTO": "*", "ADDR": name, "PORT": port.map_or(json!("*"), |p| json!(p)) })
        })
        .collect();
    if let Some(subs) = env.services.get::<AliasSubdomains>() {
        for a in &subs.0 {
            list.push(json!({
                "PROTO": a.proto.map_or("*", |p| p.lower_name()),
                "ADDR": format!("*.{}", a.domain),
                "PORT": a.port.map_or(json!("*"), |p| json!(p)),
            }));
        }
    }
    json!({ "ALIAS": list })
}
