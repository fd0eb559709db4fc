//! statsd: metrics sent to a statsd server over UDP, one datagram per call,
//! in the text form Kamailio 5.6 sends (checked live): `key:value|type\n`.
//!
//! - `statsd_gauge(key, value)`: `key:value|g` (the value as written);
//! - `statsd_incr(key)` / `statsd_decr(key)`: `key:1|c` / `key:-1|c`;
//! - `statsd_set(key, value)`: `key:N|s`, N the value read as C's `strtol`
//!   reads it whole (leading blanks and a sign allowed, empty is 0) and
//!   kept to 32 bits as Kamailio keeps it; a value that does not read is an
//!   error that ends the script, as in Kamailio;
//! - `statsd_start(key)` keeps the time (unix milliseconds) in the AVP
//!   named `key`; `statsd_stop(key)` sends `key:ELAPSED|ms` and removes it.
//!
//! Modparams `ip` (127.0.0.1) and `port` (8125) name the server. Every
//! function answers 1 once its datagram is queued.
//!
//! Differences: Kamailio 5.6 sends pseudo-variables in the arguments as
//! their text (`$var(x)`); ringsip prints them. `statsd_stop` of a timer
//! never started sends an unset value in Kamailio; ringsip sends nothing
//! and answers -1.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::pvkind::AvpKey;
use crate::script::registry::{func, param, Arg, Args, ModParams, ModuleDef, ParamKind, RouteMask};
use crate::script::value::Value;
use crate::sip::packet::{SendFlags, Transmit};
use crate::sip::Proto;

/// Where the datagrams go, fixed with each call at start-up.
struct Server(SocketAddr);

fn fixup(args: &mut Args, params: &ModParams) -> Result<(), String> {
    let ip = params.str("statsd", "ip").unwrap_or("127.0.0.1");
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("statsd: ip must be an IP address, not {ip:?}"))?;
    let port = match params.str("statsd", "port") {
        None => 8125,
        Some(p) => p
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("statsd: port must be a port number, not {p:?}"))?,
    };
    args.0
        .push(Arg::Custom(Box::new(Server(SocketAddr::new(ip, port)))));
    Ok(())
}

/// Queues `key:value|kind\n` to the server.
fn send(ctx: &mut MsgCtx<'_>, args: &Args, at: usize, key: &[u8], value: &[u8], kind: &str) -> i32 {
    let Some(server) = args.custom::<Server>(at) else {
        return -1;
    };
    let mut line = Vec::with_capacity(key.len() + value.len() + kind.len() + 3);
    line.extend_from_slice(key);
    line.push(b':');
    line.extend_from_slice(value);
    line.push(b'|');
    line.extend_from_slice(kind.as_bytes());
    line.push(b'\n');
    ctx.out.push(Transmit {
        data: Bytes::from(line),
        dst: server.0,
        proto: Proto::Udp,
        socket: None,
        local: None,
        conn: None,
        flags: SendFlags::default(),
    });
    1
}

fn statsd_gauge(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (key, value) = (args.str(ctx, 0).into_owned(), args.str(ctx, 1).into_owned());
    send(ctx, args, 2, &key, &value, "g")
}

fn statsd_incr(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let key = args.str(ctx, 0).into_owned();
    send(ctx, args, 1, &key, b"1", "c")
}

fn statsd_decr(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let key = args.str(ctx, 0).into_owned();
    send(ctx, args, 1, &key, b"-1", "c")
}

/// C's `strtol` over the whole text (leading blanks, a sign; empty is 0),
/// kept to 32 bits; `None` when anything is left over.
fn whole_number(s: &[u8]) -> Option<i32> {
    let s = s.trim_ascii_start();
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits.iter().fold(0i64, |v, &c| {
        v.saturating_mul(10).saturating_add(i64::from(c - b'0'))
    });
    Some((if negative { -v } else { v }) as i32)
}

fn statsd_set(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (key, value) = (args.str(ctx, 0).into_owned(), args.str(ctx, 1).into_owned());
    let Some(n) = whole_number(&value) else {
        log::error!(
            "statsd_set: {:?} is not a number",
            String::from_utf8_lossy(&value)
        );
        // Kamailio's answer: the script ends here.
        return 0;
    };
    send(ctx, args, 2, &key, n.to_string().as_bytes(), "s")
}

fn now_ms(ctx: &MsgCtx<'_>) -> i64 {
    ctx.env.clock.unix(ctx.now).as_millis() as i64
}

fn statsd_start(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let key = AvpKey::Str(Bytes::from(args.str(ctx, 0).into_owned()));
    let ms = now_ms(ctx).to_string();
    ctx.attrs
        .avp_push(key, Value::owned(ms.into_bytes()).into_owned());
    1
}

fn statsd_stop(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    let key = AvpKey::Str(Bytes::from(name.clone()));
    let started = ctx.attrs.avp(&key, 0).and_then(|v| {
        std::str::from_utf8(&v.to_bytes())
            .ok()?
            .trim()
            .parse::<i64>()
            .ok()
    });
    let Some(started) = started else {
        log::error!(
            "statsd_stop: no timer {:?} was started",
            String::from_utf8_lossy(&name)
        );
        return -1;
    };
    ctx.attrs.avp_remove_newest(&key);
    let elapsed = (now_ms(ctx) - started).max(0);
    send(ctx, args, 1, &name, elapsed.to_string().as_bytes(), "ms")
}

const ANY: RouteMask = RouteMask::ANY;

pub static MODULE: ModuleDef = ModuleDef {
    name: "statsd",
    aliases: &[],
    functions: &[
        func("statsd_gauge", 2, 2, ANY, Some(fixup), statsd_gauge),
        func("statsd_incr", 1, 1, ANY, Some(fixup), statsd_incr),
        func("statsd_decr", 1, 1, ANY, Some(fixup), statsd_decr),
        func("statsd_set", 2, 2, ANY, Some(fixup), statsd_set),
        func("statsd_start", 1, 1, ANY, None, statsd_start),
        func("statsd_stop", 1, 1, ANY, Some(fixup), statsd_stop),
    ],
    params: &[param("ip", ParamKind::Str), param("port", ParamKind::Any)],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{call, some_instant, Harness, INVITE};
    use crate::script::registry::ParamValue;

    fn sent(h: &Harness) -> Vec<(String, SocketAddr)> {
        h.out
            .iter()
            .map(|t| (String::from_utf8_lossy(&t.data).into_owned(), t.dst))
            .collect()
    }

    /// The datagrams Kamailio 5.6 sent for the same calls (checked live).
    #[test]
    fn datagrams_are_what_kamailio_sends() {
        let mut h = Harness::new(INVITE);
        let mut params = ModParams::default();
        params.push("statsd", "ip", ParamValue::Str("127.0.0.9".into()));
        params.push("statsd", "port", ParamValue::Str("9125".into()));
        let mut ctx = h.ctx();
        for (name, args) in [
            ("statsd_gauge", &["g1", "10"][..]),
            ("statsd_gauge", &["g2", "+3"]),
            ("statsd_gauge", &["g4", "abc"]),
            ("statsd_incr", &["c1"]),
            ("statsd_decr", &["c2"]),
            ("statsd_set", &["s0", "-2"]),
            ("statsd_set", &["s1", "+2"]),
            ("statsd_set", &["s3", " 5"]),
            ("statsd_set", &["s5", "99999999999"]),
            ("statsd_set", &["s6", ""]),
        ] {
            assert_eq!(
                call(&mut ctx, &MODULE, name, args, &params),
                1,
                "{name}{args:?}"
            );
        }
        // Not a whole number: an error that ends the script, nothing sent.
        for v in ["12abc", "1.5"] {
            assert_eq!(call(&mut ctx, &MODULE, "statsd_set", &["s", v], &params), 0);
        }
        drop(ctx);
        let to: SocketAddr = "127.0.0.9:9125".parse().unwrap();
        let want = [
            "g1:10|g\n",
            "g2:+3|g\n",
            "g4:abc|g\n",
            "c1:1|c\n",
            "c2:-1|c\n",
            "s0:-2|s\n",
            "s1:2|s\n",
            "s3:5|s\n",
            "s5:1215752191|s\n",
            "s6:0|s\n",
        ];
        assert_eq!(
            sent(&h),
            want.iter().map(|w| (w.to_string(), to)).collect::<Vec<_>>()
        );
        assert!(h.out.iter().all(|t| t.proto == Proto::Udp));
    }

    /// A timer: the start time in the AVP named by the key, the elapsed
    /// milliseconds at the stop (which removes it); a timer never started
    /// sends nothing.
    #[test]
    fn timers_measure_from_start_to_stop() {
        let mut h = Harness::new(INVITE);
        h.env.clock.base = Some(some_instant());
        h.env.clock.unix_at_base = std::time::Duration::from_millis(1_796_371_446_572);
        let params = ModParams::default();
        let mut ctx = h.ctx();
        assert_eq!(call(&mut ctx, &MODULE, "statsd_start", &["t1"], &params), 1);
        let key = AvpKey::Str(Bytes::from_static(b"t1"));
        assert_eq!(
            ctx.attrs.avp(&key, 0).map(|v| v.to_bytes().into_owned()),
            Some(b"1796371446572".to_vec())
        );
        ctx.now += std::time::Duration::from_millis(250);
        assert_eq!(call(&mut ctx, &MODULE, "statsd_stop", &["t1"], &params), 1);
        assert!(ctx.attrs.avp(&key, 0).is_none());
        assert_eq!(call(&mut ctx, &MODULE, "statsd_stop", &["t1"], &params), -1);
        assert_eq!(call(&mut ctx, &MODULE, "statsd_stop", &["t2"], &params), -1);
        drop(ctx);
        let to: SocketAddr = "127.0.0.1:8125".parse().unwrap();
        assert_eq!(sent(&h), [("t1:250|ms\n".to_string(), to)]);
    }

    #[test]
    fn a_bad_server_address_is_a_start_up_error() {
        for (name, value) in [("ip", "statsd.example"), ("port", "0"), ("port", "x")] {
            let mut params = ModParams::default();
            params.push("statsd", name, ParamValue::Str(value.into()));
            let mut args = Args(vec![Arg::Str("k".into())]);
            assert!(fixup(&mut args, &params).is_err(), "{name}={value}");
        }
    }
}
