//! [`Uri`]: a zero-copy view of a `sip:`, `sips:` (RFC 3261 §19.1), `tel:`
//! (RFC 3966) or other absolute URI.
//!
//! Parsing checks the whole grammar once, so the accessors cannot fail. URI
//! equivalence (RFC 3261 §19.1.4) lives in [`super::uri_eq`].

use super::error::{ErrorKind, ParseError, Result};
pub use super::host::Host;
use super::host::HostAt;
use super::packet::Proto;
use super::scan::{self, hex_val, Param, Params};
pub use super::uri_eq::uri_eq;

/// The scheme of a URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme<'a> {
    /// `sip:` (RFC 3261 §19.1).
    Sip,
    /// `sips:` (RFC 3261 §19.1).
    Sips,
    /// `tel:` (RFC 3966).
    Tel,
    /// Any other absolute URI, kept opaque (the scheme name as written).
    Other(&'a [u8]),
}

impl Scheme<'_> {
    /// The scheme name: lower case for the known ones, as written for others.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Scheme::Sip => b"sip",
            Scheme::Sips => b"sips",
            Scheme::Tel => b"tel",
            Scheme::Other(name) => name,
        }
    }

    /// Whether this is `sip:` or `sips:`.
    pub fn is_sip(&self) -> bool {
        matches!(self, Scheme::Sip | Scheme::Sips)
    }
}

/// A parsed URI. All slices borrow the input; user, password, parameter and
/// header text is returned as written (still `%HH`-escaped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    raw: &'a [u8],
    scheme: Scheme<'a>,
    user: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
    host: Option<Host<'a>>,
    host_raw: &'a [u8],
    port: Option<u16>,
    params: &'a [u8],
    headers: Option<&'a [u8]>,
    /// The parameters every proxied request asks about, read while the list
    /// is checked.
    known: KnownParams,
}

/// What [`Uri::transport`], [`Uri::lr`] and [`Uri::is_gruu`] answer, found
/// while the parse checks the parameter list (each the first parameter of
/// that name, as [`Uri::param`] finds it): a Route and a Request-URI are
/// asked several times per request, and a scan of the list each time cost
/// more than the parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct KnownParams {
    /// `transport=`: the first one's value, if it names a known transport.
    transport: Option<Proto>,
    /// `lr` is present (RFC 3261 §19.1.1; `lr=on` counts too).
    lr: bool,
    /// `gr` is present (a GRUU, RFC 5627).
    gr: bool,
}

impl KnownParams {
    /// Notes parameter `name` (as written, maybe escaped) with `value`;
    /// `seen_transport` keeps the first `transport` the one that counts.
    #[inline]
    fn note(&mut self, name: &[u8], value: Option<&[u8]>, seen_transport: &mut bool) {
        // Names differ in their first byte (unless escaped): one compare.
        let first = name.first().map_or(0, u8::to_ascii_lowercase);
        if matches!(first, b't' | b'%')
            && !*seen_transport
            && scan::unescaped_eq_ignore_case(name, b"transport")
        {
            *seen_transport = true;
            self.transport = value.and_then(|v| {
                let mut buf = [0u8; 8];
                Proto::from_name(scan::unescape_into(v, &mut buf)?)
            });
        }
        if matches!(first, b'l' | b'%') && !self.lr {
            self.lr = scan::unescaped_eq_ignore_case(name, b"lr");
        }
        if matches!(first, b'g' | b'%') && !self.gr {
            self.gr = scan::unescaped_eq_ignore_case(name, b"gr");
        }
    }
}

impl<'a> Uri<'a> {
    /// Parses a whole URI: `sip:`/`sips:` per RFC 3261 §25.1 `SIP-URI`, `tel:` per
    /// RFC 3966 `telephone-uri`, anything else as an opaque `absoluteURI`.
    ///
    /// Spaces, control characters and non-ASCII bytes are rejected anywhere.
    /// Errors carry the offset into `s`.
    pub fn parse(s: &'a [u8]) -> Result<Uri<'a>> {
        // Nearly every URI a proxy reads is `sip:[user@]host[:port][;params]`
        // with nothing escaped: read in one pass, else by the whole grammar.
        match Uri::parse_plain_sip(s) {
            Some(uri) => Ok(uri),
            None => Uri::parse_general(s),
        }
    }

    /// The fast path of [`Uri::parse`]: a `sip:`/`sips:` URI whose user (if
    /// any) and parameters hold no escape nor password, whose host is not an
    /// IPv6 reference, with no header part and no `ttl`/`maddr` (whose values
    /// have rules of their own). Gives what [`Uri::parse_general`] gives, or
    /// `None` for anything else (including every error), which it then reads.
    #[inline]
    fn parse_plain_sip(s: &'a [u8]) -> Option<Uri<'a>> {
        let (scheme, p) = match s {
            [a, b, c, b':', ..] if [*a, *b, *c].eq_ignore_ascii_case(b"sip") => (Scheme::Sip, 4),
            [a, b, c, d, b':', ..] if [*a, *b, *c, *d].eq_ignore_ascii_case(b"sips") => {
                (Scheme::Sips, 5)
            }
            _ => return None,
        };
        let body = s.get(p..)?;
        // The first `@` ends the userinfo, as in the general parse.
        let at = scan::find_any(body, 0, [b'@']);
        let (user, host_start) = match body.get(..at).filter(|_| at < body.len()) {
            // No `:` (a password) and no `%` (an escape) in a user of user characters.
            Some(user) if !user.is_empty() && user.iter().all(|&b| is_user_char(b)) => {
                (Some(user), p + at + 1)
            }
            Some(_) => return None,
            None => (None, p),
        };
        let after_host = s.get(host_start..)?;
        if after_host.first() == Some(&b'[') {
            return None;
        }
        let host_len = after_host
            .iter()
            .position(|&b| matches!(b, b':' | b';' | b'?'))
            .unwrap_or(after_host.len());
        let host_raw = after_host.get(..host_len).filter(|h| !h.is_empty())?;
        // Accepts only digits, dots, letters and `-`: all visible bytes.
        let host = Host::parse(host_raw).ok()?;
        let mut i = host_start + host_len;
        let mut port = None;
        if s.get(i) == Some(&b':') {
            let (n, read) = scan::leading_port(s.get(i + 1..).unwrap_or_default());
            port = Some(read?);
            i += 1 + n;
        }
        let params = s.get(i..).unwrap_or_default();
        let known = plain_uri_params(params)?;
        Some(Uri {
            raw: s,
            scheme,
            user,
            password: None,
            host: Some(host),
            host_raw,
            port,
            params,
            headers: None,
            known,
        })
    }

    /// [`Uri::parse`] by the whole grammar.
    fn parse_general(s: &'a [u8]) -> Result<Uri<'a>> {
        if let Some(at) = find_not_visible(s) {
            return Err(ParseError::new(ErrorKind::BadUri, at));
        }
        // `sip:` first: the scheme of nearly every URI a proxy reads.
        let (colon, scheme) = match s {
            [a, b, c, b':', ..] if [*a, *b, *c].eq_ignore_ascii_case(b"sip") => (3, Scheme::Sip),
            _ => Uri::parse_scheme(s)?,
        };
        let mut uri = Uri {
            raw: s,
            scheme,
            user: None,
            password: None,
            host: None,
            host_raw: b"",
            port: None,
            params: b"",
            headers: None,
            known: KnownParams::default(),
        };
        let rest = colon + 1;
        match scheme {
            Scheme::Sip | Scheme::Sips => uri.parse_sip(rest)?,
            Scheme::Tel => uri.parse_tel(rest)?,
            Scheme::Other(_) => {
                // absoluteURI = scheme ":" ( hier-part / opaque-part ): kept opaque,
                // but it must not be empty nor hold characters a header would split on.
                if rest >= s.len() {
                    return Err(ParseError::new(ErrorKind::BadUri, rest));
                }
                if let Some(at) = s
                    .iter()
                    .position(|&b| matches!(b, b'<' | b'>' | b'"' | b'\\'))
                {
                    return Err(ParseError::new(ErrorKind::BadUri, at));
                }
            }
        }
        Ok(uri)
    }

    /// The scheme and where its `:` is, for any scheme.
    fn parse_scheme(s: &'a [u8]) -> Result<(usize, Scheme<'a>)> {
        let colon = s
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::new(ErrorKind::BadUri, s.len()))?;
        let name = s.get(..colon).unwrap_or_default();
        let scheme_ok = name.first().is_some_and(u8::is_ascii_alphabetic)
            && name
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(ParseError::new(ErrorKind::BadUri, 0));
        }
        let scheme = if name.eq_ignore_ascii_case(b"sip") {
            Scheme::Sip
        } else if name.eq_ignore_ascii_case(b"sips") {
            Scheme::Sips
        } else if name.eq_ignore_ascii_case(b"tel") {
            Scheme::Tel
        } else {
            Scheme::Other(name)
        };
        Ok((colon, scheme))
    }

    /// `[userinfo] hostport uri-parameters [headers]`, from `self.raw[p..]`.
    fn parse_sip(&mut self, p: usize) -> Result<()> {
        let s = self.raw;
        let bad_uri = |at| ParseError::new(ErrorKind::BadUri, at);
        let body = s.get(p..).unwrap_or_default();
        // No `@` can appear unescaped after the userinfo, so the first one ends it.
        let at = scan::find_any(body, 0, [b'@']);
        let host_start = match (at < body.len()).then_some(at) {
            Some(at) => {
                let userinfo = body.get(..at).unwrap_or_default();
                let (user, password) = match userinfo.iter().position(|&b| b == b':') {
                    Some(c) => (userinfo.get(..c).unwrap_or_default(), userinfo.get(c + 1..)),
                    None => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(bad_uri(p));
                }
                check_chars(user, is_user_char).map_err(|e| e.shifted(p))?;
                if let Some(pw) = password {
                    check_chars(pw, is_password_char).map_err(|e| e.shifted(p + user.len() + 1))?;
                }
                self.user = Some(user);
                self.password = password;
                p + at + 1
            }
            None => p,
        };
        let after_host = s.get(host_start..).unwrap_or_default();
        let host_len = if after_host.first() == Some(&b'[') {
            after_host
                .iter()
                .position(|&b| b == b']')
                .map(|i| i + 1)
                .ok_or(ParseError::new(ErrorKind::BadHost, s.len()))?
        } else {
            scan::find_any(after_host, 0, [b':', b';', b'?'])
        };
        let host_raw = after_host.get(..host_len).unwrap_or_default();
        if host_raw.is_empty() {
            return Err(ParseError::new(ErrorKind::BadHost, host_start));
        }
        self.host = Some(Host::parse(host_raw).map_err(|e| e.shifted(host_start))?);
        self.host_raw = host_raw;

        let mut i = host_start + host_len;
        if s.get(i) == Some(&b':') {
            let (n, port) = scan::leading_port(s.get(i + 1..).unwrap_or_default());
            self.port = Some(port.ok_or(ParseError::new(ErrorKind::BadPort, i + 1))?);
            i += 1 + n;
        }
        let params_len = scan::find_any(s, i, [b'?']).saturating_sub(i);
        let params = s.get(i..i + params_len).unwrap_or_default();
        if let Some(&b) = params.first() {
            if b != b';' {
                return Err(ParseError::new(
                    if i == host_start + host_len {
                        ErrorKind::BadHost
                    } else {
                        ErrorKind::BadPort
                    },
                    i,
                ));
            }
            self.known = check_uri_params(params, is_param_char).map_err(|e| e.shifted(i))?;
        }
        self.params = params;
        i += params_len;
        if s.get(i) == Some(&b'?') {
            let headers = s.get(i + 1..).unwrap_or_default();
            check_uri_headers(headers).map_err(|e| e.shifted(i + 1))?;
            self.headers = Some(headers);
        }
        Ok(())
    }

    /// `telephone-subscriber` (RFC 3966 §3), from `self.raw[p..]`: the number is
    /// reported as the user, its parameters as the URI parameters.
    fn parse_tel(&mut self, p: usize) -> Result<()> {
        let s = self.raw;
        let body = s.get(p..).unwrap_or_default();
        let n = body.iter().position(|&b| b == b';').unwrap_or(body.len());
        let number = body.get(..n).unwrap_or_default();
        let is_visual = |b: u8| matches!(b, b'-' | b'.' | b'(' | b')');
        let ok = match number.split_first() {
            // global-number-digits = "+" *phonedigit DIGIT *phonedigit
            Some((b'+', digits)) => {
                digits.iter().all(|&b| b.is_ascii_digit() || is_visual(b))
                    && digits.iter().any(u8::is_ascii_digit)
            }
            // local-number-digits = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
            _ => {
                let is_hexish = |b: u8| b.is_ascii_hexdigit() || b == b'*' || b == b'#';
                number.iter().all(|&b| is_hexish(b) || is_visual(b))
                    && number.iter().any(|&b| is_hexish(b))
            }
        };
        if !ok {
            return Err(ParseError::new(ErrorKind::BadUri, p));
        }
        self.user = Some(number);
        let params = body.get(n..).unwrap_or_default();
        // pname = 1*( alphanum / "-" ); pvalue = 1*paramchar
        self.known = check_uri_params(params, |b| b.is_ascii_alphanumeric() || b == b'-')
            .map_err(|e| e.shifted(p + n))?;
        self.params = params;
        Ok(())
    }

    /// The whole URI as written.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme<'a> {
        self.scheme
    }

    /// Everything after `scheme:` as written (the opaque part of an other-scheme URI).
    pub fn opaque(&self) -> &'a [u8] {
        let skip = self
            .raw
            .iter()
            .position(|&b| b == b':')
            .map_or(self.raw.len(), |c| c + 1);
        self.raw.get(skip..).unwrap_or_default()
    }

    /// The user part, still escaped; for `tel:` the number (`+1-201-555-0123`).
    /// A `user=phone` user may hold `;` parameters (a telephone-subscriber).
    pub fn user(&self) -> Option<&'a [u8]> {
        self.user
    }

    /// The password (`sip:user:password@host`), still escaped; may be empty.
    pub fn password(&self) -> Option<&'a [u8]> {
        self.password
    }

    /// The host of a `sip:`/`sips:` URI (`None` for `tel:` and other schemes).
    pub fn host(&self) -> Option<Host<'a>> {
        self.host
    }

    /// The host as written, brackets included for an IPv6 reference (empty without a host).
    pub fn host_raw(&self) -> &'a [u8] {
        self.host_raw
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The parameter list as written, from its first `;` (empty if none).
    pub fn params_raw(&self) -> &'a [u8] {
        self.params
    }

    /// The URI parameters; their `start`/`end` are relative to [`Uri::params_raw`].
    pub fn params(&self) -> Params<'a> {
        Params::new(self.params)
    }

    /// The first parameter called `name` (case-insensitive; an escaped name such as
    /// `%6C%72` matches `lr`, RFC 4475 §3.1.1.2).
    pub fn param(&self, name: &[u8]) -> Option<Param<'a>> {
        // The list was checked when parsed (no white space, no quotes, no
        // empty item, one `=` at most per item).
        scan::plain_param(self.params, |n| scan::unescaped_eq_ignore_case(n, name))
    }

    /// The header part after `?`, as written (`None` without `?`).
    pub fn headers_raw(&self) -> Option<&'a [u8]> {
        self.headers
    }

    /// The `name=value` pairs of the header part, still escaped.
    pub fn headers(&self) -> UriHeaders<'a> {
        UriHeaders {
            rest: self.headers.unwrap_or_default(),
            done: self.headers.is_none(),
        }
    }

    /// The `transport=` parameter as a known transport (`None` if absent or
    /// unknown; the first `transport` counts). Read when parsed.
    pub fn transport(&self) -> Option<Proto> {
        self.known.transport
    }

    /// Whether the `lr` parameter is present (RFC 3261 §19.1.1; `lr=on` counts too).
    pub fn lr(&self) -> bool {
        self.known.lr
    }

    /// Whether the `gr` parameter is present: a GRUU (RFC 5627 §3.2).
    pub fn is_gruu(&self) -> bool {
        self.known.gr
    }

    /// The `maddr=` parameter value as written.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.param(b"maddr")?.value
    }

    /// The `user=` parameter value (`phone`, `ip`, …) as written.
    pub fn user_param(&self) -> Option<&'a [u8]> {
        self.param(b"user")?.value
    }

    /// The `method=` parameter value as written.
    pub fn method_param(&self) -> Option<&'a [u8]> {
        self.param(b"method")?.value
    }

    /// The `ttl=` parameter (checked to be 0..=255 when parsed).
    pub fn ttl(&self) -> Option<u8> {
        parse_ttl(self.param(b"ttl")?.value?)
    }

    /// Whether this is a `sips:` URI or asks for TLS (`transport=tls`).
    pub fn is_secure(&self) -> bool {
        self.scheme == Scheme::Sips || matches!(self.transport(), Some(Proto::Tls | Proto::Wss))
    }

    /// The port to send to: the explicit one, else 5061 for `sips:`/TLS and 5060
    /// otherwise (RFC 3261 §19.1.2). `None` for `tel:` and other schemes.
    pub fn effective_port(&self) -> Option<u16> {
        if !self.scheme.is_sip() {
            return None;
        }
        Some(
            self.port
                .unwrap_or(if self.is_secure() { 5061 } else { 5060 }),
        )
    }
}

/// A parsed [`Uri`] kept without a borrow: its slices as ranges of the text
/// it was parsed from, so a [`super::Message`] can keep its Request-URI
/// parsed and hand it out again ([`UriAt::view`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UriAt {
    scheme: SchemeAt,
    user: Option<(u32, u32)>,
    password: Option<(u32, u32)>,
    host: Option<HostAt>,
    host_raw: (u32, u32),
    port: Option<u16>,
    params: (u32, u32),
    headers: Option<(u32, u32)>,
    known: KnownParams,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SchemeAt {
    Sip,
    Sips,
    Tel,
    Other((u32, u32)),
}

impl UriAt {
    /// Records `uri`, parsed from `src` (all of it: `Uri::parse(src)`).
    pub fn new(src: &[u8], uri: &Uri<'_>) -> UriAt {
        let at = |s: &[u8]| scan::span_in(src, s);
        UriAt {
            scheme: match uri.scheme {
                Scheme::Sip => SchemeAt::Sip,
                Scheme::Sips => SchemeAt::Sips,
                Scheme::Tel => SchemeAt::Tel,
                Scheme::Other(name) => SchemeAt::Other(at(name)),
            },
            user: uri.user.map(at),
            password: uri.password.map(at),
            host: uri.host.as_ref().map(HostAt::of),
            host_raw: at(uri.host_raw),
            port: uri.port,
            params: at(uri.params),
            headers: uri.headers.map(at),
            known: uri.known,
        }
    }

    /// The view again, over the same `src` it was recorded from.
    pub fn view<'a>(&self, src: &'a [u8]) -> Uri<'a> {
        let get = |(a, b): (u32, u32)| src.get(a as usize..b as usize).unwrap_or_default();
        let host_raw = get(self.host_raw);
        Uri {
            raw: src,
            scheme: match self.scheme {
                SchemeAt::Sip => Scheme::Sip,
                SchemeAt::Sips => Scheme::Sips,
                SchemeAt::Tel => Scheme::Tel,
                SchemeAt::Other(r) => Scheme::Other(get(r)),
            },
            user: self.user.map(get),
            password: self.password.map(get),
            host: self.host.map(|h| h.with_name(host_raw)),
            host_raw,
            port: self.port,
            params: get(self.params),
            headers: self.headers.map(get),
            known: self.known,
        }
    }
}

/// Iterator over the `hname=hvalue` pairs of a URI's header part (see [`Uri::headers`]).
#[derive(Clone, Debug)]
pub struct UriHeaders<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> Iterator for UriHeaders<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        if self.done {
            return None;
        }
        let (item, rest) = match self.rest.iter().position(|&b| b == b'&') {
            Some(i) => (
                self.rest.get(..i).unwrap_or_default(),
                self.rest.get(i + 1..).unwrap_or_default(),
            ),
            None => {
                self.done = true;
                (self.rest, &b""[..])
            }
        };
        self.rest = rest;
        Some(match item.iter().position(|&b| b == b'=') {
            Some(eq) => (
                item.get(..eq).unwrap_or_default(),
                item.get(eq + 1..).unwrap_or_default(),
            ),
            None => (item, &b""[..]),
        })
    }
}

/// Offset of the first byte outside `0x21..=0x7e` (space, control, DEL, non-ASCII).
#[inline]
fn find_not_visible(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 8 <= s.len() {
        let hits = scan::bytes_not_visible(scan::word(s, i));
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s.get(i..)
        .unwrap_or_default()
        .iter()
        .position(|&b| !(0x21..=0x7e).contains(&b))
        .map(|p| i + p)
}

/// `ttl = 1*3DIGIT ; 0 to 255`
fn parse_ttl(v: &[u8]) -> Option<u8> {
    if v.len() > 3 {
        return None;
    }
    u8::try_from(scan::parse_u32(v).ok()?).ok()
}

const USER: u8 = 1;
const PASSWORD: u8 = 2;
const PARAM: u8 = 4;
const HEADER: u8 = 8;

/// The URI character classes below as one table (every URI byte is checked).
const CLASSES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let unreserved = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        if unreserved || matches!(c, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            table[b] |= USER;
        }
        if unreserved || matches!(c, b'&' | b'=' | b'+' | b'$' | b',') {
            table[b] |= PASSWORD;
        }
        if unreserved || matches!(c, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            table[b] |= PARAM;
        }
        if unreserved || matches!(c, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$') {
            table[b] |= HEADER;
        }
        b += 1;
    }
    table
};

/// `user = 1*( unreserved / escaped / user-unreserved )`
#[inline]
fn is_user_char(b: u8) -> bool {
    CLASSES[usize::from(b)] & USER != 0
}

/// `password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )`
#[inline]
fn is_password_char(b: u8) -> bool {
    CLASSES[usize::from(b)] & PASSWORD != 0
}

/// `paramchar = param-unreserved / unreserved / escaped`
#[inline]
fn is_param_char(b: u8) -> bool {
    CLASSES[usize::from(b)] & PARAM != 0
}

/// `hname` / `hvalue` characters: `hnv-unreserved / unreserved / escaped`
#[inline]
fn is_header_char(b: u8) -> bool {
    CLASSES[usize::from(b)] & HEADER != 0
}

/// Checks that every byte of `s` is allowed by `class` or starts a valid `%HH`.
fn check_chars(s: &[u8], class: impl Fn(u8) -> bool) -> Result<()> {
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        // No class holds `%`: test the class first, escapes are rare.
        if class(b) {
            i += 1;
        } else if b == b'%' {
            let ok = s.get(i + 1).and_then(|&h| hex_val(h)).is_some()
                && s.get(i + 2).and_then(|&h| hex_val(h)).is_some();
            if !ok {
                return Err(ParseError::new(ErrorKind::BadUri, i));
            }
            i += 3;
        } else {
            return Err(ParseError::new(ErrorKind::BadUri, i));
        }
    }
    Ok(())
}

/// `*( ";" pname [ "=" pvalue ] )` of parameter characters only (no escape,
/// no empty name or value, no `?` after it) and no `ttl` or `maddr`: the
/// [`KnownParams`] [`check_uri_params`] would find, or `None` for anything
/// else, which the general parse then reads.
#[inline]
fn plain_uri_params(params: &[u8]) -> Option<KnownParams> {
    let mut known = KnownParams::default();
    let mut seen_transport = false;
    let run = |from: usize| {
        from + params
            .get(from..)
            .unwrap_or_default()
            .iter()
            .position(|&b| !is_param_char(b))
            .unwrap_or(params.len().saturating_sub(from))
    };
    let mut i = 0;
    while i < params.len() {
        if params.get(i) != Some(&b';') {
            return None;
        }
        let name_end = run(i + 1);
        let name = params.get(i + 1..name_end).filter(|n| !n.is_empty())?;
        let mut value = None;
        i = name_end;
        if params.get(i) == Some(&b'=') {
            let value_end = run(i + 1);
            value = Some(params.get(i + 1..value_end).filter(|v| !v.is_empty())?);
            i = value_end;
        }
        // Names without escapes: a plain compare is the unescaped one.
        match name.len() {
            2 => {
                known.lr |= name.eq_ignore_ascii_case(b"lr");
                known.gr |= name.eq_ignore_ascii_case(b"gr");
            }
            3 if name.eq_ignore_ascii_case(b"ttl") => return None,
            5 if name.eq_ignore_ascii_case(b"maddr") => return None,
            9 if !seen_transport && name.eq_ignore_ascii_case(b"transport") => {
                seen_transport = true;
                // What `KnownParams::note` reads: the value unescaped into 8
                // bytes, and it holds no escape here.
                known.transport = value.filter(|v| v.len() <= 8).and_then(Proto::from_name);
            }
            _ => {}
        }
    }
    Some(known)
}

/// Checks `*( ";" pname [ "=" pvalue ] )` with `pvalue = 1*paramchar` and the
/// value rules of the parameters RFC 3261 §19.1.1 defines (`ttl`, `maddr`);
/// notes the [`KnownParams`] on the way.
fn check_uri_params(params: &[u8], name_char: impl Fn(u8) -> bool) -> Result<KnownParams> {
    let bad = |at| ParseError::new(ErrorKind::BadParam, at);
    let mut at = 0;
    let mut known = KnownParams::default();
    let mut seen_transport = false;
    // Splitting on `;` is exact here: URI parameters hold no quoted strings.
    for item in params.split(|&b| b == b';').skip(1) {
        at += 1;
        let (name, value) = match item.iter().position(|&b| b == b'=') {
            Some(eq) => (item.get(..eq).unwrap_or_default(), item.get(eq + 1..)),
            None => (item, None),
        };
        if name.is_empty() {
            return Err(bad(at));
        }
        check_chars(name, &name_char).map_err(|e| bad(e.offset + at))?;
        known.note(name, value, &mut seen_transport);
        if let Some(v) = value {
            let v_at = at + name.len() + 1;
            if v.is_empty() {
                return Err(bad(v_at));
            }
            check_chars(v, is_param_char).map_err(|e| bad(e.offset + v_at))?;
            if scan::unescaped_eq_ignore_case(name, b"ttl") && parse_ttl(v).is_none() {
                return Err(bad(v_at));
            }
            if scan::unescaped_eq_ignore_case(name, b"maddr") {
                Host::parse(v).map_err(|e| e.shifted(v_at))?;
            }
        }
        at += item.len();
    }
    Ok(known)
}

/// Checks `header *( "&" header )`, `header = hname "=" hvalue`, `hname = 1*(…)`.
fn check_uri_headers(headers: &[u8]) -> Result<()> {
    let mut at = 0;
    for item in headers.split(|&b| b == b'&') {
        let eq = item
            .iter()
            .position(|&b| b == b'=')
            .ok_or(ParseError::new(ErrorKind::BadUri, at + item.len()))?;
        let (name, value) = (
            item.get(..eq).unwrap_or_default(),
            item.get(eq + 1..).unwrap_or_default(),
        );
        if name.is_empty() {
            return Err(ParseError::new(ErrorKind::BadUri, at));
        }
        check_chars(name, is_header_char).map_err(|e| e.shifted(at))?;
        check_chars(value, is_header_char).map_err(|e| e.shifted(at + eq + 1))?;
        at += item.len() + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// `uri` with `;name[=value]` appended for each item.
    fn with_params(mut uri: String, items: &[(String, Option<String>)]) -> String {
        for (n, v) in items {
            uri += ";";
            uri += n;
            if let Some(v) = v {
                uri += "=";
                uri += v;
            }
        }
        uri
    }

    proptest::proptest! {
        /// The split-on-`;` lookup finds what the general parameter scanner finds.
        #[test]
        fn param_lookup_matches_the_params_scanner(
            items in proptest::collection::vec(("(lr|LR|tr|%6C%72|x|ttl|maddr|transport)", proptest::option::of("[a-z0-9.]{1,4}")), 0..5),
            name in "(lr|tr|x|ttl|maddr|transport|lR|y)",
        ) {
            let text = with_params(String::from("sip:a@h"), &items);
            let Ok(u) = Uri::parse(text.as_bytes()) else {
                return Ok(());
            };
            let want = u.params().find(|p| scan::unescaped_eq_ignore_case(p.name, name.as_bytes()));
            proptest::prop_assert_eq!(u.param(name.as_bytes()), want);
        }
    }

    proptest::proptest! {
        /// `transport`, `lr` and `gr` as read while parsing are what a lookup
        /// of the first parameter of that name gives (escaped names, case,
        /// repeats, values and their absence included).
        #[test]
        fn known_params_match_the_lookup(
            scheme in "(sip|sips|tel)",
            items in proptest::collection::vec((
                "(lr|LR|gr|Gr|transport|TRANSPORT|tr%61nsport|%74ransport|%6C%72|%67r|ttl|x|l|g|t)",
                proptest::option::of("(udp|TCP|tls|sctp|ws|wss|WSS|%75dp|udpx|tcpabcdefgh|1|on)"),
            ), 0..5),
        ) {
            let text = with_params(match scheme.as_str() {
                "tel" => String::from("tel:+1555"),
                s => format!("{s}:a@h"),
            }, &items);
            let Ok(u) = Uri::parse(text.as_bytes()) else {
                return Ok(());
            };
            let transport = u.param(b"transport").and_then(|p| p.value).and_then(|v| {
                let mut buf = [0u8; 8];
                Proto::from_name(scan::unescape_into(v, &mut buf)?)
            });
            proptest::prop_assert_eq!(u.transport(), transport, "{}", text);
            proptest::prop_assert_eq!(u.lr(), u.param(b"lr").is_some(), "{}", text);
            proptest::prop_assert_eq!(u.is_gruu(), u.param(b"gr").is_some(), "{}", text);
            // The recorded view keeps them.
            let src = text.as_bytes();
            let back = UriAt::new(src, &u).view(src);
            proptest::prop_assert_eq!(back.transport(), transport);
            proptest::prop_assert_eq!(back.lr(), u.lr());
            proptest::prop_assert_eq!(back.is_gruu(), u.is_gruu());
        }
    }

    proptest::proptest! {
        /// A recorded URI gives back the very view it recorded.
        #[test]
        fn uri_at_gives_the_view_back(
            text in "(sip|sips|tel|urn|SIP):(([a-z%0-9]{1,4}(:[a-z]{0,3})?@)?([a-z]{1,5}\\.com|10\\.0\\.0\\.[0-9]|\\[::[0-9]\\])(:[0-9]{1,4})?(;[a-z]{1,3}(=[a-z0-9]{1,3})?){0,3}(\\?h=v)?|\\+1-555)",
        ) {
            let src = text.as_bytes();
            if let Ok(u) = Uri::parse(src) {
                proptest::prop_assert_eq!(UriAt::new(src, &u).view(src), u);
            }
        }
    }

    /// A common piece (4 in 5) or an odd one.
    fn piece(
        plain: &[&'static str],
        odd: &[&'static str],
    ) -> impl proptest::strategy::Strategy<Value = &'static str> {
        use proptest::sample::select;
        proptest::prop_oneof![4 => select(plain.to_vec()), 1 => select(odd.to_vec())]
    }

    /// A URI from generated pieces: mostly the common shapes (so the fast path
    /// is taken), with odd pieces mixed in (case, escapes, passwords, IPv6,
    /// bad hosts and ports, `ttl`/`maddr`, empty names and values, headers,
    /// white space, bytes a header would split on).
    fn odd_uri() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        let scheme = piece(
            &["sip:", "SIP:", "sIp:", "sips:", "SIPS:"],
            &["tel:", "sipx:", "sip", "", "sip;", "si:"],
        );
        let user = piece(
            &[
                "",
                "alice@",
                "Bob.Smith@",
                "a;b=c@",
                "+1-555?x&y=z@",
                "a/b,c$@",
                "A~*'()!@",
            ],
            &[
                "a%41@", "a%4@", "a:pw@", "a:@", "@", "al ice@", "a@b@", "<a>@", "a\"@", "a\t@",
            ],
        );
        let host = piece(
            &[
                "127.0.0.1",
                "10.0.0.254",
                "0.0.0.0",
                "255.255.255.255",
                "example.COM",
                "a-b.c",
                "a.b.",
                "h",
            ],
            &[
                "1.2.3.256",
                "01.2.3.4",
                "1.2.3",
                "1.2.3.4.5",
                "a_b",
                "-a",
                "9a.b.c1",
                "[::1]",
                "[2001:DB8::1]",
                "[::1",
                "",
                "h%41",
                "h\t",
                "a..b",
                "1.2.3.",
            ],
        );
        let port = piece(
            &["", ":5060", ":0", ":65535", ":05060"],
            &[":65536", ":", ":5a", ":99999999", "::5", ": 5"],
        );
        let name = piece(
            &[
                "lr",
                "LR",
                "Lr",
                "gr",
                "GR",
                "transport",
                "TRANSPORT",
                "TransPort",
                "x",
                "l",
                "g",
                "t",
                "lrx",
                "r2",
                "ftag",
                "n[1]",
                "a:b",
            ],
            &[
                "tr%61nsport",
                "%6C%72",
                "ttl",
                "TTL",
                "maddr",
                "mAddr",
                "",
                "a%2",
                "a b",
                "a\"b",
                "a?b",
            ],
        );
        let value = piece(
            &[
                "udp",
                "TCP",
                "tls",
                "ws",
                "WSS",
                "sctp",
                "udpx",
                "tcpabcdefgh",
                "on",
                "1.2.3.4",
                "255",
                "[::1]",
                "x:y",
                "a&b",
            ],
            &["", "%75dp", "a%20b", "a=b", "\"q\"", "a,b", "256", "a b"],
        );
        let params = proptest::collection::vec((name, proptest::option::of(value)), 0..4);
        let tail = piece(
            &[""],
            &[
                "?a=b", "?", "?a=b&c=", "?=x", " ", "\t", ">", "\"", "%", ",", ";", "=", "@",
            ],
        );
        (scheme, user, host, port, params, tail).prop_map(
            |(scheme, user, host, port, params, tail)| {
                let mut s = format!("{scheme}{user}{host}{port}");
                for (n, v) in params {
                    s += ";";
                    s += n;
                    if let Some(v) = v {
                        s += "=";
                        s += v;
                    }
                }
                s + tail
            },
        )
    }

    proptest::proptest! {
        /// The one-pass parse of plain `sip:` URIs gives what the whole grammar
        /// gives: the same view, the same error.
        #[test]
        fn plain_sip_fast_path_matches_the_grammar(text in odd_uri()) {
            let s = text.as_bytes();
            let general = Uri::parse_general(s);
            proptest::prop_assert_eq!(Uri::parse(s), general, "{:?}", text);
            if let Some(fast) = Uri::parse_plain_sip(s) {
                proptest::prop_assert_eq!(Ok(fast), general, "{:?}", text);
            }
        }

        /// The same on arbitrary bytes after `sip:`.
        #[test]
        fn plain_sip_fast_path_matches_on_any_bytes(
            rest in proptest::collection::vec(proptest::sample::select(b"a1.:;=@%[]?&<> \t,\"lrtg-_+".to_vec()), 0..24),
        ) {
            let mut s = b"sip:".to_vec();
            s.extend_from_slice(&rest);
            proptest::prop_assert_eq!(Uri::parse(&s), Uri::parse_general(&s));
        }
    }

    #[test]
    fn common_uris_take_the_fast_path() {
        for s in [
            "sip:service@127.0.0.1:5080",
            "sip:127.0.0.1:5080;transport=UDP",
            "sip:127.0.0.1:5060;lr",
            "sip:127.0.0.1;lr;ftag=abc;r2=on",
            "SIP:alice@Example.com",
            "sips:bob@biloxi.example.com:5061;transport=tls;gr",
        ] {
            let fast = Uri::parse_plain_sip(s.as_bytes());
            assert!(fast.is_some(), "{s}");
            assert_eq!(fast.map(Ok), Some(Uri::parse_general(s.as_bytes())), "{s}");
        }
        for s in [
            "sip:a%41@h",
            "sip:a:pw@h",
            "sip:[::1]",
            "sip:h;ttl=3",
            "sip:h;maddr=1.2.3.4",
            "sip:h?a=b",
            "tel:+1",
        ] {
            assert_eq!(Uri::parse_plain_sip(s.as_bytes()), None, "{s}");
        }
    }

    fn uri(s: &str) -> Uri<'_> {
        Uri::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> (ErrorKind, usize) {
        match Uri::parse(s.as_bytes()) {
            Ok(u) => panic!("{s} parsed: {u:?}"),
            Err(e) => (e.kind, e.offset),
        }
    }

    #[test]
    fn class_table_matches_the_rfc_classes() {
        for b in 0..=255u8 {
            let u = scan::is_unreserved(b);
            let any = |set: &[u8]| u || set.contains(&b);
            assert_eq!(is_user_char(b), any(b"&=+$,;?/"), "{b:#x}");
            assert_eq!(is_password_char(b), any(b"&=+$,"), "{b:#x}");
            assert_eq!(is_param_char(b), any(b"[]/:&+$"), "{b:#x}");
            assert_eq!(is_header_char(b), any(b"[]/?:+$"), "{b:#x}");
        }
    }

    #[test]
    fn plain_sip_uri() {
        let u = uri("sip:alice@atlanta.com");
        assert_eq!(u.scheme(), Scheme::Sip);
        assert_eq!(u.user(), Some(&b"alice"[..]));
        assert_eq!(u.password(), None);
        assert_eq!(u.host(), Some(Host::Name(b"atlanta.com")));
        assert_eq!(u.host_raw(), b"atlanta.com");
        assert_eq!(u.port(), None);
        assert_eq!(u.params().count(), 0);
        assert_eq!(u.headers_raw(), None);
        assert_eq!(u.effective_port(), Some(5060));
        assert!(!u.lr());
    }

    #[test]
    fn full_sip_uri_with_everything() {
        let u = uri("SIPS:alice:secr%65t@atlanta.com:5071;transport=tcp;lr;maddr=239.255.255.1;ttl=15;user=ip;method=INVITE?subject=project%20x&priority=urgent");
        assert_eq!(u.scheme(), Scheme::Sips);
        assert_eq!(u.password(), Some(&b"secr%65t"[..]));
        assert_eq!(u.port(), Some(5071));
        assert_eq!(u.transport(), Some(Proto::Tcp));
        assert!(u.lr());
        assert_eq!(u.maddr(), Some(&b"239.255.255.1"[..]));
        assert_eq!(u.ttl(), Some(15));
        assert_eq!(u.user_param(), Some(&b"ip"[..]));
        assert_eq!(u.method_param(), Some(&b"INVITE"[..]));
        assert_eq!(
            u.params_raw(),
            b";transport=tcp;lr;maddr=239.255.255.1;ttl=15;user=ip;method=INVITE"
        );
        let hs: Vec<_> = u.headers().collect();
        assert_eq!(
            hs,
            vec![
                (&b"subject"[..], &b"project%20x"[..]),
                (&b"priority"[..], &b"urgent"[..])
            ]
        );
        assert_eq!(u.effective_port(), Some(5071));
    }

    #[test]
    fn default_ports() {
        assert_eq!(uri("sips:a@b.com").effective_port(), Some(5061));
        assert_eq!(
            uri("sip:a@b.com;transport=TLS").effective_port(),
            Some(5061)
        );
        assert_eq!(
            uri("sip:a@b.com;transport=udp").effective_port(),
            Some(5060)
        );
        assert_eq!(
            uri("sip:b.com;transport=sctp").transport(),
            Some(Proto::Sctp)
        );
        assert_eq!(uri("sip:b.com;transport=foo").transport(), None);
        assert_eq!(
            uri("sip:b.com;transport=%74cp").transport(),
            Some(Proto::Tcp)
        );
        assert_eq!(uri("tel:+1234").effective_port(), None);
    }

    #[test]
    fn ipv6_references() {
        let u = uri("sip:[2001:db8::1]:5070;transport=tcp");
        assert_eq!(u.host(), Some(Host::V6("2001:db8::1".parse().unwrap())));
        assert_eq!(u.host_raw(), b"[2001:db8::1]");
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.transport(), Some(Proto::Tcp));
        // RFC 5118 §4.4 / RFC 4475: the last group is part of the address, not a port.
        let u = uri("sip:user@[2001:db8::10:5070]");
        assert_eq!(
            u.host(),
            Some(Host::V6("2001:db8::10:5070".parse().unwrap()))
        );
        assert_eq!(u.port(), None);
        // RFC 5118 §4.6/4.7: IPv4 embedded with two colons is fine, three is not.
        assert!(matches!(
            uri("sip:[2001:db8::192.0.2.1]").host(),
            Some(Host::V6(_))
        ));
        assert_eq!(err("sip:[2001:db8:::192.0.2.1]"), (ErrorKind::BadHost, 5));
        assert_eq!(
            uri("sip:[::ffff:192.0.2.10]").host().and_then(|h| h.ip()),
            Some("::ffff:192.0.2.10".parse().unwrap())
        );
        assert_eq!(err("sip:[2001:db8::1"), (ErrorKind::BadHost, 16));
        assert_eq!(err("sip:2001:db8::1"), (ErrorKind::BadHost, 4));
        assert_eq!(err("sip:[]"), (ErrorKind::BadHost, 5));
        assert_eq!(err("sip:[1.2.3.4]"), (ErrorKind::BadHost, 5));
        assert_eq!(err("sip:[::1]x"), (ErrorKind::BadHost, 9));
        assert_eq!(uri("sip:a@[::1];maddr=[::2]").maddr(), Some(&b"[::2]"[..]));
    }

    #[test]
    fn ipv4_and_hostnames() {
        assert_eq!(
            uri("sip:10.0.0.1:5060").host(),
            Some(Host::V4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(
            uri("sip:a@example.com.").host(),
            Some(Host::Name(b"example.com."))
        );
        assert_eq!(uri("sip:a@x-1.Example.COM").host_raw(), b"x-1.Example.COM");
        assert_eq!(
            uri("sip:a@localhost").host(),
            Some(Host::Name(b"localhost"))
        );
        assert_eq!(err("sip:a@1.2.3.256"), (ErrorKind::BadHost, 6));
        assert_eq!(err("sip:a@1.2.3"), (ErrorKind::BadHost, 6));
        assert_eq!(err("sip:a@-a.com"), (ErrorKind::BadHost, 6));
        assert_eq!(err("sip:a@a-.com"), (ErrorKind::BadHost, 6));
        assert_eq!(err("sip:a@a..com"), (ErrorKind::BadHost, 8));
        assert_eq!(
            err("sip:a@host_with_underscore.com"),
            (ErrorKind::BadHost, 6)
        );
        assert_eq!(err("sip:a@example.123"), (ErrorKind::BadHost, 14));
        assert_eq!(err("sip:a@"), (ErrorKind::BadHost, 6));
        assert_eq!(err("sip:"), (ErrorKind::BadHost, 4));
        assert_eq!(err("sip:a@."), (ErrorKind::BadHost, 6));
    }

    #[test]
    fn escaped_users_rfc4475() {
        // §3.1.1.2 esc01
        let u = uri("sip:sips%3Auser%40example.com@example.net");
        assert_eq!(u.user(), Some(&b"sips%3Auser%40example.com"[..]));
        assert_eq!(u.host(), Some(Host::Name(b"example.net")));
        let u = uri("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert!(u.lr(), "escaped `lr` name");
        assert_eq!(
            u.param(b"name").and_then(|p| p.value),
            Some(&b"v%61lue%25%34%31"[..])
        );
        // §3.1.1.5 escnull
        assert_eq!(
            uri("sip:null-%00-null@example.com").user(),
            Some(&b"null-%00-null"[..])
        );
        assert_eq!(uri("sip:%61lice@atlanta.com").user(), Some(&b"%61lice"[..]));
        assert_eq!(err("sip:a%4@b.com"), (ErrorKind::BadUri, 5));
        assert_eq!(err("sip:a%@b.com"), (ErrorKind::BadUri, 5));
        assert_eq!(err("sip:a%zz@b.com"), (ErrorKind::BadUri, 5));
    }

    #[test]
    fn unusual_userinfo_rfc4475_intmeth() {
        // §3.1.1.3: every user and password character the grammar allows.
        let u = uri("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
        assert_eq!(
            u.user(),
            Some(&b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"[..])
        );
        assert_eq!(
            u.password(),
            Some(&b"&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"[..])
        );
        assert_eq!(u.host(), Some(Host::Name(b"example.com")));
    }

    #[test]
    fn user_with_semicolons_and_passwords() {
        // RFC 4475 §3.1.1.10 semiuri: `;` in the user part, `@` escaped inside it.
        let u = uri("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user(), Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(u.params().count(), 0);
        // RFC 3261 §19.1.3: telephone-subscriber with a password.
        let u = uri("sip:+1-212-555-1212:1234@gateway.com;user=phone");
        assert_eq!(u.user(), Some(&b"+1-212-555-1212"[..]));
        assert_eq!(u.password(), Some(&b"1234"[..]));
        assert_eq!(u.user_param(), Some(&b"phone"[..]));
        let u = uri("sip:+12125551212;isub=1234;postd=pp22@gw.com;user=phone");
        assert_eq!(u.user(), Some(&b"+12125551212;isub=1234;postd=pp22"[..]));
        assert_eq!(uri("sip:alice:@a.com").password(), Some(&b""[..]));
        assert_eq!(
            uri("sip:alice:p%40ss@a.com").password(),
            Some(&b"p%40ss"[..])
        );
        assert_eq!(err("sip:@a.com"), (ErrorKind::BadUri, 4));
        assert_eq!(err("sip::pw@a.com"), (ErrorKind::BadUri, 4));
        assert_eq!(err("sip:a:b:c@a.com"), (ErrorKind::BadUri, 7));
        assert_eq!(err("sip:a@b@c.com"), (ErrorKind::BadHost, 6));
        assert_eq!(err("sip:a[b@c.com"), (ErrorKind::BadUri, 5));
    }

    #[test]
    fn ports() {
        assert_eq!(uri("sip:a.com:0").port(), Some(0));
        assert_eq!(uri("sip:a.com:65535").port(), Some(65535));
        assert_eq!(uri("sip:a.com:05060").port(), Some(5060));
        assert_eq!(err("sip:a.com:65536"), (ErrorKind::BadPort, 10));
        assert_eq!(err("sip:a.com:"), (ErrorKind::BadPort, 10));
        assert_eq!(
            err("sip:a.com:99999999999999999999"),
            (ErrorKind::BadPort, 10)
        );
        assert_eq!(err("sip:a.com:50x"), (ErrorKind::BadPort, 12));
        assert_eq!(err("sip:a.com:5060:5060"), (ErrorKind::BadPort, 14));
    }

    #[test]
    fn params_and_headers_grammar() {
        assert_eq!(err("sip:a.com;"), (ErrorKind::BadParam, 10));
        assert_eq!(err("sip:a.com;;lr"), (ErrorKind::BadParam, 10));
        assert_eq!(err("sip:a.com;x="), (ErrorKind::BadParam, 12));
        assert_eq!(err("sip:a.com;=x"), (ErrorKind::BadParam, 10));
        assert_eq!(err("sip:a.com;a\"b"), (ErrorKind::BadParam, 11));
        assert_eq!(err("sip:a.com;ttl=256"), (ErrorKind::BadParam, 14));
        assert_eq!(err("sip:a.com;ttl=0015"), (ErrorKind::BadParam, 14));
        assert_eq!(err("sip:a.com;maddr=bad_host"), (ErrorKind::BadHost, 16));
        assert_eq!(err("sip:a.com?"), (ErrorKind::BadUri, 10));
        assert_eq!(err("sip:a.com?x"), (ErrorKind::BadUri, 11));
        assert_eq!(err("sip:a.com?=x"), (ErrorKind::BadUri, 10));
        assert_eq!(err("sip:a.com?a=b&"), (ErrorKind::BadUri, 14));
        assert_eq!(err("sip:a.com?a=b;c"), (ErrorKind::BadUri, 13));
        assert_eq!(
            uri("sip:a.com?a=").headers().collect::<Vec<_>>(),
            vec![(&b"a"[..], &b""[..])]
        );
        assert!(uri("sip:a.com;lr=on").lr());
        assert_eq!(
            uri("sip:a.com;LR").param(b"lr").map(|p| p.name),
            Some(&b"LR"[..])
        );
        // RFC 3261 §19.1.1: the R-URI may hold `?` only inside <> in headers; in the URI itself it starts headers.
        let u = uri("sip:carol@chicago.com?Subject=next%20meeting");
        assert_eq!(
            u.headers().next(),
            Some((&b"Subject"[..], &b"next%20meeting"[..]))
        );
        assert_eq!(err("sip:a.com x"), (ErrorKind::BadUri, 9));
    }

    #[test]
    fn rejects_spaces_controls_and_junk() {
        assert_eq!(err(""), (ErrorKind::BadUri, 0));
        assert_eq!(err("sip"), (ErrorKind::BadUri, 3));
        assert_eq!(err(":a"), (ErrorKind::BadUri, 0));
        assert_eq!(err("1sip:a"), (ErrorKind::BadUri, 0));
        assert_eq!(err("s_p:a"), (ErrorKind::BadUri, 0));
        assert_eq!(err("sip:a b@c.com"), (ErrorKind::BadUri, 5));
        assert_eq!(err("sip:a@c.com\r\n"), (ErrorKind::BadUri, 11));
        assert_eq!(err("sip:a\x00@c.com"), (ErrorKind::BadUri, 5));
        assert_eq!(err("sip:\u{e9}@c.com"), (ErrorKind::BadUri, 4));
        assert_eq!(err(" sip:a@c.com"), (ErrorKind::BadUri, 0));
        assert_eq!(err("<sip:a@c.com>"), (ErrorKind::BadUri, 0));
    }

    #[test]
    fn tel_uris() {
        let u = uri("tel:+1-201-555-0123;phone-context=example.com;ext=22");
        assert_eq!(u.scheme(), Scheme::Tel);
        assert_eq!(u.user(), Some(&b"+1-201-555-0123"[..]));
        assert_eq!(u.host(), None);
        assert_eq!(u.host_raw(), b"");
        assert_eq!(
            u.param(b"phone-context").and_then(|p| p.value),
            Some(&b"example.com"[..])
        );
        assert_eq!(u.param(b"ext").and_then(|p| p.value), Some(&b"22"[..]));
        assert_eq!(
            uri("tel:7042;phone-context=+1-201").user(),
            Some(&b"7042"[..])
        );
        assert_eq!(
            uri("TEL:*21#;phone-context=x.com").user(),
            Some(&b"*21#"[..])
        );
        assert_eq!(uri("tel:+(1)201.555").user(), Some(&b"+(1)201.555"[..]));
        assert_eq!(err("tel:+"), (ErrorKind::BadUri, 4));
        assert_eq!(err("tel:+--"), (ErrorKind::BadUri, 4));
        assert_eq!(err("tel:"), (ErrorKind::BadUri, 4));
        assert_eq!(err("tel:12x4"), (ErrorKind::BadUri, 4));
        assert_eq!(uri("tel:+1;ext").param(b"ext").map(|p| p.value), Some(None));
        assert_eq!(err("tel:+1;a_b=1"), (ErrorKind::BadParam, 8));
        assert_eq!(err("tel:+1;x="), (ErrorKind::BadParam, 9));
        assert_eq!(err("tel:+1?x=1"), (ErrorKind::BadUri, 4));
    }

    #[test]
    fn other_schemes_stay_opaque() {
        // RFC 4475 §3.1.1.11/12/13: unknown schemes are legal absoluteURIs.
        let u = uri("soap.beep://192.0.2.103:3002");
        assert_eq!(u.scheme(), Scheme::Other(b"soap.beep"));
        assert_eq!(u.opaque(), b"//192.0.2.103:3002");
        assert_eq!(u.host(), None);
        assert_eq!(u.user(), None);
        assert_eq!(u.effective_port(), None);
        assert_eq!(uri("isbn:2983792873").scheme().as_bytes(), b"isbn");
        assert_eq!(uri("name:John_Smith").opaque(), b"John_Smith");
        assert_eq!(
            uri("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6").opaque(),
            b"uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
        );
        assert_eq!(err("isbn:"), (ErrorKind::BadUri, 5));
        assert_eq!(err("http:a<b"), (ErrorKind::BadUri, 6));
    }
}
