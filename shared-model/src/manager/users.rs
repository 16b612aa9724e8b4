//! A user's sessions, as a "your devices" page manages them: list them,
//! sign out one, the others, or all. (The per-user cap is enforced by the
//! logins in `request`.)

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::audit::EventKind;
use crate::db::with_conn;
use crate::schema::sessions;
use crate::store::{ids, Rows, Store};
use crate::trace::{self, op_span};
use crate::{Device, Result, SessionId, SessionManager};

impl SessionManager {
    /// The valid sessions of `user_id`, most recently seen first, with
    /// `current` marked: what a "your devices" page lists. One query on the
    /// `user_id` index.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn devices(&self, user_id: &str, current: Option<&SessionId>) -> Result<Vec<Device>> {
        type DeviceRow = (
            String,
            NaiveDateTime,
            Option<NaiveDateTime>,
            NaiveDateTime,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let span = op_span!("session.load", None, "SELECT", op = "devices");
        trace::run(span, || {
            let now = self.now_naive();
            let rows: Vec<DeviceRow> = with_conn!(self.db, conn => Ok(sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::expires_at.gt(now))
                .select((
                    sessions::id,
                    sessions::created_at,
                    sessions::last_seen_at,
                    sessions::expires_at,
                    sessions::ip_address,
                    sessions::user_agent,
                    sessions::timeout_seconds,
                ))
                .load(conn)?))?;
            let mut devices: Vec<Device> = rows
                .into_iter()
                .filter_map(
                    |(
                        id,
                        created_at,
                        last_seen_at,
                        expires_at,
                        ip_address,
                        user_agent,
                        timeout,
                    )| {
                        let id: SessionId = id.parse().ok()?;
                        Some(Device {
                            current: current == Some(&id),
                            id,
                            ip_address,
                            user_agent,
                            created_at: created_at.and_utc(),
                            last_seen_at: last_seen_at.map(|at| at.and_utc()),
                            expires_at: expires_at.and_utc(),
                            remembered: timeout.is_some(),
                        })
                    },
                )
                .collect();
            devices.sort_by(|a, b| {
                b.last_seen_at
                    .unwrap_or(b.created_at)
                    .cmp(&a.last_seen_at.unwrap_or(a.created_at))
                    .then_with(|| a.id.to_string().cmp(&b.id.to_string()))
            });
            Ok(devices)
        })
    }

    /// Signs out one of `user_id`'s sessions (audited as `revoked`, naming the
    /// session that asked, `by`). Returns false, deleting nothing, unless `id`
    /// is a valid session of that user: another user's session is "not found".
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn revoke(&self, user_id: &str, id: &SessionId, by: Option<&SessionId>) -> Result<bool> {
        let statement = trace::audited(
            self.audit.is_some(),
            "SELECT+DELETE",
            "SELECT+INSERT+DELETE",
        );
        let span = op_span!("session.admin", Some(id), statement, action = "revoke");
        trace::run(span, || {
            let key = id.to_string();
            let detail = serde_json::json!({"reason": "device", "by": by.map(ToString::to_string)});
            let revoked = self.remove(
                Rows::OfUser { user_id, id: &key },
                EventKind::Revoked,
                &detail,
            )?;
            Ok(revoked == 1)
        })
    }

    /// Signs out every valid session of `user_id` except `keep` ("sign out
    /// other devices", or after a password change), in one transaction. Audited
    /// as `revoked` for each and, when there were any, `revoked_others` on
    /// `keep`. Returns how many were signed out.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn revoke_others(&self, user_id: &str, keep: &SessionId) -> Result<u64> {
        let statement = trace::audited(
            self.audit.is_some(),
            "SELECT+DELETE",
            "SELECT+INSERT+DELETE+INSERT",
        );
        let span = op_span!(
            "session.admin",
            Some(keep),
            statement,
            action = "revoke_others",
            rows = tracing::field::Empty,
        );
        trace::run_counted(span, || {
            let keep = keep.to_string();
            let now = self.now_naive();
            let detail = serde_json::json!({"reason": "others", "by": keep});
            let removed = with_conn!(self.db, conn => conn.user_transaction(Some(user_id), |conn| {
                let ids = ids(conn.lock_rows(Rows::OthersOfUser { user_id, keep: &keep }, now)?);
                let removed = remove_ids!(self, conn, &ids, now, EventKind::Revoked, detail);
                if let (Some(actor), 1..) = (self.audit, removed) {
                    let count = serde_json::json!({"count": removed}).to_string();
                    crate::audit::record_rows!(conn, [&keep], now, EventKind::RevokedOthers, actor, count)?;
                }
                Ok(removed)
            }))?;
            Ok(removed as u64)
        })
    }

    /// Deletes every session of `user_id`, expired or not ("log out
    /// everywhere"; audited as `revoked` for each), in one transaction.
    /// Returns how many.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub fn delete_for_user(&self, user_id: &str) -> Result<u64> {
        let statement = trace::audited(
            self.audit.is_some(),
            "SELECT+DELETE",
            "SELECT+INSERT+DELETE",
        );
        let span = op_span!(
            "session.admin",
            None,
            statement,
            action = "delete_for_user",
            rows = tracing::field::Empty,
        );
        trace::run_counted(span, || {
            let detail = serde_json::json!({"reason": "everywhere"});
            self.remove(Rows::AllOfUser(user_id), EventKind::Revoked, &detail)
        })
    }
}
