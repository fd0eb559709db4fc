//! The mutators the script's functions call: `t_newtran`, `t_relay`,
//! `t_reply`, CANCEL, the failure hook, `t_release`.

use std::time::Instant;

use bytes::Bytes;

use super::TransactionTable;
use crate::sip::{Message, StartLine, Transmit};
use crate::tm::branch_id::{BranchId, BranchParam};
use crate::tm::build::{self, LocalReply, Source, Target};
use crate::tm::cell::{Cell, Completion};
use crate::tm::client::Branch;
use crate::tm::config::Tuning;
use crate::tm::ctx::Ctx;
use crate::tm::outcome::*;
use crate::tm::server::Server;
use crate::tm::timer::{Owner, TimerKind};

/// What the script asked for a server transaction it makes.
#[derive(Clone, Copy, Debug)]
pub struct NewServer {
    /// Answer an INVITE 100 Trying at once when `auto_inv_100` is on;
    /// false sends none (Kamailio's `t_newtran()`: only `t_relay()` making
    /// the transaction answers it).
    pub trying: bool,
    /// `force_rport()` was called: replies go to the source port and fill
    /// `rport` in the top Via as if the client had asked (RFC 3581 §4).
    pub force_rport: bool,
    /// This transaction's own settings (`t_set_*` called before it existed).
    pub tuning: Tuning,
}

impl Default for NewServer {
    fn default() -> NewServer {
        NewServer {
            trying: true,
            force_rport: false,
            tuning: Tuning::default(),
        }
    }
}

impl<U> TransactionTable<U> {
    /// Creates the server transaction of a new request, as `t_relay` does
    /// first: an INVITE is answered 100 Trying at once when `auto_inv_100`
    /// is on.
    pub fn create_server(
        &mut self,
        msg: &Message,
        from: &Source,
        user: U,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<Tid, TmError> {
        self.create_server_with(msg, from, user, now, out, &NewServer::default())
    }

    /// [`create_server`](Self::create_server) with what the script asked
    /// for the new transaction ([`NewServer`]).
    pub fn create_server_with(
        &mut self,
        msg: &Message,
        from: &Source,
        user: U,
        now: Instant,
        out: &mut Vec<Transmit>,
        opts: &NewServer,
    ) -> Result<Tid, TmError> {
        let (trying, tuning) = (opts.trying, &opts.tuning);
        let StartLine::Request { method, .. } = msg.start() else {
            return Err(TmError::NotTransactional);
        };
        let method_bytes = msg.slice(method);
        if method_bytes == b"ACK" {
            return Err(TmError::NotTransactional);
        }
        let (key, spans, hash, scan) = self.key_of(msg).ok_or(TmError::Unmatchable)?;
        if let Some(tid) = self.lookup_hashed(&key, hash, false) {
            return Err(TmError::Exists(tid));
        }
        // The top Via, parsed once: where replies go, and the 100's received fix.
        let via =
            build::TopVia::of_message_scanned(msg, scan.as_ref()).ok_or(TmError::Unmatchable)?;
        let target = build::response_target(&via, from, opts.force_rport);
        let invite = method_bytes == b"INVITE";
        let tid = self.alloc();
        let mut server = Server::new(msg.buf().clone(), method, spans, *from, target, invite);
        server.force_rport = opts.force_rport;
        let tick = self.tick(now);
        // Built in its slot (not moved there at the end).
        let Some(slot) = self.slots.get_mut(tid.slot) else {
            return Err(TmError::NoTransaction);
        };
        let cell = slot.cell.insert(Cell::new(server, user));
        if let std::collections::hash_map::Entry::Vacant(v) = self.index.entry(hash) {
            v.insert(tid);
            cell.index_key = Some(hash);
        }
        if !tuning.is_empty() {
            let mut own = self.cfg.clone();
            tuning.apply(&mut own, &self.cfg);
            cell.cfg = Some(std::sync::Arc::new(own));
        }
        let own = cell.cfg.clone();
        let mut cx = ctx!(self, tick, tid, out, own.as_deref().unwrap_or(&self.cfg));
        let lifetime = if invite {
            cx.cfg.max_inv_lifetime
        } else {
            cx.cfg.max_noninv_lifetime
        };
        cx.arm(
            &mut cell.lifetime,
            Owner::Cell,
            TimerKind::MaxLifetime,
            lifetime,
        );
        if invite && trying && cx.cfg.auto_inv_100 {
            let reason = cx.cfg.trying_reason;
            let spec = LocalReply {
                code: 100,
                reason,
                ..LocalReply::default()
            };
            // Built from the message in hand: no parse of the stored copy.
            let data = build::local_reply_via(
                msg,
                &via,
                from,
                opts.force_rport,
                &spec,
                None,
                &cx.cfg.server_header,
                cx.scratch,
            );
            if cell.server.send_provisional(100, data, &mut cx) {
                cx.stats.local_replies += 1;
            }
        }
        self.stats.created += 1;
        self.stats.active += 1;
        Ok(tid)
    }

    /// A transaction for a request the proxy makes itself (uac's
    /// `uac_req_send`): one client branch toward `target`, the request built
    /// by `build` from its branch parameter, sent now and retransmitted per
    /// §17.1. Its server side is local: nothing is sent upstream, and the
    /// final response (received, or the 408 of a timeout) is reported by
    /// [`take_finals`](Self::take_finals) when [`report_finals`](Self::report_finals) is on.
    pub fn create_local(
        &mut self,
        target: Target,
        build: impl FnOnce(&BranchParam) -> Bytes,
        user: U,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<Tid, TmError> {
        let tid = self.alloc();
        let request = build(&self.branch_param(tid, 0));
        let method_end = request.iter().position(|&b| b == b' ').unwrap_or(0);
        let invite = request.starts_with(b"INVITE ");
        let method = crate::sip::message::Span::new(0, method_end);
        let spans = crate::tm::key::KeySpans {
            branch: crate::sip::message::Span::new(0, 0),
            sent_by: crate::sip::message::Span::new(0, 0),
        };
        let source = Source {
            src: target.dst,
            local: target.local.unwrap_or(target.dst),
            proto: target.proto,
            socket: target.socket.unwrap_or(0),
            conn: None,
        };
        let mut server = Server::new(request.clone(), method, spans, source, target, invite);
        server.local = true;
        let tick = self.tick(now);
        let Some(slot) = self.slots.get_mut(tid.slot) else {
            return Err(TmError::NoTransaction);
        };
        let cell = slot.cell.insert(Cell::new(server, user));
        let mut cx = ctx!(self, tick, tid, out, &self.cfg);
        let lifetime = if invite {
            cx.cfg.max_inv_lifetime
        } else {
            cx.cfg.max_noninv_lifetime
        };
        cx.arm(
            &mut cell.lifetime,
            Owner::Cell,
            TimerKind::MaxLifetime,
            lifetime,
        );
        self.stats.created += 1;
        self.stats.active += 1;
        self.start_branch(tid, 0, target, request, now, out)?;
        Ok(tid)
    }

    /// The branch parameter branch `index` of `tid` will carry (for a caller
    /// that builds the message before [`add_branch`](Self::add_branch)).
    pub fn branch_param(&self, tid: Tid, index: u8) -> BranchParam {
        self.codec.encode(&BranchId {
            core: self.core,
            slot: tid.slot,
            gen: tid.gen,
            index,
        })
    }

    /// Adds a branch (`t_relay`, also from a failure route): `build` gets the
    /// branch parameter for our Via and returns the request to send. The
    /// request is sent now and retransmitted per §17.1. Returns the branch index.
    pub fn add_branch(
        &mut self,
        tid: Tid,
        target: Target,
        build: impl FnOnce(&BranchParam) -> Bytes,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<u8, TmError> {
        let index = self.next_branch(tid)?;
        let param = self.branch_param(tid, index);
        let request = build(&param);
        self.start_branch(tid, index, target, request, now, out)
    }

    /// [`add_branch`](Self::add_branch) for a request built already, with the
    /// branch parameter [`branch_param`](Self::branch_param) gave for the next
    /// index ([`branch_count`](Self::branch_count)): not encoded a second time.
    pub fn add_built_branch(
        &mut self,
        tid: Tid,
        target: Target,
        request: Bytes,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<u8, TmError> {
        let index = self.next_branch(tid)?;
        self.start_branch(tid, index, target, request, now, out)
    }

    /// The index of the branch `tid` may add next, or why it may not.
    pub(super) fn next_branch(&self, tid: Tid) -> Result<u8, TmError> {
        let cell = self.cell(tid).ok_or(TmError::NoTransaction)?;
        if cell.canceled {
            return Err(TmError::Canceled);
        }
        if cell.expired {
            return Err(TmError::Expired);
        }
        if cell.blocked_6xx {
            return Err(TmError::Blocked6xx);
        }
        if !cell.can_fork() {
            return Err(TmError::FinalSent);
        }
        u8::try_from(cell.branches.len())
            .ok()
            .filter(|&i| i < self.cfg.max_branches)
            .ok_or(TmError::TooManyBranches)
    }

    /// Starts branch `index` of `tid` with `request` (see [`add_branch`](Self::add_branch)).
    pub(super) fn start_branch(
        &mut self,
        tid: Tid,
        index: u8,
        target: Target,
        request: Bytes,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<u8, TmError> {
        let tick = self.tick(now);
        self.with_cell(tid, tick, out, |cell, cx| {
            if cell.in_failure && cell.new_leg {
                cell.new_leg = false;
                cell.leg_start = index;
            }
            let invite = cell.server.is_invite();
            let fr = cell.fr_timer(cx.cfg);
            let b = Branch::start(index, target, request, invite, fr, cx);
            // Most cells have one branch: grow one at a time (Vec would jump to 4).
            cell.branches.reserve_exact(1);
            cell.branches.push(b);
        })
        .ok_or(TmError::NoTransaction)?;
        Ok(index)
    }

    /// Sends a local response on the server transaction (`t_reply`). A final
    /// cancels the pending INVITE branches (§16.7 step 10).
    pub fn reply(
        &mut self,
        tid: Tid,
        spec: &LocalReply<'_>,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<(), TmError> {
        if !(100..=699).contains(&spec.code) {
            return Err(TmError::BadCode);
        }
        // One local final only (a relayed 2xx may follow another final; a local one may not).
        if self.cell(tid).is_some_and(|c| c.server.final_sent()) {
            return Err(TmError::FinalSent);
        }
        let tick = self.tick(now);
        let sent = self
            .with_cell(tid, tick, out, |cell, cx| {
                let sent = cell.send_local_reply(spec, cx);
                if sent && spec.code >= 200 && cell.server.is_invite() {
                    cell.cancel_pending(None, Bytes::new(), cx);
                }
                sent
            })
            .ok_or(TmError::NoTransaction)?;
        if sent {
            Ok(())
        } else {
            Err(TmError::FinalSent)
        }
    }

    /// Cancels the pending branches (tmx `t_cancel_branches("all")`).
    pub fn cancel_branches(&mut self, tid: Tid, now: Instant, out: &mut Vec<Transmit>) -> bool {
        self.cancel_some_branches(tid, |_| true, &Bytes::new(), now, out)
    }

    /// Cancels the pending branches whose index `which` selects (tmx
    /// `t_cancel_branches("others")` / `("this")`), with `reason` (whole
    /// header lines) in the CANCELs. Returns whether any was pending.
    pub fn cancel_some_branches(
        &mut self,
        tid: Tid,
        which: impl Fn(u8) -> bool,
        reason: &Bytes,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> bool {
        let tick = self.tick(now);
        self.with_cell(tid, tick, out, |cell, cx| {
            let stop = matches!(
                cx.cfg.cancel_unreplied,
                crate::tm::config::CancelUnreplied::StopBranch
            );
            let mut any = false;
            for (i, b) in cell.branches.iter_mut().enumerate() {
                let chosen = u8::try_from(i).is_ok_and(&which);
                if chosen && b.is_pending() {
                    any = true;
                    b.cancel(stop, reason, cx);
                }
            }
            any
        })
        .unwrap_or(false)
    }

    /// Sends the last reply of the server transaction again (`t_retransmit_reply`).
    pub fn retransmit_reply(&mut self, tid: Tid, now: Instant, out: &mut Vec<Transmit>) -> bool {
        let tick = self.tick(now);
        self.with_cell(tid, tick, out, |cell, cx| cell.server.on_retransmission(cx))
            .unwrap_or(false)
    }

    /// After the failure route ran (see [`ReplyAction::NeedsFailureRoute`]):
    /// stored replies are dropped per `failure_reply_mode` / `t_drop_replies`;
    /// if the route neither added branches nor replied, the best response
    /// goes upstream now (a 500 when the candidates were dropped, as Kamailio
    /// answers then). Returns the code sent, if any.
    pub fn failure_done(&mut self, tid: Tid, now: Instant, out: &mut Vec<Transmit>) -> Option<u16> {
        let tick = self.tick(now);
        self.with_cell(tid, tick, out, |cell, cx| {
            cell.in_failure = false;
            cell.new_leg = false;
            let dropped = cell.drop_replies_after_failure();
            if cell.server.final_sent() || cell.any_pending() {
                return None;
            }
            if dropped && cell.best().is_none() {
                cell.send_local(500, b"Server Internal Error", cx);
                return Some(500);
            }
            Some(cell.send_best(cx))
        })
        .flatten()
    }

    /// `t_drop_replies()` in a failure route: how the stored replies are
    /// dropped when it ends (instead of `failure_reply_mode`).
    pub fn set_drop_replies(&mut self, tid: Tid, mode: crate::tm::DropReplies) -> bool {
        match self.cell_mut(tid) {
            Some(c) if c.in_failure => {
                c.drop_mode = mode;
                true
            }
            _ => false,
        }
    }

    /// `t_set_fr()`: this transaction's `fr_inv_timer` / `fr_timer` (`None`:
    /// unchanged; zero: back to the configured value). Pending branches whose
    /// timer of that kind runs restart it from now with the new value.
    pub fn set_fr(
        &mut self,
        tid: Tid,
        fr_inv: Option<std::time::Duration>,
        fr: Option<std::time::Duration>,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> bool {
        let ms = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let tick = self.tick(now);
        self.with_cell(tid, tick, out, |cell, cx| {
            if let Some(d) = fr_inv {
                cell.fr_ms[0] = ms(d);
            }
            if let Some(d) = fr {
                cell.fr_ms[1] = ms(d);
            }
            let (fr_inv, fr) = (cell.fr_inv_timer(cx.cfg), cell.fr_timer(cx.cfg));
            for b in cell.branches.iter_mut().filter(|b| b.is_pending()) {
                b.restart_fr(fr_inv, fr, cx);
            }
        })
        .is_some()
    }

    /// Changes this transaction's own settings (`t_set_retr`,
    /// `t_set_max_lifetime`… on a transaction that exists): later
    /// retransmission intervals use the new T1/T2; a new max lifetime runs
    /// from now (Kamailio moves the end of life the same way).
    pub fn tune(
        &mut self,
        tid: Tid,
        tuning: &Tuning,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> bool {
        if tuning.is_empty() {
            return self.contains(tid);
        }
        let tick = self.tick(now);
        let configured = self.cfg.clone();
        self.with_cell(tid, tick, out, |cell, cx| {
            let mut own = cell.cfg.as_deref().unwrap_or(cx.cfg).clone();
            tuning.apply(&mut own, &configured);
            if tuning.changes_lifetime() && cell.lifetime.count() > 0 {
                let lifetime = if cell.server.is_invite() {
                    own.max_inv_lifetime
                } else {
                    own.max_noninv_lifetime
                };
                cx.arm(
                    &mut cell.lifetime,
                    Owner::Cell,
                    TimerKind::MaxLifetime,
                    lifetime,
                );
            }
            cell.cfg = Some(std::sync::Arc::new(own));
        })
        .is_some()
    }

    /// Arms or disarms the failure hook (`t_on_failure`): when every branch
    /// has failed, report instead of replying. It disarms itself when reported.
    pub fn set_failure_hook(&mut self, tid: Tid, armed: bool) {
        if let Some(c) = self.cell_mut(tid) {
            c.failure_armed = armed;
        }
    }

    /// Ends a transaction now, whatever its state (`t_release`).
    pub fn release(&mut self, tid: Tid) -> bool {
        if !self.contains(tid) {
            return false;
        }
        self.free_slot(tid);
        true
    }
}

impl<U: Default> TransactionTable<U> {
    /// Handles a CANCEL matched to `invite` (§16.10, Kamailio `t_relay` of a
    /// CANCEL): the CANCEL gets its own transaction answered 200 at once
    /// ("the element MUST immediately return a 200 (OK) response"); every
    /// pending branch is canceled (§9.1); with no branch yet the INVITE is
    /// answered 487 (before the CANCEL's 200, as Kamailio 5.6 sends them).
    /// The downstream 487s then complete the INVITE as usual.
    pub fn cancel(
        &mut self,
        invite: Tid,
        cancel: &Message,
        from: &Source,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> Result<CancelOutcome, TmError> {
        let cell = self.cell(invite).ok_or(TmError::NoTransaction)?;
        let pending = cell.any_pending() && !cell.server.final_sent();
        let unanswered = cell.branches.is_empty() && !cell.server.final_sent();
        let tick = self.tick(now);
        let reason = Bytes::from(build::header_lines(cancel, b"Reason"));
        let on_invite = |t: &mut Self, out: &mut Vec<Transmit>| {
            t.with_cell(invite, tick, out, |cell, cx| {
                cell.on_cancel(reason.clone(), cx)
            })
            .ok_or(TmError::NoTransaction)
        };
        let first = if unanswered {
            Some(on_invite(self, out)?)
        } else {
            None
        };
        let cancel_tid = self
            .create_server(cancel, from, U::default(), now, out)
            .ok();
        if let Some(ct) = cancel_tid {
            let reason: &[u8] = if pending {
                b"canceling"
            } else {
                b"ok -- no more pending branches"
            };
            self.with_cell(ct, tick, out, |c, cx| c.send_local(200, reason, cx));
        }
        let (pending, completion) = match first {
            Some(done) => done,
            None => on_invite(self, out)?,
        };
        let event = match completion {
            Completion::FinalSent(code) => Some(TmEvent::FinalSent { tid: invite, code }),
            Completion::NeedsFailureRoute(code) => {
                Some(TmEvent::NeedsFailureRoute { tid: invite, code })
            }
            Completion::Open => None,
        };
        Ok(CancelOutcome {
            cancel: cancel_tid,
            pending,
            event,
        })
    }
}
