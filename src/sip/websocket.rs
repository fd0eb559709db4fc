//! SIP over WebSocket (RFC 7118), sans-IO: the opening handshake's answer
//! (RFC 6455 §4.2) and the frame codec (RFC 6455 §5).
//!
//! The handshake is judged as Kamailio 5.6's websocket module judges it
//! (checked live): `Upgrade` must contain `websocket` and `Connection`
//! `upgrade` (any case, anywhere in the value), `Sec-WebSocket-Key` must be
//! present, `Sec-WebSocket-Protocol` must contain `sip` (so `sips` passes),
//! and `Sec-WebSocket-Version` must be `13`. The method and `Host` are not
//! checked. A missing or wrong header is answered `400 Bad Request`, a
//! version other than 13 `426 Upgrade Required`, and the connection closes.
//!
//! Frames: a server reads masked frames only ("The server MUST close the
//! connection upon receiving a frame that is not masked", §5.1) and writes
//! unmasked ones; text and binary messages may come in fragments (§5.4),
//! control frames (close, ping, pong) may come between them and are never
//! fragmented, with at most 125 bytes of payload (§5.5).

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use sha1::{Digest, Sha1};

use super::message::Message;

/// RFC 6455 §1.3: the GUID appended to the client's key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`:
/// base64 of the SHA-1 of the key (as sent, trimmed) and the GUID.
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key.trim_ascii());
    h.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// What the server answers an upgrade request: a status line's code and
/// reason, and whole header lines (`Name: value\r\n`), in Kamailio's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeAnswer {
    pub code: u16,
    pub reason: &'static str,
    pub headers: String,
}

impl HandshakeAnswer {
    /// Whether the connection now speaks WebSocket.
    pub fn accepted(&self) -> bool {
        self.code == 101
    }
}

/// Why a handshake is refused (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MissingHeaders,
    Version,
    /// WebSocket switched off (`ws.disable`).
    Disabled,
}

/// Answers the upgrade request `req` (an HTTP request). The only
/// sub-protocol served is `sip`.
pub fn handshake(req: &Message) -> (HandshakeAnswer, Option<Refusal>) {
    let value = |name: &[u8]| {
        req.headers_named(name)
            .next()
            .map(|h| req.value(h).trim_ascii())
    };
    let contains = |v: Option<&[u8]>, what: &[u8]| {
        v.is_some_and(|v| v.windows(what.len()).any(|w| w.eq_ignore_ascii_case(what)))
    };
    let key = value(b"Sec-WebSocket-Key");
    let version = value(b"Sec-WebSocket-Version");
    let complete = contains(value(b"Upgrade"), b"websocket")
        && contains(value(b"Connection"), b"upgrade")
        && key.is_some()
        && version.is_some()
        && contains(value(b"Sec-WebSocket-Protocol"), b"sip");
    if !complete {
        let answer = HandshakeAnswer {
            code: 400,
            reason: "Bad Request",
            headers: "Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n".into(),
        };
        return (answer, Some(Refusal::MissingHeaders));
    }
    if version != Some(b"13") {
        let answer = HandshakeAnswer {
            code: 426,
            reason: "Upgrade Required",
            headers: "Sec-WebSocket-Version: 13\r\n".into(),
        };
        return (answer, Some(Refusal::Version));
    }
    let accept = accept_key(key.unwrap_or_default());
    let answer = HandshakeAnswer {
        code: 101,
        reason: "Switching Protocols",
        headers: format!(
            "Sec-WebSocket-Protocol: sip\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n"
        ),
    };
    (answer, None)
}

/// Frame opcodes (RFC 6455 §5.2).
pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xa;
}

/// Close status codes (RFC 6455 §7.4.1).
pub mod status {
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const TOO_BIG: u16 = 1009;
}

/// What the peer sent, frame by frame, messages reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole text or binary message (a SIP message, RFC 7118 §5.1).
    Message(Bytes),
    /// Answer with a pong carrying the same data (§5.5.2).
    Ping(Bytes),
    Pong(Bytes),
    /// The peer starts the closing handshake: its status code, if any.
    Close(Option<u16>),
}

/// Why a stream cannot be read as WebSocket any further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A client frame without mask (§5.1).
    Unmasked,
    /// Reserved bits set, or an unknown opcode (§5.2).
    Reserved,
    /// A control frame fragmented or over 125 bytes (§5.5).
    BadControl,
    /// A continuation with no message started, or a new message before the
    /// last one ended (§5.4).
    BadFragment,
    /// A message over the size limit.
    TooLong(u64),
}

impl FrameError {
    /// The status code the server closes with.
    pub fn status(self) -> u16 {
        match self {
            FrameError::TooLong(_) => status::TOO_BIG,
            _ => status::PROTOCOL_ERROR,
        }
    }

    /// The reason in the close frame (1002: Kamailio 5.6's, live).
    pub fn reason(self) -> &'static [u8] {
        match self {
            FrameError::TooLong(_) => b"Message too big",
            _ => b"Protocol error",
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Unmasked => f.write_str("websocket frame not masked"),
            FrameError::Reserved => f.write_str("websocket frame with reserved bits or opcode"),
            FrameError::BadControl => f.write_str("websocket control frame fragmented or too long"),
            FrameError::BadFragment => f.write_str("websocket fragments out of order"),
            FrameError::TooLong(n) => write!(f, "websocket message of {n} bytes too long"),
        }
    }
}

/// The reading side of one connection: the message being reassembled.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Fragments of a message whose last frame has not arrived.
    partial: Option<BytesMut>,
}

impl Decoder {
    /// Whether part of a message has arrived (for the read timeout).
    pub fn pending(&self) -> bool {
        self.partial.is_some()
    }

    /// The next event at the front of `buf` (its frames consumed), `Ok(None)`
    /// when more bytes are needed. Messages over `max` bytes are refused.
    pub fn next(&mut self, buf: &mut BytesMut, max: usize) -> Result<Option<Event>, FrameError> {
        loop {
            let Some((fin, op, payload)) = take_frame(buf, max)? else {
                return Ok(None);
            };
            match op {
                opcode::TEXT | opcode::BINARY | opcode::CONTINUATION => {
                    let event = self.data(fin, op, payload, max)?;
                    if event.is_some() {
                        return Ok(event);
                    }
                }
                opcode::CLOSE => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Ok(Some(Event::Close(code)));
                }
                opcode::PING => return Ok(Some(Event::Ping(payload))),
                _ => return Ok(Some(Event::Pong(payload))),
            }
        }
    }

    fn data(
        &mut self,
        fin: bool,
        op: u8,
        payload: Bytes,
        max: usize,
    ) -> Result<Option<Event>, FrameError> {
        match (&mut self.partial, op) {
            (None, opcode::CONTINUATION) | (Some(_), opcode::TEXT | opcode::BINARY) => {
                Err(FrameError::BadFragment)
            }
            (None, _) if fin => Ok(Some(Event::Message(payload))),
            (None, _) => {
                self.partial = Some(BytesMut::from(&payload[..]));
                Ok(None)
            }
            (Some(part), _) => {
                let total = part.len() + payload.len();
                if total > max {
                    return Err(FrameError::TooLong(total as u64));
                }
                part.extend_from_slice(&payload);
                if !fin {
                    return Ok(None);
                }
                let whole = self.partial.take().unwrap_or_default();
                Ok(Some(Event::Message(whole.freeze())))
            }
        }
    }
}

/// One whole frame off the front of `buf`: FIN, opcode, unmasked payload.
fn take_frame(buf: &mut BytesMut, max: usize) -> Result<Option<(bool, u8, Bytes)>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let fin = b0 & 0x80 != 0;
    let op = b0 & 0x0f;
    if b0 & 0x70 != 0 || !matches!(op, 0x0..=0x2 | 0x8..=0xa) {
        return Err(FrameError::Reserved);
    }
    if b1 & 0x80 == 0 {
        return Err(FrameError::Unmasked);
    }
    let control = op >= 0x8;
    let (len, mut at) = match b1 & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut n = [0u8; 8];
            n.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(n), 10)
        }
        n => (u64::from(n), 2),
    };
    if control && (!fin || len > 125) {
        return Err(FrameError::BadControl);
    }
    if len > max as u64 {
        return Err(FrameError::TooLong(len));
    }
    let len = len as usize;
    if buf.len() < at + 4 + len {
        return Ok(None);
    }
    let mask = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    at += 4;
    buf.advance(at);
    let mut payload = buf.split_to(len);
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok(Some((fin, op, payload.freeze())))
}

/// The header of an unmasked, final frame of `len` payload bytes (a server
/// frame): the payload follows it on the wire unchanged.
pub fn frame_header(op: u8, len: usize) -> Bytes {
    let mut h = BytesMut::with_capacity(10);
    h.extend_from_slice(&[0x80 | op]);
    match len {
        0..=125 => h.extend_from_slice(&[len as u8]),
        126..=0xffff => {
            h.extend_from_slice(&[126]);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.extend_from_slice(&[127]);
            h.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    h.freeze()
}

/// A whole server close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &[u8]) -> Bytes {
    // A control frame carries at most 125 bytes (§5.5).
    let reason = &reason[..reason.len().min(123)];
    let mut f = BytesMut::from(&frame_header(opcode::CLOSE, 2 + reason.len())[..]);
    f.extend_from_slice(&code.to_be_bytes());
    f.extend_from_slice(reason);
    f.freeze()
}

/// A whole server control frame (`op` ping or pong) carrying `data`
/// (cut at 125 bytes).
pub fn control_frame(op: u8, data: &[u8]) -> Bytes {
    let data = &data[..data.len().min(125)];
    let mut f = BytesMut::from(&frame_header(op, data.len())[..]);
    f.extend_from_slice(data);
    f.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_section_1_3_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn request(headers: &[&str]) -> Message {
        let mut text = String::from("GET / HTTP/1.1\r\n");
        for h in headers {
            text.push_str(h);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        Message::parse(Bytes::from(text)).unwrap()
    }

    const GOOD: [&str; 5] = [
        "Upgrade: websocket",
        "Connection: keep-alive, Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: foo, SIP",
    ];

    fn without(name: &str) -> Vec<&'static str> {
        GOOD.iter()
            .copied()
            .filter(|h| !h.starts_with(name))
            .collect()
    }

    #[test]
    fn handshake_answers_as_kamailio() {
        let (a, why) = handshake(&request(&GOOD));
        assert_eq!(why, None);
        assert!(a.accepted());
        assert_eq!(
            a.headers,
            "Sec-WebSocket-Protocol: sip\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        );
        for missing in [
            "Upgrade",
            "Connection",
            "Sec-WebSocket-Key",
            "Sec-WebSocket-Version",
            "Sec-WebSocket-Protocol",
        ] {
            let (a, why) = handshake(&request(&without(missing)));
            assert_eq!(
                (a.code, why),
                (400, Some(Refusal::MissingHeaders)),
                "{missing}"
            );
            assert_eq!(
                a.headers,
                "Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n"
            );
        }
        let mut msrp = without("Sec-WebSocket-Protocol");
        msrp.push("Sec-WebSocket-Protocol: msrp");
        assert_eq!(handshake(&request(&msrp)).0.code, 400);
        let mut v8 = without("Sec-WebSocket-Version");
        v8.push("Sec-WebSocket-Version: 8, 13");
        let (a, why) = handshake(&request(&v8));
        assert_eq!(
            (a.code, a.reason, why),
            (426, "Upgrade Required", Some(Refusal::Version))
        );
        assert_eq!(a.headers, "Sec-WebSocket-Version: 13\r\n");
    }

    /// A client frame: masked with `key`.
    fn masked(fin: bool, op: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut f = frame_header(op, payload.len()).to_vec();
        if !fin {
            f[0] &= 0x7f;
        }
        f[1] |= 0x80;
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Event>, FrameError> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(e) = d.next(&mut buf, 1 << 20)? {
            out.push(e);
        }
        assert!(buf.is_empty(), "all consumed");
        Ok(out)
    }

    #[test]
    fn rfc6455_section_5_7_examples() {
        // A single-frame masked text message "Hello".
        let hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            decode_all(&hello).unwrap(),
            [Event::Message(Bytes::from_static(b"Hello"))]
        );
        // The unmasked form is what a server sends, and refused from a client.
        assert_eq!(&frame_header(opcode::TEXT, 5)[..], &[0x81, 0x05]);
        assert_eq!(
            decode_all(&[0x81, 0x05, b'H', b'e', b'l', b'l', b'o']),
            Err(FrameError::Unmasked)
        );
        // A fragmented unmasked text message, masked here: "Hel" then "lo".
        let mut frag = masked(false, opcode::TEXT, b"Hel", [1, 2, 3, 4]);
        // A ping between the fragments is answered on its own (§5.4).
        frag.extend(masked(true, opcode::PING, b"Hello", [9, 9, 9, 9]));
        frag.extend(masked(true, opcode::CONTINUATION, b"lo", [5, 6, 7, 8]));
        assert_eq!(
            decode_all(&frag).unwrap(),
            [
                Event::Ping(Bytes::from_static(b"Hello")),
                Event::Message(Bytes::from_static(b"Hello")),
            ]
        );
        // Unmasked ping / pong "Hello" as the RFC writes them.
        assert_eq!(
            &control_frame(opcode::PING, b"Hello")[..],
            &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        assert_eq!(&control_frame(opcode::PONG, b"Hello")[..2], &[0x8a, 0x05]);
        // 256 bytes and 64 KiB binary messages: 16-bit and 64-bit lengths.
        assert_eq!(
            &frame_header(opcode::BINARY, 256)[..],
            &[0x82, 0x7e, 0x01, 0x00]
        );
        assert_eq!(
            &frame_header(opcode::BINARY, 65536)[..],
            &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn long_frames_arrive_in_pieces() {
        let body = vec![b'x'; 70_000];
        let wire = masked(true, opcode::BINARY, &body, [0xa, 0xb, 0xc, 0xd]);
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        let mut got = None;
        for piece in wire.chunks(4096) {
            assert!(got.is_none());
            buf.extend_from_slice(piece);
            got = d.next(&mut buf, 1 << 20).unwrap();
        }
        assert_eq!(got, Some(Event::Message(Bytes::from(body))));
        let mid = masked(true, opcode::TEXT, b"abc", [1, 1, 1, 1]);
        for cut in 0..mid.len() {
            let mut buf = BytesMut::from(&mid[..cut]);
            assert_eq!(d.next(&mut buf, 100), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn protocol_errors() {
        let k = [1, 2, 3, 4];
        assert_eq!(
            decode_all(&masked(true, opcode::CONTINUATION, b"x", k)),
            Err(FrameError::BadFragment)
        );
        let mut two = masked(false, opcode::TEXT, b"x", k);
        two.extend(masked(true, opcode::TEXT, b"y", k));
        assert_eq!(decode_all(&two), Err(FrameError::BadFragment));
        assert_eq!(
            decode_all(&masked(false, opcode::PING, b"x", k)),
            Err(FrameError::BadControl)
        );
        assert_eq!(
            decode_all(&masked(true, opcode::PING, &[0; 126], k)),
            Err(FrameError::BadControl)
        );
        assert_eq!(
            decode_all(&masked(true, 0x3, b"", k)),
            Err(FrameError::Reserved)
        );
        let mut rsv = masked(true, opcode::TEXT, b"", k);
        rsv[0] |= 0x40;
        assert_eq!(decode_all(&rsv), Err(FrameError::Reserved));
        let mut d = Decoder::default();
        let mut big = BytesMut::from(&masked(true, opcode::TEXT, &[0; 200], k)[..]);
        assert_eq!(d.next(&mut big, 100), Err(FrameError::TooLong(200)));
        assert_eq!(
            decode_all(&masked(true, opcode::CLOSE, &[0x03, 0xe8, b'b'], k)).unwrap(),
            [Event::Close(Some(1000))]
        );
        assert_eq!(
            &close_frame(1000, b"Normal closure")[..4],
            &[0x88, 16, 0x03, 0xe8]
        );
    }
}
