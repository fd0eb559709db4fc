//! `ringsip ctl`: one JSON-RPC call over the control socket, and its result
//! printed as text (tables for lists of records and for `latency`).

use std::fmt::Write as _;
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

/// Why a call did not give a result.
#[derive(Debug)]
pub enum CallError {
    /// Nothing answers on the socket.
    NotRunning(String),
    /// The server answered with a JSON-RPC error.
    Rpc { code: i64, message: String },
    /// The connection broke or the answer was not JSON-RPC.
    Protocol(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NotRunning(m) | CallError::Protocol(m) => f.write_str(m),
            CallError::Rpc { code, message } => write!(f, "error {code}: {message}"),
        }
    }
}

/// The socket to use: `-s unix:PATH` (or a plain path), else the default
/// (the root default falls back to the per-user one if it is not there).
pub fn socket_path(spec: Option<&str>) -> Result<PathBuf, String> {
    match spec {
        Some(s) => super::parse_socket(s),
        None => Ok(super::default_socket()),
    }
}

/// A parameter as typed on the command line: integers are sent as numbers
/// (kamcmd's autoconversion), everything else as a string.
pub fn param(arg: &str) -> Value {
    match arg.parse::<i64>() {
        Ok(n) => json!(n),
        Err(_) => json!(arg),
    }
}

/// Calls `method` and returns its result.
pub fn call(socket: &Path, method: &str, params: &[Value]) -> Result<Value, CallError> {
    let conn = UnixStream::connect(socket).map_err(|e| {
        CallError::NotRunning(format!(
            "cannot connect to the control socket {}: {e} (is ringsip running? give its socket with -s unix:PATH)",
            socket.display()
        ))
    })?;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
    let mut w = &conn;
    let mut text = serde_json::to_vec(&request).map_err(|e| CallError::Protocol(e.to_string()))?;
    text.push(b'\n');
    w.write_all(&text)
        .map_err(|e| CallError::Protocol(format!("sending the request: {e}")))?;
    let mut values =
        serde_json::Deserializer::from_reader(BufReader::new(&conn)).into_iter::<Value>();
    let answer = match values.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(CallError::Protocol(format!("reading the answer: {e}"))),
        None => {
            return Err(CallError::Protocol(
                "the server closed the connection".into(),
            ))
        }
    };
    if let Some(err) = answer.get("error") {
        return Err(CallError::Rpc {
            code: err["code"].as_i64().unwrap_or(0),
            message: err["message"].as_str().unwrap_or("").to_string(),
        });
    }
    answer
        .get("result")
        .cloned()
        .ok_or_else(|| CallError::Protocol(format!("not a JSON-RPC answer: {answer}")))
}

/// The result as text for people.
pub fn render(method: &str, v: &Value) -> String {
    if method == "latency" && v.get("by_message").is_some() {
        return render_latency(v);
    }
    let mut out = String::new();
    render_value(&mut out, v, 0);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn render_value(out: &mut String, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Array(items) if items.is_empty() => {
            let _ = writeln!(out, "{pad}(none)");
        }
        Value::Array(items) if items.iter().all(is_flat_object) => {
            let rows: Vec<Vec<(String, String)>> = items
                .iter()
                .filter_map(Value::as_object)
                .map(|o| o.iter().map(|(k, v)| (k.clone(), scalar(v))).collect())
                .collect();
            let head: Vec<String> = rows[0].iter().map(|(k, _)| k.clone()).collect();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    head.iter()
                        .map(|h| {
                            r.iter()
                                .find(|(k, _)| k == h)
                                .map_or("-".into(), |(_, v)| v.clone())
                        })
                        .collect()
                })
                .collect();
            table(out, &pad, &head, &cells);
        }
        Value::Array(items) => {
            for item in items {
                if is_scalar(item) {
                    let _ = writeln!(out, "{pad}{}", scalar(item));
                } else {
                    render_value(out, item, indent);
                }
            }
        }
        Value::Object(map) => {
            let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
            for (k, item) in map {
                if is_scalar(item) {
                    let _ = writeln!(out, "{pad}{k:<width$}  {}", scalar(item));
                } else {
                    let _ = writeln!(out, "{pad}{k}:");
                    render_value(out, item, indent + 2);
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other));
        }
    }
}

fn is_flat_object(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|o| !o.is_empty() && o.values().all(is_scalar))
}

fn table(out: &mut String, pad: &str, head: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |out: &mut String, cells: &[String]| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| match i {
                0 => format!("{c:<w$}"),
                _ => format!("{c:>w$}"),
            })
            .collect();
        let _ = writeln!(out, "{pad}{}", text.join("  ").trim_end());
    };
    line(out, head);
    for r in rows {
        line(out, r);
    }
}

/// Nanoseconds as µs with one decimal.
fn micros(v: &Value) -> String {
    match v.as_u64() {
        Some(ns) => format!("{:.1}", ns as f64 / 1000.0),
        None => "-".into(),
    }
}

/// The `latency` result as two tables (µs).
pub fn render_latency(v: &Value) -> String {
    let head: Vec<String> = ["", "count", "p50", "p90", "p99", "p99.9", "max", "mean"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let row = |r: &Value| -> Vec<String> {
        vec![
            scalar(&r["name"]),
            scalar(&r["count"]),
            micros(&r["p50_ns"]),
            micros(&r["p90_ns"]),
            micros(&r["p99_ns"]),
            micros(&r["p999_ns"]),
            micros(&r["max_ns"]),
            micros(&r["mean_ns"]),
        ]
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "arrival → sent (µs), by received message, all cores merged"
    );
    let mut rows: Vec<Vec<String>> = v["by_message"]
        .as_array()
        .map(|a| a.iter().map(row).collect())
        .unwrap_or_default();
    rows.push(row(&v["total"]));
    let mut h = head.clone();
    h[0] = "message".into();
    table(&mut out, "  ", &h, &rows);
    let sample = v["script_sample"].as_u64().unwrap_or(0);
    let _ = writeln!(
        out,
        "\nscript execution (µs), by route, one message in {sample} timed"
    );
    let rows: Vec<Vec<String>> = v["script_by_route"]
        .as_array()
        .map(|a| a.iter().map(row).collect())
        .unwrap_or_default();
    let mut h = head;
    h[0] = "route".into();
    if rows.is_empty() {
        let _ = writeln!(out, "  (none)");
    } else {
        table(&mut out, "  ", &h, &rows);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tables_and_objects() {
        let v = json!([{"IDX": 0, "DSC": "worker 0"}, {"IDX": 1, "DSC": "worker 1"}]);
        let text = render("core.psx", &v);
        assert_eq!(text, "IDX       DSC\n0    worker 0\n1    worker 1\n");
        let text = render("x", &json!({"a": 1, "b": {"c": "d"}}));
        assert_eq!(text, "a  1\nb:\n  c  d\n");
        assert_eq!(render("x", &json!(["a = 1", "b = 2"])), "a = 1\nb = 2\n");
        assert_eq!(param("3"), json!(3));
        assert_eq!(param("core.debug"), json!("core.debug"));
    }

    #[test]
    fn renders_latency() {
        let row = json!({"name": "INVITE", "count": 3, "p50_ns": 12_000, "p90_ns": 15_000,
            "p99_ns": 20_000, "p999_ns": 20_000, "max_ns": 20_100, "mean_ns": 13_000});
        let mut total = row.clone();
        total["name"] = json!("all");
        let v = json!({"by_message": [row], "total": total, "script_by_route": [], "script_sample": 16});
        let text = render("latency", &v);
        assert!(
            text.contains("INVITE       3  12.0  15.0  20.0   20.0  20.1  13.0"),
            "{text}"
        );
        assert!(text.contains("one message in 16"));
    }
}
