//! Host names as next hops, resolved through the shared resolver (sans-IO:
//! the engine with a table standing in for the system resolver, virtual time).

mod common;

use common::engine::{engine_with, inbound};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringsip::modules::core::dns::{DnsConfig, Found, Lookup, Resolver, Srv};
use ringsip::modules::core::Engine;
use ringsip::sip::Transmit;

/// An engine whose resolver answers from the test's table.
fn engine(cfg: &str, asked: Arc<AtomicUsize>) -> Engine {
    engine_with(cfg, |env, _| {
        let table = Table {
            names: HashMap::from([
                ("gw.example.com", "127.0.0.3".parse().unwrap()),
                ("caller.example.com", "127.0.0.2".parse().unwrap()),
            ]),
            asked,
        };
        env.services
            .insert(Arc::new(Resolver::new(Box::new(table))));
    })
}

const CALLER: &str = "127.0.0.2:5070";

/// Names this test knows, and how often it was asked.
struct Table {
    names: HashMap<&'static str, IpAddr>,
    asked: Arc<AtomicUsize>,
}

impl Lookup for Table {
    fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        self.asked.fetch_add(1, Ordering::Relaxed);
        match self.names.get(name) {
            Some(ip) => Ok(vec![*ip]),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "unknown name")),
        }
    }
}

fn request(method: &str, ruri: &str, n: u32) -> String {
    format!(
        "{method} {ruri} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKdns{n}
Max-Forwards: 70
From: <sip:alice@example.com>;tag=a{n}
To: <sip:bob@example.com>
Call-ID: dns-{n}@127.0.0.2
CSeq: 1 {method}
Content-Length: 0

"
    )
}

fn first_line(t: &Transmit) -> String {
    let text = String::from_utf8_lossy(&t.data);
    text.lines().next().unwrap_or("").to_string()
}

const STATEFUL: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
request_route {
    if ($rU == "named") { $du = "sip:GW.example.com:5080"; }
    if (!t_relay()) { sl_reply_error(); }
}
"#;

#[test]
fn t_relay_resolves_a_named_next_hop_and_caches_it() {
    let asked = Arc::new(AtomicUsize::new(0));
    let mut e = engine(STATEFUL, asked.clone());
    let now = Instant::now();
    let mut out = Vec::new();
    // $du with a name and a port; then the Request-URI itself with a name.
    e.on_inbound(
        inbound(
            CALLER,
            &request("OPTIONS", "sip:named@proxy.example.com", 1),
        ),
        now,
        &mut out,
    );
    e.on_inbound(
        inbound(
            CALLER,
            &request("OPTIONS", "sip:bob@gw.example.com:5090", 2),
        ),
        now,
        &mut out,
    );
    let dsts: Vec<SocketAddr> = out.iter().map(|t| t.dst).collect();
    assert_eq!(
        dsts,
        [
            "127.0.0.3:5080".parse().unwrap(),
            "127.0.0.3:5090".parse().unwrap()
        ],
        "{:?}",
        out.iter().map(first_line).collect::<Vec<_>>()
    );
    assert_eq!(
        asked.load(Ordering::Relaxed),
        1,
        "the second lookup came from the cache"
    );
    // Without a port: the transport's default.
    out.clear();
    e.on_inbound(
        inbound(CALLER, &request("OPTIONS", "sip:bob@gw.example.com", 3)),
        now,
        &mut out,
    );
    assert_eq!(out[0].dst, "127.0.0.3:5060".parse::<SocketAddr>().unwrap());
}

#[test]
fn an_unresolvable_name_is_478_and_is_not_asked_again_within_the_negative_ttl() {
    let asked = Arc::new(AtomicUsize::new(0));
    let mut e = engine(STATEFUL, asked.clone());
    let now = Instant::now();
    let mut out = Vec::new();
    e.on_inbound(
        inbound(
            CALLER,
            &request("OPTIONS", "sip:bob@nowhere.example.com", 1),
        ),
        now,
        &mut out,
    );
    assert_eq!(asked.load(Ordering::Relaxed), 1, "asked once");
    // tm answers its own transaction (478/TM), then the script's sl_reply_error (478/SL), as Kamailio does.
    let lines: Vec<String> = out.iter().map(first_line).collect();
    assert!(
        !out.is_empty() && lines.iter().all(|l| l.starts_with("SIP/2.0 478 ")),
        "{lines:?}"
    );
    assert!(out
        .iter()
        .all(|t| t.dst == CALLER.parse::<SocketAddr>().unwrap()));
    out.clear();
    let later = now + Duration::from_secs(30);
    e.on_inbound(
        inbound(
            CALLER,
            &request("OPTIONS", "sip:bob@nowhere.example.com", 2),
        ),
        later,
        &mut out,
    );
    assert!(first_line(&out[0]).starts_with("SIP/2.0 478 "));
    assert_eq!(asked.load(Ordering::Relaxed), 1);
}

#[test]
fn forward_to_a_named_host_and_the_reply_back_to_a_named_via() {
    // forward() to a host name, and the reply back to a caller whose Via
    // names its host: the reply goes by the received the proxy added.
    let cfg = r#"
request_route { forward("gw.example.com", 5080); }
onreply_route { }
"#;
    let asked = Arc::new(AtomicUsize::new(0));
    let mut e = engine(cfg, asked);
    let now = Instant::now();
    let mut out = Vec::new();
    let invite = request("OPTIONS", "sip:bob@example.com", 7).replace(
        "Via: SIP/2.0/UDP 127.0.0.2:5070",
        "Via: SIP/2.0/UDP caller.example.com:5070",
    );
    e.on_inbound(inbound(CALLER, &invite), now, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dst, "127.0.0.3:5080".parse::<SocketAddr>().unwrap());
    let forwarded = String::from_utf8_lossy(&out[0].data).into_owned();
    let caller_via = forwarded
        .lines()
        .find(|l| l.contains("caller.example.com"))
        .unwrap()
        .to_string();
    let mut reply = String::from("SIP/2.0 200 OK\r\n");
    for line in forwarded.lines().filter(|l| l.starts_with("Via:")) {
        reply.push_str(line);
        reply.push_str("\r\n");
    }
    for line in forwarded.lines().filter(|l| {
        ["From:", "To:", "Call-ID:", "CSeq:"]
            .iter()
            .any(|h| l.starts_with(h))
    }) {
        reply.push_str(line);
        reply.push_str("\r\n");
    }
    reply.push_str("Content-Length: 0\r\n\r\n");
    out.clear();
    e.on_inbound(
        inbound("127.0.0.3:5080", &reply.replace("\r\n", "\n")),
        now,
        &mut out,
    );
    // §18.2.1: a named sent-by always gets received, and the reply follows it.
    assert!(caller_via.contains(";received=127.0.0.2"), "{caller_via}");
    assert_eq!(out.len(), 1, "{caller_via}");
    assert_eq!(out[0].dst, CALLER.parse::<SocketAddr>().unwrap());
}

/// SRV for `_sip._udp.srv.example.com`: three targets by priority.
struct SrvZone;

impl Lookup for SrvZone {
    fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        let ip = match name {
            "t1.example.com" => "127.0.0.11",
            "t2.example.com" => "127.0.0.12",
            "t3.example.com" => "127.0.0.13",
            _ => return Ok(Vec::new()),
        };
        Ok(vec![ip.parse().unwrap()])
    }

    fn srv(&self, name: &str) -> io::Result<Found<Srv>> {
        let srv = |priority, port, target: &str| Srv {
            priority,
            weight: 0,
            port,
            target: target.into(),
        };
        let records = match name {
            "_sip._udp.srv.example.com" => vec![
                srv(30, 5073, "t3.example.com"),
                srv(10, 5071, "t1.example.com"),
                srv(20, 5072, "t2.example.com"),
            ],
            _ => Vec::new(),
        };
        Ok(Found {
            records,
            ttl: Some(60),
        })
    }
}

/// The response `status` to a relayed request (its Vias echoed).
fn answer(relayed: &str, status: &str) -> String {
    let vias: String = relayed
        .lines()
        .filter(|l| l.starts_with("Via:"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "SIP/2.0 {status}\n{vias}From: <sip:alice@example.com>;tag=a9\n\
         To: <sip:bob@example.com>;tag=far\nCall-ID: dns-9@127.0.0.2\nCSeq: 1 INVITE\n\
         Content-Length: 0\n\n"
    )
}

fn failover_engine(failover: bool) -> Engine {
    engine_with(
        "loadmodule \"tm.so\"\nloadmodule \"sl.so\"\n\
         modparam(\"tm\", \"fr_inv_timer\", 2000)\nmodparam(\"tm\", \"fr_timer\", 2000)\n\
         request_route { if (!t_relay()) { sl_reply_error(); } }\n",
        |env, _| {
            let r = Resolver::new(Box::new(SrvZone)).config(DnsConfig {
                failover,
                ..DnsConfig::default()
            });
            env.services.insert(Arc::new(r));
        },
    )
}

fn invites_to(out: &[Transmit], dst: &str) -> Vec<String> {
    let dst: SocketAddr = dst.parse().unwrap();
    out.iter()
        .filter(|t| t.dst == dst && t.data.starts_with(b"INVITE"))
        .map(|t| String::from_utf8_lossy(&t.data).into_owned())
        .collect()
}

/// An INVITE to `sip:bob@srv.example.com` through a failover engine (or
/// not): the engine, the start time and what it sent.
fn call_srv_name(failover: bool) -> (Engine, Instant, Vec<Transmit>) {
    let mut e = failover_engine(failover);
    let t0 = Instant::now();
    let mut out = Vec::new();
    e.on_inbound(
        inbound(CALLER, &request("INVITE", "sip:bob@srv.example.com", 9)),
        t0,
        &mut out,
    );
    (e, t0, out)
}

#[test]
fn dns_failover_walks_the_srv_targets_in_priority_order() {
    let (mut e, t0, mut out) = call_srv_name(true);
    let first = invites_to(&out, "127.0.0.11:5071")
        .pop()
        .expect("priority 10 first");
    assert!(invites_to(&out, "127.0.0.12:5072").is_empty());
    // 503 from the first: the second at once, on a branch of its own.
    out.clear();
    e.on_inbound(
        inbound(
            "127.0.0.11:5071",
            &answer(&first, "503 Service Unavailable"),
        ),
        t0,
        &mut out,
    );
    let second = invites_to(&out, "127.0.0.12:5072")
        .pop()
        .expect("then priority 20");
    assert!(
        !out.iter()
            .any(|t| t.dst == CALLER.parse().unwrap() && t.data.starts_with(b"SIP/2.0 5")),
        "nothing final upstream yet"
    );
    let branch = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("Via:"))
            .and_then(|l| l.split("branch=").nth(1))
            .map(str::to_owned)
    };
    assert_ne!(branch(&first), branch(&second));
    // Silence from the second: after fr_inv_timer, the third.
    out.clear();
    let mut now = t0;
    while invites_to(&out, "127.0.0.13:5073").is_empty() && now < t0 + Duration::from_secs(10) {
        now += Duration::from_millis(100);
        e.on_timer(now, &mut out);
    }
    assert!(
        now >= t0 + Duration::from_secs(2),
        "not before fr_inv_timer"
    );
    let third = invites_to(&out, "127.0.0.13:5073")
        .pop()
        .expect("then priority 30");
    // 503 from the last: nothing left; of 503, 408 (the silent one) and
    // 503 the 4xx wins (RFC 3261 §16.7 step 6), so the caller gets the 408.
    out.clear();
    e.on_inbound(
        inbound(
            "127.0.0.13:5073",
            &answer(&third, "503 Service Unavailable"),
        ),
        now,
        &mut out,
    );
    let upstream: Vec<String> = out
        .iter()
        .filter(|t| t.dst == CALLER.parse().unwrap())
        .map(first_line)
        .collect();
    assert!(
        upstream.iter().any(|l| l.starts_with("SIP/2.0 408")),
        "{upstream:?}"
    );
}

#[test]
fn without_dns_failover_the_503_is_final() {
    let (mut e, t0, mut out) = call_srv_name(false);
    let first = invites_to(&out, "127.0.0.11:5071")
        .pop()
        .expect("priority 10 first");
    out.clear();
    e.on_inbound(
        inbound(
            "127.0.0.11:5071",
            &answer(&first, "503 Service Unavailable"),
        ),
        t0,
        &mut out,
    );
    assert!(out.iter().all(|t| !t.data.starts_with(b"INVITE")));
    assert!(out
        .iter()
        .any(|t| t.dst == CALLER.parse().unwrap() && t.data.starts_with(b"SIP/2.0 500")));
}

#[test]
fn an_address_literal_never_asks_the_resolver() {
    let asked = Arc::new(AtomicUsize::new(0));
    let mut e = engine(STATEFUL, asked.clone());
    let mut out = Vec::new();
    e.on_inbound(
        inbound(CALLER, &request("INVITE", "sip:bob@127.0.0.3", 10)),
        Instant::now(),
        &mut out,
    );
    assert_eq!(out[out.len() - 1].dst, "127.0.0.3:5060".parse().unwrap());
    assert_eq!(asked.load(Ordering::Relaxed), 0);
}
