//! SIP over WebSocket (RFC 7118) against the real binary, with a small
//! WebSocket client written here (raw RFC 6455 frames): the handshake in
//! `event_route[xhttp:request]`, REGISTER over ws, a UDP caller reaching the
//! ws client through `lookup("location")` + `t_relay()` on its connection,
//! a ws caller reaching a UDP callee with double Record-Route, ping/pong,
//! fragmented and large messages, keep-alive pings, the close handshake
//! and `ws_close`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(5);

const CONFIG: &str = r#"#!KAMAILIO
listen=@IP@:@PORT@
tcp_accept_no_cl=yes
debug=1
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "nathelper.so"
loadmodule "xhttp.so"
loadmodule "websocket.so"
loadmodule "xlog.so"
modparam("websocket", "keepalive_mechanism", @KA_MECH@)
modparam("websocket", "keepalive_timeout", 1)
modparam("websocket", "ping_application_data", "still there?")
modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")
modparam("rr", "enable_double_rr", 1)

request_route {
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {
        sl_send_reply("200", "Keepalive");
        exit;
    }
    if (nat_uac_test("64")) {
        force_rport();
        if (is_method("REGISTER")) {
            fix_nated_register();
        } else {
            add_contact_alias();
        }
    }
    if (has_totag()) {
        if (loose_route()) {
            if ($du == "") {
                handle_ruri_alias();
            }
            t_relay();
            exit;
        }
        if (is_method("ACK") && t_check_trans()) {
            t_relay();
        }
        exit;
    }
    if (is_method("REGISTER")) {
        save("location");
        exit;
    }
    if ($rU == "echo") {
        append_to_reply("X-Proto: $proto $pr\r\n");
        if (proto == WS) {
            append_to_reply("X-Is-WS: yes\r\n");
        }
        sl_send_reply("200", "Echo");
        exit;
    }
    if ($rU == "close") {
        ws_close(4000, "Because");
        exit;
    }
    record_route();
    if ($rU =~ "^ws") {
        if (!lookup("location")) {
            sl_send_reply("404", "Not Found");
            exit;
        }
    } else {
        $du = "sip:" + $hdr(X-Callee);
    }
    if (!t_relay()) {
        sl_reply_error();
    }
}

event_route[websocket:closed] {
    xlog("L_ERR", "WS CLOSED $si:$sp $proto $ws_conid\n");
}

event_route[xhttp:request] {
    if ($hdr(Upgrade) =~ "websocket" && $hdr(Connection) =~ "Upgrade" && $rm =~ "GET") {
        if (ws_handle_handshake()) {
            exit;
        }
    }
    xhttp_reply("404", "Not Found", "", "");
}
"#;

/// Waits until the proxy logged `event_route[websocket:closed]` for the
/// client at `client`.
fn wait_closed_event(p: &Proxy, client: SocketAddr) {
    let want = format!("WS CLOSED {client} tcp ");
    let deadline = Instant::now() + WAIT;
    while !p.stderr().contains(&want) {
        assert!(
            Instant::now() < deadline,
            "no \"{want}\" in:\n{}",
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn proxy(keepalive_mechanism: u8) -> Proxy {
    Proxy::start(
        &CONFIG.replace("@KA_MECH@", &keepalive_mechanism.to_string()),
        &[],
    )
}

/// What the server sent, one frame.
#[derive(Debug)]
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// A byte stream: TCP, or TLS over TCP.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// A WebSocket client over a TCP (ws) or TLS (wss) connection.
struct WsClient {
    stream: Box<dyn Stream>,
    /// The TCP socket under it (timeouts).
    tcp: TcpStream,
    local: SocketAddr,
    buf: Vec<u8>,
    /// Pings the server sent while we waited for something else.
    pings: Vec<Vec<u8>>,
}

const UPGRADE: &str = "GET / HTTP/1.1\r\nHost: ringsip\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n";

impl WsClient {
    /// Connects and sends `request`; the HTTP answer's head.
    fn open(to: SocketAddr, request: &str) -> (WsClient, String) {
        WsClient::open_over(to, request, None)
    }

    /// [`open`](Self::open), over TLS when `tls` is given.
    fn open_over(
        to: SocketAddr,
        request: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> (WsClient, String) {
        let tcp = TcpStream::connect(to).expect("connect");
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        let local = tcp.local_addr().unwrap();
        let stream: Box<dyn Stream> = match tls {
            None => Box::new(tcp.try_clone().unwrap()),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("sip.test").unwrap();
                let conn = rustls::ClientConnection::new(config, name).unwrap();
                Box::new(rustls::StreamOwned::new(conn, tcp.try_clone().unwrap()))
            }
        };
        let mut c = WsClient {
            stream,
            tcp,
            local,
            buf: Vec::new(),
            pings: Vec::new(),
        };
        c.stream.write_all(request.as_bytes()).unwrap();
        let head = loop {
            if let Some(end) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&c.buf[..end + 4]).into_owned();
                c.buf.drain(..end + 4);
                break head;
            }
            assert!(c.fill(), "connection closed before the answer");
        };
        (c, head)
    }

    fn connect(to: SocketAddr) -> WsClient {
        let (c, head) = WsClient::open(to, UPGRADE);
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{head}"
        );
        c
    }

    /// Reads more; false at end of stream.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// One masked frame as a client sends it.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0x5a, 0x13, 0xc7, 0x81];
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn send_text(&mut self, text: &str) {
        self.send_raw(&Self::frame(true, 1, text.as_bytes()));
    }

    /// The next frame; `None` at end of stream.
    fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// The next SIP message (text frame), keeping the pings seen meanwhile.
    fn recv_sip(&mut self) -> SipMsg {
        loop {
            let f = self.next_frame().expect("a frame before the end");
            match f.opcode {
                1 => {
                    assert!(f.fin, "one frame per message");
                    return SipMsg::new(f.payload, None);
                }
                9 => self.pings.push(f.payload),
                other => panic!("unexpected frame {other}: {:?}", f.payload),
            }
        }
    }
}

/// A server frame off the front of `buf` and its length. Server frames are
/// never masked (RFC 6455 §5.1).
fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "a server frame is not masked");
    let (len, at) = match buf[1] & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(buf.get(2..10)?);
            (u64::from_be_bytes(n) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((
        Frame {
            fin: buf[0] & 0x80 != 0,
            opcode: buf[0] & 0x0f,
            payload,
        },
        at + len,
    ))
}

/// A request from the ws client, as a browser stack writes it (an
/// unresolvable `.invalid` host in Via and Contact).
fn ws_request(method: &str, ruri: &str, call: &str, extra: &str) -> String {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:wsalice@example.com>;tag=ws{call}\r\n\
         To: <{ruri}>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\n\
         Contact: <sip:wsalice@df7jal23ls0d.invalid;transport=ws>\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// The reply to `req` with `code`, as a UA writes it (Vias, Record-Route,
/// From, To with a tag, Call-ID, CSeq copied).
fn reply(req: &SipMsg, code: u16, reason: &str, contact: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for (name, value) in req.all_headers() {
        let name_l = name.to_ascii_lowercase();
        if [
            "via",
            "v",
            "record-route",
            "from",
            "f",
            "call-id",
            "i",
            "cseq",
        ]
        .contains(&name_l.as_str())
        {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let to = req.header("To").expect("To");
    out.push_str(&format!(
        "To: {to};tag=callee\r\nContact: <{contact}>\r\nContent-Length: 0\r\n\r\n"
    ));
    out
}

#[test]
fn handshake_is_answered_as_kamailio_answers_it() {
    let p = proxy(0);
    let (_c, head) = WsClient::open(p.addr(), UPGRADE);
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\nSia: SIP/2.0/TCP 127.0.0.1:"),
        "{head}"
    );
    assert!(
        head.contains(
            "\r\nSec-WebSocket-Protocol: sip\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        ),
        "{head}"
    );
    // No sip sub-protocol: 400, then the connection closes.
    let (mut c, head) = WsClient::open(
        p.addr(),
        &UPGRADE.replace("Protocol: sip", "Protocol: chat"),
    );
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(
        head.contains("\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n"),
        "{head}"
    );
    assert!(!c.fill(), "closed after a refusal");
    let (mut c, head) = WsClient::open(p.addr(), &UPGRADE.replace("Version: 13", "Version: 8"));
    assert!(
        head.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{head}"
    );
    assert!(!c.fill(), "closed after a refusal");
    // Plain HTTP still reaches xhttp_reply.
    let (_c, head) = WsClient::open(p.addr(), "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
}

#[test]
fn sip_over_websocket_frames() {
    let p = proxy(0);
    let mut c = WsClient::connect(p.addr());
    let echo = ws_request("OPTIONS", "sip:echo@127.0.0.1", "e1", "");
    c.send_text(&echo);
    let r = c.recv_sip();
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert_eq!(r.header("X-Proto"), Some("ws ws"));
    assert_eq!(r.header("X-Is-WS"), Some("yes"));
    // Fragmented, with a ping in between (answered at once, same data),
    // sent in pieces across reads.
    let bytes = ws_request("OPTIONS", "sip:echo@127.0.0.1", "e2", "").into_bytes();
    let (a, b) = bytes.split_at(40);
    let mut wire = WsClient::frame(false, 1, a);
    wire.extend(WsClient::frame(true, 9, b"are you there"));
    wire.extend(WsClient::frame(true, 0, b));
    for piece in wire.chunks(17) {
        c.send_raw(piece);
        std::thread::sleep(Duration::from_millis(2));
    }
    let pong = c.next_frame().unwrap();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (10, b"are you there".as_slice())
    );
    let r = c.recv_sip();
    assert_eq!((r.status(), r.header("Call-ID")), (Some(200), Some("e2")));
    // A message larger than one read: 30 000 bytes of headers in one frame.
    let pad: String = (0..25)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "p".repeat(1200)))
        .collect();
    let big = ws_request("OPTIONS", "sip:echo@127.0.0.1", "e3", &pad);
    assert!(big.len() > 30_000);
    c.send_text(&big);
    let r = c.recv_sip();
    assert_eq!((r.status(), r.header("Call-ID")), (Some(200), Some("e3")));
    // The close handshake: our close answered with 1000, then the end.
    c.send_raw(&WsClient::frame(true, 8, &[0x03, 0xe8, b'b', b'y', b'e']));
    let close = c.next_frame().unwrap();
    assert_eq!(close.opcode, 8);
    assert_eq!(&close.payload[..2], &[0x03, 0xe8]);
    assert!(c.next_frame().is_none(), "closed after the close handshake");
    wait_closed_event(&p, c.local);
}

#[test]
fn an_unmasked_client_frame_closes_with_protocol_error() {
    let p = proxy(0);
    let mut c = WsClient::connect(p.addr());
    let text = ws_request("OPTIONS", "sip:echo@127.0.0.1", "u1", "");
    let mut f = vec![0x81, 126];
    f.extend_from_slice(&(text.len() as u16).to_be_bytes());
    f.extend_from_slice(text.as_bytes());
    c.send_raw(&f);
    let close = c.next_frame().expect("a close frame");
    assert_eq!(close.opcode, 8);
    assert_eq!(&close.payload[..], b"\x03\xeaProtocol error");
    assert!(c.next_frame().is_none());
}

#[test]
fn ws_close_closes_the_connection() {
    let p = proxy(0);
    let mut c = WsClient::connect(p.addr());
    c.send_text(&ws_request("OPTIONS", "sip:close@127.0.0.1", "c1", ""));
    let close = c.next_frame().expect("a close frame");
    assert_eq!(close.opcode, 8);
    assert_eq!(&close.payload[..], b"\x0f\xa0Because");
    // As Kamailio, the server waits for our answer to close.
    c.tcp
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waiting = c.stream.read(&mut byte);
    assert!(
        matches!(&waiting, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "still open: {waiting:?}"
    );
    c.tcp.set_read_timeout(Some(WAIT)).unwrap();
    c.send_raw(&WsClient::frame(true, 8, &[0x0f, 0xa0]));
    assert!(c.next_frame().is_none(), "closed once answered");
    wait_closed_event(&p, c.local);
}

#[test]
fn udp_caller_reaches_the_registered_websocket_client_and_back() {
    let p = proxy(0);
    let mut ws = WsClient::connect(p.addr());
    ws.send_text(
        &ws_request("REGISTER", "sip:127.0.0.1", "r1", "Expires: 600\r\n")
            .replace("To: <sip:127.0.0.1>", "To: <sip:wsalice@127.0.0.1>")
            .replace(
                "From: <sip:wsalice@example.com>",
                "From: <sip:wsalice@127.0.0.1>",
            ),
    );
    let r = ws.recv_sip();
    assert_eq!(r.status(), Some(200), "{}", r.text());
    let contact = r.header("Contact").unwrap_or_default();
    assert!(contact.contains("received=\"sip:127.0.0.1:"), "{contact}");

    let caller = RawUa::bind();
    let invite = caller.request("INVITE", "sip:wsalice@127.0.0.1", &[], "");
    caller.send(p.addr(), &invite);
    let inv = ws.recv_sip();
    assert_eq!(inv.method(), Some("INVITE"), "{}", inv.text());
    let text = inv.text();
    let vias = inv.headers("Via");
    let me = p.addr();
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/WS  {me};branch=")),
        "Kamailio's two spaces: {text}"
    );
    let rr = inv.headers("Record-Route");
    assert_eq!(rr.len(), 2, "{text}");
    assert!(rr[0].contains(";transport=ws;r2=on;lr"), "{text}");
    assert!(
        !rr[1].contains("transport=") && rr[1].contains(";r2=on;lr"),
        "{text}"
    );

    ws.send_text(&reply(
        &inv,
        180,
        "Ringing",
        "sip:wsalice@df7jal23ls0d.invalid;transport=ws",
    ));
    ws.send_text(&reply(
        &inv,
        200,
        "OK",
        "sip:wsalice@df7jal23ls0d.invalid;transport=ws",
    ));
    let ok = caller.expect_msg_where(WAIT, |m| m.status() == Some(200));
    assert_eq!(ok.headers("Record-Route").len(), 2, "{}", ok.text());

    // The caller's BYE follows the Record-Route back to the ws client.
    let route: Vec<String> = ok
        .headers("Record-Route")
        .iter()
        .rev()
        .map(|s| s.to_string())
        .collect();
    let bye = format!(
        "BYE sip:wsalice@df7jal23ls0d.invalid;transport=ws SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK-bye1\r\nMax-Forwards: 70\r\n\
         Route: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        route.join(", "),
        ok.header("From").unwrap(),
        ok.header("To").unwrap(),
        ok.header("Call-ID").unwrap(),
        me = caller.addr(),
    );
    let bye_alias = bye.replace(
        "sip:wsalice@df7jal23ls0d.invalid;transport=ws",
        &format!(
            "sip:wsalice@df7jal23ls0d.invalid;transport=ws;alias=127.0.0.1~{}~5",
            ws.local.port()
        ),
    );
    caller.send(p.addr(), &bye_alias);
    let got = ws.recv_sip();
    assert_eq!(got.method(), Some("BYE"), "{}", got.text());
    ws.send_text(&reply(
        &got,
        200,
        "OK",
        "sip:wsalice@df7jal23ls0d.invalid;transport=ws",
    ));
    let ok = caller.expect_msg_where(WAIT, |m| m.status() == Some(200));
    assert_eq!(ok.header("CSeq"), Some("2 BYE"));

    // Once the client is gone, nothing can reach it: no connection is
    // opened, t_relay() fails at once (the script's sl_reply_error()).
    let gone = ws.local;
    drop(ws);
    let deadline = Instant::now() + WAIT;
    'retry: loop {
        // Until the proxy has seen the connection close, the INVITE goes
        // nowhere (and times out later): try again.
        assert!(Instant::now() < deadline, "{gone} still taken as connected");
        let invite = caller.request("INVITE", "sip:wsalice@127.0.0.1", &[], "");
        caller.send(p.addr(), &invite);
        let wait_until = Instant::now() + Duration::from_millis(500);
        while let Some(m) = caller.recv_msg(wait_until.saturating_duration_since(Instant::now())) {
            if m.status().is_some_and(|s| s >= 200) {
                assert_eq!(m.status(), Some(500), "{}", m.text());
                assert_eq!(
                    m.reason(),
                    Some("I'm terribly sorry, server error occurred (1/SL)")
                );
                break 'retry;
            }
        }
    }
}

#[test]
fn websocket_caller_reaches_a_udp_callee_with_double_record_route() {
    let p = proxy(0);
    let mut ws = WsClient::connect(p.addr());
    let callee = RawUa::bind();
    let invite = ws_request(
        "INVITE",
        "sip:carol@127.0.0.1",
        "i1",
        &format!("X-Callee: {}\r\n", callee.addr()),
    );
    ws.send_text(&invite);
    let trying = ws.recv_sip();
    assert_eq!(trying.status(), Some(100));
    let got = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let text = got.text();
    let rr = got.headers("Record-Route");
    assert_eq!(rr.len(), 2, "{text}");
    assert!(
        !rr[0].contains("transport=") && rr[0].contains(";r2=on;lr"),
        "{text}"
    );
    assert!(rr[1].contains(";transport=ws;r2=on;lr"), "{text}");
    let vias = got.headers("Via");
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP {};branch=", p.addr())),
        "{text}"
    );
    assert!(
        vias[1].starts_with("SIP/2.0/WS df7jal23ls0d.invalid;"),
        "{text}"
    );
    assert!(
        got.header_param("Via", "rport").is_some() || vias[1].contains("rport="),
        "{text}"
    );
    let contact = got.header("Contact").unwrap_or_default();
    assert!(
        contact.contains(";alias=127.0.0.1~") && contact.contains("~5"),
        "{contact}"
    );
    callee.send(
        got.source().unwrap(),
        reply(&got, 200, "OK", &format!("sip:carol@{}", callee.addr())),
    );
    let ok = ws.recv_sip();
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert_eq!(ok.header("Call-ID"), Some("i1"));
}

#[test]
fn idle_connections_are_pinged() {
    let p = proxy(1);
    let mut c = WsClient::connect(p.addr());
    let f = c
        .next_frame()
        .expect("a keep-alive within the read timeout");
    assert_eq!(
        (f.opcode, f.payload.as_slice()),
        (9, b"still there?".as_slice())
    );
    // Answered, the connection stays.
    c.send_raw(&WsClient::frame(true, 10, b"still there?"));
    c.send_text(&ws_request("OPTIONS", "sip:echo@127.0.0.1", "k1", ""));
    let r = c.recv_sip();
    assert_eq!(r.status(), Some(200));
}

/// `ringsip ctl -s unix:SOCK --json ARGS…`: exit code and stdout.
fn ctl(sock: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(common::proxy::ringsip_bin())
        .arg("ctl")
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .arg("--json")
        .args(args)
        .output()
        .expect("run ringsip ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn ws_rpc_commands() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ws.ctl");
    let p = Proxy::builder(&CONFIG.replace("@KA_MECH@", "0"))
        .arg("--ctl")
        .arg(sock.display().to_string())
        .start();
    let mut c = WsClient::connect(p.addr());
    let me = c.local;
    let (code, out) = ctl(&sock, &["ws.dump"]);
    assert_eq!(code, 0, "{out}");
    let dump: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(dump["info"]["wscounter"], 1, "{out}");
    assert_eq!(dump["info"]["truncated"], "no", "{out}");
    let (id, text) = dump["connections"]
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .expect("one connection");
    assert_eq!(
        text,
        format!(
            "ws:{me} -> ws:{} (state: OPEN,  last used 0s ago, sub-protocol: sip)",
            p.addr()
        )
    );
    for (rpc, opcode) in [("ws.ping", 9), ("ws.pong", 10)] {
        let (code, out) = ctl(&sock, &[rpc, &id]);
        assert_eq!(code, 0, "{out}");
        let f = c.next_frame().expect("the frame asked for");
        assert_eq!(
            (f.opcode, f.payload.as_slice()),
            (opcode, b"still there?".as_slice())
        );
    }
    let (code, out) = ctl(&sock, &["ws.ping", "99"]);
    assert_ne!(code, 0);
    assert!(out.contains("Unknown connection ID"), "{out}");
    // Disabled: a handshake gets 503; enabled again: 101.
    assert_eq!(ctl(&sock, &["ws.disable"]).0, 0);
    let (_, head) = WsClient::open(p.addr(), UPGRADE);
    assert!(
        head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{head}"
    );
    assert_eq!(ctl(&sock, &["ws.enable"]).0, 0);
    let _again = WsClient::connect(p.addr());
    // ws.close starts the closing handshake.
    assert_eq!(ctl(&sock, &["ws.close", &id]).0, 0);
    let f = c.next_frame().expect("a close frame");
    assert_eq!(
        (f.opcode, f.payload.as_slice()),
        (8, b"\x03\xe8Normal closure".as_slice())
    );
    c.send_raw(&WsClient::frame(true, 8, &[0x03, 0xe8]));
    assert!(c.next_frame().is_none());
    wait_closed_event(&p, me);
}

/// A CA and a certificate for `sip.test` signed by it: (CA PEM, cert file,
/// key file) in `dir`.
fn tls_files(dir: &std::path::Path) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["sip.test".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let (c, k) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (ca.pem().into_bytes(), c, k)
}

#[test]
fn secure_websocket_reads_as_wss() {
    use rustls::pki_types::pem::PemObject;
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path());
    let cfg = CONFIG
        .replace("@KA_MECH@", "0")
        .replace(
            "listen=@IP@:@PORT@\n",
            "listen=udp:@IP@:@PORT@\nlisten=tls:@IP@:@PORT@\n",
        )
        .replace(
            "loadmodule \"websocket.so\"\n",
            &format!(
                "loadmodule \"websocket.so\"\nloadmodule \"tls.so\"\n\
                 modparam(\"tls\", \"certificate\", \"{}\")\n\
                 modparam(\"tls\", \"private_key\", \"{}\")\n",
                cert.display(),
                key.display()
            ),
        );
    let p = Proxy::start(&cfg, &[]);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let (mut c, head) = WsClient::open_over(p.addr(), UPGRADE, Some(config));
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\nSia: SIP/2.0/TLS "),
        "{head}"
    );
    c.send_text(&ws_request("OPTIONS", "sip:echo@127.0.0.1", "s1", ""));
    let r = c.recv_sip();
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert_eq!(r.header("X-Proto"), Some("wss wss"));
    assert_eq!(r.header("X-Is-WS"), None, "proto==WS is false over wss");
    // A wss caller to a UDP callee: our Via for UDP, Record-Route both ways.
    let callee = RawUa::bind();
    let invite = ws_request(
        "INVITE",
        "sip:carol@127.0.0.1",
        "s2",
        &format!("X-Callee: {}\r\n", callee.addr()),
    )
    .replace("SIP/2.0/WS ", "SIP/2.0/WSS ");
    c.send_text(&invite);
    let got = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let rr = got.headers("Record-Route");
    assert_eq!(rr.len(), 2, "{}", got.text());
    assert!(rr[1].contains(";transport=wss;r2=on;lr"), "{}", got.text());
    let contact = got.header("Contact").unwrap_or_default();
    assert!(contact.contains("~6"), "wss alias: {contact}");
}
