//! RFC 3261 §18.2.2 over streams, sans-IO: a response goes back on the
//! connection its request came on ("the response MUST be sent using the
//! existing connection"), whether answered statelessly (sl) or forwarded and
//! relayed back (the connection rides in our Via's `;i=`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use ringsip::modules::core::Engine;
use ringsip::script::compile::compile;
use ringsip::script::ctx::{Env, SocketInfo};
use ringsip::sip::{ConnId, Inbound, Proto};

const CFG: &str = r#"
loadmodule "sl.so"
request_route {
    if (method == "OPTIONS") { sl_send_reply("200", "OK"); exit; }
    forward("127.0.0.2", "5080");
}
"#;

fn engine() -> Engine {
    let opts = ringsip::script::Options::default();
    let parsed = ringsip::script::parse_str("t.cfg", CFG, &opts).expect("parses");
    let compiled = compile(&parsed).expect("compiles");
    let addr: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let sockets = [Proto::Udp, Proto::Tcp]
        .into_iter()
        .map(|proto| SocketInfo {
            proto,
            addr,
            advertise: None,
        })
        .collect();
    let env = Env {
        sockets,
        ..Env::default()
    };
    Engine::new(Arc::new(env), Arc::new(compiled.program))
}

fn request(method: &str) -> Bytes {
    Bytes::from(format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bKc1\r\n\
         From: <sip:a@10.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c1\r\n\
         CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn over_tcp(data: Bytes, conn: ConnId) -> Inbound {
    Inbound {
        data,
        src: "10.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        proto: Proto::Tcp,
        socket: 1,
        conn: Some(conn),
        arrived: None,
    }
}

#[test]
fn stateless_reply_goes_back_on_the_requests_connection() {
    let mut e = engine();
    let conn = ConnId::from_raw(0x0001_0002_0000_0003);
    let mut out = Vec::new();
    e.on_inbound(over_tcp(request("OPTIONS"), conn), Instant::now(), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].conn, out[0].proto), (Some(conn), Proto::Tcp));
    assert_eq!(out[0].dst, "10.0.0.1:40000".parse().unwrap());
}

#[test]
fn forwarded_requests_reply_comes_back_on_its_connection() {
    let mut e = engine();
    let conn = ConnId::from_raw(0x0001_0002_0000_0003);
    let mut out = Vec::new();
    e.on_inbound(over_tcp(request("INVITE"), conn), Instant::now(), &mut out);
    assert_eq!(out.len(), 1);
    let fwd = String::from_utf8_lossy(&out[0].data).into_owned();
    assert_eq!((out[0].proto, out[0].conn), (Proto::Udp, None));
    let our_via = fwd.lines().find(|l| l.starts_with("Via:")).unwrap();
    assert!(our_via.ends_with(";i=0001000200000003"), "{our_via}");

    // The UAS answers over UDP with both Vias.
    let vias: Vec<&str> = fwd.lines().filter(|l| l.starts_with("Via:")).collect();
    let reply = format!(
        "SIP/2.0 200 OK\r\n{}\r\nFrom: <sip:a@10.0.0.1>;tag=1\r\n\
         To: <sip:bob@127.0.0.1>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n",
        vias.join("\r\n")
    );
    let mut back = Vec::new();
    let from_uas = Inbound {
        data: Bytes::from(reply),
        src: "127.0.0.2:5080".parse().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    e.on_inbound(from_uas, Instant::now(), &mut back);
    assert_eq!(back.len(), 1, "{:?}", e.stats());
    assert_eq!((back[0].proto, back[0].conn), (Proto::Tcp, Some(conn)));
    assert!(!String::from_utf8_lossy(&back[0].data).contains(";i="));
}
