//! The app `scripts/bench-fairing.sh` loads over HTTP: the same two routes with and
//! without the sessions fairing.
//!
//! `BENCH_MODE=bare` serves `GET /read` and `POST /write` without sessions, and
//! `GET /hop` (one `spawn_blocking` round trip, no database);
//! `BENCH_MODE=sessions` (default) serves them through the `Session` guard, plus
//! `GET /statements` (database statements so far, as JSON). Port and database come
//! from Rocket's config (`ROCKET_PORT`, `ROCKET_SESSION`).

use rocket::serde::json::{json, Json, Value};
use rocket::{get, post, routes};
use session_fairing::{Session, SessionStore, Sessions};

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

#[get("/statements")]
fn statements(store: SessionStore<'_>) -> Json<Value> {
    let counts = store.database().statement_counts();
    Json(json!({"reads": counts.reads, "writes": counts.writes, "other": counts.other}))
}

#[rocket::launch]
fn rocket() -> _ {
    match std::env::var("BENCH_MODE").as_deref() {
        Ok("bare") => rocket::build().mount("/", routes![read_bare, write_bare, hop]),
        _ => rocket::build()
            .attach(Sessions::fairing())
            .mount("/", routes![read, write, statements]),
    }
}
