//! The topoh mask: a base64 variant whose 64-letter alphabet is shuffled by
//! a permutation derived from `mask_key`, with `*` as the padding letter.
//! Kamailio 5.6 encodes exactly so (its letters are `A–Z a–z 0–9 . -`
//! before the shuffle); with the same key both give the same text, so a
//! ringsip and a Kamailio sharing a key decode each other's values.
//!
//! The permutation: a Fisher–Yates pass from the last letter down, where the
//! slot swapped with letter `last - 1` is chosen from the MD5 of the key
//! written twice (read as four little-endian 32-bit words) and a CRC-16 of
//! the key (CCITT, reflected, initial 0xFFFF, inverted), plus one byte of
//! the key read as a signed char, all in 32-bit wrapping arithmetic.

use md5::{Digest, Md5};

/// The alphabet before the shuffle.
const LETTERS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-";

/// The padding letter.
pub const PAD: u8 = b'*';

/// One key's alphabet, both ways.
#[derive(Clone, Debug)]
pub struct Mask {
    encode: [u8; 64],
    /// The value of each letter, 0xff for a byte that is not one.
    decode: [u8; 256],
}

/// CRC-16/CCITT as Kamailio's `crcitt_string` computes it (reflected
/// polynomial 0x8408, initial value 0xFFFF, result inverted).
pub fn crcitt(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

impl Mask {
    /// The alphabet of `key`; `None` for an empty key (no permutation).
    pub fn new(key: &[u8]) -> Option<Mask> {
        if key.is_empty() {
            return None;
        }
        let mut letters = *LETTERS;
        let mut h = Md5::new();
        h.update(key);
        h.update(key);
        let digest = h.finalize();
        let mut words = [0u32; 4];
        for (w, chunk) in words.iter_mut().zip(digest.chunks_exact(4)) {
            *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let crc = u32::from(crcitt(key));
        // A key longer than 4 GiB cannot be configured.
        let klen = key.len() as u32;
        for last in (2..=64u32).rev() {
            let j = crc.wrapping_add(last).wrapping_add(klen);
            let word = words[(j % 4) as usize];
            // The key byte is a C `char`: signed on the platforms Kamailio runs on.
            let kb = key[(j % klen) as usize] as i8 as i32 as u32;
            let r = word.wrapping_add(kb) % last;
            letters.swap(r as usize, (last - 1) as usize);
        }
        let mut decode = [0xffu8; 256];
        for (i, &c) in letters.iter().enumerate() {
            decode[usize::from(c)] = i as u8;
        }
        Some(Mask {
            encode: letters,
            decode,
        })
    }

    /// The shuffled alphabet.
    pub fn alphabet(&self) -> &[u8; 64] {
        &self.encode
    }

    /// Appends `prefix` then `input` encoded to `out`.
    pub fn encode_into(&self, input: &[u8], prefix: &[u8], out: &mut Vec<u8>) {
        out.reserve(prefix.len() + input.len().div_ceil(3) * 4);
        out.extend_from_slice(prefix);
        for chunk in input.chunks(3) {
            let b0 = u32::from(chunk[0]);
            let b1 = chunk.get(1).map_or(0, |&b| u32::from(b));
            let b2 = chunk.get(2).map_or(0, |&b| u32::from(b));
            let block = (b0 << 16) | (b1 << 8) | b2;
            out.push(self.encode[(block >> 18) as usize & 0x3f]);
            out.push(self.encode[(block >> 12) as usize & 0x3f]);
            out.push(if chunk.len() > 1 {
                self.encode[(block >> 6) as usize & 0x3f]
            } else {
                PAD
            });
            out.push(if chunk.len() > 2 {
                self.encode[block as usize & 0x3f]
            } else {
                PAD
            });
        }
    }

    /// `prefix` then `input` encoded.
    pub fn encode(&self, input: &[u8], prefix: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(input, prefix, &mut out);
        out
    }

    /// Decodes `input` after its first `skip` bytes (a prefix, not checked
    /// here, as Kamailio skips it); `None` when nothing is left or a letter
    /// is not of the alphabet.
    pub fn decode(&self, input: &[u8], skip: usize) -> Option<Vec<u8>> {
        let body = input.get(skip..)?;
        let pads = body.iter().rev().take_while(|&&c| c == PAD).count();
        let olen = (body.len() * 6 / 8).checked_sub(pads)?;
        if olen == 0 {
            return None;
        }
        let letters = &body[..body.len() - pads];
        let mut out = Vec::with_capacity(olen + 3);
        for group in letters.chunks(4) {
            let mut block = 0u32;
            for (j, &c) in group.iter().enumerate() {
                let v = self.decode[usize::from(c)];
                if v == 0xff {
                    return None;
                }
                block |= u32::from(v) << (18 - 6 * j);
            }
            out.extend_from_slice(&[(block >> 16) as u8, (block >> 8) as u8, block as u8]);
        }
        out.truncate(olen);
        (out.len() == olen).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Alphabets Kamailio 5.6.3 logged (`th_mask_init`, debug=3) for these keys.
    const KAMAILIO_TABLES: &[(&[u8], &[u8; 64])] = &[
        (
            b"aL9.n8~Hm]Z",
            b"y0GxFtSUVeTOMWzHPam.jKR93gCoNpkicrJBqIEhvYbnd175AfLl4u6wZs-X8Q2D",
        ),
        (
            b"abc",
            b"kSZE6Ju4qTAje35GVRrP9ca7xDhWzFdgoC8wspUOH.YnKMtlBvyiI12XQ0bN-fLm",
        ),
        (
            b"topoh-secret-1",
            b"FihEW1aTJ5Ubj8CfpYgwstdSlzRn9Ko7eMcHvmX6.LZy2QPDkAVu4NIOGq3B-0xr",
        ),
        (
            // Bytes above 0x7f: signed chars in Kamailio's arithmetic.
            "Zk3ü€".as_bytes(),
            b"YEuZsVcQ9dTD.ISX25kLWCKoNxMtj148pRFraGJ0fn7wBeH6bhqPvUlmy3-zgiAO",
        ),
    ];

    #[test]
    fn alphabets_are_kamailios() {
        for (key, table) in KAMAILIO_TABLES {
            let m = Mask::new(key).expect("key");
            assert_eq!(
                std::str::from_utf8(m.alphabet()).expect("ascii"),
                std::str::from_utf8(*table).expect("ascii"),
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn crc_of_the_check_string() {
        // CRC-16/X-25 check value.
        assert_eq!(crcitt(b"123456789"), 0x906e);
    }

    #[test]
    fn empty_key_has_no_mask() {
        assert!(Mask::new(b"").is_none());
    }

    #[test]
    fn decode_refuses_foreign_letters_and_empty_values() {
        let m = Mask::new(b"k").expect("key");
        assert_eq!(m.decode(b"sr-", 3), None);
        assert_eq!(m.decode(b"sr-****", 3), None);
        assert_eq!(m.decode(b"sr-ab+d", 3), None);
        assert_eq!(m.decode(b"x", 3), None);
    }

    proptest! {
        #[test]
        fn round_trip(key in proptest::collection::vec(any::<u8>(), 1..40),
                      data in proptest::collection::vec(any::<u8>(), 1..200),
                      prefix in "[a-z!:-]{0,6}") {
            let m = Mask::new(&key).expect("key");
            let enc = m.encode(&data, prefix.as_bytes());
            prop_assert!(enc.starts_with(prefix.as_bytes()));
            prop_assert!(enc[prefix.len()..].iter().all(|c| m.alphabet().contains(c) || *c == PAD));
            prop_assert_eq!(m.decode(&enc, prefix.len()), Some(data));
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), skip in 0usize..8) {
            let m = Mask::new(b"key").expect("key");
            let _ = m.decode(&data, skip);
        }
    }
}
