//! Faults the app must survive: corrupt and oversized rows, clock jumps, and (on
//! SQLite) another process holding the write lock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::sync::mpsc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use rocket::http::Status;
use rocket::serde::json::{json, Value};
use shared_model::backend_tests;
use shared_model::test_util::TestDatabase;

mod common;

use common::{start, Harness};

fn corrupt_rows_are_not_adopted(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let id = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        db.execute(&format!(
            "UPDATE sessions SET data = '{{not json' WHERE id = '{}'",
            common::pid(&id)
        ));
        let reply = h.get("/info", Some(&id)).await;
        assert_eq!(reply.status, Status::Ok);
        assert_eq!(reply.json()["is_new"], json!(true));
        // The visitor carries on in a new session; the corrupt row is left for
        // the inspector and the purge.
        let next = h.put("/set/b", Some(&id), json!(2)).await;
        assert_eq!(next.status, Status::NoContent);
        let new_id = next.new_id().unwrap();
        assert_ne!(new_id, id);
        assert_eq!(
            h.get("/info", Some(&new_id)).await.json()["keys"],
            json!(["b"])
        );
        assert_eq!(h.rows(), 2);
    })
}

fn oversized_rows_are_not_adopted(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({"max_data_bytes": 1024})).await;
        let id = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        let big = "x".repeat(100_000);
        db.execute(&format!(
            "UPDATE sessions SET data = '{{\"big\": \"{big}\"}}' WHERE id = '{}'",
            common::pid(&id)
        ));
        let reply = h.get("/info", Some(&id)).await;
        assert_eq!(
            (reply.status, reply.json()["is_new"].clone()),
            (Status::Ok, json!(true))
        );
        let next = h.put("/set/b", Some(&id), json!(2)).await;
        assert_eq!(next.status, Status::NoContent);
        assert_ne!(next.new_id().unwrap(), id);
    })
}

fn clock_jumps_are_handled(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let id = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        let expires = start() + Duration::minutes(30);
        // Backwards by an hour: still valid, and a renewal never shortens the expiry.
        h.clock.set(start() - Duration::hours(1));
        let before = h.counts();
        let reply = h.get("/info", Some(&id)).await;
        assert_eq!(reply.json()["is_new"], json!(false));
        assert_eq!((h.counts() - before).writes, 0);
        assert_eq!(
            h.manager()
                .load(&common::pid(&id))
                .unwrap()
                .unwrap()
                .expires_at,
            expires
        );
        // A write during the jump keeps the data and never shortens the expiry:
        // now + timeout is half an hour before the stored one.
        let reply = h.put("/set/b", Some(&id), json!(2)).await;
        assert_eq!(reply.status, Status::NoContent);
        let stored = h.manager().get(&common::pid(&id)).unwrap().unwrap();
        assert_eq!(stored.expires_at, expires, "kept the later expiry");
        assert_eq!(stored.data.len(), 2);
        assert_eq!(
            h.get("/info", Some(&id)).await.json()["expires_at"],
            json!(expires.to_rfc3339())
        );
        // The clock comes back: the next write moves the expiry forward again.
        h.clock.set(start() + Duration::minutes(10));
        h.put("/set/c", Some(&id), json!(3)).await;
        let renewed = start() + Duration::minutes(40);
        assert_eq!(
            h.manager()
                .get(&common::pid(&id))
                .unwrap()
                .unwrap()
                .expires_at,
            renewed
        );
        // Forwards past the expiry: the session is over.
        h.clock.set(renewed);
        let reply = h.get("/info", Some(&id)).await;
        assert_eq!(
            (reply.status, reply.json()["is_new"].clone()),
            (Status::Ok, json!(true))
        );
    })
}

backend_tests!(
    corrupt_rows_are_not_adopted,
    oversized_rows_are_not_adopted,
    clock_jumps_are_handled,
);

/// Another process holds SQLite's write lock (the inspector mid-edit, a backup):
/// writes wait up to the busy timeout, then answer 503; reads go on (WAL); once
/// the lock is released, writes succeed and the file is intact.
#[test]
fn sqlite_writer_lock_gives_503_after_the_busy_timeout() {
    let db = TestDatabase::sqlite();
    rocket::execute(async {
        let h = Harness::new(&db, json!({"pool_timeout_seconds": 1})).await;
        let id = h.put("/set/a", None, json!(1)).await.new_id().unwrap();

        let (locked_tx, locked_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let url = db.url().to_owned();
        let holder = std::thread::spawn(move || {
            let mut conn = diesel::SqliteConnection::establish(&url).unwrap();
            conn.batch_execute("BEGIN IMMEDIATE; UPDATE sessions SET version = version")
                .unwrap();
            locked_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            conn.batch_execute("COMMIT").unwrap();
        });
        locked_rx.recv().unwrap();

        let started = Instant::now();
        let write = h.put("/set/b", Some(&id), json!(2)).await;
        let waited = started.elapsed();
        assert_eq!(write.status, Status::ServiceUnavailable, "{write:?}");
        assert!(write.new_id().is_none());
        assert!(
            waited >= StdDuration::from_millis(900),
            "gave up after {waited:?}, before the busy timeout"
        );
        let read = h.get("/info", Some(&id)).await;
        assert_eq!(read.status, Status::Ok, "readers are not blocked");
        assert_eq!(read.json()["keys"], json!(["a"]));

        release_tx.send(()).unwrap();
        holder.join().unwrap();
        assert_eq!(
            h.put("/set/b", Some(&id), json!(2)).await.status,
            Status::NoContent
        );
        assert_eq!(
            h.get("/info", Some(&id)).await.json()["keys"],
            json!(["a", "b"])
        );
    });
    let mut conn = diesel::SqliteConnection::establish(db.url()).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let checks: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .unwrap();
    let verdict: Vec<Value> = checks
        .into_iter()
        .map(|c| json!(c.integrity_check))
        .collect();
    assert_eq!(verdict, vec![json!("ok")]);
}
