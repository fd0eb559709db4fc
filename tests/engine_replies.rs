//! What goes into the proxy's own replies, as Kamailio builds them: headers
//! and bodies a script queued for the reply (`append_to_reply`,
//! `set_reply_body`, registrar's `P-Registrar-Error`) go into every local
//! reply to the request, stateless or on its transaction; module replies
//! (registrar, auth) go on the transaction when there is one. Sans-IO, on
//! virtual time.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::engine::{engine, engine_with, inbound, sent_to};
use ringsip::modules::core::Engine;
use ringsip::modules::registrar::{RegParams, Registrar};
use ringsip::modules::usrloc::{UlParams, Usrloc};

const UA: &str = "127.0.0.2:5070";

const INVITE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKreplies1
Max-Forwards: 70
From: <sip:alice@127.0.0.2>;tag=a1
To: <sip:bob@127.0.0.1>
Call-ID: engine-replies-1
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.2:5070>
Content-Length: 0

";

/// A REGISTER for alice with `contact` as its Contact header value.
fn register(contact: &str) -> String {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKreg1
Max-Forwards: 70
From: <sip:alice@127.0.0.1>;tag=r1
To: <sip:alice@127.0.0.1>
Call-ID: engine-replies-reg
CSeq: 1 REGISTER
Contact: {contact}
Content-Length: 0

"
    )
}

/// An engine with an in-memory registrar.
fn registrar_engine(cfg: &str) -> Engine {
    engine_with(cfg, |env, mp| {
        env.services.insert(Arc::new(Usrloc::in_memory(
            UlParams::from_modparams(mp).unwrap(),
        )));
        env.services.insert(Arc::new(Registrar {
            params: RegParams::from_modparams(mp).unwrap(),
        }));
    })
}

/// What the UA got back for `request`, in order.
fn replies(e: &mut Engine, request: &str, now: Instant) -> Vec<String> {
    let mut out = Vec::new();
    e.on_inbound(inbound(UA, request), now, &mut out);
    sent_to(&out, UA)
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn t_reply_carries_what_append_to_reply_queued() {
    let mut e = engine(
        r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
request_route {
    append_to_reply("Contact: <sip:bob@127.0.0.9:5080>\r\n");
    t_newtran();
    t_reply("302", "Moved Temporarily");
}
"#,
    );
    let got = replies(&mut e, INVITE, Instant::now());
    let r = got
        .iter()
        .find(|m| m.starts_with("SIP/2.0 302 Moved Temporarily\r\n"))
        .unwrap_or_else(|| panic!("a 302: {got:?}"));
    assert_eq!(
        header(r, "Contact"),
        Some("<sip:bob@127.0.0.9:5080>"),
        "{r}"
    );
    assert_eq!(header(r, "Content-Length"), Some("0"), "{r}");
}

#[test]
fn t_reply_carries_the_body_set_reply_body_set() {
    let mut e = engine(
        r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
request_route {
    set_reply_body("hello there\r\n", "text/plain");
    t_newtran();
    t_reply("488", "Not Here");
}
"#,
    );
    let got = replies(&mut e, INVITE, Instant::now());
    let r = got
        .iter()
        .find(|m| m.starts_with("SIP/2.0 488 Not Here\r\n"))
        .unwrap_or_else(|| panic!("a 488: {got:?}"));
    assert_eq!(header(r, "Content-Type"), Some("text/plain"), "{r}");
    assert_eq!(header(r, "Content-Length"), Some("13"), "{r}");
    assert!(r.ends_with("\r\n\r\nhello there\r\n"), "{r}");
}

/// Kamailio 5.6's t_reply needs a transaction the script made (live: "cannot
/// send a t_reply to a message for which no T-state has been established",
/// nothing sent, the call false).
#[test]
fn t_reply_without_a_transaction_sends_nothing_and_fails() {
    let mut e = engine(
        r#"
loadmodule "tm.so"
loadmodule "sl.so"
request_route {
    if (!t_reply("404", "Not Here")) {
        sl_send_reply("500", "No Transaction");
    }
}
"#,
    );
    let got = replies(&mut e, INVITE, Instant::now());
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("SIP/2.0 500 No Transaction\r\n"),
        "{got:?}"
    );
}

#[test]
fn registrar_error_header_stays_for_the_next_reply_to_the_request() {
    // Kamailio's stock config answers a failed save() again with
    // sl_reply_error(); the registrar's P-Registrar-Error is in both.
    let mut e = registrar_engine(
        r#"
loadmodule "sl.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
request_route {
    if (!save("location")) {
        sl_reply_error();
    }
}
"#,
    );
    let got = replies(&mut e, &register("*"), Instant::now());
    assert_eq!(got.len(), 2, "save's reply, then sl_reply_error's: {got:?}");
    assert!(got[0].starts_with("SIP/2.0 400 "), "{}", got[0]);
    let first = header(&got[0], "P-Registrar-Error").expect("save's reply says why");
    assert!(got[1].starts_with("SIP/2.0 500 "), "{}", got[1]);
    assert_eq!(
        header(&got[1], "P-Registrar-Error"),
        Some(first),
        "{}",
        got[1]
    );
}

#[test]
fn registrar_reply_goes_on_the_transaction_the_script_made() {
    // save() answers through tm when t_newtran() made a transaction, so a
    // retransmitted REGISTER gets the same 200 from the transaction without
    // saving again.
    let mut e = registrar_engine(
        r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
request_route {
    if (t_check_trans()) {
        sl_send_reply("500", "script ran on a retransmission");
        exit;
    }
    t_newtran();
    save("location");
}
"#,
    );
    let t0 = Instant::now();
    let req = register("<sip:alice@127.0.0.2:5070>");
    let first = replies(&mut e, &req, t0);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].starts_with("SIP/2.0 200 OK\r\n"), "{}", first[0]);
    assert_eq!(e.transactions().map(|t| t.len()), Some(1));
    let again = replies(&mut e, &req, t0);
    assert_eq!(again, first, "the transaction answers the retransmission");
}
