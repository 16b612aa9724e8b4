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
    /// The lock that serialises migration runs could not be taken.
    #[error("could not take the migration lock: {0}")]
    Lock(#[from] diesel::result::Error),
    /// Another process held the migration lock for too long.
    #[error("another process held the migration lock for over {0} seconds")]
    LockTimeout(u32),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A connection type whose backend has a migrations folder in this crate.
///
/// Implemented for `SqliteConnection`, and for `PgConnection` / `MysqlConnection`
/// with the `postgres` / `mysql` features.
pub trait Migrate: MigrationHarness<Self::Db> + Sized {
    /// The Diesel backend of the connection.
    type Db: Backend;
    /// The embedded migrations for that backend.
    fn migrations() -> impl MigrationSource<Self::Db>;
    /// Runs `work` holding a database-wide lock that every migration run takes,
    /// so app instances starting together on an empty database migrate one after
    /// the other instead of racing: an advisory lock on PostgreSQL, `GET_LOCK` on
    /// MySQL, an exclusive transaction on SQLite.
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] / [`Error::LockTimeout`], or what `work` returns.
    fn exclusively<T>(&mut self, work: impl FnOnce(&mut Self) -> Result<T>) -> Result<T>;
    /// Whether Diesel's `__diesel_schema_migrations` table exists (read-only check).
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the catalog cannot be read.
    fn has_migrations_table(&mut self) -> Result<bool>;

    /// The versions recorded in Diesel's migrations table, read with a plain
    /// `SELECT` (so it works on a read-only connection).
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the table cannot be read.
    fn applied_versions(&mut self) -> Result<Vec<String>>;
}

/// A `count` column, for the catalog queries below.
#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// The versions in `__diesel_schema_migrations`.
fn applied<C>(conn: &mut C) -> Result<Vec<String>>
where
    C: diesel::Connection,
    diesel::query_builder::SqlQuery: diesel::query_dsl::methods::LoadQuery<'static, C, Version>,
{
    let rows: Vec<Version> = diesel::RunQueryDsl::load(diesel::sql_query(APPLIED_VERSIONS), conn)?;
    Ok(rows.into_iter().map(|row| row.version).collect())
}

/// Runs a catalog query that counts `__diesel_schema_migrations` tables.
fn count_tables<C>(conn: &mut C, sql: &str) -> Result<bool>
where
    C: diesel::Connection,
    diesel::query_builder::SqlQuery: diesel::query_dsl::methods::LoadQuery<'static, C, Count>,
{
    use diesel::RunQueryDsl;
    let found: Count = diesel::sql_query(sql).get_result(conn)?;
    Ok(found.count > 0)
}

/// How long a migration run waits for another one to finish.
#[cfg(any(feature = "postgres", feature = "mysql"))]
const LOCK_WAIT_SECONDS: u32 = 60;

impl Migrate for SqliteConnection {
    type Db = diesel::sqlite::Sqlite;
    fn migrations() -> impl MigrationSource<Self::Db> {
        SQLITE
    }
    fn exclusively<T>(&mut self, work: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        // The harness's own transactions become savepoints inside this one.
        self.exclusive_transaction(work)
    }
    fn applied_versions(&mut self) -> Result<Vec<String>> {
        applied(self)
    }
    fn has_migrations_table(&mut self) -> Result<bool> {
        count_tables(
            self,
            "SELECT count(*) AS count FROM sqlite_master \
             WHERE type = 'table' AND name = '__diesel_schema_migrations'",
        )
    }
}

#[cfg(feature = "postgres")]
impl Migrate for diesel::PgConnection {
    type Db = diesel::pg::Pg;
    fn migrations() -> impl MigrationSource<Self::Db> {
        POSTGRES
    }
    fn exclusively<T>(&mut self, work: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        use diesel::connection::SimpleConnection;
        // An arbitrary key shared by every process migrating a `sessions` table.
        const KEY: i64 = 0x5E55_1045;
        self.batch_execute(&format!(
            "SET lock_timeout = '{LOCK_WAIT_SECONDS}s'; SELECT pg_advisory_lock({KEY}); SET lock_timeout = 0"
        ))?;
        let result = work(self);
        self.batch_execute(&format!("SELECT pg_advisory_unlock({KEY})"))?;
        result
    }
    fn applied_versions(&mut self) -> Result<Vec<String>> {
        applied(self)
    }
    fn has_migrations_table(&mut self) -> Result<bool> {
        // `to_regclass` follows the connection's search_path, as Diesel does.
        count_tables(
            self,
            "SELECT count(*) AS count FROM (SELECT to_regclass('__diesel_schema_migrations') AS t) found \
             WHERE t IS NOT NULL",
        )
    }
}

#[cfg(feature = "mysql")]
impl Migrate for diesel::MysqlConnection {
    type Db = diesel::mysql::Mysql;
    fn migrations() -> impl MigrationSource<Self::Db> {
        MYSQL
    }
    fn exclusively<T>(&mut self, work: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
            locked: Option<i32>,
        }
        let taken: Locked = diesel::sql_query(format!(
            "SELECT GET_LOCK('rocket_sessions_migrations', {LOCK_WAIT_SECONDS}) AS locked"
        ))
        .get_result(self)?;
        if taken.locked != Some(1) {
            return Err(Error::LockTimeout(LOCK_WAIT_SECONDS));
        }
        let result = work(self);
        diesel::sql_query("SELECT RELEASE_LOCK('rocket_sessions_migrations') AS locked")
            .get_result::<Locked>(self)?;
        result
    }
    fn applied_versions(&mut self) -> Result<Vec<String>> {
        applied(self)
    }
    fn has_migrations_table(&mut self) -> Result<bool> {
        count_tables(
            self,
            "SELECT count(*) AS count FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name = '__diesel_schema_migrations'",
        )
    }
}

/// Applies every migration the connection's database has not run yet and returns
/// their names, oldest first (empty when the schema is current).
///
/// # Errors
///
/// [`Error::Migration`] when a migration fails; it runs in its own transaction
/// (where the backend allows DDL in transactions), so nothing half-done is recorded.
/// Concurrent runs from several processes wait for each other
/// ([`Migrate::exclusively`]).
pub fn run_pending<C: Migrate>(conn: &mut C) -> Result<Vec<String>> {
    conn.exclusively(|conn| {
        conn.run_pending_migrations(C::migrations())
            .map(|applied| applied.iter().map(ToString::to_string).collect())
            .map_err(Error::Migration)
    })
}

/// The names of the migrations the connection's database has not run yet, without
/// running them and without writing anything (a database that never ran
/// migrations is left as it is, not given an empty migrations table).
///
/// # Errors
///
/// [`Error::Migration`] when the migrations table cannot be read.
pub fn pending<C: Migrate>(conn: &mut C) -> Result<Vec<String>> {
    let all = C::migrations().migrations().map_err(Error::Migration)?;
    if !conn.has_migrations_table()? {
        return Ok(all.iter().map(|m| m.name().to_string()).collect());
    }
    // A plain SELECT: Diesel's own `pending_migrations` first runs
    // `CREATE TABLE IF NOT EXISTS`, which a read-only connection refuses.
    let applied = conn.applied_versions()?;
    Ok(all
        .iter()
        .filter(|m| {
            let version = m.name().version().to_string();
            !applied.contains(&version)
        })
        .map(|m| m.name().to_string())
        .collect())
}

/// The versions Diesel recorded as run.
const APPLIED_VERSIONS: &str = "SELECT version FROM __diesel_schema_migrations";

/// A `version` column of Diesel's migrations table.
#[derive(diesel::QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}
