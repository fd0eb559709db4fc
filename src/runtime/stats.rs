//! Counters of the stream transports and of the cross-core hand-off, shared
//! by the workers (relaxed atomics: each is written by whichever core had
//! the event, read for logs, tests and the control socket).

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! stream_stats {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// A snapshot of [`Server::stream_stats`](super::Server::stream_stats).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct StreamStats {
            $($(#[$doc])* pub $name: u64,)*
        }

        /// The live counters behind [`StreamStats`].
        #[derive(Debug, Default)]
        pub(super) struct Counters {
            $(pub $name: AtomicU64,)*
        }

        impl Counters {
            pub fn snapshot(&self) -> StreamStats {
                StreamStats {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

stream_stats! {
    /// Connections accepted on TCP and TLS listens.
    accepted,
    /// Connections accepted and closed at once: `tcp_max_connections` reached.
    refused_at_limit,
    /// Outgoing connections established.
    connected,
    /// Outgoing connections that failed or timed out while connecting.
    connect_failed,
    /// Connections open now (accepted and outgoing, all workers).
    open,
    /// TLS connections open now (counted in `open` too).
    tls_open,
    /// Messages framed and handed to the handler.
    messages_received,
    /// Messages queued for sending on a connection.
    messages_sent,
    /// CRLF CRLF keep-alives answered with CRLF (RFC 5626 §4.4.1).
    pings_answered,
    /// Connections closed because the stream could not be framed (no or bad
    /// Content-Length, headers or message too long).
    framing_errors,
    /// TLS handshakes or records that failed.
    tls_errors,
    /// Connections closed after `tcp_connection_lifetime` without traffic.
    closed_idle,
    /// Connections closed because a message did not complete within
    /// `tcp_msg_read_timeout`, or a send made no progress within `tcp_send_timeout`.
    closed_slow,
    /// Connections closed because their send queue overflowed.
    closed_overflow,
    /// Connections the peer closed or reset.
    closed_by_peer,
    /// Transmissions handed to the worker that owns their connection.
    handoffs,
    /// Hand-offs dropped because the owner's queue was full.
    handoffs_dropped,
    /// Messages dropped: no connection could be found or opened for them.
    unsent,
}

/// Shorthand: `bump(&stats.accepted)`.
pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
