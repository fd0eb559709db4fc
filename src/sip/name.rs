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

/// Longest canonical name in [`TABLE`] (`P-Preferred-Identity`).
const MAX_NAME: usize = 20;

/// Marks an empty slot in [`SLOTS`] and [`COMPACT`].
const NONE: u8 = u8::MAX;

/// Multiplier of the perfect hash below, found by search so that the 52 names
/// of [`TABLE`] land in 52 distinct slots of 128. When a name is added and two
/// collide, `tests::perfect_hash_has_no_collisions` fails and prints a new one.
const HASH_MUL: u32 = 0x9e19_22f7;

/// Looking a name up is on the path of every header line of every message,
/// so it is one hash and at most one case-insensitive compare, not a scan of
/// the table: the hash mixes length, first, third and last byte (case folded),
/// which tell all known names apart.
#[inline(always)]
fn slot(name: &[u8]) -> usize {
    let len = name.len();
    let third = name[if len > 2 { 2 } else { 1 }];
    let key = u32::from(name[0] | 0x20)
        | u32::from(third | 0x20) << 8
        | u32::from(name[len - 1] | 0x20) << 16
        | (len as u32) << 24;
    (key.wrapping_mul(HASH_MUL) >> 25) as usize
}

/// `const` twin of [`slot`] for building [`SLOTS`] at compile time.
const fn slot_const(name: &[u8], mul: u32) -> usize {
    let len = name.len();
    let third = name[if len > 2 { 2 } else { 1 }];
    let key = (name[0] | 0x20) as u32
        | ((third | 0x20) as u32) << 8
        | ((name[len - 1] | 0x20) as u32) << 16
        | (len as u32) << 24;
    (key.wrapping_mul(mul) >> 25) as usize
}

/// Hash slot → index into [`TABLE`], or [`NONE`]. A collision leaves the later
/// name out (and fails the test that guards this table).
const SLOTS: [u8; 128] = {
    let mut slots = [NONE; 128];
    let mut i = 0;
    while i < TABLE.len() {
        let s = slot_const(TABLE[i].0.as_bytes(), HASH_MUL);
        if slots[s] == NONE {
            slots[s] = i as u8;
        }
        i += 1;
    }
    slots
};

/// Each canonical name lower-cased, and per byte the bit that folds case
/// (`0x20` for a letter, `0` for `-`), zero-padded: `wire | fold == lower`
/// holds exactly when a wire byte is that letter in either case, or that `-`.
const FOLDED: [([u8; MAX_NAME], [u8; MAX_NAME]); TABLE.len()] = {
    let mut folded = [([0u8; MAX_NAME], [0u8; MAX_NAME]); TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        let name = TABLE[i].0.as_bytes();
        let mut j = 0;
        while j < name.len() {
            let b = name[j];
            if b.is_ascii_alphabetic() {
                folded[i].0[j] = b | 0x20;
                folded[i].1[j] = 0x20;
            } else {
                folded[i].0[j] = b;
            }
            j += 1;
        }
        i += 1;
    }
    folded
};

/// Whether `name` is entry `index` of [`TABLE`], case-insensitively.
/// Compares in (overlapping) words rather than bytes: this runs once per
/// header line of every message.
#[inline]
fn is_entry(name: &[u8], index: usize) -> bool {
    let Some(((long, _, _), (lower, fold))) = TABLE.get(index).zip(FOLDED.get(index)) else {
        return false;
    };
    let len = name.len();
    if long.len() != len {
        return false;
    }
    let eq8 = |at: usize| word::<8>(name, at) | word::<8>(fold, at) == word::<8>(lower, at);
    let eq4 = |at: usize| word::<4>(name, at) | word::<4>(fold, at) == word::<4>(lower, at);
    let eq2 = |at: usize| word::<2>(name, at) | word::<2>(fold, at) == word::<2>(lower, at);
    match len {
        // Every byte is covered by at least one of the words.
        8.. => eq8(0) && eq8(len - 8) && (len <= 16 || eq8(8)),
        4..=7 => eq4(0) && eq4(len - 4),
        _ => eq2(0) && eq2(len - 2),
    }
}

/// `N` bytes of `s` from `at` as a little-endian integer (`N` is 2, 4 or 8).
#[inline]
fn word<const N: usize>(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w[..N].copy_from_slice(&s[at..at + N]);
    u64::from_le_bytes(w)
}

/// Lower-case compact form → index into [`TABLE`], or [`NONE`].
const COMPACT: [u8; 128] = {
    let mut compact = [NONE; 128];
    let mut i = 0;
    while i < TABLE.len() {
        let c = TABLE[i].1;
        if c != 0 {
            compact[c as usize] = i as u8;
        }
        i += 1;
    }
    compact
};

impl HeaderName {
    /// Identifies a field name as it appears on the wire (any case, compact or long form).
    #[inline]
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        HeaderName::lookup(name)
    }

    /// [`HeaderName::from_bytes`], inlined into the framing scan: it runs
    /// once per header line of every message.
    #[inline(always)]
    pub(crate) fn lookup(name: &[u8]) -> HeaderName {
        let index = match name.len() {
            0 => NONE,
            1 => COMPACT
                .get(name[0].to_ascii_lowercase() as usize)
                .copied()
                .unwrap_or(NONE),
            2..=MAX_NAME => {
                let i = SLOTS[slot(name)];
                if is_entry(name, i as usize) {
                    i
                } else {
                    NONE
                }
            }
            _ => NONE,
        };
        TABLE
            .get(index as usize)
            .map_or(HeaderName::Other, |(_, _, id)| *id)
    }

    /// The canonical (long) spelling; `""` for [`HeaderName::Other`].
    pub fn as_str(self) -> &'static str {
        // TABLE is in declaration order (checked by a test).
        TABLE.get(self as usize).map_or("", |(long, _, _)| long)
    }

    /// Whether the header's value is a comma-separated list that may be split
    /// across several header lines (RFC 3261 §7.3.1).
    pub fn is_list(self) -> bool {
        // RFC 3841 §10 (Accept-Contact, Reject-Contact, Request-Disposition)
        // and RFC 3325 §9 (P-Asserted-Identity, P-Preferred-Identity) define
        // their values as `value *(COMMA value)`, like Via or Route.
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
                | HeaderName::PPreferredIdentity
                | HeaderName::AcceptContact
                | HeaderName::RejectContact
                | HeaderName::RequestDisposition
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
        assert_eq!(HeaderName::from_bytes(b"Reply-To"), HeaderName::ReplyTo);
        assert_eq!(HeaderName::from_bytes(b"refer-to"), HeaderName::ReferTo);
        assert_eq!(
            HeaderName::from_bytes(b"WWW-AUTHENTICATE"),
            HeaderName::WwwAuthenticate
        );
        // Same hash inputs as a known name, different name.
        assert_eq!(HeaderName::from_bytes(b"Vxa"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"Refxx-To"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"\xff"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(&[b'x'; 300]), HeaderName::Other);
    }

    #[test]
    fn table_is_in_declaration_order() {
        for (i, (_, _, id)) in TABLE.iter().enumerate() {
            assert_eq!(*id as usize, i, "{id:?}");
        }
        assert_eq!(HeaderName::Other as usize, TABLE.len());
        assert_eq!(HeaderName::Other.as_str(), "");
        assert_eq!(
            TABLE.iter().map(|(long, _, _)| long.len()).max(),
            Some(MAX_NAME)
        );
    }

    #[test]
    fn perfect_hash_has_no_collisions() {
        let collides = |mul: u32| {
            let mut seen = [false; 128];
            TABLE.iter().any(|(long, _, _)| {
                let s = slot_const(long.as_bytes(), mul);
                std::mem::replace(&mut seen[s], true)
            })
        };
        if collides(HASH_MUL) {
            let new = (0x9e37_79b1u32..)
                .step_by(2)
                .find(|&m| !collides(m))
                .expect("some multiplier separates the names");
            panic!("header name hash collides: set HASH_MUL to {new:#x}");
        }
        for (i, (long, _, _)) in TABLE.iter().enumerate() {
            assert_eq!(SLOTS[slot(long.as_bytes())] as usize, i, "{long}");
        }
    }

    #[test]
    fn lookup_agrees_with_a_plain_scan() {
        // Every case variant of every known name, and near misses.
        let scan = |name: &[u8]| {
            TABLE
                .iter()
                .find(|(long, c, _)| {
                    long.as_bytes().eq_ignore_ascii_case(name)
                        || (name.len() == 1 && *c != 0 && name[0].to_ascii_lowercase() == *c)
                })
                .map_or(HeaderName::Other, |(_, _, id)| *id)
        };
        for (long, _, _) in TABLE {
            let upper = long.to_ascii_uppercase();
            let lower = long.to_ascii_lowercase();
            for name in [long.as_bytes(), upper.as_bytes(), lower.as_bytes()] {
                assert_eq!(HeaderName::from_bytes(name), scan(name));
                let mut miss = name.to_vec();
                miss[1] ^= 0x01;
                assert_eq!(HeaderName::from_bytes(&miss), scan(&miss));
                miss.pop();
                assert_eq!(HeaderName::from_bytes(&miss), scan(&miss));
            }
        }
        for b in 0..=255u8 {
            assert_eq!(HeaderName::from_bytes(&[b]), scan(&[b]));
        }
        // Flipping the case bit of any byte: still the name for a letter,
        // another name for `-` (`Call\rID` is not `Call-ID`).
        for (long, _, id) in TABLE {
            for at in 0..long.len() {
                let mut name = long.as_bytes().to_vec();
                name[at] ^= 0x20;
                let expect = if long.as_bytes()[at].is_ascii_alphabetic() {
                    *id
                } else {
                    HeaderName::Other
                };
                assert_eq!(HeaderName::from_bytes(&name), expect, "{name:?}");
                assert_eq!(scan(&name), expect);
            }
        }
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
