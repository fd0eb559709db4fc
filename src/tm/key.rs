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

use super::build::TopVia;
use crate::sip::headers::CSeq;
use crate::sip::nameaddr::NameAddr;
use crate::sip::via::{is_sip_2_0, letters_eq, Via, ViaAt};
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

    /// [`Key::of`], and the top Via as [`ViaScan`] when it is written the
    /// common way (the new transaction's response target is read from it).
    /// The message parses its top Via once; this reads that parse.
    pub fn of_scanned(msg: &'a Message) -> Option<(Key<'a>, KeySpans, Option<ViaScan>)> {
        let method = match msg.method_bytes() {
            b"ACK" => &b"INVITE"[..],
            m => m,
        };
        let (at, via, next) = msg.top_via_at()?;
        let via = via.ok()?;
        let value = msg.buf().get(at..)?;
        let scan = next.map(|next| ViaScan::of(via, value, at, next));
        let branch = via.branch_range().filter(|b| {
            value
                .get(b.clone())
                .is_some_and(|b| b.starts_with(crate::sip::via::MAGIC_COOKIE))
        });
        if let Some(b) = branch {
            let sent_by = via.sent_by_range();
            let spans = KeySpans {
                branch: Span::new(at + b.start, at + b.end),
                sent_by: Span::new(at + sent_by.start, at + sent_by.end),
            };
            let branch = msg.buf().get(spans.branch.range())?;
            let sent_by = msg.buf().get(spans.sent_by.range())?;
            return Some((
                Key {
                    fields: Fields::Rfc3261 { branch, sent_by },
                    method,
                },
                spans,
                scan,
            ));
        }
        let (via, _) = top_via(msg)?;
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

/// What the transaction layer needs of a top via-parm written the common way
/// (see [`Via::first`]), read from the message's parse of it (offsets into
/// the header value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ViaScan {
    pub sent_by: std::ops::Range<usize>,
    /// The `branch` value (first one), if any.
    pub branch: Option<std::ops::Range<usize>>,
    /// Where the next via-parm starts, when a comma follows this one.
    pub next: Option<usize>,
    /// Where responses go and how a local reply fixes the Via up.
    pub top: TopVia,
}

impl ViaScan {
    /// From the record of a message's top via-parm (ranges relative to
    /// `value`, its header value, which starts at `at`), read the common
    /// way: `next` is where the next via-parm starts.
    fn of(via: &ViaAt, value: &[u8], at: usize, next: Option<usize>) -> ViaScan {
        ViaScan {
            sent_by: via.sent_by_range(),
            branch: via.branch_range(),
            next,
            top: TopVia::of_at(via, value, at),
        }
    }
}

/// The top Via of `msg` as [`ViaScan`], when it is written the common way
/// (`None`: read it with [`top_via`]). Parsed once per message.
#[cfg(test)]
pub(crate) fn scan_top_via(msg: &Message) -> Option<ViaScan> {
    let (at, via, next) = msg.top_via_at()?;
    let value = msg.buf().get(at..)?;
    Some(ViaScan::of(via.ok()?, value, at, next?))
}

/// The `branch` of the first via-parm of a Via header value written the
/// common way (`SIP/2.0/transport SP sent-by;name[=value]...`, no white
/// space or quotes in the parameters), and where the next via-parm starts
/// (offsets into the value). One quick scan, which is all a reply needs: its
/// top Via is ours, read once, by the reply match, and nothing else on the
/// way up parses it. Anything else gives `None`: the caller then uses the
/// full parser ([`top_branch`]).
pub(crate) fn quick_reply_via(value: &[u8]) -> Option<QuickVia> {
    let lead = value.iter().position(|&b| b != b' ' && b != b'\t')?;
    let proto: &[u8; 8] = value.get(lead..lead + 8)?.try_into().ok()?;
    if !is_sip_2_0(proto) {
        return None;
    }
    let t = lead + 8;
    let mut i = run(value, t, TOKEN);
    if i == t || !matches!(value.get(i), Some(b' ' | b'\t')) {
        return None;
    }
    while matches!(value.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    let host = i;
    i = run(value, host, SENT_BY);
    if i == host {
        return None;
    }
    let mut branch = None;
    loop {
        match value.get(i) {
            None => return Some(QuickVia { branch, next: None }),
            Some(b',') => {
                let mut n = i + 1;
                while matches!(value.get(n), Some(b' ' | b'\t' | b'\r' | b'\n')) {
                    n += 1;
                }
                return Some(QuickVia {
                    branch,
                    next: Some(n),
                });
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
                if branch.is_none() && letters_eq(name, b"branch") {
                    branch = Some(val);
                }
            }
            Some(_) => return None,
        }
    }
}

/// What [`quick_reply_via`] finds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QuickVia {
    /// The `branch` value (first one), if any.
    pub branch: Option<std::ops::Range<usize>>,
    /// Where the next via-parm starts, when a comma follows this one.
    pub next: Option<usize>,
}

/// Byte classes of [`quick_reply_via`]: bit 0 RFC 3261 `token` (§25.1); bit 1
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

/// The branch of a message's top Via.
pub(crate) fn top_branch(msg: &Message) -> Option<&[u8]> {
    top_via(msg)?.0.branch()
}

/// The first via-parm of the first Via header, with the offset of that
/// header's value (the message's parse of it, made once).
pub(crate) fn top_via(msg: &Message) -> Option<(Via<'_>, usize)> {
    let (at, via) = msg.top_via()?;
    Some((via.ok()?, at))
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
    use super::{scan_top_via, Fields, Key};
    use crate::sip::via::vias;
    use crate::sip::{HeaderName, Message};
    use crate::tm::build::TopVia;

    /// An OPTIONS whose Via header value is `via`, if it frames as one.
    pub(super) fn with_via(via: &[u8]) -> Option<Message> {
        let mut text = b"OPTIONS sip:b@x SIP/2.0\r\nVia: ".to_vec();
        text.extend_from_slice(via);
        text.extend_from_slice(
            b"\r\nFrom: <sip:a@a>;tag=f\r\nTo: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        );
        let msg = Message::parse(bytes::Bytes::from(text)).ok()?;
        (msg.header_value(HeaderName::Via) == Some(via)).then_some(msg)
    }

    /// The scan of a common top Via agrees with the full parser, and the
    /// others are declined (the key is still read from the full parse).
    #[test]
    fn quick_scan_agrees_with_the_parser() {
        let plain: &[&[u8]] = &[
            b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds",
            b"SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bKx;received=1.2.3.4",
            b"SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKv6;i=abc",
            b"sip/2.0/udp host.example.com;BRANCH=z9hG4bKcase, SIP/2.0/UDP b;branch=z9hG4bKb",
            b"SIP/2.0/UDP h:1;maddr=[::1];branch=z9hG4bK1;branch=z9hG4bK2",
            b"SIP/2.0/UDP h;ttl=16,SIP/2.0/UDP second",
            b"SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKa",
            b"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa;rport=5070;received=10.0.0.9",
            b"SIP/2.0/TCP [::1]:5061;RPORT;Received=::1, SIP/2.0/UDP b",
        ];
        for v in plain {
            let text = String::from_utf8_lossy(v);
            let msg = with_via(v).unwrap();
            let scan = scan_top_via(&msg).unwrap_or_else(|| panic!("{text}"));
            let full = vias(v).next().unwrap().unwrap();
            assert_eq!(scan.sent_by, full.sent_by_range(), "{text}");
            assert_eq!(scan.branch.map(|b| &v[b]), full.branch(), "{text}");
            let second = vias(v).nth(1).map(|s| s.unwrap().span().start);
            assert_eq!(scan.next, second, "{text}");
            let at = msg.header(HeaderName::Via).unwrap().value.start as usize;
            assert_eq!(scan.top, TopVia::of(&full, at), "{text}");
            let quick = super::quick_reply_via(v).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(quick.branch.map(|b| &v[b]), full.branch(), "{text}");
            assert_eq!(quick.next, second, "{text}");
            let (key, spans) = Key::of(&msg).unwrap();
            let Some(branch) = full.branch() else {
                assert!(matches!(key.fields, Fields::Rfc2543 { .. }), "{text}");
                continue;
            };
            assert_eq!(
                key.fields,
                Fields::Rfc3261 {
                    branch,
                    sent_by: &v[full.sent_by_range()]
                }
            );
            assert_eq!(msg.slice(spans.branch), branch);
            assert_eq!(msg.slice(spans.sent_by), &v[full.sent_by_range()]);
        }
        let declined: &[&[u8]] = &[
            b"SIP / 2.0 / UDP h;branch=z9hG4bKa",
            b"SIP/2.0/UDP h ;branch=z9hG4bKa",
            b"SIP/2.0/UDP h; branch=z9hG4bKa",
            b"SIP/2.0/UDP h;x=\"a;branch=z9hG4bKfake\";branch=z9hG4bKreal",
            b"SIP/2.0/UDP h (comment);branch=z9hG4bKa",
            b"SIP/2.0/UDP",
            b"SIP/2.0/UDP h:5060 ;branch=z9hG4bKa",
            b"SIP/2.0/UDP h;branch=",
            b"SIP/2.0/UDP h_1;branch=z9hG4bKa",
        ];
        for v in declined {
            let text = String::from_utf8_lossy(v);
            let msg = with_via(v).unwrap();
            assert_eq!(scan_top_via(&msg), None, "{text}");
            // The reply scan does not check the host (as before: a reply's
            // top Via is ours); it declines the other shapes.
            if !text.contains("h_1") {
                assert_eq!(super::quick_reply_via(v), None, "{text}");
            }
            let full = vias(v).next().unwrap();
            let key = Key::of(&msg).map(|(k, _)| k.fields);
            match full {
                Ok(via) => assert_eq!(
                    key,
                    Some(Fields::Rfc3261 {
                        branch: via.branch().unwrap(),
                        sent_by: &v[via.sent_by_range()]
                    }),
                    "{text}"
                ),
                Err(_) => assert_eq!(key, None, "{text}"),
            }
        }
    }
}

#[cfg(test)]
mod scan_equivalence {
    use super::{quick_reply_via, scan_top_via};
    use crate::sip::scan::split_values;
    use crate::sip::via::vias;

    /// The byte-at-a-time quick scan tm used before the message kept its top
    /// Via parsed: where the new scan answers, this one answers alike.
    struct Reference {
        transport: std::ops::Range<usize>,
        sent_by: std::ops::Range<usize>,
        branch: Option<std::ops::Range<usize>>,
        rport: Option<std::ops::Range<usize>>,
        received: bool,
        params_end: usize,
        next: Option<usize>,
    }

    fn reference(value: &[u8]) -> Option<Reference> {
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
        let mut scan = Reference {
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
    /// by a byte that matters to the scan: where the scan answers, the old
    /// byte scan and the full parser answer alike.
    #[test]
    fn scan_matches_the_byte_scan_and_the_parser() {
        let seeds: &[&[u8]] = &[
            b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport",
            b" \tsip/2.0/tcp [2001:db8::1]:5061;RPORT=5;Received=::1;branch=z9hG4bKa, SIP/2.0/UDP b",
            b"SIP/2.0/UDP h;branch=z9hG4bK1;branch=z9hG4bK2;rport;rport=7;x=\"q\";received",
            b"SIP/2.0/UDP h:1;ttl=16,\r\n SIP/2.0/UDP second;branch=z9hG4bKs",
        ];
        let bytes = b" \t\r\n;,=:\"([]a0-~\xff/SIPBRANCHRPOTEVsipbranchrpotev\x13\x0f\x0e\x12\x10";
        let (mut n, mut answered) = (0, 0);
        let mut check = |v: &[u8]| {
            let text = String::from_utf8_lossy(v);
            let Some(msg) = super::scan_tests::with_via(v) else {
                return;
            };
            n += 1;
            let Some(scan) = scan_top_via(&msg) else {
                return;
            };
            answered += 1;
            let old = reference(v).unwrap_or_else(|| panic!("{text}"));
            let full = vias(v).next().unwrap().unwrap();
            assert_eq!(scan.sent_by, old.sent_by, "{text}");
            assert_eq!(scan.branch, old.branch, "{text}");
            assert_eq!(&v[old.transport], full.transport(), "{text}");
            assert_eq!(old.params_end, full.params_range().end, "{text}");
            assert_eq!(old.received, full.received().is_some(), "{text}");
            assert_eq!(old.rport.map(|r| r.end), full.rport_range().map(|r| r.end));
            let second = split_values(v).with_comments().nth(1).map(|(off, _)| off);
            assert_eq!(scan.next, second, "{text}");
        };
        crate::sip::each_edit(seeds, bytes, false, &mut check);
        assert!(n > 1000 && answered > 500, "{n} {answered}");
    }

    /// The reply scan is the byte scan's branch and next, on every prefix and
    /// one-byte substitution of the same Vias.
    #[test]
    fn reply_scan_matches_the_byte_scan() {
        let seeds: &[&[u8]] = &[
            b"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport",
            b" \tsip/2.0/tcp [2001:db8::1]:5061;RPORT=5;Received=::1;branch=z9hG4bKa, SIP/2.0/UDP b",
            b"SIP/2.0/UDP h;branch=z9hG4bK1;branch=z9hG4bK2;rport;rport=7;x=\"q\";received",
            b"SIP/2.0/UDP h:1;ttl=16,\r\n SIP/2.0/UDP second;branch=z9hG4bKs",
            b"SIP/2.0/UDP 127.0.0.1:5060;BRANCH=z9hG4bKa0123456789abcdef, SIP/2.0/UDP b",
        ];
        let bytes = b" \t\r\n;,=:\"([]a0-~\xff/SIPBRANCHRPOTEVsipbranchrpotev\x13\x0f\x0e\x12\x10";
        let check = |v: &[u8]| {
            let old = reference(v).map(|r| (r.branch, r.next));
            let new = quick_reply_via(v).map(|q| (q.branch, q.next));
            assert_eq!(new, old, "{}", String::from_utf8_lossy(v));
        };
        let n = crate::sip::each_edit(seeds, bytes, false, check);
        assert!(n > 1000);
    }
}
