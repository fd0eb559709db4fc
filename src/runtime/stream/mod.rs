//! TCP and TLS on one worker: its SO_REUSEPORT listeners (one per `tcp:` or
//! `tls:` listen), the connections it accepted or opened, and the hand-off
//! of transmissions for connections another worker owns.
//!
//! Ownership (DESIGN.md "Thread-per-core"): a connection belongs to the
//! worker that accepted or opened it, for its whole life; only that worker
//! reads, writes or closes it. Its [`ConnId`] says which worker that is, so
//! a reply produced on another core reaches the owner through the
//! [`Mailboxes`] (a bounded channel plus a wake-up of the owner's loop).
//! With SO_REUSEPORT the kernel spreads new connections over the workers;
//! a request and its stateless reply are handled by the core that received
//! the request, which owns the connection, so most traffic needs no hand-off.
//! Sending to a destination without a named connection reuses one, found by
//! `(transport, address)` in this worker's map, else in the shared
//! [`Directory`] (then handed off), else opened here.
//!
//! IO: every operation is one compio submission (accept, connect, one read
//! per connection at a time, one vectored send per connection at a time)
//! polled through a `FuturesUnordered`, which only polls the operations that
//! completed: ten thousand idle connections cost no work per round, only one
//! small read buffer each. Operations are wrapped in `Abortable` so closing
//! a connection cancels what it has in flight. Reads and accepts (the
//! `reads` set) are polled by `poll_recv`, sends and connects (`writes`) by
//! `poll_sent`, which the worker calls right after queueing transmissions,
//! so they are submitted in the same round.
//!
//! Limits: `tcp_max_connections` is checked at accept (the connection is
//! accepted and closed at once) and at connect; a periodic sweep closes
//! connections that are idle (`tcp_connection_lifetime`), slow to deliver a
//! message or finish a TLS handshake (`tcp_msg_read_timeout`), slow to
//! connect (`tcp_connect_timeout`) or whose sends stall (`tcp_send_timeout`).
//! Framing is in [`framing`](super::framing).
//!
//! WebSocket (RFC 7118): a TCP or TLS connection whose HTTP upgrade the
//! script accepted (`WsSend::Upgrade` on the `101` answer) turns `ws` or
//! `wss`: its bytes are read as RFC 6455 frames (`sip::websocket`), its
//! messages sent in text frames, and it is found under that transport only,
//! never opened toward a client. The sweep also sends keep-alive pings on
//! idle ones and the frames the `ws.*` control commands queued, and keeps
//! `WsPeers` (who is connected, for tm and `ws.dump`) up to date. A
//! finished closing handshake reaches the handler as an empty message.

mod conn;
mod directory;
mod ops;
pub(crate) mod tls;
pub mod tls_config;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use compio::buf::IoBuf;
use compio::driver::op::{Accept, Connect, Recv, RecvFlags, SendFlags, SendVectored};
use compio::driver::SharedFd;
use futures_util::future::{AbortHandle, Aborted};
use futures_util::stream::{FuturesUnordered, StreamExt};
use socket2::{SockAddr, Socket as Socket2};

use self::conn::{Close, Conn, Phase, Timeouts, MAX_KEYS};
pub(super) use self::directory::Directory;
use self::directory::Key;
use self::ops::{abortable, Done, Fd, Op, Ops};
use self::tls::TlsConfigs;
use super::clock::Clocks;
use super::config::RuntimeConfig;
use super::framing::Limits;
use super::handoff::Mailboxes;
use super::stats::{bump, Counters as StreamCounters};
use super::transport::Transport;
use super::Counters;
use crate::sip::packet::{ConnId, Inbound, Proto, SocketId, Transmit, WsSend};

/// What every worker's stream transport shares.
pub(crate) struct Shared {
    pub mailboxes: Mailboxes<Transmit>,
    pub directory: Directory,
    pub stats: StreamCounters,
    pub tls: Option<TlsConfigs>,
    limits: Limits,
    timeouts: Timeouts,
    max_connections: usize,
    tls_max_connections: usize,
    send_queue_max: usize,
    workers: usize,
    /// The frame sent on a WebSocket connection idle for this long.
    ws_keepalive: Option<(Duration, Bytes)>,
    ws_peers: Option<Arc<crate::modules::websocket::WsPeers>>,
}

impl Shared {
    pub fn new(cfg: &RuntimeConfig, workers: usize, tls: Option<TlsConfigs>) -> Shared {
        Shared {
            mailboxes: Mailboxes::new(workers),
            directory: Directory::default(),
            stats: StreamCounters::default(),
            tls,
            limits: Limits {
                max_message: cfg.tcp_max_message,
                accept_no_cl: cfg.tcp_accept_no_cl,
            },
            timeouts: Timeouts {
                lifetime: cfg.tcp_connection_lifetime,
                msg_read: cfg.tcp_msg_read_timeout,
                connect: cfg.tcp_connect_timeout,
                send: cfg.tcp_send_timeout,
            },
            max_connections: cfg.tcp_max_connections,
            tls_max_connections: cfg.tls_max_connections,
            send_queue_max: cfg.tcp_send_queue_max,
            workers,
            ws_keepalive: cfg.ws_keepalive.as_ref().map(|k| {
                use crate::sip::websocket::{control_frame, opcode};
                let op = if k.ping { opcode::PING } else { opcode::PONG };
                (k.idle, control_frame(op, &k.data))
            }),
            ws_peers: cfg.ws_peers.clone(),
        }
    }

    /// How often the sweep runs: a quarter of the shortest timeout, so a
    /// timeout fires at most 25% late, between 10 ms and 1 s.
    fn sweep_interval(&self) -> Duration {
        let t = &self.timeouts;
        let mut shortest = t.lifetime.min(t.msg_read).min(t.connect).min(t.send);
        if let Some((idle, _)) = &self.ws_keepalive {
            shortest = shortest.min(*idle);
        }
        (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Counts one more open connection of `proto`, unless a limit is
    /// reached (`tcp_max_connections` for all, `tls_max_connections` for TLS).
    fn try_open(&self, proto: Proto) -> Result<(), &'static str> {
        let open = self.stats.open.fetch_add(1, Ordering::Relaxed);
        if open >= self.max_connections as u64 {
            self.stats.open.fetch_sub(1, Ordering::Relaxed);
            return Err("tcp_max_connections reached");
        }
        if proto == Proto::Tls {
            let tls = self.stats.tls_open.fetch_add(1, Ordering::Relaxed);
            if tls >= self.tls_max_connections as u64 {
                self.release(proto);
                return Err("tls_max_connections reached");
            }
        }
        Ok(())
    }

    /// Counts one connection of `proto` fewer.
    fn release(&self, proto: Proto) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        if proto.carrier() == Proto::Tls {
            self.stats.tls_open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// `ConnId` layout: worker (16 bits) | generation (16) | slot (32).
fn conn_id(worker: usize, slot: u32, gen: u16) -> ConnId {
    ConnId::from_raw(((worker as u64 & 0xffff) << 48) | (u64::from(gen) << 32) | u64::from(slot))
}

fn id_worker(id: ConnId) -> usize {
    (id.raw() >> 48) as usize
}

fn id_slot(id: ConnId) -> usize {
    (id.raw() & 0xffff_ffff) as usize
}

fn id_gen(id: ConnId) -> u16 {
    (id.raw() >> 32) as u16
}

type Sleep = Pin<Box<dyn Future<Output = ()>>>;

struct Listener {
    id: SocketId,
    proto: Proto,
    local: SocketAddr,
    fd: Option<Fd>,
    abort: Option<AbortHandle>,
    /// An accept failed for lack of resources (EMFILE…): the next sweep
    /// re-arms it, instead of spinning on the error.
    paused: bool,
}

struct Slot {
    gen: u16,
    conn: Option<Box<Conn>>,
}

/// The stream transport of one worker.
pub(super) struct Streams {
    worker: usize,
    shared: Arc<Shared>,
    listeners: Vec<Listener>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// This worker's connections by destination.
    local: HashMap<Key, ConnId>,
    reads: Ops,
    writes: Ops,
    /// Reads were started outside `poll_recv`: poll again.
    reads_added: bool,
    sweep: Option<(Instant, Sleep)>,
    stopped: bool,
    counters: Counters,
}

impl Streams {
    /// Takes over this worker's listening sockets, `(SocketId, proto,
    /// listener)`; must run inside the worker's compio runtime.
    pub fn new(
        worker: usize,
        listeners: Vec<(SocketId, Proto, std::net::TcpListener)>,
        shared: Arc<Shared>,
    ) -> io::Result<Streams> {
        let mut streams = Streams {
            worker,
            shared,
            listeners: Vec::with_capacity(listeners.len()),
            slots: Vec::new(),
            free: Vec::new(),
            local: HashMap::new(),
            reads: FuturesUnordered::new(),
            writes: FuturesUnordered::new(),
            reads_added: false,
            sweep: None,
            stopped: false,
            counters: Counters::default(),
        };
        for (id, proto, listener) in listeners {
            let local = listener.local_addr()?;
            streams.listeners.push(Listener {
                id,
                proto,
                local,
                fd: Some(SharedFd::new(Socket2::from(listener))),
                abort: None,
                paused: false,
            });
        }
        for i in 0..streams.listeners.len() {
            streams.arm_accept(i);
        }
        Ok(streams)
    }

    fn arm_accept(&mut self, i: usize) {
        let Some(listener) = self.listeners.get_mut(i) else {
            return;
        };
        let Some(fd) = listener.fd.clone().filter(|_| !self.stopped) else {
            return;
        };
        let op = Op::Accept {
            listener: i,
            submit: compio::runtime::submit(Accept::new(fd)),
        };
        let (op, abort) = abortable(op);
        listener.abort = Some(abort);
        self.reads.push(op);
        self.reads_added = true;
    }

    /// The live connection `id` names, if this worker owns it.
    fn slot_of(&self, id: ConnId) -> Option<usize> {
        let slot = id_slot(id);
        let live = id_worker(id) == self.worker
            && self
                .slots
                .get(slot)
                .is_some_and(|s| s.gen == id_gen(id) && s.conn.is_some());
        live.then_some(slot)
    }

    fn conn(&mut self, slot: usize) -> Option<&mut Conn> {
        self.slots.get_mut(slot)?.conn.as_deref_mut()
    }

    /// The connection in `slot` if it is still generation `gen`.
    fn live(&mut self, slot: u32, gen: u16) -> Option<&mut Conn> {
        let s = self.slots.get_mut(slot as usize)?;
        if s.gen != gen {
            return None;
        }
        s.conn.as_deref_mut()
    }

    /// A free slot and the id a connection in it gets.
    fn alloc(&mut self) -> (usize, ConnId) {
        let slot = match self.free.pop() {
            Some(slot) => slot as usize,
            None => {
                self.slots.push(Slot { gen: 0, conn: None });
                self.slots.len() - 1
            }
        };
        let gen = self.slots[slot].gen;
        (slot, conn_id(self.worker, slot as u32, gen))
    }

    /// Makes `key` lead to the connection in `slot`, here and for the other
    /// workers (`claimed`: it was claimed in the directory already).
    fn register(&mut self, slot: usize, key: Key, claimed: bool) {
        let Some(conn) = self.conn(slot) else {
            return;
        };
        if conn.keys.contains(&key) || conn.keys.len() >= MAX_KEYS {
            return;
        }
        conn.keys.push(key);
        let id = conn.id;
        self.local.insert(key, id);
        if !claimed {
            self.shared.directory.set(key, id);
        }
    }

    fn start_read(&mut self, slot: usize) {
        if self.stopped {
            return;
        }
        let Some(conn) = self.conn(slot) else {
            return;
        };
        let Some((buf, start)) = conn.read_buffer() else {
            return;
        };
        let gen = id_gen(conn.id);
        let op = Op::Recv {
            slot: slot as u32,
            gen,
            start,
            submit: compio::runtime::submit(Recv::new(
                conn.fd.clone(),
                buf.slice(start..),
                RecvFlags::empty(),
            )),
        };
        let (op, abort) = abortable(op);
        conn.read_abort = Some(abort);
        self.reads.push(op);
        self.reads_added = true;
    }

    fn start_send(&mut self, slot: usize) {
        let Some(conn) = self.conn(slot) else {
            return;
        };
        let Some(batch) = conn.send_batch() else {
            return;
        };
        let op = Op::Send {
            slot: slot as u32,
            gen: id_gen(conn.id),
            submit: compio::runtime::submit(SendVectored::new(
                conn.fd.clone(),
                batch,
                SendFlags::NOSIGNAL,
            )),
        };
        let (op, abort) = abortable(op);
        conn.send_abort = Some(abort);
        self.writes.push(op);
    }

    /// Closes the connection in `slot`: cancels its operations, forgets its
    /// addresses, frees the slot (its file closes once the cancelled
    /// operations have let go of it).
    fn close(&mut self, slot: usize, why: Close) {
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        let Some(conn) = s.conn.take() else {
            return;
        };
        s.gen = s.gen.wrapping_add(1);
        self.free.push(slot as u32);
        for abort in [&conn.read_abort, &conn.send_abort].into_iter().flatten() {
            abort.abort();
        }
        for key in &conn.keys {
            if self.local.get(key) == Some(&conn.id) {
                self.local.remove(key);
            }
            self.shared.directory.release(key, conn.id);
        }
        self.shared.release(conn.proto);
        if let Some(peers) = self.shared.ws_peers.as_ref() {
            if matches!(conn.proto, Proto::Ws | Proto::Wss) {
                peers.remove(conn.proto, conn.peer, conn.id);
            }
        }
        let stats = &self.shared.stats;
        match &why {
            Close::Peer(_) => bump(&stats.closed_by_peer),
            Close::Framing(_) => {
                bump(&stats.framing_errors);
                self.counters.dropped += 1;
            }
            Close::Tls(_) => bump(&stats.tls_errors),
            Close::Idle => bump(&stats.closed_idle),
            Close::Slow(_) => bump(&stats.closed_slow),
            Close::Overflow => bump(&stats.closed_overflow),
            Close::ConnectFailed(_) => bump(&stats.connect_failed),
            Close::Io(_) => self.counters.send_errors += 1,
            Close::Stop | Close::AsAsked => {}
        }
        match why {
            Close::Framing(_) | Close::Tls(_) | Close::Overflow | Close::ConnectFailed(_) => {
                log::info!(
                    "{} {} -> {} closed: {why}",
                    conn.proto,
                    conn.local,
                    conn.peer
                )
            }
            _ => log::debug!(
                "{} {} -> {} closed: {why}",
                conn.proto,
                conn.local,
                conn.peer
            ),
        }
    }

    /// Sends `t` on its connection (here, or handed to its owner), on one to
    /// its destination, or on a new one. `handed`: it came from another
    /// worker, so it is not handed on again.
    fn transmit(&mut self, t: Transmit, now: Instant, handed: bool) {
        let key = (t.proto, t.dst);
        if let Some(id) = t.conn {
            let owner = id_worker(id);
            if owner != self.worker && owner < self.shared.workers && !handed {
                return self.hand_off(owner, t);
            }
            if let Some(slot) = self.slot_of(id) {
                if t.flags.websocket != WsSend::Message {
                    return self.websocket_control(slot, t, now);
                }
                let fits = self
                    .conn(slot)
                    .is_some_and(|c| c.proto == t.proto && c.peer.ip() == t.dst.ip());
                if fits {
                    return self.queue(slot, t.data, t.flags.close, now);
                }
            }
        }
        if t.flags.websocket != WsSend::Message {
            bump(&self.shared.stats.unsent);
            log::info!(
                "worker {}: websocket {:?} for {}: no such connection",
                self.worker,
                t.flags.websocket,
                t.dst
            );
            return;
        }
        if let Some(slot) = self
            .local
            .get(&key)
            .copied()
            .and_then(|id| self.slot_of(id))
        {
            return self.queue(slot, t.data, t.flags.close, now);
        }
        if !handed {
            if let Some(id) = self.shared.directory.lookup(&key) {
                let owner = id_worker(id);
                if owner != self.worker && owner < self.shared.workers {
                    return self.hand_off(owner, t);
                }
            }
        }
        if t.flags.no_connect {
            bump(&self.shared.stats.unsent);
            log::debug!(
                "worker {}: {} to {} not sent: no connection, and no_connect asked",
                self.worker,
                t.proto,
                t.dst
            );
            return;
        }
        self.connect(t, now);
    }

    /// A handshake answer (the connection speaks WebSocket after it) or a
    /// close frame (`ws_close`) on the connection in `slot`.
    fn websocket_control(&mut self, slot: usize, t: Transmit, now: Instant) {
        let Some(conn) = self.conn(slot) else {
            return;
        };
        match t.flags.websocket {
            WsSend::Upgrade => {
                if conn.proto != t.proto || !matches!(conn.proto, Proto::Tcp | Proto::Tls) {
                    log::info!(
                        "websocket: {} is not an HTTP connection to upgrade",
                        conn.peer
                    );
                    return;
                }
                self.queue(slot, t.data, false, now);
                let Some(conn) = self.conn(slot) else {
                    return;
                };
                let old = conn.keys.clone();
                conn.upgrade_to_websocket();
                let (id, proto, peer, local) = (conn.id, conn.proto, conn.peer, conn.local);
                // Found as a `ws` (`wss`) destination from now on, never as
                // a TCP one: plain SIP must not go out on it.
                conn.keys.clear();
                for key in old {
                    if self.local.get(&key) == Some(&id) {
                        self.local.remove(&key);
                    }
                    self.shared.directory.release(&key, id);
                }
                self.register(slot, (proto, peer), false);
                if let Some(peers) = &self.shared.ws_peers {
                    peers.add(proto, peer, local, id);
                }
                log::debug!("{proto} {peer}: websocket handshake done");
            }
            WsSend::Close => match conn.close_websocket(&t.data, now) {
                Ok(()) => {
                    bump(&self.shared.stats.messages_sent);
                    self.start_send(slot);
                }
                Err(Close::AsAsked) => {
                    log::info!("websocket: {} does not speak websocket", conn.peer)
                }
                Err(why) => self.close(slot, why),
            },
            WsSend::Message => self.queue(slot, t.data, t.flags.close, now),
        }
    }

    fn hand_off(&mut self, owner: usize, t: Transmit) {
        match self.shared.mailboxes.post(owner, t) {
            Ok(()) => bump(&self.shared.stats.handoffs),
            Err(t) => {
                bump(&self.shared.stats.handoffs_dropped);
                log::debug!(
                    "worker {}: hand-off queue of worker {owner} full, {} to {} dropped",
                    self.worker,
                    t.proto,
                    t.dst
                );
            }
        }
    }

    /// Queues `data` on the connection in `slot`; `close`: close it once
    /// everything queued is sent.
    /// Empty `data` with `close` only closes it (after what is queued).
    fn queue(&mut self, slot: usize, data: Bytes, close: bool, now: Instant) {
        let Some(conn) = self.conn(slot) else {
            return;
        };
        let message = !data.is_empty();
        let queued = match message {
            true => conn.queue(data, now),
            false => Ok(()),
        };
        let queued = queued.and_then(|()| match close {
            true => conn.close_when_sent(),
            false => Ok(()),
        });
        match queued {
            Ok(()) if conn.done_sending() => self.close(slot, Close::AsAsked),
            Ok(()) => {
                if message {
                    bump(&self.shared.stats.messages_sent);
                }
                self.start_send(slot);
            }
            Err(why) => self.close(slot, why),
        }
    }

    /// Opens a connection to `t.dst` and queues `t` on it.
    fn connect(&mut self, t: Transmit, now: Instant) {
        let unsent = |streams: &Streams, why: &dyn std::fmt::Display| {
            bump(&streams.shared.stats.unsent);
            log::info!(
                "worker {}: {} to {} not sent: {why}",
                streams.worker,
                t.proto,
                t.dst
            );
        };
        if self.stopped {
            return unsent(self, &"stopping");
        }
        let tls = match t.proto {
            Proto::Tcp => None,
            Proto::Tls => {
                let Some(configs) = &self.shared.tls else {
                    return unsent(self, &"no tls configuration");
                };
                let (config, name) = configs.client_for(t.dst);
                match rustls::ClientConnection::new(config, name) {
                    Ok(c) => Some(rustls::Connection::Client(c)),
                    Err(e) => return unsent(self, &e),
                }
            }
            // RFC 7118 §5: only the client opens a WebSocket connection.
            Proto::Ws | Proto::Wss => {
                return unsent(self, &"no websocket connection (one cannot be opened)")
            }
            other => return unsent(self, &format!("{other} is not a stream transport")),
        };
        if let Err(limit) = self.shared.try_open(t.proto) {
            return unsent(self, &limit);
        }
        // Speak from the listen's address when it has one, so the peer sees
        // the address our Via names.
        let bound = t.socket.and_then(|id| {
            self.listeners
                .iter()
                .find(|l| l.id == id)
                .map(|l| l.local)
                .filter(|a| !a.ip().is_unspecified())
        });
        let socket = match super::socket::tcp_client(t.dst, t.local.or(bound)) {
            Ok(s) => s,
            Err(e) => {
                self.shared.release(t.proto);
                return unsent(self, &e);
            }
        };
        let key = (t.proto, t.dst);
        let (slot, id) = self.alloc();
        if let Err(other) = self.shared.directory.claim(key, id) {
            // Another worker opened one to the same place a moment ago.
            self.shared.release(t.proto);
            self.free.push(slot as u32);
            let owner = id_worker(other);
            if owner != self.worker && owner < self.shared.workers {
                return self.hand_off(owner, t);
            }
            return unsent(self, &"stale connection entry");
        }
        let fd = SharedFd::new(socket);
        let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let mut conn = Conn::new(
            id,
            t.proto,
            t.socket.unwrap_or(0),
            t.local.unwrap_or(unspecified),
            t.dst,
            fd.clone(),
            Phase::Connecting,
            tls.map(|mut c| {
                c.set_buffer_limit(Some(self.shared.send_queue_max));
                c
            }),
            self.shared.send_queue_max,
            now,
        );
        conn.keys.push(key);
        self.local.insert(key, id);
        let op = Op::Connect {
            slot: slot as u32,
            gen: id_gen(id),
            submit: compio::runtime::submit(Connect::new(fd, SockAddr::from(t.dst))),
        };
        let (op, abort) = abortable(op);
        conn.read_abort = Some(abort);
        self.slots[slot].conn = Some(Box::new(conn));
        self.writes.push(op);
        self.queue(slot, t.data, t.flags.close, now);
    }

    fn on_accepted(&mut self, i: usize, socket: Socket2, addr: SockAddr, now: Instant) {
        let (id_socket, proto, listen_local) = {
            let l = &self.listeners[i];
            (l.id, l.proto, l.local)
        };
        let Some(peer) = addr.as_socket() else {
            return;
        };
        if let Err(limit) = self.shared.try_open(proto) {
            bump(&self.shared.stats.refused_at_limit);
            log::debug!("{proto} {listen_local}: {peer} refused, {limit}");
            return;
        }
        bump(&self.shared.stats.accepted);
        // Best effort: a socket that refuses these still works.
        let _ = socket.set_nonblocking(true);
        let _ = socket.set_tcp_nodelay(true);
        let local = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or(listen_local);
        let tls = match proto {
            Proto::Tls => {
                // The profile of the address the client reached (a wildcard
                // listen has many), else the listen's.
                let server = self
                    .shared
                    .tls
                    .as_ref()
                    .and_then(|t| t.server_for(local, listen_local));
                match server.map(rustls::ServerConnection::new) {
                    Some(Ok(mut c)) => {
                        c.set_buffer_limit(Some(self.shared.send_queue_max));
                        Some(rustls::Connection::Server(c))
                    }
                    _ => {
                        self.shared.release(proto);
                        bump(&self.shared.stats.tls_errors);
                        log::warn!("{proto} {listen_local}: no tls server configuration");
                        return;
                    }
                }
            }
            _ => None,
        };
        let (slot, id) = self.alloc();
        let conn = Conn::new(
            id,
            proto,
            id_socket,
            local,
            peer,
            SharedFd::new(socket),
            Phase::Open,
            tls,
            self.shared.send_queue_max,
            now,
        );
        self.slots[slot].conn = Some(Box::new(conn));
        self.register(slot, (proto, peer), false);
        self.start_read(slot);
    }

    /// Handles one finished operation; framed messages go to `deliver`.
    fn handle(&mut self, done: Done, now: Instant, deliver: &mut dyn FnMut(Inbound)) {
        match done {
            Done::Accepted { listener, result } => {
                match result {
                    Ok((socket, addr)) => self.on_accepted(listener, socket, addr, now),
                    Err(e) => {
                        let l = &mut self.listeners[listener];
                        log::warn!("{} {}: accept: {e}", l.proto, l.local);
                        // Out of files or memory: retrying at once would spin.
                        l.paused = matches!(
                            e.raw_os_error(),
                            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                        );
                    }
                }
                if !self.listeners[listener].paused {
                    self.arm_accept(listener);
                }
            }
            Done::Connected { slot, gen, result } => {
                let Some(conn) = self.live(slot, gen) else {
                    return;
                };
                conn.read_abort = None;
                let slot = slot as usize;
                match result {
                    Ok(_) => {
                        let local = conn
                            .fd
                            .local_addr()
                            .ok()
                            .and_then(|a| a.as_socket())
                            .unwrap_or(conn.local);
                        match conn.on_connected(local, now) {
                            Ok(()) => {
                                bump(&self.shared.stats.connected);
                                self.start_send(slot);
                                self.start_read(slot);
                            }
                            Err(why) => self.close(slot, why),
                        }
                    }
                    Err(e) => self.close(slot, Close::ConnectFailed(e)),
                }
            }
            Done::Read {
                slot,
                gen,
                start,
                result,
                mut buf,
            } => {
                let limits = self.shared.limits;
                let Some(conn) = self.live(slot, gen) else {
                    return;
                };
                conn.read_abort = None;
                let slot = slot as usize;
                let n = match result {
                    Ok(0) => return self.close(slot, Close::Peer(None)),
                    Ok(n) => n,
                    Err(e) => {
                        let why = match e.kind() {
                            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                                Close::Peer(Some(e))
                            }
                            _ => Close::Io(e),
                        };
                        return self.close(slot, why);
                    }
                };
                // The read was given `buf.slice(start..)`, the spare capacity
                // of `buf` from `start` on, and never writes more than that.
                let end = (start + n).min(buf.capacity());
                // SAFETY: the kernel initialized `start..start + n` (see above),
                // `..start` was initialized before, and `end <= capacity`.
                unsafe { buf.set_len(end) };
                let got = match conn.on_read(buf, n, limits, now) {
                    Ok(got) => got,
                    Err(why) => return self.close(slot, why),
                };
                let (id, proto, socket, local, peer) =
                    (conn.id, conn.proto, conn.socket, conn.local, conn.peer);
                let shared = self.shared.clone();
                let stats = &shared.stats;
                stats.pings_answered.fetch_add(got.pings, Ordering::Relaxed);
                for data in got.messages {
                    bump(&stats.messages_received);
                    self.counters.received += 1;
                    if let Some(alias) = alias_of(&data, proto) {
                        self.register(slot, (proto, alias), false);
                    }
                    deliver(Inbound {
                        data,
                        src: peer,
                        local,
                        proto,
                        socket,
                        conn: Some(id),
                        arrived: None,
                    });
                }
                if got.ws_closed {
                    if let Some(conn) = self.conn(slot) {
                        deliver(websocket_closed(conn));
                    }
                    // The answer to our close frame: nothing left to send.
                    if self.conn(slot).is_some_and(|c| c.done_sending()) {
                        return self.close(slot, Close::AsAsked);
                    }
                }
                self.start_send(slot);
                self.start_read(slot);
            }
            Done::Sent {
                slot,
                gen,
                result,
                batch,
            } => {
                let Some(conn) = self.live(slot, gen) else {
                    return;
                };
                conn.send_abort = None;
                let slot = slot as usize;
                match result {
                    Ok(n) if n > 0 => {
                        conn.on_sent(batch, n, now);
                        let done = conn.done_sending();
                        self.counters.sent += 1;
                        if done {
                            return self.close(slot, Close::AsAsked);
                        }
                        self.start_send(slot);
                    }
                    Ok(_) => {
                        let e = io::Error::new(io::ErrorKind::WriteZero, "send wrote nothing");
                        self.close(slot, Close::Io(e));
                    }
                    Err(e) => self.close(slot, Close::Io(e)),
                }
            }
        }
    }

    /// Closes the connections whose time is up; resumes paused listeners.
    fn sweep(&mut self, now: Instant) {
        let timeouts = self.shared.timeouts;
        self.websocket_commands(now);
        for slot in 0..self.slots.len() {
            let why = match &self.slots[slot].conn {
                Some(conn) => conn.expired(now, &timeouts),
                None => None,
            };
            if let Some(why) = why {
                self.close(slot, why);
                continue;
            }
            if let (Some(peers), Some(c)) = (&self.shared.ws_peers, &self.slots[slot].conn) {
                if matches!(c.proto, Proto::Ws | Proto::Wss) {
                    peers.touch(c.proto, c.peer, c.id, c.last_active());
                }
            }
            let Some((idle, frame)) = self.shared.ws_keepalive.clone() else {
                continue;
            };
            let due = self.slots[slot]
                .conn
                .as_deref_mut()
                .map(|c| c.websocket_keepalive(idle, &frame, now));
            match due {
                Some(Ok(true)) => self.start_send(slot),
                Some(Err(why)) => self.close(slot, why),
                _ => {}
            }
        }
        for i in 0..self.listeners.len() {
            if std::mem::take(&mut self.listeners[i].paused) {
                self.arm_accept(i);
            }
        }
    }

    /// Sends what the control socket asked of this worker's WebSocket
    /// connections (`ws.close`, `ws.ping`, `ws.pong`).
    fn websocket_commands(&mut self, now: Instant) {
        use crate::modules::websocket::WsCommand;
        use crate::sip::websocket::{control_frame, opcode};
        let Some(peers) = self.shared.ws_peers.clone() else {
            return;
        };
        let worker = self.worker;
        for (id, command) in peers.take_commands(|id| id_worker(id) == worker) {
            let Some(slot) = self.slot_of(id) else {
                continue;
            };
            let Some(conn) = self.conn(slot) else {
                continue;
            };
            let done = match command {
                WsCommand::Close => {
                    let mut payload = 1000u16.to_be_bytes().to_vec();
                    payload.extend_from_slice(b"Normal closure");
                    conn.close_websocket(&payload, now).map(|()| true)
                }
                WsCommand::Ping => conn
                    .queue_websocket_control(control_frame(opcode::PING, &peers.ping_data()), now),
                WsCommand::Pong => conn
                    .queue_websocket_control(control_frame(opcode::PONG, &peers.ping_data()), now),
            };
            match done {
                Ok(true) => self.start_send(slot),
                Ok(false) | Err(Close::AsAsked) => {}
                Err(why) => self.close(slot, why),
            }
        }
    }

    fn open_here(&self) -> bool {
        self.free.len() < self.slots.len()
    }

    /// Keeps the sweep timer armed while there is something to sweep.
    fn poll_sweep(&mut self, cx: &mut Context<'_>) {
        let interval = self.shared.sweep_interval();
        loop {
            let needed = self.open_here() || self.listeners.iter().any(|l| l.paused);
            if !needed {
                self.sweep = None;
                return;
            }
            let (_, sleep) = self.sweep.get_or_insert_with(|| {
                let at = Instant::now() + interval;
                (at, Box::pin(compio::time::sleep_until(at)))
            });
            if sleep.as_mut().poll(cx).is_pending() {
                return;
            }
            // A finished sleep must not be polled again.
            self.sweep = None;
            self.sweep(Instant::now());
        }
    }
}

/// The report of a finished WebSocket closing handshake on `conn`: an
/// empty message from its peer (see [`Inbound::data`]).
fn websocket_closed(conn: &Conn) -> Inbound {
    Inbound {
        data: Bytes::new(),
        src: conn.peer,
        local: conn.local,
        proto: conn.proto,
        socket: conn.socket,
        conn: Some(conn.id),
        arrived: None,
    }
}

/// The `;alias` sent-by of a request's top Via (RFC 5923 §5: the client asks
/// that this connection be reused for requests to that address), on TCP.
/// Over TLS the alias would have to be checked against the certificate
/// (§5.3); that is not done, so TLS aliases are ignored.
fn alias_of(data: &Bytes, proto: Proto) -> Option<SocketAddr> {
    use crate::sip::via::vias;
    use crate::sip::{HeaderName, Message};
    if proto != Proto::Tcp || memchr::memmem::find(data, b";alias").is_none() {
        return None;
    }
    let msg = Message::parse(data.clone()).ok()?;
    if !msg.is_request() {
        return None;
    }
    let h = msg.header(HeaderName::Via)?;
    let via = vias(msg.value(h)).next()?.ok()?;
    if !via.alias() {
        return None;
    }
    let ip = via.host().ip()?;
    Some(SocketAddr::new(
        ip.to_canonical(),
        via.port().unwrap_or(proto.default_port()),
    ))
}

impl Transport for Streams {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        budget: usize,
        _clocks: &Clocks,
        deliver: &mut dyn FnMut(Inbound),
    ) -> io::Result<usize> {
        let now = Instant::now();
        let mut steps = 0;
        let shared = self.shared.clone();
        shared.mailboxes.register(self.worker, cx.waker());
        while steps < budget {
            let Some(t) = shared.mailboxes.take(self.worker) else {
                break;
            };
            self.transmit(t, now, true);
            steps += 1;
        }
        while steps < budget {
            match self.reads.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(done))) => self.handle(done, now, deliver),
                Poll::Ready(Some(Err(Aborted))) => {}
                Poll::Ready(None) | Poll::Pending => {
                    // Every operation pushed so far has been polled (submitted).
                    self.reads_added = false;
                    break;
                }
            }
            steps += 1;
        }
        self.poll_sweep(cx);
        if steps < budget && std::mem::take(&mut self.reads_added) {
            // The sweep re-armed an accept: submit it in the next round.
            cx.waker().wake_by_ref();
        }
        Ok(steps)
    }

    fn stop_recv(&mut self) {
        self.stopped = true;
        for listener in &mut self.listeners {
            if let Some(abort) = listener.abort.take() {
                abort.abort();
            }
        }
        for slot in &mut self.slots {
            if let Some(abort) = slot.conn.as_mut().and_then(|c| c.read_abort.take()) {
                abort.abort();
            }
        }
    }

    fn send(&mut self, transmit: Transmit) {
        self.transmit(transmit, Instant::now(), false);
    }

    fn poll_sent(&mut self, cx: &mut Context<'_>) {
        let now = Instant::now();
        let mut ignore = |pkt: Inbound| {
            log::debug!("stream message from {} after stop: dropped", pkt.src);
        };
        while let Poll::Ready(Some(done)) = self.writes.poll_next_unpin(cx) {
            if let Ok(done) = done {
                self.handle(done, now, &mut ignore);
            }
        }
        self.poll_sweep(cx);
        if std::mem::take(&mut self.reads_added) {
            // Reads started here are submitted by the next `poll_recv`.
            cx.waker().wake_by_ref();
        }
    }

    fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        self.stop_recv();
        for slot in 0..self.slots.len() {
            self.close(slot, Close::Stop);
        }
        // Dropping the operations cancels them; each file closes once the
        // kernel has let go of it.
        self.reads.clear();
        self.writes.clear();
        for listener in &mut self.listeners {
            listener.fd = None;
        }
        self.sweep = None;
        Poll::Ready(())
    }

    fn sends_in_flight(&self) -> usize {
        self.writes.len()
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_ids_round_trip() {
        let id = conn_id(3, 0xdead_beef, 0xabcd);
        assert_eq!(
            (id_worker(id), id_slot(id), id_gen(id)),
            (3, 0xdead_beef, 0xabcd)
        );
    }

    #[test]
    fn alias_is_read_from_a_requests_top_via() {
        let req = |via: &str| {
            Bytes::from(format!(
                "OPTIONS sip:x SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/TCP 10.0.0.9;alias\r\n\
                 Content-Length: 0\r\n\r\n"
            ))
        };
        let with = req("SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK1;alias");
        assert_eq!(
            alias_of(&with, Proto::Tcp),
            Some("10.0.0.1:5070".parse().unwrap())
        );
        assert_eq!(alias_of(&with, Proto::Tls), None);
        let without = req("SIP/2.0/TCP 10.0.0.1:5070;branch=z9hG4bK1");
        assert_eq!(alias_of(&without, Proto::Tcp), None);
        let named = req("SIP/2.0/TCP example.com;alias");
        assert_eq!(alias_of(&named, Proto::Tcp), None);
        let reply = Bytes::from_static(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.1;alias\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(alias_of(&reply, Proto::Tcp), None);
    }
}
