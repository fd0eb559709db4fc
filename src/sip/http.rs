//! Replies to HTTP/1.x requests that arrived on a SIP listener (the xhttp
//! module answers them), built the way Kamailio 5.6 builds them: with its
//! stateless SIP reply builder, so an HTTP reply looks like a SIP one.
//!
//! - The status line repeats the request's version (`HTTP/1.0` or
//!   `HTTP/1.1`, as written) with the code and reason given.
//! - Kamailio runs an HTTP request through its SIP code with a Via made up
//!   from the source address (`SIP/2.0/TCP ip:port`, no branch); the reply
//!   copies that Via under the name `Sia`, so that no HTTP client takes it
//!   for an HTTP `Via`. Nothing else of the request is copied.
//! - Then the headers the script added (`append_to_reply`), the
//!   Content-Type when one is given, `Server`, `Content-Length`, the body.
//!
//! No `Date` and no `Connection` header: whether the connection stays open
//! is the script's choice (`set_reply_close()`), not the HTTP version's.

use std::net::SocketAddr;

use super::message::Message;
use super::packet::Proto;

/// What an HTTP reply holds besides what it takes from the request.
#[derive(Debug)]
pub struct HttpReply<'a> {
    pub code: u16,
    pub reason: &'a [u8],
    /// The transport and address the request came from (the `Sia` line).
    pub proto: Proto,
    pub source: SocketAddr,
    /// Whole header lines (`Name: value\r\n`) to add.
    pub extra_headers: &'a [u8],
    /// Empty for no Content-Type header.
    pub content_type: &'a [u8],
    /// `Server:` value; empty for none.
    pub server: &'a [u8],
    pub body: &'a [u8],
}

/// Writes the reply to `req` (an HTTP request) into `out` (cleared first).
pub fn build(req: &Message, spec: &HttpReply<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(req.request_version().unwrap_or(b"HTTP/1.1"));
    out.push(b' ');
    // Three digits, as Kamailio writes any code it accepts (100..=700).
    let code = spec.code.min(999);
    out.extend_from_slice(&[
        b'0' + (code / 100) as u8,
        b'0' + (code / 10 % 10) as u8,
        b'0' + (code % 10) as u8,
    ]);
    out.push(b' ');
    out.extend_from_slice(spec.reason);
    out.extend_from_slice(b"\r\nSia: SIP/2.0/");
    out.extend_from_slice(match spec.proto {
        Proto::Tls => b"TLS",
        Proto::Udp => b"UDP",
        _ => b"TCP",
    });
    out.push(b' ');
    match spec.source {
        SocketAddr::V4(a) => out.extend_from_slice(a.to_string().as_bytes()),
        SocketAddr::V6(a) => {
            out.push(b'[');
            out.extend_from_slice(a.ip().to_string().as_bytes());
            out.extend_from_slice(b"]:");
            out.extend_from_slice(itoa::Buffer::new().format(a.port()).as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(spec.extra_headers);
    if !spec.content_type.is_empty() {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(spec.content_type);
        out.extend_from_slice(b"\r\n");
    }
    if !spec.server.is_empty() {
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(spec.server);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(spec.body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(spec.body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reply(req: &[u8], spec: &HttpReply<'_>) -> String {
        let req = Message::parse(Bytes::copy_from_slice(req)).unwrap();
        let mut out = Vec::new();
        build(&req, spec, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn spec<'a>(source: &str, body: &'a [u8]) -> HttpReply<'a> {
        HttpReply {
            code: 200,
            reason: b"OK",
            proto: Proto::Tcp,
            source: source.parse().unwrap(),
            extra_headers: b"",
            content_type: b"text/html",
            server: b"kamailio (5.6.3 (x86_64/linux))",
            body,
        }
    }

    #[test]
    fn as_kamailio_writes_it() {
        // Kamailio 5.6.3, stock config, `GET /foo?x=1` (recorded).
        let got = reply(
            b"GET /foo?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            &spec(
                "127.0.0.1:40118",
                b"<html><body>Wrong URL /foo?x=1</body></html>",
            ),
        );
        assert_eq!(
            got,
            "HTTP/1.1 200 OK\r\nSia: SIP/2.0/TCP 127.0.0.1:40118\r\nContent-Type: text/html\r\n\
             Server: kamailio (5.6.3 (x86_64/linux))\r\nContent-Length: 44\r\n\r\n\
             <html><body>Wrong URL /foo?x=1</body></html>"
        );
    }

    #[test]
    fn version_source_and_headers() {
        let mut s = spec("[::1]:5070", b"");
        s.code = 403;
        s.reason = b"Forbidden";
        s.proto = Proto::Tls;
        s.content_type = b"";
        s.server = b"";
        s.extra_headers = b"X-A: 1\r\n";
        // The request's own Via is not copied: the reply names its source.
        let got = reply(
            b"POST /RPC http/1.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n",
            &s,
        );
        assert_eq!(
            got,
            "http/1.0 403 Forbidden\r\nSia: SIP/2.0/TLS [::1]:5070\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
