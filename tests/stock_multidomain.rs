//! Kamailio's own stock `kamailio.cfg` (the kamailio package's) with
//! WITH_AUTH, WITH_USRLOCDB, WITH_ALIASDB, WITH_SPEEDDIAL and, in the last
//! test, WITH_MULTIDOMAIN, on an SQLite database made from kamdbctl's own
//! scripts (/usr/share/kamailio/db_sqlite), against the real binary:
//!
//! - a call to an alias (`dbaliases`) reaches the aliased user's registered
//!   contact; a two-digit speed dial (`speed_dial`) reaches its URI, local
//!   (through the location table) or foreign (relayed out);
//! - multidomain: `myself` matches the domains of the `domain` table, a
//!   user registered in domain A is found from domain B only at A, and the
//!   alias of domain A is not one of domain B.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Proxy, RawUa, SipMsg};
use ringsip::modules::auth::digest::{self, Algorithm, ResponseInput};

const WAIT: Duration = Duration::from_secs(3);
const SCHEMAS: &str = "/usr/share/kamailio/db_sqlite";

/// A database with kamdbctl's tables for the stock config's modules, and `rows`.
fn database(dir: &Path, rows: &str) -> String {
    let path = dir.join("kamailio.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    for t in [
        "standard",
        "auth_db",
        "usrloc",
        "domain",
        "alias_db",
        "speeddial",
    ] {
        let file = format!("{SCHEMAS}/{t}-create.sql");
        let sql = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{file}: {e} (the kamailio package is installed here)"));
        db.execute_batch(&sql).unwrap();
    }
    db.execute_batch(rows).unwrap();
    format!("sqlite://{}", path.display())
}

/// The stock config with `defines`, DBURL the SQLite file.
fn stock(url: &str, defines: &[&str]) -> String {
    assert!(
        Path::new("/etc/kamailio/kamailio.cfg").exists(),
        "the kamailio package is installed here"
    );
    let mut cfg = String::from("#!KAMAILIO\n");
    for d in defines {
        cfg.push_str(&format!("#!define {d}\n"));
    }
    cfg.push_str(&format!(
        "#!define DBURL \"{url}\"\nloadmodule \"db_sqlite.so\"\ninclude_file \"/etc/kamailio/kamailio.cfg\"\n"
    ));
    cfg
}

/// A number not used before in this test process (branches, Call-IDs).
fn next() -> u32 {
    static N: AtomicU32 = AtomicU32::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// One request a UA sends, again with credentials when challenged.
struct Req {
    method: &'static str,
    ruri: String,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
    auth: Option<String>,
}

impl Req {
    fn new(method: &'static str, ruri: &str, from: &str, to: &str) -> Req {
        Req {
            method,
            ruri: ruri.into(),
            from: from.into(),
            to: to.into(),
            call_id: format!("{method}-{}-{}", next(), std::process::id()),
            cseq: 1,
            auth: None,
        }
    }

    fn text(&self, ua: &RawUa) -> String {
        let a = ua.addr();
        let mut m = format!(
            "{} {} SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bK-{}-{};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:{}>;tag=t{}\r\nTo: <sip:{}>\r\nCall-ID: {}\r\nCSeq: {} {}\r\nContact: <sip:ua@{a}>\r\n",
            self.method,
            self.ruri,
            self.cseq,
            next(),
            self.from,
            self.cseq,
            self.to,
            self.call_id,
            self.cseq,
            self.method
        );
        if self.method == "REGISTER" {
            m.push_str("Expires: 300\r\n");
        }
        if let Some(a) = &self.auth {
            m.push_str(a);
            m.push_str("\r\n");
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m
    }
}

fn final_reply(ua: &RawUa) -> SipMsg {
    ua.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200))
}

/// Sends `req`, answers the challenge with `user`/`pw` (realm as the
/// challenge names it) and sends it again; the challenge's code.
fn authenticate(px: SocketAddr, ua: &RawUa, req: &mut Req, user: &str, pw: &str) -> u16 {
    ua.send(px, req.text(ua));
    let ch = final_reply(ua);
    let (asked, header) = match ch.status() {
        Some(401) => ("WWW-Authenticate", "Authorization"),
        Some(407) => ("Proxy-Authenticate", "Proxy-Authorization"),
        other => return other.unwrap_or(0),
    };
    if req.method == "INVITE" {
        let to = ch.header("To").unwrap();
        let ack = req
            .text(ua)
            .replacen("INVITE ", "ACK ", 1)
            .replace(
                &format!("CSeq: {} INVITE", req.cseq),
                &format!("CSeq: {} ACK", req.cseq),
            )
            .replace(&format!("To: <sip:{}>", req.to), &format!("To: {to}"));
        ua.send(px, ack);
    }
    let v = ch.header(asked).unwrap();
    let field = |name: &str| {
        let start = v.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        v[start..start + v[start..].find('"').unwrap()].to_string()
    };
    let (realm, nonce) = (field("realm"), field("nonce"));
    let ha1 = digest::ha1(
        Algorithm::Md5,
        user.as_bytes(),
        realm.as_bytes(),
        pw.as_bytes(),
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
    req.auth = Some(format!(
        "{header}: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{}\", response=\"{resp}\", algorithm=MD5",
        req.ruri
    ));
    ua.send(px, req.text(ua));
    ch.status().unwrap()
}

/// Registers `aor` (user@host[:port]) with the password, from `ua`.
fn register(px: SocketAddr, ua: &RawUa, aor: &str, pw: &str) {
    let (user, host) = aor.split_once('@').unwrap();
    let mut req = Req::new("REGISTER", &format!("sip:{host}"), aor, aor);
    assert_eq!(authenticate(px, ua, &mut req, user, pw), 401);
    let ok = final_reply(ua);
    assert_eq!(ok.status(), Some(200), "REGISTER {aor}: {}", ok.text());
}

/// Where a call ended: the INVITE at the callee, or a final reply to the caller.
enum Reached {
    Callee(SipMsg),
    Caller(SipMsg),
}

impl Reached {
    /// The INVITE the callee got; panics with the caller's reply otherwise.
    fn delivered(self, what: &str) -> SipMsg {
        match self {
            Reached::Callee(m) => m,
            Reached::Caller(r) => panic!("{what}: not delivered: {}", r.text()),
        }
    }

    /// The caller's final reply; panics if the callee got the INVITE.
    fn answered(self, what: &str) -> SipMsg {
        match self {
            Reached::Caller(r) => r,
            Reached::Callee(m) => panic!("{what}: delivered: {}", m.text()),
        }
    }
}

/// A fresh caller `from` (user@host, password) calls `ruri`: the INVITE
/// `callee` gets (this call's, not a retransmission of an earlier one), or
/// the caller's final reply when none arrives.
fn call(px: SocketAddr, from: (&str, &str), ruri: &str, callee: &RawUa) -> Reached {
    let caller = RawUa::bind();
    let to = ruri.trim_start_matches("sip:");
    let mut req = Req::new("INVITE", ruri, from.0, to);
    let user = from.0.split('@').next().unwrap();
    assert_eq!(
        authenticate(px, &caller, &mut req, user, from.1),
        407,
        "the caller is challenged"
    );
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(m) = callee.recv_msg(Duration::from_millis(20)) {
            if m.method() == Some("INVITE") && m.header("Call-ID") == Some(req.call_id.as_str()) {
                return Reached::Callee(m);
            }
        }
        if let Some(m) = caller.recv_msg(Duration::from_millis(20)) {
            if m.status().is_some_and(|s| s >= 200) {
                return Reached::Caller(m);
            }
        }
    }
    panic!("INVITE {ruri}: neither delivered nor answered");
}

fn subscriber(user: &str, domain: &str, pw: &str) -> String {
    format!("INSERT INTO subscriber (username, domain, password) VALUES ('{user}', '{domain}', '{pw}');\n")
}

/// Without WITH_MULTIDOMAIN: the domain of every URI is the proxy's
/// address (with its port, so that it is `myself`).
#[test]
fn alias_and_speed_dial_reach_the_registered_user() {
    let dir = tempfile::tempdir().unwrap();
    let px = common::free_udp_addr();
    let me = px.to_string();
    let outside = RawUa::bind();
    let rows = format!(
        "{}{}
        INSERT INTO dbaliases (alias_username, alias_domain, username, domain) VALUES ('sales', '', 'bob', '{me}');
        INSERT INTO speed_dial (username, domain, sd_username, sd_domain, new_uri) VALUES
            ('alice', '', '21', '', 'sip:bob@{me}'),
            ('alice', '', '22', '', 'sip:carol@{}');",
        subscriber("alice", &px.ip().to_string(), "apw"),
        subscriber("bob", &px.ip().to_string(), "bpw"),
        outside.addr()
    );
    let url = database(dir.path(), &rows);
    let cfg = stock(
        &url,
        &[
            "WITH_AUTH",
            "WITH_USRLOCDB",
            "WITH_ALIASDB",
            "WITH_SPEEDDIAL",
        ],
    );
    let _proxy = Proxy::builder(&cfg).listen(px).start();
    let bob = RawUa::bind();
    register(px, &bob, &format!("bob@{me}"), "bpw");
    let from = (format!("alice@{me}"), "apw");
    let from = (from.0.as_str(), from.1);

    let got = call(px, from, &format!("sip:sales@{me}"), &bob).delivered("the alias reaches bob");
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:ua@{}", bob.addr()).as_str())
    );

    let got = call(px, from, &format!("sip:21@{me}"), &bob).delivered("speed dial 21 reaches bob");
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:ua@{}", bob.addr()).as_str())
    );

    // 22 is a foreign URI: relayed straight there, with route[SIPOUT]'s hint.
    let got = call(px, from, &format!("sip:22@{me}"), &outside).delivered("speed dial 22 goes out");
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:carol@{}", outside.addr()).as_str())
    );
    assert_eq!(got.header("P-Hint"), Some("outbound"));

    // No such alias nor number: 404 from route[LOCATION].
    let r = call(px, from, &format!("sip:23@{me}"), &bob).answered("no number 23");
    assert_eq!(r.status(), Some(404), "{}", r.text());
}

/// WITH_MULTIDOMAIN: use_domain everywhere, `register_myself`.
#[test]
fn multidomain_keeps_users_of_each_domain_apart() {
    let dir = tempfile::tempdir().unwrap();
    let px = common::free_udp_addr();
    let rows = format!(
        "{}{}{}
        INSERT INTO domain (domain) VALUES ('a.example'), ('b.example');
        INSERT INTO dbaliases (alias_username, alias_domain, username, domain) VALUES
            ('sales', 'a.example', 'bob', 'a.example');
        INSERT INTO speed_dial (username, domain, sd_username, sd_domain, new_uri) VALUES
            ('carol', 'b.example', '31', '', 'sip:bob@a.example');",
        subscriber("bob", "a.example", "bpw"),
        subscriber("carol", "b.example", "cpw"),
        subscriber("bob", "b.example", "other"),
    );
    let url = database(dir.path(), &rows);
    let cfg = stock(
        &url,
        &[
            "WITH_AUTH",
            "WITH_USRLOCDB",
            "WITH_ALIASDB",
            "WITH_SPEEDDIAL",
            "WITH_MULTIDOMAIN",
        ],
    );
    let _proxy = Proxy::builder(&cfg).listen(px).start();
    let (bob, carol) = (RawUa::bind(), RawUa::bind());
    // bob of a.example registers with a.example's password (realm a.example).
    register(px, &bob, "bob@a.example", "bpw");
    let carol_id = ("carol@b.example", "cpw");

    // a.example is myself (from the domain table): the call is delivered.
    let got = call(px, carol_id, "sip:bob@a.example", &bob).delivered("bob@a.example");
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:ua@{}", bob.addr()).as_str())
    );
    // bob of b.example never registered.
    let r = call(px, carol_id, "sip:bob@b.example", &bob).answered("bob@b.example");
    assert_eq!(r.status(), Some(404), "{}", r.text());
    // The alias is one of a.example only.
    let got = call(px, carol_id, "sip:sales@a.example", &bob).delivered("sales@a.example");
    assert_eq!(
        got.request_uri(),
        Some(format!("sip:ua@{}", bob.addr()).as_str())
    );
    let r = call(px, carol_id, "sip:sales@b.example", &bob).answered("sales@b.example");
    assert_eq!(r.status(), Some(404), "{}", r.text());
    // carol's speed dial (owner carol@b.example) leads to bob@a.example.
    call(px, carol_id, "sip:31@b.example", &bob).delivered("speed dial 31");

    // A domain not in the table is not myself: not relaying for a foreign caller.
    let req = Req::new(
        "INVITE",
        "sip:bob@c.example",
        "dave@c.example",
        "bob@c.example",
    );
    carol.send(px, req.text(&carol));
    let r = final_reply(&carol);
    assert_eq!(r.status(), Some(403), "{}", r.text());
}

/// `ringsip check` accepts the stock config with each of the three defines
/// alone and all together (with WITH_MYSQL and WITH_AUTH, DBURL SQLite),
/// where it used to refuse the modules as not implemented.
#[test]
fn ringsip_check_accepts_each_define_alone_and_together() {
    let all = ["WITH_ALIASDB", "WITH_SPEEDDIAL", "WITH_MULTIDOMAIN"];
    let sets: Vec<Vec<&str>> = all.iter().map(|d| vec![*d]).chain([all.to_vec()]).collect();
    for defines in sets {
        let mut cmd = std::process::Command::new(common::ringsip_bin());
        cmd.args(["check", "-f", "/etc/kamailio/kamailio.cfg"]);
        for d in [
            "WITH_MYSQL",
            "WITH_AUTH",
            "WITH_USRLOCDB",
            "DBURL=\"sqlite:///tmp/ringsip-stockdb-check.db\"",
        ]
        .iter()
        .chain(&defines)
        {
            cmd.args(["-A", d]);
        }
        let out = cmd.output().expect("run ringsip check");
        assert!(
            out.status.success(),
            "{defines:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `ringsip ctl` ARGS on the control socket `sock`, parsed as JSON.
fn ctl_json(sock: &Path, args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(common::ringsip_bin())
        .args(["ctl", "--json", "-s"])
        .arg(format!("unix:{}", sock.display()))
        .args(args)
        .output()
        .expect("run ringsip ctl");
    assert!(
        out.status.success(),
        "ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// `domain.dump` shows the table; a domain added to the database is
/// `myself` (an OPTIONS keepalive) only after `domain.reload`.
#[test]
fn domain_reload_and_dump_over_the_control_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let url = database(
        dir.path(),
        "INSERT INTO domain (domain, did) VALUES ('a.example', 'A');",
    );
    let cfg = stock(&url, &["WITH_AUTH", "WITH_USRLOCDB", "WITH_MULTIDOMAIN"]);
    let proxy = Proxy::builder(&cfg)
        .arg("--ctl")
        .arg(sock.display().to_string())
        .start();
    assert_eq!(
        ctl_json(&sock, &["domain.dump"]),
        serde_json::json!({"domains": [{"domain": "a.example", "did": "A"}], "attributes": []})
    );
    let ua = RawUa::bind();
    let keepalive = |n: u32| {
        let mut req = Req::new("OPTIONS", "sip:c.example", "dave@c.example", "c.example");
        req.cseq = n;
        ua.send(proxy.addr(), req.text(&ua));
        final_reply(&ua)
    };
    let r = keepalive(1);
    assert_eq!(
        r.status(),
        Some(403),
        "c.example is not ours yet: {}",
        r.text()
    );
    let db = rusqlite::Connection::open(dir.path().join("kamailio.db")).unwrap();
    db.execute("INSERT INTO domain (domain) VALUES ('c.example')", [])
        .unwrap();
    assert_eq!(ctl_json(&sock, &["domain.reload"]), serde_json::json!({}));
    let r = keepalive(2);
    assert_eq!(r.status(), Some(200), "{}", r.text());
    assert_eq!(r.reason(), Some("Keepalive"));
    let dump = ctl_json(&sock, &["domain.dump"]);
    assert_eq!(dump["domains"].as_array().map(Vec::len), Some(2), "{dump}");
    // A table Kamailio would refuse leaves the loaded one in force.
    db.execute("INSERT INTO domain (domain) VALUES ('')", [])
        .unwrap();
    let out = std::process::Command::new(common::ringsip_bin())
        .args(["ctl", "-s"])
        .arg(format!("unix:{}", sock.display()))
        .arg("domain.reload")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Reload of domain tables failed"));
    assert_eq!(keepalive(3).status(), Some(200));
}
