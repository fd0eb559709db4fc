//! http_client: HTTP and HTTPS requests from the script, as Kamailio 5.6's
//! module (on libcurl) makes them.
//!
//! - `http_client_query(url, [data, [hdrs,]] result)`: GET, or POST when
//!   `data` is not empty (`application/x-www-form-urlencoded`, curl's
//!   default); `hdrs` is one extra header line.
//! - `http_connect(con, url, result)` / `http_connect(con, url, ctype, data,
//!   result)`: on a connection declared with `modparam("http_client",
//!   "httpcon", "name=>http[s]://[user:pass@]host[:port][/path]")`, `url`
//!   appended; POST when `data` is not empty.
//! - `http_get_redirect(con, result)`: the URL the last request on `con` ended at.
//!
//! The function's value is the HTTP status, or curl's error code when no
//! answer came (7 no connection, 6 host not resolved, 28 timeout, 1 scheme
//! not http/https, 3 bad URL, 35 TLS handshake, 60 certificate not
//! trusted, 77 CA file unreadable); a value 0 is -1. The body goes to `result` for a status from
//! 200 to 499 (`http_client_query`: up to its first line feed when
//! `query_result` is 1, the default), else `result` is set empty.
//!
//! Redirects are followed only with `httpredirect` 1 (the default is 0, as
//! in Kamailio). Making the request is IO: the module builds an [`HttpRequest`] and the
//! runtime's [`HttpClient`] performs it; the worker waits, as Kamailio's
//! does (`connection_timeout` bounds the wait, 4 s by default).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::modules::corex::args::{as_pv, out_pv};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{
    func, param, Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, ParamValue,
    RouteMask,
};
use crate::script::value::Value;

pub static MODULE: ModuleDef = ModuleDef {
    name: "http_client",
    aliases: &[],
    functions: FUNCTIONS,
    params: PARAMS,
    always: false,
};

const ANY: RouteMask = RouteMask::ANY;

const FUNCTIONS: &[FunctionDef] = &[
    func(
        "http_client_query",
        2,
        4,
        ANY,
        Some(fixup_last_out),
        http_client_query,
    ),
    func("http_connect", 3, 5, ANY, Some(fixup_connect), http_connect),
    func(
        "http_get_redirect",
        2,
        2,
        ANY,
        Some(fixup_last_out),
        http_get_redirect,
    ),
];

const PARAMS: &[ParamDef] = &[
    param("httpcon", ParamKind::Str),
    param("connection_timeout", ParamKind::Int),
    param("timeout_mode", ParamKind::Int),
    param("query_result", ParamKind::Int),
    param("query_maxdatasize", ParamKind::Int),
    param("maxdatasize", ParamKind::Int),
    param("useragent", ParamKind::Str),
    param("httpredirect", ParamKind::Int),
    param("keep_connections", ParamKind::Int),
    param("verify_peer", ParamKind::Int),
    param("verify_host", ParamKind::Int),
    param("tlscacert", ParamKind::Str),
    param("tlsversion", ParamKind::Int),
    param("httpproxy", ParamKind::Str),
    param("httpproxyport", ParamKind::Int),
    param("authmethod", ParamKind::Int),
    param("config_file", ParamKind::Str),
];

/// curl's error codes that this module reports.
pub mod curl {
    pub const UNSUPPORTED_PROTOCOL: i32 = 1;
    pub const URL_MALFORMAT: i32 = 3;
    pub const COULDNT_RESOLVE_HOST: i32 = 6;
    pub const COULDNT_CONNECT: i32 = 7;
    pub const WEIRD_SERVER_REPLY: i32 = 8;
    pub const SEND_ERROR: i32 = 55;
    pub const RECV_ERROR: i32 = 56;
    pub const OPERATION_TIMEDOUT: i32 = 28;
    pub const SSL_CONNECT_ERROR: i32 = 35;
    pub const TOO_MANY_REDIRECTS: i32 = 47;
    pub const PEER_FAILED_VERIFICATION: i32 = 60;
    pub const SSL_CACERT_BADFILE: i32 = 77;
}

/// An `http://` or `https://` URL taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
    /// `user:password` from the URL, for basic authentication.
    pub userinfo: Option<String>,
}

impl Url {
    /// Parses `text`; the error is curl's code.
    pub fn parse(text: &str) -> Result<Url, i32> {
        let (scheme, rest) = text.split_once("://").ok_or(curl::URL_MALFORMAT)?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err(curl::UNSUPPORTED_PROTOCOL),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        let target = target.split('#').next().unwrap_or("");
        let target = if target.starts_with('/') {
            target.to_string()
        } else {
            format!("/{target}")
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(curl::URL_MALFORMAT)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| curl::URL_MALFORMAT)?,
                None if after.is_empty() => default_port,
                None => return Err(curl::URL_MALFORMAT),
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| curl::URL_MALFORMAT)?),
                None => (hostport.to_string(), default_port),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace()) {
            return Err(curl::URL_MALFORMAT);
        }
        Ok(Url {
            tls,
            host,
            port,
            target,
            userinfo,
        })
    }

    /// The `Host` header value (the port only when it is not the scheme's).
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// One request for the runtime to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub url: String,
    /// POST data (`None`: GET).
    pub body: Option<Vec<u8>>,
    pub content_type: String,
    /// Extra header lines, without line ends.
    pub headers: Vec<String>,
    pub user_agent: String,
    pub timeout: Duration,
    pub follow_redirects: bool,
    pub verify_peer: bool,
    pub verify_host: bool,
    pub ca_file: Option<String>,
}

/// What came back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// The URL of the last request made (after redirects).
    pub effective_url: String,
}

/// Makes requests (the runtime's blocking client; a fake in tests). The
/// error is curl's code.
pub trait HttpClient: Send + Sync {
    fn perform(&self, req: &HttpRequest) -> Result<HttpResponse, i32>;
}

/// A connection declared with `httpcon`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// `scheme://rest` with no trailing `/`.
    pub base: String,
    pub timeout: Duration,
    pub maxdatasize: usize,
    pub user_agent: String,
    pub follow_redirects: bool,
    pub verify_peer: bool,
    pub verify_host: bool,
}

/// The module's parameters, its connections and its client.
pub struct HttpClientModule {
    timeout: Duration,
    oneline: bool,
    query_maxdatasize: usize,
    user_agent: String,
    follow_redirects: bool,
    verify_peer: bool,
    verify_host: bool,
    ca_file: Option<String>,
    connections: HashMap<String, Connection>,
    /// The URL each connection's last request ended at.
    redirects: Mutex<HashMap<String, String>>,
    client: Box<dyn HttpClient>,
}

/// The default `User-Agent` (Kamailio writes `kamailio (VERSION (ARCH/OS))`).
pub fn default_user_agent() -> String {
    format!(
        "ringsip ({} ({}/{}))",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS
    )
}

fn flag(mp: &ModParams, name: &str, default: bool) -> bool {
    mp.int("http_client", name).map_or(default, |v| v != 0)
}

fn size(mp: &ModParams, name: &str) -> Result<usize, String> {
    match mp.int("http_client", name).unwrap_or(0) {
        n if n >= 0 => Ok(n as usize),
        n => Err(format!("http_client: {name} {n} must not be negative")),
    }
}

impl HttpClientModule {
    pub fn from_modparams(
        mp: &ModParams,
        client: Box<dyn HttpClient>,
    ) -> Result<HttpClientModule, String> {
        let timeout = match mp.int("http_client", "connection_timeout").unwrap_or(4) {
            n if n > 0 => n as u64,
            n => {
                return Err(format!(
                    "http_client: connection_timeout {n} must be positive"
                ))
            }
        };
        let timeout = match mp.int("http_client", "timeout_mode").unwrap_or(1) {
            1 => Duration::from_secs(timeout),
            2 => Duration::from_millis(timeout),
            // 0: no limit in Kamailio; the worker still must not wait forever.
            0 => Duration::from_secs(3600),
            m => return Err(format!("http_client: timeout_mode {m} is not 0, 1 or 2")),
        };
        if mp.str("http_client", "config_file").is_some() {
            return Err("http_client: config_file is not supported yet (use httpcon)".into());
        }
        let mut m = HttpClientModule {
            timeout,
            oneline: flag(mp, "query_result", true),
            query_maxdatasize: size(mp, "query_maxdatasize")?,
            user_agent: mp
                .str("http_client", "useragent")
                .map_or_else(default_user_agent, str::to_string),
            follow_redirects: flag(mp, "httpredirect", false),
            verify_peer: flag(mp, "verify_peer", true),
            verify_host: flag(mp, "verify_host", true),
            ca_file: mp.str("http_client", "tlscacert").map(str::to_string),
            connections: HashMap::new(),
            redirects: Mutex::new(HashMap::new()),
            client,
        };
        let maxdatasize = size(mp, "maxdatasize")?;
        for v in mp.all("http_client", "httpcon") {
            let ParamValue::Str(text) = v else {
                return Err("http_client: httpcon must be a string".into());
            };
            let (name, con) = m.connection(text, maxdatasize)?;
            if m.connections.insert(name.clone(), con).is_some() {
                return Err(format!("http_client: connection \"{name}\" declared twice"));
            }
        }
        Ok(m)
    }

    /// `name=>scheme://url[;param=value…]`.
    fn connection(&self, text: &str, maxdatasize: usize) -> Result<(String, Connection), String> {
        let bad = |why: &str| format!("http_client: httpcon \"{text}\": {why}");
        let (name, rest) = text.split_once("=>").ok_or_else(|| bad("no \"=>\""))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(bad("no name"));
        }
        let mut parts = rest.trim().split(';');
        let base = parts.next().unwrap_or("").trim().trim_end_matches('/');
        Url::parse(base).map_err(|_| bad("not an http:// or https:// URL"))?;
        let mut con = Connection {
            base: base.to_string(),
            timeout: self.timeout,
            maxdatasize,
            user_agent: self.user_agent.clone(),
            follow_redirects: self.follow_redirects,
            verify_peer: self.verify_peer,
            verify_host: self.verify_host,
        };
        for p in parts.filter(|p| !p.trim().is_empty()) {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (k, v) = (k.trim(), v.trim());
            let num = || {
                v.parse::<u64>()
                    .map_err(|_| bad(&format!("{k}: not a number")))
            };
            match k {
                "timeout" => con.timeout = Duration::from_secs(num()?.max(1)),
                "maxdatasize" => con.maxdatasize = num()? as usize,
                "useragent" => con.user_agent = v.to_string(),
                "httpredirect" => con.follow_redirects = num()? != 0,
                "verify_peer" => con.verify_peer = num()? != 0,
                "verify_host" => con.verify_host = num()? != 0,
                // Accepted, no effect here: connections are not kept.
                "keepconnections" | "failover" | "httpproxy" | "httpproxyport" | "tlsversion"
                | "authmethod" | "clientcert" | "clientkey" | "cipher_suites" | "cacert" => {}
                _ => return Err(bad(&format!("unknown parameter \"{k}\""))),
            }
        }
        Ok((name.to_string(), con))
    }

    pub fn connection_named(&self, name: &str) -> Option<&Connection> {
        self.connections.get(name)
    }
}

fn fixup_last_out(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let last = args.len() - 1;
    as_pv(args, last);
    out_pv(args, last)
}

fn fixup_connect(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    if args.len() == 4 {
        return Err("http_connect takes 3 or 5 arguments".into());
    }
    fixup_last_out(args, mp)
}

fn module<'c>(ctx: &'c MsgCtx<'_>) -> Option<&'c HttpClientModule> {
    ctx.env.services.get::<HttpClientModule>()
}

fn arg_text(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> String {
    String::from_utf8_lossy(&args.str(ctx, i)).into_owned()
}

/// Kamailio's answer as a function value (0 is -1).
fn code(c: i32) -> i32 {
    if c == 0 {
        -1
    } else {
        c
    }
}

/// The body for the result variable: for 200–499 only, cut at the first
/// line feed (`oneline`) or at `max` bytes (0: no limit).
fn result_body(resp: &HttpResponse, oneline: bool, max: usize) -> Vec<u8> {
    if !(200..500).contains(&resp.status) {
        return Vec::new();
    }
    let body = &resp.body[..];
    if oneline {
        if let Some(i) = body.iter().position(|&b| b == b'\n') {
            return body[..i].to_vec();
        }
    }
    let n = if max > 0 {
        body.len().min(max)
    } else {
        body.len()
    };
    body[..n].to_vec()
}

fn set_result(ctx: &mut MsgCtx<'_>, args: &Args, value: Vec<u8>) {
    let Some(Arg::Pv(pv)) = args.get(args.len() - 1) else {
        return;
    };
    if let Err(e) = ctx.write_pv(pv, Value::owned(value)) {
        log::warn!("http_client: {e}");
    }
}

fn perform(m: &HttpClientModule, req: &HttpRequest) -> Result<HttpResponse, i32> {
    let r = m.client.perform(req);
    if let Err(c) = &r {
        log::warn!(
            "http_client: request to {} failed (curl error {c})",
            req.url
        );
    }
    r
}

fn http_client_query(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(m) = module(ctx) else {
        return -1;
    };
    let url = arg_text(ctx, args, 0);
    if url.is_empty() {
        log::error!("http_client_query: URL has no value");
        return -1;
    }
    let body = (args.len() >= 3)
        .then(|| args.str(ctx, 1).into_owned())
        .filter(|b| !b.is_empty());
    let headers: Vec<String> = (args.len() == 4)
        .then(|| arg_text(ctx, args, 2))
        .filter(|h| !h.is_empty())
        .into_iter()
        .collect();
    let req = HttpRequest {
        url,
        body,
        content_type: "application/x-www-form-urlencoded".into(),
        headers,
        user_agent: m.user_agent.clone(),
        timeout: m.timeout,
        follow_redirects: m.follow_redirects,
        verify_peer: m.verify_peer,
        verify_host: m.verify_host,
        ca_file: m.ca_file.clone(),
    };
    let (oneline, max) = (m.oneline, m.query_maxdatasize);
    match perform(m, &req) {
        Ok(resp) => {
            let value = result_body(&resp, oneline, max);
            set_result(ctx, args, value);
            code(i32::from(resp.status))
        }
        Err(c) => {
            set_result(ctx, args, Vec::new());
            code(c)
        }
    }
}

fn http_connect(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(m) = module(ctx) else {
        return -1;
    };
    let name = arg_text(ctx, args, 0);
    let Some(con) = m.connection_named(&name) else {
        log::error!("http_connect: no cURL connection found: {name}");
        return -1;
    };
    let path = arg_text(ctx, args, 1);
    let url = if path.is_empty() {
        con.base.clone()
    } else if path.starts_with('/') {
        format!("{}{path}", con.base)
    } else {
        format!("{}/{path}", con.base)
    };
    let (content_type, body) = if args.len() == 5 {
        let data = args.str(ctx, 3).into_owned();
        let ct = arg_text(ctx, args, 2);
        (ct, Some(data).filter(|d| !d.is_empty()))
    } else {
        (String::new(), None)
    };
    let req = HttpRequest {
        url,
        body,
        content_type: if content_type.is_empty() {
            "text/plain".into()
        } else {
            content_type
        },
        headers: Vec::new(),
        user_agent: con.user_agent.clone(),
        timeout: con.timeout,
        follow_redirects: con.follow_redirects,
        verify_peer: con.verify_peer,
        verify_host: con.verify_host,
        ca_file: m.ca_file.clone(),
    };
    let max = con.maxdatasize;
    let result = perform(m, &req);
    if let Ok(resp) = &result {
        if let Ok(mut r) = m.redirects.lock() {
            r.insert(name, resp.effective_url.clone());
        }
    }
    match result {
        Ok(resp) => {
            let value = result_body(&resp, false, max);
            set_result(ctx, args, value);
            code(i32::from(resp.status))
        }
        Err(c) => {
            set_result(ctx, args, Vec::new());
            code(c)
        }
    }
}

fn http_get_redirect(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(m) = module(ctx) else {
        return -1;
    };
    let name = arg_text(ctx, args, 0);
    if m.connection_named(&name).is_none() {
        log::error!("http_get_redirect: no cURL connection found: {name}");
        return -1;
    }
    let url = m
        .redirects
        .lock()
        .ok()
        .and_then(|r| r.get(&name).cloned())
        .unwrap_or_default();
    set_result(ctx, args, url.into_bytes());
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart_as_curl_does() {
        let u = Url::parse("http://127.0.0.1:8088/a?x=1").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "127.0.0.1", 8088));
        assert_eq!(u.target, "/a?x=1");
        assert_eq!(u.host_header(), "127.0.0.1:8088");
        let u = Url::parse("https://user:pw@api.example.com?q=2#frag").unwrap();
        assert_eq!((u.tls, u.port, u.target.as_str()), (true, 443, "/?q=2"));
        assert_eq!(u.userinfo.as_deref(), Some("user:pw"));
        assert_eq!(u.host_header(), "api.example.com");
        let u = Url::parse("http://[::1]:81/p").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 81));
        assert_eq!(u.host_header(), "[::1]:81");
        assert_eq!(Url::parse("ftp://h/x"), Err(curl::UNSUPPORTED_PROTOCOL));
        assert_eq!(Url::parse("no scheme"), Err(curl::URL_MALFORMAT));
        assert_eq!(Url::parse("http://h:port/"), Err(curl::URL_MALFORMAT));
        assert_eq!(Url::parse("http:///x"), Err(curl::URL_MALFORMAT));
    }

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            body: body.as_bytes().to_vec(),
            effective_url: String::new(),
        }
    }

    #[test]
    fn the_result_is_the_first_line_for_statuses_200_to_499() {
        // Cut at the line feed: a CR before it stays, as in Kamailio.
        assert_eq!(
            result_body(&resp(200, "first line\r\nsecond\n"), true, 0),
            b"first line\r"
        );
        assert_eq!(result_body(&resp(200, "a\nb"), false, 0), b"a\nb");
        assert_eq!(
            result_body(&resp(404, "xxxxxxxxxx"), true, 0),
            b"xxxxxxxxxx"
        );
        assert_eq!(result_body(&resp(404, "xxxxxxxxxx"), true, 4), b"xxxx");
        assert_eq!(result_body(&resp(503, "oops\n"), true, 0), b"");
        assert_eq!(result_body(&resp(199, "x"), true, 0), b"");
        assert_eq!(code(0), -1);
        assert_eq!(code(7), 7);
    }

    struct Never;
    impl HttpClient for Never {
        fn perform(&self, _: &HttpRequest) -> Result<HttpResponse, i32> {
            Err(curl::COULDNT_CONNECT)
        }
    }

    fn mp(lines: &[(&str, ParamValue)]) -> ModParams {
        let mut mp = ModParams::default();
        for (p, v) in lines {
            mp.push("http_client", p, v.clone());
        }
        mp
    }

    #[test]
    fn connections_are_read_from_httpcon() {
        let m = HttpClientModule::from_modparams(
            &mp(&[
                (
                    "httpcon",
                    ParamValue::Str("api=>http://10.0.0.1:8080/v1/;timeout=2".into()),
                ),
                (
                    "httpcon",
                    ParamValue::Str("sec => https://h.example ;useragent=me".into()),
                ),
                ("connection_timeout", ParamValue::Int(9)),
            ]),
            Box::new(Never),
        )
        .unwrap();
        let api = m.connection_named("api").unwrap();
        assert_eq!(api.base, "http://10.0.0.1:8080/v1");
        assert_eq!(api.timeout, Duration::from_secs(2));
        let sec = m.connection_named("sec").unwrap();
        assert_eq!(sec.timeout, Duration::from_secs(9));
        assert_eq!(sec.user_agent, "me");
        for (bad, needle) in [
            ("x", "no \"=>\""),
            ("a=>ftp://h", "not an http"),
            ("a=>http://h;bogus=1", "unknown parameter"),
        ] {
            let err = HttpClientModule::from_modparams(
                &mp(&[("httpcon", ParamValue::Str(bad.into()))]),
                Box::new(Never),
            )
            .err()
            .unwrap();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
