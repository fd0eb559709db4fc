//! The dialog table on virtual time (unix ms handed in), and the parameters.

use super::table::Initial;
use super::*;
use crate::script::registry::ParamValue;

const T0: u64 = 1_700_000_000_000;

fn params(extra: &[(&str, ParamValue)]) -> DlgParams {
    let mut mp = ModParams::default();
    mp.push(
        "dialog",
        "profiles_with_value",
        ParamValue::Str("caller; callee".into()),
    );
    mp.push(
        "dialog",
        "profiles_no_value",
        ParamValue::Str("inbound".into()),
    );
    for (k, v) in extra {
        mp.push("dialog", k, v.clone());
    }
    DlgParams::from_modparams(&mp).expect("valid parameters")
}

fn init(callid: &'static str) -> Initial<'static> {
    Initial {
        callid: callid.as_bytes(),
        from_uri: b"sip:alice@example.org",
        from_tag: b"ft1",
        to_uri: b"sip:bob@example.com",
        cseq: 10,
    }
}

#[test]
fn cookie_is_reverse_hex_and_reads_back() {
    let id = DlgId {
        entry: 0xabc,
        id: 0x12,
    };
    assert_eq!(id.cookie(), b"cba.21");
    assert_eq!(DlgId::parse_cookie(b"cba.21"), Some(id));
    assert_eq!(DlgId::parse_cookie(b"0.0"), Some(DlgId { entry: 0, id: 0 }));
    for bad in [&b""[..], b"abc", b".1", b"1.", b"x.1", b"123456789.1"] {
        assert_eq!(DlgId::parse_cookie(bad), None, "{bad:?}");
    }
}

#[test]
fn defaults_are_kamailios() {
    let p = DlgParams::default();
    assert_eq!(&p.rr_param[..], b"did");
    assert_eq!(p.default_timeout, 43200);
    assert_eq!(p.match_mode, 0, "Kamailio's default is DID_ONLY");
    assert_eq!(p.dlg_flag, None);
    assert!(p.detect_spirals);
    assert_eq!(p.hash_size, 4096);
}

#[test]
fn bad_parameters_are_refused() {
    for (k, v) in [
        ("dlg_match_mode", ParamValue::Int(3)),
        ("dlg_flag", ParamValue::Int(32)),
        ("hash_size", ParamValue::Int(1000)),
        ("rr_param", ParamValue::Str("a b".into())),
        ("profiles_no_value", ParamValue::Str("caller".into())),
    ] {
        let mut mp = ModParams::default();
        mp.push(
            "dialog",
            "profiles_with_value",
            ParamValue::Str("caller".into()),
        );
        mp.push("dialog", k, v);
        assert!(DlgParams::from_modparams(&mp).is_err(), "{k}");
    }
}

#[test]
fn database_parameters_are_warned_about() {
    let mut mp = ModParams::default();
    mp.push("dialog", "db_mode", ParamValue::Int(1));
    mp.push("dialog", "db_url", ParamValue::Str("mysql://x".into()));
    let w = unsupported_params(&mp);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("db_mode 1"), "{w:?}");
    assert!(unsupported_params(&ModParams::default()).is_empty());
}

#[test]
fn states_follow_the_call() {
    let d = Dialogs::new(params(&[]));
    let (id, new) = d.create(&init("c1"), 100, T0);
    assert!(new);
    assert_eq!(d.get(id).unwrap().state, State::Unconfirmed);
    // A spiral of the same INVITE finds the same dialog.
    assert_eq!(d.create(&init("c1"), 100, T0), (id, false));

    assert_eq!(d.match_answer(b"c1", b"ft1", 10), Some(id));
    assert_eq!(
        d.match_answer(b"c1", b"ft1", 11),
        None,
        "not the initial CSeq"
    );
    d.on_provisional(id, b"tt1");
    assert_eq!(d.get(id).unwrap().state, State::Early);

    assert_eq!(
        d.on_final(id, 200, b"tt1", T0 + 5_000),
        Some(Transition::Started)
    );
    let dlg = d.get(id).unwrap();
    assert_eq!(dlg.state, State::ConfirmedNa);
    assert_eq!(dlg.start_ts, (T0 + 5_000) / 1000);
    assert_eq!(&*dlg.to_tag, b"tt1");
    // A second 2xx (another branch) changes nothing.
    assert_eq!(d.on_final(id, 200, b"other", T0 + 6_000), None);

    assert_eq!(d.on_request(id, b"ACK", T0 + 6_000), None);
    assert_eq!(d.get(id).unwrap().state, State::Confirmed);
    assert_eq!(
        d.on_request(id, b"BYE", T0 + 9_000),
        Some(Transition::Ended)
    );
    assert_eq!(d.get(id).unwrap().state, State::Deleted);
    assert_eq!(d.on_request(id, b"BYE", T0 + 9_100), None, "ended once");
    assert_eq!(d.processed.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn negative_final_fails_the_dialog_and_empties_its_profiles() {
    let d = Dialogs::new(params(&[]));
    let caller = d.profile("caller").unwrap();
    let inbound = d.profile("inbound").unwrap();
    let (id, _) = d.create(&init("c2"), 100, T0);
    assert!(d.set_profile(id, caller, Some(b"alice")));
    assert!(
        d.set_profile(id, caller, Some(b"alice")),
        "again: no change"
    );
    assert!(d.set_profile(id, inbound, None));
    assert_eq!(d.profile_size(caller, Some(b"alice")), 1);
    assert_eq!(d.profile_size(caller, None), 1);
    assert_eq!(d.profile_size(inbound, None), 1);
    assert!(d.in_profile(id, caller, None));
    assert!(d.in_profile(id, caller, Some(b"alice")));
    assert!(!d.in_profile(id, caller, Some(b"bob")));

    assert_eq!(
        d.on_final(id, 486, b"tt", T0 + 1000),
        Some(Transition::Failed)
    );
    assert_eq!(d.get(id).unwrap().state, State::Deleted);
    assert_eq!(d.profile_size(caller, Some(b"alice")), 0);
    assert_eq!(d.profile_size(caller, None), 0);
    assert_eq!(d.profile_size(inbound, None), 0);
    assert!(
        !d.set_profile(id, caller, Some(b"alice")),
        "ended: no profile"
    );
}

#[test]
fn unset_profile_takes_one_entry_out() {
    let d = Dialogs::new(params(&[]));
    let caller = d.profile("caller").unwrap();
    let (a, _) = d.create(&init("c3"), 100, T0);
    let (b, _) = d.create(&init("c4"), 100, T0);
    d.set_profile(a, caller, Some(b"alice"));
    d.set_profile(b, caller, Some(b"alice"));
    d.set_profile(b, caller, Some(b"carol"));
    assert_eq!(d.profile_size(caller, Some(b"alice")), 2);
    assert_eq!(d.profile_size(caller, None), 3);
    assert!(d.unset_profile(b, caller, Some(b"alice")));
    assert!(!d.unset_profile(b, caller, Some(b"alice")));
    assert_eq!(d.profile_size(caller, Some(b"alice")), 1);
    assert_eq!(d.profile_size(caller, Some(b"carol")), 1);
    assert_eq!(d.profile_size(caller, None), 2);
}

#[test]
fn confirmed_dialog_times_out_and_later_leaves_the_table() {
    let d = Dialogs::new(params(&[]));
    let inbound = d.profile("inbound").unwrap();
    let (id, _) = d.create(&init("c5"), 30, T0);
    d.set_profile(id, inbound, None);
    d.on_final(id, 200, b"tt", T0);
    d.on_request(id, b"ACK", T0 + 100);
    // An in-dialog request starts the timeout again.
    assert!(d.expire(T0 + 20_000).is_empty());
    d.on_request(id, b"INFO", T0 + 20_000);
    assert!(d.expire(T0 + 49_000).is_empty());
    let ended = d.expire(T0 + 50_000);
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].1, Transition::Ended);
    assert_eq!(d.get(id).unwrap().state, State::Deleted);
    assert_eq!(d.profile_size(inbound, None), 0);
    // Kept a little for late messages, then gone.
    assert!(d.expire(T0 + 55_000).is_empty());
    assert!(d.get(id).is_some());
    d.expire(T0 + 61_000);
    assert!(d.get(id).is_none());
}

#[test]
fn set_timeout_moves_the_deadline_of_a_confirmed_dialog() {
    let d = Dialogs::new(params(&[]));
    let (id, _) = d.create(&init("c6"), 43200, T0);
    d.on_final(id, 200, b"tt", T0);
    assert!(d.set_timeout(id, 5, T0 + 1000));
    assert!(d.expire(T0 + 5_000).is_empty());
    assert_eq!(d.expire(T0 + 6_000).len(), 1);
}

#[test]
fn unanswered_dialog_fails_after_early_timeout() {
    let d = Dialogs::new(params(&[("early_timeout", ParamValue::Int(60))]));
    let (id, _) = d.create(&init("c7"), 43200, T0);
    d.on_provisional(id, b"tt");
    assert!(d.expire(T0 + 59_000).is_empty());
    let gone = d.expire(T0 + 60_000);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].1, Transition::Failed);
}

#[test]
fn the_cores_share_one_timer_run_per_interval() {
    let d = Dialogs::new(params(&[]));
    let (id, _) = d.create(&init("c8"), 1, T0);
    d.on_final(id, 200, b"tt", T0);
    assert_eq!(d.on_timer(T0 + 1_000, 1000).len(), 1, "first core runs it");
    let (id2, _) = d.create(&init("c9"), 1, T0);
    d.on_final(id2, 200, b"tt", T0);
    assert!(d.on_timer(T0 + 1_500, 1000).is_empty(), "same interval");
    assert_eq!(d.on_timer(T0 + 2_000, 1000).len(), 1);
}

#[test]
fn in_dialog_requests_match_by_cookie_or_tags_both_ways() {
    let d = Dialogs::new(params(&[]));
    let (id, _) = d.create(&init("c10"), 100, T0);
    d.on_final(id, 200, b"tt", T0);
    let cookie = id.cookie();
    assert_eq!(
        d.match_cookie(&cookie, b"c10", b"ft1", b"tt"),
        Some((id, Direction::Downstream))
    );
    assert_eq!(
        d.match_cookie(&cookie, b"c10", b"tt", b"ft1"),
        Some((id, Direction::Upstream))
    );
    assert_eq!(
        d.match_cookie(&cookie, b"c10", b"ft1", b"zz"),
        None,
        "tags checked"
    );
    assert_eq!(d.match_cookie(&cookie, b"other", b"ft1", b"tt"), None);
    assert_eq!(
        d.match_tags(b"c10", b"tt", b"ft1"),
        Some((id, Direction::Upstream))
    );
    assert_eq!(d.match_tags(b"c10", b"ft1", b"nope"), None);
}

#[test]
fn a_2xx_without_ack_ends_after_noack_timeout() {
    let d = Dialogs::new(params(&[("noack_timeout", ParamValue::Int(20))]));
    let (id, _) = d.create(&init("c11"), 100, T0);
    d.on_final(id, 200, b"tt", T0);
    assert!(d.expire(T0 + 19_000).is_empty());
    assert_eq!(d.expire(T0 + 20_000)[0].1, Transition::Ended);
    // With its ACK, the dialog's own timeout from the 2xx on.
    let (id, _) = d.create(&init("c12"), 100, T0);
    d.on_final(id, 200, b"tt", T0);
    d.on_request(id, b"ACK", T0 + 1000);
    assert!(d.expire(T0 + 99_000).is_empty());
    assert_eq!(d.expire(T0 + 100_000).len(), 1);
}

#[test]
fn timeout_noreset_keeps_the_deadline_on_in_dialog_requests() {
    let d = Dialogs::new(params(&[("timeout_noreset", ParamValue::Int(1))]));
    let (id, _) = d.create(&init("c13"), 30, T0);
    d.on_final(id, 200, b"tt", T0);
    d.on_request(id, b"ACK", T0);
    d.on_request(id, b"INFO", T0 + 20_000);
    assert_eq!(d.expire(T0 + 30_000).len(), 1);
}

#[test]
fn rpc_lists_dialogs_and_counts() {
    let d = Dialogs::new(params(&[]));
    let caller = d.profile("caller").unwrap();
    let (a, _) = d.create(&init("r1"), 100, T0);
    let (b, _) = d.create(&init("r2"), 100, T0);
    d.set_profile(a, caller, Some(b"alice"));
    d.on_final(a, 200, b"tt", T0);
    d.on_request(a, b"ACK", T0);
    d.on_provisional(b, b"t2");
    d.with(a, |x| {
        x.vars.push((b"k".to_vec().into(), b"v".to_vec().into()))
    });

    let list = rpc::list(&d);
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 2);
    let first = items.iter().find(|i| i["call-id"] == "r1").unwrap();
    assert_eq!(first["state"], 4);
    assert_eq!(first["callee"]["tag"], "tt");
    assert_eq!(first["profiles"][0]["caller"], "alice");
    assert_eq!(first["variables"][0]["k"], "v");

    let size = rpc::profile_get_size(&d, "caller", Some("alice")).unwrap();
    assert_eq!(size["count"], 1);
    assert_eq!(
        rpc::profile_get_size(&d, "caller", Some("bob")).unwrap()["count"],
        0
    );
    assert!(rpc::profile_get_size(&d, "nope", None).is_err());

    let s = rpc::stats_active(&d);
    assert_eq!(
        (s["connecting"].as_u64(), s["ongoing"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s["all"], 2);
    d.on_request(a, b"BYE", T0);
    assert_eq!(rpc::stats_active(&d)["all"], 1, "ended ones do not count");
}

#[test]
fn the_request_made_up_for_a_timeout_parses_and_names_the_dialog() {
    let d = Dialogs::new(params(&[]));
    let (id, _) = d.create(&init("c14"), 1, T0);
    d.on_final(id, 200, b"tt", T0);
    let dlg = d.get(id).unwrap();
    let msg = crate::sip::Message::parse(timeout_request(&dlg)).expect("parses");
    let ids = ids(&msg).expect("identifiers");
    assert_eq!(msg.method_bytes(), b"BYE");
    assert_eq!(
        (ids.callid, ids.from_tag, ids.to_tag),
        (&b"c14"[..], &b"ft1"[..], &b"tt"[..])
    );
    assert_eq!(ids.cseq, 11);
}
