//! xhttp: HTTP/1.x requests on the SIP stream listeners (TCP, TLS), as
//! Kamailio 5.6's module takes them.
//!
//! The stream reader frames an HTTP request like a SIP message (headers,
//! then Content-Length bytes; none with `tcp_accept_no_cl=yes`; `Expect:
//! 100-continue` answered at once, see `runtime::framing`), the parser tells
//! it apart by its request line (`sip::Protocol::Http`), and the engine runs
//! `event_route[xhttp:request]` on it instead of `request_route` — when its
//! URL passes `url_skip` (a match is not served) and `url_match` (no match
//! is not served). A request not served, or over UDP, is dropped unanswered.
//!
//! In the route the message reads as a request: `$rm`, `$hu` (the URL),
//! `$hdr(...)`, `$rb`, `$si`/`$sp`, `$Rp`… `xhttp_reply(code, reason,
//! content-type, body)` answers it (see `sip::http` for the reply's form;
//! every argument may hold variables; an empty content type adds no header);
//! jsonrpcs's `jsonrpc_dispatch()` answers a JSON-RPC body. A route that
//! answers nothing leaves the client waiting, as Kamailio does. The
//! connection stays open after a reply unless the route called
//! `set_reply_close()`; HTTP's own keep-alive rules are not applied.
//!
//! `event_callback` names a KEMI function: ringsip has no KEMI, so a
//! configuration that sets it is refused, as is one that loads xhttp
//! without `event_route[xhttp:request]` (Kamailio does not start either).

use bytes::Bytes;
use regex::bytes::Regex;

use crate::script::ctx::MsgCtx;
use crate::script::ir::RouteId;
use crate::script::registry::{
    fixup_int, func, param, Args, ModParams, ModuleDef, ParamKind, RouteMask,
};
use crate::sip::http::{self, HttpReply};
use crate::sip::packet::Transmit;

/// The event route HTTP requests run in.
pub const EVENT_ROUTE: &str = "xhttp:request";

pub static MODULE: ModuleDef = ModuleDef {
    name: "xhttp",
    aliases: &[],
    functions: &[func(
        "xhttp_reply",
        4,
        4,
        RouteMask::REQUEST.or(RouteMask::EVENT),
        Some(fixup_reply),
        xhttp_reply,
    )],
    params: &[
        param("url_match", ParamKind::Str),
        param("url_skip", ParamKind::Str),
        param("event_callback", ParamKind::Str),
    ],
    always: false,
};

/// What the engine needs to serve HTTP requests, made by the compiler.
#[derive(Clone, Debug)]
pub struct Xhttp {
    pub route: RouteId,
    url_match: Option<Regex>,
    url_skip: Option<Regex>,
}

impl Xhttp {
    /// The settings from the module parameters (POSIX extended expressions,
    /// case-sensitive, searched anywhere in the URL as `regexec` does).
    pub fn new(route: RouteId, mp: &ModParams) -> Result<Xhttp, String> {
        if mp
            .str("xhttp", "event_callback")
            .is_some_and(|c| !c.is_empty())
        {
            return Err(
                "xhttp: event_callback names a KEMI function; ringsip runs event_route[xhttp:request] only"
                    .into(),
            );
        }
        let re = |name: &str| -> Result<Option<Regex>, String> {
            mp.str("xhttp", name)
                .map(|p| {
                    crate::modules::textops::re::compile(p, false, false)
                        .map_err(|e| format!("xhttp: {name}: {e}"))
                })
                .transpose()
        };
        Ok(Xhttp {
            route,
            url_match: re("url_match")?,
            url_skip: re("url_skip")?,
        })
    }

    /// Whether a request for `url` is served.
    pub fn serves(&self, url: &[u8]) -> bool {
        if self.url_skip.as_ref().is_some_and(|re| re.is_match(url)) {
            return false;
        }
        self.url_match.as_ref().is_none_or(|re| re.is_match(url))
    }
}

/// The code must be a number (or variables); the others are text.
fn fixup_reply(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)
}

/// `xhttp_reply(code, reason, ctype, body)`.
fn xhttp_reply(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let code = match args.int(ctx, 0) {
        Some(c) if (100..=700).contains(&c) => c as u16,
        other => {
            log::error!("xhttp_reply: invalid code {other:?}");
            return -1;
        }
    };
    let reason = args.str(ctx, 1).into_owned();
    if reason.is_empty() {
        log::error!("xhttp_reply: invalid reason parameter");
        return -1;
    }
    let ctype = args.str(ctx, 2).into_owned();
    let body = args.str(ctx, 3).into_owned();
    send_reply(ctx, code, &reason, &ctype, &body)
}

/// Sends an HTTP reply to the request in `ctx` on its connection (see
/// [`sip::http`](crate::sip::http)). 1, or -1 when `ctx` holds no HTTP request.
pub fn send_reply(
    ctx: &mut MsgCtx<'_>,
    code: u16,
    reason: &[u8],
    content_type: &[u8],
    body: &[u8],
) -> i32 {
    if !ctx.msg.is_http() {
        log::error!("xhttp: no HTTP request to reply to");
        return -1;
    }
    let spec = HttpReply {
        code,
        reason,
        proto: ctx.proto,
        source: ctx.src,
        extra_headers: &ctx.state.reply_headers,
        content_type,
        server: &ctx.env.server_header,
        body,
    };
    let out = &mut ctx.core.scratch;
    http::build(ctx.msg, &spec, out);
    let data = Bytes::copy_from_slice(out);
    ctx.out.push(Transmit {
        data,
        dst: ctx.src,
        proto: ctx.proto,
        socket: Some(ctx.socket),
        local: Some(ctx.local),
        conn: ctx.conn,
        flags: ctx.state.reply_flags(),
    });
    1
}

#[cfg(test)]
mod tests;
