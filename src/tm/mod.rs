//! Transaction state machines (RFC 3261 §17), timers as data, per-core slab
//! table, and the stateful proxy cell on top (§16, Kamailio's tm).
//!
//! Sans-IO (DESIGN.md): messages, addresses and `now` go in; transmissions
//! (pushed into an `&mut Vec<Transmit>`), decisions and the next deadline
//! come out. No socket, no clock read, no thread.
//!
//! # How the engine drives a [`TransactionTable`]
//!
//! ```text
//!  request in ──▶ on_request ─┬─ Retransmission / AckAbsorbed ─▶ done (absorbed, last reply re-sent)
//!                             ├─ AckPassOn ─▶ route the ACK statelessly (end-to-end ACK of a 2xx)
//!                             ├─ Cancel{invite} ─▶ script; t_relay() of it ─▶ cancel(invite, …)
//!                             ├─ CancelUnmatched ─▶ stateless forward (§16.10)
//!                             └─ New ─▶ request_route
//!                                        t_relay(): create_server (100 Trying) then, per
//!                                        destination, add_branch(tid, target, |branch| bytes)
//!  reply in ──▶ match_reply (onreply_route runs with the transaction) ──▶ on_reply(msg, edits)
//!                 ├─ Relayed / Stored / Absorbed / FinalSent ─▶ done
//!                 └─ NeedsFailureRoute{code} ─▶ failure_route (may add_branch or reply)
//!                                                ─▶ failure_done(tid)
//!  clock ──▶ next_deadline() … on_timer(now, out, events)
//!                 events: FinalSent (408/487 upstream) / NeedsFailureRoute (as above)
//! ```
//!
//! A transaction frees itself when its server transaction and every branch
//! have terminated (Timers D, I, J, K, L, M or the reliable-transport
//! shortcuts); [`TransactionTable::release`] ends one at once.
//!
//! # Files
//! - [`config`]: [`TmConfig`] (T1, T2, T4, fr_timer, fr_inv_timer, lifetimes, switches).
//! - [`timer`]: timer kinds, per-owner deadline slots, the per-core timer wheel.
//! - [`branch_id`]: our Via branch (`z9hG4bK` + core, slot, generation, index, check).
//! - `key`: server-side matching keys (§17.2.3, RFC 2543 fallback).
//! - `server`, `client`: the RFC 3261 state machines.
//! - `cell`: the response context (§16.7) and CANCEL handling (§9, §16.10).
//! - [`build`]: locally built messages (100, 408, 487, CANCEL, ACK) and relayed replies.
//! - [`outcome`]: what the table reports (handles, matches, actions, events, errors).
//! - [`table`]: the slab, the index and the public API.

pub mod branch_id;
pub mod build;
pub mod cell;
pub(crate) mod client;
pub mod config;
pub(crate) mod ctx;
pub(crate) mod key;
pub mod outcome;
pub(crate) mod server;
pub mod stats;
pub mod table;
pub mod timer;

#[cfg(test)]
mod tests;

pub use branch_id::{BranchId, BranchParam};
pub use build::{LocalReply, Source, Target};
pub use cell::DropReplies;
pub use config::{CancelUnreplied, Setting, TmConfig, Tuning};
pub use outcome::{
    CancelOutcome, CellMemory, FinalSent, ReplyAction, ReplyMatch, RequestMatch, Tid, TmError,
    TmEvent,
};
pub use stats::TmStats;
pub use table::{NewServer, TransactionTable};
pub use timer::TimerKind;
