//! The SIP message model: zero-copy parser, typed header views, the edit list
//! and serializer, and the stateless reply builder. No IO, no clock.

pub mod error;
pub mod packet;

// Typed, zero-copy views of header values.
pub mod auth;
pub mod headers;
pub mod host;
pub mod nameaddr;
pub mod scan;
pub mod uri;
pub mod uri_eq;
pub mod via;
