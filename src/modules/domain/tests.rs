//! The domain module as a configuration uses it, against a SQLite file
//! with kamdbctl's `domain` and `domain_attrs` tables.

use crate::modules::stockdb_fixture::{invite, KamDb};

const ROWS: &str = "
INSERT INTO domain (domain, did) VALUES ('a.example', 'A'), ('b.example', NULL), ('alias.a.example', 'A');
INSERT INTO domain_attrs (did, name, type, value) VALUES
    ('A', 'lang', 2, 'de'), ('A', 'limit', 0, '42'), ('A', 'lang', 2, 'en');
";

fn prelude(myself: i32) -> String {
    format!(
        "loadmodule \"domain.so\"\nloadmodule \"kex.so\"\nmodparam(\"domain\", \"db_url\", \"@DB@\")\n\
         modparam(\"domain\", \"register_myself\", {myself})\n"
    )
}

fn run(myself: i32, routes: &str, req: &str) -> Vec<String> {
    let mut db = KamDb::new(ROWS);
    db.run(
        &format!(
            "{}request_route {{\n{routes}\n    sl_send_reply(\"200\", \"OK\");\n}}",
            prelude(myself)
        ),
        req,
    )
    .unwrap()
}

#[test]
fn is_from_local_and_is_uri_host_local() {
    let h = run(
        0,
        r#"
    is_from_local(); append_to_reply("X-From: $rc\r\n");
    is_uri_host_local(); append_to_reply("X-Ruri: $rc\r\n");
    $ru = "sip:x@B.EXAMPLE:5070";
    is_uri_host_local(); append_to_reply("X-New: $rc\r\n");"#,
        &invite("sip:bob@c.example", "sip:alice@a.example"),
    );
    assert_eq!(h, ["X-From: 1", "X-Ruri: -1", "X-New: 1"]);
    let h = run(
        0,
        r#"is_from_local(); append_to_reply("X-From: $rc\r\n");"#,
        &invite("sip:bob@a.example", "sip:alice@c.example"),
    );
    assert_eq!(h, ["X-From: -1"]);
}

#[test]
fn is_from_local_with_an_unreadable_from_is_minus_two() {
    let req = invite("sip:bob@a.example", "sip:alice@a.example").replace(
        "From: <sip:alice@a.example>;tag=1928301774",
        "From: <no uri here;tag=1",
    );
    let h = run(
        0,
        r#"is_from_local(); append_to_reply("X-From: $rc\r\n");"#,
        &req,
    );
    assert_eq!(h, ["X-From: -2"]);
}

#[test]
fn is_domain_local_takes_variables() {
    let h = run(
        0,
        r#"
    is_domain_local("$rd"); append_to_reply("X-Rd: $rc\r\n");
    is_domain_local("ALIAS.a.example"); append_to_reply("X-Const: $rc\r\n");
    is_domain_local("c.example"); append_to_reply("X-Other: $rc\r\n");
    is_domain_local(""); append_to_reply("X-Empty: $rc\r\n");"#,
        &invite("sip:bob@b.example", "sip:alice@c.example"),
    );
    assert_eq!(h, ["X-Rd: 1", "X-Const: 1", "X-Other: -1", "X-Empty: -1"]);
}

#[test]
fn lookup_domain_sets_attributes_and_did_as_avps() {
    let h = run(
        0,
        r#"
    lookup_domain("$rd"); append_to_reply("X-Rc: $rc\r\n");
    append_to_reply("X-Did: $avp(did)\r\n");
    append_to_reply("X-Lang: $(avp(lang)[0]) $(avp(lang)[1])\r\n");
    if ($avp(limit) == 42) { append_to_reply("X-Limit: int\r\n"); }
    lookup_domain("$fd", "dom_"); append_to_reply("X-Prefixed: $rc $avp(dom_did) $avp(dom_lang)\r\n");
    lookup_domain("c.example"); append_to_reply("X-None: $rc\r\n");
    lookup_domain("b.example", "b_"); append_to_reply("X-B: $rc $avp(b_did) $avp(b_lang)\r\n");"#,
        &invite("sip:bob@alias.a.example", "sip:alice@a.example"),
    );
    assert_eq!(
        h,
        [
            "X-Rc: 1",
            "X-Did: A",
            // The first row is the newest AVP, as in Kamailio.
            "X-Lang: de en",
            "X-Limit: int",
            "X-Prefixed: 1 A de",
            "X-None: -1",
            "X-B: 1 b.example <null>",
        ]
    );
}

#[test]
fn register_myself_makes_the_domains_myself() {
    let routes = r#"
    if (uri == myself) { append_to_reply("X-Uri: me\r\n"); } else { append_to_reply("X-Uri: not\r\n"); }
    if (from_uri == myself) { append_to_reply("X-From: me\r\n"); } else { append_to_reply("X-From: not\r\n"); }
    if (is_myself("sip:x@b.example:9999")) { append_to_reply("X-Port: me\r\n"); }"#;
    let req = invite("sip:bob@A.example", "sip:alice@c.example");
    assert_eq!(
        run(1, routes, &req),
        ["X-Uri: me", "X-From: not", "X-Port: me"]
    );
    // Without register_myself the table is not myself.
    assert_eq!(run(0, routes, &req), ["X-Uri: not", "X-From: not"]);
}

#[test]
fn a_missing_version_or_table_stops_the_start() {
    let mut db = KamDb::new("UPDATE version SET table_version=1 WHERE table_name='domain';");
    let e = db
        .run(
            &format!("{}request_route {{ exit; }}", prelude(0)),
            &invite("sip:a@b", "sip:c@d"),
        )
        .unwrap_err();
    assert!(e.contains("table domain has version 1, expected 2"), "{e}");
    let mut db = KamDb::new("DROP TABLE domain_attrs;");
    let e = db
        .run(
            &format!("{}request_route {{ exit; }}", prelude(0)),
            &invite("sip:a@b", "sip:c@d"),
        )
        .unwrap_err();
    assert!(e.contains("domain_attrs"), "{e}");
    let mut db = KamDb::new("INSERT INTO domain (domain, did) VALUES ('x.example', '');");
    let e = db
        .run(
            &format!("{}request_route {{ exit; }}", prelude(0)),
            &invite("sip:a@b", "sip:c@d"),
        )
        .unwrap_err();
    assert!(e.contains("did at row <0> is empty string"), "{e}");
}

#[test]
fn reload_reads_the_tables_again_and_keeps_them_on_failure() {
    use crate::modules::domain::{DomainParams, Domains};
    let db = KamDb::new(ROWS);
    let mut stores = crate::store::Stores::default();
    let d = Domains::open(DomainParams::default(), stores.handle(&db.url).unwrap()).unwrap();
    assert!(d.is_local(b"a.example"));
    assert!(!d.is_local(b"new.example"));
    db.exec("INSERT INTO domain (domain) VALUES ('new.example'); DELETE FROM domain WHERE domain='a.example';");
    assert_eq!(d.reload(), Ok(3));
    assert!(d.is_local(b"new.example") && !d.is_local(b"a.example"));
    db.exec("INSERT INTO domain_attrs (did, name, type, value) VALUES ('X', 'n', 7, 'v');");
    let e = d.reload().unwrap_err();
    assert!(e.contains("unknown type <7>"), "{e}");
    assert!(d.is_local(b"new.example"), "the old table stays in force");
    stores.finish();
}

#[test]
fn functions_are_refused_where_kamailio_refuses_them() {
    let mut db = KamDb::new(ROWS);
    let e = db
        .run(
            &format!(
                "{}request_route {{ exit; }}\nonreply_route[R] {{ is_from_local(); }}",
                prelude(0)
            ),
            &invite("sip:a@b", "sip:c@d"),
        )
        .unwrap_err();
    assert!(e.contains("is_from_local"), "{e}");
}
