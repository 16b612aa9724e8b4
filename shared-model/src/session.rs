//! The session row and its Diesel mappings.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::schema::sessions;
use crate::{CorruptSession, Error, Result, SessionId};

/// Session data: a JSON object.
pub type SessionData = serde_json::Map<String, serde_json::Value>;

/// The data key whose value the `user_id` column mirrors: the fairing and
/// [`SessionManager::replace_data`](crate::SessionManager::replace_data) keep the
/// two in step.
pub const USER_ID_KEY: &str = "user_id";

/// The `user_id` column value for a `user_id` data value: a string as is, `null`
/// as no user, anything else (a number, say) as its JSON text.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use shared_model::user_id_of_value;
///
/// assert_eq!(user_id_of_value(&json!("alice")), Some("alice".to_owned()));
/// assert_eq!(user_id_of_value(&json!(42)), Some("42".to_owned()));
/// assert_eq!(user_id_of_value(&json!(null)), None);
/// ```
#[must_use]
pub fn user_id_of_value(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// One row of the `sessions` table, decoded.
///
/// Times are UTC with microsecond precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The public id (primary key); the cookie carries the token it derives from.
    pub id: SessionId,
    /// The user this session belongs to, if any (indexed).
    pub user_id: Option<String>,
    /// The session's data.
    pub data: SessionData,
    /// The session is valid while `now < expires_at`.
    pub expires_at: DateTime<Utc>,
    /// When the row was inserted; kept when the id is cycled.
    pub created_at: DateTime<Utc>,
    /// When the row was last written.
    pub updated_at: DateTime<Utc>,
    /// Starts at 1 and grows by one on every write.
    pub version: i64,
    /// The IP address the session was last used from, when recorded.
    pub ip_address: Option<String>,
    /// The `User-Agent` it was last used with (at most 512 bytes), when recorded.
    pub user_agent: Option<String>,
    /// When the app last wrote or renewed it (`None` for rows from before the
    /// column existed).
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The session's own idle timeout in seconds ("remember me"); `None` means
    /// the app's configured timeout.
    pub timeout_seconds: Option<i64>,
}

/// A session to [`create`](crate::SessionManager::create).
///
/// # Examples
///
/// ```
/// use chrono::{Duration, Utc};
/// use shared_model::NewSession;
///
/// let new = NewSession {
///     user_id: Some("alice"),
///     timeout_seconds: Some(Duration::days(30).num_seconds()),
///     ..NewSession::expiring(Utc::now() + Duration::days(30))
/// };
/// assert!(new.data.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// The data to store.
    pub data: SessionData,
    /// The user it belongs to (a login: counted against the per-user cap).
    pub user_id: Option<&'a str>,
    /// When it expires unless renewed.
    pub expires_at: DateTime<Utc>,
    /// Its own idle timeout in seconds ("remember me"); `None`: the app's.
    pub timeout_seconds: Option<i64>,
    /// The client that made it (IP address and `User-Agent`), when recorded.
    pub client: Option<&'a crate::Client>,
}

impl NewSession<'_> {
    /// An empty, anonymous session expiring at `expires_at`.
    #[must_use]
    pub fn expiring(expires_at: DateTime<Utc>) -> Self {
        Self {
            data: SessionData::new(),
            user_id: None,
            expires_at,
            timeout_seconds: None,
            client: None,
        }
    }
}

impl Session {
    /// Whether the session is still valid at `now`.
    #[must_use]
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }

    /// Size in bytes of `data` encoded as compact JSON, as stored.
    #[must_use]
    pub fn data_size(&self) -> usize {
        encoded_len(&self.data)
    }
}

/// The length of `data` encoded as compact JSON.
pub(crate) fn encoded_len(data: &SessionData) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a Map<String, Value> to an io sink cannot fail.
    match serde_json::to_writer(&mut counter, data) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// A row as Diesel reads it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionRow {
    pub id: String,
    pub user_id: Option<String>,
    pub data: String,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub last_seen_at: Option<NaiveDateTime>,
    pub timeout_seconds: Option<i64>,
}

impl SessionRow {
    /// Decodes the row; a malformed id or data gives the row back as corrupt.
    #[allow(clippy::result_large_err)] // both variants are a whole row, by design
    pub(crate) fn decode(self) -> Result<Session, CorruptSession> {
        let parsed = self
            .id
            .parse::<SessionId>()
            .map_err(|e| e.to_string())
            .and_then(|id| parse_stored_data(&self.data).map(|data| (id, data)));
        match parsed {
            Ok((id, data)) => Ok(Session {
                id,
                user_id: self.user_id,
                data,
                expires_at: self.expires_at.and_utc(),
                created_at: self.created_at.and_utc(),
                updated_at: self.updated_at.and_utc(),
                version: self.version,
                ip_address: self.ip_address,
                user_agent: self.user_agent,
                last_seen_at: self.last_seen_at.map(|at| at.and_utc()),
                timeout_seconds: self.timeout_seconds,
            }),
            Err(reason) => Err(CorruptSession {
                id: self.id,
                user_id: self.user_id,
                raw_data: self.data,
                reason,
                expires_at: self.expires_at.and_utc(),
                created_at: self.created_at.and_utc(),
                updated_at: self.updated_at.and_utc(),
                version: self.version,
            }),
        }
    }

    /// Decodes the row, turning a corrupt one into [`Error::CorruptData`].
    pub(crate) fn decode_or_error(self) -> Result<Session> {
        self.decode()
            .map_err(|corrupt| Error::CorruptData(Box::new(corrupt)))
    }
}

fn parse_stored_data(text: &str) -> std::result::Result<SessionData, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "data is a JSON {}, not an object",
            json_type_name(&other)
        )),
        Err(e) => Err(format!("data is not valid JSON: {e}")),
    }
}

/// A row to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct NewSessionRow<'a> {
    pub id: &'a str,
    pub user_id: Option<&'a str>,
    pub data: &'a str,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub last_seen_at: Option<NaiveDateTime>,
    pub timeout_seconds: Option<i64>,
}

/// The JSON type of `value`, for error messages.
pub(crate) fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Parses text as session data: it must be a JSON object.
///
/// Use it to validate user-edited JSON before
/// [`replace_data`](crate::SessionManager::replace_data).
///
/// # Errors
///
/// [`Error::InvalidJson`] (its message gives the line and column) or
/// [`Error::NotAnObject`].
///
/// # Examples
///
/// ```
/// use shared_model::{parse_data, Error};
///
/// assert_eq!(parse_data(r#"{"cart": [1, 2]}"#)?.len(), 1);
/// assert!(matches!(parse_data("[1, 2]"), Err(Error::NotAnObject { found: "array" })));
/// let error = parse_data("{\n  \"a\": }").unwrap_err();
/// assert!(error.to_string().contains("line 2"));
/// # Ok::<(), Error>(())
/// ```
pub fn parse_data(text: &str) -> Result<SessionData> {
    match serde_json::from_str::<serde_json::Value>(text).map_err(Error::InvalidJson)? {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(Error::NotAnObject {
            found: json_type_name(&other),
        }),
    }
}
