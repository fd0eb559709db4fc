//! Perl-compatible regular expressions as Kamailio's `regex` and `dialplan`
//! modules run them: PCRE2 (the `pcre2` crate, the same engine Kamailio
//! links), on bytes, not UTF-8 mode, so any input can be matched and `.`
//! is one byte. A search is unanchored unless the pattern anchors itself;
//! `$` also matches before a final newline, as in Perl.

use std::fmt;

use pcre2::bytes::{Regex, RegexBuilder};

/// The compile options of the regex module (`pcre_caseless`…); dialplan uses none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcreOptions {
    pub caseless: bool,
    pub multiline: bool,
    pub dotall: bool,
    pub extended: bool,
}

/// A compiled expression.
#[derive(Clone)]
pub struct Pcre {
    re: Regex,
}

impl fmt::Debug for Pcre {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pcre({:?})", self.re.as_str())
    }
}

/// Where each group of one match is, by number (0: the whole match); `None`
/// for a group that took no part in it.
pub type Groups = Vec<Option<(usize, usize)>>;

impl Pcre {
    /// Compiles `pattern`; the error is PCRE's message with the offset.
    pub fn compile(pattern: &str, opts: PcreOptions) -> Result<Pcre, String> {
        RegexBuilder::new()
            .caseless(opts.caseless)
            .multi_line(opts.multiline)
            .dotall(opts.dotall)
            .extended(opts.extended)
            .jit_if_available(true)
            .build(pattern)
            .map(|re| Pcre { re })
            .map_err(|e| format!("PCRE compilation of '{pattern}' failed: {e}"))
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        self.re.as_str()
    }

    /// How many capturing groups the pattern has (not counting the whole match).
    pub fn group_count(&self) -> usize {
        self.re.captures_len().saturating_sub(1)
    }

    /// Whether `subject` has a match. A match that PCRE gives up on (its
    /// backtracking limit) counts as no match, as Kamailio treats any
    /// negative result of the match call.
    pub fn is_match(&self, subject: &[u8]) -> bool {
        self.re.is_match(subject).unwrap_or(false)
    }

    /// The groups of the first match in `subject`, if any.
    pub fn groups(&self, subject: &[u8]) -> Option<Groups> {
        let mut locs = self.re.capture_locations();
        match self.re.captures_read(&mut locs, subject) {
            Ok(Some(_)) => Some((0..locs.len()).map(|i| locs.get(i)).collect()),
            Ok(None) | Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Pcre {
        Pcre::compile(p, PcreOptions::default()).unwrap()
    }

    #[test]
    fn perl_features_on_bytes() {
        // Backreference and look-ahead, which POSIX and the regex crate lack.
        assert!(re(r"^(\d)\1").is_match(b"55123"));
        assert!(!re(r"^(\d)\1").is_match(b"56123"));
        assert!(re(r"^00(?!49)").is_match(b"0033"));
        assert!(!re(r"^00(?!49)").is_match(b"0049"));
        assert!(re(r"(?<=\+)49").is_match(b"+4930"));
        // Unanchored search; `$` before a final newline; bytes that are not UTF-8.
        assert!(re("23").is_match(b"1234"));
        assert!(re("^123$").is_match(b"123\n"));
        assert!(re("^a.b$").is_match(b"a\xffb"));
        assert!(!re("^abc$").is_match(b"ABC"));
    }

    #[test]
    fn options() {
        let o = |caseless, multiline, dotall, extended| PcreOptions {
            caseless,
            multiline,
            dotall,
            extended,
        };
        let c = |p: &str, opts| Pcre::compile(p, opts).unwrap();
        assert!(c("^abc$", o(true, false, false, false)).is_match(b"ABC"));
        assert!(c("^b$", o(false, true, false, false)).is_match(b"a\nb\nc"));
        assert!(!c("^b$", o(false, false, false, false)).is_match(b"a\nb\nc"));
        assert!(c("a.b", o(false, false, true, false)).is_match(b"a\nb"));
        assert!(!c("a.b", o(false, false, false, false)).is_match(b"a\nb"));
        assert!(c("a b c # comment", o(false, false, false, true)).is_match(b"abc"));
    }

    #[test]
    fn groups_and_errors() {
        let r = re(r"^(\+|00)?(49)?(\d+)(x)?$");
        assert_eq!(r.group_count(), 4);
        let g = r.groups(b"+4930123").unwrap();
        assert_eq!(g[0], Some((0, 8)));
        assert_eq!(g[1], Some((0, 1)));
        assert_eq!(g[3], Some((3, 8)));
        assert_eq!(g[4], None);
        assert!(r.groups(b"abc").is_none());
        let e = Pcre::compile("(unclosed", PcreOptions::default()).unwrap_err();
        assert!(e.contains("(unclosed"), "{e}");
    }
}
