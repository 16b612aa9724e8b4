//! The SessionManager behaviour suite, run on every compiled backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use shared_model::test_util::TestDatabase;
use shared_model::{
    backend_tests, ChangeSet, Cursor, Error, ManualClock, Page, Session, SessionData,
    SessionFilter, SessionId, SessionManager, SessionToken, Sort, SortKey, Status,
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
            data(json!({"cart": ["apple"], "n": 1})),
            Some("alice"),
            expires,
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
        .create(&token(), SessionData::new(), None, expires)
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
        .touch(&session.id, expires + Duration::hours(1))
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
        .create(&taken, data(json!({"owner": "first"})), None, expires)
        .unwrap();
    assert_eq!(first.id, taken.public_id());
    // Creating, cycling or moving another session onto the same public id is
    // refused and changes nothing.
    assert!(matches!(
        manager.create(&taken, data(json!({"owner": "second"})), None, expires),
        Err(Error::IdTaken(id)) if id == taken.public_id()
    ));
    let other = manager
        .create(&token(), data(json!({"owner": "other"})), None, expires)
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
            data(json!({"k": "v"})),
            Some("u"),
            manager.now() + Duration::minutes(5),
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
        .create(&token(), data(json!({"base": true})), None, expires)
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
            data(json!({"a": 1, "b": 2, "c": 3})),
            Some("u1"),
            expires,
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

fn apply_after_delete_is_gone_and_creates_nothing(db: &TestDatabase) {
    let manager = db.manager();
    let expires = manager.now() + Duration::minutes(30);
    let session = manager
        .create(&token(), SessionData::new(), Some("bob"), expires)
        .unwrap();
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
    assert!(!manager.touch(&session.id, expires).unwrap());
}

fn apply_can_cycle_the_id_with_its_changes(db: &TestDatabase) {
    let (manager, _clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let session = manager
        .create(&token(), data(json!({"cart": [1]})), None, expires)
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
        .create(&token(), SessionData::new(), None, expires)
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
            data(json!({"user_id": "alice", "cart": []})),
            Some("alice"),
            expires,
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
        .create(&token(), data(json!({"cart": []})), Some("bob"), expires)
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
        .create(&token(), data(json!({"cart": [1]})), None, expires)
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
        .create(&token(), data(json!({"cart": [2]})), None, expires)
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
        .create(&token(), data(json!({"k": "v"})), None, expires)
        .unwrap();
    clock.advance(Duration::minutes(10));
    let renewed = start() + Duration::minutes(40);
    assert!(manager.touch(&session.id, renewed).unwrap());
    let stored = manager.load(&session.id).unwrap().unwrap();
    assert_eq!(stored.expires_at, renewed);
    assert_eq!(stored.data, session.data);
    assert_eq!(stored.version, 2);
    let before = manager.database().statement_counts();
    manager.touch(&session.id, renewed).unwrap();
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
            SessionData::new(),
            None,
            manager.now() + Duration::minutes(1),
        )
        .unwrap();
    let before = manager.database().statement_counts();
    manager.load(&session.id).unwrap().unwrap();
    let spent = manager.database().statement_counts() - before;
    assert_eq!((spent.reads, spent.writes, spent.other), (1, 0, 0));
}

fn cycle_id_moves_the_row(db: &TestDatabase) {
    let (manager, clock) = manual(db);
    let expires = start() + Duration::minutes(30);
    let session = manager
        .create(
            &token(),
            data(json!({"cart": ["pear"]})),
            Some("alice"),
            expires,
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
        .create(&token(), data(json!({"a": 1})), None, expires)
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
        .create(&token(), data(json!({"a": 1})), None, expires)
        .unwrap();
    let fine = manager
        .create(&token(), data(json!({"b": 2})), None, expires)
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
        manager.create(&token(), data(json!({"big": big})), None, expires),
        Err(Error::TooLarge { limit: 100, .. })
    ));
    assert_eq!(manager.count(&SessionFilter::default()).unwrap(), 0);
    let session = manager
        .create(&token(), data(json!({"small": 1})), None, expires)
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
    let a1 = manager
        .create(&token(), SessionData::new(), Some("a"), expires)
        .unwrap();
    let a2 = manager
        .create(&token(), SessionData::new(), Some("a"), expires)
        .unwrap();
    let b = manager
        .create(&token(), SessionData::new(), Some("b"), expires)
        .unwrap();
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
    db.execute("DROP TABLE sessions");
    db.execute("DROP TABLE __diesel_schema_migrations");
    assert_eq!(db.database().pending_migrations().unwrap().len(), 1);
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
    assert_eq!(
        applied.iter().sum::<usize>(),
        1,
        "exactly one run applied it: {applied:?}"
    );
    let manager = db.manager();
    manager
        .create(
            &token(),
            SessionData::new(),
            None,
            manager.now() + Duration::minutes(1),
        )
        .unwrap();
}

fn pending_migrations_on_an_unmigrated_database_write_nothing(db: &TestDatabase) {
    db.execute("DROP TABLE sessions");
    db.execute("DROP TABLE __diesel_schema_migrations");
    let database = db.database();
    assert_eq!(
        database.pending_migrations().unwrap(),
        vec!["2026-11-27-000000_create_sessions"]
    );
    // Still no migrations table: creating it by hand must succeed.
    db.execute("CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)");
    assert_eq!(database.run_migrations().unwrap().len(), 1);
    assert!(database.pending_migrations().unwrap().is_empty());
}

backend_tests!(
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
    apply_can_cycle_the_id_with_its_changes,
    touch_renews_only_the_expiry,
    load_is_one_select,
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
