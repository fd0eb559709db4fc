//! rtpproxy commands, answers and functions as a script calls them, against
//! a relay that answers from a script.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::relay::{RelayError, RelayTransport};
use super::*;
use crate::modules::testutil::{run, serialized, Harness};
use crate::script::registry::RouteType;

/// Answers each request with the next scripted answer (silence when none
/// is left) and records what it was asked.
#[derive(Default)]
pub struct FakeRelay {
    pub answers: Mutex<Vec<&'static str>>,
    pub asked: Mutex<Vec<String>>,
}

impl RelayTransport for FakeRelay {
    fn exchange(
        &self,
        _: SocketAddr,
        _: &str,
        payload: &[u8],
        _: Duration,
        _: u32,
    ) -> Result<Vec<u8>, RelayError> {
        self.asked
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(payload).into_owned());
        let mut a = self.answers.lock().unwrap();
        if a.is_empty() {
            return Err(RelayError::Timeout);
        }
        Ok(a.remove(0).as_bytes().to_vec())
    }
}

const OFFER: &str = "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK776asdhds;rport
To: Bob <sip:bob@example.com>
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: a84b4c76e66710@pc33
CSeq: 314159 INVITE
Content-Type: application/sdp
Content-Length: 116

v=0
o=alice 2890844526 2890844526 IN IP4 192.168.1.20
s=-
c=IN IP4 192.168.1.20
t=0 0
m=audio 49170 RTP/AVP 0
";

const ANSWER: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKx
To: Bob <sip:bob@example.com>;tag=8321234356
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: a84b4c76e66710@pc33
CSeq: 314159 INVITE
Content-Type: application/sdp
Content-Length: 105

v=0
o=bob 2808844564 2808844564 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
m=audio 3456 RTP/AVP 0
";

const BYE: &str = "BYE sip:alice@198.51.100.1:5070 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKbye
To: Alice <sip:alice@example.org>;tag=1928301774
From: Bob <sip:bob@example.com>;tag=8321234356
Call-ID: a84b4c76e66710@pc33
CSeq: 1 BYE
Content-Length: 0

";

fn with_relay(h: &mut Harness, answers: Vec<&'static str>) -> Arc<FakeRelay> {
    let fake = Arc::new(FakeRelay {
        answers: Mutex::new(answers),
        asked: Mutex::new(Vec::new()),
    });
    let mut mp = ModParams::default();
    mp.push(
        "rtpproxy",
        "rtpproxy_sock",
        ParamValue::Str("udp:127.0.0.1:7722".into()),
    );
    let rp = Rtpproxy::from_modparams(&mp, fake.clone(), 1, &relay::no_names).unwrap();
    h.env.services.insert(Arc::new(rp));
    fake
}

#[test]
fn flags() {
    let f = Flags::parse("cor").unwrap();
    assert!(f.session_c && f.origin && f.trust_address);
    assert_eq!(f.modifiers, "");
    let f = Flags::parse("aiez20w").unwrap();
    assert_eq!(f.modifiers, "AIEZ20S");
    assert!(Flags::parse("q").is_err());
    assert!(Flags::parse("z").is_err());
}

#[test]
fn commands_and_answers() {
    let ip: IpAddr = "198.51.100.1".parse().unwrap();
    let f = Flags::parse("a").unwrap();
    assert_eq!(
        update_command(Side::Offer, &f, b"c1", (ip, 4000), (b"ft", None), 1),
        b"UA c1 198.51.100.1 4000 ft;1"
    );
    assert_eq!(
        update_command(
            Side::Answer,
            &Flags::default(),
            b"c1",
            (ip, 4000),
            (b"tt", Some(b"ft")),
            2
        ),
        b"L c1 198.51.100.1 4000 tt;2 ft;2"
    );
    assert_eq!(delete_command(b"c1", b"ft", Some(b"tt")), b"D c1 ft tt");
    assert_eq!(delete_command(b"c1", b"ft", None), b"D c1 ft");
    assert_eq!(parse_update_reply(b"35000\n"), Ok((35000, None)));
    assert_eq!(
        parse_update_reply(b"35000 203.0.113.9"),
        Ok((35000, Some("203.0.113.9".parse().unwrap())))
    );
    assert_eq!(
        parse_update_reply(b"35000 2001:db8::9 6"),
        Ok((35000, Some("2001:db8::9".parse().unwrap())))
    );
    assert!(parse_update_reply(b"E8").is_err());
    assert!(parse_update_reply(b"0").is_err());
    assert!(parse_update_reply(b"").is_err());
    assert!(parse_update_reply(b"x y").is_err());
}

#[test]
fn offer_uses_the_source_address_and_rewrites_the_sdp() {
    let mut h = Harness::new(OFFER);
    let fake = with_relay(&mut h, vec!["35000 203.0.113.9"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_manage", &["co"]), 1);
    assert_eq!(
        fake.asked.lock().unwrap().as_slice(),
        ["U a84b4c76e66710@pc33 198.51.100.1 49170 1928301774;1"]
    );
    let out = serialized(&ctx);
    assert!(out.contains("\nc=IN IP4 203.0.113.9\n"), "{out}");
    assert!(out.contains("\nm=audio 35000 RTP/AVP 0\n"), "{out}");
    assert!(
        out.contains("\no=alice 2890844526 2890844526 IN IP4 203.0.113.9\n"),
        "{out}"
    );
    assert!(
        out.ends_with("\nm=audio 35000 RTP/AVP 0\na=nortpproxy:yes\n"),
        "{out}"
    );
}

#[test]
fn trusted_sdp_address_and_relay_without_address() {
    let mut h = Harness::new(OFFER);
    let fake = with_relay(&mut h, vec!["35000"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_offer", &["r"]), 1);
    assert_eq!(
        fake.asked.lock().unwrap().as_slice(),
        ["U a84b4c76e66710@pc33 192.168.1.20 49170 1928301774;1"]
    );
    // No address in the answer: the relay's own.
    let out = serialized(&ctx);
    assert!(out.contains("\nc=IN IP4 127.0.0.1\n"), "{out}");
    assert!(
        out.contains("\no=alice 2890844526 2890844526 IN IP4 192.168.1.20\n"),
        "{out}"
    );
}

#[test]
fn reply_answers_with_the_callee_tag_first() {
    let mut h = Harness::new(ANSWER).route(RouteType::OnReply);
    let fake = with_relay(&mut h, vec!["36000 203.0.113.9"]);
    let mut ctx = h.ctx();
    assert_eq!(
        run(&mut ctx, &MODULE, "rtpproxy_manage", &["co", "192.0.2.99"]),
        1
    );
    assert_eq!(
        fake.asked.lock().unwrap().as_slice(),
        ["L a84b4c76e66710@pc33 198.51.100.1 3456 8321234356;1 1928301774;1"]
    );
    let out = serialized(&ctx);
    assert!(out.contains("\nc=IN IP4 192.0.2.99\n"), "{out}");
    assert!(out.contains("\nm=audio 36000 RTP/AVP 0\n"), "{out}");
}

#[test]
fn bye_negative_reply_and_failure_route_delete() {
    let mut h = Harness::new(BYE);
    let fake = with_relay(&mut h, vec!["0"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_manage", &[]), 1);
    assert_eq!(
        fake.asked.lock().unwrap().as_slice(),
        ["D a84b4c76e66710@pc33 8321234356 1928301774"]
    );

    let busy = ANSWER
        .replace("200 OK", "486 Busy Here")
        .replace("Content-Type: application/sdp\n", "")
        .replace("Content-Length: 105", "Content-Length: 0");
    let busy = &busy[..busy.find("\n\n").unwrap() + 2];
    let mut h = Harness::new(busy).route(RouteType::OnReply);
    let fake = with_relay(&mut h, vec!["E7"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_manage", &[]), -1);
    assert!(fake.asked.lock().unwrap()[0].starts_with("D "));

    let mut h = Harness::new(OFFER).route(RouteType::Failure);
    let fake = with_relay(&mut h, vec!["0"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_manage", &[]), 1);
    assert_eq!(
        fake.asked.lock().unwrap().as_slice(),
        ["D a84b4c76e66710@pc33 1928301774"]
    );
}

#[test]
fn silent_relay_and_marked_sdp_fail() {
    let mut h = Harness::new(OFFER);
    let fake = with_relay(&mut h, vec![]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_manage", &["co"]), -1);
    assert_eq!(
        serialized(&ctx).replace('\n', "\r\n"),
        OFFER.replace('\n', "\r\n")
    );
    assert_eq!(fake.asked.lock().unwrap().len(), 1);

    let marked = OFFER.replace("Content-Length: 116", "Content-Length: 134") + "a=nortpproxy:yes\n";
    let mut h = Harness::new(&marked);
    let fake = with_relay(&mut h, vec!["1000", "1000"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_offer", &[]), -1);
    assert!(fake.asked.lock().unwrap().is_empty());
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_offer", &["f"]), 1);
}

#[test]
fn nothing_to_do_without_sdp_or_relay() {
    let no_sdp = "OPTIONS sip:x@example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKo
To: <sip:x@example.com>
From: <sip:a@example.org>;tag=1
Call-ID: o1
CSeq: 1 OPTIONS
Content-Length: 0

";
    let mut h = Harness::new(no_sdp);
    let fake = with_relay(&mut h, vec!["1"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_manage", &[]), -1);
    assert!(fake.asked.lock().unwrap().is_empty());

    // Not configured: -1, no panic.
    let mut h = Harness::new(OFFER);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_manage", &[]), -1);
}

#[test]
fn params_are_checked() {
    assert!(check_param(
        "rtpproxy_sock",
        &ParamValue::Str("udp:127.0.0.1:7722".into())
    )
    .is_ok());
    assert!(check_param("rtpproxy_sock", &ParamValue::Str("udp:no where:1".into())).is_err());
    assert!(check_param("rtpproxy_tout", &ParamValue::Int(0)).is_err());
    assert!(crate::modules::testutil::fixed(
        &MODULE,
        "rtpproxy_manage",
        &["cq"],
        &ModParams::default()
    )
    .is_err());
    assert!(crate::modules::testutil::fixed(
        &MODULE,
        "rtpproxy_offer",
        &["co", "nope"],
        &ModParams::default()
    )
    .is_err());
}

#[test]
fn each_stream_is_relayed_and_late_answer_in_ack_puts_the_caller_first() {
    let two = "ACK sip:bob@10.0.0.5 SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKack
To: Bob <sip:bob@example.com>;tag=8321234356
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: late@pc33
CSeq: 1 ACK
Content-Type: application/sdp
Content-Length: 101

v=0
c=IN IP4 192.168.1.20
m=audio 49170 RTP/AVP 0
m=video 0 RTP/AVP 31
m=video 49172 RTP/AVP 31
";
    let mut h = Harness::new(two);
    let fake = with_relay(&mut h, vec!["40000 203.0.113.9", "40002 203.0.113.9"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpproxy_manage", &["r"]), 1);
    // The disabled stream (port 0) is left alone.
    assert_eq!(
        fake.asked.lock().unwrap().as_slice(),
        [
            "L late@pc33 192.168.1.20 49170 1928301774;1 8321234356;1",
            "L late@pc33 192.168.1.20 49172 1928301774;3 8321234356;3"
        ]
    );
    let out = serialized(&ctx);
    assert!(
        out.contains("\nc=IN IP4 203.0.113.9\nm=audio 40000 RTP/AVP 0\nm=video 0 RTP/AVP 31\nm=video 40002 RTP/AVP 31\n"),
        "{out}"
    );
}
