//! The SIP message model: zero-copy parser, typed header views, the edit list
//! and serializer, and the stateless reply builder. No IO, no clock.

pub mod edit;
pub mod error;
pub mod message;
pub mod name;
pub mod packet;
pub mod reply;

// Typed, zero-copy views of header values.
pub mod auth;
pub mod headers;
pub mod host;
pub mod nameaddr;
pub mod scan;
pub mod uri;
pub mod uri_eq;
pub mod via;

pub use edit::{serialize, serialize_with, Edits, EditsMark};
pub use error::{ErrorKind, ParseError};
pub use message::{Header, Limits, Message, Span, StartLine};
pub use name::HeaderName;
pub use packet::{ConnId, Inbound, Proto, SendFlags, SocketId, Transmit};
#[cfg(test)]
mod roundtrip;
#[cfg(test)]
mod torture;
