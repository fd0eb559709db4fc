use super::*;
use crate::modules::testutil::{call, sent, Harness};
use crate::script::registry::RouteType;

const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
From: \"Alice\" <sip:alice@example.org>;tag=1928301774
To: <sip:bob@example.com>
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@198.51.100.1:5070>
Content-Length: 0

";

fn mp(list: &[(&str, &str)]) -> ModParams {
    let mut p = ModParams::default();
    for (name, v) in list {
        p.push("uac", name, ParamValue::Str(v.to_string()));
    }
    p
}

/// The request as relayed after `calls`, with a Record-Route.
fn relayed(text: &str, calls: &[(&str, &[&str])], p: &ModParams) -> (Vec<i32>, String) {
    let mut h = Harness::new(text);
    let mut ctx = h.ctx();
    let mut rcs = Vec::new();
    for (name, args) in calls {
        rcs.push(call(&mut ctx, &MODULE, name, args, p));
    }
    assert_eq!(
        crate::modules::testutil::run(&mut ctx, &crate::modules::rr::MODULE, "record_route", &[]),
        1
    );
    assert_eq!(
        crate::modules::core::forward::request(&mut ctx, Some(b"203.0.113.5"), Some(5060), None),
        1
    );
    drop(ctx);
    (rcs, sent(&h.out))
}

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(prefix)).unwrap_or("")
}

#[test]
fn replaces_display_and_uri_and_stores_the_original_in_record_route() {
    let (rc, out) = relayed(
        INVITE,
        &[
            (
                "uac_replace_from",
                &["Carrier", "sip:+15551234@carrier.example.com"],
            ),
            ("uac_replace_to", &["sip:pbx@10.0.0.9"]),
        ],
        &ModParams::default(),
    );
    assert_eq!(rc, [1, 1]);
    assert_eq!(
        line(&out, "From:"),
        "From: Carrier <sip:+15551234@carrier.example.com>;tag=1928301774"
    );
    assert_eq!(line(&out, "To:"), "To: <sip:pbx@10.0.0.9>");
    let vsf = codec::encode(
        b"sip:alice@example.org",
        b"sip:+15551234@carrier.example.com",
        b"",
    )
    .unwrap();
    let vst = codec::encode(b"sip:bob@example.com", b"sip:pbx@10.0.0.9", b"").unwrap();
    assert_eq!(
        line(&out, "Record-Route:"),
        format!("Record-Route: <sip:192.0.2.10;lr;ftag=1928301774;vsf={vsf};vst={vst}>")
    );
}

#[test]
fn display_names_go_where_kamailio_puts_them() {
    let cases: &[(&str, &[&str], &str)] = &[
        // Given as written: no quotes added.
        (
            "\"Alice\" <sip:alice@example.org>",
            &["Carrier, Inc", "sip:a@b.c"],
            "Carrier, Inc <sip:a@b.c>",
        ),
        (
            "<sip:alice@example.org>",
            &["Name", "sip:a@b.c"],
            "Name <sip:a@b.c>",
        ),
        (
            "sip:alice@example.org",
            &["Name", "sip:a@b.c"],
            "Name <sip:a@b.c>",
        ),
        // An empty display name removes the one written (not the space after it).
        (
            "Alice Smith <sip:alice@example.org>",
            &["", "sip:a@b.c"],
            " <sip:a@b.c>",
        ),
        (
            "\"Alice\"<sip:alice@example.org>",
            &["X", "sip:a@b.c"],
            "X<sip:a@b.c>",
        ),
        // The URI alone: the display name stays.
        (
            "\"Alice\" <sip:alice@example.org>",
            &["sip:a@b.c"],
            "\"Alice\" <sip:a@b.c>",
        ),
        // The display name alone.
        (
            "\"Alice\" <sip:alice@example.org>",
            &["\"Quoted\"", ""],
            "\"Quoted\" <sip:alice@example.org>",
        ),
    ];
    for (from, args, want) in cases {
        let text = INVITE.replace("\"Alice\" <sip:alice@example.org>", from);
        let (rc, out) = relayed(&text, &[("uac_replace_from", args)], &ModParams::default());
        assert_eq!(rc, [1], "{from}");
        assert_eq!(
            line(&out, "From:"),
            format!("From: {want};tag=1928301774"),
            "{from} {args:?}"
        );
    }
}

#[test]
fn twice_in_request_route_or_in_dialog_in_auto_mode_is_refused() {
    let (rc, out) = relayed(
        INVITE,
        &[
            ("uac_replace_from", &["X", "sip:a@b.c"]),
            ("uac_replace_from", &["Y", "sip:z@b.c"]),
        ],
        &ModParams::default(),
    );
    assert_eq!(rc, [1, -1]);
    assert_eq!(line(&out, "From:"), "From: X <sip:a@b.c>;tag=1928301774");
    let in_dialog = INVITE.replace(
        "To: <sip:bob@example.com>",
        "To: <sip:bob@example.com>;tag=b1",
    );
    let (rc, _) = relayed(
        &in_dialog,
        &[("uac_replace_from", &["sip:a@b.c"])],
        &ModParams::default(),
    );
    assert_eq!(rc, [-1]);
    // Manual mode allows it, and `none` stores nothing (and a second call is allowed).
    let (rc, _) = relayed(
        &in_dialog,
        &[("uac_replace_from", &["sip:a@b.c"])],
        &mp(&[("restore_mode", "manual")]),
    );
    assert_eq!(rc, [1]);
    let (rc, out) = relayed(
        INVITE,
        &[
            ("uac_replace_from", &["sip:a@b.c"]),
            ("uac_replace_to", &["sip:c@d.e"]),
        ],
        &mp(&[("restore_mode", "none")]),
    );
    assert_eq!(rc, [1, 1]);
    assert!(!line(&out, "Record-Route:").contains("vs"), "{out}");
}

#[test]
fn parameters_are_checked() {
    assert!(UacConfig::from_modparams(&mp(&[("restore_mode", "sometimes")])).is_err());
    assert!(UacConfig::from_modparams(&mp(&[("rr_from_store_param", "")])).is_err());
    assert!(UacConfig::from_modparams(&mp(&[("credential", "user:realm")])).is_err());
    assert!(UacConfig::from_modparams(&mp(&[("auth_username_avp", "$avp(u)")])).is_err());
    let c = UacConfig::from_modparams(&mp(&[
        ("credential", " u1 : r : p1 "),
        ("restore_passwd", "pw"),
        ("rr_from_store_param", "fx"),
    ]))
    .unwrap();
    assert_eq!(c.credentials[0].user.as_ref(), b"u1");
    assert_eq!(c.credentials[0].password.as_ref(), b"p1");
    assert_eq!(
        (c.passwd.as_ref(), c.from_param.as_ref()),
        (&b"pw"[..], &b"fx"[..])
    );
    let mut p = ModParams::default();
    p.push("uac", "restore_dlg", ParamValue::Int(1));
    assert!(UacConfig::from_modparams(&p).is_err());
}

/// An in-dialog request through our Route with the stored parameters.
fn in_dialog(from_caller: bool, vsf: &str, vst: &str) -> String {
    let (from, to) = if from_caller {
        (
            "\"Alice\" <sip:alice@example.org>;tag=1928301774",
            "<sip:bob@example.com>;tag=b1",
        )
    } else {
        (
            "<sip:pbx@10.0.0.9>;tag=b1",
            "Carrier <sip:+15551234@carrier.example.com>;tag=1928301774",
        )
    };
    format!(
        "BYE sip:bob@10.0.0.9 SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
Route: <sip:192.0.2.10;lr;ftag=1928301774;vsf={vsf};vst={vst}>
From: {from}
To: {to}
Call-ID: a84b4c76e66710
CSeq: 2 BYE
Content-Length: 0

"
    )
}

fn routed(text: &str, p: &ModParams, manual: &[&str]) -> (Vec<i32>, String) {
    let mut h = Harness::new(text).route(RouteType::Request);
    let mut ctx = h.ctx();
    assert_eq!(
        crate::modules::testutil::run(&mut ctx, &crate::modules::rr::MODULE, "loose_route", &[]),
        1
    );
    let rcs = manual
        .iter()
        .map(|name| call(&mut ctx, &MODULE, name, &[], p))
        .collect();
    if manual.is_empty() {
        // The rr callback of the auto mode (the program here loads no module).
        let cfg = UacConfig::from_modparams(p).unwrap();
        let from = replace::restore(&mut ctx, &cfg, true);
        let to = replace::restore(&mut ctx, &cfg, false);
        assert!(from && to);
    }
    assert_eq!(
        crate::modules::core::forward::request(&mut ctx, Some(b"203.0.113.5"), Some(5060), None),
        1
    );
    drop(ctx);
    (rcs, sent(&h.out))
}

#[test]
fn in_dialog_requests_get_the_other_uri_each_way() {
    let vsf = codec::encode(
        b"sip:alice@example.org",
        b"sip:+15551234@carrier.example.com",
        b"",
    )
    .unwrap();
    let vst = codec::encode(b"sip:bob@example.com", b"sip:pbx@10.0.0.9", b"").unwrap();
    let p = ModParams::default();
    // From the caller: From and To become what the callee knows.
    let (_, out) = routed(&in_dialog(true, &vsf, &vst), &p, &[]);
    assert_eq!(
        line(&out, "From:"),
        "From: \"Alice\" <sip:+15551234@carrier.example.com>;tag=1928301774"
    );
    assert_eq!(line(&out, "To:"), "To: <sip:pbx@10.0.0.9>;tag=b1");
    // From the callee: back to what the caller knows (display names stay).
    let (_, out) = routed(&in_dialog(false, &vsf, &vst), &p, &[]);
    assert_eq!(line(&out, "From:"), "From: <sip:bob@example.com>;tag=b1");
    assert_eq!(
        line(&out, "To:"),
        "To: Carrier <sip:alice@example.org>;tag=1928301774"
    );
    // Manual mode: the script asks.
    let (rcs, out) = routed(
        &in_dialog(true, &vsf, &vst),
        &mp(&[("restore_mode", "manual")]),
        &["uac_restore_from", "uac_restore_to"],
    );
    assert_eq!(rcs, [1, 1]);
    assert_eq!(line(&out, "To:"), "To: <sip:pbx@10.0.0.9>;tag=b1");
    // A wrong password restores nothing.
    let (rcs, out) = routed(
        &in_dialog(true, &vsf, &vst),
        &mp(&[("restore_mode", "manual"), ("restore_passwd", "x")]),
        &["uac_restore_from"],
    );
    assert_eq!(rcs, [-1]);
    assert_eq!(
        line(&out, "From:"),
        "From: \"Alice\" <sip:alice@example.org>;tag=1928301774"
    );
}

#[test]
fn replies_get_the_request_values_back() {
    let request =
        crate::sip::Message::parse(bytes::Bytes::from(INVITE.replace('\n', "\r\n"))).unwrap();
    let reply = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds\r\nFrom: Carrier <sip:+15551234@carrier.example.com>;tag=1928301774\r\nTo: sip:pbx@10.0.0.9;tag=b1\r\nCall-ID: a84b4c76e66710\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n";
    let reply = crate::sip::Message::parse(bytes::Bytes::from(reply)).unwrap();
    let mut edits = crate::sip::Edits::new();
    replace::reply_edits(&request, &reply, USE_UAC_FROM | USE_UAC_TO, &mut edits);
    let mut out = Vec::new();
    crate::sip::edit::serialize(&reply, &edits, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("\r\nFrom: \"Alice\" <sip:alice@example.org>;tag=1928301774\r\n"),
        "{out}"
    );
    assert!(
        out.contains("\r\nTo: <sip:bob@example.com>;tag=b1\r\n"),
        "{out}"
    );
}

proptest::proptest! {
    #![proptest_config(crate::proptest_config(200))]

    /// Whatever the From/To of the request and of the reply (and the stored
    /// parameter), restoring never panics and the reply still serializes.
    #[test]
    fn restoring_never_panics(
        req_from in "[ -~]{0,40}",
        rpl_from in "[ -~]{0,40}",
        rpl_to in "[ -~]{0,40}",
        stored in "[!-~]{0,40}",
    ) {
        let req = format!("INVITE sip:b@c SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK1\r\nFrom: {req_from}\r\nTo: <sip:b@c>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
        let rpl = format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK1\r\nFrom: {rpl_from}\r\nTo: {rpl_to}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
        let (Ok(req), Ok(rpl)) = (
            crate::sip::Message::parse(bytes::Bytes::from(req)),
            crate::sip::Message::parse(bytes::Bytes::from(rpl)),
        ) else {
            return Ok(());
        };
        let mut edits = crate::sip::Edits::new();
        replace::reply_edits(&req, &rpl, USE_UAC_FROM | USE_UAC_TO, &mut edits);
        let mut out = Vec::new();
        crate::sip::edit::serialize(&rpl, &edits, &mut out);
        let _ = codec::restore(stored.as_bytes(), rpl_from.as_bytes(), b"pw");
    }
}

#[test]
fn uac_req_fields_read_and_write_as_kamailio() {
    use crate::script::value::Value;
    use send::{read, resolve, write, Field};
    let mut h = Harness::new(INVITE);
    let mut ctx = h.ctx();
    assert_eq!(resolve("ruri"), Ok(Field::Ruri));
    assert!(resolve("nope").is_err());
    assert_eq!(read(&ctx, Field::Ruri), Value::Null);
    write(&mut ctx, Field::Ruri, Value::owned(b"sip:a@b".to_vec())).unwrap();
    write(&mut ctx, Field::Auser, Value::owned(b"u".to_vec())).unwrap();
    write(&mut ctx, Field::Evroute, Value::Int(1)).unwrap();
    assert_eq!(read(&ctx, Field::Ruri), Value::owned(b"sip:a@b".to_vec()));
    assert_eq!(read(&ctx, Field::Evroute), Value::Int(1));
    assert!(write(&mut ctx, Field::Ruri, Value::Int(3)).is_err());
    assert!(write(&mut ctx, Field::Evroute, Value::owned(b"1".to_vec())).is_err());
    assert!(write(&mut ctx, Field::Method, Value::owned(vec![b'X'; 40])).is_err());
    // $null into `all` clears the request (the credentials stay).
    write(&mut ctx, Field::All, Value::Null).unwrap();
    assert_eq!(read(&ctx, Field::Ruri), Value::Null);
    assert_eq!(read(&ctx, Field::Evroute), Value::Int(0));
    assert_eq!(read(&ctx, Field::Auser), Value::owned(b"u".to_vec()));
    // No method or Request-URI: nothing is sent.
    assert_eq!(
        call(
            &mut ctx,
            &MODULE,
            "uac_req_send",
            &[],
            &ModParams::default()
        ),
        -1
    );
    assert!(ctx.out.is_empty());
}

#[test]
fn uac_req_send_writes_the_request_as_kamailio_does() {
    let req = send::UacReq {
        method: b"NOTIFY".to_vec(),
        ruri: b"sip:pbx@10.0.0.9".to_vec(),
        furi: b"sip:carrier@192.0.2.10".to_vec(),
        callid: b"c-1".to_vec(),
        hdrs: b"Event: check-sync\r\nContent-Type: text/plain\r\n".to_vec(),
        body: b"hi".to_vec(),
        ..Default::default()
    };
    let out = send::build(
        &req,
        b"192.0.2.10",
        crate::sip::Proto::Udp,
        b"z9hG4bKx.1",
        7,
        crate::script::ctx::DEFAULT_USER_AGENT,
    );
    let text = String::from_utf8(out.to_vec()).unwrap();
    let tag = text
        .split(";tag=")
        .nth(1)
        .unwrap()
        .split("\r\n")
        .next()
        .unwrap()
        .to_string();
    assert_eq!(tag.len(), 41);
    assert_eq!(
        text,
        format!(
            "NOTIFY sip:pbx@10.0.0.9 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKx.1\r\n\
             To: <sip:pbx@10.0.0.9>\r\nFrom: <sip:carrier@192.0.2.10>;tag={tag}\r\n\
             CSeq: 10 NOTIFY\r\nCall-ID: c-1\r\nMax-Forwards: 70\r\nContent-Length: 2\r\n\
             User-Agent: ringsip ({})\r\nEvent: check-sync\r\nContent-Type: text/plain\r\n\r\nhi",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(crate::sip::Message::parse(out).is_ok());
}

/// Kamailio 5.6 refuses to start uac without rr unless `restore_mode` is
/// "none" ("can't load RR API", checked live): both restore modes need
/// rr's callbacks and Record-Route parameters.
#[test]
fn uac_without_rr_starts_only_with_restore_mode_none() {
    use crate::script::compile::compile;
    use crate::script::{parse_str, MemoryFiles, Options};
    let outcome = |rr: bool, mode: Option<&str>| {
        let mut text = String::from("loadmodule \"tm.so\"\nloadmodule \"uac.so\"\n");
        if rr {
            text.push_str("loadmodule \"rr.so\"\n");
        }
        if let Some(m) = mode {
            text.push_str(&format!("modparam(\"uac\", \"restore_mode\", \"{m}\")\n"));
        }
        text.push_str("request_route {\n    exit;\n}\n");
        let files = MemoryFiles::new();
        let cfg = parse_str("t.cfg", &text, &Options::with_files(&files)).unwrap();
        compile(&cfg)
            .map(|_| ())
            .map_err(|d| d.rendered().join("\n"))
    };
    for mode in [None, Some("auto"), Some("manual")] {
        let err = outcome(false, mode).expect_err("uac without rr");
        assert!(
            err.contains("t.cfg:2") && err.contains("uac") && err.contains("rr"),
            "{mode:?}: {err}"
        );
        assert!(outcome(true, mode).is_ok(), "{mode:?} with rr");
    }
    assert!(outcome(false, Some("none")).is_ok());
    assert!(outcome(false, Some("NONE")).is_ok());
}
