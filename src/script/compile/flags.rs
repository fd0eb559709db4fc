//! `flags NAME[:bit], …` declarations: the names `setflag()`, `resetflag()`
//! and `isflagset()` accept in place of a number, as in Kamailio 5.6 — a
//! name without a bit takes the lowest bit no earlier declaration holds; a
//! name declared twice or a bit above 31 is an error; two names on one bit
//! are allowed (Kamailio only warns).

use std::collections::HashMap;

use crate::script::ast::FlagDecl;
use crate::script::diag::Diagnostic;
use crate::script::registry::{Arg, Args};

/// The message flags are numbered 0..=31.
const MAX_FLAG: u32 = 31;

/// The functions whose first argument may name a declared flag.
const FLAG_FUNCTIONS: &[&str] = &["setflag", "resetflag", "isflagset"];

/// The bit of each declared flag name; problems go to `diags` at the declaration.
pub(super) fn table(decls: &[FlagDecl], diags: &mut Vec<Diagnostic>) -> HashMap<String, i64> {
    let mut bits: HashMap<String, i64> = HashMap::new();
    let mut taken = 0u64;
    for d in decls {
        if bits.contains_key(&d.name) {
            diags.push(Diagnostic::new(
                d.span,
                format!("flag {} is already declared", d.name),
            ));
            continue;
        }
        let bit = match d.bit {
            Some(b) if b > MAX_FLAG => {
                diags.push(Diagnostic::new(
                    d.span,
                    format!("flag {}: bit {b} is out of 0..{MAX_FLAG}", d.name),
                ));
                continue;
            }
            Some(b) => b,
            None => match (0..=MAX_FLAG).find(|b| taken & (1 << b) == 0) {
                Some(b) => b,
                None => {
                    diags.push(Diagnostic::new(
                        d.span,
                        format!("flag {}: all 32 flags are declared already", d.name),
                    ));
                    continue;
                }
            },
        };
        taken |= 1 << bit;
        bits.insert(d.name.clone(), i64::from(bit));
    }
    bits
}

/// `setflag(NAME)` & co.: a declared name becomes its bit before the fixup.
pub(super) fn resolve(function: &str, args: &mut Args, bits: &HashMap<String, i64>) {
    if !FLAG_FUNCTIONS.contains(&function) {
        return;
    }
    if let Some(Arg::Str(s)) = args.0.first() {
        if let Some(bit) = std::str::from_utf8(s).ok().and_then(|n| bits.get(n)) {
            args.0[0] = Arg::Int(*bit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::diag::Span;

    fn decl(name: &str, bit: Option<u32>) -> FlagDecl {
        FlagDecl {
            name: name.into(),
            bit,
            span: Span::default(),
        }
    }

    #[test]
    fn names_get_their_bit_or_the_lowest_free_one() {
        let mut diags = Vec::new();
        let t = table(
            &[decl("A", Some(1)), decl("B", Some(2)), decl("C", None)],
            &mut diags,
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!((t["A"], t["B"], t["C"]), (1, 2, 0));
        // Two names on one bit: allowed.
        let t = table(&[decl("A", None), decl("B", Some(0))], &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!((t["A"], t["B"]), (0, 0));
    }

    #[test]
    fn a_name_twice_or_a_bit_above_31_is_an_error() {
        let mut diags = Vec::new();
        table(&[decl("A", Some(1)), decl("A", Some(2))], &mut diags);
        table(&[decl("A", Some(32))], &mut diags);
        assert_eq!(diags.len(), 2, "{diags:?}");
    }

    #[test]
    fn only_flag_functions_and_declared_names_are_resolved() {
        let bits = HashMap::from([("F".to_string(), 3)]);
        let mut a = Args(vec![Arg::Str("F".into())]);
        resolve("setflag", &mut a, &bits);
        assert!(matches!(a.0[0], Arg::Int(3)));
        let mut a = Args(vec![Arg::Str("F".into())]);
        resolve("xlog", &mut a, &bits);
        assert!(matches!(a.0[0], Arg::Str(_)));
        let mut a = Args(vec![Arg::Str("G".into())]);
        resolve("isflagset", &mut a, &bits);
        assert!(matches!(a.0[0], Arg::Str(_)));
    }
}
