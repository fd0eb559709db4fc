//! pipelimit: request rate limits on named pipes, as Kamailio 5.6's module.
//!
//! - `pl_check(name)`: counts the request on an existing pipe; 1 within the
//!   limit, -1 over it, -2 no such pipe.
//! - `pl_check(name, algorithm, limit)`: the same, making the pipe when it
//!   does not exist (and setting its limit when it does, if `limit` > 0).
//! - `pl_active(name)`: 1 when the pipe exists, else -1.
//! - `pl_drop([retry_after[, retry_max]])`: `reply_code`/`reply_reason`
//!   (503 "Server Unavailable"), with `Retry-After` (random in the range
//!   when two values are given; one value alone is that value).
//!
//! A pipe counts requests over `timer_interval` seconds (10 by default), then
//! starts again. `TAILDROP` lets `limit` requests through per interval;
//! `RED` lets through every n-th request, n being the last interval's count
//! over `limit × timer_interval` (all while that is 0). Pipes come from the
//! script or from the `pl_pipes` table (`db_url`), shared by every core;
//! `clean_unused` N drops a pipe unused for N intervals.
//! The `FEEDBACK` (CPU load) and `NETWORK` (socket backlog) algorithms are
//! refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::script::ctx::{MsgCtx, SharedTimer};
use crate::script::registry::{
    func, param, Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};

pub static MODULE: ModuleDef = ModuleDef {
    name: "pipelimit",
    aliases: &[],
    functions: FUNCTIONS,
    params: PARAMS,
    always: false,
};

const DROP_ROUTES: RouteMask = RouteMask::REQUEST
    .or(RouteMask::BRANCH)
    .or(RouteMask::FAILURE)
    .or(RouteMask::ONSEND);

const FUNCTIONS: &[FunctionDef] = &[
    func(
        "pl_check",
        1,
        3,
        RouteMask::ANY,
        Some(fixup_check),
        pl_check,
    ),
    func("pl_active", 1, 1, RouteMask::ANY, None, pl_active),
    func("pl_drop", 0, 2, DROP_ROUTES, Some(fixup_drop), pl_drop),
];

const PARAMS: &[ParamDef] = &[
    param("timer_interval", ParamKind::Int),
    param("timer_mode", ParamKind::Int),
    param("reply_code", ParamKind::Int),
    param("reply_reason", ParamKind::Str),
    param("db_url", ParamKind::Str),
    param("plp_table_name", ParamKind::Str),
    param("plp_pipeid_column", ParamKind::Str),
    param("plp_limit_column", ParamKind::Str),
    param("plp_algorithm_column", ParamKind::Str),
    param("hash_size", ParamKind::Int),
    param("load_fetch", ParamKind::Int),
    param("clean_unused", ParamKind::Int),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    TailDrop,
    Red,
}

impl Algorithm {
    /// Kamailio's names, case as written.
    pub fn parse(name: &str) -> Result<Algorithm, String> {
        match name {
            "TAILDROP" => Ok(Algorithm::TailDrop),
            "RED" => Ok(Algorithm::Red),
            "FEEDBACK" | "NETWORK" => Err(format!("algorithm {name} is not supported")),
            _ => Err(format!("unknown algorithm \"{name}\" (TAILDROP, RED)")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::TailDrop => "TAILDROP",
            Algorithm::Red => "RED",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipe {
    pub algorithm: Algorithm,
    pub limit: i64,
    pub counter: i64,
    pub last_counter: i64,
    pub load: i64,
    unused_intervals: u32,
}

impl Pipe {
    fn new(algorithm: Algorithm, limit: i64) -> Pipe {
        Pipe {
            algorithm,
            limit,
            counter: 0,
            last_counter: 0,
            load: 0,
            unused_intervals: 0,
        }
    }

    /// Counts one request: 1 let through, -1 over the limit.
    fn push(&mut self) -> i32 {
        self.counter = self.counter.saturating_add(1).min(i64::from(i32::MAX));
        let through = match self.algorithm {
            Algorithm::TailDrop => self.counter <= self.limit,
            Algorithm::Red => self.load == 0 || self.counter % self.load == 0,
        };
        if through {
            1
        } else {
            -1
        }
    }
}

/// The pipes and the module's settings (shared by every core).
pub struct Pipelimit {
    pipes: Mutex<HashMap<String, Pipe>>,
    interval_s: u64,
    clean_unused: u32,
    pub reply_code: u16,
    pub reply_reason: String,
    /// When the interval last ended (unix ms), so the cores end each once.
    last_tick: AtomicU64,
    /// A random source for `Retry-After` ranges.
    seed: AtomicU64,
}

impl Pipelimit {
    /// The settings, with the pipes from `rows` (`(id, algorithm, limit)`,
    /// the `pl_pipes` table).
    pub fn new(
        mp: &ModParams,
        rows: Vec<(String, String, i64)>,
        seed: u64,
    ) -> Result<Pipelimit, String> {
        let interval = match mp.int("pipelimit", "timer_interval").unwrap_or(10) {
            n if n > 0 => n as u64,
            n => return Err(format!("pipelimit: invalid timer interval parameter: {n}")),
        };
        let reply_code = match mp.int("pipelimit", "reply_code").unwrap_or(503) {
            c @ 100..=699 => c as u16,
            c => return Err(format!("pipelimit: reply_code {c} is not a SIP status")),
        };
        let mut pipes = HashMap::new();
        for (id, algo, limit) in rows {
            let a = Algorithm::parse(&algo).map_err(|e| format!("pipelimit: pipe {id}: {e}"))?;
            pipes.insert(id, Pipe::new(a, limit));
        }
        Ok(Pipelimit {
            pipes: Mutex::new(pipes),
            interval_s: interval,
            clean_unused: mp
                .int("pipelimit", "clean_unused")
                .map_or(0, |v| u32::try_from(v.max(0)).unwrap_or(u32::MAX)),
            reply_code,
            reply_reason: mp
                .str("pipelimit", "reply_reason")
                .unwrap_or("Server Unavailable")
                .to_string(),
            last_tick: AtomicU64::new(0),
            seed: AtomicU64::new(seed),
        })
    }

    /// The query that reads the pipes from the database.
    pub fn table_query(mp: &ModParams) -> String {
        let s = |p: &str, d: &'static str| mp.str("pipelimit", p).unwrap_or(d).to_string();
        format!(
            "SELECT {}, {}, {} FROM {}",
            s("plp_pipeid_column", "pipeid"),
            s("plp_algorithm_column", "algorithm"),
            s("plp_limit_column", "plimit"),
            s("plp_table_name", "pl_pipes")
        )
    }

    /// The pipes in the database: `(id, algorithm, limit)`.
    pub fn load_pipes(
        store: &crate::store::StoreHandle,
        mp: &ModParams,
    ) -> Result<Vec<(String, String, i64)>, String> {
        use crate::store::SqlValue;
        let sql = Pipelimit::table_query(mp);
        let rows = store
            .call(move |s| s.query(&sql), Duration::from_secs(10))
            .ok_or("pipelimit: the database did not answer")?
            .map_err(|e| format!("pipelimit: could not load pipes: {e}"))?;
        let text = |v: &SqlValue| match v {
            SqlValue::Str(s) => String::from_utf8_lossy(s).into_owned(),
            SqlValue::Int(i) | SqlValue::BigInt(i) => i.to_string(),
            SqlValue::Double(d) => d.to_string(),
            SqlValue::Null => String::new(),
        };
        let int = |v: &SqlValue| match v {
            SqlValue::Int(i) | SqlValue::BigInt(i) => *i,
            SqlValue::Double(d) => *d as i64,
            SqlValue::Str(s) => String::from_utf8_lossy(s).trim().parse().unwrap_or(0),
            SqlValue::Null => 0,
        };
        Ok(rows
            .rows
            .iter()
            .filter_map(|r| match r.as_slice() {
                [id, algo, limit] => Some((text(id), text(algo), int(limit))),
                _ => None,
            })
            .collect())
    }

    /// `pl_check`: counts a request on `name` (made with `create` first).
    pub fn check(&self, name: &str, create: Option<(Algorithm, i64)>) -> i32 {
        let Ok(mut pipes) = self.pipes.lock() else {
            return -2;
        };
        if let Some((algorithm, limit)) = create {
            match pipes.get_mut(name) {
                Some(p) if limit > 0 => p.limit = limit,
                Some(_) => {}
                None => {
                    pipes.insert(name.to_string(), Pipe::new(algorithm, limit));
                }
            }
        }
        match pipes.get_mut(name) {
            Some(p) => p.push(),
            None => {
                log::error!("pipelimit: pipe not found [{name}]");
                -2
            }
        }
    }

    pub fn exists(&self, name: &str) -> bool {
        self.pipes.lock().is_ok_and(|p| p.contains_key(name))
    }

    /// The end of an interval: loads from the counts, counters back to 0.
    pub fn end_interval(&self) {
        let Ok(mut pipes) = self.pipes.lock() else {
            return;
        };
        let interval = self.interval_s as i64;
        let clean = self.clean_unused;
        pipes.retain(|_, p| {
            if clean > 0 {
                if p.counter > 0 {
                    p.unused_intervals = 0;
                } else if p.unused_intervals >= clean {
                    return false;
                } else {
                    p.unused_intervals += 1;
                }
            }
            if p.limit != 0 {
                p.load = p.counter / (p.limit * interval);
            }
            p.last_counter = p.counter;
            p.counter = 0;
            true
        });
    }

    /// A snapshot of the pipes, by name (for the control socket and tests).
    pub fn pipes(&self) -> Vec<(String, Pipe)> {
        let mut v: Vec<_> = self
            .pipes
            .lock()
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn random(&self) -> u64 {
        crate::modules::random::splitmix_next(&self.seed)
    }
}

impl SharedTimer for Pipelimit {
    fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_s)
    }

    fn on_timer(&self, unix_ms: u64) {
        // Every core calls each interval; the first one ends it.
        let last = self.last_tick.load(Ordering::Acquire);
        let half = self.interval_s * 500;
        if last != 0 && unix_ms < last + half {
            return;
        }
        if self
            .last_tick
            .compare_exchange(last, unix_ms, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.end_interval();
        }
    }
}

fn fixup_check(args: &mut Args, _: &ModParams) -> Result<(), String> {
    match args.len() {
        1 | 3 => {}
        _ => return Err("pl_check takes 1 or 3 arguments".into()),
    }
    if let Some(Arg::Str(a)) = args.get(1) {
        Algorithm::parse(&String::from_utf8_lossy(a))?;
    }
    Ok(())
}

fn fixup_drop(args: &mut Args, _: &ModParams) -> Result<(), String> {
    for i in 0..args.len() {
        crate::script::registry::fixup_int(args, i)?;
        if let Some(Arg::Int(n)) = args.get(i) {
            if *n < 0 {
                return Err(format!("argument {} must not be negative", i + 1));
            }
        }
    }
    Ok(())
}

fn module<'c>(ctx: &'c MsgCtx<'_>) -> Option<&'c Pipelimit> {
    let m = ctx.env.services.get::<Pipelimit>();
    if m.is_none() {
        log::error!("pipelimit: not started");
    }
    m
}

fn pl_check(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(m) = module(ctx) else {
        return -1;
    };
    let name = String::from_utf8_lossy(&args.str(ctx, 0)).into_owned();
    if name.is_empty() {
        log::error!("pl_check: invalid pipeid parameter");
        return -1;
    }
    if args.len() == 1 {
        return m.check(&name, None);
    }
    let limit = match args.int(ctx, 2) {
        Some(l) if l >= 0 => l,
        other => {
            log::error!("pl_check: invalid limit value: {other:?}");
            return -1;
        }
    };
    let algo = String::from_utf8_lossy(&args.str(ctx, 1)).into_owned();
    match Algorithm::parse(&algo) {
        Ok(a) => m.check(&name, Some((a, limit))),
        Err(e) => {
            // A pipe that exists keeps its algorithm whatever is given.
            if m.exists(&name) {
                return m.check(&name, None);
            }
            log::error!("pl_check: failed to add pipe [{name}]: {e}");
            -2
        }
    }
}

fn pl_active(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(m) = module(ctx) else {
        return -1;
    };
    let name = String::from_utf8_lossy(&args.str(ctx, 0)).into_owned();
    if m.exists(&name) {
        1
    } else {
        log::error!("pl_active: pipe does not exist [{name}]");
        -1
    }
}

fn pl_drop(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(m) = module(ctx) else {
        return -1;
    };
    let (low, high) = match args.len() {
        0 => (0, 0),
        1 => {
            let r = args.int(ctx, 0).unwrap_or(5);
            (r, r)
        }
        _ => {
            let low = args.int(ctx, 0).unwrap_or(0);
            let high = args.int(ctx, 1).unwrap_or(0);
            (low, high.max(low))
        }
    };
    let header = if low != 0 && high != 0 {
        let after = if high == low {
            low
        } else {
            low + (m.random() % (high - low + 1) as u64) as i64
        };
        format!("Retry-After: {after}\r\n")
    } else {
        String::new()
    };
    let (code, reason) = (m.reply_code, m.reply_reason.clone());
    crate::modules::sl::freply(ctx, code, reason.as_bytes(), header.as_bytes())
}

/// Renders the pipes for the `pl.list` RPC.
pub fn describe(p: &Pipe) -> (&'static str, i64, i64) {
    (p.algorithm.name(), p.limit, p.last_counter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::registry::ParamValue;

    fn mp(lines: &[(&str, i64)]) -> ModParams {
        let mut mp = ModParams::default();
        for (p, v) in lines {
            mp.push("pipelimit", p, ParamValue::Int(*v));
        }
        mp
    }

    #[test]
    fn taildrop_lets_limit_requests_through_per_interval() {
        let pl = Pipelimit::new(&mp(&[("timer_interval", 1)]), vec![], 7).unwrap();
        let got: Vec<i32> = (0..5)
            .map(|_| pl.check("p", Some((Algorithm::TailDrop, 3))))
            .collect();
        assert_eq!(got, [1, 1, 1, -1, -1]);
        pl.end_interval();
        assert_eq!(pl.check("p", None), 1, "a new interval starts from 0");
        assert_eq!(pl.pipes()[0].1.last_counter, 5, "the last interval's count");
        // A limit given again replaces the pipe's; 0 leaves it.
        assert_eq!(pl.check("p", Some((Algorithm::Red, 1))), -1);
        assert_eq!(pl.pipes()[0].1.algorithm, Algorithm::TailDrop);
        assert_eq!(pl.check("p", Some((Algorithm::TailDrop, 0))), -1);
        assert_eq!(pl.check("missing", None), -2);
    }

    #[test]
    fn red_lets_every_nth_through_after_a_busy_interval() {
        let pl = Pipelimit::new(&mp(&[("timer_interval", 2)]), vec![], 7).unwrap();
        // First interval: load 0, everything through.
        for _ in 0..12 {
            assert_eq!(pl.check("r", Some((Algorithm::Red, 2))), 1);
        }
        pl.end_interval();
        // 12 / (2 × 2) = load 3: every third request.
        let got: Vec<i32> = (0..6).map(|_| pl.check("r", None)).collect();
        assert_eq!(got, [-1, -1, 1, -1, -1, 1]);
        assert_eq!(pl.pipes()[0].1.load, 3);
    }

    #[test]
    fn unused_pipes_are_dropped_after_clean_unused_intervals() {
        let pl = Pipelimit::new(
            &mp(&[("clean_unused", 2)]),
            vec![("db".into(), "RED".into(), 5)],
            7,
        )
        .unwrap();
        pl.check("db", None);
        pl.end_interval();
        pl.end_interval();
        pl.end_interval();
        assert!(pl.exists("db"));
        pl.end_interval();
        assert!(!pl.exists("db"));
    }

    #[test]
    fn the_cores_end_each_interval_once() {
        let pl = Pipelimit::new(&mp(&[("timer_interval", 10)]), vec![], 7).unwrap();
        pl.check("p", Some((Algorithm::TailDrop, 1)));
        pl.on_timer(100_000);
        pl.check("p", None);
        pl.on_timer(100_001); // the other core, same tick
        assert_eq!(pl.check("p", None), -1, "the count was not reset twice");
        pl.on_timer(110_000);
        assert_eq!(pl.check("p", None), 1);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(Pipelimit::new(&mp(&[("timer_interval", 0)]), vec![], 1).is_err());
        assert!(Pipelimit::new(&mp(&[("reply_code", 99)]), vec![], 1).is_err());
        let e = Pipelimit::new(&mp(&[]), vec![("x".into(), "FEEDBACK".into(), 80)], 1)
            .err()
            .unwrap();
        assert!(e.contains("not supported"), "{e}");
    }

    #[test]
    fn pl_check_and_pl_drop_from_the_script_side() {
        use crate::modules::testutil::{call, run, sent, Harness, INVITE};
        let mut params = mp(&[]);
        params.push(
            "pipelimit",
            "reply_reason",
            ParamValue::Str("Slow Down".into()),
        );
        let mut h = Harness::new(INVITE);
        h.env.services.insert(std::sync::Arc::new(
            Pipelimit::new(&params, vec![], 7).unwrap(),
        ));
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "pl_active", &["calls"]), -1);
        assert_eq!(
            run(&mut ctx, &MODULE, "pl_check", &["calls", "TAILDROP", "1"]),
            1
        );
        assert_eq!(run(&mut ctx, &MODULE, "pl_active", &["calls"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "pl_check", &["calls"]), -1);
        assert_eq!(call(&mut ctx, &MODULE, "pl_drop", &["7"], &params), 1);
        drop(ctx);
        let reply = sent(&h.out);
        assert!(reply.starts_with("SIP/2.0 503 Slow Down\n"), "{reply}");
        assert!(reply.contains("\nRetry-After: 7\n"), "{reply}");
        h.out.clear();
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "pl_drop", &["3", "5"]), 1);
        drop(ctx);
        let reply = sent(&h.out);
        let after: i64 = reply
            .lines()
            .find_map(|l| l.strip_prefix("Retry-After: "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((3..=5).contains(&after), "{reply}");
        h.out.clear();
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "pl_drop", &[]), 1);
        drop(ctx);
        assert!(!sent(&h.out).contains("Retry-After"));
    }

    #[test]
    fn an_unknown_algorithm_is_refused_at_start() {
        use crate::script::{compile::compile, parse_str, MemoryFiles, Options};
        let text =
            "loadmodule \"pipelimit.so\"\nrequest_route {\n    pl_check(\"a\", \"LEAKY\", 5);\n}\n";
        let files = MemoryFiles::new();
        let cfg = parse_str("t.cfg", text, &Options::with_files(&files)).unwrap();
        let err = compile(&cfg).unwrap_err().rendered().join("\n");
        assert!(
            err.contains("t.cfg:3") && err.contains("unknown algorithm"),
            "{err}"
        );
    }
}
