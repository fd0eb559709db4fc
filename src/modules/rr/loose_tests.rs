//! `loose_route()` and friends on concrete messages: every return code,
//! RFC 3261 §16.12.1 examples, double Record-Route, preloaded routes, flow tokens.

use super::flow::{self, Flow};
use super::loose::{
    check_route_param, is_direction, loose_route, loose_route_mode, loose_route_preloaded,
    rr_next_hop_route,
};
use super::testing::{args, lines, serialized, Harness, S_TCP, S_UDP, S_UDP2};
use super::RrConfig;
use crate::sip::Proto;

/// A request with `first` as request line and the given extra headers; the
/// To-tag is present when `to_tag` is.
fn req(first: &str, to_tag: Option<&str>, extra: &str) -> String {
    let to = match to_tag {
        Some(t) => format!("To: <sip:bob@example.com>;tag={t}"),
        None => "To: <sip:bob@example.com>".to_string(),
    };
    format!(
        "{first} SIP/2.0\n\
Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKabc\n\
From: <sip:alice@example.com>;tag=alicetag\n\
{to}\n\
Call-ID: c1@example.com\n\
CSeq: 2 BYE\n\
Max-Forwards: 70\n\
{extra}Content-Length: 0\n\n"
    )
}

fn dflt() -> RrConfig {
    RrConfig::default()
}

fn run(h: &mut Harness, cfg: &RrConfig) -> (i32, String, Option<String>, Option<u16>) {
    let mut ctx = h.ctx();
    let code = loose_route(&mut ctx, &args(cfg, &[]));
    let du = ctx
        .dst_uri
        .as_ref()
        .map(|d| String::from_utf8_lossy(d).into_owned());
    (code, serialized(&ctx), du, ctx.force_socket)
}

#[test]
fn no_route_header_is_minus_one() {
    let mut h = Harness::new(&req("BYE sip:bob@203.0.113.99", Some("b"), ""));
    let (code, out, du, _) = run(&mut h, &dflt());
    assert_eq!(code, -1);
    assert_eq!(du, None);
    assert_eq!(
        out,
        String::from_utf8_lossy(h.msg.buf()).replace("\r\n", "\n")
    );
}

#[test]
fn unreadable_route_or_ruri_is_minus_one() {
    for extra in [
        "Route: sip:192.0.2.10;lr\n",
        "Route: <sip:192.0.2.10;lr\n",
        "Route: <sip:192.0.2.10;lr>, <>\n",
    ] {
        let mut h = Harness::new(&req("BYE sip:bob@203.0.113.99", Some("b"), extra));
        assert_eq!(run(&mut h, &dflt()).0, -1, "{extra}");
    }
}

/// RFC 3261 §16.12.1.1: in a dialog, our Route on top, the next one loose.
#[test]
fn in_dialog_our_route_then_a_loose_hop() {
    for extra in [
        "Route: <sip:192.0.2.10;lr;ftag=alicetag>, <sip:203.0.113.1;lr>\n",
        "Route: <sip:192.0.2.10;lr;ftag=alicetag>\nRoute: <sip:203.0.113.1;lr>\n",
    ] {
        let mut h = Harness::new(&req("BYE sip:alice@203.0.113.50", Some("b"), extra));
        let (code, out, du, _) = run(&mut h, &dflt());
        assert_eq!(code, 1);
        assert_eq!(du.as_deref(), Some("sip:203.0.113.1;lr"));
        assert_eq!(lines(&out, "Route"), ["Route: <sip:203.0.113.1;lr>"]);
        assert!(out.starts_with("BYE sip:alice@203.0.113.50 SIP/2.0\n"));
    }
}

#[test]
fn in_dialog_only_our_route_goes_to_the_request_uri() {
    let mut h = Harness::new(&req(
        "BYE sip:bob@203.0.113.99",
        Some("b"),
        "Route: <sip:192.0.2.10;lr;ftag=alicetag>\n",
    ));
    let (code, out, du, _) = run(&mut h, &dflt());
    assert_eq!((code, du), (1, None));
    assert!(lines(&out, "Route").is_empty());
    let mut ctx = h.ctx();
    loose_route(&mut ctx, &args(&dflt(), &[]));
    assert_eq!(rr_next_hop_route(&mut ctx, &args(&dflt(), &[])), -1);
}

#[test]
fn double_record_route_pair_is_removed_and_pins_the_socket() {
    let extra = "Route: <sip:192.0.2.20:5070;r2=on;lr;ftag=alicetag>, <sip:192.0.2.10;transport=tcp;r2=on;lr;ftag=alicetag>\n\
Route: <sip:203.0.113.1;lr>\n";
    let mut h = Harness::new(&req("BYE sip:alice@203.0.113.50", Some("b"), extra)).on(S_UDP2);
    let (code, out, du, socket) = run(&mut h, &dflt());
    assert_eq!(code, 1);
    assert_eq!(du.as_deref(), Some("sip:203.0.113.1;lr"));
    assert_eq!(lines(&out, "Route"), ["Route: <sip:203.0.113.1;lr>"]);
    assert_eq!(socket, Some(S_TCP));
    let mut ctx = h.ctx();
    loose_route(&mut ctx, &args(&dflt(), &[]));
    assert_eq!(rr_next_hop_route(&mut ctx, &args(&dflt(), &[])), 1);

    // Only our pair: the request goes to the R-URI, sent from the second socket.
    let extra = "Route: <sip:192.0.2.20:5070;r2=on;lr>\nRoute: <sip:192.0.2.10;r2=on;lr>\n";
    let mut h = Harness::new(&req("BYE sip:alice@203.0.113.50", Some("b"), extra)).on(S_UDP2);
    let (code, out, du, socket) = run(&mut h, &dflt());
    assert_eq!((code, du, socket), (1, None, Some(S_UDP)));
    assert!(lines(&out, "Route").is_empty());

    // With double RR disabled, r2 means nothing: the twin is the next hop.
    let cfg = RrConfig {
        double_rr: 0,
        ..dflt()
    };
    let mut h = Harness::new(&req("BYE sip:alice@203.0.113.50", Some("b"), extra)).on(S_UDP2);
    let (code, _, du, _) = run(&mut h, &cfg);
    assert_eq!((code, du.as_deref()), (1, Some("sip:192.0.2.10;r2=on;lr")));
}

/// RFC 3261 §16.12.1.2, as P2: a loose router whose next hop (P3) is strict.
/// The R-URI becomes P3 and the old R-URI the last Route (§16.6 step 6).
#[test]
fn loose_to_strict_next_hop() {
    let extra = "Route: <sip:192.0.2.10;lr>,<sip:203.0.113.3>,<sip:203.0.113.4;lr>\n";
    let mut h = Harness::new(&req("BYE sip:callee@203.0.113.99", Some("b"), extra));
    let (code, out, du, _) = run(&mut h, &dflt());
    assert_eq!((code, du), (1, None));
    assert!(out.starts_with("BYE sip:203.0.113.3 SIP/2.0\n"), "{out}");
    assert_eq!(
        lines(&out, "Route"),
        [
            "Route: <sip:203.0.113.4;lr>",
            "Route: <sip:callee@203.0.113.99>"
        ]
    );
}

/// RFC 3261 §16.12.1.2, as P4: the strict router P3 put our Record-Route value
/// in the R-URI; §16.4 puts the last Route (the remote target) back.
#[test]
fn strict_previous_hop_restores_the_remote_target() {
    let extra = "Route: <sip:callee@203.0.113.99>\n";
    let mut h = Harness::new(&req(
        "BYE sip:192.0.2.10;lr;ftag=alicetag",
        Some("b"),
        extra,
    ));
    let (code, out, du, _) = run(&mut h, &dflt());
    assert_eq!((code, du), (1, None));
    assert!(
        out.starts_with("BYE sip:callee@203.0.113.99 SIP/2.0\n"),
        "{out}"
    );
    assert!(lines(&out, "Route").is_empty());
    // Our parameters came in the R-URI.
    let mut ctx = h.ctx();
    loose_route(&mut ctx, &args(&dflt(), &[]));
    assert_eq!(ctx.rr.routed_params(), Some(&b";lr;ftag=alicetag"[..]));
}

/// KAMAILIO-REFERENCE §2 step 3: R-URI ours, next hop loose: `$du` is that hop
/// and the last Route becomes the R-URI.
#[test]
fn strict_previous_hop_with_a_loose_next_hop() {
    let extra = "Route: <sip:10.9.9.9;lr>, <sip:remote@10.8.8.8>\n";
    let mut h = Harness::new(&req("BYE sip:192.0.2.10", Some("b"), extra));
    let (code, out, du, _) = run(&mut h, &dflt());
    assert_eq!((code, du.as_deref()), (1, Some("sip:10.9.9.9;lr")));
    assert!(
        out.starts_with("BYE sip:remote@10.8.8.8 SIP/2.0\n"),
        "{out}"
    );
    assert_eq!(lines(&out, "Route"), ["Route: <sip:10.9.9.9;lr>"]);

    // Our r2 twin on top is skipped first.
    let extra = "Route: <sip:192.0.2.10;transport=tcp;r2=on;lr>\nRoute: <sip:10.9.9.9;lr>\nRoute: <sip:remote@10.8.8.8>\n";
    let mut h = Harness::new(&req("BYE sip:192.0.2.10;r2=on;lr", Some("b"), extra));
    let (code, out, du, socket) = run(&mut h, &dflt());
    assert_eq!(
        (code, du.as_deref(), socket),
        (1, Some("sip:10.9.9.9;lr"), Some(S_TCP))
    );
    assert_eq!(lines(&out, "Route"), ["Route: <sip:10.9.9.9;lr>"]);
    assert!(out.starts_with("BYE sip:remote@10.8.8.8 SIP/2.0\n"));

    // Only the twin: nothing to route on.
    let extra = "Route: <sip:192.0.2.10;transport=tcp;r2=on;lr>\n";
    let mut h = Harness::new(&req("BYE sip:192.0.2.10;r2=on;lr", Some("b"), extra));
    assert_eq!(run(&mut h, &dflt()).0, -1);

    // loose_route_mode(1) skips the test: the top Route is simply the next hop.
    let extra = "Route: <sip:10.9.9.9;lr>, <sip:remote@10.8.8.8>\n";
    let mut h = Harness::new(&req("BYE sip:192.0.2.10", Some("b"), extra));
    let mut ctx = h.ctx();
    assert_eq!(loose_route_mode(&mut ctx, &args(&dflt(), &["1"])), 1);
    assert_eq!(ctx.dst_uri.as_deref(), Some(&b"sip:10.9.9.9;lr"[..]));
    assert_eq!(ctx.new_uri, None);
}

#[test]
fn preloaded_route_to_us_alone_is_minus_three() {
    for extra in [
        "Route: <sip:192.0.2.10;lr>\n",
        "Route: <sip:192.0.2.10:5060;lr>\n",
        "Route: <sip:192.0.2.20:5070;r2=on;lr>, <sip:192.0.2.10;r2=on;lr>\n",
    ] {
        let text = req("INVITE sip:bob@203.0.113.99", None, extra);
        let mut h = Harness::new(&text);
        let (code, out, du, _) = run(&mut h, &dflt());
        assert_eq!((code, du), (-3, None), "{extra}");
        assert!(lines(&out, "Route").is_empty(), "{out}");
        // The header as received is still what the script reads.
        assert!(h.msg.header(crate::sip::HeaderName::Route).is_some());

        let mut h = Harness::new(&text);
        let mut ctx = h.ctx();
        assert_eq!(loose_route_preloaded(&mut ctx, &args(&dflt(), &[])), 1);
        assert!(lines(&serialized(&ctx), "Route").is_empty());
    }
}

#[test]
fn preloaded_route_set_past_us_or_not_us() {
    let extra = "Route: <sip:192.0.2.10;lr>, <sip:203.0.113.7;lr>\n";
    let mut h = Harness::new(&req("INVITE sip:bob@203.0.113.99", None, extra));
    let (code, out, du, _) = run(&mut h, &dflt());
    assert_eq!((code, du.as_deref()), (1, Some("sip:203.0.113.7;lr")));
    assert_eq!(lines(&out, "Route"), ["Route: <sip:203.0.113.7;lr>"]);

    let extra = "Route: <sip:203.0.113.7;lr>\n";
    let mut h = Harness::new(&req("INVITE sip:bob@203.0.113.99", None, extra));
    let (code, out, du, _) = run(&mut h, &dflt());
    assert_eq!((code, du.as_deref()), (1, Some("sip:203.0.113.7;lr")));
    assert_eq!(lines(&out, "Route"), ["Route: <sip:203.0.113.7;lr>"]);
    let mut ctx = h.ctx();
    assert_eq!(loose_route_preloaded(&mut ctx, &args(&dflt(), &[])), -1);
    // Not our Route: no parameters of ours to check.
    assert_eq!(ctx.rr.routed_params(), None);
}

/// "seeds warn": a stock-style script, `if (has_totag()) { if (loose_route())
/// relay; }` then authentication for the rest, must not relay an
/// out-of-dialog request that preloads a Route to us. It never reaches
/// `loose_route()` there; and even a script that calls `loose_route()` first
/// gets false for a Route set that names only us.
#[test]
fn preloaded_route_to_us_never_counts_as_routed() {
    for extra in [
        "Route: <sip:192.0.2.10;lr>\n",
        "Route: <sip:192.0.2.10;lr;ftag=alicetag>\n",
        "Route: <sip:192.0.2.10;r2=on;lr>, <sip:192.0.2.20:5070;r2=on;lr>\n",
        "Route: <sip:192.0.2.10>\n",
    ] {
        let mut h = Harness::new(&req("INVITE sip:victim@203.0.113.99", None, extra));
        let has_totag = h
            .msg
            .header_value(crate::sip::HeaderName::To)
            .and_then(|v| crate::sip::nameaddr::NameAddr::parse(v).ok())
            .and_then(|na| na.tag())
            .is_some();
        assert!(!has_totag);
        let (code, _, du, _) = run(&mut h, &dflt());
        assert!(code < 0, "{extra}: {code}");
        assert_eq!(du, None);
    }
}

#[test]
fn gruu_and_ignored_user_routes_are_not_ours() {
    let extra = "Route: <sip:192.0.2.10;gr=urn:uuid:1;lr>\n";
    let mut h = Harness::new(&req("BYE sip:bob@203.0.113.99", Some("b"), extra));
    let (code, _, du, _) = run(&mut h, &dflt());
    assert_eq!(
        (code, du.as_deref()),
        (1, Some("sip:192.0.2.10;gr=urn:uuid:1;lr"))
    );

    let cfg = RrConfig {
        ignore_user: Some(bytes::Bytes::from_static(b"keep")),
        ..dflt()
    };
    let extra = "Route: <sip:keep@192.0.2.10;lr>\n";
    let mut h = Harness::new(&req("BYE sip:bob@203.0.113.99", Some("b"), extra));
    let (code, _, du, _) = run(&mut h, &cfg);
    assert_eq!((code, du.as_deref()), (1, Some("sip:keep@192.0.2.10;lr")));
}

#[test]
fn maddr_names_the_next_hop() {
    let extra = "Route: <sip:192.0.2.10;lr>, <sip:proxy.example.com:5080;maddr=203.0.113.8;transport=tcp;lr>\n";
    let mut h = Harness::new(&req("BYE sip:bob@203.0.113.99", Some("b"), extra));
    let (code, _, du, _) = run(&mut h, &dflt());
    assert_eq!(
        (code, du.as_deref()),
        (1, Some("sip:203.0.113.8:5080;transport=tcp"))
    );
}

#[test]
fn other_port_or_name_is_not_us() {
    // Our address on another port, or a name we do not answer to.
    for route in ["<sip:192.0.2.10:5099;lr>", "<sip:proxy.example.com;lr>"] {
        let extra = format!("Route: {route}\n");
        let mut h = Harness::new(&req("BYE sip:bob@203.0.113.99", Some("b"), &extra));
        let (code, _, du, _) = run(&mut h, &dflt());
        assert_eq!(code, 1);
        assert_eq!(du.as_deref(), Some(&route[1..route.len() - 1]));
    }
    // An alias is us.
    let mut env = super::testing::env();
    env.aliases.push(("proxy.example.com".into(), None));
    let extra = "Route: <sip:proxy.example.com;lr>\n";
    let mut h = Harness::with_env(env, &req("BYE sip:bob@203.0.113.99", Some("b"), extra));
    assert_eq!(run(&mut h, &dflt()).2, None);
}

const KEY: &str = "a flow token key of some length";

fn flow_cfg() -> RrConfig {
    RrConfig {
        flow_key: Some(bytes::Bytes::from_static(KEY.as_bytes())),
        ..dflt()
    }
}

fn token(proto: Proto, local: &str, remote: &str) -> String {
    let f = Flow {
        proto,
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
    };
    String::from_utf8(flow::encode(KEY.as_bytes(), &f)).unwrap()
}

/// RFC 5626 §5.3: a request toward the agent goes over the flow in the token.
#[test]
fn flow_token_routes_incoming_requests_over_the_flow() {
    let t = token(Proto::Tcp, "192.0.2.10:5060", "198.51.100.77:40001");
    let extra = format!("Route: <sip:{t}@192.0.2.10;lr;ob>\n");
    for to_tag in [Some("b"), None] {
        let mut h = Harness::new(&req("BYE sip:alice@10.0.0.5:5060;ob", to_tag, &extra));
        let (code, out, du, socket) = run(&mut h, &flow_cfg());
        assert_eq!(code, 2);
        assert_eq!(du.as_deref(), Some("sip:198.51.100.77:40001;transport=tcp"));
        assert_eq!(socket, Some(S_TCP));
        assert!(lines(&out, "Route").is_empty());
    }
    // From the flow itself ("outgoing"): routed as usual.
    let mut h = Harness::new(&req("BYE sip:bob@203.0.113.99", Some("b"), &extra))
        .source("198.51.100.77:40001");
    let (code, _, du, _) = run(&mut h, &flow_cfg());
    assert_eq!((code, du), (1, None));
}

#[test]
fn tampered_flow_token_is_minus_two() {
    let t = token(Proto::Udp, "192.0.2.10:5060", "198.51.100.77:40001");
    let mut bad = t.clone().into_bytes();
    bad[20] = if bad[20] == b'x' { b'y' } else { b'x' };
    let bad = String::from_utf8(bad).unwrap();
    let extra = format!("Route: <sip:{bad}@192.0.2.10;lr>\n");
    let mut h = Harness::new(&req("BYE sip:alice@10.0.0.5", Some("b"), &extra));
    let (code, out, du, _) = run(&mut h, &flow_cfg());
    assert_eq!((code, du), (-2, None));
    assert_eq!(lines(&out, "Route").len(), 1);

    // Without a key, flow tokens are ordinary user names.
    let mut h = Harness::new(&req("BYE sip:alice@10.0.0.5", Some("b"), &extra));
    assert_eq!(run(&mut h, &dflt()).0, 1);
    // A token for a socket we do not have is refused too.
    let t = token(Proto::Udp, "192.0.2.99:5060", "198.51.100.77:40001");
    let extra = format!("Route: <sip:{t}@192.0.2.10;lr>\n");
    let mut h = Harness::new(&req("BYE sip:alice@10.0.0.5", Some("b"), &extra));
    assert_eq!(run(&mut h, &flow_cfg()).0, -2);
}

#[test]
fn check_route_param_reads_our_route() {
    let extra = "Route: <sip:192.0.2.10;lr;ftag=alicetag;nat=yes>, <sip:203.0.113.1;lr;nat=no>\n";
    let mut h = Harness::new(&req("BYE sip:bob@203.0.113.99", Some("b"), extra));
    let mut ctx = h.ctx();
    let cfg = dflt();
    assert_eq!(check_route_param(&mut ctx, &args(&cfg, &["nat=yes"])), -1);
    assert_eq!(loose_route(&mut ctx, &args(&cfg, &[])), 1);
    assert_eq!(check_route_param(&mut ctx, &args(&cfg, &["nat=yes"])), 1);
    assert_eq!(check_route_param(&mut ctx, &args(&cfg, &["NAT=YES"])), 1);
    assert_eq!(check_route_param(&mut ctx, &args(&cfg, &["^;lr;ftag="])), 1);
    assert_eq!(check_route_param(&mut ctx, &args(&cfg, &["nat=no"])), -1);
    assert_eq!(check_route_param(&mut ctx, &args(&cfg, &["(unclosed"])), -1);
}

#[test]
fn is_direction_compares_ftag_with_the_from_tag() {
    let dir = |extra: &str, from_tag: &str| {
        let text = req("BYE sip:bob@203.0.113.99", Some("b"), extra)
            .replace(">;tag=alicetag", &format!(">;tag={from_tag}"));
        let mut h = Harness::new(&text);
        let mut ctx = h.ctx();
        let cfg = dflt();
        loose_route(&mut ctx, &args(&cfg, &[]));
        (
            is_direction(&mut ctx, &args(&cfg, &["downstream"])),
            is_direction(&mut ctx, &args(&cfg, &["upstream"])),
        )
    };
    let ours = "Route: <sip:192.0.2.10;lr;ftag=alicetag>\n";
    // From the caller: downstream.
    assert_eq!(dir(ours, "alicetag"), (1, -1));
    // From the callee (its own tag in From): upstream.
    assert_eq!(dir(ours, "bobtag"), (-1, 1));
    // No ftag, or no Route of ours: downstream.
    assert_eq!(dir("Route: <sip:192.0.2.10;lr>\n", "bobtag"), (1, -1));
    assert_eq!(
        dir("Route: <sip:203.0.113.1;lr;ftag=x>\n", "bobtag"),
        (1, -1)
    );
}

mod never_panics {
    use super::*;
    use crate::modules::core::forward;
    use crate::modules::rr::record::record_route;
    use proptest::prelude::*;

    /// A Route value: mostly well-formed entries of ours and others', sometimes garbage.
    fn route_value() -> impl Strategy<Value = String> {
        let host = prop::sample::select(vec![
            "192.0.2.10",
            "192.0.2.10:5060",
            "192.0.2.20:5070",
            "[2001:db8::10]",
            "203.0.113.1",
            "proxy.example.com",
        ]);
        let param = prop::sample::select(vec![
            ";lr",
            ";lr=on",
            ";r2=on",
            ";ftag=x",
            ";maddr=203.0.113.8",
            ";transport=tcp",
            ";gr",
            ";ob",
            ";nat=yes",
        ]);
        let user = prop::sample::select(vec!["", "bob@", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@"]);
        let entry = (user, host, prop::collection::vec(param, 0..4))
            .prop_map(|(u, h, p)| format!("<sip:{u}{h}{}>", p.concat()));
        let garbage = "[<>,;:@a-z0-9 ]{0,30}";
        prop_oneof![
            4 => prop::collection::vec(entry, 1..4).prop_map(|v| v.join(", ")),
            1 => garbage.prop_map(String::from),
        ]
    }

    fn ruri() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "sip:bob@203.0.113.99".to_string(),
            "sip:192.0.2.10;lr;ftag=x".to_string(),
            "sip:192.0.2.10;r2=on;lr".to_string(),
            "sips:bob@203.0.113.99".to_string(),
            "tel:+15551234".to_string(),
        ])
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn on_any_route_set(routes in prop::collection::vec(route_value(), 0..3), ruri in ruri(),
                            tagged in any::<bool>(), key in any::<bool>()) {
            let extra: String = routes.iter().map(|r| format!("Route: {r}\n")).collect();
            let text = req(&format!("BYE {ruri}"), tagged.then_some("b"), &extra);
            if crate::sip::Message::parse(bytes::Bytes::from(text.replace('\n', "\r\n"))).is_err() {
                return Ok(());
            }
            let cfg = if key { flow_cfg() } else { dflt() };
            let mut h = Harness::new(&text);
            let mut ctx = h.ctx();
            let code = loose_route(&mut ctx, &args(&cfg, &[]));
            prop_assert!([1, 2, -1, -2, -3].contains(&code));
            // Out of dialog, a Route set that names only us is never "routed".
            if !tagged && code > 0 {
                prop_assert!(ctx.dst_uri.is_some() || ctx.new_uri.is_some());
            }
            let _ = record_route(&mut ctx, &args(&cfg, &[";p=1"]));
            let _ = forward::request(&mut ctx, None, None, None);
            for t in ctx.out.iter() {
                prop_assert!(crate::sip::Message::parse(t.data.clone()).is_ok());
            }
        }
    }
}
