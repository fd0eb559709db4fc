//! URI equivalence: RFC 3261 §19.1.4 for `sip:`/`sips:`, RFC 3966 §4 for
//! `tel:`. Used by loose routing, "is this URI myself" checks and the
//! registrar's binding comparison. Nothing is allocated: escapes are decoded
//! on the fly while comparing.

use super::scan::{hex_val, is_reserved, Param};
use super::uri::{Scheme, Uri};

/// Whether `a` and `b` are equivalent URIs.
///
/// For `sip:`/`sips:` (RFC 3261 §19.1.4):
/// - a SIP and a SIPS URI are never equivalent;
/// - userinfo compares case-sensitively, everything else case-insensitively;
/// - `%HH` equals the character it encodes unless that is a `reserved` one;
/// - user, password, host and port must match, and an omitted component never
///   matches an explicit one, even with the default value (no port ≠ `:5060`);
///   a host name never matches an IP address;
/// - a parameter present in both must match; `user`, `ttl`, `method`, `maddr`
///   and `transport` present in only one never match; other parameters present
///   in only one are ignored; order does not matter;
/// - header components are never ignored: both URIs must carry the same set.
///
/// For `tel:` (RFC 3966 §4): both global or both local, equal digits once the
/// visual separators are removed, and the same parameter names with equal
/// values. Other schemes: the same scheme and the same text after it.
pub fn uri_eq(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    match (a.scheme(), b.scheme()) {
        (Scheme::Sip, Scheme::Sip) | (Scheme::Sips, Scheme::Sips) => sip_eq(a, b),
        (Scheme::Tel, Scheme::Tel) => tel_eq(a, b),
        (Scheme::Other(x), Scheme::Other(y)) => {
            x.eq_ignore_ascii_case(y) && escaped_eq(a.opaque(), b.opaque(), false)
        }
        _ => false,
    }
}

fn sip_eq(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    let hosts_match = match (a.host(), b.host()) {
        (Some(x), Some(y)) => x.same_as(&y),
        _ => false,
    };
    opt_eq(a.user(), b.user(), false)
        && opt_eq(a.password(), b.password(), false)
        && hosts_match
        && a.port() == b.port()
        && params_agree(a, b, sip_value_eq, not_sticky)
        && params_agree(b, a, sip_value_eq, not_sticky)
        && headers_agree(a, b)
        && headers_agree(b, a)
}

/// URI parameters that never match when only one side has them: `user`, `ttl`,
/// `method`, `maddr` (the §19.1.4 list) and `transport` (the paragraph above it:
/// "the same is true for the transport-parameter").
const STICKY: [&[u8]; 5] = [b"user", b"ttl", b"method", b"maddr", b"transport"];

/// Every parameter of `x` agrees with `y`: if `y` has parameters of that name,
/// each value occurs as often on both sides (a multiset, so a repeated parameter
/// compares the same whichever side holds it and whatever the order); if not,
/// `missing_ok` decides.
fn params_agree(
    x: &Uri<'_>,
    y: &Uri<'_>,
    same_value: impl Fn(&Param<'_>, &Param<'_>) -> bool,
    missing_ok: impl Fn(&Param<'_>) -> bool,
) -> bool {
    let same_name = |p: &Param<'_>, q: &Param<'_>| escaped_eq(p.name, q.name, true);
    let count = |u: &Uri<'_>, p: &Param<'_>| {
        u.params()
            .filter(|q| same_name(p, q) && same_value(p, q))
            .count()
    };
    x.params().all(|p| {
        if y.params().any(|q| same_name(&p, &q)) {
            count(x, &p) == count(y, &p)
        } else {
            missing_ok(&p)
        }
    })
}

/// RFC 3261 §19.1.4 parameter values: equal case-insensitively, a value never equals no value.
fn sip_value_eq(p: &Param<'_>, q: &Param<'_>) -> bool {
    match (p.value, q.value) {
        (None, None) => true,
        (Some(v), Some(w)) => escaped_eq(v, w, true),
        _ => false,
    }
}

/// Only a non-sticky parameter may be missing from the other side.
fn not_sticky(p: &Param<'_>) -> bool {
    !STICKY.iter().any(|name| escaped_eq(p.name, name, true))
}

/// Every header of `x` occurs as many times in `y` as in `x` (a multiset check:
/// `?f=a&f=b` is legal, so a lookup by name alone would compare the wrong value).
fn headers_agree(x: &Uri<'_>, y: &Uri<'_>) -> bool {
    let count = |u: &Uri<'_>, name: &[u8], value: &[u8]| {
        u.headers()
            .filter(|(n, v)| escaped_eq(n, name, true) && escaped_eq(v, value, false))
            .count()
    };
    x.headers().all(|(n, v)| count(x, n, v) == count(y, n, v))
}

fn tel_eq(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    let (Some(x), Some(y)) = (a.user(), b.user()) else {
        return false;
    };
    if x.starts_with(b"+") != y.starts_with(b"+") || !digits_eq(x, y) {
        return false;
    }
    // "If one URI has a parameter name not found in the other, the two URIs are not equal."
    let value_eq = |p: &Param<'_>, q: &Param<'_>| match (p.value, q.value) {
        (None, None) => true,
        // A global-number phone-context compares digit by digit, a domain one as a host name.
        (Some(s), Some(t)) if p.is(b"ext") || (p.is(b"phone-context") && s.starts_with(b"+")) => {
            digits_eq(s, t)
        }
        (Some(s), Some(t)) => escaped_eq(s, t, true),
        _ => false,
    };
    params_agree(a, b, value_eq, |_| false) && params_agree(b, a, value_eq, |_| false)
}

/// Equal ignoring case and the visual separators `-.()` (RFC 3966 §4: "after
/// removing all visual separators").
fn digits_eq(x: &[u8], y: &[u8]) -> bool {
    fn strip(s: &[u8]) -> impl Iterator<Item = u8> + '_ {
        s.iter()
            .copied()
            .filter(|b| !matches!(b, b'-' | b'.' | b'(' | b')'))
            .map(|b| b.to_ascii_lowercase())
    }
    strip(x).eq(strip(y))
}

fn opt_eq(x: Option<&[u8]>, y: Option<&[u8]>, ignore_case: bool) -> bool {
    match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => escaped_eq(x, y, ignore_case),
        _ => false,
    }
}

/// One unit of URI text for comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// A character written as itself, or an escape of a non-reserved character.
    Char(u8),
    /// An escape of a reserved character: not equal to that character written plainly.
    EscapedReserved(u8),
}

/// Whether `x` and `y` are the same URI text under RFC 3261 §19.1.4: `%HH` of
/// an unreserved character equals the character, `%HH` of a reserved one only
/// another `%HH` of it; `ignore_case` folds ASCII case of the characters.
fn escaped_eq(x: &[u8], y: &[u8], ignore_case: bool) -> bool {
    if x == y {
        return true;
    }
    units(x, ignore_case).eq(units(y, ignore_case))
}

fn units(s: &[u8], ignore_case: bool) -> impl Iterator<Item = Unit> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let b = *s.get(pos)?;
        let fold = |c: u8| {
            if ignore_case {
                c.to_ascii_lowercase()
            } else {
                c
            }
        };
        if b == b'%' {
            let hi = s.get(pos + 1).and_then(|&h| hex_val(h));
            let lo = s.get(pos + 2).and_then(|&l| hex_val(l));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                pos += 3;
                let c = hi << 4 | lo;
                return Some(if is_reserved(c) {
                    Unit::EscapedReserved(c)
                } else {
                    Unit::Char(fold(c))
                });
            }
        }
        pos += 1;
        Some(Unit::Char(fold(b)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        let ua = Uri::parse(a.as_bytes()).unwrap_or_else(|e| panic!("{a}: {e}"));
        let ub = Uri::parse(b.as_bytes()).unwrap_or_else(|e| panic!("{b}: {e}"));
        let forward = uri_eq(&ua, &ub);
        assert_eq!(
            forward,
            uri_eq(&ub, &ua),
            "uri_eq must be symmetric: {a} / {b}"
        );
        forward
    }

    #[test]
    fn rfc3261_equivalent_examples() {
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:carol@chicago.com;newparam=5",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
    }

    #[test]
    fn rfc3261_non_equivalent_examples() {
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
    }

    #[test]
    fn scheme_user_password_rules() {
        assert!(!eq("sip:alice@a.com", "sips:alice@a.com"));
        assert!(eq("SIP:alice@a.com", "sip:alice@A.COM"));
        assert!(!eq("sip:a.com", "sip:alice@a.com"));
        assert!(!eq("sip:alice@a.com", "sip:alice:pw@a.com"));
        assert!(!eq("sip:alice:pw@a.com", "sip:alice:PW@a.com"));
        assert!(eq("sip:alice:p%77@a.com", "sip:alice:pw@a.com"));
        assert!(!eq("sip:alice:@a.com", "sip:alice@a.com"));
        assert!(!eq("sip:alice@a.com", "tel:+1234"));
        assert!(!eq("sip:alice@a.com", "im:alice@a.com"));
    }

    #[test]
    fn escapes_of_reserved_characters_differ() {
        // `;` is reserved: %3B is not the same as a literal `;` in the user part.
        assert!(!eq("sip:a%3Bb@x.com", "sip:a;b@x.com"));
        assert!(eq("sip:a%3Bb@x.com", "sip:a%3bb@x.com"));
        assert!(eq("sip:%41@x.com", "sip:A@x.com"));
        assert!(!eq("sip:%41@x.com", "sip:a@x.com"));
        assert!(eq("sip:x.com;%6C%72", "sip:x.com;lr"));
        assert!(eq("sip:x.com;n%61me=v%61lue", "sip:x.com;NAME=VALUE"));
        assert!(!eq("sip:%2541@x.com", "sip:%41@x.com"));
    }

    #[test]
    fn hosts_and_ports() {
        assert!(eq("sip:[2001:db8::1]", "sip:[2001:DB8:0:0::1]"));
        assert!(!eq("sip:[::1]", "sip:127.0.0.1"));
        assert!(eq("sip:a@10.0.0.1:5070", "sip:a@10.0.0.1:5070"));
        assert!(!eq("sip:a@10.0.0.1:5070", "sip:a@10.0.0.1:5071"));
        assert!(!eq("sip:a@example.com", "sip:a@example.com."));
    }

    #[test]
    fn sticky_and_ignored_params() {
        for p in [
            "user=phone",
            "ttl=1",
            "method=INVITE",
            "maddr=10.0.0.1",
            "transport=udp",
        ] {
            assert!(!eq("sip:a@b.com", &format!("sip:a@b.com;{p}")), "{p}");
        }
        assert!(eq("sip:a@b.com;lr", "sip:a@b.com"));
        assert!(eq("sip:a@b.com;ttl=1;lr", "sip:a@b.com;TTL=1"));
        assert!(!eq("sip:a@b.com;lr", "sip:a@b.com;lr=on"));
        assert!(!eq(
            "sip:a@b.com;maddr=10.0.0.1",
            "sip:a@b.com;maddr=10.0.0.2"
        ));
        // A repeated parameter must agree whichever side has it twice.
        assert!(!eq("sip:a@b.com;x=1;x=2", "sip:a@b.com;x=1"));
        assert!(eq("sip:a@b.com;x=1;x", "sip:a@b.com;x;X=1"));
        assert!(!eq("sip:a@b.com;x=1;x", "sip:a@b.com;x=1;x=1"));
    }

    #[test]
    fn headers_are_a_multiset() {
        assert!(eq("sip:a@b.com?f=1&f=2", "sip:a@b.com?f=2&F=1"));
        assert!(!eq("sip:a@b.com?f=1&f=1", "sip:a@b.com?f=1"));
        assert!(!eq("sip:a@b.com?f=1&f=2", "sip:a@b.com?f=1&f=1"));
        assert!(!eq("sip:a@b.com?subject=X", "sip:a@b.com?subject=x"));
        assert!(eq("sip:a@b.com?subject=%58", "sip:a@b.com?subject=X"));
    }

    #[test]
    fn tel_comparison_rfc3966() {
        assert!(eq("tel:+1-201-555-0123", "tel:+1.201.555.0123"));
        assert!(eq("tel:+1(201)5550123", "TEL:+12015550123"));
        assert!(!eq("tel:+12015550123", "tel:12015550123;phone-context=+1"));
        assert!(eq(
            "tel:7042;phone-context=EXAMPLE.com",
            "tel:7042;phone-context=example.com"
        ));
        assert!(eq(
            "tel:7042;phone-context=+1-201",
            "tel:7042;phone-context=+1201"
        ));
        assert!(!eq(
            "tel:7042;phone-context=+1-201",
            "tel:7042;phone-context=+1202"
        ));
        assert!(!eq("tel:+1234;ext=1", "tel:+1234"));
        assert!(eq("tel:+1234;a=1;b=2", "tel:+1234;B=2;a=1"));
        assert!(eq("tel:+1234;a=1;a=2", "tel:+1234;a=2;a=1"));
        assert!(!eq("tel:+1234;a=1;a=2", "tel:+1234;a=1"));
        assert!(eq(
            "tel:*21#ab;phone-context=x.com",
            "tel:*21#AB;phone-context=x.com"
        ));
    }

    #[test]
    fn other_schemes_compare_text() {
        assert!(eq("URN:uuid:abc", "urn:uuid:abc"));
        assert!(!eq("urn:uuid:abc", "urn:uuid:ABC"));
        assert!(eq("urn:uuid:%61bc", "urn:uuid:abc"));
        assert!(!eq("urn:uuid:abc", "uri:uuid:abc"));
    }

    /// Generated well-formed `sip:`/`sips:` URIs: parsing returns what was put in,
    /// and equivalence holds under the case and escape changes §19.1.4 allows.
    mod generated {
        use super::super::uri_eq;
        use crate::sip::uri::{Host, Scheme, Uri};
        use proptest::prelude::*;
        use std::net::{Ipv4Addr, Ipv6Addr};

        #[derive(Clone, Debug)]
        struct Parts {
            secure: bool,
            user: Option<String>,
            password: Option<String>,
            host: HostPart,
            port: Option<u16>,
            params: Vec<(String, Option<String>)>,
            headers: Vec<(String, String)>,
        }

        #[derive(Clone, Debug)]
        enum HostPart {
            Name(String),
            V4(Ipv4Addr),
            V6(Ipv6Addr),
        }

        impl Parts {
            fn text(&self, upper_host: bool) -> String {
                let mut s = String::from(if self.secure { "sips:" } else { "sip:" });
                if let Some(u) = &self.user {
                    s += u;
                    if let Some(p) = &self.password {
                        s += ":";
                        s += p;
                    }
                    s += "@";
                }
                match &self.host {
                    HostPart::Name(n) if upper_host => s += &n.to_ascii_uppercase(),
                    HostPart::Name(n) => s += n,
                    HostPart::V4(a) => s += &a.to_string(),
                    HostPart::V6(a) => s += &format!("[{a}]"),
                }
                if let Some(p) = self.port {
                    s += &format!(":{p}");
                }
                for (name, value) in &self.params {
                    s += ";";
                    s += &if upper_host {
                        name.to_ascii_uppercase()
                    } else {
                        name.clone()
                    };
                    if let Some(v) = value {
                        s += "=";
                        s += v;
                    }
                }
                for (i, (name, value)) in self.headers.iter().enumerate() {
                    s += if i == 0 { "?" } else { "&" };
                    s += &format!("{name}={value}");
                }
                s
            }
        }

        fn parts() -> impl Strategy<Value = Parts> {
            let label = "[a-z]([a-z0-9-]{0,6}[a-z0-9])?";
            let host = prop_oneof![
                proptest::collection::vec(label, 1..4).prop_map(|l| HostPart::Name(l.join("."))),
                any::<Ipv4Addr>().prop_map(HostPart::V4),
                any::<Ipv6Addr>().prop_map(HostPart::V6),
            ];
            let user = "([a-zA-Z0-9_.!~*'()&=+$,;?/-]|%[0-9A-F]{2}){1,12}";
            let password = "([a-zA-Z0-9_.!~*'()&=+$,-]|%[0-9a-f]{2}){0,8}";
            let param = (
                "x[a-z0-9-]{0,6}",
                proptest::option::of("[a-zA-Z0-9.:+$-]{1,8}"),
            );
            let header = ("[a-zA-Z]{1,6}", "([a-z0-9?:/]|%2[0-9]){0,6}");
            (
                any::<bool>(),
                proptest::option::of((user, proptest::option::of(password))),
                host,
                proptest::option::of(any::<u16>()),
                proptest::collection::vec(param, 0..4),
                proptest::collection::vec(header, 0..3),
            )
                .prop_map(|(secure, userinfo, host, port, params, headers)| Parts {
                    secure,
                    user: userinfo.as_ref().map(|(u, _)| u.clone()),
                    password: userinfo.and_then(|(_, p)| p),
                    host,
                    port,
                    params,
                    headers,
                })
        }

        proptest! {
            #![proptest_config(crate::proptest_config(256))]

            #[test]
            fn parse_returns_the_parts(parts in parts()) {
                let text = parts.text(false);
                let uri = Uri::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                prop_assert_eq!(uri.scheme(), if parts.secure { Scheme::Sips } else { Scheme::Sip });
                prop_assert_eq!(uri.user(), parts.user.as_deref().map(str::as_bytes));
                prop_assert_eq!(uri.password(), parts.password.as_deref().map(str::as_bytes));
                match (&parts.host, uri.host()) {
                    (HostPart::Name(n), Some(Host::Name(h))) => prop_assert_eq!(n.as_bytes(), h),
                    (HostPart::V4(a), Some(Host::V4(h))) => prop_assert_eq!(*a, h),
                    (HostPart::V6(a), Some(Host::V6(h))) => prop_assert_eq!(*a, h),
                    (want, got) => prop_assert!(false, "host {:?} parsed as {:?}", want, got),
                }
                prop_assert_eq!(uri.port(), parts.port);
                let params: Vec<_> = uri.params().map(|p| (p.name.to_vec(), p.value.map(<[u8]>::to_vec))).collect();
                let want: Vec<_> = parts.params.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_ref().map(|v| v.as_bytes().to_vec()))).collect();
                prop_assert_eq!(params, want);
                let headers: Vec<_> = uri.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
                let want: Vec<_> = parts.headers.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
                prop_assert_eq!(headers, want);
                prop_assert!(uri_eq(&uri, &uri));
            }

            #[test]
            fn equivalence_survives_case_of_host_and_param_names(parts in parts()) {
                let (a, b) = (parts.text(false), parts.text(true));
                let (ua, ub) = (Uri::parse(a.as_bytes()).unwrap(), Uri::parse(b.as_bytes()).unwrap());
                prop_assert!(uri_eq(&ua, &ub), "{} / {}", a, b);
                let mut other = parts.clone();
                other.port = Some(parts.port.map_or(5060, |p| p.wrapping_add(1)));
                let c = other.text(false);
                prop_assert!(!uri_eq(&ua, &Uri::parse(c.as_bytes()).unwrap()), "{} / {}", a, c);
            }

            #[test]
            fn escaping_an_unreserved_user_char_keeps_equivalence(parts in parts(), at in any::<prop::sample::Index>()) {
                let Some(user) = parts.user.clone() else { return Ok(()) };
                let bytes = user.as_bytes();
                let i = at.index(bytes.len());
                let b = bytes[i];
                // Only a plain unreserved character (not the inside of an existing escape).
                let inside_escape = (i >= 1 && bytes[i - 1] == b'%') || (i >= 2 && bytes[i - 2] == b'%');
                prop_assume!(crate::sip::scan::is_unreserved(b) && !inside_escape);
                let mut escaped = parts.clone();
                escaped.user = Some(format!("{}%{:02X}{}", &user[..i], b, &user[i + 1..]));
                let (a, e) = (parts.text(false), escaped.text(false));
                prop_assert!(uri_eq(&Uri::parse(a.as_bytes()).unwrap(), &Uri::parse(e.as_bytes()).unwrap()), "{} / {}", a, e);
            }

            #[test]
            fn parse_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..48), prefix in prop::sample::select(vec!["", "sip:", "sips:a@", "tel:", "tel:+1;", "sip:[", "x:"])) {
                let mut s = prefix.as_bytes().to_vec();
                s.extend_from_slice(&tail);
                if let Ok(u) = Uri::parse(&s) {
                    prop_assert!(uri_eq(&u, &u));
                    let _ = (u.transport(), u.lr(), u.maddr(), u.ttl(), u.user_param(), u.effective_port(), u.opaque());
                    let _ = (u.params().count(), u.headers().count());
                }
            }
        }
    }
}
