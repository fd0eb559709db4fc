//! UDP on one worker: one multishot `recvmsg` that keeps delivering datagrams
//! from the runtime's buffer pool, and sends submitted in order without
//! waiting for one another.
//!
//! Receive: the io_uring driver keeps a single multishot `RecvMsgMulti` armed
//! on the socket; the kernel picks a pool buffer per datagram and posts one
//! completion each, in the order the socket queued them. The poll driver
//! emulates it with one `recvmsg` at a time. Either way there is one receive
//! in flight per socket, so completions cannot overtake each other. Each
//! datagram is copied once, into a `Bytes` of exactly its length, and its pool
//! buffer goes straight back to the kernel. When the pool runs dry in a burst
//! the kernel ends the multishot (ENOBUFS, datagrams wait in the socket
//! buffer) and the next poll re-arms it.
//!
//! Send: every `Transmit` becomes one `SendMsg` whose future goes into a
//! `FuturesUnordered`, which polls new futures in the order they were pushed,
//! so their submission entries are queued in that order and reach the kernel
//! in one `io_uring_enter` with the next wait. The kernel issues them in queue
//! order; only a send that finds the socket buffer full (EAGAIN, rare with the
//! large SO_SNDBUF we ask for) is parked and may be overtaken.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use compio::driver::op::{
    RecvFlags, RecvMsgMulti, RecvMsgMultiResult, ReturnFlags, SendFlags, SendMsg,
};
use compio::driver::{SharedFd, ToSharedFd};
use compio::runtime::{Runtime, Submit, SubmitMultiStream};
use compio::BufResult;
use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use socket2::{SockAddr, Socket as Socket2};

use super::cmsg::{packet_destination, SendControl, RECV_CONTROL_LEN};
use super::transport::Transport;
use super::Counters;
use crate::sip::packet::{Inbound, Proto, SocketId, Transmit};

/// Receive errors in a row (other than a dry buffer pool) after which the
/// socket is considered dead.
const MAX_RECV_FAILURES: u32 = 64;

type RecvStream = Pin<Box<dyn Stream<Item = io::Result<RecvMsgMultiResult>>>>;
type SendOp = SendMsg<[Bytes; 1], SendControl, SharedFd<Socket2>>;

/// One UDP listening socket of one worker.
pub(super) struct UdpTransport {
    id: SocketId,
    /// The bound address (a wildcard, or the one address datagrams arrive on).
    local: SocketAddr,
    wildcard: bool,
    max_datagram: usize,
    /// Owns the socket; it closes when the transport and the operations
    /// still holding `fd` are gone.
    _socket: compio::net::UdpSocket,
    fd: SharedFd<Socket2>,
    recv: Option<RecvStream>,
    sends: FuturesUnordered<SendOne>,
    failures: u32,
    counters: Counters,
}

impl UdpTransport {
    /// Takes over a bound socket; must run inside the worker's compio runtime.
    pub fn new(
        id: SocketId,
        socket: std::net::UdpSocket,
        max_datagram: usize,
    ) -> io::Result<UdpTransport> {
        let local = socket.local_addr()?;
        let socket = compio::net::UdpSocket::from_std(socket)?;
        let fd = socket.to_shared_fd();
        let wildcard = local.ip().is_unspecified();
        let control_len = if wildcard { RECV_CONTROL_LEN } else { 0 };
        Ok(UdpTransport {
            id,
            local,
            wildcard,
            max_datagram,
            recv: Some(recv_stream(fd.clone(), control_len)),
            _socket: socket,
            fd,
            sends: FuturesUnordered::new(),
            failures: 0,
            counters: Counters::default(),
        })
    }

    /// The message for the handler, or `None` (counted, logged at debug) for a
    /// datagram that is too long or has no usable source address.
    fn inbound(&mut self, msg: &RecvMsgMultiResult) -> Option<Inbound> {
        let data = msg.data();
        if msg.flags().contains(ReturnFlags::TRUNC) || data.len() > self.max_datagram {
            self.counters.dropped += 1;
            log::debug!(
                "udp {}: dropped a datagram over {} bytes",
                self.local,
                self.max_datagram
            );
            return None;
        }
        let Some(src) = msg.addr().and_then(|a| a.as_socket()) else {
            self.counters.dropped += 1;
            log::debug!(
                "udp {}: dropped a datagram without a source address",
                self.local
            );
            return None;
        };
        let local = match self.wildcard {
            true => packet_destination(msg.ancillary())
                .map_or(self.local, |ip| SocketAddr::new(ip, self.local.port())),
            false => self.local,
        };
        self.counters.received += 1;
        Some(Inbound {
            data: Bytes::copy_from_slice(data),
            src,
            local,
            proto: Proto::Udp,
            socket: self.id,
        })
    }

    fn recv_failed(&mut self, e: io::Error) -> io::Result<()> {
        if e.kind() == io::ErrorKind::ResourceBusy {
            // The buffer pool ran dry in a burst: the multishot ended and is
            // re-armed on the next poll; the datagrams wait in the socket.
            log::debug!("udp {}: receive buffers exhausted, re-arming", self.local);
            return Ok(());
        }
        self.failures += 1;
        log::warn!(
            "udp {}: receive failed ({}/{MAX_RECV_FAILURES}): {e}",
            self.local,
            self.failures
        );
        if self.failures >= MAX_RECV_FAILURES {
            return Err(io::Error::new(
                e.kind(),
                format!("udp {}: receive keeps failing: {e}", self.local),
            ));
        }
        Ok(())
    }
}

/// The multishot receive as a stream that re-arms itself when the kernel
/// ends it; this is what `compio::net::UdpSocket::recv_msg_multi` builds,
/// owning the fd instead of borrowing the socket so it can live beside it.
fn recv_stream(fd: SharedFd<Socket2>, control_len: usize) -> RecvStream {
    let rt = Runtime::current();
    Box::pin(SubmitMultiStream::new(move || {
        let pool = rt.buffer_pool()?;
        let op = RecvMsgMulti::new(fd.clone(), &pool, control_len, RecvFlags::empty())?;
        Ok(rt.submit_multi(op).into_managed_with(pool, control_len))
    }))
}

impl Transport for UdpTransport {
    fn proto(&self) -> Proto {
        Proto::Udp
    }

    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        budget: usize,
        deliver: &mut dyn FnMut(Inbound),
    ) -> io::Result<usize> {
        let mut steps = 0;
        while steps < budget {
            let Some(recv) = self.recv.as_mut() else {
                break;
            };
            match recv.as_mut().poll_next(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(msg))) => {
                    self.failures = 0;
                    if let Some(pkt) = self.inbound(&msg) {
                        // Give the pool buffer back before the handler runs.
                        drop(msg);
                        deliver(pkt);
                    }
                }
                Poll::Ready(Some(Err(e))) => self.recv_failed(e)?,
                // The multishot ended without an error; the next poll re-arms it.
                Poll::Ready(None) => {}
            }
            steps += 1;
        }
        Ok(steps)
    }

    fn stop_recv(&mut self) {
        // Dropping the stream cancels the multishot receive.
        self.recv = None;
    }

    fn send(&mut self, transmit: Transmit) {
        let control = match transmit.local {
            Some(local) if self.wildcard && !local.ip().is_unspecified() => {
                SendControl::source(local.ip())
            }
            _ => SendControl::none(),
        };
        let dst = transmit.dst;
        let op: SendOp = SendMsg::new(
            self.fd.clone(),
            [transmit.data],
            control,
            Some(SockAddr::from(dst)),
            SendFlags::empty(),
        );
        self.sends.push(SendOne {
            submit: compio::runtime::submit(op),
            dst,
        });
    }

    fn poll_sent(&mut self, cx: &mut Context<'_>) {
        while let Poll::Ready(Some((BufResult(res, _op), dst))) = self.sends.poll_next_unpin(cx) {
            match res {
                Ok(_) => self.counters.sent += 1,
                Err(e) => {
                    self.counters.send_errors += 1;
                    log::debug!("udp {} -> {dst}: send failed: {e}", self.local);
                }
            }
        }
    }

    fn sends_in_flight(&self) -> usize {
        self.sends.len()
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}

/// One send in flight, remembering where it goes for the log.
struct SendOne {
    submit: Submit<SendOp>,
    dst: SocketAddr,
}

impl std::future::Future for SendOne {
    type Output = (BufResult<usize, SendOp>, SocketAddr);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let dst = self.dst;
        Pin::new(&mut self.submit).poll(cx).map(|res| (res, dst))
    }
}
