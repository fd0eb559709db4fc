//! What each core records for the control socket: traffic counters and
//! latency histograms, in per-core atomics that only that core writes
//! (relaxed load + store, no lock, nothing allocated) and the control thread
//! reads and adds up on demand.
//!
//! Keys: a request is counted under its method ([`METHODS`], unknown ones
//! under `OTHER`), a reply under its class (`1xx`..`6xx`). Latency is the
//! time from a message's arrival (a datagram's kernel receive stamp, else
//! the start of the worker's round) to the moment its forwarded copy or
//! reply is handed to the socket, one record per message (see
//! `runtime::metered`). Script execution time is kept per route.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::histogram::{Histogram, Snapshot};

/// The methods counted by name; anything else is `OTHER`.
pub const METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "INFO",
    "PRACK",
    "UPDATE",
    "REFER",
    "OTHER",
];

/// Keys: the methods, then reply classes 1xx..6xx.
pub const KEYS: usize = METHODS.len() + 6;
const _: () = assert!(KEYS <= 32, "the keys of a round fit a u32 bit set");
const OTHER: usize = METHODS.len() - 1;

/// The key of a request method.
#[inline]
pub fn method_key(method: &[u8]) -> usize {
    // A match compiles to a switch on the length and one comparison, where
    // a search of METHODS would compare up to 14 names.
    match method {
        b"INVITE" => 0,
        b"ACK" => 1,
        b"BYE" => 2,
        b"CANCEL" => 3,
        b"REGISTER" => 4,
        b"OPTIONS" => 5,
        b"SUBSCRIBE" => 6,
        b"NOTIFY" => 7,
        b"PUBLISH" => 8,
        b"MESSAGE" => 9,
        b"INFO" => 10,
        b"PRACK" => 11,
        b"UPDATE" => 12,
        b"REFER" => 13,
        _ => OTHER,
    }
}

/// The key of a reply status code (codes outside 100..=699 count as 6xx).
pub fn reply_key(code: u16) -> usize {
    METHODS.len() + usize::from((code / 100).clamp(1, 6) - 1)
}

/// The name of a key: `INVITE`, …, `OTHER`, `1xx`, …, `6xx`.
pub fn key_name(key: usize) -> String {
    match METHODS.get(key) {
        Some(m) => (*m).to_string(),
        None => format!("{}xx", key - METHODS.len() + 1),
    }
}

/// The key of a SIP message from its first bytes (no parsing beyond the
/// start line's first token): a request's method or a reply's class;
/// None for something that is neither (keep-alives, garbage).
#[inline]
pub fn classify(data: &[u8]) -> Option<usize> {
    if let Some(rest) = data.strip_prefix(b"SIP/2.0 ") {
        let d = rest.first().copied()?;
        if (b'1'..=b'6').contains(&d) {
            return Some(METHODS.len() + usize::from(d - b'1'));
        }
        return None;
    }
    // The longest method counted by name has 9 letters: look no further
    // (a plain scan of a few bytes is cheaper than memchr's set-up).
    let head = &data[..data.len().min(11)];
    let end = head.iter().position(|&b| b == b' ')?;
    if end == 0 {
        return None;
    }
    Some(method_key(&head[..end]))
}

/// What a message about to be sent is: `Some(reply key)` for a reply,
/// `None` for a request (its method is the one that came in).
#[inline]
pub fn reply_class_of(data: &[u8]) -> Option<usize> {
    match data {
        [b'S', b'I', b'P', b'/', b'2', b'.', b'0', b' ', d @ b'1'..=b'6', ..] => {
            Some(METHODS.len() + usize::from(d - b'1'))
        }
        _ => None,
    }
}

/// How a route is shown: `request_route`, `route[AUTH]`, `failure_route[X]`…
pub fn route_label(kind: crate::script::registry::RouteType, name: &str) -> String {
    use crate::script::registry::RouteType as T;
    let keyword = match kind {
        T::Request if name.is_empty() => return "request_route".into(),
        T::Request => "route",
        T::Failure => "failure_route",
        T::Branch => "branch_route",
        T::OnReply => "onreply_route",
        T::Reply => "reply_route",
        T::OnSend => "onsend_route",
        T::Event => "event_route",
    };
    match name {
        "" => keyword.to_string(),
        n => format!("{keyword}[{n}]"),
    }
}

/// A counter written by one core: plain load + store.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

macro_rules! gauges {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Counters the engine and the transaction table already keep per
        /// core, published by the core at the end of each busy round.
        #[derive(Debug, Default)]
        pub struct Published {
            $($(#[$doc])* pub $name: Counter,)*
        }

        impl Published {
            /// `(name, value)` of every one.
            pub fn values(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.get()),)*]
            }
        }
    };
}

gauges! {
    /// Messages that could not be parsed (dropped).
    parse_errors,
    /// Requests answered 400 or dropped for an unreadable essential header.
    bad_requests,
    /// Replies with no Via to route back on.
    unroutable_replies,
    /// ACKs to our own stateless replies, absorbed.
    absorbed_acks,
    /// Requests absorbed by their transaction (retransmissions).
    absorbed_requests,
    /// Replies handed to the core that owns their transaction.
    handoffs,
    /// Transactions alive now.
    tm_active,
    /// Transactions created.
    tm_created,
    /// Transactions freed.
    tm_freed,
    /// Client branches created.
    tm_branches,
    /// Retransmissions sent on a timer.
    tm_retransmissions,
    /// Retransmitted requests absorbed.
    tm_absorbed_requests,
    /// Replies absorbed (100, duplicates, late).
    tm_absorbed_replies,
    /// Replies relayed upstream.
    tm_relayed,
    /// Replies generated by tm.
    tm_local_replies,
    /// Branches ended on a timer (local 408).
    tm_timeouts,
    /// CANCELs sent downstream.
    tm_cancels_sent,
    /// Final replies sent upstream, 2xx..6xx.
    tm_finals_2xx,
    tm_finals_3xx,
    tm_finals_4xx,
    tm_finals_5xx,
    tm_finals_6xx,
}

/// One core's counters and histograms.
#[derive(Debug)]
pub struct CoreMetrics {
    /// Messages received, by key.
    pub received: [Counter; KEYS],
    /// Requests forwarded (a request came in and requests went out), by method.
    pub forwarded_requests: [Counter; KEYS],
    /// Replies generated here for a received request, by class.
    pub local_replies: [Counter; KEYS],
    /// Replies forwarded (a reply came in and went out), by class.
    pub forwarded_replies: [Counter; KEYS],
    /// Messages that produced nothing to send.
    pub silent: Counter,
    /// Arrival → hand-off to the socket, by key of the received message.
    pub latency: Box<[Histogram]>,
    /// Script execution time, by route id.
    pub routes: Box<[Histogram]>,
    pub published: Published,
}

impl CoreMetrics {
    pub fn new(routes: usize) -> CoreMetrics {
        CoreMetrics {
            received: Default::default(),
            forwarded_requests: Default::default(),
            local_replies: Default::default(),
            forwarded_replies: Default::default(),
            silent: Counter::default(),
            latency: (0..KEYS).map(|_| Histogram::new()).collect(),
            routes: (0..routes).map(|_| Histogram::new()).collect(),
            published: Published::default(),
        }
    }

    /// Script time of `route` (ignored for an unknown route).
    #[inline]
    pub fn route_time(&self, route: u32, ns: u64) {
        if let Some(h) = self.routes.get(route as usize) {
            h.record(ns);
        }
    }
}

/// Every core's metrics, and the baselines that resets leave behind.
#[derive(Debug)]
pub struct Metrics {
    cores: Box<[CoreMetrics]>,
    /// Route names by route id.
    route_names: Vec<String>,
    /// Time one in this many messages' scripts (0: never). Changed live by `cfg.set`.
    pub script_sample: AtomicU32,
    latency_base: Mutex<Option<LatencySnapshot>>,
    counter_base: Mutex<Option<CounterSnapshot>>,
}

/// Default for [`Metrics::script_sample`]: two clock reads per route run,
/// paid by one message in 16.
pub const DEFAULT_SCRIPT_SAMPLE: u32 = 16;

/// Every histogram, merged over the cores.
#[derive(Clone, Debug, Default)]
pub struct LatencySnapshot {
    /// By key (see [`key_name`]).
    pub by_key: Vec<Snapshot>,
    /// By route id.
    pub by_route: Vec<Snapshot>,
}

impl LatencySnapshot {
    /// All keys together.
    pub fn total(&self) -> Snapshot {
        let mut t = Snapshot::default();
        for s in &self.by_key {
            t.merge(s);
        }
        t
    }
}

/// One of the by-key counter arrays of a core.
type PerKey = fn(&CoreMetrics) -> &[Counter; KEYS];

/// Every counter, merged over the cores: name → value.
pub type CounterSnapshot = Vec<(String, u64)>;

impl Metrics {
    pub fn new(cores: usize, route_names: Vec<String>) -> Metrics {
        let routes = route_names.len();
        Metrics {
            cores: (0..cores.max(1))
                .map(|_| CoreMetrics::new(routes))
                .collect(),
            route_names,
            script_sample: AtomicU32::new(DEFAULT_SCRIPT_SAMPLE),
            latency_base: Mutex::new(None),
            counter_base: Mutex::new(None),
        }
    }

    pub fn cores(&self) -> &[CoreMetrics] {
        &self.cores
    }

    /// Core `i`'s metrics (the last core's for an index out of range).
    pub fn core(&self, i: usize) -> &CoreMetrics {
        &self.cores[i.min(self.cores.len() - 1)]
    }

    pub fn route_names(&self) -> &[String] {
        &self.route_names
    }

    fn raw_latency(&self) -> LatencySnapshot {
        let mut by_key = vec![Snapshot::default(); KEYS];
        let mut by_route = vec![Snapshot::default(); self.route_names.len()];
        for core in self.cores.iter() {
            for (m, h) in by_key.iter_mut().zip(core.latency.iter()) {
                m.merge(&h.snapshot());
            }
            for (m, h) in by_route.iter_mut().zip(core.routes.iter()) {
                m.merge(&h.snapshot());
            }
        }
        LatencySnapshot { by_key, by_route }
    }

    /// The histograms merged over the cores, since the last [`reset_latency`](Self::reset_latency).
    pub fn latency(&self) -> LatencySnapshot {
        let raw = self.raw_latency();
        let base = lock(&self.latency_base);
        match base.as_ref() {
            None => raw,
            Some(b) => LatencySnapshot {
                by_key: since_all(&raw.by_key, &b.by_key),
                by_route: since_all(&raw.by_route, &b.by_route),
            },
        }
    }

    /// Starts the histograms afresh (`latency.reset`).
    pub fn reset_latency(&self) {
        for core in self.cores.iter() {
            for h in core.latency.iter().chain(core.routes.iter()) {
                h.reset_max();
            }
        }
        *lock(&self.latency_base) = Some(self.raw_latency());
    }

    /// Every traffic counter, `group:name`-style names without the group
    /// (`rcv_requests_invite`, `fwd_replies_2xx`…), merged over the cores.
    fn raw_counters(&self) -> CounterSnapshot {
        let mut out: CounterSnapshot = Vec::new();
        let sum = |f: &dyn Fn(&CoreMetrics) -> u64| self.cores.iter().map(f).sum::<u64>();
        let kinds: [(&str, &str, PerKey); 4] = [
            ("rcv_requests", "rcv_replies", |c| &c.received),
            ("fwd_requests", "", |c| &c.forwarded_requests),
            ("", "local_replies", |c| &c.local_replies),
            ("", "fwd_replies", |c| &c.forwarded_replies),
        ];
        for (req_name, rpl_name, field) in kinds {
            if !req_name.is_empty() {
                let total = sum(&|c| field(c)[..METHODS.len()].iter().map(Counter::get).sum());
                out.push((req_name.to_string(), total));
                for (k, m) in METHODS.iter().enumerate() {
                    let v = sum(&|c| field(c)[k].get());
                    out.push((format!("{req_name}_{}", m.to_ascii_lowercase()), v));
                }
            }
            if !rpl_name.is_empty() {
                let total = sum(&|c| field(c)[METHODS.len()..].iter().map(Counter::get).sum());
                out.push((rpl_name.to_string(), total));
                for class in 0..6 {
                    let v = sum(&|c| field(c)[METHODS.len() + class].get());
                    out.push((format!("{rpl_name}_{}xx", class + 1), v));
                }
            }
        }
        out.push(("silent_messages".into(), sum(&|c| c.silent.get())));
        let mut published: Vec<(&'static str, u64)> = Vec::new();
        for core in self.cores.iter() {
            for (i, (name, v)) in core.published.values().into_iter().enumerate() {
                match published.get_mut(i) {
                    Some(slot) => slot.1 += v,
                    None => published.push((name, v)),
                }
            }
        }
        out.extend(published.into_iter().map(|(n, v)| (n.to_string(), v)));
        out
    }

    /// The counters since the last [`reset_counters`](Self::reset_counters);
    /// `tm_active` is a level and is never reset.
    pub fn counters(&self) -> CounterSnapshot {
        let mut raw = self.raw_counters();
        if let Some(base) = lock(&self.counter_base).as_ref() {
            for ((name, v), (_, b)) in raw.iter_mut().zip(base.iter()) {
                if name != "tm_active" {
                    *v = v.saturating_sub(*b);
                }
            }
        }
        raw
    }

    /// `stats.reset_statistics`.
    pub fn reset_counters(&self) {
        *lock(&self.counter_base) = Some(self.raw_counters());
    }
}

fn since_all(now: &[Snapshot], base: &[Snapshot]) -> Vec<Snapshot> {
    now.iter()
        .enumerate()
        .map(|(i, s)| match base.get(i) {
            Some(b) => s.since(b),
            None => s.clone(),
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests_and_replies() {
        assert_eq!(classify(b"INVITE sip:a@b SIP/2.0\r\n"), Some(0));
        assert_eq!(classify(b"OPTIONS sip:a@b SIP/2.0\r\n"), Some(5));
        assert_eq!(classify(b"FOO sip:a@b SIP/2.0\r\n"), Some(OTHER));
        assert_eq!(
            classify(b"SIP/2.0 200 OK\r\n").map(key_name),
            Some("2xx".into())
        );
        assert_eq!(
            classify(b"SIP/2.0 486 Busy\r\n").map(key_name),
            Some("4xx".into())
        );
        assert_eq!(classify(b"SIP/2.0 999 x\r\n"), None);
        assert_eq!(classify(b"\r\n\r\n"), None);
        assert_eq!(classify(b""), None);
        assert_eq!(classify(b" x"), None);
        assert_eq!(classify(b"SIP/2.0 "), None);
        assert_eq!(classify(b"SUBSCRIBE sip:x SIP/2.0"), Some(6));
        assert_eq!(classify(b"VERYLONGMETHOD sip:x SIP/2.0"), None);
        assert_eq!(reply_class_of(b"SIP/2.0 180 Ringing"), Some(reply_key(180)));
        assert_eq!(reply_class_of(b"INVITE sip:x SIP/2.0"), None);
        assert_eq!(reply_class_of(b"SIP/2.0"), None);
        assert_eq!(reply_key(180), METHODS.len());
        assert_eq!(reply_key(0), METHODS.len());
        assert_eq!(reply_key(999), METHODS.len() + 5);
        for (k, m) in METHODS.iter().enumerate() {
            assert_eq!(method_key(m.as_bytes()), k, "{m}");
        }
    }

    #[test]
    fn counters_merge_cores_and_reset_by_baseline() {
        let m = Metrics::new(2, vec!["request_route".into()]);
        m.core(0).received[0].add(3);
        m.core(1).received[0].add(4);
        m.core(1).received[reply_key(200)].add(2);
        m.core(0).published.tm_active.set(5);
        let get = |m: &Metrics, n: &str| m.counters().iter().find(|(k, _)| k == n).unwrap().1;
        assert_eq!(get(&m, "rcv_requests"), 7);
        assert_eq!(get(&m, "rcv_requests_invite"), 7);
        assert_eq!(get(&m, "rcv_replies_2xx"), 2);
        assert_eq!(get(&m, "tm_active"), 5);
        m.reset_counters();
        assert_eq!(get(&m, "rcv_requests"), 0);
        assert_eq!(get(&m, "tm_active"), 5, "a level is not reset");
        m.core(1).received[0].add(1);
        assert_eq!(get(&m, "rcv_requests_invite"), 1);
    }

    #[test]
    fn latency_merges_and_resets() {
        let m = Metrics::new(2, vec!["request_route".into()]);
        m.core(0).latency[0].record_n(10_000, 3);
        m.core(1).latency[0].record_n(20_000, 1);
        m.core(1).route_time(0, 500);
        m.core(1).route_time(9, 500); // unknown route: ignored
        let l = m.latency();
        assert_eq!(l.by_key[0].count(), 4);
        assert_eq!(l.total().count(), 4);
        assert_eq!(l.by_route[0].count(), 1);
        m.reset_latency();
        assert_eq!(m.latency().total().count(), 0);
        m.core(0).latency[1].record(7_000);
        let l = m.latency();
        assert_eq!(l.by_key[1].count(), 1);
        assert_eq!(l.by_key[1].max, 7_000);
    }
}
