//! The registration state machine, sans IO: [`Registrations::tick`] and
//! [`Registrations::on_reply`] take the time (unix milliseconds) and the
//! reply, and push what to send.
//!
//! When a REGISTER goes out, as Kamailio 5.6 does it (checked on the wire):
//! - every `reg_timer_interval` seconds, from start-up on, each record that
//!   is enabled, has an `expires` above 0, is past its `reg_delay`, and whose
//!   registration ends within `reg_timer_interval + 3` seconds is sent; the
//!   end is the send time plus the expiry the 200 OK gave (the Contact's
//!   `expires`, else the Expires header);
//! - a failure (a final other than 200/401/407/423, a second challenge, no
//!   answer within tm's `fr_timer`) moves the end to now +
//!   `reg_retry_interval`, or disables the record when that is 0; with the
//!   rule above the retry goes out at the first round that is within
//!   `reg_timer_interval + 3` s of it;
//! - a 423 sets `expires` to the Min-Expires (or doubles it) for the next round;
//! - a 401/407 is answered at once with credentials, same Call-ID and From
//!   tag, CSeq + 1 (once: the second challenge is a failure);
//! - a record still waiting for an answer after `reg_retry_interval` is
//!   sent again (its transaction is abandoned).
//!
//! Each REGISTER has a new Call-ID and From tag and CSeq 10, unless
//! `reg_keep_callid` is set: a record registered before then keeps its
//! Call-ID and continues its CSeq from the 200 OK's; its From tag changes
//! at the first refresh and then stays (what Kamailio 5.6 sent).

use std::net::SocketAddr;

use bytes::Bytes;

use super::{Counters, Reg, Registrations, AUTHSENT, DISABLED, INIT, ONGOING, ONLINE};
use crate::modules::core::hash::{fnv1a, push_hex};
use crate::modules::uac::auth::{authorization, read_challenge, Creds};
use crate::modules::uac::send::{build_with, Head, UacReq};
use crate::sip::nameaddr::{contacts, NameAddr};
use crate::sip::{HeaderName, Message, Proto, Transmit};

/// The start of every registration branch: how a reply is known to be ours.
pub const BRANCH_PREFIX: &str = "z9hG4bKuacreg.";

const T1_MS: u64 = 500;
const T2_MS: u64 = 4000;

/// Where one record's REGISTER goes, worked out by the caller (sockets and
/// names are the runtime's business).
#[derive(Clone, Debug)]
pub struct Route {
    pub dst: SocketAddr,
    pub proto: Proto,
    pub socket: Option<crate::sip::packet::SocketId>,
    /// `host[:port]` of our Via.
    pub via_host: Vec<u8>,
}

/// A REGISTER waiting for its final answer.
#[derive(Clone, Debug)]
pub struct Pending {
    pub branch: String,
    pub transmit: Transmit,
    pub next_retransmit: Option<u64>,
    pub retransmit_after: u64,
    pub deadline: u64,
    /// What the authenticated REGISTER needs to be rebuilt.
    pub route: Route,
}

/// The ways out of a transaction.
enum Outcome {
    /// Nothing more (the record waits for the next round).
    Done,
    /// The registration failed: retry later or disable.
    Error,
}

impl Registrations {
    /// The work due at `now_ms`: retransmissions, timeouts, and a round of
    /// registrations when one is due. `route` says where a record's
    /// REGISTER goes (`None`: it cannot be sent now).
    pub fn tick(
        &self,
        now_ms: u64,
        route: &dyn Fn(&Reg) -> Option<Route>,
        user_agent: &[u8],
        out: &mut Vec<Transmit>,
    ) {
        // Another core doing the work this tick is as good as doing it here.
        let mut st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        let cfg = &self.cfg;
        let st = &mut *st;
        for reg in st.regs.iter_mut() {
            let Some(p) = reg.pending.as_mut() else {
                continue;
            };
            if p.deadline <= now_ms {
                // tm's local 408.
                log::error!("uac: no answer to the REGISTER of [{}]", reg.rec.l_uuid);
                reg.pending = None;
                finish(reg, &mut st.counters, cfg, Outcome::Error, now_ms);
                continue;
            }
            if let Some(at) = p.next_retransmit.filter(|at| *at <= now_ms) {
                out.push(p.transmit.clone());
                p.retransmit_after = (p.retransmit_after * 2).min(T2_MS);
                p.next_retransmit = Some(at + p.retransmit_after);
            }
        }
        let round = self.is_active() && st.next_round.is_none_or(|at| at <= now_ms);
        if round {
            st.next_round = Some(now_ms + cfg.timer_interval * 1000);
        }
        let now = now_ms / 1000;
        for reg in st.regs.iter_mut() {
            // uac.reg_unregister sends at once, whatever the round.
            let unregister = std::mem::take(&mut reg.send_now);
            if !(unregister || round && due(reg, cfg, now)) {
                continue;
            }
            st.seq += 1;
            let seq = st.seq;
            send_register(
                reg,
                &mut st.counters,
                cfg,
                seq,
                self.base,
                now_ms,
                route,
                user_agent,
                out,
            );
        }
    }

    /// Takes a reply to one of our REGISTERs (false: it is not one); a
    /// challenge is answered into `out`.
    pub fn on_reply(
        &self,
        msg: &Message,
        now_ms: u64,
        user_agent: &[u8],
        out: &mut Vec<Transmit>,
    ) -> bool {
        let Some(code) = msg.status() else {
            return false;
        };
        let Some(branch) = our_branch(msg) else {
            return false;
        };
        let mut st = self.lock();
        let st = &mut *st;
        let Some(reg) = st
            .regs
            .iter_mut()
            .find(|r| r.pending.as_ref().is_some_and(|p| p.branch == branch))
        else {
            // A late answer (retransmitted, or to an abandoned REGISTER).
            return true;
        };
        if code < 200 {
            if let Some(p) = reg.pending.as_mut() {
                p.next_retransmit = None;
            }
            return true;
        }
        let Some(pending) = reg.pending.take() else {
            return true;
        };
        let cfg = &self.cfg;
        let outcome = match code {
            200 => registered(reg, cfg, msg),
            401 | 407 => {
                st.seq += 1;
                match challenge(
                    reg, msg, code, &pending, st.seq, self.base, now_ms, user_agent,
                ) {
                    Some(t) => {
                        out.push(t.transmit.clone());
                        reg.flags |= AUTHSENT;
                        reg.pending = Some(t);
                        return true;
                    }
                    None => Outcome::Error,
                }
            }
            423 => {
                let min = msg
                    .header_value(HeaderName::MinExpires)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.trim().parse::<u32>().ok());
                reg.rec.expires = match min {
                    Some(m) => m,
                    None => reg.rec.expires.saturating_mul(2),
                };
                Outcome::Done
            }
            _ => {
                log::error!(
                    "uac: got sip response {code} while registering [{}]",
                    reg.rec.l_uuid
                );
                Outcome::Error
            }
        };
        finish(reg, &mut st.counters, cfg, outcome, now_ms);
        true
    }
}

/// Whether the round at `now` (unix seconds) sends `reg`; marks it
/// initialised past its delay, and abandons a REGISTER that waited too long.
fn due(reg: &mut Reg, cfg: &super::RegConfig, now: u64) -> bool {
    if reg.rec.expires == 0 {
        return false;
    }
    if reg.flags & ONGOING != 0 {
        if reg.timer_expires + cfg.retry_interval > now {
            return false;
        }
        reg.flags &= !(ONLINE | AUTHSENT);
        reg.pending = None;
    }
    if reg.flags & DISABLED != 0 {
        return false;
    }
    if reg.flags & INIT == 0 {
        if reg.reg_delay > 0 && now < reg.reg_init + u64::from(reg.reg_delay) {
            return false;
        }
        reg.flags |= INIT;
    }
    reg.timer_expires <= now + cfg.timer_interval + 3
}

/// The end of a transaction: flags and the next time to look at the record.
fn finish(
    reg: &mut Reg,
    counters: &mut Counters,
    cfg: &super::RegConfig,
    outcome: Outcome,
    now_ms: u64,
) {
    if let Outcome::Error = outcome {
        if cfg.retry_interval > 0 {
            reg.timer_expires = now_ms / 1000 + cfg.retry_interval;
        } else {
            reg.flags |= DISABLED;
            counters.regdisabled += 1;
        }
        reg.cseq = 0;
    }
    reg.flags &= !(ONGOING | AUTHSENT);
    counters.regactive += 1;
}

/// A 200 OK: the expiry of our Contact (its `expires`, else the Expires
/// header) counts from the send time.
fn registered(reg: &mut Reg, cfg: &super::RegConfig, msg: &Message) -> Outcome {
    let Some(first) = msg.header_value(HeaderName::Contact) else {
        log::error!("uac: no Contact in the 200 OK for [{}]", reg.rec.l_uuid);
        return Outcome::Error;
    };
    if first.trim_ascii() == b"*" {
        return Outcome::Done;
    }
    let header_expires = msg
        .header_value(HeaderName::Expires)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    for h in msg.headers_of(HeaderName::Contact) {
        for c in contacts(msg.value(h)).flatten() {
            let Some(na) = c.name_addr() else {
                continue;
            };
            if na.uri().ok().and_then(|u| u.user()) != Some(reg.rec.l_uuid.as_bytes()) {
                continue;
            }
            let expires = match c.expires() {
                Ok(Some(e)) => u64::from(e),
                Ok(None) => header_expires.unwrap_or(0),
                Err(_) => 0,
            };
            reg.timer_expires += expires;
            reg.flags |= ONLINE;
            if cfg.keep_callid {
                let callid = msg.header_value(HeaderName::CallId);
                if let (Some(callid), Some(cseq)) = (callid, cseq_number(msg)) {
                    reg.callid = callid.trim_ascii().to_vec();
                    reg.cseq = cseq;
                }
            }
            return Outcome::Done;
        }
    }
    log::debug!("uac: 200 OK for [{}] without its Contact", reg.rec.l_uuid);
    Outcome::Done
}

fn cseq_number(msg: &Message) -> Option<u32> {
    let v = msg.header_value(HeaderName::CSeq)?;
    let n = v.trim_ascii().split(|b| b.is_ascii_whitespace()).next()?;
    std::str::from_utf8(n).ok()?.parse().ok()
}

/// The REGISTER answering a 401/407, or `None` (a failure).
#[allow(clippy::too_many_arguments)]
fn challenge(
    reg: &Reg,
    msg: &Message,
    code: u16,
    pending: &Pending,
    seq: u64,
    base: u64,
    now_ms: u64,
    user_agent: &[u8],
) -> Option<Pending> {
    if reg.flags & AUTHSENT != 0 {
        log::error!("uac: authentication failed for <{}>", reg.rec.l_uuid);
        return None;
    }
    let name = if code == 401 {
        HeaderName::WwwAuthenticate
    } else {
        HeaderName::ProxyAuthenticate
    };
    let Some(asked) = msg.header_value(name).and_then(read_challenge) else {
        log::error!("uac: no usable challenge for <{}>", reg.rec.l_uuid);
        return None;
    };
    if !reg.rec.realm.is_empty() && asked.realm != reg.rec.realm.as_bytes() {
        log::error!(
            "uac: realms do not match for <{}>: requested \"{}\"",
            reg.rec.l_uuid,
            String::from_utf8_lossy(&asked.realm)
        );
        return None;
    }
    let ha1 = reg.rec.auth_password.is_empty();
    let creds = Creds {
        user: reg.rec.auth_username.as_bytes().to_vec(),
        realm: asked.realm.clone(),
        password: if ha1 {
            reg.rec.auth_ha1.as_bytes().to_vec()
        } else {
            reg.rec.auth_password.as_bytes().to_vec()
        },
    };
    let ruri = format!("sip:{}", reg.rec.r_domain);
    let line = authorization(code, b"REGISTER", ruri.as_bytes(), &creds, &asked, ha1);
    // The same dialog as the challenged request (Kamailio reads it back
    // from the reply): Call-ID, From tag, CSeq + 1.
    let callid = msg.header_value(HeaderName::CallId)?.trim_ascii().to_vec();
    let tag = msg
        .header_value(HeaderName::From)
        .and_then(|f| NameAddr::parse(f).ok())
        .and_then(|f| f.tag().map(<[u8]>::to_vec))
        .unwrap_or_default();
    let cseq = cseq_number(msg)?.wrapping_add(1);
    let branch = branch_of(base, seq);
    let data = request(
        reg,
        &pending.route,
        &branch,
        &tag,
        &callid,
        cseq,
        &line,
        user_agent,
    );
    Some(new_pending(
        branch,
        data,
        &pending.route,
        now_ms,
        reg.fr_timeout_ms,
    ))
}

/// A fresh REGISTER for `reg` (a round found it due).
#[allow(clippy::too_many_arguments)]
fn send_register(
    reg: &mut Reg,
    counters: &mut Counters,
    cfg: &super::RegConfig,
    seq: u64,
    base: u64,
    now_ms: u64,
    route: &dyn Fn(&Reg) -> Option<Route>,
    user_agent: &[u8],
    out: &mut Vec<Transmit>,
) {
    let now = now_ms / 1000;
    reg.timer_expires = now;
    reg.flags |= ONGOING;
    counters.regactive -= 1;
    let Some(r) = route(reg) else {
        log::error!("uac: failed to send request for [{}]", reg.rec.l_uuid);
        if cfg.retry_interval > 0 {
            reg.timer_expires = now + cfg.retry_interval;
        } else {
            reg.flags |= DISABLED;
            counters.regdisabled += 1;
        }
        reg.flags &= !ONGOING;
        return;
    };
    let keep = cfg.keep_callid
        && reg.flags & ONLINE != 0
        && reg.cseq > 0
        && reg.cseq < 2_147_483_638
        && !reg.callid.is_empty();
    let (callid, cseq) = if keep {
        (reg.callid.clone(), reg.cseq + 1)
    } else {
        let mut c = Vec::with_capacity(48);
        push_hex(
            &mut c,
            fnv1a(base, &[b"uacreg-callid", &seq.to_le_bytes()]),
            16,
        );
        c.push(b'-');
        c.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        c.push(b'@');
        c.extend_from_slice(host_of(&r.via_host));
        (c, 10)
    };
    // A new dialog gets a new tag; a kept one a tag made from its Call-ID,
    // so that (as Kamailio's tm does) the first refresh changes the tag
    // and the later ones keep it.
    let salt = if keep {
        callid.clone()
    } else {
        seq.to_le_bytes().to_vec()
    };
    let mut tag = Vec::with_capacity(41);
    push_hex(&mut tag, fnv1a(base, &[b"uacreg-tag-a", &salt]), 16);
    push_hex(&mut tag, fnv1a(base, &[b"uacreg-tag-b", &salt]), 16);
    tag.push(b'-');
    push_hex(&mut tag, fnv1a(base, &[b"uacreg-tag-c", &salt]), 8);
    reg.tag = tag;
    reg.flags &= !ONLINE;
    let branch = branch_of(base, seq);
    let data = request(reg, &r, &branch, &reg.tag, &callid, cseq, b"", user_agent);
    let p = new_pending(branch, data, &r, now_ms, reg.fr_timeout_ms);
    out.push(p.transmit.clone());
    reg.pending = Some(p);
}

/// The host of our Via's `host[:port]` (an IPv6 reference keeps its brackets).
fn host_of(via_host: &[u8]) -> &[u8] {
    let end = if via_host.starts_with(b"[") {
        via_host
            .iter()
            .position(|&b| b == b']')
            .map_or(via_host.len(), |i| i + 1)
    } else {
        via_host
            .iter()
            .position(|&b| b == b':')
            .unwrap_or(via_host.len())
    };
    &via_host[..end]
}

#[cfg(test)]
#[test]
fn host_of_drops_the_port() {
    assert_eq!(host_of(b"127.0.0.1"), b"127.0.0.1");
    assert_eq!(host_of(b"127.0.0.1:5062"), b"127.0.0.1");
    assert_eq!(host_of(b"[::1]:5062"), b"[::1]");
    assert_eq!(host_of(b"[::1]"), b"[::1]");
    assert_eq!(host_of(b"sip.example.com:5060"), b"sip.example.com");
}

fn branch_of(base: u64, seq: u64) -> String {
    format!("{BRANCH_PREFIX}{:x}.{seq:x}", base & 0xffff_ffff)
}

fn new_pending(branch: String, data: Bytes, r: &Route, now_ms: u64, fr_ms: u64) -> Pending {
    let transmit = Transmit {
        data,
        dst: r.dst,
        proto: r.proto,
        socket: r.socket,
        local: None,
        conn: None,
        flags: Default::default(),
    };
    Pending {
        branch,
        transmit,
        next_retransmit: (!r.proto.is_reliable()).then_some(now_ms + T1_MS),
        retransmit_after: T1_MS,
        deadline: now_ms + fr_ms,
        route: r.clone(),
    }
}

/// The REGISTER, laid out as Kamailio's tm writes it: Request-URI
/// `sip:r_domain`, From and To `sip:r_username@r_domain`, then Contact
/// `<sip:l_uuid@contact_addr>`, Expires and the credentials.
#[allow(clippy::too_many_arguments)]
pub fn request(
    reg: &Reg,
    r: &Route,
    branch: &str,
    tag: &[u8],
    callid: &[u8],
    cseq: u32,
    auth_line: &[u8],
    user_agent: &[u8],
) -> Bytes {
    let rec = &reg.rec;
    let aor = format!("sip:{}@{}", rec.r_username, rec.r_domain);
    let mut hdrs = format!(
        "Contact: <sip:{}@{}>\r\nExpires: {}\r\n",
        rec.l_uuid, reg.contact_addr, rec.expires
    )
    .into_bytes();
    hdrs.extend_from_slice(auth_line);
    let req = UacReq {
        method: b"REGISTER".to_vec(),
        ruri: format!("sip:{}", rec.r_domain).into_bytes(),
        turi: aor.clone().into_bytes(),
        furi: aor.into_bytes(),
        hdrs,
        ..UacReq::default()
    };
    build_with(
        &req,
        &Head {
            via_host: &r.via_host,
            proto: r.proto,
            branch: branch.as_bytes(),
            tag,
            callid,
            cseq,
            user_agent,
        },
    )
}

/// Whether `msg` answers one of our REGISTERs.
pub fn is_ours(msg: &Message) -> bool {
    msg.status().is_some() && our_branch(msg).is_some()
}

/// The branch of the top Via when it is one of ours.
fn our_branch(msg: &Message) -> Option<String> {
    let via = msg.header_value(HeaderName::Via)?;
    let at = memchr::memmem::find(via, BRANCH_PREFIX.as_bytes())?;
    let rest = &via[at..];
    let end = rest
        .iter()
        .position(|&b| b == b';' || b == b',' || b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    String::from_utf8(rest[..end].to_vec()).ok()
}
