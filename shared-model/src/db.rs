//! [`Database`]: a pooled connection to SQLite, PostgreSQL or MySQL/MariaDB,
//! chosen at runtime from a URL.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, SqliteConnection};

#[allow(unused_imports)] // `Error` is only named when a backend is left out
use crate::{Error, Result};

/// The database engine behind a [`Database`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file (or `:memory:`), bundled: works with no server and no system library.
    Sqlite,
    /// PostgreSQL (cargo feature `postgres`).
    Postgres,
    /// MySQL or MariaDB (cargo feature `mysql`).
    Mysql,
}

impl Backend {
    /// Which backend a URL selects: `postgres://` and `postgresql://` select
    /// PostgreSQL, `mysql://` MySQL/MariaDB, anything else is an SQLite path
    /// (an optional `sqlite://` prefix is removed).
    ///
    /// # Examples
    ///
    /// ```
    /// use shared_model::Backend;
    ///
    /// assert_eq!(Backend::from_url("postgres://localhost/app"), Backend::Postgres);
    /// assert_eq!(Backend::from_url("mysql://root@localhost/app"), Backend::Mysql);
    /// assert_eq!(Backend::from_url("sqlite://db.sqlite"), Backend::Sqlite);
    /// assert_eq!(Backend::from_url(":memory:"), Backend::Sqlite);
    /// ```
    #[must_use]
    pub fn from_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres
        } else if url.starts_with("mysql://") {
            Self::Mysql
        } else {
            Self::Sqlite
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::Mysql => "MySQL",
        })
    }
}

/// How many statements a [`Database`] has sent, by kind.
///
/// Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`) and anything else count as
/// `other`. Statements run while a connection is being set up (SQLite pragmas) are
/// not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatementCounts {
    /// `SELECT` statements.
    pub reads: u64,
    /// `INSERT`, `UPDATE` and `DELETE` statements.
    pub writes: u64,
    /// Everything else (transaction control, DDL, pragmas after setup).
    pub other: u64,
}

impl StatementCounts {
    /// All statements.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.reads + self.writes + self.other
    }
}

impl std::ops::Sub for StatementCounts {
    type Output = Self;
    fn sub(self, earlier: Self) -> Self {
        Self {
            reads: self.reads.saturating_sub(earlier.reads),
            writes: self.writes.saturating_sub(earlier.writes),
            other: self.other.saturating_sub(earlier.other),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
    other: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> StatementCounts {
        StatementCounts {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
        }
    }
}

/// Counts each statement a connection starts, by its first keyword.
struct StatementCounter(Arc<Counters>);

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let mut head = Head::default();
            // `Head` stops the formatting after a few bytes; the error is expected.
            let _truncated = fmt::write(&mut head, format_args!("{query}"));
            let counter = match head.keyword().as_str() {
                "SELECT" | "WITH" => &self.0.reads,
                "INSERT" | "UPDATE" | "DELETE" | "REPLACE" => &self.0.writes,
                _ => &self.0.other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The first bytes of a statement's text.
#[derive(Default)]
struct Head {
    bytes: [u8; 16],
    len: usize,
}

impl Head {
    fn keyword(&self) -> String {
        let text = String::from_utf8_lossy(self.bytes.get(..self.len).unwrap_or_default());
        text.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase()
    }
}

impl fmt::Write for Head {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            let slot = self.bytes.get_mut(self.len).ok_or(fmt::Error)?;
            *slot = byte;
            self.len += 1;
        }
        Ok(())
    }
}

/// A pooled connection plus a flag the manager sets when the connection is lost,
/// so the pool drops it instead of handing it out again.
pub(crate) struct Tracked<C> {
    pub(crate) conn: C,
    pub(crate) lost: bool,
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

pub(crate) type Pool<C> = r2d2::Pool<Manager<C>>;

pub(crate) enum Pools {
    Sqlite(Pool<SqliteConnection>),
    #[cfg(feature = "postgres")]
    Postgres(Pool<diesel::PgConnection>),
    #[cfg(feature = "mysql")]
    Mysql(Pool<diesel::MysqlConnection>),
}

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

/// Runs `body` on a pooled connection. After a failure the connection must still
/// answer a ping (one `SELECT 1`, only on errors), or the pool drops it: a
/// restarted server leaves dead connections that drivers do not always report
/// as broken (MySQL's "server has gone away").
pub(crate) fn run<C, T>(pool: &Pool<C>, body: impl FnOnce(&mut C) -> Result<T>) -> Result<T>
where
    C: Connection + R2D2Connection + Send + 'static,
{
    let mut pooled = pool.get()?;
    let result = body(&mut pooled.conn);
    if result.is_err() {
        pooled.lost = pooled.conn.ping().is_err();
    }
    result
}

/// [`Database::with_connection`] for one backend; like [`run`], a connection that
/// no longer answers a ping after a failure is dropped by the pool.
fn lend<C, T, E>(
    pool: &Pool<C>,
    wrap: for<'a> fn(&'a mut C) -> AnyConnection<'a>,
    work: impl FnOnce(AnyConnection<'_>) -> Result<T, E>,
) -> Result<T, E>
where
    C: Connection + R2D2Connection + Send + 'static,
    E: From<Error>,
{
    let mut pooled = pool.get().map_err(Error::from)?;
    let result = work(wrap(&mut pooled.conn));
    if result.is_err() {
        pooled.lost = pooled.conn.ping().is_err();
    }
    result
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
}

impl DatabaseBuilder {
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
        let pools = match backend {
            Backend::Sqlite => {
                let path = sqlite_path(&self.url).to_owned();
                let in_memory = path == ":memory:" || path.contains("mode=memory");
                let setup = SqliteSetup {
                    busy_ms: self.busy_timeout.as_millis(),
                    read_only: self.read_only,
                    tune: self.tune_sqlite && !self.read_only,
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
                let manager = self.manager(
                    &counters,
                    self.url.clone(),
                    move |conn: &mut diesel::PgConnection| {
                        // Timestamps are bound without a zone; a column declared
                        // `timestamptz` must not read them in the server's zone.
                        conn.batch_execute("SET TIME ZONE 'UTC'")?;
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
            // Lost connections are flagged by `run`; no extra round trip per checkout.
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
#[derive(Debug, Clone, Copy)]
struct SqliteSetup {
    busy_ms: u128,
    read_only: bool,
    /// Switch the file to WAL with `synchronous = NORMAL`, map it.
    tune: bool,
}

impl SqliteSetup {
    /// WAL lets the web app and the inspector read while the other writes; the
    /// busy timeout makes a writer wait for the lock instead of failing at once.
    /// Only `tune` changes the file (its journal mode); the rest is per connection.
    fn apply(self, conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
        let busy_ms = self.busy_ms;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {busy_ms}; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -16384;"
        ))?;
        if self.tune {
            // Memory-mapped reads for the app's hot pages. Not for a tool
            // reading a whole table once (an export): mapped pages count
            // towards its resident memory.
            conn.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA mmap_size = 268435456;",
            )?;
        }
        if self.read_only {
            conn.batch_execute("PRAGMA query_only = ON;")?;
        }
        Ok(())
    }
}

/// An SQLite path as a `file:` URI that opens it read-only (`mode=ro`). A
/// plain path names a file literally (as SQLite reads it when not a URI), so
/// `?`, `#` and `%` are escaped; a `file:` URI keeps its parameters.
fn read_only_uri(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("file:") {
        let joiner = if rest.contains('?') { '&' } else { '?' };
        return format!("file:{rest}{joiner}mode=ro");
    }
    // `file://x` would make `x` an authority: one leading slash names the same file.
    let path = if path.starts_with("//") {
        format!("/{}", path.trim_start_matches('/'))
    } else {
        path.to_owned()
    };
    let mut encoded = String::with_capacity(path.len());
    for ch in path.chars() {
        match ch {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3f"),
            '#' => encoded.push_str("%23"),
            other => encoded.push(other),
        }
    }
    format!("file:{encoded}?mode=ro")
}

/// The SQLite path of a URL: the text after an optional `sqlite://` prefix.
fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://").unwrap_or(url)
}

/// `url` with every password replaced by `***`: the one in `user:password@` and
/// any query parameter whose name contains `password` (libpq's `?password=`,
/// `sslpassword=`). Use it wherever a database URL is printed or stored.
///
/// # Examples
///
/// ```
/// use shared_model::redact_url;
///
/// assert_eq!(redact_url("postgres://app:s3cret@db/app"), "postgres://app:***@db/app");
/// assert_eq!(
///     redact_url("postgres://db/app?user=app&password=s3cret&sslmode=require"),
///     "postgres://db/app?user=app&password=***&sslmode=require"
/// );
/// assert_eq!(redact_url("db.sqlite"), "db.sqlite");
/// ```
#[must_use]
pub fn redact_url(url: &str) -> String {
    rewrite_passwords(url, Some("***"))
}

/// `url` without its passwords (see [`redact_url`] for which): what may be
/// stored, e.g. in a list of recent connections. Connecting with it again needs
/// the password from elsewhere (libpq's `PGPASSWORD` or `~/.pgpass`).
///
/// # Examples
///
/// ```
/// use shared_model::strip_password;
///
/// assert_eq!(strip_password("postgres://app:s3cret@db/app"), "postgres://app@db/app");
/// assert_eq!(
///     strip_password("postgres://db/app?password=s3cret&sslmode=require"),
///     "postgres://db/app?sslmode=require"
/// );
/// ```
#[must_use]
pub fn strip_password(url: &str) -> String {
    rewrite_passwords(url, None)
}

/// Replaces every password in `url` with `replacement`, or drops it.
fn rewrite_passwords(url: &str, replacement: Option<&str>) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return rewrite_query(url, replacement);
    };
    // The authority ends at the first `/`, `?` or `#`; credentials end at its
    // last `@` (a password may hold an unescaped `@`).
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (credentials, host, tail) = match authority.rsplit_once('@') {
        Some((credentials, host)) => (Some(credentials), host, tail),
        // A `:` followed by something other than a port means an unescaped `/`,
        // `?` or `#` in a password cut the authority short: everything up to the
        // last `@` is credentials. This may hide too much, never too little.
        None if has_non_numeric_port(authority) && rest.contains('@') => {
            match rest.rsplit_once('@') {
                Some((credentials, after)) => {
                    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
                    let (host, tail) = after.split_at(end);
                    (Some(credentials), host, tail)
                }
                None => (None, authority, tail),
            }
        }
        None => (None, authority, tail),
    };
    let credentials = match (credentials, replacement) {
        (None, _) => String::new(),
        (Some(credentials), replacement) => match (credentials.split_once(':'), replacement) {
            (Some((user, _)), Some(replacement)) => format!("{user}:{replacement}@"),
            (Some((user, _)), None) => format!("{user}@"),
            (None, _) => format!("{credentials}@"),
        },
    };
    format!(
        "{scheme}://{credentials}{host}{}",
        rewrite_query(tail, replacement)
    )
}

/// Whether `authority` (without credentials) has a `:` not followed by digits only.
fn has_non_numeric_port(authority: &str) -> bool {
    authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.bytes().all(|b| b.is_ascii_digit()))
}

/// `path?query#fragment` with password parameters replaced or dropped.
fn rewrite_query(text: &str, replacement: Option<&str>) -> String {
    let Some((path, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .filter_map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                replacement.map(|replacement| format!("{key}={replacement}"))
            }
            _ => Some(pair.to_owned()),
        })
        .collect();
    if pairs.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", pairs.join("&"))
    }
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
        DatabaseBuilder {
            url: url.into(),
            pool_size: 10,
            connection_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            count_statements: false,
            min_idle: 1,
            read_only: false,
            tune_sqlite: true,
        }
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
    /// Match on [`AnyConnection`] to run Diesel code per backend.
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
            Pools::Sqlite(pool) => lend(pool, |conn| AnyConnection::Sqlite(conn), work),
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => lend(pool, |conn| AnyConnection::Postgres(conn), work),
            #[cfg(feature = "mysql")]
            Pools::Mysql(pool) => lend(pool, |conn| AnyConnection::Mysql(conn), work),
        }
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.inner.pools
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://app:secret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact_url("mysql://root@localhost/test"),
            "mysql://root@localhost/test"
        );
        assert_eq!(redact_url("db.sqlite"), "db.sqlite");
        // A password containing `@` and `:` still disappears whole.
        assert_eq!(
            redact_url("postgres://app:p@ss:w@rd@db/x?sslmode=require"),
            "postgres://app:***@db/x?sslmode=require"
        );
        assert_eq!(
            redact_url("mysql://root:a?b/c@db/x"),
            "mysql://root:***@db/x"
        );
        assert_eq!(
            redact_url("postgresql:///x?host=/run&PassWord=hunter2&sslpassword=k&user=u"),
            "postgresql:///x?host=/run&PassWord=***&sslpassword=***&user=u"
        );
        assert_eq!(
            strip_password("postgresql://u:p@h/x?password=a&sslmode=require&sslpassword=b"),
            "postgresql://u@h/x?sslmode=require"
        );
        assert_eq!(
            strip_password("mysql://root@h/x?password=a"),
            "mysql://root@h/x"
        );
        assert_eq!(strip_password("db.sqlite"), "db.sqlite");
        // An `@` after the host (Azure's user@server names) is not the end of
        // the credentials.
        assert_eq!(
            redact_url("postgres://db/app?user=me@corp&password=s3cret"),
            "postgres://db/app?user=me@corp&password=***"
        );
        assert_eq!(
            redact_url("postgres://app:pw@db/app?options=a@b&password=s3cret"),
            "postgres://app:***@db/app?options=a@b&password=***"
        );
        assert_eq!(
            strip_password("postgres://app:pw@db/app?options=a@b&password=s3cret"),
            "postgres://app@db/app?options=a@b"
        );
        assert_eq!(
            redact_url("postgres://db:5432/app"),
            "postgres://db:5432/app"
        );
        assert_eq!(
            redact_url("db.sqlite?password=x&mode=ro"),
            "db.sqlite?password=***&mode=ro"
        );
        // Whatever the shape, a password never survives.
        for url in [
            "postgres://app:s3cret@db/x",
            "postgres://app:s3/cret@db/x",
            "postgres://app:s3?cret@db/x",
            "postgres://app:s3#cret@db/x",
            "postgres://app:s3@cret@db/x?o=a@b",
            "mysql://app:s3cret@db:3306/x?password=s3cret",
        ] {
            assert!(
                !redact_url(url).contains("s3"),
                "{url} -> {}",
                redact_url(url)
            );
            assert!(
                !strip_password(url).contains("s3"),
                "{url} -> {}",
                strip_password(url)
            );
        }
    }

    #[test]
    fn read_only_uris_name_the_file_literally() {
        assert_eq!(read_only_uri("a b.db"), "file:a b.db?mode=ro");
        assert_eq!(read_only_uri("q?x#y%.db"), "file:q%3fx%23y%25.db?mode=ro");
        assert_eq!(read_only_uri("//tmp/x.db"), "file:/tmp/x.db?mode=ro");
        assert_eq!(
            read_only_uri("file:x.db?cache=shared"),
            "file:x.db?cache=shared&mode=ro"
        );
    }

    #[test]
    fn sqlite_prefix_is_optional() {
        assert_eq!(sqlite_path("sqlite://a/b.db"), "a/b.db");
        assert_eq!(sqlite_path("a/b.db"), "a/b.db");
    }

    #[test]
    fn statement_keyword_is_read_from_the_start() {
        let mut head = Head::default();
        let _ = fmt::write(
            &mut head,
            format_args!("  select * from sessions where id = ?"),
        );
        assert_eq!(head.keyword(), "SELECT");
    }
}
