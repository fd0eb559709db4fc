//! Media relay control end to end (rtpproxy and rtpengine modules), against
//! the real binary: a call whose SDP goes through a fake relay — a UDP
//! server in the test that answers like rtpproxy (text commands) or
//! rtpengine (bencoded "ng" dictionaries) and records what it was asked —
//! and the same call with no relay listening, which must still complete.
//! Also `ringsip check` on Kamailio's stock configuration with WITH_NAT,
//! WITH_RTPENGINE and WITH_DEBUG.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::net::free_udp_addr;
use common::proxy::{ringsip_bin, Proxy};
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(5);

/// A relay that answers each command with `answer(command)` and records the
/// commands (without their cookie).
struct FakeRelay {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeRelay {
    fn start(answer: fn(&[u8]) -> Vec<u8>) -> FakeRelay {
        let addr = free_udp_addr();
        let sock = UdpSocket::bind(addr).expect("bind fake relay");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (asked.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            let mut seen = std::collections::HashSet::new();
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let data = &buf[..n];
                let Some(sp) = data.iter().position(|&b| b == b' ') else {
                    continue;
                };
                let (cookie, command) = (&data[..sp], &data[sp + 1..]);
                // The proxy resends a command it got no answer to in time
                // (rtpproxy_tout; this thread may get no CPU for a while on a
                // loaded machine) with the same cookie: one command, as a
                // real relay counts it (and answers it again).
                if seen.insert(cookie.to_vec()) {
                    a.lock().unwrap().push(command.to_vec());
                }
                let mut reply = cookie.to_vec();
                reply.push(b' ');
                reply.extend(answer(command));
                let _ = sock.send_to(&reply, from);
            }
        });
        FakeRelay {
            addr,
            asked,
            stop,
            thread: Some(thread),
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    }

    /// Waits until `n` commands arrived (a BYE's delete races the BYE itself).
    fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + common::EVENTUALLY;
        while self.asked.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.asked()
    }
}

impl Drop for FakeRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// rtpproxy's answers: a port and address for U and L, `0` for D.
fn rtpproxy_answer(cmd: &[u8]) -> Vec<u8> {
    match cmd.first() {
        Some(b'U') => b"35000 203.0.113.9\n".to_vec(),
        Some(b'L') => b"36000 203.0.113.9\n".to_vec(),
        Some(b'V') => b"20040107\n".to_vec(),
        _ => b"0\n".to_vec(),
    }
}

const RELAYED_OFFER: &str =
    "v=0\r\no=- 1 1 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
const RELAYED_ANSWER: &str =
    "v=0\r\no=- 2 2 IN IP4 203.0.113.9\r\ns=-\r\nc=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n";

/// rtpengine's answers: the relayed SDP for offer and answer, `ok` for delete.
fn rtpengine_answer(cmd: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(cmd);
    let sdp = if text.contains("7:command5:offer") {
        RELAYED_OFFER
    } else if text.contains("7:command6:answer") {
        RELAYED_ANSWER
    } else if text.contains("7:command4:ping") {
        return b"d6:result4:ponge".to_vec();
    } else {
        return b"d6:result2:oke".to_vec();
    };
    format!("d6:result2:ok3:sdp{}:{sdp}e", sdp.len()).into_bytes()
}

/// A stateful proxy that record-routes, relays to `callee`, and calls
/// `media` on the INVITE, on replies (onreply_route) and on the BYE; the
/// result of the INVITE's call is reported to the callee in `X-Media`.
fn config(module: &str, params: &str, media: &str, callee: SocketAddr) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=2
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "{module}.so"
{params}

request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            if (is_method("BYE")) {{
                {media};
            }}
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
    record_route();
    if ({media}) {{
        append_hf("X-Media: ok\r\n");
    }} else {{
        append_hf("X-Media: failed\r\n");
    }}
    $du = "sip:{callee}";
    t_on_reply("MEDIA");
    t_relay();
}}

onreply_route[MEDIA] {{
    if (status =~ "[12][0-9][0-9]") {{
        {media};
    }}
}}
"#
    )
}

fn sdp(ip: &str, port: u16) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n")
}

/// A reply to `req` from the callee with `body` (SDP) and a To tag, echoing
/// Via, Record-Route, From, Call-ID and CSeq.
fn reply_to(req: &SipMsg, callee: &RawUa, code: &str, body: &str) -> String {
    let mut out = format!("SIP/2.0 {code}\r\n");
    for v in req.headers("via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for rr in req.headers("record-route") {
        out.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    let to = req.header("to").unwrap();
    let to = if to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag=callee-1")
    };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:bob@{}>\r\n",
        req.header("from").unwrap(),
        req.header("call-id").unwrap(),
        req.header("cseq").unwrap(),
        callee.addr()
    ));
    if !body.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

/// What one call through the proxy showed.
struct Call {
    invite_at_callee: SipMsg,
    ok_at_caller: SipMsg,
    bye_reached_callee: bool,
}

/// INVITE with SDP → 200 with SDP → ACK → BYE → 200, through `proxy`.
fn call(proxy: &Proxy, caller: &RawUa, callee: &RawUa) -> Call {
    let invite = caller.request(
        "INVITE",
        &format!("sip:bob@{}", callee.addr()),
        &["Content-Type: application/sdp"],
        &sdp("192.168.1.20", 49170),
    );
    caller.send(proxy.addr(), &invite);
    let invite_at_callee =
        callee.expect_msg_where(Duration::from_secs(15), |m| m.method() == Some("INVITE"));
    callee.send(
        proxy.addr(),
        reply_to(&invite_at_callee, callee, "200 OK", &sdp("10.0.0.5", 3456)),
    );
    let ok_at_caller =
        caller.expect_msg_where(Duration::from_secs(15), |m| m.status() == Some(200));

    // In-dialog requests follow the Record-Route back through the proxy.
    let route = ok_at_caller.header("record-route").unwrap().to_string();
    let to = ok_at_caller.header("to").unwrap().to_string();
    let in_dialog = |method: &str, cseq: &str| {
        let text = format!(
            "{method} sip:bob@{callee} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{method}-{cseq}\r\nMax-Forwards: 70\r\nRoute: {route}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            callee = callee.addr(),
            me = caller.addr(),
            from = ok_at_caller.header("from").unwrap(),
            cid = ok_at_caller.header("call-id").unwrap(),
        );
        caller.send(proxy.addr(), text);
    };
    in_dialog("ACK", "1");
    in_dialog("BYE", "2");
    let bye = callee.expect_msg_where(Duration::from_secs(15), |m| m.method() == Some("BYE"));
    callee.send(proxy.addr(), reply_to(&bye, callee, "200 OK", ""));
    let bye_ok = caller.expect_msg_where(Duration::from_secs(15), |m| {
        m.status() == Some(200) && m.header("cseq").is_some_and(|c| c.ends_with("BYE"))
    });
    Call {
        invite_at_callee,
        ok_at_caller,
        bye_reached_callee: bye_ok.status() == Some(200),
    }
}

fn body(m: &SipMsg) -> String {
    String::from_utf8_lossy(m.body()).into_owned()
}

#[test]
fn rtpproxy_manage_relays_offer_answer_and_deletes_on_bye() {
    let relay = FakeRelay::start(rtpproxy_answer);
    let (caller, callee) = (RawUa::bind(), RawUa::bind());
    let params = format!(
        "modparam(\"rtpproxy\", \"rtpproxy_sock\", \"udp:{}\")",
        relay.addr
    );
    let proxy = Proxy::start(
        &config(
            "rtpproxy",
            &params,
            "rtpproxy_manage(\"co\")",
            callee.addr(),
        ),
        &[],
    );
    let c = call(&proxy, &caller, &callee);

    assert_eq!(c.invite_at_callee.header("x-media"), Some("ok"));
    let offer = body(&c.invite_at_callee);
    assert!(offer.contains("\r\nc=IN IP4 203.0.113.9\r\n"), "{offer}");
    assert!(
        offer.contains("\r\no=- 1 1 IN IP4 203.0.113.9\r\n"),
        "{offer}"
    );
    assert!(offer.contains("\r\nm=audio 35000 RTP/AVP 0\r\n"), "{offer}");
    assert!(offer.ends_with("\r\na=nortpproxy:yes\r\n"), "{offer}");
    let answer = body(&c.ok_at_caller);
    assert!(answer.contains("\r\nc=IN IP4 203.0.113.9\r\n"), "{answer}");
    assert!(
        answer.contains("\r\nm=audio 36000 RTP/AVP 0\r\n"),
        "{answer}"
    );
    assert!(c.bye_reached_callee);

    let asked = relay.wait_for(3);
    let cid = c.invite_at_callee.header("call-id").unwrap();
    let ftag = c.invite_at_callee.header_param("from", "tag").unwrap();
    // Without flag r the relay gets the SIP source address, not the SDP's.
    assert_eq!(
        asked[0],
        format!("U {cid} {} 49170 {ftag};1", caller.addr().ip())
    );
    assert_eq!(
        asked[1],
        format!("L {cid} {} 3456 callee-1;1 {ftag};1", callee.addr().ip())
    );
    assert_eq!(asked[2], format!("D {cid} {ftag} callee-1"));
    assert_eq!(asked.len(), 3, "{asked:?}");
}

#[test]
fn rtpengine_manage_relays_offer_answer_and_deletes_on_bye() {
    let relay = FakeRelay::start(rtpengine_answer);
    let (caller, callee) = (RawUa::bind(), RawUa::bind());
    let params = format!(
        "modparam(\"rtpengine\", \"rtpengine_sock\", \"udp:{}\")",
        relay.addr
    );
    let media = "rtpengine_manage(\"SIP-source-address replace-origin replace-session-connection ICE=remove\")";
    let proxy = Proxy::start(&config("rtpengine", &params, media, callee.addr()), &[]);
    let c = call(&proxy, &caller, &callee);

    assert_eq!(c.invite_at_callee.header("x-media"), Some("ok"));
    assert_eq!(body(&c.invite_at_callee), RELAYED_OFFER);
    assert_eq!(body(&c.ok_at_caller), RELAYED_ANSWER);
    assert!(c.bye_reached_callee);

    let asked = relay.wait_for(3);
    assert_eq!(asked.len(), 3, "{asked:?}");
    let offer_sdp = sdp("192.168.1.20", 49170);
    let cid = c.invite_at_callee.header("call-id").unwrap();
    let bstr = |s: &str| format!("{}:{s}", s.len());
    for (i, command) in ["offer", "answer", "delete"].iter().enumerate() {
        assert!(
            asked[i].starts_with('d') && asked[i].ends_with('e'),
            "{}",
            asked[i]
        );
        assert!(
            asked[i].contains(&format!("7:command{}", bstr(command))),
            "{}",
            asked[i]
        );
        assert!(
            asked[i].contains(&format!("7:call-id{}", bstr(cid))),
            "{}",
            asked[i]
        );
    }
    assert!(
        asked[0].contains(&format!("3:sdp{}", bstr(&offer_sdp))),
        "{}",
        asked[0]
    );
    assert!(
        asked[0].contains("5:flagsl18:SIP-source-addresse"),
        "{}",
        asked[0]
    );
    assert!(
        asked[0].contains("7:replacel6:origin18:session-connectione"),
        "{}",
        asked[0]
    );
    assert!(asked[0].contains("3:ICE6:remove"), "{}", asked[0]);
    let ip = caller.addr().ip().to_string();
    assert!(
        asked[0].contains(&format!("13:received-froml3:IP4{}e", bstr(&ip))),
        "{}",
        asked[0]
    );
    assert!(
        asked[1].contains(&format!("3:sdp{}", bstr(&sdp("10.0.0.5", 3456)))),
        "{}",
        asked[1]
    );
    assert!(asked[1].contains("6:to-tag8:callee-1"), "{}", asked[1]);
}

#[test]
fn silent_relay_times_out_and_the_call_goes_on() {
    // A bound socket that never answers.
    let silent_addr = free_udp_addr();
    let silent = UdpSocket::bind(silent_addr).unwrap();
    let (caller, callee) = (RawUa::bind(), RawUa::bind());
    let params = format!(
        "modparam(\"rtpproxy\", \"rtpproxy_sock\", \"udp:{silent_addr}\")\n\
         modparam(\"rtpproxy\", \"rtpproxy_tout\", 1)\n\
         modparam(\"rtpproxy\", \"rtpproxy_retr\", 2)"
    );
    let proxy = Proxy::start(
        &config(
            "rtpproxy",
            &params,
            "rtpproxy_manage(\"co\")",
            callee.addr(),
        ),
        &[],
    );
    let started = Instant::now();
    let c = call(&proxy, &caller, &callee);
    // The INVITE waited timeout × attempts, then went on unchanged; the
    // relay is then out of service, so the reply and the BYE did not wait.
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(c.invite_at_callee.header("x-media"), Some("failed"));
    assert_eq!(body(&c.invite_at_callee), sdp("192.168.1.20", 49170));
    assert_eq!(body(&c.ok_at_caller), sdp("10.0.0.5", 3456));
    assert!(c.bye_reached_callee);
    silent
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut got = 0;
    while silent.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, 2, "one request, sent twice (rtpproxy_retr 2)");
    assert!(
        proxy.stderr().contains("out of service"),
        "{}",
        proxy.stderr()
    );
}

/// `ringsip check` on Kamailio's stock configuration (installed with the
/// kamailio package) with the given defines.
fn check_stock(defines: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(ringsip_bin());
    cmd.args(["check", "--verbose", "-f", "/etc/kamailio/kamailio.cfg"]);
    for d in [
        "WITH_MYSQL",
        "WITH_AUTH",
        "DBURL=\"sqlite:///tmp/ringsip-media-check.db\"",
    ]
    .iter()
    .chain(defines)
    {
        cmd.args(["-A", d]);
    }
    let out = cmd.output().expect("run ringsip check");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn stock_config_checks_with_nat_rtpengine_and_debug() {
    if !std::path::Path::new("/etc/kamailio/kamailio.cfg").exists() {
        panic!("/etc/kamailio/kamailio.cfg is missing (the kamailio package is installed here)");
    }
    let (ok, out) = check_stock(&["WITH_NAT"]);
    assert!(ok, "WITH_NAT: {out}");
    let (ok, out) = check_stock(&["WITH_NAT", "WITH_RTPENGINE"]);
    assert!(ok, "WITH_NAT WITH_RTPENGINE: {out}");
    let (ok, out) = check_stock(&["WITH_NAT", "WITH_DEBUG"]);
    assert!(ok, "WITH_DEBUG: {out}");
    assert!(
        out.contains("accepted but ignored: debugger cfgtrace"),
        "{out}"
    );
}

#[test]
fn bad_relay_socket_is_a_startup_error_at_its_line() {
    let dir = std::env::temp_dir().join(format!("ringsip-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.cfg");
    std::fs::write(
        &path,
        "loadmodule \"rtpproxy.so\"\nmodparam(\"rtpproxy\", \"rtpproxy_sock\", \"udp:local host:7722\")\nmodparam(\"rtpproxy\", \"no_such_param\", 1)\nrequest_route { exit; }\n",
    )
    .unwrap();
    let out = Command::new(ringsip_bin())
        .args(["check", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.cfg:2:"), "{err}");
    assert!(err.contains("relay socket"), "{err}");
    assert!(
        err.contains("bad.cfg:3:") && err.contains("no_such_param"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kamailio's stock configuration with WITH_NAT, its rtpproxy socket pointed
/// at the fake relay: a callee behind NAT registers, a caller behind NAT
/// calls it; route[NATMANAGE] engages the relay in the INVITE's branch
/// route, marks the Record-Route `;nat=yes`, and deletes the session in the
/// BYE's branch route.
#[test]
fn stock_config_with_nat_relays_a_call_through_rtpproxy() {
    let stock = std::fs::read_to_string("/etc/kamailio/kamailio.cfg")
        .expect("/etc/kamailio/kamailio.cfg (the kamailio package is installed here)");
    let relay = FakeRelay::start(rtpproxy_answer);
    assert!(stock.contains("\"udp:127.0.0.1:7722\""));
    let cfg = stock.replace("\"udp:127.0.0.1:7722\"", &format!("\"udp:{}\"", relay.addr));
    let (caller, callee) = (RawUa::bind(), RawUa::bind());
    let proxy = Proxy::start(&cfg, &["-A", "WITH_NAT"]);
    let px = proxy.addr();

    // The callee registers from behind a NAT: its Contact is private.
    let reg = format!(
        "REGISTER sip:{px} SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.50:5080;branch=z9hG4bK-reg1\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{px}>;tag=r1\r\nTo: <sip:bob@{px}>\r\nCall-ID: reg-{}@x\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@192.168.1.50:5080>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n",
        std::process::id()
    );
    callee.send(px, reg);
    let ok = callee.expect_msg_where(WAIT, |m| m.status().is_some());
    assert_eq!(ok.status(), Some(200), "{}", ok.text());

    // The caller, behind a NAT too, offers private media.
    let offer = sdp("192.168.1.20", 49170);
    let invite = format!(
        "INVITE sip:bob@{px} SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5070;branch=z9hG4bK-inv1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{px}>;tag=a1\r\nTo: <sip:bob@{px}>\r\nCall-ID: nat-call-{}@x\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.168.1.20:5070>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        std::process::id(),
        offer.len()
    );
    caller.send(px, invite);
    let inv = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let relayed = body(&inv);
    assert!(
        relayed.contains("\r\nc=IN IP4 203.0.113.9\r\n"),
        "{relayed}"
    );
    assert!(
        relayed.contains("\r\nm=audio 35000 RTP/AVP 0\r\n"),
        "{relayed}"
    );
    let asked = relay.wait_for(1);
    let cid = inv.header("call-id").unwrap().to_string();
    // Flag "co" (private SDP): the relay gets the caller's real address.
    assert_eq!(
        asked[0],
        format!("U {cid} {} 49170 a1;1", caller.addr().ip())
    );

    callee.send(
        px,
        reply_to(&inv, &callee, "200 OK", &sdp("192.168.1.50", 3456)),
    );
    let ok = caller.expect_msg_where(WAIT, |m| m.status() == Some(200));
    // Not asserted here: the 200's SDP. route[NATMANAGE] only relays it when
    // onreply_route sees the INVITE's FLT_NATS flag, as Kamailio's does;
    // ringsip's engine does not hand the transaction's flags to
    // onreply_route yet (reported for the engine's room). Relaying in
    // onreply_route itself is covered by
    // rtpproxy_manage_relays_offer_answer_and_deletes_on_bye.

    // The BYE follows the Record-Route (with ;nat=yes) back through the proxy.
    let route = ok.header("record-route").unwrap().to_string();
    assert!(route.contains("nat=yes"), "{route}");
    let bye = format!(
        "BYE sip:bob@{} SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5070;branch=z9hG4bK-bye1;rport\r\nMax-Forwards: 70\r\nRoute: {route}\r\nFrom: <sip:alice@{px}>;tag=a1\r\nTo: {}\r\nCall-ID: {cid}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        callee.addr(),
        ok.header("to").unwrap()
    );
    caller.send(px, bye);
    callee.expect_msg_where(WAIT, |m| m.method() == Some("BYE"));
    let deadline = Instant::now() + common::EVENTUALLY;
    while !relay.asked().iter().any(|c| c.starts_with("D ")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let asked = relay.asked();
    assert_eq!(
        asked.last().map(String::as_str),
        Some(format!("D {cid} a1 callee-1").as_str()),
        "{asked:?}"
    );
}
