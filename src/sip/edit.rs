//! The edit list: changes to a received message recorded as byte ranges of its
//! buffer, applied in one pass by [`serialize`]. A message is never re-parsed
//! to be edited (DESIGN.md "Parsing and editing").
//!
//! Ordering rules, so that modules compose the way Kamailio's lumps do:
//! - edits are applied in buffer order; several inserts at one offset come out
//!   in the order they were recorded;
//! - a delete or replace that overlaps an earlier one is clipped to what is
//!   left, so removing a header twice removes it once;
//! - Content-Length is rewritten whenever the body changes size, and added when
//!   absent if [`Edits::force_content_length`] was asked (streams need it).

use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::message::{Message, Span};
use super::name::HeaderName;

#[derive(Clone, Debug)]
struct Op {
    start: u32,
    end: u32,
    data: Bytes,
}

/// Changes to apply to one message.
#[derive(Clone, Debug, Default)]
pub struct Edits {
    ops: SmallVec<[Op; 8]>,
    force_content_length: bool,
}

impl Edits {
    pub fn new() -> Edits {
        Edits::default()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Forgets every edit (the list is reused for the next message).
    pub fn clear(&mut self) {
        self.ops.clear();
        self.force_content_length = false;
    }

    /// Inserts bytes at an offset of the original buffer.
    pub fn insert(&mut self, at: usize, data: impl Into<Bytes>) {
        self.push(at, at, data.into());
    }

    /// Replaces a range of the original buffer.
    pub fn replace(&mut self, range: Range<usize>, data: impl Into<Bytes>) {
        self.push(range.start, range.end, data.into());
    }

    /// Deletes a range of the original buffer.
    pub fn delete(&mut self, range: Range<usize>) {
        self.push(range.start, range.end, Bytes::new());
    }

    /// Inserts a whole header line (`Name: value\r\n`) before header field `index`,
    /// or before the end of the header section when `index` is past the last one.
    pub fn insert_header_before(&mut self, msg: &Message, index: usize, line: impl Into<Bytes>) {
        let at = msg
            .headers()
            .get(index)
            .map_or(msg.headers_end(), |h| h.line.start as usize);
        self.insert(at, line);
    }

    /// Inserts a header line before the first header field (where Via and
    /// Record-Route are added).
    pub fn prepend_header(&mut self, msg: &Message, line: impl Into<Bytes>) {
        self.insert_header_before(msg, 0, line);
    }

    /// Inserts a header line before the first field named `id`, or at the top when absent.
    pub fn insert_before_first(&mut self, msg: &Message, id: HeaderName, line: impl Into<Bytes>) {
        let index = msg.headers().iter().position(|h| h.id == id).unwrap_or(0);
        self.insert_header_before(msg, index, line);
    }

    /// Appends a header line at the end of the header section.
    pub fn append_header(&mut self, msg: &Message, line: impl Into<Bytes>) {
        self.insert(msg.headers_end(), line);
    }

    /// Removes header field `index` with its line ending (and folded lines).
    pub fn remove_header(&mut self, msg: &Message, index: usize) {
        if let Some(h) = msg.headers().get(index) {
            self.delete(h.line.range());
        }
    }

    /// Replaces the value of header field `index`, keeping its name.
    pub fn replace_header_value(&mut self, msg: &Message, index: usize, value: impl Into<Bytes>) {
        if let Some(h) = msg.headers().get(index) {
            self.replace(h.value.range(), value);
        }
    }

    /// Rewrites the Request-URI (no effect on a response).
    pub fn set_request_uri(&mut self, msg: &Message, uri: impl Into<Bytes>) {
        if let Some(span) = msg.uri_span() {
            self.replace(span.range(), uri);
        }
    }

    /// Replaces the whole body; Content-Length follows.
    pub fn set_body(&mut self, msg: &Message, body: impl Into<Bytes>) {
        self.replace(msg.body_span().range(), body);
    }

    /// Writes a Content-Length header even when the message had none (stream transports).
    pub fn force_content_length(&mut self) {
        self.force_content_length = true;
    }

    fn push(&mut self, start: usize, end: usize, data: Bytes) {
        debug_assert!(start <= end, "edit range reversed");
        self.ops.push(Op {
            start: start as u32,
            end: end.max(start) as u32,
            data,
        });
    }
}

/// Writes `msg` with `edits` applied into `out` (cleared first). One pass over
/// the original buffer; the only work per edit is a copy of its new bytes.
pub fn serialize(msg: &Message, edits: &Edits, out: &mut Vec<u8>) {
    out.clear();
    let buf: &[u8] = &msg.buf()[..msg.len()];
    // Apply in buffer order, recording order kept for equal offsets (stable sort);
    // the common case (a Via and a Record-Route at the top) is already ordered.
    let mut order: SmallVec<[u16; 16]> = (0..edits.ops.len() as u16).collect();
    order.sort_by_key(|&i| edits.ops[i as usize].start);

    let body = msg.body_span();
    let body_delta: isize = edits
        .ops
        .iter()
        .filter(|op| {
            op.start >= body.start
                && op.start <= body.end
                && body.start as usize > msg.headers_end()
        })
        .map(|op| op.data.len() as isize - (op.end.min(body.end) - op.start) as isize)
        .sum();
    let new_body_len = (body.len() as isize + body_delta).max(0) as usize;
    let cl = content_length_fix(msg, edits, body_delta != 0);

    out.reserve(buf.len() + edits.ops.iter().map(|op| op.data.len()).sum::<usize>() + 32);
    let mut pos = 0usize;
    let mut cl_done = cl.is_none();
    for &i in &order {
        let op = &edits.ops[i as usize];
        let (start, end) = (op.start as usize, op.end as usize);
        if !cl_done {
            cl_done = emit_content_length(buf, &mut pos, start, cl, new_body_len, out);
        }
        if start > pos {
            out.extend_from_slice(&buf[pos..start.min(buf.len())]);
            pos = start.min(buf.len());
        }
        out.extend_from_slice(&op.data);
        pos = pos.max(end.min(buf.len()));
    }
    if !cl_done {
        emit_content_length(buf, &mut pos, buf.len(), cl, new_body_len, out);
    }
    out.extend_from_slice(&buf[pos..]);
}

/// Where the Content-Length value must change: replace the existing value, or
/// add a header line at the end of the header section.
#[derive(Clone, Copy)]
enum ClFix {
    Replace(Span),
    Add(usize),
}

fn content_length_fix(msg: &Message, edits: &Edits, body_changed: bool) -> Option<ClFix> {
    match msg.content_length_span() {
        Some(span) if body_changed => Some(ClFix::Replace(span)),
        Some(_) => None,
        None if body_changed || edits.force_content_length => Some(ClFix::Add(msg.headers_end())),
        None => None,
    }
}

/// Emits the Content-Length fix if it lies before `limit`; returns whether it was emitted.
fn emit_content_length(
    buf: &[u8],
    pos: &mut usize,
    limit: usize,
    fix: Option<ClFix>,
    body_len: usize,
    out: &mut Vec<u8>,
) -> bool {
    let mut digits = itoa::Buffer::new();
    let n = digits.format(body_len).as_bytes();
    match fix {
        None => true,
        Some(ClFix::Replace(span))
            if span.start as usize <= limit && span.start as usize >= *pos =>
        {
            out.extend_from_slice(&buf[*pos..span.start as usize]);
            out.extend_from_slice(n);
            *pos = span.end as usize;
            true
        }
        Some(ClFix::Add(at)) if at <= limit && at >= *pos => {
            out.extend_from_slice(&buf[*pos..at]);
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(n);
            out.extend_from_slice(b"\r\n");
            *pos = at;
            true
        }
        // The spot was deleted or replaced by an earlier edit: the edit owns it.
        Some(ClFix::Replace(span)) => (span.start as usize) < *pos,
        Some(ClFix::Add(at)) => at < *pos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"MESSAGE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
Route: <sip:p.example;lr>\r\n\
Call-ID: c1\r\n\
Content-Length: 5\r\n\
\r\n\
hello";

    fn msg(b: &'static [u8]) -> Message {
        Message::parse(Bytes::from_static(b)).unwrap()
    }

    fn apply(m: &Message, e: &Edits) -> Vec<u8> {
        let mut out = Vec::new();
        serialize(m, e, &mut out);
        out
    }

    #[test]
    fn no_edits_reproduces_the_message() {
        let m = msg(REQ);
        assert_eq!(apply(&m, &Edits::new()), REQ);
    }

    #[test]
    fn header_edits_and_uri_rewrite() {
        let m = msg(REQ);
        let mut e = Edits::new();
        e.prepend_header(
            &m,
            Bytes::from_static(b"Via: SIP/2.0/UDP proxy;branch=z9hG4bKp\r\n"),
        );
        e.prepend_header(&m, Bytes::from_static(b"Record-Route: <sip:proxy;lr>\r\n"));
        e.remove_header(&m, 1);
        e.remove_header(&m, 1); // twice: removed once
        e.set_request_uri(&m, Bytes::from_static(b"sip:bob@10.0.0.1:5070"));
        e.append_header(&m, Bytes::from_static(b"X-Added: 1\r\n"));
        let out = apply(&m, &e);
        assert_eq!(
            out,
            b"MESSAGE sip:bob@10.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP proxy;branch=z9hG4bKp\r\n\
Record-Route: <sip:proxy;lr>\r\n\
Via: SIP/2.0/UDP a.example;branch=z9hG4bK1\r\n\
Call-ID: c1\r\n\
Content-Length: 5\r\n\
X-Added: 1\r\n\
\r\n\
hello"
                .to_vec()
        );
        let again = Message::parse(Bytes::from(out)).unwrap();
        assert_eq!(again.body(), b"hello");
    }

    #[test]
    fn body_change_fixes_content_length() {
        let m = msg(REQ);
        let mut e = Edits::new();
        e.set_body(&m, Bytes::from_static(b"hello, world"));
        let out = apply(&m, &e);
        let again = Message::parse(Bytes::from(out)).unwrap();
        assert_eq!(again.body(), b"hello, world");
        assert_eq!(
            again.header_value(HeaderName::ContentLength).unwrap(),
            b"12"
        );
    }

    #[test]
    fn body_insert_inside_body_fixes_content_length() {
        let m = msg(REQ);
        let start = m.body_span().start as usize;
        let mut e = Edits::new();
        e.insert(start + 5, Bytes::from_static(b"!!"));
        e.delete(start..start + 1);
        let again = Message::parse(Bytes::from(apply(&m, &e))).unwrap();
        assert_eq!(again.body(), b"ello!!");
    }

    #[test]
    fn content_length_added_when_absent_and_asked() {
        let m = msg(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\n\r\n");
        let mut e = Edits::new();
        assert_eq!(apply(&m, &e), m.buf().as_ref());
        e.force_content_length();
        assert_eq!(
            apply(&m, &e),
            b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\nContent-Length: 0\r\n\r\n".to_vec()
        );
        let m = msg(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\n\r\nab");
        let mut e = Edits::new();
        e.set_body(&m, Bytes::from_static(b"xyz"));
        assert_eq!(
            apply(&m, &e),
            b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\nContent-Length: 3\r\n\r\nxyz".to_vec()
        );
    }

    #[test]
    fn removed_content_length_header_is_not_resurrected() {
        let m = msg(REQ);
        let idx = m
            .headers()
            .iter()
            .position(|h| h.id == HeaderName::ContentLength)
            .unwrap();
        let mut e = Edits::new();
        e.remove_header(&m, idx);
        e.set_body(&m, Bytes::from_static(b"x"));
        let out = apply(&m, &e);
        assert!(!out.windows(14).any(|w| w == b"Content-Length"));
    }

    #[test]
    fn bytes_after_content_length_are_dropped() {
        let m = msg(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 2\r\n\r\nhello");
        assert_eq!(
            apply(&m, &Edits::new()),
            b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 2\r\n\r\nhe".to_vec()
        );
    }
}
