//! RFC 3263 server location against the real binary: a fake DNS server on
//! loopback, named through `RINGSIP_RESOLV_CONF`, answers SRV and A for
//! `example.test`; a call to `sip:user@example.test` must reach the SRV
//! target's port, and with `use_dns_failover=yes` a 503 or silence from the
//! first target moves the call to the second (Kamailio 5.6, checked live).

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::net::loopback_ip;
use common::proxy::Proxy;
use common::ua::{RawUa, SipMsg};
use ringsip::modules::core::dns_wire::{self as wire, build_response, parse_query, RData, Srv};

const WAIT: Duration = Duration::from_secs(10);

/// A DNS server on a loopback address answering from a table; it logs the
/// questions it was asked.
struct FakeDns {
    addr: SocketAddr,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

type Zone = HashMap<(String, u16), Vec<RData>>;

impl FakeDns {
    fn start(zone: Zone) -> FakeDns {
        let sock = UdpSocket::bind((loopback_ip(), 0)).expect("bind the fake DNS server");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (asked, stop) = (asked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let Some((id, name, qtype)) = parse_query(&buf[..n]) else {
                        continue;
                    };
                    asked.lock().unwrap().push(format!("{qtype} {name}"));
                    let records = zone.get(&(name.clone(), qtype));
                    let known = zone.keys().any(|(n, _)| *n == name);
                    let answers: Vec<(&str, u32, RData)> = records
                        .into_iter()
                        .flatten()
                        .map(|d| (name.as_str(), 60, d.clone()))
                        .collect();
                    let rcode = if known { 0 } else { wire::RCODE_NXDOMAIN };
                    if let Some(resp) = build_response(id, &name, qtype, rcode, &answers, &[]) {
                        let _ = sock.send_to(&resp, from);
                    }
                }
            })
        };
        FakeDns {
            addr,
            asked,
            stop,
            thread: Some(thread),
        }
    }

    /// A resolv.conf naming this server, written into `dir`.
    fn resolv_conf(&self, dir: &std::path::Path) -> String {
        let path = dir.join("resolv.conf");
        std::fs::write(
            &path,
            format!("nameserver {}\noptions timeout:2 attempts:1\n", self.addr),
        )
        .unwrap();
        path.display().to_string()
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `_sip._udp.example.test`: `first` at priority 10, `second` at 20.
fn zone(first: SocketAddr, second: SocketAddr) -> Zone {
    let srv = |priority, port, target: &str| {
        RData::Srv(Srv {
            priority,
            weight: 50,
            port,
            target: target.into(),
        })
    };
    let a = |addr: SocketAddr| match addr.ip() {
        IpAddr::V4(ip) => RData::A(ip),
        IpAddr::V6(ip) => RData::Aaaa(ip),
    };
    HashMap::from([
        (
            ("_sip._udp.example.test".to_string(), wire::SRV),
            vec![
                srv(20, second.port(), "c.example.test"),
                srv(10, first.port(), "b.example.test"),
            ],
        ),
        (("b.example.test".to_string(), wire::A), vec![a(first)]),
        (("c.example.test".to_string(), wire::A), vec![a(second)]),
    ])
}

fn config(failover: bool, before_relay: &str) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
use_dns_failover={}
loadmodule "sl.so"
loadmodule "tm.so"
modparam("tm", "fr_timer", 1500)
modparam("tm", "fr_inv_timer", 1500)
request_route {{
    {before_relay}
    if (!t_relay()) {{ sl_reply_error(); }}
}}
"#,
        if failover { "yes" } else { "no" }
    )
}

fn response(req: &SipMsg, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for v in req.headers("Via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    for h in ["From", "Call-ID", "CSeq"] {
        out.push_str(&format!("{h}: {}\r\n", req.header(h).unwrap_or("")));
    }
    out.push_str(&format!(
        "To: {};tag=far\r\nContent-Length: 0\r\n\r\n",
        req.header("To").unwrap_or("")
    ));
    out
}

/// The proxy with a fake DNS server for two targets.
fn setup(failover: bool) -> (Proxy, FakeDns, RawUa, RawUa, RawUa) {
    setup_with(failover, "")
}

fn setup_with(failover: bool, before_relay: &str) -> (Proxy, FakeDns, RawUa, RawUa, RawUa) {
    let (first, second) = (RawUa::bind(), RawUa::bind());
    let dns = FakeDns::start(zone(first.addr(), second.addr()));
    let dir = tempfile::tempdir().unwrap();
    let resolv = dns.resolv_conf(dir.path());
    let proxy = Proxy::builder(&config(failover, before_relay))
        .env("RINGSIP_RESOLV_CONF", resolv)
        .ready_when_bound()
        .start();
    // The file is read at start-up.
    drop(dir);
    (proxy, dns, RawUa::bind(), first, second)
}

fn invite(caller: &RawUa, proxy: &Proxy) {
    let req = caller.request("INVITE", "sip:user@example.test", &[], "");
    caller.send(proxy.addr(), req);
}

/// The first request (not a retransmission's ACK) at `ua`, if any comes.
fn next_invite(ua: &RawUa, wait: Duration) -> Option<SipMsg> {
    let deadline = std::time::Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        let m = ua.recv_msg(left)?;
        if m.method() == Some("INVITE") {
            return Some(m);
        }
    }
    None
}

/// The first final response at the caller.
fn final_at(caller: &RawUa) -> u16 {
    caller
        .expect_msg_where(WAIT, |m| m.status().is_some_and(|c| c >= 200))
        .status()
        .unwrap_or(0)
}

#[test]
fn a_name_without_port_reaches_the_srv_target_with_the_lowest_priority() {
    let (proxy, dns, caller, first, second) = setup(false);
    invite(&caller, &proxy);
    let got = next_invite(&first, WAIT).expect("the priority-10 target gets the INVITE");
    assert_eq!(got.request_uri(), Some("sip:user@example.test"));
    first.send(got.source().unwrap(), response(&got, 200, "OK"));
    assert_eq!(final_at(&caller), 200);
    assert!(next_invite(&second, Duration::from_millis(300)).is_none());
    let asked = dns.asked();
    assert_eq!(
        asked.first().map(String::as_str),
        Some("33 _sip._udp.example.test"),
        "SRV first: {asked:?}"
    );
    drop(proxy);
}

#[test]
fn a_503_fails_over_to_the_next_srv_target_with_use_dns_failover() {
    let (proxy, _dns, caller, first, second) = setup(true);
    invite(&caller, &proxy);
    let one = next_invite(&first, WAIT).expect("first target");
    first.send(
        one.source().unwrap(),
        response(&one, 503, "Service Unavailable"),
    );
    let two = next_invite(&second, WAIT).expect("failover to the second target");
    assert_ne!(
        one.header_param("Via", "branch"),
        two.header_param("Via", "branch"),
        "a new branch"
    );
    assert_eq!(two.request_uri(), Some("sip:user@example.test"));
    second.send(two.source().unwrap(), response(&two, 200, "OK"));
    assert_eq!(final_at(&caller), 200);
    drop(proxy);
}

/// A 503 from the first target goes up (as tm's 500, Kamailio's default
/// remapping) and the second target hears nothing.
fn assert_503_is_final(failover: bool, before_relay: &str) {
    let (proxy, _dns, caller, first, second) = setup_with(failover, before_relay);
    invite(&caller, &proxy);
    let one = next_invite(&first, WAIT).expect("first target");
    first.send(
        one.source().unwrap(),
        response(&one, 503, "Service Unavailable"),
    );
    assert_eq!(final_at(&caller), 500);
    assert!(next_invite(&second, Duration::from_millis(500)).is_none());
    drop(proxy);
}

#[test]
fn without_use_dns_failover_a_503_ends_the_call() {
    assert_503_is_final(false, "");
}

#[test]
fn t_set_disable_failover_keeps_a_503_final() {
    assert_503_is_final(true, "t_set_disable_failover(1);");
}

#[test]
fn a_silent_first_target_fails_over_after_fr_timer() {
    let (proxy, _dns, caller, first, second) = setup(true);
    invite(&caller, &proxy);
    next_invite(&first, WAIT).expect("first target");
    let two = next_invite(&second, WAIT).expect("failover after the timeout");
    second.send(two.source().unwrap(), response(&two, 200, "OK"));
    assert_eq!(final_at(&caller), 200);
    drop(proxy);
}

/// Kamailio 5.6 (checked live): a dispatcher destination `sip:example.test`
/// is resolved (A) when the list loads, and `ds_select_dst` sets `$du` to
/// the URI, which t_relay locates by SRV like any other next hop.
#[test]
fn a_dispatcher_destination_without_port_is_located_by_srv() {
    let (first, second) = (RawUa::bind(), RawUa::bind());
    let mut z = zone(first.addr(), second.addr());
    // The name's own address (what a plain A lookup gives): not a target.
    let elsewhere = RawUa::bind();
    if let IpAddr::V4(ip) = elsewhere.addr().ip() {
        z.insert(("example.test".into(), wire::A), vec![RData::A(ip)]);
    }
    let dns = FakeDns::start(z);
    let dir = tempfile::tempdir().unwrap();
    let resolv = dns.resolv_conf(dir.path());
    let list = dir.path().join("dispatcher.list");
    std::fs::write(&list, "1 sip:example.test\n").unwrap();
    let cfg = format!(
        r#"#!KAMAILIO
listen=@LISTEN@
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "dispatcher.so"
modparam("dispatcher", "list_file", "{}")
request_route {{
    if (!ds_select_dst("1", "0")) {{ sl_send_reply("503", "No destination"); exit; }}
    t_relay();
}}
"#,
        list.display()
    );
    let proxy = Proxy::builder(&cfg)
        .env("RINGSIP_RESOLV_CONF", resolv)
        .ready_when_bound()
        .start();
    let caller = RawUa::bind();
    invite(&caller, &proxy);
    let got = next_invite(&first, WAIT).expect("the SRV target gets the INVITE");
    first.send(got.source().unwrap(), response(&got, 200, "OK"));
    assert_eq!(final_at(&caller), 200);
    assert!(next_invite(&elsewhere, Duration::from_millis(300)).is_none());
    drop(proxy);
}

/// `;transport=tcp` asks `_sip._tcp` and the request goes over TCP to that
/// target's port (Kamailio 5.6 the same, checked live).
#[test]
fn transport_tcp_asks_the_tcp_srv_name_and_connects_there() {
    use std::io::Read;
    let target = std::net::TcpListener::bind((loopback_ip(), 0)).unwrap();
    let addr = target.local_addr().unwrap();
    let IpAddr::V4(ip) = addr.ip() else {
        unreachable!("loopback_ip is IPv4")
    };
    let zone = HashMap::from([
        (
            ("_sip._tcp.example.test".to_string(), wire::SRV),
            vec![RData::Srv(Srv {
                priority: 10,
                weight: 0,
                port: addr.port(),
                target: "t.example.test".into(),
            })],
        ),
        (("t.example.test".to_string(), wire::A), vec![RData::A(ip)]),
    ]);
    let dns = FakeDns::start(zone);
    let dir = tempfile::tempdir().unwrap();
    let resolv = dns.resolv_conf(dir.path());
    let cfg = "#!KAMAILIO\nlisten=@LISTEN@\nlisten=tcp:@IP@:@PORT@\n\
               loadmodule \"sl.so\"\nloadmodule \"tm.so\"\n\
               request_route { if (!t_relay()) { sl_reply_error(); } }\n";
    let proxy = Proxy::builder(cfg)
        .env("RINGSIP_RESOLV_CONF", resolv)
        .ready_when_bound()
        .start();
    let caller = RawUa::bind();
    let req = caller.request("OPTIONS", "sip:user@example.test;transport=tcp", &[], "");
    caller.send(proxy.addr(), req);
    // Polled with a deadline: a proxy that never connects fails, not hangs.
    target.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let mut conn = loop {
        match target.accept() {
            Ok((c, _)) => break c,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("no TCP connection to the SRV target: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = conn.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(
        text.starts_with("OPTIONS sip:user@example.test;transport=tcp SIP/2.0"),
        "{text}"
    );
    assert!(text.contains("Via: SIP/2.0/TCP "), "{text}");
    assert!(dns
        .asked()
        .iter()
        .any(|q| q == &format!("{} _sip._tcp.example.test", wire::SRV)));
    drop(proxy);
}
