//! siptrace through the engine: which copies go out, in which order, with
//! which ends, as Kamailio 5.6.3 sent them for the same exchange (captured
//! on loopback: received INVITE, 100, relayed INVITE, 180 in, 180 out,
//! 200 in, 200 out; an ACK traced on its own).

use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use crate::modules::core::Engine;
use crate::modules::testutil::some_instant;
use crate::script::compile::compile;
use crate::script::ctx::{Env, SocketInfo};
use crate::script::{parse_str, MemoryFiles, Options};
use crate::sip::{Inbound, Proto, Transmit};

const PROXY: &str = "127.0.0.1:5060";
const UAC: &str = "127.0.0.1:5070";
const UAS: &str = "127.0.0.1:5080";
const COLLECTOR: &str = "127.0.0.1:9060";

fn compiled(text: &str) -> Result<crate::script::compile::Compiled, String> {
    let text = format!(
        "loadmodule \"sl.so\"\nloadmodule \"tm.so\"\nloadmodule \"pv.so\"\n\
         loadmodule \"siptrace.so\"\n{text}"
    );
    let files = MemoryFiles::new();
    let cfg = parse_str("t.cfg", &text, &Options::with_files(&files))
        .map_err(|d| d.rendered().join("\n"))?;
    compile(&cfg).map_err(|d| d.rendered().join("\n"))
}

fn engine(text: &str) -> (Engine, Arc<Siptrace>) {
    let c = compiled(text).unwrap_or_else(|e| panic!("{e}"));
    let mut env = Env::for_program(&c.program);
    env.sockets = vec![SocketInfo {
        proto: Proto::Udp,
        addr: PROXY.parse().expect("address"),
        advertise: None,
    }];
    let st = Arc::new(Siptrace::from_modparams(&c.modparams).expect("siptrace params"));
    env.services.insert(st.clone());
    (Engine::new(Arc::new(env), Arc::new(c.program)), st)
}

fn inbound(from: &str, data: &str) -> Inbound {
    Inbound {
        data: Bytes::from(data.to_string()),
        src: from.parse().expect("address"),
        local: PROXY.parse().expect("address"),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    }
}

fn exchange(e: &mut Engine, from: &str, data: &str) -> Vec<Transmit> {
    let mut out = Vec::new();
    e.on_inbound(inbound(from, data), some_instant(), &mut out);
    out
}

/// One HEPv3 packet, read back: (src, dst, correlation, payload's first line).
#[derive(Debug, PartialEq)]
struct Hep {
    src: SocketAddr,
    dst: SocketAddr,
    proto_type: u8,
    correlation: Option<String>,
    first_line: String,
}

fn read_hep(p: &[u8]) -> Hep {
    assert_eq!(&p[..4], b"HEP3");
    assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), p.len());
    let mut i = 6;
    let (mut sip, mut dip, mut sp, mut dp) = ([0u8; 4], [0u8; 4], 0, 0);
    let (mut corr, mut payload, mut proto_type) = (None, Vec::new(), 0);
    while i < p.len() {
        let kind = u16::from_be_bytes([p[i + 2], p[i + 3]]);
        let len = usize::from(u16::from_be_bytes([p[i + 4], p[i + 5]]));
        let v = &p[i + 6..i + len];
        match kind {
            3 => sip.copy_from_slice(v),
            4 => dip.copy_from_slice(v),
            7 => sp = u16::from_be_bytes([v[0], v[1]]),
            8 => dp = u16::from_be_bytes([v[0], v[1]]),
            0x0b => proto_type = v[0],
            0x11 => corr = Some(String::from_utf8_lossy(v).into_owned()),
            0x0f => payload = v.to_vec(),
            _ => {}
        }
        i += len;
    }
    let text = String::from_utf8_lossy(&payload).into_owned();
    Hep {
        src: SocketAddr::from((sip, sp)),
        dst: SocketAddr::from((dip, dp)),
        proto_type,
        correlation: corr,
        first_line: text.split("\r\n").next().unwrap_or("").to_string(),
    }
}

/// The copies among `out` (sent to the collector), read back.
fn copies(out: &[Transmit]) -> Vec<Hep> {
    let c: SocketAddr = COLLECTOR.parse().unwrap();
    out.iter()
        .filter(|t| t.dst == c)
        .map(|t| read_hep(&t.data))
        .collect()
}

fn traffic(out: &[Transmit]) -> Vec<String> {
    let c: SocketAddr = COLLECTOR.parse().unwrap();
    out.iter()
        .filter(|t| t.dst != c)
        .map(|t| {
            let s = String::from_utf8_lossy(&t.data);
            s.split("\r\n").next().unwrap_or("").to_string()
        })
        .collect()
}

fn hep(src: &str, dst: &str, corr: Option<&str>, line: &str) -> Hep {
    Hep {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        proto_type: 1,
        correlation: corr.map(str::to_string),
        first_line: line.to_string(),
    }
}

const HEP3: &str = r#"
modparam("siptrace", "duplicate_uri", "sip:127.0.0.1:9060")
modparam("siptrace", "hep_mode_on", 1)
modparam("siptrace", "hep_version", 3)
modparam("siptrace", "hep_capture_id", 1234)
modparam("siptrace", "trace_on", 1)
modparam("siptrace", "trace_to_database", 0)
"#;

const ROUTE: &str = r#"
request_route {
  if ($rm == "OPTIONS") {
    sip_trace();
    sl_send_reply("200", "OK");
    exit;
  }
  sip_trace("sip:127.0.0.1:9060", "corr-$ci", "t");
  $du = "sip:127.0.0.1:5080";
  t_relay();
}
"#;

fn request(method: &str, branch: &str, to_tag: &str) -> String {
    format!(
        "{method} sip:bob@127.0.0.1:5080 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@127.0.0.1>;tag=a1\r\n\
         To: <sip:bob@127.0.0.1>{to_tag}\r\n\
         Call-ID: inv-1\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:alice@127.0.0.1:5070>\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// A reply to `relayed` (its Via headers, a To tag).
fn reply(relayed: &[u8], code: &str) -> String {
    let text = String::from_utf8_lossy(relayed);
    let mut r = format!("SIP/2.0 {code}\r\n");
    for line in text.split("\r\n") {
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        if ["via", "from", "call-id", "cseq"].contains(&name.as_str()) {
            r.push_str(line);
            r.push_str("\r\n");
        }
        if name == "to" {
            r.push_str(line);
            r.push_str(";tag=b1\r\n");
        }
    }
    r.push_str("Content-Length: 0\r\n\r\n");
    r
}

#[test]
fn message_mode_traces_the_request_only() {
    let (mut e, _) = engine(&format!("{HEP3}{ROUTE}"));
    let out = exchange(&mut e, UAC, &request("OPTIONS", "z9hG4bKopt1", ""));
    assert_eq!(traffic(&out), ["SIP/2.0 200 OK"]);
    assert_eq!(
        copies(&out),
        [hep(
            UAC,
            PROXY,
            None,
            "OPTIONS sip:bob@127.0.0.1:5080 SIP/2.0"
        )]
    );
    // The copy is the request as received, byte for byte.
    let c: SocketAddr = COLLECTOR.parse().unwrap();
    let copy = out.iter().find(|t| t.dst == c).unwrap();
    assert!(copy
        .data
        .ends_with(request("OPTIONS", "z9hG4bKopt1", "").as_bytes()));
}

#[test]
fn transaction_mode_traces_relay_and_replies_in_kamailios_order() {
    let (mut e, _) = engine(&format!("{HEP3}{ROUTE}"));
    let out = exchange(&mut e, UAC, &request("INVITE", "z9hG4bKinv1", ""));
    let invite_line = "INVITE sip:bob@127.0.0.1:5080 SIP/2.0";
    let mut all = copies(&out);
    let uas: SocketAddr = UAS.parse().unwrap();
    let relayed = out.iter().find(|t| t.dst == uas).expect("relayed");
    let relayed = relayed.data.clone();
    for code in ["180 Ringing", "200 OK"] {
        let out = exchange(&mut e, UAS, &reply(&relayed, code));
        all.extend(copies(&out));
    }
    let out = exchange(&mut e, UAC, &request("ACK", "z9hG4bKack1", ";tag=b1"));
    all.extend(copies(&out));
    assert_eq!(
        all,
        [
            hep(UAC, PROXY, Some("corr-inv-1"), invite_line),
            hep(
                PROXY,
                UAC,
                None,
                "SIP/2.0 100 trying -- your call is important to us"
            ),
            hep(PROXY, UAS, None, invite_line),
            hep(UAS, PROXY, None, "SIP/2.0 180 Ringing"),
            hep(PROXY, UAC, None, "SIP/2.0 180 Ringing"),
            hep(UAS, PROXY, None, "SIP/2.0 200 OK"),
            hep(PROXY, UAC, None, "SIP/2.0 200 OK"),
            hep(
                UAC,
                PROXY,
                Some("corr-inv-1"),
                "ACK sip:bob@127.0.0.1:5080 SIP/2.0"
            ),
        ]
    );
}

#[test]
fn trace_flag_makes_the_default_mode_transaction_and_raw_copies_are_the_messages() {
    let (mut e, _) = engine(
        r#"
modparam("siptrace", "duplicate_uri", "sip:127.0.0.1:9060")
modparam("siptrace", "trace_on", 1)
modparam("siptrace", "trace_flag", 3)
modparam("siptrace", "trace_to_database", 0)
request_route {
  setflag(3);
  sip_trace();
  sl_send_reply("200", "OK");
}
"#,
    );
    let req = request("OPTIONS", "z9hG4bKopt1", "");
    let out = exchange(&mut e, UAC, &req);
    let c: SocketAddr = COLLECTOR.parse().unwrap();
    let sent: Vec<_> = out.iter().filter(|t| t.dst != c).collect();
    let dup: Vec<_> = out.iter().filter(|t| t.dst == c).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(dup.len(), 2, "the request and the sl reply");
    assert_eq!(dup[0].data, req.as_bytes());
    assert_eq!(dup[1].data, sent[0].data);
    assert!(dup.iter().all(|t| t.proto == Proto::Udp));
}

#[test]
fn trace_off_sends_nothing_and_returns_false() {
    let (mut e, st) = engine(
        r#"
modparam("siptrace", "duplicate_uri", "sip:127.0.0.1:9060")
modparam("siptrace", "trace_to_database", 0)
request_route {
  if (sip_trace()) { sl_send_reply("200", "traced"); exit; }
  sl_send_reply("500", "not traced");
}
"#,
    );
    let out = exchange(&mut e, UAC, &request("OPTIONS", "z9hG4bKo1", ""));
    assert_eq!(traffic(&out), ["SIP/2.0 500 not traced"]);
    assert_eq!(out.len(), 1);
    st.set_on(true);
    let out = exchange(&mut e, UAC, &request("OPTIONS", "z9hG4bKo2", ""));
    assert_eq!(traffic(&out), ["SIP/2.0 200 traced"]);
    assert_eq!(out.len(), 2);
}

#[test]
fn hlog_sends_a_log_packet_correlated_by_call_id() {
    let (mut e, _) = engine(&format!(
        "{HEP3}{}",
        r#"
request_route {
  hlog("hello $rm");
  hlog("my-corr", "second");
  sl_send_reply("200", "OK");
}
"#
    ));
    let out = exchange(&mut e, UAC, &request("OPTIONS", "z9hG4bKo1", ""));
    let logs = copies(&out);
    assert_eq!(
        logs,
        [
            Hep {
                src: PROXY.parse().unwrap(),
                dst: COLLECTOR.parse().unwrap(),
                proto_type: 100,
                correlation: Some("inv-1".into()),
                first_line: "hello OPTIONS".into(),
            },
            Hep {
                src: PROXY.parse().unwrap(),
                dst: COLLECTOR.parse().unwrap(),
                proto_type: 100,
                correlation: Some("my-corr".into()),
                first_line: "second".into(),
            },
        ]
    );
}

#[test]
fn settings_refused_with_a_reason() {
    let err = |extra: &str| {
        compiled(&format!(
            "modparam(\"siptrace\", \"duplicate_uri\", \"sip:127.0.0.1:9060\")\n{extra}\n\
             request_route {{ sip_trace(); }}"
        ))
        .err()
        .unwrap_or_default()
    };
    assert!(err("").contains("trace_to_database"), "{}", err(""));
    let db0 = "modparam(\"siptrace\", \"trace_to_database\", 0)";
    assert!(
        err(&format!("{db0}\nmodparam(\"siptrace\", \"trace_mode\", 1)"))
            .contains("trace_mode other than 0 is not implemented")
    );
    assert!(err(&format!(
        "{db0}\nmodparam(\"siptrace\", \"hep_version\", 4)"
    ))
    .contains("unsupported version of HEP"));
    let d = compiled(&format!(
        "{db0}\nrequest_route {{ sip_trace(\"sip:127.0.0.1:9060\", \"\", \"d\"); }}"
    ))
    .err()
    .unwrap_or_default();
    assert!(d.contains("dialog tracing"), "{d}");
    assert!(compiled(&format!("{db0}\nrequest_route {{ sip_trace(); }}")).is_ok());
}

#[test]
fn modes_parse_as_kamailio() {
    assert_eq!(Mode::parse(b"m"), Ok(Mode::Message));
    assert_eq!(Mode::parse(b" T "), Ok(Mode::Transaction));
    assert!(Mode::parse(b"mt").is_err());
    assert!(Mode::parse(b"x").is_err());
    assert!(Mode::parse(b"").is_err());
}

#[test]
fn local_ip_and_uris_parse() {
    assert_eq!(
        parse_uri(b"sip:10.1.1.1:5888").unwrap(),
        "10.1.1.1:5888".parse().unwrap()
    );
    assert_eq!(
        parse_uri(b"sip:[::1]").unwrap(),
        "[::1]:5060".parse().unwrap()
    );
    assert!(parse_uri(b"sip:collector.example.net").is_err());
    assert_eq!(
        parse_hostport("udp:10.1.1.1:5064"),
        Some((Some(Proto::Udp), "10.1.1.1:5064".parse().unwrap()))
    );
    assert_eq!(
        parse_hostport("10.1.1.1"),
        Some((None, "10.1.1.1:0".parse().unwrap()))
    );
}

/// An INVITE traced in mode `t` with Kamailio's captured order for what
/// follows: its copies and the INVITE as relayed.
fn traced_invite(e: &mut Engine, call_id: &str) -> (Vec<Hep>, Bytes) {
    let invite = request("INVITE", "z9hG4bKc1", "").replace("inv-1", call_id);
    let out = exchange(e, UAC, &invite);
    let uas: SocketAddr = UAS.parse().unwrap();
    let relayed = out.iter().find(|t| t.dst == uas).expect("relayed");
    (copies(&out), relayed.data.clone())
}

#[test]
fn a_cancelled_invite_is_traced_as_kamailio_does() {
    let (mut e, _) = engine(&format!("{HEP3}{ROUTE}"));
    let (mut all, relayed) = traced_invite(&mut e, "c-1");
    all.extend(copies(&exchange(
        &mut e,
        UAS,
        &reply(&relayed, "180 Ringing"),
    )));
    let cancel = request("CANCEL", "z9hG4bKc1", "").replace("inv-1", "c-1");
    let out = exchange(&mut e, UAC, &cancel);
    all.extend(copies(&out));
    let uas: SocketAddr = UAS.parse().unwrap();
    let fwd = out
        .iter()
        .find(|t| t.dst == uas && t.data.starts_with(b"CANCEL"))
        .expect("CANCEL relayed");
    all.extend(copies(&exchange(&mut e, UAS, &reply(&fwd.data, "200 OK"))));
    let out = exchange(&mut e, UAS, &reply(&relayed, "487 Request Terminated"));
    all.extend(copies(&out));
    let ack = request("ACK", "z9hG4bKc1", ";tag=b1").replace("inv-1", "c-1");
    all.extend(copies(&exchange(&mut e, UAC, &ack)));
    let lines: Vec<_> = all
        .iter()
        .map(|h| {
            (
                h.src.port(),
                h.dst.port(),
                h.correlation.is_some(),
                h.first_line.as_str(),
            )
        })
        .collect();
    let invite = "INVITE sip:bob@127.0.0.1:5080 SIP/2.0";
    let cancel = "CANCEL sip:bob@127.0.0.1:5080 SIP/2.0";
    let ack = "ACK sip:bob@127.0.0.1:5080 SIP/2.0";
    assert_eq!(
        lines,
        [
            (5070, 5060, true, invite),
            (
                5060,
                5070,
                false,
                "SIP/2.0 100 trying -- your call is important to us"
            ),
            (5060, 5080, false, invite),
            (5080, 5060, false, "SIP/2.0 180 Ringing"),
            (5060, 5070, false, "SIP/2.0 180 Ringing"),
            (5070, 5060, false, cancel),
            // ringsip answers the CANCEL before relaying it (Kamailio relays
            // first): the copies follow what goes out, in its order.
            (5060, 5070, false, "SIP/2.0 200 canceling"),
            (5060, 5080, false, cancel),
            (5080, 5060, false, "SIP/2.0 200 OK"),
            (5080, 5060, false, "SIP/2.0 487 Request Terminated"),
            (5060, 5080, false, ack),
            (5060, 5070, false, "SIP/2.0 487 Request Terminated"),
            (5070, 5060, false, ack),
        ]
    );
}

#[test]
fn a_rejected_invite_traces_the_acks_and_the_repeated_final() {
    let (mut e, _) = engine(&format!("{HEP3}{ROUTE}"));
    let (mut all, relayed) = traced_invite(&mut e, "n-1");
    let busy = reply(&relayed, "486 Busy Here");
    all.extend(copies(&exchange(&mut e, UAS, &busy)));
    // The UAS sends its 486 again: ringsip answers with its ACK again.
    let again = exchange(&mut e, UAS, &busy);
    assert!(!traffic(&again).is_empty());
    all.extend(copies(&again));
    let ack = request("ACK", "z9hG4bKc1", ";tag=b1").replace("inv-1", "n-1");
    all.extend(copies(&exchange(&mut e, UAC, &ack)));
    let lines: Vec<_> = all
        .iter()
        .map(|h| (h.src.port(), h.dst.port(), h.first_line.as_str()))
        .collect();
    let invite = "INVITE sip:bob@127.0.0.1:5080 SIP/2.0";
    let ack = "ACK sip:bob@127.0.0.1:5080 SIP/2.0";
    assert_eq!(
        lines,
        [
            (5070, 5060, invite),
            (
                5060,
                5070,
                "SIP/2.0 100 trying -- your call is important to us"
            ),
            (5060, 5080, invite),
            (5080, 5060, "SIP/2.0 486 Busy Here"),
            (5060, 5080, ack),
            (5060, 5070, "SIP/2.0 486 Busy Here"),
            // The repeated 486 and the ACK sent for it: Kamailio 5.6.3
            // traced both (on the wire, same exchange).
            (5080, 5060, "SIP/2.0 486 Busy Here"),
            (5060, 5080, ack),
            (5070, 5060, ack),
        ]
    );
}

#[test]
fn timer_retransmissions_are_not_traced() {
    let (mut e, _) = engine(&format!("{HEP3}{ROUTE}"));
    let (first, _) = traced_invite(&mut e, "r-1");
    assert_eq!(first.len(), 3, "{first:?}");
    let mut out = Vec::new();
    e.on_timer(some_instant() + Duration::from_millis(600), &mut out);
    assert_eq!(
        traffic(&out),
        ["INVITE sip:bob@127.0.0.1:5080 SIP/2.0"],
        "tm retransmits the INVITE"
    );
    assert!(copies(&out).is_empty(), "{:?}", copies(&out));
}

#[test]
fn an_ack_to_a_stateless_reply_is_traced_unless_trace_sl_acks_is_off() {
    for (sl_acks, want) in [("", 1), ("modparam(\"siptrace\", \"trace_sl_acks\", 0)", 0)] {
        let (mut e, _) = engine(&format!(
            "{HEP3}{sl_acks}\nrequest_route {{ sl_send_reply(\"404\", \"Nope\"); }}"
        ));
        let out = exchange(&mut e, UAC, &request("INVITE", "z9hG4bKs1", ""));
        assert_eq!(traffic(&out), ["SIP/2.0 404 Nope"]);
        assert!(
            copies(&out).is_empty(),
            "no sip_trace: the INVITE is not traced"
        );
        let reply = String::from_utf8_lossy(&out[0].data).into_owned();
        let tag = reply
            .split("\r\n")
            .find_map(|l| l.strip_prefix("To: ")?.split(";tag=").nth(1))
            .expect("sl's To tag")
            .to_string();
        let ack = request("ACK", "z9hG4bKs1", &format!(";tag={tag}"));
        let out = exchange(&mut e, UAC, &ack);
        assert!(traffic(&out).is_empty(), "sl absorbs the ACK");
        let got = copies(&out);
        assert_eq!(got.len(), want, "{sl_acks}: {got:?}");
        if want == 1 {
            assert_eq!(
                got[0],
                hep(UAC, PROXY, None, "ACK sip:bob@127.0.0.1:5080 SIP/2.0")
            );
        }
    }
}

#[test]
fn hlog_is_hep3_with_the_capture_id_in_raw_mode_too() {
    let (mut e, _) = engine(
        r#"
modparam("siptrace", "duplicate_uri", "sip:127.0.0.1:9060")
modparam("siptrace", "hep_capture_id", 77)
modparam("siptrace", "trace_to_database", 0)
request_route { hlog("x"); sl_send_reply("200", "OK"); }
"#,
    );
    let out = exchange(&mut e, UAC, &request("OPTIONS", "z9hG4bKo1", ""));
    let c: SocketAddr = COLLECTOR.parse().unwrap();
    let log = out.iter().find(|t| t.dst == c).expect("the log packet");
    assert_eq!(read_hep(&log.data).proto_type, 100);
    // chunk 0x000c: the capture id, u32 network order
    let at = log
        .data
        .windows(6)
        .position(|w| w == [0, 0, 0, 0x0c, 0, 10])
        .expect("capture id chunk");
    assert_eq!(&log.data[at + 6..at + 10], &77u32.to_be_bytes());
}
