//! The slab: slots with generations, a free list, and the bookkeeping when
//! a transaction is freed (index entry, armed timers).

use super::{SlabEntry, TransactionTable};
use crate::sip::Transmit;
use crate::tm::cell::Cell;
use crate::tm::ctx::Ctx;
use crate::tm::outcome::Tid;
use crate::tm::timer::{Owner, Timers};

impl<U> TransactionTable<U> {
    /// Drops stale timer entries once they outnumber the armed timers (lazy
    /// cancellation leaves one behind per disarmed timer: fr timers, lifetimes).
    pub(super) fn maybe_sweep(&mut self) {
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

    pub(super) fn alloc(&mut self) -> Tid {
        if let Some(slot) = self.free.pop() {
            let gen = self.slots.get(slot as usize).map_or(0, |e| e.gen);
            return Tid { slot, gen };
        }
        let slot = self.slots.len() as u32;
        self.slots.push(SlabEntry { gen: 0, cell: None });
        Tid { slot, gen: 0 }
    }

    /// Runs `f` on a live transaction with a [`Ctx`], then frees it if it is over.
    pub(super) fn with_cell<R>(
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
        if cell.is_done() && !self.finals.iter().any(|f| f.tid == tid) {
            self.free_slot(tid);
        }
        Some(r)
    }

    /// Frees a slot: disarms its timers, leaves the index, bumps the generation.
    pub(super) fn free_slot(&mut self, tid: Tid) {
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

/// The timer slots of one owner inside a cell.
pub(super) fn timers_of<U>(cell: &mut Cell<U>, owner: Owner) -> Option<&mut Timers> {
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
