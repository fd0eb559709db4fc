//! A child process that serves SIP over UDP: started with its output in log
//! files, waited for until it answers, stopped with SIGTERM (and checked to
//! exit) when the test is done, even if the test panicked.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::net::is_udp_bound;
use super::ua::RawUa;

/// How long a server may take to exit after SIGTERM before it is killed and
/// the test fails. A wait for an event, not a speed check: a debug build
/// flushing its state on a loaded 2-core machine can take seconds.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// When a server counts as started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// It answers an `OPTIONS` sent to its address (any datagram back counts).
    /// Proves the workers run, not only that a socket exists.
    Options,
    /// A socket is bound to its address (for configs that answer nothing).
    Bound,
}

pub struct ServerProcess {
    name: String,
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    exit: Option<ExitStatus>,
}

impl ServerProcess {
    /// Spawns `cmd` with stdin closed and stdout/stderr written to
    /// `log_dir/NAME.stdout` and `log_dir/NAME.stderr`.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> ServerProcess {
        let stdout_path = log_dir.join(format!("{name}.stdout"));
        let stderr_path = log_dir.join(format!("{name}.stderr"));
        let stdout = File::create(&stdout_path).expect("create stdout log");
        let stderr = File::create(&stderr_path).expect("create stderr log");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot spawn {cmd:?}: {e}"));
        ServerProcess {
            name: name.to_string(),
            child,
            stdout_path,
            stderr_path,
            exit: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.poll_exit().is_none()
    }

    fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait");
        }
        self.exit
    }

    /// Blocks until the server at `addr` is ready. Panics, with the server's
    /// stderr, if it exits first or is not ready after `timeout`.
    pub fn wait_ready(&mut self, addr: SocketAddr, how: Readiness, timeout: Duration) {
        let started = Instant::now();
        let deadline = started + timeout;
        let ua = match how {
            Readiness::Options => Some(RawUa::bind()),
            Readiness::Bound => None,
        };
        loop {
            if let Some(status) = self.poll_exit() {
                panic!(
                    "{} exited before it was ready ({status}); stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            if Instant::now() >= deadline {
                let what = match how {
                    Readiness::Options => "did not answer OPTIONS",
                    Readiness::Bound => "did not bind",
                };
                panic!(
                    "{} {what} on {addr} within {timeout:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            if is_udp_bound(addr) {
                match &ua {
                    None => return,
                    Some(ua) => {
                        // A fresh transaction each time: a proxy that absorbs
                        // retransmissions would ignore a repeat.
                        ua.send(addr, ua.options(addr));
                        if ua.recv(Duration::from_millis(200)).is_some() {
                            return;
                        }
                    }
                }
            } else {
                thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Sends SIGTERM and waits for the exit; kills it and panics if it is
    /// still running after [`STOP_TIMEOUT`]. Returns how it exited.
    pub fn stop(&mut self) -> ExitStatus {
        if let Some(status) = self.poll_exit() {
            return status;
        }
        self.signal("TERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.poll_exit() {
                return status;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait after SIGKILL");
        self.exit = Some(status);
        if !thread::panicking() {
            panic!(
                "{} did not exit within {STOP_TIMEOUT:?} of SIGTERM (killed); stderr:\n{}",
                self.name,
                self.stderr()
            );
        }
        status
    }

    /// Sends a signal by name (`"TERM"`, `"USR1"`, `"HUP"`…) to the process.
    /// Through the shell's `kill` builtin: the tests keep to safe Rust
    /// (`unsafe` lives in `src/runtime/` only).
    pub fn signal(&self, sig: &str) {
        // Once reaped, the pid may belong to someone else.
        assert!(self.exit.is_none(), "{} has already exited", self.name);
        let pid = self.child.id().to_string();
        let status = Command::new("sh")
            .args(["-c", "kill -s \"$0\" \"$1\"", sig, &pid])
            .status()
            .expect("run sh -c kill");
        assert!(status.success(), "kill -s {sig} {pid} failed: {status}");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
