//! The engine with a stateful configuration, driven sans-IO on virtual time:
//! packets in, transmissions out, `now` advanced by hand (no sockets, no sleeps).

mod common;

use common::engine::{engine, inbound, sent_to};
use ringsip::modules::core::Engine;
use std::time::{Duration, Instant};

const CALLER: &str = "127.0.0.2:5070";
const CALLEE: &str = "127.0.0.3:5080";

const CONFIG: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
modparam("tm", "fr_timer", 2000)
modparam("tm", "fr_inv_timer", 2000)
request_route {
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
"#;

const INVITE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKcaller1
Max-Forwards: 70
From: <sip:alice@127.0.0.2>;tag=a1
To: <sip:bob@127.0.0.1>
Call-ID: engine-tm-1
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.2:5070>
Content-Length: 0

";

/// The engine of `cfg` once it relayed the caller's INVITE, the time it
/// did, and the INVITE as the callee got it.
fn invite_relayed(cfg: &str) -> (Engine, Instant, String) {
    let mut e = engine(cfg);
    let t0 = Instant::now();
    let mut out = Vec::new();
    e.on_inbound(inbound(CALLER, INVITE), t0, &mut out);
    let relayed = sent_to(&out, CALLEE).pop().expect("INVITE relayed");
    (e, t0, relayed)
}

/// The callee's response to the INVITE `relayed` to it: `status` (e.g.
/// `486 Busy Here`), the INVITE's Via and Record-Route lines, To tag
/// `to_tag`, and `extra` header lines.
fn response(relayed: &str, status: &str, to_tag: &str, extra: &str) -> String {
    let echoed: String = relayed
        .lines()
        .filter(|l| l.starts_with("Via:") || l.starts_with("Record-Route:"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "SIP/2.0 {status}\n{echoed}From: <sip:alice@127.0.0.2>;tag=a1\n\
         To: <sip:bob@127.0.0.1>;tag={to_tag}\nCall-ID: engine-tm-1\nCSeq: 1 INVITE\n\
         {extra}Content-Length: 0\n\n"
    )
}

#[test]
fn timer_a_retransmits_then_timeout_gives_408_upstream() {
    let mut e = engine(CONFIG);
    let t0 = Instant::now();
    let mut out = Vec::new();
    e.on_inbound(inbound(CALLER, INVITE), t0, &mut out);
    assert_eq!(sent_to(&out, CALLEE).len(), 1, "INVITE relayed: {out:?}");
    assert!(
        sent_to(&out, CALLER)
            .iter()
            .any(|m| m.starts_with("SIP/2.0 100")),
        "100 Trying"
    );
    assert_eq!(
        e.transactions().map(|t| t.len()),
        Some(1),
        "one transaction"
    );
    let deadline = e.next_deadline().expect("Timer A armed");
    assert!(deadline <= t0 + Duration::from_millis(500), "T1 = 500 ms");

    // Timer A: 500 ms, then 1 s later.
    let mut retrans = 0;
    let mut upstream = Vec::new();
    let mut now = t0;
    while now < t0 + Duration::from_secs(4) {
        now += Duration::from_millis(50);
        if e.next_deadline().is_some_and(|d| d <= now) {
            let mut out = Vec::new();
            e.on_timer(now, &mut out);
            retrans += sent_to(&out, CALLEE)
                .iter()
                .filter(|m| m.starts_with("INVITE"))
                .count();
            upstream.extend(sent_to(&out, CALLER));
        }
    }
    assert!(
        retrans >= 2,
        "INVITE retransmitted at 0.5 s and 1.5 s: {retrans}"
    );
    assert!(
        upstream.iter().any(|m| m.starts_with("SIP/2.0 408")),
        "408 after fr_inv_timer: {upstream:?}"
    );
}

#[test]
fn onreply_route_sees_the_flags_set_before_t_relay() {
    // Kamailio's stock config sets FLT_NATS in request_route and tests it
    // in onreply_route (route[NATMANAGE]) to relay the 200's SDP.
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
request_route {
    setflag(5);
    $du = "sip:127.0.0.3:5080";
    t_on_reply("R");
    t_relay();
}
onreply_route[R] {
    if (isflagset(5)) { append_hf("X-Flag: set\r\n"); }
}
"#;
    let (mut e, t0, relayed) = invite_relayed(cfg);
    let reply = response(&relayed, "180 Ringing", "b1", "");
    let mut out = Vec::new();
    e.on_inbound(inbound(CALLEE, &reply), t0, &mut out);
    let up = sent_to(&out, CALLER);
    assert_eq!(up.len(), 1, "{up:?}");
    assert!(up[0].contains("X-Flag: set\r\n"), "{}", up[0]);
}

/// The callee of `cfg`'s relayed INVITE answers 180 then 486; what went
/// up to the caller, and the INVITE the failure_route relayed to
/// 127.0.0.4:5090.
fn rings_then_busy(cfg: &str) -> (Engine, Instant, Vec<String>, String) {
    let (mut e, t0, first) = invite_relayed(cfg);
    let mut out = Vec::new();
    for status in ["180 Ringing", "486 Busy Here"] {
        e.on_inbound(
            inbound(CALLEE, &response(&first, status, "b1", "")),
            t0,
            &mut out,
        );
    }
    let up = sent_to(&out, CALLER);
    let second = sent_to(&out, "127.0.0.4:5090")
        .pop()
        .unwrap_or_else(|| panic!("second branch: {out:?}"));
    (e, t0, up, second)
}

/// AVPs and XAVPs live with the transaction, as in Kamailio (checked
/// live with this exchange): onreply_route reads what request_route set
/// (after `t_relay()` too) and what an earlier onreply_route set; failure_route reads both, and
/// what it sets is read by the onreply_route of the branch it adds (which
/// keeps the transaction's onreply_route without arming it again).
#[test]
fn avps_live_with_the_transaction_across_reply_and_failure_routes() {
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
request_route {
    $avp(a) = "req";
    $xavp(x=>f) = "xreq";
    $du = "sip:127.0.0.3:5080";
    t_on_reply("R");
    t_on_failure("F");
    t_relay();
    $avp(late) = "after";
}
onreply_route[R] {
    append_hf("X-R: $rs a=$avp(a) b=$avp(b) c=$avp(c) x=$xavp(x=>f) late=$avp(late)\r\n");
    $avp(b) = "rep-" + $rs;
}
failure_route[F] {
    append_hf("X-F: a=$avp(a) b=$avp(b) c=$avp(c) x=$xavp(x=>f)\r\n");
    if ($avp(c) == $null) {
        $avp(c) = "fail1";
        $du = "sip:127.0.0.4:5090";
        t_on_failure("F");
        t_relay();
    }
}
"#;
    let header = |m: &str, name: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim_end().to_string())
            .unwrap_or_else(|| panic!("no {name} in\n{m}"))
    };
    let (mut e, t0, up, second) = rings_then_busy(cfg);
    assert_eq!(
        header(&up[0], "X-R: "),
        "180 a=req b=<null> c=<null> x=xreq late=after"
    );
    assert_eq!(header(&second, "X-F: "), "a=req b=rep-486 c=<null> x=xreq");
    let mut out = Vec::new();
    e.on_inbound(
        inbound(
            "127.0.0.4:5090",
            &response(&second, "180 Ringing", "b2", ""),
        ),
        t0,
        &mut out,
    );
    let up = sent_to(&out, CALLER);
    assert_eq!(up.len(), 1, "{out:?}");
    assert_eq!(
        header(&up[0], "X-R: "),
        "180 a=req b=rep-486 c=fail1 x=xreq late=after"
    );
}

/// Flags: those set before `t_relay()` and in onreply_route stay with the
/// transaction (the later reply and failure routes see them), those set
/// after `t_relay()` do not (Kamailio 5.6, checked live).
#[test]
fn flags_set_in_onreply_route_stay_with_the_transaction() {
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
request_route {
    setflag(3);
    $du = "sip:127.0.0.3:5080";
    t_on_reply("R");
    t_on_failure("F");
    t_relay();
    setflag(4);
}
onreply_route[R] {
    append_hf("X-R: $rs mf=$mf\r\n");
    setflag(7);
}
failure_route[F] {
    append_hf("X-F: mf=$mf\r\n");
    $du = "sip:127.0.0.4:5090";
    t_relay();
}
"#;
    let (_, _, up, second) = rings_then_busy(cfg);
    assert!(up[0].contains("X-R: 180 mf=8\r\n"), "{}", up[0]);
    assert!(second.contains("X-F: mf=136\r\n"), "{second}");
}

/// Branch flags go with each branch: branch_route's changes and
/// onreply_route's are read by the branch's later replies, failure_route
/// reads the failed branch's, and the branch it adds carries them on
/// (Kamailio 5.6, checked live).
#[test]
fn branch_flags_go_with_their_branch() {
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "kex.so"
request_route {
    setbflag(2);
    $du = "sip:127.0.0.3:5080";
    t_on_reply("R");
    t_on_failure("F");
    t_on_branch("B");
    t_relay();
}
branch_route[B] {
    setbflag(5);
}
onreply_route[R] {
    append_hf("X-R: $rs bf=$bf\r\n");
    setbflag(6);
}
failure_route[F] {
    append_hf("X-F: bf=$bf\r\n");
    $du = "sip:127.0.0.4:5090";
    t_relay();
}
"#;
    let (mut e, t0, up, second) = rings_then_busy(cfg);
    assert!(up[0].contains("X-R: 180 bf=36\r\n"), "{}", up[0]);
    assert!(second.contains("X-F: bf=100\r\n"), "{second}");
    let mut out = Vec::new();
    e.on_inbound(
        inbound(
            "127.0.0.4:5090",
            &response(&second, "180 Ringing", "b2", ""),
        ),
        t0,
        &mut out,
    );
    let up = sent_to(&out, CALLER);
    assert!(up[0].contains("X-R: 180 bf=100\r\n"), "{}", up[0]);
}

#[test]
fn failure_route_branch_keeps_what_request_route_did_to_the_request() {
    // Kamailio keeps the request_route's changes (Record-Route, the
    // decremented Max-Forwards, added headers) with the transaction's copy
    // of the request: a branch added in failure_route carries them, plus
    // the failure_route's own changes, and no second Record-Route (a
    // second record_route() is refused as a double attempt).
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
request_route {
    mf_process_maxfwd_header("10");
    record_route();
    append_hf("X-Req: 1\r\n");
    $du = "sip:127.0.0.3:5080";
    t_on_failure("NEXT");
    t_relay();
}
failure_route[NEXT] {
    # Refused: the request has its Record-Route already.
    record_route();
    append_hf("X-Fail: 1\r\n");
    $du = "sip:127.0.0.4:5090";
    t_relay();
}
"#;
    let (mut e, t0, first) = invite_relayed(cfg);
    let busy = response(&first, "486 Busy Here", "b1", "");
    let mut out = Vec::new();
    e.on_inbound(inbound(CALLEE, &busy), t0, &mut out);
    let second = sent_to(&out, "127.0.0.4:5090")
        .pop()
        .unwrap_or_else(|| panic!("second branch: {out:?}"));
    for (text, name) in [(&first, "first branch"), (&second, "failure_route branch")] {
        assert_eq!(
            text.matches("Record-Route:").count(),
            1,
            "{name}: one Record-Route\n{text}"
        );
        assert!(text.contains("Max-Forwards: 69\r\n"), "{name}\n{text}");
        assert!(text.contains("X-Req: 1\r\n"), "{name}\n{text}");
    }
    assert!(!first.contains("X-Fail"), "{first}");
    assert!(second.contains("X-Fail: 1\r\n"), "{second}");
    assert!(
        second.starts_with("INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n"),
        "{second}"
    );
}

#[test]
fn a_503_goes_upstream_as_a_500_of_our_own() {
    // remap_503_500 (on by default): Kamailio answers with a reply of its
    // own (its To tag, no Record-Route, none of the 503's other headers),
    // code 500 with the 503's reason phrase.
    let cfg = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
request_route {
    record_route();
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
"#;
    let (mut e, t0, relayed) = invite_relayed(cfg);
    let unavailable = response(
        &relayed,
        "503 Service Unavailable",
        "callee-tag",
        "Retry-After: 30\n",
    );
    let mut out = Vec::new();
    e.on_inbound(inbound(CALLEE, &unavailable), t0, &mut out);
    let up = sent_to(&out, CALLER);
    assert_eq!(up.len(), 1, "{up:?}");
    let reply = &up[0];
    assert!(
        reply.starts_with("SIP/2.0 500 Service Unavailable\r\n"),
        "{reply}"
    );
    assert!(!reply.contains("callee-tag"), "our own To tag: {reply}");
    assert!(reply.contains("To: <sip:bob@127.0.0.1>;tag="), "{reply}");
    assert!(!reply.contains("Record-Route"), "{reply}");
    assert!(!reply.contains("Retry-After"), "{reply}");
    assert!(
        reply.contains("Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKcaller1"),
        "{reply}"
    );
    assert_eq!(reply.matches("Via:").count(), 1, "{reply}");
    // The callee's 503 is acknowledged hop by hop.
    assert!(
        sent_to(&out, CALLEE).iter().any(|m| m.starts_with("ACK ")),
        "{out:?}"
    );
}

#[test]
fn only_t_relay_making_the_transaction_answers_100_trying() {
    // Kamailio's automatic 100 Trying belongs to t_relay() creating the
    // transaction: a transaction made by t_newtran() (the stock config's
    // route[LOCATION] does it before send_reply("404")) sends none, even
    // when t_relay() forwards on it afterwards.
    let cases = [
        (
            "t_newtran(); t_reply(\"404\", \"Not Found\");",
            false,
            "SIP/2.0 404",
        ),
        (
            "t_newtran(); send_reply(\"404\", \"Not Found\");",
            false,
            "SIP/2.0 404",
        ),
        (
            "t_newtran(); $du = \"sip:127.0.0.3:5080\"; t_relay();",
            false,
            "",
        ),
        ("$du = \"sip:127.0.0.3:5080\"; t_relay();", true, ""),
    ];
    for (body, trying, final_reply) in cases {
        let cfg = format!(
            "loadmodule \"tm.so\"\nloadmodule \"sl.so\"\nrequest_route {{\n    {body}\n}}\n"
        );
        let mut e = engine(&cfg);
        let mut out = Vec::new();
        e.on_inbound(inbound(CALLER, INVITE), Instant::now(), &mut out);
        let up = sent_to(&out, CALLER);
        assert_eq!(
            up.iter().any(|m| m.starts_with("SIP/2.0 100")),
            trying,
            "{body}: {up:?}"
        );
        if !final_reply.is_empty() {
            assert!(
                up.iter().any(|m| m.starts_with(final_reply)),
                "{body}: {up:?}"
            );
        } else {
            assert_eq!(sent_to(&out, CALLEE).len(), 1, "{body}: relayed");
        }
    }
}

/// What went to one side: (ms from the start, first line), in order.
type Sent = Vec<(u64, String)>;

/// Moves `e` through `span` of virtual time from `t0` (timers fired as they
/// fall due); what went to the caller and to the callee, each with its time
/// in ms from `t0`.
fn timeline(e: &mut Engine, t0: Instant, span: Duration) -> (Sent, Sent) {
    let (mut up, mut down) = (Vec::new(), Vec::new());
    let mut now = t0;
    while let Some(at) = e.next_deadline().filter(|at| *at <= t0 + span) {
        now = at.max(now);
        let mut out = Vec::new();
        e.on_timer(now, &mut out);
        let ms = now.duration_since(t0).as_millis() as u64;
        let first = |m: &String| m.lines().next().unwrap_or("").to_string();
        up.extend(sent_to(&out, CALLER).iter().map(|m| (ms, first(m))));
        down.extend(sent_to(&out, CALLEE).iter().map(|m| (ms, first(m))));
    }
    (up, down)
}

fn relay_cfg(before: &str) -> String {
    format!(
        "loadmodule \"tm.so\"\nloadmodule \"sl.so\"\n\
         modparam(\"tm\", \"fr_inv_timer\", 60000)\nmodparam(\"tm\", \"fr_timer\", 60000)\n\
         request_route {{\n    {before}\n    $du = \"sip:127.0.0.3:5080\";\n    t_relay();\n}}\n"
    )
}

#[test]
fn t_set_auto_inv_100_0_sends_no_trying() {
    for (body, trying) in [("", true), ("t_set_auto_inv_100(0);", false)] {
        let mut e = engine(&relay_cfg(body));
        let mut out = Vec::new();
        e.on_inbound(inbound(CALLER, INVITE), Instant::now(), &mut out);
        let up = sent_to(&out, CALLER);
        assert_eq!(
            up.iter().any(|m| m.starts_with("SIP/2.0 100")),
            trying,
            "{body}: {up:?}"
        );
        assert_eq!(sent_to(&out, CALLEE).len(), 1, "{body}: relayed");
    }
}

#[test]
fn t_set_retr_changes_the_retransmission_intervals_and_t_reset_retr_undoes_it() {
    for (body, expected) in [
        ("", vec![500, 1500, 3500]),
        ("t_set_retr(1000, 0);", vec![1000, 3000, 7000]),
        // INVITE retransmissions double without the T2 cap (RFC 3261 §17.1.1.2).
        ("t_set_retr(200, 400);", vec![200, 600, 1400]),
        (
            "t_set_retr(1000, 0); t_reset_retr();",
            vec![500, 1500, 3500],
        ),
    ] {
        let (mut e, t0, _) = invite_relayed(&relay_cfg(body));
        let (_, down) = timeline(
            &mut e,
            t0,
            Duration::from_millis(expected[expected.len() - 1]),
        );
        let at: Vec<u64> = down
            .iter()
            .filter(|(_, l)| l.starts_with("INVITE"))
            .map(|(ms, _)| *ms)
            .collect();
        assert_eq!(at, expected, "{body}");
    }
}

#[test]
fn t_set_retr_on_the_existing_transaction_applies_from_the_next_interval() {
    let cfg = "loadmodule \"tm.so\"\nloadmodule \"sl.so\"\n\
         modparam(\"tm\", \"fr_timer\", 60000)\n\
         request_route {\n    $du = \"sip:127.0.0.3:5080\";\n    t_relay();\n    t_set_retr(0, 600);\n}\n";
    let mut e = engine(cfg);
    let t0 = Instant::now();
    let message = INVITE
        .replace("INVITE sip:", "MESSAGE sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 MESSAGE");
    let mut out = Vec::new();
    e.on_inbound(inbound(CALLER, &message), t0, &mut out);
    assert_eq!(sent_to(&out, CALLEE).len(), 1, "relayed");
    let (_, down) = timeline(&mut e, t0, Duration::from_millis(2900));
    let at: Vec<u64> = down.iter().map(|(ms, _)| *ms).collect();
    // Timer E: T1 stays 500 ms, the doubling is capped at the new T2 (600 ms).
    assert_eq!(at, vec![500, 1100, 1700, 2300, 2900], "{down:?}");
}

#[test]
fn t_set_max_lifetime_ends_the_invite_before_fr_inv_timer() {
    for (body, ends) in [
        ("t_set_max_lifetime(2000, 0);", Some(2000)),
        ("t_set_max_lifetime(2000, 0); t_reset_max_lifetime();", None),
        ("t_set_max_lifetime(0, 1000);", None),
    ] {
        let (mut e, t0, _) = invite_relayed(&relay_cfg(body));
        let (up, _) = timeline(&mut e, t0, Duration::from_millis(10_000));
        let timeout = up.iter().find(|(_, l)| l.starts_with("SIP/2.0 408"));
        assert_eq!(timeout.map(|(ms, _)| *ms), ends, "{body}: {up:?}");
    }
}

#[test]
fn t_set_max_lifetime_on_the_existing_transaction_counts_from_now() {
    let cfg = "loadmodule \"tm.so\"\nloadmodule \"sl.so\"\n\
         modparam(\"tm\", \"fr_inv_timer\", 60000)\n\
         request_route {\n    $du = \"sip:127.0.0.3:5080\";\n    t_relay();\n    t_set_max_lifetime(1500, 0);\n}\n";
    let (mut e, t0, _) = invite_relayed(cfg);
    let (up, _) = timeline(&mut e, t0, Duration::from_millis(10_000));
    let timeout = up.iter().find(|(_, l)| l.starts_with("SIP/2.0 408"));
    assert_eq!(timeout.map(|(ms, _)| *ms), Some(1500), "{up:?}");
}

const TWO_BRANCHES: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "corex.so"
loadmodule "textops.so"
request_route {
    if (is_method("CANCEL")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    BEFORE
    $ru = "sip:bob@127.0.0.3:5080";
    append_branch("sip:bob@127.0.0.4:5090");
    t_relay();
}
"#;

const CALLEE2: &str = "127.0.0.4:5090";

#[test]
fn t_set_disable_6xx_1_lets_the_other_branches_ring_after_a_603() {
    for (before, canceled) in [("", true), ("t_set_disable_6xx(1);", false)] {
        let cfg = TWO_BRANCHES.replace("BEFORE", before);
        let mut e = engine(&cfg);
        let t0 = Instant::now();
        let mut out = Vec::new();
        e.on_inbound(inbound(CALLER, INVITE), t0, &mut out);
        let first = sent_to(&out, CALLEE).pop().expect("first branch");
        let second = sent_to(&out, CALLEE2).pop().expect("second branch");
        let mut out = Vec::new();
        e.on_inbound(
            inbound(CALLEE2, &response(&second, "180 Ringing", "r2", "")),
            t0,
            &mut out,
        );
        let mut out = Vec::new();
        e.on_inbound(
            inbound(CALLEE, &response(&first, "603 Decline", "d1", "")),
            t0,
            &mut out,
        );
        let cancel = sent_to(&out, CALLEE2)
            .iter()
            .any(|m| m.starts_with("CANCEL "));
        assert_eq!(cancel, canceled, "{before}: {out:?}");
        assert!(
            sent_to(&out, CALLER).is_empty(),
            "{before}: the 603 waits for the other branch"
        );
    }
}

#[test]
fn t_set_no_e2e_cancel_reason_1_stops_copying_the_cancels_reason_downstream() {
    let base = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
request_route {
    if (is_method("CANCEL")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    BEFORE
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
"#;
    let cancel = INVITE
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL")
        .replace(
            "Content-Length: 0",
            "Reason: SIP;cause=200;text=\"Call completed elsewhere\"\nContent-Length: 0",
        );
    for (before, copied) in [
        ("", true),
        ("t_set_no_e2e_cancel_reason(1);", false),
        (
            "t_set_no_e2e_cancel_reason(1); t_set_no_e2e_cancel_reason(0);",
            true,
        ),
    ] {
        let (mut e, t0, relayed) = invite_relayed(&base.replace("BEFORE", before));
        let mut out = Vec::new();
        e.on_inbound(
            inbound(CALLEE, &response(&relayed, "180 Ringing", "r1", "")),
            t0,
            &mut out,
        );
        let mut out = Vec::new();
        e.on_inbound(inbound(CALLER, &cancel), t0, &mut out);
        let down = sent_to(&out, CALLEE);
        let sent = down
            .iter()
            .find(|m| m.starts_with("CANCEL "))
            .unwrap_or_else(|| panic!("{before}: CANCEL relayed: {out:?}"));
        assert_eq!(
            sent.contains("Reason: SIP;cause=200"),
            copied,
            "{before}\n{sent}"
        );
    }
}

#[test]
fn the_setters_are_refused_where_kamailio_refuses_them() {
    for call in [
        "t_set_retr(100, 200)",
        "t_reset_retr()",
        "t_set_max_lifetime(1, 2)",
        "t_reset_max_lifetime()",
        "t_set_auto_inv_100(1)",
        "t_set_disable_6xx(1)",
        "t_set_disable_failover(1)",
        "t_set_no_e2e_cancel_reason(1)",
    ] {
        let cfg = format!(
            "loadmodule \"tm.so\"\nrequest_route {{\n    t_relay();\n}}\nreply_route {{\n    {call};\n}}\n"
        );
        let files = ringsip::script::MemoryFiles::default();
        let parsed = ringsip::script::parse_str(
            "t.cfg",
            &cfg,
            &ringsip::script::Options::with_files(&files),
        )
        .unwrap();
        let err = ringsip::script::compile::compile(&parsed)
            .err()
            .unwrap_or_else(|| panic!("{call} accepted in reply_route"));
        let text = err.rendered().join("\n");
        assert!(text.contains("t.cfg:6:5:"), "{call}: {text}");
    }
}

/// Each script in `cases` (with `globals` before its modules) answers an
/// INVITE from a NAT'd source port: the reply starting with its `first`
/// goes to that port, `;rport=PORT` at the end of the top Via, nothing to
/// the port the Via names.
fn replies_go_to_the_source_port(globals: &str, cases: &[(&str, &str)]) {
    const NATTED: &str = "127.0.0.2:6000";
    for (body, first) in cases {
        let cfg = format!(
            "{globals}\nloadmodule \"tm.so\"\nloadmodule \"sl.so\"\nrequest_route {{\n    {body}\n}}\n"
        );
        let mut e = engine(&cfg);
        let mut out = Vec::new();
        e.on_inbound(inbound(NATTED, INVITE), Instant::now(), &mut out);
        assert!(
            sent_to(&out, CALLER).is_empty(),
            "{body}: not to the Via port"
        );
        let up = sent_to(&out, NATTED);
        let reply = up
            .iter()
            .find(|m| m.starts_with(first))
            .unwrap_or_else(|| panic!("{body}: {out:?}"));
        assert!(
            reply.contains("Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKcaller1;rport=6000\r\n"),
            "{body}\n{reply}"
        );
    }
}

#[test]
fn tm_replies_after_force_rport_fill_rport_and_go_to_the_source_port() {
    // Kamailio: force_rport() before the transaction exists makes tm's own
    // replies (the 100 Trying, t_reply, timeouts) as sl's: `;rport=PORT` at
    // the end of the top Via (no `received` from the sent-by host: seen on
    // Kamailio 5.6, loadtest/sidebyside tmx.cfg), sent to the source port.
    replies_go_to_the_source_port(
        "",
        &[
            (
                "force_rport(); t_newtran(); t_reply(\"404\", \"Not Here\");",
                "SIP/2.0 404",
            ),
            (
                "force_rport(); $du = \"sip:127.0.0.3:5080\"; t_relay();",
                "SIP/2.0 100",
            ),
        ],
    );
}

#[test]
fn the_global_force_rport_acts_as_force_rport_on_every_request() {
    // Kamailio 5.6 with `force_rport=yes` (checked live): an OPTIONS from
    // 127.0.0.1:5090 whose Via says 5099 is answered at 5090 with
    // `;rport=5090`, by sl as by tm.
    replies_go_to_the_source_port(
        "force_rport=yes",
        &[
            ("sl_send_reply(\"404\", \"Not Here\");", "SIP/2.0 404"),
            (
                "t_newtran(); t_reply(\"404\", \"Not Here\");",
                "SIP/2.0 404",
            ),
            ("$du = \"sip:127.0.0.3:5080\"; t_relay();", "SIP/2.0 100"),
        ],
    );
}

#[test]
fn sl_and_tm_fix_the_top_via_alike() {
    // One rule for both layers: the same request answered by sl_send_reply
    // and by t_reply gets the same top Via, with and without force_rport,
    // with an empty rport asked by the client, from another host.
    let vias = [
        "Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKcaller1",
        "Via: SIP/2.0/UDP 127.0.0.2:5070;rport;branch=z9hG4bKcaller1",
        "Via: SIP/2.0/UDP 10.9.9.9:5070;branch=z9hG4bKcaller1",
        "Via: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKcaller1;received=1.2.3.4",
    ];
    for via in vias {
        for force in ["", "force_rport();"] {
            let msg = INVITE.replace("Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKcaller1", via);
            let top = |func: &str| {
                let cfg = format!(
                    "loadmodule \"tm.so\"\nloadmodule \"sl.so\"\nrequest_route {{\n    {force} {func}(\"404\", \"Not Here\");\n}}\n"
                );
                let mut e = engine(&cfg);
                let mut out = Vec::new();
                e.on_inbound(inbound(CALLER, &msg), Instant::now(), &mut out);
                let reply = out
                    .iter()
                    .map(|t| String::from_utf8_lossy(&t.data).into_owned())
                    .find(|m| m.starts_with("SIP/2.0 404"))
                    .unwrap_or_else(|| panic!("{func}: {out:?}"));
                let line = reply
                    .lines()
                    .find(|l| l.starts_with("Via:"))
                    .unwrap_or("")
                    .to_string();
                (line, out[0].dst)
            };
            assert_eq!(
                top("sl_send_reply"),
                top("t_newtran(); t_reply"),
                "{force} {via}"
            );
        }
    }
}
