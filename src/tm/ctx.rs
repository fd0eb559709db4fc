//! [`Ctx`]: what a state machine needs while it handles one input — the
//! configuration, the current tick, the timer wheel, the output queue, the
//! statistics — for the transaction (slot + generation) being worked on.

use std::time::Duration;

use bytes::Bytes;

use super::build::Target;
use super::config::TmConfig;
use super::outcome::{FinalSent, Tid};
use super::stats::TmStats;
use super::table::siphash::SipKey;
use super::timer::{Fire, Owner, Slot, TimerKind, TimerQueue, Timers};
use crate::sip::Transmit;

pub(crate) struct Ctx<'a> {
    pub cfg: &'a TmConfig,
    /// The current tick (ms since the table's epoch).
    pub now: u64,
    pub timers: &'a mut TimerQueue,
    pub out: &'a mut Vec<Transmit>,
    pub stats: &'a mut TmStats,
    pub scratch: &'a mut Vec<u8>,
    /// The first part of our To tags (`<32 hex>`; the cell adds `-<8 hex>`,
    /// [`Ctx::tag_suffix`]).
    pub tag_prefix: &'a [u8],
    /// The table's secret key, for the To tag of this transaction.
    pub tag_key: &'a SipKey,
    /// The transaction being worked on.
    pub slot: u32,
    pub gen: u32,
    /// Where final responses sent upstream are recorded, when the table
    /// reports them ([`TransactionTable::report_finals`](super::TransactionTable::report_finals)).
    pub finals: Option<&'a mut Vec<FinalSent>>,
}

impl Ctx<'_> {
    /// The last part of the To tag of this transaction's local replies: the
    /// keyed hash of its slot and generation (unique while it lives, and
    /// not guessable from outside), computed when a reply needs it rather
    /// than for every transaction.
    pub fn tag_suffix(&self) -> [u8; 8] {
        let cell = u128::from(self.slot) << 32 | u128::from(self.gen);
        crate::tm::branch_id::hex8(self.tag_key.hash_u128(cell) as u32)
    }

    /// Arms `kind` to fire `delay` from now in `timers` (replacing what its slot held).
    pub fn arm(&mut self, timers: &mut Timers, owner: Owner, kind: TimerKind, delay: Duration) {
        let at = TimerQueue::after(self.now, delay);
        if let Some(old) = timers.take(kind.slot()) {
            self.timers.cancel(old, self.slot, self.gen);
        }
        let fire = Fire {
            slot: self.slot,
            gen: self.gen,
            kind,
            owner,
        };
        timers.set(self.timers.arm(at, fire));
    }

    /// Arms `kind` unless its slot already holds an earlier deadline.
    pub fn arm_no_later(
        &mut self,
        timers: &mut Timers,
        owner: Owner,
        kind: TimerKind,
        delay: Duration,
    ) {
        let at = TimerQueue::after(self.now, delay);
        if timers.get(kind.slot()).is_some_and(|a| a.at <= at) {
            return;
        }
        self.arm(timers, owner, kind, delay);
    }

    /// Disarms one slot.
    pub fn disarm(&mut self, timers: &mut Timers, slot: Slot) {
        if let Some(a) = timers.take(slot) {
            self.timers.cancel(a, self.slot, self.gen);
        }
    }

    /// Disarms every slot of `timers`.
    pub fn disarm_all(&mut self, timers: &mut Timers) {
        for a in timers.take_all() {
            self.timers.cancel(a, self.slot, self.gen);
        }
    }

    /// Records that the final response `data` (status `code`) went upstream.
    pub fn final_sent(&mut self, code: u16, data: &Bytes) {
        if let Some(finals) = self.finals.as_deref_mut() {
            finals.push(FinalSent {
                tid: Tid {
                    slot: self.slot,
                    gen: self.gen,
                },
                code,
                response: data.clone(),
            });
        }
    }

    /// Queues a transmission.
    pub fn send(&mut self, target: &Target, data: Bytes) {
        self.out.push(target.transmit(data));
    }
}
