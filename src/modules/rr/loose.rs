//! `loose_route()` (RFC 3261 §16.4, §16.12; KAMAILIO-REFERENCE §2) and the
//! functions that read what it found.
//!
//! Return codes of `loose_route()`:
//!
//! | code | meaning |
//! |---|---|
//! | 1 | routed on the Route set: `$du` and/or the R-URI now name the next hop |
//! | 2 | routed by a valid RFC 5626 flow token in our Route: `$du` is the flow |
//! | -1 | no Route header, nothing to route on, or an unreadable Route / R-URI |
//! | -2 | our Route holds a flow token that was tampered with (RFC 5626 §5.3) |
//! | -3 | out of dialog (no To-tag) and the Route set named only this proxy: removed, and false |
//!
//! -3 is false on purpose: a request that only "routes" to us was not routed
//! by a dialog's route set, so a script that relays whatever `loose_route()`
//! accepts does not relay it unauthenticated. An initial request whose Route
//! set continues past us (or does not name us) still returns 1, as in
//! Kamailio: the stock configuration only calls `loose_route()` after
//! `has_totag()`, and removes preloaded Routes from initial requests itself.

use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::flow::{self, Token};
use super::{config, fixup_config, socket_named, RrConfig};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{Arg, Args, ModParams};
use crate::sip::headers::route_set;
use crate::sip::nameaddr::NameAddr;
use crate::sip::scan;
use crate::sip::uri::Uri;
use crate::sip::{Edits, HeaderName, Message};

/// One Route value of the message, in order across Route header fields.
struct Entry<'m> {
    /// Index of its header field in `Message::headers`.
    header: usize,
    /// Where the name-addr lies in the message buffer.
    span: Range<usize>,
    uri: Uri<'m>,
}

/// Every Route value of `msg` into `out` (filled in place: the entries are
/// large to move), or `None` when one cannot be read.
fn route_entries<'m>(msg: &'m Message, out: &mut SmallVec<[Entry<'m>; 4]>) -> Option<()> {
    for (header, h) in msg.headers().iter().enumerate() {
        if h.id != HeaderName::Route {
            continue;
        }
        let at = h.value.start as usize;
        field_values(msg.value(h), |na| {
            let span = na.span();
            out.push(Entry {
                header,
                span: at + span.start..at + span.end,
                uri: na.uri().ok()?,
            });
            Some(())
        })?;
    }
    Some(())
}

/// Hands each value of one Route field to `each`, as [`route_set`] reads
/// them; `None` when one cannot be read (or `each` says so). A field without
/// a comma (nearly every one) is one value: its LWS-trimmed text, read
/// without the comma scan.
fn field_values<'m>(
    value: &'m [u8],
    mut each: impl FnMut(NameAddr<'m>) -> Option<()>,
) -> Option<()> {
    if scan::find_any(value, 0, [b',']) == value.len() {
        let (start, end) = scan::trim_lws_range(value);
        if start < end {
            // `route_set` refuses a value without angle brackets.
            let na = NameAddr::parse_in(value, start, end)
                .ok()
                .filter(NameAddr::has_brackets)?;
            each(na)?;
        }
        return Some(());
    }
    for item in route_set(value) {
        each(item.ok()?)?;
    }
    Some(())
}

/// Removes the Route values at `gone` (indices into `entries`): a header
/// field left empty goes whole, otherwise each run of removed values goes with
/// the comma that joined it to a kept one. Kamailio does the same with lumps,
/// so `$hdr(Route)` still reads the received header.
fn remove_entries(msg: &Message, entries: &[Entry<'_>], gone: &[usize], edits: &mut Edits) {
    let mut i = 0;
    while i < entries.len() {
        let header = entries[i].header;
        let end = entries[i..]
            .iter()
            .position(|e| e.header != header)
            .map_or(entries.len(), |n| i + n);
        let field = &entries[i..end];
        let removed = |k: usize| gone.contains(&(i + k));
        if (0..field.len()).all(removed) {
            edits.remove_header(msg, header);
        } else {
            let mut k = 0;
            while k < field.len() {
                if !removed(k) {
                    k += 1;
                    continue;
                }
                let run_start = k;
                while k < field.len() && removed(k) {
                    k += 1;
                }
                match field.get(k) {
                    // A kept value follows: cut up to its start.
                    Some(next) => edits.delete(field[run_start].span.start..next.span.start),
                    // The run ends the field: cut from the end of the kept value before it.
                    None => edits.delete(field[run_start - 1].span.end..field[k - 1].span.end),
                }
            }
        }
        i = end;
    }
}

/// A URI to send to: the URI itself, or `sip:maddr[:port][;transport=t]` when
/// it has `maddr` (RFC 3261 §19.1.1: maddr overrides the host as the address
/// to contact).
fn target_of(msg: &Message, uri: &Uri<'_>) -> Bytes {
    let Some(maddr) = uri.maddr().filter(|m| !m.is_empty()) else {
        return bytes_of(msg, uri.raw());
    };
    let mut out = b"sip:".to_vec();
    out.extend_from_slice(maddr);
    if let Some(port) = uri.port() {
        out.push(b':');
        out.extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
    }
    if let Some(t) = uri.param(b"transport").and_then(|p| p.value) {
        out.extend_from_slice(b";transport=");
        out.extend_from_slice(t);
    }
    Bytes::from(out)
}

/// `text` as a `Bytes`: a handle on the message buffer when it lies there
/// (a Route value, the received R-URI), else a copy.
fn bytes_of(msg: &Message, text: &[u8]) -> Bytes {
    let buf = msg.buf().as_ptr_range();
    let t = text.as_ptr_range();
    if !text.is_empty() && buf.start <= t.start && t.end <= buf.end {
        msg.buf().slice_ref(text)
    } else {
        Bytes::copy_from_slice(text)
    }
}

/// Whether `uri` is one of a double Record-Route pair (`;r2=on`).
fn is_r2(uri: &Uri<'_>) -> bool {
    uri.param(b"r2")
        .and_then(|p| p.value)
        .is_some_and(|v| v.eq_ignore_ascii_case(b"on"))
}

/// Forces the send socket to the one `uri` names (our twin Route of a double
/// Record-Route, or our single one with `force_send_socket`).
fn force_socket_of(ctx: &mut MsgCtx<'_>, cfg: &RrConfig, uri: &Uri<'_>) {
    match socket_named(ctx.env, uri.host_raw(), uri.port(), uri.transport()) {
        Some(s) => ctx.force_socket = Some(s),
        None if cfg.socket_mismatch_warning => log::warn!(
            "loose_route: no socket matches Route {:?}{}",
            String::from_utf8_lossy(uri.raw()),
            if cfg.is_myself(ctx.env, uri) {
                ""
            } else {
                " (and it is not this proxy)"
            }
        ),
        None => {}
    }
}

/// The core of `loose_route()` / `loose_route_mode()`; `strict_test` is false
/// for `loose_route_mode(1)`. See the module documentation for the codes.
fn route(ctx: &mut MsgCtx<'_>, cfg: &RrConfig, strict_test: bool) -> i32 {
    ctx.rr.routed_params = None;
    ctx.rr.routes_left = None;
    let msg = ctx.msg;
    if !msg.is_request() || msg.header(HeaderName::Route).is_none() {
        return -1;
    }
    let mut entries = SmallVec::new();
    if route_entries(msg, &mut entries).is_none() {
        log::debug!("loose_route: unreadable Route header");
        return -1;
    }
    if entries.is_empty() {
        return -1;
    }
    // The received R-URI is parsed once per message (kept on it); a rewritten
    // one through a handle (no copy), so `ctx` can be changed while it is read.
    let rewritten = ctx.new_uri.clone();
    let parsed = match &rewritten {
        Some(uri) => Uri::parse(uri),
        None => msg.parsed_uri().unwrap_or_else(|| Uri::parse(b"")),
    };
    let Ok(ruri) = parsed else {
        log::debug!("loose_route: unreadable Request-URI");
        return -1;
    };
    // No To-tag: an initial request whose Route set the sender preloaded.
    let Some(to_tag) = msg.to_tag() else {
        return -1;
    };
    let preloaded = to_tag.is_none();
    let mut gone: SmallVec<[usize; 4]> = SmallVec::new();
    let code = if !preloaded && strict_test && cfg.is_myself(ctx.env, &ruri) {
        after_strict(ctx, cfg, &entries, &ruri, &mut gone)
    } else {
        after_loose(ctx, cfg, &entries, preloaded, &mut gone)
    };
    if !gone.is_empty() {
        remove_entries(msg, &entries, &gone, &mut ctx.edits);
    }
    ctx.rr.routes_left = Some(entries.len().saturating_sub(gone.len()));
    // Kamailio's rr callbacks (path `use_received`) run once our own Route
    // with parameters was found, whatever the code.
    if let (Some(hook), Some(params)) = (&cfg.path_received, &ctx.rr.routed_params) {
        let params = params.clone();
        hook.apply(ctx, &params);
    }
    code
}

/// The previous hop was a loose router (or this is an initial request): our
/// own Route values are on top, the next hop follows them.
fn after_loose(
    ctx: &mut MsgCtx<'_>,
    cfg: &RrConfig,
    entries: &[Entry<'_>],
    preloaded: bool,
    gone: &mut SmallVec<[usize; 4]>,
) -> i32 {
    let top = &entries[0].uri;
    let mut next = 0;
    let mut by_flow = false;
    if cfg.is_myself(ctx.env, top) {
        // RFC 5626 §5.3: a flow token in our Route names the flow to use for a
        // request that does not come from that flow ("incoming").
        if let (Some(key), Some(user)) = (&cfg.flow_key, top.user()) {
            match flow::decode(key, user) {
                Token::NotToken => {}
                Token::Tampered => {
                    log::info!("loose_route: tampered flow token in Route");
                    return -2;
                }
                Token::Valid(f) if f.remote != ctx.src => {
                    let Some(socket) = socket_named(
                        ctx.env,
                        f.local.ip().to_string().as_bytes(),
                        Some(f.local.port()),
                        Some(f.proto),
                    ) else {
                        log::info!("loose_route: no socket for the flow token's {}", f.local);
                        return -2;
                    };
                    ctx.force_socket = Some(socket);
                    ctx.dst_uri = Some(Bytes::from(f.uri()));
                    by_flow = true;
                }
                // "Outgoing": from the flow itself, routed as usual.
                Token::Valid(_) => {}
            }
        }
        // One copy (`into()` would push byte by byte).
        ctx.rr.routed_params = Some(super::RoutedParams::from_slice(top.params_raw()));
        gone.push(0);
        next = 1;
        match entries.get(1) {
            Some(twin) if cfg.double_rr != 0 && is_r2(top) => {
                if !by_flow {
                    force_socket_of(ctx, cfg, &twin.uri);
                }
                gone.push(1);
                next = 2;
            }
            _ if cfg.force_send_socket && !by_flow => force_socket_of(ctx, cfg, top),
            _ => {}
        }
        if next >= entries.len() {
            // Only our own Route(s): in a dialog the request goes to the R-URI.
            return match (by_flow, preloaded) {
                (true, _) => 2,
                (false, true) => -3,
                (false, false) => 1,
            };
        }
    }
    let hop = &entries[next].uri;
    if !hop.lr() {
        strict_next_hop(ctx, hop);
        gone.push(next);
    } else if !by_flow {
        ctx.dst_uri = Some(target_of(ctx.msg, hop));
    }
    if by_flow {
        2
    } else {
        1
    }
}

/// RFC 3261 §16.6 step 6 / §16.12.1.2: the next hop is a strict router, so it
/// goes into the Request-URI and the Request-URI becomes the last Route.
fn strict_next_hop(ctx: &mut MsgCtx<'_>, hop: &Uri<'_>) {
    let msg = ctx.msg;
    let mut line = b"Route: <".to_vec();
    line.extend_from_slice(msg.request_uri().unwrap_or_default());
    line.extend_from_slice(b">\r\n");
    ctx.edits.append_header(msg, line);
    ctx.new_uri = Some(target_of(ctx.msg, hop));
}

/// RFC 3261 §16.4: the Request-URI is a value we placed in a Record-Route, so
/// the previous hop was a strict router.
fn after_strict(
    ctx: &mut MsgCtx<'_>,
    cfg: &RrConfig,
    entries: &[Entry<'_>],
    ruri: &Uri<'_>,
    gone: &mut SmallVec<[usize; 4]>,
) -> i32 {
    let mut next = 0;
    let top = &entries[0].uri;
    // Our other half of a double Record-Route is the top Route: skip it.
    if cfg.double_rr != 0 && is_r2(top) && cfg.is_myself(ctx.env, top) {
        force_socket_of(ctx, cfg, top);
        gone.push(0);
        next = 1;
        if entries.len() == 1 {
            return -1;
        }
    }
    // Our parameters are those of the Request-URI the strict router put there.
    ctx.rr.routed_params = Some(super::RoutedParams::from_slice(ruri.params_raw()));
    let hop = &entries[next].uri;
    if !hop.lr() {
        // Strict on both sides: behave as a strict router (§16.12.1.1 in reverse).
        ctx.new_uri = Some(target_of(ctx.msg, hop));
        gone.push(next);
    } else {
        // §16.4: "replace the Request-URI in the request with the last value
        // from the Route header field, and remove that value".
        ctx.dst_uri = Some(target_of(ctx.msg, hop));
        let last = entries.len() - 1;
        ctx.new_uri = Some(target_of(ctx.msg, &entries[last].uri));
        if !gone.contains(&last) {
            gone.push(last);
        }
    }
    1
}

/// `loose_route()`.
pub(super) fn loose_route(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let rc = route(ctx, config(args), true);
    routed(ctx, rc)
}

/// The dialog module follows in-dialog requests routed on our Route (as
/// Kamailio's rr callback does).
fn routed(ctx: &mut MsgCtx<'_>, rc: i32) -> i32 {
    if rc > 0 {
        crate::modules::dialog::on_loose_route(ctx);
        crate::modules::uac::on_loose_route(ctx);
    }
    rc
}

/// `loose_route_preloaded()`: 1 only where `loose_route()` gives -3 (a
/// preloaded Route set that named only us), else -1; same effects.
pub(super) fn loose_route_preloaded(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if route(ctx, config(args), true) == -3 {
        1
    } else {
        -1
    }
}

/// `loose_route_mode(m)`: with `m` = 1 the "R-URI is ours, so the previous hop
/// was a strict router" test is skipped.
pub(super) fn loose_route_mode(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let mode = args.int(ctx, 0).unwrap_or(0);
    let rc = route(ctx, config(args), mode & 1 == 0);
    routed(ctx, rc)
}

pub(super) fn fixup_mode(args: &mut Args, params: &ModParams) -> Result<(), String> {
    if matches!(args.get(0), Some(Arg::Str(_))) {
        crate::script::registry::fixup_int(args, 0)?;
    }
    fixup_config(args, params)
}

/// `rr_next_hop_route()`: 1 when a Route value is left for the next hop.
pub(super) fn rr_next_hop_route(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let left = match ctx.rr.routes_left {
        Some(n) => n > 0,
        None => ctx.msg.header(HeaderName::Route).is_some(),
    };
    if left {
        1
    } else {
        -1
    }
}

/// A compiled `check_route_param` pattern (POSIX ERE, case-insensitive).
struct ParamRegex(regex::bytes::Regex);

fn compile(pattern: &[u8]) -> Result<regex::bytes::Regex, String> {
    let text = std::str::from_utf8(pattern).map_err(|_| "regex is not UTF-8".to_string())?;
    regex::bytes::RegexBuilder::new(text)
        .case_insensitive(true)
        .build()
        .map_err(|e| format!("bad regex {text:?}: {e}"))
}

pub(super) fn fixup_regex(args: &mut Args, params: &ModParams) -> Result<(), String> {
    if let Some(Arg::Str(s)) = args.get(0) {
        let re = compile(s)?;
        args.0[0] = Arg::Custom(Box::new(ParamRegex(re)));
    }
    fixup_config(args, params)
}

/// `check_route_param(re)`: 1 when the parameters of our Route URI (as
/// `loose_route()` found them, from the first `;`) match `re`, else -1.
pub(super) fn check_route_param(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(params) = ctx.rr.routed_params.as_deref().filter(|p| !p.is_empty()) else {
        return -1;
    };
    let matched = match args.custom::<ParamRegex>(0) {
        Some(re) => re.0.is_match(params),
        None => match compile(&args.str(ctx, 0)) {
            Ok(re) => re.is_match(params),
            Err(e) => {
                log::error!("check_route_param: {e}");
                return -1;
            }
        },
    };
    if matched {
        1
    } else {
        -1
    }
}

/// Which way an in-dialog request travels, relative to the dialog's creator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the caller (the From tag is the one in our `ftag`).
    Downstream,
    /// From the callee back toward the caller.
    Upstream,
}

/// The direction `loose_route()` established: upstream when our Route's
/// `ftag` differs from the From tag; downstream when they match, or when
/// either is missing.
pub fn direction(ctx: &MsgCtx<'_>) -> Direction {
    let ftag = ctx
        .rr
        .routed_params
        .as_deref()
        .and_then(|p| crate::sip::scan::Params::new(p).get(b"ftag"))
        .and_then(|p| p.value)
        .filter(|v| !v.is_empty());
    let Some(ftag) = ftag else {
        return Direction::Downstream;
    };
    let from_tag = ctx
        .msg
        .header_value(HeaderName::From)
        .and_then(|v| NameAddr::parse(v).ok())
        .and_then(|na| na.tag())
        .filter(|t| !t.is_empty());
    match from_tag {
        Some(tag) if tag != ftag => Direction::Upstream,
        _ => Direction::Downstream,
    }
}

pub(super) fn fixup_direction(args: &mut Args, params: &ModParams) -> Result<(), String> {
    let dir = match args.get(0) {
        Some(Arg::Str(s)) if s.eq_ignore_ascii_case(b"downstream") => Direction::Downstream,
        Some(Arg::Str(s)) if s.eq_ignore_ascii_case(b"upstream") => Direction::Upstream,
        _ => return Err("is_direction takes \"downstream\" or \"upstream\"".to_string()),
    };
    args.0[0] = Arg::Custom(Box::new(dir));
    fixup_config(args, params)
}

/// `is_direction("downstream" | "upstream")`: 1 when the request travels that way, else -1.
pub(super) fn is_direction(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let want = match args.custom::<Direction>(0) {
        Some(d) => *d,
        None => {
            let s = args.str(ctx, 0);
            if s.eq_ignore_ascii_case(b"upstream") {
                Direction::Upstream
            } else if s.eq_ignore_ascii_case(b"downstream") {
                Direction::Downstream
            } else {
                return -1;
            }
        }
    };
    if direction(ctx) == want {
        1
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `route_set` reads from `value`: every name-addr, or `None`.
    fn by_route_set(value: &[u8]) -> Option<Vec<NameAddr<'_>>> {
        route_set(value).collect::<Result<Vec<_>, _>>().ok()
    }

    fn by_field_values(value: &[u8]) -> Option<Vec<NameAddr<'_>>> {
        let mut out = Vec::new();
        field_values(value, |na| {
            out.push(na);
            Some(())
        })?;
        Some(out)
    }

    proptest! {
        /// The comma-free shortcut reads a Route field as `route_set` does:
        /// the same values (offsets included), the same refusals.
        #[test]
        fn field_values_match_route_set(
            lead in proptest::sample::select(vec!["", " ", "\t", "\r\n "]),
            items in proptest::collection::vec(proptest::sample::select(vec![
                "<sip:127.0.0.1:5060;lr>", "<sip:127.0.0.1;lr;ftag=a1>", "<sip:p.example.com;lr>;x=1",
                "\"A, b\" <sip:a@h;lr>", "Proxy <sip:h>", "sip:h;lr", "<sip:h", "<>", "", " ",
                "<sip:a,b@h;lr>", "\"q<\" <sip:h>", "<sip:[::1]:5060;lr>", "<sip:h> ;lr", "<sip:h>\"",
            ]), 0..3),
            sep in proptest::sample::select(vec![",", ", ", " ,", ",\r\n "]),
            trail in proptest::sample::select(vec!["", " ", "\t", "\r\n"]),
        ) {
            let value = format!("{lead}{}{trail}", items.join(sep));
            let v = value.as_bytes();
            prop_assert_eq!(by_field_values(v), by_route_set(v), "{:?}", value);
        }
    }

    #[test]
    fn one_value_fields() {
        let v = b" <sip:127.0.0.1:5060;lr;ftag=x> ";
        let got = by_field_values(v).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].span(), 1..v.len() - 1);
        assert_eq!(by_field_values(b"  "), Some(vec![]));
        assert_eq!(by_field_values(b"sip:h;lr"), None);
        assert_eq!(by_field_values(b"<sip:h"), None);
    }
}
