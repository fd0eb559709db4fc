//! IPv6 on the loopback `::1` against the real binary: `listen=udp:[::1]:PORT`
//! (and tcp), sipp calls through the proxy statelessly and statefully with
//! 0 failed, and a Rust UA that checks what the proxy wrote: its Via and
//! Record-Route name `[::1]:PORT`, `[addr]:port` URIs are routed (R-URI,
//! `$du`, Route), and the `af` keyword reads `INET6`.
//!
//! `::1` is a single address, so the ports are fixed, from 27100 up (this
//! test file's range), one block per test.

mod common;

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::proxy::ringsip_bin;
use common::server::ServerProcess;
use common::sipp::{Scenario, Sipp};
use common::ua::SipMsg;
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(5);

/// The sipp scenarios that follow the route set (ACK and BYE loose-routed).
fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
}

fn v6(port: u16) -> SocketAddr {
    SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port)
}

/// Whether a UDP or TCP socket is bound on `port` of `::1` or `::`.
fn bound6(port: u16, table: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/net/{table}")) else {
        return false;
    };
    text.lines().skip(1).any(|l| {
        let Some(local) = l.split_whitespace().nth(1) else {
            return false;
        };
        let Some((ip, p)) = local.split_once(':') else {
            return false;
        };
        let any = ip.chars().all(|c| c == '0');
        let lo = ip == "00000000000000000000000001000000";
        u16::from_str_radix(p, 16) == Ok(port) && (any || lo)
    })
}

fn wait_bound6(port: u16, table: &str) {
    let deadline = Instant::now() + WAIT;
    while !bound6(port, table) {
        assert!(
            Instant::now() < deadline,
            "nothing bound on [::1]:{port} ({table})"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// ringsip on `[::1]:port` (UDP and TCP): `routing` ends the request
/// route, `relay` is what `route[RELAY]` (in-dialog requests) does; returns
/// once it answers an OPTIONS over IPv6.
struct Proxy6 {
    server: ServerProcess,
    _dir: TempDir,
}

impl Proxy6 {
    fn start(port: u16, routing: &str, relay: &str) -> Proxy6 {
        let dir = tempfile::Builder::new()
            .prefix("ringsip-v6-")
            .tempdir()
            .unwrap();
        let cfg = dir.path().join("ringsip.cfg");
        let text = format!(
            r#"#!KAMAILIO
listen=udp:[::1]:{port}
listen=tcp:[::1]:{port}
debug=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "textops.so"
loadmodule "siputils.so"

request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            route(RELAY);
        }}
        exit;
    }}
    if (is_method("INVITE")) {{
        record_route();
    }}
    if (af == INET6) {{
        append_hf("X-AF: INET6\r\n");
    }} else {{
        append_hf("X-AF: other\r\n");
    }}
    {routing}
}}

route[RELAY] {{
    {relay}
}}
"#
        );
        std::fs::write(&cfg, text).unwrap();
        let mut cmd = Command::new(ringsip_bin());
        cmd.args(["run", "--workers", "2", "-f"])
            .arg(&cfg)
            .current_dir(dir.path());
        let mut server = ServerProcess::spawn("ringsip", cmd, dir.path());
        let ua = UdpSocket::bind(v6(0)).unwrap();
        ua.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut n = 0;
        loop {
            assert!(server.is_running(), "ringsip exited:\n{}", server.stderr());
            assert!(Instant::now() < deadline, "no answer:\n{}", server.stderr());
            n += 1;
            let me = ua.local_addr().unwrap();
            let req = format!(
                "OPTIONS sip:[::1]:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-ready{n}\r\n\
                 From: <sip:t@[::1]>;tag=r{n}\r\nTo: <sip:[::1]:{port}>\r\nCall-ID: ready{n}\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            let _ = ua.send_to(req.as_bytes(), v6(port));
            let mut buf = [0u8; 4096];
            if ua.recv_from(&mut buf).is_ok() {
                return Proxy6 { server, _dir: dir };
            }
        }
    }

    fn stop(mut self) {
        let status = self.server.stop();
        assert!(status.success(), "exit {status}:\n{}", self.server.stderr());
    }
}

/// The relay: stateless `forward()` or stateful `t_relay()`.
fn relay(stateful: bool) -> &'static str {
    match stateful {
        true => "t_relay();",
        false => "forward();",
    }
}

/// sipp UAC → ringsip → sipp UAS, all on `::1`, to an `[addr]:port`
/// destination URI, with Record-Route and the ACK and BYE loose-routed;
/// 10 calls, none failed on either side.
fn sipp_calls(base: u16, stateful: bool, tcp: bool) {
    let (proxy_port, uas, uac) = (base, v6(base + 1), v6(base + 2));
    let proto = if tcp { "tcp" } else { "udp" };
    let routing = format!(
        "$du = \"sip:{uas};transport={proto}\";\n    {}",
        relay(stateful)
    );
    let proxy = Proxy6::start(proxy_port, &routing, relay(stateful));
    let transport = |s: Sipp| if tcp { s.arg("-t").arg("t1") } else { s };
    let server =
        transport(Sipp::new(Scenario::File(scenario("uas_rr.xml")), uas, None).calls(10)).spawn();
    wait_bound6(uas.port(), if tcp { "tcp6" } else { "udp6" });
    let client = Sipp::new(
        Scenario::File(scenario("uac_rr.xml")),
        uac,
        Some(v6(proxy_port)),
    );
    let client = transport(client.calls(10).rate(10)).run();
    client.assert_all_ok(10);
    server.wait().assert_all_ok(10);
    proxy.stop();
}

#[test]
fn sipp_calls_over_ipv6_stateless_udp() {
    sipp_calls(27100, false, false);
}

#[test]
fn sipp_calls_over_ipv6_stateful_udp() {
    sipp_calls(27110, true, false);
}

#[test]
fn sipp_calls_over_ipv6_stateless_tcp() {
    sipp_calls(27140, false, true);
}

#[test]
fn sipp_calls_over_ipv6_stateful_tcp() {
    sipp_calls(27120, true, true);
}

/// A UDP socket on `::1` that speaks raw SIP text.
struct Ua6 {
    sock: UdpSocket,
}

impl Ua6 {
    fn bind(port: u16) -> Ua6 {
        let sock = UdpSocket::bind(v6(port)).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        Ua6 { sock }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    fn send(&self, to: SocketAddr, text: &str) {
        self.sock.send_to(text.as_bytes(), to).unwrap();
    }

    fn expect(&self, what: &str) -> SipMsg {
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => SipMsg::new(buf[..n].to_vec(), Some(from)),
            Err(e) => panic!("{}: no {what}: {e}", self.addr()),
        }
    }
}

/// An INVITE dialog through the stateful proxy between two Rust UAs on
/// `::1`: the headers the proxy adds name `[::1]:PORT`, the ACK and BYE
/// follow the Record-Route, `af` is `INET6`.
#[test]
fn ipv6_dialog_headers_through_the_stateful_proxy() {
    let (proxy_port, uas, uac) = (27130, Ua6::bind(27131), Ua6::bind(27132));
    let proxy = v6(proxy_port);
    // No $du: the R-URI `sip:bob@[::1]:27131` is the destination.
    let p = Proxy6::start(proxy_port, "t_relay();", "t_relay();");
    let me = uac.addr();
    let invite = format!(
        "INVITE sip:bob@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-v6inv;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{me}>;tag=a1\r\nTo: <sip:bob@{to}>\r\n\
         Call-ID: v6-dialog\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{me}>\r\n\
         Content-Length: 0\r\n\r\n",
        to = uas.addr()
    );
    uac.send(proxy, &invite);
    let got = uas.expect("INVITE");
    assert_eq!(
        got.start_line(),
        format!("INVITE sip:bob@{} SIP/2.0", uas.addr())
    );
    let vias = got.headers("Via");
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP {proxy};branch=z9hG4bK")),
        "top Via: {vias:?}"
    );
    // RFC 3581 §4: with rport, received is always added; RFC 3261 §25.1
    // writes an IPv6 `received` without brackets.
    let theirs = &vias[1];
    assert!(
        theirs.starts_with(&format!("SIP/2.0/UDP {me};")),
        "{vias:?}"
    );
    for param in [
        "received=::1",
        "branch=z9hG4bK-v6inv",
        &format!("rport={}", me.port()),
    ] {
        assert!(theirs.split(';').any(|p| p == param), "{param} in {theirs}");
    }
    let rr = got.header("Record-Route").expect("Record-Route");
    assert!(rr.starts_with(&format!("<sip:{proxy};lr")), "{rr}");
    assert_eq!(got.header("X-AF"), Some("INET6"));
    // 200 back to the UAC through the proxy.
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for v in &vias {
        ok.push_str(&format!("Via: {v}\r\n"));
    }
    ok.push_str(&format!(
        "Record-Route: {rr}\r\nFrom: <sip:alice@{me}>;tag=a1\r\nTo: <sip:bob@{to}>;tag=b1\r\n\
         Call-ID: v6-dialog\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{to}>\r\nContent-Length: 0\r\n\r\n",
        to = uas.addr()
    ));
    uas.send(proxy, &ok);
    let mut answer = uac.expect("100 or 200");
    if answer.start_line().starts_with("SIP/2.0 100 ") {
        answer = uac.expect("200");
    }
    assert_eq!(answer.start_line(), "SIP/2.0 200 OK");
    assert_eq!(answer.headers("Via").len(), 1, "{}", answer.text());
    assert_eq!(answer.header("Record-Route"), Some(rr));
    // ACK and BYE along the route set: Route: <sip:[::1]:PORT;lr>.
    for (method, cseq) in [("ACK", "1 ACK"), ("BYE", "2 BYE")] {
        let req = format!(
            "{method} sip:bob@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-v6{method}\r\n\
             Max-Forwards: 70\r\nRoute: {rr}\r\nFrom: <sip:alice@{me}>;tag=a1\r\n\
             To: <sip:bob@{to}>;tag=b1\r\nCall-ID: v6-dialog\r\nCSeq: {cseq}\r\n\
             Content-Length: 0\r\n\r\n",
            to = uas.addr()
        );
        uac.send(proxy, &req);
        let got = uas.expect(method);
        assert_eq!(
            got.start_line(),
            format!("{method} sip:bob@{} SIP/2.0", uas.addr())
        );
        assert!(got.header("Route").is_none(), "{}", got.text());
        assert!(got.headers("Via")[0].starts_with(&format!("SIP/2.0/UDP {proxy};branch=")));
    }
    p.stop();
}
