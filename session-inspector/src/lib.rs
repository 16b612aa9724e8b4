#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
mod error;
pub mod format;
pub mod seed;
pub mod state;
pub mod ui;
pub mod worker;

pub use app::{AppOptions, InitialSelection, InspectorApp};
pub use error::{parse_id, Error, Result};
