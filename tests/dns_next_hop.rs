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

use ringsip::modules::core::dns::{Lookup, Resolver};
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
