//! The small Kamailio modules (path, ipops, cfgutils, sdpops, statistics)
//! through the real binary: `ringsip check` accepts them where Kamailio does
//! and names file:line:col where it does not; an edge proxy with the path
//! module in front of a registrar, end to end (RFC 3327).

mod common;

use std::time::Duration;

use common::proxy::{ringsip_bin, Proxy};
use common::ua::RawUa;

const WAIT: Duration = Duration::from_secs(3);

fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mods.cfg");
    std::fs::write(&path, text).expect("write config");
    let out = std::process::Command::new(ringsip_bin())
        .args(["check", "-f"])
        .arg(&path)
        .output()
        .expect("run ringsip check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LOADS: &str = r#"loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "rr.so"
loadmodule "path.so"
loadmodule "ipops.so"
loadmodule "cfgutils.so"
loadmodule "sdpops.so"
loadmodule "statistics.so"
loadmodule "xlog.so"
modparam("path", "use_received", 1)
modparam("cfgutils", "lock_set_size", 4)
modparam("statistics", "variable", "calls")
"#;

#[test]
fn check_accepts_the_functions_where_kamailio_does() {
    let text = format!(
        r#"{LOADS}
request_route {{
    if (is_method("REGISTER")) {{ add_path_received("edge", "ob"); add_path(); }}
    if (is_ip_rfc1918($si) && is_in_subnet($si, "10.0.0.0/8,192.168.0.0/16")) {{ xlog("nat\n"); }}
    detailed_ipv4_type($si, "$var(t)");
    if (rand_event()) {{ lock("k"); unlock("k"); }}
    core_hash("$ci", "", "4");
    route_if_exists("x");
    sdp_remove_codecs_by_name("PCMA", "audio");
    if (sdp_with_media("video")) {{ sdp_remove_media("video"); }}
    update_stat("calls", "1");
    reset_stat("calls");
    t_on_failure("f");
    t_relay();
}}
failure_route[f] {{ if (compare_ips($si, "127.0.0.1")) {{ update_stat("calls", "-1"); }} sdp_keep_codecs_by_id("0"); }}
onreply_route {{ ip_type($si); sdp_with_codecs_by_id("0"); reset_stat("calls"); usleep("1"); }}
route[x] {{ rand_set_prob("20"); }}
"#
    );
    let (ok, err) = check(&text);
    assert!(ok, "{err}");
}

#[test]
fn check_refuses_them_elsewhere_with_file_line_col() {
    let text = format!(
        "{LOADS}request_route {{ t_on_failure(\"f\"); t_relay(); }}\nfailure_route[f] {{\n    add_path();\n}}\n"
    );
    let (ok, err) = check(&text);
    assert!(!ok);
    // The call is on the second line of failure_route.
    let line = LOADS.lines().count() + 3;
    assert!(
        err.contains(&format!("mods.cfg:{line}:")) && err.contains("add_path"),
        "{err}"
    );
    let text = format!("{LOADS}request_route {{ update_stat(\"nope\", \"1\"); }}\n");
    let (ok, err) = check(&text);
    assert!(!ok && err.contains("not defined"), "{err}");
    let text = format!("{LOADS}request_route {{ rand_set_prob(\"200\"); }}\n");
    let (ok, err) = check(&text);
    assert!(!ok && err.contains("probability"), "{err}");
}

/// The registrar: stores Path, routes calls to the contact through it.
const REGISTRAR: &str = r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("registrar", "use_path", 1)
modparam("registrar", "path_mode", 0)
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "OK"); exit; }
    if (is_method("REGISTER")) { save("location"); exit; }
    if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    t_relay();
}
"#;

#[test]
fn edge_path_with_received_reaches_the_phone_behind_nat() {
    let registrar = Proxy::start(REGISTRAR, &[]);
    let edge = Proxy::start(
        &format!(
            r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "rr.so"
loadmodule "path.so"
modparam("path", "use_received", 1)
request_route {{
    if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
    if (is_method("REGISTER")) {{
        add_path_received("edge");
        $du = "sip:{reg}";
        t_relay();
        exit;
    }}
    if (is_present_hf("Route")) {{ loose_route(); t_relay(); exit; }}
    sl_send_reply("404", "No route");
}}
"#,
            reg = registrar.addr()
        ),
        &[],
    );
    let phone = RawUa::bind();
    // The phone's Contact is a private address nobody can reach: only the
    // received parameter of the edge's Path leads back to it.
    let reg = phone
        .request(
            "REGISTER",
            &format!("sip:{}", registrar.addr().ip()),
            &["Expires: 300"],
            "",
        )
        .replace(
            &format!("Contact: <sip:tester@{}>", phone.addr()),
            "Contact: <sip:phone@10.255.255.1:5999>",
        )
        .replace(
            &format!("To: <sip:{}>", registrar.addr().ip()),
            &format!("To: <sip:phone@{}>", registrar.addr().ip()),
        );
    phone.send(edge.addr(), &reg);
    let ok = phone.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());

    let caller = RawUa::bind();
    let invite = caller.request(
        "INVITE",
        &format!("sip:phone@{}", registrar.addr().ip()),
        &[],
        "",
    );
    caller.send(registrar.addr(), &invite);
    let got = phone.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_eq!(
        got.request_uri(),
        Some("sip:phone@10.255.255.1:5999"),
        "{}",
        got.text()
    );
    // The edge took its own Route off.
    assert!(got.headers("Route").is_empty(), "{}", got.text());
    // Through the edge: its Via is on top.
    let via = got.header("Via").unwrap_or_default();
    assert!(
        via.contains(&edge.addr().ip().to_string()),
        "{}",
        got.text()
    );
}

#[test]
fn path_header_names_the_edge_and_the_source() {
    let registrar = RawUa::bind();
    let edge = Proxy::start(
        &format!(
            r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "path.so"
request_route {{
    if (is_method("OPTIONS")) {{ sl_send_reply("200", "OK"); exit; }}
    add_path_received("edge", "x=1");
    $du = "sip:{reg}";
    t_relay();
}}
"#,
            reg = registrar.addr()
        ),
        &[],
    );
    let phone = RawUa::bind();
    let reg = phone.request(
        "REGISTER",
        "sip:example.com",
        &["Path: <sip:far.example;lr>"],
        "",
    );
    phone.send(edge.addr(), &reg);
    let got = registrar.expect_msg_where(WAIT, |m| m.method() == Some("REGISTER"));
    let paths = got.headers("Path");
    let edge_host = match edge.addr().port() {
        5060 => edge.addr().ip().to_string(),
        p => format!("{}:{p}", edge.addr().ip()),
    };
    assert_eq!(
        paths,
        [
            format!(
                "<sip:edge@{edge_host};lr;received=sip:{};x=1>",
                phone.addr()
            )
            .as_str(),
            "<sip:far.example;lr>"
        ],
        "{}",
        got.text()
    );
}
