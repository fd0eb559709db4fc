//! The engine of one core with its traffic counted and its latency measured
//! for the control socket (`ctl::metrics`).
//!
//! Latency, per message that produced something to send, under its key
//! (the method of a request, the class of a reply): from its arrival to the
//! dispatch of the round that handled it, `dispatch − arrival`.
//!
//! - Arrival is the kernel's receive timestamp of a datagram
//!   ([`Inbound::arrived`], SO_TIMESTAMPNS, taken when it entered the
//!   network stack), so the time it waited for the worker (softirq, waking
//!   the thread, the io_uring completion, earlier messages of the same
//!   round) is counted, as a client sees it. A message without one (a
//!   stream's, a hand-off from a worker that had none) counts from the start
//!   of its round, the `now` of `on_inbound`.
//! - Dispatch is the `now` of `on_dispatch`: the worker's clock reading just
//!   before what the round produced is handed to the sockets. Not counted:
//!   the send itself (the io_uring submission at the end of the round, the
//!   kernel's path to the wire), which the next hop's stamp would see.
//!
//! Per message this costs a look at the first bytes of what came in and of
//! what goes out, a few increments and, for a stamped message, one entry in
//! a buffer reused from round to round; each is recorded (no lock, no
//! allocation) at dispatch. No clock reading: both ends are readings the
//! runtime makes anyway.

use std::sync::Arc;
use std::time::Instant;

use super::Handler;
use crate::ctl::metrics::{classify, reply_class_of, Metrics, KEYS, METHODS};
use crate::modules::core::Engine;
use crate::sip::packet::{Inbound, Transmit};

/// An [`Engine`] with metrics.
pub struct Metered {
    engine: Engine,
    metrics: Arc<Metrics>,
    core: usize,
    /// When the round started (the `now` of `on_inbound`), if a message
    /// without an arrival stamp sent something in it.
    round_start: Option<Instant>,
    /// Messages of this round with no arrival stamp that sent something, by key…
    tally: [u32; KEYS],
    /// …and the keys with a non-zero tally (bit set), so a round visits only those.
    touched: u32,
    /// Messages of this round with an arrival stamp that sent something: key
    /// and arrival. Cleared, not freed, at dispatch.
    stamped: Vec<(u8, Instant)>,
    busy: bool,
}

/// Room for the stamped messages of a busy round (a few receive budgets);
/// a larger round grows the buffer once.
const STAMPED_CAPACITY: usize = 256;

const _: () = assert!(KEYS <= u8::MAX as usize, "a key fits a u8");

impl Metered {
    pub fn new(engine: Engine, metrics: Arc<Metrics>, core: usize) -> Metered {
        Metered {
            engine,
            metrics,
            core,
            round_start: None,
            tally: [0; KEYS],
            touched: 0,
            stamped: Vec::with_capacity(STAMPED_CAPACITY),
            busy: false,
        }
    }

    /// Copies the counters the engine and its transaction table keep into
    /// the published atomics (a few stores, once per busy round).
    fn publish(&self) {
        let p = &self.metrics.core(self.core).published;
        let e = self.engine.stats();
        p.parse_errors.set(e.parse_errors);
        p.bad_requests.set(e.bad_requests);
        p.unroutable_replies.set(e.unroutable_replies);
        p.absorbed_acks.set(e.absorbed_acks);
        p.absorbed_requests.set(e.absorbed_requests);
        p.handoffs.set(e.handoffs);
        if let Some(t) = self.engine.transactions() {
            let s = t.stats();
            p.tm_active.set(t.len() as u64);
            p.tm_created.set(s.created);
            p.tm_freed.set(s.freed);
            p.tm_branches.set(s.branches);
            p.tm_retransmissions.set(s.retransmissions);
            p.tm_absorbed_requests.set(s.absorbed_requests);
            p.tm_absorbed_replies.set(s.absorbed_replies);
            p.tm_relayed.set(s.relayed);
            p.tm_local_replies.set(s.local_replies);
            p.tm_timeouts.set(s.timeouts);
            p.tm_cancels_sent.set(s.cancels_sent);
            p.tm_finals_2xx.set(s.finals[2]);
            p.tm_finals_3xx.set(s.finals[3]);
            p.tm_finals_4xx.set(s.finals[4]);
            p.tm_finals_5xx.set(s.finals[5]);
            p.tm_finals_6xx.set(s.finals[6]);
        }
    }
}

impl Handler for Metered {
    fn on_inbound(&mut self, pkt: Inbound, now: Instant, out: &mut Vec<Transmit>) {
        let key = classify(&pkt.data);
        let arrived = pkt.arrived;
        let before = out.len();
        self.engine.on_inbound(pkt, now, out);
        self.busy = true;
        let Some(key) = key else {
            return;
        };
        let m = self.metrics.core(self.core);
        m.received[key].add(1);
        if out.len() == before {
            m.silent.add(1);
            return;
        }
        let request_in = key < METHODS.len();
        for t in &out[before..] {
            match (reply_class_of(&t.data), request_in) {
                (None, true) => m.forwarded_requests[key].add(1),
                (Some(k), true) => m.local_replies[k].add(1),
                (Some(k), false) => m.forwarded_replies[k].add(1),
                // A reply that made a request (none today): not counted.
                (None, false) => {}
            }
        }
        match arrived {
            Some(at) => self.stamped.push((key as u8, at)),
            None => {
                self.tally[key] += 1;
                self.touched |= 1 << key;
                self.round_start = Some(now);
            }
        }
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        self.engine.on_timer(now, out);
        self.busy = true;
    }

    #[inline]
    fn on_received(&mut self, pkt: &mut Inbound, now: Instant) -> bool {
        Handler::on_received(&mut self.engine, pkt, now)
    }

    #[inline]
    fn on_sending(&mut self, transmit: &mut Transmit, now: Instant) -> bool {
        Handler::on_sending(&mut self.engine, transmit, now)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.engine.next_deadline()
    }

    fn take_handoffs(&mut self, into: &mut Vec<(usize, Inbound)>) {
        Handler::take_handoffs(&mut self.engine, into);
    }

    fn on_dispatch(&mut self, now: Instant) {
        if !self.busy {
            return;
        }
        self.busy = false;
        let m = self.metrics.core(self.core);
        for (key, at) in self.stamped.drain(..) {
            let ns = now.saturating_duration_since(at).as_nanos() as u64;
            m.latency[usize::from(key)].record(ns);
        }
        if let Some(start) = self.round_start.take() {
            let ns = now.saturating_duration_since(start).as_nanos() as u64;
            let mut touched = std::mem::take(&mut self.touched);
            while touched != 0 {
                let key = touched.trailing_zeros() as usize;
                touched &= touched - 1;
                let n = std::mem::take(&mut self.tally[key]);
                m.latency[key].record_n(ns, u64::from(n));
            }
        }
        self.publish();
    }
}
