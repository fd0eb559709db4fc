//! The proxy engine of one core as the runtime's [`Handler`]: the engine is
//! sans-IO, so this is only the binding.

use std::time::Instant;

use super::Handler;
use crate::modules::core::Engine;
use crate::sip::packet::{Inbound, Transmit};

impl Handler for Engine {
    fn on_inbound(&mut self, pkt: Inbound, now: Instant, out: &mut Vec<Transmit>) {
        Engine::on_inbound(self, pkt, now, out);
    }

    fn on_timer(&mut self, _now: Instant, _out: &mut Vec<Transmit>) {}

    fn next_deadline(&self) -> Option<Instant> {
        None
    }
}
