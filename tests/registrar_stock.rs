//! The registrar and authentication through a configuration written like
//! Kamailio's stock `kamailio.cfg` with WITH_AUTH (`tests/configs/stock-auth/`:
//! in-dialog requests handled by `loose_route` first, then
//! `auth_check("$fd", "subscriber", "1")` / `auth_challenge`, preloaded Route
//! headers removed, `save`, `lookup("location")` + `t_relay()`), against the
//! real binary:
//!
//! - sipp: 1,000 users REGISTER with digest authentication (401, then 200),
//!   100 more give wrong passwords (401, then 401 again) and are never
//!   registered; then 1,000 authenticated calls (INVITE, 407, INVITE with
//!   credentials, 200, ACK, BYE) to the registered users, answered by a sipp
//!   UAS at their contact; calls to the 100 get 404. The location table then
//!   holds exactly the 1,000.
//! - attacks: a preloaded Route header pointing at the proxy does not skip
//!   authentication (INVITE, REGISTER); an attacker with valid credentials of
//!   their own cannot register (forged To or From) or call (forged From) as
//!   another user.

mod common;
#[cfg(feature = "postgres")]
#[path = "support/pg.rs"]
mod pg;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{free_udp_addr, Proxy, RawUa, Scenario, SipMsg, Sipp};
use ringsip::modules::auth::digest::{self, Algorithm, ResponseInput};
use ringsip::store::{self, SubscriberRow};

const WAIT: Duration = Duration::from_secs(3);
/// How long a UA listens for something that must not arrive.
const QUIET: Duration = Duration::from_millis(700);

fn stock_config(db_url: &str, db_mode: u8) -> String {
    include_str!("configs/stock-auth/kamailio.cfg")
        .replace("@DBURL@", db_url)
        .replace("@DB_MODE@", &db_mode.to_string())
}

fn sipp_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// The subscriber row `ringsip user add` writes (plain password, HA1s).
fn subscriber(user: &str, password: &str) -> SubscriberRow {
    let domain = "example.com";
    let full = format!("{user}@{domain}");
    SubscriberRow {
        username: user.into(),
        domain: domain.into(),
        password: password.into(),
        ha1: digest::ha1(
            Algorithm::Md5,
            user.as_bytes(),
            domain.as_bytes(),
            password.as_bytes(),
        ),
        ha1b: digest::ha1(
            Algorithm::Md5,
            full.as_bytes(),
            domain.as_bytes(),
            password.as_bytes(),
        ),
    }
}

/// A fresh SQLite database with `users` as subscribers; its URL.
fn database(dir: &Path, users: &[(String, String)]) -> String {
    let url = format!("sqlite://{}", dir.join("ringsip.db").display());
    let mut db = store::open(&url).expect("open the database");
    for (user, password) in users {
        db.subscriber_put(&subscriber(user, password))
            .expect("add a subscriber");
    }
    url
}

/// A sipp injection file: `SEQUENTIAL`, then one `;`-joined line per row.
fn injection_file(path: &Path, rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut text = String::from("SEQUENTIAL\n");
    for row in rows {
        writeln!(text, "{}", row.join(";")).unwrap();
    }
    std::fs::write(path, text).expect("write the injection file");
    path.display().to_string()
}

/// The injection field sipp turns into credentials (it does not expand
/// fields inside the `[authentication]` keyword, but does expand a field
/// holding the whole keyword).
fn credentials(user: &str, password: &str) -> String {
    format!("[authentication username={user} password={password}]")
}

fn user(i: usize) -> String {
    format!("user{i:04}")
}

/// A password per user, different for every run (the test writes them).
fn password(i: usize) -> String {
    format!("pw-{}-{i}-{}", std::process::id(), i * 7919 % 1000)
}

#[test]
fn sipp_1000_users_register_with_digest_then_1000_authenticated_calls() {
    const USERS: usize = 1_000;
    const WRONG: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<(String, String)> = (0..USERS + WRONG).map(|i| (user(i), password(i))).collect();
    let url = database(dir.path(), &all);
    let mut proxy = Proxy::start(&stock_config(&url, 1), &[]);
    // Every user registers a contact at the one sipp UAS that answers the calls.
    let uas_addr = free_udp_addr();

    // 100 subscribers try with a wrong password: challenged again, never 200.
    let wrong = injection_file(
        &dir.path().join("wrong.csv"),
        (USERS..USERS + WRONG).map(|i| {
            vec![
                user(i),
                credentials(&user(i), &format!("{}x", password(i))),
                uas_addr.to_string(),
            ]
        }),
    );
    Sipp::new(
        Scenario::File(sipp_file("stock_register_wrong.xml")),
        free_udp_addr(),
        Some(proxy.addr()),
    )
    .calls(WRONG as u64)
    .rate(100)
    .timeout(Duration::from_secs(30))
    .arg("-inf")
    .arg(wrong)
    .run()
    .assert_all_ok(WRONG as u64);

    // The 1,000 with their own passwords: 401, then 200.
    let users = injection_file(
        &dir.path().join("users.csv"),
        (0..USERS).map(|i| {
            vec![
                user(i),
                credentials(&user(i), &password(i)),
                uas_addr.to_string(),
            ]
        }),
    );
    Sipp::new(
        Scenario::File(sipp_file("stock_register.xml")),
        free_udp_addr(),
        Some(proxy.addr()),
    )
    .calls(USERS as u64)
    .rate(250)
    .timeout(Duration::from_secs(40))
    .arg("-inf")
    .arg(users)
    .run()
    .assert_all_ok(USERS as u64);

    // 1,000 calls, user i calling user i+1, each answered at the callee's contact.
    let mut uas = Sipp::new(
        Scenario::File(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/uas_rr.xml")),
        uas_addr,
        None,
    )
    .calls(USERS as u64)
    .timeout(Duration::from_secs(60))
    .spawn();
    uas.wait_bound(Duration::from_secs(5));
    let calls = injection_file(
        &dir.path().join("calls.csv"),
        (0..USERS).map(|i| {
            vec![
                user(i),
                credentials(&user(i), &password(i)),
                user((i + 1) % USERS),
            ]
        }),
    );
    Sipp::new(
        Scenario::File(sipp_file("stock_call.xml")),
        free_udp_addr(),
        Some(proxy.addr()),
    )
    .calls(USERS as u64)
    .rate(200)
    .timeout(Duration::from_secs(45))
    .arg("-inf")
    .arg(calls)
    .run()
    .assert_all_ok(USERS as u64);
    uas.wait().assert_all_ok(USERS as u64);

    // Those with the wrong password were never registered: 404.
    let unregistered = injection_file(
        &dir.path().join("unregistered.csv"),
        (0..WRONG).map(|i| {
            vec![
                user(i),
                credentials(&user(i), &password(i)),
                user(USERS + i),
            ]
        }),
    );
    Sipp::new(
        Scenario::File(sipp_file("stock_call_not_found.xml")),
        free_udp_addr(),
        Some(proxy.addr()),
    )
    .calls(WRONG as u64)
    .rate(100)
    .timeout(Duration::from_secs(30))
    .arg("-inf")
    .arg(unregistered)
    .run()
    .assert_all_ok(WRONG as u64);

    // db_mode 1 wrote every binding through: exactly the 1,000.
    let status = proxy.process().stop();
    assert!(
        status.success(),
        "clean shutdown: {status:?}\n{}",
        proxy.stderr()
    );
    let rows = store::open(&url)
        .unwrap()
        .location_load("location")
        .unwrap();
    let registered: BTreeSet<String> = rows.iter().map(|r| r.username.clone()).collect();
    let expected: BTreeSet<String> = (0..USERS).map(user).collect();
    assert_eq!(rows.len(), USERS, "one binding per user");
    assert_eq!(registered, expected);
    assert!(rows
        .iter()
        .all(|r| r.contact == format!("sip:{}@{uas_addr}", r.username)));
}

// --- attacks -------------------------------------------------------------------------

/// A proxy on the stock-like config with subscribers alice, bob and mallory.
struct Pbx {
    proxy: Proxy,
    _dir: tempfile::TempDir,
}

const ALICE: (&str, &str) = ("alice", "wonderland");
const BOB: (&str, &str) = ("bob", "builder");
const MALLORY: (&str, &str) = ("mallory", "m4ll0ry");

impl Pbx {
    /// A node on the database at `url` (subscribers added by the caller).
    fn on(url: &str, db_mode: u8) -> Pbx {
        Pbx {
            proxy: Proxy::start(&stock_config(url, db_mode), &[]),
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    fn start() -> Pbx {
        let dir = tempfile::tempdir().unwrap();
        let users: Vec<(String, String)> = [ALICE, BOB, MALLORY]
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect();
        let url = database(dir.path(), &users);
        Pbx {
            proxy: Proxy::start(&stock_config(&url, 0), &[]),
            _dir: dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.proxy.addr()
    }

    /// The digest realm: the From domain (`$fd`), the proxy's IP.
    fn realm(&self) -> String {
        self.addr().ip().to_string()
    }

    /// `sip:USER@PROXY` (a local user's URI: `from_uri==myself`).
    fn aor(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr())
    }
}

fn next() -> u32 {
    static N: AtomicU32 = AtomicU32::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// One request as an attacker (or a user) writes it.
struct Req<'a> {
    method: &'a str,
    ruri: String,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
    contact: String,
    extra: Vec<String>,
}

impl<'a> Req<'a> {
    fn new(
        pbx: &Pbx,
        ua: &RawUa,
        method: &'a str,
        ruri: String,
        from_user: &str,
        to: String,
    ) -> Req<'a> {
        let n = next();
        Req {
            method,
            ruri,
            from: format!("<{}>;tag=f-{n}", pbx.aor(from_user)),
            to: format!("<{to}>"),
            call_id: format!("stock-{n}@{}", ua.addr().ip()),
            cseq: 1,
            contact: format!("<sip:{from_user}@{}>", ua.addr()),
            extra: Vec::new(),
        }
    }

    fn text(&self, ua: &RawUa) -> String {
        let n = next();
        let mut m = format!(
            "{} {} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {};branch=z9hG4bK-stock-{n};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\nContact: {}\r\n",
            self.method,
            self.ruri,
            ua.addr(),
            self.from,
            self.to,
            self.call_id,
            self.cseq,
            self.method,
            self.contact
        );
        if self.method == "REGISTER" {
            m.push_str("Expires: 600\r\n");
        }
        for line in &self.extra {
            m.push_str(line);
            m.push_str("\r\n");
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m
    }
}

fn nonce_of(challenge: &SipMsg, header: &str) -> String {
    let h = challenge
        .header(header)
        .unwrap_or_else(|| panic!("{header} in {}", challenge.text()));
    let start = h.find("nonce=\"").expect("nonce") + 7;
    let end = h[start..].find('"').expect("closing quote") + start;
    h[start..end].to_string()
}

/// The answer to `req`, skipping 100 Trying.
fn answer(pbx: &Pbx, ua: &RawUa, req: &Req) -> SipMsg {
    ua.send(pbx.addr(), req.text(ua));
    ua.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200))
}

/// Sends `req` without credentials and expects the challenge (401 for
/// REGISTER, 407 otherwise), which it ACKs for an INVITE; then adds
/// credentials for `creds` answering it to `req` (with the next CSeq), ready
/// to send.
fn authenticate(pbx: &Pbx, ua: &RawUa, req: &mut Req, creds: (&str, &str)) {
    let challenge = answer(pbx, ua, req);
    let (code, asked, header) = if req.method == "REGISTER" {
        (401, "WWW-Authenticate", "Authorization")
    } else {
        (407, "Proxy-Authenticate", "Proxy-Authorization")
    };
    assert_eq!(challenge.status(), Some(code), "{}", challenge.text());
    if req.method == "INVITE" {
        ack(pbx, ua, req, &challenge);
    }
    let nonce = nonce_of(&challenge, asked);
    let realm = pbx.realm();
    let ha1 = digest::ha1(
        Algorithm::Md5,
        creds.0.as_bytes(),
        realm.as_bytes(),
        creds.1.as_bytes(),
    );
    let resp = digest::response(
        Algorithm::Md5,
        ha1.as_bytes(),
        &ResponseInput {
            method: req.method.as_bytes(),
            uri: req.ruri.as_bytes(),
            nonce: nonce.as_bytes(),
            qop_auth: None,
        },
    );
    req.cseq += 1;
    req.extra.retain(|l| !l.starts_with(header));
    req.extra.push(format!(
        "{header}: Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{}\", response=\"{resp}\", algorithm=MD5",
        creds.0, req.ruri
    ));
}

/// The ACK for a non-2xx final answer to an INVITE (the stock config drops
/// ACKs that match no transaction; a stateless 407 has none).
fn ack(pbx: &Pbx, ua: &RawUa, req: &Req, reply: &SipMsg) {
    let to = reply.header("To").expect("To");
    let msg = format!(
        "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-stock-ack-{}\r\nMax-Forwards: 70\r\n\
         From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
        req.ruri,
        ua.addr(),
        next(),
        req.from,
        req.call_id,
        req.cseq
    );
    ua.send(pbx.addr(), msg);
}

fn register_req<'a>(pbx: &Pbx, ua: &RawUa, from_user: &str, to_user: &str) -> Req<'a> {
    let mut req = Req::new(
        pbx,
        ua,
        "REGISTER",
        format!("sip:{}", pbx.addr()),
        from_user,
        pbx.aor(to_user),
    );
    req.contact = format!("<sip:{to_user}@{}>", ua.addr());
    req
}

/// `creds`' user registers `ua`'s address with their own credentials (200).
fn register(pbx: &Pbx, ua: &RawUa, creds: (&str, &str)) {
    let mut req = register_req(pbx, ua, creds.0, creds.0);
    authenticate(pbx, ua, &mut req, creds);
    let ok = answer(pbx, ua, &req);
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
}

fn invite_req<'a>(pbx: &Pbx, ua: &RawUa, from_user: &str, callee: &str) -> Req<'a> {
    Req::new(
        pbx,
        ua,
        "INVITE",
        pbx.aor(callee),
        from_user,
        pbx.aor(callee),
    )
}

/// The first INVITE that arrives at `ua` within `wait`, if any.
fn invite_at(ua: &RawUa, wait: Duration) -> Option<SipMsg> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = ua.recv_msg(left)?;
        if m.method() == Some("INVITE") {
            return Some(m);
        }
    }
}

/// A preloaded Route header naming the proxy.
fn route_to(pbx: &Pbx) -> String {
    format!("Route: <sip:{};lr>", pbx.addr())
}

#[test]
fn authenticated_call_reaches_the_registered_user_without_the_preloaded_route() {
    // The positive control of the attacks below: the same requests with the
    // caller's own identity go through.
    let pbx = Pbx::start();
    let bob = RawUa::bind();
    register(&pbx, &bob, BOB);
    let alice = RawUa::bind();
    let mut req = invite_req(&pbx, &alice, "alice", "bob");
    req.extra.push(route_to(&pbx));
    authenticate(&pbx, &alice, &mut req, ALICE);
    assert!(
        invite_at(&bob, QUIET).is_none(),
        "not before authentication"
    );
    alice.send(pbx.addr(), req.text(&alice));
    let got = invite_at(&bob, WAIT).expect("bob's UA gets alice's authenticated INVITE");
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:bob@{}", bob.addr()).as_str())
    );
    assert!(got.header("From").unwrap().contains("sip:alice@"));
    // The preloaded Route is gone; the proxy's own Record-Route is there.
    assert!(got.headers("Route").is_empty(), "{}", got.text());
    assert_eq!(
        got.header("Record-Route"),
        Some(format!("<sip:{};lr>", pbx.addr()).as_str())
    );
    assert!(
        got.header("Proxy-Authorization").is_none(),
        "credentials consumed"
    );
}

#[test]
fn preloaded_route_to_the_proxy_does_not_skip_authentication_of_an_invite() {
    let pbx = Pbx::start();
    let bob = RawUa::bind();
    register(&pbx, &bob, BOB);
    let mallory = RawUa::bind();
    // Claiming to be alice, with no credentials, Route naming the proxy (once
    // and twice, and with the proxy's IP as R-URI host as well).
    for routes in [1, 2] {
        let mut req = invite_req(&pbx, &mallory, "alice", "bob");
        for _ in 0..routes {
            req.extra.push(route_to(&pbx));
        }
        let r = answer(&pbx, &mallory, &req);
        assert_eq!(r.status(), Some(407), "{}", r.text());
        ack(&pbx, &mallory, &req, &r);
    }
    // The Route naming bob's contact straight after the proxy's.
    let mut req = invite_req(&pbx, &mallory, "alice", "bob");
    req.extra.push(format!(
        "Route: <sip:{};lr>, <sip:{};lr>",
        pbx.addr(),
        bob.addr()
    ));
    let r = answer(&pbx, &mallory, &req);
    assert_eq!(r.status(), Some(407), "{}", r.text());
    // Made-up credentials do not help either.
    req.cseq += 1;
    req.extra.push(format!(
        "Proxy-Authorization: Digest username=\"alice\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm=MD5",
        pbx.realm(),
        "A".repeat(32),
        req.ruri,
        "0".repeat(32)
    ));
    let r = answer(&pbx, &mallory, &req);
    assert_eq!(r.status(), Some(407), "{}", r.text());
    assert!(invite_at(&bob, QUIET).is_none(), "nothing reached bob");
}

#[test]
fn preloaded_route_to_the_proxy_does_not_skip_authentication_of_a_register() {
    let pbx = Pbx::start();
    let alice = RawUa::bind();
    register(&pbx, &alice, ALICE);
    let mallory = RawUa::bind();
    let mut req = register_req(&pbx, &mallory, "alice", "alice");
    req.extra.push(route_to(&pbx));
    let r = answer(&pbx, &mallory, &req);
    assert_eq!(r.status(), Some(401), "{}", r.text());
    // Calls for alice still reach alice's own contact only.
    let bob = RawUa::bind();
    let mut call = invite_req(&pbx, &bob, "bob", "alice");
    authenticate(&pbx, &bob, &mut call, BOB);
    bob.send(pbx.addr(), call.text(&bob));
    let got = invite_at(&alice, WAIT).expect("alice's UA gets the call");
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:alice@{}", alice.addr()).as_str())
    );
    assert!(invite_at(&mallory, QUIET).is_none(), "mallory got nothing");
}

#[test]
fn own_credentials_with_a_forged_to_or_from_cannot_register_as_another_user() {
    let pbx = Pbx::start();
    let alice = RawUa::bind();
    register(&pbx, &alice, ALICE);
    let mallory = RawUa::bind();
    // (From user, To user): alice's AOR with mallory's valid credentials.
    for (from, to) in [
        ("mallory", "alice"),
        ("alice", "alice"),
        ("alice", "mallory"),
    ] {
        let mut req = register_req(&pbx, &mallory, from, to);
        authenticate(&pbx, &mallory, &mut req, MALLORY);
        let r = answer(&pbx, &mallory, &req);
        assert!(
            matches!(r.status(), Some(401 | 403)),
            "From {from}, To {to}: {}",
            r.text()
        );
    }
    // Mallory's own registration works (the credentials are valid).
    register(&pbx, &mallory, MALLORY);
    let bob = RawUa::bind();
    let mut call = invite_req(&pbx, &bob, "bob", "alice");
    authenticate(&pbx, &bob, &mut call, BOB);
    bob.send(pbx.addr(), call.text(&bob));
    let got = invite_at(&alice, WAIT).expect("alice's UA gets the call");
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:alice@{}", alice.addr()).as_str())
    );
    assert!(
        invite_at(&mallory, QUIET).is_none(),
        "mallory registered no contact for alice"
    );
}

#[test]
fn own_credentials_with_a_forged_from_cannot_call_as_another_user() {
    let pbx = Pbx::start();
    let bob = RawUa::bind();
    register(&pbx, &bob, BOB);
    let mallory = RawUa::bind();
    let mut req = invite_req(&pbx, &mallory, "alice", "bob");
    authenticate(&pbx, &mallory, &mut req, MALLORY);
    let r = answer(&pbx, &mallory, &req);
    assert_eq!(r.status(), Some(407), "challenged again: {}", r.text());
    ack(&pbx, &mallory, &req, &r);
    assert!(invite_at(&bob, QUIET).is_none(), "nothing reached bob");
    // As herself, mallory gets through: the refusal was about the identity.
    let mut req = invite_req(&pbx, &mallory, "mallory", "bob");
    authenticate(&pbx, &mallory, &mut req, MALLORY);
    mallory.send(pbx.addr(), req.text(&mallory));
    let got = invite_at(&bob, WAIT).expect("bob gets mallory's own call");
    assert!(got.header("From").unwrap().contains("sip:mallory@"));
}

/// `ringsip user add USER@example.com PASSWORD --db URL`.
fn user_add(url: &str, creds: (&str, &str)) {
    let out = std::process::Command::new(common::ringsip_bin())
        .args([
            "user",
            "add",
            &format!("{}@example.com", creds.0),
            creds.1,
            "--db",
            url,
        ])
        .output()
        .expect("run ringsip user add");
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(feature = "postgres")]
#[test]
fn two_ringsip_processes_share_registrations_through_postgresql_in_db_mode_3() {
    let pg = pg::PgServer::start();
    let url = pg.url();
    // Names of this run only, in case RINGSIP_TEST_PG_URL is a shared server.
    let alice_name = format!("alice{}", std::process::id());
    let alice_creds = (alice_name.as_str(), ALICE.1);
    user_add(url, alice_creds);
    user_add(url, BOB);
    let a = Pbx::on(url, 3);
    let b = Pbx::on(url, 3);

    // Alice registers with node A; a call through node B reaches her.
    let alice = RawUa::bind();
    register(&a, &alice, alice_creds);
    let bob = RawUa::bind();
    let mut call = invite_req(&b, &bob, "bob", &alice_name);
    authenticate(&b, &bob, &mut call, BOB);
    bob.send(b.addr(), call.text(&bob));
    let got = invite_at(&alice, WAIT).unwrap_or_else(|| {
        panic!(
            "node B finds node A's registration\nA:\n{}\nB:\n{}",
            a.proxy.stderr(),
            b.proxy.stderr()
        )
    });
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:{alice_name}@{}", alice.addr()).as_str())
    );

    // A subscriber added while both run can register at either.
    let carol = ("carol", "c4r0l");
    user_add(url, carol);
    let carol_ua = RawUa::bind();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut req = register_req(&b, &carol_ua, carol.0, carol.0);
        authenticate(&b, &carol_ua, &mut req, carol);
        let r = answer(&b, &carol_ua, &req);
        if r.status() == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "carol never accepted: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Alice unregisters through node B (Expires: 0); node A no longer finds her.
    let mut req = register_req(&b, &alice, &alice_name, &alice_name);
    req.extra.push("Expires: 0".into());
    let mut unreg = Req {
        extra: Vec::new(),
        ..req
    };
    authenticate(&b, &alice, &mut unreg, alice_creds);
    let text = unreg
        .text(&alice)
        .replace("Expires: 600\r\n", "Expires: 0\r\n");
    alice.send(b.addr(), text);
    let r = alice.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200));
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert!(
        r.header("Contact").is_none(),
        "no binding left: {}",
        r.text()
    );
    let mut call = invite_req(&a, &bob, "bob", &alice_name);
    authenticate(&a, &bob, &mut call, BOB);
    let r = answer(&a, &bob, &call);
    assert_eq!(r.status(), Some(404), "{}", r.text());
}

#[cfg(feature = "postgres")]
#[test]
fn postgresql_outage_in_db_mode_3_fails_the_save_with_500_and_the_node_recovers() {
    let mut pg = pg::PgServer::start();
    if !pg.is_private() {
        // A shared server named by RINGSIP_TEST_PG_URL cannot be stopped:
        // the outage is tested on the private one only.
        eprintln!("RINGSIP_TEST_PG_URL is set: outage test runs on a private server only");
        return;
    }
    let url = pg.url().to_string();
    user_add(&url, ALICE);
    user_add(&url, BOB);
    let node = Pbx::on(&url, 3);
    let alice = RawUa::bind();
    register(&node, &alice, ALICE);

    pg.stop();
    let mut req = register_req(&node, &alice, "alice", "alice");
    authenticate(&node, &alice, &mut req, ALICE);
    let r = answer(&node, &alice, &req);
    assert_eq!(r.status(), Some(500), "{}", r.text());
    // As with Kamailio's stock config, save's own 500 is followed by
    // sl_reply_error()'s.
    let again = alice.expect_msg(WAIT);
    assert_eq!(again.status(), Some(500), "{}", again.text());
    // Lookups fail too (-3: the stock config answers 404).
    let bob = RawUa::bind();
    let mut call = invite_req(&node, &bob, "bob", "alice");
    authenticate(&node, &bob, &mut call, BOB);
    let r = answer(&node, &bob, &call);
    assert_eq!(r.status(), Some(404), "{}", r.text());
    assert!(
        node.proxy.stderr().contains("database"),
        "the failure is logged"
    );

    pg.resume();
    // The first request after the outage may still meet the dead connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut req = register_req(&node, &alice, "alice", "alice");
        authenticate(&node, &alice, &mut req, ALICE);
        let r = answer(&node, &alice, &req);
        if r.status() == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the database returned: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut call = invite_req(&node, &bob, "bob", "alice");
    authenticate(&node, &bob, &mut call, BOB);
    bob.send(node.addr(), call.text(&bob));
    let got = invite_at(&alice, WAIT).expect("alice is reachable again");
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:alice@{}", alice.addr()).as_str())
    );
}
