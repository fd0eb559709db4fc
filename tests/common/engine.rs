//! One core's engine inside the test process, sans-IO: configuration text
//! in, [`Inbound`] packets and `now` given by hand, [`Transmit`]s out. No
//! socket, no sleep: timers run when the test moves `now`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringsip::modules::core::Engine;
use ringsip::script::compile::compile;
use ringsip::script::ctx::{Env, SocketInfo};
use ringsip::script::registry::ModParams;
use ringsip::script::{self as script_lang, MemoryFiles, Options};
use ringsip::sip::{Inbound, Proto, Transmit};

/// The engine's one UDP socket.
pub const PROXY: &str = "127.0.0.1:5060";

/// An engine running `cfg`, with tm configured from its modparams.
pub fn engine(cfg: &str) -> Engine {
    engine_with(cfg, |_, _| {})
}

/// As [`engine`]; `setup` adds module state to the environment (usrloc,
/// a resolver…) from the configuration's modparams.
pub fn engine_with(cfg: &str, setup: impl FnOnce(&mut Env, &ModParams)) -> Engine {
    let files = MemoryFiles::default();
    let config = script_lang::parse_str("test.cfg", cfg, &Options::with_files(&files))
        .unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let compiled = compile(&config).unwrap_or_else(|d| panic!("{}", d.rendered().join("\n")));
    let mut env = Env {
        sockets: vec![SocketInfo {
            proto: Proto::Udp,
            addr: PROXY.parse().unwrap(),
            advertise: None,
        }],
        ..Env::default()
    };
    setup(&mut env, &compiled.modparams);
    let tm = ringsip::modules::tm::config_from(&compiled.modparams);
    Engine::new(Arc::new(env), Arc::new(compiled.program)).with_tm(tm, 0)
}

/// A UDP datagram from `from` to [`PROXY`]; `text`'s LF line ends become CRLF.
/// The buffer is made as the runtime makes a received one (a copy of exactly
/// its length, whose first clone allocates), so that allocation counts are
/// the runtime's.
pub fn inbound(from: &str, text: &str) -> Inbound {
    let text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    Inbound {
        data: Bytes::copy_from_slice(text.as_bytes()),
        src: from.parse().unwrap(),
        local: PROXY.parse().unwrap(),
        proto: Proto::Udp,
        socket: 0,
        conn: None,
        arrived: None,
    }
}

/// The text of what went to `dst`, in order.
pub fn sent_to(out: &[Transmit], dst: &str) -> Vec<String> {
    let dst: SocketAddr = dst.parse().unwrap();
    out.iter()
        .filter(|t| t.dst == dst)
        .map(|t| String::from_utf8_lossy(&t.data).into_owned())
        .collect()
}

/// An engine on virtual time, and what it sent that no test took yet.
pub struct Net {
    pub e: Engine,
    pub now: Instant,
    pub sent: Vec<Transmit>,
}

impl Net {
    pub fn of(e: Engine) -> Net {
        Net {
            e,
            now: Instant::now(),
            sent: Vec::new(),
        }
    }

    /// `text` (LF line ends) from `from`, at the current virtual time.
    pub fn deliver(&mut self, from: &str, text: &str) {
        self.e
            .on_inbound(inbound(from, text), self.now, &mut self.sent);
    }

    /// Advances virtual time by `d`, firing due timers on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(at) = self.e.next_deadline().filter(|at| *at <= end) {
            self.now = at.max(self.now);
            self.e.on_timer(self.now, &mut self.sent);
        }
        self.now = end;
    }

    /// Takes what was sent to `dst` so far.
    pub fn take(&mut self, dst: &str) -> Vec<super::ua::SipMsg> {
        let dst: SocketAddr = dst.parse().unwrap();
        let (mine, rest): (Vec<_>, Vec<_>) = self.sent.drain(..).partition(|t| t.dst == dst);
        self.sent = rest;
        mine.into_iter()
            .map(|t| super::ua::SipMsg::new(t.data.to_vec(), None))
            .collect()
    }
}
