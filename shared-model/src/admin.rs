//! Admin operations on sessions the admin picks (the inspector and its CLI):
//! data edits, expiry changes and bulk actions by filter.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::audit::{record_rows, EventKind, NewEvent};
use crate::clock::truncate_to_micros;
use crate::db::with_conn;
use crate::manager::{filtered, id_prefix_range, position_fn, remove_ids, IdRange};
use crate::query::{ExpiryChange, EXPIRED_AT};
use crate::schema::{session_events, sessions};
use crate::session::user_id_of_value;
use crate::statements::Save;
use crate::store::{ids, Columns, Rows, Store};
use crate::trace::{self, op_span};
use crate::{
    Error, Result, Session, SessionData, SessionFilter, SessionId, SessionManager, USER_ID_KEY,
};

/// What a bulk action does to each matching row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bulk {
    Expire,
    Delete,
}

impl Bulk {
    /// The public method, for the span's `action` field.
    fn action(self) -> &'static str {
        match self {
            Self::Expire => "expire_matching",
            Self::Delete => "delete_matching",
        }
    }
}

/// How often a bulk batch that lost a deadlock is tried again.
const DEADLOCK_RETRIES: u32 = 3;

/// Runs `batch`, again when the database chose it as a deadlock's victim: a
/// batch locks its rows in id order without the per-user lock, so it can
/// cross a login that holds its own row and waits for the user's others.
/// The victim's transaction was rolled back whole, so trying again is safe.
fn retry_deadlocks<T>(mut batch: impl FnMut() -> Result<T>) -> Result<T> {
    let mut tries = 0;
    loop {
        match batch() {
            Err(Error::Query(error))
                if tries < DEADLOCK_RETRIES
                    && error.to_string().to_ascii_lowercase().contains("deadlock") =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

impl SessionManager {
    /// Deletes the session (expired or not) as an admin action (audited as
    /// `admin_delete`). Returns whether a row was deleted.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn delete(&self, id: &SessionId) -> Result<bool> {
        let statement = trace::audited(self.audit.is_some(), "DELETE", "SELECT+INSERT+DELETE");
        let span = op_span!("session.admin", Some(id), statement, action = "delete");
        trace::run(span, || {
            let key = id.to_string();
            let deleted = self.remove(
                Rows::One(&key),
                EventKind::AdminDelete,
                &serde_json::json!({}),
            )?;
            Ok(deleted == 1)
        })
    }

    /// Overwrites the data of a session (expired or not) if its version is still
    /// `expected_version`, and returns the row as written. When the edit adds,
    /// changes or removes the `user_id` key, the `user_id` column follows it (the
    /// rule the fairing uses); otherwise the column is left alone. One
    /// transaction that locks the row. Audited as `admin_edit`, naming the keys
    /// that changed (never their values).
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] with the current row when someone wrote in between;
    /// [`Error::Gone`] when the row no longer exists; [`Error::TooLarge`];
    /// [`Error::CorruptData`] when the version matched nothing because the
    /// current row cannot be decoded; database errors.
    pub fn replace_data(
        &self,
        id: &SessionId,
        data: SessionData,
        expected_version: i64,
    ) -> Result<Session> {
        let statement = trace::audited(
            self.audit.is_some(),
            "SELECT+UPDATE",
            "SELECT+INSERT+UPDATE",
        );
        let span = op_span!(
            "session.admin",
            Some(id),
            statement,
            action = "replace_data"
        );
        trace::run(span, || {
            let text = self.encode(&data)?;
            let key = id.to_string();
            let now = self.now();
            with_conn!(self.db, conn => conn.write_transaction(|conn| {
                let row = conn.lock_session(&key, self.columns)?.ok_or(Error::Gone(*id))?;
                if row.version != expected_version {
                    return Err(match row.decode() {
                        Ok(current) => Error::Conflict {
                            expected: expected_version,
                            current: Box::new(current),
                        },
                        Err(corrupt) => Error::CorruptData(Box::new(corrupt)),
                    });
                }
                let stored = serde_json::from_str::<SessionData>(&row.data).unwrap_or_default();
                let stored_user_key = stored.get(USER_ID_KEY).cloned();
                let user_id = if stored_user_key.as_ref() == data.get(USER_ID_KEY) {
                    row.user_id
                } else {
                    data.get(USER_ID_KEY).and_then(user_id_of_value)
                };
                if let Some(actor) = self.audit {
                    let mut keys: Vec<&String> = stored
                        .iter()
                        .filter(|(key, value)| data.get(key.as_str()) != Some(value))
                        .map(|(key, _)| key)
                        .chain(data.keys().filter(|key| !stored.contains_key(key.as_str())))
                        .collect();
                    keys.sort();
                    diesel::insert_into(session_events::table)
                        .values(NewEvent {
                            at: now.naive_utc(),
                            session_id: &key,
                            user_id: user_id.as_deref(),
                            kind: EventKind::AdminEdit.as_str(),
                            actor: actor.as_str(),
                            ip_address: row.ip_address.as_deref(),
                            user_agent: row.user_agent.as_deref(),
                            detail: serde_json::json!({"keys": keys}).to_string(),
                        })
                        .execute(conn)?;
                }
                let session = Session {
                    id: *id,
                    user_id,
                    data,
                    expires_at: row.expires_at.and_utc(),
                    created_at: row.created_at.and_utc(),
                    updated_at: now,
                    version: row.version + 1,
                    ip_address: row.ip_address,
                    user_agent: row.user_agent,
                    last_seen_at: row.last_seen_at.map(|at| at.and_utc()),
                    timeout_seconds: row.timeout_seconds,
                };
                if self.columns == Columns::Base {
                    diesel::update(sessions::table.find(&key))
                        .set((
                            sessions::user_id.eq(session.user_id.as_deref()),
                            sessions::data.eq(&text),
                            sessions::updated_at.eq(now.naive_utc()),
                            sessions::version.eq(session.version),
                        ))
                        .execute(conn)?;
                    return Ok(session);
                }
                Save::<false> {
                    id: &key,
                    new_id: "",
                    user_id: session.user_id.as_deref(),
                    data: &text,
                    expires_at: row.expires_at,
                    updated_at: now.naive_utc(),
                    created_at: row.created_at,
                    version: session.version,
                    ip_address: session.ip_address.as_deref(),
                    user_agent: session.user_agent.as_deref(),
                    last_seen_at: row.last_seen_at,
                    timeout_seconds: session.timeout_seconds,
                    // The row is locked at this version.
                    expected_version: row.version,
                }
                .execute(conn)?;
                Ok(session)
            }))
        })
    }

    /// Sets `expires_at` (a time in the past expires the session now). An admin
    /// action: audited as `admin_expire` when the new time is not after now,
    /// else `admin_extend`.
    ///
    /// # Errors
    ///
    /// [`Error::Gone`] when the row does not exist; database errors.
    pub fn set_expiry(&self, id: &SessionId, expires_at: DateTime<Utc>) -> Result<()> {
        let statement = trace::audited(self.audit.is_some(), "UPDATE", "UPDATE+INSERT");
        let span = op_span!("session.admin", Some(id), statement, action = "set_expiry");
        trace::run(span, || {
            let key = id.to_string();
            let now = self.now_naive();
            let expires_at = truncate_to_micros(expires_at).naive_utc();
            let kind = if expires_at <= now {
                EventKind::AdminExpire
            } else {
                EventKind::AdminExtend
            };
            let updated = with_conn!(self.db, conn => conn.write_transaction(|conn| {
                let updated = diesel::update(sessions::table.find(&key))
                    .set((
                        sessions::expires_at.eq(expires_at),
                        sessions::updated_at.eq(now),
                        sessions::version.eq(sessions::version + 1),
                    ))
                    .execute(conn)?;
                if let (1, Some(actor)) = (updated, self.audit) {
                    let detail = serde_json::json!({"expires_at": expires_at.and_utc()}).to_string();
                    record_rows!(conn, [&key], now, kind, actor, detail)?;
                }
                Ok(updated)
            }))?;
            if updated == 1 {
                Ok(())
            } else {
                Err(Error::Gone(*id))
            }
        })
    }

    /// Expires a session or extends it, and returns its new expiry. One
    /// transaction that locks the row, so the rule is applied to the expiry as
    /// stored at that moment: "expire" writes the fixed past instant
    /// [`EXPIRED_AT`](crate::EXPIRED_AT) (or keeps an earlier one), "extend"
    /// counts from the later of the stored expiry and now, so it never shortens
    /// an expiry the app moved later meanwhile. Corrupt rows can be changed too
    /// (of the row, only the expiry is used). Audited as `admin_expire` / `admin_extend`.
    ///
    /// The app's next write to a session it still serves slides the expiry
    /// again; an expired session is not served, so "expire" sticks.
    ///
    /// # Errors
    ///
    /// [`Error::Gone`] when the row does not exist; database errors.
    pub fn change_expiry(&self, id: &SessionId, change: ExpiryChange) -> Result<DateTime<Utc>> {
        let statement = trace::audited(
            self.audit.is_some(),
            "SELECT+UPDATE",
            "SELECT+UPDATE+INSERT",
        );
        let span = op_span!(
            "session.admin",
            Some(id),
            statement,
            action = "change_expiry"
        );
        trace::run(span, || {
            let key = id.to_string();
            let now = self.now();
            let kind = match change {
                ExpiryChange::ExpireNow => EventKind::AdminExpire,
                ExpiryChange::ExtendMinutes(_) => EventKind::AdminExtend,
            };
            with_conn!(self.db, conn => conn.write_transaction(|conn| {
                let row = conn.lock_session(&key, self.columns)?.ok_or(Error::Gone(*id))?;
                let current = row.expires_at.and_utc();
                let expires_at = truncate_to_micros(change.apply(current, now));
                diesel::update(sessions::table.find(&key))
                    .set((
                        sessions::expires_at.eq(expires_at.naive_utc()),
                        sessions::updated_at.eq(now.naive_utc()),
                        sessions::version.eq(sessions::version + 1),
                    ))
                    .execute(conn)?;
                if let Some(actor) = self.audit {
                    let detail = serde_json::json!({"expires_at": expires_at, "previous": current})
                        .to_string();
                    record_rows!(conn, [&key], now.naive_utc(), kind, actor, detail)?;
                }
                Ok(expires_at)
            }))
        })
    }

    /// Expires the sessions matching `filter`, at most `at_most` of them (the
    /// count the admin confirmed: rows that start matching meanwhile do not
    /// widen the action): `expires_at` becomes
    /// [`EXPIRED_AT`](crate::EXPIRED_AT) (rows already at or before it are left
    /// alone and not counted), `batch` rows per transaction (at most 10,000),
    /// walking the matches in id order. A batch chosen as a deadlock's victim
    /// (crossing a login on PostgreSQL or MySQL) is tried again, up to three
    /// times. After each full batch (one that found `batch` candidates),
    /// `progress` gets the running total and returns whether to go on; batches
    /// already done stay done. Returns how many were expired.
    ///
    /// # Errors
    ///
    /// [`Error::Schema`] for an IP filter on an older schema; database errors
    /// (earlier batches stay committed).
    pub fn expire_matching(
        &self,
        filter: &SessionFilter,
        at_most: u64,
        batch: u32,
        progress: impl FnMut(u64) -> bool,
    ) -> Result<u64> {
        self.bulk(filter, at_most, batch, Bulk::Expire, progress)
    }

    /// Deletes the sessions matching `filter`, at most `at_most` of them,
    /// `batch` rows per transaction (at most 10,000), walking and reporting
    /// progress as [`expire_matching`](Self::expire_matching) does. Audited as
    /// `admin_delete`.
    ///
    /// # Errors
    ///
    /// As [`expire_matching`](Self::expire_matching).
    pub fn delete_matching(
        &self,
        filter: &SessionFilter,
        at_most: u64,
        batch: u32,
        progress: impl FnMut(u64) -> bool,
    ) -> Result<u64> {
        self.bulk(filter, at_most, batch, Bulk::Delete, progress)
    }

    fn bulk(
        &self,
        filter: &SessionFilter,
        at_most: u64,
        batch: u32,
        action: Bulk,
        mut progress: impl FnMut(u64) -> bool,
    ) -> Result<u64> {
        let statement = match (action, self.audit.is_some()) {
            (Bulk::Expire, false) => "SELECT+UPDATE",
            (Bulk::Expire, true) => "SELECT+INSERT+UPDATE",
            (Bulk::Delete, false) => "SELECT+DELETE",
            (Bulk::Delete, true) => "SELECT+INSERT+DELETE",
        };
        let span = op_span!(
            "session.admin",
            None,
            statement,
            action = action.action(),
            rows = tracing::field::Empty,
        );
        trace::run_counted(span, || {
            self.check_filter(filter)?;
            let range = id_prefix_range(filter);
            if range == IdRange::Nothing {
                return Ok(0);
            }
            // Ids are bound one per parameter (SQLite and MySQL cap their number).
            let limit = i64::from(batch.clamp(1, 10_000));
            let mut after: Option<String> = None;
            let mut done = 0u64;
            loop {
                let remaining = at_most.saturating_sub(done);
                if remaining == 0 {
                    return Ok(done);
                }
                let limit = limit.min(i64::try_from(remaining).unwrap_or(i64::MAX));
                let now = self.now_naive();
                // The next candidates, read outside the write transaction: finding
                // them may scan (a filter on the data or the client has no index),
                // and on SQLite the write lock would stall the app meanwhile.
                let candidates: Vec<String> = with_conn!(self.db, conn => {
                    let mut query = sessions::table.select(sessions::id).into_boxed();
                    query = filtered!(query, filter, range, now, position_fn(conn));
                    if let Some(after) = &after {
                        query = query.filter(sessions::id.gt(after.clone()));
                    }
                    Ok(query.order(sessions::id.asc()).limit(limit).load(conn)?)
                })?;
                let Some(last) = candidates.last().cloned() else {
                    return Ok(done);
                };
                let batch = || {
                    with_conn!(self.db, conn => conn.fresh_write_transaction(|conn| {
                        // The candidates locked, then the filter checked again on
                        // the locked rows (reads that see the newest commits): a row
                        // the app changed meanwhile so that it no longer matches is
                        // left alone. Only primary-key lookups hold the write lock.
                        let locked = ids(conn.lock_rows(Rows::Ids(&candidates), now)?);
                        let mut query = sessions::table
                            .select(sessions::id)
                            .filter(sessions::id.eq_any(&locked))
                            .into_boxed();
                        query = filtered!(query, filter, range, now, position_fn(conn));
                        let matching: Vec<String> = query.load(conn)?;
                        let changed = match action {
                            Bulk::Delete => {
                                let detail = serde_json::json!({"bulk": true});
                                remove_ids!(self, conn, &matching, now, EventKind::AdminDelete, detail)
                            }
                            Bulk::Expire => {
                                let expired_at = EXPIRED_AT.naive_utc();
                                let targets: Vec<String> = sessions::table
                                    .select(sessions::id)
                                    .filter(sessions::id.eq_any(&matching))
                                    .filter(sessions::expires_at.gt(expired_at))
                                    .load(conn)?;
                                if let (Some(actor), false) = (self.audit, targets.is_empty()) {
                                    let detail =
                                        serde_json::json!({"expires_at": EXPIRED_AT, "bulk": true})
                                            .to_string();
                                    record_rows!(conn, &targets, now, EventKind::AdminExpire, actor, detail)?;
                                }
                                diesel::update(sessions::table.filter(sessions::id.eq_any(&targets)))
                                    .set((
                                        sessions::expires_at.eq(expired_at),
                                        sessions::updated_at.eq(now),
                                        sessions::version.eq(sessions::version + 1),
                                    ))
                                    .execute(conn)?
                            }
                        };
                        Ok(changed)
                    }))
                };
                let changed = retry_deadlocks(batch)?;
                done += changed as u64;
                let full = i64::try_from(candidates.len()).unwrap_or(i64::MAX) >= limit;
                if !full || !progress(done) {
                    return Ok(done);
                }
                after = Some(last);
            }
        })
    }
}
