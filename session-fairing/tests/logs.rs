//! What the fairing logs: never a database password, and launch failures that
//! name their cause. A test binary of its own, because it installs the
//! process's one `log` logger before Rocket tries to.

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
static INSTALL: std::sync::Once = std::sync::Once::new();

/// Installs the capture (once per process) and returns the lines so far.
fn lines() -> Vec<String> {
    INSTALL.call_once(|| {
        log::set_logger(&LINES).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
    LINES
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Launches with `session` and returns the error lines logged by the launch
/// (the lines of other tests running meanwhile may be among them).
async fn failed_launch(session: serde_json::Value) -> Vec<String> {
    let before = lines().len();
    let figment = rocket::Config::figment().merge(Serialized::default("session", session));
    let launched = rocket::custom(figment)
        .attach(Sessions::fairing())
        .ignite()
        .await;
    let error = launched.expect_err("launch must fail");
    assert!(matches!(
        error.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    lines().split_off(before)
}

#[rocket::async_test]
async fn without_migrations_launch_names_what_the_tables_lack() {
    let db = shared_model::test_util::TestDatabase::sqlite();
    db.execute("DROP TABLE session_events");
    for column in [
        "ip_address",
        "user_agent",
        "last_seen_at",
        "timeout_seconds",
    ] {
        db.execute(&format!("ALTER TABLE sessions DROP COLUMN {column}"));
    }
    let lines = failed_launch(json!({
        "timeout_minutes": 30, "database_url": db.url(), "run_migrations": false,
    }))
    .await;
    assert!(
        lines.iter().any(|l| l.contains("cannot open")
            && l.contains("ip_address")
            && l.contains("missing")),
        "{lines:#?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.sqlite");
    std::fs::File::create(&empty).unwrap();
    let lines = failed_launch(json!({
        "timeout_minutes": 30, "database_url": empty.display().to_string(), "run_migrations": false,
    }))
    .await;
    assert!(
        lines.iter().any(|l| l.contains("no sessions table")),
        "{lines:#?}"
    );
}

#[rocket::async_test]
async fn audit_without_the_events_table_fails_launch() {
    let db = shared_model::test_util::TestDatabase::sqlite();
    db.execute("DROP TABLE session_events");
    let lines = failed_launch(json!({
        "timeout_minutes": 30, "database_url": db.url(), "run_migrations": false, "audit": true,
    }))
    .await;
    assert!(
        lines.iter().any(|l| l.contains("session_events")),
        "{lines:#?}"
    );
}

/// Without a `tracing` subscriber, the store's tracing events reach the `log`
/// facade (Rocket's logger), fields included.
#[rocket::async_test]
async fn tracing_events_reach_the_log_facade() {
    let before = lines().len();
    let db = shared_model::test_util::TestDatabase::sqlite();
    let figment = rocket::Config::figment().merge(Serialized::default(
        "session",
        json!({"timeout_minutes": 30, "database_url": db.url(), "purge_interval_seconds": 0}),
    ));
    let client = rocket::local::asynchronous::Client::untracked(
        rocket::custom(figment)
            .attach(Sessions::fairing())
            .mount("/", rocket::routes![store_one]),
    )
    .await
    .unwrap();
    let response = client.post("/").dispatch().await;
    assert_eq!(response.status(), rocket::http::Status::Ok);
    let lines = lines().split_off(before);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("elapsed_us") && l.contains("outcome")),
        "{lines:#?}"
    );
}

#[rocket::post("/")]
fn store_one(session: session_fairing::Session<'_>) -> &'static str {
    session.insert("one", &1).unwrap();
    "stored"
}

/// The same through `database = "<name>"`: the URL from `databases.<name>`
/// is redacted too.
#[rocket::async_test]
async fn a_named_database_password_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "{}/missing/sessions.sqlite?password=hunter3",
        dir.path().display()
    );
    let before = lines().len();
    let figment = rocket::Config::figment()
        .merge(Serialized::default(
            "databases",
            json!({"main": {"url": url, "max_connections": 2}}),
        ))
        .merge(Serialized::default(
            "session",
            json!({"timeout_minutes": 30, "database": "main"}),
        ));
    let error = rocket::custom(figment)
        .attach(Sessions::fairing())
        .ignite()
        .await
        .expect_err("the database cannot be opened");
    assert!(matches!(
        error.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
    let lines = lines().split_off(before);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cannot open") && l.contains("password=***")),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| !l.contains("hunter3")), "{lines:#?}");
}

#[rocket::async_test]
async fn a_failed_launch_never_prints_the_database_password() {
    let dir = tempfile::tempdir().unwrap();
    // An SQLite file in a missing directory cannot be opened; the password is
    // in a query parameter, as libpq URLs carry it.
    let url = format!(
        "{}/missing/sessions.sqlite?password=hunter2",
        dir.path().display()
    );
    let lines = failed_launch(json!({"timeout_minutes": 30, "database_url": url})).await;
    let opening: Vec<&String> = lines.iter().filter(|l| l.contains("cannot open")).collect();
    assert!(!opening.is_empty(), "{lines:#?}");
    assert!(
        opening.iter().all(|l| l.contains("password=***")),
        "{opening:#?}"
    );
    assert!(lines.iter().all(|l| !l.contains("hunter2")), "{lines:#?}");
}
