//! The edit list: changes to a received message recorded as byte ranges of its
//! buffer, applied in one pass by [`serialize`]. A message is never re-parsed
//! to be edited (DESIGN.md "Parsing and editing").
//!
//! Ordering rules, so that modules compose the way Kamailio's lumps do:
//! - edits are applied in buffer order; several inserts at one offset come out
//!   in the order they were recorded, header-section inserts before the body;
//! - a delete or replace of exactly the range of an earlier one supersedes it
//!   (setting the body or a header value twice keeps the second, even when
//!   the range is empty);
//! - a delete or replace that overlaps an earlier one is clipped to what is
//!   left, and dropped when nothing is left: removing a header twice removes
//!   it once, and replacing the value of a removed header does nothing;
//! - an insert inside a deleted range lands where the range ends;
//! - Content-Length is rewritten whenever the body changes size (every
//!   Content-Length field, unless an edit owns it), and added when absent if
//!   the body changed or [`Edits::force_content_length`] was asked (streams
//!   need it). A message whose Content-Length fields were all removed by
//!   edits gets none back.
//!
//! What is written is always a well-framed message: leading CRLFs are not
//! forwarded, bytes past Content-Length are dropped, and a header section that
//! arrived without its empty line (see [`Message::has_end_of_headers`]) gets
//! its line endings.

use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::message::Message;
use super::name::HeaderName;

#[derive(Clone, Debug)]
struct Op {
    start: u32,
    end: u32,
    data: Bytes,
    kind: Kind,
}

/// What an edit means, beyond its range: an empty range is a place to add
/// bytes for [`Kind::Insert`], but a (possibly empty) thing to replace for
/// the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Insert,
    Replace,
    /// Recorded by [`Edits::set_body`]: part of the body even where the body
    /// starts at the very end of a header section that has no empty line.
    Body,
}

/// Changes to apply to one message.
#[derive(Clone, Debug, Default)]
pub struct Edits {
    ops: SmallVec<[Op; 8]>,
    force_content_length: bool,
}

/// A point in an [`Edits`] list to go back to (see [`Edits::checkpoint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EditsMark {
    ops: usize,
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
        self.push(at, at, data.into(), Kind::Insert);
    }

    /// Replaces a range of the original buffer.
    pub fn replace(&mut self, range: Range<usize>, data: impl Into<Bytes>) {
        self.push(range.start, range.end, data.into(), Kind::Replace);
    }

    /// Deletes a range of the original buffer.
    pub fn delete(&mut self, range: Range<usize>) {
        self.push(range.start, range.end, Bytes::new(), Kind::Replace);
    }

    /// Inserts a whole header line (`Name: value\r\n`) before header field `index`,
    /// or before the end of the header section when `index` is past the last one.
    pub fn insert_header_before(&mut self, msg: &Message, index: usize, line: impl Into<Bytes>) {
        self.insert(header_start(msg, index), line);
    }

    /// Inserts a header line before the first header field (where Via and
    /// Record-Route are added).
    pub fn prepend_header(&mut self, msg: &Message, line: impl Into<Bytes>) {
        self.insert_header_before(msg, 0, line);
    }

    /// Inserts a header line before the first field named `id`, or at the top when absent.
    pub fn insert_before_first(&mut self, msg: &Message, id: HeaderName, line: impl Into<Bytes>) {
        self.insert(before_first(msg, id), line);
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
        let span = msg.body_span();
        self.push(
            span.start as usize,
            span.end as usize,
            body.into(),
            Kind::Body,
        );
    }

    /// The body the last [`Edits::set_body`] gave, if any (functions that
    /// edit the body again start from it).
    pub fn new_body(&self) -> Option<&Bytes> {
        self.ops
            .iter()
            .rev()
            .find(|o| o.kind == Kind::Body)
            .map(|o| &o.data)
    }

    /// Writes a Content-Length header even when the message had none (stream transports).
    pub fn force_content_length(&mut self) {
        self.force_content_length = true;
    }

    /// Where the list stands now, for [`Edits::rollback`]. Edits are only
    /// ever appended, so a forwarded branch adds its own (Via, Record-Route)
    /// on top of the script's and takes them back once serialized, instead of
    /// copying the whole list for each branch.
    pub fn checkpoint(&self) -> EditsMark {
        EditsMark {
            ops: self.ops.len(),
            force_content_length: self.force_content_length,
        }
    }

    /// Forgets every edit recorded since `mark` was taken (and a
    /// [`Edits::force_content_length`] asked since): the list is as it was.
    pub fn rollback(&mut self, mark: EditsMark) {
        self.ops.truncate(mark.ops);
        self.force_content_length = mark.force_content_length;
    }

    fn push(&mut self, start: usize, end: usize, data: Bytes, kind: Kind) {
        debug_assert!(start <= end, "edit range reversed");
        // Offsets past the message are clamped when serializing; u32 keeps Op small.
        let clamp = |n: usize| n.min(u32::MAX as usize) as u32;
        self.ops.push(Op {
            start: clamp(start),
            end: clamp(end.max(start)),
            data,
            kind,
        });
    }
}

/// Where a header line inserted before header field `index` goes: its
/// start, or the end of the header section when `index` is past the last.
pub fn header_start(msg: &Message, index: usize) -> usize {
    msg.headers()
        .get(index)
        .map_or(msg.headers_end(), |h| h.line.start as usize)
}

/// Where [`Edits::insert_before_first`] puts a line: before the first field
/// named `id`, or at the top when there is none.
pub fn before_first(msg: &Message, id: HeaderName) -> usize {
    let index = msg.headers().iter().position(|h| h.id == id).unwrap_or(0);
    header_start(msg, index)
}

/// What comes first among pieces written at the same offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// The line ending a header section without an empty line lacked, if
    /// what is written there does not already end a line (its last line may
    /// have been removed).
    LineEnd,
    /// Content-Length written by the serializer.
    ContentLength,
    /// A recorded edit in the header section.
    Edit,
    /// The empty line a header section lacked.
    EndOfHeaders,
    /// A recorded edit of the body.
    Body,
}

/// One resolved change: original bytes `at..end` give way to `data`. The
/// ranges of all pieces are disjoint.
struct Piece<'a> {
    at: usize,
    end: usize,
    data: &'a [u8],
    rank: Rank,
}

/// Writes `msg` with `edits` applied into `out` (cleared first). One pass over
/// the original buffer; the only work per edit is a copy of its new bytes.
pub fn serialize(msg: &Message, edits: &Edits, out: &mut Vec<u8>) {
    serialize_with(msg, edits, &[], out);
}

/// [`serialize`] with `extra` inserts `(offset, bytes)` after the recorded
/// edits, as if [`Edits::insert`] had recorded them last, in order, but
/// borrowed: a forwarded request's own Via is written without a `Bytes` (an
/// allocation) of its own.
pub fn serialize_with(msg: &Message, edits: &Edits, extra: &[(usize, &[u8])], out: &mut Vec<u8>) {
    out.clear();
    let buf: &[u8] = &msg.buf()[..msg.len()];
    let len = buf.len();
    // Leading CRLFs (RFC 3261 §7.5) were for the previous hop only.
    let first = (msg.start_line().start as usize).min(len);
    let body = msg.body_span().range();
    let terminated = msg.has_end_of_headers();

    // Outlive `pieces`, which borrow them.
    let mut itoa_buf = itoa::Buffer::new();
    let mut cl_line: SmallVec<[u8; 40]> = SmallVec::new();
    let mut pieces: SmallVec<[Piece; 16]> = SmallVec::new();
    resolve(edits, extra, first, len, &mut pieces);

    // Bytes of the body as written: the original ones not deleted, plus
    // whatever edits write inside it.
    let mut body_len = body.len();
    for p in &pieces {
        let (lo, hi) = (p.at.max(body.start), p.end.min(body.end));
        body_len = body_len.saturating_sub(hi.saturating_sub(lo));
        if p.at >= body.start && (terminated || p.rank == Rank::Body) {
            body_len += p.data.len();
        }
    }

    let digits = itoa_buf.format(body_len).as_bytes();
    let body_changed = body_len != body.len();
    if msg.content_length_span().is_some() {
        if body_changed {
            // Every field (duplicates with equal values are accepted by the
            // parser); one that an edit deletes or replaces belongs to the edit.
            for h in msg.headers_of(HeaderName::ContentLength) {
                let (s, e) = (h.value.start as usize, h.value.end as usize);
                if !pieces.iter().any(|p| p.at < e && s < p.end) {
                    pieces.push(Piece {
                        at: s,
                        end: e,
                        data: digits,
                        rank: Rank::ContentLength,
                    });
                }
            }
        }
    } else if body_changed || edits.force_content_length {
        cl_line.extend_from_slice(b"Content-Length: ");
        cl_line.extend_from_slice(digits);
        cl_line.extend_from_slice(b"\r\n");
        let at = msg.headers_end();
        pieces.push(Piece {
            at,
            end: at,
            data: &cl_line,
            rank: Rank::ContentLength,
        });
    }
    if !terminated {
        // A datagram that stopped after its last header field: finish that
        // line if it is unfinished, then end the header section.
        pieces.push(Piece {
            at: len,
            end: len,
            data: b"\r\n",
            rank: Rank::LineEnd,
        });
        pieces.push(Piece {
            at: len,
            end: len,
            data: b"\r\n",
            rank: Rank::EndOfHeaders,
        });
    }
    // Stable: edits keep their resolved order among themselves. Usually
    // nothing was added out of order (the body and the section end are as
    // received), and the sort is skipped.
    if !pieces.is_sorted_by_key(|p| (p.at, p.rank)) {
        pieces.sort_by_key(|p| (p.at, p.rank));
    }

    out.reserve(len + pieces.iter().map(|p| p.data.len()).sum::<usize>());
    let mut pos = first;
    for p in &pieces {
        if p.at > pos {
            out.extend_from_slice(&buf[pos..p.at]);
            pos = p.at;
        }
        if p.rank == Rank::LineEnd && out.last() == Some(&b'\n') {
            continue;
        }
        out.extend_from_slice(p.data);
        pos = pos.max(p.end);
    }
    out.extend_from_slice(&buf[pos..]);
}

/// Applies the ordering rules of this module: the recorded edits as disjoint
/// pieces of `first..len`, pushed in the order they are written.
/// `extra` inserts count as recorded after every edit of `edits`, in order.
fn resolve<'a>(
    edits: &'a Edits,
    extra: &[(usize, &'a [u8])],
    first: usize,
    len: usize,
    pieces: &mut SmallVec<[Piece<'a>; 16]>,
) {
    let ops = &edits.ops;
    // Edit `i`: its recorded op, or extra insert `i - ops.len()` (clamped
    // as `Edits::push` clamps).
    let op = |i: u32| -> (u32, u32, Kind, &'a [u8]) {
        match ops.get(i as usize) {
            Some(op) => (op.start, op.end, op.kind, &op.data),
            None => {
                let (at, data) = extra
                    .get(i as usize - ops.len())
                    .copied()
                    .unwrap_or_default();
                let at = at.min(u32::MAX as usize) as u32;
                (at, at, Kind::Insert, data)
            }
        }
    };
    let mut order: SmallVec<[u32; 16]> = (0..(ops.len() + extra.len()) as u32).collect();
    order.sort_by_key(|&i| {
        let (start, _, kind, _) = op(i);
        (start, kind == Kind::Body)
    });

    let mut pos = first;
    for (k, &i) in order.iter().enumerate() {
        let (op_start, op_end, kind, data) = op(i);
        let (start, end) = ((op_start as usize).min(len), (op_end as usize).min(len));
        if kind != Kind::Insert {
            let superseded = order[k + 1..]
                .iter()
                .map(|&j| (j, op(j)))
                .take_while(|(_, o)| o.0 == op_start)
                .any(|(j, o)| j > i && o.1 == op_end && o.2 != Kind::Insert);
            let covered = start < pos && end <= pos;
            if superseded || covered {
                continue;
            }
        }
        let at = start.max(pos);
        let end = end.max(at);
        pieces.push(Piece {
            at,
            end,
            data,
            rank: if kind == Kind::Body {
                Rank::Body
            } else {
                Rank::Edit
            },
        });
        pos = end;
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
    fn rollback_gives_the_list_as_it_was_at_the_checkpoint() {
        let m = msg(REQ);
        let mut e = Edits::new();
        e.remove_header(&m, 1);
        e.set_request_uri(&m, Bytes::from_static(b"sip:x@y"));
        let before = apply(&m, &e);
        // A branch's own edits, a superseding one among them.
        let branch_edits = |e: &mut Edits| {
            e.set_request_uri(&m, Bytes::from_static(b"sip:branch@z"));
            e.prepend_header(
                &m,
                Bytes::from_static(b"Via: SIP/2.0/UDP p;branch=z9hG4bKb\r\n"),
            );
            e.set_body(&m, Bytes::from_static(b"longer body"));
            e.force_content_length();
        };
        let mark = e.checkpoint();
        branch_edits(&mut e);
        let branch = apply(&m, &e);
        assert_ne!(branch, before);
        assert!(branch.starts_with(b"MESSAGE sip:branch@z SIP/2.0\r\nVia: SIP/2.0/UDP p;"));
        e.rollback(mark);
        assert_eq!(apply(&m, &e), before);
        // Taking the same branch edits again gives the same bytes.
        let mark = e.checkpoint();
        branch_edits(&mut e);
        assert_eq!(apply(&m, &e), branch);
        e.rollback(mark);
        assert_eq!(apply(&m, &e), before);
        // Without Content-Length, the forced one goes with the rollback too.
        let bare = msg(b"OPTIONS sip:a SIP/2.0\r\nCall-ID: c\r\n\r\n");
        let mut e = Edits::new();
        let mark = e.checkpoint();
        e.force_content_length();
        assert!(apply(&bare, &e).ends_with(b"Content-Length: 0\r\n\r\n"));
        e.rollback(mark);
        assert_eq!(apply(&bare, &e), bare.buf().as_ref());
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

    fn reparse(m: &Message, e: &Edits) -> Message {
        Message::parse(Bytes::from(apply(m, e))).expect("serialized message parses")
    }

    #[test]
    fn edits_inside_a_removed_header_do_nothing() {
        let m = msg(REQ);
        let route = 1;
        let mut e = Edits::new();
        e.remove_header(&m, route);
        e.replace_header_value(&m, route, Bytes::from_static(b"<sip:other;lr>"));
        let again = reparse(&m, &e);
        assert_eq!(again.headers_of(HeaderName::Route).count(), 0);
        assert_eq!(again.call_id().unwrap(), b"c1");
        assert_eq!(again.headers().len(), m.headers().len() - 1);
    }

    #[test]
    fn setting_the_body_twice_keeps_the_second() {
        let m = msg(REQ);
        let mut e = Edits::new();
        e.set_body(&m, Bytes::from_static(b"first body"));
        e.set_body(&m, Bytes::from_static(b"2nd"));
        let again = reparse(&m, &e);
        assert_eq!(again.body(), b"2nd");
        assert_eq!(again.header_value(HeaderName::ContentLength).unwrap(), b"3");
        let mut e = Edits::new();
        e.set_request_uri(&m, Bytes::from_static(b"sip:a@x"));
        e.set_request_uri(&m, Bytes::from_static(b"sip:b@y"));
        assert_eq!(reparse(&m, &e).request_uri().unwrap(), b"sip:b@y");
    }

    #[test]
    fn every_content_length_field_follows_the_body() {
        let m = msg(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 5\r\nl: 5\r\n\r\nhello");
        let mut e = Edits::new();
        e.set_body(&m, Bytes::from_static(b"hi"));
        let again = reparse(&m, &e);
        assert_eq!(again.body(), b"hi");
        let values: Vec<&[u8]> = again
            .headers_of(HeaderName::ContentLength)
            .map(|h| again.value(h))
            .collect();
        assert_eq!(values, [b"2", b"2"]);
    }

    #[test]
    fn a_content_length_replaced_by_an_edit_is_left_to_it() {
        let m = msg(REQ);
        let idx = m
            .headers()
            .iter()
            .position(|h| h.id == HeaderName::ContentLength)
            .unwrap();
        let mut e = Edits::new();
        e.replace_header_value(&m, idx, Bytes::from_static(b"2"));
        e.set_body(&m, Bytes::from_static(b"hi"));
        let out = apply(&m, &e);
        let expect = b"Content-Length: 2\r\n\r\nhi";
        assert!(out.ends_with(expect), "{:?}", String::from_utf8_lossy(&out));
        assert_eq!(reparse(&m, &e).body(), b"hi");
    }

    #[test]
    fn header_section_without_empty_line_is_completed() {
        for text in [
            &b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a"[..],
            b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\n",
            b"OPTIONS sip:x SIP/2.0\nCall-ID: a\n",
        ] {
            let m = Message::parse(Bytes::copy_from_slice(text)).unwrap();
            assert!(!m.has_end_of_headers());
            let out = apply(&m, &Edits::new());
            assert!(out.ends_with(b"Call-ID: a\r\n\r\n") || out.ends_with(b"Call-ID: a\n\r\n"));

            let mut e = Edits::new();
            e.append_header(&m, Bytes::from_static(b"X-Added: 1\r\n"));
            e.set_body(&m, Bytes::from_static(b"body"));
            e.prepend_header(
                &m,
                Bytes::from_static(b"Via: SIP/2.0/UDP p;branch=z9hG4bKx\r\n"),
            );
            let again = reparse(&m, &e);
            assert!(again.has_end_of_headers());
            assert_eq!(again.call_id().unwrap(), b"a");
            assert_eq!(again.headers_named(b"X-Added").count(), 1);
            assert_eq!(again.headers_of(HeaderName::Via).count(), 1);
            assert_eq!(again.body(), b"body");
            assert_eq!(again.header_value(HeaderName::ContentLength).unwrap(), b"4");
        }
    }

    #[test]
    fn leading_crlfs_are_not_forwarded() {
        let m = msg(b"\r\n\r\nOPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\n\r\n");
        assert_eq!(
            apply(&m, &Edits::new()),
            b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\n\r\n".to_vec()
        );
        let mut e = Edits::new();
        e.insert(0, Bytes::from_static(b"X"));
        e.set_request_uri(&m, Bytes::from_static(b"sip:y"));
        assert_eq!(
            apply(&m, &e),
            b"XOPTIONS sip:y SIP/2.0\r\nCall-ID: a\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn insert_inside_a_deleted_range_lands_at_its_end() {
        let m = msg(REQ);
        let mut e = Edits::new();
        e.remove_header(&m, 1);
        e.insert_header_before(&m, 1, Bytes::from_static(b"Route: <sip:q.example;lr>\r\n"));
        let again = reparse(&m, &e);
        let routes: Vec<&[u8]> = again
            .headers_of(HeaderName::Route)
            .map(|h| again.value(h))
            .collect();
        assert_eq!(routes, [b"<sip:q.example;lr>"]);
        assert_eq!(again.headers()[1].id, HeaderName::Route);
    }

    #[test]
    fn many_edits_are_all_applied() {
        let m = msg(REQ);
        let mut e = Edits::new();
        for _ in 0..70_000 {
            e.append_header(&m, Bytes::from_static(b"X: 1\r\n"));
        }
        let out = apply(&m, &e);
        assert_eq!(out.len(), REQ.len() + 70_000 * 6);
    }

    #[test]
    fn edits_of_empty_ranges_supersede_and_vanish_like_others() {
        let m = msg(b"MESSAGE sip:x SIP/2.0\r\nSubject:\r\nCall-ID: c\r\n\r\n");
        assert!(m.body().is_empty());
        let mut e = Edits::new();
        e.set_body(&m, Bytes::from_static(b"first"));
        e.set_body(&m, Bytes::from_static(b"2nd"));
        e.replace_header_value(&m, 0, Bytes::from_static(b"one"));
        e.replace_header_value(&m, 0, Bytes::from_static(b"two"));
        let again = reparse(&m, &e);
        assert_eq!(again.body(), b"2nd");
        assert_eq!(again.header_value(HeaderName::Subject).unwrap(), b"two");

        // Replacing the (empty) value of a removed header does nothing.
        let mut e = Edits::new();
        e.remove_header(&m, 0);
        e.replace_header_value(&m, 0, Bytes::from_static(b"lost"));
        let again = reparse(&m, &e);
        assert_eq!(again.headers().len(), 1);
        assert_eq!(again.call_id().unwrap(), b"c");
    }

    #[test]
    fn removing_the_unfinished_last_line_of_a_header_section() {
        for text in [
            &b"SIP/2.0 200 OK\r\nCSeq: 1 BYE\r\n7:"[..],
            b"SIP/2.0 200 OK\r\nCSeq: 1 BYE\r\n7:\r\n",
        ] {
            let m = Message::parse(Bytes::copy_from_slice(text)).unwrap();
            let mut e = Edits::new();
            e.remove_header(&m, 1);
            e.append_header(&m, Bytes::from_static(b"X-Added: 1\r\n"));
            e.set_body(&m, Bytes::from_static(b"body"));
            assert_eq!(
                apply(&m, &e),
                b"SIP/2.0 200 OK\r\nCSeq: 1 BYE\r\nContent-Length: 4\r\nX-Added: 1\r\n\r\nbody"
                    .to_vec()
            );
        }
    }
}
