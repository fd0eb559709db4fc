//! siputils: tests on the message and on strings, R-URI parameters, `tel:`
//! conversion, `options_reply` (KAMAILIO-REFERENCE §7.2). 1 true, -1 false
//! unless noted. `is_uri_host_local()` belongs to Kamailio's domain module
//! and is not here.

use bytes::Bytes;

use crate::modules::kex::names_myself;
use crate::modules::sl;
use crate::script::ctx::MsgCtx;
use crate::script::registry::truth;
use crate::script::registry::{
    Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::script::value::Value;
use crate::sip::auth::Credentials;
use crate::sip::headers::route_set;
use crate::sip::name::same_header;
use crate::sip::scan::Params;
use crate::sip::uri::{Scheme, Uri};
use crate::sip::via::vias;
use crate::sip::HeaderName;

/// `has_totag()`.
fn has_totag(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let tag = ctx.msg.to_tag().and_then(|t| t.map(|t| !t.is_empty()));
    truth(tag == Some(true))
}

fn is_request(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    truth(ctx.msg.is_request())
}

fn is_reply(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    truth(!ctx.msg.is_request())
}

/// `is_first_hop([mode])`: a request carrying exactly one Via; a reply whose
/// top Record-Route is this server and that came from elsewhere.
fn is_first_hop(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let msg = ctx.msg;
    if msg.is_request() {
        let n = msg
            .headers_of(HeaderName::Via)
            .flat_map(|h| vias(msg.value(h)))
            .count();
        return truth(n == 1);
    }
    let top_rr = msg
        .header_value(HeaderName::RecordRoute)
        .and_then(|v| route_set(v).next())
        .and_then(|r| r.ok())
        .map(|na| na.uri_raw().to_vec());
    let Some(rr) = top_rr else { return -1 };
    let src = ctx.src.ip().to_string();
    truth(
        names_myself(ctx, &rr)
            && !ctx
                .env
                .is_myself(src.as_bytes(), Some(ctx.src.port()), None),
    )
}

/// `is_user(name)`: the username of the request's digest credentials.
fn is_user(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let want = args.str(ctx, 0);
    let msg = ctx.msg;
    let found = msg
        .headers()
        .iter()
        .filter(|h| {
            matches!(
                h.id,
                HeaderName::ProxyAuthorization | HeaderName::Authorization
            )
        })
        .filter_map(|h| Credentials::parse(msg.value(h)).ok())
        .any(|c| c.username() == Some(want.as_ref()));
    truth(found)
}

/// The current R-URI, parsed.
fn with_ruri<T>(ctx: &MsgCtx<'_>, f: impl FnOnce(&Uri<'_>) -> T) -> Option<T> {
    if !ctx.msg.is_request() {
        return None;
    }
    Uri::parse(ctx.ruri()).ok().map(|u| f(&u))
}

/// The parameters Kamailio's R-URI functions see: those of the URI, except
/// for a `sip:`/`sips:` URI with `user=phone`, which Kamailio (`phone2tel`)
/// takes as a tel URI whose parameters are the user part's (`;…` after the
/// number), none when it has none.
fn ruri_params<'a>(u: &Uri<'a>) -> Params<'a> {
    let phone = matches!(u.scheme(), Scheme::Sip | Scheme::Sips)
        && u.user_param()
            .is_some_and(|v| v.eq_ignore_ascii_case(b"phone"));
    if !phone {
        return u.params();
    }
    let user = u.user().unwrap_or(b"");
    match user.iter().position(|&b| b == b';') {
        Some(i) => Params::new(&user[i..]),
        None => Params::new(b""),
    }
}

/// `uri_param(name[, value])`: the R-URI has the parameter (with that value).
fn uri_param(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    let want = (args.len() > 1).then(|| args.str(ctx, 1).into_owned());
    let hit = with_ruri(ctx, |u| match (ruri_params(u).get(&name), &want) {
        (Some(p), Some(v)) => p.value == Some(v.as_slice()),
        (Some(_), None) => true,
        (None, _) => false,
    });
    truth(hit == Some(true))
}

/// `get_uri_param(name, var)`: the parameter's value into a variable.
fn get_uri_param(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    let Some(Some(value)) = with_ruri(ctx, |u| {
        u.param(&name).map(|p| p.value.unwrap_or(b"").to_vec())
    }) else {
        return -1;
    };
    let Some(Arg::Pv(pv)) = args.get(1) else {
        return -1;
    };
    truth(ctx.write_pv(pv, Value::owned(value)).is_ok())
}

/// The current R-URI with its parameter list replaced by `params`: the list
/// is followed only by the optional `?headers` part.
fn ruri_with_params(u: &Uri<'_>, params: &[u8]) -> Vec<u8> {
    let raw = u.raw();
    let tail = u.headers_raw().map_or(0, |h| h.len() + 1);
    let end = raw.len().saturating_sub(tail);
    let start = end.saturating_sub(u.params_raw().len());
    let mut out = raw[..start].to_vec();
    out.extend_from_slice(params);
    out.extend_from_slice(&raw[end..]);
    out
}

/// `add_uri_param("name=value")`: appended to the R-URI parameters.
fn add_uri_param(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let param = args.str(ctx, 0).into_owned();
    if param.is_empty() {
        return -1;
    }
    let new = with_ruri(ctx, |u| {
        let mut params = u.params_raw().to_vec();
        params.push(b';');
        params.extend_from_slice(&param);
        ruri_with_params(u, &params)
    });
    match new {
        Some(n) if Uri::parse(&n).is_ok() => {
            ctx.new_uri = Some(Bytes::from(n));
            1
        }
        _ => -1,
    }
}

/// `uri_param_rm(name)`: every parameter of that name removed from the R-URI.
fn uri_param_rm(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    let new = with_ruri(ctx, |u| {
        let raw = u.params_raw();
        let mut params = Vec::new();
        let mut removed = false;
        for p in u.params() {
            if p.is(&name) {
                removed = true;
                continue;
            }
            params.push(b';');
            let text = &raw[p.start..p.end];
            params.extend_from_slice(text.strip_prefix(b";").unwrap_or(text));
        }
        removed.then(|| ruri_with_params(u, &params))
    });
    match new {
        Some(Some(n)) => {
            ctx.new_uri = Some(Bytes::from(n));
            1
        }
        _ => -1,
    }
}

/// `tel2sip(uri, host, var)`: a `tel:` URI becomes
/// `sip:<number>[;params]@host;user=phone` (visual separators dropped,
/// RFC 3261 §19.1.6). 1 converted, 2 not a `tel:` URI (nothing written), -1 error.
fn tel2sip(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let uri = args.str(ctx, 0).into_owned();
    let host = args.str(ctx, 1).into_owned();
    let Ok(u) = Uri::parse(&uri) else {
        return if uri.len() >= 4 && uri[..4].eq_ignore_ascii_case(b"tel:") {
            -1
        } else {
            2
        };
    };
    if u.scheme() != Scheme::Tel {
        return 2;
    }
    let mut out = b"sip:".to_vec();
    out.extend(
        u.user()
            .unwrap_or(b"")
            .iter()
            .filter(|b| !matches!(b, b'-' | b'.' | b'(' | b')')),
    );
    out.extend_from_slice(u.params_raw());
    out.push(b'@');
    out.extend_from_slice(host.strip_prefix(b"sip:").unwrap_or(&host));
    out.extend_from_slice(b";user=phone");
    let Some(Arg::Pv(pv)) = args.get(2) else {
        return -1;
    };
    truth(ctx.write_pv(pv, Value::owned(out)).is_ok())
}

/// E.164: `+` and 2 to 15 digits.
fn e164(s: &[u8]) -> bool {
    matches!(s, [b'+', rest @ ..] if (2..=15).contains(&rest.len()) && rest.iter().all(u8::is_ascii_digit))
}

fn is_e164(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(e164(&args.str(ctx, 0)))
}

/// `is_uri_user_e164(uri)`.
fn is_uri_user_e164(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let v = args.str(ctx, 0);
    truth(Uri::parse(&v).ok().and_then(|u| u.user()).is_some_and(e164))
}

fn is_uri(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(Uri::parse(&args.str(ctx, 0)).is_ok())
}

/// `is_tel_number(s)`: digits, optionally after a `+` that a non-zero digit
/// follows; -2 otherwise (Kamailio's code for a failed check).
fn is_tel_number(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let s = args.str(ctx, 0);
    let digits = match s.strip_prefix(b"+") {
        Some(rest) if matches!(rest.first(), Some(b'1'..=b'9')) => rest,
        Some(_) => return -2,
        None => &s[..],
    };
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        1
    } else {
        -2
    }
}

/// `is_numeric(s)`: decimal digits only; -2 otherwise (an empty text too).
fn is_numeric(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let s = args.str(ctx, 0);
    if !s.is_empty() && s.iter().all(u8::is_ascii_digit) {
        1
    } else {
        -2
    }
}

/// Kamailio's codes for the character-class checks: 1, -2 for an empty
/// text, -3 for a character outside the class.
fn class_check(s: &[u8], ok: impl Fn(u8) -> bool) -> i32 {
    if s.is_empty() {
        -2
    } else if s.iter().all(|&c| ok(c)) {
        1
    } else {
        -3
    }
}

fn is_alphanum(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    class_check(&args.str(ctx, 0), |c| c.is_ascii_alphanumeric())
}

/// `is_alphanumex(text, extra)`: every character is an ASCII letter, a digit
/// or one of `extra`.
fn is_alphanumex(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let extra = args.str(ctx, 1).into_owned();
    class_check(&args.str(ctx, 0), |c| {
        c.is_ascii_alphanumeric() || extra.contains(&c)
    })
}

/// `is_gruu([uri])` (RFC 5627): 1 public GRUU (`gr=value`), 2 temporary (`gr`), -1 neither.
fn is_gruu(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let v = if args.is_empty() {
        ctx.ruri().to_vec()
    } else {
        args.str(ctx, 0).into_owned()
    };
    match Uri::parse(&v).ok().and_then(|u| u.param(b"gr")) {
        Some(p) if p.value.is_some_and(|v| !v.is_empty()) => 1,
        Some(_) => 2,
        None => -1,
    }
}

/// `cmp_uri(a, b)`: Kamailio's URI comparison (not quite RFC 3261 §19.1.4):
/// same scheme, user and password (exact), host as written (any case: `[::1]`
/// and `[0::1]` differ), port as written (none differs from 5060); `user`,
/// `ttl`, `method` and `maddr` must be on both sides or neither (not
/// `transport`); a parameter on both sides has the same value (any case).
/// -2 when one does not parse.
fn cmp_uri(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (a, b) = (args.str(ctx, 0), args.str(ctx, 1));
    match (Uri::parse(&a), Uri::parse(&b)) {
        (Ok(a), Ok(b)) => truth(kamailio_uri_eq(&a, &b)),
        _ => -2,
    }
}

fn kamailio_uri_eq(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    const STICKY: [&[u8]; 4] = [b"user", b"ttl", b"method", b"maddr"];
    let same_scheme = match (a.scheme(), b.scheme()) {
        (Scheme::Other(x), Scheme::Other(y)) => x.eq_ignore_ascii_case(y),
        (x, y) => std::mem::discriminant(&x) == std::mem::discriminant(&y),
    };
    if matches!(a.scheme(), Scheme::Other(_)) {
        return same_scheme && a.raw() == b.raw();
    }
    let port = |u: &Uri<'_>| u.port().map(|p| p.to_string());
    let params_ok = STICKY
        .iter()
        .all(|n| a.param(n).is_some() == b.param(n).is_some())
        && a.params().all(|p| {
            b.params()
                .filter(|q| q.name.eq_ignore_ascii_case(p.name))
                .all(|q| {
                    q.value
                        .unwrap_or(b"")
                        .eq_ignore_ascii_case(p.value.unwrap_or(b""))
                })
        });
    same_scheme
        && a.user() == b.user()
        && a.password() == b.password()
        && a.host_raw().eq_ignore_ascii_case(b.host_raw())
        && port(a) == port(b)
        && params_ok
}

/// `cmp_aor(a, b)`: same user (exact), host (any case) and port (5060 when
/// absent), parameters ignored; -2 when one does not parse.
fn cmp_aor(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (a, b) = (args.str(ctx, 0), args.str(ctx, 1));
    match (Uri::parse(&a), Uri::parse(&b)) {
        (Ok(a), Ok(b)) => truth(
            a.user() == b.user()
                && a.host_raw().eq_ignore_ascii_case(b.host_raw())
                && a.port().unwrap_or(5060) == b.port().unwrap_or(5060),
        ),
        _ => -2,
    }
}

/// `cmp_hdr_name(a, b)`: header names, compact forms and case folded.
fn cmp_hdr_name(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(same_header(&args.str(ctx, 0), &args.str(ctx, 1)))
}

/// `is_supported(option)`: a Supported header lists it.
fn is_supported(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let want = args.str(ctx, 0);
    let msg = ctx.msg;
    truth(msg.headers_of(HeaderName::Supported).any(|h| {
        msg.value(h)
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(&want))
    }))
}

/// Methods named in the Allow header of `options_reply`.
const ALLOW: &str = "INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, PUBLISH, MESSAGE, PRACK, UPDATE";

/// `options_reply()`: answers an OPTIONS for this server (no R-URI user)
/// with 200 and what it accepts; -1 for another method or a user.
fn options_reply(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if ctx.msg.method_bytes() != b"OPTIONS" || with_ruri(ctx, |u| u.user().is_none()) != Some(true)
    {
        return -1;
    }
    let Some(headers) = args.custom::<Vec<u8>>(0) else {
        return -1;
    };
    let mark = ctx.state.reply_headers.len();
    ctx.state.reply_headers.extend_from_slice(headers);
    let rc = sl::send_reply(ctx, 200, b"OK");
    ctx.state.reply_headers.truncate(mark);
    rc
}

/// The OPTIONS reply headers are built once from the module parameters.
fn fixup_options(args: &mut Args, params: &ModParams) -> Result<(), String> {
    let p = |name, default| params.str("siputils", name).unwrap_or(default).to_string();
    let text = format!(
        "Allow: {ALLOW}\r\nAccept: {}\r\nAccept-Encoding: {}\r\nAccept-Language: {}\r\nSupported: {}\r\n",
        p("options_accept", "*/*"),
        p("options_accept_encoding", ""),
        p("options_accept_language", "en"),
        p("options_support", ""),
    );
    args.0.push(Arg::Custom(Box::new(text.into_bytes())));
    Ok(())
}

/// Functions writing a variable: it must be writable; given bare (`$var(x)`)
/// or quoted (`"$var(x)"`, as Kamailio configs usually write it).
fn fixup_out(args: &mut Args, i: usize) -> Result<(), String> {
    crate::modules::corex::args::out_pv(args, i)
}

fn fixup_out1(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_out(args, 1)
}

fn fixup_out2(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_out(args, 2)
}

macro_rules! f {
    ($name:expr, $min:expr, $max:expr, $routes:expr, $fixup:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $min,
            max_args: $max,
            routes: $routes,
            fixup: $fixup,
            call: $call,
        }
    };
}

const ANY: RouteMask = RouteMask::ANY;
const REQ: RouteMask = RouteMask::REQUEST;
const REQ_LIKE: RouteMask = RouteMask::REQUEST
    .or(RouteMask::FAILURE)
    .or(RouteMask::BRANCH);

pub static MODULE: ModuleDef = ModuleDef {
    name: "siputils",
    aliases: &[],
    functions: &[
        f!("has_totag", 0, 0, ANY, None, has_totag),
        f!("is_request", 0, 0, ANY, None, is_request),
        f!("is_reply", 0, 0, ANY, None, is_reply),
        f!("is_first_hop", 0, 1, ANY, None, is_first_hop),
        f!("is_user", 1, 1, REQ, None, is_user),
        f!("uri_param", 1, 2, REQ_LIKE, None, uri_param),
        f!(
            "get_uri_param",
            2,
            2,
            REQ_LIKE,
            Some(fixup_out1),
            get_uri_param
        ),
        f!("add_uri_param", 1, 1, REQ, None, add_uri_param),
        f!("uri_param_rm", 1, 1, REQ_LIKE, None, uri_param_rm),
        f!("tel2sip", 3, 3, ANY, Some(fixup_out2), tel2sip),
        f!("is_e164", 1, 1, ANY, None, is_e164),
        f!("is_uri_user_e164", 1, 1, ANY, None, is_uri_user_e164),
        f!("is_uri", 1, 1, ANY, None, is_uri),
        f!("is_tel_number", 1, 1, ANY, None, is_tel_number),
        f!("is_numeric", 1, 1, ANY, None, is_numeric),
        f!("is_alphanum", 1, 1, ANY, None, is_alphanum),
        f!("is_alphanumex", 2, 2, ANY, None, is_alphanumex),
        f!("is_gruu", 0, 1, ANY, None, is_gruu),
        f!("cmp_uri", 2, 2, ANY, None, cmp_uri),
        f!("cmp_aor", 2, 2, ANY, None, cmp_aor),
        f!("cmp_hdr_name", 2, 2, ANY, None, cmp_hdr_name),
        f!("is_supported", 1, 1, ANY, None, is_supported),
        f!(
            "options_reply",
            0,
            0,
            REQ,
            Some(fixup_options),
            options_reply
        ),
    ],
    params: &[
        ParamDef {
            name: "options_accept",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "options_accept_encoding",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "options_accept_language",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "options_support",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "rpid_prefix",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "rpid_suffix",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "rpid_avp",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "e164_max_len",
            kind: ParamKind::Int,
        },
    ],
    always: false,
};

#[cfg(test)]
mod tests;
