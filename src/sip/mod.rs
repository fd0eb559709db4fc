//! The SIP message model: zero-copy parser, typed header views, the edit list
//! and serializer, and the stateless reply builder. No IO, no clock.

pub mod edit;
pub mod error;
pub mod http;
pub mod message;
pub mod name;
pub mod packet;
pub mod reply;

// Typed, zero-copy views of header values.
pub mod auth;
pub mod headers;
pub mod host;
pub mod nameaddr;
pub mod received;
pub mod scan;
pub mod uri;
pub mod uri_eq;
pub mod via;
pub mod websocket;

pub use edit::{serialize, serialize_with, Edits, EditsMark};
pub use error::{ErrorKind, ParseError};
pub use message::{Header, Limits, Message, Protocol, Span, StartLine};
pub use name::HeaderName;
pub use packet::{ConnId, Inbound, Proto, SendFlags, SocketId, Transmit, WsSend};
#[cfg(test)]
mod roundtrip;
#[cfg(test)]
mod torture;

/// Test inputs made from `seeds`: every prefix of each, and each with one
/// byte of `bytes` in place of each of its bytes (and, with `insert`, put
/// before it). `check` sees each; returns how many it saw.
#[cfg(test)]
pub(crate) fn each_edit(
    seeds: &[&[u8]],
    bytes: &[u8],
    insert: bool,
    mut check: impl FnMut(&[u8]),
) -> usize {
    let mut n = 0;
    for seed in seeds {
        for end in 0..=seed.len() {
            check(&seed[..end]);
            n += 1;
        }
        for at in 0..seed.len() {
            for &b in bytes {
                let mut v = seed.to_vec();
                v[at] = b;
                check(&v);
                n += 1;
                if insert {
                    let mut w = seed.to_vec();
                    w.insert(at, b);
                    check(&w);
                    n += 1;
                }
            }
        }
    }
    n
}
