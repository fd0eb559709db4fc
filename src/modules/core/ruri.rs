//! Core functions that rewrite parts of the Request-URI (KAMAILIO-REFERENCE
//! §1.6): `strip`, `strip_tail`, `prefix`, `rewriteuser`, `rewriteuserpass`,
//! `rewritehost`, `rewritehostport`, `rewritehostporttrans`, `rewriteport`,
//! `userphone`. Each rebuilds the current R-URI from its parts with one part
//! replaced and stores it as the new R-URI; 1 on success, -1 when the R-URI
//! cannot be parsed or the argument is unusable.

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::registry::Args;
use crate::sip::scan::Params;
use crate::sip::uri::Uri;

/// Which part to replace, and with what.
enum Change<'v> {
    /// Drop the first n characters of the user (all of it when n is larger).
    Strip(usize),
    /// Drop the last n characters of the user.
    StripTail(usize),
    /// Put text before the user (making one if there was none).
    Prefix(&'v [u8]),
    /// New user, password kept; empty removes the user.
    User(&'v [u8]),
    /// New `user[:password]`; empty removes both.
    UserPass(&'v [u8]),
    Host(&'v [u8]),
    /// New `host[:port]`.
    HostPort(&'v [u8]),
    /// New `host[:port]`, and the `transport` parameter dropped (the new text may carry one).
    HostPortTrans(&'v [u8]),
    /// New port; empty removes the port.
    Port(&'v [u8]),
    /// Add `;user=phone` unless the URI has a `user` parameter.
    UserPhone,
}

/// The URI with one part changed, or `None` when the change cannot apply.
fn rebuild(uri: &Uri<'_>, change: &Change<'_>) -> Option<Vec<u8>> {
    let raw = uri.raw();
    let colon = raw.iter().position(|&b| b == b':')?;
    let user = uri.user().unwrap_or(b"");
    let host = uri.host_raw();
    let mut out = Vec::with_capacity(raw.len() + 32);
    out.extend_from_slice(&raw[..=colon]);
    let mut userinfo: Vec<u8> = Vec::new();
    let mut keep_password = true;
    match change {
        Change::Strip(n) => userinfo.extend_from_slice(user.get(*n..).unwrap_or(b"")),
        Change::StripTail(n) => {
            userinfo.extend_from_slice(&user[..user.len().saturating_sub(*n)]);
        }
        Change::Prefix(p) => {
            userinfo.extend_from_slice(p);
            userinfo.extend_from_slice(user);
        }
        Change::User(u) => userinfo.extend_from_slice(u),
        Change::UserPass(up) => {
            userinfo.extend_from_slice(up);
            keep_password = false;
        }
        _ => userinfo.extend_from_slice(user),
    }
    if !userinfo.is_empty() {
        out.extend_from_slice(&userinfo);
        if keep_password {
            if let Some(pw) = uri.password() {
                out.push(b':');
                out.extend_from_slice(pw);
            }
        }
        if !host.is_empty() {
            out.push(b'@');
        }
    }
    let port = uri.port().map(|p| itoa::Buffer::new().format(p).to_owned());
    let host_change = matches!(
        change,
        Change::Host(_) | Change::HostPort(_) | Change::HostPortTrans(_) | Change::Port(_)
    );
    if host_change && !uri.scheme().is_sip() {
        return None;
    }
    match change {
        Change::Host(h) => {
            if h.is_empty() {
                return None;
            }
            out.extend_from_slice(h);
            push_port(&mut out, port.as_deref().map(str::as_bytes));
        }
        Change::HostPort(hp) | Change::HostPortTrans(hp) => {
            if hp.is_empty() {
                return None;
            }
            out.extend_from_slice(hp);
        }
        Change::Port(p) => {
            out.extend_from_slice(host);
            push_port(&mut out, Some(p));
        }
        _ => {
            out.extend_from_slice(host);
            push_port(&mut out, port.as_deref().map(str::as_bytes));
        }
    }
    let params = uri.params_raw();
    match change {
        Change::HostPortTrans(_) => {
            for p in Params::new(params).filter(|p| !p.is(b"transport")) {
                out.extend_from_slice(b";");
                out.extend_from_slice(
                    params[p.start..p.end]
                        .strip_prefix(b";")
                        .unwrap_or(&params[p.start..p.end]),
                );
            }
        }
        Change::UserPhone if uri.param(b"user").is_none() => {
            out.extend_from_slice(params);
            out.extend_from_slice(b";user=phone");
        }
        _ => out.extend_from_slice(params),
    }
    if let Some(h) = uri.headers_raw() {
        out.push(b'?');
        out.extend_from_slice(h);
    }
    Some(out)
}

fn push_port(out: &mut Vec<u8>, port: Option<&[u8]>) {
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        out.push(b':');
        out.extend_from_slice(p);
    }
}

/// Applies `change` to the current R-URI.
fn apply(ctx: &mut MsgCtx<'_>, change: Change<'_>) -> i32 {
    if !ctx.msg.is_request() {
        return -1;
    }
    let new = match Uri::parse(ctx.ruri()) {
        Ok(uri) => rebuild(&uri, &change),
        Err(e) => {
            log::warn!(
                "cannot rewrite R-URI {:?}: {e}",
                String::from_utf8_lossy(ctx.ruri())
            );
            None
        }
    };
    // A result that is no longer a URI (a space in a new host…) is refused.
    match new {
        Some(u) if Uri::parse(&u).is_ok() => {
            ctx.new_uri = Some(Bytes::from(u));
            1
        }
        _ => -1,
    }
}

fn count(ctx: &MsgCtx<'_>, args: &Args) -> Option<usize> {
    args.int(ctx, 0).and_then(|n| usize::try_from(n).ok())
}

pub fn strip(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match count(ctx, args) {
        Some(n) => apply(ctx, Change::Strip(n)),
        None => -1,
    }
}

pub fn strip_tail(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match count(ctx, args) {
        Some(n) => apply(ctx, Change::StripTail(n)),
        None => -1,
    }
}

macro_rules! with_text {
    ($name:ident, $variant:ident) => {
        pub fn $name(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
            let text = args.str(ctx, 0).into_owned();
            apply(ctx, Change::$variant(&text))
        }
    };
}

with_text!(prefix, Prefix);
with_text!(rewriteuser, User);
with_text!(rewriteuserpass, UserPass);
with_text!(rewritehost, Host);
with_text!(rewritehostport, HostPort);
with_text!(rewritehostporttrans, HostPortTrans);
with_text!(rewriteport, Port);

/// Sets the user of the current R-URI (empty removes it): 1, or -1.
pub fn set_user(ctx: &mut MsgCtx<'_>, user: &[u8]) -> i32 {
    apply(ctx, Change::User(user))
}

pub fn userphone(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    apply(ctx, Change::UserPhone)
}

#[cfg(test)]
mod tests {
    use crate::modules::core::MODULE;
    use crate::modules::testutil::{run, serialized, Harness};

    fn rewritten(ruri: &str, f: &str, arg: &[&str]) -> (i32, String) {
        let text = crate::modules::testutil::INVITE.replacen("sip:bob@example.com", ruri, 1);
        let mut h = Harness::new(&text);
        let mut ctx = h.ctx();
        let rc = run(&mut ctx, &MODULE, f, arg);
        let first = serialized(&ctx).lines().next().unwrap_or("").to_string();
        let uri = first
            .strip_prefix("INVITE ")
            .and_then(|s| s.strip_suffix(" SIP/2.0"))
            .unwrap_or("")
            .to_string();
        (rc, uri)
    }

    #[test]
    fn user_part() {
        let u = "sip:0049301234@gw.example.com:5080;transport=udp?h=v";
        assert_eq!(
            rewritten(u, "strip", &["4"]),
            (1, "sip:301234@gw.example.com:5080;transport=udp?h=v".into())
        );
        assert_eq!(
            rewritten(u, "strip", &["40"]),
            (1, "sip:gw.example.com:5080;transport=udp?h=v".into())
        );
        assert_eq!(
            rewritten(u, "strip_tail", &["4"]),
            (1, "sip:004930@gw.example.com:5080;transport=udp?h=v".into())
        );
        assert_eq!(
            rewritten(u, "prefix", &["+"]),
            (
                1,
                "sip:+0049301234@gw.example.com:5080;transport=udp?h=v".into()
            )
        );
        assert_eq!(
            rewritten("sip:gw.example.com", "prefix", &["00"]),
            (1, "sip:00@gw.example.com".into())
        );
        assert_eq!(
            rewritten(u, "rewriteuser", &["carol"]),
            (1, "sip:carol@gw.example.com:5080;transport=udp?h=v".into())
        );
        assert_eq!(
            rewritten(u, "setuser", &[""]),
            (1, "sip:gw.example.com:5080;transport=udp?h=v".into())
        );
        assert_eq!(
            rewritten("sip:a:pw@h", "setuser", &["b"]),
            (1, "sip:b:pw@h".into())
        );
        assert_eq!(
            rewritten("sip:a:pw@h", "rewriteuserpass", &["b:x"]),
            (1, "sip:b:x@h".into())
        );
        assert_eq!(
            rewritten("sip:a:pw@h", "setuserpass", &["b"]),
            (1, "sip:b@h".into())
        );
    }

    #[test]
    fn host_and_port() {
        let u = "sip:bob@example.com:5080;transport=tcp;lr";
        assert_eq!(
            rewritten(u, "rewritehost", &["10.0.0.1"]),
            (1, "sip:bob@10.0.0.1:5080;transport=tcp;lr".into())
        );
        assert_eq!(
            rewritten(u, "sethost", &["[2001:db8::1]"]),
            (1, "sip:bob@[2001:db8::1]:5080;transport=tcp;lr".into())
        );
        assert_eq!(
            rewritten(u, "rewritehostport", &["10.0.0.1:7000"]),
            (1, "sip:bob@10.0.0.1:7000;transport=tcp;lr".into())
        );
        assert_eq!(
            rewritten(u, "sethostport", &["10.0.0.1"]),
            (1, "sip:bob@10.0.0.1;transport=tcp;lr".into())
        );
        assert_eq!(
            rewritten(u, "rewritehostporttrans", &["10.0.0.1:7000;transport=tls"]),
            (1, "sip:bob@10.0.0.1:7000;transport=tls;lr".into())
        );
        assert_eq!(
            rewritten(u, "rewriteport", &["6000"]),
            (1, "sip:bob@example.com:6000;transport=tcp;lr".into())
        );
        assert_eq!(
            rewritten(u, "setport", &[""]),
            (1, "sip:bob@example.com;transport=tcp;lr".into())
        );
        assert_eq!(rewritten(u, "rewritehost", &[""]).0, -1);
    }

    #[test]
    fn userphone_adds_the_parameter_once() {
        assert_eq!(
            rewritten("sip:+4930@gw", "userphone", &[]),
            (1, "sip:+4930@gw;user=phone".into())
        );
        assert_eq!(
            rewritten("sip:+4930@gw;user=phone", "userphone", &[]),
            (1, "sip:+4930@gw;user=phone".into())
        );
    }

    #[test]
    fn tel_uri_user_changes() {
        assert_eq!(
            rewritten("tel:+4930123;phone-context=x", "strip", &["3"]),
            (1, "tel:30123;phone-context=x".into())
        );
        assert_eq!(rewritten("tel:+4930123", "rewritehost", &["h"]).0, -1);
    }

    #[test]
    fn successive_rewrites_build_on_each_other() {
        let mut h = Harness::new(crate::modules::testutil::INVITE);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "strip", &["1"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "prefix", &["R"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "sethostport", &["10.1.1.1:5090"]), 1);
        assert_eq!(ctx.ruri(), b"sip:Rob@10.1.1.1:5090");
        assert_eq!(run(&mut ctx, &MODULE, "revert_uri", &[]), 1);
        assert_eq!(ctx.ruri(), b"sip:bob@example.com");
    }
}
