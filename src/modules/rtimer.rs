//! rtimer: routes run on a timer, declared with
//! `modparam("rtimer", "timer", "name=NAME;interval=SECONDS[u];mode=N")` and
//! `modparam("rtimer", "exec", "timer=NAME;route=ROUTE")`.
//!
//! As in Kamailio:
//! - `interval` is in seconds, or in microseconds when it ends in `u`; 0 (or
//!   none) means 120 s. The first run is one interval after start.
//! - `mode` 0 runs the timer on the shared timer, N > 0 on N timer processes
//!   of its own: each runs it every interval, so the routes run N times per
//!   interval. A microsecond timer has at least one process.
//! - Several `exec` on one timer run in the reverse order of their lines
//!   (Kamailio prepends each to the timer's list).
//! - Each route runs as a `request_route` on a message the proxy makes up:
//!   `OPTIONS sip:you@kamailio.org` from 127.0.0.1:5060 over UDP.
//!
//! Each timer runs once per interval for the whole proxy (not once per
//! core): every core asks [`Rtimer::on_timer`] in turn, and the first to see
//! a timer due claims that run with a compare-and-swap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::modules::core::engine::FAKED_REQUEST;
use crate::script::ctx::{Env, LocalEvent, LocalRequests, LocalRoute};
use crate::script::registry::{param, ModParams, ModuleDef, ParamDef, ParamKind, ParamValue};
use crate::sip::{Message, Transmit};

pub static MODULE: ModuleDef = ModuleDef {
    name: "rtimer",
    aliases: &[],
    functions: &[],
    params: PARAMS,
    always: false,
};

const PARAMS: &[ParamDef] = &[
    param("timer", ParamKind::Str),
    param("exec", ParamKind::Str),
];

/// One declared timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerSpec {
    pub name: String,
    pub interval: Duration,
    /// How many times the routes run per interval (Kamailio's processes; ≥ 1).
    pub runs: u32,
    /// The routes to run, in run order.
    pub routes: Vec<String>,
}

/// `name=value;name=value` as Kamailio's parameter parser reads a modparam
/// value (names case-insensitive, blanks around both trimmed, a trailing `;`
/// allowed).
fn params(text: &str) -> Result<Vec<(String, String)>, String> {
    let text = text.trim();
    let text = text.strip_suffix(';').unwrap_or(text);
    text.split(';')
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            let n = n.trim();
            if n.is_empty() {
                return Err(format!("bad parameter list \"{text}\""));
            }
            Ok((n.to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

fn timer_spec(text: &str) -> Result<TimerSpec, String> {
    let mut name = None;
    let mut mode: Option<u32> = None;
    let mut interval = None;
    for (n, v) in params(text)? {
        match n.as_str() {
            "name" => name = Some(v),
            // The first mode given counts (a later one is ignored).
            "mode" if mode.is_none() => {
                mode = Some(v.parse().map_err(|_| format!("invalid mode \"{v}\""))?)
            }
            "interval" => {
                let (digits, micro) = match v.strip_suffix(['u', 'U']) {
                    Some(d) => (d, true),
                    None => (v.as_str(), false),
                };
                let n: u64 = digits
                    .parse()
                    .map_err(|_| format!("invalid interval \"{v}\""))?;
                interval = Some((n, micro));
            }
            _ => {}
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("timer \"{text}\" has no name"))?;
    let (n, micro) = interval.unwrap_or((0, false));
    let interval = match (n, micro) {
        (0, _) => Duration::from_secs(120),
        (n, true) => Duration::from_micros(n),
        (n, false) => Duration::from_secs(n),
    };
    let mode = mode.unwrap_or(0);
    Ok(TimerSpec {
        name,
        interval,
        runs: mode.max(1),
        routes: Vec::new(),
    })
}

/// The timers declared by the module parameters, with their routes.
pub fn timers(mp: &ModParams) -> Result<Vec<TimerSpec>, String> {
    let strings = |param: &str| -> Vec<String> {
        mp.all("rtimer", param)
            .iter()
            .map(|v| match v {
                ParamValue::Str(s) => s.clone(),
                ParamValue::Int(i) => i.to_string(),
            })
            .collect()
    };
    let mut list: Vec<TimerSpec> = Vec::new();
    for text in strings("timer") {
        let t = timer_spec(&text).map_err(|e| format!("rtimer: {e}"))?;
        if list.iter().any(|o| o.name.eq_ignore_ascii_case(&t.name)) {
            return Err(format!("rtimer: duplicate timer with name \"{}\"", t.name));
        }
        list.push(t);
    }
    for text in strings("exec") {
        let mut timer = None;
        let mut route = None;
        for (n, v) in params(&text).map_err(|e| format!("rtimer: {e}"))? {
            match n.as_str() {
                "timer" => timer = Some(v),
                "route" => route = Some(v),
                _ => {}
            }
        }
        let timer = timer.ok_or_else(|| format!("rtimer: exec \"{text}\" names no timer"))?;
        let route = route
            .filter(|r| !r.is_empty())
            .ok_or_else(|| format!("rtimer: exec \"{text}\" names no route"))?;
        let t = list
            .iter_mut()
            .find(|t| t.name.eq_ignore_ascii_case(&timer))
            .ok_or_else(|| {
                format!("rtimer: exec names timer \"{timer}\", which is not declared")
            })?;
        t.routes.insert(0, route);
    }
    Ok(list)
}

/// The running timers (shared by every core).
pub struct Rtimer {
    timers: Vec<TimerSpec>,
    /// When each timer is due next, in microseconds since `start`.
    due: Vec<AtomicU64>,
    /// The first time a core asked (the timers count from there).
    start: OnceLock<Instant>,
    /// How often the cores ask: the greatest common divisor of the intervals.
    tick: Duration,
    request: Bytes,
}

impl Rtimer {
    /// The timers that have routes to run (a timer with none does nothing).
    pub fn new(timers: Vec<TimerSpec>) -> Rtimer {
        let timers: Vec<TimerSpec> = timers
            .into_iter()
            .filter(|t| !t.routes.is_empty())
            .collect();
        let tick_us = timers
            .iter()
            .map(|t| t.interval.as_micros() as u64)
            .fold(0, gcd)
            .max(1_000);
        Rtimer {
            due: timers
                .iter()
                .map(|t| AtomicU64::new(t.interval.as_micros() as u64))
                .collect(),
            timers,
            start: OnceLock::new(),
            tick: Duration::from_micros(tick_us),
            request: Bytes::from_static(FAKED_REQUEST),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }

    /// The route runs due at `now`, each claimed for this caller only.
    fn claim(&self, now: Instant, runs: &mut Vec<String>) {
        let start = *self.start.get_or_init(|| now);
        let now_us = now.saturating_duration_since(start).as_micros() as u64;
        for (t, due) in self.timers.iter().zip(&self.due) {
            let interval = t.interval.as_micros() as u64;
            let at = due.load(Ordering::Acquire);
            if now_us < at {
                continue;
            }
            // One run per call even when several intervals went by (a
            // blocked worker), as Kamailio's timer processes sleep and run.
            let next = if at + interval <= now_us {
                now_us + interval
            } else {
                at + interval
            };
            if due
                .compare_exchange(at, next, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue; // another core took this run
            }
            for _ in 0..t.runs {
                runs.extend(t.routes.iter().cloned());
            }
        }
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl LocalRequests for Rtimer {
    fn interval(&self) -> Duration {
        self.tick
    }

    fn on_timer(&self, _: &Env, now: Instant, _: &mut Vec<Transmit>, events: &mut Vec<LocalEvent>) {
        let mut runs = Vec::new();
        self.claim(now, &mut runs);
        for route in runs {
            match Message::parse(self.request.clone()) {
                Ok(msg) => events.push(LocalEvent {
                    route: LocalRoute::Request(route),
                    msg,
                    dst_uri: None,
                }),
                Err(e) => log::warn!("rtimer: cannot make the request: {e}"),
            }
        }
    }

    fn on_reply(&self, _: &Message, _: Instant, _: &mut Vec<LocalEvent>) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(lines: &[(&str, &str)]) -> ModParams {
        let mut mp = ModParams::default();
        for (p, v) in lines {
            mp.push("rtimer", p, ParamValue::Str((*v).to_string()));
        }
        mp
    }

    #[test]
    fn timer_parameters_read_as_kamailio_does() {
        let list = timers(&mp(&[
            ("timer", "name=ta;interval=10;mode=1;"),
            ("timer", " NAME = tb ; interval = 250000u "),
            ("timer", "name=tc;mode=3"),
            ("exec", "timer=ta;route=ONE"),
            ("exec", "timer=TA;route=TWO"),
            ("exec", "timer=tb;route=THREE"),
        ]))
        .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].name, "ta");
        assert_eq!(list[0].interval, Duration::from_secs(10));
        assert_eq!(list[0].runs, 1);
        // Later exec lines run first (prepended, as in Kamailio).
        assert_eq!(list[0].routes, ["TWO", "ONE"]);
        assert_eq!(list[1].interval, Duration::from_micros(250_000));
        assert_eq!(list[1].runs, 1, "a microsecond timer gets a process");
        assert_eq!(list[1].routes, ["THREE"]);
        assert_eq!(
            list[2].interval,
            Duration::from_secs(120),
            "no interval: 120 s"
        );
        assert_eq!(list[2].runs, 3);
        assert!(list[2].routes.is_empty());
    }

    #[test]
    fn bad_timer_parameters_are_refused() {
        for (lines, needle) in [
            (vec![("timer", "interval=10")], "no name"),
            (vec![("timer", "name=a;interval=ten")], "invalid interval"),
            (vec![("timer", "name=a;mode=x")], "invalid mode"),
            (vec![("timer", "name=a"), ("timer", "name=A")], "duplicate"),
            (vec![("exec", "timer=zz;route=R")], "not declared"),
            (vec![("timer", "name=a"), ("exec", "timer=a")], "no route"),
        ] {
            let err = timers(&mp(&lines)).unwrap_err();
            assert!(err.contains(needle), "{lines:?}: {err}");
        }
    }

    fn spec(name: &str, interval: Duration, runs: u32, routes: &[&str]) -> TimerSpec {
        TimerSpec {
            name: name.into(),
            interval,
            runs,
            routes: routes.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn each_interval_runs_once_for_all_cores() {
        let r = Rtimer::new(vec![
            spec("a", Duration::from_secs(2), 1, &["A"]),
            spec("b", Duration::from_secs(3), 2, &["B"]),
            spec("idle", Duration::from_secs(1), 1, &[]),
        ]);
        // The idle timer is dropped; the cores ask every gcd(2 s, 3 s).
        assert_eq!(r.interval(), Duration::from_secs(1));
        let t0 = crate::modules::testutil::some_instant();
        let mut runs = Vec::new();
        r.claim(t0, &mut runs);
        assert!(runs.is_empty(), "the first run is one interval after start");
        let s = |n: u64| t0 + Duration::from_secs(n);
        r.claim(s(1), &mut runs);
        assert!(runs.is_empty());
        r.claim(s(2), &mut runs);
        assert_eq!(runs, ["A"]);
        // A second core asking at the same time gets nothing.
        let mut other = Vec::new();
        r.claim(s(2), &mut other);
        assert!(other.is_empty());
        runs.clear();
        r.claim(s(3), &mut runs);
        assert_eq!(runs, ["B", "B"], "mode 2: two runs per interval");
        runs.clear();
        r.claim(s(4), &mut runs);
        assert_eq!(runs, ["A"]);
        runs.clear();
        // Late by several intervals: one run, then back on the beat.
        r.claim(s(20), &mut runs);
        assert_eq!(runs, ["A", "B", "B"]);
        runs.clear();
        r.claim(s(21), &mut runs);
        assert!(runs.is_empty());
        r.claim(s(22), &mut runs);
        assert_eq!(runs, ["A"]);
    }

    #[test]
    fn the_request_is_kamailios_faked_message() {
        let msg = Message::parse(Bytes::from_static(FAKED_REQUEST)).unwrap();
        assert!(msg.is_request());
        assert_eq!(
            msg.header_value(crate::sip::HeaderName::CallId).unwrap(),
            b"123".as_slice()
        );
    }
}
