//! The purge across app instances: one purge at a time per database.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::sync::mpsc;

use chrono::{Duration, TimeZone, Utc};
use shared_model::test_util::TestDatabase;
use shared_model::{
    backend_tests, Backend, Database, Error, ManualClock, NewSession, SessionManager, SessionToken,
};

fn expired_sessions(manager: &SessionManager, clock: &ManualClock, count: usize) {
    for _ in 0..count {
        manager
            .create(
                &SessionToken::generate().unwrap(),
                NewSession::expiring(manager.now() + Duration::minutes(1)),
            )
            .unwrap();
    }
    clock.advance(Duration::minutes(2));
}

/// Runs `purger`'s purge in batches of one row, pausing it once after its
/// first batch to run `during`; returns the purge's total and what `during`
/// returned. (A later batch that finds nothing reports the same total, so it
/// pauses only once.)
fn while_purging<T: Send>(purger: &SessionManager, during: impl FnOnce() -> T) -> (u64, T) {
    let (first_batch_done, batch_done) = mpsc::channel();
    let (go_on, wait) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let purging = scope.spawn(move || {
            let mut paused = false;
            purger.purge_expired_with(1, |_| {
                if !paused {
                    paused = true;
                    first_batch_done.send(()).unwrap();
                    wait.recv().unwrap();
                }
            })
        });
        batch_done.recv().unwrap();
        let result = during();
        go_on.send(()).unwrap();
        (purging.join().unwrap().unwrap(), result)
    })
}

/// Two app instances (two managers, each with a pool of its own) on one
/// database: while the first purges, the second's purge is refused at once
/// on PostgreSQL and MySQL (SQLite has no lock to refuse with: its batches take
/// turns on the write lock, so the two purges share the rows). Once the first
/// is done, the second purges again: the lock was released. Another
/// database on the same server is not held up.
fn one_purge_runs_at_a_time_per_database(db: &TestDatabase) {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
    let first = db.manager().with_clock(clock.clone());
    let second = db.manager().with_clock(clock.clone());
    expired_sessions(&first, &clock, 3);

    let (first_total, second_result) = while_purging(&first, || second.purge_expired(10));
    match db.backend() {
        Backend::Sqlite => {
            let second_total = second_result.unwrap();
            assert_eq!(first_total + second_total, 3);
            assert_eq!(second_total, 2, "the second purge ran between two batches");
        }
        _ => {
            assert!(
                matches!(second_result, Err(Error::PurgeRunning)),
                "{second_result:?}"
            );
            assert_eq!(first_total, 3);
        }
    }
    assert_eq!(
        first
            .count(&shared_model::SessionFilter::default())
            .unwrap(),
        0
    );

    // Released: the second instance purges the next expired rows.
    expired_sessions(&first, &clock, 2);
    assert_eq!(second.purge_expired(10).unwrap(), 2);

    // A purge holding the lock on this database does not refuse another
    // database's purge on the same server.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    {
        let other = match db.backend() {
            #[cfg(feature = "postgres")]
            Backend::Postgres => TestDatabase::postgres(),
            #[cfg(feature = "mysql")]
            Backend::Mysql => TestDatabase::mysql(),
            _ => return,
        };
        let elsewhere = other.manager().with_clock(clock.clone());
        expired_sessions(&elsewhere, &clock, 1);
        expired_sessions(&first, &clock, 2);
        let (first_total, elsewhere_result) = while_purging(&first, || elsewhere.purge_expired(10));
        assert_eq!(first_total, 2);
        assert_eq!(elsewhere_result.unwrap(), 1);
    }
}

backend_tests!(one_purge_runs_at_a_time_per_database);

/// On SQLite each batch gives its connection back to the pool: with a
/// one-connection pool (all `:memory:` has) requests are served between
/// batches instead of waiting for the whole purge.
#[test]
fn sqlite_serves_requests_between_purge_batches() {
    let db = TestDatabase::sqlite();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
    let seeding = db.manager().with_clock(clock.clone());
    expired_sessions(&seeding, &clock, 3);
    let valid = seeding
        .create(
            &SessionToken::generate().unwrap(),
            NewSession::expiring(seeding.now() + Duration::minutes(10)),
        )
        .unwrap();
    let database = Database::builder(db.url())
        .pool_size(1)
        .connection_timeout(std::time::Duration::from_secs(2))
        .connect()
        .unwrap();
    let single = SessionManager::new(database).with_clock(clock);
    let mut loads = 0;
    let purged = single
        .purge_expired_with(1, |_| {
            let loaded = single.load(&valid.id).expect("a load between two batches");
            assert!(loaded.is_some());
            loads += 1;
        })
        .unwrap();
    assert_eq!(purged, 3);
    assert_eq!(
        loads, 4,
        "after each of the three batches and the empty last one"
    );
}
