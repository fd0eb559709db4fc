//! The media relays a module controls (rtpproxy and rtpengine alike): where
//! they are (`udp:IP:PORT` sockets, grouped in sets, each with a weight),
//! which one serves a call, which are out of service, and the one door to
//! the network: [`RelayTransport`], implemented by the runtime
//! (`runtime::media`), since modules do no IO.
//!
//! Like Kamailio, a module function waits for the relay's answer: the worker
//! that runs the script is blocked for at most `timeout × attempts`. A relay
//! that does not answer is taken out of service for `disable_tout` seconds,
//! during which the functions fail at once instead of waiting again.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::script::registry::ModParams;

/// Why an exchange with a relay gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayError {
    /// No answer with our cookie within timeout × attempts.
    Timeout,
    /// The request could not be sent (no route, socket error).
    Io(String),
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayError::Timeout => f.write_str("no answer"),
            RelayError::Io(e) => f.write_str(e),
        }
    }
}

/// Sends one control request to a relay and waits for its answer. The
/// datagram is `cookie SP payload`; the answer is the first datagram from the
/// relay that starts with `cookie SP`, returned without that prefix. The
/// request is sent again after each `timeout`, `attempts` times in all.
pub trait RelayTransport: Send + Sync {
    fn exchange(
        &self,
        relay: SocketAddr,
        cookie: &str,
        payload: &[u8],
        timeout: Duration,
        attempts: u32,
    ) -> Result<Vec<u8>, RelayError>;
}

/// One relay of a set.
#[derive(Debug)]
pub struct RelayNode {
    /// As configured (`udp:127.0.0.1:7722`), for logs.
    pub url: String,
    pub addr: SocketAddr,
    pub weight: u32,
    /// Unix ms until which the node is out of service (0: in service).
    disabled_until: AtomicU64,
}

impl RelayNode {
    pub fn in_service(&self, unix_ms: u64) -> bool {
        self.disabled_until.load(Ordering::Relaxed) <= unix_ms
    }
}

/// A numbered set of relays (`N == udp:… udp:…`).
#[derive(Debug)]
pub struct RelaySet {
    pub id: u32,
    pub nodes: Vec<RelayNode>,
}

/// Finds the address of a relay's host name (`true`: IPv6 wanted). The
/// runtime passes one that asks the system resolver, once, at start-up.
pub type Resolve<'a> = &'a dyn Fn(&str, bool) -> Result<IpAddr, String>;

/// A [`Resolve`] for literal addresses only.
pub fn no_names(name: &str, _: bool) -> Result<IpAddr, String> {
    Err(format!(
        "\"{name}\" is not an IP address (host names are resolved at start-up only)"
    ))
}

/// A [`Resolve`] that accepts any well-formed host name, for checking a
/// configuration without resolving it.
pub fn any_name(name: &str, v6: bool) -> Result<IpAddr, String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    match (ok, v6) {
        (false, _) => Err(format!("\"{name}\" is not a host name or IP address")),
        (true, false) => Ok(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        (true, true) => Ok(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
    }
}

/// Parses one socket `[udp:|udp6:]HOST:PORT[=WEIGHT]` (IPv6 in brackets, or
/// bare after `udp6:`); a host name goes to `resolve`.
pub fn parse_node(spec: &str, resolve: Resolve<'_>) -> Result<RelayNode, String> {
    let (addr_part, weight) = match spec.rsplit_once('=') {
        Some((a, w)) => (
            a,
            w.parse::<u32>()
                .map_err(|_| format!("bad weight in relay socket \"{spec}\""))?,
        ),
        None => (spec, 1),
    };
    let (v6, rest) = if let Some(r) = addr_part.strip_prefix("udp6:") {
        (true, r)
    } else if let Some(r) = addr_part.strip_prefix("udp:") {
        (false, r)
    } else if addr_part.starts_with("unix:") || addr_part.starts_with('/') {
        return Err(format!(
            "relay socket \"{spec}\": unix sockets are not supported (use udp:IP:PORT)"
        ));
    } else {
        (false, addr_part)
    };
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("relay socket \"{spec}\" has no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("relay socket \"{spec}\": bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => resolve(host, v6).map_err(|e| format!("relay socket \"{spec}\": {e}"))?,
    };
    Ok(RelayNode {
        url: spec.to_string(),
        addr: SocketAddr::new(ip, port),
        weight,
        disabled_until: AtomicU64::new(0),
    })
}

/// Parses one `*_sock` value: `[N ==] SOCKET [SOCKET…]` (set 0 without `N ==`).
pub fn parse_sock_value(
    value: &str,
    resolve: Resolve<'_>,
) -> Result<(u32, Vec<RelayNode>), String> {
    let (id, list) = match value.split_once("==") {
        Some((id, list)) => (
            id.trim()
                .parse::<u32>()
                .map_err(|_| format!("bad set number in \"{value}\""))?,
            list,
        ),
        None => (0, value),
    };
    let nodes = list
        .split_whitespace()
        .map(|spec| parse_node(spec, resolve))
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() {
        return Err(format!("no relay socket in \"{value}\""));
    }
    Ok((id, nodes))
}

/// Every set from the `*_sock` values, in order; values for the same set number join it.
pub fn parse_sets<'a>(
    values: impl IntoIterator<Item = &'a str>,
    resolve: Resolve<'_>,
) -> Result<Vec<RelaySet>, String> {
    let mut sets: Vec<RelaySet> = Vec::new();
    for v in values {
        let (id, nodes) = parse_sock_value(v, resolve)?;
        match sets.iter_mut().find(|s| s.id == id) {
            Some(s) => s.nodes.extend(nodes),
            None => sets.push(RelaySet { id, nodes }),
        }
    }
    Ok(sets)
}

/// The relays of one module, their timing parameters and the transport.
pub struct Relays {
    pub sets: Vec<RelaySet>,
    pub timeout: Duration,
    pub attempts: u32,
    /// How long a relay that did not answer stays out of service.
    pub disable: Duration,
    pub transport: Arc<dyn RelayTransport>,
    /// Makes cookies unique per process and call.
    seq: AtomicU64,
    cookie_prefix: u32,
}

impl std::fmt::Debug for Relays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relays")
            .field("sets", &self.sets)
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .finish()
    }
}

/// A failed request: every relay tried was silent, or none was in service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    NoRelay,
    Silent(RelayError),
}

impl Relays {
    /// The relays of `module` (`rtpproxy` or `rtpengine`, which name their
    /// parameters alike): the sets from every `MODULE_sock`, `MODULE_retr`
    /// attempts (default 5) and `MODULE_disable_tout` seconds out of service
    /// (default 60); the answer timeout is the caller's (the two modules
    /// give it in different units).
    pub fn from_modparams(
        mp: &ModParams,
        module: &str,
        timeout: Duration,
        transport: Arc<dyn RelayTransport>,
        cookie_prefix: u32,
        resolve: Resolve<'_>,
    ) -> Result<Relays, String> {
        let socks = super::sock_values(mp, module, &format!("{module}_sock"));
        let sets = parse_sets(socks.iter().map(String::as_str), resolve)
            .map_err(|e| format!("{module}: {e}"))?;
        let attempts = mp
            .int(module, &format!("{module}_retr"))
            .unwrap_or(5)
            .clamp(1, 100);
        let disable = mp
            .int(module, &format!("{module}_disable_tout"))
            .unwrap_or(60)
            .max(0);
        Ok(Relays::new(
            sets,
            timeout,
            attempts as u32,
            Duration::from_secs(disable as u64),
            transport,
            cookie_prefix,
        ))
    }

    pub fn new(
        sets: Vec<RelaySet>,
        timeout: Duration,
        attempts: u32,
        disable: Duration,
        transport: Arc<dyn RelayTransport>,
        cookie_prefix: u32,
    ) -> Relays {
        Relays {
            sets,
            timeout,
            attempts: attempts.max(1),
            disable,
            transport,
            seq: AtomicU64::new(0),
            cookie_prefix,
        }
    }

    /// The default set: number 0, else the first one configured.
    pub fn default_set(&self) -> Option<&RelaySet> {
        self.sets
            .iter()
            .find(|s| s.id == 0)
            .or_else(|| self.sets.first())
    }

    /// A cookie no other request of this process uses.
    pub fn cookie(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{:x}_{n}", self.cookie_prefix)
    }

    /// The node of `set` that serves `call_id`: chosen by a hash of the
    /// Call-ID over the weights of the nodes in service, so that every
    /// request of a call goes to the same relay while the set does not change.
    pub fn select<'s>(set: &'s RelaySet, call_id: &[u8], unix_ms: u64) -> Option<&'s RelayNode> {
        let live: Vec<&RelayNode> = set
            .nodes
            .iter()
            .filter(|n| n.in_service(unix_ms) && n.weight > 0)
            .collect();
        let total: u64 = live.iter().map(|n| u64::from(n.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut pick = fnv1a(call_id) % total;
        for n in live {
            let w = u64::from(n.weight);
            if pick < w {
                return Some(n);
            }
            pick -= w;
        }
        None
    }

    /// Sends `payload` to the relay serving `call_id` in the default set, and
    /// to the next one when it does not answer (taking the silent one out of
    /// service). The answer, without the cookie, and the relay that gave it.
    pub fn send(
        &self,
        call_id: &[u8],
        payload: &[u8],
        unix_ms: u64,
    ) -> Result<(Vec<u8>, &RelayNode), SendError> {
        let set = self.default_set().ok_or(SendError::NoRelay)?;
        let mut last = SendError::NoRelay;
        for _ in 0..set.nodes.len() {
            let Some(node) = Self::select(set, call_id, unix_ms) else {
                break;
            };
            let cookie = self.cookie();
            match self
                .transport
                .exchange(node.addr, &cookie, payload, self.timeout, self.attempts)
            {
                Ok(answer) => return Ok((answer, node)),
                Err(e) => {
                    log::error!(
                        "media relay {} did not answer ({e}); out of service for {} s",
                        node.url,
                        self.disable.as_secs()
                    );
                    let until = unix_ms.saturating_add(self.disable.as_millis() as u64);
                    node.disabled_until.store(until.max(1), Ordering::Relaxed);
                    last = SendError::Silent(e);
                }
            }
        }
        Err(last)
    }
}

/// FNV-1a: a stable hash of the Call-ID (the same on every core and run).
fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn sockets_and_sets() {
        let parse_node = |s| parse_node(s, &no_names);
        let n = parse_node("udp:127.0.0.1:7722").unwrap();
        assert_eq!(n.addr, "127.0.0.1:7722".parse().unwrap());
        assert_eq!(n.weight, 1);
        let n = parse_node("udp6:::1:7722=3").unwrap();
        assert_eq!(n.addr, "[::1]:7722".parse().unwrap());
        assert_eq!(n.weight, 3);
        let n = parse_node("udp6:[::1]:9").unwrap();
        assert_eq!(n.addr, "[::1]:9".parse().unwrap());
        assert!(parse_node("unix:/run/rtpproxy.sock").is_err());
        assert!(parse_node("udp:localhost:7722").is_err());
        let local = |name: &str, _| match name {
            "localhost" => Ok("127.0.0.1".parse().unwrap()),
            _ => Err("unknown".to_string()),
        };
        let n = super::parse_node("udp:localhost:7722", &local).unwrap();
        assert_eq!(n.addr, "127.0.0.1:7722".parse().unwrap());
        assert!(super::parse_node("udp:nowhere:7722", &local).is_err());
        assert!(super::parse_node("udp:relay-1.example:7722", &any_name).is_ok());
        assert!(super::parse_node("udp:bad name:7722", &any_name).is_err());
        assert!(parse_node("udp:127.0.0.1").is_err());

        let sets = parse_sets(
            [
                "udp:127.0.0.1:7722 udp:127.0.0.2:7722=2",
                "1 == udp:10.0.0.1:1",
                "1 == udp:10.0.0.2:2",
            ],
            &no_names,
        )
        .unwrap();
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].id, 0);
        assert_eq!(sets[0].nodes.len(), 2);
        assert_eq!(sets[1].id, 1);
        assert_eq!(sets[1].nodes.len(), 2);
        assert!(parse_sets(["x == udp:1.2.3.4:5"], &no_names).is_err());
        assert!(parse_sets(["1 == "], &no_names).is_err());
    }

    /// Answers from a script of results, recording where each request went.
    struct Scripted {
        answers: Mutex<Vec<Result<Vec<u8>, RelayError>>>,
        asked: Mutex<Vec<SocketAddr>>,
    }

    impl RelayTransport for Scripted {
        fn exchange(
            &self,
            relay: SocketAddr,
            _: &str,
            _: &[u8],
            _: Duration,
            _: u32,
        ) -> Result<Vec<u8>, RelayError> {
            self.asked.lock().unwrap().push(relay);
            self.answers.lock().unwrap().remove(0)
        }
    }

    #[test]
    fn a_silent_relay_is_skipped_then_rests() {
        let t = Arc::new(Scripted {
            answers: Mutex::new(vec![
                Err(RelayError::Timeout),
                Ok(b"1".to_vec()),
                Ok(b"2".to_vec()),
            ]),
            asked: Mutex::new(Vec::new()),
        });
        let sets = parse_sets(["udp:127.0.0.1:1 udp:127.0.0.1:2"], &no_names).unwrap();
        let relays = Relays::new(
            sets,
            Duration::from_millis(10),
            1,
            Duration::from_secs(60),
            t.clone(),
            7,
        );
        // Find a Call-ID whose first choice is node 0 for a stable test.
        let set = relays.default_set().unwrap();
        let call = (0..100)
            .map(|i| format!("call-{i}"))
            .find(|c| Relays::select(set, c.as_bytes(), 0).unwrap().addr.port() == 1)
            .unwrap();
        let (a, node) = relays.send(call.as_bytes(), b"V", 1000).unwrap();
        assert_eq!(a, b"1");
        assert_eq!(node.addr.port(), 2);
        // Node 1 rests for 60 s: the next request goes straight to node 2.
        let (_, node) = relays.send(call.as_bytes(), b"V", 2000).unwrap();
        assert_eq!(node.addr.port(), 2);
        let asked: Vec<u16> = t.asked.lock().unwrap().iter().map(|a| a.port()).collect();
        assert_eq!(asked, [1, 2, 2]);
        assert!(set.nodes[0].in_service(1000 + 60_000));
        assert_ne!(relays.cookie(), relays.cookie());
    }

    #[test]
    fn nothing_in_service() {
        let t = Arc::new(Scripted {
            answers: Mutex::new(vec![Err(RelayError::Timeout)]),
            asked: Mutex::new(Vec::new()),
        });
        let relays = Relays::new(
            parse_sets(["udp:127.0.0.1:1"], &no_names).unwrap(),
            Duration::from_millis(10),
            1,
            Duration::from_secs(60),
            t,
            7,
        );
        assert_eq!(
            relays.send(b"c", b"V", 5).unwrap_err(),
            SendError::Silent(RelayError::Timeout)
        );
        assert_eq!(relays.send(b"c", b"V", 6).unwrap_err(), SendError::NoRelay);
    }
}
