//! The registrar end to end, against the real binary: digest-authenticated
//! REGISTER (401 then 200), wrong passwords, a forged To refused by
//! `check_to()`, an INVITE forwarded to the registered contact, and
//! registrations of 20 users surviving a restart with usrloc `db_mode` 1 and
//! 2 and a crash (SIGKILL) with 1 (and lost with 0). Subscribers are added with `ringsip user add`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::proxy::{ringsip_bin, Proxy};
use common::ua::{RawUa, SipMsg};
use ringsip::modules::auth::digest::{self, Algorithm, ResponseInput};

/// How long an expected answer may take (a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(10);
const REALM: &str = "example.com";

fn config(db: &Path, db_mode: u8) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=1
#!define DBURL "sqlite://{db}"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "uri_db.so"
modparam("usrloc", "db_mode", {db_mode})
modparam("usrloc", "db_url", DBURL)
modparam("auth_db", "db_url", DBURL)
modparam("auth_db", "calculate_ha1", yes)
modparam("auth_db", "password_column", "password")

request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (is_method("REGISTER")) {{
        if (!www_authorize("{REALM}", "subscriber")) {{
            www_challenge("{REALM}", "0");
            exit;
        }}
        if (!check_to()) {{
            sl_send_reply("403", "Forbidden auth ID");
            exit;
        }}
        consume_credentials();
        save("location");
        exit;
    }}
    if (!lookup("location")) {{
        sl_send_reply("404", "Not Found");
        exit;
    }}
    forward();
}}
"#,
        db = db.display()
    )
}

fn add_user(db: &Path, user: &str, password: &str) {
    let out = Command::new(ringsip_bin())
        .args(["user", "add", &format!("{user}@{REALM}"), password, "--db"])
        .arg(format!("sqlite://{}", db.display()))
        .output()
        .expect("run ringsip user add");
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn next() -> u32 {
    static N: AtomicU32 = AtomicU32::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A REGISTER from `ua` for `to_user`, From `from_user`, binding the UA's own address.
fn register(ua: &RawUa, to_user: &str, from_user: &str, cseq: u32, auth: Option<String>) -> String {
    let me = ua.addr();
    let n = next();
    let mut m = format!(
        "REGISTER sip:{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-reg-{n};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{from_user}@{REALM}>;tag=reg-{n}\r\n\
         To: <sip:{to_user}@{REALM}>\r\n\
         Call-ID: reg-{to_user}-{me}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{to_user}@{me}>\r\n\
         Expires: 600\r\n"
    );
    if let Some(a) = auth {
        m.push_str(&a);
        m.push_str("\r\n");
    }
    m.push_str("Content-Length: 0\r\n\r\n");
    m
}

fn nonce_of(challenge: &SipMsg) -> String {
    let h = challenge
        .header("WWW-Authenticate")
        .expect("WWW-Authenticate");
    let start = h.find("nonce=\"").expect("nonce") + 7;
    let end = h[start..].find('"').expect("closing quote") + start;
    h[start..end].to_string()
}

fn authorization(user: &str, password: &str, nonce: &str) -> String {
    let uri = format!("sip:{REALM}");
    let ha1 = digest::ha1(
        Algorithm::Md5,
        user.as_bytes(),
        REALM.as_bytes(),
        password.as_bytes(),
    );
    let resp = digest::response(
        Algorithm::Md5,
        ha1.as_bytes(),
        &ResponseInput {
            method: b"REGISTER",
            uri: uri.as_bytes(),
            nonce: nonce.as_bytes(),
            qop_auth: None,
        },
    );
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm=MD5"
    )
}

/// REGISTER without credentials (401), then with `user`'s; returns the final answer.
fn register_with_auth(
    proxy: &Proxy,
    ua: &RawUa,
    to_user: &str,
    user: &str,
    password: &str,
) -> SipMsg {
    ua.send(proxy.addr(), register(ua, to_user, user, 1, None));
    let challenge = ua.expect_msg(WAIT);
    assert_eq!(challenge.status(), Some(401), "{}", challenge.text());
    let nonce = nonce_of(&challenge);
    assert_eq!(nonce.len(), 32);
    let auth = authorization(user, password, &nonce);
    ua.send(proxy.addr(), register(ua, to_user, user, 2, Some(auth)));
    ua.expect_msg(WAIT)
}

/// An INVITE for `user` from `caller`: the answer it got, or the INVITE `callee` received.
fn invite(proxy: &Proxy, caller: &RawUa, user: &str) -> String {
    let msg = caller.request("INVITE", &format!("sip:{user}@{REALM}"), &[], "");
    caller.send(proxy.addr(), msg);
    // A forwarded INVITE gets no answer here: waiting the full WAIT then
    // only delays the failure.
    msg_text(caller.recv_msg(WAIT))
}

fn msg_text(m: Option<SipMsg>) -> String {
    m.map(|m| m.start_line().to_string()).unwrap_or_default()
}

#[test]
fn register_with_digest_then_invite_is_forwarded_to_the_contact() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ringsip.db");
    add_user(&db, "alice", "wonderland");
    let proxy = Proxy::start(&config(&db, 0), &[]);
    let alice = RawUa::bind();

    let ok = register_with_auth(&proxy, &alice, "alice", "alice", "wonderland");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let contact = ok.header("Contact").expect("200 lists the binding");
    assert_eq!(contact, format!("<sip:alice@{}>;expires=600", alice.addr()));

    let caller = RawUa::bind();
    caller.send(
        proxy.addr(),
        caller.request("INVITE", &format!("sip:alice@{REALM}"), &[], ""),
    );
    let got = alice.expect_msg(WAIT);
    assert_eq!(got.method(), Some("INVITE"));
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:alice@{}", alice.addr()).as_str())
    );

    // Nobody registered as carol.
    assert_eq!(invite(&proxy, &caller, "carol"), "SIP/2.0 404 Not Found");
}

#[test]
fn wrong_password_is_challenged_again_and_not_registered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ringsip.db");
    add_user(&db, "alice", "wonderland");
    let proxy = Proxy::start(&config(&db, 0), &[]);
    let alice = RawUa::bind();
    let r = register_with_auth(&proxy, &alice, "alice", "alice", "guess");
    assert_eq!(r.status(), Some(401));
    let r = register_with_auth(&proxy, &alice, "mallory", "mallory", "x");
    assert_eq!(r.status(), Some(401), "unknown users are challenged too");
    let caller = RawUa::bind();
    assert_eq!(invite(&proxy, &caller, "alice"), "SIP/2.0 404 Not Found");
}

#[test]
fn forged_to_is_refused_by_check_to() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ringsip.db");
    add_user(&db, "alice", "wonderland");
    add_user(&db, "bob", "builder");
    let proxy = Proxy::start(&config(&db, 0), &[]);
    let mallory = RawUa::bind();
    // Bob's valid credentials, registering Alice's address-of-record.
    let r = register_with_auth(&proxy, &mallory, "alice", "bob", "builder");
    assert_eq!(r.status(), Some(403), "{}", r.text());
    let caller = RawUa::bind();
    assert_eq!(invite(&proxy, &caller, "alice"), "SIP/2.0 404 Not Found");
}

/// How many users register before a restart.
const RESTART_USERS: usize = 20;

/// How the first process ends.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// SIGTERM: a clean shutdown (write-back flushes).
    Term,
    /// SIGKILL once the bindings are in the database: a crash.
    Kill,
}

/// `RESTART_USERS` users register (each from its own UA), the server stops
/// and starts again on the same database; returns how many of them an INVITE
/// still reaches, and the answers the caller got (for the others).
fn restart_with(db_mode: u8, stop: Stop) -> (usize, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ringsip.db");
    let names: Vec<String> = (0..RESTART_USERS).map(|i| format!("user{i}")).collect();
    for name in &names {
        add_user(&db, name, &format!("pw-{name}"));
    }
    let uas: Vec<RawUa> = names.iter().map(|_| RawUa::bind()).collect();
    {
        let mut proxy = Proxy::start(&config(&db, db_mode), &[]);
        for (name, ua) in names.iter().zip(&uas) {
            let ok = register_with_auth(&proxy, ua, name, name, &format!("pw-{name}"));
            assert_eq!(ok.status(), Some(200), "{}", ok.text());
        }
        match stop {
            Stop::Term => {
                let status = proxy.process().stop();
                assert!(
                    status.success(),
                    "clean shutdown: {status:?}\n{}",
                    proxy.stderr()
                );
            }
            Stop::Kill => {
                // Write-through queues each change to the store thread at
                // once, but the 200 does not wait for the write: crash only
                // once every binding is in the database, as a crash a
                // moment later would find it. (Write-back, db_mode 2, would
                // never get here: it writes on its timer or at shutdown.)
                let url = format!("sqlite://{}", db.display());
                common::wait_until(common::EVENTUALLY, "20 bindings in the database", || {
                    ringsip::store::open(&url)
                        .and_then(|mut s| s.location_load("location"))
                        .is_ok_and(|rows| rows.len() == RESTART_USERS)
                });
                proxy.process().signal("KILL");
            }
        }
    }
    let proxy = Proxy::start(&config(&db, db_mode), &[]);
    let caller = RawUa::bind();
    for name in &names {
        caller.send(
            proxy.addr(),
            caller.request("INVITE", &format!("sip:{name}@{REALM}"), &[], ""),
        );
    }
    // Each INVITE either reaches its user's UA (forwarded statelessly: the
    // caller hears nothing back) or is answered to the caller. Wait until all
    // of them are accounted for, then a moment more for anything extra.
    let mut reached_ua = vec![false; uas.len()];
    let mut answers = Vec::new();
    common::wait_until(
        common::EVENTUALLY,
        "every INVITE forwarded or answered",
        || {
            for (ua, reached) in uas.iter().zip(reached_ua.iter_mut()) {
                while let Some(m) = ua.recv_msg(Duration::from_millis(1)) {
                    *reached |= m.method() == Some("INVITE");
                }
            }
            while let Some(m) = caller.recv_msg(Duration::from_millis(1)) {
                answers.push(m.start_line().to_string());
            }
            reached_ua.iter().filter(|r| **r).count() + answers.len() >= RESTART_USERS
        },
    );
    while let Some(m) = caller.recv_msg(Duration::from_millis(300)) {
        answers.push(m.start_line().to_string());
    }
    let reached = reached_ua.iter().filter(|r| **r).count();
    (reached, answers)
}

#[test]
fn db_mode_1_registrations_survive_a_restart() {
    let (reached, lost) = restart_with(1, Stop::Term);
    assert_eq!(reached, RESTART_USERS, "0 lost: {lost:?}");
}

#[test]
fn db_mode_1_registrations_survive_a_crash() {
    // Write-through: each binding reaches the database without a shutdown.
    let (reached, lost) = restart_with(1, Stop::Kill);
    assert_eq!(reached, RESTART_USERS, "0 lost: {lost:?}");
}

#[test]
fn db_mode_2_registrations_survive_a_restart() {
    // Write-back: flushed at shutdown.
    let (reached, lost) = restart_with(2, Stop::Term);
    assert_eq!(reached, RESTART_USERS, "0 lost: {lost:?}");
}

#[test]
fn db_mode_0_registrations_are_lost_on_restart() {
    let (reached, answers) = restart_with(0, Stop::Term);
    assert_eq!(reached, 0);
    assert_eq!(answers.len(), RESTART_USERS, "{answers:?}");
    assert!(
        answers.iter().all(|a| a == "SIP/2.0 404 Not Found"),
        "{answers:?}"
    );
}

/// CPU seconds (user + system) the process used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

#[test]
fn sipp_1000_registers_with_digest_authentication() {
    use common::net::free_udp_addr;
    use common::sipp::{Scenario, Sipp};

    const REGISTERS: u64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ringsip.db");
    add_user(&db, "loaduser", "loadpw");
    let users = dir.path().join("users.csv");
    std::fs::write(&users, format!("SEQUENTIAL\nloaduser;{REALM}\n")).unwrap();
    let mut proxy = Proxy::start(&config(&db, 1), &[]);
    let pid = proxy.process().pid();
    let cpu_before = cpu_seconds(pid);
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/register_auth.xml");
    let report = Sipp::new(
        Scenario::File(scenario),
        free_udp_addr(),
        Some(proxy.addr()),
    )
    .calls(REGISTERS)
    .rate(250)
    .timeout(Duration::from_secs(60))
    .arg("-inf")
    .arg(users.display().to_string())
    .arg("-au")
    .arg("loaduser")
    .arg("-ap")
    .arg("loadpw")
    .run();
    let cpu = cpu_seconds(pid) - cpu_before;
    report.assert_all_ok(REGISTERS);
    // Two requests per registration: the challenged one and the authorized one.
    println!(
        "{REGISTERS} authenticated REGISTERs in {:?}; ringsip used {cpu:.2} s of CPU: {:.0} authenticated REGISTERs per CPU-second",
        report.elapsed,
        REGISTERS as f64 / cpu.max(0.01)
    );
    let caller = RawUa::bind();
    assert_eq!(invite(&proxy, &caller, "carol"), "SIP/2.0 404 Not Found");
}

#[test]
fn received_avp_and_branch_flags_are_kept_with_the_contact() {
    // A NAT-style setup: the Contact names an address nobody can reach; the
    // script records where the REGISTER came from in received_avp and marks
    // it with branch flag 6; lookup sends to that address and restores the flag.
    let config = r#"#!KAMAILIO
listen=@LISTEN@
debug=1
loadmodule "sl.so"
loadmodule "kex.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("registrar", "received_avp", "$avp(RECEIVED)")
modparam("usrloc", "nat_bflag", 6)

request_route {
    if (is_method("OPTIONS") && uri == myself) {
        sl_send_reply("200", "Keepalive");
        exit;
    }
    if (is_method("REGISTER")) {
        $avp(RECEIVED) = "sip:" + $si + ":" + $sp;
        setbflag(6);
        save("location");
        exit;
    }
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found");
        exit;
    }
    if (isbflagset(6)) {
        append_hf("X-Nat: yes\r\n");
    }
    forward();
}
"#;
    let proxy = Proxy::start(config, &[]);
    let alice = RawUa::bind();
    let me = alice.addr();
    alice.send(
        proxy.addr(),
        format!(
            "REGISTER sip:{REALM} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK-nat-1;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@{REALM}>;tag=nat-1\r\n\
             To: <sip:alice@{REALM}>\r\n\
             Call-ID: nat-1@{me}\r\n\
             CSeq: 1 REGISTER\r\n\
             Contact: <sip:alice@192.168.77.10:5060>\r\n\
             Expires: 600\r\n\
             Content-Length: 0\r\n\r\n"
        ),
    );
    let ok = alice.expect_msg(WAIT);
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert_eq!(
        ok.header("Contact"),
        Some(format!("<sip:alice@192.168.77.10:5060>;expires=600;received=\"sip:{me}\"").as_str())
    );
    let caller = RawUa::bind();
    caller.send(
        proxy.addr(),
        caller.request("INVITE", &format!("sip:alice@{REALM}"), &[], ""),
    );
    let got = alice.expect_msg(WAIT);
    assert_eq!(got.method(), Some("INVITE"), "{}", got.text());
    assert_eq!(got.request_uri(), Some("sip:alice@192.168.77.10:5060"));
    assert_eq!(got.header("X-Nat"), Some("yes"), "{}", got.text());
}

#[test]
fn parameters_not_implemented_yet_are_reported_at_start_up() {
    let config = r#"#!KAMAILIO
listen=@LISTEN@
loadmodule "sl.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("registrar", "gruu_enabled", 1)
modparam("registrar", "max_expires", 3600)
modparam("usrloc", "contact_column", "c")
request_route {
    sl_send_reply("200", "OK");
}
"#;
    let proxy = Proxy::start(config, &[]);
    let err = proxy.stderr();
    assert!(
        err.contains("registrar: parameter gruu_enabled is not implemented yet"),
        "{err}"
    );
    assert!(
        err.contains("usrloc: parameter contact_column is not implemented yet"),
        "{err}"
    );
    assert!(!err.contains("max_expires"), "{err}");
}
