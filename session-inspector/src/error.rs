//! The library's one error type.

use std::path::PathBuf;

/// Everything the inspector's library code can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shared-model operation failed (connection, query, conflict, bad data, ...).
    #[error(transparent)]
    Model(#[from] shared_model::Error),
    /// The text given as a session id is not a canonical session id.
    #[error("{text:?} is {reason}")]
    InvalidId {
        /// The text that was given.
        text: String,
        /// Why it was refused.
        reason: shared_model::InvalidSessionId,
    },
    /// No session has this id.
    #[error("no session with id {0}")]
    NotFound(String),
    /// The SQLite file does not exist; the inspector does not create databases
    /// (except `seed`, which creates demo data).
    #[error(
        "no SQLite database at {} (use `seed` to create a demo database)",
        shared_model::redact_url(path)
    )]
    NoSuchDatabase {
        /// The path that was looked at.
        path: String,
    },
    /// `Rocket.toml` could not be read.
    #[error("cannot read {}: {reason}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: std::io::Error,
    },
    /// `Rocket.toml` is not valid TOML.
    #[error("{} is not valid TOML: {reason}", path.display())]
    ParseConfig {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: toml::de::Error,
    },
    /// Writing the command's output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding JSON output failed.
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Writing CSV output failed.
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    /// A write was asked of a database opened read-only.
    #[error("refusing to {action}: the database was opened read-only (--read-only)")]
    ReadOnly {
        /// What was refused ("delete session 1f0c…").
        action: String,
    },
    /// A command that changes more than one session was not confirmed.
    #[error("{count} sessions match; pass --yes to {action} them all")]
    NeedsYes {
        /// How many match.
        count: u64,
        /// What would be done ("expire", "delete").
        action: &'static str,
    },
    /// `seed` on a database that already holds sessions.
    #[error(
        "the database already holds {count} session(s); pass --force to add fake sessions to it"
    )]
    NotEmpty {
        /// Sessions already there.
        count: u64,
    },
    /// History was asked of a database without the audit log.
    #[error(
        "this database has no session_events table, so there is no history to show \
         (the application's migrations add it)"
    )]
    NoEventsTable,
    /// The text given as a cookie is not a session token.
    #[error("{0}: paste the session cookie's value (43 characters of base64url)")]
    InvalidCookie(#[from] shared_model::InvalidToken),
}

impl Error {
    /// Whether the output went to a pipe that was closed (`… | head`): the
    /// reader has what it wanted, so this is not worth reporting.
    #[must_use]
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            Self::Io(error) => error.kind() == std::io::ErrorKind::BrokenPipe,
            Self::Json(error) => error.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe),
            Self::Csv(error) => matches!(
                error.kind(),
                csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Parses a session id given on the command line or in the UI.
///
/// # Errors
///
/// [`Error::InvalidId`] for anything but a canonical session id.
pub fn parse_id(text: &str) -> Result<shared_model::SessionId> {
    let trimmed = text.trim();
    trimmed.parse().map_err(|reason| Error::InvalidId {
        text: trimmed.to_owned(),
        reason,
    })
}
