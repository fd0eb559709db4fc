//! Script values: `$null`, integers and binary-safe byte strings.
//!
//! A value read from the message or from a constant borrows it (`Cow::Borrowed`),
//! so a script that only compares and calls functions allocates nothing.

use std::borrow::Cow;
use std::fmt;

/// A script value. Strings are bytes: `$mb` or an AVP may hold compressed or
/// encrypted data (no UTF-8 requirement).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Str(Cow<'a, [u8]>),
}

impl<'a> Value<'a> {
    pub fn str(s: &'a [u8]) -> Value<'a> {
        Value::Str(Cow::Borrowed(s))
    }

    pub fn owned(s: Vec<u8>) -> Value<'static> {
        Value::Str(Cow::Owned(s))
    }

    /// A copy that owns its bytes (for storing in a variable).
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Int(i) => Value::Int(i),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
        }
    }

    /// Borrows this value for a shorter lifetime without copying.
    pub fn as_ref(&self) -> Value<'_> {
        match self {
            Value::Null => Value::Null,
            Value::Int(i) => Value::Int(*i),
            Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Truth as an operand of `!`, `&&`, `||`: a non-zero integer reading
    /// ([`Value::to_int`]), so `"abc"` and `"0"` are false, as in Kamailio.
    pub fn is_true(&self) -> bool {
        self.to_int() != 0
    }

    /// Truth of an `if`/`while` condition: Kamailio takes the branch when the
    /// integer reading is positive (`if (-1)` is false).
    pub fn is_taken(&self) -> bool {
        self.to_int() > 0
    }

    /// The integer reading of the value, as Kamailio 5.6 converts: a string
    /// that is entirely an optionally signed decimal number, anything else
    /// (`"12abc"`, `" 5"`, `""`) is 0; `$null` is 0.
    pub fn to_int(&self) -> i64 {
        match self {
            Value::Null => 0,
            Value::Int(i) => *i,
            Value::Str(s) => parse_int_exact(s).unwrap_or(0),
        }
    }

    /// The integer value of a string that is entirely a number, else `None`.
    pub fn as_exact_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Str(s) => parse_int_exact(s),
            Value::Null => None,
        }
    }

    /// Appends the printed form to `out` (`$null` prints `<null>` as Kamailio does).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"<null>"),
            Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
            Value::Str(s) => out.extend_from_slice(s),
        }
    }

    /// The string reading: borrowed when already a string.
    pub fn to_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Value::Str(s) => Cow::Borrowed(s.as_ref()),
            Value::Int(i) => Cow::Owned(itoa::Buffer::new().format(*i).as_bytes().to_vec()),
            Value::Null => Cow::Borrowed(b""),
        }
    }
}

impl<'a> From<Cow<'a, [u8]>> for Value<'a> {
    fn from(s: Cow<'a, [u8]>) -> Value<'a> {
        Value::Str(s)
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("<null>"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(&String::from_utf8_lossy(s)),
        }
    }
}

fn parse_int_prefix(s: &[u8]) -> Option<i64> {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let mut n: i64 = 0;
    for d in &digits[..end] {
        n = n.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -n } else { n })
}

fn parse_int_exact(s: &[u8]) -> Option<i64> {
    let body = match s.first() {
        Some(b'-') | Some(b'+') => &s[1..],
        _ => s,
    };
    if body.is_empty() || !body.iter().all(u8::is_ascii_digit) {
        return None;
    }
    parse_int_prefix(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_readings() {
        // Kamailio 5.6: (int)"12abc" and 1 + " 5" read 0 (side by side).
        assert_eq!(Value::str(b"12abc").to_int(), 0);
        assert_eq!(Value::str(b" 5").to_int(), 0);
        assert_eq!(Value::str(b"+5").to_int(), 5);
        assert_eq!(Value::str(b"-7").to_int(), -7);
        assert_eq!(Value::str(b"x").to_int(), 0);
        assert_eq!(Value::str(b"99999999999999999999").to_int(), 0);
        assert_eq!(Value::str(b"12").as_exact_int(), Some(12));
        assert_eq!(Value::str(b"12a").as_exact_int(), None);
        assert_eq!(Value::str(b"-").as_exact_int(), None);
    }

    #[test]
    fn printing_and_truth() {
        let mut out = Vec::new();
        Value::Null.write_to(&mut out);
        Value::Int(-3).write_to(&mut out);
        Value::str(b"x").write_to(&mut out);
        assert_eq!(out, b"<null>-3x");
        assert!(!Value::Null.is_true());
        assert!(!Value::Int(0).is_true());
        assert!(Value::Int(-1).is_true());
        assert!(!Value::str(b"").is_true());
        assert!(!Value::str(b"abc").is_true());
        assert!(!Value::str(b"0").is_true());
        assert!(Value::str(b"12").is_true());
        assert!(!Value::Int(-1).is_taken());
        assert!(Value::str(b"3").is_taken());
    }
}
