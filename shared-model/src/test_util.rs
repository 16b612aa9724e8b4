//! Scratch databases for tests (cargo feature `test-util`).
//!
//! Each [`TestDatabase`] is isolated, so tests can run in parallel against one
//! server: SQLite gets a file in a temporary directory, PostgreSQL a schema of its
//! own (selected through the URL's `search_path` option) and MySQL a database of
//! its own. The server URLs come from `SESSIONS_TEST_POSTGRES_URL` and
//! `SESSIONS_TEST_MYSQL_URL`; when a backend's feature is compiled in but its URL
//! is missing or unreachable, the constructor panics: a test that cannot reach its
//! database fails, it never passes silently.

#[cfg(any(feature = "postgres", feature = "mysql"))]
use diesel::{connection::SimpleConnection as _, Connection as _};

use crate::{Backend, Database, SessionManager};

/// Runs `$body` with `$conn` bound to a new connection (no pool) of the test
/// database's backend; the error, of connecting or of `$body`, as text.
macro_rules! direct {
    ($db:expr, $conn:ident => $body:expr) => {{
        use diesel::Connection as _;
        match $db.backend {
            Backend::Sqlite => diesel::SqliteConnection::establish(&$db.url)
                .map_err(|e| e.to_string())
                .and_then(|mut c| {
                    let $conn = &mut c;
                    $body.map_err(|e| e.to_string())
                }),
            #[cfg(feature = "postgres")]
            Backend::Postgres => diesel::PgConnection::establish(&$db.url)
                .map_err(|e| e.to_string())
                .and_then(|mut c| {
                    let $conn = &mut c;
                    $body.map_err(|e| e.to_string())
                }),
            #[cfg(feature = "mysql")]
            Backend::Mysql => diesel::MysqlConnection::establish(&$db.url)
                .map_err(|e| e.to_string())
                .and_then(|mut c| {
                    let $conn = &mut c;
                    $body.map_err(|e| e.to_string())
                }),
            #[allow(unreachable_patterns)]
            other => Err(format!("{other} is not compiled in")),
        }
    }};
}

/// The environment variable with the PostgreSQL server URL for tests.
pub const POSTGRES_URL_VAR: &str = "SESSIONS_TEST_POSTGRES_URL";
/// The environment variable with the MySQL/MariaDB server URL for tests.
pub const MYSQL_URL_VAR: &str = "SESSIONS_TEST_MYSQL_URL";

/// An isolated, migrated scratch database, removed on drop.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Directory(#[allow(dead_code)] tempfile::TempDir),
    #[cfg(feature = "postgres")]
    PostgresSchema {
        server_url: String,
        schema: String,
    },
    #[cfg(feature = "mysql")]
    MysqlDatabase {
        server_url: String,
        database: String,
    },
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn scratch_name() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn server_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: the tests of this backend need a server URL (see .ci/run)")
    })
}

impl TestDatabase {
    /// A migrated SQLite file in a fresh temporary directory.
    ///
    /// # Panics
    ///
    /// When the directory or the database cannot be created.
    #[must_use]
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
        let url = dir.path().join("sessions.sqlite").display().to_string();
        let test_db = Self {
            url,
            backend: Backend::Sqlite,
            cleanup: Cleanup::Directory(dir),
        };
        test_db.migrate();
        test_db
    }

    /// A migrated schema of its own on the server in `SESSIONS_TEST_POSTGRES_URL`.
    ///
    /// # Panics
    ///
    /// When the variable is unset or the server unreachable.
    #[cfg(feature = "postgres")]
    #[must_use]
    pub fn postgres() -> Self {
        let server_url = server_url(POSTGRES_URL_VAR);
        let schema = scratch_name();
        let mut conn = diesel::PgConnection::establish(&server_url)
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}={server_url}: {e}"));
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("create schema {schema}: {e}"));
        let separator = if server_url.contains('?') { '&' } else { '?' };
        let url = format!("{server_url}{separator}options=-csearch_path%3D{schema}");
        let test_db = Self {
            url,
            backend: Backend::Postgres,
            cleanup: Cleanup::PostgresSchema { server_url, schema },
        };
        test_db.migrate();
        test_db
    }

    /// A migrated database of its own on the server in `SESSIONS_TEST_MYSQL_URL`.
    ///
    /// # Panics
    ///
    /// When the variable is unset or the server unreachable.
    #[cfg(feature = "mysql")]
    #[must_use]
    pub fn mysql() -> Self {
        let server_url = server_url(MYSQL_URL_VAR);
        let database = scratch_name();
        let mut conn = diesel::MysqlConnection::establish(&server_url)
            .unwrap_or_else(|e| panic!("{MYSQL_URL_VAR}={server_url}: {e}"));
        conn.batch_execute(&format!("CREATE DATABASE {database}"))
            .unwrap_or_else(|e| panic!("create database {database}: {e}"));
        let (base, query) = match server_url.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (server_url.as_str(), String::new()),
        };
        let host = base.rsplit_once('/').map_or(base, |(host, _)| host);
        let url = format!("{host}/{database}{query}");
        let test_db = Self {
            url,
            backend: Backend::Mysql,
            cleanup: Cleanup::MysqlDatabase {
                server_url,
                database,
            },
        };
        test_db.migrate();
        test_db
    }

    fn migrate(&self) {
        Database::connect(&self.url)
            .and_then(|db| db.run_migrations())
            .unwrap_or_else(|e| panic!("migrate {}: {e}", self.url));
    }

    /// The database URL (with the isolation applied).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The backend.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A new pool on this database, counting statements.
    ///
    /// # Panics
    ///
    /// When the database cannot be reached.
    #[must_use]
    pub fn database(&self) -> Database {
        // No spare connection opened in the background: a test process that
        // exits while libpq sets one up can crash in its exit handlers.
        Database::builder(&self.url)
            .pool_size(20)
            .min_idle(0)
            .count_statements(true)
            .connect()
            .unwrap_or_else(|e| panic!("connect {}: {e}", self.url))
    }

    /// Runs raw SQL on the database, outside any pool: for rows the manager would
    /// never write (corrupt data, oversized data, schema damage).
    ///
    /// # Panics
    ///
    /// When the SQL fails.
    pub fn execute(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        if let Err(error) = direct!(self, conn => conn.batch_execute(sql)) {
            panic!("{sql}: {error}");
        }
    }

    /// Runs a query whose one text column is named `value`, outside any pool, and
    /// returns the values: for checking what is really stored.
    ///
    /// # Panics
    ///
    /// When the SQL fails.
    #[must_use]
    pub fn query_strings(&self, sql: &str) -> Vec<String> {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let rows: Result<Vec<Row>, String> =
            direct!(self, conn => diesel::sql_query(sql).load(conn));
        match rows {
            Ok(rows) => rows.into_iter().map(|row| row.value).collect(),
            Err(error) => panic!("{sql}: {error}"),
        }
    }

    /// A manager with default settings on a new pool.
    #[must_use]
    pub fn manager(&self) -> SessionManager {
        SessionManager::new(self.database())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort: a leftover scratch schema only costs disk space.
        match &self.cleanup {
            Cleanup::Directory(_) => {}
            #[cfg(feature = "postgres")]
            Cleanup::PostgresSchema { server_url, schema } => {
                if let Ok(mut conn) = diesel::PgConnection::establish(server_url) {
                    if let Err(e) = conn.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")) {
                        eprintln!("could not drop test schema {schema}: {e}");
                    }
                }
            }
            #[cfg(feature = "mysql")]
            Cleanup::MysqlDatabase {
                server_url,
                database,
            } => {
                if let Ok(mut conn) = diesel::MysqlConnection::establish(server_url) {
                    if let Err(e) = conn.batch_execute(&format!("DROP DATABASE {database}")) {
                        eprintln!("could not drop test database {database}: {e}");
                    }
                }
            }
        }
    }
}

/// Stamps out a test module per backend: `backend_tests!(my_test, other_test);`
/// expects functions `fn my_test(db: &TestDatabase)` in scope, and creates
/// `sqlite::my_test` always, `postgres::my_test` with the `postgres` feature and
/// `mysql::my_test` with the `mysql` feature.
#[macro_export]
macro_rules! backend_tests {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $test() {
                    super::$test(&$crate::test_util::TestDatabase::sqlite());
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[test]
                fn $test() {
                    super::$test(&$crate::test_util::TestDatabase::postgres());
                }
            )*
        }
        #[cfg(feature = "mysql")]
        mod mysql {
            $(
                #[test]
                fn $test() {
                    super::$test(&$crate::test_util::TestDatabase::mysql());
                }
            )*
        }
    };
}
