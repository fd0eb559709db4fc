//! The presence server of Kamailio's stock configuration
//! (`/etc/kamailio/kamailio.cfg` with WITH_PRESENCE, WITH_AUTH and
//! WITH_USRLOCDB, on an SQLite database with Kamailio's own schema), against
//! the real binary: route[PRESENCE] does `t_newtran()`, then
//! `handle_publish()` / `handle_subscribe()` and `t_release()`.
//!
//! A PUBLISH is answered 200 with an entity tag; a SUBSCRIBE is answered 200
//! and followed by a NOTIFY carrying the published PIDF; a second PUBLISH
//! (SIP-If-Match) notifies the watcher again; an unknown ETag gets 412; the
//! watcher's unsubscription gets the last NOTIFY (terminated); the presence
//! tables hold what Kamailio's would.
//!
//! The requests come from a domain that is not the proxy's (From
//! `example.com`), to the proxy's own users: route[AUTH] lets them through
//! without a challenge, as Kamailio's does (the challenge is covered by the
//! side-by-side case `stock_presence`).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Proxy, RawUa, SipMsg};

const WAIT: Duration = Duration::from_secs(3);
const KAMAILIO_SQL: &str = "/usr/share/kamailio/db_sqlite";

const PIDF: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@example.com\">\n  \
<tuple id=\"t1\">\n    <status>\n      <basic>BASIC</basic>\n    </status>\n  </tuple>\n</presence>\n";

fn pidf(basic: &str) -> String {
    PIDF.replace("BASIC", basic)
}

/// An SQLite database made from Kamailio's schema files, as `kamdbctl create` makes it.
fn kamailio_db(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("kamailio.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    for t in ["standard", "auth_db", "usrloc", "presence"] {
        let sql =
            std::fs::read_to_string(format!("{KAMAILIO_SQL}/{t}-create.sql")).unwrap_or_else(|e| {
                panic!("{KAMAILIO_SQL}/{t}-create.sql (kamailio is installed here): {e}")
            });
        db.execute_batch(&sql).unwrap();
    }
    path
}

fn config(db: &Path) -> String {
    format!(
        "#!KAMAILIO\n#!define WITH_AUTH\n#!define WITH_USRLOCDB\n#!define WITH_PRESENCE\n\
         #!define DBURL \"sqlite://{}\"\nloadmodule \"db_sqlite.so\"\n\
         include_file \"/etc/kamailio/kamailio.cfg\"\n",
        db.display()
    )
}

/// A request of `ua` (user `user`) to `sip:target@proxy`.
#[allow(clippy::too_many_arguments)]
fn request(
    ua: &RawUa,
    px: std::net::SocketAddr,
    method: &str,
    user: &str,
    target: &str,
    call: &str,
    cseq: u32,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> String {
    let me = ua.addr();
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let ctype = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/pidf+xml\r\n".into()
    };
    format!(
        "{method} sip:{target}@{px} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call}-{cseq};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@example.com>;tag={user}-tag\r\n\
         To: <sip:{target}@{px}>{to_tag}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:{user}@{me}>\r\n{extra}{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The final answer `ua` gets.
fn answer(ua: &RawUa) -> SipMsg {
    ua.expect_msg_where(WAIT, |m| m.status().is_some_and(|s| s >= 200))
}

/// The NOTIFY `ua` gets, answered 200.
fn notify(ua: &RawUa) -> SipMsg {
    let n = ua.expect_msg_where(WAIT, |m| m.method() == Some("NOTIFY"));
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for v in n.headers("via") {
        ok.push_str(&format!("Via: {v}\r\n"));
    }
    for h in ["from", "to", "call-id", "cseq"] {
        ok.push_str(&format!("{h}: {}\r\n", n.header(h).unwrap()));
    }
    ok.push_str("Content-Length: 0\r\n\r\n");
    ua.send(n.source().unwrap(), ok);
    n
}

fn tag_of(value: &str) -> String {
    value
        .split(';')
        .find_map(|p| p.trim().strip_prefix("tag="))
        .unwrap_or_else(|| panic!("no tag in {value}"))
        .to_string()
}

#[test]
fn stock_config_publish_subscribe_notify_and_unsubscribe() {
    let dir = tempfile::tempdir().unwrap();
    let db = kamailio_db(dir.path());
    let proxy = Proxy::start(&config(&db), &[]);
    let px = proxy.addr();
    let (alice, bob) = (RawUa::bind(), RawUa::bind());

    // alice publishes her status.
    let open = pidf("open");
    let publish = |cseq: u32, call: &str, extra: &str, body: &str| {
        alice.send(
            px,
            request(
                &alice, px, "PUBLISH", "alice", "alice", call, cseq, None, extra, body,
            ),
        );
        answer(&alice)
    };
    let ok = publish(1, "pub-1", "Event: presence\r\nExpires: 600\r\n", &open);
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert_eq!(ok.header("expires"), Some("600"));
    let etag = ok.header("sip-etag").expect("SIP-ETag").to_string();

    // bob subscribes: 200, then the NOTIFY with alice's document.
    bob.send(
        px,
        request(
            &bob,
            px,
            "SUBSCRIBE",
            "bob",
            "alice",
            "sub-1",
            1,
            None,
            "Event: presence\r\nAccept: application/pidf+xml\r\nExpires: 600\r\n",
            "",
        ),
    );
    let ok = answer(&bob);
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert_eq!(ok.header("expires"), Some("600"));
    let contact = ok.header("contact").expect("a Contact").to_string();
    assert!(contact.ends_with(";transport=udp>"), "{contact}");
    let to_tag = tag_of(ok.header("to").unwrap());
    let n = notify(&bob);
    assert_eq!(
        n.request_uri(),
        Some(format!("sip:bob@{}", bob.addr()).as_str())
    );
    assert_eq!(n.header("call-id"), Some("sub-1"));
    assert_eq!(n.header("cseq"), Some("2 NOTIFY"));
    assert_eq!(tag_of(n.header("from").unwrap()), to_tag);
    assert_eq!(tag_of(n.header("to").unwrap()), "bob-tag");
    assert_eq!(n.header("event"), Some("presence"));
    assert_eq!(n.header("contact"), Some(contact.as_str()));
    let state = n.header("subscription-state").unwrap();
    assert!(
        state == "active;expires=600" || state == "active;expires=599",
        "{state}"
    );
    assert_eq!(n.header("content-type"), Some("application/pidf+xml"));
    assert_eq!(n.body(), open.as_bytes());

    // A second PUBLISH (a modification of the same publication) notifies bob.
    let closed = pidf("closed");
    let ok = publish(
        2,
        "pub-2",
        &format!("Event: presence\r\nSIP-If-Match: {etag}\r\nExpires: 600\r\n"),
        &closed,
    );
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let etag2 = ok.header("sip-etag").unwrap().to_string();
    assert_ne!(etag2, etag, "a new entity tag (RFC 3903 §4.1)");
    let n = notify(&bob);
    assert_eq!(n.header("cseq"), Some("3 NOTIFY"));
    assert_eq!(n.body(), closed.as_bytes());

    // The old tag is gone; an event nobody serves.
    let ok = publish(
        3,
        "pub-3",
        &format!("Event: presence\r\nSIP-If-Match: {etag}\r\nExpires: 600\r\n"),
        &open,
    );
    assert_eq!(ok.status(), Some(412), "{}", ok.text());
    let ok = publish(4, "pub-4", "Event: dialog\r\n", &open);
    assert_eq!(ok.status(), Some(489), "{}", ok.text());
    assert_eq!(
        ok.header("allow-events"),
        Some("xcap-diff, presence.winfo, presence")
    );

    // bob unsubscribes in the dialog: 200, and the last NOTIFY.
    bob.send(
        px,
        request(
            &bob,
            px,
            "SUBSCRIBE",
            "bob",
            "alice",
            "sub-1",
            2,
            Some(&to_tag),
            "Event: presence\r\nExpires: 0\r\n",
            "",
        ),
    );
    let ok = answer(&bob);
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert_eq!(ok.header("expires"), Some("0"));
    let n = notify(&bob);
    assert_eq!(n.header("cseq"), Some("4 NOTIFY"));
    assert_eq!(
        n.header("subscription-state"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(n.body(), closed.as_bytes());
    // A refresh of it now: no such subscription.
    bob.send(
        px,
        request(
            &bob,
            px,
            "SUBSCRIBE",
            "bob",
            "alice",
            "sub-1",
            3,
            Some(&to_tag),
            "Event: presence\r\nExpires: 60\r\n",
            "",
        ),
    );
    assert_eq!(answer(&bob).status(), Some(481));

    // The tables, once the proxy stopped: alice's document, bob allowed,
    // no subscription left.
    assert!(proxy.stop().success());
    let db = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(String, String, String, String)> = db
        .prepare("SELECT username, event, etag, CAST(body AS TEXT) FROM presentity")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        vec![("alice".into(), "presence".into(), etag2, closed.clone())]
    );
    let watchers: i64 = db
        .query_row("SELECT COUNT(*) FROM active_watchers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(watchers, 0);
    let allowed: (String, String, i64) = db
        .query_row(
            "SELECT presentity_uri, watcher_username, status FROM watchers",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(allowed, (format!("sip:alice@{}", px.ip()), "bob".into(), 1));
}

#[test]
fn stock_config_checks_with_presence() {
    let dir = tempfile::tempdir().unwrap();
    let db = kamailio_db(dir.path());
    let path = dir.path().join("presence.cfg");
    std::fs::write(&path, config(&db)).unwrap();
    let out = std::process::Command::new(common::ringsip_bin())
        .arg("check")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Publications and subscriptions are in the database: a restarted proxy
/// (same address, same database) still has alice's document for a new
/// watcher, and still notifies the watcher that subscribed before.
#[test]
fn stock_config_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = kamailio_db(dir.path());
    let addr = common::free_udp_addr();
    let start = || Proxy::builder(&config(&db)).listen(addr).start();
    let (alice, bob, carol) = (RawUa::bind(), RawUa::bind(), RawUa::bind());
    let proxy = start();
    let px = proxy.addr();
    let open = pidf("open");
    alice.send(
        px,
        request(
            &alice,
            px,
            "PUBLISH",
            "alice",
            "alice",
            "r-pub-1",
            1,
            None,
            "Event: presence\r\nExpires: 600\r\n",
            &open,
        ),
    );
    let ok = answer(&alice);
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let etag = ok.header("sip-etag").unwrap().to_string();
    bob.send(
        px,
        request(
            &bob,
            px,
            "SUBSCRIBE",
            "bob",
            "alice",
            "r-sub-1",
            1,
            None,
            "Event: presence\r\nExpires: 600\r\n",
            "",
        ),
    );
    assert_eq!(answer(&bob).status(), Some(200));
    assert_eq!(notify(&bob).header("cseq"), Some("2 NOTIFY"));
    assert!(proxy.stop().success());

    let proxy = start();
    assert!(
        proxy
            .stderr()
            .contains("loaded 1 publications and 1 subscriptions"),
        "{}",
        proxy.stderr()
    );
    // A new watcher gets the document published before the restart.
    carol.send(
        px,
        request(
            &carol,
            px,
            "SUBSCRIBE",
            "carol",
            "alice",
            "r-sub-2",
            1,
            None,
            "Event: presence\r\nExpires: 60\r\n",
            "",
        ),
    );
    assert_eq!(answer(&carol).status(), Some(200));
    assert_eq!(notify(&carol).body(), open.as_bytes());
    // alice's publication is still hers to change; bob hears of it.
    let closed = pidf("closed");
    alice.send(
        px,
        request(
            &alice,
            px,
            "PUBLISH",
            "alice",
            "alice",
            "r-pub-2",
            1,
            None,
            &format!("Event: presence\r\nSIP-If-Match: {etag}\r\nExpires: 600\r\n"),
            &closed,
        ),
    );
    assert_eq!(answer(&alice).status(), Some(200));
    let n = notify(&bob);
    assert_eq!(n.header("call-id"), Some("r-sub-1"));
    assert_eq!(n.header("cseq"), Some("3 NOTIFY"));
    assert_eq!(n.body(), closed.as_bytes());
    assert_eq!(notify(&carol).body(), closed.as_bytes());
}

/// `ringsip ctl -s unix:SOCK ARGS…` exits 0.
fn ctl(sock: &Path, args: &[&str]) {
    let out = std::process::Command::new(common::ringsip_bin())
        .arg("ctl")
        .arg("-s")
        .arg(format!("unix:{}", sock.display()))
        .args(args)
        .output()
        .expect("run ringsip ctl");
    assert!(
        out.status.success(),
        "ringsip ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The expiry round (forced by `presence.cleanup`) tells the watcher that
/// the publication lapsed (a NOTIFY without document), then ends a lapsed
/// subscription (terminated); `presence.refreshWatchers` sends the current
/// state again.
#[test]
fn stock_config_lapsed_state_and_control_methods() {
    let dir = tempfile::tempdir().unwrap();
    let db = kamailio_db(dir.path());
    let sock = dir.path().join("presence.ctl");
    let proxy = Proxy::builder(&config(&db))
        .arg("--ctl")
        .arg(sock.display().to_string())
        .start();
    let px = proxy.addr();
    let (alice, bob) = (RawUa::bind(), RawUa::bind());
    let open = pidf("open");
    alice.send(
        px,
        request(
            &alice,
            px,
            "PUBLISH",
            "alice",
            "alice",
            "l-pub",
            1,
            None,
            "Event: presence\r\nExpires: 2\r\n",
            &open,
        ),
    );
    assert_eq!(answer(&alice).status(), Some(200));
    bob.send(
        px,
        request(
            &bob,
            px,
            "SUBSCRIBE",
            "bob",
            "alice",
            "l-sub",
            1,
            None,
            "Event: presence\r\nExpires: 6\r\n",
            "",
        ),
    );
    assert_eq!(answer(&bob).status(), Some(200));
    assert_eq!(notify(&bob).body(), open.as_bytes());
    ctl(
        &sock,
        &[
            "presence.refreshWatchers",
            &format!("sip:alice@{}", px.ip()),
            "presence",
            "1",
        ],
    );
    let n = notify(&bob);
    assert_eq!(n.header("cseq"), Some("3 NOTIFY"));
    assert_eq!(n.body(), open.as_bytes());

    std::thread::sleep(Duration::from_millis(2100));
    ctl(&sock, &["presence.cleanup"]);
    let n = notify(&bob);
    assert_eq!(n.header("cseq"), Some("4 NOTIFY"));
    assert!(n.body().is_empty(), "{}", n.text());
    assert!(n
        .header("subscription-state")
        .unwrap()
        .starts_with("active;expires="));

    std::thread::sleep(Duration::from_millis(4000));
    ctl(&sock, &["presence.cleanup"]);
    let n = notify(&bob);
    assert_eq!(n.header("cseq"), Some("5 NOTIFY"));
    assert_eq!(
        n.header("subscription-state"),
        Some("terminated;reason=timeout")
    );
}
