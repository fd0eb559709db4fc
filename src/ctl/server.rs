//! The control socket (JSON-RPC 2.0 over a Unix stream socket) and the
//! optional HTTP listener (`GET /metrics`, JSON-RPC by `POST /RPC` or `/`).
//! Each runs on its own thread and each connection on a short-lived thread
//! of its own: none of this is on the hot path.
//!
//! On the Unix socket a client writes one JSON-RPC message (or several, one
//! after the other) and reads one JSON answer per request, each followed by
//! a newline; no other framing is needed since JSON values delimit themselves.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use super::methods::Ctl;
use super::rpc::{error_response, handle_text, handle_value, RpcError, PARSE_ERROR};
use super::{prometheus, CtlConfig};

/// Largest request accepted on one connection.
const MAX_REQUEST: u64 = 1 << 20;
/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(30);

/// What is being served; dropping it removes the socket file.
pub struct CtlServer {
    socket: Option<PathBuf>,
    http: Option<SocketAddr>,
}

impl CtlServer {
    /// The control socket's path, when it is served.
    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// The HTTP listener's bound address.
    pub fn http(&self) -> Option<SocketAddr> {
        self.http
    }
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        if let Some(p) = &self.socket {
            remove_if_ours(p);
        }
    }
}

/// The listening sockets, bound before the workers start (so a client that
/// connects as soon as the server answers SIP finds the socket), not yet served.
pub struct Bound {
    unix: Option<(UnixListener, PathBuf)>,
    http: Option<(TcpListener, SocketAddr)>,
}

/// Binds what `cfg` asks for. A socket path that another running server
/// answers on is an error when it was configured, and only a warning (no
/// control socket) for the default path.
pub fn bind(cfg: &CtlConfig) -> Result<Bound, String> {
    let unix = bind_unix(&cfg.socket, cfg.explicit)?.map(|l| (l, cfg.socket.clone()));
    let http = match cfg.http {
        Some(addr) => {
            let listener =
                TcpListener::bind(addr).map_err(|e| format!("ctl: http listener {addr}: {e}"))?;
            let local = listener
                .local_addr()
                .map_err(|e| format!("ctl: http listener {addr}: {e}"))?;
            Some((listener, local))
        }
        None => None,
    };
    Ok(Bound { unix, http })
}

impl Bound {
    /// Serves `ctl` on what was bound, each listener on a thread of its own.
    pub fn serve(mut self, ctl: Arc<Ctl>) -> Result<CtlServer, String> {
        let mut server = CtlServer {
            socket: None,
            http: None,
        };
        if let Some((listener, path)) = self.unix.take() {
            // From here on the file is ours to remove.
            server.socket = Some(path.clone());
            let ctl = ctl.clone();
            thread::Builder::new()
                .name("ringsip-ctl".into())
                .spawn(move || accept_unix(listener, ctl))
                .map_err(|e| format!("ctl: cannot start its thread: {e}"))?;
            log::info!("control socket unix:{}", path.display());
        }
        if let Some((listener, local)) = self.http.take() {
            thread::Builder::new()
                .name("ringsip-http".into())
                .spawn(move || accept_http(listener, ctl))
                .map_err(|e| format!("ctl: cannot start its thread: {e}"))?;
            server.http = Some(local);
            log::info!("http listener {local} (/metrics, POST /RPC)");
        }
        Ok(server)
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.unix {
            remove_if_ours(path);
        }
    }
}

/// The (device, inode) of each socket file this process bound: at stop only
/// a file that is still ours is removed (another server may have replaced it).
static BOUND: std::sync::Mutex<Vec<(PathBuf, u64, u64)>> = std::sync::Mutex::new(Vec::new());

fn remove_if_ours(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let ours = BOUND
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|(p, dev, ino)| p == path && *dev == meta.dev() && *ino == meta.ino());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

/// Removes a stale socket file; gone already is fine (another server
/// starting at the same time on the default path removed it first).
fn remove_stale(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn bind_unix(path: &Path, explicit: bool) -> Result<Option<UnixListener>, String> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("ctl: cannot create {}: {e}", dir.display()))?;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            if explicit {
                return Err(format!(
                    "ctl: control socket {shown} is in use by another running server"
                ));
            }
            log::warn!("control socket {shown} is in use by another server: running without one (use --ctl PATH)");
            return Ok(None);
        }
        // A stale socket left by a server that did not stop cleanly.
        remove_stale(path).map_err(|e| format!("ctl: cannot remove stale {shown}: {e}"))?;
    }
    let listener = match UnixListener::bind(path) {
        Ok(l) => l,
        // Two servers starting at once on the default path: one wins.
        Err(e) if !explicit => {
            log::warn!("control socket {shown}: {e}: running without one (use --ctl PATH)");
            return Ok(None);
        }
        Err(e) => return Err(format!("ctl: cannot bind {shown}: {e}")),
    };
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        BOUND.lock().unwrap_or_else(|e| e.into_inner()).push((
            path.to_path_buf(),
            meta.dev(),
            meta.ino(),
        ));
    }
    Ok(Some(listener))
}

fn accept_unix(listener: UnixListener, ctl: Arc<Ctl>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let ctl = ctl.clone();
        let _ = thread::Builder::new()
            .name("ringsip-ctl-conn".into())
            .spawn(move || {
                if let Err(e) = serve_unix(conn, &ctl) {
                    log::debug!("ctl connection: {e}");
                }
            });
    }
}

/// Answers every JSON value the client sends, until it closes or sends
/// something that is not JSON (answered with a parse error, then closed).
fn serve_unix(conn: UnixStream, ctl: &Ctl) -> io::Result<()> {
    conn.set_read_timeout(Some(IDLE))?;
    let mut out = conn.try_clone()?;
    let reader = BufReader::new(conn.take(MAX_REQUEST));
    let stream = serde_json::Deserializer::from_reader(reader).into_iter::<Value>();
    for value in stream {
        let answer = match value {
            Ok(v) => handle_value(ctl, v),
            Err(e) if e.is_eof() => return Ok(()),
            Err(e) if e.is_io() => return Err(io::Error::other(e)),
            Err(e) => {
                let answer = error_response(
                    Value::Null,
                    RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
                );
                write_json(&mut out, &answer)?;
                return Ok(());
            }
        };
        if let Some(answer) = answer {
            write_json(&mut out, &answer)?;
        }
    }
    Ok(())
}

fn write_json(out: &mut impl Write, v: &Value) -> io::Result<()> {
    let mut text = serde_json::to_vec(v).map_err(io::Error::other)?;
    text.push(b'\n');
    out.write_all(&text)?;
    out.flush()
}

fn accept_http(listener: TcpListener, ctl: Arc<Ctl>) {
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let ctl = ctl.clone();
        let _ = thread::Builder::new()
            .name("ringsip-http-conn".into())
            .spawn(move || {
                if let Err(e) = serve_http(conn, &ctl) {
                    log::debug!("http connection: {e}");
                }
            });
    }
}

/// One HTTP/1.1 request, then the connection is closed.
fn serve_http(conn: TcpStream, ctl: &Ctl) -> io::Result<()> {
    conn.set_read_timeout(Some(IDLE))?;
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn.take(MAX_REQUEST));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut content_length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => respond(
            &mut out,
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            prometheus::render(ctl).as_bytes(),
        ),
        ("POST", "/RPC" | "/" | "/jsonrpc") => {
            let mut body = vec![0; content_length.min(MAX_REQUEST as usize)];
            reader.read_exact(&mut body)?;
            let answer = handle_text(ctl, &body);
            match answer {
                Some(v) => {
                    let text = serde_json::to_vec(&v).map_err(io::Error::other)?;
                    respond(&mut out, "200 OK", "application/json", &text)
                }
                None => respond(&mut out, "204 No Content", "application/json", b""),
            }
        }
        ("GET" | "POST", _) => respond(&mut out, "404 Not Found", "text/plain", b"not found\n"),
        _ => respond(
            &mut out,
            "405 Method Not Allowed",
            "text/plain",
            b"GET /metrics or POST /RPC\n",
        ),
    }
}

fn respond(out: &mut impl Write, status: &str, ctype: &str, body: &[u8]) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_removed_by_another_server_first_is_no_error() {
        let dir = std::env::temp_dir().join(format!("ringsip-ctl-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ringsip.ctl");
        std::fs::write(&path, b"").unwrap();
        assert!(remove_stale(&path).is_ok());
        assert!(!path.exists());
        // Gone already: what the second of two servers starting at once sees.
        assert!(remove_stale(&path).is_ok());
        // Anything else is still an error (a directory is not removed as a file).
        assert!(remove_stale(&dir).is_err());
        std::fs::remove_dir(&dir).unwrap();
    }
}
