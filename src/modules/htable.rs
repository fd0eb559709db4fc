//! htable: hash tables shared by every core, read and written from the
//! script as `$sht(table=>key)`. A table is declared with
//! `modparam("htable", "htable", "name=>size=8;autoexpire=300;")`; the
//! compiler reads the definitions (`script::shared::HtableDef`) and the
//! tables live in `script::shared::SharedState`, reached through `Env`.
//! Module functions (`sht_rm`, `sht_print`, …) go in this file too.

use crate::script::ctx::MsgCtx;
use crate::script::registry::{
    Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::script::value::Value;

/// `sht_rm(table, key)`: removes one item. 1, or -1 when the table does not exist.
fn sht_rm(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let table = args.str(ctx, 0).into_owned();
    let key = args.str(ctx, 1).into_owned();
    let Some(t) = std::str::from_utf8(&table)
        .ok()
        .and_then(|n| ctx.env.shared.htable_named(n))
    else {
        return -1;
    };
    t.remove(&key);
    1
}

/// `sht_reset(table)`: empties a table.
fn sht_reset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let table = args.str(ctx, 0).into_owned();
    let Some(t) = std::str::from_utf8(&table)
        .ok()
        .and_then(|n| ctx.env.shared.htable_named(n))
    else {
        return -1;
    };
    t.remove_if(|_, _| true);
    1
}

/// Splits `table=>key` (printed for this message) into the table's index and the key.
fn table_key(ctx: &MsgCtx<'_>, args: &Args) -> Option<(u32, Vec<u8>)> {
    let text = args.str(ctx, 0);
    let at = text.windows(2).position(|w| w == b"=>")?;
    let name = std::str::from_utf8(&text[..at]).ok()?.trim();
    let index = ctx.env.shared.htable_index(name)?;
    Some((index, text[at + 2..].to_vec()))
}

fn fixup_table_key(args: &mut Args, _: &ModParams) -> Result<(), String> {
    match args.get(0) {
        Some(Arg::Str(s)) if !s.windows(2).any(|w| w == b"=>") => {
            Err("the argument must be \"table=>key\"".to_string())
        }
        _ => Ok(()),
    }
}

/// `sht_lock("table=>key")`: takes the script lock of the key's slot, for a
/// read-modify-write across cores (rules in `script::shared::HeldLocks`).
/// 1; -1 when the table does not exist or the lock cannot be taken now.
fn sht_lock(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some((table, key)) = table_key(ctx, args) else {
        return -1;
    };
    let shared = ctx.env.shared.clone();
    if ctx.sht_locks.lock(&shared, table, &key) {
        1
    } else {
        log::warn!("sht_lock: the lock of this key is busy while this message holds another");
        -1
    }
}

/// `sht_unlock("table=>key")`: lets go of one `sht_lock`. 1, or -1 when not held.
fn sht_unlock(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some((table, key)) = table_key(ctx, args) else {
        return -1;
    };
    let shared = ctx.env.shared.clone();
    if ctx.sht_locks.unlock(&shared, table, &key) {
        1
    } else {
        -1
    }
}

/// `sht_setxi(table, key, int, expire)` / `sht_setxs(table, key, str, expire)`:
/// sets an item with its own expiry in seconds (0: the table's autoexpire).
fn setx(ctx: &mut MsgCtx<'_>, args: &Args, int: bool) -> i32 {
    let table = args.str(ctx, 0).into_owned();
    let key = args.str(ctx, 1).into_owned();
    let Some(t) = std::str::from_utf8(&table)
        .ok()
        .and_then(|n| ctx.env.shared.htable_named(n))
    else {
        return -1;
    };
    let value = if int {
        match args.int(ctx, 2) {
            Some(i) => Value::Int(i),
            None => return -1,
        }
    } else {
        Value::owned(args.str(ctx, 2).into_owned())
    };
    let expire = args.int(ctx, 3).unwrap_or(0).max(0) as u64;
    t.set(&key, value, ctx.now);
    if expire > 0 {
        t.set_expire(&key, expire, ctx.now);
    }
    1
}

fn sht_setxi(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    setx(ctx, args, true)
}

fn sht_setxs(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    setx(ctx, args, false)
}

/// `sht_iterator_start(iname, table)`: 1, or -1 (no such table, too many iterators).
fn sht_iterator_start(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    let table = args.str(ctx, 1).into_owned();
    let shared = ctx.env.shared.clone();
    let Some(t) = std::str::from_utf8(&table)
        .ok()
        .and_then(|n| shared.htable_named(n))
    else {
        return -1;
    };
    if ctx.sht_iters.start(&name, t, ctx.now) {
        1
    } else {
        -1
    }
}

/// `sht_iterator_next(iname)`: 1 on the next item, -1 at the end.
fn sht_iterator_next(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    if ctx.sht_iters.next(&name) {
        1
    } else {
        -1
    }
}

/// `sht_iterator_end(iname)`: 1 (also when it was not open, as Kamailio).
fn sht_iterator_end(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    ctx.sht_iters.end(&name);
    1
}

/// The operator of `sht_rm_name_re`/`sht_rm_value_re` ("re" only: Kamailio's
/// other operators, "eq", "sw", are compared literally).
#[derive(Debug)]
enum Matcher {
    Re(regex::bytes::Regex),
    Eq(Vec<u8>),
    Sw(Vec<u8>),
}

impl Matcher {
    fn hit(&self, v: &[u8]) -> bool {
        match self {
            Matcher::Re(re) => re.is_match(v),
            Matcher::Eq(e) => v == e.as_slice(),
            Matcher::Sw(p) => v.starts_with(p),
        }
    }
}

/// `sht_rm_name_re(table=>regex)` and the three-argument form
/// `sht_rm_name(table, op, value)` with op `re`, `eq` or `sw`.
fn fixup_rm_match(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let text = |a: Option<&Arg>| match a {
        Some(Arg::Str(s)) => Ok(String::from_utf8_lossy(s).into_owned()),
        _ => Err("needs constant arguments".to_string()),
    };
    let (table, op, value) = if args.len() == 1 {
        let spec = text(args.get(0))?;
        let (t, re) = spec.split_once("=>").ok_or("expects table=>regex")?;
        (t.to_string(), "re".to_string(), re.to_string())
    } else {
        (text(args.get(0))?, text(args.get(1))?, text(args.get(2))?)
    };
    let matcher = match op.as_str() {
        "re" => Matcher::Re(
            regex::bytes::Regex::new(&value).map_err(|e| format!("bad regular expression: {e}"))?,
        ),
        "eq" => Matcher::Eq(value.into_bytes()),
        "sw" => Matcher::Sw(value.into_bytes()),
        other => return Err(format!("unknown match operator \"{other}\"")),
    };
    args.0 = vec![
        Arg::Str(table.into_bytes().into()),
        Arg::Custom(Box::new(matcher)),
    ];
    Ok(())
}

fn rm_matching(ctx: &mut MsgCtx<'_>, args: &Args, on_value: bool) -> i32 {
    let table = args.str(ctx, 0).into_owned();
    let (Some(t), Some(m)) = (
        std::str::from_utf8(&table)
            .ok()
            .and_then(|n| ctx.env.shared.htable_named(n)),
        args.custom::<Matcher>(1),
    ) else {
        return -1;
    };
    t.remove_if(|k, v| {
        if on_value {
            m.hit(&v.to_bytes())
        } else {
            m.hit(k)
        }
    });
    1
}

fn sht_rm_name(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    rm_matching(ctx, args, false)
}

fn sht_rm_value(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    rm_matching(ctx, args, true)
}

const ANY: RouteMask = RouteMask::ANY;

pub static MODULE: ModuleDef = ModuleDef {
    name: "htable",
    aliases: &[],
    functions: &[
        FunctionDef {
            name: "sht_lock",
            min_args: 1,
            max_args: 1,
            routes: RouteMask::ANY,
            fixup: Some(fixup_table_key),
            call: sht_lock,
        },
        FunctionDef {
            name: "sht_unlock",
            min_args: 1,
            max_args: 1,
            routes: RouteMask::ANY,
            fixup: Some(fixup_table_key),
            call: sht_unlock,
        },
        FunctionDef {
            name: "sht_iterator_start",
            min_args: 2,
            max_args: 2,
            routes: RouteMask::ANY,
            fixup: None,
            call: sht_iterator_start,
        },
        FunctionDef {
            name: "sht_iterator_next",
            min_args: 1,
            max_args: 1,
            routes: RouteMask::ANY,
            fixup: None,
            call: sht_iterator_next,
        },
        FunctionDef {
            name: "sht_iterator_end",
            min_args: 1,
            max_args: 1,
            routes: RouteMask::ANY,
            fixup: None,
            call: sht_iterator_end,
        },
        FunctionDef {
            name: "sht_setxi",
            min_args: 4,
            max_args: 4,
            routes: RouteMask::ANY,
            fixup: None,
            call: sht_setxi,
        },
        FunctionDef {
            name: "sht_setxs",
            min_args: 4,
            max_args: 4,
            routes: RouteMask::ANY,
            fixup: None,
            call: sht_setxs,
        },
        FunctionDef {
            name: "sht_rm",
            min_args: 2,
            max_args: 2,
            routes: ANY,
            fixup: None,
            call: sht_rm,
        },
        FunctionDef {
            name: "sht_reset",
            min_args: 1,
            max_args: 1,
            routes: ANY,
            fixup: None,
            call: sht_reset,
        },
        FunctionDef {
            name: "sht_rm_name_re",
            min_args: 1,
            max_args: 1,
            routes: ANY,
            fixup: Some(fixup_rm_match),
            call: sht_rm_name,
        },
        FunctionDef {
            name: "sht_rm_value_re",
            min_args: 1,
            max_args: 1,
            routes: ANY,
            fixup: Some(fixup_rm_match),
            call: sht_rm_value,
        },
        FunctionDef {
            name: "sht_rm_name",
            min_args: 3,
            max_args: 3,
            routes: ANY,
            fixup: Some(fixup_rm_match),
            call: sht_rm_name,
        },
        FunctionDef {
            name: "sht_rm_value",
            min_args: 3,
            max_args: 3,
            routes: ANY,
            fixup: Some(fixup_rm_match),
            call: sht_rm_value,
        },
    ],
    params: &[
        ParamDef {
            name: "htable",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "db_url",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "timer_interval",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "timer_procs",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "key_name_column",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "key_type_column",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "value_type_column",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "key_value_column",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "expires_column",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "array_size_suffix",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "fetch_rows",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "enable_dmq",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "event_callback",
            kind: ParamKind::Str,
        },
    ],
    always: false,
};

/// Sets the pace of hash-table expiry: every `timer_interval` seconds
/// (Kamailio's default 20) the engine takes the items that expired and runs
/// `event_route[htable:expired:NAME]` for each; this timer has no work of its
/// own (the engine owns the routes).
pub struct ExpiryTick(pub std::time::Duration);

impl ExpiryTick {
    pub fn from_modparams(mp: &ModParams) -> ExpiryTick {
        let secs = mp.int("htable", "timer_interval").unwrap_or(20).max(1);
        ExpiryTick(std::time::Duration::from_secs(secs as u64))
    }
}

impl crate::script::ctx::SharedTimer for ExpiryTick {
    fn interval(&self) -> std::time::Duration {
        self.0
    }

    fn on_timer(&self, _unix_ms: u64) {}
}
