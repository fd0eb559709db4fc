//! permissions' `trusted` table and `allow_trusted()`, as Kamailio 5.6.3
//! answers (each fact below checked live with db_sqlite).
//!
//! A row is `src_ip, proto, from_pattern, ruri_pattern, tag, priority`.
//! `allow_trusted()` takes the message's source IP, transport and From URI;
//! `allow_trusted(ip, proto)` the given IP and transport with the From URI;
//! `allow_trusted(ip, proto, uri)` all three given. `proto` is `any`, `udp`,
//! `tcp`, `tls`, `sctp`, `ws` or `wss` in any case (anything else: -1).
//!
//! A row applies when its `src_ip` is the IP *as text* (no subnets: a row
//! `10.0.0.0/8` matches only the argument `10.0.0.0/8`), its `proto` is
//! `any` or the transport (or the argument was `any`), its `from_pattern`
//! (if not NULL) matches the URI and its `ruri_pattern` (if not NULL) the
//! Request-URI as received. Patterns are POSIX basic regular expressions
//! (`+`, `?`, `|`, `(` are literal; `\(…\|…\)` group), found anywhere in the
//! text. A pattern that does not compile makes its row not apply.
//!
//! The first applying row gives 1 and, when it has a tag, adds it to
//! `peer_tag_avp`; with `peer_tag_mode` 1 every applying row adds its tag and
//! the answer is how many applied. None: -1.
//!
//! `db_mode` 0 (the default) reads the rows of the IP from the database at
//! each call, lowest `priority` first (Kamailio's query orders ascending);
//! `db_mode` 1 reads the table once into memory (rows of `proto` `none`
//! left out), highest `priority` first, and `permissions.trustedReload`
//! reads it again.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use regex::Regex;

use crate::script::ctx::MsgCtx;
use crate::script::pvkind::AvpKey;
use crate::script::registry::{Args, ModParams};
use crate::script::value::Value;
use crate::sip::Proto;
use crate::store::{SqlValue, StoreHandle};

/// A transport as a row or an argument names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Any,
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
}

impl Transport {
    /// `any`, `udp`… in any case.
    pub fn parse(s: &str) -> Option<Transport> {
        Some(match s.to_ascii_lowercase().as_str() {
            "any" => Transport::Any,
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            "sctp" => Transport::Sctp,
            "ws" => Transport::Ws,
            "wss" => Transport::Wss,
            _ => return None,
        })
    }

    fn of(p: Proto) -> Transport {
        match p {
            Proto::Udp => Transport::Udp,
            Proto::Tcp => Transport::Tcp,
            Proto::Tls => Transport::Tls,
            Proto::Sctp => Transport::Sctp,
            Proto::Ws => Transport::Ws,
            Proto::Wss => Transport::Wss,
        }
    }

    /// Kamailio's number for it (`trustedDump` prints it).
    pub fn number(self) -> i64 {
        match self {
            Transport::Any => 0,
            Transport::Udp => 1,
            Transport::Tcp => 2,
            Transport::Tls => 3,
            Transport::Sctp => 4,
            Transport::Ws => 5,
            Transport::Wss => 6,
        }
    }
}

/// Translates a POSIX basic regular expression (GNU flavour, as glibc's
/// `regcomp` without `REG_EXTENDED` reads it) into the `regex` crate's syntax.
pub fn basic_regex(bre: &str) -> Result<Regex, String> {
    let chars: Vec<char> = bre.chars().collect();
    let mut out = String::with_capacity(bre.len() + 8);
    let mut i = 0;
    // Where `*` is literal and `^` an anchor: at the start of the whole
    // expression, of a group or of an alternative.
    let mut at_start = true;
    while i < chars.len() {
        let c = chars[i];
        let start = at_start;
        at_start = false;
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err("trailing backslash".into());
                };
                i += 1;
                match n {
                    '(' | '|' => {
                        out.push(n);
                        at_start = true;
                    }
                    ')' | '{' | '}' | '+' | '?' => out.push(n),
                    '<' | '>' => out.push_str("\\b"),
                    'w' | 'W' | 's' | 'S' | 'b' | 'B' => {
                        out.push('\\');
                        out.push(n);
                    }
                    '1'..='9' => return Err("back-references are not supported".into()),
                    other => push_literal(&mut out, other),
                }
            }
            '*' if start => out.push_str("\\*"),
            '^' if start => {
                out.push('^');
                at_start = true;
            }
            // An anchor only at the end of the expression, a group or an alternative.
            '$' if i + 1 == chars.len()
                || (chars[i + 1] == '\\' && matches!(chars.get(i + 2), Some(')' | '|'))) =>
            {
                out.push('$')
            }
            '[' => {
                i = bracket(&chars, i, &mut out)?;
                continue;
            }
            '.' | '*' => out.push(c),
            other => push_literal(&mut out, other),
        }
        i += 1;
    }
    Regex::new(&out).map_err(|e| e.to_string())
}

fn push_literal(out: &mut String, c: char) {
    if regex_syntax_meta(c) {
        out.push('\\');
    }
    out.push(c);
}

fn regex_syntax_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

/// Copies the bracket expression starting at `chars[at] == '['`; returns the
/// index after its `]`.
fn bracket(chars: &[char], at: usize, out: &mut String) -> Result<usize, String> {
    let mut i = at + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` first is a member.
    if chars.get(i) == Some(&']') {
        out.push_str("\\]");
        i += 1;
    }
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("unbalanced [".into());
        };
        match c {
            ']' => {
                out.push(']');
                return Ok(i + 1);
            }
            '[' if matches!(chars.get(i + 1), Some(':' | '=' | '.')) => {
                let kind = chars[i + 1];
                let close = (i + 2..chars.len().saturating_sub(1))
                    .find(|&k| chars[k] == kind && chars[k + 1] == ']')
                    .ok_or("unbalanced [")?;
                if kind != ':' {
                    return Err("collating elements are not supported".into());
                }
                out.extend(&chars[i..close + 2]);
                i = close + 2;
            }
            '-' => {
                // A range between two members; first or last it is a member.
                let first = out.ends_with('[') || out.ends_with("[^");
                let last = chars.get(i + 1) == Some(&']');
                if first || last {
                    out.push_str("\\-");
                } else {
                    out.push('-');
                }
                i += 1;
            }
            // Literal inside brackets in POSIX, special in the regex crate.
            '\\' | '[' | '&' | '~' | '^' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row {
    pub src_ip: String,
    /// As written (`any`, `UDP`, `none`…).
    pub proto: String,
    pub from_pattern: Option<String>,
    pub ruri_pattern: Option<String>,
    pub tag: Option<String>,
    pub priority: i64,
}

/// A row as kept in memory, patterns compiled (`None` inside: did not compile).
#[derive(Debug)]
struct Entry {
    row: Row,
    proto: Transport,
    from: Option<Option<Regex>>,
    ruri: Option<Option<Regex>>,
}

impl Entry {
    fn new(row: Row, proto: Transport) -> Entry {
        let compile = |p: &Option<String>| {
            p.as_ref().map(|p| {
                basic_regex(p)
                    .map_err(|e| log::error!("permissions: invalid regular expression {p:?}: {e}"))
                    .ok()
            })
        };
        Entry {
            from: compile(&row.from_pattern),
            ruri: compile(&row.ruri_pattern),
            proto,
            row,
        }
    }

    fn applies(&self, proto: Transport, from: &str, ruri: &str) -> bool {
        let transport =
            proto == Transport::Any || self.proto == Transport::Any || self.proto == proto;
        let matches = |p: &Option<Option<Regex>>, text: &str| match p {
            None => true,
            Some(None) => false,
            Some(Some(re)) => re.is_match(text),
        };
        transport && matches(&self.from, from) && matches(&self.ruri, ruri)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Read the rows of the IP at each call.
    Query,
    /// Rows in memory, read at start-up and by `trustedReload`.
    Cache,
}

/// The column and table names, checked to be plain identifiers.
#[derive(Debug)]
struct Names {
    table: String,
    src_ip: String,
    proto: String,
    from: String,
    ruri: String,
    tag: String,
    priority: String,
}

/// The `trusted` table and how `allow_trusted` reads it (shared by every core).
#[derive(Debug)]
pub struct Trusted {
    store: StoreHandle,
    mode: Mode,
    names: Names,
    /// In memory (cache mode), highest priority first.
    cache: RwLock<Arc<Vec<Entry>>>,
    peer_tag_mode: bool,
    peer_tag_avp: Option<AvpKey>,
}

const WAIT: Duration = Duration::from_secs(10);

impl Trusted {
    /// The settings from the modparams; the table read once (cache mode
    /// keeps it; query mode only checks it can be read).
    pub fn from_modparams(mp: &ModParams, store: StoreHandle) -> Result<Trusted, String> {
        let name = |p: &str, d: &str| crate::modules::db::name_param(mp, "permissions", p, d);
        let mode = match mp.int("permissions", "db_mode").unwrap_or(0) {
            0 => Mode::Query,
            1 => Mode::Cache,
            n => return Err(format!("permissions: invalid db_mode value: {n}")),
        };
        let t = Trusted {
            store,
            mode,
            names: Names {
                table: name("trusted_table", "trusted")?,
                src_ip: name("source_col", "src_ip")?,
                proto: name("proto_col", "proto")?,
                from: name("from_col", "from_pattern")?,
                ruri: name("ruri_col", "ruri_pattern")?,
                tag: name("tag_col", "tag")?,
                priority: name("priority_col", "priority")?,
            },
            cache: RwLock::new(Arc::new(Vec::new())),
            peer_tag_mode: mp.int("permissions", "peer_tag_mode").unwrap_or(0) != 0,
            peer_tag_avp: super::peer_tag_avp(mp)?,
        };
        let rows = t.load()?;
        if mode == Mode::Cache {
            t.install(rows)?;
        }
        Ok(t)
    }

    fn select(&self, filter: &str, order: &str) -> String {
        let n = &self.names;
        format!(
            "SELECT {}, {}, {}, {}, {}, {} FROM {}{filter}{order}",
            n.src_ip, n.proto, n.from, n.ruri, n.tag, n.priority, n.table
        )
    }

    fn rows(&self, sql: String) -> Result<Vec<Row>, String> {
        let table = self.names.table.clone();
        let result = self
            .store
            .call(move |s| s.query(&sql), WAIT)
            .ok_or("permissions: the database did not answer")?
            .map_err(|e| format!("permissions: reading {table}: {e}"))?;
        let text = |v: &SqlValue| match v {
            SqlValue::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            SqlValue::Int(i) | SqlValue::BigInt(i) => Some(i.to_string()),
            SqlValue::Double(d) => Some(d.to_string()),
            SqlValue::Null => None,
        };
        Ok(result
            .rows
            .iter()
            .filter_map(|r| match r.as_slice() {
                [ip, proto, from, ruri, tag, prio] => Some(Row {
                    src_ip: text(ip)?,
                    proto: text(proto)?,
                    from_pattern: text(from),
                    ruri_pattern: text(ruri),
                    tag: text(tag),
                    priority: text(prio).and_then(|p| p.trim().parse().ok()).unwrap_or(0),
                }),
                _ => None,
            })
            .collect())
    }

    /// Every row, in the table's order.
    fn load(&self) -> Result<Vec<Row>, String> {
        self.rows(self.select("", ""))
    }

    /// Makes `rows` the table in memory: highest priority first (rows of
    /// equal priority in the table's order), `none` rows left out, an
    /// unknown transport an error (Kamailio refuses the whole table).
    fn install(&self, rows: Vec<Row>) -> Result<usize, String> {
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            if row.proto.eq_ignore_ascii_case("none") {
                continue;
            }
            let proto = Transport::parse(&row.proto).ok_or_else(|| {
                format!(
                    "permissions: unknown protocol {:?} in {} (src_ip {})",
                    row.proto, self.names.table, row.src_ip
                )
            })?;
            entries.push(Entry::new(row, proto));
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.row.priority));
        let n = entries.len();
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(entries);
        Ok(n)
    }

    /// `permissions.trustedReload`: the number of rows in memory, or why not
    /// (query mode keeps no table, as Kamailio: "Reload failed.").
    pub fn reload(&self) -> Result<usize, String> {
        if self.mode != Mode::Cache {
            return Err("no trusted table in memory (db_mode 0)".into());
        }
        let rows = self.load()?;
        self.install(rows)
    }

    /// The rows in memory, in match order (`None` in query mode).
    pub fn dump(&self) -> Option<Vec<(Row, Transport)>> {
        if self.mode != Mode::Cache {
            return None;
        }
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner()).clone();
        Some(cache.iter().map(|e| (e.row.clone(), e.proto)).collect())
    }

    /// The tags of the rows that apply, in the order found, and how many
    /// applied (`peer_tag_mode` 0 stops at the first); `None`: the database
    /// could not be read.
    pub fn check(
        &self,
        ip: &str,
        proto: Transport,
        from: &str,
        ruri: &str,
    ) -> Option<(usize, Vec<String>)> {
        let entries: Arc<Vec<Entry>> = match self.mode {
            Mode::Cache => self.cache.read().unwrap_or_else(|e| e.into_inner()).clone(),
            Mode::Query => {
                let literal = crate::store::sql_literal(ip.as_bytes())?;
                let filter = format!(" WHERE {} = {literal}", self.names.src_ip);
                let order = format!(" ORDER BY {}", self.names.priority);
                let rows = match self.rows(self.select(&filter, &order)) {
                    Ok(r) => r,
                    Err(e) => {
                        log::error!("{e}");
                        return None;
                    }
                };
                // Query mode compares the row's transport as text: `none`
                // (and anything unknown) applies only to the argument `any`.
                Arc::new(
                    rows.into_iter()
                        .filter_map(|r| match Transport::parse(&r.proto) {
                            Some(p) => Some(Entry::new(r, p)),
                            None if proto == Transport::Any => Some(Entry::new(r, Transport::Any)),
                            None => None,
                        })
                        .collect(),
                )
            }
        };
        let mut count = 0;
        let mut tags = Vec::new();
        for e in entries.iter().filter(|e| e.row.src_ip == ip) {
            if !e.applies(proto, from, ruri) {
                continue;
            }
            count += 1;
            if let Some(t) = &e.row.tag {
                tags.push(t.clone());
            }
            if !self.peer_tag_mode {
                break;
            }
        }
        Some((count, tags))
    }
}

/// `allow_trusted([ip, proto[, uri]])`.
pub fn allow_trusted(ctx: &mut MsgCtx<'_>, args: &Args) -> i32 {
    let Some(t) = ctx.env.services.get::<Trusted>() else {
        log::error!("permissions: allow_trusted needs db_url");
        return -1;
    };
    let msg = ctx.msg;
    let from_uri = || {
        msg.header_value(crate::sip::HeaderName::From)
            .and_then(|v| crate::sip::nameaddr::NameAddr::parse(v).ok())
            .map_or_else(Vec::new, |n| n.uri_raw().to_vec())
    };
    let (ip, proto, from) = if args.is_empty() {
        (
            ctx.src.ip().to_string(),
            Transport::of(ctx.proto),
            from_uri(),
        )
    } else {
        let text = String::from_utf8_lossy(&args.str(ctx, 1)).into_owned();
        let Some(proto) = Transport::parse(&text) else {
            log::error!("permissions: unknown protocol {text}");
            return -1;
        };
        let from = if args.len() == 3 {
            args.str(ctx, 2).into_owned()
        } else {
            from_uri()
        };
        (
            String::from_utf8_lossy(&args.str(ctx, 0)).into_owned(),
            proto,
            from,
        )
    };
    let ruri = msg.request_uri().unwrap_or_default();
    let Some((count, tags)) = t.check(
        &ip,
        proto,
        &String::from_utf8_lossy(&from),
        &String::from_utf8_lossy(ruri),
    ) else {
        return -1;
    };
    if let Some(key) = &t.peer_tag_avp {
        for tag in tags {
            ctx.attrs
                .avp_push(key.clone(), Value::owned(tag.into_bytes()));
        }
    }
    match count {
        0 => -1,
        n => i32::try_from(n).unwrap_or(i32::MAX),
    }
}

pub fn fixup_allow_trusted(args: &mut Args, _: &ModParams) -> Result<(), String> {
    match args.len() {
        0 | 2 | 3 => Ok(()),
        _ => Err("allow_trusted takes no argument, (src_ip, proto) or (src_ip, proto, uri)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(bre: &str, text: &str) -> bool {
        basic_regex(bre).unwrap().is_match(text)
    }

    #[test]
    fn basic_regular_expressions_as_glibc_reads_them() {
        // Checked live through Kamailio 5.6's from_pattern.
        assert!(hit("a+b", "sip:a+b@x"));
        assert!(!hit("a+b", "sip:aab@x"));
        assert!(hit("x\\(y\\|z\\)w", "sip:xzw@x"));
        assert!(!hit("x\\(y\\|z\\)w", "sip:x(y|z)w@x"));
        assert!(hit("^sip:alice@", "sip:alice@example.com"));
        assert!(!hit("^sip:alice@", "sips:alice@example.com"));
        // Intervals, GNU's \+ and \?, a leading * literal, $ literal inside.
        assert!(hit("^a\\{2\\}$", "aa"));
        assert!(!hit("^a\\{2\\}$", "aaa"));
        assert!(hit("ab\\+c", "abbbc"));
        assert!(hit("^*x", "*x"));
        assert!(hit("a$b", "a$b"));
        assert!(hit("^sip:[0-9]*@", "sip:0049@gw"));
        assert!(hit("[[:digit:]]\\{3\\}", "x123"));
        assert!(hit("[]a]", "]"));
        assert!(hit("[a\\]", "\\"));
        assert!(hit("a.c", "abc"));
        assert!(hit("1.2|3", "1x2|3"));
        assert!(basic_regex("\\(a\\)\\1").is_err());
        assert!(basic_regex("[abc").is_err());
    }

    fn row(ip: &str, proto: &str, from: Option<&str>, tag: Option<&str>, priority: i64) -> Row {
        Row {
            src_ip: ip.into(),
            proto: proto.into(),
            from_pattern: from.map(Into::into),
            ruri_pattern: None,
            tag: tag.map(Into::into),
            priority,
        }
    }

    #[test]
    fn rows_apply_by_transport_and_patterns() {
        let e = Entry::new(
            row("1.2.3.4", "udp", Some("^sip:a@"), None, 0),
            Transport::Udp,
        );
        assert!(e.applies(Transport::Udp, "sip:a@x", "sip:b@y"));
        assert!(e.applies(Transport::Any, "sip:a@x", "sip:b@y"));
        assert!(!e.applies(Transport::Tcp, "sip:a@x", "sip:b@y"));
        assert!(!e.applies(Transport::Udp, "sip:c@x", "sip:b@y"));
        let bad = Entry::new(row("1.2.3.4", "any", Some("\\(a"), None, 0), Transport::Any);
        assert!(!bad.applies(Transport::Udp, "a", ""));
        let mut r = row("1.2.3.4", "any", None, None, 0);
        r.ruri_pattern = Some("^sip:gw".into());
        let gw = Entry::new(r, Transport::Any);
        assert!(gw.applies(Transport::Tls, "sip:q@x", "sip:gw@h"));
        assert!(!gw.applies(Transport::Tls, "sip:q@x", "sip:q@h"));
        assert_eq!(Transport::parse("UDP"), Some(Transport::Udp));
        assert_eq!(Transport::parse("bogus"), None);
        assert_eq!(Transport::parse(""), None);
    }
}
