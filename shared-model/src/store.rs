//! The few places where the three backends need different SQL.

use chrono::NaiveDateTime;
use diesel::expression::SqlLiteral;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
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

    /// [`write_transaction`](Self::write_transaction) whose plain reads see
    /// the newest committed rows, also after the transaction's first read:
    /// READ COMMITTED on MySQL (its default REPEATABLE READ keeps reading the
    /// snapshot of the first read, even for rows the transaction then locked).
    /// PostgreSQL's default is READ COMMITTED already; SQLite has one writer.
    fn fresh_write_transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.write_transaction(f)
    }

    /// Reads a row and locks it until the transaction ends. With
    /// [`Columns::Base`] the devices columns are not read (an older schema).
    fn lock_session(&mut self, id: &str, columns: Columns) -> QueryResult<Option<SessionRow>>;

    /// Deletes up to `batch` rows with `expires_at <= now` in one statement.
    fn purge_batch(&mut self, now: NaiveDateTime, batch: i64) -> QueryResult<usize>;

    /// Takes this database's purge lock, without waiting, for this connection
    /// (until [`release_purge_lock`](Self::release_purge_lock) or the
    /// connection ends); `false` when another connection holds it. A session
    /// advisory lock on PostgreSQL and `GET_LOCK` on MySQL, both named after
    /// the schema, so one server's databases purge independently. SQLite takes
    /// nothing (the purge never asks): its write lock already lets one batch
    /// run at a time.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    fn try_purge_lock(&mut self) -> QueryResult<bool> {
        Ok(true)
    }

    /// Releases what [`try_purge_lock`](Self::try_purge_lock) took.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    fn release_purge_lock(&mut self) -> QueryResult<()> {
        Ok(())
    }

    /// The rows `which` names, locked until the transaction ends.
    fn lock_rows(&mut self, which: Rows<'_>, now: NaiveDateTime) -> QueryResult<Vec<Locked>>;

    /// [`write_transaction`](Self::write_transaction) holding, from before its
    /// first row lock, a lock named after `user_id` (when given): logins that
    /// enforce the per-user cap and the operations that end several of one
    /// user's sessions run one at a time per user, so they neither deadlock
    /// over each other's rows nor both slip under the cap. A transaction-scoped
    /// advisory lock on PostgreSQL (waiting at most 10 s), `GET_LOCK` on MySQL
    /// (the same; released after the transaction), and SQLite's write lock.
    fn user_transaction<T>(
        &mut self,
        user_id: Option<&str>,
        work: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T>;

    /// Deletes up to `batch` audit events older than `before` in one statement.
    fn trim_events_batch(&mut self, before: NaiveDateTime, batch: i64) -> QueryResult<usize>;
}

/// The first key of the PostgreSQL advisory lock a purge holds (the second
/// is the schema's hash); the per-user locks use 1397969224.
#[cfg(feature = "postgres")]
const PURGE_LOCK_SPACE: i32 = 1_397_969_225;

/// The MySQL lock a purge holds: server-wide names, so one per database (a
/// hash, as lock names are at most 64 characters).
#[cfg(feature = "mysql")]
const MYSQL_PURGE_LOCK: &str = "LEFT(SHA2(CONCAT(DATABASE(), '#purge'), 256), 60)";

/// `GET_LOCK`'s and `RELEASE_LOCK`'s answer.
#[cfg(feature = "mysql")]
#[derive(QueryableByName)]
struct MysqlLocked {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    locked: Option<i32>,
}

/// How long an operation that takes the per-user lock waits for another one
/// on the same user's sessions.
#[cfg(any(feature = "postgres", feature = "mysql"))]
const USER_LOCK_WAIT_SECONDS: u32 = 10;

/// A row [`Store::lock_rows`] locked: its id, and when it was last seen and
/// created (what the per-user cap orders by).
pub(crate) type Locked = (String, Option<NaiveDateTime>, NaiveDateTime);

/// The ids of locked rows.
pub(crate) fn ids(rows: Vec<Locked>) -> Vec<String> {
    rows.into_iter().map(|(id, ..)| id).collect()
}

/// Which of the `sessions` columns a database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Columns {
    /// Every column this build knows.
    Full,
    /// The first schema's: no devices columns.
    Base,
}

/// The SQL type of a whole [`SessionRow`].
pub(crate) type SessionRowSql = (
    Text,
    Nullable<Text>,
    Text,
    Timestamp,
    Timestamp,
    Timestamp,
    BigInt,
    Nullable<Text>,
    Nullable<Text>,
    Nullable<Timestamp>,
    Nullable<BigInt>,
);

impl Columns {
    /// A select list that reads a [`SessionRow`] from a table with these columns
    /// (`NULL` for the ones it lacks). The same Rust type either way, so one
    /// query can be built for both.
    pub(crate) fn select(self) -> SqlLiteral<SessionRowSql> {
        diesel::dsl::sql(match self {
            Self::Full => {
                "id, user_id, data, expires_at, created_at, updated_at, version, \
                 ip_address, user_agent, last_seen_at, timeout_seconds"
            }
            Self::Base => {
                "id, user_id, data, expires_at, created_at, updated_at, version, \
                 NULL, NULL, NULL, NULL"
            }
        })
    }
}

/// Which rows [`Store::lock_rows`] selects.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rows<'a> {
    /// The row with this id, expired or not.
    One(&'a str),
    /// This id if it is a valid session of this user.
    OfUser { user_id: &'a str, id: &'a str },
    /// The user's valid sessions except `keep`.
    OthersOfUser { user_id: &'a str, keep: &'a str },
    /// Every row of the user, expired or not.
    AllOfUser(&'a str),
    /// Up to `limit` expired rows, earliest expiry first.
    Expired { limit: i64 },
    /// These ids (the bulk actions' batches).
    Ids(&'a [String]),
}

impl<'a> Rows<'a> {
    /// The user whose sessions these are, when they are one user's: whose
    /// lock the deleting transaction takes.
    pub(crate) fn user_id(self) -> Option<&'a str> {
        match self {
            Self::OfUser { user_id, .. } | Self::OthersOfUser { user_id, .. } => Some(user_id),
            Self::AllOfUser(user_id) => Some(user_id),
            Self::One(_) | Self::Expired { .. } | Self::Ids(_) => None,
        }
    }
}

/// The body of [`Store::lock_session`], with the backend's locking clause
/// (`$lock`) or none (SQLite). Two arms because the two select lists are
/// different types.
macro_rules! lock_session_body {
    ($conn:expr, $id:expr, $columns:expr $(, $lock:ident)?) => {{
        let row = sessions::table.find($id);
        match $columns {
            Columns::Full => row
                .select(SessionRow::as_select())
                $(.$lock())?
                .get_result($conn)
                .optional(),
            Columns::Base => row
                .select(Columns::Base.select())
                $(.$lock())?
                .get_result($conn)
                .optional(),
        }
    }};
}

/// The body of [`Store::lock_rows`], with the backend's locking clause (`$lock`)
/// or none (SQLite, whose `BEGIN IMMEDIATE` already holds the write lock).
/// Only [`Rows::OthersOfUser`] (the per-user cap) reads `last_seen_at`; the
/// others report `created_at` in its place, so they also work on a schema
/// without the devices columns.
macro_rules! lock_rows_body {
    ($conn:expr, $which:expr, $now:expr $(, $lock:ident)?) => {{
        let ids = sessions::table.select((
            sessions::id,
            sessions::created_at.nullable(),
            sessions::created_at,
        ));
        match $which {
            Rows::One(id) => ids.filter(sessions::id.eq(id))$(.$lock())?.load($conn),
            Rows::OfUser { user_id, id } => ids
                .filter(sessions::id.eq(id))
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::expires_at.gt($now))
                $(.$lock())?
                .load($conn),
            // Several rows: always locked in id order.
            Rows::OthersOfUser { user_id, keep } => sessions::table
                .select((sessions::id, sessions::last_seen_at, sessions::created_at))
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::id.ne(keep))
                .filter(sessions::expires_at.gt($now))
                .order(sessions::id.asc())
                $(.$lock())?
                .load($conn),
            Rows::AllOfUser(user_id) => ids
                .filter(sessions::user_id.eq(user_id))
                .order(sessions::id.asc())
                $(.$lock())?
                .load($conn),
            Rows::Expired { limit } => ids
                .filter(sessions::expires_at.le($now))
                .order(sessions::expires_at.asc())
                .limit(limit)
                $(.$lock())?
                .load($conn),
            Rows::Ids(wanted) => ids
                .filter(sessions::id.eq_any(wanted))
                .order(sessions::id.asc())
                $(.$lock())?
                .load($conn),
        }
    }};
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

    fn lock_session(&mut self, id: &str, columns: Columns) -> QueryResult<Option<SessionRow>> {
        // `BEGIN IMMEDIATE` already holds the database's write lock.
        lock_session_body!(self, id, columns)
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

    fn lock_rows(&mut self, which: Rows<'_>, now: NaiveDateTime) -> QueryResult<Vec<Locked>> {
        lock_rows_body!(self, which, now)
    }

    fn user_transaction<T>(
        &mut self,
        _user_id: Option<&str>,
        work: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        // `BEGIN IMMEDIATE`: one writer at a time already.
        self.immediate_transaction(work)
    }

    fn trim_events_batch(&mut self, before: NaiveDateTime, batch: i64) -> QueryResult<usize> {
        diesel::sql_query(
            "DELETE FROM session_events WHERE id IN \
             (SELECT id FROM session_events WHERE at < ? ORDER BY at LIMIT ?)",
        )
        .bind::<Timestamp, _>(before)
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

    fn lock_session(&mut self, id: &str, columns: Columns) -> QueryResult<Option<SessionRow>> {
        lock_session_body!(self, id, columns, for_update)
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

    fn try_purge_lock(&mut self) -> QueryResult<bool> {
        #[derive(QueryableByName)]
        struct Taken {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            taken: bool,
        }
        let taken: Taken = diesel::sql_query(format!(
            "SELECT pg_try_advisory_lock({PURGE_LOCK_SPACE}, hashtext(current_schema())) AS taken"
        ))
        .get_result(self)?;
        Ok(taken.taken)
    }

    fn release_purge_lock(&mut self) -> QueryResult<()> {
        #[derive(QueryableByName)]
        struct Released {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            released: bool,
        }
        let released: Released = diesel::sql_query(format!(
            "SELECT pg_advisory_unlock({PURGE_LOCK_SPACE}, hashtext(current_schema())) AS released"
        ))
        .get_result(self)?;
        if !released.released {
            // Behind a pooler that moves sessions between server connections
            // (PgBouncer in transaction mode) the lock may stay on another one.
            tracing::warn!(
                target: crate::trace::TARGET,
                "sessions: the purge lock was not held by this connection at release"
            );
        }
        Ok(())
    }

    fn lock_rows(&mut self, which: Rows<'_>, now: NaiveDateTime) -> QueryResult<Vec<Locked>> {
        lock_rows_body!(self, which, now, for_update)
    }

    fn user_transaction<T>(
        &mut self,
        user_id: Option<&str>,
        work: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        use diesel::connection::SimpleConnection;
        self.transaction(|conn| {
            if let Some(user_id) = user_id {
                // A key in its own namespace (the first argument), per user; a
                // hash collision only makes two users wait for each other.
                conn.batch_execute(&format!(
                    "SET LOCAL lock_timeout = '{USER_LOCK_WAIT_SECONDS}s'"
                ))?;
                diesel::sql_query("SELECT pg_advisory_xact_lock(1397969224, hashtext($1))")
                    .bind::<diesel::sql_types::Text, _>(user_id)
                    .execute(conn)
                    .map_err(|error| match &error {
                        diesel::result::Error::DatabaseError(_, info)
                            if info.message().contains("lock timeout") =>
                        {
                            crate::Error::UserLocked(USER_LOCK_WAIT_SECONDS)
                        }
                        _ => crate::Error::Query(error),
                    })?;
                conn.batch_execute("SET LOCAL lock_timeout TO DEFAULT")?;
            }
            work(conn)
        })
    }

    fn trim_events_batch(&mut self, before: NaiveDateTime, batch: i64) -> QueryResult<usize> {
        diesel::sql_query(
            "DELETE FROM session_events WHERE id IN \
             (SELECT id FROM session_events WHERE at < $1 ORDER BY at LIMIT $2)",
        )
        .bind::<Timestamp, _>(before)
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

    fn fresh_write_transaction<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        use diesel::connection::SimpleConnection;
        // Applies to the next transaction only.
        self.batch_execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")?;
        self.transaction(f)
    }

    fn lock_session(&mut self, id: &str, columns: Columns) -> QueryResult<Option<SessionRow>> {
        lock_session_body!(self, id, columns, for_update)
    }

    fn purge_batch(&mut self, now: NaiveDateTime, batch: i64) -> QueryResult<usize> {
        // MySQL refuses LIMIT inside IN (...) but has DELETE ... LIMIT.
        diesel::sql_query("DELETE FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?")
            .bind::<Timestamp, _>(now)
            .bind::<BigInt, _>(batch)
            .execute(self)
    }

    fn try_purge_lock(&mut self) -> QueryResult<bool> {
        let taken: MysqlLocked =
            diesel::sql_query(format!("SELECT GET_LOCK({MYSQL_PURGE_LOCK}, 0) AS locked"))
                .get_result(self)?;
        match taken.locked {
            Some(1) => Ok(true),
            Some(_) => Ok(false),
            // NULL: an error inside GET_LOCK (no database selected).
            None => Err(diesel::result::Error::QueryBuilderError(
                "GET_LOCK for the purge returned NULL".into(),
            )),
        }
    }

    fn release_purge_lock(&mut self) -> QueryResult<()> {
        let released: MysqlLocked =
            diesel::sql_query(format!("SELECT RELEASE_LOCK({MYSQL_PURGE_LOCK}) AS locked"))
                .get_result(self)?;
        if released.locked != Some(1) {
            tracing::warn!(
                target: crate::trace::TARGET,
                "sessions: the purge lock was not held by this connection at release"
            );
        }
        Ok(())
    }

    fn lock_rows(&mut self, which: Rows<'_>, now: NaiveDateTime) -> QueryResult<Vec<Locked>> {
        lock_rows_body!(self, which, now, for_update)
    }

    fn user_transaction<T>(
        &mut self,
        user_id: Option<&str>,
        work: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
            locked: Option<i32>,
        }
        let Some(user_id) = user_id else {
            return self.transaction(work);
        };
        // Lock names are server-wide and at most 64 characters: a hash of the
        // database's name and the user id.
        const NAME: &str = "LEFT(SHA2(CONCAT(DATABASE(), '/', ?), 256), 60)";
        let taken: Locked = diesel::sql_query(format!(
            "SELECT GET_LOCK({NAME}, {USER_LOCK_WAIT_SECONDS}) AS locked"
        ))
        .bind::<diesel::sql_types::Text, _>(user_id)
        .get_result(self)?;
        if taken.locked != Some(1) {
            return Err(crate::Error::UserLocked(USER_LOCK_WAIT_SECONDS));
        }
        let result = self.transaction(work);
        let released = diesel::sql_query(format!("SELECT RELEASE_LOCK({NAME}) AS locked"))
            .bind::<diesel::sql_types::Text, _>(user_id)
            .get_result::<Locked>(self);
        match (result, released) {
            (Err(error), _) => Err(error),
            // A release can only fail on a connection the server has lost,
            // which frees its locks; the transaction had committed.
            (Ok(value), _) => Ok(value),
        }
    }

    fn trim_events_batch(&mut self, before: NaiveDateTime, batch: i64) -> QueryResult<usize> {
        diesel::sql_query("DELETE FROM session_events WHERE at < ? ORDER BY at LIMIT ?")
            .bind::<Timestamp, _>(before)
            .bind::<BigInt, _>(batch)
            .execute(self)
    }
}
