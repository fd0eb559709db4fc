//! corex: core extensions of Kamailio (branches, raw sends, message flags,
//! files, the network intercept parameters). The functions live in the
//! files beside this one; this file is the module's one table.

use crate::script::registry::{ModuleDef, ParamDef, ParamKind};

/// The corex module as `loadmodule "corex.so"` loads it.
pub static MODULE: ModuleDef = ModuleDef {
    name: "corex",
    aliases: &[],
    functions: &[],
    params: &[ParamDef {
        name: "alias_subdomains",
        kind: ParamKind::Str,
    }],
    always: false,
};
