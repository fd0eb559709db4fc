//! The integration-test harness (`tests/common`) proves itself without
//! ringsip: sipp against sipp, a sipp UAS standing in for a proxy, raw UDP
//! user agents against each other.

mod common;

use std::collections::HashSet;
use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::{
    free_udp_addr, is_udp_bound, sipp_path, RawUa, Readiness, ServerProcess, SipMsg, Sipp,
};

/// 200 calls at 100 calls/s from the built-in UAC to the built-in UAS, no
/// proxy between them: the load runner itself must report 200 / 0.
#[test]
fn sipp_uac_against_sipp_uas() {
    let uas_addr = free_udp_addr();
    let mut uas = Sipp::uas(uas_addr)
        .calls(200)
        .timeout(Duration::from_secs(30))
        .spawn();
    uas.wait_bound(Duration::from_secs(5));

    let uac = Sipp::uac(free_udp_addr(), uas_addr)
        .calls(200)
        .rate(100)
        .timeout(Duration::from_secs(30))
        .run();
    let uas = uas.wait();

    uac.assert_all_ok(200);
    uas.assert_all_ok(200);
    assert!(uac.stats_found && uas.stats_found);
    assert_eq!(uac.created, 200, "{uac}");
    assert_eq!(uac.retransmissions, 0, "{uac}");
}

/// A UAC with nobody to answer fails its calls (and is bounded by its timeout):
/// the report must say so rather than pass.
#[test]
fn sipp_reports_failures() {
    let nobody = free_udp_addr();
    let uac = Sipp::uac(free_udp_addr(), nobody)
        .calls(2)
        .rate(10)
        .timeout(Duration::from_secs(3))
        .run();
    assert!(!uac.killed_at_deadline, "{uac}");
    assert_ne!(uac.exit_code, Some(0), "{uac}");
    assert_eq!(uac.successful, 0, "{uac}");
    assert!(
        uac.retransmissions > 0,
        "INVITEs were retransmitted:\n{uac}"
    );
}

/// The process lifecycle `Proxy` uses, with a sipp UAS in auto-answer mode
/// (`-aa` answers OPTIONS with 200) standing in for ringsip: wait until it
/// answers OPTIONS, talk to it, stop it with SIGTERM.
#[test]
fn server_process_ready_on_options_and_stopped_by_sigterm() {
    let addr = free_udp_addr();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(sipp_path());
    cmd.args(["-sn", "uas", "-aa", "-nostdin", "-m", "1000"])
        .args(["-i", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-cp", &common::free_udp_port().to_string()])
        .current_dir(dir.path());
    let mut server = ServerProcess::spawn("sipp-uas", cmd, dir.path());
    server.wait_ready(addr, Readiness::Options, Duration::from_secs(10));
    assert!(server.is_running());

    let ua = RawUa::bind();
    let request = ua.options(addr);
    ua.send(addr, &request);
    let reply = ua.expect_msg(common::EVENTUALLY);
    let sent = SipMsg::parse_str(&request);
    assert_eq!(reply.status(), Some(200), "{}", reply.text());
    assert_eq!(reply.source(), Some(addr));
    assert_eq!(reply.header("call-id"), sent.header("Call-ID"));
    assert_eq!(
        reply.header_param("Via", "branch"),
        sent.header_param("v", "branch")
    );

    let status = server.stop();
    assert!(!server.is_running());
    assert!(status.code().is_some() || status.to_string().contains("signal"));
    assert!(!is_udp_bound(addr), "socket released after exit");
}

/// A server that dies at start-up makes the test fail with its stderr.
#[test]
#[should_panic(expected = "exited before it was ready")]
fn server_process_that_dies_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(sipp_path());
    cmd.arg("-no-such-option");
    let mut server = ServerProcess::spawn("sipp-bad", cmd, dir.path());
    server.wait_ready(free_udp_addr(), Readiness::Bound, Duration::from_secs(10));
}

#[test]
fn free_addresses_are_distinct_loopback_and_bindable() {
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let addr = free_udp_addr();
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
        assert!(seen.insert(addr), "handed out twice: {addr}");
        let sock = UdpSocket::bind(addr).expect("bind the address handed out");
        assert!(is_udp_bound(addr));
        drop(sock);
    }
    let ips: HashSet<_> = seen.iter().map(|a| a.ip()).collect();
    assert!(
        ips.len() > 190,
        "addresses spread over 127/8: {}",
        ips.len()
    );
}

#[test]
fn raw_uas_exchange_datagrams() {
    let a = RawUa::bind();
    let b = RawUa::bind();
    let req = a.request(
        "MESSAGE",
        &format!("sip:bob@{}", b.addr()),
        &["Content-Type: text/plain"],
        "hello",
    );
    a.send(b.addr(), &req);
    let got = b.expect_msg(common::EVENTUALLY);
    assert_eq!(got.source(), Some(a.addr()));
    assert_eq!(got.method(), Some("MESSAGE"));
    assert_eq!(got.header("c"), Some("text/plain"));
    assert_eq!(got.header("Content-Length"), Some("5"));
    assert_eq!(got.body(), b"hello");
    assert!(a.recv(Duration::from_millis(50)).is_none());
}

#[test]
fn sip_msg_reads_compact_folded_and_lf_only_messages() {
    let msg = SipMsg::parse_str(
        "\r\nSIP/2.0 180 Ringing\n\
         v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=10.0.0.9\n\
         Via: SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bK2\n\
         f: \"A, B\" <sip:a@example.com>;tag=x1\n\
         To: <sip:b@example.com>\n  ;tag=y2\n\
         i: abc@host\n\
         CSeq: 7 INVITE\n\
         l: 3\n\n\
         abc",
    );
    assert!(msg.is_response());
    assert_eq!(msg.status(), Some(180));
    assert_eq!(msg.reason(), Some("Ringing"));
    assert_eq!(msg.headers("Via").len(), 2);
    assert_eq!(msg.header_param("via", "branch"), Some("z9hG4bK1"));
    assert_eq!(msg.header_param("From", "tag"), Some("x1"));
    assert_eq!(msg.header("to"), Some("<sip:b@example.com> ;tag=y2"));
    assert_eq!(msg.header_param("t", "tag"), Some("y2"));
    assert_eq!(msg.header("Call-ID"), Some("abc@host"));
    assert_eq!(msg.header("content-length"), Some("3"));
    assert_eq!(msg.body(), b"abc");
    assert_eq!(msg.header("Contact"), None);
}

#[test]
fn wait_until_polls_until_the_condition_holds() {
    let mut polls = 0;
    common::wait_until(Duration::from_secs(5), "the third poll", || {
        polls += 1;
        polls == 3
    });
    assert_eq!(polls, 3);
    let got = common::wait_for(Duration::from_secs(5), "a value", || Some(7));
    assert_eq!(got, 7);
}

#[test]
#[should_panic(expected = "waiting for something that never happens")]
fn wait_until_fails_the_test_at_its_deadline() {
    common::wait_until(
        Duration::from_millis(100),
        "something that never happens",
        || false,
    );
}
