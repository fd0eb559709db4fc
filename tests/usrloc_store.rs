//! usrloc with a database (`db_mode` 1, 2, 3) across a simulated restart on a
//! temporary SQLite file, and the shared table under two threads at once.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ringsip::modules::registrar::{self, Registrar};
use ringsip::modules::usrloc::{Ucontact, UlParams, Usrloc};
use ringsip::script::ctx::{Shared, SharedTimer};
use ringsip::store::{LocationRow, Stores};
use support::usrloc_life::{invite, register, start, Life};
use support::Bench;

const T0: u64 = 1_700_000_000_000;

fn restart_keeps(db_mode: u8) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ringsip.db", dir.path().display());
    let mut life = start(&url, db_mode, T0);
    let r = life.bench.call(
        &registrar::MODULE,
        "save",
        &["location"],
        &register("alice", "sip:alice@10.0.0.1:5062"),
    );
    assert_eq!(r.rc, 1);
    life.stop();

    let mut life = start(&url, db_mode, T0 + 10_000);
    let r = life.bench.call(
        &registrar::MODULE,
        "lookup",
        &["location"],
        &invite("alice"),
    );
    assert_eq!(r.rc, 1, "db_mode {db_mode}: the registration survived");
    assert_eq!(r.new_uri.as_deref(), Some(&b"sip:alice@10.0.0.1:5062"[..]));
    // Its details came back too.
    let dom = life.ul.domain(b"location").unwrap();
    let c: Vec<Ucontact> = life
        .ul
        .read(&dom, "alice", |r| r.unwrap().contacts.clone())
        .unwrap();
    assert_eq!(c[0].user_agent.as_deref(), Some("test-ua"));
    assert_eq!(c[0].expires, (T0 / 1000) as i64 + 3600);
    assert_eq!(c[0].socket.as_deref(), Some("udp:127.0.0.1:5060"));
    life.stop();
}

#[test]
fn db_mode_1_write_through_survives_restart() {
    restart_keeps(1);
}

#[test]
fn db_mode_2_write_back_survives_restart() {
    restart_keeps(2);
}

#[test]
fn db_mode_3_reads_the_database() {
    restart_keeps(3);
}

#[test]
fn write_back_flushes_on_the_timer_and_expired_rows_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/wb.db", dir.path().display());
    let mut life = start(&url, 2, T0);
    let msg = register("bob", "sip:bob@10.0.0.2").replace(
        "Contact: <sip:bob@10.0.0.2>",
        "Contact: <sip:bob@10.0.0.2>;expires=100",
    );
    life.bench
        .call(&registrar::MODULE, "save", &["location"], &msg);
    // Another connection to the file, as a second process would see it.
    let rows = |_: &Life| -> Vec<LocationRow> {
        let mut stores = Stores::default();
        let h = stores.handle(&url).unwrap();
        let r = h.call(|s| s.location_load("location"), Duration::from_secs(5));
        stores.finish();
        r.unwrap().unwrap()
    };
    assert!(
        rows(&life).is_empty(),
        "write-back: nothing written before the timer"
    );
    life.ul.on_timer(T0 + 60_000);
    // The store thread writes in order; a call after it sees the row.
    let h = life.stores.handle(&url).unwrap();
    h.call(|_| (), Duration::from_secs(5)).unwrap();
    assert_eq!(rows(&life).len(), 1);
    life.ul.on_timer(T0 + 120_000);
    h.call(|_| (), Duration::from_secs(5)).unwrap();
    assert!(rows(&life).is_empty(), "the expired row was deleted");
    life.stop();
}

#[test]
fn two_threads_save_and_lookup_at_once() {
    let ul = Arc::new(Usrloc::in_memory(UlParams::default()));
    let mut handles = Vec::new();
    for t in 0..2 {
        let ul = ul.clone();
        handles.push(std::thread::spawn(move || {
            let mut shared = Shared::default();
            shared.insert(ul);
            shared.insert(Arc::new(Registrar::default()));
            let mut b = Bench::new(shared, T0);
            for i in 0..2000 {
                let user = format!("u{}", i % 200);
                let contact = format!("sip:{user}@10.0.{t}.{}", i % 250);
                let r = b.call(
                    &registrar::MODULE,
                    "save",
                    &["location"],
                    &register(&user, &contact),
                );
                assert_eq!(r.rc, 1);
                let r = b.call(&registrar::MODULE, "lookup", &["location"], &invite(&user));
                assert_eq!(r.rc, 1);
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let (aors, contacts) = ul.domain(b"location").unwrap().counts();
    assert_eq!(aors, 200);
    assert!(contacts >= 200);
}
