//! corex: core extensions of Kamailio (branches, raw sends, message flags,
//! files, the network intercept parameters). The functions live in the
//! files beside this one; this file is the module's one table.

use crate::script::registry::{FunctionDef, ModuleDef, ParamDef, ParamKind, RouteMask};

mod branch;

/// The corex module as `loadmodule "corex.so"` loads it.
pub static MODULE: ModuleDef = ModuleDef {
    name: "corex",
    aliases: &[],
    functions: &[FunctionDef {
        name: "append_branch",
        min_args: 0,
        max_args: 2,
        routes: RouteMask::REQUEST.or(RouteMask::FAILURE),
        fixup: None,
        call: branch::append_branch,
    }],
    params: &[ParamDef {
        name: "alias_subdomains",
        kind: ParamKind::Str,
    }],
    always: false,
};
