//! Nonces that carry their own expiry, authenticated with the server secret,
//! so no nonce needs storing: base64 of `expires(4) | since(4) | MAC(16)`
//! (32 characters, as long as Kamailio's), plus `nid(4)` when nonce-count or
//! one-time nonces are on. MAC = HMAC-SHA-256(secret, the fields before it), cut to 16 bytes.
//!
//! Replay protection (`nonce_count`, `one_time_nonce`): each nonce with a nid
//! owns slot `nid % size` of a shared array holding `nid << 32 | highest nc`;
//! a slot taken over by a newer nonce makes the old one stale.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What checking a nonce found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    /// Ours, but past its expiry (or pushed out of the replay array): challenge with stale=true.
    Stale,
    /// Not made by this server (or with another secret), or from the future.
    Invalid,
    /// Its nc did not grow, or a one-time nonce was used again.
    Reused,
}

/// Replay tracking: what must grow per nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    Off,
    /// `nonce_count`: each use needs a higher nc.
    NonceCount,
    /// `one_time_nonce`: each nonce once.
    OneTime,
}

/// The keyed MAC state; its Debug shows nothing of the secret.
#[derive(Clone)]
struct Keyed(Option<Hmac<Sha256>>);

impl std::fmt::Debug for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyed(..)")
    }
}

/// Nonce maker and checker, shared by every core.
#[derive(Debug)]
pub struct Nonces {
    /// HMAC-SHA-256 already keyed with the secret: each MAC clones it and
    /// hashes only the fields (two compressions instead of four).
    keyed: Keyed,
    /// Seconds a nonce stays valid.
    pub expire: u32,
    /// Seconds a nonce's `since` may be ahead of our clock.
    pub max_drift: u32,
    replay: Replay,
    next_nid: AtomicU32,
    slots: Box<[AtomicU64]>,
}

impl Nonces {
    /// `slots` is the replay array size (rounded to a power of two; unused when `replay` is off).
    pub fn new(secret: &[u8], expire: u32, max_drift: u32, replay: Replay, slots: usize) -> Nonces {
        let n = if replay == Replay::Off {
            0
        } else {
            slots.clamp(1024, 1 << 24).next_power_of_two()
        };
        Nonces {
            keyed: Keyed(<Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()),
            expire,
            max_drift,
            replay,
            next_nid: AtomicU32::new(1),
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn mac(&self, fields: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        if let Some(mut m) = self.keyed.0.clone() {
            m.update(fields);
            let full = m.finalize().into_bytes();
            out.copy_from_slice(&full[..16]);
        }
        out
    }

    /// A fresh nonce at `now` (seconds since 1970).
    pub fn issue(&self, now: u32) -> String {
        let mut raw = Vec::with_capacity(28);
        raw.extend_from_slice(&now.saturating_add(self.expire).to_be_bytes());
        raw.extend_from_slice(&now.to_be_bytes());
        let nid =
            (self.replay != Replay::Off).then(|| self.next_nid.fetch_add(1, Ordering::Relaxed));
        if let Some(nid) = nid {
            raw.extend_from_slice(&nid.to_be_bytes());
            if let Some(slot) = self.slot(nid) {
                slot.store(u64::from(nid) << 32, Ordering::Release);
            }
        }
        let mac = self.mac(&raw);
        let mut out = raw[..8].to_vec();
        out.extend_from_slice(&mac);
        out.extend_from_slice(&raw[8..]);
        B64.encode(out)
    }

    fn slot(&self, nid: u32) -> Option<&AtomicU64> {
        let n = self.slots.len();
        (n > 0).then(|| &self.slots[nid as usize & (n - 1)])
    }

    /// Fields of a nonce whose MAC is right: `(expires, since, nid)`.
    fn open(&self, nonce: &[u8]) -> Option<(u32, u32, Option<u32>)> {
        let raw = B64.decode(nonce).ok()?;
        let with_nid = match raw.len() {
            24 => false,
            28 => true,
            _ => return None,
        };
        let mut fields = raw[..8].to_vec();
        if with_nid {
            fields.extend_from_slice(&raw[24..28]);
        }
        let mac = self.mac(&fields);
        // Constant-time enough: both are 16 bytes.
        if mac.iter().zip(&raw[8..24]).fold(0, |a, (x, y)| a | (x ^ y)) != 0 {
            return None;
        }
        let word = |i: usize| u32::from_be_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        Some((word(0), word(4), with_nid.then(|| word(24))))
    }

    /// Checks `nonce` at `now` without recording a use (for `stale=` in a challenge).
    pub fn peek(&self, nonce: &[u8], now: u32) -> NonceCheck {
        match self.open(nonce) {
            None => NonceCheck::Invalid,
            Some((_, since, _)) if since > now.saturating_add(self.max_drift) => {
                NonceCheck::Invalid
            }
            Some((expires, _, _)) if expires <= now => NonceCheck::Stale,
            Some(_) => NonceCheck::Valid,
        }
    }

    /// Checks `nonce` at `now` and records this use (`nc` is the hex nonce-count, if any).
    pub fn check(&self, nonce: &[u8], now: u32, nc: Option<&[u8]>) -> NonceCheck {
        let first = self.peek(nonce, now);
        if first != NonceCheck::Valid || self.replay == Replay::Off {
            return first;
        }
        let Some((_, _, Some(nid))) = self.open(nonce) else {
            // Issued before replay protection was on (or by a restart with the same secret).
            return NonceCheck::Stale;
        };
        let Some(slot) = self.slot(nid) else {
            return NonceCheck::Valid;
        };
        let count = match self.replay {
            Replay::NonceCount => {
                match nc.and_then(|v| u32::from_str_radix(std::str::from_utf8(v).ok()?, 16).ok()) {
                    Some(c) => c,
                    None => return NonceCheck::Invalid,
                }
            }
            _ => 1,
        };
        let mut seen = slot.load(Ordering::Acquire);
        loop {
            if (seen >> 32) as u32 != nid {
                return NonceCheck::Stale;
            }
            if count <= seen as u32 {
                return NonceCheck::Reused;
            }
            let new = (u64::from(nid) << 32) | u64::from(count);
            match slot.compare_exchange(seen, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return NonceCheck::Valid,
                Err(now_seen) => seen = now_seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_expire_and_are_bound_to_the_secret() {
        let n = Nonces::new(b"secret", 300, 3, Replay::Off, 0);
        let nonce = n.issue(1000);
        assert_eq!(nonce.len(), 32);
        assert_eq!(n.check(nonce.as_bytes(), 1000, None), NonceCheck::Valid);
        assert_eq!(n.check(nonce.as_bytes(), 1299, None), NonceCheck::Valid);
        assert_eq!(n.check(nonce.as_bytes(), 1300, None), NonceCheck::Stale);
        // From the future (beyond the drift).
        assert_eq!(n.check(nonce.as_bytes(), 996, None), NonceCheck::Invalid);
        let other = Nonces::new(b"other", 300, 3, Replay::Off, 0);
        assert_eq!(
            other.check(nonce.as_bytes(), 1000, None),
            NonceCheck::Invalid
        );
        assert_eq!(n.check(b"not base64!", 1000, None), NonceCheck::Invalid);
        let mut forged = nonce.into_bytes();
        forged[2] ^= 1;
        assert_eq!(n.check(&forged, 1000, None), NonceCheck::Invalid);
    }

    #[test]
    fn nonce_count_must_grow() {
        let n = Nonces::new(b"s", 300, 3, Replay::NonceCount, 1024);
        let nonce = n.issue(1000);
        assert_eq!(nonce.len(), 40);
        assert_eq!(
            n.check(nonce.as_bytes(), 1000, Some(b"00000001")),
            NonceCheck::Valid
        );
        assert_eq!(
            n.check(nonce.as_bytes(), 1000, Some(b"00000001")),
            NonceCheck::Reused
        );
        assert_eq!(
            n.check(nonce.as_bytes(), 1000, Some(b"00000002")),
            NonceCheck::Valid
        );
        assert_eq!(n.check(nonce.as_bytes(), 1000, None), NonceCheck::Invalid);
        // 1024 newer nonces push it out of the array: stale.
        for _ in 0..1024 {
            n.issue(1000);
        }
        assert_eq!(
            n.check(nonce.as_bytes(), 1000, Some(b"00000003")),
            NonceCheck::Stale
        );
    }

    #[test]
    fn one_time_nonces() {
        let n = Nonces::new(b"s", 300, 3, Replay::OneTime, 1024);
        let nonce = n.issue(1000);
        assert_eq!(n.check(nonce.as_bytes(), 1000, None), NonceCheck::Valid);
        assert_eq!(n.check(nonce.as_bytes(), 1000, None), NonceCheck::Reused);
        let plain = Nonces::new(b"s", 300, 3, Replay::Off, 0).issue(1000);
        assert_eq!(n.check(plain.as_bytes(), 1000, None), NonceCheck::Stale);
    }
}
