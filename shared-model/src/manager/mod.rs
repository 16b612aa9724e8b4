//! [`SessionManager`]: the type, its settings, and what its jobs share (the
//! filter and delete macros). The operations are in one file per job:
//! `request` (what a web request does), `users` (a user's devices), `report`
//! (listing, counting, statistics, the audit log) and `purge`; admin edits
//! are in the crate's `admin` module.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::audit::{Actor, EventKind};
use crate::clock::{Clock, SystemClock};
use crate::db::with_conn;
use crate::query::SessionFilter;
use crate::schema::sessions;
use crate::session::encoded_len;
use crate::store::{ids, Columns, Rows, Store};
use crate::{Database, Error, Result, SessionData};

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
                $crate::audit::record_rows!($conn, ids, $now, $kind, actor, $detail.to_string())?;
            }
            diesel::delete(sessions::table.filter(sessions::id.eq_any(ids))).execute($conn)?
        }
    }};
}
pub(crate) use remove_ids;

/// Adds the filter's conditions to a boxed query; `$range` is the filter's
/// [`IdRange`], `$position_fn` the backend's [`position_fn`].
macro_rules! filtered {
    ($query:expr, $filter:expr, $range:expr, $now:expr, $position_fn:expr) => {{
        let mut query = $query;
        if let $crate::manager::IdRange::Between { from, to } = &$range {
            query = query
                .filter(sessions::id.ge(from.clone()))
                .filter(sessions::id.lt(to.clone()));
        }
        if let Some(user_id) = &$filter.user_id {
            query = query.filter(sessions::user_id.eq(user_id.clone()));
        }
        match $filter.status {
            $crate::query::Status::All => {}
            $crate::query::Status::Active => query = query.filter(sessions::expires_at.gt($now)),
            $crate::query::Status::Expired => query = query.filter(sessions::expires_at.le($now)),
        }
        if let Some(needle) = $filter.data_contains.as_deref().filter(|n| !n.is_empty()) {
            query = query.filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
                    "{}(lower(data), ",
                    $position_fn
                ))
                .bind::<diesel::sql_types::Text, _>(needle.to_lowercase())
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
                        .like($crate::query::like_prefix(ip))
                        .escape('\\'),
                ),
            };
        }
        query
    }};
}
pub(crate) use filtered;

mod purge;
mod report;
mod request;
mod users;

/// Rows deleted per statement by the fairing's and the inspector's purges (and
/// per transaction by the inspector CLI's bulk actions): small enough that a
/// writer waiting for the lock is not held up long.
pub const DEFAULT_PURGE_BATCH: u32 = 1_000;

/// The default for [`SessionManager::with_max_data_bytes`]: 64 KiB.
pub const DEFAULT_MAX_DATA_BYTES: usize = 64 * 1024;

/// Reads and writes sessions. Cheap to clone; clones share the pool and clock.
///
/// The methods that use the database are synchronous and block until it
/// answers; call them off an async executor (e.g. in `spawn_blocking`). Each
/// makes one statement or one transaction, except the purges and the bulk
/// actions ([`expire_matching`](Self::expire_matching),
/// [`delete_matching`](Self::delete_matching)), which make one per batch, and
/// [`stats`](Self::stats), which makes six reads outside a transaction. On
/// MySQL the calls that take the per-user lock (see
/// [`with_max_sessions_per_user`](Self::with_max_sessions_per_user)) run
/// `GET_LOCK` before their transaction and `RELEASE_LOCK` after it. After a
/// failure, the connection is pinged (`SELECT 1`) before it goes back to the
/// pool.
///
/// The request path, the devices methods, the purges and the admin edits each
/// run in a DEBUG `tracing` span (`session.load`, `session.save`,
/// `session.renew`, `session.logout`, `session.purge`, `session.admin`) that
/// names the session by [`SessionId::short`](crate::SessionId::short), never
/// by its token, and ends with one event giving `elapsed_us` and `outcome`.
/// Listing, counting, statistics and reading the audit log have no span.
///
/// # Guarantees
///
/// - **Expiry**: a session is valid while `now < expires_at`, with `now` from the
///   manager's [`Clock`]. [`load`](Self::load), [`apply`](Self::apply),
///   [`touch`](Self::touch) and [`cycle_id`](Self::cycle_id) treat an expired row
///   exactly like a missing one, even before [`purge_expired`](Self::purge_expired)
///   removes it.
/// - **Merge**: [`apply`](Self::apply) replays a [`ChangeSet`](crate::ChangeSet)
///   on the data as stored now, under a row lock, so concurrent writers of
///   different keys all win.
/// - **No resurrection**: only [`create`](Self::create) and
///   [`import`](Self::import) insert. [`apply`](Self::apply) and
///   [`cycle_id`](Self::cycle_id) on a deleted, expired or cycled-away session
///   fail with [`Error::Gone`] and [`touch`](Self::touch) returns false, writing
///   nothing. Admin edits ([`replace_data`](Self::replace_data),
///   [`set_expiry`](Self::set_expiry), [`change_expiry`](Self::change_expiry))
///   also change expired rows, and fail with [`Error::Gone`] on deleted ones.
/// - **Tokens stay outside**: sessions are created and cycled from a
///   [`SessionToken`](crate::SessionToken), but only its
///   [`public_id`](crate::SessionToken::public_id) is stored; every other method
///   names sessions by their public id.
/// - **Versions**: every write to a session adds one to `version`;
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

    pub(crate) fn now_naive(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Checks the data limit and returns the JSON text to store.
    pub(crate) fn encode(&self, data: &SessionData) -> Result<String> {
        let size = encoded_len(data);
        if size > self.max_data_bytes {
            return Err(Error::TooLarge {
                size,
                limit: self.max_data_bytes,
            });
        }
        serde_json::to_string(data).map_err(Error::InvalidJson)
    }

    /// Deletes the rows `which` names, recording a `kind` event for each when
    /// auditing: one statement for a single row without auditing, else one
    /// transaction. Returns how many were deleted.
    pub(crate) fn remove(
        &self,
        which: Rows<'_>,
        kind: EventKind,
        detail: &serde_json::Value,
    ) -> Result<u64> {
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

/// Which ids a filter's id prefix lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdRange {
    /// No prefix given: every id.
    Any,
    /// The ids in `[from, to)`: those starting with the prefix.
    Between { from: String, to: String },
    /// A prefix no id can start with (too long, or not hex and `-`).
    Nothing,
}

/// The ids `filter`'s id prefix lets through.
pub(crate) fn id_prefix_range(filter: &SessionFilter) -> IdRange {
    let Some(prefix) = filter
        .id_prefix
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    else {
        return IdRange::Any;
    };
    let prefix = prefix.to_ascii_lowercase();
    let valid = prefix.len() <= 36 && prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !valid {
        return IdRange::Nothing;
    }
    // Ids only contain 0-9, a-f and '-', all of which sort before 'g'.
    let to = format!("{prefix}g");
    IdRange::Between { from: prefix, to }
}

/// The backend's `FN(haystack, needle)` substring position function, for
/// [`filtered!`].
pub(crate) fn position_fn<C: Store>(_: &C) -> &'static str {
    C::POSITION_FN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> SessionFilter {
        SessionFilter {
            id_prefix: Some(text.into()),
            ..SessionFilter::default()
        }
    }

    #[test]
    fn id_prefix_range_names_each_case() {
        assert_eq!(id_prefix_range(&SessionFilter::default()), IdRange::Any);
        assert_eq!(id_prefix_range(&prefix("  ")), IdRange::Any);
        assert_eq!(
            id_prefix_range(&prefix(" 9B2F- ")),
            IdRange::Between {
                from: "9b2f-".into(),
                to: "9b2f-g".into()
            }
        );
        assert_eq!(id_prefix_range(&prefix("xyz")), IdRange::Nothing);
        assert_eq!(id_prefix_range(&prefix(&"a".repeat(37))), IdRange::Nothing);
    }
}
