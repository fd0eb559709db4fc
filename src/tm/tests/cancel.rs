//! CANCEL (RFC 3261 §9, §16.10) and ACK absorption.

use super::*;

#[test]
fn cancel_before_answer_200_cancel_downstream_487_upstream() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKc1");
    let tid = d.create(&inv);
    let (_, r1) = d.fork(tid, B1);
    d.answer(&r1, 180);
    d.run_until(2000);
    d.drain();
    let outcome = d.cancel(&inv, Some("Q.850;cause=16")).unwrap();
    assert!(outcome.pending);
    assert_eq!(outcome.event, None);
    assert!(d.t.is_canceled(tid));
    let log = d.drain();
    // §16.10: "the element MUST immediately return a 200 (OK) response to the CANCEL".
    let ok = &log[0];
    assert_eq!(ok.dst, addr(UAC));
    assert!(
        ok.text().starts_with("SIP/2.0 200 canceling\r\n"),
        "{}",
        ok.text()
    );
    assert!(ok.text().contains("CSeq: 1 CANCEL\r\n"));
    // Then a CANCEL on the branch that had a provisional, with the Reason copied.
    let c = &log[1];
    assert_eq!((c.dst, c.what()), (addr(B1), "CANCEL".to_string()));
    let ct = c.text();
    assert!(ct.contains("Reason: Q.850;cause=16\r\n"), "{ct}");
    assert!(ct.contains(std::str::from_utf8(d.t.branch_param(tid, 0).as_bytes()).unwrap()));
    assert_eq!(log.len(), 2);
    // A retransmitted CANCEL matches its own transaction: the 200 again.
    assert_eq!(
        d.recv(&cancel_for(&inv, Some("Q.850;cause=16"))),
        RequestMatch::Retransmission {
            tid: outcome.cancel.unwrap()
        }
    );
    assert_eq!(d.summary(), [(2000, UAC.to_string(), "200".to_string())]);
    // The branch answers 487: ACKed, relayed upstream as the final.
    assert_eq!(
        d.answer(&r1, 487),
        ReplyAction::FinalSent { tid, code: 487 }
    );
    let log = d.drain();
    assert_eq!(times(&log, B1, "ACK"), [2000]);
    assert_eq!(times(&log, UAC, "487"), [2000]);
    // The UAC's ACK of the 487 is absorbed.
    assert_eq!(
        d.recv(&ack_for(&inv, "uas-487")),
        RequestMatch::AckAbsorbed { tid }
    );
    // No new branch on a canceled transaction (Kamailio t_relay: -1).
    assert_eq!(
        d.fork_over(tid, B2, Proto::Udp).unwrap_err(),
        TmError::Canceled
    );
}

#[test]
fn cancel_waits_for_a_provisional_on_unreplied_branches() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKc2");
    let tid = d.create(&inv);
    let (_, r1) = d.fork(tid, B1);
    d.run_until(100);
    d.cancel(&inv, None).unwrap();
    d.run_until(1000);
    let log = d.drain();
    // §9.1: no CANCEL before a provisional; the INVITE keeps being retransmitted
    // (Kamailio cancel_b_method=1).
    assert!(times(&log, B1, "CANCEL").is_empty());
    assert_eq!(times(&log, B1, "INVITE"), [0, 500]);
    d.answer(&r1, 180);
    let log = d.drain();
    assert_eq!(times(&log, B1, "CANCEL"), [1000]);
    // The 180 still goes upstream (no final was sent yet).
    assert_eq!(times(&log, UAC, "180"), [1000]);
    assert_eq!(
        d.answer(&r1, 487),
        ReplyAction::FinalSent { tid, code: 487 }
    );
}

#[test]
fn cancel_unreplied_branch_never_answering_ends_in_487() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKc3");
    let tid = d.create(&inv);
    d.fork(tid, B1);
    d.cancel(&inv, None).unwrap();
    d.run_until(31_000);
    // fr_timer ends the branch; the transaction was canceled: 487, not 408.
    let log = d.drain();
    assert_eq!(times(&log, UAC, "487")[0], 30_000);
    assert!(times(&log, UAC, "408").is_empty());
}

#[test]
fn cancel_stop_branch_mode_ends_at_once() {
    let mut d = Driver::with(TmConfig {
        cancel_unreplied: CancelUnreplied::StopBranch,
        ..TmConfig::default()
    });
    let inv = invite("z9hG4bKc4");
    let tid = d.create(&inv);
    d.fork(tid, B1);
    d.drain();
    let outcome = d.cancel(&inv, None).unwrap();
    assert_eq!(outcome.event, Some(TmEvent::FinalSent { tid, code: 487 }));
    let log = d.drain();
    assert_eq!(
        log.iter().map(|s| (s.dst, s.what())).collect::<Vec<_>>(),
        [(addr(UAC), "200".into()), (addr(UAC), "487".into())]
    );
    // No more INVITE retransmissions.
    d.run_until(5000);
    assert!(times(&d.drain(), B1, "INVITE").is_empty());
}

#[test]
fn cancel_with_no_branch_yet_answers_the_invite_487() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKc5");
    let tid = d.create(&inv);
    d.drain();
    let outcome = d.cancel(&inv, None).unwrap();
    assert!(!outcome.pending);
    assert_eq!(outcome.event, Some(TmEvent::FinalSent { tid, code: 487 }));
    // As Kamailio 5.6: the INVITE's 487 first, then the CANCEL's 200.
    let log = d.drain();
    assert!(log[0]
        .text()
        .starts_with("SIP/2.0 487 Request canceled\r\n"));
    assert!(log[0].text().contains("CSeq: 1 INVITE\r\n"));
    assert!(log[1]
        .text()
        .starts_with("SIP/2.0 200 ok -- no more pending branches\r\n"));
}

#[test]
fn cancel_after_the_final_has_no_effect() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKc6");
    let tid = d.create(&inv);
    let (_, r1) = d.fork(tid, B1);
    d.answer(&r1, 200);
    d.drain();
    let outcome = d.cancel(&inv, None).unwrap();
    assert!(!outcome.pending);
    let log = d.drain();
    assert_eq!(log.len(), 1);
    assert!(log[0]
        .text()
        .starts_with("SIP/2.0 200 ok -- no more pending branches\r\n"));
}

#[test]
fn cancel_for_an_unknown_transaction_is_reported() {
    let mut d = Driver::new();
    d.create(&invite("z9hG4bKc7"));
    // Another branch: no INVITE transaction to cancel (§16.10: forward statelessly).
    assert_eq!(
        d.recv(&cancel_for(&invite("z9hG4bKother"), None)),
        RequestMatch::CancelUnmatched
    );
    // Same branch, different sent-by: no match either (§17.2.3).
    let c = cancel_for(&invite("z9hG4bKc7"), None).replace("192.0.2.10:5060;", "192.0.2.11:5060;");
    assert_eq!(d.recv(&c), RequestMatch::CancelUnmatched);
}

#[test]
fn ack_of_a_local_negative_reply_is_absorbed() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKk1");
    let tid = d.create(&inv);
    d.reply_local(tid, 404).unwrap();
    assert_eq!(
        d.recv(&ack_for(&inv, "x")),
        RequestMatch::AckAbsorbed { tid }
    );
    // ACK with an unknown branch: not ours.
    assert_eq!(
        d.recv(&ack_for(&invite("z9hG4bKk2"), "x")),
        RequestMatch::AckPassOn { tid: None }
    );
}

#[test]
fn cancel_branches_on_request() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKk3"));
    let (_, r1) = d.fork(tid, B1);
    d.answer(&r1, 183);
    d.drain();
    let now = d.instant();
    let mut out = Vec::new();
    assert!(d.t.cancel_branches(tid, now, &mut out));
    assert_eq!(out.len(), 1);
    assert_eq!(
        Message::parse(out[0].data.clone()).unwrap().method_bytes(),
        b"CANCEL"
    );
}
