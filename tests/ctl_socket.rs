//! The control plane against the real binary: `ringsip ctl` over the Unix
//! socket (methods, errors, exit codes), latency histograms whose counts
//! equal the messages sent, user location methods, and a Prometheus scrape
//! of `/metrics` over HTTP.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::proxy::{ringsip_bin, Io, Proxy};
use common::ua::{RawUa, SipMsg};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(3);

/// Forwards everything not to itself to `to`; answers OPTIONS to itself.
fn forwarding_config(to: SocketAddr, modules: &str) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=1
loadmodule "sl.so"
loadmodule "textops.so"
{modules}
request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    forward("{}", "{}");
}}
"#,
        to.ip(),
        to.port()
    )
}

/// `ringsip ctl -s unix:SOCK ARGS…`: (exit code, stdout, stderr).
fn ctl(sock: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ringsip_bin())
        .arg("ctl")
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .args(args)
        .output()
        .expect("run ringsip ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ringsip ctl --json`, parsed; panics unless it exits 0.
fn ctl_json(sock: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = ctl(sock, &all);
    assert_eq!(code, 0, "ringsip ctl {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// One raw exchange on the socket.
fn raw_rpc(sock: &Path, text: &str) -> Value {
    let mut conn = UnixStream::connect(sock).expect("connect");
    conn.set_read_timeout(Some(WAIT)).unwrap();
    conn.write_all(text.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// The 200 OK a UAS sends for `req` (Vias, From, To with a tag, Call-ID, CSeq).
fn ok_for(req: &SipMsg) -> String {
    let mut r = String::from("SIP/2.0 200 OK\r\n");
    for v in req.headers("via") {
        r.push_str(&format!("Via: {v}\r\n"));
    }
    for h in ["from", "call-id", "cseq"] {
        r.push_str(&format!("{h}: {}\r\n", req.header(h).unwrap()));
    }
    r.push_str(&format!("To: {};tag=uas\r\n", req.header("to").unwrap()));
    r.push_str("Content-Length: 0\r\n\r\n");
    r
}

/// `n` OPTIONS from `uac` through the proxy to `uas`, each answered 200.
fn calls_through(proxy: &Proxy, uac: &RawUa, uas: &RawUa, n: usize) {
    for _ in 0..n {
        uac.send(
            proxy.addr(),
            uac.request("OPTIONS", &format!("sip:bob@{}", uas.addr()), &[], ""),
        );
        let req = uas.expect_msg(WAIT);
        assert_eq!(req.method(), Some("OPTIONS"));
        uas.send(proxy.addr(), ok_for(&req));
        let reply = uac.expect_msg(WAIT);
        assert_eq!(reply.status(), Some(200));
    }
}

fn row<'a>(latency: &'a Value, section: &str, name: &str) -> Option<&'a Value> {
    latency[section]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
}

#[test]
fn methods_latency_and_errors_over_the_socket() {
    let uas = RawUa::bind();
    let uac = RawUa::bind();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("k.ctl");
    let modules = format!(
        "loadmodule \"jsonrpcs.so\"\nloadmodule \"ctl.so\"\nloadmodule \"cfg_rpc.so\"\n\
         modparam(\"jsonrpcs\", \"pretty_format\", 1)\nmodparam(\"jsonrpcs\", \"transport\", 7)\n\
         modparam(\"ctl\", \"binrpc\", \"unix:{}\")\n",
        sock.display()
    );
    let proxy = Proxy::builder(&forwarding_config(uas.addr(), &modules))
        .workers(2)
        .start();

    // Start clean (the harness's readiness probes were counted), and time every script.
    assert_eq!(ctl_json(&sock, &["latency.reset"]), "ok");
    assert_eq!(ctl_json(&sock, &["stats.reset_statistics"]), "ok");
    assert_eq!(
        ctl_json(&sock, &["cfg.set", "ctl", "script_sample", "1"]),
        "ok"
    );
    assert_eq!(ctl_json(&sock, &["cfg.get", "ctl", "script_sample"]), 1);

    const N: usize = 40;
    calls_through(&proxy, &uac, &uas, N);

    let lat = ctl_json(&sock, &["latency"]);
    let options = row(&lat, "by_message", "OPTIONS").expect("an OPTIONS row");
    assert_eq!(options["count"], N as u64, "{lat:#}");
    let replies = row(&lat, "by_message", "2xx").expect("a 2xx row");
    assert_eq!(replies["count"], N as u64, "{lat:#}");
    assert_eq!(lat["total"]["count"], 2 * N as u64);
    let p50 = options["p50_ns"].as_u64().unwrap();
    let p99 = options["p99_ns"].as_u64().unwrap();
    let max = options["max_ns"].as_u64().unwrap();
    assert!(
        0 < p50 && p50 <= p99 && p99 <= max,
        "p50 {p50} p99 {p99} max {max}"
    );
    assert!(max < 1_000_000_000, "a forward took {max} ns");
    let script = row(&lat, "script_by_route", "request_route")
        .unwrap_or_else(|| panic!("request_route timed: {lat:#}"));
    assert_eq!(script["count"], N as u64);

    // The readable table.
    let (code, text, _) = ctl(&sock, &["latency"]);
    assert_eq!(code, 0);
    assert!(text.contains("p99.9"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("OPTIONS"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(line.split_whitespace().nth(1), Some("40"), "{text}");

    // Counters, by name, by group, and reset.
    let stats = ctl_json(
        &sock,
        &[
            "stats.get_statistics",
            "core:rcv_requests_options",
            "core:fwd_replies_2xx",
        ],
    );
    assert_eq!(
        stats,
        serde_json::json!([
            "core:rcv_requests_options = 40",
            "core:fwd_replies_2xx = 40"
        ])
    );
    let (code, text, _) = ctl(&sock, &["stats.get_statistics", "core:"]);
    assert_eq!(code, 0);
    assert!(text.contains("core:fwd_requests = 40\n"), "{text}");
    let tm = ctl_json(&sock, &["tm.stats"]);
    assert_eq!(tm["current"], 0, "stateless: no transactions");
    let all = ctl_json(&sock, &["stats.get_statistics", "all"]);
    assert!(all.as_array().unwrap().len() > 50);
    ctl_json(&sock, &["stats.reset_statistics"]);
    assert_eq!(
        ctl_json(&sock, &["stats.get_statistics", "rcv_requests_options"]),
        serde_json::json!(["core:rcv_requests_options = 0"])
    );
    ctl_json(&sock, &["latency.reset"]);
    assert_eq!(ctl_json(&sock, &["latency"])["total"]["count"], 0);

    // Core methods.
    let version = ctl_json(&sock, &["core.version"]);
    assert!(version.as_str().unwrap().starts_with("ringsip "));
    let up = ctl_json(&sock, &["core.uptime"]);
    // Kamailio's form: ctime text, then seconds.
    assert!(up["uptime"].as_u64().is_some(), "{up}");
    assert!(up["now"].as_str().is_some_and(|t| t.len() == 24), "{up}");
    assert!(
        up["up_since"].as_str().is_some_and(|t| t.len() == 24),
        "{up}"
    );
    let psx = ctl_json(&sock, &["core.psx"]);
    let workers = psx
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["DSC"].as_str().unwrap_or("").starts_with("worker"))
        .count();
    assert_eq!(workers, 2, "{psx:#}");
    let mem = ctl_json(&sock, &["core.shmmem"]);
    assert!(mem["rss"].as_u64().unwrap() > 1 << 20, "{mem}");
    let methods = ctl_json(&sock, &["system.listMethods"]);
    for m in [
        "core.uptime",
        "stats.get_statistics",
        "ul.dump",
        "latency",
        "cfg.set",
    ] {
        assert!(methods.as_array().unwrap().iter().any(|v| v == m), "{m}");
    }

    // cfg.set core debug is live and reads back.
    ctl_json(&sock, &["cfg.set", "core", "debug", "3"]);
    assert_eq!(ctl_json(&sock, &["cfg.get", "core", "debug"]), 3);
    let (code, _, err) = ctl(&sock, &["cfg.set", "core", "children", "4"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot be read or changed at run time"),
        "{err}"
    );

    // Errors: exit 1 and the server's message.
    let (code, out, err) = ctl(&sock, &["no.such.method"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.contains("-32601") && err.contains("method not found"),
        "{err}"
    );
    let (code, _, err) = ctl(&sock, &["ul.lookup", "location"]);
    assert_eq!(code, 1);
    assert!(err.contains("-32602"), "{err}");

    // Malformed JSON-RPC on the raw socket: errors, and the server lives on.
    assert_eq!(raw_rpc(&sock, "}{")["error"]["code"], -32700);
    assert_eq!(raw_rpc(&sock, "[]")["error"]["code"], -32600);
    assert_eq!(
        raw_rpc(
            &sock,
            r#"{"jsonrpc":"2.0","method":"core.version","params":7,"id":9}"#
        )["error"]["code"],
        -32602
    );
    let batch = raw_rpc(
        &sock,
        r#"[{"jsonrpc":"2.0","method":"core.version","id":1},{"jsonrpc":"2.0","method":"x","id":2}]"#,
    );
    assert_eq!(batch[0]["id"], 1);
    assert_eq!(batch[1]["error"]["code"], -32601);
    assert_eq!(
        ctl_json(&sock, &["core.version"]),
        version,
        "still answering"
    );

    drop(proxy);
    assert!(!sock.exists(), "the socket is removed at stop");
}

/// Whether every thread of `pid` is stopped (`T` in `/proc/PID/task/*/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // "PID (comm) STATE …": the state follows the last ')'.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "T" || state == "t")
    })
}

/// A datagram that arrives while the worker cannot run (the whole process
/// is stopped) is measured from the kernel's receive stamp: its latency
/// holds the time it waited. Counting from the worker's wake-up (the round
/// start) would report microseconds.
fn waiting_in_the_kernel_is_measured(io: Io) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("k.ctl");
    let uac = RawUa::bind();
    let modules = format!(
        "loadmodule \"ctl.so\"\nmodparam(\"ctl\", \"binrpc\", \"unix:{}\")\n",
        sock.display()
    );
    let mut proxy = Proxy::builder(&forwarding_config(uac.addr(), &modules))
        .workers(1)
        .io(io)
        .start();
    let keepalive = |uac: &RawUa, proxy: &Proxy| {
        uac.send(proxy.addr(), uac.options(proxy.addr()));
        uac.expect_msg(WAIT)
    };
    // A served OPTIONS first: the worker is idle and quick.
    assert_eq!(keepalive(&uac, &proxy).status(), Some(200));
    let lat = ctl_json(&sock, &["latency"]);
    let quick = row(&lat, "by_message", "OPTIONS").expect("an OPTIONS row")["max_ns"]
        .as_u64()
        .unwrap();
    assert!(quick < 100_000_000, "an idle worker took {quick} ns");
    assert_eq!(ctl_json(&sock, &["latency.reset"]), "ok");

    let pid = proxy.process().pid();
    proxy.process().signal("STOP");
    let deadline = std::time::Instant::now() + WAIT;
    while !all_threads_stopped(pid) {
        assert!(std::time::Instant::now() < deadline, "ringsip did not stop");
        std::thread::sleep(Duration::from_millis(5));
    }
    const HELD: Duration = Duration::from_millis(300);
    uac.send(proxy.addr(), uac.options(proxy.addr()));
    std::thread::sleep(HELD);
    proxy.process().signal("CONT");
    let sent = std::time::Instant::now();
    let reply = uac.expect_msg(WAIT);
    assert_eq!(reply.status(), Some(200));
    let after_cont = sent.elapsed();

    let lat = ctl_json(&sock, &["latency"]);
    let options = row(&lat, "by_message", "OPTIONS").unwrap_or_else(|| panic!("{lat:#}"));
    assert_eq!(options["count"], 1, "{lat:#}");
    let max = options["max_ns"].as_u64().unwrap();
    let held = HELD.as_nanos() as u64;
    assert!(
        max >= held && max <= held + 2_000_000_000,
        "held {held} ns in the kernel, reply {after_cont:?} after SIGCONT; ctl says {max} ns ({io:?})"
    );
}

#[test]
fn waiting_in_the_kernel_is_measured_io_uring() {
    waiting_in_the_kernel_is_measured(Io::Uring);
}

#[test]
fn waiting_in_the_kernel_is_measured_poll_driver() {
    waiting_in_the_kernel_is_measured(Io::Poll);
}

#[test]
fn corex_lists_sockets_and_aliases_over_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("k.ctl");
    let uas = RawUa::bind();
    let modules = format!(
        "alias=sip.example.com:5090\nloadmodule \"corex.so\"\nloadmodule \"ctl.so\"\n\
         modparam(\"ctl\", \"binrpc\", \"unix:{}\")\n",
        sock.display()
    );
    let proxy = Proxy::builder(&forwarding_config(uas.addr(), &modules)).start();

    let sockets = ctl_json(&sock, &["corex.list_sockets"]);
    let list = sockets["SOCKET"]
        .as_array()
        .unwrap_or_else(|| panic!("{sockets:#}"));
    let udp = list
        .iter()
        .find(|s| s["PROTO"] == "udp")
        .unwrap_or_else(|| panic!("no udp socket: {sockets:#}"));
    assert_eq!(udp["ADDRLIST"]["ADDR"], proxy.addr().ip().to_string());
    assert_eq!(udp["PORT"], proxy.addr().port());

    let aliases = ctl_json(&sock, &["corex.list_aliases"]);
    assert_eq!(
        aliases["ALIAS"][0],
        serde_json::json!({"PROTO": "*", "ADDR": "sip.example.com", "PORT": 5090}),
        "{aliases:#}"
    );
    let (code, text, _) = ctl(&sock, &["system.listMethods"]);
    assert_eq!(code, 0);
    assert!(text.contains("corex.list_sockets"), "{text}");
}

#[test]
fn ctl_without_a_server_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = ctl(&dir.path().join("none.ctl"), &["core.uptime"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("cannot connect to the control socket") && err.contains("none.ctl"),
        "{err}"
    );
}

#[test]
fn an_unserved_control_socket_scheme_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.cfg");
    std::fs::write(
        &cfg,
        "loadmodule \"ctl.so\"\nmodparam(\"ctl\", \"binrpc\", \"tcp:127.0.0.1:2049\")\n\
         modparam(\"ctl\", \"no_such_param\", 1)\nrequest_route { drop; }\n",
    )
    .unwrap();
    let out = Command::new(ringsip_bin())
        .args(["check", "-f"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("k.cfg:3:"),
        "unknown modparam named by line: {err}"
    );

    std::fs::write(
        &cfg,
        "listen=udp:127.0.0.1:21007\nloadmodule \"ctl.so\"\n\
         modparam(\"ctl\", \"binrpc\", \"tcp:127.0.0.1:2049\")\nrequest_route { drop; }\n",
    )
    .unwrap();
    let out = Command::new(ringsip_bin())
        .args(["run", "-f"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("modparam ctl binrpc") && err.contains("use unix:PATH"),
        "{err}"
    );
}

#[test]
fn user_location_methods() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ul.ctl");
    let config = r#"#!KAMAILIO
listen=@LISTEN@
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
request_route {
    if (is_method("REGISTER")) { save("location"); exit; }
    sl_send_reply("200", "OK");
}
"#;
    let proxy = Proxy::builder(config)
        .arg("--ctl")
        .arg(sock.display().to_string())
        .start();
    let ua = RawUa::bind();
    let reg = ua.request(
        "REGISTER",
        &format!("sip:{}", proxy.addr()),
        &["Expires: 600"],
        "",
    );
    // To: is the R-URI in RawUa::request; make the AoR alice@IP.
    let reg = reg.replace(
        &format!("To: <sip:{}>", proxy.addr()),
        &format!("To: <sip:alice@{}>", proxy.addr().ip()),
    );
    ua.send(proxy.addr(), reg);
    assert_eq!(ua.expect_msg(WAIT).status(), Some(200));

    let dump = ctl_json(&sock, &["ul.dump"]);
    let text = dump.to_string();
    assert!(text.contains("\"AoR\":\"alice\""), "{dump:#}");
    assert!(
        text.contains(&format!("sip:tester@{}", ua.addr())),
        "{dump:#}"
    );
    let found = ctl_json(&sock, &["ul.lookup", "location", "alice"]);
    let contacts = found["Contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1);
    let expires = contacts[0]["Contact"]["Expires"].as_i64().unwrap();
    assert!((590..=600).contains(&expires), "{expires}");
    let stats = ctl_json(&sock, &["stats.get_statistics", "usrloc:registered_users"]);
    assert_eq!(stats, serde_json::json!(["usrloc:registered_users = 1"]));

    assert_eq!(ctl_json(&sock, &["ul.rm", "location", "alice"]), "ok");
    let (code, _, err) = ctl(&sock, &["ul.lookup", "location", "alice"]);
    assert_eq!(code, 1);
    assert!(err.contains("AoR not found: alice"), "{err}");
    let (code, _, err) = ctl(&sock, &["permissions.addressReload"]);
    assert_eq!(code, 1, "permissions not loaded here");
    assert!(err.contains("permissions is not loaded"), "{err}");
}

/// Every sample line of a Prometheus text exposition: (name with labels, value).
fn parse_exposition(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let kind = rest.split_whitespace().nth(1);
                assert!(
                    matches!(kind, Some("counter" | "gauge" | "summary")),
                    "{line}"
                );
            }
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let base = name.split('{').next().unwrap();
        assert!(
            base.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name {line}"
        );
        if name.contains('{') {
            assert!(name.ends_with('}'), "{line}");
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        samples.push((name.to_string(), v));
    }
    samples
}

fn http(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the http listener");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let (head, body) = all.split_once("\r\n\r\n").expect("an HTTP response");
    (head.to_string(), body.to_string())
}

fn scrape(addr: SocketAddr) -> Vec<(String, f64)> {
    let (head, body) = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    parse_exposition(&body)
}

fn sample(samples: &[(String, f64)], name: &str) -> f64 {
    samples
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no sample {name}"))
}

fn free_tcp_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn prometheus_scrape_moves_with_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let sock: PathBuf = dir.path().join("m.ctl");
    let http_addr = free_tcp_addr();
    let uas = RawUa::bind();
    let proxy = Proxy::builder(&forwarding_config(uas.addr(), ""))
        .arg("--ctl")
        .arg(sock.display().to_string())
        .arg("--http")
        .arg(http_addr.to_string())
        .start();
    let before = scrape(http_addr);
    let ua = RawUa::bind();
    const N: usize = 10;
    for _ in 0..N {
        ua.send(proxy.addr(), ua.options(proxy.addr()));
        assert_eq!(ua.expect_msg(WAIT).status(), Some(200));
    }
    calls_through(&proxy, &ua, &uas, 3);
    let after = scrape(http_addr);
    let delta = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(delta("ringsip_core_rcv_requests_options"), (N + 3) as f64);
    assert_eq!(delta("ringsip_sl_2xx_replies"), N as f64);
    assert_eq!(delta("ringsip_core_fwd_requests_options"), 3.0);
    assert_eq!(delta("ringsip_core_fwd_replies_2xx"), 3.0);
    assert_eq!(
        delta("ringsip_latency_seconds_count{message=\"OPTIONS\"}"),
        (N + 3) as f64
    );
    let p99 = sample(
        &after,
        "ringsip_latency_seconds{message=\"OPTIONS\",quantile=\"0.99\"}",
    );
    assert!(p99 > 0.0 && p99 < 1.0, "{p99}");

    // JSON-RPC over HTTP POST on the same listener.
    let body = r#"{"jsonrpc":"2.0","method":"core.version","id":1}"#;
    let (head, reply) = http(
        http_addr,
        &format!(
            "POST /RPC HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: Value = serde_json::from_str(&reply).unwrap();
    assert!(v["result"].as_str().unwrap().starts_with("ringsip"));
    let (head, _) = http(http_addr, "GET /nothing HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // --watch refreshes like top until stopped.
    let watch_started = std::time::Instant::now();
    let mut watch = Command::new(ringsip_bin())
        .args(["ctl", "-s"])
        .arg(format!("unix:{}", sock.display()))
        .args(["latency", "--watch", "0.2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read its screens as they come (a fixed sleep is too short when the
    // machine is loaded), until three refreshes with the OPTIONS row.
    let mut stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    common::wait_until(common::EVENTUALLY, "three --watch refreshes", || {
        out.extend(rx.try_iter().flatten());
        let text = String::from_utf8_lossy(&out);
        text.matches("\x1b[H\x1b[2J").count() >= 3 && text.contains("OPTIONS")
    });
    // Paced by the interval asked for (0.2 s): three screens come within
    // seconds of the start, not at a default interval of many.
    let took = watch_started.elapsed();
    assert!(took < Duration::from_secs(5), "three screens took {took:?}");
    watch.kill().unwrap();
    watch.wait().unwrap();
    let text = String::from_utf8_lossy(&out);
    let screens = text.matches("\x1b[H\x1b[2J").count();
    assert!(screens >= 3, "{screens} refreshes: {text}");
    assert!(text.contains("OPTIONS"), "{text}");
}
