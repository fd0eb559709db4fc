//! topoh end to end against the real binary: caller → ringsip (topoh,
//! record_route, t_relay) → callee. The callee never sees the caller's
//! address in Via, Contact or Record-Route, nor the caller's Call-ID
//! (`mask_callid`); the call completes both ways (INVITE/180/200/ACK, a BYE
//! from each side) and each endpoint sees its own values back.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::proxy::Proxy;
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(3);

fn config(mask_callid: bool) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=0
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "topoh.so"
modparam("topoh", "mask_key", "an-end-to-end-key")
modparam("topoh", "mask_ip", "192.0.2.250")
modparam("topoh", "mask_callid", {})

request_route {{
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("INVITE")) {{ record_route(); }}
    t_relay();
}}
"#,
        u8::from(mask_callid)
    )
}

/// The values of headers `name` joined, for "is this address in there" checks.
fn joined(m: &SipMsg, name: &str) -> String {
    m.headers(name).join(", ")
}

/// The URI inside `<…>` of a name-addr.
fn uri_of(name_addr: &str) -> String {
    let s = name_addr.split_once('<').map_or(name_addr, |(_, r)| r);
    s.split_once('>').map_or(s, |(u, _)| u).to_string()
}

/// A reply to `req` as a UAS writes it (its Vias, From, To with `tag`,
/// Call-ID, CSeq, Record-Route copied).
fn reply(
    req: &SipMsg,
    code: u16,
    reason: &str,
    tag: Option<&str>,
    contact: Option<String>,
) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers("Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for rr in req.headers("Record-Route") {
        out.push_str(&format!("Record-Route: {rr}\r\n"));
    }
    out.push_str(&format!(
        "From: {}\r\n",
        req.header("From").unwrap_or_default()
    ));
    let to = req.header("To").unwrap_or_default();
    match tag {
        Some(t) if !to.contains(";tag=") => out.push_str(&format!("To: {to};tag={t}\r\n")),
        _ => out.push_str(&format!("To: {to}\r\n")),
    }
    out.push_str(&format!(
        "Call-ID: {}\r\n",
        req.header("Call-ID").unwrap_or_default()
    ));
    out.push_str(&format!(
        "CSeq: {}\r\n",
        req.header("CSeq").unwrap_or_default()
    ));
    if let Some(c) = contact {
        out.push_str(&format!("Contact: <{c}>\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// An in-dialog request: `ruri`, the route set, the dialog's values as this side sees them.
#[allow(clippy::too_many_arguments)]
fn in_dialog(
    method: &str,
    me: SocketAddr,
    ruri: &str,
    routes: &[String],
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
) -> String {
    let mut m = format!(
        "{method} {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-{}-{cseq}-{}\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:ua@{me}>\r\n",
        method.to_lowercase(),
        me.port()
    );
    if !routes.is_empty() {
        m.push_str(&format!("Route: {}\r\n", routes.join(", ")));
    }
    m.push_str("Content-Length: 0\r\n\r\n");
    m
}

fn call(mask_callid: bool) {
    let proxy = Proxy::builder(&config(mask_callid))
        .ready_when_bound()
        .start();
    let caller = RawUa::bind();
    let callee = RawUa::bind();
    let me = caller.addr().to_string();
    let callee_uri = format!("sip:bob@{}", callee.addr());
    let invite = caller.request("INVITE", &callee_uri, &[], "");
    let sent = SipMsg::parse_str(&invite);
    let call_id = sent.header("Call-ID").unwrap().to_string();
    caller.send(proxy.addr(), &invite);

    // The callee's view: no trace of the caller in the routing headers.
    let inv = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    for name in ["Via", "Contact", "Record-Route", "Call-ID"] {
        assert!(
            !joined(&inv, name).contains(&me),
            "{name} shows the caller: {}",
            inv.text()
        );
    }
    let vias = inv.headers("Via");
    assert_eq!(vias.len(), 2, "{}", inv.text());
    assert!(
        vias[1].starts_with("SIP/2.0/UDP 192.0.2.250;branch=z9hG4bKsr-"),
        "{}",
        vias[1]
    );
    let caller_contact = uri_of(inv.header("Contact").unwrap());
    assert!(
        caller_contact.starts_with("sip:192.0.2.250;line=sr-"),
        "{caller_contact}"
    );
    assert!(
        !inv.text().contains("\r\nTH:"),
        "the cookie header is removed: {}",
        inv.text()
    );
    let masked_id = inv.header("Call-ID").unwrap().to_string();
    if mask_callid {
        assert!(masked_id.starts_with("!!:"), "{masked_id}");
        assert!(!masked_id.contains(caller.addr().ip().to_string().as_str()));
    } else {
        assert_eq!(masked_id, call_id);
    }

    // 180 and 200: the caller gets its own Via and Call-ID back, and a masked Contact.
    let callee_contact = format!("sip:bob@{}", callee.addr());
    callee.send(
        proxy.addr(),
        reply(&inv, 180, "Ringing", Some("bob-tag"), None),
    );
    callee.send(
        proxy.addr(),
        reply(
            &inv,
            200,
            "OK",
            Some("bob-tag"),
            Some(callee_contact.clone()),
        ),
    );
    let ok = caller.expect_msg_where(WAIT, |m| m.status() == Some(200));
    assert_eq!(ok.headers("Via"), sent.headers("Via"), "{}", ok.text());
    assert_eq!(ok.header("Call-ID"), Some(call_id.as_str()));
    let masked_callee = uri_of(ok.header("Contact").unwrap());
    assert!(
        masked_callee.starts_with("sip:192.0.2.250;line=sr-"),
        "{}",
        ok.text()
    );
    for name in ["Via", "Contact", "Record-Route"] {
        assert!(
            !joined(&ok, name).contains(&callee.addr().to_string()),
            "{}",
            ok.text()
        );
    }
    let rr: Vec<String> = ok
        .headers("Record-Route")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(rr.len(), 1, "{}", ok.text());

    // ACK and BYE from the caller, to the masked Contact: the callee gets its own URI.
    let from = ok.header("From").unwrap().to_string();
    let to = ok.header("To").unwrap().to_string();
    let ack = in_dialog(
        "ACK",
        caller.addr(),
        &masked_callee,
        &rr,
        &from,
        &to,
        &call_id,
        1,
    );
    caller.send(proxy.addr(), ack);
    let got = callee.expect_msg_where(WAIT, |m| m.method() == Some("ACK"));
    assert_eq!(got.request_uri(), Some(callee_contact.as_str()));
    assert_eq!(got.header("Call-ID"), Some(masked_id.as_str()));
    assert!(!joined(&got, "Via").contains(&me));

    // The callee hangs up, with what it was given: the caller sees its own values.
    let inv_rr: Vec<String> = inv
        .headers("Record-Route")
        .iter()
        .map(|s| s.to_string())
        .collect();
    let bye = in_dialog(
        "BYE",
        callee.addr(),
        &caller_contact,
        &inv_rr,
        &format!("{};tag=bob-tag", inv.header("To").unwrap()),
        inv.header("From").unwrap(),
        &masked_id,
        5,
    );
    callee.send(proxy.addr(), &bye);
    let bye_in = caller.expect_msg_where(WAIT, |m| m.method() == Some("BYE"));
    assert_eq!(
        bye_in.request_uri(),
        Some(uri_of(sent.header("Contact").unwrap()).as_str())
    );
    assert_eq!(bye_in.header("Call-ID"), Some(call_id.as_str()));
    assert!(
        !joined(&bye_in, "Via").contains(&callee.addr().to_string()),
        "{}",
        bye_in.text()
    );
    assert!(!joined(&bye_in, "Contact").contains(&callee.addr().to_string()));
    caller.send(proxy.addr(), reply(&bye_in, 200, "OK", None, None));
    let done = callee.expect_msg_where(WAIT, |m| m.status() == Some(200));
    assert_eq!(done.header("Call-ID"), Some(masked_id.as_str()));
    let bye_sent = SipMsg::parse_str(&bye);
    assert_eq!(
        done.headers("Via"),
        bye_sent.headers("Via"),
        "{}",
        done.text()
    );
}

#[test]
fn call_through_topoh_hides_the_caller_and_completes() {
    call(true);
}

#[test]
fn call_through_topoh_without_call_id_masking() {
    call(false);
}
