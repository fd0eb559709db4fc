//! Server transactions (RFC 3261 §17.2): Timers G, H, I, J, L, the
//! retransmission of the last response, and the absorption of ACKs.

use super::*;

#[test]
fn auto_100_trying_on_invite_only() {
    let mut d = Driver::new();
    d.create(&invite("z9hG4bKs0"));
    d.create(&request("OPTIONS", "z9hG4bKs0o", 1));
    let log = d.drain();
    assert_eq!(log.len(), 1);
    let t = log[0].text();
    assert!(
        t.starts_with("SIP/2.0 100 trying -- your call is important to us\r\n"),
        "{t}"
    );
    // rport filled and received added (RFC 3581 §4); no To tag on a 100 (Kamailio).
    assert!(
        t.contains(
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKs0;rport=5060;received=192.0.2.10\r\n"
        ),
        "{t}"
    );
    assert!(t.contains("To: Bob <sip:bob@example.com>\r\n"), "{t}");
    assert_eq!(log[0].dst, addr(UAC));

    let mut d = Driver::with(TmConfig {
        auto_inv_100: false,
        ..TmConfig::default()
    });
    d.create(&invite("z9hG4bKs0"));
    assert!(d.drain().is_empty());
}

#[test]
fn timer_g_retransmits_final_until_ack_then_timer_i() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKs1");
    let tid = d.create(&inv);
    d.reply_local(tid, 404).unwrap();
    d.run_until(8000);
    let log = d.drain();
    // §17.2.1: G = T1, doubling, capped at T2.
    assert_eq!(times(&log, UAC, "404"), [0, 500, 1500, 3500, 7500]);
    // Our local To tag is `<32 hex>-<8 hex>` (Kamailio's tm format), the same
    // in every retransmission.
    let tags: Vec<Vec<u8>> = log
        .iter()
        .filter(|s| s.what() == "404")
        .map(|s| {
            let m = s.msg();
            let to = m.header_value(crate::sip::HeaderName::To).unwrap();
            let na = crate::sip::nameaddr::NameAddr::parse(to).unwrap();
            na.tag().unwrap().to_vec()
        })
        .collect();
    assert!(tags.iter().all(|t| *t == tags[0]));
    let tag = &tags[0];
    assert_eq!(tag.len(), 41);
    assert_eq!(tag[32], b'-');
    assert!(tag
        .iter()
        .enumerate()
        .all(|(i, b)| i == 32 || b.is_ascii_hexdigit()));
    // The ACK (RFC 3261: matched by branch, sent-by and method) confirms it; G stops.
    let tag = String::from_utf8(tag.clone()).unwrap();
    assert_eq!(
        d.recv(&ack_for(&inv, &tag)),
        RequestMatch::AckAbsorbed { tid }
    );
    d.run_until(20_000);
    assert!(times(&d.drain(), UAC, "404").is_empty());
    // Timer I (T4 = 5 s) after the ACK ended it.
    assert!(!d.t.contains(tid));
}

#[test]
fn retransmitted_ack_absorbed_in_confirmed() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKs2");
    let tid = d.create(&inv);
    d.reply_local(tid, 480).unwrap();
    d.run_until(100);
    assert_eq!(
        d.recv(&ack_for(&inv, "t")),
        RequestMatch::AckAbsorbed { tid }
    );
    d.run_until(5099);
    assert_eq!(
        d.recv(&ack_for(&inv, "t")),
        RequestMatch::AckAbsorbed { tid }
    );
    assert!(d.t.contains(tid));
    d.run_until(5100);
    assert!(!d.t.contains(tid), "Timer I = T4 after the ACK");
    // Afterwards an ACK matches nothing: passed on like an end-to-end ACK.
    assert_eq!(
        d.recv(&ack_for(&inv, "t")),
        RequestMatch::AckPassOn { tid: None }
    );
}

#[test]
fn timer_h_gives_up_without_ack() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKs3"));
    d.reply_local(tid, 486).unwrap();
    d.run_until(40_000);
    let sent = times(&d.drain(), UAC, "486");
    // 0, then G: +0.5, +1, +2, +4 (T2 cap) … until H. Kamailio's H is the
    // transaction's fr_timer (30 s here), not 64·T1 (32 s): no 31.5 s.
    assert_eq!(
        sent,
        [0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500]
    );
    assert!(!d.t.contains(tid));
}

#[test]
fn timer_h_is_fr_timer_as_kamailio_has_it() {
    // Seen with Kamailio 5.6 (sidebyside timers.cfg, fr_timer 1500): a final
    // reply sent at 1.5 s is sent again at 2.0 s and not at 3.0 s, where
    // fr_timer ends the wait for the ACK (a retransmission due then is not sent).
    let mut d = Driver::with(TmConfig {
        fr_timer: Duration::from_millis(1500),
        ..TmConfig::default()
    });
    let tid = d.create(&invite("z9hG4bKs3h"));
    d.reply_local(tid, 408).unwrap();
    d.run_until(10_000);
    assert_eq!(times(&d.drain(), UAC, "408"), [0, 500]);
    assert!(!d.t.contains(tid));
    // t_set_fr's fr_timer counts for the transaction it was set on.
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKs3i"));
    let now = d.instant();
    d.t.set_fr(
        tid,
        None,
        Some(Duration::from_millis(4000)),
        now,
        &mut Vec::new(),
    );
    d.reply_local(tid, 486).unwrap();
    d.run_until(10_000);
    assert_eq!(times(&d.drain(), UAC, "486"), [0, 500, 1500, 3500]);
    assert!(!d.t.contains(tid));
}

#[test]
fn retransmitted_invite_gets_the_last_response_again() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKs4");
    let tid = d.create(&inv);
    let (_, req) = d.fork(tid, B1);
    d.drain();
    // Proceeding with our 100: the 100 again.
    assert_eq!(d.recv(&inv), RequestMatch::Retransmission { tid });
    assert_eq!(d.summary(), [(0, UAC.to_string(), "100".to_string())]);
    // After a relayed 180: the 180.
    d.answer(&req, 180);
    d.drain();
    assert_eq!(d.recv(&inv), RequestMatch::Retransmission { tid });
    assert_eq!(d.summary(), [(0, UAC.to_string(), "180".to_string())]);
    // After the final: the final. Nothing goes downstream for any of them.
    d.answer(&req, 486);
    d.drain();
    d.run_until(100);
    assert_eq!(d.recv(&inv), RequestMatch::Retransmission { tid });
    assert_eq!(d.summary(), [(100, UAC.to_string(), "486".to_string())]);
    assert_eq!(d.t.stats().absorbed_requests, 3);
}

#[test]
fn retransmitted_invite_absorbed_in_accepted_rfc6026() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKs5");
    let tid = d.create(&inv);
    let (_, req) = d.fork(tid, B1);
    d.answer(&req, 200);
    d.drain();
    // RFC 6026 §8.7: INVITE retransmissions in Accepted are absorbed (the UAS
    // retransmits its 2xx itself, end to end).
    assert_eq!(d.recv(&inv), RequestMatch::Retransmission { tid });
    assert!(d.drain().is_empty());
    // Timer L then ends the server side.
    d.run_until(32_000);
    assert!(!d.t.contains(tid));
    assert_eq!(d.recv(&inv), RequestMatch::New);
}

#[test]
fn non_invite_server_trying_proceeding_completed_timer_j() {
    let mut d = Driver::new();
    let msg = request("MESSAGE", "z9hG4bKs6", 1);
    let tid = d.create(&msg);
    let (_, req) = d.fork(tid, B1);
    d.drain();
    // Trying: "any retransmissions of the request received while in the
    // Trying state MUST be discarded" — and not forwarded either.
    assert_eq!(d.recv(&msg), RequestMatch::Retransmission { tid });
    assert!(d.drain().is_empty());
    d.answer(&req, 183);
    d.drain();
    assert_eq!(d.recv(&msg), RequestMatch::Retransmission { tid });
    assert_eq!(d.summary(), [(0, UAC.to_string(), "183".to_string())]);
    d.run_until(1000);
    d.answer(&req, 202);
    d.drain();
    assert_eq!(d.recv(&msg), RequestMatch::Retransmission { tid });
    assert_eq!(d.summary(), [(1000, UAC.to_string(), "202".to_string())]);
    // Timer J = 64·T1 after the final.
    d.run_until(32_999);
    assert!(d.t.contains(tid));
    d.run_until(33_000);
    assert!(!d.t.contains(tid));
    assert_eq!(d.recv(&msg), RequestMatch::New);
}

#[test]
fn non_invite_over_tcp_timer_j_is_zero() {
    let mut d = Driver::new();
    let msg = request("MESSAGE", "z9hG4bKs7", 1);
    let tid = d.create_over(&msg, Proto::Tcp);
    let (_, req) = d.fork_over(tid, B1, Proto::Tcp).unwrap();
    d.answer(&req, 200);
    // J = 0 and K = 0 on reliable transports: the cell is gone at once.
    assert!(!d.t.contains(tid));
    assert!(d.t.is_empty());
}

#[test]
fn local_provisional_and_final_replies() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKs8");
    let tid = d.create(&inv);
    d.reply_local(tid, 183).unwrap();
    d.reply_local(tid, 486).unwrap();
    // A second final is refused (§17.2.1), and bad codes too.
    assert_eq!(d.reply_local(tid, 404), Err(TmError::FinalSent));
    assert_eq!(d.reply_local(tid, 200), Err(TmError::FinalSent));
    assert_eq!(d.reply_local(tid, 180), Err(TmError::FinalSent));
    assert_eq!(d.reply_local(tid, 99), Err(TmError::BadCode));
    let log = d.drain();
    let what: Vec<_> = log.iter().map(Sent::what).collect();
    assert_eq!(what, ["100", "183", "486"]);
    // 183 and 486 carry the same To tag.
    let tag = |s: &Sent| {
        let m = s.msg();
        let to = m.header_value(crate::sip::HeaderName::To).unwrap().to_vec();
        to
    };
    assert_eq!(tag(&log[1]), tag(&log[2]));
    assert_eq!(d.t.status(tid), Some(486));
    assert_eq!(d.t.stats().local_replies, 3);
}
