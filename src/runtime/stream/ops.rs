//! The operations a stream transport has in flight, as one future type so
//! they can share a `FuturesUnordered`, and what each returns when done.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use compio::buf::{IntoInner, Slice};
use compio::driver::op::{Accept, Connect, Recv, SendVectored};
use compio::driver::SharedFd;
use compio::runtime::Submit;
use compio::BufResult;
use futures_util::future::{AbortHandle, Abortable};
use futures_util::stream::FuturesUnordered;
use socket2::{SockAddr, Socket as Socket2};

pub(super) type Fd = SharedFd<Socket2>;

/// One operation in flight.
pub(super) enum Op {
    Accept {
        listener: usize,
        submit: Submit<Accept<Fd>>,
    },
    Connect {
        slot: u32,
        gen: u16,
        submit: Submit<Connect<Fd>>,
    },
    Recv {
        slot: u32,
        gen: u16,
        start: usize,
        submit: Submit<Recv<Slice<BytesMut>, Fd>>,
    },
    Send {
        slot: u32,
        gen: u16,
        submit: Submit<SendVectored<Vec<Bytes>, Fd>>,
    },
}

/// A finished operation.
pub(super) enum Done {
    Accepted {
        listener: usize,
        result: io::Result<(Socket2, SockAddr)>,
    },
    Connected {
        slot: u32,
        gen: u16,
        result: io::Result<usize>,
    },
    Read {
        slot: u32,
        gen: u16,
        start: usize,
        result: io::Result<usize>,
        buf: BytesMut,
    },
    Sent {
        slot: u32,
        gen: u16,
        result: io::Result<usize>,
        batch: Vec<Bytes>,
    },
}

impl Future for Op {
    type Output = Done;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Done> {
        Poll::Ready(match self.get_mut() {
            Op::Accept { listener, submit } => {
                let BufResult(result, op) = std::task::ready!(Pin::new(submit).poll(cx));
                Done::Accepted {
                    listener: *listener,
                    // The accepted socket is only there on success.
                    result: result.map(|_| op.into_inner()),
                }
            }
            Op::Connect { slot, gen, submit } => {
                let BufResult(result, _op) = std::task::ready!(Pin::new(submit).poll(cx));
                Done::Connected {
                    slot: *slot,
                    gen: *gen,
                    result,
                }
            }
            Op::Recv {
                slot,
                gen,
                start,
                submit,
            } => {
                let BufResult(result, op) = std::task::ready!(Pin::new(submit).poll(cx));
                Done::Read {
                    slot: *slot,
                    gen: *gen,
                    start: *start,
                    result,
                    buf: op.into_inner().into_inner(),
                }
            }
            Op::Send { slot, gen, submit } => {
                let BufResult(result, op) = std::task::ready!(Pin::new(submit).poll(cx));
                Done::Sent {
                    slot: *slot,
                    gen: *gen,
                    result,
                    batch: op.into_inner(),
                }
            }
        })
    }
}

pub(super) type Ops = FuturesUnordered<Abortable<Op>>;

pub(super) fn abortable(op: Op) -> (Abortable<Op>, AbortHandle) {
    let (handle, registration) = AbortHandle::new_pair();
    (Abortable::new(op, registration), handle)
}
