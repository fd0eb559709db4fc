//! The proxy cell (Kamailio's transaction): one server transaction and the
//! client branches it forked, with the response context of RFC 3261 §16.7.
//!
//! - Provisional responses other than 100 go upstream at once, until a final
//!   was sent (§16.7 step 5).
//! - Every 2xx to an INVITE goes upstream at once, even after another final
//!   (step 5), and the other pending branches are canceled (step 10).
//! - A 6xx cancels the other pending branches (step 10: "A proxy SHOULD also
//!   generate a CANCEL request for all pending client transactions associated
//!   with this response context when it receives a 6xx response").
//! - Other finals are stored; when every branch has one, the best is chosen
//!   (step 6) with Kamailio's priorities, and either sent upstream or, when a
//!   failure route is armed, reported so that the script can fork again.

use bytes::Bytes;
use smallvec::SmallVec;

use super::build::{self, LocalReply};
use super::client::{Branch, BranchEvent, Outcome};
use super::ctx::Ctx;
use super::server::Server;
use super::timer::{TimerKind, Timers};
use crate::sip::{Edits, HeaderName, Message};

/// Whether the response context is finished, after an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Completion {
    /// Branches still pending, a final already sent, or a failure route running.
    Open,
    /// The best response (this code) was sent upstream.
    FinalSent(u16),
    /// All branches failed; the armed failure route must run (winning code).
    NeedsFailureRoute(u16),
}

/// What a response did to the cell (mapped to the public `ReplyAction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponseOutcome {
    Absorbed,
    Relayed(u16),
    Stored(u16),
    Completed(Completion),
    /// A 503 on a branch with more DNS addresses (`use_dns_failover`):
    /// the table adds a branch to the next one instead of deciding.
    FailOver {
        branch: u8,
        code: u16,
    },
}

/// `use_dns_failover`: the addresses DNS gave after each branch's own, in
/// the order to try (boxed: most transactions have none).
pub(crate) type DnsFailover = Option<Box<Vec<(u8, Vec<std::net::SocketAddr>)>>>;

/// Header lines of the CANCELs sent after a 2xx (RFC 3326; Kamailio `local_cancel_reason`).
const REASON_200: &[u8] = b"Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n";

#[derive(Debug)]
pub(crate) struct Cell<U> {
    pub server: Server,
    /// Most transactions have one branch: it lives in the cell (in its
    /// slab slot), not in an allocation of its own.
    pub branches: SmallVec<[Branch; 1]>,
    /// Max lifetime (Kamailio `max_inv_lifetime` / `max_noninv_lifetime`).
    pub lifetime: Timers,
    /// The hash under which the server side is indexed (`None`: not indexed).
    pub index_key: Option<u64>,
    /// First branch of the current serial leg (step of forking).
    pub leg_start: u8,
    /// Branches whose replies are no longer candidates for selection (bit i:
    /// branch i), dropped after a failure route per `failure_reply_mode` or
    /// `t_drop_replies()`.
    pub dropped: u16,
    /// Branch count and leg start when the failure route began (what it
    /// may drop: Kamailio `failure_reply_mode` 1–3).
    pub fail_at: u8,
    pub fail_leg: u8,
    /// How the running failure route drops stored replies (see [`DropReplies`]).
    pub drop_mode: DropReplies,
    /// `t_set_fr()`: this transaction's `fr_inv_timer` and `fr_timer` in ms (0: default).
    pub fr_ms: [u32; 2],
    /// A CANCEL was received (`t_is_canceled`).
    pub canceled: bool,
    /// The max lifetime passed (`t_is_expired`): no new branches.
    pub expired: bool,
    /// A 6xx arrived (§16.7 step 5: the proxy "MUST NOT create any new
    /// branches in this context"), unless `disable_6xx_block`.
    pub blocked_6xx: bool,
    /// `t_on_failure` armed: report instead of replying when all branches failed.
    pub failure_armed: bool,
    /// The failure route runs now: replies wait for `failure_done`.
    pub in_failure: bool,
    /// Branches added by the running failure route start a new leg.
    pub new_leg: bool,
    /// Reason lines of the received CANCEL, copied into ours (`e2e_cancel_reason`).
    pub cancel_reason: Bytes,
    /// The branch whose final (reply or timeout) came last: the one that
    /// completed the context when the failure route runs.
    pub last_final: Option<u8>,
    /// This transaction's own settings ([`super::Tuning`]), when the script
    /// changed any; else the table's.
    pub cfg: Option<std::sync::Arc<super::config::TmConfig>>,
    /// What DNS failover may still try, per branch.
    pub dns_failover: DnsFailover,
    pub user: U,
}

impl<U> Cell<U> {
    pub fn new(server: Server, user: U) -> Cell<U> {
        Cell {
            server,
            branches: SmallVec::new(),
            lifetime: Timers::default(),
            index_key: None,
            leg_start: 0,
            dropped: 0,
            fail_at: 0,
            fail_leg: 0,
            drop_mode: DropReplies::OnNewLeg,
            fr_ms: [0, 0],
            canceled: false,
            expired: false,
            blocked_6xx: false,
            failure_armed: false,
            in_failure: false,
            new_leg: false,
            cancel_reason: Bytes::new(),
            last_final: None,
            cfg: None,
            dns_failover: None,
            user,
        }
    }

    /// Whether nothing is left to do: the server transaction and every branch ended.
    pub fn is_done(&self) -> bool {
        self.server.is_terminated() && self.branches.iter().all(Branch::is_terminated)
    }

    /// Whether branch `b` has another DNS address to try, and a new
    /// branch may still be added.
    pub fn may_fail_over(&self, b: usize) -> bool {
        !self.blocked_6xx
            && !self.canceled
            && !self.expired
            && !self.server.final_sent()
            && self.dns_failover.as_ref().is_some_and(|list| {
                list.iter()
                    .any(|(i, rest)| usize::from(*i) == b && !rest.is_empty())
            })
    }

    /// The next DNS address of branch `b`, the rest moving to the branch
    /// `next` that will try it.
    pub fn take_failover(&mut self, b: u8, next: u8) -> Option<std::net::SocketAddr> {
        let list = self.dns_failover.as_mut()?;
        let at = list
            .iter()
            .position(|(i, rest)| *i == b && !rest.is_empty())?;
        let (_, mut rest) = list.swap_remove(at);
        let first = rest.remove(0);
        if !rest.is_empty() {
            list.push((next, rest));
        }
        Some(first)
    }

    pub fn any_pending(&self) -> bool {
        self.branches.iter().any(Branch::is_pending)
    }

    /// A response on branch `b` (`msg` is for its request, or for its CANCEL
    /// when `to_cancel`). `second_via`: where the second via-parm of its top
    /// Via header starts, when known already (see [`build::relayed_reply`]).
    pub fn on_response(
        &mut self,
        b: usize,
        msg: &Message,
        to_cancel: bool,
        edits: Option<&Edits>,
        second_via: Option<Option<usize>>,
        cx: &mut Ctx<'_>,
    ) -> ResponseOutcome {
        let Some(code) = msg.status() else {
            return ResponseOutcome::Absorbed;
        };
        let Some(branch) = self.branches.get_mut(b) else {
            return ResponseOutcome::Absorbed;
        };
        if to_cancel {
            branch.on_cancel_response(code, cx);
            return ResponseOutcome::Absorbed;
        }
        let was_pending = branch.is_pending();
        let fr_inv = match self.fr_ms[0] {
            0 => cx.cfg.fr_inv_timer,
            ms => std::time::Duration::from_millis(u64::from(ms)),
        };
        let event = branch.on_response(
            code,
            fr_inv,
            |request| {
                let invite = Message::parse(request.clone()).ok()?;
                build::ack(&invite, msg, &mut Vec::with_capacity(512))
            },
            cx,
        );
        let invite = self.server.is_invite();
        let upstream_reliable = self.server.target.is_reliable();
        match event {
            BranchEvent::Absorbed => ResponseOutcome::Absorbed,
            BranchEvent::Provisional => {
                if self.server.final_sent() {
                    return ResponseOutcome::Absorbed;
                }
                let relayed =
                    build::relayed_reply(msg, edits, upstream_reliable, second_via, cx.scratch)
                        .is_some_and(|data| self.server.send_provisional(code, data, cx));
                if relayed {
                    cx.stats.relayed += 1;
                    ResponseOutcome::Relayed(code)
                } else {
                    ResponseOutcome::Absorbed
                }
            }
            BranchEvent::Success => {
                let Some(data) =
                    build::relayed_reply(msg, edits, upstream_reliable, second_via, cx.scratch)
                else {
                    return ResponseOutcome::Absorbed;
                };
                if !self
                    .server
                    .send_final(code, data, self.fr_timer(cx.cfg), cx)
                {
                    return ResponseOutcome::Absorbed;
                }
                cx.stats.relayed += 1;
                if invite {
                    // §16.7 step 10: "If the forwarded response was a final response,
                    // the proxy MUST generate a CANCEL request for all pending client
                    // transactions associated with this response context."
                    self.cancel_pending(Some(b), Bytes::from_static(REASON_200), cx);
                }
                ResponseOutcome::Relayed(code)
            }
            BranchEvent::Failure if !was_pending => ResponseOutcome::Absorbed,
            BranchEvent::Failure => {
                let upstream =
                    build::relayed_reply(msg, edits, upstream_reliable, second_via, cx.scratch);
                if let Some(branch) = self.branches.get_mut(b) {
                    branch.outcome = Outcome::Final { code, upstream };
                }
                self.last_final = u8::try_from(b).ok();
                if code >= 600 && !cx.cfg.disable_6xx_block {
                    self.blocked_6xx = true;
                }
                if code >= 600 && invite && !cx.cfg.disable_6xx_block {
                    let mut reason = b"Reason: SIP;cause=".to_vec();
                    reason.extend_from_slice(itoa::Buffer::new().format(code).as_bytes());
                    reason.extend_from_slice(b"\r\n");
                    self.cancel_pending(Some(b), Bytes::from(reason), cx);
                }
                // Kamailio adds the branch to the next address before the
                // 503 is weighed (t_reply.c, DNS failover).
                if code == 503 && self.dns_failover.is_some() && self.may_fail_over(b) {
                    return ResponseOutcome::FailOver {
                        branch: b as u8,
                        code,
                    };
                }
                match self.check_complete(cx) {
                    // Decided already (a 2xx went up): kept for inspection only.
                    Completion::Open if self.server.final_sent() => ResponseOutcome::Absorbed,
                    Completion::Open => ResponseOutcome::Stored(code),
                    done => ResponseOutcome::Completed(done),
                }
            }
        }
    }

    /// Cancels every pending INVITE branch but `except`. Returns whether any was pending.
    pub fn cancel_pending(
        &mut self,
        except: Option<usize>,
        reason: Bytes,
        cx: &mut Ctx<'_>,
    ) -> bool {
        let stop = matches!(
            cx.cfg.cancel_unreplied,
            super::config::CancelUnreplied::StopBranch
        );
        let mut any = false;
        for (i, branch) in self.branches.iter_mut().enumerate() {
            if Some(i) == except || !branch.is_pending() {
                continue;
            }
            any = true;
            branch.cancel(stop, &reason, cx);
        }
        any
    }

    /// The CANCEL for this (INVITE) cell arrived (§16.10): cancel every pending
    /// branch; with none created yet, answer the INVITE 487 ourselves (Kamailio).
    /// Returns whether branches were pending.
    pub fn on_cancel(&mut self, reason: Bytes, cx: &mut Ctx<'_>) -> (bool, Completion) {
        self.canceled = true;
        // t_set_no_e2e_cancel_reason(1) / e2e_cancel_reason=0: ours carry none.
        let reason = if cx.cfg.e2e_cancel_reason {
            reason
        } else {
            Bytes::new()
        };
        self.cancel_reason = reason.clone();
        if self.server.final_sent() {
            return (false, Completion::Open);
        }
        if self.branches.is_empty() {
            // Kamailio's reason for a 487 it makes itself on a CANCEL.
            self.send_local(487, b"Request canceled", cx);
            return (false, Completion::FinalSent(487));
        }
        let pending = self.cancel_pending(None, reason, cx);
        // Stopped branches (cancel_b_method 0) may have ended the context.
        (pending, self.check_complete(cx))
    }

    /// The best final among the candidates (§16.7 step 6; Kamailio's
    /// priorities, ties to the lower branch index); replies dropped after a
    /// failure route are no longer candidates.
    pub fn best(&self) -> Option<(usize, u16)> {
        let mut best: Option<(usize, u16, u32)> = None;
        for (i, b) in self.branches.iter().enumerate() {
            let code = b.code();
            if code < 300 || self.is_dropped(i) {
                continue;
            }
            let p = priority(code);
            if best.is_none_or(|(_, _, bp)| p < bp) {
                best = Some((i, code, p));
            }
        }
        best.map(|(i, c, _)| (i, c))
    }

    fn is_dropped(&self, i: usize) -> bool {
        i < 16 && self.dropped & (1 << i) != 0
    }

    /// This transaction's `fr_timer` (`t_set_fr`, else the configured one).
    pub fn fr_timer(&self, cfg: &super::config::TmConfig) -> std::time::Duration {
        match self.fr_ms[1] {
            0 => cfg.fr_timer,
            ms => std::time::Duration::from_millis(u64::from(ms)),
        }
    }

    /// This transaction's `fr_inv_timer`.
    pub fn fr_inv_timer(&self, cfg: &super::config::TmConfig) -> std::time::Duration {
        match self.fr_ms[0] {
            0 => cfg.fr_inv_timer,
            ms => std::time::Duration::from_millis(u64::from(ms)),
        }
    }

    /// After the failure route (Kamailio's reply dropping): with
    /// [`DropReplies::OnNewLeg`] the earlier replies stop being candidates
    /// when the route started a new leg; with `All` always; with
    /// `PreviousLeg` those of the leg that just failed; with `Keep` never.
    /// Returns whether replies were dropped.
    pub fn drop_replies_after_failure(&mut self) -> bool {
        let added = self.branches.len() > usize::from(self.fail_at);
        let from = match self.drop_mode {
            DropReplies::Keep => return false,
            DropReplies::OnNewLeg if !added => return false,
            DropReplies::OnNewLeg | DropReplies::All => 0,
            DropReplies::PreviousLeg => self.fail_leg.min(self.fail_at),
        };
        for i in usize::from(from)..usize::from(self.fail_at).min(16) {
            self.dropped |= 1 << i;
        }
        true
    }

    /// Sends the best response upstream, or reports that the failure route must run.
    pub fn check_complete(&mut self, cx: &mut Ctx<'_>) -> Completion {
        if self.server.final_sent() || self.in_failure || self.branches.is_empty() {
            return Completion::Open;
        }
        if self.any_pending() {
            return Completion::Open;
        }
        let code = self.best().map_or(408, |(_, c)| c);
        if self.failure_armed {
            self.failure_armed = false;
            self.in_failure = true;
            self.new_leg = true;
            self.fail_at = u8::try_from(self.branches.len()).unwrap_or(u8::MAX);
            self.fail_leg = self.leg_start;
            self.drop_mode = cx.cfg.failure_reply_mode;
            return Completion::NeedsFailureRoute(code);
        }
        Completion::FinalSent(self.send_best(cx))
    }

    /// Sends the chosen response upstream (§16.7 steps 6–9); returns its code.
    pub fn send_best(&mut self, cx: &mut Ctx<'_>) -> u16 {
        let Some((i, code)) = self.best() else {
            // "If there are no final responses in the context, the proxy MUST
            // send a 408 (Request Timeout) response to the server transaction."
            let code = if self.canceled { 487 } else { 408 };
            self.send_local(code, reason_of(code), cx);
            return code;
        };
        let upstream = match self.branches.get(i).map(|b| &b.outcome) {
            Some(Outcome::Final {
                upstream: Some(u), ..
            }) => Some(u.clone()),
            _ => None,
        };
        match upstream {
            Some(data) => {
                let data = if code == 401 || code == 407 {
                    self.with_challenges(i, data, cx)
                } else {
                    data
                };
                if code == 503 && cx.cfg.remap_503_500 {
                    // As Kamailio: a 500 of our own (our To tag, none of the
                    // 503's headers) with the 503's reason phrase.
                    let reason = reason_phrase(&data).to_vec();
                    self.send_local(500, &reason, cx);
                    return 500;
                }
                if self
                    .server
                    .send_final(code, data, self.fr_timer(cx.cfg), cx)
                {
                    cx.stats.relayed += 1;
                }
                code
            }
            None => {
                // A local outcome (timeout, stopped branch): a 487 once canceled.
                let code = if self.canceled { 487 } else { code };
                self.send_local(code, reason_of(code), cx);
                code
            }
        }
    }

    /// §16.7 step 7: "If the selected response is a 401 (Unauthorized) or 407
    /// (Proxy Authentication Required), the proxy MUST collect any
    /// WWW-Authenticate and Proxy-Authenticate header field values from all
    /// other 401 (Unauthorized) and 407 (Proxy Authentication Required)
    /// responses received so far in this response context and add them to this
    /// response without modification before forwarding."
    fn with_challenges(&self, chosen: usize, data: Bytes, cx: &mut Ctx<'_>) -> Bytes {
        let mut lines = Vec::new();
        for (i, b) in self.branches.iter().enumerate() {
            let Outcome::Final {
                code: 401 | 407,
                upstream: Some(u),
            } = &b.outcome
            else {
                continue;
            };
            if i == chosen {
                continue;
            }
            let Ok(other) = Message::parse(u.clone()) else {
                continue;
            };
            for h in other.headers() {
                if matches!(
                    h.id,
                    HeaderName::WwwAuthenticate | HeaderName::ProxyAuthenticate
                ) {
                    lines.extend_from_slice(other.slice(h.line));
                }
            }
        }
        if lines.is_empty() {
            return data;
        }
        let Ok(msg) = Message::parse(data.clone()) else {
            return data;
        };
        let mut e = Edits::new();
        e.append_header(&msg, lines);
        crate::sip::serialize(&msg, &e, cx.scratch);
        Bytes::copy_from_slice(cx.scratch)
    }

    /// Sends a locally generated response on the server transaction.
    pub fn send_local(&mut self, code: u16, reason: &[u8], cx: &mut Ctx<'_>) -> bool {
        self.send_local_reply(
            &LocalReply {
                code,
                reason,
                ..LocalReply::default()
            },
            cx,
        )
    }

    /// Sends a locally generated response (t_reply) on the server transaction.
    pub fn send_local_reply(&mut self, spec: &LocalReply<'_>, cx: &mut Ctx<'_>) -> bool {
        let Ok(req) = Message::parse(self.server.request.clone()) else {
            return false;
        };
        let tag_prefix = cx.tag_prefix;
        let mut tag = [0u8; 41];
        let tag_len = tag_prefix.len().min(32);
        tag[..tag_len].copy_from_slice(&tag_prefix[..tag_len]);
        tag[tag_len] = b'-';
        tag[tag_len + 1..tag_len + 9].copy_from_slice(&cx.tag_suffix());
        // RFC 3261 §8.2.6.2: a 100 Trying may go without a To tag (Kamailio sends none).
        let to_tag = (spec.code > 100).then_some(&tag[..tag_len + 9]);
        let data = build::local_reply(
            &req,
            &self.server.source,
            self.server.force_rport,
            spec,
            to_tag,
            &cx.cfg.server_header,
            cx.scratch,
        );
        let sent = if spec.code < 200 {
            self.server.send_provisional(spec.code, data, cx)
        } else {
            let timer_h = self.fr_timer(cx.cfg);
            self.server.send_final(spec.code, data, timer_h, cx)
        };
        if sent {
            cx.stats.local_replies += 1;
        }
        sent
    }

    /// The max lifetime passed: every pending branch ends as if timed out.
    pub fn on_lifetime(&mut self, cx: &mut Ctx<'_>) -> Completion {
        self.expired = true;
        // A failure route that never reported back (`failure_done`) must not
        // keep the transaction forever.
        self.in_failure = false;
        for (i, b) in self.branches.iter_mut().enumerate() {
            if b.is_pending() {
                b.timeout(TimerKind::MaxLifetime, cx);
                self.last_final = u8::try_from(i).ok();
            }
        }
        if self.branches.is_empty() && !self.server.final_sent() {
            // Nobody relayed or answered in time (RFC 3261 §16.7 step 6: 408).
            self.send_local(408, reason_of(408), cx);
            return Completion::FinalSent(408);
        }
        self.check_complete(cx)
    }

    /// Whether a new branch may be added now.
    pub fn can_fork(&self) -> bool {
        !self.canceled
            && !self.expired
            && !self.blocked_6xx
            && !self.server.final_sent()
            && !self.server.is_terminated()
    }
}

/// Which stored replies a failure route drops when it ends (Kamailio's
/// `failure_reply_mode`, per run `t_drop_replies()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DropReplies {
    /// 0: every reply stays a candidate.
    Keep,
    /// 1: every stored reply is dropped (`t_drop_replies("a")`).
    All,
    /// 2: the replies of the leg that just failed are dropped (`t_drop_replies("l")`).
    PreviousLeg,
    /// 3 (default): all stored replies are dropped when the route starts a new leg.
    #[default]
    OnNewLeg,
}

impl DropReplies {
    /// The mode of a `failure_reply_mode` value (0–3).
    pub fn from_mode(mode: i64) -> Option<DropReplies> {
        Some(match mode {
            0 => DropReplies::Keep,
            1 => DropReplies::All,
            2 => DropReplies::PreviousLeg,
            3 => DropReplies::OnNewLeg,
            _ => return None,
        })
    }
}

/// Kamailio's reply priority (lower wins; KAMAILIO-REFERENCE §3.5): 6xx first,
/// then 3xx, then 4xx (401, 407, 415, 420 and 484 before the others: they tell
/// the client how to retry, §16.7 step 6), then 5xx.
pub(crate) fn priority(code: u16) -> u32 {
    let xx = u32::from(code % 100);
    match code / 100 {
        2 => xx,
        6 => 1000 + xx,
        3 => 3000 + xx,
        4 if matches!(code, 401 | 407 | 415 | 420 | 484) => 4000 + xx,
        4 => 4100 + xx,
        5 => 5000 + xx,
        _ => 10_000 + u32::from(code),
    }
}

/// Reason phrases of the responses this layer generates.
pub(crate) fn reason_of(code: u16) -> &'static [u8] {
    match code {
        408 => b"Request Timeout",
        487 => b"Request Terminated",
        500 => b"Server Internal Error",
        _ => b"Unknown",
    }
}

/// The reason phrase of a response's status line (empty when unreadable).
fn reason_phrase(response: &[u8]) -> &[u8] {
    let line = response.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // `SIP/2.0 NNN reason`: after the second space.
    line.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default()
}
