//! The zero-copy SIP message: one scan of one [`Bytes`] buffer records where
//! the start line, each header field and the body are, as offsets. Nothing is
//! copied; typed views of header values are parsed on access from those slices.
//!
//! Framing follows RFC 3261 §7 and §18.3: leading CRLFs are skipped (§7.5),
//! header lines may be folded (§7.3.1), a datagram's body is cut to
//! Content-Length. A body shorter than Content-Length is kept as it came
//! (Kamailio routes such a request and leaves it to `sanity_check` to
//! answer `400 Content-Length mis-match`); the declared length is kept
//! (see [`Message::declared_content_length`]).
//!
//! A header field that Kamailio's own parser refuses (a Via it cannot read,
//! a malformed CSeq or To, a second From, To, Call-ID, CSeq, Max-Forwards
//! or Content-Length) does not fail the parse here: it is found on demand
//! by [`Message::broken_header`], so the receive checks, the script and
//! the modules can treat the message as Kamailio does (drop it when a
//! required header lies past it, else let functions that need the whole
//! header section fail).

use std::cell::OnceCell;
use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::error::{ErrorKind, ParseError, Result};
use super::name::HeaderName;
use super::nameaddr::NameAddr;
use super::scan::{bytes_below, bytes_equal, word};
use super::uri::{Uri, UriAt};
use super::via::{Via, ViaAt};

/// A byte range in the message buffer (u32: messages are far below 4 GiB).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

/// Limits applied while parsing untrusted input.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest accepted message, in bytes.
    pub max_message: usize,
    /// Most header fields (lines, continuation lines not counted).
    pub max_headers: usize,
    /// Longest physical line, in bytes.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        // A UDP datagram cannot exceed 65,535 bytes; streams get the same bound.
        Limits {
            max_message: 65_535,
            max_headers: 256,
            max_line: 8_192,
        }
    }
}

/// What a request speaks: SIP, or HTTP/1.x arriving on a SIP stream
/// listener (Kamailio's core reads both on its TCP and TLS ports and hands
/// HTTP requests to the xhttp module instead of the SIP routing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    #[default]
    Sip,
    /// `Method SP Request-Target SP HTTP/1.0` or `HTTP/1.1` (RFC 9112 §3).
    Http,
}

/// The first line of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP-Version`
    Request { method: Span, uri: Span },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`
    Response { code: u16, reason: Span },
}

/// One header field: its name, its value (trimmed, folded lines included raw)
/// and the whole field with its line ending, for removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub id: HeaderName,
    pub name: Span,
    pub value: Span,
    /// From the first byte of the name to after the last line ending.
    pub line: Span,
}

/// Typical messages carry 10–20 header fields: keep that many inline so that
/// parsing allocates nothing.
const INLINE_HEADERS: usize = 24;

/// A parsed SIP request or response over one shared buffer.
#[derive(Clone, Debug)]
pub struct Message {
    buf: Bytes,
    start: StartLine,
    /// The whole first line without its line ending.
    start_line: Span,
    headers: SmallVec<[Header; INLINE_HEADERS]>,
    /// SIP, or an HTTP request (see [`Protocol`]).
    protocol: Protocol,
    /// Where the empty line that ends the header section starts (new headers go here).
    headers_end: u32,
    body: Span,
    content_length: Option<Span>,
    /// What Content-Length says (the body length when there is none); more
    /// than the body when the datagram was short.
    declared_length: u32,
    /// The first header field Kamailio's parser refuses, found on first
    /// use (see [`Message::broken_header`]).
    broken: OnceCell<Option<u32>>,
    /// The first Via value, parsed on first use: the request checks, the
    /// stateless and stateful forwarding code and the transaction key all
    /// read it (see [`Message::top_via`]).
    top_via: OnceCell<Option<TopVia>>,
    /// A request's Request-URI, parsed on first use (see [`Message::parsed_uri`]).
    uri: OnceCell<std::result::Result<UriAt, ParseError>>,
    /// The To tag, read on first use (see [`Message::to_tag`]).
    to_tag: OnceCell<Option<Option<Span>>>,
}

/// The parsed first Via value: where its header value lies, the parse
/// (offsets relative to that value; an error is not shifted yet), and where
/// the next via-parm of that header value starts when the parse found it
/// (see [`Via::first`]).
#[derive(Clone, Copy, Debug)]
struct TopVia {
    value: Span,
    via: std::result::Result<ViaAt, ParseError>,
    next: Option<Option<u32>>,
}

impl Message {
    /// Parses one datagram (or one framed stream message) with the default limits.
    pub fn parse(buf: Bytes) -> Result<Message> {
        Message::parse_with(buf, &Limits::default())
    }

    /// Parses with explicit limits.
    pub fn parse_with(buf: Bytes, limits: &Limits) -> Result<Message> {
        let mut headers = SmallVec::new();
        let frame = frame(&buf, limits, &mut headers)?;
        Ok(Message {
            start: frame.start,
            start_line: frame.start_line,
            headers,
            protocol: frame.protocol,
            headers_end: frame.headers_end as u32,
            body: frame.body,
            content_length: frame.content_length,
            declared_length: frame.declared_length,
            broken: OnceCell::new(),
            buf,
            top_via: OnceCell::new(),
            uri: OnceCell::new(),
            to_tag: OnceCell::new(),
        })
    }

    /// A buffer that is not (or not yet) a SIP message, seen whole: what
    /// `event_route[network:msg]` runs on before parsing and after
    /// serializing. No header; the "body" is the whole buffer, so `$mb` and
    /// `$ml` read the raw bytes.
    pub fn opaque(buf: Bytes) -> Message {
        let len = buf.len().min(u32::MAX as usize);
        Message {
            start: StartLine::Request {
                method: Span::new(0, 0),
                uri: Span::new(0, 0),
            },
            start_line: Span::new(0, 0),
            headers: SmallVec::new(),
            protocol: Protocol::Sip,
            headers_end: 0,
            body: Span::new(0, len),
            content_length: None,
            declared_length: len as u32,
            broken: OnceCell::new(),
            buf,
            top_via: OnceCell::new(),
            uri: OnceCell::new(),
            to_tag: OnceCell::new(),
        }
    }

    // --- getters ---------------------------------------------------------------------------

    /// The buffer the message was parsed from.
    pub fn buf(&self) -> &Bytes {
        &self.buf
    }

    /// Whether this message was parsed from `buf` itself (the same bytes at
    /// the same address): while `buf` is held, no other buffer can take its
    /// place, so what was computed from `buf` holds for this message.
    pub fn is_parsed_from(&self, buf: &Bytes) -> bool {
        self.buf.as_ptr() == buf.as_ptr() && self.buf.len() == buf.len()
    }

    /// Bytes of a span of this message.
    pub fn slice(&self, span: Span) -> &[u8] {
        // Spans are made by the parser from this very buffer.
        &self.buf[span.range()]
    }

    /// A zero-copy `Bytes` handle on a span of this message.
    pub fn bytes(&self, span: Span) -> Bytes {
        self.buf.slice(span.range())
    }

    pub fn start(&self) -> StartLine {
        self.start
    }

    /// The first line as received, without its line ending.
    pub fn start_line(&self) -> Span {
        self.start_line
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// Whether this is an HTTP/1.x request rather than a SIP message.
    pub fn is_http(&self) -> bool {
        self.protocol == Protocol::Http
    }

    /// A request's protocol version as written (`SIP/2.0`, `HTTP/1.1`…):
    /// what follows the Request-URI on the request line.
    pub fn request_version(&self) -> Option<&[u8]> {
        let uri = self.uri_span()?;
        let line = self.slice(self.start_line);
        let after = (uri.end - self.start_line.start) as usize + 1;
        Some(line.get(after..)?.trim_ascii_end())
    }

    /// A request's method as written (methods are case-sensitive, RFC 3261 §7.1);
    /// for a response, the CSeq method (as Kamailio's `method` keyword does).
    pub fn method_bytes(&self) -> &[u8] {
        match self.start {
            StartLine::Request { method, .. } => self.slice(method),
            StartLine::Response { .. } => self.cseq_method().unwrap_or(b""),
        }
    }

    /// The Request-URI span of a request.
    pub fn uri_span(&self) -> Option<Span> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI as received.
    pub fn request_uri(&self) -> Option<&[u8]> {
        self.uri_span().map(|s| self.slice(s))
    }

    /// A response's status code.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// A response's reason phrase.
    pub fn reason(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Response { reason, .. } => Some(self.slice(reason)),
            StartLine::Request { .. } => None,
        }
    }

    /// All header fields in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Offset of the empty line that ends the header section.
    pub fn headers_end(&self) -> usize {
        self.headers_end as usize
    }

    /// Whether the header section ends with an empty line. A datagram that
    /// stops after its last header field is accepted without one; the
    /// serializer then writes the missing line endings.
    pub fn has_end_of_headers(&self) -> bool {
        self.body.start > self.headers_end
    }

    /// The value of a header field.
    pub fn value(&self, h: &Header) -> &[u8] {
        self.slice(h.value)
    }

    /// The name of a header field as written.
    pub fn name(&self, h: &Header) -> &[u8] {
        self.slice(h.name)
    }

    /// The first header field with this identity.
    pub fn header(&self, id: HeaderName) -> Option<&Header> {
        self.headers.iter().find(|h| h.id == id)
    }

    /// The value of the first header field with this identity.
    pub fn header_value(&self, id: HeaderName) -> Option<&[u8]> {
        self.header(id).map(|h| self.value(h))
    }

    /// Every header field with this identity, in order.
    pub fn headers_of(&self, id: HeaderName) -> impl Iterator<Item = &Header> + '_ {
        self.headers.iter().filter(move |h| h.id == id)
    }

    /// Every header field whose wire name matches `name` (any case; compact
    /// forms of known headers count: `f` finds `From`).
    pub fn headers_named<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a Header> + 'a {
        let id = HeaderName::from_bytes(name);
        self.headers.iter().filter(move |h| {
            if id == HeaderName::Other {
                h.id == HeaderName::Other && self.slice(h.name).eq_ignore_ascii_case(name)
            } else {
                h.id == id
            }
        })
    }

    /// The first Via value (the top one, even when several share its header
    /// field): the offset of its header value in the buffer, and its parse,
    /// whose offsets (error offsets too) are relative to that header value.
    /// Parsed once, on the first call.
    pub fn top_via(&self) -> Option<(usize, Result<Via<'_>>)> {
        let top = self.top_via_cell().as_ref()?;
        let value = self.slice(top.value);
        Some((top.value.start as usize, top.via.map(|v| v.view(value))))
    }

    /// [`Message::top_via`] without making a view of it (for readers that
    /// want a few of its ranges): the offset of its header value, the record
    /// (ranges relative to that value) or the parse error (not shifted), and
    /// [`Message::top_via_next`].
    #[allow(clippy::type_complexity)]
    pub(crate) fn top_via_at(
        &self,
    ) -> Option<(
        usize,
        std::result::Result<&ViaAt, ParseError>,
        Option<Option<usize>>,
    )> {
        let top = self.top_via_cell().as_ref()?;
        let next = top.next.map(|n| n.map(|n| n as usize));
        Some((
            top.value.start as usize,
            top.via.as_ref().map_err(|e| *e),
            next,
        ))
    }

    /// Where the second via-parm of the top Via header value starts
    /// (relative to that value), when reading the top one told:
    /// `Some(None)` when there is no second one in that header value,
    /// `Some(Some(i))` when there is, `None` when it was not looked for (the
    /// top via-parm is not written the common way) or there is no Via.
    pub fn top_via_next(&self) -> Option<Option<usize>> {
        let next = self.top_via_cell().as_ref()?.next?;
        Some(next.map(|n| n as usize))
    }

    fn top_via_cell(&self) -> &Option<TopVia> {
        self.top_via.get_or_init(|| {
            let h = self.header(HeaderName::Via)?;
            let value = self.value(h);
            let (via, next) = Via::first(value)?;
            Some(TopVia {
                value: h.value,
                via: via.map(|v| ViaAt::new(value, &v)),
                next: next.map(|n| n.map(|n| n as u32)),
            })
        })
    }

    /// A request's Request-URI parsed (`None` for a response); parsed once,
    /// on the first call (rr, Record-Route and the next hop all read it).
    pub fn parsed_uri(&self) -> Option<Result<Uri<'_>>> {
        let text = self.request_uri()?;
        let uri = self
            .uri
            .get_or_init(|| Uri::parse(text).map(|u| UriAt::new(text, &u)));
        Some(uri.map(|u| u.view(text)))
    }

    /// The To header's tag: `None` when there is no To or it does not parse,
    /// `Some(None)` when it has no tag. Read once, on the first call
    /// (`has_totag()`, `loose_route()` and dialog checks all ask).
    pub fn to_tag(&self) -> Option<Option<&[u8]>> {
        let tag = self.to_tag.get_or_init(|| {
            let value = self.header_value(HeaderName::To)?;
            let na = NameAddr::parse(value).ok()?;
            let base = self.buf.as_ptr() as usize;
            // Where the tag lies in the buffer (addresses only).
            Some(na.tag().map(|t| {
                let start = (t.as_ptr() as usize).wrapping_sub(base);
                Span::new(start, start + t.len())
            }))
        });
        tag.map(|t| t.map(|span| self.buf.get(span.range()).unwrap_or_default()))
    }

    /// The Call-ID value.
    pub fn call_id(&self) -> Option<&[u8]> {
        self.header_value(HeaderName::CallId)
    }

    /// The number part of CSeq as written (`CSeq: 1 INVITE` → `1`): the run
    /// before the first white space, whatever it holds, as Kamailio's `$cs`
    /// gives it.
    pub fn cseq_number(&self) -> Option<&[u8]> {
        let v = self.header_value(HeaderName::CSeq)?;
        let end = v
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .unwrap_or(v.len());
        Some(&v[..end])
    }

    /// The method part of CSeq (`CSeq: 1 INVITE` → `INVITE`), read without a
    /// full view: the run after the number's, whatever the number holds (a
    /// reply to `CSeq: x OPTIONS` is a reply to an OPTIONS, as in Kamailio).
    fn cseq_method(&self) -> Option<&[u8]> {
        let v = self.header_value(HeaderName::CSeq)?;
        let number_end = v.iter().position(|b| b.is_ascii_whitespace())?;
        let rest = &v[number_end..];
        let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        let m = &rest[start..];
        let end = m
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(m.len());
        Some(&m[..end])
    }

    /// The body (cut to Content-Length).
    pub fn body(&self) -> &[u8] {
        self.slice(self.body)
    }

    pub fn body_span(&self) -> Span {
        self.body
    }

    /// The span of the Content-Length header's value, if present.
    pub fn content_length_span(&self) -> Option<Span> {
        self.content_length
    }

    /// The value of Content-Length, if present: more than `body().len()`
    /// when the datagram ended before the body did.
    pub fn declared_content_length(&self) -> Option<usize> {
        self.content_length.map(|_| self.declared_length as usize)
    }

    /// Whether the datagram ended before the body Content-Length announced.
    pub fn is_body_short(&self) -> bool {
        self.declared_length as usize > self.body.len()
    }

    /// The index (into [`Message::headers`]) of the first header field
    /// Kamailio 5.6's parser refuses, if any: a Via header with a via-parm
    /// that does not read, a CSeq or To that its parser rejects, or a second
    /// From, To, Call-ID, CSeq, Max-Forwards or Content-Length (each
    /// checked live). Kamailio parses headers in order and stops at such a
    /// field: a request whose top Via, From, To, Call-ID or CSeq lies past
    /// it is dropped, and anything that parses the whole header section (a
    /// stateless reply, `t_relay`, `$hdr`) fails. Found once, on first use.
    pub fn broken_header(&self) -> Option<usize> {
        self.broken
            .get_or_init(|| self.find_broken_header().map(|i| i as u32))
            .map(|i| i as usize)
    }

    fn find_broken_header(&self) -> Option<usize> {
        // One bit per header that may appear once.
        let mut seen = 0u8;
        let mut first_via = true;
        for (i, h) in self.headers.iter().enumerate() {
            let once = match h.id {
                HeaderName::From => 1,
                HeaderName::To => 2,
                HeaderName::CallId => 4,
                HeaderName::CSeq => 8,
                HeaderName::MaxForwards => 16,
                HeaderName::ContentLength => 32,
                HeaderName::Via => {
                    // The top via-parm is parsed (and kept) anyway; when it
                    // was the whole header value nothing is left to read.
                    let whole =
                        first_via && matches!(self.top_via_at(), Some((_, Ok(_), Some(None))));
                    first_via = false;
                    if !whole && super::via::vias(self.value(h)).any(|v| v.is_err()) {
                        return Some(i);
                    }
                    0
                }
                _ => 0,
            };
            if once == 0 {
                continue;
            }
            if seen & once != 0 {
                return Some(i);
            }
            seen |= once;
            let v = self.value(h);
            let ok = match h.id {
                HeaderName::CSeq => cseq_reads(v),
                HeaderName::To => to_reads(v),
                _ => true,
            };
            if !ok {
                return Some(i);
            }
        }
        None
    }

    /// Size of the message as framed (start line to the end of the body).
    pub fn len(&self) -> usize {
        self.body.end as usize
    }

    pub fn is_empty(&self) -> bool {
        self.body.end == 0
    }
}

/// Where the parts of a message are, as found by [`frame`].
struct Frame {
    start: StartLine,
    protocol: Protocol,
    start_line: Span,
    headers_end: usize,
    body: Span,
    content_length: Option<Span>,
    declared_length: u32,
}

/// Scans the message once: start line, then each header line (pushed to
/// `headers`), then the body cut to Content-Length.
fn frame(
    buf: &[u8],
    limits: &Limits,
    headers: &mut SmallVec<[Header; INLINE_HEADERS]>,
) -> Result<Frame> {
    // Spans are u32: whatever the configured limit, nothing larger is indexed.
    let max = limits.max_message.min(u32::MAX as usize);
    if buf.len() > max {
        return Err(ParseError::new(ErrorKind::TooLarge, max));
    }
    // RFC 3261 §7.5: ignore CRLFs before the start line (keep-alives, stray line ends).
    let first = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ParseError::new(ErrorKind::Empty, 0))?;
    if buf[first..].iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::new(ErrorKind::Empty, first));
    }

    let (start_line, mut pos) = line(buf, first, limits)?;
    let (start, protocol) = parse_start_line(buf, start_line)?;

    let mut has_content_length = false;
    let headers_end = loop {
        if pos >= buf.len() {
            // No empty line: accept a datagram whose last header ends the buffer,
            // as deployed proxies do; the body is empty.
            break buf.len();
        }
        let (line, next) = line(buf, pos, limits)?;
        if line.is_empty() {
            let end = pos;
            pos = next;
            break end;
        }
        let first = buf[line.start as usize];
        if first == b' ' || first == b'\t' {
            // RFC 3261 §7.3.1: a line starting with white space continues the previous field.
            let Some(last) = headers.last_mut() else {
                return Err(ParseError::new(ErrorKind::BadHeaderName, pos));
            };
            let (begin, end) = (skip_ws(buf, pos), trim_end(buf, line).end as usize);
            if begin < end {
                if last.value.is_empty() {
                    // The value starts on the continuation line.
                    last.value.start = begin as u32;
                }
                last.value.end = end as u32;
            }
            last.line.end = next as u32;
            pos = next;
            continue;
        }
        if headers.len() >= limits.max_headers {
            return Err(ParseError::new(ErrorKind::TooManyHeaders, pos));
        }
        let h = header(buf, line, next)?;
        has_content_length |= h.id == HeaderName::ContentLength;
        headers.push(h);
        pos = next;
    };

    // Kamailio's parser refuses an HTTP request without any header field
    // (`GET / HTTP/1.0` alone): no module sees it.
    if protocol == Protocol::Http && headers.is_empty() {
        return Err(ParseError::new(ErrorKind::MissingHeader, headers_end));
    }

    // Read only now that every field is complete: the value may be folded
    // onto a continuation line (`Content-Length:\r\n 42` is valid).
    let mut content_length: Option<(Span, usize)> = None;
    if has_content_length {
        for h in headers.iter().filter(|h| h.id == HeaderName::ContentLength) {
            let at = h.value.start as usize;
            let n = content_length_value(&buf[h.value.range()])
                .ok_or(ParseError::new(ErrorKind::BadContentLength, at))?;
            match content_length {
                Some((_, prev)) if prev != n => {
                    return Err(ParseError::new(ErrorKind::BadContentLength, at))
                }
                Some(_) => {}
                None => content_length = Some((h.value, n)),
            }
        }
    }

    let body_start = pos.min(buf.len());
    let body = match content_length {
        Some((_, n)) => {
            // RFC 3261 §18.3: bytes past Content-Length in a datagram are
            // discarded; a short body is kept as it came (the module
            // doc says why). Stream framing never hands over a short one.
            let available = buf.len() - body_start;
            Span::new(body_start, body_start + n.min(available))
        }
        None => Span::new(body_start, buf.len()),
    };
    Ok(Frame {
        start,
        protocol,
        start_line,
        headers_end,
        body,
        declared_length: content_length.map_or(body.len() as u32, |(_, n)| n as u32),
        content_length: content_length.map(|(s, _)| s),
    })
}

/// One physical line from `pos`: its span without the line ending, and where
/// the next line starts. Accepts CRLF and bare LF. A CR not followed by LF is
/// never valid in the header section, nor is a NUL, except escaped in a
/// quoted string: RFC 3261 §25.1 `quoted-pair = "\" (%x00-09 / %x0B-0C /
/// %x0E-7F)`, which RFC 4475 §3.1.1.2 exercises (the quoted-string views
/// check that it is inside quotes). One pass over the line.
#[inline(always)]
fn line(buf: &[u8], pos: usize, limits: &Limits) -> Result<(Span, usize)> {
    let mut from = pos;
    let (end, next) = loop {
        match find_control(buf, from) {
            Some(i) => match buf[i] {
                b'\n' => break (i, i + 1),
                b'\r' if buf.get(i + 1) == Some(&b'\n') => break (i, i + 2),
                b'\0' if escaped(&buf[pos..i]) => from = i + 1,
                b'\r' | b'\0' => return Err(ParseError::new(ErrorKind::BadCharacter, i)),
                // Another control character (HTAB, …): not a line's business.
                _ => from = i + 1,
            },
            None => break (buf.len(), buf.len()),
        }
    };
    if end - pos > limits.max_line {
        return Err(ParseError::new(ErrorKind::LineTooLong, pos));
    }
    Ok((Span::new(pos, end), next))
}

/// Offset of the first byte below 0x0e (NUL, LF, CR and some other control
/// characters) at or after `pos`. Word-at-a-time: lines are tens of bytes
/// long, where a memchr call costs more than it saves.
#[inline(always)]
fn find_control(buf: &[u8], pos: usize) -> Option<usize> {
    let mut i = pos;
    // Two words a round: one branch per sixteen bytes.
    while i + 16 <= buf.len() {
        let lo = bytes_below(word(buf, i), 0x0e);
        let hi = bytes_below(word(buf, i + 8), 0x0e);
        if lo | hi != 0 {
            let hits = u128::from(lo) | u128::from(hi) << 64;
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 16;
    }
    while i + 8 <= buf.len() {
        let hits = bytes_below(word(buf, i), 0x0e);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    buf.get(i..)
        .unwrap_or_default()
        .iter()
        .position(|&b| b < 0x0e)
        .map(|p| i + p)
}

/// Whether what follows `before` is escaped: an odd run of backslashes ends it.
fn escaped(before: &[u8]) -> bool {
    before.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

fn parse_start_line(buf: &[u8], line: Span) -> Result<(StartLine, Protocol)> {
    let text = &buf[line.range()];
    let base = line.start as usize;
    let sp1 = memchr::memchr(b' ', text).ok_or(ParseError::new(ErrorKind::BadStartLine, base))?;
    if text.len() >= 4 && text[..4].eq_ignore_ascii_case(b"SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        check_version(&text[..sp1], base)?;
        let rest = &text[sp1 + 1..];
        let code_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let code_text = &rest[..code_end];
        if code_text.len() != 3 || !code_text.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::new(ErrorKind::BadStatus, base + sp1 + 1));
        }
        let code = code_text
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return Err(ParseError::new(ErrorKind::BadStatus, base + sp1 + 1));
        }
        let reason_start = (base + sp1 + 1 + code_end + 1).min(line.end as usize);
        // The line scanner lets a NUL through after a backslash (a quoted-pair);
        // a Reason-Phrase has no quoted-pairs (RFC 3261 §25.1).
        if let Some(i) = memchr::memchr(b'\0', &buf[reason_start..line.end as usize]) {
            return Err(ParseError::new(ErrorKind::BadCharacter, reason_start + i));
        }
        return Ok((
            StartLine::Response {
                code,
                reason: Span::new(reason_start, line.end as usize),
            },
            Protocol::Sip,
        ));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version CRLF
    let method = &text[..sp1];
    if method.is_empty() || !method.iter().all(|&b| is_token(b)) {
        return Err(ParseError::new(ErrorKind::BadMethod, base));
    }
    // White space after the version is not in the grammar, but RFC 4475
    // §3.1.2.10 lets an element be robust and accept it; rejecting it here
    // would drop the request unanswered (a bad version is a framing error).
    let mut end = text.len();
    while end > sp1 && matches!(text[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    let text = &text[..end];
    let sp2 = memchr::memrchr(b' ', text).unwrap_or(sp1);
    if sp2 <= sp1 + 1 {
        return Err(ParseError::new(ErrorKind::BadStartLine, base + sp1));
    }
    let version = &text[sp2 + 1..];
    // SIP first: an HTTP request line is looked at only once SIP failed.
    let protocol = match check_version(version, base + sp2 + 1) {
        Ok(()) => Protocol::Sip,
        Err(_) if is_http_version(version) => Protocol::Http,
        Err(e) => return Err(e),
    };
    let uri = &text[sp1 + 1..sp2];
    // RFC 3261 §25.1: the Request-URI contains no whitespace or control characters.
    if let Some(i) = find_ctl_or_space(uri) {
        return Err(ParseError::new(ErrorKind::BadUri, base + sp1 + 1 + i));
    }
    Ok((
        StartLine::Request {
            method: Span::new(base, base + sp1),
            uri: Span::new(base + sp1 + 1, base + sp2),
        },
        protocol,
    ))
}

/// `HTTP/1.0` or `HTTP/1.1` (the name case-insensitive, as Kamailio's
/// first-line parser takes it). HTTP/2 does not start with a request line.
fn is_http_version(v: &[u8]) -> bool {
    v.len() == 8 && v[..7].eq_ignore_ascii_case(b"HTTP/1.") && matches!(v[7], b'0' | b'1')
}

/// One header line: `name *(SP / HTAB) ":" *(SP / HTAB) value`.
// Always: it runs once per header line, and the framing loop is large enough
// that the compiler would otherwise call it.
#[inline(always)]
fn header(buf: &[u8], line: Span, next: usize) -> Result<Header> {
    let start = line.start as usize;
    let text = &buf[line.range()];
    let bad = || ParseError::new(ErrorKind::BadHeaderName, start);
    // RFC 3261 §7.3.1 allows white space between the name and the colon.
    let name_end = find_colon_or_ws(text);
    let name = &text[..name_end];
    let id = HeaderName::lookup(name);
    // A known name matched a canonical spelling byte for byte (case folded),
    // so it is a token; any other name is checked here.
    if name.is_empty() || (id == HeaderName::Other && !name.iter().all(|&b| is_token(b))) {
        return Err(bad());
    }
    let mut colon = name_end;
    if text.get(colon) != Some(&b':') {
        while matches!(text.get(colon), Some(b' ' | b'\t')) {
            colon += 1;
        }
        if text.get(colon) != Some(&b':') {
            return Err(bad());
        }
    }
    // Usually one space after the colon.
    let mut value_start = start + colon + 1;
    if buf.get(value_start) == Some(&b' ') {
        value_start += 1;
    }
    let value_start = skip_ws(buf, value_start).min(line.end as usize);
    let value = trim_end(buf, Span::new(value_start, line.end as usize));
    Ok(Header {
        id,
        name: Span::new(start, start + name_end),
        value,
        line: Span::new(start, next),
    })
}

// Word-at-a-time scans (see [`scan::word`]): names and the Request-URI are
// short, so a memchr call costs more than it saves, and a byte loop is ~6
// instructions a byte.

/// Offset of the first `:`, SP or HTAB in `text`, or its length.
#[inline(always)]
fn find_colon_or_ws(text: &[u8]) -> usize {
    let mut i = 0;
    while i + 8 <= text.len() {
        let w = word(text, i);
        let hits = bytes_equal(w, b':') | bytes_equal(w, b' ') | bytes_equal(w, b'\t');
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + text[i..]
        .iter()
        .position(|b| matches!(b, b':' | b' ' | b'\t'))
        .unwrap_or(text.len() - i)
}

/// Offset of the first control character, SP or DEL in `text`, if any.
#[inline]
fn find_ctl_or_space(text: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 8 <= text.len() {
        let w = word(text, i);
        let hits = bytes_below(w, b' ' + 1) | bytes_equal(w, 0x7f);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    text[i..]
        .iter()
        .position(|&b| b <= b' ' || b == 0x7f)
        .map(|p| i + p)
}

fn check_version(v: &[u8], at: usize) -> Result<()> {
    // Only SIP/2.0 is spoken (RFC 3261 §7.1); the "SIP" token is case-insensitive.
    if v.len() == 7 && v[..4].eq_ignore_ascii_case(b"SIP/") && &v[4..] == b"2.0" {
        Ok(())
    } else {
        Err(ParseError::new(ErrorKind::BadVersion, at))
    }
}

/// RFC 3261 §25.1 token characters, as a table: the check runs on every byte
/// of every header name.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        b += 1;
    }
    table
};

/// RFC 3261 §25.1 token characters.
#[inline]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

fn skip_ws(buf: &[u8], mut pos: usize) -> usize {
    while pos < buf.len() && matches!(buf[pos], b' ' | b'\t') {
        pos += 1;
    }
    pos
}

fn trim_end(buf: &[u8], span: Span) -> Span {
    let mut end = span.end as usize;
    let start = span.start as usize;
    while end > start && matches!(buf[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    Span::new(start, end)
}

/// Whether Kamailio's CSeq parser reads `v` (trimmed): a number and a
/// method, each a run of anything but white space, one or more SP/HTAB
/// between them and nothing after. The number is not checked here (Kamailio
/// hands `CSeq: x INVITE` to the script and `sanity_check` answers `400
/// CSeq number is illegal`).
fn cseq_reads(v: &[u8]) -> bool {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let Some(gap) = v.iter().position(ws) else {
        return false;
    };
    let rest = &v[gap..];
    let Some(m) = rest.iter().position(|b| !ws(b)) else {
        return false;
    };
    // Only SP/HTAB between the two (a fold there leaves no method).
    gap > 0 && rest[..m].iter().all(|b| matches!(b, b' ' | b'\t')) && !rest[m..].iter().any(ws)
}

/// Whether Kamailio's To parser reads `v` (trimmed): not empty, a quoted
/// display name closed, an opening `<` closed. The URI itself is not
/// checked there (`To: garbage` and `To: <sip:a@[::1>` are routed).
fn to_reads(v: &[u8]) -> bool {
    if v.is_empty() {
        return false;
    }
    let mut i = 0;
    if v[0] == b'"' {
        i = 1;
        loop {
            match v.get(i) {
                None => return false,
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
    }
    match memchr::memchr(b'<', &v[i..]) {
        Some(lt) => memchr::memchr(b'>', &v[i + lt..]).is_some(),
        None => true,
    }
}

/// Content-Length = 1*DIGIT, bounded so it cannot overflow.
fn content_length_value(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    fn parse(b: &[u8]) -> Result<Message> {
        Message::parse(Bytes::copy_from_slice(b))
    }

    #[test]
    fn parses_request_line_headers_and_body() {
        let m = parse(INVITE).unwrap();
        assert!(m.is_request());
        assert_eq!(m.method_bytes(), b"INVITE");
        assert_eq!(m.request_uri().unwrap(), b"sip:bob@biloxi.example.com");
        assert_eq!(m.headers().len(), 9);
        assert_eq!(
            m.call_id().unwrap(),
            b"a84b4c76e66710@pc33.atlanta.example.com"
        );
        assert_eq!(m.header_value(HeaderName::MaxForwards).unwrap(), b"70");
        assert_eq!(m.body(), b"v=0\n");
        assert_eq!(m.len(), INVITE.len());
        assert_eq!(
            m.slice(m.start_line()),
            b"INVITE sip:bob@biloxi.example.com SIP/2.0"
        );
        assert!(!m.is_http());
        assert_eq!(m.request_version(), Some(&b"SIP/2.0"[..]));
    }

    #[test]
    fn http_requests_are_told_apart_by_their_version() {
        let m = parse(b"GET /RPC HTTP/1.0  \r\nHost: h\r\n\r\n").unwrap();
        assert!(m.is_http() && m.is_request());
        assert_eq!(m.request_uri(), Some(&b"/RPC"[..]));
        assert_eq!(m.request_version(), Some(&b"HTTP/1.0"[..]));
        for bad in [
            &b"GET /RPC HTTP/1.0\r\n\r\n"[..],
            b"GET /RPC HTTP/1.2\r\nHost: h\r\n\r\n",
            b"GET /RPC HTTP/2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let reply = parse(b"SIP/2.0 200 OK\r\n\r\n").unwrap();
        assert!(!reply.is_http());
        assert_eq!(reply.request_version(), None);
    }

    #[test]
    fn to_tag_is_read_once_as_the_name_addr_reads_it() {
        for (to, want) in [
            ("To: <sip:b@x>;tag=abc\r\n", Some(Some(&b"abc"[..]))),
            ("To: <sip:b@x>\r\n", Some(None)),
            ("t: sip:b@x ;TAG = q\r\n", Some(Some(&b"q"[..]))),
            ("To: <sip:b@x;tag=uri>;x=1\r\n", Some(None)),
            ("To: <sip:b@x>;tag=\r\n", None),
            ("To: <>\r\n", None),
            ("", None),
        ] {
            let text = format!("BYE sip:x SIP/2.0\r\n{to}Call-ID: a\r\n\r\n");
            let m = parse(text.as_bytes()).unwrap();
            let reference = m
                .header_value(HeaderName::To)
                .and_then(|v| NameAddr::parse(v).ok())
                .map(|na| na.tag());
            assert_eq!(m.to_tag(), want, "{to:?}");
            assert_eq!(m.to_tag(), reference, "{to:?}");
        }
    }

    #[test]
    fn parses_status_line() {
        let m =
            parse(b"SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(m.status(), Some(180));
        assert_eq!(m.reason().unwrap(), b"Ringing");
        assert_eq!(m.method_bytes(), b"INVITE");
        let m = parse(b"SIP/2.0 404 No\r\nCSeq: x  OPTIONS \r\n\r\n").unwrap();
        assert_eq!(
            (m.method_bytes(), m.cseq_number()),
            (&b"OPTIONS"[..], Some(&b"x"[..]))
        );
        let m = parse(b"SIP/2.0 200 \r\n\r\n").unwrap();
        assert_eq!(m.reason().unwrap(), b"");
        let m = parse(b"SIP/2.0 200\r\n\r\n").unwrap();
        assert_eq!(m.reason().unwrap(), b"");
    }

    #[test]
    fn compact_forms_folding_and_spacing() {
        let m = parse(
            b"OPTIONS sip:x SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\nSubject  :   a\r\n  folded\r\n\tagain  \r\ni:abc\r\nl: 0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            m.header_value(HeaderName::Via).unwrap(),
            b"SIP/2.0/UDP a;branch=z9hG4bK1"
        );
        assert_eq!(
            m.header_value(HeaderName::Subject).unwrap(),
            b"a\r\n  folded\r\n\tagain"
        );
        assert_eq!(m.call_id().unwrap(), b"abc");
        assert_eq!(m.headers_named(b"SUBJECT").count(), 1);
        assert_eq!(m.headers_named(b"i").count(), 1);
        let subj = m.header(HeaderName::Subject).unwrap();
        assert_eq!(
            m.slice(subj.line),
            b"Subject  :   a\r\n  folded\r\n\tagain  \r\n"
        );
    }

    #[test]
    fn value_starting_on_continuation_line() {
        let m = parse(b"OPTIONS sip:x SIP/2.0\r\nSubject:\r\n hello\r\n\r\n").unwrap();
        assert_eq!(m.header_value(HeaderName::Subject).unwrap(), b"hello");
    }

    #[test]
    fn leading_crlf_and_bare_lf() {
        let m = parse(b"\r\n\r\nOPTIONS sip:x SIP/2.0\nCall-ID: a\n\n").unwrap();
        assert_eq!(m.call_id().unwrap(), b"a");
        assert!(m.body().is_empty());
    }

    #[test]
    fn content_length_cuts_and_checks_body() {
        let m = parse(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 2\r\n\r\nhello").unwrap();
        assert_eq!(m.body(), b"he");
        let m = parse(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 20\r\n\r\nhello").unwrap();
        assert_eq!(
            (m.body(), m.declared_content_length()),
            (&b"hello"[..], Some(20))
        );
        assert!(m.is_body_short());
        assert!(!parse(INVITE).unwrap().is_body_short());
        let e = parse(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: x\r\n\r\nhello").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadContentLength);
        let e =
            parse(b"MESSAGE sip:x SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nhello").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadContentLength);
        let e = parse(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 99999999999999999999\r\n\r\n")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadContentLength);
        let m = parse(b"MESSAGE sip:x SIP/2.0\r\n\r\nno length").unwrap();
        assert_eq!(m.body(), b"no length");
    }

    /// The first header field Kamailio 5.6 refuses, as observed live.
    #[test]
    fn broken_header_is_the_first_field_kamailio_refuses() {
        let base = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
Max-Forwards: 70\r\nX-After: yes\r\nContent-Length: 0\r\n\r\n";
        let with = |from: &str, to: &str| {
            assert!(base.contains(from), "{from}");
            parse(base.replace(from, to).as_bytes()).unwrap()
        };
        assert_eq!(parse(base.as_bytes()).unwrap().broken_header(), None);
        // Read: Kamailio routes these.
        for (from, to) in [
            ("CSeq: 1 OPTIONS", "CSeq: x OPTIONS"),
            ("CSeq: 1 OPTIONS", "CSeq: -1 OPTIONS"),
            ("CSeq: 1 OPTIONS", "CSeq: 99999999999 OPTIONS"),
            ("CSeq: 1 OPTIONS", "CSeq: 1 OPT/IONS"),
            ("CSeq: 1 OPTIONS", "CSeq: 1  OPTIONS  "),
            ("To: <sip:c@d>", "To: garbage"),
            ("To: <sip:c@d>", "To: <sip:c@[::1>"),
            ("To: <sip:c@d>", "To: <sip:c@d>;tag=a;tag=b"),
            ("To: <sip:c@d>", "To: \"q\\\" <\" <sip:c@d>"),
            ("X-After: yes", "X-After: yes\r\nExpires: 5\r\nExpires: 6"),
            (
                "X-After: yes",
                "X-After: yes\r\nContact: <sip:x@y>\r\nRoute: <sip:a>",
            ),
            (
                "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
                "Via: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/TCP g",
            ),
        ] {
            assert_eq!(with(from, to).broken_header(), None, "{to}");
        }
        // Refused: the index of the field.
        for (from, to, at) in [
            ("CSeq: 1 OPTIONS", "CSeq: 1", 4),
            ("CSeq: 1 OPTIONS", "CSeq: ", 4),
            ("CSeq: 1 OPTIONS", "CSeq: 1 OPTIONS x", 4),
            ("To: <sip:c@d>", "To: <sip:c@d", 2),
            ("To: <sip:c@d>", "To: \"open <sip:c@d>", 2),
            ("To: <sip:c@d>", "To: ", 2),
            ("Max-Forwards: 70", "Max-Forwards: 70\r\nMax-Forwards: 3", 6),
            ("X-After: yes", "X-After: yes\r\nFrom: <sip:e@f>", 7),
            ("X-After: yes", "X-After: yes\r\nt: <sip:e@f>", 7),
            ("X-After: yes", "X-After: yes\r\ni: other", 7),
            ("X-After: yes", "X-After: yes\r\nCSeq: 1 OPTIONS", 7),
            // The second one is refused: here the original, after it.
            ("X-After: yes", "X-After: yes\r\nl: 0", 8),
            ("X-After: yes", "X-After: yes\r\nVia: garbage @@", 7),
            ("X-After: yes", "X-After: yes\r\nVia: SIP/3.0/UDP g", 7),
            (
                "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
                "Via: SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/UDP g;;",
                0,
            ),
            (
                "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
                "Via: SIP/3.0/UDP h",
                0,
            ),
        ] {
            assert_eq!(with(from, to).broken_header(), Some(at), "{to}");
        }
    }

    #[test]
    fn rejects_bad_start_lines() {
        for (text, kind) in [
            (&b""[..], ErrorKind::Empty),
            (b"\r\n\r\n", ErrorKind::Empty),
            (b"INVITE\r\n\r\n", ErrorKind::BadStartLine),
            (b"INVITE sip:x\r\n\r\n", ErrorKind::BadStartLine),
            (b"INVITE sip:x SIP/7.0\r\n\r\n", ErrorKind::BadVersion),
            (b"INVITE sip:a b SIP/2.0\r\n\r\n", ErrorKind::BadUri),
            (b"INV@TE sip:x SIP/2.0\r\n\r\n", ErrorKind::BadMethod),
            (b"SIP/2.0 99 Low\r\n\r\n", ErrorKind::BadStatus),
            (b"SIP/2.0 700 High\r\n\r\n", ErrorKind::BadStatus),
            (b"SIP/2.0 2000 Long\r\n\r\n", ErrorKind::BadStatus),
            (b"SIP/2.1 200 OK\r\n\r\n", ErrorKind::BadVersion),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.kind, kind, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn rejects_bad_header_lines() {
        for (text, kind) in [
            (
                &b"OPTIONS sip:x SIP/2.0\r\nNoColon\r\n\r\n"[..],
                ErrorKind::BadHeaderName,
            ),
            (
                b"OPTIONS sip:x SIP/2.0\r\n: empty\r\n\r\n",
                ErrorKind::BadHeaderName,
            ),
            (
                b"OPTIONS sip:x SIP/2.0\r\nBad Name: x\r\n\r\n",
                ErrorKind::BadHeaderName,
            ),
            (
                b"OPTIONS sip:x SIP/2.0\r\n cont first\r\n\r\n",
                ErrorKind::BadHeaderName,
            ),
            (
                b"OPTIONS sip:x SIP/2.0\r\nA: x\0y\r\n\r\n",
                ErrorKind::BadCharacter,
            ),
            (
                b"OPTIONS sip:x SIP/2.0\r\nA: x\ry\r\n\r\n",
                ErrorKind::BadCharacter,
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.kind, kind, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_message: 100,
            max_headers: 2,
            max_line: 40,
        };
        let big = vec![b'a'; 101];
        assert_eq!(
            Message::parse_with(Bytes::from(big), &limits)
                .unwrap_err()
                .kind,
            ErrorKind::TooLarge
        );
        let many = b"OPTIONS sip:x SIP/2.0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            Message::parse_with(Bytes::from_static(many), &limits)
                .unwrap_err()
                .kind,
            ErrorKind::TooManyHeaders
        );
        let long = b"OPTIONS sip:x SIP/2.0\r\nA: 0123456789012345678901234567890123456789\r\n\r\n";
        assert_eq!(
            Message::parse_with(Bytes::from_static(long), &limits)
                .unwrap_err()
                .kind,
            ErrorKind::LineTooLong
        );
    }

    #[test]
    fn missing_final_empty_line_is_tolerated() {
        let m = parse(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\n").unwrap();
        assert_eq!(m.call_id().unwrap(), b"a");
        assert_eq!(m.headers_end(), m.buf().len());
        let m = parse(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: a").unwrap();
        assert_eq!(m.call_id().unwrap(), b"a");
    }

    #[test]
    fn folded_content_length_is_read_after_the_fold() {
        // HCOLON allows a line fold before the value (RFC 3261 §7.3.1, §25.1).
        let m = parse(b"MESSAGE sip:x SIP/2.0\r\nContent-Length:\r\n  3\r\n\r\nabcdef").unwrap();
        assert_eq!(m.body(), b"abc");
        assert_eq!(m.slice(m.content_length_span().unwrap()), b"3");
        // A fold inside the number is not a number.
        let e = parse(b"MESSAGE sip:x SIP/2.0\r\nl: 1\r\n 0\r\n\r\nabcdefghijk").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadContentLength);
    }

    #[test]
    fn trailing_white_space_after_request_line_version() {
        let m = parse(b"OPTIONS sip:x SIP/2.0  \t\r\nCall-ID: a\r\n\r\n").unwrap();
        assert_eq!(m.request_uri().unwrap(), b"sip:x");
        assert_eq!(
            parse(b"OPTIONS  \r\n\r\n").unwrap_err().kind,
            ErrorKind::BadStartLine
        );
    }

    #[test]
    fn white_space_only_continuation_lines() {
        for text in [
            &b"OPTIONS sip:x SIP/2.0\r\nSubject: a\r\n   \r\n\r\n"[..],
            b"OPTIONS sip:x SIP/2.0\r\nSubject: a\r\n \t ",
            b"OPTIONS sip:x SIP/2.0\r\nSubject:\r\n   \r\n\r\n",
            b"OPTIONS sip:x SIP/2.0\r\nSubject:\r\n   ",
        ] {
            let m = parse(text).unwrap();
            let v = m.header_value(HeaderName::Subject).unwrap();
            assert!(v == b"a" || v.is_empty(), "{v:?}");
        }
    }

    #[test]
    fn end_of_headers_is_reported() {
        assert!(parse(INVITE).unwrap().has_end_of_headers());
        assert!(parse(b"OPTIONS sip:x SIP/2.0\n\n")
            .unwrap()
            .has_end_of_headers());
        assert!(!parse(b"OPTIONS sip:x SIP/2.0\r\nA: b\r\n")
            .unwrap()
            .has_end_of_headers());
    }

    #[test]
    fn word_scans_agree_with_byte_loops() {
        let mut text = Vec::new();
        for len in 0..40 {
            for pos in 0..=len {
                for &b in &[b':', b' ', b'\t', b'\0', 0x1f, 0x7f, 0x80, 0xff, b'a', 0x21] {
                    text.clear();
                    text.resize(len, b'x');
                    if pos < len {
                        text[pos] = b;
                    }
                    let colon = text
                        .iter()
                        .position(|b| matches!(b, b':' | b' ' | b'\t'))
                        .unwrap_or(len);
                    assert_eq!(find_colon_or_ws(&text), colon, "{text:?}");
                    let ctl = text.iter().position(|&b| b <= b' ' || b == 0x7f);
                    assert_eq!(find_ctl_or_space(&text), ctl, "{text:?}");
                }
            }
        }
        // Several hits in one word: the first wins, whatever follows it.
        assert_eq!(find_colon_or_ws(b"ab\t: \t:cdefgh"), 2);
        assert_eq!(find_ctl_or_space(b"abc\x7f\0 \x01defgh"), Some(3));
        assert_eq!(find_ctl_or_space(b"\x01\x00abcdefgh"), Some(0));
    }

    /// The memchr3 line splitter `line` replaced.
    fn reference_line(buf: &[u8], pos: usize, limits: &Limits) -> Result<(Span, usize)> {
        let mut from = pos;
        let (end, next) = loop {
            let rest = &buf[from..];
            match memchr::memchr3(b'\n', b'\r', b'\0', rest) {
                Some(i) => match rest[i] {
                    b'\n' => break (from + i, from + i + 1),
                    b'\r' if rest.get(i + 1) == Some(&b'\n') => break (from + i, from + i + 2),
                    b'\0' if escaped(&buf[pos..from + i]) => from += i + 1,
                    _ => return Err(ParseError::new(ErrorKind::BadCharacter, from + i)),
                },
                None => break (buf.len(), buf.len()),
            }
        };
        if end - pos > limits.max_line {
            return Err(ParseError::new(ErrorKind::LineTooLong, pos));
        }
        Ok((Span::new(pos, end), next))
    }

    proptest::proptest! {
        /// The word-at-a-time search finds the first byte below 0x0e.
        #[test]
        fn control_search_matches_the_byte_loop(
            buf in proptest::collection::vec(proptest::sample::select(b"ab:\r\n\0\t\x0b\x0d\x0e\x80\xff ".to_vec()), 0..80),
            pos in 0usize..80,
        ) {
            let pos = pos.min(buf.len());
            let want = buf[pos..].iter().position(|&b| b < 0x0e).map(|p| pos + p);
            proptest::prop_assert_eq!(find_control(&buf, pos), want);
        }

        /// The same on long runs of text with at most two control bytes.
        #[test]
        fn control_search_in_long_runs(
            len in 0usize..80,
            at in proptest::collection::vec((0usize..80, proptest::sample::select(b"\r\n\0\t\x0d".to_vec())), 0..3),
            pos in 0usize..80,
        ) {
            let mut buf = vec![b'x'; len];
            for (k, b) in at {
                if k < len {
                    buf[k] = b;
                }
            }
            let pos = pos.min(buf.len());
            let want = buf[pos..].iter().position(|&b| b < 0x0e).map(|p| pos + p);
            proptest::prop_assert_eq!(find_control(&buf, pos), want);
        }
    }

    proptest::proptest! {
        /// The word-at-a-time line splitter splits as the memchr3 one did.
        #[test]
        fn line_matches_the_memchr_splitter(
            buf in proptest::collection::vec(proptest::sample::select(b"ab:\r\n\0\\\t\x0b\x0d\x0e\x80 ".to_vec()), 0..64),
            pos in 0usize..64,
            max_line in 0usize..40,
        ) {
            let limits = Limits { max_line, ..Limits::default() };
            let pos = pos.min(buf.len());
            proptest::prop_assert_eq!(line(&buf, pos, &limits), reference_line(&buf, pos, &limits));
        }
    }

    #[test]
    fn many_headers_spill_without_error() {
        let mut text = b"OPTIONS sip:x SIP/2.0\r\n".to_vec();
        for i in 0..100 {
            text.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
        }
        text.extend_from_slice(b"\r\n");
        let m = parse(&text).unwrap();
        assert_eq!(m.headers().len(), 100);
        assert_eq!(m.headers_named(b"x-h99").count(), 1);
    }
}
