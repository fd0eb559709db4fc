//! The control-socket methods (KAMAILIO-REFERENCE §7.9 "RPC"), as plain
//! functions returning JSON values; the JSON-RPC server calls them. An error
//! is Kamailio's fault: (code, message).

use serde_json::{json, Value};

use super::list::Dest;
use super::{parse_state, Dispatcher};

/// A JSON-RPC fault.
pub type Fault = (i32, String);

fn dest_json(d: &Dest, short: bool, call_load: bool) -> Value {
    let mut dest = json!({
        "URI": String::from_utf8_lossy(&d.uri),
        "FLAGS": d.state_text(),
        "PRIORITY": d.priority,
    });
    let a = &d.attrs;
    if !short && !a.body.is_empty() {
        dest["ATTRS"] = json!({
            "BODY": a.body,
            "DUID": a.duid,
            "MAXLOAD": a.maxload,
            "WEIGHT": a.weight,
            "RWEIGHT": a.rweight,
            "SOCKET": a.socket,
            "SOCKNAME": a.sockname,
            "OBPROXY": a.obproxy,
        });
    }
    if call_load {
        // Kamailio shows the call load whenever `ds_hash_size` is set; no
        // call is ever counted here (algorithm 10 is refused at start-up).
        dest["RUNTIME"] = json!({ "DLGLOAD": 0 });
    }
    json!({ "DEST": dest })
}

/// `dispatcher.list [short]`.
pub fn list(d: &Dispatcher, short: bool) -> Value {
    let lists = d.lists();
    let records: Vec<Value> = lists
        .sets
        .iter()
        .map(|s| {
            let targets: Vec<Value> = s
                .dests
                .iter()
                .map(|x| dest_json(x, short, d.params.call_load_table))
                .collect();
            json!({ "SET": { "ID": s.id, "TARGETS": targets } })
        })
        .collect();
    json!({ "NRSETS": lists.sets.len(), "RECORDS": records })
}

/// `dispatcher.reload`, asked at `now` (unix seconds): refused within
/// `reload_delta` seconds of the last one, as Kamailio does.
pub fn reload(d: &Dispatcher, now: u64) -> Result<Value, Fault> {
    if !d.take_rpc_reload_turn(now) {
        log::error!("dispatcher: ongoing reload");
        return Err((500, "Ongoing reload".into()));
    }
    match d.reload() {
        Ok(_) => Ok(json!("Ok. Dispatcher successfully reloaded.")),
        Err(e) => {
            log::error!("{e}");
            Err((500, "Reload Failed".into()))
        }
    }
}

/// `dispatcher.set_state <state> <group> <uri|all>`. A group that is not a
/// number reads as 0, as Kamailio's does.
pub fn set_state(d: &Dispatcher, state: &str, group: &str, address: &str) -> Result<Value, Fault> {
    let fail = || (500, "State Update Failed".to_string());
    let state = parse_state(state.as_bytes()).ok_or_else(fail)?;
    let group = group.trim().parse::<i32>().unwrap_or(0);
    let uri = (!address.eq_ignore_ascii_case("all")).then_some(address.as_bytes());
    if d.set_state(group, uri, state) {
        Ok(json!("Ok. Dispatcher state updated."))
    } else {
        Err(fail())
    }
}
