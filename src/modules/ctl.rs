//! The control-interface modules of a stock kamailio.cfg: `ctl`, `jsonrpcs`
//! and `cfg_rpc`. They have no script functions; their parameters say where
//! ringsip's JSON-RPC control socket listens (served by `crate::ctl`, which
//! reads them at start-up). Parameters that only make sense for Kamailio's
//! own transports (FIFO ownership, datagram workers…) are accepted and have
//! no effect; see `ctl` in the module docs for which ones count.

use crate::script::registry::param as p;
use crate::script::registry::{ModuleDef, ParamKind};

/// `ctl`: `binrpc` (`unix:PATH`) is the control socket; `http_listen`
/// (`ADDR:PORT`, ringsip's own) starts the HTTP listener with `/metrics`.
pub static MODULE_CTL: ModuleDef = ModuleDef {
    name: "ctl",
    aliases: &[],
    functions: &[],
    params: &[
        p("binrpc", ParamKind::Str),
        p("mode", ParamKind::Any),
        p("user", ParamKind::Any),
        p("group", ParamKind::Any),
        p("fifo", ParamKind::Str),
        p("autoconversion", ParamKind::Int),
        p("binrpc_buffer_size", ParamKind::Int),
        p("binrpc_max_body_size", ParamKind::Int),
        p("binrpc_struct_max_body_size", ParamKind::Int),
        p("http_listen", ParamKind::Str),
    ],
    always: false,
};

/// `jsonrpcs`: `fifo_name` or `dgram_socket` name the control socket's path
/// (served as a Unix stream socket); `jsonrpc_dispatch()` and
/// `jsonrpc_exec()` are in [`crate::modules::jsonrpcs`], printed as
/// `pretty_format` says. `transport` is accepted: HTTP is served whenever
/// xhttp is loaded.
pub static MODULE_JSONRPCS: ModuleDef = ModuleDef {
    name: "jsonrpcs",
    aliases: &[],
    functions: crate::modules::jsonrpcs::FUNCTIONS,
    params: &[
        p("pretty_format", ParamKind::Int),
        p("transport", ParamKind::Int),
        p("fifo_name", ParamKind::Str),
        p("fifo_mode", ParamKind::Any),
        p("fifo_group", ParamKind::Any),
        p("fifo_user", ParamKind::Any),
        p("fifo_reply_dir", ParamKind::Str),
        p("dgram_socket", ParamKind::Str),
        p("dgram_workers", ParamKind::Int),
        p("dgram_timeout", ParamKind::Int),
        p("dgram_mode", ParamKind::Any),
        p("dgram_group", ParamKind::Any),
        p("dgram_user", ParamKind::Any),
        p("tcp_socket", ParamKind::Str),
    ],
    always: false,
};

/// `cfg_rpc`: the `cfg.get` / `cfg.set` methods; no parameters.
pub static MODULE_CFG_RPC: ModuleDef = ModuleDef {
    name: "cfg_rpc",
    aliases: &[],
    functions: &[],
    params: &[],
    always: false,
};
