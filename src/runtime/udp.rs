//! UDP on one worker: one receive in flight that keeps delivering datagrams
//! in order, and sends submitted in order without waiting for one another.
//!
//! Receive, io_uring: a single multishot `RecvMsgMulti` stays armed on the
//! socket; the kernel picks a buffer of the runtime's pool per datagram and
//! posts one completion each, in the order the socket queued them. When the
//! pool runs dry in a burst the kernel ends the multishot (ENOBUFS; datagrams
//! wait in the socket buffer) and the next poll re-arms it.
//!
//! Receive, poll driver: one plain `RecvMsg` at a time into buffers the
//! transport owns and reuses. (compio 0.19.2's pool-based receives are broken
//! on the poll side of its fused driver: `compio-driver` 0.12.5's `mop!` does
//! not forward `set_result`, so every datagram comes back empty.)
//!
//! Either way one receive is in flight per socket, so completions cannot
//! overtake each other, and each datagram is copied once, into a `Bytes` of
//! exactly its length, before its buffer is reused.
//!
//! Every receive asks for control messages: the packet info on a wildcard
//! socket, and on every socket the kernel's receive timestamp
//! (SO_TIMESTAMPNS, taken when the datagram entered the stack). The stamp is
//! on CLOCK_REALTIME; it becomes an `Instant` ([`Inbound::arrived`]) through
//! the clock pair the worker reads once per round ([`Clocks`]). So
//! `ctl latency` counts the time a datagram waited for the worker (softirq,
//! wake-up, completion), not just the round.
//!
//! Send: a `Transmit` goes straight to the kernel with one non-blocking
//! `sendmsg`, as it is dispatched. A UDP send completes inside that call, so
//! going through the ring would buy nothing but the runtime's bookkeeping per
//! operation (measured: 26 k of 167 k instructions per stateful call). Only
//! when the socket buffer is full (EAGAIN, rare with the large SO_SNDBUF we
//! ask for) does the datagram become a `SendMsg` in the ring, which waits for
//! room; while any such send is pending, the later ones queue behind it, so
//! datagrams leave in the order they were dispatched. The queued futures sit
//! in a `FuturesUnordered`, which polls new futures in the order they were
//! pushed, so their submission entries reach the kernel in that order.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use compio::buf::{IntoInner, IoBuf};
use compio::driver::op::{
    RecvFlags, RecvMsg, RecvMsgMulti, RecvMsgMultiResult, ReturnFlags, SendFlags, SendMsg,
};
use compio::driver::{DriverType, SharedFd, ToSharedFd};
use compio::runtime::{Runtime, Submit, SubmitMultiStream};
use compio::BufResult;
use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use socket2::{SockAddr, Socket as Socket2};

use super::clock::Clocks;
use super::cmsg::{
    packet_destination, receive_timestamp, RecvControl, SendControl, RECV_CONTROL_LEN,
};
use super::transport::Transport;
use super::Counters;
use crate::sip::packet::{Inbound, Proto, SocketId, Transmit};

/// Receive errors in a row (other than a dry buffer pool) after which the
/// socket is considered dead.
const MAX_RECV_FAILURES: u32 = 64;

type RecvStream = Pin<Box<dyn Stream<Item = io::Result<RecvMsgMultiResult>>>>;
type RecvOp = RecvMsg<[Vec<u8>; 1], RecvControl, SharedFd<Socket2>>;
type SendOp = SendMsg<[Bytes; 1], SendControl, SharedFd<Socket2>>;
/// `compio::net::UdpSocket::close`, an `async fn`.
type Closing = Pin<Box<dyn Future<Output = io::Result<()>>>>;

/// One UDP listening socket of one worker.
pub(super) struct UdpTransport {
    id: SocketId,
    /// The bound address (a wildcard, or the one address datagrams arrive on).
    local: SocketAddr,
    wildcard: bool,
    max_datagram: usize,
    /// Taken by [`Transport::poll_close`].
    socket: Option<compio::net::UdpSocket>,
    /// For the operations; `None` once closing (the close waits for every clone).
    fd: Option<SharedFd<Socket2>>,
    closing: Option<Closing>,
    receiver: Receiver,
    sends: FuturesUnordered<SendOne>,
    failures: u32,
    counters: Counters,
}

/// How datagrams are received (see the module docs).
enum Receiver {
    /// io_uring: one multishot `recvmsg` into the runtime's buffer pool.
    Multishot(RecvStream),
    /// Poll driver: one `recvmsg` at a time into buffers of its own.
    OneShot(Box<OneShot>),
    Stopped,
}

/// The receive of the poll driver: one `recvmsg` in flight, or its buffers
/// waiting for the next one.
struct OneShot {
    in_flight: Option<Submit<RecvOp>>,
    buffers: Option<([Vec<u8>; 1], RecvControl)>,
}

/// One received datagram, before it becomes an [`Inbound`].
struct Datagram<'a> {
    data: &'a [u8],
    src: Option<SockAddr>,
    control: &'a [u8],
    flags: ReturnFlags,
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
        let receiver = match Runtime::with_current(|rt| rt.driver_type()) {
            DriverType::IoUring => Receiver::Multishot(recv_stream(fd.clone(), RECV_CONTROL_LEN)),
            _ => Receiver::OneShot(Box::new(OneShot {
                in_flight: None,
                // `vec![0; n]` has exactly `n` bytes of capacity, all initialized.
                buffers: Some(([vec![0; max_datagram]], RecvControl::new())),
            })),
        };
        Ok(UdpTransport {
            id,
            local,
            wildcard,
            max_datagram,
            socket: Some(socket),
            fd: Some(fd),
            closing: None,
            receiver,
            sends: FuturesUnordered::new(),
            failures: 0,
            counters: Counters::default(),
        })
    }

    /// The message for the handler, or `None` (counted, logged at debug) for a
    /// datagram that is too long or has no usable source address.
    fn inbound(&mut self, datagram: Datagram<'_>, clocks: &Clocks) -> Option<Inbound> {
        if datagram.flags.contains(ReturnFlags::TRUNC) || datagram.data.len() > self.max_datagram {
            self.counters.dropped += 1;
            log::debug!(
                "udp {}: dropped a datagram over {} bytes",
                self.local,
                self.max_datagram
            );
            return None;
        }
        let Some(src) = datagram.src.and_then(|a| a.as_socket()) else {
            self.counters.dropped += 1;
            log::debug!(
                "udp {}: dropped a datagram without a source address",
                self.local
            );
            return None;
        };
        let local = match self.wildcard {
            true => packet_destination(datagram.control)
                .map_or(self.local, |ip| SocketAddr::new(ip, self.local.port())),
            false => self.local,
        };
        let arrived = receive_timestamp(datagram.control).and_then(|stamp| clocks.arrival(stamp));
        self.counters.received += 1;
        Some(Inbound {
            data: Bytes::copy_from_slice(datagram.data),
            src,
            local,
            proto: Proto::Udp,
            socket: self.id,
            conn: None,
            arrived,
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
            let message = format!("udp {}: receive keeps failing: {e}", self.local);
            return Err(io::Error::new(e.kind(), message));
        }
        Ok(())
    }

    /// Sends a datagram through the ring: after the sends already queued
    /// there, completed by [`Transport::poll_sent`].
    fn queue(&mut self, data: Bytes, control: SendControl, dst: SocketAddr) {
        let Some(fd) = &self.fd else {
            return;
        };
        let op: SendOp = SendMsg::new(
            fd.clone(),
            [data],
            control,
            Some(SockAddr::from(dst)),
            SendFlags::empty(),
        );
        self.sends.push(SendOne {
            submit: compio::runtime::submit(op),
            dst,
        });
    }

    /// One step of receiving: `Ready(Some)` for a datagram to deliver,
    /// `Ready(None)` for a step that delivered nothing (error recovered, odd
    /// datagram), `Pending` when nothing more has arrived.
    /// One step of the receive: a datagram handed to `deliver` (called
    /// here, so the message is not moved out through `Poll` and `Result`
    /// on its way: a copy of the whole `Inbound` each), or none.
    fn poll_one(
        &mut self,
        cx: &mut Context<'_>,
        clocks: &Clocks,
        deliver: &mut dyn FnMut(Inbound),
    ) -> Poll<io::Result<()>> {
        match &mut self.receiver {
            Receiver::Stopped => Poll::Pending,
            Receiver::Multishot(stream) => match stream.as_mut().poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(msg))) => {
                    self.failures = 0;
                    let datagram = Datagram {
                        data: msg.data(),
                        src: msg.addr(),
                        control: msg.ancillary(),
                        flags: msg.flags(),
                    };
                    let pkt = self.inbound(datagram, clocks);
                    // The pool buffer goes back to the kernel before the handler runs.
                    drop(msg);
                    if let Some(pkt) = pkt {
                        deliver(pkt);
                    }
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(self.recv_failed(e)),
                // The multishot ended without an error; the next poll re-arms it.
                Poll::Ready(None) => Poll::Ready(Ok(())),
            },
            Receiver::OneShot(one) => {
                let OneShot { in_flight, buffers } = &mut **one;
                let submit = match (in_flight.as_mut(), buffers.take(), &self.fd) {
                    (Some(submit), ..) => submit,
                    (None, Some((data, control)), Some(fd)) => {
                        let op = RecvMsg::new(fd.clone(), data, control, RecvFlags::empty());
                        in_flight.insert(compio::runtime::submit(op))
                    }
                    // Closing (or, not reached, buffers lost): nothing to receive.
                    (None, ..) => return Poll::Pending,
                };
                let BufResult(result, op) = std::task::ready!(Pin::new(submit).poll(cx));
                *in_flight = None;
                let ((data, control), src, control_len, flags) = op.into_inner();
                let step = match result {
                    Ok(len) => {
                        self.failures = 0;
                        let datagram = Datagram {
                            data: data[0].get(..len).unwrap_or_default(),
                            src,
                            control: control.received(control_len),
                            flags,
                        };
                        Ok(self.inbound(datagram, clocks))
                    }
                    Err(e) => self.recv_failed(e).map(|()| None),
                };
                if let Receiver::OneShot(one) = &mut self.receiver {
                    one.buffers = Some((data, control));
                }
                Poll::Ready(step.map(|pkt| {
                    if let Some(pkt) = pkt {
                        deliver(pkt);
                    }
                }))
            }
        }
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
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        budget: usize,
        clocks: &Clocks,
        deliver: &mut dyn FnMut(Inbound),
    ) -> io::Result<usize> {
        let mut steps = 0;
        while steps < budget {
            match self.poll_one(cx, clocks, deliver) {
                Poll::Pending => break,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
            }
            steps += 1;
        }
        Ok(steps)
    }

    fn stop_recv(&mut self) {
        // Dropping the stream or the future cancels the receive in flight.
        self.receiver = Receiver::Stopped;
    }

    fn send(&mut self, transmit: Transmit) {
        let Some(fd) = &self.fd else {
            log::debug!(
                "udp {}: closing, send to {} dropped",
                self.local,
                transmit.dst
            );
            return;
        };
        let control = match transmit.local {
            Some(local) if self.wildcard && !local.ip().is_unspecified() => {
                SendControl::source(local.ip())
            }
            _ => SendControl::none(),
        };
        let dst = transmit.dst;
        let addr = SockAddr::from(dst);
        // Straight to the kernel while nothing waits in the ring (so nothing
        // is overtaken); only a full socket buffer sends through the ring.
        if self.sends.is_empty() {
            match send_now(fd.as_raw_fd(), &transmit.data, &control, &addr) {
                Ok(()) => {
                    self.counters.sent += 1;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.counters.send_errors += 1;
                    log::debug!("udp {} -> {dst}: send failed: {e}", self.local);
                    return;
                }
            }
        }
        self.queue(transmit.data, control, dst);
    }

    fn poll_sent(&mut self, cx: &mut Context<'_>) {
        if self.sends.is_empty() {
            // The usual case: every send went straight to the kernel.
            return;
        }
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

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.closing.is_none() {
            self.receiver = Receiver::Stopped;
            self.sends.clear();
            self.fd = None;
            let Some(socket) = self.socket.take() else {
                return Poll::Ready(());
            };
            // Waits until no operation holds the fd any more (the receive and
            // sends just cancelled), then closes it: a request still in the
            // ring would keep the port bound after the worker is gone.
            self.closing = Some(Box::pin(socket.close()));
        }
        let Some(closing) = self.closing.as_mut() else {
            return Poll::Ready(());
        };
        if let Err(e) = std::task::ready!(closing.as_mut().poll(cx)) {
            log::debug!("udp {}: close: {e}", self.local);
        }
        // Done: a finished `async` future must not be polled again.
        self.closing = None;
        Poll::Ready(())
    }

    fn sends_in_flight(&self) -> usize {
        self.sends.len()
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}

/// One `sendmsg(MSG_DONTWAIT)` of a whole datagram; `WouldBlock` when the
/// socket buffer is full (the caller then queues it in the ring).
fn send_now(fd: RawFd, data: &[u8], control: &SendControl, dst: &SockAddr) -> io::Result<()> {
    let control = control.as_init();
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // SAFETY: all-zero bytes are a valid `msghdr`; every pointer set below
    // outlives the call, and the kernel only reads through them.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = dst.as_ptr().cast_mut().cast();
    msg.msg_namelen = dst.len();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !control.is_empty() {
        msg.msg_control = control.as_ptr().cast_mut().cast();
        msg.msg_controllen = control.len() as _;
    }
    loop {
        // SAFETY: `fd` is the open socket the transport holds; `msg` is valid (above).
        let sent = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        if sent >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One send in flight, remembering where it goes for the log.
struct SendOne {
    submit: Submit<SendOp>,
    dst: SocketAddr,
}

impl Future for SendOne {
    type Output = (BufResult<usize, SendOp>, SocketAddr);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let dst = self.dst;
        Pin::new(&mut self.submit).poll(cx).map(|res| (res, dst))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn transmit(data: &'static [u8], dst: SocketAddr) -> Transmit {
        Transmit {
            data: Bytes::from_static(data),
            dst,
            proto: Proto::Udp,
            socket: None,
            local: None,
            conn: None,
            flags: Default::default(),
        }
    }

    #[test]
    fn sends_leave_in_dispatch_order_directly_and_through_the_ring() {
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let dst = rx.local_addr().unwrap();
            let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut udp = UdpTransport::new(0, tx, 65_535).unwrap();
            udp.send(transmit(b"one", dst));
            assert_eq!((udp.counters().sent, udp.sends_in_flight()), (1, 0));
            // As if the socket buffer had been full: "two" waits in the ring,
            // and "three" must queue behind it rather than overtake it.
            udp.queue(Bytes::from_static(b"two"), SendControl::none(), dst);
            udp.send(transmit(b"three", dst));
            assert_eq!((udp.counters().sent, udp.sends_in_flight()), (1, 2));
            std::future::poll_fn(|cx| {
                udp.poll_sent(cx);
                match udp.sends_in_flight() {
                    0 => Poll::Ready(()),
                    _ => Poll::Pending,
                }
            })
            .await;
            assert_eq!(udp.counters().sent, 3);
            assert_eq!(udp.counters().send_errors, 0);
            let mut buf = [0u8; 64];
            for want in [&b"one"[..], b"two", b"three"] {
                let n = rx.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], want);
            }
            // Then, nothing pending, straight to the kernel again.
            udp.send(transmit(b"four", dst));
            assert_eq!((udp.counters().sent, udp.sends_in_flight()), (4, 0));
            let n = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"four");
        });
    }

    #[test]
    fn a_send_the_kernel_refuses_is_counted_not_queued() {
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut udp = UdpTransport::new(0, tx, 65_535).unwrap();
            // An IPv4 socket cannot send to an IPv6 address: EAFNOSUPPORT.
            udp.send(transmit(b"x", "[::1]:5060".parse().unwrap()));
            assert_eq!(udp.counters().send_errors, 1);
            assert_eq!((udp.counters().sent, udp.sends_in_flight()), (0, 0));
        });
    }
}
