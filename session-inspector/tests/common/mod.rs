//! Fixtures shared by the app and CLI tests: a scratch SQLite database with a
//! known set of sessions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    dead_code
)] // test code

use chrono::{Duration, Utc};
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::{json, Value};
use shared_model::test_util::TestDatabase;
use shared_model::{Session, SessionData, SessionManager};

/// A scratch database with six sessions: alice (2, active), bob (1, active),
/// an anonymous visitor (1, active, `theme: dark`) and carol (2, expired).
pub struct Fixture<'a> {
    pub db: &'a TestDatabase,
    pub manager: SessionManager,
    pub alice: Vec<Session>,
    pub bob: Session,
    pub anonymous: Session,
    pub carol: Vec<Session>,
}

pub fn data(value: Value) -> SessionData {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn session(
    user: Option<&str>,
    data_value: Value,
    age_minutes: i64,
    expires_in_minutes: i64,
) -> Session {
    let now = Utc::now();
    let created = now - Duration::minutes(age_minutes);
    Session {
        id: shared_model::SessionToken::generate().unwrap().public_id(),
        user_id: user.map(str::to_owned),
        data: data(data_value),
        expires_at: now + Duration::minutes(expires_in_minutes),
        created_at: created,
        updated_at: created,
        version: 1,
        ip_address: None,
        user_agent: None,
        last_seen_at: Some(created),
        timeout_seconds: None,
    }
}

impl<'a> Fixture<'a> {
    pub fn new(db: &'a TestDatabase) -> Self {
        let manager = db.manager();
        let alice = vec![
            session(
                Some("alice"),
                json!({"cart": ["espresso"], "locale": "en-GB"}),
                5,
                30,
            ),
            session(
                Some("alice"),
                json!({"cart": [], "flash": "Welcome back"}),
                15,
                60,
            ),
        ];
        let bob = session(Some("bob"), json!({"cart": ["mug", "beans"]}), 10, 45);
        let anonymous = session(None, json!({"theme": "dark"}), 20, 20);
        let carol = vec![
            session(Some("carol"), json!({"cart": ["kettle"]}), 120, -30),
            session(Some("carol"), json!({}), 180, -90),
        ];
        let mut all = alice.clone();
        all.extend([bob.clone(), anonymous.clone()]);
        all.extend(carol.clone());
        manager.import(&all).unwrap();
        Self {
            db,
            manager,
            alice,
            bob,
            anonymous,
            carol,
        }
    }

    pub fn url(&self) -> String {
        self.db.url().to_owned()
    }

    pub fn stored(&self, session: &Session) -> Option<Session> {
        self.manager.get(&session.id).unwrap()
    }

    pub fn count_all(&self) -> u64 {
        self.manager
            .count(&shared_model::SessionFilter::default())
            .unwrap()
    }

    /// Runs raw SQL on an SQLite fixture (for rows the manager would never write).
    pub fn execute_raw(&self, sql: &str) {
        assert_eq!(self.db.backend(), shared_model::Backend::Sqlite);
        diesel::SqliteConnection::establish(self.db.url())
            .unwrap()
            .batch_execute(sql)
            .unwrap();
    }
}

/// The short id the table shows.
pub fn short(session: &Session) -> String {
    session.id.short()
}

/// User agents the device helpers record.
pub const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) \
     AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) \
     AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

impl Fixture<'_> {
    /// Records devices, as the app would: alice's two sessions from
    /// 203.0.113.10 and .11 (Firefox), bob from 2001:db8::b (Safari, "remember
    /// me" for 30 days), the anonymous visitor from 198.51.100.9 (Chrome);
    /// carol's expired sessions have none. Works on every backend.
    pub fn add_devices(&self) {
        let rows = [
            (&self.alice[0], "203.0.113.10", FIREFOX_LINUX, "NULL"),
            (&self.alice[1], "203.0.113.11", FIREFOX_LINUX, "NULL"),
            (&self.bob, "2001:db8::b", SAFARI_IPHONE, "2592000"),
            (&self.anonymous, "198.51.100.9", CHROME_WINDOWS, "NULL"),
        ];
        for (session, ip, agent, timeout) in rows {
            self.db.execute(&format!(
                "UPDATE sessions SET ip_address = '{ip}', user_agent = '{agent}', \
                 timeout_seconds = {timeout} WHERE id = '{}'",
                session.id
            ));
        }
    }

    /// Every session as stored (newest first) and every audit event's kind and
    /// actor: equal before and after a command that must not write.
    pub fn snapshot(&self) -> (Vec<Session>, Vec<String>) {
        let sessions = self
            .manager
            .list(
                &shared_model::SessionFilter::default(),
                shared_model::Sort::default(),
                shared_model::Page::first(10_000),
            )
            .unwrap()
            .into_iter()
            .map(|listed| listed.unwrap())
            .collect();
        (sessions, events(self.db))
    }
}

/// Every audit event as `kind actor session_id`, oldest first.
pub fn events(db: &TestDatabase) -> Vec<String> {
    let kinds = db.query_strings("SELECT kind AS value FROM session_events ORDER BY id");
    let actors = db.query_strings("SELECT actor AS value FROM session_events ORDER BY id");
    let sessions = db.query_strings("SELECT session_id AS value FROM session_events ORDER BY id");
    kinds
        .into_iter()
        .zip(actors)
        .zip(sessions)
        .map(|((kind, actor), session)| format!("{kind} {actor} {session}"))
        .collect()
}

/// The folder of this backend's SQL migrations.
pub fn migrations_dir(db: &TestDatabase) -> std::path::PathBuf {
    let backend = match db.backend() {
        shared_model::Backend::Sqlite => "sqlite",
        shared_model::Backend::Postgres => "postgres",
        shared_model::Backend::Mysql => "mysql",
    };
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(backend)
}

/// Drops the session tables and Diesel's bookkeeping (those that exist): an
/// empty database.
pub fn drop_session_tables(db: &TestDatabase) {
    for table in ["session_events", "sessions", "__diesel_schema_migrations"] {
        db.execute(&format!("DROP TABLE IF EXISTS {table}"));
    }
}

/// Empties the database, then runs the first `count` of our `up.sql` files
/// directly, as another migration tool would: the schema without Diesel's
/// bookkeeping.
pub fn schema_from_sql_files(db: &TestDatabase, count: usize) {
    drop_session_tables(db);
    let mut folders: Vec<_> = std::fs::read_dir(migrations_dir(db))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("up.sql").is_file())
        .collect();
    folders.sort();
    assert!(folders.len() >= count, "{folders:?}");
    for folder in folders.iter().take(count) {
        db.execute(&std::fs::read_to_string(folder.join("up.sql")).unwrap());
    }
}

/// How many SQL migrations this backend has.
pub fn migration_count(db: &TestDatabase) -> usize {
    std::fs::read_dir(migrations_dir(db))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().join("up.sql").is_file())
        .count()
}
