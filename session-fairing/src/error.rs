//! The crate's error type.

use std::sync::Arc;

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};

/// Why a session operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The session store could not be read or written (`503`/`500` when returned
    /// from a handler).
    #[error("session store: {0}")]
    Store(#[from] Arc<shared_model::Error>),
    /// A value could not be converted to or from JSON.
    #[error("session value {key:?}: {message}")]
    Json {
        /// The session key.
        key: String,
        /// serde_json's explanation.
        message: String,
    },
    /// A background database task panicked.
    #[error("session task failed: {0}")]
    Task(String),
    /// The `Session` guard was used on a Rocket without `Sessions::fairing()`.
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

impl From<shared_model::Error> for Error {
    fn from(error: shared_model::Error) -> Self {
        Self::Store(Arc::new(error))
    }
}

impl Error {
    /// The HTTP status this error maps to (the one place that decides):
    /// `403` for a cross-site request or a bad CSRF token, `409` when the session
    /// ended (logout elsewhere) before a write, `413` for data over
    /// `max_data_bytes`, `503` when the database is unavailable, `500` otherwise.
    #[must_use]
    pub fn status(&self) -> Status {
        match self {
            Self::CrossSite | Self::Csrf => Status::Forbidden,
            Self::Store(error) => match **error {
                shared_model::Error::Gone(_) => Status::Conflict,
                shared_model::Error::TooLarge { .. } => Status::PayloadTooLarge,
                ref error if error.is_unavailable() => Status::ServiceUnavailable,
                _ => Status::InternalServerError,
            },
            _ => Status::InternalServerError,
        }
    }
}

/// Returning the error from a handler answers with [`Error::status`] (the
/// catcher renders the body); the error is logged once, here.
impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, _request: &'r Request<'_>) -> response::Result<'static> {
        log::error!("session: {self}");
        Err(self.status())
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
