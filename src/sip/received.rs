//! What a proxy adds to the top Via of a request it forwards or answers
//! itself (RFC 3261 §18.2.1, RFC 3581 §4): `;received=<source IP>` when the
//! sent-by host is not the source address or rport was asked for, and the
//! source port as the value of an empty `rport`. Kamailio's `force_rport()`
//! acts as if the client had asked: a Via without `rport` gets
//! `;rport=<port>` (and, in a forwarded request only, `received` too). One
//! rule for every layer that answers or forwards (sl, tm's local replies,
//! the stateless forward), with the place of the added parameters as
//! Kamailio puts them ([`ViaFixAt`]).

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use bytes::Bytes;
use smallvec::SmallVec;

use super::via::{Rport, Via, ViaAt};

/// What the rule reads of a top via-parm; ranges relative to its header value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopViaFacts {
    pub host_ip: Option<IpAddr>,
    pub rport: Rport,
    /// Where the `rport` parameter ends.
    pub rport_end: Option<usize>,
    pub has_received: bool,
    /// Where `host[:port]` ends.
    pub sent_by_end: usize,
    /// Where the parameters end.
    pub params_end: usize,
}

impl TopViaFacts {
    pub fn of(via: &Via<'_>) -> TopViaFacts {
        TopViaFacts {
            host_ip: via.host().ip(),
            rport: via.rport(),
            rport_end: via.rport_range().map(|r| r.end),
            has_received: via.received().is_some(),
            sent_by_end: via.sent_by_range().end,
            params_end: via.params_range().end,
        }
    }

    /// From the record of a parsed via-parm, without a view.
    pub fn of_at(via: &ViaAt) -> TopViaFacts {
        TopViaFacts {
            host_ip: via.host_ip(),
            rport: via.rport(),
            rport_end: via.rport_range().map(|r| r.end),
            has_received: via.has_received(),
            sent_by_end: via.sent_by_range().end,
            params_end: via.params_end(),
        }
    }
}

/// Where [`received_fix`] puts what it adds, as Kamailio does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViaFixAt {
    /// A forwarded request: `;received=` (then a forced `;rport=`) right
    /// after `host:port`.
    SentBy,
    /// A reply we make ourselves: a forced `;rport=` then `;received=` at
    /// the end of the via-parm's parameters.
    ParamsEnd,
}

/// Insertions into the message: (empty range at a buffer offset, bytes).
pub type ViaFix = SmallVec<[(Range<usize>, Bytes); 2]>;

/// The edits of the top Via whose header value starts at `at` in the
/// message, for a request from `src`; `force_rport`: the script called
/// `force_rport()` / `add_rport()`.
pub fn received_fix(
    via: &TopViaFacts,
    at: usize,
    src: SocketAddr,
    force_rport: bool,
    place: ViaFixAt,
) -> ViaFix {
    let mut fix = ViaFix::new();
    // The source port as text, formatted only for an rport to fill.
    let port = |head: &[u8]| {
        let mut digits = itoa::Buffer::new();
        Bytes::from([head, digits.format(src.port()).as_bytes()].concat())
    };
    let forced = force_rport && matches!(via.rport, Rport::Absent);
    let same_host = via.host_ip.is_some_and(|ip| ip == src.ip());
    // An empty rport gets its value where it is.
    if let Some(end) = via.rport_end.filter(|_| matches!(via.rport, Rport::Empty)) {
        fix.push((at + end..at + end, port(b"=")));
    }
    // RFC 3581 §4 asks for `received` whenever the client sent rport. A
    // forced rport does not: Kamailio's own replies add no `received` for
    // it (observed on 5.6: sl and tm alike), and 5.6.3 relays
    // `host;rport=N` from that host, `host;rport=N;received=IP` from
    // another (t_relay, checked live).
    let wants_received = matches!(via.rport, Rport::Empty);
    let received = ((!same_host || wants_received) && !via.has_received).then(|| {
        let mut text = SmallVec::<[u8; 64]>::new();
        text.extend_from_slice(b";received=");
        super::host::push_ip(&mut text, src.ip());
        Bytes::copy_from_slice(&text)
    });
    match place {
        ViaFixAt::SentBy => {
            let end = at + via.sent_by_end;
            if forced {
                fix.push((end..end, port(b";rport=")));
            }
            fix.extend(received.map(|r| (end..end, r)));
        }
        ViaFixAt::ParamsEnd => {
            let end = at + via.params_end;
            if forced {
                fix.push((end..end, port(b";rport=")));
            }
            fix.extend(received.map(|r| (end..end, r)));
        }
    }
    fix
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::via::vias;

    /// `value` with the fix applied.
    fn fixed(value: &str, src: &str, force: bool, place: ViaFixAt) -> String {
        let via = vias(value.as_bytes()).next().unwrap().unwrap();
        let fix = received_fix(
            &TopViaFacts::of(&via),
            0,
            src.parse().unwrap(),
            force,
            place,
        );
        let mut out = value.as_bytes().to_vec();
        // Insert from the back so earlier offsets stay valid (equal offsets keep their order).
        for (range, data) in fix.iter().rev() {
            out.splice(range.start..range.start, data.iter().copied());
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_rule_per_case_and_place() {
        use ViaFixAt::*;
        let cases = [
            // Same host, no rport: nothing.
            (
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa",
                "10.0.0.2:5060",
                false,
                ParamsEnd,
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa",
            ),
            // Another host: received.
            (
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa",
                "10.0.0.9:5070",
                false,
                ParamsEnd,
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa;received=10.0.0.9",
            ),
            // rport asked: filled in place, received even from the same host.
            (
                "SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bKa",
                "10.0.0.2:7000",
                false,
                ParamsEnd,
                "SIP/2.0/UDP 10.0.0.2:5060;rport=7000;branch=z9hG4bKa;received=10.0.0.2",
            ),
            // force_rport on a reply from the sent-by host: rport only (Kamailio 5.6).
            (
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa",
                "10.0.0.2:7000",
                true,
                ParamsEnd,
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa;rport=7000",
            ),
            // ... from another host: rport, then received, at the end.
            (
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa",
                "10.0.0.9:7000",
                true,
                ParamsEnd,
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa;rport=7000;received=10.0.0.9",
            ),
            // force_rport on a forwarded request: after host:port, rport
            // first; received only from another host (Kamailio 5.6.3
            // t_relay, live; a WebSocket client's `.invalid` Via is the
            // common case).
            (
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa",
                "10.0.0.2:7000",
                true,
                SentBy,
                "SIP/2.0/UDP 10.0.0.2:5060;rport=7000;branch=z9hG4bKa",
            ),
            (
                "SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKa",
                "10.0.0.2:7000",
                true,
                SentBy,
                "SIP/2.0/WS df7jal23ls0d.invalid;rport=7000;received=10.0.0.2;branch=z9hG4bKa",
            ),
            // force_rport with rport=N given: nothing forced, received kept out.
            (
                "SIP/2.0/UDP 10.0.0.2:5060;rport=5060;branch=z9hG4bKa",
                "10.0.0.2:7000",
                true,
                ParamsEnd,
                "SIP/2.0/UDP 10.0.0.2:5060;rport=5060;branch=z9hG4bKa",
            ),
            // A received already there is not added twice.
            (
                "SIP/2.0/UDP h.example;branch=z9hG4bKa;received=1.2.3.4",
                "10.0.0.9:5070",
                false,
                ParamsEnd,
                "SIP/2.0/UDP h.example;branch=z9hG4bKa;received=1.2.3.4",
            ),
        ];
        for (value, src, force, place, want) in cases {
            assert_eq!(
                fixed(value, src, force, place),
                want,
                "{value} from {src} force={force} {place:?}"
            );
        }
    }
}
