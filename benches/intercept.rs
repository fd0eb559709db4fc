//! The network intercept stage per message: the codecs alone, then the whole
//! pipeline of one core (intercept in, parse, request_route, reply, intercept
//! out) with the stage off, on with a pass-through route, and on with gzip or
//! the cipher both ways. The difference to "off" is the stage's cost.
//!
//! `cargo bench --bench intercept`

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ringsip::intercept::codec::{Cipher, Codec, Gzip};
use ringsip::intercept::NioConfig;
use ringsip::modules::core::Engine;
use ringsip::script::compile::compile;
use ringsip::script::ctx::{Env, SocketInfo};
use ringsip::script::{parse_str, MemoryFiles, Options};
use ringsip::sip::{Inbound, Proto, Transmit};

const OPTIONS: &[u8] = b"OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK-1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.org>;tag=abc\r\n\
To: <sip:127.0.0.1:5060>\r\n\
Call-ID: call-1@host\r\n\
CSeq: 1 OPTIONS\r\n\
Contact: <sip:alice@127.0.0.1:5099>\r\n\
User-Agent: test-ua\r\n\
Accept: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

const KEY: [u8; 32] = [7; 32];

fn codecs(c: &mut Criterion) {
    let cipher = Cipher::new("bench", &KEY, [1; 16]);
    let mut zipped = Vec::new();
    Gzip.encode(OPTIONS, &mut zipped).expect("gzip");
    let mut sealed = Vec::new();
    cipher.encode(OPTIONS, &mut sealed).expect("seal");
    let mut out = Vec::with_capacity(2048);
    let mut g = c.benchmark_group("codec (OPTIONS, 326 bytes)");
    g.bench_function("gzip encode", |b| {
        b.iter(|| {
            out.clear();
            Gzip.encode(black_box(OPTIONS), &mut out).expect("gzip");
        })
    });
    g.bench_function("gzip decode", |b| {
        b.iter(|| {
            out.clear();
            Gzip.decode(black_box(&zipped), &mut out).expect("gunzip");
        })
    });
    g.bench_function("cipher encode", |b| {
        b.iter(|| {
            out.clear();
            cipher.encode(black_box(OPTIONS), &mut out).expect("seal");
        })
    });
    g.bench_function("cipher decode", |b| {
        b.iter(|| {
            out.clear();
            cipher.decode(black_box(&sealed), &mut out).expect("open");
        })
    });
    g.finish();
}

/// An engine for `event_route` (none: the stage is off).
fn engine(event_route: Option<&str>, key_file: &str) -> Engine {
    let (nio, route) = match event_route {
        Some(body) => (1, format!("event_route[network:msg] {{\n{body}\n}}\n")),
        None => (0, String::new()),
    };
    let text = format!(
        r#"loadmodule "sl.so"
loadmodule "corex.so"
modparam("corex", "nio_intercept", {nio})
modparam("corex", "nio_msg_avp", "$avp(msg)")
modparam("corex", "cipher_profile", "name=k;alg=xchacha20-poly1305;key_file={key_file}")
{route}
request_route {{
    if (method == "OPTIONS") {{ sl_send_reply("200", "Keepalive"); exit; }}
}}
"#
    );
    let files = MemoryFiles::default();
    let cfg = parse_str("bench.cfg", &text, &Options::with_files(&files)).expect("parses");
    let compiled = compile(&cfg).expect("compiles");
    let mut env = Env {
        sockets: vec![SocketInfo {
            proto: Proto::Udp,
            addr: "127.0.0.1:5060".parse().expect("address"),
            advertise: None,
        }],
        ..Env::for_program(&compiled.program)
    };
    env.services.insert(Arc::new(
        NioConfig::from_modparams(&compiled.modparams).expect("nio params"),
    ));
    Engine::new(Arc::new(env), Arc::new(compiled.program))
}

/// One message through the core: intercept in, engine, intercept out.
fn through(e: &mut Engine, data: &Bytes, now: Instant, out: &mut Vec<Transmit>) -> usize {
    let mut pkt = Inbound {
        data: data.clone(),
        src: "127.0.0.1:5099".parse().expect("address"),
        local: "127.0.0.1:5060".parse().expect("address"),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    out.clear();
    if e.intercept_received(&mut pkt, now) {
        e.on_inbound(pkt, now, out);
    }
    let mut bytes = 0;
    for t in out.iter_mut() {
        if e.intercept_sending(t, now) {
            bytes += t.data.len();
        }
    }
    bytes
}

fn pipeline(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("ringsip-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key_file = dir.join("k.key");
    std::fs::write(&key_file, KEY).expect("key file");
    let key_file = key_file.display().to_string();
    let now = Instant::now();
    let mut out = Vec::with_capacity(4);
    let plain = Bytes::from_static(OPTIONS);
    let mut zipped = Vec::new();
    Gzip.encode(OPTIONS, &mut zipped).expect("gzip");
    let zipped = Bytes::from(zipped);
    let mut sealed = Vec::new();
    Cipher::new("ua", &KEY, [2; 16])
        .encode(OPTIONS, &mut sealed)
        .expect("seal");
    let sealed = Bytes::from(sealed);

    let cases: [(&str, Option<&str>, &Bytes); 4] = [
        ("nio off", None, &plain),
        ("nio on, pass-through route", Some("$var(n) = $ml;"), &plain),
        (
            "nio on, gzip both ways",
            Some(
                r#"if (is_incoming()) { gzip_decompress("$mb", "$avp(msg)"); }
                   else { gzip_compress("$mb", "$avp(msg)"); }"#,
            ),
            &zipped,
        ),
        (
            "nio on, cipher both ways",
            Some(
                r#"if (is_incoming()) { cipher_decrypt("k", "$mb", "$avp(msg)"); }
                   else { cipher_encrypt("k", "$mb", "$avp(msg)"); }"#,
            ),
            &sealed,
        ),
    ];
    let mut g = c.benchmark_group("OPTIONS in, 200 out");
    for (name, route, data) in cases {
        let mut e = engine(route, &key_file);
        assert!(through(&mut e, data, now, &mut out) > 0, "{name}: a reply");
        g.bench_function(name, |b| {
            b.iter(|| black_box(through(&mut e, data, now, &mut out)))
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, codecs, pipeline);
criterion_main!(benches);
