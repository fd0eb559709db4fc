//! Applying compiled transformations to a value (see the parent module).

use std::borrow::Cow;
use std::ops::Range;

use base64::Engine as _;
use md5::Digest as _;

use super::{more, NameAddrField, ParamOp, ToBodyField, TrArg, TrOp, UriField};
use crate::script::ctx::MsgCtx;
use crate::script::value::Value;
use crate::sip::nameaddr::NameAddr;
use crate::sip::uri::{Scheme, Uri};

/// Applies a chain; `None` when a step fails.
pub fn apply<'v>(ctx: &MsgCtx<'_>, ops: &[TrOp], mut v: Value<'v>) -> Option<Value<'v>> {
    for op in ops {
        v = apply_one(ctx, op, v)?;
    }
    Some(v)
}

/// The string reading of a value; `$null` cannot be transformed.
fn text(v: Value<'_>) -> Option<Cow<'_, [u8]>> {
    match v {
        Value::Null => None,
        Value::Int(i) => Some(Cow::Owned(
            itoa::Buffer::new().format(i).as_bytes().to_vec(),
        )),
        Value::Str(s) => Some(s),
    }
}

/// An empty string (or `$null`, which no transformation takes).
fn is_empty(v: &Value<'_>) -> bool {
    match v {
        Value::Null => true,
        Value::Int(_) => false,
        Value::Str(s) => s.is_empty(),
    }
}

/// A sub-range of a string, borrowed when the input was.
fn sub(s: Cow<'_, [u8]>, r: Range<usize>) -> Value<'_> {
    let r = r.start.min(s.len())..r.end.min(s.len());
    let r = r.start..r.end.max(r.start);
    match s {
        Cow::Borrowed(b) => Value::str(&b[r]),
        Cow::Owned(mut o) => {
            o.truncate(r.end);
            o.drain(..r.start);
            Value::owned(o)
        }
    }
}

/// Where `part` (a sub-slice of `whole`) lies in `whole`.
pub(crate) fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    if start > whole.len() {
        return 0..0;
    }
    start..(start + part.len()).min(whole.len())
}

/// A piece of `s` found by `find` (which returns a sub-slice of its input).
fn piece<'v>(s: Cow<'v, [u8]>, find: impl FnOnce(&[u8]) -> Option<&[u8]>) -> Option<Value<'v>> {
    let r = find(&s).map(|p| range_in(&s, p))?;
    Some(sub(s, r))
}

fn empty<'v>() -> Option<Value<'v>> {
    Some(Value::str(b""))
}

fn arg_int(ctx: &MsgCtx<'_>, a: &TrArg) -> Option<i64> {
    match a {
        TrArg::Int(i) => Some(*i),
        TrArg::Str(s) => Value::str(s).as_exact_int(),
        TrArg::Pv(p) => ctx.read_pv(p).as_exact_int(),
    }
}

fn arg_bytes<'c>(ctx: &'c MsgCtx<'_>, a: &'c TrArg) -> Cow<'c, [u8]> {
    match a {
        TrArg::Int(i) => Cow::Owned(itoa::Buffer::new().format(*i).as_bytes().to_vec()),
        TrArg::Str(s) => Cow::Borrowed(s),
        TrArg::Pv(p) => match ctx.read_pv(p) {
            Value::Str(s) => s,
            other => Cow::Owned(other.to_bytes().into_owned()),
        },
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::rfind(hay, needle)
}

/// A base64 decoder that takes the text with or without `=` padding and,
/// as Kamailio, ignores stray bits in its last character.
fn b64_unpadded(url: bool) -> base64::engine::GeneralPurpose {
    let config = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let alphabet = if url {
        &base64::alphabet::URL_SAFE
    } else {
        &base64::alphabet::STANDARD
    };
    base64::engine::GeneralPurpose::new(alphabet, config)
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn hex_lower(bytes: &[u8]) -> Value<'static> {
    Value::owned(hex::encode(bytes).into_bytes())
}

fn apply_one<'v>(ctx: &MsgCtx<'_>, op: &TrOp, v: Value<'v>) -> Option<Value<'v>> {
    match op {
        TrOp::Int => {
            return match v {
                Value::Int(i) => Some(Value::Int(i)),
                // Kamailio's `int`: a number past 32 bits fails (reads 0, checked live).
                Value::Str(s) => Value::Str(s)
                    .as_exact_int()
                    .map(|n| Value::Int(if i32::try_from(n).is_ok() { n } else { 0 })),
                Value::Null => None,
            };
        }
        TrOp::Uri(f) => return uri_field(text(v)?, *f),
        TrOp::UriParam(name) => {
            let name = arg_bytes(ctx, name);
            return piece(text(v)?, |s| {
                let uri = Uri::parse(s).ok()?;
                if matches!(uri.scheme(), Scheme::Tel) {
                    return Some(&s[..0]);
                }
                Some(uri.param(&name).and_then(|p| p.value).unwrap_or(&s[..0]))
            });
        }
        // Kamailio's param.* and line.* fail on an empty string.
        TrOp::Param(op, sep) => return param(ctx, op, *sep, text(v).filter(|s| !s.is_empty())?),
        TrOp::LineCount | TrOp::LineAt(_) | TrOp::LineSw(_) if is_empty(&v) => return None,
        TrOp::NameAddr(f) => return nameaddr(text(v)?, *f),
        TrOp::ToBody(f) => return tobody(text(v)?, *f),
        TrOp::SqlVal(null) => {
            return Some(match v {
                Value::Null => Value::str(null.as_bytes()),
                Value::Int(i) => Value::owned(i.to_string().into_bytes()),
                Value::Str(s) => {
                    let mut out = Vec::with_capacity(s.len() + 4);
                    out.push(b'\'');
                    escape_common(&s, &mut out);
                    out.push(b'\'');
                    Value::owned(out)
                }
            })
        }
        _ => {}
    }
    let s = text(v)?;
    Some(match op {
        TrOp::Len => Value::Int(s.len() as i64),
        TrOp::ToLower => Value::owned(s.to_ascii_lowercase()),
        TrOp::ToUpper => Value::owned(s.to_ascii_uppercase()),
        TrOp::Substr(off, len) => {
            let (off, len) = (arg_int(ctx, off)?, arg_int(ctx, len)?);
            let n = s.len() as i64;
            let start = if off < 0 { n.checked_add(off)? } else { off };
            if start < 0 || start >= n || len < 0 {
                log::debug!("s.substr out of range");
                return None;
            }
            let end = if len == 0 {
                n
            } else {
                start.saturating_add(len).min(n)
            };
            sub(s, start as usize..end as usize)
        }
        TrOp::Select(idx, sep) => {
            let idx = arg_int(ctx, idx)?;
            let fields: smallvec::SmallVec<[Range<usize>; 8]> = {
                let mut out = smallvec::SmallVec::new();
                let mut start = 0;
                for (i, b) in s.iter().enumerate() {
                    if b == sep {
                        out.push(start..i);
                        start = i + 1;
                    }
                }
                out.push(start..s.len());
                out
            };
            let i = if idx < 0 {
                (fields.len() as i64).checked_add(idx)
            } else {
                Some(idx)
            };
            // Past either end: the empty string, not $null (Kamailio 5.6,
            // checked live: assigned to a $var it stays "", not 0).
            match i.and_then(|i| fields.get(usize::try_from(i).ok()?)) {
                Some(r) => sub(s, r.clone()),
                None => sub(s, 0..0),
            }
        }
        TrOp::FmtLines(n, m, tabs) => {
            let (n, m) = (arg_int(ctx, n)?, arg_int(ctx, m)?);
            Value::owned(more::fmt_lines(&s, n, m, *tabs)?)
        }
        TrOp::Strip(n) => {
            let n = usize::try_from(arg_int(ctx, n)?).ok()?;
            let len = s.len();
            sub(s, n.min(len)..len)
        }
        TrOp::StripTail(n) => {
            let n = usize::try_from(arg_int(ctx, n)?).ok()?;
            let len = s.len();
            sub(s, 0..len.saturating_sub(n))
        }
        TrOp::StripTo(c) => {
            let len = s.len();
            match s.iter().position(|b| b == c) {
                Some(i) => sub(s, i..len),
                None => s.into(),
            }
        }
        TrOp::Md5 => hex_lower(&md5::Md5::digest(&s)),
        TrOp::Sha256 => hex_lower(&sha2::Sha256::digest(&s)),
        TrOp::Sha384 => hex_lower(&sha2::Sha384::digest(&s)),
        TrOp::Sha512 => hex_lower(&sha2::Sha512::digest(&s)),
        TrOp::EncodeBase64 => Value::owned(
            base64::engine::general_purpose::STANDARD
                .encode(&s)
                .into_bytes(),
        ),
        TrOp::DecodeBase64 => {
            Value::owned(base64::engine::general_purpose::STANDARD.decode(&s).ok()?)
        }
        TrOp::EncodeBase64Url => Value::owned(
            base64::engine::general_purpose::URL_SAFE
                .encode(&s)
                .into_bytes(),
        ),
        TrOp::DecodeBase64Url => {
            Value::owned(base64::engine::general_purpose::URL_SAFE.decode(&s).ok()?)
        }
        TrOp::EncodeHexa => hex_lower(&s),
        TrOp::DecodeHexa => Value::owned(hex::decode(&s).ok()?),
        TrOp::Replace(from, to) => {
            let from = arg_bytes(ctx, from);
            let to = arg_bytes(ctx, to);
            if from.is_empty() || find(&s, &from).is_none() {
                s.into()
            } else {
                let mut out = Vec::with_capacity(s.len());
                let mut rest: &[u8] = &s;
                while let Some(i) = find(rest, &from) {
                    out.extend_from_slice(&rest[..i]);
                    out.extend_from_slice(&to);
                    rest = &rest[i + from.len()..];
                }
                out.extend_from_slice(rest);
                Value::owned(out)
            }
        }
        TrOp::Trim | TrOp::LTrim | TrOp::RTrim => {
            let start = if matches!(op, TrOp::RTrim) {
                0
            } else {
                s.iter().position(|b| !is_ws(*b)).unwrap_or(s.len())
            };
            let end = if matches!(op, TrOp::LTrim) {
                s.len()
            } else {
                s.iter().rposition(|b| !is_ws(*b)).map_or(start, |i| i + 1)
            };
            sub(s, start..end.max(start))
        }
        TrOp::RmWs => Value::owned(s.iter().copied().filter(|b| !is_ws(*b)).collect()),
        TrOp::Unquote | TrOp::Unbracket => {
            let pairs: &[(u8, u8)] = if matches!(op, TrOp::Unquote) {
                &[(b'"', b'"'), (b'\'', b'\'')]
            } else {
                &[(b'<', b'>'), (b'(', b')'), (b'[', b']'), (b'{', b'}')]
            };
            let len = s.len();
            let wrapped = len >= 2 && pairs.iter().any(|&(a, b)| s[0] == a && s[len - 1] == b);
            if wrapped {
                sub(s, 1..len - 1)
            } else {
                s.into()
            }
        }
        TrOp::Numeric => Value::owned(s.iter().copied().filter(u8::is_ascii_digit).collect()),
        TrOp::Before(c) | TrOp::After(c) | TrOp::RBefore(c) | TrOp::RAfter(c) => {
            let c = arg_bytes(ctx, c);
            let reverse = matches!(op, TrOp::RBefore(_) | TrOp::RAfter(_));
            let at = if reverse { rfind(&s, &c) } else { find(&s, &c) };
            let before = matches!(op, TrOp::Before(_) | TrOp::RBefore(_));
            let len = s.len();
            match (at, before) {
                (Some(i), true) => sub(s, 0..i),
                (Some(i), false) => sub(s, i + c.len()..len),
                // Not found: `before` keeps all, `after` keeps nothing.
                (None, true) => s.into(),
                (None, false) => Value::str(b""),
            }
        }
        TrOp::Count(c) => {
            let c = arg_bytes(ctx, c);
            let c = *c.first()?;
            Value::Int(s.iter().filter(|&&b| b == c).count() as i64)
        }
        TrOp::EscapeCommon => {
            let mut out = Vec::with_capacity(s.len() + 4);
            escape_common(&s, &mut out);
            Value::owned(out)
        }
        TrOp::UnescapeCommon => {
            let mut out = Vec::with_capacity(s.len());
            let mut it = s.iter().copied();
            while let Some(b) = it.next() {
                if b == b'\\' {
                    match it.next() {
                        Some(b'0') => out.push(0),
                        Some(n) => out.push(n),
                        None => out.push(b),
                    }
                } else {
                    out.push(b);
                }
            }
            Value::owned(out)
        }
        TrOp::EscapeUser => percent_encode(&s, |b| b"-_.!~*'()&=+$,;?".contains(&b)),
        TrOp::EscapeParam => percent_encode(&s, |b| b"-_.!~*'()[]/:&+$".contains(&b)),
        TrOp::UrlEncodeParam => percent_encode(&s, |b| b"-_.~".contains(&b)),
        TrOp::UnescapeUser | TrOp::UnescapeParam => Value::owned(percent_decode(&s, false)?),
        TrOp::UrlDecodeParam => Value::owned(percent_decode(&s, true)?),
        TrOp::LineCount => {
            let body: &[u8] = s.strip_suffix(b"\n").unwrap_or(&s);
            Value::Int(if s.is_empty() {
                0
            } else {
                body.split(|&b| b == b'\n').count() as i64
            })
        }
        TrOp::LineAt(i) => {
            let i = arg_int(ctx, i)?;
            let lines = line_ranges(&s);
            let i = if i < 0 {
                (lines.len() as i64).checked_add(i)?
            } else {
                i
            };
            let r = lines.get(usize::try_from(i).ok()?)?.clone();
            sub(s, r)
        }
        TrOp::LineSw(prefix) => {
            let prefix = arg_bytes(ctx, prefix);
            let r = line_ranges(&s)
                .into_iter()
                .find(|r| s[r.clone()].starts_with(&prefix))?;
            sub(s, r)
        }
        TrOp::Rm(x) => Value::owned(more::rm(&s, &arg_bytes(ctx, x))),
        TrOp::Prefixes(max, quoted) => {
            let max = match max {
                Some(a) => Some(arg_int(ctx, a)?),
                None => None,
            };
            Value::owned(more::prefixes(&s, max, *quoted))
        }
        TrOp::Ftime(format) => {
            let secs = Value::str(&s).as_exact_int()?;
            Value::owned(more::ftime(secs, &arg_bytes(ctx, format)))
        }
        TrOp::CoreHash(size) => {
            let size = match size {
                Some(a) => Some(arg_int(ctx, a)?),
                None => None,
            };
            Value::Int(more::corehash(&s, size))
        }
        TrOp::EncodeBase58 => Value::owned(more::base58_encode(&s)),
        TrOp::DecodeBase58 => Value::owned(more::base58_decode(&s)?),
        TrOp::EncodeBase64T => Value::owned(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(&s)
                .into_bytes(),
        ),
        TrOp::DecodeBase64T => Value::owned(b64_unpadded(false).decode(&s).ok()?),
        TrOp::EncodeBase64UrlT => Value::owned(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(&s)
                .into_bytes(),
        ),
        TrOp::DecodeBase64UrlT => Value::owned(b64_unpadded(true).decode(&s).ok()?),
        TrOp::Encode7bit => Value::owned(more::encode_7bit(&s)),
        TrOp::Decode7bit => Value::owned(more::decode_7bit(&s)?),
        TrOp::EscapeCsv => Value::owned(more::escape_csv(&s)),
        // No match leaves the value as it was (Kamailio 5.6).
        TrOp::ReSubst(subst) => match subst.apply(&s) {
            Some(out) => Value::owned(out),
            None => s.into(),
        },
        TrOp::UriAliasEncode => Value::owned(more::urialias_encode(&s)?),
        TrOp::UriAliasDecode => Value::owned(more::urialias_decode(&s)?),
        TrOp::UriToSocket => Value::owned(more::uri_tosocket(&s)?),
        TrOp::Int
        | TrOp::Uri(_)
        | TrOp::UriParam(_)
        | TrOp::Param(..)
        | TrOp::NameAddr(_)
        | TrOp::ToBody(_)
        | TrOp::SqlVal(_) => return None,
    })
}

/// Line ranges without their line endings (`\r\n` or `\n`).
fn line_ranges(s: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let end = memchr::memchr(b'\n', &s[start..]).map_or(s.len(), |i| start + i);
        let text_end = if end > start && s[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        out.push(start..text_end);
        start = end + 1;
    }
    out
}

fn percent_encode(s: &[u8], keep: impl Fn(u8) -> bool) -> Value<'static> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(s.len() + 8);
    for &b in s {
        if b.is_ascii_alphanumeric() || keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    Value::owned(out)
}

fn percent_decode(s: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let h = crate::sip::scan::hex_val(*s.get(i + 1)?)?;
                let l = crate::sip::scan::hex_val(*s.get(i + 2)?)?;
                out.push(h << 4 | l);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn uri_field(s: Cow<'_, [u8]>, f: UriField) -> Option<Value<'_>> {
    let uri = Uri::parse(&s).ok()?;
    let (scheme, host, port) = (uri.scheme(), uri.host_raw(), uri.port());
    let composed = |user: Option<&[u8]>, transport: Option<&[u8]>| {
        let mut out = Vec::with_capacity(s.len());
        out.extend_from_slice(scheme.as_bytes());
        out.push(b':');
        if let Some(u) = user {
            out.extend_from_slice(u);
            out.push(b'@');
        }
        out.extend_from_slice(host);
        if let Some(p) = port {
            out.push(b':');
            out.extend_from_slice(itoa::Buffer::new().format(p).as_bytes());
        }
        if let Some(t) = transport {
            out.extend_from_slice(b";transport=");
            out.extend_from_slice(t);
        }
        Some(Value::owned(out))
    };
    match f {
        // The parameter's value, as Kamailio: empty for a bare `;lr`.
        UriField::Lr | UriField::R2 => {
            let name: &[u8] = if f == UriField::Lr { b"lr" } else { b"r2" };
            let v = uri.param(name).and_then(|p| p.value).unwrap_or(b"");
            return Some(Value::owned(v.to_vec()));
        }
        UriField::Duri => {
            let t = uri.param(b"transport").and_then(|p| p.value);
            return composed(None, t);
        }
        UriField::Suri => {
            let t = uri.param(b"transport").and_then(|p| p.value);
            return composed(uri.user(), t);
        }
        UriField::Saor => {
            let mut out = Vec::with_capacity(s.len());
            out.extend_from_slice(scheme.as_bytes());
            out.push(b':');
            if let Some(u) = uri.user() {
                out.extend_from_slice(u);
                out.push(b'@');
            }
            out.extend_from_slice(host);
            return Some(Value::owned(out));
        }
        _ => {}
    }
    piece(s, |s| {
        let uri = Uri::parse(s).ok()?;
        let none = &s[..0];
        Some(match f {
            UriField::User => uri.user().unwrap_or(none),
            UriField::Host => uri.host_raw(),
            UriField::Port => {
                // The port as written: the digits after the host.
                let h = range_in(s, uri.host_raw());
                match s.get(h.end) {
                    Some(b':') => {
                        let rest = &s[h.end + 1..];
                        let n = rest
                            .iter()
                            .position(|b| !b.is_ascii_digit())
                            .unwrap_or(rest.len());
                        &rest[..n]
                    }
                    _ => none,
                }
            }
            UriField::Transport => uri
                .param(b"transport")
                .and_then(|p| p.value)
                .unwrap_or(none),
            // Kamailio keeps a tel: URI's parameters apart from the SIP ones
            // that uri.params and uri.param read: none for tel:.
            UriField::Params if matches!(uri.scheme(), Scheme::Tel) => none,
            UriField::Params => {
                let p = uri.params_raw();
                p.strip_prefix(b";").unwrap_or(p)
            }
            UriField::Headers => uri.headers_raw().unwrap_or(none),
            UriField::Passwd => uri.password().unwrap_or(none),
            UriField::Scheme => {
                let colon = s.iter().position(|&b| b == b':').unwrap_or(0);
                &s[..colon]
            }
            UriField::Ttl => uri.param(b"ttl").and_then(|p| p.value).unwrap_or(none),
            UriField::Maddr => uri.maddr().unwrap_or(none),
            UriField::Method => uri.method_param().unwrap_or(none),
            UriField::UserParam => uri.user_param().unwrap_or(none),
            UriField::Lr | UriField::R2 | UriField::Duri | UriField::Suri | UriField::Saor => none,
        })
    })
}

/// A parameter value without its surrounding double quotes (Kamailio's
/// parameter parser gives the inside of a quoted value).
fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// `param.*` over `s`: items split on `sep` (an empty item before a leading
/// separator counts, as in Kamailio), each `name[=value]`.
fn param<'v>(ctx: &MsgCtx<'_>, op: &ParamOp, sep: u8, s: Cow<'v, [u8]>) -> Option<Value<'v>> {
    let items = || {
        s.split(move |&b| b == sep).map(|item| {
            let (name, value) = match item.iter().position(|&b| b == b'=') {
                Some(i) => (&item[..i], Some(&item[i + 1..])),
                None => (item, None),
            };
            (name.trim_ascii(), value.map(|v| unquote(v.trim_ascii())))
        })
    };
    match op {
        ParamOp::Count => Some(Value::Int(items().count() as i64)),
        ParamOp::In(name) => {
            let name = arg_bytes(ctx, name);
            let hit = items().any(|(n, _)| n.eq_ignore_ascii_case(&name));
            Some(Value::Int(i64::from(hit)))
        }
        ParamOp::Value(name) => {
            let name = arg_bytes(ctx, name);
            let r = items()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                .and_then(|(_, v)| v)
                .map(|v| range_in(&s, v));
            match r {
                Some(r) => Some(sub(s, r)),
                None => empty(),
            }
        }
        ParamOp::ValueAt(i) | ParamOp::Name(i) => {
            let i = usize::try_from(arg_int(ctx, i)?).ok()?;
            let name = matches!(op, ParamOp::Name(_));
            let r = items()
                .nth(i)
                .and_then(|(n, v)| if name { Some(n) } else { v })
                .map(|p| range_in(&s, p));
            match r {
                Some(r) => Some(sub(s, r)),
                None => empty(),
            }
        }
    }
}

fn nameaddr(s: Cow<'_, [u8]>, f: NameAddrField) -> Option<Value<'_>> {
    // Without `<`, Kamailio takes the whole text as the URI (parameters too).
    if !s.contains(&b'<') {
        return Some(match f {
            NameAddrField::Len => Value::Int(s.len() as i64),
            NameAddrField::Uri => s.into(),
            NameAddrField::Name => Value::owned(Vec::new()),
        });
    }
    if f == NameAddrField::Len {
        let na = NameAddr::parse(&s).ok()?;
        // The name-addr without header parameters: display name, `<uri>`.
        let end = na.params_range().start;
        return Some(Value::Int((end - na.span().start) as i64));
    }
    piece(s, |s| {
        let na = NameAddr::parse(s).ok()?;
        Some(match f {
            NameAddrField::Uri => na.uri_raw(),
            // The text before `<` as written (quotes and space kept).
            _ => {
                let start = na.span().start;
                let lt = na.uri_range().start.saturating_sub(1);
                if na.has_brackets() && lt > start {
                    &s[start..lt]
                } else {
                    &s[..0]
                }
            }
        })
    })
}

fn tobody(s: Cow<'_, [u8]>, f: ToBodyField) -> Option<Value<'_>> {
    piece(s, |s| {
        let na = NameAddr::parse(s).ok()?;
        let none = &s[..0];
        Some(match f {
            ToBodyField::Uri => na.uri_raw(),
            ToBodyField::User => na.uri().ok()?.user().unwrap_or(none),
            ToBodyField::Host => na.uri().ok()?.host_raw(),
            ToBodyField::Tag => na.tag().unwrap_or(none),
            ToBodyField::Params => {
                let p = na.params_raw();
                p.strip_prefix(b";").unwrap_or(p)
            }
            ToBodyField::Display => display_raw(s, &na).unwrap_or(none),
        })
    })
}

/// The display name as written, with its quotes (as Kamailio's `$fn` shows it).
pub(crate) fn display_raw<'a>(s: &'a [u8], na: &NameAddr<'a>) -> Option<&'a [u8]> {
    let d = na.display_name()?;
    let r = range_in(s, d.raw());
    if d.is_quoted() && r.start > 0 && r.end < s.len() {
        Some(&s[r.start - 1..r.end + 1])
    } else {
        Some(&s[r])
    }
}

/// Kamailio's `escape_common`: a backslash before `'`, `"` and `\`, NUL as `\0`.
fn escape_common(s: &[u8], out: &mut Vec<u8>) {
    for &b in s {
        match b {
            b'\'' | b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(line_ranges(b"a\r\nbb\nc"), vec![0..1, 3..5, 6..7]);
        assert_eq!(percent_decode(b"a+b%41", true).unwrap(), b"a bA");
        assert!(percent_decode(b"%4", false).is_none());
        let whole = b"hello";
        assert_eq!(range_in(whole, &whole[1..3]), 1..3);
    }
}
