//! Loopback addresses for tests that run in parallel.
//!
//! `cargo test` runs the tests of one binary on several threads, and nextest
//! runs each test in its own process, so a fixed port (or even "bind port 0,
//! read it, release it" on 127.0.0.1 alone) can be handed to two tests at
//! once. Linux answers on every address of 127.0.0.0/8, so each allocation
//! also picks a random host address there: two tests then collide only if
//! they draw the same one of ~16 million addresses *and* the same port.
//! ringsip binds with SO_REUSEPORT, which would otherwise let two proxies
//! share a port silently.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Addresses and ports already handed out by this process (never reused).
static HANDED_OUT: Mutex<Option<HashSet<SocketAddr>>> = Mutex::new(None);

/// A random 64-bit number (no `rand` dependency: std's hasher keys are random
/// per process, mixed with a counter, the clock and the process id).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.finish()
}

/// A random address in 127.1.0.1 ..= 127.254.255.254, never 127.0.x.x (where
/// the machine's own services live) nor a .0 or .255 last byte.
pub fn loopback_ip() -> Ipv4Addr {
    let r = random_u64();
    let b1 = 1 + (r % 254) as u8;
    let b2 = (r >> 8) as u8;
    let b3 = 1 + ((r >> 16) % 254) as u8;
    Ipv4Addr::new(127, b1, b2, b3)
}

fn remember(addr: SocketAddr) -> bool {
    let mut set = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    set.get_or_insert_with(HashSet::new).insert(addr)
}

/// A UDP address on a fresh random loopback IP with a port that was free a
/// moment ago (bound with port 0, read, released). Nothing listens on it yet:
/// give it to the server under test.
pub fn free_udp_addr() -> SocketAddr {
    for _ in 0..100 {
        let ip = loopback_ip();
        let Ok(sock) = UdpSocket::bind((ip, 0)) else {
            continue;
        };
        let addr = sock.local_addr().expect("local_addr of a bound socket");
        drop(sock);
        if remember(addr) {
            return addr;
        }
    }
    panic!("no free loopback UDP address after 100 attempts");
}

/// A UDP port free on every address (for programs that bind the wildcard
/// address, such as sipp's control socket).
pub fn free_udp_port() -> u16 {
    for _ in 0..100 {
        let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind 0.0.0.0:0");
        let addr = sock.local_addr().expect("local_addr of a bound socket");
        drop(sock);
        if remember(addr) {
            return addr.port();
        }
    }
    panic!("no free UDP port after 100 attempts");
}

/// Whether some socket is bound to `addr` (or to the wildcard address on its
/// port), read from `/proc/net/udp`: this observes a server without sending it
/// anything and without racing it for the port.
pub fn is_udp_bound(addr: SocketAddr) -> bool {
    let IpAddr::V4(want_ip) = addr.ip() else {
        panic!("is_udp_bound: IPv4 only, got {addr}");
    };
    let Ok(table) = fs::read_to_string("/proc/net/udp") else {
        return false;
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter_map(parse_proc_addr)
        .any(|(ip, port)| port == addr.port() && (ip == want_ip || ip.is_unspecified()))
}

/// Whether a TCP socket listens on `addr` (or on the wildcard address on
/// its port), read from `/proc/net/tcp` (state 0A is LISTEN).
pub fn is_tcp_listening(addr: SocketAddr) -> bool {
    let IpAddr::V4(want_ip) = addr.ip() else {
        panic!("is_tcp_listening: IPv4 only, got {addr}");
    };
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    table
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().nth(3) == Some("0A"))
        .filter_map(|line| line.split_whitespace().nth(1))
        .filter_map(parse_proc_addr)
        .any(|(ip, port)| port == addr.port() && (ip == want_ip || ip.is_unspecified()))
}

/// `0100007F:13C4` → 127.0.0.1:5060. The address is the raw network-order
/// word printed as a host integer; the port is printed in host order.
fn parse_proc_addr(field: &str) -> Option<(Ipv4Addr, u16)> {
    let (ip_hex, port_hex) = field.split_once(':')?;
    let raw = u32::from_str_radix(ip_hex, 16).ok()?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    Some((Ipv4Addr::from(raw.to_ne_bytes()), port))
}

/// Whether the TCP connection from `local` to `remote` still exists on this
/// machine (in any state, read from `/proc/net/tcp`): e.g. a server's side
/// of a connection, gone once the server has closed it after the peer did.
pub fn tcp_connection_exists(local: SocketAddr, remote: SocketAddr) -> bool {
    let (IpAddr::V4(local_ip), IpAddr::V4(remote_ip)) = (local.ip(), remote.ip()) else {
        panic!("tcp_connection_exists: IPv4 only, got {local} -> {remote}");
    };
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (Some(l), Some(r)) = (fields.next(), fields.next()) else {
            return false;
        };
        parse_proc_addr(l) == Some((local_ip, local.port()))
            && parse_proc_addr(r) == Some((remote_ip, remote.port()))
    })
}
