//! Housekeeping: deleting expired sessions and old audit events in batches.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::audit::EventKind;
use crate::clock::truncate_to_micros;
use crate::db::with_conn;
use crate::schema::sessions;
use crate::store::{ids, Rows, Store};
use crate::trace::{self, op_span};
use crate::{Backend, Result, SessionManager};

/// The largest purge batch when auditing.
const MAX_AUDITED_BATCH: u32 = 10_000;

/// The largest purge batch otherwise.
const MAX_BATCH: u32 = 50_000;

/// The smallest batch the pacing shrinks to.
const MIN_BATCH: i64 = 100;

/// How the purge shares the database with the app: each batch should take
/// about `target` (the batch size doubles while batches take less than half
/// of it and halves when one takes longer), and after each batch the purge
/// pauses for `pause_share` of the batch's time (at most `max_pause`), so
/// the app's writers get the write lock (SQLite) or the disk and the CPUs
/// (PostgreSQL, MySQL, whose row locks the purge never shares with the app).
#[derive(Debug, Clone, Copy)]
struct Pace {
    target: Duration,
    pause_share: f64,
    max_pause: Duration,
}

impl Pace {
    fn of(backend: Backend) -> Self {
        match backend {
            // One writer at a time: short batches, and as long again for the app.
            Backend::Sqlite => Self {
                target: Duration::from_millis(10),
                pause_share: 1.0,
                max_pause: Duration::from_millis(20),
            },
            _ => Self {
                target: Duration::from_millis(50),
                pause_share: 0.25,
                max_pause: Duration::from_millis(20),
            },
        }
    }

    /// The next batch size after one of `batch` rows took `took`, and the
    /// pause before it.
    fn next(&self, batch: i64, most: i64, took: Duration) -> (i64, Duration) {
        let batch = if took < self.target / 2 {
            batch.saturating_mul(2).min(most)
        } else if took > self.target {
            (batch / 2).max(MIN_BATCH.min(most))
        } else {
            batch
        };
        (batch, took.mul_f64(self.pause_share).min(self.max_pause))
    }
}

impl SessionManager {
    /// Deletes expired rows, earliest expiry first, in batches of one
    /// statement (or, when auditing, one transaction that also records each
    /// as `expired`). The first batch has `batch_size` rows (at least 1);
    /// then the size adapts so a batch takes about 10 ms on SQLite and 50 ms
    /// elsewhere (up to 50,000 rows; 10,000 when auditing), and the purge
    /// pauses between batches (on SQLite as long as the batch took, up to
    /// 20 ms; elsewhere a quarter of it) so the app's writes keep flowing.
    /// Returns how many were deleted.
    ///
    /// One purge runs at a time per database: the whole run holds one pooled
    /// connection and, on PostgreSQL and MySQL, a lock taken without waiting
    /// (several app instances on one database do not all purge at once). On
    /// SQLite the batches of concurrent purges take turns on the write lock.
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
                MAX_BATCH
            };
            let most_rows = i64::from(most);
            let mut batch = i64::from(batch_size.clamp(1, most));
            let pace = Pace::of(self.db.backend());
            let detail = serde_json::json!({});
            with_conn!(self.db, conn => {
                if !conn.try_purge_lock()? {
                    return Err(crate::Error::PurgeRunning);
                }
                let mut removed = 0u64;
                // Before any expiry (and within every backend's range).
                let mut from = chrono::NaiveDate::from_ymd_opt(1, 1, 1)
                    .unwrap_or_default()
                    .and_time(chrono::NaiveTime::MIN);
                let purged = loop {
                    let started = Instant::now();
                    let deleted = if self.audit.is_none() {
                        conn.purge_batch(now, from, batch)
                            .map(|(deleted, last)| {
                                if let Some(last) = last {
                                    from = last;
                                }
                                deleted
                            })
                            .map_err(crate::Error::from)
                    } else {
                        // Each batch's events commit with its deletes.
                        conn.write_transaction(|conn| {
                            let ids = ids(conn.lock_rows(Rows::Expired { limit: batch }, now)?);
                            Ok(remove_ids!(self, conn, &ids, now, EventKind::Expired, detail))
                        })
                    };
                    let took = started.elapsed();
                    match deleted {
                        Ok(deleted) => {
                            removed += deleted as u64;
                            progress(removed);
                            if let Err(error) = conn.after_purge_batch() {
                                break Err(error.into());
                            }
                            if (deleted as i64) < batch {
                                break Ok(removed);
                            }
                            let (next, pause) = pace.next(batch, most_rows, took);
                            batch = next;
                            std::thread::sleep(pause);
                        }
                        Err(error) => break Err(error),
                    }
                };
                // A lost connection takes its lock with it; a failed release
                // on a live one is an error like any other.
                let released = conn.release_purge_lock();
                let removed = purged?;
                released?;
                Ok(removed)
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    const SQLITE: Pace = Pace {
        target: Duration::from_millis(10),
        pause_share: 1.0,
        max_pause: Duration::from_millis(20),
    };

    #[test]
    fn fast_batches_grow_slow_ones_shrink_within_bounds() {
        let ms = Duration::from_millis;
        // Under half the target: double, up to the most.
        assert_eq!(SQLITE.next(1_000, 50_000, ms(2)).0, 2_000);
        assert_eq!(SQLITE.next(40_000, 50_000, ms(2)).0, 50_000);
        // Between half and the whole target: keep.
        assert_eq!(SQLITE.next(1_000, 50_000, ms(7)).0, 1_000);
        // Over it: halve, down to the least.
        assert_eq!(SQLITE.next(1_000, 50_000, ms(30)).0, 500);
        assert_eq!(SQLITE.next(150, 50_000, ms(30)).0, MIN_BATCH);
        // A caller's batch below the least is never raised by shrinking.
        assert_eq!(SQLITE.next(10, 10, ms(30)).0, 10);
    }

    #[test]
    fn the_pause_is_a_share_of_the_batch_time_capped() {
        let ms = Duration::from_millis;
        assert_eq!(SQLITE.next(1_000, 50_000, ms(7)).1, ms(7));
        assert_eq!(SQLITE.next(1_000, 50_000, ms(300)).1, ms(20));
        let server = Pace::of(Backend::Postgres);
        assert_eq!(server.next(1_000, 50_000, ms(40)).1, ms(10));
    }
}
