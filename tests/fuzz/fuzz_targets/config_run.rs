//! Arbitrary text → compiler → VM: a config that compiles is run on a fixed
//! INVITE (and a reply) through the engine. Nothing may panic, whatever the
//! config does with the message (transformations with odd arguments,
//! arithmetic at the edges, AVP indexes, route recursion, URI rewrites).
#![no_main]

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringsip::modules::core::Engine;
use ringsip::script::compile::compile;
use ringsip::script::ctx::{Env, SocketInfo};
use ringsip::script::{parse_str, MemoryFiles, Options};
use ringsip::sip::{Inbound, Proto};

const INVITE: &[u8] =
    b"INVITE sip:alice:pw@example.com:5070;transport=udp;foo=bar?X-H=1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1;rport\r\n\
From: \"Bob\" <sip:bob@example.org;x=1>;tag=ftag1\r\n\
To: sip:alice@example.com\r\n\
Call-ID: call-1@host\r\n\
CSeq: 7 INVITE\r\n\
Max-Forwards: 70\r\n\
Content-Length: 4\r\n\r\nv=0\n";

const REPLY: &[u8] = b"SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKsl1\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1\r\n\
From: <sip:bob@example.org>;tag=f\r\n\
To: <sip:alice@example.com>;tag=t\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = MemoryFiles::default();
    let Ok(cfg) = parse_str("fuzz.cfg", text, &Options::with_files(&files)) else {
        return;
    };
    let Ok(compiled) = compile(&cfg) else {
        return;
    };
    let program = Arc::new(compiled.program);
    let env = Env {
        sockets: vec![SocketInfo {
            proto: Proto::Udp,
            addr: "127.0.0.1:5060".parse().unwrap(),
            advertise: None,
        }],
        ..Env::for_program(&program)
    };
    let mut engine = Engine::new(Arc::new(env), program);
    let mut out = Vec::new();
    let now = Instant::now();
    for msg in [INVITE, REPLY, INVITE] {
        let pkt = Inbound {
            data: Bytes::from_static(msg),
            src: "127.0.0.1:5099".parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
            proto: Proto::Udp,
            socket: 0,
            conn: None,
            arrived: None,
        };
        engine.on_inbound(pkt, now, &mut out);
    }
});
