//! The functions of these modules as a configuration calls them: compiled
//! from text (fixups on real arguments, variables in strings) and run by the
//! engine on a received request.

use std::sync::Arc;

use bytes::Bytes;

use crate::modules::core::Engine;
use crate::modules::testutil::{env, INVITE};
use crate::script::compile::compile;
use crate::script::{parse_str, MemoryFiles, Options};

/// Compiles `routes` after loading the modules, runs it on `request`; what was sent.
pub(super) fn run(routes: &str, request: &str) -> Vec<String> {
    let text = format!(
        "loadmodule \"sl.so\"\nloadmodule \"kex.so\"\nloadmodule \"textops.so\"\n\
         loadmodule \"textopsx.so\"\nloadmodule \"siputils.so\"\nloadmodule \"sanity.so\"\n\
         loadmodule \"counters.so\"\nloadmodule \"xlog.so\"\n\
         modparam(\"sanity\", \"autodrop\", 0)\n\
         modparam(\"counters\", \"script_counter\", \"seen requests seen\")\n{routes}"
    );
    let files = MemoryFiles::new();
    let cfg = parse_str("t.cfg", &text, &Options::with_files(&files))
        .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let compiled = compile(&cfg).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let mut engine = Engine::new(Arc::new(env()), Arc::new(compiled.program));
    let out = crate::modules::testutil::receive(&mut engine, request.replace('\n', "\r\n"));
    out.iter()
        .map(|t| String::from_utf8_lossy(&t.data).replace("\r\n", "\n"))
        .collect()
}

#[test]
fn stock_style_checks_then_relay_with_edits() {
    let sent = run(
        r#"request_route {
    if (!sanity_check("17895", "7")) { exit; }
    if (!has_totag() && is_method("INVITE") && is_first_hop()) {
        cnt_inc("seen");
        setbflag(6);
        if (!isbflagset(6)) { exit; }
        force_rport();
        remove_hf("Contact");
        append_hf("X-From-User: $fU\r\n");
        subst_uri('/^sip:bob@(.*)$/sip:bob@10.0.0.2:5080/');
        if (is_myself("sip:192.0.2.10")) { forward(); }
    }
}"#,
        INVITE,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    let out = &sent[0];
    assert!(
        out.starts_with("INVITE sip:bob@10.0.0.2:5080 SIP/2.0\n"),
        "{out}"
    );
    assert!(out.contains("\nX-From-User: alice\n"), "{out}");
    assert!(!out.contains("Contact:"), "{out}");
    assert!(out.contains(";rport=5070"), "{out}");
}

#[test]
fn sanity_failure_answers_and_append_to_reply_reaches_sl() {
    let bad = INVITE.replacen("CSeq: 314159 INVITE", "CSeq: 314159 BYE", 1);
    let sent = run(
        r#"request_route {
    append_to_reply("X-Why: sanity\r\n");
    if (!sanity_check()) { exit; }
    sl_send_reply("500", "not reached");
}"#,
        &bad,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("SIP/2.0 400 CSeq method does not match request method\n"),
        "{}",
        sent[0]
    );
    assert!(sent[0].contains("\nX-Why: sanity\n"), "{}", sent[0]);
}

#[test]
fn msg_apply_changes_and_options_reply() {
    let options = INVITE
        .replacen("INVITE sip:bob@example.com", "OPTIONS sip:192.0.2.10", 1)
        .replacen("CSeq: 314159 INVITE", "CSeq: 1 OPTIONS", 1);
    let sent = run(
        r#"request_route {
    append_hf("X-Mark: 1\r\n");
    msg_apply_changes();
    if (!is_present_hf("X-Mark")) { exit; }
    if (is_method("OPTIONS") && uri == myself) { options_reply(); }
}"#,
        &options,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("SIP/2.0 200 OK\n") && sent[0].contains("\nAllow: "),
        "{}",
        sent[0]
    );
}

/// Pseudo-variables added from the corpus study; the expected values are what
/// Kamailio 5.6 printed for the same message and script.
#[test]
fn uri_part_source_and_identity_pseudo_variables_read_as_kamailio_does() {
    let req = INVITE.replacen(
        "Content-Type: application/sdp\n",
        "Content-Type: application/sdp\n\
         Remote-Party-ID: \"RP\" <sip:rpid@rp.example>;party=calling\n\
         P-Preferred-Identity: \"Pref Name\" <sip:pref@pp.example>\n\
         Proxy-Authorization: Digest username=\"alice\", realm=\"r\", nonce=\"n\", \
         uri=\"sip:bob@example.com\", response=\"0123\", algorithm=MD5\n",
        1,
    );
    let sent = run(
        r#"request_route {
    append_to_reply("X-A: [$sut] [$sas] [$siz] [$rv] [$cT] [$re]\r\n");
    append_to_reply("X-B: [$pu] [$pU] [$pd] [$pn] [$adu] [$aa] [$msg(len)] [$msg(body_len)]\r\n");
    append_to_reply("X-C: [$dd] [$dp] [$dP] [$od] [$op] [$oP] [$rP] [$nh(u)] [$nh(p)] [$nh(P)]\r\n");
    $du = "sips:carol@10.0.0.2:5099;transport=TCP";
    append_to_reply("X-D: [$dd] [$dp] [$dP] [$nh(U)] [$nh(d)] [$nh(p)] [$nh(P)]\r\n");
    $du = "sip:10.0.0.1";
    $ru = "tel:+123";
    append_to_reply("X-E: [$dp] [$dP] [$nh(U)] [$rP] [$od] [$vz(q)] [$K(TLS)] [$K(INET6)]\r\n");
    append_to_reply("X-F: [$C(yx)] [$C(Rb)] [$C(xx)]\r\n");
    sl_send_reply("404", "Not Here");
}"#,
        &req,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    let out = &sent[0];
    let len = req.replace('\n', "\r\n").len();
    for want in [
        "X-A: [sip:198.51.100.1:5070;transport=udp] [udp:198.51.100.1:5070] [198.51.100.1] \
         [SIP/2.0] [application/sdp] [sip:rpid@rp.example]\n"
            .to_string(),
        format!(
            "X-B: [sip:pref@pp.example] [pref] [pp.example] [\"Pref Name\"] \
             [sip:bob@example.com] [MD5] [{len}] [5]\n"
        ),
        "X-C: [<null>] [<null>] [<null>] [example.com] [5060] [UDP] [UDP] \
         [sip:bob@example.com] [5060] [UDP]\n"
            .to_string(),
        "X-D: [10.0.0.2] [5099] [TCP] [carol] [10.0.0.2] [5099] [TCP]\n".to_string(),
        "X-E: [5060] [UDP] [<null>] [UDP] [example.com] [0] [3] [10]\n".to_string(),
        "X-F: [\x1b[0;33;49m] [\x1b[1;31;44m] [\x1b[0;39;49m]\n".to_string(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in\n{out}");
    }
}

/// The error that refuses `body`, alone in a request_route of `t.cfg`
/// (line 2), at parse or compile time.
pub(super) fn compile_error(body: &str) -> String {
    let text = format!("request_route {{\n    {body}\n}}\n");
    let files = MemoryFiles::new();
    parse_str("t.cfg", &text, &Options::with_files(&files))
        .map_err(|d| d.rendered().join("\n"))
        .and_then(|cfg| {
            compile(&cfg)
                .map(|_| ())
                .map_err(|d| d.rendered().join("\n"))
        })
        .expect_err(body)
}

/// Kamailio folds constant expressions at start-up and refuses to start on
/// a division or modulo by the constant 0 ("rv div by 0", checked live).
#[test]
fn division_by_the_constant_zero_is_refused() {
    for body in ["$var(a) = 10 / 0;", "$var(a) = 10 mod 0;"] {
        let err = compile_error(body);
        assert!(err.contains("t.cfg:2"), "{body}: {err}");
        assert!(err.contains("by the constant 0"), "{body}: {err}");
    }
}

#[test]
fn bad_names_of_the_new_pseudo_variables_are_errors_at_their_place() {
    for (body, msg) in [
        ("$var(a) = $C(XX);", "$C(XX)"),
        ("$var(a) = $C(xR);", "$C(xR)"),
        ("$var(a) = $nh(q);", "unknown $nh(q)"),
        ("$var(a) = $msg(fline);", "$msg(fline) is not supported"),
        ("$var(a) = $K(FOO);", "unknown $K(FOO)"),
    ] {
        let err = compile_error(body);
        assert!(err.starts_with("t.cfg:2:"), "{err}");
        assert!(err.contains(msg), "{body}: {err}");
    }
}

/// The pv module's tests and removals, each answer as Kamailio 5.6 gave it
/// for the same script.
#[test]
fn pv_module_functions_answer_as_kamailio_does() {
    let sent = run(
        r#"loadmodule "pv.so"
request_route {
    $var(e) = "";
    $var(x) = 5; $var(s) = "5"; $avp(a) = "x";
    $var(r) = "";
    if (pv_isset("$var(x)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (pv_isset("$avp(nope)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (pv_isset("$var(never)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (is_int("$var(x)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (is_int("$var(s)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (is_int("$avp(nope)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (typeof("$var(x)", "int")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (typeof("$var(s)", "str")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (typeof("$avp(nope)", "null")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (typeof("$var(s)", "int")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (not_empty("$var(s)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (not_empty("$var(e)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (not_empty("$var(x)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    if (not_empty("$avp(nope)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    pv_unset("$avp(a)");
    if (pv_isset("$avp(a)")) $var(r) = $var(r) + "1"; else $var(r) = $var(r) + "0";
    pv_unset("$var(x)");
    $xavp(r=>a) = 1; $xavp(r=>b) = "t"; $xavi(Ri=>a) = 3; $xavp(k=>a) = 4;
    pv_xavp_print();
    xavp_rm("r");
    xavi_rm("ri");
    pv_printf("$var(p)", "v=$rU");
    append_to_reply("X-R: $var(r) [$var(x)] [$xavp(r=>a)] [$xavi(RI=>a)] [$xavp(k=>a)] [$var(p)]\r\n");
    sl_send_reply("404", "Not Here");
}"#,
        INVITE,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains("\nX-R: 101100111010000 [0] [<null>] [<null>] [4] [v=bob]\n"),
        "{}",
        sent[0]
    );
}

#[test]
fn the_xavp_dump_lists_roots_and_fields_newest_first() {
    use crate::script::attrs::Xavp;
    use crate::script::value::Value;
    let mut root = Xavp::value(Bytes::from_static(b"r"), Value::Int(0));
    root.value = crate::script::attrs::XavpValue::List(vec![
        Xavp::value(Bytes::from_static(b"a"), Value::Int(1)),
        Xavp::value(Bytes::from_static(b"b"), Value::owned(b"t".to_vec())),
    ]);
    let other = Xavp::value(Bytes::from_static(b"s"), Value::Null);
    assert_eq!(
        crate::modules::pv::dump(&[root, other]),
        ["s (null)", "r (list)", "  b (str): t", "  a (int): 1"]
    );
}

/// `flags` declarations name message flags; Kamailio 5.6 printed 6 then 5
/// for the same script (FLAG_C takes bit 0, the lowest free one).
#[test]
fn declared_flag_names_work_in_setflag_and_isflagset() {
    let sent = run(
        r#"flags FLAG_A:1, FLAG_B : 2, FLAG_C
request_route {
    setflag(FLAG_A);
    setflag("FLAG_B");
    append_to_reply("X-1: $mf\r\n");
    if (isflagset(FLAG_B)) { append_to_reply("X-B: set\r\n"); }
    resetflag(FLAG_A);
    setflag(FLAG_C);
    append_to_reply("X-2: $mf\r\n");
    sl_send_reply("404", "Not Here");
}"#,
        INVITE,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    for want in ["\nX-1: 6\n", "\nX-B: set\n", "\nX-2: 5\n"] {
        assert!(sent[0].contains(want), "{want:?} in {}", sent[0]);
    }
}

/// `$utime`, `$utimef` and (on a UTC machine) `$time`, `$timef`, `$Tf` read
/// the message's time, numbered as Kamailio numbers them (month, weekday and
/// day of the year from 1); the printing itself is checked against Kamailio's
/// output in `script::timefmt`.
#[test]
fn time_pseudo_variables_read_the_message_time() {
    let sent = run(
        r#"request_route {
    append_to_reply("X-T: $Ts|$utime(year)|$utime(mon)|$utime(mday)|$utime(wday)|$utime(yday)|$utime(isdst)|$utimef(%Y%m%d %H:%M:%S %Z)\r\n");
    sl_send_reply("404", "Not Here");
}"#,
        INVITE,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    let line = sent[0]
        .lines()
        .find_map(|l| l.strip_prefix("X-T: "))
        .expect("X-T header");
    let ts: i64 = line.split('|').next().unwrap().parse().unwrap();
    let t = crate::script::timefmt::utc(ts);
    let want = format!(
        "{ts}|{}|{}|{}|{}|{}|0|{}{:02}{:02} {:02}:{:02}:{:02} GMT",
        t.year,
        t.mon,
        t.mday,
        t.wday + 1,
        t.yday + 1,
        t.year,
        t.mon,
        t.mday,
        t.hour,
        t.min,
        t.sec
    );
    assert_eq!(line, want);
    if crate::script::timefmt::local_zone_is_utc().is_ok() {
        let sent = run(
            r#"request_route {
    append_to_reply("X-L: $time(hour)|$utime(hour)|$timef(%H %Z)|$Tf|$utimef(%c)\r\n");
    sl_send_reply("404", "Not Here");
}"#,
            INVITE,
        );
        let line = sent[0]
            .lines()
            .find_map(|l| l.strip_prefix("X-L: "))
            .expect("X-L header");
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts[0], parts[1], "{line}");
        assert_eq!(
            parts[2],
            format!("{:02} UTC", parts[0].parse::<u32>().unwrap())
        );
        assert_eq!(parts[3], parts[4], "{line}");
    }
}

/// `$sf` and the hexadecimal flag pseudo-variables; Kamailio 5.6 printed the
/// same lines for this script.
#[test]
fn flag_pseudo_variables_in_decimal_and_hex() {
    let sent = run(
        r#"request_route {
    append_to_reply("X-0: [$mf] [$mF] [$bf] [$bF] [$sf] [$sF]\r\n");
    setflag(1); setflag(4); setflag(31); setbflag(3); setbflag(30); setsflag(2); setsflag(11);
    append_to_reply("X-1: [$mf] [$mF] [$bf] [$bF] [$sf] [$sF]\r\n");
    $sf = 5;
    append_to_reply("X-2: [$sf] [$sF]\r\n");
    sl_send_reply("404", "Not Here");
}"#,
        INVITE,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    for want in [
        "\nX-0: [0] [00000000] [0] [00000000] [0] [00000000]\n",
        "\nX-1: [2147483666] [80000012] [1073741832] [40000008] [2052] [00000804]\n",
        "\nX-2: [5] [00000005]\n",
    ] {
        assert!(sent[0].contains(want), "{want:?} in {}", sent[0]);
    }
}

/// `$def()` / `$defn()` read the defines; Kamailio 5.6 printed
/// `["abc"] [42] [42] [] [0] [0] [1+2] [0]` for the same script.
#[test]
fn def_and_defn_read_the_preprocessor_defines() {
    let sent = run(
        r#"#!define DS "abc"
#!define DN 42
#!define DE
#!define DX 1+2
request_route {
    $var(a) = $def(DS); $var(b) = $defn(DN); $var(c) = $def(DN); $var(d) = $def(DE);
    $var(e) = $def(NOPE); $var(f) = $defn(DS); $var(g) = $def(DX); $var(h) = $defn(NOPE);
    append_to_reply("X-D: [$var(a)] [$var(b)] [$var(c)] [$var(d)] [$var(e)] [$var(f)] [$var(g)] [$var(h)]\r\n");
    if ($var(b) == 42) { append_to_reply("X-N: int\r\n"); }
    sl_send_reply("404", "Not Here");
}"#,
        INVITE,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    for want in [
        "\nX-D: [\"abc\"] [42] [42] [] [0] [0] [1+2] [0]\n",
        "\nX-N: int\n",
    ] {
        assert!(sent[0].contains(want), "{want:?} in {}", sent[0]);
    }
}

/// `$hflc()` counts each Via, Route, Record-Route and Contact body and other
/// headers per line; Kamailio 5.6 printed `3 3 2 1 0` for this message.
#[test]
fn hflc_counts_header_bodies() {
    let req = INVITE
        .replacen(
            "Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds;rport\n",
            "Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds;rport , SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bK-x\n\
             Via: SIP/2.0/TCP 10.0.0.8;branch=z9hG4bK-y\n\
             Route: <sip:r1.example;lr>,  <sip:r2.example;lr>\n\
             Route: <sip:r3.example;lr>\n\
             X-Multi: one, two\n",
            1,
        )
        .replacen(
            "Contact: <sip:alice@198.51.100.1:5070>\n",
            "Contact: \"A, B\" <sip:a@h>;expires=5, <sip:b@h>\n",
            1,
        );
    let sent = run(
        r#"request_route {
    append_to_reply("X-C: $hflc(Via) $hflc(Route) $hflc(Contact) $hflc(X-Multi) $hflc(Record-Route)\r\n");
    sl_send_reply("404", "Not Here");
}"#,
        &req,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("\nX-C: 3 3 2 1 0\n"), "{}", sent[0]);
}
