//! The seam between a worker's loop and its sockets: a UDP socket (`udp`),
//! or the stream listeners of the worker with all their connections
//! (`stream`, framing messages out of TCP and TLS streams).
//!
//! A transport is polled from the worker's single task, never from tasks of
//! its own, so messages of one flow reach the handler in arrival order.

use std::io;
use std::task::{Context, Poll};

use super::clock::Clocks;
use super::Counters;

use crate::sip::packet::{Inbound, Transmit};

/// One UDP socket, or the listeners and connections of the streams, on one worker.
pub(super) trait Transport {
    /// Hands the messages that have arrived, in arrival order, to `deliver`,
    /// at most `budget` of them. Returns how many steps it took (messages,
    /// and errors it recovered from); below `budget`, `cx` will be woken when
    /// more arrive. An error means the transport cannot receive any more.
    /// `clocks` are the round's readings (to place kernel receive stamps).
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        budget: usize,
        clocks: &Clocks,
        deliver: &mut dyn FnMut(Inbound),
    ) -> io::Result<usize>;

    /// Stops receiving (for a graceful stop); sends still complete.
    fn stop_recv(&mut self);

    /// Starts sending one message; it is handed to the kernel by the next
    /// [`poll_sent`](Transport::poll_sent), after those started before it.
    fn send(&mut self, transmit: Transmit);

    /// Submits the sends started since the last call and reaps the finished
    /// ones (errors are logged, never returned: a peer that is gone must not
    /// stop the worker). `cx` is woken when more finish.
    fn poll_sent(&mut self, cx: &mut Context<'_>);

    /// Cancels what is still in flight and closes the socket, once no
    /// operation in the ring uses it any more (errors are logged).
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// Sends started and not finished yet.
    fn sends_in_flight(&self) -> usize;

    fn counters(&self) -> Counters;
}
