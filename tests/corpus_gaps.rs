//! What public Kamailio configurations use that ringsip once refused or got
//! wrong at start-up, through the real binary: `$_s(format)`, `$shtcn` and
//! `$shtcv`, socket names (`$Rn`, `$fsn`), the dispatcher's
//! `reload_delta`, `ds_hash_size` and `ds_timer_mode`, tm's
//! `reparse_on_dns_failover`, and `event_route[htable:mod-init]` run once
//! before the first request (tests/configs/corpus-gaps/kamailio.cfg).

mod common;

use std::time::Duration;

use common::proxy::{ringsip_bin, Proxy};
use common::ua::RawUa;

const CFG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/configs/corpus-gaps/kamailio.cfg"
);

#[test]
fn check_accepts_it_and_names_what_has_no_effect() {
    let out = std::process::Command::new(ringsip_bin())
        .args(["check", "--verbose", "-f", CFG])
        .output()
        .expect("run ringsip check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("accepted but ignored: dispatcher ds_timer_mode"),
        "{stdout}"
    );
    assert!(
        stdout.contains("accepted but ignored: tm reparse_on_dns_failover"),
        "{stdout}"
    );
    assert!(!stdout.contains("reload_delta"), "{stdout}");
}

/// Kamailio 5.6, live, for the same htable:mod-init: a request later read the
/// values it set, the counter at 1 (the route ran once, not once per worker).
#[test]
fn htable_mod_init_runs_once_before_requests() {
    let text = std::fs::read_to_string(CFG)
        .expect("read config")
        .replace("listen=udp:127.0.0.1:5060", "listen=@LISTEN@")
        .replace("listen=tcp:127.0.0.1:5060", "listen=tcp:@IP@:@PORT@")
        .replace(
            "modparam(\"dispatcher\", \"list_file\", \"/etc/kamailio/dispatcher.list\")\n",
            "",
        )
        .replace("loadmodule \"dispatcher.so\"\n", "")
        .lines()
        .filter(|l| !l.contains("\"dispatcher\""))
        .collect::<Vec<_>>()
        .join("\n");
    let proxy = Proxy::start(&text, &[]);
    let ua = RawUa::bind();
    for _ in 0..2 {
        let req = ua.request("OPTIONS", "sip:bob@a.example", &[], "");
        ua.send(proxy.addr(), &req);
        let reply = ua.expect_msg_where(Duration::from_secs(3), |m| m.status() == Some(200));
        assert_eq!(
            reply.header("X-Tenant"),
            Some("tenant=acme;method=OPTIONS 1"),
            "{}",
            reply.text()
        );
        assert_eq!(
            reply.header("X-Count"),
            Some("[1] [2] [1]"),
            "{}",
            reply.text()
        );
        // Kamailio 5.6, live: `[pub] [0] [lan] [udp:127.0.0.1:5095]` for a
        // request on the socket named pub, lan being udp:127.0.0.1:5095; a
        // name no socket has leaves the forced one.
        let addr = proxy.addr();
        assert_eq!(
            reply.header("X-Sock"),
            Some(format!("[pub] [0] [lan] [tcp:{addr}]").as_str()),
            "{}",
            reply.text()
        );
        assert_eq!(reply.header("X-Sock2"), Some("[lan]"), "{}", reply.text());
    }
}

/// Kamailio 5.6, live, with `autoexpire=2` and `timer_interval=1`: about two
/// seconds after a request set them, the route ran once per item with
/// `key=[n] value=[5] rm=[OPTIONS] still=[<null>]` and `key=[c1] value=[v1]…`
/// (the faked OPTIONS, the item already gone); in the request `$shtrecord(key)`
/// read "".
#[test]
fn htable_expired_event_route_gets_each_expired_item() {
    let sink = RawUa::bind();
    let config = format!(
        r#"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "corex.so"
loadmodule "textops.so"
loadmodule "htable.so"
modparam("htable", "htable", "t=>size=4;autoexpire=1;")
modparam("htable", "timer_interval", 1)
event_route[htable:expired:t] {{
    send_data("sip:{sink}", "expired [$shtrecord(key)] [$shtrecord(value)] [$rm] [$sht(t=>$shtrecord(key))]");
}}
request_route {{
    $sht(t=>$ci) = "v1";
    $sht(t=>n) = 5;
    append_to_reply("X-Rec: [$shtrecord(key)]\r\n");
    sl_send_reply("200", "OK");
}}
"#,
        sink = sink.addr()
    );
    let proxy = Proxy::start(&config, &[]);
    let ua = RawUa::bind();
    let req = ua.request("OPTIONS", "sip:bob@a.example", &[], "");
    let call_id = common::ua::SipMsg::parse_str(&req)
        .header("Call-ID")
        .expect("call-id")
        .to_string();
    ua.send(proxy.addr(), &req);
    let reply = ua.expect_msg_where(Duration::from_secs(3), |m| m.status() == Some(200));
    assert_eq!(reply.header("X-Rec"), Some("[]"), "{}", reply.text());
    let want_call = format!("expired [{call_id}] [v1] [OPTIONS] [<null>]");
    let want_n = "expired [n] [5] [OPTIONS] [<null>]";
    let (mut saw_call, mut saw_n) = (0, false);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(5) && !(saw_call > 0 && saw_n) {
        if let Some((bytes, _)) = sink.recv(Duration::from_millis(300)) {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            saw_call += usize::from(text == want_call);
            saw_n |= text == want_n;
        }
    }
    drop(proxy);
    assert_eq!(saw_call, 1, "no single expiry event for {want_call:?}");
    assert!(saw_n, "no expiry event for {want_n:?}");
}
