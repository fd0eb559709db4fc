//! A dialplan `repl_exp`: text with `\0`..`\9` (groups of `subst_exp`'s
//! match), `\u` (the Request-URI), `\n`, `\r`, `\t`, `\\`, `\$` and any other
//! escaped character as itself, and pseudo-variables (`$rU`, `$avp(x)`…)
//! read per message. As Kamailio keeps it: the text as written plus the
//! list of escapes and variables in it, with their offsets; what lies between
//! them is copied as it is (a lone `\` at the very end stays a `\`).

use crate::script::format::{Format, FormatPart};
use crate::script::pv::PvParser;

/// Kamailio's limit on escapes and variables in one replacement.
pub const MAX_TOKENS: usize = 100;

/// One escape or variable of a replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// `\0`..`\9`: a group of the match (0: the whole match).
    Group(usize),
    /// A character: `\n`, `\\`, `\x`…
    Char(u8),
    /// `\u`: the Request-URI.
    Uri,
    /// A pseudo-variable, as a format of one variable.
    Pv(Format),
}

/// One token and where it is in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub offset: usize,
    pub size: usize,
    pub token: Token,
}

/// A parsed replacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repl {
    pub text: Vec<u8>,
    pub tokens: Vec<Placed>,
    /// The highest group number referred to (0 when none).
    pub max_group: usize,
}

impl Repl {
    pub fn parse(text: &str) -> Result<Repl, String> {
        let bytes = text.as_bytes();
        let mut tokens = Vec::new();
        let mut max_group = 0;
        let mut i = 0;
        while i < bytes.len() {
            let (size, token) = match bytes[i] {
                b'\\' if i + 1 < bytes.len() => {
                    let token = match bytes[i + 1] {
                        b'n' => Token::Char(b'\n'),
                        b'r' => Token::Char(b'\r'),
                        b't' => Token::Char(b'\t'),
                        b'u' => Token::Uri,
                        d @ b'0'..=b'9' => {
                            let n = usize::from(d - b'0');
                            max_group = max_group.max(n);
                            Token::Group(n)
                        }
                        c => Token::Char(c),
                    };
                    (2, token)
                }
                b'$' => {
                    let rest = &text[i..];
                    let mut p = PvParser::new(rest, Default::default());
                    let pv = p
                        .scan()
                        .map_err(|e| format!("bad variable in \"{text}\": {}", e.message))?;
                    let size: usize = rest.chars().take(p.pos).map(char::len_utf8).sum();
                    (
                        size.max(1),
                        Token::Pv(Format {
                            parts: vec![FormatPart::Pv(pv)],
                        }),
                    )
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            tokens.push(Placed {
                offset: i,
                size,
                token,
            });
            if tokens.len() >= MAX_TOKENS {
                return Err(format!("too many escapes in \"{text}\""));
            }
            i += size;
        }
        Ok(Repl {
            text: bytes.to_vec(),
            tokens,
            max_group,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_groups_and_variables() {
        let r = Repl::parse(r"+49\1-\0\n\\\$x\u$rU.$avp(s:p)\q").unwrap();
        let kinds: Vec<String> = r
            .tokens
            .iter()
            .map(|t| match &t.token {
                Token::Group(n) => format!("g{n}@{}", t.offset),
                Token::Char(c) => format!("c{}@{}", *c as char, t.offset),
                Token::Uri => format!("u@{}", t.offset),
                Token::Pv(f) => match &f.parts[0] {
                    FormatPart::Pv(pv) => format!("{}@{}+{}", pv.raw, t.offset, t.size),
                    FormatPart::Literal(_) => unreachable!(),
                },
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "g1@3",
                "g0@6",
                "c\n@8",
                "c\\@10",
                "c$@12",
                "u@15",
                "$rU@17+3",
                "$avp(s:p)@21+9",
                "cq@30"
            ]
        );
        assert_eq!(r.max_group, 1);
        // A lone backslash at the end is no escape.
        let r = Repl::parse("ab\\").unwrap();
        assert!(r.tokens.is_empty());
        assert!(Repl::parse("$(").is_err());
    }
}
