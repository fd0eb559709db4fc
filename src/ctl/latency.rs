//! `latency` and `latency.reset`: the per-core histograms merged on demand.

use serde_json::{json, Value};

use super::methods::{latency_value, Ctl, Method};
use super::rpc::{Params, RpcError};

pub static METHODS: &[Method] = &[
    Method {
        name: "latency",
        help: "Arrival → departure latency by method and reply class, and script time by route: \
               count, p50/p90/p99/p99.9/max (ns), merged over the cores.",
        call: latency,
    },
    Method {
        name: "latency.reset",
        help: "Start the latency histograms afresh.",
        call: reset,
    },
];

fn latency(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    Ok(latency_value(ctl, &ctl.metrics.latency()))
}

fn reset(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    ctl.metrics.reset_latency();
    Ok(json!("ok"))
}
