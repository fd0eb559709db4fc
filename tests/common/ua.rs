//! A raw SIP user agent over UDP for tests that need to write exact bytes and
//! look at exact answers: no transaction layer, no retransmissions, nothing
//! hidden. [`SipMsg`] is a deliberately simple reader for assertions; it is
//! not ringsip's parser (a test must not check the parser with itself).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::net::free_udp_addr;

/// A UDP socket on its own random loopback address.
pub struct RawUa {
    sock: UdpSocket,
    addr: SocketAddr,
}

impl RawUa {
    /// Binds a fresh loopback address (see [`free_udp_addr`]).
    pub fn bind() -> RawUa {
        for _ in 0..10 {
            let want = free_udp_addr();
            if let Ok(sock) = UdpSocket::bind(want) {
                return RawUa { addr: want, sock };
            }
        }
        panic!("RawUa: could not bind a loopback address");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn socket(&self) -> &UdpSocket {
        &self.sock
    }

    pub fn send(&self, to: SocketAddr, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        let n = self
            .sock
            .send_to(bytes, to)
            .unwrap_or_else(|e| panic!("send {} bytes to {to}: {e}", bytes.len()));
        assert_eq!(n, bytes.len(), "short UDP send to {to}");
    }

    /// The next datagram from anyone, or `None` after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock
                .set_read_timeout(Some(left))
                .expect("set_read_timeout");
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    buf.truncate(n);
                    return Some((buf, from));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // ICMP port unreachable from an earlier send surfaces here on Linux.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                Err(e) => panic!("recv on {}: {e}", self.addr),
            }
        }
    }

    /// The next datagram as a SIP message, or `None` after `timeout`.
    pub fn recv_msg(&self, timeout: Duration) -> Option<SipMsg> {
        self.recv(timeout)
            .map(|(bytes, from)| SipMsg::new(bytes, Some(from)))
    }

    /// The next datagram as a SIP message; panics after `timeout`.
    pub fn expect_msg(&self, timeout: Duration) -> SipMsg {
        self.recv_msg(timeout)
            .unwrap_or_else(|| panic!("{}: nothing received within {timeout:?}", self.addr))
    }

    /// Receives until a datagram arrives whose first line matches `pred` (e.g.
    /// skip a `100 Trying`), or panics after `timeout`.
    pub fn expect_msg_where(&self, timeout: Duration, pred: impl Fn(&SipMsg) -> bool) -> SipMsg {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(msg) = self.recv_msg(deadline.saturating_duration_since(Instant::now())) {
            if pred(&msg) {
                return msg;
            }
            seen.push(msg.start_line().to_string());
        }
        panic!(
            "{}: no matching message within {timeout:?}; received: {seen:?}",
            self.addr
        );
    }

    /// A request from this UA with fresh branch, tag and Call-ID.
    /// `extra` lines (without line ends) go after the standard headers; the
    /// Content-Length is computed from `body`.
    pub fn request(&self, method: &str, ruri: &str, extra: &[&str], body: &str) -> String {
        let n = unique();
        let me = self.addr;
        let mut msg = format!(
            "{method} {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK-test-{n}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:tester@{me}>;tag=tag-{n}\r\n\
             To: <{ruri}>\r\n\
             Call-ID: call-{n}@{me_ip}\r\n\
             CSeq: 1 {method}\r\n\
             Contact: <sip:tester@{me}>\r\n",
            me_ip = me.ip(),
        );
        for line in extra {
            msg.push_str(line);
            msg.push_str("\r\n");
        }
        msg.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        msg
    }

    /// An `OPTIONS sip:IP:PORT` to `target` (a keep-alive ping; Kamailio's stock
    /// config answers it with `200 Keepalive`).
    pub fn options(&self, target: SocketAddr) -> String {
        self.request("OPTIONS", &format!("sip:{target}"), &[], "")
    }
}

fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// RFC 3261 §7.3.3 compact forms and the long names they stand for (plus the
/// common ones from later RFCs).
const COMPACT: &[(&str, &str)] = &[
    ("a", "accept-contact"),
    ("b", "referred-by"),
    ("c", "content-type"),
    ("d", "request-disposition"),
    ("e", "content-encoding"),
    ("f", "from"),
    ("i", "call-id"),
    ("j", "reject-contact"),
    ("k", "supported"),
    ("l", "content-length"),
    ("m", "contact"),
    ("n", "identity-info"),
    ("o", "event"),
    ("r", "refer-to"),
    ("s", "subject"),
    ("t", "to"),
    ("u", "allow-events"),
    ("v", "via"),
    ("x", "session-expires"),
    ("y", "identity"),
];

fn long_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    COMPACT
        .iter()
        .find(|(short, _)| *short == lower)
        .map(|(_, long)| (*long).to_string())
        .unwrap_or(lower)
}

/// A received SIP message, split into start line, unfolded header fields and
/// body for assertions.
#[derive(Clone, Debug)]
pub struct SipMsg {
    raw: Vec<u8>,
    from: Option<SocketAddr>,
    start: String,
    /// (name as written, value trimmed, continuation lines joined by one space)
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl SipMsg {
    /// Splits `raw` (lenient: CRLF or LF, folded lines, leading CRLFs).
    pub fn new(raw: Vec<u8>, from: Option<SocketAddr>) -> SipMsg {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let trimmed = text.trim_start_matches(['\r', '\n']);
        let (head, body) = match (trimmed.find("\r\n\r\n"), trimmed.find("\n\n")) {
            (Some(a), Some(b)) if b < a => (&trimmed[..b], &trimmed[b + 2..]),
            (Some(a), _) => (&trimmed[..a], &trimmed[a + 4..]),
            (None, Some(b)) => (&trimmed[..b], &trimmed[b + 2..]),
            (None, None) => (trimmed, ""),
        };
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start = lines.next().unwrap_or("").to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    let more = line.trim();
                    if !more.is_empty() {
                        if !value.is_empty() {
                            value.push(' ');
                        }
                        value.push_str(more);
                    }
                }
                continue;
            }
            match line.split_once(':') {
                Some((name, value)) => {
                    headers.push((name.trim().to_string(), value.trim().to_string()))
                }
                None => headers.push((line.trim().to_string(), String::new())),
            }
        }
        SipMsg {
            body: body.as_bytes().to_vec(),
            raw,
            from,
            start,
            headers,
        }
    }

    pub fn parse_str(text: &str) -> SipMsg {
        SipMsg::new(text.as_bytes().to_vec(), None)
    }

    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// Who sent it (when received by a [`RawUa`]).
    pub fn source(&self) -> Option<SocketAddr> {
        self.from
    }

    pub fn start_line(&self) -> &str {
        &self.start
    }

    pub fn is_response(&self) -> bool {
        self.start.starts_with("SIP/")
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        if !self.is_response() {
            return None;
        }
        self.start.split(' ').nth(1)?.parse().ok()
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> Option<&str> {
        if !self.is_response() {
            return None;
        }
        self.start.splitn(3, ' ').nth(2)
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        if self.is_response() {
            return None;
        }
        self.start.split(' ').next()
    }

    pub fn request_uri(&self) -> Option<&str> {
        if self.is_response() {
            return None;
        }
        self.start.split(' ').nth(1)
    }

    /// The first field named `name` (case-insensitive, compact forms matched:
    /// `header("Via")` finds `v:` too), its value trimmed and unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// Every field named `name`, in order (field values as written; a
    /// comma-separated list is one value).
    pub fn headers(&self, name: &str) -> Vec<&str> {
        let want = long_name(name);
        self.headers
            .iter()
            .filter(|(n, _)| long_name(n) == want)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// All fields as (name as written, value).
    pub fn all_headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// A `;name=value` parameter of the first field `header` (e.g. the Via
    /// `branch`, the To `tag`). `Some("")` for a parameter without a value.
    pub fn header_param(&self, header: &str, param: &str) -> Option<&str> {
        let value = self.header(header)?;
        // Parameters after the last '>' (name-addr) or after the first ';' (Via).
        let tail = match value.rfind('>') {
            Some(i) => &value[i + 1..],
            None => value,
        };
        tail.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            k.trim().eq_ignore_ascii_case(param).then(|| v.trim())
        })
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }
}
