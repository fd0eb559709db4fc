//! Serial forking by q value: `t_load_contacts([mode])` and
//! `t_next_contacts()` (Kamailio tm, 5.6 semantics).
//!
//! ```text
//!  destination set (R-URI if new + branches)
//!     │ t_load_contacts(): sort by q, clear the branches
//!     ▼
//!  $xavp(<contacts_avp>) stack, highest q on top, each entry with
//!     uri, dst_uri, path, sock, flags, q_flag (set on the last of a q group)
//!     │ t_next_contacts(): pop one q group
//!     ▼
//!  R-URI = first of the group, the rest appended as branches → t_relay()
//! ```
//!
//! In mode 0 contacts of equal q form one parallel group; mode 1 orders the
//! contacts with q > 0 by a weighted draw (q is the weight), one contact a
//! step, then those with q <= 0 (or none), one a step.

use bytes::Bytes;

use super::fork;
use crate::modules::core::send::SocketSpec;
use crate::script::attrs::Xavp;
use crate::script::ctx::{fmt_hostport, Branch, MsgCtx};
use crate::script::registry::{Arg, Args, ModParams};
use crate::script::value::Value;
use crate::sip::SocketId;

/// The flag Kamailio stores in `q_flag` on the last contact of a q group.
const Q_FLAG: i64 = 4;

/// The name of the contacts XAVP (`modparam("tm", "contacts_avp", …)`),
/// resolved at start-up; `None` when unset (the functions then fail).
struct ContactsAvp(Option<Bytes>);

/// Kamailio refuses to start with `contacts_avp` set and `contact_flows_avp`
/// not (the flows of equal `+sip.instance` contacts go there).
fn contacts_avp(params: &ModParams) -> Result<ContactsAvp, String> {
    let set = |p: &str| {
        params
            .str("tm", p)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| Bytes::copy_from_slice(n.as_bytes()))
    };
    let name = set("contacts_avp");
    if name.is_some() && set("contact_flows_avp").is_none() {
        return Err(
            "modparam(\"tm\", \"contacts_avp\") needs modparam(\"tm\", \"contact_flows_avp\") too"
                .into(),
        );
    }
    Ok(ContactsAvp(name))
}

/// `t_load_contacts([mode])`: args become `[mode, contacts XAVP name]`.
pub(super) fn fixup_load(args: &mut Args, params: &ModParams) -> Result<(), String> {
    match args.get(0) {
        None => args.0.push(Arg::Int(0)),
        Some(Arg::Int(m)) if *m != 0 && *m != 1 => {
            return Err(format!(
                "mode {m} is neither 0 (standard) nor 1 (proportional)"
            ))
        }
        _ => {}
    }
    args.0.push(Arg::Custom(Box::new(contacts_avp(params)?)));
    Ok(())
}

/// `t_next_contacts()`: args become `[contacts XAVP name]`.
pub(super) fn fixup_next(args: &mut Args, params: &ModParams) -> Result<(), String> {
    args.0.push(Arg::Custom(Box::new(contacts_avp(params)?)));
    Ok(())
}

fn name_arg(args: &Args, i: usize, func: &str) -> Option<Bytes> {
    let name = args.custom::<ContactsAvp>(i).and_then(|c| c.0.clone());
    if name.is_none() {
        log::error!("{func}: disabled; set modparam(\"tm\", \"contacts_avp\", NAME) to use it");
    }
    name
}

/// One destination-set entry on its way into the XAVP.
struct Contact {
    uri: Bytes,
    q: i32,
    dst_uri: Option<Bytes>,
    path: Option<Bytes>,
    sock: Option<Bytes>,
    flags: u32,
    last_of_group: bool,
}

impl Contact {
    fn of_branch(b: &Branch) -> Contact {
        Contact {
            uri: b.uri.clone(),
            q: b.q,
            dst_uri: b.dst_uri.clone(),
            path: b.path.clone(),
            sock: b.socket.clone(),
            flags: b.flags,
            last_of_group: false,
        }
    }

    fn of_ruri(ctx: &MsgCtx<'_>) -> Contact {
        let sock = ctx
            .force_socket
            .and_then(|id| ctx.env.sockets.get(usize::from(id)))
            .map(|s| {
                let text = format!("{}:{}", s.proto.lower_name(), fmt_hostport(s.addr));
                Bytes::from(text.into_bytes())
            });
        Contact {
            uri: Bytes::copy_from_slice(ctx.ruri()),
            q: ctx.state.ruri_q.unwrap_or(-1),
            dst_uri: ctx.dst_uri.clone(),
            path: ctx.path_vec.clone(),
            sock,
            flags: ctx.state.bflags,
            last_of_group: false,
        }
    }

    fn has_path(&self) -> bool {
        self.path.as_ref().is_some_and(|p| !p.is_empty())
    }

    fn into_xavp(self, name: &Bytes) -> Xavp {
        let mut x = Xavp::value(name.clone(), Value::Null);
        let mut field = |n: &'static [u8], v: Value<'static>| {
            x.push_field(Xavp::value(Bytes::from_static(n), v));
        };
        field(b"uri", Value::owned(self.uri.to_vec()));
        for (n, v) in [
            (&b"dst_uri"[..], self.dst_uri),
            (b"path", self.path),
            (b"sock", self.sock),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                field(n, Value::owned(v.to_vec()));
            }
        }
        field(b"flags", Value::Int(i64::from(self.flags)));
        field(
            b"q_flag",
            Value::Int(if self.last_of_group { Q_FLAG } else { 0 }),
        );
        x
    }
}

/// Mode 0: ascending by q as Kamailio inserts them (an entry without a Path
/// goes after the equal ones already placed, one with a Path before them),
/// returned highest first, each q group's last entry marked.
fn order_standard(contacts: Vec<Contact>) -> Vec<Contact> {
    let mut asc: Vec<Contact> = Vec::with_capacity(contacts.len());
    for c in contacts {
        let at = asc
            .iter()
            .position(|cur| !(cur.q < c.q || (cur.q == c.q && !c.has_path())))
            .unwrap_or(asc.len());
        asc.insert(at, c);
    }
    asc.reverse();
    let n = asc.len();
    for i in 0..n.saturating_sub(1) {
        asc[i].last_of_group = asc[i + 1].q < asc[i].q;
    }
    asc
}

/// Mode 1: a weighted draw without replacement among the contacts with
/// q > 0, then those with q <= 0 in order; every contact its own step.
/// `seed` drives the draw (the script layer has no entropy source; the
/// Call-ID varies it per call).
fn order_proportional(contacts: Vec<Contact>, mut seed: u64) -> Vec<Contact> {
    let (mut pool, backup): (Vec<Contact>, Vec<Contact>) =
        contacts.into_iter().partition(|c| c.q > 0);
    let mut out = Vec::with_capacity(pool.len() + backup.len());
    let mut total: u64 = pool.iter().map(|c| c.q as u64).sum();
    while !pool.is_empty() && total > 0 {
        // xorshift64*
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let r = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % total;
        let mut acc = 0u64;
        let pick = pool
            .iter()
            .position(|c| {
                acc += c.q as u64;
                acc > r
            })
            .unwrap_or(0);
        let c = pool.remove(pick);
        total -= c.q as u64;
        out.push(c);
    }
    out.extend(backup);
    for c in &mut out {
        c.last_of_group = true;
    }
    out
}

fn seed_of(ctx: &MsgCtx<'_>) -> u64 {
    // FNV-1a of the Call-ID: a different order per call, the same for one call.
    let id = ctx
        .msg
        .header_value(crate::sip::HeaderName::CallId)
        .unwrap_or(b"");
    id.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    }) | 1
}

/// `t_load_contacts([mode])`: moves the destination set into the contacts
/// XAVP, best first. 1 done (or nothing to do: a single target), -1 error.
pub(super) fn t_load_contacts(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(name) = name_arg(args, 1, "t_load_contacts") else {
        return -1;
    };
    let mode = args.int(ctx, 0).unwrap_or(-1);
    if mode != 0 && mode != 1 {
        log::error!("t_load_contacts: mode {mode} is neither 0 nor 1");
        return -1;
    }
    let tid = ctx.t.tid;
    let ruri_new = fork::ruri_is_new(ctx, tid);
    if ctx.branches.is_empty() || (ctx.branches.len() == 1 && !ruri_new) {
        return 1;
    }
    let mut contacts = Vec::with_capacity(ctx.branches.len() + 1);
    if ruri_new {
        contacts.push(Contact::of_ruri(ctx));
    }
    contacts.extend(ctx.branches.iter().map(Contact::of_branch));
    let ordered = if mode == 1 {
        order_proportional(contacts, seed_of(ctx))
    } else {
        order_standard(contacts)
    };
    // Pushed lowest first: the best ends on top (index 0).
    for c in ordered.into_iter().rev() {
        ctx.attrs.xavp_push(c.into_xavp(&name));
    }
    ctx.branches.clear();
    1
}

/// A contacts XAVP entry read back.
struct Entry {
    uri: Bytes,
    dst_uri: Option<Bytes>,
    path: Option<Bytes>,
    sock: Option<Bytes>,
    flags: u32,
    last_of_group: bool,
}

fn read_entry(x: &Xavp) -> Option<Entry> {
    let text = |n: &[u8]| match x.field(n, 0).map(Xavp::script_value) {
        Some(Value::Str(s)) if !s.is_empty() => Some(Bytes::copy_from_slice(&s)),
        _ => None,
    };
    let int = |n: &[u8]| x.field(n, 0).map_or(0, |f| f.script_value().to_int());
    Some(Entry {
        uri: text(b"uri")?,
        dst_uri: text(b"dst_uri"),
        path: text(b"path"),
        sock: text(b"sock"),
        flags: u32::try_from(int(b"flags")).unwrap_or(0),
        last_of_group: int(b"q_flag") != 0,
    })
}

/// The socket a `sock` field names, when it is one of ours.
fn socket_of(ctx: &MsgCtx<'_>, sock: &[u8]) -> Option<SocketId> {
    std::str::from_utf8(sock)
        .ok()
        .and_then(SocketSpec::parse)
        .and_then(|s| s.find(ctx))
}

/// Takes the top entry of the contacts XAVP.
fn pop(ctx: &mut MsgCtx<'_>, name: &[u8]) -> Option<Option<Entry>> {
    let entry = ctx.attrs.xavp(name, 0).map(read_entry)?;
    ctx.attrs.xavp_remove(name, Some(0));
    Some(entry)
}

/// `t_next_contacts()`: the best remaining q group becomes the destination
/// set (R-URI = its first contact, the others branches). 1 done, -2 no
/// contact left, -1 error.
pub(super) fn t_next_contacts(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(name) = name_arg(args, 0, "t_next_contacts") else {
        return -1;
    };
    let Some(first) = pop(ctx, &name) else {
        return -2;
    };
    let Some(first) = first else {
        log::error!("t_next_contacts: a contact without uri");
        return -1;
    };
    let socket = match &first.sock {
        Some(s) => match socket_of(ctx, s) {
            Some(id) => Some(id),
            None => {
                log::error!(
                    "t_next_contacts: socket {:?} is not one of ours",
                    String::from_utf8_lossy(s)
                );
                return -1;
            }
        },
        None => None,
    };
    ctx.new_uri = Some(first.uri);
    ctx.dst_uri = first.dst_uri;
    ctx.path_vec = first.path;
    ctx.force_socket = socket;
    ctx.state.bflags = first.flags;
    let mut last = first.last_of_group;
    while !last {
        let Some(next) = pop(ctx, &name) else { break };
        let Some(next) = next else {
            log::error!("t_next_contacts: a contact without uri");
            return -1;
        };
        if let Some(s) = &next.sock {
            if socket_of(ctx, s).is_none() {
                log::error!(
                    "t_next_contacts: socket {:?} is not one of ours",
                    String::from_utf8_lossy(s)
                );
                return -1;
            }
        }
        last = next.last_of_group;
        ctx.branches.push(Branch {
            uri: next.uri,
            q: -1,
            dst_uri: next.dst_uri,
            path: next.path,
            flags: next.flags,
            socket: next.sock,
        });
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(uri: &'static str, q: i32, path: bool) -> Contact {
        Contact {
            uri: Bytes::from_static(uri.as_bytes()),
            q,
            dst_uri: None,
            path: path.then(|| Bytes::from_static(b"<sip:p;lr>")),
            sock: None,
            flags: 0,
            last_of_group: false,
        }
    }

    fn view(v: &[Contact]) -> Vec<(&[u8], bool)> {
        v.iter().map(|c| (&c.uri[..], c.last_of_group)).collect()
    }

    #[test]
    fn standard_order_is_q_descending_with_group_ends_marked() {
        let got = order_standard(vec![
            c("a", 500, false),
            c("b", 1000, false),
            c("c", 500, false),
        ]);
        // Equal q without Path: the later one first (Kamailio's insertion order).
        assert_eq!(
            view(&got),
            vec![(&b"b"[..], true), (b"c", false), (b"a", false)]
        );
    }

    #[test]
    fn standard_order_puts_an_equal_q_contact_with_path_after_the_others() {
        let got = order_standard(vec![c("a", 700, false), c("b", 700, true)]);
        assert_eq!(view(&got), vec![(&b"a"[..], false), (b"b", false)]);
    }

    #[test]
    fn unspecified_q_sorts_below_zero() {
        let got = order_standard(vec![c("a", -1, false), c("b", 0, false)]);
        assert_eq!(view(&got), vec![(&b"b"[..], true), (b"a", false)]);
    }

    #[test]
    fn proportional_order_draws_weighted_and_keeps_zero_q_for_last() {
        let mut first_b = 0;
        for seed in 1..200u64 {
            let got = order_proportional(
                vec![c("z", 0, false), c("a", 100, false), c("b", 900, false)],
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            );
            assert_eq!(got.len(), 3);
            assert_eq!(&got[2].uri[..], b"z", "q=0 is the last resort");
            assert!(got.iter().all(|c| c.last_of_group), "one contact a step");
            first_b += usize::from(&got[0].uri[..] == b"b");
        }
        assert!(
            first_b > 140,
            "q 0.9 is tried first most of the time: {first_b}/199"
        );
    }
}
