//! nathelper functions as a script calls them (KAMAILIO-REFERENCE §7.8).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::ping::{NatPinger, PingParams, UDP_PING};
use super::*;
use crate::modules::core::Engine;
use crate::modules::testutil::{env, run, serialized, some_instant, Harness, LOCAL, SOURCE};
use crate::modules::usrloc::{Ucontact, UlParams, Usrloc};
use crate::script::compile::compile;
use crate::script::ctx::LocalRequests;
use crate::script::registry::ParamValue;
use crate::script::{parse_str, MemoryFiles, Options};
use crate::sip::{Inbound, Transmit};

/// An INVITE from a phone behind NAT: private Contact, Via and SDP; it
/// arrives from 198.51.100.1:5070 (the NAT's public side).
const NATED: &str = "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: Bob <sip:bob@example.com>
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: a84b4c76e66710@pc33
CSeq: 314159 INVITE
Contact: <sip:alice@192.168.1.20:5060>;expires=60
Content-Type: application/sdp
Content-Length: 116

v=0
o=alice 2890844526 2890844526 IN IP4 192.168.1.20
s=-
c=IN IP4 192.168.1.20
t=0 0
m=audio 49170 RTP/AVP 0
";

/// The same phone with a public address (no NAT).
const PUBLIC: &str = "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: Bob <sip:bob@example.com>
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: a84b4c76e66710@pc33
CSeq: 314159 INVITE
Contact: sip:alice@198.51.100.1:5070
Content-Length: 0

";

#[test]
fn private_ranges() {
    for ip in [
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "100.64.0.1",
        "192.0.0.5",
    ] {
        assert!(is_private(ip.parse().unwrap(), 1), "{ip}");
    }
    for ip in [
        "172.32.0.1",
        "8.8.8.8",
        "100.128.0.1",
        "198.51.100.1",
        "::1",
    ] {
        assert!(!is_private(ip.parse().unwrap(), 1), "{ip}");
    }
    assert!(is_private("192.0.0.200".parse().unwrap(), 1));
    assert!(!is_private("192.0.0.200".parse().unwrap(), 0));
}

#[test]
fn nat_uac_test_each_bit() {
    let mut h = Harness::new(NATED);
    let mut ctx = h.ctx();
    for bit in ["1", "2", "4", "8", "16", "256"] {
        assert_eq!(
            run(&mut ctx, &MODULE, "nat_uac_test", &[bit]),
            1,
            "bit {bit}"
        );
    }
    assert_eq!(
        run(&mut ctx, &MODULE, "nat_uac_test", &["32"]),
        -1,
        "source is public"
    );
    assert_eq!(run(&mut ctx, &MODULE, "nat_uac_test", &["64"]), -1);
    assert_eq!(
        run(&mut ctx, &MODULE, "nat_uac_test", &["128"]),
        1,
        "5060 vs 5070"
    );
    assert_eq!(run(&mut ctx, &MODULE, "nat_uac_test", &["19"]), 1);

    let mut h = Harness::new(PUBLIC);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "nat_uac_test", &["511"]), -1);

    let mut h = Harness::new(PUBLIC);
    h.src = "10.0.0.9:5070".parse().unwrap();
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "nat_uac_test", &["32"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "nat_uac_test", &["2"]), 1);
    assert!(crate::modules::testutil::fixed(
        &MODULE,
        "nat_uac_test",
        &["1024"],
        &ModParams::default()
    )
    .is_err());
}

#[test]
fn fix_nated_contact_uses_the_source_address() {
    let mut h = Harness::new(NATED);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "fix_nated_contact", &[]), 1);
    assert!(
        serialized(&ctx).contains("\nContact: <sip:alice@198.51.100.1:5070>;expires=60\n"),
        "{}",
        serialized(&ctx)
    );
}

#[test]
fn contact_alias_added_only_when_needed() {
    let mut h = Harness::new(NATED);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "add_contact_alias", &[]), 1);
    assert!(serialized(&ctx).contains(
        "\nContact: <sip:alice@192.168.1.20:5060;alias=198.51.100.1~5070~1>;expires=60\n"
    ));
    // As Kamailio 5.6: the Contact names the source only with a transport
    // parameter that equals the received one (none never equals UDP).
    let udp = PUBLIC.replace(
        "Contact: sip:alice@198.51.100.1:5070",
        "Contact: <sip:alice@198.51.100.1:5070;transport=udp>",
    );
    let mut h = Harness::new(&udp);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "set_contact_alias", &[]), 2);
    let mut h = Harness::new(PUBLIC);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "set_contact_alias", &[]), 1);
    assert!(
        serialized(&ctx)
            .contains("\nContact: <sip:alice@198.51.100.1:5070;alias=198.51.100.1~5070~1>\n"),
        "{}",
        serialized(&ctx)
    );
    // add_contact_alias puts it right after host:port.
    let params = NATED.replace(
        "<sip:alice@192.168.1.20:5060>",
        "<sip:alice@192.168.1.20:5060;ob>",
    );
    let mut h = Harness::new(&params);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "add_contact_alias", &[]), 1);
    assert!(
        serialized(&ctx).contains("<sip:alice@192.168.1.20:5060;alias=198.51.100.1~5070~1;ob>"),
        "{}",
        serialized(&ctx)
    );
    let mut h = Harness::new(PUBLIC);
    let mut ctx = h.ctx();
    assert_eq!(
        run(
            &mut ctx,
            &MODULE,
            "add_contact_alias",
            &["10.1.1.1", "5080", "tcp"]
        ),
        1
    );
    assert!(
        serialized(&ctx)
            .contains("\nContact: <sip:alice@198.51.100.1:5070;alias=10.1.1.1~5080~2>\n"),
        "{}",
        serialized(&ctx)
    );
    // trim: an old alias goes first.
    let old = NATED.replace(
        "<sip:alice@192.168.1.20:5060>",
        "<sip:alice@192.168.1.20:5060;alias=1.2.3.4~5~1;ob>",
    );
    let mut h = Harness::new(&old);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "set_contact_alias", &["1"]), 1);
    assert!(
        // set_contact_alias puts it after the other parameters.
        serialized(&ctx).contains("<sip:alice@192.168.1.20:5060;ob;alias=198.51.100.1~5070~1>"),
        "{}",
        serialized(&ctx)
    );
}

#[test]
fn handle_ruri_alias_sets_du_and_strips_it() {
    let req = PUBLIC.replace(
        "INVITE sip:bob@example.com SIP/2.0",
        "INVITE sip:alice@192.168.1.20:5060;alias=198.51.100.1~5070~2;ob SIP/2.0",
    );
    let mut h = Harness::new(&req);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "handle_ruri_alias", &[]), 1);
    assert_eq!(
        ctx.dst_uri.as_deref(),
        Some(&b"sip:198.51.100.1:5070;transport=tcp"[..])
    );
    assert_eq!(ctx.ruri(), b"sip:alice@192.168.1.20:5060;ob");
    assert_eq!(run(&mut ctx, &MODULE, "handle_ruri_alias", &[]), 2);
    let bad = PUBLIC.replace(
        "sip:bob@example.com SIP",
        "sip:bob@example.com;alias=x~y~1 SIP",
    );
    let mut h = Harness::new(&bad);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "handle_ruri_alias", &[]), -1);
    // A value that is not ip~port~proto at all: no alias (Kamailio 5.6 answers 2).
    let bad = PUBLIC.replace(
        "sip:bob@example.com SIP",
        "sip:bob@example.com;alias=bad SIP",
    );
    let mut h = Harness::new(&bad);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "handle_ruri_alias", &[]), 2);
    assert_eq!(ctx.ruri(), b"sip:bob@example.com;alias=bad");
    assert_eq!(ctx.dst_uri, None);
    assert!(crate::modules::testutil::fixed(
        &MODULE,
        "handle_ruri_alias",
        &["1"],
        &ModParams::default()
    )
    .is_err());
}

#[test]
fn add_rcv_param_on_every_contact() {
    let two = NATED.replace(
        "Contact: <sip:alice@192.168.1.20:5060>;expires=60",
        "Contact: <sip:alice@192.168.1.20:5060>;expires=60, sip:a2@192.168.1.20",
    );
    let mut h = Harness::new(&two).tcp();
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "add_rcv_param", &[]), 1);
    let out = serialized(&ctx);
    assert!(out.contains(
        "Contact: <sip:alice@192.168.1.20:5060>;expires=60;received=\"sip:198.51.100.1:5070;transport=tcp\", sip:a2@192.168.1.20;received=\"sip:198.51.100.1:5070;transport=tcp\"\n"
    ), "{out}");
    let mut h = Harness::new(PUBLIC);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "add_rcv_param", &["1"]), 1);
    assert!(serialized(&ctx)
        .contains("Contact: <sip:alice@198.51.100.1:5070;received=sip:198.51.100.1:5070>\n"));
}

#[test]
fn is_rfc1918_function() {
    let mut h = Harness::new(PUBLIC);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "is_rfc1918", &["10.0.0.1"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "is_rfc1918", &["1.1.1.1"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "is_rfc1918", &["nope"]), -1);
}

#[test]
fn fix_nated_sdp_rewrites_c_and_o_and_adds_lines() {
    let mut h = Harness::new(NATED);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "fix_nated_sdp", &["15"]), 1);
    let out = serialized(&ctx);
    assert!(out.contains("\nc=IN IP4 198.51.100.1\n"), "{out}");
    assert!(
        out.contains("\no=alice 2890844526 2890844526 IN IP4 198.51.100.1\n"),
        "{out}"
    );
    assert!(out.contains("\na=direction:active\n"), "{out}");
    // As Kamailio 5.6.3 wrote the same body (observed on this machine).
    assert!(
        out.ends_with(
            "\nc=IN IP4 198.51.100.1\nt=0 0\nm=audio 49170 RTP/AVP 0\na=direction:active\n\
             a=nortpproxy:yes\na=oldmediaip:192.168.1.20\na=oldmediaip:192.168.1.20\n"
        ),
        "{out:?}"
    );
    let mut h = Harness::new(NATED);
    let mut ctx = h.ctx();
    assert_eq!(
        run(&mut ctx, &MODULE, "fix_nated_sdp", &["2", "203.0.113.5"]),
        1
    );
    let out = serialized(&ctx);
    assert!(out.contains("\nc=IN IP4 203.0.113.5\n"), "{out}");
    assert!(
        out.contains("IN IP4 192.168.1.20\ns=-"),
        "o= untouched: {out}"
    );
    let mut h = Harness::new(PUBLIC);
    let mut ctx = h.ctx();
    assert_eq!(
        run(&mut ctx, &MODULE, "fix_nated_sdp", &["2"]),
        -1,
        "no SDP"
    );
}

/// Kamailio 5.6 returns 1 only when an address was replaced, else 2 (lines
/// added or not); a null address (hold) and one equal to the new one stay
/// (sidebyside hunt_route_nat.cfg nat_fix_sdp).
#[test]
fn fix_nated_sdp_returns_2_when_no_address_changed() {
    let mut h = Harness::new(NATED);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "fix_nated_sdp", &["1"]), 2);
    assert!(serialized(&ctx).contains("\na=direction:active\n"));
    let same = NATED.replace("192.168.1.20", "198.51.100.1");
    let mut h = Harness::new(&same);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "fix_nated_sdp", &["10"]), 2);
    let hold = NATED
        .replace("c=IN IP4 192.168.1.20", "c=IN IP4 0.0.0.0")
        .replace("Content-Length: 116", "Content-Length: 111");
    let mut h = Harness::new(&hold);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "fix_nated_sdp", &["2"]), 2);
    let out = serialized(&ctx);
    assert!(out.contains("\nc=IN IP4 0.0.0.0\n"), "{out}");
}

/// A stock-style REGISTER handling: `fix_nated_register()` puts the source in
/// `$avp(RECEIVED)` (compiled from the `received_avp` parameter).
#[test]
fn fix_nated_register_fills_the_received_avp() {
    let text = r#"loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "nathelper.so"
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
request_route {
    if (nat_uac_test("19")) {
        fix_nated_register();
    }
    append_to_reply("X-Received: $avp(RECEIVED)\r\n");
    sl_send_reply("200", "OK");
}
"#;
    let files = MemoryFiles::new();
    let cfg = parse_str("t.cfg", text, &Options::with_files(&files))
        .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let compiled = compile(&cfg).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let mut engine = Engine::new(Arc::new(env()), Arc::new(compiled.program));
    let register = NATED
        .replace("INVITE sip:bob@example.com", "REGISTER sip:example.org")
        .replace("CSeq: 314159 INVITE", "CSeq: 1 REGISTER");
    let pkt = Inbound {
        data: Bytes::from(register.replace('\n', "\r\n")),
        src: SOURCE.parse().unwrap(),
        local: LOCAL.parse().unwrap(),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    let mut out: Vec<Transmit> = Vec::new();
    engine.on_inbound(pkt, some_instant(), &mut out);
    let reply = String::from_utf8_lossy(&out[0].data).into_owned();
    assert!(
        reply.contains("X-Received: sip:198.51.100.1:5070\r\n"),
        "{reply}"
    );
}

#[test]
fn nat_pings_to_flagged_contacts() {
    let mut mp = ModParams::default();
    mp.push("nathelper", "natping_interval", ParamValue::Int(30));
    mp.push("nathelper", "ping_nated_only", ParamValue::Int(1));
    mp.push("nathelper", "sipping_bflag", ParamValue::Int(7));
    mp.push(
        "nathelper",
        "sipping_from",
        ParamValue::Str("sip:pinger@kamailio.org".into()),
    );
    mp.push("usrloc", "nat_bflag", ParamValue::Int(6));
    let pp = PingParams::from_modparams(&mp).unwrap().unwrap();
    let ul = Arc::new(Usrloc::in_memory(UlParams::from_modparams(&mp).unwrap()));
    let dom = ul.domains()[0].clone();
    let contact = |uri: &str, received: Option<&str>, cflags: u32| Ucontact {
        contact: uri.into(),
        ruid: uri.into(),
        callid: "c".into(),
        received: received.map(Into::into),
        path: None,
        user_agent: None,
        socket: None,
        instance: None,
        expires: 0,
        last_modified: 0,
        cseq: 1,
        q: -1,
        flags: 0,
        cflags,
        methods: u32::MAX,
        reg_id: 0,
        dirty: false,
    };
    ul.update(&dom, "alice", |r| {
        // Behind NAT, UDP ping to the received address.
        r.contacts.push(contact(
            "sip:alice@192.168.1.20:5060",
            Some("sip:198.51.100.1:5070"),
            1 << 6,
        ));
        // Behind NAT with SIP pings.
        r.contacts.push(contact(
            "sip:alice@10.0.0.2:5062",
            Some("sip:198.51.100.2:6000"),
            (1 << 6) | (1 << 7),
        ));
        // Not behind NAT: not pinged with ping_nated_only.
        r.contacts.push(contact("sip:alice@203.0.113.9", None, 0));
    })
    .unwrap();
    let pinger = NatPinger::new(pp, ul, 7);
    let env = env();
    let mut out = Vec::new();
    let t0 = some_instant();
    pinger.tick(&env, t0, &mut out);
    assert_eq!(out.len(), 2, "{out:?}");
    let udp = out.iter().find(|t| t.dst.port() == 5070).unwrap();
    assert_eq!(&udp.data[..], UDP_PING);
    let sip = out.iter().find(|t| t.dst.port() == 6000).unwrap();
    let text = String::from_utf8_lossy(&sip.data);
    assert!(
        text.starts_with("OPTIONS sip:alice@10.0.0.2:5062 SIP/2.0\r\n"),
        "{text}"
    );
    assert!(text.contains("From: <sip:pinger@kamailio.org>"), "{text}");
    // The reply is absorbed.
    let via = text
        .lines()
        .find(|l| l.starts_with("Via:"))
        .unwrap()
        .to_string();
    let reply = crate::sip::Message::parse(Bytes::from(format!(
        "SIP/2.0 200 OK\r\n{via}\r\nFrom: <sip:a>;tag=1\r\nTo: <sip:b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )))
    .unwrap();
    assert!(pinger.on_reply(&reply, t0, &mut Vec::new()));
    // Not again before the interval.
    out.clear();
    pinger.tick(&env, t0 + Duration::from_secs(29), &mut out);
    assert!(out.is_empty());
    pinger.tick(&env, t0 + Duration::from_secs(30), &mut out);
    assert_eq!(out.len(), 2);
    // sipping_bflag without sipping_from is a start-up error; interval 0: no pinger.
    let mut bad = ModParams::default();
    bad.push("nathelper", "natping_interval", ParamValue::Int(10));
    bad.push("nathelper", "sipping_bflag", ParamValue::Int(7));
    assert!(PingParams::from_modparams(&bad).is_err());
    assert_eq!(PingParams::from_modparams(&ModParams::default()), Ok(None));
    let mut ign = ModParams::default();
    ign.push("nathelper", "keepalive_timeout", ParamValue::Int(60));
    assert_eq!(unsupported_params(&ign).len(), 1);
}

/// Bits 1..256 one by one, as Kamailio 5.6.3 answered them for the same
/// messages sent from 127.0.0.1 (observed on this machine).
#[test]
fn nat_uac_test_bits_as_kamailio() {
    let msg = |via: &str, contact: &str, sdp_ip: Option<&str>| {
        let body = sdp_ip.map_or(String::new(), |ip| {
            format!("v=0\no=alice 1 1 IN IP4 {ip}\ns=-\nc=IN IP4 {ip}\nt=0 0\nm=audio 49170 RTP/AVP 0\n")
        });
        format!(
            "INVITE sip:bob@x SIP/2.0\nVia: SIP/2.0/UDP {via};branch=z9hG4bKt;rport\nFrom: <sip:a@b>;tag=1\n\
             To: <sip:x@y>\nCall-ID: t\nCSeq: 1 INVITE\nContact: {contact}\nContent-Type: application/sdp\n\
             Content-Length: {}\n\n{body}",
            body.replace('\n', "\r\n").len()
        )
    };
    let bits = |text: &str| {
        let mut h = Harness::new(text);
        h.src = "127.0.0.1:40000".parse().unwrap();
        let mut ctx = h.ctx();
        [1, 2, 4, 8, 16, 32, 64, 128, 256]
            .iter()
            .map(|b| {
                let rc = run(&mut ctx, &MODULE, "nat_uac_test", &[&b.to_string()]);
                if rc == 1 {
                    '1'
                } else {
                    '0'
                }
            })
            .collect::<String>()
    };
    let nated = msg(
        "192.168.1.20:5060",
        "<sip:alice@192.168.1.20:5060>",
        Some("192.168.1.20"),
    );
    assert_eq!(bits(&nated), "111110011");
    let public = msg(
        "127.0.0.1:40000",
        "<sip:alice@127.0.0.1:40000>",
        Some("127.0.0.1"),
    );
    assert_eq!(bits(&public), "000000000");
    let noport = msg("127.0.0.1", "<sip:alice@127.0.0.1>", None);
    assert_eq!(bits(&noport), "000010010");
}
