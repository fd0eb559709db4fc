//! sqlops: SQL statements written in the routing script. Connections are
//! declared with `modparam("sqlops", "sqlcon", "name=>db_url")`; each runs on
//! the store thread of its URL (modules never touch a database), and a
//! query waits for its answer with a time limit, where Kamailio blocks.
//!
//! Results (`sql_query(con, query, res)`, read as `$dbr(res=>…)`) belong to
//! the core that ran the query, as Kamailio's belong to the process, and stay
//! until the next query into the same result or `sql_result_free`.
//!
//! Values are converted as Kamailio 5.6 converts them ([`stored`],
//! [`pv_value`], [`xavp_value`]): 32-bit integer and date columns read as
//! integers, 64-bit ones as text (`$dbr`), text as text, `NULL` and floating
//! point columns as `$null`. `$sqlrows(con)` reads the affected rows of
//! this core's last query on `con` (PostgreSQL, MySQL; not SQLite, as in
//! Kamailio). The `{sql.val}`, `{sql.val.int}`, `{sql.val.str}`
//! transformations live with the others in `script::transform`.

pub mod pv;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::script::attrs::{Xavp, XavpValue};
use crate::script::ctx::MsgCtx;
use crate::script::ir::AssignOp;
use crate::script::ir::{Format, FormatPart};
use crate::script::pvkind::{PvKind, PvRef};
use crate::script::registry::{
    func, param, Arg, Args, ModParams, ModuleDef, ParamKind, ParamValue, RouteMask,
};
use crate::script::value::Value;
use crate::store::{SqlRows, SqlValue, StoreHandle};

/// How long a query may wait for the store thread before it counts as failed.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The connections of `sqlcon`, by position, shared by every core.
#[derive(Debug, Default)]
pub struct Sqlops {
    pub connections: Vec<(String, StoreHandle)>,
}

/// Splits one `sqlcon` value, `name=>db_url` (blanks allowed around both).
pub fn parse_sqlcon(text: &str) -> Result<(String, String), String> {
    let (name, url) = text
        .split_once("=>")
        .ok_or_else(|| format!("sqlcon {text:?}: expected \"name=>db_url\""))?;
    let (name, url) = (name.trim(), url.trim());
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("sqlcon {text:?}: missing or bad connection name"));
    }
    crate::store::check_url(url).map_err(|e| format!("sqlcon {name}: {e}"))?;
    Ok((name.to_string(), url.to_string()))
}

/// The `sqlcon` values, in order: connection names and URLs.
pub fn connections(mp: &ModParams) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for v in mp.all("sqlops", "sqlcon") {
        let ParamValue::Str(text) = v else {
            return Err("sqlops: sqlcon must be a string".into());
        };
        let (name, url) = parse_sqlcon(text)?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("sqlops: connection {name:?} is declared twice"));
        }
        out.push((name, url));
    }
    Ok(out)
}

/// The result containers of one core (name, then what the last query
/// left), and the affected rows of the last query on each connection.
#[derive(Debug, Default)]
pub struct Results(Vec<(Bytes, SqlResult)>, Vec<(usize, u64)>);

/// Rows of a query as the script reads them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SqlResult {
    pub columns: Vec<Bytes>,
    pub rows: Vec<Vec<Value<'static>>>,
}

impl Results {
    pub fn get(&self, name: &[u8]) -> Option<&SqlResult> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, r)| r)
    }

    /// `$sqlrows(con)`: the affected rows of this core's last query on `con`.
    pub fn affected(&self, con: usize) -> u64 {
        self.1
            .iter()
            .find(|(c, _)| *c == con)
            .map_or(0, |(_, n)| *n)
    }

    fn set_affected(&mut self, con: usize, n: u64) {
        match self.1.iter_mut().find(|(c, _)| *c == con) {
            Some(e) => e.1 = n,
            None => self.1.push((con, n)),
        }
    }

    fn slot(&mut self, name: &[u8]) -> &mut SqlResult {
        match self.0.iter().position(|(n, _)| n == name) {
            Some(i) => &mut self.0[i].1,
            None => {
                self.0
                    .push((Bytes::copy_from_slice(name), SqlResult::default()));
                let last = self.0.len() - 1;
                &mut self.0[last].1
            }
        }
    }
}

/// A value as `sql_query` stores it for `$dbr`: 32-bit integers as
/// integers, 64-bit ones as their decimal text, floating point as `$null`.
pub fn stored(v: &SqlValue) -> Value<'static> {
    match v {
        SqlValue::Null | SqlValue::Double(_) => Value::Null,
        SqlValue::Int(i) => Value::Int(i64::from(*i as i32)),
        SqlValue::BigInt(i) => Value::owned(i.to_string().into_bytes()),
        SqlValue::Str(s) => Value::owned(s.clone()),
    }
}

/// A value as `sql_pvquery` and `avp_db_query` assign it: like [`stored`],
/// but a 64-bit integer whose upper half is zero is an integer.
pub fn pv_value(v: &SqlValue) -> Value<'static> {
    match v {
        SqlValue::BigInt(i) if (*i as u64) >> 32 == 0 => Value::Int(i64::from(*i as i32)),
        other => stored(other),
    }
}

/// A value as `sql_xquery` puts it in a field: every integer as an integer.
pub fn xavp_value(v: &SqlValue) -> Value<'static> {
    match v {
        SqlValue::BigInt(i) => Value::Int(*i),
        other => stored(other),
    }
}

/// Fixup: the connection (argument 1) must be declared by `sqlcon`; it
/// becomes its position.
fn fixup_con(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    let Some(Arg::Str(name)) = args.get(0) else {
        return Err("the connection name must be a constant string".into());
    };
    let name = String::from_utf8_lossy(name).into_owned();
    let cons = connections(mp)?;
    let Some(i) = cons.iter().position(|(n, _)| *n == name) else {
        return Err(format!(
            "no sqlops connection {name:?} (declare it with modparam(\"sqlops\", \"sqlcon\", \"{name}=>db_url\"))"
        ));
    };
    args.0[0] = Arg::Int(i as i64);
    Ok(())
}

/// Fixup of `sql_query`: the connection, and a constant result name.
fn fixup_query(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    fixup_con(args, mp)?;
    if args.len() == 3 && !matches!(args.get(2), Some(Arg::Str(s)) if !s.is_empty()) {
        return Err("the result name must be a constant string".into());
    }
    Ok(())
}

/// Fixup of `sql_pvquery`: the connection, and a list of writable variables.
fn fixup_pvquery(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    fixup_con(args, mp)?;
    let list = match args.0.get_mut(2) {
        Some(Arg::Fmt(f)) => pv_list(f)?,
        Some(Arg::Pv(p)) => vec![p.clone()],
        _ => return Err("the third argument must list variables: \"$var(a),$avp(b)\"".into()),
    };
    args.0[2] = Arg::Custom(Box::new(list));
    Ok(())
}

/// The variables of a comma-separated list (`"$var(a), $avp(b)"`), each writable.
pub fn pv_list(f: &Format) -> Result<Vec<PvRef>, String> {
    let mut out = Vec::new();
    for p in &f.parts {
        match p {
            FormatPart::Pv(pv) => {
                if !pv.is_writable() {
                    return Err(format!("result variable {} is read-only", out.len() + 1));
                }
                out.push(pv.clone());
            }
            FormatPart::Lit(l)
                if l.iter()
                    .all(|b| matches!(b, b',' | b';') || b.is_ascii_whitespace()) => {}
            FormatPart::Lit(l) => {
                return Err(format!(
                    "unexpected {:?} in the list of result variables",
                    String::from_utf8_lossy(l)
                ))
            }
        }
    }
    if out.is_empty() {
        return Err("no result variable".into());
    }
    Ok(out)
}

/// Runs `sql` on connection `con`; `None` (logged) when it failed.
pub fn run(ctx: &mut MsgCtx<'_>, con: usize, sql: Vec<u8>) -> Option<SqlRows> {
    let Some((name, store)) = ctx
        .env
        .services
        .get::<Sqlops>()
        .and_then(|s| s.connections.get(con))
    else {
        log::error!("sqlops: the connection is not open");
        return None;
    };
    let rows = run_on(store, name, sql)?;
    ctx.core.sqlops.set_affected(con, rows.affected);
    Some(rows)
}

/// Runs `sql` on the store thread behind `store`, waiting at most [`QUERY_TIMEOUT`].
pub fn run_on(store: &StoreHandle, what: &str, sql: Vec<u8>) -> Option<SqlRows> {
    let text = String::from_utf8_lossy(&sql).into_owned();
    let shown: String = text.chars().take(64).collect();
    match store.call(move |s| s.query(&text), QUERY_TIMEOUT) {
        Some(Ok(rows)) => Some(rows),
        Some(Err(e)) => {
            log::error!("{what}: cannot do the query [{shown}]: {e}");
            None
        }
        None => {
            log::error!("{what}: the database did not answer in time [{shown}]");
            None
        }
    }
}

fn has_rows(r: &SqlRows) -> bool {
    !r.rows.is_empty() && !r.columns.is_empty()
}

/// `sql_query(con, query[, res])`: 1 with rows stored in `res`, 2 when the
/// statement gave no rows, 3 with rows but no `res` to keep them, -1 on error.
fn sql_query(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let con = args.int(ctx, 0).unwrap_or(-1) as usize;
    let sql = args.str(ctx, 1).into_owned();
    let res = match args.get(2) {
        Some(Arg::Str(n)) => {
            // The result is emptied before the query runs, as in Kamailio.
            *ctx.core.sqlops.slot(n) = SqlResult::default();
            Some(n.clone())
        }
        _ => None,
    };
    let Some(rows) = run(ctx, con, sql) else {
        return -1;
    };
    if !has_rows(&rows) {
        return 2;
    }
    let Some(res) = res else {
        return 3;
    };
    *ctx.core.sqlops.slot(&res) = SqlResult {
        columns: rows
            .columns
            .iter()
            .map(|c| Bytes::copy_from_slice(c.as_bytes()))
            .collect(),
        rows: rows
            .rows
            .iter()
            .map(|r| r.iter().map(stored).collect())
            .collect(),
    };
    1
}

/// `sql_xquery(con, query, xavp)`: each row becomes one `$xavp(xavp)` with
/// a field per column, the first row newest. 1, 2 without rows, -1 on error.
fn sql_xquery(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let con = args.int(ctx, 0).unwrap_or(-1) as usize;
    let sql = args.str(ctx, 1).into_owned();
    let name = Bytes::from(args.str(ctx, 2).into_owned());
    let Some(rows) = run(ctx, con, sql) else {
        return -1;
    };
    if !has_rows(&rows) {
        return 2;
    }
    for row in rows.rows.iter().rev() {
        // Fields are added last column first, so that the first reads newest.
        let fields = rows
            .columns
            .iter()
            .zip(row)
            .rev()
            .map(|(c, v)| Xavp::value(Bytes::copy_from_slice(c.as_bytes()), xavp_value(v)))
            .collect();
        ctx.attrs.xavp_push(Xavp {
            name: name.clone(),
            value: XavpValue::List(fields),
        });
    }
    1
}

/// Assigns the rows of `rows` to `vars`, column by column, last row first
/// (so a variable keeps the first row, an AVP has the first row newest).
/// `NULL` leaves an AVP alone. Err names a column without variable.
pub fn assign_rows(ctx: &mut MsgCtx<'_>, rows: &SqlRows, vars: &[PvRef]) -> Result<(), String> {
    for row in rows.rows.iter().rev() {
        for (j, v) in row.iter().enumerate() {
            let Some(pv) = vars.get(j) else {
                return Err(format!("no variable for column {}", j + 1));
            };
            let value = pv_value(v);
            if value.is_null() && matches!(pv.kind, PvKind::Avp(_) | PvKind::AvpDyn(_)) {
                continue;
            }
            ctx.assign_pv(pv, AssignOp::Set, value)
                .map_err(|e| format!("column {}: {e}", j + 1))?;
        }
    }
    Ok(())
}

/// `sql_pvquery(con, query, "$var(a),$avp(b)")`: 1, 2 without rows, -1 on error.
fn sql_pvquery(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let con = args.int(ctx, 0).unwrap_or(-1) as usize;
    let sql = args.str(ctx, 1).into_owned();
    let Some(vars) = args.custom::<Vec<PvRef>>(2) else {
        return -1;
    };
    let Some(rows) = run(ctx, con, sql) else {
        return -1;
    };
    if !has_rows(&rows) {
        return 2;
    }
    match assign_rows(ctx, &rows, vars) {
        Ok(()) => 1,
        Err(e) => {
            log::error!("sql_pvquery: {e}");
            -1
        }
    }
}

/// `sql_result_free(res)`: empties a result. 1.
fn sql_result_free(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    *ctx.core.sqlops.slot(&name) = SqlResult::default();
    1
}

fn fixup_free(args: &mut Args, _: &ModParams) -> Result<(), String> {
    match args.get(0) {
        Some(Arg::Str(s)) if !s.is_empty() => Ok(()),
        _ => Err("the result name must be a constant string".into()),
    }
}

/// `sql_query_async` needs a driver that runs a statement without waiting
/// for it; ringsip refuses it at start-up instead of running it otherwise.
fn fixup_async(_: &mut Args, _: &ModParams) -> Result<(), String> {
    Err("sql_query_async is not available in ringsip; use sql_query".into())
}

fn never(_: &mut MsgCtx<'_>, _: &Args) -> i32 {
    -1
}

/// The connections, opened on store threads (at start-up).
pub fn open(
    mp: &ModParams,
    mut handle: impl FnMut(&str) -> Result<StoreHandle, String>,
) -> Result<Arc<Sqlops>, String> {
    let mut out = Sqlops::default();
    for (name, url) in connections(mp)? {
        let h = handle(&url).map_err(|e| format!("sqlops: connection {name}: {e}"))?;
        out.connections.push((name, h));
    }
    Ok(Arc::new(out))
}

const ANY: RouteMask = RouteMask::ANY;

pub static MODULE: ModuleDef = ModuleDef {
    name: "sqlops",
    aliases: &[],
    functions: &[
        func("sql_query", 2, 3, ANY, Some(fixup_query), sql_query),
        func("sql_xquery", 3, 3, ANY, Some(fixup_con), sql_xquery),
        func("sql_pvquery", 3, 3, ANY, Some(fixup_pvquery), sql_pvquery),
        func(
            "sql_result_free",
            1,
            1,
            ANY,
            Some(fixup_free),
            sql_result_free,
        ),
        func("sql_query_async", 2, 2, ANY, Some(fixup_async), never),
    ],
    params: &[
        param("sqlcon", ParamKind::Str),
        param("sqlres", ParamKind::Str),
        param("tr_buf_size", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
pub(crate) mod tests;
