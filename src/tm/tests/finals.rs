//! Reporting of final responses sent upstream (the completion hook modules
//! such as acc use): what is recorded, and that a finished transaction waits
//! for its record to be taken.

use super::*;

#[test]
fn finals_are_not_recorded_unless_asked() {
    let mut d = Driver::new();
    let tid = d.create_over(&request("OPTIONS", "z9hG4bKf0", 1), Proto::Tcp);
    d.reply_local(tid, 200).unwrap();
    let mut seen = 0;
    d.t.take_finals(|_, _| seen += 1);
    assert_eq!(seen, 0);
    // Reliable non-INVITE: terminated at once, and freed.
    assert!(!d.t.contains(tid));
}

#[test]
fn relayed_and_local_finals_are_recorded_once_with_user_data() {
    let mut d = Driver::new();
    d.t.report_finals(true);
    // A local reply over TCP ends the transaction at once; it stays until taken.
    let tid = d.create_over(&request("OPTIONS", "z9hG4bKf1", 1), Proto::Tcp);
    d.reply_local(tid, 404).unwrap();
    assert!(d.t.contains(tid));
    let mut seen = Vec::new();
    d.t.take_finals(|f, user| {
        seen.push((f.tid, f.code, user.is_some()));
        assert!(f.response.starts_with(b"SIP/2.0 404 "));
    });
    assert_eq!(seen, [(tid, 404, true)]);
    assert!(!d.t.contains(tid));

    // A relayed 200: a provisional is not a final.
    let tid = d.create(&invite("z9hG4bKf2"));
    let (_, req) = d.fork(tid, B1);
    d.answer(&req, 180);
    d.t.take_finals(|_, _| panic!("no final yet"));
    d.answer(&req, 200);
    let mut codes = Vec::new();
    d.t.take_finals(|f, _| codes.push((f.tid, f.code)));
    assert_eq!(codes, [(tid, 200)]);
    d.t.take_finals(|_, _| panic!("taken already"));
}

#[test]
fn timeout_final_is_recorded() {
    let mut d = Driver::new();
    d.t.report_finals(true);
    let tid = d.create(&request("OPTIONS", "z9hG4bKf3", 1));
    d.fork(tid, B1);
    d.run_until(40_000);
    let mut codes = Vec::new();
    d.t.take_finals(|f, _| codes.push(f.code));
    assert_eq!(codes, [408]);
}
