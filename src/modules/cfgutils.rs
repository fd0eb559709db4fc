//! cfgutils: script helpers (Kamailio 5.6 semantics). Every function works
//! in every route.
//!
//! - Probability: `rand_event()` (true with the current probability, in
//!   percent; 0 never, 100 always), `rand_set_prob(n)` (0..100, checked at
//!   start-up), `rand_reset_prob()` (back to `initial_probability`, default
//!   10), `rand_get_prob()` (*returns* the probability, so 0 stops the script
//!   as any function returning 0). Shared by every core, as Kamailio's is by
//!   every process.
//! - `$RANDOM`: a random number in 0..2^31.
//! - Global flags: `set_gflag(n)`, `reset_gflag(n)`, `is_gflag(n)` (n in
//!   0..31, `initial_gflags`).
//! - `lock(key)`, `unlock(key)`, `trylock(key)`: a set of 2^`lock_set_size`
//!   locks shared by every core, the key hashed onto one (no
//!   `lock_set_size`: the functions fail, as in Kamailio). A lock stays held
//!   until `unlock`, across messages. Difference: where Kamailio's `lock`
//!   waits for ever (and a process taking its own lock twice hangs), ours
//!   waits at most [`LOCK_WAIT`] and then fails with -1.
//! - `core_hash(s1, s2, size)`: Kamailio's core hash of `s1` then `s2` (empty:
//!   left out) into 2^size slots (size ≤ 0: 2 slots), plus one (never 0).
//! - `check_route_exists(name)`, `route_if_exists(name)`: about `route[name]`;
//!   the second runs it and returns its code (0 when it ended the script).
//! - `sleep(s)`, `usleep(us)`: as in Kamailio they block the worker (one
//!   core here, one child process there) for that long; the engine has no
//!   way to park a message, so the wait is bounded to [`MAX_SLEEP`] per call.
//! - `hash_file`: its MD5 is taken at start-up; `cfgutils.get_config_hash` /
//!   `cfgutils.check_config_hash` compare it ([`Cfgutils::check_config_hash`]).
//! - `abort()`, `pkg_status()`, `shm_status()`, `pkg_summary()`,
//!   `shm_summary()`: the debugging helpers; `abort` logs and answers -1 (a
//!   worker thread may not take the process down), the others log and answer 1.

use crate::script::registry::truth;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(test)]
use std::sync::Arc;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::script::ctx::MsgCtx;
use crate::script::registry::param as p;
use crate::script::registry::{
    fixup_int, Arg, Args, FunctionDef, ModParams, ModuleDef, ParamKind, RouteMask,
};
use crate::script::vm::Outcome;

/// Default `initial_probability` (percent).
const DEFAULT_PROBABILITY: u32 = 10;
/// How long `lock()` waits for a lock held elsewhere before failing.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);
/// The longest one `sleep()` / `usleep()` blocks the worker.
pub const MAX_SLEEP: Duration = Duration::from_secs(5);
/// `lock_set_size` above this is lowered to it (Kamailio's bound).
const MAX_LOCK_BITS: i64 = 14;
/// Nesting bound of `route_if_exists` within itself.
const MAX_NESTED_ROUTES: u32 = 32;

/// One lock of the set.
#[derive(Debug, Default)]
struct Lock {
    held: Mutex<bool>,
    freed: Condvar,
}

/// The module's state, shared by every core.
#[derive(Debug)]
pub struct Cfgutils {
    initial_probability: u32,
    probability: AtomicU32,
    gflags: AtomicU32,
    random: AtomicU64,
    locks: Box<[Lock]>,
    /// MD5 (hex) of `hash_file` at start-up, with the file's name.
    config_hash: Option<(String, String)>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cfgutils {
    /// The state from the module parameters; `seed` starts `$RANDOM` and
    /// `rand_event()`; `read` reads `hash_file` (the caller's file access).
    pub fn from_modparams(
        mp: &ModParams,
        seed: u64,
        read: impl FnOnce(&str) -> std::io::Result<Vec<u8>>,
    ) -> Result<Cfgutils, String> {
        let initial = mp
            .int("cfgutils", "initial_probability")
            .unwrap_or(i64::from(DEFAULT_PROBABILITY));
        let initial_probability = u32::try_from(initial)
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| format!("cfgutils: invalid initial_probability {initial}"))?;
        let gflags = mp.int("cfgutils", "initial_gflags").unwrap_or(0) as u32;
        let bits = mp.int("cfgutils", "lock_set_size").unwrap_or(0);
        let locks = if bits > 0 {
            if bits > MAX_LOCK_BITS {
                log::warn!("cfgutils: lock_set_size {bits} too large, using {MAX_LOCK_BITS}");
            }
            (0..1usize << bits.min(MAX_LOCK_BITS))
                .map(|_| Lock::default())
                .collect()
        } else {
            Box::default()
        };
        let config_hash = match mp.str("cfgutils", "hash_file") {
            Some(file) => {
                let text = read(file).map_err(|e| format!("cfgutils: hash_file {file}: {e}"))?;
                Some((file.to_string(), md5_hex(&text)))
            }
            None => None,
        };
        Ok(Cfgutils {
            initial_probability,
            probability: AtomicU32::new(initial_probability),
            gflags: AtomicU32::new(gflags),
            random: AtomicU64::new(seed),
            locks,
            config_hash,
        })
    }

    /// A random number in 0..2^31 (splitmix64 over a shared counter).
    pub fn random(&self) -> u32 {
        (crate::modules::random::splitmix_next(&self.random) >> 33) as u32
    }

    pub fn probability(&self) -> u32 {
        self.probability.load(Ordering::Relaxed)
    }

    /// `cfgutils.rand_set_prob`: false when above 100.
    pub fn set_probability(&self, p: u32) -> bool {
        if p > 100 {
            return false;
        }
        self.probability.store(p, Ordering::Relaxed);
        true
    }

    pub fn reset_probability(&self) {
        self.probability
            .store(self.initial_probability, Ordering::Relaxed);
    }

    /// `rand_event()`: true with the current probability.
    pub fn event(&self) -> bool {
        match self.probability() {
            0 => false,
            p if p >= 100 => true,
            p => u64::from(self.random()) * 100 < u64::from(p) << 31,
        }
    }

    pub fn gflags(&self) -> u32 {
        self.gflags.load(Ordering::Relaxed)
    }

    /// Sets the bits of `mask` in the global flags.
    pub fn set_gflags(&self, mask: u32) {
        self.gflags.fetch_or(mask, Ordering::Relaxed);
    }

    /// Clears the bits of `mask` in the global flags.
    pub fn reset_gflags(&self, mask: u32) {
        self.gflags.fetch_and(!mask, Ordering::Relaxed);
    }

    /// `cfgutils.get_config_hash`: the MD5 of `hash_file` at start-up.
    pub fn config_hash(&self) -> Option<&str> {
        self.config_hash.as_ref().map(|(_, h)| h.as_str())
    }

    /// `cfgutils.check_config_hash`: whether `hash_file` still has the MD5
    /// it had at start-up (`read` reads it now). `Err` without `hash_file`
    /// or when it cannot be read.
    pub fn check_config_hash(
        &self,
        read: impl FnOnce(&str) -> std::io::Result<Vec<u8>>,
    ) -> Result<bool, String> {
        let (file, hash) = self.config_hash.as_ref().ok_or("No hash file")?;
        let now = read(file).map_err(|e| format!("Failed to hash the file: {e}"))?;
        Ok(md5_hex(&now) == *hash)
    }

    fn lock_of(&self, key: &[u8]) -> Option<&Lock> {
        if self.locks.is_empty() {
            return None;
        }
        let slot = core_hash(&key.to_ascii_lowercase(), b"", self.locks.len() as u32);
        self.locks.get(slot as usize)
    }

    /// Takes the lock of `key`, waiting at most `wait`; false when the set
    /// is not configured or the lock stayed busy.
    pub fn lock(&self, key: &[u8], wait: Duration) -> bool {
        let Some(l) = self.lock_of(key) else {
            return false;
        };
        let held = guard(&l.held);
        let (mut held, _) = l
            .freed
            .wait_timeout_while(held, wait, |h| *h)
            .unwrap_or_else(|e| e.into_inner());
        if *held {
            return false;
        }
        *held = true;
        true
    }

    /// Lets go of the lock of `key` (held or not, as Kamailio); false when
    /// the set is not configured.
    pub fn unlock(&self, key: &[u8]) -> bool {
        let Some(l) = self.lock_of(key) else {
            return false;
        };
        *guard(&l.held) = false;
        l.freed.notify_one();
        true
    }
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

/// Kamailio's `core_hash()` of `s1` then `s2`, into `size` slots (a power of
/// two; 0: the whole hash). Bytes are read as C `char` (signed), as there.
pub fn core_hash(s1: &[u8], s2: &[u8], size: u32) -> u32 {
    hash_with(s1, s2, size, |b| b)
}

/// Kamailio's `core_case_hash()`: [`core_hash`] with ASCII capitals read
/// as small letters (the domain module's table, for instance).
pub fn core_case_hash(s1: &[u8], s2: &[u8], size: u32) -> u32 {
    hash_with(s1, s2, size, |b| b.to_ascii_lowercase())
}

fn hash_with(s1: &[u8], s2: &[u8], size: u32, fold: fn(u8) -> u8) -> u32 {
    let c = |b: u8| i32::from(fold(b) as i8) as u32;
    let part = |h: &mut u32, s: &[u8]| {
        let mut chunks = s.chunks_exact(4);
        for p in &mut chunks {
            let v = (c(p[0]) << 24)
                .wrapping_add(c(p[1]) << 16)
                .wrapping_add(c(p[2]) << 8)
                .wrapping_add(c(p[3]));
            *h = h.wrapping_add(v ^ (v >> 3));
        }
        let v = chunks
            .remainder()
            .iter()
            .fold(0u32, |v, &b| (v << 8).wrapping_add(c(b)));
        *h = h.wrapping_add(v ^ (v >> 3));
    };
    let mut h = 0u32;
    part(&mut h, s1);
    if !s2.is_empty() {
        part(&mut h, s2);
    }
    let h = h
        .wrapping_add(h >> 11)
        .wrapping_add((h >> 13).wrapping_add(h >> 23));
    if size == 0 {
        h
    } else {
        h & (size - 1)
    }
}

fn state<'c>(ctx: &'c MsgCtx<'_>) -> Option<&'c Cfgutils> {
    let s = ctx.env.services.get::<Cfgutils>();
    if s.is_none() {
        log::error!("cfgutils: module state missing");
    }
    s
}

fn rand_event(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    state(ctx).map_or(-1, |s| truth(s.event()))
}

fn rand_set_prob(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let p = args.int(ctx, 0).and_then(|p| u32::try_from(p).ok());
    match (state(ctx), p) {
        (Some(s), Some(p)) => truth(s.set_probability(p)),
        _ => -1,
    }
}

fn rand_reset_prob(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    state(ctx).map_or(-1, |s| {
        s.reset_probability();
        1
    })
}

/// The probability is the return code (0 stops the script, as in Kamailio).
fn rand_get_prob(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    state(ctx).map_or(-1, |s| s.probability() as i32)
}

/// The flag's bit (fixed at start-up).
fn flag_bit(args: &Args) -> u32 {
    match args.get(0) {
        Some(Arg::Int(n)) => 1u32 << (*n as u32 & 31),
        _ => 0,
    }
}

fn set_gflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    state(ctx).map_or(-1, |s| {
        s.set_gflags(flag_bit(args));
        1
    })
}

fn reset_gflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    state(ctx).map_or(-1, |s| {
        s.reset_gflags(flag_bit(args));
        1
    })
}

fn is_gflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    state(ctx).map_or(-1, |s| truth(s.gflags() & flag_bit(args) != 0))
}

fn lock(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let key = args.str(ctx, 0).into_owned();
    state(ctx).map_or(-1, |s| truth(s.lock(&key, LOCK_WAIT)))
}

fn trylock(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let key = args.str(ctx, 0).into_owned();
    state(ctx).map_or(-1, |s| truth(s.lock(&key, Duration::ZERO)))
}

fn unlock(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let key = args.str(ctx, 0).into_owned();
    state(ctx).map_or(-1, |s| truth(s.unlock(&key)))
}

/// `core_hash(s1, s2, size)`: slot + 1 in 2^size slots (size ≤ 0: 2 slots).
fn w_core_hash(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let s1 = args.str(ctx, 0).into_owned();
    let s2 = args.str(ctx, 1).into_owned();
    let Some(size) = args.int(ctx, 2) else {
        return -1;
    };
    let slots = if size <= 0 {
        2
    } else {
        1u32.checked_shl(size as u32).unwrap_or(0)
    };
    (core_hash(&s1, &s2, slots) as i32).wrapping_add(1)
}

fn check_route_exists(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0);
    truth(ctx.program.route_named(&name).is_some())
}

thread_local! {
    /// `route_if_exists` calls in progress on this worker (the VM's own depth
    /// bound starts afresh in each one).
    static NESTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// `route_if_exists(name)`: runs `route[name]`; its code, 0 when it ended
/// the script (`exit`, `drop`), -1 when there is no such route.
fn route_if_exists(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    let Some(id) = ctx.program.route_named(&name) else {
        return -1;
    };
    if NESTED.get() >= MAX_NESTED_ROUTES {
        log::error!("route_if_exists: nested deeper than {MAX_NESTED_ROUTES}");
        return -1;
    }
    NESTED.set(NESTED.get() + 1);
    let outcome = crate::script::vm::run_route(ctx, id);
    NESTED.set(NESTED.get().saturating_sub(1));
    match outcome {
        Outcome::Done(code) => code,
        Outcome::Exit(_) | Outcome::Drop => 0,
    }
}

/// Blocks this worker for `d` (at most [`MAX_SLEEP`]): a timer channel's
/// receive, so no clock is read here.
fn block_for(d: Duration) {
    let d = if d > MAX_SLEEP {
        log::warn!("cfgutils: sleep of {d:?} shortened to {MAX_SLEEP:?}");
        MAX_SLEEP
    } else {
        d
    };
    if !d.is_zero() {
        let _ = crossbeam_channel::after(d).recv();
    }
}

fn sleep(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(s) = args.int(ctx, 0) else { return -1 };
    block_for(Duration::from_secs(s.max(0) as u64));
    1
}

fn usleep(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(us) = args.int(ctx, 0) else {
        return -1;
    };
    block_for(Duration::from_micros(us.max(0) as u64));
    1
}

fn abort(_: &mut MsgCtx<'_>, _: &Args) -> i32 {
    log::error!("abort called (ringsip does not end the process from a worker)");
    -1
}

fn mem_report(_: &mut MsgCtx<'_>, _: &Args) -> i32 {
    log::info!("cfgutils: memory reports are in `ringsip ctl` (core.shmmem, corex.pkg_summary)");
    1
}

fn fixup_prob(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)?;
    match args.get(0) {
        Some(Arg::Int(n)) if !(0..=100).contains(n) => Err(format!("invalid probability {n}")),
        _ => Ok(()),
    }
}

fn fixup_gflag(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)?;
    match args.get(0) {
        Some(Arg::Int(n)) if (0..32).contains(n) => Ok(()),
        Some(Arg::Int(n)) => Err(format!("flag {n} out of range 0..31")),
        _ => Err("the flag must be a number".into()),
    }
}

macro_rules! f {
    ($name:expr, $min:expr, $max:expr, $fixup:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $min,
            max_args: $max,
            routes: RouteMask::ANY,
            fixup: $fixup,
            call: $call,
        }
    };
}

/// The cfgutils module.
pub static MODULE: ModuleDef = ModuleDef {
    name: "cfgutils",
    aliases: &[],
    functions: &[
        f!("rand_event", 0, 0, None, rand_event),
        f!("rand_set_prob", 1, 1, Some(fixup_prob), rand_set_prob),
        f!("rand_reset_prob", 0, 0, None, rand_reset_prob),
        f!("rand_get_prob", 0, 0, None, rand_get_prob),
        f!("set_gflag", 1, 1, Some(fixup_gflag), set_gflag),
        f!("reset_gflag", 1, 1, Some(fixup_gflag), reset_gflag),
        f!("is_gflag", 1, 1, Some(fixup_gflag), is_gflag),
        f!("lock", 1, 1, None, lock),
        f!("unlock", 1, 1, None, unlock),
        f!("trylock", 1, 1, None, trylock),
        f!("core_hash", 3, 3, None, w_core_hash),
        f!("check_route_exists", 1, 1, None, check_route_exists),
        f!("route_if_exists", 1, 1, None, route_if_exists),
        f!("sleep", 1, 1, None, sleep),
        f!("usleep", 1, 1, None, usleep),
        f!("abort", 0, 0, None, abort),
        f!("pkg_status", 0, 0, None, mem_report),
        f!("shm_status", 0, 0, None, mem_report),
        f!("pkg_summary", 0, 0, None, mem_report),
        f!("shm_summary", 0, 0, None, mem_report),
    ],
    params: &[
        p("initial_probability", ParamKind::Int),
        p("initial_gflags", ParamKind::Int),
        p("hash_file", ParamKind::Str),
        p("lock_set_size", ParamKind::Int),
    ],
    always: false,
};

/// A state for tests (seed 7, `hash_file` read as `cfg`).
#[cfg(test)]
pub fn for_tests(mp: &ModParams) -> Arc<Cfgutils> {
    Arc::new(
        Cfgutils::from_modparams(mp, 7, |_| Ok(b"cfg".to_vec())).expect("valid test parameters"),
    )
}

#[cfg(test)]
mod tests;
