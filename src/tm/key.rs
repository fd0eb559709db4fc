//! Server transaction matching (RFC 3261 §17.2.3): the key a request is
//! looked up by, hashed into one `u64` with the table's secret, and the exact
//! comparison made on a hit.
//!
//! - RFC 3261 requests (top Via branch starts with `z9hG4bK`): "the branch
//!   parameter in the request is equal to the one in the top Via header field
//!   of the request that created the transaction", "the sent-by value in the
//!   top Via of the request is equal to the one in the request that created
//!   the transaction", and "the method of the request matches the one that
//!   created the transaction, except for ACK, where the method of the request
//!   that created the transaction is INVITE".
//! - RFC 2543 requests (no cookie): "the Request-URI, To tag, From tag,
//!   Call-ID, CSeq, and top Via header field match those of the INVITE request
//!   which created the transaction"; for the ACK the CSeq number (not the
//!   method) and "the To tag of the ACK matches the To tag of the response
//!   sent by the server transaction". The To tag is therefore left out of the
//!   hash and compared on a hit.
//!
//! A CANCEL is looked up twice: as itself (a retransmitted CANCEL matches its
//! own transaction) and with the method INVITE (§9.2: the transaction to cancel).

use std::hash::{BuildHasher, Hasher};

use bytes::Bytes;

use crate::sip::headers::CSeq;
use crate::sip::nameaddr::NameAddr;
use crate::sip::via::{vias, Via};
use crate::sip::{HeaderName, Message, Span};

/// The fields a request is matched by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fields<'a> {
    /// RFC 3261: branch and sent-by of the top Via.
    Rfc3261 { branch: &'a [u8], sent_by: &'a [u8] },
    /// RFC 2543: everything but the method; `to_tag` is compared, not hashed.
    Rfc2543 {
        uri: &'a [u8],
        from_tag: &'a [u8],
        call_id: &'a [u8],
        cseq: u32,
        top_via: &'a [u8],
        to_tag: Option<&'a [u8]>,
    },
}

/// A request's matching key: its fields and the method it matches as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key<'a> {
    pub fields: Fields<'a>,
    /// The method as matched: `INVITE` for an ACK.
    pub method: &'a [u8],
}

/// Where the RFC 3261 key fields lie in a stored request (absolute spans),
/// so that a hit is verified without parsing the request again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeySpans {
    /// Empty for an RFC 2543 transaction.
    pub branch: Span,
    pub sent_by: Span,
}

impl<'a> Key<'a> {
    /// The key of a request, or `None` when its top Via or the fields an RFC
    /// 2543 key needs cannot be read (such a request matches nothing).
    pub fn of(msg: &'a Message) -> Option<(Key<'a>, KeySpans)> {
        Key::of_scanned(msg).map(|(key, spans, _)| (key, spans))
    }

    /// [`Key::of`], and the quick scan of the top Via when it read it (the
    /// new transaction's response target is read from it too).
    pub fn of_scanned(msg: &'a Message) -> Option<(Key<'a>, KeySpans, Option<ViaScan>)> {
        let method = match msg.method_bytes() {
            b"ACK" => &b"INVITE"[..],
            m => m,
        };
        // The common case without a full Via parse: an RFC 3261 branch in a plain Via.
        let h = msg.header(HeaderName::Via)?;
        let value = msg.value(h);
        let scan = scan_top_via(value);
        if let Some(scan) = &scan {
            let at = h.value.start as usize;
            if let Some(b) = scan.branch.clone().filter(|b| {
                value
                    .get(b.clone())
                    .is_some_and(|v| v.starts_with(crate::sip::via::MAGIC_COOKIE))
            }) {
                let spans = KeySpans {
                    branch: Span::new(at + b.start, at + b.end),
                    sent_by: Span::new(at + scan.sent_by.start, at + scan.sent_by.end),
                };
                let key = Key {
                    fields: Fields::Rfc3261 {
                        branch: value.get(b)?,
                        sent_by: value.get(scan.sent_by.clone())?,
                    },
                    method,
                };
                return Some((key, spans, Some(scan.clone())));
            }
        }
        let (via, at) = top_via(msg)?;
        if via.has_magic_cookie() {
            let branch = via.branch()?;
            let value = msg.header(HeaderName::Via)?.value;
            let src = msg.slice(value);
            let sent_by = src.get(via.sent_by_range())?;
            // The branch value ends its `;branch=…` parameter.
            let b_start = via.param_range(b"branch")?.end.checked_sub(branch.len())?;
            let spans = KeySpans {
                branch: Span::new(at + b_start, at + b_start + branch.len()),
                sent_by: Span::new(at + via.sent_by_range().start, at + via.sent_by_range().end),
            };
            return Some((
                Key {
                    fields: Fields::Rfc3261 { branch, sent_by },
                    method,
                },
                spans,
                scan,
            ));
        }
        let tag = |id| {
            msg.header_value(id)
                .and_then(|v| NameAddr::parse(v).ok())
                .and_then(|na| na.tag())
        };
        let cseq = CSeq::parse(msg.header_value(HeaderName::CSeq)?).ok()?;
        let fields = Fields::Rfc2543 {
            uri: msg.request_uri()?,
            from_tag: tag(HeaderName::From).unwrap_or_default(),
            call_id: msg.call_id()?,
            cseq: cseq.seq,
            top_via: msg
                .slice(msg.header(HeaderName::Via)?.value)
                .get(via.span())?,
            to_tag: tag(HeaderName::To),
        };
        Some((Key { fields, method }, KeySpans::default(), scan))
    }

    /// The same key matching as another method (CANCEL looking for its INVITE).
    pub fn as_method(self, method: &'a [u8]) -> Key<'a> {
        Key { method, ..self }
    }

    /// The index hash, keyed by the table's secret.
    pub fn hash<S: BuildHasher>(&self, key: &S) -> u64 {
        let Fields::Rfc3261 { branch, sent_by } = self.fields else {
            return self.hash_piecewise(key);
        };
        // Host names compare without regard to case (§19.1.4): hashed
        // lower-cased. The hash is a stream: pieces written one after the
        // other hash as their concatenation, so the common case gathers them
        // (method included) for one write, a third of the cost of five
        // separate ones; long values take the piecewise path.
        let mut buf = [0u8; 192];
        let n = 2 + branch.len() + sent_by.len() + self.method.len();
        let Some(all) = buf.get_mut(..n) else {
            return self.hash_piecewise(key);
        };
        let (tag, rest) = all.split_at_mut(1);
        tag[0] = 1;
        let (b, rest) = rest.split_at_mut(branch.len());
        b.copy_from_slice(branch);
        let (zero, rest) = rest.split_at_mut(1);
        zero[0] = 0;
        let (host, m) = rest.split_at_mut(sent_by.len());
        host.copy_from_slice(sent_by);
        host.make_ascii_lowercase();
        m.copy_from_slice(self.method);
        let mut h = key.build_hasher();
        h.write(all);
        h.finish()
    }

    /// [`Key::hash`] written piece by piece (the same value).
    fn hash_piecewise<S: BuildHasher>(&self, key: &S) -> u64 {
        let mut h = key.build_hasher();
        match self.fields {
            Fields::Rfc3261 { branch, sent_by } => {
                h.write_u8(1);
                h.write(branch);
                h.write_u8(0);
                let mut buf = [0u8; 64];
                for chunk in sent_by.chunks(buf.len()) {
                    let lower = &mut buf[..chunk.len()];
                    lower.copy_from_slice(chunk);
                    lower.make_ascii_lowercase();
                    h.write(lower);
                }
            }
            Fields::Rfc2543 {
                uri,
                from_tag,
                call_id,
                cseq,
                top_via,
                to_tag: _,
            } => {
                h.write_u8(2);
                for part in [uri, from_tag, call_id, top_via] {
                    h.write(part);
                    h.write_u8(0);
                }
                h.write_u32(cseq);
            }
        }
        h.write(self.method);
        h.finish()
    }

    /// Whether this key is that of the request that created a transaction:
    /// `request` (its bytes), `method` and `spans` (where its method and RFC
    /// 3261 key fields lie). For an RFC 2543 ACK, `sent_to_tag` gives the To
    /// tag of the final response the transaction sent. Only an RFC 2543 key
    /// parses the stored request again (RFC 2543 peers are rare).
    pub fn matches(
        &self,
        request: &Bytes,
        method: Span,
        spans: &KeySpans,
        is_ack: bool,
        sent_to_tag: impl FnOnce() -> Option<Vec<u8>>,
    ) -> bool {
        if request.get(method.range()) != Some(self.method) {
            return false;
        }
        match self.fields {
            Fields::Rfc3261 { branch, sent_by } => {
                request.get(spans.branch.range()) == Some(branch)
                    && request
                        .get(spans.sent_by.range())
                        .is_some_and(|s| s.eq_ignore_ascii_case(sent_by))
            }
            Fields::Rfc2543 {
                uri,
                from_tag,
                call_id,
                cseq,
                top_via,
                to_tag,
            } => {
                let Ok(stored) = Message::parse(request.clone()) else {
                    return false;
                };
                let Some((
                    Key {
                        fields:
                            Fields::Rfc2543 {
                                uri: uri2,
                                from_tag: from_tag2,
                                call_id: call_id2,
                                cseq: cseq2,
                                top_via: top_via2,
                                to_tag: to_tag2,
                            },
                        ..
                    },
                    _,
                )) = Key::of(&stored)
                else {
                    return false;
                };
                let same_rest = uri == uri2
                    && from_tag == from_tag2
                    && call_id == call_id2
                    && cseq == cseq2
                    && top_via == top_via2;
                // An INVITE retransmission or a CANCEL carries the INVITE's To;
                // an ACK carries the To tag of the response it acknowledges.
                same_rest
                    && if is_ack {
                        to_tag.is_some() && to_tag.map(<[u8]>::to_vec) == sent_to_tag()
                    } else {
                        to_tag == to_tag2
                    }
            }
        }
    }
}

/// What the transaction layer needs of a top via-parm, found by a quick scan
/// of a plainly written one (offsets into the header value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ViaScan {
    /// The transport (`UDP`).
    pub transport: std::ops::Range<usize>,
    pub sent_by: std::ops::Range<usize>,
    /// The `branch` value (first one), if any.
    pub branch: Option<std::ops::Range<usize>>,
    /// The value of the first `rport` parameter: empty (right after the
    /// name) when it has none; its end is the end of the parameter.
    pub rport: Option<std::ops::Range<usize>>,
    /// Whether a `received` parameter is present.
    pub received: bool,
    /// Where the parameters end (a new `;received=…` goes there).
    pub params_end: usize,
    /// Where the next via-parm starts, when a comma follows this one.
    pub next: Option<usize>,
}

/// Byte classes of the quick scan: bit 0 RFC 3261 `token` (§25.1); bit 1
/// token or host character (`:`, `[` and `]` for `received=[::1]`); bit 2
/// part of a sent-by (anything but `;` `,` SP HTAB CR LF `"` `(`).
const CHARS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
        {
            t[c] = TOKEN | VALUE;
        } else if matches!(b, b':' | b'[' | b']') {
            t[c] = VALUE;
        }
        if !matches!(b, b';' | b',' | b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'(') {
            t[c] |= SENT_BY;
        }
        c += 1;
    }
    t
};

const TOKEN: u8 = 1;
const VALUE: u8 = 2;
const SENT_BY: u8 = 4;

/// Where the run of bytes of class `class` that starts at `from` ends.
#[inline]
fn run(value: &[u8], from: usize, class: u8) -> usize {
    let rest = value.get(from..).unwrap_or_default();
    from + rest
        .iter()
        .position(|&b| CHARS[usize::from(b)] & class == 0)
        .unwrap_or(rest.len())
}

/// `N` (at most 8) bytes as one little-endian word, zero-padded.
#[inline]
fn word<const N: usize>(b: [u8; N]) -> u64 {
    let mut w = [0u8; 8];
    w[..N].copy_from_slice(&b);
    u64::from_le_bytes(w)
}

/// Whether `name` is `lower` (lower-case ASCII letters, at most 8) without
/// regard to case: setting bit 5 of a byte gives a given lower-case letter
/// only from that letter or its upper case.
#[inline]
fn letters_eq<const N: usize>(name: &[u8], lower: &[u8; N]) -> bool {
    debug_assert!(N <= 8 && lower.iter().all(u8::is_ascii_lowercase));
    <[u8; N]>::try_from(name).is_ok_and(|n| word(n) | word([0x20; N]) == word(*lower))
}

/// Whether `proto` is `SIP/2.0/` without regard to case (the letters folded
/// as in [`letters_eq`]; the rest compared exactly).
#[inline]
fn is_sip_2_0(proto: &[u8]) -> bool {
    <[u8; 8]>::try_from(proto)
        .is_ok_and(|p| word(p) | word([0x20, 0x20, 0x20, 0, 0, 0, 0, 0]) == word(*b"sip/2.0/"))
}

/// Scans the first via-parm of a Via header value written the common way
/// (`SIP/2.0/UDP host[:port];name[=value]...`, no whitespace or quotes in
/// the parameters). Anything else gives `None`: the caller then uses the full
/// parser ([`crate::sip::via::Via`]), which this is only a shortcut for — a
/// reply or request parses its top Via at most once on the hot path.
pub(crate) fn scan_top_via(value: &[u8]) -> Option<ViaScan> {
    let lead = value.iter().position(|&b| b != b' ' && b != b'\t')?;
    let proto = value.get(lead..lead + 8)?;
    if !is_sip_2_0(proto) {
        return None;
    }
    let t = lead + 8;
    let mut i = run(value, t, TOKEN);
    if i == t || !matches!(value.get(i), Some(b' ' | b'\t')) {
        return None;
    }
    let transport = t..i;
    while matches!(value.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    let host = i;
    i = run(value, host, SENT_BY);
    if i == host {
        return None;
    }
    let mut scan = ViaScan {
        transport,
        sent_by: host..i,
        branch: None,
        rport: None,
        received: false,
        params_end: i,
        next: None,
    };
    loop {
        match value.get(i) {
            None => {
                scan.params_end = i;
                return Some(scan);
            }
            Some(b',') => {
                scan.params_end = i;
                let mut n = i + 1;
                while matches!(value.get(n), Some(b' ' | b'\t' | b'\r' | b'\n')) {
                    n += 1;
                }
                scan.next = Some(n);
                return Some(scan);
            }
            Some(b';') => {
                let name_at = i + 1;
                i = run(value, name_at, TOKEN);
                if i == name_at {
                    return None;
                }
                let name = value.get(name_at..i)?;
                let mut val = i..i;
                if value.get(i) == Some(&b'=') {
                    // Tokens, hosts (IPv6 in brackets) and the like; no quotes.
                    let start = i + 1;
                    i = run(value, start, VALUE);
                    if i == start {
                        return None;
                    }
                    val = start..i;
                }
                match name.len() {
                    6 if scan.branch.is_none() && letters_eq(name, b"branch") => {
                        scan.branch = Some(val)
                    }
                    5 if scan.rport.is_none() && letters_eq(name, b"rport") => {
                        scan.rport = Some(val)
                    }
                    8 if letters_eq(name, b"received") => scan.received = true,
                    _ => {}
                }
            }
            Some(_) => return None,
        }
    }
}

/// The branch of a message's top Via: the quick scan, else the full parse.
pub(crate) fn top_branch(msg: &Message) -> Option<&[u8]> {
    let h = msg.header(HeaderName::Via)?;
    let value = msg.value(h);
    match scan_top_via(value) {
        Some(scan) => value.get(scan.branch?),
        None => vias(value).next()?.ok()?.branch(),
    }
}

/// The first via-parm of the first Via header, with the offset of that header's value.
pub(crate) fn top_via(msg: &Message) -> Option<(Via<'_>, usize)> {
    let h = msg.header(HeaderName::Via)?;
    let via = vias(msg.value(h)).next()?.ok()?;
    Some((via, h.value.start as usize))
}

/// A `BuildHasher` for keys that are already uniform random `u64`s.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PreHashed;

/// The hasher of [`PreHashed`]: passes a `u64` through.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed with this; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for PreHashed {
    type Hasher = PassThrough;

    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

#[cfg(test)]
mod hash_tests {
    use super::{Fields, Key};
    use std::collections::hash_map::RandomState;

    /// The gathered write hashes like the piecewise one, host names without
    /// regard to case, and a long key (piecewise only) still hashes by value.
    #[test]
    fn one_write_equals_the_pieces() {
        let s = RandomState::new();
        let long = vec![b'x'; 300];
        for (branch, sent_by) in [
            (&b"z9hG4bK776asdhds"[..], &b"Host.Example.COM:5060"[..]),
            (b"z9hG4bK", b""),
            (&long[..], b"10.0.0.1"),
            (b"z9hG4bKa", &long[..]),
        ] {
            let key = Key {
                fields: Fields::Rfc3261 { branch, sent_by },
                method: b"INVITE",
            };
            assert_eq!(key.hash(&s), key.hash_piecewise(&s));
            let upper = sent_by.to_ascii_uppercase();
            let key2 = Key {
                fields: Fields::Rfc3261 {
                    branch,
                    sent_by: &upper,
                },
                method: b"INVITE",
            };
            assert_eq!(key.hash(&s), key2.hash(&s));
            assert_ne!(key.hash(&s), key.as_method(b"CANCEL").hash(&s));
        }
    }
}

#[cfg(test)]
mod scan_tests {
    use super::scan_top_via;
    use crate::sip::via::vias;

    /// The quick scan agrees with the full parser wherever it answers, and
    /// declines what it does not handle.
    #[test]
    fn quick_scan_agrees_with_the_parser() {
        let plain: &[&[u8]] = &[
            b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds",
            b"SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bKx;received=1.2.3.4",
            b"SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKv6;i=abc",
            b"sip/2.0/udp host.example.com;BRANCH=z9hG4bKcase, SIP/2.0/UDP b;branch=z9hG4bKb",
            b"  SIP/2.0/UDP h:1;maddr=[::1];branch=z9hG4bK1;branch=z9hG4bK2",
            b"SIP/2.0/UDP h;ttl=16,SIP/2.0/UDP second",
            b"SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKa",
            b"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa;rport=5070;received=10.0.0.9",
            b"SIP/2.0/TCP [::1]:5061;RPORT;Received=::1, SIP/2.0/UDP b",
        ];
        for v in plain {
            let scan = scan_top_via(v).unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(v)));
            let full = vias(v).next().unwrap().unwrap();
            assert_eq!(
                scan.sent_by,
                full.sent_by_range(),
                "{}",
                String::from_utf8_lossy(v)
            );
            let scanned = scan.branch.map(|b| &v[b]);
            assert_eq!(
                scanned.filter(|b| !b.is_empty()),
                full.branch().filter(|b| !b.is_empty())
            );
            let second = vias(v).nth(1).map(|s| s.unwrap().span().start);
            assert_eq!(scan.next, second, "{}", String::from_utf8_lossy(v));
            assert_eq!(&v[scan.transport.clone()], full.transport());
            assert_eq!(scan.params_end, full.params_range().end);
            assert_eq!(scan.received, full.received().is_some());
            assert_eq!(
                scan.rport.as_ref().map(|r| r.end),
                full.param_range(b"rport").map(|r| r.end),
                "{}",
                String::from_utf8_lossy(v)
            );
        }
        let declined: &[&[u8]] = &[
            b"SIP / 2.0 / UDP h;branch=z9hG4bKa",
            b"SIP/2.0/UDP h ;branch=z9hG4bKa",
            b"SIP/2.0/UDP h; branch=z9hG4bKa",
            b"SIP/2.0/UDP h;x=\"a;branch=z9hG4bKfake\";branch=z9hG4bKreal",
            b"SIP/2.0/UDP h (comment);branch=z9hG4bKa",
            b"SIP/2.0/UDP",
            b"",
            b"SIP/2.0/UDP h:5060 ;branch=z9hG4bKa",
            b"SIP/2.0/UDP h;branch=",
        ];
        for v in declined {
            assert_eq!(scan_top_via(v), None, "{}", String::from_utf8_lossy(v));
        }
    }
}

#[cfg(test)]
mod scan_equivalence {
    use super::{scan_top_via, ViaScan};

    /// The byte-at-a-time scan the run-based one replaced, kept as the reference.
    fn reference(value: &[u8]) -> Option<ViaScan> {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
        let val = |b: u8| token(b) || b":[]".contains(&b);
        let mut i = value.iter().position(|&b| b != b' ' && b != b'\t')?;
        if !value.get(i..i + 8)?.eq_ignore_ascii_case(b"SIP/2.0/") {
            return None;
        }
        i += 8;
        let t = i;
        while value.get(i).is_some_and(|&b| token(b)) {
            i += 1;
        }
        if i == t || !matches!(value.get(i), Some(b' ' | b'\t')) {
            return None;
        }
        let transport = t..i;
        while matches!(value.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        let host = i;
        while value.get(i).is_some_and(|&b| !b";, \t\r\n\"(".contains(&b)) {
            i += 1;
        }
        if i == host {
            return None;
        }
        let mut scan = ViaScan {
            transport,
            sent_by: host..i,
            branch: None,
            rport: None,
            received: false,
            params_end: i,
            next: None,
        };
        loop {
            match value.get(i) {
                None => {
                    scan.params_end = i;
                    return Some(scan);
                }
                Some(b',') => {
                    scan.params_end = i;
                    let mut n = i + 1;
                    while matches!(value.get(n), Some(b' ' | b'\t' | b'\r' | b'\n')) {
                        n += 1;
                    }
                    scan.next = Some(n);
                    return Some(scan);
                }
                Some(b';') => {
                    i += 1;
                    let name = i;
                    while value.get(i).is_some_and(|&b| token(b)) {
                        i += 1;
                    }
                    if i == name {
                        return None;
                    }
                    let name = &value[name..i];
                    let mut v = i..i;
                    if value.get(i) == Some(&b'=') {
                        i += 1;
                        let start = i;
                        while value.get(i).is_some_and(|&b| val(b)) {
                            i += 1;
                        }
                        if i == start {
                            return None;
                        }
                        v = start..i;
                    }
                    if scan.branch.is_none() && name.eq_ignore_ascii_case(b"branch") {
                        scan.branch = Some(v);
                    } else if scan.rport.is_none() && name.eq_ignore_ascii_case(b"rport") {
                        scan.rport = Some(v);
                    } else if name.eq_ignore_ascii_case(b"received") {
                        scan.received = true;
                    }
                }
                Some(_) => return None,
            }
        }
    }

    /// Every prefix of a set of Via values, and every one-byte substitution
    /// by a byte that matters to the scan, scans alike with both.
    #[test]
    fn run_scan_matches_the_byte_scan() {
        let seeds: &[&[u8]] = &[
            b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport",
            b" \tsip/2.0/tcp [2001:db8::1]:5061;RPORT=5;Received=::1;branch=z9hG4bKa, SIP/2.0/UDP b",
            b"SIP/2.0/UDP h;branch=z9hG4bK1;branch=z9hG4bK2;rport;rport=7;x=\"q\";received",
            b"SIP/2.0/UDP h:1;ttl=16,\r\n SIP/2.0/UDP second;branch=z9hG4bKs",
        ];
        let bytes = b" \t\r\n;,=:\"([]a0-~\xff/SIPBRANCHRPOTEVsipbranchrpotev\x13\x0f\x0e\x12\x10";
        let mut n = 0;
        for seed in seeds {
            for end in 0..=seed.len() {
                let v = &seed[..end];
                assert_eq!(
                    scan_top_via(v),
                    reference(v),
                    "{}",
                    String::from_utf8_lossy(v)
                );
                n += 1;
            }
            for at in 0..seed.len() {
                for &b in bytes {
                    let mut v = seed.to_vec();
                    v[at] = b;
                    assert_eq!(
                        scan_top_via(&v),
                        reference(&v),
                        "{}",
                        String::from_utf8_lossy(&v)
                    );
                    n += 1;
                }
            }
        }
        assert!(n > 1000);
    }

    #[test]
    fn letters_compare_without_regard_to_case_only() {
        use super::{is_sip_2_0, letters_eq};
        fn check<const N: usize>(name: &[u8; N]) {
            assert!(letters_eq(name, name));
            assert!(letters_eq(&name.to_ascii_uppercase(), name));
            for at in 0..N {
                for b in 0..=255u8 {
                    let mut v = name.to_vec();
                    v[at] = b;
                    assert_eq!(letters_eq(&v, name), v.eq_ignore_ascii_case(name), "{v:?}");
                }
            }
            assert!(!letters_eq(&name[1..], name));
        }
        check(b"branch");
        check(b"rport");
        check(b"received");
        let sip = b"SIP/2.0/";
        for at in 0..8 {
            for b in 0..=255u8 {
                let mut v = sip.to_vec();
                v[at] = b;
                assert_eq!(is_sip_2_0(&v), v.eq_ignore_ascii_case(sip), "{v:?}");
            }
        }
        assert!(!is_sip_2_0(b"SIP/2.0"));
    }
}
