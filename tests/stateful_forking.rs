//! Parallel and serial forking through the engine, sans-IO on virtual time
//! (no sockets, no sleeps): the destination set (R-URI + `append_branch`),
//! branch_route per branch, best-response selection (RFC 3261 §16.7: first
//! 2xx wins and the other branches are CANCELed, a 6xx cancels the rest,
//! later 2xx still forwarded), failure_route relaying only new branches
//! (KAMAILIO-REFERENCE §3.3), and the tm functions around them.

mod common;

use common::engine::{engine, Net};
use std::time::Duration;

use common::ua::SipMsg;

const CALLER: &str = "127.0.0.2:5070";
const BOB1: &str = "127.0.0.3:5080";
const BOB2: &str = "127.0.0.4:5090";
const BOB3: &str = "127.0.0.5:5100";

/// A proxy on virtual time, and what it sent, per destination.
impl Net {
    fn new(cfg: &str) -> Net {
        Net::of(engine(cfg))
    }

    /// The one request with `method` sent to `dst` (others are left).
    fn one(&mut self, dst: &str, method: &str) -> SipMsg {
        let all = self.take(dst);
        let found: Vec<&SipMsg> = all.iter().filter(|m| m.method() == Some(method)).collect();
        assert_eq!(
            found.len(),
            1,
            "one {method} to {dst}: {:?}",
            all.iter().map(SipMsg::start_line).collect::<Vec<_>>()
        );
        found[0].clone()
    }

    fn live_transactions(&self) -> usize {
        self.e.transactions().map_or(0, |t| t.len())
    }
}

const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKfork1
Max-Forwards: 70
From: <sip:alice@example.com>;tag=a1
To: <sip:bob@example.com>
Call-ID: fork-1@127.0.0.2
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
    let to = req.header("To").unwrap();
    if to.contains("tag=") {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag={tag}\r\n"));
    }
    out.push_str(&format!("Call-ID: {}\r\n", req.header("Call-ID").unwrap()));
    out.push_str(&format!("CSeq: {}\r\n", req.header("CSeq").unwrap()));
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

fn statuses(msgs: &[SipMsg]) -> Vec<u16> {
    msgs.iter().filter_map(SipMsg::status).collect()
}

const FORK: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "corex.so"
loadmodule "textops.so"
request_route {
    if (is_method("CANCEL")) {
        if (t_check_trans()) { t_relay(); }
        exit;
    }
    $ru = "sip:bob@127.0.0.3:5080";
    append_branch("sip:bob@127.0.0.4:5090");
    t_relay();
}
"#;

#[test]
fn parallel_fork_first_200_wins_and_the_other_branch_is_canceled() {
    let mut n = Net::new(FORK);
    n.deliver(CALLER, INVITE);
    let inv1 = n.one(BOB1, "INVITE");
    let inv2 = n.one(BOB2, "INVITE");
    assert_eq!(inv1.request_uri(), Some("sip:bob@127.0.0.3:5080"));
    assert_eq!(inv2.request_uri(), Some("sip:bob@127.0.0.4:5090"));
    let (b1, b2) = (
        inv1.header_param("Via", "branch").unwrap().to_string(),
        inv2.header_param("Via", "branch").unwrap().to_string(),
    );
    assert_ne!(b1, b2, "one client transaction per branch");
    assert_eq!(statuses(&n.take(CALLER)), [100]);

    n.deliver(BOB1, &response(&inv1, 180, "Ringing", "t1"));
    n.deliver(BOB2, &response(&inv2, 180, "Ringing", "t2"));
    assert_eq!(statuses(&n.take(CALLER)), [180, 180], "both 180s go up");

    n.deliver(BOB1, &response(&inv1, 200, "OK", "t1"));
    let up = n.take(CALLER);
    assert_eq!(statuses(&up), [200]);
    assert!(up[0].header("To").unwrap().contains("tag=t1"));
    // §16.7 step 10: the pending branch is CANCELed, on the INVITE's branch.
    let cancel = n.one(BOB2, "CANCEL");
    assert_eq!(cancel.header_param("Via", "branch"), Some(b2.as_str()));
    assert_eq!(cancel.request_uri(), inv2.request_uri());
    assert!(
        cancel
            .header("Reason")
            .is_some_and(|r| r.contains("cause=200")),
        "{}",
        cancel.text()
    );
    assert!(n.take(BOB1).is_empty(), "nothing more to the winner");

    // The canceled callee answers 200 to the CANCEL and 487 to the INVITE:
    // the proxy ACKs the 487 itself and the caller never sees it.
    n.deliver(BOB2, &response(&cancel, 200, "OK", "t2"));
    n.deliver(BOB2, &response(&inv2, 487, "Request Terminated", "t2"));
    let ack = n.one(BOB2, "ACK");
    assert_eq!(ack.header_param("Via", "branch"), Some(b2.as_str()));
    assert!(n.take(CALLER).is_empty(), "the 487 is absorbed");

    // The transaction ends by itself (Timer M of the winner, Timer D of the loser).
    n.advance(Duration::from_secs(40));
    assert_eq!(n.live_transactions(), 0);
}

#[test]
fn parallel_fork_a_later_2xx_is_forwarded_too() {
    let mut n = Net::new(FORK);
    n.deliver(CALLER, INVITE);
    let inv1 = n.one(BOB1, "INVITE");
    let inv2 = n.one(BOB2, "INVITE");
    n.deliver(BOB2, &response(&inv2, 180, "Ringing", "t2"));
    n.deliver(BOB1, &response(&inv1, 200, "OK", "t1"));
    let _ = n.one(BOB2, "CANCEL");
    // The CANCEL crossed a 200 from the second callee (§16.7 step 5: every 2xx goes up).
    n.deliver(BOB2, &response(&inv2, 200, "OK", "t2"));
    let up = n.take(CALLER);
    assert_eq!(statuses(&up), [100, 180, 200, 200]);
    let up = &up[1..];
    assert!(up[1].header("To").unwrap().contains("tag=t1"));
    assert!(up[2].header("To").unwrap().contains("tag=t2"));
}

#[test]
fn a_6xx_cancels_the_other_branches_and_goes_up() {
    let mut n = Net::new(FORK);
    n.deliver(CALLER, INVITE);
    let inv1 = n.one(BOB1, "INVITE");
    let inv2 = n.one(BOB2, "INVITE");
    n.deliver(BOB2, &response(&inv2, 180, "Ringing", "t2"));
    n.deliver(BOB1, &response(&inv1, 603, "Decline", "t1"));
    let _ = n.one(BOB1, "ACK");
    let cancel = n.one(BOB2, "CANCEL");
    assert!(cancel
        .header("Reason")
        .is_some_and(|r| r.contains("cause=603")));
    // Nothing final upstream until the canceled branch ends.
    assert_eq!(statuses(&n.take(CALLER)), [100, 180]);
    n.deliver(BOB2, &response(&cancel, 200, "OK", "t2"));
    n.deliver(BOB2, &response(&inv2, 487, "Request Terminated", "t2"));
    let up = n.take(CALLER);
    assert_eq!(
        statuses(&up),
        [603],
        "the 6xx wins over the 487 (§16.7 step 6)"
    );
    assert!(up[0].header("To").unwrap().contains("tag=t1"));
}

#[test]
fn best_response_is_chosen_when_every_branch_failed() {
    let mut n = Net::new(FORK);
    n.deliver(CALLER, INVITE);
    let inv1 = n.one(BOB1, "INVITE");
    let inv2 = n.one(BOB2, "INVITE");
    n.deliver(BOB1, &response(&inv1, 486, "Busy Here", "t1"));
    assert_eq!(
        statuses(&n.take(CALLER)),
        [100],
        "486 held while a branch is pending"
    );
    n.deliver(BOB2, &response(&inv2, 302, "Moved", "t2"));
    let up = n.take(CALLER);
    assert_eq!(statuses(&up), [302], "3xx is preferred over 4xx");
}

#[test]
fn branch_route_runs_per_branch_with_that_branch_loaded() {
    let cfg = r#"
loadmodule "tm.so"
loadmodule "corex.so"
loadmodule "textops.so"
loadmodule "kex.so"
request_route {
    $ru = "sip:bob@127.0.0.3:5080";
    setbflag(3);
    append_branch("sip:bob@127.0.0.4:5090", "0.5");
    resetbflag(3);
    append_branch("sip:carol@127.0.0.5:5100");
    t_on_branch("BR");
    t_relay();
}
branch_route[BR] {
    append_hf("X-Branch: $T_branch_idx $ru\r\n");
    if (isbflagset(3)) { append_hf("X-Flag: 3\r\n"); }
    if ($rU == "carol") { drop; }
}
"#;
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    let inv1 = n.one(BOB1, "INVITE");
    let inv2 = n.one(BOB2, "INVITE");
    assert!(
        n.take(BOB3).is_empty(),
        "the branch dropped in branch_route is not sent"
    );
    assert_eq!(
        inv1.headers("X-Branch"),
        ["0 sip:bob@127.0.0.3:5080"],
        "{}",
        inv1.text()
    );
    assert_eq!(inv2.headers("X-Branch"), ["1 sip:bob@127.0.0.4:5090"]);
    // The R-URI branch has the message's branch flags; the appended one the
    // flags it was appended with.
    assert_eq!(inv1.headers("X-Flag").len(), 0, "{}", inv1.text());
    assert_eq!(inv2.headers("X-Flag"), ["3"]);
}

#[test]
fn append_branch_without_uri_copies_the_current_request_uri() {
    let cfg = r#"
loadmodule "tm.so"
loadmodule "corex.so"
request_route {
    $ru = "sip:bob@127.0.0.4:5090";
    append_branch();
    $ru = "sip:bob@127.0.0.3:5080";
    t_relay();
}
"#;
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    assert_eq!(
        n.one(BOB1, "INVITE").request_uri(),
        Some("sip:bob@127.0.0.3:5080")
    );
    assert_eq!(
        n.one(BOB2, "INVITE").request_uri(),
        Some("sip:bob@127.0.0.4:5090")
    );
}

const SERIAL: &str = r#"
loadmodule "tm.so"
loadmodule "corex.so"
request_route {
    $ru = "sip:bob@127.0.0.3:5080";
    t_on_failure("NEXT");
    t_relay();
}
failure_route[NEXT] {
    if (t_check_status("486")) {
        append_branch("sip:bob@127.0.0.4:5090");
        append_branch("sip:bob@127.0.0.5:5100");
        t_relay();
    }
}
"#;

#[test]
fn failure_route_relays_only_the_newly_appended_branches() {
    let mut n = Net::new(SERIAL);
    n.deliver(CALLER, INVITE);
    let inv1 = n.one(BOB1, "INVITE");
    n.deliver(BOB1, &response(&inv1, 486, "Busy Here", "t1"));
    let _ = n.one(BOB1, "ACK");
    assert!(
        n.take(BOB1).is_empty(),
        "the consumed R-URI is not relayed again"
    );
    let inv2 = n.one(BOB2, "INVITE");
    let inv3 = n.one(BOB3, "INVITE");
    assert_ne!(
        inv2.header_param("Via", "branch"),
        inv1.header_param("Via", "branch")
    );
    n.deliver(BOB2, &response(&inv2, 180, "Ringing", "t2"));
    n.deliver(BOB3, &response(&inv3, 200, "OK", "t3"));
    let up = n.take(CALLER);
    assert_eq!(statuses(&up), [100, 180, 200]);
    let _ = n.one(BOB2, "CANCEL");
}

#[test]
fn failure_route_relays_the_request_uri_again_once_rewritten() {
    let cfg = r#"
loadmodule "tm.so"
request_route {
    $ru = "sip:bob@127.0.0.3:5080";
    t_on_failure("NEXT");
    t_relay();
}
failure_route[NEXT] {
    t_relay();
    $ru = "sip:bob@127.0.0.4:5090";
    t_relay();
}
"#;
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    let inv1 = n.one(BOB1, "INVITE");
    n.deliver(BOB1, &response(&inv1, 486, "Busy Here", "t1"));
    let sent_again: Vec<SipMsg> = n
        .take(BOB1)
        .into_iter()
        .filter(|m| m.method() == Some("INVITE"))
        .collect();
    assert!(sent_again.is_empty(), "first t_relay() had nothing new");
    let inv2 = n.one(BOB2, "INVITE");
    n.deliver(BOB2, &response(&inv2, 480, "Unavailable", "t2"));
    let up = n.take(CALLER);
    assert_eq!(
        statuses(&up),
        [100, 480],
        "failure_reply_mode 3: last leg's reply"
    );
}

#[test]
fn failure_route_with_a_new_du_relays_the_request_uri_again() {
    let cfg = r#"
loadmodule "tm.so"
request_route {
    $du = "sip:127.0.0.3:5080";
    t_on_failure("NEXT");
    t_relay();
}
failure_route[NEXT] {
    if (t_is_canceled()) { exit; }
    if (t_check_status("503|408")) {
        $du = "sip:127.0.0.4:5090";
        t_relay();
    }
}
"#;
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    let inv1 = n.one(BOB1, "INVITE");
    n.deliver(BOB1, &response(&inv1, 503, "Unavailable", "t1"));
    let _ = n.one(BOB1, "ACK");
    let inv2 = n.one(BOB2, "INVITE");
    assert_eq!(inv2.request_uri(), Some("sip:bob@example.com"));
    assert_eq!(statuses(&n.take(CALLER)), [100]);
}

/// A config whose failure_route tries BOB2 once after BOB1 failed.
fn serial_with(params: &str, failure_extra: &str) -> String {
    format!(
        r#"
loadmodule "tm.so"
loadmodule "textops.so"
{params}
request_route {{
    $ru = "sip:bob@127.0.0.3:5080";
    t_on_failure("NEXT");
    t_relay();
}}
failure_route[NEXT] {{
    {failure_extra}
    if ($rU == "bob" && $T_reply_code != 408) {{
        $ru = "sip:carol@127.0.0.4:5090";
        t_relay();
    }}
}}
"#
    )
}

/// First leg 486, second leg 503: what goes up under each failure_reply_mode.
fn two_legs(cfg: &str) -> Vec<u16> {
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    let inv1 = n.one(BOB1, "INVITE");
    n.deliver(BOB1, &response(&inv1, 486, "Busy Here", "t1"));
    let inv2 = n.one(BOB2, "INVITE");
    n.deliver(BOB2, &response(&inv2, 503, "Unavailable", "t2"));
    statuses(&n.take(CALLER))
}

#[test]
fn failure_reply_mode_3_forgets_the_earlier_legs_replies() {
    // The 503 (sent as 500, remap_503_500) wins although 486 ranks better.
    assert_eq!(two_legs(&serial_with("", "")), [100, 500]);
}

#[test]
fn failure_reply_mode_0_keeps_every_reply_a_candidate() {
    let cfg = serial_with(r#"modparam("tm", "failure_reply_mode", 0)"#, "");
    assert_eq!(two_legs(&cfg), [100, 486]);
}

#[test]
fn t_drop_replies_none_keeps_the_earlier_reply_in_this_run() {
    let cfg = serial_with("", r#"t_drop_replies("n");"#);
    assert_eq!(two_legs(&cfg), [100, 486]);
}

#[test]
fn t_drop_replies_without_a_new_branch_answers_500() {
    let cfg = r#"
loadmodule "tm.so"
request_route {
    $ru = "sip:bob@127.0.0.3:5080";
    t_on_failure("F");
    t_relay();
}
failure_route[F] {
    t_drop_replies();
}
"#;
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    let inv1 = n.one(BOB1, "INVITE");
    n.deliver(BOB1, &response(&inv1, 486, "Busy Here", "t1"));
    assert_eq!(statuses(&n.take(CALLER)), [100, 500]);
}

#[test]
fn t_set_fr_shortens_the_timers_of_this_transaction() {
    let cfg = r#"
loadmodule "tm.so"
loadmodule "textops.so"
request_route {
    $ru = "sip:bob@127.0.0.3:5080";
    if ($hdr(X-Fr) == "short") { t_set_fr(3000, 1000); }
    t_on_failure("F");
    t_relay();
}
failure_route[F] {
    if (t_branch_timeout() && t_any_timeout()) { t_reply(480, "Timed Out Here"); }
}
"#;
    let short = INVITE.replace("Content-Length", "X-Fr: short\nContent-Length");
    // fr_timer 1 s: no reply at all → the branch times out at 1 s (default 30 s).
    let mut n = Net::new(cfg);
    n.deliver(CALLER, &short);
    let _ = n.one(BOB1, "INVITE");
    n.advance(Duration::from_millis(900));
    assert_eq!(statuses(&n.take(CALLER)), [100]);
    n.advance(Duration::from_millis(200));
    assert_eq!(
        statuses(&n.take(CALLER)),
        [480],
        "the failure route saw the timeout (t_branch_timeout, t_any_timeout)"
    );

    // fr_inv_timer 3 s after a 180 (default 120 s).
    let mut n = Net::new(cfg);
    n.deliver(CALLER, &short);
    let inv = n.one(BOB1, "INVITE");
    n.deliver(BOB1, &response(&inv, 180, "Ringing", "t1"));
    n.advance(Duration::from_millis(2900));
    assert_eq!(statuses(&n.take(CALLER)), [100, 180]);
    n.advance(Duration::from_millis(200));
    assert_eq!(statuses(&n.take(CALLER)), [480]);

    // Without t_set_fr: still waiting after 10 s.
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    let inv = n.one(BOB1, "INVITE");
    n.deliver(BOB1, &response(&inv, 180, "Ringing", "t1"));
    n.advance(Duration::from_secs(10));
    assert_eq!(statuses(&n.take(CALLER)), [100, 180]);
}

#[test]
fn t_set_fr_in_onreply_route_restarts_the_running_branch_timer() {
    let cfg = r#"
loadmodule "tm.so"
request_route {
    $ru = "sip:bob@127.0.0.3:5080";
    t_on_reply("R");
    t_relay();
}
onreply_route[R] {
    if ($rs == 180) { t_set_fr(2000); }
}
"#;
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    let inv = n.one(BOB1, "INVITE");
    n.deliver(BOB1, &response(&inv, 180, "Ringing", "t1"));
    n.advance(Duration::from_millis(1900));
    assert_eq!(statuses(&n.take(CALLER)), [100, 180]);
    n.advance(Duration::from_millis(200));
    assert_eq!(statuses(&n.take(CALLER)), [408]);
}

#[test]
fn t_branch_timeout_is_false_for_a_branch_that_answered() {
    let cfg = r#"
loadmodule "tm.so"
request_route {
    $ru = "sip:bob@127.0.0.3:5080";
    t_on_failure("F");
    t_relay();
}
failure_route[F] {
    if (t_branch_timeout() || t_any_timeout()) { t_reply(500, "Saw A Timeout"); }
    else if (t_branch_replied()) { t_reply(404, "Replied Branch"); }
}
"#;
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    let inv = n.one(BOB1, "INVITE");
    n.deliver(BOB1, &response(&inv, 486, "Busy Here", "t1"));
    assert_eq!(statuses(&n.take(CALLER)), [100, 404]);
}

#[test]
fn branch_pseudo_variables_read_the_destination_set() {
    let cfg = r#"
loadmodule "tm.so"
loadmodule "corex.so"
loadmodule "textops.so"
request_route {
    $ru = "sip:bob@127.0.0.3:5080";
    $du = "sip:127.0.0.3:5080";
    append_branch("sip:bob@127.0.0.4:5090", "0.5");
    $du = $null;
    $br = "sip:carol@127.0.0.5:5100";
    append_hf("X-Set: $branch(count) [$bR] first=$br q=$branch(q) du=$branch(dst_uri) second=$(branch(uri)[1]) last=$(branch(uri)[-1]) q2=$(branch(q)[1])\r\n");
    t_relay();
}
"#;
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    // The appended branch goes to the $du it was appended with (BOB1's address).
    let to_bob1 = n.take(BOB1);
    let uris: Vec<_> = to_bob1.iter().filter_map(SipMsg::request_uri).collect();
    assert_eq!(uris, ["sip:bob@127.0.0.3:5080", "sip:bob@127.0.0.4:5090"]);
    let inv = &to_bob1[0];
    assert_eq!(
        inv.headers("X-Set"),
        [
            "2 [<sip:bob@127.0.0.4:5090>;q=0.5, sip:carol@127.0.0.5:5100] first=sip:bob@127.0.0.4:5090 \
          q=500 du=sip:127.0.0.3:5080 second=sip:carol@127.0.0.5:5100 \
          last=sip:carol@127.0.0.5:5100 q2=-1"
        ],
        "{}",
        inv.text()
    );
    let _ = n.one(BOB3, "INVITE");
    assert!(n.take(BOB2).is_empty());
}

#[test]
fn remove_branch_and_clear_branches_edit_the_destination_set() {
    let cfg = r#"
loadmodule "tm.so"
loadmodule "corex.so"
request_route {
    $ru = "sip:bob@127.0.0.3:5080";
    append_branch("sip:bob@127.0.0.4:5090");
    append_branch("sip:bob@127.0.0.5:5100");
    if ($hdr(X-Mode) == "clear") { clear_branches(); }
    else { remove_branch(0); }
    t_relay();
}
"#;
    let mut n = Net::new(cfg);
    n.deliver(CALLER, INVITE);
    let _ = n.one(BOB1, "INVITE");
    assert!(n.take(BOB2).is_empty(), "branch 0 removed");
    let _ = n.one(BOB3, "INVITE");

    let mut n = Net::new(cfg);
    let clear = INVITE.replace("Content-Length", "X-Mode: clear\nContent-Length");
    n.deliver(CALLER, &clear);
    let _ = n.one(BOB1, "INVITE");
    assert!(n.take(BOB2).is_empty() && n.take(BOB3).is_empty());
}

/// Kamailio's `wt_timer` (5 s by default) ends a transaction after its 2xx
/// (RFC 6026 Timers L and M would keep it 32 s).
#[test]
fn a_completed_transaction_leaves_after_wt_timer() {
    for (params, wait) in [("", 5000), (r#"modparam("tm", "wt_timer", 2000)"#, 2000)] {
        let cfg = format!(
            r#"
loadmodule "tm.so"
{params}
request_route {{
    $ru = "sip:bob@127.0.0.3:5080";
    t_relay();
}}
"#
        );
        let mut n = Net::new(&cfg);
        n.deliver(CALLER, INVITE);
        let inv = n.one(BOB1, "INVITE");
        n.deliver(BOB1, &response(&inv, 200, "OK", "t1"));
        assert_eq!(statuses(&n.take(CALLER)), [100, 200]);
        n.advance(Duration::from_millis(wait - 100));
        assert_eq!(n.live_transactions(), 1, "{params}");
        n.advance(Duration::from_millis(200));
        assert_eq!(n.live_transactions(), 0, "{params}");
    }
}
