//! The clock the manager reads "now" from, injectable so expiry is testable exactly.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Duration, DurationRound, Utc};

/// A source of the current time.
///
/// [`SystemClock`] is the default; [`ManualClock`] is for tests.
pub trait Clock: Send + Sync + 'static {
    /// The current time. Implementations should return microsecond precision at most,
    /// which every backend stores exactly (see [`truncate_to_micros`]).
    fn now(&self) -> DateTime<Utc>;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// Rounds a time down to whole microseconds, the precision every backend stores.
///
/// The manager applies this to every timestamp it writes, so a value read back
/// equals the value written.
#[must_use]
pub fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::microseconds(1)).unwrap_or(at)
}

/// The real time ([`Utc::now`]), truncated to microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate_to_micros(Utc::now())
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// # Examples
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use shared_model::{Clock, ManualClock};
///
/// let start = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
/// let clock = ManualClock::new(start);
/// let handle = clock.clone();
/// handle.advance(Duration::minutes(31));
/// assert_eq!(clock.now(), start + Duration::minutes(31));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    /// A clock stopped at `start` (truncated to microseconds).
    #[must_use]
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(truncate_to_micros(start))))
    }

    /// Moves the clock to `at`, forwards or backwards.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = truncate_to_micros(at);
    }

    /// Moves the clock by `by` (negative moves it back).
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now = truncate_to_micros(*now + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
