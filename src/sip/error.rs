//! Parse errors with the byte offset where the problem was found.
//!
//! Grouped as rustls groups its errors, by what the caller does next: a
//! request with a [`ErrorKind::is_framing`] error cannot be answered (its
//! transaction identity is unknown) and is dropped; anything else can get a
//! `400` whose reason phrase is [`ErrorKind::reason`].

use std::fmt;

/// What was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    // --- framing: the message as a whole -------------------------------------------------
    /// Nothing but whitespace.
    Empty,
    /// Larger than the configured message size limit.
    TooLarge,
    /// More header fields than the configured limit.
    TooManyHeaders,
    /// A line longer than the configured limit.
    LineTooLong,
    /// No empty line ending the header section.
    NoEndOfHeaders,
    /// The first line is neither a request line nor a status line.
    BadStartLine,
    /// Not `SIP/2.0`.
    BadVersion,
    /// A method that is not an RFC 3261 token.
    BadMethod,
    /// A status code outside 100..=699.
    BadStatus,
    /// A header line with no `:` or an empty or invalid field name.
    BadHeaderName,
    /// Content-Length that is not a number, repeated with different values, or too large.
    BadContentLength,
    /// The body is shorter than Content-Length says (stream framing: need more bytes).
    Truncated,
    /// A control character (NUL, bare CR…) where the grammar allows none.
    BadCharacter,

    // --- header values (typed views) ------------------------------------------------------
    /// A URI that does not follow RFC 3261 §19.1 / RFC 3966.
    BadUri,
    /// A host that is neither a hostname, an IPv4 address nor an IPv6 reference.
    BadHost,
    /// A port that is not a number in 0..=65535.
    BadPort,
    /// A name-addr / addr-spec (From, To, Contact, Route…) that cannot be read.
    BadNameAddr,
    /// A quoted string with no closing quote or a bad escape.
    BadQuotedString,
    /// A `;name=value` parameter that cannot be read.
    BadParam,
    /// A Via that cannot be read.
    BadVia,
    /// A CSeq that cannot be read.
    BadCSeq,
    /// A number (Max-Forwards, Expires, q…) that is not one or is out of range.
    BadNumber,
    /// An Authorization / Proxy-Authorization value that cannot be read.
    BadAuth,
    /// A header the operation needs is absent.
    MissingHeader,
}

impl ErrorKind {
    /// Whether the message cannot even be framed, so no reply can be built.
    pub fn is_framing(self) -> bool {
        matches!(
            self,
            ErrorKind::Empty
                | ErrorKind::TooLarge
                | ErrorKind::TooManyHeaders
                | ErrorKind::LineTooLong
                | ErrorKind::NoEndOfHeaders
                | ErrorKind::BadStartLine
                | ErrorKind::BadVersion
                | ErrorKind::BadHeaderName
                | ErrorKind::BadContentLength
                | ErrorKind::Truncated
                | ErrorKind::BadCharacter
        )
    }

    /// A short reason phrase, fit for a `400` reply.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::Empty => "Empty Message",
            ErrorKind::TooLarge => "Message Too Large",
            ErrorKind::TooManyHeaders => "Too Many Headers",
            ErrorKind::LineTooLong => "Line Too Long",
            ErrorKind::NoEndOfHeaders => "Missing End Of Headers",
            ErrorKind::BadStartLine => "Bad Start Line",
            ErrorKind::BadVersion => "Bad SIP Version",
            ErrorKind::BadMethod => "Bad Method",
            ErrorKind::BadStatus => "Bad Status Code",
            ErrorKind::BadHeaderName => "Bad Header",
            ErrorKind::BadContentLength => "Bad Content-Length",
            ErrorKind::Truncated => "Truncated Body",
            ErrorKind::BadCharacter => "Bad Character",
            ErrorKind::BadUri => "Bad URI",
            ErrorKind::BadHost => "Bad Host",
            ErrorKind::BadPort => "Bad Port",
            ErrorKind::BadNameAddr => "Bad Address",
            ErrorKind::BadQuotedString => "Bad Quoted String",
            ErrorKind::BadParam => "Bad Parameter",
            ErrorKind::BadVia => "Bad Via",
            ErrorKind::BadCSeq => "Bad CSeq",
            ErrorKind::BadNumber => "Bad Number",
            ErrorKind::BadAuth => "Bad Authorization",
            ErrorKind::MissingHeader => "Missing Header",
        }
    }
}

/// A parse error: what, and the byte offset (into the slice that was parsed) where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ErrorKind,
    pub offset: usize,
}

impl ParseError {
    pub fn new(kind: ErrorKind, offset: usize) -> ParseError {
        ParseError { kind, offset }
    }

    /// The same error with its offset moved by `base` (a view parsed a sub-slice).
    pub fn shifted(self, base: usize) -> ParseError {
        ParseError { kind: self.kind, offset: self.offset + base }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind.reason(), self.offset)
    }
}

impl std::error::Error for ParseError {}

pub type Result<T> = std::result::Result<T, ParseError>;
