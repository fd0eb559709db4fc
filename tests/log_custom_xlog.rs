//! log_custom's `log_udp` and xlog's `xlogl`, `xdbgl`, `xlogm` against the
//! real binary, with what Kamailio 5.6.3 did live for the same script: the
//! text alone in one datagram from the listening socket, its length as the
//! answer; the call's line in front of `xlogl`/`xdbgl` lines; `xlogm`
//! silent for a method in `methods_filter` (all of them by default).

mod common;

use std::time::{Duration, Instant};

use common::proxy::{ringsip_bin, Proxy};
use common::ua::RawUa;

const WAIT: Duration = Duration::from_secs(3);

fn config(sink: std::net::SocketAddr, methods_filter: &str) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=3
log_engine_type="udp"
log_engine_data="{sink}"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "log_custom.so"
{methods_filter}
request_route {{
    log_udp("hello $rm from $si");
    $var(rc) = $rc;
    xlogl("L_NOTICE", "xlogl line $rm\n");
    xdbgl("xdbgl line\n");
    xlogm("L_NOTICE", "xlogm line $rm\n");
    append_to_reply("X-Rc: $var(rc)\r\n");
    sl_send_reply("200", "OK");
}}
"#
    )
}

/// Waits until the proxy's stderr has `needle` (the log is written as it goes).
fn logged(proxy: &Proxy, needle: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if proxy.stderr().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn log_udp_sends_the_text_and_xlogl_names_the_line() {
    let sink = RawUa::bind();
    let ua = RawUa::bind();
    let proxy = Proxy::start(&config(sink.addr(), ""), &[]);
    ua.send(proxy.addr(), ua.options(proxy.addr()));
    let reply = ua.expect_msg(WAIT);
    let text = format!("hello OPTIONS from {}", ua.addr().ip());
    assert_eq!(reply.header("X-Rc"), Some(text.len().to_string().as_str()));
    // The harness's readiness probes ran the script too: find ours.
    let mut got = Vec::new();
    while let Some((data, from)) = sink.recv(Duration::from_millis(300)) {
        got.push((String::from_utf8(data).unwrap(), from));
    }
    assert!(
        got.contains(&(text.clone(), proxy.addr())),
        "the text alone, from the listening socket: {got:?}"
    );
    // Lines 15 and 16 of the configuration.
    assert!(
        logged(&proxy, "<script>: 15:xlogl line OPTIONS"),
        "{}",
        proxy.stderr()
    );
    assert!(
        logged(&proxy, "<script>: 16:xdbgl line"),
        "{}",
        proxy.stderr()
    );
    // methods_filter is -1 by default: xlogm says nothing.
    assert!(!proxy.stderr().contains("xlogm line"), "{}", proxy.stderr());
}

#[test]
fn xlogm_logs_methods_outside_the_filter() {
    let sink = RawUa::bind();
    let ua = RawUa::bind();
    for (filter, logs) in [("512", false), ("8", true), ("0", true)] {
        let line = format!("modparam(\"xlog\", \"methods_filter\", {filter})");
        let proxy = Proxy::start(&config(sink.addr(), &line), &[]);
        ua.send(proxy.addr(), ua.options(proxy.addr()));
        ua.expect_msg(WAIT);
        // The xdbgl line comes after xlogm's: once it is there, xlogm ran.
        assert!(logged(&proxy, "xdbgl line"), "{}", proxy.stderr());
        assert_eq!(
            proxy.stderr().contains("<script>: xlogm line OPTIONS"),
            logs,
            "methods_filter {filter}: {}",
            proxy.stderr()
        );
        while sink.recv(Duration::from_millis(50)).is_some() {}
    }
}

#[test]
fn log_custom_without_its_engine_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.cfg");
    std::fs::write(
        &cfg,
        "loadmodule \"log_custom.so\"\nrequest_route { log_udp(\"x\"); }\n",
    )
    .unwrap();
    let out = std::process::Command::new(ringsip_bin())
        .args(["check", "-f"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("k.cfg:1"), "{err}");
    assert!(err.contains("log_engine_type"), "{err}");
}
