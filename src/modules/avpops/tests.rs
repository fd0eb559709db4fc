//! avpops as a configuration uses it: compiled from text, run by the engine
//! on an INVITE to `sip:bob@example.com`, against a SQLite file (the
//! `usr_preferences` and `routes` rows of sqlops' test schema).

use crate::modules::sqlops::tests::Db;
use crate::script::compile::compile;
use crate::script::{parse_str, MemoryFiles, Options};

fn prelude(db: &Db, extra: &str) -> String {
    format!(
        "loadmodule \"avpops.so\"\nmodparam(\"avpops\", \"db_url\", \"{}\")\n\
         modparam(\"avpops\", \"avp_table\", \"usr_preferences\")\n{extra}",
        db.url
    )
}

fn run(routes: &str) -> Vec<String> {
    let mut db = Db::new();
    let p = prelude(&db, "");
    db.run_with(
        &p,
        &format!("request_route {{\n{routes}\n    sl_send_reply(\"200\", \"OK\");\n}}"),
    )
}

fn compile_error(prelude: &str, body: &str) -> String {
    let text = format!(
        "loadmodule \"sl.so\"\nloadmodule \"avpops.so\"\n{prelude}request_route {{\n{body}\n}}"
    );
    let files = MemoryFiles::new();
    let cfg = match parse_str("t.cfg", &text, &Options::with_files(&files)) {
        Ok(c) => c,
        Err(d) => return d.rendered().join("\n"),
    };
    match compile(&cfg) {
        Ok(_) => panic!("compiled: {body}"),
        Err(d) => d.rendered().join("\n"),
    }
}

#[test]
fn avp_db_query_fills_avps() {
    let h = run(r#"
    avp_db_query("select gw, prio, note, cost from routes where prefix='49' order by prio", "$avp(gw);$avp(prio);$avp(note);$avp(cost)");
    append_to_reply("X-Rc: $rc\r\n");
    append_to_reply("X-Gw: $(avp(gw)[0]) $(avp(gw)[1]) $(avp(prio)[0]) $(avp(prio)[1]) $(avp(note)[0]) $(avp(note)[1]) $avp(cost)\r\n");
    avp_db_query("select prefix, big from routes where prefix='33'");
    append_to_reply("X-Ids: $rc $avp(i:1) $avp(i:2)\r\n");
    avp_db_query("select gw from routes where prefix='99'", "$avp(none)");
    append_to_reply("X-None: $rc\r\n");
    avp_db_query("select nope from routes");
    append_to_reply("X-Err: $rc\r\n");"#);
    assert_eq!(
        h,
        [
            "X-Rc: 1",
            // Rows newest first; the NULL note and the REAL cost are left out.
            "X-Gw: sip:gw1.example.net sip:gw2.example.net 10 20 backup <null> <null>",
            "X-Ids: 1 33 -1",
            "X-None: -2",
            "X-Err: -1",
        ]
    );
}

#[test]
fn avp_db_load_selects_by_uri_user_domain_or_uuid() {
    let h = run(r#"
    avp_db_load("$ruri", "$avp(s:lang)");
    append_to_reply("X-Lang: $rc $(avp(lang)[0]) $(avp(lang)[1])\r\n");
    avp_db_load("$ruri", "$avp(s:fwd)");
    append_to_reply("X-Fwd: $rc $(avp(fwd)[0]) $(avp(fwd)[1])\r\n");
    avp_db_load("$ruri/domain", "$avp(s:limit)");
    append_to_reply("X-Limit: $rc $avp(limit)\r\n");
    if ($avp(limit) == 42) { append_to_reply("X-Int: yes\r\n"); }
    avp_db_load("caller-1", "$avp(s:fwd)");
    append_to_reply("X-Uuid: $rc $avp(fwd)\r\n");
    avp_db_load("$ruri", "$avp(s:missing)");
    append_to_reply("X-Missing: $rc\r\n");
    avp_db_delete("$ruri", "$avp(s:lang)");
    append_to_reply("X-Deleted: $rc\r\n");
    avp_db_load("$ruri", "$avp(s:lang)");
    append_to_reply("X-Again: $rc\r\n");"#);
    assert_eq!(
        h,
        [
            "X-Lang: 1 en de",
            // Without use_domain the user's rows of every domain.
            "X-Fwd: 1 sip:elsewhere sip:voicemail@example.com",
            "X-Limit: 1 42",
            "X-Int: yes",
            "X-Uuid: 1 sip:by-uuid",
            "X-Missing: -1",
            "X-Deleted: 1",
            "X-Again: -1",
        ]
    );
}

#[test]
fn use_domain_narrows_the_selection() {
    let mut db = Db::new();
    let p = prelude(&db, "modparam(\"avpops\", \"use_domain\", 1)\n");
    let h = db.run_with(
        &p,
        r#"request_route {
    avp_db_load("$ruri", "$avp(s:fwd)");
    append_to_reply("X-Fwd: $rc $(avp(fwd)[0]) [$(avp(fwd)[1])]\r\n");
    sl_send_reply("200", "OK");
}"#,
    );
    assert_eq!(h, ["X-Fwd: 1 sip:voicemail@example.com [<null>]"]);
}

#[test]
fn operations_on_avps() {
    let h = run(r#"
    $avp(a) = 42; $avp(s) = "Hello"; $avp(s) = "world";
    if (is_avp_set("$avp(a)")) { append_to_reply("X-Set: a\r\n"); }
    if (!is_avp_set("$avp(z)")) { append_to_reply("X-Unset: z\r\n"); }
    if (is_avp_set("$avp(a)/n") && !is_avp_set("$avp(a)/s")) { append_to_reply("X-N: a\r\n"); }
    if (avp_check("$avp(s)", "eq/s:WORLD/i")) { append_to_reply("X-Eq-I: yes\r\n"); }
    if (!avp_check("$avp(s)", "eq/s:Hello")) { append_to_reply("X-Newest: only\r\n"); }
    if (avp_check("$avp(s)", "eq/s:Hello/g")) { append_to_reply("X-G: any\r\n"); }
    if (avp_check("$avp(a)", "ge/i:42")) { append_to_reply("X-Ge: yes\r\n"); }
    if (avp_check("$avp(s)", "re/^W")) { append_to_reply("X-Re: yes\r\n"); }
    if (avp_check("$avp(s)", "fm/w*d")) { append_to_reply("X-Fm: yes\r\n"); }
    if (!avp_check("$avp(a)", "eq/s:42")) { append_to_reply("X-Types: differ\r\n"); }
    avp_copy("$avp(s)", "$avp(t)/g");
    append_to_reply("X-Copy: $(avp(t)[0]) $(avp(t)[1])\r\n");
    avp_copy("$avp(a)", "$avp(as)/s");
    if (avp_check("$avp(as)", "eq/s:42")) { append_to_reply("X-Cast: yes\r\n"); }
    avp_op("$avp(a)", "sub/i:2");
    avp_op("$avp(a)/$avp(q)", "div/i:0");
    append_to_reply("X-Op: $(avp(a)[0]) $(avp(a)[1]) $avp(q)\r\n");
    avp_subst("$avp(s)/$avp(u)", "/o/0/g");
    append_to_reply("X-Subst: $rc $avp(u) $avp(s)\r\n");
    $var(e) = "/w/W/";
    avp_subst_pv("$avp(s)", "$var(e)");
    append_to_reply("X-Subst-Pv: $rc $(avp(s)[0]) $(avp(s)[1])\r\n");
    avp_delete("$avp(t)");
    append_to_reply("X-Del: $(avp(t)[0]) [$(avp(t)[1])]\r\n");
    avp_delete("$avp(s)/g");
    append_to_reply("X-Del-G: [$avp(s)]\r\n");
    avp_delete("$avp(nothing)");
    append_to_reply("X-Del-None: $rc\r\n");
    $avp(note) = "voicemail";
    avp_pushto("$ru/username", "$avp(note)");
    append_to_reply("X-Ru: $ru\r\n");
    avp_print();"#);
    assert_eq!(
        h,
        [
            "X-Set: a",
            "X-Unset: z",
            "X-N: a",
            "X-Eq-I: yes",
            "X-Newest: only",
            "X-G: any",
            "X-Ge: yes",
            "X-Re: yes",
            "X-Fm: yes",
            "X-Types: differ",
            "X-Copy: Hello world",
            "X-Cast: yes",
            "X-Op: 40 42 0",
            "X-Subst: 1 w0rld world",
            "X-Subst-Pv: 1 World Hello",
            "X-Del: world [<null>]",
            "X-Del-G: [<null>]",
            "X-Del-None: -1",
            "X-Ru: sip:voicemail@example.com",
        ]
    );
}

#[test]
fn start_up_errors_name_the_line() {
    let e = compile_error("", "    avp_db_load(\"$ruri\", \"$avp(s:x)\");");
    assert!(e.contains("t.cfg:4") && e.contains("db_url"), "{e}");
    let db = "modparam(\"avpops\", \"db_url\", \"sqlite:///tmp/x.db\")\n";
    let e = compile_error(db, "    avp_db_store(\"$ruri\", \"$avp(s:x)\");");
    assert!(e.contains("t.cfg:5") && e.contains("not available"), "{e}");
    let e = compile_error("", "    avp_delete(\"$avp(x)/q\");");
    assert!(e.contains("bad flag <q>"), "{e}");
    let e = compile_error("", "    avp_pushto(\"$fu\", \"$avp(x)\");");
    assert!(e.contains("expected $ru, $du, $br"), "{e}");
    let e = compile_error("", "    avp_check(\"$avp(x)\", \"zz/i:1\");");
    assert!(e.contains("unknown operation"), "{e}");
    let e = compile_error("", "    avp_op(\"$avp(x)\", \"add/s:1\");");
    assert!(e.contains("integer"), "{e}");
    let e = compile_error("", "    avp_copy(\"$var(x)\", \"$avp(y)\");");
    assert!(e.contains("must be an AVP"), "{e}");
}

/// Variables in `avp_subst`'s replacement are read per message (kamailio-tests
/// unit tavpop0001: "testME" becomes "yyyME").
#[test]
fn avp_subst_reads_variables_in_the_replacement() {
    let h = run(r#"    $(avp(src)[*]) = "testME";
    $var(x) = "yyy";
    avp_subst("$avp(src)", "/test/$var(x)/g");
    append_to_reply("X-Subst: $rc $avp(src)\r\n");"#);
    assert_eq!(h, ["X-Subst: 1 yyyME"]);
}
