//! Client transactions (RFC 3261 §17.1): Timers A, B, D, E, F, K, M, and
//! Kamailio's fr_timer / fr_inv_timer, on virtual time.

use super::*;

fn no_fr() -> TmConfig {
    // fr_timer and the lifetimes past Timers B and F, so that the RFC timers decide.
    TmConfig {
        fr_timer: Duration::from_secs(100),
        max_noninv_lifetime: Duration::from_secs(100),
        ..TmConfig::default()
    }
}

#[test]
fn timer_a_doubles_without_cap_then_timer_b_408() {
    let mut d = Driver::with(no_fr());
    let inv = invite("z9hG4bKa1");
    let tid = d.create(&inv);
    d.fork(tid, B1);
    d.run_until(40_000);
    let log = d.drain();
    // §17.1.1.2: A = T1, then 2·T1, 4·T1… (no cap for INVITE).
    assert_eq!(
        times(&log, B1, "INVITE"),
        [0, 500, 1500, 3500, 7500, 15_500, 31_500]
    );
    // Timer B = 64·T1: the branch ends with a local 408, which goes upstream.
    assert_eq!(times(&log, UAC, "100"), [0]);
    // …then retransmitted on Timer G until the ACK (§17.2.1).
    assert_eq!(
        times(&log, UAC, "408"),
        [32_000, 32_500, 33_500, 35_500, 39_500]
    );
    assert_eq!(d.events, [(32_000, TmEvent::FinalSent { tid, code: 408 })]);
    assert!(d.t.branch_timed_out(tid, 0));
    assert_eq!(d.t.branch_timeout(tid, 0), Some(TimerKind::B));
    assert!(!d.t.branch_replied(tid, 0));
}

#[test]
fn timer_a_capped_at_t2_when_configured() {
    let mut d = Driver::with(TmConfig {
        invite_retransmit_cap: Some(Duration::from_secs(4)),
        ..no_fr()
    });
    let tid = d.create(&invite("z9hG4bKa2"));
    d.fork(tid, B1);
    d.run_until(20_000);
    assert_eq!(
        times(&d.drain(), B1, "INVITE"),
        [0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500]
    );
}

#[test]
fn fr_timer_ends_an_unanswered_invite_branch() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKa3"));
    d.fork(tid, B1);
    // Before the 408's own wait for an ACK (fr_timer again) ends at 60 s.
    d.run_until(59_999);
    let log = d.drain();
    // fr_timer (30 s) comes before Timer B (32 s): last retransmission at 15.5 s.
    assert_eq!(
        times(&log, B1, "INVITE"),
        [0, 500, 1500, 3500, 7500, 15_500]
    );
    assert_eq!(times(&log, UAC, "408")[0], 30_000);
    // No 1xx: nothing to CANCEL (§9.1).
    assert!(times(&log, B1, "CANCEL").is_empty());
    assert_eq!(d.t.branch_timeout(tid, 0), Some(TimerKind::FrTimer));
}

#[test]
fn provisional_stops_retransmissions_and_is_relayed() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKa4"));
    let (_, req) = d.fork(tid, B1);
    d.run_until(700);
    assert!(matches!(d.answer(&req, 100), ReplyAction::Absorbed { .. }));
    assert_eq!(
        d.answer(&req, 180),
        ReplyAction::Relayed {
            tid,
            branch: 0,
            code: 180
        }
    );
    d.run_until(10_000);
    let log = d.drain();
    assert_eq!(times(&log, B1, "INVITE"), [0, 500]);
    // 100 is not relayed (Kamailio relay_100=0); 180 is, with our Via removed.
    let ups: Vec<_> = log.iter().filter(|s| s.dst == addr(UAC)).collect();
    assert_eq!(ups.len(), 2);
    assert_eq!(ups[0].what(), "100");
    assert_eq!(ups[1].what(), "180");
    assert_eq!(ups[1].at, 700);
    let m = ups[1].msg();
    assert_eq!(m.headers_of(crate::sip::HeaderName::Via).count(), 1);
    assert!(ups[1]
        .text()
        .contains("Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKa4;rport\r\n"));
}

#[test]
fn fr_inv_timer_after_provisional_cancels_and_408s() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKa5"));
    let (_, req) = d.fork(tid, B1);
    d.run_until(100);
    d.answer(&req, 180);
    d.run_until(121_000);
    assert_eq!(d.t.branch_timeout(tid, 0), Some(TimerKind::FrInvTimer));
    d.run_until(200_000);
    let log = d.drain();
    // fr_inv_timer = 120 s after the 1xx: CANCEL downstream, 408 upstream.
    // Our CANCEL is retransmitted on Timer E until Timer F (64·T1) gives up.
    assert_eq!(
        times(&log, B1, "CANCEL"),
        [
            120_100, 120_600, 121_600, 123_600, 127_600, 131_600, 135_600, 139_600, 143_600,
            147_600, 151_600
        ]
    );
    assert_eq!(times(&log, UAC, "408")[0], 120_100);
    assert_eq!(d.events, [(120_100, TmEvent::FinalSent { tid, code: 408 })]);
    // The cell ends after Timer H (no ACK upstream) and the 64·T1 wait after the CANCEL.
    assert!(!d.t.contains(tid));
}

#[test]
fn fr_inv_timer_late_487_is_acked_and_absorbed() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKa6"));
    let (_, req) = d.fork(tid, B1);
    d.answer(&req, 180);
    d.run_until(120_000);
    d.drain();
    // The UAS answers our CANCEL and the INVITE.
    let cancel = Driver::response(
        &Bytes::from(cancel_branch_request(&req)),
        200,
        Some("x"),
        "",
    );
    assert!(matches!(d.recv_reply(cancel), ReplyAction::Absorbed { .. }));
    assert!(matches!(d.answer(&req, 487), ReplyAction::Absorbed { .. }));
    let log = d.drain();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].what(), "ACK");
    assert_eq!(log[0].dst, addr(B1));
    assert_eq!(d.t.branch_code(tid, 0), Some(408));
}

/// The CANCEL we send for a branch request (what the UAS would receive).
pub(super) fn cancel_branch_request(req: &Bytes) -> String {
    let m = Message::parse(req.clone()).unwrap();
    let mut out = Vec::new();
    let c = crate::tm::build::cancel(&m, b"", &mut out).unwrap();
    String::from_utf8_lossy(&c).into_owned()
}

#[test]
fn fr_inv_timer_restarts_on_each_provisional() {
    for (restart, expected) in [(true, 180_100), (false, 120_100)] {
        let mut d = Driver::with(TmConfig {
            restart_fr_on_each_reply: restart,
            max_inv_lifetime: Duration::from_secs(1000),
            ..TmConfig::default()
        });
        let tid = d.create(&invite("z9hG4bKa7"));
        let (_, req) = d.fork(tid, B1);
        d.run_until(100);
        d.answer(&req, 180);
        d.run_until(60_100);
        d.answer(&req, 183);
        d.run_until(300_000);
        assert_eq!(
            times(&d.drain(), UAC, "408")[0],
            expected,
            "restart={restart}"
        );
    }
}

#[test]
fn non_2xx_final_is_acked_and_timer_d_absorbs_retransmissions() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKa8");
    let tid = d.create(&inv);
    let (_, req) = d.fork(tid, B1);
    d.run_until(50);
    assert_eq!(
        d.answer(&req, 486),
        ReplyAction::FinalSent { tid, code: 486 }
    );
    let log = d.drain();
    let ack = log
        .iter()
        .find(|s| s.dst == addr(B1) && s.what() == "ACK")
        .unwrap();
    // §17.1.1.3: same R-URI, the INVITE's top Via only, To with the response's tag.
    let m = ack.msg();
    assert_eq!(m.request_uri().unwrap(), b"sip:bob@example.com");
    assert_eq!(m.headers_of(crate::sip::HeaderName::Via).count(), 1);
    assert!(ack.text().contains(&format!(
        "Via: SIP/2.0/UDP {PROXY};branch={}",
        String::from_utf8_lossy(d.t.branch_param(tid, 0).as_bytes())
    )));
    assert!(ack
        .text()
        .contains("To: Bob <sip:bob@example.com>;tag=uas-486\r\n"));
    assert!(ack.text().contains("CSeq: 1 ACK\r\n"));
    // A retransmitted 486 gets the ACK again and is not relayed.
    d.run_until(1000);
    assert!(matches!(d.answer(&req, 486), ReplyAction::Absorbed { .. }));
    let again: Vec<_> = d
        .drain()
        .iter()
        .filter(|s| s.dst == addr(B1))
        .map(Sent::what)
        .collect();
    assert!(again.contains(&"ACK".to_string()), "{again:?}");
    // The upstream ACK ends the server side; Timer D (32 s) ends the branch.
    assert_eq!(
        d.recv(&ack_for(&inv, "uas-486")),
        RequestMatch::AckAbsorbed { tid }
    );
    d.run_until(32_049);
    assert!(d.t.contains(tid));
    d.run_until(32_050);
    assert!(!d.t.contains(tid));
    assert!(d.t.is_empty());
}

#[test]
fn timer_e_doubles_up_to_t2_then_timer_f() {
    let mut d = Driver::with(no_fr());
    let tid = d.create(&request("MESSAGE", "z9hG4bKe1", 1));
    d.fork(tid, B1);
    d.run_until(40_000);
    let log = d.drain();
    // §17.1.2.2: E = T1, then MIN(2·E, T2).
    assert_eq!(
        times(&log, B1, "MESSAGE"),
        [0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    // No 100 Trying for a non-INVITE; Timer F (64·T1) → 408.
    assert!(times(&log, UAC, "100").is_empty());
    assert_eq!(times(&log, UAC, "408"), [32_000]);
    assert_eq!(d.t.branch_timeout(tid, 0), Some(TimerKind::F));
}

#[test]
fn non_invite_provisional_keeps_timer_e_at_t2() {
    let mut d = Driver::with(no_fr());
    let tid = d.create(&request("MESSAGE", "z9hG4bKe2", 1));
    let (_, req) = d.fork(tid, B1);
    d.run_until(600);
    assert_eq!(
        d.answer(&req, 180),
        ReplyAction::Relayed {
            tid,
            branch: 0,
            code: 180
        }
    );
    d.run_until(14_000);
    // In Proceeding, E fires and resets with T2 (§17.1.2.2).
    assert_eq!(
        times(&d.drain(), B1, "MESSAGE"),
        [0, 500, 1500, 5500, 9500, 13_500]
    );
}

#[test]
fn fr_timer_ends_a_non_invite_branch_first() {
    let mut d = Driver::new();
    let tid = d.create(&request("OPTIONS", "z9hG4bKe3", 1));
    d.fork(tid, B1);
    d.run_until(40_000);
    // A non-INVITE final is not retransmitted: one 408.
    assert_eq!(times(&d.drain(), UAC, "408"), [30_000]);
    assert_eq!(d.t.branch_code(tid, 0), Some(408));
}

#[test]
fn non_invite_final_then_timer_k() {
    let mut d = Driver::new();
    let msg = request("MESSAGE", "z9hG4bKe4", 1);
    let tid = d.create(&msg);
    let (_, req) = d.fork(tid, B1);
    d.run_until(10);
    assert_eq!(
        d.answer(&req, 200),
        ReplyAction::Relayed {
            tid,
            branch: 0,
            code: 200
        }
    );
    // A retransmitted 200 is absorbed in Completed.
    assert!(matches!(d.answer(&req, 200), ReplyAction::Absorbed { .. }));
    // K = T4 ends the branch; J = 64·T1 ends the server side, then the cell.
    d.run_until(5010);
    assert!(d.t.contains(tid));
    d.run_until(32_010);
    assert!(!d.t.contains(tid));
    let log = d.drain();
    assert_eq!(times(&log, UAC, "200"), [10]);
    assert_eq!(times(&log, B1, "MESSAGE"), [0]);
}

#[test]
fn invite_2xx_enters_accepted_and_timer_m_relays_retransmissions() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKm1"));
    let (_, req) = d.fork(tid, B1);
    d.answer(&req, 180);
    d.run_until(1000);
    assert_eq!(
        d.answer(&req, 200),
        ReplyAction::Relayed {
            tid,
            branch: 0,
            code: 200
        }
    );
    // RFC 6026 §8.4: retransmitted 2xx are passed up (relayed) during Timer M.
    d.run_until(2000);
    assert_eq!(
        d.answer(&req, 200),
        ReplyAction::Relayed {
            tid,
            branch: 0,
            code: 200
        }
    );
    let log = d.drain();
    assert_eq!(times(&log, UAC, "200"), [1000, 2000]);
    // No ACK for a 2xx from the transaction layer (§17.1.1.2: the TU's job).
    assert!(times(&log, B1, "ACK").is_empty());
    // Timer L (server) and M (client) = 64·T1 after the 2xx.
    d.run_until(33_000);
    assert!(!d.t.contains(tid));
}

#[test]
fn reliable_transports_skip_retransmissions_and_waits() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKr1");
    let tid = d.create_over(&inv, Proto::Tcp);
    let (_, req) = d.fork_over(tid, B1, Proto::Tcp).unwrap();
    d.run_until(20_000);
    let log = d.drain();
    // No Timer A on TCP (§17.1.1.2).
    assert_eq!(times(&log, B1, "INVITE"), [0]);
    assert_eq!(
        log.iter().find(|s| s.dst == addr(B1)).unwrap().proto,
        Proto::Tcp
    );
    assert_eq!(
        d.answer(&req, 486),
        ReplyAction::FinalSent { tid, code: 486 }
    );
    d.run_until(49_999);
    // No Timer G on TCP: the 486 went up once; Timer D is zero (branch over at once),
    // Timer H still bounds the wait for the ACK.
    assert_eq!(times(&d.drain(), UAC, "486"), [20_000]);
    assert!(d.t.contains(tid));
    d.run_until(50_000);
    assert!(
        !d.t.contains(tid),
        "H (fr_timer, as Kamailio has it) ended the server transaction"
    );
}

#[test]
fn reliable_upstream_ack_ends_the_transaction_at_once() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKr2");
    let tid = d.create_over(&inv, Proto::Tcp);
    let (_, req) = d.fork_over(tid, B1, Proto::Tcp).unwrap();
    d.answer(&req, 404);
    // Timer I is zero on TCP and Timer D too: the ACK frees the cell.
    assert_eq!(
        d.recv(&ack_for(&inv, "uas-404")),
        RequestMatch::AckAbsorbed { tid }
    );
    assert!(!d.t.contains(tid));
}
