//! The PostgreSQL store (cargo feature `postgres`, on by default), against the
//! server named by `RINGSIP_TEST_PG_URL` (e.g.
//! `postgres://ringsip:ringsip@127.0.0.1/ringsip`) or, without it, a private
//! throwaway server started by `support::pg` (the tests fail, never skip,
//! when PostgreSQL is not installed). Two usrloc "nodes" in `db_mode` 3 share
//! registrations through it.
#![cfg(feature = "postgres")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use ringsip::modules::registrar::{self, Registrar};
use ringsip::modules::usrloc::{UlParams, Usrloc};
use ringsip::script::ctx::Shared;
use ringsip::store::{self, AddressRow, LocationRow, Stores, SubscriberColumns, SubscriberRow};
use support::pg::PgServer;
use support::Bench;

#[test]
fn tables_round_trip() {
    let pg = PgServer::start();
    let mut db = store::open(pg.url()).unwrap();
    let table = "location_rt_test";
    db.ensure_location_table(table).unwrap();
    let row = LocationRow {
        ruid: "pg-rt-1".into(),
        username: "alice".into(),
        contact: "sip:alice@10.0.0.1".into(),
        expires: 1_900_000_000,
        q: 0.5,
        callid: "c".into(),
        cseq: 3,
        last_modified: 1_800_000_000,
        methods: Some(-1),
        ..LocationRow::default()
    };
    db.location_upsert(table, std::slice::from_ref(&row))
        .unwrap();
    db.location_upsert(table, std::slice::from_ref(&row))
        .unwrap();
    assert_eq!(db.location_aor(table, "alice", None).unwrap(), [row]);
    assert_eq!(db.location_delete_expired(table, 1_900_000_000).unwrap(), 1);
    assert!(db.location_load(table).unwrap().is_empty());

    let sub = SubscriberRow {
        username: "pg-user".into(),
        domain: "example.com".into(),
        password: "pw".into(),
        ha1: "h".into(),
        ha1b: "hb".into(),
    };
    let before = db.data_version().unwrap();
    db.subscriber_put(&sub).unwrap();
    assert_ne!(db.data_version().unwrap(), before);
    let cols = SubscriberColumns {
        password: "password".into(),
        ..SubscriberColumns::default()
    };
    assert!(db
        .subscribers(&cols)
        .unwrap()
        .iter()
        .any(|r| r.username == "pg-user"));
    assert!(db.subscriber_delete("pg-user", "example.com").unwrap());

    let a = AddressRow {
        grp: 42,
        ip_addr: "10.0.0.0".into(),
        mask: 8,
        port: 0,
        tag: None,
    };
    db.address_add("address", &a).unwrap();
    assert!(db.addresses("address").unwrap().contains(&a));
    assert_eq!(
        db.address_delete("address", 42, "10.0.0.0", None, None)
            .unwrap(),
        1
    );
}

fn node(stores: &mut Stores, url: &str) -> Bench {
    let params = UlParams {
        db_mode: 3,
        ..UlParams::default()
    };
    let ul = Usrloc::new(params, Some(stores.handle(url).unwrap()), 1_700_000_000_000).unwrap();
    let mut shared = Shared::default();
    shared.insert(Arc::new(ul));
    shared.insert(Arc::new(Registrar::default()));
    Bench::new(shared, 1_700_000_000_000)
}

#[test]
fn two_nodes_share_registrations_in_db_mode_3() {
    let pg = PgServer::start();
    let url = pg.url().to_string();
    let mut a_stores = Stores::default();
    let mut b_stores = Stores::default();
    let mut a = node(&mut a_stores, &url);
    let mut b = node(&mut b_stores, &url);
    let user = format!("pgnode{}", std::process::id());
    let reg = format!(
        "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-pg
From: <sip:{user}@example.com>;tag=1
To: <sip:{user}@example.com>
Call-ID: pg-1
CSeq: 1 REGISTER
Contact: <sip:{user}@10.9.8.7>
Content-Length: 0"
    );
    assert_eq!(
        a.call(&registrar::MODULE, "save", &["location"], &reg).rc,
        1
    );
    // Writes are queued: wait until node A's store thread has run them.
    a_stores
        .handle(&url)
        .unwrap()
        .call(|_| (), Duration::from_secs(5))
        .unwrap();
    let inv = format!(
        "INVITE sip:{user}@example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-pgi
From: <sip:x@example.com>;tag=1
To: <sip:{user}@example.com>
Call-ID: pg-2
CSeq: 1 INVITE
Content-Length: 0"
    );
    let r = b.call(&registrar::MODULE, "lookup", &["location"], &inv);
    assert_eq!(r.rc, 1, "node B sees node A's registration");
    assert_eq!(
        r.new_uri.as_deref(),
        Some(format!("sip:{user}@10.9.8.7").as_bytes())
    );
    let unreg = format!("sip:{user}@example.com");
    assert_eq!(
        b.call(
            &registrar::MODULE,
            "unregister",
            &["location", &unreg],
            &inv
        )
        .rc,
        1
    );
    drop((a, b));
    a_stores.finish();
    b_stores.finish();
}

#[test]
fn acc_records_make_their_table_and_quote_extras() {
    let pg = PgServer::start();
    let url = pg.url().to_string();
    let mut db = store::open(&url).unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute("DROP TABLE IF EXISTS acc_pg_test")
        .unwrap();
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
            ("user".into(), None),
        ],
    };
    db.acc_insert("acc_pg_test", &rec).unwrap();
    db.acc_insert("acc_pg_test", &rec).unwrap();
    let rows = client
        .query(
            "SELECT method, sip_code, to_char(time, 'YYYY-MM-DD HH24:MI:SS'), src_user, \"user\" \
             FROM acc_pg_test ORDER BY id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r.get::<_, String>(0), "INVITE");
    assert_eq!(r.get::<_, String>(1), "200");
    assert_eq!(r.get::<_, String>(2), "2027-01-15 08:00:00");
    assert_eq!(r.get::<_, Option<String>>(3).as_deref(), Some("alice"));
    assert_eq!(r.get::<_, Option<String>>(4), None);
    assert!(db.acc_insert("bad name", &rec).is_err());
}
