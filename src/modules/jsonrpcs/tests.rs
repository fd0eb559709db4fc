//! jsonrpcs's answers, against what Kamailio 5.6.3 answered (recorded with
//! `pretty_format` 0 unless said).

use serde_json::{json, Value};

use super::*;

struct Methods;

impl RpcMethods for Methods {
    fn call(&self, method: &str, params: Vec<Value>) -> Option<Result<Value, RpcFault>> {
        match method {
            "core.echo" => Some(Ok(Value::Array(params))),
            "core.version" => Some(Ok(json!("v"))),
            "fails.params" => Some(Err(RpcFault {
                code: -32602,
                message: "parameter 1 (aor) is missing".into(),
            })),
            "fails.404" => Some(Err(RpcFault {
                code: 404,
                message: "AOR\r\nnot found".into(),
            })),
            _ => None,
        }
    }
}

fn ask(request: &str) -> Option<Answer> {
    answer(Some(&Methods), request.as_bytes(), false)
}

fn ok(body: &str) -> Option<Answer> {
    Some(Answer {
        code: 200,
        text: "OK".into(),
        body: body.into(),
    })
}

#[test]
fn results_and_ids() {
    assert_eq!(
        ask(r#"{"jsonrpc":"2.0","method":"core.echo","params":["a",1],"id":7}"#),
        ok(r#"{"jsonrpc":"2.0","result":["a",1],"id":7}"#)
    );
    // Object params are taken in order; names in any case; a string id stays one.
    assert_eq!(
        ask(r#"{"JSONRPC":"2.0","Method":"core.echo","params":{"x":"b","y":2},"ID":"s"}"#),
        ok(r#"{"jsonrpc":"2.0","result":["b",2],"id":"s"}"#)
    );
    // No id: answered, without one. null, a fraction, a boolean.
    assert_eq!(
        ask(r#"{"jsonrpc":"2.0","method":"core.version"}"#),
        ok(r#"{"jsonrpc":"2.0","result":"v"}"#)
    );
    assert_eq!(
        ask(r#"{"jsonrpc":"2.0","method":"core.version","id":null}"#),
        ok(r#"{"jsonrpc":"2.0","result":"v","id":0}"#)
    );
    assert_eq!(
        ask(r#"{"jsonrpc":"2.0","method":"core.version","id":2.5}"#),
        ok(r#"{"jsonrpc":"2.0","result":"v","id":2.500000}"#)
    );
    // What follows the first value is not read.
    assert_eq!(
        ask(r#"{"jsonrpc":"2.0","method":"core.version","id":1}  trailing"#),
        ok(r#"{"jsonrpc":"2.0","result":"v","id":1}"#)
    );
}

#[test]
fn requests_kamailio_does_not_run_get_an_empty_result() {
    for (req, want) in [
        (
            r#"{"method":"core.version","id":"s"}"#,
            r#"{"jsonrpc":"2.0","result":{},"id":"s"}"#,
        ),
        (
            r#"{"jsonrpc":"1.0","method":"core.version","id":1}"#,
            r#"{"jsonrpc":"2.0","result":{},"id":1}"#,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","result":{},"id":1}"#,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"core.version","params":5,"id":1}"#,
            r#"{"jsonrpc":"2.0","result":{},"id":1}"#,
        ),
        (
            r#"[{"jsonrpc":"2.0","method":"core.version","id":1}]"#,
            r#"{"jsonrpc":"2.0","result":{}}"#,
        ),
    ] {
        assert_eq!(ask(req), ok(want), "{req}");
    }
}

#[test]
fn faults() {
    assert_eq!(
        ask(r#"{"jsonrpc":"2.0","method":"ul.lookup","id":"x9"}"#),
        Some(Answer {
            code: 500,
            text: "Method Not Found".into(),
            body:
                r#"{"jsonrpc":"2.0","error":{"code":500,"message":"Method Not Found"},"id":"x9"}"#
                    .into(),
        })
    );
    let a = ask(r#"{"jsonrpc":"2.0","method":"fails.params","id":1}"#).unwrap();
    assert_eq!(
        (a.code, a.text.as_str()),
        (400, "parameter 1 (aor) is missing")
    );
    assert!(a.body.contains(r#""error":{"code":400,"#), "{}", a.body);
    // A fault text becomes a one-line reason phrase.
    let a = ask(r#"{"jsonrpc":"2.0","method":"fails.404","id":1}"#).unwrap();
    assert_eq!((a.code, a.text.as_str()), (404, "AOR  not found"));
    // No methods connected: every method is missing.
    let a = answer(
        None,
        br#"{"jsonrpc":"2.0","method":"core.version","id":1}"#,
        true,
    )
    .unwrap();
    assert_eq!(a.code, 500);
}

#[test]
fn not_json_is_not_answered() {
    for req in ["", "   ", r#"{"jsonrpc":"#, "nope", "\u{0}"] {
        assert_eq!(ask(req), None, "{req:?}");
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let alphabet = br#"{}[]":,0123456789.-eE truefalsnul\"jsonrpcmethodparamsid2"#;
    for _ in 0..3000 {
        let mut text = Vec::new();
        for _ in 0..(seed % 48) {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
        }
        let _ = answer(Some(&Methods), &text, seed % 2 == 0);
    }
}
