//! The core: the per-core message pipeline ([`engine`]), stateless forwarding
//! ([`forward`]) and the core functions of the configuration language.

pub mod dns;
pub mod dns_wire;
pub mod engine;
pub mod forward;
pub(crate) mod functions;
pub mod hash;
mod ruri;
pub mod send;

pub use engine::Engine;
pub use functions::MODULE;
pub use ruri::set_user as set_ruri_user;
