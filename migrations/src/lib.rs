#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use diesel::backend::Backend;
use diesel::migration::MigrationSource;
use diesel::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The SQLite migrations (`migrations/sqlite`).
pub const SQLITE: EmbeddedMigrations = embed_migrations!("sqlite");
/// The PostgreSQL migrations (`migrations/postgres`).
#[cfg(feature = "postgres")]
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("postgres");
/// The MySQL / MariaDB migrations (`migrations/mysql`).
#[cfg(feature = "mysql")]
pub const MYSQL: EmbeddedMigrations = embed_migrations!("mysql");

/// Why migrations could not be listed or applied.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Diesel's migration harness failed (bad SQL, lost connection, ...).
    #[error("migration failed: {0}")]
    Migration(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A connection type whose backend has a migrations folder in this crate.
///
/// Implemented for `SqliteConnection`, and for `PgConnection` / `MysqlConnection`
/// with the `postgres` / `mysql` features.
pub trait Migrate: MigrationHarness<Self::Db> {
    /// The Diesel backend of the connection.
    type Db: Backend;
    /// The embedded migrations for that backend.
    fn migrations() -> impl MigrationSource<Self::Db>;
}

impl Migrate for SqliteConnection {
    type Db = diesel::sqlite::Sqlite;
    fn migrations() -> impl MigrationSource<Self::Db> {
        SQLITE
    }
}

#[cfg(feature = "postgres")]
impl Migrate for diesel::PgConnection {
    type Db = diesel::pg::Pg;
    fn migrations() -> impl MigrationSource<Self::Db> {
        POSTGRES
    }
}

#[cfg(feature = "mysql")]
impl Migrate for diesel::MysqlConnection {
    type Db = diesel::mysql::Mysql;
    fn migrations() -> impl MigrationSource<Self::Db> {
        MYSQL
    }
}

/// Applies every migration the connection's database has not run yet and returns
/// their names, oldest first (empty when the schema is current).
///
/// # Errors
///
/// [`Error::Migration`] when a migration fails; it runs in its own transaction
/// (where the backend allows DDL in transactions), so nothing half-done is recorded.
pub fn run_pending<C: Migrate>(conn: &mut C) -> Result<Vec<String>> {
    conn.run_pending_migrations(C::migrations())
        .map(|applied| applied.iter().map(ToString::to_string).collect())
        .map_err(Error::Migration)
}

/// The names of the migrations the connection's database has not run yet, without
/// running them.
///
/// # Errors
///
/// [`Error::Migration`] when the migrations table cannot be read.
pub fn pending<C: Migrate>(conn: &mut C) -> Result<Vec<String>> {
    conn.pending_migrations(C::migrations())
        .map(|pending| pending.iter().map(|m| m.name().to_string()).collect())
        .map_err(Error::Migration)
}
