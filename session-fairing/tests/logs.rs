//! What the fairing logs: never a database password. A test binary of its own,
//! because it installs the process's one `log` logger before Rocket tries to.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::sync::{Mutex, PoisonError};

use rocket::figment::providers::Serialized;
use rocket::serde::json::json;
use session_fairing::Sessions;

/// Every log line, kept for the test to read.
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record.args().to_string());
    }
    fn flush(&self) {}
}

static LINES: Capture = Capture(Mutex::new(Vec::new()));

#[rocket::async_test]
async fn a_failed_launch_never_prints_the_database_password() {
    log::set_logger(&LINES).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let dir = tempfile::tempdir().unwrap();
    // An SQLite file in a missing directory cannot be opened; the password is
    // in a query parameter, as libpq URLs carry it.
    let url = format!(
        "{}/missing/sessions.sqlite?password=hunter2",
        dir.path().display()
    );
    let figment = rocket::Config::figment().merge(Serialized::default(
        "session",
        json!({"timeout_minutes": 30, "database_url": url}),
    ));
    let launched = rocket::custom(figment)
        .attach(Sessions::fairing())
        .ignite()
        .await;
    let error = launched.expect_err("the database cannot be opened");
    assert!(matches!(
        error.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    let lines = LINES
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let opening: Vec<&String> = lines.iter().filter(|l| l.contains("cannot open")).collect();
    assert!(!opening.is_empty(), "{lines:#?}");
    assert!(
        opening.iter().all(|l| l.contains("password=***")),
        "{opening:#?}"
    );
    assert!(lines.iter().all(|l| !l.contains("hunter2")), "{lines:#?}");
}
