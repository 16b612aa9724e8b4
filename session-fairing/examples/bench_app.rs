//! The app `scripts/bench-fairing.sh` loads over HTTP: the same two routes with and
//! without the sessions fairing.
//!
//! `BENCH_MODE=bare` serves `GET /read` and `POST /write` without sessions, and
//! `GET /hop` (one `spawn_blocking` round trip, no database);
//! `BENCH_MODE=sessions` (default) serves them through the `Session` guard, plus
//! `GET /plain` (a route without the guard) and `GET /statements` (database
//! statements so far, as JSON; counted only with `BENCH_COUNT_STATEMENTS=true`).
//! Port and database come from Rocket's config (`ROCKET_PORT`, `ROCKET_SESSION`).

#[path = "bench_routes/mod.rs"]
mod bench_routes;

#[rocket::launch]
fn rocket() -> _ {
    match std::env::var("BENCH_MODE").as_deref() {
        Ok("bare") => bench_routes::bare(rocket::build()),
        _ => bench_routes::sessions(
            rocket::build(),
            std::env::var("BENCH_COUNT_STATEMENTS").is_ok_and(|count| count == "true"),
        ),
    }
}
