//! dialplan: number translation with rules from the database (Kamailio's
//! `dialplan` module; the rules and their order are in [`rules`]).
//!
//! The `dialplan` table (`dpid, pr, match_op, match_exp, match_len,
//! subst_exp, repl_exp, attrs`, names set by the `*_col` parameters) is
//! loaded at start-up, all of it or nothing (a rule that does not compile
//! stops the start), and swapped whole by `dialplan.reload`.
//!
//! Functions and their codes, as Kamailio 5.6:
//! - `dp_translate(id[, "src/dest"])`: translates the string of variable
//!   `src` (default `$rU`) and writes the output to `dest` (default `$rU`;
//!   `"src"` alone writes nothing). 1 done; -2 no rules with this id; -1 no
//!   rule matched, the output could not be built, or the input is empty.
//!   An empty output (empty `repl_exp`) leaves `dest` alone.
//! - `dp_replace(id, input, dest)`: the same with any string in and a
//!   variable out; `dp_match(id, input)`: only matches (and sets the
//!   attributes).
//! - `attrs_pvar` (an `$avp`, `$xavp` or `$var`) gets the matching rule's
//!   `attrs` each time one matches.
//!
//! - `append_branch` (default 1): an output written to `$ru`/`$rU` in a
//!   `failure_route` is also appended as a branch.
//!
//! Not done: `$avp(x)[*]` in dynamic expressions (one expression per value).

pub mod dynamic;
pub mod repl;
pub mod rpc;
pub mod rules;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::script::ctx::MsgCtx;
use crate::script::format::Format as AstFormat;
use crate::script::ir::FormatPart;
use crate::script::pvkind::{PvKind, PvRef};
use crate::script::registry::{
    func, param, Arg, Args, ModParams, ModuleDef, ParamKind, RouteMask, RouteType,
};
use crate::script::value::Value;
use crate::store::{DialplanColumns, DialplanRow, StoreHandle};

use rules::{Rules, Subject};

/// The dialplan rules, shared by every core.
#[derive(Debug)]
pub struct Dialplan {
    store: Option<StoreHandle>,
    table: String,
    cols: DialplanColumns,
    match_dynamic: bool,
    /// `reload_delta`: seconds during which a new `dialplan.reload` is refused.
    pub reload_delta: u64,
    /// `append_branch`: a translation written to `$ru`/`$rU` in a
    /// `failure_route` is appended as a branch (the R-URI moves into the
    /// destination set, as corex `append_branch()` does).
    pub append_branch: bool,
    /// When the last `dialplan.reload` started (Unix seconds).
    pub(crate) last_reload: Mutex<Option<u64>>,
    rules: RwLock<Arc<Rules>>,
}

/// `attrs_pvar` must name an `$avp`, `$xavp` or `$var`.
fn check_attrs_pvar(mp: &ModParams) -> Result<(), String> {
    let Some(text) = mp.str("dialplan", "attrs_pvar").filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    match crate::script::parse_pv(text, Default::default()) {
        Ok(pv) if matches!(pv.name.as_str(), "avp" | "xavp" | "var") => Ok(()),
        _ => Err(format!(
            "dialplan: attrs_pvar {text:?} must be an $avp, $xavp or $var"
        )),
    }
}

impl Dialplan {
    /// From rows already read (tests).
    pub fn from_rows(rows: &[DialplanRow], match_dynamic: bool) -> Result<Dialplan, String> {
        let d = Dialplan {
            store: None,
            table: "dialplan".into(),
            cols: DialplanColumns::default(),
            match_dynamic,
            reload_delta: 5,
            append_branch: true,
            last_reload: Mutex::new(None),
            rules: RwLock::new(Arc::new(Rules::build(rows, match_dynamic)?)),
        };
        Ok(d)
    }

    /// Loads the table from the database behind `store`.
    pub fn from_modparams(mp: &ModParams, store: StoreHandle) -> Result<Dialplan, String> {
        check_attrs_pvar(mp)?;
        let s = |p: &str, d: &str| mp.str("dialplan", p).unwrap_or(d).to_string();
        let d = DialplanColumns::default();
        let d = Dialplan {
            store: Some(store),
            table: s("table_name", "dialplan"),
            cols: DialplanColumns {
                dpid: s("dpid_col", &d.dpid),
                pr: s("pr_col", &d.pr),
                match_op: s("match_op_col", &d.match_op),
                match_exp: s("match_exp_col", &d.match_exp),
                match_len: s("match_len_col", &d.match_len),
                subst_exp: s("subst_exp_col", &d.subst_exp),
                repl_exp: s("repl_exp_col", &d.repl_exp),
                attrs: s("attrs_col", &d.attrs),
            },
            match_dynamic: mp.int("dialplan", "match_dynamic") == Some(1),
            reload_delta: mp
                .int("dialplan", "reload_delta")
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(5),
            append_branch: mp.int("dialplan", "append_branch") != Some(0),
            last_reload: Mutex::new(None),
            rules: RwLock::new(Arc::new(Rules::default())),
        };
        d.reload()?;
        Ok(d)
    }

    /// Reads the table again and swaps the rules in (a table with a bad
    /// rule leaves the old rules); how many rules there are.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(store) = &self.store else {
            return Ok(self.rules().len());
        };
        let (table, cols) = (self.table.clone(), self.cols.clone());
        let rows = store
            .call(move |s| s.dialplan(&table, &cols), Duration::from_secs(10))
            .ok_or("dialplan: the store thread did not answer")?
            .map_err(|e| format!("dialplan: loading {}: {e}", self.table))?;
        let rules = Rules::build(&rows, self.match_dynamic)
            .map_err(|e| format!("dialplan: table {}: {e}", self.table))?;
        let n = rules.len();
        if n == 0 {
            log::warn!("dialplan: no data in table {}", self.table);
        }
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        log::info!("dialplan: {n} rules loaded");
        Ok(n)
    }

    /// The rules now in force.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A message as a translation sees it.
struct MsgSubject<'c, 'e>(&'c MsgCtx<'e>);

impl Subject for MsgSubject<'_, '_> {
    fn print(&self, f: &AstFormat) -> Option<Vec<u8>> {
        match dynamic::resolve(f, self.0.program) {
            Ok(f) => Some(self.0.format(&f)),
            Err(e) => {
                log::error!("dialplan: {e}");
                None
            }
        }
    }

    fn ruri(&self) -> Option<Vec<u8>> {
        self.0.msg.request_uri().map(|_| self.0.ruri().to_vec())
    }
}

fn service<'e>(ctx: &MsgCtx<'e>) -> Option<&'e Dialplan> {
    let d = ctx.env.services.get::<Dialplan>();
    if d.is_none() {
        log::error!("dialplan: no rules (db_url is not set)");
    }
    d
}

/// The `$…` of a format of one variable.
fn single_pv(f: &crate::script::ir::Format) -> Option<&PvRef> {
    match f.parts.as_slice() {
        [FormatPart::Pv(p)] => Some(p),
        _ => None,
    }
}

/// Translates `input` with dialplan `dpid`; writes the output to `dest`
/// (when given and not empty) and the attributes to `attrs_pvar`.
fn translate(
    ctx: &mut MsgCtx<'_>,
    dpid: i64,
    input: &[u8],
    dest: Option<&PvRef>,
    want: bool,
) -> i32 {
    let Some(d) = service(ctx) else { return -1 };
    let rules = d.rules();
    let Some(set) = rules.set(dpid) else {
        log::debug!("dialplan: no information available for dpid {dpid}");
        return -2;
    };
    let Some(t) = set.translate(input, want, &MsgSubject(ctx)) else {
        return -1;
    };
    if let (Some(dest), Some(out)) = (dest, t.output.filter(|o| !o.is_empty())) {
        if let Err(e) = ctx.write_pv(dest, Value::owned(out)) {
            log::error!("dialplan: setting the destination failed: {e}");
            return -1;
        }
        if d.append_branch
            && ctx.route_type == RouteType::Failure
            && matches!(dest.kind, PvKind::Ru | PvKind::RUser)
            && append_branch(ctx) != 1
        {
            log::error!("dialplan: append branch action failed");
            return -1;
        }
    }
    if let Some(pv) = ctx
        .program
        .param_format("dialplan", "attrs_pvar")
        .and_then(single_pv)
    {
        if let Err(e) = ctx.write_pv(pv, Value::owned(t.attrs.into_bytes())) {
            log::error!("dialplan: setting attrs_pvar failed: {e}");
            return -1;
        }
    }
    1
}

/// The Request-URI into the destination set as Kamailio's dialplan appends
/// it: without the message's `$du`, branch flags or forced socket (which
/// the R-URI then loses too), through corex `append_branch()`.
fn append_branch(ctx: &mut MsgCtx<'_>) -> i32 {
    ctx.dst_uri = None;
    ctx.state.bflags = 0;
    ctx.force_socket = None;
    match crate::modules::corex::MODULE.function("append_branch") {
        Some(f) => (f.call)(ctx, &Args::default()),
        None => -1,
    }
}

/// The source and destination of `dp_translate`.
struct SrcDest {
    src: PvRef,
    dest: Option<PvRef>,
}

fn is_var(p: &PvRef) -> bool {
    matches!(
        p.kind,
        PvKind::Avp(_) | PvKind::AvpDyn(_) | PvKind::Xavp(_) | PvKind::Var(_)
    )
}

/// Fixup of `dp_translate`: the id is a number or an `$avp`/`$xavp`/`$var`;
/// the second argument `"$src/$dest"` or `"$src"`, `dest` being `$ru`,
/// `$rU` or an `$avp`/`$xavp`/`$var`.
fn fixup_translate(args: &mut Args, _: &ModParams) -> Result<(), String> {
    match args.0.first() {
        Some(Arg::Str(s)) => {
            let n = std::str::from_utf8(s)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    format!("dp_translate: bad number {:?}", String::from_utf8_lossy(s))
                })?;
            args.0[0] = Arg::Int(n);
        }
        Some(Arg::Fmt(f)) => {
            let p = single_pv(f)
                .filter(|p| is_var(p))
                .ok_or("dp_translate: the id must be a number or an $avp, $xavp or $var")?
                .clone();
            args.0[0] = Arg::Pv(p);
        }
        Some(Arg::Pv(p)) if is_var(p) => {}
        Some(Arg::Int(_)) => {}
        _ => return Err("dp_translate: the id must be a number or an $avp, $xavp or $var".into()),
    }
    let sd = match args.0.get(1) {
        None => SrcDest {
            src: PvRef::new(PvKind::RUser),
            dest: Some(PvRef::new(PvKind::RUser)),
        },
        Some(Arg::Pv(p)) => SrcDest {
            src: p.clone(),
            dest: None,
        },
        Some(Arg::Fmt(f)) => {
            let bad = || {
                "dp_translate: the second argument must be \"$src/$dest\" or \"$src\"".to_string()
            };
            match f.parts.as_slice() {
                [FormatPart::Pv(src)] => SrcDest {
                    src: src.clone(),
                    dest: None,
                },
                [FormatPart::Pv(src), FormatPart::Lit(slash), FormatPart::Pv(dest)]
                    if slash.as_ref() == b"/" =>
                {
                    let ok = is_var(dest) || matches!(dest.kind, PvKind::Ru | PvKind::RUser);
                    if !ok || !dest.is_writable() {
                        return Err(format!(
                            "dp_translate: the destination must be $ru, $rU or an $avp, $xavp or $var ({})",
                            f.parts.len()
                        ));
                    }
                    SrcDest {
                        src: src.clone(),
                        dest: Some(dest.clone()),
                    }
                }
                _ => return Err(bad()),
            }
        }
        Some(_) => {
            return Err(
                "dp_translate: the second argument must be \"$src/$dest\" or \"$src\"".into(),
            )
        }
    };
    args.0.truncate(1);
    args.0.push(Arg::Custom(Box::new(sd)));
    Ok(())
}

/// The string of variable `src`, as Kamailio reads the input: none when
/// unset or empty.
fn read_input(ctx: &MsgCtx<'_>, src: &PvRef) -> Option<Vec<u8>> {
    match ctx.read_pv(src) {
        Value::Null => None,
        v => Some(v.to_bytes().into_owned()).filter(|b| !b.is_empty()),
    }
}

/// `dp_translate(id[, "src/dest"])`.
fn dp_translate(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let dpid = match args.get(0) {
        Some(Arg::Int(n)) => *n,
        Some(Arg::Pv(p)) => match ctx.read_pv(p) {
            Value::Int(n) => n,
            _ => {
                log::error!("dialplan: the dpid variable holds no number");
                return -1;
            }
        },
        _ => return -1,
    };
    let Some(sd) = args.custom::<SrcDest>(1) else {
        return -1;
    };
    let Some(d) = service(ctx) else { return -1 };
    if d.rules().set(dpid).is_none() {
        return -2;
    }
    let Some(input) = read_input(ctx, &sd.src) else {
        log::error!("dialplan: dp_translate: no input value");
        return -1;
    };
    translate(ctx, dpid, &input, sd.dest.as_ref(), true)
}

/// Fixup of `dp_replace`: the destination must be a variable.
fn fixup_replace(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(Arg::Fmt(f)) = args.get(2) {
        if let Some(p) = single_pv(f).cloned() {
            args.0[2] = Arg::Pv(p);
        }
    }
    match args.get(2) {
        Some(Arg::Pv(_)) => Ok(()),
        _ => Err("dp_replace: the destination must be a variable".into()),
    }
}

fn dpid_arg(ctx: &MsgCtx<'_>, args: &Args) -> Option<i64> {
    let id = args.int(ctx, 0);
    if id.is_none() {
        log::error!("dialplan: failed to get the dialplan id value");
    }
    id
}

/// `dp_replace(id, input, dest)`.
fn dp_replace(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(dpid) = dpid_arg(ctx, args) else {
        return -1;
    };
    let input = args.str(ctx, 1).into_owned();
    let dest = match args.get(2) {
        Some(Arg::Pv(p)) => p,
        _ => return -1,
    };
    if !dest.is_writable() {
        log::warn!("dialplan: target variable is read only - skipping setting its value");
    }
    let dest = dest.is_writable().then_some(dest);
    translate(ctx, dpid, &input, dest, true)
}

/// `dp_match(id, input)`.
fn dp_match(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(dpid) = dpid_arg(ctx, args) else {
        return -1;
    };
    let input = args.str(ctx, 1).into_owned();
    translate(ctx, dpid, &input, None, false)
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "dialplan",
    aliases: &[],
    functions: &[
        func(
            "dp_translate",
            1,
            2,
            RouteMask::ANY,
            Some(fixup_translate),
            dp_translate,
        ),
        func(
            "dp_replace",
            3,
            3,
            RouteMask::ANY,
            Some(fixup_replace),
            dp_replace,
        ),
        func("dp_match", 2, 2, RouteMask::ANY, None, dp_match),
    ],
    params: &[
        param("db_url", ParamKind::Str),
        param("table_name", ParamKind::Str),
        param("dpid_col", ParamKind::Str),
        param("pr_col", ParamKind::Str),
        param("match_op_col", ParamKind::Str),
        param("match_exp_col", ParamKind::Str),
        param("match_len_col", ParamKind::Str),
        param("subst_exp_col", ParamKind::Str),
        param("repl_exp_col", ParamKind::Str),
        param("attrs_col", ParamKind::Str),
        param("attrs_pvar", ParamKind::Pv),
        param("fetch_rows", ParamKind::Int),
        param("match_dynamic", ParamKind::Int),
        param("append_branch", ParamKind::Int),
        param("reload_delta", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests;
