//! `drouting.reload`: reads the drouting tables again. As Kamailio 5.6
//! answers: the text `reload ok`, or `failed to load routing data` (the
//! old data stays in force).

use serde_json::Value;

use super::methods::{Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::drouting::Drouting;

pub static METHODS: &[Method] = &[Method {
    name: "drouting.reload",
    help: "Read the drouting tables (gateways, rules, gateway lists) again.",
    call: reload,
}];

fn reload(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let d = ctl
        .services
        .get::<Drouting>()
        .ok_or_else(|| RpcError::failed("drouting is not loaded"))?;
    Ok(Value::from(match d.reload() {
        Ok(_) => "reload ok".to_string(),
        Err(e) => {
            log::error!("{e}");
            "failed to load routing data".to_string()
        }
    }))
}
