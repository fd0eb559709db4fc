//! siptrace against the real binary: a HEP collector on loopback receives,
//! for an INVITE traced in transaction mode, what Kamailio 5.6.3 sends for
//! the same exchange (seen on the wire): the INVITE as received (with the
//! correlation id), the 100, the relayed INVITE, then each reply as
//! received and as sent upstream; an OPTIONS traced in message mode gives
//! one packet and an `hlog` a log packet.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Proxy, RawUa, SipMsg};

/// One HEPv3 packet, read back.
#[derive(Debug, Clone, PartialEq)]
struct Hep {
    src: SocketAddr,
    dst: SocketAddr,
    proto_type: u8,
    capture_id: u32,
    correlation: Option<String>,
    seconds: u32,
    payload: Vec<u8>,
}

impl Hep {
    fn parse(p: &[u8]) -> Hep {
        assert_eq!(&p[..4], b"HEP3", "a HEPv3 packet");
        assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), p.len());
        let mut i = 6;
        let (mut sip, mut dip) = (None, None);
        let (mut sp, mut dp, mut proto_type, mut capture_id, mut seconds) = (0, 0, 0, 0, 0);
        let (mut correlation, mut payload) = (None, Vec::new());
        while i < p.len() {
            assert_eq!(&p[i..i + 2], &[0, 0], "vendor 0");
            let kind = u16::from_be_bytes([p[i + 2], p[i + 3]]);
            let len = usize::from(u16::from_be_bytes([p[i + 4], p[i + 5]]));
            let v = &p[i + 6..i + len];
            match kind {
                3 => sip = Some(IpAddr::from(<[u8; 4]>::try_from(v).unwrap())),
                4 => dip = Some(IpAddr::from(<[u8; 4]>::try_from(v).unwrap())),
                7 => sp = u16::from_be_bytes([v[0], v[1]]),
                8 => dp = u16::from_be_bytes([v[0], v[1]]),
                9 => seconds = u32::from_be_bytes(v.try_into().unwrap()),
                0x0b => proto_type = v[0],
                0x0c => capture_id = u32::from_be_bytes(v.try_into().unwrap()),
                0x11 => correlation = Some(String::from_utf8(v.to_vec()).unwrap()),
                0x0f => payload = v.to_vec(),
                _ => {}
            }
            i += len;
        }
        Hep {
            src: SocketAddr::new(sip.expect("source address"), sp),
            dst: SocketAddr::new(dip.expect("destination address"), dp),
            proto_type,
            capture_id,
            correlation,
            seconds,
            payload,
        }
    }

    fn first_line(&self) -> String {
        let text = String::from_utf8_lossy(&self.payload);
        text.split("\r\n").next().unwrap_or("").to_string()
    }

    fn call_id(&self) -> Option<String> {
        SipMsg::new(self.payload.clone(), None)
            .header("Call-ID")
            .map(str::to_string)
    }
}

/// Every packet the collector gets within `wait` of the last one.
fn drain(collector: &RawUa, wait: Duration) -> Vec<Hep> {
    let mut got = Vec::new();
    while let Some((bytes, _)) = collector.recv(wait) {
        got.push(Hep::parse(&bytes));
    }
    got
}

fn config(collector: SocketAddr, uas: SocketAddr) -> String {
    format!(
        r#"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "pv.so"
loadmodule "siptrace.so"
modparam("siptrace", "duplicate_uri", "sip:{collector}")
modparam("siptrace", "hep_mode_on", 1)
modparam("siptrace", "hep_version", 3)
modparam("siptrace", "hep_capture_id", 1234)
modparam("siptrace", "trace_on", 1)
modparam("siptrace", "trace_to_database", 0)
request_route {{
    if ($rm == "OPTIONS") {{
        sip_trace();
        if ($hdr(X-Log) != $null) {{ hlog("log $hdr(X-Log)"); }}
        sl_send_reply("200", "OK");
        exit;
    }}
    sip_trace("sip:{collector}", "corr-$ci", "t");
    $du = "sip:{uas}";
    t_relay();
}}
"#
    )
}

/// A reply to `req` from the UAS (its Via headers, a To tag).
fn reply(req: &SipMsg, code: &str) -> String {
    let mut r = format!("SIP/2.0 {code}\r\n");
    for v in req.headers("Via") {
        r.push_str(&format!("Via: {v}\r\n"));
    }
    for h in ["From", "Call-ID", "CSeq"] {
        r.push_str(&format!("{h}: {}\r\n", req.header(h).unwrap()));
    }
    r.push_str(&format!("To: {};tag=uas-1\r\n", req.header("To").unwrap()));
    r.push_str("Content-Length: 0\r\n\r\n");
    r
}

#[test]
fn invite_transaction_and_options_reach_the_hep_collector() {
    let collector = RawUa::bind();
    let uac = RawUa::bind();
    let uas = RawUa::bind();
    let proxy = Proxy::start(&config(collector.addr(), uas.addr()), &[]);
    let p = proxy.addr();
    // The start-up OPTIONS were traced too: drop them.
    drain(&collector, Duration::from_millis(300));

    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let invite = uac.request("INVITE", &format!("sip:bob@{}", uas.addr()), &[], "");
    uac.send(p, &invite);
    let relayed = uas.expect_msg(Duration::from_secs(2));
    assert_eq!(relayed.method(), Some("INVITE"));
    for code in ["180 Ringing", "200 OK"] {
        uas.send(p, reply(&relayed, code));
    }
    for want in [100, 180, 200] {
        let got = uac.expect_msg(Duration::from_secs(2));
        assert_eq!(got.status(), Some(want));
    }
    let packets = drain(&collector, Duration::from_millis(500));
    let seen: Vec<(SocketAddr, SocketAddr, Option<String>, String)> = packets
        .iter()
        .map(|h| (h.src, h.dst, h.correlation.clone(), h.first_line()))
        .collect();
    let call_id = SipMsg::parse_str(&invite)
        .header("Call-ID")
        .unwrap()
        .to_string();
    let invite_line = format!("INVITE sip:bob@{} SIP/2.0", uas.addr());
    let (a, u) = (uac.addr(), uas.addr());
    assert_eq!(
        seen,
        [
            (a, p, Some(format!("corr-{call_id}")), invite_line.clone()),
            (
                p,
                a,
                None,
                "SIP/2.0 100 trying -- your call is important to us".into()
            ),
            (p, u, None, invite_line),
            (u, p, None, "SIP/2.0 180 Ringing".into()),
            (p, a, None, "SIP/2.0 180 Ringing".into()),
            (u, p, None, "SIP/2.0 200 OK".into()),
            (p, a, None, "SIP/2.0 200 OK".into()),
        ]
    );
    for h in &packets {
        assert_eq!((h.proto_type, h.capture_id), (1, 1234));
        assert_eq!(h.call_id().as_deref(), Some(call_id.as_str()));
        assert!(h.seconds >= before && h.seconds <= before + 10, "{h:?}");
    }
    // The first copy is the INVITE as the UAC sent it, byte for byte; the
    // third is what the UAS received.
    assert_eq!(packets[0].payload, invite.as_bytes());
    assert_eq!(packets[2].payload, relayed.raw());

    // Message mode: the OPTIONS only, not its reply; hlog: a log packet
    // correlated by the Call-ID.
    let options = uac.request("OPTIONS", &format!("sip:{p}"), &["X-Log: hi"], "");
    uac.send(p, &options);
    assert_eq!(uac.expect_msg(Duration::from_secs(2)).status(), Some(200));
    let packets = drain(&collector, Duration::from_millis(500));
    let options_ci = SipMsg::parse_str(&options)
        .header("Call-ID")
        .unwrap()
        .to_string();
    assert_eq!(packets.len(), 2, "{packets:?}");
    assert_eq!(packets[0].payload, options.as_bytes());
    assert_eq!((packets[0].src, packets[0].dst), (a, p));
    assert_eq!(packets[0].correlation, None);
    assert_eq!(packets[1].proto_type, 100);
    assert_eq!(packets[1].payload, b"log hi");
    assert_eq!(packets[1].correlation.as_deref(), Some(options_ci.as_str()));
    assert_eq!(packets[1].src, p);
    assert_eq!(packets[1].dst, collector.addr());
    drop(proxy);
}

#[test]
fn trace_to_database_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.cfg");
    std::fs::write(
        &path,
        "loadmodule \"siptrace.so\"\n\
         modparam(\"siptrace\", \"duplicate_uri\", \"sip:127.0.0.1:9060\")\n\
         request_route { sip_trace(); }\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::ringsip_bin())
        .args(["check", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("trace_to_database"), "{text}");
    assert!(text.contains("not implemented in ringsip yet"), "{text}");
}

/// `ringsip ctl -s unix:SOCK siptrace.status ARG`: (exit code, stdout + stderr).
fn status(sock: &std::path::Path, arg: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(common::ringsip_bin())
        .arg("ctl")
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .arg("siptrace.status")
        .args(arg)
        .output()
        .expect("run ringsip ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn rpc_status_turns_tracing_off_and_on() {
    let collector = RawUa::bind();
    let uac = RawUa::bind();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("k.ctl");
    let cfg = format!(
        "loadmodule \"ctl.so\"\nmodparam(\"ctl\", \"binrpc\", \"unix:{}\")\n{}",
        sock.display(),
        config(collector.addr(), collector.addr())
    );
    let proxy = Proxy::start(&cfg, &[]);
    drain(&collector, Duration::from_millis(300));
    let options = |n: u32| {
        let o = uac.request("OPTIONS", &format!("sip:{}", proxy.addr()), &[], "");
        uac.send(proxy.addr(), &o);
        assert_eq!(uac.expect_msg(Duration::from_secs(2)).status(), Some(200));
        let got = drain(&collector, Duration::from_millis(300));
        assert_eq!(got.len() as u32, n, "{got:?}");
    };
    // Kamailio's answers, checked with kamcmd against 5.6.3.
    let (code, text) = status(&sock, &["check"]);
    assert_eq!(code, 0);
    assert!(text.contains("Enabled"), "{text}");
    let (_, text) = status(&sock, &["off"]);
    assert!(text.contains("Disabled"), "{text}");
    options(0);
    let (_, text) = status(&sock, &["on"]);
    assert!(text.contains("Enabled"), "{text}");
    options(1);
    let (code, text) = status(&sock, &["bogus"]);
    assert_ne!(code, 0);
    assert!(text.contains("Bad parameter (on, off or check)"), "{text}");
    let (code, text) = status(&sock, &[]);
    assert_ne!(code, 0);
    assert!(text.contains("Not enough parameters"), "{text}");
    drop(proxy);
}
