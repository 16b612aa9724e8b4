//! An app's own tables on the session pool: its migrations ([`AppMigrations`],
//! run under the lock ours take), ours for its own Diesel harness
//! ([`session_migrations`]), and [`with_connection!`](crate::with_connection)
//! for its queries.

use std::fmt;

use diesel::migration::{Migration, MigrationSource};
use diesel_migrations::EmbeddedMigrations;

use super::{with_conn, AnyConnection, Backend, Database};
use crate::{Error, Result};

pub mod session_migrations {
    //! This crate's own migrations (the `sessions` and `session_events`
    //! tables), one Diesel `EmbeddedMigrations` per backend, for an app that
    //! runs migrations through its own Diesel `MigrationHarness` instead of
    //! [`Database::run_migrations`](crate::Database::run_migrations). All three
    //! are present whatever the cargo features: embedded SQL does not depend on
    //! a backend being compiled in (running them does).
    //!
    //! # The two-step way
    //!
    //! Diesel 2.3 cannot combine two migration sources into one, so run ours,
    //! then yours, on the same connection. Both are recorded in the same
    //! `__diesel_schema_migrations` table (give yours versions of their own),
    //! and running the two steps again applies nothing:
    //!
    //! ```
    //! use diesel::{Connection, SqliteConnection};
    //! use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
    //! use shared_model::session_migrations;
    //!
    //! // Your app's migrations: `embed_migrations!("migrations")` in your crate.
    //! const APP_MIGRATIONS: EmbeddedMigrations =
    //!     embed_migrations!("tests/fixtures/notes_migrations/sqlite");
    //!
    //! let mut conn = SqliteConnection::establish(":memory:")?;
    //! conn.run_pending_migrations(session_migrations::SQLITE)?; // step 1: the sessions tables
    //! conn.run_pending_migrations(APP_MIGRATIONS)?; // step 2: yours
    //!
    //! assert!(conn.pending_migrations(session_migrations::SQLITE)?.is_empty());
    //! assert!(conn.pending_migrations(APP_MIGRATIONS)?.is_empty());
    //! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    //! ```
    //!
    //! Pick the constant of the backend you connect to: [`SQLITE`] for a
    //! `SqliteConnection`, [`POSTGRES`] for a `PgConnection`, [`MYSQL`] for a
    //! `MysqlConnection`. Diesel's harness takes no lock, so instances starting
    //! together on an empty database can race (one fails on `CREATE TABLE`).
    //! [`Database::run_migrations`](crate::Database::run_migrations) followed
    //! by [`Database::run_app_migrations`](crate::Database::run_app_migrations)
    //! does the same under a database-wide lock.

    #[doc(inline)]
    pub use migrations::{MYSQL, POSTGRES, SQLITE};
}

/// An app's own Diesel migrations, one embedded folder per backend, for
/// [`Database::run_app_migrations`]: the app's tables live in the session
/// database, migrated on the session pool under the lock the `sessions`
/// migrations take, and recorded in the same `__diesel_schema_migrations`
/// table (so their versions must differ from ours).
///
/// Give a folder for each backend the app may be pointed at; a backend without
/// one is refused when migrating. `embed_migrations!` works whatever Diesel's
/// backend features, so all three can always be given. Build the value in a
/// `const` (as below): `embed_migrations!` only yields a `'static` table there.
///
/// # Examples
///
/// ```
/// use diesel_migrations::embed_migrations;
/// use shared_model::{AppMigrations, Database};
///
/// // In an app: `embed_migrations!("migrations/sqlite")` and so on.
/// const MIGRATIONS: AppMigrations = AppMigrations::new()
///     .sqlite(embed_migrations!("tests/fixtures/notes_migrations/sqlite"))
///     .postgres(embed_migrations!("tests/fixtures/notes_migrations/postgres"))
///     .mysql(embed_migrations!("tests/fixtures/notes_migrations/mysql"));
///
/// let db = Database::connect(":memory:")?;
/// db.run_migrations()?;
/// assert_eq!(db.pending_app_migrations(&MIGRATIONS)?, ["2026-12-10-000000_create_notes"]);
/// assert_eq!(db.run_app_migrations(&MIGRATIONS)?, ["20261210000000"]);
/// assert!(db.run_app_migrations(&MIGRATIONS)?.is_empty());
/// # Ok::<(), shared_model::Error>(())
/// ```
pub struct AppMigrations {
    sqlite: Option<EmbeddedMigrations>,
    postgres: Option<EmbeddedMigrations>,
    mysql: Option<EmbeddedMigrations>,
}

impl AppMigrations {
    /// No migrations yet; add a folder per backend with the methods below.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            sqlite: None,
            postgres: None,
            mysql: None,
        }
    }

    /// The migrations to run on SQLite.
    #[must_use]
    pub const fn sqlite(mut self, migrations: EmbeddedMigrations) -> Self {
        self.sqlite = Some(migrations);
        self
    }

    /// The migrations to run on PostgreSQL.
    #[must_use]
    pub const fn postgres(mut self, migrations: EmbeddedMigrations) -> Self {
        self.postgres = Some(migrations);
        self
    }

    /// The migrations to run on MySQL / MariaDB.
    #[must_use]
    pub const fn mysql(mut self, migrations: EmbeddedMigrations) -> Self {
        self.mysql = Some(migrations);
        self
    }

    /// The migrations for `backend`, or the error saying there are none.
    fn source(&self, backend: Backend) -> Result<Borrowed<'_>> {
        let migrations = match backend {
            Backend::Sqlite => &self.sqlite,
            Backend::Postgres => &self.postgres,
            Backend::Mysql => &self.mysql,
        };
        migrations.as_ref().map(Borrowed).ok_or(Error::Migration(
            migrations::Error::NoMigrationsFor {
                backend: backend.name(),
            },
        ))
    }
}

impl Default for AppMigrations {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AppMigrations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppMigrations")
            .field("sqlite", &self.sqlite.is_some())
            .field("postgres", &self.postgres.is_some())
            .field("mysql", &self.mysql.is_some())
            .finish()
    }
}

/// A borrowed [`EmbeddedMigrations`] as a migration source (Diesel's harness
/// takes sources by value, and `EmbeddedMigrations` is not `Copy`).
#[derive(Clone, Copy)]
struct Borrowed<'a>(&'a EmbeddedMigrations);

impl<DB: diesel::backend::Backend> MigrationSource<DB> for Borrowed<'_> {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<DB>>>> {
        MigrationSource::<DB>::migrations(self.0)
    }
}

impl Database {
    /// Applies an app's pending migrations for this database's backend, under
    /// the database-wide lock [`run_migrations`](Self::run_migrations) takes
    /// (app instances starting together migrate one after the other), and
    /// returns the versions of those applied, oldest first (`20261210000000`
    /// for `2026-12-10-000000_create_notes`).
    ///
    /// # Examples
    ///
    /// See [`AppMigrations`].
    ///
    /// # Errors
    ///
    /// [`Error::Migration`] with [`NoMigrationsFor`](migrations::Error::NoMigrationsFor)
    /// when `app` has no migrations for this backend (nothing is run), or with
    /// the cause when a migration fails or the lock cannot be taken;
    /// [`Error::Pool`] when no connection is available.
    pub fn run_app_migrations(&self, app: &AppMigrations) -> Result<Vec<String>> {
        let source = app.source(self.backend())?;
        with_conn!(self, conn => Ok(migrations::run_pending_from(conn, source)?))
    }

    /// The names of an app's migrations this database has not run yet, oldest
    /// first, without running them and without writing anything.
    ///
    /// # Examples
    ///
    /// See [`AppMigrations`].
    ///
    /// # Errors
    ///
    /// As [`run_app_migrations`](Self::run_app_migrations).
    pub fn pending_app_migrations(&self, app: &AppMigrations) -> Result<Vec<String>> {
        let source = app.source(self.backend())?;
        with_conn!(self, conn => Ok(migrations::pending_from(conn, source)?))
    }
}

impl AnyConnection<'_> {
    /// The error [`with_connection!`](crate::with_connection) returns for a
    /// connection it has no arm for. Cannot happen: its arms follow this
    /// crate's features, as the variants do.
    #[doc(hidden)]
    #[must_use]
    pub fn __without_arm(&self) -> Error {
        let (backend, feature) = match self {
            Self::Sqlite(_) => ("SQLite", "sqlite"),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => ("PostgreSQL", "postgres"),
            #[cfg(feature = "mysql")]
            Self::Mysql(_) => ("MySQL", "mysql"),
        };
        Error::BackendNotCompiled { backend, feature }
    }
}

/// Runs `body` with `conn` bound to a `&mut` connection of a [`Database`]'s
/// concrete type (`&mut SqliteConnection`, `&mut PgConnection` or
/// `&mut MysqlConnection`), so the body is written once and compiled once per
/// backend this crate was built with: [`Database::with_connection`] without
/// matching on [`AnyConnection`]. For an app's own tables in the session
/// database.
///
/// `body` is an expression of type `Result<T, E>`, where `E` is the caller's
/// error type and implements `From<shared_model::Error>`. The macro returns
/// that `Result`. The connection goes back to the pool afterwards (dropped
/// instead when it failed and no longer answers).
///
/// # Examples
///
/// ```
/// use diesel::prelude::*;
/// use shared_model::Database;
///
/// let db = Database::connect(":memory:")?;
/// let sum: i32 = shared_model::with_connection!(db, |conn| {
///     diesel::select(1.into_sql::<diesel::sql_types::Integer>() + 2)
///         .get_result(conn)
///         .map_err(shared_model::Error::from)
/// })?;
/// assert_eq!(sum, 3);
/// # Ok::<(), shared_model::Error>(())
/// ```
///
/// # Errors
///
/// `Error::Pool` (converted into `E`) when no connection is available; what
/// `body` returns.
#[macro_export]
macro_rules! with_connection {
    ($db:expr, |$conn:ident| $body:expr $(,)?) => {
        $crate::Database::with_connection(&$db, |any_connection| match any_connection {
            $crate::AnyConnection::Sqlite($conn) => $body,
            // The arms of the other backends come from helpers defined per
            // feature of *this* crate: a `#[cfg]` written here would test the
            // caller's features instead.
            #[allow(unreachable_patterns)]
            any_connection => $crate::__with_connection_postgres!(
                any_connection,
                $conn,
                $body,
                $crate::__with_connection_mysql!(
                    any_connection,
                    $conn,
                    $body,
                    ::core::result::Result::Err(::core::convert::From::from(
                        $crate::AnyConnection::__without_arm(&any_connection)
                    ))
                )
            ),
        })
    };
}

/// [`with_connection!`]'s PostgreSQL arm: `$body` when `$any` is a PostgreSQL
/// connection, else `$rest`.
#[cfg(feature = "postgres")]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_connection_postgres {
    ($any:ident, $conn:ident, $body:expr, $rest:expr) => {
        match $any {
            $crate::AnyConnection::Postgres($conn) => $body,
            #[allow(unreachable_patterns)]
            $any => $rest,
        }
    };
}

/// [`with_connection!`]'s PostgreSQL arm, in a build without PostgreSQL: `$rest`.
#[cfg(not(feature = "postgres"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_connection_postgres {
    ($any:ident, $conn:ident, $body:expr, $rest:expr) => {
        $rest
    };
}

/// [`with_connection!`]'s MySQL arm: `$body` when `$any` is a MySQL
/// connection, else `$rest`.
#[cfg(feature = "mysql")]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_connection_mysql {
    ($any:ident, $conn:ident, $body:expr, $rest:expr) => {
        match $any {
            $crate::AnyConnection::Mysql($conn) => $body,
            #[allow(unreachable_patterns)]
            $any => $rest,
        }
    };
}

/// [`with_connection!`]'s MySQL arm, in a build without MySQL: `$rest`.
#[cfg(not(feature = "mysql"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_connection_mysql {
    ($any:ident, $conn:ident, $body:expr, $rest:expr) => {
        $rest
    };
}
