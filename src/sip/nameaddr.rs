//! [`NameAddr`]: the value of From, To, Contact, Route, Record-Route, Reply-To
//! and P-Asserted-Identity (RFC 3261 §20.10, §25.1 `name-addr` / `addr-spec`
//! followed by header parameters), and [`Contact`] with `*`, `expires` and `q`.
//!
//! The structure (display name, URI text, header parameters) is checked when
//! parsed; the URI itself is parsed on demand by [`NameAddr::uri`].

use std::ops::Range;

use super::error::{ErrorKind, ParseError, Result};
use super::scan::{self, Param, Params, SplitValues, Unquoted};
use super::uri::Uri;

/// A display name as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisplayName<'a> {
    raw: &'a [u8],
    quoted: bool,
}

impl<'a> DisplayName<'a> {
    /// The text as written: inside the quotes for a quoted-string (escapes kept),
    /// else the token sequence with its inner white space.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether it was a quoted-string.
    pub fn is_quoted(&self) -> bool {
        self.quoted
    }

    /// The characters it stands for (`\"` becomes `"` in a quoted name).
    pub fn chars(&self) -> Unquoted<'a> {
        // A token sequence holds no backslash, so unquoting leaves it as it is.
        scan::unquoted(self.raw)
    }
}

/// One `( name-addr / addr-spec ) *( SEMI generic-param )` value.
///
/// Offsets (`span`, `uri_range`, `params_range`, error offsets) are relative to
/// the slice given to [`NameAddr::parse`], or to the whole header value for items
/// of a [`name_addrs`] / [`contacts`] list, so an edit can cut or insert there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display: Option<DisplayName<'a>>,
    uri: &'a [u8],
    uri_start: usize,
    bracketed: bool,
    params: &'a [u8],
    params_start: usize,
    span: (usize, usize),
    /// The first `tag` parameter (`Some(None)`: written without a value),
    /// picked up while the parameters were checked: has_totag, dialog and
    /// transaction matching all ask for it.
    tag: Option<Option<&'a [u8]>>,
}

impl<'a> NameAddr<'a> {
    /// Parses one value (surrounding LWS allowed).
    ///
    /// Per RFC 3261 §20.10, every `;param` after an addr-spec written without
    /// angle brackets is a header parameter, and such an addr-spec may not hold
    /// `?` (RFC 4475 §3.1.2.7) — nor `,` or `;`, which end it.
    pub fn parse(v: &'a [u8]) -> Result<NameAddr<'a>> {
        NameAddr::parse_in(v, 0, v.len())
    }

    /// Parses `src[start..end]`, reporting every offset relative to `src`.
    pub fn parse_in(src: &'a [u8], start: usize, end: usize) -> Result<NameAddr<'a>> {
        // Nearly every value is `<uri>`, `name <uri>` or `"name" <uri>` with
        // `;name=value` parameters and no white space about them: read in
        // one pass, else by the whole grammar.
        match NameAddr::parse_bracketed(src, start, end) {
            Some(na) => Ok(na),
            None => NameAddr::parse_general(src, start, end),
        }
    }

    /// The fast path of [`NameAddr::parse_in`]: a bracketed value with no
    /// white space at its ends, a display name of tokens and spaces or
    /// a quoted one without escapes or line breaks, and parameters of token
    /// names and `gen-value` values with no white space nor quotes. Gives what
    /// [`NameAddr::parse_general`] gives, or `None` for anything else
    /// (including every error), which it then reads.
    #[inline]
    fn parse_bracketed(src: &'a [u8], s: usize, e: usize) -> Option<NameAddr<'a>> {
        let v = src.get(..e)?;
        let first = *v.get(s)?;
        let last = *v.last()?;
        if matches!(first, b' ' | b'\t' | b'\r' | b'\n')
            || matches!(last, b' ' | b'\t' | b'\r' | b'\n')
        {
            return None;
        }
        let (display, lt) = match first {
            b'<' => (None, s),
            b'"' => {
                // qdtext without escapes, tabs or line breaks, then LWS and `<`.
                let len = v
                    .get(s + 1..)?
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20 || b == 0x7f)?;
                let close = s + 1 + len;
                if v.get(close) != Some(&b'"') {
                    return None;
                }
                let lt = scan::skip_lws(v, close + 1);
                if v.get(lt) != Some(&b'<') {
                    return None;
                }
                let raw = v.get(s + 1..close)?;
                (Some(DisplayName { raw, quoted: true }), lt)
            }
            _ => {
                // Tokens and single spaces up to the `<`.
                let len = v
                    .get(s..)?
                    .iter()
                    .position(|&b| FAST_CLASSES[usize::from(b)] & TOKEN_OR_SPACE == 0)?;
                let lt = s + len;
                if v.get(lt) != Some(&b'<') {
                    return None;
                }
                let text = v.get(s..lt)?;
                let trimmed = text.len() - text.iter().rev().take_while(|&&b| b == b' ').count();
                let raw = text.get(..trimmed)?;
                (Some(DisplayName { raw, quoted: false }), lt)
            }
        };
        // A URI holds no `>`, so the first one closes it.
        let gt = scan::find_any(v, lt + 1, [b'>']);
        if gt >= v.len() || gt == lt + 1 {
            return None;
        }
        let after = gt + 1;
        let mut tag = None;
        let mut i = after;
        while i < e {
            if v.get(i) != Some(&b';') {
                return None;
            }
            let name_start = i + 1;
            let name_end = scan::token_end(v, name_start);
            let name = v.get(name_start..name_end).filter(|n| !n.is_empty())?;
            i = name_end;
            let mut value = None;
            if v.get(i) == Some(&b'=') {
                // gen-value = token / host (with the `:` `[` `]` leniency of scan_params)
                let value_end = i
                    + 1
                    + v.get(i + 1..)?
                        .iter()
                        .position(|&b| FAST_CLASSES[usize::from(b)] & GEN_VALUE == 0)
                        .unwrap_or(e - i - 1);
                value = Some(v.get(i + 1..value_end).filter(|v| !v.is_empty())?);
                i = value_end;
            }
            if tag.is_none() && name.eq_ignore_ascii_case(b"tag") {
                tag = Some(value);
            }
        }
        Some(NameAddr {
            display,
            uri: v.get(lt + 1..gt)?,
            uri_start: lt + 1,
            bracketed: true,
            params: v.get(after..e)?,
            params_start: after,
            span: (s, e),
            tag,
        })
    }

    /// [`NameAddr::parse_in`] by the whole grammar.
    fn parse_general(src: &'a [u8], start: usize, end: usize) -> Result<NameAddr<'a>> {
        let bad = |at| ParseError::new(ErrorKind::BadNameAddr, at);
        let v = src.get(..end).unwrap_or_default();
        let item = v.get(start..).unwrap_or_default();
        let (a, b) = scan::trim_lws_range(item);
        let (s, e) = (start + a, start + b);
        let v = v.get(..e).unwrap_or_default();
        if s >= e {
            return Err(bad(s));
        }

        let mut display = None;
        let lt = if v.get(s) == Some(&b'"') {
            let (raw, after) = scan::quoted_string(v, s)?;
            display = Some(DisplayName { raw, quoted: true });
            let lt = scan::skip_lws(v, after);
            if v.get(lt) != Some(&b'<') {
                return Err(bad(lt));
            }
            Some(lt)
        } else {
            // A `<` before any `"` opens a name-addr; otherwise this is an addr-spec
            // (whose quoted parameter values may hold a `<`).
            let first = Some(scan::find_any(v, s, [b'<', b'"'])).filter(|&i| i < v.len());
            match first {
                Some(lt) if v.get(lt) == Some(&b'<') => {
                    let text = v.get(s..lt).unwrap_or_default();
                    check_token_display(text).map_err(|at| bad(s + at))?;
                    let text = scan::trim_lws(text);
                    if !text.is_empty() {
                        display = Some(DisplayName {
                            raw: text,
                            quoted: false,
                        });
                    }
                    Some(lt)
                }
                _ => None,
            }
        };

        let (uri_start, uri_end, bracketed, after) = match lt {
            Some(lt) => {
                // A URI holds no `>`, so the first one closes it.
                let gt = Some(scan::find_any(v, lt, [b'>']))
                    .filter(|&i| i < v.len())
                    .ok_or(bad(e))?;
                if gt == lt + 1 {
                    return Err(bad(gt));
                }
                (lt + 1, gt, true, gt + 1)
            }
            None => {
                let len = v
                    .iter()
                    .skip(s)
                    .position(|&b| matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n'))
                    .unwrap_or(e - s);
                let spec = v.get(s..s + len).unwrap_or_default();
                if let Some(q) = spec.iter().position(|&b| b == b'?') {
                    return Err(bad(s + q));
                }
                if !spec.contains(&b':') {
                    return Err(bad(s));
                }
                (s, s + len, false, s + len)
            }
        };

        let mut tag = None;
        let params_end = scan::scan_params_each(v, after, |p| {
            if tag.is_none() && p.is(b"tag") {
                tag = Some(p.value);
            }
        })?;
        let rest = scan::skip_lws(v, params_end);
        if rest < e {
            return Err(bad(rest));
        }
        Ok(NameAddr {
            display,
            uri: v.get(uri_start..uri_end).unwrap_or_default(),
            uri_start,
            bracketed,
            params: v.get(after..params_end).unwrap_or_default(),
            params_start: after,
            span: (s, e),
            tag,
        })
    }

    /// The display name, if one was written (an empty `""` counts as written).
    pub fn display_name(&self) -> Option<DisplayName<'a>> {
        self.display
    }

    /// The URI text (inside `<>` if bracketed).
    pub fn uri_raw(&self) -> &'a [u8] {
        self.uri
    }

    /// Parses the URI; an error's offset is relative to the slice this view was parsed from.
    pub fn uri(&self) -> Result<Uri<'a>> {
        Uri::parse(self.uri).map_err(|e| e.shifted(self.uri_start))
    }

    /// Whether the URI was written in angle brackets (a name-addr).
    pub fn has_brackets(&self) -> bool {
        self.bracketed
    }

    /// The header parameters as written, from the first `;` (empty if none).
    pub fn params_raw(&self) -> &'a [u8] {
        self.params
    }

    /// The header parameters (not the URI's own parameters); their `start`/`end`
    /// are relative to [`NameAddr::params_range`]`.start`.
    pub fn params(&self) -> Params<'a> {
        Params::new(self.params)
    }

    /// The first header parameter called `name` (case-insensitive).
    pub fn param(&self, name: &[u8]) -> Option<Param<'a>> {
        self.params().get(name)
    }

    /// The `tag` parameter value (From/To, RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.tag.flatten()
    }

    /// Where the whole value lies (LWS-trimmed).
    pub fn span(&self) -> Range<usize> {
        self.span.0..self.span.1
    }

    /// Where the URI text lies (inside the brackets, if any).
    pub fn uri_range(&self) -> Range<usize> {
        self.uri_start..self.uri_start + self.uri.len()
    }

    /// Where the header parameters lie; its end is where a new `;param` goes.
    pub fn params_range(&self) -> Range<usize> {
        self.params_start..self.params_start + self.params.len()
    }
}

/// A token byte or a space: a display name [`NameAddr::parse_bracketed`] reads.
const TOKEN_OR_SPACE: u8 = 1;
/// A `gen-value` byte: a token byte or `:` `[` `]` (the leniency of [`scan::scan_params`]).
const GEN_VALUE: u8 = 2;

/// The classes the fast path scans by, one lookup a byte (`token` as
/// [`scan::is_token_char`] has it).
const FAST_CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let token = scan::is_token_char(c);
        if token || c == b' ' {
            table[b] |= TOKEN_OR_SPACE;
        }
        if token || matches!(c, b':' | b'[' | b']') {
            table[b] |= GEN_VALUE;
        }
        b += 1;
    }
    table
};

/// Checks `*(token LWS)` display text; leniently also UTF-8 (bytes >= 0x80), which
/// user agents send unquoted. The error is the offset of the first bad byte.
fn check_token_display(text: &[u8]) -> std::result::Result<(), usize> {
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if scan::is_token_char(b) || b >= 0x80 {
            i += 1;
        } else {
            let next = scan::skip_lws(text, i);
            if next == i {
                return Err(i);
            }
            i = next;
        }
    }
    Ok(())
}

/// Iterates the comma-separated name-addrs of a header value (Route,
/// Record-Route, or several From-like values); offsets are relative to `value`.
pub fn name_addrs(value: &[u8]) -> NameAddrs<'_> {
    NameAddrs {
        value,
        items: scan::split_values(value),
    }
}

/// Iterator returned by [`name_addrs`]: one `Result` per comma-separated item.
#[derive(Clone, Debug)]
pub struct NameAddrs<'a> {
    value: &'a [u8],
    items: SplitValues<'a>,
}

impl<'a> Iterator for NameAddrs<'a> {
    type Item = Result<NameAddr<'a>>;

    fn next(&mut self) -> Option<Result<NameAddr<'a>>> {
        let (off, item) = self.items.next()?;
        Some(NameAddr::parse_in(self.value, off, off + item.len()))
    }
}

/// One Contact value (RFC 3261 §20.10): `*` or an address with parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *`, removing all bindings (RFC 3261 §10.2.2). Must stand alone.
    Star,
    /// An address with its header parameters.
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses one Contact value.
    pub fn parse(v: &'a [u8]) -> Result<Contact<'a>> {
        Contact::parse_in(v, 0, v.len())
    }

    /// Parses `src[start..end]`, reporting every offset relative to `src`.
    pub fn parse_in(src: &'a [u8], start: usize, end: usize) -> Result<Contact<'a>> {
        let item = src.get(start..end.min(src.len())).unwrap_or_default();
        if scan::trim_lws(item) == b"*" {
            return Ok(Contact::Star);
        }
        NameAddr::parse_in(src, start, end).map(Contact::Addr)
    }

    /// The address, unless this is `*`.
    pub fn name_addr(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Star => None,
            Contact::Addr(a) => Some(a),
        }
    }

    /// The `expires` parameter in seconds, saturating at 2**32-1 (RFC 3261
    /// §10.2.1.1). `Err` for a malformed value, which the registrar SHOULD treat as 3600.
    pub fn expires(&self) -> Result<Option<u32>> {
        let Some((at, p)) = self.param(b"expires") else {
            return Ok(None);
        };
        let bad = ParseError::new(ErrorKind::BadNumber, at);
        let value = p.value.filter(|_| !p.quoted).ok_or(bad)?;
        scan::parse_u32_saturating(value).map(Some).map_err(|_| bad)
    }

    /// The `q` parameter in thousandths (`q=0.5` is 500), 0..=1000 (RFC 3261 §20.10 `qvalue`).
    pub fn q(&self) -> Result<Option<u16>> {
        let Some((at, p)) = self.param(b"q") else {
            return Ok(None);
        };
        let value = p.value.filter(|_| !p.quoted);
        value
            .and_then(parse_qvalue)
            .map(Some)
            .ok_or(ParseError::new(ErrorKind::BadNumber, at))
    }

    /// A header parameter with the offset of its `;` in the parsed slice.
    fn param(&self, name: &[u8]) -> Option<(usize, Param<'a>)> {
        let a = self.name_addr()?;
        a.param(name).map(|p| (a.params_range().start + p.start, p))
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
pub fn parse_qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (v.get(..dot)?, v.get(dot + 1..)?),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |&d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Iterates the comma-separated values of a Contact header; offsets are relative to `value`.
/// A `*` is yielded as [`Contact::Star`] wherever it is: the registrar rejects
/// it unless it is the only value (RFC 3261 §10.3 step 6).
pub fn contacts(value: &[u8]) -> Contacts<'_> {
    Contacts {
        value,
        items: scan::split_values(value),
    }
}

/// Iterator returned by [`contacts`].
#[derive(Clone, Debug)]
pub struct Contacts<'a> {
    value: &'a [u8],
    items: SplitValues<'a>,
}

impl<'a> Iterator for Contacts<'a> {
    type Item = Result<Contact<'a>>;

    fn next(&mut self) -> Option<Result<Contact<'a>>> {
        let (off, item) = self.items.next()?;
        Some(Contact::parse_in(self.value, off, off + item.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::uri::Host;
    use proptest::prelude::*;

    fn na(s: &str) -> NameAddr<'_> {
        NameAddr::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> (ErrorKind, usize) {
        match NameAddr::parse(s.as_bytes()) {
            Ok(v) => panic!("{s} parsed: {v:?}"),
            Err(e) => (e.kind, e.offset),
        }
    }

    fn display(v: &NameAddr<'_>) -> Option<(Vec<u8>, bool)> {
        v.display_name()
            .map(|d| (d.chars().collect(), d.is_quoted()))
    }

    #[test]
    fn name_addr_with_quoted_display_and_tag() {
        let s = "\"Bob Smith\" <sip:bob@biloxi.com;transport=tcp>;tag=a6c85cf";
        let v = na(s);
        assert_eq!(display(&v), Some((b"Bob Smith".to_vec(), true)));
        assert_eq!(v.uri_raw(), b"sip:bob@biloxi.com;transport=tcp");
        assert_eq!(&s[v.uri_range()], "sip:bob@biloxi.com;transport=tcp");
        assert!(v.has_brackets());
        assert_eq!(v.tag(), Some(&b"a6c85cf"[..]));
        assert_eq!(&s[v.params_range()], ";tag=a6c85cf");
        assert_eq!(v.span(), 0..s.len());
        let u = v.uri().unwrap();
        assert_eq!(u.host(), Some(Host::Name(b"biloxi.com")));
        assert_eq!(
            u.param(b"transport").and_then(|p| p.value),
            Some(&b"tcp"[..])
        );
        assert!(
            v.param(b"transport").is_none(),
            "URI params are not header params"
        );
    }

    #[test]
    fn addr_spec_params_are_header_params() {
        // RFC 3261 §20.10: without brackets, `;lr` belongs to the header, not the URI.
        let v = na("sip:a@b.com;lr;tag=1");
        assert!(!v.has_brackets());
        assert_eq!(v.uri_raw(), b"sip:a@b.com");
        assert!(!v.uri().unwrap().lr());
        assert!(v.param(b"lr").is_some());
        assert_eq!(v.tag(), Some(&b"1"[..]));
        let v = na("<sip:a@b.com;lr>");
        assert!(v.uri().unwrap().lr());
        assert!(v.param(b"lr").is_none());
        assert_eq!(v.params_raw(), b"");
        // RFC 4475 §3.1.1.6 lwsdisp and `To: sip:t.watson@example.org` addr-spec forms.
        let v = na("sip:callee@example.com");
        assert_eq!(
            (v.display_name(), v.uri_raw()),
            (None, &b"sip:callee@example.com"[..])
        );
        let v = na("sip:caller@example.com ; tag = 98asjd8");
        assert_eq!(v.tag(), Some(&b"98asjd8"[..]));
    }

    #[test]
    fn token_display_names() {
        let v = na("caller<sip:caller@example.com>;tag=323");
        assert_eq!(display(&v), Some((b"caller".to_vec(), false)));
        let v = na("  Anonymous   Coward \t <sip:a@b.com>");
        assert_eq!(
            v.display_name().map(|d| d.raw()),
            Some(&b"Anonymous   Coward"[..])
        );
        let v = na("<sip:a@b.com>");
        assert_eq!(v.display_name(), None);
        let v = na("\"\" <sip:a@b.com>");
        assert_eq!(display(&v), Some((vec![], true)));
        // Unquoted UTF-8 is tolerated; unquoted separators are not.
        assert!(na("Jöhn <sip:a@b.com>").display_name().is_some());
        assert_eq!(
            err("Smith, John <sip:a@b.com>"),
            (ErrorKind::BadNameAddr, 5)
        );
        assert_eq!(
            err("John (Home) <sip:a@b.com>"),
            (ErrorKind::BadNameAddr, 5)
        );
        assert_eq!(err("a@b <sip:a@b.com>"), (ErrorKind::BadNameAddr, 1));
    }

    #[test]
    fn rfc4475_wsinv_and_escaped_quotes() {
        // §3.1.1.1: escaped quote and backslash, folded LWS around params.
        let s =
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8";
        let v = na(s);
        assert_eq!(display(&v), Some((b"J Rosenberg \\\"".to_vec(), true)));
        assert_eq!(v.tag(), Some(&b"98asjd8"[..]));
        let s = "\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33";
        let v = na(s);
        assert_eq!(display(&v), Some((b"Quoted string \"\"".to_vec(), true)));
        assert_eq!(
            v.param(b"newparam").and_then(|p| p.value),
            Some(&b"newvalue"[..])
        );
        assert_eq!(v.param(b"secondparam").map(|p| p.value), Some(None));
        assert_eq!(Contact::Addr(v).q(), Ok(Some(330)));
        // §3.1.1.3: a display name made of escaped control characters.
        let v = na("\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:a@example.com>");
        assert_eq!(
            display(&v).map(|d| d.0),
            Some(b"BEL:\x07 NUL:\x00 DEL:\x7f".to_vec())
        );
        // §3.1.1.8 esc02: `%` inside a quoted display name is not an escape.
        let v = na("\"%Z%45\" <sip:resource@example.com>");
        assert_eq!(v.display_name().map(|d| d.raw()), Some(&b"%Z%45"[..]));
    }

    #[test]
    fn unknown_schemes_rfc4475() {
        // §3.1.1.12 unksm: `To: isbn:2983792873`, `Contact: <name:John_Smith>`.
        assert_eq!(
            na("isbn:2983792873").uri().unwrap().scheme().as_bytes(),
            b"isbn"
        );
        assert_eq!(
            na("<name:John_Smith>").uri().unwrap().opaque(),
            b"John_Smith"
        );
        assert_eq!(
            na("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>")
                .uri_raw()
                .len(),
            45
        );
    }

    #[test]
    fn malformed_values() {
        assert_eq!(err(""), (ErrorKind::BadNameAddr, 0));
        assert_eq!(err("   "), (ErrorKind::BadNameAddr, 3));
        assert_eq!(err("<>"), (ErrorKind::BadNameAddr, 1));
        assert_eq!(err("<sip:a@b.com"), (ErrorKind::BadNameAddr, 12));
        assert_eq!(err("\"Bob <sip:a@b.com>"), (ErrorKind::BadQuotedString, 18));
        assert_eq!(err("\"Bob\" sip:a@b.com"), (ErrorKind::BadNameAddr, 6));
        assert_eq!(err("\"Bob\""), (ErrorKind::BadNameAddr, 5));
        assert_eq!(err("<sip:a@b.com> x"), (ErrorKind::BadNameAddr, 14));
        assert_eq!(err("<sip:a@b.com>;"), (ErrorKind::BadParam, 14));
        assert_eq!(
            na("<sip:a@b.com>;tag").param(b"tag").map(|p| p.value),
            Some(None)
        );
        assert_eq!(err("<sip:a@b.com>;tag="), (ErrorKind::BadParam, 18));
        assert_eq!(
            err("<sip:a@b.com><sip:c@d.com>"),
            (ErrorKind::BadNameAddr, 13)
        );
        assert_eq!(err("Bob"), (ErrorKind::BadNameAddr, 0));
        assert_eq!(err("sip:a@b.com x"), (ErrorKind::BadNameAddr, 12));
        // RFC 4475 §3.1.2.7 regbadct: an addr-spec with `?` needs brackets.
        assert_eq!(
            err("sip:user@example.com?Route=%3Csip:sip.example.com%3E"),
            (ErrorKind::BadNameAddr, 20)
        );
        assert!(na("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>")
            .uri()
            .is_ok());
    }

    #[test]
    fn uri_errors_point_into_the_value() {
        // LAQUOT/RAQUOT allow no white space inside the brackets.
        let v = na("Bob < sip:a@b.com>");
        assert_eq!(
            v.uri().map(|_| ()),
            Err(ParseError::new(ErrorKind::BadUri, 5))
        );
        let v = na("<sip:a@b.com:99999>");
        assert_eq!(
            v.uri().map(|_| ()),
            Err(ParseError::new(ErrorKind::BadPort, 13))
        );
    }

    #[test]
    fn lists_with_offsets() {
        let value = b"<sip:p1.example.com;lr>, \"Proxy, Two\" <sip:p2.example.com;lr> ,sip:p3.example.com;x=\"a,b\"";
        let items: Vec<_> = name_addrs(value).collect::<Result<_>>().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(&value[items[0].span()], b"<sip:p1.example.com;lr>");
        assert_eq!(&value[items[1].uri_range()], b"sip:p2.example.com;lr");
        assert_eq!(
            items[1].display_name().map(|d| d.raw()),
            Some(&b"Proxy, Two"[..])
        );
        assert_eq!(
            items[2].param(b"x").map(|p| (p.value, p.quoted)),
            Some((Some(&b"a,b"[..]), true))
        );
        assert_eq!(&value[items[2].params_range()], b";x=\"a,b\"");

        let errs: Vec<_> = name_addrs(b"<sip:a@b.com>,,<sip:c@d.com>")
            .map(|r| r.map(|_| ()))
            .collect();
        assert_eq!(
            errs,
            vec![
                Ok(()),
                Err(ParseError::new(ErrorKind::BadNameAddr, 14)),
                Ok(())
            ]
        );
        assert_eq!(name_addrs(b"").count(), 0);
    }

    #[test]
    fn contacts_star_expires_q() {
        let cs: Vec<_> = contacts(b" * ").collect();
        assert_eq!(cs, vec![Ok(Contact::Star)]);
        assert_eq!(Contact::Star.expires(), Ok(None));
        assert_eq!(Contact::parse(b"*"), Ok(Contact::Star));

        let value = b"<sip:a@h1.com>;expires=3600;q=0.7, <sip:b@h2.com>;q=1, sip:c@h3.com;expires=0, <sip:d@h4>";
        let cs: Vec<_> = contacts(value).collect::<Result<_>>().unwrap();
        assert_eq!(cs.len(), 4);
        assert_eq!(
            (cs[0].expires(), cs[0].q()),
            (Ok(Some(3600)), Ok(Some(700)))
        );
        assert_eq!((cs[1].expires(), cs[1].q()), (Ok(None), Ok(Some(1000))));
        assert_eq!((cs[2].expires(), cs[2].q()), (Ok(Some(0)), Ok(None)));
        assert_eq!(
            cs[3].name_addr().map(|a| a.uri_raw()),
            Some(&b"sip:d@h4"[..])
        );

        // RFC 4475 §3.1.1.4 scalarlg: a huge expires saturates (RFC 3261 §10.2.1.1).
        let c = Contact::parse(b"<sip:user@host129.example.com>;expires=280297596632815").unwrap();
        assert_eq!(c.expires(), Ok(Some(u32::MAX)));
        let c = Contact::parse(b"<sip:a@b.com>;expires=\"Thu, 01 Dec 1994 16:00:00 GMT\"").unwrap();
        assert_eq!(c.expires().map_err(|e| e.kind), Err(ErrorKind::BadNumber));
        let c = Contact::parse(b"<sip:a@b.com>;expires=-1").unwrap();
        assert_eq!(c.expires().map_err(|e| e.offset), Err(13));
        let c = Contact::parse(b"<sip:a@b.com>;expires").unwrap();
        assert!(c.expires().is_err());
        let c = Contact::parse(b"<sip:a@b.com>;q=2").unwrap();
        assert!(c.q().is_err());
        // `*` inside a list is reported as such, for the registrar to refuse.
        let cs: Vec<_> = contacts(b"*, <sip:a@b.com>").collect();
        assert_eq!(cs[0], Ok(Contact::Star));
        assert!(matches!(cs[1], Ok(Contact::Addr(_))));
        assert!(Contact::parse(b"**").is_err());
    }

    #[test]
    fn qvalues() {
        let cases: [(&[u8], Option<u16>); 14] = [
            (b"0", Some(0)),
            (b"0.", Some(0)),
            (b"0.5", Some(500)),
            (b"0.05", Some(50)),
            (b"0.123", Some(123)),
            (b"0.999", Some(999)),
            (b"1", Some(1000)),
            (b"1.000", Some(1000)),
            (b"1.001", None),
            (b"0.1234", None),
            (b"2", None),
            (b".5", None),
            (b"0.a", None),
            (b"", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_qvalue(text),
                want,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn first_tag_wins_as_written() {
        let tag = |s: &'static str| NameAddr::parse(s.as_bytes()).unwrap().tag();
        assert_eq!(tag("<sip:a@b>;TAG=x;tag=y"), Some(&b"x"[..]));
        assert_eq!(tag("<sip:a@b>;tag;tag=y"), None);
        assert_eq!(tag("<sip:a@b> ; x=1 ;\r\n tag = \"q\""), Some(&b"q"[..]));
        assert_eq!(tag("sip:a@b;tag=z"), Some(&b"z"[..]));
        assert_eq!(tag("<sip:a@b;tag=uri>"), None);
    }

    /// A common piece (4 in 5) or an odd one.
    fn piece(plain: &[&'static str], odd: &[&'static str]) -> impl Strategy<Value = &'static str> {
        use proptest::sample::select;
        prop_oneof![4 => select(plain.to_vec()), 1 => select(odd.to_vec())]
    }

    /// A name-addr from generated pieces: mostly the common shapes (so the
    /// fast path is taken), with odd pieces mixed in (quoted names holding
    /// `<` `;` `,` `>` and escapes, UTF-8, white space anywhere, addr-specs,
    /// parameters with and without values, quoted values, empty names and
    /// values, trailing garbage).
    fn odd_name_addr() -> impl Strategy<Value = String> {
        let lead = piece(&[""], &[" ", "\t", "\r\n ", "\r\n"]);
        let display = piece(
            &[
                "",
                "Bob ",
                "Bob",
                "Bob  ",
                "sipp ",
                "A B c ",
                "\"Bob\" ",
                "\"Bob\"",
                "\"B<o>b;x,y\" ",
                "\"\" ",
                "\"a'b\"  ",
                "b%-.!*_+`'~ ",
            ],
            &[
                "\"a\\\"b\" ",
                "\"x\"\t",
                "B\u{e9}b ",
                "\"B\u{e9}b\"",
                "a,b ",
                "\"unclosed ",
                "a\"b\" ",
                "@x ",
                "\"tab\there\" ",
                "\"a\r\n b\" ",
                "<",
                "a\tb ",
                "\"\x7f\" ",
                "a;b ",
            ],
        );
        let uri = piece(
            &[
                "<sip:a@h>",
                "<sip:127.0.0.1:5060;lr>",
                "<sip:a@h;tag=uri>",
                "<sip:[::1]:5060;lr>",
                "<sips:x@y?h=v>",
                "<tel:+1>",
                "<x>",
            ],
            &[
                "<>",
                "sip:a@h",
                "sip:a@h?x",
                "<sip:a@h",
                "x",
                "<sip:a>b>",
                "<sip:a@h> ",
                "<sip:a@h>>",
                "<sip:a\"b>",
            ],
        );
        let param = piece(
            &[
                ";tag=abc",
                ";TAG=1",
                ";Tag",
                ";tag=a;tag=b",
                ";ftag=a:b",
                ";lr",
                ";x=[::1]",
                ";tagx=1",
                ";a%41=1",
                ";t=`~",
            ],
            &[
                ";tag=",
                " ;tag=x",
                "; tag = x",
                ";x=\"q;u,o<t>e\"",
                ";=x",
                ",",
                ";a=b c",
                ";a==b",
                ";a=b\"",
                ";\r\n",
                ";a=\u{e9}",
                ";",
                ";a=\"x\"",
                ";a =1",
                ";a= 1",
            ],
        );
        let params = proptest::collection::vec(param, 0..3);
        let trail = piece(&[""], &[" ", "\r\n", " x", "\t", ">", ","]);
        (lead, display, uri, params, trail).prop_map(|(lead, display, uri, params, trail)| {
            format!("{lead}{display}{uri}{}{trail}", params.concat())
        })
    }

    #[test]
    fn fast_classes_are_the_scanner_classes() {
        for b in 0..=255u8 {
            let token = scan::is_token_char(b);
            let class = FAST_CLASSES[usize::from(b)];
            assert_eq!(class & TOKEN_OR_SPACE != 0, token || b == b' ', "{b:#x}");
            assert_eq!(
                class & GEN_VALUE != 0,
                token || b":[]".contains(&b),
                "{b:#x}"
            );
        }
    }

    #[test]
    fn common_name_addrs_take_the_fast_path() {
        for s in [
            "<sip:127.0.0.1:5060;lr>",
            "sipp <sip:sipp@127.0.0.1:5061>;tag=1234SIPpTag001",
            "service <sip:service@127.0.0.1:5080>",
            "\"Bob, <the> builder;\" <sips:bob@b.example.com>;tag=a.b-c;x=1.2.3.4:5",
        ] {
            let b = s.as_bytes();
            let fast = NameAddr::parse_bracketed(b, 0, b.len());
            assert!(fast.is_some(), "{s}");
            assert_eq!(
                fast.map(Ok),
                Some(NameAddr::parse_general(b, 0, b.len())),
                "{s}"
            );
        }
        for s in [
            "sip:a@h;tag=x",
            " <sip:a@h>",
            "<sip:a@h> ;tag=x",
            "\"a\\\"b\" <sip:x>",
            "<sip:x>;a=\"q\"",
        ] {
            let b = s.as_bytes();
            assert_eq!(NameAddr::parse_bracketed(b, 0, b.len()), None, "{s}");
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn never_panics(v in proptest::collection::vec(any::<u8>(), 0..64)) {
            for a in name_addrs(&v).flatten() {
                let _ = (a.uri(), a.params().count(), a.display_name().map(|d| d.chars().count()));
                // The tag picked up while parsing is the one a parameter search finds.
                prop_assert_eq!(a.tag(), a.param(b"tag").and_then(|p| p.value));
                prop_assert!(a.span().end <= v.len() && a.uri_range().end <= v.len() && a.params_range().end <= v.len());
            }
            for c in contacts(&v).flatten() {
                let _ = (c.expires(), c.q());
            }
        }

        #[test]
        fn parse_in_any_range_never_panics(v in proptest::collection::vec(any::<u8>(), 0..32), a in 0usize..40, b in 0usize..40) {
            if let Ok(na) = NameAddr::parse_in(&v, a, b) {
                prop_assert!(na.span().start >= a && na.span().end <= b.min(v.len()));
            }
            let _ = Contact::parse_in(&v, a, b);
        }

        #[test]
        fn bracketed_fast_path_matches_the_grammar(
            prefix in proptest::sample::select(vec!["", "X", ", ", "To: "]),
            value in odd_name_addr(),
            suffix in proptest::sample::select(vec!["", ",", " y", "\r\n"]),
        ) {
            let src = format!("{prefix}{value}{suffix}");
            let (start, end) = (prefix.len(), prefix.len() + value.len());
            let s = src.as_bytes();
            let general = NameAddr::parse_general(s, start, end);
            prop_assert_eq!(NameAddr::parse_in(s, start, end), general, "{:?}", value);
            if let Some(fast) = NameAddr::parse_bracketed(s, start, end) {
                prop_assert_eq!(Ok(fast), general, "{:?}", value);
            }
            // Out-of-range and reversed bounds too.
            prop_assert_eq!(NameAddr::parse_in(s, start, s.len() + 1), NameAddr::parse_general(s, start, s.len() + 1));
            prop_assert_eq!(NameAddr::parse_in(s, end, start), NameAddr::parse_general(s, end, start));
        }

        #[test]
        fn generated_name_addrs_read_back(
            name in proptest::option::of("[a-zA-Z0-9 \"\\\\]{0,10}"),
            user in "[a-z]{1,8}",
            host in "[a-z]{1,8}\\.com",
            tag in proptest::option::of("[a-zA-Z0-9.-]{1,10}"),
        ) {
            let mut s = String::new();
            if let Some(n) = &name {
                let escaped: String = n.chars().flat_map(|c| if c == '"' || c == '\\' { vec!['\\', c] } else { vec![c] }).collect();
                s += &format!("\"{escaped}\" ");
            }
            s += &format!("<sip:{user}@{host}>");
            if let Some(t) = &tag {
                s += &format!(" ; tag = {t}");
            }
            let v = NameAddr::parse(s.as_bytes()).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
            prop_assert_eq!(v.display_name().map(|d| d.chars().collect::<Vec<u8>>()), name.map(String::into_bytes));
            let uri = v.uri().unwrap();
            prop_assert_eq!(uri.user(), Some(user.as_bytes()));
            prop_assert_eq!(uri.host_raw(), host.as_bytes());
            prop_assert_eq!(v.tag(), tag.as_deref().map(str::as_bytes));
        }
    }
}
