//! Digest authentication headers: [`Credentials`] for Authorization and
//! Proxy-Authorization, [`Challenge`] for WWW-Authenticate and
//! Proxy-Authenticate (RFC 3261 §20.7, §20.27, §20.28, §20.44; RFC 2617, RFC 7616).
//!
//! Values are returned raw: for a quoted value, the text inside the quotes with
//! its escapes (see [`scan::unquoted`]); the digest computation hashes that.
//! Parsing is tolerant of LWS around `=` and `,`, of quoted values where a token
//! is expected and of empty list items, but not of a parameter given twice.

use std::ops::Range;

use super::error::{ErrorKind, ParseError, Result};
use super::scan::{self, Param, SplitValues};

/// Parameters of Authorization / Proxy-Authorization that [`Credentials`] records.
const CREDENTIAL_FIELDS: [&[u8]; 10] = [
    b"username",
    b"realm",
    b"nonce",
    b"uri",
    b"response",
    b"algorithm",
    b"cnonce",
    b"opaque",
    b"qop",
    b"nc",
];

/// Parameters of WWW-Authenticate / Proxy-Authenticate that [`Challenge`] records.
const CHALLENGE_FIELDS: [&[u8]; 7] = [
    b"realm",
    b"domain",
    b"nonce",
    b"opaque",
    b"stale",
    b"algorithm",
    b"qop",
];

/// What every authentication header value has: a scheme, then parameters or a token68.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AuthValue<'a> {
    scheme: &'a [u8],
    params: &'a [u8],
    params_start: usize,
    token68: Option<&'a [u8]>,
}

/// Parses `auth-scheme [ LWS ( auth-param *( COMMA auth-param ) / token68 ) ]`.
fn parse_value(v: &[u8]) -> Result<AuthValue<'_>> {
    let bad = |at| ParseError::new(ErrorKind::BadAuth, at);
    let (s, e) = scan::trim_lws_range(v);
    let v = v.get(..e).unwrap_or_default();
    let scheme_end = scan::token_end(v, s);
    if scheme_end == s {
        return Err(bad(s));
    }
    let scheme = v.get(s..scheme_end).unwrap_or_default();
    let params_start = scan::skip_lws(v, scheme_end);
    let params = v.get(params_start..).unwrap_or_default();
    if params_start == scheme_end && !params.is_empty() {
        return Err(bad(scheme_end));
    }
    let is_digest = scheme.eq_ignore_ascii_case(b"Digest");
    if params.is_empty() {
        // "Digest" alone carries nothing to check; other schemes may be bare.
        return if is_digest {
            Err(bad(params_start))
        } else {
            Ok(AuthValue {
                scheme,
                params,
                params_start,
                token68: None,
            })
        };
    }
    match check_params(params) {
        Ok(()) => Ok(AuthValue {
            scheme,
            params,
            params_start,
            token68: None,
        }),
        // RFC 7235 §2.1: a non-Digest scheme may carry one token68 instead.
        Err(_) if !is_digest && is_token68(params) => Ok(AuthValue {
            scheme,
            params: b"",
            params_start,
            token68: Some(params),
        }),
        Err(err) => Err(err.shifted(params_start)),
    }
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_token68(s: &[u8]) -> bool {
    let body = s
        .iter()
        .position(|&b| b == b'=')
        .map_or(s, |i| s.get(..i).unwrap_or_default());
    !body.is_empty()
        && body.iter().all(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
        && s.get(body.len()..)
            .unwrap_or_default()
            .iter()
            .all(|&b| b == b'=')
}

/// Checks `auth-param *( COMMA auth-param )`, `auth-param = token EQUAL ( token / quoted-string )`.
fn check_params(params: &[u8]) -> Result<()> {
    let bad = |at| ParseError::new(ErrorKind::BadAuth, at);
    let mut count = 0;
    for (off, item) in scan::split_values(params) {
        if item.is_empty() {
            // RFC 7235 §4 / RFC 7230 §7: empty list elements are ignored.
            continue;
        }
        count += 1;
        let name_end = scan::token_end(item, 0);
        if name_end == 0 {
            return Err(bad(off));
        }
        let eq = scan::skip_lws(item, name_end);
        if item.get(eq) != Some(&b'=') {
            return Err(bad(off + eq));
        }
        let v = scan::skip_lws(item, eq + 1);
        let v_end = if item.get(v) == Some(&b'"') {
            scan::quoted_string(item, v).map_err(|e| e.shifted(off))?.1
        } else {
            scan::token_end(item, v)
        };
        if v_end == v || v_end < item.len() {
            return Err(bad(off + v_end));
        }
    }
    if count == 0 {
        return Err(bad(0));
    }
    Ok(())
}

/// The first occurrence of each of `names`; a second occurrence is an error.
fn fields<'a, const N: usize>(
    value: &AuthValue<'a>,
    names: [&[u8]; N],
) -> Result<[Option<&'a [u8]>; N]> {
    let mut found = [None; N];
    for p in auth_params(value.params) {
        if let Some(i) = names.iter().position(|n| p.is(n)) {
            if let Some(slot) = found.get_mut(i) {
                if slot.is_some() {
                    return Err(ParseError::new(
                        ErrorKind::BadAuth,
                        value.params_start + p.start,
                    ));
                }
                *slot = p.value;
            }
        }
    }
    Ok(found)
}

/// Iterates the `name=value` parameters of an authentication header (see [`Credentials::params`]).
#[derive(Clone, Debug)]
pub struct AuthParams<'a> {
    items: SplitValues<'a>,
}

fn auth_params(params: &[u8]) -> AuthParams<'_> {
    AuthParams {
        items: scan::split_values(params),
    }
}

impl<'a> Iterator for AuthParams<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        loop {
            let (off, item) = self.items.next()?;
            let Some(eq) = item.iter().position(|&b| b == b'=') else {
                continue;
            };
            let name = scan::trim_lws(item.get(..eq).unwrap_or_default());
            let raw = scan::trim_lws(item.get(eq + 1..).unwrap_or_default());
            let inner = raw.strip_prefix(b"\"").and_then(|r| r.strip_suffix(b"\""));
            return Some(Param {
                name,
                value: Some(inner.unwrap_or(raw)),
                quoted: inner.is_some(),
                start: off,
                end: off + item.len(),
            });
        }
    }
}

/// An Authorization or Proxy-Authorization value (RFC 3261 §20.7, §20.28).
///
/// The digest fields are recorded as found; which ones a valid digest response
/// needs (username, realm, nonce, uri, response) is the auth module's check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    value: AuthValue<'a>,
    fields: [Option<&'a [u8]>; 10],
}

impl<'a> Credentials<'a> {
    /// Parses a credentials value; errors carry the offset into `v`.
    pub fn parse(v: &'a [u8]) -> Result<Credentials<'a>> {
        let value = parse_value(v)?;
        let fields = fields(&value, CREDENTIAL_FIELDS)?;
        Ok(Credentials { value, fields })
    }

    /// The scheme as written (`Digest`).
    pub fn scheme(&self) -> &'a [u8] {
        self.value.scheme
    }

    /// Whether the scheme is `Digest` (case-insensitive).
    pub fn is_digest(&self) -> bool {
        self.value.scheme.eq_ignore_ascii_case(b"Digest")
    }

    /// The `username` value (raw, inside the quotes).
    pub fn username(&self) -> Option<&'a [u8]> {
        self.fields[0]
    }

    /// The `realm` value.
    pub fn realm(&self) -> Option<&'a [u8]> {
        self.fields[1]
    }

    /// The `nonce` value.
    pub fn nonce(&self) -> Option<&'a [u8]> {
        self.fields[2]
    }

    /// The `uri` value (the digest-uri).
    pub fn uri(&self) -> Option<&'a [u8]> {
        self.fields[3]
    }

    /// The `response` value (the request digest).
    pub fn response(&self) -> Option<&'a [u8]> {
        self.fields[4]
    }

    /// The `algorithm` value (`MD5`, `MD5-sess`, `SHA-256`, …).
    pub fn algorithm(&self) -> Option<&'a [u8]> {
        self.fields[5]
    }

    /// The `cnonce` value.
    pub fn cnonce(&self) -> Option<&'a [u8]> {
        self.fields[6]
    }

    /// The `opaque` value.
    pub fn opaque(&self) -> Option<&'a [u8]> {
        self.fields[7]
    }

    /// The `qop` value (`auth`, `auth-int`).
    pub fn qop(&self) -> Option<&'a [u8]> {
        self.fields[8]
    }

    /// The `nc` (nonce count) value, as written (8 hex digits).
    pub fn nc(&self) -> Option<&'a [u8]> {
        self.fields[9]
    }

    /// The token68 of a non-Digest scheme (`Basic QWxh…=`, `Bearer …`).
    pub fn token68(&self) -> Option<&'a [u8]> {
        self.value.token68
    }

    /// All parameters; `start`/`end` are relative to [`Credentials::params_range`]`.start`.
    pub fn params(&self) -> AuthParams<'a> {
        auth_params(self.value.params)
    }

    /// The first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &[u8]) -> Option<Param<'a>> {
        self.params().find(|p| p.is(name))
    }

    /// Where the parameters lie in the parsed value.
    pub fn params_range(&self) -> Range<usize> {
        self.value.params_start..self.value.params_start + self.value.params.len()
    }
}

/// A WWW-Authenticate or Proxy-Authenticate value (RFC 3261 §20.27, §20.44).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Challenge<'a> {
    value: AuthValue<'a>,
    fields: [Option<&'a [u8]>; 7],
}

impl<'a> Challenge<'a> {
    /// Parses a challenge value; errors carry the offset into `v`.
    pub fn parse(v: &'a [u8]) -> Result<Challenge<'a>> {
        let value = parse_value(v)?;
        let fields = fields(&value, CHALLENGE_FIELDS)?;
        Ok(Challenge { value, fields })
    }

    /// The scheme as written (`Digest`).
    pub fn scheme(&self) -> &'a [u8] {
        self.value.scheme
    }

    /// Whether the scheme is `Digest` (case-insensitive).
    pub fn is_digest(&self) -> bool {
        self.value.scheme.eq_ignore_ascii_case(b"Digest")
    }

    /// The `realm` value.
    pub fn realm(&self) -> Option<&'a [u8]> {
        self.fields[0]
    }

    /// The `domain` value (a space-separated URI list).
    pub fn domain(&self) -> Option<&'a [u8]> {
        self.fields[1]
    }

    /// The `nonce` value.
    pub fn nonce(&self) -> Option<&'a [u8]> {
        self.fields[2]
    }

    /// The `opaque` value.
    pub fn opaque(&self) -> Option<&'a [u8]> {
        self.fields[3]
    }

    /// Whether `stale=true` (case-insensitive, RFC 2617 §3.2.1).
    pub fn stale(&self) -> bool {
        self.fields[4].is_some_and(|v| v.eq_ignore_ascii_case(b"true"))
    }

    /// The `algorithm` value.
    pub fn algorithm(&self) -> Option<&'a [u8]> {
        self.fields[5]
    }

    /// The `qop` options as written (`auth,auth-int`).
    pub fn qop(&self) -> Option<&'a [u8]> {
        self.fields[6]
    }

    /// Whether the qop options offer `option` (`auth`, `auth-int`), case-insensitively.
    pub fn offers_qop(&self, option: &[u8]) -> bool {
        self.qop().is_some_and(|q| {
            q.split(|&b| b == b',')
                .any(|o| scan::trim_lws(o).eq_ignore_ascii_case(option))
        })
    }

    /// The token68 of a non-Digest scheme.
    pub fn token68(&self) -> Option<&'a [u8]> {
        self.value.token68
    }

    /// All parameters; `start`/`end` are relative to [`Challenge::params_range`]`.start`.
    pub fn params(&self) -> AuthParams<'a> {
        auth_params(self.value.params)
    }

    /// The first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &[u8]) -> Option<Param<'a>> {
        self.params().find(|p| p.is(name))
    }

    /// Where the parameters lie in the parsed value.
    pub fn params_range(&self) -> Range<usize> {
        self.value.params_start..self.value.params_start + self.value.params.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn creds(s: &str) -> Credentials<'_> {
        Credentials::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> (ErrorKind, usize) {
        match Credentials::parse(s.as_bytes()) {
            Ok(c) => panic!("{s} parsed: {c:?}"),
            Err(e) => (e.kind, e.offset),
        }
    }

    #[test]
    fn rfc3261_digest_response() {
        let c = creds(
            "Digest username=\"bob\", realm=\"biloxi.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
             response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        );
        assert!(c.is_digest());
        assert_eq!(c.scheme(), b"Digest");
        assert_eq!(c.username(), Some(&b"bob"[..]));
        assert_eq!(c.realm(), Some(&b"biloxi.com"[..]));
        assert_eq!(c.nonce(), Some(&b"dcd98b7102dd2f0e8b11d0f600bfb0c093"[..]));
        assert_eq!(c.uri(), Some(&b"sip:bob@biloxi.com"[..]));
        assert_eq!(c.qop(), Some(&b"auth"[..]));
        assert_eq!(c.nc(), Some(&b"00000001"[..]));
        assert_eq!(c.cnonce(), Some(&b"0a4f113b"[..]));
        assert_eq!(c.response(), Some(&b"6629fae49393a05397450978507c4ef1"[..]));
        assert_eq!(c.opaque(), Some(&b"5ccc069c403ebaf9f0171e9517f40e41"[..]));
        assert_eq!(c.algorithm(), None);
        assert_eq!(c.token68(), None);
        assert_eq!(c.params().count(), 9);
        assert_eq!(c.param(b"QOP").map(|p| p.quoted), Some(false));
        assert_eq!(c.param(b"nonce").map(|p| p.quoted), Some(true));
    }

    #[test]
    fn tolerant_spacing_quoting_and_case() {
        let s = "  digest  USERNAME = \"a\\\"b\" ,realm=\"x,y\"  ,\r\n  nonce=\"n\", algorithm=\"MD5\",, uri=\"sip:a@b\"  ";
        let c = creds(s);
        assert!(c.is_digest());
        assert_eq!(c.username(), Some(&b"a\\\"b"[..]));
        assert_eq!(
            scan::unquoted(c.username().unwrap()).collect::<Vec<_>>(),
            b"a\"b".to_vec()
        );
        assert_eq!(c.realm(), Some(&b"x,y"[..]));
        assert_eq!(c.algorithm(), Some(&b"MD5"[..]));
        assert_eq!(c.uri(), Some(&b"sip:a@b"[..]));
        let r = c.params_range();
        assert!(s[r.clone()].starts_with("USERNAME"));
        let p = c.param(b"realm").unwrap();
        assert_eq!(&s[r.start + p.start..r.start + p.end], "realm=\"x,y\"");
        assert_eq!(creds("Digest username=\"\"").username(), Some(&b""[..]));
    }

    #[test]
    fn other_schemes_and_token68() {
        let c = creds("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(!c.is_digest());
        assert_eq!(c.token68(), Some(&b"QWxhZGRpbjpvcGVuIHNlc2FtZQ=="[..]));
        assert_eq!(c.params().count(), 0);
        assert_eq!(
            creds("Bearer mF_9.B5f-4.1JqM").token68(),
            Some(&b"mF_9.B5f-4.1JqM"[..])
        );
        assert_eq!(
            creds("Custom a=1, b=\"2\"")
                .param(b"b")
                .and_then(|p| p.value),
            Some(&b"2"[..])
        );
        assert_eq!(creds("Negotiate").scheme(), b"Negotiate");
        assert_eq!(
            err("Digest QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            (ErrorKind::BadAuth, 34)
        );
        assert_eq!(err("Basic a b"), (ErrorKind::BadAuth, 8));
        assert_eq!(err("Basic ==a"), (ErrorKind::BadAuth, 6));
    }

    #[test]
    fn malformed_credentials() {
        assert_eq!(err(""), (ErrorKind::BadAuth, 0));
        assert_eq!(err("  "), (ErrorKind::BadAuth, 2));
        assert_eq!(err("Digest"), (ErrorKind::BadAuth, 6));
        assert_eq!(err("Digest,username=\"a\""), (ErrorKind::BadAuth, 6));
        assert_eq!(err("Digest username"), (ErrorKind::BadAuth, 15));
        assert_eq!(err("Digest username="), (ErrorKind::BadAuth, 16));
        assert_eq!(
            err("Digest username=\"bob"),
            (ErrorKind::BadQuotedString, 20)
        );
        assert_eq!(
            err("Digest username=\"a\" realm=\"b\""),
            (ErrorKind::BadAuth, 19)
        );
        assert_eq!(err("Digest username=a b"), (ErrorKind::BadAuth, 17));
        assert_eq!(err("Digest =\"a\""), (ErrorKind::BadAuth, 7));
        assert_eq!(err("Digest , ,"), (ErrorKind::BadAuth, 7));
        assert_eq!(
            err("Digest nonce=\"a\", nonce=\"b\""),
            (ErrorKind::BadAuth, 18)
        );
        assert_eq!(
            err("Digest Nonce=\"a\", NONCE=\"a\""),
            (ErrorKind::BadAuth, 18)
        );
        assert_eq!(err("Digest username=<sip:a@b>"), (ErrorKind::BadAuth, 16));
    }

    #[test]
    fn challenges() {
        let s =
            "Digest realm=\"atlanta.com\", domain=\"sip:ss1.carrier.com\", qop=\"auth,auth-int\", \
                 nonce=\"f84f1cec41e6cbe5aea9c8e88d359\", opaque=\"\", stale=FALSE, algorithm=MD5";
        let c = Challenge::parse(s.as_bytes()).unwrap();
        assert!(c.is_digest());
        assert_eq!(c.realm(), Some(&b"atlanta.com"[..]));
        assert_eq!(c.domain(), Some(&b"sip:ss1.carrier.com"[..]));
        assert_eq!(c.nonce(), Some(&b"f84f1cec41e6cbe5aea9c8e88d359"[..]));
        assert_eq!(c.opaque(), Some(&b""[..]));
        assert!(!c.stale());
        assert_eq!(c.algorithm(), Some(&b"MD5"[..]));
        assert!(c.offers_qop(b"auth") && c.offers_qop(b"AUTH-INT") && !c.offers_qop(b"au"));
        assert!(
            Challenge::parse(b"Digest realm=\"r\", nonce=\"n\", stale=TRUE")
                .unwrap()
                .stale()
        );
        assert_eq!(
            Challenge::parse(b"Digest realm=\"a\", realm=\"b\"").map_err(|e| e.offset),
            Err(18)
        );
        assert_eq!(
            Challenge::parse(b"Bearer x").unwrap().token68(),
            Some(&b"x"[..])
        );
        assert_eq!(
            Challenge::parse(b"Bearer realm=\"x\"")
                .unwrap()
                .param(b"realm")
                .and_then(|p| p.value),
            Some(&b"x"[..])
        );
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn never_panics(v in proptest::collection::vec(any::<u8>(), 0..64), digest in any::<bool>()) {
            let mut s = if digest { b"Digest ".to_vec() } else { Vec::new() };
            s.extend_from_slice(&v);
            if let Ok(c) = Credentials::parse(&s) {
                let _ = (c.username(), c.params().count(), c.param(b"nc"));
                prop_assert!(c.params_range().end <= s.len());
            }
            if let Ok(c) = Challenge::parse(&s) {
                let _ = (c.stale(), c.offers_qop(b"auth"), c.params().count());
            }
        }

        #[test]
        fn generated_credentials_read_back(
            user in "[a-zA-Z0-9 ,=\"\\\\]{0,12}",
            realm in "[a-z.]{1,12}",
            nc in "[0-9a-f]{8}",
            sp in prop::sample::select(vec!["", " ", "\r\n "]),
        ) {
            let quoted: String = user.chars().flat_map(|c| if c == '"' || c == '\\' { vec!['\\', c] } else { vec![c] }).collect();
            let text = format!("Digest username{sp}={sp}\"{quoted}\"{sp},{sp}realm=\"{realm}\",nc={nc}");
            let c = Credentials::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            prop_assert_eq!(c.username().map(|u| scan::unquoted(u).collect::<Vec<u8>>()), Some(user.into_bytes()));
            prop_assert_eq!(c.realm(), Some(realm.as_bytes()));
            prop_assert_eq!(c.nc(), Some(nc.as_bytes()));
        }
    }
}
