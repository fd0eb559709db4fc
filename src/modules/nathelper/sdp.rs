//! `fix_nated_sdp()` (KAMAILIO-REFERENCE §7.8): the SDP's connection and
//! origin addresses rewritten to where the media will really come from.

use std::net::IpAddr;

use bytes::Bytes;

use super::params;
use crate::script::ctx::MsgCtx;
use crate::script::registry::Args;

/// `fix_nated_sdp(flags[, ip])`: 1 add `a=direction:active`, 2 rewrite the
/// `c=` addresses, 4 add the `nortpproxy_str` mark, 8 rewrite the `o=`
/// address; the new address is `ip` or the source address. 1, or -1 without SDP.
pub(super) fn fix_nated_sdp(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(flags) = args.int(ctx, 0) else {
        return -1;
    };
    let body = ctx.msg.body();
    if body.is_empty() || !body.starts_with(b"v=") {
        return -1;
    }
    let ip = if args.len() > 1 {
        String::from_utf8_lossy(&args.str(ctx, 1))
            .trim()
            .to_string()
    } else {
        ctx.src.ip().to_string()
    };
    let Ok(new_ip) = ip.parse::<IpAddr>() else {
        return -1;
    };
    let family = if new_ip.is_ipv4() { "IP4" } else { "IP6" };
    let np = params(ctx);
    let nortpproxy = np.nortpproxy_str;
    // The replaced addresses, remembered in the SDP as Kamailio does
    // (`append_sdp_oldmediaip`): those of c= lines first, then o= lines.
    let mut old_c = Vec::new();
    let mut old_o = Vec::new();
    let text = String::from_utf8_lossy(body).into_owned();
    let mut out = String::with_capacity(text.len() + 64);
    let mut changed = false;
    let mut altered = 0;
    let mut has_direction = false;
    let mut has_mark = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        let eol = &line[bare.len()..];
        let rewrite = (flags & 2 != 0 && bare.starts_with("c="))
            || (flags & 8 != 0 && bare.starts_with("o="));
        if bare.starts_with("a=direction:") {
            has_direction = true;
        }
        if !nortpproxy.is_empty() && line == nortpproxy {
            has_mark = true;
        }
        if rewrite {
            // c=IN IP4 addr  |  o=user id ver IN IP4 addr
            let mut fields: Vec<&str> = bare.split(' ').collect();
            let n = fields.len();
            if n >= 3 && fields[n - 2].starts_with("IP") {
                let old_addr = fields[n - 1].split('/').next().unwrap_or("").to_string();
                // Kamailio 5.6 leaves a null address of the same family (hold)
                // and one that is the new address already.
                let same_family = fields[n - 2] == family;
                let null = old_addr.parse::<IpAddr>().is_ok_and(|a| a.is_unspecified());
                if (same_family && null) || old_addr == new_ip.to_string() {
                    out.push_str(line);
                    continue;
                }
                altered += 1;
                if bare.starts_with("c=") {
                    old_c.push(old_addr);
                } else {
                    old_o.push(old_addr);
                }
                let suffix = fields[n - 1].split_once('/').map(|(_, s)| format!("/{s}"));
                let addr = format!("{new_ip}{}", suffix.unwrap_or_default());
                fields[n - 2] = family;
                let joined = {
                    let mut f = fields.clone();
                    f[n - 1] = &addr;
                    f.join(" ")
                };
                out.push_str(&joined);
                out.push_str(eol);
                changed = true;
                continue;
            }
        }
        out.push_str(line);
    }
    if flags & 1 != 0 && !has_direction {
        if !out.ends_with('\n') {
            out.push_str("\r\n");
        }
        out.push_str("a=direction:active\r\n");
        changed = true;
    }
    if flags & 4 != 0 && !has_mark && !nortpproxy.is_empty() {
        if !out.ends_with('\n') {
            out.push_str("\r\n");
        }
        out.push_str(&nortpproxy);
        changed = true;
    }
    if np.append_oldmediaip {
        for old in old_c.iter().chain(&old_o) {
            if !out.ends_with('\n') {
                out.push_str("\r\n");
            }
            out.push_str(&format!("a=oldmediaip:{old}\r\n"));
        }
    }
    if changed {
        let msg = ctx.msg;
        ctx.edits.set_body(msg, Bytes::from(out));
    }
    if altered > 0 {
        1
    } else {
        2
    }
}
