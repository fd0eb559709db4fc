//! The DNS client behind [`Resolver`](crate::modules::core::dns::Resolver):
//! UDP questions to the nameservers of `/etc/resolv.conf` (or the file
//! `RINGSIP_RESOLV_CONF` names), over TCP when an answer comes truncated,
//! with `options timeout:N attempts:N` (or Kamailio's `dns_retr_time` /
//! `dns_retr_no`), `search`/`ndots` and `/etc/hosts` first, as the C
//! library does for every other program on the machine.
//!
//! A question blocks the worker that asked (as Kamailio's do); the shared
//! cache keeps the answers, so this runs once per name per TTL.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::modules::core::dns::{Found, Lookup, Naptr, Srv};
use crate::modules::core::dns_wire::{self as wire, RData, Response};

/// Nameservers used at most (glibc's MAXNS).
const MAX_SERVERS: usize = 3;
/// Search domains used at most (glibc's MAXDNSRCH).
const MAX_SEARCH: usize = 6;
/// `/etc/hosts` entries kept at most.
const MAX_HOSTS: usize = 4096;
/// A TCP answer read at most (its 2-byte length allows 64 KiB).
const MAX_TCP_ANSWER: usize = 65_535;
/// CNAMEs followed inside one answer at most.
const MAX_CNAMES: usize = 8;

/// What `/etc/resolv.conf` says (the parts a stub resolver uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    pub servers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
    pub timeout: Duration,
    pub attempts: u32,
}

impl Default for ResolvConf {
    fn default() -> ResolvConf {
        // glibc's defaults: the local server, 5 s, 2 attempts, ndots 1.
        ResolvConf {
            servers: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 53))],
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

impl ResolvConf {
    /// Reads the text of a resolv.conf. Besides resolv.conf(5), a
    /// nameserver may carry a port (`127.0.0.1:5353`, `[::1]:5353`): tests
    /// and operators with a resolver on another port use it through
    /// `RINGSIP_RESOLV_CONF`.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf {
            servers: Vec::new(),
            ..ResolvConf::default()
        };
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    let Some(addr) = words.next() else { continue };
                    let parsed = addr
                        .parse::<IpAddr>()
                        .map(|ip| SocketAddr::new(ip, 53))
                        .or_else(|_| addr.parse::<SocketAddr>());
                    match parsed {
                        Ok(a) if conf.servers.len() < MAX_SERVERS => conf.servers.push(a),
                        Ok(_) => {}
                        Err(_) => log::warn!("resolv.conf: nameserver {addr:?} is not an address"),
                    }
                }
                // The last of `domain` and `search` wins (resolv.conf(5)).
                Some("domain") => conf.search = words.take(1).map(str::to_owned).collect(),
                Some("search") => conf.search = words.take(MAX_SEARCH).map(str::to_owned).collect(),
                Some("options") => {
                    for opt in words {
                        let (name, value) = opt.split_once(':').unwrap_or((opt, ""));
                        let n = value.parse::<u32>().ok();
                        match (name, n) {
                            ("timeout", Some(n)) => {
                                conf.timeout = Duration::from_secs(u64::from(n.clamp(1, 30)))
                            }
                            ("attempts", Some(n)) => conf.attempts = n.clamp(1, 5),
                            ("ndots", Some(n)) => conf.ndots = n.min(15) as usize,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if conf.servers.is_empty() {
            conf.servers = ResolvConf::default().servers;
        }
        conf
    }

    /// The file the runtime reads: `RINGSIP_RESOLV_CONF` if set, else `/etc/resolv.conf`.
    pub fn load() -> ResolvConf {
        let path =
            std::env::var("RINGSIP_RESOLV_CONF").unwrap_or_else(|_| "/etc/resolv.conf".into());
        match std::fs::read_to_string(&path) {
            Ok(text) => ResolvConf::parse(&text),
            Err(e) => {
                log::warn!("cannot read {path}: {e}; asking 127.0.0.1");
                ResolvConf::default()
            }
        }
    }
}

/// Kamailio's core parameters that override resolv.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientParams {
    /// `dns_retr_time`: seconds per question.
    pub retr_time: Option<u32>,
    /// `dns_retr_no`: attempts.
    pub retr_no: Option<u32>,
    /// `dns_servers_no`: nameservers used.
    pub servers_no: Option<u32>,
    /// `dns_use_search_list` (default yes).
    pub use_search_list: bool,
    /// `dns_try_ipv6`: AAAA after A.
    pub try_ipv6: bool,
}

/// The DNS client.
pub struct DnsClient {
    conf: ResolvConf,
    hosts: Vec<(String, IpAddr)>,
    try_ipv6: bool,
}

impl DnsClient {
    /// A client for `conf`, with `params` applied and `/etc/hosts` read once.
    pub fn new(mut conf: ResolvConf, params: &ClientParams) -> DnsClient {
        if let Some(t) = params.retr_time {
            conf.timeout = Duration::from_secs(u64::from(t.clamp(1, 30)));
        }
        if let Some(n) = params.retr_no {
            conf.attempts = n.clamp(1, 5);
        }
        if let Some(n) = params.servers_no {
            conf.servers.truncate((n as usize).max(1));
        }
        if !params.use_search_list {
            conf.search.clear();
        }
        let hosts = std::fs::read_to_string("/etc/hosts")
            .map(|t| parse_hosts(&t))
            .unwrap_or_default();
        DnsClient {
            conf,
            hosts,
            try_ipv6: params.try_ipv6,
        }
    }

    /// A client with no hosts file (tests).
    pub fn with_conf(conf: ResolvConf, try_ipv6: bool) -> DnsClient {
        DnsClient {
            conf,
            hosts: Vec::new(),
            try_ipv6,
        }
    }

    /// The answer records of type `qtype` for `name` (CNAMEs followed
    /// inside the answer), with the smallest TTL; `Ok` and empty when the
    /// name or the records do not exist.
    fn ask(&self, name: &str, qtype: u16) -> io::Result<(Vec<RData>, Option<u32>)> {
        let resp = self.exchange(name, qtype)?;
        let mut owner = name.trim_end_matches('.').to_ascii_lowercase();
        let mut ttl: Option<u32> = None;
        let mut out = Vec::new();
        for _ in 0..MAX_CNAMES {
            let mut next = None;
            for r in &resp.answers {
                if r.name != owner {
                    continue;
                }
                match &r.data {
                    RData::Cname(target) => next = Some(target.clone()),
                    d if rtype(d) == qtype => {
                        ttl = Some(ttl.map_or(r.ttl, |t| t.min(r.ttl)));
                        out.push(d.clone());
                    }
                    _ => {}
                }
            }
            match next {
                Some(n) if out.is_empty() => owner = n,
                _ => break,
            }
        }
        Ok((out, ttl))
    }

    /// One question, asked of each server in turn, `attempts` rounds.
    fn exchange(&self, name: &str, qtype: u16) -> io::Result<Response> {
        let mut last = io::Error::new(io::ErrorKind::TimedOut, "no nameserver answered");
        for _ in 0..self.conf.attempts {
            for server in &self.conf.servers {
                match self.exchange_with(*server, name, qtype) {
                    Ok(r) => return Ok(r),
                    Err(e) => last = e,
                }
            }
        }
        Err(last)
    }

    fn exchange_with(&self, server: SocketAddr, name: &str, qtype: u16) -> io::Result<Response> {
        let id = query_id();
        let query = wire::build_query(id, name, qtype)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
        let bind: SocketAddr = match server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(bind)?;
        sock.connect(server)?;
        sock.send(&query)?;
        let deadline = Instant::now() + self.conf.timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "DNS timeout"));
            }
            sock.set_read_timeout(Some(left))?;
            let n = match sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "DNS timeout"))
                }
                Err(e) => return Err(e),
            };
            // Anything else (a late answer, a forgery) is skipped.
            let Ok(resp) = wire::parse_response(&buf[..n], id, name, qtype) else {
                continue;
            };
            if resp.truncated {
                return self.exchange_tcp(server, name, qtype);
            }
            return Ok(resp);
        }
    }

    /// RFC 1035 §4.2.2: the same question over TCP, length-prefixed.
    fn exchange_tcp(&self, server: SocketAddr, name: &str, qtype: u16) -> io::Result<Response> {
        let id = query_id();
        let query = wire::build_query(id, name, qtype)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
        let mut s = TcpStream::connect_timeout(&server, self.conf.timeout)?;
        s.set_read_timeout(Some(self.conf.timeout))?;
        s.set_write_timeout(Some(self.conf.timeout))?;
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        s.write_all(&framed)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len)?;
        let len = usize::from(u16::from_be_bytes(len)).min(MAX_TCP_ANSWER);
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf)?;
        wire::parse_response(&buf, id, name, qtype)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))
    }

    /// The names to ask for `name`: with the search domains first when it
    /// has fewer dots than `ndots` (resolv.conf(5)), then as it is.
    fn candidates(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        if name.matches('.').count() < self.conf.ndots {
            out.extend(self.conf.search.iter().map(|d| format!("{name}.{d}")));
        }
        out.push(name.to_owned());
        out
    }
}

fn rtype(d: &RData) -> u16 {
    match d {
        RData::A(_) => wire::A,
        RData::Aaaa(_) => wire::AAAA,
        RData::Cname(_) => wire::CNAME,
        RData::Srv(_) => wire::SRV,
        RData::Naptr(_) => wire::NAPTR,
        RData::Other(t) => *t,
    }
}

/// A query id nobody on the path can guess.
fn query_id() -> u16 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return t as u16 ^ std::process::id() as u16;
    }
    u16::from_le_bytes(b)
}

/// `/etc/hosts`: address, then names.
fn parse_hosts(text: &str) -> Vec<(String, IpAddr)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in words {
            if out.len() >= MAX_HOSTS {
                return out;
            }
            out.push((name.to_ascii_lowercase(), ip));
        }
    }
    out
}

impl Lookup for DnsClient {
    fn lookup(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        self.addrs(name).map(|f| f.records)
    }

    fn addrs(&self, name: &str) -> io::Result<Found<IpAddr>> {
        let key = name.trim_end_matches('.').to_ascii_lowercase();
        let from_hosts: Vec<IpAddr> = self
            .hosts
            .iter()
            .filter(|(n, _)| *n == key)
            .map(|(_, ip)| *ip)
            .collect();
        if !from_hosts.is_empty() {
            return Ok(Found {
                records: from_hosts,
                ttl: None,
            });
        }
        let mut last_err = None;
        for candidate in self.candidates(&key) {
            // A first; AAAA when there is none and dns_try_ipv6.
            let mut found = Vec::new();
            let mut ttl = None;
            for qtype in [wire::A, wire::AAAA] {
                // Kamailio asks AAAA only when A gave nothing (checked live).
                if qtype == wire::AAAA && (!self.try_ipv6 || !found.is_empty()) {
                    continue;
                }
                match self.ask(&candidate, qtype) {
                    Ok((records, t)) => {
                        ttl = min_ttl(ttl, t);
                        found.extend(records.into_iter().filter_map(|d| match d {
                            RData::A(ip) => Some(IpAddr::V4(ip)),
                            RData::Aaaa(ip) => Some(IpAddr::V6(ip)),
                            _ => None,
                        }));
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            if !found.is_empty() {
                return Ok(Found {
                    records: found,
                    ttl,
                });
            }
        }
        match last_err {
            Some(e) => Err(e),
            None => Ok(Found::none()),
        }
    }

    fn srv(&self, name: &str) -> io::Result<Found<Srv>> {
        let (records, ttl) = self.ask(name, wire::SRV)?;
        let records = records
            .into_iter()
            .filter_map(|d| match d {
                RData::Srv(s) => Some(s),
                _ => None,
            })
            .collect();
        Ok(Found { records, ttl })
    }

    fn naptr(&self, name: &str) -> io::Result<Found<Naptr>> {
        let (records, ttl) = self.ask(name, wire::NAPTR)?;
        let records = records
            .into_iter()
            .filter_map(|d| match d {
                RData::Naptr(n) => Some(n),
                _ => None,
            })
            .collect();
        Ok(Found { records, ttl })
    }
}

fn min_ttl(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::core::dns_wire::{build_response, parse_query};
    use std::thread;

    #[test]
    fn resolv_conf_is_read_with_its_options() {
        let c = ResolvConf::parse(
            "# comment\nnameserver 127.0.0.53\nnameserver 127.0.0.1:5353\nnameserver [::1]:53\n\
             nameserver ::2\nsearch a.test b.test\noptions ndots:2 timeout:1 attempts:3 rotate\n",
        );
        assert_eq!(
            c.servers,
            [
                "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ],
            "at most three"
        );
        assert_eq!(c.search, ["a.test", "b.test"]);
        assert_eq!(
            (c.ndots, c.timeout, c.attempts),
            (2, Duration::from_secs(1), 3)
        );
        assert_eq!(ResolvConf::parse("").servers, ResolvConf::default().servers);
    }

    #[test]
    fn hosts_file_names_are_read() {
        let h = parse_hosts("127.0.0.1 localhost Local.Test # x\n::1 ip6-localhost\nbad line\n");
        assert_eq!(h.len(), 3);
        assert_eq!(h[1], ("local.test".into(), "127.0.0.1".parse().unwrap()));
    }

    /// A one-shot server on loopback answering SRV for one name, and an A
    /// for its target; TCP when the UDP answer is truncated.
    #[test]
    fn srv_and_a_answers_over_udp_then_tcp_on_truncation() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let server = thread::spawn(move || {
            let mut buf = [0u8; 512];
            // 1: SRV over UDP, truncated; then the same over TCP.
            let (n, from) = udp.recv_from(&mut buf).unwrap();
            let (id, name, qtype) = parse_query(&buf[..n]).unwrap();
            let mut tc = build_response(id, &name, qtype, 0, &[], &[]).unwrap();
            tc[2] |= 0x02;
            udp.send_to(&tc, from).unwrap();
            let (mut s, _) = tcp.accept().unwrap();
            let mut len = [0u8; 2];
            s.read_exact(&mut len).unwrap();
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut q).unwrap();
            let (id, name, qtype) = parse_query(&q).unwrap();
            let srv = RData::Srv(Srv {
                priority: 1,
                weight: 1,
                port: 5070,
                target: "b.example.test".into(),
            });
            let a = build_response(id, &name, qtype, 0, &[(name.as_str(), 42, srv)], &[]).unwrap();
            let mut framed = (a.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&a);
            s.write_all(&framed).unwrap();
            // 2: A over UDP, after a stray answer with the wrong id.
            let (n, from) = udp.recv_from(&mut buf).unwrap();
            let (id, name, qtype) = parse_query(&buf[..n]).unwrap();
            let ip = RData::A(Ipv4Addr::new(127, 0, 0, 10));
            let stray = build_response(
                id ^ 1,
                &name,
                qtype,
                0,
                &[(name.as_str(), 9, ip.clone())],
                &[],
            );
            udp.send_to(&stray.unwrap(), from).unwrap();
            let good = build_response(id, &name, qtype, 0, &[(name.as_str(), 9, ip)], &[]);
            udp.send_to(&good.unwrap(), from).unwrap();
        });
        let conf = ResolvConf::parse(&format!(
            "nameserver 127.0.0.1:{port}\noptions timeout:2 attempts:1"
        ));
        let c = DnsClient::with_conf(conf, false);
        let srv = c.srv("_sip._udp.example.test").unwrap();
        assert_eq!(srv.ttl, Some(42));
        assert_eq!(srv.records[0].port, 5070);
        let a = c.addrs("b.example.test").unwrap();
        assert_eq!(a.records, ["127.0.0.10".parse::<IpAddr>().unwrap()]);
        assert_eq!(a.ttl, Some(9));
        server.join().unwrap();
    }

    #[test]
    fn a_silent_server_times_out() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let conf = ResolvConf::parse(&format!(
            "nameserver 127.0.0.1:{port}\noptions timeout:1 attempts:1"
        ));
        let c = DnsClient::with_conf(conf, false);
        let started = Instant::now();
        assert!(c.srv("_sip._udp.example.test").is_err());
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
