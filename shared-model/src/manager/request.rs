//! What a web request does to its session: create, load, apply changes,
//! renew, sign out, cycle the id; with `get` (a load that also returns
//! expired rows, for admin tools) and `import` (inserting rows as `create`
//! does, for copies and tests).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as QueryError};

use crate::audit::{EventKind, NewEvent};
use crate::changes::UserIdChange;
use crate::clock::truncate_to_micros;
use crate::db::{with_conn, Pools};
use crate::schema::{session_events, sessions};
use crate::session::{NewSession, NewSessionRow, SessionRow};
use crate::statements::{Save, Touch};
use crate::store::{ids, Columns, Rows, Store};
use crate::trace::{self, op_span};
use crate::{ChangeSet, Client, Error, Result, Session, SessionId, SessionManager, SessionToken};

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

/// The row with the public id `$key` on `$conn`, as a
/// `Result<Option<SessionRow>>`. `get_result`, not `first`: a bound `LIMIT ?`
/// makes SQLite re-prepare the statement on every call.
macro_rules! select_row {
    ($self:ident, $conn:ident, $key:expr) => {
        match $self.columns {
            Columns::Full => Ok(sessions::table
                .find($key)
                .select(SessionRow::as_select())
                .get_result($conn)
                .optional()?),
            Columns::Base => Ok(sessions::table
                .find($key)
                .select(Columns::Base.select())
                .get_result($conn)
                .optional()?),
        }
    };
}

impl SessionManager {
    /// Inserts a new session (`version` 1, last seen now) under `token`'s public
    /// id. A session stored with a user is a login: it counts against the
    /// per-user cap and is audited as `login` (else `created`).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for oversized data, [`Error::IdTaken`] when a row
    /// already has that public id (a token used twice), database errors otherwise.
    pub fn create(&self, token: &SessionToken, new: NewSession<'_>) -> Result<Session> {
        let id = token.public_id();
        let capped = new.user_id.zip(self.max_sessions_per_user);
        let statement = match (capped.is_some(), self.audit.is_some()) {
            (false, _) => "INSERT",
            (true, false) => "SELECT+DELETE+INSERT",
            (true, true) => "SELECT+INSERT+DELETE+INSERT",
        };
        let span = op_span!("session.save", Some(&id), statement, op = "create");
        trace::run(span, || {
            let text = self.encode(&new.data)?;
            let now = self.now();
            let at = now.naive_utc();
            let expires_at = truncate_to_micros(new.expires_at);
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
        })
    }

    /// Inserts complete rows as given (ids, timestamps and versions included) in
    /// one transaction, 1,000 rows per statement. For seeding demo and benchmark
    /// databases and for restoring exported sessions; no row is checked against
    /// the clock, and nothing is audited.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] when a row's data is over the limit (nothing is
    /// inserted); a unique violation when an id exists; database errors.
    pub fn import(&self, rows: &[Session]) -> Result<usize> {
        let span = op_span!(
            "session.save",
            None,
            "INSERT",
            op = "import",
            rows = tracing::field::Empty,
        );
        trace::run_counted(span, || {
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
        })
    }

    /// The session, if it exists and has not expired.
    ///
    /// # Errors
    ///
    /// [`Error::CorruptData`] when the stored data is not a JSON object,
    /// [`Error::TooLarge`] when it is over the manager's limit (written around the
    /// manager); database errors otherwise.
    pub fn load(&self, id: &SessionId) -> Result<Option<Session>> {
        self.load_row(id, |key| self.get_row(key))
    }

    /// [`load`](Self::load) if it can run at once: on SQLite in WAL mode (every
    /// connection the pool opened reported WAL after this crate switched it),
    /// with at least two pooled connections idle right now (so
    /// it takes no connection a waiting writer is about to get). A WAL read
    /// waits for no writer: a primary-key lookup, usually from the page cache,
    /// in microseconds, so an async caller may run it in place instead of
    /// handing it to another thread. (It can still wait: for the disk on a
    /// cold page, and for the busy timeout while SQLite recovers the WAL of
    /// a crashed process, once.) `None` on PostgreSQL and MySQL (a network
    /// round trip), on an SQLite file left in its own journal mode
    /// ([`DatabaseBuilder::tune_sqlite`](crate::DatabaseBuilder::tune_sqlite)
    /// off, or read-only), in memory (one connection), and without idle
    /// connections to spare: call `load` where blocking is fine then.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn try_load_now(&self, id: &SessionId) -> Option<Result<Option<Session>>> {
        #[allow(unreachable_patterns)] // SQLite-only builds
        let pool = match self.db.pools() {
            Pools::Sqlite(pool) => pool,
            _ => return None,
        };
        if !self.db.reads_never_wait() {
            return None;
        }
        crate::db::try_run(pool, |conn| {
            self.load_row(id, |key| select_row!(self, conn, key))
        })
    }

    /// `load` with the row read by `fetch`.
    fn load_row(
        &self,
        id: &SessionId,
        fetch: impl FnOnce(&str) -> Result<Option<SessionRow>>,
    ) -> Result<Option<Session>> {
        let span = op_span!("session.load", Some(id), "SELECT", op = "load");
        trace::run(span, || {
            let now = self.now_naive();
            // The expiry is checked on the row, so the lookup is the same cached
            // primary-key statement `get` uses.
            match fetch(&id.to_string())? {
                Some(row) if row.expires_at <= now => Ok(None),
                Some(row) if row.data.len() > self.max_data_bytes => Err(Error::TooLarge {
                    size: row.data.len(),
                    limit: self.max_data_bytes,
                }),
                row => row.map(SessionRow::decode_or_error).transpose(),
            }
        })
    }

    fn get_row(&self, key: &str) -> Result<Option<SessionRow>> {
        with_conn!(self.db, conn => select_row!(self, conn, key))
    }

    /// The session whether expired or not (for the inspector).
    ///
    /// # Errors
    ///
    /// [`Error::CorruptData`] when the stored data is not a JSON object;
    /// database errors.
    pub fn get(&self, id: &SessionId) -> Result<Option<Session>> {
        let span = op_span!("session.load", Some(id), "SELECT", op = "get");
        trace::run(span, || {
            self.get_row(&id.to_string())?
                .map(SessionRow::decode_or_error)
                .transpose()
        })
    }

    /// Replays `changes` on the data as stored now (emptied first when the set
    /// is a [`login`](ChangeSet::login) and the row belongs to another user),
    /// records the set's client and idle timeout, marks the session seen now,
    /// moves `expires_at` to the given time (never earlier than stored: a clock
    /// that jumped back does not shorten a session; except that another user's
    /// login starts over), bumps `version` and `updated_at`, and returns the
    /// session as written (under its new public id when the set cycles it). One
    /// transaction that locks the row (`SELECT ... FOR UPDATE`; `BEGIN IMMEDIATE`
    /// on SQLite). A login also enforces the per-user cap and is audited as
    /// `login`; a new id without a login as `rotated`.
    ///
    /// A caller that read the session before changing it can save the lock
    /// and its round trips with [`apply_loaded`](Self::apply_loaded).
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
        self.apply_to(id, None, changes, expires_at)
    }

    /// [`apply`](Self::apply) for a caller that holds the session as it read
    /// it: `loaded`, as [`load`](Self::load) returned it at `loaded.version`.
    /// Its data may already carry `changes` (replaying a change set twice
    /// gives what replaying it once does); nothing else in it may differ from
    /// the row as read, since on the fast path it is what gets written.
    ///
    /// When the set neither signs in nor cycles the id and `loaded` has not
    /// expired, the merge is made on `loaded` and written by one `UPDATE ...
    /// WHERE id = ? AND version = ?`: no transaction, no row lock, one round
    /// trip. When that matches no row (another write came in between, or the
    /// session went), or the merge on `loaded` is over the size limit, this is
    /// [`apply`](Self::apply) on the row as stored now. Either way the result
    /// is the one `apply` would give: every write through this crate bumps
    /// `version`, so a matching version means the row, its expiry included,
    /// is `loaded`. (SQL of your own that changes a session row must bump
    /// `version` too, or a request that loaded the row before may write over
    /// the change.)
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply).
    pub fn apply_loaded(
        &self,
        loaded: Session,
        changes: &ChangeSet,
        expires_at: DateTime<Utc>,
    ) -> Result<Session> {
        let id = loaded.id;
        self.apply_to(&id, Some(loaded), changes, expires_at)
    }

    fn apply_to(
        &self,
        id: &SessionId,
        loaded: Option<Session>,
        changes: &ChangeSet,
        expires_at: DateTime<Utc>,
    ) -> Result<Session> {
        let new_id = changes.new_id();
        let login_user = match (changes.is_login(), changes.user_id()) {
            (true, UserIdChange::Set(user_id)) => Some(user_id),
            _ => None,
        };
        // A login judges the row under its lock, takes the per-user lock and
        // may be audited; a new id may be audited: those always lock.
        let loaded = loaded.filter(|_| new_id.is_none() && !changes.is_login());
        // A login that enforces the cap takes the user's lock before any row
        // lock, so two logins of one user cannot deadlock over each other's rows.
        let capped_user = login_user.filter(|_| self.max_sessions_per_user.is_some());
        let statement = match (
            loaded.is_some(),
            capped_user.is_some(),
            self.audit.is_some() && (login_user.is_some() || new_id.is_some()),
        ) {
            (true, ..) => "UPDATE",
            (false, false, false) => "SELECT+UPDATE",
            (false, false, true) => "SELECT+INSERT+UPDATE",
            (false, true, false) => "SELECT+DELETE+UPDATE",
            (false, true, true) => "SELECT+INSERT+DELETE+INSERT+UPDATE",
        };
        let span = op_span!("session.save", Some(id), statement, op = "apply");
        trace::run(span, || {
            let key = id.to_string();
            let now = self.now();
            let at = now.naive_utc();
            let expires_at = truncate_to_micros(expires_at);
            if let Some(mut session) = loaded.filter(|loaded| loaded.expires_at > now) {
                let expected_version = session.version;
                merge(&mut session, changes, None, expires_at, now);
                if let Ok(text) = self.encode(&session.data) {
                    let save = save_of(&key, &session, &text, expected_version);
                    if with_conn!(self.db, conn => Ok(save.execute(conn)?))? == 1 {
                        return Ok(session);
                    }
                }
                let span = tracing::Span::current();
                if !span.is_disabled() {
                    span.record("statement", "UPDATE+SELECT+UPDATE");
                }
            }
            let written = with_conn!(self.db, conn => conn.user_transaction(capped_user, |conn| {
                let row = conn
                    .lock_session(&key, Columns::Full)?
                    .filter(|row| row.expires_at > at)
                    .ok_or(Error::Gone(*id))?;
                let mut session = row.decode_or_error()?;
                let expected_version = session.version;
                merge(&mut session, changes, login_user, expires_at, now);
                let text = self.encode(&session.data)?;
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
                let save = save_of(&key, &session, &text, expected_version);
                let written = match new_key.as_deref() {
                    Some(new_key) => save.cycled_to(new_key).execute(conn)?,
                    None => save.execute(conn)?,
                };
                // The row is locked at this version; anything else is a bug
                // (or a writer that bypassed the lock), never a silent loss.
                if written != 1 {
                    return Err(Error::Gone(*id));
                }
                if let Some(new_id) = new_id {
                    session.id = new_id;
                }
                Ok(session)
            }));
            match (written, new_id) {
                (Err(error), Some(new_id)) => Err(taken_or(error, new_id)),
                (written, _) => written,
            }
        })
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
        let span = op_span!("session.renew", Some(id), "UPDATE", op = "touch");
        trace::run(span, || {
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
        })
    }

    /// Runs a renewal statement (the variant with or without the client).
    fn run_touch<const CLIENT: bool>(&self, touch: Touch<'_, CLIENT>) -> Result<usize> {
        with_conn!(self.db, conn => Ok(touch.execute(conn)?))
    }

    /// Deletes the session (expired or not) because its own request signed out
    /// (audited as `logout`). Returns whether a row was deleted.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn logout(&self, id: &SessionId) -> Result<bool> {
        let statement = trace::audited(self.audit.is_some(), "DELETE", "SELECT+INSERT+DELETE");
        let span = op_span!("session.logout", Some(id), statement, op = "logout");
        trace::run(span, || {
            let key = id.to_string();
            let deleted =
                self.remove(Rows::One(&key), EventKind::Logout, &serde_json::json!({}))?;
            Ok(deleted == 1)
        })
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
        let statement = trace::audited(self.audit.is_some(), "UPDATE", "UPDATE+INSERT");
        let span = op_span!("session.save", Some(id), statement, op = "cycle_id");
        trace::run(span, || {
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
                    crate::audit::record_rows!(conn, [&new_key], now, EventKind::Rotated, actor, detail)?;
                }
                Ok(moved)
            }))
            .map_err(|error| taken_or(error, new_id))?;
            if moved == 1 {
                Ok(new_id)
            } else {
                Err(Error::Gone(*id))
            }
        })
    }
}

/// What [`SessionManager::apply`] does to the row it read (`session`): the
/// data emptied first when `login_user` signs in over another user's row
/// (which also forgets its idle timeout and starts its age and expiry over),
/// `changes` replayed, the user, idle timeout and client recorded, seen now,
/// `version` bumped and the expiry moved to `expires_at` unless it is later.
fn merge(
    session: &mut Session,
    changes: &ChangeSet,
    login_user: Option<&str>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    if let Some(user_id) = login_user {
        if session
            .user_id
            .as_deref()
            .is_some_and(|stored| stored != user_id)
        {
            // Another user's session: the new one inherits nothing,
            // not its data, not a "remember me", not its age or expiry.
            session.data.clear();
            session.timeout_seconds = None;
            session.expires_at = expires_at;
            session.created_at = now;
        }
    }
    changes.replay(&mut session.data);
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
}

/// The `UPDATE` writing a merged `session` (data encoded as `text`) over the
/// row at `expected_version`.
fn save_of<'a>(
    key: &'a str,
    session: &'a Session,
    text: &'a str,
    expected_version: i64,
) -> Save<'a, false> {
    let at = session.updated_at.naive_utc();
    Save {
        id: key,
        new_id: "",
        user_id: session.user_id.as_deref(),
        data: text,
        expires_at: session.expires_at.naive_utc(),
        updated_at: at,
        created_at: session.created_at.naive_utc(),
        version: session.version,
        ip_address: session.ip_address.as_deref(),
        user_agent: session.user_agent.as_deref(),
        last_seen_at: Some(at),
        timeout_seconds: session.timeout_seconds,
        expected_version,
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
