//! Housekeeping: deleting expired sessions and old audit events in batches.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::audit::EventKind;
use crate::clock::truncate_to_micros;
use crate::db::{self, with_conn, Pools};
use crate::schema::sessions;
use crate::store::{ids, Rows, Store};
use crate::trace::{self, op_span};
use crate::{Result, SessionManager};

/// The largest purge batch when auditing.
const MAX_AUDITED_BATCH: u32 = 10_000;

/// One purge batch on `$conn`: up to `$batch` expired rows deleted (with
/// their `expired` events, in one transaction, when auditing). Evaluates to
/// `Result<usize>`.
macro_rules! purge_batch {
    ($self:ident, $conn:ident, $now:expr, $batch:expr, $detail:expr) => {
        if $self.audit.is_none() {
            $conn.purge_batch($now, $batch).map_err(crate::Error::from)
        } else {
            // Each batch's events commit with its deletes.
            $conn.write_transaction(|conn| {
                let ids = ids(conn.lock_rows(Rows::Expired { limit: $batch }, $now)?);
                Ok(remove_ids!(
                    $self,
                    conn,
                    &ids,
                    $now,
                    EventKind::Expired,
                    $detail
                ))
            })
        }
    };
}

/// Runs `next_batch` until a batch deletes fewer than `batch` rows, reporting
/// the running total to `progress`.
fn batches(
    batch: i64,
    progress: &mut impl FnMut(u64),
    mut next_batch: impl FnMut() -> Result<usize>,
) -> Result<u64> {
    let mut removed = 0u64;
    loop {
        let deleted = next_batch()?;
        removed += deleted as u64;
        progress(removed);
        if (deleted as i64) < batch {
            return Ok(removed);
        }
    }
}

impl SessionManager {
    /// Deletes expired rows, `batch_size` per statement (at least 1), so other
    /// writers wait for the lock at most one batch's time. When auditing, each
    /// is recorded as `expired` in its batch's transaction (batches of at most
    /// 10,000). Returns how many were deleted.
    ///
    /// One purge runs at a time per database: on PostgreSQL and MySQL the
    /// whole run holds one pooled connection and a lock taken without waiting
    /// (several app instances on one database do not all purge at once). On
    /// SQLite each batch checks out a connection of its own (waiting for one
    /// like any request, up to the pool's connection timeout), and the
    /// batches of concurrent purges take turns on the write lock.
    ///
    /// # Errors
    ///
    /// [`Error::PurgeRunning`](crate::Error::PurgeRunning) when another
    /// connection holds the purge lock (nothing was deleted); database errors
    /// (rows deleted by earlier batches stay deleted).
    pub fn purge_expired(&self, batch_size: u32) -> Result<u64> {
        self.purge_expired_with(batch_size, |_| ())
    }

    /// [`purge_expired`](Self::purge_expired), calling `progress` with the running
    /// total after each batch.
    ///
    /// # Errors
    ///
    /// As [`purge_expired`](Self::purge_expired).
    pub fn purge_expired_with(
        &self,
        batch_size: u32,
        mut progress: impl FnMut(u64),
    ) -> Result<u64> {
        let statement = trace::audited(self.audit.is_some(), "DELETE", "SELECT+INSERT+DELETE");
        let span = op_span!(
            "session.purge",
            None,
            statement,
            op = "purge_expired",
            rows = tracing::field::Empty,
        );
        trace::run_counted(span, || {
            let now = self.now_naive();
            // With audit on, a batch's ids are bound one per parameter (SQLite and
            // MySQL cap the number of parameters).
            let most = if self.audit.is_some() {
                MAX_AUDITED_BATCH
            } else {
                u32::MAX
            };
            let batch = i64::from(batch_size.clamp(1, most));
            let detail = serde_json::json!({});
            // PostgreSQL and MySQL: the whole run on one connection, which
            // holds the purge lock. A lost connection takes its lock with it;
            // a failed release on a live one is an error like any other.
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            macro_rules! locked {
                ($pool:expr) => {
                    db::run($pool, |conn| {
                        if !conn.try_purge_lock()? {
                            return Err(crate::Error::PurgeRunning);
                        }
                        let purged = batches(batch, &mut progress, || {
                            purge_batch!(self, conn, now, batch, detail)
                        });
                        let released = conn.release_purge_lock();
                        let removed = purged?;
                        released?;
                        Ok(removed)
                    })
                };
            }
            match self.db.pools() {
                // SQLite: no lock to hold, so each batch checks a connection
                // out and gives it back (a one-connection `:memory:` pool
                // serves requests between batches).
                Pools::Sqlite(pool) => batches(batch, &mut progress, || {
                    db::run(pool, |conn| purge_batch!(self, conn, now, batch, detail))
                }),
                #[cfg(feature = "postgres")]
                Pools::Postgres(pool) => locked!(pool),
                #[cfg(feature = "mysql")]
                Pools::Mysql(pool) => locked!(pool),
            }
        })
    }

    /// Deletes audit events older than `before`, `batch_size` per statement.
    /// Returns how many were deleted.
    ///
    /// # Errors
    ///
    /// Database errors (batches already deleted stay deleted).
    pub fn purge_events(&self, before: DateTime<Utc>, batch_size: u32) -> Result<u64> {
        let span = op_span!(
            "session.purge",
            None,
            "DELETE",
            op = "purge_events",
            rows = tracing::field::Empty,
        );
        trace::run_counted(span, || {
            let before = truncate_to_micros(before).naive_utc();
            let batch = i64::from(batch_size.max(1));
            let mut removed = 0u64;
            loop {
                let deleted =
                    with_conn!(self.db, conn => Ok(conn.trim_events_batch(before, batch)?))?;
                removed += deleted as u64;
                if (deleted as i64) < batch {
                    return Ok(removed);
                }
            }
        })
    }
}
