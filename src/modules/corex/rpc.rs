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

/// mimalloc's own statistics for the whole process, as it prints them
/// (`mi_stats_get_json`). The binary installs mimalloc as the global
/// allocator (src/main.rs), so these are ringsip's heap; a release build of
/// mimalloc keeps only its "essential" counters (pages, reserved, committed,
/// OS calls) and the process figures, the per-size malloc counts stay 0.
fn mimalloc_stats() -> Result<Value, String> {
    let json = mimalloc::MiMalloc::stats_json().map_err(str::to_string)?;
    serde_json::from_slice(json.to_bytes()).map_err(|e| format!("mimalloc stats: {e}"))
}

fn allocator_error(e: String) -> Value {
    json!({ "allocator": "mimalloc", "error": e })
}

/// `corex.shm_status`: everything the allocator reports (Kamailio prints its
/// shared-memory fragments; ringsip has no separate shared-memory pool, so
/// this is the one heap).
pub fn shm_status() -> Value {
    match mimalloc_stats() {
        Ok(stats) => json!({ "allocator": "mimalloc", "stats": stats }),
        Err(e) => allocator_error(e),
    }
}

/// `corex.shm_summary`: the allocator's version, its process figures (RSS,
/// commit, page faults) and its memory counters (current and peak).
pub fn shm_summary() -> Value {
    let stats = match mimalloc_stats() {
        Ok(s) => s,
        Err(e) => return allocator_error(e),
    };
    let mut summary = json!({
        "allocator": "mimalloc",
        "mimalloc_version": stats["mimalloc_version"],
        "process": stats["process"],
    });
    for key in [
        "reserved",
        "committed",
        "pages",
        "page_committed",
        "threads",
        "mmap_calls",
        "commit_calls",
        "purged",
    ] {
        if !stats[key].is_null() {
            summary[key] = stats[key].clone();
        }
    }
    summary
}

/// `corex.pkg_summary [pid|idx N]`: Kamailio's private memory of one
/// process. ringsip's workers are threads of one process sharing one heap,
/// so there is no per-worker private pool to report: the answer says so and
/// gives the process-wide summary for whichever worker is named.
pub fn pkg_summary(worker: Option<u64>) -> Value {
    let mut v = shm_summary();
    v["worker"] = json!(worker);
    v["note"] = json!(
        "workers are threads sharing one heap: no per-worker private memory; figures are process-wide"
    );
    v
}
