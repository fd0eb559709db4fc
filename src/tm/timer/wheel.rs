//! A hierarchical timer wheel (Varghese & Lauck's scheme 7, as tokio and the
//! Linux kernel use it) with whole-tick deadlines and O(1) arm and cancel.
//!
//! Level `L` has 64 slots of 64^L ticks each. An entry sits at the level of
//! the highest 6-bit digit in which its deadline differs from `elapsed`, in
//! the slot of that digit: level 0 holds the deadlines of the current 64-tick
//! block (one tick per slot), level 1 those of the current 4,096-tick block
//! (64 ticks per slot), and so on; 11 levels cover every `u64`, so no
//! deadline needs an overflow list. When `elapsed` reaches the start of an
//! upper slot, its entries are re-placed one level down or more ("cascade"):
//! an entry moves at most 10 times however far its deadline is, and a clock
//! that jumps far ahead skips empty slots through one occupancy bitmap per
//! level, never tick by tick.
//!
//! Entries are nodes of one `Vec` (reused through a free list), linked into
//! one doubly linked list per slot: arming appends, cancelling unlinks, and a
//! cascade walks a slot's list in order and appends each entry to its new
//! list. So the entries of one tick stay in arming order (an entry armed
//! earlier was cascaded to that tick's list before a later one could be
//! appended there, since placement follows `elapsed`).
//!
//! Deadlines already behind `elapsed` (a caller's clock that went back) go to
//! the `due` list, kept ordered by deadline then arming, ahead of the wheel.

/// Bits of a deadline each level resolves.
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// 11 × 6 bits ≥ 64: every `u64` deadline has a level.
const LEVELS: usize = 11;
/// No node (end of a list, empty free list).
const NIL: u32 = u32::MAX;
/// `Node::list` of a node on the free list.
const FREE: u16 = u16::MAX;
/// `Node::list` of a node on the due list.
const DUE: u16 = u16::MAX - 1;

/// The ends of one doubly linked list of nodes.
#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List {
    head: NIL,
    tail: NIL,
};

#[derive(Clone, Copy, Debug)]
struct Node<T> {
    at: u64,
    prev: u32,
    next: u32,
    /// Which list holds it: `level * SLOTS + slot`, [`DUE`] or [`FREE`].
    list: u16,
    value: T,
}

/// A handle on an armed entry, valid until it fires or is cancelled (then
/// its node may be reused: [`Wheel::cancel`] checks what it removes).
pub(crate) type Handle = u32;

#[derive(Debug)]
pub(crate) struct Wheel<T> {
    /// The wheel's clock: entries in the slots are placed relative to it
    /// and due at or after it; those of the due list at or before it.
    elapsed: u64,
    nodes: Vec<Node<T>>,
    free: u32,
    live: usize,
    /// `LEVELS × SLOTS` lists, level-major.
    slots: Box<[List]>,
    /// Per level, one bit per non-empty slot.
    occupied: [u64; LEVELS],
    due: List,
}

impl<T: Copy> Wheel<T> {
    /// Bytes of one entry's node.
    pub const BYTES_PER_ENTRY: usize = std::mem::size_of::<Node<T>>();

    /// An empty wheel whose clock reads `elapsed`.
    pub fn new(elapsed: u64) -> Wheel<T> {
        Wheel {
            elapsed,
            nodes: Vec::new(),
            free: NIL,
            live: 0,
            slots: vec![EMPTY; LEVELS * SLOTS].into_boxed_slice(),
            occupied: [0; LEVELS],
            due: EMPTY,
        }
    }

    /// Entries armed.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Arms `value` to be handed out by [`pop_due`](Self::pop_due) once the
    /// clock reaches `at`.
    pub fn insert(&mut self, at: u64, value: T) -> Handle {
        let node = Node {
            at,
            prev: NIL,
            next: NIL,
            list: FREE,
            value,
        };
        let i = if self.free == NIL {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        } else {
            let i = self.free;
            self.free = self.nodes[i as usize].next;
            self.nodes[i as usize] = node;
            i
        };
        self.place(i);
        self.live += 1;
        i
    }

    /// Removes the entry `h` if it is armed and `is` accepts its deadline and
    /// value (a handle whose node was reused for another entry is refused);
    /// returns whether it did.
    pub fn cancel(&mut self, h: Handle, is: impl FnOnce(u64, &T) -> bool) -> bool {
        let Some(n) = self.nodes.get(h as usize) else {
            return false;
        };
        if n.list == FREE || !is(n.at, &n.value) {
            return false;
        }
        self.unlink(h);
        self.release(h);
        true
    }

    /// When to call [`pop_due`](Self::pop_due) next, in O(1): the earliest
    /// deadline when it is in the due list or on level 0 (the current
    /// 64-tick block), else the first tick of the earliest upper slot, where
    /// its entries cascade — never later than the earliest deadline, earlier
    /// by less than that slot's span, and `pop_due` at that tick moves the
    /// wake-up forward (no busy loop): at most one early wake-up per level.
    pub fn next_wake(&self) -> Option<u64> {
        if self.due.head != NIL {
            return Some(self.nodes[self.due.head as usize].at);
        }
        let (level, slot) = self.first_occupied()?;
        Some(self.slot_start(level, slot))
    }

    /// Removes and returns the earliest entry (its handle, deadline and
    /// value) if its deadline is at or before `now`: entries come out by
    /// deadline, then in arming order.
    pub fn pop_due(&mut self, now: u64) -> Option<(Handle, u64, T)> {
        loop {
            if self.due.head != NIL {
                let i = self.due.head;
                let n = self.nodes[i as usize];
                if n.at > now {
                    return None;
                }
                self.unlink(i);
                self.release(i);
                return Some((i, n.at, n.value));
            }
            let Some((level, slot)) = self.first_occupied() else {
                self.elapsed = self.elapsed.max(now);
                return None;
            };
            let start = self.slot_start(level, slot);
            if start > now {
                // Every entry stays at its level: the clock stays within the
                // block of each of their slots, before the slot.
                self.elapsed = self.elapsed.max(now);
                return None;
            }
            self.elapsed = start;
            let id = level * SLOTS + slot;
            let list = std::mem::replace(&mut self.slots[id], EMPTY);
            self.occupied[level] &= !(1 << slot);
            let mut i = list.head;
            if level == 0 {
                // One tick: already in arming order, due as a whole.
                while i != NIL {
                    let n = &mut self.nodes[i as usize];
                    n.list = DUE;
                    i = n.next;
                }
                self.due = list;
            } else {
                while i != NIL {
                    let next = self.nodes[i as usize].next;
                    self.place(i);
                    i = next;
                }
            }
        }
    }

    /// Links the unlinked node `i` where its deadline belongs.
    fn place(&mut self, i: u32) {
        let at = self.nodes[i as usize].at;
        if at < self.elapsed {
            self.insert_due(i);
            return;
        }
        // The highest 6-bit digit in which `at` differs from the clock.
        let level = (((at ^ self.elapsed) | (SLOTS as u64 - 1)).ilog2() / SLOT_BITS) as usize;
        let slot = ((at >> (level as u32 * SLOT_BITS)) & (SLOTS as u64 - 1)) as usize;
        let id = level * SLOTS + slot;
        push_back(&mut self.nodes, &mut self.slots[id], id as u16, i);
        self.occupied[level] |= 1 << slot;
    }

    /// Links `i` into the due list after every entry due no later.
    fn insert_due(&mut self, i: u32) {
        let at = self.nodes[i as usize].at;
        let mut after = self.due.tail;
        while after != NIL && self.nodes[after as usize].at > at {
            after = self.nodes[after as usize].prev;
        }
        let next = if after == NIL {
            self.due.head
        } else {
            self.nodes[after as usize].next
        };
        let n = &mut self.nodes[i as usize];
        n.prev = after;
        n.next = next;
        n.list = DUE;
        if after == NIL {
            self.due.head = i;
        } else {
            self.nodes[after as usize].next = i;
        }
        if next == NIL {
            self.due.tail = i;
        } else {
            self.nodes[next as usize].prev = i;
        }
    }

    /// Unlinks the linked node `i` from its list.
    fn unlink(&mut self, i: u32) {
        let n = self.nodes[i as usize];
        let list = if n.list == DUE {
            &mut self.due
        } else {
            &mut self.slots[usize::from(n.list)]
        };
        if n.prev == NIL {
            list.head = n.next;
        } else {
            self.nodes[n.prev as usize].next = n.next;
        }
        if n.next == NIL {
            list.tail = n.prev;
        } else {
            self.nodes[n.next as usize].prev = n.prev;
        }
        if list.head == NIL && n.list != DUE {
            let (level, slot) = (usize::from(n.list) / SLOTS, usize::from(n.list) % SLOTS);
            self.occupied[level] &= !(1 << slot);
        }
    }

    /// Puts the unlinked node `i` on the free list.
    fn release(&mut self, i: u32) {
        let n = &mut self.nodes[i as usize];
        n.list = FREE;
        n.next = self.free;
        self.free = i;
        self.live -= 1;
    }

    /// The lowest non-empty level and its first non-empty slot: the earliest
    /// deadlines are there (a level's slots ahead of the clock's digit only).
    fn first_occupied(&self) -> Option<(usize, usize)> {
        let level = self.occupied.iter().position(|&bits| bits != 0)?;
        Some((level, self.occupied[level].trailing_zeros() as usize))
    }

    /// The first tick of `slot` at `level` in the clock's current block.
    fn slot_start(&self, level: usize, slot: usize) -> u64 {
        let shift = level as u32 * SLOT_BITS;
        let block = shift + SLOT_BITS;
        let high = if block >= u64::BITS {
            0
        } else {
            self.elapsed >> block << block
        };
        high | (slot as u64) << shift
    }

    /// The earliest deadline armed, exactly (scans an upper slot).
    #[cfg(test)]
    pub fn next_at(&self) -> Option<u64> {
        if self.due.head != NIL {
            return Some(self.nodes[self.due.head as usize].at);
        }
        let (level, slot) = self.first_occupied()?;
        if level == 0 {
            return Some(self.slot_start(0, slot));
        }
        // An upper slot spans many ticks: its earliest entry is the answer.
        let mut i = self.slots[level * SLOTS + slot].head;
        let mut min = u64::MAX;
        while i != NIL {
            let n = &self.nodes[i as usize];
            min = min.min(n.at);
            i = n.next;
        }
        Some(min)
    }
}

fn push_back<T>(nodes: &mut [Node<T>], list: &mut List, id: u16, i: u32) {
    let n = &mut nodes[i as usize];
    n.prev = list.tail;
    n.next = NIL;
    n.list = id;
    if list.tail == NIL {
        list.head = i;
    } else {
        nodes[list.tail as usize].next = i;
    }
    list.tail = i;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn drain(w: &mut Wheel<u32>, now: u64) -> Vec<(u64, u32)> {
        std::iter::from_fn(|| w.pop_due(now).map(|(_, at, v)| (at, v))).collect()
    }

    #[test]
    fn same_tick_fires_in_arming_order_across_cascades() {
        let mut w = Wheel::new(0);
        // Armed far ahead (level 2), then again nearer as the clock moves (levels 1, 0).
        w.insert(5000, 1);
        w.insert(4999, 0);
        assert!(w.pop_due(4100).is_none());
        w.insert(5000, 2);
        assert!(w.pop_due(4990).is_none());
        w.insert(5000, 3);
        assert_eq!(w.next_at(), Some(4999));
        assert_eq!(
            drain(&mut w, 5000),
            [(4999, 0), (5000, 1), (5000, 2), (5000, 3)]
        );
        assert_eq!(w.next_at(), None);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn far_deadlines_cascade_down_every_level() {
        let far = [1u64 << 40, u64::MAX, (1 << 40) + 1, 70_000, 64, 63, 1];
        let mut w = Wheel::new(0);
        for (i, &at) in far.iter().enumerate() {
            w.insert(at, i as u32);
        }
        let mut sorted: Vec<(u64, u32)> = far
            .iter()
            .enumerate()
            .map(|(i, &a)| (a, i as u32))
            .collect();
        sorted.sort();
        let mut fired = Vec::new();
        let mut wakes = 0;
        // Wake at each `next_wake`, as the runtime does.
        while let Some(wake) = w.next_wake() {
            wakes += 1;
            let at = w.next_at().unwrap();
            assert!(wake <= at, "never late: wake {wake}, deadline {at}");
            assert!(fired.last().is_none_or(|&(last, _)| wake >= last));
            fired.extend(drain(&mut w, wake));
            assert!(w.next_wake().is_none_or(|next| next > wake), "no busy loop");
        }
        assert_eq!(fired, sorted);
        assert!(wakes <= 7 * 11, "{wakes} wake-ups");
    }

    #[test]
    fn a_long_stall_fires_everything_in_order_without_walking_ticks() {
        let mut w = Wheel::new(0);
        let mut expect = Vec::new();
        for i in 0..1000u32 {
            let at = u64::from(i) * 7919 % 100_000_000;
            w.insert(at, i);
            expect.push((at, i));
        }
        expect.sort();
        // One call: 100 million ticks skipped through the bitmaps.
        assert_eq!(drain(&mut w, 200_000_000), expect);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn cancel_removes_at_once_and_refuses_a_reused_handle() {
        let mut w = Wheel::new(0);
        let a = w.insert(100, 1);
        let b = w.insert(100, 2);
        assert_eq!(w.next_at(), Some(100));
        assert!(w.cancel(a, |at, v| at == 100 && *v == 1));
        assert!(!w.cancel(a, |_, _| true), "already gone");
        assert_eq!(w.len(), 1);
        assert!(!w.cancel(b, |_, v| *v == 1), "not that entry");
        assert!(w.cancel(b, |_, _| true));
        assert_eq!(w.next_at(), None);
        let c = w.insert(7, 3);
        assert_eq!(c, b, "node reused");
        assert!(!w.cancel(c, |_, v| *v == 2));
        assert!(!w.cancel(999, |_, _| true));
        assert_eq!(drain(&mut w, 7), [(7, 3)]);
    }

    #[test]
    fn deadlines_behind_the_clock_are_due_in_order() {
        let mut w = Wheel::new(0);
        assert!(w.pop_due(1000).is_none());
        w.insert(1001, 0);
        w.insert(500, 1);
        w.insert(10, 2);
        w.insert(500, 3);
        assert_eq!(w.next_at(), Some(10));
        assert!(w.pop_due(9).is_none(), "a clock read earlier still waits");
        assert_eq!(drain(&mut w, 1000), [(10, 2), (500, 1), (500, 3)]);
        assert_eq!(w.next_at(), Some(1001));
    }

    /// A load like a proxy's at 500 calls/s for 10 minutes: every timer that
    /// is not cancelled fires once its deadline is reached, and the rest stay.
    /// Also the harness for instruction counts per operation:
    /// `cargo test --release --lib wheel_load` under `valgrind
    /// --tool=callgrind`, then the inclusive cost of `arm_one`, `cancel_one`
    /// and `fire_due` over their call counts.
    #[test]
    fn wheel_load() {
        #[inline(never)]
        fn arm_one(w: &mut Wheel<u32>, at: u64, v: u32) -> Handle {
            w.insert(at, v)
        }
        #[inline(never)]
        fn cancel_one(w: &mut Wheel<u32>, h: Handle, v: u32) -> bool {
            w.cancel(h, |_, x| *x == v)
        }
        #[inline(never)]
        fn fire_due(w: &mut Wheel<u32>, now: u64) -> usize {
            std::iter::from_fn(|| w.pop_due(now)).count()
        }
        let mut w = Wheel::new(0);
        let mut fired = 0;
        let mut pending: std::collections::VecDeque<(u64, Handle, u32)> = Default::default();
        let mut v = 0u32;
        let (mut kept, mut last) = (Vec::new(), 0);
        // One call every 2 ms for 10 minutes: 11 timers armed, 7 of them
        // cancelled 1 to 20 ms later, the rest fire (0.5 s to 180 s).
        for now in (0..600_000u64).step_by(2) {
            last = now;
            for (i, delay) in [
                500, 32_000, 30_000, 180_000, 500, 32_000, 120_000, 32_000, 5_000, 32_000, 32_000,
            ]
            .into_iter()
            .enumerate()
            {
                let h = arm_one(&mut w, now + delay, v);
                if i < 7 {
                    pending.push_back((now + 1 + u64::from(v % 20), h, v));
                } else {
                    kept.push(now + delay);
                }
                v = v.wrapping_add(1);
            }
            while pending.front().is_some_and(|p| p.0 <= now) {
                let (_, h, x) = pending.pop_front().unwrap();
                assert!(cancel_one(&mut w, h, x));
            }
            fired += fire_due(&mut w, now);
        }
        let due = kept.iter().filter(|&&at| at <= last).count();
        assert_eq!(fired, due);
        assert_eq!(w.len(), kept.len() - due + pending.len());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Arm(u64),
        Cancel(usize),
        Advance(u64),
        /// One entry due at a clock read `back` ticks ago (a timer handler
        /// arming and cancelling between two of them, a clock read early).
        PopOne(u64),
        /// The clock moves to the next wake-up.
        Wake,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..300).prop_map(Op::Arm),
            1 => (0u64..300_000).prop_map(Op::Arm),
            1 => (0u64..1 << 41).prop_map(Op::Arm),
            2 => any::<usize>().prop_map(Op::Cancel),
            3 => (0u64..200).prop_map(Op::Advance),
            1 => (0u64..5_000_000).prop_map(Op::Advance),
            2 => (0u64..100).prop_map(Op::PopOne),
            2 => Just(Op::Wake),
        ]
    }

    proptest! {
        /// Against a `BTreeMap` keyed by (deadline, arming number): the same
        /// entries fire in the same order, never before their deadline,
        /// `next_at` is always the model's earliest deadline and `next_wake`
        /// never later; after everything due is out, `next_wake` is ahead.
        #[test]
        fn behaves_as_an_ordered_map(start in 0u64..1 << 20, ops in proptest::collection::vec(op(), 1..200)) {
            let mut w = Wheel::new(start);
            let mut model: BTreeMap<(u64, u32), Handle> = BTreeMap::new();
            let mut now = start;
            let mut seq = 0u32;
            for op in ops {
                match op {
                    Op::Arm(d) => {
                        // Half of them relative to a clock read a little late or early.
                        let at = (now + d).saturating_sub(if seq % 2 == 0 { 0 } else { 50 });
                        let h = w.insert(at, seq);
                        model.insert((at, seq), h);
                        seq += 1;
                    }
                    Op::Cancel(k) if !model.is_empty() => {
                        let key = *model.keys().nth(k % model.len()).unwrap();
                        let h = model.remove(&key).unwrap();
                        prop_assert!(w.cancel(h, |at, v| (at, *v) == key));
                        prop_assert!(!w.cancel(h, |at, v| (at, *v) == key));
                    }
                    Op::Cancel(_) => {}
                    Op::Advance(d) => {
                        now += d;
                        let fired = drain(&mut w, now);
                        let due: Vec<(u64, u32)> = model.range(..(now + 1, 0)).map(|(k, _)| *k).collect();
                        for k in &due {
                            model.remove(k);
                        }
                        prop_assert_eq!(fired, due);
                        prop_assert!(w.next_wake().is_none_or(|wake| wake > now));
                    }
                    Op::Wake => {
                        if let Some(wake) = w.next_wake() {
                            now = now.max(wake);
                            let fired = drain(&mut w, now);
                            let due: Vec<(u64, u32)> = model.range(..(now + 1, 0)).map(|(k, _)| *k).collect();
                            for k in &due {
                                model.remove(k);
                            }
                            prop_assert_eq!(fired, due);
                        }
                    }
                    Op::PopOne(back) => {
                        let at = now.saturating_sub(back);
                        let fired = w.pop_due(at).map(|(_, at, v)| (at, v));
                        let due = model.keys().next().copied().filter(|k| k.0 <= at);
                        if let Some(k) = due {
                            model.remove(&k);
                        }
                        prop_assert_eq!(fired, due);
                    }
                }
                prop_assert_eq!(w.len(), model.len());
                let earliest = model.keys().next().map(|k| k.0);
                prop_assert_eq!(w.next_at(), earliest);
                prop_assert_eq!(w.next_wake().is_some(), earliest.is_some());
                prop_assert!(w.next_wake() <= earliest, "wake {:?} after {:?}", w.next_wake(), earliest);
            }
        }
    }
}
