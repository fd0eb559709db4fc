//! The domain table in memory, built from the rows of `domain` and
//! `domain_attrs` as Kamailio 5.6's domain module builds its hash table:
//! 128 buckets by `core_case_hash`, each entry put in front of its bucket
//! (so of two rows for one domain the later one is found), names compared
//! without case. Each domain id (`did`) carries the attributes of its
//! `domain_attrs` rows, the later rows first; a domain row with a NULL did
//! is its own did.

use crate::modules::cfgutils::core_case_hash;
use crate::store::SqlValue;

/// Buckets of the table (Kamailio's `DOM_HASH_SIZE`).
pub const HASH_SIZE: u32 = 128;

/// An attribute value: `type` 0 is an integer, 2 a string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrValue {
    Int(i32),
    Str(String),
}

/// One `domain_attrs` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub name: String,
    pub value: AttrValue,
}

/// A domain id and its attributes, the later rows first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DidAttrs {
    pub did: String,
    pub attrs: Vec<Attr>,
}

/// One `domain` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub domain: String,
    pub did: String,
    /// Index into [`DomainTable::dids`] of this did's attributes.
    attrs: Option<usize>,
}

/// What a lookup finds: the domain's id and attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    pub did: &'a str,
    pub attrs: &'a [Attr],
}

/// The loaded tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainTable {
    buckets: Vec<Vec<Entry>>,
    /// Domain ids with attributes, the latest new did first (as Kamailio
    /// lists them in `domain.dump`).
    dids: Vec<DidAttrs>,
}

impl Default for DomainTable {
    fn default() -> DomainTable {
        DomainTable {
            buckets: vec![Vec::new(); HASH_SIZE as usize],
            dids: Vec::new(),
        }
    }
}

fn text(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

fn int(v: &SqlValue) -> Option<i64> {
    match v {
        SqlValue::Int(i) | SqlValue::BigInt(i) => Some(*i),
        _ => None,
    }
}

impl DomainTable {
    /// From `domain_attrs` rows (`did, name, type, value`) and `domain`
    /// rows (`domain, did`); the first row Kamailio would refuse makes the
    /// whole load fail, with its reason.
    pub fn build(
        attr_rows: &[Vec<SqlValue>],
        domain_rows: &[Vec<SqlValue>],
    ) -> Result<Self, String> {
        let mut t = DomainTable::default();
        let null = SqlValue::Null;
        for (i, row) in attr_rows.iter().enumerate() {
            let col = |n: usize| row.get(n).unwrap_or(&null);
            let did = text(col(0)).ok_or(format!("did at row <{i}> is null or not string"))?;
            if did.is_empty() {
                return Err(format!("did at row <{i}> is empty string"));
            }
            let name = text(col(1)).ok_or(format!("name at row <{i}> is null or not string"))?;
            if name.is_empty() {
                return Err(format!("name at row <{i}> is empty string"));
            }
            let kind = int(col(2)).ok_or(format!("type at row <{i}> is null or not int"))?;
            let value = text(col(3)).ok_or(format!("value at row <{i}> is null or not string"))?;
            let value = match kind {
                0 => AttrValue::Int(
                    value
                        .parse()
                        .map_err(|_| format!("value at row <{i}> is invalid int"))?,
                ),
                2 => AttrValue::Str(value),
                k => return Err(format!("unknown type <{k}> at row <{i}>")),
            };
            let attr = Attr { name, value };
            match t.dids.iter_mut().find(|d| d.did.eq_ignore_ascii_case(&did)) {
                Some(d) => d.attrs.insert(0, attr),
                None => t.dids.insert(
                    0,
                    DidAttrs {
                        did,
                        attrs: vec![attr],
                    },
                ),
            }
        }
        for (i, row) in domain_rows.iter().enumerate() {
            let col = |n: usize| row.get(n).unwrap_or(&null);
            let domain =
                text(col(0)).ok_or(format!("domain at row <{i}> is null or not string"))?;
            if domain.is_empty() {
                return Err(format!("domain at row <{i}> is empty string"));
            }
            let did = match col(1) {
                SqlValue::Null => domain.clone(),
                v => {
                    let did = text(v).ok_or(format!("did at row <{i}> is not null or string"))?;
                    if did.is_empty() {
                        return Err(format!("did at row <{i}> is empty string"));
                    }
                    did
                }
            };
            let attrs = t.dids.iter().position(|d| d.did.eq_ignore_ascii_case(&did));
            let slot = core_case_hash(domain.as_bytes(), b"", HASH_SIZE) as usize;
            t.buckets[slot].insert(0, Entry { domain, did, attrs });
        }
        Ok(t)
    }

    /// The domain `host` (compared without case), if it is in the table.
    pub fn lookup(&self, host: &[u8]) -> Option<Found<'_>> {
        let slot = core_case_hash(host, b"", HASH_SIZE) as usize;
        let e = self.buckets[slot]
            .iter()
            .find(|e| e.domain.as_bytes().eq_ignore_ascii_case(host))?;
        Some(Found {
            did: &e.did,
            attrs: e.attrs.map_or(&[][..], |i| &self.dids[i].attrs),
        })
    }

    /// How many domain rows are loaded.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The domains in Kamailio's dump order (bucket by bucket).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flatten()
    }

    /// The domain ids with attributes, in Kamailio's dump order.
    pub fn dids(&self) -> &[DidAttrs] {
        &self.dids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> SqlValue {
        SqlValue::Str(v.as_bytes().to_vec())
    }

    #[test]
    fn lookup_ignores_case_and_null_did_is_the_domain() {
        let t = DomainTable::build(&[], &[vec![s("Example.COM"), SqlValue::Null]]).unwrap();
        let f = t.lookup(b"example.com").unwrap();
        assert_eq!(f.did, "Example.COM");
        assert!(f.attrs.is_empty());
        assert!(t.lookup(b"example.org").is_none());
        assert!(t.lookup(b"").is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn attributes_follow_the_did_later_rows_first() {
        let attrs = [
            vec![s("d1"), s("lang"), SqlValue::Int(2), s("de")],
            vec![s("d1"), s("limit"), SqlValue::Int(0), s("-7")],
            vec![s("D1"), s("lang"), SqlValue::Int(2), s("en")],
            vec![s("d2"), s("x"), SqlValue::Int(2), s("y")],
        ];
        let doms = [
            vec![s("a.example"), s("d1")],
            vec![s("b.example"), s("d1")],
            vec![s("c.example"), s("d3")],
        ];
        let t = DomainTable::build(&attrs, &doms).unwrap();
        let f = t.lookup(b"B.example").unwrap();
        assert_eq!(f.did, "d1");
        let got: Vec<_> = f
            .attrs
            .iter()
            .map(|a| (a.name.as_str(), a.value.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("lang", AttrValue::Str("en".into())),
                ("limit", AttrValue::Int(-7)),
                ("lang", AttrValue::Str("de".into())),
            ]
        );
        assert!(t.lookup(b"c.example").unwrap().attrs.is_empty());
        // Newest did first, as domain.dump lists them.
        assert_eq!(t.dids()[0].did, "d2");
    }

    #[test]
    fn rows_kamailio_refuses_fail_the_load() {
        let bad_attrs: [(Vec<SqlValue>, &str); 6] = [
            (
                vec![SqlValue::Null, s("n"), SqlValue::Int(2), s("v")],
                "did at row <0> is null",
            ),
            (
                vec![s(""), s("n"), SqlValue::Int(2), s("v")],
                "did at row <0> is empty",
            ),
            (
                vec![s("d"), s(""), SqlValue::Int(2), s("v")],
                "name at row <0> is empty",
            ),
            (
                vec![s("d"), s("n"), SqlValue::Int(1), s("v")],
                "unknown type <1>",
            ),
            (
                vec![s("d"), s("n"), SqlValue::Int(0), s("x1")],
                "invalid int",
            ),
            (
                vec![s("d"), s("n"), SqlValue::Int(2), SqlValue::Null],
                "value at row <0>",
            ),
        ];
        for (row, want) in bad_attrs {
            let e = DomainTable::build(&[row], &[]).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let e = DomainTable::build(&[], &[vec![s(""), SqlValue::Null]]).unwrap_err();
        assert!(e.contains("domain at row <0> is empty"), "{e}");
        let e = DomainTable::build(&[], &[vec![s("a"), s("")]]).unwrap_err();
        assert!(e.contains("did at row <0> is empty"), "{e}");
    }

    #[test]
    fn a_later_row_of_the_same_domain_is_found() {
        let doms = [
            vec![s("a.example"), s("first")],
            vec![s("A.example"), s("second")],
        ];
        let t = DomainTable::build(&[], &doms).unwrap();
        assert_eq!(t.lookup(b"a.example").unwrap().did, "second");
        assert_eq!(t.len(), 2);
    }
}
