//! The routing VM on a typical proxy request_route: a parsed INVITE, the real
//! compiler and VM, one `MsgCtx` per message (as the engine makes it).
//! Target: under 1 µs per message.
//!
//! `cargo bench --bench script`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ringsip::script::compile::compile;
use ringsip::script::ctx::{CoreState, Env, MsgCtx, SocketInfo};
use ringsip::script::registry::RouteType;
use ringsip::script::vm::run_route;
use ringsip::script::{parse_str, MemoryFiles, Options};
use ringsip::sip::{Inbound, Message, Proto};

const CFG: &str = r#"#!KAMAILIO
debug=2
listen=udp:127.0.0.1:5060
loadmodule "sl.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "maxfwd.so"

request_route {
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if ($ua =~ "friendly|scanner|sipcli|sipvicious|VaxSIPUserAgent|pplsip") {
        exit;
    }
    if (is_method("OPTIONS") && uri == myself && $rU == $null) {
        sl_send_reply("200", "Keepalive");
        exit;
    }
    if ($tt != $null || is_present_hf("Route")) {
        route(WITHINDLG);
        exit;
    }
    if (method == "CANCEL") {
        exit;
    }
    if (is_method("INVITE|SUBSCRIBE")) {
        setflag(1);
    } else if (is_method("REGISTER")) {
        exit;
    } else if ($rm == "PUBLISH") {
        sl_send_reply("404", "Not here");
        exit;
    }
    xdbg("request $rm from $fu (IP:$si:$sp) to $ru\n");
    if ($rU == $null) {
        sl_send_reply("484", "Address Incomplete");
        exit;
    }
    $var(hops) = 0;
    $ru = "sip:" + $rU + "@10.0.0.2:5080";
    route(RELAY);
}

route[WITHINDLG] {
    exit;
}

route[RELAY] {
    if (isflagset(1) && $var(hops) == 0 && src_ip == 127.0.0.0/8) {
        return 1;
    }
    return -1;
}
"#;

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=abc\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: call-1@host\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5099>\r\n\
User-Agent: test-ua\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

fn script(c: &mut Criterion) {
    let files = MemoryFiles::default();
    let cfg = parse_str("bench.cfg", CFG, &Options::with_files(&files)).expect("parses");
    let program = Arc::new(compile(&cfg).expect("compiles").program);
    let env = Env {
        sockets: vec![SocketInfo {
            proto: Proto::Udp,
            addr: "127.0.0.1:5060".parse().expect("address"),
            advertise: None,
        }],
        ..Env::for_program(&program)
    };
    let route = program.request_route.expect("request_route");
    let pkt = Inbound {
        data: Bytes::from_static(INVITE),
        src: "127.0.0.1:5099".parse().expect("address"),
        local: "127.0.0.1:5060".parse().expect("address"),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    let from = ringsip::tm::Source::from(&pkt);
    let msg = Message::parse(pkt.data.clone()).expect("parses");
    let mut core = CoreState::new(&program);
    let mut out = Vec::with_capacity(4);
    let now = Instant::now();
    c.bench_function("request_route (40 lines, INVITE)", |b| {
        b.iter(|| {
            let mut ctx = MsgCtx::new(
                &env,
                &program,
                &mut core,
                &msg,
                from,
                now,
                RouteType::Request,
                &mut out,
            );
            let outcome = run_route(&mut ctx, route);
            black_box((outcome, ctx.new_uri.is_some()));
        })
    });
}

criterion_group!(benches, script);
criterion_main!(benches);
