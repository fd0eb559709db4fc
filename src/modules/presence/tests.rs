//! Unit tests of the presence server's decisions (ETags, expiry, NOTIFY
//! contents) on plain values and virtual unix time.

use bytes::Bytes;

use super::notify::NotifyJob;
use super::pidf;
use super::state::*;
use super::PresenceConfig;
use crate::script::registry::{ModParams, ParamValue};

const T0: i64 = 1_800_000_000;

fn doc(status: &str) -> Bytes {
    Bytes::from(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         entity=\"sip:alice@example.org\">\n  <tuple id=\"t-{status}\">\n    <status><basic>{status}</basic></status>\n  \
         </tuple>\n</presence>\n"
    ))
}

fn server(cfg: PresenceConfig) -> Presence {
    Presence::new(cfg, None, T0 - 100, 4242)
}

fn publish(
    p: &Presence,
    if_match: Option<&str>,
    expires: Option<u32>,
    body: Bytes,
    now: i64,
) -> PublishOutcome {
    p.publish(PublishReq {
        user: "alice".into(),
        domain: "example.org".into(),
        event: Event::Presence,
        if_match: if_match.map(String::from),
        expires,
        body,
        sender: String::new(),
        now,
    })
}

fn ok(o: PublishOutcome) -> (u32, String, Vec<NotifyJob>) {
    match o {
        PublishOutcome::Ok {
            expires,
            etag,
            notify,
        } => (expires, etag, notify),
        other => panic!("not 200: {other:?}"),
    }
}

fn subscribe_req(in_dialog: bool, cseq: u32, expires: Option<u32>, now: i64) -> SubscribeReq {
    SubscribeReq {
        event: Event::Presence,
        event_id: None,
        expires,
        pres_uri: if in_dialog {
            String::new()
        } else {
            "sip:alice@example.org".into()
        },
        to_user: "alice".into(),
        to_domain: "example.org".into(),
        from_user: "bob".into(),
        from_domain: "example.org".into(),
        watcher_user: "bob".into(),
        watcher_domain: "example.org".into(),
        to_tag: "srv-tag".into(),
        in_dialog,
        callid: "call-1".into(),
        from_tag: "bob-tag".into(),
        remote_cseq: cseq,
        contact: "sip:bob@192.0.2.7:5062".into(),
        record_route: String::new(),
        socket: "udp:192.0.2.1:5060".into(),
        local_contact: "sip:192.0.2.1:5060;transport=udp".into(),
        user_agent: String::new(),
        now,
    }
}

fn sub_ok(o: SubscribeOutcome) -> (u32, NotifyJob) {
    match o {
        SubscribeOutcome::Ok {
            expires, notify, ..
        } => (expires, *notify),
        other => panic!("not 200: {other:?}"),
    }
}

fn key() -> DialogKey {
    ("call-1".into(), "srv-tag".into(), "bob-tag".into())
}

#[test]
fn events_are_told_by_name_without_case_or_parameters() {
    assert_eq!(Event::parse(b"presence"), Some(Event::Presence));
    assert_eq!(Event::parse(b" Presence "), Some(Event::Presence));
    assert_eq!(Event::parse(b"presence;id=7"), None, "Kamailio: 489");
    assert_eq!(Event::parse(b"presence.winfo"), Some(Event::PresenceWinfo));
    assert_eq!(Event::parse(b"dialog"), None);
    assert_eq!(Event::parse(b""), None);
}

#[test]
fn expires_defaults_and_is_cut_to_max() {
    let mut mp = ModParams::default();
    mp.push("presence", "max_expires", ParamValue::Int(1800));
    let p = server(PresenceConfig::from_modparams(&mp).unwrap());
    assert_eq!(p.expires(None), 1800, "the event's 3600, cut");
    assert_eq!(p.expires(Some(60)), 60);
    assert_eq!(p.expires(Some(7200)), 1800);
    assert_eq!(p.expires(Some(0)), 0);
    let d = server(PresenceConfig::default());
    assert_eq!(d.expires(None), 3600);
    assert_eq!(d.expires(Some(u32::MAX)), 3600);
}

#[test]
fn config_refuses_bad_values() {
    let mut mp = ModParams::default();
    mp.push(
        "presence",
        "presentity_table",
        ParamValue::Str("bad name;".into()),
    );
    assert!(PresenceConfig::from_modparams(&mp)
        .unwrap_err()
        .contains("presentity_table"));
    let mut mp = ModParams::default();
    mp.push("presence", "max_expires", ParamValue::Int(-1));
    assert!(PresenceConfig::from_modparams(&mp)
        .unwrap_err()
        .contains("max_expires"));
    let mut mp = ModParams::default();
    mp.push("presence", "min_expires_action", ParamValue::Int(3));
    assert!(PresenceConfig::from_modparams(&mp).is_err());
    let mut mp = ModParams::default();
    mp.push("presence_xml", "force_active", ParamValue::Int(1));
    mp.push(
        "presence",
        "server_address",
        ParamValue::Str("sip:10.0.0.1:5060".into()),
    );
    let c = PresenceConfig::from_modparams(&mp).unwrap();
    assert!(c.force_active);
    assert_eq!(c.server_address.as_deref(), Some("sip:10.0.0.1:5060"));
}

#[test]
fn initial_publish_needs_a_body_and_gets_an_etag() {
    let p = server(PresenceConfig::default());
    assert_eq!(
        publish(&p, None, Some(600), Bytes::new(), T0),
        PublishOutcome::Error(400, "Invalid request")
    );
    assert_eq!(
        publish(&p, None, Some(600), Bytes::from_static(b"not xml"), T0),
        PublishOutcome::Error(415, "Unsupported media type")
    );
    let (exp, etag, notify) = ok(publish(&p, None, Some(600), doc("open"), T0));
    assert_eq!(exp, 600);
    assert!(etag.starts_with(&format!("a.{}.4242.", T0 - 100)), "{etag}");
    assert!(notify.is_empty(), "nobody watches yet");
    assert_eq!(p.counts(), (1, 0));
    // Without Expires: the default, cut to max_expires.
    let (exp, etag2, _) = ok(publish(&p, None, None, doc("open"), T0));
    assert_eq!(exp, 3600);
    assert_ne!(etag, etag2);
    assert_eq!(p.counts(), (2, 0));
}

#[test]
fn refresh_changes_the_etag_and_unknown_or_lapsed_etags_fail() {
    let p = server(PresenceConfig::default());
    let (_, etag, _) = ok(publish(&p, None, Some(60), doc("open"), T0));
    assert_eq!(
        publish(&p, Some("a.1.2.3.4"), Some(60), Bytes::new(), T0 + 1),
        PublishOutcome::Error(412, "Conditional request failed")
    );
    // A refresh without a body keeps the document, with a new ETag (RFC 3903 §4.1).
    let (exp, etag2, _) = ok(publish(&p, Some(&etag), Some(120), Bytes::new(), T0 + 10));
    assert_eq!(exp, 120);
    assert_ne!(etag2, etag);
    assert_eq!(
        publish(&p, Some(&etag), Some(60), Bytes::new(), T0 + 11),
        PublishOutcome::Error(412, "Conditional request failed"),
        "the old ETag is gone"
    );
    // Past its expiry the publication cannot be refreshed.
    assert_eq!(
        publish(&p, Some(&etag2), Some(60), Bytes::new(), T0 + 10 + 120),
        PublishOutcome::Error(412, "Conditional request failed")
    );
}

#[test]
fn removal_answers_with_the_etag_and_expires_zero() {
    let p = server(PresenceConfig::default());
    let (_, etag, _) = ok(publish(&p, None, Some(60), doc("open"), T0));
    let (exp, e, notify) = ok(publish(&p, Some(&etag), Some(0), Bytes::new(), T0 + 1));
    assert_eq!((exp, e.as_str()), (0, etag.as_str()));
    assert!(notify.is_empty());
    assert_eq!(p.counts(), (0, 0));
    // An initial PUBLISH with Expires 0 stores nothing.
    let (exp, _, _) = ok(publish(&p, None, Some(0), doc("open"), T0));
    assert_eq!(exp, 0);
    assert_eq!(p.counts(), (0, 0));
}

#[test]
fn subscribe_notifies_at_once_with_the_published_document() {
    let p = server(PresenceConfig::default());
    let (_, etag, _) = ok(publish(&p, None, Some(600), doc("open"), T0));
    let (exp, n) = sub_ok(p.subscribe(subscribe_req(false, 1, Some(600), T0)));
    assert_eq!(exp, 600);
    assert_eq!(n.cseq, 2, "Kamailio's first NOTIFY has CSeq 2");
    assert_eq!(n.state, "active;expires=600");
    assert_eq!(n.body.as_deref(), Some(doc("open").as_ref()));
    assert_eq!(n.watcher_uri, "sip:bob@example.org");
    assert_eq!(
        (n.from_tag.as_str(), n.to_tag.as_str()),
        ("bob-tag", "srv-tag")
    );
    assert_eq!(p.counts(), (1, 1));
    // A change of the presentity notifies, with the seconds left.
    let (_, _, notify) = ok(publish(&p, Some(&etag), Some(600), doc("closed"), T0 + 1));
    assert_eq!(notify.len(), 1);
    assert_eq!(notify[0].cseq, 3);
    assert_eq!(notify[0].state, "active;expires=599");
    assert_eq!(notify[0].body.as_deref(), Some(doc("closed").as_ref()));
}

#[test]
fn subscribe_without_publication_has_no_body() {
    let p = server(PresenceConfig::default());
    let (exp, n) = sub_ok(p.subscribe(subscribe_req(false, 1, None, T0)));
    assert_eq!(exp, 3600);
    assert_eq!(n.body, None);
    let bytes = n.build(
        crate::sip::Proto::Udp,
        b"192.0.2.1",
        b"z9hG4bKx",
        crate::script::ctx::DEFAULT_USER_AGENT,
    );
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.contains("Content-Length: 0\r\n"), "{text}");
    assert!(!text.contains("Content-Type"), "{text}");
}

#[test]
fn refresh_and_unsubscribe_in_the_dialog() {
    let p = server(PresenceConfig::default());
    sub_ok(p.subscribe(subscribe_req(false, 1, Some(600), T0)));
    assert_eq!(
        p.subscribe(subscribe_req(true, 1, Some(600), T0 + 1)),
        SubscribeOutcome::Error(400, "Bad request"),
        "a CSeq not above the last one"
    );
    let (exp, n) = sub_ok(p.subscribe(subscribe_req(true, 2, Some(300), T0 + 5)));
    assert_eq!(exp, 300);
    assert_eq!((n.cseq, n.state.as_str()), (3, "active;expires=300"));
    assert_eq!(p.subscription(&key()).unwrap().remote_cseq, 2);
    let (exp, n) = sub_ok(p.subscribe(subscribe_req(true, 3, Some(0), T0 + 6)));
    assert_eq!(exp, 0);
    assert_eq!((n.cseq, n.state.as_str()), (4, "terminated;reason=timeout"));
    assert_eq!(p.counts(), (0, 0));
    assert_eq!(
        p.subscribe(subscribe_req(true, 4, Some(60), T0 + 7)),
        SubscribeOutcome::Error(481, "Subscription does not exist")
    );
}

#[test]
fn min_expires_answers_423_or_raises() {
    let mut mp = ModParams::default();
    mp.push("presence", "min_expires", ParamValue::Int(120));
    let p = server(PresenceConfig::from_modparams(&mp).unwrap());
    assert_eq!(
        p.subscribe(subscribe_req(false, 1, Some(60), T0)),
        SubscribeOutcome::TooBrief(120)
    );
    // Zero is an unsubscription, never too brief; this NOTIFY has CSeq 1.
    let (exp, n) = sub_ok(p.subscribe(subscribe_req(false, 1, Some(0), T0)));
    assert_eq!(
        (exp, n.state.as_str(), n.cseq),
        (0, "terminated;reason=timeout", 1)
    );
    assert_eq!(p.counts(), (0, 0));
    mp.push("presence", "min_expires_action", ParamValue::Int(2));
    let p = server(PresenceConfig::from_modparams(&mp).unwrap());
    let (exp, _) = sub_ok(p.subscribe(subscribe_req(false, 1, Some(60), T0)));
    assert_eq!(exp, 120);
}

#[test]
fn the_timer_forgets_lapsed_publications_and_subscriptions() {
    let p = server(PresenceConfig::default());
    ok(publish(&p, None, Some(30), doc("open"), T0));
    sub_ok(p.subscribe(subscribe_req(false, 1, Some(60), T0)));
    assert!(p.expire(T0 + 29).is_empty());
    // The publication lapses: the watcher gets a NOTIFY without a document.
    let jobs = p.expire(T0 + 30);
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].cseq, jobs[0].body.clone()), (3, None));
    assert_eq!(jobs[0].state, "active;expires=30");
    assert_eq!(p.counts(), (0, 1));
    // The subscription lapses: its last NOTIFY says so.
    let jobs = p.expire(T0 + 61);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, "terminated;reason=timeout");
    assert_eq!(p.counts(), (0, 0));
}

#[test]
fn subscription_state_values() {
    let p = server(PresenceConfig::default());
    sub_ok(p.subscribe(subscribe_req(false, 1, Some(100), T0)));
    let mut s = p.subscription(&key()).unwrap();
    assert_eq!(subscription_state(&s, T0 + 40), "active;expires=60");
    assert_eq!(
        subscription_state(&s, T0 + 100),
        "terminated;reason=timeout"
    );
    s.status = Status::Pending;
    assert_eq!(subscription_state(&s, T0), "pending;expires=100");
    s.status = Status::Terminated;
    s.reason = Some("rejected".into());
    assert_eq!(subscription_state(&s, T0), "terminated;reason=rejected");
}

#[test]
fn notify_is_written_as_kamailio_writes_it() {
    let p = server(PresenceConfig::default());
    ok(publish(&p, None, Some(600), doc("open"), T0));
    let mut req = subscribe_req(false, 1, Some(600), T0);
    req.record_route = "<sip:10.0.0.9;lr>,<sip:10.0.0.8;lr>".into();
    req.event_id = Some("42".into());
    let (_, n) = sub_ok(p.subscribe(req));
    assert_eq!(n.next_hop(), "sip:10.0.0.9;lr");
    let text = String::from_utf8(
        n.build(
            crate::sip::Proto::Udp,
            b"192.0.2.1",
            b"z9hG4bKabc",
            crate::script::ctx::DEFAULT_USER_AGENT,
        )
        .to_vec(),
    )
    .unwrap();
    let body = doc("open");
    let expected = format!(
        "NOTIFY sip:bob@192.0.2.7:5062 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc\r\n\
         To: <sip:bob@example.org>;tag=bob-tag\r\n\
         From: <sip:alice@example.org>;tag=srv-tag\r\n\
         CSeq: 2 NOTIFY\r\n\
         Call-ID: call-1\r\n\
         Route: <sip:10.0.0.9;lr>,<sip:10.0.0.8;lr>\r\n\
         Content-Length: {}\r\n\
         User-Agent: ringsip ({})\r\n\
         Max-Forwards: 70\r\n\
         Event: presence;id=42\r\n\
         Contact: <sip:192.0.2.1:5060;transport=udp>\r\n\
         Subscription-State: active;expires=600\r\n\
         Content-Type: application/pidf+xml\r\n\r\n{}",
        body.len(),
        env!("CARGO_PKG_VERSION"),
        String::from_utf8_lossy(&body)
    );
    assert_eq!(text, expected);
    let m = crate::sip::Message::parse(Bytes::from(text)).expect("a NOTIFY that parses");
    assert_eq!(m.body(), body.as_ref());
}

#[test]
fn one_document_goes_out_as_libxml_writes_it() {
    let d = doc("open");
    assert_eq!(pidf::aggregate(&[]), None);
    assert_eq!(pidf::aggregate(&[&d]).as_deref(), Some(d.as_ref()));
    // No declaration, no final line break: libxml2 writes both.
    let bare = b"<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple id='a'/></presence>";
    assert_eq!(
        pidf::aggregate(&[bare]).as_deref(),
        Some(&b"<?xml version=\"1.0\"?>\n<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple id='a'/></presence>\n"[..])
    );
}

/// The PIDF of the side-by-side cases (sidebyside.py `PIDF`).
fn sbs(id: &str, basic: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         entity=\"sip:alice@127.0.0.61\">\n  <tuple id=\"{id}\">\n    <status>\n      <basic>{basic}</basic>\n    \
         </status>\n  </tuple>\n</presence>\n"
    )
}

#[test]
fn two_publications_merge_as_kamailio_merged_them() {
    // Recorded from Kamailio 5.6.3 (presence_edges): t1 published first, t2 second.
    let older = sbs("t1", "open");
    let newer = sbs("t2", "closed");
    let merged = pidf::aggregate(&[older.as_bytes(), newer.as_bytes()]).unwrap();
    let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
                    entity=\"sip:alice@127.0.0.61\">\n  <tuple id=\"t2\">\n    <status>\n      <basic>closed</basic>\n    \
                    </status>\n  </tuple>\n\n  <tuple xmlns=\"urn:ietf:params:xml:ns:pidf\" id=\"t1\">\n    <status>\n      \
                    <basic>open</basic>\n    </status>\n  </tuple>\n</presence>\n";
    assert_eq!(String::from_utf8_lossy(&merged), expected);
    assert_eq!(merged.len(), 331, "Kamailio's Content-Length");
    assert_eq!(pidf::status_elements(&merged).len(), 2);
}

#[test]
fn an_older_document_with_a_tuple_id_already_there_is_left_out() {
    let older = sbs("t1", "open");
    let newer = sbs("t1", "closed");
    let merged = pidf::aggregate(&[older.as_bytes(), newer.as_bytes()]).unwrap();
    assert_eq!(merged.as_ref(), newer.as_bytes());
    // Three documents: the newest frames, the middle one comes first.
    let merged = pidf::aggregate(&[
        sbs("a", "open").as_bytes(),
        sbs("b", "open").as_bytes(),
        sbs("c", "open").as_bytes(),
    ])
    .unwrap();
    let text = String::from_utf8(merged.to_vec()).unwrap();
    let (a, b, c) = (
        text.find("id=\"a\"").unwrap(),
        text.find("id=\"b\"").unwrap(),
        text.find("id=\"c\"").unwrap(),
    );
    assert!(c < b && b < a, "{text}");
}

#[test]
fn copied_elements_declare_the_namespaces_they_use() {
    let newer = "<p:presence xmlns:p=\"urn:p\"><p:tuple id=\"a\"/></p:presence>";
    let older = "<p:presence xmlns:p=\"urn:p\" xmlns:r=\"urn:r\" xmlns:u=\"urn:unused\"> <p:tuple id=\"b\"><r:x/></p:tuple>\
                 <r:note xmlns:r=\"urn:own\">hi</r:note></p:presence>";
    let m = pidf::merge(newer.as_bytes(), &[older.as_bytes()]);
    assert_eq!(
        String::from_utf8(m).unwrap(),
        "<?xml version=\"1.0\"?>\n<p:presence xmlns:p=\"urn:p\"><p:tuple id=\"a\"/> <p:tuple xmlns:p=\"urn:p\" \
         xmlns:r=\"urn:r\" id=\"b\"><r:x/></p:tuple><r:note xmlns:r=\"urn:own\">hi</r:note></p:presence>\n"
    );
    // A document whose root cannot be found is left out.
    let m = pidf::merge(newer.as_bytes(), &[b"<x>"]);
    assert_eq!(
        String::from_utf8(m).unwrap(),
        "<?xml version=\"1.0\"?>\n<p:presence xmlns:p=\"urn:p\"><p:tuple id=\"a\"/></p:presence>\n"
    );
}

#[test]
fn sql_literals_double_quotes() {
    assert_eq!(super::db::sql_literal("o'hara", false), "'o''hara'");
    assert_eq!(super::db::sql_literal("a\\b", false), "'a\\b'");
    assert_eq!(super::db::sql_literal("a\\b", true), "'a\\\\b'");
    assert_eq!(super::db::sql_literal("nul\0", false), "'nul'");
    assert_eq!(super::db::blob_literal(b"<a'>", false), "X'3c61273e'");
    assert_eq!(super::db::blob_literal(b"<a>", true), "'\\x3c613e'::bytea");
}

fn winfo_req(callid: &str, cseq: u32, in_dialog: bool, expires: u32, now: i64) -> SubscribeReq {
    let mut r = subscribe_req(in_dialog, cseq, Some(expires), now);
    r.event = Event::PresenceWinfo;
    r.callid = callid.into();
    r.from_user = "alice".into();
    r.watcher_user = "alice".into();
    r.to_tag = "w-tag".into();
    r.from_tag = "alice-tag".into();
    r
}

fn watcher_req(
    callid: &str,
    user: &str,
    cseq: u32,
    in_dialog: bool,
    expires: u32,
    now: i64,
) -> SubscribeReq {
    let mut r = subscribe_req(in_dialog, cseq, Some(expires), now);
    r.callid = callid.into();
    r.watcher_user = user.into();
    r
}

fn others(o: SubscribeOutcome) -> (NotifyJob, Vec<NotifyJob>) {
    match o {
        SubscribeOutcome::Ok { notify, others, .. } => (*notify, others),
        other => panic!("not 200: {other:?}"),
    }
}

#[test]
fn watcherinfo_document_as_kamailio_writes_it() {
    // Recorded from Kamailio 5.6.3 (presence_winfo).
    let empty = super::notify::winfo_document("sip:alice@127.0.0.61", 1, true, &[]);
    assert_eq!(
        String::from_utf8_lossy(&empty),
        "<?xml version=\"1.0\"?>\n<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"1\" state=\"full\">\n  \
         <watcher-list resource=\"sip:alice@127.0.0.61\" package=\"presence\"/>\n</watcherinfo>\n"
    );
    let w = super::notify::WatcherLine {
        id: "w-3".into(),
        uri: "sip:bob@127.0.0.61".into(),
        status: "active",
    };
    let one = super::notify::winfo_document("sip:alice@127.0.0.61", 2, false, &[w]);
    assert_eq!(
        String::from_utf8_lossy(&one),
        "<?xml version=\"1.0\"?>\n<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" version=\"2\" state=\"partial\">\n  \
         <watcher-list resource=\"sip:alice@127.0.0.61\" package=\"presence\">\n    \
         <watcher id=\"w-3\" event=\"subscribe\" status=\"active\">sip:bob@127.0.0.61</watcher>\n  </watcher-list>\n</watcherinfo>\n"
    );
    assert_eq!(one.len(), 293, "Kamailio's Content-Length");
}

#[test]
fn watcherinfo_subscribers_hear_of_watchers_coming_and_going() {
    let p = server(PresenceConfig::default());
    sub_ok(p.subscribe(watcher_req("c-bob", "bob", 1, false, 600, T0)));
    let (n, rest) = others(p.subscribe(winfo_req("c-w", 1, false, 600, T0)));
    assert!(rest.is_empty());
    assert_eq!(n.event, "presence.winfo");
    assert_eq!(n.content_type, "application/watcherinfo+xml");
    let body = String::from_utf8(n.body.unwrap().to_vec()).unwrap();
    assert!(body.contains("version=\"1\" state=\"full\""), "{body}");
    assert!(body.contains("<watcher id=\"c-bob\" event=\"subscribe\" status=\"active\">sip:bob@example.org</watcher>"), "{body}");
    // carol comes: the new watcher alone.
    let (_, rest) = others(p.subscribe(watcher_req("c-carol", "carol", 1, false, 300, T0 + 1)));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].cseq, 3);
    let body = String::from_utf8(rest[0].body.clone().unwrap().to_vec()).unwrap();
    assert!(body.contains("version=\"2\" state=\"partial\""), "{body}");
    assert!(
        body.contains("sip:carol@example.org") && !body.contains("bob"),
        "{body}"
    );
    // A refresh of bob's says nothing to alice.
    let (_, rest) = others(p.subscribe(watcher_req("c-bob", "bob", 2, true, 600, T0 + 2)));
    assert!(rest.is_empty());
    // bob leaves: the whole list, carol only.
    let (n, rest) = others(p.subscribe(watcher_req("c-bob", "bob", 3, true, 0, T0 + 3)));
    assert_eq!(n.state, "terminated;reason=timeout");
    assert_eq!(rest.len(), 1);
    let body = String::from_utf8(rest[0].body.clone().unwrap().to_vec()).unwrap();
    assert!(body.contains("version=\"3\" state=\"full\""), "{body}");
    assert!(body.contains("carol") && !body.contains("bob"), "{body}");
    // carol's subscription runs out: the list is empty.
    let jobs = p.expire(T0 + 301);
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let winfo = jobs.iter().find(|j| j.event == "presence.winfo").unwrap();
    let body = String::from_utf8(winfo.body.clone().unwrap().to_vec()).unwrap();
    assert!(
        body.contains("version=\"4\" state=\"full\"") && body.contains("package=\"presence\"/>"),
        "{body}"
    );
    // alice ends hers: full state, terminated.
    let (n, _) = others(p.subscribe(winfo_req("c-w", 2, true, 0, T0 + 400)));
    assert_eq!((n.cseq, n.state.as_str()), (6, "terminated;reason=timeout"));
    assert_eq!(p.counts(), (0, 0));
}
