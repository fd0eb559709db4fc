//! The uac module in the engine, sans-IO on virtual time: a carrier proxy
//! rewrites From/To toward a PBX, the caller sees its own values in every
//! reply, in-dialog requests get the other side's values each way, and a
//! 407 from the PBX is answered in failure_route with `uac_auth()`.

mod common;

use std::sync::Arc;

use common::engine::{engine_with, Net};
use ringsip::modules::uac::{codec, UacConfig};

const CALLER: &str = "127.0.0.2:5070";
const PBX: &str = "127.0.0.3:5080";

const CONFIG: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "uac.so"
modparam("uac", "restore_passwd", "s3cret")
modparam("uac", "credential", "carrier:pbx.example:secret")
request_route {
    if (has_totag()) {
        if (loose_route()) {
            t_relay();
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("INVITE")) {
        uac_replace_from("Carrier", "sip:+15551234@carrier.example.com");
        uac_replace_to("sip:pbx@pbx.example");
        record_route();
        t_on_failure("AUTH");
    }
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
failure_route[AUTH] {
    if (t_check_status("407") && uac_auth()) {
        t_relay();
    }
}
"#;

fn net() -> Net {
    Net::of(engine_with(CONFIG, |env, mp| {
        env.services
            .insert(Arc::new(UacConfig::from_modparams(mp).unwrap()));
    }))
}

const INVITE: &str = "INVITE sip:bob@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-inv1;rport
Max-Forwards: 70
From: \"Alice\" <sip:alice@example.org>;tag=a1
To: <sip:bob@example.com>
Call-ID: uac-engine-1
CSeq: 10 INVITE
Contact: <sip:alice@127.0.0.2:5070>
Content-Length: 0

";

/// The PBX's answer to `req` (a request as it received it).
fn answer(req: &common::ua::SipMsg, code: u16, reason: &str, extra: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\n");
    for name in ["Via", "Record-Route", "From"] {
        for v in req.headers(name) {
            out += &format!("{name}: {v}\n");
        }
    }
    out += &format!("To: {};tag=p1\n", req.header("To").unwrap());
    for name in ["Call-ID", "CSeq"] {
        out += &format!("{name}: {}\n", req.header(name).unwrap());
    }
    out += extra;
    out + "Contact: <sip:pbx@127.0.0.3:5080>\nContent-Length: 0\n\n"
}

#[test]
fn a_call_through_the_carrier_shows_each_side_its_own_identities() {
    let mut n = net();
    n.deliver(CALLER, INVITE);
    let got = n.take(PBX);
    assert_eq!(got.len(), 1);
    let inv = &got[0];
    assert_eq!(
        inv.header("From"),
        Some("Carrier <sip:+15551234@carrier.example.com>;tag=a1")
    );
    assert_eq!(inv.header("To"), Some("<sip:pbx@pbx.example>"));
    let vsf = codec::encode(
        b"sip:alice@example.org",
        b"sip:+15551234@carrier.example.com",
        b"s3cret",
    )
    .unwrap();
    let vst = codec::encode(b"sip:bob@example.com", b"sip:pbx@pbx.example", b"s3cret").unwrap();
    assert_eq!(
        inv.header("Record-Route"),
        Some(format!("<sip:127.0.0.1;lr;ftag=a1;vsf={vsf};vst={vst}>").as_str())
    );

    // Every reply shows the caller what it sent.
    n.take(CALLER);
    n.deliver(PBX, &answer(inv, 180, "Ringing", ""));
    n.deliver(PBX, &answer(inv, 200, "OK", ""));
    let replies = n.take(CALLER);
    assert_eq!(replies.len(), 2);
    for r in &replies {
        assert_eq!(
            r.header("From"),
            Some("\"Alice\" <sip:alice@example.org>;tag=a1")
        );
        assert_eq!(r.header("To"), Some("<sip:bob@example.com>;tag=p1"));
    }

    // The caller's BYE reaches the PBX with the PBX's view of the dialog.
    let route = replies[1].header("Record-Route").unwrap().to_string();
    let bye = format!(
        "BYE sip:pbx@127.0.0.3:5080 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-bye1;rport
Max-Forwards: 70
Route: {route}
From: \"Alice\" <sip:alice@example.org>;tag=a1
To: <sip:bob@example.com>;tag=p1
Call-ID: uac-engine-1
CSeq: 11 BYE
Content-Length: 0

"
    );
    n.deliver(CALLER, &bye);
    let got = n.take(PBX);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].header("From"),
        Some("\"Alice\" <sip:+15551234@carrier.example.com>;tag=a1")
    );
    assert_eq!(got[0].header("To"), Some("<sip:pbx@pbx.example>;tag=p1"));
    n.deliver(
        PBX,
        &answer(&got[0], 200, "OK", "").replace(";tag=p1;tag=p1", ";tag=p1"),
    );
    let ok = n.take(CALLER);
    assert_eq!(ok.len(), 1);
    assert_eq!(
        ok[0].header("From"),
        Some("\"Alice\" <sip:alice@example.org>;tag=a1")
    );
    assert_eq!(ok[0].header("To"), Some("<sip:bob@example.com>;tag=p1"));
}

#[test]
fn the_callees_bye_gets_the_callers_identities_back() {
    let mut n = net();
    n.deliver(CALLER, INVITE);
    let inv = n.take(PBX).remove(0);
    let bye = format!(
        "BYE sip:alice@127.0.0.2:5070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.3:5080;branch=z9hG4bK-pbxbye;rport
Max-Forwards: 70
Route: {}
From: <sip:pbx@pbx.example>;tag=p1
To: Carrier <sip:+15551234@carrier.example.com>;tag=a1
Call-ID: uac-engine-1
CSeq: 5 BYE
Content-Length: 0

",
        inv.header("Record-Route").unwrap()
    );
    n.deliver(PBX, &bye);
    let got = n.take(CALLER);
    let got: Vec<_> = got.iter().filter(|m| m.method() == Some("BYE")).collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("From"), Some("<sip:bob@example.com>;tag=p1"));
    assert_eq!(
        got[0].header("To"),
        Some("Carrier <sip:alice@example.org>;tag=a1")
    );
}

#[test]
fn a_407_from_the_pbx_is_answered_with_the_credential() {
    let mut n = net();
    n.deliver(CALLER, INVITE);
    let inv = n.take(PBX).remove(0);
    n.deliver(
        PBX,
        &answer(
            &inv,
            407,
            "Proxy Authentication Required",
            "Proxy-Authenticate: Digest realm=\"pbx.example\", nonce=\"abc\", qop=\"auth\"\n",
        ),
    );
    let got = n.take(PBX);
    let again: Vec<_> = got
        .iter()
        .filter(|m| m.method() == Some("INVITE"))
        .collect();
    assert_eq!(again.len(), 1, "{got:?}");
    let auth = again[0].header("Proxy-Authorization").unwrap();
    assert!(
        auth.starts_with("Digest username=\"carrier\", realm=\"pbx.example\", nonce=\"abc\", uri=\"sip:bob@127.0.0.1\", qop=auth, nc=00000001, cnonce=\""),
        "{auth}"
    );
    // The same CSeq (Kamailio changes it only with dialog's track_cseq_updates),
    // and still the carrier's identities.
    assert_eq!(again[0].header("CSeq"), Some("10 INVITE"));
    assert_eq!(
        again[0].header("From"),
        Some("Carrier <sip:+15551234@carrier.example.com>;tag=a1")
    );
    // The caller never sees the 407.
    assert!(n.take(CALLER).iter().all(|m| m.status() != Some(407)));
}

const SEND_CONFIG: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "rr.so"
loadmodule "uac.so"
modparam("tm", "fr_timer", 2000)
request_route {
    $uac_req(method) = "OPTIONS";
    $uac_req(ruri) = "sip:pbx@127.0.0.3:5080";
    $uac_req(furi) = "sip:carrier@127.0.0.1";
    $uac_req(callid) = $ci + "-probe";
    $uac_req(evroute) = 1;
    if (uac_req_send()) {
        sl_send_reply("200", "Sent");
    }
}
event_route[uac:reply] {
    $var(report) = "X-Code: " + $uac_req(evcode) + " " + $uac_req(evtype) + "\r\n";
    $uac_req(method) = "MESSAGE";
    $uac_req(callid) = "report";
    $uac_req(hdrs) = $var(report);
    $uac_req(evroute) = 0;
    uac_req_send();
}
"#;

const TRIGGER: &str = "MESSAGE sip:carrier@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-msg1;rport
Max-Forwards: 70
From: <sip:alice@example.org>;tag=a1
To: <sip:carrier@127.0.0.1>
Call-ID: send-1
CSeq: 1 MESSAGE
Content-Length: 0

";

#[test]
fn uac_req_send_reports_the_answer_in_the_event_route() {
    let mut n = Net::of(engine_with(SEND_CONFIG, |_, _| {}));
    n.deliver(CALLER, TRIGGER);
    assert_eq!(n.take(CALLER)[0].status(), Some(200));
    let got = n.take(PBX);
    assert_eq!(got.len(), 1);
    let opt = &got[0];
    assert_eq!(opt.request_uri(), Some("sip:pbx@127.0.0.3:5080"));
    assert_eq!(opt.header("To"), Some("<sip:pbx@127.0.0.3:5080>"));
    assert!(opt
        .header("From")
        .unwrap()
        .starts_with("<sip:carrier@127.0.0.1>;tag="));
    assert_eq!(opt.header("CSeq"), Some("10 OPTIONS"));
    assert_eq!(opt.header("Call-ID"), Some("send-1-probe"));
    assert_eq!(opt.header("Max-Forwards"), Some("70"));
    // The PBX answers: nothing goes anywhere but the event route's report.
    let ok = format!(
        "SIP/2.0 200 OK\nVia: {}\nFrom: {}\nTo: {};tag=p9\nCall-ID: send-1-probe\nCSeq: 10 OPTIONS\nContent-Length: 0\n\n",
        opt.header("Via").unwrap(),
        opt.header("From").unwrap(),
        opt.header("To").unwrap()
    );
    n.deliver(PBX, &ok);
    assert!(n.take(CALLER).is_empty());
    let report = n.take(PBX);
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0].method(), Some("MESSAGE"));
    assert_eq!(report[0].header("X-Code"), Some("200 1"));
}

#[test]
fn uac_req_send_retransmits_then_reports_the_timeout() {
    let mut n = Net::of(engine_with(SEND_CONFIG, |_, _| {}));
    n.deliver(CALLER, TRIGGER);
    n.take(CALLER);
    assert_eq!(n.take(PBX).len(), 1);
    // fr_timer 2 s: retransmitted at 0.5 s and 1.5 s, then 408 (local).
    n.advance(std::time::Duration::from_millis(2100));
    let got = n.take(PBX);
    let (again, report): (Vec<_>, Vec<_>) = got.iter().partition(|m| m.method() == Some("OPTIONS"));
    assert_eq!(again.len(), 2, "{got:?}");
    assert_eq!(report.len(), 1, "{got:?}");
    assert_eq!(report[0].header("X-Code"), Some("408 2"));
    assert!(n.take(CALLER).is_empty());
}
