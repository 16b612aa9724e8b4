//! Types for the inspector's queries: filters, sorting, paging and statistics.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Session, SessionId};

/// Which sessions a status filter keeps, judged against the manager's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Every row.
    #[default]
    All,
    /// `expires_at > now`.
    Active,
    /// `expires_at <= now` (not yet purged).
    Expired,
}

/// Conditions a listed or counted session must meet; empty fields match everything.
///
/// # Examples
///
/// ```
/// use shared_model::{SessionFilter, Status};
///
/// let filter = SessionFilter {
///     user_id: Some("alice".into()),
///     status: Status::Active,
///     ..SessionFilter::default()
/// };
/// assert_ne!(filter, SessionFilter::default()); // the default matches every row
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionFilter {
    /// The id starts with this text (case-insensitive; at most 36 characters of
    /// `0-9`, `a-f` and `-`, anything else matches nothing).
    pub id_prefix: Option<String>,
    /// The `user_id` column equals this.
    pub user_id: Option<String>,
    /// Active, expired or both.
    pub status: Status,
    /// The JSON text of `data` contains this text, ignoring the case of ASCII
    /// letters (other capitals in the text can keep it from matching on SQLite,
    /// whose `lower` folds only ASCII).
    pub data_contains: Option<String>,
    /// The client's IP address: a whole address (`203.0.113.7`, `2001:db8::1`)
    /// matches exactly that address; any other text, and text ending in `:`,
    /// is a prefix of the stored text (`10.1.` matches 10.1.0.0/16,
    /// `2001:db8::` the canonical forms starting so).
    #[serde(default)]
    pub ip_prefix: Option<String>,
}

/// A `LIKE` pattern matching text that starts with `prefix` (`\\` escapes).
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for ch in prefix.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// A change an admin makes to a session's expiry; see
/// [`SessionManager::change_expiry`](crate::SessionManager::change_expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpiryChange {
    /// Expire it: `expires_at` becomes [`EXPIRED_AT`] (a fixed instant in the
    /// past on any clock, so a skewed admin clock cannot leave it valid).
    ExpireNow,
    /// Move the expiry this many minutes later, counted from the later of the
    /// stored expiry and now (it never shortens a later expiry the app wrote).
    ExtendMinutes(u32),
}

/// The most minutes [`ExpiryChange::ExtendMinutes`] adds: ten years. Larger
/// values are cut to it (an expiry past year 9999 fits no backend's column).
pub const MAX_EXTEND_MINUTES: u32 = 10 * 366 * 24 * 60;

/// The `expires_at` that "expire now" writes: 2000-01-01T00:00:00Z.
pub const EXPIRED_AT: DateTime<Utc> = match DateTime::from_timestamp(946_684_800, 0) {
    Some(at) => at,
    None => DateTime::<Utc>::MIN_UTC,
};

impl ExpiryChange {
    /// The new expiry of a session that expires at `current`, at `now`.
    ///
    /// # Examples
    ///
    /// ```
    /// use chrono::{Duration, Utc};
    /// use shared_model::{ExpiryChange, EXPIRED_AT};
    ///
    /// let now = Utc::now();
    /// let later = now + Duration::hours(2);
    /// assert_eq!(ExpiryChange::ExpireNow.apply(later, now), EXPIRED_AT);
    /// // Extending counts from the later of the two: never shortens.
    /// assert_eq!(ExpiryChange::ExtendMinutes(30).apply(later, now), later + Duration::minutes(30));
    /// assert_eq!(ExpiryChange::ExtendMinutes(30).apply(EXPIRED_AT, now), now + Duration::minutes(30));
    /// // At most ten years.
    /// let far = ExpiryChange::ExtendMinutes(u32::MAX).apply(now, now);
    /// assert_eq!(far, now + Duration::minutes(i64::from(shared_model::MAX_EXTEND_MINUTES)));
    /// ```
    #[must_use]
    pub fn apply(self, current: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::ExpireNow => current.min(EXPIRED_AT),
            Self::ExtendMinutes(minutes) => {
                let minutes = minutes.min(MAX_EXTEND_MINUTES);
                current.max(now) + chrono::Duration::minutes(i64::from(minutes))
            }
        }
    }
}

/// A time column to sort by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortKey {
    /// `created_at`
    #[default]
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
    /// `expires_at`
    ExpiresAt,
}

impl SortKey {
    /// The value of this column in `session`.
    #[must_use]
    pub fn of(self, session: &Session) -> DateTime<Utc> {
        match self {
            Self::CreatedAt => session.created_at,
            Self::UpdatedAt => session.updated_at,
            Self::ExpiresAt => session.expires_at,
        }
    }
}

/// A sort order: a time column, then the id to break ties, both in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sort {
    /// The column.
    pub key: SortKey,
    /// Newest first when true.
    pub descending: bool,
}

impl Default for Sort {
    /// Newest sessions first.
    fn default() -> Self {
        Self {
            key: SortKey::CreatedAt,
            descending: true,
        }
    }
}

/// Where a keyset page starts: just after this row in the sort order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub(crate) at: DateTime<Utc>,
    /// The row's id as stored (36 bytes; a corrupt row's may not be canonical).
    id: [u8; 36],
}

impl Cursor {
    /// The position just after the row whose sort column holds `at` and whose
    /// id is `id`.
    #[must_use]
    pub fn new(at: DateTime<Utc>, id: SessionId) -> Self {
        // A public id's text is always 36 ASCII characters.
        let mut bytes = [0u8; 36];
        for (slot, byte) in bytes.iter_mut().zip(id.to_string().bytes()) {
            *slot = byte;
        }
        Self { at, id: bytes }
    }

    /// The position just after `session` when sorted by `key`.
    #[must_use]
    pub fn after(session: &Session, key: SortKey) -> Self {
        Self::new(key.of(session), session.id)
    }

    /// The position just after a row listed as corrupt, by its id as stored
    /// (which may not be canonical). `None` when that id is not 36 bytes long,
    /// which the migrations' schema does not allow (a table made by another
    /// tool might).
    #[must_use]
    pub fn after_corrupt(row: &CorruptSession, key: SortKey) -> Option<Self> {
        let id: [u8; 36] = row.id.as_bytes().try_into().ok()?;
        let at = match key {
            SortKey::CreatedAt => row.created_at,
            SortKey::UpdatedAt => row.updated_at,
            SortKey::ExpiresAt => row.expires_at,
        };
        Some(Self { at, id })
    }

    /// The row's id as stored.
    pub(crate) fn id_text(&self) -> String {
        String::from_utf8_lossy(&self.id).into_owned()
    }
}

/// Which slice of the sorted, filtered rows to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Page {
    /// Skip `offset` rows. Random access (a scrollbar jump); the database still
    /// walks the skipped index entries, so deep offsets cost more.
    Offset {
        /// Rows to skip.
        offset: u64,
        /// Rows to return.
        limit: u32,
    },
    /// The rows after `cursor` (from the previous page's last row). Costs the
    /// same at any depth.
    After {
        /// The last row already seen.
        cursor: Cursor,
        /// Rows to return.
        limit: u32,
    },
}

impl Page {
    /// The first `limit` rows.
    #[must_use]
    pub fn first(limit: u32) -> Self {
        Self::Offset { offset: 0, limit }
    }
}

/// A row that could not be decoded (its `data` is not a JSON object, or its id is
/// not canonical), as listed: everything but the data, plus the raw text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorruptSession {
    /// The stored id, as text.
    pub id: String,
    /// The stored `user_id`.
    pub user_id: Option<String>,
    /// The stored `data`, unparsed.
    pub raw_data: String,
    /// What is wrong with the row.
    pub reason: String,
    /// The stored `expires_at`.
    pub expires_at: DateTime<Utc>,
    /// The stored `created_at`.
    pub created_at: DateTime<Utc>,
    /// The stored `updated_at`.
    pub updated_at: DateTime<Utc>,
    /// The stored `version`.
    pub version: i64,
}

/// One listed row: decoded, or corrupt with the reason.
pub type ListedSession = Result<Session, CorruptSession>;

/// A count per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCount {
    /// Start of the hour (UTC).
    pub hour: DateTime<Utc>,
    /// Sessions in that hour.
    pub sessions: u64,
}

/// Sessions per user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCount {
    /// The `user_id`.
    pub user_id: String,
    /// How many rows (active or not) carry it.
    pub sessions: u64,
}

/// Totals and histograms for the inspector's overview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// All rows.
    pub total: u64,
    /// Rows with `expires_at > now`.
    pub active: u64,
    /// Rows with `expires_at <= now` (counted as `total - active`).
    pub expired: u64,
    /// Distinct non-null `user_id`s.
    pub distinct_users: u64,
    /// Sessions created in each of the last `hours` hours (hours with none omitted).
    pub created_per_hour: Vec<HourCount>,
    /// Sessions expiring in each of the next `hours` hours (hours with none omitted).
    pub expiring_per_hour: Vec<HourCount>,
    /// Users with the most sessions, most first.
    pub top_users: Vec<UserCount>,
}
