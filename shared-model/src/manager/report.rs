//! Reading many sessions for the inspector: pages, counts, statistics, and the
//! audit log.

use chrono::{Duration, NaiveDateTime};
use diesel::dsl::{count, count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::{id_prefix_range, position_fn, IdRange};
use crate::audit::{Event, EventRow};
use crate::db::with_conn;
use crate::query::{
    HourCount, ListedSession, Page, SessionFilter, Sort, SortKey, Stats, UserCount,
};
use crate::schema::{session_events, sessions};
use crate::session::SessionRow;
use crate::store::Store;
use crate::{Result, SessionId, SessionManager};

impl SessionManager {
    /// The session's audit events, newest first, at most `limit`. A login or
    /// rotation moves a session to a new id; its event's `detail.previous_id`
    /// names the old one.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn events_of_session(&self, id: &SessionId, limit: u32) -> Result<Vec<Event>> {
        let key = id.to_string();
        let rows: Vec<EventRow> = with_conn!(self.db, conn => Ok(session_events::table
            .filter(session_events::session_id.eq(&key))
            .order(session_events::id.desc())
            .limit(i64::from(limit))
            .select(EventRow::as_select())
            .load(conn)?))?;
        Ok(rows.into_iter().map(EventRow::decode).collect())
    }

    /// The audit events of all of `user_id`'s sessions, newest first, at most
    /// `limit`.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn events_of_user(&self, user_id: &str, limit: u32) -> Result<Vec<Event>> {
        let rows: Vec<EventRow> = with_conn!(self.db, conn => Ok(session_events::table
            .filter(session_events::user_id.eq(user_id))
            .order(session_events::id.desc())
            .limit(i64::from(limit))
            .select(EventRow::as_select())
            .load(conn)?))?;
        Ok(rows.into_iter().map(EventRow::decode).collect())
    }

    /// One page of sessions matching `filter`, in `sort` order. Rows whose data
    /// cannot be decoded come back as [`CorruptSession`](crate::CorruptSession)s
    /// instead of failing the page.
    ///
    /// Filters by id prefix, user and status and sorts by `created_at` or
    /// `expires_at` use indexes; `data_contains`, `ip_prefix` and sorting by
    /// `updated_at` scan (`updated_at` changes on every write, so it is not
    /// indexed).
    ///
    /// # Errors
    ///
    /// [`Error::Schema`](crate::Error::Schema) for an IP filter on an older
    /// schema; database errors.
    pub fn list(
        &self,
        filter: &SessionFilter,
        sort: Sort,
        page: Page,
    ) -> Result<Vec<ListedSession>> {
        self.check_filter(filter)?;
        let range = id_prefix_range(filter);
        if range == IdRange::Nothing {
            return Ok(Vec::new());
        }
        let now = self.now_naive();
        let rows: Vec<SessionRow> = with_conn!(self.db, conn => {
            let mut query = sessions::table.select(self.columns.select()).into_boxed();
            query = filtered!(query, filter, range, now, position_fn(conn));
            query = match (sort.key, sort.descending) {
                (SortKey::CreatedAt, false) => query.order((sessions::created_at.asc(), sessions::id.asc())),
                (SortKey::CreatedAt, true) => query.order((sessions::created_at.desc(), sessions::id.desc())),
                (SortKey::UpdatedAt, false) => query.order((sessions::updated_at.asc(), sessions::id.asc())),
                (SortKey::UpdatedAt, true) => query.order((sessions::updated_at.desc(), sessions::id.desc())),
                (SortKey::ExpiresAt, false) => query.order((sessions::expires_at.asc(), sessions::id.asc())),
                (SortKey::ExpiresAt, true) => query.order((sessions::expires_at.desc(), sessions::id.desc())),
            };
            query = match page {
                Page::Offset { offset, limit } => query
                    .offset(i64::try_from(offset).unwrap_or(i64::MAX))
                    .limit(i64::from(limit)),
                Page::After { cursor, limit } => {
                    let at = cursor.at.naive_utc();
                    let id = cursor.id_text();
                    // The redundant first bound gives the index scan its start;
                    // with the `OR` alone PostgreSQL walks the index from the
                    // top on every page (quadratic over a whole table).
                    macro_rules! after {
                        ($column:expr) => {
                            if sort.descending {
                                query
                                    .filter($column.le(at))
                                    .filter($column.lt(at).or($column.eq(at).and(sessions::id.lt(id))))
                            } else {
                                query
                                    .filter($column.ge(at))
                                    .filter($column.gt(at).or($column.eq(at).and(sessions::id.gt(id))))
                            }
                        };
                    }
                    let query = match sort.key {
                        SortKey::CreatedAt => after!(sessions::created_at),
                        SortKey::UpdatedAt => after!(sessions::updated_at),
                        SortKey::ExpiresAt => after!(sessions::expires_at),
                    };
                    query.limit(i64::from(limit))
                }
            };
            Ok(query.load(conn)?)
        })?;
        Ok(rows.into_iter().map(SessionRow::decode).collect())
    }

    /// How many sessions match `filter`.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub fn count(&self, filter: &SessionFilter) -> Result<u64> {
        self.check_filter(filter)?;
        let range = id_prefix_range(filter);
        if range == IdRange::Nothing {
            return Ok(0);
        }
        let now = self.now_naive();
        let count: i64 = with_conn!(self.db, conn => {
            let mut query = sessions::table.select(count_star()).into_boxed();
            query = filtered!(query, filter, range, now, position_fn(conn));
            Ok(query.first(conn)?)
        })?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// Totals, sessions created per hour over the last `hours` hours, sessions
    /// expiring per hour over the next `hours` hours, and the `top_users` users
    /// with the most sessions.
    ///
    /// Six reads on one connection, not in one transaction: under concurrent
    /// writes the numbers can come from slightly different moments (`expired`,
    /// `total - active`, is never below zero).
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn stats(&self, hours: u32, top_users: u32) -> Result<Stats> {
        let now = self.now();
        let window = Duration::hours(i64::from(hours));
        let (start, end) = ((now - window).naive_utc(), (now + window).naive_utc());
        let now = now.naive_utc();
        let (total, active, distinct_users, created, expiring, users) = with_conn!(self.db, conn => {
            let total: i64 = sessions::table.select(count_star()).first(conn)?;
            let active: i64 = sessions::table
                .filter(sessions::expires_at.gt(now))
                .select(count_star())
                .first(conn)?;
            let distinct_users: i64 = sessions::table
                .select(count(sessions::user_id).aggregate_distinct())
                .first(conn)?;
            let created_bucket = sql::<Text>(&hour_bucket(conn, "created_at"));
            let created: Vec<(String, i64)> = sessions::table
                .filter(sessions::created_at.ge(start))
                .filter(sessions::created_at.le(now))
                .group_by(created_bucket.clone())
                .select((created_bucket, count_star()))
                .load(conn)?;
            let expiring_bucket = sql::<Text>(&hour_bucket(conn, "expires_at"));
            let expiring: Vec<(String, i64)> = sessions::table
                .filter(sessions::expires_at.gt(now))
                .filter(sessions::expires_at.le(end))
                .group_by(expiring_bucket.clone())
                .select((expiring_bucket, count_star()))
                .load(conn)?;
            let users: Vec<(Option<String>, i64)> = sessions::table
                .filter(sessions::user_id.is_not_null())
                .group_by(sessions::user_id)
                .select((sessions::user_id, count_star()))
                .order((count_star().desc(), sessions::user_id.asc()))
                .limit(i64::from(top_users))
                .load(conn)?;
            Ok((total, active, distinct_users, created, expiring, users))
        })?;
        let as_u64 = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(Stats {
            total: as_u64(total),
            active: as_u64(active),
            expired: as_u64(total - active),
            distinct_users: as_u64(distinct_users),
            created_per_hour: hour_counts(created),
            expiring_per_hour: hour_counts(expiring),
            top_users: users
                .into_iter()
                .filter_map(|(user_id, n)| {
                    Some(UserCount {
                        user_id: user_id?,
                        sessions: as_u64(n),
                    })
                })
                .collect(),
        })
    }
}

/// The backend's expression for `column`'s hour as `YYYY-MM-DD HH` text.
fn hour_bucket<C: Store>(_: &C, column: &str) -> String {
    C::hour_bucket(column)
}

/// Per-hour counts from `(YYYY-MM-DD HH, count)` rows, earliest first; a
/// bucket that does not parse is left out.
fn hour_counts(buckets: Vec<(String, i64)>) -> Vec<HourCount> {
    let mut counts: Vec<HourCount> = buckets
        .into_iter()
        .filter_map(|(bucket, n)| {
            let hour =
                NaiveDateTime::parse_from_str(&format!("{bucket}:00:00"), "%Y-%m-%d %H:%M:%S")
                    .ok()?;
            Some(HourCount {
                hour: hour.and_utc(),
                sessions: u64::try_from(n).unwrap_or_default(),
            })
        })
        .collect();
    counts.sort_by_key(|count| count.hour);
    counts
}
