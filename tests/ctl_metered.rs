//! The runtime's metering of an engine, on virtual time: what a round
//! records (counters by method and class, arrival → dispatch latency, script
//! time per route with a fake clock), with no socket and no sleep.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringsip::ctl::metrics::{key_name, Metrics};
use ringsip::modules::core::engine::RouteTimer;
use ringsip::modules::core::Engine;
use ringsip::runtime::{Handler, Metered};
use ringsip::script::compile::compile;
use ringsip::script::ctx::{Env, SocketInfo};
use ringsip::script::{self as script_lang, MemoryFiles, Options};
use ringsip::sip::{Inbound, Proto};

const PROXY: &str = "127.0.0.1:5060";

const CONFIG: &str = r#"
loadmodule "sl.so"
loadmodule "textops.so"
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
    if (is_method("PUBLISH")) { drop; }
    forward("127.0.0.3", 5080);
}
"#;

thread_local! {
    /// Readings of the fake clock on this test's thread.
    static TICKS: Cell<u64> = const { Cell::new(0) };
}

/// A clock that moves 3 µs per reading, from a fixed origin.
fn fake_clock() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    let n = TICKS.with(|t| {
        t.set(t.get() + 1);
        t.get()
    });
    origin + Duration::from_micros(3 * n)
}

fn metered(metrics: &Arc<Metrics>) -> Metered {
    let files = MemoryFiles::default();
    let config = script_lang::parse_str("test.cfg", CONFIG, &Options::with_files(&files))
        .expect("config parses");
    let compiled = compile(&config).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let env = Env {
        sockets: vec![SocketInfo {
            proto: Proto::Udp,
            addr: PROXY.parse().unwrap(),
            advertise: None,
        }],
        ..Env::default()
    };
    let engine =
        Engine::new(Arc::new(env), Arc::new(compiled.program)).with_route_timer(RouteTimer {
            metrics: metrics.clone(),
            core: 1,
            clock: fake_clock,
        });
    Metered::new(engine, metrics.clone(), 1)
}

fn request(method: &str, n: u32) -> Inbound {
    let text = format!(
        "{method} sip:bob@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-m{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=t{n}\r\nTo: <sip:bob@x>\r\n\
         Call-ID: metered-{n}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    Inbound {
        data: Bytes::from(text),
        src: "127.0.0.2:5070".parse().unwrap(),
        local: PROXY.parse().unwrap(),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    }
}

fn reply_200(n: u32) -> Inbound {
    let text = format!(
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-p{n}\r\n\
         Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-m{n}\r\n\
         From: <sip:a@x>;tag=t{n}\r\nTo: <sip:bob@x>;tag=b\r\n\
         Call-ID: metered-{n}\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    );
    Inbound {
        data: Bytes::from(text),
        src: "127.0.0.3:5080".parse().unwrap(),
        local: PROXY.parse().unwrap(),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    }
}

fn counter(m: &Metrics, name: &str) -> u64 {
    m.counters()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no counter {name}"))
        .1
}

#[test]
fn a_round_records_counters_latency_and_script_time() {
    let metrics = Arc::new(Metrics::new(2, vec!["request_route".into()]));
    metrics.script_sample.store(1, Ordering::Relaxed);
    let mut h = metered(&metrics);
    let t0 = Instant::now();
    let mut out = Vec::new();

    // Round 1: three MESSAGEs forwarded, one OPTIONS answered, one PUBLISH dropped.
    for n in 0..3 {
        h.on_inbound(request("MESSAGE", n), t0, &mut out);
    }
    h.on_inbound(request("OPTIONS", 9), t0, &mut out);
    h.on_inbound(request("PUBLISH", 10), t0, &mut out);
    h.on_dispatch(t0 + Duration::from_micros(40));
    assert_eq!(out.len(), 4);
    out.clear();

    // Round 2: a reply relayed back by Via, 25 µs.
    let t1 = t0 + Duration::from_millis(1);
    h.on_inbound(reply_200(1), t1, &mut out);
    h.on_dispatch(t1 + Duration::from_micros(25));
    assert_eq!(out.len(), 1);

    // An idle round records nothing.
    h.on_dispatch(t1 + Duration::from_millis(5));

    assert_eq!(counter(&metrics, "rcv_requests"), 5);
    assert_eq!(counter(&metrics, "rcv_requests_message"), 3);
    assert_eq!(counter(&metrics, "rcv_requests_publish"), 1);
    assert_eq!(counter(&metrics, "fwd_requests_message"), 3);
    assert_eq!(counter(&metrics, "local_replies_2xx"), 1);
    assert_eq!(counter(&metrics, "rcv_replies_2xx"), 1);
    assert_eq!(counter(&metrics, "fwd_replies_2xx"), 1);
    assert_eq!(counter(&metrics, "silent_messages"), 1);

    let l = metrics.latency();
    let by = |name: &str| {
        let k = (0..l.by_key.len()).find(|k| key_name(*k) == name).unwrap();
        &l.by_key[k]
    };
    assert_eq!(by("MESSAGE").count(), 3);
    let p50 = by("MESSAGE").quantile(0.5).unwrap();
    assert!((39_000..=41_000).contains(&p50), "{p50}");
    assert_eq!(by("MESSAGE").max, 40_000);
    assert_eq!(by("OPTIONS").count(), 1);
    assert_eq!(by("PUBLISH").count(), 0, "nothing sent, no latency");
    assert_eq!(by("2xx").count(), 1);
    assert_eq!(by("2xx").max, 25_000);
    assert_eq!(l.total().count(), 5);

    // Every request ran request_route, timed by the fake clock: 3 µs per run.
    let script = &l.by_route[0];
    assert_eq!(script.count(), 5);
    assert_eq!(script.max, 3_000);
    // Recorded on core 1 only.
    assert_eq!(
        metrics.cores()[0]
            .latency
            .iter()
            .map(|h| h.snapshot().count())
            .sum::<u64>(),
        0
    );
}

#[test]
fn script_sampling_times_one_message_in_n() {
    let metrics = Arc::new(Metrics::new(1, vec!["request_route".into()]));
    metrics.script_sample.store(4, Ordering::Relaxed);
    let mut h = metered(&metrics);
    let t0 = Instant::now();
    let mut out = Vec::new();
    // Replies in between run no route: they must not skew the sampling.
    for n in 0..20 {
        h.on_inbound(request("OPTIONS", n), t0, &mut out);
        h.on_inbound(reply_200(n), t0, &mut out);
    }
    h.on_dispatch(t0 + Duration::from_micros(10));
    assert_eq!(metrics.latency().by_route[0].count(), 5);
    metrics.script_sample.store(0, Ordering::Relaxed);
    for n in 20..40 {
        h.on_inbound(request("OPTIONS", n), t0, &mut out);
    }
    assert_eq!(metrics.latency().by_route[0].count(), 5, "0 turns it off");
}

#[test]
fn a_stamped_arrival_counts_from_the_kernel_not_the_round() {
    let metrics = Arc::new(Metrics::new(1, vec!["request_route".into()]));
    let mut h = metered(&metrics);
    let t0 = Instant::now() + Duration::from_secs(1);
    let mut out = Vec::new();

    // One round: a MESSAGE that waited 300 µs in the kernel before the round
    // started, one with no stamp, an OPTIONS stamped after the round's start
    // (delivered late in the round), a PUBLISH that waited but sent nothing.
    let mut waited = request("MESSAGE", 1);
    waited.arrived = Some(t0 - Duration::from_micros(300));
    h.on_inbound(waited, t0, &mut out);
    h.on_inbound(request("MESSAGE", 2), t0, &mut out);
    let mut late = request("OPTIONS", 3);
    late.arrived = Some(t0 + Duration::from_micros(30));
    h.on_inbound(late, t0, &mut out);
    let mut dropped = request("PUBLISH", 4);
    dropped.arrived = Some(t0 - Duration::from_millis(5));
    h.on_inbound(dropped, t0, &mut out);
    h.on_dispatch(t0 + Duration::from_micros(40));
    assert_eq!(out.len(), 3);
    out.clear();

    // Next round: a reply that waited 2 ms behind a busy worker.
    let t1 = t0 + Duration::from_millis(3);
    let mut reply = reply_200(1);
    reply.arrived = Some(t1 - Duration::from_millis(2));
    h.on_inbound(reply, t1, &mut out);
    h.on_dispatch(t1 + Duration::from_micros(20));

    let l = metrics.latency();
    let by = |name: &str| {
        let k = (0..l.by_key.len()).find(|k| key_name(*k) == name).unwrap();
        l.by_key[k].clone()
    };
    let message = by("MESSAGE");
    assert_eq!(message.count(), 2);
    assert_eq!(message.max, 340_000, "300 µs waiting + 40 µs in the round");
    let low = message.quantile(0.0).unwrap();
    assert!(
        (39_000..=41_000).contains(&low),
        "unstamped: round only, {low}"
    );
    assert_eq!(by("OPTIONS").max, 10_000, "stamped after the round's start");
    assert_eq!(by("PUBLISH").count(), 0);
    assert_eq!(by("2xx").count(), 1);
    assert_eq!(by("2xx").max, 2_020_000);
}
