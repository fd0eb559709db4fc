//! The domain module's methods: `domain.reload` and `domain.dump`, on the
//! table the workers use (`Ctl::services`).

use serde_json::{json, Value};

use super::methods::{Ctl, Method};
use super::rpc::{Params, RpcError};
use crate::modules::domain::{DomainTable, Domains};

pub static METHODS: &[Method] = &[
    Method {
        name: "domain.reload",
        help: "Read the domain and domain_attrs tables again (a failed load keeps the old ones).",
        call: reload,
    },
    Method {
        name: "domain.dump",
        help: "The domains with their ids, and each id with the names of its attributes.",
        call: dump,
    },
];

fn domains(ctl: &Ctl) -> Result<&Domains, RpcError> {
    ctl.services
        .get::<Domains>()
        .ok_or_else(|| RpcError::failed("domain is not loaded"))
}

fn reload(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    match domains(ctl)?.reload() {
        Ok(_) => Ok(json!({})),
        Err(e) => {
            log::error!("{e}");
            Err(RpcError::new(400, "Reload of domain tables failed"))
        }
    }
}

/// Kamailio 5.6's dump (observed through its jsonrpcs): `domains`, one
/// `{domain, did}` per domain in hash order, and `attributes`, one
/// `{did, attrs}` per did with attributes (the latest new did first, each
/// one's attribute names the later rows first).
pub fn dump_value(t: &DomainTable) -> Value {
    let domains: Vec<Value> = t
        .entries()
        .map(|e| json!({"domain": e.domain, "did": e.did}))
        .collect();
    let attributes: Vec<Value> = t
        .dids()
        .iter()
        .map(|d| {
            let names: Vec<&str> = d.attrs.iter().map(|a| a.name.as_str()).collect();
            json!({"did": d.did, "attrs": names})
        })
        .collect();
    json!({"domains": domains, "attributes": attributes})
}

fn dump(ctl: &Ctl, _: &Params) -> Result<Value, RpcError> {
    Ok(dump_value(&domains(ctl)?.table()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqlValue;

    fn s(v: &str) -> SqlValue {
        SqlValue::Str(v.as_bytes().to_vec())
    }

    #[test]
    fn dump_lists_domains_then_dids_with_attributes() {
        // The rows and the answer of Kamailio 5.6 for them.
        let t = DomainTable::build(
            &[
                vec![s("A"), s("lang"), SqlValue::Int(2), s("de")],
                vec![s("A"), s("limit"), SqlValue::Int(0), s("42")],
                vec![s("X"), s("only"), SqlValue::Int(2), s("x")],
            ],
            &[
                vec![s("a.example"), s("A")],
                vec![s("b.example"), SqlValue::Null],
                vec![s("c.example"), s("A")],
            ],
        )
        .unwrap();
        assert_eq!(
            dump_value(&t),
            json!({
                "domains": [
                    {"domain": "a.example", "did": "A"},
                    {"domain": "b.example", "did": "b.example"},
                    {"domain": "c.example", "did": "A"},
                ],
                "attributes": [
                    {"did": "X", "attrs": ["only"]},
                    {"did": "A", "attrs": ["limit", "lang"]},
                ]
            })
        );
        assert_eq!(
            dump_value(&DomainTable::default()),
            json!({"domains": [], "attributes": []})
        );
    }
}
