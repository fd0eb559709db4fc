//! Per-message state that functions record besides edits to the message
//! ([`MsgState`], reachable as `ctx.state`): what the core, kex, textops and
//! sanity functions ask of the send path and of locally generated replies.

use bytes::Bytes;

use crate::sip::SendFlags;

/// What the script asked about this message, read when it is relayed or answered.
#[derive(Debug, Default, Clone)]
pub struct MsgState {
    /// `force_rport()` / `add_rport()`: answer to the source port and fill
    /// `rport` in the received Via as if the client had asked (RFC 3581 §4).
    pub force_rport: bool,
    /// `add_local_rport()`: our own Via gets `;rport` (RFC 3581 §3).
    pub add_local_rport: bool,
    /// `set_forward_no_connect()`: relay only on an existing TCP/TLS connection.
    pub forward_no_connect: bool,
    /// `set_reply_no_connect()`: answer only on an existing connection.
    pub reply_no_connect: bool,
    /// `set_forward_close()`: close the connection after relaying.
    pub forward_close: bool,
    /// `set_reply_close()`: close the connection after answering.
    pub reply_close: bool,
    /// Script flags (kex `setsflag`), 0..31.
    pub sflags: u32,
    /// Flags of branch 0, the Request-URI branch (kex `setbflag`), 0..31.
    pub bflags: u32,
    /// `setdebug(l)`: the log level for the rest of this message.
    pub debug: Option<i32>,
    /// Header lines for the next locally generated reply (`append_to_reply`).
    pub reply_headers: Vec<u8>,
    /// Body and Content-Type for the next locally generated reply (`set_reply_body`).
    pub reply_body: Option<(Bytes, Bytes)>,
    /// The reply a failed `sanity_check` would have sent with `noreply` set,
    /// for `sanity_reply()`: code, reason and extra header lines.
    pub sanity_reply: Option<(u16, &'static str, Vec<u8>)>,
    /// Extended message flags (corex `setxflag`), 0..63.
    pub xflags: u64,
    /// Internal message flags (corex `msg_iflag_set`: USE_UAC_FROM, USE_UAC_TO, UAC_AUTH).
    pub iflags: u32,
    /// A decoder (`gzip_decompress`, `cipher_decrypt`) failed on this
    /// message: the intercept stage drops it rather than parse garbage.
    pub codec_failed: bool,
    /// Path entries asked for (path `add_path*`), written when the request is sent.
    pub path: Vec<crate::modules::path::Pending>,
    /// The q of the Request-URI branch in thousandths (registrar `lookup`
    /// sets it from the contact); `None` unspecified. tm's
    /// `t_load_contacts()` orders by it.
    pub ruri_q: Option<i32>,
    /// The status code textopsx `change_reply_status` gave this reply:
    /// `$rs` and `status` read it, as Kamailio rewrites the parsed code.
    pub reply_status: Option<u16>,
    /// `set_advertised_address()` / `set_advertised_port()`: what our Via
    /// names for this message instead of the sending socket (as in Kamailio
    /// 5.6, Record-Route keeps the socket's address).
    pub adv_host: Option<Bytes>,
    pub adv_port: Option<u16>,
    /// corex `via_add_srvid(1)`: our Via gets `;srvid=` with `server_id`.
    pub via_srvid: bool,
    /// corex `via_add_xavp_params(1)`: our Via gets the fields of the
    /// `xavp_via_params` XAVP as parameters.
    pub via_xavp_params: bool,
}

impl MsgState {
    /// How a relay of this message goes over a stream
    /// (`set_forward_no_connect`, `set_forward_close`).
    pub fn forward_flags(&self) -> SendFlags {
        SendFlags {
            no_connect: self.forward_no_connect,
            close: self.forward_close,
            ..SendFlags::default()
        }
    }

    /// How a reply to this message goes over a stream
    /// (`set_reply_no_connect`, `set_reply_close`).
    pub fn reply_flags(&self) -> SendFlags {
        SendFlags {
            no_connect: self.reply_no_connect,
            close: self.reply_close,
            ..SendFlags::default()
        }
    }

    /// The log level in force: `setdebug()` for this message, else the global `debug`.
    pub fn debug_level(&self, global: i32) -> i32 {
        self.debug.unwrap_or(global)
    }
}
