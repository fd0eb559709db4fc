//! SipHash-1-3 under a table's secret key: the hash of the server
//! transaction index, of the branch check and of our To-tags.
//!
//! It is the function std's `RandomState` computes (SipHash-1-3, 128-bit key
//! drawn at random for each table), so it keeps what that one gave:
//! - **HashDoS on the index.** Attackers choose the keys that go in (branch,
//!   sent-by, method), but SipHash is a keyed pseudo-random function: without
//!   the key, which never leaves the process, they can neither compute nor
//!   search out colliding keys, even watching lookups' timing. Faster
//!   seeded hashes (foldhash, for one) state that they do not resist an
//!   interactive attacker who learns the seed from timing, which a proxy on
//!   an open port has to assume.
//! - **Guessing a branch check.** The 48-bit check in every branch we send
//!   is an output of this function that everyone downstream sees, for
//!   sequential slots and generations. A PRF's outputs tell nothing of its
//!   key or of its output for another input, so forging a branch of another
//!   transaction is still a 2^-48 guess per try.
//!
//! What is saved is std's generic streaming machinery: the branch check
//! and To-tag hash two words with no buffering ([`SipKey::hash_u128`]), and
//! the index key, gathered into one write by `Key::hash`, is read a word at
//! a time.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// A SipHash-1-3 key; as a `BuildHasher`, the hasher of that key.
#[derive(Clone, Copy)]
pub(crate) struct SipKey {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for SipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is the secret: never printed.
        f.write_str("SipKey(..)")
    }
}

impl SipKey {
    #[cfg(test)]
    pub(crate) fn new(k0: u64, k1: u64) -> SipKey {
        SipKey { k0, k1 }
    }

    /// A key of 128 random bits, different for every call. Drawn through
    /// std's `RandomState` (seeded from the operating system's random
    /// source): two outputs of a SipHash under its random key are as random
    /// as its key, and tm reads no device of its own (DESIGN.md layers).
    pub(crate) fn random() -> SipKey {
        let seed = RandomState::new();
        SipKey {
            k0: seed.hash_one(0x7365_6564_3030_3030u64),
            k1: seed.hash_one(0x7365_6564_3030_3031u64),
        }
    }

    /// The hash of the 16 little-endian bytes of `m` (what hashing `m`
    /// through the `Hasher` gives), in two compressions.
    pub(crate) fn hash_u128(&self, m: u128) -> u64 {
        self.hash_words::<1, 3>(m as u64, (m >> 64) as u64)
    }

    fn hash_words<const C: usize, const D: usize>(&self, lo: u64, hi: u64) -> u64 {
        let mut s = State::new(self.k0, self.k1);
        s.compress::<C>(lo);
        s.compress::<C>(hi);
        s.finish::<C, D>(16 << 56)
    }
}

impl BuildHasher for SipKey {
    type Hasher = SipHasher<1, 3>;

    fn build_hasher(&self) -> SipHasher<1, 3> {
        SipHasher::new(self)
    }
}

#[derive(Clone, Copy, Debug)]
struct State {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl State {
    fn new(k0: u64, k1: u64) -> State {
        State {
            v0: k0 ^ 0x736f_6d65_7073_6575,
            v1: k1 ^ 0x646f_7261_6e64_6f6d,
            v2: k0 ^ 0x6c79_6765_6e65_7261,
            v3: k1 ^ 0x7465_6462_7974_6573,
        }
    }

    #[inline(always)]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    #[inline(always)]
    fn compress<const C: usize>(&mut self, m: u64) {
        self.v3 ^= m;
        for _ in 0..C {
            self.round();
        }
        self.v0 ^= m;
    }

    /// The last block `b` (length byte and tail), then the finalization.
    #[inline(always)]
    fn finish<const C: usize, const D: usize>(mut self, b: u64) -> u64 {
        self.compress::<C>(b);
        self.v2 ^= 0xff;
        for _ in 0..D {
            self.round();
        }
        self.v0 ^ self.v1 ^ self.v2 ^ self.v3
    }
}

/// Up to 8 bytes as a little-endian word.
#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    if let Some(w) = w.get_mut(..bytes.len()) {
        w.copy_from_slice(bytes);
    }
    u64::from_le_bytes(w)
}

/// SipHash-C-D over the bytes written, in any pieces (the hash of their
/// concatenation).
#[derive(Clone, Debug)]
pub(crate) struct SipHasher<const C: usize, const D: usize> {
    state: State,
    /// The bytes of an unfinished word, little-endian.
    tail: u64,
    ntail: usize,
    len: usize,
}

impl<const C: usize, const D: usize> SipHasher<C, D> {
    fn new(key: &SipKey) -> Self {
        SipHasher {
            state: State::new(key.k0, key.k1),
            tail: 0,
            ntail: 0,
            len: 0,
        }
    }
}

impl<const C: usize, const D: usize> Hasher for SipHasher<C, D> {
    #[inline]
    fn write(&mut self, mut msg: &[u8]) {
        self.len = self.len.wrapping_add(msg.len());
        if self.ntail != 0 {
            let need = 8 - self.ntail;
            let (head, rest) = msg.split_at(need.min(msg.len()));
            self.tail |= word(head) << (8 * self.ntail);
            if head.len() < need {
                self.ntail += head.len();
                return;
            }
            self.state.compress::<C>(self.tail);
            msg = rest;
        }
        let mut words = msg.chunks_exact(8);
        for w in &mut words {
            self.state.compress::<C>(word(w));
        }
        let rest = words.remainder();
        self.tail = word(rest);
        self.ntail = rest.len();
    }

    fn finish(&self) -> u64 {
        // The length's low byte goes in the top byte of the last block.
        let b = (self.len as u64) << 56 | self.tail;
        self.state.finish::<C, D>(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// std's SipHash-2-4 (deprecated as an API, kept as a reference).
    #[allow(deprecated)]
    fn reference_2_4(k0: u64, k1: u64, pieces: &[&[u8]]) -> u64 {
        let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
        for p in pieces {
            h.write(p);
        }
        h.finish()
    }

    fn ours<const C: usize, const D: usize>(key: &SipKey, pieces: &[&[u8]]) -> u64 {
        let mut h = SipHasher::<C, D>::new(key);
        for p in pieces {
            h.write(p);
        }
        h.finish()
    }

    /// The test vector of the SipHash paper (appendix A): SipHash-2-4, key
    /// 00 01 .. 0f, message 00 01 .. 0e.
    #[test]
    fn paper_vector() {
        let key = SipKey::new(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(ours::<2, 4>(&key, &[&msg]), 0xa129_ca61_49be_45e5);
    }

    proptest! {
        /// The same rounds as SipHash-2-4 give std's value for any message
        /// in any pieces: our code is SipHash, and with 1 and 3 rounds it is
        /// SipHash-1-3, what `RandomState` computed.
        #[test]
        fn equals_std_siphash_in_any_pieces(
            k0: u64,
            k1: u64,
            msg in proptest::collection::vec(any::<u8>(), 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(msg.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts {
                pieces.push(&msg[at..c]);
                at = c;
            }
            pieces.push(&msg[at..]);
            let key = SipKey::new(k0, k1);
            prop_assert_eq!(ours::<2, 4>(&key, &pieces), reference_2_4(k0, k1, &pieces));
            prop_assert_eq!(ours::<1, 3>(&key, &pieces), ours::<1, 3>(&key, &[&msg]));
        }

        /// The two-word shortcut is the hash of the 16 bytes, as `hash_one`
        /// of a `u128` through the `Hasher` (what the branch check used).
        #[test]
        fn two_words_equal_the_streamed_bytes(k0: u64, k1: u64, m: u128) {
            let key = SipKey::new(k0, k1);
            prop_assert_eq!(key.hash_u128(m), ours::<1, 3>(&key, &[&m.to_le_bytes()]));
            prop_assert_eq!(key.hash_u128(m), key.hash_one(m));
            prop_assert_eq!(
                key.hash_words::<2, 4>(m as u64, (m >> 64) as u64),
                reference_2_4(k0, k1, &[&m.to_le_bytes()])
            );
        }
    }

    #[test]
    fn random_keys_differ() {
        let (a, b) = (SipKey::random(), SipKey::random());
        assert_ne!((a.k0, a.k1), (b.k0, b.k1));
        assert_ne!(a.k0, a.k1);
        assert_eq!(format!("{a:?}"), "SipKey(..)");
    }
}
