//! corex: core extensions of Kamailio (branches, raw sends, message flags,
//! files, the network intercept parameters). The functions live in the
//! files beside this one; this file is the module's one table.

use crate::modules::core::send::fixup_socket;
use crate::script::registry::{func as f, param as p};
use crate::script::registry::{ModuleDef, ParamKind, RouteMask};

pub mod alias;
pub mod args;
pub mod branch;
pub mod codec;
pub mod files;
pub mod flags;
pub mod params;
pub mod rpc;
pub mod send;
mod via;

#[cfg(test)]
mod tests;

const ANY: RouteMask = RouteMask::ANY;
const REQ_FAIL: RouteMask = RouteMask::REQUEST.or(RouteMask::FAILURE);
const REPLY: RouteMask = RouteMask::REPLY.or(RouteMask::ONREPLY);

/// The corex module as `loadmodule "corex.so"` loads it.
pub static MODULE: ModuleDef = ModuleDef {
    name: "corex",
    aliases: &[],
    functions: &[
        f("append_branch", 0, 2, REQ_FAIL, None, branch::append_branch),
        f("via_add_srvid", 1, 1, ANY, None, via::via_add_srvid),
        f(
            "via_add_xavp_params",
            1,
            1,
            ANY,
            None,
            via::via_add_xavp_params,
        ),
        f("send_udp", 0, 1, REQ_FAIL, None, send::send_udp),
        f("send", 0, 1, REQ_FAIL, None, send::send_udp),
        f("send_tcp", 0, 1, REQ_FAIL, None, send::send_tcp),
        f("send_data", 2, 2, ANY, None, send::send_data),
        f("sendx", 3, 3, ANY, None, send::sendx),
        f("is_incoming", 0, 0, ANY, None, send::is_incoming),
        f(
            "set_send_socket",
            1,
            1,
            ANY,
            Some(fixup_socket),
            send::set_send_socket,
        ),
        f(
            "set_recv_socket",
            1,
            1,
            ANY,
            Some(fixup_socket),
            send::set_recv_socket,
        ),
        f(
            "set_source_address",
            1,
            1,
            ANY,
            Some(send::fixup_source_address),
            send::set_source_address,
        ),
        f("forward_reply", 0, 0, REPLY, None, send::forward_reply),
        f(
            "msg_iflag_set",
            1,
            1,
            ANY,
            Some(flags::fixup_iflag),
            flags::msg_iflag_set,
        ),
        f(
            "msg_iflag_reset",
            1,
            1,
            ANY,
            Some(flags::fixup_iflag),
            flags::msg_iflag_reset,
        ),
        f(
            "msg_iflag_is_set",
            1,
            1,
            ANY,
            Some(flags::fixup_iflag),
            flags::msg_iflag_is_set,
        ),
        f(
            "setxflag",
            1,
            1,
            ANY,
            Some(flags::fixup_xflag),
            flags::setxflag,
        ),
        f(
            "resetxflag",
            1,
            1,
            ANY,
            Some(flags::fixup_xflag),
            flags::resetxflag,
        ),
        f(
            "isxflagset",
            1,
            1,
            ANY,
            Some(flags::fixup_xflag),
            flags::isxflagset,
        ),
        f("is_faked_msg", 0, 0, ANY, None, flags::is_faked_msg),
        f(
            "file_read",
            2,
            2,
            ANY,
            Some(files::fixup_file_read),
            files::file_read,
        ),
        f(
            "file_write",
            2,
            2,
            ANY,
            Some(files::fixup_file_write),
            files::file_write,
        ),
        f(
            "gzip_compress",
            2,
            2,
            ANY,
            Some(codec::fixup_gzip),
            codec::gzip_compress,
        ),
        f(
            "gzip_decompress",
            2,
            2,
            ANY,
            Some(codec::fixup_gzip),
            codec::gzip_decompress,
        ),
        f(
            "cipher_encrypt",
            3,
            3,
            ANY,
            Some(codec::fixup_cipher),
            codec::cipher_encrypt,
        ),
        f(
            "cipher_decrypt",
            3,
            3,
            ANY,
            Some(codec::fixup_cipher),
            codec::cipher_decrypt,
        ),
    ],
    params: &[
        p("alias_subdomains", ParamKind::Str),
        p("cipher_profile", ParamKind::Str),
        // Kamailio 5.6's names, then the older ones (both accepted).
        p("nio_intercept", ParamKind::Int),
        p("nio_min_msg_len", ParamKind::Int),
        p("nio_msg_avp", ParamKind::Str),
        p("network_io_intercept", ParamKind::Int),
        p("min_msg_len", ParamKind::Int),
        p("msg_avp", ParamKind::Str),
    ],
    always: false,
};
