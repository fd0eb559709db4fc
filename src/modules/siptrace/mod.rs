//! siptrace: copies of SIP traffic to a capture server (Homer/HEP) or to a
//! SIP URI, as Kamailio 5.6's module does.
//!
//! - `sip_trace([uri[, correlation_id[, mode]]])`: sends a copy of the
//!   current message as it was received (before the script's changes) to
//!   `uri` (else `duplicate_uri`). Mode `m` traces this message only; `t`
//!   (a request, tm loaded) also every message of its transaction: the
//!   request as relayed to each branch, the replies received, the replies
//!   sent upstream (stateless `sl` replies too), and for an INVITE the
//!   CANCEL received and relayed with the replies to it, the ACK tm sends
//!   for a negative final and the caller's ACK of it. Retransmissions
//!   ringsip sends are not traced again. Without a mode it is `t`
//!   when the message has `trace_flag` set, else `m`. The correlation id
//!   goes only into the HEPv3 packet of the message `sip_trace` was called
//!   on. 1 when sent; -1 when tracing is off (`trace_on` 0, RPC
//!   `siptrace.status off`), with no destination, or `t` on a reply.
//! - `sip_trace_mode(mode)`: the same with `duplicate_uri` and no
//!   correlation id.
//! - `hlog([correlation_id,] message)`: a HEPv3 log packet (protocol type
//!   100) to `duplicate_uri`, correlated by the Call-ID when no id is given.
//!
//! With `hep_mode_on` 1 each copy is a HEP packet (`hep_version` 1, 2 or 3,
//! `hep_capture_id`, `auth_key`); otherwise the SIP message itself is sent,
//! byte for byte. Copies always go over UDP, from the listening socket
//! that fits the destination, or `force_send_sock` / `send_sock_addr`.
//! `trace_local_ip` stands for the local end of every copy. With
//! `trace_sl_acks` (1 by default) an ACK to a stateless reply is traced to
//! `duplicate_uri` whenever tracing is on, with no `sip_trace` call.
//!
//! Differences from Kamailio (documented, refused at start-up where they
//! would change behaviour):
//! * storing to the `sip_trace` table (`trace_to_database`, 1 by default in
//!   Kamailio) is not implemented: a configuration must set it to 0;
//! * `trace_mode` 1 (mirror all traffic), `xheaders_write`/`xheaders_read`
//!   and dialog tracing (`d`) are refused;
//! * a transaction is followed by its Call-ID and CSeq on the core that
//!   received its request, for 5 s after its final reply went upstream
//!   (at most 180 s); a retransmission is told by its bytes;
//! * a retransmitted request is absorbed by its transaction before any
//!   route runs, so `sip_trace` does not see it again (Kamailio runs the
//!   script on it and traces it once more);
//! * the copies follow ringsip's send order (it answers a CANCEL before
//!   relaying it; Kamailio relays first).

mod hep;

pub use hep::{hep2_sip, hep3_log, hep3_sip, Agent, Capture};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::script::ctx::{Env, MsgCtx};
use crate::script::registry::{
    func, param, Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::sip::packet::SendFlags;
use crate::sip::uri::Uri;
use crate::sip::{HeaderName, Inbound, Message, Proto, Transmit};

pub static MODULE: ModuleDef = ModuleDef {
    name: "siptrace",
    aliases: &[],
    functions: FUNCTIONS,
    params: PARAMS,
    always: false,
};

const FUNCTIONS: &[FunctionDef] = &[
    func(
        "sip_trace",
        0,
        3,
        RouteMask::ANY,
        Some(fixup_trace),
        sip_trace,
    ),
    func(
        "sip_trace_mode",
        1,
        1,
        RouteMask::ANY,
        Some(fixup_settings),
        sip_trace_mode,
    ),
    func("hlog", 1, 2, RouteMask::ANY, Some(fixup_settings), hlog),
];

const PARAMS: &[ParamDef] = &[
    param("db_url", ParamKind::Str),
    param("table", ParamKind::Str),
    param("trace_flag", ParamKind::Int),
    param("trace_on", ParamKind::Int),
    param("traced_user_avp", ParamKind::Str),
    param("trace_table_avp", ParamKind::Str),
    param("duplicate_uri", ParamKind::Str),
    param("trace_to_database", ParamKind::Int),
    param("trace_local_ip", ParamKind::Str),
    param("trace_sl_acks", ParamKind::Int),
    param("xheaders_write", ParamKind::Int),
    param("xheaders_read", ParamKind::Int),
    param("hep_mode_on", ParamKind::Int),
    param("hep_version", ParamKind::Int),
    param("hep_capture_id", ParamKind::Int),
    param("trace_delayed", ParamKind::Int),
    param("force_send_sock", ParamKind::Str),
    param("send_sock_addr", ParamKind::Str),
    param("trace_mode", ParamKind::Int),
    param("auth_key", ParamKind::Str),
    param("date_column", ParamKind::Str),
    param("callid_column", ParamKind::Str),
    param("traced_user_column", ParamKind::Str),
    param("msg_column", ParamKind::Str),
    param("method_column", ParamKind::Str),
    param("status_column", ParamKind::Str),
    param("fromip_column", ParamKind::Str),
    param("toip_column", ParamKind::Str),
    param("fromtag_column", ParamKind::Str),
    param("totag_column", ParamKind::Str),
    param("direction_column", ParamKind::Str),
];

/// Kamailio's highest message flag.
const MAX_FLAG: i64 = 31;

/// How long a traced transaction is followed after its final reply went
/// upstream (tm's wait timer), and at most from its request.
const AFTER_FINAL: Duration = Duration::from_secs(5);
const LIFETIME: Duration = Duration::from_secs(180);

/// How each copy is written.
#[derive(Debug, Clone)]
pub enum Encoding {
    /// The SIP message as it is (`hep_mode_on` 0).
    Raw,
    /// HEP version 1 or 2.
    Hep2 { version: u8, capture_id: u32 },
    /// HEP version 3.
    Hep3(Agent),
}

/// What a traced message is to follow: one message or its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Message,
    Transaction,
}

impl Mode {
    /// Kamailio's letters: only one of m/t/d (either case), blanks ignored.
    pub fn parse(text: &[u8]) -> Result<Mode, String> {
        let mut found = None;
        for &b in text {
            let m = match b.to_ascii_lowercase() {
                b' ' | b'\t' => continue,
                b'm' => Mode::Message,
                b't' => Mode::Transaction,
                b'd' => {
                    return Err(
                        "dialog tracing (\"d\") is not implemented in ringsip yet".to_string()
                    )
                }
                _ => {
                    return Err(format!(
                        "invalid trace mode \"{}\" (m, t or d)",
                        String::from_utf8_lossy(text)
                    ))
                }
            };
            if found.replace(m).is_some() {
                return Err(format!(
                    "only one trace mode may be given: \"{}\"",
                    String::from_utf8_lossy(text)
                ));
            }
        }
        found.ok_or_else(|| "empty trace mode".to_string())
    }
}

/// The module's settings and its on/off switch, shared by every core.
#[derive(Debug)]
pub struct Siptrace {
    on: AtomicBool,
    pub encoding: Encoding,
    /// `duplicate_uri`.
    pub duplicate: Option<SocketAddr>,
    /// `trace_flag`, as a bit of the message flags.
    pub flag: Option<u64>,
    /// `trace_local_ip`: the local end written into every copy.
    pub local: Option<(Option<Proto>, SocketAddr)>,
    /// `force_send_sock` / `send_sock_addr`: the local address copies leave from.
    pub send_from: Option<SocketAddr>,
    /// `trace_sl_acks`: an ACK to a stateless reply is traced to
    /// `duplicate_uri` whenever tracing is on.
    pub sl_acks: bool,
    /// What `hlog` writes (always HEPv3, whatever `hep_version` says).
    pub log_agent: Agent,
}

impl Siptrace {
    pub fn from_modparams(mp: &ModParams) -> Result<Siptrace, String> {
        let int = |p: &str| mp.int("siptrace", p);
        if int("trace_to_database").unwrap_or(1) != 0 {
            return Err(
                "siptrace: storing to the sip_trace table (trace_to_database, 1 by \
                 default) is not implemented in ringsip yet: set modparam(\"siptrace\", \
                 \"trace_to_database\", 0)"
                    .to_string(),
            );
        }
        for p in ["trace_mode", "xheaders_write", "xheaders_read"] {
            if int(p).unwrap_or(0) != 0 {
                return Err(format!(
                    "siptrace: {p} other than 0 is not implemented in ringsip yet"
                ));
            }
        }
        let capture_id = int("hep_capture_id").unwrap_or(1);
        let log_agent = Agent {
            capture_id: capture_id as u32,
            auth_key: mp
                .str("siptrace", "auth_key")
                .filter(|k| !k.is_empty())
                .map(|k| k.as_bytes().to_vec()),
        };
        let encoding = match (
            int("hep_mode_on").unwrap_or(0),
            int("hep_version").unwrap_or(1),
        ) {
            (_, v) if !(1..=3).contains(&v) => {
                return Err(format!("siptrace: unsupported version of HEP: {v}"))
            }
            (0, _) => Encoding::Raw,
            (_, 3) => Encoding::Hep3(log_agent.clone()),
            (_, v) => Encoding::Hep2 {
                version: v as u8,
                capture_id: capture_id as u32,
            },
        };
        let flag = match int("trace_flag") {
            None | Some(-1) => None,
            Some(f) if (0..=MAX_FLAG).contains(&f) => Some(1u64 << f),
            Some(f) => return Err(format!("siptrace: invalid trace flag {f}")),
        };
        let duplicate = match mp.str("siptrace", "duplicate_uri") {
            Some(u) => Some(
                parse_uri(u.as_bytes()).map_err(|e| format!("siptrace: bad duplicate_uri: {e}"))?,
            ),
            None => None,
        };
        let local = match mp
            .str("siptrace", "trace_local_ip")
            .filter(|s| !s.is_empty())
        {
            Some(s) => {
                Some(parse_hostport(s).ok_or_else(|| format!("siptrace: bad trace_local_ip {s}"))?)
            }
            None => None,
        };
        let sock = mp
            .str("siptrace", "force_send_sock")
            .or_else(|| mp.str("siptrace", "send_sock_addr"));
        let send_from = match sock {
            Some(u) => Some(
                parse_uri(u.as_bytes()).map_err(|e| format!("siptrace: bad send socket: {e}"))?,
            ),
            None => None,
        };
        Ok(Siptrace {
            on: AtomicBool::new(int("trace_on").unwrap_or(0) != 0),
            encoding,
            duplicate,
            flag,
            local,
            send_from,
            sl_acks: int("trace_sl_acks").unwrap_or(1) != 0,
            log_agent,
        })
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// RPC `siptrace.status on|off`.
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// The datagram that carries `c` (with `correlation` for HEPv3).
    pub fn encode(&self, c: &Capture<'_>, correlation: &[u8]) -> Option<Vec<u8>> {
        match &self.encoding {
            Encoding::Raw => Some(c.payload.to_vec()),
            Encoding::Hep2 {
                version,
                capture_id,
            } => hep2_sip(c, *version, *capture_id),
            Encoding::Hep3(agent) => hep3_sip(c, agent, correlation),
        }
    }

    /// The copy of a message that went from `src` to `dst` (the local end
    /// being `trace_local_ip` when set: `dst` when `incoming`, else `src`).
    fn capture<'a>(
        &self,
        payload: &'a [u8],
        mut src: SocketAddr,
        mut dst: SocketAddr,
        mut proto: Proto,
        incoming: bool,
        time: Duration,
    ) -> Capture<'a> {
        if let Some((p, addr)) = self.local {
            if incoming {
                dst = addr;
            } else {
                src = addr;
            }
            proto = p.unwrap_or(proto);
        }
        Capture {
            payload,
            src: canonical(src),
            dst: canonical(dst),
            ip_proto: ip_proto(proto),
            time,
        }
    }

    /// One copy to `to`, over UDP.
    fn transmit(&self, env: &Env, data: Vec<u8>, to: SocketAddr) -> Transmit {
        let socket = self
            .send_from
            .and_then(|a| {
                env.sockets
                    .iter()
                    .position(|s| s.proto == Proto::Udp && s.addr == a)
            })
            .map(|i| i as crate::sip::packet::SocketId);
        Transmit {
            data: Bytes::from(data),
            dst: to,
            proto: Proto::Udp,
            socket,
            local: self.send_from.filter(|_| socket.is_some()),
            conn: None,
            flags: SendFlags::default(),
        }
    }

    /// Queues a copy made while a message is handled; its buffer is noted
    /// so the scan of what is sent does not take it for traffic.
    fn send(
        &self,
        env: &Env,
        data: Vec<u8>,
        to: SocketAddr,
        traced: &mut Traced,
        out: &mut Vec<Transmit>,
    ) {
        let t = self.transmit(env, data, to);
        traced.own.push(t.data.as_ptr() as usize);
        out.push(t);
    }
}

fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// The IP protocol number Kamailio writes for a transport (22, "IDP", for
/// the TLS and WebSocket ones).
fn ip_proto(p: Proto) -> u8 {
    match p {
        Proto::Udp => 17,
        Proto::Tcp => 6,
        Proto::Sctp => 132,
        Proto::Tls | Proto::Ws | Proto::Wss => 22,
    }
}

/// A `sip:` URI naming an IP address (port 5060 by default).
fn parse_uri(text: &[u8]) -> Result<SocketAddr, String> {
    let uri = Uri::parse(text).map_err(|e| format!("{}: {e}", String::from_utf8_lossy(text)))?;
    let host = uri.host_raw();
    let host = host
        .strip_prefix(b"[")
        .and_then(|h| h.strip_suffix(b"]"))
        .unwrap_or(host);
    let ip: IpAddr = std::str::from_utf8(host)
        .ok()
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| {
            format!(
                "{}: the host must be an IP address in ringsip",
                String::from_utf8_lossy(text)
            )
        })?;
    Ok(SocketAddr::new(ip, uri.port().unwrap_or(5060)))
}

/// `[proto:]ip[:port]` (`trace_local_ip`; port 0 when absent, as Kamailio).
fn parse_hostport(text: &str) -> Option<(Option<Proto>, SocketAddr)> {
    let (proto, rest) = match text.split_once(':') {
        Some(("udp", r)) => (Some(Proto::Udp), r),
        Some(("tcp", r)) => (Some(Proto::Tcp), r),
        Some(("tls", r)) => (Some(Proto::Tls), r),
        Some(("sctp", r)) => (Some(Proto::Sctp), r),
        Some(("ws", r)) => (Some(Proto::Ws), r),
        Some(("wss", r)) => (Some(Proto::Wss), r),
        _ => (None, text),
    };
    if let Ok(a) = rest.parse::<SocketAddr>() {
        return Some((proto, a));
    }
    if let Ok(ip) = rest
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Some((proto, SocketAddr::new(ip, 0)));
    }
    let (host, port) = rest.rsplit_once(':')?;
    Some((
        proto,
        SocketAddr::new(host.parse().ok()?, port.parse().ok()?),
    ))
}

/// The transactions a core follows for `sip_trace` in mode `t`, by Call-ID,
/// CSeq number and method.
#[derive(Debug, Default)]
pub struct Traced {
    txs: HashMap<Vec<u8>, Follow>,
    /// The copies queued during the current input (their buffers).
    own: Vec<usize>,
    /// When to drop the transactions that are over, next.
    purge_len: usize,
}

#[derive(Debug)]
struct Follow {
    to: SocketAddr,
    until: Instant,
    /// The final status sent upstream, once it was.
    final_code: Option<u16>,
    /// What was traced going out (destination and bytes, hashed): tm's
    /// retransmissions are not traced again, as in Kamailio.
    sent: Vec<u64>,
}

impl Traced {
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Whether what was queued must be looked at: transactions are
    /// followed, or copies were queued (whose marks are then cleared).
    pub fn needs_scan(&self) -> bool {
        !self.txs.is_empty() || !self.own.is_empty()
    }

    fn follow(&mut self, key: Vec<u8>, to: SocketAddr, now: Instant) {
        if self.txs.len() >= self.purge_len {
            self.txs.retain(|_, f| f.until > now);
            self.purge_len = (self.txs.len() * 2).max(64);
        }
        self.txs.entry(key).or_insert(Follow {
            to,
            until: now + LIFETIME,
            final_code: None,
            sent: Vec::new(),
        });
    }

    /// The followed transaction of a message, and how the message relates to it.
    fn lookup(&mut self, msg: &Message, now: Instant) -> Option<(&mut Follow, Part)> {
        let (key, part) = key(msg)?;
        let f = self.txs.get_mut(&key)?;
        (f.until > now).then_some((f, part))
    }
}

/// How a message belongs to the INVITE transaction it is keyed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The transaction's own request or a reply to it.
    Own,
    /// A CANCEL of it, or a reply to that CANCEL (Kamailio traces both ways).
    Cancel,
    /// An ACK: traced when it acknowledges a negative final (tm's own ACK
    /// downstream, the caller's ACK absorbed by the transaction); the ACK of
    /// a 2xx is another transaction.
    Ack,
}

/// Call-ID, CSeq number and method of a message (for a reply, the CSeq's);
/// a CANCEL and an ACK are keyed to the INVITE they belong to.
fn key(msg: &Message) -> Option<(Vec<u8>, Part)> {
    let call_id = msg.call_id()?;
    let cseq = msg.header_value(HeaderName::CSeq)?;
    let mut parts = cseq
        .split(|b| b.is_ascii_whitespace())
        .filter(|p| !p.is_empty());
    let (num, method) = (parts.next()?, parts.next()?);
    let (method, part) = match method {
        b"CANCEL" => (&b"INVITE"[..], Part::Cancel),
        b"ACK" => (&b"INVITE"[..], Part::Ack),
        m => (m, Part::Own),
    };
    let mut k = Vec::with_capacity(call_id.len() + num.len() + method.len() + 2);
    k.extend_from_slice(call_id);
    k.push(0);
    k.extend_from_slice(num);
    k.push(0);
    k.extend_from_slice(method);
    Some((k, part))
}

fn sent_hash(dst: SocketAddr, data: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dst.hash(&mut h);
    data.hash(&mut h);
    h.finish()
}

fn settings(env: &Env) -> Option<&Siptrace> {
    let st = env.services.get::<Siptrace>();
    if st.is_none() {
        log::error!("siptrace: the module's settings were not loaded");
    }
    st
}

/// Checks the modparams once, where the script is compiled (`ringsip check`
/// reports a refused setting too).
fn fixup_settings(_: &mut Args, mp: &ModParams) -> Result<(), String> {
    Siptrace::from_modparams(mp).map(|_| ())
}

fn fixup_trace(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    fixup_settings(args, mp)?;
    if let Some(arg) = args.0.get_mut(2) {
        // The mode is a plain string in Kamailio (no variables).
        let mode = match arg {
            Arg::Str(s) => Mode::parse(s)?,
            _ => return Err("sip_trace: the mode must be a plain string".to_string()),
        };
        *arg = Arg::Custom(Box::new(mode));
    }
    if let Some(Arg::Str(uri)) = args.0.first() {
        if !uri.is_empty() {
            parse_uri(uri).map_err(|e| format!("sip_trace: bad uri: {e}"))?;
        }
    }
    Ok(())
}

fn sip_trace(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(st) = settings(ctx.env) else {
        return -1;
    };
    let uri = args.str(ctx, 0);
    let to = if uri.is_empty() {
        st.duplicate
    } else {
        match parse_uri(&uri) {
            Ok(a) => Some(a),
            Err(e) => {
                log::error!("siptrace: bad dup uri: {e}");
                return -1;
            }
        }
    };
    let Some(to) = to else {
        log::error!("siptrace: no duplicate_uri modparam nor duplicate uri sip_trace() argument");
        return -1;
    };
    let correlation = args.str(ctx, 1).into_owned();
    let mode = match args.custom::<Mode>(2) {
        Some(m) => *m,
        None if st.flag.is_some_and(|f| ctx.flags & f != 0) => Mode::Transaction,
        None => Mode::Message,
    };
    trace(ctx, st, to, &correlation, mode)
}

fn sip_trace_mode(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(st) = settings(ctx.env) else {
        return -1;
    };
    let mode = match Mode::parse(&args.str(ctx, 0)) {
        Ok(m) => m,
        Err(e) => {
            log::error!("siptrace: {e}");
            return -1;
        }
    };
    let Some(to) = st.duplicate else {
        log::error!("siptrace: no duplicate_uri modparam");
        return -1;
    };
    trace(ctx, st, to, b"", mode)
}

/// Traces the current message to `to`, and follows its transaction in
/// mode `t`.
fn trace(
    ctx: &mut MsgCtx<'_>,
    st: &Siptrace,
    to: SocketAddr,
    correlation: &[u8],
    mode: Mode,
) -> i32 {
    if !st.is_on() {
        log::debug!("siptrace: trace off");
        return -1;
    }
    let msg = ctx.msg;
    if mode == Mode::Transaction {
        if !msg.is_request() {
            log::warn!("siptrace: a transaction is traced from its request message");
            return -1;
        }
        // Without tm there is no transaction to follow. An ACK makes none:
        // only the message is traced. A CANCEL of a followed INVITE was
        // traced as it arrived (once, as in Kamailio).
        if ctx.program.loaded_modules.contains(&"tm") {
            match key(msg) {
                Some((k, Part::Own)) => ctx.core.siptrace.follow(k, to, ctx.now),
                Some((k, Part::Cancel)) if ctx.core.siptrace.txs.contains_key(&k) => return 1,
                _ => {}
            }
        }
    }
    let c = st.capture(msg.buf(), ctx.src, ctx.local, ctx.proto, true, ctx.unix_now);
    let Some(data) = st.encode(&c, correlation) else {
        log::error!(
            "siptrace: cannot encode a message between {} and {}",
            ctx.src,
            ctx.local
        );
        return -1;
    };
    st.send(ctx.env, data, to, &mut ctx.core.siptrace, ctx.out);
    1
}

fn hlog(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(st) = settings(ctx.env) else {
        return -1;
    };
    let (correlation, text) = if args.len() == 2 {
        (args.str(ctx, 0).into_owned(), args.str(ctx, 1).into_owned())
    } else {
        let Some(ci) = ctx.msg.call_id() else {
            log::error!("siptrace: cannot parse Call-Id header");
            return -1;
        };
        (ci.to_vec(), args.str(ctx, 0).into_owned())
    };
    let Some(to) = st.duplicate else {
        log::error!("siptrace: hlog needs duplicate_uri");
        return -1;
    };
    let from = st.send_from.or_else(|| {
        let i = ctx.env.socket_for(Proto::Udp, &to, None)?;
        ctx.env.sockets.get(usize::from(i)).map(|s| s.addr)
    });
    let Some(from) = from else {
        log::error!("siptrace: no UDP socket to send the log from");
        return -1;
    };
    let c = Capture {
        payload: &text,
        src: canonical(from),
        dst: canonical(to),
        ip_proto: 17,
        time: ctx.unix_now,
    };
    let Some(data) = hep3_log(&c, &st.log_agent, &correlation) else {
        return -1;
    };
    st.send(ctx.env, data, to, &mut ctx.core.siptrace, ctx.out);
    1
}

/// A message received for a followed transaction, traced before it is
/// handled (so before what it makes ringsip send): a reply, a CANCEL of
/// it, or the ACK of its negative final.
pub fn trace_received(
    env: &Env,
    traced: &mut Traced,
    msg: &Message,
    pkt: &Inbound,
    now: Instant,
    out: &mut Vec<Transmit>,
) {
    let Some(st) = env.services.get::<Siptrace>().filter(|s| s.is_on()) else {
        return;
    };
    let Some((f, part)) = traced.lookup(msg, now) else {
        return;
    };
    if msg.is_request() {
        let wanted = match part {
            Part::Cancel => true,
            Part::Ack => f.final_code.is_some_and(|c| c >= 300),
            Part::Own => false,
        };
        if !wanted {
            return;
        }
    } else if let Some(code) = msg.status().filter(|c| *c >= 200 && part == Part::Own) {
        f.final_code = Some(code);
    }
    let to = f.to;
    let c = st.capture(
        msg.buf(),
        pkt.src,
        pkt.local,
        pkt.proto,
        true,
        env.clock.unix(now),
    );
    if let Some(data) = st.encode(&c, b"") {
        st.send(env, data, to, traced, out);
    }
}

/// An ACK to a stateless reply (sl absorbs it before any route): traced to
/// `duplicate_uri` when tracing is on and `trace_sl_acks` is set (its
/// default), as Kamailio 5.6.3 did on the wire with no `sip_trace` call.
pub fn trace_sl_ack(
    env: &Env,
    traced: &mut Traced,
    msg: &Message,
    pkt: &Inbound,
    now: Instant,
    out: &mut Vec<Transmit>,
) {
    let Some(st) = env.services.get::<Siptrace>() else {
        return;
    };
    let Some(to) = st.duplicate.filter(|_| st.sl_acks && st.is_on()) else {
        return;
    };
    let time = env.clock.unix(now);
    let c = st.capture(msg.buf(), pkt.src, pkt.local, pkt.proto, true, time);
    if let Some(data) = st.encode(&c, b"") {
        st.send(env, data, to, traced, out);
    }
}

/// The messages queued since `from` that belong to a followed transaction
/// (relayed requests, CANCELs and tm's ACKs of negative finals, replies
/// sent upstream): a copy of each is queued after them, in order; a
/// retransmission is not traced again (tm's ACK sent again for a repeated
/// negative final is, as in Kamailio).
pub fn trace_sent(
    env: &Env,
    traced: &mut Traced,
    from: usize,
    now: Instant,
    out: &mut Vec<Transmit>,
) {
    let own = std::mem::take(&mut traced.own);
    let Some(st) = env.services.get::<Siptrace>().filter(|s| s.is_on()) else {
        return;
    };
    if traced.txs.is_empty() {
        return;
    }
    let time = env.clock.unix(now);
    let end = out.len();
    for i in from.min(end)..end {
        let t = &out[i];
        if own.contains(&(t.data.as_ptr() as usize)) {
            continue;
        }
        let Ok(msg) = Message::parse(t.data.clone()) else {
            continue;
        };
        let Some((f, part)) = traced.lookup(&msg, now) else {
            continue;
        };
        if msg.is_request() && part == Part::Ack && f.final_code.is_none_or(|c| c < 300) {
            continue;
        }
        // tm's ACK answers each copy of a negative final, and Kamailio
        // traces each (seen on the wire); other repeats are retransmissions.
        if part != Part::Ack {
            let h = sent_hash(t.dst, &t.data);
            if f.sent.contains(&h) {
                continue;
            }
            f.sent.push(h);
        }
        if let Some(code) = msg.status().filter(|c| *c >= 200 && part == Part::Own) {
            f.final_code = Some(code);
            f.until = f.until.min(now + AFTER_FINAL);
        }
        let to = f.to;
        let local = t
            .local
            .or_else(|| {
                let i = env.socket_for(t.proto, &t.dst, t.socket)?;
                env.sockets.get(usize::from(i)).map(|s| s.addr)
            })
            .unwrap_or(t.dst);
        let c = st.capture(&t.data, local, t.dst, t.proto, false, time);
        if let Some(data) = st.encode(&c, b"") {
            out.push(st.transmit(env, data, to));
        }
    }
}

#[cfg(test)]
mod tests;
