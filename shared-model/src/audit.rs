//! The lifecycle audit log: `session_events` rows, written by the manager in the
//! same transaction as the change they record.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::session_events;

/// What happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A session was stored for the first time, without a user.
    Created,
    /// A user signed in (a new session stored signed in, or an existing one
    /// given a user; `detail.previous_id` names the id it had before).
    Login,
    /// The session moved to a new id without a login (`detail.previous_id`).
    Rotated,
    /// The session's own request signed out.
    Logout,
    /// The session was ended by its user from another session, by "sign out
    /// everywhere", or by the per-user cap (`detail.reason`).
    Revoked,
    /// The session signed out its user's other sessions (`detail.count`).
    RevokedOthers,
    /// The purge removed the session after it expired.
    Expired,
    /// An admin replaced the data (`detail.keys`: the names of changed keys).
    AdminEdit,
    /// An admin expired the session.
    AdminExpire,
    /// An admin moved the expiry later.
    AdminExtend,
    /// An admin deleted the session.
    AdminDelete,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 11] = [
        Self::Created,
        Self::Login,
        Self::Rotated,
        Self::Logout,
        Self::Revoked,
        Self::RevokedOthers,
        Self::Expired,
        Self::AdminEdit,
        Self::AdminExpire,
        Self::AdminExtend,
        Self::AdminDelete,
    ];

    /// The text stored in the `kind` column.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Login => "login",
            Self::Rotated => "rotated",
            Self::Logout => "logout",
            Self::Revoked => "revoked",
            Self::RevokedOthers => "revoked_others",
            Self::Expired => "expired",
            Self::AdminEdit => "admin_edit",
            Self::AdminExpire => "admin_expire",
            Self::AdminExtend => "admin_extend",
            Self::AdminDelete => "admin_delete",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Who made a change: the `actor` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The web app (the fairing, or the app's own calls to the manager).
    App,
    /// The desktop inspector.
    Inspector,
    /// The inspector's command line.
    Cli,
}

impl Actor {
    /// The text stored in the `actor` column.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Inspector => "inspector",
            Self::Cli => "cli",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::App, Self::Inspector, Self::Cli]
            .into_iter()
            .find(|actor| actor.as_str() == text)
    }
}

/// One row of `session_events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increases with every event (the table's auto-increment key).
    pub id: i64,
    /// When the change was made (the writer's clock, read before the commit).
    pub at: DateTime<Utc>,
    /// The session's public id (after the change, for a login or rotation).
    pub session_id: String,
    /// The session's user at the time, if any.
    pub user_id: Option<String>,
    /// What happened; `None` for a kind this version does not know.
    pub kind: Option<EventKind>,
    /// The `kind` column as stored.
    pub kind_text: String,
    /// Who did it; `None` for an actor this version does not know.
    pub actor: Option<Actor>,
    /// The IP address of the client involved, if recorded.
    pub ip_address: Option<String>,
    /// The `User-Agent` of the client involved, if recorded.
    pub user_agent: Option<String>,
    /// What the change was, as JSON: key names, counts, reasons, public ids,
    /// expiries (never data values or tokens); `{}` when nothing more;
    /// `null` when the stored text is not JSON.
    pub detail: Value,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = session_events)]
pub(crate) struct EventRow {
    id: i64,
    at: NaiveDateTime,
    session_id: String,
    user_id: Option<String>,
    kind: String,
    actor: String,
    ip_address: Option<String>,
    user_agent: Option<String>,
    detail: String,
}

impl EventRow {
    pub(crate) fn decode(self) -> Event {
        Event {
            id: self.id,
            at: self.at.and_utc(),
            session_id: self.session_id,
            user_id: self.user_id,
            kind: EventKind::parse(&self.kind),
            kind_text: self.kind,
            actor: Actor::parse(&self.actor),
            ip_address: self.ip_address,
            user_agent: self.user_agent,
            detail: serde_json::from_str(&self.detail).unwrap_or(Value::Null),
        }
    }
}

/// An event to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = session_events)]
pub(crate) struct NewEvent<'a> {
    pub at: NaiveDateTime,
    pub session_id: &'a str,
    pub user_id: Option<&'a str>,
    pub kind: &'static str,
    pub actor: &'static str,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub detail: String,
}

/// Inserts one event per listed session, copying its user and client from the
/// row as it is now: before the rows are deleted (revoked, expired, admin
/// deletes) or after a change that keeps them (rotation, expiry edits). One
/// `INSERT ... SELECT`.
macro_rules! record_rows {
    ($conn:expr, $ids:expr, $at:expr, $kind:expr, $actor:expr, $detail:expr) => {{
        use diesel::sql_types::{Text, Timestamp};
        use $crate::schema::{session_events as e, sessions as s};
        diesel::insert_into(e::table)
            .values(s::table.filter(s::id.eq_any($ids)).select((
                $at.into_sql::<Timestamp>(),
                s::id,
                s::user_id,
                $kind.as_str().into_sql::<Text>(),
                $actor.as_str().into_sql::<Text>(),
                s::ip_address,
                s::user_agent,
                $detail.into_sql::<Text>(),
            )))
            .into_columns((
                e::at,
                e::session_id,
                e::user_id,
                e::kind,
                e::actor,
                e::ip_address,
                e::user_agent,
                e::detail,
            ))
            .execute($conn)
    }};
}
pub(crate) use record_rows;
