//! permissions functions and their codes (KAMAILIO-REFERENCE §7.1), and
//! `reload()` picking up rows added to the database.

mod support;

use std::sync::Arc;
use std::time::Duration;

use ringsip::modules::permissions::{self, Permissions};
use ringsip::script::ctx::Shared;
use ringsip::script::registry::{ModParams, ParamValue};
use ringsip::store::{AddressRow, Stores};
use support::Bench;

const OPTIONS: &str = "OPTIONS sip:example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-o
From: <sip:a@example.com>;tag=1
To: <sip:example.com>
Call-ID: o1
CSeq: 1 OPTIONS
Content-Length: 0";

fn row(grp: i64, ip: &str, mask: i64, port: i64) -> AddressRow {
    AddressRow {
        grp,
        ip_addr: ip.into(),
        mask,
        port,
        tag: None,
    }
}

fn bench(p: Arc<Permissions>) -> Bench {
    let mut shared = Shared::default();
    shared.insert(p);
    // Requests come from 127.0.0.2:5070.
    Bench::new(shared, 0)
}

#[test]
fn source_address_functions() {
    let p = Arc::new(Permissions::from_rows(&[
        row(1, "127.0.0.0", 8, 0),
        row(7, "127.0.0.2", 32, 5070),
    ]));
    let mut b = bench(p);
    let m = &permissions::MODULE;
    assert_eq!(b.call(m, "allow_source_address", &[], OPTIONS).rc, 1);
    assert_eq!(b.call(m, "allow_source_address", &["7"], OPTIONS).rc, 1);
    assert_eq!(b.call(m, "allow_source_address", &["2"], OPTIONS).rc, -1);
    assert_eq!(b.call(m, "allow_source_address_group", &[], OPTIONS).rc, 1);
    b.src = "10.9.9.9:5070".parse().unwrap();
    assert_eq!(b.call(m, "allow_source_address", &[], OPTIONS).rc, -1);
    assert_eq!(b.call(m, "allow_source_address_group", &[], OPTIONS).rc, -1);
}

#[test]
fn address_functions() {
    let p = Arc::new(Permissions::from_rows(&[
        row(3, "192.168.0.0", 16, 5060),
        row(4, "gw.example.com", 32, 0),
    ]));
    let mut b = bench(p);
    let m = &permissions::MODULE;
    assert_eq!(
        b.call(m, "allow_address", &["3", "192.168.7.7", "5060"], OPTIONS)
            .rc,
        1
    );
    assert_eq!(
        b.call(m, "allow_address", &["3", "192.168.7.7", "5061"], OPTIONS)
            .rc,
        -1
    );
    assert_eq!(
        b.call(m, "allow_address", &["4", "192.168.7.7", "5060"], OPTIONS)
            .rc,
        -1
    );
    assert_eq!(
        b.call(m, "allow_address_group", &["192.168.7.7", "5060"], OPTIONS)
            .rc,
        3
    );
    assert_eq!(
        b.call(m, "allow_address_group", &["gw.example.com", "1"], OPTIONS)
            .rc,
        4
    );
    assert_eq!(
        b.call(m, "allow_address_group", &["10.0.0.1", "5060"], OPTIONS)
            .rc,
        -1
    );
}

#[test]
fn without_a_table_everything_is_refused() {
    let mut b = Bench::new(Shared::default(), 0);
    assert_eq!(
        b.call(&permissions::MODULE, "allow_source_address", &[], OPTIONS)
            .rc,
        -1
    );
}

#[test]
fn reload_reads_the_database_again() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/perm.db", dir.path().display());
    let mut stores = Stores::default();
    let h = stores.handle(&url).unwrap();
    let p = Permissions::from_store(&ModParams::default(), h.clone()).unwrap();
    assert_eq!(p.group_of(None, "10.1.1.1", 5060), None);
    h.call(
        |s| s.address_add("address", &row(9, "10.0.0.0", 8, 0)),
        Duration::from_secs(5),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        p.group_of(None, "10.1.1.1", 5060),
        None,
        "the snapshot is kept until reload"
    );
    assert_eq!(p.reload(), Ok(1));
    assert_eq!(p.group_of(None, "10.1.1.1", 5060), Some(9));
    drop(p);
    stores.finish();
}

#[test]
fn peer_tag_avp_gets_the_tag_of_the_matching_entry() {
    use ringsip::script::pvkind::AvpKey;
    use ringsip::script::value::Value;
    let mut rows = vec![row(1, "127.0.0.0", 8, 0), row(2, "10.0.0.0", 8, 0)];
    rows[0].tag = Some("carrier-a".into());
    let mut p = Permissions::from_rows(&rows);
    let mut mp = ModParams::default();
    mp.push(
        "permissions",
        "peer_tag_avp",
        ParamValue::Str("$avp(s:peer)".into()),
    );
    p.peer_tag_avp = permissions::peer_tag_avp(&mp).unwrap();
    let mut b = bench(Arc::new(p));
    let key = AvpKey::Str("peer".into());
    let r = b.call(&permissions::MODULE, "allow_source_address", &[], OPTIONS);
    assert_eq!(r.rc, 1);
    assert_eq!(
        r.attrs.avp(&key, 0),
        Some(&Value::owned(b"carrier-a".to_vec()))
    );
    let r = b.call(
        &permissions::MODULE,
        "allow_address",
        &["2", "10.1.2.3", "5060"],
        OPTIONS,
    );
    assert_eq!(r.rc, 1);
    assert_eq!(
        r.attrs.avp(&key, 0),
        None,
        "an entry without a tag sets nothing"
    );
    let r = b.call(
        &permissions::MODULE,
        "allow_source_address",
        &["2"],
        OPTIONS,
    );
    assert_eq!(r.rc, -1);
    assert_eq!(r.attrs.avp(&key, 0), None);
    let mut bad = ModParams::default();
    bad.push(
        "permissions",
        "peer_tag_avp",
        ParamValue::Str("peer".into()),
    );
    assert!(permissions::peer_tag_avp(&bad).is_err());
}
