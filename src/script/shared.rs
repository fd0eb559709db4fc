//! State shared by every core: `$shv(x)` variables (pv module) and the
//! `$sht(table=>key)` hash tables (htable module).
//!
//! Both are reached from any core without one global lock: a `$shv` slot has
//! its own lock, and a hash table is split into shards (Kamailio's `size=N`
//! gives 2^N slots, each with its own lock), so two cores only wait for each
//! other when they touch keys of the same shard. Time is an input: expiry is
//! checked against the message's `now`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use super::ir::Program;
use super::value::Value;

/// Largest number of shards per table (2^10); Kamailio allows more slots, but
/// past this more locks buy nothing on a machine with a few dozen cores.
const MAX_SHARD_BITS: u32 = 10;

/// A hash table declared with `modparam("htable", "htable", "name=>size=8;autoexpire=300;")`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtableDef {
    pub name: String,
    /// `size`: 2^size slots.
    pub size: u32,
    /// `autoexpire`: seconds an item lives after it was last set (0 = forever).
    pub autoexpire: u64,
    /// `initval`: what a missing item reads as (`$null` when unset).
    pub initval: Option<Value<'static>>,
    /// `updateexpire` (default 1): whether setting an existing item starts its life again.
    pub update_expire: bool,
}

impl HtableDef {
    /// Parses the `htable` parameter value: `name=>attr=value;attr=value;…`.
    pub fn parse(text: &str) -> Result<HtableDef, String> {
        let (name, attrs) = text
            .split_once("=>")
            .ok_or_else(|| format!("htable definition \"{text}\" needs name=>attributes"))?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("bad htable name \"{name}\""));
        }
        let mut def = HtableDef {
            name: name.to_string(),
            size: 4,
            autoexpire: 0,
            initval: None,
            update_expire: true,
        };
        for attr in attrs.split(';').map(str::trim).filter(|a| !a.is_empty()) {
            let (key, value) = attr
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("htable {name}: attribute \"{attr}\" needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("htable {name}: {key} needs a number, not \"{value}\""))
            };
            match key {
                "size" => {
                    let n = number()?;
                    if !(1..=31).contains(&n) {
                        return Err(format!("htable {name}: size must be 1..31"));
                    }
                    def.size = n as u32;
                }
                "autoexpire" => def.autoexpire = number()?,
                "initval" => {
                    def.initval = Some(match value.parse::<i64>() {
                        Ok(i) => Value::Int(i),
                        Err(_) => Value::owned(value.as_bytes().to_vec()),
                    })
                }
                "updateexpire" => def.update_expire = number()? != 0,
                // Loading from and saving to a database and replication are
                // not done: asking for them is an error rather than a table
                // that silently stays empty.
                "dbtable" | "dbmode" if !value.is_empty() && value != "0" => {
                    return Err(format!(
                        "htable {name}: {key} (a table kept in a database) is not implemented in ringsip yet"
                    ))
                }
                "dmqreplicate" if value != "0" => {
                    return Err(format!(
                        "htable {name}: dmqreplicate is not implemented in ringsip yet"
                    ))
                }
                // Database column layout: only meaningful with dbtable.
                "dbtable" | "dbmode" | "dmqreplicate" | "cols" | "coldelim" | "colnull" => {}
                other => return Err(format!("htable {name}: unknown attribute \"{other}\"")),
            }
        }
        Ok(def)
    }
}

/// One item of a hash table.
#[derive(Clone, Debug)]
struct Item {
    value: Value<'static>,
    expires: Option<Instant>,
}

type Shard = HashMap<Box<[u8]>, Item>;

/// A hash table shared by every core.
#[derive(Debug)]
pub struct Htable {
    def: HtableDef,
    shards: Box<[Mutex<Shard>]>,
    /// `sht_lock` locks, one per shard (see [`HeldLocks`]).
    script_locks: Box<[ScriptLock]>,
}

/// The `sht_lock` lock of one shard: the token of the message holding it
/// and how many times it took it.
#[derive(Debug, Default)]
struct ScriptLock {
    holder: Mutex<Option<(u64, u32)>>,
    freed: Condvar,
}

/// How long a message waits for an `sht_lock` held elsewhere: this many
/// rounds of [`LOCK_WAIT_ROUND`]. A holder runs its route with no IO and
/// lets go at the latest when its message is done, so this bound is only a
/// guard against a bug; reaching it makes `sht_lock` fail.
const LOCK_WAIT_ROUNDS: u32 = 200;
const LOCK_WAIT_ROUND: Duration = Duration::from_millis(5);

/// Tokens naming the message that holds a lock (0 means none).
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// The `sht_lock` locks one message holds, let go when it is done.
///
/// Semantics (documented difference from Kamailio, whose lock is the slot's
/// own mutex): the lock covers the shard `key` falls in and excludes only
/// other `sht_lock` callers on that shard, on any core; a plain `$sht` read
/// or write from another core does not wait (each is atomic on its own), so
/// every path that updates a locked key must take the lock. A message may
/// take the same lock again (it counts). It waits for a lock held elsewhere
/// only while it holds no other lock; holding one, a busy second lock fails
/// at once (no hold-and-wait, so no deadlock between cores). Locks still
/// held when the message's route ends are let go then.
#[derive(Debug, Default)]
pub struct HeldLocks {
    token: u64,
    /// (state, table, shard), one entry per `sht_lock` call.
    held: Vec<(Arc<SharedState>, u32, usize)>,
}

impl HeldLocks {
    /// Takes the lock of `key` in table `table` of `shared`; false when
    /// there is no such table or the lock is busy (see the type's rules).
    pub fn lock(&mut self, shared: &Arc<SharedState>, table: u32, key: &[u8]) -> bool {
        let Some(t) = shared.htable(table) else {
            return false;
        };
        if self.token == 0 {
            self.token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        }
        let shard = t.shard_index(key);
        let sl = &t.script_locks[shard];
        let mut holder = lock(&sl.holder);
        let mut rounds = 0;
        loop {
            match *holder {
                None => {
                    *holder = Some((self.token, 1));
                    break;
                }
                Some((tok, ref mut depth)) if tok == self.token => {
                    *depth += 1;
                    break;
                }
                Some(_) if !self.held.is_empty() || rounds >= LOCK_WAIT_ROUNDS => return false,
                Some(_) => {
                    rounds += 1;
                    holder = sl
                        .freed
                        .wait_timeout(holder, LOCK_WAIT_ROUND)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0);
                }
            }
        }
        drop(holder);
        self.held.push((shared.clone(), table, shard));
        true
    }

    /// Lets go of one `lock` of `key` in `table`; false when not held.
    pub fn unlock(&mut self, shared: &SharedState, table: u32, key: &[u8]) -> bool {
        let Some(t) = shared.htable(table) else {
            return false;
        };
        let shard = t.shard_index(key);
        let Some(pos) = self
            .held
            .iter()
            .rposition(|(s, tb, sh)| std::ptr::eq(&**s, shared) && *tb == table && *sh == shard)
        else {
            return false;
        };
        let (state, table, shard) = self.held.remove(pos);
        release(&state, table, shard, self.token);
        true
    }

    /// How many locks are held (each repeated `lock` counts).
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

fn release(state: &SharedState, table: u32, shard: usize, token: u64) {
    let Some(sl) = state.htable(table).and_then(|t| t.script_locks.get(shard)) else {
        return;
    };
    let mut holder = lock(&sl.holder);
    if let Some((tok, depth)) = holder.as_mut() {
        if *tok == token {
            *depth -= 1;
            if *depth == 0 {
                *holder = None;
                sl.freed.notify_all();
            }
        }
    }
}

impl Drop for HeldLocks {
    fn drop(&mut self) {
        // Every message's context ends here; almost none took a lock.
        if self.held.is_empty() {
            return;
        }
        for (state, table, shard) in self.held.drain(..) {
            release(&state, table, shard, self.token);
        }
    }
}

/// Locks a mutex, taking the data even if another thread panicked holding it
/// (the values stay consistent: every critical section is a single map operation).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// FNV-1a over the key: spreads keys over shards.
fn shard_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Htable {
    pub fn new(def: HtableDef) -> Htable {
        let shards = 1usize << def.size.min(MAX_SHARD_BITS);
        Htable {
            def,
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            script_locks: (0..shards).map(|_| ScriptLock::default()).collect(),
        }
    }

    pub fn def(&self) -> &HtableDef {
        &self.def
    }

    fn shard_index(&self, key: &[u8]) -> usize {
        (shard_hash(key) as usize) & (self.shards.len() - 1)
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        &self.shards[self.shard_index(key)]
    }

    /// The value of `key` at `now` (`initval`, else `None`, when missing or expired).
    pub fn get(&self, key: &[u8], now: Instant) -> Option<Value<'static>> {
        let mut shard = lock(self.shard(key));
        let found = match shard.get(key) {
            Some(item) if item.expires.is_some_and(|e| e <= now) => {
                shard.remove(key);
                None
            }
            Some(item) => Some(item.value.clone()),
            None => None,
        };
        found.or_else(|| self.def.initval.clone())
    }

    /// Sets `key`; with `autoexpire` the item lives that long from `now`.
    pub fn set(&self, key: &[u8], value: Value<'static>, now: Instant) {
        let expires = self.expiry_from(now);
        let mut shard = lock(self.shard(key));
        match shard.get_mut(key) {
            Some(item) if item.expires.is_none_or(|e| e > now) => {
                item.value = value;
                if self.def.update_expire {
                    item.expires = expires;
                }
            }
            Some(item) => {
                *item = Item { value, expires };
            }
            None => {
                shard.insert(key.into(), Item { value, expires });
            }
        }
    }

    /// Adds `delta` to the integer item `key` at once (`$shtinc`/`$shtdec`)
    /// and returns the new value. A missing or expired item starts from an
    /// integer `initval`; without one it is not made (`None`), nor is a
    /// string item changed (`None`), as in Kamailio. With `autoexpire` the
    /// item's life starts again, as on a set.
    pub fn add(&self, key: &[u8], delta: i64, now: Instant) -> Option<i64> {
        let expires = self.expiry_from(now);
        let mut shard = lock(self.shard(key));
        let live = shard
            .get(key)
            .filter(|item| item.expires.is_none_or(|e| e > now))
            .map(|item| item.value.clone());
        let base = match live {
            Some(Value::Int(i)) => i,
            Some(_) => return None,
            None => match &self.def.initval {
                Some(Value::Int(i)) => *i,
                _ => return None,
            },
        };
        let next = base.wrapping_add(delta);
        shard.insert(
            key.into(),
            Item {
                value: Value::Int(next),
                expires,
            },
        );
        Some(next)
    }

    /// Seconds until `key` expires at `now` (`$shtex`): 0 when it never
    /// does or is missing or expired (Kamailio reads 0 then too).
    pub fn expires_in(&self, key: &[u8], now: Instant) -> u64 {
        let shard = lock(self.shard(key));
        match shard.get(key).and_then(|item| item.expires) {
            Some(e) if e > now => (e - now).as_secs_f64().ceil() as u64,
            _ => 0,
        }
    }

    /// Makes `key` expire `secs` from `now` (0: never); whether it was there.
    pub fn set_expire(&self, key: &[u8], secs: u64, now: Instant) -> bool {
        let mut shard = lock(self.shard(key));
        match shard.get_mut(key) {
            Some(item) if item.expires.is_none_or(|e| e > now) => {
                item.expires = (secs > 0)
                    .then(|| now.checked_add(Duration::from_secs(secs)))
                    .flatten();
                true
            }
            _ => false,
        }
    }

    fn expiry_from(&self, now: Instant) -> Option<Instant> {
        (self.def.autoexpire > 0)
            .then(|| now.checked_add(Duration::from_secs(self.def.autoexpire)))
            .flatten()
    }

    /// Removes `key`; whether it was there.
    pub fn remove(&self, key: &[u8]) -> bool {
        lock(self.shard(key)).remove(key).is_some()
    }

    /// Removes every item whose key satisfies `pred`; how many went.
    pub fn remove_if(&self, mut pred: impl FnMut(&[u8], &Value<'static>) -> bool) -> usize {
        let mut n = 0;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let before = shard.len();
            shard.retain(|k, item| !pred(k, &item.value));
            n += before - shard.len();
        }
        n
    }

    /// Drops the items expired at `now` (a timer may call this; reads also expire lazily).
    pub fn expire(&self, now: Instant) -> usize {
        let mut n = 0;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let before = shard.len();
            shard.retain(|_, item| item.expires.is_none_or(|e| e > now));
            n += before - shard.len();
        }
        n
    }

    /// Removes the items expired at `now` and hands them back (name, value),
    /// for `event_route[htable:expired:NAME]`.
    pub fn take_expired(&self, now: Instant) -> Vec<(Vec<u8>, Value<'static>)> {
        let mut gone = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let names: Vec<_> = shard
                .iter()
                .filter(|(_, item)| item.expires.is_some_and(|e| e <= now))
                .map(|(k, _)| k.clone())
                .collect();
            for k in names {
                if let Some(item) = shard.remove(&k) {
                    gone.push((k.to_vec(), item.value));
                }
            }
        }
        gone
    }

    /// Calls `f` for every live item at `now` (for dumps over the control socket).
    pub fn for_each(&self, now: Instant, mut f: impl FnMut(&[u8], &Value<'static>)) {
        for shard in self.shards.iter() {
            for (k, item) in lock(shard).iter() {
                if item.expires.is_none_or(|e| e > now) {
                    f(k, &item.value);
                }
            }
        }
    }

    /// `$shtcn(table=>exp)` (`by_value` false) and `$shtcv(table=>exp)`
    /// (true): how many items have a name, or a value, that `exp` matches.
    /// `exp` starts with its operator: `~~` a regular expression (POSIX
    /// extended, case-insensitive), `%~` a prefix, `~%` a suffix, `==` the
    /// whole string, `eq` an integer value (values only), `**` every item;
    /// with none of these the whole of `exp` is a regular expression. String
    /// operators look at string values only, `eq` at integer ones.
    pub fn count_matching(&self, exp: &[u8], by_value: bool, now: Instant) -> i64 {
        #[derive(PartialEq)]
        enum Op {
            Re,
            Suffix,
            Prefix,
            Equal,
            IntEqual,
        }
        let (op, arg) = match exp.get(..2) {
            Some(b"**") => return i64::try_from(self.len()).unwrap_or(i64::MAX),
            Some(b"~~") => (Op::Re, &exp[2..]),
            Some(b"~%") => (Op::Suffix, &exp[2..]),
            Some(b"%~") => (Op::Prefix, &exp[2..]),
            Some(b"==") => (Op::Equal, &exp[2..]),
            Some(b"eq") => (Op::IntEqual, &exp[2..]),
            _ => (Op::Re, exp),
        };
        if arg.is_empty() || (op == Op::IntEqual && !by_value) {
            return 0;
        }
        let re = match op {
            Op::Re => {
                let Ok(text) = std::str::from_utf8(arg) else {
                    return 0;
                };
                match regex::bytes::RegexBuilder::new(text)
                    .case_insensitive(true)
                    .multi_line(true)
                    .build()
                {
                    Ok(re) => Some(re),
                    Err(e) => {
                        log::error!("htable: bad regular expression {text:?}: {e}");
                        return 0;
                    }
                }
            }
            _ => None,
        };
        let wanted = (op == Op::IntEqual)
            .then(|| std::str::from_utf8(arg).ok()?.trim().parse::<i64>().ok())
            .flatten();
        let mut n = 0;
        self.for_each(now, |name, value| {
            if op == Op::IntEqual {
                if let (Value::Int(v), Some(w)) = (value, wanted) {
                    n += i64::from(*v == w);
                }
                return;
            }
            let text: &[u8] = if by_value {
                match value {
                    Value::Str(s) => s.as_ref(),
                    _ => return,
                }
            } else {
                name
            };
            let hit = match op {
                Op::Re => re.as_ref().is_some_and(|re| re.is_match(text)),
                Op::Suffix => text.ends_with(arg),
                Op::Prefix => text.starts_with(arg),
                Op::Equal => text == arg,
                Op::IntEqual => false,
            };
            n += i64::from(hit);
        });
        n
    }

    /// Number of items, expired ones included until they are dropped.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The hash-table iterators of one message (`sht_iterator_start` …). An
/// iterator walks a copy of the table's live items taken when it starts
/// (Kamailio walks the table itself, holding its slot locks), so it never
/// blocks other cores and sees no change made after it started. At most
/// [`MAX_ITERATORS`] per message, as Kamailio.
#[derive(Debug, Default)]
pub struct Iterators {
    list: Vec<Iter>,
}

#[derive(Debug)]
struct Iter {
    name: Box<[u8]>,
    items: Vec<(Box<[u8]>, Value<'static>)>,
    /// The item stood on: `None` before the first `next`.
    at: Option<usize>,
}

/// Iterators one message may have open (Kamailio's `ht_iterators` size).
pub const MAX_ITERATORS: usize = 4;

impl Iterators {
    /// Starts (or restarts) iterator `name` over `table`; false when too many are open.
    pub fn start(&mut self, name: &[u8], table: &Htable, now: Instant) -> bool {
        let mut items = Vec::new();
        table.for_each(now, |k, v| items.push((k.into(), v.clone())));
        let it = Iter {
            name: name.into(),
            items,
            at: None,
        };
        let open = self.list.len();
        match self.list.iter_mut().find(|i| *i.name == *name) {
            Some(slot) => *slot = it,
            None if open < MAX_ITERATORS => self.list.push(it),
            None => return false,
        }
        true
    }

    /// Moves `name` to its next item; false at the end or when not started.
    pub fn next(&mut self, name: &[u8]) -> bool {
        let Some(it) = self.list.iter_mut().find(|i| *i.name == *name) else {
            return false;
        };
        let next = it.at.map_or(0, |a| a + 1);
        if next < it.items.len() {
            it.at = Some(next);
            true
        } else {
            it.at = Some(it.items.len());
            false
        }
    }

    /// Closes `name`; whether it was open.
    pub fn end(&mut self, name: &[u8]) -> bool {
        let before = self.list.len();
        self.list.retain(|i| *i.name != *name);
        self.list.len() != before
    }

    /// The key and value `name` stands on.
    pub fn current(&self, name: &[u8]) -> Option<(&[u8], &Value<'static>)> {
        let it = self.list.iter().find(|i| *i.name == *name)?;
        let (k, v) = it.items.get(it.at?)?;
        Some((k, v))
    }
}

/// Everything shared by the cores: `$shv` slots and hash tables, in the order
/// the compiler numbered them.
#[derive(Debug, Default)]
pub struct SharedState {
    shv: Box<[RwLock<Value<'static>>]>,
    htables: Box<[Htable]>,
    /// mqueue's queues, in definition order.
    mqueues: Box<[crate::modules::mqueue::Mqueue]>,
}

impl SharedState {
    /// Fresh state for `program`: `$shv` set to their `shvset` values, empty tables.
    pub fn for_program(program: &Program) -> SharedState {
        SharedState {
            shv: program
                .shv_init
                .iter()
                .map(|v| RwLock::new(v.clone()))
                .collect(),
            htables: program.htables.iter().cloned().map(Htable::new).collect(),
            mqueues: (program.mqueues.iter().cloned())
                .map(crate::modules::mqueue::Mqueue::new)
                .collect(),
        }
    }

    /// The value of `$shv` slot `slot` (`None` if this state was not made for the program).
    pub fn shv(&self, slot: u32) -> Option<Value<'static>> {
        let cell = self.shv.get(slot as usize)?;
        let v = cell.read().unwrap_or_else(|e| e.into_inner()).clone();
        Some(v)
    }

    /// Sets `$shv` slot `slot`; false if there is no such slot.
    pub fn set_shv(&self, slot: u32, value: Value<'static>) -> bool {
        match self.shv.get(slot as usize) {
            Some(cell) => {
                *cell.write().unwrap_or_else(|e| e.into_inner()) = value;
                true
            }
            None => false,
        }
    }

    /// Hash table by compiled index.
    pub fn htable(&self, index: u32) -> Option<&Htable> {
        self.htables.get(index as usize)
    }

    /// The index of the hash table `name`.
    pub fn htable_index(&self, name: &str) -> Option<u32> {
        self.htables
            .iter()
            .position(|t| t.def.name == name)
            .map(|i| i as u32)
    }

    /// Hash table by name (for module functions such as `sht_rm`).
    pub fn htable_named(&self, name: &str) -> Option<&Htable> {
        self.htables.iter().find(|t| t.def.name == name)
    }

    /// The mqueue queue named `name`.
    pub fn mqueue(&self, name: &str) -> Option<&crate::modules::mqueue::Mqueue> {
        self.mqueues.iter().find(|q| q.def.name == name)
    }

    /// Every mqueue queue, in definition order.
    pub fn mqueues(&self) -> &[crate::modules::mqueue::Mqueue] {
        &self.mqueues
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htable_definitions() {
        let d = HtableDef::parse("ipban=>size=8;autoexpire=300;").unwrap();
        assert_eq!((d.name.as_str(), d.size, d.autoexpire), ("ipban", 8, 300));
        let d = HtableDef::parse("a=>initval=0;updateexpire=0").unwrap();
        assert_eq!(d.initval, Some(Value::Int(0)));
        assert!(!d.update_expire);
        assert!(HtableDef::parse("a=>dbtable=x")
            .unwrap_err()
            .contains("not implemented"));
        assert!(HtableDef::parse("a=>dmqreplicate=1").is_err());
        assert!(HtableDef::parse("a=>dmqreplicate=0;dbmode=0").is_ok());
        assert!(HtableDef::parse("noarrow").is_err());
        assert!(HtableDef::parse("t=>size=x").is_err());
        assert!(HtableDef::parse("t=>size=99").is_err());
        assert!(HtableDef::parse("t=>colour=red").is_err());
    }
}

#[cfg(test)]
mod count_tests {
    use super::*;

    /// The counts a live Kamailio 5.6 printed for the same items:
    /// `X-CV: [2] [4] [3] [3] [2] [6] [4] [0]` and `X-CN: [3] [1] [1] [0] [2] [6]`.
    #[test]
    fn counts_names_and_values_as_kamailio() {
        let t = Htable::new(HtableDef::parse("t=>size=4;").unwrap());
        let now = crate::modules::testutil::some_instant();
        for (k, v) in [
            ("call-1", "caps"),
            ("call-2", "caps"),
            ("call-3", "Caps"),
            ("other", "capsule"),
        ] {
            t.set(k.as_bytes(), Value::owned(v.as_bytes().to_vec()), now);
        }
        t.set(b"n1", Value::Int(7), now);
        t.set(b"n2", Value::Int(7), now);
        let cv: Vec<i64> = [
            "==caps", "~~^CAPS", "%~cap", "~%ps", "eq7", "**", "caps", "==",
        ]
        .iter()
        .map(|e| t.count_matching(e.as_bytes(), true, now))
        .collect();
        assert_eq!(cv, [2, 4, 3, 3, 2, 6, 4, 0]);
        let cn: Vec<i64> = ["%~call-", "~%-2", "==other", "eq7", "~~^N", "**"]
            .iter()
            .map(|e| t.count_matching(e.as_bytes(), false, now))
            .collect();
        assert_eq!(cn, [3, 1, 1, 0, 2, 6]);
    }
}
