//! log_custom: `log_udp(text)` sends `text` as one UDP datagram, from a
//! listening socket, to the address of the core parameter `log_engine_data`
//! (`log_engine_type="udp"`), as Kamailio 5.6 does (checked live: the text
//! as given, nothing added; the function answers its length). Kamailio
//! refuses to start when the module is loaded without those two parameters;
//! so does ringsip. ringsip's own log lines stay on the standard log (as
//! Kamailio's do when it logs to stderr).

use bytes::Bytes;

use crate::script::ast::{self, Config};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{func, Args, FunctionDef, ModuleDef, RouteMask};

pub static MODULE: ModuleDef = ModuleDef {
    name: "log_custom",
    aliases: &[],
    functions: FUNCTIONS,
    params: &[],
    always: false,
};

const FUNCTIONS: &[FunctionDef] = &[func("log_udp", 1, 1, RouteMask::ANY, None, log_udp)];

/// Where `log_udp` sends, from the core parameters; the reason it cannot.
pub fn destination(cfg: &Config) -> Result<std::net::SocketAddr, String> {
    let text = |name: &str| {
        cfg.global(name).and_then(|g| match &g.value {
            ast::Value::Str(s) | ast::Value::Word(s) => Some(s.clone()),
            _ => None,
        })
    };
    match text("log_engine_type").as_deref() {
        Some("udp") => {}
        _ => return Err("log_custom needs log_engine_type=\"udp\"".into()),
    }
    let data = text("log_engine_data")
        .ok_or("log_custom needs log_engine_data=\"IP:PORT\" (where log_udp sends)")?;
    data.trim()
        .parse()
        .map_err(|_| format!("log_custom: log_engine_data \"{data}\" is not IP:PORT"))
}

/// `log_udp(text)`: the length sent, or -1.
fn log_udp(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(dst) = ctx.program.log_udp else {
        return -1;
    };
    let text = Bytes::from(args.str(ctx, 0).into_owned());
    let len = i32::try_from(text.len()).unwrap_or(i32::MAX);
    let host = match dst {
        std::net::SocketAddr::V4(a) => a.ip().to_string(),
        std::net::SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    // The module's own socket, whatever the message forced.
    let forced = ctx.force_socket.take();
    let hop = crate::modules::core::forward::resolve_hop(
        ctx,
        Some(host.as_bytes()),
        Some(dst.port()),
        Some(crate::sip::Proto::Udp),
    );
    ctx.force_socket = forced;
    match hop {
        Ok(hop) => {
            let t = hop.transmit(ctx, text);
            ctx.out.push(t);
            len
        }
        Err(_) => {
            log::error!("log_udp: no socket to send to {dst}");
            -1
        }
    }
}
