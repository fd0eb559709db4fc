//! Persistence behind traits: embedded SQLite by default, PostgreSQL for many nodes.
