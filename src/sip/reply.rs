//! The stateless reply builder (RFC 3261 §8.2.6): a response to a request
//! copies its Via (all of them, in order), From, To, Call-ID and CSeq (and
//! its Record-Route into a 180–299), adds a To-tag when the request had
//! none, and a `Server` header.

use std::ops::Range;

use super::message::Message;
use super::name::HeaderName;
use super::nameaddr::NameAddr;

/// What to put in a locally generated reply besides the copied headers.
#[derive(Debug, Default)]
pub struct ReplySpec<'a> {
    pub code: u16,
    pub reason: &'a [u8],
    /// A To-tag to add when the request's To has none (RFC 3261 §8.2.6.2).
    pub to_tag: Option<&'a [u8]>,
    /// Changes to the copied Via lines, as ranges of the request buffer
    /// (received / rport on the top Via, RFC 3581 §4).
    pub via_edits: &'a [(Range<usize>, &'a [u8])],
    /// Whole header lines (`Name: value\r\n`) to add (`append_to_reply`, Contact of a 3xx…).
    pub extra_headers: &'a [u8],
    /// `Server:` value; empty for none.
    pub server: &'a [u8],
    /// Body with its Content-Type (`None` for no body).
    pub body: Option<(&'a [u8], &'a [u8])>,
}

/// Writes the reply to `req` into `out` (cleared first).
pub fn build(req: &Message, spec: &ReplySpec<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(itoa::Buffer::new().format(spec.code).as_bytes());
    out.push(b' ');
    out.extend_from_slice(spec.reason);
    out.extend_from_slice(b"\r\n");
    let buf: &[u8] = req.buf();
    for h in req.headers() {
        match h.id {
            HeaderName::Via => copy_with_edits(buf, h.line.range(), spec.via_edits, out),
            HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                out.extend_from_slice(&buf[h.line.range()]);
                ensure_line_end(out);
            }
            // RFC 3261 §12.1.1: a UAS copies the Record-Route into a
            // dialog-forming 18x/2xx; Kamailio copies it into every local
            // reply from 180 to 299 (build_res_buf_from_sip_req).
            HeaderName::RecordRoute if (180..300).contains(&spec.code) => {
                out.extend_from_slice(&buf[h.line.range()]);
                ensure_line_end(out);
            }
            HeaderName::To => {
                let value = req.value(h);
                let needs_tag = spec.to_tag.is_some()
                    && NameAddr::parse(value).map_or(true, |na| na.tag().is_none());
                match spec.to_tag {
                    Some(tag) if needs_tag => {
                        out.extend_from_slice(&buf[h.line.start as usize..h.value.end as usize]);
                        out.extend_from_slice(b";tag=");
                        out.extend_from_slice(tag);
                        out.extend_from_slice(b"\r\n");
                    }
                    _ => {
                        out.extend_from_slice(&buf[h.line.range()]);
                        ensure_line_end(out);
                    }
                }
            }
            _ => {}
        }
    }
    out.extend_from_slice(spec.extra_headers);
    if !spec.server.is_empty() {
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(spec.server);
        out.extend_from_slice(b"\r\n");
    }
    let (body, ctype) = spec.body.unwrap_or((b"", b""));
    if !ctype.is_empty() {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(ctype);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// The last header of a message without a final empty line may lack its line ending.
fn ensure_line_end(out: &mut Vec<u8>) {
    if !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
}

/// Copies `line` from `buf`, applying the edits that fall inside it.
fn copy_with_edits(
    buf: &[u8],
    line: Range<usize>,
    edits: &[(Range<usize>, &[u8])],
    out: &mut Vec<u8>,
) {
    let mut pos = line.start;
    let mut inside: smallvec::SmallVec<[&(Range<usize>, &[u8]); 4]> = edits
        .iter()
        .filter(|(r, _)| r.start >= line.start && r.end <= line.end)
        .collect();
    inside.sort_by_key(|(r, _)| r.start);
    for (range, data) in inside {
        if range.start < pos {
            continue;
        }
        out.extend_from_slice(&buf[pos..range.start]);
        out.extend_from_slice(data);
        pos = range.end;
    }
    out.extend_from_slice(&buf[pos..line.end]);
    ensure_line_end(out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const REQ: &[u8] = b"INVITE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\n\
Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK0\r\n\
Max-Forwards: 70\r\n\
From: <sip:a@a.example>;tag=f1\r\n\
To: Bob <sip:bob@b.example>\r\n\
Call-ID: c1\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn record_route_goes_into_180_to_299_only() {
        let req = b"SUBSCRIBE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
From: <sip:c@b>;tag=f\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 SUBSCRIBE\r\n\
Record-Route: <sip:p1;lr>\r\nrecord-route: <sip:p2;lr>\r\nContent-Length: 0\r\n\r\n";
        let req = Message::parse(Bytes::from_static(req)).unwrap();
        let mut out = Vec::new();
        for (code, copied) in [
            (100, false),
            (180, true),
            (200, true),
            (299, true),
            (300, false),
            (404, false),
        ] {
            let spec = ReplySpec {
                code,
                reason: b"X",
                ..ReplySpec::default()
            };
            build(&req, &spec, &mut out);
            let text = String::from_utf8_lossy(&out);
            assert_eq!(
                text.contains("CSeq: 1 SUBSCRIBE\r\nRecord-Route: <sip:p1;lr>\r\nrecord-route: <sip:p2;lr>\r\n"),
                copied,
                "{code}: {text}"
            );
        }
    }

    #[test]
    fn copies_transaction_headers_and_adds_tag() {
        let req = Message::parse(Bytes::from_static(REQ)).unwrap();
        let rport_at = REQ.windows(5).position(|w| w == b"rport").unwrap();
        let edits = [(rport_at..rport_at + 5, &b"rport=5062;received=10.0.0.2"[..])];
        let spec = ReplySpec {
            code: 404,
            reason: b"Not Found",
            to_tag: Some(b"abc"),
            via_edits: &edits,
            server: b"ringsip",
            ..ReplySpec::default()
        };
        let mut out = Vec::new();
        build(&req, &spec, &mut out);
        assert_eq!(
            out,
            b"SIP/2.0 404 Not Found\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=5062;received=10.0.0.2\r\n\
Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK0\r\n\
From: <sip:a@a.example>;tag=f1\r\n\
To: Bob <sip:bob@b.example>;tag=abc\r\n\
Call-ID: c1\r\n\
CSeq: 1 INVITE\r\n\
Server: ringsip\r\n\
Content-Length: 0\r\n\r\n"
                .to_vec()
        );
        let reply = Message::parse(Bytes::from(out)).unwrap();
        assert_eq!(reply.status(), Some(404));
    }

    #[test]
    fn existing_to_tag_is_kept() {
        let text = String::from_utf8(REQ.to_vec())
            .unwrap()
            .replace("To: Bob <sip:bob@b.example>", "To: <sip:b@b>;tag=x");
        let req = Message::parse(Bytes::from(text)).unwrap();
        let spec = ReplySpec {
            code: 200,
            reason: b"OK",
            to_tag: Some(b"new"),
            ..ReplySpec::default()
        };
        let mut out = Vec::new();
        build(&req, &spec, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("To: <sip:b@b>;tag=x\r\n"), "{s}");
        assert!(!s.contains("new"));
    }
}
