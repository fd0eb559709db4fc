//! tm / tmx script functions on an existing transaction, through the engine
//! sans-IO on virtual time: `t_relay_cancel`, `t_cancel_branches`,
//! `t_retransmit_reply`, `t_flush_flags`, `t_lookup_request`,
//! `t_lookup_cancel`, `t_get_status_code`, `t_grep_status`, `t_is_expired`
//! and the `t_is_*_route` tests (Kamailio 5.6 semantics).

mod common;

use std::time::{Duration, Instant};

use common::engine::{engine, inbound, sent_to};
use ringsip::modules::core::Engine;

const CALLER: &str = "127.0.0.2:5070";
const B1: &str = "127.0.0.3:5080";
const B2: &str = "127.0.0.4:5090";

const INVITE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKtmf1
Max-Forwards: 70
From: <sip:alice@127.0.0.2>;tag=a1
To: <sip:bob@127.0.0.1>
Call-ID: tm-functions-1
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.2:5070>
Content-Length: 0

";

fn cancel() -> String {
    INVITE
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
}

/// The callee's response to `relayed` (its Via lines echoed).
fn response(relayed: &str, status: &str, to_tag: &str) -> String {
    let vias: String = relayed
        .lines()
        .filter(|l| l.starts_with("Via:"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "SIP/2.0 {status}\n{vias}From: <sip:alice@127.0.0.2>;tag=a1\n\
         To: <sip:bob@127.0.0.1>;tag={to_tag}\nCall-ID: tm-functions-1\nCSeq: 1 INVITE\n\
         Content-Length: 0\n\n"
    )
}

fn cfg(body: &str) -> String {
    format!(
        "loadmodule \"tm.so\"\nloadmodule \"tmx.so\"\nloadmodule \"sl.so\"\n\
         loadmodule \"textops.so\"\nloadmodule \"corex.so\"\n{body}"
    )
}

/// Delivers `text` from `from` at `now`; returns what went out.
fn deliver(e: &mut Engine, from: &str, text: &str, now: Instant) -> Vec<ringsip::sip::Transmit> {
    let mut out = Vec::new();
    e.on_inbound(inbound(from, text), now, &mut out);
    out
}

/// The status lines sent to the caller.
fn up(out: &[ringsip::sip::Transmit]) -> Vec<String> {
    sent_to(out, CALLER)
        .iter()
        .map(|m| m.lines().next().unwrap_or("").to_string())
        .collect()
}

const TWO_BRANCHES: &str = r#"
request_route {
    if (is_method("CANCEL")) {
        if (!t_relay_cancel()) { sl_send_reply("500", "relay_cancel failed"); exit; }
        sl_send_reply("481", "relay_cancel found nothing");
        exit;
    }
    t_on_reply("R");
    t_on_failure("F");
    $ru = "sip:bob@127.0.0.3:5080";
    append_branch("sip:bob@127.0.0.4:5090");
    t_relay();
}
onreply_route[R] {
    REPLY
}
failure_route[F] {
    FAILURE
}
"#;

fn two(reply: &str, failure: &str) -> String {
    cfg(&TWO_BRANCHES
        .replace("REPLY", reply)
        .replace("FAILURE", failure))
}

/// Both branches relayed: (engine, now, INVITE to B1, INVITE to B2).
fn forked(cfg: &str) -> (Engine, Instant, String, String) {
    let mut e = engine(cfg);
    let t0 = Instant::now();
    let out = deliver(&mut e, CALLER, INVITE, t0);
    let b1 = sent_to(&out, B1).pop().expect("branch 1");
    let b2 = sent_to(&out, B2).pop().expect("branch 2");
    (e, t0, b1, b2)
}

#[test]
fn t_relay_cancel_cancels_the_branches_and_ends_the_script() {
    let (mut e, t0, b1, _) = forked(&two("", ""));
    deliver(&mut e, B1, &response(&b1, "180 Ringing", "r1"), t0);
    let out = deliver(&mut e, CALLER, &cancel(), t0);
    assert_eq!(up(&out), vec!["SIP/2.0 200 canceling"], "{out:?}");
    assert!(
        sent_to(&out, B1).iter().any(|m| m.starts_with("CANCEL ")),
        "{out:?}"
    );
}

#[test]
fn t_relay_cancel_of_an_unknown_call_returns_true() {
    let mut e = engine(&two("", ""));
    let out = deliver(&mut e, CALLER, &cancel(), Instant::now());
    assert_eq!(up(&out), vec!["SIP/2.0 481 relay_cancel found nothing"]);
}

#[test]
fn t_cancel_branches_chooses_among_the_pending_branches() {
    let reply = r#"if (status == "183") { t_cancel_branches("WHICH"); }"#;
    for (which, to_b1, to_b2) in [
        ("all", true, true),
        ("others", false, true),
        ("this", true, false),
    ] {
        let (mut e, t0, b1, b2) = forked(&two(&reply.replace("WHICH", which), ""));
        deliver(&mut e, B2, &response(&b2, "180 Ringing", "r2"), t0);
        let out = deliver(&mut e, B1, &response(&b1, "183 Progress", "r1"), t0);
        let canceled = |dst| sent_to(&out, dst).iter().any(|m| m.starts_with("CANCEL "));
        assert_eq!((canceled(B1), canceled(B2)), (to_b1, to_b2), "{which}");
    }
}

#[test]
fn t_cancel_branches_is_refused_outside_onreply_route_and_with_a_bad_word() {
    for (body, at) in [
        ("request_route {\n    t_cancel_branches(\"all\");\n}\n", "t.cfg:7:5:"),
        (
            "request_route {\n    t_on_reply(\"R\");\n}\nonreply_route[R] {\n    t_cancel_branches(\"some\");\n}\n",
            "t.cfg:10:5:",
        ),
    ] {
        let text = compile_error(&cfg(body));
        assert!(text.contains(at), "{text}");
    }
}

fn compile_error(cfg: &str) -> String {
    let files = ringsip::script::MemoryFiles::default();
    let parsed =
        ringsip::script::parse_str("t.cfg", cfg, &ringsip::script::Options::with_files(&files))
            .unwrap();
    ringsip::script::compile::compile(&parsed)
        .err()
        .map(|d| d.rendered().join("\n"))
        .unwrap_or_else(|| panic!("accepted:\n{cfg}"))
}

#[test]
fn t_grep_status_in_failure_route_leaves_out_the_completing_reply() {
    // Kamailio 5.6 (loadtest/sidebyside fork_486_then_404): a 486 then a
    // 404 ending the transaction greps 486, not 404.
    let failure = r#"$var(r) = "";
    if (t_grep_status("486")) { $var(r) = $var(r) + "486 "; }
    if (t_grep_status("404")) { $var(r) = $var(r) + "404 "; }
    t_reply("600", "seen $var(r)");"#;
    let (mut e, t0, b1, b2) = forked(&two("", failure));
    deliver(&mut e, B1, &response(&b1, "486 Busy Here", "r1"), t0);
    let out = deliver(&mut e, B2, &response(&b2, "404 Not Found", "r2"), t0);
    assert_eq!(up(&out), vec!["SIP/2.0 600 seen 486 "]);
}

#[test]
fn t_grep_status_sees_any_branchs_final_in_failure_route() {
    let failure = r#"t_get_status_code(); $var(s) = $rc;
    append_to_reply("X-Status: $var(s)\r\n");
    if (t_grep_status("486")) { t_reply("600", "a branch was busy"); }
    else { t_reply("500", "no busy branch"); }"#;
    let (mut e, t0, b1, b2) = forked(&two("", failure));
    deliver(&mut e, B1, &response(&b1, "486 Busy Here", "r1"), t0);
    let out = deliver(&mut e, B2, &response(&b2, "404 Not Found", "r2"), t0);
    assert_eq!(up(&out), vec!["SIP/2.0 600 a branch was busy"]);
    // In failure_route t_get_status_code() is the winning code (Kamailio
    // 5.6, seen live), and t_reply carries append_to_reply()'s header.
    let reply = sent_to(&out, CALLER).pop().unwrap();
    assert!(
        reply.contains("X-Status: 404\r\n"),
        "the winner (404 before 486): {reply}"
    );
}

#[test]
fn route_kind_tests_answer_per_route() {
    let failure = r#"
    $var(k) = "";
    if (t_is_failure_route()) { $var(k) = $var(k) + "F"; }
    if (t_is_request_route()) { $var(k) = $var(k) + "Q"; }
    if (t_is_reply_route()) { $var(k) = $var(k) + "R"; }
    t_reply("500", "$var(k)");"#;
    let reply = r#"
    if (t_is_reply_route() && !t_is_request_route() && !t_is_failure_route()) {
        append_hf("X-Kind: reply\r\n");
    }"#;
    let (mut e, t0, b1, b2) = forked(&two(reply, failure));
    let out = deliver(&mut e, B1, &response(&b1, "180 Ringing", "r1"), t0);
    let ringing = sent_to(&out, CALLER);
    assert!(ringing[0].contains("X-Kind: reply\r\n"), "{ringing:?}");
    deliver(&mut e, B1, &response(&b1, "486 Busy Here", "r1"), t0);
    let out = deliver(&mut e, B2, &response(&b2, "486 Busy Here", "r2"), t0);
    assert_eq!(up(&out), vec!["SIP/2.0 500 F"]);
}

#[test]
fn t_flush_flags_gives_the_transaction_the_flags_set_after_t_relay() {
    for (flush, seen) in [("", false), ("t_flush_flags();", true)] {
        let body = format!(
            r#"
request_route {{
    t_on_reply("R");
    $du = "sip:127.0.0.3:5080";
    t_relay();
    setflag(2);
    {flush}
}}
onreply_route[R] {{
    if (isflagset(2)) {{ append_hf("X-Flag: 2\r\n"); }}
}}
"#
        );
        let mut e = engine(&cfg(&body));
        let t0 = Instant::now();
        let out = deliver(&mut e, CALLER, INVITE, t0);
        let relayed = sent_to(&out, B1).pop().expect("relayed");
        let out = deliver(&mut e, B1, &response(&relayed, "180 Ringing", "r1"), t0);
        let ringing = sent_to(&out, CALLER);
        assert_eq!(
            ringing[0].contains("X-Flag: 2"),
            seen,
            "{flush}: {ringing:?}"
        );
    }
}

#[test]
fn t_get_status_code_and_t_retransmit_reply_on_a_local_transaction() {
    let body = r#"
request_route {
    t_newtran();
    t_get_status_code();
    $var(before) = $rc;
    t_reply("180", "Ringing");
    t_get_status_code();
    t_reply("486", "$var(before) then $rc");
    t_retransmit_reply();
}
"#;
    let mut e = engine(&cfg(body));
    let out = deliver(&mut e, CALLER, INVITE, Instant::now());
    assert_eq!(
        up(&out),
        vec![
            "SIP/2.0 180 Ringing",
            "SIP/2.0 486 -1 then 180",
            "SIP/2.0 486 -1 then 180"
        ]
    );
}

#[test]
fn t_lookup_request_is_true_once_the_transaction_exists() {
    let body = r#"
request_route {
    $var(a) = "no";
    if (t_lookup_request()) { $var(a) = "yes"; }
    t_newtran();
    $var(b) = "no";
    if (t_lookup_request()) { $var(b) = "yes"; }
    t_reply("404", "$var(a) $var(b)");
}
"#;
    let mut e = engine(&cfg(body));
    let out = deliver(&mut e, CALLER, INVITE, Instant::now());
    assert_eq!(up(&out), vec!["SIP/2.0 404 no yes"]);
}

#[test]
fn t_lookup_cancel_finds_the_invite_and_with_1_takes_its_flags() {
    for (arg, reason) in [("", "found 0"), ("1", "found 1")] {
        let body = format!(
            r#"
request_route {{
    if (is_method("CANCEL")) {{
        if (!t_lookup_cancel({arg})) {{ sl_send_reply("481", "not found"); exit; }}
        $var(f) = 0;
        if (isflagset(4)) {{ $var(f) = 1; }}
        sl_send_reply("499", "found $var(f)");
        exit;
    }}
    setflag(4);
    $du = "sip:127.0.0.3:5080";
    t_relay();
}}
"#
        );
        let mut e = engine(&cfg(&body));
        let t0 = Instant::now();
        deliver(&mut e, CALLER, INVITE, t0);
        let out = deliver(&mut e, CALLER, &cancel(), t0);
        assert_eq!(up(&out), vec![format!("SIP/2.0 499 {reason}")], "{arg}");
        // A CANCEL of another call matches nothing.
        let other = cancel()
            .replace("tm-functions-1", "other-call")
            .replace("z9hG4bKtmf1", "z9hG4bKother");
        let out = deliver(&mut e, CALLER, &other, t0);
        assert_eq!(up(&out), vec!["SIP/2.0 481 not found"], "{arg}");
    }
}

#[test]
fn t_is_expired_in_failure_route_after_the_max_lifetime() {
    let body = r#"
request_route {
    t_set_max_lifetime(1000, 0);
    t_on_failure("F");
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
failure_route[F] {
    if (t_is_expired()) { t_reply("504", "expired"); } else { t_reply("500", "alive"); }
}
"#;
    let body_busy = body.replace("t_set_max_lifetime(1000, 0);", "");
    // The lifetime ends: failure_route sees it.
    let mut e = engine(&cfg(body));
    let t0 = Instant::now();
    deliver(&mut e, CALLER, INVITE, t0);
    let mut upstream = Vec::new();
    let mut now = t0;
    while let Some(at) = e
        .next_deadline()
        .filter(|at| *at <= t0 + Duration::from_secs(3))
    {
        now = at.max(now);
        let mut out = Vec::new();
        e.on_timer(now, &mut out);
        upstream.extend(up(&out));
    }
    assert!(
        upstream.iter().any(|l| l == "SIP/2.0 504 expired"),
        "{upstream:?}"
    );
    // A busy callee before then: not expired.
    let mut e = engine(&cfg(&body_busy));
    let out = deliver(&mut e, CALLER, INVITE, t0);
    let relayed = sent_to(&out, B1).pop().expect("relayed");
    let out = deliver(&mut e, B1, &response(&relayed, "486 Busy Here", "r1"), t0);
    assert_eq!(up(&out), vec!["SIP/2.0 500 alive"]);
}

const BY_CALLID: &str = r#"
request_route {
    if (is_method("MESSAGE")) {
        ACTION
        $var(rc) = $rc;
        sl_send_reply("200", "rc $var(rc)");
        exit;
    }
    if (is_method("CANCEL|ACK")) { exit; }
    t_on_failure("F");
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
failure_route[F] {
    if (isflagset(22)) { t_reply("487", "flag 22 set"); }
}
"#;

/// An out-of-band MESSAGE from another client that triggers the action.
const TRIGGER: &str = "MESSAGE sip:proxy@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.9:5000;branch=z9hG4bKtrigger
Max-Forwards: 70
From: <sip:admin@127.0.0.9>;tag=t1
To: <sip:proxy@127.0.0.1>
Call-ID: trigger-1
CSeq: 7 MESSAGE
Content-Length: 0

";

#[test]
fn t_reply_callid_answers_the_invite_of_another_call() {
    for (callid, cseq, found) in [
        ("tm-functions-1", "1", true),
        ("tm-functions-1", "2", false),
        ("no-such-call", "1", false),
    ] {
        let action =
            format!("t_reply_callid(\"{callid}\", \"{cseq}\", \"486\", \"Replied remotely\");");
        let mut e = engine(&cfg(&BY_CALLID.replace("ACTION", &action)));
        let t0 = Instant::now();
        let out = deliver(&mut e, CALLER, INVITE, t0);
        let relayed = sent_to(&out, B1).pop().expect("relayed");
        deliver(&mut e, B1, &response(&relayed, "180 Ringing", "r1"), t0);
        let out = deliver(&mut e, "127.0.0.9:5000", TRIGGER, t0);
        let trigger: Vec<String> = sent_to(&out, "127.0.0.9:5000")
            .iter()
            .map(|m| m.lines().next().unwrap_or("").to_string())
            .collect();
        let rc = if found { "1" } else { "-1" };
        assert_eq!(
            trigger,
            vec![format!("SIP/2.0 200 rc {rc}")],
            "{callid} {cseq}"
        );
        let caller: Vec<String> = up(&out);
        if found {
            assert_eq!(caller, vec!["SIP/2.0 486 Replied remotely"]);
            assert!(
                sent_to(&out, B1).iter().any(|m| m.starts_with("CANCEL ")),
                "the ringing branch is canceled: {out:?}"
            );
        } else {
            assert!(caller.is_empty(), "{caller:?}");
        }
    }
}

#[test]
fn t_cancel_callid_cancels_with_a_reason_and_flags_the_transaction() {
    let action = r#"t_cancel_callid("tm-functions-1", "1", "22", "200");"#;
    let mut e = engine(&cfg(&BY_CALLID.replace("ACTION", action)));
    let t0 = Instant::now();
    let out = deliver(&mut e, CALLER, INVITE, t0);
    let relayed = sent_to(&out, B1).pop().expect("relayed");
    deliver(&mut e, B1, &response(&relayed, "180 Ringing", "r1"), t0);
    let out = deliver(&mut e, "127.0.0.9:5000", TRIGGER, t0);
    let cancel = sent_to(&out, B1)
        .into_iter()
        .find(|m| m.starts_with("CANCEL "))
        .unwrap_or_else(|| panic!("CANCEL downstream: {out:?}"));
    assert!(cancel.contains("Reason: SIP;cause=200\r\n"), "{cancel}");
    // The callee ends the INVITE 487; the failure route sees flag 22.
    let out = deliver(
        &mut e,
        B1,
        &response(&relayed, "487 Request Terminated", "r1"),
        t0,
    );
    assert_eq!(up(&out), vec!["SIP/2.0 487 flag 22 set"]);
}
