//! The core: the per-core message pipeline (parse, route, act) and the core
//! functions of the configuration language (`forward`, flags, URI rewriting).
