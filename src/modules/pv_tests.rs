//! Pseudo-variables of the pv core read on a request, each value as a live
//! Kamailio 5.6 printed it for the same message and script (see
//! loadtest/sidebyside/configs/pvcore.cfg for the side-by-side run).

use crate::modules::script_tests::run;

/// A request with Vias three to a line and two Contact lines.
const MULTI: &str = "INVITE sip:alice@192.0.2.10:5060 SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK-1;rport , SIP/2.0/TCP 10.0.0.9:5070;branch=z9hG4bK-x;received=10.1.1.1;rport=7
Via: SIP/2.0/TLS [2001:db8::1];branch=z9hG4bK-y;i=abc ,SIP/2.0/SCTP a.b:1 , SIP/2.0/WS c.d;branch=z
Route: <sip:r1.example;lr>,  <sip:r2.example;lr>
Route: <sip:r3.example;lr>
Contact: \"A, B\" <sip:a@h>;expires=5, <sip:b@h>
Contact: <sip:c@h>, <sip:d@h>
X-Multi: one, two
From: <sip:+bob@example.com>;tag=1
To: <sip:alice@192.0.2.10>
Call-ID: c2
CSeq: 1 INVITE
Max-Forwards: 70
Content-Length: 0

";

fn reply_of(routes: &str) -> String {
    let sent = run(routes, MULTI);
    assert_eq!(sent.len(), 1, "{sent:?}");
    sent[0].clone()
}

fn has(out: &str, want: &str) {
    assert!(out.contains(want), "missing {want:?} in\n{out}");
}

#[test]
fn via_bodies_by_position() {
    let out = reply_of(
        r#"request_route {
    append_to_reply("X-V0: [$via0(host)] [$via0(port)] [$via0(proto)] [$via0(protoid)] [$via0(branch)] [$via0(received)] [$via0(rport)] [$via0(i)]\r\n");
    append_to_reply("X-V1: [$via1(host)] [$via1(port)] [$via1(proto)] [$via1(protoid)] [$via1(branch)] [$via1(received)] [$via1(rport)] [$via1(i)]\r\n");
    append_to_reply("X-VZ: [$viaZ(host)] [$viaZ(port)] [$viaZ(proto)] [$viaZ(protoid)] [$viaZ(branch)]\r\n");
    sl_send_reply("404", "x");
}"#,
    );
    has(
        &out,
        "X-V0: [198.51.100.1] [5070] [UDP] [1] [z9hG4bK-1] [<null>] [<null>] [<null>]\n",
    );
    has(
        &out,
        "X-V1: [10.0.0.9] [5070] [TCP] [2] [z9hG4bK-x] [10.1.1.1] [7] [<null>]\n",
    );
    has(&out, "X-VZ: [c.d] [5060] [WS] [5] [z]\n");
}

#[test]
fn header_bodies_by_index_with_kamailio_quirks() {
    let out = reply_of(
        r#"request_route {
    append_to_reply("X-H1: [$hfl(Via)] [$(hfl(Via)[1])] [$(hfl(Via)[2])] [$(hfl(Via)[-1])] [$(hfl(Via)[3])] [$(hfl(Via)[4])]\r\n");
    append_to_reply("X-H2: [$(hfl(Route)[0])] [$(hfl(Route)[2])] [$(hfl(Contact)[0])] [$(hfl(Contact)[1])] [$(hfl(Contact)[2])] [$(hfl(Contact)[3])] [$(hfl(Contact)[-1])]\r\n");
    append_to_reply("X-H3: [$(hfl(X-Multi)[0])] [$(hfl(Record-Route)[0])]\r\n");
    sl_send_reply("404", "x");
}"#,
    );
    has(
        &out,
        "X-H1: [SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK-1;rport ,] \
         [SIP/2.0/TCP 10.0.0.9:5070;branch=z9hG4bK-x;received=10.1.1.1;rport=7] \
         [SIP/2.0/TLS [2001:db8::1];branch=z9hG4bK-y;i=abc ,] [<null>] \
         [SIP/2.0/SCTP a.b:1 ,] [SIP/2.0/WS c.d;branch=z]\n",
    );
    has(
        &out,
        "X-H2: [<sip:r1.example;lr>] [<sip:r3.example;lr>] [<sip:b@h>] \
         [\"A, B\" <sip:a@h>;expires=5] [<sip:d@h>] [<sip:c@h>] [<null>]\n",
    );
    has(&out, "X-H3: [one, two] [<null>]\n");
}

#[test]
fn socket_user_length_acc_user_and_counts() {
    let out = reply_of(
        r#"request_route {
    append_to_reply("X-M: [$Ru] [$Rut] [$RAi] [$RAp] [$RAu] [$RAut] [$fUl] [$tUl] [$rUl] [$oUl] [$Au] [$AU] [$src_ip] [$conid]\r\n");
    $avp(x) = 1; $avp(x) = 2; $xavp(a=>b) = 1; $xavp(a=>c) = 2; $xavp(a[0]=>c) = 3;
    append_to_reply("X-C: [$cnt($avp(x))] [$cnt($avp(y))] [$cnt($xavp(a))] [$cnt($xavp(a=>c))] [$cnt($xavp(a=>b))]\r\n");
    append_to_reply("X-T: [$T(reply_code)] [$T(reply_reason)] [$T(branch_index)] [$T(ruid)] [$T(reply_type)] [$T(id_label)] [$T(id_index)] [$T_req($ci)] [$T_rpl($rs)]\r\n");
    sl_send_reply("404", "x");
}"#,
    );
    has(
        &out,
        "X-M: [sip:192.0.2.10:5060] [sip:192.0.2.10:5060;transport=udp] [192.0.2.10] [5060] \
         [sip:192.0.2.10:5060] [sip:192.0.2.10:5060;transport=udp] [4] [5] [5] [5] \
         [+bob@example.com] [+bob] [198.51.100.1] [<null>]\n",
    );
    has(&out, "X-C: [2] [0] [2] [2] [1]\n");
    has(
        &out,
        "X-T: [0] [] [0] [<null>] [<null>] [<null>] [<null>] [<null>] [<null>]\n",
    );
}

#[test]
fn names_kamailio_refuses_are_refused() {
    for (body, msg) in [
        ("$var(a) = $via0(params);", "unknown $via0(params)"),
        ("$var(a) = $T(reply_last);", "unknown $T(reply_last)"),
        // 5.6's tmx knows uri, flags and ruid only (checked live).
        (
            "$var(a) = $T_branch(location_ua);",
            "unknown $T_branch(location_ua)",
        ),
        ("$var(a) = $version(x);", "unknown $version(x)"),
        ("$var(a) = $T_req(ci);", "$T_req"),
    ] {
        let err = crate::modules::script_tests::compile_error(body);
        assert!(err.starts_with("t.cfg:2:"), "{err}");
        assert!(err.contains(msg), "{body}: {err}");
    }
}

#[test]
fn selects_read_as_kamailio_does() {
    let out = reply_of(
        r#"request_route {
    $var(a) = @via[1].params["branch"]; $var(b) = @via.params["rport"]; $var(c) = @via[2].params["received"];
    $var(d) = @via[2].params["rport"]; $var(e) = @via[3].params["i"]; $var(f) = @via[1].params["nonex"];
    append_to_reply("X-S1: [$var(a)] [$var(b)] [$var(c)] [$var(d)] [$var(e)] [$var(f)]\r\n");
    $var(a) = @contact; $var(b) = @contact.uri; $var(c) = @contact.uri.user; $var(d) = @contact.name; $var(e) = @contact.expires;
    append_to_reply("X-S2: [$var(a)] [$var(b)] [$var(c)] [$var(d)] [$var(e)]\r\n");
    $var(a) = @msg.header["X-Multi"]; $var(b) = @msg.first_line; $var(c) = @msg.type; $var(d) = @msg.header["X-None"];
    append_to_reply("X-S3: [$var(a)] [$var(b)] [$var(c)] [$var(d)]\r\n");
    $var(a) = @from; $var(b) = @from.params["tag"]; $var(c) = @to.tag; $var(d) = @via[1]; $var(e) = @via[9].host;
    append_to_reply("X-S4: [$var(a)] [$var(b)] [$var(c)] [$var(d)] [$var(e)]\r\n");
    sl_send_reply("404", "x");
}"#,
    );
    has(&out, "X-S1: [z9hG4bK-1] [] [10.1.1.1] [7] [abc] []\n");
    has(
        &out,
        "X-S2: [\"A, B\" <sip:a@h>;expires=5, <sip:b@h>] [sip:b@h] [b] [] []\n",
    );
    has(
        &out,
        "X-S3: [one, two] [INVITE sip:alice@192.0.2.10:5060 SIP/2.0] [1] []\n",
    );
    has(
        &out,
        "X-S4: [<sip:+bob@example.com>;tag=1] [1] [] \
         [SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK-1;rport ,] []\n",
    );
}

/// `set_advertised_address()`/`set_advertised_port()` change our Via only
/// (Kamailio 5.6 keeps the socket's address in Record-Route).
#[test]
fn advertised_address_and_port_name_our_via() {
    for (calls, want) in [
        (
            r#"set_advertised_address("192.0.2.7");"#,
            "Via: SIP/2.0/UDP 192.0.2.7;branch=",
        ),
        (
            r#"set_advertised_address("adv.example.com"); set_advertised_port(5999);"#,
            "Via: SIP/2.0/UDP adv.example.com:5999;branch=",
        ),
        (
            "set_advertised_port(5999);",
            "Via: SIP/2.0/UDP 192.0.2.10:5999;branch=",
        ),
    ] {
        let sent = run(
            &format!("request_route {{\n    {calls}\n    forward(\"192.0.2.99\");\n}}\n"),
            crate::modules::testutil::INVITE,
        );
        assert_eq!(sent.len(), 1, "{sent:?}");
        has(&sent[0], want);
    }
}

/// The global `advertised_address`/`advertised_port`: every message's Via
/// names them as if it began with `set_advertised_address/port()`, which
/// still override them; Record-Route keeps the socket's address and the
/// address does not become `myself` (all as Kamailio 5.6 did on loopback:
/// `Via: SIP/2.0/UDP 203.0.113.1` on a 5060 socket, `…:5062` on a 5062 one,
/// `…:5080` with `advertised_port=5080`; `uri==myself` false for it).
#[test]
fn global_advertised_address_names_every_via() {
    for (globals, calls, want) in [
        (
            "advertised_address=\"203.0.113.1\"",
            "",
            "Via: SIP/2.0/UDP 203.0.113.1;branch=",
        ),
        (
            "advertised_address=\"203.0.113.1\"\nadvertised_port=5080",
            "",
            "Via: SIP/2.0/UDP 203.0.113.1:5080;branch=",
        ),
        (
            "advertised_port=5080",
            "",
            "Via: SIP/2.0/UDP 192.0.2.10:5080;branch=",
        ),
        (
            "advertised_address=\"203.0.113.1\"",
            r#"set_advertised_address("192.0.2.7");"#,
            "Via: SIP/2.0/UDP 192.0.2.7;branch=",
        ),
    ] {
        let sent = run(
            &format!(
                "{globals}\nloadmodule \"rr.so\"\nrequest_route {{\n    {calls}\n    \
                 record_route();\n    forward(\"192.0.2.99\");\n}}\n"
            ),
            crate::modules::testutil::INVITE,
        );
        assert_eq!(sent.len(), 1, "{globals}: {sent:?}");
        has(&sent[0], want);
        has(&sent[0], "Record-Route: <sip:192.0.2.10;lr");
    }
    // The Request-URI naming the advertised address is not ours either.
    let sent = run(
        "advertised_address=\"203.0.113.1\"\nrequest_route {\n    $ru = \"sip:bob@203.0.113.1\";\n    \
         if (uri==myself) { append_hf(\"X-Mine: yes\\r\\n\"); }\n    forward(\"192.0.2.99\");\n}\n",
        crate::modules::testutil::INVITE,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(!sent[0].contains("X-Mine"), "{}", sent[0]);
}

/// The static branch, as Kamailio 5.6 printed each step of the same script.
#[test]
fn static_branch_set_append_and_reset() {
    let sent = run(
        r#"loadmodule "pv.so"
request_route {
    append_to_reply("X-A: [$sbranch(uri)] [$sbranch(dst_uri)] [$sbranch(q)] [$sbranch(flags)] [$sbranch(ruid)]\r\n");
    $sbranch(uri) = "sip:x@example.net";
    $sbranch(dst_uri) = "sip:10.0.0.5:5070";
    $sbranch(q) = 500;
    $sbranch(flags) = 3;
    $sbranch(path) = "<sip:p.example;lr>";
    sbranch_append();
    append_to_reply("X-C: [$branch(uri)] [$branch(dst_uri)] [$branch(q)] [$branch(flags)] [$branch(path)] [$branch(count)] [$ru] [$du]\r\n");
    sbranch_set_ruri();
    append_to_reply("X-D: [$ru] [$du] [$bf] [$rc]\r\n");
    $sbranch(q) = "abc";
    append_to_reply("X-D2: [$sbranch(q)]\r\n");
    sbranch_reset();
    append_to_reply("X-E: [$sbranch(uri)] [$sbranch(q)]\r\n");
    sl_send_reply("404", "x");
}"#,
        crate::modules::testutil::INVITE,
    );
    let out = &sent[0];
    has(out, "X-A: [<null>] [<null>] [<null>] [<null>] [<null>]\n");
    has(
        out,
        "X-C: [sip:x@example.net] [sip:10.0.0.5:5070] [500] [3] [<sip:p.example;lr>] [1] \
         [sip:bob@example.com] [<null>]\n",
    );
    has(
        out,
        "X-D: [sip:x@example.net] [sip:10.0.0.5:5070] [3] [1]\n",
    );
    has(out, "X-D2: [500]\n");
    has(out, "X-E: [<null>] [<null>]\n");
}

/// `$bR` as Kamailio 5.6 prints it (sidebyside parity_script.cfg): ", "
/// between branches, `<uri>;q=…` for a branch with a q.
#[test]
fn all_branches_with_their_q() {
    let sent = run(
        r#"loadmodule "corex.so"
request_route {
    append_to_reply("X-0: [$bR]\r\n");
    append_branch("sip:a@127.0.0.63:5080");
    append_branch("sip:b@127.0.0.64:5080", "0.5");
    $du = "sip:127.0.0.64:5090";
    append_branch();
    append_branch("sip:c@127.0.0.63", "1");
    append_branch("sip:d@127.0.0.63", "0");
    append_branch("sip:e@127.0.0.63", "0.125");
    append_to_reply("X-1: [$bR]\r\n");
    sl_send_reply("404", "x");
}"#,
        crate::modules::testutil::INVITE,
    );
    let out = &sent[0];
    has(out, "X-0: [<null>]\n");
    has(
        out,
        "X-1: [sip:a@127.0.0.63:5080, <sip:b@127.0.0.64:5080>;q=0.5, sip:bob@example.com, \
         <sip:c@127.0.0.63>;q=1, <sip:d@127.0.0.63>;q=0, <sip:e@127.0.0.63>;q=0.125]\n",
    );
}

/// `$ml` and `$mb` are the datagram as received, bytes past Content-Length
/// included (Kamailio's msg->len; sidebyside parity.cfg).
#[test]
fn message_length_counts_bytes_past_content_length() {
    let text = crate::modules::testutil::INVITE.replace("v=0\n", "v=0\nXYZ");
    let sent = run(
        r#"request_route {
    append_to_reply("X-Ml: $ml $(mb{s.len}) $(rb{s.len})\r\n");
    sl_send_reply("404", "x");
}"#,
        &text,
    );
    // The harness writes CRLF line ends: the body "v=0\r\n" (5) then "XYZ".
    let len = text.replace('\n', "\r\n").len();
    has(&sent[0], &format!("X-Ml: {len} {len} 5\n"));
}

/// corex's Via functions, as Kamailio 5.6 wrote the same Via:
/// `;branch=…;srvid=7;x=5;node=n1`.
#[test]
fn via_srvid_and_xavp_params() {
    let sent = run(
        r#"server_id=7
xavp_via_params="via"
loadmodule "corex.so"
request_route {
    via_add_srvid("1");
    $xavp(via=>node) = "n1";
    $xavp(via[0]=>x) = 5;
    via_add_xavp_params("1");
    forward("192.0.2.99");
}"#,
        crate::modules::testutil::INVITE,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    let via = sent[0].lines().nth(1).unwrap_or_default();
    assert!(
        via.starts_with("Via: SIP/2.0/UDP 192.0.2.10;branch="),
        "{via}"
    );
    assert!(via.ends_with(";srvid=7;x=5;node=n1"), "{via}");
}

/// `$mbu`: the message with the header edits applied (byte for byte what
/// Kamailio 5.6 printed for the same edits).
#[test]
fn message_buffer_with_changes() {
    let out = reply_of(
        r#"request_route {
    append_hf("X-A: 1\r\n");
    remove_hf("X-Multi");
    $var(m) = $mbu;
    if ($var(m) =~ "X-Multi") { append_to_reply("X-Has-Multi: yes\r\n"); }
    if ($var(m) =~ "\r\nX-A: 1\r\n\r\n$") { append_to_reply("X-A-Last: yes\r\n"); }
    append_to_reply("X-Len: $(mbu{s.len}) $ml\r\n");
    sl_send_reply("404", "x");
}"#,
    );
    assert!(!out.contains("X-Has-Multi"), "{out}");
    has(&out, "X-A-Last: yes\n");
    let before = MULTI.replace('\n', "\r\n").len();
    has(
        &out,
        &format!(
            "X-Len: {} {before}\n",
            before - "X-Multi: one, two\r\n".len() + 8
        ),
    );
}

#[test]
fn method_and_transport_ids_refer_to_and_ids() {
    let out = reply_of(
        r#"request_route {
    $var(s) = "abcdefghij";
    append_to_reply("X-P: [$rmid] [$mts] [$prid] [$rt] [$Rn] [$fsn] [$(sruid{s.substr,0,5})]\r\n");
    append_to_reply("X-F: [$(var(s){s.fmtlines,3,1}{s.encode.hexa})] [$(var(s){s.fmtlinet,2,2}{s.len})] [$(var(s){s.fmtlines,0,1})]\r\n");
    if ($sruid != $sruid) { append_to_reply("X-S: differ\r\n"); }
    sl_send_reply("404", "x");
}"#,
    );
    // As Kamailio 5.6 printed them (INVITE over UDP, no Refer-To).
    has(
        &out,
        "X-P: [1] [rq] [1] [<null>] [<null>] [<null>] [srid-]\n",
    );
    has(&out, "X-F: [610d0a20620d0a20636465666768696a] [14] []\n");
    has(&out, "X-S: differ\n");
}

#[test]
fn vn_starts_null_and_keeps_null_assigned() {
    let out = reply_of(
        r#"request_route {
    append_to_reply("X-1: [$vn(a)] [$var(a)]\r\n");
    $vn(a) = "set"; $var(a) = "v";
    append_to_reply("X-2: [$vn(a)] [$var(a)]\r\n");
    $vn(a) = $null; $var(a) = $null;
    append_to_reply("X-3: [$vn(a)] [$var(a)]\r\n");
    $vn(a) = 7;
    if ($vn(a) == 7) { append_to_reply("X-4: int\r\n"); }
    sl_send_reply("404", "x");
}"#,
    );
    // As Kamailio 5.6 printed them: $vn is not $var (which reads 0).
    has(&out, "X-1: [<null>] [0]\n");
    has(&out, "X-2: [set] [v]\n");
    has(&out, "X-3: [<null>] [0]\n");
    has(&out, "X-4: int\n");
}

/// `$_s(format)` prints its name as a format string, as a live Kamailio 5.6
/// printed `S=[a-OPTIONS-<null>-7] T=[plain] L=[3]` for the same script on an
/// OPTIONS (here an INVITE: 6 letters).
#[test]
fn format_string_pv() {
    let out = reply_of(
        r#"request_route {
    $var(x) = $_s(a-$rm-$avp(none)-$(rm{s.len}));
    append_to_reply("X-S: [$var(x)] [$_s(plain)] [$(_s(abc){s.len})] [$_s(sip:$rU@$fd)]\r\n");
    if ($_s(5) == 5) { append_to_reply("X-Eq: yes\r\n"); }
    sl_send_reply("404", "x");
}"#,
    );
    has(
        &out,
        "X-S: [a-INVITE-<null>-6] [plain] [3] [sip:alice@example.com]\n",
    );
    has(&out, "X-Eq: yes\n");
}

#[test]
fn format_string_pv_is_read_only() {
    let err = crate::modules::script_tests::compile_error(r#"$_s(a) = "b";"#);
    assert!(err.contains("$_s(a) is read-only"), "{err}");
}
