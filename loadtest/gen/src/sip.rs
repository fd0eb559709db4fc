//! Just enough SIP text to build the generator's requests and replies and to
//! read back what it needs from what arrives: status, Call-ID, CSeq method,
//! the headers a UAS copies into its replies. No validation: the peers are
//! the generator itself and the proxy under test.

use std::fmt::Write;
use std::net::SocketAddr;

/// The SDP body sent in INVITE and 200 (about the size sipp sends).
pub const SDP: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// A received message, read once.
pub struct Parsed<'a> {
    /// Status code for a response, `None` for a request.
    pub status: Option<u16>,
    /// Request method (requests only).
    pub method: &'a str,
    pub call_id: &'a str,
    pub cseq_method: &'a str,
    /// Header lines, as received, without their line ends.
    pub lines: Vec<&'a str>,
}

fn is_header(line: &str, long: &str, short: &str) -> Option<usize> {
    let colon = line.find(':')?;
    let name = line[..colon].trim_end();
    if name.eq_ignore_ascii_case(long) || (!short.is_empty() && name.eq_ignore_ascii_case(short)) {
        Some(colon + 1)
    } else {
        None
    }
}

/// The value of header `long` (or its compact form `short`) in a header line.
pub fn value<'a>(line: &'a str, long: &str, short: &str) -> Option<&'a str> {
    is_header(line, long, short).map(|i| line[i..].trim())
}

pub fn parse(data: &[u8]) -> Option<Parsed<'_>> {
    let text = std::str::from_utf8(data).ok()?;
    let head = match text.find("\r\n\r\n") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut it = head.split("\r\n");
    let first = it.next()?;
    let (status, method) = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
        (Some(rest.get(..3)?.parse().ok()?), "")
    } else {
        (None, first.split(' ').next()?)
    };
    let mut p = Parsed {
        status,
        method,
        call_id: "",
        cseq_method: "",
        lines: Vec::with_capacity(16),
    };
    for line in it {
        if let Some(v) = value(line, "Call-ID", "i") {
            p.call_id = v;
        } else if let Some(v) = value(line, "CSeq", "") {
            p.cseq_method = v.split_whitespace().nth(1).unwrap_or("");
        }
        p.lines.push(line);
    }
    Some(p)
}

/// Call number and run id from a Call-ID the generator made (`N-RUN@gen`).
pub fn call_number(call_id: &str, run: u32) -> Option<usize> {
    let (n, rest) = call_id.split_once('-')?;
    let (r, _) = rest.split_once('@')?;
    if r.parse::<u32>().ok()? != run {
        return None;
    }
    n.parse().ok()
}

/// What a UAC needs to send requests of one call or transaction.
pub struct Uac {
    pub local: SocketAddr,
    /// Request-URI of the initial requests.
    pub ruri: String,
    pub run: u32,
}

impl Uac {
    /// An initial request (INVITE, OPTIONS, MESSAGE) of call `n`.
    pub fn initial(&self, out: &mut Vec<u8>, method: &str, n: usize) {
        let body = match method {
            "INVITE" => SDP,
            "MESSAGE" => "ringsip-gen load message\r\n",
            _ => "",
        };
        let ctype = match method {
            "INVITE" => "Content-Type: application/sdp\r\n",
            "MESSAGE" => "Content-Type: text/plain\r\n",
            _ => "",
        };
        let contact = if method == "INVITE" {
            format!("Contact: <sip:gen@{}>\r\n", self.local)
        } else {
            String::new()
        };
        let mut s = String::with_capacity(800);
        let _ = write!(
            s,
            "{method} {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-{run}-{n}-1;rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"gen\" <sip:gen@{local}>;tag={n}\r\n\
             To: <{ruri}>\r\n\
             Call-ID: {n}-{run}@gen\r\n\
             CSeq: 1 {method}\r\n\
             {contact}{ctype}Subject: ringsip load test\r\n\
             Content-Length: {len}\r\n\r\n{body}",
            ruri = self.ruri,
            local = self.local,
            run = self.run,
            len = body.len(),
        );
        out.clear();
        out.extend_from_slice(s.as_bytes());
    }

    /// ACK (CSeq 1) or BYE (CSeq 2) inside the dialog the 200 `ok` set up:
    /// to its Contact, through the reverse of its Record-Route (RFC 3261
    /// §12.1.2: the UAC takes the route set in reverse order).
    pub fn in_dialog(&self, out: &mut Vec<u8>, method: &str, n: usize, ok: &Parsed<'_>) {
        let mut to = "";
        let mut target = self.ruri.as_str();
        let mut routes: Vec<&str> = Vec::new();
        for line in &ok.lines {
            if let Some(v) = value(line, "To", "t") {
                to = v;
            } else if let Some(v) = value(line, "Contact", "m") {
                target = v
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap_or(target);
            } else if let Some(v) = value(line, "Record-Route", "") {
                routes.extend(v.split(',').map(str::trim));
            }
        }
        let (cseq, branch) = if method == "ACK" { (1, 2) } else { (2, 3) };
        let mut s = String::with_capacity(600);
        let _ = write!(
            s,
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-{run}-{n}-{branch};rport\r\n\
             Max-Forwards: 70\r\n",
            local = self.local,
            run = self.run,
        );
        for r in routes.iter().rev() {
            let _ = write!(s, "Route: {r}\r\n");
        }
        let _ = write!(
            s,
            "From: \"gen\" <sip:gen@{local}>;tag={n}\r\n\
             To: {to}\r\n\
             Call-ID: {n}-{run}@gen\r\n\
             CSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            local = self.local,
            run = self.run,
        );
        out.clear();
        out.extend_from_slice(s.as_bytes());
    }
}

/// A UAS reply to `req`: Via, From, To (tagged), Call-ID, CSeq and
/// Record-Route copied (RFC 3261 §8.2.6.2, §12.1.1), a Contact and, in a 200
/// to INVITE, an SDP answer.
pub fn reply(out: &mut Vec<u8>, req: &Parsed<'_>, code: u16, reason: &str, contact: SocketAddr) {
    let mut s = String::with_capacity(800);
    let _ = write!(s, "SIP/2.0 {code} {reason}\r\n");
    for line in &req.lines {
        if value(line, "Via", "v").is_some()
            || value(line, "From", "f").is_some()
            || value(line, "Call-ID", "i").is_some()
            || value(line, "CSeq", "").is_some()
            || value(line, "Record-Route", "").is_some()
        {
            s.push_str(line);
            s.push_str("\r\n");
        } else if let Some(v) = value(line, "To", "t") {
            if v.contains(";tag=") {
                let _ = write!(s, "To: {v}\r\n");
            } else {
                let _ = write!(
                    s,
                    "To: {v};tag=uas-{}\r\n",
                    req.call_id.split('@').next().unwrap_or("x")
                );
            }
        }
    }
    let invite = req.method == "INVITE";
    if invite {
        let _ = write!(s, "Contact: <sip:uas@{contact}>\r\n");
    }
    let body = if invite && code == 200 { SDP } else { "" };
    if !body.is_empty() {
        s.push_str("Content-Type: application/sdp\r\n");
    }
    let _ = write!(s, "Content-Length: {}\r\n\r\n{body}", body.len());
    out.clear();
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_reply_ack_roundtrip() {
        let uac = Uac {
            local: "127.0.0.1:5000".parse().unwrap(),
            ruri: "sip:uas@127.0.0.1:5070".into(),
            run: 7,
        };
        let mut buf = Vec::new();
        uac.initial(&mut buf, "INVITE", 42);
        let req = parse(&buf).unwrap();
        assert_eq!(req.method, "INVITE");
        assert_eq!(call_number(req.call_id, 7), Some(42));
        assert_eq!(call_number(req.call_id, 8), None);
        let mut rr = String::from_utf8(buf.clone()).unwrap();
        rr = rr.replacen(
            "Max-Forwards",
            "Record-Route: <sip:127.0.0.2;lr>\r\nMax-Forwards",
            1,
        );
        let req = parse(rr.as_bytes()).unwrap();
        let mut out = Vec::new();
        reply(&mut out, &req, 200, "OK", "127.0.0.1:5070".parse().unwrap());
        let ok = parse(&out).unwrap();
        assert_eq!(ok.status, Some(200));
        assert_eq!(ok.cseq_method, "INVITE");
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.contains("Record-Route: <sip:127.0.0.2;lr>\r\n"),
            "{text}"
        );
        assert!(text.contains(";tag=uas-42"), "{text}");
        let mut ack = Vec::new();
        uac.in_dialog(&mut ack, "ACK", 42, &ok);
        let ack = String::from_utf8(ack).unwrap();
        assert!(
            ack.starts_with("ACK sip:uas@127.0.0.1:5070 SIP/2.0\r\n"),
            "{ack}"
        );
        assert!(ack.contains("Route: <sip:127.0.0.2;lr>\r\n"), "{ack}");
        assert!(ack.contains(";tag=uas-42"), "{ack}");
    }
}
