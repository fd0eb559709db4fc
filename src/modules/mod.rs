//! Kamailio-style modules, one folder or file each, registered in one table
//! ([`MODULES`]). `loadmodule "x.so"` maps a Kamailio module name onto one of
//! these; a function is callable once its module is loaded, as in Kamailio.

use crate::script::registry::ModuleDef;

pub mod auth;
pub mod core;
pub mod maxfwd;
pub mod permissions;
pub mod registrar;
pub mod sl;
pub mod textops;
pub mod usrloc;
pub mod xlog;

/// Every built-in module.
pub static MODULES: &[&ModuleDef] = &[
    &core::MODULE,
    &sl::MODULE,
    &maxfwd::MODULE,
    &xlog::MODULE,
    &textops::MODULE,
    &usrloc::MODULE,
    &registrar::MODULE,
    &auth::MODULE,
    &auth::db::MODULE,
    &auth::db::URI_DB,
    &permissions::MODULE,
];

/// The module that `loadmodule NAME` loads.
pub fn find(name: &str) -> Option<&'static ModuleDef> {
    MODULES.iter().copied().find(|m| m.answers_to(name))
}
