//! The client behind the `http_client` module ([`HttpClient`]): one
//! HTTP/1.1 request per connection (closed after the answer), over TCP or
//! TLS (rustls, the system's trust anchors or `tlscacert`), redirects
//! followed when asked. The calling worker waits, at most the request's
//! timeout in all.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::pki_types::ServerName;

use crate::modules::http_client::{curl, HttpClient, HttpRequest, HttpResponse, Url};

/// Where Debian (and most distributions) keep the system's trust anchors.
const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How many redirects are followed before giving up (curl's error 47).
const MAX_REDIRECTS: usize = 20;

/// The largest answer taken (the rest is an error, not a cut).
const MAX_RESPONSE: usize = 16 << 20;

/// What a TLS client setting depends on: (CA file, verify peer, verify host).
type TlsKey = (Option<String>, bool, bool);

/// Makes requests with the system's network.
#[derive(Default)]
pub struct SystemHttp {
    /// TLS client settings by what they depend on, each made once.
    tls: Mutex<Vec<(TlsKey, Arc<rustls::ClientConfig>)>>,
}

impl SystemHttp {
    fn tls_config(&self, req: &HttpRequest) -> Result<Arc<rustls::ClientConfig>, i32> {
        let key = (req.ca_file.clone(), req.verify_peer, req.verify_host);
        let mut cache = self.tls.lock().map_err(|_| curl::SSL_CONNECT_ERROR)?;
        if let Some((_, c)) = cache.iter().find(|(k, _)| *k == key) {
            return Ok(c.clone());
        }
        let ca = req.ca_file.as_deref().unwrap_or(SYSTEM_CA);
        let verify = req.verify_peer || req.verify_host;
        let config = super::stream::tls::http_client_config(std::path::Path::new(ca), verify)
            .map_err(|e| {
                log::warn!("http_client: TLS trust anchors: {e}");
                curl::SSL_CACERT_BADFILE
            })?;
        cache.push((key, config.clone()));
        Ok(config)
    }
}

/// A connection: plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// curl's code for an IO error while talking.
fn io_code(e: &io::Error, sending: bool) -> i32 {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => curl::OPERATION_TIMEDOUT,
        io::ErrorKind::InvalidData => {
            // rustls reports handshake and certificate failures as InvalidData.
            let text = e.to_string();
            if text.contains("certificate") || text.contains("Certificate") {
                curl::PEER_FAILED_VERIFICATION
            } else {
                curl::SSL_CONNECT_ERROR
            }
        }
        _ if sending => curl::SEND_ERROR,
        _ => curl::RECV_ERROR,
    }
}

fn remaining(deadline: Instant) -> Result<Duration, i32> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or(curl::OPERATION_TIMEDOUT)
}

impl SystemHttp {
    fn connect(&self, url: &Url, req: &HttpRequest, deadline: Instant) -> Result<Conn, i32> {
        let tls = if url.tls {
            Some(self.tls_config(req)?)
        } else {
            None
        };
        let addrs: Vec<_> = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|_| curl::COULDNT_RESOLVE_HOST)?
            .collect();
        if addrs.is_empty() {
            return Err(curl::COULDNT_RESOLVE_HOST);
        }
        let mut last = curl::COULDNT_CONNECT;
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, remaining(deadline)?) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => last = curl::OPERATION_TIMEDOUT,
                Err(_) => last = curl::COULDNT_CONNECT,
            }
        }
        let stream = stream.ok_or(last)?;
        let _ = stream.set_nodelay(true);
        let Some(config) = tls else {
            return Ok(Conn::Plain(stream));
        };
        let name = match url.host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(url.host.clone()).map_err(|_| curl::URL_MALFORMAT)?,
        };
        let conn =
            rustls::ClientConnection::new(config, name).map_err(|_| curl::SSL_CONNECT_ERROR)?;
        Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, stream))))
    }

    /// One request and its answer (no redirect).
    fn once(
        &self,
        url: &Url,
        method: &str,
        req: &HttpRequest,
        body: Option<&[u8]>,
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>, Option<String>), i32> {
        let mut conn = self.connect(url, req, deadline)?;
        let set_timeouts = |c: &Conn, d: Duration| {
            let s = match c {
                Conn::Plain(s) => s,
                Conn::Tls(t) => &t.sock,
            };
            let _ = s.set_read_timeout(Some(d));
            let _ = s.set_write_timeout(Some(d));
        };
        set_timeouts(&conn, remaining(deadline)?);
        let head = request_head(url, method, req, body);
        let mut out = head.into_bytes();
        if let Some(b) = body {
            out.extend_from_slice(b);
        }
        conn.write_all(&out).map_err(|e| io_code(&e, true))?;
        conn.flush().map_err(|e| io_code(&e, true))?;
        set_timeouts(&conn, remaining(deadline)?);
        let mut reader = BufReader::new(conn);
        loop {
            let (status, headers) = read_head(&mut reader)?;
            // Interim answers (100 Continue…) are skipped.
            if (100..200).contains(&status) {
                continue;
            }
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            let location = header("Location");
            let no_body = method == "HEAD" || status == 204 || status == 304;
            let body = if no_body {
                Vec::new()
            } else if header("Transfer-Encoding")
                .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
            {
                read_chunked(&mut reader)?
            } else if let Some(len) = header("Content-Length") {
                let len: usize = len.trim().parse().map_err(|_| curl::WEIRD_SERVER_REPLY)?;
                if len > MAX_RESPONSE {
                    return Err(curl::RECV_ERROR);
                }
                let mut b = vec![0; len];
                reader.read_exact(&mut b).map_err(|e| io_code(&e, false))?;
                b
            } else {
                let mut b = Vec::new();
                reader
                    .by_ref()
                    .take(MAX_RESPONSE as u64 + 1)
                    .read_to_end(&mut b)
                    .map_err(|e| io_code(&e, false))?;
                if b.len() > MAX_RESPONSE {
                    return Err(curl::RECV_ERROR);
                }
                b
            };
            return Ok((status, body, location));
        }
    }
}

/// The request line and headers, in curl's order: Host, User-Agent, Accept,
/// the script's headers, then Content-Length and Content-Type for a body.
fn request_head(url: &Url, method: &str, req: &HttpRequest, body: Option<&[u8]>) -> String {
    let mut h = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\n",
        url.target,
        url.host_header()
    );
    if let Some(u) = &url.userinfo {
        let user = percent_decode(u);
        h.push_str("Authorization: Basic ");
        h.push_str(&base64::engine::general_purpose::STANDARD.encode(user));
        h.push_str("\r\n");
    }
    if !req.user_agent.is_empty() {
        h.push_str("User-Agent: ");
        h.push_str(&req.user_agent);
        h.push_str("\r\n");
    }
    h.push_str("Accept: */*\r\n");
    for line in &req.headers {
        h.push_str(line.trim_end_matches(['\r', '\n']));
        h.push_str("\r\n");
    }
    if let Some(b) = body {
        h.push_str(&format!("Content-Length: {}\r\n", b.len()));
        h.push_str("Content-Type: ");
        h.push_str(&req.content_type);
        h.push_str("\r\n");
    }
    h.push_str("\r\n");
    h
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn read_line(r: &mut impl BufRead) -> Result<String, i32> {
    let mut line = Vec::new();
    r.by_ref()
        .take(64 * 1024)
        .read_until(b'\n', &mut line)
        .map_err(|e| io_code(&e, false))?;
    if line.is_empty() {
        return Err(curl::RECV_ERROR);
    }
    while line.last().is_some_and(|&c| c == b'\n' || c == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// The status line and headers of an answer.
fn read_head(r: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>), i32> {
    let status_line = read_line(r)?;
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(curl::WEIRD_SERVER_REPLY);
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..1000).contains(c))
        .ok_or(curl::WEIRD_SERVER_REPLY)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        if headers.len() > 200 {
            return Err(curl::WEIRD_SERVER_REPLY);
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, i32> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| curl::RECV_ERROR)?;
        if size == 0 {
            // Trailers up to the empty line.
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_RESPONSE {
            return Err(curl::RECV_ERROR);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|e| io_code(&e, false))?;
        read_line(r)?;
    }
}

/// Where a redirect points, against the URL it came from.
fn resolve(base: &Url, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme = if base.tls { "https" } else { "http" };
    let host = base.host_header();
    if location.starts_with('/') {
        return format!("{scheme}://{host}{location}");
    }
    let dir = base.target.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{scheme}://{host}{dir}/{location}")
}

impl HttpClient for SystemHttp {
    fn perform(&self, req: &HttpRequest) -> Result<HttpResponse, i32> {
        let deadline = Instant::now() + req.timeout;
        let mut url_text = req.url.clone();
        let mut method = if req.body.is_some() { "POST" } else { "GET" };
        let mut body = req.body.as_deref();
        for _ in 0..=MAX_REDIRECTS {
            let url = Url::parse(&url_text)?;
            let (status, resp_body, location) = self.once(&url, method, req, body, deadline)?;
            let redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
            match location.filter(|_| redirect && req.follow_redirects) {
                Some(loc) => {
                    // As curl: a POST answered 301/302/303 goes on as a GET.
                    if matches!(status, 301..=303) {
                        method = "GET";
                        body = None;
                    }
                    url_text = resolve(&url, &loc);
                }
                None => {
                    return Ok(HttpResponse {
                        status,
                        body: resp_body,
                        effective_url: url_text,
                    })
                }
            }
        }
        Err(curl::TOO_MANY_REDIRECTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn request(url: &str, body: Option<&str>) -> HttpRequest {
        HttpRequest {
            url: url.into(),
            body: body.map(|b| b.as_bytes().to_vec()),
            content_type: "application/x-www-form-urlencoded".into(),
            headers: vec!["X-A: 1".into()],
            user_agent: "ua".into(),
            timeout: Duration::from_secs(5),
            follow_redirects: true,
            verify_peer: true,
            verify_host: true,
            ca_file: None,
        }
    }

    /// A server answering each connection with the next of `answers`; what it got.
    fn serve(answers: Vec<&'static str>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let mut got = Vec::new();
            for a in answers {
                let (mut c, _) = l.accept().unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = vec![0; 65536];
                let mut n = 0;
                // Up to the end of the head, then the body by Content-Length.
                loop {
                    let k = c.read(&mut buf[n..]).unwrap();
                    n += k;
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if n >= i + 4 + len {
                            break;
                        }
                    }
                    if k == 0 {
                        break;
                    }
                }
                got.push(String::from_utf8_lossy(&buf[..n]).to_string());
                c.write_all(a.as_bytes()).unwrap();
            }
            got
        });
        (addr, t)
    }

    #[test]
    fn get_and_post_in_curls_header_order() {
        let (addr, t) = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        ]);
        let c = SystemHttp::default();
        let r = c
            .perform(&request(&format!("http://{addr}/a?x=1"), None))
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"hello".as_slice()));
        let r = c
            .perform(&request(&format!("http://{addr}/b"), Some("k=v")))
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, b"abcde".as_slice()));
        let got = t.join().unwrap();
        assert_eq!(
            got[0],
            format!("GET /a?x=1 HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: ua\r\nAccept: */*\r\nX-A: 1\r\n\r\n")
        );
        assert_eq!(
            got[1],
            format!(
                "POST /b HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: ua\r\nAccept: */*\r\nX-A: 1\r\n\
                 Content-Length: 3\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nk=v"
            )
        );
    }

    #[test]
    fn redirects_are_followed_and_a_body_to_eof_is_read() {
        let (addr, t) = serve(vec![
            "HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.0 200 OK\r\n\r\nto the end",
        ]);
        let c = SystemHttp::default();
        let r = c
            .perform(&request(&format!("http://{addr}/start"), Some("p")))
            .unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, b"to the end".as_slice())
        );
        assert_eq!(r.effective_url, format!("http://{addr}/next"));
        let got = t.join().unwrap();
        assert!(
            got[1].starts_with("GET /next HTTP/1.1\r\n"),
            "302 after POST goes on as GET: {}",
            got[1]
        );
    }

    #[test]
    fn failures_are_curls_codes() {
        let c = SystemHttp::default();
        // A port nobody listens on.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        assert_eq!(
            c.perform(&request(&format!("http://{addr}/"), None)),
            Err(curl::COULDNT_CONNECT)
        );
        assert_eq!(
            c.perform(&request("ftp://127.0.0.1/", None)),
            Err(curl::UNSUPPORTED_PROTOCOL)
        );
        assert_eq!(
            c.perform(&request("http://no-such-host.invalid/", None)),
            Err(curl::COULDNT_RESOLVE_HOST)
        );
        // A server that never answers: the timeout.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut r = request(&format!("http://{}/", l.local_addr().unwrap()), None);
        r.timeout = Duration::from_millis(200);
        assert_eq!(c.perform(&r), Err(curl::OPERATION_TIMEDOUT));
        // Not HTTP.
        let (addr, t) = serve(vec!["SIP/2.0 200 OK\r\n\r\n"]);
        assert_eq!(
            c.perform(&request(&format!("http://{addr}/"), None)),
            Err(curl::WEIRD_SERVER_REPLY)
        );
        t.join().unwrap();
    }

    #[test]
    fn basic_authentication_from_the_url() {
        let url = Url::parse("http://us%40er:p%3Aw@h/x").unwrap();
        let head = request_head(&url, "GET", &request("http://h/x", None), None);
        assert!(
            head.contains("Authorization: Basic dXNAZXI6cDp3\r\n"),
            "{head}"
        );
    }

    /// A TLS server for 127.0.0.1 with a certificate from a fresh test CA
    /// (written to `dir/ca.pem`), answering one request per connection.
    fn tls_server(dir: &std::path::Path, connections: usize) -> String {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
        let config = Arc::new(config);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for _ in 0..connections {
                let (sock, _) = l.accept().unwrap();
                sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut buf = [0u8; 4096];
                // A client that refuses the certificate ends the handshake.
                if tls.read(&mut buf).is_ok() {
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret");
                    let _ = tls.flush();
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        addr
    }

    #[test]
    fn https_with_the_given_trust_anchors_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let addr = tls_server(dir.path(), 3);
        let c = SystemHttp::default();
        let mut r = request(&format!("https://{addr}/s"), None);
        r.ca_file = Some(dir.path().join("ca.pem").display().to_string());
        let got = c.perform(&r).unwrap();
        assert_eq!(
            (got.status, got.body.as_slice()),
            (200, b"secret".as_slice())
        );
        // The system's anchors do not know the test CA (or there are none).
        r.ca_file = None;
        let want = if std::path::Path::new(SYSTEM_CA).exists() {
            curl::PEER_FAILED_VERIFICATION
        } else {
            curl::SSL_CACERT_BADFILE
        };
        assert_eq!(c.perform(&r), Err(want));
        r.ca_file = Some(dir.path().join("missing.pem").display().to_string());
        assert_eq!(c.perform(&r), Err(curl::SSL_CACERT_BADFILE));
        // verify_peer and verify_host off: any certificate.
        r.verify_peer = false;
        r.verify_host = false;
        assert_eq!(c.perform(&r).map(|g| g.status), Ok(200));
    }
}
