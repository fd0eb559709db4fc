//! Serial forking by q value (`t_load_contacts` / `t_next_contacts`, Kamailio
//! tm 5.6) through the engine with registrar and usrloc, sans-IO on virtual
//! time: the best q group is called first, failure_route moves to the next.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::engine::{engine_with, Net};
use common::ua::SipMsg;
use ringsip::modules::registrar::{RegParams, Registrar};
use ringsip::modules::usrloc::{UlParams, Usrloc};

const CALLER: &str = "127.0.0.2:5070";
const HIGH: &str = "127.0.0.3:5080";
const LOW: &str = "127.0.0.4:5090";
const LOWER: &str = "127.0.0.5:5100";

/// A proxy with registrar on virtual time, and what it sent.
impl Net {
    fn new(cfg: &str) -> Net {
        Net::of(engine_with(cfg, |env, mp| {
            let ul = Usrloc::new(
                UlParams::from_modparams(mp).unwrap(),
                None,
                1_700_000_000_000,
            );
            env.services.insert(Arc::new(ul.unwrap()));
            env.services.insert(Arc::new(Registrar {
                params: RegParams::from_modparams(mp).unwrap(),
            }));
        }))
    }

    fn invites(&mut self, dst: &str) -> Vec<SipMsg> {
        self.take(dst)
            .into_iter()
            .filter(|m| m.method() == Some("INVITE"))
            .collect()
    }

    /// Registers bob's `contacts` (`(addr, q)`), one REGISTER each.
    fn register(&mut self, contacts: &[(&str, &str)]) {
        for (i, (addr, q)) in contacts.iter().enumerate() {
            let msg = format!(
                "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP {addr};branch=z9hG4bK-reg{i}
From: <sip:bob@example.com>;tag=r{i}
To: <sip:bob@example.com>
Call-ID: reg-{i}
CSeq: 1 REGISTER
Max-Forwards: 70
Contact: <sip:bob@{addr}>;q={q}
Expires: 3600
Content-Length: 0

"
            );
            self.deliver(addr, &msg);
            let ok = self.take(addr);
            assert_eq!(
                ok.first().and_then(SipMsg::status),
                Some(200),
                "REGISTER of {addr}"
            );
        }
    }
}

const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKserial1
Max-Forwards: 70
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>
Call-ID: serial-1@127.0.0.2
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.2:5070>
Content-Length: 0

";

/// A response from a callee to `req`, with its To tag.
fn response(req: &SipMsg, code: u16, reason: &str, tag: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers("Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    out.push_str(&format!("From: {}\r\n", req.header("From").unwrap()));
    out.push_str(&format!("To: {};tag={tag}\r\n", req.header("To").unwrap()));
    out.push_str(&format!("Call-ID: {}\r\n", req.header("Call-ID").unwrap()));
    out.push_str(&format!("CSeq: {}\r\n", req.header("CSeq").unwrap()));
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// The serial-forking pattern of Kamailio's tm documentation.
const SERIAL: &str = r#"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("tm", "contacts_avp", "tm_contacts")
modparam("tm", "contact_flows_avp", "tm_contact_flows")
modparam("registrar", "append_branches", 1)
request_route {
    if (is_method("REGISTER")) { save("location"); exit; }
    if (is_method("ACK")) { t_relay(); exit; }
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    if (!t_load_contacts()) { sl_send_reply("500", "no contacts"); exit; }
    if (!t_next_contacts()) { sl_send_reply("500", "no contacts"); exit; }
    t_on_failure("NEXT");
    t_relay();
}
failure_route[NEXT] {
    if (t_is_canceled()) { exit; }
    $var(rc) = 0;
    t_next_contacts();
    $var(rc) = $rc;
    if ($var(rc) < 0) { exit; }
    t_on_failure("NEXT");
    t_relay();
}
"#;

#[test]
fn busy_best_contact_moves_the_call_to_the_lower_q_one() {
    let mut n = Net::new(SERIAL);
    n.register(&[(LOW, "0.5"), (HIGH, "1.0")]);
    n.deliver(CALLER, INVITE);
    let first = n.invites(HIGH);
    assert_eq!(first.len(), 1, "the q=1.0 contact is called first");
    assert!(
        n.invites(LOW).is_empty(),
        "the q=0.5 contact waits for the first to fail"
    );
    n.deliver(HIGH, &response(&first[0], 486, "Busy Here", "h1"));
    let second = n.invites(LOW);
    assert_eq!(second.len(), 1, "failure_route called the next contact");
    assert!(second[0]
        .start_line()
        .starts_with("INVITE sip:bob@127.0.0.4:5090"));
    n.deliver(LOW, &response(&second[0], 200, "OK", "l1"));
    let up: Vec<u16> = n.take(CALLER).iter().filter_map(SipMsg::status).collect();
    assert!(
        up.contains(&200),
        "the call completes at the second: {up:?}"
    );
    assert!(
        !up.contains(&486),
        "the 486 of the first leg stays below: {up:?}"
    );
}

#[test]
fn equal_q_contacts_ring_in_parallel_then_the_lower_group() {
    let mut n = Net::new(SERIAL);
    n.register(&[(LOWER, "0.1"), (LOW, "0.7"), (HIGH, "0.7")]);
    n.deliver(CALLER, INVITE);
    let (a, b) = (n.invites(HIGH), n.invites(LOW));
    assert_eq!((a.len(), b.len()), (1, 1), "both q=0.7 contacts at once");
    assert!(n.invites(LOWER).is_empty());
    n.deliver(HIGH, &response(&a[0], 486, "Busy Here", "h1"));
    assert!(
        n.invites(LOWER).is_empty(),
        "one of the group is still ringing"
    );
    n.deliver(LOW, &response(&b[0], 480, "Unavailable", "l1"));
    assert_eq!(n.invites(LOWER).len(), 1, "then the q=0.1 group");
}

#[test]
fn no_contact_left_gives_minus_2_and_the_best_reply_goes_up() {
    let mut n = Net::new(SERIAL);
    n.register(&[(LOW, "0.5"), (HIGH, "1.0")]);
    n.deliver(CALLER, INVITE);
    let first = n.invites(HIGH);
    n.deliver(HIGH, &response(&first[0], 486, "Busy Here", "h1"));
    let second = n.invites(LOW);
    n.deliver(LOW, &response(&second[0], 404, "Not Found", "l1"));
    n.advance(Duration::from_millis(10));
    let up: Vec<u16> = n.take(CALLER).iter().filter_map(SipMsg::status).collect();
    // failure_reply_mode 3: the last leg's reply is what remains.
    assert!(up.contains(&404), "the last leg's reply goes up: {up:?}");
}

#[test]
fn a_single_contact_is_left_alone() {
    let mut n = Net::new(SERIAL);
    n.register(&[(HIGH, "0.5")]);
    n.deliver(CALLER, INVITE);
    // t_load_contacts had nothing to do; t_next_contacts found no contact
    // (-2) and the script answered 500 without relaying.
    assert!(n.invites(HIGH).is_empty());
    let up: Vec<u16> = n.take(CALLER).iter().filter_map(SipMsg::status).collect();
    assert_eq!(up, vec![500]);
}

#[test]
fn without_contacts_avp_both_functions_fail() {
    let cfg = SERIAL
        .replace("modparam(\"tm\", \"contacts_avp\", \"tm_contacts\")\n", "")
        .replace(
            "modparam(\"tm\", \"contact_flows_avp\", \"tm_contact_flows\")\n",
            "",
        );
    let mut n = Net::new(&cfg);
    n.register(&[(LOW, "0.5"), (HIGH, "1.0")]);
    n.deliver(CALLER, INVITE);
    assert!(n.invites(HIGH).is_empty() && n.invites(LOW).is_empty());
    let up: Vec<u16> = n.take(CALLER).iter().filter_map(SipMsg::status).collect();
    assert_eq!(up, vec![500]);
}

#[test]
fn contacts_avp_without_contact_flows_avp_is_refused_at_start_up() {
    // As Kamailio's tm refuses to initialize.
    let cfg = SERIAL.replace(
        "modparam(\"tm\", \"contact_flows_avp\", \"tm_contact_flows\")\n",
        "",
    );
    let files = ringsip::script::MemoryFiles::default();
    let parsed =
        ringsip::script::parse_str("t.cfg", &cfg, &ringsip::script::Options::with_files(&files))
            .unwrap();
    let text = ringsip::script::compile::compile(&parsed)
        .err()
        .map(|d| d.rendered().join("\n"))
        .expect("refused");
    assert!(text.contains("t.cfg:14:10: t_load_contacts(): "), "{text}");
    assert!(text.contains("contact_flows_avp"), "{text}");
}
