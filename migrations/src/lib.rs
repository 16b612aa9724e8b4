#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use diesel::backend::Backend;
use diesel::migration::MigrationSource;
use diesel::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The SQLite migrations (`migrations/sqlite`), for an app that runs them
/// through its own Diesel [`MigrationHarness`] (see the crate docs).
///
/// Present whatever the cargo features: embedded SQL does not depend on a
/// backend being compiled in.
pub const SQLITE: EmbeddedMigrations = embed_migrations!("sqlite");
/// The PostgreSQL migrations (`migrations/postgres`), for an app that runs
/// them through its own Diesel [`MigrationHarness`] (see the crate docs).
///
/// Present whatever the cargo features; running them needs Diesel's
/// `postgres` feature.
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("postgres");
/// The MySQL / MariaDB migrations (`migrations/mysql`), for an app that runs
/// them through its own Diesel [`MigrationHarness`] (see the crate docs).
///
/// Present whatever the cargo features; running them needs Diesel's `mysql`
/// feature.
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
    /// A set of migrations has none for the database's backend (an app gave
    /// SQLite migrations only and connected to PostgreSQL). Nothing was run.
    #[error("no migrations were given for {backend}, the database's backend")]
    NoMigrationsFor {
        /// The database's backend ("SQLite", "PostgreSQL" or "MySQL").
        backend: &'static str,
    },
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

/// Applies every migration of this crate the connection's database has not run
/// yet and returns their versions, oldest first (empty when the schema is current):
/// [`run_pending_from`] with [`Migrate::migrations`].
///
/// # Errors
///
/// As [`run_pending_from`].
pub fn run_pending<C: Migrate>(conn: &mut C) -> Result<Vec<String>> {
    run_pending_from(conn, C::migrations())
}

/// Applies every migration of `source` the connection's database has not run
/// yet, holding the lock every run of this crate's own migrations takes
/// ([`Migrate::exclusively`]), and returns their versions (`20261127000000` for
/// `2026-11-27-000000_create_sessions`), oldest first (empty when nothing was
/// pending). For an app's own tables in the session database: its
/// migrations are recorded in the same `__diesel_schema_migrations` table, under
/// versions of their own, and app instances starting together do not race.
///
/// # Examples
///
/// ```
/// use diesel::{Connection, SqliteConnection};
///
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// // Any Diesel migration source; an app passes its own `embed_migrations!(..)`.
/// let applied = migrations::run_pending_from(&mut conn, migrations::SQLITE)?;
/// assert_eq!(applied.len(), 2);
/// assert!(migrations::run_pending_from(&mut conn, migrations::SQLITE)?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Error::Migration`] when a migration fails; it runs in its own transaction
/// (where the backend allows DDL in transactions), so nothing half-done is
/// recorded. [`Error::Lock`] / [`Error::LockTimeout`] when the lock cannot be
/// taken.
pub fn run_pending_from<C: Migrate>(
    conn: &mut C,
    source: impl MigrationSource<C::Db>,
) -> Result<Vec<String>> {
    conn.exclusively(|conn| {
        conn.run_pending_migrations(source)
            .map(|applied| applied.iter().map(ToString::to_string).collect())
            .map_err(Error::Migration)
    })
}

/// The names of this crate's migrations the connection's database has not run
/// yet, without running them and without writing anything (a database that
/// never ran migrations is left as it is, not given an empty migrations table):
/// [`pending_from`] with [`Migrate::migrations`].
///
/// # Errors
///
/// As [`pending_from`].
pub fn pending<C: Migrate>(conn: &mut C) -> Result<Vec<String>> {
    pending_from(conn, C::migrations())
}

/// The names of the migrations of `source` the connection's database has not
/// run yet, oldest first, without running them and without writing anything
/// (it works on a read-only connection).
///
/// # Examples
///
/// ```
/// use diesel::{Connection, SqliteConnection};
///
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// assert_eq!(migrations::pending_from(&mut conn, migrations::SQLITE)?.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`Error::Migration`] when `source` cannot list its migrations;
/// [`Error::Lock`] when the migrations table cannot be read.
pub fn pending_from<C: Migrate>(
    conn: &mut C,
    source: impl MigrationSource<C::Db>,
) -> Result<Vec<String>> {
    let mut all = source.migrations().map_err(Error::Migration)?;
    // Diesel runs them by version; list them in that order too.
    all.sort_by(|a, b| a.name().version().cmp(&b.name().version()));
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
