//! Admin operations (expiry changes, bulk actions by filter), read-only
//! connections and the schema check, run on every compiled backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::net::IpAddr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use shared_model::test_util::TestDatabase;
use shared_model::{
    backend_tests, Actor, Backend, Bookkeeping, ChangeSet, Client, Database, Error, EventKind,
    ExpiryChange, ManualClock, NewSession, Session, SessionFilter, SessionManager, SessionToken,
    Status, EXPIRED_AT,
};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn manual(db: &TestDatabase) -> (SessionManager, ManualClock) {
    let clock = ManualClock::new(start());
    (db.manager().with_clock(clock.clone()), clock)
}

fn new_session(manager: &SessionManager, user: Option<&str>, ip: &str, minutes: i64) -> Session {
    let ip: IpAddr = ip.parse().unwrap();
    let client = Client::new(Some(ip), Some("curl/8.0"));
    manager
        .create(
            &SessionToken::generate().unwrap(),
            NewSession {
                user_id: user,
                client: Some(&client),
                ..NewSession::expiring(manager.now() + Duration::minutes(minutes))
            },
        )
        .unwrap()
}

fn stored_expiry(manager: &SessionManager, session: &Session) -> DateTime<Utc> {
    manager.get(&session.id).unwrap().unwrap().expires_at
}

fn expire_is_a_fixed_past_instant_and_extend_never_shortens(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let admin = manager.clone().with_audit(Actor::Inspector);
    let session = new_session(&manager, Some("alice"), "203.0.113.5", 30);

    // The admin's clock runs an hour ahead: "expire at the admin's now" would
    // keep the earlier stored expiry, valid for another 30 minutes; the
    // written instant is fixed in the past instead.
    let skewed = admin
        .clone()
        .with_clock(ManualClock::new(start() + Duration::hours(1)));
    let expired = skewed
        .change_expiry(&session.id, ExpiryChange::ExpireNow)
        .unwrap();
    assert_eq!(expired, EXPIRED_AT);
    assert_eq!(stored_expiry(&manager, &session), EXPIRED_AT);
    assert!(
        manager.load(&session.id).unwrap().is_none(),
        "expired for the app"
    );

    // Extending an expired session counts from now.
    let extended = admin
        .change_expiry(&session.id, ExpiryChange::ExtendMinutes(10))
        .unwrap();
    assert_eq!(extended, start() + Duration::minutes(10));

    // The app slides it to 2 h meanwhile; a 10-minute extension counts from
    // that later expiry instead of cutting it back.
    clock.advance(Duration::minutes(1));
    let later = manager.now() + Duration::hours(2);
    manager.touch(&session.id, later, None).unwrap();
    let extended = admin
        .change_expiry(&session.id, ExpiryChange::ExtendMinutes(10))
        .unwrap();
    assert_eq!(extended, later + Duration::minutes(10));
    assert_eq!(stored_expiry(&manager, &session), extended);

    let events = admin.events_of_session(&session.id, 10).unwrap();
    let kinds: Vec<_> = events.iter().rev().map(|e| e.kind.unwrap()).collect();
    assert_eq!(
        kinds,
        [
            EventKind::AdminExpire,
            EventKind::AdminExtend,
            EventKind::AdminExtend
        ]
    );
    assert!(events.iter().all(|e| e.actor == Some(Actor::Inspector)));
    assert_eq!(events[0].ip_address.as_deref(), Some("203.0.113.5"));

    let gone = SessionToken::generate().unwrap().public_id();
    assert!(matches!(
        admin.change_expiry(&gone, ExpiryChange::ExpireNow),
        Err(Error::Gone(_))
    ));
}

fn bulk_actions_change_exactly_the_matching_rows(db: &TestDatabase) {
    let (manager, _clock) = manual(db);
    let admin = manager.clone().with_audit(Actor::Cli);
    let alice: Vec<Session> = [1, 10, 11, 12, 13]
        .iter()
        .map(|i| new_session(&manager, Some("alice"), &format!("10.1.0.{i}"), 30))
        .collect();
    let bob = new_session(&manager, Some("bob"), "10.2.0.1", 30);
    let visitor = new_session(&manager, None, "10.1.9.9", 30);

    // By IP prefix: alice's five and the visitor, in batches of two.
    let by_ip = SessionFilter {
        ip_prefix: Some("10.1.".into()),
        ..SessionFilter::default()
    };
    assert_eq!(admin.count(&by_ip).unwrap(), 6);
    let mut reports = Vec::new();
    let expired = admin
        .expire_matching(&by_ip, u64::MAX, 2, |done| {
            reports.push(done);
            true
        })
        .unwrap();
    assert_eq!(expired, 6);
    assert_eq!(reports.last(), Some(&6));
    assert!(reports.len() >= 3, "batches of two: {reports:?}");
    for session in alice.iter().chain([&visitor]) {
        assert_eq!(stored_expiry(&manager, session), EXPIRED_AT);
    }
    assert!(
        manager.load(&bob.id).unwrap().is_some(),
        "bob does not match"
    );
    // A whole address is that address only, not a prefix of longer ones;
    // text ending in `:` is a prefix although it parses as an address.
    let exact = SessionFilter {
        ip_prefix: Some("10.1.0.1".into()),
        ..SessionFilter::default()
    };
    assert_eq!(admin.count(&exact).unwrap(), 1);
    let v6 = new_session(&manager, Some("dave"), "2001:db8::7", 30);
    let v6_prefix = SessionFilter {
        ip_prefix: Some("2001:db8::".into()),
        ..SessionFilter::default()
    };
    let listed = admin
        .list(
            &v6_prefix,
            shared_model::Sort::default(),
            shared_model::Page::first(5),
        )
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].as_ref().unwrap().id, v6.id);
    // `_` in a prefix is a character, not a LIKE wildcard.
    let underscore = SessionFilter {
        ip_prefix: Some("10_1".into()),
        ..SessionFilter::default()
    };
    assert_eq!(admin.count(&underscore).unwrap(), 0);

    // Delete alice's expired sessions, cancelled after the first batch.
    let alice_expired = SessionFilter {
        user_id: Some("alice".into()),
        status: Status::Expired,
        ..SessionFilter::default()
    };
    let deleted = admin
        .delete_matching(&alice_expired, u64::MAX, 2, |_| false)
        .unwrap();
    assert_eq!(deleted, 2, "one batch, then cancelled");
    assert_eq!(admin.count(&alice_expired).unwrap(), 3);
    // Two confirmed: a third match is left alone.
    let deleted = admin
        .delete_matching(&alice_expired, 2, 100, |_| true)
        .unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(admin.count(&alice_expired).unwrap(), 1);
    let deleted = admin
        .delete_matching(&alice_expired, u64::MAX, 100, |_| true)
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(admin.count(&SessionFilter::default()).unwrap(), 3);

    let events = admin.events_of_user("alice", 100).unwrap();
    let count = |kind| events.iter().filter(|e| e.kind == Some(kind)).count();
    assert_eq!(count(EventKind::AdminExpire), 5);
    assert_eq!(count(EventKind::AdminDelete), 5);
    assert!(events
        .iter()
        .filter(|e| e.kind != Some(EventKind::Created))
        .all(|e| e.actor == Some(Actor::Cli)));
}

fn read_only_connections_refuse_every_write(db: &TestDatabase) {
    let manager = db.manager();
    let session = new_session(&manager, Some("alice"), "203.0.113.7", 30);
    let reader = Database::builder(db.url())
        .read_only(true)
        .tune_sqlite(false)
        .pool_size(1)
        .connect()
        .unwrap();
    let report = reader.inspect_schema().unwrap();
    assert_eq!(report.bookkeeping, Bookkeeping::Current);
    let reader = SessionManager::new(reader).for_schema(&report);
    assert_eq!(reader.count(&SessionFilter::default()).unwrap(), 1);
    assert!(reader.get(&session.id).unwrap().is_some());
    // Refused by the database because the connection is read-only, not for
    // any other reason (even a DELETE of nothing).
    let refused = |result: Result<(), Error>| {
        let text = result.expect_err("a write must fail").to_string();
        let squashed: String = text
            .to_ascii_lowercase()
            .chars()
            .filter(char::is_ascii_alphabetic)
            .collect();
        assert!(squashed.contains("readonly"), "{text}");
    };
    refused(reader.delete(&session.id).map(|_| ()));
    refused(
        reader
            .change_expiry(&session.id, ExpiryChange::ExpireNow)
            .map(|_| ()),
    );
    refused(reader.purge_expired(10).map(|_| ()));
    let mut changes = ChangeSet::default();
    changes.set("cart", serde_json::json!([1]));
    refused(
        reader
            .apply(&session.id, &changes, manager.now() + Duration::hours(1))
            .map(|_| ()),
    );
    let stored = manager.get(&session.id).unwrap().unwrap();
    assert_eq!(stored.version, session.version, "nothing was written");
    assert_eq!(stored.expires_at, session.expires_at);
}

/// Drops the devices migration's columns and table, as a database that only
/// ran the first migration has them.
fn downgrade(db: &TestDatabase) {
    db.execute("DROP TABLE session_events");
    for column in [
        "ip_address",
        "user_agent",
        "last_seen_at",
        "timeout_seconds",
    ] {
        db.execute(&format!("ALTER TABLE sessions DROP COLUMN {column}"));
    }
}

fn an_older_schema_is_read_and_edited_without_the_new_columns(db: &TestDatabase) {
    let manager = db.manager();
    let session = new_session(&manager, Some("alice"), "203.0.113.8", 30);
    downgrade(db);
    let report = db.database().inspect_schema().unwrap();
    assert!(!report.device_columns && !report.events_table);
    assert!(report.warnings().iter().any(|w| w.contains("older schema")));
    // Without adapting, reading fails on the missing columns.
    assert!(db.manager().get(&session.id).is_err());
    let old = db
        .manager()
        .with_audit(Actor::Inspector)
        .for_schema(&report);
    assert!(old.audit().is_none(), "no table to audit into");
    let listed = old
        .list(
            &SessionFilter::default(),
            shared_model::Sort::default(),
            shared_model::Page::first(10),
        )
        .unwrap();
    let listed = listed[0].as_ref().unwrap();
    assert_eq!(listed.id, session.id);
    assert_eq!(listed.ip_address, None);
    let mut data = listed.data.clone();
    data.insert("note".into(), serde_json::json!("edited"));
    let saved = old.replace_data(&session.id, data, listed.version).unwrap();
    assert_eq!(old.get(&session.id).unwrap().unwrap().data, saved.data);
    old.change_expiry(&session.id, ExpiryChange::ExtendMinutes(5))
        .unwrap();
    let by_ip = SessionFilter {
        ip_prefix: Some("203.".into()),
        ..SessionFilter::default()
    };
    let refused = old.count(&by_ip).unwrap_err().to_string();
    assert!(refused.contains("ip_address"), "{refused}");
    assert_eq!(old.delete_for_user("alice").unwrap(), 1);
}

fn unusable_tables_are_refused_naming_the_columns(db: &TestDatabase) {
    db.execute("ALTER TABLE sessions DROP COLUMN user_agent");
    match db.backend() {
        Backend::Sqlite => {
            db.execute("ALTER TABLE sessions DROP COLUMN version");
            db.execute("ALTER TABLE sessions ADD COLUMN version BLOB");
        }
        Backend::Postgres => db.execute("ALTER TABLE sessions ALTER COLUMN version TYPE integer"),
        Backend::Mysql => db.execute("ALTER TABLE sessions MODIFY version INT NOT NULL"),
    }
    let error = db.database().inspect_schema().unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Schema { .. }), "{text}");
    assert!(text.contains("column user_agent is missing"), "{text}");
    assert!(text.contains("column version is"), "{text}");
    assert!(!text.contains("column data"), "{text}");
    db.execute("DROP TABLE sessions");
    assert!(matches!(
        db.database().inspect_schema(),
        Err(Error::NoSessionsTable)
    ));
}

fn a_table_made_from_our_sql_without_bookkeeping_is_accepted(db: &TestDatabase) {
    db.execute("DROP TABLE __diesel_schema_migrations");
    let report = db.database().inspect_schema().unwrap();
    assert_eq!(report.bookkeeping, Bookkeeping::Missing);
    assert!(report.device_columns && report.events_table);
    assert!(report.warnings().iter().any(|w| w.contains("another tool")));
}

backend_tests!(
    expire_is_a_fixed_past_instant_and_extend_never_shortens,
    bulk_actions_change_exactly_the_matching_rows,
    read_only_connections_refuse_every_write,
    an_older_schema_is_read_and_edited_without_the_new_columns,
    unusable_tables_are_refused_naming_the_columns,
    a_table_made_from_our_sql_without_bookkeeping_is_accepted,
);

/// Opening an SQLite file without tuning leaves its journal mode as it was.
#[test]
fn an_untuned_sqlite_pool_leaves_the_journal_mode_alone() {
    let db = TestDatabase::sqlite();
    let mode = || db.query_strings("SELECT journal_mode AS value FROM pragma_journal_mode()");
    assert_eq!(mode(), ["wal"], "the app's own pool switches to WAL");
    db.execute("PRAGMA journal_mode = DELETE");
    assert_eq!(mode(), ["delete"]);
    for read_only in [false, true] {
        let inspector = Database::builder(db.url())
            .tune_sqlite(false)
            .read_only(read_only)
            .connect()
            .unwrap();
        inspector.inspect_schema().unwrap();
        SessionManager::new(inspector)
            .count(&SessionFilter::default())
            .unwrap();
        assert_eq!(mode(), ["delete"], "read_only = {read_only}");
    }
    let app = Database::connect(db.url()).unwrap();
    drop(app);
    assert_eq!(mode(), ["wal"], "the check above can fail");
}
