//! registrar: REGISTER processing and lookups over usrloc (KAMAILIO-REFERENCE
//! §5.1–5.2, RFC 3261 §10.3, RFC 3327 Path).
//!
//! - `save` binds the request's contacts to the AoR of its To
//!   (or the `uri` argument) and answers statelessly through sl.
//! - `lookup` rewrites the Request-URI to the best contact and
//!   records the others in `ctx.branches` (tm forks to them; the stateless
//!   `forward()` sends only to the Request-URI).

pub mod fetch;
mod lookup;
mod save;
pub(crate) use save::q_text;

use crate::modules::usrloc::{Domain, Usrloc};
use crate::script::ctx::MsgCtx;
use crate::script::pvkind::AvpKey;
use crate::script::registry::{
    Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::sip::uri::Uri;

/// registrar parameters (defaults from KAMAILIO-REFERENCE §5.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegParams {
    pub default_expires: u32,
    pub min_expires: u32,
    /// 0 raise to `min_expires`, 1 answer 423 with Min-Expires.
    pub min_expires_mode: u8,
    /// 0: no limit.
    pub max_expires: u32,
    /// 0: no limit.
    pub max_contacts: u32,
    /// q in thousandths for contacts without one; -1 unspecified.
    pub default_q: i16,
    pub append_branches: bool,
    pub case_sensitive: bool,
    pub use_path: bool,
    /// 0 store only, 1 echo Path if `Supported: path`, 2 reject without it.
    pub path_mode: u8,
    pub path_use_received: bool,
    pub method_filtering: bool,
    /// Seconds for Retry-After on 503 (0: none).
    pub retry_after: u32,
    pub contact_max_size: usize,
    pub realm_prefix: String,
    /// `received_avp`: the AVP whose value (the address a REGISTER really
    /// came from, set e.g. by `fix_nated_register`) `save` stores as the
    /// contact's received address, which `lookup` then uses as `$du`.
    pub received_avp: Option<AvpKey>,
    /// `xavp_cfg`: the XAVP whose `match_*` fields narrow `registered()`.
    pub xavp_cfg: Option<String>,
}

impl Default for RegParams {
    fn default() -> RegParams {
        RegParams {
            default_expires: 3600,
            min_expires: 60,
            min_expires_mode: 0,
            max_expires: 0,
            max_contacts: 0,
            default_q: -1,
            append_branches: true,
            case_sensitive: false,
            use_path: false,
            path_mode: 2,
            path_use_received: false,
            method_filtering: false,
            retry_after: 0,
            contact_max_size: 512,
            realm_prefix: String::new(),
            received_avp: None,
            xavp_cfg: None,
        }
    }
}

/// An AVP named as a module parameter: `$avp(name)`, `$avp(s:name)` or `$avp(i:N)`.
pub fn avp_param(text: &str) -> Option<AvpKey> {
    let name = text.trim().strip_prefix("$avp(")?.strip_suffix(')')?;
    if let Some(n) = name.strip_prefix("i:") {
        return n.parse().ok().map(AvpKey::Int);
    }
    let name = name.strip_prefix("s:").unwrap_or(name);
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    ok.then(|| AvpKey::Str(bytes::Bytes::copy_from_slice(name.as_bytes())))
}

impl RegParams {
    /// The parameters, or what is wrong with one of them.
    pub fn from_modparams(mp: &ModParams) -> Result<RegParams, String> {
        let d = RegParams::default();
        let int = |name: &str, default: i64| mp.int("registrar", name).unwrap_or(default);
        let u32_of = |name: &str, default: u32| {
            int(name, i64::from(default)).clamp(0, i64::from(u32::MAX)) as u32
        };
        let flag = |name: &str, default: bool| int(name, i64::from(default)) != 0;
        let default_q = match mp.all("registrar", "default_q").last() {
            // Kamailio takes it in thousandths as an integer; -1 leaves it unspecified.
            Some(_) => int("default_q", -1).clamp(-1, 1000) as i16,
            None => d.default_q,
        };
        let received_avp = match mp.str("registrar", "received_avp") {
            None | Some("") => None,
            Some(t) => Some(avp_param(t).ok_or_else(|| {
                format!("registrar: received_avp {t:?} is not an AVP ($avp(name))")
            })?),
        };
        Ok(RegParams {
            default_expires: u32_of("default_expires", d.default_expires),
            min_expires: u32_of("min_expires", d.min_expires),
            min_expires_mode: int("min_expires_mode", 0).clamp(0, 1) as u8,
            max_expires: u32_of("max_expires", d.max_expires),
            max_contacts: u32_of("max_contacts", d.max_contacts),
            default_q,
            append_branches: flag("append_branches", d.append_branches),
            case_sensitive: flag("case_sensitive", d.case_sensitive),
            use_path: flag("use_path", d.use_path),
            path_mode: int("path_mode", 2).clamp(0, 2) as u8,
            path_use_received: flag("path_use_received", false),
            method_filtering: flag("method_filtering", false),
            retry_after: u32_of("retry_after", 0),
            contact_max_size: int("contact_max_size", 512).clamp(16, 65_535) as usize,
            realm_prefix: mp
                .str("registrar", "realm_prefix")
                .unwrap_or("")
                .to_string(),
            received_avp,
            xavp_cfg: mp
                .str("registrar", "xavp_cfg")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        })
    }
}

/// The registrar's shared state (its parameters), put in `Env::shared` at start-up.
#[derive(Debug, Default)]
pub struct Registrar {
    pub params: RegParams,
}

/// What every registrar function needs: its parameters, usrloc and the table named by argument 0.
struct Setup<'e> {
    reg: &'e RegParams,
    ul: &'e Usrloc,
    dom: std::sync::Arc<Domain>,
}

fn setup<'e>(ctx: &MsgCtx<'e>, args: &Args, func: &str) -> Option<Setup<'e>> {
    let env = ctx.env;
    let (Some(reg), Some(ul)) = (
        env.services.get::<Registrar>(),
        env.services.get::<Usrloc>(),
    ) else {
        log::error!("{func}: usrloc is not set up");
        return None;
    };
    let table = args.str(ctx, 0);
    let Some(dom) = ul.domain(&table) else {
        log::error!(
            "{func}: bad table name {:?}",
            String::from_utf8_lossy(&table)
        );
        return None;
    };
    Some(Setup {
        reg: &reg.params,
        ul,
        dom,
    })
}

/// The address-of-record of `uri` (KAMAILIO-REFERENCE §5: user, or user@host
/// with usrloc `use_domain`; lower case unless `case_sensitive`). `None` for a
/// URI that cannot be read or has no user.
pub fn aor_of(uri: &[u8], use_domain: bool, reg: &RegParams) -> Option<String> {
    let uri = Uri::parse(uri).ok()?;
    let user = uri.user().filter(|u| !u.is_empty())?;
    let mut aor = String::from_utf8_lossy(user).into_owned();
    if !reg.case_sensitive {
        aor.make_ascii_lowercase();
    }
    if use_domain {
        // realm_prefix comes off a longer host (compared with case), and
        // the domain is always lower case (Kamailio's extract_aor).
        let host = uri.host_raw();
        let prefix = reg.realm_prefix.as_bytes();
        let host = match host.strip_prefix(prefix) {
            Some(rest) if !prefix.is_empty() && !rest.is_empty() => rest,
            _ => host,
        };
        aor.push('@');
        aor.push_str(&String::from_utf8_lossy(host).to_ascii_lowercase());
    }
    Some(aor)
}

/// A flags argument: decimal or `0x` hex.
fn flags_arg(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> u32 {
    if let Some(Arg::Int(n)) = args.get(i) {
        return *n as u32;
    }
    let text = args.str(ctx, i);
    let t = String::from_utf8_lossy(&text);
    let t = t.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).unwrap_or(0),
        None => t.parse().unwrap_or(0),
    }
}

fn fixup_table(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(Arg::Str(t)) = args.get(0) {
        let name = std::str::from_utf8(t).unwrap_or("");
        if !crate::store::is_identifier(name) {
            return Err(format!("{name:?} is not a usable table name"));
        }
    }
    Ok(())
}

const REQ_FAIL: RouteMask = RouteMask::REQUEST.or(RouteMask::FAILURE);

const fn func(
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
        fixup: Some(fixup_table),
        call,
    }
}

const fn param(name: &'static str, kind: ParamKind) -> ParamDef {
    ParamDef { name, kind }
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "registrar",
    aliases: &[],
    functions: &[
        func("save", 1, 3, REQ_FAIL.or(RouteMask::ONREPLY), save::save),
        func("lookup", 1, 2, REQ_FAIL, lookup::lookup),
        func("lookup_to_dset", 1, 2, REQ_FAIL, lookup::lookup_to_dset),
        func("lookup_branches", 1, 1, REQ_FAIL, lookup::lookup_branches),
        func("registered", 1, 4, RouteMask::ANY, lookup::registered),
        func("unregister", 2, 3, RouteMask::ANY, save::unregister),
        func(
            "reg_fetch_contacts",
            3,
            3,
            RouteMask::ANY,
            fetch::reg_fetch_contacts,
        ),
        FunctionDef {
            name: "reg_free_contacts",
            min_args: 1,
            max_args: 1,
            routes: RouteMask::ANY,
            fixup: None,
            call: fetch::reg_free_contacts,
        },
    ],
    params: &[
        param("default_expires", ParamKind::Int),
        param("default_expires_range", ParamKind::Int),
        param("expires_range", ParamKind::Int),
        param("min_expires", ParamKind::Int),
        param("min_expires_mode", ParamKind::Int),
        param("max_expires", ParamKind::Int),
        param("default_q", ParamKind::Int),
        param("append_branches", ParamKind::Int),
        param("max_contacts", ParamKind::Int),
        param("method_filtering", ParamKind::Int),
        param("use_path", ParamKind::Int),
        param("path_mode", ParamKind::Int),
        param("path_use_received", ParamKind::Int),
        param("path_check_local", ParamKind::Int),
        param("received_avp", ParamKind::Str),
        param("received_param", ParamKind::Str),
        param("retry_after", ParamKind::Int),
        param("case_sensitive", ParamKind::Int),
        param("realm_prefix", ParamKind::Str),
        param("gruu_enabled", ParamKind::Int),
        param("outbound_mode", ParamKind::Int),
        param("regid_mode", ParamKind::Int),
        param("flow_timer", ParamKind::Int),
        param("contact_max_size", ParamKind::Int),
        param("sock_flag", ParamKind::Int),
        param("sock_hdr_name", ParamKind::Str),
        param("sock_mode", ParamKind::Int),
        param("xavp_cfg", ParamKind::Str),
        param("xavp_rcd", ParamKind::Str),
        param("lookup_filter_mode", ParamKind::Int),
        param("use_expired_contacts", ParamKind::Int),
        param("tcp_persistent_flag", ParamKind::Int),
        param("reg_callid_avp", ParamKind::Str),
        param("contact_check", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod avp_param_tests {
    use super::avp_param;
    use crate::script::pvkind::AvpKey;

    #[test]
    fn avp_names_as_module_parameters() {
        assert_eq!(
            avp_param("$avp(RECEIVED)"),
            Some(AvpKey::Str("RECEIVED".into()))
        );
        assert_eq!(avp_param("$avp(s:rcv)"), Some(AvpKey::Str("rcv".into())));
        assert_eq!(avp_param("$avp(i:42)"), Some(AvpKey::Int(42)));
        for bad in ["RECEIVED", "$avp()", "$avp(i:x)", "$var(x)", "$avp(a b)"] {
            assert_eq!(avp_param(bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod aor_tests {
    use super::*;

    /// Kamailio's extract_aor: with use_domain `user@host`, realm_prefix off
    /// a longer host, the domain lower case even when case_sensitive.
    #[test]
    fn aor_of_as_kamailio() {
        let reg = RegParams::default();
        assert_eq!(
            aor_of(b"sip:Alice@A.Example:5070", false, &reg).as_deref(),
            Some("alice")
        );
        assert_eq!(
            aor_of(b"sip:Alice@A.Example:5070", true, &reg).as_deref(),
            Some("alice@a.example")
        );
        let cs = RegParams {
            case_sensitive: true,
            ..RegParams::default()
        };
        assert_eq!(
            aor_of(b"sip:Alice@A.Example", true, &cs).as_deref(),
            Some("Alice@a.example")
        );
        let pre = RegParams {
            realm_prefix: "sip.".into(),
            ..RegParams::default()
        };
        assert_eq!(
            aor_of(b"sip:bob@sip.example.com", true, &pre).as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(
            aor_of(b"sip:bob@sip.", true, &pre).as_deref(),
            Some("bob@sip.")
        );
        assert_eq!(
            aor_of(b"sip:bob@SIP.example.com", true, &pre).as_deref(),
            Some("bob@sip.example.com")
        );
        assert_eq!(aor_of(b"sip:example.com", true, &reg), None);
    }
}
