//! `$dbr(res=>rows)`, `$dbr(res=>cols)`, `$dbr(res=>[row,col])` and
//! `$dbr(res=>colname[col])`: what a `sql_query` left in result `res`.
//! Row and column count from 0; indexes may be pseudo-variables
//! (`$dbr(ra=>[$var(i),0])`), then the name is printed and read per message.

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::ir::Format;
use crate::script::value::Value;

/// A `$dbr` as compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbrPv {
    Fixed(Dbr),
    /// The name holds pseudo-variables: printed and read per message.
    Dynamic(Format),
    /// `$sqlrows(con)`: affected rows of the last query on connection `con`
    /// (by position in `sqlcon`) made on this core.
    AffectedRows(usize),
}

/// A `$dbr` name: the result and what to read of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dbr {
    pub res: Bytes,
    pub what: DbrField,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbrField {
    Rows,
    Cols,
    Value(i64, i64),
    ColName(i64),
}

/// Reads `res=>rows|cols|[r,c]|colname[c]`.
pub fn parse(inner: &str) -> Result<Dbr, String> {
    let (res, key) = inner.split_once("=>").ok_or_else(|| {
        format!("$dbr({inner}): expected res=>rows, cols, [row,col] or colname[col]")
    })?;
    let res = res.trim();
    if res.is_empty() {
        return Err(format!("$dbr({inner}): no result name"));
    }
    let key = key.trim();
    let num = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("$dbr({inner}): {:?} is not a number", s.trim()))
    };
    let what = match key {
        "rows" => DbrField::Rows,
        "cols" => DbrField::Cols,
        _ => {
            if let Some(idx) = key.strip_prefix('[').and_then(|k| k.strip_suffix(']')) {
                let (r, c) = idx
                    .split_once(',')
                    .ok_or_else(|| format!("$dbr({inner}): expected [row,col]"))?;
                DbrField::Value(num(r)?, num(c)?)
            } else if let Some(idx) = key
                .strip_prefix("colname")
                .map(str::trim_start)
                .and_then(|k| k.strip_prefix('['))
                .and_then(|k| k.strip_suffix(']'))
            {
                DbrField::ColName(num(idx)?)
            } else {
                return Err(format!(
                    "$dbr({inner}): unknown key {key:?} (use rows, cols, [row,col] or colname[col])"
                ));
            }
        }
    };
    Ok(Dbr {
        res: Bytes::copy_from_slice(res.as_bytes()),
        what,
    })
}

/// The value for this core's results; `$null` outside them.
pub fn read(ctx: &MsgCtx<'_>, pv: &DbrPv) -> Value<'static> {
    let parsed;
    let dbr = match pv {
        DbrPv::AffectedRows(con) => return affected_rows(ctx, *con),
        DbrPv::Fixed(d) => d,
        DbrPv::Dynamic(f) => match parse(&String::from_utf8_lossy(&ctx.format(f))) {
            Ok(d) => {
                parsed = d;
                &parsed
            }
            Err(e) => {
                log::error!("{e}");
                return Value::Null;
            }
        },
    };
    let res = ctx.core.sqlops.get(&dbr.res);
    let rows = res.map_or(0, |r| r.rows.len());
    let cols = res.map_or(0, |r| r.columns.len());
    match dbr.what {
        DbrField::Rows => Value::Int(rows as i64),
        DbrField::Cols => Value::Int(cols as i64),
        DbrField::Value(r, c) => {
            let cell = usize::try_from(r)
                .ok()
                .zip(usize::try_from(c).ok())
                .and_then(|(r, c)| res?.rows.get(r)?.get(c));
            cell.cloned().unwrap_or(Value::Null)
        }
        DbrField::ColName(c) => usize::try_from(c)
            .ok()
            .and_then(|c| res?.columns.get(c))
            .map_or(Value::Null, |n| Value::owned(n.to_vec())),
    }
}

/// `$sqlrows(con)`. Kamailio's SQLite driver cannot tell affected rows, so
/// there the variable fails to read (an error, and nothing printed), as
/// with Kamailio; PostgreSQL and MySQL connections give the count.
fn affected_rows(ctx: &MsgCtx<'_>, con: usize) -> Value<'static> {
    let sqlite = ctx
        .env
        .services
        .get::<super::Sqlops>()
        .and_then(|s| s.connections.get(con))
        .is_none_or(|(_, h)| h.url().starts_with("sqlite:"));
    if sqlite {
        log::error!(
            "$sqlrows: the database driver of this connection does not report affected rows"
        );
        return Value::owned(Vec::new());
    }
    Value::Int(ctx.core.sqlops.affected(con) as i64)
}
