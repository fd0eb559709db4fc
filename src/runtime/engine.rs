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

    #[inline]
    fn on_received(&mut self, pkt: &mut Inbound, now: Instant) -> bool {
        self.intercept_received(pkt, now)
    }

    #[inline]
    fn on_sending(&mut self, transmit: &mut Transmit, now: Instant) -> bool {
        self.intercept_sending(transmit, now)
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        Engine::on_timer(self, now, out);
    }

    fn next_deadline(&self) -> Option<Instant> {
        Engine::next_deadline(self)
    }

    fn take_handoffs(&mut self, into: &mut Vec<(usize, Inbound)>) {
        let mut mine = Vec::new();
        Engine::take_handoffs(self, &mut mine);
        if mine.is_empty() {
            return;
        }
        into.extend(mine.into_iter().map(|(core, pkt)| (usize::from(core), pkt)));
    }
}
