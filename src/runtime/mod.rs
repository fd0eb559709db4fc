//! The only IO: per-core workers, the io_uring driver and its poll fallback,
//! sockets, connections, cross-core channels and the clock.
