//! The seam between a worker's loop and one listening socket of it. UDP is the
//! only implementation today; TCP and TLS (a listener plus its connections,
//! framing messages out of a stream) slot in behind the same four calls.
//!
//! A transport is polled from the worker's single task, never from tasks of
//! its own, so messages of one flow reach the handler in arrival order.

use std::io;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use super::Counters;

use crate::sip::packet::{Inbound, Proto, Transmit};

/// One listening socket (and, for streams, its connections) on one worker.
pub(super) trait Transport {
    fn proto(&self) -> Proto;

    /// The bound address (possibly a wildcard), with the resolved port.
    fn local_addr(&self) -> SocketAddr;

    /// Hands the messages that have arrived, in arrival order, to `deliver`,
    /// at most `budget` of them. Returns how many steps it took (messages,
    /// and errors it recovered from); below `budget`, `cx` will be woken when
    /// more arrive. An error means the transport cannot receive any more.
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        budget: usize,
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
