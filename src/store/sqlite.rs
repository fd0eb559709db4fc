//! The embedded database: one SQLite file with Kamailio's table and column
//! names, created with its schema on first use. WAL journal, so the command
//! line tools can write while the server reads.

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::time::{format_datetime, parse_datetime};
use super::{
    identifier, AccRecord, AddressRow, DialplanColumns, DialplanRow, DispatcherColumns,
    DispatcherRow, LocationRow, Result, SqlRows, SqlValue, Store, StoreError, SubscriberColumns,
    SubscriberRow,
};

/// Kamailio 5.6 table versions, written to the `version` table.
const VERSIONS: &[(&str, i64)] = &[
    ("subscriber", 7),
    ("address", 6),
    ("location", 9),
    ("dispatcher", 4),
    ("trusted", 6),
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS version (
    id INTEGER PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_t_name_idx UNIQUE (table_name)
);
CREATE TABLE IF NOT EXISTS subscriber (
    id INTEGER PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
);
CREATE INDEX IF NOT EXISTS subscriber_username_idx ON subscriber (username);
CREATE TABLE IF NOT EXISTS address (
    id INTEGER PRIMARY KEY NOT NULL,
    grp INTEGER DEFAULT 1 NOT NULL,
    ip_addr VARCHAR(50) NOT NULL,
    mask INTEGER DEFAULT 32 NOT NULL,
    port SMALLINT DEFAULT 0 NOT NULL,
    tag VARCHAR(64)
);
CREATE TABLE IF NOT EXISTS dispatcher (
    id INTEGER PRIMARY KEY NOT NULL,
    setid INTEGER DEFAULT 0 NOT NULL,
    destination VARCHAR(192) DEFAULT '' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    priority INTEGER DEFAULT 0 NOT NULL,
    attrs VARCHAR(128) DEFAULT '' NOT NULL,
    description VARCHAR(64) DEFAULT '' NOT NULL
);
CREATE TABLE IF NOT EXISTS trusted (
    id INTEGER PRIMARY KEY NOT NULL,
    src_ip VARCHAR(50) NOT NULL,
    proto VARCHAR(4) NOT NULL,
    from_pattern VARCHAR(64) DEFAULT NULL,
    ruri_pattern VARCHAR(64) DEFAULT NULL,
    tag VARCHAR(64),
    priority INTEGER DEFAULT 0 NOT NULL
);
CREATE INDEX IF NOT EXISTS trusted_peer_idx ON trusted (src_ip);
";

/// The columns of a usrloc table, in the order [`location_row`] reads them.
const LOCATION_COLUMNS: &str = "ruid, username, domain, contact, received, path, expires, q, \
    callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, instance, reg_id, \
    server_id, connection_id, keepalive, partition";

fn location_schema(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT {table}_ruid_idx UNIQUE (ruid)
);
CREATE INDEX IF NOT EXISTS {table}_account_contact_idx ON {table} (username, domain, contact);
CREATE INDEX IF NOT EXISTS {table}_expires_idx ON {table} (expires);"
    )
}

/// A SQLite database file.
pub struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    /// Opens (creating if needed) the file at `path` and its schema.
    pub fn open(path: &str) -> Result<Sqlite> {
        let conn = Connection::open(path).map_err(|e| StoreError(format!("{path}: {e}")))?;
        Sqlite::init(conn)
    }

    /// A private database in memory (tests).
    pub fn memory() -> Result<Sqlite> {
        Sqlite::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Sqlite> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // WAL lets the command line write while the server holds the file open.
        let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
        conn.execute_batch(SCHEMA)?;
        let mut db = Sqlite { conn };
        for (table, version) in VERSIONS {
            db.set_version(table, *version)?;
        }
        db.ensure_location_table("location")?;
        Ok(db)
    }

    fn set_version(&mut self, table: &str, version: i64) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO version (table_name, table_version) VALUES (?1, ?2)",
            params![table, version],
        )?;
        Ok(())
    }
}

fn location_row(r: &Row<'_>) -> rusqlite::Result<LocationRow> {
    let time = |i: usize| -> rusqlite::Result<i64> {
        // Kamailio writes DATETIME text; accept a number as well.
        Ok(match r.get::<_, rusqlite::types::Value>(i)? {
            rusqlite::types::Value::Integer(n) => n,
            rusqlite::types::Value::Text(t) => parse_datetime(&t).unwrap_or(0),
            _ => 0,
        })
    };
    Ok(LocationRow {
        ruid: r.get(0)?,
        username: r.get(1)?,
        domain: r.get(2)?,
        contact: r.get(3)?,
        received: r.get(4)?,
        path: r.get(5)?,
        expires: time(6)?,
        q: r.get(7)?,
        callid: r.get(8)?,
        cseq: r.get(9)?,
        last_modified: time(10)?,
        flags: r.get(11)?,
        cflags: r.get(12)?,
        user_agent: r.get(13)?,
        socket: r.get(14)?,
        methods: r.get(15)?,
        instance: r.get(16)?,
        reg_id: r.get(17)?,
        server_id: r.get(18)?,
        connection_id: r.get(19)?,
        keepalive: r.get(20)?,
        partition: r.get(21)?,
    })
}

/// A permanent contact (`expires` 0) is stored as Kamailio does, with its far-future default.
const PERMANENT: &str = "2030-05-28 21:32:15";

fn expires_text(unix: i64) -> String {
    if unix == 0 {
        PERMANENT.to_string()
    } else {
        format_datetime(unix)
    }
}

fn permanent_is_zero(mut r: LocationRow) -> LocationRow {
    if format_datetime(r.expires) == PERMANENT {
        r.expires = 0;
    }
    r
}

impl Store for Sqlite {
    fn query(&mut self, sql: &str) -> Result<SqlRows> {
        let mut stmt = self.conn.prepare(sql)?;
        let declared: Vec<Option<ColumnType>> = stmt
            .columns()
            .iter()
            .map(|c| c.decl_type().map(ColumnType::declared))
            .collect();
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let mut types: Option<Vec<ColumnType>> = None;
        let mut out = Vec::new();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let types = types.get_or_insert_with(|| {
                declared
                    .iter()
                    .enumerate()
                    .map(|(i, d)| d.unwrap_or_else(|| ColumnType::of(row.get_ref(i).ok())))
                    .collect()
            });
            let mut values = Vec::with_capacity(types.len());
            for (i, t) in types.iter().enumerate() {
                values.push(t.convert(row.get_ref(i)?));
            }
            out.push(values);
        }
        drop(rows);
        drop(stmt);
        Ok(SqlRows {
            columns,
            rows: out,
            affected: self.conn.changes(),
        })
    }

    fn ensure_location_table(&mut self, table: &str) -> Result<()> {
        let table = identifier(table)?;
        self.conn.execute_batch(&location_schema(table))?;
        self.set_version(table, 9)
    }

    fn location_load(&mut self, table: &str) -> Result<Vec<LocationRow>> {
        let table = identifier(table)?;
        let mut st = self
            .conn
            .prepare(&format!("SELECT {LOCATION_COLUMNS} FROM {table}"))?;
        let rows = st.query_map([], location_row)?;
        let out: Vec<LocationRow> = rows.collect::<rusqlite::Result<_>>()?;
        Ok(out.into_iter().map(permanent_is_zero).collect())
    }

    fn location_aor(
        &mut self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Vec<LocationRow>> {
        let table = identifier(table)?;
        let sql =
            format!("SELECT {LOCATION_COLUMNS} FROM {table} WHERE username = ?1 AND domain IS ?2");
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params![username, domain], location_row)?;
        let out: Vec<LocationRow> = rows.collect::<rusqlite::Result<_>>()?;
        Ok(out.into_iter().map(permanent_is_zero).collect())
    }

    fn location_upsert(&mut self, table: &str, rows: &[LocationRow]) -> Result<()> {
        let table = identifier(table)?;
        let sql = format!(
            "INSERT OR REPLACE INTO {table} ({LOCATION_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
             ?19, ?20, ?21, ?22)"
        );
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(&sql)?;
            for r in rows {
                st.execute(params![
                    r.ruid,
                    r.username,
                    r.domain,
                    r.contact,
                    r.received,
                    r.path,
                    expires_text(r.expires),
                    r.q,
                    r.callid,
                    r.cseq,
                    format_datetime(r.last_modified),
                    r.flags,
                    r.cflags,
                    r.user_agent,
                    r.socket,
                    r.methods,
                    r.instance,
                    r.reg_id,
                    r.server_id,
                    r.connection_id,
                    r.keepalive,
                    r.partition,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn location_delete(&mut self, table: &str, ruids: &[String]) -> Result<()> {
        let table = identifier(table)?;
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(&format!("DELETE FROM {table} WHERE ruid = ?1"))?;
            for ruid in ruids {
                st.execute([ruid])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn location_delete_expired(&mut self, table: &str, unix: i64) -> Result<usize> {
        let table = identifier(table)?;
        // DATETIME text in one format compares in time order.
        Ok(self.conn.execute(
            &format!("DELETE FROM {table} WHERE expires <= ?1 AND expires != ?2"),
            params![format_datetime(unix), PERMANENT],
        )?)
    }

    fn subscribers(&mut self, c: &SubscriberColumns) -> Result<Vec<SubscriberRow>> {
        let sql = format!(
            "SELECT {}, {}, {}, {} FROM {}",
            identifier(&c.user)?,
            identifier(&c.domain)?,
            identifier(&c.password)?,
            identifier(&c.password2)?,
            identifier(&c.table)?
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map([], |r| {
            let text = |i: usize| -> rusqlite::Result<String> {
                Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default())
            };
            let secret = text(2)?;
            Ok(SubscriberRow {
                username: text(0)?,
                domain: text(1)?,
                // The module decides (calculate_ha1) which of the two it is.
                password: secret.clone(),
                ha1: secret,
                ha1b: text(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn subscriber_put(&mut self, r: &SubscriberRow) -> Result<()> {
        self.conn.execute(
            "INSERT INTO subscriber (username, domain, password, ha1, ha1b) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (username, domain) DO UPDATE SET \
             password = excluded.password, ha1 = excluded.ha1, ha1b = excluded.ha1b",
            params![r.username, r.domain, r.password, r.ha1, r.ha1b],
        )?;
        Ok(())
    }

    fn subscriber_delete(&mut self, username: &str, domain: &str) -> Result<bool> {
        let n = self.conn.execute(
            "DELETE FROM subscriber WHERE username = ?1 AND domain = ?2",
            params![username, domain],
        )?;
        Ok(n > 0)
    }

    fn addresses(&mut self, table: &str) -> Result<Vec<AddressRow>> {
        let table = identifier(table)?;
        let mut st = self.conn.prepare(&format!(
            "SELECT grp, ip_addr, mask, port, tag FROM {table} ORDER BY id"
        ))?;
        let rows = st.query_map([], |r| {
            Ok(AddressRow {
                grp: r.get(0)?,
                ip_addr: r.get(1)?,
                mask: r.get(2)?,
                port: r.get(3)?,
                tag: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn address_add(&mut self, table: &str, r: &AddressRow) -> Result<()> {
        let table = identifier(table)?;
        self.conn.execute(
            &format!(
                "INSERT INTO {table} (grp, ip_addr, mask, port, tag) VALUES (?1, ?2, ?3, ?4, ?5)"
            ),
            params![r.grp, r.ip_addr, r.mask, r.port, r.tag],
        )?;
        Ok(())
    }

    fn address_delete(
        &mut self,
        table: &str,
        grp: i64,
        ip_addr: &str,
        mask: Option<i64>,
        port: Option<i64>,
    ) -> Result<usize> {
        let table = identifier(table)?;
        Ok(self.conn.execute(
            &format!(
                "DELETE FROM {table} WHERE grp = ?1 AND ip_addr = ?2 \
                 AND (?3 IS NULL OR mask = ?3) AND (?4 IS NULL OR port = ?4)"
            ),
            params![grp, ip_addr, mask, port],
        )?)
    }

    fn dispatchers(&mut self, table: &str, cols: &DispatcherColumns) -> Result<Vec<DispatcherRow>> {
        let mut st = self.conn.prepare(&cols.select(table)?)?;
        let rows = st.query_map([], |r| {
            Ok(DispatcherRow {
                setid: r.get(0)?,
                destination: r.get(1)?,
                flags: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                priority: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                attrs: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn dialplan(&mut self, table: &str, cols: &DialplanColumns) -> Result<Vec<DialplanRow>> {
        let mut st = self.conn.prepare(&cols.select(table)?)?;
        let rows = st.query_map([], |r| {
            let int = |i| r.get::<_, Option<i64>>(i).map(Option::unwrap_or_default);
            Ok(DialplanRow {
                dpid: int(0)?,
                pr: int(1)?,
                match_op: int(2)?,
                match_exp: r.get(3)?,
                match_len: int(4)?,
                subst_exp: r.get(5)?,
                repl_exp: r.get(6)?,
                attrs: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn acc_insert(&mut self, table: &str, rec: &AccRecord) -> Result<()> {
        let (create, insert) = super::acc_sql(
            super::Dialect::Standard,
            table,
            rec,
            "id INTEGER PRIMARY KEY AUTOINCREMENT",
            "TEXT",
            "$7",
        )?;
        self.conn.execute(&create, [])?;
        let time = format_datetime(rec.time);
        let mut values: Vec<Option<&str>> = vec![
            Some(rec.method.as_str()),
            Some(rec.from_tag.as_str()),
            Some(rec.to_tag.as_str()),
            Some(rec.callid.as_str()),
            Some(rec.sip_code.as_str()),
            Some(rec.sip_reason.as_str()),
            Some(time.as_str()),
        ];
        values.extend(rec.extra.iter().map(|(_, v)| v.as_deref()));
        self.conn
            .execute(&insert, rusqlite::params_from_iter(values.iter()))?;
        Ok(())
    }

    fn data_version(&mut self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }
}

/// How Kamailio's `db_sqlite` types a column of a query's result: by the
/// declared type of the table column, else by the value in the first row;
/// every row's value is then read as that type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColumnType {
    Int,
    BigInt,
    Str,
    Double,
    Blob,
    Datetime,
}

impl ColumnType {
    /// From a declared type, by the first of these found while reading it
    /// left to right (SQLite's own loose matching): `INT` (and `SERI`al) an
    /// integer, `BIGI` a 64-bit one, `CHAR`, `CLOB`, `TEXT` text, `REAL`,
    /// `FLOA`, `DOUB` floating point, `BLOB`, `TIME`/`DATE` a date; anything
    /// else an integer.
    fn declared(decl: &str) -> ColumnType {
        let up: Vec<u8> = decl.bytes().map(|b| b.to_ascii_uppercase()).collect();
        for end in 1..=up.len() {
            let seen = &up[..end];
            if seen.ends_with(b"INT") {
                return ColumnType::Int;
            }
            if end < 4 {
                continue;
            }
            match &seen[end - 4..] {
                b"SERI" => return ColumnType::Int,
                b"BIGI" => return ColumnType::BigInt,
                b"CHAR" | b"CLOB" | b"TEXT" => return ColumnType::Str,
                b"REAL" | b"FLOA" | b"DOUB" => return ColumnType::Double,
                b"BLOB" => return ColumnType::Blob,
                b"TIME" | b"DATE" => return ColumnType::Datetime,
                _ => {}
            }
        }
        ColumnType::Int
    }

    /// From a value, for a column without declared type (an expression); a
    /// `NULL` makes it text.
    fn of(v: Option<ValueRef<'_>>) -> ColumnType {
        match v {
            Some(ValueRef::Integer(_)) => ColumnType::Int,
            Some(ValueRef::Real(_)) => ColumnType::Double,
            Some(ValueRef::Blob(_)) => ColumnType::Blob,
            _ => ColumnType::Str,
        }
    }

    /// Reads `v` as this type, the way SQLite's `sqlite3_column_*` convert.
    fn convert(self, v: ValueRef<'_>) -> SqlValue {
        if matches!(v, ValueRef::Null) {
            return SqlValue::Null;
        }
        match self {
            ColumnType::Int => SqlValue::Int(i64::from(as_int64(v) as i32)),
            ColumnType::BigInt => SqlValue::BigInt(as_int64(v)),
            ColumnType::Double => SqlValue::Double(as_double(v)),
            ColumnType::Str | ColumnType::Blob => SqlValue::Str(as_text(v)),
            // Kamailio keeps dates in SQLite as Julian day numbers.
            ColumnType::Datetime => SqlValue::Int(((as_double(v) - 2_440_587.5) * 86_400.0) as i64),
        }
    }
}

fn as_int64(v: ValueRef<'_>) -> i64 {
    match v {
        ValueRef::Integer(i) => i,
        ValueRef::Real(f) => f as i64,
        ValueRef::Text(t) | ValueRef::Blob(t) => int_prefix(t),
        ValueRef::Null => 0,
    }
}

fn as_double(v: ValueRef<'_>) -> f64 {
    match v {
        ValueRef::Integer(i) => i as f64,
        ValueRef::Real(f) => f,
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let s = String::from_utf8_lossy(t);
            let s = s.trim_start();
            // The longest prefix that reads as a number.
            (1..=s.len())
                .rev()
                .filter(|&n| s.is_char_boundary(n))
                .find_map(|n| s[..n].parse::<f64>().ok())
                .unwrap_or(0.0)
        }
        ValueRef::Null => 0.0,
    }
}

fn as_text(v: ValueRef<'_>) -> Vec<u8> {
    match v {
        ValueRef::Integer(i) => i.to_string().into_bytes(),
        ValueRef::Real(f) => real_text(f).into_bytes(),
        ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
        ValueRef::Null => Vec::new(),
    }
}

/// A floating point value as SQLite prints it: up to 15 significant digits,
/// and `.0` after a whole number.
fn real_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return format!("{f:.1}");
    }
    let s = format!("{:.*e}", 14, f);
    match s.split_once('e') {
        Some((m, e)) => {
            let exp: i32 = e.parse().unwrap_or(0);
            if (-5..15).contains(&exp) {
                let digits = (14 - exp).max(0) as usize;
                let t = format!("{f:.digits$}");
                let t = t.trim_end_matches('0');
                t.strip_suffix('.')
                    .map_or(t.to_string(), |w| format!("{w}.0"))
            } else {
                let m = m.trim_end_matches('0').trim_end_matches('.');
                format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
            }
        }
        None => s,
    }
}

/// The optionally signed decimal number at the start of `t` (after blanks), else 0.
fn int_prefix(t: &[u8]) -> i64 {
    let t = t.trim_ascii_start();
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut n: i64 = 0;
    for d in digits.iter().take_while(|d| d.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ruid: &str, contact: &str, expires: i64) -> LocationRow {
        LocationRow {
            ruid: ruid.into(),
            username: "alice".into(),
            contact: contact.into(),
            expires,
            q: -1.0,
            callid: "c1".into(),
            cseq: 1,
            last_modified: 1_700_000_000,
            methods: Some(-1),
            ..LocationRow::default()
        }
    }

    #[test]
    fn location_rows_round_trip() {
        let mut db = Sqlite::memory().unwrap();
        let rows = [
            row("r1", "sip:alice@1.2.3.4", 1_700_000_100),
            row("r2", "sip:alice@5.6.7.8", 0),
        ];
        db.location_upsert("location", &rows).unwrap();
        let mut back = db.location_load("location").unwrap();
        back.sort_by(|a, b| a.ruid.cmp(&b.ruid));
        assert_eq!(back, rows);
        assert_eq!(db.location_aor("location", "alice", None).unwrap().len(), 2);
        assert_eq!(db.location_aor("location", "bob", None).unwrap().len(), 0);
        assert_eq!(
            db.location_delete_expired("location", 1_700_000_100)
                .unwrap(),
            1
        );
        db.location_delete("location", &["r2".into()]).unwrap();
        assert!(db.location_load("location").unwrap().is_empty());
    }

    #[test]
    fn other_usrloc_tables_are_created() {
        let mut db = Sqlite::memory().unwrap();
        db.ensure_location_table("aliases").unwrap();
        db.location_upsert("aliases", &[row("a", "sip:x@y", 5)])
            .unwrap();
        assert_eq!(db.location_load("aliases").unwrap().len(), 1);
        assert!(db.ensure_location_table("x; drop").is_err());
    }

    #[test]
    fn subscribers_and_addresses() {
        let mut db = Sqlite::memory().unwrap();
        let alice = SubscriberRow {
            username: "alice".into(),
            domain: "example.com".into(),
            password: "pw".into(),
            ha1: "h".into(),
            ha1b: "hb".into(),
        };
        db.subscriber_put(&alice).unwrap();
        db.subscriber_put(&SubscriberRow {
            password: "pw2".into(),
            ..alice.clone()
        })
        .unwrap();
        let cols = SubscriberColumns {
            password: "password".into(),
            ..SubscriberColumns::default()
        };
        let all = db.subscribers(&cols).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].password, "pw2");
        assert!(db.subscriber_delete("alice", "example.com").unwrap());
        assert!(!db.subscriber_delete("alice", "example.com").unwrap());

        let a = AddressRow {
            grp: 1,
            ip_addr: "10.0.0.0".into(),
            mask: 8,
            port: 0,
            tag: None,
        };
        db.address_add("address", &a).unwrap();
        assert_eq!(db.addresses("address").unwrap(), [a]);
        assert_eq!(
            db.address_delete("address", 1, "10.0.0.0", None, None)
                .unwrap(),
            1
        );
    }
}

#[cfg(test)]
mod query_tests {
    use super::*;

    #[test]
    fn declared_types_read_as_kamailio_does() {
        assert_eq!(ColumnType::declared("INTEGER"), ColumnType::Int);
        assert_eq!(ColumnType::declared("smallint"), ColumnType::Int);
        assert_eq!(ColumnType::declared("BIGINT"), ColumnType::BigInt);
        assert_eq!(ColumnType::declared("VARCHAR(64)"), ColumnType::Str);
        assert_eq!(ColumnType::declared("TEXT"), ColumnType::Str);
        assert_eq!(ColumnType::declared("REAL"), ColumnType::Double);
        assert_eq!(ColumnType::declared("DOUBLE PRECISION"), ColumnType::Double);
        assert_eq!(
            ColumnType::declared("TIMESTAMP WITHOUT TIME ZONE"),
            ColumnType::Datetime
        );
        assert_eq!(ColumnType::declared("BLOB"), ColumnType::Blob);
        assert_eq!(ColumnType::declared("NUMERIC"), ColumnType::Int);
    }

    #[test]
    fn values_follow_the_column_type() {
        let mut db = Sqlite::memory().unwrap();
        db.query("CREATE TABLE t (i INTEGER, s VARCHAR(8), b BIGINT, r REAL)")
            .unwrap();
        db.query("INSERT INTO t VALUES (7, 'x', 5000000000, 1.5), ('12ab', 3, NULL, 2)")
            .unwrap();
        let r = db.query("SELECT i, s, b, r FROM t ORDER BY rowid").unwrap();
        assert_eq!(r.columns, ["i", "s", "b", "r"]);
        assert_eq!(
            r.rows,
            [
                vec![
                    SqlValue::Int(7),
                    SqlValue::Str(b"x".to_vec()),
                    SqlValue::BigInt(5_000_000_000),
                    SqlValue::Double(1.5)
                ],
                vec![
                    SqlValue::Int(12),
                    SqlValue::Str(b"3".to_vec()),
                    SqlValue::Null,
                    SqlValue::Double(2.0)
                ],
            ]
        );
        // Expressions: typed by the first row's value; NULL first makes text.
        let r = db
            .query("SELECT NULL AS n, 1 + 1 AS two, 'a' || 'b' UNION ALL SELECT 5, 3, 4")
            .unwrap();
        assert_eq!(r.columns[2], "'a' || 'b'");
        assert_eq!(
            r.rows[1],
            [
                SqlValue::Str(b"5".to_vec()),
                SqlValue::Int(3),
                SqlValue::Str(b"4".to_vec())
            ]
        );
        assert!(db.query("SELECT * FROM t WHERE 0").unwrap().rows.is_empty());
        assert_eq!(db.query("UPDATE t SET i = 1").unwrap().affected, 2);
        assert!(db.query("SELECT nope FROM t").is_err());
    }

    #[test]
    fn reals_print_as_sqlite() {
        assert_eq!(real_text(2.0), "2.0");
        assert_eq!(real_text(1.25), "1.25");
        assert_eq!(real_text(0.1), "0.1");
        assert_eq!(int_prefix(b" -12x"), -12);
        assert_eq!(int_prefix(b"abc"), 0);
    }
}
