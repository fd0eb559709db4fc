//! Parser and serializer benchmarks on a typical ~1 KB INVITE with SDP
//! (`tests/data/invite.sip`: two Vias, Max-Forwards, To, From, Call-ID, CSeq,
//! Contact, Allow, Supported, User-Agent, Content-Type, Content-Length, SDP).
//!
//! Wall-clock (criterion):
//!
//! ```text
//! cargo bench --bench parse -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Instruction counts (stable on a noisy, shared machine). With
//! `RINGSIP_CALLGRIND=N` the binary skips criterion and runs the parse (or,
//! with `RINGSIP_CALLGRIND_WHAT=serialize`, the serialize; with `via`, the
//! reading of two common top Vias, [`VIAS`]) loop N times.
//! Run it twice and divide the difference, so start-up cost cancels out:
//!
//! ```text
//! cargo bench --bench parse --no-run            # prints the binary path
//! BIN=target/release/deps/parse-<hash>
//! for n in 1000 11000; do
//!   RINGSIP_CALLGRIND=$n valgrind --tool=callgrind --callgrind-out-file=/dev/null $BIN 2>&1 \
//!     | grep 'Collected'
//! done
//! # instructions per parse = (I[11000] - I[1000]) / 10000
//! ```

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, Criterion};
use ringsip::sip::{serialize, Edits, HeaderName, Message};

const INVITE: &[u8] = include_bytes!("../tests/data/invite.sip");

/// Top Vias as a stateful call brings them: sipp's on a request, ours (a
/// transaction branch) on a reply.
const VIAS: [&[u8]; 2] = [
    b"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-2861-1-0",
    b"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa0123456789abcdef0123456789abcdef01, SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-2861-1-0",
];

/// Parses and indexes the message, then reads what every request handler
/// reads first (the raw values the transaction key and dialog match need).
fn parse_and_read(buf: Bytes) -> usize {
    let msg = Message::parse(buf).expect("bench message parses");
    let mut n = 0;
    for id in [
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::From,
        HeaderName::To,
        HeaderName::Via,
    ] {
        n += msg.header_value(id).map_or(0, <[u8]>::len);
    }
    n + msg.request_uri().map_or(0, <[u8]>::len)
}

/// What a stateful proxy does to a forwarded INVITE: its own Via on top, a
/// Record-Route, a rewritten Request-URI and Max-Forwards decremented.
fn proxy_edits(msg: &Message, edits: &mut Edits) {
    edits.clear();
    edits.prepend_header(
        msg,
        Bytes::from_static(b"Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK-ringsip-0001\r\n"),
    );
    edits.insert_before_first(
        msg,
        HeaderName::Via,
        Bytes::from_static(b"Record-Route: <sip:203.0.113.1;lr>\r\n"),
    );
    edits.set_request_uri(msg, Bytes::from_static(b"sip:bob@192.0.2.200:5060"));
    if let Some(i) = msg
        .headers()
        .iter()
        .position(|h| h.id == HeaderName::MaxForwards)
    {
        edits.replace_header_value(msg, i, Bytes::from_static(b"68"));
    }
}

fn bench_parse(c: &mut Criterion) {
    // A shared (refcounted) buffer, as the runtime hands over: cloning it is a
    // counter increment, not a copy.
    let buf = Bytes::copy_from_slice(INVITE);
    c.bench_function("parse_index_read_1k_invite", |b| {
        b.iter(|| parse_and_read(black_box(buf.clone())))
    });
}

fn bench_serialize(c: &mut Criterion) {
    let msg = Message::parse(Bytes::copy_from_slice(INVITE)).expect("bench message parses");
    let mut edits = Edits::new();
    let mut out = Vec::with_capacity(2048);
    c.bench_function("serialize_proxy_edits_1k_invite", |b| {
        b.iter(|| {
            proxy_edits(black_box(&msg), &mut edits);
            serialize(&msg, &edits, &mut out);
            out.len()
        })
    });
    c.bench_function("serialize_no_edits_1k_invite", |b| {
        let none = Edits::new();
        b.iter(|| {
            serialize(black_box(&msg), &none, &mut out);
            out.len()
        })
    });
}

/// The instruction-count loop (see the top of this file).
fn callgrind_loop(n: u64) {
    let buf = Bytes::copy_from_slice(INVITE);
    let what = std::env::var("RINGSIP_CALLGRIND_WHAT").unwrap_or_default();
    let mut sum = 0usize;
    if what == "via" {
        for _ in 0..n {
            for v in VIAS {
                if let Some((Ok(via), _)) = ringsip::sip::via::Via::first(black_box(v)) {
                    sum += via.branch().map_or(0, <[u8]>::len);
                }
            }
        }
    } else if what == "serialize" {
        let msg = Message::parse(buf).expect("bench message parses");
        let mut edits = Edits::new();
        let mut out = Vec::with_capacity(2048);
        for _ in 0..n {
            proxy_edits(black_box(&msg), &mut edits);
            serialize(&msg, &edits, &mut out);
            sum += out.len();
        }
    } else {
        for _ in 0..n {
            sum += parse_and_read(black_box(buf.clone()));
        }
    }
    black_box(sum);
}

criterion_group!(benches, bench_parse, bench_serialize);

fn main() {
    if let Some(n) = std::env::var("RINGSIP_CALLGRIND")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        callgrind_loop(n);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
