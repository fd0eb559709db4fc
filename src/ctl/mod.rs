//! JSON-RPC control socket, statistics and latency histograms (read-only view of the rest).
