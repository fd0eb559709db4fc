//! Unit-test support for module functions: a message context over a parsed
//! message and a small [`Env`], a way to call a function the way the compiler
//! would (fixup, then handler), and the message as it would be sent.

use std::cell::OnceCell;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::script::ctx::{CoreState, Env, MsgCtx, SocketInfo};
use crate::script::ir::Program;
use crate::script::registry::{Arg, Args, ModParams, ModuleDef, RouteType};
use crate::sip::{serialize, Inbound, Message, Proto, SocketId, Transmit};

/// Our UDP and TCP address in the tests.
pub const LOCAL: &str = "192.0.2.10:5060";
/// Where test requests come from.
pub const SOURCE: &str = "198.51.100.1:5070";

pub const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: Bob <sip:bob@example.com>
From: Alice <sip:alice@example.org>;tag=1928301774
Call-ID: a84b4c76e66710@pc33
CSeq: 314159 INVITE
Contact: <sip:alice@198.51.100.1:5070>
Content-Type: application/sdp
Content-Length: 5

v=0
";

/// UDP and TCP on 192.0.2.10:5060, UDP on 192.0.2.20:5080.
pub fn env() -> Env {
    let sock = |proto, addr: &str| SocketInfo {
        proto,
        addr: addr.parse().expect("test address"),
        advertise: None,
    };
    Env {
        sockets: vec![
            sock(Proto::Udp, LOCAL),
            sock(Proto::Tcp, LOCAL),
            sock(Proto::Udp, "192.0.2.20:5080"),
        ],
        aliases: vec![("proxy.example.net".into(), None)],
        ..Env::default()
    }
}

/// An instant for `MsgCtx::now`, which these functions never read. The
/// sans-IO layers may not read the clock, not even in tests (tests/layering.rs
/// reads the text), so it comes from a zero-length timer channel, once.
pub fn some_instant() -> Instant {
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
    pub rebase: [OnceCell<Message>; 2],
    pub socket: SocketId,
    pub src: SocketAddr,
    pub route_type: RouteType,
}

impl Harness {
    /// `text` with `\n` line ends turned into CRLF, received on UDP from [`SOURCE`].
    pub fn new(text: &str) -> Harness {
        let msg = Message::parse(Bytes::from(text.replace('\n', "\r\n"))).expect("test message");
        let program = Program::default();
        Harness {
            core: CoreState::new(&program),
            program,
            env: env(),
            out: Vec::new(),
            msg,
            rebase: Default::default(),
            socket: 0,
            src: SOURCE.parse().expect("test address"),
            route_type: RouteType::Request,
        }
    }

    /// Received over TCP.
    pub fn tcp(mut self) -> Harness {
        self.socket = 1;
        self
    }

    pub fn route(mut self, t: RouteType) -> Harness {
        self.route_type = t;
        self
    }

    pub fn ctx(&mut self) -> MsgCtx<'_> {
        let info = &self.env.sockets[usize::from(self.socket)];
        let from = crate::tm::Source {
            src: self.src,
            local: info.addr,
            proto: info.proto,
            socket: self.socket,
            conn: None,
        };
        let mut ctx = MsgCtx::new(
            &self.env,
            &self.program,
            &mut self.core,
            &self.msg,
            from,
            some_instant(),
            self.route_type,
            &mut self.out,
        );
        ctx.rebase = &self.rebase;
        ctx
    }
}

/// String arguments as the compiler passes constants.
pub fn str_args(strs: &[&str]) -> Args {
    Args(
        strs.iter()
            .map(|s| Arg::Str(Bytes::copy_from_slice(s.as_bytes())))
            .collect(),
    )
}

/// Runs `name`'s fixup on constant arguments, or the error it reports.
pub fn fixed(
    module: &ModuleDef,
    name: &str,
    strs: &[&str],
    params: &ModParams,
) -> Result<Args, String> {
    let def = module
        .function(name)
        .unwrap_or_else(|| panic!("{} has no function {name}", module.name));
    let n = strs.len();
    assert!(
        n >= usize::from(def.min_args) && n <= usize::from(def.max_args),
        "{name}() takes {}..{} arguments",
        def.min_args,
        def.max_args
    );
    let mut args = str_args(strs);
    if let Some(fixup) = def.fixup {
        fixup(&mut args, params)?;
    }
    Ok(args)
}

/// Calls `module`'s function `name` with constant arguments, as a script would.
pub fn call(
    ctx: &mut MsgCtx<'_>,
    module: &ModuleDef,
    name: &str,
    strs: &[&str],
    params: &ModParams,
) -> i32 {
    let args = fixed(module, name, strs, params).unwrap_or_else(|e| panic!("{name}: {e}"));
    let def = module.function(name).expect("function exists");
    assert!(
        def.routes.allows(ctx.route_type),
        "{name}() is not allowed in {:?}",
        ctx.route_type
    );
    (def.call)(ctx, &args)
}

/// [`call`] with no module parameters.
pub fn run(ctx: &mut MsgCtx<'_>, module: &ModuleDef, name: &str, strs: &[&str]) -> i32 {
    call(ctx, module, name, strs, &ModParams::default())
}

/// The message as it would be sent with the context's edits and R-URI, with
/// CRLF shown as `\n`; it must parse again.
pub fn serialized(ctx: &MsgCtx<'_>) -> String {
    let mut edits = ctx.edits.clone();
    if let Some(uri) = &ctx.new_uri {
        edits.set_request_uri(ctx.msg, uri.clone());
    }
    let mut out = Vec::new();
    serialize(ctx.msg, &edits, &mut out);
    Message::parse(Bytes::from(out.clone())).expect("serialized message parses again");
    String::from_utf8(out)
        .expect("test messages are text")
        .replace("\r\n", "\n")
}

/// The one transmission made, as text with `\n` line ends.
pub fn sent(out: &[Transmit]) -> String {
    assert_eq!(out.len(), 1, "expected one transmission");
    String::from_utf8_lossy(&out[0].data).replace("\r\n", "\n")
}

/// `text` received by `engine` on UDP from [`SOURCE`] to [`LOCAL`] (line
/// ends as given); what it sent.
pub fn receive(engine: &mut crate::modules::core::Engine, text: impl Into<Bytes>) -> Vec<Transmit> {
    let pkt = Inbound {
        data: text.into(),
        src: SOURCE.parse().expect("test address"),
        local: LOCAL.parse().expect("test address"),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    };
    let mut out = Vec::new();
    engine.on_inbound(pkt, some_instant(), &mut out);
    out
}
