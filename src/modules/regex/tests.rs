use std::sync::Arc;

use super::*;
use crate::modules::testutil::{call, run, Harness, INVITE};
use crate::script::registry::ParamValue;

fn params(list: &[(&str, ParamValue)]) -> ModParams {
    let mut p = ModParams::default();
    for (name, v) in list {
        p.push("regex", name, v.clone());
    }
    p
}

// Each group is wrapped as ((e1)|(e2)…), so in group 2 the expression's own
// first group is number 3.
const FILE: &str =
    "# carriers\n[0]\n^\\+49\n^0049\n\n[1]\n [ignored, starts with a space]\n[2]\n^(\\d)\\3\n";

#[test]
fn file_groups_are_joined_alternatives() {
    let p = group_patterns(FILE.as_bytes(), 20, 8192).unwrap();
    assert_eq!(p, ["((^\\+49)|(^0049))", "^$", "((^(\\d)\\3))"]);
    // The last line may lack its newline.
    assert_eq!(group_patterns(b"[a]\nabc", 20, 8192).unwrap(), ["((abc))"]);
    let err = group_patterns(b"abc\n[0]\n", 20, 8192).unwrap_err();
    assert!(err.contains("first group"), "{err}");
    assert!(group_patterns(b"# only comments\n", 20, 8192).is_err());
    assert!(group_patterns(b"[0]\n[1]\n[2]\n", 2, 8192).is_err());
    assert!(group_patterns(b"[0]\nabcdefghij\n", 20, 12).is_err());
}

#[test]
fn pcre_match_codes() {
    let mut h = Harness::new(INVITE);
    let mut ctx = h.ctx();
    let m = &MODULE;
    assert_eq!(
        run(&mut ctx, m, "pcre_match", &["+4930123", r"^\+(\d\d)"]),
        1
    );
    assert_eq!(run(&mut ctx, m, "pcre_match", &["0030", r"^00(?!30)"]), -1);
    assert_eq!(run(&mut ctx, m, "pcre_match", &["abc", "(unclosed"]), -4);
    // Case-sensitive unless the module has a file and pcre_caseless.
    assert_eq!(run(&mut ctx, m, "pcre_match", &["ABC", "^abc$"]), -1);
    let mp = params(&[("pcre_caseless", ParamValue::Int(1))]);
    assert_eq!(call(&mut ctx, m, "pcre_match", &["ABC", "^abc$"], &mp), -1);
    let mp = params(&[
        ("file", ParamValue::Str("/x".into())),
        ("pcre_caseless", ParamValue::Int(1)),
    ]);
    assert_eq!(call(&mut ctx, m, "pcre_match", &["ABC", "^abc$"], &mp), 1);
}

#[test]
fn pcre_match_group_codes_and_reload() {
    let mut h = Harness::new(INVITE);
    let mp = params(&[("file", ParamValue::Str("/etc/groups".into()))]);
    {
        let mut ctx = h.ctx();
        // No file: group matching is disabled.
        assert_eq!(run(&mut ctx, &MODULE, "pcre_match_group", &["+49"]), -2);
    }
    let groups = Arc::new(PcreGroups::new(&mp, "/etc/groups", FILE.as_bytes()).unwrap());
    h.env.services.insert(groups.clone());
    let mut ctx = h.ctx();
    let m = &MODULE;
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["+4930"]), 1);
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["004930", "0"]), 1);
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["+3330", "0"]), -1);
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["", "1"]), 1);
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["x", "1"]), -1);
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["5512", "2"]), 1);
    // Leading digits are the group number; none reads as 0.
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["5512", "2x"]), 1);
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["+49", "x"]), 1);
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["+49", "3"]), -4);
    // A reload swaps the groups; a bad file keeps the old ones.
    assert!(groups.reload(b"[0]\n(bad\n").is_err());
    assert_eq!(groups.len(), 3);
    assert_eq!(groups.reload(b"[0]\n^sip:\n").unwrap(), 1);
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["+4930"]), -1);
    assert_eq!(run(&mut ctx, m, "pcre_match_group", &["5512", "2"]), -4);
}
