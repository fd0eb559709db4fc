//! rtimer against the real binary: a route on a timer runs once per interval
//! for the whole proxy (two workers), as a request route on Kamailio's made-up
//! OPTIONS; a timer naming a route the script lacks is a start-up error at
//! its line.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Proxy, RawUa};

#[test]
fn a_timer_route_runs_once_per_interval_for_all_workers() {
    let sink = RawUa::bind();
    let config = format!(
        r#"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "corex.so"
loadmodule "rtimer.so"
modparam("rtimer", "timer", "name=tick;interval=200000u;mode=1;")
modparam("rtimer", "exec", "timer=tick;route=TICK")
modparam("rtimer", "timer", "name=slow;interval=60")
modparam("rtimer", "exec", "timer=slow;route=NEVER")
request_route {{
    sl_send_reply("200", "OK");
}}
route[TICK] {{
    $shv(n) = $shv(n) + 1;
    send_data("sip:{sink}", "tick $shv(n) $rm $ru $si:$sp $ci $fu");
}}
route[NEVER] {{
    send_data("sip:{sink}", "never");
}}
"#,
        sink = sink.addr()
    );
    let proxy = Proxy::start(&config, &[]);
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_millis(1500) {
        if let Some((bytes, _)) = sink.recv(Duration::from_millis(300)) {
            seen.push(String::from_utf8(bytes).unwrap());
        }
    }
    let elapsed = started.elapsed();
    drop(proxy);
    assert!(!seen.iter().any(|s| s == "never"), "{seen:?}");
    for s in &seen {
        assert!(
            s.ends_with(" OPTIONS sip:you@kamailio.org 127.0.0.1:5060 123 sip:you@kamailio.org"),
            "the route runs on Kamailio's faked message: {s}"
        );
    }
    let counts: Vec<i64> = seen
        .iter()
        .map(|s| s.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    let distinct: BTreeSet<i64> = counts.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        counts.len(),
        "one run per interval, not one per worker: {seen:?}"
    );
    // Every 200 ms over about 1.5 s (the first run one interval after start):
    // at most one more than fits, and a loaded machine may lose a few.
    let most = (elapsed.as_millis() / 200) as usize + 2;
    assert!(
        (3..=most).contains(&counts.len()),
        "{} runs in {elapsed:?}: {seen:?}",
        counts.len()
    );
}

#[test]
fn a_timer_route_that_does_not_exist_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.cfg");
    std::fs::write(
        &cfg,
        "loadmodule \"rtimer.so\"\n\
         modparam(\"rtimer\", \"timer\", \"name=t;interval=1\")\n\
         modparam(\"rtimer\", \"exec\", \"timer=t;route=MISSING\")\n\
         request_route { exit; }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringsip"))
        .args(["check", "-f"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("k.cfg:3"), "{err}");
    assert!(err.contains("no route[MISSING]"), "{err}");
}
