//! counters: script counters declared with
//! `modparam("counters", "script_counter", "name description")` and changed by
//! `cnt_inc`, `cnt_dec`, `cnt_add` and `cnt_reset`. Kamailio puts them in the
//! `script` group, so `"name"` and `"script.name"` are the same counter.
//!
//! Each core keeps its own values ([`Counters`] in `CoreState`), no lock on the
//! hot path; `ctl` adds the cores' values up, with [`declared`] for the names.

use crate::script::ctx::MsgCtx;
use crate::script::registry::{
    fixup_int, Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};

/// One core's counter values, indexed like [`declared`].
#[derive(Debug, Default, Clone)]
pub struct Counters {
    values: Vec<i64>,
}

impl Counters {
    /// The value of counter `id` on this core.
    pub fn get(&self, id: usize) -> i64 {
        self.values.get(id).copied().unwrap_or(0)
    }

    /// Every value on this core (shorter than the declared list when the last ones were never touched).
    pub fn values(&self) -> &[i64] {
        &self.values
    }

    fn slot(&mut self, id: usize) -> &mut i64 {
        if self.values.len() <= id {
            self.values.resize(id + 1, 0);
        }
        &mut self.values[id]
    }

    pub fn add(&mut self, id: usize, n: i64) {
        let v = self.slot(id);
        *v = v.wrapping_add(n);
    }

    pub fn reset(&mut self, id: usize) {
        *self.slot(id) = 0;
    }
}

/// The declared counters in declaration order: `(name, description)`.
pub fn declared(params: &ModParams) -> Vec<(String, String)> {
    params
        .all("counters", "script_counter")
        .iter()
        .filter_map(|v| match v {
            crate::script::registry::ParamValue::Str(s) => {
                let s = s.trim();
                let (name, desc) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
                Some((name.to_string(), desc.trim().to_string()))
            }
            crate::script::registry::ParamValue::Int(_) => None,
        })
        .collect()
}

/// Resolves the counter name (argument 0) to its index once.
fn fixup_name(args: &mut Args, params: &ModParams) -> Result<(), String> {
    let name = match args.get(0) {
        Some(Arg::Str(s)) => String::from_utf8_lossy(s).into_owned(),
        _ => return Err("the counter name must be a constant".into()),
    };
    let short = name.strip_prefix("script.").unwrap_or(&name);
    let id = declared(params)
        .iter()
        .position(|(n, _)| n == short)
        .ok_or_else(|| format!("counter \"{name}\" is not declared (modparam script_counter)"))?;
    args.0[0] = Arg::Custom(Box::new(id));
    if args.len() > 1 {
        fixup_int(args, 1)?;
    }
    Ok(())
}

fn id(args: &Args) -> Option<usize> {
    args.custom::<usize>(0).copied()
}

/// `cnt_inc(name)`: 1.
fn cnt_inc(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(id) = id(args) else { return -1 };
    ctx.core.counters.add(id, 1);
    1
}

/// `cnt_dec(name)`: 1.
fn cnt_dec(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(id) = id(args) else { return -1 };
    ctx.core.counters.add(id, -1);
    1
}

/// `cnt_add(name, n)`: 1; -1 when `n` is not a number.
fn cnt_add(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (Some(id), Some(n)) = (id(args), args.int(ctx, 1)) else {
        return -1;
    };
    ctx.core.counters.add(id, n);
    1
}

/// `cnt_reset(name)`: 1. Only this core's share is cleared; `ctl` resets all cores.
fn cnt_reset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(id) = id(args) else { return -1 };
    ctx.core.counters.reset(id);
    1
}

const fn f(name: &'static str, max: u8, call: crate::script::registry::Handler) -> FunctionDef {
    FunctionDef {
        name,
        min_args: max,
        max_args: max,
        routes: RouteMask::ANY,
        fixup: Some(fixup_name),
        call,
    }
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "counters",
    aliases: &[],
    functions: &[
        f("cnt_inc", 1, cnt_inc),
        f("cnt_dec", 1, cnt_dec),
        f("cnt_add", 2, cnt_add),
        f("cnt_reset", 1, cnt_reset),
    ],
    params: &[ParamDef {
        name: "script_counter",
        kind: ParamKind::Str,
    }],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{call, Harness};
    use crate::script::registry::ParamValue;

    fn params() -> ModParams {
        let mut p = ModParams::default();
        p.push(
            "counters",
            "script_counter",
            ParamValue::Str("foo Foo calls".into()),
        );
        p.push("counters", "script_counter", ParamValue::Str("bar".into()));
        p
    }

    #[test]
    fn declared_names_and_descriptions() {
        assert_eq!(
            declared(&params()),
            vec![
                ("foo".to_string(), "Foo calls".to_string()),
                ("bar".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn inc_dec_add_reset_per_core() {
        let p = params();
        let mut h = Harness::new(crate::modules::testutil::INVITE);
        let mut ctx = h.ctx();
        assert_eq!(call(&mut ctx, &MODULE, "cnt_inc", &["bar"], &p), 1);
        assert_eq!(call(&mut ctx, &MODULE, "cnt_inc", &["script.bar"], &p), 1);
        assert_eq!(call(&mut ctx, &MODULE, "cnt_add", &["foo", "5"], &p), 1);
        assert_eq!(call(&mut ctx, &MODULE, "cnt_dec", &["foo"], &p), 1);
        assert_eq!(ctx.core.counters.get(0), 4);
        assert_eq!(ctx.core.counters.get(1), 2);
        assert_eq!(call(&mut ctx, &MODULE, "cnt_reset", &["bar"], &p), 1);
        assert_eq!(ctx.core.counters.get(1), 0);
    }

    #[test]
    fn undeclared_counter_fails_at_fixup() {
        let mut args = Args(vec![Arg::Str("nope".into())]);
        assert!(fixup_name(&mut args, &params()).is_err());
    }
}
