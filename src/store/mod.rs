//! Persistence behind traits (DESIGN.md "Storage and scale-out"): the rows of
//! Kamailio's tables (`location`, `subscriber`, `address`), the [`Store`] trait
//! a database implements, the embedded SQLite implementation, and the store
//! thread that takes database work off the workers.
//!
//! Modules never touch a database: they hold a [`StoreHandle`] and either
//! queue a write (never blocking; a full queue drops the write and counts it)
//! or, where Kamailio itself would wait for the database (usrloc `db_mode` 3
//! lookups, loading at start-up), call the store thread with a time limit.

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;
mod thread;
pub mod time;

use std::fmt;

#[cfg(feature = "mysql")]
pub use mysql::MySql;
#[cfg(feature = "postgres")]
pub use postgres::Postgres;
pub use sqlite::Sqlite;
pub use thread::{StoreHandle, StoreStats, StoreThread, Stores};

/// A database error, as text (the database's own message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One row of a usrloc table (`location`, `aliases`…), columns as Kamailio names them.
/// Times are seconds since 1970 (UTC); `expires` 0 is a permanent contact.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocationRow {
    pub ruid: String,
    pub username: String,
    pub domain: Option<String>,
    pub contact: String,
    pub received: Option<String>,
    pub path: Option<String>,
    pub expires: i64,
    /// -1 when unspecified.
    pub q: f64,
    pub callid: String,
    pub cseq: i64,
    pub last_modified: i64,
    pub flags: i64,
    pub cflags: i64,
    pub user_agent: String,
    pub socket: Option<String>,
    pub methods: Option<i64>,
    pub instance: Option<String>,
    pub reg_id: i64,
    pub server_id: i64,
    pub connection_id: i64,
    pub keepalive: i64,
    pub partition: i64,
}

/// One row of the `subscriber` table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriberRow {
    pub username: String,
    pub domain: String,
    pub password: String,
    pub ha1: String,
    pub ha1b: String,
}

/// Which columns of which table hold credentials (auth_db `user_column`…).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberColumns {
    pub table: String,
    pub user: String,
    pub domain: String,
    /// `password_column`: read into [`SubscriberRow::password`] when
    /// `calculate_ha1` is set, else into [`SubscriberRow::ha1`].
    pub password: String,
    /// `password_column_2` (`ha1b`), for user names with `@domain`.
    pub password2: String,
}

impl Default for SubscriberColumns {
    fn default() -> SubscriberColumns {
        SubscriberColumns {
            table: "subscriber".into(),
            user: "username".into(),
            domain: "domain".into(),
            password: "ha1".into(),
            password2: "ha1b".into(),
        }
    }
}

/// One accounting record (acc's database backend), in Kamailio's `acc`
/// columns plus the `db_extra` ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccRecord {
    pub method: String,
    pub from_tag: String,
    pub to_tag: String,
    pub callid: String,
    pub sip_code: String,
    pub sip_reason: String,
    /// Unix seconds.
    pub time: i64,
    /// `db_extra` columns and their values (`None`: SQL NULL).
    pub extra: Vec<(String, Option<String>)>,
}

/// How a database spells a quoted name and the `n`th (from 1) statement parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    /// `"name"` and `$n` (SQLite, PostgreSQL).
    Standard,
    /// `` `name` `` and `?` (MySQL, MariaDB).
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    MySql,
}

impl Dialect {
    fn quote(self, name: &str) -> String {
        match self {
            Dialect::Standard => format!("\"{name}\""),
            Dialect::MySql => format!("`{name}`"),
        }
    }

    fn param(self, n: usize) -> String {
        match self {
            Dialect::Standard => format!("${n}"),
            Dialect::MySql => "?".into(),
        }
    }
}

/// The `CREATE TABLE` of an acc table with `extra` columns (text), and the
/// `INSERT` of one record, shared by the SQL stores. `time_type` is the
/// column type for `time` and `time_value` the 7th parameter as the
/// `INSERT` puts it into that column.
fn acc_sql(
    dialect: Dialect,
    table: &str,
    rec: &AccRecord,
    id: &str,
    time_type: &str,
    time_value: &str,
) -> Result<(String, String)> {
    let table = identifier(table)?;
    let mut create = format!(
        "CREATE TABLE IF NOT EXISTS {table} ({id}, method VARCHAR(16) NOT NULL DEFAULT '', \
         from_tag VARCHAR(128) NOT NULL DEFAULT '', to_tag VARCHAR(128) NOT NULL DEFAULT '', \
         callid VARCHAR(255) NOT NULL DEFAULT '', sip_code VARCHAR(3) NOT NULL DEFAULT '', \
         sip_reason VARCHAR(128) NOT NULL DEFAULT '', time {time_type} NOT NULL"
    );
    let mut cols = String::from("method, from_tag, to_tag, callid, sip_code, sip_reason, time");
    let mut vals = (1..=6)
        .map(|n| dialect.param(n))
        .collect::<Vec<_>>()
        .join(", ");
    vals.push_str(&format!(", {time_value}"));
    for (i, (name, _)) in rec.extra.iter().enumerate() {
        // Quoted: an extra may be named like an SQL keyword ("nothing", "user").
        let name = dialect.quote(identifier(name)?);
        create.push_str(&format!(", {name} TEXT"));
        cols.push_str(&format!(", {name}"));
        vals.push_str(&format!(", {}", dialect.param(i + 8)));
    }
    create.push(')');
    Ok((
        create,
        format!("INSERT INTO {table} ({cols}) VALUES ({vals})"),
    ))
}

/// One row of the permissions `address` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRow {
    pub grp: i64,
    pub ip_addr: String,
    pub mask: i64,
    pub port: i64,
    pub tag: Option<String>,
}

/// One row of the dispatcher table (Kamailio's `dispatcher`: `setid,
/// destination, flags, priority, attrs`), with the column names configurable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatcherRow {
    pub setid: i64,
    pub destination: String,
    pub flags: i64,
    pub priority: i64,
    pub attrs: String,
}

/// The column names of a dispatcher table (dispatcher `*_col` parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatcherColumns {
    pub setid: String,
    pub destination: String,
    pub flags: String,
    pub priority: String,
    pub attrs: String,
}

impl Default for DispatcherColumns {
    fn default() -> DispatcherColumns {
        DispatcherColumns {
            setid: "setid".into(),
            destination: "destination".into(),
            flags: "flags".into(),
            priority: "priority".into(),
            attrs: "attrs".into(),
        }
    }
}

impl DispatcherColumns {
    /// `SELECT` text for `table`, after checking every name is an identifier.
    fn select(&self, table: &str) -> Result<String> {
        Ok(format!(
            "SELECT {}, {}, {}, {}, {} FROM {}",
            identifier(&self.setid)?,
            identifier(&self.destination)?,
            identifier(&self.flags)?,
            identifier(&self.priority)?,
            identifier(&self.attrs)?,
            identifier(table)?
        ))
    }
}

/// One value of a result of [`Store::query`], typed as the database's
/// client reports its column (Kamailio's `db1` types, which sqlops and
/// avpops convert): `Int` for the 32-bit integer, date and bit columns
/// (dates as unix seconds), `BigInt` for 64-bit integer columns, `Double`
/// for floating point, `Str` for text and binary.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    BigInt(i64),
    Double(f64),
    Str(Vec<u8>),
}

/// The answer to [`Store::query`]: column names and rows (no columns for a
/// statement that returns no rows, such as `INSERT`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SqlRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
    /// What the database's client reports as affected rows (sqlops
    /// `$sqlrows`): rows changed by `INSERT`/`UPDATE`/`DELETE`; for a
    /// `SELECT`, the rows returned (PostgreSQL, MySQL) or the count of the
    /// last change (SQLite's `changes()`, as Kamailio's `db_sqlite` reads it).
    pub affected: u64,
}

/// How a column of a client that hands values over as text (PostgreSQL's
/// simple protocol, MySQL's text protocol) is typed.
#[cfg_attr(not(any(feature = "mysql", feature = "postgres")), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextColumn {
    Int,
    BigInt,
    Double,
    /// `YYYY-MM-DD HH:MM:SS`, read as unix seconds.
    Datetime,
    Str,
}

#[cfg_attr(not(any(feature = "mysql", feature = "postgres")), allow(dead_code))]
impl TextColumn {
    fn value(self, text: Option<&[u8]>) -> SqlValue {
        let Some(t) = text else {
            return SqlValue::Null;
        };
        let s = std::str::from_utf8(t).unwrap_or("").trim();
        match self {
            TextColumn::Int => SqlValue::Int(s.parse().unwrap_or(0)),
            TextColumn::BigInt => SqlValue::BigInt(s.parse().unwrap_or(0)),
            TextColumn::Double => SqlValue::Double(s.parse().unwrap_or(0.0)),
            TextColumn::Datetime => SqlValue::Int(time::parse_datetime(s).unwrap_or(0)),
            TextColumn::Str => SqlValue::Str(t.to_vec()),
        }
    }
}

/// One row of Kamailio's `dialplan` table (dialplan module). Text columns
/// are `None` for SQL NULL, which the module refuses as Kamailio does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DialplanRow {
    pub dpid: i64,
    pub pr: i64,
    pub match_op: i64,
    pub match_exp: Option<String>,
    pub match_len: i64,
    pub subst_exp: Option<String>,
    pub repl_exp: Option<String>,
    pub attrs: Option<String>,
}

/// The column names of a dialplan table (dialplan `*_col` parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialplanColumns {
    pub dpid: String,
    pub pr: String,
    pub match_op: String,
    pub match_exp: String,
    pub match_len: String,
    pub subst_exp: String,
    pub repl_exp: String,
    pub attrs: String,
}

impl Default for DialplanColumns {
    fn default() -> DialplanColumns {
        DialplanColumns {
            dpid: "dpid".into(),
            pr: "pr".into(),
            match_op: "match_op".into(),
            match_exp: "match_exp".into(),
            match_len: "match_len".into(),
            subst_exp: "subst_exp".into(),
            repl_exp: "repl_exp".into(),
            attrs: "attrs".into(),
        }
    }
}

impl DialplanColumns {
    /// `SELECT` text for `table` in Kamailio's column order, by priority
    /// (rows of equal priority in the order the database gives them, as
    /// Kamailio's query leaves it), after checking every name.
    fn select(&self, table: &str) -> Result<String> {
        Ok(format!(
            "SELECT {}, {}, {}, {}, {}, {}, {}, {} FROM {} ORDER BY {}",
            identifier(&self.dpid)?,
            identifier(&self.pr)?,
            identifier(&self.match_op)?,
            identifier(&self.match_exp)?,
            identifier(&self.match_len)?,
            identifier(&self.subst_exp)?,
            identifier(&self.repl_exp)?,
            identifier(&self.attrs)?,
            identifier(table)?,
            identifier(&self.pr)?,
        ))
    }
}

/// A database holding Kamailio's tables. Implementations run on the store
/// thread (or in the command line tools), never on a worker.
pub trait Store: Send {
    /// Creates a usrloc table (and `version` row) if it does not exist.
    fn ensure_location_table(&mut self, table: &str) -> Result<()>;
    /// Every row of a usrloc table.
    fn location_load(&mut self, table: &str) -> Result<Vec<LocationRow>>;
    /// The rows of one AoR.
    fn location_aor(
        &mut self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Vec<LocationRow>>;
    /// Inserts or replaces rows by `ruid`.
    fn location_upsert(&mut self, table: &str, rows: &[LocationRow]) -> Result<()>;
    /// Deletes rows by `ruid`.
    fn location_delete(&mut self, table: &str, ruids: &[String]) -> Result<()>;
    /// Deletes rows whose `expires` (not 0) is at or before `unix`; returns how many.
    fn location_delete_expired(&mut self, table: &str, unix: i64) -> Result<usize>;

    /// Every credential row.
    fn subscribers(&mut self, cols: &SubscriberColumns) -> Result<Vec<SubscriberRow>>;
    /// Adds or replaces a subscriber (by username and domain).
    fn subscriber_put(&mut self, row: &SubscriberRow) -> Result<()>;
    /// Removes a subscriber; whether one was there.
    fn subscriber_delete(&mut self, username: &str, domain: &str) -> Result<bool>;

    /// Every row of an address table.
    fn addresses(&mut self, table: &str) -> Result<Vec<AddressRow>>;
    fn address_add(&mut self, table: &str, row: &AddressRow) -> Result<()>;
    /// Removes the rows with this group and address (and mask and port, when given).
    fn address_delete(
        &mut self,
        table: &str,
        grp: i64,
        ip_addr: &str,
        mask: Option<i64>,
        port: Option<i64>,
    ) -> Result<usize>;

    /// Adds an accounting record to `table` (acc), making the table (with
    /// Kamailio's `acc` columns and one text column per extra) when missing.
    fn acc_insert(&mut self, table: &str, record: &AccRecord) -> Result<()>;

    /// A number that changes when another connection commits a change (for caches).
    fn data_version(&mut self) -> Result<i64>;

    /// Every row of a dispatcher table.
    fn dispatchers(&mut self, table: &str, cols: &DispatcherColumns) -> Result<Vec<DispatcherRow>>;

    /// Runs one SQL statement written by the configuration (sqlops, avpops)
    /// and returns its rows, each value typed by its column.
    fn query(&mut self, sql: &str) -> Result<SqlRows>;
    /// Every row of a dialplan table, by priority.
    fn dialplan(&mut self, table: &str, cols: &DialplanColumns) -> Result<Vec<DialplanRow>>;
}

/// Opens the database a `db_url` names: `sqlite:///path/file.db`, or (built
/// with the `postgres` feature) `postgres://user:pass@host/db`, or (built with
/// the `mysql` feature) `mysql://user:pass@host[:port]/db`, created with its
/// schema on first use. Other schemes are named as not available rather than
/// misread.
pub fn open(url: &str) -> Result<Box<dyn Store>> {
    check_url(url).map_err(StoreError)?;
    if let Some(path) = url.strip_prefix("sqlite://") {
        return Ok(Box::new(Sqlite::open(path)?));
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Box::new(Postgres::connect(url)?));
    }
    #[cfg(feature = "mysql")]
    if url.starts_with("mysql://") {
        return Ok(Box::new(MySql::connect(url)?));
    }
    Err(StoreError(format!("db_url {url}: not a database URL")))
}

/// Checks, without opening anything, that `url` names a database this build
/// can open (for start-up errors at the `modparam` line): `sqlite://` with a
/// file name, `postgres://` when built with the `postgres` feature, a
/// well-formed `mysql://` URL naming a database when built with `mysql`.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return if path.is_empty() {
            Err(format!("db_url {url}: no file name"))
        } else {
            Ok(())
        };
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return if cfg!(feature = "postgres") {
            Ok(())
        } else {
            Err(format!(
                "db_url {url}: this build has no PostgreSQL support (feature \"postgres\")"
            ))
        };
    }
    if url.starts_with("mysql://") {
        #[cfg(feature = "mysql")]
        return mysql::parse_url(url).map(drop);
        #[cfg(not(feature = "mysql"))]
        return Err(format!(
            "db_url {url}: this build has no MySQL support (feature \"mysql\")"
        ));
    }
    let scheme = url.split("://").next().unwrap_or(url);
    Err(format!(
        "db_url {url}: the {scheme} database is not supported \
         (use sqlite:///path/file.db, postgres://user:pass@host/db or mysql://user:pass@host/db)"
    ))
}

/// Whether `name` can be used as a table or column name as it is (letters,
/// digits, `_`; not starting with a digit), so it is safe to put in SQL text.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// An SQL string literal of `v` for statements built as text (avpops,
/// alias_db, speeddial); `None` for text a literal cannot hold the same in
/// every database (backslash, NUL, invalid UTF-8).
pub fn sql_literal(v: &[u8]) -> Option<String> {
    if v.iter().any(|b| *b == b'\\' || *b == 0) {
        return None;
    }
    let s = std::str::from_utf8(v).ok()?;
    Some(format!("'{}'", s.replace('\'', "''")))
}

fn identifier(name: &str) -> Result<&str> {
    if is_identifier(name) {
        Ok(name)
    } else {
        Err(StoreError(format!(
            "{name:?} is not a usable table or column name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("location"));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("a;drop table x"));
        assert!(!is_identifier(""));
    }

    #[test]
    fn open_names_unsupported_databases() {
        let err = open("text:///etc/kamailio/dbtext").err().unwrap();
        assert!(
            err.0.contains("the text database is not supported"),
            "{err}"
        );
        assert!(open("sqlite://").is_err());
        // A malformed URL fails before any connection is tried.
        let err = open("mysql://kamailio:pw@localhost/").err().unwrap();
        assert!(err.0.contains("no database name"), "{err}");
    }

    #[test]
    fn check_url_knows_every_store() {
        assert!(check_url("sqlite:///tmp/x.db").is_ok());
        assert_eq!(
            check_url("postgres://u@h/d").is_ok(),
            cfg!(feature = "postgres")
        );
        assert_eq!(
            check_url("mysql://kamailio:kamailiorw@localhost/kamailio").is_ok(),
            cfg!(feature = "mysql")
        );
        let err = check_url("mysql://k@h:99999/k").unwrap_err();
        assert!(err.starts_with("db_url mysql://k@h:99999/k: "), "{err}");
        assert!(check_url("text:///x")
            .unwrap_err()
            .contains("text database"));
    }
}
