//! textops and textopsx functions on the body and the start line:
//! `set_body`, `set_reply_body`, `remove_body`, `change_reply_status`, and
//! `msg_apply_changes`, the one place where a message is re-parsed.

use bytes::Bytes;

use crate::script::ctx::MsgCtx;
use crate::script::registry::{fixup_int, Arg, Args, ModParams};
use crate::sip::{serialize, HeaderName, Message};

/// `set_body(txt, content_type)`: replaces the body and its Content-Type; 1.
pub fn set_body(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let body = args.str(ctx, 0).into_owned();
    let ctype = args.str(ctx, 1).into_owned();
    if ctype.is_empty() {
        return -1;
    }
    let msg = ctx.msg;
    for i in 0..msg.headers().len() {
        if msg.headers()[i].id == HeaderName::ContentType {
            ctx.edits.remove_header(msg, i);
        }
    }
    let mut line = b"Content-Type: ".to_vec();
    line.extend_from_slice(&ctype);
    line.extend_from_slice(b"\r\n");
    ctx.edits.append_header(msg, Bytes::from(line));
    ctx.edits.set_body(msg, Bytes::from(body));
    1
}

/// `set_reply_body(txt, content_type)`: the body of the next local reply; 1.
pub fn set_reply_body(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let body = args.str(ctx, 0).into_owned();
    let ctype = args.str(ctx, 1).into_owned();
    if ctype.is_empty() {
        return -1;
    }
    ctx.state.reply_body = Some((Bytes::from(body), Bytes::from(ctype)));
    1
}

/// textopsx `remove_body()`: 1, or -1 when there is no body.
pub fn remove_body(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    if ctx.msg.body().is_empty() {
        return -1;
    }
    ctx.edits.set_body(ctx.msg, Bytes::new());
    1
}

pub fn fixup_status(args: &mut Args, _: &ModParams) -> Result<(), String> {
    fixup_int(args, 0)?;
    match args.get(0) {
        Some(Arg::Int(c)) if !(100..=699).contains(c) => {
            Err(format!("reply code {c} is not in 100..699"))
        }
        _ => Ok(()),
    }
}

/// textopsx `change_reply_status(code, reason)`: rewrites a reply's status
/// line. A provisional or 2xx reply cannot become a negative one (-1).
pub fn change_reply_status(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(old) = ctx.msg.status() else {
        return -1;
    };
    let code = match args.int(ctx, 0) {
        Some(c) if (100..=699).contains(&c) => c,
        _ => return -1,
    };
    if code >= 300 && old < 300 {
        log::warn!("change_reply_status: a {old} reply cannot become {code}");
        return -1;
    }
    let reason = args.str(ctx, 1);
    let mut line = format!("SIP/2.0 {code} ").into_bytes();
    line.extend_from_slice(&reason);
    let span = ctx.msg.start_line();
    ctx.edits.replace(span.range(), Bytes::from(line));
    ctx.state.reply_status = u16::try_from(code).ok();
    1
}

/// textopsx `msg_apply_changes()`: applies the edits recorded so far and
/// re-parses the result, so later searches and header reads see them. The
/// new Request-URI stays pending (`$ou` keeps the received one). 1, or -1
/// when the result does not parse or the message was rebased too often.
pub fn msg_apply_changes(ctx: &mut MsgCtx<'_>, _: &Args) -> i32 {
    if ctx.edits.is_empty() {
        return 1;
    }
    let slots = ctx.rebase;
    let Some(cell) = slots.iter().find(|c| c.get().is_none()) else {
        log::warn!("msg_apply_changes: called too often for one message");
        return -1;
    };
    let mut out = Vec::with_capacity(ctx.msg.len() + 256);
    serialize(ctx.msg, &ctx.edits, &mut out);
    let msg = match Message::parse(Bytes::from(out)) {
        Ok(m) => m,
        Err(e) => {
            log::warn!("msg_apply_changes: the changed message does not parse: {e}");
            return -1;
        }
    };
    if cell.set(msg).is_err() {
        return -1;
    }
    let Some(msg) = cell.get() else {
        return -1;
    };
    ctx.msg = msg;
    ctx.top_via = std::cell::OnceCell::new();
    ctx.edits.clear();
    1
}

#[cfg(test)]
mod tests {
    use crate::modules::testutil::{run, sent, serialized, Harness, INVITE};
    use crate::modules::textops::{MODULE, MODULE_X};
    use crate::script::registry::RouteType;

    #[test]
    fn set_and_remove_body() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(
            run(&mut ctx, &MODULE, "set_body", &["hello", "text/plain"]),
            1
        );
        let out = serialized(&ctx);
        assert!(out.contains("Content-Type: text/plain\n"), "{out}");
        assert!(!out.contains("application/sdp"), "{out}");
        assert!(
            out.contains("Content-Length: 5\n") && out.ends_with("\n\nhello"),
            "{out}"
        );
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE_X, "remove_body", &[]), 1);
        let out = serialized(&ctx);
        assert!(
            out.contains("Content-Length: 0\n") && out.ends_with("\n\n"),
            "{out}"
        );
    }

    #[test]
    fn reply_body_goes_into_the_local_reply() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(
            run(
                &mut ctx,
                &MODULE,
                "set_reply_body",
                &["busy\n", "text/plain"]
            ),
            1
        );
        assert_eq!(
            crate::modules::sl::send_reply(&mut ctx, 486, b"Busy Here"),
            1
        );
        let reply = sent(&h.out);
        assert!(
            reply.contains("Content-Type: text/plain\nContent-Length: 5\n\nbusy\n"),
            "{reply}"
        );
    }

    #[test]
    fn change_reply_status_keeps_the_class_rule() {
        let reply = "SIP/2.0 486 Busy Here
Via: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1
From: <sip:a@example.org>;tag=1
To: <sip:b@example.com>;tag=2
Call-ID: c1
CSeq: 1 INVITE
Content-Length: 0

";
        let mut h = Harness::new(reply).route(RouteType::OnReply);
        let mut ctx = h.ctx();
        assert_eq!(
            run(
                &mut ctx,
                &MODULE_X,
                "change_reply_status",
                &["404", "Not Here"]
            ),
            1
        );
        assert!(serialized(&ctx).starts_with("SIP/2.0 404 Not Here\n"));
        // $rs reads the new code afterwards (Kamailio rewrites the parsed
        // status; side by side, hunt_text2.cfg).
        let rs = crate::script::pvkind::PvRef::new(crate::script::pvkind::PvKind::Rs);
        assert_eq!(ctx.read_pv(&rs), crate::script::value::Value::Int(404));
        let ok = reply.replace("486 Busy Here", "200 OK");
        let mut h = Harness::new(&ok).route(RouteType::OnReply);
        let mut ctx = h.ctx();
        assert_eq!(
            run(&mut ctx, &MODULE_X, "change_reply_status", &["503", "No"]),
            -1
        );
        assert_eq!(
            run(
                &mut ctx,
                &MODULE_X,
                "change_reply_status",
                &["202", "Accepted"]
            ),
            1
        );
    }

    #[test]
    fn msg_apply_changes_makes_edits_visible() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "append_hf", &["X-New: 1\r\n"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "is_present_hf", &["X-New"]), -1);
        assert_eq!(run(&mut ctx, &MODULE_X, "msg_apply_changes", &[]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "is_present_hf", &["X-New"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "remove_hf", &["X-New"]), 1);
        assert_eq!(run(&mut ctx, &MODULE_X, "msg_apply_changes", &[]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "is_present_hf", &["X-New"]), -1);
        // The harness has two slots.
        assert_eq!(run(&mut ctx, &MODULE, "append_hf", &["X-3: 1\r\n"]), 1);
        assert_eq!(run(&mut ctx, &MODULE_X, "msg_apply_changes", &[]), -1);
        assert!(
            serialized(&ctx).contains("X-3: 1\n"),
            "edits kept on failure"
        );
    }
}
