//! topos's rewriting against what Kamailio 5.6.3 did with the same call
//! (caller 127.0.0.1:5071, callee 127.0.0.1:5072, proxy 127.0.0.1:5060
//! with `record_route()` and `t_relay()`): each message below is what
//! Kamailio's core would have sent or received without topos, and the
//! expected text is what the other side got through Kamailio's topos
//! (branches and uids are ringsip's own).

use bytes::Bytes;

use super::msg::{Io, Topos};
use super::record::{Change, Tables};
use super::storage;

const NOW: i64 = 1_796_355_501;

struct World {
    topos: Topos,
    tables: Tables,
    counter: u64,
    changes: Vec<Change>,
    unix: i64,
}

impl World {
    fn new() -> World {
        World {
            topos: Topos {
                process: 0x7ae1,
                ..Topos::default()
            },
            tables: Tables::default(),
            counter: 0,
            changes: Vec::new(),
            unix: NOW,
        }
    }

    fn io(&mut self) -> (Io<'_>, &Topos) {
        (
            Io {
                tables: &mut self.tables,
                unix: self.unix,
                counter: &mut self.counter,
                changes: &mut self.changes,
            },
            &self.topos,
        )
    }

    fn out(&mut self, text: &str) -> Option<String> {
        let (mut io, t) = self.io();
        t.outgoing(&mut io, &Bytes::from(crlf(text)))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    fn inc(&mut self, text: &str) -> Option<String> {
        let (mut io, t) = self.io();
        t.incoming(&mut io, &Bytes::from(crlf(text)))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

/// The test texts are written with `\n`; SIP wants CRLF.
fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

const UID: &str = "tpsh-6b1235ad-7ae1-1";

/// The INVITE as the proxy forwards it, before topos.
const INVITE_OUT: &str = "INVITE sip:bob@127.0.0.1:5072 SIP/2.0
Record-Route: <sip:127.0.0.1;lr;ftag=atag1>
Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp1
Via: SIP/2.0/UDP 127.0.0.1:5071;received=127.0.0.1;branch=z9hG4bK-ua1;rport=5071
Max-Forwards: 69
From: <sip:alice@127.0.0.1>;tag=atag1
To: <sip:bob@127.0.0.1:5072>
Call-ID: call-1234@127.0.0.1
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.1:5071>
Content-Length: 0

";

/// What the callee got through Kamailio's topos.
const INVITE_AT_CALLEE: &str = "INVITE sip:bob@127.0.0.1:5072 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp1
Max-Forwards: 69
From: <sip:alice@127.0.0.1>;tag=atag1
To: <sip:bob@127.0.0.1:5072>
Call-ID: call-1234@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0
Contact: <sip:btpsh-6b1235ad-7ae1-1@127.0.0.1>

";

const OK_FROM_CALLEE: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp1
From: <sip:alice@127.0.0.1>;tag=atag1
To: <sip:bob@127.0.0.1:5072>;tag=btag1
Call-ID: call-1234@127.0.0.1
CSeq: 1 INVITE
Contact: <sip:bob@127.0.0.1:5072>
Content-Length: 0

";

/// tm's copy of a reply, going upstream: the top Via gone.
fn relayed(reply: &str) -> String {
    let mut lines: Vec<&str> = reply.split('\n').collect();
    let i = lines.iter().position(|l| l.starts_with("Via:")).unwrap();
    lines.remove(i);
    lines.join("\n")
}

/// The proxy's own Via put on top of a request, and the first Route
/// (its own) taken off, as loose_route() and t_relay() do.
fn forwarded(req: &str, branch: &str) -> String {
    let mut lines: Vec<String> = req.split('\n').map(str::to_string).collect();
    if let Some(i) = lines
        .iter()
        .position(|l| l.starts_with("Route: <sip:127.0.0.1;lr"))
    {
        lines.remove(i);
    }
    lines.insert(1, format!("Via: SIP/2.0/UDP 127.0.0.1;branch={branch}"));
    lines.join("\n")
}

fn call_set_up(w: &mut World) {
    assert_eq!(w.out(INVITE_OUT).unwrap(), crlf(INVITE_AT_CALLEE));
    let inside = w.inc(OK_FROM_CALLEE).expect("a reply of ours");
    let to_caller = w.out(&relayed(&inside.replace("\r\n", "\n"))).unwrap();
    assert_eq!(
        to_caller,
        crlf(
            "SIP/2.0 200 OK
From: <sip:alice@127.0.0.1>;tag=atag1
To: <sip:bob@127.0.0.1:5072>;tag=btag1
Call-ID: call-1234@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0
Via: SIP/2.0/UDP 127.0.0.1:5071;received=127.0.0.1;branch=z9hG4bK-ua1;rport=5071
Contact: <sip:atpsh-6b1235ad-7ae1-1@127.0.0.1>

"
        )
    );
}

#[test]
fn initial_invite_shows_the_callee_only_the_proxy() {
    let mut w = World::new();
    assert_eq!(w.out(INVITE_OUT).unwrap(), crlf(INVITE_AT_CALLEE));
    let d = &w.tables.dialogs[UID];
    assert_eq!(d.a_contact, b"sip:alice@127.0.0.1:5071");
    assert_eq!(d.s_rr, b"<sip:127.0.0.1;lr;ftag=atag1>");
    assert_eq!(d.as_contact, b"<sip:atpsh-6b1235ad-7ae1-1@127.0.0.1>");
    let b = &w.tables.branches[&b"z9hG4bKp1"[..]];
    assert_eq!(
        b.x_via,
        b"SIP/2.0/UDP 127.0.0.1:5071;received=127.0.0.1;branch=z9hG4bK-ua1;rport=5071"
    );
    assert!(matches!(w.changes[0], Change::InsertDialog(_)));
    assert!(matches!(w.changes[1], Change::InsertBranch(_)));
    // A retransmission finds its branch: no new records, same message.
    assert_eq!(w.out(INVITE_OUT).unwrap(), crlf(INVITE_AT_CALLEE));
    assert_eq!(w.changes.len(), 2);
    assert_eq!(w.tables.dialogs.len(), 1);
}

#[test]
fn replies_give_the_caller_its_vias_back_and_the_proxy_as_contact() {
    let mut w = World::new();
    call_set_up(&mut w);
    let d = &w.tables.dialogs[UID];
    assert_eq!(d.b_contact, b"sip:bob@127.0.0.1:5072");
    assert_eq!(d.b_tag, b"btag1");
    assert_eq!(d.iflags, 1);
}

#[test]
fn reply_in_carries_the_records_through_the_script() {
    let mut w = World::new();
    w.out(INVITE_OUT).unwrap();
    let inside = w.inc(OK_FROM_CALLEE).unwrap();
    assert!(inside.ends_with(
        "Content-Length: 0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5071;received=127.0.0.1;branch=z9hG4bK-ua1;rport=5071\r\n\
         Record-Route: <sip:127.0.0.1;lr;ftag=atag1>\r\n\
         P-SR-XBranch: z9hG4bKp1\r\n\r\n"
    ));
    // A reply whose branch is not ours is left alone.
    assert_eq!(
        w.inc(&OK_FROM_CALLEE.replace("z9hG4bKp1", "z9hG4bKother")),
        None
    );
}

/// Kamailio 5.6.3 with a fresh database: the callee side's Record-Route
/// is kept from its 200 and followed by in-dialog requests towards it.
#[test]
fn callee_side_record_route_is_followed_but_not_shown() {
    let mut w = World::new();
    w.out(INVITE_OUT).unwrap();
    let with_rr = OK_FROM_CALLEE.replace("Contact:", "Record-Route: <sip:10.9.9.9;lr>\nContact:");
    let inside = w.inc(&with_rr).unwrap();
    let to_caller = w.out(&relayed(&inside.replace("\r\n", "\n"))).unwrap();
    assert!(!to_caller.contains("Record-Route"), "{to_caller}");
    assert_eq!(w.tables.dialogs[UID].b_rr, b"<sip:10.9.9.9;lr>");
    let ack = "ACK sip:atpsh-6b1235ad-7ae1-1@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-ua2;rport
From: <sip:alice@127.0.0.1>;tag=atag1
To: <sip:bob@127.0.0.1:5072>;tag=btag1
Call-ID: call-1234@127.0.0.1
CSeq: 1 ACK
Content-Length: 0

";
    let inside = w.inc(ack).unwrap();
    assert!(
        inside.ends_with(
            "Route: <sip:127.0.0.1;lr;ftag=atag1>\r\nRoute: <sip:10.9.9.9;lr>\r\n\
             P-SR-XUID: atpsh-6b1235ad-7ae1-1\r\n\r\n"
        ),
        "{inside}"
    );
}

const REINVITE_FROM_CALLEE: &str = "INVITE sip:btpsh-6b1235ad-7ae1-1@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bK-ua3;rport
Max-Forwards: 70
From: <sip:bob@127.0.0.1:5072>;tag=btag1
To: <sip:alice@127.0.0.1>;tag=atag1
Call-ID: call-1234@127.0.0.1
CSeq: 10 INVITE
Contact: <sip:bob@127.0.0.1:5072>
Content-Length: 0

";

#[test]
fn in_dialog_request_from_the_callee_goes_to_the_callers_contact() {
    let mut w = World::new();
    call_set_up(&mut w);
    let inside = w.inc(REINVITE_FROM_CALLEE).unwrap();
    assert_eq!(
        inside,
        crlf(
            "INVITE sip:alice@127.0.0.1:5071 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bK-ua3;rport
Max-Forwards: 70
From: <sip:bob@127.0.0.1:5072>;tag=btag1
To: <sip:alice@127.0.0.1>;tag=atag1
Call-ID: call-1234@127.0.0.1
CSeq: 10 INVITE
Contact: <sip:bob@127.0.0.1:5072>
Content-Length: 0
Route: <sip:127.0.0.1;lr;ftag=atag1>
P-SR-XUID: atpsh-6b1235ad-7ae1-1

"
        )
    );
    let sent = w
        .out(&forwarded(&inside.replace("\r\n", "\n"), "z9hG4bKp2"))
        .unwrap();
    assert_eq!(
        sent,
        crlf(
            "INVITE sip:alice@127.0.0.1:5071 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp2
Max-Forwards: 70
From: <sip:bob@127.0.0.1:5072>;tag=btag1
To: <sip:alice@127.0.0.1>;tag=atag1
Call-ID: call-1234@127.0.0.1
CSeq: 10 INVITE
Content-Length: 0
Contact: <sip:atpsh-6b1235ad-7ae1-1@127.0.0.1>

"
        )
    );
    // The caller's answer goes back to the callee with its Via and the
    // proxy's callee-side Contact.
    let ok = "SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp2
From: <sip:bob@127.0.0.1:5072>;tag=btag1
To: <sip:alice@127.0.0.1>;tag=atag1
Call-ID: call-1234@127.0.0.1
CSeq: 10 INVITE
Contact: <sip:alice@127.0.0.1:5071>
Content-Length: 0

";
    let inside = w.inc(ok).unwrap();
    let back = w.out(&relayed(&inside.replace("\r\n", "\n"))).unwrap();
    // (The request here went out with the callee's Via as it came in.)
    assert!(back.contains("Via: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bK-ua3;rport\r\n"));
    assert!(
        back.ends_with("Contact: <sip:btpsh-6b1235ad-7ae1-1@127.0.0.1>\r\n\r\n"),
        "{back}"
    );
}

#[test]
fn in_dialog_request_from_the_caller_goes_to_the_callees_contact() {
    let mut w = World::new();
    call_set_up(&mut w);
    let info = "INFO sip:atpsh-6b1235ad-7ae1-1@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-ua5;rport
From: <sip:alice@127.0.0.1>;tag=atag1
To: <sip:bob@127.0.0.1:5072>;tag=btag1
Call-ID: call-1234@127.0.0.1
CSeq: 2 INFO
Contact: <sip:alice@127.0.0.1:5071>
Content-Length: 0

";
    let inside = w.inc(info).unwrap();
    assert!(inside.starts_with("INFO sip:bob@127.0.0.1:5072 SIP/2.0\r\n"));
    let sent = w
        .out(&forwarded(&inside.replace("\r\n", "\n"), "z9hG4bKp3"))
        .unwrap();
    assert!(sent.ends_with("Contact: <sip:btpsh-6b1235ad-7ae1-1@127.0.0.1>\r\n\r\n"));
    assert!(!sent.contains("5071"), "{sent}");
    assert!(!sent.contains("P-SR-XUID"), "{sent}");
}

#[test]
fn bye_carries_no_contact_and_ends_the_dialog() {
    let mut w = World::new();
    call_set_up(&mut w);
    w.unix += 30;
    let bye = REINVITE_FROM_CALLEE
        .replace("INVITE", "BYE")
        .replace("CSeq: 10", "CSeq: 11");
    let inside = w.inc(&bye).unwrap();
    let sent = w
        .out(&forwarded(&inside.replace("\r\n", "\n"), "z9hG4bKp4"))
        .unwrap();
    assert!(!sent.contains("Contact"), "{sent}");
    let d = &w.tables.dialogs[UID];
    assert_eq!((d.iflags, d.rectime), (0, NOW + 30));
    // Cleaned once branch_expire has passed.
    w.tables
        .clean(NOW + 100 - 10800, NOW + 100 - 180, NOW + 100 - 180);
    assert_eq!(w.tables.dialogs.len(), 1);
    w.tables
        .clean(NOW + 300 - 10800, NOW + 300 - 180, NOW + 300 - 180);
    assert!(w.tables.dialogs.is_empty());
    assert!(w.tables.branches.is_empty());
}

#[test]
fn confirmed_dialogs_last_dialog_expire() {
    let mut w = World::new();
    call_set_up(&mut w);
    let t = NOW + 1000;
    w.tables.clean(t - 10800, t - 180, t - 180);
    assert_eq!(w.tables.dialogs.len(), 1);
    let t = NOW + 10800;
    w.tables.clean(t - 10800, t - 180, t - 180);
    assert!(w.tables.dialogs.is_empty());
}

#[test]
fn unknown_or_foreign_in_dialog_requests_pass_unchanged() {
    let mut w = World::new();
    call_set_up(&mut w);
    let unknown = REINVITE_FROM_CALLEE.replace(UID, "tpsh-0-0-99");
    assert_eq!(w.inc(&unknown), None);
    let foreign = REINVITE_FROM_CALLEE.replace("btpsh-6b1235ad-7ae1-1", "bob");
    assert_eq!(w.inc(&foreign), None);
    // Sent without the dialog's header: left as it is, but for ACK and CANCEL.
    assert_eq!(w.out(&forwarded(&unknown, "z9hG4bKp9")), None);
    let ack = forwarded(&unknown.replace("INVITE", "ACK"), "z9hG4bKp9");
    let sent = w.out(&ack).unwrap();
    assert!(
        !sent.contains("Contact") && !sent.contains("5072;branch"),
        "{sent}"
    );
}

#[test]
fn tms_own_ack_and_cancel_on_a_recorded_branch_are_sent_as_built() {
    let mut w = World::new();
    w.out(INVITE_OUT).unwrap();
    let cancel = "CANCEL sip:bob@127.0.0.1:5072 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKp1
From: <sip:alice@127.0.0.1>;tag=atag1
To: <sip:bob@127.0.0.1:5072>
Call-ID: call-1234@127.0.0.1
CSeq: 1 CANCEL
Content-Length: 0

";
    assert_eq!(w.out(cancel), None);
    assert_eq!(w.out(&cancel.replace("CANCEL", "ACK")), None);
}

#[test]
fn register_is_not_touched() {
    let mut w = World::new();
    let reg = INVITE_OUT.replace("INVITE", "REGISTER");
    assert_eq!(w.out(&reg), None);
    assert!(w.tables.dialogs.is_empty());
}

#[test]
fn without_record_route_no_contact_is_shown() {
    let mut w = World::new();
    let no_rr = INVITE_OUT.replace("Record-Route: <sip:127.0.0.1;lr;ftag=atag1>\n", "");
    let sent = w.out(&no_rr).unwrap();
    assert!(!sent.contains("Contact"), "{sent}");
}

#[test]
fn contact_host_port_and_transport() {
    let mut w = World::new();
    w.topos.contact_host = Some(b"proxy.example.net".to_vec());
    let rr = INVITE_OUT.replace(
        "<sip:127.0.0.1;lr;ftag=atag1>",
        "<sip:127.0.0.1:5090;transport=tcp;lr>",
    );
    let sent = w.out(&rr).unwrap();
    assert!(
        sent.contains(
            "Contact: <sip:btpsh-6b1235ad-7ae1-1@proxy.example.net:5090;transport=tcp>\r\n"
        ),
        "{sent}"
    );
}

#[test]
fn double_record_route_shows_each_side_its_own_address() {
    let mut w = World::new();
    let r2 = INVITE_OUT.replace(
        "Record-Route: <sip:127.0.0.1;lr;ftag=atag1>",
        "Record-Route: <sip:127.0.0.2;r2=on;lr>\nRecord-Route: <sip:127.0.0.1;r2=on;lr>",
    );
    let sent = w.out(&r2).unwrap();
    assert!(
        sent.contains("Contact: <sip:btpsh-6b1235ad-7ae1-1@127.0.0.2>"),
        "{sent}"
    );
    let d = &w.tables.dialogs[UID];
    assert_eq!(d.as_contact, b"<sip:atpsh-6b1235ad-7ae1-1@127.0.0.1>");
    assert_eq!(d.s_rr, b"<sip:127.0.0.2;r2=on;lr>,<sip:127.0.0.1;r2=on;lr>");
    assert!(d.a_rr.is_empty());
}

#[test]
fn statements_name_the_rows_by_uuid_and_time() {
    let mut w = World::new();
    call_set_up(&mut w);
    let d = w.tables.dialogs[UID].clone();
    let stmts = storage::statements(&Change::UpdateDialog(d.clone()));
    assert_eq!(stmts.len(), 1);
    assert!(stmts[0].starts_with("UPDATE topos_d SET rectime = '2026-12-04 03:38:21'"));
    assert!(stmts[0].ends_with("WHERE a_uuid = 'atpsh-6b1235ad-7ae1-1'"));
    let clean = storage::statements(&Change::Clean {
        dialogs_before: 0,
        unconfirmed_before: 0,
        branches_before: 0,
    });
    assert_eq!(clean.len(), 3);
}

#[test]
fn rows_load_back_including_kamailios_julian_day_times() {
    use crate::store::{SqlRows, SqlValue};
    let s = |v: &str| SqlValue::Str(v.as_bytes().to_vec());
    let dialogs = SqlRows {
        rows: vec![vec![
            s("atpsh-6b1235ad-7ae1-1"),
            // db_sqlite of Kamailio 5.6 writes DATETIME as a julian day.
            SqlValue::Double(2461378.65164931),
            s("call-1234@127.0.0.1"),
            s("sip:alice@127.0.0.1:5071"),
            s("sip:bob@127.0.0.1:5072"),
            s("<sip:atpsh-6b1235ad-7ae1-1@127.0.0.1>"),
            s("<sip:btpsh-6b1235ad-7ae1-1@127.0.0.1>"),
            s("atag1"),
            s("btag1"),
            SqlValue::Null,
            SqlValue::Null,
            s("<sip:127.0.0.1;lr;ftag=atag1>"),
            SqlValue::Int(1),
            s(""),
            s("INVITE"),
            s("1"),
        ]],
        ..SqlRows::default()
    };
    let mut t = Tables::default();
    storage::load(&mut t, &dialogs, &SqlRows::default());
    let d = &t.dialogs[UID];
    // Two seconds after the INVITE of that capture, to the nearest second.
    assert_eq!(d.rectime, NOW + 2);
    assert_eq!(d.b_contact, b"sip:bob@127.0.0.1:5072");
    assert_eq!(d.iflags, 1);
    // And ringsip's own text form.
    let mut rows = dialogs.clone();
    rows.rows[0][1] = s("2026-12-04 03:38:21");
    let mut t = Tables::default();
    storage::load(&mut t, &rows, &SqlRows::default());
    assert_eq!(t.dialogs[UID].rectime, NOW);
}
