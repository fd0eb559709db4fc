//! The uac module against the real binary: a carrier proxy (two workers)
//! presents its own From/To to a PBX, the caller sees its own values in
//! the replies, and the caller's BYE reaches the PBX with the PBX's view
//! of the dialog, restored from our Record-Route on `loose_route()`. A
//! bad `restore_mode` is a start-up error naming the line.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::proxy::Proxy;
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(3);

fn config(pbx: SocketAddr, mode: &str) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "uac.so"
modparam("uac", "restore_mode", "{mode}")
modparam("uac", "restore_passwd", "carrier-key")

request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            t_relay();
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    uac_replace_from("Carrier", "sip:+15551234@carrier.example.com");
    uac_replace_to("sip:pbx@pbx.example");
    record_route();
    $du = "sip:{pbx}";
    t_relay();
}}
"#
    )
}

/// The PBX's answer to `req`, with a To tag and a Contact.
fn answer(req: &SipMsg, status: &str, pbx: SocketAddr) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for (name, value) in req.all_headers() {
        let n = name.to_ascii_lowercase();
        if ["via", "record-route", "from", "call-id", "cseq"].contains(&n.as_str()) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let to = req.header("To").expect("To");
    let to = if to.contains(";tag=") {
        to.to_string()
    } else {
        format!("{to};tag=pbx")
    };
    out + &format!("To: {to}\r\nContact: <sip:pbx@{pbx}>\r\nContent-Length: 0\r\n\r\n")
}

#[test]
fn the_pbx_sees_the_carrier_and_the_caller_sees_itself() {
    let pbx = RawUa::bind();
    let proxy = Proxy::start(&config(pbx.addr(), "auto"), &[]);
    let caller = RawUa::bind();
    let invite = caller.request("INVITE", &format!("sip:bob@{}", proxy.addr()), &[], "");
    let from = SipMsg::parse_str(&invite)
        .header("From")
        .unwrap()
        .to_string();
    let to = SipMsg::parse_str(&invite).header("To").unwrap().to_string();
    caller.send(proxy.addr(), &invite);

    let relayed = pbx.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let tag = from.split(";tag=").nth(1).unwrap();
    assert_eq!(
        relayed.header("From").unwrap(),
        format!("Carrier <sip:+15551234@carrier.example.com>;tag={tag}")
    );
    assert_eq!(relayed.header("To"), Some("<sip:pbx@pbx.example>"));
    let rr = relayed.header("Record-Route").unwrap();
    assert!(rr.contains(";vsf=") && rr.contains(";vst="), "{rr}");

    pbx.send(proxy.addr(), answer(&relayed, "200 OK", pbx.addr()));
    let ok = caller.expect_msg_where(WAIT, |m| m.status() == Some(200));
    assert_eq!(ok.header("From"), Some(from.as_str()));
    assert_eq!(ok.header("To").unwrap(), format!("{to};tag=pbx"));

    // The caller hangs up along the route set.
    let bye = format!(
        "BYE sip:pbx@{pbx} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-uac-bye\r\n\
         Max-Forwards: 70\r\n\
         Route: {rr}\r\n\
         From: {from}\r\n\
         To: {to};tag=pbx\r\n\
         Call-ID: {cid}\r\n\
         CSeq: 2 BYE\r\n\
         Content-Length: 0\r\n\r\n",
        pbx = pbx.addr(),
        me = caller.addr(),
        rr = ok.header("Record-Route").unwrap(),
        cid = ok.header("Call-ID").unwrap(),
    );
    caller.send(proxy.addr(), bye);
    let bye = pbx.expect_msg_where(WAIT, |m| m.method() == Some("BYE"));
    assert_eq!(
        bye.header("From").unwrap(),
        format!("<sip:+15551234@carrier.example.com>;tag={tag}")
    );
    assert_eq!(bye.header("To"), Some("<sip:pbx@pbx.example>;tag=pbx"));
    pbx.send(proxy.addr(), answer(&bye, "200 OK", pbx.addr()));
    let done = caller.expect_msg_where(WAIT, |m| {
        m.status() == Some(200) && m.header("CSeq") == Some("2 BYE")
    });
    assert_eq!(done.header("From"), Some(from.as_str()));
}

#[test]
fn a_bad_restore_mode_is_refused_at_start_up_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uac.cfg");
    let cfg = config("127.0.0.1:5080".parse().unwrap(), "sometimes")
        .replace("@LISTEN@", "udp:127.0.0.1:5060");
    std::fs::write(&path, cfg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringsip"))
        .arg("check")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("uac.cfg:") && err.contains("restore_mode"),
        "{err}"
    );
}
