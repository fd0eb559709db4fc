//! `onsend_route`: runs before a request leaves (stateless `forward()` and
//! tm's `t_relay()`), reads the outgoing buffer and addresses through `$snd`,
//! and `drop` there stops the send. Driven through the engine sans-IO.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ringsip::modules::core::Engine;
use ringsip::script::compile::compile;
use ringsip::script::ctx::{Env, SocketInfo};
use ringsip::script::{self as script_lang, MemoryFiles, Options};
use ringsip::sip::{Inbound, Proto, Transmit};

const PROXY: &str = "127.0.0.1:5060";
const CALLER: &str = "127.0.0.2:5070";
const CALLEE: &str = "127.0.0.3:5080";

const INVITE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKons1
Max-Forwards: 70
From: <sip:alice@example.org>;tag=a1
To: <sip:bob@example.net>
Call-ID: onsend-1
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.2:5070>
Content-Length: 0

";

fn run(cfg: &str) -> Vec<Transmit> {
    let files = MemoryFiles::default();
    let config = script_lang::parse_str("onsend.cfg", cfg, &Options::with_files(&files))
        .unwrap_or_else(|d| panic!("{d}"));
    let compiled = compile(&config).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let env = Env {
        sockets: vec![SocketInfo {
            proto: Proto::Udp,
            addr: PROXY.parse().unwrap(),
            advertise: None,
        }],
        ..Env::default()
    };
    let tm = ringsip::modules::tm::config_from(&compiled.modparams);
    let mut e = Engine::new(Arc::new(env), Arc::new(compiled.program)).with_tm(tm, 0);
    let pkt = Inbound {
        data: Bytes::from(INVITE.replace('\n', "\r\n")),
        src: CALLER.parse().unwrap(),
        local: PROXY.parse().unwrap(),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    let mut out = Vec::new();
    e.on_inbound(pkt, Instant::now(), &mut out);
    out
}

fn sent_to(out: &[Transmit], dst: &str) -> Vec<String> {
    let dst: SocketAddr = dst.parse().unwrap();
    out.iter()
        .filter(|t| t.dst == dst)
        .map(|t| String::from_utf8_lossy(&t.data).into_owned())
        .collect()
}

/// Every check holds for the request as sent; `CHECK` can be negated.
const ONSEND: &str = r#"
onsend_route {
    if (CHECK ($snd(ip) == "127.0.0.3" && $snd(port) == 5080 && $snd(proto) == "udp"
            && $snd(af) == "INET" && $sndfrom(ip) == "127.0.0.1" && $sndfrom(port) == 5060
            && $sndto(ip) == "127.0.0.3" && snd_ip == "127.0.0.3" && to_port == 5080
            && $(snd(buf){s.len}) == $snd(len) && $snd(len) > 100
            && $snd(buf) =~ "^INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK"
            && $snd(buf) =~ "Max-Forwards: 69")) {
        drop;
    }
}
"#;

fn stateless(check: &str) -> String {
    format!(
        "loadmodule \"sl.so\"\nloadmodule \"maxfwd.so\"\nloadmodule \"pv.so\"\n\
         request_route {{\n  mf_process_maxfwd_header(\"10\");\n  \
         if (!forward(\"127.0.0.3\", 5080)) {{ sl_send_reply(\"500\", \"not sent $rc\"); }}\n}}\n{}",
        ONSEND.replace("CHECK", check)
    )
}

fn stateful(check: &str) -> String {
    format!(
        "loadmodule \"tm.so\"\nloadmodule \"sl.so\"\nloadmodule \"maxfwd.so\"\nloadmodule \"pv.so\"\n\
         request_route {{\n  mf_process_maxfwd_header(\"10\");\n  $du = \"sip:127.0.0.3:5080\";\n  \
         if (!t_relay()) {{ $var(rc) = $rc; t_reply(\"500\", \"not relayed $var(rc)\"); }}\n}}\n{}",
        ONSEND.replace("CHECK", check)
    )
}

#[test]
fn stateless_forward_runs_onsend_and_sends_when_it_does_not_drop() {
    let out = run(&stateless("!"));
    assert_eq!(sent_to(&out, CALLEE).len(), 1, "{out:?}");
    assert!(sent_to(&out, CALLER).is_empty(), "{out:?}");
}

#[test]
fn stateless_drop_in_onsend_stops_the_send() {
    let out = run(&stateless(""));
    assert!(sent_to(&out, CALLEE).is_empty(), "{out:?}");
    let up = sent_to(&out, CALLER);
    assert!(up[0].starts_with("SIP/2.0 500 not sent -477\r\n"), "{up:?}");
}

#[test]
fn t_relay_runs_onsend_for_its_branch() {
    let out = run(&stateful("!"));
    assert_eq!(sent_to(&out, CALLEE).len(), 1, "{out:?}");
    let up = sent_to(&out, CALLER);
    assert!(up.iter().all(|m| m.starts_with("SIP/2.0 100")), "{up:?}");
}

#[test]
fn t_relay_branch_dropped_in_onsend_is_not_sent() {
    let out = run(&stateful(""));
    assert!(sent_to(&out, CALLEE).is_empty(), "{out:?}");
    // tm answers a request it could not relay itself (Kamailio's
    // kill_transaction), so the script's own t_reply() after the failure
    // finds the transaction already answered.
    let up = sent_to(&out, CALLER);
    let finals: Vec<_> = up.iter().filter(|m| !m.starts_with("SIP/2.0 1")).collect();
    assert_eq!(finals.len(), 1, "{up:?}");
    assert!(finals[0].starts_with("SIP/2.0 500 "), "{up:?}");
}

#[test]
fn snd_names_are_checked() {
    let files = MemoryFiles::default();
    let cfg = "onsend_route { if ($snd(nope) == 1) drop; }\n";
    let config = script_lang::parse_str("o.cfg", cfg, &Options::with_files(&files)).unwrap();
    let err = compile(&config).unwrap_err().rendered().join("\n");
    assert!(err.contains("unknown $snd(nope)"), "{err}");
}
