//! RFC 3327 Path through the whole engine: a phone registers through an edge
//! proxy that adds Path; calls to it are sent to the edge with the Path as
//! their route set, on the Request-URI's branch and on every other branch,
//! each with its own Path only (sans-IO, virtual time).

mod common;

use common::engine::{engine_with, inbound};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ringsip::modules::core::Engine;
use ringsip::modules::registrar::{RegParams, Registrar};
use ringsip::modules::usrloc::{UlParams, Usrloc};
use ringsip::sip::Transmit;

const EDGE_A: &str = "127.0.0.5:5060";
const EDGE_B: &str = "127.0.0.6:5060";
const CALLER: &str = "127.0.0.2:5070";

const CONFIG: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("registrar", "use_path", 1)
modparam("registrar", "path_mode", 1)
modparam("registrar", "append_branches", 1)
request_route {
    if (is_method("REGISTER")) { save("location"); exit; }
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    t_relay();
}
"#;

fn engine() -> Engine {
    engine_with(CONFIG, |env, mp| {
        env.services.insert(Arc::new(Usrloc::in_memory(
            UlParams::from_modparams(mp).unwrap(),
        )));
        env.services.insert(Arc::new(Registrar {
            params: RegParams::from_modparams(mp).unwrap(),
        }));
    })
}

/// A REGISTER of `contact` for alice that came through the edge at `edge`.
fn register(edge: &str, contact: &str, n: u32) -> String {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP {edge};branch=z9hG4bKedge{n}
Via: SIP/2.0/UDP 10.0.0.{n}:5060;branch=z9hG4bKphone{n};received=192.0.2.{n}
Max-Forwards: 69
From: <sip:alice@127.0.0.1>;tag=r{n}
To: <sip:alice@127.0.0.1>
Call-ID: reg-{n}@10.0.0.{n}
CSeq: 1 REGISTER
Contact: <{contact}>;q=0.{q}
Path: <sip:{edge};lr;received=sip:192.0.2.{n}:5060>
Supported: path
Expires: 600
Content-Length: 0

",
        q = 9 - n,
    )
}

const INVITE: &str = "INVITE sip:alice@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKcall1
Max-Forwards: 70
From: <sip:bob@127.0.0.1>;tag=b1
To: <sip:alice@127.0.0.1>
Call-ID: call-1@127.0.0.2
CSeq: 1 INVITE
Contact: <sip:bob@127.0.0.2:5070>
Content-Length: 0

";

fn text(t: &Transmit) -> String {
    String::from_utf8_lossy(&t.data).into_owned()
}

fn routes(t: &Transmit) -> Vec<String> {
    text(t)
        .lines()
        .filter(|l| l.starts_with("Route:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_branch_goes_through_its_own_path() {
    let mut e = engine();
    let now = Instant::now();
    let mut out = Vec::new();
    e.on_inbound(
        inbound(EDGE_A, &register(EDGE_A, "sip:alice@10.0.0.1:5060", 1)),
        now,
        &mut out,
    );
    e.on_inbound(
        inbound(EDGE_B, &register(EDGE_B, "sip:alice@10.0.0.2:5060", 2)),
        now,
        &mut out,
    );
    assert!(
        out.iter().all(|t| text(t).starts_with("SIP/2.0 200 ")),
        "{:?}",
        out.iter().map(text).collect::<Vec<_>>()
    );
    out.clear();
    e.on_inbound(inbound(CALLER, INVITE), now, &mut out);
    let invites: Vec<&Transmit> = out
        .iter()
        .filter(|t| text(t).starts_with("INVITE "))
        .collect();
    assert_eq!(
        invites.len(),
        2,
        "{:?}",
        out.iter().map(text).collect::<Vec<_>>()
    );
    // The higher q (the first contact) is the Request-URI's branch.
    let a = invites[0];
    assert_eq!(a.dst, EDGE_A.parse::<SocketAddr>().unwrap());
    assert!(
        text(a).starts_with("INVITE sip:alice@10.0.0.1:5060 SIP/2.0"),
        "{}",
        text(a)
    );
    assert_eq!(
        routes(a),
        [format!(
            "Route: <sip:{EDGE_A};lr;received=sip:192.0.2.1:5060>"
        )],
        "{}",
        text(a)
    );
    let b = invites[1];
    assert_eq!(b.dst, EDGE_B.parse::<SocketAddr>().unwrap());
    assert!(
        text(b).starts_with("INVITE sip:alice@10.0.0.2:5060 SIP/2.0"),
        "{}",
        text(b)
    );
    assert_eq!(
        routes(b),
        [format!(
            "Route: <sip:{EDGE_B};lr;received=sip:192.0.2.2:5060>"
        )],
        "{}",
        text(b)
    );
}
