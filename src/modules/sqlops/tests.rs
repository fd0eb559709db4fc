//! sqlops as a configuration uses it: compiled from text, run by the engine
//! on a request against a SQLite file on a store thread.

use std::sync::Arc;

use super::*;
use crate::modules::core::Engine;
use crate::modules::testutil::{env, INVITE};
use crate::script::compile::compile;
use crate::script::{parse_str, MemoryFiles, Options};
use crate::store::Stores;

const SCHEMA: &str = "
CREATE TABLE usr_preferences (id INTEGER PRIMARY KEY NOT NULL, uuid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(255) DEFAULT 0 NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL,
    attribute VARCHAR(32) DEFAULT '' NOT NULL, type INTEGER DEFAULT 0 NOT NULL,
    value VARCHAR(128) DEFAULT '' NOT NULL);
INSERT INTO usr_preferences (uuid, username, domain, attribute, type, value) VALUES
  ('', 'bob', 'example.com', 'fwd', 0, 'sip:voicemail@example.com'),
  ('', 'bob', 'example.com', 'limit', 1, '42'),
  ('', 'bob', 'example.com', 'lang', 0, 'de'),
  ('', 'bob', 'example.com', 'lang', 0, 'en'),
  ('', 'bob', 'other.net', 'fwd', 0, 'sip:elsewhere'),
  ('caller-1', '', '', 'fwd', 0, 'sip:by-uuid');
CREATE TABLE routes (id INTEGER PRIMARY KEY, prefix VARCHAR(16), gw VARCHAR(64),
                     prio INTEGER, big BIGINT, cost REAL, note TEXT);
INSERT INTO routes (prefix, gw, prio, big, cost, note) VALUES
  ('49', 'sip:gw1.example.net', 10, 5000000000, 0.5, NULL),
  ('49', 'sip:gw2.example.net', 20, 7, 1.5, 'backup'),
  ('33', 'sip:gw3.example.net', 5, -1, 2.0, '');
";

/// A database file with [`SCHEMA`] and the store threads of a test (also
/// used by avpops' tests).
pub(crate) struct Db {
    _dir: tempfile::TempDir,
    stores: Stores,
    pub url: String,
}

impl Db {
    pub fn new() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sql.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(SCHEMA)
            .unwrap();
        Db {
            url: format!("sqlite://{}", path.display()),
            _dir: dir,
            stores: Stores::default(),
        }
    }

    /// Runs `routes` (after loading sl, textops and sqlops with connection
    /// `db`) on an INVITE; the reply's `X-` headers.
    fn run(&mut self, routes: &str) -> Vec<String> {
        let prelude = format!(
            "loadmodule \"sqlops.so\"\nmodparam(\"sqlops\", \"sqlcon\", \"db=>{}\")\n",
            self.url
        );
        self.run_with(&prelude, routes)
    }

    /// Runs `routes` after sl, textops and `prelude` (module lines) on an
    /// INVITE, with the sqlops and avpops databases the parameters name; the
    /// `X-` headers of the one message sent.
    pub fn run_with(&mut self, prelude: &str, routes: &str) -> Vec<String> {
        let text = format!("loadmodule \"sl.so\"\nloadmodule \"textops.so\"\n{prelude}{routes}");
        let files = MemoryFiles::new();
        let cfg = parse_str("t.cfg", &text, &Options::with_files(&files))
            .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
        let compiled = compile(&cfg).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
        let mut env = env();
        let stores = &mut self.stores;
        let mut handle = |u: &str| stores.handle(u).map_err(|e| e.to_string());
        env.services
            .insert(open(&compiled.modparams, &mut handle).unwrap());
        if let Some(db) = crate::modules::avpops::open(&compiled.modparams, &mut handle).unwrap() {
            env.services.insert(Arc::new(db));
        }
        let mut engine = Engine::new(Arc::new(env), Arc::new(compiled.program));
        let out = crate::modules::testutil::receive(&mut engine, INVITE.replace('\n', "\r\n"));
        assert_eq!(out.len(), 1, "one message sent");
        String::from_utf8_lossy(&out[0].data)
            .split("\r\n")
            .filter(|l| l.starts_with("X-"))
            .map(String::from)
            .collect()
    }
}

fn compile_error(routes: &str) -> String {
    let text = format!(
        "loadmodule \"sl.so\"\nloadmodule \"xlog.so\"\nloadmodule \"sqlops.so\"\n\
         modparam(\"sqlops\", \"sqlcon\", \"db=>sqlite:///tmp/x.db\")\n{routes}"
    );
    let files = MemoryFiles::new();
    let cfg = match parse_str("t.cfg", &text, &Options::with_files(&files)) {
        Ok(c) => c,
        Err(d) => return d.rendered().join("\n"),
    };
    match compile(&cfg) {
        Ok(_) => panic!("compiled: {routes}"),
        Err(d) => d.rendered().join("\n"),
    }
}

#[test]
fn conversions_as_kamailio() {
    assert_eq!(stored(&SqlValue::Int(7)), Value::Int(7));
    assert_eq!(stored(&SqlValue::Int(1 << 32 | 5)), Value::Int(5));
    assert_eq!(
        stored(&SqlValue::BigInt(5_000_000_000)),
        Value::owned(b"5000000000".to_vec())
    );
    assert_eq!(stored(&SqlValue::BigInt(7)), Value::owned(b"7".to_vec()));
    assert_eq!(stored(&SqlValue::Double(1.5)), Value::Null);
    assert_eq!(stored(&SqlValue::Null), Value::Null);
    assert_eq!(stored(&SqlValue::Str(Vec::new())), Value::owned(Vec::new()));
    assert_eq!(pv_value(&SqlValue::BigInt(7)), Value::Int(7));
    assert_eq!(
        pv_value(&SqlValue::BigInt(-1)),
        Value::owned(b"-1".to_vec()),
        "a negative BIGINT has its upper half set: text"
    );
    assert_eq!(pv_value(&SqlValue::BigInt(0xffff_ffff)), Value::Int(-1));
    assert_eq!(xavp_value(&SqlValue::BigInt(-1)), Value::Int(-1));
}

#[test]
fn sqlcon_values_parse() {
    assert_eq!(
        parse_sqlcon(" ca => sqlite:///tmp/a.db").unwrap(),
        ("ca".to_string(), "sqlite:///tmp/a.db".to_string())
    );
    assert!(parse_sqlcon("ca sqlite:///tmp/a.db").is_err());
    assert!(parse_sqlcon("=>sqlite:///tmp/a.db").is_err());
    assert!(parse_sqlcon("ca=>text:///tmp")
        .unwrap_err()
        .contains("text"));
}

#[test]
fn dbr_names_parse() {
    use pv::{parse, DbrField};
    assert_eq!(parse("ra=>rows").unwrap().what, DbrField::Rows);
    assert_eq!(parse("ra => cols").unwrap().what, DbrField::Cols);
    assert_eq!(parse("ra=>[1,2]").unwrap().what, DbrField::Value(1, 2));
    assert_eq!(parse("ra=>colname[0]").unwrap().what, DbrField::ColName(0));
    assert!(parse("ra=>[1]").is_err());
    assert!(parse("ra=>nothing").is_err());
    assert!(parse("ra").is_err());
}

#[test]
fn sql_query_rows_values_and_codes() {
    let mut db = Db::new();
    let h = db.run(
        r#"request_route {
    sql_query("db", "select gw, prio, big, cost, note from routes where prefix='49' order by prio", "ra");
    $var(rc) = $rc;
    append_to_reply("X-Rc: $var(rc) $dbr(ra=>rows) $dbr(ra=>cols) $dbr(ra=>colname[0]) $dbr(ra=>colname[9])\r\n");
    $var(i) = 0;
    while ($var(i) < $dbr(ra=>rows)) {
        append_to_reply("X-Row: $dbr(ra=>[$var(i),0]) $dbr(ra=>[$var(i),1]) $dbr(ra=>[$var(i),2]) $dbr(ra=>[$var(i),3]) [$dbr(ra=>[$var(i),4])]\r\n");
        $var(i) = $var(i) + 1;
    }
    if ($dbr(ra=>[0,1]) == 10) { append_to_reply("X-Int: yes\r\n"); }
    if ($dbr(ra=>[0,3]) == $null) { append_to_reply("X-Double: null\r\n"); }
    sql_query("db", "select gw from routes where prefix='99'", "rb");
    $var(rc) = $rc;
    append_to_reply("X-None: $var(rc) $dbr(rb=>rows)\r\n");
    sql_query("db", "select gw from routes where prefix='33'");
    $var(rc) = $rc;
    append_to_reply("X-NoRes: $var(rc)\r\n");
    sql_query("db", "update routes set prio=prio+1 where prefix='33'");
    $var(rc) = $rc;
    append_to_reply("X-Update: $var(rc) [$sqlrows(db)]\r\n");
    if (!sql_query("db", "select nope from routes", "ra")) {
        append_to_reply("X-Error: $rc $dbr(ra=>rows)\r\n");
    }
    sql_query("db", "select prio from routes where prefix='33'", "rc");
    sql_result_free("rc");
    append_to_reply("X-Freed: $dbr(rc=>rows) $dbr(never=>rows)\r\n");
    sl_send_reply("200", "OK");
}"#,
    );
    assert_eq!(
        h,
        [
            "X-Rc: 1 2 5 gw <null>",
            "X-Row: sip:gw1.example.net 10 5000000000 <null> [<null>]",
            "X-Row: sip:gw2.example.net 20 7 <null> [backup]",
            "X-Int: yes",
            "X-Double: null",
            "X-None: 2 0",
            "X-NoRes: 3",
            // SQLite reports no affected rows to sqlops (as Kamailio's driver).
            "X-Update: 2 []",
            "X-Error: -1 0",
            "X-Freed: 0 0",
        ]
    );
}

#[test]
fn sql_xquery_makes_one_xavp_per_row() {
    let mut db = Db::new();
    let h = db.run(
        r#"request_route {
    sql_xquery("db", "select gw, prio, note from routes where prefix='$rU' or prefix='49' order by prio", "r");
    append_to_reply("X-Rc: $rc\r\n");
    append_to_reply("X-First: $xavp(r=>gw) $xavp(r=>prio) $xavp(r=>note)\r\n");
    append_to_reply("X-Second: $xavp(r[1]=>gw) $xavp(r[1]=>prio) $xavp(r[1]=>note)\r\n");
    append_to_reply("X-Third: $xavp(r[2]=>gw)\r\n");
    sql_xquery("db", "select gw from routes where 0", "n");
    append_to_reply("X-None: $rc $xavp(n=>gw)\r\n");
    sl_send_reply("200", "OK");
}"#,
    );
    assert_eq!(
        h,
        [
            "X-Rc: 1",
            "X-First: sip:gw1.example.net 10 <null>",
            "X-Second: sip:gw2.example.net 20 backup",
            "X-Third: <null>",
            "X-None: 2 <null>",
        ]
    );
}

#[test]
fn sql_pvquery_assigns_variables() {
    let mut db = Db::new();
    let h = db.run(
        r#"request_route {
    $var(note) = "before";
    sql_pvquery("db", "select gw, prio, note from routes where prefix='49' order by prio", "$avp(gw), $var(prio), $avp(note)");
    append_to_reply("X-Rc: $rc\r\n");
    append_to_reply("X-Var: $var(prio)\r\n");
    append_to_reply("X-Avp: $(avp(gw)[0]) $(avp(gw)[1]) $(avp(note)[0]) $(avp(note)[1])\r\n");
    sql_pvquery("db", "select note from routes where prefix='33'", "$var(note)");
    append_to_reply("X-Empty: [$var(note)]\r\n");
    if (sql_pvquery("db", "select gw, prio from routes", "$var(one)")) {
        append_to_reply("X-Bad: no\r\n");
    }
    append_to_reply("X-Short: $rc\r\n");
    sl_send_reply("200", "OK");
}"#,
    );
    assert_eq!(
        h,
        [
            "X-Rc: 1",
            "X-Var: 10",
            "X-Avp: sip:gw1.example.net sip:gw2.example.net backup <null>",
            "X-Empty: []",
            "X-Short: -1",
        ]
    );
}

#[test]
fn start_up_errors_name_the_line() {
    let e = compile_error("request_route {\n    sql_query(\"nodb\", \"select 1\", \"r\");\n}");
    assert!(e.contains("t.cfg:6"), "{e}");
    assert!(e.contains("no sqlops connection \"nodb\""), "{e}");
    let e = compile_error("request_route {\n    sql_query_async(\"db\", \"select 1\");\n}");
    assert!(e.contains("t.cfg:6") && e.contains("not available"), "{e}");
    let e = compile_error("request_route {\n    sql_pvquery(\"db\", \"select 1\", \"$ci\");\n}");
    assert!(e.contains("read-only"), "{e}");
    let e = compile_error("request_route {\n    xlog(\"$sqlrows(nodb)\");\n}");
    assert!(
        e.contains("t.cfg:6") && e.contains("no sqlops connection \"nodb\""),
        "{e}"
    );
    let e = compile_error("request_route {\n    xlog(\"$dbr(ra=>nothing)\");\n}");
    assert!(e.contains("unknown key"), "{e}");
    let e = compile_error("modparam(\"sqlops\", \"sqlcon\", \"bad\")\nrequest_route {\n}");
    assert!(e.contains("t.cfg:5") && e.contains("name=>db_url"), "{e}");
}

#[test]
fn sql_transformations_quote_values() {
    let mut db = Db::new();
    let h = db.run(
        r#"request_route {
    $var(s) = "O'Brien\\x";
    $var(n) = 5;
    append_to_reply("X-Tr: $(var(s){sql.val}) $(var(n){sql.val}) $(avp(none){sql.val}) $(avp(none){sql.val.int}) $(avp(none){sql.val.str})\r\n");
    $var(p) = "49";
    sql_query("db", "select count(*) from routes where prefix=$(var(p){sql.val.str})", "r");
    append_to_reply("X-Count: $dbr(r=>[0,0])\r\n");
    sl_send_reply("200", "OK");
}"#,
    );
    assert_eq!(h, [r"X-Tr: 'O\'Brien\\x' 5 NULL 0 ''", "X-Count: 2"]);
}
