//! `append_branch([uri[, q]])` (corex, REQ and FAILURE routes): adds an entry
//! to the destination set that `t_relay()` forks to (KAMAILIO-REFERENCE §3.3,
//! §8). The entry takes the message's `$du`, branch flags and forced socket;
//! without a URI it takes the current Request-URI, which then counts as
//! consumed (it moved into the set).

use bytes::Bytes;

use crate::modules::tm::UriMark;
use crate::script::ctx::{Branch, MsgCtx};
use crate::script::registry::Args;

/// Kamailio's `MAX_BRANCHES`: the destination set holds at most this many
/// entries besides the Request-URI.
const MAX_BRANCHES: usize = 12;

/// Parses a q value (`0.5`, `1`, `0.125`) into thousandths; `None` if invalid.
fn parse_q(text: &[u8]) -> Option<i32> {
    let s = std::str::from_utf8(text).ok()?.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 3 {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: i32 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut thousandths = 0;
    for (i, d) in frac.bytes().enumerate() {
        if !d.is_ascii_digit() {
            return None;
        }
        thousandths += i32::from(d - b'0') * [100, 10, 1][i];
    }
    let q = int.checked_mul(1000)?.checked_add(thousandths)?;
    (0..=1000).contains(&q).then_some(q)
}

/// `append_branch([uri[, q]])`: 1 appended, -1 when the set is full, the
/// URI is empty or the q value is not a number in 0..1.
pub fn append_branch(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if ctx.branches.len() >= MAX_BRANCHES {
        log::warn!("append_branch: the destination set is full ({MAX_BRANCHES} branches)");
        return -1;
    }
    let q = if args.len() > 1 {
        match parse_q(&args.str(ctx, 1)) {
            Some(q) => q,
            None => return -1,
        }
    } else {
        -1
    };
    let given = if !args.is_empty() {
        Some(args.str(ctx, 0).into_owned())
    } else {
        None
    };
    let socket = ctx.force_socket.and_then(|id| {
        let s = ctx.env.sockets.get(usize::from(id))?;
        let text = format!(
            "{}:{}",
            s.proto.via_name().to_ascii_lowercase(),
            crate::script::ctx::fmt_hostport(s.addr)
        );
        Some(Bytes::from(text))
    });
    // The branch takes the message's next hop, branch flags and socket.
    let mut branch = Branch {
        uri: Bytes::new(),
        q,
        dst_uri: ctx.dst_uri.clone(),
        path: None,
        flags: ctx.state.bflags,
        socket,
    };
    match given.filter(|u| !u.is_empty()) {
        Some(uri) => branch.uri = Bytes::from(uri),
        // No URI: the Request-URI moves into the set. What went with it is
        // reset on the message and the R-URI counts as consumed (a later
        // `t_relay()` does not send it twice unless it is rewritten).
        None => {
            branch.uri = Bytes::copy_from_slice(ctx.ruri());
            if branch.uri.is_empty() {
                return -1;
            }
            ctx.dst_uri = None;
            ctx.state.bflags = 0;
            ctx.force_socket = None;
            ctx.t.consumed = Some(UriMark::of(&ctx.new_uri, &ctx.dst_uri));
        }
    }
    ctx.branches.push(branch);
    1
}

#[cfg(test)]
mod tests {
    use super::parse_q;

    #[test]
    fn q_values_in_thousandths() {
        assert_eq!(parse_q(b"1"), Some(1000));
        assert_eq!(parse_q(b"1.0"), Some(1000));
        assert_eq!(parse_q(b"0.5"), Some(500));
        assert_eq!(parse_q(b".25"), Some(250));
        assert_eq!(parse_q(b"0.125"), Some(125));
        assert_eq!(parse_q(b"0"), Some(0));
        assert_eq!(parse_q(b"1.5"), None);
        assert_eq!(parse_q(b"0.1234"), None);
        assert_eq!(parse_q(b"x"), None);
        assert_eq!(parse_q(b""), None);
        assert_eq!(parse_q(b"-0.5"), None);
    }
}
