//! corex functions as a configuration calls them (compiled from text, run by
//! the engine), and the intercept stage as the engine runs it.

use std::sync::Arc;

use bytes::Bytes;

use crate::intercept::codec::{Cipher, Codec, Gzip};
use crate::intercept::NioConfig;
use crate::modules::core::Engine;
use crate::modules::testutil::{env, some_instant, INVITE, LOCAL, SOURCE};
use crate::script::compile::compile;
use crate::script::ctx::Env;
use crate::script::{parse_str, MemoryFiles, Options};
use crate::sip::{Inbound, Proto, Transmit};

/// Compiles `text` (corex and sl loaded first) or returns the rendered errors.
fn compiled(text: &str) -> Result<crate::script::compile::Compiled, String> {
    let text = format!("loadmodule \"sl.so\"\nloadmodule \"corex.so\"\nloadmodule \"xlog.so\"\nloadmodule \"kex.so\"\n{text}");
    let files = MemoryFiles::new();
    let cfg = parse_str("t.cfg", &text, &Options::with_files(&files))
        .map_err(|d| d.rendered().join("\n"))?;
    compile(&cfg).map_err(|d| d.rendered().join("\n"))
}

/// An engine for `text`, with the corex settings start-up would make.
fn engine(text: &str) -> Engine {
    let c = compiled(text).unwrap_or_else(|e| panic!("{e}"));
    let mut env: Env = env();
    env.services.insert(Arc::new(
        NioConfig::from_modparams(&c.modparams).expect("nio params"),
    ));
    env.services.insert(Arc::new(
        crate::modules::corex::alias::AliasSubdomains::from_modparams(&c.modparams)
            .expect("aliases"),
    ));
    Engine::new(Arc::new(env), Arc::new(c.program))
}

fn inbound(data: impl Into<Bytes>) -> Inbound {
    Inbound {
        data: data.into(),
        src: SOURCE.parse().expect("address"),
        local: LOCAL.parse().expect("address"),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    }
}

fn invite() -> Vec<u8> {
    INVITE.replace('\n', "\r\n").into_bytes()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Gzip.encode(data, &mut out).expect("gzip");
    out
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Gzip.decode(data, &mut out).expect("gunzip");
    out
}

const NIO_GZIP: &str = r#"
modparam("corex", "nio_intercept", 1)
modparam("corex", "nio_min_msg_len", 32)
modparam("corex", "nio_msg_avp", "$avp(msg)")
event_route[network:msg] {
    if (is_incoming()) {
        gzip_decompress("$mb", "$avp(msg)");
    } else {
        gzip_compress("$mb", "$avp(msg)");
    }
}
request_route {
    sl_send_reply("200", "OK");
}
"#;

#[test]
fn incoming_gzip_is_decoded_before_parsing_and_replies_are_encoded() {
    let mut e = engine(NIO_GZIP);
    let mut pkt = inbound(gz(&invite()));
    assert!(e.intercept_received(&mut pkt, some_instant()));
    assert_eq!(
        pkt.data.as_ref(),
        invite().as_slice(),
        "the AVP replaced the bytes"
    );
    let mut out: Vec<Transmit> = Vec::new();
    e.on_inbound(pkt, some_instant(), &mut out);
    assert_eq!(out.len(), 1);
    let mut reply = out.remove(0);
    assert!(reply.data.starts_with(b"SIP/2.0 200 OK"));
    assert!(e.intercept_sending(&mut reply, some_instant()));
    assert_eq!(
        &reply.data[..2],
        &[0x1f, 0x8b],
        "the reply leaves compressed"
    );
    assert!(gunzip(&reply.data).starts_with(b"SIP/2.0 200 OK\r\n"));
    let stats = e.intercept_stats().expect("stage on");
    assert_eq!((stats.incoming, stats.outgoing, stats.replaced), (1, 1, 2));
}

#[test]
fn bad_gzip_is_dropped_and_counted_and_the_next_message_passes() {
    let mut e = engine(NIO_GZIP);
    let mut junk = gz(&invite());
    let n = junk.len();
    junk[n / 2] ^= 0xff;
    junk.truncate(n - 4);
    let mut pkt = inbound(junk);
    assert!(!e.intercept_received(&mut pkt, some_instant()));
    let mut plain = inbound(b"this is not gzip at all, but long enough to be looked at".to_vec());
    assert!(!e.intercept_received(&mut plain, some_instant()));
    assert_eq!(e.intercept_stats().unwrap().decode_failures, 2);
    let mut good = inbound(gz(&invite()));
    assert!(e.intercept_received(&mut good, some_instant()));
    assert_eq!(good.data.as_ref(), invite().as_slice());
}

#[test]
fn short_buffers_skip_the_route() {
    let mut e = engine(NIO_GZIP);
    let mut pkt = inbound(b"\r\n\r\n".to_vec());
    assert!(e.intercept_received(&mut pkt, some_instant()));
    assert_eq!(pkt.data.as_ref(), b"\r\n\r\n");
    let s = e.intercept_stats().unwrap();
    assert_eq!((s.skipped, s.incoming), (1, 0));
}

#[test]
fn without_the_avp_the_original_is_used_and_drop_drops() {
    let mut e = engine(
        r#"
modparam("corex", "network_io_intercept", 1)
modparam("corex", "msg_avp", "$avp(msg)")
event_route[network:msg] {
    if ($ml < 100) { drop; }
    $var(seen) = $ml;
}
request_route { sl_send_reply("200", "OK"); }
"#,
    );
    let mut pkt = inbound(invite());
    assert!(e.intercept_received(&mut pkt, some_instant()));
    assert_eq!(pkt.data.as_ref(), invite().as_slice());
    let mut short = inbound(b"OPTIONS sip:x SIP/2.0\r\n\r\n".to_vec());
    assert!(!e.intercept_received(&mut short, some_instant()));
    assert_eq!(e.intercept_stats().unwrap().dropped, 1);
}

#[test]
fn the_route_can_rewrite_text_and_sees_binary_mb() {
    // $mb holds arbitrary bytes: a gzip stream survives a copy through an AVP.
    let mut e = engine(
        r#"
modparam("corex", "nio_intercept", 1)
modparam("corex", "nio_msg_avp", "$avp(msg)")
event_route[network:msg] {
    $avp(copy) = $mb;
    gzip_decompress("$avp(copy)", "$avp(msg)");
}
request_route { exit; }
"#,
    );
    let mut pkt = inbound(gz(&invite()));
    assert!(e.intercept_received(&mut pkt, some_instant()));
    assert_eq!(pkt.data.as_ref(), invite().as_slice());
}

#[test]
fn nio_intercept_needs_a_non_empty_event_route() {
    let err = compiled("modparam(\"corex\", \"nio_intercept\", 1)\nrequest_route { exit; }\n")
        .unwrap_err();
    assert!(err.contains("event_route[network:msg]"), "{err}");
    assert!(err.contains("t.cfg:5:"), "names the modparam line: {err}");
    let err = compiled(
        "modparam(\"corex\", \"network_io_intercept\", 1)\nevent_route[network:msg] { }\nrequest_route { exit; }\n",
    )
    .unwrap_err();
    assert!(err.contains("missing or empty"), "{err}");
    assert!(
        compiled("modparam(\"corex\", \"nio_intercept\", 0)\nrequest_route { exit; }\n").is_ok()
    );
}

#[test]
fn the_stage_is_off_without_nio_intercept() {
    let mut e = engine("event_route[network:msg] { drop; }\nrequest_route { exit; }\n");
    assert!(e.intercept_stats().is_none());
    let mut pkt = inbound(invite());
    assert!(e.intercept_received(&mut pkt, some_instant()));
}

fn key_file(dir: &std::path::Path, key: &[u8; 32]) -> String {
    let path = dir.join("k.key");
    std::fs::write(&path, hex::encode(key)).expect("write key");
    path.display().to_string()
}

#[test]
fn cipher_profile_encrypts_and_decrypts_in_the_stage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = [42u8; 32];
    let path = key_file(dir.path(), &key);
    let mut e = engine(&format!(
        r#"
modparam("corex", "cipher_profile", "name=edge;alg=xchacha20-poly1305;key_file={path}")
modparam("corex", "nio_intercept", 1)
modparam("corex", "nio_msg_avp", "$avp(msg)")
event_route[network:msg] {{
    if (is_incoming()) {{
        if (!cipher_decrypt("edge", "$mb", "$avp(msg)")) {{ xlog("L_INFO", "bad\n"); }}
    }} else {{
        cipher_encrypt("edge", "$mb", "$avp(msg)");
    }}
}}
request_route {{ sl_send_reply("200", "OK"); }}
"#
    ));
    let peer = Cipher::new("peer", &key, [9; 16]);
    let mut sealed = Vec::new();
    peer.encode(&invite(), &mut sealed).unwrap();
    let mut pkt = inbound(sealed.clone());
    assert!(e.intercept_received(&mut pkt, some_instant()));
    assert_eq!(pkt.data.as_ref(), invite().as_slice());
    let mut out = Vec::new();
    e.on_inbound(pkt, some_instant(), &mut out);
    let mut reply = out.remove(0);
    assert!(e.intercept_sending(&mut reply, some_instant()));
    assert!(!reply.data.windows(7).any(|w| w == b"SIP/2.0"));
    let mut plain = Vec::new();
    peer.decode(&reply.data, &mut plain)
        .expect("the peer decrypts the reply");
    assert!(plain.starts_with(b"SIP/2.0 200 OK"));
    // A flipped bit: dropped and counted.
    let mut bad = sealed;
    bad[30] ^= 1;
    let mut pkt = inbound(bad);
    assert!(!e.intercept_received(&mut pkt, some_instant()));
    assert_eq!(e.intercept_stats().unwrap().decode_failures, 1);
}

#[test]
fn cipher_profile_errors_are_start_up_errors() {
    let err = compiled(
        "modparam(\"corex\", \"cipher_profile\", \"name=a;alg=rot13;key_file=/x\")\n\
         request_route { cipher_encrypt(\"a\", \"$mb\", \"$avp(m)\"); }\n",
    )
    .unwrap_err();
    assert!(err.contains("unknown alg"), "{err}");
    let err = compiled("request_route { cipher_encrypt(\"nope\", \"$mb\", \"$avp(m)\"); }\n")
        .unwrap_err();
    assert!(err.contains("no cipher_profile named \"nope\""), "{err}");
    let err = compiled(
        "modparam(\"corex\", \"cipher_profile\", \"name=a;alg=xchacha20-poly1305;key_file=/nonexistent/k\")\n\
         request_route { cipher_encrypt(\"a\", \"$mb\", \"$avp(m)\"); }\n",
    )
    .unwrap_err();
    assert!(err.contains("key_file /nonexistent/k"), "{err}");
    let err = compiled("request_route { gzip_compress(\"$mb\", \"text\"); }\n").unwrap_err();
    assert!(err.contains("writable variable"), "{err}");
}

/// Runs `routes` on the INVITE; what was sent.
fn sent(routes: &str) -> Vec<Transmit> {
    let mut e = engine(routes);
    let mut out = Vec::new();
    e.on_inbound(inbound(invite()), some_instant(), &mut out);
    out
}

#[test]
fn send_udp_and_send_tcp_relay_a_raw_copy() {
    let out = sent("request_route { send_udp(\"10.0.0.7:5080\"); send(\"10.0.0.8\"); send_tcp(\"10.0.0.9\"); exit; }\n");
    assert_eq!(out.len(), 3);
    for t in &out {
        assert_eq!(t.data.as_ref(), invite().as_slice(), "no Via added");
    }
    assert_eq!(out[0].dst, "10.0.0.7:5080".parse().unwrap());
    assert_eq!((out[1].dst.port(), out[1].proto), (5060, Proto::Udp));
    assert_eq!(
        (out[2].dst, out[2].proto),
        ("10.0.0.9:5060".parse().unwrap(), Proto::Tcp)
    );
    // No argument: the next hop ($du).
    let out = sent("request_route { $du = \"sip:10.1.1.1:7000\"; send(); exit; }\n");
    assert_eq!(out[0].dst, "10.1.1.1:7000".parse().unwrap());
}

#[test]
fn send_data_and_sendx_send_arbitrary_bytes() {
    let out = sent(
        "request_route { send_data(\"sip:10.0.0.5:6000;transport=tcp\", \"hello $rU\"); \
         sendx(\"sip:10.0.0.6\", \"udp:192.0.2.20:5080\", \"x\"); exit; }\n",
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].data.as_ref(), b"hello bob");
    assert_eq!(
        (out[0].dst, out[0].proto),
        ("10.0.0.5:6000".parse().unwrap(), Proto::Tcp)
    );
    assert_eq!(out[1].socket, Some(2), "sent from the named socket");
    assert!(sent("request_route { if (!sendx(\"sip:10.0.0.6\", \"udp:10.9.9.9:1\", \"x\")) { sl_send_reply(\"500\", \"no\"); } }\n")[0]
        .data
        .starts_with(b"SIP/2.0 500"));
}

/// Replies 200 when `cond` holds, else 500.
fn holds(cond: &str) -> bool {
    let out = sent(&format!(
        "request_route {{ if ({cond}) {{ sl_send_reply(\"200\", \"y\"); }} else {{ sl_send_reply(\"500\", \"n\"); }} }}\n"
    ));
    out[0].data.starts_with(b"SIP/2.0 200")
}

#[test]
fn flags_and_is_incoming() {
    assert!(holds("is_incoming()"));
    assert!(!holds("is_faked_msg()"));
    assert!(holds(
        "msg_iflag_set(\"UAC_AUTH\") && msg_iflag_is_set(\"uac_auth\")"
    ));
    assert!(!holds("msg_iflag_is_set(\"USE_UAC_TO\")"));
    assert!(!holds("msg_iflag_set(\"USE_UAC_TO\") && msg_iflag_reset(\"USE_UAC_TO\") && msg_iflag_is_set(\"USE_UAC_TO\")"));
    assert!(holds("setxflag(63) && isxflagset(63) && !isxflagset(0)"));
    assert!(!holds("setxflag(5) && resetxflag(5) && isxflagset(5)"));
    assert!(compiled("request_route { setxflag(64); }\n")
        .unwrap_err()
        .contains("0..63"));
    assert!(compiled("request_route { msg_iflag_set(\"NOPE\"); }\n")
        .unwrap_err()
        .contains("unknown message flag"));
}

#[test]
fn files_read_and_write_binary_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.bin");
    std::fs::write(&path, [0u8, 159, 146, 150, b'\n']).unwrap();
    let p = path.display();
    let out_path = dir.path().join("out.bin");
    let o = out_path.display();
    assert!(holds(&format!(
        "file_read(\"{p}\", \"$var(c)\") && file_write(\"{o}\", \"$var(c)\") && $(var(c){{s.len}}) == 5"
    )));
    assert_eq!(
        std::fs::read(&out_path).unwrap(),
        [0u8, 159, 146, 150, b'\n']
    );
    assert!(!holds(&format!("file_read(\"{p}.missing\", \"$var(c)\")")));
}

#[test]
fn socket_and_source_functions() {
    assert!(holds(
        "set_source_address(\"203.0.113.9:7777\") && $si == \"203.0.113.9\" && $sp == 7777"
    ));
    // An address in variables is read when the message runs (the anycast
    // example config takes it from a header).
    let dynamic = |addr: &str| {
        let out = sent(&format!(
            "request_route {{ $var(a) = \"{addr}\"; if (set_source_address(\"$var(a)\") && $si == \"203.0.113.8\" && $sp == 7070) {{ sl_send_reply(\"200\", \"y\"); }} else {{ sl_send_reply(\"500\", \"n\"); }} }}\n"
        ));
        out[0].data.starts_with(b"SIP/2.0 200")
    };
    assert!(dynamic("203.0.113.8:7070"));
    assert!(!dynamic("not an address"));
    assert!(holds(
        "set_recv_socket(\"udp:192.0.2.20:5080\") && $Rp == 5080"
    ));
    assert!(!holds("set_recv_socket(\"udp:10.9.9.9:1\")"));
    assert!(holds("set_send_socket(\"udp:192.0.2.20:5080\")"));
}

#[test]
fn alias_subdomains_are_myself() {
    let cfg = "modparam(\"corex\", \"alias_subdomains\", \"example.net\")\n\
               modparam(\"corex\", \"alias_subdomains\", \"tcp:tcp-only.org:5070\")\n";
    let check = |cond: &str| {
        let mut e = engine(&format!(
            "{cfg}request_route {{ if ({cond}) {{ sl_send_reply(\"200\", \"y\"); }} else {{ sl_send_reply(\"500\", \"n\"); }} }}\n"
        ));
        let mut out = Vec::new();
        e.on_inbound(inbound(invite()), some_instant(), &mut out);
        out[0].data.starts_with(b"SIP/2.0 200")
    };
    assert!(check("is_myself(\"sip:a.b.example.net\")"));
    assert!(check("is_myself(\"sip:example.net:5060\")"));
    assert!(!check("is_myself(\"sip:notexample.net\")"));
    assert!(check(
        "is_myself(\"sip:x.tcp-only.org:5070;transport=tcp\")"
    ));
    assert!(!check("is_myself(\"sip:x.tcp-only.org:5070\")"));
}

#[test]
fn rpcs_list_sockets_and_aliases() {
    let mut env = env();
    env.services
        .insert(Arc::new(crate::modules::corex::alias::AliasSubdomains(
            vec![
                crate::modules::corex::alias::SubdomainAlias::parse("tls:example.net:5061")
                    .unwrap(),
            ],
        )));
    let s = super::rpc::list_sockets(&env);
    assert_eq!(s["SOCKET"].as_array().unwrap().len(), 3);
    assert_eq!(s["SOCKET"][1]["PROTO"], "tcp");
    assert_eq!(s["SOCKET"][2]["PORT"], 5080);
    let a = super::rpc::list_aliases(&env);
    assert_eq!(a["ALIAS"][0]["ADDR"], "proxy.example.net");
    assert_eq!(a["ALIAS"][1]["ADDR"], "*.example.net");
    assert_eq!(a["ALIAS"][1]["PROTO"], "tls");
}

#[test]
fn allocator_rpcs_report_what_mimalloc_tells() {
    let s = super::rpc::shm_summary();
    assert_eq!(s["allocator"], "mimalloc");
    assert!(s["mimalloc_version"].as_u64().is_some_and(|v| v > 0), "{s}");
    // The process figures are the OS's view (never zero for a running process).
    assert!(
        s["process"]["rss_current"].as_u64().is_some_and(|v| v > 0),
        "{s}"
    );
    assert!(s["committed"].is_object(), "{s}");
    let full = super::rpc::shm_status();
    assert!(full["stats"]["malloc_bins"].is_array(), "{full}");
    let p = super::rpc::pkg_summary(Some(1));
    assert_eq!(p["worker"], 1);
    assert!(p["note"].as_str().is_some_and(|n| n.contains("one heap")));
}

#[test]
fn bad_corex_parameters_are_reported_at_their_line() {
    for (param, value) in [
        ("alias_subdomains", "udp:"),
        ("cipher_profile", "name=x;alg=des;key_file=/k"),
        ("nio_msg_avp", "$var(x)"),
        ("msg_avp", "not an avp"),
    ] {
        let err = compiled(&format!(
            "modparam(\"corex\", \"{param}\", \"{value}\")\nrequest_route {{ exit; }}\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("t.cfg:5:") && err.contains("corex:"),
            "{param}: {err}"
        );
    }
}

proptest::proptest! {
    #![proptest_config(crate::proptest_config(256))]

    /// Any datagram through the gzip stage: no panic, and either dropped or
    /// replaced by what the bytes really decode to; a valid stream of any
    /// payload (at least the minimum length) always passes decoded.
    #[test]
    fn any_bytes_through_the_gzip_stage(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1500)) {
        let mut e = engine(NIO_GZIP);
        let mut pkt = inbound(data.clone());
        let kept = e.intercept_received(&mut pkt, some_instant());
        if data.len() < 32 {
            proptest::prop_assert!(kept);
            proptest::prop_assert_eq!(pkt.data.as_ref(), data.as_slice());
        } else if kept {
            let mut plain = Vec::new();
            proptest::prop_assert!(Gzip.decode(&data, &mut plain).is_ok());
            proptest::prop_assert_eq!(pkt.data.as_ref(), plain.as_slice());
        }
        let zipped = gz(&data);
        let long_enough = zipped.len() >= 32;
        let mut good = inbound(zipped);
        proptest::prop_assert!(e.intercept_received(&mut good, some_instant()));
        if long_enough {
            proptest::prop_assert_eq!(good.data.as_ref(), data.as_slice());
        }
    }
}
