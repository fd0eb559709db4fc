//! State shared by every core: `$shv(x)` variables (pv module) and the
//! `$sht(table=>key)` hash tables (htable module).
//!
//! Both are reached from any core without one global lock: a `$shv` slot has
//! its own lock, and a hash table is split into shards (Kamailio's `size=N`
//! gives 2^N slots, each with its own lock), so two cores only wait for each
//! other when they touch keys of the same shard. Time is an input: expiry is
//! checked against the message's `now`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, RwLock};
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
                // Loading from and saving to a database, replication and events
                // are not done by ringsip (yet); accepted so a config loads.
                "dbtable" | "dbmode" | "updateexpire" | "dmqreplicate" | "cols" | "coldelim"
                | "colnull" => {}
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
        }
    }

    pub fn def(&self) -> &HtableDef {
        &self.def
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        let i = (shard_hash(key) as usize) & (self.shards.len() - 1);
        &self.shards[i]
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
        let expires = (self.def.autoexpire > 0)
            .then(|| now.checked_add(Duration::from_secs(self.def.autoexpire)))
            .flatten();
        let mut shard = lock(self.shard(key));
        match shard.get_mut(key) {
            Some(item) => {
                item.value = value;
                item.expires = expires;
            }
            None => {
                shard.insert(key.into(), Item { value, expires });
            }
        }
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

    /// Number of items, expired ones included until they are dropped.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything shared by the cores: `$shv` slots and hash tables, in the order
/// the compiler numbered them.
#[derive(Debug, Default)]
pub struct SharedState {
    shv: Box<[RwLock<Value<'static>>]>,
    htables: Box<[Htable]>,
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

    /// Hash table by name (for module functions such as `sht_rm`).
    pub fn htable_named(&self, name: &str) -> Option<&Htable> {
        self.htables.iter().find(|t| t.def.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htable_definitions() {
        let d = HtableDef::parse("ipban=>size=8;autoexpire=300;").unwrap();
        assert_eq!((d.name.as_str(), d.size, d.autoexpire), ("ipban", 8, 300));
        let d = HtableDef::parse("a=>initval=0;dbtable=x").unwrap();
        assert_eq!(d.initval, Some(Value::Int(0)));
        assert!(HtableDef::parse("noarrow").is_err());
        assert!(HtableDef::parse("t=>size=x").is_err());
        assert!(HtableDef::parse("t=>size=99").is_err());
        assert!(HtableDef::parse("t=>colour=red").is_err());
    }
}
