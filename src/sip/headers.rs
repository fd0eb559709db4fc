//! Small header values: [`Method`], [`CSeq`], the numbers (Max-Forwards,
//! Expires, Content-Length) and route sets (Route / Record-Route).
//!
//! Untrusted numbers are checked here, before anyone uses them (STYLE.md,
//! hickory-dns): a value that does not fit is an error, never a wrap.

use super::error::{ErrorKind, ParseError, Result};
use super::nameaddr::{name_addrs, NameAddr, NameAddrs};
use super::scan;

/// A request method (RFC 3261 §7.1, §25.1 `Method`). Methods are case-sensitive:
/// `invite` is an extension method, not INVITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    /// RFC 3261.
    Invite,
    /// RFC 3261.
    Ack,
    /// RFC 3261.
    Bye,
    /// RFC 3261.
    Cancel,
    /// RFC 3261.
    Register,
    /// RFC 3261.
    Options,
    /// RFC 6086.
    Info,
    /// RFC 3311.
    Update,
    /// RFC 3262.
    Prack,
    /// RFC 6665.
    Subscribe,
    /// RFC 6665.
    Notify,
    /// RFC 3903.
    Publish,
    /// RFC 3428.
    Message,
    /// RFC 3515.
    Refer,
    /// Any other `token`, as written.
    Other(&'a [u8]),
}

const KNOWN: [(&[u8], Method<'static>); 14] = [
    (b"INVITE", Method::Invite),
    (b"ACK", Method::Ack),
    (b"BYE", Method::Bye),
    (b"CANCEL", Method::Cancel),
    (b"REGISTER", Method::Register),
    (b"OPTIONS", Method::Options),
    (b"INFO", Method::Info),
    (b"UPDATE", Method::Update),
    (b"PRACK", Method::Prack),
    (b"SUBSCRIBE", Method::Subscribe),
    (b"NOTIFY", Method::Notify),
    (b"PUBLISH", Method::Publish),
    (b"MESSAGE", Method::Message),
    (b"REFER", Method::Refer),
];

impl<'a> Method<'a> {
    /// Parses a method name (the whole of `s`, a non-empty `token`), case-sensitively.
    pub fn parse(s: &'a [u8]) -> Result<Method<'a>> {
        if let Some(at) = s.iter().position(|&b| !scan::is_token_char(b)) {
            return Err(ParseError::new(ErrorKind::BadMethod, at));
        }
        if s.is_empty() {
            return Err(ParseError::new(ErrorKind::BadMethod, 0));
        }
        Ok(KNOWN
            .iter()
            .find(|(name, _)| *name == s)
            .map_or(Method::Other(s), |&(_, m)| m))
    }

    /// The method name as it is written on the wire.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Method::Invite => b"INVITE",
            Method::Ack => b"ACK",
            Method::Bye => b"BYE",
            Method::Cancel => b"CANCEL",
            Method::Register => b"REGISTER",
            Method::Options => b"OPTIONS",
            Method::Info => b"INFO",
            Method::Update => b"UPDATE",
            Method::Prack => b"PRACK",
            Method::Subscribe => b"SUBSCRIBE",
            Method::Notify => b"NOTIFY",
            Method::Publish => b"PUBLISH",
            Method::Message => b"MESSAGE",
            Method::Refer => b"REFER",
            Method::Other(name) => name,
        }
    }
}

/// A CSeq value: `1*DIGIT LWS Method` (RFC 3261 §20.16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number, below 2**31.
    pub seq: u32,
    /// The method.
    pub method: Method<'a>,
}

/// The largest CSeq number: RFC 3261 §8.1.1.5, "MUST be less than 2**31".
pub const MAX_CSEQ: u32 = (1 << 31) - 1;

impl<'a> CSeq<'a> {
    /// Parses a CSeq value (surrounding LWS allowed). A number of 2**31 or more
    /// is [`ErrorKind::BadCSeq`] (RFC 4475 §3.1.2.4 expects a 400 for it).
    pub fn parse(v: &'a [u8]) -> Result<CSeq<'a>> {
        let bad = |at| ParseError::new(ErrorKind::BadCSeq, at);
        let (s, e) = scan::trim_lws_range(v);
        let v = v.get(..e).unwrap_or_default();
        let digits = v.get(s..).unwrap_or_default();
        let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        let seq = scan::parse_u32(digits.get(..n).unwrap_or_default())
            .ok()
            .filter(|&seq| seq <= MAX_CSEQ)
            .ok_or(bad(s))?;
        let m = scan::skip_lws(v, s + n);
        if m == s + n {
            return Err(bad(m));
        }
        let m_end = scan::token_end(v, m);
        if m_end == m || m_end < e {
            return Err(bad(m_end));
        }
        let method =
            Method::parse(v.get(m..m_end).unwrap_or_default()).map_err(|err| err.shifted(m))?;
        Ok(CSeq { seq, method })
    }
}

/// Parses a Max-Forwards value, `1*DIGIT` (RFC 3261 §20.22). Values above 255
/// (the RFC's range) are returned as they are for the caller to clamp or refuse;
/// above `u32::MAX` is [`ErrorKind::BadNumber`].
pub fn max_forwards(v: &[u8]) -> Result<u32> {
    let (s, e) = scan::trim_lws_range(v);
    scan::parse_u32(v.get(s..e).unwrap_or_default()).map_err(|err| err.shifted(s))
}

/// Parses an Expires value or other `delta-seconds` (RFC 3261 §20.19), saturating
/// at 2**32-1 (§10.2.1.1). Anything but digits (such as an RFC 2543 date) is
/// [`ErrorKind::BadNumber`]; the RFC says to treat it as 3600.
pub fn expires(v: &[u8]) -> Result<u32> {
    let (s, e) = scan::trim_lws_range(v);
    scan::parse_u32_saturating(v.get(s..e).unwrap_or_default()).map_err(|err| err.shifted(s))
}

/// Parses a Content-Length value, `1*DIGIT` (RFC 3261 §20.14); errors are
/// [`ErrorKind::BadContentLength`].
pub fn content_length(v: &[u8]) -> Result<u32> {
    let (s, e) = scan::trim_lws_range(v);
    scan::parse_u32(v.get(s..e).unwrap_or_default())
        .map_err(|err| ParseError::new(ErrorKind::BadContentLength, err.offset + s))
}

/// Iterates the entries of a Route or Record-Route value (RFC 3261 §20.30, §20.34:
/// `name-addr *( SEMI rr-param )` separated by commas); offsets are relative to
/// `value`. An entry without angle brackets is [`ErrorKind::BadNameAddr`]: the
/// grammar requires them, and without them `;lr` would be a header parameter.
pub fn route_set(value: &[u8]) -> RouteSet<'_> {
    RouteSet {
        items: name_addrs(value),
    }
}

/// Iterator returned by [`route_set`].
#[derive(Clone, Debug)]
pub struct RouteSet<'a> {
    items: NameAddrs<'a>,
}

impl<'a> Iterator for RouteSet<'a> {
    type Item = Result<NameAddr<'a>>;

    fn next(&mut self) -> Option<Result<NameAddr<'a>>> {
        Some(self.items.next()?.and_then(|a| {
            if a.has_brackets() {
                Ok(a)
            } else {
                Err(ParseError::new(ErrorKind::BadNameAddr, a.span().start))
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cseq(s: &str) -> Result<(u32, Vec<u8>)> {
        CSeq::parse(s.as_bytes()).map(|c| (c.seq, c.method.as_bytes().to_vec()))
    }

    #[test]
    fn methods_are_case_sensitive_tokens() {
        for (name, m) in KNOWN {
            assert_eq!(Method::parse(name), Ok(m));
            assert_eq!(m.as_bytes(), name);
        }
        assert_eq!(Method::parse(b"invite"), Ok(Method::Other(b"invite")));
        assert_eq!(
            Method::parse(b"Invite").map(|m| m.as_bytes()),
            Ok(&b"Invite"[..])
        );
        // RFC 4475 §3.1.1.3 intmeth and §3.1.1.8 esc02: odd but legal tokens.
        let odd = b"!interesting-Method0123456789_*+`.%indeed'~";
        assert_eq!(Method::parse(odd), Ok(Method::Other(odd)));
        assert_eq!(
            Method::parse(b"RE%47IST%45R"),
            Ok(Method::Other(b"RE%47IST%45R"))
        );
        assert_eq!(
            Method::parse(b""),
            Err(ParseError::new(ErrorKind::BadMethod, 0))
        );
        assert_eq!(
            Method::parse(b"IN VITE"),
            Err(ParseError::new(ErrorKind::BadMethod, 2))
        );
        assert_eq!(
            Method::parse(b"INVITE\r"),
            Err(ParseError::new(ErrorKind::BadMethod, 6))
        );
    }

    #[test]
    fn cseq_values() {
        assert_eq!(cseq("4711 INVITE"), Ok((4711, b"INVITE".to_vec())));
        assert_eq!(CSeq::parse(b"1 ACK").map(|c| c.method), Ok(Method::Ack));
        assert_eq!(cseq("  0\r\n   BYE  "), Ok((0, b"BYE".to_vec())));
        assert_eq!(cseq("2147483647 BYE"), Ok((MAX_CSEQ, b"BYE".to_vec())));
        assert_eq!(
            cseq("139122385 !interesting-Method0123456789_*+`.%indeed'~"),
            Ok((
                139122385,
                b"!interesting-Method0123456789_*+`.%indeed'~".to_vec()
            ))
        );
    }

    #[test]
    fn bad_cseq_values() {
        let err = |s: &str| cseq(s).map_err(|e| (e.kind, e.offset));
        assert_eq!(err("2147483648 BYE"), Err((ErrorKind::BadCSeq, 0)));
        // RFC 4475 §3.1.2.4 scalarlg.
        assert_eq!(
            err("36893488147419103232 REGISTER"),
            Err((ErrorKind::BadCSeq, 0))
        );
        assert_eq!(err(""), Err((ErrorKind::BadCSeq, 0)));
        assert_eq!(err("INVITE"), Err((ErrorKind::BadCSeq, 0)));
        assert_eq!(err("-1 INVITE"), Err((ErrorKind::BadCSeq, 0)));
        assert_eq!(err("1INVITE"), Err((ErrorKind::BadCSeq, 1)));
        assert_eq!(err("1"), Err((ErrorKind::BadCSeq, 1)));
        assert_eq!(err("1 "), Err((ErrorKind::BadCSeq, 1)));
        assert_eq!(err(" 1 INVITE x"), Err((ErrorKind::BadCSeq, 9)));
        assert_eq!(err("1 INV/ITE"), Err((ErrorKind::BadCSeq, 5)));
        assert_eq!(err("1.5 INVITE"), Err((ErrorKind::BadCSeq, 1)));
    }

    #[test]
    fn numbers() {
        assert_eq!(max_forwards(b"70"), Ok(70));
        assert_eq!(max_forwards(b" 0 "), Ok(0));
        assert_eq!(max_forwards(b"300"), Ok(300));
        assert_eq!(
            max_forwards(b"4294967296"),
            Err(ParseError::new(ErrorKind::BadNumber, 9))
        );
        assert_eq!(
            max_forwards(b""),
            Err(ParseError::new(ErrorKind::BadNumber, 0))
        );
        assert_eq!(
            max_forwards(b" 7 0"),
            Err(ParseError::new(ErrorKind::BadNumber, 2))
        );
        assert_eq!(
            max_forwards(b"-1"),
            Err(ParseError::new(ErrorKind::BadNumber, 0))
        );

        assert_eq!(expires(b"3600"), Ok(3600));
        assert_eq!(expires(b" 0"), Ok(0));
        assert_eq!(
            expires(b"1000000000000000000000000000000000000000000"),
            Ok(u32::MAX)
        );
        assert_eq!(
            expires(b"Thu, 01 Dec 1994 16:00:00 GMT").map_err(|e| e.kind),
            Err(ErrorKind::BadNumber)
        );
        assert_eq!(expires(b"").map_err(|e| e.kind), Err(ErrorKind::BadNumber));

        assert_eq!(content_length(b"0"), Ok(0));
        assert_eq!(content_length(b"  123 \r\n"), Ok(123));
        assert_eq!(
            content_length(b"abc"),
            Err(ParseError::new(ErrorKind::BadContentLength, 0))
        );
        assert_eq!(
            content_length(b" 99999999999"),
            Err(ParseError::new(ErrorKind::BadContentLength, 10))
        );
        assert_eq!(
            content_length(b"12 3"),
            Err(ParseError::new(ErrorKind::BadContentLength, 2))
        );
    }

    #[test]
    fn route_sets() {
        let value = b"<sip:p1.example.com;lr>,\r\n <sip:p2.example.com;lr;ftag=x>;x=1";
        let routes: Vec<_> = route_set(value).collect::<Result<_>>().unwrap();
        assert_eq!(routes.len(), 2);
        assert!(routes.iter().all(|r| r.uri().unwrap().lr()));
        assert_eq!(
            &value[routes[1].span()],
            b"<sip:p2.example.com;lr;ftag=x>;x=1"
        );
        assert_eq!(routes[1].param(b"x").and_then(|p| p.value), Some(&b"1"[..]));
        let got: Vec<_> = route_set(b"<sip:a.com;lr>, sip:b.com;lr")
            .map(|r| r.map(|_| ()))
            .collect();
        assert_eq!(
            got,
            vec![Ok(()), Err(ParseError::new(ErrorKind::BadNameAddr, 16))]
        );
        assert_eq!(route_set(b"").count(), 0);
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn never_panics(v in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = (CSeq::parse(&v), Method::parse(&v), max_forwards(&v), expires(&v), content_length(&v));
            for r in route_set(&v).flatten() {
                prop_assert!(r.has_brackets());
            }
        }

        #[test]
        fn cseq_reads_back(seq in 0..=MAX_CSEQ, method in "[A-Za-z!%*_+`'~.-]{1,12}", gap in "[ \t]{1,3}") {
            let text = format!("{seq}{gap}{method}");
            let c = CSeq::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(c.seq, seq);
            prop_assert_eq!(c.method.as_bytes(), method.as_bytes());
        }

        #[test]
        fn cseq_above_limit_is_refused(seq in (MAX_CSEQ as u64 + 1)..=u64::MAX) {
            let text = format!("{seq} INVITE");
            prop_assert_eq!(CSeq::parse(text.as_bytes()).map_err(|e| e.kind), Err(ErrorKind::BadCSeq));
        }
    }
}
