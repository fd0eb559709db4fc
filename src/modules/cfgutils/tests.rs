use super::*;
use crate::modules::testutil::{call, fixed, run, Harness, INVITE};
use crate::script::registry::ParamValue;

fn params(list: &[(&str, ParamValue)]) -> ModParams {
    let mut p = ModParams::default();
    for (name, v) in list {
        p.push("cfgutils", name, v.clone());
    }
    p
}

fn harness(mp: &ModParams) -> Harness {
    let mut h = Harness::new(INVITE);
    h.env.services.insert(for_tests(mp));
    h
}

#[test]
fn core_hash_matches_kamailio() {
    // Values computed with Kamailio's core_hash (hashes.h) over the same input.
    assert_eq!(core_hash(b"", b"", 0), 0);
    assert_eq!(core_hash(b"abcd", b"", 0), {
        let v: u32 = 0x6162_6364;
        let h = v ^ (v >> 3);
        h.wrapping_add(h >> 11)
            .wrapping_add((h >> 13).wrapping_add(h >> 23))
    });
    // A tail of fewer than 4 bytes is folded in big-endian order.
    let v: u32 = 0x0000_6566;
    let h = (0x6162_6364u32 ^ (0x6162_6364u32 >> 3)).wrapping_add(v ^ (v >> 3));
    let want = h
        .wrapping_add(h >> 11)
        .wrapping_add((h >> 13).wrapping_add(h >> 23));
    assert_eq!(core_hash(b"abcdef", b"", 0), want);
    // s2 continues the hash; an empty s2 is left out.
    assert_eq!(core_hash(b"abcd", b"ef", 0), {
        let h = (0x6162_6364u32 ^ (0x6162_6364u32 >> 3)).wrapping_add(v ^ (v >> 3));
        // plus the empty tail of s1
        h.wrapping_add(h >> 11)
            .wrapping_add((h >> 13).wrapping_add(h >> 23))
    });
    assert_eq!(core_hash(b"abcdef", b"", 16), want & 15);
    // High bytes are signed, as C `char` on x86.
    assert_ne!(core_hash(&[0xff], b"", 0), core_hash(&[0x7f], b"", 0));
}

#[test]
fn core_hash_function_returns_slot_plus_one() {
    let mut h = harness(&ModParams::default());
    let mut ctx = h.ctx();
    let slot = core_hash(b"call-1", b"", 16) as i32 + 1;
    assert_eq!(
        run(&mut ctx, &MODULE, "core_hash", &["call-1", "", "4"]),
        slot
    );
    let two = run(&mut ctx, &MODULE, "core_hash", &["call-1", "x", "0"]);
    assert!(two == 1 || two == 2);
}

#[test]
fn probability() {
    let mp = params(&[("initial_probability", ParamValue::Int(0))]);
    let mut h = harness(&mp);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rand_event", &[]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "rand_get_prob", &[]), 0);
    assert_eq!(run(&mut ctx, &MODULE, "rand_set_prob", &["100"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "rand_get_prob", &[]), 100);
    assert!((0..50).all(|_| run(&mut ctx, &MODULE, "rand_event", &[]) == 1));
    assert_eq!(run(&mut ctx, &MODULE, "rand_set_prob", &["50"]), 1);
    let hits = (0..2000)
        .filter(|_| run(&mut ctx, &MODULE, "rand_event", &[]) == 1)
        .count();
    assert!((800..1200).contains(&hits), "{hits} of 2000 at 50%");
    assert_eq!(run(&mut ctx, &MODULE, "rand_reset_prob", &[]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "rand_get_prob", &[]), 0);
    assert!(fixed(&MODULE, "rand_set_prob", &["101"], &mp).is_err());
    assert!(fixed(&MODULE, "rand_set_prob", &["x"], &mp).is_err());
    let bad = params(&[("initial_probability", ParamValue::Int(101))]);
    assert!(Cfgutils::from_modparams(&bad, 1, |_| Ok(vec![])).is_err());
}

#[test]
fn random_numbers_are_31_bit_and_vary() {
    let s = for_tests(&ModParams::default());
    let v: Vec<u32> = (0..100).map(|_| s.random()).collect();
    assert!(v.iter().all(|n| *n < 1 << 31));
    let mut d = v.clone();
    d.sort_unstable();
    d.dedup();
    assert!(d.len() > 95);
}

#[test]
fn global_flags() {
    let mp = params(&[("initial_gflags", ParamValue::Int(4))]);
    let mut h = harness(&mp);
    let mut ctx = h.ctx();
    assert_eq!(call(&mut ctx, &MODULE, "is_gflag", &["2"], &mp), 1);
    assert_eq!(call(&mut ctx, &MODULE, "is_gflag", &["1"], &mp), -1);
    assert_eq!(call(&mut ctx, &MODULE, "set_gflag", &["1"], &mp), 1);
    assert_eq!(call(&mut ctx, &MODULE, "is_gflag", &["1"], &mp), 1);
    assert_eq!(call(&mut ctx, &MODULE, "reset_gflag", &["2"], &mp), 1);
    assert_eq!(call(&mut ctx, &MODULE, "is_gflag", &["2"], &mp), -1);
    assert!(fixed(&MODULE, "set_gflag", &["32"], &mp).is_err());
}

#[test]
fn locks_need_a_lock_set() {
    let mut h = harness(&ModParams::default());
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "lock", &["k"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "trylock", &["k"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "unlock", &["k"]), -1);
}

#[test]
fn locks_exclude_until_unlocked() {
    let mp = params(&[("lock_set_size", ParamValue::Int(4))]);
    let s = for_tests(&mp);
    assert_eq!(s.locks.len(), 16);
    assert!(s.lock(b"Alice", Duration::ZERO));
    // Keys are hashed without case: the same lock.
    assert!(!s.lock(b"alice", Duration::ZERO));
    assert!(!s.lock(b"alice", Duration::from_millis(20)));
    assert!(s.unlock(b"ALICE"));
    assert!(s.lock(b"alice", Duration::ZERO));
    let mut h = Harness::new(INVITE);
    h.env.services.insert(s);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "trylock", &["alice"]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "unlock", &["alice"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "trylock", &["alice"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "unlock", &["alice"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "lock", &["alice"]), 1);
}

#[test]
fn config_hash() {
    let mp = params(&[("hash_file", ParamValue::Str("/etc/x.cfg".into()))]);
    let s = Cfgutils::from_modparams(&mp, 1, |f| {
        assert_eq!(f, "/etc/x.cfg");
        Ok(b"abc".to_vec())
    })
    .unwrap();
    assert_eq!(s.config_hash(), Some("900150983cd24fb0d6963f7d28e17f72"));
    assert_eq!(s.check_config_hash(|_| Ok(b"abc".to_vec())), Ok(true));
    assert_eq!(s.check_config_hash(|_| Ok(b"abd".to_vec())), Ok(false));
    assert!(s
        .check_config_hash(|_| Err(std::io::ErrorKind::NotFound.into()))
        .is_err());
    let none = for_tests(&ModParams::default());
    assert_eq!(none.config_hash(), None);
    assert!(none.check_config_hash(|_| Ok(vec![])).is_err());
    assert!(
        Cfgutils::from_modparams(&mp, 1, |_| Err(std::io::ErrorKind::NotFound.into())).is_err()
    );
}

#[test]
fn sleeping_is_bounded_and_returns_true() {
    let mut h = harness(&ModParams::default());
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "usleep", &["1000"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "sleep", &["0"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "usleep", &["-5"]), 1);
    assert_eq!(run(&mut ctx, &MODULE, "sleep", &["x"]), -1);
}

#[test]
fn without_state_functions_fail() {
    let mut h = Harness::new(INVITE);
    let mut ctx = h.ctx();
    assert_eq!(run(&mut ctx, &MODULE, "rand_event", &[]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "rand_get_prob", &[]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "abort", &[]), -1);
    assert_eq!(run(&mut ctx, &MODULE, "pkg_status", &[]), 1);
}

#[test]
fn every_route() {
    assert!(MODULE.functions.iter().all(|f| f.routes == RouteMask::ANY));
}

/// Compiles `text` (cfgutils and sl loaded) and runs request_route on an
/// INVITE; what was sent.
fn engine_run(text: &str) -> Vec<String> {
    use crate::modules::core::Engine;
    use crate::modules::testutil::{env, some_instant, LOCAL, SOURCE};
    use crate::script::compile::compile;
    use crate::script::{parse_str, MemoryFiles, Options};
    use crate::sip::{Inbound, Proto, Transmit};
    let text = format!("loadmodule \"sl.so\"\nloadmodule \"cfgutils.so\"\n{text}");
    let files = MemoryFiles::new();
    let cfg = parse_str("t.cfg", &text, &Options::with_files(&files))
        .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let compiled = compile(&cfg).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let mut env = env();
    env.services.insert(for_tests(&compiled.modparams));
    let mut engine = Engine::new(Arc::new(env), Arc::new(compiled.program));
    let pkt = Inbound {
        data: bytes::Bytes::from(INVITE.replace('\n', "\r\n")),
        src: SOURCE.parse().expect("address"),
        local: LOCAL.parse().expect("address"),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    let mut out: Vec<Transmit> = Vec::new();
    engine.on_inbound(pkt, some_instant(), &mut out);
    out.iter()
        .map(|t| String::from_utf8_lossy(&t.data).replace("\r\n", "\n"))
        .collect()
}

#[test]
fn route_if_exists_runs_the_route_and_returns_its_code() {
    let sent = engine_run(
        r#"request_route {
    route_if_exists("missing");
    $var(a) = $rc;
    route_if_exists("five");
    $var(b) = $rc;
    if (check_route_exists("five") && !check_route_exists("nope")) { $var(c) = "yes"; }
    $var(r) = $RANDOM;
    if ($var(r) >= 0) { $var(d) = "num"; }
    sl_send_reply("200", "a=$var(a) b=$var(b) c=$var(c) d=$var(d) p=$var(p)");
}
route[five] { $var(p) = "ran"; return 5; }
"#,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].starts_with("SIP/2.0 200 a=-1 b=5 c=yes d=num p=ran\n"),
        "{}",
        sent[0]
    );
}

#[test]
fn route_if_exists_ending_the_script_stops_the_caller() {
    let sent = engine_run(
        r#"request_route {
    route_if_exists("stop");
    sl_send_reply("500", "not reached");
}
route[stop] { sl_send_reply("200", "stopped"); exit; }
"#,
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].starts_with("SIP/2.0 200 stopped\n"), "{}", sent[0]);
}

#[test]
fn rpc_methods() {
    use crate::ctl::methods::Ctl;
    use crate::ctl::rpc::{call as rpc, Params};
    use serde_json::json;
    let mut ctl = Ctl::for_tests();
    let mp = params(&[("hash_file", ParamValue::Str("/nonexistent/x.cfg".into()))]);
    let s = Arc::new(Cfgutils::from_modparams(&mp, 1, |_| Ok(b"abc".to_vec())).unwrap());
    ctl.services.insert(s.clone());
    let none = Params::new(vec![]);
    assert_eq!(
        rpc(&ctl, "cfgutils.rand_get_prob", &none).unwrap(),
        json!("actual probability: 10 percent")
    );
    rpc(
        &ctl,
        "cfgutils.rand_set_prob",
        &Params::new(vec![json!(42)]),
    )
    .unwrap();
    assert_eq!(s.probability(), 42);
    assert!(rpc(
        &ctl,
        "cfgutils.rand_set_prob",
        &Params::new(vec![json!(101)])
    )
    .is_err());
    rpc(&ctl, "cfgutils.rand_reset_prob", &none).unwrap();
    assert_eq!(s.probability(), 10);
    assert_eq!(
        rpc(&ctl, "cfgutils.get_config_hash", &none).unwrap(),
        json!("900150983cd24fb0d6963f7d28e17f72")
    );
    // The file is gone now: an error, as Kamailio's "Failed to hash the file".
    assert!(rpc(&ctl, "cfgutils.check_config_hash", &none).is_err());
    rpc(&ctl, "cfgutils.set_gflag", &Params::new(vec![json!(5)])).unwrap();
    assert_eq!(
        rpc(&ctl, "cfgutils.get_gflags", &none).unwrap(),
        json!("0x5 (5)")
    );
    assert_eq!(
        rpc(&ctl, "cfgutils.is_gflag", &Params::new(vec![json!(4)])).unwrap(),
        json!("TRUE")
    );
    rpc(&ctl, "cfgutils.reset_gflag", &Params::new(vec![json!("4")])).unwrap();
    assert_eq!(
        rpc(&ctl, "cfgutils.is_gflag", &Params::new(vec![json!(5)])).unwrap(),
        json!("FALSE")
    );
}
