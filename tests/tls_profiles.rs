//! The `tls` module against the real binary (RFC 3261 §26.3.1, RFC 6066 §3):
//! `tls.cfg` profiles chosen by the listening address and by SNI, client
//! certificates required by a profile, `openssl s_client` answered, `sips:`
//! and `;transport=tls` relayed over TLS to a TLS UAS with the client
//! profile's SNI and verification, `tls_max_connections`, and start-up errors
//! that name the tls.cfg line. The CA and certificates are made at run time
//! with rcgen; no key is committed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::net::{free_udp_addr, loopback_ip};
use common::proxy::{ringsip_bin, Proxy};
use common::tcp::reply_to;
use common::ua::{RawUa, SipMsg};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(5);

/// A test CA and the certificates it signed, as PEM files in a temp dir.
struct Pki {
    dir: TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("ringsip-tlsprof-")
            .tempdir()
            .unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "ringsip profiles test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues `NAME.pem` and `NAME.key` for `names`.
    fn issue(&self, name: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        let (c, k) = (
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let p = self.path(file);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn client_config(ca: &Path, identity: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca) {
        roots.add(c).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(certs(cert), PrivateKeyDer::from_pem_file(key).unwrap())
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

/// Reads one SIP message (headers and Content-Length body) from `r`.
/// One SIP message from a stream. Reads a byte at a time so that nothing of
/// the next message is consumed: two messages that arrived together (a 100
/// and the 200 after it) are returned by two calls.
fn read_message(r: &mut impl Read) -> std::io::Result<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    let n = n.trim().to_ascii_lowercase();
                    (n == "content-length" || n == "l").then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return Ok(String::from_utf8_lossy(&got[..end + 4 + len]).into_owned());
            }
        }
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
}

fn options(to: SocketAddr) -> String {
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK-tls-{n}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:t@example.com>;tag=a{n}\r\nTo: <sip:{to}>\r\n\
         Call-ID: tls-{n}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        n = Instant::now().elapsed().as_nanos() + u128::from(std::process::id())
    )
}

/// Sends OPTIONS over TLS with `sni` (or the IP address: no SNI); the
/// answer and the certificate the server presented.
fn options_over_tls(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    sni: Option<&str>,
) -> std::io::Result<(String, CertificateDer<'static>)> {
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_string()).unwrap(),
        None => ServerName::IpAddress(addr.ip().into()),
    };
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let sock = TcpStream::connect_timeout(&addr, WAIT)?;
    sock.set_read_timeout(Some(WAIT))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(options(addr).as_bytes())?;
    let answer = read_message(&mut tls)?;
    let presented = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
        .ok_or_else(|| std::io::Error::other("no server certificate"))?;
    Ok((answer, presented.into_owned()))
}

/// Answers OPTIONS to itself; `sips:` R-URIs go statelessly with
/// `forward()`, the rest statefully with `t_relay()`.
fn config(tls_cfg: &Path, extra: &str) -> String {
    format!(
        r#"#!KAMAILIO
listen=udp:@IP@:@PORT@
listen=tls:@IP@:@PORT@
debug=2
{extra}
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "textops.so"
loadmodule "tls.so"
modparam("tls", "config", "{}")

request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "OK $pr");
        exit;
    }}
    if ($rU == "stateless") {{
        forward();
        exit;
    }}
    t_relay();
}}
"#,
        tls_cfg.display()
    )
}

/// Server profiles: the default, one for the proxy's address, one by SNI on
/// that address, one by SNI on any address.
#[test]
fn certificate_is_chosen_by_listen_address_and_sni() {
    let pki = Pki::new();
    let (dc, dk) = pki.issue("default", &["default.test"]);
    let (lc, lk) = pki.issue("lo", &["lo.test"]);
    let (ac, ak) = pki.issue("a", &["a.test"]);
    let (bc, bk) = pki.issue("b", &["b.test"]);
    let addr = free_udp_addr();
    let cfg = pki.write(
        "tls.cfg",
        &format!(
            "[server:default]\ncertificate = {}\nprivate_key = {}\n\n\
             [server:{addr}]\ncertificate = {}\nprivate_key = {}\n\n\
             [server:{addr}]\nserver_name = a.test\ncertificate = {}\nprivate_key = {}\n\n\
             [server:any]\nserver_name = b.test\ncertificate = {}\nprivate_key = {}\n",
            dc.display(),
            dk.display(),
            lc.display(),
            lk.display(),
            ac.display(),
            ak.display(),
            bc.display(),
            bk.display()
        ),
    );
    let proxy = Proxy::builder(&config(&cfg, "")).listen(addr).start();
    let client = client_config(&pki.ca(), None);
    for (sni, cert) in [
        (Some("a.test"), &ac),
        (Some("b.test"), &bc),
        (Some("lo.test"), &lc),
        // An unknown name gets the address's own certificate.
        (Some("other.test"), &lc),
    ] {
        let expect_ok = sni != Some("other.test");
        let got = options_over_tls(addr, client.clone(), sni);
        let want = certs(cert).remove(0);
        match got {
            Ok((answer, presented)) => {
                assert!(
                    answer.starts_with("SIP/2.0 200 OK tls"),
                    "{sni:?}: {answer}"
                );
                assert_eq!(presented, want, "{sni:?}: the wrong certificate");
                assert!(
                    expect_ok,
                    "{sni:?}: accepted a certificate for another name"
                );
            }
            // rustls refuses lo.test's certificate for other.test: the name check works.
            Err(e) => assert!(!expect_ok, "{sni:?}: {e}"),
        }
    }
    drop(proxy);
}

/// `verify_certificate` + `require_certificate` on the listen's profile: a
/// client without a certificate is refused, one with a certificate from the
/// CA gets 200; `verify_certificate` alone makes it optional.
#[test]
fn client_certificate_required_or_optional_by_profile() {
    let pki = Pki::new();
    let (sc, sk) = pki.issue("server", &["sip.test"]);
    let (cc, ck) = pki.issue("client", &["client.test"]);
    for require in ["yes", "no"] {
        let addr = free_udp_addr();
        let cfg = pki.write(
            "tls.cfg",
            &format!(
                "[server:{addr}]\ncertificate = {}\nprivate_key = {}\n\
                 verify_certificate = yes\nrequire_certificate = {require}\nca_list = {}\n",
                sc.display(),
                sk.display(),
                pki.ca().display()
            ),
        );
        let proxy = Proxy::builder(&config(&cfg, "")).listen(addr).start();
        let with = options_over_tls(
            addr,
            client_config(&pki.ca(), Some((&cc, &ck))),
            Some("sip.test"),
        );
        let (answer, _) = with.expect("with a client certificate");
        assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
        let without = options_over_tls(addr, client_config(&pki.ca(), None), Some("sip.test"));
        match require {
            "yes" => assert!(without.is_err(), "no client certificate, yet {without:?}"),
            _ => assert!(without.expect("optional").0.starts_with("SIP/2.0 200")),
        }
        // A certificate from another CA is refused either way.
        let other = Pki::new();
        let (oc, ok) = other.issue("client", &["client.test"]);
        let foreign = options_over_tls(
            addr,
            client_config(&pki.ca(), Some((&oc, &ok))),
            Some("sip.test"),
        );
        assert!(
            foreign.is_err(),
            "{require}: foreign client certificate accepted"
        );
        drop(proxy);
    }
}

/// `openssl s_client` with SNI, verifying against the test CA, sends an
/// OPTIONS from a here-doc and reads the 200.
#[test]
fn openssl_s_client_gets_200_with_sni() {
    let pki = Pki::new();
    let (dc, dk) = pki.issue("default", &["default.test"]);
    let (ac, ak) = pki.issue("a", &["a.test"]);
    let addr = free_udp_addr();
    let cfg = pki.write(
        "tls.cfg",
        &format!(
            "[server:default]\ncertificate = {}\nprivate_key = {}\n\
             [server:any]\nserver_name = a.test\ncertificate = {}\nprivate_key = {}\n",
            dc.display(),
            dk.display(),
            ac.display(),
            ak.display()
        ),
    );
    let proxy = Proxy::builder(&config(&cfg, "")).listen(addr).start();
    let script = format!(
        "exec openssl s_client -quiet -verify_return_error -verify_hostname a.test \
         -servername a.test -CAfile '{ca}' -connect '{addr}' <<'EOF'\n{req}EOF\n",
        ca = pki.ca().display(),
        req = options(addr),
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh with openssl");
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
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        first.as_deref(),
        Ok("SIP/2.0 200 OK tls"),
        "openssl stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(proxy);
}

/// A TLS UAS on its own thread: answers each request on a connection with
/// 200 and reports the request and the SNI it was sent with.
fn tls_uas(cert: &Path, key: &Path) -> (SocketAddr, mpsc::Receiver<(String, Option<String>)>) {
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs(cert), PrivateKeyDer::from_pem_file(key).unwrap())
            .unwrap(),
    );
    let listener = TcpListener::bind((loopback_ip(), 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            let (config, tx) = (config.clone(), tx.clone());
            std::thread::spawn(move || {
                sock.set_read_timeout(Some(WAIT)).unwrap();
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, sock);
                while let Ok(req) = read_message(&mut tls) {
                    let sni = tls.conn.server_name().map(str::to_string);
                    let reply = reply_to(&SipMsg::parse_str(&req), 200, "UAS over TLS");
                    let _ = tls.write_all(reply.as_bytes());
                    if tx.send((req, sni)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// `sips:` (stateless `forward()`) and `;transport=tls` (stateful
/// `t_relay()`) go over TLS to the UAS; the client profile of its address
/// sends `server_name` as SNI and verifies the certificate against the CA.
#[test]
fn sips_and_transport_tls_are_relayed_over_tls() {
    let pki = Pki::new();
    let (sc, sk) = pki.issue("server", &["proxy.test"]);
    let (pc, pk) = pki.issue("peer", &["peer.test"]);
    let (uas, got) = tls_uas(&pc, &pk);
    let addr = free_udp_addr();
    let cfg = pki.write(
        "tls.cfg",
        &format!(
            "[server:default]\ncertificate = {}\nprivate_key = {}\n\
             [client:default]\nverify_certificate = yes\nca_list = {}\n\
             [client:{uas}]\nserver_name = peer.test\n",
            sc.display(),
            sk.display(),
            pki.ca().display()
        ),
    );
    let proxy = Proxy::builder(&config(&cfg, "")).listen(addr).start();
    let ua = RawUa::bind();
    for ruri in [
        format!("sips:stateless@{uas}"),
        format!("sip:stateful@{uas};transport=tls"),
    ] {
        ua.send(addr, ua.request("MESSAGE", &ruri, &[], "hello"));
        let reply = ua.expect_msg(WAIT);
        assert_eq!(reply.start_line(), "SIP/2.0 200 UAS over TLS", "{ruri}");
        let (req, sni) = got.recv_timeout(WAIT).expect("the UAS got the request");
        assert!(req.starts_with(&format!("MESSAGE {ruri} SIP/2.0")), "{req}");
        let parsed = SipMsg::parse_str(&req);
        let top_via = parsed.header("Via").unwrap_or_default();
        assert!(top_via.starts_with("SIP/2.0/TLS "), "{ruri}: {top_via}");
        assert_eq!(sni.as_deref(), Some("peer.test"), "{ruri}: SNI");
    }
    drop(proxy);
}

/// With `verify_certificate` on, a UAS whose certificate does not carry the
/// profile's `server_name` gets nothing.
#[test]
fn outgoing_tls_refuses_a_server_with_the_wrong_name() {
    let pki = Pki::new();
    let (sc, sk) = pki.issue("server", &["proxy.test"]);
    let (pc, pk) = pki.issue("peer", &["someone-else.test"]);
    let (uas, got) = tls_uas(&pc, &pk);
    let addr = free_udp_addr();
    let cfg = pki.write(
        "tls.cfg",
        &format!(
            "[server:default]\ncertificate = {}\nprivate_key = {}\n\
             [client:{uas}]\nverify_certificate = yes\nca_list = {}\nserver_name = peer.test\n",
            sc.display(),
            sk.display(),
            pki.ca().display()
        ),
    );
    let proxy = Proxy::builder(&config(&cfg, "")).listen(addr).start();
    let ua = RawUa::bind();
    ua.send(
        addr,
        ua.request("MESSAGE", &format!("sips:stateless@{uas}"), &[], "x"),
    );
    assert!(ua.recv_msg(Duration::from_secs(1)).is_none());
    assert!(got.recv_timeout(Duration::from_millis(200)).is_err());
    drop(proxy);
}

/// `tls_max_connections=2`: a third TLS connection is refused while two are
/// open; once one closes, a new one is served.
#[test]
fn tls_max_connections_is_honoured() {
    let pki = Pki::new();
    let (sc, sk) = pki.issue("server", &["sip.test"]);
    let addr = free_udp_addr();
    let cfg = pki.write(
        "tls.cfg",
        &format!(
            "[server:default]\ncertificate = {}\nprivate_key = {}\n",
            sc.display(),
            sk.display()
        ),
    );
    let proxy = Proxy::builder(&config(&cfg, "tls_max_connections=2"))
        .listen(addr)
        .start();
    let client = client_config(&pki.ca(), None);
    let open = |client: &Arc<rustls::ClientConfig>| {
        let conn = rustls::ClientConnection::new(
            client.clone(),
            ServerName::try_from("sip.test").unwrap(),
        )
        .unwrap();
        let sock = TcpStream::connect_timeout(&addr, WAIT)?;
        sock.set_read_timeout(Some(WAIT))?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(options(addr).as_bytes())?;
        let answer = read_message(&mut tls)?;
        Ok::<_, std::io::Error>((tls, answer))
    };
    let (first, a) = open(&client).expect("first");
    let (_second, b) = open(&client).expect("second");
    assert!(a.starts_with("SIP/2.0 200") && b.starts_with("SIP/2.0 200"));
    let third = open(&client);
    assert!(third.is_err(), "a third TLS connection was served");
    drop(first);
    // The close reaches the proxy a moment later.
    let deadline = Instant::now() + WAIT;
    loop {
        match open(&client) {
            Ok((_, answer)) => {
                assert!(answer.starts_with("SIP/2.0 200"));
                break;
            }
            Err(e) if Instant::now() > deadline => panic!("no slot freed: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    drop(proxy);
}

/// Runs `ringsip run` on `cfg`; its stderr once it exits (panics if it runs).
fn start_error(pki: &Pki, cfg_text: &str) -> String {
    let main = pki.write("main.cfg", cfg_text);
    let mut child = Command::new(ringsip_bin())
        .args(["run", "--workers", "1", "-f"])
        .arg(&main)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success());
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ringsip started with a bad tls configuration");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tls_cfg_errors_name_the_file_and_line() {
    let pki = Pki::new();
    let addr = free_udp_addr();
    let bad = pki.write(
        "tls.cfg",
        "# profiles\n[server:default]\nmethod = TLSv1.2+\ncertificat = /x.pem\n",
    );
    let text = config(&bad, "")
        .replace("@IP@", &addr.ip().to_string())
        .replace("@PORT@", &addr.port().to_string());
    let err = start_error(&pki, &text);
    let want = format!("{}:4: unknown key \"certificat\"", bad.display());
    assert!(err.contains(&want), "{err}");
    // `ringsip check` reads the tls.cfg too.
    let checked = Command::new(ringsip_bin())
        .args(["check", "-f"])
        .arg(pki.path("main.cfg"))
        .output()
        .unwrap();
    assert!(!checked.status.success());
    let err = String::from_utf8_lossy(&checked.stderr);
    assert!(err.contains(&want), "{err}");

    // A server profile whose certificate file is missing.
    let missing = pki.write(
        "tls2.cfg",
        &format!(
            "[server:default]\ncertificate = {0}/none.pem\nprivate_key = {0}/none.key\n",
            pki.dir.path().display()
        ),
    );
    let err = start_error(
        &pki,
        &config(&missing, "")
            .replace("@IP@", &addr.ip().to_string())
            .replace("@PORT@", &addr.port().to_string()),
    );
    assert!(err.contains("none.pem"), "{err}");

    // Verification without a CA list names the profile's line.
    let (sc, sk) = pki.issue("server", &["sip.test"]);
    let no_ca = pki.write(
        "tls3.cfg",
        &format!(
            "[server:default]\ncertificate = {}\nprivate_key = {}\n\n[client:default]\nverify_certificate = yes\n",
            sc.display(),
            sk.display()
        ),
    );
    let err = start_error(
        &pki,
        &config(&no_ca, "")
            .replace("@IP@", &addr.ip().to_string())
            .replace("@PORT@", &addr.port().to_string()),
    );
    let want = format!("{}:5: verify_certificate needs ca_list", no_ca.display());
    assert!(err.contains(&want), "{err}");
}

/// Without a `config` file, the modparams alone configure both sides.
#[test]
fn modparams_without_a_file() {
    let pki = Pki::new();
    let (sc, sk) = pki.issue("server", &["sip.test"]);
    let addr = free_udp_addr();
    let text = format!(
        r#"#!KAMAILIO
listen=udp:@IP@:@PORT@
listen=tls:@IP@:@PORT@
loadmodule "sl.so"
loadmodule "tls.so"
modparam("tls", "tls_method", "TLSv1.3")
modparam("tls", "certificate", "{}")
modparam("tls", "private_key", "{}")
request_route {{
    sl_send_reply("200", "OK $pr");
}}
"#,
        sc.display(),
        sk.display()
    );
    let proxy = Proxy::builder(&text).listen(addr).start();
    let (answer, _) =
        options_over_tls(addr, client_config(&pki.ca(), None), Some("sip.test")).expect("TLS 1.3");
    assert!(answer.starts_with("SIP/2.0 200 OK tls"), "{answer}");
    // TLSv1.3 only: a TLS 1.2-only client fails.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs(&pki.ca()).remove(0)).unwrap();
    let v12 = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    assert!(options_over_tls(addr, v12, Some("sip.test")).is_err());
    drop(proxy);
}

/// A TLS listen on `[::1]` with a `[server:[::1]:PORT]` profile whose
/// certificate names `::1`: a client verifying the IP address gets 200.
#[test]
fn tls_over_ipv6_with_an_ipv6_profile() {
    let pki = Pki::new();
    let (dc, dk) = pki.issue("default", &["default.test"]);
    let (sc, sk) = pki.issue("six", &["::1"]);
    // ::1 is one address: a fixed port from this test file's range.
    let six: SocketAddr = "[::1]:27200".parse().unwrap();
    let cfg = pki.write(
        "tls.cfg",
        &format!(
            "[server:default]\ncertificate = {}\nprivate_key = {}\n\
             [server:{six}]\ncertificate = {}\nprivate_key = {}\n",
            dc.display(),
            dk.display(),
            sc.display(),
            sk.display()
        ),
    );
    let text = config(&cfg, "").replace("listen=tls:@IP@:@PORT@", &format!("listen=tls:{six}"));
    let proxy = Proxy::builder(&text).start();
    let (answer, presented) =
        options_over_tls(six, client_config(&pki.ca(), None), None).expect("TLS over IPv6");
    assert!(answer.starts_with("SIP/2.0 200 OK tls"), "{answer}");
    assert_eq!(presented, certs(&sc).remove(0));
    drop(proxy);
}

/// A TLS client registers (REGISTER over TLS, 200 with its binding), then a
/// MESSAGE from a UDP UA to its AOR reaches it over its own TLS connection
/// (the proxy reuses the connection to the contact's address), and its 200
/// goes back to the UDP UA.
#[test]
fn a_tls_client_registers_and_is_reached_over_its_connection() {
    let pki = Pki::new();
    let (sc, sk) = pki.issue("server", &["sip.test"]);
    let addr = free_udp_addr();
    let text = format!(
        r#"#!KAMAILIO
listen=udp:@IP@:@PORT@
listen=tls:@IP@:@PORT@
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "tls.so"
modparam("tls", "certificate", "{}")
modparam("tls", "private_key", "{}")
request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (is_method("REGISTER")) {{
        save("location");
        exit;
    }}
    if (!lookup("location")) {{
        sl_send_reply("404", "Not Found");
        exit;
    }}
    forward();
}}
"#,
        sc.display(),
        sk.display()
    );
    let proxy = Proxy::builder(&text).listen(addr).start();
    let conn = rustls::ClientConnection::new(
        client_config(&pki.ca(), None),
        ServerName::try_from("sip.test").unwrap(),
    )
    .unwrap();
    let sock = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let me = sock.local_addr().unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let aor = format!("sip:alice@{}", addr.ip());
    let register = format!(
        "REGISTER sip:{ip} SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bK-reg1\r\n\
         Max-Forwards: 70\r\nFrom: <{aor}>;tag=r1\r\nTo: <{aor}>\r\nCall-ID: reg-tls-1\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:alice@{me};transport=tls>\r\nExpires: 300\r\n\
         Content-Length: 0\r\n\r\n",
        ip = addr.ip()
    );
    tls.write_all(register.as_bytes()).unwrap();
    let ok = read_message(&mut tls).expect("REGISTER answered");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    let ok = SipMsg::parse_str(&ok);
    let contact = ok.header("Contact").unwrap_or_default();
    assert!(
        contact.contains(&format!("sip:alice@{me};transport=tls")),
        "{contact}"
    );

    let ua = RawUa::bind();
    ua.send(addr, ua.request("MESSAGE", &aor, &[], "over tls, please"));
    let got = read_message(&mut tls).expect("the MESSAGE arrives over the TLS connection");
    assert!(
        got.starts_with(&format!("MESSAGE sip:alice@{me};transport=tls SIP/2.0")),
        "{got}"
    );
    assert!(got.ends_with("over tls, please"), "{got}");
    let reply = reply_to(&SipMsg::parse_str(&got), 200, "Got it");
    tls.write_all(reply.as_bytes()).unwrap();
    let back = ua.expect_msg(WAIT);
    assert_eq!(back.start_line(), "SIP/2.0 200 Got it");
    drop(proxy);
}

/// An INVITE over TLS relayed statefully to a UDP UAS: the proxy
/// record-routes both sides (a double Record-Route, the TLS side with
/// `;transport=tls`), the UAS's 200 reaches the caller over its TLS
/// connection, and so does the 100 Trying.
#[test]
fn invite_from_tls_to_udp_is_double_record_routed() {
    let pki = Pki::new();
    let (sc, sk) = pki.issue("server", &["sip.test"]);
    let addr = free_udp_addr();
    let callee = RawUa::bind();
    let text = format!(
        r#"#!KAMAILIO
listen=udp:@IP@:@PORT@
listen=tls:@IP@:@PORT@
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "rr.so"
loadmodule "textops.so"
loadmodule "tls.so"
modparam("tls", "certificate", "{}")
modparam("tls", "private_key", "{}")
request_route {{
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    record_route();
    $du = "sip:{}";
    t_relay();
}}
"#,
        sc.display(),
        sk.display(),
        callee.addr()
    );
    let proxy = Proxy::builder(&text).listen(addr).start();
    let conn = rustls::ClientConnection::new(
        client_config(&pki.ca(), None),
        ServerName::try_from("sip.test").unwrap(),
    )
    .unwrap();
    let sock = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let me = sock.local_addr().unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let invite = format!(
        "INVITE sip:bob@{callee} SIP/2.0\r\nVia: SIP/2.0/TLS {me};branch=z9hG4bK-tlsinv\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@{me}>;tag=a1\r\nTo: <sip:bob@{callee}>\r\n\
         Call-ID: tls-invite-1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{me};transport=tls>\r\n\
         Content-Length: 0\r\n\r\n",
        callee = callee.addr()
    );
    tls.write_all(invite.as_bytes()).unwrap();
    let req = callee.expect_msg_where(WAIT, |m| m.method() == Some("INVITE"));
    let rr = req.headers("Record-Route");
    assert_eq!(rr.len(), 2, "a double Record-Route: {rr:?}");
    let has = |r: &str, p: &str| {
        r.trim_matches(|c| c == '<' || c == '>')
            .split(';')
            .any(|x| x == p)
    };
    assert!(rr[0].starts_with(&format!("<sip:{addr};")), "{rr:?}");
    assert!(!has(rr[0], "transport=tls") && has(rr[0], "lr"), "{rr:?}");
    assert!(rr[1].starts_with(&format!("<sip:{addr};")), "{rr:?}");
    assert!(
        rr[1].contains("transport=tls") && rr[1].contains(";lr"),
        "{rr:?}"
    );
    let mut ok = reply_to(&req, 200, "OK");
    let rr_lines: String = rr
        .iter()
        .map(|r| format!("Record-Route: {r}\r\n"))
        .collect();
    ok = ok.replacen("From:", &format!("{rr_lines}From:"), 1);
    callee.send(addr, ok);
    let mut answer = read_message(&mut tls).expect("answers over TLS");
    if answer.starts_with("SIP/2.0 100") {
        answer = read_message(&mut tls).expect("the 200 over TLS");
    }
    assert!(answer.starts_with("SIP/2.0 200 OK"), "{answer}");
    let answer = SipMsg::parse_str(&answer);
    assert_eq!(answer.headers("Via").len(), 1);
    assert_eq!(answer.headers("Record-Route").len(), 2);
    drop(proxy);
}

/// `enable_tls=yes`: a listen without a transport also serves TLS, on the
/// next port (Kamailio's rule), next to UDP and TCP on its own.
#[test]
fn enable_tls_adds_tls_on_the_next_port() {
    let pki = Pki::new();
    let (sc, sk) = pki.issue("server", &["sip.test"]);
    let addr = free_udp_addr();
    let text = format!(
        r#"#!KAMAILIO
listen=@IP@:@PORT@
enable_tls=yes
tls_max_connections=16
loadmodule "sl.so"
loadmodule "tls.so"
modparam("tls", "certificate", "{}")
modparam("tls", "private_key", "{}")
request_route {{
    sl_send_reply("200", "OK $pr");
}}
"#,
        sc.display(),
        sk.display()
    );
    let proxy = Proxy::builder(&text).listen(addr).start();
    let next = SocketAddr::new(addr.ip(), addr.port() + 1);
    let (answer, _) = options_over_tls(next, client_config(&pki.ca(), None), Some("sip.test"))
        .expect("TLS on the next port");
    assert!(answer.starts_with("SIP/2.0 200 OK tls"), "{answer}");
    // TCP stays on the port itself.
    let mut tcp = common::tcp::TcpUa::connect(addr);
    tcp.send(tcp.request("OPTIONS", &format!("sip:{addr}"), &[], ""));
    assert_eq!(tcp.expect_msg(WAIT).start_line(), "SIP/2.0 200 OK tcp");
    drop(proxy);
}
