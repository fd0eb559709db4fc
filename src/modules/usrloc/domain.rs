//! A usrloc domain (a table: `location`, `aliases`…) in memory: AoR → record,
//! split over shards that each have their own read-write lock, so lookups on
//! different cores almost never meet and no lock covers the whole table.

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::record::Record;
use crate::modules::core::hash::fnv1a;

type Shard = HashMap<Box<str>, Record>;

/// One usrloc table in memory.
#[derive(Debug)]
pub struct Domain {
    name: Box<str>,
    shards: Box<[RwLock<Shard>]>,
}

impl Domain {
    /// A domain with `1 << hash_size` shards (usrloc `hash_size`, 2..=14).
    pub fn new(name: &str, hash_size: u32) -> Domain {
        let n = 1usize << hash_size.clamp(2, 14);
        Domain {
            name: name.into(),
            shards: (0..n).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many slots Kamailio's table would have (`1 << hash_size`).
    pub fn size(&self) -> usize {
        self.shards.len()
    }

    fn shard_of(&self, aor: &str) -> &RwLock<Shard> {
        let i = fnv1a(0, &[aor.as_bytes()]) as usize & (self.shards.len() - 1);
        &self.shards[i]
    }

    /// Reads `aor`'s record (None when it has none).
    pub fn read<R>(&self, aor: &str, f: impl FnOnce(Option<&Record>) -> R) -> R {
        let shard = read(self.shard_of(aor));
        f(shard.get(aor))
    }

    /// Changes `aor`'s record (created empty if missing, removed if left empty).
    pub fn update<R>(&self, aor: &str, f: impl FnOnce(&mut Record) -> R) -> R {
        // A Vec grows to 4 slots at its first push: 500 bytes for one phone.
        let fit = |rec: &mut Record| {
            if rec.contacts.capacity() > rec.contacts.len() {
                rec.contacts.shrink_to_fit();
            }
        };
        let mut shard = write(self.shard_of(aor));
        let (result, empty) = match shard.get_mut(aor) {
            Some(rec) => {
                let r = f(rec);
                fit(rec);
                (r, rec.contacts.is_empty())
            }
            None => {
                let mut rec = Record::default();
                let r = f(&mut rec);
                if !rec.contacts.is_empty() {
                    fit(&mut rec);
                    shard.insert(aor.into(), rec);
                }
                (r, false)
            }
        };
        if empty {
            shard.remove(aor);
        }
        result
    }

    /// Visits every record, shard by shard (write locks held one at a time);
    /// records left empty are removed.
    pub fn for_each_mut(&self, mut f: impl FnMut(&str, &mut Record)) {
        for shard in self.shards.iter() {
            let mut shard = write(shard);
            shard.retain(|aor, rec| {
                f(aor, rec);
                !rec.contacts.is_empty()
            });
        }
    }

    /// Visits every record, shard by shard.
    pub fn for_each(&self, mut f: impl FnMut(&str, &Record)) {
        for shard in self.shards.iter() {
            for (aor, rec) in read(shard).iter() {
                f(aor, rec);
            }
        }
    }

    /// Number of AoRs and of contacts.
    pub fn counts(&self) -> (usize, usize) {
        let (mut aors, mut contacts) = (0, 0);
        self.for_each(|_, r| {
            aors += 1;
            contacts += r.contacts.len();
        });
        (aors, contacts)
    }
}

/// A poisoned lock only means another thread panicked while holding it; the
/// map itself is still consistent (every change is one insert or remove).
fn read(l: &RwLock<Shard>) -> RwLockReadGuard<'_, Shard> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write(l: &RwLock<Shard>) -> RwLockWriteGuard<'_, Shard> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
