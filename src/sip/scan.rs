//! Low-level scanning shared by every header view: character classes, linear
//! white space, quoted strings, comments, parameter lists, comma-separated
//! values, `%HH` escapes and strict decimal numbers.
//!
//! The grammar is RFC 3261 §25.1. Nothing here allocates and nothing panics:
//! positions past the end of a slice are read as "no byte there".

use super::error::{ErrorKind, ParseError, Result};

// --- character classes ---------------------------------------------------------------------

/// Character classes as one table: every byte of every header name, token
/// and parameter goes through these tests, so a lookup beats a chain of compares.
const TOKEN: u8 = 1;
/// A `gen-value` byte: a token byte, or `:` `[` `]` (see [`scan_params`]).
const GEN_VALUE: u8 = 2;

const CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let token = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        if token {
            table[b] |= TOKEN | GEN_VALUE;
        }
        if matches!(c, b':' | b'[' | b']') {
            table[b] |= GEN_VALUE;
        }
        b += 1;
    }
    table
};

/// `token` characters (RFC 3261 §25.1): alphanumerics and `` -.!%*_+`'~ ``.
#[inline]
pub const fn is_token_char(b: u8) -> bool {
    CLASSES[b as usize] & TOKEN != 0
}

/// `WSP` (RFC 3261 §25.1): a space or a horizontal tab.
pub fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `unreserved` URI characters (RFC 3261 §25.1): alphanumerics and the marks `-_.!~*'()`.
pub fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// `reserved` URI characters (RFC 2396 §2.2, which RFC 3261 §19.1.4 refers to).
pub fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b';' | b'/' | b'?' | b':' | b'@' | b'&' | b'=' | b'+' | b'$' | b','
    )
}

/// The value of one hexadecimal digit, either case.
pub fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Index just past the run of token characters starting at `pos` (`pos` itself if none).
#[inline]
pub fn token_end(s: &[u8], pos: usize) -> usize {
    class_end(s, pos, TOKEN)
}

/// Index just past the run of bytes of `class` starting at `pos` (`pos` itself if none).
#[inline]
fn class_end(s: &[u8], pos: usize, class: u8) -> usize {
    let rest = s.get(pos..).unwrap_or_default();
    pos + rest
        .iter()
        .position(|&b| CLASSES[usize::from(b)] & class == 0)
        .unwrap_or(rest.len())
}

/// Index just past the run of unquoted `gen-value` bytes (token bytes and
/// `:` `[` `]`, see [`scan_params`]) starting at `pos` (`pos` itself if
/// none), and whether they are all token bytes.
#[inline]
pub(crate) fn gen_value_run(s: &[u8], pos: usize) -> (usize, bool) {
    let end = class_end_wide(s, pos, TOKEN);
    match s.get(end) {
        Some(&b) if CLASSES[usize::from(b)] & GEN_VALUE != 0 => {
            (class_end(s, end, GEN_VALUE), false)
        }
        _ => (end, true),
    }
}

/// [`class_end`] for runs that are often long (a branch is tens of bytes):
/// eight bytes a test while all are in `class` (one bit), costing less per
/// byte than one at a time, and more on a run shorter than eight.
#[inline]
fn class_end_wide(s: &[u8], pos: usize, class: u8) -> usize {
    debug_assert!(class.is_power_of_two());
    let rest = s.get(pos..).unwrap_or_default();
    let mut done = 0;
    for chunk in rest.chunks_exact(8) {
        let all = chunk
            .iter()
            .fold(class, |all, &b| all & CLASSES[usize::from(b)]);
        if all == 0 {
            break;
        }
        done += 8;
    }
    let tail = rest.get(done..).unwrap_or_default();
    pos + done
        + tail
            .iter()
            .position(|&b| CLASSES[usize::from(b)] & class == 0)
            .unwrap_or(tail.len())
}

/// Whether `s` is a non-empty `token`.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_char(b))
}

// --- word-at-a-time searches ------------------------------------------------------------------

// Header values and URIs are tens of bytes long: a memchr call costs more
// than it saves there, and a byte loop is several instructions a byte.
const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Eight bytes of `s` from `at` (little-endian, so the first byte is lowest).
#[inline(always)]
pub(crate) fn word(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

/// High bit set in each byte of `w` below `n` (`n` ≤ 128). The lowest set
/// bit is exact: a borrow only propagates upwards from a flagged byte.
#[inline(always)]
pub(crate) fn bytes_below(w: u64, n: u8) -> u64 {
    w.wrapping_sub(LO * u64::from(n)) & !w & HI
}

/// High bit set in each byte of `w` equal to `b` (lowest set bit exact).
#[inline(always)]
pub(crate) fn bytes_equal(w: u64, b: u8) -> u64 {
    bytes_below(w ^ (LO * u64::from(b)), 1)
}

/// High bit set in each byte of `w` that is not a visible ASCII character
/// (outside `0x21..=0x7e`; lowest set bit exact).
#[inline(always)]
pub(crate) fn bytes_not_visible(w: u64) -> u64 {
    bytes_below(w, 0x21) | (w & HI) | bytes_equal(w, 0x7f)
}

/// Index of the first byte of `s` at or after `pos` that is one of
/// `needles`, or `s.len()`.
#[inline(always)]
pub(crate) fn find_any<const K: usize>(s: &[u8], pos: usize, needles: [u8; K]) -> usize {
    let mut i = pos;
    while i + 8 <= s.len() {
        let w = word(s, i);
        let mut hits = 0;
        for n in needles {
            hits |= bytes_equal(w, n);
        }
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = s.get(i) {
        if needles.contains(&b) {
            return i;
        }
        i += 1;
    }
    s.len().max(pos)
}

// --- linear white space ----------------------------------------------------------------------

/// Index of the first byte at or after `pos` that is not LWS.
///
/// LWS is `[*WSP CRLF] 1*WSP` (RFC 3261 §25.1): spaces, tabs, and a line fold
/// (CRLF, or a bare LF, followed by a space or tab). A line break that is not
/// a fold stops the skip.
#[inline]
pub fn skip_lws(s: &[u8], pos: usize) -> usize {
    // Most calls land on a byte that is not white space at all.
    match s.get(pos) {
        Some(b' ' | b'\t' | b'\r' | b'\n') => skip_lws_slow(s, pos),
        _ => pos,
    }
}

fn skip_lws_slow(s: &[u8], mut pos: usize) -> usize {
    loop {
        match s.get(pos) {
            Some(b' ' | b'\t') => pos += 1,
            Some(b'\r')
                if s.get(pos + 1) == Some(&b'\n') && s.get(pos + 2).is_some_and(|&b| is_wsp(b)) =>
            {
                pos += 3
            }
            Some(b'\n') if s.get(pos + 1).is_some_and(|&b| is_wsp(b)) => pos += 2,
            _ => return pos,
        }
    }
}

/// The bounds `(start, end)` of `s` without leading LWS and trailing SP/HTAB/CR/LF.
#[inline]
pub fn trim_lws_range(s: &[u8]) -> (usize, usize) {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    match (s.first(), s.last()) {
        (None, _) => return (0, 0),
        // Nothing to trim at either end: the usual case.
        (Some(a), Some(z)) if !is_ws(a) && !is_ws(z) => return (0, s.len()),
        _ => {}
    }
    let start = skip_lws(s, 0).min(s.len());
    let rest = s.get(start..).unwrap_or_default();
    let len = rest
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    (start, start + len)
}

/// `s` without leading LWS and trailing SP/HTAB/CR/LF.
pub fn trim_lws(s: &[u8]) -> &[u8] {
    let (start, end) = trim_lws_range(s);
    s.get(start..end).unwrap_or_default()
}

// --- quoted strings and comments -----------------------------------------------------------

/// Reads the quoted-string whose opening `"` is at `s[pos]` (RFC 3261 §25.1).
///
/// Returns the raw text between the quotes, escapes kept (see [`unquoted`]),
/// and the index just past the closing quote. A missing closing quote, a
/// control character or an escaped CR/LF is [`ErrorKind::BadQuotedString`].
pub fn quoted_string(s: &[u8], pos: usize) -> Result<(&[u8], usize)> {
    let bad = |at| ParseError::new(ErrorKind::BadQuotedString, at);
    if s.get(pos) != Some(&b'"') {
        return Err(bad(pos));
    }
    let mut i = pos + 1;
    loop {
        match s.get(i) {
            None => return Err(bad(i)),
            Some(b'"') => return Ok((s.get(pos + 1..i).unwrap_or_default(), i + 1)),
            // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
            Some(b'\\') => match s.get(i + 1) {
                Some(&c) if c <= 0x7f && c != b'\r' && c != b'\n' => i += 2,
                _ => return Err(bad(i)),
            },
            Some(b'\r' | b'\n') => {
                let j = skip_lws(s, i);
                if j == i {
                    return Err(bad(i));
                }
                i = j;
            }
            // qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
            Some(&c) if (c < 0x20 && c != b'\t') || c == 0x7f => return Err(bad(i)),
            Some(_) => i += 1,
        }
    }
}

/// The bytes that the raw inside of a quoted-string stands for: `\x` is `x`.
pub fn unquoted(raw: &[u8]) -> Unquoted<'_> {
    Unquoted { rest: raw.iter() }
}

/// Iterator returned by [`unquoted`].
#[derive(Clone, Debug)]
pub struct Unquoted<'a> {
    rest: std::slice::Iter<'a, u8>,
}

impl Iterator for Unquoted<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = *self.rest.next()?;
        if b == b'\\' {
            // A trailing lone backslash (impossible after `quoted_string`) stands for itself.
            Some(self.rest.next().copied().unwrap_or(b'\\'))
        } else {
            Some(b)
        }
    }
}

/// Index just past the comment whose `(` is at `s[pos]` (RFC 3261 §25.1 `comment`:
/// nested parentheses and quoted-pairs). `None` if it is not closed.
pub fn skip_comment(s: &[u8], pos: usize) -> Option<usize> {
    if s.get(pos) != Some(&b'(') {
        return None;
    }
    // A depth counter, not recursion: `((((…` must not exhaust the stack.
    let mut depth = 0usize;
    let mut i = pos;
    while let Some(&b) = s.get(i) {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'\\' => i += 1,
            _ => {}
        }
        i += 1;
    }
    None
}

// --- %HH escapes and case-insensitive comparison ---------------------------------------

/// The bytes `s` stands for with each `%HH` decoded; a `%` not followed by two
/// hex digits stands for itself.
pub fn unescaped(s: &[u8]) -> Unescaped<'_> {
    Unescaped { s, pos: 0 }
}

/// Iterator returned by [`unescaped`].
#[derive(Clone, Debug)]
pub struct Unescaped<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Iterator for Unescaped<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = *self.s.get(self.pos)?;
        if b == b'%' {
            let hi = self.s.get(self.pos + 1).and_then(|&h| hex_val(h));
            let lo = self.s.get(self.pos + 2).and_then(|&l| hex_val(l));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                self.pos += 3;
                return Some(hi << 4 | lo);
            }
        }
        self.pos += 1;
        Some(b)
    }
}

/// Decodes the `%HH` escapes of `s` into `buf`; `None` if `buf` is too small.
pub fn unescape_into<'b>(s: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut n = 0;
    for b in unescaped(s) {
        *buf.get_mut(n)? = b;
        n += 1;
    }
    buf.get(..n)
}

/// Whether `a` and `b` are equal ignoring ASCII case.
pub fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether `s` starts with `prefix`, ignoring ASCII case.
pub fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Whether `escaped` (which may hold `%HH` escapes) stands for `plain`, ignoring ASCII case.
#[inline]
pub fn unescaped_eq_ignore_case(escaped: &[u8], plain: &[u8]) -> bool {
    // A first byte that starts no escape is the first character itself:
    // most names differ there (`ftag`, `lr` against `transport`).
    if let (Some(&e), Some(&p)) = (escaped.first(), plain.first()) {
        if e != b'%' && !e.eq_ignore_ascii_case(&p) {
            return false;
        }
    }
    // An escape only makes the text longer than what it stands for, and by
    // at most three bytes for one: most names are told apart by length alone.
    if escaped.len() == plain.len() {
        // Equal length: equal only if no `%HH` shortened it, so a plain
        // compare decides, unless it matched text that holds an escape.
        return escaped.eq_ignore_ascii_case(plain) && !has_escape(escaped);
    }
    // Each escape shortens the text by two bytes.
    if escaped.len() < plain.len()
        || escaped.len() > plain.len().saturating_mul(3)
        || (escaped.len() - plain.len()) % 2 != 0
    {
        return false;
    }
    unescaped_eq_slow(escaped, plain)
}

/// Whether `s` holds a `%HH` escape.
// Names are a few bytes long: a byte loop, not the memchr call `contains` makes.
#[allow(clippy::manual_contains)]
fn has_escape(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'%') && unescaped(s).count() != s.len()
}

/// [`unescaped_eq_ignore_case`] for an `escaped` longer than `plain`.
#[allow(clippy::manual_contains)]
fn unescaped_eq_slow(escaped: &[u8], plain: &[u8]) -> bool {
    // Names are a few bytes long: a byte loop, not a memchr call.
    if !escaped.iter().any(|&b| b == b'%') {
        return false;
    }
    unescaped(escaped)
        .map(|b| b.to_ascii_lowercase())
        .eq(plain.iter().map(|b| b.to_ascii_lowercase()))
}

// --- numbers -------------------------------------------------------------------------------------

/// Parses `1*DIGIT` as a `u32`. Anything else, or a value above `u32::MAX`, is
/// [`ErrorKind::BadNumber`] at the offending byte.
pub fn parse_u32(s: &[u8]) -> Result<u32> {
    digits(s, false)
}

/// Parses `1*DIGIT` as a `u32`, saturating at `u32::MAX` instead of failing
/// (RFC 3261 §10.2.1.1: larger expiry values MAY be treated as 2**32-1).
pub fn parse_u32_saturating(s: &[u8]) -> Result<u32> {
    digits(s, true)
}

fn digits(s: &[u8], saturate: bool) -> Result<u32> {
    if s.is_empty() {
        return Err(ParseError::new(ErrorKind::BadNumber, 0));
    }
    let mut n: u32 = 0;
    for (i, &b) in s.iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(ParseError::new(ErrorKind::BadNumber, i));
        }
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(b - b'0')))
        {
            Some(n) => n,
            None if saturate => u32::MAX,
            None => return Err(ParseError::new(ErrorKind::BadNumber, i)),
        };
    }
    Ok(n)
}

/// The run of digits at the start of `s` read as a port: how many digits
/// there are, and the port if there is at least one and it fits in a `u16`.
/// One pass, where a count then a checked parse took two.
#[inline]
pub fn leading_port(s: &[u8]) -> (usize, Option<u16>) {
    let mut n = 0;
    let mut value: u32 = 0;
    while let Some(&b) = s.get(n) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        // Past 65535 it can only stay too large: stop growing it.
        if value <= 0xffff {
            value = value * 10 + u32::from(d);
        }
        n += 1;
    }
    let port = u16::try_from(value).ok().filter(|_| n > 0);
    (n, port)
}

// --- parameter lists ---------------------------------------------------------------------------

/// One `;name[=value]` parameter of a URI or header value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param<'a> {
    /// The name as written (a URI parameter name may hold `%HH` escapes).
    pub name: &'a [u8],
    /// The value: `None` for `;name`; for a quoted value, the raw text inside the quotes.
    pub value: Option<&'a [u8]>,
    /// Whether the value was a quoted-string (see [`unquoted`]).
    pub quoted: bool,
    /// Offset of the leading `;` (or of the name if there is none) in the scanned slice.
    pub start: usize,
    /// Offset just past the value (or the name), in the scanned slice.
    pub end: usize,
}

impl Param<'_> {
    /// Whether the parameter is called `name` (ASCII case-insensitive).
    pub fn is(&self, name: &[u8]) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// The first item of a plain `*( ";" name [ "=" value ] )` list whose name
/// `is_name` accepts, as [`Params`] would give it. Plain: checked when parsed
/// to hold no white space, no quotes, no empty item and at most one `=` per
/// item, so a split on `;` reads it without [`Params`]' LWS and quote
/// handling (the fast path of [`Via::param`](super::via::Via::param) and
/// [`Uri::param`](super::uri::Uri::param)).
pub(crate) fn plain_param<'a>(
    list: &'a [u8],
    is_name: impl Fn(&[u8]) -> bool,
) -> Option<Param<'a>> {
    let mut start = 0;
    let mut rest = list;
    while let [b';', tail @ ..] = rest {
        // Items are a few bytes long: a plain scan beats a memchr call.
        let len = tail.iter().position(|&b| b == b';').unwrap_or(tail.len());
        let (item, after) = tail.split_at(len);
        let (name, value) = match item.iter().position(|&b| b == b'=') {
            Some(eq) => (&item[..eq], Some(&item[eq + 1..])),
            None => (item, None),
        };
        if is_name(name) {
            return Some(Param {
                name,
                value,
                quoted: false,
                start,
                end: start + 1 + len,
            });
        }
        start += 1 + len;
        rest = after;
    }
    None
}

/// Iterator over a `*( ";" name [ "=" value ] )` list.
///
/// Lenient by design: the view that owns the list has already checked it (for
/// header parameters with [`scan_params`]), so this only splits it. It splits on
/// `;` outside quoted strings, trims LWS around names and values, and skips empty
/// items; it never fails and never panics, whatever the bytes.
#[derive(Clone, Debug)]
pub struct Params<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Params<'a> {
    /// Iterates the parameters of `s` (a leading `;` is optional).
    pub fn new(s: &'a [u8]) -> Params<'a> {
        Params { s, pos: 0 }
    }

    /// The first parameter called `name` (ASCII case-insensitive).
    pub fn get(mut self, name: &[u8]) -> Option<Param<'a>> {
        self.find(|p| p.is(name))
    }
}

/// The first parameter called `name` (ASCII case-insensitive) in the list `params`.
pub fn params_find<'a>(params: &'a [u8], name: &[u8]) -> Option<Param<'a>> {
    Params::new(params).get(name)
}

impl<'a> Iterator for Params<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        loop {
            let start = skip_lws(self.s, self.pos);
            if start >= self.s.len() {
                self.pos = start;
                return None;
            }
            let body = if self.s.get(start) == Some(&b';') {
                start + 1
            } else {
                start
            };
            let seg_end = find_unquoted(self.s, body, b';');
            self.pos = seg_end;
            let seg = self.s.get(body..seg_end).unwrap_or_default();
            let (name, rest) = match memchr::memchr(b'=', seg) {
                Some(eq) => (
                    seg.get(..eq).unwrap_or_default(),
                    Some(seg.get(eq + 1..).unwrap_or_default()),
                ),
                None => (seg, None),
            };
            let name = trim_lws(name);
            if name.is_empty() && rest.is_none() {
                continue;
            }
            let (mut value, mut quoted) = (rest.map(trim_lws), false);
            if let Some(v) = value {
                if v.len() >= 2 && v.first() == Some(&b'"') && v.last() == Some(&b'"') {
                    value = v.get(1..v.len() - 1);
                    quoted = true;
                }
            }
            let (_, seg_trim_end) = trim_lws_range(seg);
            let end = body + seg_trim_end;
            return Some(Param {
                name,
                value,
                quoted,
                start,
                end,
            });
        }
    }
}

/// Index of the first `needle` at or after `pos` outside quoted strings, or `s.len()`.
#[inline]
fn find_unquoted(s: &[u8], pos: usize, needle: u8) -> usize {
    let mut i = pos;
    while let Some(rest) = s.get(i..) {
        match rest.iter().position(|&b| b == needle || b == b'"') {
            None => break,
            Some(k) if rest[k] == needle => return i + k,
            // Inside quotes a backslash escapes the next byte.
            Some(k) => i = quoted_end(s, i + k),
        }
    }
    s.len()
}

/// Checks a header parameter list `*( SEMI generic-param )` (RFC 3261 §25.1)
/// starting at `s[pos]`, and returns the index just past its last parameter
/// (`pos` if there is none). The caller decides what may follow: the list stops
/// at the first byte after LWS that is not `;`.
///
/// `generic-param = token [ EQUAL gen-value ]`, `gen-value = token / host /
/// quoted-string`. As a leniency, an unquoted value may also hold `:` `[` `]`,
/// so a bare IPv6 `received=2001:db8::9` (RFC 3261 §20.42 allows it) reads.
pub fn scan_params(s: &[u8], pos: usize) -> Result<usize> {
    scan_params_each(s, pos, |_| {})
}

/// [`scan_params`], handing each parameter to `each` as it is checked, so a
/// view that wants some of them (Via `branch`, To `tag`) reads the list once.
/// Each [`Param`] is the one [`Params`] would yield over the checked list,
/// with offsets relative to `s` (`start` is its `;`).
#[inline]
pub fn scan_params_each<'a>(
    s: &'a [u8],
    pos: usize,
    mut each: impl FnMut(Param<'a>),
) -> Result<usize> {
    let bad = |at| ParseError::new(ErrorKind::BadParam, at);
    let mut end = pos;
    loop {
        let semi = skip_lws(s, end);
        if s.get(semi) != Some(&b';') {
            return Ok(end);
        }
        let name = skip_lws(s, semi + 1);
        let name_end = token_end(s, name);
        if name_end == name {
            return Err(bad(name));
        }
        end = name_end;
        let eq = skip_lws(s, name_end);
        let mut value = None;
        let mut quoted = false;
        if s.get(eq) == Some(&b'=') {
            let v = skip_lws(s, eq + 1);
            if s.get(v) == Some(&b'"') {
                let (inner, after) = quoted_string(s, v)?;
                value = Some(inner);
                quoted = true;
                end = after;
            } else {
                end = gen_value_end(s, v)?;
                value = s.get(v..end);
            }
        }
        each(Param {
            name: s.get(name..name_end).unwrap_or_default(),
            value,
            quoted,
            start: semi,
            end,
        });
    }
}

/// Index just past the `gen-value` starting at `s[pos]`.
fn gen_value_end(s: &[u8], pos: usize) -> Result<usize> {
    if s.get(pos) == Some(&b'"') {
        return quoted_string(s, pos).map(|(_, end)| end);
    }
    let end = class_end(s, pos, GEN_VALUE);
    if end == pos {
        return Err(ParseError::new(ErrorKind::BadParam, pos));
    }
    Ok(end)
}

// --- comma-separated values ----------------------------------------------------------------

/// Splits a header value on top-level commas: commas inside quoted strings and
/// `<...>` do not split (nor inside `(...)` comments, with
/// [`SplitValues::with_comments`]). Each item is LWS-trimmed and comes with its
/// offset in `s`. Empty items are yielded (as empty slices) so the caller can
/// reject them, except that an all-blank value yields nothing.
///
/// This is how multi-value Via, Route, Record-Route and Contact headers are split.
pub fn split_values(s: &[u8]) -> SplitValues<'_> {
    SplitValues {
        s,
        pos: 0,
        done: trim_lws(s).is_empty(),
        comments: false,
    }
}

/// Iterator returned by [`split_values`].
#[derive(Clone, Debug)]
pub struct SplitValues<'a> {
    s: &'a [u8],
    pos: usize,
    done: bool,
    comments: bool,
}

impl SplitValues<'_> {
    /// Also keeps commas inside `(...)` comments, as a Via may carry one.
    pub fn with_comments(mut self) -> Self {
        self.comments = true;
        self
    }
}

impl<'a> Iterator for SplitValues<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<(usize, &'a [u8])> {
        if self.done {
            return None;
        }
        let start = self.pos;
        let mut i = start;
        loop {
            // Most values hold none of the bytes that matter here.
            i = find_any(self.s, i, [b',', b'"', b'<', b'(']);
            let Some(&b) = self.s.get(i) else { break };
            match b {
                b',' => break,
                b'"' => i = quoted_end(self.s, i),
                // A URI holds no `>`, so the first one closes the bracket.
                b'<' => i = (find_any(self.s, i, [b'>']) + 1).min(self.s.len()),
                b'(' if self.comments => i = skip_comment(self.s, i).unwrap_or(self.s.len()),
                _ => i += 1,
            }
        }
        let end = i.min(self.s.len());
        if end >= self.s.len() {
            self.done = true;
        } else {
            self.pos = end + 1;
        }
        let piece = self.s.get(start..end).unwrap_or_default();
        let (a, b) = trim_lws_range(piece);
        Some((start + a, piece.get(a..b).unwrap_or_default()))
    }
}

/// Index past the quoted string opening at `s[pos]`, or `s.len()` if unclosed.
fn quoted_end(s: &[u8], pos: usize) -> usize {
    let mut i = pos + 1;
    while let Some(&b) = s.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

/// Where `part`, a slice of `src`, lies in it, as `(start, end)` offsets
/// (address arithmetic only: for the views that keep spans instead of
/// borrows, so they can live beside their buffer).
pub(crate) fn span_in(src: &[u8], part: &[u8]) -> (u32, u32) {
    let start = (part.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize) as u32;
    (start, start + part.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn token_chars_follow_rfc3261() {
        for b in b"aZ09-.!%*_+`'~" {
            assert!(is_token_char(*b), "{}", *b as char);
        }
        for b in b" \t\"(),/:;<=>?@[\\]{}\r\n\x00\x7f\x80" {
            assert!(!is_token_char(*b), "{:#x}", b);
        }
        assert!(is_token(b"z9hG4bK-1.2"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert_eq!(token_end(b"abc;d", 0), 3);
        assert_eq!(token_end(b"abc", 7), 7);
    }

    #[test]
    fn lws_skips_spaces_tabs_and_folds_only() {
        assert_eq!(skip_lws(b"  \t x", 0), 4);
        assert_eq!(skip_lws(b" \r\n x", 0), 4);
        assert_eq!(skip_lws(b"\r\n\tx", 0), 3);
        assert_eq!(skip_lws(b" \n x", 0), 3);
        // A line break that is not followed by white space ends the header: not LWS.
        assert_eq!(skip_lws(b" \r\nx", 0), 1);
        assert_eq!(skip_lws(b"\r\n", 0), 0);
        assert_eq!(skip_lws(b"\r", 0), 0);
        assert_eq!(skip_lws(b"ab", 5), 5);
    }

    #[test]
    fn trim_removes_lws_at_both_ends() {
        assert_eq!(trim_lws(b" \r\n abc \t\r\n"), b"abc");
        assert_eq!(trim_lws(b"   "), b"");
        assert_eq!(trim_lws(b""), b"");
        assert_eq!(trim_lws(b"a b"), b"a b");
        assert_eq!(trim_lws_range(b"  ab "), (2, 4));
    }

    #[test]
    fn quoted_strings_with_escapes() {
        let s = br#""J Rosenberg \\\"" <sip:a@b>"#;
        let (inner, end) = quoted_string(s, 0).unwrap();
        assert_eq!(inner, br#"J Rosenberg \\\""#);
        assert_eq!(&s[end..], b" <sip:a@b>");
        assert_eq!(
            unquoted(inner).collect::<Vec<_>>(),
            br#"J Rosenberg \""#.to_vec()
        );

        // RFC 4475 §3.1.1.3: escaped control characters are legal quoted-pairs.
        let (inner, _) = quoted_string(b"\"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\"", 0).unwrap();
        assert_eq!(
            unquoted(inner).collect::<Vec<_>>(),
            b"BEL:\x07 NUL:\x00 DEL:\x7f".to_vec()
        );

        // A fold inside a quoted string is LWS.
        assert_eq!(quoted_string(b"\"a\r\n b\"", 0).unwrap().0, b"a\r\n b");
        assert_eq!(quoted_string(b"\"\"", 0).unwrap(), (&b""[..], 2));
        // UTF-8 is qdtext.
        assert!(quoted_string("\"Jöhn\"".as_bytes(), 0).is_ok());
    }

    #[test]
    fn bad_quoted_strings() {
        let kind = |s: &[u8]| {
            quoted_string(s, 0)
                .map(|(_, end)| end)
                .map_err(|e| (e.kind, e.offset))
        };
        assert_eq!(kind(b"\"abc"), Err((ErrorKind::BadQuotedString, 4)));
        assert_eq!(kind(b"\"abc\\\""), Err((ErrorKind::BadQuotedString, 6)));
        assert_eq!(kind(b"\"a\\"), Err((ErrorKind::BadQuotedString, 2)));
        assert_eq!(kind(b"\"a\x00b\""), Err((ErrorKind::BadQuotedString, 2)));
        assert_eq!(kind(b"\"a\x7fb\""), Err((ErrorKind::BadQuotedString, 2)));
        assert_eq!(kind(b"\"a\r\nb\""), Err((ErrorKind::BadQuotedString, 2)));
        assert_eq!(kind(b"\"a\\\rb\""), Err((ErrorKind::BadQuotedString, 2)));
        assert_eq!(kind(b"\"a\\\xc3\""), Err((ErrorKind::BadQuotedString, 2)));
        assert_eq!(kind(b"abc"), Err((ErrorKind::BadQuotedString, 0)));
        assert_eq!(kind(b""), Err((ErrorKind::BadQuotedString, 0)));
    }

    #[test]
    fn comments_nest_and_escape() {
        assert_eq!(skip_comment(b"(a (b) c) x", 0), Some(9));
        assert_eq!(skip_comment(b"(a \\) b)", 0), Some(8));
        assert_eq!(skip_comment(b"(a (b)", 0), None);
        assert_eq!(skip_comment(b"((((((((((", 0), None);
        assert_eq!(skip_comment(b"x", 0), None);
        assert_eq!(skip_comment(b"(\\", 0), None);
    }

    #[test]
    fn percent_unescaping() {
        assert_eq!(
            unescaped(b"%61lice%2").collect::<Vec<_>>(),
            b"alice%2".to_vec()
        );
        assert_eq!(
            unescaped(b"%zz%4A%4a").collect::<Vec<_>>(),
            b"%zzJJ".to_vec()
        );
        assert_eq!(unescaped(b"%00").collect::<Vec<_>>(), vec![0]);
        let mut buf = [0u8; 5];
        assert_eq!(unescape_into(b"%61lice", &mut buf), Some(&b"alice"[..]));
        assert_eq!(unescape_into(b"alice!", &mut buf), None);
        assert!(unescaped_eq_ignore_case(b"%6C%72", b"LR"));
        assert!(unescaped_eq_ignore_case(b"Transport", b"transport"));
        assert!(!unescaped_eq_ignore_case(b"%6C%72x", b"lr"));
        assert!(starts_with_ignore_case(b"Z9HG4BKabc", b"z9hg4bk"));
        assert!(!starts_with_ignore_case(b"z9", b"z9hg4bk"));
        assert!(eq_ignore_case(b"INVITE", b"invite"));
    }

    #[test]
    fn strict_numbers() {
        assert_eq!(parse_u32(b"0"), Ok(0));
        assert_eq!(parse_u32(b"007"), Ok(7));
        assert_eq!(parse_u32(b"4294967295"), Ok(u32::MAX));
        assert_eq!(parse_u32(b"4294967296").unwrap_err().offset, 9);
        assert_eq!(parse_u32(b"").unwrap_err().kind, ErrorKind::BadNumber);
        assert_eq!(parse_u32(b"12a").unwrap_err().offset, 2);
        assert_eq!(parse_u32(b"-1").unwrap_err().offset, 0);
        assert_eq!(parse_u32(b" 1").unwrap_err().offset, 0);
        assert_eq!(
            parse_u32_saturating(b"1000000000000000000000000000000000000000000"),
            Ok(u32::MAX)
        );
        assert_eq!(parse_u32_saturating(b"99x").unwrap_err().offset, 2);
    }

    #[test]
    fn params_iterate_with_offsets() {
        let s = b";transport=tcp;lr ; q = 0.5;x=\"a;b\";maddr=[::1]";
        let ps: Vec<_> = Params::new(s).collect();
        assert_eq!(ps.len(), 5);
        assert_eq!(
            (ps[0].name, ps[0].value),
            (&b"transport"[..], Some(&b"tcp"[..]))
        );
        assert_eq!((ps[0].start, ps[0].end), (0, 14));
        assert_eq!((ps[1].name, ps[1].value), (&b"lr"[..], None));
        assert_eq!(&s[ps[1].start..ps[1].end], b";lr");
        assert_eq!((ps[2].name, ps[2].value), (&b"q"[..], Some(&b"0.5"[..])));
        assert_eq!(&s[ps[2].start..ps[2].end], b"; q = 0.5");
        assert_eq!((ps[3].value, ps[3].quoted), (Some(&b"a;b"[..]), true));
        assert_eq!(ps[4].value, Some(&b"[::1]"[..]));
        assert_eq!(params_find(s, b"LR").map(|p| p.value), Some(None));
        assert_eq!(
            params_find(s, b"Q").and_then(|p| p.value),
            Some(&b"0.5"[..])
        );
        assert!(params_find(s, b"ttl").is_none());
        // Empty items are skipped; a missing leading `;` is tolerated.
        let names: Vec<_> = Params::new(b"a;;b=;").map(|p| (p.name, p.value)).collect();
        assert_eq!(names, vec![(&b"a"[..], None), (&b"b"[..], Some(&b""[..]))]);
        assert_eq!(Params::new(b"").count(), 0);
        assert_eq!(Params::new(b" ; ").count(), 0);
    }

    #[test]
    fn scan_params_accepts_rfc_forms() {
        let ok = |s: &[u8]| scan_params(s, 0);
        assert_eq!(ok(b""), Ok(0));
        assert_eq!(ok(b";tag=1918181833n"), Ok(16));
        // RFC 4475 §3.1.1.1: LWS and folds around `;` and `=`.
        assert_eq!(ok(b" ;   tag    = 1918181833n"), Ok(25));
        assert_eq!(ok(b"\r\n  ;\r\n  tag = 98asjd8"), Ok(22));
        assert_eq!(ok(b";lr;q=0.3 ,next"), Ok(9));
        assert_eq!(ok(b";x=\"a \\\" b\";y"), Ok(13));
        assert_eq!(ok(b";received=[2001:db8::9:255]"), Ok(27));
        assert_eq!(ok(b";received=2001:db8::9:255"), Ok(25));
        assert_eq!(ok(b";branch=x (comment)"), Ok(9));
    }

    #[test]
    fn scan_params_rejects_malformed() {
        let err = |s: &[u8]| scan_params(s, 0).map_err(|e| (e.kind, e.offset));
        assert_eq!(err(b";"), Err((ErrorKind::BadParam, 1)));
        assert_eq!(err(b";;a"), Err((ErrorKind::BadParam, 1)));
        assert_eq!(err(b";=a"), Err((ErrorKind::BadParam, 1)));
        assert_eq!(err(b";a="), Err((ErrorKind::BadParam, 3)));
        assert_eq!(err(b";a= ;b"), Err((ErrorKind::BadParam, 4)));
        assert_eq!(err(b";a=\"x"), Err((ErrorKind::BadQuotedString, 5)));
        assert_eq!(err(b";a=<x>"), Err((ErrorKind::BadParam, 3)));
    }

    #[test]
    fn split_values_respects_quotes_brackets_comments() {
        let s = b"\"A, B\" <sip:a,b@x>;p=\"1,2\" , <sip:c@y>,sip:d@z";
        let items: Vec<_> = split_values(s).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], (0, &b"\"A, B\" <sip:a,b@x>;p=\"1,2\""[..]));
        assert_eq!(items[1], (29, &b"<sip:c@y>"[..]));
        assert_eq!(items[2], (39, &b"sip:d@z"[..]));
        for (off, v) in &items {
            assert_eq!(&s[*off..*off + v.len()], *v);
        }

        let via = b"SIP/2.0/UDP a (x, y), SIP/2.0/TCP b";
        assert_eq!(split_values(via).count(), 3);
        assert_eq!(split_values(via).with_comments().count(), 2);

        let empties: Vec<_> = split_values(b"a,,b,").map(|(_, v)| v).collect();
        assert_eq!(empties, vec![&b"a"[..], b"", b"b", b""]);
        assert_eq!(split_values(b"").count(), 0);
        assert_eq!(split_values(b" \t ").count(), 0);
        // Unclosed quote or bracket: the rest is one item.
        assert_eq!(split_values(b"\"a,b").count(), 1);
        assert_eq!(split_values(b"<sip:a,b").count(), 1);
        assert_eq!(split_values(b"\"a\\").count(), 1);
    }

    /// The scanners as they were before their fast paths, to compare with.
    mod reference {
        use super::super::*;

        /// The byte-at-a-time splitter `SplitValues` was first written as.
        pub fn split_values(s: &[u8], comments: bool) -> Vec<(usize, &[u8])> {
            let mut out = Vec::new();
            if trim_lws(s).is_empty() {
                return out;
            }
            let mut pos = 0;
            loop {
                let start = pos;
                let mut i = start;
                while let Some(&b) = s.get(i) {
                    match b {
                        b',' => break,
                        b'"' => i = quoted_end(s, i),
                        b'<' => {
                            i = s
                                .iter()
                                .skip(i)
                                .position(|&c| c == b'>')
                                .map_or(s.len(), |n| i + n + 1)
                        }
                        b'(' if comments => i = skip_comment(s, i).unwrap_or(s.len()),
                        _ => i += 1,
                    }
                }
                let end = i.min(s.len());
                let piece = &s[start..end];
                let (a, b) = trim_lws_range(piece);
                out.push((start + a, &piece[a..b]));
                if end >= s.len() {
                    return out;
                }
                pos = end + 1;
            }
        }

        /// The byte loop `find_any` replaces.
        pub fn find_any(s: &[u8], pos: usize, needles: &[u8]) -> usize {
            s.iter()
                .skip(pos)
                .position(|b| needles.contains(b))
                .map_or(s.len().max(pos), |n| pos + n)
        }

        pub fn find_unquoted(s: &[u8], pos: usize, needle: u8) -> usize {
            let mut i = pos;
            let mut in_quotes = false;
            while let Some(&b) = s.get(i) {
                if in_quotes {
                    match b {
                        b'\\' => i += 1,
                        b'"' => in_quotes = false,
                        _ => {}
                    }
                } else if b == needle {
                    return i;
                } else if b == b'"' {
                    in_quotes = true;
                }
                i += 1;
            }
            s.len()
        }

        pub fn trim_lws_range(s: &[u8]) -> (usize, usize) {
            let start = skip_lws(s, 0).min(s.len());
            let rest = s.get(start..).unwrap_or_default();
            let len = rest
                .iter()
                .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .map_or(0, |i| i + 1);
            (start, start + len)
        }

        fn trim(s: &[u8]) -> &[u8] {
            let (a, b) = trim_lws_range(s);
            &s[a..b]
        }

        pub fn params(s: &[u8]) -> Vec<Param<'_>> {
            let mut out = Vec::new();
            let mut pos = 0;
            loop {
                let start = skip_lws(s, pos);
                if start >= s.len() {
                    return out;
                }
                let body = if s[start] == b';' { start + 1 } else { start };
                let seg_end = find_unquoted(s, body, b';');
                pos = seg_end;
                let seg = &s[body..seg_end];
                let (name, rest) = match seg.iter().position(|&b| b == b'=') {
                    Some(eq) => (&seg[..eq], Some(&seg[eq + 1..])),
                    None => (seg, None),
                };
                let name = trim(name);
                if name.is_empty() && rest.is_none() {
                    continue;
                }
                let (mut value, mut quoted) = (rest.map(trim), false);
                if let Some(v) = value {
                    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
                        value = Some(&v[1..v.len() - 1]);
                        quoted = true;
                    }
                }
                let end = body + trim_lws_range(seg).1;
                out.push(Param {
                    name,
                    value,
                    quoted,
                    start,
                    end,
                });
            }
        }

        pub fn scan_params(s: &[u8], pos: usize) -> Result<usize> {
            let bad = |at| ParseError::new(ErrorKind::BadParam, at);
            let mut end = pos;
            loop {
                let semi = skip_lws(s, end);
                if s.get(semi) != Some(&b';') {
                    return Ok(end);
                }
                let name = skip_lws(s, semi + 1);
                let rest = s.get(name..).unwrap_or_default();
                let name_end = name + rest.iter().take_while(|&&b| is_token_char(b)).count();
                if name_end == name {
                    return Err(bad(name));
                }
                end = name_end;
                let eq = skip_lws(s, name_end);
                if s.get(eq) == Some(&b'=') {
                    let value = skip_lws(s, eq + 1);
                    end = if s.get(value) == Some(&b'"') {
                        quoted_string(s, value)?.1
                    } else {
                        let rest = s.get(value..).unwrap_or_default();
                        let len = rest
                            .iter()
                            .take_while(|&&b| is_token_char(b) || matches!(b, b':' | b'[' | b']'))
                            .count();
                        if len == 0 {
                            return Err(bad(value));
                        }
                        value + len
                    };
                }
            }
        }
    }

    #[test]
    fn token_table_matches_the_rfc_class() {
        for b in 0..=255u8 {
            let rfc = b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                );
            assert_eq!(is_token_char(b), rfc, "{b:#x}");
        }
    }

    proptest! {
        /// The eight-at-a-time run and the gen-value run end where the
        /// byte-at-a-time run ends, on runs of every length and any byte.
        #[test]
        fn wide_runs_end_where_byte_runs_end(
            head in "[a-zA-Z0-9.!%*_+`'~:\\[\\]-]{0,40}",
            tail in proptest::collection::vec(any::<u8>(), 0..12),
            pos in 0usize..60,
        ) {
            let mut s = head.into_bytes();
            s.extend_from_slice(&tail);
            for class in [TOKEN, GEN_VALUE] {
                prop_assert_eq!(class_end_wide(&s, pos, class), class_end(&s, pos, class));
            }
            let (end, token) = gen_value_run(&s, pos);
            prop_assert_eq!(end, class_end(&s, pos, GEN_VALUE));
            let run = s.get(pos..end).unwrap_or_default();
            prop_assert_eq!(token, run.iter().all(|&b| is_token_char(b)));
        }

        #[test]
        fn scanners_never_panic(s in proptest::collection::vec(any::<u8>(), 0..64), pos in 0usize..80) {
            let _ = skip_lws(&s, pos);
            let _ = trim_lws(&s);
            let _ = quoted_string(&s, pos);
            let _ = skip_comment(&s, pos);
            let _ = scan_params(&s, pos);
            let _ = token_end(&s, pos);
            let _ = parse_u32(&s);
            let _ = unescaped(&s).count();
            let _ = unquoted(&s).count();
            for p in Params::new(&s) {
                prop_assert!(p.start <= p.end && p.end <= s.len());
            }
            for (off, v) in split_values(&s).with_comments() {
                prop_assert_eq!(&s[off..off + v.len()], v);
            }
        }

        #[test]
        fn split_values_yields_every_comma_separated_token(items in proptest::collection::vec("[a-z0-9]{1,8}", 1..6)) {
            let joined = items.join(" , ");
            let got: Vec<_> = split_values(joined.as_bytes()).map(|(_, v)| v.to_vec()).collect();
            let want: Vec<_> = items.iter().map(|s| s.as_bytes().to_vec()).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn generated_params_read_back(
            items in proptest::collection::vec(
                ("[a-z][a-z0-9-]{0,6}", proptest::option::of(prop_oneof!["[a-zA-Z0-9.:]{1,8}", "\"[a-z ,;=]{0,8}\""])),
                0..5,
            ),
            sp in prop::sample::select(vec!["", " ", "\r\n "]),
        ) {
            let mut s = String::new();
            for (name, value) in &items {
                s += &format!("{sp};{sp}{name}");
                if let Some(v) = value {
                    s += &format!("{sp}={sp}{v}");
                }
            }
            prop_assert_eq!(scan_params(s.as_bytes(), 0), Ok(s.len()));
            let got: Vec<_> = Params::new(s.as_bytes()).map(|p| (p.name.to_vec(), p.value.map(<[u8]>::to_vec), p.quoted)).collect();
            let want: Vec<_> = items
                .iter()
                .map(|(n, v)| {
                    let quoted = v.as_ref().is_some_and(|v| v.starts_with('"'));
                    let inner = v.as_ref().map(|v| v.trim_matches('"').as_bytes().to_vec());
                    (n.as_bytes().to_vec(), inner, quoted)
                })
                .collect();
            prop_assert_eq!(got, want);
        }

        /// The fast paths (class table, quote skipping, trimming) split
        /// every list exactly as the straightforward scanner they replaced.
        #[test]
        fn params_match_the_reference_scanner(
            s in proptest::collection::vec(prop::sample::select(b"ab=;\" \t\r\n\\,:[]".to_vec()), 0..40),
        ) {
            let got: Vec<_> = Params::new(&s).collect();
            let want = reference::params(&s);
            prop_assert_eq!(got, want);
            for pos in 0..=s.len() {
                prop_assert_eq!(find_unquoted(&s, pos, b';'), reference::find_unquoted(&s, pos, b';'));
            }
            prop_assert_eq!(trim_lws_range(&s), reference::trim_lws_range(&s));
        }

        /// What `scan_params_each` hands out is what `Params` reads back from
        /// the checked list, offsets included.
        #[test]
        fn scan_params_each_agrees_with_params(
            s in proptest::collection::vec(prop::sample::select(b"ab=;\" \t\r\n\\:[]".to_vec()), 0..40),
            pos in 0usize..4,
        ) {
            let mut seen = Vec::new();
            let got = scan_params_each(&s, pos, |p| seen.push(p));
            prop_assert_eq!(got, reference::scan_params(&s, pos));
            if let Some(list) = got.ok().and_then(|end| s.get(pos..end)) {
                let base = pos;
                let want: Vec<_> = Params::new(list)
                    .map(|p| Param { start: p.start + base, end: p.end + base, ..p })
                    .collect();
                prop_assert_eq!(seen, want);
            }
        }

        /// The word-at-a-time searches split and find exactly as the byte loops.
        #[test]
        fn word_searches_match_byte_loops(
            s in proptest::collection::vec(prop::sample::select(b"ab,\"<>() \t\\;:\x80\x7f\x00\xff".to_vec()), 0..48),
            pos in 0usize..50,
        ) {
            let got: Vec<_> = split_values(&s).collect();
            prop_assert_eq!(got, reference::split_values(&s, false));
            let got: Vec<_> = split_values(&s).with_comments().collect();
            prop_assert_eq!(got, reference::split_values(&s, true));
            prop_assert_eq!(find_any(&s, pos, [b',', b'"', b'<']), reference::find_any(&s, pos, b",\"<"));
            prop_assert_eq!(find_any(&s, pos, [0x80]), reference::find_any(&s, pos, &[0x80]));
            let visible = s.iter().position(|b| !(0x21..=0x7e).contains(b));
            let mut swar = None;
            let mut i = 0;
            while i + 8 <= s.len() {
                let hits = bytes_not_visible(word(&s, i));
                if hits != 0 {
                    swar = Some(i + (hits.trailing_zeros() / 8) as usize);
                    break;
                }
                i += 8;
            }
            if swar.is_none() {
                swar = s[i..].iter().position(|b| !(0x21..=0x7e).contains(b)).map(|p| i + p);
            }
            prop_assert_eq!(swar, visible);
        }

        /// The length shortcuts give what decoding every escape and
        /// comparing gives.
        #[test]
        fn unescaped_eq_matches_decode_and_compare(
            escaped in proptest::collection::vec(prop::sample::select(b"%6cClLrR2zZ0x".to_vec()), 0..12),
            plain in prop::sample::select(vec![&b"lr"[..], b"LR", b"l", b"ttl", b"maddr", b"%6c", b"%zz", b"", b"transport", b"lrx"]),
        ) {
            let want = unescaped(&escaped)
                .map(|b| b.to_ascii_lowercase())
                .eq(plain.iter().map(|b| b.to_ascii_lowercase()));
            prop_assert_eq!(unescaped_eq_ignore_case(&escaped, plain), want);
        }

        /// One-pass port reading gives what counting digits and a checked parse give.
        #[test]
        fn leading_port_matches_count_and_parse(
            s in proptest::collection::vec(prop::sample::select(b"0123456789;a".to_vec()), 0..14),
        ) {
            let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
            let port = parse_u32(&s[..n]).ok().and_then(|v| u16::try_from(v).ok());
            prop_assert_eq!(leading_port(&s), (n, port));
        }

        #[test]
        fn parse_u32_matches_std(n in any::<u64>()) {
            let text = n.to_string();
            prop_assert_eq!(parse_u32(text.as_bytes()).ok(), u32::try_from(n).ok());
            prop_assert_eq!(parse_u32_saturating(text.as_bytes()), Ok(u32::try_from(n).unwrap_or(u32::MAX)));
        }
    }
}
