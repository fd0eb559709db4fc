//! sipp, the SIP load generator, run with a hard time bound and its result
//! read back from the statistics file it writes on exit.
//!
//! A test that needs sipp fails (never skips) when sipp is missing: a skipped
//! load test reads as a passed one.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::net::{free_udp_port, is_tcp_listening, is_udp_bound};

/// How long after its own `-timeout` a sipp is killed.
const GRACE: Duration = Duration::from_secs(15);

/// `-buff_size`: SO_SNDBUF and SO_RCVBUF of sipp's sockets (what ringsip
/// asks for on its own, see `RuntimeConfig::recv_buffer_size`).
const SOCKET_BUFFER: usize = 4 << 20;

/// The sipp on PATH; panics with install instructions when there is none.
pub fn sipp_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("sipp"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "sipp is not installed, and this test needs it.\n\
                 Debian/Ubuntu: apt-get install -y sip-tester   (`bash tests/run` does this)\n\
                 Fedora: dnf install sipp;  macOS: brew install sipp;\n\
                 or build it from https://github.com/SIPp/sipp"
            )
        })
}

/// Which scenario sipp plays.
#[derive(Clone, Debug)]
pub enum Scenario {
    /// Built-in `-sn uas`: answers INVITE with 180 + 200, then expects ACK and BYE.
    Uas,
    /// Built-in `-sn uac`: INVITE, ACK on 200, BYE.
    Uac,
    /// A scenario file (`-sf`).
    File(PathBuf),
}

impl Scenario {
    fn name(&self) -> String {
        match self {
            Scenario::Uas => "uas".into(),
            Scenario::Uac => "uac".into(),
            Scenario::File(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into()),
        }
    }
}

/// A sipp invocation (builder). Defaults: 10 calls at 10 calls/s, a
/// `-timeout` of the time the calls need plus 20 s.
#[derive(Clone, Debug)]
pub struct Sipp {
    scenario: Scenario,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    calls: u64,
    rate: u64,
    rate_period_ms: u64,
    timeout: Option<Duration>,
    extra: Vec<String>,
}

impl Sipp {
    /// The built-in server scenario on `local` (IP and port).
    pub fn uas(local: SocketAddr) -> Sipp {
        Sipp::new(Scenario::Uas, local, None)
    }

    /// The built-in client scenario from `local` to `remote`.
    pub fn uac(local: SocketAddr, remote: SocketAddr) -> Sipp {
        Sipp::new(Scenario::Uac, local, Some(remote))
    }

    pub fn new(scenario: Scenario, local: SocketAddr, remote: Option<SocketAddr>) -> Sipp {
        Sipp {
            scenario,
            local,
            remote,
            calls: 10,
            rate: 10,
            rate_period_ms: 1000,
            timeout: None,
            extra: Vec::new(),
        }
    }

    /// `-m N`: stop after N calls.
    pub fn calls(mut self, n: u64) -> Self {
        self.calls = n;
        self
    }

    /// `-r N`: new calls per rate period (per second unless [`Sipp::rate_period_ms`]).
    pub fn rate(mut self, calls_per_period: u64) -> Self {
        self.rate = calls_per_period;
        self
    }

    /// `-rp MS` (default 1000).
    pub fn rate_period_ms(mut self, ms: u64) -> Self {
        self.rate_period_ms = ms;
        self
    }

    /// `-timeout`: sipp gives up (and fails) after this long; the process is
    /// killed 15 s later if it is still running.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// A further sipp argument (e.g. `-aa`, `-key`, `-t`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra.push(arg.into());
        self
    }

    fn effective_timeout(&self) -> Duration {
        self.timeout.unwrap_or_else(|| {
            let periods = self.calls.div_ceil(self.rate.max(1));
            Duration::from_millis(periods * self.rate_period_ms) + Duration::from_secs(20)
        })
    }

    /// The full argument list (without the program).
    pub fn command_args(&self, dir: &Path) -> Vec<String> {
        let name = self.scenario.name();
        let file = |suffix: &str| dir.join(format!("{name}_{suffix}")).display().to_string();
        let mut args = Vec::new();
        if let Some(remote) = self.remote {
            args.push(remote.to_string());
        }
        match &self.scenario {
            Scenario::Uas | Scenario::Uac => args.extend(["-sn".into(), name.clone()]),
            Scenario::File(p) => args.extend(["-sf".into(), p.display().to_string()]),
        }
        let timeout_ms = self.effective_timeout().as_millis();
        args.extend([
            "-i".into(),
            self.local.ip().to_string(),
            "-p".into(),
            self.local.port().to_string(),
            "-m".into(),
            self.calls.to_string(),
            "-r".into(),
            self.rate.to_string(),
            "-rp".into(),
            self.rate_period_ms.to_string(),
            "-timeout".into(),
            format!("{timeout_ms}ms"),
            "-timeout_error".into(),
            // Its own control port: the default 8888 is shared by every sipp.
            "-cp".into(),
            free_udp_port().to_string(),
            "-nostdin".into(),
            // sipp's own default is 64 KiB per socket: when sipp gets no CPU
            // for a moment (a loaded 2-core machine), the kernel drops what
            // arrives meanwhile, and a lost ACK fails a call for good. The
            // kernel caps this at net.core.rmem_max / wmem_max.
            "-buff_size".into(),
            SOCKET_BUFFER.to_string(),
            "-trace_stat".into(),
            "-stf".into(),
            file("stat.csv"),
            "-trace_screen".into(),
            "-screen_file".into(),
            file("screen.log"),
            "-trace_err".into(),
            "-error_file".into(),
            file("errors.log"),
        ]);
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Starts sipp in the background (e.g. a UAS before the UAC).
    pub fn spawn(self) -> SippRun {
        let program = sipp_path();
        let dir = tempfile::Builder::new()
            .prefix("ringsip-sipp-")
            .tempdir()
            .expect("create temp dir");
        let args = self.command_args(dir.path());
        let name = self.scenario.name();
        let stdout = fs::File::create(dir.path().join(format!("{name}_stdout.log"))).expect("log");
        let stderr = fs::File::create(dir.path().join(format!("{name}_stderr.log"))).expect("log");
        let child = Command::new(&program)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        SippRun {
            child: Some(child),
            started: Instant::now(),
            deadline: Instant::now() + self.effective_timeout() + GRACE,
            command: format!("sipp {}", args.join(" ")),
            name,
            local: self.local,
            dir,
        }
    }

    /// Runs sipp to the end and reads its result.
    pub fn run(self) -> SippReport {
        self.spawn().wait()
    }
}

/// A sipp running in the background. Dropping it kills it.
pub struct SippRun {
    child: Option<Child>,
    started: Instant,
    deadline: Instant,
    command: String,
    name: String,
    local: SocketAddr,
    dir: TempDir,
}

impl SippRun {
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Blocks until sipp's SIP socket is bound (before starting the peer
    /// that sends to it). Panics if sipp exits first or after `timeout`.
    pub fn wait_bound(&mut self, timeout: Duration) {
        self.wait_until(timeout, is_udp_bound)
    }

    /// [`wait_bound`](Self::wait_bound) for a sipp over TCP (`-t t1`/`-t tn`):
    /// until it listens.
    pub fn wait_listening_tcp(&mut self, timeout: Duration) {
        self.wait_until(timeout, is_tcp_listening)
    }

    fn wait_until(&mut self, timeout: Duration, bound: fn(SocketAddr) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if bound(self.local) {
                return;
            }
            let child = self.child.as_mut().expect("sipp child");
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!(
                    "sipp exited ({status}) before binding {}: {}\n{}",
                    self.local,
                    self.command,
                    self.read("stderr.log")
                );
            }
            assert!(
                Instant::now() < deadline,
                "sipp did not bind {} within {timeout:?}: {}",
                self.local,
                self.command
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn read(&self, suffix: &str) -> String {
        let path = self.dir.path().join(format!("{}_{suffix}", self.name));
        fs::read_to_string(path).unwrap_or_default()
    }

    /// Waits for sipp to exit (killing it at the hard deadline) and reads
    /// its statistics.
    pub fn wait(mut self) -> SippReport {
        let mut child = self.child.take().expect("sipp child");
        let mut killed = false;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= self.deadline {
                let _ = child.kill();
                killed = true;
                break child.wait().expect("wait after kill");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stats = parse_stat_csv(&self.read("stat.csv"));
        let count = |key: &str| stats.get(key).and_then(|v| v.trim().parse::<u64>().ok());
        SippReport {
            command: self.command.clone(),
            exit_code: status.code(),
            killed_at_deadline: killed,
            elapsed: self.started.elapsed(),
            stats_found: !stats.is_empty(),
            created: count("TotalCallCreated").unwrap_or(0),
            successful: count("SuccessfulCall(C)").unwrap_or(0),
            failed: count("FailedCall(C)").unwrap_or(0),
            retransmissions: count("Retransmissions(C)").unwrap_or(0),
            failed_max_udp_retrans: count("FailedMaxUDPRetrans(C)").unwrap_or(0),
            failed_unexpected: count("FailedUnexpectedMessage(C)").unwrap_or(0),
            out_of_call_msgs: count("OutOfCallMsgs(C)").unwrap_or(0),
            dead_call_msgs: count("DeadCallMsgs(C)").unwrap_or(0),
            stats,
            screen: self.read("screen.log"),
            errors: self.read("errors.log"),
            stderr: self.read("stderr.log"),
            stdout: self.read("stdout.log"),
        }
    }
}

impl Drop for SippRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last row of sipp's `-trace_stat` file as column name → value.
fn parse_stat_csv(text: &str) -> HashMap<String, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return HashMap::new();
    };
    let Some(last) = lines.next_back() else {
        return HashMap::new();
    };
    header
        .split(';')
        .zip(last.split(';'))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// What a sipp run did. Counters are sipp's cumulative ones from its stat
/// file (0 when the file is missing, see `stats_found`).
#[derive(Clone, Debug)]
pub struct SippReport {
    pub command: String,
    /// 0: all calls succeeded, 1: some failed, 97: internal command,
    /// 99: no call processed, 255/254: fatal (bind) error; `None` if killed.
    pub exit_code: Option<i32>,
    /// sipp outlived its `-timeout` by 15 s and was killed.
    pub killed_at_deadline: bool,
    pub elapsed: Duration,
    pub stats_found: bool,
    pub created: u64,
    pub successful: u64,
    pub failed: u64,
    pub retransmissions: u64,
    pub failed_max_udp_retrans: u64,
    pub failed_unexpected: u64,
    pub out_of_call_msgs: u64,
    pub dead_call_msgs: u64,
    /// Every column of the last stat row.
    pub stats: HashMap<String, String>,
    /// The final screen (`-trace_screen`).
    pub screen: String,
    /// Unexpected messages (`-trace_err`).
    pub errors: String,
    pub stderr: String,
    /// The screens sipp printed while running (the last one is the latest state
    /// when sipp died before writing `screen`).
    pub stdout: String,
}

impl SippReport {
    /// Panics, with everything sipp said, unless exactly `calls` calls
    /// succeeded, none failed and sipp exited 0.
    pub fn assert_all_ok(&self, calls: u64) {
        assert!(
            self.exit_code == Some(0)
                && !self.killed_at_deadline
                && self.successful == calls
                && self.failed == 0,
            "expected {calls} successful calls and none failed:\n{self}"
        );
    }
}

fn head(text: &str, lines: usize) -> String {
    text.lines().take(lines).collect::<Vec<_>>().join("\n")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl fmt::Display for SippReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(
            f,
            "exit code {:?}{} after {:.1?}; stat file {}",
            self.exit_code,
            if self.killed_at_deadline {
                " (killed at the hard deadline)"
            } else {
                ""
            },
            self.elapsed,
            if self.stats_found { "read" } else { "MISSING" }
        )?;
        writeln!(
            f,
            "created {} successful {} failed {} (max UDP retrans {}, unexpected {}) \
             retransmissions {} out-of-call {} dead-call {}",
            self.created,
            self.successful,
            self.failed,
            self.failed_max_udp_retrans,
            self.failed_unexpected,
            self.retransmissions,
            self.out_of_call_msgs,
            self.dead_call_msgs
        )?;
        writeln!(f, "--- stderr (tail)\n{}", tail(&self.stderr, 20))?;
        // The head shows what went wrong first; the tail, how it ended.
        writeln!(
            f,
            "--- unexpected messages (head)\n{}",
            head(&self.errors, 30)
        )?;
        writeln!(
            f,
            "--- unexpected messages (tail)\n{}",
            tail(&self.errors, 40)
        )?;
        if self.screen.trim().is_empty() {
            write!(
                f,
                "--- last screen printed (tail)\n{}",
                tail(&self.stdout, 25)
            )
        } else {
            // The scenario screen comes first: per-message counts, retransmissions, timeouts.
            write!(f, "--- final screen\n{}", head(&self.screen, 22))
        }
    }
}
