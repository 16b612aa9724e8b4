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

// What handlers, admin pages and tests touch of the store, so an app depends
// on this crate alone.
/// The store's error ([`Error::Store`] wraps it).
#[doc(inline)]
pub use shared_model::Error as StoreError;
// An app's own tables and migrations on the session pool.
#[doc(inline)]
pub use shared_model::{
    browser_label, Actor, Backend, Clock, Database, Device, Event, EventKind, ExpiryChange,
    ListedSession, ManualClock, Page, SessionData, SessionFilter, SessionId, SessionManager, Sort,
    SortKey, Stats, Status as SessionStatus, SystemClock,
};
#[doc(inline)]
pub use shared_model::{session_migrations, with_connection, AnyConnection, AppMigrations};
