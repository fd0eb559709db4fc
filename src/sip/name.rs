//! Header field names: the ones ringsip reads by identity, with their compact
//! forms (RFC 3261 §7.3.3 and the IANA registry), matched case-insensitively.

/// A header field name the proxy knows by identity; everything else is [`HeaderName::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Contact,
    Route,
    RecordRoute,
    ContentLength,
    ContentType,
    ContentEncoding,
    ContentDisposition,
    Expires,
    MinExpires,
    Authorization,
    ProxyAuthorization,
    WwwAuthenticate,
    ProxyAuthenticate,
    UserAgent,
    Server,
    Allow,
    AllowEvents,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    Path,
    Event,
    Subject,
    AcceptContact,
    RejectContact,
    RequestDisposition,
    ReferTo,
    ReferredBy,
    SessionExpires,
    Identity,
    IdentityInfo,
    Accept,
    PAssertedIdentity,
    PPreferredIdentity,
    Privacy,
    ReplyTo,
    Date,
    Timestamp,
    Priority,
    Warning,
    RetryAfter,
    MinSe,
    RSeq,
    RAck,
    SubscriptionState,
    Other,
}

/// (canonical name, compact form or 0, id). Canonical spelling is what ringsip writes.
const TABLE: &[(&str, u8, HeaderName)] = &[
    ("Via", b'v', HeaderName::Via),
    ("From", b'f', HeaderName::From),
    ("To", b't', HeaderName::To),
    ("Call-ID", b'i', HeaderName::CallId),
    ("CSeq", 0, HeaderName::CSeq),
    ("Max-Forwards", 0, HeaderName::MaxForwards),
    ("Contact", b'm', HeaderName::Contact),
    ("Route", 0, HeaderName::Route),
    ("Record-Route", 0, HeaderName::RecordRoute),
    ("Content-Length", b'l', HeaderName::ContentLength),
    ("Content-Type", b'c', HeaderName::ContentType),
    ("Content-Encoding", b'e', HeaderName::ContentEncoding),
    ("Content-Disposition", 0, HeaderName::ContentDisposition),
    ("Expires", 0, HeaderName::Expires),
    ("Min-Expires", 0, HeaderName::MinExpires),
    ("Authorization", 0, HeaderName::Authorization),
    ("Proxy-Authorization", 0, HeaderName::ProxyAuthorization),
    ("WWW-Authenticate", 0, HeaderName::WwwAuthenticate),
    ("Proxy-Authenticate", 0, HeaderName::ProxyAuthenticate),
    ("User-Agent", 0, HeaderName::UserAgent),
    ("Server", 0, HeaderName::Server),
    ("Allow", 0, HeaderName::Allow),
    ("Allow-Events", b'u', HeaderName::AllowEvents),
    ("Supported", b'k', HeaderName::Supported),
    ("Require", 0, HeaderName::Require),
    ("Proxy-Require", 0, HeaderName::ProxyRequire),
    ("Unsupported", 0, HeaderName::Unsupported),
    ("Path", 0, HeaderName::Path),
    ("Event", b'o', HeaderName::Event),
    ("Subject", b's', HeaderName::Subject),
    ("Accept-Contact", b'a', HeaderName::AcceptContact),
    ("Reject-Contact", b'j', HeaderName::RejectContact),
    ("Request-Disposition", b'd', HeaderName::RequestDisposition),
    ("Refer-To", b'r', HeaderName::ReferTo),
    ("Referred-By", b'b', HeaderName::ReferredBy),
    ("Session-Expires", b'x', HeaderName::SessionExpires),
    ("Identity", b'y', HeaderName::Identity),
    ("Identity-Info", b'n', HeaderName::IdentityInfo),
    ("Accept", 0, HeaderName::Accept),
    ("P-Asserted-Identity", 0, HeaderName::PAssertedIdentity),
    ("P-Preferred-Identity", 0, HeaderName::PPreferredIdentity),
    ("Privacy", 0, HeaderName::Privacy),
    ("Reply-To", 0, HeaderName::ReplyTo),
    ("Date", 0, HeaderName::Date),
    ("Timestamp", 0, HeaderName::Timestamp),
    ("Priority", 0, HeaderName::Priority),
    ("Warning", 0, HeaderName::Warning),
    ("Retry-After", 0, HeaderName::RetryAfter),
    ("Min-SE", 0, HeaderName::MinSe),
    ("RSeq", 0, HeaderName::RSeq),
    ("RAck", 0, HeaderName::RAck),
    ("Subscription-State", 0, HeaderName::SubscriptionState),
];

impl HeaderName {
    /// Identifies a field name as it appears on the wire (any case, compact or long form).
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        if name.len() == 1 {
            let c = name[0].to_ascii_lowercase();
            return TABLE
                .iter()
                .find(|(_, compact, _)| *compact == c)
                .map_or(HeaderName::Other, |(_, _, id)| *id);
        }
        TABLE
            .iter()
            .find(|(long, _, _)| {
                long.len() == name.len() && long.as_bytes().eq_ignore_ascii_case(name)
            })
            .map_or(HeaderName::Other, |(_, _, id)| *id)
    }

    /// The canonical (long) spelling; `""` for [`HeaderName::Other`].
    pub fn as_str(self) -> &'static str {
        TABLE
            .iter()
            .find(|(_, _, id)| *id == self)
            .map_or("", |(long, _, _)| long)
    }

    /// Whether the header's value is a comma-separated list that may be split
    /// across several header lines (RFC 3261 §7.3.1).
    pub fn is_list(self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Path
                | HeaderName::Allow
                | HeaderName::Supported
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Unsupported
                | HeaderName::AllowEvents
                | HeaderName::Accept
                | HeaderName::ContentEncoding
                | HeaderName::PAssertedIdentity
                | HeaderName::Warning
        )
    }
}

/// Whether two wire names denote the same header (compact forms and case folded).
pub fn same_header(a: &[u8], b: &[u8]) -> bool {
    let (ia, ib) = (HeaderName::from_bytes(a), HeaderName::from_bytes(b));
    if ia == HeaderName::Other || ib == HeaderName::Other {
        a.eq_ignore_ascii_case(b)
    } else {
        ia == ib
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_compact_forms_match() {
        assert_eq!(HeaderName::from_bytes(b"via"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"V"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"CALL-id"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_bytes(b"m"), HeaderName::Contact);
        assert_eq!(HeaderName::from_bytes(b"x"), HeaderName::SessionExpires);
        assert_eq!(HeaderName::from_bytes(b"q"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"X-Custom"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b""), HeaderName::Other);
    }

    #[test]
    fn every_compact_form_is_distinct_and_round_trips() {
        for (long, compact, id) in TABLE {
            assert_eq!(HeaderName::from_bytes(long.as_bytes()), *id, "{long}");
            assert_eq!(id.as_str(), *long);
            if *compact != 0 {
                assert_eq!(HeaderName::from_bytes(&[*compact]), *id, "{long}");
                assert_eq!(TABLE.iter().filter(|(_, c, _)| c == compact).count(), 1);
            }
        }
    }

    #[test]
    fn same_header_folds_compact_and_case() {
        assert!(same_header(b"f", b"FROM"));
        assert!(same_header(b"X-A", b"x-a"));
        assert!(!same_header(b"X-A", b"X-B"));
        assert!(!same_header(b"t", b"From"));
    }
}
