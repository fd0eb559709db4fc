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
        // Kamailio 5.6's codes (side by side, hunt_sip.cfg): -2 for a
        // failed number check or an empty text, -3 for a character outside
        // the class.
        ("is_tel_number", &["12a"], -2),
        ("is_tel_number", &["+49-30"], -2),
        ("is_tel_number", &["+0123"], -2),
        ("is_tel_number", &["0123"], 1),
        ("is_numeric", &["0123"], 1),
        ("is_numeric", &[""], -2),
        ("is_numeric", &["-1"], -2),
        ("is_alphanum", &["ab12"], 1),
        ("is_alphanum", &["ab-12"], -3),
        ("is_alphanum", &[""], -2),
        ("is_alphanumex", &["a+b", "+"], 1),
        ("is_alphanumex", &["", "+"], -2),
        ("is_alphanumex", &["a b", "+"], -3),
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
        // Kamailio's comparison: transport may be on one side only, hosts
        // and ports compare as written.
        ("cmp_uri", &["sip:a@h.com;transport=udp", "sip:a@h.com"], 1),
        ("cmp_uri", &["sip:a@[::1]", "sip:a@[0:0::1]"], -1),
        ("cmp_uri", &["sip:a@h.com", "sip:a@h.com:5060"], -1),
        ("cmp_uri", &["sip:a@h;user=phone", "sip:a@h"], -1),
        ("cmp_uri", &["sip:a@h;foo=X", "sip:a@h;FOO=x"], 1),
        ("cmp_uri", &["sips:a@h", "sip:a@h"], -1),
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

#[test]
fn uri_param_of_a_user_phone_uri_reads_the_user_part() {
    // Kamailio takes sip:…;user=phone as a tel URI (phone2tel): uri_param
    // sees the parameters after the number, not the URI's (hunt_sip.cfg).
    let text = INVITE.replacen(
        "sip:bob@example.com SIP",
        "sip:+4930;isub=7@example.com;transport=udp;lr;user=phone SIP",
        1,
    );
    let mut h = Harness::new(&text);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "uri_param", &["lr"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "uri_param", &["user", "phone"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "uri_param", &["isub", "7"]), 1);
}
