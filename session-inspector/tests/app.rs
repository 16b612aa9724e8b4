//! The real app, driven through its AccessKit tree (labels and roles) over a
//! scratch SQLite database. The database worker is a thread, so every wait steps
//! frames until what a user would see is there, up to a generous frame limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

mod common;

use shared_model::test_util::TestDatabase;

use std::time::Duration;

use common::{data, short, Fixture};
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use serde_json::json;
use session_inspector::messages::RowId;
use session_inspector::settings::{Settings, SETTINGS_KEY};
use session_inspector::{AppOptions, InitialSelection, InspectorApp};
use shared_model::SessionFilter;

/// Frames to wait for the worker before giving up.
const MAX_FRAMES: usize = 3_000;

type App = Harness<'static, InspectorApp>;

fn open(url: &str) -> App {
    open_with(AppOptions {
        database_url: url.to_owned(),
        ..AppOptions::default()
    })
}

fn open_with(options: AppOptions) -> App {
    Harness::builder()
        .with_size([1400.0, 900.0])
        .build_eframe(move |cc| InspectorApp::new(&cc.egui_ctx, options, None))
}

/// Steps frames until `condition` holds; panics naming `what` after `MAX_FRAMES`.
fn run_until(harness: &mut App, what: &str, condition: impl Fn(&App) -> bool) {
    for _ in 0..MAX_FRAMES {
        harness.step();
        if condition(harness) {
            return;
        }
        // Give the worker thread a moment; the frame limit is what bounds the wait.
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!(
        "gave up after {MAX_FRAMES} frames waiting for {what} (status: {:?})",
        harness.state().state().status
    );
}

fn shows(harness: &App, label: &str) -> bool {
    harness.query_all_by_label(label).next().is_some()
}

fn shows_containing(harness: &App, text: &str) -> bool {
    harness.query_all_by_label_contains(text).next().is_some()
}

/// Opens the fixture's database and waits for the table.
fn open_fixture(fixture: &Fixture) -> App {
    let mut harness = open(&fixture.url());
    run_until(&mut harness, "the table", |h| {
        shows(h, "6 matching sessions") && shows(h, &short(&fixture.bob))
    });
    harness
}

fn select(harness: &mut App, session: &shared_model::Session) {
    // The row may still be loading (a count can arrive before its page).
    let row = short(session);
    run_until(harness, "the session's row", |h| shows(h, &row));
    harness.get_by_label(&row).click();
    let id = session.id.to_string();
    run_until(harness, "the selected session's data", |h| {
        h.query_by_role_and_label(Role::MultilineTextInput, "Raw JSON")
            .is_some()
            && shows(h, &id)
    });
}

/// Confirmation dialogs fade in over a few frames.
fn wait_for_dialog(harness: &mut App, title: &str) {
    run_until(harness, title, |h| shows(h, title));
}

fn editor_text(harness: &App) -> String {
    harness
        .get_by_role_and_label(Role::MultilineTextInput, "Raw JSON")
        .value()
        .unwrap_or_default()
}

fn set_editor_text(harness: &mut App, text: &str) {
    harness
        .get_by_role_and_label(Role::MultilineTextInput, "Raw JSON")
        .set_text_value_accesskit(text);
    harness.step();
    harness.step();
}

/// Clicks and runs the frame that handles the click and the one that shows
/// its result (commands are applied at the end of a frame).
fn click(harness: &mut App, label: &str) {
    harness.get_by_label(label).click();
    harness.run_steps(2);
}

fn the_table_shows_the_seeded_sessions(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let harness = open_fixture(&fixture);
    for session in fixture.alice.iter().chain(&fixture.carol) {
        assert!(shows(&harness, &short(session)), "{} missing", session.id);
    }
    assert!(shows(&harness, &short(&fixture.anonymous)));
    assert!(shows(&harness, "anonymous"));
    assert!(shows(&harness, "bob"));
    // Status badges: four active, two expired.
    assert_eq!(harness.query_all_by_label("active").count(), 4);
    assert_eq!(harness.query_all_by_label("expired").count(), 2);
}

fn filtering_by_user_narrows_the_table(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    harness
        .get_by_role_and_label(Role::TextInput, "User id")
        .set_text_value_accesskit("alice");
    run_until(&mut harness, "alice's sessions only", |h| {
        shows(h, "2 matching sessions")
            && !shows(h, &short(&fixture.bob))
            && fixture
                .alice
                .iter()
                .all(|session| shows(h, &short(session)))
    });
    assert!(!shows(&harness, &short(&fixture.anonymous)));
    assert!(!shows(&harness, &short(&fixture.carol[0])));
}

fn status_and_data_filters_narrow_the_table(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    harness
        .get_by_role_and_label(Role::TextInput, "Search data")
        .set_text_value_accesskit("DARK");
    run_until(&mut harness, "the one session with a dark theme", |h| {
        shows(h, "1 matching session") && shows(h, &short(&fixture.anonymous))
    });
    harness
        .get_by_role_and_label(Role::TextInput, "Search data")
        .set_text_value_accesskit("");
    run_until(&mut harness, "all sessions again", |h| {
        shows(h, "6 matching sessions")
    });
}

fn selecting_a_row_shows_its_data(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    select(&mut harness, &fixture.anonymous);
    assert!(
        shows(&harness, "theme: \"dark\""),
        "the JSON tree shows the key"
    );
    assert!(editor_text(&harness).contains("\"theme\": \"dark\""));
}

fn a_valid_edit_is_saved_to_the_database(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    let session = &fixture.alice[0];
    select(&mut harness, session);
    set_editor_text(
        &mut harness,
        r#"{"cart": ["espresso", "grinder"], "locale": "de-DE"}"#,
    );
    assert!(shows_containing(&harness, "Valid JSON object, not saved"));
    click(&mut harness, "💾 Save");
    run_until(&mut harness, "the saved message", |h| {
        shows_containing(h, "Saved session")
    });
    let stored = fixture.stored(session).unwrap();
    assert_eq!(
        stored.data,
        data(json!({"cart": ["espresso", "grinder"], "locale": "de-DE"}))
    );
    assert_eq!(stored.version, session.version + 1);
}

fn invalid_json_is_refused_and_the_error_says_where(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    let session = &fixture.bob;
    select(&mut harness, session);
    set_editor_text(&mut harness, "{\n  \"cart\": [\"mug\",]\n}");
    assert!(
        shows_containing(&harness, "Invalid: line 2, column"),
        "the error names the line"
    );
    click(&mut harness, "💾 Save");
    harness.run_steps(20);
    set_editor_text(&mut harness, "[1, 2]");
    assert!(shows_containing(&harness, "not array"));
    click(&mut harness, "💾 Save");
    harness.run_steps(20);
    let stored = fixture.stored(session).unwrap();
    assert_eq!(
        (stored.data, stored.version),
        (session.data.clone(), session.version),
        "nothing was written"
    );
}

fn a_concurrent_change_shows_the_conflict_and_overwrites_nothing(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    let session = &fixture.alice[1];
    select(&mut harness, session);
    set_editor_text(&mut harness, r#"{"cart": ["from the inspector"]}"#);
    // Meanwhile the web app writes the session.
    let theirs = data(json!({"cart": ["from the web app"], "flash": "Welcome back"}));
    fixture
        .manager
        .replace_data(&session.id, theirs.clone(), session.version)
        .unwrap();
    click(&mut harness, "💾 Save");
    run_until(&mut harness, "the conflict view", |h| {
        shows_containing(h, "Conflict: this session changed")
    });
    assert!(shows(&harness, "Your version"));
    assert!(shows(&harness, "Current (version 2)"));
    assert_eq!(
        fixture.stored(session).unwrap().data,
        theirs,
        "not overwritten"
    );

    // Overwriting is possible, on purpose.
    click(&mut harness, "⚠ Overwrite with mine");
    run_until(&mut harness, "the overwrite", |h| {
        shows_containing(h, "Saved session")
    });
    let stored = fixture.stored(session).unwrap();
    assert_eq!(stored.data, data(json!({"cart": ["from the inspector"]})));
    assert_eq!(stored.version, 3);
}

fn reload_after_a_conflict_shows_the_current_version(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    let session = &fixture.bob;
    select(&mut harness, session);
    set_editor_text(&mut harness, r#"{"mine": true}"#);
    let theirs = data(json!({"theirs": true}));
    fixture
        .manager
        .replace_data(&session.id, theirs.clone(), session.version)
        .unwrap();
    click(&mut harness, "💾 Save");
    run_until(&mut harness, "the conflict view", |h| {
        shows_containing(h, "Conflict: this session changed")
    });
    click(&mut harness, "↺ Reload");
    harness.run_steps(3);
    assert!(editor_text(&harness).contains("\"theirs\": true"));
    assert_eq!(fixture.stored(session).unwrap().data, theirs);
}

/// After a conflict, "Overwrite with mine" writes the edit over the current
/// version: the masked values the edit left alone keep the current version's
/// secrets, not the ones the edit started from.
fn overwriting_after_a_conflict_keeps_the_current_secrets(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let secrets = give_bob_secrets(&fixture);
    let mut harness = open_fixture(&fixture);
    let bob = fixture.stored(&fixture.bob).unwrap();
    select(&mut harness, &bob);
    let edited = editor_text(&harness).replace("\"mug\"", "\"cup\"");
    set_editor_text(&mut harness, &edited);
    // Meanwhile the web app rotates the secrets.
    let mut rotated = secrets;
    rotated.insert("password".into(), json!("rotated-pass"));
    rotated.insert(
        "oauth".into(),
        json!({"access_token": "tok-456", "scope": "write"}),
    );
    fixture
        .manager
        .replace_data(&bob.id, rotated.clone(), bob.version)
        .unwrap();
    click(&mut harness, "💾 Save");
    run_until(&mut harness, "the conflict view", |h| {
        shows_containing(h, "Conflict: this session changed")
    });
    click(&mut harness, "⚠ Overwrite with mine");
    run_until(&mut harness, "the overwrite", |h| {
        shows_containing(h, "Saved session")
    });
    let stored = fixture.stored(&bob).unwrap();
    let mut expected = rotated;
    expected.insert("cart".into(), json!(["cup"]));
    assert_eq!(stored.data, expected, "the current secrets, my cart");
}

/// A save answered after another session was selected does not land on it:
/// the write is held back by a lock until the other session is selected.
#[test]
fn a_conflict_answered_after_selecting_another_session_stays_with_its_own() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut harness = open_fixture(&fixture);
    let alice = &fixture.alice[1];
    select(&mut harness, alice);
    set_editor_text(&mut harness, r#"{"cart": ["mine"]}"#);
    fixture
        .manager
        .replace_data(&alice.id, data(json!({"cart": ["theirs"]})), alice.version)
        .unwrap();
    let lock = WriteLock::hold(&fixture);
    click(&mut harness, "💾 Save");
    harness.get_by_label(&short(&fixture.bob)).click();
    harness.run_steps(2);
    lock.release();
    let bob = fixture.bob.id.to_string();
    run_until(&mut harness, "bob's data and the refusal", |h| {
        shows(h, &bob)
            && shows_containing(h, "not saved: session")
            && h.query_by_role_and_label(Role::MultilineTextInput, "Raw JSON")
                .is_some()
    });
    harness.run_steps(5);
    assert_eq!(harness.state().state().selected_id(), Some(fixture.bob.id));
    assert!(
        !shows_containing(&harness, "Conflict: this session changed"),
        "alice's conflict is not shown on bob"
    );
    assert!(harness.state().state().conflict.is_none());
    assert!(editor_text(&harness).contains("beans"), "bob's own editor");
    assert_eq!(
        fixture.stored(alice).unwrap().data,
        data(json!({"cart": ["theirs"]}))
    );
}

/// A session that cannot be loaded says so instead of loading forever, and
/// a count that fails says so instead of counting forever.
#[test]
fn failed_loads_and_counts_are_shown() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut harness = open_fixture(&fixture);
    fixture.execute_raw("ALTER TABLE sessions RENAME TO sessions_gone");
    harness.get_by_label(&short(&fixture.bob)).click();
    run_until(&mut harness, "the load error in the panel", |h| {
        shows_containing(h, "Could not load this session")
    });
    assert!(!shows(&harness, "Loading…"));
    harness
        .get_by_role_and_label(Role::TextInput, "User id")
        .set_text_value_accesskit("alice");
    run_until(&mut harness, "the count error", |h| {
        shows(h, "count failed")
    });
    assert!(!shows(&harness, "counting…"));
}

fn expire_now_expires_the_session_in_the_database(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    let session = &fixture.bob;
    select(&mut harness, session);
    click(&mut harness, "⏹ Expire now");
    run_until(&mut harness, "the expired message", |h| {
        shows_containing(h, "Expired session")
    });
    let stored = fixture.stored(session).unwrap();
    assert!(stored.expires_at <= chrono::Utc::now());
    assert!(
        fixture.manager.load(&session.id).unwrap().is_none(),
        "the app no longer accepts it"
    );
    run_until(&mut harness, "the table to show it expired", |h| {
        h.query_all_by_label("expired").count() == 3
    });
}

fn extend_moves_the_expiry_later(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    let session = &fixture.carol[0];
    select(&mut harness, session);
    click(&mut harness, "⏩ Extend");
    run_until(&mut harness, "the extended message", |h| {
        shows_containing(h, "Extended session")
    });
    let stored = fixture.stored(session).unwrap();
    assert!(stored.expires_at > chrono::Utc::now() + chrono::Duration::minutes(29));
    assert!(
        shows_containing(
            &harness,
            "next write to this session slides its expiry again"
        ),
        "the UI says the app moves it again"
    );

    // A later expiry is extended from itself: Extend never shortens.
    let later = &fixture.alice[1];
    select(&mut harness, later);
    click(&mut harness, "⏩ Extend");
    run_until(&mut harness, "the second extension", |h| {
        shows_containing(h, &format!("Extended session {}", later.id.short()))
    });
    let stored = fixture.stored(later).unwrap();
    assert!(
        stored.expires_at
            >= later.expires_at + chrono::Duration::minutes(30) - chrono::Duration::seconds(1),
        "{} is not 30 min after {}",
        stored.expires_at,
        later.expires_at
    );
}

fn delete_asks_first_then_removes_the_session(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    let session = &fixture.anonymous;
    select(&mut harness, session);
    click(&mut harness, "🗑 Delete…");
    wait_for_dialog(&mut harness, "Delete this session?");
    click(&mut harness, "Cancel");
    run_until(&mut harness, "the dialog to close", |h| {
        !shows(h, "Delete this session?")
    });
    assert!(fixture.stored(session).is_some(), "cancel deletes nothing");

    click(&mut harness, "🗑 Delete…");
    wait_for_dialog(&mut harness, "Delete this session?");
    click(&mut harness, "Delete");
    run_until(&mut harness, "the session to leave the table", |h| {
        shows(h, "5 matching sessions") && !shows(h, &short(session))
    });
    assert!(fixture.stored(session).is_none());
    assert_eq!(fixture.count_all(), 5);
}

fn delete_all_of_a_user_logs_them_out_everywhere(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    select(&mut harness, &fixture.alice[0]);
    click(&mut harness, "🗑 Delete all of alice…");
    wait_for_dialog(&mut harness, "Delete every session of alice?");
    click(&mut harness, "Delete all");
    run_until(&mut harness, "alice's sessions to go", |h| {
        shows(h, "4 matching sessions")
    });
    let alice = SessionFilter {
        user_id: Some("alice".into()),
        ..SessionFilter::default()
    };
    assert_eq!(fixture.manager.count(&alice).unwrap(), 0);
    assert!(fixture.stored(&fixture.bob).is_some());
}

fn purge_removes_exactly_the_expired_sessions(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    click(&mut harness, "🗑 Purge expired…");
    wait_for_dialog(&mut harness, "Purge expired sessions?");
    click(&mut harness, "Purge");
    run_until(&mut harness, "the purge result", |h| {
        shows(h, "Purged 2 expired session(s)") && shows(h, "4 matching sessions")
    });
    for session in &fixture.carol {
        assert!(fixture.stored(session).is_none());
    }
    for session in fixture
        .alice
        .iter()
        .chain([&fixture.bob, &fixture.anonymous])
    {
        assert!(fixture.stored(session).is_some(), "active sessions stay");
    }
}

#[test]
fn keyboard_delete_asks_and_escape_cancels() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut harness = open_fixture(&fixture);
    let session = &fixture.bob;
    select(&mut harness, session);
    // Move keyboard focus away from any text field first.
    harness.key_press(egui::Key::Escape);
    harness.step();
    harness.key_press(egui::Key::Delete);
    wait_for_dialog(&mut harness, "Delete this session?");
    harness.key_press(egui::Key::Escape);
    run_until(&mut harness, "the dialog to close", |h| {
        !shows(h, "Delete this session?")
    });
    assert!(fixture.stored(session).is_some());
}

#[test]
fn escape_cancels_an_edit() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut harness = open_fixture(&fixture);
    select(&mut harness, &fixture.anonymous);
    let original = editor_text(&harness);
    set_editor_text(&mut harness, r#"{"theme": "light"}"#);
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert_eq!(editor_text(&harness), original);
}

fn refresh_picks_up_changes_and_highlights_them(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    fixture
        .manager
        .replace_data(&fixture.bob.id, data(json!({"cart": []})), 1)
        .unwrap();
    harness.key_press(egui::Key::F5);
    let bob = fixture.bob.id;
    run_until(&mut harness, "bob's row to be marked changed", |h| {
        h.state().state().table.is_changed(bob)
    });
    assert_eq!(
        h_changed(&harness),
        1,
        "only the changed row is highlighted"
    );
}

fn h_changed(harness: &App) -> usize {
    harness.state().state().table.changed.len()
}

#[test]
fn corrupt_rows_are_listed_with_their_error() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    fixture.execute_raw(
        "INSERT INTO sessions (id, user_id, data, expires_at, created_at, updated_at, version) \
         VALUES ('9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d', 'mallory', 'not json', \
         '2999-01-01 00:00:00.000000', '2999-01-01 00:00:00.000000', '2999-01-01 00:00:00.000000', 1)",
    );
    let mut harness = open(&fixture.url());
    run_until(&mut harness, "the corrupt row", |h| {
        shows(h, "7 matching sessions") && shows_containing(h, "data is not valid JSON")
    });
    assert!(shows(&harness, "corrupt"));
    harness.get_by_label("9b2f0c4e").click();
    run_until(&mut harness, "the corrupt detail", |h| {
        shows_containing(h, "Corrupt row:")
    });
    assert!(
        shows(&harness, "⏹ Expire now"),
        "a corrupt row can still be expired"
    );
}

#[test]
fn an_unreachable_database_is_reported_and_the_app_keeps_working() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    // A password in the URL (here a query parameter) never reaches the screen.
    let missing = fixture
        .db
        .url()
        .replace("sessions.sqlite", "missing/none.sqlite?password=hunter2");
    let mut harness = open(&missing);
    run_until(&mut harness, "the error in the status bar", |h| {
        shows_containing(h, "no SQLite database at")
    });
    assert!(shows_containing(&harness, "password=***"));
    assert!(!shows_containing(&harness, "hunter2"));
    harness
        .get_by_role_and_label(Role::TextInput, "Database")
        .set_text_value_accesskit(&fixture.url());
    harness.step();
    click(&mut harness, "Open");
    run_until(&mut harness, "the table after reconnecting", |h| {
        shows(h, "6 matching sessions")
    });
}

#[test]
fn a_database_without_a_sessions_table_is_refused_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.sqlite");
    {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        conn.batch_execute("CREATE TABLE other (x INTEGER)")
            .unwrap();
    }
    let mut harness = open(path.to_str().unwrap());
    run_until(&mut harness, "the refusal", |h| {
        shows_containing(h, "there is no sessions table")
    });
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let tables: Vec<Name> =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'")
            .load(&mut conn)
            .unwrap();
    assert!(
        tables.iter().all(|t| t.name != "sessions"),
        "the inspector must not create the sessions table"
    );
}

fn the_overview_shows_counts(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    click(&mut harness, "Overview");
    run_until(&mut harness, "the statistics", |h| {
        shows(h, "Distinct users")
    });
    // total 6, active 4, expired 2, users 3
    for value in ["6", "4", "2", "3"] {
        assert!(shows(&harness, value), "count {value} missing");
    }
    assert!(shows(&harness, "Top users by session count"));
}

#[test]
fn ctrl_f_focuses_the_filter() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut harness = open_fixture(&fixture);
    assert!(!harness
        .get_by_role_and_label(Role::TextInput, "Search data")
        .is_focused());
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::F);
    harness.run_steps(3);
    assert!(harness
        .get_by_role_and_label(Role::TextInput, "Search data")
        .is_focused());
}

fn sorting_by_expiry_puts_the_soonest_last_or_first(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    click(&mut harness, "Expires");
    run_until(&mut harness, "the table sorted by expiry", |h| {
        h.state().state().table.sort.key == shared_model::SortKey::ExpiresAt
            && h.state().state().table.showed_rows
    });
    let first = harness.state().state().table.row(0).unwrap().row_id.clone();
    // Newest expiry first: alice's 60-minute session.
    assert_eq!(first, RowId::Session(fixture.alice[1].id));
    click(&mut harness, "Expires ⏷");
    run_until(&mut harness, "the order to flip", |h| {
        !h.state().state().table.sort.descending && h.state().state().table.showed_rows
    });
    let first = harness.state().state().table.row(0).unwrap().row_id.clone();
    assert_eq!(
        first,
        RowId::Session(fixture.carol[1].id),
        "the longest expired first"
    );
}

/// eframe's persistence, in memory.
#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn recent_connections_are_remembered_across_restarts() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut storage = MemoryStorage::default();
    let mut harness = open_fixture(&fixture);
    eframe::App::save(harness.state_mut(), &mut storage);
    drop(harness);

    let restarted = Harness::builder()
        .with_size([1400.0, 900.0])
        .build_eframe(|cc| {
            InspectorApp::new(
                &cc.egui_ctx,
                AppOptions {
                    database_url: "somewhere-else.sqlite".to_owned(),
                    ..AppOptions::default()
                },
                Some(&storage),
            )
        });
    assert_eq!(
        restarted.state().state().connection.recent.first(),
        Some(&fixture.url())
    );
}

/// A password an older version persisted is dropped at start and never
/// written back; the list shows the URL without it.
#[test]
fn persisted_recent_connections_lose_their_passwords() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut storage = MemoryStorage::default();
    eframe::set_value(
        &mut storage,
        "recent-connections",
        &vec!["postgres://app:hunter2@db.internal/app?sslpassword=k2".to_owned()],
    );
    let mut harness = Harness::builder()
        .with_size([1400.0, 900.0])
        .build_eframe(|cc| {
            InspectorApp::new(
                &cc.egui_ctx,
                AppOptions {
                    database_url: fixture.url(),
                    ..AppOptions::default()
                },
                Some(&storage),
            )
        });
    harness.run();
    let recent = harness.state().state().connection.recent.clone();
    assert!(
        recent.contains(&"postgres://app@db.internal/app".to_owned()),
        "{recent:?}"
    );
    let mut saved = MemoryStorage::default();
    eframe::App::save(harness.state_mut(), &mut saved);
    let persisted: Settings = eframe::get_value(&saved, SETTINGS_KEY).unwrap();
    let persisted = persisted.recent_connections;
    assert!(!persisted.concat().contains("hunter2"), "{persisted:?}");
    assert!(!persisted.concat().contains("k2"), "{persisted:?}");
    assert!(
        !saved.0.contains_key("recent-connections"),
        "the old key is read once, not written back"
    );
}

#[test]
fn a_session_named_at_launch_is_selected() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut harness = open_with(AppOptions {
        database_url: fixture.url(),
        select: Some(InitialSelection::Id(fixture.bob.id.to_string())),
        ..AppOptions::default()
    });
    let id = fixture.bob.id.to_string();
    run_until(&mut harness, "bob's session in the detail panel", |h| {
        shows(h, &id)
            && h.query_by_role_and_label(Role::MultilineTextInput, "Raw JSON")
                .is_some()
    });
    assert!(editor_text(&harness).contains("beans"));
}

#[test]
fn select_first_selects_the_newest_session() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut harness = open_with(AppOptions {
        database_url: fixture.url(),
        select: Some(InitialSelection::First),
        ..AppOptions::default()
    });
    let newest = fixture.alice[0].id.to_string();
    run_until(
        &mut harness,
        "the newest session in the detail panel",
        |h| {
            shows(h, &newest)
                && h.query_by_role_and_label(Role::MultilineTextInput, "Raw JSON")
                    .is_some()
        },
    );
    assert!(editor_text(&harness).contains("espresso"));
}

#[test]
fn auto_refresh_picks_up_changes_by_itself() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut harness = open_with(AppOptions {
        database_url: fixture.url(),
        auto_refresh_secs: Some(1),
        ..AppOptions::default()
    });
    run_until(&mut harness, "the table", |h| {
        shows(h, "6 matching sessions")
    });
    fixture.manager.delete(&fixture.anonymous.id).unwrap();
    run_until(&mut harness, "the refreshed count", |h| {
        shows(h, "5 matching sessions")
    });
    fixture
        .manager
        .replace_data(&fixture.bob.id, data(json!({"cart": ["refreshed"]})), 1)
        .unwrap();
    let bob = fixture.bob.id;
    run_until(&mut harness, "bob's row to be highlighted", |h| {
        h.state().state().table.is_changed(bob)
    });
}

// ---------------------------------------------------------------------------
// Issue 11: masking, device columns, history, find by cookie, bulk actions,
// export and read-only mode.

fn is_enabled(harness: &App, label: &str) -> bool {
    !harness.get_by_label(label).accesskit_node().is_disabled()
}

/// Bob's data with secrets in it, stored before the app opens.
fn give_bob_secrets(fixture: &Fixture) -> shared_model::SessionData {
    let secrets = data(json!({
        "cart": ["mug"],
        "password": "hunter2",
        "oauth": {"access_token": "tok-123", "scope": "read"}
    }));
    fixture
        .manager
        .replace_data(&fixture.bob.id, secrets.clone(), fixture.bob.version)
        .unwrap();
    secrets
}

fn masked_values_are_hidden_until_revealed_and_saving_keeps_them(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let secrets = give_bob_secrets(&fixture);
    let mut harness = open_fixture(&fixture);
    select(&mut harness, &fixture.bob);
    assert!(
        shows(&harness, "password: ••••"),
        "the tree masks the value"
    );
    assert!(!shows_containing(&harness, "hunter2"), "nowhere on screen");
    assert!(
        !editor_text(&harness).contains("hunter2"),
        "nor in the editor"
    );
    assert!(!editor_text(&harness).contains("tok-123"));

    click(&mut harness, "Reveal password");
    run_until(&mut harness, "the revealed password", |h| {
        shows(h, "password: \"hunter2\"")
    });
    assert!(
        editor_text(&harness).contains("hunter2"),
        "revealed in the editor too"
    );
    assert!(
        !shows_containing(&harness, "tok-123") && !editor_text(&harness).contains("tok-123"),
        "only that value is revealed"
    );
    click(&mut harness, "Hide password");
    run_until(&mut harness, "the password masked again", |h| {
        shows(h, "password: ••••")
    });
    assert!(!editor_text(&harness).contains("hunter2"));

    // A masked value cannot be renamed: there is no telling which secret it
    // hides any more. Nothing is sent, and the editor says what to do.
    let renamed = editor_text(&harness).replace("\"password\"", "\"pass_word\"");
    set_editor_text(&mut harness, &renamed);
    click(&mut harness, "💾 Save");
    run_until(&mut harness, "the refusal", |h| {
        shows_containing(h, "Not saved: /pass_word")
    });
    assert!(shows_containing(&harness, "Reveal it"));
    assert!(!is_enabled(&harness, "💾 Save"));
    harness.run_steps(10);
    assert_eq!(
        fixture.stored(&fixture.bob).unwrap().data,
        secrets,
        "nothing was sent"
    );
    click(&mut harness, "↺ Revert");

    // An edit made on the masked text keeps the secrets it did not touch.
    let edited = editor_text(&harness).replace("\"mug\"", "\"cup\"");
    assert_ne!(edited, editor_text(&harness));
    set_editor_text(&mut harness, &edited);
    click(&mut harness, "💾 Save");
    run_until(&mut harness, "the saved message", |h| {
        shows_containing(h, "Saved session")
    });
    let stored = fixture.stored(&fixture.bob).unwrap();
    let mut expected = secrets;
    expected.insert("cart".into(), json!(["cup"]));
    assert_eq!(
        stored.data, expected,
        "•••• was not written over the secrets"
    );
}

#[test]
fn masking_patterns_are_configurable_and_remembered() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut harness = open_fixture(&fixture);
    select(&mut harness, &fixture.bob);
    assert!(
        shows(&harness, "0: \"mug\""),
        "cart is not secret by default"
    );
    click(&mut harness, "🔒 Masking");
    harness
        .get_by_role_and_label(Role::TextInput, "Secret key patterns")
        .set_text_value_accesskit("password, cart");
    harness.run_steps(3);
    assert!(shows(&harness, "cart: ••••"), "cart is masked now");
    assert!(!shows_containing(&harness, "mug"));
    assert!(!editor_text(&harness).contains("mug"));

    // Masking switched off shows everything, and is not remembered so.
    harness
        .get_by_role_and_label(Role::CheckBox, "Mask secret values")
        .click();
    harness.run_steps(3);
    assert!(shows(&harness, "0: \"mug\""));
    assert!(!harness.state().state().masking.enabled);

    let mut storage = MemoryStorage::default();
    eframe::App::save(harness.state_mut(), &mut storage);
    drop(harness);
    let mut restarted = Harness::builder()
        .with_size([1400.0, 900.0])
        .build_eframe(|cc| {
            InspectorApp::new(
                &cc.egui_ctx,
                AppOptions {
                    database_url: fixture.url(),
                    ..AppOptions::default()
                },
                Some(&storage),
            )
        });
    let masking = restarted.state().state().masking.clone();
    assert!(masking.enabled, "masking starts on");
    assert_eq!(masking.patterns, vec!["password", "cart"]);
    run_until(&mut restarted, "the table", |h| {
        shows(h, &short(&fixture.bob))
    });
    select(&mut restarted, &fixture.bob);
    assert!(
        shows(&restarted, "cart: ••••"),
        "remembered across restarts"
    );
}

fn device_columns_are_shown_and_the_ip_filter_narrows(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    fixture.add_devices();
    let mut harness = open_fixture(&fixture);
    for header in ["IP", "Browser", "Last seen", "Rem."] {
        assert!(shows(&harness, header), "column {header}");
    }
    assert!(shows(&harness, "203.0.113.10"));
    assert!(shows(&harness, "2001:db8::b"));
    let firefox = shared_model::browser_label(Some(common::FIREFOX_LINUX));
    assert_eq!(harness.query_all_by_label(&firefox).count(), 2);
    assert_eq!(
        harness.query_all_by_label("✔").count(),
        1,
        "only bob chose remember me"
    );
    harness
        .get_by_role_and_label(Role::TextInput, "IP prefix")
        .set_text_value_accesskit("203.0.113.");
    run_until(&mut harness, "alice's two devices", |h| {
        shows(h, "2 matching sessions")
            && !shows(h, &short(&fixture.bob))
            && fixture
                .alice
                .iter()
                .all(|session| shows(h, &short(session)))
    });
    select(&mut harness, &fixture.alice[0]);
    assert!(shows(&harness, "IP address"), "the detail panel too");
    assert!(shows(&harness, "no: the app's idle timeout"));
}

/// A database made by the first migration only: no device columns, no audit
/// table. The inspector opens it, says so, and hides what it cannot show.
fn an_older_schema_hides_device_columns_and_history(db: &TestDatabase) {
    common::schema_from_sql_files(db, 1);
    let database = db.database();
    let report = database.inspect_schema().unwrap();
    assert!(!report.device_columns && !report.events_table);
    // Written as the first schema's app wrote rows (shared-model's create and
    // import write the device columns whatever the schema).
    let session_id = shared_model::SessionToken::generate().unwrap().public_id();
    db.execute(&format!(
        "INSERT INTO sessions (id, user_id, data, expires_at, created_at, updated_at, version) \
         VALUES ('{session_id}', 'olga', '{{\"cart\": []}}', '2999-01-01 00:00:00', \
         '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
    ));
    let session = shared_model::SessionManager::new(database)
        .for_schema(&report)
        .get(&session_id)
        .unwrap()
        .expect("the row, read with the first schema's columns");
    let mut harness = open(db.url());
    run_until(&mut harness, "the one session", |h| {
        shows(h, "1 matching session") && shows(h, &short(&session))
    });
    assert!(
        shows_containing(&harness, "older schema"),
        "a warning, not a refusal"
    );
    assert!(!shows(&harness, "IP") && !shows(&harness, "Browser"));
    assert!(harness
        .query_by_role_and_label(Role::TextInput, "IP prefix")
        .is_none());
    harness
        .get_by_role_and_label(Role::TextInput, "User id")
        .set_text_value_accesskit("olga");
    // The filter reloads the table: the row comes back with its page.
    run_until(&mut harness, "olga's row after filtering", |h| {
        h.state().state().table.filter.user_id.as_deref() == Some("olga")
            && shows(h, "1 matching session")
            && shows(h, &short(&session))
    });
    assert!(!is_enabled(&harness, "🕘 User history"));
    select(&mut harness, &session);
    click(&mut harness, "History");
    run_until(&mut harness, "the no-audit-table note", |h| {
        shows_containing(h, "no audit table")
    });
}

fn finding_a_session_by_its_cookie(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let token = shared_model::SessionToken::generate().unwrap();
    let cookie = token.expose_secret().to_owned();
    let mut session = fixture.bob.clone();
    session.id = token.public_id();
    session.user_id = Some("dave".into());
    fixture
        .manager
        .import(std::slice::from_ref(&session))
        .unwrap();
    let mut harness = open(&fixture.url());
    run_until(&mut harness, "the table", |h| {
        shows(h, "7 matching sessions")
    });
    let find = |harness: &mut App, text: &str| {
        harness
            .get_by_role_and_label(Role::PasswordInput, "Session cookie")
            .set_text_value_accesskit(text);
        harness.run_steps(2);
        click(harness, "🔍 Find by cookie");
    };

    find(&mut harness, &cookie);
    let id = session.id.to_string();
    run_until(&mut harness, "dave's session selected", |h| {
        shows(h, &id) && shows_containing(h, "Found session")
    });
    assert_eq!(harness.state().state().selected_id(), Some(session.id));
    assert!(shows_containing(&harness, "(dave)"));
    assert!(
        !shows_containing(&harness, &cookie),
        "the cookie is never shown"
    );
    assert!(
        harness.state().state().cookie_input.is_blank(),
        "nor kept once used"
    );

    find(&mut harness, "not-a-cookie");
    run_until(&mut harness, "the bad-token error", |h| {
        shows_containing(h, "not a session token")
    });
    assert_eq!(harness.state().state().selected_id(), Some(session.id));

    let unknown = shared_model::SessionToken::generate().unwrap();
    find(&mut harness, unknown.expose_secret());
    run_until(&mut harness, "the no-such-session error", |h| {
        shows_containing(h, "no session has this cookie")
    });
}

/// Imports `count` active sessions of `user`.
fn add_sessions(fixture: &Fixture, user: &str, count: usize) {
    let now = chrono::Utc::now();
    let rows: Vec<shared_model::Session> = (0..count)
        .map(|i| {
            let mut session = fixture.bob.clone();
            session.id = shared_model::SessionToken::generate().unwrap().public_id();
            session.user_id = Some(user.to_owned());
            session.created_at = now - chrono::Duration::minutes(30 + i as i64);
            session.updated_at = session.created_at;
            session
        })
        .collect();
    fixture.manager.import(&rows).unwrap();
}

fn count_of(fixture: &Fixture, user: &str, status: shared_model::Status) -> u64 {
    fixture
        .manager
        .count(&SessionFilter {
            user_id: Some(user.to_owned()),
            status,
            ..SessionFilter::default()
        })
        .unwrap()
}

fn bulk_expire_asks_for_the_count_then_expires_exactly_the_matching(db: &TestDatabase) {
    use shared_model::Status;
    let fixture = Fixture::new(db);
    add_sessions(&fixture, "bulk", 120);
    let mut harness = open(&fixture.url());
    run_until(&mut harness, "the table", |h| {
        shows(h, "126 matching sessions")
    });
    harness
        .get_by_role_and_label(Role::TextInput, "User id")
        .set_text_value_accesskit("bulk");
    run_until(&mut harness, "the bulk user's sessions", |h| {
        shows(h, "120 matching sessions")
    });
    click(&mut harness, "⏹ Expire all matching…");
    wait_for_dialog(&mut harness, "Expire all 120 matching sessions?");
    assert!(shows_containing(&harness, "Filter: user bulk"));
    assert!(
        !is_enabled(&harness, "Expire 120 sessions"),
        "the count must be typed"
    );
    harness
        .get_by_role_and_label(Role::TextInput, "Type the count to confirm")
        .set_text_value_accesskit("12");
    harness.run_steps(2);
    assert!(
        !is_enabled(&harness, "Expire 120 sessions"),
        "a wrong count"
    );
    click(&mut harness, "Expire 120 sessions");
    harness.run_steps(5);
    assert_eq!(
        count_of(&fixture, "bulk", Status::Active),
        120,
        "nothing ran"
    );
    harness
        .get_by_role_and_label(Role::TextInput, "Type the count to confirm")
        .set_text_value_accesskit("120");
    harness.run_steps(2);
    assert!(is_enabled(&harness, "Expire 120 sessions"));
    click(&mut harness, "Expire 120 sessions");
    run_until(&mut harness, "the bulk result", |h| {
        shows(h, "Expired 120 matching session(s)")
    });
    assert_eq!(count_of(&fixture, "bulk", Status::Active), 0);
    assert_eq!(
        count_of(&fixture, "bulk", Status::All),
        120,
        "expired, not deleted"
    );
    assert_eq!(
        count_of(&fixture, "alice", Status::Active),
        2,
        "others untouched"
    );
    let audited = common::events(db)
        .iter()
        .filter(|event| event.starts_with("admin_expire inspector"))
        .count();
    assert_eq!(audited, 120, "audited as the inspector");
}

fn bulk_delete_of_a_few_sessions_needs_no_typing(db: &TestDatabase) {
    use shared_model::Status;
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    harness
        .get_by_role_and_label(Role::TextInput, "User id")
        .set_text_value_accesskit("alice");
    run_until(&mut harness, "alice's sessions", |h| {
        shows(h, "2 matching sessions")
    });
    click(&mut harness, "🗑 Delete all matching…");
    wait_for_dialog(&mut harness, "Delete all 2 matching sessions?");
    assert!(harness
        .query_by_role_and_label(Role::TextInput, "Type the count to confirm")
        .is_none());
    click(&mut harness, "Cancel");
    harness.run_steps(3);
    assert_eq!(
        count_of(&fixture, "alice", Status::All),
        2,
        "cancel deletes nothing"
    );
    click(&mut harness, "🗑 Delete all matching…");
    wait_for_dialog(&mut harness, "Delete all 2 matching sessions?");
    click(&mut harness, "Delete 2 sessions");
    run_until(&mut harness, "the bulk result", |h| {
        shows(h, "Deleted 2 matching session(s)") && shows(h, "0 matching sessions")
    });
    assert_eq!(count_of(&fixture, "alice", Status::All), 0);
    assert_eq!(fixture.count_all(), 4);
}

/// A bulk action cancelled before it starts changes nothing; one that runs
/// changes at most the count the admin confirmed, even when more match.
#[test]
fn a_bulk_action_cancelled_before_it_starts_runs_no_batch() {
    use session_inspector::messages::{BulkAction, DatabaseUrl, Request, Response, BULK_BATCH};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let total = 2 * u64::from(BULK_BATCH) + 10;
    add_sessions(&fixture, "many", total as usize);
    let worker = session_inspector::worker::Worker::spawn(|| {}).unwrap();
    let next = || {
        worker
            .recv_timeout(Duration::from_secs(30))
            .expect("a response")
    };
    worker.send(Request::Connect {
        url: DatabaseUrl::new(fixture.url()),
        read_only: false,
    });
    assert!(matches!(next(), Response::Connected(_)));
    let many = SessionFilter {
        user_id: Some("many".into()),
        ..SessionFilter::default()
    };
    worker.send(Request::Bulk {
        action: BulkAction::Delete,
        filter: many.clone(),
        at_most: total,
        cancel: Arc::new(AtomicBool::new(true)),
    });
    match next() {
        Response::BulkDone {
            done, cancelled, ..
        } => {
            assert!(cancelled);
            assert_eq!(done, 0, "no batch ran");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        count_of(&fixture, "many", shared_model::Status::All),
        total,
        "nothing went"
    );

    // Confirmed for 3: three go, whatever else matches.
    worker.send(Request::Bulk {
        action: BulkAction::Delete,
        filter: many,
        at_most: 3,
        cancel: Arc::new(AtomicBool::new(false)),
    });
    let done = loop {
        match next() {
            Response::BulkProgress { .. } => {}
            Response::BulkDone {
                done, cancelled, ..
            } => {
                assert!(!cancelled);
                break done;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(done, 3);
    assert_eq!(
        count_of(&fixture, "many", shared_model::Status::All),
        total - 3
    );
}

/// Holds an SQLite database's write lock until released: the worker's next
/// write waits for it (up to its 5 s busy timeout), so a test can act while a
/// request is in flight.
struct WriteLock(diesel::SqliteConnection);

impl WriteLock {
    fn hold(fixture: &Fixture) -> Self {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut conn = diesel::SqliteConnection::establish(fixture.db.url()).unwrap();
        conn.batch_execute("BEGIN IMMEDIATE").unwrap();
        Self(conn)
    }

    fn release(mut self) {
        use diesel::connection::SimpleConnection;
        self.0.batch_execute("ROLLBACK").unwrap();
    }
}

/// "✖ Cancel" stops a running bulk action after its current batch: the first
/// batch is held back by a write lock until Cancel was pressed.
#[test]
fn the_cancel_button_stops_a_running_bulk_action() {
    use session_inspector::messages::BULK_BATCH;
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let total = 2 * u64::from(BULK_BATCH) + 10;
    add_sessions(&fixture, "many", total as usize);
    let mut harness = open(&fixture.url());
    run_until(&mut harness, "the table", |h| {
        shows(h, "1,016 matching sessions")
    });
    harness
        .get_by_role_and_label(Role::TextInput, "User id")
        .set_text_value_accesskit("many");
    run_until(&mut harness, "the user's sessions", |h| {
        shows(h, "1,010 matching sessions")
    });
    click(&mut harness, "🗑 Delete all matching…");
    wait_for_dialog(&mut harness, "Delete all 1,010 matching sessions?");
    harness
        .get_by_role_and_label(Role::TextInput, "Type the count to confirm")
        .set_text_value_accesskit("1010");
    harness.run_steps(2);
    let lock = WriteLock::hold(&fixture);
    click(&mut harness, "Delete 1,010 sessions");
    run_until(&mut harness, "the running job", |h| shows(h, "✖ Cancel"));
    click(&mut harness, "✖ Cancel");
    assert!(!is_enabled(&harness, "✖ Cancel"), "pressed once");
    lock.release();
    run_until(&mut harness, "the cancelled result", |h| {
        shows_containing(h, "before it was cancelled")
    });
    let left = count_of(&fixture, "many", shared_model::Status::All);
    // Cancel arrived before the first batch (none ran) or during it (it finished).
    assert!(
        left == total || left == total - u64::from(BULK_BATCH),
        "{left} of {total} left"
    );
    assert!(shows(
        &harness,
        &format!(
            "Deleted {} matching session(s) before it was cancelled",
            total - left
        )
    ));
}

fn export_writes_the_filtered_sessions_masked(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    give_bob_secrets(&fixture);
    let mut harness = open_fixture(&fixture);
    let dir = tempfile::tempdir().unwrap();

    let csv_path = dir.path().join("all.csv");
    click(&mut harness, "⬇ Export…");
    wait_for_dialog(&mut harness, "Export sessions");
    harness
        .get_by_role_and_label(Role::TextInput, "File")
        .set_text_value_accesskit(csv_path.to_str().unwrap());
    harness.run_steps(2);
    click(&mut harness, "⬇ Export");
    run_until(&mut harness, "the export result", |h| {
        shows_containing(h, "Exported 6 session(s) to")
    });
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&csv_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads it: {mode:o}");
    }
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let mut ids: Vec<String> = records.iter().map(|r| r[column("id")].to_owned()).collect();
    let mut expected: Vec<String> = fixture
        .alice
        .iter()
        .chain(&fixture.carol)
        .chain([&fixture.bob, &fixture.anonymous])
        .map(|s| s.id.to_string())
        .collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
    let bob = records
        .iter()
        .find(|r| r[column("id")] == fixture.bob.id.to_string())
        .unwrap();
    assert!(
        bob[column("data")].contains("••••"),
        "{:?}",
        &bob[column("data")]
    );
    let text = std::fs::read_to_string(&csv_path).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("tok-123"),
        "masked"
    );

    // NDJSON of the filtered set.
    harness
        .get_by_role_and_label(Role::TextInput, "User id")
        .set_text_value_accesskit("alice");
    run_until(&mut harness, "alice's sessions", |h| {
        shows(h, "2 matching sessions")
    });
    let ndjson_path = dir.path().join("alice.ndjson");
    click(&mut harness, "⬇ Export…");
    wait_for_dialog(&mut harness, "Export sessions");
    click(&mut harness, "NDJSON");
    harness
        .get_by_role_and_label(Role::TextInput, "File")
        .set_text_value_accesskit(ndjson_path.to_str().unwrap());
    harness.run_steps(2);
    click(&mut harness, "⬇ Export");
    run_until(&mut harness, "the second export", |h| {
        shows_containing(h, "Exported 2 session(s) to")
    });
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&ndjson_path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["user_id"], json!("alice"));
        assert!(line["data"].is_object());
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no partial files: {leftovers:?}");
}

/// Hovers `label` and waits for its tooltip to say `why`.
fn tooltip_says(harness: &mut App, label: &str, why: &str) {
    harness.get_by_label(label).hover();
    run_until(harness, &format!("the tooltip of {label}"), |h| {
        shows_containing(h, why)
    });
}

/// A file typed into the export dialog that exists already is replaced only
/// after "Replace the existing file" is ticked.
#[test]
fn an_existing_export_file_is_replaced_only_when_asked() {
    let db = TestDatabase::sqlite();
    let fixture = Fixture::new(&db);
    let mut harness = open_fixture(&fixture);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("existing.csv");
    std::fs::write(&path, "keep me").unwrap();
    click(&mut harness, "⬇ Export…");
    wait_for_dialog(&mut harness, "Export sessions");
    harness
        .get_by_role_and_label(Role::TextInput, "File")
        .set_text_value_accesskit(path.to_str().unwrap());
    harness.run_steps(2);
    assert!(shows_containing(
        &harness,
        "exists: it is replaced only if you say so"
    ));
    assert!(!is_enabled(&harness, "⬇ Export"), "not without asking");
    // A script that starts it anyway is refused too.
    let ctx = harness.ctx.clone();
    harness
        .state_mut()
        .run_command(&ctx, session_inspector::ui::Command::StartExport);
    harness.run_steps(5);
    assert!(shows_containing(
        &harness,
        "tick \"Replace the existing file\""
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");

    click(&mut harness, "Replace the existing file");
    assert!(is_enabled(&harness, "⬇ Export"));
    click(&mut harness, "⬇ Export");
    run_until(&mut harness, "the export result", |h| {
        shows_containing(h, "Exported 6 session(s) to")
    });
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("id,user_id"), "{text}");
}

fn read_only_disables_writes_and_the_connection_refuses_them(db: &TestDatabase) {
    use session_inspector::messages::{BulkAction, ExpiryChange};
    use session_inspector::ui::Command;
    use session_inspector::worker::READ_ONLY_REFUSAL;
    let fixture = Fixture::new(db);
    let mut harness = open_with(AppOptions {
        database_url: fixture.url(),
        read_only: true,
        ..AppOptions::default()
    });
    run_until(&mut harness, "the table", |h| {
        shows(h, "6 matching sessions") && shows(h, "🔒 read-only")
    });
    let before = fixture.snapshot();
    let bob = &fixture.bob;
    select(&mut harness, bob);

    // Started with --read-only: the toggle is locked on, and says why.
    let toggle = harness.get_by_role_and_label(Role::CheckBox, "Read-only");
    assert!(toggle.accesskit_node().is_disabled(), "locked");
    assert_eq!(
        toggle.accesskit_node().toggled(),
        Some(egui::accesskit::Toggled::True)
    );
    toggle.hover();
    run_until(&mut harness, "the toggle's tooltip", |h| {
        shows_containing(h, "started with --read-only")
    });

    let writes = [
        "⏹ Expire now",
        "⏩ Extend",
        "🗑 Delete…",
        "🗑 Delete all of bob…",
        "⏹ Expire all matching…",
        "🗑 Delete all matching…",
        "🗑 Purge expired…",
    ];
    for label in writes {
        assert!(!is_enabled(&harness, label), "{label} is enabled");
    }
    let minutes = harness.get_by_role_and_label(Role::SpinButton, "by");
    assert!(
        minutes.accesskit_node().is_disabled(),
        "the Extend minutes field"
    );
    assert!(is_enabled(&harness, "⬇ Export…"), "reading is fine");
    tooltip_says(
        &mut harness,
        "⏹ Expire now",
        "the inspector was started with --read-only, so nothing can be changed",
    );
    // Delete on the keyboard is a write too.
    harness.key_press(egui::Key::Escape);
    harness.step();
    harness.key_press(egui::Key::Delete);
    harness.run_steps(5);
    assert!(!shows(&harness, "Delete this session?"));

    // The overview's Purge too.
    click(&mut harness, "Overview");
    run_until(&mut harness, "the statistics", |h| {
        shows(h, "Distinct users")
    });
    assert!(!is_enabled(&harness, "🗑 Purge expired…"), "overview purge");
    tooltip_says(&mut harness, "🗑 Purge expired…", "started with --read-only");
    click(&mut harness, "Sessions");
    run_until(&mut harness, "the sessions tab", |h| {
        shows(h, "⏹ Expire now")
    });

    // A write attempted anyway is refused by the connection itself, and the
    // message says why.
    let ctx = harness.ctx.clone();
    harness
        .state_mut()
        .run_command(&ctx, Command::SetExpiry(ExpiryChange::ExpireNow));
    run_until(&mut harness, "the refused expiry", |h| {
        shows_containing(h, "expiring the session:") && shows_containing(h, READ_ONLY_REFUSAL)
    });
    harness
        .state_mut()
        .run_command(&ctx, Command::AskBulk(BulkAction::Delete));
    wait_for_dialog(&mut harness, "Delete all 6 matching sessions?");
    harness.state_mut().run_command(&ctx, Command::Confirmed);
    run_until(&mut harness, "the refused bulk delete", |h| {
        shows_containing(h, "deleting the matching sessions:")
            && shows_containing(h, READ_ONLY_REFUSAL)
    });
    // Nor can a script reopen it writable.
    harness
        .state_mut()
        .run_command(&ctx, Command::SetReadOnly(false));
    harness.run_steps(5);
    assert!(shows_containing(
        &harness,
        "started with --read-only; restart it without"
    ));
    assert!(shows(&harness, "🔒 read-only"));
    assert_eq!(fixture.snapshot(), before, "nothing was written");
    assert!(fixture.stored(bob).unwrap().expires_at > chrono::Utc::now());
}

/// Ticking Read-only needs no confirmation and keeps an edit in progress
/// unsaved (Save and "Overwrite with mine" disabled); unticking asks first.
fn unticking_read_only_asks_first_and_read_only_keeps_edits_unsaved(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    let mut harness = open_fixture(&fixture);
    let bob = &fixture.bob;
    select(&mut harness, bob);
    set_editor_text(&mut harness, r#"{"cart": ["mine"]}"#);
    assert!(is_enabled(&harness, "💾 Save"));

    harness
        .get_by_role_and_label(Role::CheckBox, "Read-only")
        .click();
    run_until(&mut harness, "the read-only database", |h| {
        shows(h, "🔒 read-only") && !is_enabled(h, "⏹ Expire now")
    });
    assert!(
        !shows(&harness, "Open the database writable?"),
        "no question"
    );
    assert!(
        shows_containing(&harness, "Valid JSON object, not saved"),
        "the edit is kept, dirty"
    );
    assert!(editor_text(&harness).contains("mine"));
    assert!(
        !is_enabled(&harness, "💾 Save"),
        "a dirty edit cannot be saved"
    );
    tooltip_says(&mut harness, "💾 Save", "the database was opened read-only");

    // Unticking asks; cancelling keeps it read-only.
    harness
        .get_by_role_and_label(Role::CheckBox, "Read-only")
        .click();
    wait_for_dialog(&mut harness, "Open the database writable?");
    click(&mut harness, "Cancel");
    run_until(&mut harness, "the dialog to close", |h| {
        !shows(h, "Open the database writable?")
    });
    harness.run_steps(5);
    assert!(shows(&harness, "🔒 read-only"));
    assert!(!is_enabled(&harness, "💾 Save"));

    // Confirmed, it reopens writable and the edit can be saved: here it
    // conflicts with the web app's write, and the conflict is locked too
    // while read-only.
    let theirs = data(json!({"cart": ["theirs"]}));
    fixture
        .manager
        .replace_data(&bob.id, theirs.clone(), bob.version)
        .unwrap();
    harness
        .get_by_role_and_label(Role::CheckBox, "Read-only")
        .click();
    wait_for_dialog(&mut harness, "Open the database writable?");
    click(&mut harness, "Open writable");
    // The reopened database reloads the session: its new data moves the
    // editor's Save button, so wait for it before clicking.
    run_until(&mut harness, "the writable database", |h| {
        !shows(h, "🔒 read-only") && is_enabled(h, "💾 Save") && shows(h, "0: \"theirs\"")
    });
    click(&mut harness, "💾 Save");
    run_until(&mut harness, "the conflict view", |h| {
        shows_containing(h, "Conflict: this session changed")
    });
    assert!(is_enabled(&harness, "⚠ Overwrite with mine"));
    harness
        .get_by_role_and_label(Role::CheckBox, "Read-only")
        .click();
    run_until(&mut harness, "read-only again", |h| {
        shows(h, "🔒 read-only") && !is_enabled(h, "⏹ Expire now")
    });
    assert!(
        shows_containing(&harness, "Conflict: this session changed"),
        "the conflict stays"
    );
    assert!(!is_enabled(&harness, "⚠ Overwrite with mine"));
    assert!(is_enabled(&harness, "↺ Reload"), "reading is fine");
    assert_eq!(fixture.stored(bob).unwrap().data, theirs, "nothing written");
}

fn the_history_shows_a_sessions_events_and_a_users(db: &TestDatabase) {
    let fixture = Fixture::new(db);
    // The web app signs alice in on a new device (audited as the app).
    let app = fixture.manager.clone().with_audit(shared_model::Actor::App);
    let client = shared_model::Client::new(
        Some("203.0.113.50".parse().unwrap()),
        Some(common::FIREFOX_LINUX),
    );
    let token = shared_model::SessionToken::generate().unwrap();
    let login = app
        .create(
            &token,
            shared_model::NewSession {
                user_id: Some("alice"),
                client: Some(&client),
                ..shared_model::NewSession::expiring(
                    chrono::Utc::now() + chrono::Duration::hours(1),
                )
            },
        )
        .unwrap();
    let mut harness = open(&fixture.url());
    run_until(&mut harness, "the table", |h| {
        shows(h, "7 matching sessions")
    });
    select(&mut harness, &fixture.bob);
    click(&mut harness, "⏩ Extend");
    run_until(&mut harness, "the extended message", |h| {
        shows_containing(h, "Extended session")
    });
    click(&mut harness, "History");
    run_until(&mut harness, "bob's timeline", |h| {
        shows(h, "admin_extend") && shows(h, "by inspector")
    });
    assert!(!shows(&harness, "login"), "only bob's session's events");

    harness
        .get_by_role_and_label(Role::TextInput, "User id")
        .set_text_value_accesskit("alice");
    harness.run_steps(2);
    click(&mut harness, "🕘 User history");
    run_until(&mut harness, "alice's timeline", |h| {
        shows(h, "History of alice") && shows(h, "login")
    });
    assert!(shows(&harness, "by app"));
    assert!(shows(&harness, "203.0.113.50"), "the client's address");
    assert!(shows(
        &harness,
        &shared_model::browser_label(Some(common::FIREFOX_LINUX))
    ));
    assert!(
        shows(&harness, &login.id.short()),
        "the session it happened to"
    );
    assert!(
        !shows(&harness, "admin_extend"),
        "bob's events are not alice's"
    );
    click(&mut harness, "✖ Close history");
    run_until(&mut harness, "the session again", |h| {
        h.query_by_role_and_label(Role::MultilineTextInput, "Raw JSON")
            .is_some()
    });
}

/// A password in the URL opens the database and is then neither shown nor
/// remembered; toggling read-only reopens it with the password kept in memory.
#[cfg(feature = "postgres")]
#[test]
fn a_password_in_the_url_is_never_shown_or_remembered() {
    let db = TestDatabase::postgres();
    let fixture = Fixture::new(&db);
    // The test server trusts local connections, so any password works.
    let url = fixture.url().replacen("postgres@", "postgres:hunter2@", 1);
    assert!(url.contains("hunter2"), "{url}");
    let mut harness = open(&url);
    run_until(&mut harness, "the table", |h| {
        shows(h, "6 matching sessions")
    });
    let field = harness
        .get_by_role_and_label(Role::TextInput, "Database")
        .value()
        .unwrap_or_default();
    assert!(
        field.contains("127.0.0.1") && !field.contains("hunter2"),
        "{field}"
    );
    assert!(!shows_containing(&harness, "hunter2"));
    harness
        .get_by_role_and_label(Role::CheckBox, "Read-only")
        .click();
    run_until(&mut harness, "the read-only reconnection", |h| {
        shows(h, "🔒 read-only") && shows(h, "6 matching sessions")
    });
    let mut saved = MemoryStorage::default();
    eframe::App::save(harness.state_mut(), &mut saved);
    assert!(!saved.0.values().any(|value| value.contains("hunter2")));
}

shared_model::backend_tests!(
    the_table_shows_the_seeded_sessions,
    filtering_by_user_narrows_the_table,
    status_and_data_filters_narrow_the_table,
    selecting_a_row_shows_its_data,
    a_valid_edit_is_saved_to_the_database,
    invalid_json_is_refused_and_the_error_says_where,
    a_concurrent_change_shows_the_conflict_and_overwrites_nothing,
    overwriting_after_a_conflict_keeps_the_current_secrets,
    reload_after_a_conflict_shows_the_current_version,
    expire_now_expires_the_session_in_the_database,
    extend_moves_the_expiry_later,
    delete_asks_first_then_removes_the_session,
    delete_all_of_a_user_logs_them_out_everywhere,
    purge_removes_exactly_the_expired_sessions,
    refresh_picks_up_changes_and_highlights_them,
    the_overview_shows_counts,
    sorting_by_expiry_puts_the_soonest_last_or_first,
    masked_values_are_hidden_until_revealed_and_saving_keeps_them,
    device_columns_are_shown_and_the_ip_filter_narrows,
    an_older_schema_hides_device_columns_and_history,
    finding_a_session_by_its_cookie,
    bulk_expire_asks_for_the_count_then_expires_exactly_the_matching,
    bulk_delete_of_a_few_sessions_needs_no_typing,
    export_writes_the_filtered_sessions_masked,
    read_only_disables_writes_and_the_connection_refuses_them,
    unticking_read_only_asks_first_and_read_only_keeps_edits_unsaved,
    the_history_shows_a_sessions_events_and_a_users,
);

/// Adds a week of alice's history to the SQLite database named by
/// `INSPECTOR_SCREENSHOT_DB` (made by `session-inspector seed`): logins on
/// three devices, a rotation, a revocation, a logout and two inspector
/// changes, as the app and the inspector would write them. It is the data
/// behind `docs/inspector-history.png`; run it by hand with `--ignored`.
#[test]
#[ignore = "builds the screenshot database; run by hand with INSPECTOR_SCREENSHOT_DB set"]
fn history_screenshot_database() {
    use chrono::Duration as Minutes;
    use shared_model::{Actor, Client, ManualClock, NewSession, SessionToken};
    let Some(path) = std::env::var_os("INSPECTOR_SCREENSHOT_DB") else {
        panic!("set INSPECTOR_SCREENSHOT_DB to a seeded SQLite file");
    };
    let db = shared_model::Database::connect(path.to_string_lossy()).unwrap();
    let now = chrono::Utc::now();
    let clock = ManualClock::new(now - Minutes::days(6));
    let app = shared_model::SessionManager::new(db)
        .with_clock(clock.clone())
        .with_audit(Actor::App);
    let inspector = app.clone().with_audit(Actor::Inspector);
    let device = |ip: &str, agent: &str| Client::new(Some(ip.parse().unwrap()), Some(agent));
    let laptop = device("203.0.113.10", common::FIREFOX_LINUX);
    let phone = device("198.51.100.23", common::SAFARI_IPHONE);
    let office = device("192.0.2.44", common::CHROME_WINDOWS);
    let login = |client: &Client, days: i64, remember: bool| {
        let token = SessionToken::generate().unwrap();
        app.create(
            &token,
            NewSession {
                data: data(json!({"cart": [], "locale": "en-GB", "csrf_token": "5f0c9a"})),
                user_id: Some("alice"),
                expires_at: app.now() + Minutes::days(days),
                timeout_seconds: remember.then_some(30 * 86_400),
                client: Some(client),
            },
        )
        .unwrap()
    };
    let first = login(&laptop, 30, true);
    clock.advance(Minutes::minutes(42));
    let laptop_id = app
        .cycle_id(&first.id, &SessionToken::generate().unwrap())
        .unwrap();
    clock.advance(Minutes::days(1));
    let on_phone = login(&phone, 1, false);
    clock.advance(Minutes::days(2));
    let at_work = login(&office, 1, false);
    clock.advance(Minutes::hours(20));
    app.revoke("alice", &at_work.id, Some(&laptop_id)).unwrap();
    clock.advance(Minutes::hours(30));
    app.logout(&on_phone.id).unwrap();
    clock.set(now - Minutes::hours(3));
    let current = inspector.get(&laptop_id).unwrap().unwrap();
    let mut edited = current.data.clone();
    edited.insert("cart".into(), json!(["espresso"]));
    inspector
        .replace_data(&laptop_id, edited, current.version)
        .unwrap();
    clock.set(now - Minutes::minutes(50));
    inspector
        .change_expiry(&laptop_id, shared_model::ExpiryChange::ExtendMinutes(60))
        .unwrap();
    clock.set(now - Minutes::minutes(5));
    login(&phone, 1, false);
    println!("alice's laptop session: {laptop_id}");
}
