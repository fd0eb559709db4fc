//! dispatcher end to end, against the real binary (KAMAILIO-REFERENCE §7.9):
//! `ds_select_dst` with the failover list, `ds_next_dst()` in a
//! failure_route when the first destination answers 503 or is silent, and
//! keep-alive OPTIONS marking a dead destination inactive (routing passes it
//! over, `event_route[dispatcher:dst-down]` runs) and active again once it answers.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::ua::{RawUa, SipMsg};

/// How long an expected message may take (a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(10);

/// A destination that answers the proxy's keep-alive OPTIONS from a thread
/// of its own while `alive`, as a real server does however busy the test
/// is (a keep-alive unanswered within fr_timer marks it down), and hands
/// every other message to the test.
struct Destination {
    addr: SocketAddr,
    sock: UdpSocket,
    alive: Arc<AtomicBool>,
    probes: Arc<Mutex<Vec<SipMsg>>>,
    others: mpsc::Receiver<SipMsg>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Destination {
    fn start(alive: bool) -> Destination {
        let ua = RawUa::bind();
        let addr = ua.addr();
        let sock = ua.socket().try_clone().expect("clone the socket");
        let alive = Arc::new(AtomicBool::new(alive));
        let probes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, others) = mpsc::channel();
        let thread = {
            let (alive, probes, stop) = (alive.clone(), probes.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(m) = ua.recv_msg(Duration::from_millis(50)) else {
                        continue;
                    };
                    if m.method() != Some("OPTIONS") {
                        let _ = tx.send(m);
                        continue;
                    }
                    if alive.load(Ordering::Relaxed) {
                        if let Some(from) = m.source() {
                            ua.send(from, response(&m, 200, "OK", Some("ka")));
                        }
                    }
                    probes.lock().unwrap().push(m);
                }
            })
        };
        Destination {
            addr,
            sock,
            alive,
            probes,
            others,
            stop,
            thread: Some(thread),
        }
    }

    /// The next message other than a keep-alive for which `pred` holds.
    fn expect_where(&self, timeout: Duration, pred: impl Fn(&SipMsg) -> bool) -> SipMsg {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.others.recv_timeout(left) {
                Ok(m) if pred(&m) => return m,
                Ok(_) => {}
                Err(_) => panic!("{}: no matching message within {timeout:?}", self.addr),
            }
        }
    }

    fn send(&self, to: SocketAddr, text: String) {
        self.sock.send_to(text.as_bytes(), to).expect("send");
    }
}

impl Drop for Destination {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A response to `req` from a test UA acting as the callee.
fn response(req: &SipMsg, code: u16, reason: &str, to_tag: Option<&str>) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers("Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    out.push_str(&format!("From: {}\r\n", req.header("From").unwrap_or("")));
    let to = req.header("To").unwrap_or("");
    match to_tag {
        Some(tag) if !to.contains("tag=") => out.push_str(&format!("To: {to};tag={tag}\r\n")),
        _ => out.push_str(&format!("To: {to}\r\n")),
    }
    out.push_str(&format!(
        "Call-ID: {}\r\n",
        req.header("Call-ID").unwrap_or("")
    ));
    out.push_str(&format!("CSeq: {}\r\n", req.header("CSeq").unwrap_or("")));
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// Set 1: `first` (priority 10), then `second`; failover on; optional extra modparams.
fn config(dir_list: &str, params: &str) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=2
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "dispatcher.so"
modparam("tm", "fr_timer", 1000)
modparam("tm", "fr_inv_timer", 1000)
modparam("dispatcher", "list_file", "{dir_list}")
modparam("dispatcher", "flags", 2)
{params}

request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        append_to_reply("X-Down: $shv(down)\r\nX-Up: $shv(up)\r\n");
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (!ds_select_dst("1", "8")) {{
        sl_send_reply("503", "No destination");
        exit;
    }}
    t_on_failure("DS");
    t_relay();
}}

failure_route[DS] {{
    if (t_is_canceled()) {{ exit; }}
    if (t_check_status("503|408")) {{
        ds_mark_dst("ip");
        if (ds_next_dst()) {{
            t_on_failure("DS");
            t_relay();
        }}
    }}
}}

event_route[dispatcher:dst-down] {{
    $shv(down) = $du;
}}

event_route[dispatcher:dst-up] {{
    $shv(up) = $du;
}}
"#
    )
}

fn list_file(dir: &std::path::Path, first: SocketAddr, second: SocketAddr) -> String {
    let path = dir.join("dispatcher.list");
    std::fs::write(
        &path,
        format!("# set 1\n1 sip:{first} 0 10\n1 sip:{second} 0 5\n"),
    )
    .expect("write the list");
    path.display().to_string()
}

fn invite(caller: &RawUa, proxy: SocketAddr) -> String {
    caller.request("INVITE", &format!("sip:bob@{proxy}"), &[], "")
}

fn final_reply(caller: &RawUa) -> SipMsg {
    caller.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200))
}

#[test]
fn first_answers_503_then_ds_next_dst_reaches_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (RawUa::bind(), RawUa::bind());
    let list = list_file(dir.path(), first.addr(), second.addr());
    let proxy = Proxy::start(&config(&list, ""), &[]);
    let caller = RawUa::bind();
    caller.send(proxy.addr(), invite(&caller, proxy.addr()));
    let inv = first.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    first.send(
        proxy.addr(),
        response(&inv, 503, "Service Unavailable", Some("f1")),
    );
    let inv2 = second.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_eq!(
        inv2.request_uri(),
        inv.request_uri(),
        "the R-URI is kept; only $du changed"
    );
    second.send(proxy.addr(), response(&inv2, 200, "OK", Some("s1")));
    let ok = final_reply(&caller);
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert!(ok.header("To").unwrap_or("").contains("tag=s1"));

    // ds_mark_dst("ip") took the first out: the next call goes to the second directly,
    // and event_route[dispatcher:dst-down] saw the first as $du.
    caller.send(proxy.addr(), invite(&caller, proxy.addr()));
    let inv3 = second.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    second.send(proxy.addr(), response(&inv3, 486, "Busy", Some("s2")));
    assert_eq!(final_reply(&caller).status(), Some(486));
    assert!(first
        .recv_msg(Duration::from_millis(200))
        .is_none_or(|m| m.method() != Some("INVITE")));
    let first_uri = format!("sip:{}", first.addr());
    common::wait_until(common::EVENTUALLY, "the dst-down event", || {
        caller.send(proxy.addr(), caller.options(proxy.addr()));
        let pong = caller.expect_msg_where(WAIT, |m| m.status() == Some(200));
        pong.header("X-Down") == Some(first_uri.as_str())
    });
}

#[test]
fn silent_first_times_out_and_the_second_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (RawUa::bind(), RawUa::bind());
    let list = list_file(dir.path(), first.addr(), second.addr());
    let proxy = Proxy::start(&config(&list, ""), &[]);
    let caller = RawUa::bind();
    caller.send(proxy.addr(), invite(&caller, proxy.addr()));
    first.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    // Nobody answers at the first: 408 after fr_inv_timer, then the second.
    let inv2 = second.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    second.send(proxy.addr(), response(&inv2, 200, "OK", Some("s1")));
    let ok = final_reply(&caller);
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
}

#[test]
fn keepalive_probing_takes_a_dead_destination_out_and_back_in() {
    let dir = tempfile::tempdir().unwrap();
    // The first never answers its keep-alives (until it comes back); the second does.
    let (first, second) = (Destination::start(false), Destination::start(true));
    let list = list_file(dir.path(), first.addr, second.addr);
    let params = "modparam(\"dispatcher\", \"ds_ping_interval\", 1)\n\
                  modparam(\"dispatcher\", \"ds_probing_mode\", 1)\n\
                  modparam(\"dispatcher\", \"ds_ping_from\", \"sip:pinger@ringsip.test\")";
    let proxy = Proxy::start(&config(&list, params), &[]);
    let caller = RawUa::bind();
    let status = |caller: &RawUa| {
        caller.send(proxy.addr(), caller.options(proxy.addr()));
        caller.expect_msg_where(WAIT, |m| m.status() == Some(200))
    };
    let first_uri = format!("sip:{}", first.addr);
    common::wait_until(
        common::EVENTUALLY,
        "the silent destination marked down",
        || status(&caller).header("X-Down") == Some(first_uri.as_str()),
    );
    let probe = first
        .probes
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("the first destination was probed");
    assert_eq!(probe.request_uri(), Some(first_uri.as_str()));
    assert!(probe
        .header("From")
        .unwrap_or("")
        .contains("sip:pinger@ringsip.test"));
    // While it is down, calls go to the second directly.
    caller.send(proxy.addr(), invite(&caller, proxy.addr()));
    let inv = second.expect_where(WAIT, |m| m.method() == Some("INVITE"));
    second.send(proxy.addr(), response(&inv, 200, "OK", Some("s1")));
    assert_eq!(final_reply(&caller).status(), Some(200));
    // The first comes back: it answers its next keep-alive and is up again.
    first.alive.store(true, Ordering::Relaxed);
    common::wait_until(common::EVENTUALLY, "the destination back up", || {
        status(&caller).header("X-Up") == Some(first_uri.as_str())
    });
    caller.send(proxy.addr(), invite(&caller, proxy.addr()));
    let inv = first.expect_where(WAIT, |m| m.method() == Some("INVITE"));
    first.send(proxy.addr(), response(&inv, 200, "OK", Some("f1")));
    assert_eq!(final_reply(&caller).status(), Some(200));
}

#[test]
fn unsupported_algorithm_and_bad_list_fail_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.cfg");
    std::fs::write(
        &path,
        "loadmodule \"dispatcher.so\"\nrequest_route {\n  ds_select_dst(\"1\", \"10\");\n}\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::proxy::ringsip_bin())
        .args(["check", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("ds.cfg:3:") && err.contains("dialog"), "{err}");

    let list = dir.path().join("bad.list");
    std::fs::write(&list, "1 sip:10.0.0.1\nx sip:10.0.0.2\n").unwrap();
    std::fs::write(
        &path,
        format!(
            "listen=udp:127.0.0.1:0\nloadmodule \"dispatcher.so\"\nmodparam(\"dispatcher\", \"list_file\", \"{}\")\nrequest_route {{ exit; }}\n",
            list.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(common::proxy::ringsip_bin())
        .args(["run", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.list") && err.contains("line 2"), "{err}");
}

#[test]
fn sets_from_the_dispatcher_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ds.db");
    let target = RawUa::bind();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE dispatcher (id INTEGER PRIMARY KEY, setid INTEGER NOT NULL DEFAULT 0,
             destination VARCHAR(192) NOT NULL DEFAULT '', flags INTEGER NOT NULL DEFAULT 0,
             priority INTEGER NOT NULL DEFAULT 0, attrs VARCHAR(128) NOT NULL DEFAULT '',
             description VARCHAR(64) NOT NULL DEFAULT '');",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO dispatcher (setid, destination) VALUES (5, ?1)",
            [format!("sip:{}", target.addr())],
        )
        .unwrap();
    }
    let config = format!(
        r#"#!KAMAILIO
listen=@LISTEN@
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "dispatcher.so"
modparam("dispatcher", "db_url", "sqlite://{}")
request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (!ds_list_exists("5") || !ds_select_dst("5", "4")) {{
        sl_send_reply("500", "no set 5");
        exit;
    }}
    forward();
}}
"#,
        db.display()
    );
    let proxy = Proxy::start(&config, &[]);
    let caller = RawUa::bind();
    caller.send(proxy.addr(), invite(&caller, proxy.addr()));
    let got = target.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert!(got.request_uri().unwrap_or("").starts_with("sip:bob@"));
}
