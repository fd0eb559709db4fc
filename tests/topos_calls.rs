//! topos end to end against the real binary: caller → ringsip (topos,
//! record_route, t_relay; records in SQLite made from Kamailio's
//! `topos-create.sql`) → callee. Each side sees only the proxy: one Via (the
//! proxy's), no Record-Route, a Contact `sip:atpsh-…`/`sip:btpsh-…@proxy`;
//! the Call-ID is kept. In-dialog requests either way reach the real
//! Contact, also after a restart (the records are in the database), as
//! with Kamailio 5.6.3. Settings ringsip does not implement are refused.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::proxy::{ringsip_bin, Proxy};
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(3);
const SCHEMAS: &str = "/usr/share/kamailio/db_sqlite";

/// A SQLite file with Kamailio's `version` and topos tables.
fn database(dir: &Path) -> String {
    let path = dir.join("topos.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    for t in ["standard", "topos"] {
        let file = format!("{SCHEMAS}/{t}-create.sql");
        let sql = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{file}: {e} (the kamailio package is installed here)"));
        db.execute_batch(&sql).unwrap();
    }
    format!("sqlite://{}", path.display())
}

fn config(url: &str) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=0
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "topos.so"
modparam("topos", "db_url", "{url}")

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
"#
    )
}

fn uri_of(name_addr: &str) -> String {
    let s = name_addr.split_once('<').map_or(name_addr, |(_, r)| r);
    s.split_once('>').map_or(s, |(u, _)| u).to_string()
}

/// A reply to `req` as a UAS writes it (its Vias, From, To with `tag`,
/// Call-ID, CSeq; `rr` Record-Route lines first, then the request's).
fn reply(req: &SipMsg, code: u16, tag: Option<&str>, contact: Option<&str>, rr: &[&str]) -> String {
    let mut out = format!("SIP/2.0 {code} Answer\r\n");
    for v in req.headers("Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for r in rr {
        out.push_str(&format!("Record-Route: {r}\r\n"));
    }
    for r in req.headers("Record-Route") {
        out.push_str(&format!("Record-Route: {r}\r\n"));
    }
    out.push_str(&format!("From: {}\r\n", req.header("From").unwrap()));
    let to = req.header("To").unwrap();
    match tag {
        Some(t) if !to.contains(";tag=") => out.push_str(&format!("To: {to};tag={t}\r\n")),
        _ => out.push_str(&format!("To: {to}\r\n")),
    }
    out.push_str(&format!("Call-ID: {}\r\n", req.header("Call-ID").unwrap()));
    out.push_str(&format!("CSeq: {}\r\n", req.header("CSeq").unwrap()));
    if let Some(c) = contact {
        out.push_str(&format!("Contact: <{c}>\r\n"));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// An in-dialog request with no route set (topos showed none), with the
/// sender's Contact (`sip:ua@…`: each in-dialog request updates the target).
fn in_dialog(
    method: &str,
    me: SocketAddr,
    ruri: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
) -> String {
    format!(
        "{method} {ruri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-{}-{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:ua@{me}>\r\nContent-Length: 0\r\n\r\n",
        method.to_lowercase()
    )
}

/// Only the proxy shows in the routing headers of `m`.
fn shows_only_proxy(m: &SipMsg, proxy: SocketAddr, other: SocketAddr) {
    let vias = m.headers("Via");
    assert!(
        m.headers("Record-Route").is_empty(),
        "no Record-Route: {}",
        m.text()
    );
    for name in ["Via", "Contact", "Record-Route", "Route"] {
        assert!(
            !m.headers(name).join(",").contains(&other.to_string()),
            "{name} shows the other side: {}",
            m.text()
        );
    }
    assert!(!m.text().contains("P-SR-"), "{}", m.text());
    if m.is_response() {
        return;
    }
    assert_eq!(vias.len(), 1, "{}", m.text());
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP {}", proxy.ip())),
        "{}",
        vias[0]
    );
}

/// The call so far, as each side knows it.
struct Call {
    caller: RawUa,
    callee: RawUa,
    call_id: String,
    /// What the caller sends to and its From/To.
    caller_target: String,
    caller_from: String,
    caller_to: String,
    /// What the callee sends to and its From/To.
    callee_target: String,
    callee_from: String,
    callee_to: String,
    caller_contact: String,
    callee_contact: String,
}

fn set_up(proxy: SocketAddr) -> Call {
    let caller = RawUa::bind();
    let callee = RawUa::bind();
    let callee_contact = format!("sip:ua@{}", callee.addr());
    let invite = caller
        .request("INVITE", &callee_contact, &[], "")
        .replace("Contact: <sip:tester@", "Contact: <sip:ua@");
    let sent = SipMsg::parse_str(&invite);
    let call_id = sent.header("Call-ID").unwrap().to_string();
    let caller_contact = uri_of(sent.header("Contact").unwrap());
    caller.send(proxy, &invite);

    let inv = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    shows_only_proxy(&inv, proxy, caller.addr());
    assert_eq!(
        inv.header("Call-ID"),
        Some(call_id.as_str()),
        "Call-ID is kept"
    );
    let shown_callee_side = uri_of(inv.header("Contact").expect("a Contact"));
    assert!(
        shown_callee_side.starts_with("sip:btpsh-")
            && shown_callee_side.ends_with(&format!("@{}", proxy)),
        "{shown_callee_side}"
    );

    // 180 and 200 (with a Record-Route of the callee's side, here the callee
    // itself: topos does not show it to the caller but follows it).
    let next_hop = format!("<sip:{};lr>", callee.addr());
    callee.send(
        proxy,
        reply(&inv, 180, Some("bob-tag"), Some(&callee_contact), &[]),
    );
    let ringing = caller.expect_msg_where(WAIT, |m| m.status() == Some(180));
    shows_only_proxy(&ringing, proxy, callee.addr());
    callee.send(
        proxy,
        reply(
            &inv,
            200,
            Some("bob-tag"),
            Some(&callee_contact),
            &[next_hop.as_str()],
        ),
    );
    let ok = caller.expect_msg_where(WAIT, |m| m.status() == Some(200));
    shows_only_proxy(&ok, proxy, callee.addr());
    let sent_via = sent.headers("Via")[0].to_string();
    let branch = sent_via.split(";branch=").nth(1).unwrap();
    let ok_vias = ok.headers("Via");
    assert_eq!(ok_vias.len(), 1, "{}", ok.text());
    assert!(
        ok_vias[0].contains(branch),
        "the caller's own Via: {}",
        ok.text()
    );
    let shown_caller_side = uri_of(ok.header("Contact").unwrap());
    assert!(shown_caller_side.starts_with("sip:atpsh-"), "{}", ok.text());
    // The same dialog uid on both sides.
    assert_eq!(shown_caller_side[5..], shown_callee_side[5..]);

    let caller_from = ok.header("From").unwrap().to_string();
    let caller_to = ok.header("To").unwrap().to_string();
    caller.send(
        proxy,
        in_dialog(
            "ACK",
            caller.addr(),
            &shown_caller_side,
            &caller_from,
            &caller_to,
            &call_id,
            1,
        ),
    );
    let ack = callee.expect_msg_where(WAIT, |m| m.method() == Some("ACK"));
    assert_eq!(ack.request_uri(), Some(callee_contact.as_str()));
    assert_eq!(
        ack.headers("Route"),
        vec![next_hop.as_str()],
        "{}",
        ack.text()
    );
    shows_only_proxy(&ack, proxy, caller.addr());

    Call {
        call_id,
        caller_target: shown_caller_side,
        caller_from: caller_from.clone(),
        caller_to: caller_to.clone(),
        callee_target: shown_callee_side,
        callee_from: caller_to,
        callee_to: caller_from,
        caller_contact,
        callee_contact,
        caller,
        callee,
    }
}

/// A request from the callee reaches the caller's Contact, and its answer
/// comes back with the callee's Via.
fn callee_sends(c: &Call, proxy: SocketAddr, method: &str, cseq: u32) {
    let req = in_dialog(
        method,
        c.callee.addr(),
        &c.callee_target,
        &c.callee_from,
        &c.callee_to,
        &c.call_id,
        cseq,
    );
    c.callee.send(proxy, &req);
    let got = c
        .caller
        .expect_msg_where(WAIT, |m| m.method() == Some(method));
    assert_eq!(got.request_uri(), Some(c.caller_contact.as_str()));
    shows_only_proxy(&got, proxy, c.callee.addr());
    let contact = got.header("Contact");
    if method == "BYE" {
        assert_eq!(contact, None, "no Contact on BYE: {}", got.text());
    } else {
        assert!(uri_of(contact.unwrap()).starts_with("sip:atpsh-"));
    }
    c.caller
        .send(proxy, reply(&got, 200, None, Some(&c.caller_contact), &[]));
    let ok = c.callee.expect_msg_where(WAIT, |m| {
        m.status() == Some(200) && m.header("CSeq") == Some(format!("{cseq} {method}").as_str())
    });
    shows_only_proxy(&ok, proxy, c.caller.addr());
    let sent = SipMsg::parse_str(&req);
    let branch = sent.headers("Via")[0]
        .split(";branch=")
        .nth(1)
        .unwrap()
        .to_string();
    assert!(ok.headers("Via")[0].contains(&branch), "{}", ok.text());
    if method == "INVITE" {
        c.callee.send(
            proxy,
            in_dialog(
                "ACK",
                c.callee.addr(),
                &c.callee_target,
                &c.callee_from,
                &c.callee_to,
                &c.call_id,
                cseq,
            ),
        );
        let ack = c
            .caller
            .expect_msg_where(WAIT, |m| m.method() == Some("ACK"));
        assert_eq!(ack.request_uri(), Some(c.caller_contact.as_str()));
    }
}

#[test]
fn call_through_topos_each_side_sees_only_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(dir.path());
    let proxy = Proxy::builder(&config(&url)).ready_when_bound().start();
    let p = proxy.addr();
    let c = set_up(p);

    // re-INVITE from the callee, INFO from the caller, BYE from the callee.
    callee_sends(&c, p, "INVITE", 10);
    let info = in_dialog(
        "INFO",
        c.caller.addr(),
        &c.caller_target,
        &c.caller_from,
        &c.caller_to,
        &c.call_id,
        2,
    );
    c.caller.send(p, &info);
    let got = c
        .callee
        .expect_msg_where(WAIT, |m| m.method() == Some("INFO"));
    assert_eq!(got.request_uri(), Some(c.callee_contact.as_str()));
    shows_only_proxy(&got, p, c.caller.addr());
    c.callee.send(p, reply(&got, 200, None, None, &[]));
    let ok = c.caller.expect_msg_where(WAIT, |m| m.status() == Some(200));
    // A 2xx gets the proxy's Contact even when the callee put none.
    assert!(uri_of(ok.header("Contact").unwrap()).starts_with("sip:atpsh-"));
    callee_sends(&c, p, "BYE", 11);

    // The records are in Kamailio's tables.
    let db = rusqlite::Connection::open(dir.path().join("topos.db")).unwrap();
    let uuid: String = db
        .query_row(
            "SELECT a_uuid FROM topos_d WHERE a_callid = ?1",
            [&c.call_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        format!("sip:{uuid}"),
        c.caller_target.split('@').next().unwrap()
    );
    // One per request sent (INVITE, ACK, re-INVITE, ACK, INFO, BYE), written
    // by the store thread after the message went out.
    let count = || -> i64 {
        db.query_row(
            "SELECT count(*) FROM topos_t WHERE a_callid = ?1",
            [&c.call_id],
            |r| r.get(0),
        )
        .unwrap()
    };
    let until = std::time::Instant::now() + WAIT;
    while count() < 6 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count(), 6);
}

#[test]
fn dialogs_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = database(dir.path());
    let proxy = Proxy::builder(&config(&url)).ready_when_bound().start();
    let p = proxy.addr();
    let c = set_up(p);
    assert!(proxy.stop().success());

    let again = Proxy::builder(&config(&url))
        .listen(p)
        .ready_when_bound()
        .start();
    callee_sends(&c, again.addr(), "BYE", 12);
}

#[test]
fn unimplemented_settings_are_refused_with_their_line() {
    let check = |extra: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topos.cfg");
        let cfg = format!(
            "loadmodule \"tm.so\"\nloadmodule \"topos.so\"\n{extra}\nrequest_route {{ t_relay(); }}\n"
        );
        std::fs::write(&path, cfg).unwrap();
        let out = std::process::Command::new(ringsip_bin())
            .args(["check", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for (line, what) in [
        (
            "modparam(\"topos\", \"storage\", \"redis\")",
            "storage \"redis\"",
        ),
        ("modparam(\"topos\", \"mask_callid\", 1)", "mask_callid"),
        ("modparam(\"topos\", \"contact_mode\", 1)", "contact_mode 1"),
        ("modparam(\"topos\", \"rr_update\", 1)", "rr_update"),
        ("modparam(\"topos\", \"xavu_cfg\", \"_tps_\")", "xavu_cfg"),
        (
            "event_route[topos:msg-incoming] { drop; }",
            "topos:msg-incoming",
        ),
    ] {
        let (ok, err) = check(line);
        assert!(!ok, "{line} accepted");
        assert!(err.contains("topos.cfg:3:"), "{line}: {err}");
        assert!(
            err.contains(what) && err.contains("not implemented in ringsip"),
            "{line}: {err}"
        );
    }
    // Not run when event_mode leaves them out.
    let (ok, err) =
        check("modparam(\"topos\", \"event_mode\", 3)\nevent_route[topos:msg-incoming] { drop; }");
    assert!(ok, "{err}");
    // Parameters Kamailio 5.6 does not have are unknown, as there.
    let (ok, err) = check("modparam(\"topos\", \"header_mode\", 1)");
    assert!(!ok && err.contains("no parameter \"header_mode\""), "{err}");
    let (ok, err) = check("modparam(\"topos\", \"branch_expire\", 60)\nmodparam(\"topos\", \"contact_host\", \"sbc.example.net\")");
    assert!(ok, "{err}");
}
