//! auth: digest challenges and checks (KAMAILIO-REFERENCE §6, RFC 2617,
//! RFC 7616, RFC 3261 §22). auth_db and uri_db, in [`db`], check against the
//! `subscriber` table through an in-memory cache of it.
//!
//! Return codes, as Kamailio's auth API: 1 authorized, -1 error (bad
//! credentials, no database), -2 wrong password, -3 unknown user, -4 stale
//! nonce, -5 no credentials for the realm, -6 nonce reused, -8 auth user is not
//! the From/To user.

pub mod db;
pub mod digest;
pub mod nonce;

use bytes::Bytes;

use self::digest::{digest_eq, Algorithm, ResponseInput};
use self::nonce::{NonceCheck, Nonces, Replay};
use crate::modules::sl;
use crate::script::ctx::{Authorized, MsgCtx};
use crate::script::registry::{
    fixup_int, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::sip::auth::Credentials;
use crate::sip::nameaddr::NameAddr;
use crate::sip::uri::Uri;
use crate::sip::HeaderName;

pub const AUTHORIZED: i32 = 1;
pub const ERROR: i32 = -1;
pub const INVALID_PASSWORD: i32 = -2;
pub const USER_UNKNOWN: i32 = -3;
pub const STALE_NONCE: i32 = -4;
pub const NO_CREDENTIALS: i32 = -5;
pub const NONCE_REUSED: i32 = -6;
pub const USER_MISMATCH: i32 = -8;

/// Which pair of headers: `WWW-Authenticate`/`Authorization` (registrars, 401)
/// or `Proxy-Authenticate`/`Proxy-Authorization` (proxies, 407).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Www,
    Proxy,
}

impl Kind {
    fn credentials_header(self) -> HeaderName {
        match self {
            Kind::Www => HeaderName::Authorization,
            Kind::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// auth parameters and the nonce machinery, shared by every core.
#[derive(Debug)]
pub struct Auth {
    pub nonces: Nonces,
    /// `qop` param: offer `qop="auth"` in every challenge.
    pub qop_auth: bool,
    /// `algorithm` param: the one offered in challenges.
    pub algorithm: Algorithm,
    pub realm_prefix: String,
}

impl Auth {
    /// From the modparams; `random` is the secret to use when none is configured.
    pub fn from_modparams(mp: &ModParams, random: &[u8]) -> Result<Auth, String> {
        let int = |n: &str, d: i64| mp.int("auth", n).unwrap_or(d);
        let secret = match mp.str("auth", "secret") {
            Some(s) if !s.is_empty() => s.as_bytes().to_vec(),
            _ => random.to_vec(),
        };
        let replay = if int("one_time_nonce", 0) != 0 {
            Replay::OneTime
        } else if int("nonce_count", 0) != 0 {
            Replay::NonceCount
        } else {
            Replay::Off
        };
        let slots = match mp.int("auth", "nc_array_order") {
            Some(o) => 1usize << o.clamp(10, 24),
            None => int("nc_array_size", 1 << 20).clamp(1024, 1 << 24) as usize,
        };
        let algorithm = match mp.str("auth", "algorithm").unwrap_or("") {
            "" => Algorithm::Md5,
            a => Algorithm::parse(Some(a.as_bytes()))
                .ok_or_else(|| format!("auth: algorithm {a:?} is not MD5 or SHA-256"))?,
        };
        let qop = mp.str("auth", "qop").unwrap_or("");
        Ok(Auth {
            nonces: Nonces::new(
                &secret,
                int("nonce_expire", 300).clamp(1, 86_400) as u32,
                int("nonce_auth_max_drift", 3).clamp(0, 3600) as u32,
                replay,
                slots,
            ),
            qop_auth: qop.eq_ignore_ascii_case("auth") || qop.eq_ignore_ascii_case("auth,auth-int"),
            algorithm,
            realm_prefix: mp.str("auth", "realm_prefix").unwrap_or("").to_string(),
        })
    }
}

/// Finds the HA1 for `(username, realm)` with an algorithm, or the auth code to return.
pub type Ha1Lookup<'a> = &'a dyn Fn(&[u8], &[u8], Algorithm) -> Result<String, i32>;

/// Where the HA1 for a username comes from.
pub enum Secret<'a> {
    /// The plain password.
    Password(&'a [u8]),
    /// HA1 as stored (hex).
    Ha1(&'a [u8]),
}

/// The realm argument, or when empty, the host of To (a REGISTER checked with
/// WWW credentials) or of From (everything else).
fn realm_or_default(ctx: &MsgCtx<'_>, realm: &[u8], prefix: &str, kind: Kind) -> Vec<u8> {
    let mut realm = if realm.is_empty() {
        let id = if kind == Kind::Www && ctx.msg.method_bytes() == b"REGISTER" {
            HeaderName::To
        } else {
            HeaderName::From
        };
        ctx.msg
            .header_value(id)
            .and_then(|v| NameAddr::parse(v).ok())
            .and_then(|na| na.uri().ok().map(|u| u.host_raw().to_vec()))
            .unwrap_or_default()
    } else {
        realm.to_vec()
    };
    if !prefix.is_empty() && realm.starts_with(prefix.as_bytes()) {
        realm.drain(..prefix.len());
    }
    realm
}

/// The credentials for `realm`: `(index of the header, parsed)`, or -5 / -1.
fn find_credentials<'m>(
    ctx: &MsgCtx<'m>,
    kind: Kind,
    realm: &[u8],
) -> Result<(usize, Credentials<'m>), i32> {
    let msg = ctx.msg;
    let id = kind.credentials_header();
    let mut malformed = false;
    for (i, h) in msg.headers().iter().enumerate().filter(|(_, h)| h.id == id) {
        match Credentials::parse(msg.value(h)) {
            Ok(c) if c.is_digest() && c.realm().is_some_and(|r| r.eq_ignore_ascii_case(realm)) => {
                return Ok((i, c));
            }
            Ok(_) => {}
            Err(_) => malformed = true,
        }
    }
    Err(if malformed { ERROR } else { NO_CREDENTIALS })
}

/// Checks the credentials for `realm` in the request; on success records them
/// in `ctx.authorized`. `secret` finds the HA1 for `(username, realm)`, or the
/// auth code to return (unknown user, database error).
pub fn authorize(ctx: &mut MsgCtx<'_>, realm: &[u8], kind: Kind, secret: Ha1Lookup<'_>) -> i32 {
    let method = ctx.msg.method_bytes();
    // Never challenged, so never checked (RFC 3261 §22.1).
    if method == b"ACK" || method == b"CANCEL" {
        return AUTHORIZED;
    }
    let Some(auth) = ctx.env.services.get::<Auth>() else {
        log::error!("auth: module not set up");
        return ERROR;
    };
    let realm = realm_or_default(ctx, realm, &auth.realm_prefix, kind);
    let (index, cred) = match find_credentials(ctx, kind, &realm) {
        Ok(found) => found,
        Err(rc) => return rc,
    };
    let (Some(user), Some(nonce), Some(uri), Some(resp)) =
        (cred.username(), cred.nonce(), cred.uri(), cred.response())
    else {
        return ERROR;
    };
    let Some(alg) = Algorithm::parse(cred.algorithm()) else {
        return ERROR;
    };
    let qop_auth = match cred.qop() {
        None => None,
        Some(q) if q.eq_ignore_ascii_case(b"auth") => match (cred.nc(), cred.cnonce()) {
            (Some(nc), Some(cn)) => Some((nc, cn)),
            _ => return ERROR,
        },
        // auth-int is not offered.
        Some(_) => return ERROR,
    };
    let now = (ctx.unix_ms() / 1000) as u32;
    match auth.nonces.peek(nonce, now) {
        NonceCheck::Valid => {}
        NonceCheck::Stale => return STALE_NONCE,
        NonceCheck::Invalid | NonceCheck::Reused => return ERROR,
    }
    let ha1 = match secret(user, &realm, alg) {
        Ok(h) => h,
        Err(rc) => return rc,
    };
    let expected = digest::response(
        alg,
        ha1.as_bytes(),
        &ResponseInput {
            method,
            uri,
            nonce,
            qop_auth,
        },
    );
    if !digest_eq(expected.as_bytes(), resp) {
        return INVALID_PASSWORD;
    }
    // Only a right answer consumes a nonce-count.
    match auth.nonces.check(nonce, now, qop_auth.map(|(nc, _)| nc)) {
        NonceCheck::Valid => {}
        NonceCheck::Stale => return STALE_NONCE,
        NonceCheck::Reused => return NONCE_REUSED,
        NonceCheck::Invalid => return ERROR,
    }
    ctx.authorized = Some(Authorized {
        header: index,
        username: Bytes::copy_from_slice(user),
        realm: Bytes::from(realm),
    });
    AUTHORIZED
}

/// HA1 from a [`Secret`].
pub fn ha1_of(s: &Secret<'_>, user: &[u8], realm: &[u8], alg: Algorithm) -> String {
    match s {
        Secret::Password(p) => digest::ha1(alg, user, realm, p),
        Secret::Ha1(h) => String::from_utf8_lossy(h).into_owned(),
    }
}

/// challenge flags (KAMAILIO-REFERENCE §6).
const CH_QOP_AUTH: u32 = 1;
const CH_QOP_AUTH_INT: u32 = 2;
const CH_NO_500: u32 = 4;
const CH_STALE: u32 = 16;

/// Sends 401 / 407 with a fresh nonce. Returns 1, or -1 when no reply could be sent.
pub fn challenge(ctx: &mut MsgCtx<'_>, realm: &[u8], flags: u32, kind: Kind) -> i32 {
    let Some(auth) = ctx.env.services.get::<Auth>() else {
        log::error!("auth: module not set up");
        if flags & CH_NO_500 == 0 {
            sl::send_reply(ctx, 500, b"Internal Server Error");
        }
        return ERROR;
    };
    let realm = realm_or_default(ctx, realm, &auth.realm_prefix, kind);
    let now = (ctx.unix_ms() / 1000) as u32;
    // stale=true when the client's nonce was ours but too old: it retries without asking the user.
    let stale = flags & CH_STALE != 0
        || find_credentials(ctx, kind, &realm)
            .ok()
            .and_then(|(_, c)| c.nonce())
            .is_some_and(|n| auth.nonces.peek(n, now) == NonceCheck::Stale);
    let nonce = auth.nonces.issue(now);
    let (name, code, reason): (&str, u16, &[u8]) = match kind {
        Kind::Www => ("WWW-Authenticate", 401, b"Unauthorized"),
        Kind::Proxy => ("Proxy-Authenticate", 407, b"Proxy Authentication Required"),
    };
    let mut h = format!(
        "{name}: Digest realm=\"{}\", nonce=\"{nonce}\"",
        String::from_utf8_lossy(&realm)
    );
    if auth.qop_auth || flags & (CH_QOP_AUTH | CH_QOP_AUTH_INT) != 0 {
        // auth-int is not checked, so only auth is offered.
        h.push_str(", qop=\"auth\"");
    }
    if stale {
        h.push_str(", stale=true");
    }
    if auth.algorithm != Algorithm::Md5 {
        h.push_str(", algorithm=");
        h.push_str(auth.algorithm.name());
    }
    h.push_str("\r\n");
    // Queued as Kamailio's reply lump is: any later local reply to the
    // request repeats it; on the transaction when the script made one.
    ctx.state.reply_headers.extend_from_slice(h.as_bytes());
    sl::freply(ctx, code, reason, b"")
}

fn flags_of(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> u32 {
    if i >= args.len() {
        return 0;
    }
    let s = args.str(ctx, i);
    let t = String::from_utf8_lossy(&s);
    let t = t.trim();
    match t.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).unwrap_or(0),
        None => t.parse().unwrap_or(0),
    }
}

fn www_challenge(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let realm = args.str(ctx, 0).into_owned();
    let flags = flags_of(ctx, args, 1);
    challenge(ctx, &realm, flags, Kind::Www)
}

fn proxy_challenge(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let realm = args.str(ctx, 0).into_owned();
    let flags = flags_of(ctx, args, 1);
    challenge(ctx, &realm, flags, Kind::Proxy)
}

/// `auth_challenge(realm, flags)`: 401 for REGISTER, 407 otherwise.
fn auth_challenge(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let realm = args.str(ctx, 0).into_owned();
    let flags = flags_of(ctx, args, 1);
    let kind = if ctx.msg.method_bytes() == b"REGISTER" {
        Kind::Www
    } else {
        Kind::Proxy
    };
    challenge(ctx, &realm, flags, kind)
}

/// `consume_credentials()`: removes the header that authorized this request.
fn consume_credentials(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let method = ctx.msg.method_bytes();
    if matches!(method, b"ACK" | b"CANCEL" | b"PRACK") {
        return -1;
    }
    match &ctx.authorized {
        Some(a) => {
            let index = a.header;
            ctx.edits.remove_header(ctx.msg, index);
            1
        }
        None => -1,
    }
}

/// `has_credentials(realm)`: 1 if an Authorization or Proxy-Authorization has that realm.
fn has_credentials(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let realm = args.str(ctx, 0).into_owned();
    let found = [Kind::Www, Kind::Proxy]
        .iter()
        .any(|k| find_credentials(ctx, *k, &realm).is_ok());
    if found {
        1
    } else {
        -1
    }
}

/// `pv_www_authenticate(realm, passwd, flags[, method])` and the proxy twin:
/// flags 1 means `passwd` is the HA1.
fn pv_authenticate(ctx: &mut MsgCtx<'_>, args: &Args, kind: Kind) -> i32 {
    let realm = args.str(ctx, 0).into_owned();
    let pass = args.str(ctx, 1).into_owned();
    let is_ha1 = flags_of(ctx, args, 2) & 1 != 0;
    let secret = |user: &[u8], realm: &[u8], alg: Algorithm| -> Result<String, i32> {
        let s = if is_ha1 {
            Secret::Ha1(&pass)
        } else {
            Secret::Password(&pass)
        };
        Ok(ha1_of(&s, user, realm, alg))
    };
    authorize(ctx, &realm, kind, &secret)
}

fn pv_www_authenticate(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    pv_authenticate(ctx, args, Kind::Www)
}

fn pv_proxy_authenticate(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    pv_authenticate(ctx, args, Kind::Proxy)
}

/// The user part of the To or From URI.
pub(crate) fn uri_user(ctx: &MsgCtx<'_>, id: HeaderName) -> Option<Vec<u8>> {
    let v = ctx.msg.header_value(id)?;
    let na = NameAddr::parse(v).ok()?;
    let uri = Uri::parse(na.uri_raw()).ok()?;
    uri.user().map(<[u8]>::to_vec)
}

fn fixup_flags(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(crate::script::registry::Arg::Str(s)) = args.get(1) {
        if s.iter().all(u8::is_ascii_digit) && !s.is_empty() {
            fixup_int(args, 1)?;
        }
    }
    Ok(())
}

pub(crate) const REQ: RouteMask = RouteMask::REQUEST;
const CHALLENGE_ROUTES: RouteMask = RouteMask::REQUEST
    .or(RouteMask::FAILURE)
    .or(RouteMask::ONREPLY);

pub(crate) const fn func(
    name: &'static str,
    min_args: u8,
    max_args: u8,
    routes: RouteMask,
    call: crate::script::registry::Handler,
) -> FunctionDef {
    FunctionDef {
        name,
        min_args,
        max_args,
        routes,
        fixup: None,
        call,
    }
}

pub(crate) const fn param(name: &'static str, kind: ParamKind) -> ParamDef {
    ParamDef { name, kind }
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "auth",
    aliases: &[],
    functions: &[
        FunctionDef {
            fixup: Some(fixup_flags),
            ..func("www_challenge", 2, 2, CHALLENGE_ROUTES, www_challenge)
        },
        FunctionDef {
            fixup: Some(fixup_flags),
            ..func("proxy_challenge", 2, 2, CHALLENGE_ROUTES, proxy_challenge)
        },
        FunctionDef {
            fixup: Some(fixup_flags),
            ..func("auth_challenge", 2, 2, CHALLENGE_ROUTES, auth_challenge)
        },
        func("consume_credentials", 0, 0, REQ, consume_credentials),
        func("has_credentials", 1, 1, REQ, has_credentials),
        func("pv_www_authenticate", 3, 4, REQ, pv_www_authenticate),
        func("pv_proxy_authenticate", 3, 4, REQ, pv_proxy_authenticate),
    ],
    params: &[
        param("secret", ParamKind::Str),
        param("nonce_expire", ParamKind::Int),
        param("nonce_auth_max_drift", ParamKind::Int),
        param("qop", ParamKind::Str),
        param("nonce_count", ParamKind::Int),
        param("one_time_nonce", ParamKind::Int),
        param("nc_array_size", ParamKind::Int),
        param("nc_array_order", ParamKind::Int),
        param("otn_in_flight_no", ParamKind::Int),
        param("otn_in_flight_order", ParamKind::Int),
        param("nid_pool_no", ParamKind::Int),
        param("auth_checks_register", ParamKind::Int),
        param("auth_checks_no_dlg", ParamKind::Int),
        param("auth_checks_in_dlg", ParamKind::Int),
        param("force_stateless_reply", ParamKind::Int),
        param("realm_prefix", ParamKind::Str),
        param("use_domain", ParamKind::Int),
        param("algorithm", ParamKind::Str),
        param("add_authinfo_hdr", ParamKind::Int),
        param("protect_contacts", ParamKind::Int),
    ],
    always: false,
};
