//! tm module parameters (KAMAILIO-REFERENCE §3.1): timers in milliseconds,
//! mapped onto the transaction layer's [`TmConfig`].

use std::time::Duration;

use crate::script::registry::{ModParams, ParamDef, ParamKind};
use crate::tm::TmConfig;

pub(super) const PARAMS: &[ParamDef] = &[
    ParamDef {
        name: "fr_timer",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "fr_inv_timer",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "retr_timer1",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "retr_timer2",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "max_inv_lifetime",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "max_noninv_lifetime",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "wt_timer",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "auto_inv_100",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "auto_inv_100_reason",
        kind: ParamKind::Str,
    },
    ParamDef {
        name: "restart_fr_on_each_reply",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "failure_reply_mode",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "noisy_ctimer",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "unix_tx_timeout",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "aggregate_challenges",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "reparse_invite",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "ac_extra_hdrs",
        kind: ParamKind::Str,
    },
    ParamDef {
        name: "blst_503",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "contacts_avp",
        kind: ParamKind::Str,
    },
    ParamDef {
        name: "contact_flows_avp",
        kind: ParamKind::Str,
    },
    ParamDef {
        name: "fr_timer_avp",
        kind: ParamKind::Str,
    },
    ParamDef {
        name: "fr_inv_timer_avp",
        kind: ParamKind::Str,
    },
    ParamDef {
        name: "cancel_b_method",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "e2e_cancel_reason",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "remap_503_500",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "disable_6xx_block",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "local_ack_mode",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "failure_exec_mode",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "dns_reuse_rcv_socket",
        kind: ParamKind::Int,
    },
    ParamDef {
        name: "xavp_contact",
        kind: ParamKind::Str,
    },
    ParamDef {
        name: "reparse_on_dns_failover",
        kind: ParamKind::Int,
    },
];

/// Parameters accepted with no effect. `reparse_on_dns_failover`: Kamailio
/// builds a DNS-failover branch from the failed branch's buffer (1, the
/// default) or from the request again (0, which loses what a branch route
/// changed); ringsip always does the former.
pub fn unsupported_params(params: &ModParams) -> Vec<String> {
    params.set_among("tm", &["reparse_on_dns_failover"])
}

/// The transaction settings the configuration asks for.
pub fn config_from(params: &ModParams) -> TmConfig {
    let mut cfg = TmConfig::default();
    let ms = |name: &str| {
        params
            .int("tm", name)
            .filter(|v| *v > 0)
            .map(|v| Duration::from_millis(v as u64))
    };
    if let Some(d) = ms("fr_timer") {
        cfg.fr_timer = d;
    }
    if let Some(d) = ms("fr_inv_timer") {
        cfg.fr_inv_timer = d;
    }
    if let Some(d) = ms("retr_timer1") {
        cfg.t1 = d;
    }
    if let Some(d) = ms("retr_timer2") {
        cfg.t2 = d;
    }
    if let Some(d) = ms("max_inv_lifetime") {
        cfg.max_inv_lifetime = d;
    }
    if let Some(d) = ms("max_noninv_lifetime") {
        cfg.max_noninv_lifetime = d;
    }
    // Kamailio's wt_timer (5 s by default) ends completed transactions.
    cfg.wt_timer = Some(ms("wt_timer").unwrap_or(Duration::from_secs(5)));
    if let Some(v) = params.int("tm", "auto_inv_100") {
        cfg.auto_inv_100 = v != 0;
    }
    if let Some(v) = params.int("tm", "restart_fr_on_each_reply") {
        cfg.restart_fr_on_each_reply = v != 0;
    }
    if let Some(mode) = params
        .int("tm", "failure_reply_mode")
        .and_then(crate::tm::DropReplies::from_mode)
    {
        cfg.failure_reply_mode = mode;
    }
    if let Some(v) = params.int("tm", "disable_6xx_block") {
        cfg.disable_6xx_block = v != 0;
    }
    if let Some(v) = params.int("tm", "e2e_cancel_reason") {
        cfg.e2e_cancel_reason = v != 0;
    }
    if let Some(v) = params.int("tm", "remap_503_500") {
        cfg.remap_503_500 = v != 0;
    }
    cfg
}
