//! [`Host`]: the host of a SIP URI or of a Via sent-by (RFC 3261 §25.1 `host`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::{ErrorKind, ParseError, Result};

/// A host: a name, an IPv4 address or an IPv6 reference (RFC 3261 §25.1 `host`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host<'a> {
    /// A host name as written (compare it case-insensitively).
    Name(&'a [u8]),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address, written in brackets as an IPv6 reference.
    V6(Ipv6Addr),
}

/// A [`Host`] kept apart from its buffer (the name is the host text, which
/// the holder keeps as a span): what the parsed-once views store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostAt {
    /// The name is the whole host text.
    Name,
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl HostAt {
    pub(crate) fn of(host: &Host<'_>) -> HostAt {
        match *host {
            Host::Name(_) => HostAt::Name,
            Host::V4(a) => HostAt::V4(a),
            Host::V6(a) => HostAt::V6(a),
        }
    }

    /// The host again, its name (if it is one) being `raw`.
    pub(crate) fn with_name(self, raw: &[u8]) -> Host<'_> {
        match self {
            HostAt::Name => Host::Name(raw),
            HostAt::V4(a) => Host::V4(a),
            HostAt::V6(a) => Host::V6(a),
        }
    }
}

impl<'a> Host<'a> {
    /// Parses `hostname / IPv4address / IPv6reference` (the whole of `s`).
    ///
    /// Host names follow RFC 3261 §25.1 (`alphanum` labels with inner `-`, a top
    /// label starting with a letter, an optional trailing dot); anything
    /// digits-and-dots must be a valid IPv4 address.
    pub fn parse(s: &'a [u8]) -> Result<Host<'a>> {
        let bad = |at| ParseError::new(ErrorKind::BadHost, at);
        if let Some(inner) = s.strip_prefix(b"[") {
            let inner = inner.strip_suffix(b"]").ok_or(bad(s.len()))?;
            return parse_ip::<Ipv6Addr>(inner).map(Host::V6).ok_or(bad(1));
        }
        // Most hosts are addresses: try that first, then tell a bad address
        // (digits and dots only) from a name.
        if let Some(a) = parse_ipv4(s) {
            return Ok(Host::V4(a));
        }
        if s.iter().all(|&b| b.is_ascii_digit() || b == b'.') {
            return Err(bad(0));
        }
        check_hostname(s).map_err(bad)?;
        Ok(Host::Name(s))
    }

    /// The address, if the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::Name(_) => None,
            Host::V4(a) => Some(IpAddr::V4(a)),
            Host::V6(a) => Some(IpAddr::V6(a)),
        }
    }

    /// RFC 3261 §19.1.4 host equality: names case-insensitively, addresses by
    /// value, and a name never equals an address (even one it resolves to).
    pub fn same_as(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            (Host::V4(a), Host::V4(b)) => a == b,
            (Host::V6(a), Host::V6(b)) => a == b,
            _ => false,
        }
    }
}

fn parse_ip<T: std::str::FromStr>(s: &[u8]) -> Option<T> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Dotted-decimal IPv4 exactly as `Ipv4Addr::from_str` reads it (four
/// octets of one to three digits, no leading zero, each at most 255),
/// straight from the bytes: every Via and URI host goes through here.
pub fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    // "0.0.0.0" to "255.255.255.255".
    if !(7..=15).contains(&s.len()) {
        return None;
    }
    // One pass, no bounds checks in the loop: the octet being read is `n`,
    // `digits` long; a dot closes it.
    let mut octets = [0u8; 4];
    let mut k = 0;
    let mut n: u32 = 0;
    let mut digits = 0u32;
    for &b in s {
        if b == b'.' {
            // An empty octet, or a fifth one.
            if digits == 0 || k == 3 {
                return None;
            }
            octets[k] = n as u8;
            k += 1;
            n = 0;
            digits = 0;
            continue;
        }
        let d = u32::from(b.wrapping_sub(b'0'));
        // Not a digit, a fourth digit, or a digit after a leading zero ("01").
        if d > 9 || digits == 3 || (digits == 1 && n == 0) {
            return None;
        }
        n = n * 10 + d;
        if n > 255 {
            return None;
        }
        digits += 1;
    }
    if digits == 0 || k != 3 {
        return None;
    }
    octets[3] = n as u8;
    Some(Ipv4Addr::from(octets))
}

/// Somewhere to append bytes: a `Vec`, or a `SmallVec` on the stack when
/// the text is short and only copied on (addresses, header lines).
pub trait PushBytes {
    fn push_bytes(&mut self, b: &[u8]);
}

impl PushBytes for Vec<u8> {
    fn push_bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

impl<A: smallvec::Array<Item = u8>> PushBytes for smallvec::SmallVec<A> {
    fn push_bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

/// Appends `ip` as text (IPv6 without brackets), as `Display` writes it,
/// without the formatting machinery for IPv4.
pub fn push_ip(out: &mut impl PushBytes, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Written into one stack buffer and appended once: a push per
            // octet and dot costs more than the digits (Record-Route, Via).
            let mut text = [0u8; 15];
            let mut n = 0;
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[n] = b'.';
                    n += 1;
                }
                if o >= 100 {
                    text[n] = b'0' + o / 100;
                    n += 1;
                }
                if o >= 10 {
                    text[n] = b'0' + o / 10 % 10;
                    n += 1;
                }
                text[n] = b'0' + o % 10;
                n += 1;
            }
            out.push_bytes(&text[..n]);
        }
        IpAddr::V6(v6) => {
            // At most 45 characters (`ffff:…:255.255.255.255`): on the stack.
            struct Stack(smallvec::SmallVec<[u8; 48]>);
            impl std::fmt::Write for Stack {
                fn write_str(&mut self, s: &str) -> std::fmt::Result {
                    self.0.extend_from_slice(s.as_bytes());
                    Ok(())
                }
            }
            let mut text = Stack(smallvec::SmallVec::new());
            let _ = std::fmt::Write::write_fmt(&mut text, format_args!("{v6}"));
            out.push_bytes(&text.0);
        }
    }
}

/// An IP address as text, with the answer `IpAddr::from_str` gives, but
/// IPv4 read straight from the bytes (brackets are not taken off here).
pub fn parse_ip_bytes(s: &[u8]) -> Option<IpAddr> {
    if s.contains(&b':') {
        parse_ip::<Ipv6Addr>(s).map(IpAddr::V6)
    } else {
        parse_ipv4(s).map(IpAddr::V4)
    }
}

/// Checks `hostname = *( domainlabel "." ) toplabel [ "." ]`; the error is the offset of the fault.
fn check_hostname(s: &[u8]) -> std::result::Result<(), usize> {
    let body = s.strip_suffix(b".").unwrap_or(s);
    let mut at = 0;
    let mut top = 0;
    for label in body.split(|&b| b == b'.') {
        // domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
        let ok = label
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
            && label.first().is_some_and(u8::is_ascii_alphanumeric)
            && label.last().is_some_and(u8::is_ascii_alphanumeric);
        if !ok {
            return Err(at);
        }
        top = at;
        at += label.len() + 1;
    }
    // toplabel = ALPHA / ALPHA *( alphanum / "-" ) alphanum
    if !body.get(top).is_some_and(u8::is_ascii_alphabetic) {
        return Err(top);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(Host::parse(b"Example.COM"), Ok(Host::Name(b"Example.COM")));
        assert_eq!(Host::parse(b"a"), Ok(Host::Name(b"a")));
        assert_eq!(Host::parse(b"a1-b.c9."), Ok(Host::Name(b"a1-b.c9.")));
        assert_eq!(
            Host::parse(b"192.0.2.1"),
            Ok(Host::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(Host::parse(b"[::1]"), Ok(Host::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(
            Host::parse(b"[::1]").unwrap().ip(),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(Host::parse(b"a.b").unwrap().ip(), None);
    }

    #[test]
    fn rejects_what_the_grammar_rejects() {
        let err = |s: &[u8]| Host::parse(s).map(|_| ()).map_err(|e| (e.kind, e.offset));
        assert_eq!(err(b""), Err((ErrorKind::BadHost, 0)));
        assert_eq!(err(b"."), Err((ErrorKind::BadHost, 0)));
        assert_eq!(err(b"a..b"), Err((ErrorKind::BadHost, 2)));
        assert_eq!(err(b"a.-b"), Err((ErrorKind::BadHost, 2)));
        assert_eq!(err(b"a.b-"), Err((ErrorKind::BadHost, 2)));
        assert_eq!(err(b"a.9b"), Err((ErrorKind::BadHost, 2)));
        assert_eq!(err(b"a_b"), Err((ErrorKind::BadHost, 0)));
        assert_eq!(err(b"1.2.3.4.5"), Err((ErrorKind::BadHost, 0)));
        assert_eq!(err(b"01.2.3.4"), Err((ErrorKind::BadHost, 0)));
        assert_eq!(err(b"[::1"), Err((ErrorKind::BadHost, 4)));
        assert_eq!(err(b"[::1]]"), Err((ErrorKind::BadHost, 1)));
        assert_eq!(err(b"[fe80::1%eth0]"), Err((ErrorKind::BadHost, 1)));
        assert_eq!(err(b"::1"), Err((ErrorKind::BadHost, 0)));
    }

    proptest::proptest! {
        /// The byte parsers give what the standard library's text parsers give.
        #[test]
        fn ip_parsers_match_std(
            s in proptest::collection::vec(proptest::sample::select(b"0123456789.:abf[]".to_vec()), 0..20),
        ) {
            let text = std::str::from_utf8(&s).unwrap();
            proptest::prop_assert_eq!(parse_ipv4(&s), text.parse::<Ipv4Addr>().ok());
            proptest::prop_assert_eq!(parse_ip_bytes(&s), text.parse::<IpAddr>().ok());
        }

        /// Dotted digit runs (leading zeros, 256, short and long octets, empty
        /// and extra octets) read as the standard library reads them.
        #[test]
        fn ipv4_shaped_text_matches_std(s in "[0-9]{0,4}(\\.[0-9]{0,4}){0,4}\\.?") {
            proptest::prop_assert_eq!(parse_ipv4(s.as_bytes()), s.parse::<Ipv4Addr>().ok(), "{}", s);
        }

        #[test]
        fn ipv4_round_trips(a: u8, b: u8, c: u8, d: u8) {
            let ip = Ipv4Addr::new(a, b, c, d);
            proptest::prop_assert_eq!(parse_ipv4(ip.to_string().as_bytes()), Some(ip));
        }
    }

    proptest::proptest! {
        #[test]
        fn push_ip_writes_what_display_writes(a: u32, b: u128) {
            for ip in [IpAddr::V4(Ipv4Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b))] {
                let mut out = Vec::new();
                push_ip(&mut out, ip);
                proptest::prop_assert_eq!(out, ip.to_string().into_bytes());
            }
        }
    }

    #[test]
    fn ipv4_edges() {
        for bad in [
            &b""[..],
            b".",
            b"1.2.3",
            b"1.2.3.4.",
            b".1.2.3",
            b"1..2.3",
            b"01.2.3.4",
            b"1.2.3.00",
            b"256.0.0.1",
            b"1.2.3.1000",
            b"1.2.3.4.5",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_ipv4(b"0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_ipv4(b"255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(
            parse_ip_bytes(b"::1"),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(parse_ip_bytes(b"[::1]"), None);
        assert_eq!(
            parse_ip_bytes(b"127.0.0.1"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
    }

    #[test]
    fn same_as_follows_rfc3261_19_1_4() {
        let h = |s: &'static [u8]| Host::parse(s).unwrap();
        assert!(h(b"EXAMPLE.com").same_as(&h(b"example.COM")));
        assert!(h(b"[2001:db8::1]").same_as(&h(b"[2001:DB8:0::1]")));
        assert!(h(b"10.0.0.1").same_as(&h(b"10.0.0.1")));
        assert!(!h(b"10.0.0.1").same_as(&h(b"10.0.0.2")));
        assert!(!h(b"localhost").same_as(&h(b"127.0.0.1")));
        assert!(!h(b"[::ffff:10.0.0.1]").same_as(&h(b"10.0.0.1")));
    }
}
