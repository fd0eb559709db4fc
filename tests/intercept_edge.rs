//! The network intercept stage end to end (issue #4): two ringsip processes,
//! an edge proxy and an inner proxy. A test UA speaks gzip-compressed (or
//! XChaCha20-Poly1305-encrypted) SIP to the edge; the edge decodes it in
//! `event_route[network:msg]`, routes it in plain SIP to the inner proxy,
//! which relays it to a test UAS; the reply comes back encoded. The test
//! reads the bytes on the wire and decodes them with flate2 / chacha20poly1305
//! directly (not with ringsip's codecs). Bad input is dropped, counted and
//! logged, and the edge keeps serving.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use common::proxy::Proxy;
use common::tcp::reply_to;
use common::ua::{RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(3);
const KEY: [u8; 32] = *b"0123456789abcdef0123456789ABCDEF";

/// How the UA and the edge encode SIP between them.
#[derive(Clone, Copy)]
enum Wire {
    Gzip,
    Cipher,
}

impl Wire {
    fn encode(self, plain: &[u8]) -> Vec<u8> {
        match self {
            Wire::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                enc.write_all(plain).unwrap();
                enc.finish().unwrap()
            }
            Wire::Cipher => {
                let aead = XChaCha20Poly1305::new((&KEY).into());
                let mut nonce = [0u8; 24];
                getrandom::fill(&mut nonce).unwrap();
                let mut out = nonce.to_vec();
                out.extend(aead.encrypt(XNonce::from_slice(&nonce), plain).unwrap());
                out
            }
        }
    }

    fn decode(self, wire: &[u8]) -> Vec<u8> {
        match self {
            Wire::Gzip => {
                assert_eq!(&wire[..2], &[0x1f, 0x8b], "gzip magic on the wire");
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(wire)
                    .read_to_end(&mut out)
                    .expect("valid gzip");
                out
            }
            Wire::Cipher => {
                let aead = XChaCha20Poly1305::new((&KEY).into());
                let (nonce, sealed) = wire.split_at(24);
                aead.decrypt(XNonce::from_slice(nonce), sealed)
                    .expect("authentic ciphertext")
            }
        }
    }

    /// The edge's event route body for this codec.
    fn route(self) -> &'static str {
        match self {
            Wire::Gzip => {
                r#"if (is_incoming()) {
            if (!gzip_decompress("$mb", "$avp(msg)")) { xlog("L_INFO", "edge: bad gzip from $si:$sp\n"); }
        } else {
            gzip_compress("$mb", "$avp(msg)");
        }"#
            }
            Wire::Cipher => {
                r#"if (is_incoming()) {
            if (!cipher_decrypt("ua", "$mb", "$avp(msg)")) { xlog("L_INFO", "edge: bad tag from $si:$sp\n"); }
        } else {
            cipher_encrypt("ua", "$mb", "$avp(msg)");
        }"#
            }
        }
    }
}

/// The edge: decodes what the UA sends, encodes what goes back to it; the
/// inner side (`$si:$sp` is the peer both ways) speaks plain SIP.
fn edge_config(inner: SocketAddr, wire: Wire, key_file: &Path) -> String {
    edge_config_with(
        inner,
        wire,
        key_file,
        "",
        "forward(\"@INNER_IP@\", \"@INNER_PORT@\");",
    )
}

/// The edge with extra module lines and a relay statement (`@INNER_IP@`,
/// `@INNER_PORT@` stand for the inner proxy).
fn edge_config_with(
    inner: SocketAddr,
    wire: Wire,
    key_file: &Path,
    modules: &str,
    relay: &str,
) -> String {
    let relay = relay
        .replace("@INNER_IP@", &inner.ip().to_string())
        .replace("@INNER_PORT@", &inner.port().to_string());
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=0
loadmodule "sl.so"
loadmodule "corex.so"
loadmodule "xlog.so"
{modules}
modparam("corex", "nio_intercept", 1)
modparam("corex", "nio_min_msg_len", 16)
modparam("corex", "nio_msg_avp", "$avp(msg)")
modparam("corex", "cipher_profile", "name=ua;alg=xchacha20-poly1305;key_file={key}")

event_route[network:msg] {{
    if ($si == "{ip}" && $sp == {port}) {{ return; }}
    {body}
}}

request_route {{
    {relay}
}}
"#,
        key = key_file.display(),
        ip = inner.ip(),
        port = inner.port(),
        body = wire.route(),
    )
}

/// The inner proxy: plain SIP, relays everything to the UAS.
fn inner_config(uas: SocketAddr) -> String {
    format!(
        r#"#!KAMAILIO
listen=@LISTEN@
debug=0
loadmodule "sl.so"
request_route {{
    forward("{}", "{}");
}}
"#,
        uas.ip(),
        uas.port()
    )
}

struct Chain {
    ua: RawUa,
    uas: RawUa,
    inner: Proxy,
    edge: Proxy,
    _keys: tempfile::TempDir,
}

fn chain(wire: Wire) -> Chain {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("ua.key");
    std::fs::write(&key_file, hex::encode(KEY)).unwrap();
    let uas = RawUa::bind();
    let inner = Proxy::builder(&inner_config(uas.addr()))
        .ready_when_bound()
        .start();
    let edge = Proxy::builder(&edge_config(inner.addr(), wire, &key_file))
        .ready_when_bound()
        .start();
    Chain {
        ua: RawUa::bind(),
        uas,
        inner,
        edge,
        _keys: keys,
    }
}

/// One MESSAGE through the chain: what the UAS and the UA saw on the wire.
fn round_trip(c: &Chain, wire: Wire) -> (SipMsg, Vec<u8>) {
    let req = c.ua.request(
        "MESSAGE",
        &format!("sip:bob@{}", c.uas.addr()),
        &["Content-Type: text/plain"],
        "hello through the edge",
    );
    let encoded = wire.encode(req.as_bytes());
    assert!(
        !encoded.windows(7).any(|w| w == b"MESSAGE"),
        "the request is encoded"
    );
    c.ua.send(c.edge.addr(), &encoded);
    let at_uas = c.uas.expect_msg(WAIT);
    c.uas.send(
        at_uas.source().expect("source"),
        reply_to(&at_uas, 200, "OK"),
    );
    let (back, from) = c.ua.recv(WAIT).expect("a reply comes back to the UA");
    assert_eq!(from, c.edge.addr());
    (at_uas, back)
}

fn check_chain(wire: Wire) {
    let c = chain(wire);
    let (at_uas, back) = round_trip(&c, wire);
    // Plain SIP between the proxies: the request arrived decoded, relayed by both.
    assert_eq!(at_uas.method(), Some("MESSAGE"));
    assert_eq!(at_uas.body(), b"hello through the edge");
    assert_eq!(at_uas.headers("Via").len(), 3, "{}", at_uas.text());
    assert_eq!(at_uas.source(), Some(c.inner.addr()));
    // On the way back the reply is encoded: not SIP text on the wire.
    assert!(!back.starts_with(b"SIP/2.0"), "encoded reply");
    assert!(!back.windows(7).any(|w| w == b"SIP/2.0"));
    let plain = SipMsg::new(wire.decode(&back), None);
    assert_eq!(plain.status(), Some(200), "{}", plain.text());
    assert_eq!(plain.headers("Via").len(), 1, "only the UA's Via is left");
    assert_eq!(plain.header("CSeq"), at_uas.header("CSeq"));
}

#[test]
fn gzip_edge_decompresses_routes_and_compresses_replies() {
    check_chain(Wire::Gzip);
}

#[test]
fn cipher_edge_decrypts_routes_and_encrypts_replies() {
    check_chain(Wire::Cipher);
}

/// Bad input never reaches the parser or the inner proxy; it is counted and
/// logged (rate-limited), and the edge keeps serving.
fn bad_input_is_dropped(wire: Wire) {
    let c = chain(wire);
    let req = c.ua.options(c.edge.addr());
    let mut bad = wire.encode(req.as_bytes());
    let n = bad.len();
    bad[n - 3] ^= 0x55; // the gzip CRC / the AEAD tag
    for _ in 0..5 {
        c.ua.send(c.edge.addr(), &bad);
    }
    // Plain SIP is not the codec either: dropped too.
    c.ua.send(c.edge.addr(), req.as_bytes());
    assert!(
        c.uas.recv(Duration::from_millis(500)).is_none(),
        "nothing was relayed"
    );
    assert!(
        c.ua.recv(Duration::from_millis(100)).is_none(),
        "nothing was answered"
    );
    // The edge still serves a good request.
    let (at_uas, back) = round_trip(&c, wire);
    assert_eq!(at_uas.method(), Some("MESSAGE"));
    assert_eq!(SipMsg::new(wire.decode(&back), None).status(), Some(200));
    let log = c.edge.stderr();
    assert!(
        log.contains("network:msg: dropped") && log.contains("failed to decode"),
        "the drop is logged with its count:\n{log}"
    );
    // Rate-limited: 6 bad datagrams within a second make at most one line per worker.
    let lines = log.matches("network:msg: dropped").count();
    assert!((1..=2).contains(&lines), "{lines} log lines:\n{log}");
}

#[test]
fn bad_gzip_is_dropped_counted_and_the_edge_keeps_serving() {
    bad_input_is_dropped(Wire::Gzip);
}

#[test]
fn bad_tag_is_dropped_counted_and_the_edge_keeps_serving() {
    bad_input_is_dropped(Wire::Cipher);
}

#[test]
fn nio_intercept_without_the_event_route_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nio.cfg");
    std::fs::write(
        &path,
        "loadmodule \"corex.so\"\nmodparam(\"corex\", \"nio_intercept\", 1)\nrequest_route { exit; }\n",
    )
    .unwrap();
    let out = std::process::Command::new(common::proxy::ringsip_bin())
        .args(["check", "-f"])
        .arg(&path)
        .output()
        .expect("run ringsip check");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nio.cfg:2:") && err.contains("event_route[network:msg]"),
        "{err}"
    );
}

/// Stateful edge: what tm sends by itself (100 Trying, the retransmission of
/// a negative final reply on timer G until the ACK) goes through the outgoing
/// stage like the rest.
#[test]
fn tm_replies_and_retransmissions_leave_the_edge_encoded() {
    let wire = Wire::Gzip;
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("ua.key");
    std::fs::write(&key_file, hex::encode(KEY)).unwrap();
    let uas = RawUa::bind();
    let inner = Proxy::builder(&inner_config(uas.addr()))
        .ready_when_bound()
        .start();
    let edge = Proxy::builder(&edge_config_with(
        inner.addr(),
        wire,
        &key_file,
        "loadmodule \"tm.so\"",
        "t_relay(\"@INNER_IP@\", \"@INNER_PORT@\");",
    ))
    .ready_when_bound()
    .start();
    let ua = RawUa::bind();
    let invite = ua.request("INVITE", &format!("sip:bob@{}", uas.addr()), &[], "");
    ua.send(edge.addr(), wire.encode(invite.as_bytes()));
    let next = || {
        let (raw, _) = ua.recv(WAIT).expect("a message from the edge");
        assert!(!raw.starts_with(b"SIP/2.0"), "encoded on the wire");
        SipMsg::new(wire.decode(&raw), None)
    };
    assert_eq!(next().status(), Some(100), "tm's 100 Trying, encoded");
    let at_uas = uas.expect_msg(WAIT);
    assert_eq!(at_uas.method(), Some("INVITE"));
    uas.send(
        at_uas.source().unwrap(),
        reply_to(&at_uas, 486, "Busy Here"),
    );
    let first = next();
    assert_eq!(first.status(), Some(486));
    // No ACK from the UA: timer G retransmits the reply, encoded again.
    let again = next();
    assert_eq!(again.status(), Some(486), "{}", again.text());
    assert_eq!(again.header("CSeq"), first.header("CSeq"));
}
