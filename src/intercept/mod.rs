//! The network intercept stage (`event_route[network:msg]`): codecs run on raw
//! buffers before parsing and after serializing.
//!
//! [`codec`] holds the [`Codec`] trait and the built-in codecs (gzip, an
//! XChaCha20-Poly1305 cipher with a pre-shared key); [`stage`] runs the event
//! route as a step of a core's pipeline. corex exposes the codecs to the script.

pub mod codec;
pub mod stage;

pub use codec::{Cipher, Codec, CodecError, Gzip};
pub use stage::{NioConfig, Stage, StageStats};
