//! pike: flood detection per source address (KAMAILIO-REFERENCE §7.7).
//!
//! As Kamailio counts: addresses live in a tree of byte prefixes (one level
//! per address byte; IPv4 and IPv6 in the same tree), grown one byte at a
//! time. A request hits the longest prefix of its address already in the
//! tree. A prefix hot for a quarter of `reqs_density_per_unit` (in this
//! sampling unit, the one before, or their mean) grows a child for the next
//! byte, which inherits its hits less one. Once the whole address is in the
//! tree, its own requests are counted, and it is blocked when they are hot
//! for `reqs_density_per_unit`. So a fresh IPv4 source whose first byte is
//! new is reported at its `density + 6`th request in a unit (with Kamailio
//! 5.6.3: the 10th with density 6, the 22nd with the stock config's 16), and
//! sooner when a neighbour already grew the prefixes. At each unit boundary
//! the counts move to "previous", and a blocked address no longer hot is
//! released. A node not hit for `remove_latency` seconds is forgotten: an
//! address, or a prefix without children (a prefix with few hits is not kept
//! alive by them; one whose last child went is timed again).
//!
//! The tree is shared by every core, in shards by first byte, each with its
//! own lock (Kamailio locks per first byte too). Time is an input
//! (milliseconds since 1970, from `now`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::script::ctx::{MsgCtx, SharedTimer};
use crate::script::registry::{
    Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};

const SHARDS: usize = 64;

/// The module parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PikeParams {
    pub unit_ms: u64,
    pub density: u32,
    pub remove_latency_ms: u64,
}

impl Default for PikeParams {
    fn default() -> PikeParams {
        PikeParams {
            unit_ms: 2_000,
            density: 30,
            remove_latency_ms: 120_000,
        }
    }
}

impl PikeParams {
    pub fn from_modparams(mp: &ModParams) -> Result<PikeParams, String> {
        let d = PikeParams::default();
        let positive = |name: &str, default: u64| -> Result<u64, String> {
            match mp.int("pike", name) {
                None => Ok(default),
                Some(n) if n > 0 => Ok(n as u64),
                Some(n) => Err(format!("pike: {name} must be positive, not {n}")),
            }
        };
        Ok(PikeParams {
            unit_ms: positive("sampling_time_unit", d.unit_ms / 1000)? * 1000,
            density: u32::try_from(positive("reqs_density_per_unit", u64::from(d.density))?)
                .unwrap_or(u32::MAX),
            remove_latency_ms: positive("remove_latency", d.remove_latency_ms / 1000)? * 1000,
        })
    }
}

/// A byte prefix of an address: its first `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Prefix {
    bytes: [u8; 16],
    len: u8,
}

impl Prefix {
    fn of(ip: IpAddr) -> Prefix {
        match ip {
            IpAddr::V4(a) => {
                let mut bytes = [0u8; 16];
                bytes[..4].copy_from_slice(&a.octets());
                Prefix { bytes, len: 4 }
            }
            IpAddr::V6(a) => Prefix {
                bytes: a.octets(),
                len: 16,
            },
        }
    }

    /// Its first `len` bytes.
    fn take(self, len: u8) -> Prefix {
        let mut bytes = [0u8; 16];
        let n = usize::from(len);
        bytes[..n].copy_from_slice(&self.bytes[..n]);
        Prefix { bytes, len }
    }

    /// The address, when the prefix is a whole IPv4 or IPv6 one.
    fn ip(self) -> Option<IpAddr> {
        match self.len {
            4 => Some(IpAddr::from([
                self.bytes[0],
                self.bytes[1],
                self.bytes[2],
                self.bytes[3],
            ])),
            16 => Some(IpAddr::from(self.bytes)),
            _ => None,
        }
    }
}

/// `[previous unit, this unit]` counts hot for `limit`.
fn hot(c: [u32; 2], limit: u32) -> bool {
    c[0] >= limit || c[1] >= limit || (u64::from(c[0]) + u64::from(c[1])) / 2 >= u64::from(limit)
}

/// One prefix of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Node {
    /// The sampling unit the counts' `[1]` is (unix ms / unit).
    unit: u64,
    /// Requests whose longest prefix in the tree was this one.
    hits: [u32; 2],
    /// Requests from exactly this address.
    leaf_hits: [u32; 2],
    /// A whole address was counted here.
    ip_leaf: bool,
    blocked: bool,
    kids: u32,
    /// When it is forgotten; `None` while it only leads to children.
    expires_ms: Option<u64>,
}

impl Node {
    fn new(unit: u64, hits: [u32; 2], leaf_hits: [u32; 2], expires_ms: u64) -> Node {
        Node {
            unit,
            hits,
            leaf_hits,
            ip_leaf: false,
            blocked: false,
            kids: 0,
            expires_ms: Some(expires_ms),
        }
    }

    /// Moves the counts to `unit`; a blocked address no longer hot is released.
    fn roll(&mut self, unit: u64, density: u32) {
        if unit <= self.unit {
            return;
        }
        let next = unit == self.unit + 1;
        for c in [&mut self.hits, &mut self.leaf_hits] {
            *c = [if next { c[1] } else { 0 }, 0];
        }
        self.unit = unit;
        if self.blocked && !hot(self.leaf_hits, density) {
            self.blocked = false;
        }
    }
}

/// The nodes whose first byte falls in one shard.
#[derive(Debug, Default)]
struct Shard {
    nodes: HashMap<Prefix, Node>,
    /// The earliest `expires_ms` (it may be stale-early, never late).
    next_expiry_ms: Option<u64>,
    swept_ms: u64,
}

impl Shard {
    /// Notes that a node expires at `expires_ms`.
    fn note(&mut self, expires_ms: u64) {
        self.next_expiry_ms = Some(
            self.next_expiry_ms
                .map_or(expires_ms, |e| e.min(expires_ms)),
        );
    }

    /// Forgets what expired by `now_ms`; how many nodes went.
    fn sweep(&mut self, now_ms: u64, latency_ms: u64) -> usize {
        self.swept_ms = now_ms;
        if self.next_expiry_ms.is_none_or(|e| e > now_ms) {
            return 0;
        }
        let mut due: Vec<Prefix> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.expires_ms.is_some_and(|e| e <= now_ms))
            .map(|(p, _)| *p)
            .collect();
        // Longest first: a child goes before its parent is looked at.
        due.sort_by_key(|p| std::cmp::Reverse(p.len));
        let mut gone = 0;
        for p in due {
            let Some(n) = self.nodes.get_mut(&p) else {
                continue;
            };
            if n.kids > 0 {
                // An address that is also a prefix of longer ones: its own count goes.
                n.ip_leaf = false;
                n.leaf_hits[1] = 0;
                n.expires_ms = None;
                continue;
            }
            self.nodes.remove(&p);
            gone += 1;
            if p.len > 1 {
                if let Some(dad) = self.nodes.get_mut(&p.take(p.len - 1)) {
                    dad.kids = dad.kids.saturating_sub(1);
                    if dad.kids == 0 && !dad.ip_leaf {
                        dad.expires_ms = Some(now_ms + latency_ms);
                    }
                }
            }
        }
        self.next_expiry_ms = self.nodes.values().filter_map(|n| n.expires_ms).min();
        gone
    }
}

/// What a check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Flooding, detected by this request.
    NewFlood,
    /// Flooding, already blocked.
    Blocked,
}

impl Verdict {
    /// Kamailio's return code: 1, -2, -1.
    pub fn code(self) -> i32 {
        match self {
            Verdict::Ok => 1,
            Verdict::NewFlood => -2,
            Verdict::Blocked => -1,
        }
    }
}

/// One row of `pike.top`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopEntry {
    pub ip: IpAddr,
    pub hits_prev: u32,
    pub hits_curr: u32,
    /// Seconds until it is forgotten.
    pub expires: u64,
    pub blocked: bool,
}

/// The tree of every address, shared by every core.
#[derive(Debug)]
pub struct Pike {
    params: PikeParams,
    shards: Box<[Mutex<Shard>]>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pike {
    pub fn new(params: PikeParams) -> Pike {
        Pike {
            params,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    pub fn params(&self) -> PikeParams {
        self.params
    }

    fn shard(&self, first: u8) -> &Mutex<Shard> {
        &self.shards[usize::from(first) % SHARDS]
    }

    /// Counts one request from `ip` at `now_ms` (unix milliseconds).
    pub fn check(&self, ip: IpAddr, now_ms: u64) -> Verdict {
        let p = self.params;
        let unit = now_ms / p.unit_ms;
        let expires = now_ms + p.remove_latency_ms;
        let addr = Prefix::of(ip);
        let mut shard = lock(self.shard(addr.bytes[0]));
        // What expired goes first (looked at once a second at most).
        if now_ms.saturating_sub(shard.swept_ms) >= 1000 {
            shard.sweep(now_ms, p.remove_latency_ms);
        }
        // The longest prefix in the tree: it grows one byte at a time.
        let mut matched = 0u8;
        while matched < addr.len && shard.nodes.contains_key(&addr.take(matched + 1)) {
            matched += 1;
        }
        if matched == 0 {
            shard
                .nodes
                .insert(addr.take(1), Node::new(unit, [0, 1], [0, 0], expires));
            shard.note(expires);
            return Verdict::Ok;
        }
        let key = addr.take(matched);
        let Some(mut node) = shard.nodes.get(&key).copied() else {
            return Verdict::Ok;
        };
        node.roll(unit, p.density);
        let verdict = if matched == addr.len {
            node.ip_leaf = true;
            node.leaf_hits[1] = node.leaf_hits[1].saturating_add(1);
            let verdict = if node.blocked {
                Verdict::Blocked
            } else if hot(node.leaf_hits, p.density) {
                node.blocked = true;
                Verdict::NewFlood
            } else {
                Verdict::Ok
            };
            node.expires_ms = Some(expires);
            shard.note(expires);
            verdict
        } else {
            node.hits[1] = node.hits[1].saturating_add(1);
            let quarter = p.density >> 2;
            if hot(node.hits, quarter) {
                // The child for the next byte takes the prefix's hits less one.
                let leaf_prev = if node.leaf_hits[1] >= 1 {
                    node.leaf_hits[0].saturating_sub(1)
                } else {
                    0
                };
                let child = Node::new(
                    unit,
                    [0, node.hits[1].saturating_sub(1)],
                    [leaf_prev, 0],
                    expires,
                );
                shard.nodes.insert(addr.take(matched + 1), child);
                shard.note(expires);
                node.kids += 1;
                // A prefix that now only leads to its child is no longer timed.
                if node.kids == 1 && !node.ip_leaf {
                    node.expires_ms = None;
                }
            }
            // A prefix that is not hot is not kept alive by its hits: it expires.
            Verdict::Ok
        };
        shard.nodes.insert(key, node);
        verdict
    }

    /// Forgets what was not hit for `remove_latency`; how many nodes went.
    pub fn expire(&self, now_ms: u64) -> usize {
        let latency = self.params.remove_latency_ms;
        self.shards
            .iter()
            .map(|s| lock(s).sweep(now_ms, latency))
            .sum()
    }

    /// `pike.top [ALL|HOT|WARM]`: blocked addresses (HOT), addresses counted
    /// but not blocked (WARM), or both (ALL); most requests first.
    pub fn top(&self, filter: &str, now_ms: u64) -> Result<Vec<TopEntry>, String> {
        let want = |blocked: bool| match filter.to_ascii_uppercase().as_str() {
            "" | "ALL" => Ok(true),
            "HOT" => Ok(blocked),
            "WARM" => Ok(!blocked),
            other => Err(format!(
                "pike.top: unknown filter \"{other}\" (ALL, HOT or WARM)"
            )),
        };
        want(false)?;
        let p = self.params;
        let unit = now_ms / p.unit_ms;
        let mut out = Vec::new();
        for s in self.shards.iter() {
            for (prefix, n) in lock(s).nodes.iter() {
                let (Some(ip), true) = (prefix.ip(), n.ip_leaf) else {
                    continue;
                };
                let mut n = *n;
                n.roll(unit, p.density);
                let left = n.expires_ms.map_or(0, |e| e.saturating_sub(now_ms));
                if n.expires_ms.is_some_and(|e| e <= now_ms) || !want(n.blocked)? {
                    continue;
                }
                out.push(TopEntry {
                    ip,
                    hits_prev: n.leaf_hits[0],
                    hits_curr: n.leaf_hits[1],
                    expires: left / 1000,
                    blocked: n.blocked,
                });
            }
        }
        out.sort_by_key(|t| std::cmp::Reverse((t.blocked, t.hits_curr + t.hits_prev)));
        Ok(out)
    }

    /// `pike.top` as the control socket answers it.
    pub fn top_json(&self, filter: &str, now_ms: u64) -> Result<serde_json::Value, (i32, String)> {
        let rows = self.top(filter, now_ms).map_err(|e| (400, e))?;
        Ok(serde_json::Value::Array(
            rows.iter()
                .map(|t| {
                    serde_json::json!({
                        "ip_addr": t.ip.to_string(),
                        "leaf_hits_prev": t.hits_prev,
                        "leaf_hits_curr": t.hits_curr,
                        "expires": t.expires,
                        "status": if t.blocked { "HOT" } else { "WARM" },
                    })
                })
                .collect(),
        ))
    }
}

/// Forgets stale addresses once per sampling unit (whichever core comes first).
impl SharedTimer for Pike {
    fn interval(&self) -> Duration {
        Duration::from_millis(self.params.unit_ms)
    }

    fn on_timer(&self, unix_ms: u64) {
        self.expire(unix_ms);
    }
}

fn pike<'e>(ctx: &MsgCtx<'e>) -> Option<&'e Pike> {
    let p = ctx.env.services.get::<Pike>();
    if p.is_none() {
        log::error!("pike: not started");
    }
    p
}

fn report(ip: IpAddr, v: Verdict) -> i32 {
    if v == Verdict::NewFlood {
        log::warn!("PIKE - BLOCKing ip {ip}");
    }
    v.code()
}

/// `pike_check_req()`: 1 not blocked, -2 flood detected now, -1 blocked already.
fn pike_check_req(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    // An internal problem lets the request through (Kamailio returns 1 too).
    let Some(p) = pike(ctx) else { return 1 };
    let ip = ctx.src.ip();
    report(ip, p.check(ip, ctx.unix_ms()))
}

/// `pike_check_ip(ip)`: the same for an address given as text.
fn pike_check_ip(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(p) = pike(ctx) else { return 1 };
    let text = args.str(ctx, 0);
    let Some(ip) = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.trim().trim_matches(|c| c == '[' || c == ']').parse().ok())
    else {
        log::error!(
            "pike_check_ip: {:?} is not an IP address",
            String::from_utf8_lossy(&text)
        );
        return 1;
    };
    report(ip, p.check(ip, ctx.unix_ms()))
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "pike",
    aliases: &[],
    functions: &[
        FunctionDef {
            name: "pike_check_req",
            min_args: 0,
            max_args: 0,
            routes: RouteMask::REQUEST
                .or(RouteMask::ONREPLY)
                .or(RouteMask::REPLY),
            fixup: None,
            call: pike_check_req,
        },
        FunctionDef {
            name: "pike_check_ip",
            min_args: 1,
            max_args: 1,
            routes: RouteMask::ANY,
            fixup: None,
            call: pike_check_ip,
        },
    ],
    params: &[
        ParamDef {
            name: "sampling_time_unit",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "reqs_density_per_unit",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "remove_latency",
            kind: ParamKind::Int,
        },
        ParamDef {
            name: "pike_log_level",
            kind: ParamKind::Int,
        },
    ],
    always: false,
};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::modules::testutil::{run, Harness, INVITE};

    fn pike(unit_s: u64, density: u32, latency_s: u64) -> Pike {
        Pike::new(PikeParams {
            unit_ms: unit_s * 1000,
            density,
            remove_latency_ms: latency_s * 1000,
        })
    }

    const T0: u64 = 1_700_000_000_000;

    /// The request number (from 1) of `ip`'s first `NewFlood` in a burst at `t`.
    fn first_flood(p: &Pike, ip: IpAddr, t: u64) -> usize {
        (1..=100)
            .find(|_| p.check(ip, t) == Verdict::NewFlood)
            .expect("a flood within 100 requests")
    }

    #[test]
    fn a_fresh_source_is_counted_once_its_prefixes_grew() {
        // Measured with Kamailio 5.6.3: the 10th request with density 6, the
        // 22nd with the stock config's 16 (4 requests grow 127, 127.0,
        // 127.0.0 and the address; then density requests of its own).
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(first_flood(&pike(2, 6, 120), ip, T0), 10);
        assert_eq!(first_flood(&pike(2, 16, 120), ip, T0), 22);
        // Below 4 a quarter is 0: every prefix grows at once.
        assert_eq!(first_flood(&pike(2, 2, 120), ip, T0), 6);
        // IPv6: 16 bytes to grow, one request each after the first.
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(first_flood(&pike(2, 6, 120), v6, T0), 16 + 6);
    }

    #[test]
    fn a_neighbour_finds_the_prefixes_grown() {
        let p = pike(2, 16, 120);
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        let b: IpAddr = "10.1.2.4".parse().unwrap();
        let c: IpAddr = "11.1.2.3".parse().unwrap();
        assert_eq!(first_flood(&p, a, T0), 22);
        // 10.1.2 has hits 4 (hot for 16/4): b's first request grows b with 4
        // hits inherited (less one), so its 17th is the 16th of its own.
        assert_eq!(first_flood(&p, b, T0), 17);
        // Another first byte starts afresh.
        assert_eq!(first_flood(&p, c, T0), 22);
        assert_eq!(p.check(a, T0 + 1), Verdict::Blocked);
    }

    #[test]
    fn blocked_until_a_unit_boundary_where_it_is_no_longer_hot() {
        let p = pike(2, 6, 120);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let other: IpAddr = "203.0.113.9".parse().unwrap();
        for i in 1..10 {
            assert_eq!(p.check(ip, T0), Verdict::Ok, "request {i}");
        }
        assert_eq!(p.check(ip, T0 + 10), Verdict::NewFlood);
        assert_eq!(p.check(ip, T0 + 20), Verdict::Blocked);
        assert_eq!(p.check(other, T0 + 20), Verdict::Ok);
        // Next unit: the previous one still holds 7 of its own, still hot.
        assert_eq!(p.check(ip, T0 + 2_000), Verdict::Blocked);
        // Two units later with no traffic in between: released.
        assert_eq!(p.check(ip, T0 + 6_000), Verdict::Ok);
        assert_eq!(Verdict::NewFlood.code(), -2);
        assert_eq!(Verdict::Blocked.code(), -1);
        assert_eq!(Verdict::Ok.code(), 1);
    }

    #[test]
    fn spread_over_units_the_mean_counts() {
        let p = pike(1, 4, 120);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        // Grown in the first unit; then 3 of its own per unit never reaches 4
        // in a unit nor on average.
        for _ in 0..4 {
            assert_eq!(p.check(ip, T0), Verdict::Ok);
        }
        for unit in 1..6u64 {
            for k in 0..3 {
                assert_eq!(p.check(ip, T0 + unit * 1000 + k), Verdict::Ok);
            }
        }
        // 4 in a unit is hot.
        for k in 0..3 {
            assert_eq!(p.check(ip, T0 + 7000 + k), Verdict::Ok);
        }
        assert_eq!(p.check(ip, T0 + 7003), Verdict::NewFlood);
    }

    #[test]
    fn quiet_addresses_are_forgotten_and_top_lists_them() {
        let p = pike(2, 3, 4);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        // Density 3: a quarter is 0, a grows in 4 requests, then 3 of its own.
        for _ in 0..7 {
            p.check(a, T0);
        }
        // b finds 192.0.2 grown: one request grows it, one counts.
        p.check(b, T0);
        p.check(b, T0);
        let top = p.top("ALL", T0 + 1).unwrap();
        assert_eq!(top.len(), 2, "{top:?}");
        assert_eq!((top[0].ip, top[0].blocked, top[0].hits_curr), (a, true, 3));
        assert_eq!((top[1].ip, top[1].blocked, top[1].hits_curr), (b, false, 1));
        assert_eq!(p.top("HOT", T0).unwrap().len(), 1);
        assert_eq!(p.top("warm", T0).unwrap()[0].ip, b);
        assert!(p.top("COLD", T0).is_err());
        let json = p.top_json("HOT", T0).unwrap();
        assert_eq!(json[0]["ip_addr"], "192.0.2.1");
        assert_eq!(json[0]["status"], "HOT");
        assert_eq!(json[0]["expires"], 4);
        assert_eq!(p.expire(T0 + 3_999), 0);
        // Both addresses go; their prefix 192.0.2 is timed again then.
        assert_eq!(p.expire(T0 + 4_000), 2);
        assert!(p.top("ALL", T0 + 4_000).unwrap().is_empty());
        // The prefixes go one level per remove_latency.
        assert_eq!(p.expire(T0 + 8_000), 1);
        assert_eq!(p.expire(T0 + 12_000), 1);
        assert_eq!(p.expire(T0 + 16_000), 1);
        assert_eq!(p.expire(T0 + 60_000), 0);
        // A blocked address that stays quiet for remove_latency starts afresh.
        for _ in 0..7 {
            p.check(a, T0 + 100_000);
        }
        assert_eq!(p.check(a, T0 + 100_000), Verdict::Blocked);
        assert_eq!(p.expire(T0 + 200_000), 1);
        // Its prefixes are still there (each goes remove_latency after its
        // last child): one request grows it again, then 3 of its own.
        assert_eq!(first_flood(&p, a, T0 + 200_000), 4);
    }

    #[test]
    fn parameters() {
        let mut mp = ModParams::default();
        use crate::script::registry::ParamValue;
        mp.push("pike", "sampling_time_unit", ParamValue::Int(2));
        mp.push("pike", "reqs_density_per_unit", ParamValue::Int(16));
        mp.push("pike", "remove_latency", ParamValue::Int(4));
        assert_eq!(
            PikeParams::from_modparams(&mp).unwrap(),
            PikeParams {
                unit_ms: 2000,
                density: 16,
                remove_latency_ms: 4000
            }
        );
        mp.push("pike", "sampling_time_unit", ParamValue::Int(0));
        assert!(PikeParams::from_modparams(&mp).is_err());
    }

    #[test]
    fn functions_count_the_source_address() {
        let mut h = Harness::new(INVITE);
        h.env.services.insert(Arc::new(pike(2, 2, 120)));
        let mut ctx = h.ctx();
        // Density 2: four requests grow the address, two of its own flood.
        for _ in 0..5 {
            assert_eq!(run(&mut ctx, &MODULE, "pike_check_req", &[]), 1);
        }
        assert_eq!(run(&mut ctx, &MODULE, "pike_check_req", &[]), -2);
        assert_eq!(run(&mut ctx, &MODULE, "pike_check_req", &[]), -1);
        assert_eq!(
            run(&mut ctx, &MODULE, "pike_check_ip", &["[2001:db8::2]"]),
            1
        );
        assert_eq!(
            run(&mut ctx, &MODULE, "pike_check_ip", &["198.51.100.1"]),
            -1
        );
        assert_eq!(run(&mut ctx, &MODULE, "pike_check_ip", &["nonsense"]), 1);
    }
}
