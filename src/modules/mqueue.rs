//! mqueue: named first-in first-out queues of (key, value) items shared by
//! every core, as Kamailio 5.6's module (facts checked live against 5.6.3).
//!
//! - `modparam("mqueue", "mqueue", "name=q;size=N;addmode=M;dbmode=0")`
//!   defines a queue (attribute names in any case; a trailing `;` allowed;
//!   an unknown attribute, a missing name or a queue defined twice stop
//!   start-up). `mqueue_name` defines one with the `mqueue_size` and
//!   `mqueue_addmode` set *before* it, as Kamailio reads them in order.
//! - `size`: at most that many items; adding one more drops the oldest.
//!   0 (or none, or not a number) means no limit.
//! - `addmode`: 0 appends; 1 keeps the item already queued under the same
//!   key (the new one is not added); 2 removes that item and appends the new.
//! - `dbmode` other than 0 (queues loaded from and saved to `db_url`) is not
//!   implemented in ringsip yet: a start-up error.
//!
//! Functions (any route): `mq_add(q, key, value)` 1, -1 when no such queue;
//! `mq_fetch(q)` takes the oldest item into this core's `$mqk(q)`/`$mqv(q)`:
//! 1, -1 no such queue, -2 empty (the item fetched before is let go first,
//! so after -2 both read `$null`); `mq_pv_free(q)` lets the fetched item go
//! (1, also for an unknown queue); `mq_size(q)` the item count, -1 when
//! empty, -2 when no such queue.
//!
//! Variables: `$mqk(q)`, `$mqv(q)` (an empty key or value reads `$null`),
//! `$mq_size(q)`; `q` is a name or one pseudo-variable (`$mqk($var(q))`).
//! An unknown queue reads as an empty string (Kamailio's read fails and
//! prints nothing). The fetched item belongs to the core that fetched it,
//! as Kamailio keeps it per process: another core reads `$null`.
//!
//! Control methods (`src/ctl/mqueue.rs`): `mqueue.get_size`,
//! `mqueue.get_sizes` (newest queue first, as Kamailio lists them) and
//! `mqueue.fetch`.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

use crate::script::ast;
use crate::script::ctx::MsgCtx;
use crate::script::pvkind::PvRef;
use crate::script::registry::RouteMask;
use crate::script::registry::{func, param, Args, FunctionDef, ModuleDef, ParamDef, ParamKind};
use crate::script::value::Value;

pub static MODULE: ModuleDef = ModuleDef {
    name: "mqueue",
    aliases: &[],
    functions: FUNCTIONS,
    params: PARAMS,
    always: false,
};

const FUNCTIONS: &[FunctionDef] = &[
    func("mq_add", 3, 3, RouteMask::ANY, None, mq_add),
    func("mq_fetch", 1, 1, RouteMask::ANY, None, mq_fetch),
    func("mq_pv_free", 1, 1, RouteMask::ANY, None, mq_pv_free),
    func("mq_size", 1, 1, RouteMask::ANY, None, mq_size),
];

const PARAMS: &[ParamDef] = &[
    param("mqueue", ParamKind::Str),
    param("mqueue_name", ParamKind::Str),
    param("mqueue_size", ParamKind::Int),
    param("mqueue_addmode", ParamKind::Int),
    param("db_url", ParamKind::Str),
];

/// What happens when an item is added under a key already queued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddMode {
    /// Append anyway (Kamailio's 0).
    #[default]
    Append,
    /// Keep the queued item, drop the new one (1).
    KeepOldest,
    /// Remove the queued item, append the new one (2).
    KeepNewest,
}

impl AddMode {
    fn from_int(n: i64) -> AddMode {
        match n {
            1 => AddMode::KeepOldest,
            2 => AddMode::KeepNewest,
            // Kamailio treats every other value as the default.
            _ => AddMode::Append,
        }
    }
}

/// One queue as the configuration defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDef {
    pub name: String,
    /// The most items kept; 0: no limit.
    pub size: usize,
    pub addmode: AddMode,
}

impl QueueDef {
    /// Parses the `mqueue` parameter: `name=q;size=N;addmode=M;dbmode=D`.
    pub fn parse(text: &str) -> Result<QueueDef, String> {
        let mut def = QueueDef {
            name: String::new(),
            size: 0,
            addmode: AddMode::Append,
        };
        let body = text.strip_suffix(';').unwrap_or(text);
        for attr in body.split(';') {
            let (key, value) = match attr.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (attr.trim(), ""),
            };
            match key.to_ascii_lowercase().as_str() {
                "name" => def.name = value.to_string(),
                "size" => def.size = number(value).map_or(0, |n| n.max(0) as usize),
                "addmode" => def.addmode = AddMode::from_int(number(value).unwrap_or(0)),
                "dbmode" => match number(value).unwrap_or(0) {
                    0 => {}
                    n => {
                        return Err(format!(
                            "mqueue: dbmode {n} (a queue kept in a database) is not implemented in ringsip yet"
                        ))
                    }
                },
                other => return Err(format!("mqueue: unknown attribute \"{other}\" in \"{text}\"")),
            }
        }
        if def.name.is_empty() {
            return Err(format!("mqueue: no name in \"{text}\""));
        }
        Ok(def)
    }
}

/// A number as Kamailio's attribute reader takes it (a sign and digits).
fn number(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

/// Reads the queue definitions from the `mqueue` modparams in the order
/// they were written (`mqueue_name` takes the `mqueue_size` and
/// `mqueue_addmode` set before it). An error carries the modparam's place.
#[derive(Default)]
pub struct Definitions {
    pub queues: Vec<QueueDef>,
    size: i64,
    addmode: i64,
}

impl Definitions {
    /// One `modparam("mqueue", param, value)`.
    pub fn add(&mut self, param: &str, value: &ast::Value) -> Result<(), String> {
        let text = match value {
            ast::Value::Str(s) | ast::Value::Word(s) => Some(s.as_str()),
            _ => None,
        };
        let int = match value {
            ast::Value::Int(i) => Some(*i),
            ast::Value::Bool(b) => Some(i64::from(*b)),
            ast::Value::Str(s) | ast::Value::Word(s) => number(s),
            ast::Value::Sockets(_) => None,
        };
        let def = match param {
            "mqueue" => QueueDef::parse(text.ok_or("mqueue: the definition must be a string")?)?,
            "mqueue_name" => {
                let name = text.ok_or("mqueue: mqueue_name must be a string")?;
                if name.is_empty() {
                    return Err("mqueue: mqueue_name is empty".into());
                }
                QueueDef {
                    name: name.to_string(),
                    size: self.size.max(0) as usize,
                    addmode: AddMode::from_int(self.addmode),
                }
            }
            "mqueue_size" => {
                self.size = int.ok_or("mqueue: mqueue_size must be a number")?;
                return Ok(());
            }
            "mqueue_addmode" => {
                self.addmode = int.ok_or("mqueue: mqueue_addmode must be a number")?;
                return Ok(());
            }
            _ => return Ok(()),
        };
        if self.queues.iter().any(|q| q.name == def.name) {
            return Err(format!("mqueue: queue \"{}\" is defined twice", def.name));
        }
        self.queues.push(def);
        Ok(())
    }
}

/// One queue and its items, oldest first.
#[derive(Debug)]
pub struct Mqueue {
    pub def: QueueDef,
    items: Mutex<VecDeque<(Bytes, Bytes)>>,
}

/// A fetched item: key and value.
pub type Item = (Bytes, Bytes);

impl Mqueue {
    pub fn new(def: QueueDef) -> Mqueue {
        Mqueue {
            def,
            items: Mutex::new(VecDeque::new()),
        }
    }

    fn items(&self) -> std::sync::MutexGuard<'_, VecDeque<Item>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an item as the queue's `addmode` says, then drops the oldest
    /// while over `size`.
    pub fn add(&self, key: &[u8], value: &[u8]) {
        let mut items = self.items();
        if self.def.addmode != AddMode::Append {
            if let Some(at) = items.iter().position(|(k, _)| k.as_ref() == key) {
                if self.def.addmode == AddMode::KeepOldest {
                    return;
                }
                items.remove(at);
            }
        }
        items.push_back((Bytes::copy_from_slice(key), Bytes::copy_from_slice(value)));
        if self.def.size > 0 {
            while items.len() > self.def.size {
                items.pop_front();
            }
        }
    }

    /// Takes the oldest item.
    pub fn fetch(&self) -> Option<Item> {
        self.items().pop_front()
    }

    pub fn len(&self) -> usize {
        self.items().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The items this core fetched, by queue name (Kamailio keeps them per process).
#[derive(Debug, Default)]
pub struct Fetched(Vec<(Box<str>, Item)>);

impl Fetched {
    fn set(&mut self, queue: &str, item: Option<Item>) {
        self.0.retain(|(q, _)| &**q != queue);
        if let Some(item) = item {
            self.0.push((queue.into(), item));
        }
    }

    fn get(&self, queue: &str) -> Option<&Item> {
        self.0.iter().find(|(q, _)| &**q == queue).map(|(_, i)| i)
    }
}

fn queue_name(ctx: &MsgCtx<'_>, args: &Args) -> String {
    String::from_utf8_lossy(&args.str(ctx, 0)).into_owned()
}

fn mq_add(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = queue_name(ctx, args);
    let Some(q) = ctx.env.shared.mqueue(&name) else {
        log::error!("mqueue not found: {name}");
        return -1;
    };
    q.add(&args.str(ctx, 1), &args.str(ctx, 2));
    1
}

fn mq_fetch(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = queue_name(ctx, args);
    let shared = ctx.env.shared.clone();
    let Some(q) = shared.mqueue(&name) else {
        return -1;
    };
    let item = q.fetch();
    let found = item.is_some();
    ctx.core.mqueue.set(&name, item);
    if found {
        1
    } else {
        -2
    }
}

fn mq_pv_free(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = queue_name(ctx, args);
    ctx.core.mqueue.set(&name, None);
    1
}

fn mq_size(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let name = queue_name(ctx, args);
    match ctx.env.shared.mqueue(&name) {
        None => {
            log::error!("mqueue {name} not found");
            -2
        }
        Some(q) => match q.len() {
            0 => -1,
            n => i32::try_from(n).unwrap_or(i32::MAX),
        },
    }
}

/// Which part `$mqk`, `$mqv` and `$mq_size` read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqField {
    Key,
    Value,
    Size,
}

/// The queue a variable names: fixed, or read from one pseudo-variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MqName {
    Fixed(Box<str>),
    Pv(Box<PvRef>),
}

/// `$mqk(q)`, `$mqv(q)`, `$mq_size(q)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqPv {
    pub field: MqField,
    pub name: MqName,
}

impl MqPv {
    /// The field a class name reads (`mqk`, `mqv`, `mq_size`).
    pub fn field(class: &str) -> Option<MqField> {
        match class {
            "mqk" => Some(MqField::Key),
            "mqv" => Some(MqField::Value),
            "mq_size" => Some(MqField::Size),
            _ => None,
        }
    }
}

/// Reads `$mqk`/`$mqv`/`$mq_size` for this message.
pub fn read(ctx: &MsgCtx<'_>, pv: &MqPv) -> Value<'static> {
    let name = match &pv.name {
        MqName::Fixed(n) => n.to_string(),
        MqName::Pv(p) => String::from_utf8_lossy(&ctx.read_pv(p).to_bytes()).into_owned(),
    };
    let Some(q) = ctx.env.shared.mqueue(&name) else {
        log::error!("mqueue not found: {name}");
        return Value::str(b"");
    };
    let part = |pick: fn(&Item) -> &Bytes| match ctx.core.mqueue.get(&name).map(pick) {
        Some(b) if !b.is_empty() => Value::owned(b.to_vec()),
        _ => Value::Null,
    };
    match pv.field {
        MqField::Size => Value::Int(q.len() as i64),
        MqField::Key => part(|i| &i.0),
        MqField::Value => part(|i| &i.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(text: &str) -> QueueDef {
        QueueDef::parse(text).unwrap()
    }

    #[test]
    fn definitions_parse_as_kamailio_reads_them() {
        assert_eq!(
            def("name=q1;size=3"),
            QueueDef {
                name: "q1".into(),
                size: 3,
                addmode: AddMode::Append
            }
        );
        let d = def("NAME=a;SIZE=2;AddMode=2;dbmode=0;");
        assert_eq!(
            (d.name.as_str(), d.size, d.addmode),
            ("a", 2, AddMode::KeepNewest)
        );
        // Not a number, or negative: no limit (Kamailio starts with these).
        assert_eq!(def("name=a;size=x").size, 0);
        assert_eq!(def("name=a;size=-1").size, 0);
        assert!(QueueDef::parse("size=3").unwrap_err().contains("no name"));
        assert!(QueueDef::parse("name=a;foo=1")
            .unwrap_err()
            .contains("unknown attribute"));
        assert!(QueueDef::parse("name=a;dbmode=1")
            .unwrap_err()
            .contains("not implemented in ringsip yet"));
    }

    #[test]
    fn mqueue_name_takes_the_size_and_addmode_set_before_it() {
        let mut d = Definitions::default();
        d.add("mqueue_name", &ast::Value::Str("a".into())).unwrap();
        d.add("mqueue_size", &ast::Value::Int(2)).unwrap();
        d.add("mqueue_addmode", &ast::Value::Int(1)).unwrap();
        d.add("mqueue_name", &ast::Value::Str("b".into())).unwrap();
        d.add("mqueue", &ast::Value::Str("name=c".into())).unwrap();
        let got: Vec<_> = d
            .queues
            .iter()
            .map(|q| (q.name.as_str(), q.size, q.addmode))
            .collect();
        assert_eq!(
            got,
            [
                ("a", 0, AddMode::Append),
                ("b", 2, AddMode::KeepOldest),
                ("c", 0, AddMode::Append)
            ]
        );
        let twice = d.add("mqueue", &ast::Value::Str("name=b;size=1".into()));
        assert!(twice.unwrap_err().contains("defined twice"));
    }

    fn drain(q: &Mqueue) -> Vec<(String, String)> {
        std::iter::from_fn(|| q.fetch())
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_full_queue_drops_its_oldest_items() {
        let q = Mqueue::new(def("name=q;size=3"));
        for i in 0..5 {
            q.add(format!("k{i}").as_bytes(), format!("v{i}").as_bytes());
        }
        assert_eq!(q.len(), 3);
        assert_eq!(
            drain(&q),
            pairs(&[("k2", "v2"), ("k3", "v3"), ("k4", "v4")])
        );
        assert!(q.is_empty());
    }

    #[test]
    fn addmodes_keep_one_item_per_key() {
        let oldest = Mqueue::new(def("name=o;addmode=1"));
        let newest = Mqueue::new(def("name=n;addmode=2"));
        for q in [&oldest, &newest] {
            q.add(b"x", b"1");
            q.add(b"y", b"2");
            q.add(b"x", b"3");
        }
        assert_eq!(drain(&oldest), pairs(&[("x", "1"), ("y", "2")]));
        assert_eq!(drain(&newest), pairs(&[("y", "2"), ("x", "3")]));
        let plain = Mqueue::new(def("name=p"));
        plain.add(b"x", b"1");
        plain.add(b"x", b"2");
        assert_eq!(plain.len(), 2);
    }

    #[test]
    fn fetched_items_are_kept_per_queue() {
        let mut f = Fetched::default();
        f.set(
            "a",
            Some((Bytes::from_static(b"k"), Bytes::from_static(b"v"))),
        );
        f.set(
            "b",
            Some((Bytes::from_static(b"k2"), Bytes::from_static(b"v2"))),
        );
        assert_eq!(f.get("a").map(|i| &i.0[..]), Some(&b"k"[..]));
        f.set("a", None);
        assert!(f.get("a").is_none());
        assert_eq!(f.get("b").map(|i| &i.1[..]), Some(&b"v2"[..]));
    }
}
