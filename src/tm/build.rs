//! Messages the transaction layer writes itself: local replies (100 Trying,
//! 408, 487, t_reply), replies relayed upstream (our Via removed), and the
//! CANCEL (§9.1) and ACK (§17.1.1.3) of a branch. Also where responses to a
//! server transaction go (§18.2.2, RFC 3581 §4).
//!
//! Every function here reads parsed messages and returns `None` rather than
//! panic when something it needs is missing.

use std::net::SocketAddr;
use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::key::top_via;
use crate::sip::received::{TopViaFacts, ViaFix, ViaFixAt};
use crate::sip::reply::{self, ReplySpec};
use crate::sip::via::{vias, Rport, Via};
use crate::sip::{
    serialize, ConnId, Edits, HeaderName, Inbound, Message, Proto, SendFlags, SocketId, Transmit,
};

/// Where a request came from (an [`Inbound`] without its bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// The address it came from.
    pub src: SocketAddr,
    /// The local address it arrived on.
    pub local: SocketAddr,
    /// The transport it came over.
    pub proto: Proto,
    /// The listening socket that received it.
    pub socket: SocketId,
    /// The connection it came on (stream transports): replies go back on it.
    pub conn: Option<ConnId>,
}

impl From<&Source> for Source {
    fn from(s: &Source) -> Source {
        *s
    }
}

impl From<&Inbound> for Source {
    fn from(p: &Inbound) -> Source {
        Source {
            src: p.src,
            local: p.local,
            proto: p.proto,
            socket: p.socket,
            conn: p.conn,
        }
    }
}

/// Where a message goes: a branch's next hop, or the upstream of a server transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The address to send to.
    pub dst: SocketAddr,
    /// The transport to send over.
    pub proto: Proto,
    /// Send from this socket; `None` lets the runtime choose.
    pub socket: Option<SocketId>,
    /// Send from this local address (see [`Transmit::local`]).
    pub local: Option<SocketAddr>,
    /// Send on this connection (see [`Transmit::conn`]).
    pub conn: Option<ConnId>,
    /// Stream send flags (see [`Transmit::flags`]).
    pub flags: SendFlags,
}

impl Target {
    /// A transmission of `data` to this target.
    pub fn transmit(&self, data: Bytes) -> Transmit {
        Transmit {
            data,
            dst: self.dst,
            proto: self.proto,
            socket: self.socket,
            local: self.local,
            conn: self.conn,
            flags: self.flags,
        }
    }

    /// Whether the transport is reliable (RFC 3261 §17: no retransmissions, zero wait timers).
    pub fn is_reliable(&self) -> bool {
        self.proto.is_reliable()
    }
}

/// What responses to a request need of its top Via: where they go, and how
/// a local reply fixes the Via up. Read from the message's parse of its top
/// Via ([`TopVia::of_message`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TopVia {
    proto: Option<Proto>,
    port: Option<u16>,
    /// What the received/rport rule reads ([`crate::sip::received`]).
    facts: TopViaFacts,
    /// Where the Via header value starts in the message.
    pub at: usize,
}

impl TopVia {
    /// From a parsed via-parm whose header value starts at `at`.
    pub fn of(via: &Via<'_>, at: usize) -> TopVia {
        TopVia {
            proto: via.proto(),
            port: via.port(),
            facts: TopViaFacts::of(via),
            at,
        }
    }

    /// [`TopVia::of`] from the record of a parsed via-parm (ranges relative
    /// to `value`, the header value that starts at `at`), without a view.
    pub(crate) fn of_at(via: &crate::sip::via::ViaAt, value: &[u8], at: usize) -> TopVia {
        TopVia {
            proto: value.get(via.transport_range()).and_then(Proto::from_name),
            port: via.port(),
            facts: TopViaFacts::of_at(via),
            at,
        }
    }

    /// The top Via of `msg`.
    #[cfg(test)]
    pub fn of_message(msg: &Message) -> Option<TopVia> {
        TopVia::of_message_scanned(msg, super::key::scan_top_via(msg).as_ref())
    }

    /// [`TopVia::of_message`] with the scan of the top Via made already
    /// (`None`: it did not read it).
    pub(crate) fn of_message_scanned(
        msg: &Message,
        scan: Option<&super::key::ViaScan>,
    ) -> Option<TopVia> {
        if let Some(s) = scan {
            return Some(s.top);
        }
        let (via, at) = top_via(msg)?;
        Some(TopVia::of(&via, at))
    }
}

/// Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4): back to
/// the source over a stream or when `rport` was asked for; else to the
/// source address at the Via's sent-by port. Responses leave from the socket
/// and address the request arrived on (RFC 3581 §4).
/// `via` is the request's top Via; `force_rport`: the script called
/// `force_rport()` before the transaction was made (as if rport was asked).
pub(crate) fn response_target(via: &TopVia, from: &Source, force_rport: bool) -> Target {
    let rport = force_rport || !matches!(via.facts.rport, Rport::Absent);
    let dst = if from.proto.is_reliable() || rport {
        from.src
    } else {
        let port = via
            .port
            .unwrap_or_else(|| via.proto.unwrap_or(from.proto).default_port());
        SocketAddr::new(from.src.ip(), port)
    };
    Target {
        dst,
        proto: from.proto,
        socket: Some(from.socket),
        local: Some(from.local),
        conn: from.conn,
        flags: SendFlags::default(),
    }
}

/// What a local reply carries besides the copied headers.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalReply<'a> {
    /// Status code, 100 to 699.
    pub code: u16,
    /// Reason phrase.
    pub reason: &'a [u8],
    /// Whole header lines (`Name: value\r\n`) to add.
    pub headers: &'a [u8],
    /// Body and its Content-Type.
    pub body: Option<(&'a [u8], &'a [u8])>,
}

/// Builds a local reply to `req` (RFC 3261 §8.2.6): the received top Via gets
/// `received`/`rport` (§18.2.1, RFC 3581 §4), and the To gets `to_tag` when
/// it has none. `force_rport`: as [`response_target`].
// The parts of a reply, each its own.
#[allow(clippy::too_many_arguments)]
pub(crate) fn local_reply(
    req: &Message,
    from: &Source,
    force_rport: bool,
    spec: &LocalReply<'_>,
    to_tag: Option<&[u8]>,
    server: &[u8],
    out: &mut Vec<u8>,
) -> Bytes {
    let fix = match top_via(req) {
        Some((via, at)) => received_fix(&TopVia::of(&via, at), from, force_rport),
        None => ViaFix::new(),
    };
    local_reply_fixed(req, &fix, spec, to_tag, server, out)
}

/// [`local_reply`] with the top Via read already.
// The parts of a reply, each its own.
#[allow(clippy::too_many_arguments)]
pub(crate) fn local_reply_via(
    req: &Message,
    via: &TopVia,
    from: &Source,
    force_rport: bool,
    spec: &LocalReply<'_>,
    to_tag: Option<&[u8]>,
    server: &[u8],
    out: &mut Vec<u8>,
) -> Bytes {
    let fix = received_fix(via, from, force_rport);
    local_reply_fixed(req, &fix, spec, to_tag, server, out)
}

fn local_reply_fixed(
    req: &Message,
    fix: &ViaFix,
    spec: &LocalReply<'_>,
    to_tag: Option<&[u8]>,
    server: &[u8],
    out: &mut Vec<u8>,
) -> Bytes {
    let via_edits: SmallVec<[(Range<usize>, &[u8]); 2]> =
        fix.iter().map(|(r, d)| (r.clone(), d.as_ref())).collect();
    let spec = ReplySpec {
        code: spec.code,
        reason: spec.reason,
        to_tag,
        via_edits: &via_edits,
        extra_headers: spec.headers,
        server,
        body: spec.body,
    };
    reply::build(req, &spec, out);
    Bytes::copy_from_slice(out)
}

/// The edits of the top Via of a request we answer ourselves (the rule
/// sl's replies follow too: [`crate::sip::received::received_fix`]).
fn received_fix(via: &TopVia, from: &Source, force_rport: bool) -> ViaFix {
    crate::sip::received::received_fix(
        &via.facts,
        via.at,
        from.src,
        force_rport,
        ViaFixAt::ParamsEnd,
    )
}

/// The bytes of a downstream reply relayed upstream: the script's `edits`
/// applied, our top Via removed. `None` when the reply has no Via to remove.
/// (A 503 chosen as the final does not go up as these bytes: the cell
/// answers a 500 of its own, see `Cell::send_best`.)
/// `second_via`: the quick scan's answer for the top Via header (where its
/// second via-parm starts), when the caller scanned it already.
pub(crate) fn relayed_reply(
    reply: &Message,
    edits: Option<&Edits>,
    upstream_reliable: bool,
    second_via: Option<Option<usize>>,
    out: &mut Vec<u8>,
) -> Option<Bytes> {
    let mut e = edits.cloned().unwrap_or_default();
    let (index, h) = reply
        .headers()
        .iter()
        .enumerate()
        .find(|(_, h)| h.id == HeaderName::Via)?;
    // Where the second via-parm of this header starts, if there is one.
    let scanned = second_via.or_else(|| reply.top_via_next());
    let second = match scanned {
        Some(next) => next,
        None => {
            let mut values = vias(reply.value(h));
            values.next()?.ok()?;
            match values.next() {
                Some(Ok(second)) => Some(second.span().start),
                Some(Err(_)) => return None,
                None => None,
            }
        }
    };
    match second {
        // More values in the same header: delete ours and the comma after it.
        Some(second) => {
            let start = h.value.start as usize;
            e.delete(start..start + second);
        }
        None => e.remove_header(reply, index),
    }
    if upstream_reliable {
        e.force_content_length();
    }
    serialize(reply, &e, out);
    Some(Bytes::copy_from_slice(out))
}

/// The first via-parm of `msg`'s top Via, as written.
fn top_via_text(msg: &Message) -> Option<&[u8]> {
    let (via, at) = top_via(msg)?;
    let h = msg.header(HeaderName::Via)?;
    debug_assert_eq!(at, h.value.start as usize);
    msg.value(h).get(via.span())
}

/// The CANCEL of a branch (RFC 3261 §9.1): "The Request-URI, Call-ID, To,
/// the numeric part of CSeq, and From header fields in the CANCEL request
/// MUST be identical to those in the request being cancelled, including
/// tags. A CANCEL constructed by a client MUST have only a single Via header
/// field value matching the top Via value in the request being cancelled."
/// Route headers are copied (§9.1: "If the request being cancelled contains a
/// Route header field, the CANCEL request MUST include that Route header
/// field's values"); `extra` holds whole lines such as `Reason:`.
pub(crate) fn cancel(invite: &Message, extra: &[u8], out: &mut Vec<u8>) -> Option<Bytes> {
    hop_request(invite, b"CANCEL", None, extra, out)
}

/// The ACK of a non-2xx final response (RFC 3261 §17.1.1.3): Request-URI,
/// Call-ID, From and the CSeq number of the INVITE, the To of the response,
/// the INVITE's top Via only, its Route headers.
pub(crate) fn ack(invite: &Message, response: &Message, out: &mut Vec<u8>) -> Option<Bytes> {
    let to = response.header(HeaderName::To)?;
    hop_request(invite, b"ACK", Some(response.value(to)), b"", out)
}

/// A CANCEL or hop-by-hop ACK, laid out as Kamailio lays them out: the
/// request line, then the INVITE's top Via, Max-Forwards, From, To,
/// Call-ID, CSeq and Route headers in the order the INVITE has them (as
/// written: compact names stay compact), `Content-Length: 0`, then `extra`.
fn hop_request(
    invite: &Message,
    method: &[u8],
    to: Option<&[u8]>,
    extra: &[u8],
    out: &mut Vec<u8>,
) -> Option<Bytes> {
    let uri = invite.request_uri()?;
    let via = top_via_text(invite)?;
    let cseq = invite.header_value(HeaderName::CSeq)?;
    let seq = cseq
        .get(..cseq.iter().position(|b| !b.is_ascii_digit())?)
        .filter(|s| !s.is_empty())?;
    invite.header(HeaderName::From)?;
    invite.call_id()?;
    if to.is_none() {
        invite.header(HeaderName::To)?;
    }
    out.clear();
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(uri);
    out.extend_from_slice(b" SIP/2.0\r\n");
    let line = |out: &mut Vec<u8>, h: &crate::sip::message::Header, value: &[u8]| {
        out.extend_from_slice(invite.name(h));
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    let mut cseq_value = SmallVec::<[u8; 24]>::new();
    cseq_value.extend_from_slice(seq);
    cseq_value.push(b' ');
    cseq_value.extend_from_slice(method);
    // Each of these once (the first), Route every time.
    let mut seen = [false; 6];
    for h in invite.headers() {
        let value = invite.value(h);
        let (once, value) = match h.id {
            HeaderName::Via => (Some(0), via),
            // Kamailio copies the INVITE's Max-Forwards (§8.1.1.6: 70 when unreadable).
            HeaderName::MaxForwards => {
                let ok =
                    !value.is_empty() && value.len() <= 3 && value.iter().all(u8::is_ascii_digit);
                (Some(1), if ok { value } else { &b"70"[..] })
            }
            HeaderName::From => (Some(2), value),
            HeaderName::To => (Some(3), to.unwrap_or(value)),
            HeaderName::CallId => (Some(4), value),
            HeaderName::CSeq => (Some(5), &cseq_value[..]),
            HeaderName::Route => (None, value),
            _ => continue,
        };
        if once.is_some_and(|i| std::mem::replace(&mut seen[i], true)) {
            continue;
        }
        line(out, h, value);
    }
    if !seen[1] {
        out.extend_from_slice(b"Max-Forwards: 70\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n");
    out.extend_from_slice(extra);
    out.extend_from_slice(b"\r\n");
    Some(Bytes::copy_from_slice(out))
}

/// The lines of every header of `msg` named `name` (e.g. `Reason` of a CANCEL, to copy downstream).
pub(crate) fn header_lines(msg: &Message, name: &[u8]) -> Vec<u8> {
    let mut lines = Vec::new();
    for h in msg.headers_named(name) {
        lines.extend_from_slice(msg.name(h));
        lines.extend_from_slice(b": ");
        lines.extend_from_slice(msg.value(h));
        lines.extend_from_slice(b"\r\n");
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    /// The quick scan gives what the parser gives, and the responses built
    /// from either are the same bytes.
    #[test]
    fn top_via_from_the_scan_equals_the_parse() {
        let from = Source {
            src: "10.0.0.9:5070".parse().unwrap(),
            local: "10.0.0.1:5060".parse().unwrap(),
            proto: Proto::Udp,
            socket: 0,
            conn: None,
        };
        for via in [
            "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa;rport",
            "SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKa",
            "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKa;rport=5070;received=10.0.0.9",
            "SIP/2.0/TCP Host.Example.com;branch=z9hG4bKa",
            "SIP/2.0/UDP [2001:db8::1]:5061;rport;branch=z9hG4bKa",
            "SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKa",
            "SIP/2.0/TLS a.b;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb",
            "SIP/2.0/SCTP a.b;branch=z9hG4bKa;received=1.2.3.4",
            // Declined by the scan: the parser reads these.
            "SIP/2.0/UDP 10.0.0.2:5060 ;branch=z9hG4bKa;rport",
            "SIP / 2.0 / UDP 10.0.0.2;branch=z9hG4bKa",
        ] {
            let text = format!(
                "OPTIONS sip:b@x SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@a>;tag=f\r\n\
                 To: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            let msg = Message::parse(Bytes::from(text)).unwrap();
            let (parsed, at) = top_via(&msg).unwrap();
            let full = TopVia::of(&parsed, at);
            let quick = TopVia::of_message(&msg).unwrap();
            assert_eq!(quick, full, "{via}");
            // The scan the key made, handed over, or none: the same.
            let (_, _, scan) = crate::tm::key::Key::of_scanned(&msg).unwrap();
            assert_eq!(
                TopVia::of_message_scanned(&msg, scan.as_ref()),
                Some(full),
                "{via}"
            );
            assert_eq!(TopVia::of_message_scanned(&msg, None), Some(full), "{via}");
            let spec = LocalReply {
                code: 200,
                reason: b"OK",
                ..LocalReply::default()
            };
            let mut out = Vec::new();
            for force in [false, true] {
                let a = local_reply_via(&msg, &quick, &from, force, &spec, None, b"", &mut out);
                let b = local_reply(&msg, &from, force, &spec, None, b"", &mut out);
                assert_eq!(a, b, "{via}");
                assert_eq!(
                    response_target(&quick, &from, force),
                    response_target(&full, &from, force)
                );
            }
        }
        // A bad port or host is left to the parser (which refuses it).
        for via in [
            "SIP/2.0/UDP 10.0.0.2:99999;branch=z9hG4bKa",
            "SIP/2.0/UDP 10.0.0.2:;branch=z9hG4bKa",
            "SIP/2.0/UDP 10.0.0.256;branch=z9hG4bKa",
        ] {
            let text = format!(
                "OPTIONS sip:b@x SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@a>;tag=f\r\n\
                 To: <sip:b@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            let msg = Message::parse(Bytes::from(text)).unwrap();
            assert_eq!(
                TopVia::of_message(&msg),
                top_via(&msg).map(|(v, at)| TopVia::of(&v, at)),
                "{via}"
            );
        }
    }

    const INVITE: &[u8] = b"INVITE sip:bob@10.0.0.3 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKR00;rport, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\r\n\
Route: <sip:r1;lr>\r\n\
Route: <sip:r2;lr>\r\n\
Max-Forwards: 69\r\n\
From: <sip:a@a>;tag=f\r\n\
To: <sip:bob@b>\r\n\
Call-ID: c@x\r\n\
CSeq: 7 INVITE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 3\r\n\r\nv=0";

    fn parse(b: &[u8]) -> Message {
        Message::parse(Bytes::copy_from_slice(b)).unwrap()
    }

    #[test]
    fn cancel_and_ack_per_rfc() {
        let inv = parse(INVITE);
        let mut out = Vec::new();
        let c = cancel(&inv, b"Reason: SIP;cause=200\r\n", &mut out).unwrap();
        assert_eq!(
            &c[..],
            &b"CANCEL sip:bob@10.0.0.3 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKR00;rport\r\n\
Route: <sip:r1;lr>\r\n\
Route: <sip:r2;lr>\r\n\
Max-Forwards: 69\r\n\
From: <sip:a@a>;tag=f\r\n\
To: <sip:bob@b>\r\n\
Call-ID: c@x\r\n\
CSeq: 7 CANCEL\r\n\
Content-Length: 0\r\n\
Reason: SIP;cause=200\r\n\r\n"[..]
        );
        // Compact names stay compact; no Max-Forwards in the INVITE: 70.
        let compact = parse(
            b"INVITE sip:bob@10.0.0.3 SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKR01\r\n\
f: <sip:a@a>;tag=f\r\nt: <sip:bob@b>\r\ni: c2@x\r\nCSeq: 8 INVITE\r\nl: 0\r\n\r\n",
        );
        let c = cancel(&compact, b"", &mut out).unwrap();
        assert_eq!(
            &c[..],
            &b"CANCEL sip:bob@10.0.0.3 SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKR01\r\n\
f: <sip:a@a>;tag=f\r\nt: <sip:bob@b>\r\ni: c2@x\r\nCSeq: 8 CANCEL\r\nMax-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n"[..]
        );
        assert!(Message::parse(c).is_ok());
        let resp = parse(
            b"SIP/2.0 486 Busy\r\nVia: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKR00\r\n\
From: <sip:a@a>;tag=f\r\nTo: <sip:bob@b>;tag=t9\r\nCall-ID: c@x\r\nCSeq: 7 INVITE\r\n\r\n",
        );
        let a = ack(&inv, &resp, &mut out).unwrap();
        let a = Message::parse(a).unwrap();
        assert_eq!(a.method_bytes(), b"ACK");
        assert_eq!(a.request_uri().unwrap(), b"sip:bob@10.0.0.3");
        assert_eq!(
            a.header_value(HeaderName::To).unwrap(),
            b"<sip:bob@b>;tag=t9"
        );
        assert_eq!(a.header_value(HeaderName::CSeq).unwrap(), b"7 ACK");
        assert_eq!(a.headers_of(HeaderName::Via).count(), 1);
        assert_eq!(a.headers_of(HeaderName::Route).count(), 2);
    }

    #[test]
    fn relayed_reply_loses_top_via() {
        // The bytes keep the code: a 503 chosen as the final goes up as a
        // 500 of the cell's own (`tm::tests::proxy::best_response_selection_table`,
        // `tests/engine_tm.rs::a_503_goes_upstream_as_a_500_of_our_own`).
        let r = parse(
            b"SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP p;branch=z9hG4bKR1, SIP/2.0/UDP a;branch=z9hG4bKa\r\n\
Via: SIP/2.0/UDP b\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        let mut out = Vec::new();
        let b = relayed_reply(&r, None, false, None, &mut out).unwrap();
        assert_eq!(
            &b[..],
            &b"SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKa\r\n\
Via: SIP/2.0/UDP b\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"[..]
        );
        let r = parse(b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP p\r\nVia: SIP/2.0/UDP a\r\n\r\n");
        let b = relayed_reply(&r, None, true, None, &mut out).unwrap();
        assert_eq!(
            &b[..],
            &b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP a\r\nContent-Length: 0\r\n\r\n"[..]
        );
        let r = parse(b"SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\n\r\n");
        assert!(relayed_reply(&r, None, false, None, &mut out).is_none());
    }

    #[test]
    fn local_reply_fills_rport_and_received() {
        let inv = parse(INVITE);
        let from = Source {
            src: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 7000),
            local: "10.0.0.5:5060".parse().unwrap(),
            proto: Proto::Udp,
            socket: 0,
            conn: None,
        };
        let (via, at) = top_via(&inv).unwrap();
        let t = response_target(&TopVia::of(&via, at), &from, false);
        assert_eq!(t.dst, from.src);
        let mut out = Vec::new();
        let spec = LocalReply {
            code: 408,
            reason: b"Request Timeout",
            ..LocalReply::default()
        };
        let r = local_reply(&inv, &from, false, &spec, Some(b"tt"), b"", &mut out);
        let text = String::from_utf8_lossy(&r);
        assert!(
            text.contains("Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKR00;rport=7000;received=192.0.2.9, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\r\n"),
            "{text}"
        );
        assert!(text.contains("To: <sip:bob@b>;tag=tt\r\n"), "{text}");
    }
}
