//! debugger: Kamailio's configuration debugger. ringsip accepts its
//! parameters so that configurations written for it (the stock
//! configuration's WITH_DEBUG) load, but has none of its effects: the VM has
//! no per-action hook to trace through (`cfgtrace`), and breakpoints,
//! per-module log levels and message dumps are not implemented. Start-up
//! says so, and `ringsip check --verbose` lists what is set.

use crate::script::registry::{param as p, ModParams, ModuleDef, ParamKind};

const PARAMS: &[&str] = &[
    "cfgtrace",
    "breakpoint",
    "log_level",
    "log_level_name",
    "log_facility",
    "log_prefix",
    "log_assign",
    "step_usleep",
    "step_loops",
    "mod_hash_size",
    "mod_level_mode",
    "mod_level",
    "mod_facility_mode",
    "mod_facility",
    "reset_msgid",
    "cfgpkgcheck",
    "link_vm",
    "cfgtest",
];

/// What is set and ignored, for a start-up warning and `ringsip check --verbose`.
pub fn unsupported_params(mp: &ModParams) -> Vec<String> {
    let mut out = vec!["debugger module (loaded; it has no effect in ringsip)".to_string()];
    out.extend(mp.set_among("debugger", PARAMS));
    out
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "debugger",
    aliases: &[],
    functions: &[],
    params: &[
        p("cfgtrace", ParamKind::Int),
        p("breakpoint", ParamKind::Int),
        p("log_level", ParamKind::Int),
        p("log_level_name", ParamKind::Str),
        p("log_facility", ParamKind::Str),
        p("log_prefix", ParamKind::Str),
        p("log_assign", ParamKind::Int),
        p("step_usleep", ParamKind::Int),
        p("step_loops", ParamKind::Int),
        p("mod_hash_size", ParamKind::Int),
        p("mod_level_mode", ParamKind::Int),
        p("mod_level", ParamKind::Str),
        p("mod_facility_mode", ParamKind::Int),
        p("mod_facility", ParamKind::Str),
        p("reset_msgid", ParamKind::Int),
        p("cfgpkgcheck", ParamKind::Int),
        p("link_vm", ParamKind::Int),
        p("cfgtest", ParamKind::Int),
    ],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::registry::ParamValue;

    #[test]
    fn set_params_are_listed() {
        let mut mp = ModParams::default();
        mp.push("debugger", "cfgtrace", ParamValue::Int(1));
        let l = unsupported_params(&mp);
        assert_eq!(l.len(), 2);
        assert_eq!(l[1], "debugger cfgtrace");
        assert!(PARAMS.iter().all(|n| MODULE.param(n).is_some()));
    }
}
