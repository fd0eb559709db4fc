//! kex: core extensions that Kamailio moved into a module, so they need
//! `loadmodule "kex.so"` (KAMAILIO-REFERENCE §1.6): branch and script flags,
//! the destination URI, `pv_printf`, `is_myself` and per-message debug level.
//! Every function may run in any route and returns 1 (true) or -1 (false).

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::registry::{fixup_int, Arg, Args, FunctionDef, ModParams, ModuleDef, RouteMask};
use crate::script::value::Value;
use crate::sip::uri::Uri;

/// Branch and script flags are numbered 0..=31.
const MAX_FLAG: i64 = 31;

/// `setbflag(flag[, branch])` and friends: the flag (and branch index) are checked once.
fn fixup_flag(args: &mut Args, _: &ModParams) -> Result<(), String> {
    for i in 0..args.len() {
        fixup_int(args, i)?;
    }
    match args.get(0) {
        Some(Arg::Int(f)) if !(0..=MAX_FLAG).contains(f) => {
            Err(format!("flag {f} is out of 0..{MAX_FLAG}"))
        }
        _ => Ok(()),
    }
}

/// The flag's bit, or `None` for a bad flag or a branch other than 0 (the only
/// branch before tm adds others).
fn bit(ctx: &MsgCtx<'_>, args: &Args) -> Option<u32> {
    if args.len() > 1 && args.int(ctx, 1) != Some(0) {
        log::warn!("branch flags: only branch 0 exists without tm");
        return None;
    }
    args.int(ctx, 0)
        .filter(|f| (0..=MAX_FLAG).contains(f))
        .map(|f| 1u32 << f)
}

fn setbflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(b) = bit(ctx, args) else { return -1 };
    ctx.state.bflags |= b;
    1
}

fn resetbflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(b) = bit(ctx, args) else { return -1 };
    ctx.state.bflags &= !b;
    1
}

fn isbflagset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match bit(ctx, args) {
        Some(b) if ctx.state.bflags & b != 0 => 1,
        _ => -1,
    }
}

fn setsflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(b) = bit(ctx, args) else { return -1 };
    ctx.state.sflags |= b;
    1
}

fn resetsflag(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(b) = bit(ctx, args) else { return -1 };
    ctx.state.sflags &= !b;
    1
}

fn issflagset(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    match bit(ctx, args) {
        Some(b) if ctx.state.sflags & b != 0 => 1,
        _ => -1,
    }
}

/// `setdsturi(uri)`: sets `$du`; -1 for an empty value.
fn setdsturi(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let uri = args.str(ctx, 0).into_owned();
    if uri.is_empty() {
        return -1;
    }
    ctx.dst_uri = Some(Bytes::from(uri));
    1
}

fn resetdsturi(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.dst_uri = None;
    1
}

fn isdsturiset(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    if ctx.dst_uri.is_some() {
        1
    } else {
        -1
    }
}

/// `pv_printf(var, format)`: the variable must be writable.
fn fixup_pv_printf(args: &mut Args, _: &ModParams) -> Result<(), String> {
    // `pv_printf("$var(x)", …)`: the variable given as a string, as Kamailio allows.
    crate::modules::corex::args::as_pv(args, 0);
    match args.get(0) {
        Some(Arg::Pv(pv)) if pv.is_writable() => Ok(()),
        _ => Err("the first argument must be a writable variable".into()),
    }
}

/// Prints the format and assigns it; -1 when the variable refuses the value.
fn pv_printf(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(Arg::Pv(pv)) = args.get(0) else {
        return -1;
    };
    let text = args.str(ctx, 1).into_owned();
    match ctx.write_pv(pv, Value::owned(text)) {
        Ok(()) => 1,
        Err(e) => {
            log::warn!("pv_printf: {e}");
            -1
        }
    }
}

/// Whether `value` (a URI, or a bare `host[:port]`) names this server.
pub fn names_myself(ctx: &MsgCtx<'_>, value: &[u8]) -> bool {
    if let Ok(uri) = Uri::parse(value) {
        if uri.scheme().is_sip() {
            return ctx
                .env
                .is_myself(uri.host_raw(), uri.port(), uri.transport());
        }
    }
    let (host, port) = split_hostport(value);
    ctx.env.is_myself(host, port, None)
}

/// `host[:port]`, with IPv6 references in brackets.
fn split_hostport(v: &[u8]) -> (&[u8], Option<u16>) {
    let colon = match v.iter().rposition(|&b| b == b':') {
        Some(c) if !v.contains(&b']') || v.get(c.saturating_sub(1)) == Some(&b']') => c,
        _ => return (v, None),
    };
    if v.iter().filter(|&&b| b == b':').count() > 1 && !v.starts_with(b"[") {
        return (v, None); // a bare IPv6 address
    }
    let port = std::str::from_utf8(&v[colon + 1..])
        .ok()
        .and_then(|p| p.parse().ok());
    match port {
        Some(p) => (&v[..colon], Some(p)),
        None => (v, None),
    }
}

/// `is_myself(uri)`.
fn is_myself(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let v = args.str(ctx, 0).into_owned();
    if names_myself(ctx, &v) {
        1
    } else {
        -1
    }
}

/// `setdebug(level)`: log level for the rest of this message.
fn setdebug(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(level) = args.int(ctx, 0) else {
        return -1;
    };
    ctx.state.debug = Some(level.clamp(-5, 10) as i32);
    1
}

fn resetdebug(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    ctx.state.debug = None;
    1
}

macro_rules! f {
    ($name:expr, $min:expr, $max:expr, $fixup:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $min,
            max_args: $max,
            routes: RouteMask::ANY,
            fixup: $fixup,
            call: $call,
        }
    };
}

pub static MODULE: ModuleDef = ModuleDef {
    name: "kex",
    aliases: &[],
    functions: &[
        f!("setbflag", 1, 2, Some(fixup_flag), setbflag),
        f!("resetbflag", 1, 2, Some(fixup_flag), resetbflag),
        f!("isbflagset", 1, 2, Some(fixup_flag), isbflagset),
        f!("setsflag", 1, 1, Some(fixup_flag), setsflag),
        f!("resetsflag", 1, 1, Some(fixup_flag), resetsflag),
        f!("issflagset", 1, 1, Some(fixup_flag), issflagset),
        f!("setdsturi", 1, 1, None, setdsturi),
        f!("resetdsturi", 0, 0, None, resetdsturi),
        f!("isdsturiset", 0, 0, None, isdsturiset),
        f!("pv_printf", 2, 2, Some(fixup_pv_printf), pv_printf),
        f!("is_myself", 1, 1, None, is_myself),
        f!("setdebug", 1, 1, None, setdebug),
        f!("resetdebug", 0, 0, None, resetdebug),
    ],
    params: &[],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{run, Harness, INVITE};
    use crate::script::pvkind::{PvKind, PvRef};

    #[test]
    fn branch_and_script_flags() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "isbflagset", &["6"]), -1);
        assert_eq!(run(&mut ctx, &MODULE, "setbflag", &["6"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "isbflagset", &["6"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "isbflagset", &["6", "0"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "setbflag", &["7", "1"]), -1);
        assert_eq!(run(&mut ctx, &MODULE, "resetbflag", &["6"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "isbflagset", &["6"]), -1);
        assert_eq!(run(&mut ctx, &MODULE, "setsflag", &["31"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "issflagset", &["31"]), 1);
        assert_eq!(ctx.state.sflags, 1 << 31);
        assert_eq!(run(&mut ctx, &MODULE, "resetsflag", &["31"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "issflagset", &["31"]), -1);
        assert_eq!(ctx.flags, 0, "message flags untouched");
    }

    #[test]
    fn flag_out_of_range_fails_at_fixup() {
        let def = MODULE.function("setbflag").unwrap();
        let mut args = crate::modules::testutil::str_args(&["32"]);
        assert!((def.fixup.unwrap())(&mut args, &ModParams::default()).is_err());
    }

    #[test]
    fn dst_uri() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "isdsturiset", &[]), -1);
        assert_eq!(
            run(&mut ctx, &MODULE, "setdsturi", &["sip:10.0.0.1:5080"]),
            1
        );
        assert_eq!(ctx.dst_uri.as_deref(), Some(&b"sip:10.0.0.1:5080"[..]));
        assert_eq!(run(&mut ctx, &MODULE, "isdsturiset", &[]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "resetdsturi", &[]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "isdsturiset", &[]), -1);
    }

    #[test]
    fn pv_printf_writes_the_variable() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        let args = Args(vec![
            Arg::Pv(PvRef::new(PvKind::Ru)),
            Arg::Str(Bytes::from_static(b"sip:carol@example.net")),
        ]);
        assert_eq!(pv_printf(&mut ctx, &args), 1);
        assert_eq!(ctx.ruri(), b"sip:carol@example.net");
        let mut bad = Args(vec![Arg::Pv(PvRef::new(PvKind::Si))]);
        assert!(fixup_pv_printf(&mut bad, &ModParams::default()).is_err());
    }

    #[test]
    fn is_myself_uri_and_host() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        for (v, want) in [
            ("sip:192.0.2.10", 1),
            ("sip:bob@192.0.2.10:5060;transport=tcp", 1),
            ("sip:192.0.2.10:5061", -1),
            ("sip:proxy.example.net", 1),
            ("192.0.2.20:5080", 1),
            ("192.0.2.20", -1),
            ("sip:example.com", -1),
            ("", -1),
        ] {
            assert_eq!(run(&mut ctx, &MODULE, "is_myself", &[v]), want, "{v}");
        }
    }

    #[test]
    fn setdebug_is_per_message() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "setdebug", &["3"]), 1);
        assert_eq!(ctx.state.debug_level(2), 3);
        assert_eq!(run(&mut ctx, &MODULE, "resetdebug", &[]), 1);
        assert_eq!(ctx.state.debug_level(2), 2);
    }
}
