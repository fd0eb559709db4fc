//! The stateful proxy end to end (tm + rr), against the real binary: sipp
//! calls through `record_route(); t_relay();` with in-dialog requests
//! loose-routed, CANCEL before answer, serial forking from failure_route,
//! and a timeout turned into 408 (RFC 3261 §16, §17; Kamailio tm/rr).

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::net::free_udp_addr;
use common::proxy::{Io, Proxy};
use common::sipp::{Scenario, Sipp};
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(3);

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
}

/// A config written like Kamailio's stock one, reduced to relaying:
/// in-dialog requests follow the route set, new ones are record-routed and
/// relayed statefully to `to`; a 503 or a timeout fails over to `backup`.
fn stateful_config(to: SocketAddr, backup: Option<SocketAddr>, extra_params: &str) -> String {
    let failover = match backup {
        Some(b) => format!(
            r#"failure_route[FAILOVER] {{
    if (t_is_canceled()) {{ exit; }}
    if (t_check_status("503|408")) {{
        $du = "sip:{b}";
        t_relay();
    }}
}}"#
        ),
        None => "failure_route[FAILOVER] {\n    if (t_is_canceled()) { exit; }\n}".to_string(),
    };
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
{extra_params}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            t_relay();
            exit;
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{
                t_relay();
            }}
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (is_method("INVITE")) {{
        record_route();
    }}
    $du = "sip:{to}";
    t_on_failure("FAILOVER");
    if (!t_relay()) {{
        sl_send_reply("500", "Relay Failed");
    }}
}}

{failover}
"#
    )
}

fn sipp_calls_with_route_set(io: Io, workers: usize) {
    let uas_addr = free_udp_addr();
    let calls = 5_000;
    let mut uas = Sipp::new(Scenario::File(scenario("uas_rr.xml")), uas_addr, None)
        .calls(calls)
        .timeout(Duration::from_secs(90))
        .spawn();
    uas.wait_bound(Duration::from_secs(5));
    let proxy = Proxy::builder(&stateful_config(uas_addr, None, ""))
        .io(io)
        .workers(workers)
        .start();
    let uac = Sipp::new(
        Scenario::File(scenario("uac_rr.xml")),
        free_udp_addr(),
        Some(proxy.addr()),
    )
    .calls(calls)
    // The rate #7 names (200 calls/s). On a 2-core machine shared with
    // compilers a debug build can fall behind by seconds at this rate; CI
    // runs the tests alone.
    .rate(200)
    .timeout(Duration::from_secs(90))
    .run();
    let uas = uas.wait();
    // Printed (shown when the test fails): a call the UAC lost is often
    // explained by what the UAS saw.
    println!("UAS:\n{uas}");
    uac.assert_all_ok(calls);
    assert_eq!(
        uas.failed,
        0,
        "UAS saw failures:\n{uas}\nproxy stderr:\n{}",
        proxy.stderr()
    );
    assert_eq!(uas.successful, calls, "UAS completed every call:\n{uas}");
    assert!(proxy.stop().success(), "proxy did not stop cleanly");
}

#[test]
fn sipp_5000_calls_record_route_t_relay_in_dialog_loose_routed() {
    sipp_calls_with_route_set(Io::Uring, 2);
}

/// A SIP response to `req` built by a test UA acting as the callee.
fn response(req: &SipMsg, code: u16, reason: &str, to_tag: Option<&str>) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers("Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for rr in req.headers("Record-Route") {
        out.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    out.push_str(&format!("From: {}\r\n", req.header("From").unwrap_or("")));
    let to = req.header("To").unwrap_or("");
    match to_tag {
        Some(tag) if !to.contains("tag=") => out.push_str(&format!("To: {to};tag={tag}\r\n")),
        _ => out.push_str(&format!("To: {to}\r\n")),
    }
    out.push_str(&format!(
        "Call-ID: {}\r\n",
        req.header("Call-ID").unwrap_or("")
    ));
    out.push_str(&format!("CSeq: {}\r\n", req.header("CSeq").unwrap_or("")));
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

fn invite(caller: &RawUa, proxy: SocketAddr) -> String {
    caller.request("INVITE", &format!("sip:bob@{proxy}"), &[], "")
}

/// The CANCEL of `invite` (RFC 3261 §9.1): same Request-URI, Via, Call-ID,
/// From, To and CSeq number.
fn cancel_of(invite: &str) -> String {
    let mut out = String::new();
    for line in invite.split("\r\n") {
        if line.starts_with("INVITE ") {
            out.push_str(&line.replacen("INVITE", "CANCEL", 1));
        } else if line.starts_with("CSeq:") {
            out.push_str("CSeq: 1 CANCEL");
        } else if line.starts_with("Contact:") {
            continue;
        } else if line.is_empty() {
            out.push_str("\r\n");
            break;
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

#[test]
fn cancel_before_answer_gives_487_upstream_and_cancel_downstream() {
    let callee = RawUa::bind();
    let proxy = Proxy::start(&stateful_config(callee.addr(), None, ""), &[]);
    let caller = RawUa::bind();
    let inv = invite(&caller, proxy.addr());
    caller.send(proxy.addr(), &inv);
    // INVITE gets 100 Trying from the proxy at once (tm's automatic 100).
    caller.expect_msg_where(WAIT, |m| m.status() == Some(100));
    let fwd = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    callee.send(
        proxy.addr(),
        response(&fwd, 180, "Ringing", Some("callee1")),
    );
    let ringing = caller.expect_msg_where(WAIT, |m| m.status() == Some(180));
    assert!(ringing.header("To").unwrap_or("").contains("tag=callee1"));

    caller.send(proxy.addr(), cancel_of(&inv));
    let ok = caller.expect_msg_where(WAIT, |m| m.status() == Some(200));
    assert!(
        ok.header("CSeq").unwrap_or("").contains("CANCEL"),
        "200 is for the CANCEL: {}",
        ok.text()
    );
    let cancel = callee.expect_msg_where(WAIT, |m| m.method() == Some("CANCEL"));
    assert_eq!(
        cancel.header_param("Via", "branch"),
        fwd.header_param("Via", "branch"),
        "the CANCEL goes on the INVITE's branch (RFC 3261 §9.1)"
    );
    callee.send(proxy.addr(), response(&cancel, 200, "OK", None));
    callee.send(
        proxy.addr(),
        response(&fwd, 487, "Request Terminated", Some("callee1")),
    );
    let terminated = caller.expect_msg_where(WAIT, |m| m.status() == Some(487));
    assert!(terminated.header("CSeq").unwrap_or("").contains("INVITE"));
    // The proxy acknowledges the 487 downstream itself (hop by hop).
    let ack = callee.expect_msg_where(WAIT, |m| m.method() == Some("ACK"));
    assert_eq!(
        ack.header_param("Via", "branch"),
        fwd.header_param("Via", "branch")
    );
}

#[test]
fn failure_route_fails_over_from_503_to_the_backup() {
    let primary = RawUa::bind();
    let backup = RawUa::bind();
    let proxy = Proxy::start(
        &stateful_config(primary.addr(), Some(backup.addr()), ""),
        &[],
    );
    let caller = RawUa::bind();
    caller.send(proxy.addr(), invite(&caller, proxy.addr()));
    let first = primary.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    primary.send(
        proxy.addr(),
        response(&first, 503, "Service Unavailable", Some("p1")),
    );
    // The proxy ACKs the 503 and tries the backup; the caller sees no 503.
    let ack = primary.expect_msg_where(WAIT, |m| m.method() == Some("ACK"));
    assert_eq!(ack.header("CSeq"), Some("1 ACK"));
    let second = backup.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_ne!(
        second.header_param("Via", "branch"),
        first.header_param("Via", "branch")
    );
    backup.send(proxy.addr(), response(&second, 200, "OK", Some("b1")));
    let ok = caller.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert!(ok.header("To").unwrap_or("").contains("tag=b1"));
}

#[test]
fn unanswered_branch_times_out_with_408() {
    let silent = RawUa::bind();
    let params = "modparam(\"tm\", \"fr_timer\", 1000)\nmodparam(\"tm\", \"fr_inv_timer\", 1000)";
    let proxy = Proxy::start(&stateful_config(silent.addr(), None, params), &[]);
    let caller = RawUa::bind();
    caller.send(proxy.addr(), invite(&caller, proxy.addr()));
    // The INVITE is retransmitted downstream (Timer A) while nobody answers.
    let first = silent.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let again = silent.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_eq!(
        again.header_param("Via", "branch"),
        first.header_param("Via", "branch")
    );
    let timeout = caller.expect_msg_where(Duration::from_secs(5), |m| {
        m.status().is_some_and(|s| s >= 200)
    });
    assert_eq!(timeout.status(), Some(408), "{}", timeout.text());
}

#[test]
fn retransmitted_invite_is_absorbed_and_gets_the_last_reply() {
    let callee = RawUa::bind();
    let proxy = Proxy::start(&stateful_config(callee.addr(), None, ""), &[]);
    let caller = RawUa::bind();
    let inv = invite(&caller, proxy.addr());
    caller.send(proxy.addr(), &inv);
    let fwd = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    callee.send(proxy.addr(), response(&fwd, 180, "Ringing", Some("c9")));
    caller.expect_msg_where(WAIT, |m| m.status() == Some(180));
    // The caller retransmits: the proxy answers from the transaction, the callee sees nothing new.
    caller.send(proxy.addr(), &inv);
    let again = caller.expect_msg_where(WAIT, |m| m.is_response());
    assert_eq!(again.status(), Some(180), "{}", again.text());
    let extra = callee.recv(Duration::from_millis(600));
    assert!(
        extra
            .as_ref()
            .is_none_or(|(raw, _)| !String::from_utf8_lossy(raw).starts_with("INVITE")),
        "a retransmission is not relayed again by the proxy itself within T1"
    );
}

/// Parallel forking through the binary: the R-URI and an appended branch
/// ring at once; the first 200 goes to the caller, the other callee gets a
/// CANCEL, answers 487, and the caller sees exactly one final (RFC 3261 §16.7).
#[test]
fn parallel_fork_first_200_wins_other_branch_canceled_with_487_absorbed() {
    let bob1 = RawUa::bind();
    let bob2 = RawUa::bind();
    let cfg = format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "corex.so"
loadmodule "textops.so"
request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (is_method("CANCEL") || is_method("ACK")) {{
        if (t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    $ru = "sip:bob@{b1}";
    append_branch("sip:bob@{b2}");
    t_relay();
}}
"#,
        b1 = bob1.addr(),
        b2 = bob2.addr()
    );
    let proxy = Proxy::start(&cfg, &[]);
    let caller = RawUa::bind();
    caller.send(proxy.addr(), invite(&caller, proxy.addr()));
    let inv1 = bob1.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let inv2 = bob2.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_ne!(
        inv1.header_param("Via", "branch"),
        inv2.header_param("Via", "branch")
    );
    bob1.send(proxy.addr(), response(&inv1, 180, "Ringing", Some("b1")));
    bob2.send(proxy.addr(), response(&inv2, 180, "Ringing", Some("b2")));
    caller.expect_msg_where(WAIT, |m| m.status() == Some(180));
    caller.expect_msg_where(WAIT, |m| m.status() == Some(180));
    bob1.send(proxy.addr(), response(&inv1, 200, "OK", Some("b1")));
    let ok = caller.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert!(ok.header("To").unwrap_or("").contains("tag=b1"));
    let cancel = bob2.expect_msg_where(WAIT, |m| m.method() == Some("CANCEL"));
    assert_eq!(
        cancel.header_param("Via", "branch"),
        inv2.header_param("Via", "branch")
    );
    bob2.send(proxy.addr(), response(&cancel, 200, "OK", None));
    bob2.send(
        proxy.addr(),
        response(&inv2, 487, "Request Terminated", Some("b2")),
    );
    let ack = bob2.expect_msg_where(WAIT, |m| m.method() == Some("ACK"));
    assert_eq!(
        ack.header_param("Via", "branch"),
        inv2.header_param("Via", "branch")
    );
    // The caller gets no second final (the 487 stays at the proxy).
    let more = caller.recv(Duration::from_millis(500));
    assert!(
        more.is_none(),
        "unexpected: {}",
        String::from_utf8_lossy(&more.unwrap().0)
    );
}

/// A 6xx on one branch cancels the others (RFC 3261 §16.7 step 10) and is
/// what the caller gets.
#[test]
fn parallel_fork_6xx_cancels_the_other_branch() {
    let bob1 = RawUa::bind();
    let bob2 = RawUa::bind();
    let cfg = format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "corex.so"
loadmodule "textops.so"
request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    $ru = "sip:bob@{b1}";
    append_branch("sip:bob@{b2}");
    t_relay();
}}
"#,
        b1 = bob1.addr(),
        b2 = bob2.addr()
    );
    let proxy = Proxy::start(&cfg, &[]);
    let caller = RawUa::bind();
    caller.send(proxy.addr(), invite(&caller, proxy.addr()));
    let inv1 = bob1.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let inv2 = bob2.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    bob2.send(proxy.addr(), response(&inv2, 180, "Ringing", Some("b2")));
    bob1.send(proxy.addr(), response(&inv1, 603, "Decline", Some("b1")));
    let cancel = bob2.expect_msg_where(WAIT, |m| m.method() == Some("CANCEL"));
    bob2.send(proxy.addr(), response(&cancel, 200, "OK", None));
    bob2.send(
        proxy.addr(),
        response(&inv2, 487, "Request Terminated", Some("b2")),
    );
    let fin = caller.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200));
    assert_eq!(fin.status(), Some(603), "{}", fin.text());
}

/// Two contacts registered for one AoR: `lookup()` (append_branches=1)
/// makes both branches and `t_relay()` rings both; the first to answer wins.
#[test]
fn lookup_with_two_contacts_forks_to_both() {
    let phone1 = RawUa::bind();
    let phone2 = RawUa::bind();
    let cfg = r#"#!KAMAILIO
listen=@LISTEN@
debug=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
modparam("usrloc", "db_mode", 0)
request_route {
    if (is_method("OPTIONS") && uri == myself) {
        sl_send_reply("200", "Keepalive");
        exit;
    }
    if (is_method("REGISTER")) {
        save("location");
        exit;
    }
    if (is_method("CANCEL") || is_method("ACK")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found");
        exit;
    }
    t_relay();
}
"#;
    let proxy = Proxy::start(cfg, &[]);
    let registrar = RawUa::bind();
    let me = registrar.addr();
    let register = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-reg-two\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:bob@example.com>;tag=r1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: reg-two@{ip}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:bob@{p1}>;q=0.9\r\n\
         Contact: <sip:bob@{p2}>;q=0.5\r\n\
         Expires: 600\r\n\
         Content-Length: 0\r\n\r\n",
        ip = me.ip(),
        p1 = phone1.addr(),
        p2 = phone2.addr(),
    );
    registrar.send(proxy.addr(), register);
    let ok = registrar.expect_msg_where(WAIT, |m| m.is_response());
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let bound = ok.headers("Contact").join(",");
    assert_eq!(bound.matches("sip:bob@").count(), 2, "{}", ok.text());

    let caller = RawUa::bind();
    caller.send(
        proxy.addr(),
        caller.request("INVITE", "sip:bob@example.com", &[], ""),
    );
    let inv1 = phone1.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let inv2 = phone2.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_eq!(
        inv1.request_uri(),
        Some(format!("sip:bob@{}", phone1.addr()).as_str())
    );
    assert_eq!(
        inv2.request_uri(),
        Some(format!("sip:bob@{}", phone2.addr()).as_str())
    );
    phone1.send(proxy.addr(), response(&inv1, 180, "Ringing", Some("p1")));
    phone2.send(proxy.addr(), response(&inv2, 180, "Ringing", Some("p2")));
    phone2.send(proxy.addr(), response(&inv2, 200, "OK", Some("p2")));
    let fin = caller.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200));
    assert_eq!(fin.status(), Some(200));
    assert!(fin.header("To").unwrap_or("").contains("tag=p2"));
    let cancel = phone1.expect_msg_where(WAIT, |m| m.method() == Some("CANCEL"));
    assert_eq!(
        cancel.header_param("Via", "branch"),
        inv1.header_param("Via", "branch")
    );
}
