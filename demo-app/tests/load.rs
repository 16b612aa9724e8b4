//! Load over real HTTP against the demo binary (`DEMO_APP_BIN`, see `common`):
//! nothing a client was told is stored may be lost, and logout must win races.
//!
//! `#[ignore]`d in a plain run. `.ci/run` runs the short version; the full run
//! recorded in BENCHMARKS.md / RELIABILITY.md is
//!
//! ```sh
//! cargo build --release -p demo-app --features postgres
//! DEMO_APP_BIN=target/release/demo-app LOAD_REQUESTS=1000 LOAD_ROUNDS=100 \
//!   SESSIONS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo test --release -p demo-app --features postgres --test load -- --include-ignored --nocapture --test-threads 1
//! ```
//!
//! `LOAD_CLIENTS` (default 64) clients each own a session and send
//! `LOAD_REQUESTS` (default 50) `POST /api/counter`; the keys and logout races
//! repeat `LOAD_ROUNDS` (default 20) times. Each test prints Markdown rows.
//!
//! In the logout race, half the late writes are `POST /api/heartbeat`, which
//! writes back the `user_id` it loaded: a write that carries the login, so a
//! store that let a late write recreate the session would log the user back in.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{form_token, http, session_cookie, Demo};
use serde_json::{json, Value};
use shared_model::test_util::TestDatabase;
use shared_model::{SessionFilter, SessionManager};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn read_json(response: ureq::http::Response<ureq::Body>) -> Value {
    let mut response = response;
    let text = response.body_mut().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// What one counter run measured.
struct Counted {
    requests: usize,
    failures: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Counted {
    fn throughput(&self) -> f64 {
        (self.requests - self.failures) as f64 / self.elapsed.as_secs_f64()
    }

    fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {} | {} | {:.0} | {:.2} ms | {:.2} ms |",
            self.requests,
            self.failures,
            self.throughput(),
            percentile(&self.latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&self.latencies, 0.99).as_secs_f64() * 1e3,
        )
    }
}

/// `LOAD_CLIENTS` clients, each with its own session, send `LOAD_REQUESTS`
/// `POST /api/counter` round-robin over `demos`. Afterwards every session's
/// counter must equal its client's successful requests.
fn counters(demos: &[Demo]) -> Counted {
    let clients = setting("LOAD_CLIENTS", 64);
    let requests = setting("LOAD_REQUESTS", 50);
    let bases: Arc<Vec<String>> = Arc::new(demos.iter().map(|demo| demo.base.clone()).collect());
    let start = Arc::new(Barrier::new(clients + 1));
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let (bases, start) = (Arc::clone(&bases), Arc::clone(&start));
            std::thread::spawn(move || {
                let agent = http();
                let mut cookie: Option<String> = None;
                let (mut successes, mut latencies) = (0u64, Vec::with_capacity(requests));
                start.wait();
                for request in 0..requests {
                    let base = &bases[(client + request) % bases.len()];
                    let mut call = agent.post(format!("{base}/api/counter"));
                    if let Some(id) = &cookie {
                        call = call.header("Cookie", format!("session_id={id}"));
                    }
                    let began = Instant::now();
                    let response = call.send_empty();
                    latencies.push(began.elapsed());
                    let Ok(response) = response else { continue };
                    if response.status() != 200 {
                        continue;
                    }
                    if let Some(id) = session_cookie(&response) {
                        assert!(
                            cookie.is_none(),
                            "client {client}: the session id changed under load"
                        );
                        cookie = Some(id);
                    }
                    successes += 1;
                    assert_eq!(
                        read_json(response)["counter"],
                        json!(successes),
                        "client {client}"
                    );
                }
                (cookie, successes, latencies)
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let results: Vec<_> = workers
        .into_iter()
        .map(|worker| worker.join().unwrap())
        .collect();
    let elapsed = began.elapsed();

    let agent = http();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for (client, (cookie, successes, client_latencies)) in results.into_iter().enumerate() {
        failures += requests - successes as usize;
        latencies.extend(client_latencies);
        let Some(id) = cookie else {
            assert_eq!(successes, 0, "client {client} succeeded without a session");
            continue;
        };
        let session = read_json(
            agent
                .get(format!("{}/api/session", bases[client % bases.len()]))
                .header("Cookie", format!("session_id={id}"))
                .call()
                .unwrap(),
        );
        assert_eq!(
            session["data"]["counter"],
            json!(successes),
            "client {client}: a counted write was lost"
        );
    }
    latencies.sort();
    Counted {
        requests: clients * requests,
        failures,
        elapsed,
        latencies,
    }
}

/// 16 concurrent `PUT /api/keys/k{i}` on one session, `LOAD_ROUNDS` times: every
/// key is present after every round.
fn sixteen_keys_on_one_session(demos: &[Demo]) -> usize {
    let rounds = setting("LOAD_ROUNDS", 20);
    let agent = http();
    let response = agent
        .put(demos[0].url("/api/keys/start"))
        .header("Content-Type", "application/json")
        .send("true")
        .unwrap();
    assert_eq!(response.status(), 204);
    let id = session_cookie(&response).unwrap();
    let bases: Arc<Vec<String>> = Arc::new(demos.iter().map(|demo| demo.base.clone()).collect());
    for round in 0..rounds {
        let gate = Arc::new(Barrier::new(16));
        let writers: Vec<_> = (0..16)
            .map(|key| {
                let (gate, bases, id) = (Arc::clone(&gate), Arc::clone(&bases), id.clone());
                std::thread::spawn(move || {
                    let agent = http();
                    gate.wait();
                    agent
                        .put(format!("{}/api/keys/k{key}", bases[key % bases.len()]))
                        .header("Cookie", format!("session_id={id}"))
                        .header("Content-Type", "application/json")
                        .send(round.to_string())
                        .map(|response| response.status().as_u16())
                })
            })
            .collect();
        for writer in writers {
            assert_eq!(writer.join().unwrap().unwrap(), 204, "round {round}");
        }
        let session = read_json(
            agent
                .get(demos[round % demos.len()].url("/api/session"))
                .header("Cookie", format!("session_id={id}"))
                .call()
                .unwrap(),
        );
        for key in 0..16 {
            assert_eq!(
                session["data"][format!("k{key}")],
                json!(round),
                "round {round}: k{key} lost"
            );
        }
    }
    rounds * 16
}

/// What the logout races saw.
struct Races {
    rounds: usize,
    /// Late writes refused with `409`...
    refused: usize,
    /// ...of which heartbeats, whose write carried the login.
    refused_heartbeats: usize,
}

/// Logout racing writes on the same session, `LOAD_ROUNDS` times: the user is
/// never logged back in (no session of theirs survives, in `manager`'s
/// database), and the old id never works again.
fn logout_races_writes(demos: &[Demo], manager: &SessionManager) -> Races {
    let rounds = setting("LOAD_ROUNDS", 20);
    let agent = http();
    let (mut refused, mut refused_heartbeats) = (0, 0);
    for round in 0..rounds {
        let response = agent
            .post(demos[0].url("/login"))
            .send_form([("username", "alice"), ("password", "wonderland")])
            .unwrap();
        assert_eq!(response.status(), 303);
        let id = session_cookie(&response).unwrap();
        // The page the user clicks "Log out" on, and who they are.
        let response = agent
            .get(demos[0].url("/"))
            .header("Cookie", format!("session_id={id}"))
            .call()
            .unwrap();
        let token = form_token(&response.into_body().read_to_string().unwrap());
        let session = read_json(
            agent
                .get(demos[0].url("/api/session"))
                .header("Cookie", format!("session_id={id}"))
                .call()
                .unwrap(),
        );
        let alice = SessionFilter {
            user_id: Some(session["user_id"].as_str().unwrap().to_owned()),
            ..SessionFilter::default()
        };
        assert_eq!(
            manager.count(&alice).unwrap(),
            1,
            "round {round}: signed in"
        );
        let gate = Arc::new(Barrier::new(9));
        let mut racers: Vec<_> = (0..8)
            .map(|writer| {
                let (gate, base, id) = (
                    Arc::clone(&gate),
                    demos[writer % demos.len()].base.clone(),
                    id.clone(),
                );
                std::thread::spawn(move || {
                    let agent = http();
                    gate.wait();
                    let heartbeat = writer % 2 == 0;
                    let response = if heartbeat {
                        // Writes back the user it loaded.
                        agent
                            .post(format!("{base}/api/heartbeat"))
                            .header("Cookie", format!("session_id={id}"))
                            .send_empty()
                    } else {
                        agent
                            .put(format!("{base}/api/keys/w{writer}"))
                            .header("Cookie", format!("session_id={id}"))
                            .header("Content-Type", "application/json")
                            .send("1")
                    }
                    .unwrap();
                    let kind = if heartbeat { "heartbeat" } else { "key" };
                    (kind, response.status().as_u16(), session_cookie(&response))
                })
            })
            .collect();
        let logout = {
            let (gate, base, id, token) = (
                Arc::clone(&gate),
                demos[round % demos.len()].base.clone(),
                id.clone(),
                token.clone(),
            );
            std::thread::spawn(move || {
                let agent = http();
                gate.wait();
                let response = agent
                    .post(format!("{base}/logout"))
                    .header("Cookie", format!("session_id={id}"))
                    .send_form([("csrf_token", token)])
                    .unwrap();
                (
                    "logout",
                    response.status().as_u16(),
                    session_cookie(&response),
                )
            })
        };
        racers.push(logout);
        for (kind, status, new_cookie) in racers.into_iter().map(|racer| racer.join().unwrap()) {
            let expected: &[u16] = match kind {
                "logout" => &[303],
                // 401: loaded after the logout, it found no login to refresh.
                "heartbeat" => &[204, 401, 409],
                _ => &[204, 409],
            };
            assert!(
                expected.contains(&status),
                "round {round}: {kind} answered {status}"
            );
            refused += usize::from(status == 409);
            refused_heartbeats += usize::from(kind == "heartbeat" && status == 409);
            // A write after the logout starts a new, anonymous session.
            if let Some(new_id) = new_cookie.filter(|new_id| !new_id.is_empty()) {
                let session = read_json(
                    agent
                        .get(demos[0].url("/api/session"))
                        .header("Cookie", format!("session_id={new_id}"))
                        .call()
                        .unwrap(),
                );
                assert_eq!(
                    session["user_id"],
                    Value::Null,
                    "round {round}: logged back in"
                );
            }
        }
        // No write, late or not, left a session signed in as the user.
        assert_eq!(
            manager.count(&alice).unwrap(),
            0,
            "round {round}: a session of the user survived the logout"
        );
        for demo in demos {
            let response = agent
                .get(demo.url("/profile"))
                .header("Cookie", format!("session_id={id}"))
                .call()
                .unwrap();
            assert_eq!(
                response.status(),
                303,
                "round {round}: the old id still logs in"
            );
            let session = read_json(
                agent
                    .get(demo.url("/api/session"))
                    .header("Cookie", format!("session_id={id}"))
                    .call()
                    .unwrap(),
            );
            assert_eq!(
                session["is_new"],
                json!(true),
                "round {round}: the old session came back"
            );
        }
    }
    Races {
        rounds,
        refused,
        refused_heartbeats,
    }
}

fn suite(name: &str, db: &TestDatabase, instances: usize) -> Counted {
    let workdir = tempfile::tempdir().unwrap();
    let mut demos: Vec<Demo> = (0..instances)
        .map(|i| Demo::spawn(&format!("{name}-{i}"), db.url(), workdir.path()))
        .collect();
    demos.iter_mut().for_each(Demo::wait);
    let counted = counters(&demos);
    println!("| backend | requests | failed | requests/s | p50 | p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "{}",
        counted.row(&format!("{name}, {instances} instance(s), counter"))
    );
    assert_eq!(counted.failures, 0, "requests failed under load");
    let keys = sixteen_keys_on_one_session(&demos);
    println!("{name}: {keys} concurrent key writes on one session, none lost");
    let races = logout_races_writes(&demos, &db.manager());
    println!(
        "{name}: {} logout races, never logged back in ({} late writes refused with 409, {} of them heartbeats carrying the login)",
        races.rounds, races.refused, races.refused_heartbeats
    );
    counted
}

#[test]
#[ignore = "load over HTTP against the demo binary; run by .ci/run (--include-ignored)"]
fn sqlite() {
    suite("SQLite", &TestDatabase::sqlite(), 1);
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "load over HTTP against two demo processes on PostgreSQL; run by .ci/run (--include-ignored)"]
fn postgres_one_and_two_instances() {
    let one = suite("PostgreSQL", &TestDatabase::postgres(), 1);
    let two = suite("PostgreSQL", &TestDatabase::postgres(), 2);
    println!(
        "PostgreSQL scaling: two instances {:.0} requests/s over one {:.0} = {:.2}x",
        two.throughput(),
        one.throughput(),
        two.throughput() / one.throughput()
    );
}
