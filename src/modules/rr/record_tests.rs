//! Record-Route bytes as the forwarding code writes them (KAMAILIO-REFERENCE §2).

use bytes::Bytes;

use super::flow::{self, Flow, Token};
use super::loose::loose_route;
use super::record::{
    add_rr_param, record_route, record_route_advertised_address, record_route_preset,
    remove_record_route,
};
use super::testing::{args, env, lines, Harness, S_TCP, S_UDP2, S_V6};
use super::RrConfig;
use crate::modules::core::forward;
use crate::script::ctx::MsgCtx;
use crate::script::registry::{Args, RouteType};
use crate::sip::{Message, Proto};

fn invite(ruri: &str, extra: &str) -> String {
    format!(
        "INVITE {ruri} SIP/2.0\n\
Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKabc\n\
From: \"Alice\" <sip:alice@example.com>;tag=j5w6yw\n\
To: <sip:bob@example.com>\n\
Call-ID: c1@example.com\n\
CSeq: 1 INVITE\n\
Max-Forwards: 70\n\
{extra}Content-Length: 0\n\n"
    )
}

fn dflt() -> RrConfig {
    RrConfig::default()
}

type Step = fn(&mut MsgCtx<'_>, &Args) -> i32;

/// Runs the steps, forwards statelessly, and returns the Record-Route lines sent.
fn sent(h: &mut Harness, steps: &[(Step, &RrConfig, &[&str])]) -> Vec<String> {
    let mut ctx = h.ctx();
    for (f, cfg, a) in steps {
        assert_eq!(f(&mut ctx, &args(cfg, a)), 1);
    }
    assert_eq!(forward::request(&mut ctx, None, None, None), 1);
    let data = ctx.out.last().unwrap().data.clone();
    let msg = Message::parse(data.clone()).expect("sent request re-parses");
    assert!(msg.is_request());
    let text = String::from_utf8(data.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    // Record-Route above our Via, as Kamailio writes it.
    let first = text.lines().nth(1).unwrap_or_default();
    let has_rr = !lines(&text, "Record-Route").is_empty();
    assert_eq!(first.starts_with("Record-Route:"), has_rr, "{text}");
    lines(&text, "Record-Route")
        .into_iter()
        .map(str::to_string)
        .collect()
}

#[test]
fn single_udp_entry_with_ftag() {
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(&mut h, &[(record_route, &dflt(), &[])]),
        ["Record-Route: <sip:192.0.2.10;lr;ftag=j5w6yw>"]
    );
}

#[test]
fn stock_settings_and_full_lr() {
    let stock = RrConfig {
        append_fromtag: false,
        ..dflt()
    };
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(&mut h, &[(record_route, &stock, &[])]),
        ["Record-Route: <sip:192.0.2.10;lr>"]
    );
    let full = RrConfig {
        full_lr: true,
        ..dflt()
    };
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(&mut h, &[(record_route, &full, &[])]),
        ["Record-Route: <sip:192.0.2.10;lr=on;ftag=j5w6yw>"]
    );
}

#[test]
fn params_from_the_call_and_add_rr_param_before_and_after() {
    let cfg = dflt();
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    let got = sent(
        &mut h,
        &[
            (add_rr_param, &cfg, &[";nat=yes"]),
            (record_route, &cfg, &[";p1=v1"]),
            (add_rr_param, &cfg, &["p2=v2"]),
        ],
    );
    assert_eq!(
        got,
        ["Record-Route: <sip:192.0.2.10;lr;ftag=j5w6yw;p1=v1;nat=yes;p2=v2>"]
    );
}

#[test]
fn port_ipv6_and_tcp_transport() {
    // Another port: written.
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", "")).on(S_UDP2);
    assert_eq!(
        sent(&mut h, &[(record_route, &dflt(), &[])]),
        ["Record-Route: <sip:192.0.2.20:5070;lr;ftag=j5w6yw>"]
    );
    // IPv6 in and out: brackets.
    let mut h = Harness::new(&invite("sip:bob@[2001:db8::99]", ""))
        .on(S_V6)
        .source("[2001:db8::1]:5060");
    assert_eq!(
        sent(&mut h, &[(record_route, &dflt(), &[])]),
        ["Record-Route: <sip:[2001:db8::10];lr;ftag=j5w6yw>"]
    );
    // TCP in and out: transport written.
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99;transport=tcp", "")).on(S_TCP);
    assert_eq!(
        sent(&mut h, &[(record_route, &dflt(), &[])]),
        ["Record-Route: <sip:192.0.2.10;transport=tcp;lr;ftag=j5w6yw>"]
    );
}

#[test]
fn double_record_route_when_transport_or_socket_changes() {
    let cfg = dflt();
    // UDP in, TCP out (KAMAILIO-REFERENCE §2 example).
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99;transport=tcp", ""));
    assert_eq!(
        sent(&mut h, &[(record_route, &cfg, &[";p1=v1"])]),
        [
            "Record-Route: <sip:192.0.2.10;transport=tcp;r2=on;lr;ftag=j5w6yw;p1=v1>",
            "Record-Route: <sip:192.0.2.10;r2=on;lr;ftag=j5w6yw;p1=v1>",
        ]
    );
    // IPv6 in, IPv4 out: top is the outgoing side.
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""))
        .on(S_V6)
        .source("[2001:db8::1]:5060");
    assert_eq!(
        sent(&mut h, &[(record_route, &cfg, &[])]),
        [
            "Record-Route: <sip:192.0.2.10;r2=on;lr;ftag=j5w6yw>",
            "Record-Route: <sip:[2001:db8::10];r2=on;lr;ftag=j5w6yw>",
        ]
    );
    // enable_double_rr=0: one entry, the outgoing side.
    let single = RrConfig {
        double_rr: 0,
        ..dflt()
    };
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99;transport=tcp", ""));
    assert_eq!(
        sent(&mut h, &[(record_route, &single, &[])]),
        ["Record-Route: <sip:192.0.2.10;transport=tcp;lr;ftag=j5w6yw>"]
    );
    // enable_double_rr=2: always two, transport always written.
    let always = RrConfig {
        double_rr: 2,
        ..dflt()
    };
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(&mut h, &[(record_route, &always, &[])]),
        [
            "Record-Route: <sip:192.0.2.10;transport=udp;r2=on;lr;ftag=j5w6yw>",
            "Record-Route: <sip:192.0.2.10;transport=udp;r2=on;lr;ftag=j5w6yw>",
        ]
    );
}

/// The top Via of the last request sent.
fn sent_via(h: &Harness) -> String {
    let text = String::from_utf8(h.out.last().unwrap().data.to_vec()).unwrap();
    let via = text.lines().find(|l| l.starts_with("Via:")).unwrap();
    via.split(";branch=").next().unwrap().to_string()
}

#[test]
fn each_socket_of_one_env_writes_its_own_address() {
    // One Env for every request: each socket's text is formatted once, its own.
    let rr: &[(Step, &RrConfig, &[&str])] = &[(record_route, &dflt(), &[])];
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(&mut h, rr),
        ["Record-Route: <sip:192.0.2.10;lr;ftag=j5w6yw>"]
    );
    assert_eq!(sent_via(&h), "Via: SIP/2.0/UDP 192.0.2.10");
    let mut h = h.on(S_UDP2);
    assert_eq!(
        sent(&mut h, rr),
        ["Record-Route: <sip:192.0.2.20:5070;lr;ftag=j5w6yw>"]
    );
    assert_eq!(sent_via(&h), "Via: SIP/2.0/UDP 192.0.2.20:5070");
    // A clone of the Env (its texts with it), received over IPv6.
    let mut h2 = Harness::with_env(h.env.clone(), &invite("sip:bob@[2001:db8::99]", ""))
        .on(S_V6)
        .source("[2001:db8::1]:5060");
    assert_eq!(
        sent(&mut h2, rr),
        ["Record-Route: <sip:[2001:db8::10];lr;ftag=j5w6yw>"]
    );
    assert_eq!(sent_via(&h2), "Via: SIP/2.0/UDP [2001:db8::10]");
    // Back on the first socket, then out on TCP: both sides from the same Env.
    let mut h = h.on(super::testing::S_UDP);
    assert_eq!(
        sent(&mut h, rr),
        ["Record-Route: <sip:192.0.2.10;lr;ftag=j5w6yw>"]
    );
    let mut h3 = Harness::with_env(
        h.env.clone(),
        &invite("sip:bob@203.0.113.99;transport=tcp", ""),
    );
    assert_eq!(
        sent(&mut h3, rr),
        [
            "Record-Route: <sip:192.0.2.10;transport=tcp;r2=on;lr;ftag=j5w6yw>",
            "Record-Route: <sip:192.0.2.10;r2=on;lr;ftag=j5w6yw>",
        ]
    );
    assert_eq!(sent_via(&h3), "Via: SIP/2.0/TCP 192.0.2.10");
}

#[test]
fn wildcard_socket_writes_the_address_the_request_arrived_on() {
    let mut e = env();
    e.sockets[0].addr = "0.0.0.0:5060".parse().unwrap();
    e.sockets[2].addr = "0.0.0.0:5070".parse().unwrap();
    let rr: &[(Step, &RrConfig, &[&str])] = &[(record_route, &dflt(), &[])];
    let mut h = Harness::with_env(e.clone(), &invite("sip:bob@203.0.113.99", ""));
    h.local = "192.0.2.10:5060".parse().unwrap();
    assert_eq!(
        sent(&mut h, rr),
        ["Record-Route: <sip:192.0.2.10;lr;ftag=j5w6yw>"]
    );
    assert_eq!(sent_via(&h), "Via: SIP/2.0/UDP 192.0.2.10");
    // The same Env, another local address: not the first one's text.
    h.local = "192.0.2.11:5060".parse().unwrap();
    assert_eq!(
        sent(&mut h, rr),
        ["Record-Route: <sip:192.0.2.11;lr;ftag=j5w6yw>"]
    );
    assert_eq!(sent_via(&h), "Via: SIP/2.0/UDP 192.0.2.11");
    let mut h = Harness::with_env(e, &invite("sip:bob@203.0.113.99", "")).on(S_UDP2);
    h.local = "192.0.2.20:5070".parse().unwrap();
    assert_eq!(
        sent(&mut h, rr),
        ["Record-Route: <sip:192.0.2.20:5070;lr;ftag=j5w6yw>"]
    );
    assert_eq!(sent_via(&h), "Via: SIP/2.0/UDP 192.0.2.20:5070");
}

#[test]
fn advertised_socket_address() {
    let mut e = env();
    e.sockets[0].advertise = Some(("proxy.example.com".into(), 5060));
    let mut h = Harness::with_env(e, &invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(&mut h, &[(record_route, &dflt(), &[])]),
        ["Record-Route: <sip:proxy.example.com:5060;lr;ftag=j5w6yw>"]
    );
}

#[test]
fn record_route_advertised_address_and_preset() {
    let cfg = dflt();
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(
            &mut h,
            &[(record_route_advertised_address, &cfg, &["203.0.113.1:5080"])]
        ),
        ["Record-Route: <sip:203.0.113.1:5080;lr;ftag=j5w6yw>"]
    );
    // Doubled on a transport change.
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99;transport=tcp", ""));
    assert_eq!(
        sent(
            &mut h,
            &[(record_route_advertised_address, &cfg, &["203.0.113.1"])]
        ),
        [
            "Record-Route: <sip:203.0.113.1;transport=tcp;r2=on;lr;ftag=j5w6yw>",
            "Record-Route: <sip:203.0.113.1;r2=on;lr;ftag=j5w6yw>",
        ]
    );
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(
            &mut h,
            &[(record_route_preset, &cfg, &["1.2.3.4:5080;foo=bar"])]
        ),
        ["Record-Route: <sip:1.2.3.4:5080;foo=bar;ftag=j5w6yw;lr>"]
    );
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(
            &mut h,
            &[(
                record_route_preset,
                &cfg,
                &["1.2.3.4;r2=on", "[2001:db8::1];r2=on"]
            )]
        ),
        [
            "Record-Route: <sip:1.2.3.4;r2=on;ftag=j5w6yw;lr>",
            "Record-Route: <sip:[2001:db8::1];r2=on;ftag=j5w6yw;lr>",
        ]
    );
}

#[test]
fn second_attempt_refused_and_remove_record_route() {
    let cfg = dflt();
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    let mut ctx = h.ctx();
    assert_eq!(record_route(&mut ctx, &args(&cfg, &[])), 1);
    assert_eq!(record_route(&mut ctx, &args(&cfg, &[])), -1);
    assert_eq!(record_route_preset(&mut ctx, &args(&cfg, &["1.2.3.4"])), -1);
    assert_eq!(remove_record_route(&mut ctx, &args(&cfg, &[])), 1);
    assert!(!ctx.rr.has_pending_record_route());
    assert_eq!(forward::request(&mut ctx, None, None, None), 1);
    let text = String::from_utf8(ctx.out[0].data.to_vec()).unwrap();
    assert!(!text.contains("Record-Route"), "{text}");
    // After removal a new one may be asked for; in branch_route a repeat is allowed.
    assert_eq!(record_route(&mut ctx, &args(&cfg, &[])), 1);
    ctx.route_type = RouteType::Branch;
    assert_eq!(record_route(&mut ctx, &args(&cfg, &[])), 1);
}

#[test]
fn user_part_scheme_and_missing_tag() {
    let cfg = RrConfig {
        add_username: true,
        ..dflt()
    };
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(&mut h, &[(record_route, &cfg, &[])]),
        ["Record-Route: <sip:bob@192.0.2.10;lr;ftag=j5w6yw>"]
    );
    // A sips: R-URI gets a sips: Record-Route unless ignore_sips.
    let text = invite("sips:bob@203.0.113.99", "");
    let mut h = Harness::new(&text);
    let mut ctx = h.ctx();
    assert_eq!(record_route(&mut ctx, &args(&dflt(), &[])), 1);
    let mut edits = crate::sip::Edits::new();
    super::write_record_route(&ctx, 0, Proto::Udp, None, &mut edits);
    let mut out = Vec::new();
    crate::sip::serialize(ctx.msg, &edits, &mut out);
    assert!(String::from_utf8_lossy(&out)
        .contains("Record-Route: <sips:192.0.2.10;lr;ftag=j5w6yw>\r\n"));
    // No From tag: no ftag.
    let text = invite("sip:bob@203.0.113.99", "").replace(";tag=j5w6yw", "");
    let mut h = Harness::new(&text);
    assert_eq!(
        sent(&mut h, &[(record_route, &dflt(), &[])]),
        ["Record-Route: <sip:192.0.2.10;lr>"]
    );
}

/// In a dialog, going upstream, the caller's tag is the To tag.
#[test]
fn upstream_request_records_the_to_tag() {
    let text = "NOTIFY sip:alice@203.0.113.50 SIP/2.0\n\
Via: SIP/2.0/UDP 203.0.113.99;branch=z9hG4bKn1\n\
From: <sip:bob@example.com>;tag=bobtag\n\
To: <sip:alice@example.com>;tag=j5w6yw\n\
Call-ID: c1@example.com\n\
CSeq: 7 NOTIFY\n\
Route: <sip:192.0.2.10;lr;ftag=j5w6yw>\n\
Content-Length: 0\n\n";
    let cfg = dflt();
    let mut h = Harness::new(text);
    assert_eq!(
        sent(
            &mut h,
            &[(loose_route, &cfg, &[]), (record_route, &cfg, &[])]
        ),
        ["Record-Route: <sip:192.0.2.10;lr;ftag=j5w6yw>"]
    );
}

/// RFC 5626 §5.7: an outbound client's dialog-forming request gets a flow
/// token in our Record-Route user part.
#[test]
fn outbound_client_gets_a_flow_token() {
    let key = "a flow token key of some length";
    let cfg = RrConfig {
        flow_key: Some(Bytes::from_static(key.as_bytes())),
        ..dflt()
    };
    let text = invite(
        "sip:bob@203.0.113.99",
        "Contact: <sip:alice@10.0.0.5:5060;ob>\n",
    );
    let mut h = Harness::new(&text).source("198.51.100.77:40001");
    let got = sent(&mut h, &[(record_route, &cfg, &[])]);
    assert_eq!(got.len(), 1);
    let user = got[0]
        .strip_prefix("Record-Route: <sip:")
        .and_then(|s| s.split_once('@'))
        .map(|(u, rest)| {
            assert_eq!(rest, "192.0.2.10;lr;ftag=j5w6yw>");
            u
        })
        .unwrap();
    assert_eq!(
        flow::decode(key.as_bytes(), user.as_bytes()),
        Token::Valid(Flow {
            proto: Proto::Udp,
            local: "192.0.2.10:5060".parse().unwrap(),
            remote: "198.51.100.77:40001".parse().unwrap(),
        })
    );
    // Without `ob`, or past another proxy (two Vias), no token.
    let mut h = Harness::new(&invite("sip:bob@203.0.113.99", ""));
    assert_eq!(
        sent(&mut h, &[(record_route, &cfg, &[])]),
        ["Record-Route: <sip:192.0.2.10;lr;ftag=j5w6yw>"]
    );
    let two_vias = text.replace("CSeq:", "Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKua\nCSeq:");
    let mut h = Harness::new(&two_vias);
    assert_eq!(
        sent(&mut h, &[(record_route, &cfg, &[])]),
        ["Record-Route: <sip:192.0.2.10;lr;ftag=j5w6yw>"]
    );
}

/// The whole in-dialog path: loose_route's edits, the R-URI rewrite and a
/// Record-Route, serialized by forward() and parsed again.
#[test]
fn edits_serialize_and_reparse() {
    let text = "BYE sip:192.0.2.10;lr;ftag=j5w6yw SIP/2.0\n\
Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKs\n\
From: <sip:alice@example.com>;tag=j5w6yw\n\
To: <sip:bob@example.com>;tag=b\n\
Call-ID: c1@example.com\n\
CSeq: 3 BYE\n\
Route: <sip:10.9.9.9;lr>,\n <sip:remote@203.0.113.8:5070>\n\
Content-Type: text/plain\n\
Content-Length: 5\n\nhello";
    let cfg = dflt();
    let mut h = Harness::new(text);
    let mut ctx = h.ctx();
    assert_eq!(loose_route(&mut ctx, &args(&cfg, &[])), 1);
    assert_eq!(record_route(&mut ctx, &args(&cfg, &[])), 1);
    assert_eq!(forward::request(&mut ctx, None, None, None), 1);
    let t = &ctx.out[0];
    assert_eq!(t.dst, "10.9.9.9:5060".parse().unwrap());
    let msg = Message::parse(t.data.clone()).unwrap();
    assert_eq!(msg.request_uri(), Some(&b"sip:remote@203.0.113.8:5070"[..]));
    assert_eq!(msg.body(), b"hello");
    let out = String::from_utf8(t.data.to_vec())
        .unwrap()
        .replace("\r\n", "\n");
    assert_eq!(lines(&out, "Route"), ["Route: <sip:10.9.9.9;lr>"]);
    assert_eq!(
        lines(&out, "Record-Route"),
        ["Record-Route: <sip:192.0.2.10;lr;ftag=j5w6yw>"]
    );
}
