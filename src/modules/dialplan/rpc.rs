//! The control-socket methods `dialplan.reload`, `dialplan.translate` and
//! `dialplan.dump`, as plain functions returning JSON values, with
//! Kamailio's faults (code, message).

use serde_json::{json, Value};

use super::rules::NoMessage;
use super::Dialplan;

/// A JSON-RPC fault.
pub type Fault = (i32, String);

fn fault(message: &str) -> Fault {
    (500, message.to_string())
}

/// `dialplan.reload`, at `now` (Unix seconds): refused within
/// `reload_delta` seconds of the last one; a table that fails to load
/// leaves the rules in force.
pub fn reload(d: &Dialplan, now: u64) -> Result<Value, Fault> {
    {
        let mut last = d.last_reload.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t + d.reload_delta > now) {
            log::error!("dialplan: ongoing reload");
            return Err(fault("ongoing reload"));
        }
        *last = Some(now);
    }
    match d.reload() {
        // Kamailio answers an empty structure.
        Ok(_) => Ok(json!({})),
        Err(e) => {
            log::error!("{e}");
            Err(fault("Dialplan Reload Failed"))
        }
    }
}

/// `dialplan.translate <dpid> <input>`: `{Output, Attributes}`. There is no
/// message: variables in replacements add nothing.
pub fn translate(d: &Dialplan, dpid: i64, input: &str) -> Result<Value, Fault> {
    let rules = d.rules();
    let set = rules
        .set(dpid)
        .ok_or_else(|| fault("Dialplan ID not matched"))?;
    if input.is_empty() {
        return Err(fault("Empty input parameter"));
    }
    let t = set
        .translate(input.as_bytes(), true, &NoMessage)
        .ok_or_else(|| fault("No translation"))?;
    Ok(json!({
        "Output": String::from_utf8_lossy(&t.output.unwrap_or_default()),
        "Attributes": t.attrs,
    }))
}

/// Text as Kamailio's dump shows it: an empty one is null.
fn text(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

/// `dialplan.dump <dpid>`: the rules of one id, by match length then
/// priority, each wrapped as `{"ENTRY": {…}}`.
pub fn dump(d: &Dialplan, dpid: i64) -> Result<Value, Fault> {
    let rules = d.rules();
    let set = rules
        .set(dpid)
        .ok_or_else(|| fault("Dialplan ID not matched"))?;
    let entries: Vec<Value> = set
        .indexes
        .iter()
        .flat_map(|ix| &ix.rules)
        .map(|r| {
            json!({ "ENTRY": {
                "PRIO": r.pr,
                "MATCHOP": r.match_op,
                "MATCHEXP": text(&r.match_exp),
                "MATCHLEN": r.match_len,
                "SUBSTEXP": text(&r.subst_exp),
                "REPLEXP": text(&r.repl_exp),
                "ATTRS": text(&r.attrs),
            }})
        })
        .collect();
    Ok(json!({ "DPID": dpid, "ENTRIES": entries }))
}
