//! Cross-core hand-off (DESIGN.md "Thread-per-core"): a worker that must send
//! on a connection another worker owns puts the transmission in the owner's
//! bounded queue and wakes the owner's loop; a reply that arrived on the
//! wrong core for its transaction goes to the owner the same way (its task waker: compio turns a
//! wake from another thread into a wake-up of that worker's ring).
//!
//! The queue is a bounded crossbeam channel, so a burst never grows memory
//! without limit: when it is full the transmission is dropped and counted,
//! as a full socket buffer would drop a datagram. A handed-off transmission
//! is never handed on again, so two workers that disagree about who owns a
//! destination (a connection closing meanwhile) cannot bounce it between them.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use futures_util::task::AtomicWaker;
use std::task::Waker;

/// Transmissions waiting for one worker, at most.
const QUEUE: usize = 4096;

/// One queue and one waker per worker.
pub(super) struct Mailboxes<T> {
    slots: Box<[Mailbox<T>]>,
}

struct Mailbox<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
    waker: AtomicWaker,
}

impl<T> Mailboxes<T> {
    pub fn new(workers: usize) -> Mailboxes<T> {
        Mailboxes {
            slots: (0..workers)
                .map(|_| {
                    let (tx, rx) = bounded(QUEUE);
                    Mailbox {
                        tx,
                        rx,
                        waker: AtomicWaker::new(),
                    }
                })
                .collect(),
        }
    }

    /// Queues `transmit` for worker `owner` and wakes it; gives it back when
    /// the queue is full or there is no such worker.
    pub fn post(&self, owner: usize, transmit: T) -> Result<(), T> {
        let Some(slot) = self.slots.get(owner) else {
            return Err(transmit);
        };
        match slot.tx.try_send(transmit) {
            Ok(()) => {
                slot.waker.wake();
                Ok(())
            }
            Err(TrySendError::Full(t) | TrySendError::Disconnected(t)) => Err(t),
        }
    }

    /// Registers the task of worker `index`; call before [`take`](Self::take)
    /// so that a post in between still wakes it.
    pub fn register(&self, index: usize, waker: &Waker) {
        if let Some(slot) = self.slots.get(index) {
            slot.waker.register(waker);
        }
    }

    /// The next transmission queued for worker `index`.
    pub fn take(&self, index: usize) -> Option<T> {
        let rx = &self.slots.get(index)?.rx;
        // Asked once per round of every worker, nearly always empty: two
        // loads rather than a full `try_recv`. A post that this misses wakes
        // the registered task after it is queued.
        if rx.is_empty() {
            return None;
        }
        rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::packet::{Proto, Transmit};
    use bytes::Bytes;

    fn transmit(n: u8) -> Transmit {
        Transmit {
            data: Bytes::from(vec![n]),
            dst: "127.0.0.1:5060".parse().unwrap(),
            proto: Proto::Tcp,
            socket: None,
            local: None,
            conn: None,
            flags: Default::default(),
        }
    }

    #[test]
    fn bounded_and_in_order() {
        let m: Mailboxes<Transmit> = Mailboxes::new(2);
        for i in 0..QUEUE {
            assert!(m.post(1, transmit(i as u8)).is_ok());
        }
        assert!(m.post(1, transmit(0)).is_err(), "full queue refuses");
        assert!(m.post(7, transmit(0)).is_err(), "no such worker");
        assert_eq!(m.take(1).unwrap().data[0], 0);
        assert_eq!(m.take(1).unwrap().data[0], 1);
        assert!(m.take(0).is_none());
    }
}
