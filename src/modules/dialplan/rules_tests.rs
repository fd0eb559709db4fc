use super::*;

#[allow(clippy::too_many_arguments)]
fn row(
    dpid: i64,
    pr: i64,
    op: i64,
    m: &str,
    len: i64,
    subst: &str,
    repl: &str,
    attrs: &str,
) -> DialplanRow {
    DialplanRow {
        dpid,
        pr,
        match_op: op,
        match_exp: Some(m.into()),
        match_len: len,
        subst_exp: Some(subst.into()),
        repl_exp: Some(repl.into()),
        attrs: Some(attrs.into()),
    }
}

/// A message whose Request-URI is `sip:bob@example.com` and whose
/// variables all print as `V`.
struct Fake;

impl Subject for Fake {
    fn print(&self, f: &Format) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for p in &f.parts {
            match p {
                crate::script::format::FormatPart::Literal(s) => {
                    out.extend_from_slice(s.as_bytes())
                }
                crate::script::format::FormatPart::Pv(_) => out.push(b'V'),
            }
        }
        Some(out)
    }
    fn ruri(&self) -> Option<Vec<u8>> {
        Some(b"sip:bob@example.com".to_vec())
    }
}

fn out(rules: &Rules, id: i64, input: &str) -> Option<(String, String)> {
    let t = rules.set(id)?.translate(input.as_bytes(), true, &Fake)?;
    Some((String::from_utf8(t.output.unwrap()).unwrap(), t.attrs))
}

fn pair(o: &str, a: &str) -> Option<(String, String)> {
    Some((o.to_string(), a.to_string()))
}

#[test]
fn priority_then_length_then_any_length() {
    // Rows come by priority (the query orders them).
    let rules = Rules::build(
        &[
            row(1, 1, 1, "^0", 0, "^0(.*)$", "+49\\1", "national"),
            row(1, 2, 1, ".", 0, "", "other", "any"),
            row(1, 3, 2, "11?", 3, "", "service", "glob"),
            row(1, 5, 0, "110", 3, "", "emergency", "short"),
            row(2, 1, 1, "^\\+", 0, "^\\+(\\d+)$", "00\\1", ""),
        ],
        false,
    )
    .unwrap();
    // Rules of the input's length first, by priority; then those of any length.
    assert_eq!(out(&rules, 1, "110"), pair("service", "glob"));
    assert_eq!(out(&rules, 1, "1234"), pair("other", "any"));
    assert_eq!(out(&rules, 1, "0"), pair("+49", "national"));
    assert_eq!(out(&rules, 1, "030123"), pair("+4930123", "national"));
    assert_eq!(out(&rules, 2, "+4930"), pair("004930", ""));
    assert_eq!(out(&rules, 2, "4930"), None);
    assert!(rules.set(3).is_none());
    // Indexes: lengths rising, 0 last.
    let lens: Vec<i64> = rules
        .set(1)
        .unwrap()
        .indexes
        .iter()
        .map(|ix| ix.len)
        .collect();
    assert_eq!(lens, [3, 0]);
    assert_eq!(rules.len(), 5);
}

#[test]
fn equal_priorities_keep_the_database_order() {
    let rules = Rules::build(
        &[
            row(1, 1, 1, "1", 0, "", "first", ""),
            row(1, 1, 1, "1", 0, "", "second", ""),
        ],
        false,
    )
    .unwrap();
    assert_eq!(out(&rules, 1, "1").unwrap().0, "first");
}

#[test]
fn replacement_forms() {
    let rules = Rules::build(
        &[
            // Whole match, groups, a group that took no part, escapes, \u, variables.
            row(
                1,
                1,
                1,
                "^a",
                0,
                "^(a)(x)?(b+)",
                "[\\0|\\1|\\2|\\3]\\t\\\\",
                "",
            ),
            row(2, 1, 1, "^u", 0, "^u", "\\u;$rU", ""),
            // No subst_exp: the replacement is copied as written, escapes and all.
            row(3, 1, 1, "^r", 0, "", "raw\\n$rU", ""),
            // Empty replacement: an empty output.
            row(4, 1, 1, "^e", 0, "^e", "", "a=1"),
            // A trailing backslash stays.
            row(5, 1, 1, "^t", 0, "^(t)", "\\1\\", ""),
            // The subst_exp finds its match anywhere (a search); the output is only the replacement.
            row(6, 1, 1, "9", 0, "(9+)", "n\\1", ""),
        ],
        false,
    )
    .unwrap();
    assert_eq!(out(&rules, 1, "abbbc").unwrap().0, "[abbb|a||bbb]\t\\");
    assert_eq!(out(&rules, 2, "u1").unwrap().0, "sip:bob@example.com;V");
    assert_eq!(out(&rules, 3, "r").unwrap().0, "raw\\n$rU");
    assert_eq!(out(&rules, 4, "e"), pair("", "a=1"));
    assert_eq!(out(&rules, 5, "t").unwrap().0, "t\\");
    assert_eq!(out(&rules, 6, "1299934").unwrap().0, "n999");
    // No message (the control socket): variables and \u add nothing.
    let t = rules
        .set(2)
        .unwrap()
        .translate(b"u", true, &NoMessage)
        .unwrap();
    assert_eq!(t.output.unwrap(), b";");
}

#[test]
fn failures() {
    let rules = Rules::build(
        &[
            // Matches but the subst_exp does not: the translation fails (no fall-through).
            row(1, 1, 1, "^1", 0, "^2(.*)", "\\1", ""),
            row(1, 2, 1, "^1", 0, "", "never", ""),
            // An output that grows to 127 bytes through escapes fails.
            row(2, 1, 1, "^x", 0, "^(x+)$", "\\1", ""),
        ],
        false,
    )
    .unwrap();
    assert_eq!(out(&rules, 1, "123"), None);
    assert_eq!(out(&rules, 1, ""), None);
    assert_eq!(out(&rules, 2, &"x".repeat(126)).unwrap().0.len(), 126);
    assert_eq!(out(&rules, 2, &"x".repeat(127)), None);
    // Matching only: no output is built.
    let t = rules
        .set(1)
        .unwrap()
        .translate(b"123", false, &Fake)
        .unwrap();
    assert_eq!(t.output, None);
}

#[test]
fn bad_rows_fail_the_load() {
    let bad = [
        row(1, 1, 3, "x", 0, "", "", ""),
        row(1, 1, 1, "(x", 0, "", "", ""),
        row(1, 1, 0, "x", 0, "(y", "", ""),
        // \2 with a subst_exp of one group, or with none.
        row(1, 1, 0, "x", 0, "(y)", "\\2", ""),
        row(1, 1, 0, "x", 0, "", "\\1", ""),
        DialplanRow {
            attrs: None,
            ..row(1, 1, 0, "x", 0, "", "", "")
        },
    ];
    for r in bad {
        let e = Rules::build(&[row(9, 1, 0, "ok", 0, "", "", ""), r.clone()], false).unwrap_err();
        assert!(e.contains("dpid 1"), "{r:?}: {e}");
    }
    // \0 needs no group.
    assert!(Rules::build(&[row(1, 1, 0, "x", 0, "", "\\0", "")], false).is_ok());
}

#[test]
fn dynamic_expressions() {
    let rows = [
        row(
            1,
            1,
            1,
            "^$avp(s:prefix)",
            0,
            "^$avp(s:prefix)(.*)$",
            "\\1",
            "",
        ),
        row(1, 2, 1, "^12$", 0, "", "plain", ""),
    ];
    // Without match_dynamic `$avp(...)` is regex text (which here never matches).
    let rules = Rules::build(&rows, false).unwrap();
    assert_eq!(out(&rules, 1, "V77"), None);
    let rules = Rules::build(&rows, true).unwrap();
    assert_eq!(out(&rules, 1, "V77").unwrap().0, "77");
    let r = &rules.set(1).unwrap().indexes[0].rules;
    assert_eq!(r[0].subst_exp, "^$avp(s:prefix)(.*)$$");
    // No known variable: a plain expression.
    assert_eq!(r[1].match_exp, "^12$");
    assert_eq!(out(&rules, 1, "12").unwrap().0, "plain");
    // With no message a dynamic rule does not match.
    assert!(rules
        .set(1)
        .unwrap()
        .translate(b"V77", true, &NoMessage)
        .is_none());
}

mod any_input {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever a row holds and whatever comes in, loading gives a rule
        /// or an error, and translating gives an output or none: no panic.
        #[test]
        fn rows_and_inputs_never_panic(
            op in 0i64..3,
            m in "[\\^$a-c0-9()|\\\\.*+?\\[\\]]{0,12}",
            subst in "[\\^$a-c0-9()|\\\\.*+?]{0,12}",
            repl in "[a-c0-9\\\\$u(){}]{0,16}",
            input in proptest::collection::vec(any::<u8>(), 0..40),
            dynamic in any::<bool>(),
        ) {
            if let Ok(rules) = Rules::build(&[row(1, 1, op, &m, 0, &subst, &repl, "a")], dynamic) {
                if let Some(set) = rules.set(1) {
                    let _ = set.translate(&input, true, &Fake);
                    let _ = set.translate(&input, true, &NoMessage);
                }
            }
        }

        #[test]
        fn regex_group_files_never_panic(text in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = crate::modules::regex::group_patterns(&text, 20, 8192);
        }
    }
}
