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
