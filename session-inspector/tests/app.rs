//! The real app, driven through its AccessKit tree (labels and roles) over a
//! scratch SQLite database. The database worker is a thread, so every wait steps
//! frames until what a user would see is there, up to a generous frame limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

mod common;

use shared_model::test_util::TestDatabase;

use std::time::Duration;

use common::{data, short, Fixture};
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use serde_json::json;
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
    panic!("gave up after {MAX_FRAMES} frames waiting for {what}");
}

fn shows(harness: &App, label: &str) -> bool {
    harness.query_by_label(label).is_some()
}

fn shows_containing(harness: &App, text: &str) -> bool {
    harness.query_by_label_contains(text).is_some()
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
    harness.get_by_label(&short(session)).click();
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
        shows(h, "2 matching sessions") && !shows(h, &short(&fixture.bob))
    });
    for session in &fixture.alice {
        assert!(shows(&harness, &short(session)));
    }
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
    let bob = fixture.bob.id.to_string();
    run_until(&mut harness, "bob's row to be marked changed", |h| {
        h.state().state().table.changed.contains(&bob)
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
fn pending_migrations_are_reported_not_run() {
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
    run_until(&mut harness, "the pending-migrations warning", |h| {
        shows_containing(h, "pending migration")
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
    let first = harness
        .state()
        .state()
        .table
        .row(0)
        .unwrap()
        .session_id
        .clone();
    // Newest expiry first: alice's 60-minute session.
    assert_eq!(first, fixture.alice[1].id.to_string());
    click(&mut harness, "Expires ⏷");
    run_until(&mut harness, "the order to flip", |h| {
        !h.state().state().table.sort.descending && h.state().state().table.showed_rows
    });
    let first = harness
        .state()
        .state()
        .table
        .row(0)
        .unwrap()
        .session_id
        .clone();
    assert_eq!(
        first,
        fixture.carol[1].id.to_string(),
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
    let persisted: Vec<String> = eframe::get_value(&saved, "recent-connections").unwrap();
    assert!(!persisted.concat().contains("hunter2"), "{persisted:?}");
    assert!(!persisted.concat().contains("k2"), "{persisted:?}");
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
    let bob = fixture.bob.id.to_string();
    run_until(&mut harness, "bob's row to be highlighted", |h| {
        h.state().state().table.changed.contains(&bob)
    });
}

shared_model::backend_tests!(
    the_table_shows_the_seeded_sessions,
    filtering_by_user_narrows_the_table,
    status_and_data_filters_narrow_the_table,
    selecting_a_row_shows_its_data,
    a_valid_edit_is_saved_to_the_database,
    invalid_json_is_refused_and_the_error_says_where,
    a_concurrent_change_shows_the_conflict_and_overwrites_nothing,
    reload_after_a_conflict_shows_the_current_version,
    expire_now_expires_the_session_in_the_database,
    extend_moves_the_expiry_later,
    delete_asks_first_then_removes_the_session,
    delete_all_of_a_user_logs_them_out_everywhere,
    purge_removes_exactly_the_expired_sessions,
    refresh_picks_up_changes_and_highlights_them,
    the_overview_shows_counts,
    sorting_by_expiry_puts_the_soonest_last_or_first,
);
