//! Many transactions: nothing leaks (slots, index, timers), slots are reused,
//! and the memory of an idle INVITE transaction.

use super::*;

#[test]
fn ten_thousand_transactions_expire_and_leave_nothing_behind() {
    let mut d = Driver::new();
    let n = 10_000;
    let mut tids = Vec::with_capacity(n);
    for i in 0..n {
        let inv = invite(&format!("z9hG4bKscale{i}"));
        let tid = d.create(&inv);
        let (_, req) = d.fork(tid, B1);
        // A mix of endings: answered, rejected, ringing then canceled, silent.
        match i % 4 {
            0 => {
                d.answer(&req, 200);
            }
            1 => {
                d.answer(&req, 486);
                d.recv(&ack_for(&inv, "uas-486"));
            }
            2 => {
                d.answer(&req, 180);
                d.cancel(&inv, None).unwrap();
                d.answer(&req, 487);
                d.recv(&ack_for(&inv, "uas-487"));
            }
            _ => {}
        }
        tids.push(tid);
        if i % 100 == 0 {
            d.advance(10);
        }
        d.sent.clear();
    }
    assert!(d.t.len() >= n, "INVITEs and CANCELs alive: {}", d.t.len());
    let peak = d.t.stats();
    d.advance(600_000);
    d.sent.clear();
    assert!(d.t.is_empty(), "left: {}", d.t.len());
    let s = d.t.stats();
    assert_eq!(s.active, 0);
    assert_eq!(s.created, s.freed);
    assert_eq!(s.created, peak.created);
    assert_eq!(d.t.timers_pending().0, 0, "no armed timer left");
    assert_eq!(d.t.next_deadline(), None);
    assert_eq!(d.t.timers_pending().1, 0, "heap drained");
    assert!(tids.iter().all(|&t| !d.t.contains(t)));
    // Slots are reused: a second wave does not grow the slab.
    for i in 0..n {
        let tid = d.create(&request("OPTIONS", &format!("z9hG4bKw2{i}"), 1));
        d.reply_local(tid, 200).unwrap();
    }
    d.advance(100_000);
    assert!(d.t.is_empty());
}

#[test]
fn stale_timer_entries_are_swept() {
    let mut d = Driver::new();
    // Each answered OPTIONS disarms timers (fr timer, lifetime): their
    // entries must not pile up (the wheel unlinks them when disarmed).
    for i in 0..20_000 {
        let tid = d.create(&request("OPTIONS", &format!("z9hG4bKsw{i}"), 1));
        let (_, req) = d.fork_over(tid, B1, Proto::Tcp).unwrap();
        d.answer(&req, 200);
        d.sent.clear();
    }
    let (armed, entries) = d.t.timers_pending();
    assert!(
        entries <= 2 * armed + 4096 + 2000,
        "armed {armed}, entries {entries}"
    );
}

#[test]
fn memory_per_idle_invite_transaction() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKmem");
    let tid = d.create(&inv);
    let (_, req) = d.fork(tid, B1);
    d.answer(&req, 180);
    // Idle: ringing, one branch, waiting for the answer.
    let mem = d.t.memory_of(tid).unwrap();
    eprintln!(
        "idle INVITE transaction: {} bytes of structures + {} bytes of stored messages \
         (cell {} B, branch {} B, server {} B)",
        mem.structures,
        mem.messages,
        std::mem::size_of::<crate::tm::cell::Cell<()>>(),
        std::mem::size_of::<crate::tm::client::Branch>(),
        std::mem::size_of::<crate::tm::server::Server>(),
    );
    assert!(mem.structures < 2048, "{mem:?}");
    // The stored messages: the INVITE as received, the INVITE as sent, the last 1xx.
    let ringing = Driver::response(&req, 180, Some("uas-180"), "");
    let ringing_upstream = ringing.len() - (req.len() - inv.len()); // our Via removed
    assert_eq!(
        mem.messages,
        inv.len() + req.len() + ringing_upstream,
        "{mem:?}"
    );
}

/// Released transactions leave no timer entry behind (it is unlinked when
/// disarmed: `entries < 10` holds at once; with the former heap it took a
/// sweep), and the timers of a transaction created meanwhile are kept.
#[test]
fn a_sweep_during_create_server_keeps_the_new_transactions_timers() {
    let mut d = Driver::new();
    let mut swept = false;
    for i in 0..6_000 {
        let tid = d.create(&request("OPTIONS", &format!("z9hG4bKsweep{i}"), 1));
        let (armed, entries) = d.t.timers_pending();
        assert!(
            entries >= armed,
            "transaction {i}: {armed} armed, {entries} entries"
        );
        swept |= entries < 10;
        // Released: its max lifetime entry stays behind, stale.
        assert!(d.t.release(tid));
    }
    assert!(swept, "no sweep ran");
    // The last one lives on: its max lifetime still ends it.
    let tid = d.create(&request("OPTIONS", "z9hG4bKsweep-last", 1));
    d.run_until(d.now + 200_000);
    assert!(!d.t.contains(tid));
}
