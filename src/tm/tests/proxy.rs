//! The proxy cell (RFC 3261 §16.7): relaying, forking, best response
//! selection, 6xx, 503 → 500, challenge aggregation, the failure hook.

use super::client_timers::cancel_branch_request;
use super::*;
use crate::tm::cell::priority;

#[test]
fn provisional_then_2xx_goes_upstream_without_our_via() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKp1");
    let tid = d.create(&inv);
    let (_, req) = d.fork(tid, B1);
    d.answer(&req, 180);
    d.run_until(3000);
    assert_eq!(
        d.answer(&req, 200),
        ReplyAction::Relayed {
            tid,
            branch: 0,
            code: 200
        }
    );
    let log = d.drain();
    let ups: Vec<_> = log.iter().filter(|s| s.dst == addr(UAC)).collect();
    assert_eq!(
        ups.iter().map(|s| s.what()).collect::<Vec<_>>(),
        ["100", "180", "200"]
    );
    for s in &ups[1..] {
        let t = s.text();
        assert!(!t.contains(PROXY), "our Via must be gone: {t}");
        assert!(t.contains("tag=uas-"), "{t}");
    }
    // The ACK for the 2xx is end-to-end (new branch): not a transaction match.
    let ack = ack_for(&inv, "uas-200").replace("z9hG4bKp1", "z9hG4bKp1-ack");
    assert_eq!(d.recv(&ack), RequestMatch::AckPassOn { tid: None });
    // An ACK reusing the INVITE's branch (a 2543-ish UAC) matches the Accepted
    // transaction and is passed on as well.
    assert_eq!(
        d.recv(&ack_for(&inv, "uas-200")),
        RequestMatch::AckPassOn { tid: Some(tid) }
    );
}

#[test]
fn forking_first_2xx_relayed_and_other_branches_canceled() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKp2"));
    let (_, r1) = d.fork(tid, B1);
    let (_, r2) = d.fork(tid, B2);
    let (_, r3) = d.fork(tid, B3);
    d.answer(&r1, 180);
    d.answer(&r2, 183);
    d.run_until(200);
    d.drain();
    assert_eq!(
        d.answer(&r1, 200),
        ReplyAction::Relayed {
            tid,
            branch: 0,
            code: 200
        }
    );
    let log = d.drain();
    // §16.7 step 10: CANCEL the pending branches — B2 at once (it had a 1xx),
    // B3 only once it sends a provisional (§9.1).
    assert_eq!(times(&log, UAC, "200"), [200]);
    assert_eq!(times(&log, B2, "CANCEL"), [200]);
    assert!(times(&log, B3, "CANCEL").is_empty());
    let cancel = log.iter().find(|s| s.what() == "CANCEL").unwrap().text();
    assert!(
        cancel.contains("Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n"),
        "{cancel}"
    );
    assert!(cancel.contains("CSeq: 1 CANCEL\r\n"));
    d.run_until(300);
    d.answer(&r3, 180);
    assert_eq!(times(&d.drain(), B3, "CANCEL"), [300]);
    // The canceled branches answer 487: ACKed, absorbed.
    assert!(matches!(d.answer(&r2, 487), ReplyAction::Absorbed { .. }));
    assert!(matches!(d.answer(&r3, 487), ReplyAction::Absorbed { .. }));
    let log = d.drain();
    assert_eq!(times(&log, B2, "ACK"), [300]);
    assert_eq!(times(&log, B3, "ACK"), [300]);
    assert!(log.iter().all(|s| s.dst != addr(UAC)));
    // Replies to our CANCELs are absorbed.
    let c200 = Driver::response(&Bytes::from(cancel_branch_request(&r2)), 200, Some("c"), "");
    assert!(matches!(d.recv_reply(c200), ReplyAction::Absorbed { .. }));
}

#[test]
fn forking_every_2xx_is_relayed() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKp3"));
    let (_, r1) = d.fork(tid, B1);
    let (_, r2) = d.fork(tid, B2);
    d.answer(&r1, 180);
    d.answer(&r2, 180);
    assert!(matches!(
        d.answer(&r1, 200),
        ReplyAction::Relayed { code: 200, .. }
    ));
    // B2 answered 200 before our CANCEL arrived: "Any 2xx response to an
    // INVITE request" is forwarded after a final was sent (§16.7 step 5).
    assert_eq!(
        d.answer(&r2, 200),
        ReplyAction::Relayed {
            tid,
            branch: 1,
            code: 200
        }
    );
    let ups = times(&d.drain(), UAC, "200");
    assert_eq!(ups.len(), 2);
}

#[test]
fn six_xx_cancels_the_rest_and_wins() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKp4"));
    let (_, r1) = d.fork(tid, B1);
    let (_, r2) = d.fork(tid, B2);
    d.answer(&r1, 180);
    d.answer(&r2, 180);
    d.drain();
    assert_eq!(
        d.answer(&r1, 603),
        ReplyAction::Stored {
            tid,
            branch: 0,
            code: 603
        }
    );
    let log = d.drain();
    assert_eq!(times(&log, B2, "CANCEL"), [0]);
    assert!(log
        .iter()
        .find(|s| s.what() == "CANCEL")
        .unwrap()
        .text()
        .contains("Reason: SIP;cause=603\r\n"));
    // B2's 487 completes the context: the 6xx beats it (§16.7 step 6: "It MUST
    // choose from the 6xx class responses if any exist").
    assert_eq!(
        d.answer(&r2, 487),
        ReplyAction::FinalSent { tid, code: 603 }
    );
    assert_eq!(times(&d.drain(), UAC, "603"), [0]);
}

#[test]
fn six_xx_blocks_new_branches_in_the_failure_route() {
    for (disable, expected) in [(false, Err(TmError::Blocked6xx)), (true, Ok(1))] {
        let mut d = Driver::with(TmConfig {
            disable_6xx_block: disable,
            ..TmConfig::default()
        });
        let tid = d.create(&invite("z9hG4bKp6b"));
        d.t.set_failure_hook(tid, true);
        let (_, r1) = d.fork(tid, B1);
        assert_eq!(
            d.answer(&r1, 600),
            ReplyAction::NeedsFailureRoute { tid, code: 600 }
        );
        let added = d.fork_over(tid, B2, Proto::Udp).map(|(i, _)| i);
        assert_eq!(added, expected, "disable_6xx_block={disable}");
    }
}

#[test]
fn best_response_priorities() {
    // Kamailio's table (KAMAILIO-REFERENCE §3.5): lower wins.
    let order = [
        600, 603, 300, 302, 401, 407, 415, 420, 484, 400, 404, 408, 486, 500, 503,
    ];
    for w in order.windows(2) {
        assert!(priority(w[0]) < priority(w[1]), "{} before {}", w[0], w[1]);
    }
}

/// Forks to one branch per code, answers each, returns what went upstream.
fn race(codes: &[u16]) -> (ReplyAction, Vec<Sent>) {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKsel"));
    let reqs: Vec<Bytes> = [B1, B2, B3, B1, B2][..codes.len()]
        .iter()
        .map(|dst| d.fork(tid, dst).1)
        .collect();
    let mut last = ReplyAction::NoMatch;
    for (r, &c) in reqs.iter().zip(codes) {
        last = d.answer(r, c);
    }
    let ups = d
        .drain()
        .into_iter()
        .filter(|s| s.dst == addr(UAC) && s.what() != "100")
        .collect();
    (last, ups)
}

#[test]
fn best_response_selection_table() {
    for (codes, sent) in [
        (&[404, 486][..], 404),
        (&[486, 404], 404),
        (&[486, 401], 401),
        (&[500, 404], 404),
        (&[302, 404], 302),
        (&[404, 302, 500], 302),
        (&[480, 480], 480),
        (&[500, 503, 600], 600),
        (&[484, 404], 484),
        (&[415, 407], 407),
        (&[503], 500),
        (&[503, 502], 502),
    ] {
        let (last, ups) = race(codes);
        let ReplyAction::FinalSent { code, .. } = last else {
            panic!("{codes:?}: {last:?}");
        };
        assert_eq!(code, sent, "{codes:?}");
        assert_eq!(ups.len(), 1, "{codes:?}");
        assert_eq!(ups[0].status(), Some(sent), "{codes:?}");
    }
}

#[test]
fn ties_go_to_the_lower_branch() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKtie"));
    let (_, r1) = d.fork(tid, B1);
    let (_, r2) = d.fork(tid, B2);
    let a = Driver::response(&r2, 486, Some("second"), "");
    let b = Driver::response(&r1, 486, Some("first"), "");
    d.recv_reply(a);
    d.recv_reply(b);
    assert_eq!(d.t.winning(tid), Some((0, 486)));
    let up = d.drain().into_iter().find(|s| s.what() == "486").unwrap();
    assert!(up.text().contains("tag=first"));
}

#[test]
fn only_503_goes_up_as_500_with_its_reason() {
    let (_, ups) = race(&[503]);
    let t = ups[0].text();
    assert!(t.starts_with("SIP/2.0 500 Service Unavailable\r\n"), "{t}");
    // Switched off, the 503 goes up as it is.
    let mut d = Driver::with(TmConfig {
        remap_503_500: false,
        ..TmConfig::default()
    });
    let tid = d.create(&invite("z9hG4bK503"));
    let (_, r) = d.fork(tid, B1);
    assert_eq!(d.answer(&r, 503), ReplyAction::FinalSent { tid, code: 503 });
}

#[test]
fn challenges_of_401_and_407_are_aggregated() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKauth"));
    let (_, r1) = d.fork(tid, B1);
    let (_, r2) = d.fork(tid, B2);
    let (_, r3) = d.fork(tid, B3);
    d.recv_reply(Driver::response(
        &r1,
        407,
        Some("a"),
        "Proxy-Authenticate: Digest realm=\"one\", nonce=\"1\"\r\n",
    ));
    d.recv_reply(Driver::response(
        &r2,
        401,
        Some("b"),
        "WWW-Authenticate: Digest realm=\"two\", nonce=\"2\"\r\n",
    ));
    let last = d.recv_reply(Driver::response(&r3, 404, Some("c"), ""));
    assert_eq!(last, ReplyAction::FinalSent { tid, code: 401 });
    let up = d.drain().into_iter().find(|s| s.what() == "401").unwrap();
    let t = up.text();
    // §16.7 step 7: the other challenges are added "without modification".
    assert!(
        t.contains("WWW-Authenticate: Digest realm=\"two\", nonce=\"2\"\r\n"),
        "{t}"
    );
    assert!(
        t.contains("Proxy-Authenticate: Digest realm=\"one\", nonce=\"1\"\r\n"),
        "{t}"
    );
    assert!(up
        .msg()
        .headers()
        .iter()
        .any(|h| h.id == crate::sip::HeaderName::ContentLength));
}

#[test]
fn failure_hook_serial_forking_new_leg_replaces_old_replies() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKf1");
    let tid = d.create(&inv);
    d.t.set_failure_hook(tid, true);
    let (_, r1) = d.fork(tid, B1);
    // All branches failed: the engine is told to run failure_route; nothing went up.
    assert_eq!(
        d.answer(&r1, 404),
        ReplyAction::NeedsFailureRoute { tid, code: 404 }
    );
    assert!(times(&d.drain(), UAC, "404").is_empty());
    // A retransmitted INVITE meanwhile still gets the 100.
    assert_eq!(d.recv(&inv), RequestMatch::Retransmission { tid });
    d.drain();
    // failure_route: t_relay to a new destination (the hook is not re-armed).
    let (idx, r2) = d.fork(tid, B2);
    assert_eq!(idx, 1);
    assert_eq!(d.failure_done(tid), None, "a branch is pending");
    // failure_reply_mode 3: only the new leg's replies are candidates, so the
    // 486 goes up although 404 would beat it.
    assert_eq!(
        d.answer(&r2, 486),
        ReplyAction::FinalSent { tid, code: 486 }
    );
    assert_eq!(times(&d.drain(), UAC, "486"), [0]);
}

#[test]
fn failure_hook_that_does_nothing_sends_the_best_reply() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKf2"));
    d.t.set_failure_hook(tid, true);
    let (_, r1) = d.fork(tid, B1);
    let (_, r2) = d.fork(tid, B2);
    assert!(matches!(d.answer(&r1, 486), ReplyAction::Stored { .. }));
    assert_eq!(
        d.answer(&r2, 480),
        ReplyAction::NeedsFailureRoute { tid, code: 480 }
    );
    assert_eq!(d.failure_done(tid), Some(480));
    assert_eq!(times(&d.drain(), UAC, "480"), [0]);
    assert_eq!(d.failure_done(tid), None, "only once");
}

#[test]
fn failure_hook_reply_from_the_route_wins() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKf3"));
    d.t.set_failure_hook(tid, true);
    let (_, r1) = d.fork(tid, B1);
    assert_eq!(
        d.answer(&r1, 486),
        ReplyAction::NeedsFailureRoute { tid, code: 486 }
    );
    d.reply_local(tid, 302).unwrap();
    assert_eq!(d.failure_done(tid), None);
    let ups: Vec<_> = d
        .drain()
        .iter()
        .filter(|s| s.dst == addr(UAC))
        .map(Sent::what)
        .collect();
    assert_eq!(ups, ["100", "302"]);
}

#[test]
fn failure_hook_on_timeout_sees_408() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKf4"));
    d.t.set_failure_hook(tid, true);
    d.fork(tid, B1);
    d.run_until(30_000);
    assert_eq!(
        d.events,
        [(30_000, TmEvent::NeedsFailureRoute { tid, code: 408 })]
    );
    assert!(d.t.branch_timed_out(tid, 0));
    // The route forks again; that branch answers; its reply goes up.
    let (_, r2) = d.fork(tid, B2);
    d.failure_done(tid);
    assert_eq!(
        d.answer(&r2, 200),
        ReplyAction::Relayed {
            tid,
            branch: 1,
            code: 200
        }
    );
}

#[test]
fn no_new_branch_after_a_final() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKn1"));
    d.reply_local(tid, 404).unwrap();
    assert_eq!(
        d.fork_over(tid, B1, Proto::Udp).unwrap_err(),
        TmError::FinalSent
    );
}

#[test]
fn max_branches_is_enforced() {
    let mut d = Driver::with(TmConfig {
        max_branches: 2,
        ..TmConfig::default()
    });
    let tid = d.create(&invite("z9hG4bKn2"));
    d.fork(tid, B1);
    d.fork(tid, B2);
    assert_eq!(
        d.fork_over(tid, B3, Proto::Udp).unwrap_err(),
        TmError::TooManyBranches
    );
}

#[test]
fn onreply_edits_apply_to_the_relayed_reply() {
    let mut d = Driver::new();
    let tid = d.create(&invite("z9hG4bKed"));
    let (_, r1) = d.fork(tid, B1);
    let data = Driver::response(&r1, 180, Some("x"), "X-Internal: secret\r\n");
    let msg = Message::parse(data).unwrap();
    let mut edits = crate::sip::Edits::new();
    let idx = msg
        .headers()
        .iter()
        .position(|h| msg.name(h) == b"X-Internal")
        .unwrap();
    edits.remove_header(&msg, idx);
    let now = d.instant();
    let mut out = Vec::new();
    let r = d.t.on_reply(&msg, Some(&edits), now, &mut out);
    assert_eq!(
        r,
        ReplyAction::Relayed {
            tid,
            branch: 0,
            code: 180
        }
    );
    let t = String::from_utf8_lossy(&out[0].data).into_owned();
    assert!(!t.contains("X-Internal"), "{t}");
}

#[test]
fn lifetime_ends_pending_branches() {
    let mut d = Driver::with(TmConfig {
        max_inv_lifetime: Duration::from_secs(50),
        ..TmConfig::default()
    });
    let tid = d.create(&invite("z9hG4bKlt"));
    let (_, r1) = d.fork(tid, B1);
    d.answer(&r1, 180);
    d.run_until(50_000);
    let log = d.drain();
    // max_inv_lifetime: the branch ends like a timeout (CANCEL, 408 upstream).
    assert_eq!(times(&log, B1, "CANCEL")[0], 50_000);
    assert_eq!(times(&log, UAC, "408")[0], 50_000);
    assert!(d.t.is_expired(tid));
    assert_eq!(d.t.branch_timeout(tid, 0), Some(TimerKind::MaxLifetime));
    assert_eq!(
        d.fork_over(tid, B2, Proto::Udp).unwrap_err(),
        TmError::Expired
    );
}

#[test]
fn transaction_without_branches_expires_with_408() {
    let mut d = Driver::new();
    let tid = d.create(&request("OPTIONS", "z9hG4bKlt2", 1));
    d.run_until(32_000);
    assert_eq!(times(&d.drain(), UAC, "408"), [32_000]);
    assert_eq!(d.events, [(32_000, TmEvent::FinalSent { tid, code: 408 })]);
}

/// A request built beforehand with `branch_param` for the next index is
/// added by `add_built_branch` as `add_branch` would (sent, matched, the same
/// refusals).
#[test]
fn a_branch_built_beforehand_is_added_like_add_branch() {
    let mut d = Driver::new();
    let inv = invite("z9hG4bKbb1");
    let tid = d.create(&inv);
    let (_, first) = d.fork(tid, B1);
    let index = u8::try_from(d.t.branch_count(tid)).unwrap();
    assert_eq!(index, 1);
    let param = d.t.branch_param(tid, index);
    let upstream = String::from_utf8_lossy(d.t.request(tid).unwrap()).into_owned();
    let (line, rest) = upstream.split_once("\r\n").unwrap();
    let via = format!(
        "Via: SIP/2.0/UDP {PROXY};branch={}\r\n",
        String::from_utf8_lossy(param.as_bytes())
    );
    let req = Bytes::from(format!("{line}\r\n{via}{rest}"));
    let target = Target {
        dst: addr(B2),
        proto: Proto::Udp,
        socket: Some(0),
        local: None,
        conn: None,
        flags: Default::default(),
    };
    let now = d.instant();
    let mut out = Vec::new();
    assert_eq!(
        d.t.add_built_branch(tid, target, req.clone(), now, &mut out),
        Ok(1)
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data, req);
    assert_eq!(
        d.answer(&req, 180),
        ReplyAction::Relayed {
            tid,
            branch: 1,
            code: 180
        }
    );
    assert_eq!(
        d.answer(&first, 200),
        ReplyAction::Relayed {
            tid,
            branch: 0,
            code: 200
        }
    );
    // A final went upstream: no more branches, either way.
    assert_eq!(
        d.t.add_built_branch(tid, target, req, now, &mut out),
        Err(TmError::FinalSent)
    );
    let gone = Tid {
        slot: tid.slot,
        gen: tid.gen + 1,
    };
    assert_eq!(
        d.t.add_built_branch(gone, target, Bytes::new(), now, &mut out),
        Err(TmError::NoTransaction)
    );
}

/// The relayed reply is the same whether the top Via scan of `match_reply`
/// is reused (same message) or the reply is scanned again (another message
/// in between, or a copy of the bytes): our via-parm goes, the rest stays.
#[test]
fn relaying_reuses_the_top_via_scan_of_the_match_only_for_that_reply() {
    let upstream_of = |d: &mut Driver| -> Vec<String> {
        d.drain()
            .iter()
            .filter(|s| s.dst == addr(UAC))
            .map(|s| s.text())
            .collect()
    };
    let run =
        |reuse: bool| -> Vec<String> {
            let mut d = Driver::new();
            let tid = d.create(&invite("z9hG4bKrv1"));
            let (_, req) = d.fork(tid, B1);
            let _ = upstream_of(&mut d);
            // Both Vias in one header field: only ours (the first via-parm) goes.
            let text = String::from_utf8_lossy(&Driver::response(&req, 180, Some("t1"), ""))
                .replacen("\r\nVia: SIP/2.0/UDP 192", ", SIP/2.0/UDP 192", 1);
            assert!(text.contains(&format!("{PROXY};branch=")), "{text}");
            assert!(text.contains(", SIP/2.0/UDP 192.0.2.10"), "{text}");
            let a = Message::parse(Bytes::from(text.clone())).unwrap();
            let b = Message::parse(Bytes::from(text)).unwrap();
            let now = d.instant();
            let matched = d.t.match_reply(&a);
            let other = Message::parse(Driver::response(&req, 100, None, "")).unwrap();
            if !reuse {
                // Another reply matched in between replaces the memo.
                let _ = d.t.match_reply(&other);
            }
            let msg = if reuse { &a } else { &b };
            let mut out = Vec::new();
            assert_eq!(
                d.t.on_matched_reply(matched, msg, None, now, &mut out),
                ReplyAction::Relayed {
                    tid,
                    branch: 0,
                    code: 180
                }
            );
            d.out.extend(out);
            d.collect();
            upstream_of(&mut d)
        };
    let reused = run(true);
    assert_eq!(reused.len(), 1);
    assert!(!reused[0].contains(PROXY), "{}", reused[0]);
    assert!(
        reused[0].contains("Via: SIP/2.0/UDP 192.0.2.10:5060"),
        "{}",
        reused[0]
    );
    assert_eq!(reused, run(false));
}
