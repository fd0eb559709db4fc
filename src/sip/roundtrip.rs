//! Property tests of the parser and serializer together:
//!
//! - a generated well-formed message (request or response; known, compact,
//!   unknown header names in any case; white space around the colon; folded
//!   values; CRLF or LF; with or without Content-Length; binary body; junk
//!   after Content-Length) parses to exactly what was generated, serializes
//!   with no edits to the same bytes (up to Content-Length), and parses again
//!   to the same header index;
//! - random edit lists (insert, remove, replace value, rewrite the URI, set
//!   the body) give a message that parses, whose headers are what a model of
//!   the ordering rules in `edit.rs` predicts, whose body is the expected one
//!   and whose Content-Length agrees with it;
//! - arbitrary bytes, and valid messages with bytes flipped, inserted or
//!   removed, never make `parse` or `serialize` panic, and whatever parses
//!   survives a serialize/parse round trip.
//!
//! Case counts are kept moderate: the suite runs on a shared 2-core machine.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use super::edit::{before_first, header_start, serialize, serialize_with, Edits};
use super::message::Message;
use super::name::HeaderName;

/// One generated header field.
#[derive(Clone, Debug)]
struct Field {
    name: String,
    id: HeaderName,
    before_colon: String,
    after_colon: String,
    /// A fold before the first piece (the value starts on a continuation line).
    lead_fold: Option<String>,
    /// The value: pieces joined by folds (`eol` + white space).
    pieces: Vec<String>,
    folds: Vec<String>,
    eol: &'static str,
}

impl Field {
    /// The value as indexed: from the first piece to the end of the last one,
    /// folds included raw.
    fn value(&self) -> String {
        let mut v = String::new();
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                v += &self.folds[(i - 1) % self.folds.len()];
            }
            v += piece;
        }
        v
    }

    fn render(&self) -> String {
        let lead = match (&self.lead_fold, self.pieces.is_empty()) {
            (Some(fold), false) => fold.as_str(),
            _ => "",
        };
        format!(
            "{}{}:{}{}{}{}",
            self.name,
            self.before_colon,
            self.after_colon,
            lead,
            self.value(),
            self.eol
        )
    }

    fn expected(&self) -> (HeaderName, Vec<u8>, Vec<u8>) {
        (
            self.id,
            self.name.clone().into_bytes(),
            self.value().into_bytes(),
        )
    }
}

fn eol() -> impl Strategy<Value = &'static str> {
    select(&["\r\n", "\n"][..])
}

/// Text with no CR, LF or NUL and no white space at either end.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[!-~]([ \t!-~]{0,30}[!-~])?",
        1 => "[\u{a1}-\u{17f}\u{4e00}-\u{4e20}\u{1f600}-\u{1f610}]{1,8}",
    ]
}

fn fold() -> impl Strategy<Value = String> {
    (eol(), "[ \t]{1,3}").prop_map(|(eol, ws)| format!("{eol}{ws}"))
}

/// A header name (never Content-Length, which the message generator places
/// itself) and the identity the parser must find.
fn name() -> impl Strategy<Value = (String, HeaderName)> {
    use HeaderName::*;
    let known = select(
        &[
            ("Via", Via),
            ("v", Via),
            ("From", From),
            ("f", From),
            ("To", To),
            ("t", To),
            ("Call-ID", CallId),
            ("i", CallId),
            ("CSeq", CSeq),
            ("Contact", Contact),
            ("m", Contact),
            ("Route", Route),
            ("Record-Route", RecordRoute),
            ("Max-Forwards", MaxForwards),
            ("Content-Type", ContentType),
            ("c", ContentType),
            ("Subject", Subject),
            ("s", Subject),
            ("Supported", Supported),
            ("k", Supported),
            ("User-Agent", UserAgent),
            ("WWW-Authenticate", WwwAuthenticate),
            ("P-Preferred-Identity", PPreferredIdentity),
            ("Min-SE", MinSe),
        ][..],
    );
    let known = (known, 0..3u8).prop_map(|((n, id), case)| {
        let n = match case {
            0 => n.to_string(),
            1 => n.to_ascii_lowercase(),
            _ => n.to_ascii_uppercase(),
        };
        (n, id)
    });
    let unknown = prop_oneof!["X-[A-Za-z0-9!%*_+`'~.-]{1,20}", "[ghpqwzGHPQWZ]"]
        .prop_map(|n| (n, HeaderName::Other));
    prop_oneof![3 => known, 2 => unknown]
}

fn field() -> impl Strategy<Value = Field> {
    (
        name(),
        "[ \t]{0,2}",
        "[ \t]{0,3}",
        prop::option::weighted(0.1, fold()),
        vec(piece(), 0..4),
        vec(fold(), 1..4),
        eol(),
    )
        .prop_map(
            |((name, id), before_colon, after_colon, lead_fold, pieces, folds, eol)| Field {
                name,
                id,
                before_colon,
                after_colon,
                lead_fold,
                pieces,
                folds,
                eol,
            },
        )
}

#[derive(Clone, Debug)]
enum Start {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

fn start() -> impl Strategy<Value = Start> {
    let method = prop_oneof![
        select(&["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "MESSAGE"][..])
            .prop_map(str::to_string),
        "[A-Za-z0-9!%*_+`'~.-]{1,12}",
    ];
    let uri = prop_oneof![
        "sip:[!-~]{1,40}",
        "sips:[a-z]{1,8}@[a-z0-9.]{1,20}:[0-9]{1,5}"
    ];
    let request = (method, uri).prop_map(|(method, uri)| Start::Request { method, uri });
    let reason = prop_oneof!["[ -~]{0,24}", "[a-z \u{430}-\u{44f}]{0,12}"];
    let response =
        (100u16..=699, reason).prop_map(|(code, reason)| Start::Response { code, reason });
    prop_oneof![request, response]
}

/// A well-formed message and what parsing it must give.
#[derive(Clone, Debug)]
struct Generated {
    start: Start,
    start_eol: &'static str,
    fields: Vec<Field>,
    /// Content-Length: where it goes among the fields, its name and zero padding.
    content_length: Option<(usize, &'static str, usize)>,
    blank: &'static str,
    body: Vec<u8>,
    /// Octets after the body (only with Content-Length: otherwise they are body).
    junk: Vec<u8>,
}

impl Generated {
    fn render(&self) -> Vec<u8> {
        let mut text = match &self.start {
            Start::Request { method, uri } => format!("{method} {uri} SIP/2.0"),
            Start::Response { code, reason } => format!("SIP/2.0 {code} {reason}"),
        };
        text += self.start_eol;
        for (i, f) in self.fields.iter().enumerate() {
            if let Some((at, name, zeros)) = self.content_length {
                if at == i {
                    text += &format!("{name}: {}{}\r\n", "0".repeat(zeros), self.body.len());
                }
            }
            text += &f.render();
        }
        if let Some((at, name, zeros)) = self.content_length {
            if at >= self.fields.len() {
                text += &format!("{name}: {}{}\r\n", "0".repeat(zeros), self.body.len());
            }
        }
        text += self.blank;
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&self.body);
        if self.content_length.is_some() {
            bytes.extend_from_slice(&self.junk);
        }
        bytes
    }

    /// The header index parsing must give.
    fn index(&self) -> Vec<(HeaderName, Vec<u8>, Vec<u8>)> {
        let mut out: Vec<_> = self.fields.iter().map(Field::expected).collect();
        if let Some((at, name, zeros)) = self.content_length {
            let value = format!("{}{}", "0".repeat(zeros), self.body.len());
            let cl = (
                HeaderName::ContentLength,
                name.as_bytes().to_vec(),
                value.into_bytes(),
            );
            out.insert(at.min(out.len()), cl);
        }
        out
    }
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        start(),
        eol(),
        vec(field(), 0..24),
        prop::option::weighted(
            0.7,
            (
                0..30usize,
                select(&["Content-Length", "content-length", "l", "L"][..]),
                0..3usize,
            ),
        ),
        eol(),
        prop_oneof![Just(Vec::new()), vec(any::<u8>(), 0..300)],
        vec(any::<u8>(), 0..24),
    )
        .prop_map(
            |(start, start_eol, fields, content_length, blank, body, junk)| Generated {
                start,
                start_eol,
                fields,
                content_length,
                blank,
                body,
                junk,
            },
        )
}

fn index(m: &Message) -> Vec<(HeaderName, Vec<u8>, Vec<u8>)> {
    m.headers()
        .iter()
        .map(|h| (h.id, m.name(h).to_vec(), m.value(h).to_vec()))
        .collect()
}

fn parse(bytes: Vec<u8>) -> Message {
    match Message::parse(Bytes::from(bytes.clone())) {
        Ok(m) => m,
        Err(e) => panic!("{e}: {:?}", String::from_utf8_lossy(&bytes)),
    }
}

fn write(m: &Message, e: &Edits) -> Vec<u8> {
    let mut out = Vec::new();
    serialize(m, e, &mut out);
    out
}

/// Serialized with no edits and parsed again, a message keeps its index,
/// start line and body.
fn assert_round_trip(m: &Message) {
    let again = parse(write(m, &Edits::new()));
    assert_eq!(index(&again), index(m));
    assert_eq!(again.slice(again.start_line()), m.slice(m.start_line()));
    assert_eq!(again.body(), m.body());
}

proptest! {
    #![proptest_config(crate::proptest_config(256))]

    #[test]
    fn generated_messages_parse_and_round_trip(g in generated()) {
        let bytes = g.render();
        let m = parse(bytes.clone());
        match &g.start {
            Start::Request { method, uri } => {
                prop_assert_eq!(m.method_bytes(), method.as_bytes());
                prop_assert_eq!(m.request_uri().unwrap(), uri.as_bytes());
            }
            Start::Response { code, reason } => {
                prop_assert_eq!(m.status(), Some(*code));
                prop_assert_eq!(m.reason().unwrap(), reason.as_bytes());
            }
        }
        prop_assert_eq!(index(&m), g.index());
        prop_assert_eq!(m.body(), &g.body[..]);
        prop_assert!(m.has_end_of_headers());

        // No edits: the same bytes, up to Content-Length.
        let out = write(&m, &Edits::new());
        let framed = bytes.len() - if g.content_length.is_some() { g.junk.len() } else { 0 };
        prop_assert_eq!(&out[..], &bytes[..framed]);
        assert_round_trip(&m);
    }
}

/// One recorded edit; header indices are reduced modulo the header count.
#[derive(Clone, Debug)]
enum Op {
    Insert(usize, Field),
    Remove(usize),
    Replace(usize, Field),
    Uri(String),
    Body(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<usize>(), field()).prop_map(|(i, f)| Op::Insert(i, f)),
        2 => any::<usize>().prop_map(Op::Remove),
        2 => (any::<usize>(), field()).prop_map(|(i, f)| Op::Replace(i, f)),
        1 => "sip:[a-z0-9@.:;=]{1,30}".prop_map(Op::Uri),
        1 => vec(any::<u8>(), 0..120).prop_map(Op::Body),
    ]
}

type Row = (HeaderName, Vec<u8>, Vec<u8>);

/// Recorded edits and what they must give.
struct Model {
    edits: Edits,
    /// The header fields of the result.
    rows: Vec<Row>,
    uri: Option<Vec<u8>>,
    body: Vec<u8>,
    /// Which original fields were removed.
    removed: Vec<bool>,
}

/// Applies `ops` to `m` both as edits and to a model of their meaning.
fn record(m: &Message, ops: &[Op]) -> Model {
    let n = m.headers().len();
    let mut edits = Edits::new();
    let mut inserts: Vec<Vec<Row>> = vec![Vec::new(); n + 1];
    let mut removed = vec![false; n];
    let mut replaced: Vec<Option<Vec<u8>>> = vec![None; n];
    let mut uri = m.request_uri().map(<[u8]>::to_vec);
    let mut body = m.body().to_vec();
    for op in ops {
        match op {
            Op::Insert(i, f) => {
                let line = Bytes::from(f.render());
                let i = i % (n + 1);
                match i {
                    0 => edits.prepend_header(m, line),
                    i if i == n => edits.append_header(m, line),
                    i => edits.insert_header_before(m, i, line),
                }
                inserts[i].push(f.expected());
            }
            Op::Remove(i) if n > 0 => {
                edits.remove_header(m, i % n);
                removed[i % n] = true;
            }
            Op::Replace(i, f) if n > 0 => {
                let i = i % n;
                // The serializer owns Content-Length; an edit of it is the caller's problem.
                if m.headers()[i].id != HeaderName::ContentLength {
                    let value = f.value();
                    edits.replace_header_value(m, i, Bytes::from(value.clone()));
                    replaced[i] = Some(value.into_bytes());
                }
            }
            Op::Uri(u) => {
                edits.set_request_uri(m, Bytes::from(u.clone()));
                if uri.is_some() {
                    uri = Some(u.clone().into_bytes());
                }
            }
            Op::Body(b) => {
                edits.set_body(m, Bytes::from(b.clone()));
                body.clone_from(b);
            }
            Op::Remove(_) | Op::Replace(..) => {}
        }
    }
    // What the headers must be: inserts before each field, then the field
    // unless removed (removal beats a replaced value), then the appended ones.
    let mut rows = Vec::new();
    for (i, h) in m.headers().iter().enumerate() {
        rows.append(&mut inserts[i]);
        if !removed[i] {
            let value = replaced[i].clone().unwrap_or_else(|| m.value(h).to_vec());
            rows.push((h.id, m.name(h).to_vec(), value));
        }
    }
    rows.append(&mut inserts[n]);
    Model {
        edits,
        rows,
        uri,
        body,
        removed,
    }
}

fn without_content_length(rows: Vec<Row>) -> Vec<Row> {
    rows.into_iter()
        .filter(|(id, _, _)| *id != HeaderName::ContentLength)
        .collect()
}

fn number(v: &[u8]) -> usize {
    std::str::from_utf8(v).unwrap().parse().unwrap()
}

proptest! {
    #![proptest_config(crate::proptest_config(256))]

    #[test]
    fn edits_give_the_modelled_message(g in generated(), ops in vec(op(), 0..10)) {
        let m = parse(g.render());
        let Model { edits, rows, uri, body, removed } = record(&m, &ops);
        let out = parse(write(&m, &edits));

        prop_assert_eq!(without_content_length(index(&out)), without_content_length(rows));
        prop_assert_eq!(out.request_uri().map(<[u8]>::to_vec), uri);
        prop_assert_eq!(out.status(), m.status());
        prop_assert_eq!(out.body(), &body[..]);

        let lengths: Vec<usize> = out
            .headers_of(HeaderName::ContentLength)
            .map(|h| number(out.value(h)))
            .collect();
        let original = m
            .headers()
            .iter()
            .position(|h| h.id == HeaderName::ContentLength);
        match original {
            // Kept: it follows the body.
            Some(i) if !removed[i] => prop_assert_eq!(lengths, vec![body.len()]),
            // Removed by an edit: not brought back.
            Some(_) => prop_assert!(lengths.is_empty()),
            // Absent: added when the body changed size.
            None if body.len() != m.body().len() => prop_assert_eq!(lengths, vec![body.len()]),
            None => prop_assert!(lengths.is_empty()),
        }
        assert_round_trip(&out);
    }
}

/// What the forwarding code hands to `serialize_with`.
const EXTRA_LINES: &[&[u8]] = &[
    b"Record-Route: <sip:p;lr>\r\n",
    b"Via: SIP/2.0/UDP p;branch=z9hG4bKx\r\n",
    b"",
];

proptest! {
    #![proptest_config(crate::proptest_config(256))]

    /// Inserts handed to `serialize_with` come out as the same inserts
    /// recorded after every edit would; and a rollback to a checkpoint taken
    /// before recording them gives the message as the edits alone give it.
    #[test]
    fn borrowed_inserts_are_inserts_recorded_last(
        g in generated(),
        ops in vec(op(), 0..10),
        extras in vec((0usize..12, select(EXTRA_LINES)), 0..3),
    ) {
        let m = parse(g.render());
        let Model { mut edits, .. } = record(&m, &ops);
        let at: Vec<(usize, &[u8])> = extras
            .iter()
            .map(|&(i, data)| match i {
                10 => (before_first(&m, HeaderName::Via), data),
                11 => (m.headers_end(), data),
                i => (header_start(&m, i), data),
            })
            .collect();
        let alone = write(&m, &edits);
        let mut borrowed = Vec::new();
        serialize_with(&m, &edits, &at, &mut borrowed);
        let mark = edits.checkpoint();
        for &(pos, data) in &at {
            edits.insert(pos, Bytes::copy_from_slice(data));
        }
        prop_assert_eq!(&borrowed, &write(&m, &edits));
        edits.rollback(mark);
        prop_assert_eq!(write(&m, &edits), alone);
    }
}

/// Edits any parsed message may get from a script.
fn some_edits(m: &Message) -> Edits {
    let mut e = Edits::new();
    e.prepend_header(
        m,
        Bytes::from_static(b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKfz\r\n"),
    );
    e.insert_before_first(
        m,
        HeaderName::Via,
        Bytes::from_static(b"Record-Route: <sip:192.0.2.1;lr>\r\n"),
    );
    e.set_request_uri(m, Bytes::from_static(b"sip:new@192.0.2.2"));
    e.remove_header(m, 0);
    e.remove_header(m, m.headers().len().saturating_sub(1));
    if m.headers()
        .get(1)
        .is_some_and(|h| h.id != HeaderName::ContentLength)
    {
        e.replace_header_value(m, 1, Bytes::from_static(b"replaced"));
    }
    e.append_header(m, Bytes::from_static(b"X-Fuzz: 1\r\n"));
    e.set_body(m, Bytes::from_static(b"new body"));
    e.force_content_length();
    e
}

/// Whatever parses: a round trip keeps the index, and edits give a message
/// that parses with the edited body.
fn check_parsed(bytes: Vec<u8>) {
    if let Ok(m) = Message::parse(Bytes::from(bytes)) {
        assert_round_trip(&m);
        let out = write(&m, &some_edits(&m));
        let again = parse(out);
        assert_eq!(again.body(), b"new body");
        if m.is_request() {
            assert_eq!(again.request_uri().unwrap(), b"sip:new@192.0.2.2");
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Insert(usize, u8),
    Remove(usize),
    Set(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        select(&[b'\r', b'\n', b'\0', b' ', b'\t', b':', b'\\', b'"', b'0', b'9'][..]),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Set(i, b)),
    ]
}

proptest! {
    #![proptest_config(crate::proptest_config(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..1024)) {
        check_parsed(bytes);
    }

    #[test]
    fn sip_like_bytes_never_panic(
        words in vec(
            select(&[
                "INVITE ", "SIP/2.0", " ", "sip:a@b", "\r\n", "\n", "\r", "\0", ":", "Via",
                "l", "Content-Length", ": ", "7", "-1", "\t", "\"", "\\", "v=0", "SIP/2.0 200 OK",
            ][..]),
            0..60,
        )
    ) {
        check_parsed(words.concat().into_bytes());
    }

    #[test]
    fn mutated_messages_never_panic(g in generated(), mutations in vec(mutation(), 1..6)) {
        let mut bytes = g.render();
        for m in mutations {
            match m {
                Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                Mutation::Remove(i) if !bytes.is_empty() => {
                    bytes.remove(i % bytes.len());
                }
                Mutation::Set(i, b) if !bytes.is_empty() => {
                    let i = i % bytes.len();
                    bytes[i] = b;
                }
                Mutation::Remove(_) | Mutation::Set(..) => {}
            }
        }
        check_parsed(bytes);
    }
}
