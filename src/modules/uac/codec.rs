//! The value of the `vsf` / `vst` Record-Route parameter: the original URI
//! and the one put in its place, XOR-ed together (the shorter one padded
//! with zero bytes), XOR-ed again with `restore_passwd` repeated, then in
//! base64 with `-` for padding (a `=` would need escaping in a URI
//! parameter). Knowing either URI, the other one comes back from it, so a
//! proxy restores whichever of From/To the in-dialog request carries. The
//! bytes are Kamailio's, so a dialog set up through one proxy can be
//! restored by the other.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The longest URI (either one) that is encoded, as Kamailio's `MAX_URI_SIZE`.
pub const MAX_URI: usize = 1024;

/// Why a stored value cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecError {
    /// A URI longer than [`MAX_URI`].
    TooLong,
    /// Empty, or a byte outside the alphabet.
    BadEncoding,
    /// The stored value is shorter than the URI in the header: it was not
    /// made from it.
    Mismatch,
    /// The restored URI would be empty or hold a byte that is not printable
    /// (an end point changed the URI in between).
    NotPrintable,
}

/// The parameter value for `old` replaced by `new`.
pub fn encode(old: &[u8], new: &[u8], passwd: &[u8]) -> Result<String, CodecError> {
    if old.len() > MAX_URI || new.len() > MAX_URI {
        return Err(CodecError::TooLong);
    }
    let (long, short) = if old.len() > new.len() {
        (old, new)
    } else {
        (new, old)
    };
    let mut buf = long.to_vec();
    for (b, s) in buf.iter_mut().zip(short) {
        *b ^= s;
    }
    xor_passwd(&mut buf, passwd);
    Ok(base64(&buf))
}

/// The other URI of a parameter value, given the URI the header holds now.
pub fn restore(value: &[u8], current: &[u8], passwd: &[u8]) -> Result<Vec<u8>, CodecError> {
    other_uri(decode(value, passwd)?, current)
}

/// A parameter value back to the two URIs XOR-ed together.
pub fn decode(value: &[u8], passwd: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut buf = unbase64(value)?;
    xor_passwd(&mut buf, passwd);
    Ok(buf)
}

/// The URI that [`decode`]'s output gives with `current`.
pub fn other_uri(mut buf: Vec<u8>, current: &[u8]) -> Result<Vec<u8>, CodecError> {
    if buf.len() < current.len() {
        return Err(CodecError::Mismatch);
    }
    // The shorter URI was padded with zero bytes: the first zero ends it.
    for (i, c) in current.iter().enumerate() {
        buf[i] ^= c;
        if buf[i] == 0 {
            buf.truncate(i);
            break;
        }
    }
    if buf.is_empty() || !buf.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(CodecError::NotPrintable);
    }
    Ok(buf)
}

fn xor_passwd(buf: &mut [u8], passwd: &[u8]) {
    if passwd.is_empty() {
        return;
    }
    for (b, p) in buf.iter_mut().zip(passwd.iter().cycle()) {
        *b ^= p;
    }
}

/// Base64 with `-` in place of `=`.
fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let block = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        let sextet = |shift: u32| char::from(ALPHABET[((block >> shift) & 0x3f) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '-' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '-' });
    }
    out
}

fn sextet_of(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Reads [`base64`]'s output: trailing `-` are padding; the length is what
/// the characters before them carry.
fn unbase64(text: &[u8]) -> Result<Vec<u8>, CodecError> {
    let pad = text.iter().rev().take_while(|&&c| c == b'-').count();
    if text.len() == pad {
        return Err(CodecError::BadEncoding);
    }
    let len = (text.len() * 6 / 8).saturating_sub(pad);
    if len > MAX_URI {
        return Err(CodecError::TooLong);
    }
    let mut out = Vec::with_capacity(len);
    for quad in text[..text.len() - pad].chunks(4) {
        let mut block = 0u32;
        for (j, &c) in quad.iter().enumerate() {
            block |= sextet_of(c).ok_or(CodecError::BadEncoding)? << (18 - 6 * j);
        }
        for shift in [16, 8, 0] {
            if out.len() < len {
                out.push((block >> shift) as u8);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values Kamailio 5.6.3 wrote into its Record-Route for these URIs
    // (loadtest/sidebyside, configs/uac.cfg and a run with a password).
    const KAMAILIO: &[(&str, &str, &str, &str)] = &[
        (
            "sip:uac@127.0.0.62",
            "sip:+15551234@carrier.example.com",
            "",
            "AAAAAF5QVnUEAwUdBG5TT0RAaWVyLmV4YW1wbGUuY29t",
        ),
        (
            "sip:uas@127.0.0.63",
            "sip:pbx@127.0.0.63",
            "",
            "AAAAAAUDCwAAAAAAAAAAAAAA",
        ),
        (
            "sip:uac@127.0.0.62;user=phone",
            "sip:a@b.c",
            "",
            "AAAAABQhAW5SMjcuMC4wLjYyO3VzZXI9cGhvbmU-",
        ),
        (
            "sip:uac@127.0.0.62",
            "sip:longer-user-name@example.org",
            "",
            "AAAAABkODSdUQBpbQ0tCA1hTbWVAZXhhbXBsZS5vcmc-",
        ),
        (
            "sip:uac@127.0.0.62",
            "sip:+15551234@carrier.example.com",
            "s3cret",
            "czNjcjskJUZncWBpd10wPSE0GlYRXAAMEl4THgBaEFwO",
        ),
        (
            "sip:uas@127.0.0.63",
            "sip:pbx@127.0.0.63",
            "s3cret",
            "czNjcmB3eDNjcmV0czNjcmV0",
        ),
    ];

    #[test]
    fn encodes_as_kamailio_does() {
        for (old, new, pw, want) in KAMAILIO {
            let got = encode(old.as_bytes(), new.as_bytes(), pw.as_bytes()).unwrap();
            assert_eq!(got, *want, "{old} -> {new} ({pw})");
        }
    }

    #[test]
    fn restores_either_uri_from_the_other() {
        for (old, new, pw, value) in KAMAILIO {
            let (v, pw) = (value.as_bytes(), pw.as_bytes());
            assert_eq!(restore(v, old.as_bytes(), pw).unwrap(), new.as_bytes());
            assert_eq!(restore(v, new.as_bytes(), pw).unwrap(), old.as_bytes());
        }
    }

    #[test]
    fn a_wrong_password_or_a_changed_uri_does_not_restore() {
        let v = b"czNjcjskJUZncWBpd10wPSE0GlYRXAAMEl4THgBaEFwO";
        assert!(restore(v, b"sip:uac@127.0.0.62", b"").is_err());
        // The header URI is longer than what was stored.
        let long = "sip:".to_string() + &"x".repeat(60);
        assert_eq!(
            restore(b"AAAAAAUDCwAAAAAAAAAAAAAA", long.as_bytes(), b""),
            Err(CodecError::Mismatch)
        );
        // What would come back holds a control byte.
        let odd = encode(b"sip:a@b\x01", b"sip:a@b", b"").unwrap();
        assert_eq!(
            restore(odd.as_bytes(), b"sip:a@b", b""),
            Err(CodecError::NotPrintable)
        );
    }

    #[test]
    fn rejects_what_is_not_its_encoding() {
        for bad in [&b""[..], b"----", b"AA=A", b"A A-", b"\xff\xfe"] {
            assert!(restore(bad, b"sip:a@b", b"").is_err(), "{bad:?}");
        }
        let huge = vec![b'A'; 4 * (MAX_URI / 3 + 2)];
        assert_eq!(unbase64(&huge), Err(CodecError::TooLong));
        assert_eq!(
            encode(&vec![b'a'; MAX_URI + 1], b"sip:a@b", b""),
            Err(CodecError::TooLong)
        );
    }

    #[test]
    fn base64_round_trips_every_length() {
        for n in 0..40usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64(&data);
            assert_eq!(text.len(), n.div_ceil(3) * 4);
            if n > 0 {
                assert_eq!(unbase64(text.as_bytes()).unwrap(), data, "{n}");
            }
        }
    }
}
