//! Timers as data (DESIGN.md, STYLE.md "quinn"): every armed timer is a
//! deadline stored in the transaction it belongs to, plus an entry in one
//! per-core deadline-ordered heap. Nothing sleeps; the runtime asks
//! [`TransactionTable::next_deadline`](super::TransactionTable::next_deadline)
//! and calls [`on_timer`](super::TransactionTable::on_timer) when it is due.
//!
//! Cancellation is lazy: disarming a timer clears the deadline in the
//! transaction and leaves the heap entry behind. A popped entry fires only if
//! its transaction (slot *and* generation) still exists and still holds that
//! very deadline for that very timer; otherwise it is dropped. Stale entries
//! are swept when they outnumber the armed timers (see `TimerQueue::needs_sweep`).
//!
//! Deadlines are whole milliseconds since the table's epoch ("ticks"), so an
//! entry is small (24 bytes) and equal deadlines pop in arming order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// The timers of RFC 3261 §17 (and RFC 6026), plus Kamailio's tm timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimerKind {
    /// Client INVITE: retransmit the request (UDP), interval doubling from T1.
    A,
    /// Client INVITE: no final response after 64·T1 (also the wait for a final after a CANCEL, §9.1).
    B,
    /// Client INVITE, Completed: absorb retransmitted finals (UDP, 32 s).
    D,
    /// Client non-INVITE (and our CANCELs): retransmit the request (UDP), doubling up to T2.
    E,
    /// Client non-INVITE (and our CANCELs): no final response after 64·T1.
    F,
    /// Client non-INVITE, Completed: absorb retransmitted responses (UDP, T4).
    K,
    /// Server INVITE, Completed: retransmit the final response (UDP), doubling up to T2.
    G,
    /// Server INVITE, Completed: give up waiting for the ACK after 64·T1.
    H,
    /// Server INVITE, Confirmed: absorb retransmitted ACKs (UDP, T4).
    I,
    /// Server non-INVITE, Completed: absorb retransmitted requests (UDP, 64·T1).
    J,
    /// Server INVITE, Accepted (RFC 6026 §8.7): absorb retransmitted INVITEs for 64·T1.
    L,
    /// Client INVITE, Accepted (RFC 6026 §8.4): relay retransmitted 2xx for 64·T1.
    M,
    /// Kamailio `fr_timer`: no final reply on a branch (before any 1xx for INVITE).
    FrTimer,
    /// Kamailio `fr_inv_timer`: no final reply on an INVITE branch after a 1xx (RFC Timer C).
    FrInvTimer,
    /// Kamailio `max_inv_lifetime` / `max_noninv_lifetime`.
    MaxLifetime,
}

/// Which part of a transaction a timer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The server transaction (G, H, I, J, L).
    Server,
    /// The transaction as a whole (max lifetime).
    Cell,
    /// The client transaction of branch `n` (A, B, D, E, F, K, M, fr timers).
    Branch(u8),
    /// The CANCEL client transaction of branch `n` (E, F).
    Cancel(u8),
}

/// The storage slot of a timer within its owner: each owner runs at most one
/// timer per slot at a time, so arming a slot replaces what it held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Retransmit = 0,
    Timeout = 1,
    Wait = 2,
}

impl TimerKind {
    pub(crate) fn slot(self) -> Slot {
        match self {
            TimerKind::A | TimerKind::E | TimerKind::G => Slot::Retransmit,
            TimerKind::B
            | TimerKind::F
            | TimerKind::H
            | TimerKind::FrTimer
            | TimerKind::FrInvTimer
            | TimerKind::MaxLifetime => Slot::Timeout,
            TimerKind::D
            | TimerKind::K
            | TimerKind::I
            | TimerKind::J
            | TimerKind::L
            | TimerKind::M => Slot::Wait,
        }
    }
}

/// An armed timer as its owner records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Armed {
    pub at: u64,
    pub kind: TimerKind,
}

/// The three timer slots of one owner (quinn's "enum indexing a fixed array of deadlines").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Timers([Option<Armed>; 3]);

impl Timers {
    pub fn get(&self, slot: Slot) -> Option<Armed> {
        self.0[slot as usize]
    }

    /// Clears a slot; returns whether it was armed.
    pub fn clear(&mut self, slot: Slot) -> bool {
        self.0[slot as usize].take().is_some()
    }

    /// Sets a slot; returns whether it was armed before.
    pub fn set(&mut self, armed: Armed) -> bool {
        self.0[armed.kind.slot() as usize].replace(armed).is_some()
    }

    /// Whether this exact timer (kind and deadline) is armed.
    pub fn holds(&self, kind: TimerKind, at: u64) -> bool {
        self.get(kind.slot()) == Some(Armed { at, kind })
    }

    /// Number of armed slots.
    pub fn count(&self) -> usize {
        self.0.iter().filter(|a| a.is_some()).count()
    }

    /// Clears every slot; returns how many were armed.
    pub fn clear_all(&mut self) -> usize {
        let n = self.count();
        self.0 = [None; 3];
        n
    }
}

/// One heap entry: when, which transaction (slot + generation), which timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub at: u64,
    seq: u32,
    pub slot: u32,
    pub gen: u32,
    pub kind: TimerKind,
    pub owner: Owner,
}

impl Ord for Entry {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest deadline
    /// first, and among equal deadlines the one armed first (the sequence
    /// number wraps after 2³² arms: at worst two equal deadlines swap once).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The per-core deadline heap, and the clock arithmetic (ticks since an epoch).
#[derive(Debug)]
pub(crate) struct TimerQueue {
    epoch: Instant,
    heap: BinaryHeap<Entry>,
    seq: u32,
    /// Timers currently armed in transactions (entries that will fire).
    armed: usize,
}

/// The latest deadline (about 34 years): a "never" configured as `Duration::MAX` lands here.
pub(crate) const MAX_TICK: u64 = 1 << 40;

/// Sweep stale entries once they exceed the armed timers by this many (and by 2×).
const SWEEP_SLACK: usize = 4096;

impl TimerQueue {
    pub fn new(epoch: Instant) -> TimerQueue {
        TimerQueue {
            epoch,
            heap: BinaryHeap::new(),
            seq: 0,
            armed: 0,
        }
    }

    /// `now` as a tick (rounded down: a deadline fires once it is reached).
    pub fn tick(&self, now: Instant) -> u64 {
        // Whole milliseconds without `as_millis` (a 128-bit division).
        let d = now.saturating_duration_since(self.epoch);
        d.as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(d.subsec_millis()))
    }

    /// The deadline `delay` after tick `now` (rounded up to whole milliseconds,
    /// and to at most [`MAX_TICK`] so that it stays a valid `Instant`).
    pub fn after(now: u64, delay: Duration) -> u64 {
        let ms = delay.as_micros().div_ceil(1000);
        now.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX))
            .min(MAX_TICK)
    }

    /// The instant of a tick.
    pub fn instant(&self, tick: u64) -> Instant {
        let at = Duration::from_millis(tick.min(MAX_TICK));
        self.epoch.checked_add(at).unwrap_or(self.epoch)
    }

    /// Pushes an entry for a timer its owner has just armed. `replaced` says
    /// whether the owner's slot already held one (then the count is unchanged).
    pub fn push(&mut self, slot: u32, gen: u32, owner: Owner, armed: Armed, replaced: bool) {
        self.seq = self.seq.wrapping_add(1);
        if !replaced {
            self.armed += 1;
        }
        self.heap.push(Entry {
            at: armed.at,
            seq: self.seq,
            slot,
            gen,
            kind: armed.kind,
            owner,
        });
    }

    /// Records that `n` armed timers were disarmed (their entries become stale).
    pub fn disarmed(&mut self, n: usize) {
        self.armed = self.armed.saturating_sub(n);
    }

    /// The earliest entry, stale or not.
    pub fn peek(&self) -> Option<&Entry> {
        self.heap.peek()
    }

    /// Removes the earliest entry if it is due at `tick`.
    pub fn pop_due(&mut self, tick: u64) -> Option<Entry> {
        if self.heap.peek()?.at <= tick {
            self.heap.pop()
        } else {
            None
        }
    }

    /// Removes the earliest entry (it was found stale).
    pub fn pop(&mut self) -> Option<Entry> {
        self.heap.pop()
    }

    /// Whether stale entries have piled up enough to be worth a sweep.
    pub fn needs_sweep(&self) -> bool {
        self.heap.len() > SWEEP_SLACK + 2 * self.armed
    }

    /// Keeps only the entries `live` accepts.
    pub fn retain(&mut self, live: impl FnMut(&Entry) -> bool) {
        self.heap.retain(live);
    }

    /// Entries in the heap (armed and stale).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Timers currently armed.
    pub fn armed(&self) -> usize {
        self.armed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_arming_order() {
        let epoch = crate::tm::tests::test_epoch();
        let mut q = TimerQueue::new(epoch);
        let arm = |q: &mut TimerQueue, at, slot| {
            q.push(
                slot,
                0,
                Owner::Server,
                Armed {
                    at,
                    kind: TimerKind::G,
                },
                false,
            )
        };
        arm(&mut q, 500, 1);
        arm(&mut q, 100, 2);
        arm(&mut q, 500, 3);
        arm(&mut q, 100, 4);
        assert!(q.pop_due(99).is_none());
        let order: Vec<u32> = std::iter::from_fn(|| q.pop_due(1000))
            .map(|e| e.slot)
            .collect();
        assert_eq!(order, [2, 4, 1, 3]);
    }

    #[test]
    fn ticks_round_delays_up_and_now_down() {
        let epoch = crate::tm::tests::test_epoch();
        let q = TimerQueue::new(epoch);
        assert_eq!(q.tick(epoch + Duration::from_micros(1999)), 1);
        assert_eq!(TimerQueue::after(1, Duration::from_micros(1001)), 3);
        assert_eq!(TimerQueue::after(1, Duration::MAX), MAX_TICK);
        assert!(q.instant(u64::MAX) > epoch);
        assert_eq!(q.tick(epoch - Duration::from_millis(5)), 0);
        assert_eq!(q.instant(1500), epoch + Duration::from_millis(1500));
        assert_eq!(q.tick(epoch + Duration::new(7, 999_999_999)), 7999);
        assert_eq!(q.tick(epoch + Duration::new(3600, 1_000_000)), 3_600_001);
    }

    #[test]
    fn slots_hold_one_timer_each() {
        let mut t = Timers::default();
        assert!(!t.set(Armed {
            at: 10,
            kind: TimerKind::B
        }));
        assert!(t.set(Armed {
            at: 20,
            kind: TimerKind::FrTimer
        }));
        assert!(!t.holds(TimerKind::B, 10));
        assert!(t.holds(TimerKind::FrTimer, 20));
        assert_eq!(t.count(), 1);
        assert!(!t.set(Armed {
            at: 5,
            kind: TimerKind::A
        }));
        assert_eq!(t.clear_all(), 2);
    }
}
