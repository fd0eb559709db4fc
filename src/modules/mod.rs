//! Kamailio-style modules, one folder or file each, registered in one table.

pub mod core;
