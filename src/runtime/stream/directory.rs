//! Which connection reaches a destination, for every worker: the peer
//! address of an accepted connection, the destination of an outgoing one,
//! and the `;alias` sent-by of a client that asked for reuse (RFC 5923).
//!
//! Each worker keeps its own connections in a map of its own and looks here
//! only when that misses (a connection owned by another worker, to hand the
//! message to it), so the hot path of a worker that owns its connections
//! takes no lock. Writes happen when a connection opens, gains an alias or
//! closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::sip::packet::{ConnId, Proto};

/// A destination: transport and address.
pub(crate) type Key = (Proto, SocketAddr);

#[derive(Debug, Default)]
pub(crate) struct Directory {
    map: RwLock<HashMap<Key, ConnId>>,
}

impl Directory {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<Key, ConnId>> {
        // A panic elsewhere while holding the lock leaves a map that is still
        // consistent (each write is one insert or remove).
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Key, ConnId>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn lookup(&self, key: &Key) -> Option<ConnId> {
        self.read().get(key).copied()
    }

    /// Records `id` for `key` unless a connection is there already; returns
    /// that one then (two workers opening a connection to one destination
    /// at once: the second uses the first's).
    pub fn claim(&self, key: Key, id: ConnId) -> Result<(), ConnId> {
        match self.write().entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => Err(*e.get()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
                Ok(())
            }
        }
    }

    /// Records `id` for `key`, replacing what was there (the newest
    /// connection from a peer is the one to answer on).
    pub fn set(&self, key: Key, id: ConnId) {
        self.write().insert(key, id);
    }

    /// Forgets `key` if it still names `id`.
    pub fn release(&self, key: &Key, id: ConnId) {
        let mut map = self.write();
        if map.get(key) == Some(&id) {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_set_release() {
        let d = Directory::default();
        let key = (Proto::Tcp, "127.0.0.1:5060".parse().unwrap());
        let (a, b) = (ConnId::from_raw(1), ConnId::from_raw(2));
        assert_eq!(d.claim(key, a), Ok(()));
        assert_eq!(d.claim(key, b), Err(a));
        d.release(&key, b);
        assert_eq!(d.lookup(&key), Some(a), "only its own entry is released");
        d.set(key, b);
        d.release(&key, a);
        assert_eq!(d.lookup(&key), Some(b));
        d.release(&key, b);
        assert_eq!(d.lookup(&key), None);
    }
}
