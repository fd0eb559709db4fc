//! tmx's `$T_branch(uri|flags|ruid)` on the engine, sans-IO, for a call
//! forked to two callees, with the values Kamailio 5.6.3 printed live for
//! the same script: the reply's branch in onreply_route, the winning branch
//! in failure_route, `$null` where tmx refuses (request and branch routes).

mod common;

use common::engine::{engine, inbound, sent_to};
use std::time::Instant;

const CALLER: &str = "127.0.0.2:5070";
const FIRST: &str = "127.0.0.3:5080";
const SECOND: &str = "127.0.0.4:5090";

const CONFIG: &str = r#"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "textops.so"
request_route {
    $ru = "sip:first@127.0.0.3:5080";
    append_branch("sip:second@127.0.0.4:5090");
    t_on_reply("R");
    t_on_failure("F");
    t_on_branch("B");
    append_hf("X-Req: [$T_branch(uri)] [$T_branch(flags)] [$T_branch(ruid)]\r\n");
    t_relay();
}
branch_route[B] {
    if ($T_branch_idx == 1) { setbflag(2); } else { setbflag(5); }
    append_hf("X-Br: [$T_branch(uri)] [$T_branch(flags)] [$T_branch(ruid)]\r\n");
}
onreply_route[R] {
    append_hf("X-Rpl: $T_branch_idx [$T_branch(uri)] [$T_branch(flags)] [$T_branch(ruid)]\r\n");
}
failure_route[F] {
    t_reply("599", "F [$T_branch(uri)] [$T_branch(flags)] [$T_branch(ruid)]");
}
"#;

const INVITE: &str = "INVITE sip:bob@127.0.0.1:5060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKcaller1
Max-Forwards: 70
From: <sip:alice@127.0.0.2>;tag=a1
To: <sip:bob@127.0.0.1>
Call-ID: tm-branch-pv-1
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.2:5070>
Content-Length: 0

";

fn response(relayed: &str, status: &str, to_tag: &str) -> String {
    let vias: String = relayed
        .lines()
        .filter(|l| l.starts_with("Via:"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "SIP/2.0 {status}\n{vias}From: <sip:alice@127.0.0.2>;tag=a1\n\
         To: <sip:bob@127.0.0.1>;tag={to_tag}\nCall-ID: tm-branch-pv-1\nCSeq: 1 INVITE\n\
         Content-Length: 0\n\n"
    )
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {msg}"))
}

#[test]
fn t_branch_reads_the_branch_of_each_route() {
    let mut e = engine(CONFIG);
    let t0 = Instant::now();
    let mut out = Vec::new();
    e.on_inbound(inbound(CALLER, INVITE), t0, &mut out);
    let first = sent_to(&out, FIRST).pop().expect("first branch");
    let second = sent_to(&out, SECOND).pop().expect("second branch");
    // branch_route: no uri or flags yet (tmx refuses there), ruid "";
    // request_route before t_relay: no transaction, all $null.
    for branch in [&first, &second] {
        assert_eq!(header(branch, "X-Br: "), "[<null>] [<null>] []");
        assert_eq!(header(branch, "X-Req: "), "[<null>] [<null>] [<null>]");
    }

    let mut up = Vec::new();
    for (relayed, from, status, tag) in [
        (&second, SECOND, "183 Progress", "s1"),
        (&first, FIRST, "180 Ringing", "f1"),
        (&second, SECOND, "404 Not Found", "s1"),
        (&first, FIRST, "486 Busy Here", "f1"),
    ] {
        let mut out = Vec::new();
        e.on_inbound(inbound(from, &response(relayed, status, tag)), t0, &mut out);
        up.extend(sent_to(&out, CALLER));
    }
    let provisional: Vec<&str> = up
        .iter()
        .filter(|m| m.starts_with("SIP/2.0 18"))
        .map(|m| header(m, "X-Rpl: "))
        .collect();
    assert_eq!(
        provisional,
        [
            "1 [sip:second@127.0.0.4:5090] [4] []",
            "0 [sip:first@127.0.0.3:5080] [32] []"
        ]
    );
    // The winner is the 404, as Kamailio picked it; its branch had flag 2.
    let last = up.last().expect("a final reply");
    assert!(
        last.starts_with("SIP/2.0 599 F [<null>] [4] []\r\n"),
        "{last}"
    );
}
