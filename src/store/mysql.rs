//! MySQL and MariaDB (`mysql://user:password@host[:port]/db`, Kamailio's
//! `db_mysql` URL): the database of most existing Kamailio installations.
//! Same tables and columns as [`super::Sqlite`] and [`super::Postgres`], in
//! the MySQL types of Kamailio's own schema (times in `DATETIME` columns), so
//! the tables `kamdbctl create` made are used as they are. Built with the
//! `mysql` cargo feature.
//!
//! The URL is read by the `mysql` crate: user and password are
//! percent-decoded (a `@` or `/` in a password is written `%40`, `%2F`), and
//! connection options may follow as a query (`?tcp_connect_timeout_ms=2000`).
//! Host `localhost` means the server's unix socket when one is found in the
//! usual places (as for Kamailio's client library), else TCP; for another
//! local address the `mysql` crate moves the connection to the socket the
//! server reports.

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, Row, TxOpts, Value};

use super::time::{format_datetime, parse_datetime};
use super::{
    identifier, AccRecord, AddressRow, Dialect, DialplanColumns, DialplanRow, DispatcherColumns,
    DispatcherRow, LocationRow, Result, SqlRows, SqlValue, Store, StoreError, SubscriberColumns,
    SubscriberRow, TextColumn,
};

/// The type Kamailio's `db_mysql` gives a column of MySQL type `t`.
fn text_column(t: mysql::consts::ColumnType) -> TextColumn {
    use mysql::consts::ColumnType as T;
    match t {
        T::MYSQL_TYPE_TINY
        | T::MYSQL_TYPE_SHORT
        | T::MYSQL_TYPE_LONG
        | T::MYSQL_TYPE_INT24
        | T::MYSQL_TYPE_YEAR
        | T::MYSQL_TYPE_BIT => TextColumn::Int,
        T::MYSQL_TYPE_LONGLONG => TextColumn::BigInt,
        T::MYSQL_TYPE_FLOAT
        | T::MYSQL_TYPE_DOUBLE
        | T::MYSQL_TYPE_DECIMAL
        | T::MYSQL_TYPE_NEWDECIMAL => TextColumn::Double,
        T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_TIMESTAMP => {
            TextColumn::Datetime
        }
        _ => TextColumn::Str,
    }
}

/// One value of the text protocol as a column of type `t`.
fn sql_value(t: TextColumn, v: &Value) -> SqlValue {
    match v {
        Value::NULL => SqlValue::Null,
        Value::Bytes(b) => t.value(Some(b)),
        Value::Int(i) => t.value(Some(i.to_string().as_bytes())),
        Value::UInt(i) => t.value(Some(i.to_string().as_bytes())),
        Value::Float(f) => t.value(Some(f.to_string().as_bytes())),
        Value::Double(f) => t.value(Some(f.to_string().as_bytes())),
        other => t.value(Some(other.as_sql(true).trim_matches('\'').as_bytes())),
    }
}

impl From<mysql::Error> for StoreError {
    fn from(e: mysql::Error) -> StoreError {
        match e {
            mysql::Error::MySqlError(e) => StoreError(format!("{} ({})", e.message, e.code)),
            e => StoreError(format!("mysql: {e}")),
        }
    }
}

/// How long connecting may take when the URL does not say
/// (`tcp_connect_timeout_ms`): a store thread waiting on a host that does not
/// answer holds every job queued behind it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection unused for this long is pinged before use: servers close idle
/// connections (`wait_timeout`), and the first statement after that would fail.
const IDLE_CHECK: Duration = Duration::from_secs(60);

/// Server error codes that end the connection (the next operation connects
/// again): shutdown in progress, aborted, killed, disconnected for inactivity.
const CONNECTION_LOST: [u16; 4] = [1053, 1152, 1927, 4031];

/// The connection options of a `mysql://` URL, checked: the URL parses and
/// names a database (Kamailio requires one too).
pub fn parse_url(url: &str) -> std::result::Result<Opts, String> {
    let opts = Opts::from_url(url).map_err(|e| format!("db_url {url}: {e}"))?;
    if opts.get_db_name().is_none_or(str::is_empty) {
        return Err(format!(
            "db_url {url}: no database name (mysql://user:password@host[:port]/database)"
        ));
    }
    let timeout = opts.get_tcp_connect_timeout().or(Some(CONNECT_TIMEOUT));
    Ok(OptsBuilder::from_opts(opts)
        .tcp_connect_timeout(timeout)
        .into())
}

/// Where MySQL and MariaDB put their unix socket (Debian's first).
const SOCKETS: [&str; 3] = [
    "/run/mysqld/mysqld.sock",
    "/var/run/mysqld/mysqld.sock",
    "/tmp/mysql.sock",
];

/// For host `localhost` (Kamailio's stock URL), the server's unix socket
/// when there is one, as the MySQL client library Kamailio uses connects
/// there: a server with networking off is reached too. `exists` says
/// whether a path is there; a `socket` given in the URL is kept.
fn local_socket(opts: Opts, exists: impl Fn(&str) -> bool) -> Opts {
    if opts.get_ip_or_hostname() != "localhost" || opts.get_socket().is_some() {
        return opts;
    }
    match SOCKETS.into_iter().find(|p| exists(p)) {
        Some(path) => OptsBuilder::from_opts(opts).socket(Some(path)).into(),
        None => opts,
    }
}

/// Kamailio's MySQL tables (schema version 5.6), and their `version` rows.
const SCHEMA: [&str; 6] = [
    "CREATE TABLE IF NOT EXISTS version (
    id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INT UNSIGNED DEFAULT 0 NOT NULL,
    CONSTRAINT t_name_idx UNIQUE (table_name)
)",
    "CREATE TABLE IF NOT EXISTS subscriber (
    id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT account_idx UNIQUE (username, domain),
    KEY username_idx (username)
)",
    "CREATE TABLE IF NOT EXISTS address (
    id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    grp INT(11) UNSIGNED DEFAULT 1 NOT NULL,
    ip_addr VARCHAR(50) NOT NULL,
    mask INT DEFAULT 32 NOT NULL,
    port SMALLINT(5) UNSIGNED DEFAULT 0 NOT NULL,
    tag VARCHAR(64)
)",
    "CREATE TABLE IF NOT EXISTS dispatcher (
    id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    setid INT DEFAULT 0 NOT NULL,
    destination VARCHAR(192) DEFAULT '' NOT NULL,
    flags INT DEFAULT 0 NOT NULL,
    priority INT DEFAULT 0 NOT NULL,
    attrs VARCHAR(128) DEFAULT '' NOT NULL,
    description VARCHAR(64) DEFAULT '' NOT NULL
)",
    "CREATE TABLE IF NOT EXISTS trusted (
    id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    src_ip VARCHAR(50) NOT NULL,
    proto VARCHAR(4) NOT NULL,
    from_pattern VARCHAR(64) DEFAULT NULL,
    ruri_pattern VARCHAR(64) DEFAULT NULL,
    tag VARCHAR(64),
    priority INT DEFAULT 0 NOT NULL,
    KEY peer_idx (src_ip)
)",
    "INSERT IGNORE INTO version (table_name, table_version) VALUES
    ('subscriber', 7), ('address', 6), ('location', 9), ('dispatcher', 4), ('trusted', 6)",
];

/// A usrloc table in Kamailio's MySQL types (`partition` is a reserved word
/// in MySQL: every column name is quoted).
fn location_schema(table: &str) -> [String; 2] {
    [
        format!(
            "CREATE TABLE IF NOT EXISTS `{table}` (
    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
    `ruid` VARCHAR(64) DEFAULT '' NOT NULL,
    `username` VARCHAR(64) DEFAULT '' NOT NULL,
    `domain` VARCHAR(64) DEFAULT NULL,
    `contact` VARCHAR(512) DEFAULT '' NOT NULL,
    `received` VARCHAR(128) DEFAULT NULL,
    `path` VARCHAR(512) DEFAULT NULL,
    `expires` DATETIME DEFAULT '2030-05-28 21:32:15' NOT NULL,
    `q` DECIMAL(10,2) DEFAULT 1.0 NOT NULL,
    `callid` VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    `cseq` INT(11) DEFAULT 1 NOT NULL,
    `last_modified` DATETIME DEFAULT '2000-01-01 00:00:01' NOT NULL,
    `flags` INT(11) DEFAULT 0 NOT NULL,
    `cflags` INT(11) DEFAULT 0 NOT NULL,
    `user_agent` VARCHAR(255) DEFAULT '' NOT NULL,
    `socket` VARCHAR(64) DEFAULT NULL,
    `methods` INT(11) DEFAULT NULL,
    `instance` VARCHAR(255) DEFAULT NULL,
    `reg_id` INT(11) DEFAULT 0 NOT NULL,
    `server_id` INT(11) DEFAULT 0 NOT NULL,
    `connection_id` INT(11) DEFAULT 0 NOT NULL,
    `keepalive` INT(11) DEFAULT 0 NOT NULL,
    `partition` INT(11) DEFAULT 0 NOT NULL,
    CONSTRAINT ruid_idx UNIQUE (`ruid`),
    KEY account_contact_idx (`username`, `domain`, `contact`),
    KEY expires_idx (`expires`),
    KEY connection_idx (`server_id`, `connection_id`)
)"
        ),
        format!("INSERT IGNORE INTO version (table_name, table_version) VALUES ('{table}', 9)"),
    ]
}

/// The location columns, in [`LocationRow`] order.
const COLUMNS: [&str; 22] = [
    "ruid",
    "username",
    "domain",
    "contact",
    "received",
    "path",
    "expires",
    "q",
    "callid",
    "cseq",
    "last_modified",
    "flags",
    "cflags",
    "user_agent",
    "socket",
    "methods",
    "instance",
    "reg_id",
    "server_id",
    "connection_id",
    "keepalive",
    "partition",
];

/// The columns as read: times as text, `q` as a double.
const SELECT: &str = "`ruid`, `username`, `domain`, `contact`, `received`, `path`, \
    DATE_FORMAT(`expires`, '%Y-%m-%d %H:%i:%s'), `q` + 0e0, `callid`, `cseq`, \
    DATE_FORMAT(`last_modified`, '%Y-%m-%d %H:%i:%s'), `flags`, `cflags`, `user_agent`, \
    `socket`, `methods`, `instance`, `reg_id`, `server_id`, `connection_id`, `keepalive`, \
    `partition`";

const PERMANENT: &str = "2030-05-28 21:32:15";

/// Column `i` of `row` as `T`; a missing column or a value of another type is
/// an error, not a panic.
fn get<T: mysql::prelude::FromValue>(row: &Row, i: usize) -> Result<T> {
    match row.get_opt::<T, usize>(i) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(StoreError(format!(
            "mysql: column {} ({:?}): {e}",
            i + 1,
            row.columns_ref().get(i).map(|c| c.name_str().into_owned())
        ))),
        None => Err(StoreError(format!("mysql: no column {}", i + 1))),
    }
}

/// Column `i` as text, SQL NULL as empty.
fn text(row: &Row, i: usize) -> Result<String> {
    Ok(get::<Option<String>>(row, i)?.unwrap_or_default())
}

fn location_row(r: &Row) -> Result<LocationRow> {
    let time = |i: usize| -> Result<i64> {
        Ok(match get::<Option<String>>(r, i)?.as_deref() {
            Some(PERMANENT) | None => 0,
            Some(t) => parse_datetime(t).unwrap_or(0),
        })
    };
    Ok(LocationRow {
        ruid: get(r, 0)?,
        username: get(r, 1)?,
        domain: get(r, 2)?,
        contact: get(r, 3)?,
        received: get(r, 4)?,
        path: get(r, 5)?,
        expires: time(6)?,
        q: get(r, 7)?,
        callid: get(r, 8)?,
        cseq: get(r, 9)?,
        last_modified: time(10)?,
        flags: get(r, 11)?,
        cflags: get(r, 12)?,
        user_agent: get(r, 13)?,
        socket: get(r, 14)?,
        methods: get(r, 15)?,
        instance: get(r, 16)?,
        reg_id: get(r, 17)?,
        server_id: get(r, 18)?,
        connection_id: get(r, 19)?,
        keepalive: get(r, 20)?,
        partition: get(r, 21)?,
    })
}

fn location_values(r: &LocationRow) -> Vec<Value> {
    let expires = if r.expires == 0 {
        PERMANENT.to_string()
    } else {
        format_datetime(r.expires)
    };
    vec![
        r.ruid.clone().into(),
        r.username.clone().into(),
        r.domain.clone().into(),
        r.contact.clone().into(),
        r.received.clone().into(),
        r.path.clone().into(),
        expires.into(),
        r.q.into(),
        r.callid.clone().into(),
        r.cseq.into(),
        format_datetime(r.last_modified).into(),
        r.flags.into(),
        r.cflags.into(),
        r.user_agent.clone().into(),
        r.socket.clone().into(),
        r.methods.into(),
        r.instance.clone().into(),
        r.reg_id.into(),
        r.server_id.into(),
        r.connection_id.into(),
        r.keepalive.into(),
        r.partition.into(),
    ]
}

/// Whether `e` leaves the connection unusable (it is dropped and made again
/// by the next operation) rather than being the failure of one statement.
fn connection_lost(e: &mysql::Error) -> bool {
    match e {
        mysql::Error::MySqlError(e) => CONNECTION_LOST.contains(&e.code),
        mysql::Error::FromValueError(_) | mysql::Error::FromRowError(_) => false,
        _ => true,
    }
}

/// A connection to a MySQL or MariaDB database. When the server goes away
/// (restart, network outage) the operation under way fails and the
/// connection is dropped; the next operation connects again, so the store
/// recovers by itself when the database returns.
pub struct MySql {
    opts: Opts,
    conn: Option<Conn>,
    last_used: Instant,
}

impl MySql {
    /// Connects to `url` and creates the tables that are missing.
    pub fn connect(url: &str) -> Result<MySql> {
        let opts = local_socket(parse_url(url).map_err(StoreError)?, |p| {
            std::path::Path::new(p).exists()
        });
        let mut db = MySql {
            conn: Some(Conn::new(opts.clone())?),
            opts,
            last_used: Instant::now(),
        };
        db.run(|c| {
            for sql in SCHEMA {
                c.query_drop(sql)?;
            }
            for sql in location_schema("location") {
                c.query_drop(sql)?;
            }
            Ok(())
        })?;
        Ok(db)
    }

    /// Runs `f` on the connection, made again first if the last one was lost
    /// (or, idle for a while, no longer answers). A failure that ends the
    /// connection drops it; when that connection was an old one (the server
    /// restarted since, or closed it), `f` is run once more on a new
    /// connection, as Kamailio's `db_mysql` resubmits a query after
    /// reconnecting. The operations here are upserts and deletes by key,
    /// reads and `CREATE … IF NOT EXISTS`, safe to repeat; an acc `INSERT` is
    /// written twice if the connection broke after the server ran it (as with
    /// Kamailio).
    fn run<T>(&mut self, mut f: impl FnMut(&mut Conn) -> mysql::Result<T>) -> Result<T> {
        if self.last_used.elapsed() >= IDLE_CHECK {
            if let Some(c) = &mut self.conn {
                if c.ping().is_err() {
                    self.conn = None;
                }
            }
        }
        self.last_used = Instant::now();
        let reused = self.conn.is_some();
        match self.attempt(&mut f) {
            Err((e, true)) if reused => {
                log::warn!("mysql: connection lost ({e}), trying again on a new one");
                self.attempt(&mut f).map_err(|(e, _)| e)
            }
            r => r.map_err(|(e, _)| e),
        }
    }

    /// One try of `f`; on failure, whether the connection was lost.
    fn attempt<T>(
        &mut self,
        f: &mut impl FnMut(&mut Conn) -> mysql::Result<T>,
    ) -> std::result::Result<T, (StoreError, bool)> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                let c = Conn::new(self.opts.clone()).map_err(|e| (e.into(), false))?;
                log::info!("mysql: connected");
                self.conn.insert(c)
            }
        };
        f(conn).map_err(|e| {
            let lost = connection_lost(&e);
            if lost {
                self.conn = None;
            }
            (e.into(), lost)
        })
    }
}

impl Store for MySql {
    fn query(&mut self, sql: &str) -> Result<SqlRows> {
        self.run(|c| {
            let mut result = c.query_iter(sql)?;
            let cols = result.columns();
            let types: Vec<TextColumn> = cols
                .as_ref()
                .iter()
                .map(|c| text_column(c.column_type()))
                .collect();
            let columns = cols
                .as_ref()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect();
            // Read before the rows: the OK packet of an INSERT carries it.
            let changed = result.affected_rows();
            let mut rows = Vec::new();
            if let Some(set) = result.iter() {
                for row in set {
                    let row = row?;
                    rows.push(
                        types
                            .iter()
                            .enumerate()
                            .map(|(i, t)| {
                                row.as_ref(i).map_or(SqlValue::Null, |v| sql_value(*t, v))
                            })
                            .collect(),
                    );
                }
            }
            let affected = if types.is_empty() {
                changed
            } else {
                rows.len() as u64
            };
            Ok(SqlRows {
                columns,
                rows,
                affected,
            })
        })
    }

    fn ensure_location_table(&mut self, table: &str) -> Result<()> {
        let table = identifier(table)?;
        self.run(|c| {
            for sql in location_schema(table) {
                c.query_drop(sql)?;
            }
            Ok(())
        })
    }

    fn location_load(&mut self, table: &str) -> Result<Vec<LocationRow>> {
        let table = identifier(table)?;
        let rows: Vec<Row> = self.run(|c| c.query(format!("SELECT {SELECT} FROM `{table}`")))?;
        rows.iter().map(location_row).collect()
    }

    fn location_aor(
        &mut self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Vec<LocationRow>> {
        let table = identifier(table)?;
        let rows: Vec<Row> = self.run(|c| {
            c.exec(
                format!("SELECT {SELECT} FROM `{table}` WHERE `username` = ? AND `domain` <=> ?"),
                (username, domain),
            )
        })?;
        rows.iter().map(location_row).collect()
    }

    fn location_upsert(&mut self, table: &str, rows: &[LocationRow]) -> Result<()> {
        let table = identifier(table)?;
        if rows.is_empty() {
            return Ok(());
        }
        let cols = COLUMNS.map(|c| format!("`{c}`")).join(", ");
        let params = vec!["?"; COLUMNS.len()].join(", ");
        let updates = COLUMNS[1..]
            .iter()
            .map(|c| format!("`{c}` = VALUES(`{c}`)"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO `{table}` ({cols}) VALUES ({params}) ON DUPLICATE KEY UPDATE {updates}"
        );
        self.run(|c| {
            let mut tx = c.start_transaction(TxOpts::default())?;
            let st = tx.prep(&sql)?;
            for r in rows {
                tx.exec_drop(&st, location_values(r))?;
            }
            tx.commit()
        })
    }

    fn location_delete(&mut self, table: &str, ruids: &[String]) -> Result<()> {
        let table = identifier(table)?;
        if ruids.is_empty() {
            return Ok(());
        }
        self.run(|c| {
            for chunk in ruids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(", ");
                c.exec_drop(
                    format!("DELETE FROM `{table}` WHERE `ruid` IN ({marks})"),
                    chunk.to_vec(),
                )?;
            }
            Ok(())
        })
    }

    fn location_delete_expired(&mut self, table: &str, unix: i64) -> Result<usize> {
        let table = identifier(table)?;
        self.run(|c| {
            c.exec_drop(
                format!("DELETE FROM `{table}` WHERE `expires` <= ? AND `expires` != ?"),
                (format_datetime(unix), PERMANENT),
            )?;
            Ok(c.affected_rows() as usize)
        })
    }

    fn subscribers(&mut self, cols: &SubscriberColumns) -> Result<Vec<SubscriberRow>> {
        let sql = format!(
            "SELECT `{}`, `{}`, `{}`, `{}` FROM `{}`",
            identifier(&cols.user)?,
            identifier(&cols.domain)?,
            identifier(&cols.password)?,
            identifier(&cols.password2)?,
            identifier(&cols.table)?
        );
        let rows: Vec<Row> = self.run(|c| c.query(&sql))?;
        rows.iter()
            .map(|r| {
                Ok(SubscriberRow {
                    username: text(r, 0)?,
                    domain: text(r, 1)?,
                    password: text(r, 2)?,
                    ha1: text(r, 2)?,
                    ha1b: text(r, 3)?,
                })
            })
            .collect()
    }

    fn subscriber_put(&mut self, r: &SubscriberRow) -> Result<()> {
        self.run(|c| {
            c.exec_drop(
                "INSERT INTO subscriber (username, domain, password, ha1, ha1b) \
                 VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
                 password = VALUES(password), ha1 = VALUES(ha1), ha1b = VALUES(ha1b)",
                (&r.username, &r.domain, &r.password, &r.ha1, &r.ha1b),
            )
        })
    }

    fn subscriber_delete(&mut self, username: &str, domain: &str) -> Result<bool> {
        self.run(|c| {
            c.exec_drop(
                "DELETE FROM subscriber WHERE username = ? AND domain = ?",
                (username, domain),
            )?;
            Ok(c.affected_rows() > 0)
        })
    }

    fn addresses(&mut self, table: &str) -> Result<Vec<AddressRow>> {
        let table = identifier(table)?;
        let rows: Vec<Row> = self.run(|c| {
            c.query(format!(
                "SELECT `grp`, `ip_addr`, `mask`, `port`, `tag` FROM `{table}` ORDER BY `id`"
            ))
        })?;
        rows.iter()
            .map(|r| {
                Ok(AddressRow {
                    grp: get(r, 0)?,
                    ip_addr: get(r, 1)?,
                    mask: get(r, 2)?,
                    port: get(r, 3)?,
                    tag: get(r, 4)?,
                })
            })
            .collect()
    }

    fn address_add(&mut self, table: &str, r: &AddressRow) -> Result<()> {
        let table = identifier(table)?;
        self.run(|c| {
            c.exec_drop(
                format!(
                    "INSERT INTO `{table}` (`grp`, `ip_addr`, `mask`, `port`, `tag`) \
                     VALUES (?, ?, ?, ?, ?)"
                ),
                (r.grp, &r.ip_addr, r.mask, r.port, &r.tag),
            )
        })
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
        self.run(|c| {
            c.exec_drop(
                format!(
                    "DELETE FROM `{table}` WHERE `grp` = ? AND `ip_addr` = ? \
                     AND (? IS NULL OR `mask` = ?) AND (? IS NULL OR `port` = ?)"
                ),
                (grp, ip_addr, mask, mask, port, port),
            )?;
            Ok(c.affected_rows() as usize)
        })
    }

    fn acc_insert(&mut self, table: &str, rec: &AccRecord) -> Result<()> {
        let (create, insert) = super::acc_sql(
            Dialect::MySql,
            table,
            rec,
            "id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL",
            "DATETIME",
            "?",
        )?;
        let mut values: Vec<Value> = vec![
            rec.method.as_str().into(),
            rec.from_tag.as_str().into(),
            rec.to_tag.as_str().into(),
            rec.callid.as_str().into(),
            rec.sip_code.as_str().into(),
            rec.sip_reason.as_str().into(),
            format_datetime(rec.time).into(),
        ];
        values.extend(rec.extra.iter().map(|(_, v)| v.as_deref().into()));
        self.run(|c| {
            c.query_drop(&create)?;
            c.exec_drop(&insert, values.clone())
        })
    }

    /// MySQL has no cheap "another connection wrote" counter: the number of
    /// subscriber rows and an XOR of their CRC32s stand in (the credentials
    /// cache is what watches it).
    fn data_version(&mut self) -> Result<i64> {
        let row: Option<(i64, i64)> = self.run(|c| {
            c.query_first(
                "SELECT COUNT(*), COALESCE(BIT_XOR(CRC32(CONCAT_WS(':', id, username, domain, \
                 password, ha1, ha1b))), 0) FROM subscriber",
            )
        })?;
        let (count, digest) = row.unwrap_or_default();
        Ok(count << 32 | (digest & 0xffff_ffff))
    }

    fn dispatchers(&mut self, table: &str, cols: &DispatcherColumns) -> Result<Vec<DispatcherRow>> {
        let sql = cols.select(table)?;
        let rows: Vec<Row> = self.run(|c| c.query(&sql))?;
        rows.iter()
            .map(|r| {
                Ok(DispatcherRow {
                    setid: get(r, 0)?,
                    destination: get(r, 1)?,
                    flags: get::<Option<i64>>(r, 2)?.unwrap_or(0),
                    priority: get::<Option<i64>>(r, 3)?.unwrap_or(0),
                    attrs: text(r, 4)?,
                })
            })
            .collect()
    }

    fn dialplan(&mut self, table: &str, cols: &DialplanColumns) -> Result<Vec<DialplanRow>> {
        let sql = cols.select(table)?;
        let rows: Vec<Row> = self.run(|c| c.query(&sql))?;
        rows.iter()
            .map(|r| {
                let int = |i| get::<Option<i64>>(r, i).map(Option::unwrap_or_default);
                Ok(DialplanRow {
                    dpid: int(0)?,
                    pr: int(1)?,
                    match_op: int(2)?,
                    match_exp: get(r, 3)?,
                    match_len: int(4)?,
                    subst_exp: get(r, 5)?,
                    repl_exp: get(r, 6)?,
                    attrs: get(r, 7)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_problem() {
        let opts = parse_url("mysql://kamailio:kamailiorw@localhost/kamailio").unwrap();
        assert_eq!(opts.get_user(), Some("kamailio"));
        assert_eq!(opts.get_pass(), Some("kamailiorw"));
        assert_eq!(opts.get_db_name(), Some("kamailio"));
        assert_eq!(opts.get_tcp_port(), 3306);
        assert_eq!(opts.get_tcp_connect_timeout(), Some(CONNECT_TIMEOUT));
        let opts =
            parse_url("mysql://u:p%40ss@10.0.0.1:3307/k?tcp_connect_timeout_ms=250").unwrap();
        assert_eq!(opts.get_pass(), Some("p@ss"));
        assert_eq!(opts.get_tcp_port(), 3307);
        assert_eq!(
            opts.get_tcp_connect_timeout(),
            Some(Duration::from_millis(250))
        );
        let err = parse_url("mysql://k:pw@localhost").unwrap_err();
        assert!(err.contains("no database name"), "{err}");
        let err = parse_url("mysql://k:pw@localhost:port/k").unwrap_err();
        assert!(
            err.starts_with("db_url mysql://k:pw@localhost:port/k: "),
            "{err}"
        );
        assert!(parse_url("mysql://k@h/k?nosuchoption=1").is_err());
    }

    #[test]
    fn localhost_uses_the_unix_socket_when_there_is_one() {
        let url = |u: &str| parse_url(u).unwrap();
        let debian = |p: &str| p == "/var/run/mysqld/mysqld.sock";
        let o = local_socket(url("mysql://k:pw@localhost/k"), debian);
        assert_eq!(o.get_socket(), Some("/var/run/mysqld/mysqld.sock"));
        let o = local_socket(url("mysql://k:pw@localhost/k"), |_| false);
        assert_eq!(o.get_socket(), None, "no socket: TCP to localhost");
        let o = local_socket(url("mysql://k:pw@127.0.0.1/k"), debian);
        assert_eq!(o.get_socket(), None, "an address is TCP");
        let o = local_socket(url("mysql://k:pw@localhost/k?socket=/x.sock"), debian);
        assert_eq!(o.get_socket(), Some("/x.sock"));
    }

    #[test]
    fn acc_sql_quotes_the_mysql_way() {
        let rec = AccRecord {
            method: "INVITE".into(),
            from_tag: String::new(),
            to_tag: String::new(),
            callid: String::new(),
            sip_code: "200".into(),
            sip_reason: "OK".into(),
            time: 0,
            extra: vec![("user".into(), None)],
        };
        let (create, insert) =
            super::super::acc_sql(Dialect::MySql, "acc", &rec, "id INT", "DATETIME", "?").unwrap();
        assert!(create.ends_with(", `user` TEXT)"), "{create}");
        assert_eq!(
            insert,
            "INSERT INTO acc (method, from_tag, to_tag, callid, sip_code, sip_reason, time, `user`) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        );
    }

    #[test]
    fn only_connection_failures_drop_the_connection() {
        let io = mysql::Error::IoError(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(connection_lost(&io));
        let sql = |code| {
            mysql::Error::MySqlError(mysql::MySqlError {
                state: "HY000".into(),
                message: "m".into(),
                code,
            })
        };
        assert!(!connection_lost(&sql(1146)), "no such table");
        assert!(connection_lost(&sql(1053)), "server shutdown");
        assert_eq!(StoreError::from(sql(1146)).0, "m (1146)");
    }
}
