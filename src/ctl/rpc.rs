//! JSON-RPC 2.0 (https://www.jsonrpc.org/specification): one request or a
//! batch in, the responses out. Any input, however malformed, gives a
//! JSON-RPC error object, never a panic.

use serde_json::{json, Map, Value};

use super::methods::{find, Ctl};

/// Error codes of the specification.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// A method ran and failed (the range -32000..-32099 is the server's).
pub const METHOD_FAILED: i64 = -32000;

/// A failed call: code and message, as the response's `error` member.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }

    pub fn params(message: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, message)
    }

    pub fn failed(message: impl Into<String>) -> RpcError {
        RpcError::new(METHOD_FAILED, message)
    }
}

/// The positional parameters of a call (`params` as an array, or the values
/// of an object in order; absent means none).
pub struct Params(Vec<Value>);

impl Params {
    pub fn new(values: Vec<Value>) -> Params {
        Params(values)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&Value> {
        self.0.get(i)
    }

    /// Parameter `i` as text (a number is written out), if present.
    pub fn text(&self, i: usize) -> Option<String> {
        match self.0.get(i)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Parameter `i` as text, or an invalid-params error naming `what`.
    pub fn need_text(&self, i: usize, what: &str) -> Result<String, RpcError> {
        self.text(i)
            .ok_or_else(|| RpcError::params(format!("parameter {} ({what}) is missing", i + 1)))
    }

    /// Every parameter as text.
    pub fn texts(&self) -> Vec<String> {
        (0..self.0.len()).filter_map(|i| self.text(i)).collect()
    }
}

/// Handles one JSON-RPC message (request, notification or batch); None when
/// nothing is to be answered (notifications only).
pub fn handle_text(ctl: &Ctl, text: &[u8]) -> Option<Value> {
    match serde_json::from_slice::<Value>(text) {
        Ok(v) => handle_value(ctl, v),
        Err(e) => Some(error_response(
            Value::Null,
            RpcError::new(PARSE_ERROR, format!("parse error: {e}")),
        )),
    }
}

/// Handles a parsed JSON-RPC message.
pub fn handle_value(ctl: &Ctl, v: Value) -> Option<Value> {
    match v {
        Value::Array(batch) if batch.is_empty() => Some(error_response(
            Value::Null,
            RpcError::new(INVALID_REQUEST, "empty batch"),
        )),
        Value::Array(batch) => {
            let answers: Vec<Value> = batch
                .into_iter()
                .filter_map(|one| handle_one(ctl, one))
                .collect();
            (!answers.is_empty()).then_some(Value::Array(answers))
        }
        one => handle_one(ctl, one),
    }
}

fn handle_one(ctl: &Ctl, v: Value) -> Option<Value> {
    let Value::Object(mut obj) = v else {
        return Some(error_response(
            Value::Null,
            RpcError::new(INVALID_REQUEST, "a request is an object"),
        ));
    };
    // A request without "id" is a notification: run, answer nothing.
    let id = obj.remove("id");
    let answer_id = match &id {
        None => Value::Null,
        Some(v @ (Value::Null | Value::String(_) | Value::Number(_))) => v.clone(),
        Some(_) => {
            return Some(error_response(
                Value::Null,
                RpcError::new(INVALID_REQUEST, "id must be a string, number or null"),
            ))
        }
    };
    let request = parse_request(obj);
    let result = request.and_then(|(method, params)| call(ctl, &method, &params));
    id.as_ref()?;
    Some(match result {
        Ok(value) => json!({"jsonrpc": "2.0", "result": value, "id": answer_id}),
        Err(e) => error_response(answer_id, e),
    })
}

fn parse_request(mut obj: Map<String, Value>) -> Result<(String, Params), RpcError> {
    // Kamailio's kamcmd-style clients omit "jsonrpc"; accept that, refuse another version.
    match obj.get("jsonrpc") {
        None => {}
        Some(Value::String(v)) if v == "2.0" => {}
        Some(_) => return Err(RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\"")),
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(RpcError::new(INVALID_REQUEST, "method must be a string")),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(Value::Object(o)) => o.into_iter().map(|(_, v)| v).collect(),
        Some(_) => return Err(RpcError::params("params must be an array or an object")),
    };
    Ok((method, Params::new(params)))
}

/// Runs `method` from the table.
pub fn call(ctl: &Ctl, method: &str, params: &Params) -> Result<Value, RpcError> {
    match find(method) {
        Some(m) => (m.call)(ctl, params),
        None => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    }
}

/// The script's way to the same table (jsonrpcs `jsonrpc_dispatch()`,
/// `jsonrpc_exec()`), connected at start-up through the module state's
/// [`RpcGate`](crate::modules::jsonrpcs::RpcGate).
impl crate::modules::jsonrpcs::RpcMethods for Ctl {
    fn call(
        &self,
        method: &str,
        params: Vec<Value>,
    ) -> Option<Result<Value, crate::modules::jsonrpcs::RpcFault>> {
        let m = find(method)?;
        Some(
            (m.call)(self, &Params::new(params)).map_err(|e| crate::modules::jsonrpcs::RpcFault {
                code: e.code,
                message: e.message,
            }),
        )
    }
}

pub fn error_response(id: Value, e: RpcError) -> Value {
    json!({"jsonrpc": "2.0", "error": {"code": e.code, "message": e.message}, "id": id})
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctl() -> Ctl {
        Ctl::for_tests()
    }

    fn code(v: &Value) -> i64 {
        v["error"]["code"].as_i64().unwrap_or(0)
    }

    #[test]
    fn malformed_input_gives_errors() {
        let c = ctl();
        assert_eq!(code(&handle_text(&c, b"{").unwrap()), PARSE_ERROR);
        assert_eq!(code(&handle_text(&c, b"").unwrap()), PARSE_ERROR);
        assert_eq!(code(&handle_text(&c, b"\xff\xfe").unwrap()), PARSE_ERROR);
        assert_eq!(code(&handle_text(&c, b"42").unwrap()), INVALID_REQUEST);
        assert_eq!(code(&handle_text(&c, b"[]").unwrap()), INVALID_REQUEST);
        let r = handle_text(&c, br#"{"jsonrpc":"2.0","method":1,"id":1}"#).unwrap();
        assert_eq!(code(&r), INVALID_REQUEST);
        assert_eq!(r["id"], 1);
        let r = handle_text(&c, br#"{"jsonrpc":"1.0","method":"core.uptime","id":"a"}"#);
        assert_eq!(code(&r.unwrap()), INVALID_REQUEST);
        let r = handle_text(&c, br#"{"method":"core.uptime","id":[1]}"#).unwrap();
        assert_eq!(code(&r), INVALID_REQUEST);
        let r = handle_text(&c, br#"{"method":"core.uptime","params":3,"id":2}"#).unwrap();
        assert_eq!(code(&r), INVALID_PARAMS);
        let r = handle_text(&c, br#"{"jsonrpc":"2.0","method":"no.such","id":3}"#).unwrap();
        assert_eq!(code(&r), METHOD_NOT_FOUND);
        assert_eq!(r["id"], 3);
    }

    #[test]
    fn requests_notifications_and_batches() {
        let c = ctl();
        let r = handle_text(&c, br#"{"jsonrpc":"2.0","method":"core.version","id":7}"#).unwrap();
        assert_eq!(r["id"], 7);
        assert!(r["result"].as_str().unwrap().starts_with("ringsip"));
        // Notification: no answer.
        assert!(handle_text(&c, br#"{"jsonrpc":"2.0","method":"core.version"}"#).is_none());
        let r = handle_text(
            &c,
            br#"[{"jsonrpc":"2.0","method":"core.version","id":1},
                 {"jsonrpc":"2.0","method":"core.version"},
                 {"jsonrpc":"2.0","method":"nope","id":2}, 5]"#,
        )
        .unwrap();
        let a = r.as_array().unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[0]["id"], 1);
        assert_eq!(code(&a[1]), METHOD_NOT_FOUND);
        assert_eq!(code(&a[2]), INVALID_REQUEST);
    }

    #[test]
    fn echo_methods_answer_as_kamailio_does() {
        let c = ctl();
        let r = handle_text(
            &c,
            br#"{"jsonrpc":"2.0","method":"core.echo","params":["a",1,null,"b"],"id":1}"#,
        );
        assert_eq!(r.unwrap()["result"], json!(["a", "1"]));
        let r = handle_text(
            &c,
            br#"{"jsonrpc":"2.0","method":"jsonrpc.echo","params":{"a":"x","n":5},"id":1}"#,
        );
        assert_eq!(r.unwrap()["result"], json!(["x", 5]));
        // The script's way in (jsonrpcs) reaches the same table.
        use crate::modules::jsonrpcs::RpcMethods;
        assert_eq!(
            RpcMethods::call(&c, "core.echo", vec![json!("z")]),
            Some(Ok(json!(["z"])))
        );
        assert!(RpcMethods::call(&c, "no.such", vec![]).is_none());
        let fault = RpcMethods::call(&c, "ul.lookup", vec![])
            .unwrap()
            .unwrap_err();
        assert_eq!(fault.code, INVALID_PARAMS);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let c = ctl();
            let _ = handle_text(&c, &bytes);
        }

        #[test]
        fn arbitrary_methods_and_params_never_panic(
            method in prop::sample::select(super::super::methods::names()),
            params in proptest::collection::vec(
                prop_oneof![
                    Just(Value::Null),
                    any::<i64>().prop_map(Value::from),
                    "[a-z:.@0-9 ]{0,12}".prop_map(Value::from),
                    Just(json!({"x": [1]})),
                ], 0..4)
        ) {
            let c = ctl();
            let req = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
            let r = handle_value(&c, req).unwrap();
            prop_assert!(r.get("result").is_some() || r.get("error").is_some());
        }
    }
}
