//! baresip, a real SIP user agent (Debian: `baresip-core`), run as a child
//! process and driven through its `ctrl_tcp` module: commands go in and
//! events come out as JSON in netstrings (`LEN:JSON,`).
//!
//! Each instance gets its own random loopback address (SIP on UDP, TCP and
//! TLS, the control port, and `net_interface`, so its SDP and media stay on
//! loopback), one account, and a 30-second tone file as audio source (baresip
//! ends a call when its source runs dry). The tests wait for the events it
//! reports (`CALL_RINGING`, `CALL_ESTABLISHED`, `CALL_CLOSED`…) and poll its
//! registration state.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::net::loopback_ip;
use super::server::ServerProcess;

/// The baresip binary on `PATH`; panics with how to install it.
pub fn baresip_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("baresip"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "baresip is not installed, and this test needs it.\n\
                 Debian/Ubuntu: apt-get install -y baresip-core   (`bash tests/run` does this)"
            )
        })
}

/// The one account of a baresip instance.
#[derive(Clone, Debug)]
pub struct Account {
    pub user: String,
    /// Empty: no credentials.
    pub password: String,
    /// The registrar and outbound proxy (the account's domain is its IP).
    pub proxy: SocketAddr,
    /// `udp`, `tcp` or `tls`.
    pub transport: &'static str,
    /// The CA that signed the proxy's certificate (`tls`).
    pub cafile: Option<PathBuf>,
    /// Its own certificate and key in one PEM file (`tls`: baresip then
    /// accepts TLS connections, for requests the proxy sends it).
    pub certificate: Option<PathBuf>,
    /// Answer incoming calls at once (`answermode=auto`), else ring until
    /// told to `accept`.
    pub auto_answer: bool,
}

impl Account {
    /// `sip:USER@PROXY-IP:PORT`, the address of record.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.proxy)
    }

    fn line(&self) -> String {
        format!(
            "<sip:{}@{};transport={}>;{}answermode={};regint=600",
            self.user,
            self.proxy,
            self.transport,
            if self.password.is_empty() {
                String::new()
            } else {
                format!("auth_pass={};", self.password)
            },
            if self.auto_answer { "auto" } else { "manual" }
        )
    }
}

type Events = Arc<(Mutex<EventLog>, Condvar)>;

#[derive(Default)]
struct EventLog {
    /// Events not yet taken by [`Baresip::wait_event`], in arrival order.
    pending: Vec<Value>,
    /// Every event and response, for failure messages.
    all: Vec<String>,
    /// Command responses not yet taken.
    responses: Vec<Value>,
    closed: bool,
}

/// A running baresip. Dropping it stops it (SIGTERM).
pub struct Baresip {
    name: String,
    // Field order: the process stops before its directory is removed.
    process: ServerProcess,
    ctrl: TcpStream,
    events: Events,
    sip: SocketAddr,
    _dir: TempDir,
}

fn free_tcp_port(ip: Ipv4Addr) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("bind a TCP port for baresip's control");
    listener.local_addr().expect("local address").port()
}

/// 30 seconds of a 440 Hz tone, 8 kHz mono 16-bit PCM, as a WAV file.
fn write_tone(path: &Path) {
    let rate = 8000u32;
    let samples: Vec<i16> = (0..rate * 30)
        .map(|i| {
            let t = i as f64 / rate as f64;
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
        })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, wav).expect("write the tone file");
}

/// Reads netstrings from the control connection into `events` until it closes.
fn read_netstrings(stream: TcpStream, events: Events) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut len = Vec::new();
        if reader.read_until(b':', &mut len).unwrap_or(0) == 0 {
            break;
        }
        len.pop();
        let Some(n) = std::str::from_utf8(&len)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
        else {
            break;
        };
        let mut body = vec![0; n + 1];
        if reader.read_exact(&mut body).is_err() {
            break;
        }
        body.pop(); // the ','
        let text = String::from_utf8_lossy(&body).into_owned();
        let (lock, cond) = &*events;
        let mut log = lock.lock().unwrap_or_else(|e| e.into_inner());
        log.all.push(text.clone());
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.get("response").is_some() => log.responses.push(v),
            Ok(v) => log.pending.push(v),
            Err(_) => {}
        }
        cond.notify_all();
    }
    let (lock, cond) = &*events;
    lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
    cond.notify_all();
}

impl Baresip {
    /// Starts baresip `name` with `account` and waits until its control port
    /// answers (registration happens on its own: wait for `REGISTER_OK`).
    pub fn start(name: &str, account: &Account) -> Baresip {
        Baresip::start_on(name, account, loopback_ip())
    }

    /// As [`Baresip::start`], on loopback address `ip` (e.g. the one its
    /// certificate names).
    pub fn start_on(name: &str, account: &Account, ip: Ipv4Addr) -> Baresip {
        let bin = baresip_path();
        let dir = tempfile::Builder::new()
            .prefix(&format!("baresip-{name}-"))
            .tempdir()
            .expect("create a temp dir");
        let sip_port = free_tcp_port(ip);
        let ctrl_port = free_tcp_port(ip);
        let tone = dir.path().join("tone.wav");
        write_tone(&tone);
        let config = format!(
            "poll_method epoll\n\
             sip_listen {ip}:{sip_port}\n\
             net_interface {ip}\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module aufile.so\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen {ip}:{ctrl_port}\n\
             audio_source aufile,{tone}\n\
             audio_alert aufile,{tone}\n",
            tone = tone.display()
        );
        let mut config = config;
        if let Some(ca) = &account.cafile {
            config += &format!("sip_cafile {}\n", ca.display());
        }
        if let Some(cert) = &account.certificate {
            config += &format!("sip_certificate {}\n", cert.display());
        }
        std::fs::write(dir.path().join("config"), config).expect("write baresip config");
        std::fs::write(dir.path().join("accounts"), account.line() + "\n")
            .expect("write baresip accounts");
        let mut cmd = Command::new(bin);
        cmd.arg("-f").arg(dir.path());
        let mut process = ServerProcess::spawn(name, cmd, dir.path());

        let ctrl_addr = SocketAddr::from((ip, ctrl_port));
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            match TcpStream::connect_timeout(&ctrl_addr, Duration::from_millis(200)) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline && process.is_running() => {
                    thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!(
                    "{name}: baresip's control port {ctrl_addr} never answered ({e});\n\
                     stdout:\n{}\nstderr:\n{}",
                    process.stdout(),
                    process.stderr()
                ),
            }
        };
        let events: Events = Arc::default();
        let reader = ctrl.try_clone().expect("clone the control connection");
        let sink = Arc::clone(&events);
        thread::spawn(move || read_netstrings(reader, sink));
        Baresip {
            name: name.to_string(),
            process,
            ctrl,
            events,
            sip: SocketAddr::from((ip, sip_port)),
            _dir: dir,
        }
    }

    /// Its SIP address (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        self.sip
    }

    /// Runs a command (`dial`, `hangup`, `accept`…) and returns its response;
    /// panics when baresip says it failed.
    pub fn command(&mut self, command: &str, params: &str) -> Value {
        let token = format!("{}-{}", command, Instant::now().elapsed().as_nanos());
        let body =
            serde_json::json!({"command": command, "params": params, "token": token}).to_string();
        let framed = format!("{}:{},", body.len(), body);
        self.ctrl
            .write_all(framed.as_bytes())
            .expect("write to baresip's control port");
        let (lock, cond) = &*self.events;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut log = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(i) = log
                .responses
                .iter()
                .position(|r| r["token"].as_str() == Some(token.as_str()))
            {
                let response = log.responses.remove(i);
                assert_eq!(
                    response["ok"],
                    Value::Bool(true),
                    "{}: `{command} {params}` failed: {response}",
                    self.name
                );
                return response;
            }
            let now = Instant::now();
            if now >= deadline || log.closed {
                panic!(
                    "{}: no response to `{command} {params}`; seen:\n{}",
                    self.name,
                    log.all.join("\n")
                );
            }
            log = cond
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Takes the first event of type `kind` not taken yet (earlier events of
    /// other types stay), waiting up to `timeout`; panics with everything seen.
    pub fn wait_event(&self, kind: &str, timeout: Duration) -> Value {
        self.wait_event_where(kind, |_| true, timeout)
    }

    /// As [`Baresip::wait_event`], for the first event of type `kind` that
    /// `matches` accepts.
    pub fn wait_event_where(
        &self,
        kind: &str,
        matches: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let (lock, cond) = &*self.events;
        let deadline = Instant::now() + timeout;
        let mut log = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(i) = log
                .pending
                .iter()
                .position(|e| e["type"].as_str() == Some(kind) && matches(e))
            {
                return log.pending.remove(i);
            }
            let now = Instant::now();
            if now >= deadline || log.closed {
                panic!(
                    "{}: no {kind} event within {timeout:?}; seen:\n{}\nbaresip's output:\n{}",
                    self.name,
                    log.all.join("\n"),
                    self.process.stdout()
                );
            }
            log = cond
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until the account's registration is settled and says how:
    /// `Ok` once the registrar accepted it, `Err` with baresip's output once
    /// it was refused. (Polls the `reginfo` command: a `REGISTER_OK` event
    /// may come before the control connection exists.)
    pub fn registration(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let info = self.command("reginfo", "");
            let text = info["data"].as_str().unwrap_or_default().to_string();
            if text.contains("OK") {
                return Ok(());
            }
            if text.contains("ERR") {
                return Err(self.output());
            }
            assert!(
                Instant::now() < deadline,
                "{}: registration not settled within {timeout:?}: {text}\n{}",
                self.name,
                self.output()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether an event of type `kind` arrived and was not taken.
    pub fn has_event(&self, kind: &str) -> bool {
        let (lock, _) = &*self.events;
        let log = lock.lock().unwrap_or_else(|e| e.into_inner());
        log.pending.iter().any(|e| e["type"].as_str() == Some(kind))
    }

    /// baresip's console output so far.
    pub fn output(&self) -> String {
        self.process.stdout()
    }
}
