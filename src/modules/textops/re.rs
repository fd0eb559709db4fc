//! Regular expressions and sed-like substitutions as textops takes them.
//!
//! Kamailio compiles POSIX extended expressions. `search`-like functions use
//! them case-insensitive and newline-aware (`^`/`$` at line ends, `.` never
//! crosses a line); a `subst` expression `/re/repl/flags` is case-sensitive
//! unless flag `i`, replaces the first match unless flag `g`, and is
//! newline-aware unless flag `s`. The Rust `regex` crate reads the POSIX
//! syntax used in configurations (classes like `[[:digit:]]` included) and
//! works on bytes here, so any message can be searched.

use std::borrow::Cow;
use std::ops::Range;

use regex::bytes::{Regex, RegexBuilder};

use crate::script::ctx::MsgCtx;
use crate::script::ir::FormatPart;
use crate::script::pvkind::PvRef;
use crate::script::registry::{Arg, Args};

/// Compiles `pattern` on bytes (ASCII case folding), falling back to Unicode
/// mode for a pattern that needs it.
pub fn compile(pattern: &str, icase: bool, multiline: bool) -> Result<Regex, String> {
    let build = |unicode| {
        RegexBuilder::new(pattern)
            .case_insensitive(icase)
            .multi_line(multiline)
            .dot_matches_new_line(!multiline)
            .unicode(unicode)
            .build()
    };
    build(false)
        .or_else(|_| build(true))
        .map_err(|e| format!("bad regular expression \"{pattern}\": {e}"))
}

/// Fixup: argument `i` is compiled once when it is a constant (search
/// semantics: case-insensitive, newline-aware); one with variables is
/// compiled per message by [`regex_arg`].
pub fn fixup_regex(args: &mut Args, i: usize) -> Result<(), String> {
    if let Some(Arg::Str(s)) = args.get(i) {
        let pattern = std::str::from_utf8(s).map_err(|_| "the regular expression is not text")?;
        let re = compile(pattern, true, true)?;
        args.0[i] = Arg::Custom(Box::new(re));
    }
    Ok(())
}

/// The regular expression of argument `i`.
pub fn regex_arg<'a>(ctx: &MsgCtx<'_>, args: &'a Args, i: usize) -> Option<Cow<'a, Regex>> {
    if let Some(re) = args.custom::<Regex>(i) {
        return Some(Cow::Borrowed(re));
    }
    let text = args.str(ctx, i);
    let pattern = std::str::from_utf8(&text).ok()?;
    match compile(pattern, true, true) {
        Ok(re) => Some(Cow::Owned(re)),
        Err(e) => {
            log::warn!("{e}");
            None
        }
    }
}

/// One piece of a replacement text.
#[derive(Debug, Clone)]
enum Piece {
    Lit(Vec<u8>),
    /// `\0`..`\9`: a capture group (0 = the whole match).
    Group(usize),
    Pv(PvRef),
}

/// A parsed `/re/repl/flags` expression.
#[derive(Debug, Clone)]
pub struct Subst {
    re: Regex,
    repl: Vec<Piece>,
    global: bool,
}

/// A character of the expression as written, or a variable in it.
enum Item {
    Byte(u8),
    Pv(PvRef),
}

impl Subst {
    /// Parses a constant expression or one with variables in the replacement.
    pub fn from_arg(arg: &Arg) -> Result<Subst, String> {
        let items: Vec<Item> = match arg {
            Arg::Str(s) => s.iter().map(|&b| Item::Byte(b)).collect(),
            Arg::Fmt(f) => f
                .parts
                .iter()
                .flat_map(|p| match p {
                    FormatPart::Lit(b) => b.iter().map(|&b| Item::Byte(b)).collect::<Vec<_>>(),
                    FormatPart::Pv(pv) => vec![Item::Pv(pv.clone())],
                })
                .collect(),
            _ => return Err("the substitution must be a string like /re/repl/flags".into()),
        };
        Subst::parse(&items)
    }

    /// Parses `text` (tests).
    #[cfg(test)]
    pub fn parse_str(text: &str) -> Result<Subst, String> {
        let items: Vec<Item> = text.bytes().map(Item::Byte).collect();
        Subst::parse(&items)
    }

    fn parse(items: &[Item]) -> Result<Subst, String> {
        let sep = match items.first() {
            Some(Item::Byte(b)) if !b.is_ascii_alphanumeric() && *b != b'\\' => *b,
            _ => return Err("a substitution starts with its separator, as in /re/repl/".into()),
        };
        // The expression: up to the next unescaped separator; `\sep` is the separator itself.
        let mut pattern = Vec::new();
        let mut i = 1;
        loop {
            match items.get(i) {
                None => return Err("the substitution has no replacement part".into()),
                Some(Item::Pv(_)) => {
                    return Err("variables are not allowed in the regular expression".into())
                }
                Some(Item::Byte(b'\\')) if matches!(items.get(i + 1), Some(Item::Byte(b)) if *b == sep) =>
                {
                    pattern.push(sep);
                    i += 2;
                }
                Some(Item::Byte(b)) if *b == sep => break,
                Some(Item::Byte(b)) => {
                    pattern.push(*b);
                    i += 1;
                }
            }
        }
        i += 1;
        let mut repl = Vec::new();
        let mut lit = Vec::new();
        let mut closed = false;
        while let Some(item) = items.get(i) {
            match item {
                Item::Pv(pv) => {
                    flush(&mut lit, &mut repl);
                    repl.push(Piece::Pv(pv.clone()));
                }
                Item::Byte(b'\\') => {
                    i += 1;
                    match items.get(i) {
                        Some(Item::Byte(d)) if d.is_ascii_digit() => {
                            flush(&mut lit, &mut repl);
                            repl.push(Piece::Group(usize::from(d - b'0')));
                        }
                        Some(Item::Byte(b'n')) => lit.push(b'\n'),
                        Some(Item::Byte(b'r')) => lit.push(b'\r'),
                        Some(Item::Byte(b't')) => lit.push(b'\t'),
                        Some(Item::Byte(c)) => lit.push(*c),
                        Some(Item::Pv(_)) | None => lit.push(b'\\'),
                    }
                    if matches!(items.get(i), Some(Item::Pv(_))) {
                        continue;
                    }
                }
                Item::Byte(b) if *b == sep => {
                    closed = true;
                    i += 1;
                    break;
                }
                Item::Byte(b) => lit.push(*b),
            }
            i += 1;
        }
        if !closed {
            return Err("the substitution does not end with its separator".into());
        }
        flush(&mut lit, &mut repl);
        let (mut icase, mut global, mut single_line) = (false, false, false);
        for item in &items[i..] {
            match item {
                Item::Byte(b'i') => icase = true,
                Item::Byte(b'g') => global = true,
                Item::Byte(b's') => single_line = true,
                Item::Byte(c) => return Err(format!("unknown substitution flag '{}'", *c as char)),
                Item::Pv(_) => return Err("variables are not allowed in the flags".into()),
            }
        }
        let pattern =
            String::from_utf8(pattern).map_err(|_| "the regular expression is not text")?;
        let re = compile(&pattern, icase, !single_line)?;
        if let Some(n) = repl.iter().find_map(|p| match p {
            Piece::Group(n) if *n >= re.captures_len() => Some(*n),
            _ => None,
        }) {
            return Err(format!("\\{n} names a group the expression does not have"));
        }
        Ok(Subst { re, repl, global })
    }

    /// The matches in `text` (the first only unless global) with their replacements.
    pub fn apply(&self, ctx: &MsgCtx<'_>, text: &[u8]) -> Vec<(Range<usize>, Vec<u8>)> {
        let mut out = Vec::new();
        for caps in self.re.captures_iter(text) {
            let Some(whole) = caps.get(0) else { continue };
            let mut r = Vec::new();
            for piece in &self.repl {
                match piece {
                    Piece::Lit(b) => r.extend_from_slice(b),
                    Piece::Group(n) => {
                        if let Some(m) = caps.get(*n) {
                            r.extend_from_slice(m.as_bytes());
                        }
                    }
                    Piece::Pv(pv) => ctx.read_pv(pv).write_to(&mut r),
                }
            }
            out.push((whole.range(), r));
            if !self.global {
                break;
            }
        }
        out
    }

    /// `text` with the replacements made, or `None` when nothing matched.
    pub fn replace(&self, ctx: &MsgCtx<'_>, text: &[u8]) -> Option<Vec<u8>> {
        let edits = self.apply(ctx, text);
        if edits.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(text.len());
        let mut pos = 0;
        for (range, r) in edits {
            out.extend_from_slice(&text[pos..range.start]);
            out.extend_from_slice(&r);
            pos = range.end;
        }
        out.extend_from_slice(&text[pos..]);
        Some(out)
    }
}

fn flush(lit: &mut Vec<u8>, repl: &mut Vec<Piece>) {
    if !lit.is_empty() {
        repl.push(Piece::Lit(std::mem::take(lit)));
    }
}

/// Fixup: argument `i` is a substitution expression, parsed once.
pub fn fixup_subst(args: &mut Args, i: usize) -> Result<(), String> {
    let arg = args.get(i).ok_or("the substitution is missing")?;
    let subst = Subst::from_arg(arg)?;
    args.0[i] = Arg::Custom(Box::new(subst));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{Harness, INVITE};

    fn sub(expr: &str, text: &str) -> Option<String> {
        let s = Subst::parse_str(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let mut h = Harness::new(INVITE);
        let ctx = h.ctx();
        s.replace(&ctx, text.as_bytes())
            .map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn substitutions() {
        assert_eq!(sub("/a/b/", "aaa"), Some("baa".into()));
        assert_eq!(sub("/a/b/g", "aaa"), Some("bbb".into()));
        assert_eq!(sub("/A/b/", "aaa"), None);
        assert_eq!(sub("/A/b/i", "aaa"), Some("baa".into()));
        assert_eq!(
            sub("/^sip:([0-9]+)@(.*)$/sip:00\\1@\\2/", "sip:123@h"),
            Some("sip:00123@h".into())
        );
        assert_eq!(sub("#/#|#", "a/b"), Some("a|b".into()));
        assert_eq!(sub("/\\//|/", "a/b"), Some("a|b".into()));
        assert_eq!(sub("/x/\\0\\0/", "x"), Some("xx".into()));
        assert_eq!(sub("/[[:digit:]]+/N/", "ab12c"), Some("abNc".into()));
    }

    #[test]
    fn newline_awareness() {
        assert_eq!(sub("/^b/X/", "a\nb"), Some("a\nX".into()));
        assert_eq!(sub("/a.b/X/", "a\nb"), None);
        assert_eq!(sub("/a.b/X/s", "a\nb"), Some("X".into()));
    }

    #[test]
    fn bad_expressions() {
        for bad in ["", "abc", "/a/b", "/a", "/a/b/q", "/(/x/", "/a/\\1/"] {
            assert!(Subst::parse_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_regex_is_case_insensitive_and_byte_safe() {
        let re = compile("^from:.*alice", true, true).unwrap();
        assert!(re.is_match(b"To: x\r\nFROM: <sip:ALICE@x>\r\n"));
        assert!(re.is_match(b"\xff\xfe\nfrom: alice"));
    }
}
