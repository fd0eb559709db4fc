//! Transaction state machines (RFC 3261 §17), timers as data, per-core slab table.
