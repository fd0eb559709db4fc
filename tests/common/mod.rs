//! The harness shared by the integration tests in `tests/`: they run the real
//! `ringsip` binary and real SIP peers (sipp, or a raw UDP user agent) over
//! loopback.
//!
//! Use it from a test file with `mod common;`. Not every test uses every
//! helper, hence the `allow` below.
//!
//! - [`baresip`]: [`baresip::Baresip`], a real softphone driven through its
//!   control port.
//! - [`engine`]: one core's engine in the test process, sans-IO on virtual
//!   time (configuration in, packets in, transmissions out).
//! - [`net`]: loopback addresses that do not collide between tests running in
//!   parallel (each test gets its own random address in 127.0.0.0/8).
//! - [`server`]: a child process that serves UDP (readiness check, stderr
//!   captured to a file, SIGTERM on drop).
//! - [`proxy`]: [`Proxy`], ringsip started from a config text.
//! - [`sipp`]: [`Sipp`], the sipp load generator with a hard time bound, and
//!   its [`SippReport`].
//! - [`tcp`]: [`tcp::TcpUa`], SIP over one TCP connection, and a UAS reply builder.
//! - [`ua`]: [`RawUa`], a UDP socket that sends and receives raw SIP text, and
//!   [`SipMsg`] for assertions on what came back.
//! - [`wait`]: [`wait_until`] / [`wait_for`], polling a condition with a
//!   deadline ([`EVENTUALLY`]) where a test would otherwise sleep a fixed time.
//!
//! Every load is bounded in count and time, and only loopback addresses are used.
#![allow(dead_code, unused_imports)]

pub mod baresip;
pub mod engine;
pub mod net;
pub mod proxy;
pub mod server;
pub mod sipp;
pub mod tcp;
pub mod ua;
pub mod wait;

pub use net::{free_udp_addr, free_udp_port, is_tcp_listening, is_udp_bound, loopback_ip};
pub use proxy::{ringsip_bin, Io, Proxy, ProxyBuilder};
pub use server::{Readiness, ServerProcess};
pub use sipp::{sipp_path, Scenario, Sipp, SippReport, SippRun};
pub use ua::{RawUa, SipMsg};
pub use wait::{wait_for, wait_until, EVENTUALLY};
