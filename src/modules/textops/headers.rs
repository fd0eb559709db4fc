//! textops functions on header fields: `append_hf`, `insert_hf`,
//! `append_urihf`, `remove_hf`, `remove_hf_re`, `remove_hf_exp`,
//! `is_present_hf_re`, `append_to_reply`, and textopsx `keep_hf`.
//!
//! Header text given by the script should end with CRLF, as in Kamailio; one
//! that does not gets it. Text that is not header lines (`Name: value`) is
//! refused with -1 where Kamailio would send it as it is and break the message.

use bytes::Bytes;
use regex::bytes::Regex;

use super::re::regex_arg;
use crate::script::ctx::MsgCtx;
use crate::script::registry::Args;
use crate::sip::{HeaderName, Message};

/// Header text with a line ending, or `None` when it is not header lines.
fn header_line(mut text: Vec<u8>) -> Option<Vec<u8>> {
    if !text.ends_with(b"\n") {
        text.extend_from_slice(b"\r\n");
    }
    let is_field = |line: &[u8]| {
        let name_len = line
            .iter()
            .position(|&b| b == b':' || b.is_ascii_whitespace())
            .unwrap_or(line.len());
        name_len > 0
            && crate::sip::scan::is_token(&line[..name_len])
            && line[name_len..].trim_ascii_start().first() == Some(&b':')
    };
    let mut lines = text[..text.len() - 1].split(|&b| b == b'\n');
    let first_ok = lines
        .next()
        .is_some_and(|l| is_field(l.strip_suffix(b"\r").unwrap_or(l)));
    // Later lines: another field, or a folded continuation (RFC 3261 §7.3.1).
    let rest_ok = lines.all(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        is_field(l) || l.first().is_some_and(|&b| b == b' ' || b == b'\t')
    });
    (first_ok && rest_ok).then_some(text)
}

/// Index of the first header named `name`.
fn first_named(msg: &Message, name: &[u8]) -> Option<usize> {
    let first = msg.headers_named(name).next()?;
    msg.headers().iter().position(|h| h == first)
}

/// `append_hf(txt[, hdr])`: at the end of the header section, or right after
/// the first `hdr` header (at the end when there is none, as Kamailio does).
pub fn append_hf(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(line) = header_line(args.str(ctx, 0).into_owned()) else {
        return -1;
    };
    let msg = ctx.msg;
    let anchor = if args.len() > 1 {
        first_named(msg, &args.str(ctx, 1))
    } else {
        None
    };
    match anchor {
        Some(i) => {
            let at = msg.headers()[i].line.end as usize;
            ctx.edits.insert(at, Bytes::from(line));
        }
        None => ctx.edits.append_header(msg, Bytes::from(line)),
    }
    1
}

/// `insert_hf(txt[, hdr])`: before the first header, or before the first
/// `hdr` (before the first header when there is none, as Kamailio does).
pub fn insert_hf(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(line) = header_line(args.str(ctx, 0).into_owned()) else {
        return -1;
    };
    let msg = ctx.msg;
    let index = if args.len() > 1 {
        first_named(msg, &args.str(ctx, 1)).unwrap_or(0)
    } else {
        0
    };
    ctx.edits
        .insert_header_before(msg, index, Bytes::from(line));
    1
}

/// `append_urihf(prefix, suffix)`: a header made of prefix, the current R-URI and suffix.
pub fn append_urihf(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if !ctx.msg.is_request() {
        return -1;
    }
    let mut line = args.str(ctx, 0).into_owned();
    line.extend_from_slice(ctx.ruri());
    line.extend_from_slice(&args.str(ctx, 1));
    let Some(line) = header_line(line) else {
        return -1;
    };
    ctx.edits.append_header(ctx.msg, Bytes::from(line));
    1
}

/// Removes every header for which `pred` holds: 1 when it removed any (not
/// the count: Kamailio's remove functions return 1), -1 for none.
fn remove_where(ctx: &mut MsgCtx<'_>, mut pred: impl FnMut(&Message, usize) -> bool) -> i32 {
    let msg = ctx.msg;
    let mut n = 0;
    for i in 0..msg.headers().len() {
        if pred(msg, i) {
            ctx.edits.remove_header(msg, i);
            n += 1;
        }
    }
    if n == 0 {
        -1
    } else {
        1
    }
}

/// `remove_hf(name)`: every header of that name (compact forms included).
pub fn remove_hf(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0).into_owned();
    let msg = ctx.msg;
    let named: Vec<_> = msg.headers_named(&name).copied().collect();
    remove_where(ctx, |m, i| named.contains(&m.headers()[i]))
}

/// Whether the header's name matches (an unanchored search, as Kamailio does).
fn name_matches(re: &Regex, msg: &Message, i: usize) -> bool {
    re.is_match(msg.name(&msg.headers()[i]))
}

/// `remove_hf_re(re)`: every header whose name matches.
pub fn remove_hf_re(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(re) = regex_arg(ctx, args, 0) else {
        return -1;
    };
    let re = re.into_owned();
    remove_where(ctx, |m, i| name_matches(&re, m, i))
}

/// `remove_hf_exp(match_re, skip_re)`: names matching the first and not the second.
pub fn remove_hf_exp(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (Some(m), Some(skip)) = (regex_arg(ctx, args, 0), regex_arg(ctx, args, 1)) else {
        return -1;
    };
    let (m, skip) = (m.into_owned(), skip.into_owned());
    remove_where(ctx, |msg, i| {
        name_matches(&m, msg, i) && !name_matches(&skip, msg, i)
    })
}

/// `is_present_hf_re(re)`.
pub fn is_present_hf_re(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(re) = regex_arg(ctx, args, 0) else {
        return -1;
    };
    let msg = ctx.msg;
    if (0..msg.headers().len()).any(|i| name_matches(&re, msg, i)) {
        1
    } else {
        -1
    }
}

/// `append_to_reply(txt)`: the header goes into every reply this server makes for the request.
pub fn append_to_reply(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(line) = header_line(args.str(ctx, 0).into_owned()) else {
        return -1;
    };
    ctx.state.reply_headers.extend_from_slice(&line);
    1
}

/// Headers `keep_hf` never removes: those a SIP message cannot do without.
const ESSENTIAL: &[HeaderName] = &[
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::Contact,
    HeaderName::Route,
    HeaderName::RecordRoute,
    HeaderName::MaxForwards,
    HeaderName::ContentLength,
    HeaderName::ContentType,
];

/// textopsx `keep_hf(re)`: removes every other header whose name does not match; 1.
pub fn keep_hf(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(re) = regex_arg(ctx, args, 0) else {
        return -1;
    };
    let re = re.into_owned();
    remove_where(ctx, |m, i| {
        !ESSENTIAL.contains(&m.headers()[i].id) && !name_matches(&re, m, i)
    });
    1
}

#[cfg(test)]
mod tests {
    use crate::modules::testutil::{run, serialized, Harness, INVITE};
    use crate::modules::textops::{MODULE, MODULE_X};

    const MSG: &str = "OPTIONS sip:example.com SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK1
From: <sip:a@example.org>;tag=1
To: <sip:example.com>
Call-ID: c1
CSeq: 1 OPTIONS
X-A: 1
x-a: 2
X-B: 3
Subject: hi
Content-Length: 0

";

    #[test]
    fn append_and_insert() {
        let mut h = Harness::new(MSG);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE, "append_hf", &["X-End: 1\r\n"]), 1);
        assert_eq!(
            run(&mut ctx, &MODULE, "append_hf", &["X-After: 1", "x-a"]),
            1
        );
        assert_eq!(
            run(
                &mut ctx,
                &MODULE,
                "append_hf",
                &["X-No: 1\r\n", "X-Missing"]
            ),
            1,
            "no such header: appended at the end (Kamailio 5.6)"
        );
        assert_eq!(run(&mut ctx, &MODULE, "insert_hf", &["X-Top: 1\r\n"]), 1);
        assert_eq!(
            run(
                &mut ctx,
                &MODULE,
                "insert_hf",
                &["X-Before: 1\r\n", "Subject"]
            ),
            1
        );
        assert_eq!(
            run(&mut ctx, &MODULE, "insert_hf", &["X-Top2: 1\r\n", "X-Gone"]),
            1,
            "no such header: before the first one (Kamailio 5.6)"
        );
        assert_eq!(
            run(&mut ctx, &MODULE, "append_urihf", &["X-Uri: <", ">\r\n"]),
            1
        );
        assert_eq!(
            serialized(&ctx),
            "OPTIONS sip:example.com SIP/2.0
X-Top: 1
X-Top2: 1
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK1
From: <sip:a@example.org>;tag=1
To: <sip:example.com>
Call-ID: c1
CSeq: 1 OPTIONS
X-A: 1
X-After: 1
x-a: 2
X-B: 3
X-Before: 1
Subject: hi
Content-Length: 0
X-End: 1
X-No: 1
X-Uri: <sip:example.com>

"
        );
    }

    #[test]
    fn removal_counts() {
        let mut h = Harness::new(MSG);
        let mut ctx = h.ctx();
        // 1 however many went, as in Kamailio 5.6 (not the count).
        assert_eq!(run(&mut ctx, &MODULE, "remove_hf", &["X-A"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "remove_hf", &["X-Nothing"]), -1);
        assert_eq!(
            run(&mut ctx, &MODULE, "remove_hf", &["s"]),
            1,
            "compact Subject"
        );
        assert_eq!(run(&mut ctx, &MODULE, "is_present_hf_re", &["^x-b$"]), 1);
        assert_eq!(run(&mut ctx, &MODULE, "is_present_hf_re", &["^x-c"]), -1);
        assert_eq!(run(&mut ctx, &MODULE, "remove_hf_re", &["^x-"]), 1);
        let out = serialized(&ctx);
        assert!(
            !out.contains("X-") && !out.contains("x-a") && !out.contains("Subject"),
            "{out}"
        );
        let mut h = Harness::new(MSG);
        let mut ctx = h.ctx();
        assert_eq!(
            run(&mut ctx, &MODULE, "remove_hf_exp", &["^X-", "^X-B$"]),
            1
        );
        let out = serialized(&ctx);
        assert!(out.contains("X-B: 3\n") && !out.contains("X-A"), "{out}");
    }

    #[test]
    fn keep_hf_keeps_essentials_and_matches() {
        let mut h = Harness::new(MSG);
        let mut ctx = h.ctx();
        assert_eq!(run(&mut ctx, &MODULE_X, "keep_hf", &["^Subject$"]), 1);
        assert_eq!(
            serialized(&ctx),
            "OPTIONS sip:example.com SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK1
From: <sip:a@example.org>;tag=1
To: <sip:example.com>
Call-ID: c1
CSeq: 1 OPTIONS
Subject: hi
Content-Length: 0

"
        );
    }

    #[test]
    fn append_to_reply_reaches_the_stateless_reply() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(
            run(&mut ctx, &MODULE, "append_to_reply", &["Retry-After: 30"]),
            1
        );
        assert_eq!(crate::modules::sl::send_reply(&mut ctx, 503, b"Busy"), 1);
        let reply = crate::modules::testutil::sent(&h.out);
        assert!(reply.contains("\nRetry-After: 30\n"), "{reply}");
    }
}
