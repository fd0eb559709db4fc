//! Client transactions (RFC 3261 §17.1): one per branch of a cell, plus the
//! CANCEL a branch may send (§9.1). States are enum variants carrying their
//! data (STYLE.md, rustls).
//!
//! ```text
//! INVITE (§17.1.1, RFC 6026 §8.4)              non-INVITE (§17.1.2)
//!  Calling ─1xx─▶ Proceeding ─1xx─▶ Proceeding   Trying ─1xx─▶ Proceeding
//!   │ A: retransmit (UDP)  │                     │ E: retransmit (UDP), ≤ T2
//!   │ 2xx ─────────────────┴─▶ Accepted ─M─▶ Terminated
//!   │ 300-699 ─────────────┴─▶ Completed ─D─▶ Terminated (ACK sent, resent per final)
//!   └ B / fr_timer ─▶ Terminated (local 408)     final ─▶ Completed ─K─▶ Terminated
//!                                                F / fr_timer ─▶ Terminated (408)
//! ```
//!
//! The branch's *outcome* (what the cell's response selection sees) is kept
//! apart from the transaction state: a branch that timed out has a local 408
//! as outcome while its INVITE transaction may still wait for the 487 that
//! answers the CANCEL we sent.

use std::time::Duration;

use bytes::Bytes;

use super::build::{self, Target};
use super::ctx::Ctx;
use super::timer::{Owner, Slot, TimerKind, Timers};
use crate::sip::Message;

#[derive(Debug)]
pub(crate) enum InviteClient {
    /// Sent, no response yet; Timer A retransmits (UDP) with `interval` doubling.
    Calling {
        interval: Duration,
    },
    /// A provisional arrived: retransmissions stop.
    Proceeding,
    /// A 300-699 arrived and was ACKed; a retransmitted final gets the ACK again until Timer D.
    Completed {
        ack: Bytes,
    },
    /// A 2xx arrived (RFC 6026 §8.4): further 2xx are passed up until Timer M.
    Accepted,
    Terminated,
}

#[derive(Debug)]
pub(crate) enum NonInviteClient {
    /// Timer E retransmits (UDP): T1, doubling, at most T2.
    Trying {
        interval: Duration,
    },
    /// A provisional arrived: Timer E keeps retransmitting, every T2.
    Proceeding {
        interval: Duration,
    },
    /// A final arrived; retransmitted responses are absorbed until Timer K.
    Completed,
    Terminated,
}

#[derive(Debug)]
pub(crate) enum ClientState {
    Invite(InviteClient),
    NonInvite(NonInviteClient),
}

/// What selection sees of a branch.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// No final response yet.
    Pending,
    /// A final response: `upstream` holds it ready to relay (our Via removed);
    /// `None` for a local one (timeout, stopped branch), built when chosen.
    Final { code: u16, upstream: Option<Bytes> },
}

/// The CANCEL of a branch (§9.1), a non-INVITE client transaction of its own.
#[derive(Debug)]
pub(crate) enum CancelState {
    /// Not canceled.
    None,
    /// Canceled before any provisional: "the client MUST wait for the arrival
    /// of a provisional response before sending the request". `reason` holds
    /// header lines for the CANCEL (`Reason:`).
    Wanted { reason: Bytes },
    /// Sent; retransmitted on Timer E (UDP) until a final or Timer F.
    Sent { request: Bytes, interval: Duration },
    /// Answered or given up.
    Done,
}

/// What a response did to a branch, for the cell to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BranchEvent {
    /// Nothing for the cell (100, retransmitted final, late response).
    Absorbed,
    /// A provisional other than 100 (relayed upstream until a final was sent).
    Provisional,
    /// A 2xx (first or another): relayed upstream.
    Success,
    /// A 300-699 that is this branch's outcome now.
    Failure,
}

/// One branch: a client transaction toward one destination.
#[derive(Debug)]
pub(crate) struct Branch {
    pub target: Target,
    /// The request as sent (with our Via), for retransmissions, the CANCEL and the ACK.
    pub request: Bytes,
    pub state: ClientState,
    pub timers: Timers,
    pub outcome: Outcome,
    pub cancel: CancelState,
    pub cancel_timers: Timers,
    /// Some response arrived (`t_branch_replied`).
    pub replied: bool,
    /// The timer that ended it with a local 408 (`t_branch_timeout`).
    pub timed_out: Option<TimerKind>,
    pub index: u8,
}

impl Branch {
    /// Starts the client transaction: sends the request, arms the timers.
    pub fn start(
        index: u8,
        target: Target,
        request: Bytes,
        invite: bool,
        fr_timer: Duration,
        cx: &mut Ctx<'_>,
    ) -> Branch {
        let mut b = Branch {
            target,
            request,
            state: if invite {
                ClientState::Invite(InviteClient::Calling {
                    interval: cx.cfg.t1,
                })
            } else {
                ClientState::NonInvite(NonInviteClient::Trying {
                    interval: cx.cfg.t1,
                })
            },
            timers: Timers::default(),
            outcome: Outcome::Pending,
            cancel: CancelState::None,
            cancel_timers: Timers::default(),
            replied: false,
            timed_out: None,
            index,
        };
        let owner = Owner::Branch(index);
        // §17.1.1.2 / §17.1.2.2: "For unreliable transports (such as UDP), the
        // client transaction MUST start timer A [E] with a value of T1."
        if !b.target.is_reliable() {
            let kind = if invite { TimerKind::A } else { TimerKind::E };
            cx.arm(&mut b.timers, owner, kind, cx.cfg.t1);
        }
        // Timer B / F (64·T1), or Kamailio's fr_timer when it is earlier.
        let (kind, delay) = if fr_timer <= cx.cfg.timer_b_f {
            (TimerKind::FrTimer, fr_timer)
        } else if invite {
            (TimerKind::B, cx.cfg.timer_b_f)
        } else {
            (TimerKind::F, cx.cfg.timer_b_f)
        };
        cx.arm(&mut b.timers, owner, kind, delay);
        cx.send(&b.target, b.request.clone());
        cx.stats.branches += 1;
        b
    }

    /// `t_set_fr()` on a running branch: the fr timer it runs (if any)
    /// restarts from now with the new value.
    pub fn restart_fr(&mut self, fr_inv: Duration, fr: Duration, cx: &mut Ctx<'_>) {
        let owner = Owner::Branch(self.index);
        for (kind, delay) in [(TimerKind::FrInvTimer, fr_inv), (TimerKind::FrTimer, fr)] {
            if self.timers.get(kind.slot()).is_some_and(|a| a.kind == kind) {
                cx.arm(&mut self.timers, owner, kind, delay);
            }
        }
    }

    pub fn is_invite(&self) -> bool {
        matches!(self.state, ClientState::Invite(_))
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.outcome, Outcome::Pending)
    }

    /// The final status of the outcome (0 while pending).
    pub fn code(&self) -> u16 {
        match self.outcome {
            Outcome::Pending => 0,
            Outcome::Final { code, .. } => code,
        }
    }

    /// Whether the client transaction and its CANCEL are over (the branch may be freed).
    pub fn is_terminated(&self) -> bool {
        let txn_done = matches!(
            self.state,
            ClientState::Invite(InviteClient::Terminated)
                | ClientState::NonInvite(NonInviteClient::Terminated)
        );
        txn_done && !matches!(self.cancel, CancelState::Sent { .. })
    }

    /// Whether a provisional was received and no final yet (a CANCEL may be sent now).
    fn is_proceeding(&self) -> bool {
        matches!(self.state, ClientState::Invite(InviteClient::Proceeding))
    }

    /// A response for this branch's request. `ack` builds the ACK of a
    /// non-2xx final from the request (only called when one is needed).
    pub fn on_response(
        &mut self,
        code: u16,
        fr_inv_timer: Duration,
        ack: impl FnOnce(&Bytes) -> Option<Bytes>,
        cx: &mut Ctx<'_>,
    ) -> BranchEvent {
        self.replied = true;
        let owner = Owner::Branch(self.index);
        let reliable = self.target.is_reliable();
        let event = match &mut self.state {
            ClientState::Invite(s) => match s {
                InviteClient::Calling { .. } | InviteClient::Proceeding if code < 200 => {
                    let first = matches!(s, InviteClient::Calling { .. });
                    *s = InviteClient::Proceeding;
                    // §17.1.1.2: in Proceeding the client "SHOULD NOT retransmit the request any longer".
                    cx.disarm(&mut self.timers, Slot::Retransmit);
                    // fr_inv_timer (RFC Timer C, §16.6 step 11) replaces B / fr_timer,
                    // unless the CANCEL wait (B) already runs.
                    let cancel_wait = matches!(self.cancel, CancelState::Sent { .. });
                    if !cancel_wait
                        && self.is_pending()
                        && (first || cx.cfg.restart_fr_on_each_reply)
                    {
                        cx.arm(&mut self.timers, owner, TimerKind::FrInvTimer, fr_inv_timer);
                    }
                    if code == 100 {
                        BranchEvent::Absorbed
                    } else {
                        BranchEvent::Provisional
                    }
                }
                InviteClient::Calling { .. } | InviteClient::Proceeding if code < 300 => {
                    // RFC 6026 §8.4: "the client transaction MUST transition to the
                    // Accepted state, and Timer M MUST be started with a value of 64*T1".
                    *s = InviteClient::Accepted;
                    cx.disarm_all(&mut self.timers);
                    cx.arm(&mut self.timers, owner, TimerKind::M, cx.cfg.wait());
                    BranchEvent::Success
                }
                InviteClient::Calling { .. } | InviteClient::Proceeding => {
                    // §17.1.1.2: "the client transaction MUST pass the received
                    // response up to the TU, and the client transaction MUST
                    // generate an ACK request"; Timer D: "at least 32 seconds for
                    // unreliable transports, and ... zero seconds for reliable".
                    cx.disarm_all(&mut self.timers);
                    let ack = ack(&self.request);
                    if let Some(a) = &ack {
                        cx.send(&self.target, a.clone());
                    }
                    *s = match ack {
                        Some(ack) if !reliable => {
                            cx.arm(&mut self.timers, owner, TimerKind::D, cx.cfg.timer_d);
                            InviteClient::Completed { ack }
                        }
                        _ => InviteClient::Terminated,
                    };
                    BranchEvent::Failure
                }
                InviteClient::Completed { ack } if code >= 300 => {
                    // "Any retransmissions of the final response that are received
                    // while in the Completed state MUST cause the ACK to be re-passed".
                    let ack = ack.clone();
                    cx.send(&self.target, ack);
                    cx.stats.retransmissions += 1;
                    return BranchEvent::Absorbed;
                }
                // RFC 6026 §8.4: in Accepted, a matching 2xx is passed up to the
                // TU. A proxy relays every 2xx (§16.7 step 5), also after the
                // transaction ended.
                InviteClient::Accepted | InviteClient::Terminated if (200..300).contains(&code) => {
                    return BranchEvent::Success;
                }
                _ => return BranchEvent::Absorbed,
            },
            ClientState::NonInvite(s) => match s {
                NonInviteClient::Trying { interval } | NonInviteClient::Proceeding { interval }
                    if code < 200 =>
                {
                    // §17.1.2.2: Proceeding; Timer E then fires every T2.
                    *s = NonInviteClient::Proceeding {
                        interval: *interval,
                    };
                    if code == 100 {
                        BranchEvent::Absorbed
                    } else {
                        BranchEvent::Provisional
                    }
                }
                NonInviteClient::Trying { .. } | NonInviteClient::Proceeding { .. } => {
                    // "Timer K ... T4 seconds for unreliable transports, and zero
                    // seconds for reliable transports."
                    cx.disarm_all(&mut self.timers);
                    if reliable {
                        *s = NonInviteClient::Terminated;
                    } else {
                        *s = NonInviteClient::Completed;
                        cx.arm(&mut self.timers, owner, TimerKind::K, cx.cfg.t4);
                    }
                    if code < 300 {
                        BranchEvent::Success
                    } else {
                        BranchEvent::Failure
                    }
                }
                _ => return BranchEvent::Absorbed,
            },
        };
        if let CancelState::Wanted { reason } = &self.cancel {
            if self.is_proceeding() {
                // §9.1: the provisional we waited for arrived: send the CANCEL now.
                let reason = reason.clone();
                self.send_cancel(&reason, cx);
            }
        }
        if matches!(event, BranchEvent::Success | BranchEvent::Failure) && self.is_pending() {
            self.outcome = Outcome::Final {
                code,
                upstream: None,
            };
        }
        event
    }

    /// Asks for the branch to be canceled (§9.1). Returns whether it ended at once
    /// (a stopped branch with a local 487 outcome).
    pub fn cancel(&mut self, stop_unreplied: bool, reason: &Bytes, cx: &mut Ctx<'_>) -> bool {
        if !self.is_invite() || !self.is_pending() || !matches!(self.cancel, CancelState::None) {
            return false;
        }
        match self.state {
            ClientState::Invite(InviteClient::Proceeding) => {
                self.send_cancel(reason, cx);
                false
            }
            ClientState::Invite(InviteClient::Calling { .. }) if stop_unreplied => {
                cx.disarm_all(&mut self.timers);
                self.state = ClientState::Invite(InviteClient::Terminated);
                self.cancel = CancelState::Done;
                self.outcome = Outcome::Final {
                    code: 487,
                    upstream: None,
                };
                true
            }
            ClientState::Invite(InviteClient::Calling { .. }) => {
                self.cancel = CancelState::Wanted {
                    reason: reason.clone(),
                };
                false
            }
            _ => false,
        }
    }

    /// Sends the CANCEL (§9.1) and bounds the wait for the INVITE's final:
    /// "If there is no final response for the original request in 64*T1
    /// seconds ... the client SHOULD then consider the original transaction
    /// cancelled and SHOULD destroy the client transaction".
    fn send_cancel(&mut self, reason: &[u8], cx: &mut Ctx<'_>) {
        let request = Message::parse(self.request.clone())
            .ok()
            .and_then(|invite| build::cancel(&invite, reason, cx.scratch));
        let Some(request) = request else {
            // Our own request does not parse: nothing sensible to send.
            self.cancel = CancelState::Done;
            return;
        };
        cx.send(&self.target, request.clone());
        cx.stats.cancels_sent += 1;
        let owner = Owner::Cancel(self.index);
        if !self.target.is_reliable() {
            cx.arm(&mut self.cancel_timers, owner, TimerKind::E, cx.cfg.t1);
        }
        cx.arm(
            &mut self.cancel_timers,
            owner,
            TimerKind::F,
            cx.cfg.t1_x64(),
        );
        self.cancel = CancelState::Sent {
            request,
            interval: cx.cfg.t1,
        };
        cx.arm_no_later(
            &mut self.timers,
            Owner::Branch(self.index),
            TimerKind::B,
            cx.cfg.t1_x64(),
        );
    }

    /// A response to our CANCEL: a final ends it; a provisional slows Timer E to T2.
    pub fn on_cancel_response(&mut self, code: u16, cx: &mut Ctx<'_>) {
        match &mut self.cancel {
            CancelState::Sent { interval, .. } if code < 200 => *interval = cx.cfg.t2,
            CancelState::Sent { .. } => {
                cx.disarm_all(&mut self.cancel_timers);
                self.cancel = CancelState::Done;
            }
            _ => {}
        }
    }

    /// A timer of this branch fired (already checked and cleared). Returns true
    /// when the branch's outcome just became a local timeout.
    pub fn on_timer(&mut self, kind: TimerKind, cx: &mut Ctx<'_>) -> bool {
        let owner = Owner::Branch(self.index);
        match kind {
            TimerKind::A | TimerKind::E => {
                let cap = if kind == TimerKind::A {
                    cx.cfg.invite_retransmit_cap
                } else {
                    Some(cx.cfg.t2)
                };
                let next = match &mut self.state {
                    ClientState::Invite(InviteClient::Calling { interval })
                    | ClientState::NonInvite(NonInviteClient::Trying { interval }) => {
                        // §17.1.1.2: "reset the timer with a value of 2*T1" …;
                        // §17.1.2.2: "MIN(2*T1, T2)" …
                        let doubled = interval.saturating_mul(2);
                        *interval = cap.map_or(doubled, |c| doubled.min(c));
                        *interval
                    }
                    // §17.1.2.2: in Proceeding, "reset with a value of T2 seconds".
                    ClientState::NonInvite(NonInviteClient::Proceeding { interval }) => {
                        *interval = cx.cfg.t2;
                        *interval
                    }
                    _ => return false,
                };
                cx.send(&self.target, self.request.clone());
                cx.stats.retransmissions += 1;
                cx.arm(&mut self.timers, owner, kind, next);
                false
            }
            TimerKind::B | TimerKind::F | TimerKind::FrTimer | TimerKind::FrInvTimer => {
                self.timeout(kind, cx)
            }
            TimerKind::D | TimerKind::K | TimerKind::M => {
                self.state = match self.state {
                    ClientState::Invite(_) => ClientState::Invite(InviteClient::Terminated),
                    ClientState::NonInvite(_) => {
                        ClientState::NonInvite(NonInviteClient::Terminated)
                    }
                };
                false
            }
            _ => false,
        }
    }

    /// No final response in time (B, F, fr_timer, fr_inv_timer, or the
    /// transaction's lifetime): the outcome becomes a local 408 and the
    /// transaction ends — except an INVITE that had a provisional, which is
    /// canceled (§16.8, Timer C: "If the client transaction has received a
    /// provisional response, the proxy MUST generate a CANCEL request matching
    /// that transaction") and waits up to 64·T1 for its final (§9.1).
    pub fn timeout(&mut self, kind: TimerKind, cx: &mut Ctx<'_>) -> bool {
        let newly = self.is_pending();
        if newly {
            self.outcome = Outcome::Final {
                code: 408,
                upstream: None,
            };
            self.timed_out = Some(kind);
            cx.stats.timeouts += 1;
        }
        let can_cancel = matches!(self.cancel, CancelState::None | CancelState::Wanted { .. });
        if self.is_proceeding() && can_cancel {
            self.send_cancel(b"", cx);
            if matches!(self.cancel, CancelState::Sent { .. }) {
                return newly;
            }
        }
        cx.disarm(&mut self.timers, Slot::Retransmit);
        cx.disarm(&mut self.timers, Slot::Timeout);
        if matches!(
            self.state,
            ClientState::Invite(InviteClient::Calling { .. } | InviteClient::Proceeding)
                | ClientState::NonInvite(
                    NonInviteClient::Trying { .. } | NonInviteClient::Proceeding { .. }
                )
        ) {
            self.state = match self.state {
                ClientState::Invite(_) => ClientState::Invite(InviteClient::Terminated),
                ClientState::NonInvite(_) => ClientState::NonInvite(NonInviteClient::Terminated),
            };
        }
        newly
    }

    /// A timer of this branch's CANCEL fired.
    pub fn on_cancel_timer(&mut self, kind: TimerKind, cx: &mut Ctx<'_>) {
        let CancelState::Sent { request, interval } = &mut self.cancel else {
            return;
        };
        match kind {
            TimerKind::E => {
                let data = request.clone();
                // §17.1.2.2: doubling up to T2 (T2 once a provisional arrived).
                let next = interval.saturating_mul(2).min(cx.cfg.t2);
                *interval = next;
                cx.send(&self.target, data);
                cx.stats.retransmissions += 1;
                cx.arm(
                    &mut self.cancel_timers,
                    Owner::Cancel(self.index),
                    TimerKind::E,
                    next,
                );
            }
            TimerKind::F => {
                cx.disarm_all(&mut self.cancel_timers);
                self.cancel = CancelState::Done;
            }
            _ => {}
        }
    }
}
