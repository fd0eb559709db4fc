//! What topos remembers: one dialog record per call (Kamailio's `topos_d`
//! row) and one transaction record per request sent (`topos_t`), the
//! tables that hold them in memory, and the changes each message makes to
//! them, for the database ([`Change`]).

use std::collections::HashMap;

/// `topos_d`: a call as each side knows it. `uid` is the generated part of
/// the contact users (`atpsh-<uid>` shown to the caller side, `btpsh-<uid>`
/// to the callee side).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dialog {
    pub uid: String,
    /// When it was written or last ended (unix seconds).
    pub rectime: i64,
    pub a_callid: Vec<u8>,
    /// The caller's and the callee's own Contact URIs.
    pub a_contact: Vec<u8>,
    pub b_contact: Vec<u8>,
    /// The Contact name-addrs this proxy shows each side (`<sip:atpsh-…@host>`).
    pub as_contact: Vec<u8>,
    pub bs_contact: Vec<u8>,
    pub a_tag: Vec<u8>,
    pub b_tag: Vec<u8>,
    /// Record-Route entries (`<uri>,<uri>`): the caller side's, the callee
    /// side's, and this proxy's own.
    pub a_rr: Vec<u8>,
    pub b_rr: Vec<u8>,
    pub s_rr: Vec<u8>,
    /// 1 once a 2xx confirmed the dialog; 0 before and after a BYE (then
    /// it goes after `branch_expire`).
    pub iflags: i64,
    pub r_uri: Vec<u8>,
    pub s_method: Vec<u8>,
    pub s_cseq: Vec<u8>,
}

impl Dialog {
    pub fn a_uuid(&self) -> String {
        format!("a{}", self.uid)
    }

    pub fn b_uuid(&self) -> String {
        format!("b{}", self.uid)
    }
}

/// `topos_t`: one request this proxy sent, found again by the branch of
/// its own Via when the answer comes back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Branch {
    /// This proxy's Via branch.
    pub x_vbranch: Vec<u8>,
    /// The dialog's uid.
    pub uid: String,
    pub rectime: i64,
    pub a_callid: Vec<u8>,
    /// 0: from the caller side (downstream), 1: from the callee side.
    pub direction: i64,
    /// The Vias below this proxy's, as the request carried them.
    pub x_via: Vec<u8>,
    /// The Record-Route entries below this proxy's, and this proxy's.
    pub x_rr: Vec<u8>,
    pub s_rr: Vec<u8>,
    pub x_uri: Vec<u8>,
    pub a_contact: Vec<u8>,
    pub as_contact: Vec<u8>,
    pub bs_contact: Vec<u8>,
    pub x_tag: Vec<u8>,
    pub a_tag: Vec<u8>,
    pub b_tag: Vec<u8>,
    pub s_method: Vec<u8>,
    pub s_cseq: Vec<u8>,
}

/// A change to persist, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    InsertDialog(Dialog),
    /// The dialog's whole row, after an update.
    UpdateDialog(Dialog),
    InsertBranch(Branch),
    /// Rows older than these unix times are gone: dialogs (confirmed ones
    /// by `dialog_expire`, others by `branch_expire`) and branches.
    Clean {
        dialogs_before: i64,
        unconfirmed_before: i64,
        branches_before: i64,
    },
}

/// The records, shared by every core.
#[derive(Debug, Default)]
pub struct Tables {
    pub dialogs: HashMap<String, Dialog>,
    pub branches: HashMap<Vec<u8>, Branch>,
}

impl Tables {
    /// Drops what `Change::Clean` names.
    pub fn clean(&mut self, dialogs_before: i64, unconfirmed_before: i64, branches_before: i64) {
        self.dialogs.retain(|_, d| {
            d.rectime > dialogs_before && (d.iflags != 0 || d.rectime > unconfirmed_before)
        });
        self.branches.retain(|_, b| b.rectime > branches_before);
    }
}

/// Kamailio's unique-id form: `tpsh-<unix time hex>-<process hex>-<counter>`.
pub fn uid(unix: i64, process: u32, counter: u64) -> String {
    format!("tpsh-{unix:x}-{process:x}-{counter:x}")
}
