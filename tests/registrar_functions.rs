//! registrar functions and their return codes (KAMAILIO-REFERENCE §5.2, RFC
//! 3261 §10.3, RFC 3327), called as the script calls them, on REGISTER and
//! INVITE messages, with virtual time and no socket.

mod support;

use std::sync::Arc;

use ringsip::modules::registrar::{self, RegParams, Registrar};
use ringsip::modules::usrloc::{UlParams, Usrloc};
use ringsip::script::ctx::Shared;
use support::{Bench, Outcome};

const T0: u64 = 1_700_000_000_000;

fn bench_with(reg: RegParams, ul: UlParams) -> Bench {
    let mut shared = Shared::default();
    shared.insert(Arc::new(Usrloc::in_memory(ul)));
    shared.insert(Arc::new(Registrar { params: reg }));
    Bench::new(shared, T0)
}

fn bench() -> Bench {
    bench_with(RegParams::default(), UlParams::default())
}

/// A REGISTER for `user` with `extra` header lines (Contact, Expires…).
fn register(user: &str, callid: &str, cseq: u32, extra: &str) -> String {
    format!(
        "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-{callid}-{cseq}
From: <sip:{user}@example.com>;tag=f1
To: <sip:{user}@example.com>
Call-ID: {callid}
CSeq: {cseq} REGISTER
Max-Forwards: 70
{extra}
Content-Length: 0"
    )
}

fn invite(ruri: &str, extra: &str) -> String {
    format!(
        "INVITE {ruri} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-inv
From: <sip:bob@example.com>;tag=b1
To: <{ruri}>{extra}
Call-ID: inv-1
CSeq: 1 INVITE
Max-Forwards: 70
Content-Length: 0"
    )
}

fn save(b: &mut Bench, msg: &str) -> Outcome {
    b.call(&registrar::MODULE, "save", &["location"], msg)
}

fn lookup(b: &mut Bench, ruri: &str) -> Outcome {
    b.call(
        &registrar::MODULE,
        "lookup",
        &["location"],
        &invite(ruri, ""),
    )
}

#[test]
fn save_binds_and_replies_with_all_contacts() {
    let mut b = bench();
    let r = save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:alice@10.0.0.1:5060>;q=0.5\nExpires: 600",
        ),
    );
    assert_eq!(r.rc, 1);
    assert_eq!(r.status(), (200, "OK".into()));
    assert_eq!(
        r.header("Contact").unwrap(),
        "<sip:alice@10.0.0.1:5060>;q=0.5;expires=600"
    );
    // A second device: the 200 lists both, the first with the time left.
    b.advance(100);
    let r = save(
        &mut b,
        &register("alice", "c2", 1, "Contact: <sip:alice@10.0.0.2>"),
    );
    assert_eq!(r.rc, 1);
    let contact = r.header("Contact").unwrap();
    assert_eq!(
        contact,
        "<sip:alice@10.0.0.1:5060>;q=0.5;expires=500, <sip:alice@10.0.0.2>;expires=3600"
    );
}

#[test]
fn lookup_rewrites_the_request_uri_and_adds_branches() {
    let mut b = bench();
    save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:alice@10.0.0.1>;q=0.5, <sip:alice@10.0.0.2>;q=0.9",
        ),
    );
    let r = lookup(&mut b, "sip:alice@example.com");
    assert_eq!(r.rc, 1);
    assert_eq!(r.new_uri.as_deref(), Some(&b"sip:alice@10.0.0.2"[..]));
    assert_eq!(r.dst_uri, None);
    assert_eq!(r.branches.len(), 1);
    assert_eq!(&r.branches[0].uri[..], b"sip:alice@10.0.0.1");
    assert_eq!(r.branches[0].q, 500);
    // AoRs are case-insensitive by default.
    assert_eq!(lookup(&mut b, "sip:ALICE@example.com").rc, 1);
    assert_eq!(lookup(&mut b, "sip:carol@example.com").rc, -1);
    assert_eq!(lookup(&mut b, "sip:example.com").rc, -3, "no user");
    let r = b.call(
        &registrar::MODULE,
        "lookup",
        &["location", "not a uri"],
        &invite("sip:alice@example.com", ""),
    );
    assert_eq!(r.rc, -3);
}

#[test]
fn append_branches_off_keeps_only_the_best_contact() {
    let reg = RegParams {
        append_branches: false,
        ..RegParams::default()
    };
    let mut b = bench_with(reg, UlParams::default());
    save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:a@1.1.1.1>, <sip:a@2.2.2.2>",
        ),
    );
    let r = lookup(&mut b, "sip:alice@example.com");
    assert_eq!(r.rc, 1);
    assert!(r.branches.is_empty());
}

#[test]
fn contacts_expire_with_virtual_time() {
    let mut b = bench();
    save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:alice@10.0.0.1>;expires=120",
        ),
    );
    b.advance(119);
    assert_eq!(lookup(&mut b, "sip:alice@example.com").rc, 1);
    b.advance(1);
    assert_eq!(lookup(&mut b, "sip:alice@example.com").rc, -1);
    let reg = b.call(
        &registrar::MODULE,
        "registered",
        &["location"],
        &invite("sip:alice@example.com", ""),
    );
    assert_eq!(reg.rc, -1);
}

#[test]
fn expires_sources_and_limits() {
    let reg = RegParams {
        max_expires: 1000,
        min_expires: 60,
        default_expires: 500,
        ..RegParams::default()
    };
    let mut b = bench_with(reg, UlParams::default());
    // Contact param beats the Expires header; the header beats the default; max caps; min raises.
    let r = save(
        &mut b,
        &register(
            "u1",
            "c1",
            1,
            "Contact: <sip:u1@h>;expires=30\nExpires: 800",
        ),
    );
    assert_eq!(r.header("Contact").unwrap(), "<sip:u1@h>;expires=60");
    let r = save(
        &mut b,
        &register("u2", "c1", 1, "Contact: <sip:u2@h>\nExpires: 800"),
    );
    assert_eq!(r.header("Contact").unwrap(), "<sip:u2@h>;expires=800");
    let r = save(&mut b, &register("u3", "c1", 1, "Contact: <sip:u3@h>"));
    assert_eq!(r.header("Contact").unwrap(), "<sip:u3@h>;expires=500");
    let r = save(
        &mut b,
        &register("u4", "c1", 1, "Contact: <sip:u4@h>;expires=99999"),
    );
    assert_eq!(r.header("Contact").unwrap(), "<sip:u4@h>;expires=1000");
}

#[test]
fn min_expires_mode_1_answers_423() {
    let reg = RegParams {
        min_expires_mode: 1,
        ..RegParams::default()
    };
    let mut b = bench_with(reg, UlParams::default());
    let r = save(
        &mut b,
        &register("alice", "c1", 1, "Contact: <sip:alice@h>;expires=10"),
    );
    assert_eq!(r.rc, -1);
    assert_eq!(r.status(), (423, "Interval Too Brief".into()));
    assert_eq!(r.header("Min-Expires").as_deref(), Some("60"));
    assert!(r.header("P-Registrar-Error").is_some());
    assert_eq!(lookup(&mut b, "sip:alice@example.com").rc, -1);
}

#[test]
fn star_removes_all_and_needs_expires_zero() {
    let mut b = bench();
    save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:a@1.1.1.1>, <sip:a@2.2.2.2>",
        ),
    );
    let r = save(
        &mut b,
        &register("alice", "c1", 2, "Contact: *\nExpires: 5"),
    );
    assert_eq!(r.rc, -1);
    assert_eq!(r.status().0, 400);
    assert_eq!(
        r.header("P-Registrar-Error").as_deref(),
        Some("* used in contact and expires is not zero")
    );
    // Kamailio 5.6 reads a Contact value that starts with `*` as the star
    // and ignores the rest of it (sidebyside hunt_route_reg.cfg reg_star);
    // without an Expires header the star is refused for its expiry.
    let r = save(&mut b, &register("alice", "c1", 3, "Contact: *;expires=0"));
    assert_eq!(r.status().0, 400);
    assert_eq!(
        r.header("P-Registrar-Error").as_deref(),
        Some("* used in contact and expires is not zero")
    );
    let r = save(
        &mut b,
        &register(
            "alice",
            "c1",
            3,
            "Contact: <sip:a@3.3.3.3>\nContact: *\nExpires: 0",
        ),
    );
    assert_eq!(r.status().0, 400);
    assert_eq!(
        r.header("P-Registrar-Error").as_deref(),
        Some("* used in contact and more than 1 contact")
    );
    let r = save(
        &mut b,
        &register("alice", "c1", 4, "Contact: *, <sip:a@3.3.3.3>\nExpires: 0"),
    );
    assert_eq!(r.status().0, 200);
    assert_eq!(lookup(&mut b, "sip:alice@example.com").rc, -1);
    save(
        &mut b,
        &register("alice", "c1", 5, "Contact: <sip:a@1.1.1.1>"),
    );
    let r = save(
        &mut b,
        &register("alice", "c1", 6, "Contact: *\nExpires: 0"),
    );
    assert_eq!(r.rc, 3);
    assert_eq!(r.status().0, 200);
    assert_eq!(r.header("Contact"), None);
    assert_eq!(lookup(&mut b, "sip:alice@example.com").rc, -1);
}

#[test]
fn expires_zero_removes_one_binding() {
    let mut b = bench();
    save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:a@1.1.1.1>, <sip:a@2.2.2.2>",
        ),
    );
    let r = save(
        &mut b,
        &register("alice", "c1", 2, "Contact: <sip:a@1.1.1.1>;expires=0"),
    );
    assert_eq!(r.rc, 1, "one binding is left");
    assert_eq!(r.header("Contact").unwrap(), "<sip:a@2.2.2.2>;expires=3600");
    let r = save(
        &mut b,
        &register("alice", "c1", 3, "Contact: <sip:a@2.2.2.2>\nExpires: 0"),
    );
    assert_eq!(r.rc, 3);
}

#[test]
fn query_lists_bindings_and_returns_4() {
    let mut b = bench();
    save(
        &mut b,
        &register("alice", "c1", 1, "Contact: <sip:a@1.1.1.1>"),
    );
    let r = save(&mut b, &register("alice", "c9", 1, ""));
    assert_eq!(r.rc, 4);
    assert_eq!(r.header("Contact").unwrap(), "<sip:a@1.1.1.1>;expires=3600");
}

#[test]
fn same_call_id_needs_a_higher_cseq() {
    let mut b = bench();
    save(
        &mut b,
        &register("alice", "c1", 5, "Contact: <sip:a@1.1.1.1>;expires=100"),
    );
    // A retransmission or an old request: 200 with the binding as it is.
    let r = save(
        &mut b,
        &register("alice", "c1", 5, "Contact: <sip:a@1.1.1.1>;expires=0"),
    );
    assert_eq!(r.status().0, 200);
    assert_eq!(r.header("Contact").unwrap(), "<sip:a@1.1.1.1>;expires=100");
    let r = save(
        &mut b,
        &register("alice", "c1", 4, "Contact: <sip:a@1.1.1.1>;expires=300"),
    );
    assert_eq!(r.header("Contact").unwrap(), "<sip:a@1.1.1.1>;expires=100");
    // A new Call-ID (device rebooted) may use any CSeq.
    let r = save(
        &mut b,
        &register("alice", "c2", 1, "Contact: <sip:a@1.1.1.1>;expires=300"),
    );
    assert_eq!(r.header("Contact").unwrap(), "<sip:a@1.1.1.1>;expires=300");
}

#[test]
fn max_contacts_answers_503_and_changes_nothing() {
    let reg = RegParams {
        max_contacts: 1,
        retry_after: 30,
        ..RegParams::default()
    };
    let mut b = bench_with(reg, UlParams::default());
    assert_eq!(
        save(
            &mut b,
            &register("alice", "c1", 1, "Contact: <sip:a@1.1.1.1>")
        )
        .rc,
        1
    );
    let r = save(
        &mut b,
        &register("alice", "c2", 1, "Contact: <sip:a@2.2.2.2>"),
    );
    assert_eq!(r.rc, -2);
    assert_eq!(r.status().0, 503);
    assert_eq!(r.header("Retry-After").as_deref(), Some("30"));
    // Kamailio's order: the error text, then Retry-After.
    let reply = r.reply();
    let at = |h: &str| reply.find(h).unwrap_or_else(|| panic!("{h}: {reply}"));
    assert!(at("P-Registrar-Error:") < at("Retry-After:"), "{reply}");
    let l = lookup(&mut b, "sip:alice@example.com");
    assert_eq!(l.new_uri.as_deref(), Some(&b"sip:a@1.1.1.1"[..]));
    assert!(l.branches.is_empty());
}

#[test]
fn save_flags_no_reply_and_single_contact() {
    let mut b = bench();
    save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:a@1.1.1.1>, <sip:a@2.2.2.2>",
        ),
    );
    let r = b.call(
        &registrar::MODULE,
        "save",
        &["location", "0x06"],
        &register("alice", "c2", 1, "Contact: <sip:a@3.3.3.3>"),
    );
    assert_eq!(r.rc, 1);
    assert!(r.out.is_empty(), "0x02: no reply");
    let l = lookup(&mut b, "sip:alice@example.com");
    assert_eq!(l.new_uri.as_deref(), Some(&b"sip:a@3.3.3.3"[..]));
    assert!(l.branches.is_empty(), "0x04: the other contacts are gone");
}

#[test]
fn save_to_an_explicit_uri() {
    let mut b = bench();
    let r = b.call(
        &registrar::MODULE,
        "save",
        &["location", "0", "sip:carol@example.com"],
        &register("alice", "c1", 1, "Contact: <sip:c@4.4.4.4>"),
    );
    assert_eq!(r.rc, 1);
    assert_eq!(lookup(&mut b, "sip:carol@example.com").rc, 1);
    assert_eq!(lookup(&mut b, "sip:alice@example.com").rc, -1);
}

#[test]
fn bad_contacts_and_to_get_400() {
    let mut b = bench();
    let r = save(
        &mut b,
        &register("alice", "c1", 1, "Contact: <sip:a@1.1.1.1>;q=7"),
    );
    assert_eq!((r.rc, r.status().0), (-1, 400));
    // An expires parameter that is not a number is no error in Kamailio 5.6
    // (bad_expires_param_takes_the_default).
    let r = save(
        &mut b,
        &register("alice", "c1", 1, "Contact: <sip:a@1.1.1.1>;expires=abc"),
    );
    assert_eq!((r.rc, r.status().0), (1, 200));
    let mut msg = register("alice", "c1", 1, "Contact: <sip:a@1.1.1.1>");
    msg = msg.replace("To: <sip:alice@example.com>", "To: <sip:example.com>");
    let r = save(&mut b, &msg);
    assert_eq!((r.rc, r.status().0), (-1, 400));
}

#[test]
fn method_filtering_returns_minus_2() {
    let reg = RegParams {
        method_filtering: true,
        ..RegParams::default()
    };
    let mut b = bench_with(reg, UlParams::default());
    save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:a@1.1.1.1>\nAllow: MESSAGE, OPTIONS",
        ),
    );
    assert_eq!(lookup(&mut b, "sip:alice@example.com").rc, -2);
    // In-dialog requests are not filtered.
    let r = b.call(
        &registrar::MODULE,
        "lookup",
        &["location"],
        &invite("sip:alice@example.com", ";tag=t2"),
    );
    assert_eq!(r.rc, 1);
    let msg = invite("sip:alice@example.com", "")
        .replace("INVITE sip", "MESSAGE sip")
        .replace("1 INVITE", "1 MESSAGE");
    assert_eq!(
        b.call(&registrar::MODULE, "lookup", &["location"], &msg).rc,
        1
    );
}

#[test]
fn path_is_stored_and_becomes_the_next_hop() {
    let reg = RegParams {
        use_path: true,
        path_mode: 1,
        ..RegParams::default()
    };
    let mut b = bench_with(reg, UlParams::default());
    let r = save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:a@10.1.1.1>\nPath: <sip:edge.example.com;lr>\nSupported: path",
        ),
    );
    assert_eq!(
        r.header("Path").as_deref(),
        Some("<sip:edge.example.com;lr>")
    );
    let l = lookup(&mut b, "sip:alice@example.com");
    assert_eq!(l.dst_uri.as_deref(), Some(&b"sip:edge.example.com;lr"[..]));
}

#[test]
fn path_mode_2_needs_supported_path() {
    let reg = RegParams {
        use_path: true,
        ..RegParams::default()
    };
    let mut b = bench_with(reg, UlParams::default());
    let r = save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:a@10.1.1.1>\nPath: <sip:edge;lr>",
        ),
    );
    assert_eq!(r.status(), (420, "Bad Extension".into()));
    assert_eq!(r.header("Unsupported").as_deref(), Some("path"));
}

#[test]
fn use_domain_keeps_domains_apart() {
    let ul = UlParams {
        use_domain: true,
        ..UlParams::default()
    };
    let mut b = bench_with(RegParams::default(), ul);
    save(
        &mut b,
        &register("alice", "c1", 1, "Contact: <sip:a@1.1.1.1>"),
    );
    assert_eq!(lookup(&mut b, "sip:alice@example.com").rc, 1);
    assert_eq!(lookup(&mut b, "sip:alice@other.org").rc, -1);
}

#[test]
fn registered_and_unregister() {
    let mut b = bench();
    save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:a@1.1.1.1>, <sip:a@2.2.2.2>",
        ),
    );
    let inv = invite("sip:alice@example.com", "");
    let m = &registrar::MODULE;
    assert_eq!(b.call(m, "registered", &["location"], &inv).rc, 1);
    assert_eq!(
        b.call(m, "registered", &["location", "sip:bob@example.com"], &inv)
            .rc,
        -1
    );
    // No bindings to remove is no error in Kamailio 5.6 (sidebyside reg_queries).
    assert_eq!(
        b.call(m, "unregister", &["location", "sip:bob@example.com"], &inv)
            .rc,
        1
    );
    assert_eq!(
        b.call(m, "unregister", &["location", "sip:example.com"], &inv)
            .rc,
        -1
    );
    assert_eq!(
        b.call(
            m,
            "unregister",
            &["location", "sip:alice@example.com", "no-such-ruid"],
            &inv
        )
        .rc,
        -3
    );
    assert_eq!(
        b.call(
            m,
            "unregister",
            &["location", "sip:alice@example.com"],
            &inv
        )
        .rc,
        1
    );
    assert_eq!(b.call(m, "registered", &["location"], &inv).rc, -1);
}

#[test]
fn lookup_to_dset_and_lookup_branches() {
    let mut b = bench();
    save(
        &mut b,
        &register("alice", "c1", 1, "Contact: <sip:a@1.1.1.1>"),
    );
    save(
        &mut b,
        &register("bob", "c2", 1, "Contact: <sip:b@2.2.2.2>"),
    );
    let m = &registrar::MODULE;
    let r = b.call(
        m,
        "lookup_to_dset",
        &["location"],
        &invite("sip:alice@example.com", ""),
    );
    assert_eq!(r.rc, 1);
    assert_eq!(r.new_uri, None);
    assert_eq!(r.branches.len(), 1);
    let r = b.calls(
        &invite("sip:alice@example.com", ""),
        &[
            (m, "lookup_to_dset", &["location", "sip:bob@example.com"]),
            (m, "lookup_branches", &["location"]),
        ],
    );
    assert_eq!(r.rc, 1);
    assert_eq!(r.new_uri.as_deref(), Some(&b"sip:a@1.1.1.1"[..]));
    assert_eq!(&r.branches[0].uri[..], b"sip:b@2.2.2.2");
}

#[test]
fn other_tables_are_separate() {
    let mut b = bench();
    let m = &registrar::MODULE;
    let r = b.call(
        m,
        "save",
        &["aliases"],
        &register("alice", "c1", 1, "Contact: <sip:a@1.1.1.1>"),
    );
    assert_eq!(r.rc, 1);
    assert_eq!(lookup(&mut b, "sip:alice@example.com").rc, -1);
    let r = b.call(
        m,
        "lookup",
        &["aliases"],
        &invite("sip:alice@example.com", ""),
    );
    assert_eq!(r.rc, 1);
}

#[test]
fn without_usrloc_set_up_functions_fail_cleanly() {
    let mut b = Bench::new(Shared::default(), T0);
    let r = save(
        &mut b,
        &register("alice", "c1", 1, "Contact: <sip:a@1.1.1.1>"),
    );
    assert_eq!((r.rc, r.status().0), (-1, 500));
    assert_eq!(lookup(&mut b, "sip:alice@example.com").rc, -3);
}

#[test]
fn a_register_without_user_agent_is_stored_as_n_a() {
    // As Kamailio keeps it (ul.dump "User-Agent": "n/a", the location table).
    let mut b = bench();
    save(
        &mut b,
        &register("alice", "c1", 1, "Contact: <sip:a@1.1.1.1>"),
    );
    save(
        &mut b,
        &register(
            "bob",
            "c2",
            1,
            "Contact: <sip:b@1.1.1.1>\nUser-Agent: phone/1.0",
        ),
    );
    let ul = b.env.services.get::<Usrloc>().unwrap();
    let dom = ul.domain(b"location").unwrap();
    let ua = |user: &str| {
        ul.read(&dom, user, |r| r.unwrap().contacts[0].user_agent.clone())
            .unwrap()
    };
    assert_eq!(ua("alice").as_deref(), Some("n/a"));
    assert_eq!(ua("bob").as_deref(), Some("phone/1.0"));
}

/// Kamailio 5.6's usrloc keeps a record's contacts in a list: a new one goes
/// after every contact with the same or a higher q (q unset is -1, last);
/// a refresh keeps its place; the contacts of one Contact header are taken
/// last first. The 200 OK and lookup's branches follow that list
/// (sidebyside hunt_route_reg.cfg reg_max_contacts, reg_lookup_fork).
#[test]
fn contacts_in_kamailio_list_order() {
    let mut b = bench();
    let r = save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:a1@h>, <sip:a2@h>\nExpires: 600",
        ),
    );
    assert_eq!(
        r.header("Contact").unwrap(),
        "<sip:a2@h>;expires=600, <sip:a1@h>;expires=600"
    );
    b.advance(10);
    let r = save(
        &mut b,
        &register("alice", "c1", 2, "Contact: <sip:a3@h>\nExpires: 600"),
    );
    assert_eq!(
        r.header("Contact").unwrap(),
        "<sip:a2@h>;expires=590, <sip:a1@h>;expires=590, <sip:a3@h>;expires=600"
    );
    // A refresh keeps the place; a q given puts a new one before the unset ones.
    let r = save(
        &mut b,
        &register(
            "alice",
            "c1",
            3,
            "Contact: <sip:a2@h>\nContact: <sip:a4@h>;q=0.5\nExpires: 300",
        ),
    );
    assert_eq!(
        r.header("Contact").unwrap(),
        "<sip:a4@h>;q=0.5;expires=300, <sip:a2@h>;expires=300, <sip:a1@h>;expires=590, <sip:a3@h>;expires=600"
    );
    let r = lookup(&mut b, "sip:alice@example.com");
    assert_eq!(r.new_uri.as_deref(), Some(&b"sip:a4@h"[..]));
    let order: Vec<_> = r.branches.iter().map(|x| x.uri.clone()).collect();
    assert_eq!(order, ["sip:a2@h", "sip:a1@h", "sip:a3@h"]);
    // A q change moves the contact in front of the first with a q not below its own.
    let r = save(
        &mut b,
        &register("alice", "c1", 4, "Contact: <sip:a3@h>;q=0.2\nExpires: 300"),
    );
    assert_eq!(
        r.header("Contact").unwrap(),
        "<sip:a3@h>;q=0.2;expires=300, <sip:a4@h>;q=0.5;expires=300, <sip:a2@h>;expires=300, <sip:a1@h>;expires=590"
    );
}

/// An expires parameter that is not a number counts as missing and gives
/// `default_expires` (Kamailio 5.6), not the Expires header, not an error.
#[test]
fn bad_expires_param_takes_the_default() {
    let reg = RegParams {
        default_expires: 500,
        ..RegParams::default()
    };
    let mut b = bench_with(reg, UlParams::default());
    let r = save(
        &mut b,
        &register(
            "u1",
            "c1",
            1,
            "Contact: <sip:u1@h>;expires=xyz\nExpires: 800",
        ),
    );
    assert_eq!(r.status().0, 200);
    assert_eq!(r.header("Contact").unwrap(), "<sip:u1@h>;expires=500");
}

/// What Kamailio 5.6 did in sidebyside hunt_route_reg.cfg: an error found
/// with the record at hand (too many contacts, a bad q) lists the bindings
/// kept; save flag 0x04 keeps only the first contact (the last of its
/// header); unregister() of an AoR without bindings returns 1.
#[test]
fn error_listing_single_contact_and_unregister_nobody() {
    let reg = RegParams {
        max_contacts: 1,
        ..RegParams::default()
    };
    let mut b = bench_with(reg, UlParams::default());
    save(
        &mut b,
        &register("alice", "c1", 1, "Contact: <sip:a1@h>\nExpires: 600"),
    );
    let r = save(
        &mut b,
        &register("alice", "c1", 2, "Contact: <sip:a2@h>\nExpires: 600"),
    );
    assert_eq!(r.status().0, 503);
    assert_eq!(r.header("Contact").unwrap(), "<sip:a1@h>;expires=600");
    let r = save(
        &mut b,
        &register("alice", "c1", 3, "Contact: <sip:a2@h>;q=7\nExpires: 600"),
    );
    assert_eq!(r.status().0, 400);
    assert_eq!(r.header("Contact").unwrap(), "<sip:a1@h>;expires=600");
    let r = b.call(
        &registrar::MODULE,
        "save",
        &["location", "0x04"],
        &register(
            "bob",
            "c2",
            1,
            "Contact: <sip:b1@h>;q=0.5, <sip:b2@h>;q=0.9\nExpires: 600",
        ),
    );
    assert_eq!(r.header("Contact").unwrap(), "<sip:b2@h>;q=0.9;expires=600");
    let un = |b: &mut Bench, aor: &str| {
        b.call(
            &registrar::MODULE,
            "unregister",
            &["location", aor],
            &invite("sip:x@example.com", ""),
        )
        .rc
    };
    assert_eq!(un(&mut b, "sip:nobody@example.com"), 1);
    assert_eq!(un(&mut b, "sip:bob@example.com"), 1);
    assert_eq!(lookup(&mut b, "sip:bob@example.com").rc, -1);
}

/// lookup_branches as Kamailio 5.6 orders them: a branch without bindings
/// stays where it was, the R-URI's extra contacts come after it.
#[test]
fn lookup_branches_keeps_the_branches_first() {
    let mut b = bench();
    save(
        &mut b,
        &register(
            "alice",
            "c1",
            1,
            "Contact: <sip:a1@h>;q=0.5, <sip:a2@h>;q=0.9",
        ),
    );
    let m = &registrar::MODULE;
    save(&mut b, &register("carol", "c3", 1, "Contact: <sip:c@h>"));
    let r = b.calls(
        &invite("sip:alice@example.com", ""),
        &[
            (m, "lookup_to_dset", &["location", "sip:nobody@example.com"]),
            (m, "lookup_to_dset", &["location", "sip:carol@example.com"]),
            (m, "lookup_branches", &["location"]),
        ],
    );
    assert_eq!(r.rc, 1);
    let uris: Vec<_> = r.branches.iter().map(|x| x.uri.clone()).collect();
    assert_eq!(r.new_uri.as_deref(), Some(&b"sip:a2@h"[..]));
    assert_eq!(uris, ["sip:c@h", "sip:a1@h"]);
}
