//! sqlops and avpops in the real binary: a carrier config that picks the
//! gateway of a call from an SQLite table (`sql_query` + `$dbr`), loads a
//! preference (`avp_db_load`) and relays the INVITE there; and a connection
//! name that no `sqlcon` declares, refused at start-up with file:line.

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::ua::RawUa;

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn routes_from_sql_and_loads_preferences() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("carrier.db");
    let gw = RawUa::bind();
    let uac = RawUa::bind();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE routes (prefix VARCHAR(16), gw VARCHAR(64), prio INTEGER);
             CREATE TABLE usr_preferences (uuid VARCHAR(64) DEFAULT '', username VARCHAR(64),
                 domain VARCHAR(64) DEFAULT '', attribute VARCHAR(32), type INTEGER DEFAULT 0,
                 value VARCHAR(128));
             INSERT INTO usr_preferences (username, attribute, type, value)
                 VALUES ('4930123', 'cli', 0, '+4930999');",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO routes VALUES ('49', ?1, 10), ('49', 'sip:192.0.2.1:5060', 20)",
            [format!("sip:{}", gw.addr())],
        )
        .unwrap();
    }
    let url = format!("sqlite://{}", db.display());
    let proxy = Proxy::start(
        &format!(
            r#"loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "textops.so"
loadmodule "sqlops.so"
loadmodule "avpops.so"
modparam("sqlops", "sqlcon", "ca=>{url}")
modparam("avpops", "db_url", "{url}")
modparam("avpops", "avp_table", "usr_preferences")
request_route {{
    if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
    if (!is_method("INVITE")) {{ exit; }}
    if (sql_query("ca", "select gw, prio from routes where prefix='$(rU{{s.substr,0,2}})' order by prio", "r") != 1) {{
        sl_send_reply("404", "No route");
        exit;
    }}
    $du = $dbr(r=>[0,0]);
    avp_db_load("$ruri/username", "$avp(s:cli)");
    append_hf("X-Route: $dbr(r=>rows) $dbr(r=>[0,1]) $avp(cli)\r\n");
    t_relay();
}}
"#
        ),
        &[],
    );
    let invite = uac.request("INVITE", "sip:4930123@example.net", &[], "");
    uac.send(proxy.addr(), invite);
    let got = gw.expect_msg(WAIT);
    let text = got.text();
    assert!(
        text.starts_with("INVITE sip:4930123@example.net SIP/2.0"),
        "{text}"
    );
    assert_eq!(got.header("X-Route"), Some("2 10 +4930999"), "{text}");

    // No route for this prefix: 404 from the script.
    let invite = uac.request("INVITE", "sip:3312345@example.net", &[], "");
    uac.send(proxy.addr(), invite);
    let reply = uac.expect_msg_where(WAIT, |m| m.text().starts_with("SIP/2.0 404"));
    assert!(reply.text().contains("No route"));
}

#[test]
fn an_undeclared_connection_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sql.cfg");
    std::fs::write(
        &path,
        "loadmodule \"sqlops.so\"\nmodparam(\"sqlops\", \"sqlcon\", \"ca=>sqlite:///tmp/none.db\")\n\
         request_route {\n  sql_query(\"cb\", \"select 1\", \"r\");\n}\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::proxy::ringsip_bin())
        .args(["check", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("sql.cfg:4:") && err.contains("no sqlops connection \"cb\""),
        "{err}"
    );
}
