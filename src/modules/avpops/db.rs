//! The database functions: `avp_db_query`, `avp_db_load`, `avp_db_delete`
//! (and the refusal of `avp_db_store`).

use std::sync::Arc;

use bytes::Bytes;

use super::args::{seg_pv, seg_text, segments, AvpName};
use super::AvpDb;
use crate::modules::sqlops;
use crate::script::ctx::MsgCtx;
use crate::script::pvkind::{AvpKey, NamePart, PvKind, PvRef};
use crate::script::registry::{Arg, Args, ModParams};
use crate::script::value::Value;
use crate::store::{sql_literal, SqlValue};

fn db(ctx: &MsgCtx<'_>) -> Option<Arc<AvpDb>> {
    ctx.env.services.get::<Arc<AvpDb>>().cloned().or_else(|| {
        log::error!("avpops: no database (db_url)");
        None
    })
}

fn need_db_url(mp: &ModParams) -> Result<(), String> {
    match mp.str("avpops", "db_url") {
        Some(_) => Ok(()),
        None => Err("needs modparam(\"avpops\", \"db_url\", ...)".into()),
    }
}

// --- avp_db_query ---------------------------------------------------------------------------

pub(super) fn fixup_db_query(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    need_db_url(mp)?;
    if args.len() == 2 {
        let list = match args.get(1) {
            Some(Arg::Fmt(f)) => sqlops::pv_list(f)?,
            Some(Arg::Pv(p)) => vec![p.clone()],
            _ => return Err("the second argument must list AVPs: \"$avp(a);$avp(b)\"".into()),
        };
        let names = list
            .iter()
            .map(|p| AvpName::of(p).ok_or("the result variables must be AVPs"))
            .collect::<Result<Vec<_>, _>>()?;
        args.0[1] = Arg::Custom(Box::new(names));
    }
    Ok(())
}

/// `avp_db_query(query[, "$avp(a);$avp(b)"])`: each column of each row
/// into an AVP (`$avp(i:1)`, `$avp(i:2)`… without a list), the first row
/// newest; `NULL`, empty text and floating point values are left out.
/// 1, -2 without rows, -1 on error.
pub(super) fn avp_db_query(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(db) = db(ctx) else { return -1 };
    let sql = args.str(ctx, 0).into_owned();
    let dest = args.custom::<Vec<AvpName>>(1);
    let Some(rows) = sqlops::run_on(&db.store, "avp_db_query", sql) else {
        return -1;
    };
    if rows.rows.is_empty() || rows.columns.is_empty() {
        return -2;
    }
    for row in rows.rows.iter().rev() {
        for (j, v) in row.iter().enumerate() {
            let key = match dest {
                None => AvpKey::Int(j as i64 + 1),
                Some(d) => match d.get(j) {
                    Some(n) => n.key(ctx),
                    None => break,
                },
            };
            let value = match v {
                SqlValue::Str(s) if !s.is_empty() => Value::owned(s.clone()),
                SqlValue::Int(i) | SqlValue::BigInt(i) => Value::Int(i64::from(*i as i32)),
                _ => continue,
            };
            ctx.attrs.avp_push(key, value);
        }
    }
    1
}

// --- avp_db_load / avp_db_delete ------------------------------------------------------------

/// Which columns the first parameter of `avp_db_*` selects on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Uuid,
    Uri,
    Username,
    Domain,
}

#[derive(Debug)]
struct DbSource {
    value: Result<PvRef, Bytes>,
    part: Part,
}

#[derive(Debug)]
struct DbAvp {
    name: AvpName,
}

pub(super) fn fixup_db_avp(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    need_db_url(mp)?;
    let segs = segments(args.get(0))?;
    let part = match segs
        .get(1)
        .map(|s| seg_text(s).unwrap_or_default().to_ascii_lowercase())
    {
        None => None,
        Some(f) => Some(match f.as_str() {
            "domain" => Part::Domain,
            "username" => Part::Username,
            "uri" => Part::Uri,
            "uuid" => Part::Uuid,
            other => return Err(format!("unknown flag <{other}>")),
        }),
    };
    if segs.len() > 2 {
        return Err("the first argument is VALUE[/FLAG]".into());
    }
    let value = match (seg_pv(&segs[0]), seg_text(&segs[0])) {
        (Some(pv), _) => Ok(pv.clone()),
        (None, Some(t)) if !t.is_empty() => Err(Bytes::from(t.into_bytes())),
        _ => return Err("expected a pseudo-variable or a constant uuid".into()),
    };
    let is_uri = matches!(
        &value,
        Ok(PvRef {
            kind: PvKind::Ru | PvKind::Ou | PvKind::From(NamePart::Uri) | PvKind::To(NamePart::Uri),
            ..
        })
    );
    let part = part.unwrap_or(if is_uri { Part::Uri } else { Part::Uuid });
    let segs2 = segments(args.get(1))?;
    if segs2.len() > 1 {
        return Err(
            "DB schemes and table names in the AVP argument are not supported in ringsip".into(),
        );
    }
    let name = AvpName::from_seg(&segs2[0], "the second argument").map_err(|e| {
        format!("{e} (the name-less forms \"*\", \"s\", \"i\" are not supported in ringsip)")
    })?;
    args.0[0] = Arg::Custom(Box::new(DbSource { value, part }));
    args.0[1] = Arg::Custom(Box::new(DbAvp { name }));
    Ok(())
}

/// The `WHERE` conditions the source selects, or `None` (logged) when it
/// has no usable value.
fn selection(ctx: &MsgCtx<'_>, db: &AvpDb, src: &DbSource, attr: &[u8]) -> Option<String> {
    let value: Vec<u8> = match &src.value {
        Ok(pv) => match ctx.read_pv(pv) {
            Value::Null => {
                log::error!("avpops: no value for the first parameter");
                return None;
            }
            v => v.to_bytes().into_owned(),
        },
        Err(c) => c.to_vec(),
    };
    if value.is_empty() {
        log::error!("avpops: no value for the first parameter");
        return None;
    }
    let mut conds = Vec::new();
    let lit = |v: &[u8]| {
        sql_literal(v).or_else(|| {
            log::error!("avpops: a value with a backslash cannot be used in a query");
            None
        })
    };
    if src.part == Part::Uuid {
        conds.push(format!("{}={}", db.uuid, lit(&value)?));
    } else {
        let Ok(uri) = crate::sip::uri::Uri::parse(&value) else {
            log::error!("avpops: failed to parse uri");
            return None;
        };
        let (Some(user), host) = (uri.user().filter(|u| !u.is_empty()), uri.host_raw()) else {
            log::error!(
                "avpops: incomplete uri <{}>",
                String::from_utf8_lossy(&value)
            );
            return None;
        };
        if host.is_empty() {
            log::error!("avpops: incomplete uri");
            return None;
        }
        if matches!(src.part, Part::Uri | Part::Username) {
            conds.push(format!("{}={}", db.username, lit(user)?));
        }
        if matches!(src.part, Part::Uri | Part::Domain)
            && (db.use_domain || src.part == Part::Domain)
        {
            conds.push(format!("{}={}", db.domain, lit(host)?));
        }
    }
    conds.push(format!("{}={}", db.attribute, lit(attr)?));
    Some(conds.join(" AND "))
}

fn attr_text(key: &AvpKey) -> Vec<u8> {
    match key {
        AvpKey::Int(i) => (*i as u32).to_string().into_bytes(),
        AvpKey::Str(s) => s.to_vec(),
    }
}

/// `avp_db_load(source, "$avp(name)")`: the rows of `avp_table` for the
/// source (uuid, or user and domain of a URI) and attribute `name` become
/// values of the AVP (`type` bit 0: an integer value). 1 when any loaded, else -1.
pub(super) fn avp_db_load(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (Some(db), Some(src), Some(dst)) =
        (db(ctx), args.custom::<DbSource>(0), args.custom::<DbAvp>(1))
    else {
        return -1;
    };
    let key = dst.name.key(ctx);
    let Some(cond) = selection(ctx, &db, src, &attr_text(&key)) else {
        return -1;
    };
    let sql = format!(
        "SELECT {}, {}, {} FROM {} WHERE {cond}",
        db.value, db.attribute, db.type_, db.table
    );
    let Some(rows) = sqlops::run_on(&db.store, "avp_db_load", sql.into_bytes()) else {
        return -1;
    };
    let mut n = 0;
    for row in &rows.rows {
        let [value, name, SqlValue::Int(t)] = row.as_slice() else {
            log::error!("avp_db_load: NULL or wrongly typed fields in a row");
            continue;
        };
        let (SqlValue::Str(value), SqlValue::Str(_)) = (value, name) else {
            log::error!("avp_db_load: wrong field types in a row");
            continue;
        };
        let v = if t & 1 != 0 {
            match std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
            {
                Some(i) => Value::Int(i64::from(i as i32)),
                None => {
                    log::error!("avp_db_load: value is not int as flags say");
                    continue;
                }
            }
        } else {
            Value::owned(value.clone())
        };
        ctx.attrs.avp_push(key.clone(), v);
        n += 1;
    }
    if n > 0 {
        1
    } else {
        -1
    }
}

/// `avp_db_delete(source, "$avp(name)")`: deletes the matching rows. 1, -1 on error.
pub(super) fn avp_db_delete(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (Some(db), Some(src), Some(dst)) =
        (db(ctx), args.custom::<DbSource>(0), args.custom::<DbAvp>(1))
    else {
        return -1;
    };
    let key = dst.name.key(ctx);
    let Some(cond) = selection(ctx, &db, src, &attr_text(&key)) else {
        return -1;
    };
    let sql = format!("DELETE FROM {} WHERE {cond}", db.table);
    match sqlops::run_on(&db.store, "avp_db_delete", sql.into_bytes()) {
        Some(_) => 1,
        None => -1,
    }
}

pub(super) fn fixup_refused_store(_: &mut Args, _: &ModParams) -> Result<(), String> {
    Err(
        "avp_db_store is not available in ringsip (its AVPs do not record which were loaded \
         from the database, so loaded values would be stored again); use sql_query with an INSERT"
            .into(),
    )
}

pub(super) fn never(_: &mut MsgCtx<'_>, _: &Args) -> i32 {
    -1
}
