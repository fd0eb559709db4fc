//! drouting against the real binary, with its tables made by Kamailio's own
//! schema file (/usr/share/kamailio/db_sqlite/drouting-create.sql) in
//! SQLite: INVITEs routed by prefix to two gateway UAS (strip and PRI
//! prefix applied, the gateway's attrs in `attrs_avp`), failover with
//! `next_routing()` in a failure_route after a 503, the caller's group read
//! from `dr_groups`, `is_from_gw` on a request from a gateway's address,
//! `goes_to_gw` on the routed request, and `drouting.reload` through
//! `ringsip ctl`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::proxy::{ringsip_bin, Proxy};
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(3);
const SCHEMA: &str = "/usr/share/kamailio/db_sqlite/drouting-create.sql";

fn sql(db: &Path, stmt: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(stmt)
        .unwrap();
}

/// A database with the drouting tables: gateway 1 (`gw1`, type 1, nothing
/// stripped) and 2 (`gw2`, type 1, 2 digits stripped, `+` put in front);
/// group 1 (user `tester`): prefix 49 to 1 then 2, prefix 33 to list #5 (2).
fn database(dir: &Path, gw1: &RawUa, gw2: &RawUa) -> std::path::PathBuf {
    let db = dir.join("dr.db");
    let schema = std::fs::read_to_string(SCHEMA)
        .unwrap_or_else(|e| panic!("{SCHEMA}: {e} (the kamailio package is installed here)"));
    sql(
        &db,
        "CREATE TABLE version (table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL);",
    );
    sql(&db, &schema);
    sql(
        &db,
        &format!(
            "INSERT INTO dr_gateways (gwid, type, address, strip, pri_prefix, attrs) VALUES \
               (1, 1, '{}', 0, NULL, 'carrier=one'), \
               (2, 1, '{}', 2, '+', 'carrier=two');
             INSERT INTO dr_gw_lists (id, gwlist) VALUES (5, '2');
             INSERT INTO dr_rules (ruleid, groupid, prefix, timerec, priority, routeid, gwlist) VALUES \
               (1, '1', '49', '', 0, '', '1,2'), \
               (2, '1', '33', '', 0, '', '#5');
             INSERT INTO dr_groups (username, domain, groupid) VALUES ('tester', '', 1);",
            gw1.addr(),
            gw2.addr()
        ),
    );
    db
}

fn config(db: &Path) -> String {
    format!(
        r#"listen=@LISTEN@
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "db_sqlite.so"
loadmodule "drouting.so"
modparam("tm", "fr_timer", 2000)
modparam("tm", "fr_inv_timer", 2000)
modparam("drouting", "db_url", "sqlite://{}")
modparam("drouting", "use_domain", 0)
modparam("drouting", "attrs_avp", "$avp(s:dr_attrs)")

request_route {{
    if (is_method("ACK")) {{
        if (t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (is_method("OPTIONS")) {{
        if (is_from_gw("1")) {{
            append_to_reply("X-GW: yes\r\n");
        }} else if (do_routing()) {{
            append_to_reply("X-RU: $ru\r\nX-Attrs: $avp(s:dr_attrs)\r\n");
        }} else {{
            append_to_reply("X-RU: none\r\n");
        }}
        sl_send_reply("200", "OK");
        exit;
    }}
    if (!do_routing()) {{
        sl_send_reply("404", "No route");
        exit;
    }}
    if (goes_to_gw("1")) {{
        append_hf("X-Goes: gw $avp(s:dr_attrs)\r\n");
    }}
    t_on_failure("DR");
    t_relay();
}}

failure_route[DR] {{
    if (t_is_canceled()) {{ exit; }}
    if (t_check_status("503")) {{
        if (next_routing()) {{
            t_on_failure("DR");
            t_relay();
        }}
    }}
}}
"#,
        db.display()
    )
}

/// A response to `req` from a gateway UAS.
fn response(req: &SipMsg, code: u16, reason: &str, tag: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers("Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    out.push_str(&format!("From: {}\r\n", req.header("From").unwrap_or("")));
    out.push_str(&format!(
        "To: {};tag={tag}\r\n",
        req.header("To").unwrap_or("")
    ));
    out.push_str(&format!(
        "Call-ID: {}\r\n",
        req.header("Call-ID").unwrap_or("")
    ));
    out.push_str(&format!("CSeq: {}\r\n", req.header("CSeq").unwrap_or("")));
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

fn final_reply(ua: &RawUa) -> SipMsg {
    ua.expect_msg_where(Duration::from_secs(6), |m| {
        m.status().is_some_and(|s| s >= 200)
    })
}

fn invite(caller: &RawUa, proxy: &Proxy, user: &str) -> String {
    caller.request("INVITE", &format!("sip:{user}@{}", proxy.addr()), &[], "")
}

#[test]
fn routes_by_prefix_and_fails_over_with_next_routing() {
    let dir = tempfile::tempdir().unwrap();
    let (gw1, gw2, caller) = (RawUa::bind(), RawUa::bind(), RawUa::bind());
    let db = database(dir.path(), &gw1, &gw2);
    let proxy = Proxy::start(&config(&db), &[]);

    // 49…: gateway 1 first, as the number is; it answers 503.
    caller.send(proxy.addr(), invite(&caller, &proxy, "4930123"));
    let inv = gw1.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_eq!(
        inv.request_uri(),
        Some(format!("sip:4930123@{}", gw1.addr()).as_str())
    );
    assert_eq!(inv.header("X-Goes"), Some("gw carrier=one"));
    gw1.send(
        proxy.addr(),
        response(&inv, 503, "Service Unavailable", "g1"),
    );
    // next_routing(): gateway 2, two digits stripped and `+` in front.
    let inv2 = gw2.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_eq!(
        inv2.request_uri(),
        Some(format!("sip:+30123@{}", gw2.addr()).as_str())
    );
    gw2.send(proxy.addr(), response(&inv2, 200, "OK", "g2"));
    let ok = final_reply(&caller);
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert!(ok.header("To").unwrap_or("").contains("tag=g2"));

    // 33…: the rule's list #5 is gateway 2 only; its 503 ends the call
    // (relayed as 500, RFC 3261 §16.7 step 6, as Kamailio's tm does).
    caller.send(proxy.addr(), invite(&caller, &proxy, "3312"));
    let inv = gw2.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_eq!(
        inv.request_uri(),
        Some(format!("sip:+12@{}", gw2.addr()).as_str())
    );
    gw2.send(
        proxy.addr(),
        response(&inv, 503, "Service Unavailable", "g3"),
    );
    assert_eq!(final_reply(&caller).status(), Some(500));

    // No rule for the number; a caller with no group.
    caller.send(proxy.addr(), invite(&caller, &proxy, "7777"));
    assert_eq!(final_reply(&caller).status(), Some(404));
    let stranger = invite(&caller, &proxy, "4930123").replace("sip:tester@", "sip:nobody@");
    caller.send(proxy.addr(), stranger);
    assert_eq!(final_reply(&caller).status(), Some(404));
    assert!(gw1
        .recv_msg(Duration::from_millis(200))
        .is_none_or(|m| m.method() != Some("INVITE")));
}

/// The headers of the 200 to an OPTIONS for `user` sent by `ua`.
fn ask(ua: &RawUa, proxy: &Proxy, user: &str) -> SipMsg {
    ua.send(
        proxy.addr(),
        ua.request("OPTIONS", &format!("sip:{user}@{}", proxy.addr()), &[], ""),
    );
    ua.expect_msg_where(WAIT, |m| m.status() == Some(200))
}

#[test]
fn is_from_gw_and_reload_through_ringsip_ctl() {
    let dir = tempfile::tempdir().unwrap();
    let (gw1, gw2, caller) = (RawUa::bind(), RawUa::bind(), RawUa::bind());
    let db = database(dir.path(), &gw1, &gw2);
    let sock = dir.path().join("ringsip.ctl");
    let proxy = Proxy::builder(&config(&db))
        .arg("--ctl")
        .arg(sock.display().to_string())
        .start();

    // From a gateway's address and port: is_from_gw; from the caller: not.
    assert_eq!(ask(&gw1, &proxy, "4930123").header("X-GW"), Some("yes"));
    let r = ask(&caller, &proxy, "4930123");
    assert_eq!(r.header("X-GW"), None);
    assert_eq!(
        r.header("X-RU"),
        Some(format!("sip:4930123@{}", gw1.addr()).as_str())
    );
    assert_eq!(r.header("X-Attrs"), Some("carrier=one"));

    // A new rule is seen after drouting.reload only.
    sql(
        &db,
        "INSERT INTO dr_rules (ruleid, groupid, prefix, timerec, priority, routeid, gwlist) \
         VALUES (3, '1', '44', '', 0, '', '2')",
    );
    assert_eq!(ask(&caller, &proxy, "4420").header("X-RU"), Some("none"));
    let out = Command::new(ringsip_bin())
        .arg("ctl")
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .arg("--json")
        .arg("drouting.reload")
        .output()
        .expect("run ringsip ctl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"reload ok\"");
    assert_eq!(
        ask(&caller, &proxy, "4420").header("X-RU"),
        Some(format!("sip:+20@{}", gw2.addr()).as_str())
    );
}
