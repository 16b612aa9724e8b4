//! The crate's error type, and the one place that maps an error to a status.

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};

/// Why a session operation failed.
///
/// Request guards fail with a reference to the error the request stored (a
/// failed load is kept for the whole request), so a handler taking
/// `Result<Session<'_>, &Error>` sees the original, sources and all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The session store could not be read or written (`503` when the database
    /// is unavailable, see [`status`](Self::status)).
    #[error("session store: {0}")]
    Store(#[from] shared_model::Error),
    /// A value could not be converted to or from JSON.
    #[error("session value {key:?}: {source}")]
    Json {
        /// The session key.
        key: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// The server is shutting down: the runtime dropped the database work
    /// before it ran (`503`).
    #[error("the server is shutting down; the session store was not reached")]
    ShuttingDown,
    /// A guard of this crate was used on a Rocket without the [`Sessions`](crate::Sessions)
    /// fairing (launch normally refuses this: the guards are sentinels).
    #[error("the Sessions fairing is not attached: add `.attach(Sessions::fairing())`")]
    NotAttached,
    /// A state-changing request came from another site (`Sec-Fetch-Site:
    /// cross-site`, or an `Origin` that is neither this host nor trusted): `403`.
    #[error("cross-site request refused")]
    CrossSite,
    /// A request with a stored session lacked the session's CSRF token or
    /// carried a wrong one: `403`.
    #[error("missing or invalid CSRF token")]
    Csrf,
}

/// Guard failures without a stored error of the request's own.
pub(crate) static NOT_ATTACHED: Error = Error::NotAttached;
pub(crate) static CROSS_SITE: Error = Error::CrossSite;
pub(crate) static CSRF: Error = Error::Csrf;

impl Error {
    /// The HTTP status this error maps to (the one place that decides):
    /// `403` for a cross-site request or a bad CSRF token, `409` when the session
    /// ended (logout elsewhere) before a write, `413` for data over
    /// `max_data_bytes`, `503` when the database is unavailable or the server
    /// is shutting down, `500` otherwise.
    #[must_use]
    pub fn status(&self) -> Status {
        match self {
            Self::CrossSite | Self::Csrf => Status::Forbidden,
            Self::ShuttingDown => Status::ServiceUnavailable,
            Self::Store(shared_model::Error::Gone(_)) => Status::Conflict,
            Self::Store(shared_model::Error::TooLarge { .. }) => Status::PayloadTooLarge,
            Self::Store(error) if error.is_unavailable() => Status::ServiceUnavailable,
            Self::Store(_) | Self::Json { .. } | Self::NotAttached => Status::InternalServerError,
        }
    }

    /// The guard outcome for this error: its [`status`](Self::status) and itself.
    pub(crate) fn outcome<S>(&self) -> rocket::request::Outcome<S, &Self> {
        rocket::request::Outcome::Error((self.status(), self))
    }
}

/// Returning the error from a handler answers with [`Error::status`] (the
/// catcher renders the body); the error is logged once, here.
impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, _request: &'r Request<'_>) -> response::Result<'static> {
        tracing::error!("session: {self}");
        Err(self.status())
    }
}

/// A guard's error, returned from a handler as it came
/// (`Result<Session<'_>, &Error>`), answers with the same status; it was
/// logged where it happened.
impl<'r> Responder<'r, 'static> for &Error {
    fn respond_to(self, _request: &'r Request<'_>) -> response::Result<'static> {
        Err(self.status())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
