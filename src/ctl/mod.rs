//! The control plane: a JSON-RPC 2.0 control socket, statistics, latency
//! histograms and a Prometheus endpoint — a read-only view of the rest,
//! except for the few settings `cfg.set` changes.
//!
//! ```text
//!  worker 0 ─ Metered engine ─▶ CoreMetrics[0] (atomics, one writer) ─┐
//!  worker 1 ─ Metered engine ─▶ CoreMetrics[1]                       ├─▶ Metrics ─▶ methods ─▶ rpc ─▶ server
//!                                                                     ┘   (merged on demand)      (unix socket, HTTP)
//! ```
//!
//! * [`histogram`]: log-linear histograms (one writer per core, lock-free).
//! * [`metrics`]: the per-core counters and histograms, merged and reset.
//! * [`rpc`]: JSON-RPC 2.0 parsing and dispatch; [`methods`]: the method
//!   table and the core, stats, tm/sl and cfg methods; [`latency`] and
//!   [`usrloc`] more methods; [`prometheus`]: `/metrics`.
//! * [`server`]: the socket and HTTP threads; [`client`]: `ringsip ctl`.
//!
//! # Adding methods (another module's RPCs)
//!
//! Write `src/ctl/NAME.rs` with
//! `pub static METHODS: &[Method] = &[Method { name: "dispatcher.list", help: "…", call: list }]`,
//! where `fn list(ctl: &Ctl, p: &Params) -> Result<Value, RpcError>` finds
//! the module's shared state with `ctl.services.get::<T>()`; then add
//! `NAME::METHODS` to [`methods::TABLES`]. `system.listMethods`, the CLI and
//! the HTTP endpoint pick it up with no other change.
//!
//! # Where the socket is
//!
//! In order: `ringsip run --ctl PATH`; `modparam("ctl", "binrpc",
//! "unix:PATH")`; `modparam("jsonrpcs", "dgram_socket", PATH)`;
//! `modparam("jsonrpcs", "fifo_name", PATH)` (always served as a Unix stream
//! socket); else [`default_socket`]. The HTTP listener starts with
//! `ringsip run --http ADDR:PORT` or `modparam("ctl", "http_listen", "ADDR:PORT")`.

pub mod client;
pub mod dialplan;
pub mod domain;
pub mod drouting;
pub mod histogram;
pub mod latency;
pub mod methods;
pub mod metrics;
pub mod modules;
pub mod mqueue;
pub mod prometheus;
pub mod rpc;
pub mod server;
pub mod trusted;
pub mod uac;
pub mod usrloc;
pub mod websocket;

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::script::registry::ModParams;

pub use methods::{Ctl, Method, WorkerDesc};
pub use metrics::Metrics;
pub use rpc::{Params, RpcError};
pub use server::{bind, Bound, CtlServer};

/// Where the control plane listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtlConfig {
    pub socket: PathBuf,
    /// Configured (command line or modparam), not the default.
    pub explicit: bool,
    pub http: Option<SocketAddr>,
}

/// The default control socket: `$XDG_RUNTIME_DIR/ringsip.ctl`, else
/// `/run/ringsip/ringsip.ctl` for root, else `/tmp/ringsip-<uid>/ringsip.ctl`.
pub fn default_socket() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("ringsip.ctl");
    }
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    if uid == 0 {
        return PathBuf::from("/run/ringsip/ringsip.ctl");
    }
    PathBuf::from(format!("/tmp/ringsip-{uid}/ringsip.ctl"))
}

/// `unix:PATH` or a plain path; other schemes are not served.
pub fn parse_socket(spec: &str) -> Result<PathBuf, String> {
    let spec = spec.trim();
    let path = match spec.split_once(':') {
        Some(("unix", p)) => p,
        Some((scheme @ ("tcp" | "udp" | "udp4" | "udp6" | "tcp4" | "tcp6"), _)) => {
            return Err(format!(
                "\"{spec}\": {scheme} control sockets are not served; use unix:PATH"
            ))
        }
        _ => spec,
    };
    if path.is_empty() {
        return Err(format!("\"{spec}\": empty socket path"));
    }
    Ok(PathBuf::from(path))
}

/// The control plane's settings from the command line (first) and the modparams.
pub fn config(
    mp: &ModParams,
    cli_socket: Option<&str>,
    cli_http: Option<&str>,
) -> Result<CtlConfig, String> {
    let from_cfg = [
        ("ctl", "binrpc"),
        ("jsonrpcs", "dgram_socket"),
        ("jsonrpcs", "fifo_name"),
    ]
    .iter()
    .find_map(|(m, p)| {
        mp.str(m, p)
            .map(|v| (format!("modparam {m} {p}"), v.to_string()))
    });
    let chosen = match cli_socket {
        Some(s) => Some(("--ctl".to_string(), s.to_string())),
        None => from_cfg,
    };
    let (socket, explicit) = match chosen {
        Some((origin, spec)) => (
            parse_socket(&spec).map_err(|e| format!("ctl: {origin} {e}"))?,
            true,
        ),
        None => (default_socket(), false),
    };
    let http = match cli_http.or(mp.str("ctl", "http_listen")) {
        Some(a) => Some(
            a.trim()
                .parse::<SocketAddr>()
                .map_err(|e| format!("ctl: http listen address \"{a}\": {e} (want IP:PORT)"))?,
        ),
        None => None,
    };
    Ok(CtlConfig {
        socket,
        explicit,
        http,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_specs() {
        assert_eq!(
            parse_socket("unix:/run/x.sock").unwrap(),
            PathBuf::from("/run/x.sock")
        );
        assert_eq!(parse_socket("/tmp/y").unwrap(), PathBuf::from("/tmp/y"));
        assert!(parse_socket("tcp:127.0.0.1:2049")
            .unwrap_err()
            .contains("not served"));
        assert!(parse_socket("unix:").is_err());
    }

    #[test]
    fn command_line_wins_then_modparams_then_default() {
        let mp = ModParams::default();
        let c = config(&mp, None, None).unwrap();
        assert!(!c.explicit);
        assert_eq!(c.socket, default_socket());
        let c = config(&mp, Some("unix:/tmp/a.ctl"), Some("127.0.0.1:9")).unwrap();
        assert_eq!(c.socket, PathBuf::from("/tmp/a.ctl"));
        assert!(c.explicit);
        assert_eq!(c.http, Some("127.0.0.1:9".parse().unwrap()));
        assert!(config(&mp, None, Some("nowhere")).is_err());
    }
}
