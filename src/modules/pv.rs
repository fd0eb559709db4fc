//! pv: the pseudo-variables themselves live in the script layer
//! (`script::pvread`, `script::pvwrite`); this module carries the parameters
//! that set start values: `shvset` (`$shv`, shared by all cores) and
//! `varset` (`$var`, per core). Both take `name=i:number` or `name=s:text`
//! and may be given many times; the compiler reads them.

use crate::script::registry::{ModuleDef, ParamDef, ParamKind};

pub static MODULE: ModuleDef = ModuleDef {
    name: "pv",
    aliases: &[],
    functions: &[],
    params: &[
        ParamDef {
            name: "shvset",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "varset",
            kind: ParamKind::Str,
        },
        ParamDef {
            name: "avp_aliases",
            kind: ParamKind::Str,
        },
    ],
    always: false,
};
