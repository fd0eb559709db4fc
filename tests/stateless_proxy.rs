//! The stateless proxy end to end, against the real binary: sipp calls through
//! `forward()` on both IO drivers, RFC 3261 §16.11 branches, RFC 3581 rport,
//! replies routed back by Via, Max-Forwards, and malformed input.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::net::free_udp_addr;
use common::proxy::{Io, Proxy};
use common::sipp::Sipp;
use common::ua::RawUa;

const WAIT: Duration = Duration::from_secs(3);

/// A proxy that answers OPTIONS to itself and forwards the rest to `to`.
fn forwarding_config(to: SocketAddr) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=1
loadmodule "sl.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "xlog.so"

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    forward("{}", "{}");
}}
"#,
        to.ip(),
        to.port()
    )
}

fn sipp_calls_through(io: Io) {
    let uas_addr = free_udp_addr();
    let mut uas = Sipp::uas(uas_addr)
        .calls(2_000)
        .timeout(Duration::from_secs(60))
        .spawn();
    uas.wait_bound(Duration::from_secs(5));
    let proxy = Proxy::builder(&forwarding_config(uas_addr))
        .io(io)
        .workers(2)
        .start();
    let uac = Sipp::uac(free_udp_addr(), proxy.addr())
        .calls(2_000)
        .rate(200)
        .timeout(Duration::from_secs(60))
        .run();
    uac.assert_all_ok(2_000);
    let uas = uas.wait();
    assert_eq!(
        uas.failed,
        0,
        "UAS saw failures:\n{uas}\nproxy stderr:\n{}",
        proxy.stderr()
    );
    assert!(proxy.stop().success(), "proxy did not stop cleanly");
}

#[test]
fn sipp_2000_calls_through_stateless_forward_on_io_uring() {
    sipp_calls_through(Io::Uring);
}

#[test]
fn sipp_2000_calls_through_stateless_forward_on_poll() {
    sipp_calls_through(Io::Poll);
}

#[test]
fn malformed_datagrams_never_stop_the_server() {
    let proxy = Proxy::start(&forwarding_config(free_udp_addr()), &[]);
    let ua = RawUa::bind();
    let garbage: [&[u8]; 8] = [
        b"\x00\x01\x02\x03",
        b"INVITE\r\n\r\n",
        b"SIP/2.0 999 Nope\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nVia: garbage\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999\r\n\r\nshort",
        b"\xff\xfe\xfd INVITE sip:a@b SIP/2.0\r\n",
        b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n\0\r\n\r\n",
        &[b'A'; 9000],
    ];
    for g in garbage {
        ua.send(proxy.addr(), g);
    }
    // The next valid request is answered.
    ua.send(proxy.addr(), ua.options(proxy.addr()));
    let reply = ua.expect_msg_where(WAIT, |m| m.is_response());
    assert_eq!(reply.status(), Some(200), "{}", reply.text());
    assert_eq!(reply.reason(), Some("Keepalive"));
    let to = reply.header("To").expect("To in reply");
    assert!(to.contains(";tag="), "a 200 carries a To-tag: {to}");
}

/// A request missing Call-ID is dropped unanswered, as Kamailio 5.6 drops
/// it ("required headers not found in request"); the proxy still answers
/// the next, whole one.
#[test]
fn request_without_call_id_is_dropped() {
    let proxy = Proxy::start(&forwarding_config(free_udp_addr()), &[]);
    let ua = RawUa::bind();
    let req = format!(
        "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP {1};branch=z9hG4bKnocid\r\nFrom: <sip:a@{1}>;tag=1\r\nTo: <sip:{0}>\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        proxy.addr(),
        ua.addr()
    );
    ua.send(proxy.addr(), &req);
    assert!(
        ua.recv_msg(Duration::from_millis(500)).is_none(),
        "no reply to a request without Call-ID"
    );
    let whole = req.replace("CSeq:", "Call-ID: back@x\r\nCSeq:");
    ua.send(proxy.addr(), whole);
    let reply = ua.expect_msg(WAIT);
    assert_eq!(reply.status(), Some(200), "{}", reply.text());
}

fn invite(ua: &RawUa, proxy: SocketAddr, branch: &str, extra: &str) -> String {
    format!(
        "INVITE sip:bob@{proxy} SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.7:5099;branch={branch};rport\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@{ua}>;tag=1928\r\n\
To: Bob <sip:bob@{proxy}>\r\n\
Call-ID: fwd-{branch}@test\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@{ua}>\r\n\
{extra}Content-Length: 0\r\n\r\n",
        ua = ua.addr()
    )
}

#[test]
fn forward_adds_via_with_stable_branch_and_fills_rport_and_received() {
    let callee = RawUa::bind();
    let proxy = Proxy::start(&forwarding_config(callee.addr()), &[]);
    let caller = RawUa::bind();

    caller.send(
        proxy.addr(),
        invite(&caller, proxy.addr(), "z9hG4bKabc1", ""),
    );
    let fwd = callee.expect_msg(WAIT);
    assert_eq!(fwd.method(), Some("INVITE"));
    let vias = fwd.headers("Via");
    assert_eq!(vias.len(), 2, "{}", fwd.text());
    let ours = vias[0];
    assert!(
        ours.starts_with(&format!("SIP/2.0/UDP {}", proxy.addr())),
        "our Via on top: {ours}"
    );
    let branch = fwd
        .header_param("Via", "branch")
        .expect("branch")
        .to_string();
    assert!(
        branch.starts_with("z9hG4bK"),
        "RFC 3261 magic cookie: {branch}"
    );
    // RFC 3581: rport filled with the source port, received with the source address.
    let theirs = vias[1];
    let caller_port = caller.addr().port();
    assert!(
        theirs.contains(&format!("received={}", caller.addr().ip())),
        "{theirs}"
    );
    assert!(theirs.contains(&format!("rport={caller_port}")), "{theirs}");
    assert_eq!(fwd.header("Max-Forwards"), Some("69"));

    // A retransmission gets the same branch (RFC 3261 §16.11).
    caller.send(
        proxy.addr(),
        invite(&caller, proxy.addr(), "z9hG4bKabc1", ""),
    );
    let again = callee.expect_msg(WAIT);
    assert_eq!(again.header_param("Via", "branch"), Some(branch.as_str()));
    // Another transaction gets another branch.
    caller.send(
        proxy.addr(),
        invite(&caller, proxy.addr(), "z9hG4bKother", ""),
    );
    let other = callee.expect_msg(WAIT);
    assert_ne!(other.header_param("Via", "branch"), Some(branch.as_str()));

    // The callee answers; the reply goes back to received:rport without our Via.
    let reply = fwd
        .text()
        .lines()
        .filter(|l| {
            l.starts_with("Via:")
                || l.starts_with("From:")
                || l.starts_with("To:")
                || l.starts_with("Call-ID:")
                || l.starts_with("CSeq:")
        })
        .fold(String::from("SIP/2.0 180 Ringing\r\n"), |acc, l| {
            acc + l + "\r\n"
        })
        + "Content-Length: 0\r\n\r\n";
    callee.send(proxy.addr(), reply);
    let back = caller.expect_msg(WAIT);
    assert_eq!(back.status(), Some(180), "{}", back.text());
    let back_vias = back.headers("Via");
    assert_eq!(back_vias.len(), 1, "our Via removed: {}", back.text());
    assert!(back_vias[0].contains("192.0.2.7:5099"), "{}", back_vias[0]);
}

#[test]
fn max_forwards_zero_gets_483() {
    let callee = RawUa::bind();
    let proxy = Proxy::start(&forwarding_config(callee.addr()), &[]);
    let caller = RawUa::bind();
    let req = invite(&caller, proxy.addr(), "z9hG4bKmf0", "")
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    caller.send(proxy.addr(), req);
    let reply = caller.expect_msg(WAIT);
    assert_eq!(reply.status(), Some(483), "{}", reply.text());
    assert!(
        callee.recv(Duration::from_millis(300)).is_none(),
        "nothing forwarded"
    );
}

#[test]
fn replies_not_for_us_are_dropped() {
    let callee = RawUa::bind();
    let proxy = Proxy::start(&forwarding_config(callee.addr()), &[]);
    let stranger = RawUa::bind();
    let reply = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKzz\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKyy\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    stranger.send(proxy.addr(), reply);
    // Still alive and answering.
    stranger.send(proxy.addr(), stranger.options(proxy.addr()));
    let r = stranger.expect_msg(WAIT);
    assert_eq!(r.status(), Some(200));
}
