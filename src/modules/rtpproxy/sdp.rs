//! The parts of an SDP body (RFC 4566) a media relay changes: each media
//! stream's port (`m=`) and connection address (`c=`, media-level or
//! session-level), and the origin address (`o=`).

use std::net::IpAddr;

/// One `m=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// Line index of the `m=` line.
    m_line: usize,
    /// Line index of the stream's own `c=` line, if it has one.
    c_line: Option<usize>,
    pub port: u16,
    /// The stream's connection address (its own `c=`, else the session's).
    pub addr: Option<IpAddr>,
}

/// An SDP body split into lines (each with its line end).
#[derive(Debug)]
pub struct Sdp<'a> {
    lines: Vec<&'a str>,
    session_c: Option<usize>,
    origin: Option<usize>,
    pub streams: Vec<Stream>,
}

/// The address of a `c=IN IP4 ADDR[/ttl]` or `o=… IN IP4 ADDR` line.
fn line_addr(line: &str) -> Option<IpAddr> {
    let addr = line.split_whitespace().last()?;
    addr.split('/').next()?.parse().ok()
}

fn bare(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

impl<'a> Sdp<'a> {
    /// `None` when `body` is not SDP (no `v=` first line) or not UTF-8.
    pub fn parse(body: &'a [u8]) -> Option<Sdp<'a>> {
        let text = std::str::from_utf8(body).ok()?;
        if !text.starts_with("v=") {
            return None;
        }
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut sdp = Sdp {
            lines,
            session_c: None,
            origin: None,
            streams: Vec::new(),
        };
        for (i, line) in sdp.lines.iter().enumerate() {
            let l = bare(line);
            if let Some(rest) = l.strip_prefix("m=") {
                let port = rest
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                sdp.streams.push(Stream {
                    m_line: i,
                    c_line: None,
                    port,
                    addr: None,
                });
            } else if l.starts_with("c=") {
                match sdp.streams.last_mut() {
                    Some(s) => s.c_line = Some(i),
                    None => sdp.session_c = Some(i),
                }
            } else if l.starts_with("o=") && sdp.streams.is_empty() {
                sdp.origin = Some(i);
            }
        }
        let session_addr = sdp.session_c.and_then(|i| line_addr(sdp.lines[i]));
        let lines = &sdp.lines;
        for s in &mut sdp.streams {
            s.addr = s.c_line.and_then(|i| line_addr(lines[i])).or(session_addr);
        }
        Some(sdp)
    }

    /// Whether a line equals `mark` (with or without its line end).
    pub fn has_line(&self, mark: &str) -> bool {
        let mark = bare(mark);
        !mark.is_empty() && self.lines.iter().any(|l| bare(l) == mark)
    }

    /// The body with each stream's port and address replaced by `relayed[i]`
    /// (`None`: the stream is left as it is). Stream-level `c=` lines change;
    /// the session-level one changes when a stream relies on it, or with
    /// `session_c`; `o=` changes with `origin`. A hold address (0.0.0.0) is kept.
    pub fn rewrite(
        &self,
        relayed: &[Option<(u16, IpAddr)>],
        session_c: bool,
        origin: bool,
    ) -> String {
        let mut new_lines: Vec<Option<String>> = vec![None; self.lines.len()];
        let mut session_ip = None;
        for (s, r) in self.streams.iter().zip(relayed) {
            let Some((port, ip)) = *r else { continue };
            new_lines[s.m_line] = Some(replace_m_port(self.lines[s.m_line], port));
            match s.c_line {
                Some(c) => new_lines[c] = Some(replace_addr(self.lines[c], ip)),
                None => session_ip = Some(ip),
            }
            if session_c {
                session_ip.get_or_insert(ip);
            }
        }
        if let (Some(c), Some(ip)) = (self.session_c, session_ip) {
            new_lines[c] = Some(replace_addr(self.lines[c], ip));
        }
        if origin {
            if let (Some(o), Some(ip)) = (self.origin, relayed.iter().flatten().next()) {
                new_lines[o] = Some(replace_addr(self.lines[o], ip.1));
            }
        }
        let mut out = String::new();
        for (line, new) in self.lines.iter().zip(new_lines) {
            match new {
                Some(n) => out.push_str(&n),
                None => out.push_str(line),
            }
        }
        out
    }
}

/// `m=audio PORT[/n] …` with PORT replaced.
fn replace_m_port(line: &str, port: u16) -> String {
    let b = bare(line);
    let eol = &line[b.len()..];
    let mut parts: Vec<String> = b.split(' ').map(str::to_string).collect();
    if let Some(p) = parts.get_mut(1) {
        let suffix = p.split_once('/').map(|(_, s)| format!("/{s}"));
        *p = format!("{port}{}", suffix.unwrap_or_default());
    }
    format!("{}{eol}", parts.join(" "))
}

/// A `c=` or `o=` line with its address (and address type) replaced.
fn replace_addr(line: &str, ip: IpAddr) -> String {
    let b = bare(line);
    let eol = &line[b.len()..];
    let mut parts: Vec<String> = b.split(' ').map(str::to_string).collect();
    let n = parts.len();
    if n < 3 {
        return line.to_string();
    }
    let old = parts[n - 1].split('/').next().unwrap_or("");
    if old == "0.0.0.0" || old == "::" {
        return line.to_string();
    }
    let suffix = parts[n - 1]
        .split_once('/')
        .map(|(_, s)| format!("/{s}"))
        .unwrap_or_default();
    parts[n - 2] = if ip.is_ipv4() { "IP4" } else { "IP6" }.to_string();
    parts[n - 1] = format!("{ip}{suffix}");
    format!("{}{eol}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "v=0\r\no=alice 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\nm=video 51372/2 RTP/AVP 31\r\nc=IN IP4 192.168.1.21\r\na=sendrecv\r\n";

    #[test]
    fn streams_and_their_addresses() {
        let sdp = Sdp::parse(TWO.as_bytes()).unwrap();
        assert_eq!(sdp.streams.len(), 2);
        assert_eq!(sdp.streams[0].port, 49170);
        assert_eq!(sdp.streams[0].addr, Some("192.168.1.20".parse().unwrap()));
        assert_eq!(sdp.streams[1].port, 51372);
        assert_eq!(sdp.streams[1].addr, Some("192.168.1.21".parse().unwrap()));
        assert!(Sdp::parse(b"hello").is_none());
        assert!(Sdp::parse(b"v=0\r\n").unwrap().streams.is_empty());
    }

    #[test]
    fn rewrite_ports_and_addresses() {
        let sdp = Sdp::parse(TWO.as_bytes()).unwrap();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let out = sdp.rewrite(&[Some((30000, ip)), Some((30002, ip))], false, false);
        assert_eq!(
            out,
            "v=0\r\no=alice 1 1 IN IP4 192.168.1.20\r\ns=-\r\nc=IN IP4 203.0.113.7\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\nm=video 30002/2 RTP/AVP 31\r\nc=IN IP4 203.0.113.7\r\na=sendrecv\r\n"
        );
        let out = sdp.rewrite(&[None, Some((30002, ip))], false, true);
        assert!(out.contains("o=alice 1 1 IN IP4 203.0.113.7\r\n"), "{out}");
        assert!(out.contains("\r\nc=IN IP4 192.168.1.20\r\n"), "{out}");
        let out = sdp.rewrite(&[None, Some((30002, ip))], true, false);
        assert!(out.contains("\r\nc=IN IP4 203.0.113.7\r\nt=0"), "{out}");
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let out = sdp.rewrite(&[Some((4, v6)), None], false, false);
        assert!(out.contains("c=IN IP6 2001:db8::1\r\n"), "{out}");
    }

    #[test]
    fn hold_address_is_kept() {
        let body = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 9 RTP/AVP 0\r\n";
        let sdp = Sdp::parse(body.as_bytes()).unwrap();
        let out = sdp.rewrite(&[Some((5, "1.2.3.4".parse().unwrap()))], true, true);
        assert_eq!(out, "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 5 RTP/AVP 0\r\n");
    }
}
