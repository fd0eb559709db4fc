//! RFC 5626 flow tokens: the user part of this proxy's Record-Route (or Path)
//! URI names the connection a user agent reached us on, so that requests
//! toward that agent go back over the same flow (§5.3, §5.7).
//!
//! RFC 5626 §5.2 leaves the format to the proxy but asks that it cannot be
//! forged: "the proxy MUST be able to detect tampering". Ours is
//! `base64url(marker, transport, local ip:port, remote ip:port, MAC)` where the
//! MAC is HMAC-SHA-256 over everything before it, truncated to 80 bits, keyed
//! with the `flow_token_key` module parameter. A forged token would send
//! requests to any address the forger likes, so there is no default key.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::sip::Proto;

/// The first byte of a token: address family, so a user name is unlikely to pass as one.
const MARK_V4: u8 = 0xf4;
const MARK_V6: u8 = 0xf6;
/// MAC bytes kept (RFC 2104 §5: at least half the hash length or 80 bits).
const MAC_LEN: usize = 10;
/// Mixed into the MAC so a key shared with another use cannot sign flows by accident.
const DOMAIN: &[u8] = b"ringsip flow token v1";
/// Transports in their wire order (one byte in the token).
const PROTOS: [Proto; 6] = [
    Proto::Udp,
    Proto::Tcp,
    Proto::Tls,
    Proto::Sctp,
    Proto::Ws,
    Proto::Wss,
];

/// A connection between one of our sockets and a user agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The transport of the connection.
    pub proto: Proto,
    /// Our address the agent sent to.
    pub local: SocketAddr,
    /// The agent's address (the source of its requests).
    pub remote: SocketAddr,
}

impl Flow {
    /// The URI to send to the agent over this flow: `sip:ip:port[;transport=x]`.
    pub fn uri(&self) -> Vec<u8> {
        let mut out = b"sip:".to_vec();
        out.extend_from_slice(crate::script::ctx::fmt_hostport(self.remote).as_bytes());
        if self.proto != Proto::Udp {
            out.extend_from_slice(b";transport=");
            out.extend_from_slice(self.proto.lower_name().as_bytes());
        }
        out
    }
}

/// What a URI user part turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// Not shaped like one of our tokens: an ordinary user name.
    NotToken,
    /// Shaped like a token but the MAC does not match (RFC 5626 §5.3: "tampered with").
    Tampered,
    /// A flow we issued.
    Valid(Flow),
}

/// The token for `flow`, as URI user text (base64url, no padding: unreserved characters only).
pub fn encode(key: &[u8], flow: &Flow) -> Vec<u8> {
    let mut blob = Vec::with_capacity(48);
    blob.push(if flow.remote.is_ipv4() && flow.local.is_ipv4() {
        MARK_V4
    } else {
        MARK_V6
    });
    let proto = PROTOS.iter().position(|p| *p == flow.proto).unwrap_or(0);
    blob.push(proto as u8);
    let v6 = blob[0] == MARK_V6;
    push_addr(&mut blob, flow.local, v6);
    push_addr(&mut blob, flow.remote, v6);
    let mac = mac(key, &blob);
    blob.extend_from_slice(&mac[..MAC_LEN]);
    base64url(&blob)
}

/// Reads a URI user part as a token.
pub fn decode(key: &[u8], user: &[u8]) -> Token {
    let addr_len = match user.len() {
        32 => 4,
        64 => 16,
        _ => return Token::NotToken,
    };
    let Some(blob) = unbase64url(user) else {
        return Token::NotToken;
    };
    let want_mark = if addr_len == 4 { MARK_V4 } else { MARK_V6 };
    if blob.len() != 2 + 2 * (addr_len + 2) + MAC_LEN || blob.first() != Some(&want_mark) {
        return Token::NotToken;
    }
    let (signed, tag) = blob.split_at(blob.len() - MAC_LEN);
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return Token::Tampered;
    };
    m.update(DOMAIN);
    m.update(signed);
    if m.verify_truncated_left(tag).is_err() {
        return Token::Tampered;
    }
    let Some(proto) = signed.get(1).and_then(|&i| PROTOS.get(usize::from(i))) else {
        return Token::Tampered;
    };
    let local = read_addr(&signed[2..], addr_len);
    let remote = read_addr(&signed[2 + addr_len + 2..], addr_len);
    match (local, remote) {
        (Some(local), Some(remote)) => Token::Valid(Flow {
            proto: *proto,
            local,
            remote,
        }),
        _ => Token::Tampered,
    }
}

fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length (RFC 2104 §2), so this cannot fail.
    let mut m = Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    m.update(DOMAIN);
    m.update(data);
    m.finalize().into_bytes().into()
}

fn push_addr(out: &mut Vec<u8>, addr: SocketAddr, v6: bool) {
    match (addr.ip(), v6) {
        (IpAddr::V4(ip), false) => out.extend_from_slice(&ip.octets()),
        (IpAddr::V4(ip), true) => out.extend_from_slice(&ip.to_ipv6_mapped().octets()),
        (IpAddr::V6(ip), _) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

fn read_addr(b: &[u8], addr_len: usize) -> Option<SocketAddr> {
    let ip_bytes = b.get(..addr_len)?;
    let port = u16::from_be_bytes([*b.get(addr_len)?, *b.get(addr_len + 1)?]);
    let ip = match addr_len {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(ip_bytes).ok()?)),
        _ => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(ip_bytes).ok()?);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
    };
    Some(SocketAddr::new(ip, port))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 4648 §5 base64url without padding.
fn base64url(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[(n >> (18 - 6 * i) & 0x3f) as usize]);
        }
    }
    out
}

fn unbase64url(text: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| B64.iter().position(|&x| x == c).map(|v| v as u32);
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        if chunk.len() < 2 {
            return None;
        }
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef-test-key";

    fn flow(local: &str, remote: &str, proto: Proto) -> Flow {
        Flow {
            proto,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
        }
    }

    #[test]
    fn base64url_round_trips() {
        for len in 0..20 {
            let data: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
            let text = base64url(&data);
            assert!(text
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'));
            assert_eq!(unbase64url(&text).unwrap(), data);
        }
        assert_eq!(base64url(b"foobar"), b"Zm9vYmFy");
        assert_eq!(base64url(b"fo"), b"Zm8");
        assert_eq!(unbase64url(b"a"), None);
        assert_eq!(unbase64url(b"ab+c"), None);
    }

    #[test]
    fn tokens_round_trip_for_both_families() {
        for f in [
            flow("192.0.2.1:5060", "198.51.100.7:40000", Proto::Tcp),
            flow("[2001:db8::1]:5061", "[2001:db8::99]:50000", Proto::Tls),
            flow("192.0.2.1:5060", "198.51.100.7:5060", Proto::Udp),
        ] {
            let t = encode(KEY, &f);
            assert!(t.len() == 32 || t.len() == 64, "{}", t.len());
            assert_eq!(decode(KEY, &t), Token::Valid(f));
        }
    }

    #[test]
    fn any_changed_character_is_tampering() {
        let t = encode(
            KEY,
            &flow("192.0.2.1:5060", "198.51.100.7:40000", Proto::Udp),
        );
        for i in 0..t.len() {
            let mut bad = t.clone();
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            assert_ne!(
                decode(KEY, &bad),
                decode(KEY, &t),
                "position {i} changed nothing"
            );
            assert!(matches!(
                decode(KEY, &bad),
                Token::Tampered | Token::NotToken
            ));
        }
        assert_eq!(decode(b"another key of enough length", &t), Token::Tampered);
    }

    #[test]
    fn user_names_are_not_tokens() {
        for user in [
            &b"alice"[..],
            b"",
            b"+15551234567",
            &[b'9'; 32],
            &[b'A'; 64],
        ] {
            assert_eq!(decode(KEY, user), Token::NotToken, "{user:?}");
        }
    }

    #[test]
    fn flow_uri() {
        assert_eq!(
            flow("192.0.2.1:5060", "198.51.100.7:40000", Proto::Udp).uri(),
            b"sip:198.51.100.7:40000"
        );
        assert_eq!(
            flow("[2001:db8::1]:5061", "[2001:db8::99]:50000", Proto::Tls).uri(),
            b"sip:[2001:db8::99]:50000;transport=tls"
        );
    }
}
