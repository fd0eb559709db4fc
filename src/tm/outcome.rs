//! What the transaction table reports: handles, request matches, reply
//! actions, timer events, errors.

/// A transaction handle: slab slot and generation. A handle outliving its
/// transaction matches nothing (the generation moved on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tid {
    pub(crate) slot: u32,
    pub(crate) gen: u32,
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
    /// [`TransactionTable::cancel`](super::TransactionTable::cancel) (Kamailio does it from `t_relay()`).
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

/// What [`TransactionTable::on_reply`](super::TransactionTable::on_reply) did with a reply.
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
    /// as the winning status, then call [`TransactionTable::failure_done`](super::TransactionTable::failure_done).
    NeedsFailureRoute { tid: Tid, code: u16 },
}

/// What a timer decided, for the engine ([`TransactionTable::on_timer`](super::TransactionTable::on_timer)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmEvent {
    /// A final response (`code`) went upstream (timeouts: 408, canceled: 487).
    FinalSent { tid: Tid, code: u16 },
    /// Every branch failed (timeouts count as 408): run the failure route,
    /// then call [`TransactionTable::failure_done`](super::TransactionTable::failure_done).
    NeedsFailureRoute { tid: Tid, code: u16 },
}

/// A final response that went upstream (recorded when the table reports
/// finals, for modules that act on completion such as acc). The
/// transaction stays in the table until the record is taken with
/// [`TransactionTable::take_finals`](super::TransactionTable::take_finals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalSent {
    pub tid: Tid,
    pub code: u16,
    /// The response as sent.
    pub response: bytes::Bytes,
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
    /// A 6xx arrived: no new branches (§16.7 step 5; Kamailio `disable_6xx_block`).
    Blocked6xx,
    /// `max_branches` reached.
    TooManyBranches,
    /// Not a valid status code for this call.
    BadCode,
}

/// What [`TransactionTable::cancel`](super::TransactionTable::cancel) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CancelOutcome {
    /// The CANCEL's own (server, non-INVITE) transaction, answered 200.
    pub cancel: Option<Tid>,
    /// Whether INVITE branches were pending (CANCELs sent or waiting for a 1xx).
    pub pending: bool,
    /// What the cancel decided at once (a 487 with no branch yet, or stopped branches).
    pub event: Option<TmEvent>,
}

/// Memory held by one transaction ([`TransactionTable::memory_of`](super::TransactionTable::memory_of)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellMemory {
    /// Slab slot, branch vector, index entry and wheel entries of armed timers.
    pub structures: usize,
    /// Bytes of stored messages (request, responses, our requests; shared buffers counted whole).
    pub messages: usize,
}
