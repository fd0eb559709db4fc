//! xhttp as a configuration runs it: compiled from text, HTTP requests fed
//! to the engine as a stream connection delivers them.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use super::*;
use crate::modules::core::Engine;
use crate::modules::jsonrpcs::{RpcFault, RpcGate, RpcMethods};
use crate::modules::testutil::{env, LOCAL, SOURCE};
use crate::script::compile::compile;
use crate::script::{parse_str, MemoryFiles, Options};
use crate::sip::{ConnId, Inbound, Proto};

/// Two methods, as the control table would answer them.
struct Methods;

impl RpcMethods for Methods {
    fn call(&self, method: &str, params: Vec<Value>) -> Option<Result<Value, RpcFault>> {
        match method {
            "core.version" => Some(Ok(json!("ringsip test"))),
            "core.echo" => Some(Ok(Value::Array(params))),
            "ul.lookup" => Some(Err(RpcFault {
                code: 404,
                message: "AOR not found".into(),
            })),
            _ => None,
        }
    }
}

/// An engine running `cfg` (xhttp, jsonrpcs and friends loaded), its
/// jsonrpcs connected to [`Methods`]. The methods must outlive the engine's
/// use: they are returned with it.
fn engine(cfg: &str) -> (Engine, Arc<dyn RpcMethods>) {
    let text = format!(
        "tcp_accept_no_cl=yes\nloadmodule \"sl.so\"\nloadmodule \"pv.so\"\n\
         loadmodule \"textops.so\"\nloadmodule \"xhttp.so\"\nloadmodule \"jsonrpcs.so\"\n{cfg}"
    );
    let files = MemoryFiles::new();
    let parsed = parse_str("x.cfg", &text, &Options::with_files(&files))
        .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let compiled = compile(&parsed).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let methods: Arc<dyn RpcMethods> = Arc::new(Methods);
    let gate = RpcGate::default();
    gate.connect(Arc::downgrade(&methods));
    let mut env = env();
    env.server_header = Bytes::from_static(b"kamailio (5.6.3 (x86_64/linux))");
    env.services.insert(Arc::new(gate));
    (
        Engine::new(Arc::new(env), Arc::new(compiled.program)),
        methods,
    )
}

/// Feeds `request` (CRLF line ends as written) from `src` over `proto`;
/// what was sent, and whether it asked to close.
fn feed(engine: &mut Engine, request: &str, src: &str, proto: Proto) -> Vec<(String, bool)> {
    let pkt = Inbound {
        data: Bytes::copy_from_slice(request.as_bytes()),
        src: src.parse().expect("address"),
        local: LOCAL.parse().expect("address"),
        proto,
        socket: 1,
        conn: (proto != Proto::Udp).then(|| ConnId::from_raw(7)),
        arrived: None,
    };
    let mut out = Vec::new();
    engine.on_inbound(pkt, crate::modules::testutil::some_instant(), &mut out);
    out.iter()
        .map(|t| {
            assert_eq!(t.dst, src.parse().unwrap(), "back to the source");
            if proto != Proto::Udp {
                assert_eq!(t.conn, Some(ConnId::from_raw(7)), "on its connection");
            }
            (String::from_utf8_lossy(&t.data).into_owned(), t.flags.close)
        })
        .collect()
}

fn tcp(engine: &mut Engine, request: &str) -> Vec<(String, bool)> {
    feed(engine, request, SOURCE, Proto::Tcp)
}

/// The stock configuration's route (kamailio.cfg, WITH_JSONRPC).
const STOCK: &str = r#"
modparam("jsonrpcs", "pretty_format", 1)
modparam("jsonrpcs", "transport", 7)
request_route { sl_send_reply("404", "SIP"); }
event_route[xhttp:request] {
	set_reply_close();
	set_reply_no_connect();
	if(src_ip!=198.51.100.1) {
		xhttp_reply("403", "Forbidden", "text/html",
				"<html><body>Not allowed from $si</body></html>");
		exit;
	}
	if ($hu =~ "^/RPC") {
		jsonrpc_dispatch();
		exit;
	}
	xhttp_reply("200", "OK", "text/html",
				"<html><body>Wrong URL $hu</body></html>");
    exit;
}
"#;

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn stock_route_dispatches_json_rpc() {
    let (mut e, _m) = engine(STOCK);
    let sent = tcp(
        &mut e,
        &post(
            "/RPC",
            r#"{"jsonrpc":"2.0","method":"core.version","id":1}"#,
        ),
    );
    assert_eq!(
        sent,
        [(
            "HTTP/1.1 200 OK\r\nSia: SIP/2.0/TCP 198.51.100.1:5070\r\n\
             Content-Type: application/json\r\nServer: kamailio (5.6.3 (x86_64/linux))\r\n\
             Content-Length: 58\r\n\r\n\
             {\n\t\"jsonrpc\":\t\"2.0\",\n\t\"result\":\t\"ringsip test\",\n\t\"id\":\t1\n}"
                .to_string(),
            true
        )]
    );
    let sent = tcp(
        &mut e,
        &post("/RPC", r#"{"jsonrpc":"2.0","method":"no.such","id":3}"#),
    );
    assert!(
        sent[0].0.starts_with("HTTP/1.1 500 Method Not Found\r\n"),
        "{sent:?}"
    );
    assert!(sent[0].0.ends_with(
        "{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"error\":\t{\n\t\t\"code\":\t500,\n\t\t\"message\":\t\"Method Not Found\"\n\t},\n\t\"id\":\t3\n}"
    ));
    // Not JSON: nothing is sent (the client waits, as with Kamailio).
    assert!(tcp(&mut e, &post("/RPC", r#"{"jsonrpc":"#)).is_empty());
}

#[test]
fn stock_route_wrong_url_and_foreign_source() {
    let (mut e, _m) = engine(STOCK);
    let sent = tcp(&mut e, "GET /foo?x=1 HTTP/1.0\r\nHost: x\r\n\r\n");
    assert_eq!(
        sent,
        [(
            "HTTP/1.0 200 OK\r\nSia: SIP/2.0/TCP 198.51.100.1:5070\r\nContent-Type: text/html\r\n\
             Server: kamailio (5.6.3 (x86_64/linux))\r\nContent-Length: 44\r\n\r\n\
             <html><body>Wrong URL /foo?x=1</body></html>"
                .to_string(),
            true
        )]
    );
    let sent = feed(&mut e, &post("/RPC", "{}"), "203.0.113.9:40000", Proto::Tls);
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .0
            .starts_with("HTTP/1.1 403 Forbidden\r\nSia: SIP/2.0/TLS 203.0.113.9:40000\r\n"),
        "{sent:?}"
    );
    assert!(sent[0]
        .0
        .ends_with("<html><body>Not allowed from 203.0.113.9</body></html>"));
}

#[test]
fn sip_still_goes_to_request_route_and_http_over_udp_is_dropped() {
    let (mut e, _m) = engine(STOCK);
    let options = "OPTIONS sip:x@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/TCP 198.51.100.1:5070;branch=z9hG4bKa\r\n\
                   From: <sip:a@b>;tag=1\r\nTo: <sip:x@192.0.2.10>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
                   Content-Length: 0\r\n\r\n";
    let sent = tcp(&mut e, options);
    assert!(sent[0].0.starts_with("SIP/2.0 404 SIP\r\n"), "{sent:?}");
    assert!(feed(
        &mut e,
        "GET /RPC HTTP/1.1\r\nHost: h\r\n\r\n",
        SOURCE,
        Proto::Udp
    )
    .is_empty());
}

#[test]
fn route_reads_the_request_and_keeps_the_connection() {
    let (mut e, _m) = engine(
        r#"
request_route { exit; }
event_route[xhttp:request] {
    if ($hu == "/none") { exit; }
    xhttp_reply("$hdr(X-Code)", "Made $rm", "", "$rm|$hu|$hdr(X-A)|$rb|$Rp|$pr|$sp");
}
"#,
    );
    let sent = tcp(
        &mut e,
        "PUT /echo?q=1 HTTP/1.1\r\nX-A: hello\r\nX-Code: 201\r\nContent-Length: 5\r\n\r\nabcde",
    );
    assert_eq!(
        sent,
        [(
            "HTTP/1.1 201 Made PUT\r\nSia: SIP/2.0/TCP 198.51.100.1:5070\r\n\
             Server: kamailio (5.6.3 (x86_64/linux))\r\nContent-Length: 39\r\n\r\n\
             PUT|/echo?q=1|hello|abcde|5060|tcp|5070"
                .to_string(),
            false
        )]
    );
    // A route that answers nothing sends nothing.
    assert!(tcp(&mut e, "GET /none HTTP/1.1\r\nHost: h\r\n\r\n").is_empty());
    // A code out of range is refused by xhttp_reply (nothing sent).
    assert!(tcp(&mut e, "GET /x HTTP/1.1\r\nX-Code: 99\r\n\r\n").is_empty());
}

#[test]
fn url_skip_and_url_match_choose_what_is_served() {
    let (mut e, _m) = engine(
        r#"
modparam("xhttp", "url_skip", "^/skip")
modparam("xhttp", "url_match", "^/(a|skip)")
request_route { exit; }
event_route[xhttp:request] { xhttp_reply("200", "OK", "text/plain", "$hu"); }
"#,
    );
    let get = |e: &mut Engine, url: &str| tcp(e, &format!("GET {url} HTTP/1.1\r\nHost: h\r\n\r\n"));
    assert_eq!(get(&mut e, "/a/b").len(), 1);
    assert!(get(&mut e, "/skip/x").is_empty(), "skipped");
    assert!(get(&mut e, "/b").is_empty(), "not matched");
    assert!(get(&mut e, "/A").is_empty(), "case-sensitive");
}

#[test]
fn jsonrpc_exec_fills_jsonrpl() {
    let (mut e, _m) = engine(
        r#"
request_route { exit; }
event_route[xhttp:request] {
    $var(before) = "[" + $jsonrpl(code) + "]";
    jsonrpc_exec('{"jsonrpc":"2.0","method":"core.echo","params":["a",1],"id":1}');
    xhttp_reply("200", "OK", "text/plain", "$var(before) $jsonrpl(code) $jsonrpl(text) $jsonrpl(body)");
}
"#,
    );
    let sent = tcp(&mut e, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(
        sent[0]
            .0
            .ends_with(r#"[0] 200 OK {"jsonrpc":"2.0","result":["a",1],"id":1}"#),
        "{sent:?}"
    );
}

#[test]
fn configuration_errors_name_their_place() {
    let check = |cfg: &str| {
        let text = format!("loadmodule \"xhttp.so\"\n{cfg}");
        let files = MemoryFiles::new();
        let parsed = parse_str("x.cfg", &text, &Options::with_files(&files)).unwrap();
        compile(&parsed)
            .map(|_| ())
            .map_err(|d| d.rendered().join("\n"))
    };
    let e = check("request_route { exit; }\n").unwrap_err();
    assert!(
        e.contains("x.cfg:1") && e.contains("event_route[xhttp:request] is missing"),
        "{e}"
    );
    let e = check(
        "modparam(\"xhttp\", \"url_match\", \"^/(a\")\nevent_route[xhttp:request] { exit; }\n",
    )
    .unwrap_err();
    assert!(e.contains("x.cfg:2") && e.contains("url_match"), "{e}");
    let e = check(
        "modparam(\"xhttp\", \"event_callback\", \"ksr_xhttp\")\nevent_route[xhttp:request] { exit; }\n",
    )
    .unwrap_err();
    assert!(e.contains("KEMI"), "{e}");
    assert!(check("event_route[xhttp:request] { exit; }\n").is_ok());
}

#[test]
fn serves_follows_skip_then_match() {
    let mut mp = ModParams::default();
    mp.push(
        "xhttp",
        "url_skip",
        crate::script::registry::ParamValue::Str("\\.png$".into()),
    );
    let x = Xhttp::new(0, &mp).unwrap();
    assert!(x.serves(b"/RPC"));
    assert!(!x.serves(b"/img/a.png"));
    let x = Xhttp::new(0, &ModParams::default()).unwrap();
    assert!(x.serves(b"/anything"));
}
