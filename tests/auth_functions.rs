//! auth, auth_db and uri_db functions with their return codes
//! (KAMAILIO-REFERENCE §6): a challenge, the client's answer computed as RFC
//! 2617 / RFC 7616 say, and the check, with virtual time and no socket.

mod support;

use std::sync::Arc;

use ringsip::modules::auth::db::{self, AuthDb, AuthDbParams};
use ringsip::modules::auth::digest::{self, Algorithm, ResponseInput};
use ringsip::modules::auth::{self, Auth};
use ringsip::script::ctx::Shared;
use ringsip::script::registry::{ModParams, ParamValue};
use ringsip::store::{SubscriberColumns, SubscriberRow};
use support::{Bench, Outcome};

const T0: u64 = 1_700_000_000_000;
const REALM: &str = "example.com";

fn bench_with(auth_params: &[(&str, ParamValue)], db_params: AuthDbParams) -> Bench {
    let mut mp = ModParams::default();
    for (k, v) in auth_params {
        mp.push("auth", k, v.clone());
    }
    let rows = [
        SubscriberRow {
            username: "alice".into(),
            domain: REALM.into(),
            password: "alicepw".into(),
            ha1: "alicepw".into(),
            ha1b: String::new(),
        },
        SubscriberRow {
            username: "bob".into(),
            domain: REALM.into(),
            password: "bobpw".into(),
            ha1: "bobpw".into(),
            ha1b: String::new(),
        },
    ];
    let mut shared = Shared::default();
    shared.insert(Arc::new(
        Auth::from_modparams(&mp, b"0123456789abcdef").unwrap(),
    ));
    shared.insert(Arc::new(AuthDb::from_rows(db_params, "subscriber", &rows)));
    Bench::new(shared, T0)
}

fn plain_passwords() -> AuthDbParams {
    AuthDbParams {
        columns: SubscriberColumns::default(),
        calculate_ha1: true,
        use_domain: false,
    }
}

fn bench() -> Bench {
    bench_with(&[], plain_passwords())
}

fn register(to_user: &str, from_user: &str, auth: &str) -> String {
    format!(
        "REGISTER sip:{REALM} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-r
From: <sip:{from_user}@{REALM}>;tag=f1
To: <sip:{to_user}@{REALM}>
Call-ID: reg-1
CSeq: 2 REGISTER
Contact: <sip:{to_user}@10.0.0.1>
{auth}
Content-Length: 0"
    )
}

fn invite(from_user: &str, auth: &str) -> String {
    format!(
        "INVITE sip:bob@{REALM} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-i
From: <sip:{from_user}@{REALM}>;tag=f1
To: <sip:bob@{REALM}>
Call-ID: inv-1
CSeq: 1 INVITE
{auth}
Content-Length: 0"
    )
}

/// The nonce of a challenge reply.
fn nonce_of(r: &Outcome, header: &str) -> String {
    let h = r.header(header).expect("challenge header");
    let start = h.find("nonce=\"").expect("nonce") + 7;
    let end = h[start..].find('"').unwrap() + start;
    h[start..end].to_string()
}

/// An Authorization value as a client computes it.
#[allow(clippy::too_many_arguments)]
fn credentials(
    header: &str,
    user: &str,
    pw: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    alg: Algorithm,
    qop: Option<&str>,
) -> String {
    let ha1 = digest::ha1(alg, user.as_bytes(), REALM.as_bytes(), pw.as_bytes());
    let resp = digest::response(
        alg,
        ha1.as_bytes(),
        &ResponseInput {
            method: method.as_bytes(),
            uri: uri.as_bytes(),
            nonce: nonce.as_bytes(),
            qop_auth: qop.map(|nc| (nc.as_bytes(), &b"c0ffee"[..])),
        },
    );
    let mut v = format!(
        "{header}: Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\""
    );
    if alg == Algorithm::Sha256 {
        v.push_str(", algorithm=SHA-256");
    }
    if let Some(nc) = qop {
        v.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"c0ffee\""));
    }
    v
}

fn www(user: &str, pw: &str, nonce: &str) -> String {
    credentials(
        "Authorization",
        user,
        pw,
        "REGISTER",
        "sip:example.com",
        nonce,
        Algorithm::Md5,
        None,
    )
}

fn challenge(b: &mut Bench) -> String {
    let r = b.call(
        &auth::MODULE,
        "www_challenge",
        &[REALM, "0"],
        &register("alice", "alice", ""),
    );
    assert_eq!(r.rc, 1);
    assert_eq!(r.status(), (401, "Unauthorized".into()));
    nonce_of(&r, "WWW-Authenticate")
}

fn authorize(b: &mut Bench, msg: &str) -> Outcome {
    b.call(&db::MODULE, "www_authorize", &[REALM, "subscriber"], msg)
}

#[test]
fn challenge_format_matches_kamailio() {
    let mut b = bench();
    let r = b.call(
        &auth::MODULE,
        "www_challenge",
        &[REALM, "0"],
        &register("alice", "alice", ""),
    );
    let h = r.header("WWW-Authenticate").unwrap();
    let nonce = nonce_of(&r, "WWW-Authenticate");
    assert_eq!(nonce.len(), 32);
    assert_eq!(h, format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\""));
    let r = b.call(
        &auth::MODULE,
        "proxy_challenge",
        &["", "1"],
        &invite("alice", ""),
    );
    assert_eq!(r.status(), (407, "Proxy Authentication Required".into()));
    let h = r.header("Proxy-Authenticate").unwrap();
    assert!(
        h.starts_with("Digest realm=\"example.com\", nonce=\""),
        "realm from From: {h}"
    );
    assert!(h.ends_with(", qop=\"auth\""), "{h}");
    // auth_challenge picks by method.
    let r = b.call(
        &auth::MODULE,
        "auth_challenge",
        &[REALM, "0"],
        &register("alice", "alice", ""),
    );
    assert_eq!(r.status().0, 401);
    let r = b.call(
        &auth::MODULE,
        "auth_challenge",
        &[REALM, "0"],
        &invite("alice", ""),
    );
    assert_eq!(r.status().0, 407);
}

#[test]
fn right_password_authorizes() {
    let mut b = bench();
    let nonce = challenge(&mut b);
    let r = authorize(
        &mut b,
        &register("alice", "alice", &www("alice", "alicepw", &nonce)),
    );
    assert_eq!(r.rc, 1);
    let a = r.authorized.unwrap();
    assert_eq!(&a.username[..], b"alice");
    assert_eq!(&a.realm[..], REALM.as_bytes());
}

#[test]
fn return_codes() {
    let mut b = bench();
    let nonce = challenge(&mut b);
    assert_eq!(
        authorize(
            &mut b,
            &register("alice", "alice", &www("alice", "wrong", &nonce))
        )
        .rc,
        -2
    );
    assert_eq!(
        authorize(
            &mut b,
            &register("carol", "carol", &www("carol", "x", &nonce))
        )
        .rc,
        -3
    );
    assert_eq!(authorize(&mut b, &register("alice", "alice", "")).rc, -5);
    // Credentials for another realm are not ours.
    let other =
        www("alice", "alicepw", &nonce).replace("realm=\"example.com\"", "realm=\"other.org\"");
    assert_eq!(
        authorize(&mut b, &register("alice", "alice", &other)).rc,
        -5
    );
    // A nonce this server did not make.
    assert_eq!(
        authorize(
            &mut b,
            &register("alice", "alice", &www("alice", "alicepw", "Zm9yZ2Vk"))
        )
        .rc,
        -1
    );
    // Missing response parameter.
    let broken = format!("Authorization: Digest username=\"alice\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"sip:example.com\"");
    assert_eq!(
        authorize(&mut b, &register("alice", "alice", &broken)).rc,
        -1
    );
}

#[test]
fn expired_nonce_is_stale_and_rechallenged_with_stale_true() {
    let mut b = bench();
    let nonce = challenge(&mut b);
    b.advance(301);
    let msg = register("alice", "alice", &www("alice", "alicepw", &nonce));
    assert_eq!(authorize(&mut b, &msg).rc, -4);
    let r = b.call(&auth::MODULE, "www_challenge", &[REALM, "0"], &msg);
    assert!(r
        .header("WWW-Authenticate")
        .unwrap()
        .contains(", stale=true"));
    let r = b.call(
        &auth::MODULE,
        "www_challenge",
        &[REALM, "16"],
        &register("alice", "alice", ""),
    );
    assert!(r
        .header("WWW-Authenticate")
        .unwrap()
        .contains(", stale=true"));
}

#[test]
fn qop_auth_and_sha256() {
    let mut b = bench_with(
        &[
            ("algorithm", ParamValue::Str("SHA-256".into())),
            ("qop", ParamValue::Str("auth".into())),
        ],
        plain_passwords(),
    );
    let r = b.call(
        &auth::MODULE,
        "www_challenge",
        &[REALM, "0"],
        &register("alice", "alice", ""),
    );
    let h = r.header("WWW-Authenticate").unwrap();
    assert!(h.ends_with(", qop=\"auth\", algorithm=SHA-256"), "{h}");
    let nonce = nonce_of(&r, "WWW-Authenticate");
    let cred = credentials(
        "Authorization",
        "alice",
        "alicepw",
        "REGISTER",
        "sip:example.com",
        &nonce,
        Algorithm::Sha256,
        Some("00000001"),
    );
    assert_eq!(authorize(&mut b, &register("alice", "alice", &cred)).rc, 1);
    let md5 = credentials(
        "Authorization",
        "alice",
        "alicepw",
        "REGISTER",
        "sip:example.com",
        &nonce,
        Algorithm::Md5,
        Some("00000002"),
    );
    assert_eq!(
        authorize(&mut b, &register("alice", "alice", &md5)).rc,
        1,
        "MD5 answers stay valid"
    );
}

#[test]
fn nonce_count_replay_is_refused() {
    let mut b = bench_with(
        &[
            ("nonce_count", ParamValue::Int(1)),
            ("qop", ParamValue::Str("auth".into())),
        ],
        plain_passwords(),
    );
    let nonce = challenge(&mut b);
    let cred = |nc| {
        credentials(
            "Authorization",
            "alice",
            "alicepw",
            "REGISTER",
            "sip:example.com",
            &nonce,
            Algorithm::Md5,
            Some(nc),
        )
    };
    assert_eq!(
        authorize(&mut b, &register("alice", "alice", &cred("00000001"))).rc,
        1
    );
    assert_eq!(
        authorize(&mut b, &register("alice", "alice", &cred("00000001"))).rc,
        -6
    );
    assert_eq!(
        authorize(&mut b, &register("alice", "alice", &cred("00000002"))).rc,
        1
    );
}

#[test]
fn stored_ha1_columns() {
    let mut b = bench_with(
        &[],
        AuthDbParams {
            calculate_ha1: false,
            ..plain_passwords()
        },
    );
    // The column holds "alicepw", which is not an HA1: the right password fails.
    let nonce = challenge(&mut b);
    assert_eq!(
        authorize(
            &mut b,
            &register("alice", "alice", &www("alice", "alicepw", &nonce))
        )
        .rc,
        -2
    );
    let rows = [SubscriberRow {
        username: "alice".into(),
        domain: REALM.into(),
        ha1: digest::ha1(Algorithm::Md5, b"alice", REALM.as_bytes(), b"pw"),
        ..SubscriberRow::default()
    }];
    let mut shared = Shared::default();
    shared.insert(Arc::new(
        Auth::from_modparams(&ModParams::default(), b"k").unwrap(),
    ));
    shared.insert(Arc::new(AuthDb::from_rows(
        AuthDbParams {
            calculate_ha1: false,
            ..plain_passwords()
        },
        "subscriber",
        &rows,
    )));
    let mut b = Bench::new(shared, T0);
    let nonce = challenge(&mut b);
    assert_eq!(
        authorize(
            &mut b,
            &register("alice", "alice", &www("alice", "pw", &nonce))
        )
        .rc,
        1
    );
}

#[test]
fn check_to_refuses_a_forged_to() {
    let mut b = bench();
    let nonce = challenge(&mut b);
    let m = register("bob", "alice", &www("alice", "alicepw", &nonce));
    let r = b.calls(
        &m,
        &[
            (&db::MODULE, "www_authorize", &[REALM, "subscriber"]),
            (&db::URI_DB, "check_to", &[]),
        ],
    );
    assert_eq!(r.rc, -8);
    let m = register("alice", "alice", &www("alice", "alicepw", &nonce));
    let r = b.calls(
        &m,
        &[
            (&db::MODULE, "www_authorize", &[REALM, "subscriber"]),
            (&db::URI_DB, "check_to", &[]),
        ],
    );
    assert_eq!(r.rc, 1);
    let r = b.calls(
        &m,
        &[
            (&db::MODULE, "www_authorize", &[REALM, "subscriber"]),
            (&db::URI_DB, "check_from", &[]),
        ],
    );
    assert_eq!(r.rc, 1);
    // Nothing authorized yet.
    assert_eq!(b.call(&db::URI_DB, "check_to", &[], &m).rc, -2);
}

#[test]
fn auth_check_identity_flags() {
    let mut b = bench();
    let nonce = challenge(&mut b);
    let forged = register("bob", "alice", &www("alice", "alicepw", &nonce));
    assert_eq!(
        b.call(
            &db::MODULE,
            "auth_check",
            &[REALM, "subscriber", "0"],
            &forged
        )
        .rc,
        1
    );
    assert_eq!(
        b.call(
            &db::MODULE,
            "auth_check",
            &[REALM, "subscriber", "1"],
            &forged
        )
        .rc,
        -8
    );
    let own = register("alice", "alice", &www("alice", "alicepw", &nonce));
    assert_eq!(
        b.call(&db::MODULE, "auth_check", &[REALM, "subscriber", "1"], &own)
            .rc,
        1
    );
    // INVITE: proxy credentials; the From user must be the auth user unless flag 2.
    let r = b.call(
        &auth::MODULE,
        "proxy_challenge",
        &[REALM, "0"],
        &invite("alice", ""),
    );
    let pn = nonce_of(&r, "Proxy-Authenticate");
    let cred = credentials(
        "Proxy-Authorization",
        "alice",
        "alicepw",
        "INVITE",
        "sip:bob@example.com",
        &pn,
        Algorithm::Md5,
        None,
    );
    assert_eq!(
        b.call(
            &db::MODULE,
            "auth_check",
            &[REALM, "subscriber", "1"],
            &invite("alice", &cred)
        )
        .rc,
        1
    );
    assert_eq!(
        b.call(
            &db::MODULE,
            "auth_check",
            &[REALM, "subscriber", "1"],
            &invite("carol", &cred)
        )
        .rc,
        -8
    );
    assert_eq!(
        b.call(
            &db::MODULE,
            "auth_check",
            &[REALM, "subscriber", "3"],
            &invite("carol", &cred)
        )
        .rc,
        1
    );
    assert_eq!(
        b.call(
            &db::MODULE,
            "proxy_authorize",
            &[REALM, "subscriber"],
            &invite("alice", &cred)
        )
        .rc,
        1
    );
    // ACK and CANCEL pass unchecked.
    let ack = invite("alice", "")
        .replace("INVITE sip", "ACK sip")
        .replace("1 INVITE", "1 ACK");
    assert_eq!(
        b.call(&db::MODULE, "auth_check", &[REALM, "subscriber", "1"], &ack)
            .rc,
        1
    );
}

#[test]
fn consume_and_has_credentials() {
    let mut b = bench();
    let nonce = challenge(&mut b);
    let m = register("alice", "alice", &www("alice", "alicepw", &nonce));
    assert_eq!(b.call(&auth::MODULE, "has_credentials", &[REALM], &m).rc, 1);
    assert_eq!(
        b.call(&auth::MODULE, "has_credentials", &["other.org"], &m)
            .rc,
        -1
    );
    assert_eq!(
        b.call(&auth::MODULE, "consume_credentials", &[], &m).rc,
        -1,
        "nothing authorized yet"
    );
    let r = b.calls(
        &m,
        &[
            (&db::MODULE, "www_authorize", &[REALM, "subscriber"]),
            (&auth::MODULE, "consume_credentials", &[]),
        ],
    );
    assert_eq!(r.rc, 1);
    assert!(!r.edits_empty, "the Authorization header is removed");
}

#[test]
fn pv_authenticate_with_password_or_ha1() {
    let mut b = bench();
    let nonce = challenge(&mut b);
    let m = register("alice", "alice", &www("alice", "secret", &nonce));
    assert_eq!(
        b.call(
            &auth::MODULE,
            "pv_www_authenticate",
            &[REALM, "secret", "0"],
            &m
        )
        .rc,
        1
    );
    assert_eq!(
        b.call(
            &auth::MODULE,
            "pv_www_authenticate",
            &[REALM, "nope", "0"],
            &m
        )
        .rc,
        -2
    );
    let ha1 = digest::ha1(Algorithm::Md5, b"alice", REALM.as_bytes(), b"secret");
    assert_eq!(
        b.call(
            &auth::MODULE,
            "pv_www_authenticate",
            &[REALM, &ha1, "1"],
            &m
        )
        .rc,
        1
    );
    assert_eq!(
        b.call(
            &auth::MODULE,
            "pv_proxy_authenticate",
            &[REALM, "secret", "0"],
            &m
        )
        .rc,
        -5
    );
}

#[test]
fn is_subscriber_and_no_database() {
    let mut b = bench();
    let m = register("alice", "alice", "");
    assert_eq!(
        b.call(
            &db::MODULE,
            "is_subscriber",
            &["sip:alice@example.com", "subscriber", "0"],
            &m
        )
        .rc,
        1
    );
    assert_eq!(
        b.call(
            &db::MODULE,
            "is_subscriber",
            &["sip:zed@example.com", "subscriber", "0"],
            &m
        )
        .rc,
        -1
    );
    let mut empty = Bench::new(Shared::default(), T0);
    assert_eq!(
        empty
            .call(&db::MODULE, "www_authorize", &[REALM, "subscriber"], &m)
            .rc,
        -1
    );
    let r = empty.call(&auth::MODULE, "www_challenge", &[REALM, "0"], &m);
    assert_eq!((r.rc, r.status().0), (-1, 500));
}

/// A REGISTER from `from` to `to` (user@host each) with `auth` lines.
fn register_at(from: &str, to: &str, auth: &str) -> String {
    format!(
        "REGISTER sip:{} SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-r
From: <sip:{from}>;tag=f1
To: <sip:{to}>
Call-ID: reg-d
CSeq: 2 REGISTER
Contact: <sip:x@10.0.0.1>
{auth}
Content-Length: 0",
        to.split('@').nth(1).unwrap_or(to)
    )
}

/// Authorization for `user` (the digest user name) in `realm`.
fn www_in(user: &str, realm: &str, pw: &str, nonce: &str) -> String {
    let ha1 = digest::ha1(
        Algorithm::Md5,
        user.as_bytes(),
        realm.as_bytes(),
        pw.as_bytes(),
    );
    www_ha1(user, realm, &ha1, nonce)
}

fn www_ha1(user: &str, realm: &str, ha1: &str, nonce: &str) -> String {
    let uri = format!("sip:{realm}");
    let resp = digest::response(
        Algorithm::Md5,
        ha1.as_bytes(),
        &ResponseInput {
            method: b"REGISTER",
            uri: uri.as_bytes(),
            nonce: nonce.as_bytes(),
            qop_auth: None,
        },
    );
    format!("Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\"")
}

fn two_domains(calculate_ha1: bool, use_domain: bool) -> Bench {
    let ha1b = |d: &str, pw: &str| {
        digest::ha1(
            Algorithm::Md5,
            format!("alice@{d}").as_bytes(),
            b"b.example",
            pw.as_bytes(),
        )
    };
    let rows = [
        SubscriberRow {
            username: "alice".into(),
            domain: "a.example".into(),
            password: "pa".into(),
            ha1: "pa".into(),
            ha1b: ha1b("a.example", "pa"),
        },
        SubscriberRow {
            username: "alice".into(),
            domain: "b.example".into(),
            password: "pb".into(),
            ha1: "pb".into(),
            ha1b: ha1b("b.example", "pb"),
        },
    ];
    let mut shared = Shared::default();
    shared.insert(Arc::new(
        Auth::from_modparams(&ModParams::default(), b"0123456789abcdef").unwrap(),
    ));
    let params = AuthDbParams {
        columns: SubscriberColumns::default(),
        calculate_ha1,
        use_domain,
    };
    shared.insert(Arc::new(AuthDb::from_rows(params, "subscriber", &rows)));
    Bench::new(shared, T0)
}

fn nonce_for(b: &mut Bench, realm: &str) -> String {
    let r = b.call(
        &auth::MODULE,
        "www_challenge",
        &[realm, "0"],
        &register_at("alice@b.example", "alice@b.example", ""),
    );
    nonce_of(&r, "WWW-Authenticate")
}

/// auth_db `use_domain` (KAMAILIO-REFERENCE §6): the subscriber row is the
/// one of the user in the realm's domain, or in the digest user name's own
/// domain (`alice@a.example`, which also reads `ha1b`); without it the
/// first row of the user.
#[test]
fn use_domain_picks_the_row_of_the_realm_or_of_the_user_name() {
    let check = |b: &mut Bench, realm: &str, auth: String| {
        let m = register_at("alice@b.example", "alice@b.example", &auth);
        b.call(&db::MODULE, "www_authorize", &[realm, "subscriber"], &m)
            .rc
    };
    let mut b = two_domains(true, true);
    let n = nonce_for(&mut b, "b.example");
    assert_eq!(
        check(&mut b, "b.example", www_in("alice", "b.example", "pb", &n)),
        1
    );
    assert_eq!(
        check(&mut b, "b.example", www_in("alice", "b.example", "pa", &n)),
        -2
    );
    assert_eq!(
        check(&mut b, "c.example", www_in("alice", "c.example", "pb", &n)),
        -3
    );
    let mut b = two_domains(true, false);
    let n = nonce_for(&mut b, "b.example");
    assert_eq!(
        check(&mut b, "b.example", www_in("alice", "b.example", "pa", &n)),
        1
    );
    assert_eq!(
        check(&mut b, "b.example", www_in("alice", "b.example", "pb", &n)),
        -2
    );
    // Stored HA1s: a user name with @domain reads ha1b of that domain's row.
    let mut b = two_domains(false, true);
    let n = nonce_for(&mut b, "b.example");
    let ha1b = digest::ha1(Algorithm::Md5, b"alice@a.example", b"b.example", b"pa");
    assert_eq!(
        check(
            &mut b,
            "b.example",
            www_ha1("alice@a.example", "b.example", &ha1b, &n)
        ),
        1
    );
    let ha1b = digest::ha1(Algorithm::Md5, b"alice@b.example", b"b.example", b"pa");
    assert_eq!(
        check(
            &mut b,
            "b.example",
            www_ha1("alice@b.example", "b.example", &ha1b, &n)
        ),
        -2
    );
}

/// auth_check flag 1 as Kamailio 5.6 compares: the user part of the digest
/// user name, case sensitive; with `use_domain` the From and To hosts of a
/// REGISTER must be the same.
#[test]
fn auth_check_identity_with_use_domain_and_case() {
    let rc = |b: &mut Bench, from: &str, to: &str, user: &str, n: &str, pw: &str| {
        let m = register_at(from, to, &www_in(user, "b.example", pw, n));
        b.call(
            &db::MODULE,
            "auth_check",
            &["b.example", "subscriber", "1"],
            &m,
        )
        .rc
    };
    let mut b = two_domains(true, true);
    let n = nonce_for(&mut b, "b.example");
    assert_eq!(
        rc(
            &mut b,
            "alice@b.example",
            "alice@b.example",
            "alice",
            &n,
            "pb"
        ),
        1
    );
    assert_eq!(
        rc(
            &mut b,
            "alice@a.example",
            "alice@b.example",
            "alice",
            &n,
            "pb"
        ),
        -8
    );
    assert_eq!(
        rc(
            &mut b,
            "Alice@b.example",
            "alice@b.example",
            "alice",
            &n,
            "pb"
        ),
        -8
    );
    assert_eq!(
        rc(
            &mut b,
            "alice@b.example",
            "ALICE@b.example",
            "alice",
            &n,
            "pb"
        ),
        -8
    );
    let mut b = two_domains(true, false);
    let n = nonce_for(&mut b, "b.example");
    assert_eq!(
        rc(
            &mut b,
            "alice@a.example",
            "alice@b.example",
            "alice",
            &n,
            "pa"
        ),
        1
    );
}
