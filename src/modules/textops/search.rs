//! textops functions that search the message text and replace in it:
//! `search`, `search_body`, `search_hf`, `search_str`, `search_append[_body]`,
//! `replace[_all]`, `replace_body[_all]`, `subst`, `subst_uri`, `subst_user`,
//! `subst_body`, `subst_hf`. They read the message as received (as Kamailio
//! reads its buffer; `msg_apply_changes()` makes earlier changes visible) and
//! record edits. 1 when something matched (and was changed), -1 otherwise.

use std::ops::Range;

use bytes::Bytes;

use super::re::{regex_arg, Subst};
use crate::script::ctx::MsgCtx;
use crate::script::registry::truth;
use crate::script::registry::Args;
use crate::sip::Message;

/// The offset where the header section starts (after the first line).
pub fn headers_start(msg: &Message) -> usize {
    msg.headers()
        .first()
        .map_or(msg.headers_end(), |h| h.line.start as usize)
}

/// Headers and body: what `subst`, `replace` and `search_append` work on.
fn after_first_line(msg: &Message) -> Range<usize> {
    headers_start(msg)..msg.len()
}

/// `search(re)`: anywhere in the message, first line included.
pub fn search(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(re) = regex_arg(ctx, args, 0) else {
        return -1;
    };
    truth(re.is_match(&ctx.msg.buf()[..ctx.msg.len()]))
}

/// `search_body(re)`.
pub fn search_body(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(re) = regex_arg(ctx, args, 0) else {
        return -1;
    };
    truth(!ctx.msg.body().is_empty() && re.is_match(ctx.msg.body()))
}

/// `search_str(text, re)`.
pub fn search_str(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(re) = regex_arg(ctx, args, 1) else {
        return -1;
    };
    truth(re.is_match(&args.str(ctx, 0)))
}

/// Which of the headers named `hf` a `flags` argument selects: `f` the first,
/// `l` the last, anything else all of them.
fn selected(msg: &Message, name: &[u8], flags: &[u8]) -> Vec<usize> {
    let all: Vec<usize> = msg
        .headers()
        .iter()
        .enumerate()
        .filter(|(_, h)| msg.headers_named(name).any(|x| x == *h))
        .map(|(i, _)| i)
        .collect();
    match flags.first() {
        Some(b'f') => all.into_iter().take(1).collect(),
        Some(b'l') => all.last().copied().into_iter().collect(),
        _ => all,
    }
}

/// `search_hf(hf, re, flags)`: whether a selected header's value matches.
pub fn search_hf(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(re) = regex_arg(ctx, args, 1) else {
        return -1;
    };
    let name = args.str(ctx, 0);
    let flags = args.str(ctx, 2);
    let msg = ctx.msg;
    truth(
        selected(msg, &name, &flags)
            .into_iter()
            .any(|i| re.is_match(msg.value(&msg.headers()[i]))),
    )
}

/// Inserts `txt` after the first match of argument 0 in `range`.
fn append_after_match(ctx: &mut MsgCtx<'_>, args: &Args, range: Range<usize>) -> i32 {
    let Some(re) = regex_arg(ctx, args, 0) else {
        return -1;
    };
    let Some(m) = re.find(&ctx.msg.buf()[range.clone()]) else {
        return -1;
    };
    let at = range.start + m.end();
    let txt = args.str(ctx, 1).into_owned();
    ctx.edits.insert(at, Bytes::from(txt));
    1
}

/// `search_append(re, txt)`.
pub fn search_append(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let range = after_first_line(ctx.msg);
    append_after_match(ctx, args, range)
}

/// `search_append_body(re, txt)`.
pub fn search_append_body(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let range = ctx.msg.body_span().range();
    append_after_match(ctx, args, range)
}

/// Replaces the first (or every) match of argument 0 in `range` by argument 1.
fn replace_in(ctx: &mut MsgCtx<'_>, args: &Args, range: Range<usize>, all: bool) -> i32 {
    let Some(re) = regex_arg(ctx, args, 0) else {
        return -1;
    };
    let txt = Bytes::from(args.str(ctx, 1).into_owned());
    let text = &ctx.msg.buf()[range.clone()];
    let mut n = 0;
    for m in re.find_iter(text) {
        ctx.edits
            .replace(range.start + m.start()..range.start + m.end(), txt.clone());
        n += 1;
        if !all {
            break;
        }
    }
    truth(n > 0)
}

pub fn replace(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let range = after_first_line(ctx.msg);
    replace_in(ctx, args, range, false)
}

pub fn replace_all(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let range = after_first_line(ctx.msg);
    replace_in(ctx, args, range, true)
}

pub fn replace_body(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let range = ctx.msg.body_span().range();
    replace_in(ctx, args, range, false)
}

pub fn replace_body_all(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let range = ctx.msg.body_span().range();
    replace_in(ctx, args, range, true)
}

/// Applies the substitution of argument `i` to `range` of the message.
fn subst_range(ctx: &mut MsgCtx<'_>, args: &Args, i: usize, range: Range<usize>) -> i32 {
    let Some(s) = args.custom::<Subst>(i) else {
        return -1;
    };
    let msg = ctx.msg;
    let found = s.apply(ctx, &msg.buf()[range.clone()]);
    let n = found.len();
    for (r, text) in found {
        ctx.edits.replace(
            range.start + r.start..range.start + r.end,
            Bytes::from(text),
        );
    }
    truth(n > 0)
}

/// `subst('/re/repl/flags')`: over headers and body.
pub fn subst(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let range = after_first_line(ctx.msg);
    subst_range(ctx, args, 0, range)
}

/// `subst_body('/re/repl/flags')`.
pub fn subst_body(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let range = ctx.msg.body_span().range();
    subst_range(ctx, args, 0, range)
}

/// `subst_hf(hf, '/re/repl/flags', flags)`: on the values of the selected headers.
pub fn subst_hf(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    let flags = args.str(ctx, 2).into_owned();
    let msg = ctx.msg;
    let mut hit = false;
    for i in selected(msg, &name, &flags) {
        let range = msg.headers()[i].value.range();
        hit |= subst_range(ctx, args, 1, range) > 0;
    }
    truth(hit)
}

/// `subst_uri('/re/repl/flags')`: on the current Request-URI.
pub fn subst_uri(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(s) = args.custom::<Subst>(0) else {
        return -1;
    };
    if !ctx.msg.is_request() {
        return -1;
    }
    match s.replace(ctx, ctx.ruri()) {
        Some(new) if crate::sip::uri::Uri::parse(&new).is_ok() => {
            ctx.new_uri = Some(Bytes::from(new));
            1
        }
        _ => -1,
    }
}

/// `subst_user('/re/repl/flags')`: on the user part of the current
/// Request-URI (an absent user is matched as empty, so `/^$/x/` adds one).
pub fn subst_user(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(s) = args.custom::<Subst>(0) else {
        return -1;
    };
    if !ctx.msg.is_request() {
        return -1;
    }
    let user = match crate::sip::uri::Uri::parse(ctx.ruri()) {
        Ok(u) => u.user().unwrap_or(b"").to_vec(),
        Err(_) => return -1,
    };
    match s.replace(ctx, &user) {
        Some(new) => crate::modules::core::set_ruri_user(ctx, &new),
        None => -1,
    }
}

#[cfg(test)]
mod tests {
    use crate::modules::testutil::{run, serialized, Harness, INVITE};
    use crate::modules::textops::MODULE;

    #[test]
    fn searches() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "search", &["^invite sip:"]), 1);
        assert_eq!(
            run(&mut ctx, &MODULE, "search", &["^cseq: [0-9]+ invite\r$"]),
            1
        );
        assert_eq!(run(&mut ctx, &MODULE, "search", &["x-missing"]), -1);
        assert_eq!(run(&mut ctx, &MODULE, "search_body", &["^v=0"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "search_body", &["^o="]), -1);
        assert_eq!(
            run(&mut ctx, &MODULE, "search_hf", &["From", "alice@", ""]),
            1
        );
        assert_eq!(
            run(&mut ctx, &MODULE, "search_hf", &["f", "tag=1928", "f"]),
            1
        );
        assert_eq!(
            run(&mut ctx, &MODULE, "search_hf", &["To", "alice", "a"]),
            -1
        );
        assert_eq!(run(&mut ctx, &MODULE, "search_str", &["abc", "B"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "search_str", &["abc", "^b"]), -1);
    }

    #[test]
    fn search_append_and_replace() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(
            run(
                &mut ctx,
                &MODULE,
                "search_append",
                &["^Max-Forwards: 70", "0"]
            ),
            1
        );
        assert_eq!(run(&mut ctx, &MODULE, "replace", &["Alice", "Carol"]), 1);
        assert_eq!(
            run(
                &mut ctx,
                &MODULE,
                "replace_all",
                &["example\\.com", "example.net"]
            ),
            1
        );
        assert_eq!(run(&mut ctx, &MODULE, "replace_body", &["v=0", "v=1"]), 1);
        assert_eq!(
            run(&mut ctx, &MODULE, "replace_body_all", &["nothing", "x"]),
            -1
        );
        assert_eq!(
            run(&mut ctx, &MODULE, "search_append_body", &["v=1", "2"]),
            -1,
            "the body as received"
        );
        let out = serialized(&ctx);
        assert!(
            out.starts_with("INVITE sip:bob@example.com SIP/2.0\n"),
            "first line untouched: {out}"
        );
        assert!(out.contains("Max-Forwards: 700\n"), "{out}");
        assert!(out.contains("To: Bob <sip:bob@example.net>\n"), "{out}");
        assert!(out.contains("From: Carol <sip:alice@example.org>"), "{out}");
        assert!(out.ends_with("\nv=1\n"), "{out}");
    }

    #[test]
    fn substitutions_on_message_uri_user_body_header() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(
            run(
                &mut ctx,
                &MODULE,
                "subst",
                &["/^(Call-ID): (.*)$/\\1: x\\2/"]
            ),
            1
        );
        assert_eq!(
            run(
                &mut ctx,
                &MODULE,
                "subst_uri",
                &["/^sip:bob@(.*)$/sip:carol@\\1:5080/"]
            ),
            1
        );
        assert_eq!(run(&mut ctx, &MODULE, "subst_user", &["/^c/C/"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "subst_user", &["/^z/C/"]), -1);
        assert_eq!(run(&mut ctx, &MODULE, "subst_body", &["/0/42/"]), 1);
        assert_eq!(
            run(
                &mut ctx,
                &MODULE,
                "subst_hf",
                &["CSeq", "/INVITE/invite/", "f"]
            ),
            1
        );
        let out = serialized(&ctx);
        assert!(
            out.starts_with("INVITE sip:Carol@example.com:5080 SIP/2.0\n"),
            "{out}"
        );
        assert!(out.contains("Call-ID: xa84b4c76e66710@pc33\n"), "{out}");
        assert!(out.contains("CSeq: 314159 invite\n"), "{out}");
        assert!(out.contains("Content-Length: 6\n"), "{out}");
        assert!(out.ends_with("\nv=42\n"), "{out}");
    }

    #[test]
    fn subst_user_adds_a_user() {
        let text = INVITE.replacen("sip:bob@example.com", "sip:example.com;lr", 1);
        let mut h = Harness::new(&text);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "subst_user", &["/^$/0800/"]), 1);
        assert_eq!(ctx.ruri(), b"sip:0800@example.com;lr");
    }
}
