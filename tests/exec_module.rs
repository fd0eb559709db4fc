//! The exec module against the real binary: `exec_dset` forks a call to the
//! URIs a shell command prints, `exec_avp` reads a command's lines into AVPs,
//! and `exec_msg` hands the message and its `SIP_*` variables to a command.

mod common;

use std::time::Duration;

use common::{Proxy, RawUa};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn exec_dset_forks_to_the_printed_uris_and_exec_msg_sees_the_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = RawUa::bind();
    let second = RawUa::bind();
    let script = dir.path().join("route.sh");
    // The script gets the Request-URI as its argument and prints two targets.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" > {dir}/uri\necho sip:first@{}\necho\necho sip:second@{}\n",
            first.addr(),
            second.addr(),
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let out = dir.path().join("seen");
    let config = format!(
        r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "exec.so"
request_route {{
    if (is_method("OPTIONS")) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (!is_method("INVITE")) {{
        t_relay();
        exit;
    }}
    if (!exec_msg("(echo $$SIP_OUSER $$SIP_HF_CALLID; cat) > {out}")) {{
        sl_send_reply("500", "exec_msg failed");
        exit;
    }}
    if (!exec_dset("sh {script}")) {{
        sl_send_reply("500", "exec_dset failed");
        exit;
    }}
    exec_avp("printf 'gold\n\nsilver \n'", "$avp(tier)");
    append_hf("X-Tier: $avp(tier) $avp(i:2)\r\n");
    t_relay();
}}
"#,
        out = out.display(),
        script = script.display()
    );
    let proxy = Proxy::start(&config, &[]);
    let caller = RawUa::bind();
    let invite = caller.request("INVITE", &format!("sip:+4930123@{}", proxy.addr()), &[], "");
    caller.send(proxy.addr(), &invite);

    let a = first.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let b = second.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_eq!(
        a.request_uri(),
        Some(format!("sip:first@{}", first.addr()).as_str())
    );
    assert_eq!(
        b.request_uri(),
        Some(format!("sip:second@{}", second.addr()).as_str())
    );
    assert_eq!(a.header("X-Tier"), Some("gold silver"));
    let uri = std::fs::read_to_string(dir.path().join("uri")).unwrap();
    assert_eq!(uri.trim(), format!("sip:+4930123@{}", proxy.addr()));
    let seen = std::fs::read_to_string(&out).unwrap();
    let call_id = a.header("Call-ID").unwrap();
    let (vars, message) = seen.split_once('\n').unwrap();
    assert_eq!(vars, format!("+4930123 {call_id}"));
    assert!(message.starts_with("INVITE sip:+4930123@"), "{message}");
}
