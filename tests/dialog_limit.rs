//! The dialog module against the real binary (two workers, so the dialog
//! table is shared across cores): the call-limiting pattern of carrier
//! configurations, `get_profile_size()` on the caller, refuses a second
//! concurrent call with 486 while the first is up, and lets a new one
//! through once the first ended with BYE.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::proxy::{ringsip_bin, Proxy};
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(3);

fn config(callee: SocketAddr) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "dialog.so"
modparam("dialog", "profiles_with_value", "caller")

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
    if (is_method("INVITE")) {{
        get_profile_size("caller", "$fU", "$var(n)");
        if ($var(n) >= 1) {{
            sl_send_reply("486", "Busy Here");
            exit;
        }}
        dlg_manage();
        set_dlg_profile("caller", "$fU");
    }}
    record_route();
    $du = "sip:{callee}";
    t_relay();
}}
"#
    )
}

/// The callee's answer to `req`: its Via, Record-Route, From, Call-ID and
/// CSeq, To with a tag, and a Contact.
fn answer(req: &SipMsg, status: &str, callee: SocketAddr) -> String {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for (name, value) in req.all_headers() {
        let n = name.to_ascii_lowercase();
        if [
            "via",
            "v",
            "record-route",
            "from",
            "f",
            "call-id",
            "i",
            "cseq",
        ]
        .contains(&n.as_str())
        {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let to = req.header("To").expect("To");
    let to = if to.contains(";tag=") {
        to.to_string()
    } else {
        format!("{to};tag=callee")
    };
    out.push_str(&format!(
        "To: {to}\r\nContact: <sip:bob@{callee}>\r\nContent-Length: 0\r\n\r\n"
    ));
    out
}

/// An in-dialog request of the call whose INVITE was `invite` and whose
/// 2xx was `ok`: along the route set the 2xx carried, to its Contact.
fn in_dialog(invite: &str, ok: &SipMsg, method: &str, cseq: u32, me: SocketAddr) -> String {
    let inv = SipMsg::parse_str(invite);
    let contact = ok.header("Contact").expect("Contact");
    let target = contact.trim_start_matches('<').trim_end_matches('>');
    let route = ok.headers("Record-Route").join(", ");
    format!(
        "{method} {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-{method}-{cseq}-{token}\r\n\
         Max-Forwards: 70\r\n\
         Route: {route}\r\n\
         From: {from}\r\n\
         To: {to}\r\n\
         Call-ID: {cid}\r\n\
         CSeq: {cseq} {method}\r\n\
         Content-Length: 0\r\n\r\n",
        from = inv.header("From").unwrap(),
        to = ok.header("To").unwrap(),
        cid = inv.header("Call-ID").unwrap(),
        token = inv.header("Call-ID").unwrap().replace(['@', '.'], "-"),
    )
}

/// `ringsip ctl --json ARGS…` on `sock`, parsed.
fn ctl_json(sock: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(ringsip_bin())
        .arg("ctl")
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .arg("--json")
        .args(args)
        .output()
        .expect("run ringsip ctl");
    assert!(
        out.status.success(),
        "ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn invite_from(ua: &RawUa, proxy: &Proxy) -> String {
    ua.request("INVITE", &format!("sip:bob@{}", proxy.addr()), &[], "")
}

#[test]
fn second_concurrent_call_of_a_caller_gets_486_until_the_first_ends() {
    let callee = RawUa::bind();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dlg.ctl");
    let proxy = Proxy::builder(&config(callee.addr()))
        .arg("--ctl")
        .arg(sock.display().to_string())
        .start();
    // Two sockets of the same caller: their flows may land on different cores.
    let first = RawUa::bind();
    let second = RawUa::bind();

    let invite = invite_from(&first, &proxy);
    first.send(proxy.addr(), &invite);
    let relayed = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let rr = relayed.header("Record-Route").expect("Record-Route");
    assert!(rr.contains(";did="), "did cookie in Record-Route: {rr}");
    callee.send(proxy.addr(), answer(&relayed, "200 OK", callee.addr()));
    let ok = first.expect_msg_where(WAIT, |m| m.status() == Some(200));
    first.send(
        proxy.addr(),
        in_dialog(&invite, &ok, "ACK", 1, first.addr()),
    );
    callee.expect_msg_where(WAIT, |m| m.method() == Some("ACK"));

    // The same caller again, from the other socket, while the call is up.
    let busy = invite_from(&second, &proxy);
    second.send(proxy.addr(), &busy);
    let refused = second.expect_msg_where(WAIT, |m| m.is_response() && m.status() != Some(100));
    assert_eq!(refused.status(), Some(486), "{}", refused.text());
    assert!(
        callee.recv_msg(Duration::from_millis(300)).is_none(),
        "the refused INVITE is not relayed"
    );

    // The control socket sees the call.
    let size = ctl_json(&sock, &["dlg.profile_get_size", "caller", "tester"]);
    assert_eq!(size["count"], 1, "{size}");
    assert_eq!(ctl_json(&sock, &["dlg.stats_active"])["ongoing"], 1);
    let list = ctl_json(&sock, &["dlg.list"]);
    assert_eq!(list[0]["state"], 4, "{list}");

    // BYE ends the call (its 200 comes back through the proxy).
    first.send(
        proxy.addr(),
        in_dialog(&invite, &ok, "BYE", 2, first.addr()),
    );
    let bye = callee.expect_msg_where(WAIT, |m| m.method() == Some("BYE"));
    callee.send(proxy.addr(), answer(&bye, "200 OK", callee.addr()));
    first.expect_msg_where(WAIT, |m| m.status() == Some(200));
    let size = ctl_json(&sock, &["dlg.profile_get_size", "caller", "tester"]);
    assert_eq!(size["count"], 0, "{size}");

    // Now a new call of the same caller goes through.
    let again = invite_from(&second, &proxy);
    second.send(proxy.addr(), &again);
    let relayed = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_eq!(
        relayed.header("Call-ID"),
        SipMsg::parse_str(&again).header("Call-ID")
    );
}
