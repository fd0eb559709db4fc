//! The expiry timer (`clean_period`): publications and subscriptions past
//! their time are dropped; the watchers of a presentity that lost one are
//! told, and a subscription that ran out gets its last NOTIFY
//! (`Subscription-State: terminated;reason=timeout`). These NOTIFYs leave
//! outside any SIP transaction (sent once, to an address Contact or first
//! route; a host name is not resolved here), and their answers are taken
//! here ([`LocalRequests::on_reply`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::script::ctx::{Env, LocalEvent, LocalRequests};
use crate::sip::uri::{Host, Uri};
use crate::sip::{HeaderName, Message, Proto, Transmit};

use super::notify::NotifyJob;
use super::state::Presence;

/// The branch of a NOTIFY this timer sent.
const BRANCH_PREFIX: &[u8] = b"z9hG4bKpres";

/// The expiry timer's own state.
#[derive(Debug, Default)]
pub struct ExpiryTimer {
    next_round: Mutex<Option<Instant>>,
    seq: AtomicU64,
    /// `presence.cleanup` asked for a round at the next tick.
    forced: std::sync::atomic::AtomicBool,
    /// `presence.refreshWatchers`: presentities whose watchers are told again.
    refresh: Mutex<Vec<(String, super::state::Event)>>,
}

impl ExpiryTimer {
    /// `presence.cleanup`: the expiry round runs at the next tick.
    pub fn force(&self) {
        self.forced.store(true, Ordering::Relaxed);
    }

    /// `presence.refreshWatchers URI EVENT`: the watchers of `uri` get a
    /// NOTIFY with the current state at the next tick.
    pub fn refresh(&self, uri: String, event: super::state::Event) {
        self.refresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((uri, event));
    }
}

/// Where a NOTIFY to `uri` goes: an address URI's host, port and transport.
pub fn destination(uri: &str) -> Option<(SocketAddr, Proto)> {
    let u = Uri::parse(uri.as_bytes()).ok()?;
    let ip = match u.host()? {
        Host::V4(a) => IpAddr::V4(a),
        Host::V6(a) => IpAddr::V6(a),
        Host::Name(_) => return None,
    };
    let proto = u.transport().unwrap_or(Proto::Udp);
    let port = u.port().unwrap_or(proto.default_port());
    Some((SocketAddr::new(ip, port), proto))
}

impl Presence {
    fn send_stateless(&self, env: &Env, job: &NotifyJob, out: &mut Vec<Transmit>) {
        let Some((dst, proto)) = destination(&job.next_hop()) else {
            log::warn!("presence: no address to send the NOTIFY to {}", job.contact);
            return;
        };
        let Some(sock) = env.socket_for(proto, &dst, None) else {
            return;
        };
        let info = &env.sockets[usize::from(sock)];
        let mut via = Vec::new();
        match &info.advertise {
            Some((h, p)) => via.extend_from_slice(format!("{h}:{p}").as_bytes()),
            None if crate::script::ctx::omits_port(proto, info.addr.port()) => {
                crate::script::ctx::push_host(&mut via, info.addr.ip())
            }
            None => crate::script::ctx::push_hostport(&mut via, info.addr),
        }
        let n = self.timer.seq.fetch_add(1, Ordering::Relaxed);
        let mut branch = BRANCH_PREFIX.to_vec();
        branch.extend_from_slice(format!("{n:x}").as_bytes());
        out.push(Transmit {
            data: job.build(proto, &via, &branch, &env.user_agent),
            dst,
            proto,
            socket: Some(sock),
            local: None,
            conn: None,
            flags: Default::default(),
        });
    }
}

impl LocalRequests for Presence {
    fn interval(&self) -> Duration {
        self.cfg.clean_period.min(Duration::from_secs(1))
    }

    fn on_timer(&self, env: &Env, now: Instant, out: &mut Vec<Transmit>, _: &mut Vec<LocalEvent>) {
        let unix = (env.epoch.unix_ms(now) / 1000) as i64;
        let asked: Vec<_> =
            std::mem::take(&mut *self.timer.refresh.lock().unwrap_or_else(|e| e.into_inner()));
        for (uri, event) in asked {
            for job in self.refresh_watchers(&uri, event, unix) {
                self.send_stateless(env, &job, out);
            }
        }
        let forced = self.timer.forced.swap(false, Ordering::Relaxed);
        if !forced {
            let mut next = self
                .timer
                .next_round
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match *next {
                None => {
                    *next = Some(now + self.cfg.clean_period);
                    return;
                }
                Some(at) if at > now => return,
                Some(_) => *next = Some(now + self.cfg.clean_period),
            }
        }
        for job in self.expire(unix) {
            self.send_stateless(env, &job, out);
        }
    }

    fn on_reply(&self, msg: &Message, _: Instant, _: &mut Vec<LocalEvent>) -> bool {
        msg.header_value(HeaderName::Via)
            .is_some_and(|v| memchr::memmem::find(v, BRANCH_PREFIX).is_some())
    }
}
