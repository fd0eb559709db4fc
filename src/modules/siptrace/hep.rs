//! HEP (Homer Encapsulation Protocol) packets, as Kamailio 5.6's siptrace
//! writes them: a pure function from a message, its two ends and a time to
//! the bytes of one datagram (no socket, no clock).
//!
//! HEPv3: `"HEP3"`, the total length (u16), then chunks, each
//! `vendor (u16) | type (u16) | length (u16, with these 6 bytes) | value`,
//! all in network byte order. The chunk set and order Kamailio sends (seen
//! on the wire, 5.6.3): family, IP protocol, source and destination address,
//! source and destination port, seconds, microseconds, protocol type,
//! capture id, then the correlation id (when not empty), the auth key (when
//! set) and the payload. A log packet (`hlog`) writes the destination port
//! before the source port, and always carries a correlation id.
//!
//! HEPv1/v2: an 8-byte header (version, header length, family, IP protocol,
//! source and destination port), the two addresses, for v2 the time
//! (seconds and microseconds little-endian, the capture id in host order —
//! little-endian here — and two bytes of padding), then the payload.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Linux's address family numbers, as Kamailio writes them.
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// HEP "protocol type" of the payload.
pub const PROTO_SIP: u8 = 1;
pub const PROTO_LOG: u8 = 100;

/// One traced message: what it carried and between which ends.
#[derive(Debug, Clone, Copy)]
pub struct Capture<'a> {
    pub payload: &'a [u8],
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// IP protocol number of the transport (17 UDP, 6 TCP; 22 for TLS/WS,
    /// Kamailio's stand-in).
    pub ip_proto: u8,
    /// Time since the Unix epoch.
    pub time: Duration,
}

/// What every packet of one configuration carries.
#[derive(Debug, Clone, Default)]
pub struct Agent {
    pub capture_id: u32,
    pub auth_key: Option<Vec<u8>>,
}

/// A HEPv3 packet for a SIP message; `None` when the two ends are not of
/// one address family (Kamailio refuses to encode those too).
pub fn hep3_sip(c: &Capture<'_>, agent: &Agent, correlation: &[u8]) -> Option<Vec<u8>> {
    let mut w = Hep3::new(c.payload.len() + correlation.len() + 96);
    w.addresses(c, false)?;
    w.time(c.time);
    w.u8(0x000b, PROTO_SIP);
    w.u32(0x000c, agent.capture_id);
    if !correlation.is_empty() {
        w.data(0x0011, correlation);
    }
    w.tail(agent, c.payload);
    Some(w.finish())
}

/// A HEPv3 log packet (`hlog`): `c.src` is the sending socket, `c.dst` the
/// collector; the correlation id is written even when empty.
pub fn hep3_log(c: &Capture<'_>, agent: &Agent, correlation: &[u8]) -> Option<Vec<u8>> {
    let mut w = Hep3::new(c.payload.len() + correlation.len() + 96);
    w.addresses(c, true)?;
    w.time(c.time);
    w.u8(0x000b, PROTO_LOG);
    w.u32(0x000c, agent.capture_id);
    w.data(0x0011, correlation);
    w.tail(agent, c.payload);
    Some(w.finish())
}

/// A HEPv1 or HEPv2 packet (`version` 1 or 2).
pub fn hep2_sip(c: &Capture<'_>, version: u8, capture_id: u32) -> Option<Vec<u8>> {
    let (family, addr_len) = match (c.src.ip(), c.dst.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (AF_INET, 8),
        (IpAddr::V6(_), IpAddr::V6(_)) => (AF_INET6, 32),
        _ => return None,
    };
    let mut out = Vec::with_capacity(8 + addr_len + 12 + c.payload.len());
    out.push(version);
    out.push((8 + addr_len) as u8);
    out.push(family);
    out.push(c.ip_proto);
    out.extend_from_slice(&c.src.port().to_be_bytes());
    out.extend_from_slice(&c.dst.port().to_be_bytes());
    push_ip(&mut out, c.src.ip());
    push_ip(&mut out, c.dst.ip());
    if version == 2 {
        out.extend_from_slice(&(c.time.as_secs() as u32).to_le_bytes());
        out.extend_from_slice(&c.time.subsec_micros().to_le_bytes());
        // The capture id field is 16 bits wide.
        out.extend_from_slice(&(capture_id as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
    }
    out.extend_from_slice(c.payload);
    Some(out)
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

/// A HEPv3 packet being written.
struct Hep3(Vec<u8>);

impl Hep3 {
    fn new(capacity: usize) -> Hep3 {
        let mut b = Vec::with_capacity(capacity);
        b.extend_from_slice(b"HEP3\0\0");
        Hep3(b)
    }

    fn chunk(&mut self, kind: u16, value: &[u8]) {
        self.0.extend_from_slice(&0u16.to_be_bytes());
        self.0.extend_from_slice(&kind.to_be_bytes());
        let len = (6 + value.len()).min(usize::from(u16::MAX)) as u16;
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(value);
    }

    fn u8(&mut self, kind: u16, v: u8) {
        self.chunk(kind, &[v]);
    }

    fn u16(&mut self, kind: u16, v: u16) {
        self.chunk(kind, &v.to_be_bytes());
    }

    fn u32(&mut self, kind: u16, v: u32) {
        self.chunk(kind, &v.to_be_bytes());
    }

    fn data(&mut self, kind: u16, v: &[u8]) {
        self.chunk(kind, v);
    }

    /// Family, protocol, addresses and ports (`log`: destination port first).
    fn addresses(&mut self, c: &Capture<'_>, log: bool) -> Option<()> {
        match (c.src.ip(), c.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.u8(0x0001, AF_INET);
                self.u8(0x0002, c.ip_proto);
                self.chunk(0x0003, &s.octets());
                self.chunk(0x0004, &d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                self.u8(0x0001, AF_INET6);
                self.u8(0x0002, c.ip_proto);
                self.chunk(0x0005, &s.octets());
                self.chunk(0x0006, &d.octets());
            }
            _ => return None,
        }
        if log {
            self.u16(0x0008, c.dst.port());
            self.u16(0x0007, c.src.port());
        } else {
            self.u16(0x0007, c.src.port());
            self.u16(0x0008, c.dst.port());
        }
        Some(())
    }

    fn time(&mut self, t: Duration) {
        self.u32(0x0009, t.as_secs() as u32);
        self.u32(0x000a, t.subsec_micros());
    }

    fn tail(&mut self, agent: &Agent, payload: &[u8]) {
        if let Some(key) = agent.auth_key.as_deref().filter(|k| !k.is_empty()) {
            self.data(0x000e, key);
        }
        self.data(0x000f, payload);
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len().min(usize::from(u16::MAX)) as u16;
        self.0[4..6].copy_from_slice(&len.to_be_bytes());
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Packets Kamailio 5.6.3 sent to a UDP collector on loopback (siptrace,
    // hep_mode_on), byte for byte; each test encodes the same message with
    // the timestamp read from the capture.

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The payload (chunk 0x000f) and the time (chunks 9 and 10) of a capture.
    fn payload_and_time(pkt: &[u8]) -> (Vec<u8>, Duration) {
        let (mut i, mut payload, mut sec, mut usec) = (6, Vec::new(), 0u32, 0u32);
        while i + 6 <= pkt.len() {
            let kind = u16::from_be_bytes([pkt[i + 2], pkt[i + 3]]);
            let len = usize::from(u16::from_be_bytes([pkt[i + 4], pkt[i + 5]]));
            let v = &pkt[i + 6..i + len];
            match kind {
                0x0f => payload = v.to_vec(),
                0x09 => sec = u32::from_be_bytes(v.try_into().unwrap()),
                0x0a => usec = u32::from_be_bytes(v.try_into().unwrap()),
                _ => {}
            }
            i += len;
        }
        (payload, Duration::new(u64::from(sec), usec * 1000))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// `sip_trace("sip:127.0.0.1:9060", "corr-$ci", "t")` on a received
    /// INVITE, hep_capture_id 1234.
    const INVITE_CORR: &str = include_str!("testdata/invite_corr.hex");
    /// `hlog("hello $rm")` with auth_key "secretkey" (correlation: Call-ID).
    const HLOG_AUTH: &str = include_str!("testdata/hlog_auth.hex");
    /// `sip_trace(uri, "", "t")` on an OPTIONS, auth_key "secretkey".
    const OPTIONS_AUTH: &str = include_str!("testdata/options_auth.hex");
    /// `sip_trace()` on an OPTIONS with hep_version 2, capture id 258.
    const OPTIONS_V2: &str = include_str!("testdata/options_v2.hex");

    #[test]
    fn hep3_request_with_correlation_matches_kamailio() {
        let want = unhex(INVITE_CORR.trim());
        let (payload, time) = payload_and_time(&want);
        let c = Capture {
            payload: &payload,
            src: addr("127.0.0.1:5070"),
            dst: addr("127.0.0.1:5060"),
            ip_proto: 17,
            time,
        };
        let agent = Agent {
            capture_id: 1234,
            auth_key: None,
        };
        assert_eq!(hep3_sip(&c, &agent, b"corr-inv-1").unwrap(), want);
    }

    #[test]
    fn hep3_request_with_auth_key_and_no_correlation_matches_kamailio() {
        let want = unhex(OPTIONS_AUTH.trim());
        let (payload, time) = payload_and_time(&want);
        let c = Capture {
            payload: &payload,
            src: addr("127.0.0.1:5070"),
            dst: addr("127.0.0.1:5060"),
            ip_proto: 17,
            time,
        };
        let agent = Agent {
            capture_id: 1,
            auth_key: Some(b"secretkey".to_vec()),
        };
        assert_eq!(hep3_sip(&c, &agent, b"").unwrap(), want);
    }

    #[test]
    fn hep3_log_matches_kamailio() {
        let want = unhex(HLOG_AUTH.trim());
        let (payload, time) = payload_and_time(&want);
        assert_eq!(payload, b"hello OPTIONS");
        let c = Capture {
            payload: &payload,
            src: addr("127.0.0.1:5060"),
            dst: addr("127.0.0.1:9060"),
            ip_proto: 17,
            time,
        };
        let agent = Agent {
            capture_id: 1,
            auth_key: Some(b"secretkey".to_vec()),
        };
        assert_eq!(hep3_log(&c, &agent, b"opt-1").unwrap(), want);
    }

    #[test]
    fn hep2_matches_kamailio() {
        let want = unhex(OPTIONS_V2.trim());
        let sec = u32::from_le_bytes(want[16..20].try_into().unwrap());
        let usec = u32::from_le_bytes(want[20..24].try_into().unwrap());
        let c = Capture {
            payload: &want[28..],
            src: addr("127.0.0.1:5070"),
            dst: addr("127.0.0.1:5060"),
            ip_proto: 17,
            time: Duration::new(u64::from(sec), usec * 1000),
        };
        assert_eq!(hep2_sip(&c, 2, 258).unwrap(), want);
        // v1: the same without the time block.
        let v1 = hep2_sip(&c, 1, 258).unwrap();
        assert_eq!(v1[0], 1);
        assert_eq!(&v1[1..16], &want[1..16]);
        assert_eq!(&v1[16..], &want[28..]);
    }

    #[test]
    fn hep3_ipv6_uses_the_ipv6_chunks() {
        let c = Capture {
            payload: b"x",
            src: addr("[::1]:5070"),
            dst: addr("[::1]:5060"),
            ip_proto: 6,
            time: Duration::new(7, 8000),
        };
        let p = hep3_sip(&c, &Agent::default(), b"").unwrap();
        assert_eq!(&p[..4], b"HEP3");
        assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), p.len());
        // family 10, protocol 6, then chunk 5 with 16 bytes.
        assert_eq!(&p[6..13], &[0, 0, 0, 1, 0, 7, AF_INET6]);
        assert_eq!(&p[13..20], &[0, 0, 0, 2, 0, 7, 6]);
        assert_eq!(&p[20..26], &[0, 0, 0, 5, 0, 22]);
        assert_eq!(&p[26..42], &std::net::Ipv6Addr::LOCALHOST.octets());
        // mixed families are refused
        let mixed = Capture {
            dst: addr("127.0.0.1:5060"),
            ..c
        };
        assert!(hep3_sip(&mixed, &Agent::default(), b"").is_none());
    }
}
