//! Pseudo-variables: names resolved at compile time to a [`PvKind`], read and
//! written through the message context.

use bytes::Bytes;

use crate::sip::HeaderName;

/// Which pseudo-variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvKind {
    /// `$ru`: the request URI (rewritten, or as received).
    Ru,
    /// `$ou`: the request URI as received.
    Ou,
    /// `$rU` / `$rd` / `$rp`: user / host / port of the request URI.
    RUser,
    RHost,
    RPort,
    /// `$fu` `$fU` `$fd` `$fn` `$ft`: From URI / user / host / display name / tag.
    From(NamePart),
    /// `$tu` `$tU` `$td` `$tn` `$tt`: the same for To.
    To(NamePart),
    /// `$du`: destination URI (next hop), `$null` when unset.
    Du,
    /// `$rm`: method (for replies the CSeq method).
    Rm,
    /// `$rs` / `$rr`: reply status / reason.
    Rs,
    Rr,
    /// `$ci`: Call-ID.
    Ci,
    /// `$si` / `$sp` / `$su`: source IP / port / `sip:ip:port`.
    Si,
    Sp,
    Su,
    /// `$Ri` / `$Rp`: local address the message arrived on.
    Ri,
    Rp,
    /// `$pr` / `$proto`: receiving transport, lower case.
    Proto,
    /// Address family of the receiving socket: `INET` or `INET6` (the `af` keyword).
    Af,
    /// `$ua`: User-Agent.
    Ua,
    /// `$mb` / `$ml` / `$mt`: message buffer / length / type (1 request, 2 reply).
    Mb,
    Ml,
    Mt,
    /// `$rb`: body. `$cl`: Content-Length value.
    Rb,
    Cl,
    /// `$retcode` / `$rc` / `$?`
    Retcode,
    /// `$mf`: message flags.
    Mf,
    /// `$null`
    Null,
    /// `$var(x)`: per-core script variable, by slot.
    Var(u32),
    /// `$hdr(Name)` (first, or `index`), `$hdrc(Name)` (count).
    Hdr(HeaderKey),
    Hdrc(HeaderKey),
}

/// Which part of a From/To header a pseudo-variable reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamePart {
    Uri,
    User,
    Host,
    Display,
    Tag,
}

/// A header named in a pseudo-variable, resolved once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderKey {
    pub id: HeaderName,
    pub name: Bytes,
}

impl HeaderKey {
    pub fn new(name: &str) -> HeaderKey {
        HeaderKey {
            id: HeaderName::from_bytes(name.as_bytes()),
            name: Bytes::copy_from_slice(name.as_bytes()),
        }
    }
}

/// A pseudo-variable reference as compiled: which one, and an optional index (`$(hdr(Via)[1])`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvRef {
    pub kind: PvKind,
    pub index: Option<i32>,
}

impl PvRef {
    pub fn new(kind: PvKind) -> PvRef {
        PvRef { kind, index: None }
    }

    /// Whether the script may assign to it.
    pub fn is_writable(&self) -> bool {
        matches!(
            self.kind,
            PvKind::Ru | PvKind::Du | PvKind::Var(_) | PvKind::Mf
        )
    }
}

/// Resolves a pseudo-variable by class name and inner name (`var`, `x` for
/// `$var(x)`; `ru`, `None` for `$ru`). `var_slot` maps a `$var` name to its slot.
pub fn resolve(
    class: &str,
    inner: Option<&str>,
    var_slot: &mut dyn FnMut(&str) -> u32,
) -> Result<PvKind, String> {
    let need_inner = |what: &str| -> Result<&str, String> {
        inner
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("${what} needs a name in parentheses"))
    };
    let kind = match class {
        "ru" => PvKind::Ru,
        "ou" => PvKind::Ou,
        "du" => PvKind::Du,
        "rU" => PvKind::RUser,
        "rd" => PvKind::RHost,
        "rp" => PvKind::RPort,
        "fu" => PvKind::From(NamePart::Uri),
        "fU" => PvKind::From(NamePart::User),
        "fd" => PvKind::From(NamePart::Host),
        "fn" => PvKind::From(NamePart::Display),
        "ft" => PvKind::From(NamePart::Tag),
        "tu" => PvKind::To(NamePart::Uri),
        "tU" => PvKind::To(NamePart::User),
        "td" => PvKind::To(NamePart::Host),
        "tn" => PvKind::To(NamePart::Display),
        "tt" => PvKind::To(NamePart::Tag),
        "rm" => PvKind::Rm,
        "rs" => PvKind::Rs,
        "rr" => PvKind::Rr,
        "ci" => PvKind::Ci,
        "si" => PvKind::Si,
        "sp" => PvKind::Sp,
        "su" => PvKind::Su,
        "Ri" => PvKind::Ri,
        "Rp" => PvKind::Rp,
        "pr" | "proto" => PvKind::Proto,
        "ua" => PvKind::Ua,
        "mb" => PvKind::Mb,
        "ml" => PvKind::Ml,
        "mt" => PvKind::Mt,
        "rb" => PvKind::Rb,
        "cl" => PvKind::Cl,
        "rc" | "retcode" | "?" => PvKind::Retcode,
        "mf" => PvKind::Mf,
        "null" => PvKind::Null,
        "var" => PvKind::Var(var_slot(need_inner("var")?)),
        "hdr" => PvKind::Hdr(HeaderKey::new(need_inner("hdr")?)),
        "hdrc" => PvKind::Hdrc(HeaderKey::new(need_inner("hdrc")?)),
        other => return Err(format!("unknown pseudo-variable ${other}")),
    };
    let takes_inner = matches!(kind, PvKind::Var(_) | PvKind::Hdr(_) | PvKind::Hdrc(_));
    if inner.is_some() && !takes_inner {
        return Err(format!("${class} takes no name in parentheses"));
    }
    Ok(kind)
}
