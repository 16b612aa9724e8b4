//! [`ChangeSet`]: what one request did to a session, replayable on the stored data.

use serde_json::Value;

use crate::{Client, SessionData, SessionId, SessionToken};

/// The changes one writer made to a session: keys set, keys removed, a clear,
/// a new `user_id`, a new token (and so a new public id).
///
/// [`SessionManager::apply`](crate::SessionManager::apply) replays it on the data
/// *as currently stored*, inside a transaction, so two requests that change
/// different keys of the same session both keep their changes. The methods keep
/// the set in the order-independent form replay needs: a later call overrides an
/// earlier one on the same key, and [`clear`](Self::clear) forgets everything
/// before it.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use shared_model::{ChangeSet, SessionData};
///
/// let mut changes = ChangeSet::default();
/// changes.set("cart", json!(["apple"]));
/// changes.remove("draft");
///
/// let mut stored: SessionData = serde_json::from_value(json!({"draft": 1, "theme": "dark"}))?;
/// changes.replay(&mut stored);
/// assert_eq!(serde_json::Value::Object(stored), json!({"cart": ["apple"], "theme": "dark"}));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    cleared: bool,
    set: SessionData,
    removed: Vec<String>,
    user_id: UserIdUpdate,
    new_id: Option<SessionId>,
    login: bool,
    client: Option<Client>,
    timeout_seconds: Option<i64>,
}

/// What a [`ChangeSet`] does to the `user_id` column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserIdChange<'a> {
    /// Leaves it as stored.
    #[default]
    Unchanged,
    /// Sets it to this user.
    Set(&'a str),
    /// Sets it to NULL.
    Cleared,
}

#[derive(Debug, Clone, Default, PartialEq)]
enum UserIdUpdate {
    #[default]
    Unchanged,
    Set(String),
    Cleared,
}

impl ChangeSet {
    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        self.removed.retain(|removed| *removed != key);
        self.set.insert(key, value);
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.set.remove(key);
        if !self.removed.iter().any(|removed| removed == key) {
            self.removed.push(key.to_owned());
        }
    }

    /// Empties the data (keys set after this call are kept).
    pub fn clear(&mut self) {
        self.cleared = true;
        self.set.clear();
        self.removed.clear();
    }

    /// Sets the `user_id` column (`None` sets it to NULL).
    pub fn set_user_id(&mut self, user_id: Option<String>) {
        self.user_id = match user_id {
            Some(user_id) => UserIdUpdate::Set(user_id),
            None => UserIdUpdate::Cleared,
        };
    }

    /// Signs `user_id` in: sets the `user_id` column and, when applied, empties
    /// the stored data (and forgets the session's own idle timeout) first if
    /// the row belongs to a different user by then
    /// (judged under the row lock, so a concurrent change of user is seen).
    /// Keys set after this call are kept. Pair it with
    /// [`cycle_id`](Self::cycle_id).
    pub fn login(&mut self, user_id: String) {
        self.set_user_id(Some(user_id));
        self.login = true;
    }

    /// Whether [`login`](Self::login) was called.
    #[must_use]
    pub fn is_login(&self) -> bool {
        self.login
    }

    /// Moves the session to `token`'s public id when applied (same data, same
    /// user): the old cookie stops working at that moment.
    pub fn cycle_id(&mut self, token: &SessionToken) {
        self.new_id = Some(token.public_id());
    }

    /// Records `client` (IP address and `User-Agent`) on the row when applied;
    /// an address or agent the client lacks keeps the stored one.
    pub fn set_client(&mut self, client: Client) {
        self.client = Some(client);
    }

    /// The client recorded when applied, if any.
    #[must_use]
    pub fn client(&self) -> Option<&Client> {
        self.client.as_ref()
    }

    /// Gives the session its own idle timeout of `seconds` ("remember me"),
    /// stored in its row and used by every later renewal.
    pub fn set_timeout_seconds(&mut self, seconds: i64) {
        self.timeout_seconds = Some(seconds);
    }

    /// The idle timeout the set gives the session, if any.
    #[must_use]
    pub fn timeout_seconds(&self) -> Option<i64> {
        self.timeout_seconds
    }

    /// Whether the set changes nothing at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.cleared
            && self.set.is_empty()
            && self.removed.is_empty()
            && self.user_id == UserIdUpdate::Unchanged
            && self.new_id.is_none()
            && !self.login
            && self.client.is_none()
            && self.timeout_seconds.is_none()
    }

    /// The public id the session moves to, if the set cycles it.
    #[must_use]
    pub fn new_id(&self) -> Option<SessionId> {
        self.new_id
    }

    /// What the set does to the `user_id` column.
    #[must_use]
    pub fn user_id(&self) -> UserIdChange<'_> {
        match &self.user_id {
            UserIdUpdate::Unchanged => UserIdChange::Unchanged,
            UserIdUpdate::Set(user_id) => UserIdChange::Set(user_id),
            UserIdUpdate::Cleared => UserIdChange::Cleared,
        }
    }

    /// Applies the data changes to `data`: clear first, then removals, then sets.
    pub fn replay(&self, data: &mut SessionData) {
        if self.cleared {
            data.clear();
        }
        for key in &self.removed {
            data.remove(key);
        }
        for (key, value) in &self.set {
            data.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(value: Value) -> SessionData {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn later_calls_win_on_the_same_key() {
        let mut changes = ChangeSet::default();
        changes.set("a", json!(1));
        changes.remove("a");
        let mut stored = data(json!({"a": 0, "b": 2}));
        changes.replay(&mut stored);
        assert_eq!(Value::Object(stored), json!({"b": 2}));

        let mut changes = ChangeSet::default();
        changes.remove("a");
        changes.set("a", json!(3));
        let mut stored = data(json!({"a": 0}));
        changes.replay(&mut stored);
        assert_eq!(Value::Object(stored), json!({"a": 3}));
    }

    #[test]
    fn clear_forgets_earlier_changes_and_keeps_later_ones() {
        let mut changes = ChangeSet::default();
        changes.set("a", json!(1));
        changes.clear();
        changes.set("b", json!(2));
        let mut stored = data(json!({"x": 9}));
        changes.replay(&mut stored);
        assert_eq!(Value::Object(stored), json!({"b": 2}));
    }

    #[test]
    fn empty_means_nothing_to_write() {
        let mut changes = ChangeSet::default();
        assert!(changes.is_empty());
        changes.set_user_id(None);
        assert!(!changes.is_empty());
        assert_eq!(changes.user_id(), UserIdChange::Cleared);
    }
}
