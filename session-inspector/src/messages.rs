//! The messages between the UI and the database worker: [`Request`]s, their
//! [`Response`]s and the [`Row`]s of the table. Both sides import this module;
//! the UI and its state never import the worker.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use shared_model::{
    browser_label, Backend, Event, ListedSession, Session, SessionData, SessionFilter, SessionId,
    Sort, Stats,
};

pub use shared_model::ExpiryChange;

use crate::export::ExportFormat;
use crate::format::top_level_keys;
use crate::mask::Masking;

/// Hours of history and look-ahead in the overview's plots.
pub const STATS_HOURS: u32 = 48;

/// Users listed in the overview's "top users" plot.
pub const STATS_TOP_USERS: u32 = 10;

/// Audit events shown in a history timeline (the newest).
pub const HISTORY_LIMIT: u32 = 200;

/// Rows per transaction of "Expire all matching" and "Delete all matching".
pub const BULK_BATCH: u32 = 500;

/// A database URL as given. It may hold a password, so it is never shown:
/// its `Debug` and [`redacted`](Self::redacted) hide the password, and only
/// [`expose`](Self::expose) (to connect) returns it whole.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, to connect with.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with the password replaced by `***`, for messages.
    #[must_use]
    pub fn redacted(&self) -> String {
        shared_model::redact_url(&self.0)
    }

    /// The URL without its password, for the URL field and the recent list.
    #[must_use]
    pub fn without_password(&self) -> String {
        shared_model::strip_password(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

/// A table row's id: the public id, or the text stored for a corrupt row whose
/// id is not a canonical session id (listed, never opened).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowId {
    /// A canonical public id.
    Session(SessionId),
    /// The stored text of an id that is not canonical.
    Unreadable(String),
}

impl RowId {
    /// The public id, when the row has one.
    #[must_use]
    pub fn session_id(&self) -> Option<SessionId> {
        match self {
            Self::Session(id) => Some(*id),
            Self::Unreadable(_) => None,
        }
    }

    /// The first eight characters, as the table shows them.
    #[must_use]
    pub fn short(&self) -> String {
        match self {
            Self::Session(id) => id.short(),
            Self::Unreadable(text) => text.chars().take(8).collect(),
        }
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Session(id) => id.fmt(f),
            Self::Unreadable(text) => f.write_str(text),
        }
    }
}

/// One table row, summarised on the worker so the UI thread only draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The id.
    pub row_id: RowId,
    /// The user, if any.
    pub user_id: Option<String>,
    /// `created_at`.
    pub created_at: DateTime<Utc>,
    /// `updated_at`.
    pub updated_at: DateTime<Utc>,
    /// `expires_at`.
    pub expires_at: DateTime<Utc>,
    /// `version`.
    pub version: i64,
    /// Size of the stored data in bytes.
    pub data_size: usize,
    /// The top-level keys, as text.
    pub keys: String,
    /// Why the row could not be decoded, for corrupt rows.
    pub corrupt: Option<String>,
    /// The client's IP address, when recorded.
    pub ip_address: Option<String>,
    /// The client's `User-Agent`, when recorded.
    pub user_agent: Option<String>,
    /// A short name for the browser ("Firefox 128 on Linux"), when recorded.
    pub browser: Option<String>,
    /// When the app last saw the session, when recorded.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Whether the session has its own idle timeout ("remember me").
    pub remembered: bool,
}

impl Row {
    /// The row of a listed session, decoded or corrupt.
    #[must_use]
    pub fn from_listed(listed: ListedSession) -> Self {
        match listed {
            Ok(session) => Self::from_session(&session),
            Err(corrupt) => Self {
                row_id: match crate::parse_id(&corrupt.id) {
                    Ok(id) => RowId::Session(id),
                    Err(_) => RowId::Unreadable(corrupt.id),
                },
                user_id: corrupt.user_id,
                created_at: corrupt.created_at,
                updated_at: corrupt.updated_at,
                expires_at: corrupt.expires_at,
                version: corrupt.version,
                data_size: corrupt.raw_data.len(),
                keys: String::new(),
                corrupt: Some(corrupt.reason),
                ip_address: None,
                user_agent: None,
                browser: None,
                last_seen_at: None,
                remembered: false,
            },
        }
    }

    /// The row of a decoded session.
    #[must_use]
    pub fn from_session(session: &Session) -> Self {
        Self {
            row_id: RowId::Session(session.id),
            user_id: session.user_id.clone(),
            created_at: session.created_at,
            updated_at: session.updated_at,
            expires_at: session.expires_at,
            version: session.version,
            data_size: session.data_size(),
            keys: top_level_keys(&session.data, 4),
            corrupt: None,
            ip_address: session.ip_address.clone(),
            user_agent: session.user_agent.clone(),
            browser: session
                .user_agent
                .as_deref()
                .map(|agent| browser_label(Some(agent))),
            last_seen_at: session.last_seen_at,
            remembered: session.timeout_seconds.is_some(),
        }
    }
}

/// What "… all matching" does to every session the filter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BulkAction {
    /// Expire them (as "Expire now").
    Expire,
    /// Delete them.
    Delete,
}

impl BulkAction {
    /// The verb, in lowercase ("expire").
    #[must_use]
    pub fn verb(self) -> &'static str {
        match self {
            Self::Expire => "expire",
            Self::Delete => "delete",
        }
    }
}

/// Whose audit events a history shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HistoryScope {
    /// One session's.
    Session(SessionId),
    /// All the sessions of a user.
    User(String),
}

/// What a request was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// There is no open database yet.
    NotConnected,
    /// Opening the database.
    Connect,
    /// Counting the table's rows.
    Count {
        /// The table generation the count was for.
        generation: u64,
    },
    /// Loading a page of the table.
    LoadPage,
    /// Loading one session.
    Load {
        /// The session asked for.
        session_id: SessionId,
    },
    /// Saving an edit.
    Save,
    /// Changing one session's expiry.
    ChangeExpiry(ExpiryChange),
    /// Deleting one session.
    Delete,
    /// Deleting every session of a user.
    DeleteUser,
    /// Purging expired sessions.
    Purge,
    /// Loading the overview's statistics.
    Stats,
    /// Counting the sessions a bulk action would change.
    CountMatching(BulkAction),
    /// Running a bulk action.
    Bulk(BulkAction),
    /// Exporting.
    Export,
    /// Loading a history.
    History,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotConnected => "no database",
            Self::Connect => "opening the database",
            Self::Count { .. } => "counting sessions",
            Self::LoadPage => "loading sessions",
            Self::Load { .. } => "loading the session",
            Self::Save => "saving the session",
            Self::ChangeExpiry(ExpiryChange::ExpireNow) => "expiring the session",
            Self::ChangeExpiry(ExpiryChange::ExtendMinutes(_)) => "extending the session",
            Self::Delete => "deleting the session",
            Self::DeleteUser => "deleting the user's sessions",
            Self::Purge => "purging expired sessions",
            Self::Stats => "loading statistics",
            Self::CountMatching(_) => "counting the matching sessions",
            Self::Bulk(BulkAction::Expire) => "expiring the matching sessions",
            Self::Bulk(BulkAction::Delete) => "deleting the matching sessions",
            Self::Export => "exporting",
            Self::History => "loading the history",
        })
    }
}

/// Work for the database thread.
#[derive(Debug, Clone)]
pub enum Request {
    /// Open this database (replacing the current one).
    Connect {
        /// The URL.
        url: DatabaseUrl,
        /// Refuse every write at the connection.
        read_only: bool,
    },
    /// Count the rows matching a filter.
    Count {
        /// The table generation this is for; stale ones are skipped.
        generation: u64,
        /// The filter.
        filter: SessionFilter,
    },
    /// Load one page of the table.
    Page {
        /// The table generation this is for; stale ones are skipped.
        generation: u64,
        /// The filter.
        filter: SessionFilter,
        /// The order.
        sort: Sort,
        /// Page number (rows `index * limit ..`).
        index: usize,
        /// Rows per page.
        limit: u32,
    },
    /// Load one session in full.
    Get {
        /// Its id.
        session_id: SessionId,
    },
    /// Replace a session's data if its version is still `expected_version`.
    Save {
        /// Its id.
        session_id: SessionId,
        /// The new data.
        data: SessionData,
        /// The version the edit was based on.
        expected_version: i64,
    },
    /// Change a session's expiry.
    SetExpiry {
        /// Its id.
        session_id: SessionId,
        /// How.
        change: ExpiryChange,
    },
    /// Delete one session.
    Delete {
        /// Its id.
        session_id: SessionId,
    },
    /// Delete every session of a user.
    DeleteUser {
        /// The user.
        user_id: String,
    },
    /// Delete every expired session, reporting progress.
    Purge,
    /// Totals and histograms for the overview.
    Stats,
    /// Count the sessions a bulk action would change, before asking.
    CountMatching {
        /// The action to confirm.
        action: BulkAction,
        /// The filter.
        filter: SessionFilter,
    },
    /// Expire or delete every session matching a filter, in batches.
    Bulk {
        /// What to do.
        action: BulkAction,
        /// The filter.
        filter: SessionFilter,
        /// The number of sessions the admin confirmed: the action changes at
        /// most this many, even if more start matching meanwhile.
        at_most: u64,
        /// Set to stop after the current batch (set before the first: nothing runs).
        cancel: Arc<AtomicBool>,
    },
    /// Write the sessions matching a filter to a file.
    Export {
        /// The filter.
        filter: SessionFilter,
        /// The file format.
        format: ExportFormat,
        /// Which values to mask.
        masking: Masking,
        /// The file (replaced only when the export completes).
        path: PathBuf,
        /// Whether an existing file there may be replaced (the user said so);
        /// otherwise the export refuses.
        replace: bool,
        /// Set to stop after the current page.
        cancel: Arc<AtomicBool>,
    },
    /// Load audit events.
    History {
        /// Whose.
        scope: HistoryScope,
    },
}

/// The open database, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The URL as given (it may hold a password: never shown or stored).
    pub url: DatabaseUrl,
    /// The URL without password.
    pub display_url: String,
    /// The engine.
    pub backend: Backend,
    /// Whether the connection refuses every write.
    pub read_only: bool,
    /// Whether `sessions` has the device columns (IP, user agent, last seen, remember me).
    pub device_columns: bool,
    /// Whether the `session_events` audit table exists.
    pub events_table: bool,
    /// What is unusual about the schema (never a refusal).
    pub warnings: Vec<String>,
}

/// The worker's answers.
#[derive(Debug, Clone)]
pub enum Response {
    /// The database is open.
    Connected(ConnectionInfo),
    /// The database could not be opened.
    ConnectFailed {
        /// The URL as given.
        url: DatabaseUrl,
        /// Why.
        message: String,
    },
    /// A row count.
    Counted {
        /// The table generation.
        generation: u64,
        /// Matching rows.
        count: u64,
    },
    /// A page of rows.
    PageLoaded {
        /// The table generation.
        generation: u64,
        /// Page number.
        index: usize,
        /// The rows.
        rows: Vec<Row>,
        /// How long the query took.
        elapsed: Duration,
    },
    /// A session loaded in full (`None`: it does not exist any more).
    Loaded {
        /// The id asked for.
        session_id: SessionId,
        /// The session, or why it could not be decoded.
        session: Option<Result<Session, String>>,
    },
    /// An edit was saved.
    Saved {
        /// The session the edit was for.
        session_id: SessionId,
        /// The session as written.
        session: Session,
    },
    /// An edit was refused because someone else wrote the session meanwhile.
    Conflict {
        /// The session the edit was for.
        session_id: SessionId,
        /// The data the user tried to save.
        mine: SessionData,
        /// The version the edit was based on.
        expected_version: i64,
        /// The session as it is now.
        current: Session,
    },
    /// A session's expiry was changed.
    ExpiryChanged {
        /// The session.
        session_id: SessionId,
        /// Its new expiry.
        expires_at: DateTime<Utc>,
        /// What was done.
        change: ExpiryChange,
    },
    /// One session was deleted (or was already gone).
    Deleted {
        /// The session.
        session_id: SessionId,
        /// Whether a row went.
        existed: bool,
    },
    /// A user's sessions were deleted.
    DeletedUser {
        /// The user.
        user_id: String,
        /// How many rows went.
        count: u64,
    },
    /// A purge started; `total` expired rows are to go.
    PurgeStarted {
        /// Expired rows when the purge started.
        total: u64,
    },
    /// A purge batch finished.
    PurgeProgress {
        /// Rows removed so far.
        removed: u64,
    },
    /// A purge finished.
    PurgeDone {
        /// Rows removed.
        removed: u64,
    },
    /// Statistics for the overview.
    Stats(Box<Stats>),
    /// The sessions a bulk action would change, counted.
    MatchingCounted {
        /// The action.
        action: BulkAction,
        /// The filter counted.
        filter: SessionFilter,
        /// How many match.
        count: u64,
    },
    /// A bulk action's batch finished.
    BulkProgress {
        /// The action.
        action: BulkAction,
        /// Sessions changed so far.
        done: u64,
    },
    /// A bulk action finished or was cancelled.
    BulkDone {
        /// The action.
        action: BulkAction,
        /// Sessions changed.
        done: u64,
        /// Whether it stopped early because it was cancelled.
        cancelled: bool,
    },
    /// An export's page was written.
    ExportProgress {
        /// Rows written so far.
        written: u64,
    },
    /// An export finished (the file is complete) or was cancelled (no file).
    ExportDone {
        /// The file.
        path: PathBuf,
        /// Rows written.
        written: u64,
        /// Whether it was cancelled (then the file was not written).
        cancelled: bool,
    },
    /// Audit events, newest first.
    History {
        /// Whose.
        scope: HistoryScope,
        /// The events.
        events: Vec<Event>,
    },
    /// A request failed; the app keeps working.
    Failed {
        /// What was being done.
        op: Op,
        /// Why it failed.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_never_debugs_its_password() {
        let url = DatabaseUrl::new("postgres://app:hunter2@db/app");
        let request = Request::Connect {
            url: url.clone(),
            read_only: true,
        };
        assert!(!format!("{request:?}").contains("hunter2"), "{request:?}");
        assert_eq!(url.without_password(), "postgres://app@db/app");
        assert!(url.expose().contains("hunter2"), "connecting needs it");
    }

    #[test]
    fn an_unreadable_row_id_keeps_its_text() {
        let row_id = RowId::Unreadable("Not-A-Uuid-At-All".into());
        assert_eq!(row_id.short(), "Not-A-Uu");
        assert_eq!(row_id.to_string(), "Not-A-Uuid-At-All");
        assert_eq!(row_id.session_id(), None);
    }
}
