//! uac: the proxy acting for a user agent, Kamailio 5.6 semantics.
//!
//! - [`replace`]: `uac_replace_from/to()` rewrite the From/To of a request;
//!   the original URI rides in our Record-Route (`vsf`/`vst`, see [`codec`])
//!   so that in-dialog requests get it back the other way (`restore_mode`
//!   `auto`: when `loose_route()` routes on our Route; `manual`:
//!   `uac_restore_from/to()`), and replies show the caller what it sent.
//! - [`auth`]: `uac_auth()` answers a 401/407 from upstream in
//!   failure_route with credentials (`credential`, or the `auth_*_avp`s).
//! - [`reg`]: remote registrations (`reg_db_url`, the `uacreg` table):
//!   the accounts are registered and refreshed, `uac_reg_lookup()` and
//!   friends map calls between them and local users.
//! - [`send`]: `uac_req_send()` sends `$uac_req` as a request of the
//!   proxy's own (a tm local client transaction), its answer reported in
//!   `event_route[uac:reply]`.
//!
//! ```text
//!  INVITE From: A ──uac_replace_from(B)──▶ From: B, Record-Route ;vsf=enc(A⊕B)
//!  replies  From: B ──────────────────────▶ From: A  (the request as received)
//!  BYE (caller) From: A ──loose_route────▶ From: B
//!  BYE (callee) To: B ────loose_route────▶ To: A
//! ```

use std::sync::{Arc, LazyLock};

use bytes::Bytes;

use crate::script::ctx::{Env, MsgCtx};
use crate::script::registry::{
    func as f, param as p, Arg, Args, ModParams, ModuleDef, ParamKind, ParamValue, RouteMask,
};

pub mod auth;
pub mod codec;
pub mod reg;
pub mod replace;
pub mod send;

#[cfg(test)]
mod tests;

/// `msg_iflag` bits (corex names them): the From / To was changed by uac,
/// `uac_auth()` added credentials.
pub const USE_UAC_FROM: u32 = 1;
pub const USE_UAC_TO: u32 = 2;
pub const UAC_AUTH: u32 = 4;
/// Not a Kamailio flag: the replies of this request get From/To restored
/// (Kamailio's TMCB_RESPONSE_IN callback was registered).
pub const RESTORE_REPLIES: u32 = 1 << 31;

/// `restore_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreMode {
    /// The URI is replaced and nothing is stored.
    None,
    /// Stored in Record-Route; the script restores with `uac_restore_*()`.
    Manual,
    /// Stored, and restored when `loose_route()` routes on our Route.
    Auto,
}

/// A `credential` modparam: `user:realm:password`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub user: Bytes,
    pub realm: Bytes,
    pub password: Bytes,
}

/// The module parameters, read once at start-up.
#[derive(Clone, Debug)]
pub struct UacConfig {
    pub restore_mode: RestoreMode,
    /// `restore_passwd`: XOR-ed into the stored value.
    pub passwd: Bytes,
    /// `rr_from_store_param` (`vsf`) and `rr_to_store_param` (`vst`).
    pub from_param: Bytes,
    pub to_param: Bytes,
    /// `credential`s in the order given; the last one for a realm wins, as
    /// Kamailio's list is built by prepending.
    pub credentials: Vec<Credential>,
    /// `auth_username_avp`, `auth_password_avp`, `auth_realm_avp` are set
    /// (all three or none; compiled as the program's parameter formats).
    pub auth_avps: bool,
}

impl Default for UacConfig {
    fn default() -> UacConfig {
        UacConfig {
            restore_mode: RestoreMode::Auto,
            passwd: Bytes::new(),
            from_param: Bytes::from_static(b"vsf"),
            to_param: Bytes::from_static(b"vst"),
            credentials: Vec::new(),
            auth_avps: false,
        }
    }
}

impl UacConfig {
    /// Reads the `uac` module parameters; the error names the bad one.
    pub fn from_modparams(mp: &ModParams) -> Result<UacConfig, String> {
        let d = UacConfig::default();
        let text = |name: &str| {
            mp.str("uac", name)
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        };
        let restore_mode = match mp.str("uac", "restore_mode") {
            None | Some("") => d.restore_mode,
            Some(m) if m.eq_ignore_ascii_case("none") => RestoreMode::None,
            Some(m) if m.eq_ignore_ascii_case("manual") => RestoreMode::Manual,
            Some(m) if m.eq_ignore_ascii_case("auto") => RestoreMode::Auto,
            Some(m) => return Err(format!("uac: unsupported value '{m}' for restore_mode")),
        };
        let from_param = text("rr_from_store_param").unwrap_or(d.from_param);
        let to_param = text("rr_to_store_param").unwrap_or(d.to_param);
        if restore_mode != RestoreMode::None && (from_param.is_empty() || to_param.is_empty()) {
            return Err("uac: rr_from_store_param / rr_to_store_param cannot be empty".into());
        }
        for p in [&from_param, &to_param] {
            if !p.iter().all(|&b| crate::sip::scan::is_token_char(b)) {
                return Err(format!(
                    "uac: \"{}\" is not a URI parameter name",
                    String::from_utf8_lossy(p)
                ));
            }
        }
        if mp.int("uac", "restore_dlg").is_some_and(|v| v != 0) {
            return Err(
                "uac: restore_dlg other than 0 is not supported (the original \
                        URIs are kept in Record-Route only)"
                    .into(),
            );
        }
        let mut credentials = Vec::new();
        for v in mp.all("uac", "credential") {
            let ParamValue::Str(s) = v else {
                return Err("uac: credential must be \"user:realm:password\"".into());
            };
            credentials.push(parse_credential(s)?);
        }
        let set: Vec<bool> = ["auth_username_avp", "auth_password_avp", "auth_realm_avp"]
            .iter()
            .map(|n| mp.str("uac", n).is_some_and(|v| !v.is_empty()))
            .collect();
        let auth_avps = set.iter().all(|&b| b);
        if !auth_avps && set.iter().any(|&b| b) {
            return Err(
                "uac: auth_username_avp, auth_password_avp and auth_realm_avp \
                        go together (partial definition)"
                    .into(),
            );
        }
        Ok(UacConfig {
            restore_mode,
            passwd: text("restore_passwd").unwrap_or_default(),
            from_param,
            to_param,
            credentials,
            auth_avps,
        })
    }

    /// The configuration of the running program (the defaults when setup
    /// did not put one in the services, as in tests).
    pub fn of(env: &Env) -> &UacConfig {
        static DEFAULT: LazyLock<UacConfig> = LazyLock::new(UacConfig::default);
        env.services.get::<UacConfig>().unwrap_or(&DEFAULT)
    }
}

/// `user:realm:password`, white space allowed around the parts.
fn parse_credential(s: &str) -> Result<Credential, String> {
    let bad = || format!("uac: credential \"{s}\" is not \"user:realm:password\"");
    let mut parts = s.splitn(3, ':').map(str::trim);
    let (Some(user), Some(realm), Some(password)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let word = |w: &str| !w.is_empty() && !w.contains(char::is_whitespace);
    if !word(user) || !word(realm) || !word(password) {
        return Err(bad());
    }
    Ok(Credential {
        user: Bytes::copy_from_slice(user.as_bytes()),
        realm: Bytes::copy_from_slice(realm.as_bytes()),
        password: Bytes::copy_from_slice(password.as_bytes()),
    })
}

/// The configuration a call site's fixup stored, or the defaults.
fn config(args: &Args) -> &UacConfig {
    static DEFAULT: LazyLock<Arc<UacConfig>> = LazyLock::new(Arc::default);
    args.0
        .iter()
        .rev()
        .find_map(|a| match a {
            Arg::Custom(c) => c.downcast_ref::<Arc<UacConfig>>(),
            _ => None,
        })
        .unwrap_or(&DEFAULT)
}

/// Fixup of every uac function: checks the parameters, keeps them with the call.
fn fixup_config(args: &mut Args, params: &ModParams) -> Result<(), String> {
    let cfg = UacConfig::from_modparams(params)?;
    args.0.push(Arg::Custom(Box::new(Arc::new(cfg))));
    Ok(())
}

/// The rr callback of `restore_mode` auto: `loose_route()` routed this
/// in-dialog request on our Route.
pub fn on_loose_route(ctx: &mut MsgCtx<'_>) {
    if ctx.rr.routed_params().is_none() || !ctx.program.loaded_modules.contains(&"uac") {
        return;
    }
    let cfg = UacConfig::of(ctx.env);
    if cfg.restore_mode != RestoreMode::Auto {
        return;
    }
    let from = replace::restore(ctx, cfg, true);
    let to = replace::restore(ctx, cfg, false);
    if from || to {
        ctx.state.iflags |= RESTORE_REPLIES;
    }
}

const REQ: RouteMask = RouteMask::REQUEST;
const REQ_BR: RouteMask = RouteMask::REQUEST.or(RouteMask::BRANCH);

/// The uac module.
pub static MODULE: ModuleDef = ModuleDef {
    name: "uac",
    aliases: &[],
    functions: &[
        f(
            "uac_replace_from",
            1,
            2,
            REQ_BR,
            Some(fixup_config),
            replace::uac_replace_from,
        ),
        f(
            "uac_replace_to",
            1,
            2,
            REQ_BR,
            Some(fixup_config),
            replace::uac_replace_to,
        ),
        f(
            "uac_restore_from",
            0,
            0,
            REQ,
            Some(fixup_config),
            replace::uac_restore_from,
        ),
        f(
            "uac_restore_to",
            0,
            0,
            REQ,
            Some(fixup_config),
            replace::uac_restore_to,
        ),
        f(
            "uac_auth",
            0,
            1,
            RouteMask::FAILURE,
            Some(auth::fixup_auth),
            auth::uac_auth,
        ),
        f(
            "uac_req_send",
            0,
            0,
            RouteMask::ANY,
            None,
            send::uac_req_send,
        ),
        f(
            "uac_reg_lookup",
            2,
            2,
            RouteMask::ANY,
            Some(reg::functions::fixup_dst),
            reg::functions::uac_reg_lookup,
        ),
        f(
            "uac_reg_lookup_uri",
            2,
            2,
            RouteMask::ANY,
            Some(reg::functions::fixup_dst),
            reg::functions::uac_reg_lookup_uri,
        ),
        f(
            "uac_reg_status",
            1,
            1,
            RouteMask::ANY,
            None,
            reg::functions::uac_reg_status,
        ),
        f(
            "uac_reg_request_to",
            2,
            2,
            RouteMask::REQUEST
                .or(RouteMask::FAILURE)
                .or(RouteMask::BRANCH),
            None,
            reg::functions::uac_reg_request_to,
        ),
        f(
            "uac_reg_enable",
            2,
            2,
            RouteMask::ANY,
            None,
            reg::functions::uac_reg_enable,
        ),
        f(
            "uac_reg_disable",
            2,
            2,
            RouteMask::ANY,
            None,
            reg::functions::uac_reg_disable,
        ),
        f(
            "uac_reg_refresh",
            1,
            1,
            RouteMask::ANY,
            None,
            reg::functions::uac_reg_refresh,
        ),
    ],
    params: &[
        p("restore_mode", ParamKind::Str),
        p("restore_passwd", ParamKind::Str),
        p("rr_from_store_param", ParamKind::Str),
        p("rr_to_store_param", ParamKind::Str),
        p("restore_dlg", ParamKind::Int),
        p("restore_from_avp", ParamKind::Str),
        p("restore_to_avp", ParamKind::Str),
        p("credential", ParamKind::Str),
        p("auth_username_avp", ParamKind::Pv),
        p("auth_realm_avp", ParamKind::Pv),
        p("auth_password_avp", ParamKind::Pv),
        p("reg_db_url", ParamKind::Str),
        p("reg_db_table", ParamKind::Str),
        p("reg_contact_addr", ParamKind::Str),
        p("reg_timer_interval", ParamKind::Int),
        p("reg_retry_interval", ParamKind::Int),
        p("reg_keep_callid", ParamKind::Int),
        p("reg_random_delay", ParamKind::Int),
        p("reg_active", ParamKind::Int),
        p("reg_gc_interval", ParamKind::Int),
        p("reg_hash_size", ParamKind::Int),
        p("reg_use_domain", ParamKind::Int),
        p("default_socket", ParamKind::Str),
        p("event_callback", ParamKind::Str),
    ],
    always: false,
};
