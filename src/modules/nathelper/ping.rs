//! NAT keep-alive pings (KAMAILIO-REFERENCE §7.8 "Pings"): every
//! `natping_interval` seconds, one core sends to each registered contact
//! (only those flagged with usrloc's `nat_bflag` when `ping_nated_only`) a
//! 4-byte UDP packet, or, for contacts whose branch flags hold
//! `sipping_bflag`, a stateless `sipping_method` request from `sipping_from`.
//! The destination is the `received` address when the registrar stored one,
//! else the Contact's own address. Replies to SIP pings are recognised by
//! their branch and absorbed. Sans-IO: driven by the cores' timers through
//! [`LocalRequests`], sending through the runtime.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::modules::usrloc::{Ucontact, Usrloc};
use crate::script::ctx::{fmt_hostport, Env, LocalEvent, LocalRequests};
use crate::script::registry::ModParams;
use crate::sip::host::Host;
use crate::sip::uri::Uri;
use crate::sip::{HeaderName, Message, Proto, Transmit};

/// The start of every SIP ping's branch.
pub const BRANCH_PREFIX: &[u8] = b"z9hG4bKnatping.";
/// Kamailio's UDP keep-alive: four zero bytes.
pub const UDP_PING: &[u8] = &[0, 0, 0, 0];

/// What decides who is pinged and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingParams {
    pub interval: Duration,
    pub nated_only: bool,
    /// usrloc `nat_bflag`.
    pub nat_bflag: Option<u32>,
    pub sipping_bflag: Option<u32>,
    pub sipping_from: Option<String>,
    pub sipping_method: String,
    pub disable_bflag: Option<u32>,
}

impl PingParams {
    /// The parameters; `None` when `natping_interval` is 0 (no pings).
    pub fn from_modparams(mp: &ModParams) -> Result<Option<PingParams>, String> {
        let int = |p: &str| mp.int("nathelper", p);
        let interval = int("natping_interval").unwrap_or(0);
        if interval <= 0 {
            return Ok(None);
        }
        let bit = |v: Option<i64>| v.filter(|b| (0..32).contains(b)).map(|b| b as u32);
        let sipping_bflag = bit(int("sipping_bflag"));
        let sipping_from = mp.str("nathelper", "sipping_from").map(str::to_string);
        if sipping_bflag.is_some() && sipping_from.is_none() {
            return Err("nathelper: sipping_bflag needs sipping_from".into());
        }
        Ok(Some(PingParams {
            interval: Duration::from_secs(interval as u64),
            nated_only: int("ping_nated_only").unwrap_or(0) != 0,
            nat_bflag: bit(mp.int("usrloc", "nat_bflag")),
            sipping_bflag,
            sipping_from,
            sipping_method: mp
                .str("nathelper", "sipping_method")
                .unwrap_or("OPTIONS")
                .to_string(),
            disable_bflag: bit(int("natping_disable_bflag")),
        }))
    }
}

#[derive(Debug, Default)]
struct PingState {
    next_round: Option<Instant>,
    seq: u64,
}

/// The pinger shared by the cores.
pub struct NatPinger {
    params: PingParams,
    usrloc: Arc<Usrloc>,
    base: u64,
    state: Mutex<PingState>,
}

impl std::fmt::Debug for NatPinger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NatPinger({:?})", self.params)
    }
}

fn has(flags: u32, bit: Option<u32>) -> bool {
    bit.is_some_and(|b| flags & (1 << b) != 0)
}

/// Where to ping a contact: its `received` URI, else its Contact URI (IP hosts only).
fn target(c: &Ucontact) -> Option<(SocketAddr, Proto)> {
    let text = c.received.as_deref().unwrap_or(&c.contact);
    let u = Uri::parse(text.as_bytes()).ok()?;
    let ip: IpAddr = match u.host()? {
        Host::V4(a) => a.into(),
        Host::V6(a) => a.into(),
        Host::Name(_) => return None,
    };
    let proto = u.transport().unwrap_or(if u.is_secure() {
        Proto::Tls
    } else {
        Proto::Udp
    });
    Some((
        SocketAddr::new(ip, u.port().unwrap_or(proto.default_port())),
        proto,
    ))
}

impl NatPinger {
    pub fn new(params: PingParams, usrloc: Arc<Usrloc>, base: u64) -> NatPinger {
        NatPinger {
            params,
            usrloc,
            base,
            state: Mutex::new(PingState::default()),
        }
    }

    /// Sends a round of pings when one is due at `now`.
    pub fn tick(&self, env: &Env, now: Instant, out: &mut Vec<Transmit>) {
        let Ok(mut st) = self.state.try_lock() else {
            return;
        };
        if st.next_round.is_some_and(|at| at > now) {
            return;
        }
        st.next_round = Some(now + self.params.interval);
        let unix = (env.epoch.unix_ms(now) / 1000) as i64;
        let p = &self.params;
        let mut jobs = Vec::new();
        for domain in self.usrloc.domains() {
            domain.for_each(|_, rec| {
                for c in rec.valid(unix) {
                    if has(c.cflags, p.disable_bflag) {
                        continue;
                    }
                    if p.nated_only && !has(c.cflags, p.nat_bflag) {
                        continue;
                    }
                    if let Some((dst, proto)) = target(c) {
                        let sip = has(c.cflags, p.sipping_bflag);
                        jobs.push((dst, proto, sip, c.contact.clone(), c.socket.clone()));
                    }
                }
            });
        }
        for (dst, proto, sip, contact, socket) in jobs {
            let preferred = socket.as_deref().and_then(|s| {
                let spec = crate::modules::core::send::SocketSpec::parse(s)?;
                env.sockets
                    .iter()
                    .position(|x| {
                        x.addr.ip() == spec.ip && spec.port.is_none_or(|p| p == x.addr.port())
                    })
                    .and_then(|i| crate::sip::SocketId::try_from(i).ok())
            });
            let Some(sock) = env.socket_for(proto, &dst, preferred) else {
                continue;
            };
            let data = if sip {
                st.seq += 1;
                self.request(env, sock, proto, &contact, st.seq)
            } else if proto == Proto::Udp {
                Bytes::from_static(UDP_PING)
            } else {
                // A raw keep-alive only makes sense on UDP; stream connections have their own.
                continue;
            };
            out.push(Transmit {
                data,
                dst,
                proto,
                socket: Some(sock),
                local: None,
                conn: None,
                flags: Default::default(),
            });
        }
    }

    fn request(
        &self,
        env: &Env,
        sock: crate::sip::SocketId,
        proto: Proto,
        contact: &str,
        seq: u64,
    ) -> Bytes {
        let info = &env.sockets[usize::from(sock)];
        let via = match &info.advertise {
            Some((h, p)) => format!("{h}:{p}"),
            None => fmt_hostport(info.addr),
        };
        let from = self
            .params
            .sipping_from
            .as_deref()
            .unwrap_or("sip:pinger@localhost");
        let m = &self.params.sipping_method;
        let id = format!("{:x}.{seq:x}", self.base & 0xffff_ffff);
        Bytes::from(format!(
            "{m} {contact} SIP/2.0\r\nVia: SIP/2.0/{v} {via};branch={b}{id}\r\n\
             From: <{from}>;tag={id}\r\nTo: <{contact}>\r\nCall-ID: natping.{id}@{via}\r\n\
             CSeq: 1 {m}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            v = proto.via_name(),
            b = String::from_utf8_lossy(BRANCH_PREFIX),
        ))
    }
}

impl LocalRequests for NatPinger {
    fn interval(&self) -> Duration {
        Duration::from_millis(500).min(self.params.interval)
    }

    fn on_timer(&self, env: &Env, now: Instant, out: &mut Vec<Transmit>, _: &mut Vec<LocalEvent>) {
        self.tick(env, now, out);
    }

    fn on_reply(&self, msg: &Message, _: Instant, _: &mut Vec<LocalEvent>) -> bool {
        // Replies to our SIP pings end here (Kamailio absorbs them too).
        msg.header_value(HeaderName::Via)
            .is_some_and(|v| memchr::memmem::find(v, BRANCH_PREFIX).is_some())
    }
}
