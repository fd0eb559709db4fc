//! Pseudo-variables, parsed into their parts.
//!
//! Forms (Kamailio 5.6 `pv` core syntax):
//! * `$name` — `$ru`, `$T_reply_code`, `$?`;
//! * `$name(inner)` — `$hdr(Via)`, `$var(x)`, `$avp(i:1)`, `$xavp(a[0]=>b)`,
//!   `$sht(table=>$si)`, `$sel(via[1].host)`, `$TV(s)`;
//! * `$(name(inner)[index]{class.op,param,…}{…})` — the enclosed form, the
//!   only one that takes an index or transformations.
//!
//! Transformation parameters are a nested pseudo-variable (`$var(n)`), a
//! double-quoted string (which may hold commas and `\` escapes), or plain
//! text up to the next `,` or `}` in which `\` escapes one character; plain
//! text that is a whole integer is an integer.

use super::diag::Span;
use super::format::{self, Format};

/// A pseudo-variable as written in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pv {
    /// Exactly as written, e.g. `$(hdr(Via)[-1]{s.len})`.
    pub raw: String,
    /// The class name: `ru`, `hdr`, `avp`, `?` …
    pub name: String,
    /// What is inside `name(...)`, if anything.
    pub inner: Option<PvName>,
    /// `[index]` of the enclosed form.
    pub index: Option<PvIndex>,
    /// Transformations, applied left to right.
    pub transforms: Vec<Transform>,
    /// Where it was written.
    pub span: Span,
}

/// The part inside `$class(...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvName {
    /// A fixed name: `$hdr(Via)` → `Via`, `$sel(via[1].host)` → `via[1].host`.
    Text(String),
    /// A name computed from other pseudo-variables: `$hdr($var(h))`.
    Dynamic(Format),
    /// `$avp(i:1)`, `$avp(s:x)`, `$avp(x)`.
    Avp(AvpName),
    /// `$xavp(a[0]=>b[1])`: the root and child names with their indexes.
    Xavp(Vec<XavpSegment>),
    /// `$sht(table=>key)`: the key is a format (may hold pseudo-variables).
    Htable {
        /// Hash table name.
        table: String,
        /// Item key.
        key: Format,
    },
}

/// An AVP name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AvpName {
    /// `i:N`
    Int(i64),
    /// `s:name` or a plain `name`.
    Str(String),
    /// A name taken from another pseudo-variable: `$avp($var(n))`.
    Dynamic(Format),
}

/// One level of an `$xavp(...)` path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XavpSegment {
    /// The name at this level.
    pub name: String,
    /// `[index]` at this level.
    pub index: Option<PvIndex>,
}

/// An index: `[2]`, `[-1]`, `[*]`, `[$var(i)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvIndex {
    /// A fixed position; negative counts from the end.
    Int(i64),
    /// `[*]`: all values.
    All,
    /// A position computed at run time.
    Pv(Box<Pv>),
}

/// A transformation `{class.op,param,…}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    /// `s`, `uri`, `param`, `tobody` …
    pub class: String,
    /// `len`, `select`, `encode.base64` …
    pub op: String,
    /// Parameters after the name.
    pub params: Vec<TrParam>,
}

/// A transformation parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrParam {
    /// Text (quoted or plain), escapes decoded.
    Str(String),
    /// A whole integer.
    Int(i64),
    /// A pseudo-variable evaluated at run time.
    Pv(Pv),
}

/// A syntax error inside a pseudo-variable or format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvError {
    /// Character offset of the problem in the text that was parsed.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses one whole pseudo-variable (`raw` starts with `$` and holds nothing
/// after it). `span` is where `raw` was written.
pub fn parse_pv(raw: &str, span: Span) -> Result<Pv, PvError> {
    let mut p = PvParser::new(raw, span);
    let pv = p.scan()?;
    if p.pos < p.chars.len() {
        return Err(p.error("unexpected text after the pseudo-variable"));
    }
    Ok(pv)
}

/// Recursive-descent parser over the characters of a pseudo-variable.
pub(crate) struct PvParser {
    pub(crate) chars: Vec<char>,
    pub(crate) pos: usize,
    span: Span,
    depth: usize,
}

/// Deepest nesting of pseudo-variables inside each other.
const MAX_PV_DEPTH: usize = 32;

impl PvParser {
    pub(crate) fn new(text: &str, span: Span) -> Self {
        Self::nested_in(text, span, 0)
    }

    /// A parser for text found inside a pseudo-variable `depth` levels deep.
    pub(crate) fn nested_in(text: &str, span: Span, depth: usize) -> Self {
        PvParser {
            chars: text.chars().collect(),
            pos: 0,
            span,
            depth,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn error(&self, message: impl Into<String>) -> PvError {
        PvError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars[from..to].iter().collect()
    }

    /// Parses a pseudo-variable starting at `pos` (on its `$`).
    pub(crate) fn scan(&mut self) -> Result<Pv, PvError> {
        if self.depth >= MAX_PV_DEPTH {
            return Err(self.error("pseudo-variables nested too deep"));
        }
        self.depth += 1;
        let pv = self.scan_inner();
        self.depth -= 1;
        pv
    }

    fn scan_inner(&mut self) -> Result<Pv, PvError> {
        let start = self.pos;
        if !self.eat('$') {
            return Err(self.error("expected '$'"));
        }
        let span = self.span.shifted(start);
        let mut pv = if self.eat('(') {
            let mut pv = self.name_and_inner(span)?;
            if self.eat('[') {
                pv.index = Some(self.index(']')?);
            }
            while self.peek() == Some('{') {
                pv.transforms.push(self.transform()?);
            }
            if !self.eat(')') {
                return Err(self.error("expected ')' to close '$('"));
            }
            pv
        } else if self.eat('?') {
            Pv {
                raw: String::new(),
                name: "?".to_string(),
                inner: None,
                index: None,
                transforms: Vec::new(),
                span,
            }
        } else {
            self.name_and_inner(span)?
        };
        pv.raw = self.text(start, self.pos);
        Ok(pv)
    }

    fn name_and_inner(&mut self, span: Span) -> Result<Pv, PvError> {
        let name_start = self.pos;
        if !matches!(self.peek(), Some(c) if c.is_ascii_alphabetic() || c == '_') {
            return Err(self.error("expected a pseudo-variable name"));
        }
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
            self.pos += 1;
        }
        let name = self.text(name_start, self.pos);
        let inner = if self.peek() == Some('(') {
            let open = self.pos;
            self.pos += 1;
            let inner_start = self.pos;
            let mut depth = 1usize;
            while depth > 0 {
                match self.peek() {
                    Some('(') => depth += 1,
                    Some(')') => depth -= 1,
                    Some(_) => {}
                    None => {
                        self.pos = open;
                        return Err(self.error(format!("missing ')' after '${name}('")));
                    }
                }
                self.pos += 1;
            }
            let inner = self.text(inner_start, self.pos - 1);
            if inner.trim().is_empty() {
                self.pos = open;
                return Err(self.error(format!("empty name in '${name}()'")));
            }
            let inner_span = self.span.shifted(inner_start);
            Some(
                interpret_inner(&name, &inner, inner_span, self.depth).map_err(|e| PvError {
                    offset: inner_start + e.offset,
                    message: e.message,
                })?,
            )
        } else {
            None
        };
        Ok(Pv {
            raw: String::new(),
            name,
            inner,
            index: None,
            transforms: Vec::new(),
            span,
        })
    }

    /// An index up to `close` (the opening bracket is consumed).
    fn index(&mut self, close: char) -> Result<PvIndex, PvError> {
        let start = self.pos;
        let index = if self.peek() == Some('$') {
            PvIndex::Pv(Box::new(self.scan()?))
        } else {
            while matches!(self.peek(), Some(c) if c != close) {
                self.pos += 1;
            }
            let text = self.text(start, self.pos);
            match text.trim() {
                "*" => PvIndex::All,
                t => match t.parse::<i64>() {
                    Ok(n) => PvIndex::Int(n),
                    Err(_) => {
                        self.pos = start;
                        return Err(self.error(format!(
                            "bad index '{text}': expected a number, '*' or a pseudo-variable"
                        )));
                    }
                },
            }
        };
        if !self.eat(close) {
            return Err(self.error(format!("expected '{close}' to close the index")));
        }
        Ok(index)
    }

    fn transform(&mut self) -> Result<Transform, PvError> {
        let open = self.pos;
        self.pos += 1; // '{'
        let name_start = self.pos;
        while matches!(self.peek(), Some(c) if c != ',' && c != '}') {
            self.pos += 1;
        }
        let full = self.text(name_start, self.pos);
        let Some((class, op)) = full
            .split_once('.')
            .filter(|(c, o)| !c.is_empty() && !o.is_empty())
        else {
            self.pos = name_start;
            return Err(self.error(format!(
                "bad transformation '{{{full}': expected '{{class.name' such as '{{s.len}}'"
            )));
        };
        let (class, op) = (class.trim().to_string(), op.trim().to_string());
        let mut params = Vec::new();
        while self.eat(',') {
            params.push(self.tr_param()?);
        }
        if !self.eat('}') {
            self.pos = open;
            return Err(self.error("transformation is not closed with '}'"));
        }
        Ok(Transform { class, op, params })
    }

    fn tr_param(&mut self) -> Result<TrParam, PvError> {
        match self.peek() {
            Some('$') => {
                let pv = self.scan()?;
                if !matches!(self.peek(), Some(',' | '}')) {
                    return Err(self.error("unexpected text after a pseudo-variable parameter"));
                }
                Ok(TrParam::Pv(pv))
            }
            Some('"') => {
                let open = self.pos;
                self.pos += 1;
                let mut value = String::new();
                loop {
                    match self.peek() {
                        Some('"') => {
                            self.pos += 1;
                            break;
                        }
                        Some('\\') => {
                            self.pos += 1;
                            match self.peek() {
                                Some('n') => value.push('\n'),
                                Some('r') => value.push('\r'),
                                Some('t') => value.push('\t'),
                                Some(c) => value.push(c),
                                None => break,
                            }
                            self.pos += 1;
                        }
                        Some(c) => {
                            value.push(c);
                            self.pos += 1;
                        }
                        None => {
                            self.pos = open;
                            return Err(self.error("unterminated quoted transformation parameter"));
                        }
                    }
                }
                if !matches!(self.peek(), Some(',' | '}')) {
                    return Err(self.error("unexpected text after a quoted parameter"));
                }
                Ok(TrParam::Str(value))
            }
            _ => {
                let mut value = String::new();
                while let Some(c) = self.peek() {
                    match c {
                        ',' | '}' => break,
                        // `\,` and `\}` put those characters in the value;
                        // any other backslash stays, as Kamailio keeps it
                        // (regular expressions in `re.subst` need it).
                        '\\' => {
                            self.pos += 1;
                            match self.peek() {
                                Some(e @ (',' | '}')) => {
                                    value.push(e);
                                    self.pos += 1;
                                }
                                _ => value.push('\\'),
                            }
                        }
                        _ => {
                            value.push(c);
                            self.pos += 1;
                        }
                    }
                }
                Ok(match value.parse::<i64>() {
                    Ok(n) => TrParam::Int(n),
                    Err(_) => TrParam::Str(value),
                })
            }
        }
    }
}

/// Splits the text inside `$class(...)` according to the class.
fn interpret_inner(class: &str, inner: &str, span: Span, depth: usize) -> Result<PvName, PvError> {
    match class {
        "avp" => Ok(PvName::Avp(if let Some(n) = inner.strip_prefix("i:") {
            match n.trim().parse::<i64>() {
                Ok(id) => AvpName::Int(id),
                Err(_) => {
                    return Err(PvError {
                        offset: 2,
                        message: format!("bad AVP id '{n}': 'i:' needs a number"),
                    })
                }
            }
        } else if let Some(s) = inner.strip_prefix("s:") {
            AvpName::Str(s.to_string())
        } else if inner.contains('$') {
            AvpName::Dynamic(format::parse_format_in(inner, span, depth)?)
        } else {
            AvpName::Str(inner.to_string())
        })),
        "xavp" | "xavu" | "xavi" => {
            let mut segments = Vec::new();
            let mut offset = 0;
            for part in inner.split("=>") {
                let mut p = PvParser::nested_in(part, span.shifted(offset), depth);
                let name_end = part.find('[').unwrap_or(part.len());
                let name = part[..name_end].trim().to_string();
                if name.is_empty() {
                    return Err(PvError {
                        offset,
                        message: format!("empty name in '${class}(…)'"),
                    });
                }
                p.pos = part[..name_end].chars().count();
                let index = if p.eat('[') {
                    let index = p.index(']').map_err(|e| PvError {
                        offset: offset + e.offset,
                        message: e.message,
                    })?;
                    if p.pos < p.chars.len() {
                        return Err(PvError {
                            offset: offset + p.pos,
                            message: "unexpected text after the index".to_string(),
                        });
                    }
                    Some(index)
                } else {
                    None
                };
                segments.push(XavpSegment { name, index });
                offset += part.chars().count() + 2;
            }
            Ok(PvName::Xavp(segments))
        }
        // `$_s(format)`: the whole name is a format string, evaluated per
        // message, with or without pseudo-variables in it.
        "_s" => Ok(PvName::Dynamic(format::parse_format_in(
            inner, span, depth,
        )?)),
        _ if class.starts_with("sht") && inner.contains("=>") => {
            let (table, key) = inner.split_once("=>").unwrap_or((inner, ""));
            let key_offset = table.chars().count() + 2;
            let key =
                format::parse_format_in(key, span.shifted(key_offset), depth).map_err(|e| {
                    PvError {
                        offset: key_offset + e.offset,
                        message: e.message,
                    }
                })?;
            Ok(PvName::Htable {
                table: table.trim().to_string(),
                key,
            })
        }
        _ if inner.contains('$') => Ok(PvName::Dynamic(format::parse_format_in(
            inner, span, depth,
        )?)),
        _ => Ok(PvName::Text(inner.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::format::FormatPart;

    fn pv(raw: &str) -> Pv {
        parse_pv(raw, Span::default()).unwrap_or_else(|e| panic!("{raw}: {e:?}"))
    }

    fn text(s: &str) -> Option<PvName> {
        Some(PvName::Text(s.to_string()))
    }

    #[test]
    fn names_and_inners() {
        let cases: Vec<(&str, &str, Option<PvName>)> = vec![
            ("$ru", "ru", None),
            ("$?", "?", None),
            ("$T_reply_code", "T_reply_code", None),
            ("$hdr(Via)", "hdr", text("Via")),
            ("$var(x)", "var", text("x")),
            ("$TV(s)", "TV", text("s")),
            ("$sel(via[1].host)", "sel", text("via[1].host")),
            ("$(ru)", "ru", None),
            ("$avp(i:1)", "avp", Some(PvName::Avp(AvpName::Int(1)))),
            (
                "$avp(s:x)",
                "avp",
                Some(PvName::Avp(AvpName::Str("x".into()))),
            ),
            (
                "$avp(oexten)",
                "avp",
                Some(PvName::Avp(AvpName::Str("oexten".into()))),
            ),
            (
                "$xavp(a=>b)",
                "xavp",
                Some(PvName::Xavp(vec![
                    XavpSegment {
                        name: "a".into(),
                        index: None,
                    },
                    XavpSegment {
                        name: "b".into(),
                        index: None,
                    },
                ])),
            ),
            (
                "$xavp(a[0]=>b[1])",
                "xavp",
                Some(PvName::Xavp(vec![
                    XavpSegment {
                        name: "a".into(),
                        index: Some(PvIndex::Int(0)),
                    },
                    XavpSegment {
                        name: "b".into(),
                        index: Some(PvIndex::Int(1)),
                    },
                ])),
            ),
        ];
        for (raw, name, inner) in cases {
            let p = pv(raw);
            assert_eq!(p.name, name, "{raw}");
            assert_eq!(p.inner, inner, "{raw}");
            assert_eq!(p.raw, raw);
        }
    }

    #[test]
    fn htable_key_is_a_format() {
        let p = pv("$sht(ipban=>$si)");
        let Some(PvName::Htable { table, key }) = p.inner else {
            panic!("{p:?}")
        };
        assert_eq!(table, "ipban");
        assert!(matches!(&key.parts[..], [FormatPart::Pv(k)] if k.name == "si"));
        let p = pv("$sht(tbl=>$var(k))");
        let Some(PvName::Htable { key, .. }) = p.inner else {
            panic!()
        };
        assert!(matches!(&key.parts[..], [FormatPart::Pv(k)] if k.raw == "$var(k)"));
    }

    #[test]
    fn indexes_and_transformations() {
        let p = pv("$(hdr(Via)[-1])");
        assert_eq!(p.index, Some(PvIndex::Int(-1)));
        let p = pv("$(avp(x)[*])");
        assert_eq!(p.index, Some(PvIndex::All));
        let p = pv("$(hdr(Route)[$var(i)])");
        assert!(matches!(p.index, Some(PvIndex::Pv(ref i)) if i.raw == "$var(i)"));

        let p = pv("$(ru{uri.user}{s.tolower})");
        assert_eq!(p.transforms.len(), 2);
        assert_eq!(
            (p.transforms[0].class.as_str(), p.transforms[0].op.as_str()),
            ("uri", "user")
        );
        assert_eq!(p.transforms[1].op, "tolower");

        let p = pv("$(var(x){s.select,1,;})");
        assert_eq!(
            p.transforms[0].params,
            vec![TrParam::Int(1), TrParam::Str(";".into())]
        );

        let p = pv("$(var(x){s.substr,0,$(var(n){s.int})})");
        assert!(matches!(&p.transforms[0].params[1], TrParam::Pv(n) if n.transforms.len() == 1));

        let p = pv(r#"$(var(x){s.replace,"a,b",\,})"#);
        assert_eq!(
            p.transforms[0].params,
            vec![TrParam::Str("a,b".into()), TrParam::Str(",".into())]
        );

        let p = pv("$(fu{s.encode.base64})");
        assert_eq!(p.transforms[0].op, "encode.base64");

        let p = pv("$(hdr(To)[0]{tobody.uri}{uri.host})");
        assert_eq!(p.index, Some(PvIndex::Int(0)));
        assert_eq!(p.transforms.len(), 2);
    }

    #[test]
    fn dynamic_names() {
        let p = pv("$hdr($var(h))");
        assert!(matches!(p.inner, Some(PvName::Dynamic(_))));
        let p = pv("$T_req($hu)");
        assert!(matches!(p.inner, Some(PvName::Dynamic(ref f)) if f.parts.len() == 1));
    }

    #[test]
    fn errors_point_inside() {
        let cases = [
            ("$hdr()", 4, "empty name"),
            ("$(hdr(Via)[x])", 11, "bad index"),
            ("$(ru{len})", 5, "bad transformation"),
            ("$(ru{s.len)", 4, "not closed"),
            ("$(ru", 4, "expected ')'"),
            ("$1", 1, "expected a pseudo-variable name"),
            ("$avp(i:x)", 7, "bad AVP id"),
            ("$ru x", 3, "unexpected text"),
        ];
        for (raw, offset, msg) in cases {
            let e = parse_pv(raw, Span::default()).expect_err(raw);
            assert_eq!(e.offset, offset, "{raw}: {e:?}");
            assert!(e.message.contains(msg), "{raw}: {}", e.message);
        }
    }
}
