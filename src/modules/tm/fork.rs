//! Branch formation (KAMAILIO-REFERENCE §3.3): `t_relay()` forks the request
//! to its destination set, the Request-URI (when it is "new") followed by
//! the extra branches of `ctx.branches` (`append_branch()`, registrar
//! `lookup()` with several contacts), one client transaction each.
//!
//! ```text
//!  t_relay() ─▶ R-URI new? ──yes──▶ branch 0: $ru, $du, $bf, forced socket
//!                  │                    (branch_route runs with them loaded)
//!                  └──────────────▶ branch n: each destination-set entry with its
//!                                   own URI, $du, path (Route), q, flags, socket
//!              then the set is emptied and the R-URI marked consumed.
//! ```
//!
//! The R-URI is "new" on the first relay of a request and after `$ru` or
//! `$du` was written (any R-URI setter, `lookup`, `loose_route`…). In a
//! failure route it starts consumed (restored to its relay-time value), so
//! `t_relay()` there sends only the newly appended branches unless the script
//! rewrote `$ru`/`$du`. "Written" is told by identity: every setter stores a
//! new buffer, so the values the relay consumed are compared by address.

use bytes::Bytes;

use super::{table, TxData};
use crate::modules::core::forward::{self, Hop};
use crate::modules::core::send::SocketSpec;
use crate::script::ctx::{Branch, MsgCtx};
use crate::script::registry::RouteType;
use crate::script::vm::{self, Outcome};
use crate::sip::{Edits, Proto, SocketId};
use crate::tm::{Target, Tid};

/// The identity of the R-URI and `$du` values a relay consumed (buffer
/// address and length; `None` for the received R-URI / no `$du`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UriMark {
    ruri: Option<(usize, usize)>,
    du: Option<(usize, usize)>,
}

impl UriMark {
    /// The mark of these R-URI and `$du` values.
    pub fn of(ruri: &Option<Bytes>, du: &Option<Bytes>) -> UriMark {
        let id = |b: &Option<Bytes>| b.as_ref().map(|b| (b.as_ptr() as usize, b.len()));
        UriMark {
            ruri: id(ruri),
            du: id(du),
        }
    }

    /// The mark of what the failure route starts from (the relay-time values).
    pub(super) fn of_tx(data: &TxData) -> UriMark {
        UriMark::of(&data.ruri, &data.dst_uri)
    }
}

/// Where every branch of one `t_relay` call goes, when the call names it
/// (`t_relay(host, port)`, `t_relay_to_udp`…); else each branch's next hop.
#[derive(Clone, Copy)]
pub(super) struct Forced<'a> {
    pub host: Option<&'a [u8]>,
    pub port: Option<u16>,
    pub proto: Option<Proto>,
}

/// Whether the R-URI has not been relayed yet in its current form (`tid`:
/// the request's transaction, when it has one).
pub(super) fn ruri_is_new(ctx: &mut MsgCtx<'_>, tid: Option<Tid>) -> bool {
    let now = UriMark::of(&ctx.new_uri, &ctx.dst_uri);
    match (ctx.t.consumed, tid) {
        (Some(m), _) => m != now,
        (None, Some(tid)) if ctx.route_type == RouteType::Failure => table(ctx)
            .user(tid)
            .is_none_or(|d| UriMark::of_tx(d) != now),
        (None, _) => true,
    }
}

/// What one branch attempt gave.
enum Made {
    Added,
    /// `drop` in branch_route: not sent, not an error.
    Dropped,
}

/// Forks the request to its destination set (see the module documentation).
/// Returns 1 when a branch was created, else the last branch error (-1 when
/// there was nothing to send; -6, Kamailio's E_CFG, when branch_route
/// dropped every branch).
/// `ruri_new` is [`ruri_is_new`], asked before the relay-time state was saved.
pub(super) fn relay_set(ctx: &mut MsgCtx<'_>, tid: Tid, ruri_new: bool, to: Forced<'_>) -> i32 {
    let set = std::mem::take(&mut ctx.branches);
    let mut made = false;
    let mut error = -1;
    let mut note = |r: Result<Made, i32>| match r {
        Ok(Made::Added) => made = true,
        // Kamailio: a branch dropped in branch_route is a configuration
        // error for t_relay when no other branch goes out.
        Ok(Made::Dropped) => error = -6,
        Err(code) => error = code,
    };
    if ruri_new {
        note(branch(ctx, tid, None, to));
    }
    ctx.t.consumed = Some(UriMark::of(&ctx.new_uri, &ctx.dst_uri));
    for dest in &set {
        note(branch(ctx, tid, Some(dest), to));
    }
    if made {
        1
    } else {
        if !ruri_new && set.is_empty() {
            log::warn!("t_relay: no new branch to relay (the R-URI was relayed already)");
        }
        error
    }
}

/// The per-branch part of the context, kept aside while another branch is
/// built (branch_route changes stay with their branch).
struct Saved {
    new_uri: Option<Bytes>,
    dst_uri: Option<Bytes>,
    path_vec: Option<Bytes>,
    bflags: u32,
    force_socket: Option<SocketId>,
    edits: Edits,
    branch_idx: u32,
}

impl Saved {
    fn take(ctx: &MsgCtx<'_>) -> Saved {
        Saved {
            new_uri: ctx.new_uri.clone(),
            dst_uri: ctx.dst_uri.clone(),
            path_vec: ctx.path_vec.clone(),
            bflags: ctx.state.bflags,
            force_socket: ctx.force_socket,
            edits: ctx.edits.clone(),
            branch_idx: ctx.t.branch_idx,
        }
    }

    fn restore(self, ctx: &mut MsgCtx<'_>) {
        ctx.new_uri = self.new_uri;
        ctx.dst_uri = self.dst_uri;
        ctx.path_vec = self.path_vec;
        ctx.state.bflags = self.bflags;
        ctx.force_socket = self.force_socket;
        ctx.edits = self.edits;
        ctx.t.branch_idx = self.branch_idx;
    }
}

/// Loads a destination-set entry as the request's target.
fn load(ctx: &mut MsgCtx<'_>, dest: &Branch) {
    ctx.new_uri = Some(dest.uri.clone());
    ctx.dst_uri = dest.dst_uri.clone();
    ctx.state.bflags = dest.flags;
    if let Some(sock) = &dest.socket {
        let found = std::str::from_utf8(sock)
            .ok()
            .and_then(SocketSpec::parse)
            .and_then(|s| s.find(ctx));
        match found {
            Some(id) => ctx.force_socket = Some(id),
            None => log::debug!(
                "branch socket {:?} is not one of ours; using the default",
                String::from_utf8_lossy(sock)
            ),
        }
    }
    // Its Path (if any) replaces the Request-URI's: each branch has its own.
    ctx.path_vec = dest.path.clone();
}

/// One branch: loads `dest` (or keeps the R-URI), runs branch_route, sends.
fn branch(
    ctx: &mut MsgCtx<'_>,
    tid: Tid,
    dest: Option<&Branch>,
    to: Forced<'_>,
) -> Result<Made, i32> {
    // The common case (the R-URI, no branch_route) touches nothing to restore.
    let saved = (dest.is_some() || ctx.t.on_branch.is_some()).then(|| Saved::take(ctx));
    if let Some(d) = dest {
        load(ctx, d);
    }
    let r = add_branch(ctx, tid, to);
    if let Some(s) = saved {
        s.restore(ctx);
    }
    r
}

/// Adds one branch toward the request's next hop (or `to`), running the armed
/// branch_route first.
fn add_branch(ctx: &mut MsgCtx<'_>, tid: Tid, to: Forced<'_>) -> Result<Made, i32> {
    let index = table(ctx).branch_count(tid);
    let Ok(index) = u8::try_from(index) else {
        return Err(-1);
    };
    if let Some(route) = ctx.t.on_branch {
        let saved_type = ctx.route_type;
        ctx.route_type = RouteType::Branch;
        ctx.t.branch_idx = u32::from(index);
        let outcome = vm::run_route(ctx, route);
        ctx.route_type = saved_type;
        if outcome == Outcome::Drop {
            log::debug!("branch {index} dropped in branch_route");
            return Ok(Made::Dropped);
        }
    }
    let hop: Hop = forward::resolve_hop_or(ctx, to.host, to.port, to.proto, no_socket)?;
    if !crate::modules::websocket::reachable(ctx, hop.proto, hop.dst) {
        // Kamailio 5.6 (live): the send fails at once; tm answers 477
        // (E_SEND) and t_relay returns -1.
        log::warn!("t_relay: no websocket connection to {}", hop.dst);
        ctx.t.send_failed = true;
        return Err(-477);
    }
    let param = table(ctx).branch_param(tid, index);
    let data = forward::build_request(ctx, &hop, param.as_bytes());
    let target = Target {
        dst: hop.dst,
        proto: hop.proto,
        socket: Some(hop.socket),
        local: hop.local(ctx),
        conn: None,
        flags: ctx.state.forward_flags(),
    };
    let local = target
        .local
        .or_else(|| ctx.env.sockets.get(usize::from(hop.socket)).map(|s| s.addr));
    if !vm::onsend(ctx, target.dst, target.proto, local, &data) {
        log::debug!("branch {index} dropped in onsend_route");
        return Err(-477);
    }
    // use_dns_failover: the other addresses DNS gave, asked only for a
    // next hop DNS named (never for an address literal).
    let failover = (hop.named && !ctx.t.no_dns_failover)
        .then(|| forward::failover_targets(ctx, &hop, to.host, to.port))
        .filter(|rest| !rest.is_empty());
    let (now, bflags) = (ctx.now, ctx.state.bflags);
    let out = &mut *ctx.out;
    let table = ctx.core.tm.as_mut().ok_or(-1)?;
    match table.add_built_branch(tid, target, data, now, out) {
        Ok(added) => {
            // Its flags go with it: its replies' onreply_route reads them.
            if let Some(d) = table.user_mut(tid) {
                d.set_bflags(usize::from(index), bflags);
            }
            if let Some(rest) = failover {
                table.set_dns_failover(tid, added, rest);
            }
            Ok(Made::Added)
        }
        Err(e) => {
            log::warn!("t_relay: cannot add a branch: {e:?}");
            Err(-1)
        }
    }
}

/// tm's code when no listening socket can reach `dst` (checked live with
/// Kamailio 5.6): an IPv6 address with no IPv6 socket does not even
/// resolve (-478, E_BAD_ADDRESS); otherwise the transport has no socket
/// (-7, E_NO_SOCKET, answered `500 ... (7/TM)`).
fn no_socket(ctx: &MsgCtx<'_>, dst: &std::net::SocketAddr) -> i32 {
    if dst.is_ipv6() && !ctx.env.sockets.iter().any(|s| s.addr.is_ipv6()) {
        -478
    } else {
        -7
    }
}
