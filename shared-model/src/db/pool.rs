//! Pooling: [`DatabaseBuilder`] opens an r2d2 pool per backend, whose
//! [`Manager`] sets each new connection up (SQLite pragmas, UTC, read-only)
//! and installs the statement counter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, SqliteConnection};

use super::counting::{Counters, StatementCounter};
use super::url::{read_only_uri, redact_url, sqlite_path};
use super::{Backend, Database, Inner};
#[allow(unused_imports)] // `Error` is only named when a backend is left out
use crate::{Error, Result};

/// A pooled connection plus a flag the manager sets when the connection is lost,
/// so the pool drops it instead of handing it out again.
pub(crate) struct Tracked<C> {
    pub(super) conn: C,
    pub(super) lost: bool,
}

/// Per-connection setup run right after connecting.
type Setup<C> = dyn Fn(&mut C) -> diesel::QueryResult<()> + Send + Sync;

/// Opens connections for r2d2: runs the per-backend setup and installs the
/// statement counter.
pub(crate) struct Manager<C> {
    url: String,
    setup: Box<Setup<C>>,
    /// `None` when statement counting is off.
    counters: Option<Arc<Counters>>,
    _connection: std::marker::PhantomData<fn() -> C>,
}

impl<C> r2d2::ManageConnection for Manager<C>
where
    C: Connection + R2D2Connection + Send + 'static,
{
    type Connection = Tracked<C>;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<Tracked<C>, diesel::ConnectionError> {
        let mut conn = C::establish(&self.url)?;
        (self.setup)(&mut conn).map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        if let Some(counters) = &self.counters {
            conn.set_instrumentation(StatementCounter(Arc::clone(counters)));
        }
        Ok(Tracked { conn, lost: false })
    }

    fn is_valid(&self, tracked: &mut Tracked<C>) -> Result<(), diesel::ConnectionError> {
        tracked
            .conn
            .ping()
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, tracked: &mut Tracked<C>) -> bool {
        tracked.lost || std::thread::panicking() || tracked.conn.is_broken()
    }
}

/// An r2d2 pool of one backend's connections.
pub(crate) type Pool<C> = r2d2::Pool<Manager<C>>;

/// The pool of a [`Database`], of the backend its URL selected.
pub(crate) enum Pools {
    Sqlite(Pool<SqliteConnection>),
    #[cfg(feature = "postgres")]
    Postgres(Pool<diesel::PgConnection>),
    #[cfg(feature = "mysql")]
    Mysql(Pool<diesel::MysqlConnection>),
}

/// Connection settings for [`Database::builder`].
#[derive(Debug, Clone)]
pub struct DatabaseBuilder {
    url: String,
    pool_size: u32,
    connection_timeout: Duration,
    busy_timeout: Duration,
    count_statements: bool,
    min_idle: u32,
    read_only: bool,
    tune_sqlite: bool,
    durable_commits: bool,
}

impl DatabaseBuilder {
    /// The default settings for `url` ([`Database::builder`]).
    pub(super) fn new(url: String) -> Self {
        Self {
            url,
            pool_size: 10,
            connection_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            count_statements: false,
            min_idle: 1,
            read_only: false,
            tune_sqlite: true,
            durable_commits: true,
        }
    }

    /// Counts every statement by kind for [`Database::statement_counts`]
    /// (default off). Costs a few microseconds per statement: diesel renders the
    /// SQL text for each one so it can be classified. Meant for tests and
    /// benchmarks.
    #[must_use]
    pub fn count_statements(mut self, enabled: bool) -> Self {
        self.count_statements = enabled;
        self
    }

    /// Maximum number of pooled connections (default 10; always 1 for SQLite `:memory:`,
    /// where every connection would otherwise see its own empty database).
    #[must_use]
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How many idle connections the pool keeps open (default 1, at most
    /// [`pool_size`](Self::pool_size)). While fewer are idle, r2d2 opens more
    /// on a background thread. A short-lived process (a CLI command) should use
    /// 0: a process that exits while that thread is still setting up a
    /// PostgreSQL TLS connection can crash in OpenSSL's exit handlers. With 0,
    /// every connection is opened while a caller waits for it.
    #[must_use]
    pub fn min_idle(mut self, idle: u32) -> Self {
        self.min_idle = idle;
        self
    }

    /// How long to wait for a free or new connection before failing with
    /// [`Error::Pool`] (default 5 s).
    #[must_use]
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// SQLite only: how long a statement waits for another writer's lock before
    /// failing with "database is locked" (default 5 s).
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Refuses every write at the connection (default off): SQLite files are
    /// opened with `mode=ro` (and `PRAGMA query_only`), PostgreSQL and MySQL
    /// sessions default to read-only transactions. For tools that must not
    /// change a production database (the inspector's `--read-only`).
    #[must_use]
    pub fn read_only(mut self, enabled: bool) -> Self {
        self.read_only = enabled;
        self
    }

    /// PostgreSQL only: whether a commit waits for its WAL record to reach
    /// disk (default on). Off, the pool's connections run with
    /// `synchronous_commit = off`: a commit returns before the flush, which
    /// the server does within `3 × wal_writer_delay` (600 ms by default).
    ///
    /// # Warning
    ///
    /// Off, a crash of the database server (not of the app) loses the
    /// transactions that committed in that last fraction of a second: every
    /// write through this pool (logins, logouts, session writes, and an app's
    /// own tables written through it) the app had already answered for. The
    /// database stays consistent (no torn or partial transaction); a lost
    /// logout means a session that comes back. Other backends
    /// ignore it: SQLite runs `synchronous = NORMAL` in WAL mode already (a
    /// power loss may undo the last commits; an app crash does not), and
    /// MySQL's equivalent (`innodb_flush_log_at_trx_commit`) is server-wide.
    #[must_use]
    pub fn durable_commits(mut self, enabled: bool) -> Self {
        self.durable_commits = enabled;
        self
    }

    /// SQLite only: whether opening a file switches it to WAL with
    /// `synchronous = NORMAL` and reads it through a 256 MiB memory map
    /// (default on, what an app that owns the file wants). Off, the file's
    /// journal mode is left as it is, so opening a database never changes it,
    /// and nothing is mapped (the inspector: mapped pages of a table read
    /// once would count towards its memory). The busy timeout and the
    /// 16 MiB page cache are set either way.
    #[must_use]
    pub fn tune_sqlite(mut self, enabled: bool) -> Self {
        self.tune_sqlite = enabled;
        self
    }

    /// Opens the pool and one connection, so a wrong URL or a server that is down
    /// is reported now rather than at the first query.
    ///
    /// # Errors
    ///
    /// [`Error::BackendNotCompiled`] when the URL needs a cargo feature this build
    /// lacks; [`Error::Pool`] when no connection could be opened within the
    /// connection timeout (the message includes the driver's reason).
    pub fn connect(self) -> Result<Database> {
        self.open(true)
    }

    /// Like [`connect`](Self::connect) but opens no connection yet: the first query
    /// does. Use it when the database may come up after the caller.
    ///
    /// # Errors
    ///
    /// [`Error::BackendNotCompiled`] when the URL needs a cargo feature this build lacks.
    pub fn connect_lazy(self) -> Result<Database> {
        self.open(false)
    }

    fn open(self, eager: bool) -> Result<Database> {
        let counters = Arc::new(Counters::default());
        let backend = Backend::from_url(&self.url);
        let reads_never_wait = Arc::new(AtomicBool::new(false));
        let pools = match backend {
            Backend::Sqlite => {
                let path = sqlite_path(&self.url).to_owned();
                let in_memory = path == ":memory:" || path.contains("mode=memory");
                // WAL readers never wait for the writer (each connection
                // reports whether the switch to WAL took; `:memory:` answers
                // "memory").
                let tune = self.tune_sqlite && !self.read_only;
                reads_never_wait.store(tune, Ordering::Relaxed);
                let setup = SqliteSetup {
                    busy_ms: self.busy_timeout.as_millis(),
                    read_only: self.read_only,
                    tune,
                    wal: tune.then(|| Arc::clone(&reads_never_wait)),
                };
                let path = if self.read_only && !in_memory {
                    read_only_uri(&path)
                } else {
                    path
                };
                let manager = self.manager(&counters, path, move |conn| setup.apply(conn));
                let builder = if in_memory {
                    // One connection owns the in-memory database for the pool's lifetime.
                    self.pool_builder()
                        .max_size(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                } else {
                    self.pool_builder()
                };
                Pools::Sqlite(build(builder, manager, eager)?)
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres => {
                let read_only = self.read_only;
                let durable = self.durable_commits;
                let manager = self.manager(
                    &counters,
                    self.url.clone(),
                    move |conn: &mut diesel::PgConnection| {
                        // Timestamps are bound without a zone; a column declared
                        // `timestamptz` must not read them in the server's zone.
                        conn.batch_execute("SET TIME ZONE 'UTC'")?;
                        if !durable {
                            conn.batch_execute("SET synchronous_commit = off")?;
                        }
                        if read_only {
                            conn.batch_execute(
                                "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
                            )?;
                        }
                        Ok(())
                    },
                );
                Pools::Postgres(build(self.pool_builder(), manager, eager)?)
            }
            #[cfg(feature = "mysql")]
            Backend::Mysql => {
                let read_only = self.read_only;
                let manager = self.manager(
                    &counters,
                    self.url.clone(),
                    move |conn: &mut diesel::MysqlConnection| {
                        conn.batch_execute("SET time_zone = '+00:00'")?;
                        if read_only {
                            conn.batch_execute("SET SESSION TRANSACTION READ ONLY")?;
                        }
                        Ok(())
                    },
                );
                Pools::Mysql(build(self.pool_builder(), manager, eager)?)
            }
            #[cfg(not(feature = "postgres"))]
            Backend::Postgres => {
                return Err(Error::BackendNotCompiled {
                    backend: "PostgreSQL",
                    feature: "postgres",
                })
            }
            #[cfg(not(feature = "mysql"))]
            Backend::Mysql => {
                return Err(Error::BackendNotCompiled {
                    backend: "MySQL",
                    feature: "mysql",
                })
            }
        };
        Ok(Database {
            inner: Arc::new(Inner {
                pools,
                reads_never_wait,
                backend,
                display_url: redact_url(&self.url),
                counters,
            }),
        })
    }

    fn pool_builder<C>(&self) -> r2d2::Builder<Manager<C>>
    where
        C: Connection + R2D2Connection + Send + 'static,
    {
        r2d2::Pool::builder()
            .max_size(self.pool_size)
            .min_idle(Some(self.min_idle.min(self.pool_size)))
            .connection_timeout(self.connection_timeout)
            // Lost connections are flagged by `db::lend`; no extra round trip per checkout.
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
    }

    fn manager<C>(
        &self,
        counters: &Arc<Counters>,
        url: String,
        setup: impl Fn(&mut C) -> diesel::QueryResult<()> + Send + Sync + 'static,
    ) -> Manager<C> {
        Manager {
            url,
            setup: Box::new(setup),
            counters: self.count_statements.then(|| Arc::clone(counters)),
            _connection: std::marker::PhantomData,
        }
    }
}

fn build<C>(builder: r2d2::Builder<Manager<C>>, manager: Manager<C>, eager: bool) -> Result<Pool<C>>
where
    C: Connection + R2D2Connection + Send + 'static,
{
    if eager {
        // `build` would only report "timed out"; connect once first for the real reason.
        let first = r2d2::ManageConnection::connect(&manager)?;
        drop(first);
        Ok(builder.build(manager)?)
    } else {
        Ok(builder.build_unchecked(manager))
    }
}

/// Pragmas for each new SQLite connection.
#[derive(Debug, Clone)]
struct SqliteSetup {
    busy_ms: u128,
    read_only: bool,
    /// Switch the file to WAL with `synchronous = NORMAL`, map it.
    tune: bool,
    /// Cleared when a connection's switch to WAL did not take.
    wal: Option<Arc<AtomicBool>>,
}

/// What `PRAGMA journal_mode = ...` answers: the mode now in force.
#[derive(diesel::QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = diesel::sql_types::Text)]
    journal_mode: String,
}

impl SqliteSetup {
    /// WAL lets the web app and the inspector read while the other writes; the
    /// busy timeout makes a writer wait for the lock instead of failing at once.
    /// Only `tune` changes the file (its journal mode); the rest is per connection.
    fn apply(&self, conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
        let busy_ms = self.busy_ms;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {busy_ms}; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -16384;"
        ))?;
        if self.tune {
            // Memory-mapped reads for the app's hot pages. Not for a tool
            // reading a whole table once (an export): mapped pages count
            // towards its resident memory.
            use diesel::RunQueryDsl;
            let mode: JournalMode =
                diesel::sql_query("PRAGMA journal_mode = WAL").get_result(conn)?;
            if let Some(wal) = &self.wal {
                if !mode.journal_mode.eq_ignore_ascii_case("wal") {
                    wal.store(false, Ordering::Relaxed);
                }
            }
            conn.batch_execute("PRAGMA synchronous = NORMAL; PRAGMA mmap_size = 268435456;")?;
        }
        if self.read_only {
            conn.batch_execute("PRAGMA query_only = ON;")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place read flag follows what SQLite answered, not what was
    /// asked: a tuned file reports WAL; memory answers "memory" to the switch.
    #[test]
    fn reads_never_wait_only_where_the_switch_to_wal_took() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let file = dir.path().join("wal.sqlite").display().to_string();
        let tuned = Database::builder(file.as_str())
            .connect()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(tuned.reads_never_wait());
        let untuned = Database::builder(file.as_str())
            .tune_sqlite(false)
            .connect()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!untuned.reads_never_wait());
        let memory = Database::builder(":memory:")
            .connect()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!memory.reads_never_wait(), "the switch did not take");
    }
}
