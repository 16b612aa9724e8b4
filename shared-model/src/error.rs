//! The crate's one error type.

use crate::{CorruptSession, Session, SessionId};

/// Everything a [`SessionManager`](crate::SessionManager) or
/// [`Database`](crate::Database) operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL names a backend this build does not include
    /// (enable the `postgres` or `mysql` cargo feature).
    #[error("{backend} URLs need the `{feature}` cargo feature of shared-model")]
    BackendNotCompiled {
        /// The backend the URL asked for.
        backend: &'static str,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
    /// A connection could not be opened (wrong URL, server down, bad credentials).
    #[error("cannot connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    /// No pooled connection became available within the pool's timeout.
    #[error("database unavailable: {0}")]
    Pool(#[from] r2d2::Error),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    /// The database has no `sessions` table (run the migrations).
    #[error("there is no sessions table in this database")]
    NoSessionsTable,
    /// The `sessions` table lacks columns the session code
    /// reads, or has them with types it cannot read.
    #[error("the session tables cannot be used: {}", problems.join("; "))]
    Schema {
        /// What is wrong, one item per column ("column version is integer, expected 64-bit integer").
        problems: Vec<String>,
    },
    /// Listing or running migrations failed.
    #[error(transparent)]
    Migration(#[from] migrations::Error),
    /// The session does not exist any more (deleted, expired or its id was cycled)
    /// so the write was refused; nothing was re-created.
    #[error("session {0} is gone (deleted, expired or its id changed)")]
    Gone(SessionId),
    /// [`replace_data`](crate::SessionManager::replace_data) found another version
    /// than the one the caller edited; nothing was written.
    #[error("session {} changed meanwhile: expected version {expected}, found {}", current.id, current.version)]
    Conflict {
        /// The version the caller based its edit on.
        expected: i64,
        /// The row as it is now.
        current: Box<Session>,
    },
    /// Session data must be a JSON object (`{...}`).
    #[error("session data must be a JSON object, not {found}")]
    NotAnObject {
        /// The JSON type that was given instead.
        found: &'static str,
    },
    /// Text given as session data is not JSON.
    #[error("session data is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The encoded data is larger than the manager's limit; nothing was truncated or written.
    #[error("session data is {size} bytes encoded, over the limit of {limit} bytes")]
    TooLarge {
        /// Encoded size of the rejected data.
        size: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// A stored row's `data` is not a JSON object (edited by hand, truncated, ...)
    /// or its id is not canonical. The row is returned as stored.
    #[error("session {} has corrupt data: {}", .0.id, .0.reason)]
    CorruptData(Box<CorruptSession>),
    /// A row already has this public id: the token it derives from was used
    /// before. Nothing was written.
    #[error("session {0} exists already")]
    IdTaken(SessionId),
    /// Another login of the same user held the per-user lock (MySQL's
    /// `GET_LOCK`, taken while a session cap is on) for too long. Counts as
    /// unavailable (`503`).
    #[error("another login of the same user held its lock for over {0} seconds")]
    UserLocked(u32),
    /// Another connection (another app instance, the inspector) holds the
    /// purge lock: it is purging this database now, so nothing was purged.
    #[error("another process is purging expired sessions in this database")]
    PurgeRunning,
    /// The operating system could not provide random bytes for a token.
    #[error("no randomness for a session token: {0}")]
    Randomness(#[source] getrandom::Error),
}

impl Error {
    /// True when the database could not be reached, was busy past its timeout, or
    /// dropped the connection (as opposed to a problem with this particular session
    /// or request): a web app answers these with `503 Service Unavailable`.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Pool(_) | Self::UserLocked(_) => true,
            Self::Query(error) => self.is_connection_lost() || message_has(error, BUSY_MESSAGES),
            _ => false,
        }
    }

    /// True when the connection that produced this error cannot be used again
    /// (server restarted, network cut).
    #[must_use]
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Self::Query(error) => query_connection_lost(error),
            _ => false,
        }
    }
}

/// Whether a Diesel error means the connection is gone, looking inside the
/// errors Diesel wraps around a failed commit or rollback.
fn query_connection_lost(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error as Q};
    match error {
        Q::BrokenTransactionManager
        | Q::DatabaseError(Kind::ClosedConnection | Kind::UnableToSendCommand, _) => true,
        Q::RollbackErrorOnCommit {
            rollback_error,
            commit_error,
        } => query_connection_lost(rollback_error) || query_connection_lost(commit_error),
        other => message_has(other, LOST_CONNECTION_MESSAGES),
    }
}

/// Driver messages for a lock held too long by another writer.
const BUSY_MESSAGES: &[&str] = &[
    "database is locked",
    "database is busy",
    "lock wait timeout",
];

/// Driver messages for a connection that is gone (reported without an error kind).
const LOST_CONNECTION_MESSAGES: &[&str] = &[
    "server has gone away",
    "lost connection",
    "connection refused",
    "terminating connection",
    "server closed the connection",
    "no connection to the server",
    "connection reset",
    "broken pipe",
];

fn message_has(error: &diesel::result::Error, needles: &[&str]) -> bool {
    let diesel::result::Error::DatabaseError(_, info) = error else {
        return false;
    };
    let message = info.message().to_ascii_lowercase();
    needles.iter().any(|needle| message.contains(needle))
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error as Q};

    fn database_error(message: &str) -> Q {
        Q::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_owned()))
    }

    #[test]
    fn a_commit_that_lost_its_server_is_unavailable() {
        // What MySQL reports when the server stops between a write and its commit.
        let error = Error::Query(Q::RollbackErrorOnCommit {
            rollback_error: Box::new(database_error("Server has gone away")),
            commit_error: Box::new(database_error("Lost connection to server during query")),
        });
        assert!(error.is_connection_lost());
        assert!(error.is_unavailable());
        assert!(!Error::Query(database_error("syntax error")).is_unavailable());
        assert!(Error::Query(database_error("database is locked")).is_unavailable());
    }
}
