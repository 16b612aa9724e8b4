#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod csrf;
mod error;
mod fairing;
mod guard;
mod state;

pub use config::{Config, ConfigError, SameSite};
pub use csrf::{CsrfForm, CsrfHeader, CsrfToken, NoFields, CSRF_FIELD, CSRF_HEADER};
pub use error::{Error, Result};
pub use fairing::{blocking, Sessions};
pub use guard::{Flash, Session, FLASH_KEY};

// What every app touches of the store, at the top; the rest in `store`, so an
// app depends on this crate alone.
/// The store's error ([`Error::Store`] wraps it).
#[doc(inline)]
pub use shared_model::Error as StoreError;
#[doc(inline)]
pub use shared_model::{Clock, Device, ManualClock, SessionData, SessionId, SessionManager};

/// The session store behind the fairing (the `shared-model` crate), whole:
/// the types of admin work through [`SessionManager`] (`SessionFilter`,
/// `Status`, `Page`, `Sort`, `ExpiryChange`, `Stats`, the audit log's `Event`),
/// `Database`, and an app's own tables on the session database
/// (`AppMigrations`, `session_migrations`, the `with_connection!` macro).
pub mod store {
    pub use shared_model::*;
}
