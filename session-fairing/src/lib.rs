#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod csrf;
mod error;
mod fairing;
mod guard;
mod state;

pub use config::{Config, ConfigError, SameSite, Settings};
pub use csrf::{CsrfForm, CsrfHeader, CsrfToken, NoFields, CSRF_FIELD, CSRF_HEADER};
pub use error::{Error, Result};
pub use fairing::{manager, settings, Sessions};
pub use guard::{Flash, Session, SessionStore, FLASH_KEY};
pub use shared_model::{Device, SessionData, SessionId};
