//! `Store::query` (the generic query of sqlops and avpops) on PostgreSQL
//! and MySQL/MariaDB: values typed by their column as Kamailio's
//! `db_postgres` / `db_mysql` type them, NULL, no rows, and errors. Servers
//! as for tests/postgres_store.rs and tests/mysql_store.rs (a private
//! throwaway server unless `RINGSIP_TEST_PG_URL` / `RINGSIP_TEST_MYSQL_URL`
//! name one; the tests fail, never skip, without the server programs).

#[cfg(feature = "mysql")]
#[path = "support/mariadb.rs"]
mod mariadb;
#[cfg(feature = "postgres")]
#[path = "support/pg.rs"]
mod pg;

use ringsip::store::{self, SqlValue};

/// Creates a table of every column kind, one row with values and one of
/// NULLs, and reads them back through `Store::query`.
fn typed_values(url: &str, double: &str, datetime: &str) {
    let mut db = store::open(url).unwrap();
    let t = format!("sqlops_types_{}", std::process::id());
    db.query(&format!("DROP TABLE IF EXISTS {t}")).unwrap();
    db.query(&format!(
        "CREATE TABLE {t} (k INTEGER, i INTEGER, b BIGINT, d {double}, s VARCHAR(16), dt {datetime})"
    ))
    .unwrap();
    let inserted = db
        .query(&format!(
            "INSERT INTO {t} VALUES (1, 7, 5000000000, 1.5, 'x''y', '2020-01-01 00:00:00'), \
             (2, NULL, NULL, NULL, NULL, NULL)"
        ))
        .unwrap();
    assert_eq!(inserted.affected, 2, "$sqlrows after an INSERT");
    assert!(inserted.rows.is_empty());
    let r = db
        .query(&format!("SELECT i, b, d, s, dt FROM {t} ORDER BY k"))
        .unwrap();
    assert_eq!(r.columns, ["i", "b", "d", "s", "dt"]);
    assert_eq!(
        r.rows,
        [
            vec![
                SqlValue::Int(7),
                SqlValue::BigInt(5_000_000_000),
                SqlValue::Double(1.5),
                SqlValue::Str(b"x'y".to_vec()),
                SqlValue::Int(1_577_836_800),
            ],
            vec![SqlValue::Null; 5],
        ]
    );
    assert_eq!(r.affected, 2, "a SELECT counts its rows");
    let none = db
        .query(&format!("SELECT i FROM {t} WHERE k = 99"))
        .unwrap();
    assert!(none.rows.is_empty());
    let updated = db
        .query(&format!("UPDATE {t} SET i = 8 WHERE k = 1"))
        .unwrap();
    assert_eq!(updated.affected, 1);
    assert!(db.query(&format!("SELECT nope FROM {t}")).is_err());
    db.query(&format!("DROP TABLE {t}")).unwrap();
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_query_types_values() {
    let server = pg::PgServer::start();
    typed_values(server.url(), "DOUBLE PRECISION", "TIMESTAMP");
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_query_types_values() {
    let server = mariadb::MariaDb::start();
    typed_values(server.url(), "DOUBLE", "DATETIME");
}
