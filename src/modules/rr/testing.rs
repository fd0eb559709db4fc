//! A message context over a parsed message and a small [`Env`], for unit
//! tests of the rr functions (no sockets, no script).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::RrConfig;
use crate::script::ctx::{CoreState, Env, MsgCtx, SocketInfo};
use crate::script::ir::Program;
use crate::script::registry::{Arg, Args, RouteType};
use crate::sip::{serialize, Message, Proto, SocketId, Transmit};

/// Our addresses in the tests.
pub const UDP: &str = "192.0.2.10:5060";
pub const TCP: &str = "192.0.2.10:5060";
pub const UDP2: &str = "192.0.2.20:5070";
pub const V6: &str = "[2001:db8::10]:5060";

/// Socket ids of [`env`].
pub const S_UDP: SocketId = 0;
pub const S_TCP: SocketId = 1;
pub const S_UDP2: SocketId = 2;
pub const S_V6: SocketId = 3;

/// UDP and TCP on 192.0.2.10:5060, UDP on 192.0.2.20:5070, UDP on [2001:db8::10]:5060.
pub fn env() -> Env {
    let sock = |proto, addr: &str| SocketInfo {
        proto,
        addr: addr.parse().unwrap(),
        advertise: None,
    };
    Env {
        sockets: vec![
            sock(Proto::Udp, UDP),
            sock(Proto::Tcp, TCP),
            sock(Proto::Udp, UDP2),
            sock(Proto::Udp, V6),
        ],
        ..Env::default()
    }
}

/// An instant for `MsgCtx::now`, which the rr functions never read. The
/// sans-IO layers may not read the clock, not even in their tests
/// (tests/layering.rs checks the text), so it comes from a zero-length timer
/// channel, once; say so in review if a shared test clock appears.
fn some_instant() -> Instant {
    static AT: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(|| {
        crossbeam_channel::after(std::time::Duration::ZERO)
            .recv()
            .expect("a zero-length timer fires")
    });
    *AT
}

/// What a test context borrows.
pub struct Harness {
    pub env: Env,
    pub program: Program,
    pub core: CoreState,
    pub out: Vec<Transmit>,
    pub msg: Message,
    /// Receiving socket, its address, the source.
    pub socket: SocketId,
    pub local: SocketAddr,
    pub src: SocketAddr,
}

impl Harness {
    /// A request received on UDP 192.0.2.10:5060 from 198.51.100.1:5060.
    pub fn new(text: &str) -> Harness {
        Harness::with_env(env(), text)
    }

    pub fn with_env(env: Env, text: &str) -> Harness {
        let msg = Message::parse(Bytes::from(text.replace('\n', "\r\n"))).expect("test message");
        let program = Program::default();
        Harness {
            core: CoreState::new(&program),
            program,
            env,
            out: Vec::new(),
            msg,
            socket: S_UDP,
            local: UDP.parse().unwrap(),
            src: "198.51.100.1:5060".parse().unwrap(),
        }
    }

    /// Received on socket `s` of [`env`].
    pub fn on(mut self, s: SocketId) -> Harness {
        self.socket = s;
        self.local = self.env.sockets[usize::from(s)].addr;
        self
    }

    pub fn source(mut self, src: &str) -> Harness {
        self.src = src.parse().unwrap();
        self
    }

    pub fn ctx(&mut self) -> MsgCtx<'_> {
        let proto = self.env.sockets[usize::from(self.socket)].proto;
        let from = crate::tm::Source {
            src: self.src,
            local: self.local,
            proto,
            socket: self.socket,
            conn: None,
        };
        MsgCtx::new(
            &self.env,
            &self.program,
            &mut self.core,
            &self.msg,
            from,
            some_instant(),
            RouteType::Request,
            &mut self.out,
        )
    }
}

/// Call arguments as a fixup leaves them: the given strings, then `cfg`.
pub fn args(cfg: &RrConfig, strs: &[&str]) -> Args {
    let mut v: Vec<Arg> = strs
        .iter()
        .map(|s| Arg::Str(Bytes::copy_from_slice(s.as_bytes())))
        .collect();
    v.push(Arg::Custom(Box::new(Arc::new(cfg.clone()))));
    Args(v)
}

/// The message as it would be sent with the context's edits and R-URI.
pub fn serialized(ctx: &MsgCtx<'_>) -> String {
    let mut edits = ctx.edits.clone();
    if let Some(uri) = &ctx.new_uri {
        edits.set_request_uri(ctx.msg, uri.clone());
    }
    let mut out = Vec::new();
    serialize(ctx.msg, &edits, &mut out);
    Message::parse(Bytes::from(out.clone())).expect("serialized message re-parses");
    String::from_utf8(out).unwrap().replace("\r\n", "\n")
}

/// Header lines named `name` (case-insensitive) of a serialized message.
pub fn lines<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    text.lines()
        .take_while(|l| !l.is_empty())
        .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .collect()
}
