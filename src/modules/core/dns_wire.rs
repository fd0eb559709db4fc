//! The DNS message format (RFC 1035 §4) for the few questions a SIP proxy
//! asks: A, AAAA, SRV (RFC 2782) and NAPTR (RFC 3403). Sans-IO: a query is
//! built into bytes, an answer is parsed from bytes; the runtime sends them.
//!
//! An answer comes from the network, so nothing in it is trusted: every
//! length is checked before use, compression pointers (§4.1.4) may only
//! point backwards and are followed a bounded number of times, names are at
//! most 255 bytes, and at most [`MAX_RECORDS`] records are read per section.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Record types ringsip asks for.
pub const A: u16 = 1;
pub const CNAME: u16 = 5;
pub const AAAA: u16 = 28;
pub const SRV: u16 = 33;
pub const NAPTR: u16 = 35;

/// Records read per section at most; the rest are ignored.
pub const MAX_RECORDS: usize = 64;
/// The longest name in wire form (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;
/// Compression pointers followed for one name at most.
const MAX_JUMPS: usize = 32;

/// Response codes that matter (RFC 1035 §4.1.1).
pub const RCODE_OK: u8 = 0;
pub const RCODE_NXDOMAIN: u8 = 3;

/// Why an answer was not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than what it announces.
    Short,
    /// A name that loops, points forward, or is too long.
    BadName,
    /// Not the answer to our question (id, flags or question differ).
    NotOurs,
}

/// The data of one resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Srv(Srv),
    Naptr(Naptr),
    Other(u16),
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// A NAPTR record (RFC 3403 §4.1), as RFC 3263 §4.1 uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub services: String,
    pub regexp: String,
    pub replacement: String,
}

/// One resource record: owner name (lower case, no trailing dot), TTL, data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub ttl: u32,
    pub data: RData,
}

/// A parsed answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    pub rcode: u8,
    /// TC: the server had more than fits a datagram (ask again over TCP).
    pub truncated: bool,
    pub answers: Vec<Record>,
    pub additional: Vec<Record>,
}

/// A recursive query for `name` (no trailing dot needed) of type `qtype`;
/// `None` when `name` cannot be written (a label over 63 bytes, too long).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    // RD set; one question.
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    write_name(&mut out, name)?;
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // IN
    Some(out)
}

fn write_name(out: &mut Vec<u8>, name: &str) -> Option<()> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let start = out.len();
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    (out.len() - start <= MAX_NAME).then_some(())
}

/// A bounded reader over an answer.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).ok_or(WireError::Short)?;
        let s = self.buf.get(self.at..end).ok_or(WireError::Short)?;
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A name at the cursor, following compression pointers in the whole
    /// message; the cursor moves past the name's bytes here only.
    fn name(&mut self) -> Result<String, WireError> {
        let (name, next) = read_name(self.buf, self.at)?;
        self.at = next;
        Ok(name)
    }
    /// A `<character-string>` (RFC 1035 §3.3).
    fn text(&mut self) -> Result<String, WireError> {
        let n = self.u8()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

/// Reads the name at `at` in `buf`: the name (lower case, dotted) and where
/// the bytes after it start.
fn read_name(buf: &[u8], mut at: usize) -> Result<(String, usize), WireError> {
    let mut name = String::new();
    let mut wire_len = 0usize;
    let mut after = None;
    let mut jumps = 0;
    loop {
        let len = *buf.get(at).ok_or(WireError::Short)?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                return Ok((name, after.unwrap_or(at + 1)));
            }
            0x00 => {
                let label = buf
                    .get(at + 1..at + 1 + len as usize)
                    .ok_or(WireError::Short)?;
                wire_len += 1 + label.len();
                if wire_len + 1 > MAX_NAME {
                    return Err(WireError::BadName);
                }
                if !name.is_empty() {
                    name.push('.');
                }
                for &b in label {
                    // Only what a host name may hold is kept as is.
                    let c = b.to_ascii_lowercase();
                    name.push(if c.is_ascii_graphic() && c != b'.' {
                        c as char
                    } else {
                        '?'
                    });
                }
                at += 1 + len as usize;
            }
            0xC0 => {
                let low = *buf.get(at + 1).ok_or(WireError::Short)?;
                let target = (usize::from(len & 0x3F) << 8) | usize::from(low);
                // Backwards only, and a bounded number of times: no loops.
                jumps += 1;
                if target >= at || jumps > MAX_JUMPS {
                    return Err(WireError::BadName);
                }
                after.get_or_insert(at + 2);
                at = target;
            }
            _ => return Err(WireError::BadName),
        }
    }
}

/// Parses the answer to the query `id` for `name`/`qtype`.
pub fn parse_response(buf: &[u8], id: u16, name: &str, qtype: u16) -> Result<Response, WireError> {
    let mut r = Reader { buf, at: 0 };
    let got_id = r.u16()?;
    let flags = r.u16()?;
    let (qd, an, ns, ar) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
    // QR must be set: an answer, not a query.
    if got_id != id || flags & 0x8000 == 0 || qd != 1 {
        return Err(WireError::NotOurs);
    }
    let qname = r.name()?;
    let (qt, _class) = (r.u16()?, r.u16()?);
    let want = name.strip_suffix('.').unwrap_or(name);
    if qt != qtype || !qname.eq_ignore_ascii_case(want) {
        return Err(WireError::NotOurs);
    }
    let mut resp = Response {
        rcode: (flags & 0x000F) as u8,
        truncated: flags & 0x0200 != 0,
        ..Response::default()
    };
    if resp.truncated {
        // What follows may be cut anywhere: the caller asks over TCP.
        return Ok(resp);
    }
    for i in 0..an {
        let rec = record(&mut r)?;
        if usize::from(i) < MAX_RECORDS {
            resp.answers.extend(rec);
        }
    }
    for _ in 0..ns {
        record(&mut r)?;
    }
    for i in 0..ar {
        // A broken additional section does not spoil the answers.
        match record(&mut r) {
            Ok(rec) if usize::from(i) < MAX_RECORDS => resp.additional.extend(rec),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(resp)
}

/// One resource record; `None` for a class other than IN.
fn record(r: &mut Reader<'_>) -> Result<Option<Record>, WireError> {
    let name = r.name()?;
    let rtype = r.u16()?;
    let class = r.u16()?;
    let ttl = r.u32()?;
    let len = r.u16()? as usize;
    let start = r.at;
    let rdata = r.take(len)?;
    let data = match rtype {
        A if len == 4 => RData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
        AAAA if len == 16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(rdata);
            RData::Aaaa(Ipv6Addr::from(b))
        }
        A | AAAA => return Err(WireError::Short),
        // Names inside the data may point anywhere earlier in the message.
        CNAME | SRV | NAPTR => {
            let mut inner = Reader {
                buf: &r.buf[..start + len],
                at: start,
            };
            match rtype {
                CNAME => RData::Cname(inner.name()?),
                SRV => RData::Srv(Srv {
                    priority: inner.u16()?,
                    weight: inner.u16()?,
                    port: inner.u16()?,
                    target: inner.name()?,
                }),
                _ => RData::Naptr(Naptr {
                    order: inner.u16()?,
                    preference: inner.u16()?,
                    flags: inner.text()?,
                    services: inner.text()?,
                    regexp: inner.text()?,
                    replacement: inner.name()?,
                }),
            }
        }
        other => RData::Other(other),
    };
    Ok((class == 1).then_some(Record { name, ttl, data }))
}

/// Builds an answer (tests, and the fake servers of the integration tests):
/// `answers` and `additional` as (owner, TTL, data), names uncompressed
/// except the question's, which the answers point to when they share it.
pub fn build_response(
    id: u16,
    name: &str,
    qtype: u16,
    rcode: u8,
    answers: &[(&str, u32, RData)],
    additional: &[(&str, u32, RData)],
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(0x8180u16 | u16::from(rcode & 0xF)).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(additional.len() as u16).to_be_bytes());
    write_name(&mut out, name)?;
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    let qname = name.strip_suffix('.').unwrap_or(name);
    for (owner, ttl, data) in answers.iter().chain(additional) {
        if owner.eq_ignore_ascii_case(qname) {
            out.extend_from_slice(&[0xC0, 12]);
        } else {
            write_name(&mut out, owner)?;
        }
        let rtype = match data {
            RData::A(_) => A,
            RData::Aaaa(_) => AAAA,
            RData::Cname(_) => CNAME,
            RData::Srv(_) => SRV,
            RData::Naptr(_) => NAPTR,
            RData::Other(t) => *t,
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        let len_at = out.len();
        out.extend_from_slice(&[0, 0]);
        match data {
            RData::A(ip) => out.extend_from_slice(&ip.octets()),
            RData::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
            RData::Cname(n) => write_name(&mut out, n)?,
            RData::Srv(s) => {
                for v in [s.priority, s.weight, s.port] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                write_name(&mut out, &s.target)?;
            }
            RData::Naptr(n) => {
                out.extend_from_slice(&n.order.to_be_bytes());
                out.extend_from_slice(&n.preference.to_be_bytes());
                for t in [&n.flags, &n.services, &n.regexp] {
                    let b = t.as_bytes();
                    out.push(u8::try_from(b.len()).ok()?);
                    out.extend_from_slice(b);
                }
                write_name(&mut out, &n.replacement)?;
            }
            RData::Other(_) => {}
        }
        let len = u16::try_from(out.len() - len_at - 2).ok()?;
        out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
    Some(out)
}

/// The question of a query (what a fake server needs): id, name, type.
pub fn parse_query(buf: &[u8]) -> Option<(u16, String, u16)> {
    let mut r = Reader { buf, at: 0 };
    let id = r.u16().ok()?;
    let flags = r.u16().ok()?;
    let qd = r.u16().ok()?;
    r.take(6).ok()?;
    if flags & 0x8000 != 0 || qd != 1 {
        return None;
    }
    let name = r.name().ok()?;
    Some((id, name, r.u16().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(p: u16, w: u16, port: u16, t: &str) -> RData {
        RData::Srv(Srv {
            priority: p,
            weight: w,
            port,
            target: t.into(),
        })
    }

    #[test]
    fn a_query_reads_back_as_its_question() {
        let q = build_query(0x1234, "_sip._udp.Example.test.", SRV).unwrap();
        assert_eq!(
            parse_query(&q),
            Some((0x1234, "_sip._udp.example.test".into(), SRV))
        );
        assert!(build_query(1, &"a".repeat(64), A).is_none(), "label > 63");
        assert!(build_query(1, &["abc"; 70].join("."), A).is_none(), "> 255");
        assert!(build_query(1, "a..b", A).is_none());
    }

    #[test]
    fn answers_and_additional_records_are_read() {
        let wire = build_response(
            7,
            "_sip._udp.example.test",
            SRV,
            0,
            &[
                (
                    "_sip._udp.example.test",
                    60,
                    srv(10, 50, 5070, "b.example.test"),
                ),
                (
                    "_sip._udp.example.test",
                    30,
                    srv(20, 0, 5080, "c.example.test"),
                ),
            ],
            &[("b.example.test", 90, RData::A(Ipv4Addr::new(127, 0, 0, 10)))],
        )
        .unwrap();
        let r = parse_response(&wire, 7, "_sip._udp.example.test", SRV).unwrap();
        assert_eq!(r.rcode, RCODE_OK);
        assert_eq!(r.answers.len(), 2);
        assert_eq!(r.answers[0].data, srv(10, 50, 5070, "b.example.test"));
        assert_eq!(r.answers[1].ttl, 30);
        assert_eq!(r.additional[0].data, RData::A(Ipv4Addr::new(127, 0, 0, 10)));
        // Someone else's answer is not taken.
        assert_eq!(
            parse_response(&wire, 8, "_sip._udp.example.test", SRV),
            Err(WireError::NotOurs)
        );
        assert_eq!(
            parse_response(&wire, 7, "_sip._tcp.example.test", SRV),
            Err(WireError::NotOurs)
        );
    }

    #[test]
    fn naptr_aaaa_and_nxdomain_are_read() {
        let naptr = RData::Naptr(Naptr {
            order: 10,
            preference: 50,
            flags: "s".into(),
            services: "SIP+D2T".into(),
            regexp: String::new(),
            replacement: "_sip._tcp.example.test".into(),
        });
        let wire = build_response(
            9,
            "example.test",
            NAPTR,
            0,
            &[("example.test", 5, naptr.clone())],
            &[],
        )
        .unwrap();
        let r = parse_response(&wire, 9, "example.test", NAPTR).unwrap();
        assert_eq!(r.answers[0].data, naptr);
        let v6 = RData::Aaaa("2001:db8::1".parse().unwrap());
        let wire = build_response(2, "h.test", AAAA, 0, &[("h.test", 5, v6.clone())], &[]).unwrap();
        assert_eq!(
            parse_response(&wire, 2, "h.test", AAAA).unwrap().answers[0].data,
            v6
        );
        let wire = build_response(3, "no.test", A, RCODE_NXDOMAIN, &[], &[]).unwrap();
        let r = parse_response(&wire, 3, "no.test", A).unwrap();
        assert_eq!((r.rcode, r.answers.len()), (RCODE_NXDOMAIN, 0));
    }

    #[test]
    fn compression_pointers_inside_record_data_are_followed() {
        // The SRV target points at "example.test" inside the question.
        let mut wire = build_query(5, "_sip._udp.example.test", SRV).unwrap();
        wire[2] = 0x81;
        wire[3] = 0x80;
        wire[7] = 1; // one answer
        wire.extend_from_slice(&[0xC0, 12]); // owner: the question
        wire.extend_from_slice(&SRV.to_be_bytes());
        wire.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        // priority, weight, port, then "b" + pointer to "example.test" (offset 12+10).
        let rdata = [0, 1, 0, 2, 0x13, 0xC4, 1, b'b', 0xC0, 22];
        wire.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        wire.extend_from_slice(&rdata);
        let r = parse_response(&wire, 5, "_sip._udp.example.test", SRV).unwrap();
        assert_eq!(r.answers[0].data, srv(1, 2, 5060, "b.example.test"));
    }

    #[test]
    fn looping_or_forward_pointers_are_refused() {
        let mut wire = build_query(5, "x.test", A).unwrap();
        wire[2] = 0x81;
        wire[7] = 1;
        let at = wire.len();
        // An owner name pointing at itself.
        wire.extend_from_slice(&[0xC0, at as u8]);
        wire.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]);
        assert_eq!(
            parse_response(&wire, 5, "x.test", A),
            Err(WireError::BadName)
        );
    }

    #[test]
    fn truncated_answers_never_panic() {
        let wire = build_response(
            7,
            "_sip._udp.example.test",
            SRV,
            0,
            &[(
                "_sip._udp.example.test",
                60,
                srv(10, 50, 5070, "b.example.test"),
            )],
            &[("b.example.test", 90, RData::A(Ipv4Addr::new(127, 0, 0, 10)))],
        )
        .unwrap();
        for cut in 0..wire.len() {
            let _ = parse_response(&wire[..cut], 7, "_sip._udp.example.test", SRV);
        }
        // Every byte flipped to every value in a few positions.
        for pos in 0..wire.len() {
            for v in [0u8, 0x3F, 0x40, 0xC0, 0xFF] {
                let mut w = wire.clone();
                w[pos] = v;
                let _ = parse_response(&w, 7, "_sip._udp.example.test", SRV);
                let _ = parse_query(&w);
            }
        }
    }

    #[test]
    fn the_truncation_bit_is_reported() {
        let mut wire = build_response(4, "big.test", SRV, 0, &[], &[]).unwrap();
        wire[2] |= 0x02;
        assert!(parse_response(&wire, 4, "big.test", SRV).unwrap().truncated);
    }
}
