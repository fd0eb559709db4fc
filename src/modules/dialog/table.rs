//! The dialogs of every core: one table shared by all workers, split into
//! shards by the hash of the Call-ID (Kamailio's `h_entry`), each behind its
//! own lock, so two cores wait for each other only on dialogs of the same
//! shard. Profile membership is counted beside it, so that
//! `get_profile_size()` reads a number instead of walking the dialogs.
//!
//! Sans-IO and clock-free: every method that needs the time takes `now` in
//! unix milliseconds (the message's, or the timer's).
//!
//! Lock order: a shard, then the profile counts; never the other way round.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::DlgParams;

/// Kamailio's dialog states, with their numbers (`$dlg(state)`, `dlg.list`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Created, no answer with a To-tag yet.
    Unconfirmed = 1,
    /// A provisional answer with a To-tag (ringing).
    Early = 2,
    /// A 2xx went upstream, its ACK did not come yet.
    ConfirmedNa = 3,
    /// The ACK of the 2xx came: the call is up.
    Confirmed = 4,
    /// Ended: BYE, a negative final answer, or a timeout.
    Deleted = 5,
}

/// A dialog's handle: Kamailio's hash entry and id (the `did` cookie).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DlgId {
    pub entry: u32,
    pub id: u32,
}

impl DlgId {
    /// The `did` value: entry and id in reverse hexadecimal (least
    /// significant digit first, as Kamailio writes them), joined by a dot.
    pub fn cookie(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(18);
        reverse_hex(self.entry, &mut v);
        v.push(b'.');
        reverse_hex(self.id, &mut v);
        v
    }

    /// Reads a `did` value written by [`DlgId::cookie`].
    pub fn parse_cookie(text: &[u8]) -> Option<DlgId> {
        let dot = text.iter().position(|&b| b == b'.')?;
        Some(DlgId {
            entry: parse_reverse_hex(&text[..dot])?,
            id: parse_reverse_hex(&text[dot + 1..])?,
        })
    }
}

fn reverse_hex(mut n: u32, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    loop {
        out.push(DIGITS[(n & 15) as usize]);
        n >>= 4;
        if n == 0 {
            break;
        }
    }
}

fn parse_reverse_hex(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 8 {
        return None;
    }
    let mut n: u32 = 0;
    for (i, b) in text.iter().enumerate() {
        let d = (*b as char).to_digit(16)?;
        n |= d << (4 * i);
    }
    Some(n)
}

/// Which way an in-dialog request goes: from the caller (downstream) or
/// from the callee (upstream), as `$dlg_ctx(dir)` numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Downstream = 1,
    Upstream = 2,
}

/// What a state change means for the script: the event route to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Unconfirmed or early to confirmed: `event_route[dialog:start]`.
    Started,
    /// A negative final answer or no answer: `event_route[dialog:failed]`.
    Failed,
    /// BYE or timeout of a confirmed dialog: `event_route[dialog:end]`.
    Ended,
}

impl Transition {
    pub fn route(self) -> &'static str {
        match self {
            Transition::Started => "dialog:start",
            Transition::Failed => "dialog:failed",
            Transition::Ended => "dialog:end",
        }
    }
}

/// A `$dlg_var`: name and value.
pub type DlgVar = (Box<[u8]>, Box<[u8]>);

/// One dialog.
#[derive(Clone, Debug)]
pub struct Dialog {
    pub id: DlgId,
    pub state: State,
    pub callid: Box<[u8]>,
    pub from_uri: Box<[u8]>,
    pub from_tag: Box<[u8]>,
    pub to_uri: Box<[u8]>,
    /// The callee's tag, once an answer carried one.
    pub to_tag: Box<[u8]>,
    /// The CSeq number of the initial INVITE: only its answers move the state.
    pub cseq: u32,
    /// Unix seconds at creation and at confirmation (0 before).
    pub init_ts: u64,
    pub start_ts: u64,
    /// Lifetime in seconds once confirmed (`default_timeout`, the
    /// timeout AVP, `dlg_set_timeout`).
    pub timeout: u32,
    /// When the dialog times out or (deleted) leaves the table, unix ms.
    pub deadline: u64,
    /// `dlg_setflag()` flags.
    pub flags: u32,
    /// `$dlg_var(name)` values.
    pub vars: Vec<DlgVar>,
    /// Profiles it is in: (profile index, value).
    pub profiles: Vec<(usize, Option<Box<[u8]>>)>,
    /// `$dlg_ctx(timeout_bye)` when it was created.
    pub timeout_bye: bool,
    /// `$dlg_ctx(timeout_route)`: the `route[NAME]` run when it times out.
    pub timeout_route: Option<Box<[u8]>>,
}

impl Dialog {
    /// Which way a request with these tags goes, if it is of this dialog.
    fn direction(&self, callid: &[u8], ftag: &[u8], ttag: &[u8]) -> Option<Direction> {
        if *self.callid != *callid {
            return None;
        }
        if *self.from_tag == *ftag && (self.to_tag.is_empty() || *self.to_tag == *ttag) {
            Some(Direction::Downstream)
        } else if *self.from_tag == *ttag && *self.to_tag == *ftag {
            Some(Direction::Upstream)
        } else {
            None
        }
    }

    /// Whether it still counts (in profiles, `dlg.stats_active`).
    pub fn is_live(&self) -> bool {
        self.state != State::Deleted
    }
}

/// How long an ended dialog stays in the table, so that retransmissions and
/// the BYE's answer still find it (seconds).
const LINGER_S: u64 = 10;

/// Shards of the table: Kamailio's `hash_size` buckets fold onto these.
const SHARDS: usize = 64;

/// What a profile counts: every member, and members by value.
#[derive(Debug, Default)]
struct ProfileCount {
    total: usize,
    by_value: HashMap<Box<[u8]>, usize>,
}

/// The shared table.
#[derive(Debug)]
pub struct Dialogs {
    pub params: DlgParams,
    shards: Box<[Mutex<HashMap<DlgId, Dialog>>]>,
    counts: Mutex<Vec<ProfileCount>>,
    next_id: AtomicU32,
    /// The last timer run (unix ms): the cores share one interval.
    last_timer: AtomicU64,
    /// Created and ended so far, for statistics.
    pub processed: AtomicU64,
    pub failed: AtomicU64,
    /// Dialogs the shared timer ended, waiting for a core to run their
    /// event route ([`Dialogs::take_timed_out`]).
    timed_out: Mutex<Vec<(Dialog, Transition)>>,
}

/// A lock whose holder panicked is still usable: the data is plain.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// FNV-1a of the Call-ID: which hash entry a dialog lives in.
fn hash(callid: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in callid {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// What an initial INVITE tells about the dialog it opens.
#[derive(Clone, Copy, Debug)]
pub struct Initial<'m> {
    pub callid: &'m [u8],
    pub from_uri: &'m [u8],
    pub from_tag: &'m [u8],
    pub to_uri: &'m [u8],
    pub cseq: u32,
}

impl Dialogs {
    pub fn new(params: DlgParams) -> Dialogs {
        let counts = params.profiles.iter().map(|_| ProfileCount::default());
        Dialogs {
            counts: Mutex::new(counts.collect()),
            params,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            next_id: AtomicU32::new(1),
            last_timer: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            timed_out: Mutex::new(Vec::new()),
        }
    }

    fn entry_of(&self, callid: &[u8]) -> u32 {
        hash(callid) & (self.params.hash_size - 1)
    }

    fn shard(&self, entry: u32) -> MutexGuard<'_, HashMap<DlgId, Dialog>> {
        lock(&self.shards[entry as usize % SHARDS])
    }

    /// Makes the dialog of an initial INVITE, unless one for the same
    /// Call-ID and From-tag is still being set up (a spiral, with
    /// `detect_spirals`): then that one. Returns its id and whether it is new.
    pub fn create(&self, init: &Initial<'_>, timeout: u32, now: u64) -> (DlgId, bool) {
        let entry = self.entry_of(init.callid);
        let mut shard = self.shard(entry);
        if self.params.detect_spirals {
            let spiral = shard.values().find(|d| {
                d.state < State::ConfirmedNa
                    && *d.callid == *init.callid
                    && *d.from_tag == *init.from_tag
                    && d.cseq == init.cseq
            });
            if let Some(d) = spiral {
                return (d.id, false);
            }
        }
        let id = DlgId {
            entry,
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
        };
        let b = |s: &[u8]| s.to_vec().into_boxed_slice();
        shard.insert(
            id,
            Dialog {
                id,
                state: State::Unconfirmed,
                callid: b(init.callid),
                from_uri: b(init.from_uri),
                from_tag: b(init.from_tag),
                to_uri: b(init.to_uri),
                to_tag: Box::default(),
                cseq: init.cseq,
                init_ts: now / 1000,
                start_ts: 0,
                timeout,
                // Not answered: tm gives up long before this (Kamailio's `early_timeout`).
                deadline: now + u64::from(self.params.early_timeout) * 1000,
                flags: 0,
                vars: Vec::new(),
                profiles: Vec::new(),
                timeout_bye: false,
                timeout_route: None,
            },
        );
        self.processed.fetch_add(1, Ordering::Relaxed);
        (id, true)
    }

    /// Drops dialog `id` (and its profile entries) as if it never was: its
    /// INVITE was answered without a transaction, so no answer will move it.
    pub fn discard(&self, id: DlgId) {
        let mut shard = self.shard(id.entry);
        if let Some(mut d) = shard.remove(&id) {
            self.end(&mut d, 0);
        }
    }

    /// Runs `f` on the dialog `id`, if it is in the table.
    pub fn with<R>(&self, id: DlgId, f: impl FnOnce(&mut Dialog) -> R) -> Option<R> {
        self.shard(id.entry).get_mut(&id).map(f)
    }

    /// A copy of dialog `id`.
    pub fn get(&self, id: DlgId) -> Option<Dialog> {
        self.with(id, |d| d.clone())
    }

    /// The dialog named by a `did` cookie, if its Call-ID and tags are the
    /// request's (the cookie only saves the search, it proves nothing).
    pub fn match_cookie(
        &self,
        cookie: &[u8],
        callid: &[u8],
        ftag: &[u8],
        ttag: &[u8],
    ) -> Option<(DlgId, Direction)> {
        let id = DlgId::parse_cookie(cookie)?;
        let shard = self.shard(id.entry);
        let d = shard.get(&id)?;
        Some((id, d.direction(callid, ftag, ttag)?))
    }

    /// The dialog of a request by Call-ID and tags (RFC 3261 §12.2.2).
    /// A live dialog wins over an ended one with the same identifiers.
    pub fn match_tags(
        &self,
        callid: &[u8],
        ftag: &[u8],
        ttag: &[u8],
    ) -> Option<(DlgId, Direction)> {
        let entry = self.entry_of(callid);
        let shard = self.shard(entry);
        let mut found = None;
        for d in shard.values().filter(|d| d.id.entry == entry) {
            if let Some(dir) = d.direction(callid, ftag, ttag) {
                if d.is_live() {
                    return Some((d.id, dir));
                }
                found = Some((d.id, dir));
            }
        }
        found
    }

    /// The dialog an answer to an INVITE belongs to: same Call-ID and
    /// From-tag, CSeq of the initial INVITE.
    pub fn match_answer(&self, callid: &[u8], ftag: &[u8], cseq: u32) -> Option<DlgId> {
        let entry = self.entry_of(callid);
        let shard = self.shard(entry);
        let mut found = None;
        for d in shard.values() {
            if *d.callid == *callid && *d.from_tag == *ftag && d.cseq == cseq {
                if d.is_live() {
                    return Some(d.id);
                }
                found = Some(d.id);
            }
        }
        found
    }

    /// A provisional answer with a To-tag: unconfirmed becomes early.
    pub fn on_provisional(&self, id: DlgId, to_tag: &[u8]) {
        self.with(id, |d| {
            if d.state <= State::Early {
                d.state = State::Early;
                d.to_tag = to_tag.into();
            }
        });
    }

    /// A final answer to the initial INVITE went upstream.
    pub fn on_final(&self, id: DlgId, code: u16, to_tag: &[u8], now: u64) -> Option<Transition> {
        let mut shard = self.shard(id.entry);
        let d = shard.get_mut(&id)?;
        if d.state >= State::ConfirmedNa {
            return None;
        }
        if (200..300).contains(&code) {
            d.state = State::ConfirmedNa;
            if !to_tag.is_empty() {
                d.to_tag = to_tag.into();
            }
            d.start_ts = now / 1000;
            // Until its ACK comes: `noack_timeout`, if shorter.
            d.deadline = now + u64::from(d.timeout.min(self.params.noack_timeout)) * 1000;
            return Some(Transition::Started);
        }
        if code >= 300 {
            self.end(d, now);
            self.failed.fetch_add(1, Ordering::Relaxed);
            return Some(Transition::Failed);
        }
        None
    }

    /// An in-dialog request of dialog `id`: the ACK of the 2xx confirms it,
    /// a BYE ends it, anything else starts its timeout again.
    pub fn on_request(&self, id: DlgId, method: &[u8], now: u64) -> Option<Transition> {
        let mut shard = self.shard(id.entry);
        let d = shard.get_mut(&id)?;
        match (method, d.state) {
            (_, State::Deleted) => None,
            (b"BYE", _) => {
                let was_up = d.state >= State::ConfirmedNa;
                self.end(d, now);
                // A BYE before the 2xx (early dialog) ends a call that never started.
                Some(if was_up {
                    Transition::Ended
                } else {
                    Transition::Failed
                })
            }
            (b"ACK", State::ConfirmedNa) => {
                d.state = State::Confirmed;
                d.deadline = d.start_ts * 1000 + u64::from(d.timeout) * 1000;
                None
            }
            (_, State::ConfirmedNa | State::Confirmed) if !self.params.timeout_noreset => {
                d.deadline = now + u64::from(d.timeout) * 1000;
                None
            }
            _ => None,
        }
    }

    /// Sets the lifetime of dialog `id` (seconds); a confirmed one times out
    /// that long from now.
    pub fn set_timeout(&self, id: DlgId, timeout: u32, now: u64) -> bool {
        self.with(id, |d| {
            d.timeout = timeout;
            if matches!(d.state, State::ConfirmedNa | State::Confirmed) {
                d.deadline = now + u64::from(timeout) * 1000;
            }
        })
        .is_some()
    }

    /// Marks `d` deleted and takes it out of its profiles.
    fn end(&self, d: &mut Dialog, now: u64) {
        d.state = State::Deleted;
        d.deadline = now + LINGER_S * 1000;
        if d.profiles.is_empty() {
            return;
        }
        let mut counts = lock(&self.counts);
        for (p, v) in d.profiles.drain(..) {
            if let Some(c) = counts.get_mut(p) {
                uncount(c, v.as_deref());
            }
        }
    }

    /// Puts dialog `id` into profile `p` (with `value`); false when the
    /// dialog is gone or ended. Being in it already with that value is no change.
    pub fn set_profile(&self, id: DlgId, p: usize, value: Option<&[u8]>) -> bool {
        let mut shard = self.shard(id.entry);
        let Some(d) = shard.get_mut(&id).filter(|d| d.is_live()) else {
            return false;
        };
        if d.profiles
            .iter()
            .any(|(q, v)| *q == p && v.as_deref() == value)
        {
            return true;
        }
        d.profiles.push((p, value.map(Into::into)));
        let mut counts = lock(&self.counts);
        if let Some(c) = counts.get_mut(p) {
            c.total += 1;
            if let Some(v) = value {
                *c.by_value.entry(v.into()).or_insert(0) += 1;
            }
        }
        true
    }

    /// Takes dialog `id` out of profile `p` (only the entry with `value`
    /// when given); false when it was not in it.
    pub fn unset_profile(&self, id: DlgId, p: usize, value: Option<&[u8]>) -> bool {
        let mut shard = self.shard(id.entry);
        let Some(d) = shard.get_mut(&id) else {
            return false;
        };
        let Some(pos) = d
            .profiles
            .iter()
            .position(|(q, v)| *q == p && (value.is_none() || v.as_deref() == value))
        else {
            return false;
        };
        let (_, v) = d.profiles.remove(pos);
        let mut counts = lock(&self.counts);
        if let Some(c) = counts.get_mut(p) {
            uncount(c, v.as_deref());
        }
        true
    }

    /// Whether dialog `id` is in profile `p` (with `value`, when given).
    pub fn in_profile(&self, id: DlgId, p: usize, value: Option<&[u8]>) -> bool {
        self.with(id, |d| {
            d.profiles
                .iter()
                .any(|(q, v)| *q == p && (value.is_none() || v.as_deref() == value))
        })
        .unwrap_or(false)
    }

    /// How many dialogs are in profile `p` (with `value`, when given).
    pub fn profile_size(&self, p: usize, value: Option<&[u8]>) -> usize {
        let counts = lock(&self.counts);
        let Some(c) = counts.get(p) else {
            return 0;
        };
        match value {
            None => c.total,
            Some(v) => c.by_value.get(v).copied().unwrap_or(0),
        }
    }

    /// Ends the dialogs whose time is up and drops ended ones that lingered
    /// long enough; returns the ids that timed out, with what it meant.
    /// The cores share one run per `interval_ms`.
    pub fn on_timer(&self, now: u64, interval_ms: u64) -> Vec<(Dialog, Transition)> {
        let last = self.last_timer.load(Ordering::Relaxed);
        if now < last.saturating_add(interval_ms)
            || self
                .last_timer
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Vec::new();
        }
        self.expire(now)
    }

    /// [`Dialogs::on_timer`] without the shared interval.
    pub fn expire(&self, now: u64) -> Vec<(Dialog, Transition)> {
        let mut ended = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            shard.retain(|_, d| {
                if d.deadline > now {
                    return true;
                }
                match d.state {
                    State::Deleted => return false,
                    State::ConfirmedNa | State::Confirmed => {
                        self.end(d, now);
                        ended.push((d.clone(), Transition::Ended));
                    }
                    State::Unconfirmed | State::Early => {
                        self.end(d, now);
                        self.failed.fetch_add(1, Ordering::Relaxed);
                        ended.push((d.clone(), Transition::Failed));
                    }
                }
                true
            });
        }
        ended
    }

    /// Keeps what a timer run ended, for [`Dialogs::take_timed_out`]
    /// (at most this many wait: a core drains them every timer round).
    pub fn queue_timed_out(&self, ended: Vec<(Dialog, Transition)>) {
        const MAX_WAITING: usize = 4096;
        let mut q = lock(&self.timed_out);
        let room = MAX_WAITING.saturating_sub(q.len());
        q.extend(ended.into_iter().take(room));
    }

    /// The dialogs timers ended since the last call.
    pub fn take_timed_out(&self) -> Vec<(Dialog, Transition)> {
        std::mem::take(&mut *lock(&self.timed_out))
    }

    /// Every dialog, in no particular order (`dlg.list`).
    pub fn list(&self) -> Vec<Dialog> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            all.extend(lock(shard).values().cloned());
        }
        all
    }

    /// How many dialogs are in each state, indexed by state number - 1.
    pub fn state_counts(&self) -> [usize; 5] {
        let mut n = [0; 5];
        for shard in self.shards.iter() {
            for d in lock(shard).values() {
                n[d.state as usize - 1] += 1;
            }
        }
        n
    }

    /// The index of profile `name`.
    pub fn profile(&self, name: &str) -> Option<usize> {
        self.params.profile(name)
    }
}

fn uncount(c: &mut ProfileCount, value: Option<&[u8]>) {
    c.total = c.total.saturating_sub(1);
    if let Some(v) = value {
        if let Some(n) = c.by_value.get_mut(v) {
            *n -= 1;
            if *n == 0 {
                c.by_value.remove(v);
            }
        }
    }
}
