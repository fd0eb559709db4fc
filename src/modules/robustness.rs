//! Property test: the functions of core, kex, textops, textopsx, siputils,
//! sanity and uac never panic, whatever the header values and arguments, and the
//! message with their edits serializes; without the whole-message text
//! functions (which may rewrite anything, as in Kamailio) it still parses.

use proptest::prelude::*;

use crate::modules::testutil::{fixed, Harness};
use crate::script::registry::{ModParams, ModuleDef};

/// `(module, function, argument count)` to try; every argument is a random string.
const CALLS: &[(&str, &str, usize)] = &[
    ("core", "strip", 1),
    ("core", "strip_tail", 1),
    ("core", "prefix", 1),
    ("core", "rewritehost", 1),
    ("core", "rewritehostport", 1),
    ("core", "rewritehostporttrans", 1),
    ("core", "rewriteport", 1),
    ("core", "rewriteuser", 1),
    ("core", "rewriteuserpass", 1),
    ("core", "userphone", 0),
    ("core", "force_rport", 0),
    ("kex", "is_myself", 1),
    ("kex", "setdsturi", 1),
    ("textops", "search", 1),
    ("textops", "search_hf", 3),
    ("textops", "search_append", 2),
    ("textops", "replace_all", 2),
    ("textops", "subst", 1),
    ("textops", "subst_uri", 1),
    ("textops", "subst_user", 1),
    ("textops", "subst_body", 1),
    ("textops", "append_hf", 2),
    ("textops", "insert_hf", 2),
    ("textops", "remove_hf", 1),
    ("textops", "remove_hf_re", 1),
    ("textops", "in_list", 3),
    ("textopsx", "fnmatch", 3),
    ("textopsx", "keep_hf", 1),
    ("siputils", "uri_param", 2),
    ("siputils", "add_uri_param", 1),
    ("siputils", "uri_param_rm", 1),
    ("siputils", "is_first_hop", 0),
    ("siputils", "has_totag", 0),
    ("siputils", "cmp_uri", 2),
    ("siputils", "cmp_aor", 2),
    ("siputils", "is_gruu", 1),
    ("siputils", "options_reply", 0),
    ("sanity", "sanity_check", 2),
    ("uac", "uac_replace_from", 2),
    ("uac", "uac_replace_from", 1),
    ("uac", "uac_replace_to", 2),
    ("uac", "uac_replace_to", 1),
    ("uac", "uac_restore_from", 0),
    ("uac", "uac_restore_to", 0),
];

fn module(name: &str) -> &'static ModuleDef {
    crate::modules::find(name).expect("module exists")
}

/// Text without line ends, so an added header stays one line.
fn field() -> impl Strategy<Value = String> {
    "[ -~]{0,40}"
}

proptest! {
    #![proptest_config(crate::proptest_config(300))]

    #[test]
    fn functions_never_panic(
        ruri in "[!-~]{1,40}",
        to in field(),
        contact in field(),
        pick in proptest::collection::vec((0..CALLS.len(), proptest::collection::vec(field(), 3)), 1..6),
    ) {
        let text = format!(
            "INVITE {ruri} SIP/2.0\nVia: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK1\nTo: {to}\nFrom: <sip:a@b>;tag=1\nCall-ID: c\nCSeq: 1 INVITE\nContact: {contact}\nContent-Length: 0\n\n"
        );
        let Ok(msg) = crate::sip::Message::parse(bytes::Bytes::from(text.replace('\n', "\r\n"))) else {
            return Ok(());
        };
        let mut h = Harness::new(&text);
        h.msg = msg;
        let mut ctx = h.ctx();
        let params = ModParams::default();
        let mut free_text = false;
        for (i, args) in pick {
            let (m, f, n) = CALLS[i];
            // uac writes a display name as given (Kamailio adds no quotes).
            free_text |= matches!(
                f,
                "search_append" | "replace_all" | "subst" | "subst_body" | "uac_replace_from" | "uac_replace_to"
            );
            let strs: Vec<&str> = args.iter().take(n).map(String::as_str).collect();
            let m = module(m);
            let Ok(args) = fixed(m, f, &strs, &params) else { continue };
            let def = m.function(f).expect("function exists");
            let _ = (def.call)(&mut ctx, &args);
        }
        let mut edits = ctx.edits.clone();
        if let Some(uri) = &ctx.new_uri {
            edits.set_request_uri(ctx.msg, uri.clone());
        }
        let mut out = Vec::new();
        crate::sip::serialize(ctx.msg, &edits, &mut out);
        let parsed = crate::sip::Message::parse(bytes::Bytes::from(out));
        prop_assert!(free_text || parsed.is_ok(), "{parsed:?}");
    }
}
