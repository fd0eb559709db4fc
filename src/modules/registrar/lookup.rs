//! `lookup()`, `lookup_to_dset()`, `lookup_branches()` and `registered()`.

use bytes::Bytes;

use super::{aor_of, setup, Setup};
use crate::modules::usrloc::Ucontact;
use crate::script::ctx::{Branch, MsgCtx};
use crate::script::registry::Args;
use crate::sip::nameaddr::{name_addrs, NameAddr};
use crate::sip::HeaderName;

/// Found: the R-URI (or a branch) now points at a contact.
const FOUND: i32 = 1;
/// No such AoR, or no valid contact.
const NOT_FOUND: i32 = -1;
/// Contacts exist but none accepts the method (`method_filtering`).
const METHOD_NOT_ALLOWED: i32 = -2;
/// Bad URI or usrloc failure.
const ERROR: i32 = -3;

/// The contacts of the AoR of `uri`, most preferred first, as branches.
fn targets(ctx: &MsgCtx<'_>, s: &Setup<'_>, uri: &[u8]) -> Result<Vec<Branch>, i32> {
    let Some(aor) = aor_of(uri, s.ul.params.use_domain, s.reg) else {
        return Err(ERROR);
    };
    let now = (ctx.unix_ms() / 1000) as i64;
    // RFC 3261 §12: in-dialog requests go where the dialog says, whatever the Allow.
    let filter = s.reg.method_filtering && !has_to_tag(ctx);
    let method = ctx.msg.method_bytes();
    let found = s.ul.read(&s.dom, &aor, |rec| {
        let Some(rec) = rec else {
            return Err(NOT_FOUND);
        };
        let mut any = false;
        let list: Vec<Branch> = rec
            .valid(now)
            .inspect(|_| any = true)
            .filter(|c| !filter || c.allows(method))
            .map(|c| branch(c, s.reg.path_use_received))
            .collect();
        match (any, list.is_empty()) {
            (false, _) => Err(NOT_FOUND),
            (true, true) => Err(METHOD_NOT_ALLOWED),
            (true, false) => Ok(list),
        }
    });
    match found {
        Ok(r) => r,
        Err(e) => {
            log::error!("lookup: {e}");
            Err(ERROR)
        }
    }
}

fn has_to_tag(ctx: &MsgCtx<'_>) -> bool {
    ctx.msg
        .header_value(HeaderName::To)
        .and_then(|v| NameAddr::parse(v).ok())
        .is_some_and(|na| na.tag().is_some())
}

/// A contact as a forking target: `$du` is the first Path URI, else the received address.
fn branch(c: &Ucontact, path_use_received: bool) -> Branch {
    let first_path = c.path.as_deref().and_then(|p| {
        name_addrs(p.as_bytes())
            .next()
            .and_then(Result::ok)
            .map(|na| Bytes::copy_from_slice(na.uri_raw()))
    });
    let dst_uri = match (&first_path, path_use_received) {
        // path_use_received: the received of the first Path hop is the next hop.
        (Some(p), true) => received_param(p).or_else(|| Some(p.clone())),
        (Some(p), false) => Some(p.clone()),
        (None, _) => c
            .received
            .as_deref()
            .map(|r| Bytes::copy_from_slice(r.as_bytes())),
    };
    Branch {
        uri: Bytes::copy_from_slice(c.contact.as_bytes()),
        q: i32::from(c.q),
        dst_uri,
        path: c
            .path
            .as_deref()
            .map(|p| Bytes::copy_from_slice(p.as_bytes())),
        flags: c.cflags,
        socket: c
            .socket
            .as_deref()
            .map(|p| Bytes::copy_from_slice(p.as_bytes())),
    }
}

fn received_param(uri: &[u8]) -> Option<Bytes> {
    let u = crate::sip::uri::Uri::parse(uri).ok()?;
    let v = u.param(b"received")?.value?;
    Some(Bytes::copy_from_slice(v))
}

/// Points the request at `targets[0]`, the rest as branches when `append_branches`.
fn apply(ctx: &mut MsgCtx<'_>, mut targets: Vec<Branch>, append: bool) {
    let rest = targets.split_off(1);
    if let Some(first) = targets.pop() {
        ctx.new_uri = Some(first.uri);
        ctx.dst_uri = first.dst_uri;
        ctx.path_vec = first.path;
        ctx.state.ruri_q = (first.q >= 0).then_some(first.q);
        // The contact's flags join the Request-URI branch's flags.
        ctx.state.bflags |= first.flags;
    }
    if append {
        ctx.branches.extend(rest);
    }
}

fn uri_arg(ctx: &MsgCtx<'_>, args: &Args) -> Vec<u8> {
    if args.len() > 1 {
        args.str(ctx, 1).into_owned()
    } else {
        ctx.ruri().to_vec()
    }
}

/// `lookup(table[, uri])`: 1 found, -1 not found, -2 method not allowed, -3 error.
pub fn lookup(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(s) = setup(ctx, args, "lookup") else {
        return ERROR;
    };
    let uri = uri_arg(ctx, args);
    match targets(ctx, &s, &uri) {
        Ok(t) => {
            apply(ctx, t, s.reg.append_branches);
            FOUND
        }
        Err(rc) => rc,
    }
}

/// `lookup_to_dset(table[, uri])`: as lookup, but every contact becomes a branch
/// and the Request-URI is left as it is.
pub fn lookup_to_dset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(s) = setup(ctx, args, "lookup_to_dset") else {
        return ERROR;
    };
    let uri = uri_arg(ctx, args);
    match targets(ctx, &s, &uri) {
        Ok(t) => {
            ctx.branches.extend(t);
            FOUND
        }
        Err(rc) => rc,
    }
}

/// `lookup_branches(table)`: lookup on the Request-URI and on each branch
/// already added; a branch found is replaced by its contacts. 1 if any was found,
/// else the Request-URI's code.
pub fn lookup_branches(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(s) = setup(ctx, args, "lookup_branches") else {
        return ERROR;
    };
    // As Kamailio 5.6: the R-URI's extra contacts go after the branches
    // there are; then each clean branch that has bindings is dropped and its
    // contacts go at the end.
    let n = ctx.branches.len();
    let ruri = ctx.ruri().to_vec();
    let mut rc = match targets(ctx, &s, &ruri) {
        Ok(t) => {
            apply(ctx, t, s.reg.append_branches);
            FOUND
        }
        Err(rc) => rc,
    };
    let mut i = 0;
    let mut left = n;
    while left > 0 {
        left -= 1;
        let b = &ctx.branches[i];
        let clean = b.dst_uri.is_none() && b.path.is_none() && b.socket.is_none() && b.flags == 0;
        let found = if clean {
            let uri = b.uri.clone();
            targets(ctx, &s, &uri).ok()
        } else {
            None
        };
        match found {
            Some(t) => {
                ctx.branches.remove(i);
                ctx.branches.extend(t);
                rc = FOUND;
            }
            None => i += 1,
        }
    }
    rc
}

/// `registered(table[, uri[, match_flags[, match_action]]])`: 1 if the AoR of
/// the R-URI (To for a reply) or `uri` has a valid contact, else -1. The
/// flags narrow the match to a contact whose Call-ID (1), received address
/// (2) or URI (4) equals the `match_callid` / `match_received` /
/// `match_contact` field of the registrar's `xavp_cfg` XAVP (a flag whose
/// field is unset or empty does not narrow).
pub fn registered(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(s) = setup(ctx, args, "registered") else {
        return -1;
    };
    let uri = if args.len() > 1 {
        args.str(ctx, 1).into_owned()
    } else if ctx.msg.is_request() {
        ctx.ruri().to_vec()
    } else {
        ctx.msg
            .header_value(HeaderName::To)
            .and_then(|v| NameAddr::parse(v).ok())
            .map(|na| na.uri_raw().to_vec())
            .unwrap_or_default()
    };
    let Some(aor) = aor_of(&uri, s.ul.params.use_domain, s.reg) else {
        return -1;
    };
    let now = (ctx.unix_ms() / 1000) as i64;
    let flags = if args.len() > 2 {
        super::flags_arg(ctx, args, 2)
    } else {
        0
    };
    let want = Narrowing::of(ctx, s.reg, flags);
    match s.ul.read(&s.dom, &aor, |rec| {
        rec.is_some_and(|r| r.valid(now).any(|c| want.accepts(c)))
    }) {
        Ok(true) => 1,
        _ => -1,
    }
}

/// What `registered()`'s match flags compare a contact with.
#[derive(Debug, Default)]
struct Narrowing {
    callid: Option<Vec<u8>>,
    received: Option<Vec<u8>>,
    contact: Option<Vec<u8>>,
}

impl Narrowing {
    fn of(ctx: &MsgCtx<'_>, reg: &super::RegParams, flags: u32) -> Narrowing {
        let Some(cfg) = reg.xavp_cfg.as_deref().filter(|_| flags & 7 != 0) else {
            return Narrowing::default();
        };
        let field = |bit: u32, name: &[u8]| {
            if flags & bit == 0 {
                return None;
            }
            let x = ctx.attrs.xavp(cfg.as_bytes(), 0)?.field(name, 0)?;
            let v = x.script_value().to_bytes().into_owned();
            (!v.is_empty()).then_some(v)
        };
        Narrowing {
            callid: field(1, b"match_callid"),
            received: field(2, b"match_received"),
            contact: field(4, b"match_contact"),
        }
    }

    fn accepts(&self, c: &Ucontact) -> bool {
        let same = |want: &Option<Vec<u8>>, have: Option<&str>| {
            want.as_deref()
                .is_none_or(|w| w == have.unwrap_or("").as_bytes())
        };
        same(&self.callid, Some(&c.callid))
            && same(&self.received, c.received.as_deref())
            && same(&self.contact, Some(&c.contact))
    }
}
