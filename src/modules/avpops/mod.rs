//! avpops: AVPs loaded from and written to a database (`avp_db_query`,
//! `avp_db_load`, `avp_db_delete`, with `db_url` and `avp_table`), and
//! operations on AVPs (`avp_delete`, `avp_copy`, `avp_pushto`, `avp_check`,
//! `avp_op`, `avp_subst`, `avp_subst_pv`, `is_avp_set`, `avp_print`), with
//! Kamailio 5.6's argument grammar (`"$avp(x)/g"`, `"$ru/username"`,
//! `"eq/$avp(y)/i"`, see [`args`]).
//!
//! AVP values are integers or strings, as in Kamailio. Database work runs on
//! the store thread of `db_url`, waited for with a time limit.
//!
//! Not available: `avp_db_store` (Kamailio marks each AVP loaded from the
//! database so that storing skips it; ringsip's AVPs carry no such mark, so
//! the function is refused at start-up rather than storing loaded values
//! twice), and DB schemes (`db_scheme`, `"$avp(x)/$scheme"`).

pub mod args;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;

use crate::modules::sqlops;
use crate::script::ctx::MsgCtx;
use crate::script::ir::AssignOp;
use crate::script::pvkind::{AvpKey, NamePart, PvKind, PvRef};
use crate::script::registry::{func, param, Arg, Args, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::script::transform::Subst;
use crate::script::value::Value;
use crate::store::{SqlValue, StoreHandle};
use args::{flags, seg_pv, seg_text, segments, AvpName};

/// The `usr_preferences` table and its columns (modparams `avp_table`, `*_column`).
#[derive(Debug, Clone)]
pub struct AvpDb {
    pub store: StoreHandle,
    pub table: String,
    pub uuid: String,
    pub attribute: String,
    pub value: String,
    pub type_: String,
    pub username: String,
    pub domain: String,
    pub use_domain: bool,
}

/// Opens `db_url` (when set) for the database functions.
pub fn open(
    mp: &ModParams,
    handle: impl FnOnce(&str) -> Result<StoreHandle, String>,
) -> Result<Option<Arc<AvpDb>>, String> {
    let Some(url) = mp.str("avpops", "db_url") else {
        return Ok(None);
    };
    let col = |name: &str, default: &str| -> Result<String, String> {
        let v = mp.str("avpops", name).unwrap_or(default).to_string();
        if crate::store::is_identifier(&v) {
            Ok(v)
        } else {
            Err(format!("avpops: {name} {v:?} is not a usable name"))
        }
    };
    let table = match mp.str("avpops", "avp_table") {
        Some(t) if !t.is_empty() => col("avp_table", t)?,
        _ => return Err("avpops: db_url is set but avp_table is empty".into()),
    };
    Ok(Some(Arc::new(AvpDb {
        store: handle(url).map_err(|e| format!("avpops: {e}"))?,
        table,
        uuid: col("uuid_column", "uuid")?,
        attribute: col("attribute_column", "attribute")?,
        value: col("value_column", "value")?,
        type_: col("type_column", "type")?,
        username: col("username_column", "username")?,
        domain: col("domain_column", "domain")?,
        use_domain: mp.int("avpops", "use_domain").unwrap_or(0) != 0,
    })))
}

fn db(ctx: &MsgCtx<'_>) -> Option<Arc<AvpDb>> {
    ctx.env.services.get::<Arc<AvpDb>>().cloned().or_else(|| {
        log::error!("avpops: no database (db_url)");
        None
    })
}

/// An SQL string literal; `None` for text a literal cannot hold the same in
/// every database (backslash, NUL).
fn sql_literal(v: &[u8]) -> Option<String> {
    if v.iter().any(|b| *b == b'\\' || *b == 0) {
        return None;
    }
    let s = std::str::from_utf8(v).ok()?;
    Some(format!("'{}'", s.replace('\'', "''")))
}

fn need_db_url(mp: &ModParams) -> Result<(), String> {
    match mp.str("avpops", "db_url") {
        Some(_) => Ok(()),
        None => Err("needs modparam(\"avpops\", \"db_url\", ...)".into()),
    }
}

// --- avp_db_query ---------------------------------------------------------------------------

fn fixup_db_query(args: &mut Args, mp: &ModParams) -> Result<(), String> {
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
fn avp_db_query(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
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

fn fixup_db_avp(args: &mut Args, mp: &ModParams) -> Result<(), String> {
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
fn avp_db_load(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
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
fn avp_db_delete(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
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

fn fixup_refused_store(_: &mut Args, _: &ModParams) -> Result<(), String> {
    Err(
        "avp_db_store is not available in ringsip (its AVPs do not record which were loaded \
         from the database, so loaded values would be stored again); use sql_query with an INSERT"
            .into(),
    )
}

fn never(_: &mut MsgCtx<'_>, _: &Args) -> i32 {
    -1
}

// --- operations on AVPs ---------------------------------------------------------------------

/// `avp_delete`'s target: one AVP, or every AVP with a name of a kind.
#[derive(Debug)]
enum DeleteWhat {
    Named(AvpName),
    /// `*`/`a` (None), `s` (Some(true): string names), `i` (Some(false)).
    Kind(Option<bool>),
}

#[derive(Debug)]
struct Delete {
    what: DeleteWhat,
    all: bool,
}

fn fixup_delete(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let segs = segments(args.get(0))?;
    let what = match (seg_pv(&segs[0]), seg_text(&segs[0])) {
        (Some(_), _) => DeleteWhat::Named(AvpName::from_seg(&segs[0], "the argument")?),
        (None, Some(t)) => {
            let (kind, rest) = t.split_at(t.len().min(1));
            if !rest.is_empty() && rest.parse::<u32>().is_err() {
                return Err("bad avp flags".into());
            }
            DeleteWhat::Kind(match kind {
                "s" | "S" => Some(true),
                "i" | "I" => Some(false),
                "*" | "a" | "A" => None,
                _ => return Err("bad param - expected: $avp(name), *, s or i".into()),
            })
        }
        _ => return Err("bad param - expected: $avp(name), *, s or i".into()),
    };
    let f = flags(segs.get(1), "g")?;
    let all = f.contains('g') || matches!(what, DeleteWhat::Kind(_));
    args.0[0] = Arg::Custom(Box::new(Delete { what, all }));
    Ok(())
}

/// `avp_delete("$avp(x)[/g]")` / `avp_delete("*|s|i")`: 1 when any was removed, else -1.
fn avp_delete(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(d) = args.custom::<Delete>(0) else {
        return -1;
    };
    let before = ctx.attrs.avps().len();
    match &d.what {
        DeleteWhat::Named(n) => {
            let key = n.key(ctx);
            if d.all {
                ctx.attrs.avp_remove_all(&key);
            } else {
                ctx.attrs.avp_remove_newest(&key);
            }
        }
        DeleteWhat::Kind(k) => ctx.attrs.avp_retain(|key, _| match k {
            None => false,
            Some(true) => !matches!(key, AvpKey::Str(_)),
            Some(false) => !matches!(key, AvpKey::Int(_)),
        }),
    }
    if ctx.attrs.avps().len() < before {
        1
    } else {
        -1
    }
}

#[derive(Debug)]
struct Copy {
    src: AvpName,
    dst: AvpName,
    all: bool,
    delete: bool,
    to_int: bool,
    to_str: bool,
}

fn fixup_copy(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let s1 = segments(args.get(0))?;
    if s1.len() > 1 {
        return Err("the first argument takes no flags".into());
    }
    let src = AvpName::from_seg(&s1[0], "the first argument")?;
    let s2 = segments(args.get(1))?;
    let dst = AvpName::from_seg(&s2[0], "the second argument")?;
    let f = flags(s2.get(1), "gdns")?;
    args.0 = vec![Arg::Custom(Box::new(Copy {
        src,
        dst,
        all: f.contains('g'),
        delete: f.contains('d'),
        to_int: f.contains('n'),
        to_str: f.contains('s'),
    }))];
    Ok(())
}

/// A string read as Kamailio's `str2int`: digits only, else `None`.
fn str2int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s)
        .ok()?
        .parse::<u32>()
        .ok()
        .map(|u| i64::from(u as i32))
}

/// `avp_copy("$avp(a)", "$avp(b)[/gdns]")`: the newest (`g`: every) value
/// of `a` added to `b`; `d` deletes the copied ones, `n`/`s` convert to
/// integer / string. 1 when any was copied, else -1.
fn avp_copy(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(c) = args.custom::<Copy>(0) else {
        return -1;
    };
    let (src, dst) = (c.src.key(ctx), c.dst.key(ctx));
    let values: Vec<Value<'static>> = ctx.attrs.avp_values(&src).cloned().collect();
    let take = if c.all {
        values.len()
    } else {
        values.len().min(1)
    };
    let mut n = 0;
    for v in values.into_iter().take(take) {
        let v = match v {
            Value::Str(s) if c.to_int => match str2int(&s) {
                Some(i) => Value::Int(i),
                None => {
                    log::error!("avp_copy: cannot convert str to int");
                    return -1;
                }
            },
            Value::Int(i) if c.to_str => Value::owned((i as i32).to_string().into_bytes()),
            v => v,
        };
        ctx.attrs.avp_push(dst.clone(), v);
        n += 1;
        if c.delete {
            // Each copied value is the newest left (copies go to another name).
            if src.matches(&dst) {
                continue;
            }
            ctx.attrs.avp_remove_newest(&src);
        }
    }
    if n > 0 {
        1
    } else {
        -1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PushTo {
    Ruri,
    RuriUser,
    RuriHost,
    Duri,
    Branch,
}

#[derive(Debug)]
struct Push {
    dst: PushTo,
    src: PvRef,
    all: bool,
}

fn fixup_pushto(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let s1 = segments(args.get(0))?;
    let pv = seg_pv(&s1[0]).ok_or("bad param 1; expected: $ru $du ...")?;
    let flag = s1
        .get(1)
        .map(|s| seg_text(s).unwrap_or_default().to_ascii_lowercase());
    let dst = match (&pv.kind, flag.as_deref()) {
        (PvKind::Ru, None) => PushTo::Ruri,
        (PvKind::Ru, Some("username")) => PushTo::RuriUser,
        (PvKind::Ru, Some("domain")) => PushTo::RuriHost,
        (PvKind::Du, None) => PushTo::Duri,
        (PvKind::Br, None) => PushTo::Branch,
        (PvKind::Ru | PvKind::Du | PvKind::Br, Some(f)) => {
            return Err(format!("unknown flag \"{f}\""))
        }
        (PvKind::Hdr(_), _) => {
            return Err("push to header is obsolete - use append_hf() or append_to_reply()".into())
        }
        _ => return Err("unsupported destination; expected $ru, $du, $br".into()),
    };
    let s2 = segments(args.get(1))?;
    let src = seg_pv(&s2[0])
        .ok_or("bad param 2; expected: $pseudo-variable")?
        .clone();
    let all = flags(s2.get(1), "g")?.contains('g');
    args.0 = vec![Arg::Custom(Box::new(Push { dst, src, all }))];
    Ok(())
}

/// `avp_pushto("$ru[/username|/domain]"|"$du"|"$br", "$avp(x)[/g]")`: the
/// value into the Request-URI (or its user or host), `$du`, or a new
/// branch; with `g` every value (each further one to the R-URI pushes the
/// current R-URI into a branch first). 1, -1 when there is no value.
fn avp_pushto(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(p) = args.custom::<Push>(0) else {
        return -1;
    };
    let values: Vec<Value<'static>> = match AvpName::of(&p.src) {
        Some(n) if p.src.index.is_none() => {
            let key = n.key(ctx);
            let all: Vec<_> = ctx.attrs.avp_values(&key).cloned().collect();
            if all.is_empty() {
                return -1;
            }
            if p.all {
                all
            } else {
                all.into_iter().take(1).collect()
            }
        }
        _ => vec![ctx.read_pv(&p.src).into_owned()],
    };
    for (n, v) in values.into_iter().enumerate() {
        let is_str = matches!(v, Value::Str(_));
        let text = match &v {
            Value::Int(i) => (*i as i32 as u32).to_string().into_bytes(),
            other => other.to_bytes().into_owned(),
        };
        let ok = match p.dst {
            PushTo::Ruri | PushTo::RuriUser | PushTo::RuriHost => {
                if n > 0 && crate::modules::corex::branch::append_branch(ctx, &Args::default()) != 1
                {
                    return -1;
                }
                let kind = match p.dst {
                    PushTo::RuriUser => PvKind::RUser,
                    PushTo::RuriHost => PvKind::RHost,
                    _ => PvKind::Ru,
                };
                ctx.assign_pv(&PvRef::new(kind), AssignOp::Set, Value::owned(text))
                    .is_ok()
            }
            PushTo::Duri => {
                is_str
                    && ctx
                        .assign_pv(&PvRef::new(PvKind::Du), AssignOp::Set, Value::owned(text))
                        .is_ok()
            }
            PushTo::Branch => {
                is_str
                    && crate::modules::corex::branch::append_branch(
                        ctx,
                        &Args(vec![Arg::Str(Bytes::from(text))]),
                    ) == 1
            }
        };
        if !ok {
            return -1;
        }
    }
    1
}

/// The comparison of `avp_check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Re,
    Fm,
    And,
    Or,
    Xor,
}

#[derive(Debug)]
enum Operand {
    Pv(PvRef),
    Int(i64),
    Str(Vec<u8>),
    Re(regex::bytes::Regex),
}

#[derive(Debug)]
struct Check {
    src: PvRef,
    op: CheckOp,
    value: Operand,
    all: bool,
    icase: bool,
}

/// `i:NUM` / `s:TEXT` / `TEXT` (a string).
fn int_or_str(t: &str) -> Result<Operand, String> {
    let (kind, v) = match t.as_bytes() {
        [k, b':', ..] => (Some(k.to_ascii_lowercase()), &t[2..]),
        _ => (None, t),
    };
    match kind {
        Some(b'i') => {
            let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                u32::from_str_radix(h, 16).map(|u| i64::from(u as i32)).ok()
            } else {
                v.parse::<i32>().map(i64::from).ok()
            };
            n.map(Operand::Int)
                .ok_or_else(|| format!("value is not int as type says <{t}>"))
        }
        Some(b's') if !v.is_empty() => Ok(Operand::Str(v.as_bytes().to_vec())),
        Some(b's') => Err(format!("parse error around <{t}>")),
        Some(k) => Err(format!("unknown value type <{}>", k as char)),
        None if t.is_empty() => Err("missing value".into()),
        None => Ok(Operand::Str(t.as_bytes().to_vec())),
    }
}

/// `op/value[/flags]` of `avp_check` and `avp_op`: the operation, the value
/// (a pseudo-variable or `i:`/`s:` constant) and the flag letters.
fn op_value(arg: Option<&Arg>, allowed_flags: &str) -> Result<(String, Operand, String), String> {
    let segs = segments(arg)?;
    let op = seg_text(&segs[0])
        .filter(|o| (2..=3).contains(&o.len()))
        .ok_or("expected op/value[/flags]")?
        .to_ascii_lowercase();
    let vseg = segs.get(1).ok_or("expected op/value[/flags]")?;
    let value = match (seg_pv(vseg), seg_text(vseg)) {
        (Some(pv), _) => Operand::Pv(pv.clone()),
        (None, Some(t)) => int_or_str(&t)?,
        _ => return Err("the value must be a constant or one pseudo-variable".into()),
    };
    let f = flags(segs.get(2), allowed_flags)?;
    if segs.len() > 3 {
        return Err("expected op/value[/flags]".into());
    }
    Ok((op, value, f))
}

fn fixup_check(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let s1 = segments(args.get(0))?;
    let src = seg_pv(&s1[0])
        .ok_or("the first argument must be a pseudo-variable")?
        .clone();
    let (op, value, f) = op_value(args.get(1), "gi")?;
    // Kamailio compares the operation's first letters.
    let op = match op.as_str() {
        o if o.starts_with("eq") => CheckOp::Eq,
        o if o.starts_with("ne") => CheckOp::Ne,
        o if o.starts_with("lt") => CheckOp::Lt,
        o if o.starts_with("le") => CheckOp::Le,
        o if o.starts_with("gt") => CheckOp::Gt,
        o if o.starts_with("ge") => CheckOp::Ge,
        o if o.starts_with("re") => CheckOp::Re,
        o if o.starts_with("fm") => CheckOp::Fm,
        o if o.starts_with("and") => CheckOp::And,
        o if o.starts_with("or") => CheckOp::Or,
        o if o.starts_with("xor") => CheckOp::Xor,
        o => return Err(format!("unknown operation <{o}>")),
    };
    let value = match (op, value) {
        // Kamailio compiles constant expressions extended, case-insensitive.
        (CheckOp::Re, Operand::Str(s)) => Operand::Re(
            regex::bytes::RegexBuilder::new(&String::from_utf8_lossy(&s))
                .case_insensitive(true)
                .multi_line(true)
                .build()
                .map_err(|e| format!("bad re: {e}"))?,
        ),
        (CheckOp::Fm, Operand::Int(_)) => {
            return Err("fast_match operation requires string value or avp name".into())
        }
        (_, v) => v,
    };
    args.0 = vec![Arg::Custom(Box::new(Check {
        src,
        op,
        value,
        all: f.contains('g'),
        icase: f.contains('i'),
    }))];
    Ok(())
}

/// Kamailio's `strncasecmp(a, b, max(len))` on two strings.
fn casecmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        let c = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
        if c.is_ne() {
            return c;
        }
    }
    std::cmp::Ordering::Equal
}

/// A glob (`fnmatch` without flags: `*`, `?`, `[...]`).
fn glob(pattern: &[u8], text: &[u8], icase: bool) -> bool {
    let mut re = String::from("(?s-u)^");
    if icase {
        re.push_str("(?i)");
    }
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' => re.push_str(".*"),
            b'?' => re.push('.'),
            b'[' => match pattern[i..].iter().position(|b| *b == b']') {
                Some(end) if end > 1 => {
                    let class = &pattern[i + 1..i + end];
                    let class = match class.first() {
                        Some(b'!') => [b"^".as_slice(), &class[1..]].concat(),
                        _ => class.to_vec(),
                    };
                    re.push('[');
                    for b in class {
                        if b == b'\\' || b == b'[' {
                            re.push('\\');
                        }
                        re.push_str(&format!("\\x{b:02x}"));
                    }
                    re.push(']');
                    i += end;
                }
                _ => re.push_str("\\["),
            },
            b => re.push_str(&format!("\\x{b:02x}")),
        }
        i += 1;
    }
    re.push('$');
    regex::bytes::Regex::new(&re).is_ok_and(|r| r.is_match(text))
}

/// One comparison; `None` when the two values are not of one type.
fn compare(
    op: CheckOp,
    a: &Value<'_>,
    b: &Value<'_>,
    re: Option<&regex::bytes::Regex>,
    icase: bool,
) -> Option<bool> {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(match op {
            CheckOp::Eq if icase => x.eq_ignore_ascii_case(y),
            CheckOp::Eq => x == y,
            CheckOp::Ne if icase => !x.eq_ignore_ascii_case(y),
            CheckOp::Ne => x != y,
            CheckOp::Lt => casecmp(x, y) == Less,
            CheckOp::Le => casecmp(x, y) != Greater,
            CheckOp::Gt => casecmp(x, y) == Greater,
            CheckOp::Ge => casecmp(x, y) != Less,
            CheckOp::Re => match re {
                Some(r) => r.is_match(x),
                None => regex::bytes::RegexBuilder::new(&String::from_utf8_lossy(y))
                    .case_insensitive(true)
                    .multi_line(true)
                    .build()
                    .is_ok_and(|r| r.is_match(x)),
            },
            CheckOp::Fm => glob(y, x, icase),
            CheckOp::And | CheckOp::Or | CheckOp::Xor => false,
        }),
        (Value::Int(x), Value::Int(y)) => {
            let (x, y) = (*x as i32, *y as i32);
            Some(match op {
                CheckOp::Eq => x == y,
                CheckOp::Ne => x != y,
                CheckOp::Lt => x < y,
                CheckOp::Le => x <= y,
                CheckOp::Gt => x > y,
                CheckOp::Ge => x >= y,
                CheckOp::And => x & y != 0,
                CheckOp::Or => x | y != 0,
                CheckOp::Xor => x ^ y != 0,
                CheckOp::Re | CheckOp::Fm => false,
            })
        }
        _ => None,
    }
}

/// The values a pseudo-variable stands for in avpops: every value of an
/// AVP (newest first; `None` when there is none), else its one value.
fn values_of(ctx: &MsgCtx<'_>, pv: &PvRef) -> Option<Vec<Value<'static>>> {
    match AvpName::of(pv) {
        Some(n) if pv.index.is_none() => {
            let key = n.key(ctx);
            let v: Vec<_> = ctx.attrs.avp_values(&key).cloned().collect();
            (!v.is_empty()).then_some(v)
        }
        _ => match ctx.read_pv(pv) {
            Value::Null => Some(vec![Value::owned(Vec::new())]),
            v => Some(vec![v.into_owned()]),
        },
    }
}

/// `avp_check(pv, "op/value[/gi]")`: 1 when the value (`g`: any value of
/// the AVP) compares true against the value (any value of a second AVP), else -1.
fn avp_check(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(c) = args.custom::<Check>(0) else {
        return -1;
    };
    let Some(mut left) = values_of(ctx, &c.src) else {
        return -1;
    };
    if !c.all {
        left.truncate(1);
    }
    let (right, re) = match &c.value {
        Operand::Pv(pv) => match values_of(ctx, pv) {
            Some(v) => (v, None),
            None => return -1,
        },
        Operand::Int(i) => (vec![Value::Int(*i)], None),
        Operand::Str(s) => (vec![Value::owned(s.clone())], None),
        Operand::Re(r) => (vec![Value::owned(Vec::new())], Some(r)),
    };
    for a in &left {
        for b in &right {
            match compare(c.op, a, b, re, c.icase) {
                Some(true) => return 1,
                Some(false) => {}
                None => log::error!("avp_check: value types don't match"),
            }
        }
    }
    -1
}

#[derive(Debug)]
struct Op {
    src: AvpName,
    dst: Option<AvpName>,
    op: String,
    value: Operand,
    /// `g` is accepted and, as in Kamailio, changes nothing: every value is used.
    delete: bool,
}

fn fixup_op(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let s1 = segments(args.get(0))?;
    let src = AvpName::from_seg(&s1[0], "the first argument")?;
    let dst = match s1.get(1) {
        Some(s) => Some(AvpName::from_seg(s, "the destination")?),
        None => None,
    };
    let (op, value, f) = op_value(args.get(1), "gd")?;
    let op = ["add", "sub", "mul", "div", "mod", "and", "or", "xor", "not"]
        .into_iter()
        .find(|o| op.starts_with(o))
        .ok_or_else(|| format!("unknown operation <{op}>"))?
        .to_string();
    if matches!(value, Operand::Str(_)) {
        return Err("operations require integer values".into());
    }
    args.0 = vec![Arg::Custom(Box::new(Op {
        src,
        dst,
        op,
        value,
        delete: f.contains('d'),
    }))];
    Ok(())
}

/// `avp_op("$avp(a)[/$avp(b)]", "op/value[/d]")`: integer arithmetic
/// (add sub mul div mod and or xor; `not` gives the complement of the
/// value) of each integer value of `a` (newest first) with each integer
/// value of the operand in turn (a result is the left side of the next
/// operation), every result added to `b` (or to `a`); `d`
/// deletes the source values. Division by zero gives 0. 1, -1 when `a` has
/// no integer value.
fn avp_op(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(o) = args.custom::<Op>(0) else {
        return -1;
    };
    let src = o.src.key(ctx);
    let dst = o.dst.as_ref().map_or_else(|| src.clone(), |d| d.key(ctx));
    let ints = |v: Vec<Value<'static>>| -> Vec<i32> {
        v.into_iter()
            .filter_map(|v| match v {
                Value::Int(i) => Some(i as i32),
                _ => None,
            })
            .collect()
    };
    let sources = ints(ctx.attrs.avp_values(&src).cloned().collect());
    if sources.is_empty() && o.op != "not" {
        return -1;
    }
    let operands: Vec<i32> = match &o.value {
        Operand::Int(i) => vec![*i as i32],
        Operand::Pv(pv) => match AvpName::of(pv) {
            Some(n) => {
                let key = n.key(ctx);
                let v = ints(ctx.attrs.avp_values(&key).cloned().collect());
                if v.is_empty() {
                    return -1;
                }
                v
            }
            None => match ctx.read_pv(pv) {
                Value::Int(i) => vec![i as i32],
                _ => {
                    log::error!("avp_op: the value is not an integer");
                    return -1;
                }
            },
        },
        _ => return -1,
    };
    let mut results = Vec::new();
    // As Kamailio: with several operand values, each result is the left
    // side of the next operation on the same source value.
    for x in &sources {
        let mut x = *x;
        for y in &operands {
            x = match o.op.as_str() {
                "add" => x.wrapping_add(*y),
                "sub" => x.wrapping_sub(*y),
                "mul" => x.wrapping_mul(*y),
                "div" | "mod" if *y == 0 => {
                    log::error!("avp_op: division by 0");
                    0
                }
                "div" => x.wrapping_div(*y),
                "mod" => x.wrapping_rem(*y),
                "and" => x & y,
                "or" => x | y,
                "xor" => x ^ y,
                _ => !y,
            };
            results.push(x);
        }
    }
    if o.delete {
        // Only the integer values were operated on (and are deleted).
        let mut left = sources.len();
        ctx.attrs.avp_retain(|k, v| {
            if left > 0 && k.matches(&src) && matches!(v, Value::Int(_)) {
                left -= 1;
                return false;
            }
            true
        });
    }
    for r in results {
        ctx.attrs.avp_push(dst.clone(), Value::Int(i64::from(r)));
    }
    1
}

#[derive(Debug)]
struct SubstSpec {
    src: AvpName,
    dst: Option<AvpName>,
    all: bool,
    delete: bool,
}

fn subst_spec(arg: Option<&Arg>) -> Result<SubstSpec, String> {
    let segs = segments(arg)?;
    let src = AvpName::from_seg(&segs[0], "the first argument")?;
    let mut rest = segs[1..].iter();
    let mut dst = None;
    let mut f = String::new();
    if let Some(s) = rest.next() {
        if seg_pv(s).is_some() {
            dst = Some(AvpName::from_seg(s, "the destination")?);
            f = flags(rest.next(), "gd")?;
        } else {
            f = flags(Some(s), "gd")?;
        }
    }
    if rest.next().is_some() {
        return Err("expected $avp(src)[/$avp(dst)][/flags]".into());
    }
    Ok(SubstSpec {
        src,
        dst,
        all: f.contains('g'),
        delete: f.contains('d'),
    })
}

fn fixup_subst(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let spec = subst_spec(args.get(0))?;
    let Some(Arg::Str(s)) = args.get(1) else {
        return Err(
            "the substitution must be a constant /re/repl/flags (avp_subst_pv takes variables)"
                .into(),
        );
    };
    let subst = Subst::parse(&String::from_utf8_lossy(s))?;
    args.0 = vec![Arg::Custom(Box::new(spec)), Arg::Custom(Box::new(subst))];
    Ok(())
}

fn fixup_subst_pv(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let spec = subst_spec(args.get(0))?;
    args.0[0] = Arg::Custom(Box::new(spec));
    Ok(())
}

fn do_subst(ctx: &mut MsgCtx<'_>, spec: &SubstSpec, subst: &Subst) -> i32 {
    let src = spec.src.key(ctx);
    let dst = spec.dst.as_ref().map(|d| d.key(ctx));
    let values: Vec<Value<'static>> = ctx.attrs.avp_values(&src).cloned().collect();
    let take = if spec.all {
        values.len()
    } else {
        values.len().min(1)
    };
    let mut n = 0;
    let mut out = Vec::new();
    for v in values.iter().take(take) {
        let Value::Str(s) = v else { continue };
        if let Some(r) = subst.apply(s) {
            out.push(r);
            n += 1;
        }
    }
    if n == 0 {
        return -1;
    }
    if dst.is_none() || spec.delete {
        for _ in 0..take {
            ctx.attrs.avp_remove_newest(&src);
        }
    }
    let to = dst.unwrap_or(src);
    for r in out.into_iter().rev() {
        ctx.attrs.avp_push(to.clone(), Value::owned(r));
    }
    1
}

/// `avp_subst("$avp(a)[/$avp(b)][/gd]", "/re/repl/flags")`: the substitution
/// on the newest (`g`: every) string value of `a`, results to `b` (or
/// replacing `a`'s). 1 when anything was replaced, else -1.
fn avp_subst(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (Some(spec), Some(subst)) = (args.custom::<SubstSpec>(0), args.custom::<Subst>(1)) else {
        return -1;
    };
    do_subst(ctx, spec, subst)
}

/// `avp_subst_pv`: as `avp_subst`, the substitution printed per message.
fn avp_subst_pv(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(spec) = args.custom::<SubstSpec>(0) else {
        return -1;
    };
    let text = String::from_utf8_lossy(&args.str(ctx, 1)).into_owned();
    match Subst::parse(&text) {
        Ok(s) => do_subst(ctx, spec, &s),
        Err(e) => {
            log::error!("avp_subst_pv: bad subst re {text}: {e}");
            -1
        }
    }
}

#[derive(Debug)]
struct IsSet {
    name: AvpName,
    empty: bool,
    int: bool,
    string: bool,
}

fn fixup_is_set(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let segs = segments(args.get(0))?;
    let name = AvpName::from_seg(&segs[0], "the argument")?;
    let f = flags(segs.get(1), "ens")?;
    if f.contains('n') && f.contains('s') {
        return Err("invalid flag combination 'n' and 's'".into());
    }
    args.0 = vec![Arg::Custom(Box::new(IsSet {
        name,
        empty: f.contains('e'),
        int: f.contains('n'),
        string: f.contains('s'),
    }))];
    Ok(())
}

/// `is_avp_set("$avp(x)[/e|n|s]")`: without flags 1 when the AVP has a
/// value; with flags the newest value must be an integer (`n`), a string
/// (`s`), and empty or 0 (`e`). Else -1.
fn is_avp_set(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(s) = args.custom::<IsSet>(0) else {
        return -1;
    };
    let key = s.name.key(ctx);
    let Some(v) = ctx.attrs.avp_values(&key).next() else {
        return -1;
    };
    if !(s.empty || s.int || s.string) {
        return 1;
    }
    let is_str = matches!(v, Value::Str(_));
    if s.int && is_str || s.string && !is_str {
        return -1;
    }
    let ok = !s.empty
        || match v {
            Value::Str(t) => t.is_empty(),
            Value::Int(i) => *i == 0,
            Value::Null => true,
        };
    if ok {
        1
    } else {
        -1
    }
}

/// `avp_print()`: logs every AVP. 1.
fn avp_print(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    for (k, v) in ctx.attrs.avps().iter().rev() {
        match k {
            AvpKey::Str(n) => log::info!("avp name=<{}>", String::from_utf8_lossy(n)),
            AvpKey::Int(i) => log::info!("avp id=<{i}>"),
        }
        match v {
            Value::Str(s) => log::info!("\tval_str=<{} / {}>", String::from_utf8_lossy(s), s.len()),
            other => log::info!("\tval_int=<{}>", other.to_int() as i32),
        }
    }
    1
}

/// Every route type but `onsend_route` and event routes (Kamailio: request,
/// failure, branch, onreply and local routes).
const ROUTES: RouteMask = RouteMask::REQUEST
    .or(RouteMask::FAILURE)
    .or(RouteMask::BRANCH)
    .or(RouteMask::ONREPLY)
    .or(RouteMask::REPLY);

pub static MODULE: ModuleDef = ModuleDef {
    name: "avpops",
    aliases: &[],
    functions: &[
        func(
            "avp_db_query",
            1,
            2,
            ROUTES,
            Some(fixup_db_query),
            avp_db_query,
        ),
        func("avp_db_load", 2, 2, ROUTES, Some(fixup_db_avp), avp_db_load),
        func(
            "avp_db_delete",
            2,
            2,
            ROUTES,
            Some(fixup_db_avp),
            avp_db_delete,
        ),
        func(
            "avp_db_store",
            2,
            2,
            ROUTES,
            Some(fixup_refused_store),
            never,
        ),
        func("avp_delete", 1, 1, ROUTES, Some(fixup_delete), avp_delete),
        func("avp_copy", 2, 2, ROUTES, Some(fixup_copy), avp_copy),
        func("avp_pushto", 2, 2, ROUTES, Some(fixup_pushto), avp_pushto),
        func("avp_check", 2, 2, ROUTES, Some(fixup_check), avp_check),
        func("avp_op", 2, 2, ROUTES, Some(fixup_op), avp_op),
        func("avp_subst", 2, 2, ROUTES, Some(fixup_subst), avp_subst),
        func(
            "avp_subst_pv",
            2,
            2,
            ROUTES,
            Some(fixup_subst_pv),
            avp_subst_pv,
        ),
        func("is_avp_set", 1, 1, ROUTES, Some(fixup_is_set), is_avp_set),
        func("avp_print", 0, 0, ROUTES, None, avp_print),
    ],
    params: &[
        param("db_url", ParamKind::Str),
        param("avp_table", ParamKind::Str),
        param("use_domain", ParamKind::Int),
        param("uuid_column", ParamKind::Str),
        param("attribute_column", ParamKind::Str),
        param("value_column", ParamKind::Str),
        param("type_column", ParamKind::Str),
        param("username_column", ParamKind::Str),
        param("domain_column", ParamKind::Str),
    ],
    always: false,
};
