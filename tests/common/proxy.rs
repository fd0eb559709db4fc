//! ringsip under test: the real binary, started from a config text on a
//! loopback address of its own.
//!
//! The config text may name the listen address with placeholders, replaced
//! before the file is written:
//!
//! | placeholder | becomes |
//! |---|---|
//! | `@LISTEN@` | `udp:127.a.b.c:PORT` (for `listen=@LISTEN@`) |
//! | `@IP@` | `127.a.b.c` |
//! | `@PORT@` | `PORT` |
//!
//! A config with none of them gets `listen=udp:127.a.b.c:PORT` added at the
//! top (after a leading `#!KAMAILIO` line, if any).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use tempfile::TempDir;

use super::net::free_udp_addr;
use super::server::{Readiness, ServerProcess};

/// The binary Cargo built for this test run.
pub fn ringsip_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringsip")
}

/// The IO driver (`--io`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Io {
    Uring,
    Poll,
}

impl Io {
    pub fn arg(self) -> &'static str {
        match self {
            Io::Uring => "uring",
            Io::Poll => "poll",
        }
    }
}

/// Options for [`Proxy`]; [`ProxyBuilder::start`] runs it.
pub struct ProxyBuilder {
    config: String,
    listen: Option<SocketAddr>,
    workers: usize,
    io: Option<Io>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    readiness: Readiness,
    start_timeout: Duration,
}

impl ProxyBuilder {
    /// Listen here instead of a fresh [`free_udp_addr`].
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// `--workers N` (default 2: the CI machine has two cores).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// `--io uring|poll` (default: not passed, the binary chooses).
    pub fn io(mut self, io: Io) -> Self {
        self.io = Some(io);
        self
    }

    /// An environment variable for the process (`RINGSIP_RESOLV_CONF`…).
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.envs.push((name.to_string(), value.into()));
        self
    }

    /// More command-line arguments after the standard ones.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Count the proxy as started once its socket is bound, for a config
    /// that does not answer OPTIONS. The default waits for an answer.
    pub fn ready_when_bound(mut self) -> Self {
        self.readiness = Readiness::Bound;
        self
    }

    /// How long start-up may take (default 30 s: a wait, generous for a
    /// loaded machine; a server that exits early fails at once).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Writes the config, spawns `ringsip run -f FILE --workers N [--io …]
    /// ARGS…` and waits until it is ready. Panics with its stderr if it exits
    /// first or is not ready in time.
    pub fn start(self) -> Proxy {
        let addr = self.listen.unwrap_or_else(free_udp_addr);
        let dir = tempfile::Builder::new()
            .prefix("ringsip-test-")
            .tempdir()
            .expect("create temp dir");
        let config_path = dir.path().join("ringsip.cfg");
        fs::write(&config_path, render_config(&self.config, addr)).expect("write config");

        let mut cmd = Command::new(ringsip_bin());
        cmd.arg("run")
            .arg("-f")
            .arg(&config_path)
            .arg("--workers")
            .arg(self.workers.to_string());
        if let Some(io) = self.io {
            cmd.arg("--io").arg(io.arg());
        }
        cmd.args(&self.args).current_dir(dir.path());
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }

        let mut server = ServerProcess::spawn("ringsip", cmd, dir.path());
        server.wait_ready(addr, self.readiness, self.start_timeout);
        Proxy {
            server,
            addr,
            config_path,
            dir,
        }
    }
}

/// A running ringsip. Dropping it sends SIGTERM and checks that it exits.
pub struct Proxy {
    // Field order: the process stops (Drop) before its directory is removed.
    server: ServerProcess,
    addr: SocketAddr,
    config_path: PathBuf,
    dir: TempDir,
}

impl Proxy {
    /// ringsip with `config_text` on a fresh loopback address, two workers,
    /// plus `extra_args`; returns once it answers an OPTIONS.
    pub fn start(config_text: &str, extra_args: &[&str]) -> Proxy {
        Proxy::builder(config_text)
            .args(extra_args.iter().copied())
            .start()
    }

    pub fn builder(config_text: &str) -> ProxyBuilder {
        ProxyBuilder {
            config: config_text.to_string(),
            listen: None,
            workers: 2,
            io: None,
            args: Vec::new(),
            envs: Vec::new(),
            readiness: Readiness::Options,
            start_timeout: Duration::from_secs(30),
        }
    }

    /// The UDP address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `sip:IP:PORT`.
    pub fn uri(&self) -> String {
        format!("sip:{}", self.addr)
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The temp dir holding the config and the logs (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything ringsip wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.server.stderr()
    }

    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.server
    }

    /// SIGTERM, then wait (at most [`super::server::STOP_TIMEOUT`]) for the
    /// exit status, e.g. to assert a clean shutdown.
    pub fn stop(mut self) -> ExitStatus {
        self.server.stop()
    }
}

/// Replaces the placeholders (see the module docs) or adds a `listen=` line.
pub fn render_config(config: &str, addr: SocketAddr) -> String {
    let listen = format!("udp:{addr}");
    if ["@LISTEN@", "@IP@", "@PORT@"]
        .iter()
        .any(|p| config.contains(p))
    {
        return config
            .replace("@LISTEN@", &listen)
            .replace("@IP@", &addr.ip().to_string())
            .replace("@PORT@", &addr.port().to_string());
    }
    let line = format!("listen={listen}\n");
    match config.split_once('\n') {
        Some((first, rest)) if first.trim_start().starts_with("#!KAMAILIO") => {
            format!("{first}\n{line}{rest}")
        }
        _ => format!("{line}{config}"),
    }
}
