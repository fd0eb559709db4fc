//! regex: Perl-compatible matching (Kamailio's `regex` module).
//!
//! `pcre_match(string, re)` compiles `re` (once, when it is a constant) and
//! searches `string`: 1 on a match, -1 on none, -4 when `re` does not
//! compile. `pcre_match_group(string[, group])` matches against group
//! `group` (default 0) of the expressions read from `file`: -2 without a
//! file, -4 for a group that does not exist.
//!
//! The file: lines starting with `#` or white space are skipped; a line
//! starting with `[` opens the next group (the first line that counts must
//! open one); every other line is one expression of the current group. A
//! group matches when any of its expressions does (they are joined as
//! `((e1)|(e2)…)`); a group with no expression never matches anything but
//! the empty string (`^$`). The `pcre_*` options apply to the groups, and to
//! `pcre_match` only when `file` is set, as in Kamailio 5.6. `regex.reload`
//! (the control socket) reads the file again and swaps the groups in; a file
//! that fails to load leaves the old groups.

pub mod pcre;

use std::sync::{Arc, RwLock};

use crate::script::ctx::MsgCtx;
use crate::script::registry::{func, param, Arg, Args, ModParams, ModuleDef, ParamKind, RouteMask};

pub use pcre::{Pcre, PcreOptions};

/// Kamailio's defaults for `max_groups` and `group_max_size`.
const MAX_GROUPS: usize = 20;
const GROUP_MAX_SIZE: usize = 8192;

/// The `pcre_*` options, which Kamailio only reads when `file` is set.
pub fn options(mp: &ModParams) -> PcreOptions {
    if mp.str("regex", "file").is_none() {
        return PcreOptions::default();
    }
    let on = |p: &str| mp.int("regex", p).is_some_and(|v| v != 0);
    PcreOptions {
        caseless: on("pcre_caseless"),
        multiline: on("pcre_multiline"),
        dotall: on("pcre_dotall"),
        extended: on("pcre_extended"),
    }
}

/// The expression groups of `file`, shared by every core.
#[derive(Debug)]
pub struct PcreGroups {
    /// The file, read again by `regex.reload`.
    pub file: String,
    opts: PcreOptions,
    max_groups: usize,
    group_max_size: usize,
    groups: RwLock<Arc<Vec<Pcre>>>,
}

impl PcreGroups {
    /// The groups of `text` (the content of `file`) with the module's settings.
    pub fn new(mp: &ModParams, file: &str, text: &[u8]) -> Result<PcreGroups, String> {
        let size = |p: &str, d: usize| {
            mp.int("regex", p)
                .and_then(|v| usize::try_from(v).ok())
                .unwrap_or(d)
        };
        let g = PcreGroups {
            file: file.to_string(),
            opts: options(mp),
            max_groups: size("max_groups", MAX_GROUPS),
            group_max_size: size("group_max_size", GROUP_MAX_SIZE),
            groups: RwLock::new(Arc::new(Vec::new())),
        };
        g.reload(text)?;
        Ok(g)
    }

    /// Compiles the groups of `text` and swaps them in; how many there are.
    pub fn reload(&self, text: &[u8]) -> Result<usize, String> {
        let patterns = group_patterns(text, self.max_groups, self.group_max_size)
            .map_err(|e| format!("regex: {}: {e}", self.file))?;
        let compiled = patterns
            .iter()
            .map(|p| Pcre::compile(p, self.opts))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("regex: {}: {e}", self.file))?;
        let n = compiled.len();
        *self.groups.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(compiled);
        log::info!("regex: {n} groups loaded from {}", self.file);
        Ok(n)
    }

    /// The groups now in force (shared, not copied: a copied expression
    /// would start a pool of match buffers of its own).
    pub fn groups(&self) -> Arc<Vec<Pcre>> {
        self.groups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn len(&self) -> usize {
        self.groups.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The pattern of each group of a `file` (see the module documentation).
pub fn group_patterns(
    text: &[u8],
    max_groups: usize,
    group_max_size: usize,
) -> Result<Vec<String>, String> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    for (n, line) in text.split_inclusive(|&b| b == b'\n').enumerate() {
        let first = line[0];
        if first.is_ascii_whitespace() || first == b'#' || first == 0x0b {
            continue;
        }
        if first == b'[' {
            if groups.len() >= max_groups {
                return Err(format!("line {}: more than {max_groups} groups", n + 1));
            }
            groups.push(Vec::new());
            sizes.push(1);
            continue;
        }
        let (Some(group), Some(size)) = (groups.last_mut(), sizes.last_mut()) else {
            return Err(format!(
                "line {}: the first group must be opened with [0] before any expression",
                n + 1
            ));
        };
        if *size + line.len() + 2 >= group_max_size {
            return Err(format!(
                "line {}: group larger than {group_max_size} bytes",
                n + 1
            ));
        }
        let expr = line.strip_suffix(b"\n").unwrap_or(line);
        *size += expr.len() + 3;
        group.push(String::from_utf8_lossy(expr).into_owned());
    }
    if groups.is_empty() {
        return Err("no expressions in the file".into());
    }
    Ok(groups
        .into_iter()
        .map(|exprs| {
            if exprs.is_empty() {
                "^$".to_string()
            } else {
                let alts: Vec<String> = exprs.iter().map(|e| format!("({e})")).collect();
                format!("({})", alts.join("|"))
            }
        })
        .collect())
}

/// Fixup of `pcre_match`: a constant expression is compiled once (one that
/// does not compile is left as text, to answer -4 per call as Kamailio does).
fn fixup_match(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    if let Some(Arg::Str(s)) = args.get(1) {
        if let Ok(re) = Pcre::compile(&String::from_utf8_lossy(s), options(mp)) {
            args.0[1] = Arg::Custom(Box::new(CompiledRe(re)));
        }
    }
    Ok(())
}

/// A `pcre_match` expression compiled at start-up.
struct CompiledRe(Pcre);

/// The options of a `pcre_match` compiled per call: those of the loaded
/// groups (the module has a file), else none.
fn call_options(ctx: &MsgCtx<'_>) -> PcreOptions {
    ctx.env
        .services
        .get::<PcreGroups>()
        .map_or_else(PcreOptions::default, |g| g.opts)
}

/// `pcre_match(string, re)`.
fn pcre_match(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let subject = args.str(ctx, 0);
    let matched = match args.custom::<CompiledRe>(1) {
        Some(re) => re.0.is_match(&subject),
        None => {
            let pattern = args.str(ctx, 1);
            match Pcre::compile(&String::from_utf8_lossy(&pattern), call_options(ctx)) {
                Ok(re) => re.is_match(&subject),
                Err(e) => {
                    log::error!("regex: {e}");
                    return -4;
                }
            }
        }
    };
    if matched {
        1
    } else {
        -1
    }
}

/// The group number as Kamailio reads it: the leading digits (none: 0).
fn group_number(text: &[u8]) -> u64 {
    text.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
}

/// `pcre_match_group(string[, group])`.
fn pcre_match_group(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(groups) = ctx.env.services.get::<PcreGroups>() else {
        log::error!("regex: group matching is disabled (no file)");
        return -2;
    };
    let n = if args.len() > 1 {
        group_number(&args.str(ctx, 1))
    } else {
        0
    };
    let all = groups.groups();
    let Some(re) = usize::try_from(n).ok().and_then(|n| all.get(n)) else {
        log::error!(
            "regex: invalid group {n}, there are {} groups",
            groups.len()
        );
        return -4;
    };
    if re.is_match(&args.str(ctx, 0)) {
        1
    } else {
        -1
    }
}

const ROUTES: RouteMask = RouteMask::REQUEST
    .or(RouteMask::FAILURE)
    .or(RouteMask::ONREPLY)
    .or(RouteMask::REPLY)
    .or(RouteMask::BRANCH);

pub static MODULE: ModuleDef = ModuleDef {
    name: "regex",
    aliases: &[],
    functions: &[
        func("pcre_match", 2, 2, ROUTES, Some(fixup_match), pcre_match),
        func("pcre_match_group", 1, 2, ROUTES, None, pcre_match_group),
    ],
    params: &[
        param("file", ParamKind::Str),
        param("max_groups", ParamKind::Int),
        param("group_max_size", ParamKind::Int),
        param("pcre_caseless", ParamKind::Int),
        param("pcre_multiline", ParamKind::Int),
        param("pcre_dotall", ParamKind::Int),
        param("pcre_extended", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests;
