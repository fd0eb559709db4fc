//! User location and permissions methods: `ul.dump`, `ul.lookup`, `ul.rm`,
//! `permissions.addressReload`, and the `usrloc:` statistics. They work on
//! the same shared tables the workers use (`Ctl::services`).

use std::sync::Arc;

use serde_json::{json, Value};

use super::methods::{unix_now, Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::permissions::Permissions;
use crate::modules::usrloc::{Domain, Ucontact, Usrloc};

pub static METHODS: &[Method] = &[
    Method {
        name: "ul.dump",
        help: "Every location table with its AoRs and contacts.",
        call: dump,
    },
    Method {
        name: "ul.lookup",
        help: "ul.lookup TABLE AOR: the contacts of one AoR.",
        call: lookup,
    },
    Method {
        name: "ul.rm",
        help: "ul.rm TABLE AOR: remove every contact of an AoR.",
        call: rm,
    },
    Method {
        name: "permissions.addressReload",
        help: "Read the address table again.",
        call: address_reload,
    },
];

fn usrloc(ctl: &Ctl) -> Result<&Usrloc, RpcError> {
    ctl.services
        .get::<Usrloc>()
        .ok_or_else(|| RpcError::failed("usrloc is not loaded"))
}

fn contact_value(c: &Ucontact, now: i64) -> Value {
    let expires = match c.expires {
        0 => json!("permanent"),
        e => json!(e - now),
    };
    json!({"Contact": {
        "Address": &*c.contact,
        "Expires": expires,
        "Q": if c.q < 0 { json!(-1) } else { json!(f64::from(c.q) / 1000.0) },
        "Call-ID": &*c.callid,
        "CSeq": c.cseq,
        "User-Agent": c.user_agent.as_deref(),
        "Received": c.received.as_deref(),
        "Path": c.path.as_deref(),
        "Socket": c.socket.as_deref(),
        "Instance": c.instance.as_deref(),
        "Reg-Id": c.reg_id,
        "Flags": c.flags,
        "CFlags": c.cflags,
        "Methods": c.methods,
        "Ruid": &*c.ruid,
        "Last-Modified": c.last_modified,
    }})
}

fn dump(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let ul = usrloc(ctl)?;
    let now = unix_now() as i64;
    let mut domains = Vec::new();
    for dom in ul.domains() {
        // Listed slot by slot of Kamailio's hash table (core_hash of the
        // AoR), as its ul.dump walks it; "Max-Slots" is the fullest slot.
        let size = dom.size() as u32;
        let mut aors = Vec::new();
        dom.for_each(|aor, rec| {
            let contacts: Vec<Value> = rec.valid(now).map(|c| contact_value(c, now)).collect();
            if !contacts.is_empty() {
                let slot = crate::modules::cfgutils::core_hash(aor.as_bytes(), b"", size);
                aors.push((slot, json!({"Info": {"AoR": aor, "Contacts": contacts}})));
            }
        });
        aors.sort_by_key(|(slot, _)| *slot);
        let records = aors.len();
        let max_slots = aors
            .chunk_by(|a, b| a.0 == b.0)
            .map(<[_]>::len)
            .max()
            .unwrap_or(0);
        domains.push(json!({"Domain": {
            "Domain": dom.name(),
            "Size": size,
            "AoRs": aors.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "Stats": {"Records": records, "Max-Slots": max_slots},
        }}));
    }
    Ok(json!({"Domains": domains}))
}

fn table_and_aor(ctl: &Ctl, p: &Params) -> Result<(Arc<Domain>, String), RpcError> {
    let table = p.need_text(0, "table")?;
    let aor = p.need_text(1, "AoR")?;
    let ul = usrloc(ctl)?;
    let dom = ul
        .domain(table.as_bytes())
        .ok_or_else(|| RpcError::failed(format!("no location table {table}")))?;
    let case_sensitive = ctl
        .services
        .get::<crate::modules::registrar::Registrar>()
        .is_some_and(|r| r.params.case_sensitive);
    let aor = fix_aor(&aor, ul.params.use_domain, case_sensitive)
        .ok_or_else(|| RpcError::new(500, "Domain missing in AOR"))?;
    Ok((dom, aor))
}

/// An AoR given to a `ul.*` method as Kamailio reads it: with `use_domain`
/// it must have `@domain`, without it a `@domain` is dropped; lower case
/// unless the registrar's `case_sensitive`.
fn fix_aor(aor: &str, use_domain: bool, case_sensitive: bool) -> Option<String> {
    let aor = match (aor.split_once('@'), use_domain) {
        (None, true) => return None,
        (Some((user, _)), false) => user,
        _ => aor,
    };
    Some(if case_sensitive {
        aor.to_string()
    } else {
        aor.to_ascii_lowercase()
    })
}

fn lookup(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let (dom, aor) = table_and_aor(ctl, p)?;
    let now = unix_now() as i64;
    let contacts = usrloc(ctl)?
        .read(&dom, &aor, |rec| {
            rec.map(|r| {
                r.valid(now)
                    .map(|c| contact_value(c, now))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        })
        .map_err(|e| RpcError::failed(e.to_string()))?;
    if contacts.is_empty() {
        return Err(RpcError::failed(format!("AoR not found: {aor}")));
    }
    Ok(json!({"AoR": aor, "Contacts": contacts}))
}

fn rm(ctl: &Ctl, p: &Params) -> Result<Value, RpcError> {
    let (dom, aor) = table_and_aor(ctl, p)?;
    let removed = usrloc(ctl)?
        .update(&dom, &aor, |rec| {
            let n = rec.contacts.len();
            while !rec.contacts.is_empty() {
                rec.remove(0);
            }
            n
        })
        .map_err(|e| RpcError::failed(e.to_string()))?;
    if removed == 0 {
        return Err(RpcError::failed(format!("AoR not found: {aor}")));
    }
    Ok(json!("ok"))
}

fn address_reload(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    let perms = ctl.services.get::<Permissions>().ok_or_else(|| {
        RpcError::failed("permissions is not loaded with a db_url or address_file")
    })?;
    let n = perms.reload().map_err(RpcError::failed)?;
    Ok(json!({"entries": n}))
}

/// `usrloc:registered_users` and, per table, `usrloc:TABLE-users` / `-contacts`.
pub fn statistics(ctl: &Ctl) -> Vec<(&'static str, String, u64)> {
    let Some(ul) = ctl.services.get::<Usrloc>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut users = 0;
    for dom in ul.domains() {
        let (aors, contacts) = dom.counts();
        users += aors as u64;
        out.push(("usrloc", format!("{}-users", dom.name()), aors as u64));
        out.push((
            "usrloc",
            format!("{}-contacts", dom.name()),
            contacts as u64,
        ));
    }
    out.insert(0, ("usrloc", "registered_users".to_string(), users));
    out
}

#[cfg(test)]
mod tests {
    use super::fix_aor;

    #[test]
    fn aors_of_ul_methods_follow_use_domain() {
        assert_eq!(
            fix_aor("Alice@Example.com", true, false).as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(fix_aor("alice", true, false), None);
        assert_eq!(
            fix_aor("Alice@example.com", false, false).as_deref(),
            Some("alice")
        );
        assert_eq!(fix_aor("Alice", false, true).as_deref(), Some("Alice"));
    }
}
