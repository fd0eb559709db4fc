//! `server_header`, `user_agent_header` and `server_signature` through the
//! real binary, as Kamailio 5.6 follows them (checked live on loopback): the
//! whole header line is the setting; the Server header goes on every local
//! reply (sl's and tm's, the 100 Trying included), the User-Agent on the
//! requests the proxy makes itself (`uac_req_send`); `server_signature=no`
//! drops both.

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(3);

fn config(globals: &str, peer: std::net::SocketAddr) -> String {
    format!(
        r#"#!KAMAILIO
{globals}
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "rr.so"
loadmodule "uac.so"

request_route {{
    if (is_method("OPTIONS")) {{
        sl_send_reply("200", "Alive");
        exit;
    }}
    if (is_method("MESSAGE")) {{
        t_newtran();
        t_reply("404", "Nobody");
        exit;
    }}
    if (is_method("PUBLISH")) {{
        $uac_req(method) = "OPTIONS";
        $uac_req(ruri) = "sip:peer@{peer}";
        $uac_req(furi) = "sip:proxy@example.net";
        uac_req_send();
        sl_send_reply("202", "Sent");
        exit;
    }}
    $du = "sip:{peer}";
    t_relay();
}}
"#
    )
}

fn header(m: &SipMsg, name: &str) -> Option<String> {
    m.text()
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
}

/// What each local message carried: (sl reply, tm reply, 100 Trying, uac request).
fn signatures(globals: &str) -> [Option<String>; 4] {
    let ua = RawUa::bind();
    let peer = RawUa::bind();
    let proxy = Proxy::start(&config(globals, peer.addr()), &[]);
    let to = proxy.addr();
    let ruri = format!("sip:someone@{to}");
    ua.send(to, ua.request("OPTIONS", &ruri, &[], ""));
    let sl = ua.expect_msg_where(WAIT, |m| m.start_line().starts_with("SIP/2.0 200"));
    ua.send(to, ua.request("MESSAGE", &ruri, &[], "hi"));
    let tm = ua.expect_msg_where(WAIT, |m| m.start_line().starts_with("SIP/2.0 404"));
    ua.send(to, ua.request("INVITE", &ruri, &[], ""));
    let trying = ua.expect_msg_where(WAIT, |m| m.start_line().starts_with("SIP/2.0 100"));
    peer.expect_msg_where(WAIT, |m| m.start_line().starts_with("INVITE "));
    ua.send(to, ua.request("PUBLISH", &ruri, &[], ""));
    ua.expect_msg_where(WAIT, |m| m.start_line().starts_with("SIP/2.0 202"));
    let uac = peer.expect_msg_where(WAIT, |m| m.start_line().starts_with("OPTIONS "));
    [
        header(&sl, "Server"),
        header(&tm, "Server"),
        header(&trying, "Server"),
        header(&uac, "User-Agent"),
    ]
}

#[test]
fn the_configured_server_and_user_agent_headers_are_sent() {
    let got = signatures(
        "server_header=\"Server: MyProxy 1.0\"\nuser_agent_header=\"User-Agent: MyUA 2.0\"",
    );
    let server = Some("MyProxy 1.0".to_string());
    assert_eq!(
        got,
        [
            server.clone(),
            server.clone(),
            server,
            Some("MyUA 2.0".to_string())
        ]
    );
}

#[test]
fn without_settings_ringsip_names_itself() {
    let me = Some(format!("ringsip ({})", env!("CARGO_PKG_VERSION")));
    assert_eq!(signatures(""), [me.clone(), me.clone(), me.clone(), me]);
}

#[test]
fn server_signature_no_sends_neither_header() {
    let got = signatures(
        "server_signature=no\nserver_header=\"Server: MyProxy 1.0\"\nuser_agent_header=\"User-Agent: MyUA 2.0\"",
    );
    assert_eq!(got, [None, None, None, None]);
}
