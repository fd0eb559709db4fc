//! permissions' `allow_trusted` against the real binary on an SQLite
//! `trusted` table, in both `db_mode`s, with the answers Kamailio 5.6.3 gave
//! live for the same rows and requests: the order rows are tried in
//! (lowest priority first when queried, highest first from memory), the
//! transports, From and R-URI patterns as POSIX basic expressions,
//! `peer_tag_avp`/`peer_tag_mode`, and `permissions.trustedReload`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::proxy::{ringsip_bin, Proxy};
use common::ua::RawUa;

const WAIT: Duration = Duration::from_secs(3);

/// `src_ip, proto, from_pattern, ruri_pattern, tag, priority`.
type Row = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    i64,
);

const ROWS: &[Row] = &[
    ("127.0.0.1", "any", None, None, Some("t_any"), 0),
    (
        "127.0.0.1",
        "udp",
        Some("^sip:alice@"),
        None,
        Some("t_alice"),
        5,
    ),
    ("127.0.0.1", "tcp", None, None, Some("t_tcp"), 10),
    (
        "127.0.0.1",
        "UDP",
        Some("^sip:bob@"),
        None,
        Some("t_bob"),
        1,
    ),
    ("127.0.0.2", "udp", Some("a+b"), None, Some("t_bre"), 0),
    ("127.0.0.3", "udp", None, Some("^sip:gw"), None, 3),
    ("127.0.0.3", "udp", None, Some("^sip:gw"), Some("t_gw"), 2),
    ("127.0.0.4", "none", None, None, Some("t_none"), 0),
    ("10.0.0.0/8", "any", None, None, Some("t_net"), 0),
];

/// The rows, with `127.0.0.1` standing for `me` (the sender's address).
fn database(path: &Path, me: &str) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(
        "CREATE TABLE trusted (id INTEGER PRIMARY KEY NOT NULL, src_ip VARCHAR(50) NOT NULL,
             proto VARCHAR(4) NOT NULL, from_pattern VARCHAR(64) DEFAULT NULL,
             ruri_pattern VARCHAR(64) DEFAULT NULL, tag VARCHAR(64),
             priority INTEGER DEFAULT 0 NOT NULL);
         CREATE TABLE address (id INTEGER PRIMARY KEY NOT NULL, grp INTEGER DEFAULT 1 NOT NULL,
             ip_addr VARCHAR(50) NOT NULL, mask INTEGER DEFAULT 32 NOT NULL,
             port SMALLINT DEFAULT 0 NOT NULL, tag VARCHAR(64));",
    )
    .unwrap();
    for r in ROWS {
        db.execute(
            "INSERT INTO trusted (src_ip, proto, from_pattern, ruri_pattern, tag, priority) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![r.0.replace("127.0.0.1", me), r.1, r.2, r.3, r.4, r.5],
        )
        .unwrap();
    }
}

fn config(db: &Path, sock: &Path, db_mode: i64, peer_tag_mode: i64) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "db_sqlite.so"
loadmodule "permissions.so"
loadmodule "ctl.so"
modparam("ctl", "binrpc", "unix:{sock}")
modparam("permissions", "db_url", "sqlite://{db}")
modparam("permissions", "peer_tag_avp", "$avp(tag)")
modparam("permissions", "db_mode", {db_mode})
modparam("permissions", "peer_tag_mode", {peer_tag_mode})
request_route {{
    $var(f) = $hdr(X-F);
    $var(ip) = $hdr(X-IP);
    $var(p) = $hdr(X-P);
    if ($rU == "zero") {{ allow_trusted(); }}
    else if ($rU == "two") {{ allow_trusted("$var(ip)", "$var(p)"); }}
    else {{ allow_trusted("$var(ip)", "$var(p)", "$var(f)"); }}
    $var(rc) = $rc;
    append_to_reply("X-T: rc=$var(rc) n=$cnt($avp(tag)) [$(avp(tag)[0])] [$(avp(tag)[1])] [$(avp(tag)[2])]\r\n");
    sl_send_reply("200", "OK");
}}
"#,
        sock = sock.display(),
        db = db.display()
    )
}

/// One request: (user, ip, proto, uri) → the X-T line.
fn ask(ua: &RawUa, proxy: &Proxy, user: &str, ip: &str, proto: &str, uri: &str) -> String {
    let ruri = format!("sip:{user}@{}", proxy.addr());
    let extra = [
        format!("X-IP: {ip}"),
        format!("X-P: {proto}"),
        format!("X-F: {uri}"),
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut req = ua.request("OPTIONS", &ruri, &extra, "");
    // The harness's From is sip:tester@…: these cases call as alice.
    req = req.replacen("From: <sip:tester@", "From: <sip:alice@", 1);
    ua.send(proxy.addr(), req);
    let reply = ua.expect_msg(WAIT);
    reply.header("X-T").unwrap_or_default().to_string()
}

/// The cases, with Kamailio 5.6.3's answers for (db_mode, peer_tag_mode)
/// 00, 01, 10, 11 (the proxy and the sender on 127.0.0.1 over UDP).
const CASES: &[(&str, &str, &str, &str, [&str; 4])] = &[
    (
        "zero",
        "",
        "",
        "",
        [
            "rc=1 n=1 [t_any] [<null>] [<null>]",
            "rc=2 n=2 [t_alice] [t_any] [<null>]",
            "rc=1 n=1 [t_alice] [<null>] [<null>]",
            "rc=2 n=2 [t_any] [t_alice] [<null>]",
        ],
    ),
    (
        "two",
        "127.0.0.1",
        "any",
        "",
        [
            "rc=1 n=1 [t_any] [<null>] [<null>]",
            "rc=3 n=3 [t_tcp] [t_alice] [t_any]",
            "rc=1 n=1 [t_tcp] [<null>] [<null>]",
            "rc=3 n=3 [t_any] [t_alice] [t_tcp]",
        ],
    ),
    (
        "three",
        "127.0.0.1",
        "udp",
        "sip:bob@x",
        [
            "rc=1 n=1 [t_any] [<null>] [<null>]",
            "rc=2 n=2 [t_bob] [t_any] [<null>]",
            "rc=1 n=1 [t_bob] [<null>] [<null>]",
            "rc=2 n=2 [t_any] [t_bob] [<null>]",
        ],
    ),
    (
        "three",
        "127.0.0.2",
        "udp",
        "sip:a+b@x",
        [
            "rc=1 n=1 [t_bre] [<null>] [<null>]",
            "rc=1 n=1 [t_bre] [<null>] [<null>]",
            "rc=1 n=1 [t_bre] [<null>] [<null>]",
            "rc=1 n=1 [t_bre] [<null>] [<null>]",
        ],
    ),
    (
        "three",
        "127.0.0.2",
        "udp",
        "sip:aab@x",
        [
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
        ],
    ),
    (
        "gw",
        "127.0.0.3",
        "udp",
        "sip:q@x",
        [
            "rc=1 n=1 [t_gw] [<null>] [<null>]",
            "rc=2 n=1 [t_gw] [<null>] [<null>]",
            "rc=1 n=0 [<null>] [<null>] [<null>]",
            "rc=2 n=1 [t_gw] [<null>] [<null>]",
        ],
    ),
    (
        "three",
        "127.0.0.4",
        "any",
        "sip:q@x",
        [
            "rc=1 n=1 [t_none] [<null>] [<null>]",
            "rc=1 n=1 [t_none] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
        ],
    ),
    (
        "three",
        "10.1.2.3",
        "any",
        "sip:q@x",
        [
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
        ],
    ),
    (
        "three",
        "127.0.0.1",
        "bogus",
        "sip:q@x",
        [
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
            "rc=-1 n=0 [<null>] [<null>] [<null>]",
        ],
    ),
];

fn ctl(sock: &Path, method: &str) -> String {
    let out = Command::new(ringsip_bin())
        .arg("ctl")
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .arg(method)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn allow_trusted_answers_as_kamailio_in_both_db_modes() {
    // Rows and arguments for 127.0.0.1 stand for the sender's address.
    let ua = RawUa::bind();
    let me = ua.addr().ip().to_string();
    for (i, (db_mode, tag_mode)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("perm.db");
        let sock = dir.path().join("k.ctl");
        database(&db, &me);
        let proxy = Proxy::start(&config(&db, &sock, db_mode, tag_mode), &[]);
        for (user, ip, proto, uri, want) in CASES {
            let ip = ip.replace("127.0.0.1", &me);
            let got = ask(&ua, &proxy, user, &ip, proto, uri);
            assert_eq!(
                got, want[i],
                "db_mode {db_mode} peer_tag_mode {tag_mode}: {user} {ip} {proto} {uri}"
            );
        }
        // A row added later: seen at once when queried, after a reload in memory.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "INSERT INTO trusted (src_ip, proto, tag, priority) VALUES ('127.0.0.9', 'any', 't_new', 0)",
            [],
        )
        .unwrap();
        let new = ask(&ua, &proxy, "three", "127.0.0.9", "udp", "sip:q@x");
        let reload = ctl(&sock, "permissions.trustedReload");
        let after = ask(&ua, &proxy, "three", "127.0.0.9", "udp", "sip:q@x");
        if db_mode == 0 {
            assert!(new.starts_with("rc=1"), "{new}");
            assert!(
                reload.contains("500") && reload.contains("Reload failed."),
                "{reload}"
            );
            let dump = ctl(&sock, "permissions.trustedDump");
            assert!(dump.contains("No trusted table"), "{dump}");
        } else {
            assert!(new.starts_with("rc=-1"), "{new}");
            assert!(reload.contains("Reload OK"), "{reload}");
            assert!(after.starts_with("rc=1"), "{after}");
        }
        drop(proxy);
    }
}

#[test]
fn allow_trusted_argument_counts_and_unknown_transports() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.cfg");
    let db = dir.path().join("perm.db");
    database(&db, "127.0.0.1");
    let check = |body: &str| {
        std::fs::write(
            &cfg,
            format!(
                "loadmodule \"permissions.so\"\nmodparam(\"permissions\", \"db_url\", \"sqlite://{}\")\n\
                 request_route {{\n {body}\n}}\n",
                db.display()
            ),
        )
        .unwrap();
        let out = Command::new(ringsip_bin())
            .args(["check", "-f"])
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(check("allow_trusted(); allow_trusted(\"$si\", \"$proto\"); allow_trusted(\"$si\", \"any\", \"$fu\");").0);
    let (ok, err) = check("allow_trusted(\"$si\");");
    assert!(!ok);
    assert!(err.contains("k.cfg:4"), "{err}");
}
