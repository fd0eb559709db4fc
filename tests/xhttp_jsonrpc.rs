//! JSON-RPC over HTTP on the SIP TCP port (xhttp + jsonrpcs), against the
//! real binary running Kamailio's stock `kamailio.cfg` (installed with the
//! kamailio package) with `-A WITH_JSONRPC`: its `event_route[xhttp:request]`
//! closes every reply, answers 403 to a source other than 127.0.0.1,
//! dispatches `/RPC…` to jsonrpcs, and answers other URLs with a 200 page.
//! A plain TCP client, as curl would send it.
//!
//! What Kamailio 5.6.3 answered to the same requests (recorded by hand,
//! see the branch report) differs only in `Server:` and in the method
//! results that name the server.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{loopback_ip, Proxy, RawUa};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(3);

/// The stock configuration, listening on UDP and TCP at the test's address.
fn stock() -> Proxy {
    let text = std::fs::read_to_string("/etc/kamailio/kamailio.cfg")
        .expect("/etc/kamailio/kamailio.cfg (the kamailio package is installed here)");
    assert!(text.contains("event_route[xhttp:request]"));
    let text = text.replacen(
        "#!KAMAILIO",
        "#!KAMAILIO\nlisten=udp:@IP@:@PORT@\nlisten=tcp:@IP@:@PORT@",
        1,
    );
    Proxy::start(&text, &["-A", "WITH_JSONRPC"])
}

/// One connection from `from` (an address of ours): sends `request`, reads
/// until the server closes or `quiet` passes without a byte. What was read,
/// and whether the server closed.
fn exchange(to: SocketAddr, from: Ipv4Addr, request: &[u8], quiet: Duration) -> (String, bool) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(from.into(), 0).into()).unwrap();
    sock.connect_timeout(&to.into(), WAIT).unwrap();
    let mut stream: TcpStream = sock.into();
    stream.write_all(request).unwrap();
    read_all(&mut stream, quiet)
}

fn read_all(stream: &mut TcpStream, quiet: Duration) -> (String, bool) {
    stream.set_read_timeout(Some(quiet)).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Head and body of one HTTP reply; the body's length is checked.
fn split(reply: &str) -> (&str, &str) {
    let (head, body) = reply.split_once("\r\n\r\n").expect("a whole reply");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(body.len(), len, "{reply}");
    (head, body)
}

fn local() -> Ipv4Addr {
    Ipv4Addr::LOCALHOST
}

#[test]
fn stock_config_answers_json_rpc_over_http_and_sip_on_the_same_port() {
    let proxy = stock();
    let px = proxy.addr();
    let quiet = Duration::from_millis(500);

    // core.version: 200, the reply as Kamailio writes it, then closed
    // (set_reply_close).
    let (reply, closed) = exchange(
        px,
        local(),
        &post(
            "/RPC",
            r#"{"jsonrpc":"2.0","method":"core.version","id":1}"#,
        ),
        quiet,
    );
    assert!(closed, "set_reply_close: {reply}");
    let (head, body) = split(&reply);
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"));
    let sia = lines.next().unwrap();
    assert!(sia.starts_with("Sia: SIP/2.0/TCP 127.0.0.1:"), "{head}");
    assert_eq!(lines.next(), Some("Content-Type: application/json"));
    assert!(lines.next().unwrap().starts_with("Server: "), "{head}");
    assert!(lines.next().unwrap().starts_with("Content-Length: "));
    assert_eq!(lines.next(), None);
    // pretty_format 1: tabs and newlines, as srjson prints.
    assert!(
        body.starts_with("{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"result\":\t\"ringsip "),
        "{body}"
    );
    assert!(body.ends_with(",\n\t\"id\":\t1\n}"), "{body}");

    // No such method: 500 with Kamailio's error object.
    let (reply, _) = exchange(
        px,
        local(),
        &post("/RPC", r#"{"jsonrpc":"2.0","method":"no.such","id":3}"#),
        quiet,
    );
    let (head, body) = split(&reply);
    assert!(
        head.starts_with("HTTP/1.1 500 Method Not Found\r\n"),
        "{head}"
    );
    assert_eq!(
        body,
        "{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"error\":\t{\n\t\t\"code\":\t500,\n\t\t\"message\":\t\"Method Not Found\"\n\t},\n\t\"id\":\t3\n}"
    );

    // Another URL: the stock page, HTTP/1.0 kept in the reply.
    let (reply, closed) = exchange(
        px,
        local(),
        b"GET /foo?x=1 HTTP/1.0\r\nHost: localhost\r\n\r\n",
        quiet,
    );
    assert!(closed);
    let (head, body) = split(&reply);
    assert!(head.starts_with("HTTP/1.0 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nContent-Type: text/html\r\n"), "{head}");
    assert_eq!(body, "<html><body>Wrong URL /foo?x=1</body></html>");

    // Not from 127.0.0.1: 403 naming the source.
    let other = loopback_ip();
    let (reply, _) = exchange(
        px,
        other,
        &post(
            "/RPC",
            r#"{"jsonrpc":"2.0","method":"core.version","id":1}"#,
        ),
        quiet,
    );
    let (head, body) = split(&reply);
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nSia: SIP/2.0/TCP {other}:")),
        "{head}"
    );
    assert_eq!(
        body,
        format!("<html><body>Not allowed from {other}</body></html>")
    );

    // Not JSON: no answer, the connection stays open (as with Kamailio).
    let (reply, closed) = exchange(px, local(), &post("/RPC", r#"{"jsonrpc":"#), quiet);
    assert_eq!((reply.as_str(), closed), ("", false));

    // Expect: 100-continue is answered before the body is sent.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.connect_timeout(&px.into(), WAIT).unwrap();
    let mut stream: TcpStream = sock.into();
    let body = r#"{"jsonrpc":"2.0","method":"core.uptime","id":"u"}"#;
    write!(
        stream,
        "POST /RPC HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let (interim, _) = read_all(&mut stream, Duration::from_millis(300));
    assert_eq!(
        interim,
        "HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(body.as_bytes()).unwrap();
    let (reply, _) = read_all(&mut stream, quiet);
    let (head, body) = split(&reply);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["id"], "u");
    assert!(v["result"]["uptime"].is_number(), "{body}");

    // SIP over the same TCP port: the stock keep-alive answer.
    let ua = RawUa::bind();
    let options = ua.options(px).replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let (reply, _) = exchange(px, local(), options.as_bytes(), quiet);
    assert!(reply.starts_with("SIP/2.0 200 Keepalive\r\n"), "{reply}");
}

#[test]
fn ul_dump_over_http_shows_a_registration_made_over_sip() {
    let proxy = stock();
    let px = proxy.addr();
    let ua = RawUa::bind();
    let me = ua.addr();
    let register = format!(
        "REGISTER sip:{px} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-x1\r\nMax-Forwards: 70\r\n\
         From: <sip:alice@{px}>;tag=a1\r\nTo: <sip:alice@{px}>\r\nCall-ID: xhttp-reg@x\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:alice@{me}>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
    );
    ua.send(px, &register);
    let ok = ua.expect_msg(WAIT);
    assert_eq!(ok.status(), Some(200), "{ok:?}");

    let (reply, _) = exchange(
        px,
        local(),
        &post("/RPC/ul", r#"{"jsonrpc":"2.0","method":"ul.dump","id":2}"#),
        Duration::from_millis(500),
    );
    let (head, body) = split(&reply);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let v: Value = serde_json::from_str(body).unwrap();
    let domain = &v["result"]["Domains"][0]["Domain"];
    assert_eq!(domain["Domain"], "location");
    let aor = &domain["AoRs"][0]["Info"];
    assert_eq!(aor["AoR"], "alice", "{body}");
    assert_eq!(
        aor["Contacts"][0]["Contact"]["Address"],
        format!("sip:alice@{me}")
    );
}

/// Without `set_reply_close()` the connection stays open: several requests,
/// HTTP and SIP, on one connection; a route that answers nothing sends
/// nothing; `url_skip` keeps a URL away from the route.
#[test]
fn keep_alive_and_url_filters() {
    let cfg = r#"#!KAMAILIO
listen=tcp:@IP@:@PORT@
listen=udp:@IP@:@PORT@
tcp_accept_no_cl=yes
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "xhttp.so"
loadmodule "jsonrpcs.so"
modparam("xhttp", "url_skip", "^/skip")
request_route {
    if (is_method("OPTIONS")) { sl_send_reply("200", "Alive"); }
    exit;
}
event_route[xhttp:request] {
    if ($hu == "/quiet") { exit; }
    xhttp_reply("200", "OK", "text/plain", "$rm $hu $hdr(X-N) [$rb]");
}
"#;
    let proxy = Proxy::start(cfg, &[]);
    let px = proxy.addr();
    let ua = RawUa::bind();
    let options = ua.options(px).replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let mut pipelined = Vec::new();
    pipelined.extend_from_slice(b"GET /a HTTP/1.1\r\nX-N: 1\r\n\r\n");
    pipelined.extend_from_slice(b"GET /skip/b HTTP/1.1\r\nX-N: 2\r\n\r\n");
    pipelined.extend_from_slice(b"GET /quiet HTTP/1.1\r\nX-N: 3\r\n\r\n");
    pipelined.extend_from_slice(b"PUT /c HTTP/1.0\r\nX-N: 4\r\nContent-Length: 3\r\n\r\nxyz");
    pipelined.extend_from_slice(options.as_bytes());
    let (got, closed) = exchange(px, local(), &pipelined, Duration::from_millis(700));
    assert!(!closed, "kept open: {got}");
    let bodies: Vec<&str> = got
        .split("HTTP/1.")
        .filter(|r| !r.is_empty())
        .map(|r| r.split("\r\n\r\n").nth(1).unwrap_or(""))
        .collect();
    assert!(bodies[0] == "GET /a 1 []", "{got}");
    assert!(bodies[1].starts_with("PUT /c 4 [xyz]"), "{got}");
    assert!(got.contains("SIP/2.0 200 Alive\r\n"), "{got}");
    assert_eq!(got.matches("HTTP/1.").count(), 2, "{got}");
}

/// The same over TLS: JSON-RPC on a `tls:` listen, the reply's `Sia` names TLS.
#[test]
fn json_rpc_over_tls() {
    use rustls::pki_types::{CertificateDer, ServerName};

    let addr = common::free_udp_addr();
    let tls_port = std::net::TcpListener::bind((addr.ip(), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tls_addr = SocketAddr::new(addr.ip(), tls_port);
    let certified = rcgen::generate_simple_self_signed(vec![addr.ip().to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let cfg = format!(
        r#"#!KAMAILIO
listen=@LISTEN@
listen=tls:{tls_addr}
enable_tls=yes
tcp_accept_no_cl=yes
log_stderror=yes
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xhttp.so"
loadmodule "jsonrpcs.so"
request_route {{
    if (method == "OPTIONS") {{ sl_send_reply("200", "OK"); }}
    exit;
}}
event_route[xhttp:request] {{
    set_reply_close();
    if ($hu =~ "^/RPC") {{ jsonrpc_dispatch(); exit; }}
    xhttp_reply("200", "OK", "text/plain", "$pr $hu");
}}
"#
    );
    let proxy = Proxy::builder(&cfg)
        .listen(addr)
        .args([
            "--tls-certificate".to_string(),
            cert.display().to_string(),
            "--tls-private-key".to_string(),
            key.display().to_string(),
        ])
        .start();

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(certified.cert.der().to_vec()))
        .unwrap();
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let exchange_tls = |request: &[u8]| -> String {
        let name = ServerName::IpAddress(addr.ip().into());
        let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
        let sock = TcpStream::connect_timeout(&tls_addr, WAIT).unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(request).unwrap();
        let mut got = Vec::new();
        // set_reply_close: the server closes after the reply.
        if let Err(e) = tls.read_to_end(&mut got) {
            // A close without close_notify still ends the reply.
            assert!(!got.is_empty(), "{e}: {}", proxy.stderr());
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    let reply = exchange_tls(&post(
        "/RPC",
        r#"{"jsonrpc":"2.0","method":"core.echo","params":["tls"],"id":9}"#,
    ));
    let (head, body) = split(&reply);
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\nSia: SIP/2.0/TLS "),
        "{head}"
    );
    assert_eq!(body, r#"{"jsonrpc":"2.0","result":["tls"],"id":9}"#);
    let reply = exchange_tls(b"GET /page HTTP/1.1\r\nHost: h\r\n\r\n");
    let (_, body) = split(&reply);
    assert_eq!(body, "tls /page");
}
