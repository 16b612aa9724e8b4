//! An app's own tables in the session database: its migrations run on our
//! pool (`Database::run_app_migrations`) or beside ours through Diesel's own
//! harness (`session_migrations`, "the two-step way"), and its queries through
//! `with_connection!`. The app is a `notes` table (tests/fixtures/notes_migrations).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::sync::{Arc, Barrier};

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use shared_model::test_util::TestDatabase;
use shared_model::{
    backend_tests, session_migrations, with_connection, AppMigrations, Backend, Database, Error,
    NewSession, SessionManager, SessionToken,
};

mod schema {
    #![allow(missing_docs)] // as `diesel print-schema` writes it
    diesel::table! {
        notes (id) {
            id -> Integer,
            author -> Text,
            body -> Text,
        }
    }
}
use schema::notes;

// `embed_migrations!` needs a const context (its table must be `'static`).
const NOTES_SQLITE: EmbeddedMigrations =
    embed_migrations!("tests/fixtures/notes_migrations/sqlite");
const NOTES_POSTGRES: EmbeddedMigrations =
    embed_migrations!("tests/fixtures/notes_migrations/postgres");
const NOTES_MYSQL: EmbeddedMigrations = embed_migrations!("tests/fixtures/notes_migrations/mysql");

const NOTES: AppMigrations = AppMigrations::new()
    .sqlite(NOTES_SQLITE)
    .postgres(NOTES_POSTGRES)
    .mysql(NOTES_MYSQL);

/// The fixture's one migration, by name and by version.
const NOTES_NAME: &str = "2026-12-10-000000_create_notes";
const NOTES_VERSION: &str = "20261210000000";

/// An app's error type: the macro's body may use its own, given a `From`.
#[derive(Debug)]
#[allow(dead_code)] // the fields are read through `Debug`
enum AppError {
    Store(Error),
    Query(diesel::result::Error),
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        Self::Store(error)
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Query(error)
    }
}

/// Writes a note and reads every note back, through `with_connection!`.
fn add_and_list_notes(
    db: &Database,
    author: &str,
    body: &str,
) -> Result<Vec<(String, String)>, AppError> {
    with_connection!(db, |conn| {
        diesel::insert_into(notes::table)
            .values((notes::author.eq(author), notes::body.eq(body)))
            .execute(conn)?;
        Ok(notes::table
            .select((notes::author, notes::body))
            .order(notes::id)
            .load(conn)?)
    })
}

/// Each version recorded in Diesel's migrations table.
fn recorded_versions(db: &TestDatabase) -> Vec<String> {
    let mut versions = db.query_strings("SELECT version AS value FROM __diesel_schema_migrations");
    versions.sort();
    versions
}

/// A session written and read back through the session store: the `sessions`
/// table has the columns the store needs.
fn sessions_work(db: &Database) {
    let manager = SessionManager::new(db.clone());
    let created = manager
        .create(
            &SessionToken::generate().unwrap(),
            NewSession::expiring(Utc::now() + Duration::minutes(5)),
        )
        .unwrap();
    assert_eq!(manager.get(&created.id).unwrap().unwrap().id, created.id);
}

/// The two-step way from `shared_model::session_migrations`' docs, on one
/// SQLite connection: ours, then the app's, both recorded in one table; again,
/// nothing. Catches our constants not being the real migrations (the sessions
/// table would be missing or short of columns), the app's versions clashing
/// with ours, and a second run re-applying either.
#[test]
fn two_step_harness_runs_ours_then_the_apps_on_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("app.sqlite").display().to_string();
    let mut conn = SqliteConnection::establish(&url).unwrap();

    let ours = conn
        .run_pending_migrations(session_migrations::SQLITE)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert_eq!(ours, ["20261127000000", "20261202000000"]);
    let apps = conn
        .run_pending_migrations(NOTES_SQLITE)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert_eq!(apps, [NOTES_VERSION]);

    assert!(conn
        .pending_migrations(session_migrations::SQLITE)
        .unwrap()
        .is_empty());
    assert!(conn.pending_migrations(NOTES_SQLITE).unwrap().is_empty());
    assert!(conn
        .run_pending_migrations(session_migrations::SQLITE)
        .unwrap()
        .is_empty());
    assert!(conn
        .run_pending_migrations(NOTES_SQLITE)
        .unwrap()
        .is_empty());
    let mut recorded: Vec<String> = conn
        .applied_migrations()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    recorded.sort();
    assert_eq!(
        recorded,
        ["20261127000000", "20261202000000", NOTES_VERSION]
    );

    // Both tables have the columns their code uses.
    diesel::insert_into(notes::table)
        .values((notes::author.eq("alice"), notes::body.eq("hello")))
        .execute(&mut conn)
        .unwrap();
    let stored: Vec<(i32, String, String)> = notes::table.load(&mut conn).unwrap();
    assert_eq!(stored, [(1, "alice".to_owned(), "hello".to_owned())]);
    drop(conn);

    // Our pool agrees: nothing pending on either side.
    let db = Database::connect(&url).unwrap();
    assert!(db.pending_migrations().unwrap().is_empty());
    assert!(db.pending_app_migrations(&NOTES).unwrap().is_empty());
    assert!(db.run_app_migrations(&NOTES).unwrap().is_empty());
    sessions_work(&db);
}

/// Pending, run, pending again, run again, on a migrated session database;
/// then the table is used through `with_connection!`. Catches a run that
/// reports the wrong migrations, runs them twice, or touches ours, and a macro
/// arm that is missing or wrong for this backend.
fn app_migrations_run_once_beside_ours(db: &TestDatabase) {
    let database = db.database();
    assert_eq!(
        database.pending_app_migrations(&NOTES).unwrap(),
        [NOTES_NAME]
    );
    assert_eq!(
        database.run_app_migrations(&NOTES).unwrap(),
        [NOTES_VERSION]
    );
    assert!(database.pending_app_migrations(&NOTES).unwrap().is_empty());
    assert!(database.run_app_migrations(&NOTES).unwrap().is_empty());
    assert!(database.pending_migrations().unwrap().is_empty());
    assert_eq!(
        recorded_versions(db),
        ["20261127000000", "20261202000000", NOTES_VERSION]
    );

    add_and_list_notes(&database, "alice", "first").unwrap();
    let listed = add_and_list_notes(&database, "bob", "second").unwrap();
    assert_eq!(
        listed,
        [
            ("alice".to_owned(), "first".to_owned()),
            ("bob".to_owned(), "second".to_owned())
        ]
    );
    sessions_work(&database);
}

/// A body's error comes back as the caller's error type, and the pool lends
/// the connection again afterwards.
fn with_connection_returns_the_bodys_error(db: &TestDatabase) {
    let database = db.database();
    // No `notes` table: the app's migrations never ran.
    let failed = add_and_list_notes(&database, "alice", "lost");
    assert!(matches!(failed, Err(AppError::Query(_))), "{failed:?}");
    database.run_app_migrations(&NOTES).unwrap();
    assert_eq!(
        add_and_list_notes(&database, "alice", "kept")
            .unwrap()
            .len(),
        1
    );
}

/// App instances starting together on one database: each runs the app's
/// migrations at once; one applies them, the others find nothing to do, none
/// fails. Catches `run_app_migrations` running without our migration lock
/// (two would both see the migration pending and one would fail creating
/// `notes`, or recording its version).
fn concurrent_app_migration_runs_wait_for_each_other(db: &TestDatabase) {
    const INSTANCES: usize = 4;
    let barrier = Arc::new(Barrier::new(INSTANCES));
    let runs: Vec<_> = (0..INSTANCES)
        .map(|_| {
            let database = Database::builder(db.url()).min_idle(0).connect().unwrap();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                database.run_app_migrations(&NOTES)
            })
        })
        .collect();
    let mut applied: Vec<Vec<String>> = runs
        .into_iter()
        .map(|run| run.join().unwrap().unwrap())
        .collect();
    applied.sort();
    let mut expected = vec![Vec::new(); INSTANCES - 1];
    expected.push(vec![NOTES_VERSION.to_owned()]);
    assert_eq!(applied, expected);
}

/// Migrations given for other backends only are refused with an error naming
/// the database's backend, and nothing runs. Catches falling back to another
/// backend's SQL, or to doing nothing silently.
fn a_backend_without_app_migrations_is_refused(db: &TestDatabase) {
    let database = db.database();
    let others = match db.backend() {
        Backend::Sqlite => AppMigrations::new()
            .postgres(NOTES_POSTGRES)
            .mysql(NOTES_MYSQL),
        Backend::Postgres => AppMigrations::new().sqlite(NOTES_SQLITE).mysql(NOTES_MYSQL),
        Backend::Mysql => AppMigrations::new()
            .sqlite(NOTES_SQLITE)
            .postgres(NOTES_POSTGRES),
    };
    let name = db.backend().to_string();
    for result in [
        database.run_app_migrations(&others),
        database.pending_app_migrations(&others),
    ] {
        match result {
            Err(Error::Migration(migrations::Error::NoMigrationsFor { backend })) => {
                assert_eq!(backend, name);
            }
            other => panic!("expected NoMigrationsFor, got {other:?}"),
        }
    }
    let message = database
        .run_app_migrations(&AppMigrations::new())
        .unwrap_err()
        .to_string();
    assert!(message.contains(&name), "{message}");
    assert_eq!(
        recorded_versions(db),
        ["20261127000000", "20261202000000"],
        "nothing ran"
    );
}

/// One folder for every backend: the SQL fails on all of them.
const BROKEN: EmbeddedMigrations = embed_migrations!("tests/fixtures/broken_migrations");

/// A failing app migration is reported as such, is not recorded, and leaves
/// the migration lock free: another pool (another app instance) migrates at
/// once afterwards. Catches the lock leaking on an error path (PostgreSQL's
/// advisory lock and MySQL's `GET_LOCK` belong to the connection, which goes
/// back to the pool still holding them; the next run elsewhere would wait a
/// minute, then fail).
fn a_failed_app_migration_releases_the_lock(db: &TestDatabase) {
    let database = db.database();
    let broken = AppMigrations::new()
        .sqlite(BROKEN)
        .postgres(BROKEN)
        .mysql(BROKEN);
    match database.run_app_migrations(&broken) {
        Err(Error::Migration(migrations::Error::Migration(_))) => {}
        other => panic!("expected a failed migration, got {other:?}"),
    }
    assert_eq!(
        database.pending_app_migrations(&broken).unwrap(),
        ["2026-12-11-000000_broken"]
    );

    let other_instance = Database::builder(db.url())
        .min_idle(0)
        .connection_timeout(std::time::Duration::from_secs(20))
        .connect()
        .unwrap();
    // A lock left held would make this wait out the lock timeout and fail.
    assert_eq!(
        other_instance.run_app_migrations(&NOTES).unwrap(),
        [NOTES_VERSION]
    );
}

/// A body that fails costs one extra `SELECT 1` (the check that the connection
/// still answers, so a dead one is dropped from the pool); one that succeeds
/// costs nothing extra. Catches the check going missing from the path apps use
/// (`with_connection`) or running after every body.
fn only_a_failed_body_is_followed_by_a_ping(db: &TestDatabase) {
    let database = db.database();
    let before = database.statement_counts();
    let succeeded: Result<(), AppError> = with_connection!(database, |_conn| Ok(()));
    succeeded.unwrap();
    assert_eq!(database.statement_counts() - before, Default::default());

    let before = database.statement_counts();
    let failed: Result<(), AppError> =
        with_connection!(database, |_conn| Err(AppError::Query(diesel::NotFound)));
    assert!(failed.is_err());
    let spent = database.statement_counts() - before;
    assert_eq!((spent.reads, spent.total()), (1, 1), "{spent:?}");
}

backend_tests!(
    app_migrations_run_once_beside_ours,
    with_connection_returns_the_bodys_error,
    concurrent_app_migration_runs_wait_for_each_other,
    a_backend_without_app_migrations_is_refused,
    a_failed_app_migration_releases_the_lock,
    only_a_failed_body_is_followed_by_a_ping,
);
