//! In-process request cost: the same routes on a Rocket without the fairing and
//! through the `Session` guard, dispatched by Rocket's local client (no network),
//! on a file SQLite database.
//!
//! `cargo bench -p session-fairing --bench requests`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use rocket::figment::providers::Serialized;
use rocket::http::Header;
use rocket::local::blocking::Client;
use rocket::serde::json::json;
use rocket::{get, post, routes};
use session_fairing::{Session, Sessions};
use shared_model::test_util::TestDatabase;

#[get("/read")]
fn read_bare() -> String {
    "0".to_owned()
}

#[post("/write")]
fn write_bare() -> String {
    "1".to_owned()
}

#[get("/read")]
fn read(session: Session<'_>) -> String {
    session
        .get::<i64>("counter")
        .unwrap_or_default()
        .to_string()
}

#[post("/write")]
fn write(session: Session<'_>) -> String {
    let counter = session.get::<i64>("counter").unwrap_or_default() + 1;
    session.insert("counter", &counter).unwrap();
    counter.to_string()
}

fn figment(url: &str) -> rocket::figment::Figment {
    rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(Serialized::default(
            "session",
            json!({"timeout_minutes": 30, "database_url": url, "purge_interval_seconds": 0}),
        ))
}

fn requests(c: &mut Criterion) {
    let db = TestDatabase::sqlite();
    let bare = Client::untracked(
        rocket::custom(figment(db.url())).mount("/", routes![read_bare, write_bare]),
    )
    .unwrap();
    let sessions = Client::untracked(
        rocket::custom(figment(db.url()))
            .attach(Sessions::fairing())
            .mount("/", routes![read, write]),
    )
    .unwrap();
    let cookie = {
        let response = sessions.post("/write").dispatch();
        response
            .headers()
            .get_one("Set-Cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };

    let mut group = c.benchmark_group("in_process");
    group.bench_function("bare_read", |b| {
        b.iter(|| bare.get("/read").dispatch().into_string())
    });
    group.bench_function("session_read", |b| {
        b.iter(|| {
            sessions
                .get("/read")
                .header(Header::new("Cookie", cookie.clone()))
                .dispatch()
                .into_string()
        })
    });
    group.bench_function("bare_write", |b| {
        b.iter(|| bare.post("/write").dispatch().into_string())
    });
    group.bench_function("session_write", |b| {
        b.iter(|| {
            sessions
                .post("/write")
                .header(Header::new("Cookie", cookie.clone()))
                .dispatch()
                .into_string()
        })
    });
    group.finish();
}

criterion_group!(benches, requests);
criterion_main!(benches);
