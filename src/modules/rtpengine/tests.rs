//! rtpengine requests and functions as a script calls them, against a relay
//! that answers from a script.

use std::sync::{Arc, Mutex};

use super::*;
use crate::modules::rtpproxy::tests::FakeRelay;
use crate::modules::testutil::{run, serialized, Harness};
use crate::script::registry::RouteType;

const OFFER: &str = "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK776asdhds;rport
To: Bob <sip:bob@example.com>
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: a84b4c76e66710@pc33
CSeq: 314159 INVITE
Content-Type: application/sdp
Content-Length: 53

v=0
c=IN IP4 192.168.1.20
m=audio 49170 RTP/AVP 0
";

const ANSWER: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKx
To: Bob <sip:bob@example.com>;tag=8321234356
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: a84b4c76e66710@pc33
CSeq: 314159 INVITE
Content-Type: application/sdp
Content-Length: 48

v=0
c=IN IP4 10.0.0.5
m=audio 3456 RTP/AVP 0
";

fn with_relay(h: &mut Harness, answers: Vec<&'static str>) -> Arc<FakeRelay> {
    let fake = Arc::new(FakeRelay {
        answers: Mutex::new(answers),
        asked: Mutex::new(Vec::new()),
    });
    let mut mp = ModParams::default();
    mp.push(
        "rtpengine",
        "rtpengine_sock",
        ParamValue::Str("udp:127.0.0.1:2223".into()),
    );
    let re = Rtpengine::from_modparams(&mp, fake.clone(), 1, &relay::no_names).unwrap();
    h.env.services.insert(Arc::new(re));
    fake
}

fn asked(fake: &FakeRelay, i: usize) -> Value {
    Value::decode(fake.asked.lock().unwrap()[i].as_bytes()).unwrap()
}

fn strs(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::List(l)) => l
            .iter()
            .map(|x| String::from_utf8_lossy(x.as_bytes().unwrap()).into_owned())
            .collect(),
        _ => Vec::new(),
    }
}

fn s(v: &Value, key: &str) -> String {
    String::from_utf8_lossy(v.get(key).and_then(Value::as_bytes).unwrap_or(b"<none>")).into_owned()
}

#[test]
fn flags_become_request_keys() {
    let d = Value::Dict(build_request(
        "offer",
        "SIP-source-address replace-origin replace-session-connection ICE=remove RTP/AVP direction=pub direction=priv rtcp-mux-demux trust-address via-branch=1 label=x",
    ));
    assert_eq!(s(&d, "command"), "offer");
    assert_eq!(
        strs(d.get("flags")),
        ["SIP-source-address", "trust-address"]
    );
    assert_eq!(strs(d.get("replace")), ["origin", "session-connection"]);
    assert_eq!(strs(d.get("direction")), ["pub", "priv"]);
    assert_eq!(strs(d.get("rtcp-mux")), ["demux"]);
    assert_eq!(s(&d, "ICE"), "remove");
    assert_eq!(s(&d, "transport-protocol"), "RTP/AVP");
    assert_eq!(s(&d, "label"), "x");
    assert!(d.get("via-branch").is_none());
}

#[test]
fn offer_sends_the_sdp_and_takes_the_relay_sdp() {
    let mut h = Harness::new(OFFER);
    let fake = with_relay(
        &mut h,
        vec!["d6:result2:ok3:sdp52:v=0\r\nc=IN IP4 203.0.113.9\r\nm=audio 40000 RTP/AVP 0\r\ne"],
    );
    let mut ctx = h.ctx();
    assert_eq!(
        run(
            &mut ctx,
            &MODULE,
            "rtpengine_manage",
            &["replace-origin replace-session-connection"]
        ),
        1
    );
    let req = asked(&fake, 0);
    assert_eq!(s(&req, "command"), "offer");
    assert_eq!(s(&req, "call-id"), "a84b4c76e66710@pc33");
    assert_eq!(s(&req, "from-tag"), "1928301774");
    assert!(req.get("to-tag").is_none());
    assert_eq!(strs(req.get("received-from")), ["IP4", "198.51.100.1"]);
    assert_eq!(strs(req.get("replace")), ["origin", "session-connection"]);
    assert!(s(&req, "sdp").starts_with("v=0\r\nc=IN IP4 192.168.1.20\r\n"));
    let out = serialized(&ctx);
    assert!(
        out.ends_with(
            "\nContent-Length: 52\n\nv=0\nc=IN IP4 203.0.113.9\nm=audio 40000 RTP/AVP 0\n"
        ),
        "{out}"
    );
}

#[test]
fn reply_answers_and_bye_deletes() {
    let mut h = Harness::new(ANSWER).route(RouteType::OnReply);
    let fake = with_relay(&mut h, vec!["d6:result2:ok3:sdp4:v=0\re"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpengine_manage", &[]), 1);
    let req = asked(&fake, 0);
    assert_eq!(s(&req, "command"), "answer");
    assert_eq!(s(&req, "from-tag"), "1928301774");
    assert_eq!(s(&req, "to-tag"), "8321234356");

    let bye = "BYE sip:alice@198.51.100.1:5070 SIP/2.0
Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKbye
To: Alice <sip:alice@example.org>;tag=1928301774
From: Bob <sip:bob@example.com>;tag=8321234356
Call-ID: a84b4c76e66710@pc33
CSeq: 1 BYE
Content-Length: 0

";
    let mut h = Harness::new(bye);
    let fake = with_relay(&mut h, vec!["d6:result2:oke"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpengine_manage", &[]), 1);
    let req = asked(&fake, 0);
    assert_eq!(s(&req, "command"), "delete");
    assert_eq!(s(&req, "call-id"), "a84b4c76e66710@pc33");
}

#[test]
fn errors_and_silence_fail_without_change() {
    for answer in [
        vec!["d6:result5:error12:error-reason7:no callee"],
        vec!["garbage"],
        vec!["d6:result2:oke"],
        vec![],
    ] {
        let mut h = Harness::new(OFFER);
        with_relay(&mut h, answer.clone());
        let mut ctx = h.ctx();
        assert_eq!(
            run(&mut ctx, &MODULE, "rtpengine_offer", &[]),
            -1,
            "{answer:?}"
        );
        assert!(serialized(&ctx).contains("\nc=IN IP4 192.168.1.20\n"));
    }
}

#[test]
fn params_are_checked() {
    assert!(check_param(
        "rtpengine_sock",
        &ParamValue::Str("udp:127.0.0.1:2223".into())
    )
    .is_ok());
    assert!(check_param("rtpengine_sock", &ParamValue::Str("udp:host".into())).is_err());
    assert!(check_param("rtpengine_tout_ms", &ParamValue::Int(0)).is_err());
}

#[test]
fn ack_with_sdp_answers_with_the_tags_swapped() {
    let ack = "ACK sip:bob@10.0.0.5 SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bKack
To: Bob <sip:bob@example.com>;tag=8321234356
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: late@pc33
CSeq: 1 ACK
Content-Type: application/sdp
Content-Length: 53

v=0
c=IN IP4 192.168.1.20
m=audio 49170 RTP/AVP 0
";
    let mut h = Harness::new(ack);
    let fake = with_relay(&mut h, vec!["d6:result2:ok3:sdp4:v=0\re"]);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rtpengine_manage", &[]), 1);
    let req = asked(&fake, 0);
    assert_eq!(s(&req, "command"), "answer");
    // The offer came from the callee (in its 200): its tag is the from-tag.
    assert_eq!(s(&req, "from-tag"), "8321234356");
    assert_eq!(s(&req, "to-tag"), "1928301774");
}
