//! siputils functions on requests, R-URIs and strings.

use super::*;
use crate::modules::testutil::{call, run, sent, Harness, INVITE};
use crate::script::pvkind::{PvKind, PvRef};

#[test]
fn message_tests() {
    let mut h = Harness::new(INVITE);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "has_totag", &[]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "is_request", &[]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "is_reply", &[]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "is_first_hop", &[]), 1);
    let two = INVITE.replacen("Via:", "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\nVia:", 1);
    let two = two.replacen(
        "To: Bob <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=9",
        1,
    );
    let mut h = Harness::new(&two);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "has_totag", &[]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "is_first_hop", &[]), -1);
}

#[test]
fn ruri_parameters() {
    let text = INVITE.replacen(
        "sip:bob@example.com SIP",
        "sip:bob@example.com;transport=tcp;x=1?h=v SIP",
        1,
    );
    let mut h = Harness::new(&text);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "uri_param", &["transport"]), 1);
    assert_eq!(
        run(&mut ctx, &MODULE, "uri_param", &["transport", "tcp"]),
        1
    );
    assert_eq!(
        run(&mut ctx, &MODULE, "uri_param", &["transport", "udp"]),
        -1
    );
    assert_eq!(run(&mut ctx, &MODULE, "uri_param", &["lr"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "add_uri_param", &["nat=yes"]), 1);
    assert_eq!(
        ctx.ruri(),
        b"sip:bob@example.com;transport=tcp;x=1;nat=yes?h=v"
    );
    assert_eq!(run(&mut ctx, &MODULE, "uri_param_rm", &["x"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "uri_param_rm", &["x"]), -1);
    assert_eq!(ctx.ruri(), b"sip:bob@example.com;transport=tcp;nat=yes?h=v");
    let args = Args(vec![
        Arg::Str("nat".into()),
        Arg::Pv(PvRef::new(PvKind::Du)),
    ]);
    assert_eq!(get_uri_param(&mut ctx, &args), 1);
    assert_eq!(ctx.dst_uri.as_deref(), Some(&b"yes"[..]));
    let mut h = Harness::new(INVITE);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "add_uri_param", &["lr"]), 1);
    assert_eq!(ctx.ruri(), b"sip:bob@example.com;lr");
}

#[test]
fn tel_to_sip() {
    let mut h = Harness::new(INVITE);
    let mut ctx = h.ctx();
    let args = |u: &str| {
        Args(vec![
            Arg::Str(Bytes::copy_from_slice(u.as_bytes())),
            Arg::Str("example.com".into()),
            Arg::Pv(PvRef::new(PvKind::Du)),
        ])
    };
    assert_eq!(tel2sip(&mut ctx, &args("tel:+1-201-555-0123;ext=1")), 1);
    assert_eq!(
        ctx.dst_uri.as_deref(),
        Some(&b"sip:+12015550123;ext=1@example.com;user=phone"[..])
    );
    assert_eq!(tel2sip(&mut ctx, &args("sip:a@b")), 2);
    assert_eq!(tel2sip(&mut ctx, &args("tel:???")), -1);
}

#[test]
fn string_tests() {
    let mut h = Harness::new(INVITE);
    let mut ctx = h.ctx();
    for (f, a, want) in [
        ("is_e164", &["+4930123456"][..], 1),
        ("is_e164", &["4930123456"], -1),
        ("is_e164", &["+1234567890123456"], -1),
        ("is_uri_user_e164", &["sip:+4930123@h"], 1),
        ("is_uri", &["sip:h"], 1),
        ("is_uri", &["h h"], -1),
        ("is_tel_number", &["+123"], 1),
        ("is_tel_number", &["12a"], -1),
        ("is_numeric", &["0123"], 1),
        ("is_numeric", &[""], -1),
        ("is_alphanum", &["ab12"], 1),
        // As Kamailio 5.6 answers them.
        ("is_alphanumex", &["a+b", "+"], 1),
        ("is_alphanumex", &["", "+"], -1),
        ("is_alphanumex", &["a b", "+"], -1),
        ("is_alphanumex", &["++", "+"], 1),
        ("is_alphanumex", &["a-b.c_d", "+.-_"], 1),
        ("is_gruu", &["sip:a@h;gr=urn:uuid:1"], 1),
        ("is_gruu", &["sip:a@h;gr"], 2),
        ("is_gruu", &["sip:a@h"], -1),
        (
            "cmp_uri",
            &["sip:A@H.com;transport=UDP", "sip:A@h.com;transport=udp"],
            1,
        ),
        ("cmp_uri", &["sip:a@h.com", "sip:A@h.com"], -1),
        ("cmp_uri", &["sip:a@h.com", "not a uri"], -2),
        ("cmp_aor", &["sip:a@h.com;x=1", "sip:a@H.com:5060"], 1),
        ("cmp_aor", &["sip:a@h.com", "sip:a@h.com:5070"], -1),
        ("cmp_hdr_name", &["f", "From"], 1),
        ("cmp_hdr_name", &["X-A", "X-B"], -1),
    ] {
        assert_eq!(run(&mut ctx, &MODULE, f, a), want, "{f}{a:?}");
    }
}

#[test]
fn user_in_credentials_and_supported() {
    let text = INVITE.replacen(
        "Contact:",
        "Proxy-Authorization: Digest username=\"alice\", realm=\"r\", nonce=\"n\", uri=\"sip:b\", response=\"0\"\nSupported: path, 100rel\nContact:",
        1,
    );
    let mut h = Harness::new(&text);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "is_user", &["alice"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "is_user", &["bob"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "is_supported", &["100rel"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "is_supported", &["timer"]), -1);
}

#[test]
fn options_reply_only_for_the_server() {
    let opts = INVITE
        .replacen("INVITE sip:bob@example.com", "OPTIONS sip:192.0.2.10", 1)
        .replacen("CSeq: 314159 INVITE", "CSeq: 1 OPTIONS", 1);
    let mut h = Harness::new(&opts);
    let mut ctx = h.ctx();
    let mut p = ModParams::default();
    p.push(
        "siputils",
        "options_support",
        crate::script::registry::ParamValue::Str("path".into()),
    );
    assert_eq!(call(&mut ctx, &MODULE, "options_reply", &[], &p), 1);
    let reply = sent(&h.out);
    assert!(reply.starts_with("SIP/2.0 200 OK\n"), "{reply}");
    assert!(reply.contains("\nAllow: INVITE, ACK,"), "{reply}");
    assert!(
        reply.contains("\nAccept: */*\nAccept-Encoding: \nAccept-Language: en\nSupported: path\n"),
        "{reply}"
    );
    let mut h = Harness::new(INVITE);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "options_reply", &[]), -1);
}
