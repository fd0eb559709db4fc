//! ringsip: a SIP proxy and registrar that runs Kamailio-style routing
//! configurations on thread-per-core io_uring workers.
//!
//! The layers follow `DESIGN.md`: everything except [`runtime`] is sans-IO
//! (bytes, addresses and `now` in; transmissions and deadlines out).

pub mod ctl;
pub mod intercept;
pub mod modules;
pub mod runtime;
pub mod script;
pub mod sip;
pub mod store;
pub mod tm;
