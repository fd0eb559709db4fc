//! dispatcher functions as a script calls them, on virtual time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::list::{parse_list_file, DestLists, INACTIVE, PROBING, TRYING};
use super::select::{ds_hash, uri_hash};
use super::*;
use crate::modules::testutil::{call, env, some_instant, Harness, INVITE};
use crate::script::attrs::XavpValue;
use crate::script::ctx::MsgCtx;
use crate::script::registry::ParamValue;
use crate::script::value::Value;
use crate::sip::HeaderName;
use crate::sip::Message;

/// Equal priorities: the last line comes first, so 10.0.0.1 is index 0.
const LIST: &str = "1 sip:10.0.0.3:5060\n1 sip:10.0.0.2:5060\n1 sip:10.0.0.1:5060\n\
                    2 sip:10.0.1.1:5080;transport=tcp 0 0 weight=10;duid=gw1\n";

fn dispatcher(list: &str, params: &[(&str, i64)]) -> Dispatcher {
    let mut mp = ModParams::default();
    for (k, v) in params {
        mp.push("dispatcher", k, ParamValue::Int(*v));
    }
    let lists = DestLists::from_rows(&parse_list_file(list).unwrap()).unwrap();
    Dispatcher::from_lists(DsParams::from_modparams(&mp).unwrap(), lists)
}

fn harness(d: Dispatcher, msg: &str) -> Harness {
    harness_and(d, msg).0
}

fn harness_and(d: Dispatcher, msg: &str) -> (Harness, Arc<Dispatcher>) {
    let mut h = Harness::new(msg);
    let d = Arc::new(d);
    h.env.services.insert(d.clone());
    (h, d)
}

fn select(h: &mut Harness, args: &[&str]) -> (i32, Option<String>) {
    let mut ctx = h.ctx();
    let rc = call(
        &mut ctx,
        &MODULE,
        "ds_select_dst",
        args,
        &ModParams::default(),
    );
    (
        rc,
        ctx.dst_uri
            .as_ref()
            .map(|u| String::from_utf8_lossy(u).into_owned()),
    )
}

fn nth(i: u32) -> String {
    format!("sip:10.0.0.{}:5060", i + 1)
}

#[test]
fn hash_algorithms_pick_by_their_key() {
    let mut h = harness(dispatcher(LIST, &[]), INVITE);
    let callid = ds_hash(b"a84b4c76e66710@pc33", None);
    assert_eq!(select(&mut h, &["1", "0"]), (1, Some(nth(callid % 3))));
    let from = uri_hash(b"sip:alice@example.org", false).unwrap();
    assert_eq!(select(&mut h, &["1", "1"]), (1, Some(nth(from % 3))));
    let to = uri_hash(b"sip:bob@example.com", false).unwrap();
    assert_eq!(select(&mut h, &["1", "2"]), (1, Some(nth(to % 3))));
    assert_eq!(select(&mut h, &["1", "3"]), (1, Some(nth(to % 3))));
    // The same Call-ID always lands on the same destination.
    for _ in 0..5 {
        assert_eq!(select(&mut h, &["1", "0"]).1, Some(nth(callid % 3)));
    }
}

#[test]
fn hash_user_only_flag() {
    let mut h = harness(dispatcher(LIST, &[("flags", 1)]), INVITE);
    let from = ds_hash(b"alice", None);
    assert_eq!(select(&mut h, &["1", "1"]).1, Some(nth(from % 3)));
}

#[test]
fn round_robin_and_priority_and_unknown_set() {
    let (mut h, d) = harness_and(dispatcher(LIST, &[]), INVITE);
    let got: Vec<_> = (0..4)
        .map(|_| select(&mut h, &["1", "4"]).1.unwrap())
        .collect();
    assert_eq!(got, [nth(0), nth(1), nth(2), nth(0)]);
    assert_eq!(select(&mut h, &["1", "8"]).1, Some(nth(0)));
    assert_eq!(select(&mut h, &["9", "4"]), (-1, None));
    // An inactive destination is passed over.
    assert!(d.set_state(1, Some(b"sip:10.0.0.1:5060"), INACTIVE));
    assert_eq!(select(&mut h, &["1", "8"]).1, Some(nth(1)));
    d.set_state(1, None, INACTIVE);
    assert_eq!(select(&mut h, &["1", "8"]), (-1, None));
}

#[test]
fn auth_user_hash_falls_back_to_round_robin() {
    let with_auth = INVITE.replacen(
        "Contact:",
        "Proxy-Authorization: Digest username=\"carol\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"0\"\nContact:",
        1,
    );
    let mut h = harness(dispatcher(LIST, &[]), &with_auth);
    let carol = ds_hash(b"carol", None);
    assert_eq!(select(&mut h, &["1", "5"]).1, Some(nth(carol % 3)));
    let mut h = harness(dispatcher(LIST, &[]), INVITE);
    assert_eq!(select(&mut h, &["1", "5"]).1, Some(nth(0)));
    assert_eq!(select(&mut h, &["1", "5"]).1, Some(nth(1)));
}

#[test]
fn random_weight_and_relative_weight() {
    let list = "1 sip:10.0.0.2:5060 0 0 weight=70;rweight=30\n1 sip:10.0.0.1:5060 0 0 weight=30;rweight=10\n";
    let mut h = harness(dispatcher(list, &[]), INVITE);
    let mut n = [0; 2];
    for _ in 0..100 {
        let du = select(&mut h, &["1", "9"]).1.unwrap();
        n[usize::from(du == nth(1))] += 1;
    }
    assert_eq!(n, [30, 70]);
    let mut n = [0; 2];
    for _ in 0..100 {
        let du = select(&mut h, &["1", "11"]).1.unwrap();
        n[usize::from(du == nth(1))] += 1;
    }
    assert_eq!(n, [25, 75]);
    let mut n = [0; 2];
    for _ in 0..200 {
        let du = select(&mut h, &["1", "6"]).1.unwrap();
        n[usize::from(du == nth(1))] += 1;
    }
    assert!(n[0] > 50 && n[1] > 50, "random spreads: {n:?}");
}

#[test]
fn call_load_is_refused_at_startup() {
    let e = crate::modules::testutil::fixed(
        &MODULE,
        "ds_select_dst",
        &["1", "10"],
        &ModParams::default(),
    )
    .unwrap_err();
    assert!(e.contains("dialog"), "{e}");
    let e = crate::modules::testutil::fixed(
        &MODULE,
        "ds_select_dst",
        &["1", "7"],
        &ModParams::default(),
    )
    .unwrap_err();
    assert!(e.contains("hash_pvar"), "{e}");
}

#[test]
fn parallel_puts_the_others_in_branches() {
    let mut h = harness(dispatcher(LIST, &[]), INVITE);
    let mut ctx = h.ctx();
    assert_eq!(
        call(
            &mut ctx,
            &MODULE,
            "ds_select_dst",
            &["1", "12"],
            &ModParams::default()
        ),
        1
    );
    assert_eq!(ctx.dst_uri.as_deref(), Some(nth(0).as_bytes()));
    let dsts: Vec<_> = ctx
        .branches
        .iter()
        .map(|b| (b.uri.clone(), b.dst_uri.clone().unwrap()))
        .collect();
    assert_eq!(
        dsts,
        [
            (Bytes::from("sip:bob@example.com"), Bytes::from(nth(1))),
            (Bytes::from("sip:bob@example.com"), Bytes::from(nth(2)))
        ]
    );
}

fn xavp_uris(ctx: &MsgCtx<'_>) -> Vec<String> {
    ctx.attrs
        .xavps_named(b"_dsdst_")
        .map(|x| match &x.field(b"uri", 0).unwrap().value {
            XavpValue::Value(v) => String::from_utf8_lossy(&v.to_bytes()).into_owned(),
            XavpValue::List(_) => unreachable!(),
        })
        .collect()
}

#[test]
fn failover_list_in_xavps_and_next_dst() {
    let mut h = harness(dispatcher(LIST, &[("flags", 2)]), INVITE);
    let mut ctx = h.ctx();
    let mp = ModParams::default();
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_select_dst", &["1", "4", "2"], &mp),
        1
    );
    assert_eq!(xavp_uris(&ctx), [nth(0), nth(1)]);
    let cnt = ctx
        .attrs
        .xavp(b"_dsctx_", 0)
        .unwrap()
        .field(b"cnt", 0)
        .unwrap();
    assert_eq!(cnt.value, XavpValue::Value(Value::Int(2)));
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_select_dst", &["1", "8"], &mp),
        1
    );
    // The new records come first; the earlier selection's stay after them.
    assert_eq!(xavp_uris(&ctx), [nth(0), nth(1), nth(2), nth(0), nth(1)]);
    // The current one fails: mark it, take the next.
    assert_eq!(call(&mut ctx, &MODULE, "ds_mark_dst", &["ip"], &mp), 1);
    assert_eq!(call(&mut ctx, &MODULE, "ds_next_dst", &[], &mp), 1);
    assert_eq!(ctx.dst_uri.as_deref(), Some(nth(1).as_bytes()));
    // One that went down meanwhile is still used, as Kamailio 5.6 does.
    let d = ctx.env.services.get::<Dispatcher>().unwrap();
    d.set_state(1, Some(nth(2).as_bytes()), INACTIVE);
    assert_eq!(call(&mut ctx, &MODULE, "ds_next_dst", &[], &mp), 1);
    assert_eq!(ctx.dst_uri.as_deref(), Some(nth(2).as_bytes()));
    let lists = d.lists();
    assert_eq!(lists.set(1).unwrap().dests[0].state(), INACTIVE | PROBING);
    // dst-down for both, in order.
    let ev = d.take_events();
    assert_eq!(
        ev.iter().map(|e| (e.up, e.uri.clone())).collect::<Vec<_>>(),
        [(false, Bytes::from(nth(0))), (false, Bytes::from(nth(2)))]
    );
}

#[test]
fn next_dst_needs_the_failover_flag_and_domain_rewrites_the_ruri() {
    let mut h = harness(dispatcher(LIST, &[]), INVITE);
    let mut ctx = h.ctx();
    let mp = ModParams::default();
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_select_domain", &["2", "8"], &mp),
        1
    );
    // Everything after the user part is the destination's (Kamailio 5.6).
    assert_eq!(ctx.ruri(), b"sip:bob@10.0.1.1:5080;transport=tcp");
    assert_eq!(ctx.dst_uri, None);
    assert_eq!(call(&mut ctx, &MODULE, "ds_next_dst", &[], &mp), -1);
    // ds_select leaves $du alone; without failover it keeps no records either.
    assert_eq!(call(&mut ctx, &MODULE, "ds_select", &["1", "8"], &mp), 1);
    assert_eq!(ctx.dst_uri, None);
    assert!(xavp_uris(&ctx).is_empty());
    let mut h = harness(dispatcher(LIST, &[("flags", 2)]), INVITE);
    let mut ctx = h.ctx();
    assert_eq!(call(&mut ctx, &MODULE, "ds_select", &["1", "8"], &mp), 1);
    assert_eq!(ctx.dst_uri, None);
    assert_eq!(xavp_uris(&ctx).len(), 3);
}

#[test]
fn force_dst_off_keeps_an_existing_du() {
    let mut h = harness(dispatcher(LIST, &[("force_dst", 0)]), INVITE);
    let mut ctx = h.ctx();
    ctx.dst_uri = Some(Bytes::from_static(b"sip:192.0.2.99"));
    assert_eq!(
        call(
            &mut ctx,
            &MODULE,
            "ds_select_dst",
            &["1", "4"],
            &ModParams::default()
        ),
        -1
    );
}

#[test]
fn use_default_keeps_the_last_for_when_all_fail() {
    let (mut h, d) = harness_and(
        dispatcher(LIST, &[("use_default", 1), ("flags", 2)]),
        INVITE,
    );
    let got: Vec<_> = (0..3)
        .map(|_| select(&mut h, &["1", "4"]).1.unwrap())
        .collect();
    assert_eq!(got, [nth(0), nth(1), nth(0)]);
    d.set_state(1, Some(nth(0).as_bytes()), INACTIVE);
    d.set_state(1, Some(nth(1).as_bytes()), INACTIVE);
    assert_eq!(select(&mut h, &["1", "4"]).1, Some(nth(2)));
}

#[test]
fn is_from_list_list_exists_and_is_active() {
    let list = "3 sip:198.51.100.1:5070\n4 sip:198.51.100.1:5999;transport=tcp\n";
    let mut h = harness(dispatcher(list, &[]), INVITE);
    let mut ctx = h.ctx();
    let mp = ModParams::default();
    assert_eq!(call(&mut ctx, &MODULE, "ds_is_from_list", &[], &mp), 1);
    assert_eq!(call(&mut ctx, &MODULE, "ds_is_from_list", &["3"], &mp), 1);
    assert_eq!(call(&mut ctx, &MODULE, "ds_is_from_list", &["4"], &mp), -1);
    // Port ignored (1) still checks the transport when a mode is given.
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_is_from_list", &["4", "1"], &mp),
        -1
    );
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_is_from_list", &["4", "3"], &mp),
        1
    );
    assert_eq!(
        call(
            &mut ctx,
            &MODULE,
            "ds_is_from_list",
            &["4", "0", "sip:198.51.100.1:5999;transport=tcp"],
            &mp
        ),
        1
    );
    let d = ctx.env.services.get::<Dispatcher>().unwrap();
    d.set_state(3, None, INACTIVE);
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_is_from_list", &["3", "4"], &mp),
        -1
    );
    // Mode 0: the destination names no transport, which never equals UDP.
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_is_from_list", &["3", "0"], &mp),
        -1
    );
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_is_from_list", &["3", "2"], &mp),
        1
    );
    assert_eq!(call(&mut ctx, &MODULE, "ds_list_exists", &["3"], &mp), 1);
    assert_eq!(call(&mut ctx, &MODULE, "ds_list_exists", &["5"], &mp), -1);
    assert_eq!(call(&mut ctx, &MODULE, "ds_is_active", &["3"], &mp), -1);
    assert_eq!(call(&mut ctx, &MODULE, "ds_is_active", &["4"], &mp), 1);
}

#[test]
fn mark_states_by_letter() {
    assert_eq!(parse_state(b"i"), Some(INACTIVE));
    assert_eq!(parse_state(b"ip"), Some(INACTIVE | PROBING));
    assert_eq!(parse_state(b"a"), Some(0));
    assert_eq!(parse_state(b"tp"), Some(TRYING | PROBING));
    assert_eq!(parse_state(b"x"), None);
    assert!(
        crate::modules::testutil::fixed(&MODULE, "ds_mark_dst", &["q"], &ModParams::default())
            .is_err()
    );
}

#[test]
fn reply_codes_parameter() {
    assert_eq!(parse_reply_codes("code=404;code=480").unwrap(), [404, 480]);
    assert_eq!(parse_reply_codes("class=3").unwrap().len(), 100);
    assert!(parse_reply_codes("code=99").is_err());
    assert!(parse_reply_codes("nope").is_err());
}

#[test]
fn rpc_list_set_state_reload() {
    let d = dispatcher(LIST, &[]);
    let v = rpc::list(&d, false);
    assert_eq!(v["NRSETS"], 2);
    assert_eq!(v["RECORDS"][0]["SET"]["ID"], 2);
    let dest = &v["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"];
    assert_eq!(dest["URI"], "sip:10.0.1.1:5080;transport=tcp");
    assert_eq!(dest["FLAGS"], "AX");
    assert_eq!(dest["ATTRS"]["DUID"], "gw1");
    assert_eq!(dest["ATTRS"]["WEIGHT"], 10);
    assert!(
        rpc::list(&d, true)["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]
            .get("ATTRS")
            .is_none()
    );
    assert_eq!(
        rpc::set_state(&d, "ip", "1", "sip:10.0.0.2:5060").unwrap(),
        "Ok. Dispatcher state updated."
    );
    assert_eq!(
        rpc::list(&d, true)["RECORDS"][1]["SET"]["TARGETS"][1]["DEST"]["FLAGS"],
        "IP"
    );
    assert_eq!(
        rpc::set_state(&d, "a", "1", "all").unwrap(),
        "Ok. Dispatcher state updated."
    );
    assert_eq!(
        rpc::list(&d, true)["RECORDS"][1]["SET"]["TARGETS"][1]["DEST"]["FLAGS"],
        "AX"
    );
    assert_eq!(rpc::set_state(&d, "a", "x", "all").unwrap_err().0, 500);
    assert!(rpc::reload(&d, 1_000).is_ok());
}

/// Kamailio 5.6, live: a second `dispatcher.reload` at once, and again two
/// seconds later, answered `500 - Ongoing reload`; five seconds after the
/// first it reloaded (the refused ones did not restart the wait).
#[test]
fn rpc_reload_waits_reload_delta_seconds() {
    let d = dispatcher(LIST, &[]);
    assert_eq!(d.params.reload_delta, 5);
    assert!(rpc::reload(&d, 1_000).is_ok());
    assert_eq!(
        rpc::reload(&d, 1_000).unwrap_err(),
        (500, "Ongoing reload".to_string())
    );
    assert!(rpc::reload(&d, 1_002).is_err());
    assert!(rpc::reload(&d, 1_004).is_err());
    assert!(rpc::reload(&d, 1_005).is_ok());

    let d = dispatcher(LIST, &[("reload_delta", 0)]);
    assert!(rpc::reload(&d, 7).is_ok());
    assert!(rpc::reload(&d, 7).is_ok());
    let d = dispatcher(LIST, &[("reload_delta", 60)]);
    assert!(rpc::reload(&d, 7).is_ok());
    assert!(rpc::reload(&d, 66).is_err());
    assert!(rpc::reload(&d, 67).is_ok());
}

/// With `ds_hash_size` set, Kamailio's `dispatcher.list` adds
/// `RUNTIME: { DLGLOAD: 0 }` to each destination (seen live); without it, not.
#[test]
fn rpc_list_shows_call_load_with_ds_hash_size() {
    let d = dispatcher(LIST, &[("ds_hash_size", 4)]);
    let list = rpc::list(&d, false);
    let dest = &list["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"];
    assert_eq!(dest["RUNTIME"], serde_json::json!({ "DLGLOAD": 0 }));
    let d = dispatcher(LIST, &[]);
    let list = rpc::list(&d, false);
    assert!(list["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]
        .get("RUNTIME")
        .is_none());
}

#[test]
fn reload_from_a_list_file_and_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dispatcher.list");
    std::fs::write(&path, "1 sip:10.0.0.1\n").unwrap();
    let mut mp = ModParams::default();
    mp.push(
        "dispatcher",
        "list_file",
        ParamValue::Str(path.display().to_string()),
    );
    let d = Dispatcher::from_modparams(&mp, None, 1, None).unwrap();
    assert_eq!(d.lists().sets.len(), 1);
    std::fs::write(&path, "1 sip:10.0.0.1\n2 sip:10.0.0.2\n").unwrap();
    assert_eq!(d.reload(), Ok(2));
    std::fs::write(&path, "1 nonsense\n").unwrap();
    assert!(d.reload().unwrap_err().contains("line 1"));
    assert_eq!(
        d.lists().sets.len(),
        2,
        "a failed reload keeps the old sets"
    );

    let db = dir.path().join("ds.db");
    let url = format!("sqlite://{}", db.display());
    let mut stores = crate::store::Stores::default();
    let store = stores.handle(&url).unwrap();
    store
        .call(
            |s| {
                // The schema made the table; rows as kamctl would insert them.
                let _ = s;
            },
            Duration::from_secs(5),
        )
        .unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "INSERT INTO dispatcher (setid, destination, flags, priority, attrs) VALUES
             (7, 'sip:10.0.7.1:5060', 0, 1, ''), (7, 'sip:10.0.7.2:5060', 8, 5, 'weight=5');",
        )
        .unwrap();
    }
    let d = Dispatcher::from_modparams(&ModParams::default(), Some(store), 1, None).unwrap();
    let lists = d.lists();
    let s = lists.set(7).unwrap();
    assert_eq!(
        &s.dests[0].uri[..],
        b"sip:10.0.7.2:5060",
        "priority 5 first"
    );
    assert_eq!(s.dests[0].state(), PROBING);
    drop(lists);
    drop(d);
    stores.finish();
}

// --- keep-alive probing on virtual time ---------------------------------------------------------

fn reply_to(t: &crate::sip::Transmit, code: u16) -> Message {
    let req = Message::parse(t.data.clone()).unwrap();
    let via = String::from_utf8_lossy(req.header_value(HeaderName::Via).unwrap()).into_owned();
    let callid =
        String::from_utf8_lossy(req.header_value(HeaderName::CallId).unwrap()).into_owned();
    let text = format!(
        "SIP/2.0 {code} X\r\nVia: {via}\r\nFrom: <sip:dispatcher@localhost>;tag=1\r\n\
         To: <sip:x>;tag=2\r\nCall-ID: {callid}\r\nCSeq: 10 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    Message::parse(Bytes::from(text)).unwrap()
}

#[test]
fn probing_marks_a_silent_destination_down_and_back_up() {
    let list = "1 sip:10.0.0.2:5060 8\n1 sip:10.0.0.1:5060\n";
    let d = dispatcher(
        list,
        &[
            ("ds_ping_interval", 2),
            ("ds_probing_mode", 1),
            ("ds_probing_threshold", 2),
        ],
    );
    assert_eq!(d.params.ping_timeout, Duration::from_secs(2));
    let env = env();
    let t0 = some_instant();
    let mut out = Vec::new();
    d.probe_tick(&env, t0, &mut out);
    assert_eq!(out.len(), 2, "mode 1 probes every destination");
    let req = Message::parse(out[0].data.clone()).unwrap();
    assert_eq!(req.method_bytes(), b"OPTIONS");
    assert_eq!(req.request_uri(), Some(&b"sip:10.0.0.1:5060"[..]));
    assert!(String::from_utf8_lossy(&out[0].data).contains("From: <sip:dispatcher@localhost>;tag="));
    assert_eq!(out[0].dst, "10.0.0.1:5060".parse().unwrap());
    // The first answers 200; the second never answers.
    assert!(d.probe_reply(&reply_to(&out[0], 200)));
    let second = out[1].clone();
    out.clear();
    // UDP: retransmitted at T1.
    d.probe_tick(&env, t0 + Duration::from_millis(500), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data, second.data);
    // Timed out at 2 s: trying (threshold 2), a new round goes out.
    out.clear();
    d.probe_tick(&env, t0 + Duration::from_secs(2), &mut out);
    let lists = d.lists();
    let s = lists.set(1).unwrap();
    assert_eq!(
        s.dests[0].state(),
        PROBING,
        "answered: active, still probed in mode 1"
    );
    assert_eq!(s.dests[1].state(), TRYING | PROBING);
    assert!(d.take_events().is_empty());
    let next = out
        .iter()
        .find(|t| t.dst.ip().to_string() == "10.0.0.2")
        .cloned()
        .unwrap();
    // The first keeps answering.
    let answer_first = |out: &[crate::sip::Transmit]| {
        let t = out
            .iter()
            .find(|t| t.dst.ip().to_string() == "10.0.0.1")
            .unwrap();
        assert!(d.probe_reply(&reply_to(t, 200)));
    };
    answer_first(&out);
    out.clear();
    // Second failure: inactive, dst-down.
    d.probe_tick(&env, t0 + Duration::from_secs(4), &mut out);
    assert_eq!(s.dests[1].state(), INACTIVE | PROBING);
    let mut events = Vec::new();
    d.events_to_run(&mut events);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].route,
        crate::script::ctx::LocalRoute::Event("dispatcher:dst-down")
    );
    assert_eq!(
        events[0].dst_uri.as_deref(),
        Some(&b"sip:10.0.0.2:5060"[..])
    );
    assert_eq!(events[0].msg.request_uri(), Some(&b"sip:10.0.0.2:5060"[..]));
    // A late reply to an old probe is still ours, but changes nothing.
    assert!(d.probe_reply(&reply_to(&next, 200)));
    assert_eq!(s.dests[1].state(), INACTIVE | PROBING);
    answer_first(&out);
    // The next round's probe is answered: up again.
    out.clear();
    d.probe_tick(&env, t0 + Duration::from_secs(6), &mut out);
    assert_eq!(s.dests[0].state(), PROBING);
    let probe = out
        .iter()
        .find(|t| t.dst.ip().to_string() == "10.0.0.2")
        .cloned()
        .unwrap();
    assert!(d.probe_reply(&reply_to(&probe, 200)));
    assert_eq!(s.dests[1].state(), PROBING);
    let ev = d.take_events();
    assert_eq!(ev.len(), 1);
    assert!(ev[0].up);
    // Someone else's reply is not ours.
    let other = Message::parse(Bytes::from_static(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKabc\r\nFrom: <sip:a>;tag=1\r\nTo: <sip:b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    ))
    .unwrap();
    assert!(!d.probe_reply(&other));
}

#[test]
fn probing_mode_0_only_pings_flagged_and_reply_codes_count() {
    let list = "1 sip:10.0.0.2:5060 8\n1 sip:10.0.0.1:5060\n";
    let mut mp = ModParams::default();
    mp.push("dispatcher", "ds_ping_interval", ParamValue::Int(5));
    mp.push(
        "dispatcher",
        "ds_ping_reply_codes",
        ParamValue::Str("code=404".into()),
    );
    let lists = DestLists::from_rows(&parse_list_file(list).unwrap()).unwrap();
    let d = Dispatcher::from_lists(DsParams::from_modparams(&mp).unwrap(), lists);
    let env = env();
    let mut out = Vec::new();
    d.probe_tick(&env, some_instant(), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dst, "10.0.0.2:5060".parse().unwrap());
    assert!(d.probe_reply(&reply_to(&out[0], 100)));
    assert_eq!(
        d.prober.pending(),
        1,
        "a provisional reply keeps it waiting"
    );
    assert!(d.probe_reply(&reply_to(&out[0], 404)));
    assert_eq!(d.prober.pending(), 0);
    // Mode 0: an answered destination is active and no longer probed ("AX").
    let lists = d.lists();
    let answered = lists
        .set(1)
        .unwrap()
        .dests
        .iter()
        .find(|x| x.uri == "sip:10.0.0.2:5060")
        .unwrap();
    assert_eq!(answered.state(), 0);
    out.clear();
    d.probe_tick(&env, some_instant() + Duration::from_secs(5), &mut out);
    assert!(out.is_empty());
    // A silent one flagged for probing ends "IX", as Kamailio 5.6.3 shows it.
    let list = "1 sip:10.0.0.3:5060 8\n";
    let lists = DestLists::from_rows(&parse_list_file(list).unwrap()).unwrap();
    let d = Dispatcher::from_lists(DsParams::from_modparams(&mp).unwrap(), lists);
    let mut out = Vec::new();
    d.probe_tick(&env, some_instant(), &mut out);
    assert_eq!(out.len(), 1);
    d.probe_tick(&env, some_instant() + Duration::from_secs(5), &mut out);
    assert_eq!(
        rpc::list(&d, true)["RECORDS"][0]["SET"]["TARGETS"][0]["DEST"]["FLAGS"],
        "IX"
    );
}

/// What Kamailio 5.6.3 put in the XAVPs for this set with `flags` 2 and
/// algorithm 8 (observed: `grp`, `uri`, `_dsctx_=>cnt`, no other fields).
#[test]
fn failover_records_as_kamailio_fills_them() {
    let list = "2 sip:10.0.2.1:5060 0 1\n2 sip:10.0.2.2:5060 0 9\n\
                2 sip:10.0.2.3:5060 0 5\n2 sip:10.0.2.4:5060 0 9\n";
    let mut h = harness(dispatcher(list, &[("flags", 2)]), INVITE);
    let mut ctx = h.ctx();
    assert_eq!(
        call(
            &mut ctx,
            &MODULE,
            "ds_select_dst",
            &["2", "8"],
            &ModParams::default()
        ),
        1
    );
    assert_eq!(
        xavp_uris(&ctx),
        [
            "sip:10.0.2.4:5060",
            "sip:10.0.2.2:5060",
            "sip:10.0.2.3:5060",
            "sip:10.0.2.1:5060"
        ]
    );
    let first = ctx.attrs.xavp(b"_dsdst_", 0).unwrap();
    assert_eq!(
        first.field(b"grp", 0).unwrap().value,
        XavpValue::Value(Value::Int(2))
    );
    assert!(first.field(b"flags", 0).is_none() && first.field(b"priority", 0).is_none());
    let cnt = ctx
        .attrs
        .xavp(b"_dsctx_", 0)
        .unwrap()
        .field(b"cnt", 0)
        .unwrap();
    assert_eq!(cnt.value, XavpValue::Value(Value::Int(4)));
}

#[test]
fn select_routes_over_several_sets() {
    let list = "1 sip:10.0.0.1:5060\n3 sip:10.0.3.2:5060\n3 sip:10.0.3.1:5060\n";
    let mut h = harness(dispatcher(list, &[("flags", 2)]), INVITE);
    let mut ctx = h.ctx();
    let mp = ModParams::default();
    assert_eq!(
        call(
            &mut ctx,
            &MODULE,
            "ds_select_routes",
            &["3=8;1=8", "d"],
            &mp
        ),
        1
    );
    assert_eq!(ctx.dst_uri.as_deref(), Some(&b"sip:10.0.3.1:5060"[..]));
    assert_eq!(
        xavp_uris(&ctx),
        [
            "sip:10.0.3.1:5060",
            "sip:10.0.3.2:5060",
            "sip:10.0.0.1:5060"
        ]
    );
    assert_eq!(
        call(
            &mut ctx,
            &MODULE,
            "ds_select_routes",
            &["9=4;1=4", "r", "1"],
            &mp
        ),
        1
    );
    assert_eq!(ctx.ruri(), b"sip:bob@10.0.0.1:5060");
    // The new record comes before the earlier selection's, which stay.
    assert_eq!(
        xavp_uris(&ctx),
        [
            "sip:10.0.0.1:5060",
            "sip:10.0.3.1:5060",
            "sip:10.0.3.2:5060",
            "sip:10.0.0.1:5060"
        ]
    );
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_select_routes", &["9=4", "x"], &mp),
        -1
    );
    let fixed = |a: &[&str]| crate::modules::testutil::fixed(&MODULE, "ds_select_routes", a, &mp);
    assert!(fixed(&["1=10", "d"]).unwrap_err().contains("dialog"));
    assert!(fixed(&["1", "d"]).is_err());
    assert!(fixed(&["1=4", "q"]).is_err());
}

#[test]
fn mark_dst_without_state_marks_inactive_and_probing_only_in_mode_1() {
    for (mode, want) in [(0, INACTIVE), (1, INACTIVE | PROBING)] {
        let (mut h, d) = harness_and(
            dispatcher(LIST, &[("flags", 2), ("ds_probing_mode", mode)]),
            INVITE,
        );
        let mut ctx = h.ctx();
        let mp = ModParams::default();
        assert_eq!(
            call(&mut ctx, &MODULE, "ds_select_dst", &["1", "8"], &mp),
            1
        );
        assert_eq!(call(&mut ctx, &MODULE, "ds_mark_dst", &[], &mp), 1);
        assert_eq!(
            d.lists().set(1).unwrap().dests[0].state(),
            want,
            "mode {mode}"
        );
    }
    // Without a selection record (or without flags bit 2) nothing is
    // marked, as in Kamailio 5.6: $du alone names no destination.
    for flags in [0, 2] {
        let (mut h, d) = harness_and(dispatcher(LIST, &[("flags", flags)]), INVITE);
        let mut ctx = h.ctx();
        ctx.dst_uri = Some(Bytes::from(nth(2)));
        let mp = ModParams::default();
        assert_eq!(call(&mut ctx, &MODULE, "ds_mark_dst", &["d"], &mp), -1);
        assert_eq!(d.lists().set(1).unwrap().dests[2].state(), 0);
        if flags == 0 {
            // Selected, but no record kept without failover.
            assert_eq!(
                call(&mut ctx, &MODULE, "ds_select_dst", &["1", "8"], &mp),
                1
            );
            assert_eq!(call(&mut ctx, &MODULE, "ds_mark_dst", &["d"], &mp), -1);
            assert_eq!(d.lists().set(1).unwrap().dests[0].state(), 0);
        }
    }
}

#[test]
fn named_destinations_take_the_address_their_name_resolves_to_unless_nodns() {
    // Flag 16 (NODNS) keeps the second one unresolved.
    let list = "3 sip:pbx.example.com:5070\n4 sip:pbx2.example.com:5070 16\n";
    let mut lists = DestLists::from_rows(&parse_list_file(list).unwrap()).unwrap();
    let asked = std::cell::RefCell::new(Vec::new());
    lists.resolve_names(|host| {
        asked.borrow_mut().push(host.to_string());
        Some("198.51.100.1".parse().unwrap())
    });
    assert_eq!(*asked.borrow(), ["pbx.example.com"]);
    let d = Dispatcher::from_lists(
        DsParams::from_modparams(&ModParams::default()).unwrap(),
        lists,
    );
    let mut h = harness(d, INVITE);
    let mut ctx = h.ctx();
    let mp = ModParams::default();
    assert_eq!(call(&mut ctx, &MODULE, "ds_is_from_list", &["3"], &mp), 1);
    assert_eq!(call(&mut ctx, &MODULE, "ds_is_from_list", &["4"], &mp), -1);
}

/// What Kamailio 5.6 answered to `ds_is_from_list` (sidebyside
/// `hunt_route_ds.cfg ds_from_list`): a destination's transport counts only
/// when it names one (none never matches a message's UDP), its port 0
/// matches any, a URI argument without a port or transport has them 0;
/// the set id goes to `setid_pvname` only when any group was asked for, and
/// empty attrs leave `attrs_pvname` alone.
#[test]
fn is_from_list_matches_as_kamailio() {
    let list = "4 sip:198.51.100.1:5070 0 0 peer=uac\n\
                4 sip:198.51.100.1:5099;transport=tcp 0 0 peer=tcp\n\
                5 sip:198.51.100.1 0 0 peer=noport\n\
                6 sip:198.51.100.1:5070;transport=udp\n";
    let routes = r#"
modparam("dispatcher", "setid_pvname", "$var(setid)")
modparam("dispatcher", "attrs_pvname", "$var(attrs)")
request_route {
    $var(setid) = "none"; $var(attrs) = "none";
    if ($hdr(X-Uri) != $null) { ds_is_from_list("$hdr(X-Set)", "$hdr(X-Mode)", "$hdr(X-Uri)"); }
    else if ($hdr(X-Mode) != $null) { ds_is_from_list("$hdr(X-Set)", "$hdr(X-Mode)"); }
    else { ds_is_from_list("$hdr(X-Set)"); }
    append_to_reply("X-R: $rc $var(setid) $var(attrs)\r\n");
    sl_send_reply("200", "OK");
}"#;
    let ask = |set: &str, mode: Option<&str>, uri: Option<&str>| {
        let mut extra = format!("X-Set: {set}\n");
        if let Some(m) = mode {
            extra += &format!("X-Mode: {m}\n");
        }
        if let Some(u) = uri {
            extra += &format!("X-Uri: {u}\n");
        }
        let req = INVITE.replacen("Content-Type", &format!("{extra}Content-Type"), 1);
        let out = run_script(list, routes, &req);
        let line = out
            .iter()
            .flat_map(|m| m.lines())
            .find_map(|l| l.strip_prefix("X-R: "))
            .unwrap_or_else(|| panic!("{out:?}"))
            .to_string();
        line
    };
    // No mode: the transport is ignored; the set id is not exported for one group.
    assert_eq!(ask("4", None, None), "1 none peer=uac");
    // Modes 0 and 1: a destination without a transport never equals the message's UDP.
    assert_eq!(ask("4", Some("0"), None), "-1 none none");
    assert_eq!(ask("4", Some("1"), None), "-1 none none");
    assert_eq!(ask("4", Some("2"), None), "1 none peer=uac");
    // Empty attrs leave the variable alone.
    assert_eq!(ask("6", Some("0"), None), "1 none none");
    // Port 0 matches any port.
    assert_eq!(ask("5", Some("2"), None), "1 none peer=noport");
    // Any group: the set id is exported; sets are walked in Kamailio's tree
    // order (4, 6, 5: set 4 before 5).
    assert_eq!(ask("-1", Some("2"), None), "1 4 peer=uac");
    // A URI without port or transport: port 0, no transport.
    assert_eq!(
        ask("4", Some("0"), Some("sip:198.51.100.1")),
        "-1 none none"
    );
    assert_eq!(
        ask("5", Some("0"), Some("sip:198.51.100.1")),
        "1 none peer=noport"
    );
    assert_eq!(
        ask("4", Some("0"), Some("sip:198.51.100.1:5099;transport=tcp")),
        "1 none peer=tcp"
    );
    assert_eq!(
        ask("5", Some("0"), Some("sips:198.51.100.1")),
        "1 none peer=noport"
    );
    // sips: names no transport either; the port ignored, set 4's first matches.
    assert_eq!(
        ask("4", Some("1"), Some("sips:198.51.100.1")),
        "1 none peer=uac"
    );
}

/// Compiles `routes` (with the dispatcher loaded on `list`) and runs it on
/// `request`; what was sent.
fn run_script(list: &str, routes: &str, request: &str) -> Vec<String> {
    use crate::modules::core::Engine;
    use crate::script::compile::compile;
    use crate::script::{parse_str, MemoryFiles, Options};
    let text = format!(
        "loadmodule \"sl.so\"\nloadmodule \"textops.so\"\nloadmodule \"dispatcher.so\"\n{routes}"
    );
    let files = MemoryFiles::new();
    let cfg = parse_str("t.cfg", &text, &Options::with_files(&files))
        .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let compiled = compile(&cfg).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let mut e = env();
    e.services
        .insert(Arc::new(dispatcher(list, &[("flags", 2)])));
    let mut engine = Engine::new(Arc::new(e), Arc::new(compiled.program));
    let pkt = crate::sip::Inbound {
        data: Bytes::from(request.replace('\n', "\r\n")),
        src: crate::modules::testutil::SOURCE.parse().expect("address"),
        local: crate::modules::testutil::LOCAL.parse().expect("address"),
        proto: crate::sip::Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    let mut out = Vec::new();
    engine.on_inbound(pkt, some_instant(), &mut out);
    out.iter()
        .map(|t| String::from_utf8_lossy(&t.data).replace("\r\n", "\n"))
        .collect()
}

/// Kamailio 5.6 holds the sets in an AVL tree and walks it left, right,
/// node: sets 1..5 read in order come as 1, 3, 5, 4, 2.
#[test]
fn sets_in_kamailio_tree_order() {
    let text = "1 sip:10.0.0.1\n2 sip:10.0.0.2\n3 sip:10.0.0.3\n4 sip:10.0.0.4\n5 sip:10.0.0.5\n";
    let l = DestLists::from_rows(&parse_list_file(text).unwrap()).unwrap();
    let ids: Vec<i32> = l.sets.iter().map(|s| s.id).collect();
    assert_eq!(ids, [1, 3, 5, 4, 2]);
    let text = "7 sip:10.0.0.1\n3 sip:10.0.0.2\n9 sip:10.0.0.3\n1 sip:10.0.0.4\n7 sip:10.0.0.9\n";
    let l = DestLists::from_rows(&parse_list_file(text).unwrap()).unwrap();
    let ids: Vec<i32> = l.sets.iter().map(|s| s.id).collect();
    assert_eq!(ids, [1, 3, 9, 7]);
}

/// Algorithm 12 puts the others in branches and, as Kamailio 5.6 does,
/// keeps no failover records (`_dsctx_=>cnt` 0); a second selection puts
/// its records before the first one's, which stay.
#[test]
fn parallel_keeps_no_records_and_selections_add_up() {
    let mut h = harness(dispatcher(LIST, &[("flags", 2)]), INVITE);
    let mut ctx = h.ctx();
    let mp = ModParams::default();
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_select_dst", &["1", "12"], &mp),
        1
    );
    assert_eq!(ctx.branches.len(), 2);
    assert!(xavp_uris(&ctx).is_empty());
    let cnt = |ctx: &MsgCtx<'_>| {
        ctx.attrs
            .xavp(b"_dsctx_", 0)
            .unwrap()
            .field(b"cnt", 0)
            .unwrap()
            .value
            .clone()
    };
    assert_eq!(cnt(&ctx), XavpValue::Value(Value::Int(0)));
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_select_dst", &["1", "8", "2"], &mp),
        1
    );
    assert_eq!(
        call(&mut ctx, &MODULE, "ds_select_dst", &["1", "4"], &mp),
        1
    );
    assert_eq!(xavp_uris(&ctx), [nth(0), nth(1), nth(2), nth(0), nth(1)]);
    assert_eq!(cnt(&ctx), XavpValue::Value(Value::Int(3)));
}
