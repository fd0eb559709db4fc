//! The dialplan and regex modules in the engine, sans-IO, with the rules in
//! an SQLite database of Kamailio's schema: translations as the script sees
//! them (codes, `$rU`, `attrs_pvar`), then `dialplan.reload`, its guard and
//! a reload that fails, and the `dialplan.translate`/`dump` methods.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use common::engine::{engine_with, inbound, sent_to};
use ringsip::modules::core::Engine;
use ringsip::modules::dialplan::{rpc, Dialplan};
use ringsip::modules::regex::PcreGroups;
use ringsip::store::Stores;

const UA: &str = "127.0.0.2:5070";

/// Kamailio's `dialplan` table (db_sqlite schema, version 2).
const SCHEMA: &str = "CREATE TABLE dialplan (
    id INTEGER PRIMARY KEY NOT NULL, dpid INTEGER NOT NULL, pr INTEGER NOT NULL,
    match_op INTEGER NOT NULL, match_exp VARCHAR(64) NOT NULL, match_len INTEGER NOT NULL,
    subst_exp VARCHAR(64) NOT NULL, repl_exp VARCHAR(256) NOT NULL, attrs VARCHAR(64) NOT NULL);";

fn add_rule(db: &Path, cols: (i64, i64, i64, &str, i64, &str, &str, &str)) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute(
        "INSERT INTO dialplan (dpid, pr, match_op, match_exp, match_len, subst_exp, repl_exp, attrs) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        rusqlite::params![cols.0, cols.1, cols.2, cols.3, cols.4, cols.5, cols.6, cols.7],
    )
    .unwrap();
}

fn config(db: &Path, groups: &Path) -> String {
    format!(
        r#"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "db_sqlite.so"
loadmodule "dialplan.so"
loadmodule "regex.so"
modparam("dialplan", "db_url", "sqlite://{}")
modparam("dialplan", "attrs_pvar", "$var(attrs)")
modparam("regex", "file", "{}")
request_route {{
    $var(attrs) = "none";
    dp_translate("1");
    $var(rc) = $rc;
    $var(a1) = $var(attrs);
    dp_replace("2", "$fU", "$var(from)");
    $var(rc2) = $rc;
    pcre_match_group("$rU", "0");
    append_to_reply("X-DP: $var(rc) $rU $var(a1) $var(rc2) $var(from) $rc [$var(attrs)]\r\n");
    sl_send_reply("200", "OK");
}}
"#,
        db.display(),
        groups.display()
    )
}

struct Setup {
    engine: Engine,
    dialplan: Arc<Dialplan>,
    _stores: Stores,
}

fn setup(db: &Path, groups: &Path) -> Setup {
    let mut stores = Stores::default();
    let mut dialplan = None;
    let engine = engine_with(&config(db, groups), |env, mp| {
        let store = stores
            .handle(mp.str("dialplan", "db_url").unwrap())
            .unwrap();
        let d = Arc::new(Dialplan::from_modparams(mp, store).unwrap());
        env.services.insert(d.clone());
        dialplan = Some(d);
        let text = std::fs::read(groups).unwrap();
        let file = groups.display().to_string();
        env.services
            .insert(Arc::new(PcreGroups::new(mp, &file, &text).unwrap()));
    });
    Setup {
        engine,
        dialplan: dialplan.unwrap(),
        _stores: stores,
    }
}

/// The X-DP header of the answer to an OPTIONS for `user`.
fn ask(e: &mut Engine, user: &str) -> String {
    let req = format!(
        "OPTIONS sip:{user}@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP {UA};branch=z9hG4bK-{user}
Max-Forwards: 70
From: <sip:0711@example.com>;tag=1
To: <sip:{user}@127.0.0.1>
Call-ID: dp-{user}
CSeq: 1 OPTIONS
Content-Length: 0

"
    );
    let mut out = Vec::new();
    e.on_inbound(inbound(UA, &req), Instant::now(), &mut out);
    let reply = sent_to(&out, UA).pop().expect("a reply");
    reply
        .lines()
        .find_map(|l| l.strip_prefix("X-DP: "))
        .expect("X-DP header")
        .trim()
        .to_string()
}

#[test]
fn translations_from_sqlite_then_reload() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dp.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(SCHEMA)
        .unwrap();
    let groups = dir.path().join("groups");
    std::fs::write(&groups, "[0]\n^\\+49\n^0049\n").unwrap();
    add_rule(
        &db,
        (1, 10, 1, "^0[1-9]", 0, "^0(.*)$", "+49\\1", "national"),
    );
    add_rule(&db, (1, 20, 1, "^00", 0, "^00(.*)$", "+\\1", "intl"));
    add_rule(&db, (1, 5, 0, "112", 3, "", "emergency", "sos"));
    add_rule(&db, (2, 1, 1, "^0", 0, "^0(.*)", "+49\\1", ""));
    let mut s = setup(&db, &groups);
    let e = &mut s.engine;

    // Lower priority number first; the length-3 rule before the others.
    assert_eq!(ask(e, "030123"), "1 +4930123 national 1 +49711 1 []");
    assert_eq!(ask(e, "0049301"), "1 +49301 intl 1 +49711 1 []");
    assert_eq!(ask(e, "112"), "1 emergency sos 1 +49711 -1 []");
    // No rule matches: -1, $rU and the attributes unchanged. (dp_replace's
    // rule has empty attrs: attrs_pvar is set to them, `[]`.)
    assert_eq!(ask(e, "bob"), "-1 bob none 1 +49711 -1 []");

    // A new rule is seen after dialplan.reload only.
    add_rule(&db, (1, 1, 1, "^bob$", 0, "", "robert", "renamed"));
    assert_eq!(ask(e, "bob"), "-1 bob none 1 +49711 -1 []");
    let d = &s.dialplan;
    assert_eq!(rpc::reload(d, 1_000).unwrap(), serde_json::json!({}));
    assert_eq!(ask(e, "bob"), "1 robert renamed 1 +49711 -1 []");
    // Within reload_delta (5 s) of the last one, a reload is refused.
    assert_eq!(rpc::reload(d, 1_004).unwrap_err().1, "ongoing reload");
    // A rule that does not compile fails the reload and keeps the rules.
    add_rule(&db, (1, 2, 1, "(unclosed", 0, "", "x", ""));
    assert_eq!(
        rpc::reload(d, 1_005).unwrap_err().1,
        "Dialplan Reload Failed"
    );
    assert_eq!(ask(e, "bob"), "1 robert renamed 1 +49711 -1 []");

    // The control socket's translate and dump.
    let t = rpc::translate(d, 1, "030123").unwrap();
    assert_eq!(t["Output"], "+4930123");
    assert_eq!(t["Attributes"], "national");
    assert_eq!(
        rpc::translate(d, 1, "nothing").unwrap_err().1,
        "No translation"
    );
    assert_eq!(
        rpc::translate(d, 7, "1").unwrap_err().1,
        "Dialplan ID not matched"
    );
    assert_eq!(
        rpc::translate(d, 1, "").unwrap_err().1,
        "Empty input parameter"
    );
    let dump = rpc::dump(d, 1).unwrap();
    assert_eq!(dump["DPID"], 1);
    let prios: Vec<i64> = dump["ENTRIES"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ENTRY"]["PRIO"].as_i64().unwrap())
        .collect();
    // The length-3 index first, then the rules of any length by priority.
    assert_eq!(prios, [5, 1, 10, 20]);
    assert_eq!(dump["ENTRIES"][2]["ENTRY"]["REPLEXP"], "+49\\1");
    // Empty texts show as null, as in Kamailio.
    assert_eq!(
        dump["ENTRIES"][0]["ENTRY"]["SUBSTEXP"],
        serde_json::Value::Null
    );
}

#[test]
fn a_bad_rule_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dp.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(SCHEMA)
        .unwrap();
    // \2 of a subst_exp with one group.
    add_rule(&db, (1, 1, 1, "^1", 0, "^(1)", "\\2", ""));
    let mut stores = Stores::default();
    let store = stores
        .handle(&format!("sqlite://{}", db.display()))
        .unwrap();
    let mut mp = ringsip::script::registry::ModParams::default();
    mp.push(
        "dialplan",
        "db_url",
        ringsip::script::registry::ParamValue::Str(format!("sqlite://{}", db.display())),
    );
    let err = Dialplan::from_modparams(&mp, store).unwrap_err();
    assert!(err.contains("refers to 2 sub-expressions"), "{err}");
    stores.finish();
}
