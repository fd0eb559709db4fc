//! websocket as a configuration runs it: the handshake in
//! `event_route[xhttp:request]`, then SIP from and to the upgraded
//! connection.

use std::sync::Arc;

use bytes::Bytes;

use crate::modules::core::Engine;
use crate::modules::testutil::{env, some_instant, LOCAL, SOURCE};
use crate::script::compile::compile;
use crate::script::{parse_str, MemoryFiles, Options};
use crate::sip::{ConnId, Inbound, Proto, Transmit, WsSend};

const CONN: ConnId = ConnId::from_raw(7);

fn compiled(cfg: &str) -> Result<crate::script::compile::Compiled, String> {
    let text = format!(
        "tcp_accept_no_cl=yes\nloadmodule \"sl.so\"\nloadmodule \"tm.so\"\nloadmodule \"pv.so\"\n\
         loadmodule \"rr.so\"\nloadmodule \"textops.so\"\nloadmodule \"nathelper.so\"\n\
         loadmodule \"xhttp.so\"\nloadmodule \"websocket.so\"\n\
         modparam(\"rr\", \"enable_double_rr\", 1)\n{cfg}"
    );
    let files = MemoryFiles::new();
    let parsed = parse_str("x.cfg", &text, &Options::with_files(&files))
        .map_err(|d| d.rendered().join("\n"))?;
    compile(&parsed).map_err(|d| d.rendered().join("\n"))
}

fn engine(cfg: &str) -> Engine {
    engine_with(cfg, None)
}

/// An engine whose runtime reports the WebSocket clients in `peers`.
fn engine_with(cfg: &str, peers: Option<Arc<super::WsPeers>>) -> Engine {
    let compiled = compiled(cfg).unwrap_or_else(|e| panic!("{e}"));
    let mut env = env();
    env.server_header = Bytes::from_static(b"kamailio (5.6.3 (x86_64/linux))");
    if let Some(p) = peers {
        env.services.insert(p);
    }
    Engine::new(Arc::new(env), Arc::new(compiled.program))
}

fn feed(engine: &mut Engine, data: &str, proto: Proto, src: &str) -> Vec<Transmit> {
    let pkt = Inbound {
        data: Bytes::copy_from_slice(data.as_bytes()),
        src: src.parse().unwrap(),
        local: LOCAL.parse().unwrap(),
        proto,
        socket: if proto == Proto::Udp { 0 } else { 1 },
        conn: (proto != Proto::Udp).then_some(CONN),
        arrived: None,
    };
    let mut out = Vec::new();
    engine.on_inbound(pkt, some_instant(), &mut out);
    out
}

const ROUTES: &str = r#"
request_route {
    if (proto==WS && nat_uac_test("64")) {
        append_to_reply("X-Proto: $proto $pr\r\n");
    }
    if ($rU == "close") { ws_close(4000, "Because"); exit; }
    if ($rU == "here") { sl_send_reply("200", "OK"); exit; }
    record_route();
    t_relay();
}
event_route[xhttp:request] {
    if ($hdr(Upgrade)=~"websocket" && $hdr(Connection)=~"Upgrade" && $rm=~"GET") {
        if (ws_handle_handshake()) exit;
    }
    xhttp_reply("404", "Not Found", "", "");
}
"#;

const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Protocol: sip\r\nOrigin: https://phone.example\r\n\r\n";

#[test]
fn handshake_upgrades_or_refuses_and_closes() {
    let mut e = engine(ROUTES);
    let out = feed(&mut e, UPGRADE, Proto::Tcp, SOURCE);
    assert_eq!(out.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&out[0].data),
        "HTTP/1.1 101 Switching Protocols\r\nSia: SIP/2.0/TCP 198.51.100.1:5070\r\n\
         Sec-WebSocket-Protocol: sip\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         Server: kamailio (5.6.3 (x86_64/linux))\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(out[0].flags.websocket, WsSend::Upgrade);
    assert_eq!((out[0].conn, out[0].flags.close), (Some(CONN), false));
    // A wrong version: 426, the connection closes, and the script stops
    // (no 404 after it).
    let v8 = UPGRADE.replace("Version: 13", "Version: 8");
    let out = feed(&mut e, &v8, Proto::Tcp, SOURCE);
    assert_eq!(out.len(), 1);
    let text = String::from_utf8_lossy(&out[0].data).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{text}"
    );
    assert!(out[0].flags.close && out[0].flags.websocket == WsSend::Message);
    let nokey = UPGRADE.replace("Sec-WebSocket-Key", "X-Key");
    let out = feed(&mut e, &nokey, Proto::Tcp, SOURCE);
    assert_eq!(out.len(), 1);
    assert!(String::from_utf8_lossy(&out[0].data).starts_with("HTTP/1.1 400 Bad Request\r\n"));
}

#[test]
fn cors_mode_adds_the_origin() {
    let mut e = engine(&format!(
        "modparam(\"websocket\", \"cors_mode\", 2)\n{ROUTES}"
    ));
    let out = feed(&mut e, UPGRADE, Proto::Tcp, SOURCE);
    let text = String::from_utf8_lossy(&out[0].data).into_owned();
    assert!(
        text.contains("Access-Control-Allow-Origin: https://phone.example\r\n"),
        "{text}"
    );
}

const OPTIONS: &str = "OPTIONS sip:here@192.0.2.10 SIP/2.0\r\n\
    Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKo1\r\nMax-Forwards: 70\r\n\
    From: <sip:alice@192.0.2.10>;tag=1\r\nTo: <sip:here@192.0.2.10>\r\nCall-ID: c1\r\n\
    CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

#[test]
fn messages_over_websocket_read_as_ws() {
    let mut e = engine(ROUTES);
    let out = feed(&mut e, OPTIONS, Proto::Ws, SOURCE);
    assert_eq!(out.len(), 1);
    let text = String::from_utf8_lossy(&out[0].data).into_owned();
    assert!(text.contains("X-Proto: ws ws\r\n"), "{text}");
    assert_eq!((out[0].proto, out[0].conn), (Proto::Ws, Some(CONN)));
    // Over TCP the same request is neither WS nor websocket.
    let out = feed(&mut e, OPTIONS, Proto::Tcp, SOURCE);
    assert!(!String::from_utf8_lossy(&out[0].data).contains("X-Proto"));
}

#[test]
fn relays_between_udp_and_websocket_record_both_transports() {
    let mut e = engine(ROUTES);
    // UDP caller to a WebSocket client, its connection named by an alias.
    let invite = "INVITE sip:bob@df7jal23ls0d.invalid;transport=ws SIP/2.0\r\n\
        Route: <sip:192.0.2.10;lr>\r\n\
        Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKu1\r\nMax-Forwards: 70\r\n\
        From: <sip:carol@203.0.113.5>;tag=c\r\nTo: <sip:bob@192.0.2.10>\r\nCall-ID: c2\r\n\
        CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let with_du = ROUTES.replace(
        "record_route();",
        "record_route(); if (proto==UDP) $du = \"sip:198.51.100.1:5070;transport=ws\";",
    );
    let mut e2 = engine(&with_du);
    let out = feed(&mut e2, invite, Proto::Udp, "203.0.113.5:5060");
    let sent: Vec<_> = out.iter().filter(|t| t.proto == Proto::Ws).collect();
    assert_eq!(sent.len(), 1, "{out:?}");
    let text = String::from_utf8_lossy(&sent[0].data).into_owned();
    assert_eq!(sent[0].dst, SOURCE.parse().unwrap());
    assert_eq!(sent[0].socket, Some(1), "leaves from the TCP socket");
    assert!(
        text.contains("\r\nVia: SIP/2.0/WS  192.0.2.10;branch="),
        "{text}"
    );
    let rr: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Record-Route"))
        .collect();
    assert_eq!(rr.len(), 2, "{text}");
    assert!(
        rr[0].starts_with("Record-Route: <sip:192.0.2.10;transport=ws;r2=on;lr"),
        "{text}"
    );
    assert!(
        rr[1].starts_with("Record-Route: <sip:192.0.2.10;r2=on;lr"),
        "{text}"
    );
    // A WebSocket caller to a UDP callee: the inbound side says ws.
    let invite = "INVITE sip:carol@203.0.113.5 SIP/2.0\r\n\
        Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKw1\r\nMax-Forwards: 70\r\n\
        From: <sip:bob@192.0.2.10>;tag=b\r\nTo: <sip:carol@203.0.113.5>\r\nCall-ID: c3\r\n\
        CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let out = feed(&mut e, invite, Proto::Ws, SOURCE);
    let sent: Vec<_> = out.iter().filter(|t| t.proto == Proto::Udp).collect();
    assert_eq!(sent.len(), 1, "{out:?}");
    let text = String::from_utf8_lossy(&sent[0].data).into_owned();
    assert!(
        text.contains("\r\nVia: SIP/2.0/UDP 192.0.2.10;branch="),
        "{text}"
    );
    let rr: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Record-Route"))
        .collect();
    assert_eq!(rr.len(), 2, "{text}");
    assert!(
        rr[0].starts_with("Record-Route: <sip:192.0.2.10;r2=on;lr"),
        "{text}"
    );
    assert!(
        rr[1].starts_with("Record-Route: <sip:192.0.2.10;transport=ws;r2=on;lr"),
        "{text}"
    );
}

#[test]
fn ws_close_sends_a_close_on_the_connection() {
    let mut e = engine(ROUTES);
    let out = feed(
        &mut e,
        &OPTIONS.replace("here@", "close@"),
        Proto::Ws,
        SOURCE,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags.websocket, WsSend::Close);
    assert_eq!(out[0].conn, Some(CONN));
    assert_eq!(&out[0].data[..], b"\x0f\xa0Because");
    // Not over WebSocket: nothing to close.
    let out = feed(
        &mut e,
        &OPTIONS.replace("here@", "close@"),
        Proto::Tcp,
        SOURCE,
    );
    assert!(out.is_empty());
}

#[test]
fn what_is_not_implemented_is_refused() {
    for (cfg, what) in [
        ("modparam(\"websocket\", \"sub_protocols\", 3)", "msrp"),
        (
            "modparam(\"websocket\", \"event_callback\", \"ksr_ws\")",
            "event_callback",
        ),
        ("modparam(\"websocket\", \"cors_mode\", 3)", "cors_mode"),
    ] {
        let err = compiled(&format!("{cfg}\n{ROUTES}"))
            .err()
            .unwrap_or_default();
        assert!(err.contains(what), "{cfg}: {err}");
    }
    let no_xhttp = "loadmodule \"websocket.so\"\nrequest_route { exit; }\n";
    let files = MemoryFiles::new();
    let parsed = parse_str("x.cfg", no_xhttp, &Options::with_files(&files)).unwrap();
    let err = compile(&parsed)
        .err()
        .map(|d| d.rendered().join("\n"))
        .unwrap_or_default();
    assert!(err.contains("xhttp"), "{err}");
}

#[test]
fn a_finished_closing_handshake_runs_the_closed_event() {
    // The route sends what it saw (on Kamailio's faked OPTIONS).
    let cfg = format!(
        "loadmodule \"corex.so\"\n{ROUTES}\nevent_route[websocket:closed] {{\n\
         send_data(\"sip:203.0.113.9:5060\", \"$rm $si:$sp $proto $ws_conid\");\n\
         }}\n"
    );
    let mut e = engine(&cfg);
    let out = feed(&mut e, "", Proto::Ws, SOURCE);
    assert_eq!(out.len(), 1, "{out:?}");
    let text = String::from_utf8_lossy(&out[0].data).into_owned();
    assert_eq!(
        text,
        format!("OPTIONS 198.51.100.1:5070 tcp {}", CONN.raw())
    );
    // An empty message over TCP is a keep-alive, nothing more.
    assert!(feed(&mut e, "", Proto::Tcp, SOURCE).is_empty());
}

#[test]
fn a_relay_to_a_client_no_longer_connected_fails_at_once() {
    let cfg = ROUTES.replace(
        "record_route();",
        "record_route(); $du = \"sip:198.51.100.1:5070;transport=ws\";",
    );
    let invite = "INVITE sip:bob@192.0.2.10 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKu2\r\nMax-Forwards: 70\r\n\
        From: <sip:carol@203.0.113.5>;tag=c\r\nTo: <sip:bob@192.0.2.10>\r\nCall-ID: c4\r\n\
        CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let peers = Arc::new(super::WsPeers::default());
    let mut e = engine_with(&cfg, Some(peers.clone()));
    let out = feed(&mut e, invite, Proto::Udp, "203.0.113.5:5060");
    assert!(out.iter().all(|t| t.proto == Proto::Udp), "{out:?}");
    let last = String::from_utf8_lossy(&out.last().unwrap().data).into_owned();
    assert!(
        last.starts_with(
            "SIP/2.0 477 Unfortunately error on sending to next hop occurred (477/TM)\r\n"
        ),
        "{last}"
    );
    // Connected: the request goes to it.
    peers.add(
        Proto::Ws,
        SOURCE.parse().unwrap(),
        LOCAL.parse().unwrap(),
        CONN,
    );
    let out = feed(
        &mut e,
        &invite.replace("c4", "c5").replace("Ku2", "Ku3"),
        Proto::Udp,
        "203.0.113.5:5060",
    );
    assert!(out.iter().any(|t| t.proto == Proto::Ws), "{out:?}");
}
