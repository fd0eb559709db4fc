//! Host names in next hops (`$du`, the Request-URI, `t_relay("host", port)`,
//! a reply's Via without `received`): resolved to addresses through a
//! [`Lookup`] the runtime supplies (the system resolver: `/etc/hosts`, then
//! DNS, as `nsswitch.conf` says), with a cache shared by every core.
//!
//! Like Kamailio's, a lookup that misses the cache blocks the worker that
//! asked; the cache keeps answers for [`Resolver::ttl`] and failures for
//! [`Resolver::negative_ttl`] (Kamailio's `dns_neg_cache_ttl`, 60 s), so a
//! busy name costs one lookup a minute. Only A/AAAA: no NAPTR or SRV
//! (RFC 3263 §4.1–4.2); a URI without a port gets the transport's default.
//!
//! What an attacker controls (a Request-URI host) can at most cost one lookup
//! per distinct name per minute; names that are not syntactically host names
//! are refused without a lookup, and the cache is bounded.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Resolves one host name to its addresses (the runtime's, or a test's).
pub trait Lookup: Send + Sync {
    fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>>;
}

/// Most names kept; when full, expired entries go, then everything.
const MAX_ENTRIES: usize = 4096;

struct Entry {
    addrs: Arc<[IpAddr]>,
    expires: Instant,
}

/// The shared resolver (one per process, in `Env::services`).
pub struct Resolver {
    lookup: Box<dyn Lookup>,
    cache: RwLock<HashMap<Box<str>, Entry>>,
    ttl: Duration,
    negative_ttl: Duration,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.read().map_or(0, |c| c.len());
        f.debug_struct("Resolver")
            .field("cached", &cached)
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .finish()
    }
}

impl Resolver {
    pub fn new(lookup: Box<dyn Lookup>) -> Resolver {
        Resolver {
            lookup,
            cache: RwLock::new(HashMap::new()),
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(60),
        }
    }

    /// How long an answer is kept (the system resolver gives no TTL).
    pub fn ttl(mut self, ttl: Duration) -> Resolver {
        self.ttl = ttl;
        self
    }

    /// How long a failed lookup is remembered.
    pub fn negative_ttl(mut self, ttl: Duration) -> Resolver {
        self.negative_ttl = ttl;
        self
    }

    /// The addresses of `host` asked now, past the cache (start-up and
    /// reloads: dispatcher destinations), IPv4 first; empty if it does not resolve.
    pub fn resolve_uncached(&self, host: &[u8]) -> Vec<IpAddr> {
        let Some(name) = host_name(host) else {
            return Vec::new();
        };
        match self.lookup.lookup(&name) {
            Ok(found) => ordered(found),
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
        if let Some(e) = self.cache.read().ok().and_then(|c| {
            c.get(name.as_str())
                .filter(|e| e.expires > now)
                .map(|e| e.addrs.clone())
        }) {
            return e;
        }
        let addrs: Arc<[IpAddr]> = match self.lookup.lookup(&name) {
            Ok(found) => ordered(found).into(),
            Err(e) => {
                log::warn!("cannot resolve {name:?}: {e}");
                Arc::from([])
            }
        };
        let ttl = match addrs.is_empty() {
            true => self.negative_ttl,
            false => self.ttl,
        };
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= MAX_ENTRIES {
                cache.retain(|_, e| e.expires > now);
                if cache.len() >= MAX_ENTRIES {
                    cache.clear();
                }
            }
            cache.insert(
                name.into_boxed_str(),
                Entry {
                    addrs: addrs.clone(),
                    expires: now + ttl,
                },
            );
        }
        addrs
    }
}

/// IPv4 first (Kamailio's dns_try_ipv6 is off by default), each family in
/// the resolver's order, without repeats.
fn ordered(mut found: Vec<IpAddr>) -> Vec<IpAddr> {
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
fn host_name(host: &[u8]) -> Option<String> {
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

    #[test]
    fn the_cache_stays_bounded() {
        let (r, _) = resolver();
        let now = some_instant();
        for i in 0..(MAX_ENTRIES + 10) {
            r.resolve(format!("n{i}.example.com").as_bytes(), now);
        }
        assert!(r.cache.read().unwrap().len() <= MAX_ENTRIES);
    }
}
