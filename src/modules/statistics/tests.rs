use std::sync::Arc;

use super::*;
use crate::modules::testutil::{call, fixed, Harness, INVITE};

fn params() -> ModParams {
    let mut p = ModParams::default();
    p.push("statistics", "variable", ParamValue::Str("calls".into()));
    p.push(
        "statistics",
        "variable",
        ParamValue::Str("seen/no_reset".into()),
    );
    p
}

fn harness(mp: &ModParams) -> (Harness, Arc<Statistics>) {
    let st = Arc::new(Statistics::from_modparams(mp).unwrap());
    let mut h = Harness::new(INVITE);
    h.env.services.insert(st.clone());
    (h, st)
}

#[test]
fn declared_variables_and_flags() {
    assert_eq!(
        declared(&params()).unwrap(),
        vec![("calls".to_string(), false), ("seen".to_string(), true)]
    );
    let mut bad = ModParams::default();
    bad.push(
        "statistics",
        "variable",
        ParamValue::Str("x/sometimes".into()),
    );
    assert!(declared(&bad).unwrap_err().contains("unsupported flag"));
}

#[test]
fn start_up_checks() {
    let p = params();
    assert!(fixed(&MODULE, "update_stat", &["nope", "1"], &p)
        .unwrap_err()
        .contains("not defined"));
    assert!(fixed(&MODULE, "update_stat", &["calls", "0"], &p)
        .unwrap_err()
        .contains("0"));
    assert!(fixed(&MODULE, "update_stat", &["calls", "x"], &p).is_err());
    assert!(fixed(&MODULE, "reset_stat", &["nope"], &p).is_err());
    assert!(fixed(&MODULE, "update_stat", &["script:calls", "-2"], &p).is_ok());
    let reset = MODULE.function("reset_stat").unwrap();
    assert!(!reset
        .routes
        .allows(crate::script::registry::RouteType::Event));
}

#[test]
fn update_and_reset() {
    let p = params();
    let (mut h, st) = harness(&p);
    let mut ctx = h.ctx();
    assert_eq!(
        call(&mut ctx, &MODULE, "update_stat", &["calls", "3"], &p),
        1
    );
    assert_eq!(
        call(&mut ctx, &MODULE, "update_stat", &["calls", "-1"], &p),
        1
    );
    assert_eq!(
        call(&mut ctx, &MODULE, "update_stat", &["seen", "+5"], &p),
        1
    );
    assert_eq!(st.value(b"calls"), Some(2));
    assert_eq!(st.value(b"script:seen"), Some(5));
    assert_eq!(call(&mut ctx, &MODULE, "reset_stat", &["calls"], &p), 1);
    assert_eq!(call(&mut ctx, &MODULE, "reset_stat", &["seen"], &p), 1);
    assert_eq!(st.value(b"calls"), Some(0));
    // no_reset keeps its value.
    assert_eq!(st.value(b"seen"), Some(5));
    assert_eq!(st.value(b"other"), None);
}

#[test]
fn names_and_numbers_from_variables() {
    let p = params();
    let (mut h, st) = harness(&p);
    let mut ctx = h.ctx();
    let du = || {
        Arg::Pv(crate::script::pvkind::PvRef::new(
            crate::script::pvkind::PvKind::Du,
        ))
    };
    ctx.dst_uri = Some("calls".into());
    let mut args = Args(vec![du(), Arg::Str("4".into())]);
    fixup_update(&mut args, &p).unwrap();
    assert_eq!(update_stat(&mut ctx, &args), 1);
    assert_eq!(st.value(b"calls"), Some(4));
    ctx.dst_uri = Some("unknown".into());
    assert_eq!(update_stat(&mut ctx, &args), -1);
    let mut args = Args(vec![Arg::Str("calls".into()), du()]);
    fixup_update(&mut args, &p).unwrap();
    ctx.dst_uri = Some("-3".into());
    assert_eq!(update_stat(&mut ctx, &args), 1);
    assert_eq!(st.value(b"calls"), Some(1));
    ctx.dst_uri = Some("x".into());
    assert_eq!(update_stat(&mut ctx, &args), -1);
}

#[test]
fn stat_variable_and_rpc_listing() {
    use crate::modules::core::Engine;
    use crate::modules::testutil::{env, some_instant, LOCAL, SOURCE};
    use crate::script::compile::compile;
    use crate::script::{parse_str, MemoryFiles, Options};
    use crate::sip::{Inbound, Proto, Transmit};
    let text = r#"loadmodule "sl.so"
loadmodule "statistics.so"
modparam("statistics", "variable", "calls")
request_route {
    update_stat("calls", "7");
    update_stat("calls", "-2");
    sl_send_reply("200", "calls=$stat(calls) other=$stat(nope)");
}
"#;
    let files = MemoryFiles::new();
    let cfg = parse_str("t.cfg", text, &Options::with_files(&files))
        .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let compiled = compile(&cfg).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let st = Arc::new(Statistics::from_modparams(&compiled.modparams).unwrap());
    let mut env = env();
    env.services.insert(st.clone());
    let mut engine = Engine::new(Arc::new(env), Arc::new(compiled.program));
    let pkt = Inbound {
        data: bytes::Bytes::from(INVITE.replace('\n', "\r\n")),
        src: SOURCE.parse().unwrap(),
        local: LOCAL.parse().unwrap(),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    let mut out: Vec<Transmit> = Vec::new();
    engine.on_inbound(pkt, some_instant(), &mut out);
    let reply = String::from_utf8_lossy(&out[0].data).into_owned();
    assert!(
        reply.starts_with("SIP/2.0 200 calls=5 other=<null>\r\n"),
        "{reply}"
    );

    let mut ctl = crate::ctl::methods::Ctl::for_tests();
    ctl.services.insert(st);
    let v = crate::ctl::rpc::call(
        &ctl,
        "stats.get_statistics",
        &crate::ctl::rpc::Params::new(vec![serde_json::json!("script:")]),
    )
    .unwrap();
    assert_eq!(v, serde_json::json!(["script:calls = 5"]));
}
