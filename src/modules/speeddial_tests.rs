//! speeddial as a configuration uses it, against a SQLite file with
//! kamdbctl's `speed_dial` table.

use crate::modules::stockdb_fixture::{invite, KamDb};

const ROWS: &str = "
INSERT INTO speed_dial (username, domain, sd_username, sd_domain, new_uri) VALUES
    ('alice', 'a.example', '11', 'a.example', 'sip:bob@a.example'),
    ('alice', 'b.example', '11', 'b.example', 'sip:carol@b.example'),
    ('alice', 'a.example', '12', 'other.example', 'dave@d.example:5070'),
    ('bob', 'a.example', '11', 'a.example', 'sips:erin@e.example');
";

fn run(params: &str, routes: &str, ruri: &str, from: &str) -> Vec<String> {
    let mut db = KamDb::new(ROWS);
    db.run(
        &format!(
            "loadmodule \"speeddial.so\"\nmodparam(\"speeddial\", \"db_url\", \"@DB@\")\n{params}\
             request_route {{\n{routes}\n    sl_send_reply(\"200\", \"OK\");\n}}"
        ),
        &invite(ruri, from),
    )
    .unwrap()
}

const SD: &str = r#"sd_lookup("speed_dial"); append_to_reply("X-Rc: $rc $ru\r\n");"#;

#[test]
fn the_callers_number_rewrites_the_ruri() {
    let h = run("", SD, "sip:11@a.example", "sip:alice@a.example");
    assert_eq!(h, ["X-Rc: 1 sip:bob@a.example"]);
    // A number of another user, or none.
    assert_eq!(
        run("", SD, "sip:13@a.example", "sip:alice@a.example"),
        ["X-Rc: -1 sip:13@a.example"]
    );
    assert_eq!(
        run("", SD, "sip:11@a.example", "sip:nobody@a.example"),
        ["X-Rc: -1 sip:11@a.example"]
    );
}

#[test]
fn sip_is_put_in_front_when_missing() {
    assert_eq!(
        run("", SD, "sip:12@x", "sip:alice@a.example"),
        ["X-Rc: 1 sip:dave@d.example:5070"]
    );
    // As Kamailio: anything not starting with "sip:" gets it, sips too.
    assert_eq!(
        run("", SD, "sip:11@x", "sip:bob@a.example"),
        ["X-Rc: 1 sip:sips:erin@e.example"]
    );
}

#[test]
fn use_domain_one_matches_the_owner_domain_two_also_the_target() {
    let one = "modparam(\"speeddial\", \"use_domain\", 1)\n";
    assert_eq!(
        run(one, SD, "sip:11@z", "sip:alice@b.example"),
        ["X-Rc: 1 sip:carol@b.example"]
    );
    assert_eq!(
        run(one, SD, "sip:11@z", "sip:alice@c.example"),
        ["X-Rc: -1 sip:11@z"]
    );
    let two = "modparam(\"speeddial\", \"use_domain\", 2)\n";
    assert_eq!(
        run(two, SD, "sip:11@z", "sip:alice@a.example"),
        ["X-Rc: -1 sip:11@z"]
    );
    assert_eq!(
        run(two, SD, "sip:12@other.example", "sip:alice@a.example"),
        ["X-Rc: 1 sip:dave@d.example:5070"]
    );
    // domain_prefix comes off the target's and the owner's host.
    let p = "modparam(\"speeddial\", \"use_domain\", 2)\nmodparam(\"speeddial\", \"domain_prefix\", \"sip.\")\n";
    assert_eq!(
        run(p, SD, "sip:12@SIP.other.example", "sip:alice@a.example"),
        ["X-Rc: 1 sip:dave@d.example:5070"]
    );
    assert_eq!(
        run(p, SD, "sip:11@sip.a.example", "sip:alice@sip.a.example"),
        ["X-Rc: 1 sip:bob@a.example"]
    );
    assert_eq!(
        run(p, SD, "sip:11@sip.a.example", "sip:alice@sip."),
        ["X-Rc: -1 sip:11@sip.a.example"]
    );
}

#[test]
fn an_owner_argument_replaces_the_from_uri() {
    let h = run(
        "",
        r#"sd_lookup("speed_dial", "sip:bob@a.example"); append_to_reply("X-Rc: $rc $ru\r\n");
        $ru = "sip:11@a.example";
        $var(o) = "";
        sd_lookup("speed_dial", "$var(o)"); append_to_reply("X-Empty: $rc $ru\r\n");
        $var(o) = "not a uri";
        sd_lookup("speed_dial", "$var(o)"); append_to_reply("X-Bad: $rc\r\n");"#,
        "sip:11@a.example",
        "sip:alice@a.example",
    );
    assert_eq!(
        h,
        [
            "X-Rc: 1 sip:sips:erin@e.example",
            // An empty owner: the From URI.
            "X-Empty: 1 sip:bob@a.example",
            "X-Bad: -1",
        ]
    );
}

#[test]
fn a_missing_table_is_minus_one_and_a_bad_name_a_start_error() {
    let h = run(
        "",
        r#"$var(t) = "nosuch"; sd_lookup("$var(t)"); append_to_reply("X-Rc: $rc\r\n");"#,
        "sip:11@a.example",
        "sip:alice@a.example",
    );
    assert_eq!(h, ["X-Rc: -1"]);
    let mut db = KamDb::new(ROWS);
    let e = db
        .run(
            "loadmodule \"speeddial.so\"\nmodparam(\"speeddial\", \"db_url\", \"@DB@\")\nrequest_route { sd_lookup(\"speed dial\"); }",
            &invite("sip:a@b", "sip:c@d"),
        )
        .unwrap_err();
    assert!(e.contains("not a usable table name"), "{e}");
    let e = db
        .run(
            "loadmodule \"speeddial.so\"\nrequest_route { sd_lookup(\"speed_dial\"); }",
            &invite("sip:a@b", "sip:c@d"),
        )
        .unwrap_err();
    assert!(e.contains("db_url is not set"), "{e}");
}
