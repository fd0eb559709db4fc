//! The dispatcher's script functions (KAMAILIO-REFERENCE §7.9 "Functions"):
//! selection into `$du`, the R-URI or only the XAVPs, failover from the
//! `_dsdst_` records, marking, and the list tests.

use bytes::Bytes;

use super::list::{self, DestSet, DISABLED, INACTIVE, PROBING, TRYING};
use super::select::{self, Alg, Pick};
use super::{uri_eq, Dispatcher, FLAG_FAILOVER, FLAG_HASH_USER_ONLY};
use crate::modules::core::send::SocketSpec;
use crate::script::attrs::{Xavp, XavpValue};
use crate::script::ctx::{Branch, MsgCtx};
use crate::script::pvkind::{AuthPart, PvKind, PvRef};
use crate::script::registry::{Arg, Args, ModParams};
use crate::script::value::Value;
use crate::sip::HeaderName;

pub(super) fn ds<'e>(ctx: &MsgCtx<'e>) -> Option<&'e Dispatcher> {
    let d = ctx.env.services.get::<Dispatcher>();
    if d.is_none() {
        log::error!("dispatcher: no destination sets loaded");
    }
    d
}

/// What a selection changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// `$du` (`ds_select_dst`, `ds_next_dst`).
    Dst,
    /// The R-URI's host and port (`ds_select_domain`, `ds_next_domain`).
    Domain,
    /// Only the XAVPs (`ds_select`).
    Xavp,
}

/// Points the request at `uri` as `mode` says; false when it cannot be used.
pub(super) fn apply(ctx: &mut MsgCtx<'_>, uri: &[u8], sock: Option<&str>, mode: Mode) -> bool {
    match mode {
        Mode::Xavp => return true,
        Mode::Dst => ctx.dst_uri = Some(Bytes::copy_from_slice(uri)),
        Mode::Domain => match domain_uri(ctx.ruri(), uri) {
            Some(u) => ctx.new_uri = Some(u),
            None => return false,
        },
    }
    if let Some(spec) = sock.and_then(SocketSpec::parse) {
        if let Some(id) = spec.find(ctx) {
            ctx.force_socket = Some(id);
        }
    }
    true
}

/// The first pick of `alg` for this message; `None` when its key is missing.
pub(super) fn pick(ctx: &MsgCtx<'_>, d: &Dispatcher, set: &DestSet, alg: Alg) -> Option<Pick> {
    let user_only = d.params.flags & FLAG_HASH_USER_ONLY != 0;
    let name_uri = |id: HeaderName| -> Option<u32> {
        let v = ctx.msg.header_value(id)?;
        let na = crate::sip::nameaddr::NameAddr::parse(v).ok()?;
        select::uri_hash(na.uri_raw(), user_only)
    };
    Some(match alg {
        Alg::CallId => {
            let v = ctx.msg.header_value(HeaderName::CallId)?;
            Pick::Hash(select::ds_hash(v.trim_ascii(), None))
        }
        Alg::FromUri => Pick::Hash(name_uri(HeaderName::From)?),
        Alg::ToUri => Pick::Hash(name_uri(HeaderName::To)?),
        Alg::RUri => Pick::Hash(select::uri_hash(ctx.ruri(), user_only)?),
        Alg::AuthUser => match ctx.read_pv(&PvRef::new(PvKind::Auth(AuthPart::User))) {
            Value::Str(u) if !u.is_empty() => Pick::Hash(select::ds_hash(&u, None)),
            // No credentials: take turns.
            _ => Pick::Index(select::next_round_robin(set)),
        },
        Alg::Random => Pick::Index((d.random() % set.dests.len().max(1) as u64) as usize),
        Alg::Pvar => {
            let Some(f) = ctx.program.param_format("dispatcher", "hash_pvar") else {
                log::error!("dispatcher: algorithm 7 needs the hash_pvar parameter");
                return None;
            };
            let key = ctx.format(f);
            if key.is_empty() {
                return None;
            }
            Pick::Hash(select::ds_hash(&key, None))
        }
        Alg::Priority | Alg::Parallel => Pick::Index(0),
        Alg::RoundRobin => Pick::Index(select::next_round_robin(set)),
        Alg::Weight => Pick::Index(select::next_weighted(set)),
        Alg::RelativeWeight => Pick::Index(select::next_relative_weight(set)),
    })
}

/// One `_dsdst_` record, with the fields Kamailio 5.6.3 gives it (observed:
/// `grp` and `uri`; `attrs` and `sock` when the destination has them).
pub(super) fn record(name: &Bytes, set: i32, dest: &list::Dest) -> Xavp {
    let mut fields = vec![
        Xavp::value(Bytes::from_static(b"grp"), Value::Int(i64::from(set))),
        Xavp::value(Bytes::from_static(b"uri"), Value::owned(dest.uri.to_vec())),
    ];
    let a = &dest.attrs;
    if !a.body.is_empty() {
        fields.push(Xavp::value(
            Bytes::from_static(b"attrs"),
            Value::owned(a.body.clone().into_bytes()),
        ));
    }
    if let Some(s) = &a.socket {
        fields.push(Xavp::value(
            Bytes::from_static(b"sock"),
            Value::owned(s.clone().into_bytes()),
        ));
    }
    Xavp {
        name: name.clone(),
        value: XavpValue::List(fields),
    }
}

/// `ds_select_dst`, `ds_select_domain`, `ds_select`: 1 selected, -1 not.
pub(super) fn select_with(ctx: &mut MsgCtx<'_>, args: &Args, mode: Mode) -> i32 {
    let (Some(set_id), Some(alg_n)) = (args.int(ctx, 0), args.int(ctx, 1)) else {
        return -1;
    };
    let alg = match args.custom::<Alg>(3) {
        Some(a) => *a,
        None => match Alg::from_number(alg_n) {
            Ok(a) => a,
            Err(e) => {
                log::error!("dispatcher: {e}");
                return -1;
            }
        },
    };
    let limit = match args.get(2) {
        Some(Arg::Custom(_)) | None => usize::MAX,
        Some(_) => limit_arg(ctx, args, 2),
    };
    let Ok(set_id) = i32::try_from(set_id) else {
        return -1;
    };
    run_selection(ctx, &[(set_id, alg)], limit, mode)
}

/// A positive limit argument; anything else means no limit.
pub(super) fn limit_arg(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> usize {
    args.int(ctx, i)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(usize::MAX)
}

/// Selects from each `(set, algorithm)` rule in turn: the first destination
/// found is used as `mode` says; all of them (at most `limit`) go into the
/// failover XAVPs. 1, or -1 when nothing could be selected.
pub(super) fn run_selection(
    ctx: &mut MsgCtx<'_>,
    rules: &[(i32, Alg)],
    limit: usize,
    mode: Mode,
) -> i32 {
    let Some(d) = ds(ctx) else { return -1 };
    if mode == Mode::Dst && !d.params.force_dst && ctx.dst_uri.is_some() {
        return -1;
    }
    let lists = d.lists();
    let mut picked: Vec<(&DestSet, usize)> = Vec::new();
    let mut parallel = false;
    for (k, &(set_id, alg)) in rules.iter().enumerate() {
        let Some(set) = lists.set(set_id) else {
            log::debug!("dispatcher: no destination set {set_id}");
            continue;
        };
        let Some(first) = pick(ctx, d, set, alg) else {
            continue;
        };
        let mut order = select::order(set, first, d.params.use_default);
        if rules.len() == 1 && order.len() > limit {
            // The default destination keeps its place at the end of a limited list.
            let default = set.dests.len() - 1;
            let keep_default = d.params.use_default && limit > 1 && order.contains(&default);
            order.truncate(limit);
            if keep_default && !order.contains(&default) {
                order[limit - 1] = default;
            }
        }
        if k == 0 && alg == Alg::Parallel {
            parallel = true;
        }
        picked.extend(order.into_iter().map(|i| (set, i)));
    }
    picked.truncate(limit);
    let Some(&(set, first)) = picked.first() else {
        return -1;
    };
    let chosen = &set.dests[first];
    if !apply(ctx, &chosen.uri, chosen.attrs.socket.as_deref(), mode) {
        return -1;
    }
    if parallel && mode != Mode::Xavp {
        // Every other destination becomes a branch of its own.
        let ruri = Bytes::copy_from_slice(ctx.ruri());
        for &(s, i) in &picked[1..] {
            let dest = &s.dests[i];
            let (uri, dst_uri) = match mode {
                Mode::Domain => match domain_uri(&ruri, &dest.uri) {
                    Some(u) => (u, None),
                    None => continue,
                },
                _ => (ruri.clone(), Some(dest.uri.clone())),
            };
            ctx.branches.push(Branch {
                uri,
                q: -1,
                dst_uri,
                ..Branch::default()
            });
        }
    }
    // The chosen one, and with failover the rest; parallel forking keeps
    // none (Kamailio 5.6 returns before filling them). The records of an
    // earlier selection stay after these, and so does its `_dsctx_`.
    let keep = if parallel || d.params.flags & FLAG_FAILOVER == 0 {
        0
    } else {
        picked.len()
    };
    let name = d.params.xavp_dst.clone();
    for &(s, i) in picked[..keep].iter().rev() {
        ctx.attrs.xavp_push(record(&name, s.id, &s.dests[i]));
    }
    let cname = d.params.xavp_ctx.clone();
    ctx.attrs.xavp_push(Xavp {
        name: cname,
        value: XavpValue::List(vec![Xavp::value(
            Bytes::from_static(b"cnt"),
            Value::Int(keep as i64),
        )]),
    });
    1
}

/// `ds_select_routes` rules: `set=alg;set=alg...`.
pub(super) fn parse_rules(text: &[u8]) -> Result<Vec<(i32, Alg)>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "rules are not text".to_string())?;
    let mut rules = Vec::new();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || format!("rule \"{item}\" is not set=algorithm");
        let (set, alg) = item.split_once('=').ok_or_else(bad)?;
        let set = set.trim().parse::<i32>().map_err(|_| bad())?;
        let alg = alg.trim().parse::<i64>().map_err(|_| bad())?;
        rules.push((set, Alg::from_number(alg)?));
    }
    if rules.is_empty() {
        return Err("no rules".into());
    }
    Ok(rules)
}

pub(super) fn parse_mode(text: &[u8]) -> Option<Mode> {
    match text {
        b"d" | b"D" => Some(Mode::Dst),
        b"r" | b"R" => Some(Mode::Domain),
        b"x" | b"X" => Some(Mode::Xavp),
        _ => None,
    }
}

/// Rules and mode parsed once when they are constants.
pub(super) fn fixup_routes(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(Arg::Str(s)) = args.get(0) {
        let rules = parse_rules(s)?;
        args.0[0] = Arg::Custom(Box::new(rules));
    }
    if let Some(Arg::Str(s)) = args.get(1) {
        let mode = parse_mode(s)
            .ok_or_else(|| format!("mode \"{}\" is not d, r or x", String::from_utf8_lossy(s)))?;
        args.0[1] = Arg::Custom(Box::new(mode));
    }
    if args.len() > 2 {
        crate::script::registry::fixup_int(args, 2)?;
    }
    Ok(())
}

/// `ds_select_routes(rules, mode[, limit])`: selection over several sets.
pub(super) fn ds_select_routes(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let rules = match args.custom::<Vec<(i32, Alg)>>(0) {
        Some(r) => r.clone(),
        None => match parse_rules(&args.str(ctx, 0)) {
            Ok(r) => r,
            Err(e) => {
                log::error!("ds_select_routes: {e}");
                return -1;
            }
        },
    };
    let mode = match args.custom::<Mode>(1) {
        Some(m) => *m,
        None => match parse_mode(&args.str(ctx, 1)) {
            Some(m) => m,
            None => return -1,
        },
    };
    let limit = if args.len() > 2 {
        limit_arg(ctx, args, 2)
    } else {
        usize::MAX
    };
    run_selection(ctx, &rules, limit, mode)
}

/// `ruri` pointed at `dest` as Kamailio 5.6 does it: everything after the
/// user part (host, port, parameters, headers) becomes the destination's
/// text after its `sip:`.
pub(super) fn domain_uri(ruri: &[u8], dest: &[u8]) -> Option<Bytes> {
    crate::sip::uri::Uri::parse(dest).ok()?;
    let r = crate::sip::uri::Uri::parse(ruri).ok()?;
    let (start, _) = host_port_range(&r)?;
    let rest = match dest.get(..4) {
        Some(p) if p.eq_ignore_ascii_case(b"sip:") => &dest[4..],
        _ => dest,
    };
    let mut out = Vec::with_capacity(start + rest.len());
    out.extend_from_slice(&r.raw()[..start]);
    out.extend_from_slice(rest);
    Some(Bytes::from(out))
}

/// Where `host[:port]` is in a parsed URI's text.
pub(super) fn host_port_range(u: &crate::sip::uri::Uri<'_>) -> Option<(usize, usize)> {
    let raw = u.raw();
    let host = u.host_raw();
    let start = (host.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
    let mut end = start + host.len();
    if raw.get(end) == Some(&b':') {
        end += 1;
        while raw.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    Some((start, end))
}

pub(super) fn ds_select_dst(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    select_with(ctx, args, Mode::Dst)
}

pub(super) fn ds_select_domain(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    select_with(ctx, args, Mode::Domain)
}

pub(super) fn ds_select(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    select_with(ctx, args, Mode::Xavp)
}

/// The set and URI of the current `_dsdst_` record.
pub(super) fn current(ctx: &MsgCtx<'_>, d: &Dispatcher) -> Option<(i32, Bytes, Option<String>)> {
    let x = ctx.attrs.xavp(&d.params.xavp_dst, 0)?;
    let grp = match x.field(b"grp", 0)?.value {
        XavpValue::Value(ref v) => i32::try_from(v.to_int()).ok()?,
        XavpValue::List(_) => return None,
    };
    let uri = match x.field(b"uri", 0)?.value {
        XavpValue::Value(Value::Str(ref s)) => Bytes::copy_from_slice(s),
        _ => return None,
    };
    let sock = match x.field(b"sock", 0).map(|f| &f.value) {
        Some(XavpValue::Value(Value::Str(s))) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    };
    Some((grp, uri, sock))
}

/// `ds_next_dst` / `ds_next_domain` (`next`) and `ds_set_dst` / `ds_set_domain`.
pub(super) fn use_record(ctx: &mut MsgCtx<'_>, mode: Mode, next: bool) -> i32 {
    let Some(d) = ds(ctx) else { return -1 };
    if d.params.flags & FLAG_FAILOVER == 0 {
        log::debug!("dispatcher: failover needs flags bit 2");
        return -1;
    }
    let name = d.params.xavp_dst.clone();
    if next {
        ctx.attrs.xavp_remove(&name, Some(0));
    }
    // The next record is used as it is, even when its destination went
    // down since the selection (Kamailio 5.6 does not look).
    let Some((_, uri, sock)) = current(ctx, d) else {
        return -1;
    };
    if apply(ctx, &uri, sock.as_deref(), mode) {
        1
    } else {
        -1
    }
}

pub(super) fn ds_next_dst(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    use_record(ctx, Mode::Dst, true)
}

pub(super) fn ds_next_domain(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    use_record(ctx, Mode::Domain, true)
}

pub(super) fn ds_set_dst(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    use_record(ctx, Mode::Dst, false)
}

pub(super) fn ds_set_domain(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    use_record(ctx, Mode::Domain, false)
}

/// A state argument: `a` active, `i` inactive, `t` trying, `d` disabled, plus `p` probing.
pub fn parse_state(text: &[u8]) -> Option<u32> {
    let mut state = None;
    let mut probing = false;
    for &c in text {
        match c.to_ascii_lowercase() {
            b'a' => state = Some(0),
            b'i' => state = Some(INACTIVE),
            b't' => state = Some(TRYING),
            b'd' => state = Some(DISABLED),
            b'p' => probing = true,
            b' ' | b'\t' => {}
            _ => return None,
        }
    }
    // "p" alone is a destination being probed (trying, Kamailio's reading).
    let state = match (state, probing) {
        (None, true) => TRYING,
        (None, false) => return None,
        (Some(s), _) => s,
    };
    Some(state | if probing { PROBING } else { 0 })
}

pub(super) fn fixup_state(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(Arg::Str(s)) = args.get(0) {
        let state = parse_state(s).ok_or_else(|| {
            format!(
                "state \"{}\" is not one of a, i, t, d with an optional p",
                String::from_utf8_lossy(s)
            )
        })?;
        args.0[0] = Arg::Custom(Box::new(state));
    }
    Ok(())
}

/// `ds_mark_dst([state])`: sets the state of the destination last selected
/// (the current `_dsdst_` record); inactive by default. As in Kamailio 5.6 it
/// needs `flags` bit 2 and a record: `$du` alone names nothing.
pub(super) fn ds_mark_dst(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = ds(ctx) else { return -1 };
    if d.params.flags & FLAG_FAILOVER == 0 {
        log::warn!("dispatcher: ds_mark_dst needs failover (flags bit 2)");
        return -1;
    }
    let state = match args.get(0) {
        // Kamailio: inactive, and probing when every destination is probed (mode 1).
        None if d.params.probing_mode == 1 => INACTIVE | PROBING,
        None => INACTIVE,
        Some(Arg::Custom(_)) => args.custom::<u32>(0).copied().unwrap_or(INACTIVE),
        Some(_) => match parse_state(&args.str(ctx, 0)) {
            Some(s) => s,
            None => return -1,
        },
    };
    let Some((grp, uri, _)) = current(ctx, d) else {
        return -1;
    };
    if d.set_state(grp, Some(&uri), state) {
        1
    } else {
        -1
    }
}

/// `ds_is_from_list([group[, mode[, uri]]])`: whether the source address (or
/// `uri`) is a destination of `group` (-1: any, walked in the sets' tree
/// order). Mode bits: 1 ignore the port, 2 ignore the transport, 4 only
/// active destinations; without a mode the transport is ignored. As in
/// Kamailio 5.6, a destination's port 0 matches any port, its transport
/// counts only as its URI names one (none never equals a message's), a
/// `uri` without port or transport has them 0 and none. On a match
/// `setid_pvname` gets the set (only when any group was asked for) and
/// `attrs_pvname` the attributes (unless they are empty).
pub(super) fn ds_is_from_list(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = ds(ctx) else { return -1 };
    let group = if args.is_empty() {
        -1
    } else {
        args.int(ctx, 0).unwrap_or(-1)
    };
    let mode = if args.len() >= 2 {
        args.int(ctx, 1).unwrap_or(0)
    } else {
        2
    };
    let (ip, port, proto) = if args.len() >= 3 {
        let text = args.str(ctx, 2).into_owned();
        let Ok(u) = crate::sip::uri::Uri::parse(&text) else {
            return -1;
        };
        let ip = match u.host() {
            Some(crate::sip::host::Host::V4(a)) => std::net::IpAddr::V4(a),
            Some(crate::sip::host::Host::V6(a)) => std::net::IpAddr::V6(a),
            _ => return -1,
        };
        (ip, u.port().unwrap_or(0), u.transport())
    } else {
        (ctx.src.ip(), ctx.src.port(), Some(ctx.proto))
    };
    let lists = d.lists();
    for s in lists
        .sets
        .iter()
        .filter(|s| group == -1 || i64::from(s.id) == group)
    {
        for x in &s.dests {
            if x.ip != Some(ip) {
                continue;
            }
            if mode & 1 == 0 && x.port != 0 && x.port != port {
                continue;
            }
            if mode & 2 == 0 && x.uri_transport != proto {
                continue;
            }
            if mode & 4 != 0 && x.skipped() {
                continue;
            }
            let (id, attrs) = (s.id, x.attrs.body.clone());
            if group == -1 {
                write_param_pv(ctx, "setid_pvname", Value::Int(i64::from(id)));
            }
            if !attrs.is_empty() {
                write_param_pv(ctx, "attrs_pvname", Value::owned(attrs.into_bytes()));
            }
            return 1;
        }
    }
    -1
}

/// Writes `value` to the variable a `*_pvname` parameter names, if set.
pub(super) fn write_param_pv(ctx: &mut MsgCtx<'_>, param: &str, value: Value<'_>) {
    let Some(f) = ctx.program.param_format("dispatcher", param) else {
        return;
    };
    let pv = match f.parts.as_slice() {
        [crate::script::ir::FormatPart::Pv(pv)] => pv.clone(),
        _ => {
            log::error!("dispatcher: {param} must name one variable");
            return;
        }
    };
    if let Err(e) = ctx.write_pv(&pv, value) {
        log::error!("dispatcher: {param}: {e}");
    }
}

/// `ds_list_exists(group)`: 1 if the set exists.
pub(super) fn ds_list_exists(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = ds(ctx) else { return -1 };
    let Some(g) = args.int(ctx, 0).and_then(|g| i32::try_from(g).ok()) else {
        return -1;
    };
    if d.lists().set(g).is_some() {
        1
    } else {
        -1
    }
}

/// `ds_is_active(group[, uri])`: 1 if a destination of the set (or `uri` in it) is active.
pub(super) fn ds_is_active(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = ds(ctx) else { return -1 };
    let Some(g) = args.int(ctx, 0).and_then(|g| i32::try_from(g).ok()) else {
        return -1;
    };
    let uri = (args.len() > 1).then(|| args.str(ctx, 1).into_owned());
    let lists = d.lists();
    let Some(s) = lists.set(g) else { return -1 };
    let hit = s
        .dests
        .iter()
        .filter(|x| uri.as_deref().is_none_or(|u| uri_eq(&x.uri, u)))
        .any(|x| !x.skipped());
    if hit {
        1
    } else {
        -1
    }
}

/// `ds_reload()`: 1 reloaded, -1 failed (the old sets stay).
pub(super) fn ds_reload(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let Some(d) = ds(ctx) else { return -1 };
    match d.reload() {
        Ok(_) => 1,
        Err(e) => {
            log::error!("{e}");
            -1
        }
    }
}

/// Set and algorithm: numbers when constant; an algorithm ringsip cannot run is
/// refused here, at start-up; algorithm 7 needs `hash_pvar`.
pub(super) fn fixup_select(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    crate::script::registry::fixup_int(args, 0)?;
    crate::script::registry::fixup_int(args, 1)?;
    if args.len() > 2 {
        crate::script::registry::fixup_int(args, 2)?;
    }
    if let Some(Arg::Int(n)) = args.get(1) {
        let alg = Alg::from_number(*n)?;
        if alg == Alg::Pvar && mp.str("dispatcher", "hash_pvar").is_none() {
            return Err("algorithm 7 needs modparam(\"dispatcher\", \"hash_pvar\", ...)".into());
        }
        while args.len() < 3 {
            args.0.push(Arg::Custom(Box::new(())));
        }
        args.0.push(Arg::Custom(Box::new(alg)));
    }
    Ok(())
}

pub(super) fn fixup_ints(args: &mut Args, _: &ModParams) -> Result<(), String> {
    for i in 0..args.len().min(2) {
        crate::script::registry::fixup_int(args, i)?;
    }
    Ok(())
}
