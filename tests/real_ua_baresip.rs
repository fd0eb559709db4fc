//! Real user agents through ringsip: two baresip softphones register with
//! digest authentication and call each other through a configuration written
//! like Kamailio's stock `kamailio.cfg` with WITH_AUTH
//! (`tests/configs/stock-auth/`), on UDP and TCP.
//!
//! baresip makes its own choices (its Via, Contact, rport, branch and tag
//! formats, its digest answer with qop, its dialog and transaction layer), so
//! these tests catch what raw-text tests written by us would agree with by
//! construction.

mod common;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::baresip::{Account, Baresip};
use common::{ringsip_bin, Proxy};

const WAIT: Duration = Duration::from_secs(10);

/// ringsip and its subscriber database (and TLS certificates).
struct Pbx {
    // Field order: the proxy stops before its files are removed.
    proxy: Proxy,
    /// Its `tls:` listen, and the CA that signed its certificate.
    tls: Option<(SocketAddr, TestCa)>,
    _files: tempfile::TempDir,
}

/// The stock-auth config on UDP and TCP at the same address, usrloc in memory,
/// and a fresh SQLite subscriber table with `users`.
fn start_pbx(users: &[(&str, &str)]) -> Pbx {
    start_pbx_on(users, false)
}

/// A test CA, as the issuer of the certificates of one test.
struct TestCa(rcgen::CertifiedIssuer<'static, rcgen::KeyPair>);

impl TestCa {
    fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        TestCa(CertifiedIssuer::self_signed(params, key).expect("self-sign the CA"))
    }

    /// Writes the CA as `dir/ca.pem`.
    fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.0.pem()).expect("write the CA");
        path
    }

    /// A certificate for `ip` and its key, written as `dir/NAME.pem` and
    /// `dir/NAME.key`.
    fn issue(&self, dir: &Path, name: &str, ip: IpAddr) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![ip.to_string()])
            .expect("certificate params")
            .signed_by(&key, &self.0)
            .expect("sign the certificate");
        let paths = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&paths.0, cert.pem()).expect("write the certificate");
        std::fs::write(&paths.1, key.serialize_pem()).expect("write the key");
        paths
    }
}

/// As [`start_pbx`], with a `tls:` listen too when `tls`.
fn start_pbx_on(users: &[(&str, &str)], tls: bool) -> Pbx {
    let dir = tempfile::Builder::new()
        .prefix("ringsip-baresip-pbx-")
        .tempdir()
        .expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("ringsip.db").display());
    let addr = common::free_udp_addr();
    for (user, password) in users {
        let status = Command::new(ringsip_bin())
            .args(["user", "add", "--db", &url])
            .arg(format!("{user}@{}", addr.ip()))
            .arg(password)
            .status()
            .expect("run ringsip user add");
        assert!(status.success(), "ringsip user add {user}: {status}");
    }
    let mut listen = "listen=udp:@IP@:@PORT@\nlisten=tcp:@IP@:@PORT@".to_string();
    let mut tls_listen = None;
    if tls {
        let port = TcpListener::bind((addr.ip(), 0))
            .and_then(|l| l.local_addr())
            .expect("a free TCP port")
            .port();
        let ca = TestCa::new();
        let (cert, key) = ca.issue(dir.path(), "proxy", addr.ip());
        listen += &format!(
            "\nlisten=tls:@IP@:{port}\nenable_tls=yes\nloadmodule \"tls.so\"\n\
             modparam(\"tls\", \"certificate\", \"{}\")\n\
             modparam(\"tls\", \"private_key\", \"{}\")\n\
             modparam(\"tls\", \"ca_list\", \"{}\")",
            cert.display(),
            key.display(),
            ca.write(dir.path()).display()
        );
        tls_listen = Some((SocketAddr::new(addr.ip(), port), ca));
    }
    let config = include_str!("configs/stock-auth/kamailio.cfg")
        .replace("listen=@LISTEN@", &listen)
        .replace("@DBURL@", &url)
        .replace("@DB_MODE@", "0");
    Pbx {
        proxy: Proxy::builder(&config).listen(addr).workers(2).start(),
        tls: tls_listen,
        _files: dir,
    }
}

fn account(user: &str, password: &str, proxy: &Proxy, transport: &'static str) -> Account {
    Account {
        user: user.into(),
        password: password.into(),
        proxy: proxy.addr(),
        transport,
        cafile: None,
        certificate: None,
        auto_answer: true,
    }
}

/// Starts a registered baresip.
fn registered(name: &str, account: &Account) -> Baresip {
    let mut ua = Baresip::start(name, account);
    if let Err(output) = ua.registration(WAIT) {
        panic!("{name} did not register:\n{output}");
    }
    ua
}

fn param(event: &serde_json::Value) -> &str {
    event["param"].as_str().unwrap_or_default()
}

/// Alice calls Bob, Bob answers at once, Bob hangs up: the BYE goes from the
/// callee back along the Record-Route to the caller.
fn call_answer_and_callee_hangs_up(proxy: &Proxy, alice_tp: &'static str, bob_tp: &'static str) {
    let alice_acc = account("alice", "alice-secret", proxy, alice_tp);
    let bob_acc = account("bob", "bob-secret", proxy, bob_tp);
    call_between(Baresip::start("alice", &alice_acc), &alice_acc, &bob_acc);
}

/// `alice` (started with `alice_acc`) registers and calls Bob; he answers,
/// then hangs up.
fn call_between(mut alice: Baresip, alice_acc: &Account, bob_acc: &Account) {
    if let Err(output) = alice.registration(WAIT) {
        panic!("alice did not register:\n{output}");
    }
    let mut bob = registered("bob", bob_acc);

    // Bob at the proxy address Alice's account uses (its transport's port).
    alice.command("dial", &format!("sip:{}@{}", bob_acc.user, alice_acc.proxy));
    let answered = bob.wait_event("CALL_ESTABLISHED", WAIT);
    assert!(
        answered["peeruri"]
            .as_str()
            .unwrap_or_default()
            .contains("alice@"),
        "Bob answered a call from Alice: {answered}"
    );
    alice.wait_event("CALL_ESTABLISHED", WAIT);

    bob.command("hangup", "");
    bob.wait_event("CALL_CLOSED", WAIT);
    let closed = alice.wait_event("CALL_CLOSED", WAIT);
    assert!(
        param(&closed).contains("reset by peer"),
        "Alice's call ends by Bob's BYE: {closed}\n{}",
        alice.output()
    );
}

#[test]
fn baresip_udp_register_with_digest_call_and_bye_from_the_callee() {
    let pbx = start_pbx(&[("alice", "alice-secret"), ("bob", "bob-secret")]);
    call_answer_and_callee_hangs_up(&pbx.proxy, "udp", "udp");
}

#[test]
fn baresip_tcp_caller_to_udp_callee_and_back() {
    let pbx = start_pbx(&[("alice", "alice-secret"), ("bob", "bob-secret")]);
    call_answer_and_callee_hangs_up(&pbx.proxy, "tcp", "udp");
}

#[test]
fn baresip_tcp_to_tcp() {
    let pbx = start_pbx(&[("alice", "alice-secret"), ("bob", "bob-secret")]);
    call_answer_and_callee_hangs_up(&pbx.proxy, "tcp", "tcp");
}

/// SIP over TLS between baresip (OpenSSL) and ringsip (rustls): Alice
/// registers and calls over TLS, Bob is on UDP. Bob's BYE reaches Alice on a
/// connection ringsip opens to her Contact (as Kamailio does without NAT
/// handling), checking her certificate against the test CA.
#[test]
fn baresip_tls_caller_to_udp_callee() {
    let pbx = start_pbx_on(&[("alice", "alice-secret"), ("bob", "bob-secret")], true);
    let (tls, ca) = pbx.tls.as_ref().expect("a tls listen");
    let files = tempfile::tempdir().expect("temp dir");
    let alice_ip = common::loopback_ip();
    let (cert, key) = ca.issue(files.path(), "alice", IpAddr::V4(alice_ip));
    let identity = files.path().join("alice-identity.pem");
    let pem = std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&key).unwrap();
    std::fs::write(&identity, pem).expect("write Alice's identity");

    let mut alice_acc = account("alice", "alice-secret", &pbx.proxy, "tls");
    alice_acc.proxy = *tls;
    alice_acc.cafile = Some(ca.write(files.path()));
    alice_acc.certificate = Some(identity);
    let bob_acc = account("bob", "bob-secret", &pbx.proxy, "udp");
    let alice = Baresip::start_on("alice", &alice_acc, alice_ip);
    call_between(alice, &alice_acc, &bob_acc);
}

/// A phone on TLS that cannot be reached at its Contact (baresip without a
/// certificate fails every TLS handshake it is offered), behind a config that
/// handles NAT as Kamailio's stock one does (`tests/configs/nat-alias/`):
/// requests to it must go over the connection it opened. Bob (UDP) calls it
/// (the INVITE follows the registration's `received`) and hangs up, then it
/// calls Bob and Bob hangs up again (the BYEs follow the Contact `alias`).
#[test]
fn baresip_tls_phone_is_reached_over_its_own_connection() {
    let addr = common::free_udp_addr();
    let port = TcpListener::bind((addr.ip(), 0))
        .and_then(|l| l.local_addr())
        .expect("a free TCP port")
        .port();
    let files = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let (cert, key) = ca.issue(files.path(), "proxy", addr.ip());
    let listen = format!(
        "listen=udp:@IP@:@PORT@\nlisten=tls:@IP@:{port}\nenable_tls=yes\n\
         loadmodule \"tls.so\"\n\
         modparam(\"tls\", \"certificate\", \"{}\")\n\
         modparam(\"tls\", \"private_key\", \"{}\")",
        cert.display(),
        key.display()
    );
    let config = include_str!("configs/nat-alias/kamailio.cfg").replace("listen=@LISTEN@", &listen);
    let proxy = Proxy::builder(&config).listen(addr).workers(2).start();

    let mut alice_acc = account("alice", "", &proxy, "tls");
    alice_acc.proxy = SocketAddr::new(addr.ip(), port);
    alice_acc.cafile = Some(ca.write(files.path()));
    let bob_acc = account("bob", "", &proxy, "udp");
    let mut alice = registered("alice", &alice_acc);
    let mut bob = registered("bob", &bob_acc);

    bob.command("dial", &format!("sip:alice@{}", proxy.addr()));
    alice.wait_event("CALL_ESTABLISHED", WAIT);
    bob.wait_event("CALL_ESTABLISHED", WAIT);
    bob.command("hangup", "");
    let closed = alice.wait_event("CALL_CLOSED", WAIT);
    assert!(param(&closed).contains("reset by peer"), "{closed}");

    alice.command("dial", &format!("sip:bob@{}", alice_acc.proxy));
    bob.wait_event("CALL_ESTABLISHED", WAIT);
    alice.wait_event("CALL_ESTABLISHED", WAIT);
    bob.command("hangup", "");
    let closed = alice.wait_event("CALL_CLOSED", WAIT);
    assert!(param(&closed).contains("reset by peer"), "{closed}");
}

/// In a call from Alice to Bob, Bob puts Alice on hold and back (re-INVITEs
/// along the route set), then transfers her to Carol (REFER and NOTIFY in the
/// dialog; Alice's new INVITE is challenged and authenticated): Alice ends
/// up talking to Carol and Bob's call ends.
#[test]
fn baresip_hold_resume_and_blind_transfer() {
    let pbx = start_pbx(&[
        ("alice", "alice-secret"),
        ("bob", "bob-secret"),
        ("carol", "carol-secret"),
    ]);
    let mut alice = registered(
        "alice",
        &account("alice", "alice-secret", &pbx.proxy, "udp"),
    );
    let mut bob = registered("bob", &account("bob", "bob-secret", &pbx.proxy, "udp"));
    let carol_acc = account("carol", "carol-secret", &pbx.proxy, "udp");
    let carol = registered("carol", &carol_acc);
    let bob_aor = format!("sip:bob@{}", pbx.proxy.addr());

    alice.command("dial", &bob_aor);
    bob.wait_event("CALL_ESTABLISHED", WAIT);
    alice.wait_event("CALL_ESTABLISHED", WAIT);
    let offer = |e: &serde_json::Value| param(e) == "offer";

    bob.command("hold", "");
    alice.wait_event_where("CALL_REMOTE_SDP", offer, WAIT);
    bob.command("resume", "");
    alice.wait_event_where("CALL_REMOTE_SDP", offer, WAIT);

    bob.command("transfer", &carol_acc.aor());
    let with_alice =
        |e: &serde_json::Value| e["peeruri"].as_str().unwrap_or_default().contains("alice@");
    carol.wait_event_where("CALL_ESTABLISHED", with_alice, WAIT);
    let with_carol =
        |e: &serde_json::Value| e["peeruri"].as_str().unwrap_or_default().contains("carol@");
    alice.wait_event_where("CALL_ESTABLISHED", with_carol, WAIT);
    bob.wait_event("CALL_CLOSED", WAIT);
}

/// The caller gives up while the callee rings: the callee's phone stops
/// ringing (CANCEL reached it) and the caller's call ends.
#[test]
fn baresip_cancel_while_ringing() {
    let pbx = start_pbx(&[("alice", "alice-secret"), ("bob", "bob-secret")]);
    let alice_acc = account("alice", "alice-secret", &pbx.proxy, "udp");
    let mut bob_acc = account("bob", "bob-secret", &pbx.proxy, "udp");
    bob_acc.auto_answer = false;
    let mut alice = registered("alice", &alice_acc);
    let bob = registered("bob", &bob_acc);

    alice.command("dial", &bob_acc.aor());
    bob.wait_event("CALL_INCOMING", WAIT);
    alice.wait_event("CALL_RINGING", WAIT);
    alice.command("hangup", "");
    alice.wait_event("CALL_CLOSED", WAIT);
    bob.wait_event("CALL_CLOSED", WAIT);
    assert!(
        !bob.has_event("CALL_ESTABLISHED") && !alice.has_event("CALL_ESTABLISHED"),
        "nobody answered"
    );
}

/// A wrong password never registers; a call to a user who is not registered
/// ends with 404; once Bob stops (baresip unregisters), calls to him get 404.
#[test]
fn baresip_wrong_password_unregistered_callee_and_unregister() {
    let pbx = start_pbx(&[("alice", "alice-secret"), ("bob", "bob-secret")]);
    let mut mallory = Baresip::start(
        "mallory",
        &account("bob", "not-bobs-password", &pbx.proxy, "udp"),
    );
    let output = mallory
        .registration(WAIT)
        .expect_err("a wrong password does not register");
    assert!(
        output.contains("401 Unauthorized"),
        "challenged again: {output}"
    );
    drop(mallory);

    let mut alice = registered(
        "alice",
        &account("alice", "alice-secret", &pbx.proxy, "udp"),
    );
    let bob_acc = account("bob", "bob-secret", &pbx.proxy, "udp");
    alice.command("dial", &bob_acc.aor());
    let closed = alice.wait_event("CALL_CLOSED", WAIT);
    assert!(
        param(&closed).contains("404"),
        "Bob is not registered: {closed}"
    );

    let bob = registered("bob", &bob_acc);
    alice.command("dial", &bob_acc.aor());
    alice.wait_event("CALL_ESTABLISHED", WAIT);
    alice.command("hangup", "");
    alice.wait_event("CALL_CLOSED", WAIT);
    bob.wait_event("CALL_CLOSED", WAIT);
    drop(bob); // SIGTERM: baresip unregisters on its way out

    alice.command("dial", &bob_acc.aor());
    let closed = alice.wait_event("CALL_CLOSED", WAIT);
    assert!(
        param(&closed).contains("404"),
        "Bob unregistered when he stopped: {closed}"
    );
}
