//! Format strings: text with pseudo-variables in it.
//!
//! `xlog("L_INFO", "from $fu (IP:$si:$sp)\n")`, `log_prefix`, `append_hf`
//! and many module parameters take a string whose `$…` parts are evaluated
//! per message. The AST keeps such strings as written (the compiler knows
//! which arguments are formats); [`parse_format`] splits one into literal
//! text and [`Pv`] parts.
//!
//! Rules: `$$` is a literal `$`; `$` followed by a name, `(` or `?` starts a
//! pseudo-variable, whose name runs over letters, digits and `_` (so `$si:`
//! and `$fU.` end before the punctuation) and takes a `(…)` that follows at
//! once; any other `$` is literal.

use super::diag::Span;
use super::pv::{Pv, PvError, PvParser};

/// A string split into literal text and pseudo-variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Format {
    /// The parts in order.
    pub parts: Vec<FormatPart>,
}

/// One part of a [`Format`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatPart {
    /// Text copied as is.
    Literal(String),
    /// A pseudo-variable evaluated at run time.
    Pv(Pv),
}

impl Format {
    /// The text if the format holds no pseudo-variable.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                FormatPart::Literal(s) => out.push_str(s),
                FormatPart::Pv(_) => return None,
            }
        }
        Some(out)
    }

    /// The pseudo-variables in the format.
    pub fn pvs(&self) -> impl Iterator<Item = &Pv> {
        self.parts.iter().filter_map(|p| match p {
            FormatPart::Pv(pv) => Some(pv),
            FormatPart::Literal(_) => None,
        })
    }
}

/// Splits `text` (an already unescaped string value) into literal and
/// pseudo-variable parts. Pseudo-variables get a default span; use
/// [`parse_format_at`] to place them.
pub fn parse_format(text: &str) -> Result<Format, PvError> {
    parse_format_at(text, Span::default())
}

/// Like [`parse_format`], with each pseudo-variable's span set to `span`
/// moved right by its character offset in `text`.
pub fn parse_format_at(text: &str, span: Span) -> Result<Format, PvError> {
    parse_format_in(text, span, 0)
}

/// [`parse_format_at`] for text nested `depth` pseudo-variables deep.
pub(crate) fn parse_format_in(text: &str, span: Span, depth: usize) -> Result<Format, PvError> {
    let mut p = PvParser::nested_in(text, span, depth);
    let mut parts = Vec::new();
    let mut literal = String::new();
    while p.pos < p.chars.len() {
        let c = p.chars[p.pos];
        let next = p.chars.get(p.pos + 1).copied();
        match (c, next) {
            ('$', Some('$')) => {
                literal.push('$');
                p.pos += 2;
            }
            ('$', Some(n)) if n.is_ascii_alphabetic() || n == '_' || n == '(' || n == '?' => {
                if !literal.is_empty() {
                    parts.push(FormatPart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(FormatPart::Pv(p.scan()?));
            }
            _ => {
                literal.push(c);
                p.pos += 1;
            }
        }
    }
    if !literal.is_empty() {
        parts.push(FormatPart::Literal(literal));
    }
    Ok(Format { parts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Vec<String> {
        parse_format(text)
            .unwrap_or_else(|e| panic!("{text}: {e:?}"))
            .parts
            .into_iter()
            .map(|p| match p {
                FormatPart::Literal(s) => format!("L:{s}"),
                FormatPart::Pv(pv) => format!("P:{}", pv.raw),
            })
            .collect()
    }

    #[test]
    fn splits_text_and_pvs() {
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("plain", vec!["L:plain"]),
            ("", vec![]),
            ("$ru", vec!["P:$ru"]),
            (
                "request from $rm from $fu (IP:$si:$sp)\n",
                vec![
                    "L:request from ",
                    "P:$rm",
                    "L: from ",
                    "P:$fu",
                    "L: (IP:",
                    "P:$si",
                    "L::",
                    "P:$sp",
                    "L:)\n",
                ],
            ),
            (
                "{$mt $hdr(CSeq) $ci} ",
                vec![
                    "L:{",
                    "P:$mt",
                    "L: ",
                    "P:$hdr(CSeq)",
                    "L: ",
                    "P:$ci",
                    "L:} ",
                ],
            ),
            (
                "src_user=$fU;src_domain=$fd",
                vec!["L:src_user=", "P:$fU", "L:;src_domain=", "P:$fd"],
            ),
            (
                "new branch [$T_branch_idx] to $ru",
                vec!["L:new branch [", "P:$T_branch_idx", "L:] to ", "P:$ru"],
            ),
            ("cost $$5 and $ alone $", vec!["L:cost $5 and $ alone $"]),
            ("$(ru{uri.user})@x", vec!["P:$(ru{uri.user})", "L:@x"]),
            ("rc=$?", vec!["L:rc=", "P:$?"]),
        ];
        for (text, want) in cases {
            assert_eq!(shape(text), want, "{text:?}");
        }
    }

    #[test]
    fn literal_helpers() {
        assert_eq!(
            parse_format("a$$b").unwrap().as_literal().as_deref(),
            Some("a$b")
        );
        let f = parse_format("x $var(a) $ru").unwrap();
        assert_eq!(f.as_literal(), None);
        assert_eq!(f.pvs().count(), 2);
    }

    #[test]
    fn errors_have_offsets() {
        let e = parse_format("ok $hdr(Via").unwrap_err();
        assert_eq!(e.offset, 7);
        let e = parse_format("x $(ru{bad})").unwrap_err();
        assert!(e.message.contains("bad transformation"));
    }

    #[test]
    fn spans_are_shifted() {
        let base = Span::new(crate::script::diag::FileId(1), 4, 10);
        let f = parse_format_at("ab$ru", base).unwrap();
        let pv = f.pvs().next().unwrap();
        assert_eq!(pv.span, Span::new(base.file, 4, 12));
    }
}
