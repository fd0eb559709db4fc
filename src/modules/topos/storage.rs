//! topos's records in Kamailio's `topos_d` / `topos_t` tables (the schema
//! of `topos-create.sql`, version 2): the SQL each [`Change`] writes, and
//! the rows read back at start-up, so that calls survive a restart as
//! they do in Kamailio, whose records live only in the database.

use super::record::{Branch, Change, Dialog, Tables};
use crate::store::time::{format_datetime, parse_datetime};
use crate::store::{sql_literal, SqlRows, SqlValue};

const DIALOG_COLUMNS: &str = "a_uuid, rectime, a_callid, a_contact, b_contact, as_contact, \
bs_contact, a_tag, b_tag, a_rr, b_rr, s_rr, iflags, r_uri, s_method, s_cseq";

const BRANCH_COLUMNS: &str = "x_vbranch, a_uuid, rectime, a_callid, direction, x_via, x_rr, \
s_rr, x_uri, a_contact, as_contact, bs_contact, x_tag, a_tag, b_tag, s_method, s_cseq";

pub const LOAD_DIALOGS: &str = "SELECT a_uuid, rectime, a_callid, a_contact, b_contact, \
as_contact, bs_contact, a_tag, b_tag, a_rr, b_rr, s_rr, iflags, r_uri, s_method, s_cseq FROM topos_d";

pub const LOAD_BRANCHES: &str = "SELECT x_vbranch, a_uuid, rectime, a_callid, direction, x_via, \
x_rr, s_rr, x_uri, a_contact, as_contact, bs_contact, x_tag, a_tag, b_tag, s_method, s_cseq FROM topos_t";

fn lit(v: &[u8]) -> Option<String> {
    sql_literal(v)
}

fn dialog_values(d: &Dialog) -> Option<Vec<String>> {
    Some(vec![
        lit(d.a_uuid().as_bytes())?,
        lit(format_datetime(d.rectime).as_bytes())?,
        lit(&d.a_callid)?,
        lit(&d.a_contact)?,
        lit(&d.b_contact)?,
        lit(&d.as_contact)?,
        lit(&d.bs_contact)?,
        lit(&d.a_tag)?,
        lit(&d.b_tag)?,
        lit(&d.a_rr)?,
        lit(&d.b_rr)?,
        lit(&d.s_rr)?,
        d.iflags.to_string(),
        lit(&d.r_uri)?,
        lit(&d.s_method)?,
        lit(&d.s_cseq)?,
    ])
}

/// The statements that persist `change`; empty when a value cannot be
/// written as an SQL literal the same way in every database.
pub fn statements(change: &Change) -> Vec<String> {
    match change {
        Change::InsertDialog(d) => dialog_values(d).map_or_else(Vec::new, |v| {
            // b_uuid is written too, as Kamailio does.
            vec![format!(
                "INSERT INTO topos_d ({DIALOG_COLUMNS}, b_uuid) VALUES ({}, {})",
                v.join(", "),
                lit(d.b_uuid().as_bytes()).unwrap_or_default()
            )]
        }),
        Change::UpdateDialog(d) => dialog_values(d).map_or_else(Vec::new, |v| {
            let sets: Vec<String> = DIALOG_COLUMNS
                .split(", ")
                .zip(v.iter())
                .skip(1)
                .map(|(c, v)| format!("{c} = {v}"))
                .collect();
            vec![format!(
                "UPDATE topos_d SET {} WHERE a_uuid = {}",
                sets.join(", "),
                v[0]
            )]
        }),
        Change::InsertBranch(b) => branch_values(b).map_or_else(Vec::new, |v| {
            vec![format!(
                "INSERT INTO topos_t ({BRANCH_COLUMNS}) VALUES ({})",
                v.join(", ")
            )]
        }),
        Change::Clean {
            dialogs_before,
            unconfirmed_before,
            branches_before,
        } => vec![
            format!(
                "DELETE FROM topos_d WHERE rectime <= '{}'",
                format_datetime(*dialogs_before)
            ),
            format!(
                "DELETE FROM topos_d WHERE rectime <= '{}' AND iflags = 0",
                format_datetime(*unconfirmed_before)
            ),
            format!(
                "DELETE FROM topos_t WHERE rectime <= '{}'",
                format_datetime(*branches_before)
            ),
        ],
    }
}

fn branch_values(b: &Branch) -> Option<Vec<String>> {
    Some(vec![
        lit(&b.x_vbranch)?,
        lit(format!("a{}", b.uid).as_bytes())?,
        lit(format_datetime(b.rectime).as_bytes())?,
        lit(&b.a_callid)?,
        b.direction.to_string(),
        lit(&b.x_via)?,
        lit(&b.x_rr)?,
        lit(&b.s_rr)?,
        lit(&b.x_uri)?,
        lit(&b.a_contact)?,
        lit(&b.as_contact)?,
        lit(&b.bs_contact)?,
        lit(&b.x_tag)?,
        lit(&b.a_tag)?,
        lit(&b.b_tag)?,
        lit(&b.s_method)?,
        lit(&b.s_cseq)?,
    ])
}

fn text(v: &SqlValue) -> Vec<u8> {
    match v {
        SqlValue::Str(s) => s.clone(),
        SqlValue::Int(i) | SqlValue::BigInt(i) => i.to_string().into_bytes(),
        SqlValue::Double(f) => f.to_string().into_bytes(),
        SqlValue::Null => Vec::new(),
    }
}

fn int(v: &SqlValue) -> i64 {
    match v {
        SqlValue::Int(i) | SqlValue::BigInt(i) => *i,
        other => String::from_utf8_lossy(&text(other))
            .trim()
            .parse()
            .unwrap_or(0),
    }
}

/// Unix seconds of a DATETIME as read back: ringsip's `YYYY-MM-DD HH:MM:SS`
/// text, or the julian day number Kamailio's db_sqlite writes.
fn time(v: &SqlValue) -> i64 {
    const UNIX_EPOCH_JULIAN_DAY: f64 = 2_440_587.5;
    let julian = |d: f64| ((d - UNIX_EPOCH_JULIAN_DAY) * 86_400.0).round() as i64;
    match v {
        SqlValue::Int(i) | SqlValue::BigInt(i) => *i,
        SqlValue::Double(d) => julian(*d),
        other => {
            let t = String::from_utf8_lossy(&text(other)).into_owned();
            match t.trim().parse::<f64>() {
                Ok(d) => julian(d),
                Err(_) => parse_datetime(&t).unwrap_or(0),
            }
        }
    }
}

/// The uid of an `atpsh-…`/`btpsh-…` value.
fn uid_of(uuid: &[u8]) -> Option<String> {
    (uuid.len() > 1).then(|| String::from_utf8_lossy(&uuid[1..]).into_owned())
}

/// Fills `tables` from the rows of [`LOAD_DIALOGS`] and [`LOAD_BRANCHES`].
pub fn load(tables: &mut Tables, dialogs: &SqlRows, branches: &SqlRows) {
    for r in &dialogs.rows {
        let [a_uuid, rectime, a_callid, a_contact, b_contact, as_contact, bs_contact, a_tag, b_tag, a_rr, b_rr, s_rr, iflags, r_uri, s_method, s_cseq] =
            r.as_slice()
        else {
            continue;
        };
        let Some(uid) = uid_of(&text(a_uuid)) else {
            continue;
        };
        tables.dialogs.insert(
            uid.clone(),
            Dialog {
                uid,
                rectime: time(rectime),
                a_callid: text(a_callid),
                a_contact: text(a_contact),
                b_contact: text(b_contact),
                as_contact: text(as_contact),
                bs_contact: text(bs_contact),
                a_tag: text(a_tag),
                b_tag: text(b_tag),
                a_rr: text(a_rr),
                b_rr: text(b_rr),
                s_rr: text(s_rr),
                iflags: int(iflags),
                r_uri: text(r_uri),
                s_method: text(s_method),
                s_cseq: text(s_cseq),
            },
        );
    }
    for r in &branches.rows {
        let [x_vbranch, a_uuid, rectime, a_callid, direction, x_via, x_rr, s_rr, x_uri, a_contact, as_contact, bs_contact, x_tag, a_tag, b_tag, s_method, s_cseq] =
            r.as_slice()
        else {
            continue;
        };
        let Some(uid) = uid_of(&text(a_uuid)) else {
            continue;
        };
        let b = Branch {
            x_vbranch: text(x_vbranch),
            uid,
            rectime: time(rectime),
            a_callid: text(a_callid),
            direction: int(direction),
            x_via: text(x_via),
            x_rr: text(x_rr),
            s_rr: text(s_rr),
            x_uri: text(x_uri),
            a_contact: text(a_contact),
            as_contact: text(as_contact),
            bs_contact: text(bs_contact),
            x_tag: text(x_tag),
            a_tag: text(a_tag),
            b_tag: text(b_tag),
            s_method: text(s_method),
            s_cseq: text(s_cseq),
        };
        tables.branches.insert(b.x_vbranch.clone(), b);
    }
}
