//! The routes the benchmarks load, with and without sessions; shared by
//! `examples/bench_app.rs` (over HTTP) and `benches/requests.rs` (in process).

#![allow(dead_code)] // each includer uses a part

use rocket::serde::json::{json, Json, Value};
use rocket::{get, post, routes, Build, Rocket, State};
use session_fairing::{Session, SessionManager, Sessions};

#[get("/read")]
fn read_bare() -> String {
    "0".to_owned()
}

#[post("/write")]
fn write_bare() -> String {
    "1".to_owned()
}

/// The thread hop a session read pays, without the database: where the time of a
/// read goes.
#[get("/hop")]
async fn hop() -> String {
    rocket::tokio::task::spawn_blocking(|| "0".to_owned())
        .await
        .unwrap_or_default()
}

#[get("/read")]
fn read(session: Session<'_>) -> String {
    session
        .get::<i64>("counter")
        .unwrap_or_default()
        .to_string()
}

#[post("/write")]
fn write(session: Session<'_>) -> Result<String, session_fairing::Error> {
    let counter = session.get::<i64>("counter").unwrap_or_default() + 1;
    session.insert("counter", &counter)?;
    Ok(counter.to_string())
}

/// A route of the sessions app that never asks for the session: with lazy
/// loading it costs what the bare route costs, cookie or not.
#[get("/plain")]
fn plain() -> String {
    "0".to_owned()
}

#[get("/statements")]
fn statements(manager: &State<SessionManager>) -> Json<Value> {
    let counts = manager.database().statement_counts();
    Json(json!({"reads": counts.reads, "writes": counts.writes, "other": counts.other}))
}

/// The two routes without the fairing, plus `GET /hop`.
pub fn bare(rocket: Rocket<Build>) -> Rocket<Build> {
    rocket.mount("/", routes![read_bare, write_bare, hop])
}

/// The same routes through the `Session` guard, plus `GET /plain` (no guard)
/// and `GET /statements` (all zero unless `count_statements`).
pub fn sessions(rocket: Rocket<Build>, count_statements: bool) -> Rocket<Build> {
    let fairing = if count_statements {
        Sessions::fairing().count_statements()
    } else {
        Sessions::fairing()
    };
    rocket
        .attach(fairing)
        .mount("/", routes![read, write, plain, statements])
}
