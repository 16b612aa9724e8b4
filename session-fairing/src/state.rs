//! What one request knows and did about its session, and what to write at the end.

use chrono::{DateTime, Utc};
use serde_json::Value;
use shared_model::{ChangeSet, Session as Row, SessionData, SessionId};

use crate::config::Settings;

/// The data key whose value mirrors into the `user_id` column.
pub(crate) const USER_ID_KEY: &str = "user_id";

/// The stored row this request is bound to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    pub id: SessionId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The session as the handler sees and changes it.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// `None`: a new session, stored only if something is written.
    pub bound: Option<Bound>,
    pub data: SessionData,
    pub user_id: Option<String>,
    pub changes: ChangeSet,
    /// A row to delete at the end of the request (logout).
    pub delete: Option<SessionId>,
}

impl State {
    pub fn fresh() -> Self {
        Self::default()
    }

    pub fn from_row(row: Row) -> Self {
        Self {
            bound: Some(Bound {
                id: row.id,
                created_at: row.created_at,
                expires_at: row.expires_at,
            }),
            data: row.data,
            user_id: row.user_id,
            changes: ChangeSet::default(),
            delete: None,
        }
    }

    pub fn is_modified(&self) -> bool {
        !self.changes.is_empty() || self.delete.is_some()
    }

    pub fn set(&mut self, key: String, value: Value) {
        if key == USER_ID_KEY {
            self.set_user_id(user_id_from_value(&value));
        }
        self.changes.set(key.clone(), value.clone());
        self.data.insert(key, value);
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let removed = self.data.remove(key);
        if removed.is_some() {
            self.changes.remove(key);
            if key == USER_ID_KEY {
                self.set_user_id(None);
            }
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

    /// Logout: forget the row (deleted at the end of the request) and start over
    /// with a new, empty session.
    pub fn delete(&mut self) {
        if let Some(bound) = self.bound.take() {
            self.delete = Some(bound.id);
        }
        self.data.clear();
        self.user_id = None;
        self.changes = ChangeSet::default();
    }

    /// The expiry the session has after this request (as [`plan`](Self::plan) writes it).
    pub fn expires_at_after(&self, settings: &Settings, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.plan(settings, now).write {
            Write::Create { expires_at, .. }
            | Write::Apply { expires_at, .. }
            | Write::Touch { expires_at, .. } => expires_at,
            Write::Nothing => self
                .bound
                .map_or_else(|| renewed(settings, now, now), |bound| bound.expires_at),
        }
    }

    /// What to write at the end of the request.
    pub fn plan(&self, settings: &Settings, now: DateTime<Utc>) -> Plan {
        let write = match (&self.bound, self.changes.is_empty()) {
            (None, true) => Write::Nothing,
            (None, false) => Write::Create {
                data: self.data.clone(),
                user_id: self.user_id.clone(),
                expires_at: renewed(settings, now, now),
            },
            (Some(bound), false) => Write::Apply {
                id: bound.id,
                changes: self.changes.clone(),
                expires_at: renewed(settings, now, bound.created_at),
            },
            (Some(bound), true) if renewal_due(bound, settings, now) => {
                let expires_at = renewed(settings, now, bound.created_at);
                if expires_at > bound.expires_at {
                    Write::Touch {
                        id: bound.id,
                        expires_at,
                    }
                } else {
                    Write::Nothing
                }
            }
            (Some(_), true) => Write::Nothing,
        };
        Plan {
            delete: self.delete,
            write,
        }
    }
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
        data: SessionData,
        user_id: Option<String>,
        expires_at: DateTime<Utc>,
    },
    Apply {
        id: SessionId,
        changes: ChangeSet,
        expires_at: DateTime<Utc>,
    },
    Touch {
        id: SessionId,
        expires_at: DateTime<Utc>,
    },
}

/// The latest a session created at `created_at` may live.
fn cap(settings: &Settings, created_at: DateTime<Utc>) -> DateTime<Utc> {
    settings
        .absolute_timeout
        .map_or(DateTime::<Utc>::MAX_UTC, |absolute| created_at + absolute)
}

/// `now + timeout`, capped by the absolute timeout.
fn renewed(settings: &Settings, now: DateTime<Utc>, created_at: DateTime<Utc>) -> DateTime<Utc> {
    (now + settings.timeout).min(cap(settings, created_at))
}

/// Whether the last renewal (`expires_at - timeout`) is at least one renew interval old.
fn renewal_due(bound: &Bound, settings: &Settings, now: DateTime<Utc>) -> bool {
    let last_renewal = bound.expires_at - settings.timeout;
    now - last_renewal >= settings.renew_interval
}

/// Whether a loaded row may be used at `now` under the absolute timeout.
pub(crate) fn within_absolute_timeout(row: &Row, settings: &Settings, now: DateTime<Utc>) -> bool {
    now < cap(settings, row.created_at)
}

/// The `user_id` column value for a `user_id` data value.
fn user_id_from_value(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}
