//! The command line, run as a user would: the real binary on a scratch database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

mod common;

use shared_model::test_util::TestDatabase;

use assert_cmd::Command;
use common::Fixture;
use predicates::prelude::*;
use serde_json::Value;
use shared_model::SessionFilter;

fn inspector(url: &str) -> Command {
    let mut command = Command::cargo_bin("session-inspector").unwrap();
    command
        .env_remove("DATABASE_URL")
        .args(["--database-url", url]);
    command
}

fn json_output(command: &mut Command) -> Value {
    let output = command.assert().success().get_output().stdout.clone();
    serde_json::from_slice(&output).unwrap()
}

fn list_shows_every_session_in_a_table(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    inspector(&fixture.url())
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains(fixture.bob.id.to_string()))
        .stdout(predicate::str::contains("carol"))
        .stdout(predicate::str::contains("6 session(s)"))
        .stdout(predicate::str::contains("expired"));
}

fn list_filters_by_user_status_and_limit(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let listed = json_output(inspector(&fixture.url()).args(["list", "--user", "alice", "--json"]));
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    for session in &fixture.alice {
        assert!(ids.contains(&session.id.to_string().as_str()));
    }
    let expired =
        json_output(inspector(&fixture.url()).args(["list", "--status", "expired", "--json"]));
    let expired = expired.as_array().unwrap();
    assert_eq!(expired.len(), 2);
    assert!(expired
        .iter()
        .all(|s| s["status"] == "expired" && s["user_id"] == "carol"));
    let limited = json_output(inspector(&fixture.url()).args(["list", "--limit", "3", "--json"]));
    assert_eq!(limited.as_array().unwrap().len(), 3);
}

#[test]
fn list_rejects_an_unknown_status() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    inspector(&fixture.url())
        .args(["list", "--status", "stale"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("invalid value 'stale'"));
}

fn show_prints_the_session_as_json(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let shown =
        json_output(inspector(&fixture.url()).args(["show", &fixture.anonymous.id.to_string()]));
    assert_eq!(shown["id"], fixture.anonymous.id.to_string());
    assert_eq!(shown["data"]["theme"], "dark");
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["version"], 1);
}

fn show_reports_a_bad_id_and_a_missing_session_on_one_line(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    inspector(&fixture.url())
        .args(["show", "1' OR '1'='1"])
        .assert()
        .failure()
        .stdout("")
        .stderr(predicate::str::contains("is not a session id"))
        .stderr(predicate::function(|err: &str| err.lines().count() == 1));
    inspector(&fixture.url())
        .args(["show", "9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "no session with id 9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d",
        ));
}

fn expire_ends_the_session_now(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let id = fixture.bob.id.to_string();
    inspector(&fixture.url())
        .args(["expire", &id])
        .assert()
        .success()
        .stdout(format!("expired session {id}\n"));
    assert!(fixture.manager.load(&fixture.bob.id).unwrap().is_none());
    assert!(
        fixture.stored(&fixture.bob).is_some(),
        "expired, not deleted"
    );
    // An already expired session keeps its (earlier) expiry.
    let carol = &fixture.carol[1];
    inspector(&fixture.url())
        .args(["expire", &carol.id.to_string()])
        .assert()
        .success();
    assert_eq!(
        fixture.stored(carol).unwrap().expires_at,
        shared_model::truncate_to_micros(carol.expires_at)
    );
    inspector(&fixture.url())
        .args(["expire", "9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no session with id"));
    inspector(&fixture.url())
        .args(["expire", "not-an-id"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not a session id"));
}

fn delete_removes_the_session(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let id = fixture.alice[0].id.to_string();
    inspector(&fixture.url())
        .args(["delete", &id])
        .assert()
        .success()
        .stdout(format!("deleted session {id}\n"));
    assert!(fixture.stored(&fixture.alice[0]).is_none());
    inspector(&fixture.url())
        .args(["delete", &id])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no session with id"));
    inspector(&fixture.url())
        .args(["delete", "XYZ"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("is not a session id"));
    assert_eq!(fixture.count_all(), 5);
}

fn purge_removes_the_expired_sessions_and_says_how_many(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    inspector(&fixture.url())
        .arg("purge")
        .assert()
        .success()
        .stdout("removed 2 expired session(s)\n");
    assert_eq!(fixture.count_all(), 4);
    assert!(fixture.carol.iter().all(|s| fixture.stored(s).is_none()));
    inspector(&fixture.url())
        .arg("purge")
        .assert()
        .success()
        .stdout("removed 0 expired session(s)\n");
}

fn stats_counts_sessions_and_users(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    inspector(&fixture.url())
        .arg("stats")
        .assert()
        .success()
        .stdout(predicate::str::contains("total           6"))
        .stdout(predicate::str::contains("expired         2"))
        .stdout(predicate::str::contains("distinct users  3"));
    let stats = json_output(inspector(&fixture.url()).args(["stats", "--json"]));
    assert_eq!(stats["total"], 6);
    assert_eq!(stats["active"], 4);
    assert_eq!(stats["top_users"][0]["user_id"], "alice");
    assert_eq!(stats["top_users"][0]["sessions"], 2);
}

#[test]
fn seed_creates_a_migrated_database_with_realistic_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("demo.sqlite").display().to_string();
    inspector(&url)
        .args(["seed", "--count", "2500", "--seed", "42"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("inserted 2500 fake session(s)"));
    let manager = shared_model::SessionManager::new(shared_model::Database::connect(&url).unwrap());
    assert_eq!(manager.count(&SessionFilter::default()).unwrap(), 2500);
    let stats = manager.stats(72, 5).unwrap();
    assert!(
        stats.active > 0 && stats.expired > 0,
        "a mix of active and expired"
    );
    assert!(stats.distinct_users > 50);
    let carts = SessionFilter {
        data_contains: Some("\"cart\"".into()),
        ..SessionFilter::default()
    };
    assert!(
        manager.count(&carts).unwrap() > 500,
        "many sessions have a cart"
    );
    inspector(&url)
        .args(["list", "--limit", "1"])
        .assert()
        .success();
}

#[test]
fn seed_expired_fills_a_database_for_purge() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("expired.sqlite").display().to_string();
    inspector(&url)
        .args(["seed", "--count", "300", "--expired"])
        .assert()
        .success();
    let manager = shared_model::SessionManager::new(shared_model::Database::connect(&url).unwrap());
    let stats = manager.stats(72, 5).unwrap();
    assert_eq!((stats.total, stats.expired), (300, 300));
    inspector(&url)
        .arg("purge")
        .assert()
        .success()
        .stdout(predicate::str::contains("300"));
    assert_eq!(manager.count(&SessionFilter::default()).unwrap(), 0);
}

#[test]
fn commands_other_than_seed_never_create_or_migrate_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.sqlite");
    inspector(path.to_str().unwrap())
        .arg("list")
        .assert()
        .failure()
        .stderr(predicate::str::contains("no SQLite database at"));
    assert!(!path.exists());

    let empty = dir.path().join("empty.sqlite");
    std::fs::write(&empty, b"").unwrap();
    inspector(empty.to_str().unwrap())
        .arg("stats")
        .assert()
        .failure()
        .stderr(predicate::str::contains("pending migration"));
}

#[test]
fn an_unreachable_database_is_one_clear_error() {
    inspector("/nonexistent-directory/sessions.sqlite")
        .args(["seed", "--count", "1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "no SQLite database at /nonexistent-directory",
        ))
        .stderr(predicate::function(|err: &str| err.lines().count() == 1));
    inspector("/nonexistent-directory/sessions.sqlite")
        .arg("purge")
        .assert()
        .failure();
}

#[cfg(feature = "postgres")]
#[test]
fn an_unreachable_postgres_server_is_one_clear_error() {
    inspector("postgres://postgres@127.0.0.1:1/x")
        .arg("list")
        .assert()
        .failure()
        .stderr(predicate::str::contains("cannot connect to the database"))
        .stderr(predicate::function(|err: &str| err.lines().count() == 1));
}

#[cfg(not(feature = "postgres"))]
#[test]
fn a_postgres_url_without_the_feature_says_which_feature() {
    inspector("postgres://postgres@127.0.0.1:1/x")
        .arg("list")
        .assert()
        .failure()
        .stderr(predicate::str::contains("`postgres` cargo feature"));
}

#[test]
fn the_database_url_comes_from_the_environment_then_rocket_toml() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let dir = tempfile::tempdir().unwrap();
    let mut from_env = Command::cargo_bin("session-inspector").unwrap();
    from_env
        .current_dir(dir.path())
        .env("DATABASE_URL", fixture.url())
        .arg("stats")
        .assert()
        .success()
        .stdout(predicate::str::contains("total           6"));
    std::fs::write(
        dir.path().join("Rocket.toml"),
        format!("[default.session]\ndatabase_url = \"{}\"\n", fixture.url()),
    )
    .unwrap();
    let mut from_toml = Command::cargo_bin("session-inspector").unwrap();
    from_toml
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .arg("stats")
        .assert()
        .success()
        .stdout(predicate::str::contains("total           6"));
    std::fs::remove_file(dir.path().join("Rocket.toml")).unwrap();
    let mut by_default = Command::cargo_bin("session-inspector").unwrap();
    by_default
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .arg("stats")
        .assert()
        .failure()
        .stderr(predicate::str::contains("no SQLite database at db.sqlite"));
}

shared_model::backend_tests!(
    list_shows_every_session_in_a_table,
    list_filters_by_user_status_and_limit,
    show_prints_the_session_as_json,
    show_reports_a_bad_id_and_a_missing_session_on_one_line,
    expire_ends_the_session_now,
    delete_removes_the_session,
    purge_removes_the_expired_sessions_and_says_how_many,
    stats_counts_sessions_and_users,
);
