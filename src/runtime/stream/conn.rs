//! One stream connection's state, without IO: its receive buffer and framer,
//! its TLS session, its send queue and its clocks. The transport (`mod.rs`)
//! submits the operations; this decides what they carry and what their
//! results mean.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use compio::driver::SharedFd;
use futures_util::future::AbortHandle;
use smallvec::SmallVec;
use socket2::Socket as Socket2;

use super::directory::Key;
use crate::runtime::framing::{Frame, FrameError, Framer, Limits, CONTINUE, PONG};
use crate::sip::packet::{ConnId, Proto, SocketId};
use crate::sip::websocket::{self, opcode, Event};

/// Bytes asked for by a read while a connection is quiet. Idle connections
/// each hold one such buffer in a read in flight, so it is small.
const READ_SMALL: usize = 4 << 10;
/// Bytes asked for once a read filled its buffer (a burst, a large message).
const READ_LARGE: usize = 32 << 10;
/// Most buffers in one vectored send.
const SEND_BATCH: usize = 64;
/// Most addresses a connection is known by (peer or destination, aliases).
pub(super) const MAX_KEYS: usize = 4;

/// Why a connection closes (each has its counter, see `stats`).
#[derive(Debug)]
pub(super) enum Close {
    /// The peer closed (EOF, reset).
    Peer(Option<io::Error>),
    Io(io::Error),
    Framing(FrameError),
    Tls(rustls::Error),
    Idle,
    /// A message, handshake or send too slow.
    Slow(&'static str),
    Overflow,
    ConnectFailed(io::Error),
    /// The worker stops.
    Stop,
    /// The script asked to close once a message was sent
    /// (`set_forward_close`, `set_reply_close`).
    AsAsked,
}

impl fmt::Display for Close {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Close::Peer(None) => f.write_str("closed by peer"),
            Close::Peer(Some(e)) => write!(f, "closed by peer: {e}"),
            Close::Io(e) => write!(f, "i/o error: {e}"),
            Close::Framing(e) => write!(f, "framing error: {e}"),
            Close::Tls(e) => write!(f, "tls: {e}"),
            Close::Idle => f.write_str("idle"),
            Close::Slow(what) => write!(f, "{what} too slow"),
            Close::Overflow => f.write_str("send queue full"),
            Close::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            Close::Stop => f.write_str("stopping"),
            Close::AsAsked => f.write_str("closed as the script asked"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Outgoing, connect in flight.
    Connecting,
    Open,
}

/// The clocks the sweep checks.
#[derive(Clone, Copy, Debug)]
pub(super) struct Timeouts {
    pub lifetime: Duration,
    pub msg_read: Duration,
    pub connect: Duration,
    pub send: Duration,
}

pub(super) struct Conn {
    pub id: ConnId,
    pub proto: Proto,
    /// The listen it was accepted on, or opened for.
    pub socket: SocketId,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub fd: SharedFd<Socket2>,
    pub phase: Phase,
    pub tls: Option<Box<rustls::Connection>>,
    /// Received bytes (TCP: not framed yet; TLS: records). `None` while a
    /// read has it.
    pub rbuf: Option<BytesMut>,
    /// TLS: plaintext not framed yet.
    plain: BytesMut,
    framer: Framer,
    /// Speaks WebSocket (after a handshake): frames are read by this
    /// instead of `framer`, and messages sent in text frames.
    ws: Option<websocket::Decoder>,
    /// We sent a close frame: no message follows it (RFC 6455 §5.5.1).
    ws_closed: bool,
    /// The peer's close frame arrived (or the stream is broken): nothing
    /// more is read.
    ws_peer_closed: bool,
    /// The last read filled its buffer: ask for more next time.
    read_large: bool,
    wqueue: VecDeque<Bytes>,
    queued: usize,
    queue_limit: usize,
    pub sending: bool,
    /// Close once the send queue is empty (`set_*_close`).
    closing: bool,
    /// Cancels the read (or the connect) in flight.
    pub read_abort: Option<AbortHandle>,
    pub send_abort: Option<AbortHandle>,
    pub opened: Instant,
    last_active: Instant,
    /// When the first byte of the message being read arrived.
    msg_since: Option<Instant>,
    /// When the send queue last made progress, while it is not empty.
    send_since: Option<Instant>,
    /// Where this connection is registered (local map and directory).
    pub keys: SmallVec<[Key; MAX_KEYS]>,
}

/// What one read brought.
pub(super) struct Received {
    pub messages: SmallVec<[Bytes; 4]>,
    pub pings: u64,
    /// The peer sent a WebSocket close frame (answered, the connection
    /// closes once the answer is sent).
    pub ws_closed: bool,
}

impl Conn {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: ConnId,
        proto: Proto,
        socket: SocketId,
        local: SocketAddr,
        peer: SocketAddr,
        fd: SharedFd<Socket2>,
        phase: Phase,
        tls: Option<rustls::Connection>,
        queue_limit: usize,
        now: Instant,
    ) -> Conn {
        let tls_pending = tls.is_some();
        Conn {
            id,
            proto,
            socket,
            local,
            peer,
            fd,
            phase,
            tls: tls.map(Box::new),
            rbuf: Some(BytesMut::new()),
            plain: BytesMut::new(),
            framer: Framer::default(),
            ws: None,
            ws_closed: false,
            ws_peer_closed: false,
            read_large: false,
            wqueue: VecDeque::new(),
            queued: 0,
            queue_limit,
            sending: false,
            closing: false,
            read_abort: None,
            send_abort: None,
            opened: now,
            last_active: now,
            // A TLS handshake must complete as fast as a message.
            msg_since: tls_pending.then_some(now),
            send_since: None,
            keys: SmallVec::new(),
        }
    }

    /// The buffer for the next read and where in it the read starts.
    pub fn read_buffer(&mut self) -> Option<(BytesMut, usize)> {
        let mut buf = self.rbuf.take()?;
        let want = if self.read_large {
            READ_LARGE
        } else {
            READ_SMALL
        };
        if buf.is_empty() && buf.capacity() > 2 * READ_LARGE {
            // Give a large buffer back once a burst is over.
            buf = BytesMut::new();
        }
        buf.reserve(want);
        let start = buf.len();
        Some((buf, start))
    }

    /// A read of `n` bytes into `buf` (from [`read_buffer`](Self::read_buffer))
    /// finished: frames what arrived, answers pings (queued), runs TLS.
    pub fn on_read(
        &mut self,
        buf: BytesMut,
        n: usize,
        limits: Limits,
        now: Instant,
    ) -> Result<Received, Close> {
        self.read_large = buf.len() == buf.capacity() && n > 0;
        self.rbuf = Some(buf);
        self.last_active = now;
        let mut got = Received {
            messages: SmallVec::new(),
            pings: 0,
            ws_closed: false,
        };
        if self.tls.is_some() {
            self.decrypt()?;
        }
        let Conn {
            tls,
            rbuf,
            plain,
            framer,
            ws,
            ws_closed,
            ws_peer_closed,
            ..
        } = self;
        let stream = match tls {
            Some(_) => plain,
            None => rbuf.as_mut().ok_or(Close::Stop)?,
        };
        // A 100 Continue goes out before whatever the messages read with it
        // produce: the engine sees them only after this returns.
        let mut answers: SmallVec<[Bytes; 2]> = SmallVec::new();
        let mut close_after = false;
        match ws {
            Some(decoder) if !*ws_peer_closed => {
                let max = limits.max_message;
                loop {
                    let event = match decoder.next(stream, max) {
                        Ok(Some(e)) => e,
                        Ok(None) => break,
                        Err(e) => {
                            // Say why before closing (RFC 6455 §7.1.7).
                            stream.clear();
                            *ws_closed = true;
                            *ws_peer_closed = true;
                            answers.push(websocket::close_frame(e.status(), e.reason()));
                            log::info!("websocket: {e}");
                            close_after = true;
                            break;
                        }
                    };
                    match event {
                        // An empty message means nothing in SIP; an empty
                        // delivery is how the runtime reports a closing
                        // handshake (see `Inbound::data`).
                        Event::Message(m) if m.is_empty() => {}
                        // After our close frame, what still arrives is dropped.
                        Event::Message(_) if *ws_closed => {}
                        Event::Message(m) => got.messages.push(m),
                        Event::Ping(data) => {
                            got.pings += 1;
                            answers.push(websocket::control_frame(opcode::PONG, &data));
                        }
                        Event::Pong(_) => {}
                        Event::Close(_) => {
                            // §5.5.1: answer with a close frame (unless this
                            // answers ours), then close; Kamailio answers
                            // 1000 "Normal closure".
                            stream.clear();
                            if !*ws_closed {
                                answers.push(websocket::close_frame(
                                    websocket::status::NORMAL,
                                    b"Normal closure",
                                ));
                            }
                            *ws_closed = true;
                            *ws_peer_closed = true;
                            got.ws_closed = true;
                            close_after = true;
                            break;
                        }
                    }
                }
            }
            Some(_) => stream.clear(),
            None => {
                while let Some(frame) = framer.next(stream, limits).map_err(Close::Framing)? {
                    match frame {
                        Frame::Message(m) => got.messages.push(m),
                        Frame::Ping => {
                            got.pings += 1;
                            answers.push(Bytes::from_static(PONG));
                        }
                        Frame::Continue => answers.push(Bytes::from_static(CONTINUE)),
                    }
                }
            }
        }
        // Waiting for the answer to our close frame counts as a message
        // being read: `tcp_msg_read_timeout` bounds the wait.
        let pending = !stream.is_empty()
            || ws.as_ref().is_some_and(|d| d.pending())
            || (*ws_closed && !*ws_peer_closed);
        for answer in answers {
            self.queue_raw(answer, now)?;
        }
        if close_after {
            self.close_when_sent()?;
        }
        // The clock of a message starts at its first byte, and again after
        // each complete message: pipelined traffic keeps it fresh.
        self.msg_since = match (pending, got.messages.is_empty()) {
            (false, _) => None,
            (true, false) => Some(now),
            (true, true) => self.msg_since.or(Some(now)),
        };
        if let Some(tls) = &self.tls {
            if tls.is_handshaking() {
                self.msg_since = self.msg_since.or(Some(self.opened));
            }
        }
        self.flush_tls()?;
        Ok(got)
    }

    /// Feeds the received records to rustls and moves the plaintext out.
    fn decrypt(&mut self) -> Result<(), Close> {
        let (Some(tls), Some(rbuf)) = (self.tls.as_mut(), self.rbuf.as_mut()) else {
            return Ok(());
        };
        let mut records: &[u8] = rbuf;
        let mut closed = false;
        while !records.is_empty() {
            if tls.read_tls(&mut records).map_err(Close::Io)? == 0 {
                break;
            }
            let state = match tls.process_new_packets() {
                Ok(state) => state,
                // The alert rustls queued is not sent: the connection closes now.
                Err(e) => return Err(Close::Tls(e)),
            };
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = self.plain.len();
                self.plain.resize(start + n, 0);
                let read = tls
                    .reader()
                    .read(&mut self.plain[start..])
                    .map_err(Close::Io)?;
                self.plain.truncate(start + read);
            }
            closed |= state.peer_has_closed();
        }
        rbuf.clear();
        if closed {
            return Err(Close::Peer(None));
        }
        Ok(())
    }

    /// Moves what rustls has to send (handshake, records) to the send queue.
    fn flush_tls(&mut self) -> Result<(), Close> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        while tls.wants_write() {
            let mut records = Vec::new();
            tls.write_tls(&mut records).map_err(Close::Io)?;
            if records.is_empty() {
                break;
            }
            self.queued += records.len();
            self.wqueue.push_back(Bytes::from(records));
        }
        Ok(())
    }

    /// Queues one message: in a text frame once the connection speaks
    /// WebSocket (RFC 7118 §5.1: "SIP messages MUST be carried in text or
    /// binary frames"; Kamailio sends text frames), as it is otherwise.
    pub fn queue(&mut self, data: Bytes, now: Instant) -> Result<(), Close> {
        if self.ws.is_some() {
            if self.ws_closed {
                // RFC 6455 §5.5.1: nothing follows a close frame.
                log::debug!("websocket {}: closing, message not sent", self.peer);
                return Ok(());
            }
            self.queue_raw(websocket::frame_header(opcode::TEXT, data.len()), now)?;
        }
        self.queue_raw(data, now)
    }

    /// The connection speaks WebSocket from now on (the `101` answer is
    /// queued already): `ws` over TCP, `wss` over TLS.
    pub fn upgrade_to_websocket(&mut self) {
        self.ws = Some(websocket::Decoder::default());
        self.proto = match self.proto {
            Proto::Tls => Proto::Wss,
            _ => Proto::Ws,
        };
    }

    /// Sends a close frame with `payload` (status code, reason); the
    /// connection closes once the peer answers with its own (as Kamailio
    /// waits for it), or when `tcp_msg_read_timeout` runs out.
    pub fn close_websocket(&mut self, payload: &[u8], now: Instant) -> Result<(), Close> {
        if self.ws.is_none() || self.ws_closed {
            return Err(Close::AsAsked);
        }
        let (code, reason) = match payload {
            [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
            _ => (websocket::status::NORMAL, &[][..]),
        };
        self.queue_raw(websocket::close_frame(code, reason), now)?;
        self.ws_closed = true;
        self.msg_since = self.msg_since.or(Some(now));
        Ok(())
    }

    /// When something was last sent or received.
    pub fn last_active(&self) -> Instant {
        self.last_active
    }

    /// Queues a control `frame` (ping, pong) when the connection speaks
    /// WebSocket and has not sent its close; whether it was queued.
    pub fn queue_websocket_control(&mut self, frame: Bytes, now: Instant) -> Result<bool, Close> {
        if self.ws.is_none() || self.ws_closed {
            return Ok(false);
        }
        self.queue_raw(frame, now)?;
        Ok(true)
    }

    /// Queues `frame` (a ping or pong) when the connection speaks WebSocket
    /// and nothing went either way for `idle`; whether it was queued.
    pub fn websocket_keepalive(
        &mut self,
        idle: Duration,
        frame: &Bytes,
        now: Instant,
    ) -> Result<bool, Close> {
        let quiet = now.saturating_duration_since(self.last_active) >= idle;
        if self.ws.is_none() || self.ws_closed || !quiet || self.sending {
            return Ok(false);
        }
        self.queue_raw(frame.clone(), now)?;
        // The next one after another idle period, answered or not.
        self.last_active = now;
        Ok(true)
    }

    /// Queues bytes as they are (encrypted first on TLS; rustls keeps them
    /// until the handshake is done). The queue is bounded.
    fn queue_raw(&mut self, data: Bytes, now: Instant) -> Result<(), Close> {
        match self.tls.as_mut() {
            Some(tls) => {
                tls.writer().write_all(&data).map_err(|_| Close::Overflow)?;
                self.flush_tls()?;
            }
            None => {
                self.queued += data.len();
                self.wqueue.push_back(data);
            }
        }
        if self.send_since.is_none() && !self.wqueue.is_empty() {
            self.send_since = Some(now);
        }
        if self.queued > self.queue_limit {
            return Err(Close::Overflow);
        }
        Ok(())
    }

    /// Closes once what is queued now is sent; TLS queues its close_notify
    /// alert (RFC 8446 §6.1) behind it.
    pub fn close_when_sent(&mut self) -> Result<(), Close> {
        self.closing = true;
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            self.flush_tls()?;
        }
        Ok(())
    }

    /// Whether the connection was asked to close and has sent everything.
    pub fn done_sending(&self) -> bool {
        // TLS: the handshake must be over, else the message is still inside rustls.
        let tls_done = self
            .tls
            .as_ref()
            .is_none_or(|t| !t.is_handshaking() && !t.wants_write());
        self.closing && !self.sending && self.wqueue.is_empty() && tls_done
    }

    /// The next buffers to send, if nothing is in flight and the connection
    /// can send.
    pub fn send_batch(&mut self) -> Option<Vec<Bytes>> {
        if self.sending || self.phase == Phase::Connecting || self.wqueue.is_empty() {
            return None;
        }
        let n = self.wqueue.len().min(SEND_BATCH);
        let batch: Vec<Bytes> = self.wqueue.drain(..n).collect();
        self.sending = true;
        Some(batch)
    }

    /// A send of `batch` finished having written `n` bytes; what was not
    /// written goes back to the front of the queue.
    pub fn on_sent(&mut self, batch: Vec<Bytes>, n: usize, now: Instant) {
        self.sending = false;
        self.queued = self.queued.saturating_sub(n);
        self.last_active = now;
        let mut written = n;
        let mut rest = Vec::new();
        for mut buf in batch {
            if written >= buf.len() {
                written -= buf.len();
                continue;
            }
            buf = buf.slice(written..);
            written = 0;
            rest.push(buf);
        }
        for buf in rest.into_iter().rev() {
            self.wqueue.push_front(buf);
        }
        self.send_since = if self.wqueue.is_empty() {
            None
        } else {
            Some(now)
        };
    }

    /// The outgoing connection is established.
    pub fn on_connected(&mut self, local: SocketAddr, now: Instant) -> Result<(), Close> {
        self.phase = Phase::Open;
        self.local = local;
        self.last_active = now;
        if self.send_since.is_some() {
            self.send_since = Some(now);
        }
        self.flush_tls()
    }

    /// Why this connection must close at `now`, if it must.
    pub fn expired(&self, now: Instant, t: &Timeouts) -> Option<Close> {
        let past = |since: Instant, limit: Duration| now.saturating_duration_since(since) >= limit;
        if self.phase == Phase::Connecting {
            return past(self.opened, t.connect).then(|| {
                Close::ConnectFailed(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            });
        }
        if self.msg_since.is_some_and(|s| past(s, t.msg_read)) {
            return Some(Close::Slow("message or handshake"));
        }
        if self.send_since.is_some_and(|s| past(s, t.send)) {
            return Some(Close::Slow("send"));
        }
        if past(self.last_active, t.lifetime) {
            return Some(Close::Idle);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Type};

    const LIMITS: Limits = Limits {
        max_message: 1000,
        accept_no_cl: false,
    };

    const T: Timeouts = Timeouts {
        lifetime: Duration::from_secs(100),
        msg_read: Duration::from_secs(10),
        connect: Duration::from_secs(5),
        send: Duration::from_secs(7),
    };

    fn conn(phase: Phase, now: Instant) -> Conn {
        let socket = Socket2::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let addr: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        Conn::new(
            ConnId::from_raw(1),
            Proto::Tcp,
            0,
            addr,
            addr,
            SharedFd::new(socket),
            phase,
            None,
            100,
            now,
        )
    }

    /// Puts `bytes` in the read buffer as a read would.
    fn read(c: &mut Conn, bytes: &[u8], now: Instant) -> Result<Received, Close> {
        let (mut buf, start) = c.read_buffer().unwrap();
        buf.truncate(start);
        buf.extend_from_slice(bytes);
        c.on_read(buf, bytes.len(), LIMITS, now)
    }

    #[test]
    fn partial_sends_keep_order() {
        let now = Instant::now();
        let mut c = conn(Phase::Open, now);
        c.queue(Bytes::from_static(b"abc"), now).unwrap();
        c.queue(Bytes::from_static(b"defg"), now).unwrap();
        let batch = c.send_batch().unwrap();
        assert!(c.send_batch().is_none(), "one send at a time");
        c.on_sent(batch, 4, now);
        let batch = c.send_batch().unwrap();
        assert_eq!(batch, [Bytes::from_static(b"efg")]);
        c.on_sent(batch, 3, now);
        assert!(c.send_batch().is_none());
        assert!(c
            .expired(now + T.send * 2, &T)
            .is_none_or(|w| matches!(w, Close::Idle)));
    }

    #[test]
    fn queue_is_bounded() {
        let now = Instant::now();
        let mut c = conn(Phase::Open, now);
        assert!(c.queue(Bytes::from(vec![0; 100]), now).is_ok());
        assert!(matches!(
            c.queue(Bytes::from_static(b"x"), now),
            Err(Close::Overflow)
        ));
    }

    #[test]
    fn pings_are_answered_and_clocks_run() {
        let now = Instant::now();
        let mut c = conn(Phase::Open, now);
        let got = read(&mut c, b"\r\n\r\nOPTIONS sip:x SIP/2.0\r\n", now).unwrap();
        assert_eq!((got.pings, got.messages.len()), (1, 0));
        assert_eq!(c.send_batch().unwrap(), [Bytes::from_static(PONG)]);
        // Half a message: the message clock runs from now.
        assert!(c
            .expired(now + Duration::from_secs(9), &T)
            .is_none_or(|w| matches!(w, Close::Slow("send"))));
        assert!(matches!(
            c.expired(now + Duration::from_secs(10), &T),
            Some(Close::Slow(_))
        ));
        let got = read(&mut c, b"l: 0\r\n\r\n", now + Duration::from_secs(1)).unwrap();
        assert_eq!(got.messages.len(), 1);
        c.on_sent(
            vec![Bytes::from_static(PONG)],
            2,
            now + Duration::from_secs(1),
        );
        assert!(c.expired(now + Duration::from_secs(50), &T).is_none());
        assert!(matches!(
            c.expired(now + Duration::from_secs(101), &T),
            Some(Close::Idle)
        ));
    }

    #[test]
    fn connecting_times_out() {
        let now = Instant::now();
        let mut c = conn(Phase::Connecting, now);
        c.queue(Bytes::from_static(b"x"), now).unwrap();
        assert!(
            c.send_batch().is_none(),
            "nothing is sent before connecting"
        );
        assert!(c.expired(now + Duration::from_secs(4), &T).is_none());
        assert!(matches!(
            c.expired(now + Duration::from_secs(5), &T),
            Some(Close::ConnectFailed(_))
        ));
    }
}
