//! Small text formatters for the table and the CLI: relative times, sizes, keys.

use chrono::{DateTime, Utc};
use shared_model::SessionData;

/// A duration in seconds as its largest whole unit: `"40 s"`, `"12 min"`, `"3 h"`, `"2 d"`.
///
/// # Examples
///
/// ```
/// use session_inspector::format::short_duration;
///
/// assert_eq!(short_duration(45), "45 s");
/// assert_eq!(short_duration(12 * 60 + 30), "12 min");
/// assert_eq!(short_duration(3 * 3600), "3 h");
/// assert_eq!(short_duration(49 * 3600), "2 d");
/// ```
#[must_use]
pub fn short_duration(seconds: i64) -> String {
    let seconds = seconds.unsigned_abs();
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h", seconds / 3600),
        _ => format!("{} d", seconds / 86_400),
    }
}

/// A past or future time relative to `now`: `"3 min ago"`, `"in 12 min"`, `"just now"`.
///
/// # Examples
///
/// ```
/// use chrono::{Duration, Utc};
/// use session_inspector::format::relative_time;
///
/// let now = Utc::now();
/// assert_eq!(relative_time(now - Duration::minutes(3), now), "3 min ago");
/// assert_eq!(relative_time(now + Duration::minutes(12), now), "in 12 min");
/// ```
#[must_use]
pub fn relative_time(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (at - now).num_seconds();
    if seconds == 0 {
        "just now".to_owned()
    } else if seconds > 0 {
        format!("in {}", short_duration(seconds))
    } else {
        format!("{} ago", short_duration(seconds))
    }
}

/// An expiry relative to `now`: `"in 12 min"` or `"expired 3 min ago"`.
///
/// # Examples
///
/// ```
/// use chrono::{Duration, Utc};
/// use session_inspector::format::relative_expiry;
///
/// let now = Utc::now();
/// assert_eq!(relative_expiry(now + Duration::minutes(12), now), "in 12 min");
/// assert_eq!(relative_expiry(now - Duration::minutes(3), now), "expired 3 min ago");
/// ```
#[must_use]
pub fn relative_expiry(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if expires_at > now {
        format!("in {}", short_duration((expires_at - now).num_seconds()))
    } else {
        format!(
            "expired {} ago",
            short_duration((now - expires_at).num_seconds())
        )
    }
}

/// A byte count: `"512 B"`, `"1.5 KiB"`, `"2.0 MiB"`.
///
/// # Examples
///
/// ```
/// use session_inspector::format::byte_size;
///
/// assert_eq!(byte_size(512), "512 B");
/// assert_eq!(byte_size(1536), "1.5 KiB");
/// ```
#[must_use]
pub fn byte_size(bytes: usize) -> String {
    #[allow(clippy::cast_precision_loss)] // display only
    let value = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", value / 1024.0)
    } else {
        format!("{:.1} MiB", value / (1024.0 * 1024.0))
    }
}

/// The top-level keys of `data`, comma separated, at most `max` of them and
/// `+N` for the rest.
///
/// # Examples
///
/// ```
/// use serde_json::json;
/// use session_inspector::format::top_level_keys;
///
/// let data = json!({"cart": [], "flash": "hi", "user": 1}).as_object().unwrap().clone();
/// assert_eq!(top_level_keys(&data, 2), "cart, flash +1");
/// ```
#[must_use]
pub fn top_level_keys(data: &SessionData, max: usize) -> String {
    let mut text = data
        .keys()
        .take(max)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if data.len() > max {
        text.push_str(&format!(" +{}", data.len() - max));
    }
    text
}

/// A timestamp as `2026-03-01 12:00:00 UTC`.
#[must_use]
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn relative_times_round_down_to_the_unit() {
        let now = Utc::now();
        assert_eq!(relative_time(now, now), "just now");
        assert_eq!(relative_time(now - Duration::seconds(59), now), "59 s ago");
        assert_eq!(relative_time(now + Duration::hours(25), now), "in 1 d");
        assert_eq!(
            relative_expiry(now, now),
            "expired 0 s ago",
            "a session is valid while now < expires_at"
        );
    }

    #[test]
    fn sizes_switch_units_at_1024() {
        assert_eq!(byte_size(1023), "1023 B");
        assert_eq!(byte_size(1024), "1.0 KiB");
        assert_eq!(byte_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
