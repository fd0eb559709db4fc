//! jansson: JSON documents in script variables, read and edited by path.
//!
//! - `jansson_get(path, json, dst)`, `jansson_array_size(path, json, dst)`,
//!   `jansson_get_field(json, field, dst)`;
//! - `jansson_set(type, path, value, result)` and
//!   `jansson_append(type, path, value, result)`, where `type` is `string`/`str`,
//!   `integer`/`int`, `real`, `object`/`obj`, `array`, `true`, `false` or `null`.
//!
//! As Kamailio 5.6 with libjansson behaves (compared live):
//! - a document must be an object or an array, and a key given twice is an
//!   error;
//! - paths are `key.key[index]…`, an index read as C's `strtol` with base 0;
//!   setting creates missing objects on the way (`a.b.c`) but no array;
//! - a value read into a variable: a string as its text, an integer as an
//!   integer (as text beyond 32 bits), `true`/`false` as 1/0, a real with 15
//!   significant digits, `null` as `$null`, an object or array as compact JSON;
//! - the edited document is written back compact, keys in their order, reals
//!   with 17 significant digits (`0.10000000000000001`, `3.0`, `1e300`), only
//!   `"`, `\` and control characters escaped;
//! - `set`/`append` start from `{}` when the result variable holds no string;
//!   on any failure (-1) the variables are left as they were.

use std::fmt::Write as _;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value as Json};

use crate::modules::corex::args::{as_pv, out_pv};
use crate::script::ctx::MsgCtx;
use crate::script::registry::{func, Arg, Args, FunctionDef, ModParams, ModuleDef, RouteMask};
use crate::script::value::Value;

pub static MODULE: ModuleDef = ModuleDef {
    name: "jansson",
    aliases: &[],
    functions: FUNCTIONS,
    params: &[],
    always: false,
};

const ANY: RouteMask = RouteMask::ANY;

const FUNCTIONS: &[FunctionDef] = &[
    func("jansson_get", 3, 3, ANY, Some(fixup_dst_3), jansson_get),
    func(
        "jansson_array_size",
        3,
        3,
        ANY,
        Some(fixup_dst_3),
        jansson_array_size,
    ),
    func(
        "jansson_get_field",
        3,
        3,
        ANY,
        Some(fixup_dst_3),
        jansson_get_field,
    ),
    func("jansson_set", 4, 4, ANY, Some(fixup_set), jansson_set),
    func("jansson_append", 4, 4, ANY, Some(fixup_set), jansson_append),
];

fn fixup_dst_3(args: &mut Args, _: &ModParams) -> Result<(), String> {
    out_pv(args, 2)
}

fn fixup_set(args: &mut Args, _: &ModParams) -> Result<(), String> {
    if let Some(Arg::Str(t)) = args.get(0) {
        if ValueType::parse(t).is_none() {
            return Err(format!(
                "unknown type \"{}\" (string, str, integer, int, real, object, obj, array, true, false, null)",
                String::from_utf8_lossy(t)
            ));
        }
    }
    as_pv(args, 3);
    out_pv(args, 3)
}

// --- reading documents ---------------------------------------------------------

/// A JSON value parsed as libjansson does with `JSON_REJECT_DUPLICATES`.
struct Strict(Json);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        // libjansson keeps integers in a signed 64-bit number.
        i64::try_from(v)
            .map(|v| Json::Number(v.into()))
            .map_err(|_| E::custom("too big integer"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("real number overflow"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut list = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            list.push(v);
        }
        Ok(Json::Array(list))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut m = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if m.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate object key \"{key}\"")));
            }
            m.insert(key, v);
        }
        Ok(Json::Object(m))
    }
}

/// Parses a document: an object or an array, no key twice.
fn load(text: &[u8]) -> Result<Json, String> {
    let Strict(v) = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    match v {
        Json::Object(_) | Json::Array(_) => Ok(v),
        _ => Err("'[' or '{' expected".into()),
    }
}

/// C's `strtol(s, &end, 0)` with nothing left over, as an array index
/// (a negative number wraps to an index that never exists).
fn parse_index(token: &str) -> Option<usize> {
    let t = token.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() {
        return None;
    }
    let n = u64::from_str_radix(digits, radix).ok()?;
    if neg && n != 0 {
        return Some(usize::MAX);
    }
    usize::try_from(n).ok()
}

/// The value at `path` (libjansson's path walk, as Kamailio's module has it).
fn path_get<'j>(json: &'j Json, path: &str) -> Option<&'j Json> {
    let mut cursor = json;
    let mut rest = path;
    let mut in_index = false;
    if let Some(r) = rest.strip_prefix('[') {
        rest = r;
        in_index = true;
    }
    // `token` is None right after an index: only a delimiter may follow.
    let mut token_open = true;
    while !rest.is_empty() {
        let delims: &[char] = if in_index { &[']'] } else { &['.', '['] };
        let (token, delim, after) = match rest.find(delims) {
            Some(i) => {
                if !token_open && i != 0 {
                    return None;
                }
                (&rest[..i], rest.as_bytes()[i], &rest[i + 1..])
            }
            None if in_index || !token_open => return None,
            None => (rest, 0, ""),
        };
        if in_index {
            let index = parse_index(token)?;
            cursor = cursor.as_array()?.get(index)?;
            token_open = false;
            in_index = false;
        } else {
            if token_open {
                cursor = cursor.as_object()?.get(token)?;
            }
            in_index = delim == b'[';
            token_open = true;
        }
        rest = after;
    }
    Some(cursor)
}

/// One step from the root to the value being edited.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn walk_mut<'j>(root: &'j mut Json, steps: &[Step]) -> Option<&'j mut Json> {
    let mut cur = root;
    for s in steps {
        cur = match s {
            Step::Key(k) => cur.as_object_mut()?.get_mut(k)?,
            Step::Index(i) => cur.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(cur)
}

/// Sets (or with `append`, appends or merges) `value` at `path` in `root`.
fn path_set(root: &mut Json, path: &str, value: Json, append: bool) -> Result<(), String> {
    let mut cursor: Vec<Step> = Vec::new();
    let mut parent: Option<Vec<Step>> = None;
    let mut index_saved: Option<usize> = None;
    let mut rest = path;
    let mut in_index = false;
    if let Some(r) = rest.strip_prefix('[') {
        rest = r;
        in_index = true;
    }
    let mut token: Option<&str> = Some(rest);
    while !rest.is_empty() {
        let delims: &[char] = if in_index { &[']'] } else { &['.', '['] };
        let Some(i) = rest.find(delims) else {
            if in_index {
                return Err("missing ']'".into());
            }
            break;
        };
        if token.is_none() && i != 0 {
            return Err("unexpected trailing characters in the path".into());
        }
        let delim = rest.as_bytes()[i];
        let tok = &rest[..i];
        rest = &rest[i + 1..];
        if in_index {
            let here = walk_mut(root, &cursor).ok_or("bad path")?;
            let len = here.as_array().ok_or("array expected")?.len();
            let index = parse_index(tok).ok_or("invalid array index")?;
            if index >= len {
                return Err("array index out of bound".into());
            }
            parent = Some(cursor.clone());
            cursor.push(Step::Index(index));
            index_saved = Some(index);
            token = None;
            in_index = false;
        } else {
            if token.is_some() {
                if tok.is_empty() {
                    return Err("empty token".into());
                }
                let here = walk_mut(root, &cursor).ok_or("bad path")?;
                parent = Some(cursor.clone());
                match here {
                    Json::Object(m) if m.contains_key(tok) => {}
                    Json::Object(m) if delim == b'.' => {
                        m.insert(tok.to_string(), Json::Object(Map::new()));
                    }
                    Json::Object(_) => return Err("new array is not allowed".into()),
                    _ => return Err("object expected".into()),
                }
                cursor.push(Step::Key(tok.to_string()));
            }
            in_index = delim == b'[';
            token = Some(rest);
        }
    }
    let here = walk_mut(root, &cursor).ok_or("bad path")?;
    match token {
        Some(t) if append => {
            let target = if t.is_empty() {
                here
            } else {
                here.get_mut(t).ok_or("JSON array or object expected")?
            };
            match (target, value) {
                (Json::Array(list), v) => list.push(v),
                (Json::Object(m), Json::Object(add)) => {
                    for (k, v) in add {
                        m.insert(k, v);
                    }
                }
                _ => return Err("JSON array or object expected".into()),
            }
        }
        Some(t) if !t.is_empty() => match here {
            Json::Object(m) => {
                m.insert(t.to_string(), value);
            }
            _ => return Err("JSON object expected".into()),
        },
        _ => {
            let (Some(parent), Some(i)) = (parent, index_saved) else {
                return Err("invalid JSON path".into());
            };
            match walk_mut(root, &parent) {
                Some(Json::Array(list)) if i < list.len() => list[i] = value,
                _ => return Err("invalid JSON path".into()),
            }
        }
    }
    Ok(())
}

// --- writing ---------------------------------------------------------------------

/// C's `%.{precision}g`.
fn fmt_g(x: f64, precision: usize) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.unsigned_abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{:.*}", decimals, x))
    }
}

/// A real as libjansson writes it: 17 digits, always a `.` or an exponent,
/// the exponent without `+` or leading zeros.
fn jansson_real(x: f64) -> String {
    let mut s = fmt_g(x, 17);
    if let Some(i) = s.find('e') {
        let (m, e) = s.split_at(i + 1);
        let (sign, digits) = match e.as_bytes().first() {
            Some(b'-') => ("-", &e[1..]),
            Some(b'+') => ("", &e[1..]),
            _ => ("", e),
        };
        let digits = digits.trim_start_matches('0');
        s = format!("{m}{sign}{}", if digits.is_empty() { "0" } else { digits });
    } else if !s.contains('.') && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        s.push_str(".0");
    }
    s
}

fn dump_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Compact JSON as libjansson's `json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER)`.
fn dump(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) if !n.is_f64() => {
                let _ = write!(out, "{i}");
            }
            (_, Some(f)) => out.push_str(&jansson_real(f)),
            _ => out.push_str("null"),
        },
        Json::String(s) => dump_string(out, s),
        Json::Array(list) => {
            out.push('[');
            for (i, v) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                dump(out, v);
            }
            out.push(']');
        }
        Json::Object(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                dump_string(out, k);
                out.push(':');
                dump(out, v);
            }
            out.push('}');
        }
    }
}

/// A JSON value as a script value (Kamailio's `jansson_to_val`).
fn to_value(v: &Json) -> Value<'static> {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Int(i64::from(*b)),
        Json::String(s) => Value::owned(s.clone().into_bytes()),
        Json::Number(n) if !n.is_f64() => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => Value::Int(i64::from(i)),
            None => Value::owned(n.to_string().into_bytes()),
        },
        Json::Number(n) => Value::owned(fmt_g(n.as_f64().unwrap_or(0.0), 15).into_bytes()),
        Json::Array(_) | Json::Object(_) => {
            let mut s = String::new();
            dump(&mut s, v);
            Value::owned(s.into_bytes())
        }
    }
}

// --- the functions -------------------------------------------------------------------

fn store(ctx: &mut MsgCtx<'_>, args: &Args, i: usize, value: Value<'_>, what: &str) -> i32 {
    let Some(Arg::Pv(pv)) = args.get(i) else {
        return -1;
    };
    match ctx.write_pv(pv, value) {
        Ok(()) => 1,
        Err(e) => {
            log::warn!("{what}: {e}");
            -1
        }
    }
}

/// Argument `i` as text (JSON documents and paths are UTF-8).
fn text(ctx: &MsgCtx<'_>, args: &Args, i: usize) -> String {
    String::from_utf8_lossy(&args.str(ctx, i)).into_owned()
}

fn loaded(ctx: &MsgCtx<'_>, args: &Args, i: usize, what: &str) -> Option<Json> {
    match load(&args.str(ctx, i)) {
        Ok(j) => Some(j),
        Err(e) => {
            log::error!("{what}: failed to parse json: {e}");
            None
        }
    }
}

fn jansson_get(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let path = text(ctx, args, 0);
    let Some(json) = loaded(ctx, args, 1, "jansson_get") else {
        return -1;
    };
    match path_get(&json, &path) {
        Some(v) => store(ctx, args, 2, to_value(v), "jansson_get"),
        None => -1,
    }
}

fn jansson_array_size(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let path = text(ctx, args, 0);
    let Some(json) = loaded(ctx, args, 1, "jansson_array_size") else {
        return -1;
    };
    match path_get(&json, &path) {
        Some(Json::Array(list)) => {
            let n = i64::try_from(list.len()).unwrap_or(i64::MAX);
            store(ctx, args, 2, Value::Int(n), "jansson_array_size")
        }
        Some(_) => {
            log::error!("jansson_array_size: value at {path} is not an array");
            -1
        }
        None => {
            log::error!("jansson_array_size: failed to find {path} in json");
            -1
        }
    }
}

fn jansson_get_field(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let field = text(ctx, args, 1);
    let Some(json) = loaded(ctx, args, 0, "jansson_get_field") else {
        return -1;
    };
    match json.get(&field) {
        Some(v) => store(ctx, args, 2, to_value(v), "jansson_get_field"),
        None => -1,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueType {
    Str,
    Int,
    Real,
    Object,
    Array,
    True,
    False,
    Null,
}

impl ValueType {
    fn parse(t: &[u8]) -> Option<ValueType> {
        Some(match t {
            b"string" | b"str" => ValueType::Str,
            b"integer" | b"int" => ValueType::Int,
            b"real" => ValueType::Real,
            b"object" | b"obj" => ValueType::Object,
            b"array" => ValueType::Array,
            b"true" => ValueType::True,
            b"false" => ValueType::False,
            b"null" => ValueType::Null,
            _ => return None,
        })
    }

    /// The value to put in the document, from the script's text.
    fn make(self, text: &str) -> Result<Json, String> {
        Ok(match self {
            ValueType::Str => Json::String(text.to_string()),
            ValueType::Int => Json::Number(
                strtoll(text)
                    .ok_or_else(|| format!("parsing int failed for \"{text}\""))?
                    .into(),
            ),
            ValueType::Real => {
                let f: f64 = text
                    .trim_start()
                    .parse()
                    .map_err(|_| format!("parsing real failed for \"{text}\""))?;
                Json::Number(Number::from_f64(f).ok_or("not a finite real")?)
            }
            ValueType::Object => match load(text.as_bytes())? {
                v @ Json::Object(_) => v,
                _ => return Err("value to add is not an object".into()),
            },
            ValueType::Array => match load(text.as_bytes())? {
                v @ Json::Array(_) => v,
                _ => return Err("value to add is not an array".into()),
            },
            ValueType::True => Json::Bool(true),
            ValueType::False => Json::Bool(false),
            ValueType::Null => Json::Null,
        })
    }
}

/// C's `strtoll(s, &end, 10)` with nothing left over (an empty string is 0).
fn strtoll(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if t.is_empty() || t == "-" || t == "+" {
        // strtoll reads nothing and stops at the start: whole string left
        // unless it was empty.
        return s.is_empty().then_some(0);
    }
    t.parse::<i64>().ok()
}

fn set(ctx: &mut MsgCtx<'_>, args: &Args, append: bool) -> i32 {
    let what = if append {
        "jansson_append"
    } else {
        "jansson_set"
    };
    let Some(vt) = ValueType::parse(&args.str(ctx, 0)) else {
        log::error!("{what}: unrecognized input type");
        return -1;
    };
    let path = text(ctx, args, 1);
    let value = match vt.make(&text(ctx, args, 2)) {
        Ok(v) => v,
        Err(e) => {
            log::error!("{what}: {e}");
            return -1;
        }
    };
    let Some(Arg::Pv(result)) = args.get(3) else {
        return -1;
    };
    let current = match ctx.read_pv(result) {
        Value::Str(s) => s.into_owned(),
        _ => b"{}".to_vec(),
    };
    let mut doc = match load(&current) {
        Ok(d) => d,
        Err(e) => {
            log::error!("{what}: result has json error: {e}");
            return -1;
        }
    };
    if let Err(e) = path_set(&mut doc, &path, value, append) {
        log::error!("{what}: {e}");
        return -1;
    }
    store(ctx, args, 3, to_value(&doc), what)
}

fn jansson_set(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    set(ctx, args, false)
}

fn jansson_append(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    set(ctx, args, true)
}

#[cfg(test)]
mod tests;
