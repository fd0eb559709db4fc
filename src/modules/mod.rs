//! Kamailio-style modules, one folder or file each, registered in one table
//! ([`MODULES`]). `loadmodule "x.so"` maps a Kamailio module name onto one of
//! these; a function is callable once its module is loaded, as in Kamailio.

use crate::script::registry::ModuleDef;

pub mod acc;
pub mod alias_db;
pub mod r#async;
pub mod auth;
pub mod avpops;
pub mod cfgutils;
pub mod core;
pub mod corex;
pub mod counters;
pub mod ctl;
pub mod db;
pub mod debugger;
pub mod dialog;
pub mod dialplan;
pub mod dispatcher;
pub mod domain;
pub mod drouting;
pub mod exec;
pub mod htable;
pub mod http_client;
pub mod ipops;
pub mod jansson;
pub mod jsonrpcs;
pub mod kex;
pub mod log_custom;
pub mod maxfwd;
pub mod mqueue;
pub mod nathelper;
pub mod path;
pub mod permissions;
pub mod pike;
pub mod pipelimit;
pub mod presence;
pub mod pv;
pub mod random;
pub mod regex;
pub mod registrar;
pub mod rr;
pub mod rtimer;
pub mod rtpengine;
pub mod rtpproxy;
pub mod sanity;
pub mod sdpops;
pub mod siptrace;
pub mod siputils;
pub mod sl;
pub mod speeddial;
pub mod sqlops;
pub mod state;
pub mod statistics;
pub mod statsd;
pub mod textops;
pub mod timerec;
pub mod tls;
pub mod tm;
pub mod tmrec;
pub mod topoh;
pub mod topos;
pub mod uac;
pub mod usrloc;
pub mod websocket;
pub mod xhttp;
pub mod xlog;

#[cfg(test)]
mod robustness;
#[cfg(test)]
mod script_tests;
#[cfg(test)]
pub mod stockdb_fixture;
#[cfg(test)]
pub mod testutil;

/// Every built-in module.
pub static MODULES: &[&ModuleDef] = &[
    &core::MODULE,
    &sl::MODULE,
    &maxfwd::MODULE,
    &xlog::MODULE,
    &textops::MODULE,
    &tm::MODULE,
    &rr::MODULE,
    &textops::MODULE_X,
    &kex::MODULE,
    &siputils::MODULE,
    &sanity::MODULE,
    &counters::MODULE,
    &pv::MODULE,
    &htable::MODULE,
    &usrloc::MODULE,
    &registrar::MODULE,
    &auth::MODULE,
    &auth::db::MODULE,
    &auth::db::URI_DB,
    &permissions::MODULE,
    &corex::MODULE,
    &tls::MODULE,
    &dispatcher::MODULE,
    &pike::MODULE,
    &nathelper::MODULE,
    &acc::MODULE,
    &db::MODULE,
    &ctl::MODULE_CTL,
    &ctl::MODULE_JSONRPCS,
    &ctl::MODULE_CFG_RPC,
    &rtpproxy::MODULE,
    &rtpengine::MODULE,
    &debugger::MODULE,
    &path::MODULE,
    &ipops::MODULE,
    &cfgutils::MODULE,
    &sdpops::MODULE,
    &statistics::MODULE,
    &dialog::MODULE,
    &exec::MODULE,
    &sqlops::MODULE,
    &avpops::MODULE,
    &uac::MODULE,
    &dialplan::MODULE,
    &regex::MODULE,
    &domain::MODULE,
    &alias_db::MODULE,
    &speeddial::MODULE,
    &rtimer::MODULE,
    &jansson::MODULE,
    &http_client::MODULE,
    &pipelimit::MODULE,
    &xhttp::MODULE,
    &topoh::MODULE,
    &topos::MODULE,
    &r#async::MODULE,
    &presence::MODULE,
    &presence::MODULE_XML,
    &drouting::MODULE,
    &siptrace::MODULE,
    &tmrec::MODULE,
    &statsd::MODULE,
    &mqueue::MODULE,
    &log_custom::MODULE,
    &websocket::MODULE,
];

/// The module that `loadmodule NAME` loads.
pub fn find(name: &str) -> Option<&'static ModuleDef> {
    MODULES.iter().copied().find(|m| m.answers_to(name))
}
