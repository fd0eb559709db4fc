//! Cutting SIP messages out of a byte stream (RFC 3261 §18.3), sans-IO.
//!
//! "In the case of stream-oriented transports such as TCP, the Content-Length
//! header field indicates the size of the body. All stream-oriented transports
//! MUST use Content-Length." So a message is its header section up to the
//! first empty line, plus Content-Length bytes. Between messages:
//!
//! - `CRLF CRLF` is a keep-alive ping, answered with a `CRLF` pong
//!   (RFC 5626 §4.4.1);
//! - a lone `CRLF` is ignored (RFC 3261 §7.5: "implementations processing SIP
//!   messages over stream-oriented transports MUST ignore any CRLF appearing
//!   before the start-line").
//!
//! HTTP/1.x requests arrive on the same listeners (Kamailio's xhttp answers
//! them) and are framed the same way: headers, then Content-Length bytes. An
//! HTTP/1.1 request with `Expect: 100-continue` gets [`CONTINUE`] as soon as
//! its headers are read (RFC 9110 §10.1.1), before its body, as Kamailio's
//! TCP reader sends it; chunked bodies are not read (Kamailio does not
//! answer them either).
//!
//! A message without Content-Length is a framing error that closes the
//! connection (we cannot know where the next message starts, and answering
//! 400 would need the sans-IO engine to see a message whose end is a guess),
//! unless [`Limits::accept_no_cl`] (Kamailio's `tcp_accept_no_cl`) says to
//! take it as having no body. So are a Content-Length that is not a number,
//! two that disagree, and a message (headers and body) over
//! [`Limits::max_message`]: the buffer of a connection never holds more than
//! one maximal message plus one read.
//!
//! Messages are split off the connection's buffer without copying: each is
//! one `Bytes` (DESIGN.md "Parsing and editing").

use bytes::{Buf, Bytes, BytesMut};

/// What a stream may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limits {
    /// Largest message, headers and body.
    pub max_message: usize,
    /// A message without Content-Length has no body (else: framing error).
    pub accept_no_cl: bool,
}

/// One thing found in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Frame {
    Message(Bytes),
    /// `CRLF CRLF`: answer with [`PONG`].
    Ping,
    /// The headers of an HTTP/1.1 request that expects `100 Continue`
    /// (answer with [`CONTINUE`]); its message follows once complete.
    Continue,
}

/// The answer to a keep-alive ping.
pub(super) const PONG: &[u8] = b"\r\n";

/// The interim answer to `Expect: 100-continue`, byte for byte Kamailio's.
pub(super) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n";

/// Why a stream cannot be framed any further (the connection is closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FrameError {
    /// No end of headers within `max_message` bytes.
    HeadersTooLong,
    /// Headers plus Content-Length exceed `max_message`.
    TooLong(usize),
    NoContentLength,
    BadContentLength,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::HeadersTooLong => f.write_str("header section too long"),
            FrameError::TooLong(n) => write!(f, "message of {n} bytes too long"),
            FrameError::NoContentLength => f.write_str("message without Content-Length"),
            FrameError::BadContentLength => f.write_str("unreadable Content-Length"),
        }
    }
}

/// The framing state of one connection: where the search for the end of the
/// headers resumes, and the length of the message being read once known.
#[derive(Debug, Default)]
pub(super) struct Framer {
    scanned: usize,
    total: Option<usize>,
}

impl Framer {
    /// The next frame at the front of `buf` (consumed from it), `Ok(None)`
    /// when more bytes are needed.
    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        limits: Limits,
    ) -> Result<Option<Frame>, FrameError> {
        if self.total.is_none() {
            loop {
                match crlf_prefix(buf) {
                    Prefix::Ping => {
                        buf.advance(4);
                        return Ok(Some(Frame::Ping));
                    }
                    Prefix::Lone => buf.advance(2),
                    Prefix::Undecided => return Ok(None),
                    Prefix::None => break,
                }
            }
            let from = self.scanned.saturating_sub(3).min(buf.len());
            let Some(end) = memchr::memmem::find(&buf[from..], b"\r\n\r\n").map(|i| from + i)
            else {
                self.scanned = buf.len();
                if buf.len() > limits.max_message {
                    return Err(FrameError::HeadersTooLong);
                }
                return Ok(None);
            };
            let headers = end + 4;
            let body = match content_length(&buf[..end + 2])? {
                Some(n) => n,
                None if limits.accept_no_cl => 0,
                None => return Err(FrameError::NoContentLength),
            };
            let total = headers.saturating_add(body);
            if total > limits.max_message {
                return Err(FrameError::TooLong(total));
            }
            self.total = Some(total);
            if expects_continue(&buf[..end + 2]) {
                return Ok(Some(Frame::Continue));
            }
        }
        match self.total {
            Some(total) if buf.len() >= total => {
                *self = Framer::default();
                Ok(Some(Frame::Message(buf.split_to(total).freeze())))
            }
            _ => Ok(None),
        }
    }
}

enum Prefix {
    /// `CRLF CRLF`.
    Ping,
    /// `CRLF` followed by something else.
    Lone,
    /// `CRLF` or `CRLF CR` so far.
    Undecided,
    /// Not a CRLF: a message starts (or nothing is buffered).
    None,
}

fn crlf_prefix(buf: &[u8]) -> Prefix {
    match buf {
        [b'\r', b'\n', b'\r', b'\n', ..] => Prefix::Ping,
        [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => Prefix::Undecided,
        [b'\r', b'\n', ..] => Prefix::Lone,
        _ => Prefix::None,
    }
}

/// Whether a header section is an HTTP/1.1 request's with `Expect:
/// 100-continue`. A SIP message is told by its first line alone.
fn expects_continue(headers: &[u8]) -> bool {
    let Some(nl) = memchr::memchr(b'\n', headers) else {
        return false;
    };
    let first = headers[..nl].trim_ascii_end();
    let http11 = first.len() > 8 && first[first.len() - 8..].eq_ignore_ascii_case(b"HTTP/1.1");
    http11
        && headers[nl + 1..].split(|b| *b == b'\n').any(|line| {
            memchr::memchr(b':', line).is_some_and(|colon| {
                line[..colon]
                    .trim_ascii_end()
                    .eq_ignore_ascii_case(b"expect")
                    && line[colon + 1..]
                        .trim_ascii()
                        .eq_ignore_ascii_case(b"100-continue")
            })
        })
}

/// The Content-Length (or compact `l`) of a header section (each line ending
/// in CRLF), `None` if there is none. Two that disagree, or a value that is
/// not a number, are errors.
fn content_length(headers: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut found = None;
    // The first line is the start-line; continuation lines start with SP/HTAB.
    for line in headers.split(|b| *b == b'\n').skip(1) {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line[..colon].trim_ascii_end();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::BadContentLength);
        }
        let n = value
            .iter()
            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return Err(FrameError::BadContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_message: 1000,
        accept_no_cl: false,
    };

    fn msg(body: &str) -> String {
        format!(
            "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// Feeds `chunks` one after the other; returns every frame, or the error.
    fn feed(chunks: &[&[u8]], limits: Limits) -> Result<Vec<Frame>, FrameError> {
        let mut framer = Framer::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(frame) = framer.next(&mut buf, limits)? {
                frames.push(frame);
            }
        }
        Ok(frames)
    }

    fn text(frame: &Frame) -> String {
        match frame {
            Frame::Message(m) => String::from_utf8_lossy(m).into_owned(),
            Frame::Ping => "PING".into(),
            Frame::Continue => "CONTINUE".into(),
        }
    }

    #[test]
    fn two_messages_in_one_segment() {
        let both = format!("{}{}", msg("hello"), msg(""));
        let frames = feed(&[both.as_bytes()], LIMITS).unwrap();
        assert_eq!(
            frames.iter().map(text).collect::<Vec<_>>(),
            [msg("hello"), msg("")]
        );
    }

    #[test]
    fn byte_by_byte() {
        let m = msg("body split over many reads");
        let chunks: Vec<&[u8]> = m.as_bytes().chunks(1).collect();
        let frames = feed(&chunks, LIMITS).unwrap();
        assert_eq!(frames.iter().map(text).collect::<Vec<_>>(), [m]);
    }

    #[test]
    fn keepalives_between_messages() {
        let m = msg("x");
        let frames = feed(
            &[
                b"\r\n\r\n",
                b"\r\n",
                m.as_bytes(),
                b"\r\n",
                b"\r",
                b"\n",
                b"\r\n\r\n",
            ],
            LIMITS,
        )
        .unwrap();
        // Ping, lone CRLF ignored, the message, then CRLF + CR LF = a ping.
        assert_eq!(
            frames.iter().map(text).collect::<Vec<_>>(),
            ["PING".to_string(), m, "PING".into(), "PING".into()]
        );
    }

    #[test]
    fn compact_and_odd_spacing() {
        let m = "BYE sip:a SIP/2.0\r\nl :  3 \r\n\r\nabcNEXT";
        let frames = feed(&[m.as_bytes()], LIMITS).unwrap();
        assert_eq!(text(&frames[0]), "BYE sip:a SIP/2.0\r\nl :  3 \r\n\r\nabc");
    }

    #[test]
    fn errors() {
        let no_cl = b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n";
        assert_eq!(feed(&[no_cl], LIMITS), Err(FrameError::NoContentLength));
        let accepting = Limits {
            accept_no_cl: true,
            ..LIMITS
        };
        assert_eq!(feed(&[no_cl], accepting).unwrap().len(), 1);
        let bad = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(feed(&[bad], LIMITS), Err(FrameError::BadContentLength));
        let two = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\n";
        assert_eq!(feed(&[two], LIMITS), Err(FrameError::BadContentLength));
        let big = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 99999\r\n\r\n";
        assert!(matches!(feed(&[big], LIMITS), Err(FrameError::TooLong(_))));
        let endless = vec![b'a'; 1001];
        assert_eq!(feed(&[&endless], LIMITS), Err(FrameError::HeadersTooLong));
        // Just under the limit: still waiting.
        assert_eq!(feed(&[&endless[..1000]], LIMITS), Ok(vec![]));
    }

    #[test]
    fn http_requests_are_framed_like_sip() {
        let post = b"POST /RPC HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}";
        let get = b"GET /x HTTP/1.0\r\nHost: h\r\n\r\n";
        let accepting = Limits {
            accept_no_cl: true,
            ..LIMITS
        };
        let frames = feed(&[post, get], accepting).unwrap();
        assert_eq!(
            frames.iter().map(text).collect::<Vec<_>>(),
            [
                String::from_utf8_lossy(post).into_owned(),
                String::from_utf8_lossy(get).into_owned()
            ]
        );
        // Without tcp_accept_no_cl a GET without Content-Length is a framing error, as for SIP.
        assert_eq!(feed(&[get], LIMITS), Err(FrameError::NoContentLength));
    }

    #[test]
    fn expect_100_continue_is_answered_before_the_body() {
        let head = b"POST /RPC HTTP/1.1\r\nexpect :  100-Continue \r\nContent-Length: 2\r\n\r\n";
        let frames = feed(&[head], LIMITS).unwrap();
        assert_eq!(frames, [Frame::Continue]);
        let frames = feed(&[head, b"{", b"}"], LIMITS).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], Frame::Continue);
        assert!(text(&frames[1]).ends_with("\r\n\r\n{}"));
        // HTTP/1.0 and SIP know no 100-continue.
        for other in [
            &b"POST /RPC HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"[..],
            b"OPTIONS sip:a SIP/2.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        ] {
            let frames = feed(&[other], LIMITS).unwrap();
            assert!(matches!(frames[..], [Frame::Message(_)]), "{frames:?}");
        }
    }

    #[test]
    fn never_panics_on_arbitrary_input() {
        let mut seed = 0x1234_5678u64;
        for _ in 0..2000 {
            let mut chunk = Vec::new();
            for _ in 0..(seed % 64) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let pick = b"\r\n:lL0123456789 abcContent-Length";
                chunk.push(pick[(seed >> 33) as usize % pick.len()]);
            }
            let _ = feed(&[&chunk, &chunk, b"\r\n\r\n"], LIMITS);
        }
    }
}
