use std::sync::Arc;

use super::data::{parse_id_list, Gateway, RoutingData, RuleRow};
use super::*;
use crate::modules::testutil::{run, Harness, INVITE};
use crate::script::registry::{ModParams, ParamValue, RouteType};

fn gw(id: i64, gw_type: i64, address: &str, strip: i64, pri: &str, attrs: &str) -> Gateway {
    Gateway {
        id,
        gw_type,
        address: address.into(),
        strip,
        pri_prefix: pri.into(),
        attrs: attrs.into(),
    }
}

fn rule(id: i64, groups: &str, prefix: &str, priority: i64, gwlist: &str) -> RuleRow {
    RuleRow {
        id,
        groups: groups.into(),
        prefix: prefix.into(),
        timerec: Vec::new(),
        priority,
        routeid: Vec::new(),
        gwlist: gwlist.into(),
    }
}

/// Literal addresses only (no resolver in unit tests).
fn literal(g: &Gateway) -> Result<Option<(IpAddr, u16)>, String> {
    gateway_ip(g, true, None)
}

fn gateways() -> Vec<Gateway> {
    vec![
        gw(1, 10, "192.0.2.1:5080", 0, "", "carrier=a"),
        gw(2, 10, "192.0.2.2", 2, "0049", "carrier=b"),
        gw(3, 20, "192.0.2.3:5070", 0, "", ""),
        gw(4, 20, "gw.invalid", 0, "", ""),
    ]
}

fn data(rules: &[RuleRow]) -> RoutingData {
    RoutingData::build(gateways(), &[(7, b"2,1".to_vec())], rules, literal)
}

fn params(pairs: &[(&str, ParamValue)]) -> DrParams {
    let mut mp = ModParams::default();
    for (k, v) in pairs {
        mp.push("drouting", k, v.clone());
    }
    DrParams::from_modparams(&mp).expect("parameters")
}

fn harness(text: &str, d: Drouting) -> Harness {
    let mut h = Harness::new(text);
    h.env.services.insert(Arc::new(d));
    h
}

fn invite_to(ruri: &str) -> String {
    INVITE.replacen("sip:bob@example.com SIP/2.0", &format!("{ruri} SIP/2.0"), 1)
}

#[test]
fn id_lists() {
    assert_eq!(
        parse_id_list(b"1,2;3 | 4", true).unwrap(),
        vec![(1, 0), (2, 0), (3, 1), (4, 1)]
    );
    // A blank before the `;` hides it: no new group.
    assert_eq!(parse_id_list(b"1 ;2", true).unwrap(), vec![(1, 0), (2, 0)]);
    assert_eq!(parse_id_list(b"5 6,", false).unwrap(), vec![(5, 0), (6, 0)]);
    assert!(parse_id_list(b"1;2", false).is_err());
    assert!(parse_id_list(b"1,,2", true).is_err());
    assert!(parse_id_list(b"1x", true).is_err());
    assert!(parse_id_list(b"", true).is_err());
}

#[test]
fn longest_prefix_then_shorter_then_no_prefix() {
    let d = data(&[
        rule(1, "1", "49", 0, "1"),
        rule(2, "1", "4930", 0, "2"),
        rule(3, "2", "493012", 0, "3"),
        rule(4, "1", "", 0, "3"),
    ]);
    assert_eq!(d.lookup(b"4930123", 1, 0).map(|r| r.id), Some(2));
    assert_eq!(d.lookup(b"4989", 1, 0).map(|r| r.id), Some(1));
    // Group 1 has nothing under 493012: the shorter 4930 is taken.
    assert_eq!(d.lookup(b"4930125", 1, 0).map(|r| r.id), Some(2));
    assert_eq!(d.lookup(b"4930125", 2, 0).map(|r| r.id), Some(3));
    assert_eq!(d.lookup(b"33", 1, 0).map(|r| r.id), Some(4));
    assert_eq!(d.lookup(b"33", 2, 0).map(|r| r.id), None);
    // A character outside 0-9*#+ on the way down fails the prefix search.
    assert_eq!(d.lookup(b"49x", 1, 0).map(|r| r.id), Some(4));
    // ...but not once the tree has no longer prefixes.
    assert_eq!(d.lookup(b"4989x", 1, 0).map(|r| r.id), Some(1));
}

#[test]
fn priority_highest_first_then_table_order() {
    let d = data(&[
        rule(1, "1", "1", 5, "1"),
        rule(2, "1", "1", 9, "2"),
        rule(3, "1", "1", 9, "3"),
    ]);
    assert_eq!(d.lookup(b"100", 1, 0).map(|r| r.id), Some(2));
}

#[test]
fn time_restricted_rule_falls_through() {
    let mut late = rule(1, "1", "1", 9, "1");
    late.timerec = b"20990101T000000".to_vec();
    let d = data(&[late, rule(2, "1", "1", 0, "2")]);
    assert_eq!(d.lookup(b"100", 1, 1_700_000_000).map(|r| r.id), Some(2));
}

#[test]
fn bad_rules_and_gateways_are_skipped() {
    let mut bad_time = rule(5, "1", "5", 0, "1");
    bad_time.timerec = b"2024".to_vec();
    let d = data(&[
        rule(1, "1", "1", 0, "9"),  // unknown gateway
        rule(2, "1", "2a", 0, "1"), // bad prefix
        rule(3, "1", "3", 0, "#8"), // unknown list
        rule(4, "1", "4", 0, "#7"), // list 7: 2,1
        bad_time,
    ]);
    assert_eq!(d.rules.iter().map(|r| r.id).collect::<Vec<_>>(), vec![4]);
    assert_eq!(d.rules[0].gws, vec![(1, 0), (0, 0)]);
    // gw.invalid does not resolve: skipped with force_dns 1.
    assert_eq!(d.gateways.len(), 3);
    let kept = RoutingData::build(gateways(), &[], &[rule(1, "1", "", 0, "4")], |g| {
        gateway_ip(g, false, None)
    });
    assert_eq!(kept.gateways.len(), 4);
    assert_eq!(kept.addrs.len(), 3);
    // No valid rule: the gateways go too.
    let none = data(&[rule(1, "1", "1", 0, "9")]);
    assert!(none.gateways.is_empty() && none.addrs.is_empty());
}

#[test]
fn do_routing_rewrites_and_keeps_the_rest_for_next_routing() {
    let d = Drouting::with_data(params(&[]), data(&[rule(1, "1", "49", 0, "2,1,3")]), 1);
    let mut h = harness(&invite_to("sip:4930123:pw@example.com;user=phone?X=1"), d);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "do_routing", &["1"]), 1);
    assert_eq!(
        ctx.ruri(),
        b"sip:004930123:pw@192.0.2.2;user=phone?X=1".as_slice()
    );
    let attrs = AvpKey::Int(ATTRS_AVP);
    assert_eq!(
        ctx.attrs.avp(&attrs, 0).map(|v| v.to_bytes().into_owned()),
        Some(b"carrier=b".to_vec())
    );
    ctx.route_type = RouteType::Failure;
    assert_eq!(run(&mut ctx, &MODULE, "next_routing", &[]), 1);
    assert_eq!(
        ctx.ruri(),
        b"sip:4930123:pw@192.0.2.1:5080;user=phone?X=1".as_slice()
    );
    assert_eq!(
        ctx.attrs.avp(&attrs, 0).map(|v| v.to_bytes().into_owned()),
        Some(b"carrier=a".to_vec())
    );
    assert_eq!(run(&mut ctx, &MODULE, "use_next_gw", &[]), 1);
    assert_eq!(
        ctx.ruri(),
        b"sip:4930123:pw@192.0.2.3:5070;user=phone?X=1".as_slice()
    );
    assert_eq!(run(&mut ctx, &MODULE, "next_routing", &[]), -1);
    // No rule for the number or the group.
    assert_eq!(run(&mut ctx, &MODULE, "do_routing", &["2"]), -1);
}

#[test]
fn do_routing_strip_longer_than_user_fails() {
    let d = Drouting::with_data(params(&[]), data(&[rule(1, "1", "4", 0, "2")]), 1);
    let mut h = harness(&invite_to("sip:49@example.com"), d);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "do_routing", &["1"]), -1);
    assert_eq!(ctx.new_uri, None);
}

#[test]
fn named_avps() {
    let p = params(&[
        ("ruri_avp", ParamValue::Str("$avp(s:dr_ruri)".into())),
        ("attrs_avp", ParamValue::Str("$avp(dr_attrs)".into())),
    ]);
    let d = Drouting::with_data(p, data(&[rule(1, "1", "", 0, "1,2")]), 1);
    let mut h = harness(&invite_to("sip:4930123@example.com"), d);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "do_routing", &["1"]), 1);
    let key = AvpKey::Str("dr_ruri".into());
    assert_eq!(
        ctx.attrs.avp(&key, 0).map(|v| v.to_bytes().into_owned()),
        Some(b"sip:004930123@192.0.2.2".to_vec())
    );
    let attrs: Vec<_> = ctx
        .attrs
        .avp_values(&AvpKey::Str("dr_attrs".into()))
        .map(|v| v.to_bytes().into_owned())
        .collect();
    assert_eq!(attrs, vec![b"carrier=a".to_vec(), b"carrier=b".to_vec()]);
    let bad = DrParams::from_modparams(&{
        let mut mp = ModParams::default();
        mp.push("drouting", "ruri_avp", ParamValue::Str("$var(x)".into()));
        mp
    });
    assert!(bad.is_err());
}

#[test]
fn sort_orders() {
    let rules = [rule(1, "1", "", 0, "1,2;3;1,2,3")];
    let order = |so: i64, seed: u64| {
        let d = Drouting::with_data(
            params(&[("sort_order", ParamValue::Int(so))]),
            data(&rules),
            seed,
        );
        let r = d.data().rules[0].clone();
        d.order(&r)
    };
    assert_eq!(order(0, 1), vec![0, 1, 2, 3, 4, 5]);
    for seed in 0..40 {
        // 1: each group shuffled in place.
        let o = order(1, seed);
        let mut g1 = o[..2].to_vec();
        g1.sort();
        let mut g3 = o[3..].to_vec();
        g3.sort();
        assert_eq!((g1, o[2], g3), (vec![0, 1], 2, vec![3, 4, 5]), "{o:?}");
        // 2: one per group, never a gateway taken before: the third group
        // (gateways 1, 2, 3) has only the one of 1,2 not taken left.
        let o = order(2, seed);
        assert_eq!(o.len(), 3, "{o:?}");
        assert!(o[0] < 2 && o[1] == 2, "{o:?}");
        let gws: Vec<usize> = o.iter().map(|&i| data(&rules).rules[0].gws[i].0).collect();
        assert!(gws[2] != gws[0] && gws[2] != gws[1], "{o:?}");
    }
}

#[test]
fn is_from_gw_by_ip_port_and_type() {
    let mk = || Drouting::with_data(params(&[]), data(&[rule(1, "1", "", 0, "1")]), 1);
    let mut h = harness(&invite_to("sip:4930123@example.com"), mk());
    h.src = "192.0.2.2:7000".parse().unwrap();
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "is_from_gw", &[]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "is_from_gw", &["10"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "is_from_gw", &["20"]), -1);
    // flags: the gateway's strip (2) comes off the R-URI user.
    assert_eq!(run(&mut ctx, &MODULE, "is_from_gw", &["10", "1"]), 1);
    assert_eq!(ctx.ruri(), b"sip:30123@example.com".as_slice());
    // A gateway with a port matches that port only.
    let mut h = harness(&invite_to("sip:1@example.com"), mk());
    h.src = "192.0.2.1:5081".parse().unwrap();
    assert_eq!(run(&mut h.ctx(), &MODULE, "is_from_gw", &[]), -1);
    h.src = "192.0.2.1:5080".parse().unwrap();
    assert_eq!(run(&mut h.ctx(), &MODULE, "is_from_gw", &[]), 1);
}

#[test]
fn goes_to_gw_by_next_hop_ip() {
    let d = Drouting::with_data(params(&[]), data(&[rule(1, "1", "", 0, "1")]), 1);
    let mut h = harness(&invite_to("sip:1@192.0.2.3:9999"), d);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "goes_to_gw", &[]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "goes_to_gw", &["20"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "goes_to_gw", &["10"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "goes_to_gw", &["-1"]), 1);
    ctx.dst_uri = Some(bytes::Bytes::from_static(b"sip:192.0.2.99"));
    assert_eq!(run(&mut ctx, &MODULE, "goes_to_gw", &[]), -1);
    ctx.dst_uri = Some(bytes::Bytes::from_static(b"sip:192.0.2.1;transport=tcp"));
    assert_eq!(run(&mut ctx, &MODULE, "goes_to_gw", &["10"]), 1);
}

#[test]
fn keepalive_is_refused() {
    let mut mp = ModParams::default();
    mp.push("drouting", "enable_keepalive", ParamValue::Int(1));
    let e = DrParams::from_modparams(&mp).unwrap_err();
    assert!(e.contains("not implemented"), "{e}");
}
