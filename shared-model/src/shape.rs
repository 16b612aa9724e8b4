//! What a database's `sessions` table looks like, read from the catalog rather
//! than from Diesel's migrations table, so a table made by any tool (sqlx,
//! refinery, Flyway, by hand) can be checked.

use diesel::sql_types::Text;
use diesel::RunQueryDsl;

use crate::{AnyConnection, Backend, Database, Error, Result};

/// A column type as the session code reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Text,
    Timestamp,
    BigInt,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Timestamp => "timestamp",
            Self::BigInt => "64-bit integer",
        }
    }

    /// Whether a column declared as `declared` on `backend` reads as this family.
    fn accepts(self, backend: Backend, declared: &str) -> bool {
        let declared = declared.trim().to_ascii_lowercase();
        match backend {
            // SQLite keeps what it is given; the declared type only has to have
            // the right affinity (timestamps are stored as text).
            Backend::Sqlite => match self {
                Self::Text => ["char", "clob", "text"]
                    .iter()
                    .any(|t| declared.contains(t)),
                Self::Timestamp => ["time", "date", "text"]
                    .iter()
                    .any(|t| declared.contains(t)),
                Self::BigInt => declared.contains("int"),
            },
            Backend::Postgres => match self {
                Self::Text => matches!(
                    declared.as_str(),
                    "text" | "character varying" | "character"
                ),
                Self::Timestamp => declared.starts_with("timestamp"),
                Self::BigInt => declared == "bigint",
            },
            Backend::Mysql => match self {
                Self::Text => matches!(
                    declared.as_str(),
                    "char" | "varchar" | "text" | "tinytext" | "mediumtext" | "longtext"
                ),
                Self::Timestamp => matches!(declared.as_str(), "datetime" | "timestamp"),
                Self::BigInt => declared == "bigint",
            },
        }
    }
}

/// The columns every version of the schema has.
const BASE_COLUMNS: &[(&str, Family)] = &[
    ("id", Family::Text),
    ("user_id", Family::Text),
    ("data", Family::Text),
    ("expires_at", Family::Timestamp),
    ("created_at", Family::Timestamp),
    ("updated_at", Family::Timestamp),
    ("version", Family::BigInt),
];

/// The columns the devices migration added.
const DEVICE_COLUMNS: &[(&str, Family)] = &[
    ("ip_address", Family::Text),
    ("user_agent", Family::Text),
    ("last_seen_at", Family::Timestamp),
    ("timeout_seconds", Family::BigInt),
];

/// The audit log's columns.
const EVENT_COLUMNS: &[(&str, Family)] = &[
    ("id", Family::BigInt),
    ("at", Family::Timestamp),
    ("session_id", Family::Text),
    ("user_id", Family::Text),
    ("kind", Family::Text),
    ("actor", Family::Text),
    ("ip_address", Family::Text),
    ("user_agent", Family::Text),
    ("detail", Family::Text),
];

/// What Diesel's migrations table says about the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bookkeeping {
    /// Every migration of this build has run.
    Current,
    /// These migrations have not run (the database is older than this build).
    Pending(Vec<String>),
    /// There is no `__diesel_schema_migrations` table: the schema was made by
    /// another tool. Not an error when the columns are right.
    Missing,
}

/// What a database's session tables look like; see [`Database::inspect_schema`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaReport {
    /// Whether `sessions` has the devices columns (`ip_address`, `user_agent`,
    /// `last_seen_at`, `timeout_seconds`). Without them the table is read and
    /// written as the first schema was, and those fields are `None`.
    pub device_columns: bool,
    /// Whether the `session_events` audit table exists with its columns.
    pub events_table: bool,
    /// What Diesel's migrations table says.
    pub bookkeeping: Bookkeeping,
}

impl SchemaReport {
    /// Warnings worth showing (an older schema, no bookkeeping); never a refusal.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        match &self.bookkeeping {
            Bookkeeping::Current => {}
            Bookkeeping::Pending(names) => warnings.push(format!(
                "{} migration(s) of this build not run: {}",
                names.len(),
                names.join(", ")
            )),
            Bookkeeping::Missing => warnings.push(
                "no Diesel migrations table (__diesel_schema_migrations): the schema was made by \
                 another tool; checked its columns instead"
                    .to_owned(),
            ),
        }
        if !self.device_columns {
            warnings.push(
                "older schema: no device columns (IP, browser, last seen, remember me)".to_owned(),
            );
        }
        if !self.events_table {
            warnings.push("no session_events table: no history, writes are not audited".to_owned());
        }
        warnings
    }
}

#[derive(diesel::QueryableByName)]
struct ColumnRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
}

fn columns_sql(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Sqlite => {
            format!("SELECT name AS name, type AS kind FROM pragma_table_info('{table}')")
        }
        Backend::Postgres => format!(
            "SELECT column_name::text AS name, data_type::text AS kind \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}'"
        ),
        Backend::Mysql => format!(
            "SELECT CAST(COLUMN_NAME AS CHAR) AS name, CAST(DATA_TYPE AS CHAR) AS kind \
             FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name = '{table}'"
        ),
    }
}

impl Database {
    /// The columns of `table` (name, declared type), empty when it does not exist.
    fn columns(&self, table: &str) -> Result<Vec<(String, String)>> {
        let sql = columns_sql(self.backend(), table);
        let rows: Vec<ColumnRow> = self.with_connection(|conn| {
            Ok::<_, Error>(match conn {
                AnyConnection::Sqlite(conn) => diesel::sql_query(&sql).load(conn)?,
                #[cfg(feature = "postgres")]
                AnyConnection::Postgres(conn) => diesel::sql_query(&sql).load(conn)?,
                #[cfg(feature = "mysql")]
                AnyConnection::Mysql(conn) => diesel::sql_query(&sql).load(conn)?,
            })
        })?;
        Ok(rows.into_iter().map(|row| (row.name, row.kind)).collect())
    }

    /// Reads the session tables' shape from the database's catalog, without
    /// writing anything (it works on a [`read_only`](crate::DatabaseBuilder::read_only)
    /// connection).
    ///
    /// # Errors
    ///
    /// [`Error::NoSessionsTable`]; [`Error::Schema`] when `sessions` lacks a column the
    /// session code reads, or has one of a type it cannot read (the error names
    /// them); database errors.
    ///
    /// # Examples
    ///
    /// ```
    /// use shared_model::{Bookkeeping, Database};
    ///
    /// let db = Database::connect(":memory:")?;
    /// assert!(db.inspect_schema().is_err(), "no sessions table yet");
    /// db.run_migrations()?;
    /// let report = db.inspect_schema()?;
    /// assert!(report.device_columns && report.events_table);
    /// assert_eq!(report.bookkeeping, Bookkeeping::Current);
    /// # Ok::<(), shared_model::Error>(())
    /// ```
    pub fn inspect_schema(&self) -> Result<SchemaReport> {
        let backend = self.backend();
        let columns = self.columns("sessions")?;
        if columns.is_empty() {
            return Err(Error::NoSessionsTable);
        }
        let mut problems = Vec::new();
        let check = |expected: &[(&str, Family)], problems: &mut Vec<String>| -> bool {
            let mut all = true;
            for (name, family) in expected {
                match columns
                    .iter()
                    .find(|(found, _)| found.eq_ignore_ascii_case(name))
                {
                    None => {
                        all = false;
                        problems.push(format!("column {name} is missing"));
                    }
                    Some((_, declared)) if !family.accepts(backend, declared) => {
                        all = false;
                        problems.push(format!(
                            "column {name} is {declared}, expected {}",
                            family.name()
                        ));
                    }
                    Some(_) => {}
                }
            }
            all
        };
        check(BASE_COLUMNS, &mut problems);
        let has_any_device = DEVICE_COLUMNS.iter().any(|(name, _)| {
            columns
                .iter()
                .any(|(found, _)| found.eq_ignore_ascii_case(name))
        });
        // None of them: an older schema. Some of them: they must all be right.
        let device_columns = has_any_device && check(DEVICE_COLUMNS, &mut problems);
        if !problems.is_empty() {
            return Err(Error::Schema { problems });
        }
        let events = self.columns("session_events")?;
        let events_table = EVENT_COLUMNS.iter().all(|(name, family)| {
            events.iter().any(|(found, declared)| {
                found.eq_ignore_ascii_case(name) && family.accepts(backend, declared)
            })
        });
        let pending = self.pending_migrations_if_recorded()?;
        Ok(SchemaReport {
            device_columns,
            events_table,
            bookkeeping: match pending {
                None => Bookkeeping::Missing,
                Some(names) if names.is_empty() => Bookkeeping::Current,
                Some(names) => Bookkeeping::Pending(names),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_accept_what_each_backend_declares() {
        assert!(Family::Text.accepts(Backend::Sqlite, "VARCHAR(36)"));
        assert!(Family::Timestamp.accepts(Backend::Sqlite, "DATETIME"));
        assert!(!Family::BigInt.accepts(Backend::Sqlite, "TEXT"));
        assert!(Family::Timestamp.accepts(Backend::Postgres, "timestamp with time zone"));
        assert!(!Family::BigInt.accepts(Backend::Postgres, "integer"));
        assert!(!Family::Text.accepts(Backend::Postgres, "uuid"));
        assert!(Family::Text.accepts(Backend::Mysql, "longtext"));
        assert!(!Family::Timestamp.accepts(Backend::Mysql, "date"));
    }

    #[test]
    fn a_hand_made_table_is_checked_by_its_columns() {
        let db = Database::connect(":memory:").unwrap();
        db.with_connection(|conn| match conn {
            AnyConnection::Sqlite(conn) => diesel::connection::SimpleConnection::batch_execute(
                conn,
                "CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id TEXT, data TEXT, \
                 expires_at DATETIME, created_at DATETIME, updated_at DATETIME, version INTEGER)",
            )
            .map_err(Error::from),
            #[allow(unreachable_patterns)]
            _ => unreachable!(),
        })
        .unwrap();
        let report = db.inspect_schema().unwrap();
        assert_eq!(report.bookkeeping, Bookkeeping::Missing);
        assert!(!report.device_columns);
        assert!(!report.events_table);
        db.with_connection(|conn| match conn {
            AnyConnection::Sqlite(conn) => diesel::connection::SimpleConnection::batch_execute(
                conn,
                "ALTER TABLE sessions ADD COLUMN ip_address BLOB",
            )
            .map_err(Error::from),
            #[allow(unreachable_patterns)]
            _ => unreachable!(),
        })
        .unwrap();
        let error = db.inspect_schema().unwrap_err().to_string();
        assert!(
            error.contains("column ip_address is BLOB, expected text"),
            "{error}"
        );
        assert!(error.contains("column user_agent is missing"), "{error}");
    }
}
