//! Statement counting: a Diesel [`Instrumentation`] that classifies each
//! statement a pooled connection starts, for [`Database::statement_counts`](crate::Database::statement_counts).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::{Instrumentation, InstrumentationEvent};

/// How many statements a [`Database`](crate::Database) has sent, by kind.
///
/// Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`) and anything else count as
/// `other`. Statements run while a connection is being set up (SQLite pragmas) are
/// not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatementCounts {
    /// `SELECT` statements.
    pub reads: u64,
    /// `INSERT`, `UPDATE` and `DELETE` statements.
    pub writes: u64,
    /// Everything else (transaction control, DDL, pragmas after setup).
    pub other: u64,
}

impl StatementCounts {
    /// All statements.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.reads + self.writes + self.other
    }
}

impl std::ops::Sub for StatementCounts {
    type Output = Self;
    fn sub(self, earlier: Self) -> Self {
        Self {
            reads: self.reads.saturating_sub(earlier.reads),
            writes: self.writes.saturating_sub(earlier.writes),
            other: self.other.saturating_sub(earlier.other),
        }
    }
}

/// The shared tallies behind [`StatementCounts`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
    other: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> StatementCounts {
        StatementCounts {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
        }
    }
}

/// Counts each statement a connection starts, by its first keyword.
pub(super) struct StatementCounter(pub(super) Arc<Counters>);

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let mut head = Head::default();
            // `Head` stops the formatting after a few bytes; the error is expected.
            let _truncated = fmt::write(&mut head, format_args!("{query}"));
            let counter = match head.keyword().as_str() {
                "SELECT" | "WITH" => &self.0.reads,
                "INSERT" | "UPDATE" | "DELETE" | "REPLACE" => &self.0.writes,
                _ => &self.0.other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The first bytes of a statement's text.
#[derive(Default)]
struct Head {
    bytes: [u8; 16],
    len: usize,
}

impl Head {
    fn keyword(&self) -> String {
        let text = String::from_utf8_lossy(self.bytes.get(..self.len).unwrap_or_default());
        text.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase()
    }
}

impl fmt::Write for Head {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            let slot = self.bytes.get_mut(self.len).ok_or(fmt::Error)?;
            *slot = byte;
            self.len += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_keyword_is_read_from_the_start() {
        let mut head = Head::default();
        let _ = fmt::write(
            &mut head,
            format_args!("  select * from sessions where id = ?"),
        );
        assert_eq!(head.keyword(), "SELECT");
    }
}
