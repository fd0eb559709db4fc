//! Methods of the number-translation modules: `dialplan.reload`,
//! `dialplan.translate`, `dialplan.dump` and `regex.reload`. The state is
//! the modules' own (`Ctl::services`); the control thread reads the clock
//! (the reload guard) and the regex file.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::methods::{Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::dialplan::{rpc as dp, Dialplan};
use crate::modules::regex::PcreGroups;

pub static METHODS: &[Method] = &[
    Method {
        name: "dialplan.reload",
        help: "Read the dialplan table again (refused within reload_delta seconds of the last reload).",
        call: dp_reload,
    },
    Method {
        name: "dialplan.translate",
        help: "dialplan.translate DPID INPUT: the output and attributes of the rule that matches.",
        call: dp_translate,
    },
    Method {
        name: "dialplan.dump",
        help: "dialplan.dump DPID: the rules of one dialplan id.",
        call: dp_dump,
    },
    Method {
        name: "regex.reload",
        help: "Read the regex module's file of expression groups again.",
        call: regex_reload,
    },
];

fn dialplan(ctl: &Ctl) -> Result<&Dialplan, RpcError> {
    ctl.services
        .get::<Dialplan>()
        .ok_or_else(|| RpcError::failed("dialplan is not loaded"))
}

fn fault((code, message): (i32, String)) -> RpcError {
    RpcError::new(i64::from(code), message)
}

/// Parameter `i` as a number (JSON number or numeric text).
fn number(p: &Params, i: usize) -> Option<i64> {
    let v = p.get(i)?;
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn dp_reload(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    dp::reload(dialplan(ctl)?, now).map_err(fault)
}

fn dp_translate(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let d = dialplan(ctl)?;
    let (Some(dpid), Some(input)) = (number(p, 0), p.text(1)) else {
        return Err(RpcError::new(500, "Invalid parameters"));
    };
    dp::translate(d, dpid, &input).map_err(fault)
}

fn dp_dump(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let d = dialplan(ctl)?;
    let dpid = number(p, 0).ok_or_else(|| RpcError::new(500, "Missing parameter"))?;
    dp::dump(d, dpid).map_err(fault)
}

fn regex_reload(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let Some(groups) = ctl.services.get::<PcreGroups>() else {
        return Err(RpcError::new(500, "Group matching not enabled"));
    };
    let text = std::fs::read(&groups.file).map_err(|e| {
        log::error!("regex: could not open file '{}': {e}", groups.file);
        RpcError::new(500, "Failed to reload")
    })?;
    groups.reload(&text).map_err(|e| {
        log::error!("{e}");
        RpcError::new(500, "Failed to reload")
    })?;
    // Kamailio answers an empty structure.
    Ok(Value::Object(Default::default()))
}
