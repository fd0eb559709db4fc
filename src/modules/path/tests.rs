use super::*;
use crate::modules::core::forward;
use crate::modules::testutil::{call, fixed, sent, Harness, INVITE};
use crate::script::registry::{ParamValue, RouteType};

const REGISTER: &str = "REGISTER sip:registrar.example.com SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: <sip:alice@example.com>
From: <sip:alice@example.com>;tag=456248
Call-ID: 843817637684230@998sdasdh09
CSeq: 1826 REGISTER
Contact: <sip:alice@198.51.100.1:5070>
Supported: path
Content-Length: 0

";

fn params(list: &[(&str, ParamValue)]) -> ModParams {
    let mut p = ModParams::default();
    for (name, v) in list {
        p.push("path", name, v.clone());
    }
    p
}

/// The request as forwarded to 203.0.113.5 over `proto`.
fn relayed(h: &mut Harness, calls: &[(&str, &[&str])], p: &ModParams, proto: Proto) -> String {
    let mut ctx = h.ctx();
    for (name, args) in calls {
        assert_eq!(call(&mut ctx, &MODULE, name, args, p), 1, "{name}");
    }
    assert_eq!(
        forward::request(&mut ctx, Some(b"203.0.113.5"), Some(5060), Some(proto)),
        1
    );
    drop(ctx);
    sent(&h.out)
}

fn path_lines_of(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("Path:")).collect()
}

#[test]
fn add_path_names_the_outgoing_socket_at_the_end_of_the_headers() {
    let mut h = Harness::new(REGISTER);
    let out = relayed(
        &mut h,
        &[("add_path", &[])],
        &ModParams::default(),
        Proto::Udp,
    );
    assert_eq!(path_lines_of(&out), ["Path: <sip:192.0.2.10;lr>"]);
    // Appended after the last header, before the blank line.
    assert!(
        out.contains("Content-Length: 0\nPath: <sip:192.0.2.10;lr>\n\n"),
        "{out}"
    );
}

#[test]
fn add_path_with_user_and_params() {
    let mut h = Harness::new(REGISTER);
    let out = relayed(
        &mut h,
        &[("add_path", &["loadbalancer", "ob"])],
        &ModParams::default(),
        Proto::Udp,
    );
    assert_eq!(
        path_lines_of(&out),
        ["Path: <sip:loadbalancer@192.0.2.10;lr;ob>"]
    );
}

#[test]
fn add_path_received_carries_the_source_address() {
    let mut h = Harness::new(REGISTER);
    let out = relayed(
        &mut h,
        &[("add_path_received", &[])],
        &ModParams::default(),
        Proto::Udp,
    );
    assert_eq!(
        path_lines_of(&out),
        ["Path: <sip:192.0.2.10;lr;received=sip:198.51.100.1:5070>"]
    );
    let mut h = Harness::new(REGISTER);
    let out = relayed(
        &mut h,
        &[("add_path_received", &["inbound", "x=1"])],
        &ModParams::default(),
        Proto::Udp,
    );
    assert_eq!(
        path_lines_of(&out),
        ["Path: <sip:inbound@192.0.2.10;lr;received=sip:198.51.100.1:5070;x=1>"]
    );
}

#[test]
fn a_stream_transport_is_escaped_in_received_and_plain_in_our_address() {
    let mut h = Harness::new(REGISTER).tcp();
    let out = relayed(
        &mut h,
        &[("add_path_received", &[])],
        &ModParams::default(),
        Proto::Tcp,
    );
    assert_eq!(
        path_lines_of(&out),
        ["Path: <sip:192.0.2.10;transport=tcp;lr;received=sip:198.51.100.1:5070%3Btransport%3Dtcp>"]
    );
}

#[test]
fn received_format_1_and_received_name() {
    let p = params(&[
        ("received_format", ParamValue::Int(1)),
        ("received_name", ParamValue::Str("rcv".into())),
    ]);
    let mut h = Harness::new(REGISTER).tcp();
    let out = relayed(&mut h, &[("add_path_received", &[])], &p, Proto::Udp);
    assert_eq!(
        path_lines_of(&out),
        ["Path: <sip:192.0.2.10;lr;rcv=198.51.100.1~5070~2>"]
    );
}

#[test]
fn ours_goes_before_an_existing_path() {
    let text = REGISTER.replace(
        "Supported: path\n",
        "Path: <sip:edge.example.net;lr>\nSupported: path\n",
    );
    let mut h = Harness::new(&text);
    let out = relayed(
        &mut h,
        &[("add_path", &[])],
        &ModParams::default(),
        Proto::Udp,
    );
    assert_eq!(
        path_lines_of(&out),
        [
            "Path: <sip:192.0.2.10;lr>",
            "Path: <sip:edge.example.net;lr>"
        ]
    );
}

#[test]
fn enable_r2_writes_the_outgoing_then_the_receiving_socket() {
    let p = params(&[("enable_r2", ParamValue::Int(1))]);
    let mut h = Harness::new(REGISTER);
    let out = relayed(&mut h, &[("add_path", &["u"])], &p, Proto::Tcp);
    assert_eq!(
        path_lines_of(&out),
        [
            "Path: <sip:u@192.0.2.10;transport=tcp;lr;r2=on>",
            "Path: <sip:u@192.0.2.10;lr;r2=on>"
        ]
    );
}

#[test]
fn nothing_asked_nothing_written() {
    let mut h = Harness::new(INVITE);
    let out = relayed(&mut h, &[], &ModParams::default(), Proto::Udp);
    assert!(path_lines_of(&out).is_empty());
}

#[test]
fn bad_parameters_are_refused_at_start_up() {
    let p = params(&[("received_format", ParamValue::Int(3))]);
    let err = fixed(&MODULE, "add_path", &[], &p).unwrap_err();
    assert!(err.contains("received_format"), "{err}");
    let p = params(&[("received_name", ParamValue::Str("a b".into()))]);
    assert!(fixed(&MODULE, "add_path_received", &[], &p).is_err());
}

#[test]
fn request_route_only() {
    for f in MODULE.functions {
        assert_eq!(f.routes, RouteMask::REQUEST, "{}", f.name);
        assert!(!f.routes.allows(RouteType::Failure));
    }
}

#[test]
fn route_hook_reads_both_formats() {
    let hook = |list: &[(&str, ParamValue)]| {
        let mut all = vec![("use_received", ParamValue::Int(1))];
        all.extend_from_slice(list);
        RouteHook::from_params(&params(&all)).expect("use_received set")
    };
    let h = hook(&[]);
    assert_eq!(
        h.destination(b";lr;received=sip:198.51.100.1:5070%3Btransport%3Dtcp")
            .as_deref(),
        Some(&b"sip:198.51.100.1:5070;transport=tcp"[..])
    );
    assert_eq!(
        h.destination(b";lr;Received=\"sip:[2001:db8::1]:5070\"")
            .as_deref(),
        Some(&b"sip:[2001:db8::1]:5070"[..])
    );
    assert_eq!(h.destination(b";lr;ftag=x"), None);
    assert_eq!(h.destination(b";lr;received="), None);
    assert_eq!(h.destination(b";lr;received=sip:1.2.3.4%G1"), None);
    let h = hook(&[("received_format", ParamValue::Int(1))]);
    assert_eq!(
        h.destination(b";lr;received=198.51.100.1~5070~1")
            .as_deref(),
        Some(&b"sip:198.51.100.1:5070"[..])
    );
    assert_eq!(
        h.destination(b";lr;received=198.51.100.1~5070~3")
            .as_deref(),
        Some(&b"sip:198.51.100.1:5070;transport=tls"[..])
    );
    assert_eq!(h.destination(b";lr;received=198.51.100.1~5070~9"), None);
    assert_eq!(h.destination(b";lr;received=198.51.100.1~5070"), None);
    assert!(RouteHook::from_params(&ModParams::default()).is_none());
}

const IN_DIALOG: &str = "INVITE sip:alice@198.51.100.7:5070 SIP/2.0
Via: SIP/2.0/UDP 203.0.113.5;branch=z9hG4bKreg1
Max-Forwards: 70
Route: <sip:192.0.2.10;lr;received=sip:198.51.100.1:6000%3Btransport%3Dtcp>
To: <sip:alice@example.com>
From: <sip:bob@example.com>;tag=abc
Call-ID: c1
CSeq: 1 INVITE
Content-Length: 0

";

#[test]
fn loose_route_with_use_received_goes_to_the_received_address() {
    let rr = &crate::modules::rr::MODULE;
    let mut p = params(&[("use_received", ParamValue::Int(1))]);
    let mut h = Harness::new(IN_DIALOG);
    let mut ctx = h.ctx();
    // Preloaded Route naming only us: -3, and $du from `received`.
    assert_eq!(call(&mut ctx, rr, "loose_route", &[], &p), -3);
    assert_eq!(
        ctx.dst_uri.as_deref(),
        Some(&b"sip:198.51.100.1:6000;transport=tcp"[..])
    );
    drop(ctx);
    // Without use_received the received parameter is ignored.
    p = ModParams::default();
    let mut h = Harness::new(IN_DIALOG);
    let mut ctx = h.ctx();
    assert_eq!(call(&mut ctx, rr, "loose_route", &[], &p), -3);
    assert_eq!(ctx.dst_uri, None);
}
