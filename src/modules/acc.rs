//! acc: transaction accounting with the log backend (Kamailio's acc module).
//!
//! A transaction is accounted when its final response goes upstream, by the
//! flags its request carried when it was relayed (or after its failure route):
//!
//! ```text
//!  final sent (tm report_finals) ─▶ on_final
//!     INVITE, code ≥ 300, log_missed_flag set      ─▶ "ACC: call missed: …"
//!     code ≥ 300, failed_transaction_flag set and
//!       the code not in failed_filter              ─▶ "ACC: transaction answered: …"
//!     code < 300, log_flag set                     ─▶ "ACC: transaction answered: …"
//!  acc_log_request("200 OK")                       ─▶ "ACC: request accounted: …"
//! ```
//!
//! The database backend does the same with `db_flag` / `db_missed_flag`
//! (and `failed_transaction_flag`), writing rows instead of lines, and
//! `acc_db_request(comment, table)` writes one row at once.
//!
//! A line reads `ACC: <what>: timestamp=<unix s>;method=…;from_tag=…;to_tag=…;
//! call_id=…;code=…;reason=…` followed by `;name=value` for each `log_extra`
//! entry (a value that is `$null` prints `n/a`). It is logged at `log_level`
//! (default 1, notice) under the log target `acc`.
//!
//! Differences from Kamailio (documented, not hidden):
//! * CANCEL transactions are accounted only with `report_cancels` = 1, as in
//!   Kamailio; with `report_ack` = 1 the end-to-end ACK of a 2xx to an
//!   INVITE that had the log flag is logged ("request acknowledged", with
//!   the INVITE's status and the winning reply's reason), to the log only,
//!   and only when tm matches the ACK to the INVITE's transaction (today:
//!   an ACK that reuses the INVITE's Via branch; an ACK with a new branch,
//!   as RFC 3261 UAs send, is not matched and so not reported);
//! * a missed call is logged once, for the final response of the INVITE
//!   transaction (Kamailio also logs each failed branch when a failure route
//!   is armed);
//! * `early_media` = 1 is accepted; a provisional response is never a
//!   recorded final, so early media is not accounted;
//! * the database backend writes the same records to `db_table_acc`
//!   (default `acc`) and `db_table_missed_calls` (`missed_calls`) through the
//!   store thread of `db_url` (SQLite or PostgreSQL), making a missing table
//!   with Kamailio's `acc` columns plus one text column per `db_extra`; a
//!   full queue drops the record (counted by the store);
//! * `time` is written in UTC.

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::ir::{Format, FormatPart};
use crate::script::registry::{
    Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::script::value::Value;
use crate::sip::nameaddr::NameAddr;
use crate::sip::{HeaderName, Message};
use crate::tm::FinalSent;

/// What the acc modparams ask for, read once at start-up.
#[derive(Debug, Clone, Default)]
pub struct AccConfig {
    /// Whether the configuration loads acc.
    pub enabled: bool,
    pub early_media: bool,
    pub report_ack: bool,
    pub report_cancels: bool,
    pub detect_direction: bool,
    /// Message flag that accounts a successful transaction.
    pub log_flag: Option<u8>,
    /// Message flag that accounts an INVITE that got no 2xx.
    pub log_missed_flag: Option<u8>,
    /// Message flag that accounts a negative final (as "transaction answered").
    pub failed_flag: Option<u8>,
    /// Negative codes never accounted as failed (`failed_filter`, "404,407").
    pub failed_filter: Vec<u16>,
    /// xlog level of the lines (`log_level`, default 1 = L_NOTICE).
    pub log_level: i64,
    /// `log_extra`: name and value, in order.
    pub extra: Vec<(String, Format)>,
    /// Message flag that writes a successful transaction to the database.
    pub db_flag: Option<u8>,
    /// Message flag that writes an INVITE with no 2xx to `missed_calls`.
    pub db_missed_flag: Option<u8>,
    pub db_table_acc: String,
    pub db_table_missed: String,
    /// `db_extra`: column and value, in order.
    pub db_extra: Vec<(String, Format)>,
}

fn table(mp: &ModParams, name: &str, default: &str) -> Result<String, String> {
    let t = mp.str("acc", name).unwrap_or(default);
    if crate::store::is_identifier(t) {
        Ok(t.to_string())
    } else {
        Err(format!("acc: {name} \"{t}\" is not a usable table name"))
    }
}

fn flag(mp: &ModParams, name: &str) -> Result<Option<u8>, String> {
    match mp.int("acc", name) {
        None => Ok(None),
        Some(f) if (0..=63).contains(&f) => Ok(Some(f as u8)),
        Some(f) => Err(format!("acc: {name} {f} is out of 0..63")),
    }
}

impl AccConfig {
    /// Reads the parameters (`extra` is compiled by the script compiler).
    pub fn from_modparams(mp: &ModParams) -> Result<AccConfig, String> {
        let on = |name: &str| mp.int("acc", name).is_some_and(|v| v != 0);
        let mut failed_filter = Vec::new();
        if let Some(list) = mp.str("acc", "failed_filter") {
            for code in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                match code.parse::<u16>() {
                    Ok(c) if (300..700).contains(&c) => failed_filter.push(c),
                    _ => {
                        return Err(format!(
                            "acc: failed_filter: {code:?} is not a 3xx-6xx code"
                        ))
                    }
                }
            }
        }
        Ok(AccConfig {
            enabled: true,
            early_media: on("early_media"),
            report_ack: on("report_ack"),
            report_cancels: on("report_cancels"),
            detect_direction: on("detect_direction"),
            log_flag: flag(mp, "log_flag")?,
            log_missed_flag: flag(mp, "log_missed_flag")?,
            failed_flag: flag(mp, "failed_transaction_flag")?,
            failed_filter,
            log_level: mp.int("acc", "log_level").unwrap_or(1),
            extra: Vec::new(),
            db_flag: flag(mp, "db_flag")?,
            db_missed_flag: flag(mp, "db_missed_flag")?,
            db_table_acc: table(mp, "db_table_acc", "acc")?,
            db_table_missed: table(mp, "db_table_missed_calls", "missed_calls")?,
            db_extra: Vec::new(),
        })
        .and_then(|c| {
            let needs_db = c.db_flag.is_some() || c.db_missed_flag.is_some();
            if needs_db && mp.str("acc", "db_url").is_none() {
                Err("acc: db_flag and db_missed_flag need a db_url".to_string())
            } else {
                Ok(c)
            }
        })
    }
}

/// Splits `log_extra` text (`name=$pv;name2=$pv2`) into names and value texts.
pub fn parse_extra(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in text.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((name, value)) = item.split_once('=') else {
            return Err(format!("acc extra \"{item}\" is not name=value"));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("acc extra name \"{name}\" is not a plain name"));
        }
        if value.is_empty() {
            return Err(format!("acc extra \"{name}\" has no value"));
        }
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

fn is_set(flags: u64, f: Option<u8>) -> bool {
    f.is_some_and(|f| flags & (1u64 << f) != 0)
}

fn tag_of(msg: &Message, h: HeaderName) -> Option<Bytes> {
    let v = msg.header_value(h)?;
    let tag = NameAddr::parse(v).ok()?.tag()?;
    Some(Bytes::copy_from_slice(tag))
}

/// Whether the request travels from the callee back to the caller: a Route
/// header's `ftag` differs from the From tag (as rr's `is_direction`).
fn upstream(msg: &Message) -> bool {
    let Some(from) = tag_of(msg, HeaderName::From) else {
        return false;
    };
    msg.headers_of(HeaderName::Route).any(|h| {
        let v = msg.value(h);
        let Some(at) = v.windows(5).position(|w| w.eq_ignore_ascii_case(b"ftag=")) else {
            return false;
        };
        let rest = &v[at + 5..];
        let end = rest
            .iter()
            .position(|b| matches!(b, b';' | b'>' | b',' | b' '))
            .unwrap_or(rest.len());
        !rest[..end].is_empty() && rest[..end] != from[..]
    })
}

/// The core attributes of one line, and the extras read on `ctx`.
fn line(
    ctx: &MsgCtx<'_>,
    cfg: &AccConfig,
    what: &str,
    code: &[u8],
    reason: &[u8],
    reply_to_tag: Option<Bytes>,
) -> String {
    let msg = ctx.msg;
    let (from_tag, to_tag) = tags(ctx, reply_to_tag);
    let text = lossy;
    let mut s = format!(
        "ACC: {what}: timestamp={};method={};from_tag={};to_tag={};call_id={};code={};reason={}",
        ctx.env.clock.unix(ctx.now).as_secs(),
        text(Some(msg.method_bytes())),
        text(from_tag.as_deref()),
        text(to_tag.as_deref()),
        text(msg.call_id()),
        text(Some(code)),
        text(Some(reason)),
    );
    for (name, value) in &cfg.extra {
        s.push(';');
        s.push_str(name);
        s.push('=');
        match extra_value(ctx, value) {
            Some(v) => s.push_str(&String::from_utf8_lossy(&v)),
            None => s.push_str("n/a"),
        }
    }
    s
}

/// The value of one extra: `None` for `$null`.
fn extra_value(ctx: &MsgCtx<'_>, f: &Format) -> Option<Vec<u8>> {
    match f.parts.as_slice() {
        [FormatPart::Pv(pv)] => match ctx.read_pv(pv) {
            Value::Null => None,
            v => Some(v.to_bytes().into_owned()),
        },
        _ => Some(ctx.format(f)),
    }
}

/// The From and To tags of the request (the reply's To tag when the
/// request has none), swapped for an upstream request with `detect_direction`.
fn tags(ctx: &MsgCtx<'_>, reply_to_tag: Option<Bytes>) -> (Option<Bytes>, Option<Bytes>) {
    let msg = ctx.msg;
    let mut from_tag = tag_of(msg, HeaderName::From);
    let mut to_tag = tag_of(msg, HeaderName::To).or(reply_to_tag);
    if ctx.program.acc.detect_direction && upstream(msg) {
        std::mem::swap(&mut from_tag, &mut to_tag);
    }
    (from_tag, to_tag)
}

fn lossy(b: Option<&[u8]>) -> String {
    String::from_utf8_lossy(b.unwrap_or(b"")).into_owned()
}

/// The database row for the request in `ctx`.
pub fn record(
    ctx: &MsgCtx<'_>,
    code: &[u8],
    reason: &[u8],
    reply_to_tag: Option<Bytes>,
) -> crate::store::AccRecord {
    let (from_tag, to_tag) = tags(ctx, reply_to_tag);
    crate::store::AccRecord {
        method: lossy(Some(ctx.msg.method_bytes())),
        from_tag: lossy(from_tag.as_deref()),
        to_tag: lossy(to_tag.as_deref()),
        callid: lossy(ctx.msg.call_id()),
        sip_code: lossy(Some(code)),
        sip_reason: lossy(Some(reason)),
        time: ctx.env.clock.unix(ctx.now).as_secs() as i64,
        extra: ctx
            .program
            .acc
            .db_extra
            .iter()
            .map(|(name, f)| {
                (
                    name.clone(),
                    extra_value(ctx, f).map(|v| String::from_utf8_lossy(&v).into_owned()),
                )
            })
            .collect(),
    }
}

/// The store acc writes to (its `db_url`), put in `Env::services` at start-up.
#[derive(Debug)]
pub struct AccDb {
    pub store: crate::store::StoreHandle,
}

/// Queues `rec` for `table` on the store thread.
fn write(ctx: &MsgCtx<'_>, table: &str, rec: crate::store::AccRecord) -> bool {
    let Some(db) = ctx.env.services.get::<AccDb>() else {
        log::error!("acc: no database (db_url) for table {table}");
        return false;
    };
    let table = table.to_string();
    db.store.submit(move |store| {
        if let Err(e) = store.acc_insert(&table, &rec) {
            log::error!("acc: writing to {table}: {e}");
        }
    })
}

fn emit(cfg: &AccConfig, text: &str) {
    let level = match cfg.log_level {
        i64::MIN..=-1 => log::Level::Error,
        0 => log::Level::Warn,
        1 | 2 => log::Level::Info,
        _ => log::Level::Debug,
    };
    log::log!(target: "acc", level, "{text}");
}

/// The lines accounting the final response `fin` of the transaction whose
/// request is `ctx.msg` (with the flags it had), in the order they are logged.
pub fn final_lines(ctx: &MsgCtx<'_>, fin: &FinalSent, answer: &Answer) -> Vec<String> {
    let cfg = &ctx.program.acc;
    let mut out = Vec::new();
    let Answer {
        code,
        reason,
        to_tag,
    } = answer;
    let method = ctx.msg.method_bytes();
    let flags = ctx.flags;
    if method == b"INVITE" && fin.code >= 300 && is_set(flags, cfg.log_missed_flag) {
        out.push(line(ctx, cfg, "call missed", code, reason, to_tag.clone()));
    }
    let account = if fin.code >= 300 {
        is_set(flags, cfg.failed_flag) && !cfg.failed_filter.contains(&fin.code)
    } else {
        is_set(flags, cfg.log_flag)
    };
    if account {
        out.push(line(
            ctx,
            cfg,
            "transaction answered",
            code,
            reason,
            to_tag.clone(),
        ));
    }
    out
}

/// The database rows for the final response `fin`: (table, record), by
/// `db_missed_flag`, `failed_transaction_flag` and `db_flag` as for lines.
pub fn final_rows(
    ctx: &MsgCtx<'_>,
    fin: &FinalSent,
    answer: &Answer,
) -> Vec<(String, crate::store::AccRecord)> {
    let cfg = &ctx.program.acc;
    let mut out = Vec::new();
    if cfg.db_flag.is_none() && cfg.db_missed_flag.is_none() {
        return out;
    }
    let Answer {
        code,
        reason,
        to_tag,
    } = answer;
    let method = ctx.msg.method_bytes();
    let flags = ctx.flags;
    if method == b"INVITE" && fin.code >= 300 && is_set(flags, cfg.db_missed_flag) {
        out.push((
            cfg.db_table_missed.clone(),
            record(ctx, code, reason, to_tag.clone()),
        ));
    }
    let account = if fin.code >= 300 {
        is_set(flags, cfg.db_flag)
            && is_set(flags, cfg.failed_flag)
            && !cfg.failed_filter.contains(&fin.code)
    } else {
        is_set(flags, cfg.db_flag)
    };
    if account {
        out.push((
            cfg.db_table_acc.clone(),
            record(ctx, code, reason, to_tag.clone()),
        ));
    }
    out
}

/// What the accounting of one final response reads from it, taken once for
/// the log lines and the database rows.
pub struct Answer {
    pub code: Vec<u8>,
    pub reason: Vec<u8>,
    pub to_tag: Option<Bytes>,
}

impl Answer {
    /// The code, reason and To tag of `fin`, when acc accounts it at all
    /// (acc loaded; a CANCEL only with `report_cancels`).
    pub fn of(ctx: &MsgCtx<'_>, fin: &FinalSent) -> Option<Answer> {
        let cfg = &ctx.program.acc;
        if !cfg.enabled || (ctx.msg.method_bytes() == b"CANCEL" && !cfg.report_cancels) {
            return None;
        }
        let reply = Message::parse(fin.response.clone()).ok();
        Some(Answer {
            code: itoa::Buffer::new().format(fin.code).as_bytes().to_vec(),
            reason: reply
                .as_ref()
                .and_then(|r| r.reason())
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            to_tag: reply.as_ref().and_then(|r| tag_of(r, HeaderName::To)),
        })
    }
}

/// Accounts the final response `fin` (see [`final_lines`], [`final_rows`]).
pub fn on_final(ctx: &MsgCtx<'_>, fin: &FinalSent) {
    let Some(answer) = Answer::of(ctx, fin) else {
        return;
    };
    for l in final_lines(ctx, fin, &answer) {
        emit(&ctx.program.acc, &l);
    }
    for (table, rec) in final_rows(ctx, fin, &answer) {
        write(ctx, &table, rec);
    }
}

/// The line for the end-to-end ACK in `ctx` of an INVITE whose final
/// status was `status` (the reply that won: `reply`, for its reason) and
/// whose flags were `invite_flags` (`report_ack`): logged when the INVITE
/// had the log flag.
pub fn ack_line(
    ctx: &MsgCtx<'_>,
    invite_flags: u64,
    status: u16,
    reply: Option<Bytes>,
) -> Option<String> {
    let cfg = &ctx.program.acc;
    if !cfg.enabled || !cfg.report_ack || !is_set(invite_flags, cfg.log_flag) {
        return None;
    }
    let code = itoa::Buffer::new().format(status).as_bytes().to_vec();
    let reason = reply
        .and_then(|r| Message::parse(r).ok())
        .and_then(|m| m.reason().map(<[u8]>::to_vec))
        .unwrap_or_default();
    Some(line(ctx, cfg, "request acknowledged", &code, &reason, None))
}

/// Accounts an end-to-end ACK (see [`ack_line`]).
pub fn on_ack(ctx: &MsgCtx<'_>, invite_flags: u64, status: u16, reply: Option<Bytes>) {
    if let Some(l) = ack_line(ctx, invite_flags, status, reply) {
        emit(&ctx.program.acc, &l);
    }
}

/// A comment's leading status code (`"403 Forbidden"`) gives `code` and
/// `reason`; without one, `code` is empty and the whole comment is the reason.
fn split_comment(comment: &[u8]) -> (&[u8], &[u8]) {
    match comment {
        [a, b, c, rest @ ..]
            if [a, b, c].iter().all(|d| d.is_ascii_digit())
                && (rest.is_empty() || rest[0] == b' ') =>
        {
            (&comment[..3], rest.trim_ascii_start())
        }
        _ => (b"", comment),
    }
}

/// The line `acc_log_request(comment)` logs: a leading status code in the
/// comment (`"403 Forbidden"`) gives `code` and `reason`, else `code` is
/// empty and the comment is the reason.
pub fn request_line(ctx: &MsgCtx<'_>, comment: &[u8]) -> String {
    let (code, reason) = split_comment(comment);
    line(
        ctx,
        &ctx.program.acc,
        "request accounted",
        code,
        reason,
        None,
    )
}

/// `acc_log_request(comment)`: logs the request now. Always 1.
fn acc_log_request(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let comment = args.str(ctx, 0).into_owned();
    let l = request_line(ctx, &comment);
    emit(&ctx.program.acc, &l);
    1
}

fn fixup_db_request(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    if mp.str("acc", "db_url").is_none() {
        return Err("acc_db_request needs acc's db_url".to_string());
    }
    if let Some(crate::script::registry::Arg::Str(t)) = args.get(1) {
        let t = String::from_utf8_lossy(t);
        if !crate::store::is_identifier(&t) {
            return Err(format!(
                "acc_db_request: \"{t}\" is not a usable table name"
            ));
        }
    }
    Ok(())
}

/// `acc_db_request(comment, table)`: writes the request to `table` now.
/// 1 when queued, -1 otherwise (no database, bad table name, full queue).
fn acc_db_request(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let comment = args.str(ctx, 0).into_owned();
    let table = String::from_utf8_lossy(&args.str(ctx, 1)).into_owned();
    if !crate::store::is_identifier(&table) {
        return -1;
    }
    let (code, reason) = split_comment(&comment);
    let rec = record(ctx, code, reason, None);
    if write(ctx, &table, rec) {
        1
    } else {
        -1
    }
}

const fn param(name: &'static str, kind: ParamKind) -> ParamDef {
    ParamDef { name, kind }
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "acc",
    aliases: &[],
    functions: &[
        FunctionDef {
            name: "acc_log_request",
            min_args: 1,
            max_args: 1,
            routes: RouteMask::REQUEST
                .or(RouteMask::FAILURE)
                .or(RouteMask::BRANCH)
                .or(RouteMask::ONREPLY),
            fixup: None,
            call: acc_log_request,
        },
        FunctionDef {
            name: "acc_db_request",
            min_args: 2,
            max_args: 2,
            routes: RouteMask::REQUEST
                .or(RouteMask::FAILURE)
                .or(RouteMask::BRANCH)
                .or(RouteMask::ONREPLY),
            fixup: Some(fixup_db_request),
            call: acc_db_request,
        },
    ],
    params: &[
        param("early_media", ParamKind::Int),
        param("report_ack", ParamKind::Int),
        param("report_cancels", ParamKind::Int),
        param("detect_direction", ParamKind::Int),
        param("log_flag", ParamKind::Int),
        param("log_missed_flag", ParamKind::Int),
        param("failed_transaction_flag", ParamKind::Int),
        param("failed_filter", ParamKind::Str),
        param("log_level", ParamKind::Int),
        param("log_facility", ParamKind::Str),
        param("log_extra", ParamKind::Str),
        param("db_flag", ParamKind::Int),
        param("db_missed_flag", ParamKind::Int),
        param("db_extra", ParamKind::Str),
        param("db_url", ParamKind::Str),
        param("db_table_acc", ParamKind::Str),
        param("db_table_missed_calls", ParamKind::Str),
        param("acc_time_mode", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::registry::ParamValue;

    type Want = Result<Vec<(&'static str, &'static str)>, &'static str>;

    #[test]
    fn extra_lists() {
        let cases: &[(&str, Want)] = &[
            ("a=$fU;b=$rd", Ok(vec![("a", "$fU"), ("b", "$rd")])),
            (" a = $fU ; ", Ok(vec![("a", "$fU")])),
            ("", Ok(vec![])),
            ("a", Err("not name=value")),
            ("a b=$fU", Err("not a plain name")),
            ("a=", Err("has no value")),
        ];
        for (text, want) in cases {
            let got = parse_extra(text);
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    let got: Vec<(&str, &str)> =
                        got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                    assert_eq!(&got, want, "{text}");
                }
                (Err(e), Err(part)) => assert!(e.contains(part), "{text}: {e}"),
                (got, want) => panic!("{text}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn modparams() {
        let mut mp = ModParams::default();
        mp.push("acc", "log_flag", ParamValue::Int(1));
        mp.push("acc", "failed_transaction_flag", ParamValue::Int(3));
        mp.push("acc", "report_cancels", ParamValue::Int(1));
        mp.push("acc", "failed_filter", ParamValue::Str("404, 407".into()));
        let c = AccConfig::from_modparams(&mp).unwrap();
        assert!(c.enabled && c.report_cancels && !c.report_ack);
        assert_eq!(
            (c.log_flag, c.log_missed_flag, c.failed_flag),
            (Some(1), None, Some(3))
        );
        assert_eq!(c.failed_filter, [404, 407]);
        assert_eq!(c.log_level, 1);
        mp.push("acc", "log_flag", ParamValue::Int(64));
        assert!(AccConfig::from_modparams(&mp)
            .unwrap_err()
            .contains("out of 0..63"));
        let mut mp = ModParams::default();
        mp.push("acc", "failed_filter", ParamValue::Str("200".into()));
        assert!(AccConfig::from_modparams(&mp).is_err());
    }

    #[test]
    fn direction_from_route_ftag() {
        let req = |route: &str| {
            let text = format!(
                "BYE sip:a@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                 From: <sip:b@y>;tag=callee\r\nTo: <sip:a@x>;tag=caller\r\n\
                 Call-ID: c\r\nCSeq: 2 BYE\r\n{route}Content-Length: 0\r\n\r\n"
            );
            Message::parse(Bytes::from(text)).unwrap()
        };
        assert!(upstream(&req("Route: <sip:p;lr;ftag=caller>\r\n")));
        assert!(!upstream(&req("Route: <sip:p;lr;ftag=callee>\r\n")));
        assert!(!upstream(&req("")));
    }
}
