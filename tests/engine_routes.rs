//! Where a module function runs, as Kamailio decides it: where it may be
//! written is checked when the config loads (a `route[X]` block counts as a
//! request route); a request-route function in a sub-route called from
//! `branch_route` runs there on the request. Sans-IO, on virtual time.

mod common;

use std::time::Instant;

use common::engine::{engine, inbound, sent_to};

const CALLER: &str = "127.0.0.2:5070";
const CALLEE: &str = "127.0.0.3:5080";

/// The stock config's `route[NATMANAGE]` pattern: `check_route_param()`
/// (a request_route function in Kamailio's rr) reached from `branch_route`.
const CONFIG: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "textops.so"
loadmodule "siputils.so"
request_route {
    if (has_totag()) {
        if (loose_route()) {
            t_on_branch("MANAGE_BRANCH");
            t_relay();
        }
        exit;
    }
}
branch_route[MANAGE_BRANCH] {
    route(NATMANAGE);
}
route[NATMANAGE] {
    if (is_request() && has_totag() && check_route_param("nat=yes")) {
        append_hf("X-Nat: yes\r\n");
    }
}
"#;

/// An in-dialog BYE (call `id`) whose Route to us has `route_params`.
fn bye(id: u32, route_params: &str) -> String {
    format!(
        "BYE sip:bob@127.0.0.3:5080 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKroutes-{id}
Route: <sip:127.0.0.1;lr{route_params}>
Max-Forwards: 70
From: <sip:alice@127.0.0.2>;tag=a1
To: <sip:bob@127.0.0.1>;tag=b1
Call-ID: engine-routes-{id}
CSeq: 2 BYE
Content-Length: 0

"
    )
}

#[test]
fn a_request_route_function_runs_in_a_sub_route_of_branch_route() {
    let mut e = engine(CONFIG);
    let mut out = Vec::new();
    e.on_inbound(
        inbound(CALLER, &bye(1, ";nat=yes")),
        Instant::now(),
        &mut out,
    );
    let got = sent_to(&out, CALLEE);
    assert_eq!(got.len(), 1, "{out:?}");
    assert!(got[0].contains("\r\nX-Nat: yes\r\n"), "{}", got[0]);

    let mut out = Vec::new();
    e.on_inbound(inbound(CALLER, &bye(2, ";x=1")), Instant::now(), &mut out);
    let got = sent_to(&out, CALLEE);
    assert_eq!(got.len(), 1, "{out:?}");
    assert!(!got[0].contains("X-Nat"), "{}", got[0]);
}
