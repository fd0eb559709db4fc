//! Core functions that change how this message is relayed or answered
//! (KAMAILIO-REFERENCE §1.6): `force_rport`/`add_rport`, `add_local_rport`,
//! the TCP connection options and `force_send_socket`. They only record the
//! wish in `ctx.state` / `ctx.force_socket`; [`super::forward`], sl and the
//! TCP layer read it. All return 1, `force_send_socket` -1 when the address
//! is not one of ours.

use std::net::IpAddr;

use crate::script::ctx::MsgCtx;
use crate::script::registry::{Arg, Args, ModParams};
use crate::sip::{Proto, SocketId};

/// `force_rport()` / `add_rport()`: RFC 3581 behaviour even without `rport` in the Via.
pub fn force_rport(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.state.force_rport = true;
    1
}

/// `set_advertised_address(host)`: the address our Via names for this
/// message (the port stays the socket's unless `set_advertised_port` sets it).
pub fn set_advertised_address(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let host = args.str(ctx, 0).into_owned();
    if host.is_empty() {
        return -1;
    }
    ctx.state.adv_host = Some(bytes::Bytes::from(host));
    1
}

/// `set_advertised_port(port)`: the port our Via names for this message.
pub fn set_advertised_port(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match args
        .int(ctx, 0)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
    {
        Some(p) => {
            ctx.state.adv_port = Some(p);
            1
        }
        None => -1,
    }
}

/// `add_local_rport()`: our Via asks for rport (RFC 3581 §3).
pub fn add_local_rport(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.state.add_local_rport = true;
    1
}

pub fn set_forward_no_connect(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.state.forward_no_connect = true;
    1
}

pub fn set_reply_no_connect(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.state.reply_no_connect = true;
    1
}

pub fn set_forward_close(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.state.forward_close = true;
    1
}

pub fn set_reply_close(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.state.reply_close = true;
    1
}

/// A socket as `force_send_socket` names it: `[proto:]ip[:port]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketSpec {
    pub proto: Option<Proto>,
    pub ip: IpAddr,
    pub port: Option<u16>,
}

impl SocketSpec {
    /// Parses `[proto:]address[:port]`; IPv6 addresses in brackets.
    pub fn parse(s: &str) -> Option<SocketSpec> {
        let s = s.trim();
        let (proto, rest) = match s.split_once(':') {
            Some((p, rest)) if !p.starts_with('[') => match Proto::from_name(p.as_bytes()) {
                Some(proto) => (Some(proto), rest),
                None => (None, s),
            },
            _ => (None, s),
        };
        if let Ok(ip) = rest
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            if !rest.starts_with('[') || rest.ends_with(']') {
                return Some(SocketSpec {
                    proto,
                    ip,
                    port: None,
                });
            }
        }
        let (host, port) = rest.rsplit_once(':')?;
        let ip = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        Some(SocketSpec {
            proto,
            ip,
            port: Some(port.parse().ok()?),
        })
    }

    /// The first listening socket that this names (a wildcard socket answers for any address).
    pub fn find(&self, ctx: &MsgCtx<'_>) -> Option<SocketId> {
        let exact = |wild: bool| {
            ctx.env.sockets.iter().position(|s| {
                self.proto.is_none_or(|p| p == s.proto)
                    && self.port.is_none_or(|p| p == s.addr.port())
                    && if wild {
                        s.addr.ip().is_unspecified() && s.addr.is_ipv4() == self.ip.is_ipv4()
                    } else {
                        s.addr.ip() == self.ip
                    }
            })
        };
        exact(false)
            .or_else(|| exact(true))
            .and_then(|i| SocketId::try_from(i).ok())
    }
}

/// The socket is parsed once; whether it is ours is known when the listen
/// sockets are (at run time here, since a fixup does not see them).
pub fn fixup_socket(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let text = match args.get(0) {
        Some(Arg::Str(s)) => String::from_utf8_lossy(s).into_owned(),
        _ => return Err("the socket must be a constant [proto:]address[:port]".into()),
    };
    let spec = SocketSpec::parse(&text)
        .ok_or_else(|| format!("\"{text}\" is not [proto:]address[:port]"))?;
    args.0[0] = Arg::Custom(Box::new(spec));
    Ok(())
}

/// `force_send_socket([proto:]address[:port])`.
pub fn force_send_socket(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(spec) = args.custom::<SocketSpec>(0) else {
        return -1;
    };
    match spec.find(ctx) {
        Some(id) => {
            ctx.force_socket = Some(id);
            1
        }
        None => {
            log::warn!("force_send_socket: {spec:?} is not a listening socket");
            -1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::core::MODULE;
    use crate::modules::testutil::{run, Harness, INVITE};

    #[test]
    fn socket_specs() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            SocketSpec::parse("udp:192.0.2.10:5060"),
            Some(SocketSpec {
                proto: Some(Proto::Udp),
                ip: v4("192.0.2.10"),
                port: Some(5060)
            })
        );
        assert_eq!(
            SocketSpec::parse("192.0.2.10"),
            Some(SocketSpec {
                proto: None,
                ip: v4("192.0.2.10"),
                port: None
            })
        );
        assert_eq!(
            SocketSpec::parse("tcp:[2001:db8::1]:5062"),
            Some(SocketSpec {
                proto: Some(Proto::Tcp),
                ip: v4("2001:db8::1"),
                port: Some(5062)
            })
        );
        assert_eq!(
            SocketSpec::parse("2001:db8::1"),
            Some(SocketSpec {
                proto: None,
                ip: v4("2001:db8::1"),
                port: None
            })
        );
        assert_eq!(SocketSpec::parse("udp:example.com:5060"), None);
        assert_eq!(SocketSpec::parse("udp:1.2.3.4:99999"), None);
    }

    #[test]
    fn force_send_socket_picks_ours_only() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(
            run(
                &mut ctx,
                &MODULE,
                "force_send_socket",
                &["tcp:192.0.2.10:5060"]
            ),
            1
        );
        assert_eq!(ctx.force_socket, Some(1));
        assert_eq!(
            run(&mut ctx, &MODULE, "force_send_socket", &["192.0.2.20"]),
            1
        );
        assert_eq!(ctx.force_socket, Some(2));
        assert_eq!(
            run(
                &mut ctx,
                &MODULE,
                "force_send_socket",
                &["udp:192.0.2.99:5060"]
            ),
            -1
        );
        assert_eq!(ctx.force_socket, Some(2));
    }

    #[test]
    fn options_are_recorded() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        for f in [
            "force_rport",
            "add_local_rport",
            "set_forward_no_connect",
            "set_reply_no_connect",
            "set_forward_close",
            "set_reply_close",
        ] {
            assert_eq!(run(&mut ctx, &MODULE, f, &[]), 1, "{f}");
        }
        let s = &ctx.state;
        assert!(s.force_rport && s.add_local_rport);
        assert!(s.forward_no_connect && s.reply_no_connect && s.forward_close && s.reply_close);
    }

    /// Relays the INVITE (top Via without rport when `plain`) after `f`; the sent text.
    fn relayed(plain: bool, f: impl FnOnce(&mut MsgCtx<'_>)) -> (String, Option<SocketId>) {
        let text = if plain {
            INVITE.replacen(";rport\n", "\n", 1)
        } else {
            INVITE.to_string()
        };
        let mut h = Harness::new(&text);
        let mut ctx = h.ctx();
        f(&mut ctx);
        assert_eq!(
            crate::modules::core::forward::request(&mut ctx, Some(b"10.0.0.2"), Some(5080), None),
            1
        );
        let socket = h.out[0].socket;
        (crate::modules::testutil::sent(&h.out), socket)
    }

    #[test]
    fn force_rport_fills_received_and_rport_on_relay() {
        let (out, _) = relayed(true, |_| {});
        assert!(
            out.contains("\nVia: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds\n"),
            "{out}"
        );
        let (out, _) = relayed(true, |ctx| {
            run(ctx, &MODULE, "force_rport", &[]);
        });
        // Kamailio 5.6.3 (forward() and t_relay(), checked live): from the
        // Via's own host a forced rport comes alone, right after host:port.
        assert!(
            out.contains(
                "\nVia: SIP/2.0/UDP 198.51.100.1:5070;rport=5070;branch=z9hG4bK776asdhds\n"
            ),
            "{out}"
        );
        let (out, _) = relayed(false, |ctx| {
            run(ctx, &MODULE, "force_rport", &[]);
        });
        assert!(
            out.contains("Via: SIP/2.0/UDP 198.51.100.1:5070;received=198.51.100.1;branch=z9hG4bK776asdhds;rport=5070\n"),
            "{out}"
        );
    }

    #[test]
    fn add_local_rport_and_forced_socket_shape_our_via() {
        let (out, socket) = relayed(false, |ctx| {
            run(ctx, &MODULE, "add_local_rport", &[]);
            run(ctx, &MODULE, "force_send_socket", &["udp:192.0.2.20:5080"]);
        });
        assert_eq!(socket, Some(2));
        let our_via = out.lines().nth(1).unwrap_or("");
        assert!(
            our_via.starts_with("Via: SIP/2.0/UDP 192.0.2.20:5080;branch=z9hG4bK"),
            "{out}"
        );
        assert!(our_via.ends_with(";rport"), "{out}");
    }

    #[test]
    fn force_rport_sends_the_reply_to_the_source_port() {
        let text = INVITE.replacen(";rport\n", "\n", 1).replacen(
            "198.51.100.1:5070;",
            "198.51.100.1:5090;",
            1,
        );
        let mut h = Harness::new(&text);
        let mut ctx = h.ctx();
        assert_eq!(
            crate::modules::core::forward::reply_destination(&ctx).map(|a| a.port()),
            Some(5090)
        );
        run(&mut ctx, &MODULE, "force_rport", &[]);
        assert_eq!(
            crate::modules::core::forward::reply_destination(&ctx).map(|a| a.port()),
            Some(5070)
        );
        assert_eq!(
            crate::modules::sl::send_reply(&mut ctx, 404, b"Not Found"),
            1
        );
        assert_eq!(h.out[0].dst.port(), 5070);
        let reply = crate::modules::testutil::sent(&h.out);
        // As Kamailio 5.6 writes its own replies: rport at the end of the
        // via-parm, and no received from the sent-by host (seen live:
        // loadtest/sidebyside tmx.cfg force_rport_t_reply, sl and tm alike).
        assert!(
            reply.lines().any(
                |l| l.starts_with("Via:") && l.ends_with(";branch=z9hG4bK776asdhds;rport=5070")
            ),
            "{reply}"
        );
    }
}
