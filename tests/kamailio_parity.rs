//! Differences with Kamailio 5.6 found side by side
//! (loadtest/sidebyside/configs/hunt_*.cfg): each test runs a small
//! request_route on the engine, sans-IO, and checks what the reply carries
//! against what Kamailio 5.6 sent for the same config and message.

mod common;

use std::time::Instant;

use common::engine::{engine, inbound, sent_to};

const CALLER: &str = "127.0.0.2:5070";

const MODULES: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "textopsx.so"
loadmodule "siputils.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "corex.so"
"#;

/// A request from [`CALLER`]; `extra`: header lines (LF ends) before the Content-Length.
fn request(method: &str, ruri: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} {ruri} SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-p1;rport\n\
         Max-Forwards: 70\n\
         From: <sip:uac@127.0.0.2>;tag=uac-tag\n\
         To: <sip:uas@127.0.0.3>\n\
         Call-ID: parity-1\n\
         CSeq: 1 {method}\n\
         Contact: <sip:uac@127.0.0.2:5070>\n\
         {extra}Content-Length: {}\n\n{body}",
        body.len()
    )
}

/// Runs `route` as request_route on `msg`; what the caller got, as text.
fn replies(route: &str, msg: &str) -> Vec<String> {
    let cfg = format!("{MODULES}\nrequest_route {{\n{route}\n}}\n");
    let mut e = engine(&cfg);
    let mut out = Vec::new();
    e.on_inbound(inbound(CALLER, msg), Instant::now(), &mut out);
    sent_to(&out, CALLER)
}

/// The value of the reply header `name` (the first reply).
fn header(route: &str, msg: &str, name: &str) -> String {
    let got = replies(route, msg);
    let reply = got.first().unwrap_or_else(|| panic!("no reply to {msg}"));
    reply
        .split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {reply}"))
        .to_string()
}

#[test]
fn uri_transformations_lr_r2_and_suri() {
    // {uri.lr}/{uri.r2} give the parameter's value (empty for a bare `;lr`);
    // {uri.suri} keeps the transport; {uri.saor} has no port.
    let route = r#"
        $var(u) = "sip:al%20ice:pw@example.com:5071;transport=TCP;lr;r2=on;x=y?h=2";
        append_to_reply("X-U: [$(var(u){uri.lr})] [$(var(u){uri.r2})] [$(var(u){uri.suri})] [$(var(u){uri.saor})] [$(var(u){uri.duri})]\r\n");
        sl_send_reply("404", "Tr");
    "#;
    let msg = request("OPTIONS", "sip:uas@127.0.0.3", "", "");
    assert_eq!(
        header(route, &msg, "X-U"),
        "[] [on] [sip:al%20ice@example.com:5071;transport=TCP] [sip:al%20ice@example.com] [sip:example.com:5071;transport=TCP]"
    );
}

#[test]
fn transformations_on_empty_quoted_and_bracketless_values() {
    // param.* and line.* fail (print nothing) on an empty string; a quoted
    // parameter value comes without its quotes; a name-addr without `<` is
    // all URI; re.subst without a match keeps the value.
    let route = r#"
        $var(e) = "";
        $var(p) = "a=1; b = \"two\" ;c=";
        $var(n) = "sip:bob@[::1]:5070;tag=t2";
        $var(s) = "A b";
        append_to_reply("X-T: [$(var(e){param.count})] [$(var(e){param.in,a})] [$(var(e){line.count})] [$(var(p){param.value,b})] [$(var(p){param.valueat,1})] [$(var(n){nameaddr.uri})] [$(var(n){nameaddr.len})] [$(var(n){nameaddr.name})] [$(var(s){re.subst,/a(.)/<\1>/g})]\r\n");
        sl_send_reply("404", "Tr");
    "#;
    let msg = request("OPTIONS", "sip:uas@127.0.0.3", "", "");
    assert_eq!(
        header(route, &msg, "X-T"),
        "[] [] [] [two] [two] [sip:bob@[::1]:5070;tag=t2] [25] [] [A b]"
    );
}

#[test]
fn comparisons_follow_the_left_operand_and_null_reads_zero_or_empty() {
    // Kamailio 5.6 (hunt_cmp.cfg): a missing header equals 0 and "", an
    // integer 0 equals "abc" and a missing header, but `== $null` only holds
    // for $null and an integer never equals the "" constant (nor differs).
    let route = r#"
        $var(i0) = 0; $var(s0) = "0"; $var(e) = ""; $var(abc) = "abc";
        $var(r) = "";
        if ($hdr(X-None) == "") $var(r) = $var(r) + "a";
        if ($hdr(X-None) == 0) $var(r) = $var(r) + "b";
        if ($avp(none) == $var(e)) $var(r) = $var(r) + "c";
        if ($var(i0) == $var(abc)) $var(r) = $var(r) + "d";
        if ($var(i0) == $hdr(X-None)) $var(r) = $var(r) + "e";
        if ($var(i0) == $null) $var(r) = $var(r) + "F";
        if ($var(i0) != $null) $var(r) = $var(r) + "g";
        if ($var(i0) == "") $var(r) = $var(r) + "H";
        if ($var(i0) != "") $var(r) = $var(r) + "I";
        if ($var(s0) == $hdr(X-None)) $var(r) = $var(r) + "J";
        if ($null == 0) $var(r) = $var(r) + "k";
        if ($var(e) == $null) $var(r) = $var(r) + "L";
        append_to_reply("X-R: $var(r)\r\n");
        sl_send_reply("404", "Cmp");
    "#;
    let msg = request("MESSAGE", "sip:uas@127.0.0.3", "", "");
    assert_eq!(header(route, &msg, "X-R"), "abcdegk");
}

#[test]
fn strings_read_as_integers_only_when_wholly_numeric_and_if_needs_a_positive_value() {
    // Kamailio 5.6 (hunt_cmp2.cfg): "12abc" and " 5" read 0; "+5" reads 5;
    // a string is true when its integer reading is; `if (-1)` is false.
    let route = r#"
        $var(a) = "12abc"; $var(b) = " 5"; $var(c) = "+5"; $var(z) = "0"; $var(x) = "abc"; $var(m) = -3;
        $var(r) = "p=" + (1 + $var(a)) + "," + (1 + $var(b)) + "," + (1 + $var(c)) + "," + (int)$var(a) + " t=";
        if ($var(x)) $var(r) = $var(r) + "x";
        if ($var(z)) $var(r) = $var(r) + "z";
        if ($var(c)) $var(r) = $var(r) + "c";
        if ($var(m)) $var(r) = $var(r) + "m";
        if (!$var(m)) $var(r) = $var(r) + "n";
        if (!$var(x)) $var(r) = $var(r) + "X";
        if ($var(m) < 0) $var(r) = $var(r) + "l";
        append_to_reply("X-R: $var(r)\r\n");
        sl_send_reply("404", "Int");
    "#;
    let msg = request("MESSAGE", "sip:uas@127.0.0.3", "", "");
    assert_eq!(header(route, &msg, "X-R"), "p=1,1,6,0 t=cXl");
}

#[test]
fn hdr_keeps_trailing_blanks_and_tel_uris_have_no_sip_params() {
    // Kamailio 5.6 (hunt_tr.cfg): $hdr strips the blanks after the colon
    // and the CRLF only; uri.params and uri.param of a tel: URI are empty.
    let route = r#"
        $var(u) = "tel:+1-555-0100;phone-context=x";
        append_to_reply("X-R: [$hdr(X-S)] [$(hdr(X-S){s.len})] [$(var(u){uri.params})] [$(var(u){uri.param,phone-context})] [$(var(u){uri.user})]\r\n");
        sl_send_reply("404", "Hdr");
    "#;
    let msg = request("MESSAGE", "sip:uas@127.0.0.3", "X-S:   A b  \n", "");
    assert_eq!(
        header(route, &msg, "X-R"),
        "[A b  ] [5] [] [] [+1-555-0100]"
    );
}

#[test]
fn while_runs_on_negative_values_and_routes_return_their_last_statement() {
    // Kamailio 5.6 (hunt_lang.cfg, hunt_rc.cfg): `while` loops while the
    // value is non-zero (so down to the 100-iteration limit here); a route
    // without `return` gives its last statement's value: 1 after an
    // assignment or an `if` that ran nothing, the code of a last function.
    let route = r#"
        $var(j) = 10;
        while ($var(j)) { $var(j) = $var(j) - 3; }
        $var(r) = "j=" + $var(j);
        route(R1); $var(r) = $var(r) + " r1=" + $rc;
        route(R2); $var(r) = $var(r) + " r2=" + $rc;
        route(R3); $var(r) = $var(r) + " r3=" + $rc;
        is_present_hf("X-Missing"); $var(a) = 0; $var(r) = $var(r) + " a=" + $rc;
        append_to_reply("X-R: $var(r)\r\n");
        sl_send_reply("404", "Rc");
    }
    route[R1] { is_present_hf("X-Missing"); }
    route[R2] { is_present_hf("X-Missing"); $var(z) = 1; }
    route[R3] { is_present_hf("X-Missing"); if (0) { $var(z) = 1; }
    "#;
    let msg = request("MESSAGE", "sip:uas@127.0.0.3", "", "");
    assert_eq!(header(route, &msg, "X-R"), "j=-290 r1=-1 r2=1 r3=1 a=-1");
}

#[test]
fn drop_of_every_branch_fails_t_relay_with_a_500() {
    // Kamailio 5.6 (hunt_lang.cfg): t_relay returns -6 (E_CFG) and tm
    // answers "500 I'm terribly sorry, server error occurred (6/TM)".
    let route = r#"
        t_on_branch("DROPIT");
        $du = "sip:127.0.0.3:5080";
        t_relay();
        exit;
    }
    branch_route[DROPIT] {
        drop;
    "#;
    let msg = request("INVITE", "sip:drop@127.0.0.1", "", "");
    let got = replies(route, &msg);
    let finals: Vec<_> = got
        .iter()
        .filter_map(|r| r.split("\r\n").next())
        .filter(|l| !l.starts_with("SIP/2.0 100"))
        .collect();
    assert_eq!(
        finals,
        ["SIP/2.0 500 I'm terribly sorry, server error occurred (6/TM)"]
    );
}

#[test]
fn tm_answers_a_failed_t_relay_when_the_script_ends() {
    // Kamailio 5.6 (sidebyside parity_tm.cfg): the reply to a t_relay that
    // failed goes out when the script ends, without the script's
    // append_to_reply headers, and only if nothing answered the
    // transaction: t_reply wins, an sl reply goes out before it.
    let finals = |then: &str| {
        let route = format!(
            r#"
        $du = "sip:[2001:db8::1]:5060";
        t_relay();
        append_to_reply("X-Rc: $rc\r\n");
        {then}
    "#
        );
        let msg = request("OPTIONS", "sip:uas@127.0.0.1", "", "");
        replies(&route, &msg)
            .iter()
            .map(|r| {
                let first = r.split("\r\n").next().unwrap_or("").to_string();
                let rc = r.split("\r\n").find(|l| l.starts_with("X-Rc:"));
                rc.map_or(first.clone(), |rc| format!("{first} | {rc}"))
            })
            .collect::<Vec<_>>()
    };
    let unresolvable = "SIP/2.0 478 Unresolvable destination (478/TM)";
    assert_eq!(finals(""), [unresolvable]);
    assert_eq!(finals("drop;"), [unresolvable]);
    assert_eq!(
        finals(r#"t_reply("503", "mine");"#),
        ["SIP/2.0 503 mine | X-Rc: -478"]
    );
    assert_eq!(
        finals(r#"sl_send_reply("503", "sl mine");"#),
        ["SIP/2.0 503 sl mine | X-Rc: -478", unresolvable]
    );
}

#[test]
fn odd_values_do_not_panic() {
    // Extreme indexes, lengths, separators and numbers through the
    // transformations, operators and textops functions: each message still
    // gets its reply.
    let exprs = [
        "$(var(s){s.substr,-9223372036854775807,9223372036854775807})",
        "$(var(s){s.substr,9223372036854775807,1})",
        "$(var(s){s.select,-9223372036854775807,,})",
        "$(var(s){s.strip,-5})|$(var(s){s.striptail,99999999999})",
        "$(var(s){line.at,-9223372036854775807})|$(var(s){line.at,9223372036854775807})",
        "$(var(s){param.valueat,-1})|$(var(s){param.name,-9223372036854775807})",
        "$(var(s){s.prefixes,-3})|$(var(s){s.prefixes,0})",
        "$(var(s){s.decode.hexa})|$(var(s){s.decode.base64})|$(var(s){s.unescape.user})",
        "$(var(s){uri.user})|$(var(s){tobody.uri})|$(var(s){nameaddr.len})|$(var(s){uri.suri})",
        "$(avp(x)[-99999])|$(avp(x)[99999])|$(hdr(Via)[-99999])",
        "$(var(s){re.subst,/(.*)*/\\9/g})",
    ];
    let values = [
        "", "%", "%zz", "\\t", "<", "<sip:", ";;;=;", "sip:@", "\"", "x\r\ny", "[::",
    ];
    for v in values {
        for e in exprs {
            let route = format!(
                "$var(s) = \"{}\"; $avp(x) = 1;\n$var(n) = -9223372036854775807 - 1;\n$var(d) = $var(n) / -1 + $var(n) mod -1 + (1 << 99) + (1 >> -1);\nappend_to_reply(\"X-R: {e}|$var(d)\\r\\n\");\nsl_send_reply(\"404\", \"Odd\");",
                v.replace('\\', "\\\\").replace('"', "\\\"").replace('\r', "\\r").replace('\n', "\\n")
            );
            let msg = request("MESSAGE", "sip:uas@127.0.0.3", "", "");
            let got = replies(&route, &msg);
            assert_eq!(got.len(), 1, "{v:?} {e}: {got:?}");
        }
    }
}
