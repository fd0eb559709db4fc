//! Test support for the modules that read Kamailio's tables per call or at
//! start-up (domain, alias_db, speeddial): an SQLite file with the tables
//! as `kamdbctl` makes them (columns of /usr/share/kamailio/db_sqlite), and
//! a way to run a configuration on one request against it.

use std::sync::Arc;

use crate::modules::core::Engine;
use crate::modules::domain::{DomainParams, Domains};
use crate::modules::testutil::env;
use crate::script::compile::compile;
use crate::script::{parse_str, MemoryFiles, Options};
use crate::store::Stores;

/// The tables of kamdbctl's `standard`, `domain`, `alias_db` and `speeddial` scripts.
pub const SCHEMA: &str = "
CREATE TABLE version (id INTEGER PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_table_name_idx UNIQUE (table_name));
INSERT INTO version (table_name, table_version) values ('version','1');
CREATE TABLE domain (id INTEGER PRIMARY KEY NOT NULL, domain VARCHAR(64) NOT NULL,
    did VARCHAR(64) DEFAULT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    CONSTRAINT domain_domain_idx UNIQUE (domain));
INSERT INTO version (table_name, table_version) values ('domain','2');
CREATE TABLE domain_attrs (id INTEGER PRIMARY KEY NOT NULL, did VARCHAR(64) NOT NULL,
    name VARCHAR(32) NOT NULL, type INTEGER NOT NULL, value VARCHAR(255) NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL);
INSERT INTO version (table_name, table_version) values ('domain_attrs','1');
CREATE TABLE dbaliases (id INTEGER PRIMARY KEY NOT NULL,
    alias_username VARCHAR(64) DEFAULT '' NOT NULL, alias_domain VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL);
CREATE INDEX dbaliases_alias_idx ON dbaliases (alias_username, alias_domain);
INSERT INTO version (table_name, table_version) values ('dbaliases','1');
CREATE TABLE speed_dial (id INTEGER PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL, domain VARCHAR(64) DEFAULT '' NOT NULL,
    sd_username VARCHAR(64) DEFAULT '' NOT NULL, sd_domain VARCHAR(64) DEFAULT '' NOT NULL,
    new_uri VARCHAR(255) DEFAULT '' NOT NULL, fname VARCHAR(64) DEFAULT '' NOT NULL,
    lname VARCHAR(64) DEFAULT '' NOT NULL, description VARCHAR(64) DEFAULT '' NOT NULL,
    CONSTRAINT speed_dial_speed_dial_idx UNIQUE (username, domain, sd_domain, sd_username));
INSERT INTO version (table_name, table_version) values ('speed_dial','2');
";

/// A database file with [`SCHEMA`] plus a test's rows, and its store threads.
pub struct KamDb {
    _dir: tempfile::TempDir,
    stores: Stores,
    pub url: String,
    pub path: std::path::PathBuf,
}

impl KamDb {
    pub fn new(rows: &str) -> KamDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kam.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(&format!("{SCHEMA}{rows}"))
            .unwrap();
        KamDb {
            url: format!("sqlite://{}", path.display()),
            _dir: dir,
            stores: Stores::default(),
            path,
        }
    }

    /// Runs more SQL on the file (outside the proxy's connection).
    pub fn exec(&self, sql: &str) {
        rusqlite::Connection::open(&self.path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    }

    /// Compiles `text` (module lines and routes, with `@DB@` for the URL)
    /// and runs `request` (`\n` line ends) through it; the `X-` headers of
    /// the one message sent, or the start-up error.
    pub fn run(&mut self, text: &str, request: &str) -> Result<Vec<String>, String> {
        let text = format!(
            "loadmodule \"sl.so\"\nloadmodule \"textops.so\"\nloadmodule \"pv.so\"\n{}",
            text.replace("@DB@", &self.url)
        );
        let files = MemoryFiles::new();
        let cfg = parse_str("t.cfg", &text, &Options::with_files(&files))
            .map_err(|d| d.rendered().join("\n"))?;
        let compiled = compile(&cfg).map_err(|d| d.rendered().join("\n"))?;
        let mp = &compiled.modparams;
        let loaded = &compiled.program.loaded_modules;
        let mut env = env();
        let stores = &mut self.stores;
        if loaded.contains(&"domain") {
            let h = stores.handle(&self.url).map_err(|e| e.to_string())?;
            env.services.insert(Arc::new(Domains::open(
                DomainParams::from_modparams(mp)?,
                h,
            )?));
        }
        if loaded.contains(&"alias_db") {
            let db = crate::modules::alias_db::open(mp, |u| {
                stores.handle(u).map_err(|e| e.to_string())
            })?;
            env.services.insert(Arc::new(db));
        }
        if loaded.contains(&"speeddial") {
            let sd = crate::modules::speeddial::open(mp, |u| {
                stores.handle(u).map_err(|e| e.to_string())
            })?;
            env.services.insert(Arc::new(sd));
        }
        let mut engine = Engine::new(Arc::new(env), Arc::new(compiled.program));
        let out = crate::modules::testutil::receive(&mut engine, request.replace('\n', "\r\n"));
        assert_eq!(out.len(), 1, "one message sent");
        Ok(String::from_utf8_lossy(&out[0].data)
            .split("\r\n")
            .filter(|l| l.starts_with("X-"))
            .map(String::from)
            .collect())
    }
}

/// An INVITE to `ruri` from `from` (URIs).
pub fn invite(ruri: &str, from: &str) -> String {
    format!(
        "INVITE {ruri} SIP/2.0
Via: SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: <{ruri}>
From: <{from}>;tag=1928301774
Call-ID: a84b4c76e66710@pc33
CSeq: 1 INVITE
Contact: <sip:caller@198.51.100.1:5070>
Content-Length: 0

"
    )
}
