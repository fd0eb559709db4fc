//! Timers as data (DESIGN.md, STYLE.md "quinn"): every armed timer is a
//! deadline stored in the transaction it belongs to, plus an entry in one
//! per-core hierarchical timer wheel (`wheel.rs`). Nothing sleeps; the runtime
//! asks [`TransactionTable::next_deadline`](super::TransactionTable::next_deadline)
//! and calls [`on_timer`](super::TransactionTable::on_timer) when it is due.
//!
//! Arming is O(1): the owner records the deadline with the handle of its
//! wheel entry (`Armed`). Cancelling is O(1) too and eager: disarming a
//! timer clears it in the transaction and unlinks its entry from the wheel,
//! so no stale entry waits for its deadline (about 7 of the 11 timers of a
//! call are disarmed before they fire) and the wheel holds exactly the armed
//! timers. Freeing a transaction cancels what it still had armed. An entry
//! that fires is checked against its owner (slot *and* generation, the very
//! entry) before it acts.
//!
//! Deadlines are whole milliseconds since the table's epoch ("ticks"), and
//! timers due at the same tick fire in arming order.
//! `TimerQueue::next_deadline` is O(1) and never later than the earliest
//! deadline: exact within the current 64 ms, else the start of the wheel slot
//! holding the earliest deadline (a wake-up that cascades that slot's
//! entries to lower levels, and moves the next deadline forward).

mod wheel;

use std::time::{Duration, Instant};

use wheel::{Handle, Wheel};

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

/// An armed timer as its owner records it: its deadline, and its entry in
/// the per-core wheel (to cancel it, or to know it when it fires).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Armed {
    pub at: u64,
    pub kind: TimerKind,
    pub handle: Handle,
}

/// The three timer slots of one owner (quinn's "enum indexing a fixed array of deadlines").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Timers([Option<Armed>; 3]);

impl Timers {
    pub fn get(&self, slot: Slot) -> Option<Armed> {
        self.0[slot as usize]
    }

    /// Clears a slot; returns what it held.
    pub fn take(&mut self, slot: Slot) -> Option<Armed> {
        self.0[slot as usize].take()
    }

    /// Sets a slot; returns what it held before.
    pub fn set(&mut self, armed: Armed) -> Option<Armed> {
        self.0[armed.kind.slot() as usize].replace(armed)
    }

    /// Whether this exact timer (kind, deadline and wheel entry) is armed.
    pub fn holds(&self, armed: Armed) -> bool {
        self.get(armed.kind.slot()) == Some(armed)
    }

    /// Number of armed slots.
    pub fn count(&self) -> usize {
        self.0.iter().filter(|a| a.is_some()).count()
    }

    /// Clears every slot; returns what they held.
    pub fn take_all(&mut self) -> impl Iterator<Item = Armed> {
        std::mem::take(&mut self.0).into_iter().flatten()
    }
}

/// Which timer of which transaction a wheel entry stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fire {
    pub slot: u32,
    pub gen: u32,
    pub kind: TimerKind,
    pub owner: Owner,
}

/// A timer that came due: when, which wheel entry, and whose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub at: u64,
    pub handle: Handle,
    pub slot: u32,
    pub gen: u32,
    pub kind: TimerKind,
    pub owner: Owner,
}

impl Entry {
    /// The record its owner holds while it is armed.
    pub fn armed(&self) -> Armed {
        Armed {
            at: self.at,
            kind: self.kind,
            handle: self.handle,
        }
    }
}

/// The per-core timer wheel, and the clock arithmetic (ticks since an epoch).
#[derive(Debug)]
pub(crate) struct TimerQueue {
    epoch: Instant,
    wheel: Wheel<Fire>,
}

/// The latest deadline (about 34 years): a "never" configured as `Duration::MAX` lands here.
pub(crate) const MAX_TICK: u64 = 1 << 40;

impl TimerQueue {
    /// Bytes the queue holds per armed timer (one wheel node).
    pub const BYTES_PER_TIMER: usize = Wheel::<Fire>::BYTES_PER_ENTRY;

    pub fn new(epoch: Instant) -> TimerQueue {
        TimerQueue {
            epoch,
            wheel: Wheel::new(0),
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
        // Whole microseconds rounded up to milliseconds, without a 128-bit
        // division (`as_micros`): whole seconds are whole milliseconds.
        let ms = delay
            .as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(delay.subsec_micros().div_ceil(1000)));
        now.saturating_add(ms).min(MAX_TICK)
    }

    /// The instant of a tick.
    pub fn instant(&self, tick: u64) -> Instant {
        let at = Duration::from_millis(tick.min(MAX_TICK));
        self.epoch.checked_add(at).unwrap_or(self.epoch)
    }

    /// Arms `fire` at tick `at`; the owner records the returned [`Armed`].
    pub fn arm(&mut self, at: u64, fire: Fire) -> Armed {
        Armed {
            at,
            kind: fire.kind,
            handle: self.wheel.insert(at, fire),
        }
    }

    /// Removes the entry of a timer transaction `slot`/`gen` had armed (and
    /// has just cleared from its owner).
    pub fn cancel(&mut self, armed: Armed, slot: u32, gen: u32) {
        let removed = self.wheel.cancel(armed.handle, |at, f| {
            at == armed.at && f.kind == armed.kind && f.slot == slot && f.gen == gen
        });
        debug_assert!(removed, "an armed timer has its wheel entry");
    }

    /// Removes the earliest timer if it is due at `tick`.
    pub fn pop_due(&mut self, tick: u64) -> Option<Entry> {
        let (handle, at, f) = self.wheel.pop_due(tick)?;
        Some(Entry {
            at,
            handle,
            slot: f.slot,
            gen: f.gen,
            kind: f.kind,
            owner: f.owner,
        })
    }

    /// When to call [`pop_due`](Self::pop_due) next (see the module
    /// documentation): never after the earliest deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.wheel.next_wake()
    }

    /// Timers armed (each one wheel entry: cancelling removes it at once).
    pub fn len(&self) -> usize {
        self.wheel.len()
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
            q.arm(
                at,
                Fire {
                    slot,
                    gen: 0,
                    kind: TimerKind::G,
                    owner: Owner::Server,
                },
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
    fn a_cancelled_timer_leaves_the_queue_at_once() {
        let epoch = crate::tm::tests::test_epoch();
        let mut q = TimerQueue::new(epoch);
        let fire = |slot| Fire {
            slot,
            gen: 3,
            kind: TimerKind::B,
            owner: Owner::Branch(0),
        };
        let a = q.arm(32_000, fire(1));
        let b = q.arm(500, fire(2));
        assert_eq!(q.len(), 2);
        // Level 1 (64 ms slots): the start of 500's slot.
        assert_eq!(q.next_deadline(), Some(448));
        q.cancel(b, 2, 3);
        assert_eq!(q.len(), 1);
        assert!(q.next_deadline().is_some_and(|d| d <= 32_000));
        let e = q.pop_due(40_000).unwrap();
        assert_eq!((e.slot, e.armed()), (1, a));
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn ticks_round_delays_up_and_now_down() {
        let epoch = crate::tm::tests::test_epoch();
        let q = TimerQueue::new(epoch);
        assert_eq!(q.tick(epoch + Duration::from_micros(1999)), 1);
        assert_eq!(TimerQueue::after(1, Duration::from_micros(1001)), 3);
        assert_eq!(TimerQueue::after(1, Duration::MAX), MAX_TICK);
        assert_eq!(TimerQueue::after(0, Duration::from_nanos(999)), 0);
        assert_eq!(TimerQueue::after(0, Duration::new(2, 1_000)), 2001);
        assert_eq!(TimerQueue::after(0, Duration::new(2, 999_999_999)), 3000);
        assert_eq!(TimerQueue::after(5, Duration::from_millis(500)), 505);
        assert!(q.instant(u64::MAX) > epoch);
        assert_eq!(q.tick(epoch - Duration::from_millis(5)), 0);
        assert_eq!(q.instant(1500), epoch + Duration::from_millis(1500));
        assert_eq!(q.tick(epoch + Duration::new(7, 999_999_999)), 7999);
        assert_eq!(q.tick(epoch + Duration::new(3600, 1_000_000)), 3_600_001);
    }

    #[test]
    fn slots_hold_one_timer_each() {
        let armed = |at, kind, handle| Armed { at, kind, handle };
        let mut t = Timers::default();
        assert!(t.set(armed(10, TimerKind::B, 0)).is_none());
        assert_eq!(
            t.set(armed(20, TimerKind::FrTimer, 1)),
            Some(armed(10, TimerKind::B, 0))
        );
        assert!(!t.holds(armed(10, TimerKind::B, 0)));
        assert!(t.holds(armed(20, TimerKind::FrTimer, 1)));
        assert!(!t.holds(armed(20, TimerKind::FrTimer, 2)), "another entry");
        assert_eq!(t.count(), 1);
        assert!(t.set(armed(5, TimerKind::A, 2)).is_none());
        assert_eq!(t.take_all().count(), 2);
        assert_eq!(t.count(), 0);
    }
}
