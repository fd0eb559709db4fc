//! Keep-alive probing (KAMAILIO-REFERENCE §7.9 `ds_ping_*`, `ds_probing_*`)
//! as a sans-IO state machine: every `ds_ping_interval` one core sends an
//! OPTIONS (or `ds_ping_method`) to each destination the probing mode names;
//! a reply is recognised by our branch prefix before the script sees it;
//! a probe with no final reply within `fr_timer` (at most the interval)
//! counts as failed. UDP probes are retransmitted as a non-INVITE client
//! transaction would be (RFC 3261 §17.1.2.2: T1 doubling up to T2).
//!
//! A failed probe marks the destination trying, and inactive after
//! `ds_probing_threshold` failures in a row; `ds_inactive_threshold` good
//! replies in a row make it active again. Whether it stays flagged for
//! probing depends on `ds_probing_mode` (see `probe_result`). Both changes are announced by
//! `event_route[dispatcher:dst-down]` / `[dispatcher:dst-up]`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::list::{Dest, INACTIVE, PROBING, TRYING};
use super::{Dispatcher, DsEvent};
use crate::script::ctx::{fmt_hostport, Env, LocalEvent, LocalRequests, LocalRoute};
use crate::sip::{HeaderName, Message, Proto, Transmit};

/// The start of every keep-alive branch: how a reply is known to be ours.
pub const BRANCH_PREFIX: &[u8] = b"z9hG4bKdsping.";

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// How often the cores look at the probes (retransmissions, timeouts, rounds).
const TICK: Duration = Duration::from_millis(100);
/// How often the cores look for state changes to announce when nothing is probed.
const IDLE_TICK: Duration = Duration::from_millis(250);

/// One keep-alive waiting for its final reply.
#[derive(Debug)]
struct Pending {
    id: u64,
    set: i32,
    uri: Bytes,
    transmit: Transmit,
    next_retransmit: Option<Instant>,
    retransmit_after: Duration,
    deadline: Instant,
}

#[derive(Debug, Default)]
struct ProbeState {
    next_round: Option<Instant>,
    seq: u64,
    pending: Vec<Pending>,
    /// Failures and successes in a row, by set and URI.
    streaks: HashMap<(i32, Bytes), (u32, u32)>,
}

/// The keep-alive state shared by the cores.
#[derive(Debug)]
pub struct Prober {
    /// Mixed into branches and Call-IDs so runs do not collide.
    base: u64,
    state: Mutex<ProbeState>,
}

impl Prober {
    pub fn new(base: u64) -> Prober {
        Prober {
            base,
            state: Mutex::new(ProbeState::default()),
        }
    }

    /// How many probes wait for a reply.
    pub fn pending(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pending
            .len()
    }
}

/// Whether the probing mode pings a destination in state `s`.
fn wanted(mode: u8, s: u32) -> bool {
    if s & super::list::DISABLED != 0 {
        return false;
    }
    match mode {
        1 => true,
        2 => s & INACTIVE != 0 && s & PROBING != 0,
        _ => s & PROBING != 0,
    }
}

/// The keep-alive request to `dest`, from socket `local` (Via sent-by).
#[allow(clippy::too_many_arguments)]
fn build(
    d: &Dispatcher,
    dest: &Dest,
    proto: Proto,
    via_host: &str,
    branch: &str,
    call_id: &str,
) -> Bytes {
    let p = &d.params;
    let from = dest.attrs.ping_from.as_deref().unwrap_or(&p.ping_from);
    let uri = String::from_utf8_lossy(&dest.uri);
    let text = format!(
        "{m} {uri} SIP/2.0\r\nVia: SIP/2.0/{v} {via_host};branch={branch};rport\r\n\
         From: <{from}>;tag={tag}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n\
         CSeq: 10 {m}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        m = p.ping_method,
        v = proto.via_name(),
        tag = &branch[BRANCH_PREFIX.len()..],
    );
    Bytes::from(text)
}

impl Dispatcher {
    /// Timer work at `now`: timeouts, retransmissions, and a new round of probes when due.
    pub fn probe_tick(&self, env: &Env, now: Instant, out: &mut Vec<Transmit>) {
        if self.params.ping_interval.is_zero() {
            return;
        }
        // Another core doing the work this tick is as good as doing it here.
        let Ok(mut st) = self.prober.state.try_lock() else {
            return;
        };
        let st = &mut *st;
        let mut failed = Vec::new();
        st.pending.retain_mut(|p| {
            if p.deadline <= now {
                failed.push((p.set, p.uri.clone()));
                return false;
            }
            if let Some(at) = p.next_retransmit.filter(|at| *at <= now) {
                out.push(p.transmit.clone());
                p.retransmit_after = (p.retransmit_after * 2).min(T2);
                p.next_retransmit = Some(at + p.retransmit_after);
            }
            true
        });
        for (set, uri) in failed {
            log::debug!(
                "dispatcher: no reply from {} to keep-alive",
                String::from_utf8_lossy(&uri)
            );
            self.probe_result(st, set, &uri, false);
        }
        if st.next_round.is_some_and(|at| at > now) {
            return;
        }
        st.next_round = Some(now + self.params.ping_interval);
        let lists = self.lists();
        for set in &lists.sets {
            for dest in &set.dests {
                if !wanted(self.params.probing_mode, dest.state()) {
                    continue;
                }
                if st
                    .pending
                    .iter()
                    .any(|p| p.set == set.id && p.uri == dest.uri)
                {
                    continue;
                }
                let Some(dst) = dest.socket_addr() else {
                    log::debug!(
                        "dispatcher: cannot probe {} (host names are not resolved)",
                        String::from_utf8_lossy(&dest.uri)
                    );
                    continue;
                };
                let proto = dest.proto.unwrap_or(Proto::Udp);
                let Some(socket) = env.socket_for(proto, &dst, None) else {
                    log::warn!("dispatcher: no {proto} socket to probe {dst}");
                    continue;
                };
                st.seq += 1;
                let id = st.seq;
                let info = &env.sockets[usize::from(socket)];
                let via_host = match &info.advertise {
                    Some((h, p)) => format!("{h}:{p}"),
                    None => fmt_hostport(via_addr(env, info.addr, dst)),
                };
                let branch = format!(
                    "{}{:x}.{id:x}",
                    String::from_utf8_lossy(BRANCH_PREFIX),
                    self.prober.base & 0xffff_ffff
                );
                let call_id = format!("dsping.{:x}.{id:x}@{via_host}", self.prober.base);
                let data = build(self, dest, proto, &via_host, &branch, &call_id);
                let transmit = Transmit {
                    data,
                    dst,
                    proto,
                    socket: Some(socket),
                    local: None,
                    conn: None,
                    flags: Default::default(),
                };
                out.push(transmit.clone());
                st.pending.push(Pending {
                    id,
                    set: set.id,
                    uri: dest.uri.clone(),
                    transmit,
                    next_retransmit: (!proto.is_reliable()).then_some(now + T1),
                    retransmit_after: T1,
                    deadline: now + self.params.ping_timeout,
                });
            }
        }
    }

    /// Takes a reply to one of our keep-alives; false when it is not one.
    pub fn probe_reply(&self, msg: &Message) -> bool {
        let Some(code) = msg.status() else {
            return false;
        };
        let Some(id) = our_probe(msg, self.prober.base) else {
            return false;
        };
        let mut st = self.prober.state.lock().unwrap_or_else(|e| e.into_inner());
        // A provisional reply only stops the retransmissions (RFC 3261 §17.1.2.2).
        if code < 200 {
            if let Some(p) = st.pending.iter_mut().find(|p| p.id == id) {
                p.next_retransmit = None;
            }
            return true;
        }
        let Some(at) = st.pending.iter().position(|p| p.id == id) else {
            return true;
        };
        let p = st.pending.swap_remove(at);
        let ok = code == 200 || self.params.ping_reply_codes.contains(&code);
        self.probe_result(&mut st, p.set, &p.uri, ok);
        true
    }

    /// Counts one probe result and changes the destination's state when a threshold is reached.
    fn probe_result(&self, st: &mut ProbeState, set: i32, uri: &Bytes, ok: bool) {
        let lists = self.lists();
        let Some(dest) = lists
            .set(set)
            .and_then(|s| s.dests.iter().find(|d| d.uri == *uri))
        else {
            return;
        };
        let streak = st.streaks.entry((set, uri.clone())).or_insert((0, 0));
        let old = dest.state();
        // Observed with Kamailio 5.6.3: mode 1 shows an answering destination
        // "AP" and a silent one "IP"; mode 0 shows them "AX" and "IX" (a
        // silent one is no longer probed). Mode 3 probes continuously; mode 2
        // keeps probing what is down until it answers.
        let mode = self.params.probing_mode;
        let probing_after = |ok: bool| {
            let keep = match mode {
                1 | 3 => true,
                2 => !ok,
                _ => false,
            };
            if keep {
                PROBING
            } else {
                0
            }
        };
        let new = if ok {
            *streak = (0, streak.1.saturating_add(1));
            if old & (INACTIVE | TRYING) != 0 && streak.1 < self.params.inactive_threshold {
                return;
            }
            probing_after(true)
        } else {
            *streak = (streak.0.saturating_add(1), 0);
            let down = if streak.0 >= self.params.probing_threshold {
                INACTIVE
            } else {
                TRYING
            };
            down | probing_after(false)
        };
        if new != old {
            dest.set_state(new);
            self.note_change(set, uri, old, new);
        }
    }

    /// The event routes for the state changes queued so far, each on a
    /// request like the keep-alive, with `$du` the destination.
    pub fn events_to_run(&self, events: &mut Vec<LocalEvent>) {
        for DsEvent { up, uri, .. } in self.take_events() {
            let text = format!(
                "{m} {u} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch={b}event\r\n\
                 From: <{f}>;tag=dsevent\r\nTo: <{u}>\r\nCall-ID: dsevent.{x:x}\r\n\
                 CSeq: 1 {m}\r\nContent-Length: 0\r\n\r\n",
                m = self.params.ping_method,
                u = String::from_utf8_lossy(&uri),
                b = String::from_utf8_lossy(BRANCH_PREFIX),
                f = self.params.ping_from,
                x = self.prober.base,
            );
            match Message::parse(Bytes::from(text)) {
                Ok(msg) => events.push(LocalEvent {
                    route: LocalRoute::Event(if up {
                        "dispatcher:dst-up"
                    } else {
                        "dispatcher:dst-down"
                    }),
                    msg,
                    dst_uri: Some(uri),
                }),
                Err(e) => log::warn!("dispatcher: cannot make the event message: {e}"),
            }
        }
    }
}

/// The address to name in Via: the socket's, or for a wildcard socket a
/// loopback or the unspecified address of the destination's family.
fn via_addr(env: &Env, sock: SocketAddr, dst: SocketAddr) -> SocketAddr {
    if !sock.ip().is_unspecified() {
        return sock;
    }
    let same = env
        .sockets
        .iter()
        .find(|s| !s.addr.ip().is_unspecified() && s.addr.is_ipv4() == dst.is_ipv4());
    match same {
        Some(s) => SocketAddr::new(s.addr.ip(), sock.port()),
        None if dst.ip().is_loopback() => SocketAddr::new(dst.ip(), sock.port()),
        None => sock,
    }
}

/// The probe id in the top Via branch of a reply, when it is one of ours.
fn our_probe(msg: &Message, base: u64) -> Option<u64> {
    let via = msg.header_value(HeaderName::Via)?;
    let at = memchr::memmem::find(via, BRANCH_PREFIX)?;
    let rest = &via[at + BRANCH_PREFIX.len()..];
    let end = rest
        .iter()
        .position(|b| !(b.is_ascii_hexdigit() || *b == b'.'))
        .unwrap_or(rest.len());
    let text = std::str::from_utf8(&rest[..end]).ok()?;
    let (run, id) = text.split_once('.')?;
    if u64::from_str_radix(run, 16).ok()? != base & 0xffff_ffff {
        return None;
    }
    u64::from_str_radix(id, 16).ok()
}

impl LocalRequests for Dispatcher {
    fn interval(&self) -> Duration {
        // Without keep-alives only state changes (ds_mark_dst, RPC) need announcing.
        if self.params.ping_interval.is_zero() {
            IDLE_TICK
        } else {
            TICK
        }
    }

    fn on_timer(
        &self,
        env: &Env,
        now: Instant,
        out: &mut Vec<Transmit>,
        events: &mut Vec<LocalEvent>,
    ) {
        self.probe_tick(env, now, out);
        self.events_to_run(events);
    }

    fn on_reply(&self, msg: &Message, _now: Instant, events: &mut Vec<LocalEvent>) -> bool {
        let ours = self.probe_reply(msg);
        if ours {
            self.events_to_run(events);
        }
        ours
    }
}
