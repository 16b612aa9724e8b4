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
use shared_model::test_util::TestDatabase;

#[path = "../examples/bench_routes/mod.rs"]
mod bench_routes;

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
    let bare = Client::untracked(bench_routes::bare(rocket::custom(figment(db.url())))).unwrap();
    let sessions = Client::untracked(bench_routes::sessions(
        rocket::custom(figment(db.url())),
        false,
    ))
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
    // Rocket parses the Cookie header whatever the route: this row is what a
    // cookie costs without the fairing.
    group.bench_function("bare_read_with_cookie", |b| {
        b.iter(|| {
            bare.get("/read")
                .header(Header::new("Cookie", cookie.clone()))
                .dispatch()
                .into_string()
        })
    });
    group.bench_function("no_guard_with_cookie", |b| {
        b.iter(|| {
            sessions
                .get("/plain")
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
