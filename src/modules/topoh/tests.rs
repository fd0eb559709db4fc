//! topoh against what Kamailio 5.6.3 sent with the same settings
//! (loadtest/sidebyside/configs/topoh.cfg: key `ringsip-topoh-key`, mask
//! address 10.10.10.10, Call-ID masking on).

use super::*;
use bytes::Bytes;

const KEY: &[u8] = b"ringsip-topoh-key";

fn mask() -> Mask {
    Mask::new(KEY).expect("key")
}

#[test]
fn call_id_and_contacts_encode_as_kamailio_did() {
    let m = mask();
    assert_eq!(m.encode(b"call-1@uac", b"!!:"), b"!!:BqJeHiwPpCyWBT**");
    assert_eq!(
        m.encode(b"sip:uac@127.0.0.62:5070", b"sip:10.10.10.10;line=sr-"),
        b"sip:10.10.10.10;line=sr-Nq9TUMyWBwdPcVNgci8T4VBbUVSTYsd*".to_vec()
    );
    assert_eq!(
        m.encode(b"sip:uas@127.0.0.63:5080", b"sip:10.10.10.10;line=sr-"),
        b"sip:10.10.10.10;line=sr-Nq9TUMyWNwdPcVNgci8T4VBsUVSTU1d*".to_vec()
    );
}

#[test]
fn kamailios_masked_via_decodes() {
    let v = b"z9hG4bKsr-Sw9p4s6gciIy3JdZco624Vdgci8qcVQnc1NTU2x9BqytrKyROo.bYb8T4VdgYV67y.ZIGl9qUqxbBXvVE1njUXWCYlx44XYWHlTPrXJVU2xTH2xwOoSTYsd*";
    let out = mask().decode(v, 10).expect("decodes");
    // The caller's Via as Kamailio forwarded it: `received` right after
    // sent-by, then the cookie topoh put there on receipt.
    assert_eq!(
        String::from_utf8_lossy(&out),
        "SIP/2.0/UDP 127.0.0.62:5070;received=127.0.0.62;TH=div;branch=z9hG4bK-call1uac;rport=5070"
    );
}

mod engine {
    use std::sync::Arc;

    use bytes::Bytes;

    use crate::modules::core::Engine;
    use crate::modules::testutil::some_instant;
    use crate::modules::topoh::TopohConfig;
    use crate::script::compile::compile;
    use crate::script::ctx::{Env, SocketInfo};
    use crate::script::{parse_str, MemoryFiles, Options};
    use crate::sip::{Inbound, Proto, Transmit};

    /// The side-by-side settings (loadtest/sidebyside/configs/topoh.cfg).
    const PARAMS: &str = r#"
modparam("topoh", "mask_key", "ringsip-topoh-key")
modparam("topoh", "mask_ip", "10.10.10.10")
modparam("topoh", "mask_callid", 1)
"#;

    const RELAY: &str = r#"
request_route {
    if (has_totag()) { sl_send_reply("404", "Not here"); exit; }
    if (is_method("INVITE")) { record_route(); }
    t_relay();
}
"#;

    fn compiled(text: &str) -> Result<crate::script::compile::Compiled, String> {
        let text = format!(
            "loadmodule \"sl.so\"\nloadmodule \"tm.so\"\nloadmodule \"rr.so\"\nloadmodule \"siputils.so\"\n\
             loadmodule \"textops.so\"\nloadmodule \"pv.so\"\nloadmodule \"topoh.so\"\n{text}"
        );
        let files = MemoryFiles::new();
        let cfg = parse_str("t.cfg", &text, &Options::with_files(&files))
            .map_err(|d| d.rendered().join("\n"))?;
        compile(&cfg).map_err(|d| d.rendered().join("\n"))
    }

    /// An engine on 127.0.0.61:5060 (the side-by-side proxy address).
    fn engine(text: &str) -> Engine {
        let c = compiled(text).unwrap_or_else(|e| panic!("{e}"));
        let mut env = Env::for_program(&c.program);
        env.sockets = vec![SocketInfo {
            proto: Proto::Udp,
            addr: "127.0.0.61:5060".parse().expect("address"),
            advertise: None,
        }];
        env.services.insert(Arc::new(
            TopohConfig::from_modparams(&c.modparams, true).expect("topoh params"),
        ));
        Engine::new(Arc::new(env), Arc::new(c.program))
    }

    /// The side-by-side caller's INVITE.
    fn invite() -> String {
        let body = "v=0\r\no=- 1 1 IN IP4 127.0.0.62\r\ns=-\r\nc=IN IP4 127.0.0.62\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
        format!(
            "INVITE sip:uas@127.0.0.63:5080 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.62:5070;branch=z9hG4bK-call1uac;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:uac@127.0.0.62>;tag=uac-tag\r\n\
             To: <sip:uas@127.0.0.63>\r\n\
             Call-ID: call-1@uac\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:uac@127.0.0.62:5070>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn inbound(from: &str, data: impl Into<Bytes>) -> Inbound {
        Inbound {
            data: data.into(),
            src: from.parse().expect("address"),
            local: "127.0.0.61:5060".parse().expect("address"),
            proto: Proto::Udp,
            socket: 0,
            conn: None,
            arrived: None,
        }
    }

    /// Receives `data` from `from`; what goes out, after the sending stage.
    fn exchange(e: &mut Engine, from: &str, data: &str) -> Vec<String> {
        let mut pkt = inbound(from, data.to_string());
        assert!(e.intercept_received(&mut pkt, some_instant()));
        let mut out: Vec<Transmit> = Vec::new();
        e.on_inbound(pkt, some_instant(), &mut out);
        out.into_iter()
            .filter_map(|mut t| {
                e.intercept_sending(&mut t, some_instant())
                    .then(|| String::from_utf8_lossy(&t.data).into_owned())
            })
            .collect()
    }

    fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
        msg.split("\r\n")
            .filter_map(|l| l.split_once(": "))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn received_request_carries_the_cookie_through_the_script() {
        let mut e = engine(&format!("{PARAMS}{RELAY}"));
        let mut pkt = inbound("127.0.0.62:5070", invite());
        assert!(e.intercept_received(&mut pkt, some_instant()));
        let text = String::from_utf8_lossy(&pkt.data).into_owned();
        assert!(
            text.contains(
                "Via: SIP/2.0/UDP 127.0.0.62:5070;TH=div;branch=z9hG4bK-call1uac;rport\r\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("Content-Length: 89\r\nTH: dih\r\n\r\nv=0"),
            "{text}"
        );
    }

    #[test]
    fn relayed_invite_is_masked_as_kamailio_masked_it() {
        let mut e = engine(&format!("{PARAMS}{RELAY}"));
        let out = exchange(&mut e, "127.0.0.62:5070", &invite());
        let inv = out
            .iter()
            .find(|m| m.starts_with("INVITE"))
            .unwrap_or_else(|| panic!("{out:?}"));
        // Kamailio 5.6.3 with the same settings and the same INVITE.
        assert_eq!(
            header(inv, "Via")[1],
            "SIP/2.0/UDP 10.10.10.10;branch=z9hG4bKsr-Sw9p4s6gciIy3JdZco624Vdgci8qcVQnc1NTU2x9BqytrKyROo.bYb8T4VdgYV67y.ZIGl9qUqxbBXvVE1njUXWCYlx44XYWHlTPrXJVU2xTH2xwOoSTYsd*"
        );
        assert_eq!(
            header(inv, "Contact"),
            ["<sip:10.10.10.10;line=sr-Nq9TUMyWBwdPcVNgci8T4VBbUVSTYsd*>"]
        );
        assert_eq!(header(inv, "Call-ID"), ["!!:BqJeHiwPpCyWBT**"]);
        assert!(header(inv, "TH").is_empty(), "{inv}");
        // The 100 Trying made here goes back unmasked, without the cookie.
        let trying = out
            .iter()
            .find(|m| m.starts_with("SIP/2.0 100"))
            .unwrap_or_else(|| panic!("{out:?}"));
        assert_eq!(header(trying, "Call-ID"), ["call-1@uac"]);
        assert!(!trying.contains("TH="), "{trying}");
    }

    #[test]
    fn register_is_left_alone() {
        let mut e = engine(&format!("{PARAMS}{RELAY}"));
        let reg = invite()
            .replace(
                "INVITE sip:uas@127.0.0.63:5080",
                "REGISTER sip:127.0.0.63:5080",
            )
            .replace("CSeq: 1 INVITE", "CSeq: 1 REGISTER");
        let out = exchange(&mut e, "127.0.0.62:5070", &reg);
        let fwd = out
            .iter()
            .find(|m| m.starts_with("REGISTER"))
            .unwrap_or_else(|| panic!("{out:?}"));
        assert_eq!(header(fwd, "Contact"), ["<sip:uac@127.0.0.62:5070>"]);
        assert_eq!(header(fwd, "Call-ID"), ["call-1@uac"]);
    }

    #[test]
    fn drop_in_msg_outgoing_sends_the_message_unmasked() {
        let text = format!(
            "{PARAMS}{RELAY}\nevent_route[topoh:msg-outgoing] {{ if ($sndto(ip) == \"127.0.0.63\") {{ drop; }} }}\n"
        );
        let mut e = engine(&text);
        let out = exchange(&mut e, "127.0.0.62:5070", &invite());
        let inv = out
            .iter()
            .find(|m| m.starts_with("INVITE"))
            .expect("relayed");
        assert_eq!(header(inv, "Contact"), ["<sip:uac@127.0.0.62:5070>"]);
        // As in Kamailio, the cookie header then goes out too.
        assert_eq!(header(inv, "TH"), ["dih"]);
    }

    #[test]
    fn drop_in_msg_sending_is_skipped_when_event_mode_excludes_it() {
        let route = "\nevent_route[topoh:msg-sending] { drop; }\n";
        let mut e = engine(&format!("{PARAMS}{RELAY}{route}"));
        let out = exchange(&mut e, "127.0.0.62:5070", &invite());
        let inv = out
            .iter()
            .find(|m| m.starts_with("INVITE"))
            .expect("relayed");
        assert_eq!(header(inv, "Call-ID"), ["call-1@uac"], "dropped: unmasked");
        let mode = "modparam(\"topoh\", \"event_mode\", 1)\n";
        let mut e = engine(&format!("{PARAMS}{mode}{RELAY}{route}"));
        let out = exchange(&mut e, "127.0.0.62:5070", &invite());
        let inv = out
            .iter()
            .find(|m| m.starts_with("INVITE"))
            .expect("relayed");
        assert_eq!(header(inv, "Call-ID"), ["!!:BqJeHiwPpCyWBT**"]);
    }

    #[test]
    fn library_mode_masks_nothing() {
        let mode = "modparam(\"topoh\", \"use_mode\", 1)\n";
        let mut e = engine(&format!("{PARAMS}{mode}{RELAY}"));
        let out = exchange(&mut e, "127.0.0.62:5070", &invite());
        let inv = out
            .iter()
            .find(|m| m.starts_with("INVITE"))
            .expect("relayed");
        assert_eq!(header(inv, "Contact"), ["<sip:uac@127.0.0.62:5070>"]);
    }

    #[test]
    fn bad_settings_are_refused() {
        for (params, want) in [
            ("modparam(\"topoh\", \"mask_key\", \"\")", "mask_key"),
            ("modparam(\"topoh\", \"mask_ip\", \"\")", "mask_ip"),
            ("modparam(\"topoh\", \"mask_ip\", \"a b\")", "mask_ip"),
        ] {
            let c = compiled(&format!("{params}\n{RELAY}")).expect("compiles");
            let err = TopohConfig::from_modparams(&c.modparams, true).expect_err(params);
            assert!(err.contains(want), "{params}: {err}");
        }
        let c = compiled(&format!(
            "modparam(\"topoh\", \"sanity_checks\", 1)\n{RELAY}"
        ))
        .expect("compiles");
        let err = TopohConfig::from_modparams(&c.modparams, false).expect_err("no sanity");
        assert!(err.contains("sanity.so"), "{err}");
        let err = compiled(&format!("modparam(\"topoh\", \"no_such\", 1)\n{RELAY}"))
            .expect_err("unknown parameter");
        assert!(err.contains("no_such"), "{err}");
    }
}

#[test]
fn sanity_checks_leave_a_failing_request_undecoded() {
    use crate::script::registry::ModParams;
    let mut mp = ModParams::default();
    mp.push(
        "topoh",
        "sanity_checks",
        crate::script::registry::ParamValue::Int(1),
    );
    let cfg = TopohConfig::from_modparams(&mp, true).expect("params");
    let env = crate::modules::testutil::env();
    let good = "BYE sip:10.0.0.1;line=sr-x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKa\r\n\
                From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
    assert!(cfg
        .topoh
        .incoming(&env, &bytes::Bytes::from(good))
        .is_some());
    // CSeq method other than the request's: sanity's default checks refuse it.
    let bad = good.replace("CSeq: 2 BYE", "CSeq: 2 INFO");
    assert!(cfg.topoh.incoming(&env, &bytes::Bytes::from(bad)).is_none());
}

fn sidebyside_topoh() -> TopohConfig {
    use crate::script::registry::{ModParams, ParamValue};
    let mut mp = ModParams::default();
    mp.push(
        "topoh",
        "mask_key",
        ParamValue::Str("ringsip-topoh-key".into()),
    );
    mp.push("topoh", "mask_ip", ParamValue::Str("10.10.10.10".into()));
    mp.push("topoh", "mask_callid", ParamValue::Int(1));
    TopohConfig::from_modparams(&mp, false).expect("params")
}

#[test]
fn refer_to_of_an_in_dialog_refer_is_decoded_keeping_its_headers() {
    let cfg = sidebyside_topoh();
    let env = crate::modules::testutil::env();
    let refer = "REFER sip:uac@127.0.0.62:5070 SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.63:5080;branch=z9hG4bKr\r\n\
                 From: <sip:uas@127.0.0.63>;tag=uas-tag\r\nTo: <sip:uac@127.0.0.62>;tag=uac-tag\r\n\
                 Call-ID: x\r\nCSeq: 3 REFER\r\n\
                 Refer-To: <sip:10.10.10.10;line=sr-Nq9TUMyWNwdPcVNgci8T4VBsUVSTU1d*?Replaces=abc>\r\n\
                 Content-Length: 0\r\n\r\n";
    let out = cfg
        .topoh
        .incoming(&env, &Bytes::from(refer))
        .expect("decoded");
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("Refer-To: <sip:uas@127.0.0.63:5080?Replaces=abc>\r\n"),
        "{text}"
    );
    assert!(text.contains("TH: dch\r\n\r\n"), "{text}");
}

#[test]
fn replaces_of_an_initial_invite_gets_the_call_id_mask() {
    let cfg = sidebyside_topoh();
    let env = crate::modules::testutil::env();
    let invite = "INVITE sip:uas@127.0.0.63:5080 SIP/2.0\r\n\
                  Via: SIP/2.0/UDP 127.0.0.61;branch=z9hG4bKx\r\n\
                  Via: SIP/2.0/UDP 127.0.0.62:5070;TH=div;branch=z9hG4bKa\r\n\
                  From: <sip:uac@127.0.0.62>;tag=uac-tag\r\nTo: <sip:uas@127.0.0.63>\r\n\
                  Call-ID: other@uac\r\nCSeq: 1 INVITE\r\n\
                  Replaces: call-1@uac;to-tag=a;from-tag=b\r\n\
                  Content-Length: 0\r\nTH: dih\r\n\r\n";
    let out = cfg
        .topoh
        .outgoing(&env, &Bytes::from(invite))
        .expect("masked");
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("Replaces: !!:BqJeHiwPpCyWBT**;to-tag=a;from-tag=b\r\n"),
        "{text}"
    );
    assert!(!text.contains("TH: "), "{text}");
    // And a masked one is decoded.
    let back = invite.replace("Replaces: call-1@uac;", "Replaces: !!:BqJeHiwPpCyWBT**;");
    let out = cfg
        .topoh
        .outgoing(&env, &Bytes::from(back))
        .expect("masked");
    assert!(String::from_utf8_lossy(&out).contains("Replaces: call-1@uac;to-tag=a"));
}

proptest::proptest! {
    /// Whatever arrives or leaves (cut, bytes changed), topoh does not panic.
    #[test]
    fn mangled_messages_never_panic(cut in 0usize..600, at in 0usize..600, byte in proptest::prelude::any::<u8>(),
                                    reply in proptest::prelude::any::<bool>()) {
        let cfg = sidebyside_topoh();
        let env = crate::modules::testutil::env();
        let base = if reply {
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.61;TH=ucv;branch=z9hG4bKx\r\n\
             Via: SIP/2.0/UDP 10.10.10.10;branch=z9hG4bKsr-Sw9p4s6gciIy3JdZco624Vdgci8qcVQnc1NTU2x9BqytrKyROo.bYb8T4VdgYV67y.ZIGl9qUqxbBXvVE1njUXWCYlx44XYWHlTPrXJVU2xTH2xwOoSTYsd*\r\n\
             Record-Route: <sip:10.10.10.10;line=sr-Nq9TUMyWNwdPcVNgci8T4VBsUVSTU1d*>, <sip:192.0.2.10;lr;r2=on>\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: !!:BqJeHiwPpCyWBT**\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:uas@127.0.0.63:5080>\r\nTH: uch\r\nContent-Length: 0\r\n\r\n"
        } else {
            "BYE sip:10.10.10.10;line=sr-Nq9TUMyWNwdPcVNgci8T4VBsUVSTU1d* SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.63:5080;branch=z9hG4bKr, SIP/2.0/UDP 10.10.10.10;branch=z9hG4bKsr-Sw9p\r\n\
             Route: <sip:192.0.2.10;lr;ftag=9>, <sip:10.10.10.10;line=sr-Nq9TUMyWNwdPcVNgci8T4VBsUVSTU1d*>\r\n\
             Record-Route: <sip:192.0.2.10;lr>, <sip:198.51.100.7;lr>\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: !!:BqJeHiwPpCyWBT**\r\nCSeq: 2 BYE\r\n\
             Contact: sip:x@198.51.100.7;expires=5\r\nReplaces: a;b\r\nTH: dch\r\nContent-Length: 0\r\n\r\n"
        };
        let mut data = base.as_bytes().to_vec();
        data.truncate(cut.max(1).min(data.len()));
        if let Some(b) = data.get_mut(at) {
            *b = byte;
        }
        let data = Bytes::from(data);
        let _ = cfg.topoh.incoming(&env, &data);
        let _ = cfg.topoh.outgoing(&env, &data);
    }
}
