//! The context a route runs in: the message, where it came from, what the
//! script changed so far, and what it asked to send. Shared settings live in
//! [`Env`] (read-only, all cores), per-core state in [`CoreState`].

use std::any::Any;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::attrs::Attrs;
use super::ir::{Format, FormatPart, Program};
use super::registry::RouteType;
use super::shared::SharedState;
use super::value::Value;
use crate::sip::host::PushBytes;
use crate::sip::{ConnId, Edits, Message, Proto, SocketId, Transmit};

/// A listening socket as the script and the modules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    pub proto: Proto,
    /// The bound address (for a wildcard bind, the wildcard).
    pub addr: SocketAddr,
    /// `advertise host:port`: what to write in Via and Record-Route instead.
    pub advertise: Option<(String, u16)>,
}

/// What ringsip calls itself in the Server and User-Agent headers it writes
/// unless the configuration names something else.
pub const DEFAULT_USER_AGENT: &[u8] =
    concat!("ringsip (", env!("CARGO_PKG_VERSION"), ")").as_bytes();

/// Settings shared read-only by every core.
#[derive(Debug, Clone)]
pub struct Env {
    pub sockets: Vec<SocketInfo>,
    /// `alias=` host names and addresses (with an optional port) that are "myself".
    pub aliases: Vec<(String, Option<u16>)>,
    /// Log level (`debug=`): messages at or below it are printed.
    pub debug: i32,
    /// `Server:` value on local replies (`server_header`; empty with
    /// `server_signature=no`: no header).
    pub server_header: Bytes,
    /// `User-Agent:` value on requests ringsip makes itself
    /// (`user_agent_header`; empty with `server_signature=no`).
    pub user_agent: Bytes,
    /// Secret mixed into stateless branches and To-tags.
    pub secret: u64,
    /// `$shv` variables and hash tables, shared by every core (one
    /// [`SharedState::for_program`] cloned into each core's `Env`).
    pub shared: Arc<SharedState>,
    /// Maps the monotonic `now` to unix time (`$Ts`, `$TV`).
    pub clock: WallClock,
    /// `$pp`: the process id, as the runtime reports it.
    pub pid: u32,
    /// Wall-clock time as modules see it (registration expiry, nonces).
    pub epoch: Epoch,
    /// Module state shared by every core (registrations, credentials, address groups).
    pub services: Shared,
    /// Each socket's Via / Record-Route address text, formatted at first use
    /// ([`Env::sent_by`]).
    pub sent_by: SentByCache,
    /// The `listen=… name "id"` of each socket, by the index of `sockets`
    /// (`$Rn`, `$fsn`); shorter or empty when sockets have no names.
    pub socket_names: Vec<Option<Box<str>>>,
}

/// How each listen socket of an [`Env`] names itself in Via and Record-Route,
/// formatted once (at the first request forwarded) instead of per request.
#[derive(Clone, Debug, Default)]
pub struct SentByCache(std::sync::OnceLock<Box<[Option<SentBy>]>>);

/// One socket's address text, with what it was formatted from: it is used
/// only while the socket still has that address and advertised address.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SentBy {
    addr: SocketAddr,
    advertise: Option<(String, u16)>,
    /// `host:port`: the advertised one, else the bound address (IPv6 in brackets).
    text: Box<[u8]>,
    /// How much of `text` a Via or a Record-Route writes: all of it, but
    /// the host alone for a bound address on port 5060.
    rr_len: usize,
}

impl SentBy {
    /// `None` for a wildcard bind without advertised address: its address
    /// is the one each request arrived on.
    fn of(s: &SocketInfo) -> Option<SentBy> {
        let mut text = Vec::new();
        let rr_len = match &s.advertise {
            Some((h, p)) => {
                text.extend_from_slice(h.as_bytes());
                text.push(b':');
                text.extend_from_slice(itoa::Buffer::new().format(*p).as_bytes());
                text.len()
            }
            None if s.addr.ip().is_unspecified() => return None,
            None => {
                push_hostport(&mut text, s.addr);
                match omits_port(s.proto, s.addr.port()) {
                    true => text.len() - b":5060".len(),
                    false => text.len(),
                }
            }
        };
        Some(SentBy {
            addr: s.addr,
            advertise: s.advertise.clone(),
            text: text.into_boxed_slice(),
            rr_len,
        })
    }
}

/// Whether our Via and Record-Route leave out the port of a bound address:
/// 5060, as Kamailio does, but not over TLS (whose default is 5061, which
/// an absent port would mean).
pub fn omits_port(proto: Proto, port: u16) -> bool {
    port == 5060 && proto != Proto::Tls
}

/// The wall clock as seen from the sans-IO layers: the unix time at one
/// `Instant`, read by the runtime at start-up. Unix time at a later `now` is
/// that plus the monotonic time elapsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WallClock {
    /// The monotonic instant the reading was taken at (`None`: unix time is
    /// `unix_at_base` whatever `now` is, as in tests).
    pub base: Option<Instant>,
    /// Time since the unix epoch at `base`.
    pub unix_at_base: Duration,
}

impl WallClock {
    /// Unix time at `now`.
    pub fn unix(&self, now: Instant) -> Duration {
        match self.base {
            Some(base) => self.unix_at_base + now.saturating_duration_since(base),
            None => self.unix_at_base,
        }
    }
}

/// Wall-clock time without reading the clock: `now` (monotonic) measured from
/// an anchor the runtime took once at start-up. With no anchor (tests), the
/// time is `unix_ms` for every `now`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Epoch {
    pub at: Option<Instant>,
    /// Milliseconds since 1970 at `at`.
    pub unix_ms: u64,
}

impl Epoch {
    /// Milliseconds since 1970 at `now`.
    pub fn unix_ms(&self, now: Instant) -> u64 {
        match self.at {
            Some(at) if now >= at => self.unix_ms + (now - at).as_millis() as u64,
            Some(at) => self.unix_ms.saturating_sub((at - now).as_millis() as u64),
            None => self.unix_ms,
        }
    }
}

/// Periodic work on shared module state (usrloc expiry and write-back). Every
/// core's engine calls it once per interval; an implementation that must run
/// once per interval in all makes the cores agree (e.g. with an atomic).
pub trait SharedTimer: Send + Sync {
    fn interval(&self) -> Duration;
    fn on_timer(&self, unix_ms: u64);
}

/// A module that sends requests of its own and takes their replies
/// (dispatcher keep-alive OPTIONS). Every core's engine calls
/// [`LocalRequests::on_timer`] each interval (an implementation makes the
/// cores take turns) and offers it every received reply before the script
/// sees it.
pub trait LocalRequests: Send + Sync {
    fn interval(&self) -> Duration;
    /// Work due at `now`: requests go to `out`, event routes to run to `events`.
    fn on_timer(
        &self,
        env: &Env,
        now: Instant,
        out: &mut Vec<Transmit>,
        events: &mut Vec<LocalEvent>,
    );
    /// Whether `msg` (a reply) answers one of this module's requests; if so
    /// it is consumed here.
    fn on_reply(&self, msg: &Message, now: Instant, events: &mut Vec<LocalEvent>) -> bool;
    /// [`LocalRequests::on_reply`] for a module that may answer a reply at
    /// once with a request of its own (uac registrations answer a 401).
    fn on_reply_sending(
        &self,
        env: &Env,
        msg: &Message,
        now: Instant,
        out: &mut Vec<Transmit>,
        events: &mut Vec<LocalEvent>,
    ) -> bool {
        let _ = (env, out);
        self.on_reply(msg, now, events)
    }
}

/// A route to run on `msg` (a request the module made), with `$du` set.
#[derive(Debug)]
pub struct LocalEvent {
    pub route: LocalRoute,
    pub msg: Message,
    pub dst_uri: Option<Bytes>,
}

/// Which route a [`LocalEvent`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalRoute {
    /// `event_route[NAME]`, when the script has it.
    Event(&'static str),
    /// `route[NAME]`, run as a request route (rtimer).
    Request(String),
}

/// Module state shared by every core, built at start-up and looked up by type
/// (a handful of entries: a scan is cheaper than a hash).
#[derive(Clone, Default)]
pub struct Shared {
    items: Vec<Arc<dyn Any + Send + Sync>>,
    timers: Vec<Arc<dyn SharedTimer>>,
    requesters: Vec<Arc<dyn LocalRequests>>,
}

impl Shared {
    /// Adds (or replaces) the state of type `T`.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.items.retain(|i| !i.is::<T>());
        self.items.push(value);
    }

    /// The state of type `T`, if a module put one there.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.items.iter().find_map(|i| i.downcast_ref::<T>())
    }

    /// The state of type `T`, shared (for a stage that keeps it).
    pub fn get_arc<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let item = self.items.iter().find(|i| i.is::<T>())?.clone();
        item.downcast::<T>().ok()
    }

    /// Registers periodic work (see [`SharedTimer`]).
    pub fn add_timer(&mut self, timer: Arc<dyn SharedTimer>) {
        self.timers.push(timer);
    }

    pub fn timers(&self) -> &[Arc<dyn SharedTimer>] {
        &self.timers
    }

    /// Registers a module that sends requests of its own (see [`LocalRequests`]).
    pub fn add_requester(&mut self, r: Arc<dyn LocalRequests>) {
        self.requesters.push(r);
    }

    pub fn requesters(&self) -> &[Arc<dyn LocalRequests>] {
        &self.requesters
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Shared({} items, {} timers)",
            self.items.len(),
            self.timers.len()
        )
    }
}

/// An extra target for the request besides the R-URI (usrloc `lookup` with
/// more than one contact). tm forks to these in parallel; the stateless
/// `forward()` uses only the R-URI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Branch {
    pub uri: Bytes,
    /// q in thousandths; -1 when unspecified.
    pub q: i32,
    /// Next hop (`$du` of the branch): the first Path URI or the received address.
    pub dst_uri: Option<Bytes>,
    /// The Path to put in Route headers.
    pub path: Option<Bytes>,
    /// Branch flags.
    pub flags: u32,
    /// The socket to send from (`udp:IP:PORT`), when the contact was bound to one.
    pub socket: Option<Bytes>,
}

/// Credentials that an auth function accepted for this message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    /// Index of the (Proxy-)Authorization header in the message.
    pub header: usize,
    pub username: Bytes,
    pub realm: Bytes,
}

impl Default for Env {
    fn default() -> Env {
        Env {
            sockets: Vec::new(),
            aliases: Vec::new(),
            debug: 2,
            server_header: Bytes::from_static(DEFAULT_USER_AGENT),
            user_agent: Bytes::from_static(DEFAULT_USER_AGENT),
            secret: 0x5eed_5eed_5eed_5eed,
            shared: Arc::new(SharedState::default()),
            clock: WallClock::default(),
            pid: 0,
            epoch: Epoch::default(),
            services: Shared::default(),
            sent_by: SentByCache::default(),
            socket_names: Vec::new(),
        }
    }
}

impl Env {
    /// Default settings with fresh shared state (`$shv`, hash tables) for `program`.
    pub fn for_program(program: &Program) -> Env {
        Env {
            shared: Arc::new(SharedState::for_program(program)),
            ..Env::default()
        }
    }

    /// RFC 3261 "myself": a host (and port; none means the transport default)
    /// that is one of our listen addresses, advertised addresses or aliases.
    pub fn is_myself(&self, host: &[u8], port: Option<u16>, proto: Option<Proto>) -> bool {
        let ip = crate::sip::host::parse_ip_bytes(trim_brackets(host));
        self.is_myself_host(host, ip, port, proto)
    }

    /// [`Env::is_myself`] for a host the caller already read: `ip` is its
    /// address (`None` for a name), as a parsed URI holds it.
    pub fn is_myself_host(
        &self,
        host: &[u8],
        ip: Option<std::net::IpAddr>,
        port: Option<u16>,
        proto: Option<Proto>,
    ) -> bool {
        let host = trim_brackets(host);
        for s in &self.sockets {
            let default = proto.unwrap_or(s.proto).default_port();
            let want_port = port.unwrap_or(default);
            if let Some((adv_host, adv_port)) = &s.advertise {
                if adv_host.as_bytes().eq_ignore_ascii_case(host) && *adv_port == want_port {
                    return true;
                }
            }
            if s.addr.port() != want_port {
                continue;
            }
            if let Some(ip) = ip {
                if s.addr.ip() == ip || (s.addr.ip().is_unspecified() && ip.is_loopback()) {
                    return true;
                }
            }
        }
        let alias = self.aliases.iter().any(|(name, p)| {
            let name_ok = trim_brackets(name.as_bytes()).eq_ignore_ascii_case(host);
            let default = proto.unwrap_or(Proto::Udp).default_port();
            name_ok && p.is_none_or(|p| p == port.unwrap_or(default))
        });
        // corex `alias_subdomains`: a domain and everything under it; then
        // the domain module's table with `register_myself` (any port, as
        // Kamailio's check_self callbacks run after sockets and aliases).
        alias
            || self
                .services
                .get::<crate::modules::corex::alias::AliasSubdomains>()
                .is_some_and(|a| a.matches(host, port, proto))
            || self
                .services
                .get::<crate::modules::domain::Domains>()
                .is_some_and(|d| d.is_myself(host))
    }

    /// The `host:port` of socket `id` (its advertised address, else its
    /// bound one), and how many of those bytes our Via and Record-Route
    /// write (as Kamailio: no `:5060` after a bound address). Formatted once
    /// per `Env`. `None`
    /// for a wildcard bind without advertised address (the address is the
    /// request's) or an unknown socket.
    pub fn sent_by(&self, id: SocketId) -> Option<(&[u8], usize)> {
        let info = self.sockets.get(usize::from(id))?;
        let all = self
            .sent_by
            .0
            .get_or_init(|| self.sockets.iter().map(SentBy::of).collect());
        // A socket changed since (only possible through `&mut Env`): not cached.
        let s = all
            .get(usize::from(id))?
            .as_ref()
            .filter(|s| s.addr == info.addr && s.advertise == info.advertise)?;
        Some((&s.text, s.rr_len))
    }

    /// The socket to send from toward `dst` over `proto`: the preferred one if it
    /// fits, else the first of the same transport and address family (for
    /// `ws`/`wss`, a TCP/TLS socket: see [`Proto::carrier`]).
    pub fn socket_for(
        &self,
        proto: Proto,
        dst: &SocketAddr,
        preferred: Option<SocketId>,
    ) -> Option<SocketId> {
        let proto = proto.carrier();
        let fits = |s: &SocketInfo| s.proto == proto && s.addr.is_ipv4() == dst.is_ipv4();
        if let Some(p) = preferred {
            if self.sockets.get(usize::from(p)).is_some_and(fits) {
                return Some(p);
            }
        }
        self.sockets.iter().position(fits).map(|i| i as SocketId)
    }
}

fn trim_brackets(h: &[u8]) -> &[u8] {
    match h {
        [b'[', inner @ .., b']'] => inner,
        _ => h,
    }
}

/// State a core keeps across messages.
#[derive(Debug, Default)]
pub struct CoreState {
    /// `$var(x)` values by slot (they persist across messages, as in Kamailio).
    pub vars: Vec<Value<'static>>,
    /// Reusable output buffer for serializing.
    pub scratch: Vec<u8>,
    /// This core's transactions (tm), made on first use.
    pub tm: Option<crate::tm::TransactionTable<crate::modules::tm::TxData>>,
    /// This core's script counters (counters module); `ctl` merges the cores' values.
    pub counters: crate::modules::counters::Counters,
    /// `$mi`: counts the messages this core received.
    pub msg_id: u64,
    /// sqlops results (`$dbr`), kept per core as Kamailio keeps them per process.
    pub sqlops: crate::modules::sqlops::Results,
    /// `$uac_req(...)`: the request uac's `uac_req_send()` sends (per core,
    /// as Kamailio keeps it per process).
    pub uac_req: crate::modules::uac::send::UacReq,
    /// `$sbranch(...)`: the static branch the pv module's `sbranch_*`
    /// functions use; it lasts across messages (as Kamailio's per process).
    pub sbranch: Option<Branch>,
    /// `$jsonrpl(...)`: the last answer of jsonrpcs's `jsonrpc_exec()` (per
    /// core, as Kamailio keeps it per process).
    pub jsonrpl: crate::modules::jsonrpcs::PlainReply,
    /// registrar's `reg_fetch_contacts` profiles (`$ulc`), kept across
    /// messages as Kamailio keeps them per process.
    pub ulc: crate::modules::registrar::fetch::Profiles,
    /// Requests the async module parked on this core, earliest first.
    pub parked: crate::modules::r#async::ParkedList,
    /// `$shtrecord(key|value)`: the hash-table item whose expiry runs
    /// `event_route[htable:expired:NAME]` now.
    pub sht_record: Option<(Vec<u8>, Value<'static>)>,
    /// The transactions siptrace follows on this core (`sip_trace` mode `t`).
    pub siptrace: crate::modules::siptrace::Traced,
    /// The items `mq_fetch` took on this core (`$mqk`, `$mqv`), kept across
    /// messages as Kamailio keeps them per process.
    pub mqueue: crate::modules::mqueue::Fetched,
}

impl CoreState {
    pub fn new(program: &Program) -> CoreState {
        let mut vars = vec![Value::Int(0); program.var_slots];
        for (slot, v) in &program.var_init {
            if let Some(cell) = vars.get_mut(*slot as usize) {
                *cell = v.clone();
            }
        }
        CoreState {
            vars,
            scratch: Vec::with_capacity(4096),
            tm: None,
            counters: Default::default(),
            msg_id: 0,
            sqlops: Default::default(),
            uac_req: Default::default(),
            sbranch: None,
            jsonrpl: None,
            ulc: Default::default(),
            parked: Default::default(),
            sht_record: None,
            siptrace: Default::default(),
            mqueue: Default::default(),
        }
    }
}

/// Text of an address, formatted once per message on first read (`$si`,
/// `$Ri`, `$su`) into a buffer inside the context: no allocation.
#[derive(Clone, Copy)]
pub struct AddrText {
    buf: [u8; 56],
    len: u8,
}

impl AddrText {
    /// Formats `args` (at most 56 bytes; an IPv6 `sip:[addr]:port` fits).
    pub fn new(args: fmt::Arguments<'_>) -> AddrText {
        let mut t = AddrText {
            buf: [0; 56],
            len: 0,
        };
        let _ = fmt::write(&mut t, args);
        t
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl fmt::Write for AddrText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let at = usize::from(self.len);
        let end = at + s.len();
        let dst = self.buf.get_mut(at..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end as u8;
        Ok(())
    }
}

impl fmt::Debug for AddrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// What pseudo-variable reads work out once per message: formatted
/// addresses, and where the parts of the received Request-URI are.
#[derive(Debug, Default)]
pub struct ReadCache {
    pub src_ip: OnceCell<AddrText>,
    pub local_ip: OnceCell<AddrText>,
    pub src_uri: OnceCell<AddrText>,
    /// The received Request-URI's parts (`None` inside: it does not parse).
    /// Only for the URI as received: a rewritten one is parsed when read.
    pub received_ruri: OnceCell<Option<UriParts>>,
}

/// Where the user and host of a URI are, and its port (explicit, or the
/// transport's default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriParts {
    pub user: Option<std::ops::Range<usize>>,
    pub host: std::ops::Range<usize>,
    pub port: Option<u16>,
}

/// Everything a route sees and changes while handling one message.
pub struct MsgCtx<'a> {
    pub env: &'a Env,
    pub program: &'a Program,
    pub core: &'a mut CoreState,
    pub msg: &'a Message,
    pub src: SocketAddr,
    pub local: SocketAddr,
    pub proto: Proto,
    pub socket: SocketId,
    /// The stream connection the message arrived on (`None` for UDP).
    pub conn: Option<ConnId>,
    pub now: Instant,
    pub route_type: RouteType,
    /// Changes to the message, applied when it is sent.
    pub edits: Edits,
    /// The Request-URI after rewriting (`$ru = …`), if rewritten.
    pub new_uri: Option<Bytes>,
    /// `$du`: the next hop, if set.
    pub dst_uri: Option<Bytes>,
    /// The Path of the Request-URI's branch (from `lookup`), put in front of
    /// the request as Route headers when it is forwarded (RFC 3327 §5.3).
    pub path_vec: Option<Bytes>,
    /// Message flags (`setflag`).
    pub flags: u64,
    /// `$retcode` of the last function or route call.
    pub retcode: i32,
    /// The socket to send from, when forced (`force_send_socket`, or the rr
    /// module following our own Route); `None` prefers the receiving socket.
    pub force_socket: Option<SocketId>,
    /// Record-Route asked for and what `loose_route()` found (rr module);
    /// the Record-Route is written when the request is sent.
    pub rr: crate::modules::rr::RrState,
    /// The transaction of this message and the routes armed for it (tm module).
    pub t: crate::modules::tm::TmMsg,
    /// What core, kex, textops and sanity functions recorded for this message
    /// besides edits: rport and connection options, script and branch flags,
    /// headers and body for a local reply (see [`crate::modules::state`]).
    pub state: crate::modules::state::MsgState,
    /// Room for the message as re-parsed by `msg_apply_changes()` (textopsx):
    /// the one place where a message is re-parsed, as Kamailio does too. Each
    /// call takes the next empty cell; an empty slice disables the function.
    pub rebase: &'a [std::cell::OnceCell<Message>],
    /// Messages to send.
    pub out: &'a mut Vec<Transmit>,
    /// `$avp` / `$xavp` values (per message until tm keeps them per transaction).
    pub attrs: Attrs,
    /// In `onsend_route`: where the message is being sent (`snd_ip`, `snd_port`…).
    pub send_dst: Option<(SocketAddr, Proto)>,
    /// In `onsend_route`: the message as it will be sent (`$snd(buf)`).
    pub send_buf: Option<Bytes>,
    /// In `onsend_route`: the local address it leaves from (`$sndfrom(ip)`).
    pub send_local: Option<SocketAddr>,
    /// Unix time of this message (`$Ts`, `$TV`), from [`Env::clock`] and `now`.
    pub unix_now: Duration,
    /// `$si`, `$Ri`, `$su` formatted, the received R-URI parsed, on first use.
    pub cache: ReadCache,
    /// Targets besides the R-URI (see [`Branch`]).
    pub branches: Vec<Branch>,
    /// Credentials accepted by an auth function (for `consume_credentials`, `check_to`).
    pub authorized: Option<Authorized>,
    /// The received top Via, parsed on first use (forwarding and replies
    /// read it several times per message); reset when `msg` is replaced.
    pub top_via: OnceCell<Option<(usize, crate::sip::via::Via<'a>)>>,
    /// `sht_lock` locks this message holds (let go when the context is dropped).
    pub sht_locks: super::shared::HeldLocks,
    /// `sht_iterator_*` iterators of this message.
    pub sht_iters: super::shared::Iterators,
    /// The dialog module's state for this message (made on first use).
    pub dlg: Option<Box<crate::modules::dialog::DlgMsg>>,
}

impl<'a> MsgCtx<'a> {
    /// Milliseconds since 1970 for this message (see [`Epoch`]).
    pub fn unix_ms(&self) -> u64 {
        self.env.epoch.unix_ms(self.now)
    }

    /// A fresh context for running a route on `msg`, which arrived as `from`
    /// says; everything the script may change starts empty.
    // The arguments are the context's inputs; bundling them would only move the list.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        env: &'a Env,
        program: &'a Program,
        core: &'a mut CoreState,
        msg: &'a Message,
        from: impl Into<crate::tm::Source>,
        now: Instant,
        route_type: RouteType,
        out: &'a mut Vec<Transmit>,
    ) -> MsgCtx<'a> {
        let from: crate::tm::Source = from.into();
        MsgCtx {
            env,
            program,
            core,
            msg,
            src: from.src,
            local: from.local,
            proto: from.proto,
            socket: from.socket,
            conn: from.conn,
            now,
            route_type,
            edits: Edits::new(),
            new_uri: None,
            dst_uri: None,
            path_vec: None,
            flags: 0,
            retcode: 1,
            force_socket: None,
            rr: Default::default(),
            t: Default::default(),
            state: crate::modules::state::MsgState {
                force_rport: program.via.force_rport,
                ..Default::default()
            },
            rebase: &[],
            out,
            attrs: Attrs::default(),
            send_dst: None,
            send_buf: None,
            send_local: None,
            unix_now: env.clock.unix(now),
            cache: ReadCache::default(),
            branches: Vec::new(),
            authorized: None,
            top_via: OnceCell::new(),
            sht_locks: Default::default(),
            sht_iters: Default::default(),
            dlg: None,
        }
    }

    /// The Request-URI as it is now (rewritten or as received).
    pub fn ruri(&self) -> &[u8] {
        match &self.new_uri {
            Some(u) => u,
            None => self.msg.request_uri().unwrap_or(b""),
        }
    }

    /// Prints a format string for this message.
    pub fn format(&self, f: &Format) -> Vec<u8> {
        let mut out = Vec::new();
        self.format_into(f, &mut out);
        out
    }

    /// Prints a format string, appending to `out`. A pseudo-variable whose
    /// transformation failed prints nothing; `$null` prints `<null>`.
    pub fn format_into(&self, f: &Format, out: &mut Vec<u8>) {
        for part in &f.parts {
            match part {
                FormatPart::Lit(b) => out.extend_from_slice(b),
                FormatPart::Pv(pv) => match self.read_pv(pv) {
                    Value::Null if pv.transforms.is_some() => {}
                    v => v.write_to(out),
                },
            }
        }
    }

    /// A string argument's bytes for this message, without copying a constant.
    pub fn format_cow<'f>(&self, f: &'f Format) -> Cow<'f, [u8]> {
        match f.as_literal() {
            Some(lit) => Cow::Borrowed(lit),
            None => Cow::Owned(self.format(f)),
        }
    }
}

/// `ip:port` with IPv6 in brackets.
pub fn fmt_hostport(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Appends what [`fmt_hostport`] returns, without formatting machinery or a
/// String (forwarding writes one per request).
pub fn push_hostport(out: &mut impl PushBytes, addr: SocketAddr) {
    push_host(out, addr.ip());
    out.push_bytes(b":");
    out.push_bytes(itoa::Buffer::new().format(addr.port()).as_bytes());
}

/// Appends an address as a SIP host writes it: IPv6 in brackets.
pub fn push_host(out: &mut impl PushBytes, ip: std::net::IpAddr) {
    if ip.is_ipv6() {
        out.push_bytes(b"[");
        crate::sip::host::push_ip(out, ip);
        out.push_bytes(b"]");
    } else {
        crate::sip::host::push_ip(out, ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        let sock = |proto, addr: &str| SocketInfo {
            proto,
            addr: addr.parse().unwrap(),
            advertise: None,
        };
        Env {
            sockets: vec![
                sock(Proto::Udp, "192.0.2.10:5060"),
                sock(Proto::Udp, "[::1]:5060"),
                sock(Proto::Tls, "192.0.2.10:5061"),
                sock(Proto::Udp, "0.0.0.0:5090"),
                SocketInfo {
                    proto: Proto::Udp,
                    addr: "192.0.2.30:5060".parse().unwrap(),
                    advertise: Some(("Edge.Example.NET".into(), 5070)),
                },
            ],
            aliases: vec![
                ("Proxy.Example.COM".into(), None),
                ("[2001:db8::2]".into(), Some(5080)),
            ],
            ..Env::default()
        }
    }

    #[test]
    fn myself_by_address_and_default_port() {
        let e = env();
        assert!(e.is_myself(b"192.0.2.10", None, None));
        assert!(e.is_myself(b"192.0.2.10", Some(5060), None));
        assert!(!e.is_myself(b"192.0.2.10", Some(5070), None));
        assert!(!e.is_myself(b"192.0.2.11", None, None));
        // No port: the default of the transport asked for (5061 for TLS).
        assert!(e.is_myself(b"192.0.2.10", None, Some(Proto::Tls)));
        assert!(e.is_myself(b"192.0.2.10", Some(5061), Some(Proto::Tls)));
        // Text that is not an address, or not a canonical one, is not ours.
        assert!(!e.is_myself(b"192.0.2.010", None, None));
        assert!(!e.is_myself(b"192.0.2.10.", None, None));
    }

    #[test]
    fn myself_ipv6_reference_forms() {
        let e = env();
        assert!(e.is_myself(b"[::1]", None, None));
        assert!(e.is_myself(b"::1", Some(5060), None));
        // Another spelling of the same address.
        assert!(e.is_myself(b"[0:0:0:0:0:0:0:1]", Some(5060), None));
        assert!(!e.is_myself(b"[::1]", Some(5062), None));
        assert!(!e.is_myself(b"[::2]", None, None));
        assert!(!e.is_myself(b"[::1", None, None));
    }

    #[test]
    fn myself_wildcard_bind_takes_loopback() {
        let e = env();
        assert!(e.is_myself(b"127.0.0.1", Some(5090), None));
        assert!(e.is_myself(b"127.1.2.3", Some(5090), None));
        assert!(!e.is_myself(b"192.0.2.99", Some(5090), None));
    }

    #[test]
    fn myself_names_ignore_case() {
        let e = env();
        assert!(e.is_myself(b"proxy.example.com", None, None));
        assert!(e.is_myself(b"PROXY.EXAMPLE.COM", Some(5060), None));
        // An alias written without a port stands for every port (as Kamailio's).
        assert!(e.is_myself(b"proxy.example.com", Some(5070), None));
        assert!(e.is_myself(b"proxy.example.com", None, Some(Proto::Tls)));
        assert!(!e.is_myself(b"proxy.example.org", None, None));
        // Advertised name and port.
        assert!(e.is_myself(b"edge.example.net", Some(5070), None));
        assert!(!e.is_myself(b"edge.example.net", None, None));
        // A bracketed alias, by its text.
        assert!(e.is_myself(b"[2001:DB8::2]", Some(5080), None));
        assert!(!e.is_myself(b"[2001:db8::2]", None, None));
    }

    #[test]
    fn port_5060_is_left_out_except_over_tls() {
        assert!(omits_port(Proto::Udp, 5060));
        assert!(omits_port(Proto::Tcp, 5060));
        assert!(!omits_port(Proto::Udp, 5080));
        // Over TLS an absent port means 5061.
        assert!(!omits_port(Proto::Tls, 5060));
        assert!(!omits_port(Proto::Tls, 5061));
        let mut e = env();
        e.sockets.push(SocketInfo {
            proto: Proto::Tls,
            addr: "192.0.2.50:5060".parse().unwrap(),
            advertise: None,
        });
        let id = (e.sockets.len() - 1) as SocketId;
        assert_eq!(e.sent_by(id), Some((&b"192.0.2.50:5060"[..], 15)));
    }

    #[test]
    fn sent_by_is_each_sockets_own_text() {
        let e = env();
        let text = |id: SocketId| {
            e.sent_by(id)
                .map(|(t, rr)| (String::from_utf8_lossy(t).into_owned(), rr))
        };
        // Port 5060: Via and Record-Route leave it out.
        assert_eq!(text(0), Some(("192.0.2.10:5060".into(), 10)));
        assert_eq!(text(1), Some(("[::1]:5060".into(), 5)));
        assert_eq!(text(2), Some(("192.0.2.10:5061".into(), 15)));
        // A wildcard bind has no text of its own.
        assert_eq!(text(3), None);
        // Advertised: host and port as given, in both headers.
        assert_eq!(text(4), Some(("Edge.Example.NET:5070".into(), 21)));
        assert_eq!(text(5), None);
        // Asked again: the same text, formatted once.
        let first = e.sent_by(2).map(|(t, _)| t.as_ptr());
        assert_eq!(e.sent_by(2).map(|(t, _)| t.as_ptr()), first);
    }

    #[test]
    fn sent_by_is_not_used_once_a_socket_changed() {
        let mut e = env();
        assert!(e.sent_by(0).is_some());
        // Cloned with its cache, then changed: the old text is not given.
        let mut changed = e.clone();
        changed.sockets[0].addr = "192.0.2.11:5060".parse().unwrap();
        changed.sockets[2].advertise = Some(("tls.example.net".into(), 5061));
        assert_eq!(changed.sent_by(0), None);
        assert_eq!(changed.sent_by(2), None);
        assert_eq!(
            changed.sent_by(1).map(|(t, _)| t.to_vec()),
            Some(b"[::1]:5060".to_vec())
        );
        // A socket added after the first use: no text cached for it.
        e.sockets.push(SocketInfo {
            proto: Proto::Udp,
            addr: "192.0.2.40:5062".parse().unwrap(),
            advertise: None,
        });
        assert_eq!(e.sent_by(5), None);
        // A fresh Env formats its own.
        let fresh = Env {
            sockets: e.sockets.clone(),
            ..Env::default()
        };
        assert_eq!(
            fresh.sent_by(5).map(|(t, rr)| (t.to_vec(), rr)),
            Some((b"192.0.2.40:5062".to_vec(), 15))
        );
    }

    #[test]
    fn myself_with_the_host_already_read_is_myself() {
        let e = env();
        let hosts: [&[u8]; 7] = [
            b"192.0.2.10",
            b"192.0.2.11",
            b"[::1]",
            b"127.0.0.1",
            b"edge.example.net",
            b"proxy.example.com",
            b"[2001:db8::2]",
        ];
        for host in hosts {
            let uri = format!("sip:{}", String::from_utf8_lossy(host));
            let parsed = crate::sip::uri::Uri::parse(uri.as_bytes()).unwrap();
            let ip = parsed.host().and_then(|h| h.ip());
            for port in [
                None,
                Some(5060),
                Some(5061),
                Some(5070),
                Some(5080),
                Some(5090),
            ] {
                for proto in [None, Some(Proto::Udp), Some(Proto::Tls)] {
                    assert_eq!(
                        e.is_myself_host(host, ip, port, proto),
                        e.is_myself(host, port, proto),
                        "{uri} {port:?} {proto:?}"
                    );
                }
            }
        }
        assert!(e.is_myself_host(b"192.0.2.10", "192.0.2.10".parse().ok(), None, None));
    }
}
