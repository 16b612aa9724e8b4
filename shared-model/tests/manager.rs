//! The SessionManager behaviour suite, run on every compiled backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use shared_model::test_util::TestDatabase;
use shared_model::{
    backend_tests, Actor, Backend, ChangeSet, Client, Cursor, Database, Error, EventKind,
    ManualClock, NewSession, Page, Session, SessionData, SessionFilter, SessionId, SessionManager,
    SessionToken, Sort, SortKey, Status,
};

fn token() -> SessionToken {
    SessionToken::generate().unwrap()
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + Duration::microseconds(123_456)
}

fn manual(db: &TestDatabase) -> (SessionManager, ManualClock) {
    let clock = ManualClock::new(start());
    (db.manager().with_clock(clock.clone()), clock)
}

fn data(value: Value) -> SessionData {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn changes(pairs: &[(&str, Value)]) -> ChangeSet {
    let mut set = ChangeSet::default();
    for (key, value) in pairs {
        set.set(*key, value.clone());
    }
    set
}

fn created_round_trips_with_exact_timestamps(db: &TestDatabase) {
    let (manager, _clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let created = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"cart": ["apple"], "n": 1})),
                user_id: Some("alice"),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.created_at, start());
    assert_eq!(created.updated_at, start());
    let loaded = manager
        .load(&created.id)
        .unwrap()
        .expect("valid session loads");
    assert_eq!(
        loaded, created,
        "every column, timestamps to the microsecond"
    );
    assert_eq!(loaded.user_id.as_deref(), Some("alice"));
    assert_eq!(loaded.data["cart"], json!(["apple"]));
}

fn expired_rows_are_never_loaded(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let session = manager
        .create(&token(), NewSession::expiring(expires))
        .unwrap();
    clock.set(expires - Duration::microseconds(1));
    assert!(
        manager.load(&session.id).unwrap().is_some(),
        "valid one microsecond before"
    );
    clock.set(expires);
    assert!(
        manager.load(&session.id).unwrap().is_none(),
        "expired at expires_at exactly"
    );
    // The row is still there for the inspector until purged.
    assert_eq!(manager.get(&session.id).unwrap().unwrap().id, session.id);
    assert!(!manager
        .touch(&session.id, expires + Duration::hours(1), None)
        .unwrap());
    assert!(matches!(
        manager.apply(&session.id, &changes(&[("a", json!(1))]), expires + Duration::hours(1)),
        Err(Error::Gone(id)) if id == session.id
    ));
    assert!(matches!(
        manager.cycle_id(&session.id, &token()),
        Err(Error::Gone(_))
    ));
    assert_eq!(
        manager.get(&session.id).unwrap().unwrap().version,
        1,
        "nothing written"
    );
}

fn unknown_ids_load_nothing(db: &TestDatabase) {
    let manager = db.manager();
    assert!(manager.load(&token().public_id()).unwrap().is_none());
    assert!(manager.get(&token().public_id()).unwrap().is_none());
    assert!(!manager.delete(&token().public_id()).unwrap());
}

fn a_token_is_never_used_twice(db: &TestDatabase) {
    let manager = db.manager();
    let expires = manager.now() + Duration::minutes(5);
    let taken = token();
    let first = manager
        .create(
            &taken,
            NewSession {
                data: data(json!({"owner": "first"})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    assert_eq!(first.id, taken.public_id());
    // Creating, cycling or moving another session onto the same public id is
    // refused and changes nothing.
    assert!(matches!(
        manager.create(&taken, NewSession { data: data(json!({"owner": "second"})), ..NewSession::expiring(expires) }),
        Err(Error::IdTaken(id)) if id == taken.public_id()
    ));
    let other = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"owner": "other"})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    assert!(matches!(
        manager.cycle_id(&other.id, &taken),
        Err(Error::IdTaken(_))
    ));
    let mut onto_taken = changes(&[("x", json!(1))]);
    onto_taken.cycle_id(&taken);
    assert!(matches!(
        manager.apply(&other.id, &onto_taken, expires),
        Err(Error::IdTaken(_))
    ));
    assert_eq!(
        manager.load(&taken.public_id()).unwrap().unwrap().data,
        data(json!({"owner": "first"}))
    );
    let untouched = manager.load(&other.id).unwrap().unwrap();
    assert_eq!(untouched.data, data(json!({"owner": "other"})));
    assert_eq!(untouched.version, 1);
}

/// What the table holds is the public id, a SHA-256 prefix of the token, and
/// nothing a cookie could be made from.
fn the_table_stores_the_public_id_and_never_the_token(db: &TestDatabase) {
    use sha2::Digest;
    let manager = db.manager();
    let secret = token();
    let text = secret.expose_secret().to_owned();
    let session = manager
        .create(
            &secret,
            NewSession {
                data: data(json!({"k": "v"})),
                user_id: Some("u"),
                ..NewSession::expiring(manager.now() + Duration::minutes(5))
            },
        )
        .unwrap();
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let expected = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    assert_eq!(session.id.to_string(), expected);
    assert_eq!(
        db.query_strings("SELECT id AS value FROM sessions"),
        vec![expected]
    );
    let everything = db.query_strings(
        "SELECT CONCAT(id, '|', COALESCE(user_id, ''), '|', data) AS value FROM sessions",
    );
    assert!(
        !everything.concat().contains(&text),
        "the token reached the table"
    );
    // Cycling moves the row to the new token's public id, again without the token.
    let rotated = token();
    manager.cycle_id(&session.id, &rotated).unwrap();
    assert_eq!(
        db.query_strings("SELECT id AS value FROM sessions"),
        vec![rotated.public_id().to_string()]
    );
}

fn sixteen_threads_applying_different_keys_all_survive(db: &TestDatabase) {
    let manager = db.manager();
    let expires = manager.now() + Duration::minutes(30);
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"base": true})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let manager = manager.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                manager
                    .apply(
                        &session.id,
                        &changes(&[(&format!("k{i}"), json!(i))]),
                        expires,
                    )
                    .unwrap()
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let stored = manager.load(&session.id).unwrap().unwrap();
    for i in 0..16 {
        assert_eq!(stored.data[&format!("k{i}")], json!(i), "k{i} lost");
    }
    assert_eq!(stored.data["base"], json!(true));
    assert_eq!(stored.version, 17, "one version per write");
}

fn apply_merges_into_the_current_data(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"a": 1, "b": 2, "c": 3})),
                user_id: Some("u1"),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    // Two writers that both started from the original data.
    manager
        .apply(&session.id, &changes(&[("a", json!(10))]), expires)
        .unwrap();
    let mut second = ChangeSet::default();
    second.remove("b");
    second.set("d", json!(4));
    clock.advance(Duration::seconds(5));
    let later = start() + Duration::minutes(35);
    let written = manager.apply(&session.id, &second, later).unwrap();
    assert_eq!(
        Value::Object(written.data.clone()),
        json!({"a": 10, "c": 3, "d": 4})
    );
    assert_eq!(written.expires_at, later);
    assert_eq!(written.updated_at, start() + Duration::seconds(5));
    assert_eq!(written.created_at, start());
    assert_eq!(written.version, 3);
    assert_eq!(manager.load(&session.id).unwrap().unwrap(), written);

    let mut clear = ChangeSet::default();
    clear.clear();
    clear.set("fresh", json!(true));
    clear.set_user_id(None);
    let cleared = manager.apply(&session.id, &clear, later).unwrap();
    assert_eq!(Value::Object(cleared.data), json!({"fresh": true}));
    assert_eq!(cleared.user_id, None);
    assert_eq!(manager.load(&session.id).unwrap().unwrap().user_id, None);
}

/// Two sessions created alike (different ids), one loaded copy of each.
fn twins(manager: &SessionManager, expires: DateTime<Utc>) -> [Session; 2] {
    [(); 2].map(|()| {
        let session = manager
            .create(
                &token(),
                NewSession {
                    data: data(json!({"a": 1, "b": 2})),
                    user_id: Some("u1"),
                    ..NewSession::expiring(expires)
                },
            )
            .unwrap();
        manager.load(&session.id).unwrap().unwrap()
    })
}

/// What a request sends after changing its loaded copy: the copy with
/// `changes` already on its data.
fn changed(loaded: &Session, changes: &ChangeSet) -> Session {
    let mut copy = loaded.clone();
    changes.replay(&mut copy.data);
    copy
}

fn apply_loaded_over_an_unchanged_row_is_one_update(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let [mine, twin] = twins(&manager, expires);
    clock.advance(Duration::seconds(5));
    let mut set = changes(&[("a", json!(10))]);
    set.remove("b");
    set.set_timeout_seconds(600);
    set.set_client(Client::new(
        Some("203.0.113.9".parse().unwrap()),
        Some("Agent/1"),
    ));
    let later = start() + Duration::minutes(35);
    let before = manager.database().statement_counts();
    let written = manager
        .apply_loaded(changed(&mine, &set), &set, later)
        .unwrap();
    let spent = manager.database().statement_counts() - before;
    assert_eq!(
        (spent.reads, spent.writes, spent.other),
        (0, 1, 0),
        "one UPDATE, no SELECT, no transaction"
    );
    assert_eq!(Value::Object(written.data.clone()), json!({"a": 10}));
    assert_eq!(written.version, 2);
    assert_eq!(written.expires_at, later);
    assert_eq!(written.updated_at, start() + Duration::seconds(5));
    assert_eq!(written.timeout_seconds, Some(600));
    assert_eq!(written.ip_address.as_deref(), Some("203.0.113.9"));
    assert_eq!(manager.load(&mine.id).unwrap().unwrap(), written);
    // What the locking `apply` writes for the same change on a twin row.
    let locked = manager.apply(&twin.id, &set, later).unwrap();
    assert_eq!(
        Session {
            id: mine.id,
            ..locked
        },
        written
    );
}

fn apply_loaded_on_a_stale_copy_merges_into_the_current_data(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let [mine, _] = twins(&manager, expires);
    // Another request writes another key, then a renewal (a version each).
    manager
        .apply(&mine.id, &changes(&[("b", json!(20))]), expires)
        .unwrap();
    let renewed = start() + Duration::minutes(40);
    clock.advance(Duration::seconds(1));
    assert!(manager.touch(&mine.id, renewed, None).unwrap());
    let set = changes(&[("a", json!(10))]);
    let before = manager.database().statement_counts();
    let written = manager
        .apply_loaded(changed(&mine, &set), &set, expires)
        .unwrap();
    let spent = manager.database().statement_counts() - before;
    assert_eq!(
        (spent.reads, spent.writes),
        (1, 2),
        "the UPDATE that matched nothing, then the locked merge"
    );
    assert_eq!(
        Value::Object(written.data.clone()),
        json!({"a": 10, "b": 20})
    );
    assert_eq!(written.version, 4);
    assert_eq!(written.expires_at, renewed, "the renewal is kept");
    assert_eq!(manager.load(&mine.id).unwrap().unwrap(), written);
}

fn sixteen_requests_from_one_loaded_copy_all_keep_their_keys(db: &TestDatabase) {
    let manager = db.manager();
    let expires = manager.now() + Duration::minutes(30);
    let [loaded, _] = twins(&manager, expires);
    let barrier = Arc::new(Barrier::new(16));
    std::thread::scope(|scope| {
        for i in 0..16 {
            let (manager, loaded, barrier) = (&manager, &loaded, Arc::clone(&barrier));
            scope.spawn(move || {
                let set = changes(&[(&format!("k{i}"), json!(i))]);
                barrier.wait();
                manager
                    .apply_loaded(changed(loaded, &set), &set, expires)
                    .unwrap();
            });
        }
    });
    let stored = manager.load(&loaded.id).unwrap().unwrap();
    for i in 0..16 {
        assert_eq!(stored.data[&format!("k{i}")], json!(i), "k{i} lost");
    }
    assert_eq!(stored.data["a"], json!(1));
    assert_eq!(stored.version, 17, "one version per write");
}

fn apply_loaded_never_resurrects(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let [deleted, expired] = twins(&manager, expires);
    let set = changes(&[("a", json!(10))]);
    assert!(manager.delete(&deleted.id).unwrap());
    let result = manager.apply_loaded(changed(&deleted, &set), &set, expires);
    assert!(
        matches!(result, Err(Error::Gone(id)) if id == deleted.id),
        "{result:?}"
    );
    assert!(
        manager.get(&deleted.id).unwrap().is_none(),
        "no row re-created"
    );
    // Expired between the load and the write: nothing written, not even
    // with a later expiry.
    clock.advance(Duration::minutes(31));
    let later = start() + Duration::minutes(60);
    let result = manager.apply_loaded(changed(&expired, &set), &set, later);
    assert!(
        matches!(result, Err(Error::Gone(id)) if id == expired.id),
        "{result:?}"
    );
    assert_eq!(manager.get(&expired.id).unwrap().unwrap(), expired);
}

fn apply_after_delete_is_gone_and_creates_nothing(db: &TestDatabase) {
    let manager = db.manager();
    let expires = manager.now() + Duration::minutes(30);
    let session = signed_in(&manager, "bob", expires);
    assert!(manager.delete(&session.id).unwrap());
    let result = manager.apply(
        &session.id,
        &changes(&[("is_authenticated", json!(true))]),
        expires,
    );
    assert!(
        matches!(result, Err(Error::Gone(id)) if id == session.id),
        "{result:?}"
    );
    assert!(
        manager.get(&session.id).unwrap().is_none(),
        "no row re-created"
    );
    assert_eq!(manager.count(&SessionFilter::default()).unwrap(), 0);
    assert!(!manager.touch(&session.id, expires, None).unwrap());
}

fn apply_can_cycle_the_id_with_its_changes(db: &TestDatabase) {
    let (manager, _clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"cart": [1]})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    let mut login = changes(&[("username", json!("alice"))]);
    login.set_user_id(Some("7".into()));
    login.cycle_id(&token());
    let written = manager.apply(&session.id, &login, expires).unwrap();
    assert_ne!(written.id, session.id);
    assert!(manager.get(&session.id).unwrap().is_none(), "old id gone");
    let stored = manager.load(&written.id).unwrap().unwrap();
    assert_eq!(stored.user_id.as_deref(), Some("7"));
    assert_eq!(
        Value::Object(stored.data),
        json!({"cart": [1], "username": "alice"})
    );
    assert_eq!(stored.created_at, session.created_at);
}

fn apply_never_shortens_the_expiry(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let session = manager
        .create(&token(), NewSession::expiring(expires))
        .unwrap();
    // The clock jumps back an hour; the writer asks for now + 30 minutes.
    clock.set(start() - Duration::hours(1));
    let written = manager
        .apply(
            &session.id,
            &changes(&[("a", json!(1))]),
            start() - Duration::minutes(30),
        )
        .unwrap();
    assert_eq!(written.expires_at, expires, "kept the later expiry");
    assert_eq!(
        manager.get(&session.id).unwrap().unwrap().expires_at,
        expires
    );
    // A later expiry still moves it forward.
    let later = start() + Duration::minutes(45);
    let written = manager
        .apply(&session.id, &changes(&[("b", json!(2))]), later)
        .unwrap();
    assert_eq!(written.expires_at, later);
    assert_eq!(manager.get(&session.id).unwrap().unwrap().expires_at, later);
}

fn replace_data_keeps_the_user_id_column_in_step(db: &TestDatabase) {
    let manager = db.manager();
    let expires = manager.now() + Duration::minutes(30);
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"user_id": "alice", "cart": []})),
                user_id: Some("alice"),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    // Editing another key leaves the column alone.
    let edited = manager
        .replace_data(
            &session.id,
            data(json!({"user_id": "alice", "cart": [1]})),
            1,
        )
        .unwrap();
    assert_eq!(edited.user_id.as_deref(), Some("alice"));
    // Changing the key changes the column (numbers as their digits).
    let edited = manager
        .replace_data(&session.id, data(json!({"user_id": 7, "cart": [1]})), 2)
        .unwrap();
    assert_eq!(edited.user_id.as_deref(), Some("7"));
    assert_eq!(
        manager
            .get(&session.id)
            .unwrap()
            .unwrap()
            .user_id
            .as_deref(),
        Some("7")
    );
    // Removing the key clears it.
    let edited = manager
        .replace_data(&session.id, data(json!({"cart": [1]})), 3)
        .unwrap();
    assert_eq!(edited.user_id, None);
    assert_eq!(manager.get(&session.id).unwrap().unwrap().user_id, None);
    // A column set without the key (`login` does that) survives unrelated edits.
    let column_only = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"cart": []})),
                user_id: Some("bob"),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    let edited = manager
        .replace_data(&column_only.id, data(json!({"cart": ["x"]})), 1)
        .unwrap();
    assert_eq!(edited.user_id.as_deref(), Some("bob"));
    assert_eq!(manager.get(&column_only.id).unwrap().unwrap(), edited);
}

/// A login is judged against the row as locked, not as the writer loaded it:
/// a user set meanwhile (without a new id) still empties the data.
fn login_empties_the_data_of_the_user_stored_at_write_time(db: &TestDatabase) {
    let manager = db.manager();
    let expires = manager.now() + Duration::minutes(30);
    let guest = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"cart": [1]})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    // The writer loaded an anonymous session; meanwhile alice was set on it.
    let mut alice = changes(&[("secret", json!("alice's"))]);
    alice.set_user_id(Some("alice".into()));
    manager.apply(&guest.id, &alice, expires).unwrap();
    let mut bob = changes(&[("username", json!("bob"))]);
    bob.login("bob".into());
    let written = manager.apply(&guest.id, &bob, expires).unwrap();
    assert_eq!(Value::Object(written.data), json!({"username": "bob"}));
    assert_eq!(written.user_id.as_deref(), Some("bob"));
    // The same user signing in again, or a guest signing in, keeps the data.
    let mut again = ChangeSet::default();
    again.login("bob".into());
    let written = manager.apply(&guest.id, &again, expires).unwrap();
    assert_eq!(Value::Object(written.data), json!({"username": "bob"}));
    let anonymous = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"cart": [2]})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    let mut carol = ChangeSet::default();
    carol.login("carol".into());
    let written = manager.apply(&anonymous.id, &carol, expires).unwrap();
    assert_eq!(Value::Object(written.data), json!({"cart": [2]}));
}

fn touch_renews_only_the_expiry(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"k": "v"})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    clock.advance(Duration::minutes(10));
    let renewed = start() + Duration::minutes(40);
    assert!(manager.touch(&session.id, renewed, None).unwrap());
    let stored = manager.load(&session.id).unwrap().unwrap();
    assert_eq!(stored.expires_at, renewed);
    assert_eq!(stored.data, session.data);
    assert_eq!(stored.version, 2);
    let before = manager.database().statement_counts();
    manager.touch(&session.id, renewed, None).unwrap();
    let spent = manager.database().statement_counts() - before;
    assert_eq!(
        (spent.reads, spent.writes, spent.other),
        (0, 1, 0),
        "one UPDATE"
    );
}

fn load_is_one_select(db: &TestDatabase) {
    let manager = db.manager();
    let session = manager
        .create(
            &token(),
            NewSession::expiring(manager.now() + Duration::minutes(1)),
        )
        .unwrap();
    let before = manager.database().statement_counts();
    manager.load(&session.id).unwrap().unwrap();
    let spent = manager.database().statement_counts() - before;
    assert_eq!((spent.reads, spent.writes, spent.other), (1, 0, 0));
}

fn try_load_now_reads_in_place_only_on_sqlite(db: &TestDatabase) {
    // Two connections, both open and idle from the start.
    let manager = SessionManager::new(
        Database::builder(db.url())
            .pool_size(2)
            .min_idle(2)
            .connect()
            .unwrap(),
    );
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"k": 1})),
                ..NewSession::expiring(manager.now() + Duration::minutes(1))
            },
        )
        .unwrap();
    let in_place = manager.try_load_now(&session.id);
    if db.backend() != Backend::Sqlite {
        assert!(
            in_place.is_none(),
            "a network round trip is never run in place"
        );
        return;
    }
    let loaded = in_place.expect("idle connections").unwrap().unwrap();
    assert_eq!(Some(loaded), manager.load(&session.id).unwrap());
    assert!(manager
        .try_load_now(&token().public_id())
        .unwrap()
        .unwrap()
        .is_none());
    // Fewer than two connections idle: no answer at once rather than a wait,
    // or taking the last connection ahead of a writer waiting for it.
    manager
        .database()
        .with_connection(|_held| {
            assert!(manager.try_load_now(&session.id).is_none());
            Ok::<_, Error>(())
        })
        .unwrap();
    assert!(manager.try_load_now(&session.id).is_some());
    // An in-memory database (one connection, and no WAL) is not read in place.
    let memory = SessionManager::new(Database::builder(":memory:").connect().unwrap());
    assert!(memory.try_load_now(&session.id).is_none());
    // Nor a file left in its own journal mode, which may make a reader wait.
    let untuned = SessionManager::new(
        Database::builder(db.url())
            .tune_sqlite(false)
            .pool_size(2)
            .min_idle(2)
            .connect()
            .unwrap(),
    );
    assert!(untuned.try_load_now(&session.id).is_none());
}

fn cycle_id_moves_the_row(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"cart": ["pear"]})),
                user_id: Some("alice"),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    clock.advance(Duration::seconds(1));
    let new_id = manager.cycle_id(&session.id, &token()).unwrap();
    assert_ne!(new_id, session.id);
    assert!(manager.get(&session.id).unwrap().is_none(), "no old row");
    let moved = manager.load(&new_id).unwrap().unwrap();
    assert_eq!(moved.data, session.data);
    assert_eq!(moved.user_id.as_deref(), Some("alice"));
    assert_eq!(moved.created_at, session.created_at);
    assert_eq!(moved.expires_at, session.expires_at);
    assert_eq!(moved.version, 2);
    assert_eq!(manager.count(&SessionFilter::default()).unwrap(), 1);
    assert!(matches!(
        manager.cycle_id(&session.id, &token()),
        Err(Error::Gone(_))
    ));
}

fn replace_data_refuses_a_stale_version(db: &TestDatabase) {
    let manager = db.manager();
    let expires = manager.now() + Duration::minutes(30);
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"a": 1})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    // The app writes while the inspector edits version 1.
    manager
        .apply(&session.id, &changes(&[("b", json!(2))]), expires)
        .unwrap();
    match manager.replace_data(&session.id, data(json!({"edited": true})), 1) {
        Err(Error::Conflict { expected, current }) => {
            assert_eq!(expected, 1);
            assert_eq!(current.version, 2);
            assert_eq!(Value::Object(current.data), json!({"a": 1, "b": 2}));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let stored = manager.get(&session.id).unwrap().unwrap();
    assert_eq!(
        Value::Object(stored.data),
        json!({"a": 1, "b": 2}),
        "nothing overwritten"
    );

    let replaced = manager
        .replace_data(&session.id, data(json!({"edited": true})), 2)
        .unwrap();
    assert_eq!(replaced.version, 3);
    assert_eq!(Value::Object(replaced.data), json!({"edited": true}));
    assert!(manager.delete(&session.id).unwrap());
    assert!(matches!(
        manager.replace_data(&session.id, SessionData::new(), 3),
        Err(Error::Gone(_))
    ));
}

fn corrupt_rows_give_typed_errors(db: &TestDatabase) {
    let manager = db.manager();
    let expires = manager.now() + Duration::minutes(30);
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"a": 1})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    let fine = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"b": 2})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    db.execute(&format!(
        "UPDATE sessions SET data = '{{\"a\": tru' WHERE id = '{}'",
        session.id
    ));
    match manager.load(&session.id) {
        Err(Error::CorruptData(row)) => {
            assert_eq!(row.id, session.id.to_string());
            assert_eq!(row.raw_data, "{\"a\": tru");
            assert!(row.reason.contains("not valid JSON"), "{}", row.reason);
        }
        other => panic!("expected corrupt data, got {other:?}"),
    }
    assert!(matches!(
        manager.apply(&session.id, &changes(&[("x", json!(1))]), expires),
        Err(Error::CorruptData(_))
    ));
    // A page with a corrupt row still lists every row.
    let page = manager
        .list(&SessionFilter::default(), Sort::default(), Page::first(10))
        .unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page.iter().filter(|row| row.is_err()).count(), 1);
    assert!(page
        .iter()
        .any(|row| matches!(row, Ok(s) if s.id == fine.id)));
    // The inspector can repair it.
    let repaired = manager
        .replace_data(&session.id, data(json!({"a": true})), 1)
        .unwrap();
    assert_eq!(repaired.data["a"], json!(true));

    db.execute(&format!(
        "UPDATE sessions SET data = '[1, 2]' WHERE id = '{}'",
        fine.id
    ));
    assert!(
        matches!(manager.load(&fine.id), Err(Error::CorruptData(row)) if row.reason.contains("array"))
    );
}

fn oversized_data_is_refused_whole(db: &TestDatabase) {
    let manager = db.manager().with_max_data_bytes(100);
    let expires = manager.now() + Duration::minutes(30);
    let big = "x".repeat(200);
    assert!(matches!(
        manager.create(
            &token(),
            NewSession {
                data: data(json!({"big": big})),
                ..NewSession::expiring(expires)
            }
        ),
        Err(Error::TooLarge { limit: 100, .. })
    ));
    assert_eq!(manager.count(&SessionFilter::default()).unwrap(), 0);
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"small": 1})),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    assert!(matches!(
        manager.apply(&session.id, &changes(&[("big", json!(big))]), expires),
        Err(Error::TooLarge { .. })
    ));
    let stored = manager.load(&session.id).unwrap().unwrap();
    assert_eq!(Value::Object(stored.data), json!({"small": 1}));
    assert_eq!(stored.version, 1);
    assert!(matches!(
        manager.replace_data(&session.id, data(json!({"big": big})), 1),
        Err(Error::TooLarge { .. })
    ));
}

fn purge_removes_exactly_the_expired_rows_in_batches(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let soon = start() + Duration::minutes(1);
    let later = start() + Duration::hours(1);
    let rows: Vec<Session> = (0..250)
        .map(|i| fake(i, if i % 5 == 0 { later } else { soon }, None))
        .collect();
    manager.import(&rows).unwrap();
    clock.set(soon);
    let mut batches = Vec::new();
    let removed = manager
        .purge_expired_with(60, |so_far| batches.push(so_far))
        .unwrap();
    assert_eq!(removed, 200);
    assert_eq!(batches, vec![60, 120, 180, 200]);
    let left: BTreeSet<SessionId> = manager
        .list(
            &SessionFilter::default(),
            Sort::default(),
            Page::first(1000),
        )
        .unwrap()
        .into_iter()
        .map(|row| row.unwrap().id)
        .collect();
    let expected: BTreeSet<SessionId> = rows
        .iter()
        .filter(|s| s.expires_at == later)
        .map(|s| s.id)
        .collect();
    assert_eq!(left, expected);
    assert_eq!(manager.purge_expired(60).unwrap(), 0);
}

fn set_expiry_and_delete_for_user(db: &TestDatabase) {
    let (manager, _clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let a1 = signed_in(&manager, "a", expires);
    let a2 = signed_in(&manager, "a", expires);
    let b = signed_in(&manager, "b", expires);
    manager
        .set_expiry(&b.id, start() - Duration::seconds(1))
        .unwrap();
    assert!(manager.load(&b.id).unwrap().is_none(), "expired now");
    assert_eq!(manager.get(&b.id).unwrap().unwrap().version, 2);
    assert_eq!(manager.delete_for_user("a").unwrap(), 2);
    assert!(manager.get(&a1.id).unwrap().is_none());
    assert!(manager.get(&a2.id).unwrap().is_none());
    assert!(manager.get(&b.id).unwrap().is_some());
    assert!(matches!(
        manager.set_expiry(&a1.id, expires),
        Err(Error::Gone(_))
    ));
}

/// Deterministic fake row `i`.
fn fake(i: u32, expires_at: DateTime<Utc>, user_id: Option<String>) -> Session {
    let created_at =
        start() - Duration::seconds(i64::from(i % 7_200)) - Duration::microseconds(i64::from(i));
    Session {
        id: token().public_id(),
        user_id,
        data: data(json!({"n": i, "tag": format!("Tag{}", i % 10)})),
        expires_at,
        created_at,
        updated_at: created_at + Duration::seconds(i64::from(i % 13)),
        version: 1,
        ip_address: None,
        user_agent: None,
        last_seen_at: None,
        timeout_seconds: None,
    }
}

fn paging_and_filters_at_100_000_rows(db: &TestDatabase) {
    let (manager, _clock) = manual(db);
    let rows: Vec<Session> = (0..100_000u32)
        .map(|i| {
            let expires = if i % 3 == 0 {
                start() - Duration::minutes(i64::from(i % 50) + 1)
            } else {
                start() + Duration::minutes(i64::from(i % 50) + 1)
            };
            let user = (i % 4 != 0).then(|| format!("user{}", i % 500));
            fake(i, expires, user)
        })
        .collect();
    manager.import(&rows).unwrap();
    let now = start();

    let check = |filter: &SessionFilter, keep: &dyn Fn(&Session) -> bool| {
        let mut expected: Vec<&Session> = rows.iter().filter(|s| keep(s)).collect();
        assert_eq!(
            manager.count(filter).unwrap(),
            expected.len() as u64,
            "{filter:?}"
        );
        for sort in [
            Sort {
                key: SortKey::CreatedAt,
                descending: true,
            },
            Sort {
                key: SortKey::ExpiresAt,
                descending: false,
            },
            Sort {
                key: SortKey::UpdatedAt,
                descending: true,
            },
        ] {
            expected.sort_by(|a, b| {
                let order = sort
                    .key
                    .of(a)
                    .cmp(&sort.key.of(b))
                    .then(a.id.to_string().cmp(&b.id.to_string()));
                if sort.descending {
                    order.reverse()
                } else {
                    order
                }
            });
            let want = |from: usize, n: usize| -> Vec<SessionId> {
                expected.iter().skip(from).take(n).map(|s| s.id).collect()
            };
            let ids = |page: Vec<shared_model::ListedSession>| -> Vec<SessionId> {
                page.into_iter().map(|row| row.unwrap().id).collect()
            };
            let first = manager.list(filter, sort, Page::first(50)).unwrap();
            let first_ids = ids(first.clone());
            assert_eq!(first_ids, want(0, 50), "{filter:?} {sort:?} first page");
            if let Some(Ok(last)) = first.last() {
                let next = manager
                    .list(
                        filter,
                        sort,
                        Page::After {
                            cursor: Cursor::after(last, sort.key),
                            limit: 50,
                        },
                    )
                    .unwrap();
                assert_eq!(ids(next), want(50, 50), "{filter:?} {sort:?} keyset page");
            }
            let deep = expected.len().saturating_sub(30);
            let tail = manager
                .list(
                    filter,
                    sort,
                    Page::Offset {
                        offset: deep as u64,
                        limit: 50,
                    },
                )
                .unwrap();
            assert_eq!(ids(tail), want(deep, 50), "{filter:?} {sort:?} deep offset");
        }
    };

    check(&SessionFilter::default(), &|_| true);
    check(
        &SessionFilter {
            user_id: Some("user42".into()),
            ..Default::default()
        },
        &|s| s.user_id.as_deref() == Some("user42"),
    );
    check(
        &SessionFilter {
            status: Status::Active,
            ..Default::default()
        },
        &|s| s.expires_at > now,
    );
    check(
        &SessionFilter {
            status: Status::Expired,
            user_id: Some("user7".into()),
            ..Default::default()
        },
        &|s| s.expires_at <= now && s.user_id.as_deref() == Some("user7"),
    );
    let prefix = rows[1234].id.to_string()[..3].to_uppercase();
    check(
        &SessionFilter {
            id_prefix: Some(prefix.clone()),
            ..Default::default()
        },
        &|s| s.id.to_string().starts_with(&prefix.to_lowercase()),
    );
    check(
        &SessionFilter {
            data_contains: Some("tag7".into()),
            status: Status::Active,
            ..Default::default()
        },
        &|s| s.data["tag"] == json!("Tag7") && s.expires_at > now,
    );
    let nothing = SessionFilter {
        id_prefix: Some("zz' OR 1=1 --".into()),
        ..Default::default()
    };
    assert_eq!(manager.count(&nothing).unwrap(), 0);
    assert!(manager
        .list(&nothing, Sort::default(), Page::first(10))
        .unwrap()
        .is_empty());
    let percent = SessionFilter {
        data_contains: Some("%".into()),
        ..Default::default()
    };
    assert_eq!(manager.count(&percent).unwrap(), 0, "no LIKE wildcards");
}

fn stats_count_and_bucket_by_hour(db: &TestDatabase) {
    let (manager, _clock) = manual(db);
    let hour = |h: i64| start() + Duration::hours(h);
    let mut rows = Vec::new();
    for (i, (created_hours_ago, expires_in_hours, user)) in [
        (0, 1, Some("alice")),
        (0, 1, Some("alice")),
        (1, 2, Some("bob")),
        (2, -1, Some("alice")),
        (30, -2, None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut row = fake(i as u32, hour(expires_in_hours), user.map(str::to_owned));
        row.created_at = hour(-created_hours_ago) - Duration::minutes(1);
        rows.push(row);
    }
    manager.import(&rows).unwrap();
    let stats = manager.stats(24, 10).unwrap();
    assert_eq!(
        (
            stats.total,
            stats.active,
            stats.expired,
            stats.distinct_users
        ),
        (5, 3, 2, 2)
    );
    let per_hour: Vec<(u32, u64)> = stats
        .created_per_hour
        .iter()
        .map(|h| (chrono::Timelike::hour(&h.hour), h.sessions))
        .collect();
    assert_eq!(
        per_hour,
        vec![(9, 1), (10, 1), (11, 2)],
        "created 11:59, 10:59, 09:59; the 30 h old one is outside"
    );
    let expiring: Vec<(u32, u64)> = stats
        .expiring_per_hour
        .iter()
        .map(|h| (chrono::Timelike::hour(&h.hour), h.sessions))
        .collect();
    assert_eq!(expiring, vec![(13, 2), (14, 1)]);
    let users: Vec<(&str, u64)> = stats
        .top_users
        .iter()
        .map(|u| (u.user_id.as_str(), u.sessions))
        .collect();
    assert_eq!(users, vec![("alice", 3), ("bob", 1)]);
}

fn migrations_are_idempotent(db: &TestDatabase) {
    let database = db.database();
    assert!(database.pending_migrations().unwrap().is_empty());
    assert!(database.run_migrations().unwrap().is_empty());
}

fn concurrent_first_migrations_wait_for_each_other(db: &TestDatabase) {
    db.execute("DROP TABLE session_events");
    db.execute("DROP TABLE sessions");
    db.execute("DROP TABLE __diesel_schema_migrations");
    assert_eq!(db.database().pending_migrations().unwrap().len(), 2);
    let barrier = Arc::new(Barrier::new(4));
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (db.url().to_owned(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let database = shared_model::Database::connect(url).unwrap();
                barrier.wait();
                database.run_migrations()
            })
        })
        .collect();
    let applied: Vec<usize> = runs
        .into_iter()
        .map(|run| run.join().unwrap().expect("no migration run fails").len())
        .collect();
    let mut sorted = applied.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        vec![0, 0, 0, 2],
        "exactly one run applied both: {applied:?}"
    );
    let manager = db.manager();
    manager
        .create(
            &token(),
            NewSession::expiring(manager.now() + Duration::minutes(1)),
        )
        .unwrap();
}

fn pending_migrations_on_an_unmigrated_database_write_nothing(db: &TestDatabase) {
    db.execute("DROP TABLE session_events");
    db.execute("DROP TABLE sessions");
    db.execute("DROP TABLE __diesel_schema_migrations");
    let database = db.database();
    assert_eq!(
        database.pending_migrations().unwrap(),
        vec![
            "2026-11-27-000000_create_sessions",
            "2026-12-02-000000_devices_and_audit"
        ]
    );
    // Still no migrations table: creating it by hand must succeed.
    db.execute("CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)");
    assert_eq!(database.run_migrations().unwrap().len(), 2);
    assert!(database.pending_migrations().unwrap().is_empty());
}

fn audited(db: &TestDatabase, actor: Actor) -> (SessionManager, ManualClock) {
    let (manager, clock) = manual(db);
    (manager.with_audit(actor), clock)
}

/// Signs alice in, moving the session to `token`'s id.
fn alice_login(token: &SessionToken) -> ChangeSet {
    let mut login = ChangeSet::default();
    login.login("alice".into());
    login.cycle_id(token);
    login
}

/// A new session of `user` (a login).
fn signed_in(manager: &SessionManager, user: &str, expires_at: DateTime<Utc>) -> Session {
    manager
        .create(
            &token(),
            NewSession {
                user_id: Some(user),
                ..NewSession::expiring(expires_at)
            },
        )
        .unwrap()
}

fn kinds(manager: &SessionManager, id: &SessionId) -> Vec<EventKind> {
    let mut events = manager.events_of_session(id, 100).unwrap();
    events.reverse();
    events
        .into_iter()
        .map(|event| event.kind.unwrap())
        .collect()
}

fn audit_events_exist_iff_the_change_committed(db: &TestDatabase) {
    let (manager, _clock) = audited(db, Actor::App);
    let expires = start() + Duration::minutes(30);
    let (a, b) = (token(), token());
    let first = manager.create(&a, NewSession::expiring(expires)).unwrap();
    let second = manager.create(&b, NewSession::expiring(expires)).unwrap();
    assert_eq!(kinds(&manager, &first.id), vec![EventKind::Created]);

    // A login that cycles onto a taken id: the event was inserted before the
    // failing UPDATE, and rolls back with it.
    let login = alice_login(&b);
    assert!(matches!(
        manager.apply(&first.id, &login, expires),
        Err(Error::IdTaken(_))
    ));
    assert_eq!(kinds(&manager, &first.id), vec![EventKind::Created]);
    assert_eq!(kinds(&manager, &second.id), vec![EventKind::Created]);
    assert!(manager.events_of_user("alice", 10).unwrap().is_empty());
    assert_eq!(manager.load(&first.id).unwrap().unwrap().user_id, None);

    // A creation refused for its id records nothing either (its event would
    // come after the failing INSERT).
    assert!(matches!(
        manager.create(&a, NewSession::expiring(expires)),
        Err(Error::IdTaken(_))
    ));
    assert_eq!(kinds(&manager, &first.id), vec![EventKind::Created]);
    let rows = || manager.count(&SessionFilter::default()).unwrap();
    assert_eq!(rows(), 2);

    // And a change whose event cannot be written does not commit.
    db.execute("DROP TABLE session_events");
    let mut login = ChangeSet::default();
    login.login("alice".into());
    login.set("cart", json!(["x"]));
    assert!(manager.apply(&first.id, &login, expires).is_err());
    let stored = manager.load(&first.id).unwrap().unwrap();
    assert_eq!((stored.user_id, stored.version), (None, 1));
    assert!(manager.logout(&second.id).is_err());
    assert!(manager.load(&second.id).unwrap().is_some(), "not deleted");
    // The event is written after the INSERT here: the row must roll back.
    assert!(manager
        .create(&token(), NewSession::expiring(expires))
        .is_err());
    assert_eq!(rows(), 2, "the session whose event failed is not stored");
    assert_eq!(
        manager.revoke_others("nobody", &first.id).unwrap(),
        0,
        "revoking nothing records nothing, so needs no table"
    );
}

fn audited_failures_leave_every_row_in_place(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(1);
    let carol: Vec<Session> = (0..2)
        .map(|_| signed_in(&manager, "carol", expires))
        .collect();
    let audited = manager.clone().with_audit(Actor::App);
    db.execute("DROP TABLE session_events");
    let rows = || manager.count(&SessionFilter::default()).unwrap();
    assert_eq!(rows(), 2);
    assert!(audited
        .create(&token(), NewSession::expiring(expires))
        .is_err());
    assert!(audited.revoke_others("carol", &carol[0].id).is_err());
    assert!(audited.revoke("carol", &carol[1].id, None).is_err());
    assert!(audited.delete_for_user("carol").is_err());
    assert!(audited.cycle_id(&carol[0].id, &token()).is_err());
    clock.advance(Duration::minutes(2));
    assert!(audited.purge_expired(10).is_err());
    assert_eq!(rows(), 2, "nothing created, revoked or purged");
    for session in &carol {
        assert_eq!(manager.get(&session.id).unwrap().unwrap().version, 1);
    }
}

fn concurrent_capped_logins_of_one_user_never_deadlock(db: &TestDatabase) {
    let uncapped = db.manager();
    let manager = db.manager().with_max_sessions_per_user(2);
    let expires = manager.now() + Duration::minutes(30);
    let alice = SessionFilter {
        user_id: Some("alice".into()),
        status: Status::Active,
        ..SessionFilter::default()
    };
    // A capped login that fails (its new id is taken) releases the user's
    // lock: the next one neither waits nor fails.
    let taken = token();
    uncapped
        .create(&taken, NewSession::expiring(expires))
        .unwrap();
    let first = signed_in(&uncapped, "alice", expires);
    let login = alice_login(&taken);
    assert!(matches!(
        manager.apply(&first.id, &login, expires),
        Err(Error::IdTaken(_))
    ));
    signed_in(&manager, "alice", expires);
    uncapped.delete_for_user("alice").unwrap();

    for round in 0..5 {
        // Four browsers signed in before the cap, all signing in again at
        // once: the first to get the lock revokes two, the two it revoked find
        // their session gone, the one it kept signs in after it.
        let sessions: Vec<Session> = (0..4)
            .map(|_| signed_in(&uncapped, "alice", expires))
            .collect();
        let barrier = Arc::new(Barrier::new(sessions.len()));
        let results: Vec<Result<Session, Error>> = sessions
            .iter()
            .map(|session| {
                let (manager, barrier, id) = (manager.clone(), Arc::clone(&barrier), session.id);
                std::thread::spawn(move || {
                    let login = alice_login(&token());
                    barrier.wait();
                    manager.apply(&id, &login, expires)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect();
        let signed_in_again = results.iter().filter(|result| result.is_ok()).count();
        let gone = results
            .iter()
            .filter(|result| matches!(result, Err(Error::Gone(_))))
            .count();
        assert_eq!(
            (signed_in_again, gone),
            (2, 2),
            "round {round}: {results:?}"
        );
        assert_eq!(manager.count(&alice).unwrap(), 2, "round {round}");

        // New browsers signing in, a re-login and "sign out other devices",
        // all at once: only logins, gone sessions and revocations, and never
        // more than the cap.
        let mut kept = results.iter().filter_map(|result| result.as_ref().ok());
        let (keep, other) = (kept.next().unwrap().id, kept.next().unwrap().id);
        let barrier = Arc::new(Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|job| {
                let (manager, barrier) = (manager.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || -> Result<(), Error> {
                    barrier.wait();
                    match job {
                        0 | 1 => manager
                            .create(
                                &token(),
                                NewSession {
                                    user_id: Some("alice"),
                                    ..NewSession::expiring(expires)
                                },
                            )
                            .map(drop),
                        2 => {
                            let login = alice_login(&token());
                            match manager.apply(&other, &login, expires) {
                                Ok(_) | Err(Error::Gone(_)) => Ok(()),
                                Err(error) => Err(error),
                            }
                        }
                        _ => manager.revoke_others("alice", &keep).map(drop),
                    }
                })
            })
            .collect();
        for thread in threads {
            thread
                .join()
                .unwrap()
                .unwrap_or_else(|error| panic!("round {round}: {error}"));
        }
        assert!(manager.count(&alice).unwrap() <= 2, "round {round}");
        uncapped.delete_for_user("alice").unwrap();
    }
}

fn purged_sessions_are_recorded_and_old_events_trimmed(db: &TestDatabase) {
    let (manager, clock) = audited(db, Actor::App);
    let soon = start() + Duration::minutes(1);
    let expiring: Vec<Session> = (0..3)
        .map(|i| {
            let user = format!("user{i}");
            signed_in(&manager, &user, soon)
        })
        .collect();
    let lasting = manager
        .create(&token(), NewSession::expiring(start() + Duration::hours(1)))
        .unwrap();
    clock.advance(Duration::minutes(2));
    assert_eq!(manager.purge_expired(2).unwrap(), 3);
    for session in &expiring {
        assert_eq!(
            kinds(&manager, &session.id),
            vec![EventKind::Login, EventKind::Expired]
        );
        let expired = &manager.events_of_session(&session.id, 1).unwrap()[0];
        assert_eq!(expired.user_id, session.user_id);
        assert_eq!(expired.at, start() + Duration::minutes(2));
    }
    assert_eq!(kinds(&manager, &lasting.id), vec![EventKind::Created]);

    // Retention: the four creation events are older than a minute ago.
    assert_eq!(
        manager
            .purge_events(start() + Duration::minutes(1), 1)
            .unwrap(),
        4
    );
    assert_eq!(kinds(&manager, &lasting.id), Vec::<EventKind>::new());
    for session in &expiring {
        assert_eq!(kinds(&manager, &session.id), vec![EventKind::Expired]);
    }
}

fn admin_actions_are_recorded_with_their_actor(db: &TestDatabase) {
    let (manager, clock) = audited(db, Actor::Inspector);
    let expires = start() + Duration::minutes(30);
    let session = manager
        .create(
            &token(),
            NewSession {
                data: data(json!({"cart": [1], "theme": "dark", "password_hint": "blue"})),
                user_id: Some("alice"),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    manager
        .replace_data(
            &session.id,
            data(json!({"cart": [1, 2], "theme": "dark", "locale": "de"})),
            1,
        )
        .unwrap();
    manager
        .set_expiry(&session.id, start() + Duration::hours(5))
        .unwrap();
    manager
        .set_expiry(&session.id, start() - Duration::hours(1))
        .unwrap();
    clock.advance(Duration::seconds(1));
    assert!(manager.delete(&session.id).unwrap());
    assert_eq!(
        kinds(&manager, &session.id),
        vec![
            EventKind::Login,
            EventKind::AdminEdit,
            EventKind::AdminExtend,
            EventKind::AdminExpire,
            EventKind::AdminDelete
        ]
    );
    let events = manager.events_of_session(&session.id, 10).unwrap();
    assert!(events
        .iter()
        .all(|event| event.actor == Some(Actor::Inspector)));
    let edit = &events[3];
    assert_eq!(
        edit.detail["keys"],
        json!(["cart", "locale", "password_hint"]),
        "names of changed, added and removed keys"
    );
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains("blue") && !text.contains("\"de\""),
        "no values: {text}"
    );

    // "Log out everywhere" records each session it ends.
    let mine: Vec<Session> = (0..2)
        .map(|_| signed_in(&manager, "bob", expires))
        .collect();
    assert_eq!(manager.delete_for_user("bob").unwrap(), 2);
    for session in &mine {
        let last = &manager.events_of_session(&session.id, 1).unwrap()[0];
        assert_eq!(last.kind, Some(EventKind::Revoked));
        assert_eq!(last.detail["reason"], json!("everywhere"));
    }
}

fn devices_and_revocation_stay_within_one_user(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let laptop_client = Client::new(Some("203.0.113.5".parse().unwrap()), Some("Laptop"));
    let laptop = manager
        .create(
            &token(),
            NewSession {
                user_id: Some("alice"),
                client: Some(&laptop_client),
                ..NewSession::expiring(expires)
            },
        )
        .unwrap();
    clock.advance(Duration::minutes(1));
    let phone = manager
        .create(
            &token(),
            NewSession {
                user_id: Some("alice"),
                timeout_seconds: Some(86_400),
                ..NewSession::expiring(start() + Duration::days(1))
            },
        )
        .unwrap();
    let lapsed = signed_in(&manager, "alice", start() + Duration::minutes(1));
    let bobs = signed_in(&manager, "bob", expires);
    let devices = manager.devices("alice", Some(&laptop.id)).unwrap();
    let ids: Vec<SessionId> = devices.iter().map(|device| device.id).collect();
    assert_eq!(
        ids,
        vec![phone.id, laptop.id],
        "valid ones, most recent first"
    );
    assert_eq!(
        devices
            .iter()
            .map(|d| (d.current, d.remembered))
            .collect::<Vec<_>>(),
        vec![(false, true), (true, false)]
    );
    assert_eq!(devices[1].ip_address.as_deref(), Some("203.0.113.5"));
    assert_eq!(devices[1].user_agent.as_deref(), Some("Laptop"));
    assert_eq!(devices[1].last_seen_at, Some(start()));

    assert!(
        !manager.revoke("alice", &bobs.id, None).unwrap(),
        "not hers"
    );
    assert!(
        !manager.revoke("alice", &lapsed.id, None).unwrap(),
        "expired: not found"
    );
    assert!(manager.load(&bobs.id).unwrap().is_some());
    assert!(manager
        .revoke("alice", &phone.id, Some(&laptop.id))
        .unwrap());
    assert!(manager.load(&phone.id).unwrap().is_none());
    assert!(
        !manager.revoke("alice", &phone.id, None).unwrap(),
        "only once"
    );

    let tablet = signed_in(&manager, "alice", expires);
    assert_eq!(manager.revoke_others("alice", &laptop.id).unwrap(), 1);
    assert!(manager.load(&tablet.id).unwrap().is_none());
    assert!(manager.load(&laptop.id).unwrap().is_some());
    assert!(manager.load(&bobs.id).unwrap().is_some());
}

fn the_cap_counts_valid_sessions_of_the_user_in_the_login(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let manager = manager.with_max_sessions_per_user(2);
    let expires = start() + Duration::minutes(30);
    let login = |user: &str| {
        clock.advance(Duration::seconds(10));
        signed_in(&manager, user, expires)
    };
    let lapsed = signed_in(&manager, "alice", start() + Duration::seconds(5));
    let a = login("alice");
    let b = login("alice");
    assert!(
        manager.get(&lapsed.id).unwrap().is_some(),
        "expired rows do not count and stay for the purge"
    );
    assert!(manager.load(&a.id).unwrap().is_some());
    let c = login("alice");
    assert!(
        manager.load(&a.id).unwrap().is_none(),
        "the least recently seen"
    );
    assert!(manager.load(&b.id).unwrap().is_some() && manager.load(&c.id).unwrap().is_some());
    // Anonymous sessions are never capped.
    for _ in 0..3 {
        manager
            .create(&token(), NewSession::expiring(expires))
            .unwrap();
    }
    assert_eq!(
        manager
            .count(&SessionFilter {
                status: Status::Active,
                ..SessionFilter::default()
            })
            .unwrap(),
        5
    );
}

backend_tests!(
    audit_events_exist_iff_the_change_committed,
    audited_failures_leave_every_row_in_place,
    concurrent_capped_logins_of_one_user_never_deadlock,
    purged_sessions_are_recorded_and_old_events_trimmed,
    admin_actions_are_recorded_with_their_actor,
    devices_and_revocation_stay_within_one_user,
    the_cap_counts_valid_sessions_of_the_user_in_the_login,
    pending_migrations_on_an_unmigrated_database_write_nothing,
    concurrent_first_migrations_wait_for_each_other,
    created_round_trips_with_exact_timestamps,
    expired_rows_are_never_loaded,
    unknown_ids_load_nothing,
    a_token_is_never_used_twice,
    the_table_stores_the_public_id_and_never_the_token,
    apply_never_shortens_the_expiry,
    login_empties_the_data_of_the_user_stored_at_write_time,
    replace_data_keeps_the_user_id_column_in_step,
    sixteen_threads_applying_different_keys_all_survive,
    apply_merges_into_the_current_data,
    apply_after_delete_is_gone_and_creates_nothing,
    apply_loaded_over_an_unchanged_row_is_one_update,
    apply_loaded_on_a_stale_copy_merges_into_the_current_data,
    apply_loaded_never_resurrects,
    sixteen_requests_from_one_loaded_copy_all_keep_their_keys,
    apply_can_cycle_the_id_with_its_changes,
    touch_renews_only_the_expiry,
    load_is_one_select,
    try_load_now_reads_in_place_only_on_sqlite,
    cycle_id_moves_the_row,
    replace_data_refuses_a_stale_version,
    corrupt_rows_give_typed_errors,
    oversized_data_is_refused_whole,
    purge_removes_exactly_the_expired_rows_in_batches,
    set_expiry_and_delete_for_user,
    paging_and_filters_at_100_000_rows,
    stats_count_and_bucket_by_hour,
    migrations_are_idempotent,
);

/// A connection the server killed is dropped by the pool after the failure, also
/// when it was lent out through `with_connection`.
#[cfg(feature = "postgres")]
#[test]
fn postgres_a_killed_lent_connection_is_replaced() {
    use diesel::RunQueryDsl;
    use shared_model::AnyConnection;

    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let db = TestDatabase::postgres();
    let database = shared_model::Database::builder(db.url())
        .pool_size(1)
        .connect()
        .unwrap();
    let query = |sql: &'static str| {
        database.with_connection(|conn| match conn {
            AnyConnection::Postgres(conn) => {
                Ok(diesel::sql_query(sql).get_result::<Pid>(conn)?.pid)
            }
            _ => unreachable!("a PostgreSQL URL"),
        })
    };
    let pid = query("SELECT pg_backend_pid() AS pid").unwrap();
    db.execute(&format!("SELECT pg_terminate_backend({pid})"));
    let failed: Result<i32, shared_model::Error> = query("SELECT pg_backend_pid() AS pid");
    assert!(failed.is_err(), "the killed connection fails once");
    let replaced = query("SELECT pg_backend_pid() AS pid").expect("a fresh connection");
    assert_ne!(replaced, pid);
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_a_killed_lent_connection_is_replaced() {
    use diesel::RunQueryDsl;
    use shared_model::AnyConnection;

    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Unsigned<diesel::sql_types::BigInt>)]
        pid: u64,
    }
    let db = TestDatabase::mysql();
    let database = shared_model::Database::builder(db.url())
        .pool_size(1)
        .connect()
        .unwrap();
    let query = || {
        database.with_connection(|conn| match conn {
            AnyConnection::Mysql(conn) => Ok(diesel::sql_query("SELECT CONNECTION_ID() AS pid")
                .get_result::<Pid>(conn)?
                .pid),
            _ => unreachable!("a MySQL URL"),
        })
    };
    let pid = query().unwrap();
    db.execute(&format!("KILL {pid}"));
    let failed: Result<u64, shared_model::Error> = query();
    let replaced = query();
    assert!(failed.is_err(), "the killed connection fails once");
    let replaced = replaced.expect("a fresh connection");
    assert_ne!(replaced, pid);
    // The same through the manager's own queries.
    let manager = SessionManager::new(database.clone());
    db.execute(&format!("KILL {replaced}"));
    assert!(manager.load(&token().public_id()).is_err());
    assert!(manager.load(&token().public_id()).unwrap().is_none());
}
