//! sanity_check: each check's verdict and reply, autodrop and noreply.

use super::*;
use crate::modules::testutil::{call, Harness, INVITE};
use crate::script::registry::{ParamValue, RouteType};

/// Runs `sanity_check(checks, uri_checks)` on `text`; the return code and the reply's first line.
fn run_check(
    text: &str,
    checks: u32,
    uri_checks: u32,
    params: &ModParams,
) -> (i32, Option<String>) {
    let mut h = Harness::new(text);
    let mut ctx = h.ctx();
    let (c, u) = (checks.to_string(), uri_checks.to_string());
    let rc = call(&mut ctx, &MODULE, "sanity_check", &[&c, &u], params);
    let reply = h.out.first().map(|t| {
        let s = String::from_utf8_lossy(&t.data).into_owned();
        s.lines().next().unwrap_or("").to_string()
    });
    (rc, reply)
}

fn noautodrop() -> ModParams {
    let mut p = ModParams::default();
    p.push("sanity", "autodrop", ParamValue::Int(0));
    p
}

fn failing(text: &str, checks: u32, uri_checks: u32) -> Option<String> {
    let (rc, reply) = run_check(text, checks, uri_checks, &noautodrop());
    assert_eq!(rc, -1, "{text}");
    reply
}

#[test]
fn a_good_request_passes_every_check() {
    let (rc, reply) = run_check(INVITE, 0x7fff, 15, &ModParams::default());
    assert_eq!((rc, reply), (1, None));
}

#[test]
fn request_line_checks() {
    // The parser refuses another SIP version before the script runs (check 1 cannot fail).
    assert!(Message::parse(INVITE.replace("SIP/2.0\n", "SIP/3.0\n").into()).is_err());
    let s = INVITE.replacen("sip:bob@example.com SIP", "http://example.com/ SIP", 1);
    // Kamailio 5.6's URI parser refuses a scheme it does not know: 400
    // (sidebyside hunt_route_sanity.cfg).
    assert_eq!(
        failing(&s, RURI_SCHEME, 0).as_deref(),
        Some("SIP/2.0 400 Bad Request URI")
    );
    let b = INVITE.replacen("sip:bob@example.com SIP", "sip:bob@exa]mple.com SIP", 1);
    assert_eq!(
        failing(&b, RURI_SCHEME, 0).as_deref(),
        Some("SIP/2.0 400 Bad Request URI")
    );
    assert_eq!(
        failing(&b, PARSE_URIS, URI_RURI).as_deref(),
        Some("SIP/2.0 400 Bad Request URI")
    );
}

#[test]
fn cseq_checks() {
    let m = INVITE.replacen("CSeq: 314159 INVITE", "CSeq: 314159 BYE", 1);
    assert_eq!(
        failing(&m, CSEQ_METHOD, 0).as_deref(),
        Some("SIP/2.0 400 CSeq method does not match request method")
    );
    let n = INVITE.replacen("CSeq: 314159 INVITE", "CSeq: 99999999999 INVITE", 1);
    assert_eq!(
        failing(&n, CSEQ_VALUE, 0).as_deref(),
        Some("SIP/2.0 400 CSeq number is illegal")
    );
    // Kamailio reads the number as the run before the white space, digits
    // or not (checked live: `x`, `-1` and `1.5` are illegal numbers).
    for number in ["x", "-1", "1.5", "0x10"] {
        let m = INVITE.replacen("314159", number, 1);
        assert_eq!(
            failing(&m, CSEQ_VALUE, 0).as_deref(),
            Some("SIP/2.0 400 CSeq number is illegal"),
            "{number}"
        );
    }
    let m = INVITE.replacen("CSeq: 314159 INVITE", "CSeq: 1 INV/ITE", 1);
    assert_eq!(
        failing(&m, CSEQ_METHOD, 0).as_deref(),
        Some("SIP/2.0 400 CSeq method does not match request method")
    );
    // `CSeq: INVITE` has no method for Kamailio's parser: the request is
    // dropped before the script, and a reply cannot be built for it here.
    let e = INVITE.replacen("CSeq: 314159 INVITE", "CSeq: INVITE", 1);
    assert_eq!(failing(&e, CSEQ_VALUE, 0), None);
}

/// A header field Kamailio's parser refuses, past the ones it requires:
/// the required-headers check parses the whole section and fails with no
/// reply (Kamailio logs that its 400 could not be sent).
#[test]
fn a_broken_header_fails_the_required_headers_check_silently() {
    let m = INVITE.replacen("Contact:", "Max-Forwards: 1\nContact:", 1);
    assert_eq!(
        run_check(&m, REQUIRED_HEADERS, 0, &ModParams::default()),
        (0, None)
    );
    let (rc, _) = run_check(&m, CSEQ_VALUE, 0, &ModParams::default());
    assert_eq!(rc, 1);
}

#[test]
fn content_length_must_match_what_arrived() {
    let longer = INVITE.replacen("Content-Length: 5", "Content-Length: 3", 1);
    assert_eq!(
        failing(&longer, CL, 0).as_deref(),
        Some("SIP/2.0 400 Content-Length mis-match")
    );
    assert_eq!(run_check(INVITE, CL, 0, &ModParams::default()).0, 1);
    // A datagram shorter than its Content-Length reaches the script and
    // fails here, as in Kamailio (checked live).
    let shorter = INVITE.replacen("Content-Length: 5", "Content-Length: 20", 1);
    assert_eq!(
        failing(&shorter, CL, 0).as_deref(),
        Some("SIP/2.0 400 Content-Length mis-match")
    );
}

#[test]
fn expires_and_proxy_require() {
    let e = INVITE.replacen("Contact:", "Expires: soon\nContact:", 1);
    assert_eq!(
        failing(&e, EXPIRES_VALUE, 0).as_deref(),
        Some("SIP/2.0 400 Expires value is illegal")
    );
    let pr = INVITE.replacen("Contact:", "Proxy-Require: foo, bar\nContact:", 1);
    let mut h = Harness::new(&pr);
    let mut ctx = h.ctx();
    let mut p = noautodrop();
    p.push("sanity", "proxy_require", ParamValue::Str("foo".into()));
    assert_eq!(call(&mut ctx, &MODULE, "sanity_check", &["512"], &p), -1);
    let reply = crate::modules::testutil::sent(&h.out);
    assert!(
        reply.starts_with("SIP/2.0 420 Bad Proxy Require Extension\n"),
        "{reply}"
    );
    assert!(reply.contains("\nUnsupported: bar\n"), "{reply}");
}

#[test]
fn uri_checks() {
    let f = INVITE.replacen("<sip:alice@example.org>", "<sip:alice@exa]mple.org>", 1);
    assert_eq!(
        failing(&f, PARSE_URIS, URI_FROM).as_deref(),
        Some("SIP/2.0 400 Invalid From Header")
    );
    // Kamailio 5.6's text, misspelt as it is.
    let t = INVITE.replacen("<sip:bob@example.com>", "<sip:bob@exa]mple.com>", 1);
    assert_eq!(
        failing(&t, PARSE_URIS, URI_TO).as_deref(),
        Some("SIP/2.0 400 Ivalid To Header")
    );
    assert_eq!(
        run_check(&f, PARSE_URIS, URI_TO, &ModParams::default()).0,
        1
    );
    let c = INVITE.replacen(
        "<sip:alice@198.51.100.1:5070>",
        "<sip:alice@198.51.100.1:99999>",
        1,
    );
    assert_eq!(
        failing(&c, PARSE_URIS, URI_CONTACT).as_deref(),
        Some("SIP/2.0 400 Bad Contact URI")
    );
}

/// Kamailio 5.6 answers these 400 (sidebyside hunt_route_sanity.cfg
/// sanity_all_checks).
#[test]
fn duplicate_tags_and_digest_failures_are_answered() {
    let d = INVITE.replacen(";tag=1928301774", ";tag=1;tag=2", 1);
    assert_eq!(
        failing(&d, DUPLICATE_TAGS, 0).as_deref(),
        Some("SIP/2.0 400 Many From Tag Params")
    );
    let auth = |v: &str| INVITE.replacen("Contact:", &format!("Authorization: {v}\nContact:"), 1);
    // Fields missing: no realm, no uri.
    let a = auth("Digest username=\"a\", nonce=\"n\", response=\"r\"");
    assert_eq!(
        failing(&a, DIGEST, 0).as_deref(),
        Some("SIP/2.0 400 Bad Auth Credentials")
    );
    let a = auth(
        "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:b\", response=\"r\", qop=auth",
    );
    assert_eq!(
        failing(&a, DIGEST, 0).as_deref(),
        Some("SIP/2.0 400 Bad Auth Credentials")
    );
    let a = auth("Digest nonsense");
    assert_eq!(
        failing(&a, DIGEST, 0).as_deref(),
        Some("SIP/2.0 400 Bad Auth Header")
    );
    let a = auth("Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:b\", response=\"r\"");
    assert_eq!(run_check(&a, DIGEST, 0, &noautodrop()).0, 1);
}

/// Masks past the checks Kamailio 5.6 knows (msg 32768 and up, URI 16 and
/// up): -1 and no reply, whatever the message.
#[test]
fn masks_past_the_known_checks_fail_silently() {
    assert_eq!(run_check(INVITE, 65535, 15, &noautodrop()), (-1, None));
    assert_eq!(run_check(INVITE, 8191, 16, &noautodrop()), (-1, None));
    assert_eq!(run_check(INVITE, 32767, 15, &noautodrop()), (1, None));
}

#[test]
fn autodrop_stops_the_script_and_ack_is_never_answered() {
    let m = INVITE.replacen("CSeq: 314159 INVITE", "CSeq: 314159 BYE", 1);
    let (rc, reply) = run_check(&m, CSEQ_METHOD, 0, &ModParams::default());
    assert_eq!(rc, 0);
    assert!(reply.is_some());
    let ack = m.replacen("INVITE sip:", "ACK sip:", 1);
    assert_eq!(
        run_check(&ack, CSEQ_METHOD, 0, &ModParams::default()),
        (0, None)
    );
}

#[test]
fn noreply_holds_the_reply_for_sanity_reply() {
    let m = INVITE.replacen("CSeq: 314159 INVITE", "CSeq: 314159 BYE", 1);
    let mut h = Harness::new(&m);
    let mut ctx = h.ctx();
    let mut p = noautodrop();
    p.push("sanity", "noreply", ParamValue::Int(1));
    assert_eq!(call(&mut ctx, &MODULE, "sanity_check", &[], &p), -1);
    assert!(ctx.out.is_empty());
    assert_eq!(call(&mut ctx, &MODULE, "sanity_reply", &[], &p), 1);
    assert_eq!(call(&mut ctx, &MODULE, "sanity_reply", &[], &p), -1);
    let reply = crate::modules::testutil::sent(&h.out);
    assert!(
        reply.starts_with("SIP/2.0 400 CSeq method does not match request method\n"),
        "{reply}"
    );
}

#[test]
fn stock_reply_checks_pass_a_good_reply() {
    let reply = "SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1
From: <sip:a@example.org>;tag=1
To: <sip:b@example.com>;tag=2
Call-ID: c1
CSeq: 1 INVITE
Content-Length: 0

";
    let mut h = Harness::new(reply).route(RouteType::Reply);
    let mut ctx = h.ctx();
    assert_eq!(
        call(
            &mut ctx,
            &MODULE,
            "sanity_check",
            &["17604", "6"],
            &ModParams::default()
        ),
        1
    );
}

#[test]
fn defaults_come_from_module_parameters() {
    let m = INVITE.replacen("CSeq: 314159 INVITE", "CSeq: 314159 BYE", 1);
    let mut p = noautodrop();
    p.push("sanity", "default_checks", ParamValue::Int(1));
    let mut h = Harness::new(&m);
    let mut ctx = h.ctx();
    assert_eq!(call(&mut ctx, &MODULE, "sanity_check", &[], &p), 1);
}
