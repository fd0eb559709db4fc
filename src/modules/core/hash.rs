//! A small keyed hash for identifiers that must be stable across
//! retransmissions (stateless branches, local To-tags): FNV-1a over the parts,
//! each part followed by a separator so `("ab","c")` and `("a","bc")` differ.

/// 64-bit FNV-1a of `parts`, started from `seed`.
pub fn fnv1a(seed: u64, parts: &[&[u8]]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = 0xcbf2_9ce4_8422_2325 ^ seed;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// Appends `v` as `digits` lower-case hex digits (the low ones).
pub fn push_hex(out: &mut Vec<u8>, v: u64, digits: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_parts_and_hex() {
        assert_ne!(fnv1a(0, &[b"ab", b"c"]), fnv1a(0, &[b"a", b"bc"]));
        assert_eq!(fnv1a(7, &[b"x"]), fnv1a(7, &[b"x"]));
        assert_ne!(fnv1a(7, &[b"x"]), fnv1a(8, &[b"x"]));
        let mut out = Vec::new();
        push_hex(&mut out, 0xabc, 4);
        assert_eq!(out, b"0abc");
    }
}
