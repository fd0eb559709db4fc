//! The `;alias=ip~port~transport` Contact parameter (KAMAILIO-REFERENCE
//! §7.8): added to a Contact so that requests toward it reach the address the
//! registration or call really came from, and turned back into `$du` by
//! `handle_ruri_alias()`.

use std::net::IpAddr;
use std::ops::Range;

use bytes::Bytes;

use super::{first_contact, host_ip, params, transport_suffix};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{fixup_int, Arg, Args, ModParams};
use crate::sip::uri::Uri;
use crate::sip::Proto;

/// Kamailio's transport numbers in `;alias=ip~port~N`.
pub(super) fn proto_id(p: Proto) -> u8 {
    match p {
        Proto::Udp => 1,
        Proto::Tcp => 2,
        Proto::Tls => 3,
        Proto::Sctp => 4,
        Proto::Ws => 5,
        Proto::Wss => 6,
    }
}

pub(super) fn proto_of_id(n: u8) -> Option<Proto> {
    Some(match n {
        1 => Proto::Udp,
        2 => Proto::Tcp,
        3 => Proto::Tls,
        4 => Proto::Sctp,
        5 => Proto::Ws,
        6 => Proto::Wss,
        _ => return None,
    })
}

/// Adds `;alias=ip~port~proto` to the first Contact URI: 1 added, 2 not
/// needed (the Contact already names the source), -1 error. `given`:
/// address and transport given as arguments (always added). `trim`: an
/// existing alias parameter is removed first.
pub(super) fn contact_alias(
    ctx: &mut MsgCtx<'_>,
    given: Option<(String, u16, Proto)>,
    trim: bool,
    at_end: bool,
) -> i32 {
    let Some((_, uri, span, brackets)) = first_contact(ctx) else {
        return -1;
    };
    let name = params(ctx).alias_name;
    let buf = ctx.msg.buf().clone();
    let text = &buf[uri.clone()];
    let Ok(u) = Uri::parse(text) else {
        return -1;
    };
    let (ip, port, proto) = match &given {
        Some((ip, port, proto)) => (ip.clone(), *port, *proto),
        None => {
            // Kamailio 5.6 compares the URI's transport parameter as written:
            // none never equals the transport the request came on.
            let same = u.host().and_then(host_ip) == Some(ctx.src.ip())
                && u.port().unwrap_or(5060) == ctx.src.port()
                && u.transport() == Some(ctx.proto);
            if same {
                return 2;
            }
            let ip = match ctx.src.ip() {
                IpAddr::V6(a) => format!("[{a}]"),
                IpAddr::V4(a) => a.to_string(),
            };
            (ip, ctx.src.port(), ctx.proto)
        }
    };
    // An existing alias parameter goes when asked to trim.
    if trim {
        if let Some(r) = uri_param_range(text, name.as_bytes()) {
            ctx.edits.delete(uri.start + r.start..uri.start + r.end);
        }
    }
    let param = format!(";{name}={ip}~{port}~{}", proto_id(proto));
    // add_contact_alias: right after host:port, before the other parameters;
    // set_contact_alias: after them (Kamailio 5.6).
    let at = if at_end {
        uri.end
    } else {
        let Some(at) = host_port_end(&u) else {
            return -1;
        };
        uri.start + at
    };
    if brackets {
        ctx.edits.insert(at, Bytes::from(param));
    } else if at == uri.end {
        // Without brackets a URI parameter would read as a header parameter.
        ctx.edits.insert(span.start, Bytes::from_static(b"<"));
        ctx.edits.insert(uri.end, Bytes::from(format!("{param}>")));
    } else {
        ctx.edits.insert(span.start, Bytes::from_static(b"<"));
        ctx.edits.insert(at, Bytes::from(param));
        ctx.edits.insert(uri.end, Bytes::from_static(b">"));
    }
    1
}

/// Where host[:port] ends in the URI's text.
fn host_port_end(u: &Uri<'_>) -> Option<usize> {
    let raw = u.raw();
    let host = u.host_raw();
    let start = (host.as_ptr() as usize).checked_sub(raw.as_ptr() as usize)?;
    let mut end = start + host.len();
    if raw.get(end) == Some(&b':') {
        end += 1;
        while raw.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    Some(end)
}

/// The range of `;name[=value]` among a URI's parameters.
pub(super) fn uri_param_range(uri: &[u8], name: &[u8]) -> Option<Range<usize>> {
    let u = Uri::parse(uri).ok()?;
    let params = u.params_raw();
    let base = params.as_ptr() as usize - uri.as_ptr() as usize;
    let mut pos = 0;
    for part in params.split(|&b| b == b';') {
        let start = pos;
        pos += part.len() + 1;
        if part.is_empty() {
            continue;
        }
        let key = part.split(|&b| b == b'=').next().unwrap_or(b"");
        if key.eq_ignore_ascii_case(name) {
            // Include the ';' before it.
            let s = base + start - 1;
            return Some(s..base + start + part.len());
        }
    }
    None
}

pub(super) fn add_contact_alias(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if args.is_empty() {
        return contact_alias(ctx, None, false, false);
    }
    let ip = String::from_utf8_lossy(&args.str(ctx, 0)).into_owned();
    let Some(port) = args.int(ctx, 1).and_then(|p| u16::try_from(p).ok()) else {
        return -1;
    };
    let Some(proto) = Proto::from_name(&args.str(ctx, 2)) else {
        return -1;
    };
    let ip = match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(a)) => format!("[{a}]"),
        Ok(IpAddr::V4(a)) => a.to_string(),
        Err(_) => return -1,
    };
    contact_alias(ctx, Some((ip, port, proto)), false, false)
}

pub(super) fn set_contact_alias(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let trim = args.int(ctx, 0).unwrap_or(0) != 0;
    contact_alias(ctx, None, trim, true)
}

/// `handle_ruri_alias()`: with an alias parameter in the R-URI, `$du`
/// becomes that address and the parameter is removed: 1; 2 no alias; -1 error.
pub(super) fn handle_ruri_alias(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    let name = params(ctx).alias_name;
    let ruri = ctx.ruri().to_vec();
    let Some(range) = uri_param_range(&ruri, name.as_bytes()) else {
        return 2;
    };
    let param = &ruri[range.clone()];
    let value = param
        .iter()
        .position(|&b| b == b'=')
        .map_or(&b""[..], |i| &param[i + 1..]);
    let Ok(value) = std::str::from_utf8(value) else {
        return -1;
    };
    if !value.contains('~') {
        // Not an alias value at all: Kamailio 5.6 answers "no alias".
        return 2;
    }
    let mut parts = value.split('~');
    let (Some(ip), Some(port), Some(proto)) = (parts.next(), parts.next(), parts.next()) else {
        return -1;
    };
    let Ok(port) = port.parse::<u16>() else {
        return -1;
    };
    let Some(proto) = proto.parse::<u8>().ok().and_then(proto_of_id) else {
        return -1;
    };
    let ok_ip = ip
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok();
    if !ok_ip {
        return -1;
    }
    ctx.dst_uri = Some(Bytes::from(format!(
        "sip:{ip}:{port}{}",
        transport_suffix(proto)
    )));
    let mut new = ruri[..range.start].to_vec();
    new.extend_from_slice(&ruri[range.end..]);
    ctx.new_uri = Some(Bytes::from(new));
    1
}

pub(super) fn fixup_ruri_alias(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if args.is_empty() {
        return Ok(());
    }
    fixup_int(args, 0)?;
    match args.get(0) {
        Some(Arg::Int(0)) => Ok(()),
        Some(Arg::Int(n)) => Err(format!("mode {n} is not supported (only 0)")),
        _ => Err("the mode must be a number".into()),
    }
}
