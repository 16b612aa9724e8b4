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
    assert_eq!(
        fixture.stored(&fixture.bob).unwrap().expires_at,
        shared_model::EXPIRED_AT,
        "the fixed instant in the past, whatever the clock"
    );
    // An already expired session is expired the same way (never later).
    let carol = &fixture.carol[1];
    inspector(&fixture.url())
        .args(["expire", &carol.id.to_string()])
        .assert()
        .success();
    assert_eq!(
        fixture.stored(carol).unwrap().expires_at,
        shared_model::EXPIRED_AT
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

/// While another process purges the same database (here the fixture's own
/// manager, paused after its first one-row batch), `purge` on PostgreSQL and
/// MySQL deletes nothing and exits with status 3; on SQLite it purges what is
/// left. `--batch-size` is honoured and checked.
fn purge_while_another_purges_exits_with_status_3(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let (paused, wait_paused) = std::sync::mpsc::channel();
    let (resume, wait_resume) = std::sync::mpsc::channel::<()>();
    let purger = &fixture.manager;
    let (purged, output) = std::thread::scope(|scope| {
        // Owned by this closure: a panic below drops it, which ends the
        // purger's wait instead of leaving the scope waiting for it.
        let resume = resume;
        let purging = scope.spawn(move || {
            let mut first = true;
            purger.purge_expired_with(1, |_| {
                if std::mem::take(&mut first) {
                    paused.send(()).unwrap();
                    wait_resume.recv().unwrap();
                }
            })
        });
        wait_paused.recv().unwrap();
        let output = inspector(&fixture.url())
            .args(["purge", "--batch-size", "1"])
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        resume.send(()).unwrap();
        (purging.join().unwrap().unwrap(), output)
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    if db.backend() == shared_model::Backend::Sqlite {
        assert!(output.status.success(), "{stderr}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "removed 1 expired session(s)\n"
        );
        assert_eq!(purged, 1);
    } else {
        assert_eq!(output.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("another"), "{stderr}");
        assert!(output.stdout.is_empty());
        assert_eq!(purged, 2);
    }
    assert!(fixture.carol.iter().all(|s| fixture.stored(s).is_none()));
    for refused in ["0", "10001"] {
        inspector(&fixture.url())
            .args(["purge", "--batch-size", refused])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--batch-size"));
    }
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
    for command in [
        &["stats"][..],
        &["list"],
        &["expire", "--user", "alice", "--yes"],
    ] {
        inspector(empty.to_str().unwrap())
            .args(command)
            .assert()
            .failure()
            .stderr(predicate::str::contains("there is no sessions table"));
    }
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "not migrated");

    // A `file:` URI is checked too: nothing is created behind it.
    let uri_path = dir.path().join("uri.sqlite");
    inspector(&format!("file:{}", uri_path.display()))
        .arg("list")
        .assert()
        .failure()
        .stderr(predicate::str::contains("no SQLite database at"));
    assert!(!uri_path.exists());
}

/// `--read-only` opens the very file a plain path names, whatever characters
/// its name holds, as the writable mode does.
#[test]
fn read_only_opens_the_same_file_for_odd_names() {
    let dir = tempfile::tempdir().unwrap();
    let decoy = dir.path().join("q");
    let odd = dir.path().join("q?x #%.db");
    for (path, count) in [(&decoy, "3"), (&odd, "5")] {
        inspector(path.to_str().unwrap())
            .args(["seed", "--count", count])
            .assert()
            .success();
    }
    let doubled = format!("/{}", odd.display());
    for url in [odd.to_str().unwrap(), doubled.as_str()] {
        for read_only in [false, true] {
            let mut command = inspector(url);
            if read_only {
                command.arg("--read-only");
            }
            let listed = json_output(command.args(["list", "--json"]));
            assert_eq!(
                listed.as_array().unwrap().len(),
                5,
                "{url} read_only={read_only}"
            );
        }
    }
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

// ---- filters -------------------------------------------------------------

/// The ids a `list --json` (or NDJSON export) printed.
fn ids_of(listed: &Value) -> Vec<String> {
    let mut ids: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn ids(sessions: &[&shared_model::Session]) -> Vec<String> {
    let mut ids: Vec<String> = sessions.iter().map(|s| s.id.to_string()).collect();
    ids.sort();
    ids
}

/// The filter arguments each filter test uses, with the sessions they select
/// in the fixture (devices added).
fn filter_cases<'f>(
    fixture: &'f Fixture<'_>,
) -> Vec<(Vec<String>, Vec<&'f shared_model::Session>)> {
    let args = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let bob_prefix = fixture.bob.id.to_string()[..8].to_owned();
    vec![
        (args(&["--user", "alice"]), fixture.alice.iter().collect()),
        (
            args(&["--status", "expired"]),
            fixture.carol.iter().collect(),
        ),
        (
            args(&["--status", "active"]),
            vec![
                &fixture.alice[0],
                &fixture.alice[1],
                &fixture.bob,
                &fixture.anonymous,
            ],
        ),
        // Case-insensitive, anywhere in the data.
        (args(&["--search", "ESPRESSO"]), vec![&fixture.alice[0]]),
        (
            args(&["--ip", "203.0.113."]),
            fixture.alice.iter().collect(),
        ),
        (args(&["--ip", "2001:db8::"]), vec![&fixture.bob]),
        (
            vec!["--id-prefix".to_owned(), bob_prefix],
            vec![&fixture.bob],
        ),
        // Filters combine.
        (
            args(&["--user", "alice", "--search", "flash"]),
            vec![&fixture.alice[1]],
        ),
        (args(&["--user", "carol", "--status", "active"]), vec![]),
    ]
}

fn list_applies_every_filter(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    fixture.add_devices();
    for (args, expected) in filter_cases(&fixture) {
        let listed = json_output(
            inspector(&fixture.url())
                .arg("list")
                .args(&args)
                .arg("--json"),
        );
        assert_eq!(ids_of(&listed), ids(&expected), "list {args:?}");
    }
}

fn list_shows_the_device_columns(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    fixture.add_devices();
    let safari = shared_model::browser_label(Some(common::SAFARI_IPHONE));
    let firefox = shared_model::browser_label(Some(common::FIREFOX_LINUX));
    inspector(&fixture.url())
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("IP"))
        .stdout(predicate::str::contains("BROWSER"))
        .stdout(predicate::str::contains("2001:db8::b"))
        .stdout(predicate::str::contains("203.0.113.10"))
        .stdout(predicate::str::contains(safari.as_str()))
        .stdout(predicate::str::contains(firefox.as_str()));
    let listed = json_output(inspector(&fixture.url()).args(["list", "--json"]));
    let by_id = |session: &shared_model::Session| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == session.id.to_string())
            .unwrap()
            .clone()
    };
    let bob = by_id(&fixture.bob);
    assert_eq!(bob["ip_address"], "2001:db8::b");
    assert_eq!(bob["user_agent"], common::SAFARI_IPHONE);
    assert_eq!(bob["browser"], safari.as_str());
    assert_eq!(bob["remembered"], true);
    assert!(bob["last_seen_at"].is_string());
    let alice = by_id(&fixture.alice[0]);
    assert_eq!(alice["remembered"], false);
    assert_eq!(alice["browser"], firefox.as_str());
    let carol = by_id(&fixture.carol[0]);
    assert!(carol["ip_address"].is_null() && carol["browser"].is_null());
    let shown = json_output(inspector(&fixture.url()).args(["show", &fixture.bob.id.to_string()]));
    assert_eq!(shown["ip_address"], "2001:db8::b");
    assert_eq!(shown["browser"], safari.as_str());
    assert_eq!(shown["remembered"], true);
}

// ---- masking and cookies -------------------------------------------------

fn a_corrupt_row_is_shown_without_its_raw_text_unless_revealed(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let id = fixture.bob.id.to_string();
    db.execute(&format!(
        "UPDATE sessions SET data = 'password={SECRET}' WHERE id = '{id}'"
    ));
    let shown = json_output(inspector(&fixture.url()).args(["show", &id]));
    assert!(shown["corrupt"].is_string());
    assert!(shown.get("raw_data").is_none(), "{shown}");
    assert!(!shown.to_string().contains(SECRET));
    let revealed = json_output(inspector(&fixture.url()).args(["show", &id, "--reveal"]));
    assert_eq!(revealed["raw_data"], format!("password={SECRET}"));
    inspector(&fixture.url())
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("CORRUPT"))
        .stdout(predicate::str::contains(SECRET).not());
    let exported = stdout_of(inspector(&fixture.url()).args(["export", "--format", "ndjson"]));
    assert!(!String::from_utf8(exported).unwrap().contains(SECRET));
}

const SECRET: &str = "hunter2-not-for-your-eyes";
const CSRF: &str = "f00dfeedcafe0123";

/// A session holding a password and a CSRF token, created as the app would
/// (a real token), returned with the token.
fn session_with_secrets(
    fixture: &Fixture<'_>,
) -> (shared_model::SessionToken, shared_model::Session) {
    let token = shared_model::SessionToken::generate().unwrap();
    let session = fixture
        .manager
        .create(
            &token,
            shared_model::NewSession {
                data: common::data(serde_json::json!({
                    "password": SECRET,
                    "csrf_token": CSRF,
                    "cart": ["kettle"],
                })),
                user_id: Some("dave"),
                ..shared_model::NewSession::expiring(
                    chrono::Utc::now() + chrono::Duration::hours(1),
                )
            },
        )
        .unwrap();
    (token, session)
}

fn show_and_list_mask_secrets_unless_revealed(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let (_, session) = session_with_secrets(&fixture);
    let id = session.id.to_string();
    let masked_commands: [&[&str]; 2] = [&["show", &id], &["list", "--user", "dave", "--json"]];
    for command in masked_commands {
        let output = inspector(&fixture.url()).args(command).assert().success();
        let stdout = String::from_utf8(output.get_output().stdout.clone()).unwrap();
        assert!(
            !stdout.contains(SECRET) && !stdout.contains(CSRF),
            "{command:?}: {stdout}"
        );
        assert!(
            stdout.contains(session_inspector::mask::MASK),
            "{command:?}"
        );
        assert!(stdout.contains("kettle"), "other values are shown");
        inspector(&fixture.url())
            .args(command)
            .arg("--reveal")
            .assert()
            .success()
            .stdout(predicate::str::contains(SECRET))
            .stdout(predicate::str::contains(CSRF));
    }
    // The table shows key names only.
    inspector(&fixture.url())
        .args(["list", "--user", "dave"])
        .assert()
        .success()
        .stdout(predicate::str::contains("password"))
        .stdout(predicate::str::contains(SECRET).not());
}

fn show_by_cookie_finds_the_session_of_a_real_token(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let (token, session) = session_with_secrets(&fixture);
    let cookie = token.expose_secret().to_owned();
    let shown = json_output(inspector(&fixture.url()).args(["show", "--cookie", &cookie]));
    assert_eq!(shown["id"], session.id.to_string());
    assert_eq!(shown["user_id"], "dave");
    assert_eq!(shown["data"]["password"], session_inspector::mask::MASK);
    // A pasted `name=value` pair, and the value on standard input.
    let pair = json_output(inspector(&fixture.url()).args([
        "show",
        "--cookie",
        &format!("session_id={cookie}"),
    ]));
    assert_eq!(pair["id"], session.id.to_string());
    let piped = json_output(
        inspector(&fixture.url())
            .args(["show", "--cookie", "-"])
            .write_stdin(format!("{cookie}\n")),
    );
    assert_eq!(piped["id"], session.id.to_string());
    // The cookie is not the id: pasting the id as a cookie is refused.
    for garbage in [
        "not-a-token",
        session.id.to_string().as_str(),
        &cookie[..42],
    ] {
        inspector(&fixture.url())
            .args(["show", "--cookie", garbage])
            .assert()
            .failure()
            .stdout("")
            .stderr(predicate::str::contains("not a session token"))
            .stderr(predicate::str::contains(garbage).not());
    }
    // A well-formed token nobody uses.
    let unused = shared_model::SessionToken::generate().unwrap();
    inspector(&fixture.url())
        .args(["show", "--cookie", unused.expose_secret()])
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!(
            "no session with id {}",
            unused.public_id()
        )))
        .stderr(predicate::str::contains(unused.expose_secret()).not());
    inspector(&fixture.url())
        .args(["show", &session.id.to_string(), "--cookie", &cookie])
        .assert()
        .failure()
        .code(2);
}

// ---- expire, extend, delete ----------------------------------------------

/// Which fixture sessions are still active.
fn active_ids(fixture: &Fixture<'_>) -> Vec<String> {
    let mut all = fixture.alice.clone();
    all.extend([fixture.bob.clone(), fixture.anonymous.clone()]);
    all.extend(fixture.carol.clone());
    let mut ids: Vec<String> = all
        .iter()
        .filter(|s| fixture.manager.load(&s.id).unwrap().is_some())
        .map(|s| s.id.to_string())
        .collect();
    ids.sort();
    ids
}

fn expire_by_filter_needs_yes_for_more_than_one(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let before = fixture.snapshot();
    inspector(&fixture.url())
        .args(["expire", "--user", "alice"])
        .assert()
        .failure()
        .stdout("")
        .stderr(predicate::str::contains("2 sessions match"))
        .stderr(predicate::str::contains("--yes"));
    assert_eq!(fixture.snapshot(), before, "nothing changed without --yes");
    inspector(&fixture.url())
        .args(["expire", "--user", "alice", "--yes"])
        .assert()
        .success()
        .stdout("expired 2 session(s)\n");
    assert!(fixture
        .alice
        .iter()
        .all(|s| fixture.manager.load(&s.id).unwrap().is_none()));
    assert!(
        fixture.alice.iter().all(|s| fixture.stored(s).is_some()),
        "expired, not deleted"
    );
    // One match needs no --yes; none is not an error.
    inspector(&fixture.url())
        .args(["expire", "--user", "bob"])
        .assert()
        .success()
        .stdout("expired 1 session(s)\n");
    inspector(&fixture.url())
        .args(["expire", "--user", "nobody"])
        .assert()
        .success()
        .stdout("expired 0 session(s)\n");
    assert_eq!(active_ids(&fixture), vec![fixture.anonymous.id.to_string()]);
    // Neither an id nor a filter; an id and a filter.
    inspector(&fixture.url())
        .arg("expire")
        .assert()
        .failure()
        .code(2);
    inspector(&fixture.url())
        .args(["expire", &fixture.anonymous.id.to_string(), "--user", "bob"])
        .assert()
        .failure()
        .code(2);
    assert_eq!(active_ids(&fixture), vec![fixture.anonymous.id.to_string()]);
}

/// The ids of the sessions whose expiry is the "expired by an admin" instant.
fn admin_expired_ids(fixture: &Fixture<'_>) -> Vec<String> {
    let (sessions, _) = fixture.snapshot();
    let mut ids: Vec<String> = sessions
        .iter()
        .filter(|s| s.expires_at == shared_model::EXPIRED_AT)
        .map(|s| s.id.to_string())
        .collect();
    ids.sort();
    ids
}

fn expire_applies_every_filter(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    fixture.add_devices();
    for (args, expected) in filter_cases(&fixture) {
        inspector(&fixture.url())
            .arg("expire")
            .args(&args)
            .arg("--yes")
            .assert()
            .success()
            .stdout(format!("expired {} session(s)\n", expected.len()));
        assert_eq!(
            admin_expired_ids(&fixture),
            ids(&expected),
            "expire {args:?}"
        );
        // Back to the start for the next case.
        for session in &expected {
            fixture
                .manager
                .set_expiry(&session.id, session.expires_at)
                .unwrap();
        }
        assert!(admin_expired_ids(&fixture).is_empty());
    }
}

fn delete_by_filter_needs_yes_and_deletes_only_matches(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let before = fixture.snapshot();
    inspector(&fixture.url())
        .args(["delete", "--status", "expired"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "2 sessions match; pass --yes to delete them all",
        ));
    assert_eq!(fixture.snapshot(), before);
    inspector(&fixture.url())
        .args(["delete", "--status", "expired", "--yes"])
        .assert()
        .success()
        .stdout("deleted 2 session(s)\n");
    assert!(fixture.carol.iter().all(|s| fixture.stored(s).is_none()));
    assert_eq!(fixture.count_all(), 4);
}

fn delete_applies_every_filter(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    fixture.add_devices();
    for (args, expected) in filter_cases(&fixture) {
        inspector(&fixture.url())
            .arg("delete")
            .args(&args)
            .arg("--yes")
            .assert()
            .success()
            .stdout(format!("deleted {} session(s)\n", expected.len()));
        for session in &expected {
            assert!(fixture.stored(session).is_none(), "delete {args:?}");
        }
        assert_eq!(
            fixture.count_all(),
            6 - expected.len() as u64,
            "delete {args:?}"
        );
        // Back to the start for the next case.
        let deleted: Vec<shared_model::Session> = expected.iter().map(|s| (*s).clone()).collect();
        fixture.manager.import(&deleted).unwrap();
        fixture.add_devices();
    }
}

fn extend_moves_the_expiry_later(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let bob = fixture.stored(&fixture.bob).unwrap();
    inspector(&fixture.url())
        .args(["extend", &bob.id.to_string(), "--minutes", "90"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(format!(
            "extended session {}",
            bob.id
        )));
    assert_eq!(
        fixture.stored(&bob).unwrap().expires_at,
        bob.expires_at + chrono::Duration::minutes(90),
        "counted from the stored expiry, which is later than now"
    );
    // An expired session is extended from now.
    let carol = &fixture.carol[0];
    let before = chrono::Utc::now();
    inspector(&fixture.url())
        .args(["extend", &carol.id.to_string(), "--minutes", "10"])
        .assert()
        .success();
    let expires_at = fixture.stored(carol).unwrap().expires_at;
    assert!(expires_at >= before + chrono::Duration::minutes(10) - chrono::Duration::seconds(1));
    assert!(expires_at <= chrono::Utc::now() + chrono::Duration::minutes(10));
    assert!(
        fixture.manager.load(&carol.id).unwrap().is_some(),
        "active again"
    );
    inspector(&fixture.url())
        .args(["extend", &bob.id.to_string(), "--minutes", "0"])
        .assert()
        .failure()
        .code(2);
    inspector(&fixture.url())
        .args([
            "extend",
            "9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d",
            "--minutes",
            "5",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no session with id"));
}

// ---- history and audit ---------------------------------------------------

fn history_shows_what_the_cli_did_with_actor_cli(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let bob = fixture.bob.id.to_string();
    let empty = json_output(inspector(&fixture.url()).args(["history", &bob, "--json"]));
    assert_eq!(empty, serde_json::json!([]), "imported rows have no events");
    inspector(&fixture.url())
        .args(["extend", &bob, "--minutes", "5"])
        .assert()
        .success();
    inspector(&fixture.url())
        .args(["expire", &bob])
        .assert()
        .success();
    let history = json_output(inspector(&fixture.url()).args(["history", &bob, "--json"]));
    let events = history.as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["kind"], "admin_expire", "newest first");
    assert_eq!(events[0]["actor"], "cli");
    assert_eq!(events[0]["session_id"], bob);
    assert_eq!(events[0]["user_id"], "bob");
    assert_eq!(events[1]["kind"], "admin_extend");
    assert_eq!(events[1]["actor"], "cli");
    inspector(&fixture.url())
        .args(["history", &bob])
        .assert()
        .success()
        .stdout(predicate::str::contains("KIND"))
        .stdout(predicate::str::contains("admin_expire"))
        .stdout(predicate::str::contains("cli"))
        .stdout(predicate::str::contains(fixture.bob.id.short()))
        .stdout(predicate::str::contains("2 event(s)"));
    // A user's history covers all their sessions, deleted ones included.
    inspector(&fixture.url())
        .args(["delete", &fixture.alice[0].id.to_string()])
        .assert()
        .success();
    inspector(&fixture.url())
        .args(["expire", "--user", "alice"])
        .assert()
        .success();
    let alice =
        json_output(inspector(&fixture.url()).args(["history", "--user", "alice", "--json"]));
    let kinds: Vec<(&str, &str, &str)> = alice
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["session_id"].as_str().unwrap(),
            )
        })
        .collect();
    let (first, second) = (
        fixture.alice[0].id.to_string(),
        fixture.alice[1].id.to_string(),
    );
    assert_eq!(
        kinds,
        vec![
            ("admin_expire", "cli", second.as_str()),
            ("admin_delete", "cli", first.as_str()),
        ]
    );
    inspector(&fixture.url())
        .args(["history", "--user", "alice", &bob])
        .assert()
        .failure()
        .code(2);
}

fn every_cli_write_is_audited_as_cli(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let url = fixture.url();
    let bob = fixture.bob.id.to_string();
    let writes: [&[&str]; 6] = [
        &["extend", &bob, "--minutes", "5"],
        &["expire", &bob],
        &["delete", &fixture.anonymous.id.to_string()],
        &["expire", "--user", "alice", "--yes"],
        &["delete", "--user", "carol", "--search", "kettle"],
        &["purge"],
    ];
    for write in writes {
        inspector(&url).args(write).assert().success();
    }
    let events = common::events(db);
    // extend, expire, delete, 2 bulk expiries, 1 bulk delete, then the purge
    // of carol's other session, alice's two and bob.
    assert_eq!(events.len(), 10, "{events:#?}");
    assert!(
        events.iter().all(|e| e.split(' ').nth(1) == Some("cli")),
        "{events:#?}"
    );
    assert_eq!(fixture.count_all(), 0);
}

fn history_explains_a_database_without_an_audit_log(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    db.execute("DROP TABLE session_events");
    inspector(&fixture.url())
        .args(["history", &fixture.bob.id.to_string()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no session_events table"));
    // Writes still work, unaudited.
    inspector(&fixture.url())
        .args(["expire", &fixture.bob.id.to_string()])
        .assert()
        .success()
        .stderr(predicate::str::contains("warning: no session_events table"));
}

// ---- read-only -----------------------------------------------------------

fn read_only_refuses_every_write_and_changes_nothing(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    fixture.add_devices();
    let before = fixture.snapshot();
    let bob = fixture.bob.id.to_string();
    let writes: [&[&str]; 9] = [
        &["expire", &bob],
        &["extend", &bob, "--minutes", "5"],
        &["delete", &bob],
        &["purge"],
        &["expire", "--user", "alice", "--yes"],
        &["expire", "--user", "bob"],
        &["delete", "--status", "expired", "--yes"],
        &["delete", "--ip", "2001:db8::"],
        &["seed", "--count", "3", "--force"],
    ];
    for write in writes {
        let (name, rest) = write.split_first().unwrap();
        let flag_first: Vec<&str> = ["--read-only", name]
            .into_iter()
            .chain(rest.iter().copied())
            .collect();
        let flag_last: Vec<&str> = write.iter().copied().chain(["--read-only"]).collect();
        for args in [flag_first, flag_last] {
            inspector(&fixture.url())
                .args(&args)
                .assert()
                .failure()
                .code(1)
                .stdout("")
                .stderr(predicate::str::contains("read-only"))
                .stderr(predicate::str::contains("--read-only"));
            assert_eq!(fixture.snapshot(), before, "{args:?} changed the database");
        }
    }
    // Reads work read-only.
    let reads: [&[&str]; 6] = [
        &["list"],
        &["show", &bob],
        &["stats"],
        &["history", &bob],
        &["export", "--format", "ndjson"],
        &["list", "--ip", "2001:db8::", "--json"],
    ];
    for read in reads {
        inspector(&fixture.url())
            .arg("--read-only")
            .args(read)
            .assert()
            .success();
    }
    assert_eq!(fixture.snapshot(), before);
}

fn a_read_only_connection_refuses_writes_itself(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let opened = session_inspector::open::open(
        &fixture.url(),
        session_inspector::open::OpenOptions {
            read_only: true,
            connections: 1,
            actor: shared_model::Actor::Cli,
        },
    )
    .unwrap();
    assert!(matches!(
        opened.writable(|| "delete".into()),
        Err(session_inspector::Error::ReadOnly { .. })
    ));
    // Past the guard, the database itself refuses.
    assert!(opened.manager.delete(&fixture.bob.id).is_err());
    assert!(opened
        .manager
        .change_expiry(&fixture.bob.id, shared_model::ExpiryChange::ExpireNow)
        .is_err());
    assert!(fixture.manager.load(&fixture.bob.id).unwrap().is_some());
}

// ---- export --------------------------------------------------------------

fn parse_csv(text: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text);
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

fn parse_ndjson(text: &[u8]) -> Vec<Value> {
    std::str::from_utf8(text)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn stdout_of(command: &mut Command) -> Vec<u8> {
    command.assert().success().get_output().stdout.clone()
}

fn export_round_trips_csv_and_ndjson_with_masking(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    fixture.add_devices();
    let (_, secret) = session_with_secrets(&fixture);
    let mut all = vec![
        &fixture.alice[0],
        &fixture.alice[1],
        &fixture.bob,
        &fixture.anonymous,
    ];
    all.extend(&fixture.carol);
    all.push(&secret);
    let url = fixture.url();

    let csv_text = stdout_of(inspector(&url).args(["export", "--format", "csv"]));
    let text = String::from_utf8(csv_text.clone()).unwrap();
    assert!(!text.contains(SECRET) && !text.contains(CSRF), "{text}");
    let (header, rows) = parse_csv(&csv_text);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(header[0], "id");
    let mut exported: Vec<String> = rows.iter().map(|r| r[column("id")].clone()).collect();
    exported.sort();
    assert_eq!(exported, ids(&all));
    let secret_row = rows
        .iter()
        .find(|r| r[column("id")] == secret.id.to_string())
        .unwrap();
    let data: Value = serde_json::from_str(&secret_row[column("data")]).unwrap();
    assert_eq!(data["password"], session_inspector::mask::MASK);
    assert_eq!(data["cart"], serde_json::json!(["kettle"]));
    let bob_row = rows
        .iter()
        .find(|r| r[column("id")] == fixture.bob.id.to_string())
        .unwrap();
    assert_eq!(bob_row[column("ip_address")], "2001:db8::b");
    assert_eq!(bob_row[column("remembered")], "true");
    let revealed = stdout_of(inspector(&url).args(["export", "--format", "csv", "--reveal"]));
    let (_, rows) = parse_csv(&revealed);
    let secret_row = rows
        .iter()
        .find(|r| r[column("id")] == secret.id.to_string())
        .unwrap();
    let data: Value = serde_json::from_str(&secret_row[column("data")]).unwrap();
    assert_eq!(data["password"], SECRET);

    let ndjson = stdout_of(inspector(&url).args(["export", "--format", "ndjson"]));
    assert!(!String::from_utf8(ndjson.clone()).unwrap().contains(SECRET));
    let lines = parse_ndjson(&ndjson);
    assert_eq!(ids_of(&Value::Array(lines.clone())), ids(&all));
    let line = lines
        .iter()
        .find(|l| l["id"] == secret.id.to_string())
        .unwrap();
    assert_eq!(line["data"]["password"], session_inspector::mask::MASK);
    assert_eq!(line["user_id"], "dave");
    let revealed = parse_ndjson(&stdout_of(
        inspector(&url).args(["export", "--format", "ndjson", "--reveal"]),
    ));
    let line = revealed
        .iter()
        .find(|l| l["id"] == secret.id.to_string())
        .unwrap();
    assert_eq!(line["data"]["password"], SECRET);
    assert_eq!(line["data"]["csrf_token"], CSRF);
}

fn export_writes_a_file_and_says_how_many(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.ndjson");
    // Longer than the export: truncated, not overwritten in place.
    std::fs::write(&path, "x".repeat(100_000)).unwrap();
    let path_text = path.display().to_string();
    inspector(&fixture.url())
        .args([
            "export", "--format", "ndjson", "--status", "active", "--output", &path_text,
        ])
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "exported 4 session(s) to {path_text}"
        )));
    let lines = parse_ndjson(&std::fs::read(&path).unwrap());
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l["status"] == "active"));
    let csv_path = dir.path().join("expired.csv");
    inspector(&fixture.url())
        .args(["export", "--format", "csv", "--status", "expired", "-o"])
        .arg(&csv_path)
        .assert()
        .success()
        .stderr(predicate::str::contains("exported 2 session(s)"));
    let (_, rows) = parse_csv(&std::fs::read(&csv_path).unwrap());
    assert_eq!(rows.len(), 2);
    // A directory that does not exist: a clear error naming the file.
    let missing = dir.path().join("nope").join("out.csv");
    inspector(&fixture.url())
        .args(["export", "--format", "csv", "--output"])
        .arg(&missing)
        .assert()
        .failure()
        .stderr(predicate::str::contains(missing.display().to_string()));
}

fn export_applies_every_filter(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    fixture.add_devices();
    for (args, expected) in filter_cases(&fixture) {
        let ndjson = stdout_of(
            inspector(&fixture.url())
                .args(["export", "--format", "ndjson"])
                .args(&args),
        );
        assert_eq!(
            ids_of(&Value::Array(parse_ndjson(&ndjson))),
            ids(&expected),
            "export {args:?}"
        );
        let csv_text = stdout_of(
            inspector(&fixture.url())
                .args(["export", "--format", "csv"])
                .args(&args),
        );
        let (_, rows) = parse_csv(&csv_text);
        let mut exported: Vec<String> = rows.iter().map(|r| r[0].clone()).collect();
        exported.sort();
        assert_eq!(exported, ids(&expected), "export csv {args:?}");
    }
}

// ---- schemas made elsewhere ----------------------------------------------

fn a_schema_from_our_sql_files_lists_with_a_warning_and_takes_seed_rows(db: &TestDatabase) {
    common::schema_from_sql_files(db, common::migration_count(db));
    inspector(db.url())
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("0 session(s)"))
        .stderr(predicate::str::starts_with("warning: "))
        .stderr(predicate::str::contains("__diesel_schema_migrations"));
    inspector(db.url())
        .args(["seed", "--count", "25"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("inserted 25 fake session(s)"));
    let manager = db.manager();
    assert_eq!(manager.count(&SessionFilter::default()).unwrap(), 25);
    // Seed ran no migration: the bookkeeping is still missing.
    inspector(db.url())
        .arg("stats")
        .assert()
        .success()
        .stdout(predicate::str::contains("total           25"))
        .stderr(predicate::str::contains("__diesel_schema_migrations"));
    let listed = json_output(inspector(db.url()).args(["list", "--json", "--limit", "100"]));
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["ip_address"].is_string() && s["browser"].is_string()));
}

fn an_older_schema_lists_without_device_fields(db: &TestDatabase) {
    common::schema_from_sql_files(db, 1);
    let id = shared_model::SessionToken::generate()
        .unwrap()
        .public_id()
        .to_string();
    db.execute(&format!(
        "INSERT INTO sessions (id, user_id, data, expires_at, created_at, updated_at, version) \
         VALUES ('{id}', 'alice', '{{\"cart\":[],\"password\":\"{SECRET}\"}}', \
         '2099-01-01 00:00:00', '2024-01-01 00:00:00', '2024-01-01 00:00:00', 1)"
    ));
    inspector(db.url())
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains(id.as_str()))
        .stderr(predicate::str::contains("warning: older schema"));
    let listed = json_output(inspector(db.url()).args(["list", "--json"]));
    let row = &listed[0];
    assert_eq!(row["id"], id.as_str());
    for field in [
        "ip_address",
        "user_agent",
        "browser",
        "last_seen_at",
        "timeout_seconds",
    ] {
        assert!(row[field].is_null(), "{field}: {row}");
    }
    assert_eq!(row["remembered"], false);
    assert_eq!(row["data"]["password"], session_inspector::mask::MASK);
    let shown = json_output(inspector(db.url()).args(["show", &id]));
    assert!(shown["ip_address"].is_null());
    let exported = parse_ndjson(&stdout_of(
        inspector(db.url()).args(["export", "--format", "ndjson"]),
    ));
    assert_eq!(exported.len(), 1);
    assert!(exported[0]["ip_address"].is_null());
    // What needs the missing columns says so.
    inspector(db.url())
        .args(["list", "--ip", "203.0.113."])
        .assert()
        .failure()
        .stderr(predicate::str::contains("column ip_address is missing"));
    inspector(db.url())
        .args(["history", &id])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no session_events table"));
    inspector(db.url())
        .args(["seed", "--count", "1", "--force"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("older schema"));
    // Admin writes work on the first schema's columns.
    inspector(db.url()).args(["expire", &id]).assert().success();
    let after = json_output(inspector(db.url()).args(["show", &id]));
    assert_eq!(after["status"], "expired");
    inspector(db.url()).args(["delete", &id]).assert().success();
    inspector(db.url())
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("0 session(s)"));
}

fn a_mistyped_or_missing_column_is_refused_by_name(db: &TestDatabase) {
    common::drop_session_tables(db);
    db.execute(
        "CREATE TABLE sessions (id VARCHAR(36) PRIMARY KEY, user_id TEXT, data TEXT, \
         expires_at TIMESTAMP NULL, created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL, \
         version TEXT)",
    );
    for command in [
        &["list"][..],
        &["stats"],
        &["seed", "--count", "1", "--force"],
    ] {
        inspector(db.url())
            .args(command)
            .assert()
            .failure()
            .stderr(predicate::str::contains("column version is"))
            .stderr(predicate::str::contains("expected 64-bit integer"))
            .stderr(predicate::function(|err: &str| err.lines().count() == 1));
    }
    common::drop_session_tables(db);
    db.execute(
        "CREATE TABLE sessions (id VARCHAR(36) PRIMARY KEY, data TEXT, \
         expires_at TIMESTAMP NULL, created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL, \
         version BIGINT)",
    );
    inspector(db.url())
        .arg("list")
        .assert()
        .failure()
        .stderr(predicate::str::contains("column user_id is missing"));
    inspector(db.url())
        .args(["seed", "--count", "1"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("column user_id is missing"));
}

fn seed_creates_the_schema_only_where_there_is_no_sessions_table(db: &TestDatabase) {
    common::drop_session_tables(db);
    inspector(db.url())
        .args(["seed", "--count", "10"])
        .assert()
        .success()
        .stderr(predicate::str::contains("--seed").not());
    let manager = db.manager();
    assert_eq!(manager.count(&SessionFilter::default()).unwrap(), 10);
    assert!(
        manager
            .database()
            .inspect_schema()
            .unwrap()
            .warnings()
            .is_empty(),
        "fully migrated"
    );
    inspector(db.url())
        .args(["seed", "--count", "10"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already holds 10 session(s)"))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(manager.count(&SessionFilter::default()).unwrap(), 10);
    inspector(db.url())
        .args(["seed", "--count", "5", "--force"])
        .assert()
        .success();
    assert_eq!(manager.count(&SessionFilter::default()).unwrap(), 15);
}

// ---- SQLite files --------------------------------------------------------

fn journal_mode(url: &str) -> String {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    let mut conn = diesel::SqliteConnection::establish(url).unwrap();
    let modes: Vec<Mode> = diesel::sql_query("PRAGMA journal_mode")
        .load(&mut conn)
        .unwrap();
    modes[0].journal_mode.clone()
}

/// Size, modification time and bytes of a file.
fn fingerprint(path: &std::path::Path) -> (std::time::SystemTime, Vec<u8>) {
    (
        std::fs::metadata(path).unwrap().modified().unwrap(),
        std::fs::read(path).unwrap(),
    )
}

#[test]
fn a_read_only_sqlite_file_is_never_changed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let seeded = dir.path().join("seeded.sqlite");
    inspector(seeded.to_str().unwrap())
        .args(["seed", "--count", "200"])
        .assert()
        .success();
    let copy = dir.path().join("read-only.sqlite");
    std::fs::copy(&seeded, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o444)).unwrap();
    let url = copy.to_str().unwrap();
    let before = fingerprint(&copy);
    // (Tests may run as root, whom file permissions do not stop: the
    // fingerprint is what proves nothing was written.)
    let listed =
        json_output(inspector(url).args(["--read-only", "list", "--limit", "500", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 200);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    for read in [
        &["list"][..],
        &["stats"],
        &["show", &id],
        &["export", "--format", "csv"],
    ] {
        inspector(url).args(read).assert().success();
        inspector(url)
            .arg("--read-only")
            .args(read)
            .assert()
            .success();
    }
    for write in [
        &["expire", &id][..],
        &["delete", &id],
        &["purge"],
        &["delete", "--status", "all", "--yes"],
        &["seed", "--count", "1", "--force"],
    ] {
        inspector(url)
            .args(write)
            .arg("--read-only")
            .assert()
            .failure()
            .stderr(predicate::str::contains("read-only"));
    }
    assert!(fingerprint(&copy) == before, "the file changed");
}

#[test]
fn the_journal_mode_of_a_sqlite_file_is_left_alone() {
    let db = TestDatabase::sqlite();
    // The fixture's pool is closed at the end of the statement, so the file
    // can be switched to the rollback journal.
    let id = Fixture::new(&db).bob.id.to_string();
    db.execute("PRAGMA journal_mode = DELETE");
    assert_eq!(journal_mode(db.url()), "delete");
    for command in [
        &["list"][..],
        &["--read-only", "stats"],
        &["expire", &id],
        &["extend", &id, "--minutes", "5"],
        &["seed", "--count", "5", "--force"],
        &["purge"],
    ] {
        inspector(db.url()).args(command).assert().success();
        assert_eq!(journal_mode(db.url()), "delete", "after {command:?}");
    }
}

#[test]
fn seed_ids_come_from_real_tokens_unless_a_seed_makes_them_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let ids_of_db = |name: &str, args: &[&str]| {
        let url = dir.path().join(name).display().to_string();
        let assert = inspector(&url)
            .args(["seed", "--count", "50"])
            .args(args)
            .assert()
            .success();
        let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        let listed = json_output(inspector(&url).args(["list", "--limit", "100", "--json"]));
        (ids_of(&listed), stderr)
    };
    let (first, warned) = ids_of_db("a.sqlite", &["--seed", "7"]);
    let (second, _) = ids_of_db("b.sqlite", &["--seed", "7"]);
    assert_eq!(first.len(), 50);
    assert_eq!(first, second, "the same seed, the same ids");
    assert!(
        warned.contains("warning: --seed makes reproducible session ids")
            && warned.contains("not for a database an app serves"),
        "{warned}"
    );
    let (random, quiet) = ids_of_db("c.sqlite", &[]);
    let (other, _) = ids_of_db("d.sqlite", &[]);
    assert!(!quiet.contains("warning"), "{quiet}");
    assert_eq!(random.len(), 50);
    assert!(random
        .iter()
        .all(|id| !other.contains(id) && !first.contains(id)));
    for id in &random {
        id.parse::<shared_model::SessionId>().unwrap();
    }
}

#[test]
fn seeded_sessions_have_realistic_devices() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("devices.sqlite").display().to_string();
    inspector(&url)
        .args(["seed", "--count", "300", "--seed", "3"])
        .assert()
        .success();
    let listed = json_output(inspector(&url).args(["list", "--limit", "300", "--json"]));
    let sessions = listed.as_array().unwrap();
    let ips: Vec<&str> = sessions
        .iter()
        .filter_map(|s| s["ip_address"].as_str())
        .collect();
    assert!(ips.len() > 250);
    assert!(ips.iter().any(|ip| ip.starts_with("203.0.113.")));
    assert!(ips.iter().any(|ip| ip.starts_with("2001:db8::")));
    assert!(sessions.iter().any(|s| s["remembered"] == true));
    assert!(sessions.iter().any(|s| s["remembered"] == false));
    let browsers: std::collections::HashSet<&str> = sessions
        .iter()
        .filter_map(|s| s["browser"].as_str())
        .collect();
    assert!(browsers.len() >= 4, "{browsers:?}");
    assert!(
        browsers.iter().all(|b| *b != "Unknown browser"),
        "{browsers:?}"
    );
    assert!(
        sessions
            .iter()
            .filter(|s| s["last_seen_at"].is_string())
            .count()
            > 250
    );
    inspector(&url)
        .args(["list", "--ip", "2001:db8::"])
        .assert()
        .success()
        .stdout(predicate::str::contains("2001:db8::"));
}

shared_model::backend_tests!(
    purge_while_another_purges_exits_with_status_3,
    list_applies_every_filter,
    list_shows_the_device_columns,
    show_and_list_mask_secrets_unless_revealed,
    a_corrupt_row_is_shown_without_its_raw_text_unless_revealed,
    show_by_cookie_finds_the_session_of_a_real_token,
    expire_by_filter_needs_yes_for_more_than_one,
    expire_applies_every_filter,
    delete_by_filter_needs_yes_and_deletes_only_matches,
    delete_applies_every_filter,
    extend_moves_the_expiry_later,
    history_shows_what_the_cli_did_with_actor_cli,
    every_cli_write_is_audited_as_cli,
    history_explains_a_database_without_an_audit_log,
    read_only_refuses_every_write_and_changes_nothing,
    a_read_only_connection_refuses_writes_itself,
    export_round_trips_csv_and_ndjson_with_masking,
    export_writes_a_file_and_says_how_many,
    export_applies_every_filter,
    a_schema_from_our_sql_files_lists_with_a_warning_and_takes_seed_rows,
    an_older_schema_lists_without_device_fields,
    a_mistyped_or_missing_column_is_refused_by_name,
    seed_creates_the_schema_only_where_there_is_no_sessions_table,
    list_shows_every_session_in_a_table,
    list_filters_by_user_status_and_limit,
    show_prints_the_session_as_json,
    show_reports_a_bad_id_and_a_missing_session_on_one_line,
    expire_ends_the_session_now,
    delete_removes_the_session,
    purge_removes_the_expired_sessions_and_says_how_many,
    stats_counts_sessions_and_users,
);
