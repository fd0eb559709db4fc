//! jsonrpcs's script side: `jsonrpc_dispatch()` answers a JSON-RPC request
//! that came over HTTP (in `event_route[xhttp:request]`), and
//! `jsonrpc_exec(cmd)` runs one from the script, its answer then in
//! `$jsonrpl(code|text|body)`. Both run the control socket's methods (the
//! table in `crate::ctl`), reached through the [`RpcGate`] that start-up
//! connects; the module's parameters are in `modules::ctl`.
//!
//! Kamailio 5.6's answers, as recorded from it:
//!
//! | request | HTTP status | JSON |
//! |---|---|---|
//! | not JSON (empty, cut) | none sent | — |
//! | a method's result | `200 OK` | `{"jsonrpc":"2.0","result":R,"id":ID}` |
//! | no such method | `500 Method Not Found` | `"error":{"code":500,"message":"Method Not Found"}` |
//! | a method's fault (code C, text T) | `C T` | `"error":{"code":C,"message":"T"}` |
//! | no or another `jsonrpc`, no `method`, `params` not a list or object, a batch | `200 OK` | `"result":{}` |
//!
//! `id` is echoed when present: a string as a string, anything else as a
//! number (`null` is 0). Member names are matched in any case. A request
//! without `id` is answered too. What follows the first JSON value is not
//! read. Batches are not run (Kamailio 5.6 does not either).
//!
//! ringsip's methods fail with JSON-RPC codes (-32602…); an HTTP answer
//! needs a status, so a code outside 100..=699 becomes 400 for invalid
//! parameters and 500 for the others, in the status and the JSON alike.

pub mod print;

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::script::ctx::MsgCtx;
use crate::script::registry::{func, Arg, Args, FunctionDef, ModParams, RouteMask};
use crate::script::value::Value as PvValue;

/// A method's failure: the code and text of Kamailio's `rpc->fault()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcFault {
    pub code: i64,
    pub message: String,
}

/// The control methods as the script reaches them (`crate::ctl` implements it).
pub trait RpcMethods: Send + Sync {
    /// Runs `method` with positional `params`; `None` when there is no such method.
    fn call(&self, method: &str, params: Vec<Value>) -> Option<Result<Value, RpcFault>>;
}

/// Where the workers find the control methods. It is made with the other
/// module state, before the control plane exists, and connected once that
/// is built (just after the workers start); it holds the control plane
/// weakly (the control plane holds the module state). A request that comes
/// in the moment between waits for the connection, a few seconds at most.
#[derive(Default)]
pub struct RpcGate {
    methods: Mutex<Option<Weak<dyn RpcMethods>>>,
    connected: Condvar,
}

/// How long a request waits for the control plane at start-up.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

impl RpcGate {
    /// Connects the methods (the first call wins).
    pub fn connect(&self, methods: Weak<dyn RpcMethods>) {
        let mut slot = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(methods);
            self.connected.notify_all();
        }
    }

    pub fn methods(&self) -> Option<Arc<dyn RpcMethods>> {
        let slot = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        let (slot, _) = self
            .connected
            .wait_timeout_while(slot, CONNECT_WAIT, |m| m.is_none())
            .unwrap_or_else(|e| e.into_inner());
        slot.as_ref()?.upgrade()
    }
}

/// One answer: HTTP status and reason, and the JSON text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub code: u16,
    pub text: String,
    pub body: String,
}

/// `$jsonrpl`: the last answer of `jsonrpc_exec()` on this core.
pub type PlainReply = Option<Answer>;

/// The answer to the JSON-RPC `request`, `None` when it is not JSON.
pub fn answer(methods: Option<&dyn RpcMethods>, request: &[u8], pretty: bool) -> Option<Answer> {
    let root = serde_json::Deserializer::from_slice(request)
        .into_iter::<Value>()
        .next()?
        .ok()?;
    let mut reply = Map::new();
    reply.insert("jsonrpc".into(), Value::from("2.0"));
    let (code, text) = match run(methods, &root) {
        Ok(result) => {
            reply.insert("result".into(), result);
            (200, "OK".to_string())
        }
        Err(fault) => {
            let code = http_code(fault.code);
            let mut error = Map::new();
            error.insert("code".into(), Value::from(code));
            error.insert("message".into(), Value::from(fault.message.clone()));
            reply.insert("error".into(), Value::Object(error));
            (code, fault.message)
        }
    };
    if let Some(id) = member(&root, "id") {
        let id = match id {
            Value::String(s) => Value::from(s.as_str()),
            Value::Number(n) => Value::from(n.as_f64().unwrap_or(0.0)),
            Value::Bool(b) => Value::from(u8::from(*b)),
            _ => Value::from(0),
        };
        reply.insert("id".into(), id);
    }
    Some(Answer {
        code,
        text: reason_phrase(&text),
        body: print::print(&Value::Object(reply), pretty),
    })
}

/// The result of the request, or its fault; a request Kamailio does not
/// run gets an empty result.
fn run(methods: Option<&dyn RpcMethods>, root: &Value) -> Result<Value, RpcFault> {
    let empty = Ok(Value::Object(Map::new()));
    if member(root, "jsonrpc").and_then(Value::as_str) != Some("2.0") {
        log::error!("jsonrpc: missing or invalid jsonrpc field in request");
        return empty;
    }
    let Some(method) = member(root, "method").and_then(Value::as_str) else {
        log::error!("jsonrpc: missing or invalid method field in request");
        return empty;
    };
    let params = match member(root, "params") {
        None => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(o)) => o.values().cloned().collect(),
        Some(_) => {
            log::error!("jsonrpc: params field is not an array or object");
            return empty;
        }
    };
    match methods.and_then(|m| m.call(method, params)) {
        Some(result) => result,
        None => {
            log::error!("jsonrpc: method callback not found [{method}]");
            Err(RpcFault {
                code: 500,
                message: "Method Not Found".into(),
            })
        }
    }
}

/// A member of an object, its name in any case (srjson's lookup).
fn member<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The HTTP status for a fault code (see the module notes).
fn http_code(code: i64) -> u16 {
    match code {
        100..=699 => code as u16,
        -32602 => 400,
        _ => 500,
    }
}

/// A fault text fit for a status line: one line, not empty.
fn reason_phrase(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match line.trim() {
        "" => "Error".to_string(),
        t => t.to_string(),
    }
}

pub static FUNCTIONS: &[FunctionDef] = &[
    func(
        "jsonrpc_dispatch",
        0,
        0,
        RouteMask::REQUEST.or(RouteMask::EVENT),
        Some(fixup_pretty),
        dispatch,
    ),
    func(
        "jsonrpc_exec",
        1,
        1,
        RouteMask::ANY,
        Some(fixup_pretty),
        exec,
    ),
];

/// Appends `pretty_format` to the arguments (read once, at start-up).
fn fixup_pretty(args: &mut Args, mp: &ModParams) -> Result<(), String> {
    let pretty = mp.int("jsonrpcs", "pretty_format").unwrap_or(0);
    args.0.push(Arg::Int(pretty));
    Ok(())
}

fn pretty(args: &Args) -> bool {
    matches!(args.0.last(), Some(Arg::Int(p)) if *p != 0)
}

fn methods(ctx: &MsgCtx<'_>) -> Option<Arc<dyn RpcMethods>> {
    ctx.env.services.get::<RpcGate>()?.methods()
}

/// `jsonrpc_dispatch()`: answers the HTTP request's JSON-RPC body.
fn dispatch(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    if !ctx.msg.is_http() {
        log::debug!("jsonrpc_dispatch: not an HTTP request");
        return -1;
    }
    let methods = methods(ctx);
    let Some(a) = answer(methods.as_deref(), ctx.msg.body(), pretty(args)) else {
        log::error!(
            "jsonrpc_dispatch: invalid json doc [[{}]]",
            String::from_utf8_lossy(ctx.msg.body())
        );
        return -1;
    };
    crate::modules::xhttp::send_reply(
        ctx,
        a.code,
        a.text.as_bytes(),
        b"application/json",
        a.body.as_bytes(),
    )
}

/// `jsonrpc_exec(cmd)`: runs the JSON-RPC request `cmd`; the answer goes
/// to `$jsonrpl`.
fn exec(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let cmd = args.str(ctx, 0).into_owned();
    if cmd.is_empty() {
        log::error!("jsonrpc_exec: cannot get the rpc command parameter");
        return -1;
    }
    let methods = methods(ctx);
    match answer(methods.as_deref(), &cmd, pretty(args)) {
        Some(a) => {
            ctx.core.jsonrpl = Some(a);
            1
        }
        None => {
            log::error!(
                "jsonrpc_exec: invalid json doc [[{}]]",
                String::from_utf8_lossy(&cmd)
            );
            -1
        }
    }
}

/// What `$jsonrpl(...)` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Code,
    Text,
    Body,
}

/// The field `$jsonrpl(name)` names.
pub fn resolve(name: &str) -> Result<Field, String> {
    match name {
        "code" => Ok(Field::Code),
        "text" => Ok(Field::Text),
        "body" => Ok(Field::Body),
        other => Err(format!("unknown $jsonrpl({other}): use code, text or body")),
    }
}

/// `$jsonrpl(code|text|body)` after `jsonrpc_exec()` (code 0 and the
/// others `$null` before any).
pub fn read_jsonrpl(ctx: &MsgCtx<'_>, field: Field) -> PvValue<'static> {
    let Some(a) = &ctx.core.jsonrpl else {
        return match field {
            Field::Code => PvValue::Int(0),
            _ => PvValue::Null,
        };
    };
    match field {
        Field::Code => PvValue::Int(i64::from(a.code)),
        Field::Text => PvValue::owned(a.text.clone().into_bytes()),
        Field::Body => PvValue::owned(a.body.clone().into_bytes()),
    }
}

#[cfg(test)]
mod tests;
