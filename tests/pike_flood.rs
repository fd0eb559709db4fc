//! pike against the real binary, with the stock configuration's
//! WITH_ANTIFLOOD block (KAMAILIO-REFERENCE §9.4): a source that floods
//! (its address grown in pike's tree, then `reqs_density_per_unit` requests
//! of its own in a unit) is reported once
//! (`pike_check_req()` -2), banned in the `ipban` hash table, and dropped;
//! another source is not affected.

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::ua::RawUa;

const CONFIG: &str = r#"#!KAMAILIO
listen=@LISTEN@
debug=2
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "htable.so"
loadmodule "pike.so"
modparam("htable", "htable", "ipban=>size=8;autoexpire=300;")
modparam("pike", "sampling_time_unit", 2)
modparam("pike", "reqs_density_per_unit", 6)
modparam("pike", "remove_latency", 4)

request_route {
    if ($sht(ipban=>$si) != $null) {
        exit;
    }
    if ($rU == $null) {
        # The harness's readiness OPTIONS: not counted.
        sl_send_reply("200", "Ready");
        exit;
    }
    if ($rU == "probe") {
        sl_send_reply("200", "Probe");
        exit;
    }
    $var(rc) = pike_check_req();
    if ($var(rc) < 0) {
        xlog("L_ALERT", "ALERT: pike blocking $rm from $fu (IP:$si:$sp) rc=$var(rc)\n");
        $sht(ipban=>$si) = 1;
        exit;
    }
    sl_send_reply("200", "OK");
}
"#;

#[test]
fn a_flooding_source_is_banned_and_another_is_not() {
    let proxy = Proxy::start(CONFIG, &[]);
    let flooder = RawUa::bind();
    let other = RawUa::bind();
    let target = format!("sip:flood@{}", proxy.addr());
    // Start early in a 2-second sampling unit (units count from the unix
    // epoch), so the burst does not straddle two units.
    loop {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        if ms % 2000 < 500 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A fresh source: 4 requests grow its address in pike's tree, 5 more of
    // its own pass.
    let mut answered = 0;
    for _ in 0..14 {
        flooder.send(proxy.addr(), flooder.request("OPTIONS", &target, &[], ""));
        if flooder
            .recv_msg(Duration::from_millis(300))
            .is_some_and(|m| m.status() == Some(200))
        {
            answered += 1;
        }
    }
    assert_eq!(
        answered, 9,
        "the 10th request of a fresh source is the flood (as Kamailio 5.6.3 counts)"
    );
    // Banned now, whatever the request.
    let probe = format!("sip:probe@{}", proxy.addr());
    flooder.send(proxy.addr(), flooder.request("OPTIONS", &probe, &[], ""));
    assert!(flooder.recv_msg(Duration::from_millis(500)).is_none());
    other.send(proxy.addr(), other.request("OPTIONS", &target, &[], ""));
    assert_eq!(other.expect_msg(Duration::from_secs(2)).status(), Some(200));
    let log = proxy.stderr();
    assert_eq!(
        log.matches("pike blocking").count(),
        1,
        "reported once, then banned by the htable:\n{log}"
    );
    assert!(log.contains("rc=-2"), "{log}");
}
