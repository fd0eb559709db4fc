//! PostgreSQL (`postgres://user:pass@host/db`): the database several ringsip
//! nodes share (usrloc `db_mode` 3, one subscriber table). Same tables and
//! columns as [`super::Sqlite`]; times are `TIMESTAMP` columns read back as
//! text. Built with the `postgres` cargo feature.

use postgres::types::Type;
use postgres::{Client, NoTls, Row, SimpleQueryMessage};

use super::time::{format_datetime, parse_datetime};
use super::{
    identifier, AccRecord, AddressRow, DialplanColumns, DialplanRow, DispatcherColumns,
    DispatcherRow, LocationRow, Result, SqlRows, Store, StoreError, SubscriberColumns,
    SubscriberRow, TextColumn,
};

/// The type Kamailio's `db_postgres` gives a column of PostgreSQL type `t`.
fn text_column(t: &Type) -> TextColumn {
    match *t {
        Type::INT2 | Type::INT4 | Type::OID => TextColumn::Int,
        Type::INT8 => TextColumn::BigInt,
        Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => TextColumn::Double,
        Type::DATE | Type::TIMESTAMP | Type::TIMESTAMPTZ => TextColumn::Datetime,
        _ => TextColumn::Str,
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        match e.as_db_error() {
            Some(d) => StoreError(format!("{} ({})", d.message(), d.code().code())),
            None => StoreError(e.to_string()),
        }
    }
}

/// Advisory lock id under which tables are created: nodes starting together
/// would otherwise race on `CREATE TABLE IF NOT EXISTS`.
const SCHEMA_LOCK: i64 = 0x0072_696e_6773_6970;

fn with_schema_lock(client: &mut Client, sql: &str) -> Result<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK])?;
    let result = client.batch_execute(sql);
    client.execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK])?;
    Ok(result?)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS version (
    id SERIAL PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_t_name_idx UNIQUE (table_name)
);
CREATE TABLE IF NOT EXISTS subscriber (
    id SERIAL PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
);
CREATE TABLE IF NOT EXISTS address (
    id SERIAL PRIMARY KEY NOT NULL,
    grp INTEGER DEFAULT 1 NOT NULL,
    ip_addr VARCHAR(50) NOT NULL,
    mask INTEGER DEFAULT 32 NOT NULL,
    port SMALLINT DEFAULT 0 NOT NULL,
    tag VARCHAR(64)
);
CREATE TABLE IF NOT EXISTS dispatcher (
    id SERIAL PRIMARY KEY NOT NULL,
    setid INTEGER DEFAULT 0 NOT NULL,
    destination VARCHAR(192) DEFAULT '' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    priority INTEGER DEFAULT 0 NOT NULL,
    attrs VARCHAR(128) DEFAULT '' NOT NULL,
    description VARCHAR(64) DEFAULT '' NOT NULL
);
CREATE TABLE IF NOT EXISTS trusted (
    id SERIAL PRIMARY KEY NOT NULL,
    src_ip VARCHAR(50) NOT NULL,
    proto VARCHAR(4) NOT NULL,
    from_pattern VARCHAR(64) DEFAULT NULL,
    ruri_pattern VARCHAR(64) DEFAULT NULL,
    tag VARCHAR(64),
    priority INTEGER DEFAULT 0 NOT NULL
);
CREATE INDEX IF NOT EXISTS trusted_peer_idx ON trusted (src_ip);
INSERT INTO version (table_name, table_version) VALUES
    ('subscriber', 7), ('address', 6), ('location', 9), ('dispatcher', 4), ('trusted', 6)
    ON CONFLICT (table_name) DO NOTHING;
";

fn location_schema(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (
    id SERIAL PRIMARY KEY NOT NULL,
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
CREATE INDEX IF NOT EXISTS {table}_expires_idx ON {table} (expires);
INSERT INTO version (table_name, table_version) VALUES ('{table}', 9)
    ON CONFLICT (table_name) DO NOTHING;"
    )
}

/// The columns as read, numbers widened to 8 bytes and times as text.
const SELECT: &str = "ruid, username, domain, contact, received, path, \
    to_char(expires, 'YYYY-MM-DD HH24:MI:SS'), q::float8, callid, cseq::int8, \
    to_char(last_modified, 'YYYY-MM-DD HH24:MI:SS'), flags::int8, cflags::int8, user_agent, socket, \
    methods::int8, instance, reg_id::int8, server_id::int8, connection_id::int8, keepalive::int8, \
    partition::int8";

const PERMANENT: &str = "2030-05-28 21:32:15";

/// A row as [`LocationRow`]; a column of an unexpected type is an error, not a panic.
fn location_row(r: &Row) -> Result<LocationRow> {
    let time = |i: usize| -> Result<i64> {
        let t: Option<String> = r.try_get(i)?;
        Ok(match t.as_deref() {
            Some(PERMANENT) | None => 0,
            Some(t) => parse_datetime(t).unwrap_or(0),
        })
    };
    Ok(LocationRow {
        ruid: r.try_get(0)?,
        username: r.try_get(1)?,
        domain: r.try_get(2)?,
        contact: r.try_get(3)?,
        received: r.try_get(4)?,
        path: r.try_get(5)?,
        expires: time(6)?,
        q: r.try_get(7)?,
        callid: r.try_get(8)?,
        cseq: r.try_get(9)?,
        last_modified: time(10)?,
        flags: r.try_get(11)?,
        cflags: r.try_get(12)?,
        user_agent: r.try_get(13)?,
        socket: r.try_get(14)?,
        methods: r.try_get(15)?,
        instance: r.try_get(16)?,
        reg_id: r.try_get(17)?,
        server_id: r.try_get(18)?,
        connection_id: r.try_get(19)?,
        keepalive: r.try_get(20)?,
        partition: r.try_get(21)?,
    })
}

/// A connection to a PostgreSQL database. When the server goes away (restart,
/// network outage) the operations fail; the next one connects again, so the
/// store recovers by itself when the database returns.
pub struct Postgres {
    client: Client,
    url: String,
}

impl Postgres {
    /// Connects to `url` and creates the tables that are missing.
    pub fn connect(url: &str) -> Result<Postgres> {
        let mut client = Client::connect(url, NoTls)?;
        with_schema_lock(&mut client, SCHEMA)?;
        with_schema_lock(&mut client, &location_schema("location"))?;
        Ok(Postgres {
            client,
            url: url.to_string(),
        })
    }

    /// The connection, made again first if the last one was lost.
    fn client(&mut self) -> Result<&mut Client> {
        if self.client.is_closed() {
            self.client = Client::connect(&self.url, NoTls)?;
            log::info!("postgres: connected again");
        }
        Ok(&mut self.client)
    }
}

impl Store for Postgres {
    /// The column types come from preparing the statement; the values, as
    /// text, from running it with the simple protocol.
    fn query(&mut self, sql: &str) -> Result<SqlRows> {
        let client = self.client()?;
        let stmt = client.prepare(sql)?;
        let types: Vec<TextColumn> = stmt
            .columns()
            .iter()
            .map(|c| text_column(c.type_()))
            .collect();
        let columns = stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let mut rows = Vec::new();
        let mut affected = 0;
        for m in client.simple_query(sql)? {
            if let SimpleQueryMessage::CommandComplete(n) = m {
                affected = n;
            }
            if let SimpleQueryMessage::Row(r) = m {
                rows.push(
                    types
                        .iter()
                        .enumerate()
                        .map(|(i, t)| t.value(r.get(i).map(str::as_bytes)))
                        .collect(),
                );
            }
        }
        Ok(SqlRows {
            columns,
            rows,
            affected,
        })
    }

    fn ensure_location_table(&mut self, table: &str) -> Result<()> {
        let table = identifier(table)?;
        with_schema_lock(self.client()?, &location_schema(table))
    }

    fn location_load(&mut self, table: &str) -> Result<Vec<LocationRow>> {
        let table = identifier(table)?;
        let rows = self
            .client()?
            .query(&format!("SELECT {SELECT} FROM {table}"), &[])?;
        rows.iter().map(location_row).collect()
    }

    fn location_aor(
        &mut self,
        table: &str,
        username: &str,
        domain: Option<&str>,
    ) -> Result<Vec<LocationRow>> {
        let table = identifier(table)?;
        let rows = self.client()?.query(
            &format!(
                "SELECT {SELECT} FROM {table} WHERE username = $1 AND domain IS NOT DISTINCT FROM $2"
            ),
            &[&username, &domain],
        )?;
        rows.iter().map(location_row).collect()
    }

    fn location_upsert(&mut self, table: &str, rows: &[LocationRow]) -> Result<()> {
        let table = identifier(table)?;
        let sql = format!(
            "INSERT INTO {table} (ruid, username, domain, contact, received, path, expires, q, \
             callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, instance, \
             reg_id, server_id, connection_id, keepalive, partition) VALUES \
             ($1, $2, $3, $4, $5, $6, $7::text::timestamp, $8::float8, $9, $10::int8, \
             $11::text::timestamp, $12::int8, $13::int8, $14, $15, $16::int8, $17, $18::int8, \
             $19::int8, $20::int8, $21::int8, $22::int8) \
             ON CONFLICT (ruid) DO UPDATE SET username = excluded.username, \
             domain = excluded.domain, contact = excluded.contact, received = excluded.received, \
             path = excluded.path, expires = excluded.expires, q = excluded.q, \
             callid = excluded.callid, cseq = excluded.cseq, last_modified = excluded.last_modified, \
             flags = excluded.flags, cflags = excluded.cflags, user_agent = excluded.user_agent, \
             socket = excluded.socket, methods = excluded.methods, instance = excluded.instance, \
             reg_id = excluded.reg_id, server_id = excluded.server_id, \
             connection_id = excluded.connection_id, keepalive = excluded.keepalive, \
             partition = excluded.partition"
        );
        let mut tx = self.client()?.transaction()?;
        let st = tx.prepare(&sql)?;
        for r in rows {
            let expires = if r.expires == 0 {
                PERMANENT.to_string()
            } else {
                format_datetime(r.expires)
            };
            tx.execute(
                &st,
                &[
                    &r.ruid,
                    &r.username,
                    &r.domain,
                    &r.contact,
                    &r.received,
                    &r.path,
                    &expires,
                    &r.q,
                    &r.callid,
                    &r.cseq,
                    &format_datetime(r.last_modified),
                    &r.flags,
                    &r.cflags,
                    &r.user_agent,
                    &r.socket,
                    &r.methods,
                    &r.instance,
                    &r.reg_id,
                    &r.server_id,
                    &r.connection_id,
                    &r.keepalive,
                    &r.partition,
                ],
            )?;
        }
        Ok(tx.commit()?)
    }

    fn location_delete(&mut self, table: &str, ruids: &[String]) -> Result<()> {
        let table = identifier(table)?;
        if ruids.is_empty() {
            return Ok(());
        }
        self.client()?.execute(
            &format!("DELETE FROM {table} WHERE ruid = ANY($1)"),
            &[&ruids],
        )?;
        Ok(())
    }

    fn location_delete_expired(&mut self, table: &str, unix: i64) -> Result<usize> {
        let table = identifier(table)?;
        let n = self.client()?.execute(
            &format!(
                "DELETE FROM {table} WHERE expires <= $1::text::timestamp \
                 AND expires != $2::text::timestamp"
            ),
            &[&format_datetime(unix), &PERMANENT],
        )?;
        Ok(n as usize)
    }

    fn subscribers(&mut self, c: &SubscriberColumns) -> Result<Vec<SubscriberRow>> {
        let sql = format!(
            "SELECT {}::text, {}::text, {}::text, {}::text FROM {}",
            identifier(&c.user)?,
            identifier(&c.domain)?,
            identifier(&c.password)?,
            identifier(&c.password2)?,
            identifier(&c.table)?
        );
        let rows = self.client()?.query(&sql, &[])?;
        rows.iter()
            .map(|r| {
                let text = |i: usize| -> Result<String> {
                    Ok(r.try_get::<_, Option<String>>(i)?.unwrap_or_default())
                };
                Ok(SubscriberRow {
                    username: text(0)?,
                    domain: text(1)?,
                    password: text(2)?,
                    ha1: text(2)?,
                    ha1b: text(3)?,
                })
            })
            .collect()
    }

    fn subscriber_put(&mut self, r: &SubscriberRow) -> Result<()> {
        self.client()?.execute(
            "INSERT INTO subscriber (username, domain, password, ha1, ha1b) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (username, domain) DO UPDATE SET \
             password = excluded.password, ha1 = excluded.ha1, ha1b = excluded.ha1b",
            &[&r.username, &r.domain, &r.password, &r.ha1, &r.ha1b],
        )?;
        Ok(())
    }

    fn subscriber_delete(&mut self, username: &str, domain: &str) -> Result<bool> {
        let n = self.client()?.execute(
            "DELETE FROM subscriber WHERE username = $1 AND domain = $2",
            &[&username, &domain],
        )?;
        Ok(n > 0)
    }

    fn dispatchers(&mut self, table: &str, cols: &DispatcherColumns) -> Result<Vec<DispatcherRow>> {
        // Numbers widened to 8 bytes whatever the column type.
        let sql = cols.select(table)?;
        let sql =
            format!("SELECT s::int8, d, f::int8, p::int8, a FROM ({sql}) AS t(s, d, f, p, a)");
        let rows = self.client()?.query(&sql, &[])?;
        rows.iter()
            .map(|r| {
                Ok(DispatcherRow {
                    setid: r.try_get(0)?,
                    destination: r.try_get(1)?,
                    flags: r.try_get::<_, Option<i64>>(2)?.unwrap_or(0),
                    priority: r.try_get::<_, Option<i64>>(3)?.unwrap_or(0),
                    attrs: r.try_get::<_, Option<String>>(4)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    fn dialplan(&mut self, table: &str, cols: &DialplanColumns) -> Result<Vec<DialplanRow>> {
        // Numbers widened to 8 bytes whatever the column type.
        let sql = cols.select(table)?;
        let sql = format!(
            "SELECT a::int8, b::int8, c::int8, d, e::int8, f, g, h \
             FROM ({sql}) AS t(a, b, c, d, e, f, g, h)"
        );
        let rows = self.client()?.query(&sql, &[])?;
        rows.iter()
            .map(|r| {
                let int = |i| {
                    r.try_get::<_, Option<i64>>(i)
                        .map(Option::unwrap_or_default)
                };
                Ok(DialplanRow {
                    dpid: int(0)?,
                    pr: int(1)?,
                    match_op: int(2)?,
                    match_exp: r.try_get(3)?,
                    match_len: int(4)?,
                    subst_exp: r.try_get(5)?,
                    repl_exp: r.try_get(6)?,
                    attrs: r.try_get(7)?,
                })
            })
            .collect()
    }

    fn addresses(&mut self, table: &str) -> Result<Vec<AddressRow>> {
        let table = identifier(table)?;
        let rows = self.client()?.query(
            &format!(
                "SELECT grp::int8, ip_addr, mask::int8, port::int8, tag FROM {table} ORDER BY id"
            ),
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(AddressRow {
                    grp: r.try_get(0)?,
                    ip_addr: r.try_get(1)?,
                    mask: r.try_get(2)?,
                    port: r.try_get(3)?,
                    tag: r.try_get(4)?,
                })
            })
            .collect()
    }

    fn address_add(&mut self, table: &str, r: &AddressRow) -> Result<()> {
        let table = identifier(table)?;
        self.client()?.execute(
            &format!(
                "INSERT INTO {table} (grp, ip_addr, mask, port, tag) \
                 VALUES ($1::int8, $2, $3::int8, $4::int8, $5)"
            ),
            &[&r.grp, &r.ip_addr, &r.mask, &r.port, &r.tag],
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
        let n = self.client()?.execute(
            &format!(
                "DELETE FROM {table} WHERE grp = $1::int8 AND ip_addr = $2 \
                 AND ($3::int8 IS NULL OR mask = $3::int8) AND ($4::int8 IS NULL OR port = $4::int8)"
            ),
            &[&grp, &ip_addr, &mask, &port],
        )?;
        Ok(n as usize)
    }

    fn acc_insert(&mut self, table: &str, rec: &AccRecord) -> Result<()> {
        let (create, insert) = super::acc_sql(
            super::Dialect::Standard,
            table,
            rec,
            "id SERIAL PRIMARY KEY",
            "TIMESTAMP WITHOUT TIME ZONE",
            "$7::text::timestamp",
        )?;
        self.client()?.batch_execute(&create)?;
        let time = format_datetime(rec.time);
        let mut values: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![
            &rec.method,
            &rec.from_tag,
            &rec.to_tag,
            &rec.callid,
            &rec.sip_code,
            &rec.sip_reason,
            &time,
        ];
        for (_, v) in &rec.extra {
            values.push(v);
        }
        self.client()?.execute(&insert, &values)?;
        Ok(())
    }

    /// PostgreSQL has no cheap "another connection wrote" counter: a digest of
    /// the subscriber table stands in (the credentials cache is what watches it).
    fn data_version(&mut self) -> Result<i64> {
        let row = self.client()?.query_one(
            "SELECT coalesce(md5(string_agg(username || ':' || domain || ':' || password || ':' \
             || ha1 || ':' || ha1b, ',' ORDER BY id)), '') FROM subscriber",
            &[],
        )?;
        let digest: String = row.try_get(0)?;
        Ok(i64::from_str_radix(digest.get(..15).unwrap_or("0"), 16).unwrap_or(0))
    }
}
