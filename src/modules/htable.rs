//! htable: hash tables shared by every core, read and written from the
//! script as `$sht(table=>key)`. A table is declared with
//! `modparam("htable", "htable", "name=>size=8;autoexpire=300;")`; the
//! compiler reads the definitions (`script::shared::HtableDef`) and the
//! tables live in `script::shared::SharedState`, reached through `Env`.
//! Module functions (`sht_rm`, `sht_print`, …) go in this file too.

use crate::script::registry::{ModuleDef, ParamDef, ParamKind};

pub static MODULE: ModuleDef = ModuleDef {
    name: "htable",
    aliases: &[],
    functions: &[],
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
