//! Transformations: `$(pv{s.len})`, `$(ru{uri.user}{s.tolower})`…
//!
//! A chain is compiled once into a slice of [`TrOp`]; applying it walks the
//! slice. A transformation that fails (KAMAILIO-REFERENCE §1.8: `s.int` of a
//! non-number, `s.substr` out of range, a URI that does not parse, a `$null`
//! input) makes the whole read `$null`, which a format string prints as
//! nothing, as Kamailio does. Results that are a piece of the input borrow
//! it: `$(ru{uri.user})` copies nothing.
//!
//! Behaviour checked against Kamailio 5.6.3 where the documentation is
//! silent: `param.*` count an empty item before a leading separator;
//! `s.escape.user` also escapes `/` and `:`; `$(avp(x)[*])` joins with `", "`.

use bytes::Bytes;

use super::pv::{TrParam, Transform};
use super::pvkind::PvRef;

mod apply;
mod more;

pub use apply::apply;
pub(crate) use apply::{display_raw, range_in};
pub use more::Subst;

/// A transformation argument: constant, or a pseudo-variable read per message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrArg {
    Int(i64),
    Str(Bytes),
    Pv(Box<PvRef>),
}

/// One compiled transformation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrOp {
    Len,
    Int,
    ToLower,
    ToUpper,
    /// `s.substr,offset,length` (negative offset counts from the end, length 0 = to the end).
    Substr(TrArg, TrArg),
    /// `s.select,index,separator`.
    Select(TrArg, u8),
    /// `s.fmtlines,n,m` (spaces) / `s.fmtlinet,n,m` (tabs): see [`more::fmt_lines`].
    FmtLines(TrArg, TrArg, bool),
    Strip(TrArg),
    StripTail(TrArg),
    /// `s.stripto,c`: drop everything before the first `c`.
    StripTo(u8),
    Md5,
    Sha256,
    Sha384,
    Sha512,
    EncodeBase64,
    DecodeBase64,
    EncodeBase64Url,
    DecodeBase64Url,
    EncodeHexa,
    DecodeHexa,
    Replace(TrArg, TrArg),
    Trim,
    LTrim,
    RTrim,
    /// `s.rmws`: remove all white space.
    RmWs,
    Unquote,
    Unbracket,
    Numeric,
    Before(TrArg),
    After(TrArg),
    RBefore(TrArg),
    RAfter(TrArg),
    Count(TrArg),
    EscapeCommon,
    UnescapeCommon,
    EscapeUser,
    UnescapeUser,
    EscapeParam,
    UnescapeParam,
    UrlEncodeParam,
    UrlDecodeParam,
    Uri(UriField),
    UriParam(TrArg),
    /// `param.*` over a `name=value;…` list with a separator.
    Param(ParamOp, u8),
    NameAddr(NameAddrField),
    ToBody(ToBodyField),
    LineCount,
    LineAt(TrArg),
    LineSw(TrArg),
    /// `s.rm,x`: every `x` removed.
    Rm(TrArg),
    /// `s.prefixes[,n]` / `s.prefixes.quoted[,n]`.
    Prefixes(Option<TrArg>, bool),
    /// `s.ftime,format` (UTC).
    Ftime(TrArg),
    /// `s.corehash[,size]`.
    CoreHash(Option<TrArg>),
    EncodeBase58,
    DecodeBase58,
    /// Base64 without `=` padding (`s.encode.base64t`…).
    EncodeBase64T,
    DecodeBase64T,
    EncodeBase64UrlT,
    DecodeBase64UrlT,
    Encode7bit,
    Decode7bit,
    EscapeCsv,
    /// `re.subst,/re/repl/flags`.
    ReSubst(Box<more::Subst>),
    UriAliasEncode,
    UriAliasDecode,
    UriToSocket,
    /// sqlops' `sql.val`, `sql.val.int`, `sql.val.str`: an SQL literal (a
    /// quoted, escaped string or a number); `$null` becomes the text held.
    SqlVal(&'static str),
}

/// `uri.*` parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UriField {
    User,
    Host,
    Port,
    Transport,
    Params,
    Headers,
    Passwd,
    Scheme,
    Ttl,
    Maddr,
    Method,
    UserParam,
    Lr,
    R2,
    /// `scheme:host[:port][;transport=x]`: where to send (no user, no other parameters).
    Duri,
    /// `scheme:[user@]host[:port]`: the URI without parameters and headers.
    Suri,
    /// `scheme:user@host` (address of record).
    Saor,
}

/// `param.*` operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamOp {
    Value(TrArg),
    ValueAt(TrArg),
    Name(TrArg),
    Count,
    In(TrArg),
}

/// `nameaddr.*` parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameAddrField {
    Name,
    Uri,
    Len,
}

/// `tobody.*` parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToBodyField {
    Uri,
    User,
    Host,
    Tag,
    Params,
    Display,
}

// --- compiling ----------------------------------------------------------------------------------

/// Compiles a chain; `pv` resolves a pseudo-variable used as an argument.
pub fn compile_chain(
    chain: &[Transform],
    pv: &mut dyn FnMut(&super::pv::Pv) -> Result<PvRef, String>,
) -> Result<Box<[TrOp]>, String> {
    chain.iter().map(|t| compile_one(t, pv)).collect()
}

fn compile_one(
    t: &Transform,
    pv: &mut dyn FnMut(&super::pv::Pv) -> Result<PvRef, String>,
) -> Result<TrOp, String> {
    let name = format!("{}.{}", t.class, t.op);
    let mut params: &[TrParam] = &t.params;
    // A comma separator is written as itself: `{s.select,1,,}`, `{param.count,,}`
    // read as two empty parameters.
    let mut comma = false;
    if matches!(t.class.as_str(), "s" | "param") {
        if let [rest @ .., TrParam::Str(a), TrParam::Str(b)] = params {
            if a.is_empty() && b.is_empty() {
                params = rest;
                comma = true;
            }
        }
    }
    let mut args = Vec::with_capacity(params.len() + 1);
    for p in params {
        args.push(match p {
            TrParam::Int(i) => TrArg::Int(*i),
            TrParam::Str(s) => TrArg::Str(Bytes::copy_from_slice(s.as_bytes())),
            TrParam::Pv(p) => TrArg::Pv(Box::new(pv(p)?)),
        });
    }
    if comma {
        args.push(TrArg::Str(Bytes::from_static(b",")));
    }
    let n = args.len();
    let want = |min: usize, max: usize| -> Result<(), String> {
        if n < min || n > max {
            let what = if min == max {
                format!("{min}")
            } else {
                format!("{min} or {max}")
            };
            Err(format!("{{{name}}} takes {what} parameter(s), {n} given"))
        } else {
            Ok(())
        }
    };
    let mut it = args.into_iter();
    let mut next = || it.next().unwrap_or(TrArg::Int(0));
    // A separator is one constant character.
    let sep_of = |a: Option<TrArg>, default: u8| -> Result<u8, String> {
        match a {
            None => Ok(default),
            Some(TrArg::Str(s)) if s.len() == 1 => Ok(s[0]),
            Some(TrArg::Int(i)) if (0..=9).contains(&i) => Ok(b'0' + i as u8),
            Some(_) => Err(format!("{{{name}}}: the separator must be one character")),
        }
    };
    let op = match (t.class.as_str(), t.op.as_str()) {
        ("s", op) => {
            let simple = match op {
                "len" => Some(TrOp::Len),
                "int" => Some(TrOp::Int),
                "tolower" => Some(TrOp::ToLower),
                "toupper" => Some(TrOp::ToUpper),
                "md5" => Some(TrOp::Md5),
                "sha256" => Some(TrOp::Sha256),
                "sha384" => Some(TrOp::Sha384),
                "sha512" => Some(TrOp::Sha512),
                "encode.base64" => Some(TrOp::EncodeBase64),
                "decode.base64" => Some(TrOp::DecodeBase64),
                "encode.base64url" => Some(TrOp::EncodeBase64Url),
                "decode.base64url" => Some(TrOp::DecodeBase64Url),
                "encode.hexa" => Some(TrOp::EncodeHexa),
                "decode.hexa" => Some(TrOp::DecodeHexa),
                "trim" => Some(TrOp::Trim),
                "ltrim" => Some(TrOp::LTrim),
                "rtrim" => Some(TrOp::RTrim),
                "rmws" => Some(TrOp::RmWs),
                "unquote" => Some(TrOp::Unquote),
                "unbracket" => Some(TrOp::Unbracket),
                "numeric" => Some(TrOp::Numeric),
                "escape.common" => Some(TrOp::EscapeCommon),
                "unescape.common" => Some(TrOp::UnescapeCommon),
                "escape.user" => Some(TrOp::EscapeUser),
                "unescape.user" => Some(TrOp::UnescapeUser),
                "escape.param" => Some(TrOp::EscapeParam),
                "unescape.param" => Some(TrOp::UnescapeParam),
                "urlencode.param" => Some(TrOp::UrlEncodeParam),
                "urldecode.param" => Some(TrOp::UrlDecodeParam),
                "encode.base58" => Some(TrOp::EncodeBase58),
                "decode.base58" => Some(TrOp::DecodeBase58),
                "encode.base64t" => Some(TrOp::EncodeBase64T),
                "decode.base64t" => Some(TrOp::DecodeBase64T),
                "encode.base64urlt" => Some(TrOp::EncodeBase64UrlT),
                "decode.base64urlt" => Some(TrOp::DecodeBase64UrlT),
                "encode.7bit" => Some(TrOp::Encode7bit),
                "decode.7bit" => Some(TrOp::Decode7bit),
                "escape.csv" => Some(TrOp::EscapeCsv),
                _ => None,
            };
            if let Some(op) = simple {
                want(0, 0)?;
                op
            } else {
                match op {
                    "substr" => {
                        want(2, 2)?;
                        let (off, len) = (next(), next());
                        if matches!(len, TrArg::Int(l) if l < 0) {
                            return Err(format!("{{{name}}}: the length cannot be negative"));
                        }
                        TrOp::Substr(off, len)
                    }
                    "select" => {
                        want(2, 2)?;
                        let idx = next();
                        TrOp::Select(idx, sep_of(Some(next()), b',')?)
                    }
                    "strip" => {
                        want(1, 1)?;
                        TrOp::Strip(next())
                    }
                    "fmtlines" | "fmtlinet" => {
                        want(2, 2)?;
                        let (n, m) = (next(), next());
                        TrOp::FmtLines(n, m, op == "fmtlinet")
                    }
                    "striptail" => {
                        want(1, 1)?;
                        TrOp::StripTail(next())
                    }
                    "stripto" => {
                        want(1, 1)?;
                        TrOp::StripTo(sep_of(Some(next()), b' ')?)
                    }
                    "replace" => {
                        want(2, 2)?;
                        let from = next();
                        if matches!(&from, TrArg::Str(s) if s.is_empty()) {
                            return Err(format!("{{{name}}}: nothing to replace"));
                        }
                        TrOp::Replace(from, next())
                    }
                    "before" => {
                        want(1, 1)?;
                        TrOp::Before(next())
                    }
                    "after" => {
                        want(1, 1)?;
                        TrOp::After(next())
                    }
                    "rbefore" => {
                        want(1, 1)?;
                        TrOp::RBefore(next())
                    }
                    "rafter" => {
                        want(1, 1)?;
                        TrOp::RAfter(next())
                    }
                    "count" => {
                        want(1, 1)?;
                        TrOp::Count(next())
                    }
                    "rm" => {
                        want(1, 1)?;
                        TrOp::Rm(next())
                    }
                    "prefixes" | "prefixes.quoted" => {
                        want(0, 1)?;
                        let max = (n == 1).then(&mut next);
                        TrOp::Prefixes(max, op == "prefixes.quoted")
                    }
                    "ftime" => {
                        want(1, 1)?;
                        TrOp::Ftime(next())
                    }
                    "corehash" => {
                        want(0, 1)?;
                        TrOp::CoreHash((n == 1).then(&mut next))
                    }
                    _ => return Err(format!("unknown transformation {{{name}}}")),
                }
            }
        }
        ("uri", "param") => {
            want(1, 1)?;
            TrOp::UriParam(next())
        }
        ("uri", "tosocket") => {
            want(0, 0)?;
            TrOp::UriToSocket
        }
        ("uri", op) => {
            want(0, 0)?;
            TrOp::Uri(match op {
                "user" => UriField::User,
                "host" => UriField::Host,
                "port" => UriField::Port,
                "transport" => UriField::Transport,
                "params" => UriField::Params,
                "headers" => UriField::Headers,
                "passwd" => UriField::Passwd,
                "scheme" => UriField::Scheme,
                "ttl" => UriField::Ttl,
                "maddr" => UriField::Maddr,
                "method" => UriField::Method,
                "uparam" => UriField::UserParam,
                "lr" => UriField::Lr,
                "r2" => UriField::R2,
                "duri" => UriField::Duri,
                "suri" => UriField::Suri,
                "saor" => UriField::Saor,
                _ => return Err(format!("unknown transformation {{{name}}}")),
            })
        }
        ("param", op) => {
            let op = match op {
                "value" => {
                    want(1, 2)?;
                    ParamOp::Value(next())
                }
                "valueat" => {
                    want(1, 2)?;
                    ParamOp::ValueAt(next())
                }
                "name" => {
                    want(1, 2)?;
                    ParamOp::Name(next())
                }
                "in" => {
                    want(1, 2)?;
                    ParamOp::In(next())
                }
                "count" => {
                    want(0, 1)?;
                    ParamOp::Count
                }
                _ => return Err(format!("unknown transformation {{{name}}}")),
            };
            let sep = sep_of(it.next(), b';')?;
            TrOp::Param(op, sep)
        }
        ("nameaddr", op) => {
            want(0, 0)?;
            TrOp::NameAddr(match op {
                "name" => NameAddrField::Name,
                "uri" => NameAddrField::Uri,
                "len" => NameAddrField::Len,
                _ => return Err(format!("unknown transformation {{{name}}}")),
            })
        }
        ("tobody", op) => {
            want(0, 0)?;
            TrOp::ToBody(match op {
                "uri" => ToBodyField::Uri,
                "user" => ToBodyField::User,
                "host" => ToBodyField::Host,
                "tag" => ToBodyField::Tag,
                "params" => ToBodyField::Params,
                "display" => ToBodyField::Display,
                _ => return Err(format!("unknown transformation {{{name}}}")),
            })
        }
        ("re", "subst") => {
            want(1, 1)?;
            match next() {
                TrArg::Str(text) => {
                    let text = String::from_utf8_lossy(&text).into_owned();
                    TrOp::ReSubst(Box::new(more::Subst::parse(&text)?))
                }
                _ => return Err(format!("{{{name}}}: the expression must be a constant")),
            }
        }
        ("sql", which @ ("val" | "val.int" | "val.str")) => {
            want(0, 0)?;
            TrOp::SqlVal(match which {
                "val" => "NULL",
                "val.int" => "0",
                _ => "''",
            })
        }
        ("urialias", "encode") => {
            want(0, 0)?;
            TrOp::UriAliasEncode
        }
        ("urialias", "decode") => {
            want(0, 0)?;
            TrOp::UriAliasDecode
        }
        ("line", "count") => {
            want(0, 0)?;
            TrOp::LineCount
        }
        ("line", "at") => {
            want(1, 1)?;
            TrOp::LineAt(next())
        }
        ("line", "sw") => {
            want(1, 1)?;
            TrOp::LineSw(next())
        }
        _ => return Err(format!("unknown transformation {{{name}}}")),
    };
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::diag::Span;
    use crate::script::pv::parse_pv;

    fn ops(pv: &str) -> Box<[TrOp]> {
        let p = parse_pv(pv, Span::default()).expect(pv);
        compile_chain(&p.transforms, &mut |_| Err("no pv".into())).expect(pv)
    }

    #[test]
    fn compile_errors_name_the_problem() {
        let err = |pv: &str| {
            let p = parse_pv(pv, Span::default()).expect(pv);
            compile_chain(&p.transforms, &mut |_| Err("no pv".into())).expect_err(pv)
        };
        assert!(err("$(ru{s.nope})").contains("unknown transformation {s.nope}"));
        assert!(err("$(ru{s.substr,1})").contains("takes 2"));
        assert!(err("$(ru{s.substr,1,-2})").contains("negative"));
        assert!(err("$(ru{s.select,1,ab})").contains("one character"));
        assert!(err("$(ru{uri.zz})").contains("unknown"));
        assert!(err("$(ru{s.len,1})").contains("takes 0"));
        assert_eq!(ops("$(ru{s.len}{s.int})").len(), 2);
    }
}
