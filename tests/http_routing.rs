//! Routing by a web service, against the real binary: the script asks an
//! HTTP API where a call goes (`http_client_query`), reads the answer with
//! `jansson_get`, and relays there; an API that is down is a 503 the script
//! sends itself.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::{Proxy, RawUa};

const WAIT: Duration = Duration::from_secs(5);

/// An API answering each request with `answer(request line)`; the request
/// lines it got come back from the join handle.
fn api(
    requests: usize,
    answer: impl Fn(&str) -> String + Send + 'static,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let t = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for _ in 0..requests {
            let (mut c, _) = l.accept().unwrap();
            c.set_read_timeout(Some(WAIT)).unwrap();
            let mut buf = vec![0; 8192];
            let mut n = 0;
            while !String::from_utf8_lossy(&buf[..n]).contains("\r\n\r\n") {
                let k = c.read(&mut buf[n..]).unwrap();
                if k == 0 {
                    break;
                }
                n += k;
            }
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let line = text.lines().next().unwrap_or("").to_string();
            let body = answer(&line);
            write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            lines.push(line);
        }
        lines
    });
    (addr, t)
}

fn config(api: &str) -> String {
    format!(
        r#"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "http_client.so"
loadmodule "jansson.so"
modparam("http_client", "connection_timeout", 2)
request_route {{
    if (is_method("OPTIONS")) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    $var(code) = http_client_query("http://{api}/route?user=$rU", "$var(answer)");
    if ($var(code) != 200) {{
        sl_send_reply("503", "Routing API $var(code)");
        exit;
    }}
    if (!jansson_get("target.uri", "$var(answer)", "$var(uri)")) {{
        sl_send_reply("500", "Bad API answer");
        exit;
    }}
    jansson_get("target.weight", "$var(answer)", "$var(w)");
    $ru = $var(uri);
    append_hf("X-Weight: $var(w)\r\n");
    t_relay();
}}
"#
    )
}

#[test]
fn the_api_answer_chooses_the_next_hop() {
    let uas = RawUa::bind();
    let target = uas.addr().to_string();
    let (api_addr, api_thread) = api(1, move |_| {
        format!(r#"{{"target":{{"uri":"sip:gw@{target}","weight":7}},"extra":[1,2]}}"#)
    });
    let proxy = Proxy::builder(&config(&api_addr))
        .ready_when_bound()
        .start();
    let caller = RawUa::bind();
    let invite = caller.request("INVITE", &format!("sip:alice@{}", proxy.addr()), &[], "");
    caller.send(proxy.addr(), &invite);
    let got = uas.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:gw@{}", uas.addr()).as_str())
    );
    assert_eq!(got.header("X-Weight"), Some("7"));
    let lines = api_thread.join().unwrap();
    assert_eq!(lines, ["GET /route?user=alice HTTP/1.1"]);
}

#[test]
fn an_api_that_is_down_gets_the_scripts_answer() {
    // A port nobody listens on: curl's 7.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let down = l.local_addr().unwrap().to_string();
    drop(l);
    let proxy = Proxy::builder(&config(&down)).ready_when_bound().start();
    let caller = RawUa::bind();
    let invite = caller.request("INVITE", &format!("sip:alice@{}", proxy.addr()), &[], "");
    caller.send(proxy.addr(), &invite);
    let reply = caller.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200));
    assert_eq!(reply.status(), Some(503));
    assert!(
        reply.start_line().contains("Routing API 7"),
        "{}",
        reply.start_line()
    );
}
