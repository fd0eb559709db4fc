//! The slab: slots with generations, a free list, and the bookkeeping when
//! a transaction is freed (index entry, armed timers).
//!
//! The slots are stored in fixed chunks ([`Slots`]): a slot never moves, so
//! the slab grows by one chunk at a time without copying the transactions it
//! holds. A doubling `Vec` would copy every live transaction on each growth
//! and fault in a fresh region twice the size while the old one is freed —
//! the warm-up of a busy proxy, measured as page faults and `memcpy`.

use super::{SlabEntry, TransactionTable};
use crate::sip::Transmit;
use crate::tm::cell::Cell;
use crate::tm::ctx::Ctx;
use crate::tm::outcome::Tid;
use crate::tm::timer::{Owner, Timers};

/// Slots per chunk: 512 transactions, a few hundred KiB, touched as used.
const CHUNK: usize = 512;

/// The slab's slots in chunks of [`CHUNK`] that never move.
#[derive(Debug)]
pub(super) struct Slots<U> {
    chunks: Vec<Vec<SlabEntry<U>>>,
    len: usize,
}

impl<U> Slots<U> {
    pub fn new() -> Slots<U> {
        Slots {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Slots made so far (live or free).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn get(&self, slot: u32) -> Option<&SlabEntry<U>> {
        let i = slot as usize;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut SlabEntry<U>> {
        let i = slot as usize;
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// Adds a slot at the end (a new chunk when the last one is full).
    fn push(&mut self, e: SlabEntry<U>) {
        if self.len % CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(e);
            self.len += 1;
        }
    }
}

impl<U> TransactionTable<U> {
    pub(super) fn alloc(&mut self) -> Tid {
        if let Some(slot) = self.free.pop() {
            let gen = self.slots.get(slot).map_or(0, |e| e.gen);
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
        let e = self.slots.get_mut(tid.slot)?;
        if e.gen != tid.gen {
            return None;
        }
        let cell = e.cell.as_mut()?;
        // A tuned transaction's settings (an Arc: no copy of the config).
        let own = cell.cfg.clone();
        let mut cx = ctx!(self, tick, tid, out, own.as_deref().unwrap_or(&self.cfg));
        let r = f(cell, &mut cx);
        if cell.is_done() && !self.finals.iter().any(|f| f.tid == tid) {
            self.free_slot(tid);
        }
        Some(r)
    }

    /// Frees a slot: disarms its timers, leaves the index, bumps the generation.
    pub(super) fn free_slot(&mut self, tid: Tid) {
        let Some(e) = self.slots.get_mut(tid.slot) else {
            return;
        };
        if e.gen != tid.gen {
            return;
        }
        let Some(cell) = e.cell.as_mut() else {
            return;
        };
        let queue = &mut self.timers;
        let mut cancel = |timers: &mut Timers| {
            for a in timers.take_all() {
                queue.cancel(a, tid.slot, tid.gen);
            }
        };
        cancel(&mut cell.server.timers);
        cancel(&mut cell.lifetime);
        for b in &mut cell.branches {
            cancel(&mut b.timers);
            cancel(&mut b.cancel_timers);
        }
        if let Some(k) = cell.index_key {
            if self.index.get(&k) == Some(&tid) {
                self.index.remove(&k);
            }
        }
        // Dropped in its slot: taking it out first would copy the whole cell.
        e.cell = None;
        e.gen = e.gen.wrapping_add(1);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Slots keep their place across chunk boundaries as the slab grows.
    #[test]
    fn slots_grow_by_chunks_without_moving() {
        let mut s: Slots<()> = Slots::new();
        assert!(s.get(0).is_none());
        for gen in 0..(2 * CHUNK as u32 + 3) {
            s.push(SlabEntry { gen, cell: None });
        }
        assert_eq!(s.len(), 2 * CHUNK + 3);
        let first = s.get(0).map(|e| e as *const SlabEntry<()>);
        for _ in 0..CHUNK {
            s.push(SlabEntry { gen: 0, cell: None });
        }
        assert_eq!(s.get(0).map(|e| e as *const SlabEntry<()>), first);
        for i in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 2] {
            assert_eq!(s.get(i as u32).map(|e| e.gen), Some(i as u32));
        }
        if let Some(e) = s.get_mut(CHUNK as u32) {
            e.gen = 99;
        }
        assert_eq!(s.get(CHUNK as u32).map(|e| e.gen), Some(99));
        assert!(s.get((3 * CHUNK + 3) as u32).is_none());
        assert!(s.get(u32::MAX).is_none());
    }
}
