//! statsd against the real binary: a statsd server on loopback receives the
//! datagrams a request's script sends, in Kamailio 5.6's text form, and a
//! timer started in request_route is stopped in the reply's onreply_route
//! (the AVP rides with the transaction).

mod common;

use std::time::Duration;

use common::{Proxy, RawUa};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn metrics_reach_the_statsd_server() {
    let server = RawUa::bind();
    let uac = RawUa::bind();
    let uas = RawUa::bind();
    let (ip, port) = (server.addr().ip(), server.addr().port());
    let cfg = format!(
        r#"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "pv.so"
loadmodule "statsd.so"
modparam("statsd", "ip", "{ip}")
modparam("statsd", "port", "{port}")
request_route {{
    if ($rm == "OPTIONS") {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if ($rm == "MESSAGE") {{
        statsd_incr("messages");
        statsd_gauge("load", "42");
        statsd_set("users", " 7");
        sl_send_reply("200", "OK");
        exit;
    }}
    statsd_start("setup");
    t_on_reply("R");
    $du = "sip:{uas}";
    t_relay();
}}
onreply_route[R] {{
    if ($rs == 200) {{
        statsd_stop("setup");
    }}
}}
"#,
        uas = uas.addr()
    );
    let proxy = Proxy::start(&cfg, &[]);
    let p = proxy.addr();
    uac.send(p, uac.request("MESSAGE", &format!("sip:{p}"), &[], "hi"));
    assert_eq!(uac.expect_msg(WAIT).status(), Some(200));
    let mut lines = Vec::new();
    for _ in 0..3 {
        let (data, _) = server.recv(WAIT).expect("a statsd datagram");
        lines.push(String::from_utf8(data).unwrap());
    }
    assert_eq!(lines, ["messages:1|c\n", "load:42|g\n", "users:7|s\n"]);

    uac.send(
        p,
        uac.request("INVITE", &format!("sip:bob@{}", uas.addr()), &[], ""),
    );
    let invite = uas.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    std::thread::sleep(Duration::from_millis(120));
    uas.send(p, common::tcp::reply_to(&invite, 200, "OK"));
    assert_eq!(
        uac.expect_msg_where(WAIT, |m| m.status() == Some(200))
            .status(),
        Some(200)
    );
    let (data, _) = server.recv(WAIT).expect("the timer's datagram");
    let line = String::from_utf8(data).unwrap();
    let ms: u64 = line
        .strip_prefix("setup:")
        .and_then(|l| l.strip_suffix("|ms\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!((100..5000).contains(&ms), "{ms} ms");
    assert!(server.recv(Duration::from_millis(200)).is_none());
}
