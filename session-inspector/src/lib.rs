#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
#[cfg(feature = "bench")]
pub mod bench;
pub mod cli;
pub mod config;
mod error;
pub mod export;
pub mod format;
pub mod mask;
pub mod messages;
pub mod open;
pub mod seed;
pub mod settings;
pub mod state;
pub mod ui;
pub mod worker;

pub use app::{AppOptions, InitialSelection, InspectorApp};
pub use error::{parse_id, Error, Result};
