//! [`TmStats`]: one core's transaction counters (Kamailio's `tm.stats` RPC
//! reports the same kinds of numbers; a request merges the cores).

/// Counters of one core's transaction table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TmStats {
    /// Transactions alive now.
    pub active: u64,
    /// Transactions created since start.
    pub created: u64,
    /// Transactions freed since start.
    pub freed: u64,
    /// Client branches created.
    pub branches: u64,
    /// Requests and responses we retransmitted on a timer (A, E, G and our CANCELs).
    pub retransmissions: u64,
    /// Retransmitted requests absorbed (answered with the last response, or silently).
    pub absorbed_requests: u64,
    /// Replies absorbed (100, retransmitted finals, late or duplicate replies).
    pub absorbed_replies: u64,
    /// Replies relayed upstream.
    pub relayed: u64,
    /// Replies generated here (100 Trying, t_reply, 408, 487, 200 to CANCEL).
    pub local_replies: u64,
    /// Branches that ended on a timer with no final response (local 408).
    pub timeouts: u64,
    /// CANCELs sent downstream.
    pub cancels_sent: u64,
    /// Final responses sent upstream, by class (index 2..=6; 0 and 1 unused).
    pub finals: [u64; 7],
}
