//! Tracing spans around the manager's operations: one DEBUG span per call,
//! closed by one DEBUG event.
//!
//! Span names: `session.load`, `session.save`, `session.renew`,
//! `session.logout`, `session.purge` and `session.admin`. Their fields:
//!
//! - `op` (`action` on `session.admin`): the method.
//! - `session`: the first eight characters of the public id
//!   ([`SessionId::short`]), `-` when the call names no single session.
//!   Never the token, never the data.
//! - `statement`: the kinds of SQL statement the call runs on the session
//!   tables, in order, joined by `+` (a kind repeated back to back is written
//!   once). It follows the manager's settings: auditing adds the `INSERT`s of
//!   the events, the per-user cap a `SELECT` and a `DELETE`. A statement that
//!   only runs when it has rows to act on is listed anyway. Transaction
//!   control and the per-user lock's own statements are not listed.
//! - `rows`: the count the call returns, on the calls that return one.
//! - `elapsed_us`: how long the call took, in microseconds, recorded when it ends.
//!
//! The closing event carries `elapsed_us`, `outcome` (`ok` or `error`; the
//! error itself is the caller's to log) and, when the span has one, `rows`.
//! Spans and events have the target `shared_model`. With no `tracing`
//! subscriber they reach the `log` crate instead (tracing's `log` feature):
//! a line when the span opens, with its fields, and the closing event.

use std::fmt;
use std::time::Instant;

use tracing::Span;

use crate::{Result, SessionId};

/// The target of the spans and events: one for all of them, so one filter
/// (`RUST_LOG=shared_model=debug`) or log level shows them all.
pub(crate) const TARGET: &str = "shared_model";

/// A DEBUG span named `$name` (a literal) about the session `$session` (an
/// `Option<&SessionId>`), running `$statement`, with the extra fields given
/// (`op = "..."`, `rows = tracing::field::Empty`, ...) and an empty
/// `elapsed_us`. The `session` text is only made when the span is recorded.
macro_rules! op_span {
    ($name:literal, $session:expr, $statement:expr $(, $field:ident = $value:expr)* $(,)?) => {
        tracing::debug_span!(
            target: $crate::trace::TARGET,
            $name,
            $($field = $value,)*
            session = %$crate::trace::Short($session),
            statement = $statement,
            elapsed_us = tracing::field::Empty,
        )
    };
}
pub(crate) use op_span;

/// `plain`, or `audited` when the manager records events: the `statement`
/// field of a call whose statements change with auditing.
pub(crate) fn audited(audit: bool, plain: &'static str, audited: &'static str) -> &'static str {
    if audit {
        audited
    } else {
        plain
    }
}

/// A span's `session` field: [`SessionId::short`], or `-` for none. Formatted
/// (and its text allocated) only when a subscriber or logger records it.
pub(crate) struct Short<'a>(pub(crate) Option<&'a SessionId>);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => f.write_str(&id.short()),
            None => f.write_str("-"),
        }
    }
}

/// Runs `work` inside `span`, then records `elapsed_us` on the span and emits
/// the closing event.
pub(crate) fn run<T>(span: Span, work: impl FnOnce() -> Result<T>) -> Result<T> {
    run_recording(span, work, |_| None)
}

/// [`run`] for a call that returns a count: also records it as `rows`.
pub(crate) fn run_counted<T: Copy>(span: Span, work: impl FnOnce() -> Result<T>) -> Result<T>
where
    u64: TryFrom<T>,
{
    run_recording(span, work, |count| {
        Some(u64::try_from(*count).unwrap_or(u64::MAX))
    })
}

fn run_recording<T>(
    span: Span,
    work: impl FnOnce() -> Result<T>,
    rows: impl FnOnce(&T) -> Option<u64>,
) -> Result<T> {
    let _entered = span.enter();
    let start = Instant::now();
    let result = work();
    let elapsed_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    // A disabled span has no subscriber to record into; through `log` a
    // record would print a second line, and the event below says it all.
    let rows = result.as_ref().ok().and_then(rows);
    if !span.is_disabled() {
        if let Some(rows) = rows {
            span.record("rows", rows);
        }
        span.record("elapsed_us", elapsed_us);
    }
    let outcome = if result.is_ok() { "ok" } else { "error" };
    let name = span.metadata().map_or("session", |meta| meta.name());
    // `rows` again for `log`, which does not see the span's later fields.
    tracing::debug!(target: TARGET, elapsed_us, outcome, rows, "{name} finished");
    result
}
