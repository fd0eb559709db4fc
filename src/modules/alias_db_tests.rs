//! alias_db as a configuration uses it, against a SQLite file with
//! kamdbctl's `dbaliases` table.

use crate::modules::stockdb_fixture::{invite, KamDb};

const ROWS: &str = "
INSERT INTO dbaliases (alias_username, alias_domain, username, domain) VALUES
    ('sales', 'a.example', 'alice', 'a.example'),
    ('sales', 'a.example', 'bob', 'a.example'),
    ('sales', 'b.example', 'carol', 'b.example'),
    ('help', 'a.example', 'dave', 'c.example');
";

fn run(params: &str, routes: &str, ruri: &str) -> Vec<String> {
    let mut db = KamDb::new(ROWS);
    db.run(
        &format!(
            "loadmodule \"alias_db.so\"\nmodparam(\"alias_db\", \"db_url\", \"@DB@\")\n{params}\
             request_route {{\n{routes}\n    sl_send_reply(\"200\", \"OK\");\n}}"
        ),
        &invite(ruri, "sip:caller@c.example"),
    )
    .unwrap()
}

fn start_error(params: &str, routes: &str) -> String {
    let mut db = KamDb::new(ROWS);
    db.run(
        &format!(
            "loadmodule \"alias_db.so\"\nmodparam(\"alias_db\", \"db_url\", \"@DB@\")\n{params}\
             request_route {{\n{routes}\n}}"
        ),
        &invite("sip:a@b", "sip:c@d"),
    )
    .unwrap_err()
}

const LOOKUP: &str = r#"
    alias_db_lookup("dbaliases"); append_to_reply("X-Rc: $rc $ru\r\n");
    append_to_reply("X-Br: $(branch(uri)[0]) $(branch(uri)[1])\r\n");"#;

#[test]
fn lookup_by_user_only_rewrites_the_ruri_with_the_first_row() {
    // use_domain 0: the domain of the R-URI does not matter.
    let h = run("", LOOKUP, "sip:sales@z.example");
    assert_eq!(h, ["X-Rc: 1 sip:alice@a.example", "X-Br: <null> <null>"]);
    let h = run("", LOOKUP, "sip:nobody@a.example");
    assert_eq!(h, ["X-Rc: -1 sip:nobody@a.example", "X-Br: <null> <null>"]);
}

#[test]
fn use_domain_matches_the_host_too() {
    let p = "modparam(\"alias_db\", \"use_domain\", 1)\n";
    assert_eq!(
        run(p, LOOKUP, "sip:sales@b.example")[0],
        "X-Rc: 1 sip:carol@b.example"
    );
    assert_eq!(
        run(p, LOOKUP, "sip:sales@z.example")[0],
        "X-Rc: -1 sip:sales@z.example"
    );
    assert_eq!(
        run(p, LOOKUP, "sip:help@a.example:5070")[0],
        "X-Rc: 1 sip:dave@c.example"
    );
}

#[test]
fn domain_prefix_is_stripped_before_the_domain_is_matched() {
    let p = "modparam(\"alias_db\", \"use_domain\", 1)\nmodparam(\"alias_db\", \"domain_prefix\", \"sip.\")\n";
    assert_eq!(
        run(p, LOOKUP, "sip:sales@SIP.b.example")[0],
        "X-Rc: 1 sip:carol@b.example"
    );
    // The prefix alone is not stripped (it must be shorter than the host).
    assert_eq!(
        run(p, LOOKUP, "sip:sales@sip.")[0],
        "X-Rc: -1 sip:sales@sip."
    );
}

#[test]
fn append_branches_adds_the_other_rows() {
    let p = "modparam(\"alias_db\", \"append_branches\", 1)\n";
    let h = run(p, LOOKUP, "sip:sales@a.example");
    assert_eq!(
        h,
        [
            "X-Rc: 1 sip:alice@a.example",
            "X-Br: sip:bob@a.example sip:carol@b.example"
        ]
    );
}

#[test]
fn flags_d_u_and_r() {
    let d = "modparam(\"alias_db\", \"use_domain\", 1)\n";
    let h = run(
        d,
        r#"alias_db_lookup("dbaliases", "d"); append_to_reply("X-D: $rc $ru\r\n");"#,
        "sip:sales@z.example",
    );
    assert_eq!(h, ["X-D: 1 sip:alice@a.example"]);
    let h = run(
        "",
        r#"alias_db_lookup("dbaliases", "u"); append_to_reply("X-U: $rc $ru\r\n");"#,
        "sip:sales@b.example",
    );
    assert_eq!(h, ["X-U: 1 sip:carol@b.example"]);
    // Reverse: user -> alias.
    let h = run(
        "",
        r#"alias_db_lookup("dbaliases", "r"); append_to_reply("X-R: $rc $ru\r\n");"#,
        "sip:dave@x",
    );
    assert_eq!(h, ["X-R: 1 sip:help@a.example"]);
    let h = run(
        "",
        r#"alias_db_lookup("dbaliases", "Ru"); append_to_reply("X-Ru: $rc $ru\r\n");"#,
        "sip:dave@x",
    );
    assert_eq!(h, ["X-Ru: -1 sip:dave@x"]);
    let e = start_error("", r#"alias_db_lookup("dbaliases", "x");"#);
    assert!(e.contains("unsupported flag 'x'"), "{e}");
}

#[test]
fn find_writes_avps_or_vars() {
    let routes = r#"
    $var(in) = "sip:sales@a.example";
    alias_db_find("dbaliases", "$var(in)", "$avp(out)"); append_to_reply("X-Avp: $rc $(avp(out)[0]) $(avp(out)[1])\r\n");
    alias_db_find("dbaliases", "$ru", "$var(out)", "r"); append_to_reply("X-Var: $rc $var(out)\r\n");
    alias_db_find("dbaliases", "$fu", "$var(none)"); append_to_reply("X-None: $rc\r\n");
    $var(int) = 5;
    alias_db_find("dbaliases", "$var(int)", "$var(none)"); append_to_reply("X-Int: $rc\r\n");
    append_to_reply("X-Ru: $ru\r\n");"#;
    assert_eq!(
        run("", routes, "sip:dave@c.example"),
        [
            "X-Avp: 1 sip:alice@a.example <null>",
            "X-Var: 1 sip:help@a.example",
            "X-None: -1",
            "X-Int: -1",
            "X-Ru: sip:dave@c.example",
        ]
    );
    let p = "modparam(\"alias_db\", \"append_branches\", 1)\n";
    let h = run(
        p,
        r#"alias_db_find("dbaliases", "$ru", "$avp(out)"); append_to_reply("X-All: $rc $(avp(out)[0]) $(avp(out)[1]) $(avp(out)[2])\r\n");"#,
        "sip:sales@a.example",
    );
    // Every row, the last one the newest value.
    assert_eq!(
        h,
        ["X-All: 1 sip:carol@b.example sip:bob@a.example sip:alice@a.example"]
    );
}

#[test]
fn bad_arguments_are_refused_at_start() {
    let e = start_error("", r#"alias_db_find("dbaliases", "$ru", "$ru");"#);
    assert!(e.contains("must be an $avp or a $var"), "{e}");
    let e = start_error("", r#"alias_db_lookup("db aliases");"#);
    assert!(e.contains("not a usable table name"), "{e}");
    let e = start_error("", r#"alias_db_lookup("dbaliases", "$var(f)");"#);
    assert!(e.contains("constant"), "{e}");
}

#[test]
fn a_missing_table_is_minus_one() {
    let h = run(
        "",
        r#"$var(t) = "nosuch"; alias_db_lookup("$var(t)"); append_to_reply("X-Rc: $rc\r\n");"#,
        "sip:sales@a.example",
    );
    assert_eq!(h, ["X-Rc: -1"]);
}
