//! [`Database`]: a pooled connection to SQLite, PostgreSQL or MySQL/MariaDB,
//! chosen at runtime from a URL, and lending its connections: to this crate's
//! queries (`with_conn!`) and to an app's own ([`Database::with_connection`]).
//!
//! The URL rules live in `url`, the pool in `pool`, statement counting in
//! `counting`, an app's migrations and the `with_connection!` macro in `app`.

mod app;
mod counting;
mod pool;
mod url;

use std::fmt;
use std::sync::Arc;

use diesel::r2d2::R2D2Connection;
use diesel::{Connection, SqliteConnection};

pub use app::{session_migrations, AppMigrations};
pub use counting::StatementCounts;
pub use pool::DatabaseBuilder;
pub(crate) use pool::Pools;
pub use url::{redact_url, strip_password, Backend};

use crate::{Error, Result};
use counting::Counters;
use pool::Pool;

/// Runs `$body` with `$conn` bound to a `&mut` connection of the database's
/// concrete type, so the body is compiled once per backend. A lost connection is
/// flagged so the pool replaces it.
macro_rules! with_conn {
    ($db:expr, $conn:ident => $body:expr) => {{
        match $db.pools() {
            $crate::db::Pools::Sqlite(pool) => $crate::db::run(pool, |$conn| $body),
            #[cfg(feature = "postgres")]
            $crate::db::Pools::Postgres(pool) => $crate::db::run(pool, |$conn| $body),
            #[cfg(feature = "mysql")]
            $crate::db::Pools::Mysql(pool) => $crate::db::run(pool, |$conn| $body),
        }
    }};
}
pub(crate) use with_conn;

/// Runs `body` on a pooled connection of one backend: [`lend`] with this
/// crate's [`Error`].
pub(crate) fn run<C, T>(pool: &Pool<C>, body: impl FnOnce(&mut C) -> Result<T>) -> Result<T>
where
    C: Connection + R2D2Connection + Send + 'static,
{
    lend(pool, body)
}

/// Lends `body` a pooled connection. After a failure the connection must still
/// answer a ping (one `SELECT 1`, only on errors), or the pool drops it: a
/// restarted server leaves dead connections that drivers do not always report
/// as broken (MySQL's "server has gone away").
fn lend<C, T, E>(pool: &Pool<C>, body: impl FnOnce(&mut C) -> Result<T, E>) -> Result<T, E>
where
    C: Connection + R2D2Connection + Send + 'static,
    E: From<Error>,
{
    let pooled = pool.get().map_err(Error::from)?;
    lend_pooled(pooled, body)
}

/// [`run`] if at least two connections are idle right now (one is left for
/// a thread that may be waiting in `get`): `None` instead of waiting for one,
/// opening one, or taking the last one ahead of a waiting writer.
pub(crate) fn try_run<C, T>(
    pool: &Pool<C>,
    body: impl FnOnce(&mut C) -> Result<T>,
) -> Option<Result<T>>
where
    C: Connection + R2D2Connection + Send + 'static,
{
    if pool.state().idle_connections < 2 {
        return None;
    }
    pool.try_get().map(|pooled| lend_pooled(pooled, body))
}

fn lend_pooled<C, T, E>(
    mut pooled: r2d2::PooledConnection<pool::Manager<C>>,
    body: impl FnOnce(&mut C) -> Result<T, E>,
) -> Result<T, E>
where
    C: Connection + R2D2Connection + Send + 'static,
{
    let result = body(&mut pooled.conn);
    if result.is_err() {
        pooled.lost = pooled.conn.ping().is_err();
    }
    result
}

/// A borrowed connection of whichever backend a [`Database`] uses, for an app's
/// own tables in the same database (see [`Database::with_connection`]).
#[non_exhaustive]
pub enum AnyConnection<'a> {
    /// SQLite (with the pool's pragmas applied).
    Sqlite(&'a mut SqliteConnection),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(&'a mut diesel::PgConnection),
    /// MySQL / MariaDB.
    #[cfg(feature = "mysql")]
    Mysql(&'a mut diesel::MysqlConnection),
}

struct Inner {
    pools: Pools,
    /// SQLite switched to WAL by this pool, every connection opened so far
    /// reporting WAL (the first that does not clears it): a read never waits
    /// for a writer, so a short one may run where blocking is unwelcome.
    reads_never_wait: Arc<std::sync::atomic::AtomicBool>,
    backend: Backend,
    display_url: String,
    counters: Arc<Counters>,
}

/// A pool of connections to one database. Cheap to clone (clones share the pool).
///
/// # Examples
///
/// ```
/// use shared_model::{Backend, Database};
///
/// let db = Database::connect(":memory:")?;
/// assert_eq!(db.backend(), Backend::Sqlite);
/// assert_eq!(db.run_migrations()?.len(), 2);
/// assert!(db.pending_migrations()?.is_empty());
/// # Ok::<(), shared_model::Error>(())
/// ```
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.inner.backend)
            .field("url", &self.inner.display_url)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Settings for a pool on `url` (see [`Backend::from_url`] for the URL rules).
    #[must_use]
    pub fn builder(url: impl Into<String>) -> DatabaseBuilder {
        DatabaseBuilder::new(url.into())
    }

    /// A pool with default settings; see [`DatabaseBuilder::connect`].
    ///
    /// # Errors
    ///
    /// As [`DatabaseBuilder::connect`].
    pub fn connect(url: impl Into<String>) -> Result<Self> {
        Self::builder(url).connect()
    }

    /// The engine behind this pool.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The URL with any password replaced by `***`.
    #[must_use]
    pub fn display_url(&self) -> &str {
        &self.inner.display_url
    }

    /// Statements sent so far through this pool, by kind (all zero unless the pool
    /// was built with [`DatabaseBuilder::count_statements`]). Subtract two
    /// snapshots to count the statements of one operation.
    #[must_use]
    pub fn statement_counts(&self) -> StatementCounts {
        self.inner.counters.snapshot()
    }

    /// Applies pending migrations (see the `migrations` crate) and returns the
    /// versions applied.
    ///
    /// # Errors
    ///
    /// [`Error::Pool`] when no connection is available, [`Error::Migration`] when a
    /// migration fails.
    pub fn run_migrations(&self) -> Result<Vec<String>> {
        with_conn!(self, conn => Ok(migrations::run_pending(conn)?))
    }

    /// The migrations this database has not run yet, without running them.
    ///
    /// # Errors
    ///
    /// As [`run_migrations`](Self::run_migrations).
    pub fn pending_migrations(&self) -> Result<Vec<String>> {
        with_conn!(self, conn => Ok(migrations::pending(conn)?))
    }

    /// [`pending_migrations`](Self::pending_migrations), or `None` when the
    /// database has no Diesel migrations table (its schema was made by another
    /// tool).
    pub(crate) fn pending_migrations_if_recorded(&self) -> Result<Option<Vec<String>>> {
        with_conn!(self, conn => {
            use migrations::Migrate;
            if conn.has_migrations_table()? {
                Ok(Some(migrations::pending(conn)?))
            } else {
                Ok(None)
            }
        })
    }

    /// Lends `work` a pooled connection, for an app's own tables in the session
    /// database (the demo's `users`): one pool, one set of SQLite pragmas.
    /// Match on [`AnyConnection`] to run Diesel code per backend, or let
    /// [`with_connection!`](crate::with_connection) write the match.
    ///
    /// # Errors
    ///
    /// [`Error::Pool`] (converted into `E`) when no connection is available;
    /// whatever `work` returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use diesel::connection::SimpleConnection;
    /// use shared_model::{AnyConnection, Database};
    ///
    /// let db = Database::connect(":memory:")?;
    /// db.with_connection(|conn| match conn {
    ///     AnyConnection::Sqlite(conn) => conn.batch_execute("CREATE TABLE notes (body TEXT)"),
    ///     _ => unreachable!("an SQLite URL"),
    /// }
    /// .map_err(shared_model::Error::from))?;
    /// # Ok::<(), shared_model::Error>(())
    /// ```
    pub fn with_connection<T, E>(
        &self,
        work: impl FnOnce(AnyConnection<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<Error>,
    {
        match self.pools() {
            Pools::Sqlite(pool) => lend(pool, |conn| work(AnyConnection::Sqlite(conn))),
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => lend(pool, |conn| work(AnyConnection::Postgres(conn))),
            #[cfg(feature = "mysql")]
            Pools::Mysql(pool) => lend(pool, |conn| work(AnyConnection::Mysql(conn))),
        }
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.inner.pools
    }

    /// See [`Inner::reads_never_wait`].
    pub(crate) fn reads_never_wait(&self) -> bool {
        self.inner
            .reads_never_wait
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}
