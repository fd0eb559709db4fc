//! uac remote registrations against the real binary: a fake provider
//! registrar on loopback challenges each REGISTER and accepts it only with
//! the right digest (checked here with an MD5 of our own); the proxy
//! refreshes the registration before it ends, as Kamailio 5.6 times it
//! (within `reg_timer_interval + 3` s of the end, looked at every
//! `reg_timer_interval`); `uac_reg_lookup()` routes an inbound INVITE for
//! the account to the local user; `uac.reg_dump` shows the record online;
//! a provider that refuses gets the REGISTER again after
//! `reg_retry_interval`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::{ringsip_bin, Proxy};
use common::ua::{RawUa, SipMsg};
use common::wait::{wait_for, wait_until, EVENTUALLY};
use md5::Digest;
use serde_json::Value;

const REALM: &str = "provider.test";

fn md5_hex(parts: &[&str]) -> String {
    let mut d = md5::Md5::new();
    d.update(parts.join(":").as_bytes());
    d.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One `name="value"` (or `name=value`) of a Digest header.
fn digest_param(h: &str, name: &str) -> Option<String> {
    let at = h.find(&format!("{name}="))? + name.len() + 1;
    let rest = &h[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => q[..q.find('"')?].to_string(),
        None => rest[..rest.find([',', ' ']).unwrap_or(rest.len())].to_string(),
    })
}

/// Whether the Authorization proves `user`/`password` (RFC 2617, qop=auth).
fn digest_ok(auth: &str, user: &str, password: &str) -> bool {
    let p = |n| digest_param(auth, n).unwrap_or_default();
    let ha1 = md5_hex(&[user, REALM, password]);
    let ha2 = md5_hex(&["REGISTER", &p("uri")]);
    let want = md5_hex(&[&ha1, &p("nonce"), &p("nc"), &p("cnonce"), "auth", &ha2]);
    p("username") == user && p("realm") == REALM && p("response") == want
}

/// What the fake registrar saw: each REGISTER with its arrival time.
type Seen = Arc<Mutex<Vec<(Instant, SipMsg)>>>;

/// A provider registrar: 401 without credentials, 200 (Contact with
/// `;expires=EXPIRES`) with the right ones, 403 otherwise or when `refuse`.
fn registrar(ua: RawUa, expires: u32, refuse: bool) -> Seen {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    thread::spawn(move || {
        let mut n = 0;
        loop {
            let Some(req) = ua.recv_msg(Duration::from_secs(60)) else {
                return;
            };
            if req.method() != Some("REGISTER") {
                continue;
            }
            log.lock().unwrap().push((Instant::now(), req.clone()));
            n += 1;
            let mut out = String::new();
            let (status, extra) = match req.header("Authorization") {
                _ if refuse => ("403 Forbidden", String::new()),
                None => (
                    "401 Unauthorized",
                    format!(
                        "WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"nonce{n}\", qop=\"auth\"\r\n"
                    ),
                ),
                Some(a) if digest_ok(a, "trunkuser", "s3cret") => (
                    "200 OK",
                    format!(
                        "Contact: {};expires={expires}\r\n",
                        req.header("Contact").unwrap_or("")
                    ),
                ),
                Some(_) => ("403 Forbidden", String::new()),
            };
            out.push_str(&format!("SIP/2.0 {status}\r\n"));
            for h in ["Via", "From", "To", "Call-ID", "CSeq"] {
                if let Some(v) = req.header(h) {
                    out.push_str(&format!("{h}: {v}\r\n"));
                }
            }
            out.push_str(&extra);
            out.push_str("Content-Length: 0\r\n\r\n");
            ua.send(req.source().unwrap(), out);
        }
    });
    seen
}

fn table(db: &Path, rows: &[(&str, &str, SocketAddr)]) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(
        "CREATE TABLE uacreg (id INTEGER PRIMARY KEY, l_uuid TEXT NOT NULL DEFAULT '',
         l_username TEXT NOT NULL DEFAULT '', l_domain TEXT NOT NULL DEFAULT '',
         r_username TEXT NOT NULL DEFAULT '', r_domain TEXT NOT NULL DEFAULT '',
         realm TEXT NOT NULL DEFAULT '', auth_username TEXT NOT NULL DEFAULT '',
         auth_password TEXT NOT NULL DEFAULT '', auth_ha1 TEXT NOT NULL DEFAULT '',
         auth_proxy TEXT NOT NULL DEFAULT '', expires INTEGER NOT NULL DEFAULT 0,
         flags INTEGER NOT NULL DEFAULT 0, reg_delay INTEGER NOT NULL DEFAULT 0,
         contact_addr TEXT NOT NULL DEFAULT '', socket TEXT NOT NULL DEFAULT '')",
    )
    .unwrap();
    for (uuid, user, proxy) in rows {
        c.execute(
            "INSERT INTO uacreg (l_uuid, l_username, l_domain, r_username, r_domain, realm,
             auth_username, auth_password, auth_proxy, expires)
             VALUES (?1, ?2, 'local.test', 'trunk1', 'provider.test', 'provider.test',
             'trunkuser', 's3cret', ?3, 120)",
            (uuid, user, format!("sip:{proxy}")),
        )
        .unwrap();
    }
}

fn config(db: &Path, sock: &Path, uas: SocketAddr) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=2
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "db_sqlite.so"
loadmodule "uac.so"
loadmodule "ctl.so"
modparam("ctl", "binrpc", "unix:{sock}")
modparam("uac", "reg_db_url", "sqlite://{db}")
modparam("uac", "reg_contact_addr", "127.0.0.1:5999")
modparam("uac", "reg_timer_interval", 2)
modparam("uac", "reg_retry_interval", 9)

request_route {{
    if (is_method("OPTIONS")) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    $var(status) = uac_reg_status("$rU");
    if (!uac_reg_lookup("$rU", "$ru")) {{
        sl_send_reply("404", "Not an account");
        exit;
    }}
    append_hf("X-Reg-Status: $var(status)\r\n");
    $du = "sip:{uas}";
    t_relay();
}}
"#,
        sock = sock.display(),
        db = db.display(),
    )
}

fn ctl_json(sock: &Path, args: &[&str]) -> Value {
    let out = Command::new(ringsip_bin())
        .arg("ctl")
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .arg("--json")
        .args(args)
        .output()
        .expect("run ringsip ctl");
    assert!(
        out.status.success(),
        "ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn registers_through_a_challenge_refreshes_and_routes_calls_to_the_local_user() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("uac.db");
    let sock = dir.path().join("ctl.sock");
    let provider = RawUa::bind();
    let refusing = RawUa::bind();
    table(
        &db,
        &[
            ("acc1", "alice", provider.addr()),
            ("acc2", "bob", refusing.addr()),
        ],
    );
    let seen = registrar(provider, 6, false);
    let refused = registrar(refusing, 6, true);
    let uas = RawUa::bind();
    let proxy = Proxy::builder(&config(&db, &sock, uas.addr()))
        .workers(2)
        .start();

    // Challenged, then accepted with the right digest.
    let registered = wait_for(EVENTUALLY, "two REGISTERs for acc1", || {
        let s = seen.lock().unwrap();
        (s.len() >= 2).then(|| (s[0].clone(), s[1].clone()))
    });
    let (first, authed) = (&registered.0 .1, &registered.1 .1);
    assert_eq!(first.request_uri(), Some("sip:provider.test"));
    assert_eq!(first.header("To"), Some("<sip:trunk1@provider.test>"));
    assert_eq!(first.header("Contact"), Some("<sip:acc1@127.0.0.1:5999>"));
    assert_eq!(first.header("Expires"), Some("120"));
    assert_eq!(first.header("CSeq"), Some("10 REGISTER"));
    assert!(first.header("Authorization").is_none());
    assert_eq!(authed.header("Call-ID"), first.header("Call-ID"));
    assert_eq!(authed.header("From"), first.header("From"));
    assert_eq!(authed.header("CSeq"), Some("11 REGISTER"));
    assert!(digest_ok(
        authed.header("Authorization").unwrap(),
        "trunkuser",
        "s3cret"
    ));
    let accepted_at = registered.1 .0;

    // Online: the dump says so and a call to the account reaches alice.
    wait_until(EVENTUALLY, "acc1 online in uac.reg_dump", || {
        let dump = ctl_json(&sock, &["uac.reg_dump"]);
        dump.as_array()
            .unwrap()
            .iter()
            .any(|r| r["l_uuid"] == "acc1" && r["flags"].as_u64().is_some_and(|f| f & 4 != 0))
    });
    let caller = RawUa::bind();
    let invite = caller.request("INVITE", &format!("sip:acc1@{}", proxy.addr()), &[], "");
    caller.send(proxy.addr(), &invite);
    let routed = uas.expect_msg_where(EVENTUALLY, |m| m.method() == Some("INVITE"));
    assert_eq!(routed.request_uri(), Some("sip:alice@local.test"));
    assert_eq!(routed.header("X-Reg-Status"), Some("1"));
    let unknown = caller.request("INVITE", &format!("sip:nobody@{}", proxy.addr()), &[], "");
    caller.send(proxy.addr(), &unknown);
    let reply = caller.expect_msg_where(EVENTUALLY, |m| m.status() == Some(404));
    assert_eq!(reply.reason(), Some("Not an account"));

    // Refreshed before the 6 s end: at the first 2 s round within 5 s of it.
    let refresh_at = wait_for(EVENTUALLY, "the refresh of acc1", || {
        let s = seen.lock().unwrap();
        s.get(2).map(|(t, m)| (*t, m.clone()))
    });
    let after = refresh_at.0 - accepted_at;
    assert!(
        after >= Duration::from_millis(500) && after <= Duration::from_secs(6),
        "refreshed {after:?} after the 200 OK"
    );
    assert_ne!(refresh_at.1.header("Call-ID"), first.header("Call-ID"));

    // The refusing provider is asked again by the retry rule: the retry is
    // due 9 s after the 403, sent at the first 2 s round within 5 s of it
    // (about 4 s later; the next round, 2 s, would be too early).
    let tries = wait_for(EVENTUALLY, "acc2 asked twice", || {
        let s = refused.lock().unwrap();
        (s.len() >= 2).then(|| (s[0].0, s[1].0))
    });
    let gap = tries.1 - tries.0;
    assert!(
        gap >= Duration::from_secs(3) && gap <= Duration::from_secs(8),
        "retried {gap:?} after the 403"
    );
    let info = ctl_json(&sock, &["uac.reg_info", "l_uuid", "acc2"]);
    assert_eq!(info["l_username"], "bob");
    assert_eq!(info["flags"].as_u64().unwrap() & 4, 0);

    // Disabled by RPC: no REGISTER for acc2 any more.
    ctl_json(&sock, &["uac.reg_disable", "l_uuid", "acc2"]);
    let count = refused.lock().unwrap().len();
    thread::sleep(Duration::from_secs(5));
    let later = refused.lock().unwrap().len();
    assert!(
        later <= count + 1,
        "acc2 still registering: {count} then {later}"
    );
    drop(proxy);
}

/// What ringsip does not do yet is refused before start-up, by name.
#[test]
fn check_refuses_what_is_not_implemented() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("uac.db");
    table(&db, &[]);
    let base = config(
        &db,
        &dir.path().join("ctl.sock"),
        "127.0.0.1:5080".parse().unwrap(),
    )
    .replace("@LISTEN@", "udp:127.0.0.1:5060");
    let check = |text: &str| {
        let file = dir.path().join("k.cfg");
        std::fs::write(&file, text).unwrap();
        let out = Command::new(ringsip_bin())
            .args(["check", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = check(&base);
    assert!(ok, "{err}");
    let with = |line: &str| base.replace("request_route", &format!("{line}\nrequest_route"));
    let (ok, err) = check(&with(
        r#"modparam("uac", "event_callback", "ksr_uac_event")"#,
    ));
    assert!(
        !ok && err.contains("event_callback is not implemented"),
        "{err}"
    );
    let (ok, err) = check(&base.replace(
        r#"modparam("uac", "reg_contact_addr", "127.0.0.1:5999")"#,
        "",
    ));
    assert!(!ok && err.contains("reg_contact_addr"), "{err}");
}
