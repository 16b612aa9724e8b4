//! The few places where the three backends need different SQL.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};
use diesel::SqliteConnection;

use crate::schema::sessions;
use crate::session::SessionRow;
use crate::Result;

/// Per-backend pieces of the manager's queries.
pub(crate) trait Store: Connection + Sized {
    /// `FN(haystack, needle)`: 1-based position of `needle`, 0 when absent.
    const POSITION_FN: &'static str;

    /// An SQL expression giving `column`'s hour as `YYYY-MM-DD HH` text.
    fn hour_bucket(column: &str) -> String;

    /// Runs `f` in a transaction that holds the write lock from its first statement
    /// (SQLite `BEGIN IMMEDIATE`) or relies on row locks (PostgreSQL, MySQL).
    fn write_transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T>;

    /// Reads a row and locks it until the transaction ends.
    fn lock_session(&mut self, id: &str) -> QueryResult<Option<SessionRow>>;

    /// Deletes up to `batch` rows with `expires_at <= now` in one statement.
    fn purge_batch(&mut self, now: NaiveDateTime, batch: i64) -> QueryResult<usize>;
}

impl Store for SqliteConnection {
    const POSITION_FN: &'static str = "instr";

    fn hour_bucket(column: &str) -> String {
        // Timestamps are stored as "YYYY-MM-DD HH:MM:SS.ffffff".
        format!("substr({column}, 1, 13)")
    }

    fn write_transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.immediate_transaction(f)
    }

    fn lock_session(&mut self, id: &str) -> QueryResult<Option<SessionRow>> {
        // `BEGIN IMMEDIATE` already holds the database's write lock.
        sessions::table
            .find(id)
            .select(SessionRow::as_select())
            .get_result(self)
            .optional()
    }

    fn purge_batch(&mut self, now: NaiveDateTime, batch: i64) -> QueryResult<usize> {
        diesel::sql_query(
            "DELETE FROM sessions WHERE id IN \
             (SELECT id FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
        )
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(batch)
        .execute(self)
    }
}

#[cfg(feature = "postgres")]
impl Store for diesel::PgConnection {
    const POSITION_FN: &'static str = "strpos";

    fn hour_bucket(column: &str) -> String {
        format!("to_char({column}, 'YYYY-MM-DD HH24')")
    }

    fn write_transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.transaction(f)
    }

    fn lock_session(&mut self, id: &str) -> QueryResult<Option<SessionRow>> {
        sessions::table
            .find(id)
            .select(SessionRow::as_select())
            .for_update()
            .get_result(self)
            .optional()
    }

    fn purge_batch(&mut self, now: NaiveDateTime, batch: i64) -> QueryResult<usize> {
        diesel::sql_query(
            "DELETE FROM sessions WHERE id IN \
             (SELECT id FROM sessions WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2)",
        )
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(batch)
        .execute(self)
    }
}

#[cfg(feature = "mysql")]
impl Store for diesel::MysqlConnection {
    const POSITION_FN: &'static str = "instr";

    fn hour_bucket(column: &str) -> String {
        format!("DATE_FORMAT({column}, '%Y-%m-%d %H')")
    }

    fn write_transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.transaction(f)
    }

    fn lock_session(&mut self, id: &str) -> QueryResult<Option<SessionRow>> {
        sessions::table
            .find(id)
            .select(SessionRow::as_select())
            .for_update()
            .get_result(self)
            .optional()
    }

    fn purge_batch(&mut self, now: NaiveDateTime, batch: i64) -> QueryResult<usize> {
        // MySQL refuses LIMIT inside IN (...) but has DELETE ... LIMIT.
        diesel::sql_query("DELETE FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?")
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(batch)
            .execute(self)
    }
}
