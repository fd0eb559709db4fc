//! Control-socket methods `dlg.list`, `dlg.profile_get_size` and
//! `dlg.stats_active`, as plain functions returning JSON values (the
//! JSON-RPC server in `ctl` calls them). Field names follow Kamailio's.

use serde_json::{json, Value};

use super::Dialogs;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `dlg.list`: every dialog in the table, ended ones included until they leave it.
pub fn list(d: &Dialogs) -> Value {
    let mut all = d.list();
    all.sort_by_key(|x| (x.id.entry, x.id.id));
    let items: Vec<Value> = all
        .iter()
        .map(|x| {
            let profiles: Vec<Value> = x
                .profiles
                .iter()
                .filter_map(|(p, v)| {
                    let name = &d.params.profiles.get(*p)?.name;
                    Some(json!({ name.clone(): v.as_deref().map(text).unwrap_or_default() }))
                })
                .collect();
            let vars: Vec<Value> = x
                .vars
                .iter()
                .map(|(k, v)| json!({ text(k): text(v) }))
                .collect();
            json!({
                "h_entry": x.id.entry,
                "h_id": x.id.id,
                "call-id": text(&x.callid),
                "from_uri": text(&x.from_uri),
                "to_uri": text(&x.to_uri),
                "state": x.state as i64,
                "start_ts": x.start_ts,
                "init_ts": x.init_ts,
                "timeout": x.timeout,
                "lifetime": x.timeout,
                "sflags": x.flags,
                "caller": { "tag": text(&x.from_tag) },
                "callee": { "tag": text(&x.to_tag) },
                "profiles": profiles,
                "variables": vars,
            })
        })
        .collect();
    Value::Array(items)
}

/// `dlg.profile_get_size profile [value]`.
pub fn profile_get_size(
    d: &Dialogs,
    profile: &str,
    value: Option<&str>,
) -> Result<Value, (i32, String)> {
    let p = d
        .profile(profile)
        .ok_or_else(|| (500, format!("no such profile: {profile}")))?;
    let size = d.profile_size(p, value.map(str::as_bytes));
    Ok(json!({ "profile": profile, "value": value.unwrap_or(""), "count": size }))
}

/// `dlg.stats_active`: dialogs not ended, by state.
pub fn stats_active(d: &Dialogs) -> Value {
    let n = d.state_counts();
    json!({
        "starting": n[0],
        "connecting": n[1],
        "answering": n[2],
        "ongoing": n[3],
        "all": n[0] + n[1] + n[2] + n[3],
    })
}
