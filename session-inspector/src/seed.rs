//! Realistic fake sessions for demos and benchmarks (`session-inspector seed`).

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use shared_model::{Session, SessionData, SessionId, SessionManager, SessionToken, TOKEN_LEN};

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
/// Real-looking `User-Agent` headers, most common first.
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
     (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
     (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
     Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
];
/// The IPv4 documentation ranges (RFC 5737): never a real client.
const IPV4_NETWORKS: &[&str] = &["203.0.113.", "198.51.100.", "192.0.2."];
/// The base64url alphabet of session tokens.
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

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

/// Where seeded sessions get their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// From real tokens (the operating system's randomness), as the app makes
    /// them; the tokens are thrown away, so no cookie can ever name these sessions.
    Random,
    /// From tokens drawn from the seeded generator: reproducible, and so are
    /// the tokens.
    Seeded,
}

/// A token drawn from `rng`: 42 base64url characters and a last one whose two
/// unused bits are zero, as a real token's.
fn seeded_token(rng: &mut fastrand::Rng) -> Option<SessionToken> {
    let mut text: String = (0..TOKEN_LEN - 1)
        .filter_map(|_| BASE64URL.get(rng.usize(..64)))
        .map(|byte| char::from(*byte))
        .collect();
    text.extend(
        BASE64URL
            .get(rng.usize(..16) * 4)
            .map(|byte| char::from(*byte)),
    );
    text.parse().ok()
}

/// The id of the next seeded session: a token's public id, the app's way.
fn next_id(rng: &mut fastrand::Rng, ids: Ids) -> Result<Option<SessionId>> {
    Ok(match ids {
        Ids::Random => Some(SessionToken::generate()?.public_id()),
        Ids::Seeded => seeded_token(rng).map(|token| token.public_id()),
    })
}

/// An address from the documentation ranges: IPv4 (RFC 5737) or, for one
/// session in four, IPv6 (`2001:db8::/32`, RFC 3849).
fn fake_ip(rng: &mut fastrand::Rng) -> String {
    if rng.u8(..100) < 25 {
        format!("2001:db8::{:x}:{:x}", rng.u16(1..), rng.u16(1..))
    } else {
        let network = pick(rng, IPV4_NETWORKS).copied().unwrap_or("203.0.113.");
        format!("{network}{}", rng.u8(1..255))
    }
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
    id: SessionId,
    now: DateTime<Utc>,
    users: u64,
    all_expired: bool,
) -> Session {
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
    // "Remember me": a month of its own, for some of the signed-in sessions.
    let remembered = logged_in && rng.u8(..100) < 20;
    let ttl = match rng.u8(..100) {
        _ if remembered => Duration::days(30),
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
    // A few rows are older than the device columns: nothing recorded.
    let recorded = rng.u8(..100) >= 3;
    let (ip_address, user_agent, last_seen_at) = if recorded {
        // Seen again after the last write (a renewal), never after it expired.
        let seen_until = now.min(expires_at).max(updated_at);
        #[allow(clippy::cast_possible_truncation)]
        let since_write =
            Duration::seconds((rng.f64() * (seen_until - updated_at).num_seconds() as f64) as i64);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let agent = USER_AGENTS
            .get((rng.f64().powi(2) * USER_AGENTS.len() as f64) as usize)
            .map(|agent| (*agent).to_owned());
        (Some(fake_ip(rng)), agent, Some(updated_at + since_write))
    } else {
        (None, None, None)
    };
    Session {
        id,
        user_id: user,
        data,
        expires_at,
        created_at,
        updated_at,
        version: i64::from(rng.u8(1..12)),
        ip_address,
        user_agent,
        last_seen_at,
        timeout_seconds: remembered.then(|| ttl.num_seconds()),
    }
}

/// `count` fake sessions at `now`, drawn from `rng` (ids included: the same
/// generator state gives the same sessions).
#[must_use]
pub fn fake_sessions(rng: &mut fastrand::Rng, now: DateTime<Utc>, count: usize) -> Vec<Session> {
    let users = (count as u64 / 6).max(1);
    (0..count)
        .filter_map(|_| {
            let id = seeded_token(rng)?.public_id();
            Some(fake_session(rng, id, now, users, false))
        })
        .collect()
}

/// Inserts `count` fake sessions in chunks of [`CHUNK`], calling `progress` with
/// the running total after each chunk. Ids are public ids of tokens, as the
/// app makes them: of real random tokens (thrown away), or, with `seed`, of
/// tokens drawn from the seeded generator, so that the data is reproducible
/// (ids included: seeding one database twice with the same seed fails on the
/// ids).
///
/// # Warning
///
/// With `seed`, anyone who knows the seed can recompute the sessions'
/// cookies: never seed a database an app serves that way.
///
/// With `all_expired`, every session has already expired (for purge benchmarks).
///
/// # Errors
///
/// Database errors; no randomness for a token; chunks inserted before the
/// error stay inserted.
pub fn seed(
    manager: &SessionManager,
    count: u64,
    seed: Option<u64>,
    all_expired: bool,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let (mut rng, ids) = match seed {
        Some(seed) => (fastrand::Rng::with_seed(seed), Ids::Seeded),
        None => (fastrand::Rng::new(), Ids::Random),
    };
    let now = manager.now();
    let users = (count / 6).max(1);
    let mut inserted = 0u64;
    while inserted < count {
        let chunk = usize::try_from(count - inserted).map_or(CHUNK, |left| left.min(CHUNK));
        let mut rows: Vec<Session> = Vec::with_capacity(chunk);
        for _ in 0..chunk {
            if let Some(id) = next_id(&mut rng, ids)? {
                rows.push(fake_session(&mut rng, id, now, users, all_expired));
            }
        }
        if rows.is_empty() {
            // Only if tokens could not be made: stop rather than spin.
            break;
        }
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
    fn fake_sessions_have_devices_from_documentation_ranges() {
        let now = Utc::now();
        let sessions = fake_sessions(&mut fastrand::Rng::with_seed(3), now, 1000);
        let ips: Vec<&str> = sessions
            .iter()
            .filter_map(|s| s.ip_address.as_deref())
            .collect();
        assert!(ips.len() > 900, "{} with an IP", ips.len());
        assert!(ips.iter().all(|ip| ip.starts_with("203.0.113.")
            || ip.starts_with("198.51.100.")
            || ip.starts_with("192.0.2.")
            || ip.starts_with("2001:db8::")));
        assert!(ips.iter().any(|ip| ip.contains(':')) && ips.iter().any(|ip| !ip.contains(':')));
        assert!(ips.iter().all(|ip| ip.parse::<std::net::IpAddr>().is_ok()));
        let agents: std::collections::HashSet<_> = sessions
            .iter()
            .filter_map(|s| s.user_agent.as_deref())
            .collect();
        assert!(agents.len() >= 5, "{} user agents", agents.len());
        let remembered = sessions
            .iter()
            .filter(|s| s.timeout_seconds.is_some())
            .count();
        assert!(
            remembered > 50 && remembered < 300,
            "{remembered} remembered"
        );
        assert!(sessions
            .iter()
            .all(|s| s.timeout_seconds.is_none() || s.user_id.is_some()));
        assert!(sessions.iter().all(|s| s
            .last_seen_at
            .is_none_or(|seen| seen >= s.updated_at && seen <= now)));
    }

    #[test]
    fn seeded_tokens_are_tokens_and_give_distinct_ids() {
        let mut rng = fastrand::Rng::with_seed(9);
        let ids: std::collections::HashSet<SessionId> = (0..2000)
            .map(|_| seeded_token(&mut rng).unwrap().public_id())
            .collect();
        assert_eq!(ids.len(), 2000);
    }

    #[test]
    fn the_same_seed_gives_the_same_sessions() {
        let now = Utc::now();
        let a = fake_sessions(&mut fastrand::Rng::with_seed(1), now, 10);
        let b = fake_sessions(&mut fastrand::Rng::with_seed(1), now, 10);
        assert_eq!(a, b);
    }
}
