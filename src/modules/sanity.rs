//! sanity: `sanity_check([msg_checks[, uri_checks]])` and `sanity_reply()`
//! (KAMAILIO-REFERENCE §7.4). Checks run in Kamailio's order; the first that
//! fails ends the run. A failing request (not an ACK) is answered statelessly
//! with the check's code and reason, unless `noreply` is set: then
//! `sanity_reply()` sends it later. The function returns 1 on pass, and on
//! failure 0 (the script stops) with `autodrop=1`, the default, or -1.

use crate::modules::sl;
use crate::script::ctx::MsgCtx;
use crate::script::registry::{
    fixup_int, Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::sip::auth::Credentials;
use crate::sip::nameaddr::{contacts, Contact, NameAddr};
use crate::sip::uri::{Scheme, Uri};
use crate::sip::via::vias;
use crate::sip::{HeaderName, Message};

// Message checks (bit values as in Kamailio).
pub const RURI_SIP_VERSION: u32 = 1;
pub const RURI_SCHEME: u32 = 2;
pub const REQUIRED_HEADERS: u32 = 4;
pub const VIA_SIP_VERSION: u32 = 8;
pub const VIA_PROTOCOL: u32 = 16;
pub const CSEQ_METHOD: u32 = 32;
pub const CSEQ_VALUE: u32 = 64;
pub const CL: u32 = 128;
pub const EXPIRES_VALUE: u32 = 256;
pub const PROXY_REQUIRE: u32 = 512;
pub const PARSE_URIS: u32 = 1024;
pub const DIGEST: u32 = 2048;
pub const DUPLICATE_TAGS: u32 = 4096;
pub const AUTHORIZATION: u32 = 8192;
pub const VIA1_HEADER: u32 = 16384;

// URI checks for PARSE_URIS.
pub const URI_RURI: u32 = 1;
pub const URI_FROM: u32 = 2;
pub const URI_TO: u32 = 4;
pub const URI_CONTACT: u32 = 8;

const DEFAULT_CHECKS: u32 = 3047;
const DEFAULT_URI_CHECKS: u32 = 7;

/// Module parameters, read once at fixup.
#[derive(Debug, Clone)]
struct SanityCfg {
    default_checks: u32,
    uri_checks: u32,
    /// `proxy_require`: the extensions this proxy supports.
    proxy_require: Vec<String>,
    autodrop: bool,
    noreply: bool,
}

impl SanityCfg {
    fn from_params(p: &ModParams) -> SanityCfg {
        let int = |name, default: i64| p.int("sanity", name).unwrap_or(default);
        SanityCfg {
            default_checks: int("default_checks", i64::from(DEFAULT_CHECKS)) as u32,
            uri_checks: int("uri_checks", i64::from(DEFAULT_URI_CHECKS)) as u32,
            proxy_require: p
                .str("sanity", "proxy_require")
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            autodrop: int("autodrop", 1) != 0,
            noreply: int("noreply", 0) != 0,
        }
    }
}

/// The default checks with the module's parameters, as Kamailio's sanity API
/// (`check_defaults`) offers them to other modules (topoh's `sanity_checks`).
#[derive(Debug, Clone)]
pub struct DefaultChecks(SanityCfg);

impl DefaultChecks {
    pub fn from_modparams(p: &ModParams) -> DefaultChecks {
        DefaultChecks(SanityCfg::from_params(p))
    }

    /// Whether `msg` passes (nothing is sent either way).
    pub fn passes(&self, msg: &Message) -> bool {
        check(
            msg,
            self.0.default_checks,
            self.0.uri_checks,
            &self.0,
            msg.len(),
        )
        .is_ok()
    }
}

/// Why a check failed: the reply to send (`None` for checks Kamailio fails silently).
#[derive(Debug, PartialEq, Eq)]
struct Failure {
    reply: Option<(u16, &'static str)>,
    /// Extra header lines for the reply (420's Unsupported).
    headers: Vec<u8>,
}

fn fail(code: u16, reason: &'static str) -> Failure {
    Failure {
        reply: Some((code, reason)),
        headers: Vec::new(),
    }
}

fn fail_silently() -> Failure {
    Failure {
        reply: None,
        headers: Vec::new(),
    }
}

/// Runs the checks `checks` (and `uri_checks` for PARSE_URIS) on `msg`.
fn check(
    msg: &Message,
    checks: u32,
    uri_checks: u32,
    cfg: &SanityCfg,
    wire_len: usize,
) -> Result<(), Failure> {
    let req = msg.is_request();
    let on = |bit| checks & bit != 0;
    // The parser refuses any version but SIP/2.0 already; kept for messages built otherwise.
    if req && on(RURI_SIP_VERSION) {
        let line = msg.slice(msg.start_line());
        let version = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
        if !version.eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(fail(505, "Version Not Supported (R-URI)"));
        }
    }
    if req && on(RURI_SCHEME) {
        match Uri::parse(msg.request_uri().unwrap_or(b"")) {
            Err(_) => return Err(fail(400, "Bad Request URI")),
            Ok(u) => {
                let ok = match u.scheme() {
                    Scheme::Sip | Scheme::Sips | Scheme::Tel => true,
                    Scheme::Other(s) => s.eq_ignore_ascii_case(b"tels"),
                };
                // Kamailio 5.6's URI parser fails on a scheme it does not know.
                if !ok {
                    return Err(fail(400, "Bad Request URI"));
                }
            }
        }
    }
    if on(REQUIRED_HEADERS) {
        // Kamailio parses the whole header section for this check; a field
        // it refuses fails it, and the 400 it then tries cannot be built.
        if msg.broken_header().is_some() {
            return Err(fail_silently());
        }
        let all = [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ]
        .iter()
        .all(|&id| msg.header(id).is_some());
        if !all {
            return Err(fail(400, "Missing Required Header in Request"));
        }
    }
    if on(VIA1_HEADER) {
        let top = msg
            .header_value(HeaderName::Via)
            .and_then(|v| vias(v).next());
        if !matches!(top, Some(Ok(_))) {
            return Err(fail_silently());
        }
    }
    // VIA_SIP_VERSION and VIA_PROTOCOL: Kamailio's Via parser already refuses
    // what they would find, so they always pass; here the Via parser does too.
    let cseq = msg.header_value(HeaderName::CSeq).map(split_cseq);
    if req && on(CSEQ_METHOD) {
        let Some((_, method)) = cseq else {
            return Err(fail_silently());
        };
        if method.is_empty() {
            return Err(fail(400, "Missing method in CSeq header"));
        }
        if method != msg.method_bytes() {
            return Err(fail(400, "CSeq method does not match request method"));
        }
    }
    if on(CSEQ_VALUE) {
        let Some((number, _)) = cseq else {
            return Err(fail_silently());
        };
        if number.is_empty() {
            return Err(fail(400, "Missing number in CSeq header"));
        }
        if !valid_uint(number) {
            return Err(fail(400, "CSeq number is illegal"));
        }
    }
    if on(CL) && msg.header(HeaderName::ContentLength).is_some() {
        // What arrived after the header section, against what the header says.
        let declared = msg.declared_content_length().unwrap_or(0);
        let arrived = wire_len.saturating_sub(msg.body_span().start as usize);
        if declared != arrived {
            return Err(fail(400, "Content-Length mis-match"));
        }
    }
    if on(EXPIRES_VALUE) {
        if let Some(v) = msg.header_value(HeaderName::Expires) {
            let v = v.trim_ascii();
            if v.is_empty() {
                return Err(fail(400, "Missing number in Expires header"));
            }
            if !valid_uint(v) {
                return Err(fail(400, "Expires value is illegal"));
            }
        }
    }
    if req && on(PROXY_REQUIRE) {
        for h in msg.headers_of(HeaderName::ProxyRequire) {
            for ext in msg.value(h).split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if ext.is_empty() || cfg.proxy_require.iter().any(|s| s.as_bytes() == ext) {
                    continue;
                }
                let mut f = fail(420, "Bad Proxy Require Extension");
                f.headers.extend_from_slice(b"Unsupported: ");
                f.headers.extend_from_slice(ext);
                f.headers.extend_from_slice(b"\r\n");
                return Err(f);
            }
        }
    }
    if on(PARSE_URIS) {
        check_uris(msg, uri_checks)?;
    }
    if on(DIGEST) {
        for h in msg.headers().iter().filter(|h| {
            matches!(
                h.id,
                HeaderName::Authorization | HeaderName::ProxyAuthorization
            )
        }) {
            let Ok(c) = Credentials::parse(msg.value(h)) else {
                return Err(fail(400, "Bad Auth Header"));
            };
            if !c.is_digest() {
                continue;
            }
            let given = |v: Option<&[u8]>| v.is_some_and(|v| !v.is_empty());
            let mut needed = vec![c.username(), c.realm(), c.nonce(), c.uri(), c.response()];
            if c.qop().is_some() {
                needed.extend([c.cnonce(), c.nc()]);
            }
            if !needed.into_iter().all(given) {
                return Err(fail(400, "Bad Auth Credentials"));
            }
        }
    }
    if on(DUPLICATE_TAGS) {
        for id in [HeaderName::From, HeaderName::To] {
            let tags = msg
                .header_value(id)
                .and_then(|v| NameAddr::parse(v).ok())
                .map_or(0, |na| na.params().filter(|p| p.is(b"tag")).count());
            if tags > 1 {
                let what = if id == HeaderName::From {
                    "Many From Tag Params"
                } else {
                    "Many To Tag Params"
                };
                return Err(fail(400, what));
            }
        }
    }
    if on(AUTHORIZATION) {
        let bad = msg
            .headers_of(HeaderName::Authorization)
            .any(|h| Credentials::parse(msg.value(h)).is_err());
        if bad {
            return Err(fail_silently());
        }
    }
    Ok(())
}

/// The URIs named by `uri_checks` must parse.
fn check_uris(msg: &Message, uri_checks: u32) -> Result<(), Failure> {
    if msg.is_request()
        && uri_checks & URI_RURI != 0
        && Uri::parse(msg.request_uri().unwrap_or(b"")).is_err()
    {
        return Err(fail(400, "Bad Request URI"));
    }
    for (bit, id, missing, bad_header, bad_uri) in [
        (
            URI_FROM,
            HeaderName::From,
            "Missing From Header",
            "Bad From header",
            "Invalid From Header",
        ),
        (
            URI_TO,
            HeaderName::To,
            "Missing To Header",
            "Bad To URI",
            // Kamailio 5.6's text, as it is written there.
            "Ivalid To Header",
        ),
    ] {
        if uri_checks & bit == 0 {
            continue;
        }
        let Some(v) = msg.header_value(id) else {
            return Err(fail(400, missing));
        };
        let Ok(na) = NameAddr::parse(v) else {
            return Err(fail(400, bad_header));
        };
        if na.uri().is_err() {
            return Err(fail(400, bad_uri));
        }
    }
    if uri_checks & URI_CONTACT != 0 {
        if let Some(v) = msg.header_value(HeaderName::Contact) {
            match contacts(v).next() {
                Some(Ok(Contact::Star)) | None => {}
                Some(Ok(c)) => {
                    if c.name_addr().is_some_and(|na| na.uri().is_err()) {
                        return Err(fail(400, "Bad Contact URI"));
                    }
                }
                Some(Err(_)) => return Err(fail(400, "Bad Contact Header")),
            }
        }
    }
    Ok(())
}

/// CSeq's number and method, as written (either may be empty): the runs
/// of anything but white space Kamailio's parser splits it into, so that
/// `CSeq: x INVITE` has the number `x` ("CSeq number is illegal").
fn split_cseq(v: &[u8]) -> (&[u8], &[u8]) {
    let v = v.trim_ascii();
    let n = v
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(v.len());
    let rest = v[n..].trim_ascii_start();
    let m = rest
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    (&v[..n], &rest[..m])
}

/// Digits only, and at most 2**32-1.
fn valid_uint(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= 10
        && v.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(v).is_ok_and(|s| s.parse::<u32>().is_ok())
}

fn fixup_sanity(args: &mut Args, params: &ModParams) -> Result<(), String> {
    for i in 0..args.len() {
        if let Some(Arg::Str(_)) = args.get(i) {
            fixup_int(args, i)?;
        }
    }
    args.0
        .push(Arg::Custom(Box::new(SanityCfg::from_params(params))));
    Ok(())
}

fn cfg(args: &Args) -> Option<&SanityCfg> {
    args.custom::<SanityCfg>(args.len().checked_sub(1)?)
}

/// `sanity_check([msg_checks[, uri_checks]])`.
fn sanity_check(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(cfg) = cfg(args) else { return -1 };
    let given = args.len() - 1;
    let mask = |i, default| {
        if given > i {
            args.int(ctx, i).map_or(default, |n| n as u32)
        } else {
            default
        }
    };
    let checks = mask(0, cfg.default_checks);
    let uri_checks = mask(1, cfg.uri_checks);
    // Kamailio 5.6 refuses masks past the checks it knows, with no reply.
    if checks >= 2 * VIA1_HEADER || uri_checks >= 2 * URI_CONTACT {
        log::error!("sanity_check: check mask {checks}/{uri_checks} names unknown checks");
        return -1;
    }
    let msg = ctx.msg;
    let Err(failure) = check(msg, checks, uri_checks, cfg, msg.buf().len()) else {
        return 1;
    };
    log::debug!("sanity_check failed: {failure:?}");
    let answerable = msg.is_request() && msg.method_bytes() != b"ACK";
    if let (Some((code, reason)), true) = (failure.reply, answerable) {
        if cfg.noreply {
            ctx.state.sanity_reply = Some((code, reason, failure.headers));
        } else {
            send(ctx, code, reason, &failure.headers);
        }
    }
    if cfg.autodrop {
        0
    } else {
        -1
    }
}

fn send(ctx: &mut MsgCtx<'_>, code: u16, reason: &str, headers: &[u8]) -> i32 {
    let mark = ctx.state.reply_headers.len();
    ctx.state.reply_headers.extend_from_slice(headers);
    let rc = sl::send_reply(ctx, code, reason.as_bytes());
    ctx.state.reply_headers.truncate(mark);
    rc
}

/// `sanity_reply()`: sends the reply a `noreply` check held back; -1 when there is none.
fn sanity_reply(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    match ctx.state.sanity_reply.take() {
        Some((code, reason, headers)) => send(ctx, code, reason, &headers),
        None => -1,
    }
}

const CHECK_ROUTES: RouteMask = RouteMask::REQUEST
    .or(RouteMask::ONREPLY)
    .or(RouteMask::REPLY);

pub static MODULE: ModuleDef = ModuleDef {
    name: "sanity",
    aliases: &[],
    functions: &[
        FunctionDef {
            name: "sanity_check",
            min_args: 0,
            max_args: 2,
            routes: CHECK_ROUTES,
            fixup: Some(fixup_sanity),
            call: sanity_check,
        },
        FunctionDef {
            name: "sanity_reply",
            min_args: 0,
            max_args: 0,
            routes: RouteMask::REQUEST,
            fixup: None,
            call: sanity_reply,
        },
    ],
    params: &[
        ParamDef {
            name: "default_checks",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "uri_checks",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "proxy_require",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "autodrop",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "noreply",
            kind: ParamKind::Int,
        },
    ],
    always: false,
};

#[cfg(test)]
mod tests;
