//! [`TransactionTable`]: one core's transactions in a slab, the server-side
//! index, the timer wheel, and the public API the engine drives.
//!
//! Method kinds follow quinn's `Connection` (STYLE.md): getters; `on_*`
//! inputs (a request, a reply, the clock); mutators the script's functions
//! call (`create_server`, `add_branch`, `reply`, `cancel`, `failure_done`,
//! `release`); and [`TransactionTable::next_deadline`], the only "poll".
//! Every input and mutator appends what to send to an `&mut Vec<Transmit>`.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::Instant;

use bytes::Bytes;

use crate::sip::{Edits, Message, SendFlags, Transmit};
use crate::tm::branch_id::{BranchCodec, Decoded};
use crate::tm::cell::{Cell, Completion, ResponseOutcome};
use crate::tm::client::Branch;
use crate::tm::config::TmConfig;
use crate::tm::key::{quick_reply_via, top_branch, Fields, Key, KeySpans, PreHashed, ViaScan};
use crate::tm::outcome::*;
use crate::tm::server::AckResult;
use crate::tm::stats::TmStats;
use crate::tm::timer::{Owner, TimerKind, TimerQueue};
use siphash::SipKey;
use slab::timers_of;

#[derive(Debug)]
struct SlabEntry<U> {
    gen: u32,
    cell: Option<Cell<U>>,
}

/// One core's transactions (see the module documentation of [`crate::tm`]).
///
/// `U` is the caller's per-transaction data (the script's failure route,
/// flags, AVPs…), given to [`create_server`](Self::create_server).
#[derive(Debug)]
pub struct TransactionTable<U = ()> {
    cfg: TmConfig,
    core: u16,
    /// The index hash and our To-tags (see [`siphash`] for the choice).
    hasher: SipKey,
    codec: BranchCodec,
    tag_prefix: [u8; 32],
    slots: slab::Slots<U>,
    free: Vec<u32>,
    index: HashMap<u64, Tid, PreHashed>,
    timers: TimerQueue,
    stats: TmStats,
    scratch: Vec<u8>,
    /// Whether final responses sent upstream are recorded in `finals`.
    report_finals: bool,
    finals: Vec<FinalSent>,
    /// The RFC 3261 key of the last request [`on_request`](Self::on_request)
    /// found no transaction for, so that [`create_server`](Self::create_server)
    /// of the same message (`t_relay` after the engine's match) neither scans
    /// nor hashes it again.
    last_miss: Option<KeyMemo>,
    /// Where the second via-parm of the top Via header of the last reply
    /// [`match_reply`](Self::match_reply) scanned starts, for relaying that
    /// reply (our Via removed) without scanning it again.
    reply_via: ReplyViaMemo,
    /// The last `now` turned into a tick, and its tick: the engine hands
    /// one `now` to every call a message makes (request, transaction,
    /// branch), and the conversion is `Instant` arithmetic.
    last_tick: Option<(Instant, u64)>,
}

/// A reply known by the address and length of its buffer, without a handle
/// on it: a handle would be the buffer's first clone, which allocates (the
/// `bytes` crate makes a received buffer shared then), for every reply.
/// It is safe because a memo is only read for the message it was made from:
/// every `match_reply` forgets the memo before anything else, and
/// `on_matched_reply` takes the match `match_reply` made of the very message
/// it is given, which its caller holds in between (so no other buffer can
/// take that address meanwhile).
#[derive(Clone, Copy)]
struct ReplyVia {
    at: usize,
    len: usize,
    next: Option<usize>,
}

/// The memo of the last reply's top Via (written by `match_reply`, which
/// only reads the table otherwise).
#[derive(Default)]
struct ReplyViaMemo(std::cell::Cell<Option<ReplyVia>>);

impl std::fmt::Debug for ReplyViaMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyViaMemo")
    }
}

impl ReplyViaMemo {
    fn set(&self, msg: &Message, next: Option<usize>) {
        self.0.set(Some(ReplyVia {
            at: msg.buf().as_ptr() as usize,
            len: msg.buf().len(),
            next,
        }));
    }

    fn clear(&self) {
        self.0.set(None);
    }

    /// The memo if it is of `msg` (same buffer), emptied either way.
    fn take_of(&self, msg: &Message) -> Option<Option<usize>> {
        let m = self.0.take()?;
        (m.at == msg.buf().as_ptr() as usize && m.len == msg.buf().len()).then_some(m.next)
    }
}

/// A request's key, hashed: the message is known by its buffer, held here so
/// that no other buffer can take its address meanwhile (same address and
/// length: same bytes, the same key).
#[derive(Debug)]
struct KeyMemo {
    buf: Bytes,
    hash: u64,
    spans: KeySpans,
    /// The quick scan of its top Via (where the responses go).
    via: Option<ViaScan>,
}

impl KeyMemo {
    fn is_of(&self, msg: &Message) -> bool {
        msg.is_parsed_from(&self.buf)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_into(out: &mut [u8], v: u64) {
    let n = out.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((v >> ((n - 1 - i) * 4)) & 0xf) as usize];
    }
}

/// Borrows the pieces of a table a state machine works with, for one transaction.
macro_rules! ctx {
    ($t:expr, $tick:expr, $tid:expr, $out:expr) => {
        ctx!($t, $tick, $tid, $out, &$t.cfg)
    };
    ($t:expr, $tick:expr, $tid:expr, $out:expr, $cfg:expr) => {
        Ctx {
            cfg: $cfg,
            now: $tick,
            timers: &mut $t.timers,
            out: $out,
            stats: &mut $t.stats,
            scratch: &mut $t.scratch,
            tag_prefix: &$t.tag_prefix,
            tag_key: &$t.hasher,
            slot: $tid.slot,
            gen: $tid.gen,
            finals: if $t.report_finals {
                Some(&mut $t.finals)
            } else {
                None
            },
        }
    };
}

// After the macro: textual scope makes `ctx!` visible in these.
mod mutators;
pub use mutators::NewServer;
pub(crate) mod siphash;
mod slab;

impl<U> TransactionTable<U> {
    /// An empty table for core `core`; `now` is the epoch of its clock.
    pub fn new(cfg: TmConfig, core: u16, now: Instant) -> TransactionTable<U> {
        let hasher = SipKey::random();
        let mut tag_prefix = [0u8; 32];
        hex_into(&mut tag_prefix[..16], hasher.hash_one(("tm-tag", 1u8)));
        hex_into(&mut tag_prefix[16..], hasher.hash_one(("tm-tag", 2u8)));
        TransactionTable {
            cfg,
            core,
            codec: BranchCodec::new(core, SipKey::random()),
            hasher,
            tag_prefix,
            slots: slab::Slots::new(),
            free: Vec::new(),
            index: HashMap::with_hasher(PreHashed),
            timers: TimerQueue::new(now),
            stats: TmStats::default(),
            scratch: Vec::with_capacity(2048),
            report_finals: false,
            finals: Vec::new(),
            last_miss: None,
            reply_via: ReplyViaMemo::default(),
            last_tick: None,
        }
    }

    /// Records every final response sent upstream (a 2xx forwarded again
    /// included) until [`take_finals`](Self::take_finals) hands them out. A
    /// transaction with a record waiting is not freed before it is taken, so
    /// its user data can still be read then. Off by default.
    pub fn report_finals(&mut self, on: bool) {
        self.report_finals = on;
    }

    /// Hands each recorded final to `f` with the transaction's user data,
    /// oldest first, then frees the transactions that finished meanwhile.
    pub fn take_finals(&mut self, mut f: impl FnMut(&FinalSent, Option<&mut U>)) {
        if self.finals.is_empty() {
            return;
        }
        let finals = std::mem::take(&mut self.finals);
        for rec in &finals {
            f(rec, self.user_mut(rec.tid));
        }
        for rec in &finals {
            let done = self
                .slots
                .get(rec.tid.slot)
                .filter(|e| e.gen == rec.tid.gen)
                .and_then(|e| e.cell.as_ref())
                .is_some_and(|c| c.is_done());
            if done {
                self.free_slot(rec.tid);
            }
        }
        let mut finals = finals;
        finals.clear();
        if self.finals.is_empty() {
            self.finals = finals;
        }
    }

    /// `now` as a tick of the timer queue (the same value, remembered for
    /// the next call with the same `now`).
    fn tick(&mut self, now: Instant) -> u64 {
        if let Some((at, tick)) = self.last_tick {
            if at == now {
                return tick;
            }
        }
        let tick = self.timers.tick(now);
        self.last_tick = Some((now, tick));
        tick
    }

    // --- getters -----------------------------------------------------------------------------

    /// The configuration the table runs with.
    pub fn config(&self) -> &TmConfig {
        &self.cfg
    }

    /// The core this table belongs to (encoded in every branch it makes).
    pub fn core(&self) -> u16 {
        self.core
    }

    /// Counters (`active` is the number of live transactions).
    pub fn stats(&self) -> TmStats {
        self.stats
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cell(&self, tid: Tid) -> Option<&Cell<U>> {
        let e = self.slots.get(tid.slot)?;
        if e.gen != tid.gen {
            return None;
        }
        e.cell.as_ref()
    }

    fn cell_mut(&mut self, tid: Tid) -> Option<&mut Cell<U>> {
        let e = self.slots.get_mut(tid.slot)?;
        if e.gen != tid.gen {
            return None;
        }
        e.cell.as_mut()
    }

    /// Whether `tid` is a live transaction.
    pub fn contains(&self, tid: Tid) -> bool {
        self.cell(tid).is_some()
    }

    /// The caller's data of a transaction.
    pub fn user(&self, tid: Tid) -> Option<&U> {
        self.cell(tid).map(|c| &c.user)
    }

    /// The caller's data of a transaction, to change.
    pub fn user_mut(&mut self, tid: Tid) -> Option<&mut U> {
        self.cell_mut(tid).map(|c| &mut c.user)
    }

    /// How the responses of `tid` go over a stream (`set_reply_no_connect`,
    /// `set_reply_close`), from now on.
    pub fn set_response_flags(&mut self, tid: Tid, flags: SendFlags) {
        if let Some(c) = self.cell_mut(tid) {
            c.server.target.flags = flags;
        }
    }

    /// The To-tag a local reply of `tid` carries (`<prefix>-<8 hex>`), as
    /// `Cell::send_local_reply` writes it: what
    /// Kamailio's `t_get_reply_totag` gives a module (presence keeps it as
    /// the subscription's tag before the reply goes).
    pub fn reply_to_tag(&self, tid: Tid) -> Vec<u8> {
        let mut tag = Vec::with_capacity(41);
        tag.extend_from_slice(&self.tag_prefix);
        tag.push(b'-');
        let cell = u128::from(tid.slot) << 32 | u128::from(tid.gen);
        tag.extend_from_slice(&crate::tm::branch_id::hex8(
            self.hasher.hash_u128(cell) as u32
        ));
        tag
    }

    /// The request that created the transaction.
    pub fn request(&self, tid: Tid) -> Option<&Bytes> {
        self.cell(tid).map(|c| &c.server.request)
    }

    /// The last status sent upstream (0: none yet).
    pub fn status(&self, tid: Tid) -> Option<u16> {
        self.cell(tid).map(|c| c.server.status)
    }

    /// Whether a CANCEL was received (`t_is_canceled`).
    pub fn is_canceled(&self, tid: Tid) -> bool {
        self.cell(tid).is_some_and(|c| c.canceled)
    }

    /// Whether the max lifetime passed (`t_is_expired`).
    pub fn is_expired(&self, tid: Tid) -> bool {
        self.cell(tid).is_some_and(|c| c.expired)
    }

    /// The first INVITE transaction whose request has this Call-ID and
    /// CSeq number (tmx `t_reply_callid` / `t_cancel_callid`). A walk over
    /// the live transactions, parsing each INVITE: for the script's rare
    /// out-of-band calls, not for the message path.
    pub fn find_invite(&self, callid: &[u8], cseq: u32) -> Option<Tid> {
        (0..self.slots.len()).find_map(|i| {
            let slot = u32::try_from(i).ok()?;
            let e = self.slots.get(slot)?;
            let cell = e.cell.as_ref().filter(|c| c.server.is_invite())?;
            let msg = Message::parse(cell.server.request.clone()).ok()?;
            let seq = msg
                .header_value(crate::sip::HeaderName::CSeq)
                .and_then(|v| crate::sip::headers::CSeq::parse(v).ok())?
                .seq;
            (msg.call_id()? == callid && seq == cseq).then_some(Tid { slot, gen: e.gen })
        })
    }

    /// The branch whose final reply (or timeout) came last; in a failure
    /// route, the one that completed the context.
    pub fn last_final(&self, tid: Tid) -> Option<u8> {
        self.cell(tid)?.last_final
    }

    /// Number of branches created so far.
    pub fn branch_count(&self, tid: Tid) -> usize {
        self.cell(tid).map_or(0, |c| c.branches.len())
    }

    /// Final status of a branch (0 while pending; 408 for a timeout).
    pub fn branch_code(&self, tid: Tid, branch: u8) -> Option<u16> {
        self.cell(tid)?
            .branches
            .get(usize::from(branch))
            .map(Branch::code)
    }

    /// Whether a branch ended on a timer (`t_branch_timeout`).
    pub fn branch_timed_out(&self, tid: Tid, branch: u8) -> bool {
        self.branch(tid, branch)
            .is_some_and(|b| b.timed_out.is_some())
    }

    /// Which timer ended a branch with a local 408: B, F, `FrTimer`,
    /// `FrInvTimer` or `MaxLifetime`.
    pub fn branch_timeout(&self, tid: Tid, branch: u8) -> Option<TimerKind> {
        self.branch(tid, branch)?.timed_out
    }

    /// Whether a branch received any response (`t_branch_replied`).
    pub fn branch_replied(&self, tid: Tid, branch: u8) -> bool {
        self.branch(tid, branch).is_some_and(|b| b.replied)
    }

    fn branch(&self, tid: Tid, branch: u8) -> Option<&Branch> {
        self.cell(tid)?.branches.get(usize::from(branch))
    }

    /// The branch chosen by §16.7 step 6 and its code, among finals so far.
    pub fn winning(&self, tid: Tid) -> Option<(u8, u16)> {
        let (i, code) = self.cell(tid)?.best()?;
        Some((u8::try_from(i).ok()?, code))
    }

    /// The stored reply of a branch as it would go upstream (our Via removed),
    /// for the failure route to read (`$T_rpl`). `None` for a local outcome.
    pub fn branch_reply(&self, tid: Tid, branch: u8) -> Option<&Bytes> {
        match &self.branch(tid, branch)?.outcome {
            super::client::Outcome::Final {
                upstream: Some(u), ..
            } => Some(u),
            _ => None,
        }
    }

    /// The request as sent on a branch (uac's `uac_auth` reads its Request-URI).
    pub fn branch_request(&self, tid: Tid, branch: u8) -> Option<&Bytes> {
        Some(&self.branch(tid, branch)?.request)
    }

    /// Timers armed now, and entries in the timer wheel: the same number,
    /// as disarming a timer removes its entry (no stale entry is left behind).
    pub fn timers_pending(&self) -> (usize, usize) {
        (self.timers.len(), self.timers.len())
    }

    /// Memory one transaction holds (see [`CellMemory`]).
    pub fn memory_of(&self, tid: Tid) -> Option<CellMemory> {
        let c = self.cell(tid)?;
        let mut armed = c.server.timers.count() + c.lifetime.count();
        let mut messages = c.server.request.len();
        if let Some(r) = c.server.final_response().or(c.server.last_provisional()) {
            messages += r.len();
        }
        for b in &c.branches {
            armed += b.timers.count() + b.cancel_timers.count();
            messages += b.request.len();
            if let super::client::Outcome::Final {
                upstream: Some(u), ..
            } = &b.outcome
            {
                messages += u.len();
            }
        }
        let index = if c.index_key.is_some() {
            // One hashbrown bucket: the (key, value) pair and a control byte.
            std::mem::size_of::<(u64, Tid)>() + 1
        } else {
            0
        };
        let structures = std::mem::size_of::<SlabEntry<U>>()
            + if c.branches.spilled() {
                c.branches.capacity() * std::mem::size_of::<Branch>()
            } else {
                0 // inline: part of the slab entry
            }
            + index
            + armed * TimerQueue::BYTES_PER_TIMER;
        Some(CellMemory {
            structures,
            messages,
        })
    }

    // --- inputs ------------------------------------------------------------------------------

    /// Matches a received request against the server transactions (§17.2.3)
    /// and absorbs what is the transaction's to absorb: a retransmission gets
    /// the last response again, the ACK of our non-2xx final confirms it.
    pub fn on_request(
        &mut self,
        msg: &Message,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> RequestMatch {
        let method = msg.method_bytes();
        let is_ack = method == b"ACK";
        self.last_miss = None;
        let Some((key, spans, via)) = Key::of_scanned(msg).filter(|_| msg.is_request()) else {
            return if is_ack {
                RequestMatch::AckPassOn { tid: None }
            } else {
                RequestMatch::New
            };
        };
        let tick = self.tick(now);
        if is_ack {
            let Some(tid) = self.lookup(&key, true) else {
                return RequestMatch::AckPassOn { tid: None };
            };
            let result = self.with_cell(tid, tick, out, |cell, cx| cell.server.on_ack(cx));
            return match result {
                Some(AckResult::Absorbed) => {
                    self.stats.absorbed_requests += 1;
                    RequestMatch::AckAbsorbed { tid }
                }
                Some(AckResult::PassOn) => RequestMatch::AckPassOn { tid: Some(tid) },
                None => RequestMatch::AckPassOn { tid: None },
            };
        }
        let hash = key.hash(&self.hasher);
        if let Some(tid) = self.lookup_hashed(&key, hash, false) {
            self.stats.absorbed_requests += 1;
            self.with_cell(tid, tick, out, |cell, cx| {
                if cell.server.on_retransmission(cx) {
                    cx.stats.retransmissions += 1;
                }
            });
            return RequestMatch::Retransmission { tid };
        }
        if matches!(key.fields, Fields::Rfc3261 { .. }) {
            self.last_miss = Some(KeyMemo {
                buf: msg.buf().clone(),
                hash,
                spans,
                via,
            });
        }
        if method == b"CANCEL" {
            return match self.lookup(&key.as_method(b"INVITE"), false) {
                Some(invite) => RequestMatch::Cancel { invite },
                None => RequestMatch::CancelUnmatched,
            };
        }
        RequestMatch::New
    }

    /// The key of a request, its hash and the quick scan of its top Via:
    /// remembered from [`on_request`](Self::on_request) when it saw this very message.
    #[allow(clippy::type_complexity)]
    fn key_of<'m>(
        &mut self,
        msg: &'m Message,
    ) -> Option<(Key<'m>, KeySpans, u64, Option<ViaScan>)> {
        if let Some(m) = self.last_miss.take().filter(|m| m.is_of(msg)) {
            let buf = msg.buf();
            let key = Key {
                fields: Fields::Rfc3261 {
                    branch: buf.get(m.spans.branch.range())?,
                    sent_by: buf.get(m.spans.sent_by.range())?,
                },
                method: msg.method_bytes(),
            };
            return Some((key, m.spans, m.hash, m.via));
        }
        let (key, spans, via) = Key::of_scanned(msg)?;
        let hash = key.hash(&self.hasher);
        Some((key, spans, hash, via))
    }

    /// Whether a key from [`on_request`](Self::on_request) waits for `create_server`.
    #[cfg(test)]
    pub(crate) fn key_memo_of(&self, msg: &Message) -> bool {
        self.last_miss.as_ref().is_some_and(|m| m.is_of(msg))
    }

    /// Finds the server transaction of a key (hash, then an exact comparison).
    fn lookup(&self, key: &Key<'_>, is_ack: bool) -> Option<Tid> {
        self.lookup_hashed(key, key.hash(&self.hasher), is_ack)
    }

    /// [`Self::lookup`] with the key's hash computed already.
    fn lookup_hashed(&self, key: &Key<'_>, hash: u64, is_ack: bool) -> Option<Tid> {
        let tid = *self.index.get(&hash)?;
        let cell = self.cell(tid)?;
        let s = &cell.server;
        let sent_to_tag = || {
            let r = Message::parse(s.final_response()?.clone()).ok()?;
            let to = r.header_value(crate::sip::HeaderName::To)?;
            let na = crate::sip::nameaddr::NameAddr::parse(to).ok()?;
            na.tag().map(<[u8]>::to_vec)
        };
        key.matches(&s.request, s.method, &s.spans, is_ack, sent_to_tag)
            .then_some(tid)
    }

    /// Where a reply belongs: decodes the branch of its top Via (ours encode
    /// core, slot, generation and index; no lookup) and checks the CSeq method.
    pub fn match_reply(&self, msg: &Message) -> ReplyMatch {
        // Whatever happens below, no memo of an earlier reply survives it.
        self.reply_via.clear();
        if msg.status().is_none() {
            return ReplyMatch::NoMatch;
        }
        let Some(h) = msg.header(crate::sip::HeaderName::Via) else {
            return ReplyMatch::NoMatch;
        };
        let value = msg.value(h);
        let branch = match quick_reply_via(value) {
            Some(scan) => {
                self.reply_via.set(msg, scan.next);
                scan.branch.and_then(|b| value.get(b))
            }
            None => top_branch(msg),
        };
        let Some(branch) = branch else {
            return ReplyMatch::NoMatch;
        };
        let id = match self.codec.decode(branch) {
            Decoded::Local(id) => id,
            Decoded::OtherCore(core) => return ReplyMatch::OtherCore(core),
            Decoded::Foreign | Decoded::Forged => return ReplyMatch::NoMatch,
        };
        let tid = Tid {
            slot: id.slot,
            gen: id.gen,
        };
        let Some(cell) = self.cell(tid) else {
            return ReplyMatch::NoMatch;
        };
        if usize::from(id.index) >= cell.branches.len() {
            return ReplyMatch::NoMatch;
        }
        let cseq_method = msg.method_bytes();
        let ours = cell.server.request.get(cell.server.method.range());
        if ours == Some(cseq_method) {
            ReplyMatch::Branch {
                tid,
                branch: id.index,
                to_cancel: false,
            }
        } else if cseq_method == b"CANCEL" && cell.server.is_invite() {
            ReplyMatch::Branch {
                tid,
                branch: id.index,
                to_cancel: true,
            }
        } else {
            ReplyMatch::NoMatch
        }
    }

    /// Processes a reply from downstream (§17.1, §16.7). `edits` are the
    /// changes `onreply_route` made, applied to what is relayed.
    pub fn on_reply(
        &mut self,
        msg: &Message,
        edits: Option<&Edits>,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> ReplyAction {
        let matched = self.match_reply(msg);
        self.on_matched_reply(matched, msg, edits, now, out)
    }

    /// [`on_reply`](Self::on_reply) for a reply matched already by
    /// [`match_reply`](Self::match_reply) (the engine matches before
    /// `onreply_route` runs: the branch is decoded once per reply).
    pub fn on_matched_reply(
        &mut self,
        matched: ReplyMatch,
        msg: &Message,
        edits: Option<&Edits>,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> ReplyAction {
        let (tid, branch, to_cancel) = match matched {
            // Released meanwhile (t_release in onreply_route): as if unmatched.
            ReplyMatch::Branch { tid, .. } if !self.contains(tid) => return ReplyAction::NoMatch,
            ReplyMatch::NoMatch => return ReplyAction::NoMatch,
            ReplyMatch::OtherCore(c) => return ReplyAction::OtherCore(c),
            ReplyMatch::Branch {
                tid,
                branch,
                to_cancel,
            } => (tid, branch, to_cancel),
        };
        let tick = self.tick(now);
        let second_via = self.reply_via.take_of(msg);
        let outcome = self.with_cell(tid, tick, out, |cell, cx| {
            cell.on_response(usize::from(branch), msg, to_cancel, edits, second_via, cx)
        });
        match outcome {
            None | Some(ResponseOutcome::Absorbed) => {
                self.stats.absorbed_replies += 1;
                ReplyAction::Absorbed { tid, branch }
            }
            Some(ResponseOutcome::Relayed(code)) => ReplyAction::Relayed { tid, branch, code },
            Some(ResponseOutcome::Stored(code)) => ReplyAction::Stored { tid, branch, code },
            Some(ResponseOutcome::Completed(Completion::FinalSent(code))) => {
                ReplyAction::FinalSent { tid, code }
            }
            Some(ResponseOutcome::Completed(Completion::NeedsFailureRoute(code))) => {
                ReplyAction::NeedsFailureRoute { tid, code }
            }
            Some(ResponseOutcome::Completed(Completion::Open)) => ReplyAction::Stored {
                tid,
                branch,
                code: msg.status().unwrap_or(0),
            },
            Some(ResponseOutcome::FailOver { branch, code }) => {
                if self.dns_failover(tid, branch, now, out) {
                    return ReplyAction::Stored { tid, branch, code };
                }
                match self.with_cell(tid, tick, out, |cell, cx| cell.check_complete(cx)) {
                    Some(Completion::FinalSent(code)) => ReplyAction::FinalSent { tid, code },
                    Some(Completion::NeedsFailureRoute(code)) => {
                        ReplyAction::NeedsFailureRoute { tid, code }
                    }
                    _ => ReplyAction::Stored { tid, branch, code },
                }
            }
        }
    }

    /// `use_dns_failover`: a new branch to the next DNS address of branch
    /// `b`, carrying the same request under its own branch parameter
    /// (Kamailio runs no branch_route for it). Whether one was started.
    fn dns_failover(&mut self, tid: Tid, b: u8, now: Instant, out: &mut Vec<Transmit>) -> bool {
        let Ok(next) = self.next_branch(tid) else {
            return false;
        };
        let (old_param, new_param) = (self.branch_param(tid, b), self.branch_param(tid, next));
        let Some(cell) = self.cell_mut(tid) else {
            return false;
        };
        let Some(old) = cell.branches.get(usize::from(b)) else {
            return false;
        };
        let (mut target, request) = (old.target, old.request.clone());
        let Some(dst) = cell.take_failover(b, next) else {
            return false;
        };
        let mut data = request.to_vec();
        if let Some(at) = memchr::memmem::find(&data, old_param.as_bytes()) {
            data[at..at + old_param.as_bytes().len()].copy_from_slice(new_param.as_bytes());
        }
        log::info!("DNS failover: branch {b} to {} next ({dst})", target.dst);
        target.dst = dst;
        target.conn = None;
        target.local = target.local.filter(|l| l.is_ipv4() == dst.is_ipv4());
        self.start_branch(tid, next, target, Bytes::from(data), now, out)
            .is_ok()
    }

    /// Records the addresses DNS failover may try after branch `b`'s.
    pub fn set_dns_failover(&mut self, tid: Tid, b: u8, rest: Vec<std::net::SocketAddr>) {
        if rest.is_empty() {
            return;
        }
        if let Some(cell) = self.cell_mut(tid) {
            cell.dns_failover
                .get_or_insert_with(Default::default)
                .push((b, rest));
        }
    }

    /// Fires every timer due at `now`: retransmissions go to `out`, decisions
    /// the engine must act on to `events`.
    pub fn on_timer(&mut self, now: Instant, out: &mut Vec<Transmit>, events: &mut Vec<TmEvent>) {
        let tick = self.tick(now);
        while let Some(e) = self.timers.pop_due(tick) {
            let tid = Tid {
                slot: e.slot,
                gen: e.gen,
            };
            let Some(cell) = self.cell_mut(tid) else {
                continue;
            };
            // Its owner holds this very entry (freeing a transaction or
            // disarming a timer removes the entry): cleared, it has fired.
            let Some(timers) = timers_of(cell, e.owner).filter(|t| t.holds(e.armed())) else {
                debug_assert!(false, "a due timer without its owner: {e:?}");
                continue;
            };
            timers.take(e.kind.slot());
            let mut fail_over = None;
            let completion = self.with_cell(tid, tick, out, |cell, cx| match e.owner {
                Owner::Server => {
                    cell.server.on_timer(e.kind, cx);
                    Completion::Open
                }
                Owner::Cell => cell.on_lifetime(cx),
                Owner::Branch(i) => {
                    let timed_out = cell
                        .branches
                        .get_mut(usize::from(i))
                        .is_some_and(|b| b.on_timer(e.kind, cx));
                    // A branch that heard nothing fails over to the next
                    // DNS address (use_dns_failover) instead of deciding.
                    let fail_over_now = timed_out
                        && cell.dns_failover.is_some()
                        && cell
                            .branches
                            .get(usize::from(i))
                            .is_some_and(|b| !b.replied)
                        && cell.may_fail_over(usize::from(i));
                    if fail_over_now {
                        cell.last_final = Some(i);
                        fail_over = Some(i);
                        Completion::Open
                    } else if timed_out {
                        cell.last_final = Some(i);
                        cell.check_complete(cx)
                    } else {
                        Completion::Open
                    }
                }
                Owner::Cancel(i) => {
                    if let Some(b) = cell.branches.get_mut(usize::from(i)) {
                        b.on_cancel_timer(e.kind, cx);
                    }
                    Completion::Open
                }
            });
            let completion = match fail_over {
                Some(b) if !self.dns_failover(tid, b, now, out) => {
                    self.with_cell(tid, tick, out, |cell, cx| cell.check_complete(cx))
                }
                _ => completion,
            };
            match completion {
                Some(Completion::FinalSent(code)) => events.push(TmEvent::FinalSent { tid, code }),
                Some(Completion::NeedsFailureRoute(code)) => {
                    events.push(TmEvent::NeedsFailureRoute { tid, code })
                }
                _ => {}
            }
        }
    }

    /// When [`on_timer`](Self::on_timer) should be called next (`None`: no
    /// timer armed). O(1); never after the earliest timer, and before it by
    /// less than the span of the wheel slot holding it (the timer module's
    /// documentation): a call at that time moves it forward.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let at = self.timers.next_deadline()?;
        Some(self.timers.instant(at))
    }
}

#[cfg(test)]
mod reply_via_tests {
    use super::ReplyViaMemo;
    use crate::sip::Message;
    use bytes::Bytes;

    const REPLY: &[u8] = b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

    /// The memo answers only for the buffer it was made from (not for the
    /// same bytes elsewhere), once, and not after it is cleared.
    #[test]
    fn the_memo_is_of_one_buffer_once() {
        let a = Message::parse(Bytes::copy_from_slice(REPLY)).unwrap();
        let b = Message::parse(Bytes::copy_from_slice(REPLY)).unwrap();
        let memo = ReplyViaMemo::default();
        memo.set(&a, Some(40));
        assert_eq!(memo.take_of(&b), None);
        assert_eq!(memo.take_of(&a), None, "taken (and lost) by the look at b");
        memo.set(&a, Some(40));
        assert_eq!(memo.take_of(&a), Some(Some(40)));
        assert_eq!(memo.take_of(&a), None);
        memo.set(&a, None);
        memo.clear();
        assert_eq!(memo.take_of(&a), None);
        // A message parsed again from the same buffer is that message.
        let again = Message::parse(a.buf().clone()).unwrap();
        memo.set(&a, Some(40));
        assert_eq!(memo.take_of(&again), Some(Some(40)));
    }
}

#[cfg(test)]
mod tick_tests {
    use super::TransactionTable;
    use crate::tm::config::TmConfig;
    use proptest::prelude::*;
    use std::time::Duration;

    proptest! {
        /// The remembered tick is the timer queue's tick of the same `now`,
        /// whatever the order of the readings (repeated, earlier, before the epoch).
        #[test]
        fn remembered_ticks_equal_the_queue_s(
            steps in proptest::collection::vec((0u64..5_000_000, any::<bool>(), 0usize..3), 1..40)
        ) {
            let epoch = crate::tm::tests::test_epoch() + Duration::from_secs(10);
            let mut t: TransactionTable<()> = TransactionTable::new(TmConfig::default(), 0, epoch);
            for (micros, before, repeat) in steps {
                let d = Duration::from_micros(micros);
                let now = if before { epoch - d.min(Duration::from_secs(10)) } else { epoch + d };
                for _ in 0..=repeat {
                    prop_assert_eq!(t.tick(now), t.timers.tick(now));
                }
            }
        }
    }
}
