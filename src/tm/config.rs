//! [`TmConfig`]: the timer values and switches of the transaction layer, with
//! Kamailio's tm defaults (KAMAILIO-REFERENCE §3.1) and RFC 3261 §17's timers.

use std::time::Duration;

/// What happens to a branch that has had no provisional reply when it must be
/// canceled (Kamailio's `cancel_b_method`). RFC 3261 §9.1: "If no provisional
/// response has been received, the CANCEL request MUST NOT be sent; rather,
/// the client MUST wait for the arrival of a provisional response before
/// sending the request."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelUnreplied {
    /// Keep retransmitting the INVITE and send the CANCEL as soon as a
    /// provisional reply arrives (Kamailio `cancel_b_method=1`, the default).
    WaitProvisional,
    /// Stop retransmitting and end the branch at once with a local 487
    /// (Kamailio `cancel_b_method=0`). A late 2xx is still relayed.
    StopBranch,
}

/// Timers and switches of one core's [`TransactionTable`](super::TransactionTable).
///
/// Timer names follow RFC 3261 §17 (table 4 in §A); the `fr_*` and
/// `max_*_lifetime` values are Kamailio's tm parameters of the same names.
#[derive(Clone, Debug)]
pub struct TmConfig {
    /// T1, the round-trip estimate (`retr_timer1`, 500 ms): first retransmission interval.
    pub t1: Duration,
    /// T2, the cap of non-INVITE request and INVITE response retransmission intervals
    /// (`retr_timer2`, 4 s).
    pub t2: Duration,
    /// T4, how long a message may stay in the network (5 s): timers I and K.
    pub t4: Duration,
    /// Cap of Timer A (INVITE request retransmissions). RFC 3261 §17.1.1.2 has no
    /// cap (A doubles: T1, 2·T1, 4·T1…); Kamailio caps at T2. `None` follows the RFC.
    pub invite_retransmit_cap: Option<Duration>,
    /// Timers B and F: how long a client transaction waits for a final response
    /// before RFC 3261 declares a timeout (64·T1 = 32 s). Kamailio has no such
    /// timer and relies on `fr_timer` alone: the earlier of the two fires.
    pub timer_b_f: Duration,
    /// Timer D: how long a client INVITE transaction absorbs retransmitted
    /// non-2xx finals over UDP (RFC 3261 §17.1.1.2: at least 32 s).
    pub timer_d: Duration,
    /// `fr_timer` (30 s): no final reply on a branch (any method; INVITE before a 1xx).
    pub fr_timer: Duration,
    /// `fr_inv_timer` (120 s): no final reply on an INVITE branch after a 1xx
    /// (RFC 3261 §16.6 step 11 calls it Timer C and asks for more than 3 minutes).
    pub fr_inv_timer: Duration,
    /// `restart_fr_on_each_reply` (on): restart `fr_inv_timer` on every 1xx.
    pub restart_fr_on_each_reply: bool,
    /// `max_inv_lifetime` (180 s): an INVITE transaction's branches are ended
    /// with a local 408 once this much time has passed since its creation.
    pub max_inv_lifetime: Duration,
    /// `max_noninv_lifetime` (32 s): the same for other methods.
    pub max_noninv_lifetime: Duration,
    /// `auto_inv_100` (on): answer an INVITE with 100 Trying as soon as its
    /// transaction is created (RFC 3261 §16.2 permits it; §17.2.1 wants one within 200 ms).
    pub auto_inv_100: bool,
    /// Reason phrase of that 100 (Kamailio: `trying -- your call is important to us`).
    pub trying_reason: &'static [u8],
    /// `remap_503_500` (on): a 503 chosen as the best response goes upstream as 500
    /// (RFC 3261 §16.7 step 6).
    pub remap_503_500: bool,
    /// `disable_6xx_block` (off): when off, a 6xx cancels the other branches and
    /// forbids new ones (RFC 3261 §16.7 steps 5 and 10); when on, a 6xx is a
    /// final like any other.
    pub disable_6xx_block: bool,
    /// `cancel_b_method`: what to do with a branch that has no provisional when canceled.
    pub cancel_unreplied: CancelUnreplied,
    /// `Server:` value on locally generated replies; empty for none.
    pub server_header: bytes::Bytes,
    /// Most branches one transaction may have (Kamailio's `MAX_BRANCHES` is 12).
    pub max_branches: u8,
    /// Kamailio's `wt_timer`: how long a transaction stays after its 2xx
    /// (Timers L and M, RFC 6026) or a non-INVITE final (Timer J) to absorb
    /// retransmissions. `None` follows the RFCs (64·T1 = 32 s); a script's
    /// configuration gets Kamailio's 5 s unless it sets `wt_timer`. Shorter
    /// means far fewer live transactions at a given call rate; a request
    /// retransmitted after it is treated as new (as by Kamailio).
    pub wt_timer: Option<Duration>,
    /// `failure_reply_mode` (3): which stored replies stay candidates after a
    /// failure route.
    pub failure_reply_mode: super::cell::DropReplies,
    /// Copy the Reason headers of a received CANCEL into the CANCELs sent
    /// downstream (Kamailio `e2e_cancel_reason`, on by default; RFC 3326).
    pub e2e_cancel_reason: bool,
}

impl Default for TmConfig {
    fn default() -> TmConfig {
        let t1 = Duration::from_millis(500);
        TmConfig {
            t1,
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            invite_retransmit_cap: None,
            timer_b_f: t1 * 64,
            timer_d: Duration::from_secs(32),
            fr_timer: Duration::from_secs(30),
            fr_inv_timer: Duration::from_secs(120),
            restart_fr_on_each_reply: true,
            max_inv_lifetime: Duration::from_secs(180),
            max_noninv_lifetime: Duration::from_secs(32),
            auto_inv_100: true,
            trying_reason: b"trying -- your call is important to us",
            remap_503_500: true,
            disable_6xx_block: false,
            cancel_unreplied: CancelUnreplied::WaitProvisional,
            server_header: bytes::Bytes::from_static(
                concat!("ringsip (", env!("CARGO_PKG_VERSION"), ")").as_bytes(),
            ),
            max_branches: 12,
            failure_reply_mode: super::cell::DropReplies::OnNewLeg,
            wt_timer: None,
            e2e_cancel_reason: true,
        }
    }
}

impl TmConfig {
    /// 64·T1: Timers J, L and M, and the wait for a final response after a
    /// CANCEL (§9.1). Timer H is the transaction's fr_timer, as Kamailio has it.
    pub fn t1_x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timers L, M and J: `wt_timer` when set, else 64·T1.
    pub fn wait(&self) -> Duration {
        self.wt_timer.unwrap_or_else(|| self.t1_x64())
    }
}

/// One per-transaction setting of [`Tuning`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Setting<T> {
    /// Unchanged.
    #[default]
    Keep,
    /// This value for this transaction.
    Set(T),
    /// Back to the table's configured value.
    Reset,
}

impl<T: Copy> Setting<T> {
    /// `later` wins unless it keeps.
    fn then(self, later: Setting<T>) -> Setting<T> {
        match later {
            Setting::Keep => self,
            other => other,
        }
    }

    fn apply(self, value: &mut T, configured: T) {
        match self {
            Setting::Keep => {}
            Setting::Set(v) => *value = v,
            Setting::Reset => *value = configured,
        }
    }
}

/// Per-transaction changes to the [`TmConfig`] (Kamailio's `t_set_retr`,
/// `t_set_max_lifetime`, `t_set_auto_inv_100`, `t_set_disable_6xx`,
/// `t_set_no_e2e_cancel_reason` and their resets). Given before the
/// transaction exists they apply when it is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    pub t1: Setting<Duration>,
    pub t2: Setting<Duration>,
    pub max_inv_lifetime: Setting<Duration>,
    pub max_noninv_lifetime: Setting<Duration>,
    pub auto_inv_100: Setting<bool>,
    pub disable_6xx_block: Setting<bool>,
    pub e2e_cancel_reason: Setting<bool>,
}

impl Tuning {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Tuning::default()
    }

    /// These changes followed by `later`'s.
    pub fn then(self, later: Tuning) -> Tuning {
        Tuning {
            t1: self.t1.then(later.t1),
            t2: self.t2.then(later.t2),
            max_inv_lifetime: self.max_inv_lifetime.then(later.max_inv_lifetime),
            max_noninv_lifetime: self.max_noninv_lifetime.then(later.max_noninv_lifetime),
            auto_inv_100: self.auto_inv_100.then(later.auto_inv_100),
            disable_6xx_block: self.disable_6xx_block.then(later.disable_6xx_block),
            e2e_cancel_reason: self.e2e_cancel_reason.then(later.e2e_cancel_reason),
        }
    }

    /// Applies the changes to `cfg`; `configured` is the table's own.
    pub fn apply(&self, cfg: &mut TmConfig, configured: &TmConfig) {
        self.t1.apply(&mut cfg.t1, configured.t1);
        self.t2.apply(&mut cfg.t2, configured.t2);
        self.max_inv_lifetime
            .apply(&mut cfg.max_inv_lifetime, configured.max_inv_lifetime);
        self.max_noninv_lifetime
            .apply(&mut cfg.max_noninv_lifetime, configured.max_noninv_lifetime);
        self.auto_inv_100
            .apply(&mut cfg.auto_inv_100, configured.auto_inv_100);
        self.disable_6xx_block
            .apply(&mut cfg.disable_6xx_block, configured.disable_6xx_block);
        self.e2e_cancel_reason
            .apply(&mut cfg.e2e_cancel_reason, configured.e2e_cancel_reason);
    }

    /// Whether it touches the max lifetime (its running timer is re-armed).
    pub fn changes_lifetime(&self) -> bool {
        self.max_inv_lifetime != Setting::Keep || self.max_noninv_lifetime != Setting::Keep
    }
}
