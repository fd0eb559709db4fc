//! The MySQL/MariaDB store (cargo feature `mysql`, on by default), against
//! the server named by `RINGSIP_TEST_MYSQL_URL` (e.g.
//! `mysql://kamailio:kamailiorw@127.0.0.1:3306/kamailio`) or, without it, a
//! private throwaway MariaDB started by `support::mariadb` (the tests fail,
//! never skip, when MariaDB is not installed): Kamailio's tables round trip,
//! usrloc `db_mode` 1/2/3 across a restart, two `db_mode` 3 nodes, auth_db
//! and permissions reading their tables, acc rows, the `ringsip user` and
//! `ringsip address` commands, a configuration with a malformed `mysql://`
//! URL, and the real binary through a database outage.
#![cfg(feature = "mysql")]

mod common;
mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ringsip_bin, Proxy, RawUa, SipMsg};
use mysql::prelude::Queryable;
use ringsip::modules::auth::db::{AuthDb, AuthDbParams};
use ringsip::modules::auth::digest::{self, Algorithm, ResponseInput};
use ringsip::modules::permissions::Permissions;
use ringsip::modules::registrar::{self, Registrar};
use ringsip::modules::usrloc::{Ucontact, UlParams, Usrloc};
use ringsip::script::ctx::Shared;
use ringsip::script::registry::ModParams;
use ringsip::store::{
    self, AddressRow, DispatcherColumns, LocationRow, Stores, SubscriberColumns, SubscriberRow,
};
use support::mariadb::MariaDb;
use support::usrloc_life::{invite, register, start};
use support::Bench;

const T0: u64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(5);

/// A direct connection, to look at the tables as another client would.
fn client(url: &str) -> mysql::Conn {
    mysql::Conn::new(mysql::Opts::from_url(url).unwrap()).unwrap()
}

/// A name unique to this test process (for a shared `RINGSIP_TEST_MYSQL_URL`).
fn unique(name: &str) -> String {
    format!("{name}{}", std::process::id())
}

#[test]
fn tables_round_trip() {
    let db_server = MariaDb::start();
    let mut db = store::open(db_server.url()).unwrap();
    let table = "location_rt_test";
    db.ensure_location_table(table).unwrap();
    let row = LocationRow {
        ruid: unique("my-rt-"),
        username: "alice".into(),
        domain: Some("example.com".into()),
        contact: "sip:alice@10.0.0.1".into(),
        received: Some("sip:192.0.2.1:5060".into()),
        path: None,
        expires: 1_900_000_000,
        q: 0.5,
        callid: "c".into(),
        cseq: 3,
        last_modified: 1_800_000_000,
        flags: 2,
        cflags: 64,
        user_agent: "ua".into(),
        socket: Some("udp:127.0.0.1:5060".into()),
        methods: Some(-1),
        instance: Some("<urn:uuid:1>".into()),
        reg_id: 1,
        server_id: 7,
        connection_id: -1,
        keepalive: 1,
        partition: 3,
    };
    db.location_upsert(table, std::slice::from_ref(&row))
        .unwrap();
    // The same ruid again replaces, does not add.
    db.location_upsert(table, std::slice::from_ref(&row))
        .unwrap();
    assert_eq!(
        db.location_aor(table, "alice", Some("example.com"))
            .unwrap(),
        std::slice::from_ref(&row)
    );
    assert!(db.location_aor(table, "alice", None).unwrap().is_empty());
    let permanent = LocationRow {
        ruid: unique("my-rt-perm-"),
        username: "bob".into(),
        expires: 0,
        q: -1.0,
        ..row.clone()
    };
    db.location_upsert(table, std::slice::from_ref(&permanent))
        .unwrap();
    assert_eq!(db.location_load(table).unwrap().len(), 2);
    assert_eq!(db.location_delete_expired(table, 1_900_000_000).unwrap(), 1);
    assert_eq!(
        db.location_load(table).unwrap(),
        std::slice::from_ref(&permanent)
    );
    db.location_delete(table, std::slice::from_ref(&permanent.ruid))
        .unwrap();
    assert!(db.location_load(table).unwrap().is_empty());
    // The times are DATETIME text as Kamailio writes them.
    db.location_upsert(table, std::slice::from_ref(&row))
        .unwrap();
    let mut c = client(db_server.url());
    let (expires, q): (String, String) = c
        .query_first(format!(
            "SELECT CAST(expires AS CHAR), CAST(q AS CHAR) FROM {table}"
        ))
        .unwrap()
        .unwrap();
    assert_eq!(
        (expires.as_str(), q.as_str()),
        ("2030-03-17 17:46:40", "0.50")
    );

    let sub = SubscriberRow {
        username: unique("my-user"),
        domain: "example.com".into(),
        password: "pw".into(),
        ha1: "h".into(),
        ha1b: "hb".into(),
    };
    let before = db.data_version().unwrap();
    db.subscriber_put(&sub).unwrap();
    let after = db.data_version().unwrap();
    assert_ne!(after, before);
    db.subscriber_put(&SubscriberRow {
        password: "pw2".into(),
        ..sub.clone()
    })
    .unwrap();
    assert_ne!(
        db.data_version().unwrap(),
        after,
        "a changed password shows"
    );
    let cols = SubscriberColumns {
        password: "password".into(),
        ..SubscriberColumns::default()
    };
    let rows = db.subscribers(&cols).unwrap();
    let got: Vec<_> = rows.iter().filter(|r| r.username == sub.username).collect();
    assert_eq!(got.len(), 1, "replaced by username and domain");
    assert_eq!(got[0].password, "pw2");
    assert_eq!(got[0].ha1b, "hb");
    assert!(db.subscriber_delete(&sub.username, "example.com").unwrap());
    assert!(!db.subscriber_delete(&sub.username, "example.com").unwrap());

    let a = AddressRow {
        grp: 42,
        ip_addr: "10.0.0.0".into(),
        mask: 8,
        port: 0,
        tag: None,
    };
    let b = AddressRow {
        port: 5060,
        tag: Some("peer".into()),
        ..a.clone()
    };
    db.address_add("address", &a).unwrap();
    db.address_add("address", &b).unwrap();
    assert!(db.addresses("address").unwrap().contains(&a));
    assert!(db.addresses("address").unwrap().contains(&b));
    assert_eq!(
        db.address_delete("address", 42, "10.0.0.0", None, Some(5060))
            .unwrap(),
        1
    );
    assert_eq!(
        db.address_delete("address", 42, "10.0.0.0", Some(8), None)
            .unwrap(),
        1
    );

    c.query_drop(
        "INSERT INTO dispatcher (setid, destination, flags, priority, attrs) \
         VALUES (1, 'sip:10.0.0.9:5060', 2, 5, 'weight=50')",
    )
    .unwrap();
    let d = db
        .dispatchers("dispatcher", &DispatcherColumns::default())
        .unwrap();
    assert!(d.iter().any(|r| r.setid == 1
        && r.destination == "sip:10.0.0.9:5060"
        && r.flags == 2
        && r.priority == 5
        && r.attrs == "weight=50"));
    // Kamailio's version table has the rows kamdbctl writes.
    let v: Option<u32> = c
        .query_first("SELECT table_version FROM version WHERE table_name = 'location'")
        .unwrap();
    assert_eq!(v, Some(9));
    // Names that are not identifiers never reach the SQL text.
    assert!(db.location_load("location; DROP TABLE x").is_err());
}

#[test]
fn usrloc_db_modes_1_2_3_survive_a_restart() {
    let db = MariaDb::start();
    for db_mode in [1, 2, 3] {
        let user = unique(&format!("alice{db_mode}x"));
        let contact = format!("sip:{user}@10.0.0.{db_mode}:5062");
        let mut life = start(db.url(), db_mode, T0);
        let r = life.bench.call(
            &registrar::MODULE,
            "save",
            &["location"],
            &register(&user, &contact),
        );
        assert_eq!(r.rc, 1, "db_mode {db_mode}: save");
        life.stop();

        let mut life = start(db.url(), db_mode, T0 + 10_000);
        let r = life
            .bench
            .call(&registrar::MODULE, "lookup", &["location"], &invite(&user));
        assert_eq!(r.rc, 1, "db_mode {db_mode}: the registration survived");
        assert_eq!(r.new_uri.as_deref(), Some(contact.as_bytes()));
        let dom = life.ul.domain(b"location").unwrap();
        let c: Vec<Ucontact> = life
            .ul
            .read(&dom, &user, |r| r.unwrap().contacts.clone())
            .unwrap();
        assert_eq!(c[0].user_agent.as_deref(), Some("test-ua"));
        assert_eq!(c[0].expires, (T0 / 1000) as i64 + 3600);
        assert_eq!(c[0].socket.as_deref(), Some("udp:127.0.0.1:5060"));
        life.stop();
    }
}

fn node(stores: &mut Stores, url: &str) -> Bench {
    let params = UlParams {
        db_mode: 3,
        ..UlParams::default()
    };
    let ul = Usrloc::new(params, Some(stores.handle(url).unwrap()), T0).unwrap();
    let mut shared = Shared::default();
    shared.insert(Arc::new(ul));
    shared.insert(Arc::new(Registrar::default()));
    Bench::new(shared, T0)
}

#[test]
fn two_nodes_share_registrations_in_db_mode_3() {
    let db = MariaDb::start();
    let url = db.url().to_string();
    let mut a_stores = Stores::default();
    let mut b_stores = Stores::default();
    let mut a = node(&mut a_stores, &url);
    let mut b = node(&mut b_stores, &url);
    let user = unique("mynode");
    let contact = format!("sip:{user}@10.9.8.7");
    assert_eq!(
        a.call(
            &registrar::MODULE,
            "save",
            &["location"],
            &register(&user, &contact)
        )
        .rc,
        1
    );
    // Writes are queued: wait until node A's store thread has run them.
    a_stores.handle(&url).unwrap().call(|_| (), WAIT).unwrap();
    let r = b.call(&registrar::MODULE, "lookup", &["location"], &invite(&user));
    assert_eq!(r.rc, 1, "node B sees node A's registration");
    assert_eq!(r.new_uri.as_deref(), Some(contact.as_bytes()));
    let aor = format!("sip:{user}@example.com");
    assert_eq!(
        b.call(
            &registrar::MODULE,
            "unregister",
            &["location", &aor],
            &invite(&user)
        )
        .rc,
        1
    );
    b_stores.handle(&url).unwrap().call(|_| (), WAIT).unwrap();
    let r = a.call(&registrar::MODULE, "lookup", &["location"], &invite(&user));
    assert_eq!(r.rc, -1, "node A no longer finds it");
    drop((a, b));
    a_stores.finish();
    b_stores.finish();
}

#[test]
fn auth_db_reads_subscribers_and_sees_new_ones() {
    let db = MariaDb::start();
    let user = unique("authuser");
    store::open(db.url())
        .unwrap()
        .subscriber_put(&SubscriberRow {
            username: user.clone(),
            domain: "example.com".into(),
            password: "secret".into(),
            ha1: "0123".into(),
            ha1b: "4567".into(),
        })
        .unwrap();
    let mut stores = Stores::default();
    let handle = stores.handle(db.url()).unwrap();
    let params = AuthDbParams {
        columns: SubscriberColumns {
            password: "password".into(),
            ..SubscriberColumns::default()
        },
        calculate_ha1: true,
        use_domain: false,
    };
    let auth = AuthDb::new(params, Some(handle)).unwrap();
    let want = digest::ha1(Algorithm::Md5, user.as_bytes(), b"example.com", b"secret");
    assert_eq!(
        auth.ha1(
            "subscriber",
            user.as_bytes(),
            b"example.com",
            Algorithm::Md5
        ),
        Ok(want)
    );
    assert!(auth.exists("subscriber", user.as_bytes(), b"example.com"));
    let later = unique("lateuser");
    assert!(!auth.exists("subscriber", later.as_bytes(), b"example.com"));
    // Another client adds a subscriber: the running cache picks it up.
    let mut c = client(db.url());
    c.exec_drop(
        "INSERT INTO subscriber (username, domain, password) VALUES (?, 'example.com', 'x')",
        (&later,),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !auth.exists("subscriber", later.as_bytes(), b"example.com") {
        assert!(Instant::now() < deadline, "the new subscriber never showed");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(auth);
    stores.finish();
}

#[test]
fn permissions_read_the_address_table_and_reload() {
    let db = MariaDb::start();
    let mut c = client(db.url());
    let mut stores = Stores::default();
    let h = stores.handle(db.url()).unwrap();
    // Kamailio's column types (grp unsigned, port smallint unsigned) read back.
    c.query_drop("INSERT INTO address (grp, ip_addr, mask, port, tag) VALUES (7, '10.7.0.0', 16, 5060, 'gw')")
        .unwrap();
    let p = Permissions::from_store(&ModParams::default(), h.clone()).unwrap();
    assert_eq!(p.group_of(None, "10.7.1.1", 5060), Some(7));
    assert_eq!(p.group_of(None, "10.7.1.1", 5070), None, "port 5060 only");
    assert_eq!(p.group_of(None, "10.8.1.1", 5060), None);
    h.call(
        |s| {
            s.address_add(
                "address",
                &AddressRow {
                    grp: 8,
                    ip_addr: "10.8.0.0".into(),
                    mask: 16,
                    port: 0,
                    tag: None,
                },
            )
        },
        WAIT,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        p.group_of(None, "10.8.1.1", 5060),
        None,
        "kept until reload"
    );
    assert!(p.reload().is_ok());
    assert_eq!(p.group_of(None, "10.8.1.1", 5060), Some(8));
    drop(p);
    stores.finish();
}

#[test]
fn acc_records_make_their_table_and_quote_extras() {
    let db = MariaDb::start();
    let url = db.url().to_string();
    let mut s = store::open(&url).unwrap();
    let mut c = client(&url);
    c.query_drop("DROP TABLE IF EXISTS acc_my_test").unwrap();
    let rec = store::AccRecord {
        method: "INVITE".into(),
        from_tag: "a1".into(),
        to_tag: "b1".into(),
        callid: "c1".into(),
        sip_code: "200".into(),
        sip_reason: "OK".into(),
        time: 1_800_000_000,
        extra: vec![
            ("src_user".into(), Some("alice".into())),
            // Reserved words in MySQL.
            ("user".into(), None),
            ("partition".into(), Some("p".into())),
        ],
    };
    s.acc_insert("acc_my_test", &rec).unwrap();
    s.acc_insert("acc_my_test", &rec).unwrap();
    type AccRow = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<AccRow> = c
        .query(
            "SELECT method, sip_code, CAST(time AS CHAR), src_user, `user`, `partition` \
             FROM acc_my_test ORDER BY id",
        )
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0],
        (
            "INVITE".into(),
            "200".into(),
            "2027-01-15 08:00:00".into(),
            Some("alice".into()),
            None,
            Some("p".into())
        )
    );
    assert!(s.acc_insert("bad name", &rec).is_err());
}

/// `ringsip ARGS…`: (success, stdout, stderr).
fn ringsip(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(ringsip_bin())
        .args(args)
        .output()
        .expect("run ringsip");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn user_and_address_commands_work_on_a_mysql_url() {
    let db = MariaDb::start();
    let url = db.url();
    let user = unique("cliuser");
    let aor = format!("{user}@example.com");
    let (ok, _, err) = ringsip(&["user", "add", &aor, "pw1", "--db", url]);
    assert!(ok, "user add: {err}");
    let (ok, out, err) = ringsip(&["user", "list", "--db", url]);
    assert!(ok && out.lines().any(|l| l == aor), "user list: {out}{err}");
    let (ok, _, err) = ringsip(&["user", "passwd", &aor, "pw2", "--db", url]);
    assert!(ok, "user passwd: {err}");
    let mut c = client(url);
    let (password, ha1): (String, String) = c
        .exec_first(
            "SELECT password, ha1 FROM subscriber WHERE username = ? AND domain = 'example.com'",
            (&user,),
        )
        .unwrap()
        .unwrap();
    assert_eq!(password, "pw2");
    assert_eq!(
        ha1,
        digest::ha1(Algorithm::Md5, user.as_bytes(), b"example.com", b"pw2")
    );
    let (ok, _, err) = ringsip(&["user", "rm", &aor, "--db", url]);
    assert!(ok, "user rm: {err}");
    let (ok, _, err) = ringsip(&["user", "rm", &aor, "--db", url]);
    assert!(!ok && err.contains("no such subscriber"), "{err}");

    let (ok, _, err) = ringsip(&[
        "address",
        "add",
        "31",
        "192.0.2.0/24",
        "5060",
        "gw",
        "--db",
        url,
    ]);
    assert!(ok, "address add: {err}");
    let (ok, out, _) = ringsip(&["address", "list", "--db", url]);
    assert!(
        ok && out.lines().any(|l| l == "31 192.0.2.0/24 5060 gw"),
        "{out}"
    );
    let (ok, _, err) = ringsip(&["address", "rm", "31", "192.0.2.0", "--db", url]);
    assert!(ok, "address rm: {err}");
    let (ok, out, _) = ringsip(&["address", "list", "--db", url]);
    assert!(ok && !out.contains("192.0.2.0"), "{out}");

    // A server that is not there: the command fails and says why.
    let (ok, _, err) = ringsip(&["user", "list", "--db", "mysql://k:pw@127.0.0.1:1/kamailio"]);
    assert!(!ok && err.contains("mysql"), "{err}");
}

#[test]
fn malformed_mysql_urls_are_errors_at_their_modparam_line() {
    let dir = tempfile::tempdir().unwrap();
    for (url, says) in [
        ("mysql://kamailio:kamailiorw@localhost", "no database name"),
        (
            "mysql://kamailio:kamailiorw@localhost:99999/kamailio",
            "db_url mysql://",
        ),
        ("mysql://k@h/k?no_such_option=1", "db_url mysql://"),
    ] {
        let path = dir.path().join("bad.cfg");
        std::fs::write(
            &path,
            format!(
                "#!KAMAILIO\nloadmodule \"db_mysql.so\"\nloadmodule \"usrloc.so\"\n\
                 modparam(\"usrloc\", \"db_mode\", 1)\nmodparam(\"usrloc\", \"db_url\", \"{url}\")\n\
                 request_route {{ exit; }}\n"
            ),
        )
        .unwrap();
        let (ok, out, err) = ringsip(&["check", "-f", path.to_str().unwrap()]);
        let text = out + &err;
        let at = format!("{}:5:1: usrloc: ", path.display());
        assert!(!ok, "{url}: {text}");
        assert!(text.contains(&at) && text.contains(says), "{url}: {text}");
    }
    // A good one checks without a server (nothing is opened by `check`).
    let path = dir.path().join("good.cfg");
    std::fs::write(
        &path,
        "#!KAMAILIO\nloadmodule \"db_mysql.so\"\nloadmodule \"usrloc.so\"\n\
         modparam(\"usrloc\", \"db_mode\", 1)\n\
         modparam(\"usrloc\", \"db_url\", \"mysql://kamailio:kamailiorw@localhost/kamailio\")\n\
         request_route { exit; }\n",
    )
    .unwrap();
    let (ok, out, err) = ringsip(&["check", "-f", path.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
}

#[test]
fn a_restarted_server_is_reconnected_and_an_outage_is_an_error() {
    let mut db = MariaDb::start();
    if !db.is_private() {
        eprintln!("RINGSIP_TEST_MYSQL_URL is set: restart test runs on a private server only");
        return;
    }
    let mut s = store::open(db.url()).unwrap();
    let cols = SubscriberColumns::default();
    s.subscribers(&cols).unwrap();
    // Restarted between two operations: the next one runs on a new
    // connection, without failing first.
    db.stop();
    db.resume();
    s.subscribers(&cols).unwrap();
    // Down: every operation fails, and says so.
    db.stop();
    let err = s.subscribers(&cols).unwrap_err();
    assert!(err.0.starts_with("mysql: "), "{err}");
    assert!(s.data_version().is_err());
    db.resume();
    s.subscribers(&cols).unwrap();
}

// --- the real binary through an outage ----------------------------------------------

fn stock_config(db_url: &str) -> String {
    include_str!("configs/stock-auth/kamailio.cfg")
        .replace("@DBURL@", db_url)
        .replace("@DB_MODE@", "3")
}

/// A REGISTER of `user` (password `pw`) at `proxy` from `ua`, with digest
/// credentials answering a fresh challenge; returns the final answer.
fn register_with_digest(proxy: SocketAddr, ua: &RawUa, user: &str, pw: &str, n: u32) -> SipMsg {
    let ruri = format!("sip:{proxy}");
    let realm = proxy.ip().to_string();
    let msg = |cseq: u32, auth: &str| {
        format!(
            "REGISTER {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {ua};branch=z9hG4bK-my-{n}-{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{proxy}>;tag=f{n}\r\nTo: <sip:{user}@{proxy}>\r\n\
             Call-ID: my-{n}@{ip}\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@{ua}>\r\nExpires: 600\r\n{auth}Content-Length: 0\r\n\r\n",
            ua = ua.addr(),
            ip = ua.addr().ip(),
        )
    };
    let final_answer = || ua.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200));
    ua.send(proxy, msg(1, ""));
    let challenge = final_answer();
    assert_eq!(challenge.status(), Some(401), "{}", challenge.text());
    let h = challenge.header("WWW-Authenticate").expect("a challenge");
    let start = h.find("nonce=\"").expect("nonce") + 7;
    let nonce = &h[start..start + h[start..].find('"').expect("quote")];
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
            method: b"REGISTER",
            uri: ruri.as_bytes(),
            nonce: nonce.as_bytes(),
            qop_auth: None,
        },
    );
    ua.send(
        proxy,
        msg(
            2,
            &format!(
                "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
                 uri=\"{ruri}\", response=\"{resp}\", algorithm=MD5\r\n"
            ),
        ),
    );
    final_answer()
}

#[test]
fn mysql_outage_in_db_mode_3_fails_the_save_with_500_and_the_node_recovers() {
    let mut db = MariaDb::start();
    if !db.is_private() {
        // A shared server named by RINGSIP_TEST_MYSQL_URL cannot be stopped:
        // the outage is tested on the private one only.
        eprintln!("RINGSIP_TEST_MYSQL_URL is set: outage test runs on a private server only");
        return;
    }
    let url = db.url().to_string();
    let (ok, _, err) = ringsip(&[
        "user",
        "add",
        "alice@example.com",
        "wonderland",
        "--db",
        &url,
    ]);
    assert!(ok, "user add: {err}");
    let proxy = Proxy::start(&stock_config(&url), &[]);
    let alice = RawUa::bind();
    let r = register_with_digest(proxy.addr(), &alice, "alice", "wonderland", 1);
    assert_eq!(r.status(), Some(200), "{}\n{}", r.text(), proxy.stderr());
    let rows = store::open(&url)
        .unwrap()
        .location_aor("location", "alice", None)
        .unwrap();
    assert_eq!(rows.len(), 1, "db_mode 3 wrote the binding: {rows:?}");
    assert_eq!(rows[0].contact, format!("sip:alice@{}", alice.addr()));

    db.stop();
    let r = register_with_digest(proxy.addr(), &alice, "alice", "wonderland", 2);
    assert_eq!(r.status(), Some(500), "{}", r.text());
    // As with Kamailio's stock config, save's own 500 is followed by
    // sl_reply_error()'s.
    let again = alice.expect_msg(WAIT);
    assert_eq!(again.status(), Some(500), "{}", again.text());
    assert!(proxy.stderr().contains("database"), "the failure is logged");

    db.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut n = 3;
    loop {
        let r = register_with_digest(proxy.addr(), &alice, "alice", "wonderland", n);
        if r.status() == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after the database returned: {}\n{}",
            r.text(),
            proxy.stderr()
        );
        // Drain save's second 500 (sl_reply_error) before the next try.
        let _ = alice.recv_msg(Duration::from_millis(300));
        n += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let rows = store::open(&url)
        .unwrap()
        .location_aor("location", "alice", None)
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
}

/// Kamailio's own stock `kamailio.cfg` (the kamailio package's) with its
/// MySQL defines, `DBURL` pointed at the test server: subscribers from
/// auth_db, bindings written back by usrloc (`db_mode` 2), the address table
/// loaded by permissions, the acc table ready.
#[test]
fn stock_kamailio_cfg_with_mysql_registers_against_mariadb() {
    let path = std::path::Path::new("/etc/kamailio/kamailio.cfg");
    let cfg = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the kamailio package is installed here)",
            path.display()
        )
    });
    let db = MariaDb::start();
    let url = db.url().to_string();
    let user = unique("stock");
    let (ok, _, err) = ringsip(&[
        "user",
        "add",
        &format!("{user}@example.com"),
        "pw",
        "--db",
        &url,
    ]);
    assert!(ok, "user add: {err}");
    let dburl = format!("DBURL=\"{url}\"");
    let mut args = Vec::new();
    for d in [
        "WITH_MYSQL",
        "WITH_AUTH",
        "WITH_USRLOCDB",
        "WITH_IPAUTH",
        "WITH_ACCDB",
        &dburl,
    ] {
        args.extend(["-A", d]);
    }
    let proxy = Proxy::start(&cfg, &args);
    let ua = RawUa::bind();
    let r = register_with_digest(proxy.addr(), &ua, &user, "wrong", 1);
    assert_eq!(r.status(), Some(401), "wrong password: {}", r.text());
    let r = register_with_digest(proxy.addr(), &ua, &user, "pw", 2);
    assert_eq!(r.status(), Some(200), "{}\n{}", r.text(), proxy.stderr());
    // Write-back: the binding reaches the table at the latest on shutdown.
    let mut proxy = proxy;
    let status = proxy.process().stop();
    assert!(status.success(), "{status:?}\n{}", proxy.stderr());
    let rows = store::open(&url)
        .unwrap()
        .location_aor("location", &user, None)
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].contact, format!("sip:{user}@{}", ua.addr()));
}
