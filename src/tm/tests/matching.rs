//! Matching: replies by our branch (garbage, forged, stale, other core,
//! wrong CSeq method), requests by RFC 3261 key and by the RFC 2543 fallback,
//! and no panic on hostile input.

use super::*;

/// A reply to `branch_req` whose top Via branch is replaced by `branch`.
fn with_branch(branch_req: &Bytes, code: u16, branch: &str) -> Bytes {
    let text =
        String::from_utf8_lossy(&Driver::response(branch_req, code, Some("t"), "")).into_owned();
    let start = text.find(";branch=").unwrap() + 8;
    let end = start + text[start..].find(['\r', ';', ',']).unwrap();
    Bytes::from(format!("{}{}{}", &text[..start], branch, &text[end..]))
}

#[test]
fn replies_with_garbage_forged_or_stale_branches_match_nothing() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKm1"));
    let (_, req) = d.fork(tid, B1);
    let good = String::from_utf8_lossy(d.t.branch_param(tid, 0).as_bytes()).into_owned();
    for bad in [
        "z9hG4bKm1".to_string(),
        "z9hG4bK".to_string(),
        "nocookie".to_string(),
        format!("{good}0"),
        good[..good.len() - 1].to_string(),
        // The check digits changed: forged.
        format!(
            "{}{}",
            &good[..good.len() - 1],
            if good.ends_with('0') { '1' } else { '0' }
        ),
        // Another branch index of the same transaction (not created).
        String::from_utf8_lossy(d.t.branch_param(tid, 5).as_bytes()).into_owned(),
    ] {
        assert_eq!(
            d.recv_reply(with_branch(&req, 180, &bad)),
            ReplyAction::NoMatch,
            "{bad}"
        );
    }
    // Another core's branch is handed over.
    let other = format!("z9hG4bKR0007{}", &good[12..]);
    assert_eq!(
        d.recv_reply(with_branch(&req, 180, &other)),
        ReplyAction::OtherCore(7)
    );
    // Nothing was relayed for any of them.
    assert!(d
        .drain()
        .iter()
        .all(|s| s.what() == "100" || s.what() == "INVITE"));
    // Stale: the transaction ended, its slot was reused by a new one.
    d.t.release(tid);
    let tid2 = d.create(&invite("z9hG4bKm2"));
    d.fork(tid2, B1);
    assert_eq!(
        d.recv_reply(Driver::response(&req, 200, Some("t"), "")),
        ReplyAction::NoMatch
    );
}

#[test]
fn reply_with_another_cseq_method_matches_nothing() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKm3"));
    let (_, req) = d.fork(tid, B1);
    let text = String::from_utf8_lossy(&Driver::response(&req, 200, Some("t"), ""))
        .replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    assert_eq!(d.recv_reply(Bytes::from(text)), ReplyAction::NoMatch);
    // A request given as a reply is no match either.
    let msg = Message::parse(req.clone()).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        d.t.on_reply(&msg, None, d.instant(), &mut out),
        ReplyAction::NoMatch
    );
}

#[test]
fn rfc2543_requests_match_on_the_fallback_key() {
    let mut d = Driver::new();
    // No magic cookie: RFC 2543 matching (§17.2.3, last paragraphs).
    let inv = invite("old2543");
    let tid = d.create(&inv);
    d.drain();
    assert_eq!(d.recv(&inv), RequestMatch::Retransmission { tid });
    // Another CSeq is another transaction.
    assert_eq!(
        d.recv(&inv.replace("CSeq: 1 INVITE", "CSeq: 2 INVITE")),
        RequestMatch::New
    );
    // Another Request-URI too.
    assert_eq!(
        d.recv(&inv.replace("INVITE sip:bob@", "INVITE sip:carol@")),
        RequestMatch::New
    );
    // CANCEL finds its INVITE.
    assert_eq!(
        d.recv(&cancel_for(&inv, None)),
        RequestMatch::Cancel { invite: tid }
    );
    d.reply_local(tid, 486).unwrap();
    let sent = d.drain().pop().unwrap();
    let m = sent.msg();
    let to = m.header_value(crate::sip::HeaderName::To).unwrap();
    let tag = String::from_utf8_lossy(
        crate::sip::nameaddr::NameAddr::parse(to)
            .unwrap()
            .tag()
            .unwrap(),
    )
    .into_owned();
    // The ACK must carry the To tag of our response.
    assert_eq!(
        d.recv(&ack_for(&inv, "someone-else")),
        RequestMatch::AckPassOn { tid: None }
    );
    assert_eq!(
        d.recv(&ack_for(&inv, &tag)),
        RequestMatch::AckAbsorbed { tid }
    );
}

#[test]
fn rfc3261_key_is_branch_sent_by_and_method() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKk1");
    let tid = d.create(&inv);
    // Same branch, other method: another transaction (§17.2.3 rule 3).
    assert_eq!(
        d.recv(&request("OPTIONS", "z9hG4bKk1", 1)),
        RequestMatch::New
    );
    // Same branch, other sent-by: another transaction.
    assert_eq!(
        d.recv(&inv.replace("192.0.2.10:5060;branch", "192.0.2.10:5070;branch")),
        RequestMatch::New
    );
    // Sent-by compares without regard to case.
    let inv2 = invite("z9hG4bKk2").replace("192.0.2.10:5060;", "Host.Example:5060;");
    let tid2 = d.create(&inv2);
    assert_eq!(
        d.recv(&inv2.replace("Host.Example", "host.example")),
        RequestMatch::Retransmission { tid: tid2 }
    );
    assert_ne!(tid, tid2);
    // create_server on a retransmission is refused.
    let msg = Message::parse(Bytes::from(inv.clone())).unwrap();
    let now = d.instant();
    let mut out = Vec::new();
    assert_eq!(
        d.t.create_server(&msg, &Driver::source(Proto::Udp), (), now, &mut out),
        Err(TmError::Exists(tid))
    );
    // An ACK never creates a transaction.
    let ack = Message::parse(Bytes::from(ack_for(&inv, "x"))).unwrap();
    assert_eq!(
        d.t.create_server(&ack, &Driver::source(Proto::Udp), (), now, &mut out),
        Err(TmError::NotTransactional)
    );
}

/// A small deterministic generator (no clock, no OS randomness in tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[test]
fn mutated_messages_never_panic() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKfz");
    let tid = d.create(&inv);
    let (_, r1) = d.fork(tid, B1);
    let seeds: Vec<Vec<u8>> = vec![
        inv.clone().into_bytes(),
        cancel_for(&inv, None).into_bytes(),
        ack_for(&inv, "t").into_bytes(),
        invite("nocookie").into_bytes(),
        Driver::response(&r1, 180, Some("a"), "").to_vec(),
        Driver::response(&r1, 486, Some("a"), "").to_vec(),
        Driver::response(&r1, 200, Some("a"), "").to_vec(),
        cancel_for(&String::from_utf8_lossy(&r1), None).into_bytes(),
    ];
    let mut rng = Lcg(42);
    let mut parsed = 0;
    for round in 0..20_000 {
        let seed = &seeds[round % seeds.len()];
        let mut m = seed.clone();
        for _ in 0..1 + rng.next() % 4 {
            if m.is_empty() {
                break;
            }
            let at = (rng.next() as usize) % m.len().max(1);
            match rng.next() % 4 {
                0 => m[at] = rng.next() as u8,
                1 => {
                    m.remove(at);
                }
                2 => m.insert(at, b"z9hG4bK;,:<>\"\r\n0R"[rng.next() as usize % 17]),
                _ => m.truncate(at),
            }
        }
        let Ok(msg) = Message::parse(Bytes::from(m)) else {
            continue;
        };
        parsed += 1;
        let now = d.instant();
        let mut out = Vec::new();
        if msg.is_request() {
            match d.t.on_request(&msg, now, &mut out) {
                RequestMatch::New => {
                    let _ =
                        d.t.create_server(&msg, &Driver::source(Proto::Udp), (), now, &mut out);
                }
                RequestMatch::Cancel { invite } => {
                    let _ =
                        d.t.cancel(invite, &msg, &Driver::source(Proto::Udp), now, &mut out);
                }
                _ => {}
            }
        } else {
            let _ = d.t.on_reply(&msg, None, now, &mut out);
        }
        if round % 1000 == 0 {
            d.advance(3000);
        }
    }
    assert!(
        parsed > 1000,
        "the mutations should leave many parsable messages"
    );
    d.advance(400_000);
    assert!(d.t.is_empty(), "everything expires: {:?}", d.t.stats());
}

#[test]
fn a_reply_matched_before_its_transaction_ended_matches_nothing_after() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKmatched"));
    let (_, req) = d.fork(tid, B1);
    let ringing = Message::parse(Driver::response(&req, 180, Some("t"), "")).unwrap();
    let matched = d.t.match_reply(&ringing);
    assert!(matches!(matched, ReplyMatch::Branch { tid: t, branch: 0, .. } if t == tid));
    // Matched once, handled once: the same as on_reply.
    let now = d.instant();
    let mut out = Vec::new();
    let action = d.t.on_matched_reply(matched, &ringing, None, now, &mut out);
    assert!(
        matches!(action, ReplyAction::Relayed { code: 180, .. }),
        "{action:?}"
    );
    assert_eq!(out.len(), 1, "180 relayed upstream");
    // t_release between the match and the handling (in onreply_route).
    let ok = Message::parse(Driver::response(&req, 200, Some("t"), "")).unwrap();
    let matched = d.t.match_reply(&ok);
    assert!(d.t.release(tid));
    out.clear();
    let action = d.t.on_matched_reply(matched, &ok, None, now, &mut out);
    assert_eq!(action, ReplyAction::NoMatch);
    assert!(out.is_empty());
}

/// `create_server` of the message `on_request` just found new reuses its key
/// (the engine's match, then `t_relay`); another message never does.
#[test]
fn create_server_reuses_the_key_of_the_message_just_matched() {
    let mut d = Driver::new();
    let now = d.instant();
    let src = Driver::source(Proto::Udp);
    let text = invite("z9hG4bKm1").replace("192.0.2.10:5060;", "Host.Example:5060;");
    let msg = Message::parse(Bytes::from(text.clone())).unwrap();
    let mut out = Vec::new();
    assert_eq!(d.t.on_request(&msg, now, &mut out), RequestMatch::New);
    assert!(d.t.key_memo_of(&msg));
    // A copy of the same bytes in another buffer is another message.
    let copy = Message::parse(Bytes::from(text.clone())).unwrap();
    assert!(!d.t.key_memo_of(&copy));
    let tid = d.t.create_server(&msg, &src, (), now, &mut out).unwrap();
    assert!(!d.t.key_memo_of(&msg));
    assert_eq!(
        d.recv(&text.replace("Host.Example", "host.example")),
        RequestMatch::Retransmission { tid }
    );
    // A memo of message A, then create_server of B: B's own key.
    let a = Message::parse(Bytes::from(invite("z9hG4bKm2"))).unwrap();
    let b = Message::parse(Bytes::from(request("OPTIONS", "z9hG4bKm3", 2))).unwrap();
    assert_eq!(d.t.on_request(&a, now, &mut out), RequestMatch::New);
    let tid_b = d.t.create_server(&b, &src, (), now, &mut out).unwrap();
    assert_ne!(tid_b, tid);
    assert_eq!(
        d.recv(&request("OPTIONS", "z9hG4bKm3", 2)),
        RequestMatch::Retransmission { tid: tid_b }
    );
    assert_eq!(d.recv(&invite("z9hG4bKm2")), RequestMatch::New);
    // A CANCEL's own key is kept too; RFC 2543 keys are not.
    let cancel = Message::parse(Bytes::from(cancel_for(&invite("z9hG4bKm4"), None))).unwrap();
    assert_eq!(
        d.t.on_request(&cancel, now, &mut out),
        RequestMatch::CancelUnmatched
    );
    assert!(d.t.key_memo_of(&cancel));
    let old = Message::parse(Bytes::from(invite("rfc2543-m5"))).unwrap();
    assert_eq!(d.t.on_request(&old, now, &mut out), RequestMatch::New);
    assert!(!d.t.key_memo_of(&old));
    let tid_old = d.t.create_server(&old, &src, (), now, &mut out).unwrap();
    assert_eq!(
        d.recv(&invite("rfc2543-m5")),
        RequestMatch::Retransmission { tid: tid_old }
    );
}
