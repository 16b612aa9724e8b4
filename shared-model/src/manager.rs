//! [`SessionManager`]: every operation on the `sessions` table.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::dsl::{count, count_star, sql};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as QueryError};
use diesel::sql_types::{Bool, Text};

use crate::audit::{record_rows, Actor, Event, EventKind, EventRow, NewEvent};
use crate::changes::UserIdChange;
use crate::clock::{truncate_to_micros, Clock, SystemClock};
use crate::db::with_conn;
use crate::query::{
    HourCount, ListedSession, Page, SessionFilter, Sort, SortKey, Stats, Status, UserCount,
};
use crate::schema::{session_events, sessions};
use crate::session::user_id_of_value;
use crate::session::{encoded_len, NewSession, NewSessionRow, SessionRow};
use crate::statements::{Save, Touch};
use crate::store::{ids, Columns, Rows, Store};
use crate::{
    ChangeSet, Client, Database, Device, Error, Result, Session, SessionData, SessionId,
    SessionToken, USER_ID_KEY,
};

/// Deletes the rows with these ids, first recording a `$kind` event for each
/// (with the row's user and client) when the manager audits. Evaluates to the
/// number deleted; `?` leaves the enclosing transaction on an error.
macro_rules! remove_ids {
    ($self:ident, $conn:ident, $ids:expr, $now:expr, $kind:expr, $detail:expr) => {{
        let ids: &[String] = $ids;
        if ids.is_empty() {
            0
        } else {
            if let Some(actor) = $self.audit {
                record_rows!($conn, ids, $now, $kind, actor, $detail.to_string())?;
            }
            diesel::delete(sessions::table.filter(sessions::id.eq_any(ids))).execute($conn)?
        }
    }};
}
pub(crate) use remove_ids;

/// Revokes `$user`'s least recently seen valid sessions (other than `$keep`)
/// so that, with `$keep`, at most `$cap` remain. Evaluates to how many went.
/// Runs inside a transaction that holds the user's lock
/// ([`Store::user_transaction`]); the candidates are read and locked in one query.
macro_rules! enforce_cap {
    ($self:ident, $conn:ident, $user:expr, $keep:expr, $cap:expr, $now:expr) => {{
        let mut others = $conn.lock_rows(Rows::OthersOfUser { user_id: $user, keep: $keep }, $now)?;
        let allowed = usize::try_from($cap).unwrap_or(usize::MAX).saturating_sub(1);
        if others.len() > allowed {
            // Most recently seen first; the tail goes.
            others.sort_by(|a, b| {
                b.1.unwrap_or(b.2)
                    .cmp(&a.1.unwrap_or(a.2))
                    .then_with(|| b.0.cmp(&a.0))
            });
            let ids = ids(others.split_off(allowed));
            let detail = serde_json::json!({"reason": "session_cap", "limit": $cap});
            remove_ids!($self, $conn, &ids, $now, EventKind::Revoked, detail)
        } else {
            0
        }
    }};
}

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
        if let Some(ip) = $filter
            .ip_prefix
            .as_deref()
            .map(str::trim)
            .filter(|ip| !ip.is_empty())
        {
            // A whole address matches itself only (10.0.0.1 is not 10.0.0.10),
            // in the canonical form the writer stored; anything else is a prefix.
            // Text ending in `:` (`2001:db8::`) is a prefix even though it parses.
            let whole = ip
                .parse::<std::net::IpAddr>()
                .ok()
                .filter(|_| !ip.ends_with(':'));
            query = match whole {
                Some(address) => {
                    query.filter(sessions::ip_address.eq(address.to_canonical().to_string()))
                }
                None => query.filter(
                    sessions::ip_address
                        .like(crate::query::like_prefix(ip))
                        .escape('\\'),
                ),
            };
        }
        query
    }};
}
pub(crate) use filtered;

/// Rows deleted per statement by the fairing's and the inspector's purges: small
/// enough that a writer waiting for the lock is not held up long.
pub const DEFAULT_PURGE_BATCH: u32 = 1_000;

/// The largest purge batch when auditing.
const MAX_AUDITED_BATCH: u32 = 10_000;

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
/// use shared_model::{ChangeSet, Database, NewSession, SessionManager, SessionToken};
///
/// let db = Database::connect(":memory:")?;
/// db.run_migrations()?;
/// let manager = SessionManager::new(db);
///
/// let token = SessionToken::generate()?; // the cookie's value
/// let expires = manager.now() + Duration::minutes(30);
/// let session = manager.create(&token, NewSession::expiring(expires))?;
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
    pub(crate) db: Database,
    clock: Arc<dyn Clock>,
    max_data_bytes: usize,
    pub(crate) audit: Option<Actor>,
    max_sessions_per_user: Option<u32>,
    pub(crate) columns: Columns,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("db", &self.db)
            .field("max_data_bytes", &self.max_data_bytes)
            .field("audit", &self.audit)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
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
            audit: None,
            max_sessions_per_user: None,
            columns: Columns::Full,
        }
    }

    /// Adapts the manager to a database whose shape
    /// [`Database::inspect_schema`] reported: without the devices columns,
    /// sessions are read with those fields `None`, data edits write only the
    /// first schema's columns, and nothing is audited (there is no
    /// `session_events` table, or no columns to copy into it). For tools that
    /// open databases they do not own (the inspector); an app runs the
    /// migrations instead.
    #[must_use]
    pub fn for_schema(mut self, report: &crate::SchemaReport) -> Self {
        self.columns = if report.device_columns {
            Columns::Full
        } else {
            Columns::Base
        };
        if !report.events_table || !report.device_columns {
            self.audit = None;
        }
        self
    }

    /// Whether sessions are read with the devices columns (see
    /// [`for_schema`](Self::for_schema)).
    #[must_use]
    pub fn has_device_columns(&self) -> bool {
        self.columns == Columns::Full
    }

    /// Writes a `session_events` row for every lifecycle change this manager
    /// makes (creation, login, id rotation, logout, revocations, purged
    /// expiries, admin edits), naming `actor`, in the same transaction as the
    /// change: an event exists if and only if its change committed. Data writes
    /// and renewals are not events. Off by default.
    #[must_use]
    pub fn with_audit(mut self, actor: Actor) -> Self {
        self.audit = Some(actor);
        self
    }

    /// [`with_audit`](Self::with_audit) for `actor`, or no auditing, as `audit` says.
    #[must_use]
    pub fn with_audit_if(self, audit: bool, actor: Actor) -> Self {
        if audit {
            self.with_audit(actor)
        } else {
            self
        }
    }

    /// The actor events are recorded as, when auditing.
    #[must_use]
    pub fn audit(&self) -> Option<Actor> {
        self.audit
    }

    /// Caps each user's valid sessions at `limit` (at least 1): a login that
    /// would exceed it revokes the user's least recently seen sessions, in the
    /// same transaction as the login. No cap by default.
    ///
    /// Logins of one user run one at a time while the cap is on, as do
    /// [`revoke`](Self::revoke), [`revoke_others`](Self::revoke_others) and
    /// [`delete_for_user`](Self::delete_for_user): SQLite's write lock, a
    /// transaction-scoped advisory lock per user on PostgreSQL, `GET_LOCK` on
    /// MySQL (waiting at most 10 s, then [`Error::UserLocked`]). The lock is
    /// taken before any row lock, so these cannot deadlock over one user's rows.
    #[must_use]
    pub fn with_max_sessions_per_user(mut self, limit: u32) -> Self {
        self.max_sessions_per_user = Some(limit.max(1));
        self
    }

    /// The per-user session cap, if any.
    #[must_use]
    pub fn max_sessions_per_user(&self) -> Option<u32> {
        self.max_sessions_per_user
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

    pub(crate) fn now_naive(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Inserts a new session (`version` 1, last seen now) under `token`'s public
    /// id. A session stored with a user is a login: it counts against the
    /// per-user cap and is audited as `login` (else `created`).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for oversized data, [`Error::IdTaken`] when a row
    /// already has that public id (a token used twice), database errors otherwise.
    pub fn create(&self, token: &SessionToken, new: NewSession<'_>) -> Result<Session> {
        let text = self.encode(&new.data)?;
        let now = self.now();
        let at = now.naive_utc();
        let expires_at = truncate_to_micros(new.expires_at);
        let id = token.public_id();
        let key = id.to_string();
        let (ip_address, user_agent) = (
            new.client.and_then(Client::ip_address),
            new.client.and_then(Client::user_agent),
        );
        let row = NewSessionRow {
            id: &key,
            user_id: new.user_id,
            data: &text,
            expires_at: expires_at.naive_utc(),
            created_at: at,
            updated_at: at,
            version: 1,
            ip_address,
            user_agent,
            last_seen_at: Some(at),
            timeout_seconds: new.timeout_seconds,
        };
        let capped = new.user_id.zip(self.max_sessions_per_user);
        let inserted = if self.audit.is_none() && capped.is_none() {
            with_conn!(self.db, conn => Ok(diesel::insert_into(sessions::table)
                .values(&row)
                .execute(conn)?))
        } else {
            with_conn!(self.db, conn => conn.user_transaction(capped.map(|(user_id, _)| user_id), |conn| {
                if let Some((user_id, cap)) = capped {
                    enforce_cap!(self, conn, user_id, &key, cap, at);
                }
                let inserted = diesel::insert_into(sessions::table).values(&row).execute(conn)?;
                if let Some(actor) = self.audit {
                    let kind = if new.user_id.is_some() { EventKind::Login } else { EventKind::Created };
                    diesel::insert_into(session_events::table)
                        .values(NewEvent {
                            at,
                            session_id: &key,
                            user_id: new.user_id,
                            kind: kind.as_str(),
                            actor: actor.as_str(),
                            ip_address,
                            user_agent,
                            detail: serde_json::json!({"keys": new.data.keys().collect::<Vec<_>>()}).to_string(),
                        })
                        .execute(conn)?;
                }
                Ok(inserted)
            }))
        };
        inserted.map_err(|error| taken_or(error, id))?;
        Ok(Session {
            id,
            user_id: new.user_id.map(str::to_owned),
            data: new.data,
            expires_at,
            created_at: now,
            updated_at: now,
            version: 1,
            ip_address: ip_address.map(str::to_owned),
            user_agent: user_agent.map(str::to_owned),
            last_seen_at: Some(now),
            timeout_seconds: new.timeout_seconds,
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
                ip_address: session.ip_address.as_deref(),
                user_agent: session.user_agent.as_deref(),
                last_seen_at: session
                    .last_seen_at
                    .map(|at| truncate_to_micros(at).naive_utc()),
                timeout_seconds: session.timeout_seconds,
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
        match self.columns {
            Columns::Full => with_conn!(self.db, conn => Ok(sessions::table
                .find(key)
                .select(SessionRow::as_select())
                .get_result(conn)
                .optional()?)),
            Columns::Base => with_conn!(self.db, conn => Ok(sessions::table
                .find(key)
                .select(Columns::Base.select())
                .get_result(conn)
                .optional()?)),
        }
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
    /// records the set's client and idle timeout, marks the session seen now,
    /// moves `expires_at` to the
    /// given time (never earlier than stored: a clock that jumped back does not
    /// shorten a session; except that another user's login starts over), bumps `version` and `updated_at`, and returns the
    /// session as written (under its new public id when the set cycles it). One
    /// transaction that locks the row (`SELECT ... FOR UPDATE`; `BEGIN IMMEDIATE`
    /// on SQLite). A login also enforces the per-user cap and is audited as
    /// `login`; a new id without a login as `rotated`.
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
        // A login that enforces the cap takes the user's lock before any row
        // lock, so two logins of one user cannot deadlock over each other's rows.
        let capped_user = match (changes.is_login(), changes.user_id()) {
            (true, UserIdChange::Set(user_id)) => self.max_sessions_per_user.map(|_| user_id),
            _ => None,
        };
        let written = with_conn!(self.db, conn => conn.user_transaction(capped_user, |conn| {
            let row = conn
                .lock_session(&key, Columns::Full)?
                .filter(|row| row.expires_at > now.naive_utc())
                .ok_or(Error::Gone(*id))?;
            let mut session = row.decode_or_error()?;
            if let (true, UserIdChange::Set(user_id)) = (changes.is_login(), changes.user_id()) {
                if session.user_id.as_deref().is_some_and(|stored| stored != user_id) {
                    // Another user's session: the new one inherits nothing,
                    // not its data, not a "remember me", not its age or expiry.
                    session.data.clear();
                    session.timeout_seconds = None;
                    session.expires_at = expires_at;
                    session.created_at = now;
                }
            }
            changes.replay(&mut session.data);
            let text = self.encode(&session.data)?;
            match changes.user_id() {
                UserIdChange::Unchanged => {}
                UserIdChange::Set(user_id) => session.user_id = Some(user_id.to_owned()),
                UserIdChange::Cleared => session.user_id = None,
            }
            if let Some(seconds) = changes.timeout_seconds() {
                session.timeout_seconds = Some(seconds);
            }
            if let Some(client) = changes.client() {
                if let Some(ip) = client.ip_address() {
                    session.ip_address = Some(ip.to_owned());
                }
                if let Some(agent) = client.user_agent() {
                    session.user_agent = Some(agent.to_owned());
                }
            }
            session.version += 1;
            session.updated_at = now;
            session.last_seen_at = Some(now);
            session.expires_at = session.expires_at.max(expires_at);
            let at = now.naive_utc();
            let login_user = match (changes.is_login(), changes.user_id()) {
                (true, UserIdChange::Set(user_id)) => Some(user_id),
                _ => None,
            };
            if let Some((user_id, cap)) = login_user.zip(self.max_sessions_per_user) {
                enforce_cap!(self, conn, user_id, &key, cap, at);
            }
            let kind = match (login_user, new_id) {
                (Some(_), _) => Some(EventKind::Login),
                (None, Some(_)) => Some(EventKind::Rotated),
                (None, None) => None,
            };
            let new_key = new_id.map(|new_id| new_id.to_string());
            if let Some((kind, actor)) = kind.zip(self.audit) {
                let detail = match &new_key {
                    Some(_) => serde_json::json!({"previous_id": key}),
                    None => serde_json::json!({}),
                };
                // Before the save: a save that fails (an id taken) rolls it back.
                diesel::insert_into(session_events::table)
                    .values(NewEvent {
                        at,
                        session_id: new_key.as_deref().unwrap_or(&key),
                        user_id: session.user_id.as_deref(),
                        kind: kind.as_str(),
                        actor: actor.as_str(),
                        ip_address: session.ip_address.as_deref(),
                        user_agent: session.user_agent.as_deref(),
                        detail: detail.to_string(),
                    })
                    .execute(conn)?;
            }
            let save = Save::<false> {
                id: &key,
                new_id: "",
                user_id: session.user_id.as_deref(),
                data: &text,
                expires_at: session.expires_at.naive_utc(),
                updated_at: at,
                created_at: session.created_at.naive_utc(),
                version: session.version,
                ip_address: session.ip_address.as_deref(),
                user_agent: session.user_agent.as_deref(),
                last_seen_at: Some(at),
                timeout_seconds: session.timeout_seconds,
            };
            match new_key.as_deref() {
                Some(new_key) => save.cycled_to(new_key).execute(conn)?,
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

    /// Renews `expires_at` and marks the session seen now, recording `client`
    /// when given (one UPDATE). Returns false, writing nothing, when the session
    /// is missing or already expired.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn touch(
        &self,
        id: &SessionId,
        expires_at: DateTime<Utc>,
        client: Option<&Client>,
    ) -> Result<bool> {
        let key = id.to_string();
        let now = self.now_naive();
        let expires_at = truncate_to_micros(expires_at).naive_utc();
        let updated = match client {
            Some(client) => self.run_touch(Touch::<true> {
                id: &key,
                expires_at,
                now,
                ip_address: client.ip_address(),
                user_agent: client.user_agent(),
            })?,
            None => self.run_touch(Touch::<false> {
                id: &key,
                expires_at,
                now,
                ip_address: None,
                user_agent: None,
            })?,
        };
        Ok(updated == 1)
    }

    /// Runs a renewal statement (the variant with or without the client).
    fn run_touch<const CLIENT: bool>(&self, touch: Touch<'_, CLIENT>) -> Result<usize> {
        with_conn!(self.db, conn => Ok(touch.execute(conn)?))
    }

    /// Deletes the session (expired or not) as an admin action (audited as
    /// `admin_delete`). Returns whether a row was deleted.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn delete(&self, id: &SessionId) -> Result<bool> {
        let key = id.to_string();
        let deleted = self.remove(
            Rows::One(&key),
            EventKind::AdminDelete,
            &serde_json::json!({}),
        )?;
        Ok(deleted == 1)
    }

    /// Deletes the session (expired or not) because its own request signed out
    /// (audited as `logout`). Returns whether a row was deleted.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn logout(&self, id: &SessionId) -> Result<bool> {
        let key = id.to_string();
        let deleted = self.remove(Rows::One(&key), EventKind::Logout, &serde_json::json!({}))?;
        Ok(deleted == 1)
    }

    /// Deletes the rows `which` names, recording a `kind` event for each when
    /// auditing, in one transaction. Returns how many were deleted.
    fn remove(&self, which: Rows<'_>, kind: EventKind, detail: &serde_json::Value) -> Result<u64> {
        let now = self.now_naive();
        let removed = match (which, self.audit) {
            // The common logout: one statement.
            (Rows::One(key), None) => with_conn!(self.db, conn => Ok(
                diesel::delete(sessions::table.find(key)).execute(conn)?
            ))?,
            _ => with_conn!(self.db, conn => conn.user_transaction(which.user_id(), |conn| {
                let ids = ids(conn.lock_rows(which, now)?);
                Ok(remove_ids!(self, conn, &ids, now, kind, detail))
            }))?,
        };
        Ok(removed as u64)
    }

    /// The valid sessions of `user_id`, most recently seen first, with
    /// `current` marked: what a "your devices" page lists. One query on the
    /// `user_id` index.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn devices(&self, user_id: &str, current: Option<&SessionId>) -> Result<Vec<Device>> {
        type DeviceRow = (
            String,
            NaiveDateTime,
            Option<NaiveDateTime>,
            NaiveDateTime,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let now = self.now_naive();
        let rows: Vec<DeviceRow> = with_conn!(self.db, conn => Ok(sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::expires_at.gt(now))
            .select((
                sessions::id,
                sessions::created_at,
                sessions::last_seen_at,
                sessions::expires_at,
                sessions::ip_address,
                sessions::user_agent,
                sessions::timeout_seconds,
            ))
            .load(conn)?))?;
        let mut devices: Vec<Device> = rows
            .into_iter()
            .filter_map(
                |(id, created_at, last_seen_at, expires_at, ip_address, user_agent, timeout)| {
                    let id: SessionId = id.parse().ok()?;
                    Some(Device {
                        current: current == Some(&id),
                        id,
                        ip_address,
                        user_agent,
                        created_at: created_at.and_utc(),
                        last_seen_at: last_seen_at.map(|at| at.and_utc()),
                        expires_at: expires_at.and_utc(),
                        remembered: timeout.is_some(),
                    })
                },
            )
            .collect();
        devices.sort_by(|a, b| {
            b.last_seen_at
                .unwrap_or(b.created_at)
                .cmp(&a.last_seen_at.unwrap_or(a.created_at))
                .then_with(|| a.id.to_string().cmp(&b.id.to_string()))
        });
        Ok(devices)
    }

    /// Signs out one of `user_id`'s sessions (audited as `revoked`, naming the
    /// session that asked, `by`). Returns false, deleting nothing, unless `id`
    /// is a valid session of that user: another user's session is "not found".
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn revoke(&self, user_id: &str, id: &SessionId, by: Option<&SessionId>) -> Result<bool> {
        let key = id.to_string();
        let detail = serde_json::json!({"reason": "device", "by": by.map(ToString::to_string)});
        let revoked = self.remove(
            Rows::OfUser { user_id, id: &key },
            EventKind::Revoked,
            &detail,
        )?;
        Ok(revoked == 1)
    }

    /// Signs out every valid session of `user_id` except `keep` ("sign out
    /// other devices", or after a password change), in one transaction. Audited
    /// as `revoked` for each and, when there were any, `revoked_others` on
    /// `keep`. Returns how many were signed out.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn revoke_others(&self, user_id: &str, keep: &SessionId) -> Result<u64> {
        let keep = keep.to_string();
        let now = self.now_naive();
        let detail = serde_json::json!({"reason": "others", "by": keep});
        let removed = with_conn!(self.db, conn => conn.user_transaction(Some(user_id), |conn| {
            let ids = ids(conn.lock_rows(Rows::OthersOfUser { user_id, keep: &keep }, now)?);
            let removed = remove_ids!(self, conn, &ids, now, EventKind::Revoked, detail);
            if let (Some(actor), 1..) = (self.audit, removed) {
                let count = serde_json::json!({"count": removed}).to_string();
                record_rows!(conn, [&keep], now, EventKind::RevokedOthers, actor, count)?;
            }
            Ok(removed)
        }))?;
        Ok(removed as u64)
    }

    /// Moves a valid session to `token`'s public id (same data, user and
    /// `created_at`) in one UPDATE: the old id stops existing at the same moment.
    /// Audited as `rotated`. Returns the new public id.
    ///
    /// # Errors
    ///
    /// [`Error::Gone`] when the session is missing or expired, [`Error::IdTaken`]
    /// when the new public id exists; database errors.
    pub fn cycle_id(&self, id: &SessionId, token: &SessionToken) -> Result<SessionId> {
        let key = id.to_string();
        let now = self.now_naive();
        let new_id = token.public_id();
        let new_key = new_id.to_string();
        let moved = with_conn!(self.db, conn => conn.write_transaction(|conn| {
            let moved = diesel::update(
                sessions::table
                    .find(&key)
                    .filter(sessions::expires_at.gt(now)),
            )
            .set((
                sessions::id.eq(&new_key),
                sessions::updated_at.eq(now),
                sessions::version.eq(sessions::version + 1),
            ))
            .execute(conn)?;
            if let (1, Some(actor)) = (moved, self.audit) {
                let detail = serde_json::json!({"previous_id": key}).to_string();
                record_rows!(conn, [&new_key], now, EventKind::Rotated, actor, detail)?;
            }
            Ok(moved)
        }))
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
    /// transaction that locks the row. Audited as `admin_edit`, naming the keys
    /// that changed (never their values).
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
            let row = conn.lock_session(&key, self.columns)?.ok_or(Error::Gone(*id))?;
            if row.version != expected_version {
                return Err(match row.decode() {
                    Ok(current) => Error::Conflict {
                        expected: expected_version,
                        current: Box::new(current),
                    },
                    Err(corrupt) => Error::CorruptData(Box::new(corrupt)),
                });
            }
            let stored = serde_json::from_str::<SessionData>(&row.data).unwrap_or_default();
            let stored_user_key = stored.get(USER_ID_KEY).cloned();
            let user_id = if stored_user_key.as_ref() == data.get(USER_ID_KEY) {
                row.user_id
            } else {
                data.get(USER_ID_KEY).and_then(user_id_of_value)
            };
            if let Some(actor) = self.audit {
                let mut keys: Vec<&String> = stored
                    .iter()
                    .filter(|(key, value)| data.get(key.as_str()) != Some(value))
                    .map(|(key, _)| key)
                    .chain(data.keys().filter(|key| !stored.contains_key(key.as_str())))
                    .collect();
                keys.sort();
                diesel::insert_into(session_events::table)
                    .values(NewEvent {
                        at: now.naive_utc(),
                        session_id: &key,
                        user_id: user_id.as_deref(),
                        kind: EventKind::AdminEdit.as_str(),
                        actor: actor.as_str(),
                        ip_address: row.ip_address.as_deref(),
                        user_agent: row.user_agent.as_deref(),
                        detail: serde_json::json!({"keys": keys}).to_string(),
                    })
                    .execute(conn)?;
            }
            let session = Session {
                id: *id,
                user_id,
                data,
                expires_at: row.expires_at.and_utc(),
                created_at: row.created_at.and_utc(),
                updated_at: now,
                version: row.version + 1,
                ip_address: row.ip_address,
                user_agent: row.user_agent,
                last_seen_at: row.last_seen_at.map(|at| at.and_utc()),
                timeout_seconds: row.timeout_seconds,
            };
            if self.columns == Columns::Base {
                diesel::update(sessions::table.find(&key))
                    .set((
                        sessions::user_id.eq(session.user_id.as_deref()),
                        sessions::data.eq(&text),
                        sessions::updated_at.eq(now.naive_utc()),
                        sessions::version.eq(session.version),
                    ))
                    .execute(conn)?;
                return Ok(session);
            }
            Save::<false> {
                id: &key,
                new_id: "",
                user_id: session.user_id.as_deref(),
                data: &text,
                expires_at: row.expires_at,
                updated_at: now.naive_utc(),
                created_at: row.created_at,
                version: session.version,
                ip_address: session.ip_address.as_deref(),
                user_agent: session.user_agent.as_deref(),
                last_seen_at: row.last_seen_at,
                timeout_seconds: session.timeout_seconds,
            }
            .execute(conn)?;
            Ok(session)
        }))
    }

    /// Sets `expires_at` (a time in the past expires the session now). An admin
    /// action: audited as `admin_expire` when the new time is not after now,
    /// else `admin_extend`.
    ///
    /// # Errors
    ///
    /// [`Error::Gone`] when the row does not exist; database errors.
    pub fn set_expiry(&self, id: &SessionId, expires_at: DateTime<Utc>) -> Result<()> {
        let key = id.to_string();
        let now = self.now_naive();
        let expires_at = truncate_to_micros(expires_at).naive_utc();
        let kind = if expires_at <= now {
            EventKind::AdminExpire
        } else {
            EventKind::AdminExtend
        };
        let updated = with_conn!(self.db, conn => conn.write_transaction(|conn| {
            let updated = diesel::update(sessions::table.find(&key))
                .set((
                    sessions::expires_at.eq(expires_at),
                    sessions::updated_at.eq(now),
                    sessions::version.eq(sessions::version + 1),
                ))
                .execute(conn)?;
            if let (1, Some(actor)) = (updated, self.audit) {
                let detail = serde_json::json!({"expires_at": expires_at.and_utc()}).to_string();
                record_rows!(conn, [&key], now, kind, actor, detail)?;
            }
            Ok(updated)
        }))?;
        if updated == 1 {
            Ok(())
        } else {
            Err(Error::Gone(*id))
        }
    }

    /// Deletes every session of `user_id`, expired or not ("log out
    /// everywhere"; audited as `revoked` for each). Returns how many.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn delete_for_user(&self, user_id: &str) -> Result<u64> {
        let detail = serde_json::json!({"reason": "everywhere"});
        self.remove(Rows::AllOfUser(user_id), EventKind::Revoked, &detail)
    }

    /// Deletes expired rows, `batch_size` per statement so other writers never wait
    /// long for the lock. When auditing, each is recorded as `expired` in its
    /// batch's transaction (batches of at most 10,000). Returns how many were
    /// deleted.
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
        // With audit on, a batch's ids are bound one per parameter (SQLite and
        // MySQL cap the number of parameters).
        let most = if self.audit.is_some() {
            MAX_AUDITED_BATCH
        } else {
            u32::MAX
        };
        let batch = i64::from(batch_size.clamp(1, most));
        let mut removed = 0u64;
        let detail = serde_json::json!({});
        loop {
            let deleted = if self.audit.is_none() {
                with_conn!(self.db, conn => Ok(conn.purge_batch(now, batch)?))?
            } else {
                // Each batch's events commit with its deletes.
                with_conn!(self.db, conn => conn.write_transaction(|conn| {
                    let ids = ids(conn.lock_rows(Rows::Expired { limit: batch }, now)?);
                    Ok(remove_ids!(self, conn, &ids, now, EventKind::Expired, detail))
                }))?
            };
            removed += deleted as u64;
            progress(removed);
            if (deleted as i64) < batch {
                return Ok(removed);
            }
        }
    }

    /// Deletes audit events older than `before`, `batch_size` per statement.
    /// Returns how many were deleted.
    ///
    /// # Errors
    ///
    /// Database errors (batches already deleted stay deleted).
    pub fn purge_events(&self, before: DateTime<Utc>, batch_size: u32) -> Result<u64> {
        let before = truncate_to_micros(before).naive_utc();
        let batch = i64::from(batch_size.max(1));
        let mut removed = 0u64;
        loop {
            let deleted = with_conn!(self.db, conn => Ok(conn.trim_events_batch(before, batch)?))?;
            removed += deleted as u64;
            if (deleted as i64) < batch {
                return Ok(removed);
            }
        }
    }

    /// The session's audit events, newest first, at most `limit`. A login or
    /// rotation moves a session to a new id; its event's `detail.previous_id`
    /// names the old one.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn events_of_session(&self, id: &SessionId, limit: u32) -> Result<Vec<Event>> {
        let key = id.to_string();
        let rows: Vec<EventRow> = with_conn!(self.db, conn => Ok(session_events::table
            .filter(session_events::session_id.eq(&key))
            .order(session_events::id.desc())
            .limit(i64::from(limit))
            .select(EventRow::as_select())
            .load(conn)?))?;
        Ok(rows.into_iter().map(EventRow::decode).collect())
    }

    /// The audit events of all of `user_id`'s sessions, newest first, at most
    /// `limit`.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn events_of_user(&self, user_id: &str, limit: u32) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> = with_conn!(self.db, conn => Ok(session_events::table
            .filter(session_events::user_id.eq(user_id))
            .order(session_events::id.desc())
            .limit(i64::from(limit))
            .select(EventRow::as_select())
            .load(conn)?))?;
        Ok(rows.into_iter().map(EventRow::decode).collect())
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
        self.check_filter(filter)?;
        let Some(prefix) = id_prefix_range(filter) else {
            return Ok(Vec::new());
        };
        let now = self.now_naive();
        let rows: Vec<SessionRow> = with_conn!(self.db, conn => {
            let mut query = sessions::table.select(self.columns.select()).into_boxed();
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
                    let id = cursor.id_text();
                    // The redundant first bound gives the index scan its start;
                    // with the `OR` alone PostgreSQL walks the index from the
                    // top on every page (quadratic over a whole table).
                    macro_rules! after {
                        ($column:expr) => {
                            if sort.descending {
                                query
                                    .filter($column.le(at))
                                    .filter($column.lt(at).or($column.eq(at).and(sessions::id.lt(id))))
                            } else {
                                query
                                    .filter($column.ge(at))
                                    .filter($column.gt(at).or($column.eq(at).and(sessions::id.gt(id))))
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
        self.check_filter(filter)?;
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

impl SessionManager {
    /// Refuses a filter on a column this database lacks.
    pub(crate) fn check_filter(&self, filter: &SessionFilter) -> Result<()> {
        if filter.ip_prefix.is_some() && self.columns == Columns::Base {
            return Err(Error::Schema {
                problems: vec![
                    "column ip_address is missing (an older schema): cannot filter by IP".into(),
                ],
            });
        }
        Ok(())
    }
}

pub(crate) fn position_fn<C: Store>(_: &C) -> &'static str {
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
pub(crate) fn id_prefix_range(filter: &SessionFilter) -> Option<Option<(String, String)>> {
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
