//! Calls module functions the way the script does (through the module table,
//! with fixups), on messages written as text, with no socket and with virtual
//! time: `Bench::unix_ms` is the wall clock every call sees.
#![allow(dead_code)]

#[cfg(feature = "mysql")]
pub mod mariadb;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod usrloc_life;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ringsip::script::attrs::Attrs;
use ringsip::script::ctx::{Authorized, Branch, CoreState, Env, Epoch, MsgCtx, Shared, SocketInfo};
use ringsip::script::ir::Program;
use ringsip::script::registry::{Arg, Args, ModParams, ModuleDef, RouteType};
use ringsip::sip::{Message, Proto, Transmit};

/// What a call left behind.
#[derive(Debug)]
pub struct Outcome {
    pub rc: i32,
    pub out: Vec<Transmit>,
    pub new_uri: Option<Bytes>,
    pub dst_uri: Option<Bytes>,
    pub branches: Vec<Branch>,
    pub authorized: Option<Authorized>,
    pub edits_empty: bool,
    /// The message with the calls' edits applied.
    pub edited: String,
    /// `$avp`/`$xavp` values the calls left.
    pub attrs: Attrs,
}

impl Outcome {
    /// The first reply sent, as text.
    pub fn reply(&self) -> String {
        let t = self.out.first().expect("a reply was sent");
        String::from_utf8_lossy(&t.data).into_owned()
    }

    /// `(code, reason)` of the first reply.
    pub fn status(&self) -> (u16, String) {
        let r = self.reply();
        let line = r.lines().next().unwrap_or_default().to_string();
        let mut parts = line.splitn(3, ' ');
        parts.next();
        let code = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        (code, parts.next().unwrap_or_default().to_string())
    }

    /// The value of the first header `name` in the first reply.
    pub fn header(&self, name: &str) -> Option<String> {
        self.reply().lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

pub struct Bench {
    pub env: Env,
    pub modparams: ModParams,
    program: Program,
    core: CoreState,
    now: Instant,
    pub src: SocketAddr,
}

impl Bench {
    pub fn new(shared: Shared, unix_ms: u64) -> Bench {
        let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let env = Env {
            sockets: vec![SocketInfo {
                proto: Proto::Udp,
                addr: local,
                advertise: None,
            }],
            epoch: Epoch { at: None, unix_ms },
            services: shared,
            ..Env::default()
        };
        let program = Program::default();
        let core = CoreState::new(&program);
        Bench {
            env,
            modparams: ModParams::default(),
            program,
            core,
            now: Instant::now(),
            src: "127.0.0.2:5070".parse().unwrap(),
        }
    }

    /// Moves the virtual wall clock on.
    pub fn advance(&mut self, secs: u64) {
        self.env.epoch.unix_ms += secs * 1000;
    }

    /// Runs `module.func(args)` on `msg` (lines joined with CRLF) in request_route.
    pub fn call(&mut self, module: &ModuleDef, func: &str, args: &[&str], msg: &str) -> Outcome {
        self.calls(msg, &[(module, func, args)])
    }

    /// Runs several functions in order on one message; the outcome has the last code.
    pub fn calls(&mut self, msg: &str, calls: &[(&ModuleDef, &str, &[&str])]) -> Outcome {
        let msg = Message::parse(Bytes::from(sip(msg))).expect("test message parses");
        let mut out = Vec::new();
        let from = ringsip::tm::Source {
            src: self.src,
            local: "127.0.0.1:5060".parse().unwrap(),
            proto: Proto::Udp,
            socket: 0,
            conn: None,
        };
        let mut ctx = MsgCtx::new(
            &self.env,
            &self.program,
            &mut self.core,
            &msg,
            from,
            self.now,
            RouteType::Request,
            &mut out,
        );
        let mut rc = 0;
        for (module, func, args) in calls {
            let def = module
                .function(func)
                .unwrap_or_else(|| panic!("no function {func}"));
            let mut a = Args(
                args.iter()
                    .map(|s| Arg::Str(Bytes::from(s.to_string())))
                    .collect(),
            );
            if let Some(fixup) = def.fixup {
                fixup(&mut a, &self.modparams).unwrap_or_else(|e| panic!("{func} fixup: {e}"));
            }
            rc = (def.call)(&mut ctx, &a);
        }
        let outcome = Outcome {
            rc,
            new_uri: ctx.new_uri.take(),
            dst_uri: ctx.dst_uri.take(),
            branches: std::mem::take(&mut ctx.branches),
            authorized: ctx.authorized.take(),
            edits_empty: ctx.edits.is_empty(),
            edited: {
                let mut buf = Vec::new();
                ringsip::sip::edit::serialize(&msg, &ctx.edits, &mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            },
            attrs: std::mem::take(&mut ctx.attrs),
            out: Vec::new(),
        };
        drop(ctx);
        Outcome { out, ..outcome }
    }
}

/// `text` with LF line ends made CRLF and an empty line after the headers.
pub fn sip(text: &str) -> String {
    let mut s = text.trim().replace("\r\n", "\n").replace('\n', "\r\n");
    s.push_str("\r\n\r\n");
    s
}

/// A shared state holder for tests.
pub fn shared_with<T: std::any::Any + Send + Sync>(items: Vec<Arc<T>>) -> Shared {
    let mut s = Shared::default();
    for i in items {
        s.insert(i);
    }
    s
}
