//! Attributes of one message: `$avp(name)` stacks and the `$xavp(...)` tree.
//!
//! Kamailio keeps these per transaction. For now a route run owns one
//! [`Attrs`] in its [`super::ctx::MsgCtx`]; tm will move it into the
//! transaction and back, which is why it is a plain owned value.
//!
//! Order: Kamailio adds a new value in front, so index 0 is the newest. Here
//! values are pushed at the end of a vector and indexes count from the end.

use bytes::Bytes;

use super::pvkind::{AvpKey, XavpClass};
use super::value::Value;

/// `$avp` and `$xavp` values of one message (or, later, one transaction).
///
/// Most messages carry none, and every route run and transaction has one:
/// the lists are boxed on the first value, so that an empty `Attrs` is one
/// null pointer to make, clone and drop (four empty vectors cost a call each).
#[derive(Default)]
pub struct Attrs(Option<Box<Lists>>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Lists {
    avps: Vec<(AvpKey, Value<'static>)>,
    xavps: Vec<Xavp>,
    /// `$xavu` roots (one per name).
    xavus: Vec<Xavp>,
    /// `$xavi` roots (names in lower case).
    xavis: Vec<Xavp>,
}

/// What an `Attrs` without lists reads.
static NO_LISTS: Lists = Lists {
    avps: Vec::new(),
    xavps: Vec::new(),
    xavus: Vec::new(),
    xavis: Vec::new(),
};

impl Lists {
    fn is_empty(&self) -> bool {
        self.avps.is_empty()
            && self.xavps.is_empty()
            && self.xavus.is_empty()
            && self.xavis.is_empty()
    }

    fn roots(&self, class: XavpClass) -> &Vec<Xavp> {
        match class {
            XavpClass::Xavp => &self.xavps,
            XavpClass::Xavu => &self.xavus,
            XavpClass::Xavi => &self.xavis,
        }
    }

    fn roots_mut(&mut self, class: XavpClass) -> &mut Vec<Xavp> {
        match class {
            XavpClass::Xavp => &mut self.xavps,
            XavpClass::Xavu => &mut self.xavus,
            XavpClass::Xavi => &mut self.xavis,
        }
    }
}

impl Clone for Attrs {
    fn clone(&self) -> Attrs {
        match &self.0 {
            Some(l) if !l.is_empty() => Attrs(Some(l.clone())),
            _ => Attrs(None),
        }
    }
}

/// Equal by content: no lists and empty lists are the same.
impl PartialEq for Attrs {
    fn eq(&self, other: &Attrs) -> bool {
        self.lists() == other.lists()
    }
}

impl Eq for Attrs {}

impl std::fmt::Debug for Attrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.lists().fmt(f)
    }
}

/// One extended AVP: a name and either a value or a list of fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Xavp {
    pub name: Bytes,
    pub value: XavpValue,
}

/// What an [`Xavp`] holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XavpValue {
    Value(Value<'static>),
    /// Fields, oldest first (like [`Attrs`], index 0 is the last one).
    List(Vec<Xavp>),
}

/// Position of the `index`-th newest entry among `len` that match, as an
/// offset from the oldest; negative `index` counts from the oldest (-1 = oldest).
fn nth_newest(len: usize, index: i32) -> Option<usize> {
    if index >= 0 {
        let i = usize::try_from(index).ok()?;
        (i < len).then(|| len - 1 - i)
    } else {
        let back = usize::try_from(index.unsigned_abs()).ok()?;
        (back <= len).then(|| back - 1)
    }
}

impl Attrs {
    fn lists(&self) -> &Lists {
        self.0.as_deref().unwrap_or(&NO_LISTS)
    }

    /// The lists, to add to (boxed now if there were none).
    fn lists_mut(&mut self) -> &mut Lists {
        self.0.get_or_insert_with(Box::default)
    }

    /// Whether there is no AVP and no XAVP.
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|l| l.is_empty())
    }

    /// Forgets every value (the lists are kept for the next ones).
    pub fn clear(&mut self) {
        if let Some(l) = self.0.as_deref_mut() {
            l.avps.clear();
            l.xavps.clear();
            l.xavus.clear();
            l.xavis.clear();
        }
    }

    // --- $avp -----------------------------------------------------------------------------------

    /// The values of AVP `key`, newest first.
    pub fn avp_values<'a, 'k: 'a>(
        &'a self,
        key: &'k AvpKey,
    ) -> impl Iterator<Item = &'a Value<'static>> + 'a {
        self.lists()
            .avps
            .iter()
            .rev()
            .filter(move |(k, _)| k.matches(key))
            .map(|(_, v)| v)
    }

    /// The `index`-th newest value (0 = newest, -1 = oldest).
    pub fn avp(&self, key: &AvpKey, index: i32) -> Option<&Value<'static>> {
        let mut values = self
            .lists()
            .avps
            .iter()
            .rev()
            .filter(|(k, _)| k.matches(key))
            .map(|(_, v)| v);
        if index >= 0 {
            values.nth(usize::try_from(index).ok()?)
        } else {
            let all: Vec<_> = values.collect();
            let at = nth_newest(all.len(), index)?;
            all.get(all.len() - 1 - at).copied()
        }
    }

    /// Adds a value on top (`$avp(x) = v`).
    pub fn avp_push(&mut self, key: AvpKey, value: Value<'static>) {
        self.lists_mut().avps.push((key, value));
    }

    /// Removes the newest value (`$avp(x) = $null`); whether there was one.
    pub fn avp_remove_newest(&mut self, key: &AvpKey) -> bool {
        let Some(l) = self.0.as_deref_mut() else {
            return false;
        };
        match l.avps.iter().rposition(|(k, _)| k.matches(key)) {
            Some(i) => {
                l.avps.remove(i);
                true
            }
            None => false,
        }
    }

    /// Every AVP, oldest first (avpops `avp_print`, `avp_delete("*")`).
    pub fn avps(&self) -> &[(AvpKey, Value<'static>)] {
        &self.lists().avps
    }

    /// Keeps only the AVPs for which `keep` is true.
    pub fn avp_retain(&mut self, mut keep: impl FnMut(&AvpKey, &Value<'static>) -> bool) {
        if let Some(l) = self.0.as_deref_mut() {
            l.avps.retain(|(k, v)| keep(k, v));
        }
    }

    /// Removes every value (`$(avp(x)[*]) = $null`, and before `:=`).
    pub fn avp_remove_all(&mut self, key: &AvpKey) {
        if let Some(l) = self.0.as_deref_mut() {
            l.avps.retain(|(k, _)| !k.matches(key));
        }
    }

    /// Replaces the `index`-th newest value; false when there is none.
    pub fn avp_replace(&mut self, key: &AvpKey, index: i32, value: Value<'static>) -> bool {
        let Some(l) = self.0.as_deref_mut() else {
            return false;
        };
        let positions: Vec<usize> = l
            .avps
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| k.matches(key))
            .map(|(i, _)| i)
            .collect();
        match nth_newest(positions.len(), index) {
            Some(at) => {
                l.avps[positions[at]].1 = value;
                true
            }
            None => false,
        }
    }

    // --- $xavp ----------------------------------------------------------------------------------

    /// The `index`-th newest root XAVP called `name`.
    pub fn xavp(&self, name: &[u8], index: i32) -> Option<&Xavp> {
        self.xavp_in(XavpClass::Xavp, name, index)
    }

    /// The `index`-th newest root called `name` among the roots of `class`.
    pub fn xavp_in(&self, class: XavpClass, name: &[u8], index: i32) -> Option<&Xavp> {
        nth(self.lists().roots(class), name, index)
    }

    /// Every root of `class`, oldest first.
    pub fn roots(&self, class: XavpClass) -> &[Xavp] {
        self.lists().roots(class)
    }

    /// Every root XAVP called `name`, newest first.
    pub fn xavps_named<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a Xavp> {
        self.lists()
            .xavps
            .iter()
            .rev()
            .filter(move |x| x.name == name)
    }

    /// Adds a root XAVP on top.
    pub fn xavp_push(&mut self, xavp: Xavp) {
        self.xavp_push_in(XavpClass::Xavp, xavp);
    }

    pub fn xavp_push_in(&mut self, class: XavpClass, xavp: Xavp) {
        self.lists_mut().roots_mut(class).push(xavp);
    }

    /// The `index`-th newest root XAVP called `name`, to change it.
    pub fn xavp_mut(&mut self, name: &[u8], index: i32) -> Option<&mut Xavp> {
        self.xavp_mut_in(XavpClass::Xavp, name, index)
    }

    pub fn xavp_mut_in(&mut self, class: XavpClass, name: &[u8], index: i32) -> Option<&mut Xavp> {
        nth_mut(self.0.as_deref_mut()?.roots_mut(class), name, index)
    }

    /// Removes the `index`-th newest root called `name`, or all of them.
    pub fn xavp_remove(&mut self, name: &[u8], index: Option<i32>) {
        self.xavp_remove_in(XavpClass::Xavp, name, index);
    }

    pub fn xavp_remove_in(&mut self, class: XavpClass, name: &[u8], index: Option<i32>) {
        if let Some(l) = self.0.as_deref_mut() {
            remove(l.roots_mut(class), name, index);
        }
    }
}

impl Xavp {
    /// A named plain value.
    pub fn value(name: Bytes, value: Value<'static>) -> Xavp {
        Xavp {
            name,
            value: XavpValue::Value(value),
        }
    }

    /// The `index`-th newest field called `name` of a list XAVP.
    pub fn field(&self, name: &[u8], index: i32) -> Option<&Xavp> {
        match &self.value {
            XavpValue::List(fields) => nth(fields, name, index),
            XavpValue::Value(_) => None,
        }
    }

    /// The fields called `name`, newest first (none for a plain value).
    pub fn fields_named<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a Xavp> {
        let fields: &[Xavp] = match &self.value {
            XavpValue::List(f) => f,
            XavpValue::Value(_) => &[],
        };
        fields.iter().rev().filter(move |x| x.name == name)
    }

    /// Adds a field on top (turning a plain value into a list).
    pub fn push_field(&mut self, field: Xavp) {
        match &mut self.value {
            XavpValue::List(fields) => fields.push(field),
            XavpValue::Value(_) => self.value = XavpValue::List(vec![field]),
        }
    }

    /// The `index`-th newest field called `name`, to change it.
    pub fn field_mut(&mut self, name: &[u8], index: i32) -> Option<&mut Xavp> {
        match &mut self.value {
            XavpValue::List(fields) => nth_mut(fields, name, index),
            XavpValue::Value(_) => None,
        }
    }

    /// Removes the `index`-th newest field called `name`, or all of them.
    pub fn remove_field(&mut self, name: &[u8], index: Option<i32>) {
        if let XavpValue::List(fields) = &mut self.value {
            remove(fields, name, index);
        }
    }

    /// The value as the script sees it: a list reads as a marker, as in Kamailio.
    pub fn script_value(&self) -> Value<'_> {
        match &self.value {
            XavpValue::Value(v) => v.as_ref(),
            XavpValue::List(_) => Value::str(b"<<xavp>>"),
        }
    }
}

fn positions(list: &[Xavp], name: &[u8]) -> Vec<usize> {
    list.iter()
        .enumerate()
        .filter(|(_, x)| x.name == name)
        .map(|(i, _)| i)
        .collect()
}

fn nth<'a>(list: &'a [Xavp], name: &[u8], index: i32) -> Option<&'a Xavp> {
    if index >= 0 {
        list.iter()
            .rev()
            .filter(|x| x.name == name)
            .nth(usize::try_from(index).ok()?)
    } else {
        let pos = positions(list, name);
        nth_newest(pos.len(), index).map(|at| &list[pos[at]])
    }
}

fn nth_mut<'a>(list: &'a mut [Xavp], name: &[u8], index: i32) -> Option<&'a mut Xavp> {
    let pos = positions(list, name);
    let at = nth_newest(pos.len(), index)?;
    list.get_mut(pos[at])
}

fn remove(list: &mut Vec<Xavp>, name: &[u8], index: Option<i32>) {
    match index {
        None => list.retain(|x| x.name != name),
        Some(i) => {
            let pos = positions(list, name);
            if let Some(at) = nth_newest(pos.len(), i) {
                list.remove(pos[at]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> AvpKey {
        AvpKey::Str(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// The clone of any content is equal to it, each vector filled alone
    /// included (the empty shortcut must not drop one); an empty clone is empty.
    #[test]
    fn clones_are_equal_with_each_part_alone() {
        let mut parts = vec![Attrs::default()];
        let mut a = Attrs::default();
        a.avp_push(key("x"), Value::Int(1));
        parts.push(a);
        for class in [XavpClass::Xavp, XavpClass::Xavu, XavpClass::Xavi] {
            let mut a = Attrs::default();
            a.xavp_push_in(class, Xavp::value(Bytes::from_static(b"n"), Value::Int(2)));
            parts.push(a);
        }
        for a in &parts {
            let c = a.clone();
            assert_eq!(&c, a);
            assert_eq!(c.is_empty(), a.is_empty());
        }
        assert_eq!(parts.iter().filter(|a| a.is_empty()).count(), 1);
    }

    /// Lists emptied again equal no lists; reading or removing from an
    /// empty `Attrs` does not box lists.
    #[test]
    fn emptied_lists_equal_none_and_removals_do_not_box() {
        let mut a = Attrs::default();
        assert!(!a.avp_remove_newest(&key("x")));
        a.avp_remove_all(&key("x"));
        assert!(!a.avp_replace(&key("x"), 0, Value::Int(1)));
        a.xavp_remove(b"n", None);
        assert!(a.xavp_mut(b"n", 0).is_none());
        assert!(a.avp(&key("x"), 0).is_none() && a.xavp(b"n", 0).is_none());
        assert!(a.0.is_none());
        a.avp_push(key("x"), Value::Int(1));
        assert_ne!(a, Attrs::default());
        assert!(a.avp_remove_newest(&key("x")));
        assert!(a.0.is_some() && a.is_empty());
        assert_eq!(a, Attrs::default());
        assert!(a.clone().0.is_none());
        a.xavp_push(Xavp::value(Bytes::from_static(b"n"), Value::Int(2)));
        a.clear();
        assert_eq!(a, Attrs::default());
        assert_eq!(format!("{a:?}"), format!("{:?}", Attrs::default()));
    }

    #[test]
    fn avp_stack_is_newest_first() {
        let mut a = Attrs::default();
        a.avp_push(key("x"), Value::Int(1));
        a.avp_push(key("y"), Value::Int(9));
        a.avp_push(key("X"), Value::Int(2));
        assert_eq!(a.avp(&key("x"), 0), Some(&Value::Int(2)));
        assert_eq!(a.avp(&key("x"), 1), Some(&Value::Int(1)));
        assert_eq!(a.avp(&key("x"), -1), Some(&Value::Int(1)));
        assert_eq!(a.avp(&key("x"), 2), None);
        assert!(a.avp_replace(&key("x"), 1, Value::Int(5)));
        assert_eq!(
            a.avp_values(&key("x")).cloned().collect::<Vec<_>>(),
            [Value::Int(2), Value::Int(5)]
        );
        assert!(a.avp_remove_newest(&key("x")));
        assert_eq!(a.avp(&key("x"), 0), Some(&Value::Int(5)));
        a.avp_remove_all(&key("x"));
        assert_eq!(a.avp(&key("x"), 0), None);
        assert_eq!(a.avp(&key("y"), 0), Some(&Value::Int(9)));
        assert!(!AvpKey::Int(1).matches(&key("1")));
    }

    #[test]
    fn xavp_tree() {
        let mut a = Attrs::default();
        let mut root = Xavp {
            name: Bytes::from_static(b"r"),
            value: XavpValue::List(Vec::new()),
        };
        root.push_field(Xavp::value(Bytes::from_static(b"f"), Value::Int(1)));
        root.push_field(Xavp::value(Bytes::from_static(b"f"), Value::Int(2)));
        a.xavp_push(root);
        a.xavp_push(Xavp::value(
            Bytes::from_static(b"r"),
            Value::str(b"plain").into_owned(),
        ));
        assert_eq!(
            a.xavp(b"r", 0).map(Xavp::script_value),
            Some(Value::str(b"plain"))
        );
        let older = a.xavp(b"r", 1).expect("older root");
        assert_eq!(
            older.field(b"f", 0).map(Xavp::script_value),
            Some(Value::Int(2))
        );
        assert_eq!(
            older.field(b"f", -1).map(Xavp::script_value),
            Some(Value::Int(1))
        );
        assert_eq!(older.script_value(), Value::str(b"<<xavp>>"));
        a.xavp_remove(b"r", Some(0));
        assert_eq!(a.xavps_named(b"r").count(), 1);
        a.xavp_remove(b"r", None);
        assert!(a.is_empty());
    }
}
