//! The digest computation (RFC 2617 §3.2.2, RFC 7616 §3.4): HA1, HA2 and the
//! response, with MD5 or SHA-256, `qop=auth` or the RFC 2069 form without qop.

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// The hash a digest uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// From an `algorithm=` value; absent is MD5 (RFC 2617 §3.2.1). `-sess` is not offered.
    pub fn parse(v: Option<&[u8]>) -> Option<Algorithm> {
        match v {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case(b"MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case(b"SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex of the hash of `parts` joined with `:`.
    pub fn hex(self, parts: &[&[u8]]) -> String {
        fn run<D: md5::Digest>(mut d: D, parts: &[&[u8]]) -> String {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            to_hex(&d.finalize())
        }
        match self {
            Algorithm::Md5 => run(Md5::new(), parts),
            Algorithm::Sha256 => run(Sha256::new(), parts),
        }
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// `HA1 = H(username ":" realm ":" password)`.
pub fn ha1(alg: Algorithm, user: &[u8], realm: &[u8], password: &[u8]) -> String {
    alg.hex(&[user, realm, password])
}

/// The fields of an Authorization header that go into the response.
#[derive(Clone, Copy, Debug)]
pub struct ResponseInput<'a> {
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub nonce: &'a [u8],
    /// `Some((nc, cnonce))` with `qop=auth`; `None` for the RFC 2069 form.
    pub qop_auth: Option<(&'a [u8], &'a [u8])>,
}

/// The expected `response` for `ha1`.
pub fn response(alg: Algorithm, ha1: &[u8], r: &ResponseInput<'_>) -> String {
    let ha2 = alg.hex(&[r.method, r.uri]);
    match r.qop_auth {
        Some((nc, cnonce)) => alg.hex(&[ha1, r.nonce, nc, cnonce, b"auth", ha2.as_bytes()]),
        None => alg.hex(&[ha1, r.nonce, ha2.as_bytes()]),
    }
}

/// Compares hex digests case-insensitively, in time independent of where they differ.
pub fn digest_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| {
        acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
    }) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5.
    #[test]
    fn rfc2617_example() {
        let h = ha1(
            Algorithm::Md5,
            b"Mufasa",
            b"testrealm@host.com",
            b"Circle Of Life",
        );
        let r = response(
            Algorithm::Md5,
            h.as_bytes(),
            &ResponseInput {
                method: b"GET",
                uri: b"/dir/index.html",
                nonce: b"dcd98b7102dd2f0e8b11d0f600bfb0c093",
                qop_auth: Some((b"00000001", b"0a4f113b")),
            },
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 7616 §3.9.1, with SHA-256 and with MD5.
    #[test]
    fn rfc7616_examples() {
        let input = ResponseInput {
            method: b"GET",
            uri: b"/dir/index.html",
            nonce: b"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            qop_auth: Some((b"00000001", b"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
        };
        let user = b"Mufasa";
        let realm = b"http-auth@example.org";
        let pw = b"Circle of Life";
        let h = ha1(Algorithm::Sha256, user, realm, pw);
        assert_eq!(
            response(Algorithm::Sha256, h.as_bytes(), &input),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        let h = ha1(Algorithm::Md5, user, realm, pw);
        assert_eq!(
            response(Algorithm::Md5, h.as_bytes(), &input),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn no_qop_form_and_comparison() {
        let h = ha1(Algorithm::Md5, b"alice", b"example.com", b"secret");
        let input = ResponseInput {
            method: b"REGISTER",
            uri: b"sip:example.com",
            nonce: b"abc",
            qop_auth: None,
        };
        let r = response(Algorithm::Md5, h.as_bytes(), &input);
        let ha2 = Algorithm::Md5.hex(&[b"REGISTER", b"sip:example.com"]);
        assert_eq!(
            r,
            Algorithm::Md5.hex(&[h.as_bytes(), b"abc", ha2.as_bytes()])
        );
        assert!(digest_eq(r.as_bytes(), r.to_uppercase().as_bytes()));
        assert!(!digest_eq(b"ab", b"ac"));
        assert_eq!(Algorithm::parse(Some(b"md5")), Some(Algorithm::Md5));
        assert_eq!(Algorithm::parse(Some(b"MD5-sess")), None);
    }
}
