//! statistics: script statistics (Kamailio 5.6 semantics).
//!
//! `modparam("statistics", "variable", "name[/no_reset]")` declares a
//! statistic of the `script` group; `update_stat(name, n)` adds `n` (a
//! constant name must be declared and a constant `n` may not be 0: both are
//! start-up errors; a name or number from a variable is read per message,
//! an undeclared name then fails with -1); `reset_stat(name)` sets it back
//! to 0 unless declared `no_reset`; `$stat(name)` reads it. Values are
//! shared by every core, as Kamailio's by every process, and appear in
//! `stats.get_statistics` as `script:name`. Only the statistics declared
//! here are reachable from the script (`$stat(rcv_requests)` and the other
//! built-in ones live in the control socket's metrics): those read as `$null`.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::script::ctx::MsgCtx;
use crate::script::registry::{
    Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, ParamValue, RouteMask,
};

/// One declared statistic.
#[derive(Debug)]
pub struct Stat {
    pub name: String,
    pub no_reset: bool,
    value: AtomicI64,
}

impl Stat {
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// The declared statistics, shared by every core (in declaration order, so
/// a fixup's index from [`declared`] is the index here).
#[derive(Debug, Default)]
pub struct Statistics {
    stats: Vec<Stat>,
}

/// The declared statistics as `(name, no_reset)`; the error names a bad flag.
pub fn declared(mp: &ModParams) -> Result<Vec<(String, bool)>, String> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for v in mp.all("statistics", "variable") {
        let text = match v {
            ParamValue::Str(s) => s.trim().to_string(),
            ParamValue::Int(i) => i.to_string(),
        };
        let (name, no_reset) = match text.split_once('/') {
            Some((n, flag)) if flag.eq_ignore_ascii_case("no_reset") => (n.to_string(), true),
            Some((_, flag)) => {
                return Err(format!("statistics: unsupported flag <{flag}> in <{text}>"))
            }
            None => (text, false),
        };
        if name.is_empty() {
            return Err("statistics: empty variable name".into());
        }
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, no_reset));
        }
    }
    Ok(out)
}

impl Statistics {
    pub fn from_modparams(mp: &ModParams) -> Result<Statistics, String> {
        Ok(Statistics {
            stats: declared(mp)?
                .into_iter()
                .map(|(name, no_reset)| Stat {
                    name,
                    no_reset,
                    value: AtomicI64::new(0),
                })
                .collect(),
        })
    }

    pub fn all(&self) -> &[Stat] {
        &self.stats
    }

    /// Index of the statistic `name` (`script:name` accepted).
    pub fn index(&self, name: &[u8]) -> Option<usize> {
        let name = name.strip_prefix(b"script:").unwrap_or(name);
        self.stats.iter().position(|s| s.name.as_bytes() == name)
    }

    pub fn value(&self, name: &[u8]) -> Option<i64> {
        self.index(name).map(|i| self.stats[i].get())
    }

    pub fn update(&self, i: usize, n: i64) -> bool {
        match self.stats.get(i) {
            Some(s) => {
                s.value.fetch_add(n, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Back to 0 unless declared `no_reset`; false for an unknown index.
    pub fn reset(&self, i: usize) -> bool {
        match self.stats.get(i) {
            Some(s) => {
                if !s.no_reset {
                    s.value.store(0, Ordering::Relaxed);
                }
                true
            }
            None => false,
        }
    }
}

/// The statistic a call names: fixed at start-up, or read per message.
enum Target {
    Fixed(usize),
    Dynamic,
}

fn target(args: &Args) -> Target {
    match args.custom::<usize>(2) {
        Some(i) => Target::Fixed(*i),
        None => Target::Dynamic,
    }
}

fn state<'c>(ctx: &'c MsgCtx<'_>) -> Option<&'c Statistics> {
    let s = ctx.env.services.get::<Statistics>();
    if s.is_none() {
        log::error!("statistics: module state missing");
    }
    s
}

/// The index of the statistic argument 0 names.
fn index_of(ctx: &MsgCtx<'_>, args: &Args, st: &Statistics) -> Option<usize> {
    match target(args) {
        Target::Fixed(i) => Some(i),
        Target::Dynamic => {
            let name = args.str(ctx, 0);
            let i = st.index(&name);
            if i.is_none() {
                log::error!(
                    "statistics: variable <{}> not defined",
                    String::from_utf8_lossy(&name)
                );
            }
            i
        }
    }
}

/// A number as Kamailio reads the update value: an optional sign and digits.
fn number(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.trim().parse().ok()
}

/// `update_stat(name, n)`: 1, -1 for an undeclared name or a bad number.
fn update_stat(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let n = match args.get(1) {
        Some(Arg::Int(n)) => Some(*n),
        _ => number(&args.str(ctx, 1)),
    };
    let Some(n) = n else {
        log::error!("update_stat: the value is not a number");
        return -1;
    };
    let Some(st) = state(ctx) else { return -1 };
    match index_of(ctx, args, st) {
        Some(i) if st.update(i, n) => 1,
        _ => -1,
    }
}

/// `reset_stat(name)`: 1, -1 for an undeclared name.
fn reset_stat(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(st) = state(ctx) else { return -1 };
    match index_of(ctx, args, st) {
        Some(i) if st.reset(i) => 1,
        _ => -1,
    }
}

/// Resolves a constant name to its index (argument 2); a variable name is
/// read per message. The index goes in slot 2 so argument 1 stays the value.
fn fixup_name(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    if let Some(Arg::Str(name)) = args.get(0) {
        let name = String::from_utf8_lossy(name).into_owned();
        let short = name.strip_prefix("script:").unwrap_or(&name);
        let i = declared(mp)?
            .iter()
            .position(|(n, _)| n == short)
            .ok_or_else(|| format!("variable <{name}> not defined"))?;
        while args.len() < 2 {
            args.0.push(Arg::Str(bytes::Bytes::new()));
        }
        args.0.push(Arg::Custom(Box::new(i)));
    }
    Ok(())
}

fn fixup_update(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    if let Some(Arg::Str(s)) = args.get(1) {
        match number(s) {
            Some(0) => return Err("update with 0 has no sense".into()),
            Some(n) => args.0[1] = Arg::Int(n),
            None => {
                return Err(format!(
                    "bad update number <{}>",
                    String::from_utf8_lossy(s)
                ))
            }
        }
    }
    if let Some(Arg::Int(0)) = args.get(1) {
        return Err("update with 0 has no sense".into());
    }
    fixup_name(args, mp)
}

const RESET_ROUTES: RouteMask = RouteMask::REQUEST
    .or(RouteMask::BRANCH)
    .or(RouteMask::FAILURE)
    .or(RouteMask::ONREPLY)
    .or(RouteMask::REPLY);

/// The statistics module.
pub static MODULE: ModuleDef = ModuleDef {
    name: "statistics",
    aliases: &[],
    functions: &[
        FunctionDef {
            name: "update_stat",
            min_args: 2,
            max_args: 2,
            routes: RouteMask::ANY,
            fixup: Some(fixup_update),
            call: update_stat,
        },
        FunctionDef {
            name: "reset_stat",
            min_args: 1,
            max_args: 1,
            routes: RESET_ROUTES,
            fixup: Some(fixup_name),
            call: reset_stat,
        },
    ],
    params: &[ParamDef {
        name: "variable",
        kind: ParamKind::Str,
    }],
    always: false,
};

#[cfg(test)]
mod tests;
