//! pike: flood detection per source address (KAMAILIO-REFERENCE §7.7).
//!
//! Requests are counted per IP address (IPv4 or IPv6) in sampling units of
//! `sampling_time_unit` seconds: the current unit and the one before. An
//! address is hot when either unit, or their mean, reaches
//! `reqs_density_per_unit`; a hot address is blocked, and released at the
//! first unit boundary where it is no longer hot. An address not seen for
//! `remove_latency` seconds is forgotten.
//!
//! Kamailio grows a tree of address prefixes and only counts the full
//! address once its prefixes are hot: measured with Kamailio 5.6.3 and
//! `reqs_density_per_unit` 6, a fresh IPv4 source got -2 at its 10th request
//! of the unit (and later ones -1). ringsip counts the full address from the
//! first request, so it reports the flood at the density-th request (the 6th
//! there): a few requests earlier, never later.
//!
//! The counters are shared by every core in shards, each with its own lock:
//! two cores wait for each other only for addresses of the same shard; there
//! is no global lock. Time is an input (milliseconds since 1970, from `now`).

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

/// One address's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// The sampling unit `curr` counts (unix ms / unit).
    unit: u64,
    prev: u32,
    curr: u32,
    blocked: bool,
    last_seen_ms: u64,
}

impl Entry {
    fn hot(&self, density: u32) -> bool {
        self.prev >= density
            || self.curr >= density
            || (u64::from(self.prev) + u64::from(self.curr)) / 2 >= u64::from(density)
    }

    /// Moves the window to `unit`; a blocked address that is no longer hot is released.
    fn roll(&mut self, unit: u64, density: u32) {
        if unit <= self.unit {
            return;
        }
        self.prev = if unit == self.unit + 1 { self.curr } else { 0 };
        self.curr = 0;
        self.unit = unit;
        if self.blocked && !self.hot(density) {
            self.blocked = false;
        }
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

/// The counters of every address, shared by every core.
#[derive(Debug)]
pub struct Pike {
    params: PikeParams,
    shards: Box<[Mutex<HashMap<IpAddr, Entry>>]>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pike {
    pub fn new(params: PikeParams) -> Pike {
        Pike {
            params,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    pub fn params(&self) -> PikeParams {
        self.params
    }

    fn shard(&self, ip: &IpAddr) -> &Mutex<HashMap<IpAddr, Entry>> {
        let h = match ip {
            IpAddr::V4(a) => u64::from(u32::from(*a)),
            IpAddr::V6(a) => {
                let v = u128::from(*a);
                (v as u64) ^ ((v >> 64) as u64)
            }
        };
        let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58;
        &self.shards[h as usize % SHARDS]
    }

    /// Counts one request from `ip` at `now_ms` (unix milliseconds).
    pub fn check(&self, ip: IpAddr, now_ms: u64) -> Verdict {
        let p = self.params;
        let unit = now_ms / p.unit_ms;
        let mut shard = lock(self.shard(&ip));
        let e = shard.entry(ip).or_insert(Entry {
            unit,
            prev: 0,
            curr: 0,
            blocked: false,
            last_seen_ms: now_ms,
        });
        if now_ms.saturating_sub(e.last_seen_ms) >= p.remove_latency_ms {
            *e = Entry {
                unit,
                prev: 0,
                curr: 0,
                blocked: false,
                last_seen_ms: now_ms,
            };
        }
        e.roll(unit, p.density);
        e.curr = e.curr.saturating_add(1);
        e.last_seen_ms = now_ms;
        if e.blocked {
            Verdict::Blocked
        } else if e.hot(p.density) {
            e.blocked = true;
            Verdict::NewFlood
        } else {
            Verdict::Ok
        }
    }

    /// Forgets addresses not seen for `remove_latency`; how many went.
    pub fn expire(&self, now_ms: u64) -> usize {
        let latency = self.params.remove_latency_ms;
        let mut n = 0;
        for s in self.shards.iter() {
            let mut s = lock(s);
            let before = s.len();
            s.retain(|_, e| now_ms.saturating_sub(e.last_seen_ms) < latency);
            n += before - s.len();
        }
        n
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
            for (ip, e) in lock(s).iter() {
                let mut e = *e;
                e.roll(unit, p.density);
                let age = now_ms.saturating_sub(e.last_seen_ms);
                if age >= p.remove_latency_ms || !want(e.blocked)? {
                    continue;
                }
                out.push(TopEntry {
                    ip: *ip,
                    hits_prev: e.prev,
                    hits_curr: e.curr,
                    expires: (p.remove_latency_ms - age) / 1000,
                    blocked: e.blocked,
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

    #[test]
    fn flood_is_detected_then_blocked_then_released() {
        let p = pike(2, 5, 120);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let other: IpAddr = "2001:db8::1".parse().unwrap();
        for i in 0..4 {
            assert_eq!(p.check(ip, T0 + i), Verdict::Ok, "request {i}");
        }
        assert_eq!(p.check(ip, T0 + 10), Verdict::NewFlood);
        assert_eq!(p.check(ip, T0 + 20), Verdict::Blocked);
        // Another address is not affected.
        assert_eq!(p.check(other, T0 + 20), Verdict::Ok);
        // Next unit: the previous one still holds 6 requests, so still hot.
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
        // 3 per unit never reaches 4 in a unit nor on average.
        for unit in 0..5u64 {
            for k in 0..3 {
                assert_eq!(p.check(ip, T0 + unit * 1000 + k), Verdict::Ok);
            }
        }
    }

    #[test]
    fn quiet_addresses_are_forgotten_and_top_lists_them() {
        let p = pike(2, 3, 4);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            p.check(a, T0);
        }
        p.check(b, T0);
        let top = p.top("ALL", T0 + 1).unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!((top[0].ip, top[0].blocked, top[0].hits_curr), (a, true, 3));
        assert_eq!(p.top("HOT", T0).unwrap().len(), 1);
        assert_eq!(p.top("warm", T0).unwrap()[0].ip, b);
        assert!(p.top("COLD", T0).is_err());
        let json = p.top_json("HOT", T0).unwrap();
        assert_eq!(json[0]["ip_addr"], "192.0.2.1");
        assert_eq!(json[0]["status"], "HOT");
        assert_eq!(json[0]["expires"], 4);
        assert_eq!(p.expire(T0 + 3_999), 0);
        assert_eq!(p.expire(T0 + 4_000), 2);
        assert!(p.top("ALL", T0 + 4_000).unwrap().is_empty());
        // A blocked address that stays quiet for remove_latency starts afresh.
        for _ in 0..3 {
            p.check(a, T0 + 10_000);
        }
        assert_eq!(p.check(a, T0 + 14_000), Verdict::Ok);
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
        assert_eq!(run(&mut ctx, &MODULE, "pike_check_req", &[]), 1);
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
