//! mqueue against the real binary with two workers: items added by
//! requests from many source ports (hashed over both workers' sockets) are
//! all in one queue that any worker fetches from, oldest first; the
//! control methods see the same queues; a bad definition stops start-up at
//! its line. (Kamailio 5.6.3's answers, checked live, in the comments.)

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::proxy::{ringsip_bin, Proxy};
use common::ua::RawUa;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(3);

fn config(sock: &Path) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "ctl.so"
loadmodule "mqueue.so"
modparam("ctl", "binrpc", "unix:{}")
modparam("mqueue", "mqueue", "name=calls")
modparam("mqueue", "mqueue", "name=last2;size=2")
modparam("mqueue", "mqueue_size", 3)
modparam("mqueue", "mqueue_name", "named")
request_route {{
    if ($rU == "add") {{
        mq_add("calls", "$hdr(X-Key)", "from $sp");
        mq_add("last2", "$hdr(X-Key)", "v");
        mq_add("named", "$hdr(X-Key)", "v");
        $var(r) = mq_add("nope", "a", "b");
        append_to_reply("X-Add: $var(r)\r\n");
    }} else if ($rU == "drain") {{
        $var(q) = $hdr(X-Queue);
        $var(out) = "";
        while (mq_fetch("$var(q)")) {{
            $var(out) = $var(out) + $mqk($var(q)) + ",";
        }}
        $var(rc) = $rc;
        append_to_reply("X-Got: $var(out) rc=$var(rc) k=$mqk(calls)\r\n");
    }} else if ($rU == "size") {{
        $var(a) = mq_size("calls");
        $var(b) = mq_size("nope");
        append_to_reply("X-Size: $var(a) $var(b) $mq_size(calls) $mq_size(last2) $mq_size(named)\r\n");
    }}
    sl_send_reply("200", "OK");
}}
"#,
        sock.display()
    )
}

fn ask(ua: &RawUa, proxy: &Proxy, user: &str, extra: &[&str], header: &str) -> String {
    let uri = format!("sip:{user}@{}", proxy.addr());
    ua.send(proxy.addr(), ua.request("OPTIONS", &uri, extra, ""));
    let reply = ua.expect_msg(WAIT);
    assert_eq!(reply.status(), Some(200), "{}", reply.text());
    reply
        .header(header)
        .unwrap_or_else(|| panic!("no {header}: {}", reply.text()))
        .to_string()
}

/// `ringsip ctl --json ARGS…` on `sock`: Ok(result) or Err(stderr).
fn ctl(sock: &Path, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(ringsip_bin())
        .arg("ctl")
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .arg("--json")
        .args(args)
        .output()
        .expect("run ringsip ctl");
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn one_queue_for_every_worker_and_the_control_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("k.ctl");
    let proxy = Proxy::builder(&config(&sock)).workers(2).start();

    // Ten senders, ten source ports: the kernel spreads them over both workers.
    let senders: Vec<RawUa> = (0..10).map(|_| RawUa::bind()).collect();
    for (i, ua) in senders.iter().enumerate() {
        let key = format!("X-Key: k{i}");
        // An unknown queue: -1.
        assert_eq!(ask(ua, &proxy, "add", &[&key], "X-Add"), "-1");
    }
    // mq_size: the count; -2 for an unknown queue. The named queue took the
    // mqueue_size set before it (3), last2 its size (2).
    let size = ask(&senders[0], &proxy, "size", &[], "X-Size");
    assert_eq!(size, "10 -2 10 2 3");
    assert_eq!(
        ctl(&sock, &["mqueue.get_sizes"]).unwrap(),
        json!([
            {"name": "named", "size": 3},
            {"name": "last2", "size": 2},
            {"name": "calls", "size": 10}
        ])
    );
    assert_eq!(
        ctl(&sock, &["mqueue.get_size", "last2"]).unwrap(),
        json!({"name": "last2", "size": 2})
    );
    let err = ctl(&sock, &["mqueue.get_size", "nope"]).unwrap_err();
    assert!(err.contains("No such queue"), "{err}");

    // The control socket takes the oldest item of the shared queue.
    assert_eq!(
        ctl(&sock, &["mqueue.fetch", "calls"]).unwrap()["key"],
        json!("k0")
    );
    // One request drains the rest, whichever worker it lands on, in order;
    // the failed fetch at the end lets the last item go.
    let got = ask(&senders[3], &proxy, "drain", &["X-Queue: calls"], "X-Got");
    assert_eq!(got, "k1,k2,k3,k4,k5,k6,k7,k8,k9, rc=-2 k=<null>");
    let got = ask(&senders[3], &proxy, "drain", &["X-Queue: last2"], "X-Got");
    assert!(got.starts_with("k8,k9, rc=-2"), "{got}");
    let got = ask(&senders[3], &proxy, "drain", &["X-Queue: named"], "X-Got");
    assert!(got.starts_with("k7,k8,k9, rc=-2"), "{got}");
    // Empty queues: mq_size -1, $mq_size 0; the control socket's fetch fails.
    let size = ask(&senders[5], &proxy, "size", &[], "X-Size");
    assert_eq!(size, "-1 -2 0 0 0");
    let err = ctl(&sock, &["mqueue.fetch", "calls"]).unwrap_err();
    assert!(err.contains("Empty queue"), "{err}");
}

#[test]
fn a_bad_queue_definition_is_refused_at_its_line() {
    for (def, says) in [
        ("name=a;foo=1", "unknown attribute \"foo\""),
        ("size=3", "no name"),
        ("name=a;dbmode=1", "not implemented in ringsip yet"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("k.cfg");
        std::fs::write(
            &cfg,
            format!(
                "loadmodule \"mqueue.so\"\nmodparam(\"mqueue\", \"mqueue\", \"name=ok\")\n\
                 modparam(\"mqueue\", \"mqueue\", \"{def}\")\nrequest_route {{ exit; }}\n"
            ),
        )
        .unwrap();
        let out = Command::new(ringsip_bin())
            .args(["check", "-f"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{def} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("k.cfg:3"), "{def}: {err}");
        assert!(err.contains(says), "{def}: {err}");
    }
}
