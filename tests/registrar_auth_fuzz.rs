//! No input panics the registrar or auth: arbitrary Contact, Expires, Path,
//! Allow, To and Authorization values through save, lookup and the auth checks.

mod support;

use std::sync::Arc;

use proptest::prelude::*;
use ringsip::modules::auth::db::{self, AuthDb, AuthDbParams};
use ringsip::modules::auth::{self, Auth};
use ringsip::modules::registrar::{self, RegParams, Registrar};
use ringsip::modules::usrloc::{UlParams, Usrloc};
use ringsip::script::ctx::Shared;
use ringsip::script::registry::ModParams;
use ringsip::sip::Message;
use support::{sip, Bench};

fn bench() -> Bench {
    let mut shared = Shared::default();
    shared.insert(Arc::new(Usrloc::in_memory(UlParams::default())));
    shared.insert(Arc::new(Registrar {
        params: RegParams {
            use_path: true,
            method_filtering: true,
            max_contacts: 3,
            ..RegParams::default()
        },
    }));
    shared.insert(Arc::new(
        Auth::from_modparams(&ModParams::default(), b"k").unwrap(),
    ));
    shared.insert(Arc::new(AuthDb::from_rows(
        AuthDbParams {
            calculate_ha1: true,
            ..AuthDbParams::from_modparams(&ModParams::default())
        },
        "subscriber",
        &[],
    )));
    Bench::new(shared, 1_700_000_000_000)
}

/// Header values made of SIP-ish pieces, so the parsers get past the first byte.
fn value() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<sip:a@1.2.3.4>".to_string()),
        Just("*".to_string()),
        Just(";expires=".to_string()),
        Just(";q=".to_string()),
        Just(",".to_string()),
        Just("\"".to_string()),
        Just("Digest ".to_string()),
        Just("username=\"a\"".to_string()),
        Just("nonce=\"".to_string()),
        Just("realm=\"example.com\"".to_string()),
        Just("response=\"00\"".to_string()),
        Just("qop=auth".to_string()),
        "[0-9]{1,12}",
        "[ -~]{0,12}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn nothing_panics(contact in value(), expires in value(), path in value(), allow in value(), to in value(), auth in value()) {
        let text = format!(
            "REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bK-f
From: <sip:a@example.com>;tag=1
To: {to}
Call-ID: f1
CSeq: 1 REGISTER
Contact: {contact}
Expires: {expires}
Path: {path}
Allow: {allow}
Supported: path
Authorization: {auth}
Content-Length: 0"
        );
        // Only messages the parser accepts reach the script.
        if Message::parse(bytes::Bytes::from(sip(&text))).is_err() {
            return Ok(());
        }
        let mut b = bench();
        let _ = b.calls(&text, &[
            (&db::MODULE, "www_authorize", &["", "subscriber"]),
            (&auth::MODULE, "www_challenge", &["", "0"]),
            (&db::URI_DB, "check_to", &[]),
            (&registrar::MODULE, "save", &["location"]),
            (&registrar::MODULE, "lookup", &["location"]),
            (&registrar::MODULE, "lookup", &["location", "sip:a@example.com"]),
            (&registrar::MODULE, "registered", &["location"]),
        ]);
    }
}
