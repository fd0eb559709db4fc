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
