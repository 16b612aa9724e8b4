//! Realistic fake sessions for demos and benchmarks (`session-inspector seed`).

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use shared_model::{Session, SessionData, SessionId, SessionManager};

use crate::Result;

/// Rows per [`SessionManager::import`] call (one transaction each).
pub const CHUNK: usize = 10_000;

const FIRST_NAMES: &[&str] = &[
    "Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Alan", "Radia",
    "Edsger", "Hedy", "Tim", "Karen", "Niklaus", "Shafi",
];
const PRODUCTS: &[(&str, i64)] = &[
    ("SKU-1001 espresso beans 1kg", 2490),
    ("SKU-1002 pour-over kettle", 5900),
    ("SKU-1003 ceramic mug", 1290),
    ("SKU-1004 burr grinder", 14900),
    ("SKU-1005 paper filters x100", 490),
    ("SKU-1006 milk frother", 3900),
    ("SKU-1007 travel tumbler", 2290),
];
const FLASHES: &[(&str, &str)] = &[
    ("success", "Your order has been placed."),
    ("info", "Welcome back!"),
    ("warning", "Your cart will expire soon."),
    ("error", "Payment was declined, please try another card."),
    ("success", "Profile updated."),
];
const PATHS: &[&str] = &[
    "/",
    "/products",
    "/products/1004",
    "/cart",
    "/checkout",
    "/account",
    "/orders/88231",
    "/search?q=grinder",
];
const LOCALES: &[&str] = &["en-GB", "en-US", "de-DE", "fr-FR", "nl-NL", "ja-JP"];

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> Option<&'a T> {
    items.get(rng.usize(..items.len().max(1)))
}

/// A user id from a pool of `users`, skewed so a few users own many sessions
/// (which makes the "top users" plot meaningful).
fn user_id(rng: &mut fastrand::Rng, users: u64) -> String {
    let skew = rng.f64().powi(3);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let n = (skew * users as f64) as u64;
    format!("user-{:06}", n.min(users.saturating_sub(1)) + 1)
}

fn random_id(rng: &mut fastrand::Rng) -> Option<SessionId> {
    let bytes = rng.u128(..).to_le_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
        .parse()
        .ok()
}

fn hex_token(rng: &mut fastrand::Rng) -> String {
    format!("{:032x}", rng.u128(..))
}

/// One fake session: a logged-in user or an anonymous visitor, with a CSRF token,
/// maybe a cart, a flash message and preferences; created in the last 72 hours,
/// expiring 30 minutes, 12 hours, 2 days or 7 days after its last write (so a realistic
/// share is already expired).
fn fake_session(
    rng: &mut fastrand::Rng,
    now: DateTime<Utc>,
    users: u64,
    all_expired: bool,
) -> Option<Session> {
    let id = random_id(rng)?;
    let logged_in = rng.u8(..100) < 65;
    let user = logged_in.then(|| user_id(rng, users));
    let mut data = SessionData::new();
    data.insert("csrf_token".into(), Value::String(hex_token(rng)));
    if let Some(user) = &user {
        let name = pick(rng, FIRST_NAMES).copied().unwrap_or("Ada");
        let role = if rng.u8(..100) < 3 {
            "admin"
        } else {
            "customer"
        };
        data.insert(
            "user".into(),
            json!({ "id": user, "name": name, "role": role }),
        );
    }
    if rng.bool() {
        let items: Vec<Value> = (0..rng.usize(1..=4))
            .filter_map(|_| pick(rng, PRODUCTS))
            .map(|(sku, price)| json!({ "sku": sku, "qty": 1 + (price % 3), "price_cents": price }))
            .collect();
        data.insert("cart".into(), Value::Array(items));
    }
    if rng.u8(..100) < 20 {
        if let Some((level, message)) = pick(rng, FLASHES) {
            data.insert(
                "flash".into(),
                json!({ "level": level, "message": message }),
            );
        }
    }
    if let Some(locale) = pick(rng, LOCALES) {
        data.insert("locale".into(), Value::String((*locale).into()));
    }
    if rng.u8(..100) < 30 {
        let theme = if rng.bool() { "dark" } else { "light" };
        data.insert("theme".into(), Value::String(theme.into()));
    }
    if let Some(path) = pick(rng, PATHS) {
        data.insert("last_path".into(), Value::String((*path).into()));
    }
    // Skewed towards recent sessions.
    #[allow(clippy::cast_possible_truncation)]
    let age = Duration::seconds((rng.f64().powf(1.5) * 72.0 * 3600.0) as i64);
    let created_at = now - age;
    #[allow(clippy::cast_possible_truncation)]
    let since_created = Duration::seconds((rng.f64() * age.num_seconds() as f64) as i64);
    let updated_at = created_at + since_created;
    let ttl = match rng.u8(..100) {
        0..45 => Duration::minutes(30),
        45..70 => Duration::hours(12),
        70..85 => Duration::days(2),
        _ => Duration::days(7),
    };
    let expires_at = if all_expired {
        // Somewhere between the last write and now.
        #[allow(clippy::cast_possible_truncation)]
        let lived = Duration::seconds((rng.f64() * (now - updated_at).num_seconds() as f64) as i64);
        updated_at + lived
    } else {
        updated_at + ttl
    };
    Some(Session {
        id,
        user_id: user,
        data,
        expires_at,
        created_at,
        updated_at,
        version: i64::from(rng.u8(1..12)),
        ip_address: None,
        user_agent: None,
        last_seen_at: Some(updated_at),
        timeout_seconds: None,
    })
}

/// `count` fake sessions at `now`, drawn from `rng`.
#[must_use]
pub fn fake_sessions(rng: &mut fastrand::Rng, now: DateTime<Utc>, count: usize) -> Vec<Session> {
    let users = (count as u64 / 6).max(1);
    (0..count)
        .filter_map(|_| fake_session(rng, now, users, false))
        .collect()
}

/// Inserts `count` fake sessions in chunks of [`CHUNK`], calling `progress` with
/// the running total after each chunk. `seed` makes the data reproducible (ids
/// included, so seeding one database twice with the same seed fails on the ids).
/// With `all_expired`, every session has already expired (for purge benchmarks).
///
/// # Errors
///
/// Database errors; chunks inserted before the error stay inserted.
pub fn seed(
    manager: &SessionManager,
    count: u64,
    seed: Option<u64>,
    all_expired: bool,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let mut rng = seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
    let now = manager.now();
    let users = (count / 6).max(1);
    let mut inserted = 0u64;
    while inserted < count {
        let chunk = usize::try_from(count - inserted).map_or(CHUNK, |left| left.min(CHUNK));
        let rows: Vec<Session> = (0..chunk)
            .filter_map(|_| fake_session(&mut rng, now, users, all_expired))
            .collect();
        inserted += manager.import(&rows)? as u64;
        progress(inserted);
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_sessions_are_varied_and_well_formed() {
        let now = Utc::now();
        let mut rng = fastrand::Rng::with_seed(7);
        let sessions = fake_sessions(&mut rng, now, 2000);
        assert_eq!(sessions.len(), 2000);
        let expired = sessions.iter().filter(|s| !s.is_active_at(now)).count();
        assert!(expired > 200 && expired < 1800, "{expired} expired");
        let anonymous = sessions.iter().filter(|s| s.user_id.is_none()).count();
        assert!(anonymous > 300 && anonymous < 1200, "{anonymous} anonymous");
        assert!(sessions.iter().any(|s| s.data.contains_key("cart")));
        assert!(sessions.iter().any(|s| s.data.contains_key("flash")));
        assert!(sessions
            .iter()
            .all(|s| s.created_at <= s.updated_at && s.updated_at <= now));
    }

    #[test]
    fn the_same_seed_gives_the_same_sessions() {
        let now = Utc::now();
        let a = fake_sessions(&mut fastrand::Rng::with_seed(1), now, 10);
        let b = fake_sessions(&mut fastrand::Rng::with_seed(1), now, 10);
        assert_eq!(a, b);
    }
}
