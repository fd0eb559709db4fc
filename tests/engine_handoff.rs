//! A reply that reaches a core other than its transaction's is handed to
//! the owner, which alone runs the routes: the core reply route runs once
//! per reply, as in Kamailio (one process handles each reply), not once on
//! the receiving core and again on the owner.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::engine::{inbound, sent_to, PROXY};
use ringsip::modules::core::Engine;
use ringsip::script::compile::compile;
use ringsip::script::ctx::{Env, SocketInfo};
use ringsip::script::{self as script_lang, MemoryFiles, Options};
use ringsip::sip::Proto;

const CALLER: &str = "127.0.0.2:5070";
const CALLEE: &str = "127.0.0.3:5080";

const CONFIG: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
request_route {
    $du = "sip:127.0.0.3:5080";
    t_relay();
}
onreply_route {
    append_hf("X-Core-Runs-Before: $shv(runs)\r\n");
    $shv(runs) = $shv(runs) + 1;
}
"#;

/// Two cores' engines on one configuration and one shared state.
fn two_cores() -> (Engine, Engine) {
    let files = MemoryFiles::default();
    let config = script_lang::parse_str("test.cfg", CONFIG, &Options::with_files(&files))
        .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let compiled = compile(&config).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let env = Arc::new(Env {
        sockets: vec![SocketInfo {
            proto: Proto::Udp,
            addr: PROXY.parse().unwrap(),
            advertise: None,
        }],
        ..Env::for_program(&compiled.program)
    });
    let program = Arc::new(compiled.program);
    let tm = ringsip::modules::tm::config_from(&compiled.modparams);
    let core = |i| Engine::new(env.clone(), program.clone()).with_tm(tm.clone(), i);
    (core(0), core(1))
}

#[test]
fn the_core_reply_route_runs_once_for_a_reply_handed_to_its_owner() {
    let (mut owner, mut other) = two_cores();
    let t0 = Instant::now();
    let invite = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKcaller1
Max-Forwards: 70
From: <sip:alice@127.0.0.2>;tag=a1
To: <sip:bob@127.0.0.1>
Call-ID: handoff-1
CSeq: 1 INVITE
Content-Length: 0

";
    let mut out = Vec::new();
    owner.on_inbound(inbound(CALLER, invite), t0, &mut out);
    let relayed = sent_to(&out, CALLEE).pop().expect("INVITE relayed");
    let vias: String = relayed
        .lines()
        .filter(|l| l.starts_with("Via:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let ringing = format!(
        "SIP/2.0 180 Ringing\n{vias}From: <sip:alice@127.0.0.2>;tag=a1\n\
         To: <sip:bob@127.0.0.1>;tag=b1\nCall-ID: handoff-1\nCSeq: 1 INVITE\n\
         Content-Length: 0\n\n"
    );
    // The reply lands on the other core: handed over, nothing sent there.
    let mut out = Vec::new();
    other.on_inbound(inbound(CALLEE, &ringing), t0, &mut out);
    assert!(out.is_empty(), "{out:?}");
    let mut handed = Vec::new();
    other.take_handoffs(&mut handed);
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].0, 0, "to core 0, the transaction's");
    // The owner runs the core reply route, for the first time.
    let mut out = Vec::new();
    let (_, pkt) = handed.pop().unwrap();
    owner.on_inbound(pkt, t0, &mut out);
    let up = sent_to(&out, CALLER);
    assert_eq!(up.len(), 1, "{out:?}");
    assert!(up[0].contains("X-Core-Runs-Before: 0\r\n"), "{}", up[0]);
}
