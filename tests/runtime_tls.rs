//! TLS on loopback (RFC 3261 §26.3.1): a rustls client sends OPTIONS over a
//! `tls:` listen and gets 200 on both IO drivers, `openssl s_client` does the
//! same when installed, client certificates are required when asked for,
//! outgoing TLS verifies the server against the CA list, and a client that
//! never finishes its handshake is dropped. The certificates are made at run
//! time with rcgen (a test CA, a server certificate for 127.0.0.1, a client
//! certificate); no key is committed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use ringsip::runtime::{self, Handler, IoMode, ListenSpec, RuntimeConfig, Server, WorkerInfo};
use ringsip::sip::packet::{Inbound, Proto, Transmit};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(5);

/// A test CA and what it signed, as PEM files in a temp dir.
struct Pki {
    dir: TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn pki() -> Pki {
    let dir = tempfile::Builder::new()
        .prefix("ringsip-tls-")
        .tempdir()
        .unwrap();
    let ca = ca("ringsip test CA");
    let issue = |names: Vec<String>, cert: &str, key: &str| {
        let key_pair = KeyPair::generate().unwrap();
        let c = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key_pair, &ca)
            .unwrap();
        std::fs::write(dir.path().join(cert), c.pem()).unwrap();
        std::fs::write(dir.path().join(key), key_pair.serialize_pem()).unwrap();
    };
    issue(
        vec!["127.0.0.1".into(), "localhost".into()],
        "server.pem",
        "server.key",
    );
    issue(vec!["client.test".into()], "client.pem", "client.key");
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let p = |f: &str| dir.path().join(f);
    Pki {
        ca: p("ca.pem"),
        cert: p("server.pem"),
        key: p("server.key"),
        client_cert: p("client.pem"),
        client_key: p("client.key"),
        dir,
    }
}

/// Answers every request with `200 OK` on its connection; its body says
/// the transport it came over.
struct Ok200;

impl Handler for Ok200 {
    fn on_inbound(&mut self, pkt: Inbound, _now: Instant, out: &mut Vec<Transmit>) {
        if pkt.data.starts_with(b"SIP/2.0") {
            return;
        }
        let body = pkt.proto.to_string();
        let reply = format!(
            "SIP/2.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        out.push(Transmit {
            data: Bytes::from(reply),
            dst: pkt.src,
            proto: pkt.proto,
            socket: Some(pkt.socket),
            local: Some(pkt.local),
            conn: pkt.conn,
            flags: Default::default(),
        });
    }
    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}

fn tls_config(pki: &Pki, io: IoMode) -> RuntimeConfig {
    RuntimeConfig {
        workers: 2,
        io,
        pin_cores: false,
        handle_signals: false,
        recv_buffers: 16,
        tls_certificate: Some(pki.cert.clone()),
        tls_private_key: Some(pki.key.clone()),
        tls_ca_list: Some(pki.ca.clone()),
        ..RuntimeConfig::new(vec![ListenSpec::tls("127.0.0.1:0".parse().unwrap())])
    }
}

fn start(cfg: RuntimeConfig) -> Server {
    runtime::start(cfg, |_: WorkerInfo| Ok200).expect("start runtime")
}

fn stop(server: Server) {
    server.stop();
    server.wait().expect("workers end cleanly");
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &PathBuf) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// A rustls client config trusting `pki`'s CA, with its client certificate
/// or none.
fn client_config(pki: &Pki, with_cert: bool) -> Arc<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&pki.ca));
    Arc::new(match with_cert {
        true => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(&pki.client_cert)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(&pki.client_key).unwrap(),
            )
            .unwrap(),
        false => builder.with_no_client_auth(),
    })
}

const OPTIONS: &str =
    "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKt\r\n\
                       Content-Length: 0\r\n\r\n";

/// Sends OPTIONS over TLS; the reply text, or the error.
fn options_over_tls(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<String> {
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let sock = TcpStream::connect_timeout(&addr, WAIT)?;
    sock.set_read_timeout(Some(WAIT))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(OPTIONS.as_bytes())?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\r\n\r\ntls") {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

fn options_answered(io: IoMode) {
    let pki = pki();
    let server = start(tls_config(&pki, io));
    let addr = server.local_addrs()[0];
    for _ in 0..3 {
        let reply = options_over_tls(addr, client_config(&pki, false)).expect("TLS OPTIONS");
        assert!(reply.starts_with("SIP/2.0 200 OK"), "{reply}");
    }
    let stats = server.stream_stats();
    assert_eq!(
        (stats.accepted, stats.messages_received, stats.tls_errors),
        (3, 3, 0)
    );
    stop(server);
}

#[test]
fn options_over_tls_answered_on_io_uring() {
    options_answered(IoMode::Uring);
}

#[test]
fn options_over_tls_answered_on_poll() {
    options_answered(IoMode::Poll);
}

#[test]
fn a_client_trusting_another_ca_fails_the_handshake() {
    let pki = pki();
    let server = start(tls_config(&pki, IoMode::Auto));
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("ca.pem");
    std::fs::write(&other_ca, ca("someone else").pem()).unwrap();
    let config = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(&other_ca))
            .with_no_client_auth(),
    );
    assert!(options_over_tls(server.local_addrs()[0], config).is_err());
    stop(server);
}

#[test]
fn client_certificate_is_required_when_asked() {
    let pki = pki();
    let server = start(RuntimeConfig {
        tls_verify_client: true,
        ..tls_config(&pki, IoMode::Auto)
    });
    let addr = server.local_addrs()[0];
    assert!(
        options_over_tls(addr, client_config(&pki, false)).is_err(),
        "no client certificate: refused"
    );
    let reply = options_over_tls(addr, client_config(&pki, true)).expect("with a certificate");
    assert!(reply.starts_with("SIP/2.0 200 OK"), "{reply}");
    assert!(server.stream_stats().tls_errors >= 1);
    stop(server);
}

#[test]
fn missing_certificate_is_a_start_error() {
    let pki = pki();
    let cfg = RuntimeConfig {
        tls_certificate: None,
        ..tls_config(&pki, IoMode::Auto)
    };
    let err = runtime::start(cfg, |_: WorkerInfo| Ok200)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("tls_certificate"), "{err}");
    let cfg = RuntimeConfig {
        tls_private_key: Some(pki.dir.path().join("missing.key")),
        ..tls_config(&pki, IoMode::Auto)
    };
    assert!(runtime::start(cfg, |_: WorkerInfo| Ok200).is_err());
}

/// A client that opens a TLS connection and never completes the handshake
/// is dropped after `tcp_msg_read_timeout`.
#[test]
fn stalled_handshake_is_dropped() {
    let pki = pki();
    let server = start(RuntimeConfig {
        tcp_msg_read_timeout: Duration::from_millis(300),
        ..tls_config(&pki, IoMode::Auto)
    });
    let mut s = TcpStream::connect(server.local_addrs()[0]).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(&[0x16, 0x03, 0x01]).unwrap(); // the start of a record
    let started = Instant::now();
    let mut buf = [0u8; 64];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.stream_stats().closed_slow, 1);
    stop(server);
}

/// `openssl s_client` (when installed) connects, sends OPTIONS and reads 200.
#[test]
fn openssl_s_client_gets_200() {
    let Ok(found) = Command::new("sh")
        .args(["-c", "command -v openssl"])
        .output()
    else {
        return;
    };
    if !found.status.success() {
        eprintln!("openssl is not installed: skipped");
        return;
    }
    let pki = pki();
    let server = start(tls_config(&pki, IoMode::Auto));
    let addr = server.local_addrs()[0];
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(&pki.ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(OPTIONS.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(WAIT);
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    assert_eq!(first.as_deref(), Ok("SIP/2.0 200 OK"), "openssl's answer");
    stop(server);
}

/// Sends one message to `dst` over TLS when the test says so.
struct Sender {
    dst: SocketAddr,
    next: Instant,
    go: Arc<Mutex<bool>>,
}

impl Handler for Sender {
    fn on_inbound(&mut self, _pkt: Inbound, _now: Instant, _out: &mut Vec<Transmit>) {}
    fn on_timer(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        self.next = now + Duration::from_millis(5);
        if std::mem::take(&mut *self.go.lock().unwrap()) {
            out.push(Transmit {
                data: Bytes::from_static(OPTIONS.as_bytes()),
                dst: self.dst,
                proto: Proto::Tls,
                socket: None,
                local: None,
                conn: None,
                flags: Default::default(),
            });
        }
    }
    fn next_deadline(&self) -> Option<Instant> {
        Some(self.next)
    }
}

/// A one-shot TLS server on a thread: the first message it reads, or the error.
fn tls_peer(cert: &PathBuf, key: &PathBuf) -> (SocketAddr, mpsc::Receiver<Result<String, String>>) {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            CertificateDer::pem_file_iter(cert)
                .unwrap()
                .map(Result::unwrap)
                .collect(),
            PrivateKeyDer::from_pem_file(key).unwrap(),
        )
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let conn = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let result = loop {
            match tls.read(&mut buf) {
                Ok(0) => break Err("closed".to_string()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break Err(e.to_string()),
            }
            if got.ends_with(b"\r\n\r\n") {
                break Ok(String::from_utf8_lossy(&got).into_owned());
            }
        };
        let _ = tx.send(result);
    });
    (addr, rx)
}

fn send_over_tls(
    pki: &Pki,
    peer_cert: &PathBuf,
    peer_key: &PathBuf,
) -> (Result<String, String>, u64) {
    let (peer, got) = tls_peer(peer_cert, peer_key);
    let go = Arc::new(Mutex::new(true));
    let g = go.clone();
    let server = runtime::start(tls_config(pki, IoMode::Auto), move |_: WorkerInfo| Sender {
        dst: peer,
        next: Instant::now(),
        go: g.clone(),
    })
    .unwrap();
    let result = got
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| Err("nothing".into()));
    let stats = server.stream_stats();
    stop(server);
    (result, stats.connected)
}

#[test]
fn outgoing_tls_verifies_the_server() {
    let ours = pki();
    let (got, connected) = send_over_tls(&ours, &ours.cert, &ours.key);
    let text = got.expect("the peer receives the message");
    assert!(text.starts_with("OPTIONS sip:127.0.0.1"), "{text}");
    assert_eq!(connected, 1);
    // A server whose certificate another CA signed is refused.
    let other = pki();
    let (got, _) = send_over_tls(&ours, &other.cert, &other.key);
    assert!(got.is_err(), "{got:?}");
}
