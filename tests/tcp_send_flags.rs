//! `set_reply_close`, `set_forward_close`, `set_forward_no_connect` and
//! `set_reply_no_connect` against the real binary over TCP (Kamailio core
//! functions): the connection closes after the reply or the relayed
//! request, and no connection is opened when the script forbids it, while
//! an open one is still used.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::net::loopback_ip;
use common::proxy::Proxy;
use common::tcp::{reply_to, TcpUa};
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(5);

/// `listen=` serves UDP and TCP. `X-Dst` names where to relay.
fn config() -> String {
    r#"#!KAMAILIO
listen=@IP@:@PORT@
debug=2
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "textops.so"
loadmodule "siputils.so"

request_route {
    if (is_method("OPTIONS") && uri == myself) {
        if ($rU == "close") {
            set_reply_close();
        }
        sl_send_reply("200", "OK");
        exit;
    }
    if (is_method("MESSAGE") && $rU == "t-close") {
        set_reply_close();
        t_newtran();
        t_reply("202", "Accepted");
        exit;
    }
    if (is_present_hf("X-Forward-Close")) {
        set_forward_close();
    }
    if (is_present_hf("X-No-Connect")) {
        set_forward_no_connect();
    }
    if (is_present_hf("X-Reply-No-Connect")) {
        set_reply_no_connect();
    }
    $du = $hdr(X-Dst);
    if (is_present_hf("X-Stateless")) {
        forward();
        exit;
    }
    t_relay();
}
"#
    .to_string()
}

fn stop_cleanly(proxy: Proxy) {
    let mut proxy = proxy;
    let status = proxy.process().stop();
    assert!(status.success(), "exit {status}:\n{}", proxy.stderr());
}

#[test]
fn set_reply_close_closes_after_the_reply() {
    let proxy = Proxy::start(&config(), &[]);
    let addr = proxy.addr();
    // Without it the connection stays open.
    let mut keep = TcpUa::connect(addr);
    keep.send(keep.request("OPTIONS", &format!("sip:keep@{addr}"), &[], ""));
    assert_eq!(keep.expect_msg(WAIT).status(), Some(200));
    assert!(!keep.closed_within(Duration::from_millis(500)));
    // sl_send_reply after set_reply_close.
    let mut ua = TcpUa::connect(addr);
    ua.send(ua.request("OPTIONS", &format!("sip:close@{addr}"), &[], ""));
    assert_eq!(ua.expect_msg(WAIT).status(), Some(200));
    assert!(ua.closed_within(WAIT), "still open after set_reply_close");
    // t_reply after set_reply_close.
    let mut ua = TcpUa::connect(addr);
    ua.send(ua.request("MESSAGE", &format!("sip:t-close@{addr}"), &[], "x"));
    assert_eq!(ua.expect_msg(WAIT).status(), Some(202));
    assert!(ua.closed_within(WAIT), "still open after t_reply");
    drop(keep);
    stop_cleanly(proxy);
}

/// A TCP UAS: accepts connections and hands them over.
fn tcp_uas() -> (SocketAddr, TcpListener) {
    let listener = TcpListener::bind((loopback_ip(), 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    (listener.local_addr().unwrap(), listener)
}

/// The next connection within `timeout`, if one comes.
fn accept_within(l: &TcpListener, timeout: Duration) -> Option<TcpStream> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return Some(s);
            }
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => return None,
        }
    }
}

/// Reads until EOF or `timeout`; the bytes and whether EOF came.
fn read_to_eof(s: &mut TcpStream, timeout: Duration) -> (String, bool) {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[test]
fn set_forward_close_closes_after_relaying() {
    let proxy = Proxy::start(&config(), &[]);
    let (uas, listener) = tcp_uas();
    let ua = RawUa::bind();
    for stateless in [true, false] {
        let mut extra = vec![
            format!("X-Dst: sip:{uas};transport=tcp"),
            "X-Forward-Close: 1".to_string(),
        ];
        if stateless {
            extra.push("X-Stateless: 1".into());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        ua.send(
            proxy.addr(),
            ua.request("MESSAGE", &format!("sip:bob@{uas}"), &extra, "hi"),
        );
        let mut conn = accept_within(&listener, WAIT).expect("the proxy connects");
        let (got, eof) = read_to_eof(&mut conn, WAIT);
        assert!(got.starts_with("MESSAGE sip:bob@"), "{stateless}: {got}");
        assert!(
            eof,
            "stateless={stateless}: the proxy kept the connection open"
        );
    }
    stop_cleanly(proxy);
}

#[test]
fn set_forward_no_connect_uses_only_an_open_connection() {
    let proxy = Proxy::start(&config(), &[]);
    let (uas, listener) = tcp_uas();
    let ua = RawUa::bind();
    for stateless in [true, false] {
        let mut extra = vec![
            format!("X-Dst: sip:{uas};transport=tcp"),
            "X-No-Connect: 1".to_string(),
        ];
        if stateless {
            extra.push("X-Stateless: 1".into());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        ua.send(
            proxy.addr(),
            ua.request("MESSAGE", &format!("sip:bob@{uas}"), &extra, "hi"),
        );
        assert!(
            accept_within(&listener, Duration::from_secs(1)).is_none(),
            "stateless={stateless}: connected despite set_forward_no_connect"
        );
    }
    // An open connection is used: the peer connected to the proxy first.
    let mut peer = TcpUa::connect(proxy.addr());
    peer.send(peer.request("OPTIONS", &format!("sip:{}", proxy.addr()), &[], ""));
    assert_eq!(peer.expect_msg(WAIT).status(), Some(200));
    let extra = [
        format!("X-Dst: sip:{};transport=tcp", peer.local()),
        "X-No-Connect: 1".to_string(),
        "X-Stateless: 1".to_string(),
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    ua.send(
        proxy.addr(),
        ua.request(
            "MESSAGE",
            &format!("sip:bob@{}", peer.local()),
            &extra,
            "hi",
        ),
    );
    let got = peer.expect_msg(WAIT);
    assert_eq!(got.method(), Some("MESSAGE"), "{}", got.text());
    stop_cleanly(proxy);
}

/// A request over TCP whose connection is gone when the answer comes: with
/// `set_reply_no_connect` the proxy does not connect back to the client's
/// address; without it, it does.
#[test]
fn set_reply_no_connect_does_not_connect_back() {
    let proxy = Proxy::start(&config(), &[]);
    let callee = RawUa::bind();
    for no_connect in [false, true] {
        let client_addr = SocketAddr::new(loopback_ip().into(), 0);
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_reuse_address(true).unwrap();
        sock.set_reuse_port(true).unwrap();
        sock.bind(&client_addr.into()).unwrap();
        sock.connect(&proxy.addr().into()).unwrap();
        let mut ua = TcpUa::from_stream(sock.into());
        let me = ua.local();
        let mut extra = vec![format!("X-Dst: sip:{}", callee.addr())];
        if no_connect {
            extra.push("X-Reply-No-Connect: 1".into());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        ua.send(ua.request(
            "MESSAGE",
            &format!("sip:bob@{}", callee.addr()),
            &extra,
            "hi",
        ));
        let req = callee.expect_msg(WAIT);
        drop(ua);
        // The client's address now only has a listener; the connection is gone.
        let listener =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        listener.set_reuse_address(true).unwrap();
        listener.set_reuse_port(true).unwrap();
        listener.bind(&me.into()).unwrap();
        listener.listen(8).unwrap();
        let listener: TcpListener = listener.into();
        listener.set_nonblocking(true).unwrap();
        // Let the proxy see the close before the answer comes: its side of
        // the connection is gone once it has closed it too.
        common::wait_until(common::EVENTUALLY, "the proxy closing its side", || {
            !common::net::tcp_connection_exists(proxy.addr(), me)
        });
        callee.send(proxy.addr(), reply_to(&req, 200, "OK"));
        let back = accept_within(&listener, Duration::from_secs(1));
        match no_connect {
            true => assert!(
                back.is_none(),
                "connected back despite set_reply_no_connect"
            ),
            false => {
                let mut back = back.expect("without it, the proxy connects back");
                let (got, _) = read_to_eof(&mut back, Duration::from_millis(500));
                let reply = SipMsg::parse_str(&got);
                assert_eq!(reply.status(), Some(200), "{got}");
            }
        }
    }
    stop_cleanly(proxy);
}

/// Kamailio 5.6 closes a TCP connection whose message does not parse or
/// lacks a header its core requires (Via, From, To, Call-ID, CSeq), without
/// an answer (checked live); the next message on a new connection is served.
#[test]
fn an_unreadable_message_closes_its_connection() {
    let proxy = Proxy::start(&config(), &[]);
    let addr = proxy.addr();
    for bad in [
        "GET /a HTTP/1.1\r\n\r\n".to_string(),
        format!("OPTIONS sip:x@{addr} SIP/2.0\r\nContent-Length: 0\r\n\r\n"),
        "garbage line here\r\nVia: x\r\nContent-Length: 0\r\n\r\n".to_string(),
    ] {
        let mut ua = TcpUa::connect(addr);
        ua.send(&bad);
        assert!(ua.closed_within(WAIT), "still open after {bad:?}");
    }
    // A readable message keeps its connection, and the proxy serves on.
    let mut ua = TcpUa::connect(addr);
    ua.send(ua.request("OPTIONS", &format!("sip:keep@{addr}"), &[], ""));
    assert_eq!(ua.expect_msg(WAIT).status(), Some(200));
    assert!(!ua.closed_within(Duration::from_millis(500)));
    stop_cleanly(proxy);
}
