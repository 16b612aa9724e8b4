//! [`SessionManager`]: every operation on the `sessions` table.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::dsl::{count, count_star, sql};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as QueryError};
use diesel::sql_types::{Bool, Text};

use crate::changes::UserIdChange;
use crate::clock::{truncate_to_micros, Clock, SystemClock};
use crate::db::with_conn;
use crate::query::{
    HourCount, ListedSession, Page, SessionFilter, Sort, SortKey, Stats, Status, UserCount,
};
use crate::schema::sessions;
use crate::session::user_id_of_value;
use crate::session::{encoded_len, NewSessionRow, SessionRow};
use crate::statements::{Save, Touch};
use crate::store::Store;
use crate::{
    ChangeSet, Database, Error, Result, Session, SessionData, SessionId, SessionToken, USER_ID_KEY,
};

/// Adds the filter's conditions to a boxed query.
macro_rules! filtered {
    ($query:expr, $filter:expr, $prefix:expr, $now:expr, $position_fn:expr) => {{
        let mut query = $query;
        if let Some((from, to)) = &$prefix {
            query = query
                .filter(sessions::id.ge(from.clone()))
                .filter(sessions::id.lt(to.clone()));
        }
        if let Some(user_id) = &$filter.user_id {
            query = query.filter(sessions::user_id.eq(user_id.clone()));
        }
        match $filter.status {
            Status::All => {}
            Status::Active => query = query.filter(sessions::expires_at.gt($now)),
            Status::Expired => query = query.filter(sessions::expires_at.le($now)),
        }
        if let Some(needle) = $filter.data_contains.as_deref().filter(|n| !n.is_empty()) {
            query = query.filter(
                sql::<Bool>(&format!("{}(lower(data), ", $position_fn))
                    .bind::<Text, _>(needle.to_lowercase())
                    .sql(") > 0"),
            );
        }
        query
    }};
}

/// Rows deleted per statement by the fairing's and the inspector's purges: small
/// enough that a writer waiting for the lock is not held up long.
pub const DEFAULT_PURGE_BATCH: u32 = 1_000;

/// The default for [`SessionManager::with_max_data_bytes`]: 64 KiB.
pub const DEFAULT_MAX_DATA_BYTES: usize = 64 * 1024;

/// Reads and writes sessions. Cheap to clone; clones share the pool and clock.
///
/// Every method is synchronous and makes one round trip or one short transaction;
/// call it off an async executor (e.g. in `spawn_blocking`).
///
/// # Guarantees
///
/// - **Expiry**: a session is valid while `now < expires_at`, with `now` from the
///   manager's [`Clock`]. [`load`](Self::load), [`apply`](Self::apply),
///   [`touch`](Self::touch) and [`cycle_id`](Self::cycle_id) treat an expired row
///   exactly like a missing one, even before [`purge_expired`](Self::purge_expired)
///   removes it.
/// - **Merge**: [`apply`](Self::apply) replays a [`ChangeSet`] on the data as stored
///   now, under a row lock, so concurrent writers of different keys all win.
/// - **No resurrection**: writes never insert. Writing to a deleted, expired or
///   cycled-away session fails with [`Error::Gone`].
/// - **Tokens stay outside**: sessions are created and cycled from a
///   [`SessionToken`], but only its [`public_id`](SessionToken::public_id) is
///   stored; every other method takes the public id.
/// - **Versions**: every write adds one to `version`;
///   [`replace_data`](Self::replace_data) refuses to overwrite a version it did not see.
///
/// # Examples
///
/// ```
/// use chrono::Duration;
/// use serde_json::json;
/// use shared_model::{ChangeSet, Database, SessionData, SessionManager, SessionToken};
///
/// let db = Database::connect(":memory:")?;
/// db.run_migrations()?;
/// let manager = SessionManager::new(db);
///
/// let token = SessionToken::generate()?; // the cookie's value
/// let expires = manager.now() + Duration::minutes(30);
/// let session = manager.create(&token, SessionData::new(), None, expires)?;
/// assert_eq!(session.id, token.public_id());
///
/// let mut changes = ChangeSet::default();
/// changes.set("cart", json!(["apple"]));
/// manager.apply(&session.id, &changes, expires)?;
///
/// let loaded = manager.load(&session.id)?.expect("still valid");
/// assert_eq!(loaded.data["cart"], json!(["apple"]));
/// assert_eq!(loaded.version, 2);
/// # Ok::<(), shared_model::Error>(())
/// ```
#[derive(Clone)]
pub struct SessionManager {
    db: Database,
    clock: Arc<dyn Clock>,
    max_data_bytes: usize,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("db", &self.db)
            .field("max_data_bytes", &self.max_data_bytes)
            .finish_non_exhaustive()
    }
}

impl SessionManager {
    /// A manager on `db` with the system clock and a 64 KiB data limit.
    /// Run [`Database::run_migrations`] first on a fresh database.
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self {
            db,
            clock: Arc::new(SystemClock),
            max_data_bytes: DEFAULT_MAX_DATA_BYTES,
        }
    }

    /// Uses `clock` for "now" (expiry checks and the timestamps written).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Refuses data whose compact JSON encoding is larger than `bytes`
    /// ([`Error::TooLarge`]; nothing is truncated).
    #[must_use]
    pub fn with_max_data_bytes(mut self, bytes: usize) -> Self {
        self.max_data_bytes = bytes;
        self
    }

    /// The pool this manager uses.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The manager's current time.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The data size limit in bytes.
    #[must_use]
    pub fn max_data_bytes(&self) -> usize {
        self.max_data_bytes
    }

    /// Checks the data limit and returns the JSON text to store.
    fn encode(&self, data: &SessionData) -> Result<String> {
        let size = encoded_len(data);
        if size > self.max_data_bytes {
            return Err(Error::TooLarge {
                size,
                limit: self.max_data_bytes,
            });
        }
        serde_json::to_string(data).map_err(Error::InvalidJson)
    }

    fn now_naive(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Inserts a new session (`version` 1) under `token`'s public id.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for oversized data, [`Error::IdTaken`] when a row
    /// already has that public id (a token used twice), database errors otherwise.
    pub fn create(
        &self,
        token: &SessionToken,
        data: SessionData,
        user_id: Option<&str>,
        expires_at: DateTime<Utc>,
    ) -> Result<Session> {
        let text = self.encode(&data)?;
        let now = self.now();
        let expires_at = truncate_to_micros(expires_at);
        let id = token.public_id();
        let key = id.to_string();
        let row = NewSessionRow {
            id: &key,
            user_id,
            data: &text,
            expires_at: expires_at.naive_utc(),
            created_at: now.naive_utc(),
            updated_at: now.naive_utc(),
            version: 1,
        };
        with_conn!(self.db, conn => Ok(diesel::insert_into(sessions::table)
            .values(&row)
            .execute(conn)?))
        .map_err(|error| taken_or(error, id))?;
        Ok(Session {
            id,
            user_id: user_id.map(str::to_owned),
            data,
            expires_at,
            created_at: now,
            updated_at: now,
            version: 1,
        })
    }

    /// Inserts complete rows as given (ids, timestamps and versions included) in
    /// one transaction, 1,000 rows per statement. For seeding demo and benchmark
    /// databases and for restoring exported sessions; no row is checked against
    /// the clock.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] when a row's data is over the limit (nothing is
    /// inserted); a unique violation when an id exists; database errors.
    pub fn import(&self, rows: &[Session]) -> Result<usize> {
        let texts = rows
            .iter()
            .map(|session| self.encode(&session.data))
            .collect::<Result<Vec<_>>>()?;
        let keys: Vec<String> = rows.iter().map(|session| session.id.to_string()).collect();
        let new_rows: Vec<NewSessionRow<'_>> = rows
            .iter()
            .zip(&texts)
            .zip(&keys)
            .map(|((session, text), key)| NewSessionRow {
                id: key,
                user_id: session.user_id.as_deref(),
                data: text,
                expires_at: truncate_to_micros(session.expires_at).naive_utc(),
                created_at: truncate_to_micros(session.created_at).naive_utc(),
                updated_at: truncate_to_micros(session.updated_at).naive_utc(),
                version: session.version,
            })
            .collect();
        with_conn!(self.db, conn => conn.write_transaction(|conn| {
            let mut inserted = 0;
            for chunk in new_rows.chunks(1000) {
                inserted += diesel::insert_into(sessions::table).values(chunk).execute(conn)?;
            }
            Ok(inserted)
        }))
    }

    /// The session, if it exists and has not expired.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptData`] when the stored data is not a JSON object,
    /// [`Error::TooLarge`] when it is over the manager's limit (written around the
    /// manager); database errors otherwise.
    pub fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        let now = self.now_naive();
        // The expiry is checked on the row, so the lookup is the same cached
        // primary-key statement `get` uses.
        match self.get_row(&id.to_string())? {
            Some(row) if row.expires_at <= now => Ok(None),
            Some(row) if row.data.len() > self.max_data_bytes => Err(Error::TooLarge {
                size: row.data.len(),
                limit: self.max_data_bytes,
            }),
            row => row.map(SessionRow::decode_or_error).transpose(),
        }
    }

    fn get_row(&self, key: &str) -> Result<Option<SessionRow>> {
        // `get_result`, not `first`: a bound `LIMIT ?` makes SQLite re-prepare the
        // statement on every call.
        with_conn!(self.db, conn => Ok(sessions::table
            .find(key)
            .select(SessionRow::as_select())
            .get_result(conn)
            .optional()?))
    }

    /// The session whether expired or not (for the inspector).
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        self.get_row(&id.to_string())?
            .map(SessionRow::decode_or_error)
            .transpose()
    }

    /// Replays `changes` on the data as stored now (emptied first when the set
    /// is a [`login`](ChangeSet::login) and the row belongs to another user),
    /// moves `expires_at` to the
    /// given time (never earlier than stored: a clock that jumped back does not
    /// shorten a session), bumps `version` and `updated_at`, and returns the
    /// session as written (under its new public id when the set cycles it). One
    /// transaction that locks the row (`SELECT ... FOR UPDATE`; `BEGIN IMMEDIATE`
    /// on SQLite).
    ///
    /// # Errors
    ///
    /// [`Error::Gone`] when the row was deleted, expired or cycled away meanwhile:
    /// nothing is written, nothing re-created. [`Error::TooLarge`] when the merged
    /// data is over the limit, [`Error::CorruptData`] when the stored data cannot
    /// be parsed to merge into, [`Error::IdTaken`] when the new public id exists;
    /// database errors otherwise.
    pub fn apply(
        &self,
        id: &SessionId,
        changes: &ChangeSet,
        expires_at: DateTime<Utc>,
    ) -> Result<Session> {
        let key = id.to_string();
        let now = self.now();
        let expires_at = truncate_to_micros(expires_at);
        let new_id = changes.new_id();
        let written = with_conn!(self.db, conn => conn.write_transaction(|conn| {
            let row = conn
                .lock_session(&key)?
                .filter(|row| row.expires_at > now.naive_utc())
                .ok_or(Error::Gone(*id))?;
            let mut session = row.decode_or_error()?;
            if let (true, UserIdChange::Set(user_id)) = (changes.is_login(), changes.user_id()) {
                if session.user_id.as_deref().is_some_and(|stored| stored != user_id) {
                    // Another user's session: the new one inherits nothing.
                    session.data.clear();
                }
            }
            changes.replay(&mut session.data);
            let text = self.encode(&session.data)?;
            match changes.user_id() {
                UserIdChange::Unchanged => {}
                UserIdChange::Set(user_id) => session.user_id = Some(user_id.to_owned()),
                UserIdChange::Cleared => session.user_id = None,
            }
            session.version += 1;
            session.updated_at = now;
            session.expires_at = session.expires_at.max(expires_at);
            let save = Save::<false> {
                id: &key,
                new_id: "",
                user_id: session.user_id.as_deref(),
                data: &text,
                expires_at: session.expires_at.naive_utc(),
                updated_at: now.naive_utc(),
                version: session.version,
            };
            match new_id {
                Some(new_id) => save.cycled_to(&new_id.to_string()).execute(conn)?,
                None => save.execute(conn)?,
            };
            if let Some(new_id) = new_id {
                session.id = new_id;
            }
            Ok(session)
        }));
        match (written, new_id) {
            (Err(error), Some(new_id)) => Err(taken_or(error, new_id)),
            (written, _) => written,
        }
    }

    /// Renews `expires_at` (one UPDATE). Returns false, writing nothing, when the
    /// session is missing or already expired.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn touch(&self, id: &SessionId, expires_at: DateTime<Utc>) -> Result<bool> {
        let key = id.to_string();
        let now = self.now_naive();
        let expires_at = truncate_to_micros(expires_at).naive_utc();
        let touch = Touch {
            id: &key,
            expires_at,
            now,
        };
        let updated = with_conn!(self.db, conn => Ok(touch.execute(conn)?))?;
        Ok(updated == 1)
    }

    /// Deletes the session (expired or not). Returns whether a row was deleted.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn delete(&self, id: &SessionId) -> Result<bool> {
        let key = id.to_string();
        let deleted = with_conn!(self.db, conn => Ok(diesel::delete(sessions::table.find(&key)).execute(conn)?))?;
        Ok(deleted == 1)
    }

    /// Moves a valid session to `token`'s public id (same data, user and
    /// `created_at`) in one UPDATE: the old id stops existing at the same moment.
    /// Returns the new public id.
    ///
    /// # Errors
    ///
    /// [`Error::Gone`] when the session is missing or expired, [`Error::IdTaken`]
    /// when the new public id exists; database errors.
    pub fn cycle_id(&self, id: &SessionId, token: &SessionToken) -> Result<SessionId> {
        let key = id.to_string();
        let now = self.now_naive();
        let new_id = token.public_id();
        let moved = with_conn!(self.db, conn => Ok(diesel::update(
            sessions::table
                .find(&key)
                .filter(sessions::expires_at.gt(now)),
        )
        .set((
            sessions::id.eq(new_id.to_string()),
            sessions::updated_at.eq(now),
            sessions::version.eq(sessions::version + 1),
        ))
        .execute(conn)?))
        .map_err(|error| taken_or(error, new_id))?;
        if moved == 1 {
            Ok(new_id)
        } else {
            Err(Error::Gone(*id))
        }
    }

    /// Overwrites the data of a session (expired or not) if its version is still
    /// `expected_version`, and returns the row as written. When the edit adds,
    /// changes or removes the `user_id` key, the `user_id` column follows it (the
    /// rule the fairing uses); otherwise the column is left alone. One
    /// transaction that locks the row.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] with the current row when someone wrote in between;
    /// [`Error::Gone`] when the row no longer exists; [`Error::TooLarge`];
    /// [`Error::CorruptData`] when the version matched nothing because the
    /// current row cannot be decoded.
    pub fn replace_data(
        &self,
        id: &SessionId,
        data: SessionData,
        expected_version: i64,
    ) -> Result<Session> {
        let text = self.encode(&data)?;
        let key = id.to_string();
        let now = self.now();
        with_conn!(self.db, conn => conn.write_transaction(|conn| {
            let row = conn.lock_session(&key)?.ok_or(Error::Gone(*id))?;
            if row.version != expected_version {
                return Err(match row.decode() {
                    Ok(current) => Error::Conflict {
                        expected: expected_version,
                        current: Box::new(current),
                    },
                    Err(corrupt) => Error::CorruptData(Box::new(corrupt)),
                });
            }
            let stored_user_key = serde_json::from_str::<SessionData>(&row.data)
                .ok()
                .and_then(|mut stored| stored.remove(USER_ID_KEY));
            let user_id = if stored_user_key.as_ref() == data.get(USER_ID_KEY) {
                row.user_id
            } else {
                data.get(USER_ID_KEY).and_then(user_id_of_value)
            };
            let session = Session {
                id: *id,
                user_id,
                data,
                expires_at: row.expires_at.and_utc(),
                created_at: row.created_at.and_utc(),
                updated_at: now,
                version: row.version + 1,
            };
            Save::<false> {
                id: &key,
                new_id: "",
                user_id: session.user_id.as_deref(),
                data: &text,
                expires_at: row.expires_at,
                updated_at: now.naive_utc(),
                version: session.version,
            }
            .execute(conn)?;
            Ok(session)
        }))
    }

    /// Sets `expires_at` (a time in the past expires the session now).
    ///
    /// # Errors
    ///
    /// [`Error::Gone`] when the row does not exist; database errors.
    pub fn set_expiry(&self, id: &SessionId, expires_at: DateTime<Utc>) -> Result<()> {
        let key = id.to_string();
        let now = self.now_naive();
        let expires_at = truncate_to_micros(expires_at).naive_utc();
        let updated = with_conn!(self.db, conn => Ok(diesel::update(sessions::table.find(&key))
            .set((
                sessions::expires_at.eq(expires_at),
                sessions::updated_at.eq(now),
                sessions::version.eq(sessions::version + 1),
            ))
            .execute(conn)?))?;
        if updated == 1 {
            Ok(())
        } else {
            Err(Error::Gone(*id))
        }
    }

    /// Deletes every session of `user_id` (logout everywhere). Returns how many.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn delete_for_user(&self, user_id: &str) -> Result<u64> {
        let deleted = with_conn!(self.db, conn => Ok(diesel::delete(
            sessions::table.filter(sessions::user_id.eq(user_id)),
        )
        .execute(conn)?))?;
        Ok(deleted as u64)
    }

    /// Deletes expired rows, `batch_size` per statement so other writers never wait
    /// long for the lock. Returns how many were deleted.
    ///
    /// # Errors
    ///
    /// Database errors (rows deleted by earlier batches stay deleted).
    pub fn purge_expired(&self, batch_size: u32) -> Result<u64> {
        self.purge_expired_with(batch_size, |_| ())
    }

    /// [`purge_expired`](Self::purge_expired), calling `progress` with the running
    /// total after each batch.
    ///
    /// # Errors
    ///
    /// As [`purge_expired`](Self::purge_expired).
    pub fn purge_expired_with(
        &self,
        batch_size: u32,
        mut progress: impl FnMut(u64),
    ) -> Result<u64> {
        let now = self.now_naive();
        let batch = i64::from(batch_size.max(1));
        let mut removed = 0u64;
        loop {
            let deleted = with_conn!(self.db, conn => Ok(conn.purge_batch(now, batch)?))?;
            removed += deleted as u64;
            progress(removed);
            if (deleted as i64) < batch {
                return Ok(removed);
            }
        }
    }

    /// One page of sessions matching `filter`, in `sort` order. Rows whose data
    /// cannot be decoded come back as [`CorruptSession`](crate::CorruptSession)s
    /// instead of failing the page.
    ///
    /// Filters by id prefix, user and status and sorts by `created_at` or
    /// `expires_at` use indexes; `data_contains` and sorting by `updated_at` scan
    /// (`updated_at` changes on every write, so it is not indexed).
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn list(
        &self,
        filter: &SessionFilter,
        sort: Sort,
        page: Page,
    ) -> Result<Vec<ListedSession>> {
        let Some(prefix) = id_prefix_range(filter) else {
            return Ok(Vec::new());
        };
        let now = self.now_naive();
        let rows: Vec<SessionRow> = with_conn!(self.db, conn => {
            let mut query = sessions::table.select(SessionRow::as_select()).into_boxed();
            query = filtered!(query, filter, prefix, now, position_fn(conn));
            query = match (sort.key, sort.descending) {
                (SortKey::CreatedAt, false) => query.order((sessions::created_at.asc(), sessions::id.asc())),
                (SortKey::CreatedAt, true) => query.order((sessions::created_at.desc(), sessions::id.desc())),
                (SortKey::UpdatedAt, false) => query.order((sessions::updated_at.asc(), sessions::id.asc())),
                (SortKey::UpdatedAt, true) => query.order((sessions::updated_at.desc(), sessions::id.desc())),
                (SortKey::ExpiresAt, false) => query.order((sessions::expires_at.asc(), sessions::id.asc())),
                (SortKey::ExpiresAt, true) => query.order((sessions::expires_at.desc(), sessions::id.desc())),
            };
            query = match page {
                Page::Offset { offset, limit } => query
                    .offset(i64::try_from(offset).unwrap_or(i64::MAX))
                    .limit(i64::from(limit)),
                Page::After { cursor, limit } => {
                    let at = cursor.at.naive_utc();
                    let id = cursor.id.to_string();
                    macro_rules! after {
                        ($column:expr) => {
                            if sort.descending {
                                query.filter($column.lt(at).or($column.eq(at).and(sessions::id.lt(id))))
                            } else {
                                query.filter($column.gt(at).or($column.eq(at).and(sessions::id.gt(id))))
                            }
                        };
                    }
                    let query = match sort.key {
                        SortKey::CreatedAt => after!(sessions::created_at),
                        SortKey::UpdatedAt => after!(sessions::updated_at),
                        SortKey::ExpiresAt => after!(sessions::expires_at),
                    };
                    query.limit(i64::from(limit))
                }
            };
            Ok(query.load(conn)?)
        })?;
        Ok(rows.into_iter().map(SessionRow::decode).collect())
    }

    /// How many sessions match `filter`.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn count(&self, filter: &SessionFilter) -> Result<u64> {
        let Some(prefix) = id_prefix_range(filter) else {
            return Ok(0);
        };
        let now = self.now_naive();
        let count: i64 = with_conn!(self.db, conn => {
            let mut query = sessions::table.select(count_star()).into_boxed();
            query = filtered!(query, filter, prefix, now, position_fn(conn));
            Ok(query.first(conn)?)
        })?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// Totals, sessions created per hour over the last `hours` hours, sessions
    /// expiring per hour over the next `hours` hours, and the `top_users` users
    /// with the most sessions.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn stats(&self, hours: u32, top_users: u32) -> Result<Stats> {
        let now = self.now();
        let window = Duration::hours(i64::from(hours));
        let (start, end) = ((now - window).naive_utc(), (now + window).naive_utc());
        let now = now.naive_utc();
        let (total, active, distinct_users, created, expiring, users) = with_conn!(self.db, conn => {
            let total: i64 = sessions::table.select(count_star()).first(conn)?;
            let active: i64 = sessions::table
                .filter(sessions::expires_at.gt(now))
                .select(count_star())
                .first(conn)?;
            let distinct_users: i64 = sessions::table
                .select(count(sessions::user_id).aggregate_distinct())
                .first(conn)?;
            let created_bucket = sql::<Text>(&hour_bucket(conn, "created_at"));
            let created: Vec<(String, i64)> = sessions::table
                .filter(sessions::created_at.ge(start))
                .filter(sessions::created_at.le(now))
                .group_by(created_bucket.clone())
                .select((created_bucket, count_star()))
                .load(conn)?;
            let expiring_bucket = sql::<Text>(&hour_bucket(conn, "expires_at"));
            let expiring: Vec<(String, i64)> = sessions::table
                .filter(sessions::expires_at.gt(now))
                .filter(sessions::expires_at.le(end))
                .group_by(expiring_bucket.clone())
                .select((expiring_bucket, count_star()))
                .load(conn)?;
            let users: Vec<(Option<String>, i64)> = sessions::table
                .filter(sessions::user_id.is_not_null())
                .group_by(sessions::user_id)
                .select((sessions::user_id, count_star()))
                .order((count_star().desc(), sessions::user_id.asc()))
                .limit(i64::from(top_users))
                .load(conn)?;
            Ok((total, active, distinct_users, created, expiring, users))
        })?;
        let as_u64 = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(Stats {
            total: as_u64(total),
            active: as_u64(active),
            expired: as_u64(total - active),
            distinct_users: as_u64(distinct_users),
            created_per_hour: hour_counts(created),
            expiring_per_hour: hour_counts(expiring),
            top_users: users
                .into_iter()
                .filter_map(|(user_id, n)| {
                    Some(UserCount {
                        user_id: user_id?,
                        sessions: as_u64(n),
                    })
                })
                .collect(),
        })
    }
}

/// [`Error::IdTaken`] for a unique violation on the primary key, `error` otherwise.
fn taken_or(error: Error, id: SessionId) -> Error {
    if is_unique_violation(&error) {
        Error::IdTaken(id)
    } else {
        error
    }
}

fn is_unique_violation(error: &Error) -> bool {
    matches!(
        error,
        Error::Query(QueryError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            _
        ))
    )
}

fn position_fn<C: Store>(_: &C) -> &'static str {
    C::POSITION_FN
}

fn hour_bucket<C: Store>(_: &C, column: &str) -> String {
    C::hour_bucket(column)
}

fn hour_counts(buckets: Vec<(String, i64)>) -> Vec<HourCount> {
    let mut counts: Vec<HourCount> = buckets
        .into_iter()
        .filter_map(|(bucket, n)| {
            let hour =
                NaiveDateTime::parse_from_str(&format!("{bucket}:00:00"), "%Y-%m-%d %H:%M:%S")
                    .ok()?;
            Some(HourCount {
                hour: hour.and_utc(),
                sessions: u64::try_from(n).unwrap_or_default(),
            })
        })
        .collect();
    counts.sort_by_key(|count| count.hour);
    counts
}

/// The `[from, to)` id range for the filter's id prefix: `Ok(Some(None))` for no
/// prefix filter, `Ok(None)` when the prefix cannot match any id.
fn id_prefix_range(filter: &SessionFilter) -> Option<Option<(String, String)>> {
    let Some(prefix) = filter
        .id_prefix
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    else {
        return Some(None);
    };
    let prefix = prefix.to_ascii_lowercase();
    let valid = prefix.len() <= 36 && prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !valid {
        return None;
    }
    // Ids only contain 0-9, a-f and '-', all of which sort before 'g'.
    let upper = format!("{prefix}g");
    Some(Some((prefix, upper)))
}
