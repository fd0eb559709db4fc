//! SIP over TCP for the tests: [`TcpUa`], a connection that sends raw SIP
//! text and reads Content-Length framed messages (RFC 3261 §18.3), a
//! request builder, and [`reply_to`] for a test UAS.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ua::SipMsg;

/// One TCP connection to a SIP server (or accepted from one).
pub struct TcpUa {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl TcpUa {
    /// Connects to `to` (bounded by 5 s).
    pub fn connect(to: SocketAddr) -> TcpUa {
        let stream = TcpStream::connect_timeout(&to, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {to}: {e}"));
        TcpUa::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> TcpUa {
        stream.set_nodelay(true).expect("nodelay");
        TcpUa {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.stream.local_addr().expect("local_addr")
    }

    pub fn peer(&self) -> SocketAddr {
        self.stream.peer_addr().expect("peer_addr")
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("tcp send");
    }

    /// The next message within `timeout` (CRLF keep-alive pongs are
    /// skipped), `None` on timeout or when the peer closed.
    pub fn recv(&mut self, timeout: Duration) -> Option<SipMsg> {
        let deadline = Instant::now() + timeout;
        loop {
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            if let Some(len) = framed_len(&self.buf) {
                let raw: Vec<u8> = self.buf.drain(..len).collect();
                return Some(SipMsg::new(raw, self.stream.peer_addr().ok()));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("read timeout");
            let mut chunk = [0u8; 16 << 10];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(_) => return None,
            }
        }
    }

    /// The next message; panics after `timeout`.
    pub fn expect_msg(&mut self, timeout: Duration) -> SipMsg {
        let local = self.local();
        self.recv(timeout)
            .unwrap_or_else(|| panic!("{local}: no message over TCP within {timeout:?}"))
    }

    /// Whether the peer closed the connection within `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("read timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
        false
    }

    /// A request over this connection with fresh branch, tag and Call-ID;
    /// `extra` lines go after the standard headers.
    pub fn request(&self, method: &str, ruri: &str, extra: &[&str], body: &str) -> String {
        let n = unique();
        let me = self.local();
        let mut msg = format!(
            "{method} {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/TCP {me};branch=z9hG4bK-tcp-{n}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:tester@{me}>;tag=tag-{n}\r\n\
             To: <{ruri}>\r\n\
             Call-ID: tcp-call-{n}@{ip}\r\n\
             CSeq: 1 {method}\r\n\
             Contact: <sip:tester@{me};transport=tcp>\r\n",
            ip = me.ip(),
        );
        for line in extra {
            msg.push_str(line);
            msg.push_str("\r\n");
        }
        msg.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        msg
    }
}

/// A reply to `req` as a UAS writes it: its Via, From, To (with a tag),
/// Call-ID and CSeq copied.
pub fn reply_to(req: &SipMsg, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in req.headers("Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    let get = |name| req.header(name).unwrap_or_default();
    out.push_str(&format!("From: {}\r\n", get("From")));
    out.push_str(&format!("To: {};tag=uas\r\n", get("To")));
    out.push_str(&format!("Call-ID: {}\r\n", get("Call-ID")));
    out.push_str(&format!("CSeq: {}\r\n", get("CSeq")));
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// The length of the first complete message in `buf`, if there is one.
fn framed_len(buf: &[u8]) -> Option<usize> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]);
    let body: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            let name = name.trim();
            (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    (buf.len() >= end + body).then_some(end + body)
}

fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
