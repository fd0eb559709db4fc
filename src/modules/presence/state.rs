//! The presentities and subscriptions of every core, and what a PUBLISH or
//! SUBSCRIBE does to them (Kamailio 5.6's presence module). Plain values in,
//! decisions out: the caller reads the request and sends the reply and the
//! NOTIFYs ([`NotifyJob`]). Time is unix seconds, passed in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::db::Db;
use super::notify::NotifyJob;
use super::pidf;
use super::PresenceConfig;

/// An event package this server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// `presence`: PIDF documents (presence_xml).
    Presence,
    /// `presence.winfo` (RFC 3857): who watches a presentity.
    PresenceWinfo,
}

impl Event {
    /// The package of an Event header value, compared without case.
    /// Kamailio registers `presence` without parameters and matches the
    /// parameters too: `presence;id=1` is not a package it knows (489).
    pub fn parse(value: &[u8]) -> Option<Event> {
        let name = crate::sip::scan::trim_lws(value);
        if name.eq_ignore_ascii_case(b"presence") {
            Some(Event::Presence)
        } else if name.eq_ignore_ascii_case(b"presence.winfo") {
            Some(Event::PresenceWinfo)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Event::Presence => "presence",
            Event::PresenceWinfo => "presence.winfo",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Event::Presence => "application/pidf+xml",
            Event::PresenceWinfo => "application/watcherinfo+xml",
        }
    }
}

/// `Allow-Events` of a 489, as Kamailio lists what presence_xml registers.
pub const ALLOW_EVENTS: &str = "xcap-diff, presence.winfo, presence";

/// One publication (`presentity` row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    pub etag: String,
    /// Unix seconds at which it lapses.
    pub expires: i64,
    pub received: i64,
    pub body: Bytes,
    pub sender: String,
    pub priority: i64,
}

/// `(user, domain, event)` of a presentity.
pub type PresKey = (String, String, Event);

/// A subscription (`active_watchers` row), keyed by its dialog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub pres_uri: String,
    pub event: Event,
    pub event_id: Option<String>,
    pub to_user: String,
    pub to_domain: String,
    pub from_user: String,
    pub from_domain: String,
    pub watcher_user: String,
    pub watcher_domain: String,
    pub callid: String,
    pub to_tag: String,
    pub from_tag: String,
    pub remote_cseq: u32,
    /// The CSeq of the last NOTIFY is one more (Kamailio counts so).
    pub local_cseq: u32,
    pub version: u32,
    pub contact: String,
    /// The Record-Route of the SUBSCRIBE, as received (the route set).
    pub record_route: String,
    /// Unix seconds at which it lapses.
    pub expires: i64,
    pub status: Status,
    pub reason: Option<String>,
    /// `udp:ip:port` of the socket the SUBSCRIBE came in on.
    pub socket: String,
    pub local_contact: String,
    pub user_agent: String,
}

/// `Subscription-State` (and the `status` column: 1 active, 2 pending, 3 terminated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active = 1,
    Pending = 2,
    Terminated = 3,
}

/// The `Subscription-State` value of a NOTIFY for `s` at `now` (RFC 6665
/// §8.2.3): `active;expires=N` with the seconds left, `terminated;reason=timeout`
/// once none are.
pub fn subscription_state(s: &Subscription, now: i64) -> String {
    let left = (s.expires - now).max(0);
    match s.status {
        _ if left == 0 => "terminated;reason=timeout".to_string(),
        Status::Terminated => format!(
            "terminated;reason={}",
            s.reason.as_deref().unwrap_or("timeout")
        ),
        Status::Active => format!("active;expires={left}"),
        Status::Pending => format!("pending;expires={left}"),
    }
}

/// `(Call-ID, To-tag, From-tag)`.
pub type DialogKey = (String, String, String);

/// What a PUBLISH asks.
#[derive(Clone, Debug)]
pub struct PublishReq {
    pub user: String,
    pub domain: String,
    pub event: Event,
    /// `SIP-If-Match`.
    pub if_match: Option<String>,
    /// The Expires header, if any.
    pub expires: Option<u32>,
    /// The body (empty: none).
    pub body: Bytes,
    pub sender: String,
    pub now: i64,
}

/// How a PUBLISH is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishOutcome {
    /// `200 OK` with `Expires` and `SIP-ETag`; the watchers to notify.
    Ok {
        expires: u32,
        etag: String,
        notify: Vec<NotifyJob>,
    },
    /// An error reply.
    Error(u16, &'static str),
}

/// What a SUBSCRIBE asks (the dialog fields as received).
#[derive(Clone, Debug)]
pub struct SubscribeReq {
    pub event: Event,
    pub event_id: Option<String>,
    pub expires: Option<u32>,
    /// The presentity: `sip:user@host` of the Request-URI (initial SUBSCRIBE).
    pub pres_uri: String,
    pub to_user: String,
    pub to_domain: String,
    pub from_user: String,
    pub from_domain: String,
    pub watcher_user: String,
    pub watcher_domain: String,
    /// The To-tag received (in-dialog) or the one the reply gets (initial).
    pub to_tag: String,
    pub in_dialog: bool,
    pub callid: String,
    pub from_tag: String,
    pub remote_cseq: u32,
    pub contact: String,
    pub record_route: String,
    pub socket: String,
    pub local_contact: String,
    pub user_agent: String,
    pub now: i64,
}

/// How a SUBSCRIBE is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscribeOutcome {
    /// `200 OK` with `Expires` and `Contact`, then the NOTIFY, then the
    /// NOTIFYs of the presentity's watcher-info subscribers (`others`).
    Ok {
        expires: u32,
        local_contact: String,
        notify: Box<NotifyJob>,
        others: Vec<NotifyJob>,
    },
    /// `423 Interval Too Brief` with `Min-Expires`.
    TooBrief(u32),
    Error(u16, &'static str),
}

#[derive(Debug, Default)]
struct Tables {
    presentities: HashMap<PresKey, Vec<Publication>>,
    subs: HashMap<DialogKey, Subscription>,
}

/// The presence server's state, shared by every core.
#[derive(Debug)]
pub struct Presence {
    pub cfg: PresenceConfig,
    tables: Mutex<Tables>,
    db: Option<Db>,
    /// `a.<start-up unix time>.<pid>`: the ETags' fixed part.
    etag_prefix: String,
    counter: AtomicU64,
    pub(super) timer: super::timer::ExpiryTimer,
}

impl Presence {
    pub fn new(cfg: PresenceConfig, db: Option<Db>, startup_unix: i64, pid: u32) -> Presence {
        Presence {
            cfg,
            tables: Mutex::new(Tables::default()),
            db,
            etag_prefix: format!("a.{startup_unix}.{pid}"),
            counter: AtomicU64::new(0),
            timer: Default::default(),
        }
    }

    /// The expiry timer's controls (`presence.cleanup`, `presence.refreshWatchers`).
    pub fn timer(&self) -> &super::timer::ExpiryTimer {
        &self.timer
    }

    /// Takes what the database held at start-up.
    pub fn restore(&self, loaded: super::db::Loaded) {
        let mut t = self.tables();
        for (key, p) in loaded.presentities {
            t.presentities.entry(key).or_default().push(p);
        }
        for s in loaded.subscriptions {
            let key = (s.callid.clone(), s.to_tag.clone(), s.from_tag.clone());
            t.subs.insert(key, s);
        }
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh entity tag (RFC 3903 §4.1: unique for the presentity).
    fn new_etag(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}.{n}.{}", self.etag_prefix, n - 1)
    }

    /// The Expires a PUBLISH or SUBSCRIBE gets: the event's default
    /// without a header, cut to `max_expires`.
    pub fn expires(&self, asked: Option<u32>) -> u32 {
        asked
            .unwrap_or(self.cfg.default_expires)
            .min(self.cfg.max_expires)
    }

    /// RFC 3903 §6: a PUBLISH.
    pub fn publish(&self, req: PublishReq) -> PublishOutcome {
        let expires = self.expires(req.expires);
        let key: PresKey = (req.user.clone(), req.domain.clone(), req.event);
        // presence_xml reads the document first, whatever the ETag.
        if !req.body.is_empty() && !pidf::looks_like_xml(&req.body) {
            return PublishOutcome::Error(415, "Unsupported media type");
        }
        let mut t = self.tables();
        let now = req.now;
        let etag = match &req.if_match {
            None => {
                // An initial publication needs a body (§6 step 5).
                if req.body.is_empty() {
                    return PublishOutcome::Error(400, "Invalid request");
                }
                if !pidf::looks_like_xml(&req.body) {
                    return PublishOutcome::Error(415, "Unsupported media type");
                }
                let etag = self.new_etag();
                if expires == 0 {
                    return PublishOutcome::Ok {
                        expires,
                        etag,
                        notify: Vec::new(),
                    };
                }
                let p = Publication {
                    etag: etag.clone(),
                    expires: now + i64::from(expires),
                    received: now,
                    body: req.body.clone(),
                    sender: req.sender.clone(),
                    priority: 0,
                };
                if let Some(db) = &self.db {
                    db.presentity_insert(&self.cfg, &key, &p);
                }
                t.presentities.entry(key.clone()).or_default().push(p);
                etag
            }
            Some(old) => {
                let list = t.presentities.entry(key.clone()).or_default();
                let Some(i) = list.iter().position(|p| p.etag == *old && p.expires > now) else {
                    return PublishOutcome::Error(412, "Conditional request failed");
                };
                if expires == 0 {
                    let gone = list.remove(i);
                    if list.is_empty() {
                        t.presentities.remove(&key);
                    }
                    if let Some(db) = &self.db {
                        db.presentity_delete(&self.cfg, &key, &gone.etag);
                    }
                    let notify = self.changed(&mut t, &key, now);
                    return PublishOutcome::Ok {
                        expires: 0,
                        etag: old.clone(),
                        notify,
                    };
                }
                // A refresh or a modification gets a new entity tag (§4.1).
                let etag = self.new_etag();
                let p = &mut list[i];
                p.etag = etag.clone();
                p.expires = now + i64::from(expires);
                p.received = now;
                if !req.body.is_empty() {
                    p.body = req.body.clone();
                }
                if let Some(db) = &self.db {
                    db.presentity_update(&self.cfg, &key, old, p);
                }
                etag
            }
        };
        let notify = self.changed(&mut t, &key, now);
        PublishOutcome::Ok {
            expires,
            etag,
            notify,
        }
    }

    /// The NOTIFYs for every active watcher of `key`, its state at `now`.
    fn changed(&self, t: &mut Tables, key: &PresKey, now: i64) -> Vec<NotifyJob> {
        let uri = pres_uri(&key.0, &key.1);
        let body = aggregate(t, key, now);
        let mut jobs = Vec::new();
        let mut keys: Vec<&DialogKey> = t
            .subs
            .iter()
            .filter(|(_, s)| s.event == key.2 && s.pres_uri == uri && s.expires > now)
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        let keys: Vec<DialogKey> = keys.into_iter().cloned().collect();
        for k in keys {
            if let Some(s) = t.subs.get_mut(&k) {
                jobs.push(self.notify_job(s, body.clone(), now));
            }
        }
        jobs
    }

    /// The next NOTIFY of `s` (its CSeq and version counted).
    fn notify_job(&self, s: &mut Subscription, body: Option<Bytes>, now: i64) -> NotifyJob {
        s.local_cseq += 1;
        s.version += 1;
        if let Some(db) = &self.db {
            if s.expires > now {
                db.watcher_update(&self.cfg, s);
            }
        }
        self.notify_job_as_is(s, body, now)
    }

    /// A NOTIFY of `s` with the counters as they are.
    fn notify_job_as_is(&self, s: &Subscription, body: Option<Bytes>, now: i64) -> NotifyJob {
        NotifyJob::new(s, subscription_state(s, now), body)
    }

    /// RFC 6665 §4.2: a SUBSCRIBE.
    pub fn subscribe(&self, req: SubscribeReq) -> SubscribeOutcome {
        let mut expires = self.expires(req.expires);
        if expires != 0 && self.cfg.min_expires != 0 && expires < self.cfg.min_expires {
            if self.cfg.min_expires_action == 1 {
                return SubscribeOutcome::TooBrief(self.cfg.min_expires);
            }
            expires = self.cfg.min_expires;
        }
        let now = req.now;
        let key: DialogKey = (req.callid.clone(), req.to_tag.clone(), req.from_tag.clone());
        let mut t = self.tables();
        let mut sub = if req.in_dialog {
            let Some(s) = t.subs.get(&key).filter(|s| s.event == req.event) else {
                return SubscribeOutcome::Error(481, "Subscription does not exist");
            };
            if req.remote_cseq <= s.remote_cseq {
                return SubscribeOutcome::Error(400, "Bad request");
            }
            let mut s = s.clone();
            s.remote_cseq = req.remote_cseq;
            s.expires = now + i64::from(expires);
            s
        } else {
            Subscription {
                pres_uri: req.pres_uri.clone(),
                event: req.event,
                event_id: req.event_id.clone(),
                to_user: req.to_user.clone(),
                to_domain: req.to_domain.clone(),
                from_user: req.from_user.clone(),
                from_domain: req.from_domain.clone(),
                watcher_user: req.watcher_user.clone(),
                watcher_domain: req.watcher_domain.clone(),
                callid: req.callid.clone(),
                to_tag: req.to_tag.clone(),
                from_tag: req.from_tag.clone(),
                remote_cseq: req.remote_cseq,
                local_cseq: 0,
                version: 0,
                contact: req.contact.clone(),
                record_route: req.record_route.clone(),
                expires: now + i64::from(expires),
                // presence_xml force_active: no rules to ask.
                status: Status::Active,
                reason: None,
                socket: req.socket.clone(),
                local_contact: req.local_contact.clone(),
                user_agent: req.user_agent.clone(),
            }
        };
        let Some((user, domain)) = split_pres_uri(&sub.pres_uri) else {
            return SubscribeOutcome::Error(400, "Bad request");
        };
        let pkey: PresKey = (user, domain, Event::Presence);
        let body = match sub.event {
            Event::Presence => aggregate(&t, &pkey, now),
            Event::PresenceWinfo => None,
        };
        let winfo_full = sub.event == Event::PresenceWinfo;
        if expires == 0 {
            // An unsubscription: the last NOTIFY says terminated.
            t.subs.remove(&key);
            if req.in_dialog {
                if let Some(db) = &self.db {
                    db.watcher_delete(&self.cfg, &key);
                }
            }
            sub.expires = now;
            // Kamailio counts the NOTIFY of a subscription it keeps: an
            // initial SUBSCRIBE with Expires 0 gets one with CSeq 1.
            let notify = if req.in_dialog {
                sub.local_cseq += 1;
                sub.version += 1;
                let body = self.winfo_or(&t, &sub, winfo_full, body);
                self.notify_job_as_is(&sub, body, now)
            } else {
                let body = self.winfo_or(&t, &sub, winfo_full, body);
                self.notify_job_as_is(&sub, body, now)
            };
            // The watcher left: its presentity's watcher-info subscribers
            // get the whole list again.
            let others = match (req.in_dialog, sub.event) {
                (true, Event::Presence) => self.winfo_notify(&mut t, &sub.pres_uri, None, now),
                _ => Vec::new(),
            };
            return SubscribeOutcome::Ok {
                expires,
                local_contact: sub.local_contact.clone(),
                notify: Box::new(notify),
                others,
            };
        }
        sub.local_cseq += 1;
        sub.version += 1;
        let body = self.winfo_or(&t, &sub, winfo_full, body);
        if let Some(db) = &self.db {
            if req.in_dialog {
                db.watcher_update(&self.cfg, &sub);
            } else {
                db.watcher_insert(&self.cfg, &sub);
                if sub.event == Event::Presence {
                    db.watchers_authorized(&self.cfg, &sub, now);
                }
            }
        }
        let local_contact = sub.local_contact.clone();
        let new_watcher = (!req.in_dialog && sub.event == Event::Presence).then(|| sub.clone());
        let notify = self.notify_job_as_is(&sub, body, now);
        t.subs.insert(key, sub);
        // A new watcher: the watcher-info subscribers hear of it alone.
        let others = match new_watcher {
            Some(w) => self.winfo_notify(&mut t, &w.pres_uri, Some(&w), now),
            None => Vec::new(),
        };
        SubscribeOutcome::Ok {
            expires,
            local_contact,
            notify: Box::new(notify),
            others,
        }
    }

    /// `body` for a presence subscription; for a watcher-info one the
    /// full list of the presentity's watchers (`full`), at `s`'s version.
    fn winfo_or(
        &self,
        t: &Tables,
        s: &Subscription,
        full: bool,
        body: Option<Bytes>,
    ) -> Option<Bytes> {
        if !full {
            return body;
        }
        let watchers = watchers_of(t, &s.pres_uri);
        Some(super::notify::winfo_document(
            &s.pres_uri,
            s.version,
            true,
            &watchers,
        ))
    }

    /// The NOTIFYs of the watcher-info subscribers of `pres_uri`: the new
    /// watcher alone (`partial`), or the whole list (`full`).
    fn winfo_notify(
        &self,
        t: &mut Tables,
        pres_uri: &str,
        new: Option<&Subscription>,
        now: i64,
    ) -> Vec<NotifyJob> {
        let watchers = match new {
            Some(w) => vec![watcher_line(w)],
            None => watchers_of(t, pres_uri),
        };
        let mut keys: Vec<DialogKey> = t
            .subs
            .iter()
            .filter(|(_, s)| {
                s.event == Event::PresenceWinfo && s.pres_uri == pres_uri && s.expires > now
            })
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        let mut jobs = Vec::new();
        for k in keys {
            if let Some(s) = t.subs.get_mut(&k) {
                s.local_cseq += 1;
                s.version += 1;
                let body =
                    super::notify::winfo_document(pres_uri, s.version, new.is_none(), &watchers);
                if let Some(db) = &self.db {
                    db.watcher_update(&self.cfg, s);
                }
                jobs.push(NotifyJob::new(s, subscription_state(s, now), Some(body)));
            }
        }
        jobs
    }

    /// The expiry timer: publications and subscriptions past their time are
    /// forgotten (and deleted from the tables); the watchers of a presentity
    /// that lost a publication are told, the NOTIFYs returned.
    pub fn expire(&self, now: i64) -> Vec<NotifyJob> {
        let mut t = self.tables();
        let mut touched = Vec::new();
        let mut gone = Vec::new();
        t.presentities.retain(|key, list| {
            list.retain(|p| {
                let keep = p.expires > now;
                if !keep {
                    gone.push((key.clone(), p.etag.clone()));
                }
                keep
            });
            !list.is_empty()
        });
        for (key, etag) in gone {
            if let Some(db) = &self.db {
                db.presentity_delete(&self.cfg, &key, &etag);
            }
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        let mut jobs = Vec::new();
        for key in &touched {
            jobs.extend(self.changed(&mut t, key, now));
        }
        let expired: Vec<DialogKey> = t
            .subs
            .iter()
            .filter(|(_, s)| s.expires <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut left = Vec::new();
        for k in expired {
            if let Some(mut s) = t.subs.remove(&k) {
                if let Some(db) = &self.db {
                    db.watcher_delete(&self.cfg, &k);
                }
                let (user, domain) = split_pres_uri(&s.pres_uri).unwrap_or_default();
                let body = match s.event {
                    Event::Presence => aggregate(&t, &(user, domain, Event::Presence), now),
                    Event::PresenceWinfo => None,
                };
                s.local_cseq += 1;
                s.version += 1;
                let body = self.winfo_or(&t, &s, s.event == Event::PresenceWinfo, body);
                jobs.push(self.notify_job_as_is(&s, body, now));
                if s.event == Event::Presence && !left.contains(&s.pres_uri) {
                    left.push(s.pres_uri.clone());
                }
            }
        }
        for uri in left {
            jobs.extend(self.winfo_notify(&mut t, &uri, None, now));
        }
        jobs
    }

    /// `presence.refreshWatchers`: a NOTIFY with the current state to every
    /// watcher of `uri` (`sip:user@domain`) for `event`.
    pub fn refresh_watchers(&self, uri: &str, event: Event, now: i64) -> Vec<NotifyJob> {
        let mut t = self.tables();
        match event {
            Event::Presence => {
                let Some((user, domain)) = split_pres_uri(uri) else {
                    return Vec::new();
                };
                self.changed(&mut t, &(user, domain, Event::Presence), now)
            }
            Event::PresenceWinfo => self.winfo_notify(&mut t, uri, None, now),
        }
    }

    /// How many publications and subscriptions are held (tests, RPC).
    pub fn counts(&self) -> (usize, usize) {
        let t = self.tables();
        (t.presentities.values().map(Vec::len).sum(), t.subs.len())
    }

    /// The subscription of a dialog (tests).
    pub fn subscription(&self, key: &DialogKey) -> Option<Subscription> {
        self.tables().subs.get(key).cloned()
    }
}

/// A watcher as a watcher-info document lists it.
fn watcher_line(s: &Subscription) -> super::notify::WatcherLine {
    super::notify::WatcherLine {
        id: s.callid.clone(),
        uri: format!("sip:{}@{}", s.watcher_user, s.watcher_domain),
        status: match s.status {
            Status::Active => "active",
            Status::Pending => "pending",
            Status::Terminated => "terminated",
        },
    }
}

/// The presence watchers of `pres_uri`, by Call-ID.
fn watchers_of(t: &Tables, pres_uri: &str) -> Vec<super::notify::WatcherLine> {
    let mut subs: Vec<&Subscription> = t
        .subs
        .values()
        .filter(|s| s.event == Event::Presence && s.pres_uri == pres_uri)
        .collect();
    subs.sort_by(|a, b| a.callid.cmp(&b.callid));
    subs.into_iter().map(watcher_line).collect()
}

/// The document the watchers of `key` get: the live publications merged
/// ([`pidf::aggregate`]), oldest first; `None` without any.
fn aggregate(t: &Tables, key: &PresKey, now: i64) -> Option<Bytes> {
    let list = t.presentities.get(key)?;
    let mut live: Vec<&Publication> = list.iter().filter(|p| p.expires > now).collect();
    live.sort_by_key(|p| p.received);
    let bodies: Vec<&[u8]> = live.iter().map(|p| p.body.as_ref()).collect();
    pidf::aggregate(&bodies)
}

/// `sip:user@domain`, as Kamailio writes a presentity URI.
pub fn pres_uri(user: &str, domain: &str) -> String {
    format!("sip:{user}@{domain}")
}

/// `(user, domain)` of `sip:user@domain`.
pub fn split_pres_uri(uri: &str) -> Option<(String, String)> {
    let u = crate::sip::uri::Uri::parse(uri.as_bytes()).ok()?;
    let user = String::from_utf8_lossy(u.user().unwrap_or(b"")).into_owned();
    let host = String::from_utf8_lossy(u.host_raw()).into_owned();
    Some((user, host))
}
