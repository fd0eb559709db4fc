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
        help: "The domains with their ids, then each id with its attribute names.",
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

/// Kamailio's dump: one `{domain, did}` per domain in hash order, then one
/// `{did, attr…}` per did with attributes. Kamailio repeats the `attr` key
/// for each attribute; JSON objects here hold one key once, so several
/// attributes come as an array of names. One entry is the result itself,
/// several an array, none an empty object (as jsonrpcs answers).
pub fn dump_value(t: &DomainTable) -> Value {
    let mut items: Vec<Value> = t
        .entries()
        .map(|e| json!({"domain": e.domain, "did": e.did}))
        .collect();
    for d in t.dids() {
        let names: Vec<&str> = d.attrs.iter().map(|a| a.name.as_str()).collect();
        let attr = match names.as_slice() {
            [one] => json!(one),
            many => json!(many),
        };
        items.push(json!({"did": d.did, "attr": attr}));
    }
    match items.len() {
        0 => json!({}),
        1 => items.remove(0),
        _ => Value::Array(items),
    }
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
        let t = DomainTable::build(
            &[
                vec![s("d1"), s("a"), SqlValue::Int(2), s("x")],
                vec![s("d1"), s("b"), SqlValue::Int(0), s("1")],
            ],
            &[vec![s("example.com"), s("d1")]],
        )
        .unwrap();
        assert_eq!(
            dump_value(&t),
            json!([{"domain": "example.com", "did": "d1"}, {"did": "d1", "attr": ["b", "a"]}])
        );
        let one = DomainTable::build(&[], &[vec![s("example.com"), SqlValue::Null]]).unwrap();
        assert_eq!(
            dump_value(&one),
            json!({"domain": "example.com", "did": "example.com"})
        );
        assert_eq!(dump_value(&DomainTable::default()), json!({}));
    }
}
