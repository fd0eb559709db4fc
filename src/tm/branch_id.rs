//! The Via branch of our client transactions (DESIGN.md "Thread-per-core"):
//! `z9hG4bK` + `R` + 34 lower-case hex digits carrying the owning core, the
//! slab slot and its generation, the branch index, and a 48-bit check.
//!
//! ```text
//! z9hG4bK R cccc ssssssss gggggggg ii kkkkkkkkkkkk
//!         │ core slot     generation │  check = keyed hash of the rest
//!         └ format tag               └ branch index
//! ```
//!
//! A reply is matched in O(1) with no lookup: decode, index the slab, compare
//! the generation. The check is a hash keyed by a secret of the owning table,
//! so a forged or garbled branch (or one from before a restart) fails it, and
//! a stale one (slot reused) fails the generation test. RFC 3261 §8.1.1.7 asks
//! for branches "unique across space and time": slot + generation are unique
//! while the process lives, the keyed check separates processes and restarts.

use crate::sip::via::MAGIC_COOKIE;
use crate::tm::table::siphash::SipKey;

/// Where a client transaction lives: core, slab slot, generation, branch index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BranchId {
    /// The core whose table owns the transaction.
    pub core: u16,
    /// The slab slot of the transaction.
    pub slot: u32,
    /// The generation of that slot (a reused slot has a new one).
    pub gen: u32,
    /// The branch index within the transaction.
    pub index: u8,
}

/// Length of an encoded branch: cookie, tag, 4 + 8 + 8 + 2 + 12 hex digits.
pub const BRANCH_LEN: usize = MAGIC_COOKIE.len() + 1 + 34;

const TAG: u8 = b'R';
const CHECK_BITS: u32 = 48;

/// An encoded branch parameter value, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BranchParam([u8; BRANCH_LEN]);

impl BranchParam {
    /// The value to write after `;branch=`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for BranchParam {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for BranchParam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// What decoding a branch found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Not one of ours (no cookie, wrong length or tag, not hex): some other
    /// element's branch, or garbage.
    Foreign,
    /// Ours by shape, owned by another core: hand the message over (the
    /// check can only be verified there).
    OtherCore(u16),
    /// Ours, this core, and the check holds (the generation is checked by the slab).
    Local(BranchId),
    /// This core's shape but the check fails: forged or from a previous run.
    Forged,
}

/// Encodes and checks branches for one core, with that core's secret.
#[derive(Clone, Debug)]
pub(crate) struct BranchCodec {
    core: u16,
    /// SipHash-1-3 under a random key of this table: a keyed PRF, so the
    /// checks we send tell nothing of the check of any other branch (the
    /// `siphash` module of the table says why not a faster hash).
    key: SipKey,
}

impl BranchCodec {
    pub fn new(core: u16, key: SipKey) -> Self {
        BranchCodec { core, key }
    }

    fn check(&self, id: &BranchId) -> u64 {
        // The four fields packed into two words: one two-word SipHash, no
        // streaming (each field written on its own costs a tail merge).
        let packed = u128::from(id.core) << 72
            | u128::from(id.index) << 64
            | u128::from(id.slot) << 32
            | u128::from(id.gen);
        let h = self.key.hash_u128(packed);
        h & ((1u64 << CHECK_BITS) - 1)
    }

    /// The branch parameter of `id` (whose `core` should be this codec's).
    pub fn encode(&self, id: &BranchId) -> BranchParam {
        let mut out = [0u8; BRANCH_LEN];
        let (cookie, rest) = out.split_at_mut(MAGIC_COOKIE.len());
        cookie.copy_from_slice(MAGIC_COOKIE);
        let check = self.check(id);
        // Eight digits at a time ([`hex8`]); the narrower fields are the
        // tails of their eight.
        let core = hex8(u32::from(id.core));
        let index = hex8(u32::from(id.index));
        let check_high = hex8((check >> 16) as u32);
        let check_low = hex8(check as u32 & 0xffff);
        let (slot, gen) = (hex8(id.slot), hex8(id.gen));
        let fields: [&[u8]; 7] = [
            &[TAG],
            &core[4..],
            &slot,
            &gen,
            &index[6..],
            &check_high,
            &check_low[4..],
        ];
        let mut pos = 0;
        for f in fields {
            if let Some(d) = rest.get_mut(pos..pos + f.len()) {
                d.copy_from_slice(f);
            }
            pos += f.len();
        }
        BranchParam(out)
    }

    /// Decodes a branch taken from a received message. Never panics.
    pub fn decode(&self, branch: &[u8]) -> Decoded {
        let Some(rest) = branch.strip_prefix(MAGIC_COOKIE) else {
            return Decoded::Foreign;
        };
        if rest.len() != BRANCH_LEN - MAGIC_COOKIE.len() || rest.first() != Some(&TAG) {
            return Decoded::Foreign;
        }
        let mut pos = 1;
        let mut take = |digits: usize| -> Option<u64> {
            let field = rest.get(pos..pos + digits)?;
            pos += digits;
            field.iter().try_fold(0u64, |acc, &b| {
                let d = HEX_VALUE[usize::from(b)];
                (d < 16).then_some(acc << 4 | u64::from(d))
            })
        };
        let (Some(core), Some(slot), Some(gen), Some(index), Some(check)) =
            (take(4), take(8), take(8), take(2), take(12))
        else {
            return Decoded::Foreign;
        };
        // The widths above bound each value to its type.
        let id = BranchId {
            core: core as u16,
            slot: slot as u32,
            gen: gen as u32,
            index: index as u8,
        };
        if id.core != self.core {
            return Decoded::OtherCore(id.core);
        }
        if self.check(&id) != check {
            return Decoded::Forged;
        }
        Decoded::Local(id)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The eight lower-case hex digits of `v`, most significant first, computed
/// on all eight at once: each nibble spread into a byte of a `u64`, then
/// `'0'` added to each and `'a' - '0' - 10` more where the nibble is 10 or
/// more (its byte plus 6 carries into bit 4; no byte carries into the next).
pub(crate) fn hex8(v: u32) -> [u8; 8] {
    let x = u64::from(v);
    let x = (x & 0xffff_0000) << 16 | (x & 0x0000_ffff);
    let x = (x & 0x0000_ff00_0000_ff00) << 8 | (x & 0x0000_00ff_0000_00ff);
    let x = (x & 0x00f0_00f0_00f0_00f0) << 4 | (x & 0x000f_000f_000f_000f);
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
}

/// The value of each lower-case hex digit; 255 for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut t = [255u8; 256];
    let mut i = 0;
    while i < 16 {
        t[HEX[i] as usize] = i as u8;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(core: u16) -> BranchCodec {
        BranchCodec::new(core, SipKey::random())
    }

    #[test]
    fn encoding_is_the_fields_in_fixed_width_hex() {
        let c = codec(0x1a2b);
        for id in [
            BranchId {
                core: 0x1a2b,
                slot: 0,
                gen: 0,
                index: 0,
            },
            BranchId {
                core: 0x1a2b,
                slot: 0xdead_beef,
                gen: u32::MAX,
                index: 0xfe,
            },
        ] {
            let want = format!(
                "z9hG4bKR{:04x}{:08x}{:08x}{:02x}{:012x}",
                id.core,
                id.slot,
                id.gen,
                id.index,
                c.check(&id)
            );
            assert_eq!(c.encode(&id).as_bytes(), want.as_bytes());
        }
    }

    /// The eight digits at once are those of `format!` (every nibble value
    /// in every position, and random values).
    #[test]
    fn hex8_is_the_formatted_digits() {
        let mut values = vec![0, u32::MAX, 0x0123_4567, 0x89ab_cdef, 0xfedc_ba98];
        for pos in 0..8 {
            for n in 0..16u32 {
                values.push(n << (4 * pos));
                values.push(!(n << (4 * pos)));
            }
        }
        let mut x = 0x9e37_79b9u32;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            values.push(x);
        }
        for v in values {
            assert_eq!(hex8(v), *format!("{v:08x}").as_bytes(), "{v:#x}");
        }
    }

    proptest::proptest! {
        /// Any id encodes as its fields in fixed-width hex and decodes back.
        #[test]
        fn any_id_encodes_as_formatted_and_round_trips(slot: u32, gen: u32, index: u8, core: u16) {
            let c = codec(core);
            let id = BranchId { core, slot, gen, index };
            let want = format!(
                "z9hG4bKR{:04x}{:08x}{:08x}{:02x}{:012x}",
                id.core, id.slot, id.gen, id.index, c.check(&id)
            );
            let got = c.encode(&id);
            proptest::prop_assert_eq!(got.as_bytes(), want.as_bytes());
            proptest::prop_assert_eq!(c.decode(want.as_bytes()), Decoded::Local(id));
        }
    }

    #[test]
    fn hex_values_are_the_lower_case_digits_only() {
        for b in 0..=255u8 {
            let want = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => 255,
            };
            assert_eq!(HEX_VALUE[usize::from(b)], want, "{b}");
        }
    }

    #[test]
    fn round_trip() {
        let c = codec(3);
        let id = BranchId {
            core: 3,
            slot: 0xdead_beef,
            gen: 7,
            index: 11,
        };
        let p = c.encode(&id);
        assert_eq!(p.as_bytes().len(), BRANCH_LEN);
        assert!(p.as_bytes().starts_with(b"z9hG4bKR0003deadbeef000000070b"));
        assert_eq!(c.decode(p.as_bytes()), Decoded::Local(id));
    }

    #[test]
    fn garbage_and_foreign_branches() {
        let c = codec(0);
        for b in [
            &b""[..],
            b"z9hG4bK",
            b"z9hG4bK776asdhds",
            b"z9hG4bKsl0123456789abcdef",
            b"branch-without-cookie",
            b"z9hG4bKR0000000000000000000000000000000000000", // too long
            b"z9hG4bKR00000000000000000000000000000000000",   // too short
            b"z9hG4bKr0000000000000000000000000000000000",    // wrong tag
            b"z9hG4bKR000000000000000000000000000000000G",    // not hex
            b"z9hG4bKR00000000000000000000000000000000A0",    // upper case
            "z9hG4bKR00000000000000000000000000000000é".as_bytes(),
        ] {
            assert_eq!(
                c.decode(b),
                Decoded::Foreign,
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
    }

    #[test]
    fn forged_stale_and_other_core() {
        let c = codec(1);
        let id = BranchId {
            core: 1,
            slot: 5,
            gen: 2,
            index: 0,
        };
        let good = c.encode(&id);
        // Flip each digit in turn: never accepted as the same or another branch of ours.
        for i in MAGIC_COOKIE.len() + 5..BRANCH_LEN {
            let mut b = good.as_bytes().to_vec();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            assert!(
                matches!(c.decode(&b), Decoded::Forged),
                "digit {i}: {:?}",
                c.decode(&b)
            );
        }
        // Another core's branch is handed over without a check.
        let other = codec(2).encode(&BranchId { core: 2, ..id });
        assert_eq!(c.decode(other.as_bytes()), Decoded::OtherCore(2));
        // Same core number, other secret (a previous run): forged.
        let previous_run = codec(1).encode(&id);
        assert_eq!(c.decode(previous_run.as_bytes()), Decoded::Forged);
    }
}
