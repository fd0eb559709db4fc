//! nathelper against the real binary (KAMAILIO-REFERENCE §7.8): a caller
//! behind NAT gets `;alias=` on its Contact, and an in-dialog request sent to
//! that Contact reaches the caller's real address through
//! `handle_ruri_alias()`; a registered contact receives keep-alive pings.

mod common;

use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::ua::RawUa;

const WAIT: Duration = Duration::from_secs(3);

#[test]
fn contact_alias_round_trip_reaches_the_natted_caller() {
    let callee = RawUa::bind();
    let config = format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=2
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "nathelper.so"
request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "Keepalive");
        exit;
    }}
    if (has_totag()) {{
        if (handle_ruri_alias() == 1) {{
            forward();
        }}
        exit;
    }}
    if (nat_uac_test("18")) {{
        set_contact_alias();
    }}
    $du = "sip:{}";
    forward();
}}
"#,
        callee.addr()
    );
    let proxy = Proxy::start(&config, &[]);
    let caller = RawUa::bind();
    let me = caller.addr();
    // The phone writes its private address in Via and Contact.
    let invite = format!(
        "INVITE sip:bob@{p} SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-nat-1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.org>;tag=a1\r\nTo: <sip:bob@{p}>\r\n\
         Call-ID: nat-1@192.168.1.20\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.168.1.20:5060>\r\n\
         Content-Length: 0\r\n\r\n",
        p = proxy.addr()
    );
    caller.send(proxy.addr(), invite);
    let got = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let contact = got.header("Contact").unwrap_or("").to_string();
    let alias = format!("alias={}~{}~1", me.ip(), me.port());
    assert_eq!(
        contact,
        format!("<sip:alice@192.168.1.20:5060;{alias}>"),
        "{}",
        got.text()
    );
    // The callee hangs up toward the Contact it was given.
    let target = contact
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string();
    let bye = format!(
        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {c};branch=z9hG4bK-bye-1\r\nMax-Forwards: 70\r\n\
         From: <sip:bob@{p}>;tag=b1\r\nTo: <sip:alice@example.org>;tag=a1\r\n\
         Call-ID: nat-1@192.168.1.20\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        c = callee.addr(),
        p = proxy.addr()
    );
    callee.send(proxy.addr(), bye);
    let bye = caller.expect_msg_where(WAIT, |m| m.method() == Some("BYE"));
    assert_eq!(
        bye.request_uri(),
        Some("sip:alice@192.168.1.20:5060"),
        "{}",
        bye.text()
    );
}

#[test]
fn registered_contacts_get_keepalive_pings() {
    let config = r#"#!KAMAILIO
listen=@LISTEN@
debug=2
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "nathelper.so"
modparam("nathelper", "natping_interval", 1)
modparam("nathelper", "ping_nated_only", 0)
request_route {
    if (is_method("OPTIONS") && uri == myself) {
        sl_send_reply("200", "Keepalive");
        exit;
    }
    if (is_method("REGISTER")) {
        save("location");
        exit;
    }
}
"#;
    let proxy = Proxy::start(config, &[]);
    let ua = RawUa::bind();
    let me = ua.addr();
    let register = ua.request(
        "REGISTER",
        &format!("sip:{}", proxy.addr()),
        &["Expires: 60"],
        "",
    );
    let register = register.replace(
        &format!("To: <sip:{}>", proxy.addr()),
        &format!("To: <sip:ua@{}>", proxy.addr()),
    );
    ua.send(proxy.addr(), register);
    let ok = ua.expect_msg_where(WAIT, |m| m.status().is_some());
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let (data, from) = ua
            .recv(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|| panic!("no keep-alive reached {me}"));
        if data == [0, 0, 0, 0] {
            assert_eq!(from, proxy.addr());
            break;
        }
    }
}
