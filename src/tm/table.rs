//! [`TransactionTable`]: one core's transactions in a slab, the server-side
//! index, the timer heap, and the public API the engine drives.
//!
//! Method kinds follow quinn's `Connection` (STYLE.md): getters; `on_*`
//! inputs (a request, a reply, the clock); mutators the script's functions
//! call (`create_server`, `add_branch`, `reply`, `cancel`, `failure_done`,
//! `release`); and [`TransactionTable::next_deadline`], the only "poll".
//! Every input and mutator appends what to send to an `&mut Vec<Transmit>`.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::Instant;

use bytes::Bytes;

use super::branch_id::{BranchCodec, BranchId, BranchParam, Decoded};
use super::build::{self, LocalReply, Source, Target};
use super::cell::{Cell, Completion, ResponseOutcome};
use super::client::Branch;
use super::config::TmConfig;
use super::ctx::Ctx;
use super::key::{top_via, Key, PreHashed};
use super::server::{AckResult, Server};
use super::stats::TmStats;
use super::timer::{Entry, Owner, TimerKind, TimerQueue, Timers};
use crate::sip::{Edits, Message, StartLine, Transmit};

/// A transaction handle: slab slot and generation. A handle outliving its
/// transaction matches nothing (the generation moved on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tid {
    slot: u32,
    gen: u32,
}

/// What a received request is to the transaction layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestMatch {
    /// No transaction: run the request route (which may call `create_server`).
    New,
    /// A retransmission: the last response (if any) was sent again; nothing else to do.
    Retransmission { tid: Tid },
    /// The ACK of a non-2xx final we sent: absorbed (§17.2.1).
    AckAbsorbed { tid: Tid },
    /// An ACK that is not ours to absorb (ACK of a 2xx is end-to-end, §13.2.2.4):
    /// route it like any in-dialog request (stateless forward). `tid` is the
    /// INVITE's transaction when it still exists and matched.
    AckPassOn { tid: Option<Tid> },
    /// A CANCEL for the INVITE transaction `invite` (§9.2): call
    /// [`TransactionTable::cancel`] (Kamailio does it from `t_relay()`).
    Cancel { invite: Tid },
    /// A CANCEL matching no transaction (§16.10: "It MUST statelessly forward
    /// the CANCEL request"; Kamailio `unmatched_cancel`).
    CancelUnmatched,
}

/// Where a reply belongs, without processing it (to run `onreply_route` first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMatch {
    /// Not for one of our transactions: route it statelessly (or drop).
    NoMatch,
    /// Our branch, owned by another core: hand the message to that core.
    OtherCore(u16),
    /// Branch `branch` of `tid`; `to_cancel` when it answers our CANCEL.
    Branch {
        tid: Tid,
        branch: u8,
        to_cancel: bool,
    },
}

/// What [`TransactionTable::on_reply`] did with a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyAction {
    /// Not ours (see [`ReplyMatch::NoMatch`]).
    NoMatch,
    /// Another core's (see [`ReplyMatch::OtherCore`]).
    OtherCore(u16),
    /// Absorbed: a 100, a retransmitted final (ACK resent), a reply to our
    /// CANCEL, a reply after the context was decided.
    Absorbed { tid: Tid, branch: u8 },
    /// Relayed upstream (a provisional, or a 2xx).
    Relayed { tid: Tid, branch: u8, code: u16 },
    /// A negative final kept for selection; other branches are still pending.
    Stored { tid: Tid, branch: u8, code: u16 },
    /// Every branch has a final: the best (`code`, as sent) went upstream.
    FinalSent { tid: Tid, code: u16 },
    /// Every branch failed and a failure route is armed: run it with `code`
    /// as the winning status, then call [`TransactionTable::failure_done`].
    NeedsFailureRoute { tid: Tid, code: u16 },
}

/// What a timer decided, for the engine ([`TransactionTable::on_timer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmEvent {
    /// A final response (`code`) went upstream (timeouts: 408, canceled: 487).
    FinalSent { tid: Tid, code: u16 },
    /// Every branch failed (timeouts count as 408): run the failure route,
    /// then call [`TransactionTable::failure_done`].
    NeedsFailureRoute { tid: Tid, code: u16 },
}

/// Why a mutator refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmError {
    /// The handle matches no live transaction.
    NoTransaction,
    /// Not a request, or an ACK (an ACK never creates a transaction, §17.2.3).
    NotTransactional,
    /// The request has no readable top Via (nothing to match or answer on).
    Unmatchable,
    /// A transaction for this request exists already (a retransmission).
    Exists(Tid),
    /// A final response was sent already.
    FinalSent,
    /// The transaction was canceled: no new branches (Kamailio t_relay: -1).
    Canceled,
    /// The max lifetime passed: no new branches.
    Expired,
    /// `max_branches` reached.
    TooManyBranches,
    /// Not a valid status code for this call.
    BadCode,
}

/// What [`TransactionTable::cancel`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelOutcome {
    /// The CANCEL's own (server, non-INVITE) transaction, answered 200.
    pub cancel: Option<Tid>,
    /// Whether INVITE branches were pending (CANCELs sent or waiting for a 1xx).
    pub pending: bool,
    /// What the cancel decided at once (a 487 with no branch yet, or stopped branches).
    pub event: Option<TmEvent>,
}

/// Memory held by one transaction ([`TransactionTable::memory_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellMemory {
    /// Slab slot, branch vector, index entry and heap entries of armed timers.
    pub structures: usize,
    /// Bytes of stored messages (request, responses, our requests; shared buffers counted whole).
    pub messages: usize,
}

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
    hasher: RandomState,
    codec: BranchCodec<RandomState>,
    tag_prefix: [u8; 32],
    slots: Vec<SlabEntry<U>>,
    free: Vec<u32>,
    index: HashMap<u64, Tid, PreHashed>,
    timers: TimerQueue,
    stats: TmStats,
    scratch: Vec<u8>,
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
        Ctx {
            cfg: &$t.cfg,
            now: $tick,
            timers: &mut $t.timers,
            out: $out,
            stats: &mut $t.stats,
            scratch: &mut $t.scratch,
            tag_prefix: &$t.tag_prefix,
            slot: $tid.slot,
            gen: $tid.gen,
        }
    };
}

impl<U> TransactionTable<U> {
    /// An empty table for core `core`; `now` is the epoch of its clock.
    pub fn new(cfg: TmConfig, core: u16, now: Instant) -> TransactionTable<U> {
        let hasher = RandomState::new();
        let mut tag_prefix = [0u8; 32];
        hex_into(&mut tag_prefix[..16], hasher.hash_one(("tm-tag", 1u8)));
        hex_into(&mut tag_prefix[16..], hasher.hash_one(("tm-tag", 2u8)));
        TransactionTable {
            cfg,
            core,
            codec: BranchCodec::new(core, RandomState::new()),
            hasher,
            tag_prefix,
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::with_hasher(PreHashed),
            timers: TimerQueue::new(now),
            stats: TmStats::default(),
            scratch: Vec::with_capacity(2048),
        }
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
        let e = self.slots.get(tid.slot as usize)?;
        if e.gen != tid.gen {
            return None;
        }
        e.cell.as_ref()
    }

    fn cell_mut(&mut self, tid: Tid) -> Option<&mut Cell<U>> {
        let e = self.slots.get_mut(tid.slot as usize)?;
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

    /// Timers armed now, and entries in the timer heap (armed plus stale ones
    /// not swept yet).
    pub fn timers_pending(&self) -> (usize, usize) {
        (self.timers.armed(), self.timers.len())
    }

    /// Memory one transaction holds (see [`CellMemory`]).
    pub fn memory_of(&self, tid: Tid) -> Option<CellMemory> {
        let c = self.cell(tid)?;
        let mut armed = c.server.timers.count() + c.lifetime.count();
        let mut messages = c.server.request.len();
        if let Some(r) = c.server.final_response() {
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
            + c.branches.capacity() * std::mem::size_of::<Branch>()
            + index
            + armed * std::mem::size_of::<Entry>();
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
        let Some((key, _)) = Key::of(msg).filter(|_| msg.is_request()) else {
            return if is_ack {
                RequestMatch::AckPassOn { tid: None }
            } else {
                RequestMatch::New
            };
        };
        let tick = self.timers.tick(now);
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
        if let Some(tid) = self.lookup(&key, false) {
            self.stats.absorbed_requests += 1;
            self.with_cell(tid, tick, out, |cell, cx| {
                if cell.server.on_retransmission(cx) {
                    cx.stats.retransmissions += 1;
                }
            });
            return RequestMatch::Retransmission { tid };
        }
        if method == b"CANCEL" {
            return match self.lookup(&key.as_method(b"INVITE"), false) {
                Some(invite) => RequestMatch::Cancel { invite },
                None => RequestMatch::CancelUnmatched,
            };
        }
        RequestMatch::New
    }

    /// Finds the server transaction of a key (hash, then an exact comparison).
    fn lookup(&self, key: &Key<'_>, is_ack: bool) -> Option<Tid> {
        let tid = *self.index.get(&key.hash(&self.hasher))?;
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
        if msg.status().is_none() {
            return ReplyMatch::NoMatch;
        }
        let Some(branch) = top_via(msg).and_then(|(v, _)| v.branch()) else {
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
        let (tid, branch, to_cancel) = match self.match_reply(msg) {
            ReplyMatch::NoMatch => return ReplyAction::NoMatch,
            ReplyMatch::OtherCore(c) => return ReplyAction::OtherCore(c),
            ReplyMatch::Branch {
                tid,
                branch,
                to_cancel,
            } => (tid, branch, to_cancel),
        };
        let tick = self.timers.tick(now);
        let outcome = self.with_cell(tid, tick, out, |cell, cx| {
            cell.on_response(usize::from(branch), msg, to_cancel, edits, cx)
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
        }
    }

    /// Fires every timer due at `now`: retransmissions go to `out`, decisions
    /// the engine must act on to `events`.
    pub fn on_timer(&mut self, now: Instant, out: &mut Vec<Transmit>, events: &mut Vec<TmEvent>) {
        let tick = self.timers.tick(now);
        while let Some(e) = self.timers.pop_due(tick) {
            let tid = Tid {
                slot: e.slot,
                gen: e.gen,
            };
            let Some(cell) = self.cell_mut(tid) else {
                continue;
            };
            let Some(timers) = timers_of(cell, e.owner) else {
                continue;
            };
            if !timers.holds(e.kind, e.at) {
                continue;
            }
            timers.clear(e.kind.slot());
            self.timers.disarmed(1);
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
                    if timed_out {
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
            match completion {
                Some(Completion::FinalSent(code)) => events.push(TmEvent::FinalSent { tid, code }),
                Some(Completion::NeedsFailureRoute(code)) => {
                    events.push(TmEvent::NeedsFailureRoute { tid, code })
                }
                _ => {}
            }
        }
        self.maybe_sweep();
    }

    /// When [`on_timer`](Self::on_timer) should be called next (`None`: no timer armed).
    pub fn next_deadline(&mut self) -> Option<Instant> {
        loop {
            let e = *self.timers.peek()?;
            let live = self
                .slots
                .get_mut(e.slot as usize)
                .filter(|s| s.gen == e.gen)
                .and_then(|s| s.cell.as_mut())
                .and_then(|c| timers_of(c, e.owner))
                .is_some_and(|t| t.holds(e.kind, e.at));
            if live {
                return Some(self.timers.instant(e.at));
            }
            self.timers.pop();
        }
    }

    // --- mutators ----------------------------------------------------------------------------

    /// Creates the server transaction of a new request (`t_newtran`; `t_relay`
    /// does it first). An INVITE is answered 100 Trying at once when
    /// `auto_inv_100` is on.
    pub fn create_server(
        &mut self,
        msg: &Message,
        from: &Source,
        user: U,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<Tid, TmError> {
        let StartLine::Request { method, .. } = msg.start() else {
            return Err(TmError::NotTransactional);
        };
        let method_bytes = msg.slice(method);
        if method_bytes == b"ACK" {
            return Err(TmError::NotTransactional);
        }
        let (key, spans) = Key::of(msg).ok_or(TmError::Unmatchable)?;
        if let Some(tid) = self.lookup(&key, false) {
            return Err(TmError::Exists(tid));
        }
        let target = build::response_target(msg, from).ok_or(TmError::Unmatchable)?;
        let invite = method_bytes == b"INVITE";
        let hash = key.hash(&self.hasher);
        let tid = self.alloc();
        let tag = {
            let mut t = [0u8; 8];
            hex_into(&mut t, self.hasher.hash_one(("tm-cell", tid.slot, tid.gen)));
            t
        };
        let server = Server::new(msg.buf().clone(), method, spans, *from, target, invite);
        let mut cell = Cell::new(server, tag, user);
        if let std::collections::hash_map::Entry::Vacant(v) = self.index.entry(hash) {
            v.insert(tid);
            cell.index_key = Some(hash);
        }
        let tick = self.timers.tick(now);
        let mut cx = ctx!(self, tick, tid, out);
        let lifetime = if invite {
            cx.cfg.max_inv_lifetime
        } else {
            cx.cfg.max_noninv_lifetime
        };
        cx.arm(
            &mut cell.lifetime,
            Owner::Cell,
            TimerKind::MaxLifetime,
            lifetime,
        );
        if invite && cx.cfg.auto_inv_100 {
            let reason = cx.cfg.trying_reason;
            let spec = LocalReply {
                code: 100,
                reason,
                ..LocalReply::default()
            };
            // Built from the message in hand: no parse of the stored copy.
            let data =
                build::local_reply(msg, from, &spec, None, &cx.cfg.server_header, cx.scratch);
            if cell.server.send_provisional(100, data, &mut cx) {
                cx.stats.local_replies += 1;
            }
        }
        self.stats.created += 1;
        self.stats.active += 1;
        self.maybe_sweep();
        if let Some(e) = self.slots.get_mut(tid.slot as usize) {
            e.cell = Some(cell);
        }
        Ok(tid)
    }

    /// The branch parameter branch `index` of `tid` will carry (for a caller
    /// that builds the message before [`add_branch`](Self::add_branch)).
    pub fn branch_param(&self, tid: Tid, index: u8) -> BranchParam {
        self.codec.encode(&BranchId {
            core: self.core,
            slot: tid.slot,
            gen: tid.gen,
            index,
        })
    }

    /// Adds a branch (`t_relay`, also from a failure route): `build` gets the
    /// branch parameter for our Via and returns the request to send. The
    /// request is sent now and retransmitted per §17.1. Returns the branch index.
    pub fn add_branch(
        &mut self,
        tid: Tid,
        target: Target,
        build: impl FnOnce(&BranchParam) -> Bytes,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<u8, TmError> {
        let cell = self.cell(tid).ok_or(TmError::NoTransaction)?;
        if cell.canceled {
            return Err(TmError::Canceled);
        }
        if cell.expired {
            return Err(TmError::Expired);
        }
        if !cell.can_fork() {
            return Err(TmError::FinalSent);
        }
        let index = u8::try_from(cell.branches.len())
            .ok()
            .filter(|&i| i < self.cfg.max_branches)
            .ok_or(TmError::TooManyBranches)?;
        let param = self.branch_param(tid, index);
        let request = build(&param);
        let tick = self.timers.tick(now);
        self.with_cell(tid, tick, out, |cell, cx| {
            if cell.in_failure && cell.new_leg {
                cell.new_leg = false;
                cell.leg_start = index;
            }
            let invite = cell.server.is_invite();
            let b = Branch::start(index, target, request, invite, cx);
            // Most cells have one branch: grow one at a time (Vec would jump to 4).
            cell.branches.reserve_exact(1);
            cell.branches.push(b);
        })
        .ok_or(TmError::NoTransaction)?;
        Ok(index)
    }

    /// Sends a local response on the server transaction (`t_reply`). A final
    /// cancels the pending INVITE branches (§16.7 step 10).
    pub fn reply(
        &mut self,
        tid: Tid,
        spec: &LocalReply<'_>,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<(), TmError> {
        if !(100..=699).contains(&spec.code) {
            return Err(TmError::BadCode);
        }
        // One local final only (a relayed 2xx may follow another final; a local one may not).
        if self.cell(tid).is_some_and(|c| c.server.final_sent()) {
            return Err(TmError::FinalSent);
        }
        let tick = self.timers.tick(now);
        let sent = self
            .with_cell(tid, tick, out, |cell, cx| {
                let sent = cell.send_local_reply(spec, cx);
                if sent && spec.code >= 200 && cell.server.is_invite() {
                    cell.cancel_pending(None, Bytes::new(), cx);
                }
                sent
            })
            .ok_or(TmError::NoTransaction)?;
        if sent {
            Ok(())
        } else {
            Err(TmError::FinalSent)
        }
    }

    /// Cancels the pending branches (tmx `t_cancel_branches("all")`).
    pub fn cancel_branches(&mut self, tid: Tid, now: Instant, out: &mut Vec<Transmit>) -> bool {
        let tick = self.timers.tick(now);
        self.with_cell(tid, tick, out, |cell, cx| {
            cell.cancel_pending(None, Bytes::new(), cx)
        })
        .unwrap_or(false)
    }

    /// After the failure route ran (see [`ReplyAction::NeedsFailureRoute`]):
    /// if it neither added branches nor replied, the best response goes
    /// upstream now. Returns the code sent, if any.
    pub fn failure_done(&mut self, tid: Tid, now: Instant, out: &mut Vec<Transmit>) -> Option<u16> {
        let tick = self.timers.tick(now);
        self.with_cell(tid, tick, out, |cell, cx| {
            cell.in_failure = false;
            cell.new_leg = false;
            if cell.server.final_sent() || cell.any_pending() {
                return None;
            }
            Some(cell.send_best(cx))
        })
        .flatten()
    }

    /// Arms or disarms the failure hook (`t_on_failure`): when every branch
    /// has failed, report instead of replying. It disarms itself when reported.
    pub fn set_failure_hook(&mut self, tid: Tid, armed: bool) {
        if let Some(c) = self.cell_mut(tid) {
            c.failure_armed = armed;
        }
    }

    /// Ends a transaction now, whatever its state (`t_release`).
    pub fn release(&mut self, tid: Tid) -> bool {
        if !self.contains(tid) {
            return false;
        }
        self.free_slot(tid);
        true
    }

    // --- internals ---------------------------------------------------------------------------

    /// Drops stale timer entries once they outnumber the armed timers (lazy
    /// cancellation leaves one behind per disarmed timer: fr timers, lifetimes).
    fn maybe_sweep(&mut self) {
        if !self.timers.needs_sweep() {
            return;
        }
        let slots = &mut self.slots;
        self.timers.retain(|e| {
            slots
                .get_mut(e.slot as usize)
                .filter(|s| s.gen == e.gen)
                .and_then(|s| s.cell.as_mut())
                .and_then(|c| timers_of(c, e.owner))
                .is_some_and(|t| t.holds(e.kind, e.at))
        });
    }

    fn alloc(&mut self) -> Tid {
        if let Some(slot) = self.free.pop() {
            let gen = self.slots.get(slot as usize).map_or(0, |e| e.gen);
            return Tid { slot, gen };
        }
        let slot = self.slots.len() as u32;
        self.slots.push(SlabEntry { gen: 0, cell: None });
        Tid { slot, gen: 0 }
    }

    /// Runs `f` on a live transaction with a [`Ctx`], then frees it if it is over.
    fn with_cell<R>(
        &mut self,
        tid: Tid,
        tick: u64,
        out: &mut Vec<Transmit>,
        f: impl FnOnce(&mut Cell<U>, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let e = self.slots.get_mut(tid.slot as usize)?;
        if e.gen != tid.gen {
            return None;
        }
        let cell = e.cell.as_mut()?;
        let mut cx = ctx!(self, tick, tid, out);
        let r = f(cell, &mut cx);
        if cell.is_done() {
            self.free_slot(tid);
        }
        Some(r)
    }

    /// Frees a slot: disarms its timers, leaves the index, bumps the generation.
    fn free_slot(&mut self, tid: Tid) {
        let Some(e) = self.slots.get_mut(tid.slot as usize) else {
            return;
        };
        if e.gen != tid.gen {
            return;
        }
        let Some(cell) = e.cell.take() else {
            return;
        };
        e.gen = e.gen.wrapping_add(1);
        let mut armed = cell.server.timers.count() + cell.lifetime.count();
        for b in &cell.branches {
            armed += b.timers.count() + b.cancel_timers.count();
        }
        self.timers.disarmed(armed);
        if let Some(k) = cell.index_key {
            if self.index.get(&k) == Some(&tid) {
                self.index.remove(&k);
            }
        }
        self.free.push(tid.slot);
        self.stats.active = self.stats.active.saturating_sub(1);
        self.stats.freed += 1;
    }
}

impl<U: Default> TransactionTable<U> {
    /// Handles a CANCEL matched to `invite` (§16.10, Kamailio `t_relay` of a
    /// CANCEL): the CANCEL gets its own transaction answered 200 at once
    /// ("the element MUST immediately return a 200 (OK) response"); every
    /// pending branch is canceled (§9.1); with no branch yet the INVITE is
    /// answered 487. The downstream 487s then complete the INVITE as usual.
    pub fn cancel(
        &mut self,
        invite: Tid,
        cancel: &Message,
        from: &Source,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<CancelOutcome, TmError> {
        let cell = self.cell(invite).ok_or(TmError::NoTransaction)?;
        let pending = cell.any_pending() && !cell.server.final_sent();
        let cancel_tid = self
            .create_server(cancel, from, U::default(), now, out)
            .ok();
        let tick = self.timers.tick(now);
        if let Some(ct) = cancel_tid {
            let reason: &[u8] = if pending {
                b"canceling"
            } else {
                b"ok -- no more pending branches"
            };
            self.with_cell(ct, tick, out, |c, cx| c.send_local(200, reason, cx));
        }
        let reason = Bytes::from(build::header_lines(cancel, b"Reason"));
        let (pending, completion) = self
            .with_cell(invite, tick, out, |cell, cx| cell.on_cancel(reason, cx))
            .ok_or(TmError::NoTransaction)?;
        let event = match completion {
            Completion::FinalSent(code) => Some(TmEvent::FinalSent { tid: invite, code }),
            Completion::NeedsFailureRoute(code) => {
                Some(TmEvent::NeedsFailureRoute { tid: invite, code })
            }
            Completion::Open => None,
        };
        Ok(CancelOutcome {
            cancel: cancel_tid,
            pending,
            event,
        })
    }
}

/// The timer slots of one owner inside a cell.
fn timers_of<U>(cell: &mut Cell<U>, owner: Owner) -> Option<&mut Timers> {
    match owner {
        Owner::Server => Some(&mut cell.server.timers),
        Owner::Cell => Some(&mut cell.lifetime),
        Owner::Branch(i) => cell.branches.get_mut(usize::from(i)).map(|b| &mut b.timers),
        Owner::Cancel(i) => cell
            .branches
            .get_mut(usize::from(i))
            .map(|b| &mut b.cancel_timers),
    }
}
