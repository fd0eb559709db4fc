//! ipops: tests on IPv4 and IPv6 address text (Kamailio 5.6 semantics).
//! 1 true, -1 false unless noted; every function works in every route.
//!
//! An address is IPv4 dotted-quad (no leading zeros, as RFC 3986 `dec-octet`),
//! IPv6 (RFC 4291 text, an IPv4 tail allowed), or an IPv6 *reference*: IPv6
//! in brackets, as a SIP URI host writes it. The DNS functions
//! (`dns_sys_match_ip`, `dns_query`…) and `$dns`/`$HN` are not here: the
//! sans-IO layers do not resolve names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::script::ctx::MsgCtx;
use crate::script::ir::FormatPart;
use crate::script::registry::truth;
use crate::script::registry::{Arg, Args, FunctionDef, ModParams, ModuleDef, RouteMask};
use crate::script::value::Value;

/// What an argument's text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpText {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    /// `[v6]`
    V6Ref(Ipv6Addr),
}

impl IpText {
    fn parse(s: &[u8]) -> Option<IpText> {
        let text = std::str::from_utf8(s).ok()?;
        if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return inner.parse().ok().map(IpText::V6Ref);
        }
        if text.contains(':') {
            return text.parse().ok().map(IpText::V6);
        }
        text.parse().ok().map(IpText::V4)
    }

    /// The address, a reference read as its IPv6 address.
    fn addr(self) -> IpAddr {
        match self {
            IpText::V4(a) => IpAddr::V4(a),
            IpText::V6(a) | IpText::V6Ref(a) => IpAddr::V6(a),
        }
    }

    /// `ip_type()`: 1 IPv4, 2 IPv6, 3 IPv6 reference.
    fn code(self) -> i32 {
        match self {
            IpText::V4(_) => 1,
            IpText::V6(_) => 2,
            IpText::V6Ref(_) => 3,
        }
    }
}

fn arg_ip(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> Option<IpText> {
    IpText::parse(&args.str(ctx, i))
}

fn is_ip(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(arg_ip(ctx, args, 0).is_some())
}

fn is_pure_ip(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(matches!(
        arg_ip(ctx, args, 0),
        Some(IpText::V4(_) | IpText::V6(_))
    ))
}

fn is_ipv4(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(matches!(arg_ip(ctx, args, 0), Some(IpText::V4(_))))
}

fn is_ipv6(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(matches!(arg_ip(ctx, args, 0), Some(IpText::V6(_))))
}

fn is_ipv6_reference(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(matches!(arg_ip(ctx, args, 0), Some(IpText::V6Ref(_))))
}

/// `ip_type(ip)`: 1 IPv4, 2 IPv6, 3 IPv6 reference, -1 not an address.
fn ip_type(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    arg_ip(ctx, args, 0).map_or(-1, IpText::code)
}

/// `compare_ips(a, b)`: the same address (an IPv6 reference equals its
/// address); -1 when either is not an address.
fn compare_ips(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match (arg_ip(ctx, args, 0), arg_ip(ctx, args, 1)) {
        (Some(a), Some(b)) => truth(a.addr() == b.addr()),
        _ => -1,
    }
}

/// `compare_pure_ips(a, b)`: as `compare_ips`, references refused.
fn compare_pure_ips(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match (arg_ip(ctx, args, 0), arg_ip(ctx, args, 1)) {
        (Some(a), Some(b)) if a.code() != 3 && b.code() != 3 => truth(a.addr() == b.addr()),
        _ => -1,
    }
}

/// RFC 1918 §3: 10/8, 172.16/12, 192.168/16.
fn rfc1918(a: Ipv4Addr) -> bool {
    let [a0, a1, ..] = a.octets();
    a0 == 10 || (a0 == 172 && (16..32).contains(&a1)) || (a0 == 192 && a1 == 168)
}

fn is_ip_rfc1918(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(matches!(arg_ip(ctx, args, 0), Some(IpText::V4(a)) if rfc1918(a)))
}

/// Whether `ip` is in `net/len` (`len` absent: `ip` equals `net`); false
/// when the entry is no address of `ip`'s family or `len` is out of range.
fn in_net(ip: IpAddr, entry: &[u8]) -> bool {
    let (net, len) = match entry.iter().rposition(|&b| b == b'/') {
        Some(i) if i > 0 => (&entry[..i], Some(&entry[i + 1..])),
        _ => (entry, None),
    };
    let net = match IpText::parse(net) {
        Some(IpText::V4(a)) => IpAddr::V4(a),
        Some(IpText::V6(a)) => IpAddr::V6(a),
        _ => return false,
    };
    let Some(len) = len else { return net == ip };
    let Some(len) = atoi(len) else { return false };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// A prefix length read as C `atoi` reads it (spaces, a sign, leading
/// digits; none is 0), as Kamailio does; `None` when negative or huge.
fn atoi(s: &[u8]) -> Option<u32> {
    let s = s.trim_ascii_start();
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    let n = digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .try_fold(0u32, |n, d| {
            n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        })?;
    (!negative || n == 0).then_some(n)
}

/// `is_in_subnet(ip, "net[/len][,net[/len]…]")`: `ip` (not a reference) in
/// any of the comma-separated networks (spaces around each ignored).
fn is_in_subnet(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let ip = match arg_ip(ctx, args, 0) {
        Some(IpText::V4(a)) => IpAddr::V4(a),
        Some(IpText::V6(a)) => IpAddr::V6(a),
        _ => return -1,
    };
    let list = args.str(ctx, 1);
    let hit = list
        .split(|&b| b == b',')
        .map(|e| e.trim_ascii_start().trim_ascii_end())
        .filter(|e| !e.is_empty())
        .any(|e| in_net(ip, e));
    truth(hit)
}

/// Kamailio's IPv4 classes (RFC 5735, RFC 6598), first match wins; any other
/// address is PUBLIC (compared with Kamailio 5.6.3 by
/// loadtest/sidebyside `ipops_cfgutils.cfg`).
const V4_TYPES: &[(u32, u8, &str)] = &[
    (0xffff_ffff, 32, "BROADCAST"),
    (0xcb00_7100, 24, "TEST-NET"),
    (0xc633_6400, 24, "TEST-NET"),
    (0xc058_6300, 24, "6TO4-RELAY"),
    (0xc000_0200, 24, "TEST-NET"),
    (0xc000_0000, 24, "RESERVED"),
    (0xc0a8_0000, 16, "PRIVATE"),
    (0xa9fe_0000, 16, "LINK-LOCAL"),
    (0xc612_0000, 15, "RESERVED"),
    (0xac10_0000, 12, "PRIVATE"),
    (0x6440_0000, 10, "SHARED"),
    (0x7f00_0000, 8, "LOOPBACK"),
    (0x0a00_0000, 8, "PRIVATE"),
    (0x0000_0000, 8, "PRIVATE"),
    (0xf000_0000, 4, "RESERVED"),
    (0xe000_0000, 4, "MULTICAST"),
];

/// Kamailio's IPv6 classes (IANA IPv6 address space and special registry),
/// first match wins; every address falls in one.
const V6_TYPES: &[(u128, u8, &str)] = &[
    (0, 128, "UNSPECIFIED"),
    (1, 128, "LOOPBACK"),
    (0xffff_0000_0000, 96, "IPV4MAP"),
    (0x0100 << 112, 64, "DISCARD"),
    (0x2001_0002 << 96, 48, "BMWG"),
    (0x2001_0000 << 96, 32, "TEREDO"),
    (0x2001_0db8 << 96, 32, "DOCUMENTATION"),
    (0x2001_0010 << 96, 28, "ORCHID"),
    (0x2002 << 112, 16, "6TO4"),
    (0xfec0 << 112, 10, "RESERVED"),
    (0xfe80 << 112, 10, "LINK-LOCAL-UNICAST"),
    (0xfe00 << 112, 9, "RESERVED"),
    (0, 8, "RESERVED"),
    (0x0100 << 112, 8, "RESERVED"),
    (0xff00 << 112, 8, "MULTICAST"),
    (0x0200 << 112, 7, "RESERVED"),
    (0xfc00 << 112, 7, "UNIQUE-LOCAL-UNICAST"),
    (0x0400 << 112, 6, "RESERVED"),
    (0xf800 << 112, 6, "RESERVED"),
    (0x0800 << 112, 5, "RESERVED"),
    (0xf000 << 112, 5, "RESERVED"),
    (0xe000 << 112, 4, "RESERVED"),
    (0x1000 << 112, 4, "RESERVED"),
    (0xc000 << 112, 3, "RESERVED"),
    (0x2000 << 112, 3, "GLOBAL-UNICAST"),
    (0x4000 << 112, 3, "RESERVED"),
    (0x6000 << 112, 3, "RESERVED"),
    (0x8000 << 112, 3, "RESERVED"),
    (0xa000 << 112, 3, "RESERVED"),
];

fn v4_type(a: Ipv4Addr) -> &'static str {
    let a = u32::from(a);
    V4_TYPES
        .iter()
        .find(|(net, len, _)| a & u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0) == *net)
        .map_or("PUBLIC", |(_, _, t)| t)
}

fn v6_type(a: Ipv6Addr) -> Option<&'static str> {
    let a = u128::from(a);
    V6_TYPES
        .iter()
        .find(|(net, len, _)| a & u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0) == *net)
        .map(|(_, _, t)| *t)
}

/// Which family a `detailed_*_type` function reads its argument as.
#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
    Either,
}

fn detailed(ctx: &mut MsgCtx<'_>, args: &Args, family: Family) -> i32 {
    let text = args.str(ctx, 0).into_owned();
    let trimmed = text.trim_ascii();
    let class = match family {
        Family::V4 => std::str::from_utf8(trimmed)
            .ok()
            .and_then(|t| t.parse().ok())
            .map(v4_type),
        Family::V6 => {
            let inner = match trimmed {
                [b'[', inner @ .., b']'] => inner,
                t => t,
            };
            std::str::from_utf8(inner)
                .ok()
                .and_then(|t| t.parse().ok())
                .and_then(v6_type)
        }
        Family::Either => match IpText::parse(&text) {
            Some(IpText::V4(a)) => Some(v4_type(a)),
            Some(IpText::V6(a) | IpText::V6Ref(a)) => v6_type(a),
            None => None,
        },
    };
    let Some(class) = class else { return -1 };
    let Some(Arg::Pv(pv)) = args.get(1) else {
        return -1;
    };
    truth(ctx.write_pv(pv, Value::str(class.as_bytes())).is_ok())
}

fn detailed_ipv4_type(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    detailed(ctx, args, Family::V4)
}

fn detailed_ipv6_type(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    detailed(ctx, args, Family::V6)
}

fn detailed_ip_type(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    detailed(ctx, args, Family::Either)
}

/// The result argument must be a variable the script can write, bare or
/// quoted (`"$var(x)"`, as Kamailio's examples write it).
fn fixup_result(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(Arg::Fmt(f)) = args.get(1) {
        if let [FormatPart::Pv(pv)] = f.parts.as_slice() {
            args.0[1] = Arg::Pv(pv.clone());
        }
    }
    match args.get(1) {
        Some(Arg::Pv(pv)) if pv.is_writable() => Ok(()),
        _ => Err("argument 2 must be a writable variable".into()),
    }
}

macro_rules! f {
    ($name:expr, $n:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $n,
            max_args: $n,
            routes: RouteMask::ANY,
            fixup: None,
            call: $call,
        }
    };
    ($name:expr, $n:expr, $fixup:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $n,
            max_args: $n,
            routes: RouteMask::ANY,
            fixup: Some($fixup),
            call: $call,
        }
    };
}

/// The ipops module.
pub static MODULE: ModuleDef = ModuleDef {
    name: "ipops",
    aliases: &[],
    functions: &[
        f!("is_ip", 1, is_ip),
        f!("is_pure_ip", 1, is_pure_ip),
        f!("is_ipv4", 1, is_ipv4),
        f!("is_ipv6", 1, is_ipv6),
        f!("is_ipv6_reference", 1, is_ipv6_reference),
        f!("ip_type", 1, ip_type),
        f!("compare_ips", 2, compare_ips),
        f!("compare_pure_ips", 2, compare_pure_ips),
        f!("is_ip_rfc1918", 1, is_ip_rfc1918),
        f!("is_in_subnet", 2, is_in_subnet),
        f!("detailed_ipv4_type", 2, fixup_result, detailed_ipv4_type),
        f!("detailed_ipv6_type", 2, fixup_result, detailed_ipv6_type),
        f!("detailed_ip_type", 2, fixup_result, detailed_ip_type),
    ],
    params: &[],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{run, Harness, INVITE};
    use crate::script::pvkind::{PvKind, PvRef};

    fn check(name: &str, strs: &[&str]) -> i32 {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        run(&mut ctx, &MODULE, name, strs)
    }

    #[test]
    fn kinds_of_address() {
        for (s, code) in [
            ("1.2.3.4", 1),
            ("255.255.255.255", 1),
            ("256.1.1.1", -1),
            ("01.2.3.4", -1),
            ("1.2.3", -1),
            ("::1", 2),
            ("2001:DB8:0:0:8:800:200C:417A", 2),
            ("::ffff:192.0.2.1", 2),
            ("[2001:db8::1]", 3),
            ("[1.2.3.4]", -1),
            ("[::1", -1),
            ("example.com", -1),
            ("", -1),
            (" 1.2.3.4", -1),
        ] {
            assert_eq!(check("ip_type", &[s]), code, "{s}");
            assert_eq!(check("is_ip", &[s]), if code > 0 { 1 } else { -1 }, "{s}");
            assert_eq!(
                check("is_pure_ip", &[s]),
                if code == 1 || code == 2 { 1 } else { -1 },
                "{s}"
            );
            assert_eq!(check("is_ipv4", &[s]), if code == 1 { 1 } else { -1 });
            assert_eq!(check("is_ipv6", &[s]), if code == 2 { 1 } else { -1 });
            assert_eq!(
                check("is_ipv6_reference", &[s]),
                if code == 3 { 1 } else { -1 }
            );
        }
    }

    #[test]
    fn comparing() {
        assert_eq!(check("compare_ips", &["1.2.3.4", "1.2.3.4"]), 1);
        assert_eq!(check("compare_ips", &["1.2.3.4", "1.2.3.5"]), -1);
        assert_eq!(
            check(
                "compare_ips",
                &[
                    "2001:DB8:0000:0000:0008:0800:200C:417A",
                    "[2001:db8::8:800:200c:417a]"
                ]
            ),
            1
        );
        assert_eq!(check("compare_ips", &["::ffff:1.2.3.4", "1.2.3.4"]), -1);
        assert_eq!(check("compare_ips", &["x", "x"]), -1);
        assert_eq!(check("compare_pure_ips", &["::1", "0::1"]), 1);
        assert_eq!(check("compare_pure_ips", &["::1", "[::1]"]), -1);
    }

    #[test]
    fn rfc1918_ranges() {
        for (s, want) in [
            ("10.0.0.1", 1),
            ("172.16.0.1", 1),
            ("172.31.255.255", 1),
            ("172.32.0.1", -1),
            ("192.168.1.1", 1),
            ("192.169.1.1", -1),
            ("8.8.8.8", -1),
            ("::1", -1),
            ("10.0.0", -1),
        ] {
            assert_eq!(check("is_ip_rfc1918", &[s]), want, "{s}");
        }
    }

    #[test]
    fn subnets() {
        for (ip, nets, want) in [
            ("192.168.1.7", "192.168.1.0/24", 1),
            ("192.168.2.7", "192.168.1.0/24", -1),
            ("192.168.2.7", "10.0.0.0/8, 192.168.0.0/16", 1),
            ("192.168.2.7", " 192.168.2.7 ", 1),
            ("192.168.2.7", "192.168.2.8", -1),
            ("192.168.2.7", "0.0.0.0/0", 1),
            ("192.168.2.7", "192.168.2.0/33", -1),
            ("192.168.2.7", "bad, ,192.168.2.0/24", 1),
            ("2001:db8::7", "2001:db8::/32", 1),
            ("2001:db9::7", "2001:db8::/32", -1),
            ("2001:db8::7", "192.168.0.0/16", -1),
            ("[2001:db8::7]", "2001:db8::/32", -1),
            ("x", "0.0.0.0/0", -1),
            ("1.2.3.4", "1.2.3.0/24x", 1),
            ("1.2.3.4", "9.9.9.9/", 1),
            ("1.2.3.4", "1.2.3.0/-24", -1),
        ] {
            assert_eq!(check("is_in_subnet", &[ip, nets]), want, "{ip} in {nets}");
        }
    }

    #[test]
    fn detailed_types() {
        for (ip, want) in [
            ("192.168.1.2", "PRIVATE"),
            ("8.8.8.8", "PUBLIC"),
            ("127.0.0.1", "LOOPBACK"),
            ("100.64.0.1", "SHARED"),
            ("192.0.2.1", "TEST-NET"),
            ("224.0.0.1", "MULTICAST"),
            ("255.255.255.255", "BROADCAST"),
            ("172.17.0.1", "PRIVATE"),
            ("172.20.0.1", "PRIVATE"),
            ("172.32.0.1", "PUBLIC"),
        ] {
            assert_eq!(v4_type(ip.parse().unwrap()), want, "{ip}");
        }
        for (ip, want) in [
            ("::", "UNSPECIFIED"),
            ("::1", "LOOPBACK"),
            ("::ffff:1.2.3.4", "IPV4MAP"),
            ("2001:db8::1", "DOCUMENTATION"),
            ("2001:2::1", "BMWG"),
            ("2001::1", "TEREDO"),
            ("2002::1", "6TO4"),
            ("fe80::1", "LINK-LOCAL-UNICAST"),
            ("fd00::1", "UNIQUE-LOCAL-UNICAST"),
            ("ff02::1", "MULTICAST"),
            ("2a00:1450::1", "GLOBAL-UNICAST"),
            ("4000::1", "RESERVED"),
        ] {
            assert_eq!(v6_type(ip.parse().unwrap()), Some(want), "{ip}");
        }
    }

    #[test]
    fn detailed_type_needs_a_writable_result() {
        let mut args = crate::modules::testutil::str_args(&["1.2.3.4", "x"]);
        assert!(fixup_result(&mut args, &ModParams::default()).is_err());
        // A quoted variable, as Kamailio's examples write it.
        let du = PvRef::new(PvKind::Du);
        let quoted = crate::script::ir::Format {
            parts: vec![FormatPart::Pv(du.clone())],
        };
        let mut args = Args(vec![Arg::Str("1.2.3.4".into()), Arg::Fmt(quoted)]);
        assert!(fixup_result(&mut args, &ModParams::default()).is_ok());
        assert!(matches!(args.get(1), Some(Arg::Pv(p)) if *p == du));
        // A bad address writes nothing and fails.
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        let du = || Arg::Pv(PvRef::new(PvKind::Du));
        let args = Args(vec![Arg::Str("999.1.1.1".into()), du()]);
        assert_eq!(detailed_ipv4_type(&mut ctx, &args), -1);
        assert_eq!(detailed_ipv6_type(&mut ctx, &args), -1);
        assert_eq!(detailed_ip_type(&mut ctx, &args), -1);
        assert_eq!(ctx.dst_uri, None);
        let args = Args(vec![Arg::Str(" 10.1.2.3 ".into()), du()]);
        assert_eq!(detailed_ipv4_type(&mut ctx, &args), 1);
        assert_eq!(ctx.dst_uri.as_deref(), Some(&b"PRIVATE"[..]));
        // detailed_ip_type reads the text strictly, as ip_type does.
        assert_eq!(detailed_ip_type(&mut ctx, &args), -1);
        let args = Args(vec![Arg::Str("[fe80::1]".into()), du()]);
        assert_eq!(detailed_ipv6_type(&mut ctx, &args), 1);
        assert_eq!(ctx.dst_uri.as_deref(), Some(&b"LINK-LOCAL-UNICAST"[..]));
        let args = Args(vec![Arg::Str("::1".into()), du()]);
        assert_eq!(detailed_ip_type(&mut ctx, &args), 1);
        assert_eq!(ctx.dst_uri.as_deref(), Some(&b"LOOPBACK"[..]));
        assert_eq!(detailed_ipv4_type(&mut ctx, &args), -1);
    }

    #[test]
    fn allowed_in_every_route() {
        assert!(MODULE.functions.iter().all(|f| f.routes == RouteMask::ANY));
    }
}
