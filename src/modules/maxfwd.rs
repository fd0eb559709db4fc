//! maxfwd: Max-Forwards processing (RFC 3261 §16.6 step 3, §16.3 step 2).

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::registry::{
    fixup_int, Arg, Args, FunctionDef, ModParams, ModuleDef, ParamDef, ParamKind, RouteMask,
};
use crate::sip::HeaderName;

/// Default `max_limit`: a larger incoming value is lowered to it.
const DEFAULT_MAX_LIMIT: i64 = 70;

/// Reads the Max-Forwards header: `None` when absent, `Some(Err)` when unreadable.
fn current(ctx: &MsgCtx<'_>) -> Option<Result<(usize, u32), ()>> {
    let idx = ctx
        .msg
        .headers()
        .iter()
        .position(|h| h.id == HeaderName::MaxForwards)?;
    let v = ctx.msg.value(&ctx.msg.headers()[idx]);
    // Empty reads as 0, as Kamailio 5.6 reads it.
    let parsed = if v.is_empty() {
        Ok((idx, 0))
    } else if v.len() <= 9 && v.iter().all(u8::is_ascii_digit) {
        Ok((
            idx,
            v.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')),
        ))
    } else {
        Err(())
    };
    Some(parsed)
}

/// 0 to 255 in decimal (length, digits): the new Max-Forwards value of a
/// forwarded request comes from here instead of the heap.
static DECIMAL: [(u8, [u8; 3]); 256] = {
    let mut table = [(0u8, [0u8; 3]); 256];
    let mut n = 0;
    while n < 256 {
        let (h, t, u) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        table[n] = if n >= 100 {
            (3, [b'0' + h, b'0' + t, b'0' + u])
        } else if n >= 10 {
            (2, [b'0' + t, b'0' + u, 0])
        } else {
            (1, [b'0' + u, 0, 0])
        };
        n += 1;
    }
    table
};

/// `mf_process_maxfwd_header(n)`: 2 header added with value n; 1 decremented;
/// -1 the value is 0 (the script answers 483); -2 unreadable.
fn process(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(n) = args.int(ctx, 0) else { return -2 };
    let limit = args.custom::<i64>(1).copied().unwrap_or(DEFAULT_MAX_LIMIT);
    match current(ctx) {
        None => {
            let line = format!("Max-Forwards: {n}\r\n");
            ctx.edits.prepend_header(ctx.msg, line.into_bytes());
            2
        }
        Some(Err(())) => -2,
        Some(Ok((_, 0))) => -1,
        Some(Ok((idx, v))) => {
            // A value above max_limit is first lowered, so the result is max_limit.
            let next = (i64::from(v) - 1).min(limit).max(0);
            let text = match usize::try_from(next).ok().and_then(|n| DECIMAL.get(n)) {
                // A value up to 255 (always, unless max_limit is higher): no allocation.
                Some(&(len, ref digits)) => Bytes::from_static(&digits[..usize::from(len)]),
                None => Bytes::copy_from_slice(itoa::Buffer::new().format(next).as_bytes()),
            };
            ctx.edits.replace_header_value(ctx.msg, idx, text);
            1
        }
    }
}

/// `is_maxfwd_lt(n)`: 1 value < n, -1 value ≥ n, -2 absent, -3 unreadable.
fn is_lt(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(n) = args.int(ctx, 0) else { return -3 };
    match current(ctx) {
        None => -2,
        Some(Err(())) => -3,
        Some(Ok((_, v))) if i64::from(v) < n => 1,
        Some(Ok(_)) => -1,
    }
}

fn fixup_process(args: &mut Args, params: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)?;
    if let Some(Arg::Int(n)) = args.get(0) {
        if !(0..=255).contains(n) {
            return Err(format!("max forwards value {n} is out of 0..255"));
        }
    }
    let limit = params
        .int("maxfwd", "max_limit")
        .unwrap_or(DEFAULT_MAX_LIMIT);
    args.0.push(Arg::Custom(Box::new(limit)));
    Ok(())
}

fn fixup_lt(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)
}

const REQ: RouteMask = RouteMask::REQUEST;

pub static MODULE: ModuleDef = ModuleDef {
    name: "maxfwd",
    aliases: &[],
    functions: &[
        FunctionDef {
            name: "mf_process_maxfwd_header",
            min_args: 1,
            max_args: 1,
            routes: REQ,
            fixup: Some(fixup_process),
            call: process,
        },
        FunctionDef {
            name: "maxfwd_process",
            min_args: 1,
            max_args: 1,
            routes: REQ,
            fixup: Some(fixup_process),
            call: process,
        },
        FunctionDef {
            name: "process_maxfwd",
            min_args: 1,
            max_args: 1,
            routes: REQ,
            fixup: Some(fixup_process),
            call: process,
        },
        FunctionDef {
            name: "is_maxfwd_lt",
            min_args: 1,
            max_args: 1,
            routes: REQ,
            fixup: Some(fixup_lt),
            call: is_lt,
        },
        FunctionDef {
            name: "maxfwd_at_least",
            min_args: 1,
            max_args: 1,
            routes: REQ,
            fixup: Some(fixup_lt),
            call: is_lt,
        },
        FunctionDef {
            name: "mf_lowlimit",
            min_args: 1,
            max_args: 1,
            routes: REQ,
            fixup: Some(fixup_lt),
            call: is_lt,
        },
    ],
    params: &[ParamDef {
        name: "max_limit",
        kind: ParamKind::Int,
    }],
    always: false,
};

#[cfg(test)]
mod tests {
    use crate::modules::testutil::{call, Harness, INVITE};
    use crate::script::registry::ModParams;

    /// An empty Max-Forwards reads as 0 in Kamailio 5.6 (-1: the script
    /// answers 483), not as unreadable (sidebyside hunt_route_sanity.cfg
    /// maxfwd_values).
    #[test]
    fn empty_value_reads_as_zero() {
        let text = INVITE.replacen("Max-Forwards: 70", "Max-Forwards: ", 1);
        assert!(text.contains("Max-Forwards: \n"), "{text}");
        let mut h = Harness::new(&text);
        let mut ctx = h.ctx();
        let rc = call(
            &mut ctx,
            &super::MODULE,
            "mf_process_maxfwd_header",
            &["10"],
            &ModParams::default(),
        );
        assert_eq!(rc, -1);
        let text = INVITE.replacen("Max-Forwards: 70", "Max-Forwards: abc", 1);
        let mut h = Harness::new(&text);
        let mut ctx = h.ctx();
        let rc = call(
            &mut ctx,
            &super::MODULE,
            "mf_process_maxfwd_header",
            &["10"],
            &ModParams::default(),
        );
        assert_eq!(rc, -2);
    }

    #[test]
    fn decimal_table_spells_every_value() {
        for (n, (len, digits)) in super::DECIMAL.iter().enumerate() {
            assert_eq!(&digits[..usize::from(*len)], n.to_string().as_bytes());
        }
    }
}
