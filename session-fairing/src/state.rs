//! What one request knows and did about its session, and what to write at the end.

use chrono::{DateTime, Utc};
use serde_json::Value;
use shared_model::{
    user_id_of_value, ChangeSet, Client, Session as Row, SessionData, SessionId, SessionToken,
    USER_ID_KEY,
};

use crate::config::Settings;

/// The session as the handler sees and changes it.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The stored row this request is bound to, as loaded (its data moved to
    /// `data`): what the end of the request writes over when nobody else
    /// wrote since ([`SessionManager::apply_loaded`](shared_model::SessionManager::apply_loaded)).
    /// `None`: a new session, stored only if something is written.
    pub bound: Option<Row>,
    /// The token the request's cookie carried (when `bound`).
    cookie_token: Option<SessionToken>,
    /// The token the session gets at the end of the request: a new session's
    /// first token, or the one a cycled session moves to.
    next_token: Option<SessionToken>,
    pub data: SessionData,
    pub user_id: Option<String>,
    pub changes: ChangeSet,
    /// A row to delete at the end of the request (logout).
    pub delete: Option<SessionId>,
    /// The operating system had no randomness for a token: the save fails with it.
    token_error: Option<shared_model::Error>,
    /// The request's client, recorded with every write (`None` when
    /// `record_client` is off).
    client: Option<Client>,
    /// The session's own idle timeout in seconds ("remember me").
    timeout_seconds: Option<i64>,
    /// Another user signed in: the expiry starts over instead of only growing.
    restarted: bool,
}

impl State {
    pub fn fresh(client: Option<Client>) -> Self {
        Self {
            client,
            ..Self::default()
        }
    }

    pub fn from_row(mut row: Row, token: SessionToken, client: Option<Client>) -> Self {
        let data = std::mem::take(&mut row.data);
        Self {
            cookie_token: Some(token),
            data,
            user_id: row.user_id.clone(),
            client,
            timeout_seconds: row.timeout_seconds.filter(|seconds| *seconds > 0),
            bound: Some(row),
            ..Self::default()
        }
    }

    /// Gives the session its own idle timeout ("remember me").
    pub fn remember(&mut self, timeout: chrono::Duration) {
        let seconds = timeout.num_seconds().max(1);
        self.timeout_seconds = Some(seconds);
        self.changes.set_timeout_seconds(seconds);
    }

    /// Whether the session has its own idle timeout.
    pub fn is_remembered(&self) -> bool {
        self.timeout_seconds.is_some()
    }

    /// The idle timeout that renewals use: the session's own, kept between
    /// the configured timeout and what `remember_max_days` allows now (a row
    /// written under a larger cap, or by hand, renews to today's; an expiry
    /// already written stands).
    fn timeout(&self, settings: &Settings) -> chrono::Duration {
        self.timeout_seconds.map_or(settings.timeout, |seconds| {
            chrono::Duration::try_seconds(seconds)
                .unwrap_or(settings.remember_max)
                .min(settings.remember_max)
                .max(settings.timeout)
        })
    }

    pub fn is_modified(&self) -> bool {
        !self.changes.is_empty() || self.delete.is_some()
    }

    /// The token of the stored session this request came with, if any.
    pub fn cookie_token(&self) -> Option<&SessionToken> {
        self.cookie_token.as_ref()
    }

    /// The token the browser holds after this request: the new one when the
    /// session is new or cycled (made now if need be), else the cookie's.
    pub fn token_after(&mut self) -> Option<&SessionToken> {
        if self.bound.is_none() {
            if let Err(error) = self.first_token() {
                self.token_error = Some(error);
            }
        }
        self.next_token.as_ref().or(self.cookie_token.as_ref())
    }

    /// A new session's token, made on first need.
    fn first_token(&mut self) -> shared_model::Result<SessionToken> {
        if let Some(token) = &self.next_token {
            return Ok(token.clone());
        }
        let token = SessionToken::generate()?;
        self.next_token = Some(token.clone());
        Ok(token)
    }

    fn new_token(&mut self) -> Option<SessionToken> {
        match SessionToken::generate() {
            Ok(token) => Some(token),
            Err(error) => {
                self.token_error = Some(error);
                None
            }
        }
    }

    pub fn set(&mut self, key: String, value: Value) {
        if key == USER_ID_KEY {
            self.set_user_id(user_id_of_value(&value));
        }
        self.changes.set(key.clone(), value.clone());
        self.data.insert(key, value);
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let removed = self.data.remove(key);
        // The `user_id` key and column go whatever this request saw: only the
        // column may have been set, or a concurrent request set it since.
        if removed.is_some() || key == USER_ID_KEY {
            self.changes.remove(key);
        }
        if key == USER_ID_KEY {
            self.set_user_id(None);
        }
        removed
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.changes.clear();
        self.set_user_id(None);
    }

    pub fn set_user_id(&mut self, user_id: Option<String>) {
        self.changes.set_user_id(user_id.clone());
        self.user_id = user_id;
    }

    /// Moves a stored session to a new token at the end of the request (a new
    /// session gets its first token anyway).
    pub fn cycle_id(&mut self) {
        if self.bound.is_none() {
            return;
        }
        if let Some(token) = self.new_token() {
            self.changes.cycle_id(&token);
            self.next_token = Some(token);
        }
    }

    /// Signs `user_id` in: a session that belonged to someone else starts empty
    /// (an anonymous one keeps its data, a guest's cart say), and the id cycles.
    /// The stored row is judged again under its lock when the change is applied.
    pub fn login(&mut self, user_id: String) {
        // The row's user when loaded, or the one this request set.
        let other_user = |user: Option<&str>| user.is_some_and(|u| u != user_id);
        let loaded_user = self.bound.as_ref().and_then(|row| row.user_id.as_deref());
        if other_user(loaded_user) || other_user(self.user_id.as_deref()) {
            self.clear();
            // The previous user's "remember me", age and expiry are not the new
            // user's; a `remember` made in this request (kept by the change
            // set) is.
            self.timeout_seconds = self.changes.timeout_seconds();
            self.restarted = true;
        }
        self.user_id = Some(user_id.clone());
        self.changes.login(user_id);
        self.cycle_id();
    }

    /// Logout: forget the row (deleted at the end of the request) and start over
    /// with a new, empty session.
    pub fn delete(&mut self) {
        if let Some(bound) = self.bound.take() {
            self.delete = Some(bound.id);
        }
        self.cookie_token = None;
        self.next_token = None;
        self.data.clear();
        self.user_id = None;
        self.timeout_seconds = None;
        self.restarted = false;
        self.changes = ChangeSet::default();
    }

    /// What the end of the request writes, and the expiry the session has after it.
    fn decide(&self, settings: &Settings, now: DateTime<Utc>) -> (Decision, DateTime<Utc>) {
        let timeout = self.timeout(settings);
        match (&self.bound, self.changes.is_empty()) {
            (None, true) => (Decision::Nothing, renewed(settings, timeout, now, now)),
            (None, false) => (Decision::Create, renewed(settings, timeout, now, now)),
            (Some(_), false) if self.restarted => {
                (Decision::Apply, renewed(settings, timeout, now, now))
            }
            (Some(bound), false) => (
                Decision::Apply,
                renewed(settings, timeout, now, bound.created_at).max(bound.expires_at),
            ),
            (Some(bound), true) => {
                let expires_at = renewed(settings, timeout, now, bound.created_at);
                if renewal_due(bound, timeout, settings, now) && expires_at > bound.expires_at {
                    (Decision::Touch, expires_at)
                } else {
                    (Decision::Nothing, bound.expires_at)
                }
            }
        }
    }

    /// The expiry the session has after this request (as [`plan`](Self::plan) writes it).
    pub fn expires_at_after(&self, settings: &Settings, now: DateTime<Utc>) -> DateTime<Utc> {
        self.decide(settings, now).1
    }

    /// What to write at the end of the request.
    ///
    /// # Errors
    ///
    /// [`shared_model::Error::Randomness`] when a token this request needed could
    /// not be made: nothing can be stored safely.
    pub fn plan(&mut self, settings: &Settings, now: DateTime<Utc>) -> shared_model::Result<Plan> {
        let (decision, expires_at) = self.decide(settings, now);
        let write = match (decision, &self.bound) {
            (Decision::Create, _) => Write::Create {
                token: self.first_token()?,
                data: self.data.clone(),
                user_id: self.user_id.clone(),
                expires_at,
                timeout_seconds: self.timeout_seconds,
                client: self.client.clone(),
            },
            (Decision::Apply, Some(bound)) => {
                let mut changes = self.changes.clone();
                // The client rides along with a write the request makes anyway.
                if let Some(client) = &self.client {
                    changes.set_client(client.clone());
                }
                Write::Apply {
                    changes,
                    new_token: self.next_token.clone(),
                    expires_at,
                    // The handler's view: the loaded data with `changes` on it.
                    loaded: Box::new(Row {
                        data: self.data.clone(),
                        ..bound.clone()
                    }),
                }
            }
            (Decision::Touch, Some(bound)) => Write::Touch {
                id: bound.id,
                expires_at,
                client: self.client.clone(),
            },
            _ => Write::Nothing,
        };
        if let Some(error) = self.token_error.take() {
            return Err(error);
        }
        Ok(Plan {
            delete: self.delete,
            write,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Nothing,
    Create,
    Apply,
    Touch,
}

/// Writes for the end of a request.
#[derive(Debug)]
pub(crate) struct Plan {
    pub delete: Option<SessionId>,
    pub write: Write,
}

impl Plan {
    /// Nothing to write and no cookie to change.
    pub fn is_empty(&self) -> bool {
        self.delete.is_none() && matches!(self.write, Write::Nothing)
    }
}

#[derive(Debug)]
pub(crate) enum Write {
    Nothing,
    Create {
        token: SessionToken,
        data: SessionData,
        user_id: Option<String>,
        expires_at: DateTime<Utc>,
        timeout_seconds: Option<i64>,
        client: Option<Client>,
    },
    Apply {
        changes: ChangeSet,
        /// The token the session moves to, when `changes` cycles it.
        new_token: Option<SessionToken>,
        expires_at: DateTime<Utc>,
        /// The session as this request sees it, at the version it loaded.
        loaded: Box<Row>,
    },
    Touch {
        id: SessionId,
        expires_at: DateTime<Utc>,
        client: Option<Client>,
    },
}

/// The latest a session created at `created_at` may live.
fn cap(settings: &Settings, created_at: DateTime<Utc>) -> DateTime<Utc> {
    settings
        .absolute_timeout
        .and_then(|absolute| created_at.checked_add_signed(absolute))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `now + timeout`, capped by the absolute timeout.
fn renewed(
    settings: &Settings,
    timeout: chrono::Duration,
    now: DateTime<Utc>,
    created_at: DateTime<Utc>,
) -> DateTime<Utc> {
    now.checked_add_signed(timeout)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
        .min(cap(settings, created_at))
}

/// Whether the last renewal (`expires_at - timeout`) is at least one renew interval old.
fn renewal_due(
    bound: &Row,
    timeout: chrono::Duration,
    settings: &Settings,
    now: DateTime<Utc>,
) -> bool {
    let last_renewal = bound.expires_at - timeout;
    now - last_renewal >= settings.renew_interval
}

/// Whether a loaded row may be used at `now` under the absolute timeout.
pub(crate) fn within_absolute_timeout(row: &Row, settings: &Settings, now: DateTime<Utc>) -> bool {
    now < cap(settings, row.created_at)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code

    use chrono::{Duration, TimeZone};
    use serde_json::json;

    use super::*;

    fn settings(extra: Value) -> Settings {
        let mut section = json!({"timeout_minutes": 30});
        if let (Some(section), Value::Object(extra)) = (section.as_object_mut(), extra) {
            section.extend(extra);
        }
        let figment = rocket::Config::figment().merge(
            rocket::figment::providers::Serialized::default("session", section),
        );
        Settings::from_figment(&figment).unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
    }

    fn stored(user_id: Option<&str>, data: Value, expires_at: DateTime<Utc>) -> State {
        let token = SessionToken::generate().unwrap();
        let Value::Object(data) = data else {
            panic!("an object")
        };
        State::from_row(
            Row {
                id: token.public_id(),
                user_id: user_id.map(str::to_owned),
                data,
                expires_at,
                created_at: now() - Duration::hours(1),
                updated_at: now() - Duration::minutes(5),
                version: 3,
                ip_address: None,
                user_agent: None,
                last_seen_at: None,
                timeout_seconds: None,
            },
            token,
            None,
        )
    }

    #[test]
    fn an_untouched_new_session_writes_nothing() {
        let mut state = State::fresh(None);
        let plan = state.plan(&settings(json!({})), now()).unwrap();
        assert!(plan.is_empty());
    }

    #[test]
    fn a_new_session_with_data_is_created_under_its_token() {
        let mut state = State::fresh(None);
        state.set("cart".into(), json!([1]));
        let token = state.token_after().unwrap().clone();
        match state.plan(&settings(json!({})), now()).unwrap().write {
            Write::Create {
                token: created,
                expires_at,
                ..
            } => {
                assert_eq!(created, token, "the token the handler saw is stored");
                assert_eq!(expires_at, now() + Duration::minutes(30));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn renewal_is_throttled_by_the_interval() {
        let s = settings(json!({"renew_interval_seconds": 60}));
        // Renewed 59 s ago: nothing. 60 s ago: a touch to now + timeout.
        let mut recent = stored(
            None,
            json!({}),
            now() + Duration::minutes(30) - Duration::seconds(59),
        );
        assert!(recent.plan(&s, now()).unwrap().is_empty());
        let mut due = stored(None, json!({}), now() + Duration::minutes(29));
        match due.plan(&s, now()).unwrap().write {
            Write::Touch { expires_at, .. } => {
                assert_eq!(expires_at, now() + Duration::minutes(30));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_absolute_timeout_caps_every_write() {
        // Created an hour ago with a 70-minute cap: at most 10 more minutes.
        let s = settings(json!({"absolute_timeout_minutes": 70, "renew_interval_seconds": 0}));
        let mut state = stored(None, json!({}), now() + Duration::minutes(5));
        match state.plan(&s, now()).unwrap().write {
            Write::Touch { expires_at, .. } => {
                assert_eq!(expires_at, now() + Duration::minutes(10));
            }
            other => panic!("{other:?}"),
        }
        state.set("a".into(), json!(1));
        match state.plan(&s, now()).unwrap().write {
            Write::Apply { expires_at, .. } => {
                assert_eq!(expires_at, now() + Duration::minutes(10));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_write_never_plans_an_earlier_expiry() {
        // The stored expiry is later than now + timeout (the clock went back).
        let later = now() + Duration::hours(2);
        let mut state = stored(None, json!({}), later);
        state.set("a".into(), json!(1));
        match state.plan(&settings(json!({})), now()).unwrap().write {
            Write::Apply { expires_at, .. } => assert_eq!(expires_at, later),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delete_then_insert_deletes_and_creates() {
        let mut state = stored(
            Some("alice"),
            json!({"user_id": "alice"}),
            now() + Duration::minutes(20),
        );
        let old = state.bound.as_ref().unwrap().id;
        state.delete();
        state.set("flash".into(), json!("bye"));
        let plan = state.plan(&settings(json!({})), now()).unwrap();
        assert_eq!(plan.delete, Some(old));
        match plan.write {
            Write::Create {
                token,
                data,
                user_id,
                ..
            } => {
                assert_ne!(token.public_id(), old);
                assert_eq!(Value::Object(data), json!({"flash": "bye"}));
                assert_eq!(user_id, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn login_as_someone_else_starts_clean_and_anonymous_keeps_its_data() {
        let mut other = stored(
            Some("alice"),
            json!({"user_id": "alice", "cart": [1]}),
            now() + Duration::minutes(20),
        );
        other.login("bob".into());
        assert_eq!(Value::Object(other.data.clone()), json!({}));
        let mut replayed =
            serde_json::from_value::<SessionData>(json!({"user_id": "alice", "cart": [1]}))
                .unwrap();
        other.changes.replay(&mut replayed);
        assert_eq!(
            Value::Object(replayed),
            json!({}),
            "the merge clears the stored data too"
        );

        let mut same = stored(
            Some("alice"),
            json!({"cart": [1]}),
            now() + Duration::minutes(20),
        );
        same.login("alice".into());
        assert_eq!(Value::Object(same.data.clone()), json!({"cart": [1]}));

        let mut guest = stored(None, json!({"cart": [1]}), now() + Duration::minutes(20));
        let old = guest.bound.as_ref().unwrap().id;
        guest.login("carol".into());
        assert_eq!(Value::Object(guest.data.clone()), json!({"cart": [1]}));
        match guest.plan(&settings(json!({})), now()).unwrap().write {
            Write::Apply {
                changes, new_token, ..
            } => {
                let new_token = new_token.expect("a new token");
                assert_eq!(changes.new_id(), Some(new_token.public_id()));
                assert_ne!(new_token.public_id(), old);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn login_compares_with_the_user_the_session_was_loaded_with() {
        // The handler signs alice out by hand first: bob still inherits nothing.
        let mut state = stored(
            Some("alice"),
            json!({"user_id": "alice", "cart": [1]}),
            now() + Duration::minutes(20),
        );
        state.set_user_id(None);
        state.login("bob".into());
        assert_eq!(Value::Object(state.data.clone()), json!({}));
        assert!(state.changes.is_login());
    }

    #[test]
    fn removing_user_id_always_clears_the_column() {
        let mut state = stored(Some("alice"), json!({}), now() + Duration::minutes(20));
        assert_eq!(state.remove(USER_ID_KEY), None);
        assert_eq!(state.user_id, None);
        assert_eq!(state.changes.user_id(), shared_model::UserIdChange::Cleared);
    }
}
