//! Server transactions (RFC 3261 §17.2): the upstream side of a cell. The
//! states are enum variants carrying their own data (STYLE.md, rustls); each
//! input replaces the state with the next one.
//!
//! ```text
//! INVITE (§17.2.1, RFC 6026 §8.7)         non-INVITE (§17.2.2)
//!  Proceeding ─1xx─▶ Proceeding            Trying ─1xx─▶ Proceeding
//!     │ 2xx ─▶ Accepted ─L─▶ Terminated       │ final        │ final
//!     │ 300-699                               ▼              ▼
//!     ▼                                     Completed ─J─▶ Terminated
//!  Completed ─ACK─▶ Confirmed ─I─▶ Terminated
//!     │ G: retransmit final (UDP)   H: no ACK ─▶ Terminated
//! ```

use bytes::Bytes;

use super::build::{Source, Target};
use super::ctx::Ctx;
use super::key::KeySpans;
use super::timer::{Owner, Slot, TimerKind, Timers};
use crate::sip::Span;

/// The server INVITE transaction's states.
#[derive(Debug)]
pub(crate) enum InviteServer {
    /// No final response yet; `last` is the last provisional sent (resent on a retransmitted INVITE).
    Proceeding {
        last: Option<Bytes>,
    },
    /// A 300-699 was sent; it is retransmitted on Timer G (UDP) until the ACK, or H.
    Completed {
        response: Bytes,
        interval: std::time::Duration,
        /// What is left of Timer H when the pending G fires.
        h_left: std::time::Duration,
    },
    /// The ACK arrived; retransmitted ACKs are absorbed until Timer I.
    Confirmed,
    /// A 2xx was sent (RFC 6026 §8.7): retransmitted INVITEs are absorbed until Timer L.
    Accepted,
    Terminated,
}

/// The server non-INVITE transaction's states.
#[derive(Debug)]
pub(crate) enum NonInviteServer {
    Trying,
    Proceeding {
        last: Bytes,
    },
    /// The final response, resent for each retransmitted request until Timer J.
    Completed {
        response: Bytes,
    },
    Terminated,
}

#[derive(Debug)]
pub(crate) enum ServerState {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

/// What an ACK did to the server transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AckResult {
    /// It acknowledged our non-2xx final (or was a retransmitted ACK): absorbed.
    Absorbed,
    /// The transaction sent a 2xx: the ACK is end-to-end, route it on.
    PassOn,
}

/// The upstream side of a cell: the request that created it, where responses
/// go, and the state machine.
#[derive(Debug)]
pub(crate) struct Server {
    /// The request as received (the buffer is shared, not copied).
    pub request: Bytes,
    /// Its method, in `request`.
    pub method: Span,
    /// Its RFC 3261 key fields, in `request`.
    pub spans: KeySpans,
    pub source: Source,
    /// Where responses go (§18.2.2).
    pub target: Target,
    pub state: ServerState,
    pub timers: Timers,
    /// Status of the last response sent (0: none yet).
    pub status: u16,
    /// The script called `force_rport()` before the transaction was made:
    /// local replies fill `rport` as if the client had asked.
    pub force_rport: bool,
    /// The request is the proxy's own ([`TransactionTable::create_local`]):
    /// responses end the transaction but go nowhere.
    ///
    /// [`TransactionTable::create_local`]: crate::tm::TransactionTable::create_local
    pub local: bool,
}

impl Server {
    pub fn new(
        request: Bytes,
        method: Span,
        spans: KeySpans,
        source: Source,
        target: Target,
        invite: bool,
    ) -> Server {
        let state = if invite {
            ServerState::Invite(InviteServer::Proceeding { last: None })
        } else {
            ServerState::NonInvite(NonInviteServer::Trying)
        };
        Server {
            request,
            method,
            spans,
            source,
            target,
            state,
            timers: Timers::default(),
            status: 0,
            force_rport: false,
            local: false,
        }
    }

    /// Sends a response upstream, unless the request is our own.
    fn emit(&self, data: Bytes, cx: &mut Ctx<'_>) {
        if !self.local {
            cx.send(&self.target, data);
        }
    }

    pub fn is_invite(&self) -> bool {
        matches!(self.state, ServerState::Invite(_))
    }

    /// Whether a final response has been sent (the TU may send no other, except 2xx to INVITE).
    pub fn final_sent(&self) -> bool {
        self.status >= 200
    }

    pub fn is_terminated(&self) -> bool {
        matches!(
            self.state,
            ServerState::Invite(InviteServer::Terminated)
                | ServerState::NonInvite(NonInviteServer::Terminated)
        )
    }

    /// The final response sent, while the transaction still keeps it.
    pub fn final_response(&self) -> Option<&Bytes> {
        match &self.state {
            ServerState::Invite(InviteServer::Completed { response, .. })
            | ServerState::NonInvite(NonInviteServer::Completed { response }) => Some(response),
            _ => None,
        }
    }

    /// The last provisional sent, while the transaction keeps it.
    pub fn last_provisional(&self) -> Option<&Bytes> {
        match &self.state {
            ServerState::Invite(InviteServer::Proceeding { last: Some(r) })
            | ServerState::NonInvite(NonInviteServer::Proceeding { last: r }) => Some(r),
            _ => None,
        }
    }

    /// Sends a provisional response. Ignored once a final was sent (§17.2.1).
    pub fn send_provisional(&mut self, code: u16, data: Bytes, cx: &mut Ctx<'_>) -> bool {
        let ok = match &mut self.state {
            ServerState::Invite(InviteServer::Proceeding { last }) => {
                *last = Some(data.clone());
                true
            }
            ServerState::NonInvite(
                s @ (NonInviteServer::Trying | NonInviteServer::Proceeding { .. }),
            ) => {
                *s = NonInviteServer::Proceeding { last: data.clone() };
                true
            }
            _ => false,
        };
        if ok {
            self.status = code;
            self.emit(data, cx);
        }
        ok
    }

    /// Sends the final response. A second final is refused, except another
    /// 2xx to an INVITE (forking: RFC 3261 §16.7 step 5, "Any 2xx response to
    /// an INVITE request" is forwarded after a final was sent), which is sent
    /// without changing state.
    ///
    /// Timer H (no ACK to a 300-699 to an INVITE) is `timer_h`: Kamailio waits
    /// the transaction's `fr_timer`, where RFC 3261 says 64·T1.
    pub fn send_final(
        &mut self,
        code: u16,
        data: Bytes,
        timer_h: std::time::Duration,
        cx: &mut Ctx<'_>,
    ) -> bool {
        let reliable = self.target.is_reliable();
        let next = match std::mem::replace(
            &mut self.state,
            ServerState::Invite(InviteServer::Terminated),
        ) {
            ServerState::Invite(InviteServer::Proceeding { .. }) if code < 300 => {
                // RFC 6026 §8.7: a 2xx from the TU moves the transaction to
                // Accepted and starts Timer L (64·T1).
                cx.arm(&mut self.timers, Owner::Server, TimerKind::L, cx.cfg.wait());
                ServerState::Invite(InviteServer::Accepted)
            }
            ServerState::Invite(InviteServer::Proceeding { .. }) => {
                // §17.2.1: "timer G MUST be set to fire in T1 seconds" (unreliable only),
                // and timer H (64·T1 there; fr_timer as Kamailio has it) for all transports.
                if !reliable {
                    cx.arm(&mut self.timers, Owner::Server, TimerKind::G, cx.cfg.t1);
                }
                cx.arm(&mut self.timers, Owner::Server, TimerKind::H, timer_h);
                ServerState::Invite(InviteServer::Completed {
                    response: data.clone(),
                    interval: cx.cfg.t1,
                    h_left: timer_h,
                })
            }
            ServerState::Invite(other) => {
                let forward_again = code < 300
                    && matches!(
                        other,
                        InviteServer::Accepted
                            | InviteServer::Completed { .. }
                            | InviteServer::Confirmed
                            | InviteServer::Terminated
                    );
                self.state = ServerState::Invite(other);
                if forward_again {
                    cx.final_sent(code, &data);
                    self.emit(data, cx);
                    cx.stats.finals[2] += 1;
                }
                return forward_again;
            }
            ServerState::NonInvite(
                NonInviteServer::Trying | NonInviteServer::Proceeding { .. },
            ) => {
                // §17.2.2: "When the server transaction enters the Completed state,
                // it MUST set Timer J to fire in 64*T1 seconds for unreliable
                // transports, and zero seconds for reliable transports."
                if reliable {
                    ServerState::NonInvite(NonInviteServer::Terminated)
                } else {
                    cx.arm(&mut self.timers, Owner::Server, TimerKind::J, cx.cfg.wait());
                    ServerState::NonInvite(NonInviteServer::Completed {
                        response: data.clone(),
                    })
                }
            }
            other @ ServerState::NonInvite(_) => {
                self.state = other;
                return false;
            }
        };
        self.state = next;
        self.status = code;
        cx.stats.finals[usize::from(code / 100).min(6)] += 1;
        cx.final_sent(code, &data);
        self.emit(data, cx);
        true
    }

    /// A retransmission of the request arrived: resend the last response
    /// (§17.2.1: "the most recent provisional response"; §17.2.2 likewise,
    /// and the final in Completed). Returns whether something was resent.
    pub fn on_retransmission(&mut self, cx: &mut Ctx<'_>) -> bool {
        let again = match &self.state {
            ServerState::Invite(InviteServer::Proceeding { last: Some(r) })
            | ServerState::Invite(InviteServer::Completed { response: r, .. })
            | ServerState::NonInvite(NonInviteServer::Proceeding { last: r })
            | ServerState::NonInvite(NonInviteServer::Completed { response: r }) => r.clone(),
            // Trying: "any retransmissions of the request received while in
            // the Trying state MUST be discarded"; Confirmed, Accepted: absorbed.
            _ => return false,
        };
        self.emit(again, cx);
        true
    }

    /// An ACK matched this (INVITE) transaction.
    pub fn on_ack(&mut self, cx: &mut Ctx<'_>) -> AckResult {
        match &self.state {
            ServerState::Invite(InviteServer::Completed { .. }) => {
                // §17.2.1: "the server transaction MUST transition to the
                // "Confirmed" state. As Timer G is ignored in this state, any
                // retransmissions of the response will cease"; "Timer I is set to
                // fire in T4 seconds for unreliable transports, and zero seconds
                // for reliable transports."
                cx.disarm(&mut self.timers, Slot::Retransmit);
                cx.disarm(&mut self.timers, Slot::Timeout);
                if self.target.is_reliable() {
                    self.state = ServerState::Invite(InviteServer::Terminated);
                } else {
                    cx.arm(&mut self.timers, Owner::Server, TimerKind::I, cx.cfg.t4);
                    self.state = ServerState::Invite(InviteServer::Confirmed);
                }
                AckResult::Absorbed
            }
            ServerState::Invite(InviteServer::Accepted) => AckResult::PassOn,
            _ => AckResult::Absorbed,
        }
    }

    /// A server timer fired (the caller checked it is still armed and cleared it).
    pub fn on_timer(&mut self, kind: TimerKind, cx: &mut Ctx<'_>) {
        match (kind, &mut self.state) {
            (
                TimerKind::G,
                ServerState::Invite(InviteServer::Completed {
                    response,
                    interval,
                    h_left,
                }),
            ) => {
                // A retransmission due when H ends is not sent (Kamailio).
                *h_left = h_left.saturating_sub(*interval);
                if h_left.is_zero() {
                    return;
                }
                // §17.2.1: retransmit and "reset with a value that is two times its
                // previous value, or T2 seconds, whichever is smaller".
                *interval = interval.saturating_mul(2).min(cx.cfg.t2);
                let (response, interval) = (response.clone(), *interval);
                cx.send(&self.target, response);
                cx.stats.retransmissions += 1;
                cx.arm(&mut self.timers, Owner::Server, TimerKind::G, interval);
            }
            (TimerKind::H, ServerState::Invite(InviteServer::Completed { .. })) => {
                // "If timer H fires while in the Completed state, it implies that
                // the ACK was never received": Terminated.
                cx.disarm_all(&mut self.timers);
                self.state = ServerState::Invite(InviteServer::Terminated);
            }
            (TimerKind::I, ServerState::Invite(InviteServer::Confirmed))
            | (TimerKind::L, ServerState::Invite(InviteServer::Accepted)) => {
                self.state = ServerState::Invite(InviteServer::Terminated);
            }
            (TimerKind::J, ServerState::NonInvite(NonInviteServer::Completed { .. })) => {
                self.state = ServerState::NonInvite(NonInviteServer::Terminated);
            }
            _ => {}
        }
    }
}
