//! Codecs of the intercept stage: a byte buffer in, a byte buffer out. The
//! built-in ones are gzip and a pre-shared-key AEAD cipher; a deployment adds
//! its own by implementing [`Codec`].

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use flate2::{Compress, Compression, Crc, Decompress, FlushCompress, FlushDecompress, Status};

/// Largest buffer a decoder produces. A datagram is at most 64 KiB, and a
/// message after decoding may not be larger either (a gzip bomb stops here).
pub const MAX_DECODED: usize = 65_535;

/// Why a buffer could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    /// The input is not in the codec's format (bad gzip stream, bad tag…).
    Malformed(&'static str),
    /// The decoded data would exceed [`MAX_DECODED`].
    TooLarge,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Malformed(why) => f.write_str(why),
            CodecError::TooLarge => write!(f, "decoded data exceeds {MAX_DECODED} bytes"),
        }
    }
}

impl std::error::Error for CodecError {}

/// A reversible transformation of a whole message buffer.
pub trait Codec: Send + Sync {
    /// A short name for logs (`gzip`, the cipher profile's name…).
    fn name(&self) -> &str;
    /// Appends the encoded form of `input` to `out`.
    fn encode(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Appends the decoded form of `input` to `out`; on error `out` may hold
    /// a partial result that the caller must not use.
    fn decode(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError>;
}

/// gzip (RFC 1952) with flate2's fast level: SIP messages are small and the
/// stage runs once per datagram. The deflate and inflate states (hundreds
/// of KiB to set up) are made once per thread and reset between messages;
/// the gzip header and trailer are written and checked here.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gzip;

thread_local! {
    static DEFLATE: RefCell<Option<Compress>> = const { RefCell::new(None) };
    static INFLATE: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unknown (RFC 1952 §2.3).
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;
const FRESERVED: u8 = 0xe0;

/// Where the deflate data of a gzip member starts (after its header fields).
fn gzip_header_len(input: &[u8]) -> Result<usize, CodecError> {
    let bad = CodecError::Malformed("gzip: bad header");
    if input.len() < 10 || input[..3] != [0x1f, 0x8b, 8] || input[3] & FRESERVED != 0 {
        return Err(bad);
    }
    let flags = input[3];
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = input.get(at..at + 2).ok_or(bad.clone())?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let rest = input.get(at..).ok_or(bad.clone())?;
            at += 1 + memchr::memchr(0, rest).ok_or(bad.clone())?;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    if at > input.len() {
        return Err(bad);
    }
    Ok(at)
}

impl Codec for Gzip {
    fn name(&self) -> &str {
        "gzip"
    }

    fn encode(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let failed = CodecError::Malformed("gzip: cannot compress");
        out.extend_from_slice(&GZIP_HEADER);
        DEFLATE.with_borrow_mut(|slot| {
            let z = slot.get_or_insert_with(|| Compress::new(Compression::fast(), false));
            z.reset();
            // Stored blocks bound the output: 5 bytes per 16 KiB block, plus slack.
            out.reserve(input.len() + input.len() / 1000 + 64);
            loop {
                let consumed = z.total_in() as usize;
                let status = z
                    .compress_vec(&input[consumed..], out, FlushCompress::Finish)
                    .map_err(|_| failed.clone())?;
                match status {
                    Status::StreamEnd => return Ok(()),
                    Status::Ok | Status::BufError => out.reserve(out.capacity().max(64)),
                }
            }
        })?;
        let mut crc = Crc::new();
        crc.update(input);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
        Ok(())
    }

    fn decode(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let bad = CodecError::Malformed("gzip: bad stream");
        let start = out.len();
        let body = &input[gzip_header_len(input)?..];
        let used = INFLATE.with_borrow_mut(|slot| {
            let z = slot.get_or_insert_with(|| Decompress::new(false));
            z.reset(false);
            out.reserve((body.len() * 4).clamp(256, MAX_DECODED + 1));
            loop {
                let consumed = z.total_in() as usize;
                let before = z.total_out();
                let status = z
                    .decompress_vec(&body[consumed..], out, FlushDecompress::None)
                    .map_err(|_| bad.clone())?;
                if out.len() - start > MAX_DECODED {
                    return Err(CodecError::TooLarge);
                }
                match status {
                    Status::StreamEnd => return Ok(z.total_in() as usize),
                    _ if out.len() == out.capacity() => {
                        let room = (MAX_DECODED + 1 - (out.len() - start)).min(out.capacity());
                        out.reserve(room);
                    }
                    // Neither the input nor the room ran out and nothing came: truncated.
                    _ if z.total_out() == before && z.total_in() as usize == consumed => {
                        return Err(bad.clone())
                    }
                    _ => {}
                }
            }
        })?;
        // CRC-32 and ISIZE of the data, then nothing (one member per message).
        let trailer = &body[used..];
        if trailer.len() != 8 {
            return Err(bad);
        }
        let mut crc = Crc::new();
        crc.update(&out[start..]);
        let want_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let want_len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if crc.sum() != want_crc || (out.len() - start) as u32 != want_len {
            return Err(CodecError::Malformed("gzip: bad checksum"));
        }
        Ok(())
    }
}

/// Length of a cipher key (XChaCha20-Poly1305: 256 bits).
pub const KEY_LEN: usize = 32;
/// Length of the nonce written before the ciphertext.
pub const NONCE_LEN: usize = 24;
/// Length of the authentication tag after the ciphertext.
pub const TAG_LEN: usize = 16;

/// XChaCha20-Poly1305 with a pre-shared key. Wire format: a 24-byte nonce,
/// then the ciphertext with its 16-byte tag. The nonce is a random 16-byte
/// prefix drawn when the cipher is made, then a counter: with 192-bit nonces
/// several processes sharing one key never repeat one in practice.
pub struct Cipher {
    name: String,
    aead: XChaCha20Poly1305,
    prefix: [u8; 16],
    counter: AtomicU64,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        write!(f, "Cipher({})", self.name)
    }
}

impl Cipher {
    /// The algorithm names a `cipher_profile` may give.
    pub const ALGORITHMS: &'static [&'static str] = &["xchacha20-poly1305", "xchacha20poly1305"];

    /// A cipher named `name` with `key`, its nonce prefix from `prefix`.
    pub fn new(name: &str, key: &[u8; KEY_LEN], prefix: [u8; 16]) -> Cipher {
        Cipher {
            name: name.to_string(),
            aead: XChaCha20Poly1305::new(key.into()),
            prefix,
            counter: AtomicU64::new(0),
        }
    }

    /// Reads a key file's content: 32 raw bytes, or 64 hexadecimal digits
    /// (surrounding whitespace ignored).
    pub fn key_from_file_content(content: &[u8]) -> Result<[u8; KEY_LEN], String> {
        let trimmed = content.trim_ascii();
        if trimmed.len() == 2 * KEY_LEN {
            let mut key = [0u8; KEY_LEN];
            if hex::decode_to_slice(trimmed, &mut key).is_ok() {
                return Ok(key);
            }
        }
        <[u8; KEY_LEN]>::try_from(content)
            .map_err(|_| format!("a key is {KEY_LEN} raw bytes or {} hex digits", 2 * KEY_LEN))
    }

    fn next_nonce(&self) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..16].copy_from_slice(&self.prefix);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        nonce[16..].copy_from_slice(&n.to_be_bytes());
        nonce
    }
}

impl Codec for Cipher {
    fn name(&self) -> &str {
        &self.name
    }

    fn encode(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let nonce = self.next_nonce();
        let sealed = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), input)
            .map_err(|_| CodecError::Malformed("cipher: cannot encrypt"))?;
        out.reserve(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(())
    }

    fn decode(&self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if input.len() < NONCE_LEN + TAG_LEN {
            return Err(CodecError::Malformed("cipher: too short"));
        }
        let (nonce, sealed) = input.split_at(NONCE_LEN);
        let plain = self
            .aead
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| CodecError::Malformed("cipher: bad tag"))?;
        if plain.len() > MAX_DECODED {
            return Err(CodecError::TooLarge);
        }
        out.extend_from_slice(&plain);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n";

    fn round_trip(codec: &dyn Codec, input: &[u8]) -> Vec<u8> {
        let mut enc = Vec::new();
        codec.encode(input, &mut enc).expect("encodes");
        assert_ne!(enc.as_slice(), input, "{} changed nothing", codec.name());
        let mut dec = Vec::new();
        codec.decode(&enc, &mut dec).expect("decodes");
        dec
    }

    #[test]
    fn gzip_round_trips_text_and_binary() {
        assert_eq!(round_trip(&Gzip, MSG), MSG);
        let binary: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        assert_eq!(round_trip(&Gzip, &binary), binary);
        assert_eq!(round_trip(&Gzip, b""), b"");
    }

    #[test]
    fn gzip_reads_what_other_encoders_write() {
        use std::io::{Read, Write};
        let mut enc = flate2::GzBuilder::new()
            .filename("msg.txt")
            .comment("a comment")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), flate2::Compression::best());
        enc.write_all(MSG).unwrap();
        let zipped = enc.finish().unwrap();
        let mut out = Vec::new();
        Gzip.decode(&zipped, &mut out)
            .expect("decodes a header with fields");
        assert_eq!(out, MSG);
        // And what we write, flate2's reader reads.
        let mut ours = Vec::new();
        Gzip.encode(MSG, &mut ours).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&ours[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, MSG);
        // Trailing bytes after the member, or a wrong CRC: refused.
        let mut trailing = ours.clone();
        trailing.push(0);
        assert!(Gzip.decode(&trailing, &mut Vec::new()).is_err());
        let mut bad_crc = ours.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert_eq!(
            Gzip.decode(&bad_crc, &mut Vec::new()),
            Err(CodecError::Malformed("gzip: bad checksum"))
        );
    }

    #[test]
    fn gzip_never_panics_on_truncations() {
        let mut ours = Vec::new();
        Gzip.encode(MSG, &mut ours).unwrap();
        for n in 0..ours.len() {
            assert!(
                Gzip.decode(&ours[..n], &mut Vec::new()).is_err(),
                "cut at {n}"
            );
        }
    }

    #[test]
    fn gzip_output_is_gzip() {
        let mut enc = Vec::new();
        Gzip.encode(MSG, &mut enc).unwrap();
        assert_eq!(&enc[..2], &[0x1f, 0x8b], "gzip magic");
    }

    #[test]
    fn gzip_rejects_garbage_and_truncation() {
        let mut out = Vec::new();
        assert!(Gzip.decode(MSG, &mut out).is_err());
        let mut enc = Vec::new();
        Gzip.encode(MSG, &mut enc).unwrap();
        let mut out = Vec::new();
        assert!(Gzip.decode(&enc[..enc.len() - 5], &mut out).is_err());
        let mut out = Vec::new();
        assert!(Gzip.decode(&[], &mut out).is_err());
    }

    #[test]
    fn gzip_bomb_is_cut_at_the_limit() {
        let zeros = vec![0u8; MAX_DECODED * 4];
        let mut enc = Vec::new();
        Gzip.encode(&zeros, &mut enc).unwrap();
        assert!(enc.len() < 4096);
        let mut out = Vec::new();
        assert_eq!(Gzip.decode(&enc, &mut out), Err(CodecError::TooLarge));
        let exact = vec![0u8; MAX_DECODED];
        assert_eq!(round_trip(&Gzip, &exact).len(), MAX_DECODED);
    }

    fn cipher(key: u8, prefix: u8) -> Cipher {
        Cipher::new("t", &[key; KEY_LEN], [prefix; 16])
    }

    #[test]
    fn cipher_round_trips_and_hides_the_text() {
        let c = cipher(7, 1);
        let mut enc = Vec::new();
        c.encode(MSG, &mut enc).unwrap();
        assert_eq!(enc.len(), MSG.len() + NONCE_LEN + TAG_LEN);
        assert!(!enc.windows(7).any(|w| w == b"OPTIONS"));
        assert_eq!(round_trip(&c, MSG), MSG);
        // A peer with the same key (another nonce prefix) decrypts it.
        let mut dec = Vec::new();
        cipher(7, 2).decode(&enc, &mut dec).unwrap();
        assert_eq!(dec, MSG);
    }

    #[test]
    fn cipher_never_repeats_a_nonce() {
        let c = cipher(7, 1);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        c.encode(MSG, &mut a).unwrap();
        c.encode(MSG, &mut b).unwrap();
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn cipher_rejects_wrong_key_flipped_bit_and_short_input() {
        let c = cipher(7, 1);
        let mut enc = Vec::new();
        c.encode(MSG, &mut enc).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            cipher(8, 1).decode(&enc, &mut out),
            Err(CodecError::Malformed("cipher: bad tag"))
        );
        for i in [0, NONCE_LEN, enc.len() - 1] {
            let mut bad = enc.clone();
            bad[i] ^= 1;
            assert!(c.decode(&bad, &mut Vec::new()).is_err(), "flip at {i}");
        }
        assert!(c
            .decode(&enc[..NONCE_LEN + TAG_LEN - 1], &mut Vec::new())
            .is_err());
        assert!(c.decode(MSG, &mut Vec::new()).is_err());
    }

    #[test]
    fn key_files_hold_raw_or_hex_keys() {
        let hex_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
        let k = Cipher::key_from_file_content(hex_key.as_bytes()).unwrap();
        assert_eq!(k[1], 0x11);
        assert_eq!(
            Cipher::key_from_file_content(&[9u8; 32]).unwrap(),
            [9u8; 32]
        );
        assert!(Cipher::key_from_file_content(b"short").is_err());
        assert!(Cipher::key_from_file_content(&[9u8; 33]).is_err());
    }

    #[test]
    fn a_deployment_can_add_its_own_codec() {
        struct Rot(u8);
        impl Codec for Rot {
            fn name(&self) -> &str {
                "rot"
            }
            fn encode(&self, i: &[u8], o: &mut Vec<u8>) -> Result<(), CodecError> {
                o.extend(i.iter().map(|b| b.wrapping_add(self.0)));
                Ok(())
            }
            fn decode(&self, i: &[u8], o: &mut Vec<u8>) -> Result<(), CodecError> {
                o.extend(i.iter().map(|b| b.wrapping_sub(self.0)));
                Ok(())
            }
        }
        let codecs: Vec<Box<dyn Codec>> = vec![Box::new(Gzip), Box::new(Rot(3))];
        for c in &codecs {
            assert_eq!(round_trip(c.as_ref(), MSG), MSG);
        }
    }
}
