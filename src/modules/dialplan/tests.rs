//! dialplan functions as a configuration calls them: argument checks at
//! start-up, codes, destinations and `attrs_pvar`.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::modules::core::Engine;
use crate::modules::testutil::{env, INVITE, LOCAL, SOURCE};
use crate::script::compile::compile;
use crate::script::{parse_str, MemoryFiles, Options};
use crate::sip::{Inbound, Proto, Transmit};

const HEAD: &str = "loadmodule \"sl.so\"\nloadmodule \"textops.so\"\nloadmodule \"dialplan.so\"\n\
                    modparam(\"dialplan\", \"attrs_pvar\", \"$avp(s:attrs)\")\n";

fn row(dpid: i64, pr: i64, op: i64, m: &str, subst: &str, repl: &str, attrs: &str) -> DialplanRow {
    DialplanRow {
        dpid,
        pr,
        match_op: op,
        match_exp: Some(m.into()),
        match_len: 0,
        subst_exp: Some(subst.into()),
        repl_exp: Some(repl.into()),
        attrs: Some(attrs.into()),
    }
}

fn compiled(routes: &str) -> Result<crate::script::compile::Compiled, String> {
    let files = MemoryFiles::new();
    let cfg = parse_str(
        "t.cfg",
        &format!("{HEAD}{routes}"),
        &Options::with_files(&files),
    )
    .map_err(|d| d.rendered().join("\n"))?;
    compile(&cfg).map_err(|d| d.rendered().join("\n"))
}

/// The X-T header of the reply the route sends for the INVITE to bob.
fn run(routes: &str) -> String {
    let c = compiled(routes).unwrap_or_else(|e| panic!("{e}"));
    let mut env = env();
    let d = Dialplan::from_rows(
        &[
            row(1, 1, 1, "^bob$", "^b(.)b$", "r\\1bert", "renamed"),
            row(1, 2, 0, "carol", "", "", "same"),
            row(2, 1, 2, "+49*", "^\\+49(.*)$", "0\\1", "national"),
        ],
        false,
    )
    .unwrap();
    env.services.insert(Arc::new(d));
    let mut engine = Engine::new(Arc::new(env), Arc::new(c.program));
    let pkt = Inbound {
        data: Bytes::from(INVITE.replace('\n', "\r\n")),
        src: SOURCE.parse().expect("address"),
        local: LOCAL.parse().expect("address"),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    let mut out: Vec<Transmit> = Vec::new();
    engine.on_inbound(pkt, crate::modules::testutil::some_instant(), &mut out);
    let reply = String::from_utf8_lossy(&out[0].data).into_owned();
    reply
        .lines()
        .find_map(|l| l.strip_prefix("X-T: "))
        .unwrap_or_else(|| panic!("no X-T in {reply}"))
        .to_string()
}

fn answer(body: &str, header: &str) -> String {
    format!(
        "request_route {{\n{body}\n    append_to_reply(\"X-T: {header}\\r\\n\");\n    sl_send_reply(\"200\", \"OK\");\n}}\n"
    )
}

#[test]
fn dp_translate_defaults_to_the_ruri_user() {
    let t = run(&answer(
        "dp_translate(\"1\"); $var(a) = $rc;",
        "$var(a) $rU $avp(s:attrs) $ru",
    ));
    assert_eq!(t, "1 robert renamed sip:robert@example.com");
}

#[test]
fn dp_translate_sources_and_destinations() {
    // Into a variable; the R-URI stays.
    let t = run(&answer(
        "$var(n) = \"+4930\"; dp_translate(\"2\", \"$var(n)/$var(o)\"); $var(a) = $rc;",
        "$var(a) $var(o) $rU",
    ));
    assert_eq!(t, "1 030 bob");
    // A source alone: translated (attributes set), nothing written.
    let t = run(&answer(
        "$var(n) = \"+4930\"; dp_translate(\"2\", \"$var(n)\"); $var(a) = $rc;",
        "$var(a) $var(n) $avp(s:attrs)",
    ));
    assert_eq!(t, "1 +4930 national");
    // The id from a variable holding a number.
    let t = run(&answer(
        "$var(id) = 1; dp_translate(\"$var(id)\", \"$rU/$var(o)\"); $var(a) = $rc;",
        "$var(a) $var(o)",
    ));
    assert_eq!(t, "1 robert");
    // An empty replacement leaves the destination alone.
    let t = run(&answer(
        "$var(n) = \"carol\"; $var(o) = \"x\"; dp_translate(\"1\", \"$var(n)/$var(o)\"); $var(a) = $rc;",
        "$var(a) $var(o) $avp(s:attrs)",
    ));
    assert_eq!(t, "1 x same");
}

#[test]
fn codes() {
    // No such dialplan id: -2; no rule matches, or an empty input: -1.
    let t = run(&answer(
        "dp_translate(\"9\"); $var(a) = $rc; dp_translate(\"2\"); $var(b) = $rc; \
         $var(e) = \"\"; dp_translate(\"1\", \"$var(e)/$var(o)\"); $var(c) = $rc;",
        "$var(a) $var(b) $var(c)",
    ));
    assert_eq!(t, "-2 -1 -1");
    let t = run(&answer(
        "dp_match(\"2\", \"+4989\"); $var(a) = $rc; $var(at) = $avp(s:attrs); \
         dp_replace(\"2\", \"+49$rU\", \"$var(o)\"); $var(b) = $rc; \
         dp_match(\"3\", \"x\"); $var(c) = $rc; dp_replace(\"2\", \"\", \"$var(p)\"); $var(d) = $rc;",
        "$var(a) $var(at) $var(b) $var(o) $var(c) $var(d)",
    ));
    assert_eq!(t, "1 national 1 0bob -2 -1");
}
#[test]
fn bad_arguments_stop_the_start() {
    let cases = [
        ("dp_translate(\"x\");", "bad number"),
        ("dp_translate(\"1\", \"$rU/\");", "second argument"),
        ("dp_translate(\"1\", \"$rU/$fU\");", "destination"),
        ("dp_translate(\"$rU\");", "the id"),
        (
            "dp_replace(\"1\", \"$rU\", \"text\");",
            "destination must be a variable",
        ),
    ];
    for (call, want) in cases {
        let err = compiled(&format!("request_route {{ {call} }}\n"))
            .err()
            .unwrap_or_default();
        assert!(err.contains(want), "{call}: {err}");
    }
    let mut mp = ModParams::default();
    mp.push(
        "dialplan",
        "attrs_pvar",
        crate::script::registry::ParamValue::Str("$rU".into()),
    );
    assert!(check_attrs_pvar(&mp).is_err());
}
