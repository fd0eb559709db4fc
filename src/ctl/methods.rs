//! The method table of the control socket and the core methods.
//!
//! A method is one [`Method`] entry: Kamailio's name, a one-line help and a
//! function `fn(&Ctl, &Params) -> Result<Value, RpcError>`. The table is the
//! list of slices in [`TABLES`]; to add methods for another module, write
//! `src/ctl/NAME.rs` with `pub static METHODS: &[Method] = &[…]` and add
//! `NAME::METHODS` to [`TABLES`]. State shared with the workers is reached
//! through [`Ctl::services`] (`ctl.services.get::<T>()`), the same map the
//! modules use; the metrics through [`Ctl::metrics`].

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::metrics::{key_name, LatencySnapshot, Metrics, KEYS};
use super::rpc::{Params, RpcError};
use super::{
    dialplan, domain, drouting, latency, modules, mqueue, trusted, uac, usrloc, websocket,
};
use crate::script::ctx::{Env, Shared};

/// One control method.
pub struct Method {
    pub name: &'static str,
    pub help: &'static str,
    pub call: fn(&Ctl, &Params) -> Result<Value, RpcError>,
}

/// Every method, by area.
pub static TABLES: &[&[Method]] = &[
    CORE,
    STATS,
    CFG,
    latency::METHODS,
    usrloc::METHODS,
    modules::METHODS,
    dialplan::METHODS,
    domain::METHODS,
    drouting::METHODS,
    mqueue::METHODS,
    trusted::METHODS,
    websocket::METHODS,
    uac::METHODS,
];

/// The method named `name`.
pub fn find(name: &str) -> Option<&'static Method> {
    TABLES
        .iter()
        .flat_map(|t| t.iter())
        .find(|m| m.name == name)
}

/// Every method name, in table order.
pub fn names() -> Vec<&'static str> {
    TABLES
        .iter()
        .flat_map(|t| t.iter())
        .map(|m| m.name)
        .collect()
}

/// A worker as `core.psx` shows it.
#[derive(Clone, Debug)]
pub struct WorkerDesc {
    pub index: usize,
    /// `io_uring` or `poll`.
    pub driver: String,
}

/// What the methods can see: read-only views of the running server, plus
/// the few settings that can change at run time.
pub struct Ctl {
    pub metrics: Arc<Metrics>,
    /// The modules' shared state (usrloc, permissions…).
    pub services: Shared,
    pub started: Instant,
    pub started_unix: u64,
    pub workers: Vec<WorkerDesc>,
    /// Kamailio's `debug` level, changed live by `cfg.set core debug N`.
    pub debug: AtomicI32,
    /// Applies a new `debug` level to the logger.
    pub set_log_level: fn(i32),
    /// What the script sees of the server, as one core has it: the listening
    /// sockets (with the addresses bound), `alias=` entries, module state
    /// (for `corex.list_sockets` and `corex.list_aliases`).
    pub env: Arc<Env>,
}

impl Ctl {
    /// A context over an in-memory usrloc, for tests.
    pub fn for_tests() -> Ctl {
        let mut services = Shared::default();
        services.insert(Arc::new(crate::modules::usrloc::Usrloc::in_memory(
            Default::default(),
        )));
        Ctl {
            metrics: Arc::new(Metrics::new(2, vec!["request_route".into()])),
            services,
            started: Instant::now(),
            started_unix: unix_now(),
            workers: vec![WorkerDesc {
                index: 0,
                driver: "poll".into(),
            }],
            debug: AtomicI32::new(2),
            set_log_level: |_| {},
            env: Arc::new(Env::default()),
        }
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

static CORE: &[Method] = &[
    Method {
        name: "core.uptime",
        help: "Current time and start time (ctime text), and the seconds since start.",
        call: uptime,
    },
    Method {
        name: "core.version",
        help: "Server name and version.",
        call: |_, _| Ok(json!(version())),
    },
    Method {
        name: "core.echo",
        help: "Its parameters back, as text, up to the first one that is not a string or number.",
        call: echo,
    },
    Method {
        name: "jsonrpc.echo",
        help: "jsonrpcs's sample: its first parameter as text, and the second as an integer.",
        call: jsonrpc_echo,
    },
    Method {
        name: "core.psx",
        help: "The process's threads: workers (with their IO driver) and helpers.",
        call: psx,
    },
    Method {
        name: "core.shmmem",
        help: "Memory: ringsip has no shared-memory pool; resident and peak size of the process.",
        call: shmmem,
    },
    Method {
        name: "system.listMethods",
        help: "Every method name.",
        call: |_, _| Ok(json!(names())),
    },
    Method {
        name: "system.methodHelp",
        help: "The help text of a method.",
        call: |_, p| {
            let name = p.need_text(0, "method")?;
            find(&name)
                .map(|m| json!(m.help))
                .ok_or_else(|| RpcError::failed(format!("no method {name}")))
        },
    },
];

pub fn version() -> String {
    format!(
        "ringsip {} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

/// Kamailio's `core.echo`: each parameter read as a string (numbers as
/// their text), stopping at the first that cannot be.
fn echo(_: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let texts = (0..p.len())
        .map_while(|i| match p.get(i) {
            Some(Value::String(s)) => Some(json!(s)),
            Some(Value::Number(n)) => Some(json!(n.to_string())),
            _ => None,
        })
        .collect();
    Ok(Value::Array(texts))
}

/// jsonrpcs's `jsonrpc.echo`: a string, then an integer, each when present.
fn jsonrpc_echo(_: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let mut out = Vec::new();
    if let Some(s) = p.text(0) {
        out.push(json!(s));
        if let Some(n) = p.get(1).and_then(Value::as_i64) {
            out.push(json!(n));
        }
    }
    Ok(Value::Array(out))
}

/// Kamailio's `core.uptime`: now and the start as C `ctime` text (the
/// machine's time is taken as UTC, as ringsip's `$Tf` does), and the
/// seconds in between.
fn uptime(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    use crate::script::timefmt::{ctime, utc};
    let text = |unix: u64| String::from_utf8_lossy(&ctime(&utc(unix as i64))).into_owned();
    Ok(json!({
        "now": text(unix_now()),
        "up_since": text(ctl.started_unix),
        "uptime": ctl.started.elapsed().as_secs(),
    }))
}

fn psx(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let pid = std::process::id();
    let mut rows: Vec<Value> = Vec::new();
    let mut tasks: Vec<(u32, String)> = std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| {
                    let tid = e.file_name().to_str()?.parse().ok()?;
                    let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                    Some((tid, comm.trim().to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    tasks.sort();
    for w in &ctl.workers {
        let name = format!("ringsip-w{}", w.index);
        let tid = tasks.iter().find(|(_, c)| *c == name).map(|(t, _)| *t);
        rows.push(json!({
            "IDX": w.index,
            "PID": pid,
            "TID": tid,
            "DSC": format!("worker {} ({})", w.index, w.driver),
        }));
    }
    for (tid, comm) in tasks.iter().filter(|(_, c)| !c.starts_with("ringsip-w")) {
        rows.push(json!({"IDX": rows.len(), "PID": pid, "TID": tid, "DSC": comm}));
    }
    Ok(Value::Array(rows))
}

/// A `Name:   123 kB` field of /proc/self/status, in bytes.
fn status_kb(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn shmmem(_: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| RpcError::failed(format!("/proc/self/status: {e}")))?;
    Ok(json!({
        "allocator": "mimalloc, per-thread heaps; no shared-memory pool (Kamailio's total/free do not apply)",
        "rss": status_kb(&status, "VmRSS:"),
        "max_rss": status_kb(&status, "VmHWM:"),
        "virtual": status_kb(&status, "VmSize:"),
    }))
}

static STATS: &[Method] = &[
    Method {
        name: "stats.get_statistics",
        help: "Statistics: all, group: (core:, tm:, sl:, usrloc:) or names; \"group:name = value\" lines.",
        call: get_statistics,
    },
    Method {
        name: "stats.fetch",
        help: "As stats.get_statistics, as an object name → value.",
        call: fetch,
    },
    Method {
        name: "stats.reset_statistics",
        help: "Start the counters (not the levels, such as tm:current) from zero.",
        call: |ctl, _| {
            ctl.metrics.reset_counters();
            Ok(json!("ok"))
        },
    },
    Method {
        name: "stats.clear_statistics",
        help: "Same as stats.reset_statistics.",
        call: |ctl, _| {
            ctl.metrics.reset_counters();
            Ok(json!("ok"))
        },
    },
    Method {
        name: "tm.stats",
        help: "Transaction counters, all cores together.",
        call: tm_stats,
    },
    Method {
        name: "sl.stats",
        help: "Replies generated for received requests, by class.",
        call: sl_stats,
    },
];

/// Every statistic as `(group, name, value)`.
pub fn statistics(ctl: &Ctl) -> Vec<(&'static str, String, u64)> {
    let mut out = Vec::new();
    for (name, v) in ctl.metrics.counters() {
        let (group, name) = if let Some(n) = name.strip_prefix("tm_") {
            ("tm", n.replace("active", "current"))
        } else if name == "local_replies" {
            ("sl", "sent_replies".to_string())
        } else if let Some(class) = name.strip_prefix("local_replies_") {
            ("sl", format!("{class}_replies"))
        } else {
            ("core", name)
        };
        out.push((group, name, v));
    }
    out.extend(usrloc::statistics(ctl));
    if let Some(r) = ctl
        .services
        .get::<crate::modules::uac::reg::Registrations>()
    {
        out.extend(crate::modules::uac::reg::statistics(r));
    }
    if let Some(st) = ctl.services.get::<crate::modules::statistics::Statistics>() {
        // Kamailio prints them unsigned: a negative value wraps the same way.
        out.extend(
            st.all()
                .iter()
                .map(|s| ("script", s.name.clone(), s.get() as u64)),
        );
    }
    out
}

/// The statistics `params` select (`all`, `group:`, `name`, `group:name`; none means all).
fn selected(ctl: &Ctl, params: &Params) -> Vec<(&'static str, String, u64)> {
    let all = statistics(ctl);
    let wants = params.texts();
    if wants.is_empty() || wants.iter().any(|w| w == "all") {
        return all;
    }
    all.into_iter()
        .filter(|(g, n, _)| {
            wants.iter().any(|w| match w.split_once(':') {
                Some((wg, "")) => wg == *g,
                Some((wg, wn)) => wg == *g && wn == n,
                None => w == n,
            })
        })
        .collect()
}

fn get_statistics(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let rows = selected(ctl, p);
    if rows.is_empty() && !p.is_empty() {
        return Err(RpcError::failed(format!(
            "no statistics match {}",
            p.texts().join(" ")
        )));
    }
    Ok(json!(rows
        .iter()
        .map(|(g, n, v)| format!("{g}:{n} = {v}"))
        .collect::<Vec<_>>()))
}

fn fetch(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let mut obj = serde_json::Map::new();
    for (g, n, v) in selected(ctl, p) {
        obj.insert(format!("{g}.{n}"), json!(v));
    }
    Ok(Value::Object(obj))
}

fn counter(ctl: &Ctl, name: &str) -> u64 {
    ctl.metrics
        .counters()
        .into_iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, v)| v)
}

fn tm_stats(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let c = |n: &str| counter(ctl, n);
    Ok(json!({
        "current": c("tm_active"),
        "total": c("tm_created"),
        "created": c("tm_created"),
        "freed": c("tm_freed"),
        "branches": c("tm_branches"),
        "rpl_relayed": c("tm_relayed"),
        "rpl_generated": c("tm_local_replies"),
        "retransmissions": c("tm_retransmissions"),
        "absorbed_requests": c("tm_absorbed_requests"),
        "absorbed_replies": c("tm_absorbed_replies"),
        "timeouts": c("tm_timeouts"),
        "cancels_sent": c("tm_cancels_sent"),
        "2xx": c("tm_finals_2xx"),
        "3xx": c("tm_finals_3xx"),
        "4xx": c("tm_finals_4xx"),
        "5xx": c("tm_finals_5xx"),
        "6xx": c("tm_finals_6xx"),
    }))
}

fn sl_stats(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let mut obj = serde_json::Map::new();
    for class in 1..=6 {
        obj.insert(
            format!("{class}xx"),
            json!(counter(ctl, &format!("local_replies_{class}xx"))),
        );
    }
    obj.insert("sent".into(), json!(counter(ctl, "local_replies")));
    Ok(Value::Object(obj))
}

static CFG: &[Method] = &[
    Method {
        name: "cfg.get",
        help: "cfg.get GROUP NAME: a parameter that can change at run time (cfg.list names them).",
        call: cfg_get,
    },
    Method {
        name: "cfg.set",
        help: "cfg.set GROUP NAME VALUE: change it now.",
        call: cfg_set,
    },
    Method {
        name: "cfg.set_now_int",
        help: "Same as cfg.set.",
        call: cfg_set,
    },
    Method {
        name: "cfg.list",
        help: "The parameters cfg.get and cfg.set know.",
        call: |_, _| {
            Ok(json!(LIVE
                .iter()
                .map(|(g, n, help)| json!({"group": g, "name": n, "help": help}))
                .collect::<Vec<_>>()))
        },
    },
];

/// `(group, name, help)` of the parameters that change at run time.
const LIVE: &[(&str, &str, &str)] = &[
    (
        "core",
        "debug",
        "log level: -3 critical … 3 debug (≤ -1 errors, 0 warnings, 1-2 info, 3 debug)",
    ),
    (
        "ctl",
        "script_sample",
        "time the script of one message in N (0: never, 1: every message)",
    ),
];

fn live_param(p: &Params) -> Result<(String, String), RpcError> {
    let group = p.need_text(0, "group")?;
    let name = p.need_text(1, "name")?;
    // kamcmd also accepts "core.debug" as one parameter.
    let (group, name) = match (group.split_once('.'), p.len()) {
        (Some((g, n)), 1) => (g.to_string(), n.to_string()),
        _ => (group, name),
    };
    if LIVE.iter().any(|(g, n, _)| *g == group && *n == name) {
        Ok((group, name))
    } else {
        Err(RpcError::failed(format!(
            "{group}.{name} cannot be read or changed at run time (cfg.list)"
        )))
    }
}

fn cfg_get(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let p = match p.text(0).filter(|t| p.len() == 1 && t.contains('.')) {
        Some(one) => Params::new(one.split('.').map(|s| json!(s)).collect()),
        None => Params::new((0..p.len()).filter_map(|i| p.get(i).cloned()).collect()),
    };
    match live_param(&p)? {
        (g, n) if g == "core" && n == "debug" => Ok(json!(ctl.debug.load(Ordering::Relaxed))),
        _ => Ok(json!(ctl.metrics.script_sample.load(Ordering::Relaxed))),
    }
}

fn cfg_set(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let (g, n, value) = match p.len() {
        // cfg.set core.debug 3
        2 => {
            let gn = p.need_text(0, "group.name")?;
            let (g, n) = gn
                .split_once('.')
                .ok_or_else(|| RpcError::params("expected GROUP NAME VALUE"))?;
            (g.to_string(), n.to_string(), p.need_text(1, "value")?)
        }
        _ => (
            p.need_text(0, "group")?,
            p.need_text(1, "name")?,
            p.need_text(2, "value")?,
        ),
    };
    let (g, n) = live_param(&Params::new(vec![json!(g), json!(n)]))?;
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| RpcError::params(format!("{g}.{n}: {value} is not a number")))?;
    if g == "core" && n == "debug" {
        let level = v.clamp(-5, 5) as i32;
        ctl.debug.store(level, Ordering::Relaxed);
        (ctl.set_log_level)(level);
        log::info!("cfg.set core.debug {level}");
    } else {
        let every =
            u32::try_from(v).map_err(|_| RpcError::params("script_sample must be 0 or more"))?;
        ctl.metrics.script_sample.store(every, Ordering::Relaxed);
    }
    Ok(json!("ok"))
}

/// The latency histograms as the `latency` method returns them.
pub fn latency_value(ctl: &Ctl, l: &LatencySnapshot) -> Value {
    let row = |name: String, s: &super::histogram::Snapshot| {
        let q = |x| s.quantile(x);
        json!({
            "name": name,
            "count": s.count(),
            "p50_ns": q(0.5), "p90_ns": q(0.9), "p99_ns": q(0.99), "p999_ns": q(0.999),
            "max_ns": (s.count() > 0).then_some(s.max),
            "mean_ns": s.mean().map(|m| m as u64),
        })
    };
    let keys: Vec<Value> = (0..KEYS)
        .filter(|k| l.by_key[*k].count() > 0)
        .map(|k| row(key_name(k), &l.by_key[k]))
        .collect();
    let routes: Vec<Value> = l
        .by_route
        .iter()
        .enumerate()
        .filter(|(_, s)| s.count() > 0)
        .map(|(i, s)| {
            let name = ctl
                .metrics
                .route_names()
                .get(i)
                .cloned()
                .unwrap_or_default();
            row(name, s)
        })
        .collect();
    json!({
        "total": row("all".into(), &l.total()),
        "by_message": keys,
        "script_by_route": routes,
        "script_sample": ctl.metrics.script_sample.load(Ordering::Relaxed),
    })
}
