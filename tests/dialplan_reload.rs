//! dialplan and regex against the real binary: rules read from SQLite at
//! start-up translate the R-URI user, and `ringsip ctl` reloads both the
//! table (`dialplan.reload`, refused again within `reload_delta`) and the
//! regex groups file (`regex.reload`); `dialplan.translate` and
//! `dialplan.dump` answer from the rules in force.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::proxy::{ringsip_bin, Proxy};
use common::ua::RawUa;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(3);

const SCHEMA: &str = "CREATE TABLE version (table_name VARCHAR(32) NOT NULL, table_version INTEGER DEFAULT 0 NOT NULL);
CREATE TABLE dialplan (
    id INTEGER PRIMARY KEY NOT NULL, dpid INTEGER NOT NULL, pr INTEGER NOT NULL,
    match_op INTEGER NOT NULL, match_exp VARCHAR(64) NOT NULL, match_len INTEGER NOT NULL,
    subst_exp VARCHAR(64) NOT NULL, repl_exp VARCHAR(256) NOT NULL, attrs VARCHAR(64) NOT NULL);
INSERT INTO version (table_name, table_version) values ('dialplan','2');";

fn sql(db: &Path, stmt: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(stmt)
        .unwrap();
}

/// `ringsip ctl -s unix:SOCK --json ARGS…`: (exit code, stdout, stderr).
fn ctl(sock: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ringsip_bin())
        .arg("ctl")
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .arg("--json")
        .args(args)
        .output()
        .expect("run ringsip ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ctl_ok(sock: &Path, args: &[&str]) -> Value {
    let (code, out, err) = ctl(sock, args);
    assert_eq!(code, 0, "ringsip ctl {args:?}: {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The X-DP header of the 200 to an OPTIONS for `user`.
fn ask(ua: &RawUa, proxy: &Proxy, user: &str) -> String {
    let req = ua.request("OPTIONS", &format!("sip:{user}@{}", proxy.addr()), &[], "");
    ua.send(proxy.addr(), req);
    let reply = ua.expect_msg_where(WAIT, |m| m.status() == Some(200));
    reply.header("X-DP").expect("X-DP header").to_string()
}

#[test]
fn rules_and_groups_reload_through_ringsip_ctl() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dialplan.db");
    sql(&db, SCHEMA);
    sql(
        &db,
        "INSERT INTO dialplan (dpid, pr, match_op, match_exp, match_len, subst_exp, repl_exp, attrs) \
         VALUES (1, 1, 1, '^0([1-9])', 0, '^0(.*)$', '+49\\1', 'national')",
    );
    let groups = dir.path().join("groups.txt");
    std::fs::write(&groups, "[0]\n^\\+49\n").unwrap();
    let sock = dir.path().join("ringsip.ctl");
    let config = format!(
        r#"listen=@LISTEN@
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "db_sqlite.so"
loadmodule "dialplan.so"
loadmodule "regex.so"
modparam("dialplan", "db_url", "sqlite://{}")
modparam("dialplan", "attrs_pvar", "$avp(s:dpattrs)")
modparam("regex", "file", "{}")
request_route {{
    dp_translate("1");
    $var(rc) = $rc;
    pcre_match_group("$rU", "0");
    append_to_reply("X-DP: $var(rc) $rU $avp(s:dpattrs) $rc\r\n");
    sl_send_reply("200", "OK");
}}
"#,
        db.display(),
        groups.display()
    );
    let proxy = Proxy::builder(&config)
        .arg("--ctl")
        .arg(sock.display().to_string())
        .start();
    let ua = RawUa::bind();

    assert_eq!(ask(&ua, &proxy, "030123"), "1 +4930123 national 1");
    assert_eq!(ask(&ua, &proxy, "7001"), "-1 7001 <null> -1");

    // The table changes: only a reload makes the proxy see it.
    sql(
        &db,
        "INSERT INTO dialplan (dpid, pr, match_op, match_exp, match_len, subst_exp, repl_exp, attrs) \
         VALUES (1, 2, 1, '^7(.*)', 0, '^7(.*)$', '+497\\1', 'office')",
    );
    assert_eq!(ask(&ua, &proxy, "7001"), "-1 7001 <null> -1");
    ctl_ok(&sock, &["dialplan.reload"]);
    assert_eq!(ask(&ua, &proxy, "7001"), "1 +497001 office 1");
    // Again at once: refused (reload_delta), the rules stay.
    let (code, _, err) = ctl(&sock, &["dialplan.reload"]);
    assert_ne!(code, 0);
    assert!(err.contains("ongoing reload"), "{err}");

    let t = ctl_ok(&sock, &["dialplan.translate", "1", "7123"]);
    assert_eq!(t["Output"], "+497123");
    assert_eq!(t["Attributes"], "office");
    let (code, _, err) = ctl(&sock, &["dialplan.translate", "9", "7123"]);
    assert_ne!(code, 0);
    assert!(err.contains("Dialplan ID not matched"), "{err}");
    let dump = ctl_ok(&sock, &["dialplan.dump", "1"]);
    assert_eq!(dump["DPID"], 1);
    assert_eq!(dump["ENTRIES"].as_array().unwrap().len(), 2);
    assert_eq!(dump["ENTRIES"][1]["ENTRY"]["MATCHEXP"], "^7(.*)");

    // regex.reload reads the groups file again.
    std::fs::write(&groups, "[0]\n^\\+497\n").unwrap();
    assert_eq!(ask(&ua, &proxy, "030123"), "1 +4930123 national 1");
    ctl_ok(&sock, &["regex.reload"]);
    assert_eq!(ask(&ua, &proxy, "030123"), "1 +4930123 national -1");
    assert_eq!(ask(&ua, &proxy, "7001"), "1 +497001 office 1");
    // A file that no longer compiles keeps the groups in force.
    std::fs::write(&groups, "[0]\n(unclosed\n").unwrap();
    let (code, _, err) = ctl(&sock, &["regex.reload"]);
    assert_ne!(code, 0);
    assert!(err.contains("Failed to reload"), "{err}");
    assert_eq!(ask(&ua, &proxy, "7001"), "1 +497001 office 1");
}

#[test]
fn a_missing_table_or_bad_rule_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dialplan.db");
    sql(&db, SCHEMA);
    sql(
        &db,
        "INSERT INTO dialplan (dpid, pr, match_op, match_exp, match_len, subst_exp, repl_exp, attrs) \
         VALUES (1, 1, 1, '(unclosed', 0, '', 'x', '')",
    );
    let cfg = dir.path().join("bad.cfg");
    std::fs::write(
        &cfg,
        format!(
            "listen=udp:127.0.0.1:0\nloadmodule \"sl.so\"\nloadmodule \"dialplan.so\"\n\
             modparam(\"dialplan\", \"db_url\", \"sqlite://{}\")\n\
             request_route {{ sl_send_reply(\"200\", \"OK\"); }}\n",
            db.display()
        ),
    )
    .unwrap();
    let out = Command::new(ringsip_bin())
        .args(["run", "-f"])
        .arg(&cfg)
        .args(["--workers", "1"])
        .output()
        .expect("run ringsip");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(unclosed"), "{err}");
}
