//! JSON text as Kamailio's jsonrpcs writes it (its `srjson` printer, a cJSON
//! descendant), so that a client comparing bytes sees the same answer:
//!
//! - unformatted (`pretty_format` 0): no white space at all;
//! - formatted (`pretty_format` 1): an object opens with a newline, each
//!   member on its own line indented with tabs, a tab after the colon, the
//!   closing brace indented one level less; an array stays on one line, its
//!   values separated by `, `; `{}` is written `{` newline `}`;
//! - numbers: a value that is a whole number within `i32` prints as one
//!   (`%d`), another whole number as `%.0f`, a fraction as `%f` (six
//!   decimals), or `%e` when tiny or past 1e9;
//! - strings escape `"`, `\`, and the control characters (`\b \f \n \r \t`,
//!   `\u00XX` for the others); other bytes are written as they are.

use serde_json::Value;

/// `value` as text; `pretty` as `pretty_format=1` writes it.
pub fn print(value: &Value, pretty: bool) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0, pretty);
    out
}

fn write_value(out: &mut String, value: &Value, depth: usize, pretty: bool) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(if pretty { ", " } else { "," });
                }
                write_value(out, item, depth + 1, pretty);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let inner = depth + 1;
            out.push('{');
            if pretty {
                out.push('\n');
            }
            let n = members.len();
            for (i, (name, member)) in members.iter().enumerate() {
                if pretty {
                    indent(out, inner);
                }
                write_string(out, name);
                out.push(':');
                if pretty {
                    out.push('\t');
                }
                write_value(out, member, inner, pretty);
                if i + 1 != n {
                    out.push(',');
                }
                if pretty {
                    out.push('\n');
                }
            }
            if pretty {
                indent(out, depth);
            }
            out.push('}');
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    out.extend(std::iter::repeat_n('\t', depth));
}

/// A number as srjson's `print_number` writes it (C `printf` formats).
pub fn write_number(out: &mut String, d: f64) {
    use std::fmt::Write as _;
    if !d.is_finite() {
        // printf writes inf/nan; JSON has no such values.
        out.push_str(if d.is_nan() { "nan" } else { "inf" });
        return;
    }
    let whole = d.trunc();
    if (whole - d).abs() <= f64::EPSILON && d <= f64::from(i32::MAX) && d >= f64::from(i32::MIN) {
        let _ = write!(out, "{}", whole as i32);
    } else if (d.floor() - d).abs() <= f64::EPSILON {
        let _ = write!(out, "{d:.0}");
    } else if d.abs() < 1.0e-6 || d.abs() > 1.0e9 {
        write_exp(out, d);
    } else {
        let _ = write!(out, "{d:.6}");
    }
}

/// C's `%e`: one digit, six decimals, an exponent of at least two digits.
fn write_exp(out: &mut String, d: f64) {
    use std::fmt::Write as _;
    let text = format!("{d:.6e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    let _ = write!(out, "{mantissa}e{sign}{:02}", exp.abs());
}

fn write_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 32 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_as_kamailio_prints_it() {
        // Kamailio 5.6.3 `ul.dump` on an empty location table (recorded).
        let v = json!({"jsonrpc": "2.0", "result": {"Domains": [{"Domain": {
            "Domain": "location", "Size": 1024, "AoRs": [],
            "Stats": {"Records": 0, "Max-Slots": 0}}}]}, "id": 2});
        assert_eq!(
            print(&v, true),
            "{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"result\":\t{\n\t\t\"Domains\":\t[{\n\t\t\t\t\
             \"Domain\":\t{\n\t\t\t\t\t\"Domain\":\t\"location\",\n\t\t\t\t\t\"Size\":\t1024,\n\
             \t\t\t\t\t\"AoRs\":\t[],\n\t\t\t\t\t\"Stats\":\t{\n\t\t\t\t\t\t\"Records\":\t0,\n\
             \t\t\t\t\t\t\"Max-Slots\":\t0\n\t\t\t\t\t}\n\t\t\t\t}\n\t\t\t}]\n\t},\n\t\"id\":\t2\n}"
        );
        assert_eq!(
            print(&json!({"jsonrpc": "2.0", "result": {}}), true),
            "{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"result\":\t{\n\t}\n}"
        );
        assert_eq!(
            print(&json!({"result": ["a", "1"], "id": "x"}), true),
            "{\n\t\"result\":\t[\"a\", \"1\"],\n\t\"id\":\t\"x\"\n}"
        );
    }

    #[test]
    fn unformatted() {
        let v = json!({"jsonrpc": "2.0", "result": ["a", {"b": null, "c": true}], "id": 7});
        assert_eq!(
            print(&v, false),
            r#"{"jsonrpc":"2.0","result":["a",{"b":null,"c":true}],"id":7}"#
        );
    }

    #[test]
    fn numbers_as_printf_writes_them() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-5.0, "-5"),
            (2147483647.0, "2147483647"),
            (2147483648.0, "2147483648"),
            (1e15, "1000000000000000"),
            (2.5, "2.500000"),
            (-0.125, "-0.125000"),
            (1e-7, "1.000000e-07"),
            (12345678901.5, "1.234568e+10"),
        ];
        for (d, want) in cases {
            let mut s = String::new();
            write_number(&mut s, *d);
            assert_eq!(&s, want, "{d}");
        }
    }

    #[test]
    fn strings_are_escaped_like_srjson() {
        assert_eq!(
            print(&json!("a\"b\\c\n\t\u{1}/é"), false),
            "\"a\\\"b\\\\c\\n\\t\\u0001/é\""
        );
    }
}
