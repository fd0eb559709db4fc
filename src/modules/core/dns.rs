//! Host names in next hops (`$du`, the Request-URI, `t_relay("host", port)`,
//! a reply's Via without `received`): resolved through a [`Lookup`] the
//! runtime supplies (ringsip's own DNS client, `runtime::dns`), with a cache
//! shared by every core.
//!
//! RFC 3263 §4 server location, as Kamailio 5.6 does it (checked live): a
//! host that is a name and has no port is looked up as SRV first
//! (`_sip._udp.NAME`, `_sip._tcp.NAME`, `_sips._tcp.NAME` for TLS or a
//! `sips:` URI), with `dns_try_naptr=yes` as NAPTR before that when the URI
//! names no transport; no SRV record, or none whose target resolves, falls
//! back to the name's own A record and the transport's default port. A name
//! with a port, or an address literal, is never looked up as SRV.
//!
//! SRV order: priority, then the higher weight first, then as the server
//! listed them (Kamailio's sort); with `dns_srv_lb` and `use_dns_failover`
//! both on, RFC 2782's weighted random choice inside each priority (Kamailio
//! weighs only on its failover path, checked live). The first target that
//! resolves is used; with `use_dns_failover=yes` every target's addresses,
//! in that order, are what tm tries next.
//!
//! Like Kamailio's, a lookup that misses the cache blocks the worker that
//! asked; answers are kept for their TTL (clamped by `dns_cache_min_ttl` /
//! `dns_cache_max_ttl`), failures for `dns_cache_negative_ttl` (60 s).
//!
//! What an attacker controls (a Request-URI host) can at most cost one lookup
//! per distinct name per negative TTL; names that are not syntactically host
//! names are refused without a lookup, and the cache and every answer are
//! bounded.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub use super::dns_wire::{Naptr, Srv};
use crate::sip::Proto;

/// What one question found: the records, and how long they may be kept
/// (`None`: the resolver's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<T> {
    pub records: Vec<T>,
    pub ttl: Option<u32>,
}

impl<T> Found<T> {
    /// Nothing found (and nothing to remember longer than a failure).
    pub fn none() -> Found<T> {
        Found {
            records: Vec::new(),
            ttl: None,
        }
    }
}

/// Answers DNS questions for the resolver (the runtime's client, or a test's
/// table). Only `lookup` is required: a source without SRV or NAPTR says
/// there are none, and the resolver falls back to addresses.
pub trait Lookup: Send + Sync {
    /// The addresses of `name` (A, and AAAA when the source gives them).
    fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>>;

    /// [`lookup`](Self::lookup) with the TTL of the answer.
    fn addrs(&self, name: &str) -> io::Result<Found<IpAddr>> {
        self.lookup(name)
            .map(|records| Found { records, ttl: None })
    }

    /// The SRV records of `name` (`_sip._udp.example.com`); none is `Ok`.
    fn srv(&self, _name: &str) -> io::Result<Found<Srv>> {
        Ok(Found::none())
    }

    /// The NAPTR records of `name`; none is `Ok`.
    fn naptr(&self, _name: &str) -> io::Result<Found<Naptr>> {
        Ok(Found::none())
    }
}

/// Most names kept; when full, expired entries go, then everything.
const MAX_ENTRIES: usize = 4096;
/// Candidate addresses of one SIP target at most (SRV targets × addresses).
pub const MAX_TARGETS: usize = 16;
/// SRV records and addresses used from one answer at most.
const MAX_RECORDS: usize = 32;

/// The core `dns_*` parameters the resolver follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// `dns_try_naptr`: NAPTR before SRV when the URI names no transport.
    pub try_naptr: bool,
    /// `dns_srv_lb`: weighted random order inside an SRV priority (with `failover` only).
    pub srv_lb: bool,
    /// `use_dns_failover`: tm tries the next address after a 503 or a timeout.
    pub failover: bool,
    /// `dns_try_ipv6`: AAAA after A (the client's business; kept here for it).
    pub try_ipv6: bool,
    /// `use_dns_cache`: answers are kept for their TTL.
    pub use_cache: bool,
    /// `dns_udp_pref` / `dns_tcp_pref` / `dns_tls_pref`: which NAPTR
    /// transport wins (higher first, -1: never), before NAPTR order.
    pub udp_pref: i32,
    pub tcp_pref: i32,
    pub tls_pref: i32,
    /// `dns_cache_min_ttl` / `dns_cache_max_ttl` / `dns_cache_negative_ttl`, seconds.
    pub min_ttl: u32,
    pub max_ttl: u32,
    pub negative_ttl: u32,
}

impl Default for DnsConfig {
    fn default() -> DnsConfig {
        DnsConfig {
            try_naptr: false,
            srv_lb: false,
            failover: false,
            try_ipv6: true,
            use_cache: true,
            udp_pref: 30,
            tcp_pref: 20,
            tls_pref: 10,
            min_ttl: 0,
            max_ttl: 86_400,
            negative_ttl: 60,
        }
    }
}

/// One candidate next hop found for a SIP URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SipTarget {
    pub addr: SocketAddr,
    pub proto: Proto,
}

#[derive(Clone)]
enum Cached {
    Addrs(Arc<[IpAddr]>),
    Srv(Arc<[Srv]>),
    Naptr(Arc<[Naptr]>),
}

impl Cached {
    fn is_empty(&self) -> bool {
        match self {
            Cached::Addrs(a) => a.is_empty(),
            Cached::Srv(s) => s.is_empty(),
            Cached::Naptr(n) => n.is_empty(),
        }
    }
}

/// What a cache entry answers (the index of its map).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Addrs,
    Srv,
    Naptr,
}

struct Entry {
    value: Cached,
    expires: Instant,
}

/// The shared resolver (one per process, in `Env::services`).
pub struct Resolver {
    lookup: Box<dyn Lookup>,
    /// One map per [`Kind`], looked up by the borrowed name.
    cache: [RwLock<HashMap<Box<str>, Entry>>; 3],
    ttl: Duration,
    config: DnsConfig,
    /// The generator of `dns_srv_lb`'s choices (xorshift, seeded).
    rng: AtomicU64,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached: usize = self
            .cache
            .iter()
            .map(|c| c.read().map_or(0, |c| c.len()))
            .sum();
        f.debug_struct("Resolver")
            .field("cached", &cached)
            .field("ttl", &self.ttl)
            .field("config", &self.config)
            .finish()
    }
}

impl Resolver {
    pub fn new(lookup: Box<dyn Lookup>) -> Resolver {
        Resolver {
            lookup,
            cache: Default::default(),
            ttl: Duration::from_secs(300),
            config: DnsConfig::default(),
            rng: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
        }
    }

    /// How long an answer without a TTL of its own is kept.
    pub fn ttl(mut self, ttl: Duration) -> Resolver {
        self.ttl = ttl;
        self
    }

    /// How long a failed lookup is remembered.
    pub fn negative_ttl(mut self, ttl: Duration) -> Resolver {
        self.config.negative_ttl = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
        self
    }

    /// The core parameters to follow.
    pub fn config(mut self, config: DnsConfig) -> Resolver {
        self.config = config;
        self
    }

    /// The seed of `dns_srv_lb`'s random choices.
    pub fn seed(self, seed: u64) -> Resolver {
        self.rng.store(seed | 1, Ordering::Relaxed);
        self
    }

    /// The parameters it follows.
    pub fn settings(&self) -> &DnsConfig {
        &self.config
    }

    /// `use_dns_failover=yes` (and a cache to fail over from).
    pub fn failover(&self) -> bool {
        self.config.failover
    }

    /// The addresses of `host` asked now, past the cache (start-up and
    /// reloads: dispatcher destinations), IPv4 first; empty if it does not resolve.
    pub fn resolve_uncached(&self, host: &[u8]) -> Vec<IpAddr> {
        let Some(name) = host_name(host) else {
            return Vec::new();
        };
        match self.lookup.addrs(&name) {
            Ok(found) => ordered(found.records),
            Err(e) => {
                log::warn!("cannot resolve {name:?}: {e}");
                Vec::new()
            }
        }
    }

    /// The addresses of `host` (a name, not a literal), IPv4 first; empty
    /// when it does not resolve or is not a host name.
    pub fn resolve(&self, host: &[u8], now: Instant) -> Arc<[IpAddr]> {
        let Some(name) = host_name(host) else {
            return Arc::from([]);
        };
        self.addrs_of(&name, now)
    }

    fn addrs_of(&self, name: &str, now: Instant) -> Arc<[IpAddr]> {
        let got = self.cached(Kind::Addrs, name, now, || {
            self.lookup
                .addrs(name)
                .map(|f| (Cached::Addrs(ordered(f.records).into()), f.ttl))
        });
        match got {
            Cached::Addrs(a) => a,
            _ => Arc::from([]),
        }
    }

    /// The candidate next hops of a SIP URI whose host is the name `host`
    /// and that has no port (RFC 3263 §4): `proto` is the transport the URI
    /// or the caller named (`None`: free, NAPTR may choose), `sips` whether
    /// the scheme is `sips:`. Ordered as they are to be tried; empty when
    /// nothing resolves. At most [`MAX_TARGETS`].
    pub fn sip_targets(
        &self,
        host: &[u8],
        proto: Option<Proto>,
        sips: bool,
        now: Instant,
    ) -> Vec<SipTarget> {
        let Some(name) = host_name(host) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if self.config.try_naptr && proto.is_none() {
            for (srv_name, p) in self.naptr_choices(&name, sips, now) {
                self.srv_targets(&srv_name, p, now, &mut out);
                if !out.is_empty() {
                    return out;
                }
            }
        }
        let proto = proto.unwrap_or(if sips { Proto::Tls } else { Proto::Udp });
        let prefix = match proto {
            _ if sips => "_sips._tcp.",
            Proto::Tls => "_sips._tcp.",
            Proto::Tcp => "_sip._tcp.",
            Proto::Udp => "_sip._udp.",
            // Kamailio looks up no SRV for web sockets (nor SCTP here).
            _ => "",
        };
        if !prefix.is_empty() {
            self.srv_targets(&format!("{prefix}{name}"), proto, now, &mut out);
        }
        if out.is_empty() {
            let port = if sips { 5061 } else { proto.default_port() };
            out.extend(
                self.addrs_of(&name, now)
                    .iter()
                    .take(MAX_TARGETS)
                    .map(|ip| SipTarget {
                        addr: SocketAddr::new(*ip, port),
                        proto,
                    }),
            );
        }
        out
    }

    /// The SRV targets of `srv_name` with their addresses, in order, appended to `out`.
    fn srv_targets(&self, srv_name: &str, proto: Proto, now: Instant, out: &mut Vec<SipTarget>) {
        let got = self.cached(Kind::Srv, srv_name, now, || {
            self.lookup.srv(srv_name).map(|mut f| {
                f.records.truncate(MAX_RECORDS);
                // Kamailio's order: priority, then the heavier first.
                f.records
                    .sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
                (Cached::Srv(f.records.into()), f.ttl)
            })
        });
        let Cached::Srv(records) = got else {
            return;
        };
        // Kamailio weighs SRV records only on its failover path: without
        // use_dns_failover, dns_srv_lb changes nothing (checked live).
        let order = match self.config.srv_lb && self.config.failover {
            true => weighted_order(&records, &mut || self.next_random()),
            false => (0..records.len()).collect(),
        };
        for i in order {
            let srv = &records[i];
            // "A Target of '.' means that the service is decidedly not available" (RFC 2782).
            if srv.target.is_empty() {
                continue;
            }
            let addrs = match crate::sip::host::parse_ip_bytes(srv.target.as_bytes()) {
                Some(ip) => Arc::from([ip]),
                None => self.addrs_of(&srv.target, now),
            };
            for ip in addrs.iter() {
                if out.len() >= MAX_TARGETS {
                    return;
                }
                out.push(SipTarget {
                    addr: SocketAddr::new(*ip, srv.port),
                    proto,
                });
            }
            // Only failover needs the next targets: Kamailio asks for their
            // addresses only then (checked live), so without it neither do we.
            if !out.is_empty() && !self.config.failover {
                return;
            }
        }
    }

    /// The NAPTR records of `name` usable for SIP (RFC 3263 §4.1: flag
    /// "s", services SIP+D2U/D2T/D2S or SIPS+D2T), as (SRV name, transport)
    /// in the order to try: the transport preference (`dns_*_pref`), then
    /// order and preference.
    fn naptr_choices(&self, name: &str, sips: bool, now: Instant) -> Vec<(String, Proto)> {
        let got = self.cached(Kind::Naptr, name, now, || {
            self.lookup.naptr(name).map(|mut f| {
                f.records.truncate(MAX_RECORDS);
                (Cached::Naptr(f.records.into()), f.ttl)
            })
        });
        let Cached::Naptr(records) = got else {
            return Vec::new();
        };
        let mut choices: Vec<(i32, u16, u16, String, Proto)> = records
            .iter()
            .filter(|n| n.flags.eq_ignore_ascii_case("s"))
            .filter_map(|n| {
                let proto = match n.services.to_ascii_uppercase().as_str() {
                    "SIP+D2U" if !sips => Proto::Udp,
                    "SIP+D2T" if !sips => Proto::Tcp,
                    "SIPS+D2T" => Proto::Tls,
                    _ => return None,
                };
                let pref = match proto {
                    Proto::Udp => self.config.udp_pref,
                    Proto::Tcp => self.config.tcp_pref,
                    _ => self.config.tls_pref,
                };
                (pref >= 0).then(|| (pref, n.order, n.preference, n.replacement.clone(), proto))
            })
            .collect();
        choices.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        choices.into_iter().map(|c| (c.3, c.4)).collect()
    }

    /// The cached answer to (`kind`, `name`), else `ask` now (and keep it).
    fn cached(
        &self,
        kind: Kind,
        name: &str,
        now: Instant,
        ask: impl FnOnce() -> io::Result<(Cached, Option<u32>)>,
    ) -> Cached {
        if self.config.use_cache {
            if let Some(e) = self.cache[kind as usize].read().ok().and_then(|c| {
                c.get(name)
                    .filter(|e| e.expires > now)
                    .map(|e| e.value.clone())
            }) {
                return e;
            }
        }
        let (value, ttl) = match ask() {
            Ok(found) => found,
            Err(e) => {
                log::warn!("cannot resolve {name:?}: {e}");
                (
                    match kind {
                        Kind::Addrs => Cached::Addrs(Arc::from([])),
                        Kind::Srv => Cached::Srv(Arc::from([])),
                        Kind::Naptr => Cached::Naptr(Arc::from([])),
                    },
                    None,
                )
            }
        };
        if !self.config.use_cache {
            return value;
        }
        let ttl = match (value.is_empty(), ttl) {
            (true, _) => Duration::from_secs(u64::from(self.config.negative_ttl)),
            (false, None) => self.ttl,
            (false, Some(t)) => Duration::from_secs(u64::from(t.clamp(
                self.config.min_ttl,
                self.config.max_ttl.max(self.config.min_ttl),
            ))),
        };
        if let Ok(mut cache) = self.cache[kind as usize].write() {
            if cache.len() >= MAX_ENTRIES {
                cache.retain(|_, e| e.expires > now);
                if cache.len() >= MAX_ENTRIES {
                    cache.clear();
                }
            }
            cache.insert(
                Box::from(name),
                Entry {
                    value: value.clone(),
                    expires: now + ttl,
                },
            );
        }
        value
    }

    fn next_random(&self) -> u64 {
        // xorshift64*: shared by the cores, a lost update only repeats a number.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// RFC 2782's selection: inside each priority (records sorted by priority
/// already), repeatedly pick one at random with a chance proportional to
/// its weight (zero weights a small chance: they sort first and win when the
/// draw is 0). Returns indices into `records`.
fn weighted_order(records: &[Srv], random: &mut dyn FnMut() -> u64) -> Vec<usize> {
    let mut order = Vec::with_capacity(records.len());
    let mut start = 0;
    while start < records.len() {
        let prio = records[start].priority;
        let end = records[start..]
            .iter()
            .position(|s| s.priority != prio)
            .map_or(records.len(), |n| start + n);
        // Zero weights first, as RFC 2782 asks before the running sums.
        let mut group: Vec<usize> = (start..end).collect();
        group.sort_by_key(|&i| records[i].weight != 0);
        while !group.is_empty() {
            let sum: u64 = group.iter().map(|&i| u64::from(records[i].weight)).sum();
            let draw = random() % (sum + 1);
            let mut running = 0u64;
            let pick = group
                .iter()
                .position(|&i| {
                    running += u64::from(records[i].weight);
                    running >= draw
                })
                .unwrap_or(0);
            order.push(group.remove(pick));
        }
        start = end;
    }
    order
}

/// IPv4 first (Kamailio asks A before AAAA), each family in
/// the resolver's order, without repeats.
fn ordered(mut found: Vec<IpAddr>) -> Vec<IpAddr> {
    found.truncate(MAX_RECORDS * 2);
    found.sort_by_key(|a| a.is_ipv6());
    let mut seen = Vec::with_capacity(found.len());
    found.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
    found
}

/// `host` lower-cased without a trailing dot, if it is a host name
/// (RFC 3261 §25.1 `hostname`: labels of letters, digits and `-`, at most
/// 253 characters in all), else `None`.
pub fn host_name(host: &[u8]) -> Option<String> {
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let labels_ok = host.split(|&b| b == b'.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-')
            && label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    });
    // A top label of digits only would be a (bad) IPv4 literal, not a name.
    let top_alpha = host
        .rsplit(|&b| b == b'.')
        .next()
        .is_some_and(|top| top.iter().any(|b| b.is_ascii_alphabetic()));
    (labels_ok && top_alpha).then(|| String::from_utf8_lossy(host).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::modules::testutil::some_instant;

    /// Answers from a table and counts the lookups.
    #[derive(Default)]
    struct Table {
        names: Mutex<HashMap<String, Vec<IpAddr>>>,
        asked: AtomicUsize,
    }

    impl Lookup for Arc<Table> {
        fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            self.names
                .lock()
                .unwrap()
                .get(name)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"))
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    fn resolver() -> (Resolver, Arc<Table>) {
        let table = Arc::new(Table::default());
        table.names.lock().unwrap().insert(
            "gw.example.com".into(),
            ips(&["2001:db8::5", "192.0.2.5", "192.0.2.5", "192.0.2.6"]),
        );
        (Resolver::new(Box::new(table.clone())), table)
    }

    #[test]
    fn names_resolve_ipv4_first_and_are_cached_until_their_ttl() {
        let (r, table) = resolver();
        let t0 = some_instant();
        let want = ips(&["192.0.2.5", "192.0.2.6", "2001:db8::5"]);
        assert_eq!(&*r.resolve(b"GW.Example.com", t0), want.as_slice());
        assert_eq!(&*r.resolve(b"gw.example.com.", t0), want.as_slice());
        assert_eq!(
            table.asked.load(Ordering::Relaxed),
            1,
            "second from the cache"
        );
        r.resolve(b"gw.example.com", t0 + Duration::from_secs(301));
        assert_eq!(
            table.asked.load(Ordering::Relaxed),
            2,
            "expired: asked again"
        );
    }

    #[test]
    fn failures_are_remembered_for_the_negative_ttl() {
        let (r, table) = resolver();
        let t0 = some_instant();
        assert!(r.resolve(b"nowhere.example.com", t0).is_empty());
        assert!(r
            .resolve(b"nowhere.example.com", t0 + Duration::from_secs(59))
            .is_empty());
        assert_eq!(table.asked.load(Ordering::Relaxed), 1);
        table
            .names
            .lock()
            .unwrap()
            .insert("nowhere.example.com".into(), ips(&["192.0.2.9"]));
        let later = r.resolve(b"nowhere.example.com", t0 + Duration::from_secs(61));
        assert_eq!(&*later, ips(&["192.0.2.9"]).as_slice());
    }

    #[test]
    fn what_is_not_a_host_name_is_never_looked_up() {
        let (r, table) = resolver();
        let now = some_instant();
        for bad in [
            &b""[..],
            b"-bad.example.com",
            b"bad-.example.com",
            b"a..b",
            b"in valid",
            b"x%41.example.com",
            b"10.0.0.300",
            b"1.2.3",
            &[b'a'; 254],
        ] {
            assert!(
                r.resolve(bad, now).is_empty(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(table.asked.load(Ordering::Relaxed), 0);
    }

    /// SRV and NAPTR answers from a table, counting the questions.
    #[derive(Default)]
    struct Zone {
        srv: HashMap<String, Vec<Srv>>,
        naptr: HashMap<String, Vec<Naptr>>,
        addrs: HashMap<String, Vec<IpAddr>>,
        asked: Mutex<Vec<String>>,
    }

    impl Lookup for Arc<Zone> {
        fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>> {
            self.asked.lock().unwrap().push(format!("A {name}"));
            Ok(self.addrs.get(name).cloned().unwrap_or_default())
        }
        fn srv(&self, name: &str) -> io::Result<Found<Srv>> {
            self.asked.lock().unwrap().push(format!("SRV {name}"));
            Ok(Found {
                records: self.srv.get(name).cloned().unwrap_or_default(),
                ttl: Some(30),
            })
        }
        fn naptr(&self, name: &str) -> io::Result<Found<Naptr>> {
            self.asked.lock().unwrap().push(format!("NAPTR {name}"));
            Ok(Found {
                records: self.naptr.get(name).cloned().unwrap_or_default(),
                ttl: None,
            })
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn zone() -> Arc<Zone> {
        let mut z = Zone::default();
        z.srv.insert(
            "_sip._udp.example.test".into(),
            vec![
                srv(20, 50, 5080, "c.example.test"),
                srv(10, 10, 5070, "b.example.test"),
                srv(10, 90, 5090, "d.example.test"),
            ],
        );
        z.srv.insert(
            "_sip._tcp.example.test".into(),
            vec![srv(10, 0, 5071, "b.example.test")],
        );
        z.srv.insert(
            "_sips._tcp.example.test".into(),
            vec![srv(10, 0, 5072, "b.example.test")],
        );
        for (n, a) in [
            ("b.example.test", "127.0.0.10"),
            ("c.example.test", "127.0.0.11"),
            ("d.example.test", "127.0.0.13"),
            ("example.test", "127.0.0.12"),
            ("nosrv.test", "127.0.0.14"),
        ] {
            z.addrs.insert(n.into(), ips(&[a]));
        }
        Arc::new(z)
    }

    fn addrs(t: &[SipTarget]) -> Vec<String> {
        t.iter()
            .map(|t| format!("{}/{}", t.proto, t.addr))
            .collect()
    }

    #[test]
    fn srv_targets_come_by_priority_then_heavier_weight() {
        let z = zone();
        let r = Resolver::new(Box::new(z.clone())).config(DnsConfig {
            failover: true,
            ..DnsConfig::default()
        });
        let now = some_instant();
        let t = r.sip_targets(b"Example.test", None, false, now);
        assert_eq!(
            addrs(&t),
            [
                "udp/127.0.0.13:5090",
                "udp/127.0.0.10:5070",
                "udp/127.0.0.11:5080"
            ]
        );
        // Without failover only the first target's address is asked for.
        let z1 = zone();
        let plain = Resolver::new(Box::new(z1.clone()));
        let t = plain.sip_targets(b"example.test", None, false, now);
        assert_eq!(addrs(&t), ["udp/127.0.0.13:5090"]);
        assert_eq!(
            *z1.asked.lock().unwrap(),
            ["SRV _sip._udp.example.test", "A d.example.test"]
        );
        // The second time from the cache (SRV TTL 30 s).
        let before = z.asked.lock().unwrap().len();
        r.sip_targets(b"example.test", None, false, now + Duration::from_secs(29));
        assert_eq!(z.asked.lock().unwrap().len(), before);
        r.sip_targets(b"example.test", None, false, now + Duration::from_secs(31));
        assert!(z.asked.lock().unwrap().len() > before, "SRV TTL honoured");
    }

    #[test]
    fn the_transport_picks_the_srv_name() {
        let r = Resolver::new(Box::new(zone()));
        let now = some_instant();
        let tcp = r.sip_targets(b"example.test", Some(Proto::Tcp), false, now);
        assert_eq!(addrs(&tcp), ["tcp/127.0.0.10:5071"]);
        let sips = r.sip_targets(b"example.test", None, true, now);
        assert_eq!(addrs(&sips), ["tls/127.0.0.10:5072"]);
        let tls = r.sip_targets(b"example.test", Some(Proto::Tls), false, now);
        assert_eq!(addrs(&tls), ["tls/127.0.0.10:5072"]);
    }

    #[test]
    fn no_srv_falls_back_to_the_address_and_default_port() {
        let z = zone();
        let r = Resolver::new(Box::new(z.clone()));
        let t = r.sip_targets(b"nosrv.test", None, false, some_instant());
        assert_eq!(addrs(&t), ["udp/127.0.0.14:5060"]);
        assert_eq!(
            *z.asked.lock().unwrap(),
            ["SRV _sip._udp.nosrv.test", "A nosrv.test"]
        );
        let t = r.sip_targets(b"nosrv.test", None, true, some_instant());
        assert_eq!(addrs(&t), ["tls/127.0.0.14:5061"]);
        assert!(r
            .sip_targets(b"nowhere.test", None, false, some_instant())
            .is_empty());
    }

    #[test]
    fn naptr_is_asked_only_when_enabled_and_no_transport_is_named() {
        let mut z = Arc::into_inner(zone()).unwrap();
        let naptr = |order, services: &str, repl: &str| Naptr {
            order,
            preference: 50,
            flags: "s".into(),
            services: services.into(),
            regexp: String::new(),
            replacement: repl.into(),
        };
        z.naptr.insert(
            "example.test".into(),
            vec![
                naptr(20, "SIP+D2U", "_sip._udp.example.test"),
                naptr(10, "SIP+D2T", "_sip._tcp.example.test"),
                naptr(5, "E2U+sip", "_x.example.test"),
            ],
        );
        let z = Arc::new(z);
        let now = some_instant();
        let off = Resolver::new(Box::new(z.clone()));
        off.sip_targets(b"example.test", None, false, now);
        assert!(!z
            .asked
            .lock()
            .unwrap()
            .iter()
            .any(|q| q.starts_with("NAPTR")));
        let cfg = |udp_pref| DnsConfig {
            try_naptr: true,
            udp_pref,
            ..DnsConfig::default()
        };
        // Kamailio's default preferences put UDP (30) before TCP (20),
        // whatever the NAPTR order (checked live).
        let on = Resolver::new(Box::new(z.clone())).config(cfg(30));
        let t = on.sip_targets(b"example.test", None, false, now);
        assert_eq!(t[0].addr.port(), 5090);
        // Equal preferences: NAPTR order decides.
        let eq = Resolver::new(Box::new(z.clone())).config(cfg(20));
        let t = eq.sip_targets(b"example.test", None, false, now);
        assert_eq!(addrs(&t), ["tcp/127.0.0.10:5071"]);
        // A named transport skips NAPTR.
        z.asked.lock().unwrap().clear();
        eq.sip_targets(b"example.test", Some(Proto::Udp), false, now);
        assert!(!z
            .asked
            .lock()
            .unwrap()
            .iter()
            .any(|q| q.starts_with("NAPTR")));
    }

    #[test]
    fn weighted_order_follows_the_weights_and_keeps_priorities() {
        let records = [srv(10, 10, 1, "a"), srv(10, 90, 2, "b"), srv(20, 0, 3, "c")];
        let mut x = 7u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut b_first = 0;
        for _ in 0..1000 {
            let order = weighted_order(&records, &mut rnd);
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], 2, "the lower priority always last");
            b_first += usize::from(order[0] == 1);
        }
        assert!((850..=950).contains(&b_first), "{b_first}");
    }

    #[test]
    fn srv_lb_spreads_calls_over_equal_weights() {
        let mut z = Arc::into_inner(zone()).unwrap();
        z.srv.insert(
            "_sip._udp.example.test".into(),
            vec![
                srv(10, 50, 5070, "b.example.test"),
                srv(10, 50, 5080, "c.example.test"),
            ],
        );
        let z = Arc::new(z);
        let on_first = |failover| {
            let r = Resolver::new(Box::new(z.clone()))
                .config(DnsConfig {
                    srv_lb: true,
                    failover,
                    ..DnsConfig::default()
                })
                .seed(42);
            let now = some_instant();
            (0..200)
                .filter(|_| {
                    r.sip_targets(b"example.test", None, false, now)[0]
                        .addr
                        .port()
                        == 5070
                })
                .count()
        };
        let on_b = on_first(true);
        assert!((60..=140).contains(&on_b), "{on_b}");
        // Without use_dns_failover Kamailio keeps the sorted order.
        assert_eq!(on_first(false), 200);
    }

    #[test]
    fn without_the_cache_every_call_asks() {
        let z = zone();
        let r = Resolver::new(Box::new(z.clone())).config(DnsConfig {
            use_cache: false,
            ..DnsConfig::default()
        });
        let now = some_instant();
        r.sip_targets(b"nosrv.test", None, false, now);
        r.sip_targets(b"nosrv.test", None, false, now);
        assert_eq!(z.asked.lock().unwrap().len(), 4);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let (r, _) = resolver();
        let now = some_instant();
        for i in 0..(MAX_ENTRIES + 10) {
            r.resolve(format!("n{i}.example.com").as_bytes(), now);
        }
        assert!(r.cache[Kind::Addrs as usize].read().unwrap().len() <= MAX_ENTRIES);
    }
}
