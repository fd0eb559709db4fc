//! `uac_replace_from/to()`, `uac_restore_from/to()` and the restoring of
//! From/To in replies, as Kamailio 5.6 does them:
//!
//! - the display name, when given, replaces the one written (quotes and
//!   all) or goes in front of the URI (adding the brackets if there were
//!   none); an empty one removes it. It is written as given: no quotes are
//!   added. Only the URI is restored later, never the display name;
//! - the URI is replaced; unless `restore_mode` is `none`, the original is
//!   kept in our Record-Route and the request's replies are restored;
//! - in `auto` mode a request with a To tag may not have its URI replaced.

use std::ops::Range;

use crate::modules::rr::loose::{direction, Direction};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{Args, RouteType};
use crate::sip::edit::Edits;
use crate::sip::nameaddr::NameAddr;
use crate::sip::{HeaderName, Message};

use super::{codec, config, RestoreMode, UacConfig, RESTORE_REPLIES, USE_UAC_FROM, USE_UAC_TO};

/// Where the parts of a From/To value are in the message buffer.
#[derive(Debug, Clone)]
struct Parts {
    /// The start of the value (after the header's colon and white space).
    start: usize,
    /// The display name as written (with its quotes).
    display: Option<Range<usize>>,
    /// The `<` before the URI.
    lt: Option<usize>,
    uri: Range<usize>,
    /// The end of the URI and of a `>` after it (white space between included).
    end: usize,
}

fn parts(msg: &Message, name: HeaderName) -> Option<Parts> {
    let h = msg.header(name)?;
    let buf = msg.buf();
    let v = h.value.range();
    let Ok(na) = NameAddr::parse_in(buf, v.start, v.end) else {
        return lenient_parts(buf, v);
    };
    let uri = na.uri_range();
    let display = na.display_name().and_then(|d| {
        let raw = d.raw();
        let at = (raw.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
        Some(if d.is_quoted() {
            at.checked_sub(1)?..at + raw.len() + 1
        } else {
            at..at + raw.len()
        })
    });
    let lt = if na.has_brackets() {
        buf.get(v.start..uri.start)?
            .iter()
            .rposition(|&b| b == b'<')
            .map(|i| v.start + i)
    } else {
        None
    };
    let mut end = uri.end;
    while buf.get(end).is_some_and(|b| b.is_ascii_whitespace()) {
        end += 1;
    }
    end = if buf.get(end) == Some(&b'>') {
        end + 1
    } else {
        uri.end
    };
    Some(Parts {
        start: na.span().start,
        display,
        lt,
        uri,
        end,
    })
}

/// [`parts`] of a value the grammar refuses but Kamailio reads: a display
/// name with characters a token may not hold (`Carrier, Inc <sip:…>`, as
/// uac itself may have written it), then `<uri>`.
fn lenient_parts(buf: &[u8], v: Range<usize>) -> Option<Parts> {
    let text = buf.get(v.clone())?;
    let mut quoted = false;
    let lt = text.iter().position(|&b| {
        if b == b'"' {
            quoted = !quoted;
        }
        b == b'<' && !quoted
    })?;
    let gt = lt + text[lt..].iter().position(|&b| b == b'>')?;
    let start = v.start + text.iter().position(|b| !b.is_ascii_whitespace())?;
    let shown = crate::sip::scan::trim_lws(&text[..lt]);
    let display = (!shown.is_empty()).then(|| start..start + shown.len());
    let inner = &text[lt + 1..gt];
    let lead = inner.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let uri_text = crate::sip::scan::trim_lws(&inner[lead..]);
    let uri_start = v.start + lt + 1 + lead;
    Some(Parts {
        start,
        display,
        lt: Some(v.start + lt),
        uri: uri_start..uri_start + uri_text.len(),
        end: v.start + gt + 1,
    })
}

/// `uac_replace_from([display,] uri)`.
pub(super) fn uac_replace_from(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    replace_call(ctx, args, true)
}

/// `uac_replace_to([display,] uri)`.
pub(super) fn uac_replace_to(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    replace_call(ctx, args, false)
}

fn replace_call(ctx: &mut MsgCtx<'_>, args: &Args, from: bool) -> i32 {
    // One argument: the URI, the display name untouched.
    let n = args
        .0
        .iter()
        .filter(|a| !matches!(a, crate::script::registry::Arg::Custom(_)))
        .count();
    let (display, uri) = if n >= 2 {
        (
            Some(args.str(ctx, 0).into_owned()),
            args.str(ctx, 1).into_owned(),
        )
    } else {
        (None, args.str(ctx, 0).into_owned())
    };
    let cfg = config(args);
    if replace(ctx, cfg, from, display.as_deref(), &uri) {
        1
    } else {
        -1
    }
}

/// Replaces the display name (when `display` is given) and the URI (when
/// `uri` is not empty) of the From (`from`) or To; false on error.
pub fn replace(
    ctx: &mut MsgCtx<'_>,
    cfg: &UacConfig,
    from: bool,
    display: Option<&[u8]>,
    uri: &[u8],
) -> bool {
    let flag = if from { USE_UAC_FROM } else { USE_UAC_TO };
    if ctx.route_type == RouteType::Request && ctx.state.iflags & flag != 0 {
        log::error!(
            "uac_replace_{}() called multiple times on the message",
            if from { "from" } else { "to" }
        );
        return false;
    }
    let msg = ctx.msg;
    if cfg.restore_mode == RestoreMode::Auto && !uri.is_empty() {
        match msg.to_tag() {
            None => return false,
            Some(Some(t)) if !t.is_empty() => {
                log::error!(
                    "uac: declining to replace a URI in an in-dialog request (To tag) in auto mode"
                );
                return false;
            }
            Some(_) => {}
        }
    }
    let name = if from {
        HeaderName::From
    } else {
        HeaderName::To
    };
    let Some(p) = parts(msg, name) else {
        log::error!("uac: no {name:?} header to replace in");
        return false;
    };
    if let Some(display) = display {
        match (&p.display, display.is_empty(), p.lt) {
            (Some(old), _, _) => ctx.edits.replace(old.clone(), display.to_vec()),
            (None, true, _) => {}
            (None, false, Some(lt)) => ctx.edits.insert(lt, [display, b" "].concat()),
            (None, false, None) => {
                ctx.edits.insert(p.uri.start, [display, b" <"].concat());
                ctx.edits.insert(p.uri.end, &b">"[..]);
            }
        }
    }
    if uri.is_empty() {
        return true;
    }
    let old = &msg.buf()[p.uri.clone()];
    ctx.edits.replace(p.uri.clone(), uri.to_vec());
    if cfg.restore_mode == RestoreMode::None {
        return true;
    }
    let value = match codec::encode(old, uri, &cfg.passwd) {
        Ok(v) => v,
        Err(e) => {
            log::error!("uac: cannot store the original URI: {e:?}");
            return false;
        }
    };
    let name = if from { &cfg.from_param } else { &cfg.to_param };
    let param = [&b";"[..], name, b"=", value.as_bytes()].concat();
    ctx.rr.add_param(&param);
    ctx.state.iflags |= flag | RESTORE_REPLIES;
    true
}

/// `uac_restore_from()`: 1 when the From (or To) was restored from our Route.
pub(super) fn uac_restore_from(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if restore(ctx, config(args), true) {
        1
    } else {
        -1
    }
}

/// `uac_restore_to()`.
pub(super) fn uac_restore_to(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if restore(ctx, config(args), false) {
        1
    } else {
        -1
    }
}

/// Restores the URI stored under the From (`from`) or To parameter of our
/// Route into whichever header holds the other one: a From parameter goes
/// into the From of a request from the caller and into the To of one from
/// the callee (and the other way round for the To parameter).
pub fn restore(ctx: &mut MsgCtx<'_>, cfg: &UacConfig, from: bool) -> bool {
    let pname = if from { &cfg.from_param } else { &cfg.to_param };
    let Some(routed) = ctx.rr.routed_params() else {
        return false;
    };
    let Some(value) = crate::sip::scan::Params::new(routed)
        .get(pname)
        .and_then(|p| p.value)
        .map(<[u8]>::to_vec)
    else {
        return false;
    };
    let decoded = match codec::decode(&value, &cfg.passwd) {
        Ok(d) => d,
        Err(e) => {
            log::error!("uac: cannot decode the stored URI: {e:?}");
            return false;
        }
    };
    // Kept for a Record-Route this request may get (a re-INVITE).
    ctx.rr.add_param(&[&b";"[..], pname, b"=", &value].concat());
    let dir = direction(ctx);
    let in_to = (from && dir == Direction::Upstream) || (!from && dir == Direction::Downstream);
    let (name, flag) = if in_to {
        (HeaderName::To, USE_UAC_TO)
    } else {
        (HeaderName::From, USE_UAC_FROM)
    };
    let msg = ctx.msg;
    let Some(p) = parts(msg, name) else {
        return false;
    };
    let other = match codec::other_uri(decoded, &msg.buf()[p.uri.clone()]) {
        Ok(u) => u,
        Err(e) => {
            log::warn!("uac: the stored URI does not fit the {name:?} URI ({e:?}): not restored");
            return false;
        }
    };
    ctx.edits.replace(p.uri, other);
    ctx.state.iflags |= flag;
    true
}

/// The edits that give a reply to a request whose From/To were changed
/// (`iflags`) the From/To values of `request` as it was received (up to the
/// end of the URI: the reply's tags stay).
pub fn reply_edits(request: &Message, reply: &Message, iflags: u32, edits: &mut Edits) {
    for (flag, name) in [
        (USE_UAC_FROM, HeaderName::From),
        (USE_UAC_TO, HeaderName::To),
    ] {
        if iflags & flag == 0 {
            continue;
        }
        let (Some(req), Some(rpl)) = (parts(request, name), parts(reply, name)) else {
            log::error!("uac: cannot restore {name:?} in a reply");
            continue;
        };
        let original = request.buf().slice(req.start..req.end);
        edits.replace(rpl.start..rpl.end, original);
    }
}
