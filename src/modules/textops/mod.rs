//! textops and textopsx: tests and edits on the message text
//! (KAMAILIO-REFERENCE §7.5). Functions return 1 for true and -1 for false
//! unless noted. Searching and substituting is in `search`, header fields in
//! `headers`, body and start line in `body`, expressions in `re`.

mod body;
mod headers;
pub(crate) mod re;
mod search;

use crate::script::ctx::MsgCtx;
use crate::script::registry::truth;
use crate::script::registry::{Arg, Args, FunctionDef, ModParams, ModuleDef, RouteMask};

/// `is_method("INVITE|BYE")`: the method list is split once, at start-up.
fn fixup_methods(args: &mut Args, _: &ModParams) -> Result<(), String> {
    let list = match args.get(0) {
        Some(Arg::Str(s)) => std::str::from_utf8(s)
            .map_err(|_| "method list is not text".to_string())?
            .to_string(),
        _ => return Err("is_method needs a constant list of methods".into()),
    };
    let methods: Vec<Vec<u8>> = list
        .split('|')
        .map(|m| m.trim().as_bytes().to_vec())
        .filter(|m| !m.is_empty())
        .collect();
    if methods.is_empty() {
        return Err("empty method list".into());
    }
    args.0[0] = Arg::Custom(Box::new(methods));
    Ok(())
}

/// Whether the request's method (a reply's CSeq method) is in the list; names
/// compare case-insensitively as Kamailio's method parser does.
fn is_method(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(methods) = args.custom::<Vec<Vec<u8>>>(0) else {
        return -1;
    };
    let m = ctx.msg.method_bytes();
    if methods.iter().any(|x| x.eq_ignore_ascii_case(m)) {
        1
    } else {
        -1
    }
}

/// `is_present_hf(name)`: whether a header with that name (compact forms count) exists.
fn is_present_hf(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = args.str(ctx, 0);
    if ctx.msg.headers_named(&name).next().is_some() {
        1
    } else {
        -1
    }
}

/// `has_body([content-type])`: a non-empty body (of that type when given).
fn has_body(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if ctx.msg.body().is_empty() {
        return -1;
    }
    if args.is_empty() {
        return 1;
    }
    let want = args.str(ctx, 0);
    let ctype = ctx
        .msg
        .header_value(crate::sip::HeaderName::ContentType)
        .unwrap_or(b"");
    let base = ctype
        .split(|&b| b == b';')
        .next()
        .unwrap_or(b"")
        .trim_ascii();
    if base.eq_ignore_ascii_case(want.trim_ascii()) {
        1
    } else {
        -1
    }
}

/// Kamailio's three-way result of the string tests: 1 equal, -1 when the
/// first is greater, -2 when it is smaller.
fn order(o: std::cmp::Ordering) -> i32 {
    match o {
        std::cmp::Ordering::Equal => 1,
        std::cmp::Ordering::Greater => -1,
        std::cmp::Ordering::Less => -2,
    }
}

/// `starts_with(text, prefix)`: 1, or -1 when the text is shorter, else the
/// order of the text's start against the prefix ([`order`]).
fn starts_with(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (text, prefix) = (args.str(ctx, 0), args.str(ctx, 1));
    if text.len() < prefix.len() {
        return -1;
    }
    order(text[..prefix.len()].cmp(&prefix))
}

/// `ends_with(text, suffix)`.
fn ends_with(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    truth(args.str(ctx, 0).ends_with(&args.str(ctx, 1)))
}

/// `cmp_str(a, b)`: [`order`] of the two (a shorter string that is a prefix
/// of the other is smaller).
fn cmp_str(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    order(args.str(ctx, 0).cmp(&args.str(ctx, 1)))
}

/// `cmp_istr(a, b)`: [`cmp_str`] ignoring ASCII case.
fn cmp_istr(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let (a, b) = (args.str(ctx, 0), args.str(ctx, 1));
    order(
        a.iter()
            .map(u8::to_ascii_lowercase)
            .cmp(b.iter().map(u8::to_ascii_lowercase)),
    )
}

/// `in_list(subject, list, separator)`: whether the subject is one of the
/// list's items (trimmed of spaces); an empty subject is never in it.
fn in_list(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let subject = args.str(ctx, 0);
    let list = args.str(ctx, 1);
    let sep = args.str(ctx, 2);
    let Some(&sep) = sep.first() else { return -1 };
    if subject.is_empty() {
        return -1;
    }
    truth(
        list.split(|&b| b == sep)
            .any(|item| item.trim_ascii() == subject.as_ref()),
    )
}

/// textopsx `fnmatch(value, pattern[, flags])`: shell wildcard match (`*`,
/// `?`, `[a-z]`, `[!x]`); flag `i` ignores case.
fn fnmatch(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let icase = args.len() > 2 && args.str(ctx, 2).contains(&b'i');
    truth(glob(&args.str(ctx, 1), &args.str(ctx, 0), icase))
}

/// Wildcard matching with backtracking over the last `*` only (linear in practice).
pub(crate) fn glob(pat: &[u8], text: &[u8], icase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if icase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class(pat, p, text[t], icase),
            Some(b'\\') if p + 1 < pat.len() => eq(pat[p + 1], text[t]).then_some(p + 2),
            Some(&c) => eq(c, text[t]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pat[p.min(pat.len())..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the bracket expression at `pat[p]`; the index after it on a match.
fn class(pat: &[u8], p: usize, c: u8, icase: bool) -> Option<usize> {
    let mut i = p + 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let fold = |b: u8| if icase { b.to_ascii_lowercase() } else { b };
    let c = fold(c);
    let mut hit = false;
    let mut first = true;
    loop {
        let &lo = pat.get(i)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = pat[i + 2];
            hit |= (fold(lo)..=fold(hi)).contains(&c);
            i += 3;
        } else {
            hit |= fold(lo) == c;
            i += 1;
        }
    }
    (hit != negate).then_some(i + 1)
}

fn fx_re0(args: &mut Args, _: &ModParams) -> Result<(), String> {
    re::fixup_regex(args, 0)
}

fn fx_re1(args: &mut Args, _: &ModParams) -> Result<(), String> {
    re::fixup_regex(args, 1)
}

fn fx_re01(args: &mut Args, _: &ModParams) -> Result<(), String> {
    re::fixup_regex(args, 0)?;
    re::fixup_regex(args, 1)
}

fn fx_subst0(args: &mut Args, _: &ModParams) -> Result<(), String> {
    re::fixup_subst(args, 0)
}

fn fx_subst1(args: &mut Args, _: &ModParams) -> Result<(), String> {
    re::fixup_subst(args, 1)
}

macro_rules! f {
    ($name:expr, $min:expr, $max:expr, $routes:expr, $fixup:expr, $call:expr) => {
        FunctionDef {
            name: $name,
            min_args: $min,
            max_args: $max,
            routes: $routes,
            fixup: $fixup,
            call: $call,
        }
    };
}

const ANY: RouteMask = RouteMask::ANY;
const REQ_LIKE: RouteMask = RouteMask::REQUEST
    .or(RouteMask::FAILURE)
    .or(RouteMask::BRANCH);
const REPLY_ROUTES: RouteMask = RouteMask::ONREPLY.or(RouteMask::REPLY);

pub static MODULE: ModuleDef = ModuleDef {
    name: "textops",
    aliases: &[],
    functions: &[
        f!("is_method", 1, 1, ANY, Some(fixup_methods), is_method),
        f!("is_present_hf", 1, 1, ANY, None, is_present_hf),
        f!(
            "is_present_hf_re",
            1,
            1,
            ANY,
            Some(fx_re0),
            headers::is_present_hf_re
        ),
        f!("has_body", 0, 1, ANY, None, has_body),
        f!("search", 1, 1, ANY, Some(fx_re0), search::search),
        f!("search_body", 1, 1, ANY, Some(fx_re0), search::search_body),
        f!("search_hf", 3, 3, ANY, Some(fx_re1), search::search_hf),
        f!("search_str", 2, 2, ANY, Some(fx_re1), search::search_str),
        f!(
            "search_append",
            2,
            2,
            ANY,
            Some(fx_re0),
            search::search_append
        ),
        f!(
            "search_append_body",
            2,
            2,
            ANY,
            Some(fx_re0),
            search::search_append_body
        ),
        f!("replace", 2, 2, ANY, Some(fx_re0), search::replace),
        f!("replace_all", 2, 2, ANY, Some(fx_re0), search::replace_all),
        f!(
            "replace_body",
            2,
            2,
            ANY,
            Some(fx_re0),
            search::replace_body
        ),
        f!(
            "replace_body_all",
            2,
            2,
            ANY,
            Some(fx_re0),
            search::replace_body_all
        ),
        f!("subst", 1, 1, ANY, Some(fx_subst0), search::subst),
        f!(
            "subst_uri",
            1,
            1,
            REQ_LIKE,
            Some(fx_subst0),
            search::subst_uri
        ),
        f!(
            "subst_user",
            1,
            1,
            REQ_LIKE,
            Some(fx_subst0),
            search::subst_user
        ),
        f!("subst_body", 1, 1, ANY, Some(fx_subst0), search::subst_body),
        f!("subst_hf", 3, 3, ANY, Some(fx_subst1), search::subst_hf),
        f!("append_hf", 1, 2, ANY, None, headers::append_hf),
        f!("insert_hf", 1, 2, ANY, None, headers::insert_hf),
        f!("append_urihf", 2, 2, REQ_LIKE, None, headers::append_urihf),
        f!("remove_hf", 1, 1, ANY, None, headers::remove_hf),
        f!(
            "remove_hf_re",
            1,
            1,
            ANY,
            Some(fx_re0),
            headers::remove_hf_re
        ),
        f!(
            "remove_hf_exp",
            2,
            2,
            ANY,
            Some(fx_re01),
            headers::remove_hf_exp
        ),
        f!(
            "append_to_reply",
            1,
            1,
            REQ_LIKE,
            None,
            headers::append_to_reply
        ),
        f!("set_body", 2, 2, ANY, None, body::set_body),
        f!(
            "set_reply_body",
            2,
            2,
            RouteMask::REQUEST,
            None,
            body::set_reply_body
        ),
        f!("starts_with", 2, 2, ANY, None, starts_with),
        f!("ends_with", 2, 2, ANY, None, ends_with),
        f!("cmp_str", 2, 2, ANY, None, cmp_str),
        f!("cmp_istr", 2, 2, ANY, None, cmp_istr),
        f!("in_list", 3, 3, ANY, None, in_list),
    ],
    params: &[],
    always: false,
};

/// textopsx: Kamailio's second text module (loaded separately).
pub static MODULE_X: ModuleDef = ModuleDef {
    name: "textopsx",
    aliases: &[],
    functions: &[
        f!(
            "msg_apply_changes",
            0,
            0,
            ANY,
            None,
            body::msg_apply_changes
        ),
        f!(
            "change_reply_status",
            2,
            2,
            REPLY_ROUTES,
            Some(body::fixup_status),
            body::change_reply_status
        ),
        f!("remove_body", 0, 0, ANY, None, body::remove_body),
        f!("keep_hf", 1, 1, ANY, Some(fx_re0), headers::keep_hf),
        f!("fnmatch", 2, 3, ANY, None, fnmatch),
    ],
    params: &[],
    always: false,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{run, Harness, INVITE};

    #[test]
    fn string_tests() {
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        for (f, a, want) in [
            ("starts_with", &["+4930", "+49"][..], 1),
            ("starts_with", &["4930", "+49"], -1),
            ("ends_with", &["abc", "bc"], 1),
            ("cmp_str", &["abc", "abc"], 1),
            ("cmp_str", &["abc", "ABC"], -1),
            ("cmp_istr", &["abc", "ABC"], 1),
            ("in_list", &["b", "a, b ,c", ","], 1),
            ("in_list", &["d", "a,b,c", ","], -1),
            // Kamailio 5.6: -2 when the first is smaller, -1 when greater.
            ("cmp_str", &["abc", "abd"], -2),
            ("cmp_str", &["ab", "abc"], -2),
            ("cmp_str", &["b", "abc"], -1),
            ("cmp_istr", &["b", "A"], -1),
            ("cmp_istr", &["a", "B"], -2),
            ("starts_with", &["ab", "abc"], -1),
            ("starts_with", &["ab", "b"], -2),
            ("starts_with", &["cb", "b"], -1),
            ("in_list", &["", "a,,c", ","], -1),
        ] {
            assert_eq!(run(&mut ctx, &MODULE, f, a), want, "{f}{a:?}");
        }
    }

    #[test]
    fn wildcards() {
        for (pat, text, icase, want) in [
            ("*", "", false, true),
            ("a*c", "abbbc", false, true),
            ("a*c", "abbbd", false, false),
            ("a?c", "abc", false, true),
            ("[a-c]x", "bx", false, true),
            ("[!a-c]x", "bx", false, false),
            ("*.example.com", "sip.EXAMPLE.com", true, true),
            ("*.example.com", "sip.EXAMPLE.com", false, false),
            ("a\\*", "a*", false, true),
            ("[", "[", false, false),
            (
                "*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
                false,
            ),
        ] {
            assert_eq!(
                glob(pat.as_bytes(), text.as_bytes(), icase),
                want,
                "{pat} {text}"
            );
        }
        let mut h = Harness::new(INVITE);
        let mut ctx = h.ctx();
        assert_eq!(
            run(&mut ctx, &MODULE_X, "fnmatch", &["Alice", "al*", "i"]),
            1
        );
        assert_eq!(run(&mut ctx, &MODULE_X, "fnmatch", &["Alice", "al*"]), -1);
    }
}
