//! mqueue's methods: `mqueue.get_size`, `mqueue.get_sizes`, `mqueue.fetch`,
//! on the queues the workers share (`Ctl::env`'s shared state). Their faults
//! carry Kamailio 5.6's codes and texts (checked live with kamcmd).

use serde_json::{json, Value};

use super::methods::{Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::mqueue::Mqueue;

pub static METHODS: &[Method] = &[
    Method {
        name: "mqueue.get_size",
        help: "mqueue.get_size NAME: how many items the queue holds.",
        call: get_size,
    },
    Method {
        name: "mqueue.get_sizes",
        help: "Every queue with how many items it holds (newest queue first).",
        call: get_sizes,
    },
    Method {
        name: "mqueue.fetch",
        help: "mqueue.fetch NAME: take the oldest item of the queue (key and value).",
        call: fetch,
    },
];

/// The queue named by the first parameter, or the fault Kamailio answers
/// when the name is missing or empty (`bad`) or the queue unknown (`unknown`):
/// `get_size` answers 400/404, `fetch` 500/500.
fn queue<'c>(ctl: &'c Ctl, p: &Params, bad: i64, unknown: i64) -> Result<&'c Mqueue, RpcError> {
    let name = p
        .text(0)
        .ok_or_else(|| RpcError::new(bad, "No queue name"))?;
    if name.is_empty() {
        return Err(RpcError::new(bad, "Invalid queue name"));
    }
    ctl.env
        .shared
        .mqueue(&name)
        .ok_or_else(|| RpcError::new(unknown, "No such queue"))
}

fn get_size(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let q = queue(ctl, p, 400, 404)?;
    Ok(json!({"name": q.def.name, "size": q.len()}))
}

fn get_sizes(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    // Kamailio keeps the queues newest first and lists them so.
    let list: Vec<Value> = (ctl.env.shared.mqueues().iter().rev())
        .map(|q| json!({"name": q.def.name, "size": q.len()}))
        .collect();
    Ok(Value::Array(list))
}

fn fetch(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let q = queue(ctl, p, 500, 500)?;
    let (key, val) = q.fetch().ok_or_else(|| RpcError::new(404, "Empty queue"))?;
    // An empty key or value reads as nothing in Kamailio: the item is gone
    // and the answer a fault.
    if key.is_empty() || val.is_empty() {
        return Err(RpcError::new(500, "Unexpected error (result)"));
    }
    Ok(json!({
        "key": String::from_utf8_lossy(&key),
        "val": String::from_utf8_lossy(&val),
    }))
}
