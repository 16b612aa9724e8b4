//! The `session` configuration section.

use std::time::Duration;

use rocket::figment::Figment;
use rocket::serde::{Deserialize, Serialize};

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "rocket::serde", rename_all = "lowercase")]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Also sent on top-level navigations from other sites (the default).
    Lax,
    /// Sent with every request; requires `cookie_secure = true`.
    None,
}

/// The fairing's configuration: the `session` section of Rocket's figment
/// (`[default.session]` in `Rocket.toml`, or `ROCKET_SESSION={...}`), or a value
/// built in code and given to [`Sessions::custom`](crate::Sessions::custom).
///
/// Every field but `timeout_minutes` has a default, listed with it; build one in
/// code with struct update syntax:
///
/// ```rust
/// use session_fairing::{Config, Sessions};
///
/// let config = Config {
///     timeout_minutes: Some(30),
///     database_url: Some("sessions.sqlite".into()),
///     ..Config::default()
/// };
/// let rocket = rocket::build().attach(Sessions::custom(config));
/// ```
///
/// Launch validates it and fails with a message naming the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "rocket::serde", default, deny_unknown_fields)]
pub struct Config {
    /// Idle timeout in minutes: a session nobody uses for this long expires.
    /// Positive, at most ten years.
    ///
    /// _Default:_ none. **Required**: launch fails without it.
    pub timeout_minutes: Option<i64>,
    /// Cookie name. A name starting with `__Host-` makes browsers refuse the
    /// cookie unless it is `Secure`, has `Path=/` and no `Domain`: a sibling
    /// subdomain then cannot plant ("toss") a session cookie on this host.
    /// Launch checks those rules (and `Secure` for `__Secure-`).
    ///
    /// _Default:_ `"session_id"`.
    pub cookie_name: String,
    /// The name of a `databases.<name>` section of Rocket's figment (the one
    /// `rocket_db_pools` and `rocket_sync_db_pools` read) to take the database
    /// URL from, with its pool size (`max_connections` or `pool_size`) and
    /// connect timeout (`connect_timeout` or `timeout`, seconds) unless
    /// `pool_size` / `pool_timeout_seconds` are set here. The sessions get their
    /// own pool on that database. Setting both this and `database_url` is a
    /// launch error.
    ///
    /// _Default:_ none.
    pub database: Option<String>,
    /// Database URL: an SQLite path, `postgres://…` or `mysql://…`.
    ///
    /// _Default:_ none; without it and without `database`, `"db.sqlite"`.
    pub database_url: Option<String>,
    /// Hard cap in minutes from a session's creation, whatever the activity.
    ///
    /// _Default:_ none.
    pub absolute_timeout_minutes: Option<i64>,
    /// A request that changes nothing renews `expires_at` only when the last
    /// renewal is older than this; `0` renews on every request.
    ///
    /// _Default:_ `min(60, timeout_minutes * 60 / 10)`.
    pub renew_interval_seconds: Option<i64>,
    /// The cookie's `Secure` attribute.
    ///
    /// _Default:_ `true`, except `false` under Rocket's `debug` profile.
    pub cookie_secure: Option<bool>,
    /// The cookie's `SameSite` attribute: `strict`, `lax` or `none` (`none`
    /// needs `cookie_secure`).
    ///
    /// _Default:_ `lax`.
    pub cookie_same_site: SameSite,
    /// The cookie's `HttpOnly` attribute.
    ///
    /// _Default:_ `true`.
    pub cookie_http_only: bool,
    /// The cookie's `Path` attribute.
    ///
    /// _Default:_ `"/"`.
    pub cookie_path: String,
    /// The cookie's `Domain` attribute.
    ///
    /// _Default:_ none (a host-only cookie).
    pub cookie_domain: Option<String>,
    /// `true` adds `Max-Age` (the time left until expiry) so every cookie
    /// survives a browser restart; remembered sessions get it anyway.
    ///
    /// _Default:_ `false` (browser-session cookies).
    pub cookie_persistent: bool,
    /// Largest session data, as compact JSON, in bytes; a bigger write is
    /// refused with `413` and nothing is stored.
    ///
    /// _Default:_ `65536`.
    pub max_data_bytes: usize,
    /// Seconds between background purges of expired rows; `0` turns purging off.
    ///
    /// _Default:_ `300`.
    pub purge_interval_seconds: u64,
    /// Run pending migrations of the `sessions` tables at launch. With `false`,
    /// launch checks the `sessions` table's shape instead and fails naming what
    /// is missing.
    ///
    /// _Default:_ `true`.
    pub run_migrations: bool,
    /// Database pool size.
    ///
    /// _Default:_ the `databases.<name>` section's, else Rocket's `workers` × 2.
    pub pool_size: Option<u32>,
    /// Seconds a request waits for a database connection before it gets `503`.
    ///
    /// _Default:_ the `databases.<name>` section's, else `5`.
    pub pool_timeout_seconds: Option<u64>,
    /// PostgreSQL only: whether a session write's commit waits for the disk.
    /// `false` runs the pool's connections with `synchronous_commit = off`:
    /// commits return before the flush, which the server does within about
    /// 600 ms (`3 × wal_writer_delay`), so concurrent writes share fsyncs and
    /// each write waits for none.
    ///
    /// _Default:_ `true`.
    ///
    /// # Warning
    ///
    /// With `false`, a crash of the database server loses the writes through
    /// the session pool of its last fraction of a second that the app had
    /// already answered: a login, a cart change, also a logout or a
    /// revocation (that session is valid again), and writes to the app's own
    /// tables made through the pool (`with_connection!`). The database stays consistent; an app crash loses
    /// nothing. No effect on SQLite (WAL with `synchronous = NORMAL` already)
    /// or MySQL (its equivalent is a server-wide setting); launch warns.
    pub durable_commits: bool,
    /// Origins besides the app's own (`https://admin.example.com`) whose
    /// state-changing requests our guards accept. A `POST`, `PUT`, `PATCH` or
    /// `DELETE` whose `Origin` names another origin, or whose `Sec-Fetch-Site`
    /// is `cross-site`, is refused with `403`.
    ///
    /// _Default:_ none.
    pub trusted_origins: Vec<String>,
    /// Record each session's client IP address (Rocket's `client_ip()`, which
    /// honours its `ip_header` setting) and `User-Agent` (first 512 bytes), for
    /// the devices list and the audit log; `false` stores neither, for
    /// deployments that must not keep IP addresses.
    ///
    /// _Default:_ `true`.
    ///
    /// # Warning
    ///
    /// Rocket's default `ip_header` is `X-Real-IP`: unless a proxy in front
    /// overwrites it, a client chooses the address stored. Without such a
    /// proxy, set Rocket's `ip_header = false`.
    pub record_client: bool,
    /// The longest a handler may [`remember`](crate::Session::remember) a
    /// session, in days (1 to 3650).
    ///
    /// _Default:_ `30`.
    pub remember_max_days: u32,
    /// The most valid sessions one user may have; a login beyond it signs out
    /// that user's least recently seen sessions.
    ///
    /// _Default:_ none (no cap).
    pub max_sessions_per_user: Option<u32>,
    /// Write a `session_events` row for each lifecycle change (created, login,
    /// rotated, logout, revoked, revoked_others, expired) in the change's own
    /// transaction.
    ///
    /// _Default:_ `false`.
    pub audit: bool,
    /// Days audit events are kept; the background purge deletes older ones
    /// (1 to 36500).
    ///
    /// _Default:_ `90`.
    pub audit_retention_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timeout_minutes: None,
            cookie_name: "session_id".into(),
            database: None,
            database_url: None,
            absolute_timeout_minutes: None,
            renew_interval_seconds: None,
            cookie_secure: None,
            cookie_same_site: SameSite::Lax,
            cookie_http_only: true,
            cookie_path: "/".into(),
            cookie_domain: None,
            cookie_persistent: false,
            max_data_bytes: shared_model::DEFAULT_MAX_DATA_BYTES,
            purge_interval_seconds: 300,
            run_migrations: true,
            pool_size: None,
            pool_timeout_seconds: None,
            durable_commits: true,
            trusted_origins: Vec::new(),
            record_client: true,
            remember_max_days: 30,
            max_sessions_per_user: None,
            audit: false,
            audit_retention_days: 90,
        }
    }
}

/// The SQLite file used when neither `database` nor `database_url` is set.
const DEFAULT_DATABASE_URL: &str = "db.sqlite";
/// Seconds a request waits for a pooled connection unless configured.
const DEFAULT_POOL_TIMEOUT_SECONDS: u64 = 5;

/// The keys of a `databases.<name>` section that the sessions' pool uses; the
/// rest (extensions, idle timeouts) belong to the app's own pool.
#[derive(Debug, Deserialize)]
#[serde(crate = "rocket::serde")]
struct NamedDatabase {
    url: String,
    /// `rocket_db_pools`.
    max_connections: Option<u64>,
    /// `rocket_sync_db_pools`.
    pool_size: Option<u64>,
    /// `rocket_db_pools`, seconds.
    connect_timeout: Option<u64>,
    /// `rocket_sync_db_pools`, seconds.
    timeout: Option<u64>,
}

/// The validated configuration the fairing runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub timeout: chrono::Duration,
    pub absolute_timeout: Option<chrono::Duration>,
    pub renew_interval: chrono::Duration,
    pub cookie_name: String,
    pub database_url: String,
    pub cookie_secure: bool,
    pub cookie_same_site: SameSite,
    pub cookie_http_only: bool,
    pub cookie_path: String,
    pub cookie_domain: Option<String>,
    pub cookie_persistent: bool,
    pub max_data_bytes: usize,
    /// Background purge period, if enabled.
    pub purge_interval: Option<Duration>,
    pub run_migrations: bool,
    pub pool_size: u32,
    pub pool_timeout: Duration,
    pub durable_commits: bool,
    /// As `scheme://host[:port]`, lowercase.
    pub trusted_origins: Vec<String>,
    pub record_client: bool,
    /// The longest idle timeout `remember` may give a session.
    pub remember_max: chrono::Duration,
    pub max_sessions_per_user: Option<u32>,
    pub audit: bool,
    pub audit_retention: chrono::Duration,
}

/// A configuration problem; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The section could not be read (wrong types, unknown keys).
    #[error("invalid `session` configuration: {0}")]
    Figment(#[from] Box<rocket::figment::Error>),
    /// A value is present but not acceptable.
    #[error("`session.{key}` {problem}")]
    Invalid {
        /// The key under `session`.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl Config {
    /// The `session` section of a Rocket figment (every key but
    /// `timeout_minutes` may be left out).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Figment`] for an unknown key or a wrong type.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        if figment.contains("session") {
            Ok(figment.extract_inner("session").map_err(Box::new)?)
        } else {
            Ok(Self::default())
        }
    }
}

impl Settings {
    /// Reads and validates the `session` section of `figment`.
    #[cfg(test)]
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        Self::resolve(Config::from_figment(figment)?, figment)
    }

    /// Validates `config`, reading what it leaves to Rocket from `figment`: the
    /// profile (for `cookie_secure`), `workers` (for the pool size) and the
    /// `databases.<name>` section named by `database`.
    pub fn resolve(config: Config, figment: &Figment) -> Result<Self, ConfigError> {
        let release = figment.profile() != rocket::Config::DEBUG_PROFILE;
        let workers = figment
            .extract_inner::<u32>(rocket::Config::WORKERS)
            .unwrap_or(rocket::Config::default().workers as u32);
        let named =
            match (&config.database, &config.database_url) {
                (Some(_), Some(_)) => return Err(invalid(
                    "database",
                    "and `session.database_url` are both set: name a `databases.<name>` section \
                     or give a URL, not both",
                )),
                (Some(name), None) => Some(named_database(figment, name)?),
                (None, _) => None,
            };
        Self::from_config(config, named, release, workers)
    }

    fn from_config(
        config: Config,
        named: Option<NamedDatabase>,
        release: bool,
        workers: u32,
    ) -> Result<Self, ConfigError> {
        /// Ten years: longer idle or absolute timeouts are surely a typo.
        const MAX_MINUTES: i64 = 10 * 365 * 24 * 60;
        let minutes = |key: &'static str, value: i64| -> Result<chrono::Duration, ConfigError> {
            if value <= 0 || value > MAX_MINUTES {
                return Err(invalid(
                    key,
                    format!(
                        "must be a positive number of minutes (at most ten years, {MAX_MINUTES}), found {value}"
                    ),
                ));
            }
            Ok(chrono::Duration::minutes(value))
        };
        let timeout = match config.timeout_minutes {
            Some(value) => minutes("timeout_minutes", value)?,
            None => {
                return Err(invalid(
                    "timeout_minutes",
                    "is required: the idle timeout in minutes, e.g. `[default.session] \
                     timeout_minutes = 30` in Rocket.toml or ROCKET_SESSION={timeout_minutes=30}",
                ))
            }
        };
        let absolute_timeout = config
            .absolute_timeout_minutes
            .map(|value| minutes("absolute_timeout_minutes", value))
            .transpose()?;
        let renew_interval = match config.renew_interval_seconds {
            None => chrono::Duration::seconds(60.min(timeout.num_seconds() / 10)),
            Some(seconds) => chrono::Duration::try_seconds(seconds)
                .filter(|interval| *interval >= chrono::Duration::zero() && *interval < timeout)
                .ok_or_else(|| {
                    invalid(
                        "renew_interval_seconds",
                        format!(
                            "must be 0 or more seconds and less than the idle timeout ({} s), found {seconds}",
                            timeout.num_seconds()
                        ),
                    )
                })?,
        };
        let valid_name = !config.cookie_name.is_empty()
            && config
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid_name {
            return Err(ConfigError::Invalid {
                key: "cookie_name",
                problem: format!(
                    "must be a non-empty cookie token (letters, digits, `-`, `_`, ...), found {:?}",
                    config.cookie_name
                ),
            });
        }
        if !config.cookie_path.starts_with('/') || config.cookie_path.contains(';') {
            return Err(ConfigError::Invalid {
                key: "cookie_path",
                problem: format!(
                    "must start with `/` and contain no `;`, found {:?}",
                    config.cookie_path
                ),
            });
        }
        if let Some(domain) = &config.cookie_domain {
            if domain.is_empty() || domain.contains([';', ' ', ',']) {
                return Err(ConfigError::Invalid {
                    key: "cookie_domain",
                    problem: format!("is not a domain name: {domain:?}"),
                });
            }
        }
        let cookie_secure = config.cookie_secure.unwrap_or(release);
        if config.cookie_same_site == SameSite::None && !cookie_secure {
            return Err(invalid(
                "cookie_same_site",
                "= \"none\" requires `cookie_secure = true` (browsers drop insecure SameSite=None cookies)",
            ));
        }
        check_cookie_prefix(&config, cookie_secure)?;
        if config.max_data_bytes < 2 {
            return Err(invalid(
                "max_data_bytes",
                format!(
                    "must hold at least `{{}}` (2 bytes), found {}",
                    config.max_data_bytes
                ),
            ));
        }
        let named_pool_size = named
            .as_ref()
            .and_then(|named| named.max_connections.or(named.pool_size));
        let pool_size = match (config.pool_size, named_pool_size) {
            (Some(size), _) => u64::from(size),
            (None, Some(size)) => size,
            (None, None) => u64::from(workers.saturating_mul(2).max(2)),
        };
        bounded("pool_size", pool_size, 1, 10_000)?;
        let pool_timeout_seconds = config
            .pool_timeout_seconds
            .or_else(|| {
                named
                    .as_ref()
                    .and_then(|named| named.connect_timeout.or(named.timeout))
            })
            .unwrap_or(DEFAULT_POOL_TIMEOUT_SECONDS);
        bounded("pool_timeout_seconds", pool_timeout_seconds, 1, 3_600)?;
        bounded(
            "purge_interval_seconds",
            config.purge_interval_seconds,
            0,
            366 * 24 * 3_600,
        )?;
        bounded(
            "remember_max_days",
            u64::from(config.remember_max_days),
            1,
            3_650,
        )?;
        if let Some(cap) = config.max_sessions_per_user {
            bounded("max_sessions_per_user", u64::from(cap), 1, 1_000_000)?;
        }
        bounded(
            "audit_retention_days",
            u64::from(config.audit_retention_days),
            1,
            36_500,
        )?;
        let trusted_origins = config
            .trusted_origins
            .iter()
            .map(|origin| {
                crate::csrf::normalize_origin(origin).ok_or_else(|| {
                    invalid(
                        "trusted_origins",
                        format!("must list origins such as \"https://app.example.com\" (scheme, host, optional port, no path), found {origin:?}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            timeout,
            absolute_timeout,
            renew_interval,
            cookie_name: config.cookie_name,
            database_url: match named {
                Some(named) => named.url,
                None => config
                    .database_url
                    .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            },
            cookie_secure,
            cookie_same_site: config.cookie_same_site,
            cookie_http_only: config.cookie_http_only,
            cookie_path: config.cookie_path,
            cookie_domain: config.cookie_domain,
            cookie_persistent: config.cookie_persistent,
            max_data_bytes: config.max_data_bytes,
            purge_interval: (config.purge_interval_seconds > 0)
                .then(|| Duration::from_secs(config.purge_interval_seconds)),
            run_migrations: config.run_migrations,
            // Checked against 1..=10_000 above.
            pool_size: u32::try_from(pool_size).unwrap_or(u32::MAX),
            pool_timeout: Duration::from_secs(pool_timeout_seconds),
            durable_commits: config.durable_commits,
            trusted_origins,
            record_client: config.record_client,
            remember_max: chrono::Duration::days(i64::from(config.remember_max_days)),
            max_sessions_per_user: config.max_sessions_per_user,
            audit: config.audit,
            audit_retention: chrono::Duration::days(i64::from(config.audit_retention_days)),
        })
    }
}

/// The `databases.<name>` section `name` refers to, its URL in our form.
fn named_database(figment: &Figment, name: &str) -> Result<NamedDatabase, ConfigError> {
    let path = format!("databases.{name}");
    let valid_name = !name.is_empty() && !name.contains('.');
    if !valid_name || !figment.contains(&path) {
        return Err(invalid(
            "database",
            format!(
                "= {name:?} names no `{path}` section in Rocket's configuration \
                 (`[default.databases.{name}] url = \"...\"` in Rocket.toml)"
            ),
        ));
    }
    let mut named: NamedDatabase = figment.extract_inner(&path).map_err(|error| {
        // Not the error's text: it quotes the offending value, which may be a
        // URL with a password.
        let what = match &error.kind {
            rocket::figment::error::Kind::MissingField(field) => format!("`{field}` is missing"),
            rocket::figment::error::Kind::InvalidType(_, expected) => {
                format!("a value is not {expected}")
            }
            _ => "a value is invalid".to_owned(),
        };
        invalid("database", format!("= {name:?}: in `{path}`, {what}"))
    })?;
    named.url = sqlite_url_of(&named.url)
        .map_err(|problem| invalid("database", format!("= {name:?}: `{path}.url` {problem}")))?;
    for (key, value) in [
        ("max_connections", named.max_connections),
        ("pool_size", named.pool_size),
    ] {
        if let Some(size) = value.filter(|size| !(1..=10_000).contains(size)) {
            return Err(invalid(
                "database",
                format!("= {name:?}: `{path}.{key}` must be between 1 and 10000, found {size}"),
            ));
        }
    }
    Ok(named)
}

/// `rocket_db_pools` (sqlx) writes SQLite URLs as `sqlite:path` or
/// `sqlite://path?mode=rwc`, which our URLs would read as a file literally
/// named so. The path alone (or, with parameters, an SQLite `file:` URI);
/// other URLs unchanged.
fn sqlite_url_of(url: &str) -> Result<String, String> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Ok(url.to_owned());
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.is_empty() {
        return Err(format!("names no SQLite file: {url:?}"));
    }
    Ok(if path.contains('?') {
        format!("file:{path}")
    } else {
        path.to_owned()
    })
}

fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem: problem.into(),
    }
}

/// `value` within `min..=max`, or an error naming `key`.
fn bounded(key: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("must be between {min} and {max}, found {value}"),
        ))
    }
}

/// Browsers drop `__Host-` and `__Secure-` cookies that break the prefix's
/// rules, silently; refuse such a configuration at launch instead.
fn check_cookie_prefix(config: &Config, cookie_secure: bool) -> Result<(), ConfigError> {
    // Browsers match the prefixes regardless of case.
    let name = config.cookie_name.as_str();
    let lower = name.to_ascii_lowercase();
    let prefix = if lower.starts_with("__host-") {
        "__Host-"
    } else if lower.starts_with("__secure-") {
        "__Secure-"
    } else {
        return Ok(());
    };
    if !cookie_secure {
        return Err(invalid(
            "cookie_secure",
            format!("must be true for a `{prefix}` cookie name ({name:?}): browsers drop such cookies without `Secure`"),
        ));
    }
    if prefix == "__Host-" {
        if config.cookie_path != "/" {
            return Err(invalid(
                "cookie_path",
                format!(
                    "must be \"/\" for a `__Host-` cookie name ({name:?}), found {:?}",
                    config.cookie_path
                ),
            ));
        }
        if config.cookie_domain.is_some() {
            return Err(invalid(
                "cookie_domain",
                format!("must not be set for a `__Host-` cookie name ({name:?}): the cookie stays on this host"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::figment::providers::Serialized;
    use serde_json::json;

    fn settings(section: serde_json::Value) -> Result<Settings, ConfigError> {
        let figment = rocket::Config::figment().merge(Serialized::default("session", section));
        Settings::from_figment(&figment)
    }

    #[test]
    fn defaults_follow_the_documented_table() {
        let s = settings(serde_json::json!({"timeout_minutes": 30})).unwrap();
        assert_eq!(s.timeout, chrono::Duration::minutes(30));
        assert_eq!(s.cookie_name, "session_id");
        assert_eq!(s.database_url, "db.sqlite");
        assert_eq!(s.absolute_timeout, None);
        assert_eq!(s.renew_interval, chrono::Duration::seconds(60));
        assert!(!s.cookie_secure, "tests run under the debug profile");
        assert_eq!(s.cookie_same_site, SameSite::Lax);
        assert!(s.cookie_http_only);
        assert_eq!(s.cookie_path, "/");
        assert_eq!(s.cookie_domain, None);
        assert!(!s.cookie_persistent);
        assert_eq!(s.max_data_bytes, 65536);
        assert_eq!(s.purge_interval, Some(Duration::from_secs(300)));
        assert!(s.run_migrations);
        assert_eq!(s.pool_size, rocket::Config::default().workers as u32 * 2);
    }

    #[test]
    fn config_default_is_the_documented_table() {
        let c = Config::default();
        assert_eq!(c.timeout_minutes, None, "required, no default");
        assert_eq!(c.cookie_name, "session_id");
        assert_eq!(
            (c.database.as_deref(), c.database_url.as_deref()),
            (None, None)
        );
        assert_eq!(
            (c.absolute_timeout_minutes, c.renew_interval_seconds),
            (None, None)
        );
        assert_eq!(c.cookie_secure, None);
        assert_eq!(c.cookie_same_site, SameSite::Lax);
        assert!(c.cookie_http_only);
        assert_eq!(
            (c.cookie_path.as_str(), c.cookie_domain.as_deref()),
            ("/", None)
        );
        assert!(!c.cookie_persistent);
        assert_eq!(c.max_data_bytes, 65_536);
        assert_eq!(c.purge_interval_seconds, 300);
        assert!(c.run_migrations);
        assert_eq!((c.pool_size, c.pool_timeout_seconds), (None, None));
        assert!(c.durable_commits);
        assert!(c.trusted_origins.is_empty());
        assert!(c.record_client);
        assert_eq!(c.remember_max_days, 30);
        assert_eq!(c.max_sessions_per_user, None);
        assert!(!c.audit);
        assert_eq!(c.audit_retention_days, 90);
        // A value built in code resolves as the same section read from a figment.
        let custom = Config {
            timeout_minutes: Some(30),
            cookie_name: "sid".into(),
            ..Config::default()
        };
        assert_eq!(
            Settings::resolve(custom, &rocket::Config::figment()).unwrap(),
            settings(json!({"timeout_minutes": 30, "cookie_name": "sid"})).unwrap()
        );
    }

    fn with_databases(session: serde_json::Value, databases: serde_json::Value) -> Figment {
        rocket::Config::figment()
            .merge(Serialized::default("session", session))
            .merge(Serialized::default("databases", databases))
    }

    #[test]
    fn database_names_a_databases_section() {
        let figment = with_databases(
            json!({"timeout_minutes": 30, "database": "main"}),
            json!({"main": {"url": "postgres://db/app", "max_connections": 7, "connect_timeout": 9, "min_connections": 1}}),
        );
        let s = Settings::from_figment(&figment).unwrap();
        assert_eq!(s.database_url, "postgres://db/app");
        assert_eq!(s.pool_size, 7);
        assert_eq!(s.pool_timeout, Duration::from_secs(9));
        // rocket_sync_db_pools' keys, and the session section's own values winning.
        let figment = with_databases(
            json!({"timeout_minutes": 30, "database": "main", "pool_timeout_seconds": 2}),
            json!({"main": {"url": "app.sqlite", "pool_size": 3, "timeout": 8}}),
        );
        let s = Settings::from_figment(&figment).unwrap();
        assert_eq!(
            (s.database_url.as_str(), s.pool_size, s.pool_timeout),
            ("app.sqlite", 3, Duration::from_secs(2))
        );
        // rocket_db_pools' SQLite URL forms name the same file as ours.
        for (theirs, ours) in [
            ("sqlite:app.db", "app.db"),
            ("sqlite://app.db", "app.db"),
            ("sqlite:///srv/app.db", "/srv/app.db"),
            ("sqlite://app.db?mode=rwc", "file:app.db?mode=rwc"),
            ("postgres://db/app", "postgres://db/app"),
        ] {
            let figment = with_databases(
                json!({"timeout_minutes": 30, "database": "main"}),
                json!({"main": {"url": theirs}}),
            );
            assert_eq!(
                Settings::from_figment(&figment).unwrap().database_url,
                ours,
                "{theirs}"
            );
        }
    }

    #[test]
    fn named_database_errors_never_quote_values() {
        let figment = with_databases(
            json!({"timeout_minutes": 30, "database": "main"}),
            json!({"main": {"url": "postgres://app:hunter2@db/app", "max_connections": "postgres://app:hunter2@db/app"}}),
        );
        let error = Settings::from_figment(&figment).unwrap_err().to_string();
        assert!(error.contains("databases.main"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let figment = with_databases(
            json!({"timeout_minutes": 30, "database": "main"}),
            json!({"main": {"url": "app.sqlite", "max_connections": 0}}),
        );
        let error = Settings::from_figment(&figment).unwrap_err().to_string();
        assert!(error.contains("databases.main.max_connections"), "{error}");
    }

    #[test]
    fn database_and_database_url_conflict_or_dangle() {
        let both = with_databases(
            json!({"timeout_minutes": 30, "database": "main", "database_url": "x.sqlite"}),
            json!({"main": {"url": "app.sqlite"}}),
        );
        let error = Settings::from_figment(&both).unwrap_err().to_string();
        assert!(
            error.contains("`session.database`") && error.contains("database_url"),
            "{error}"
        );
        let missing = with_databases(
            json!({"timeout_minutes": 30, "database": "other"}),
            json!({"main": {"url": "app.sqlite"}}),
        );
        let error = Settings::from_figment(&missing).unwrap_err().to_string();
        assert!(error.contains("databases.other"), "{error}");
        let no_url = with_databases(
            json!({"timeout_minutes": 30, "database": "main"}),
            json!({"main": {"pool_size": 3}}),
        );
        let error = Settings::from_figment(&no_url).unwrap_err().to_string();
        assert!(
            error.contains("databases.main") && error.contains("url"),
            "{error}"
        );
        // A dotted name would reach into a nested table; it is refused.
        let dotted = with_databases(
            json!({"timeout_minutes": 30, "database": "main.replica"}),
            json!({"main": {"replica": {"url": "app.sqlite"}}}),
        );
        let error = Settings::from_figment(&dotted).unwrap_err().to_string();
        assert!(error.contains("names no"), "{error}");
    }

    #[test]
    fn short_timeouts_renew_at_a_tenth() {
        let s = settings(serde_json::json!({"timeout_minutes": 5})).unwrap();
        assert_eq!(s.renew_interval, chrono::Duration::seconds(30));
    }

    #[test]
    fn release_profile_defaults_to_secure_cookies() {
        let figment = rocket::Config::figment()
            .select(rocket::Config::RELEASE_PROFILE)
            .merge(Serialized::default(
                "session",
                serde_json::json!({"timeout_minutes": 1}),
            ));
        assert!(Settings::from_figment(&figment).unwrap().cookie_secure);
    }

    #[test]
    fn errors_name_the_key() {
        let missing = settings(serde_json::json!({"cookie_name": "sid"})).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("session.timeout_minutes` is required"),
            "{missing}"
        );
        let no_section = Settings::from_figment(&rocket::Config::figment()).unwrap_err();
        assert!(
            no_section.to_string().contains("timeout_minutes"),
            "{no_section}"
        );
        for bad in [serde_json::json!(0), serde_json::json!(-5)] {
            let error = settings(serde_json::json!({"timeout_minutes": bad})).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("`session.timeout_minutes` must be a positive"),
                "{error}"
            );
        }
        let text = settings(serde_json::json!({"timeout_minutes": "soon"})).unwrap_err();
        assert!(text.to_string().contains("timeout_minutes"), "{text}");
        let unknown =
            settings(serde_json::json!({"timeout_minutes": 1, "cookie_nmae": "x"})).unwrap_err();
        assert!(unknown.to_string().contains("cookie_nmae"), "{unknown}");
        let none = settings(serde_json::json!({"timeout_minutes": 1, "cookie_same_site": "none"}))
            .unwrap_err();
        assert!(none.to_string().contains("cookie_secure"), "{none}");
        let name =
            settings(serde_json::json!({"timeout_minutes": 1, "cookie_name": "a b"})).unwrap_err();
        assert!(name.to_string().contains("cookie_name"), "{name}");
    }

    fn problem(section: serde_json::Value) -> String {
        settings(section).unwrap_err().to_string()
    }

    #[test]
    fn absurd_numbers_fail_naming_the_key_without_panicking() {
        for (section, key) in [
            (
                serde_json::json!({"timeout_minutes": 1_000_000_000_000_000i64}),
                "timeout_minutes",
            ),
            (
                serde_json::json!({"timeout_minutes": 30, "absolute_timeout_minutes": i64::MAX}),
                "absolute_timeout_minutes",
            ),
            (
                serde_json::json!({"timeout_minutes": 30, "renew_interval_seconds": i64::MAX}),
                "renew_interval_seconds",
            ),
            (
                serde_json::json!({"timeout_minutes": 30, "renew_interval_seconds": -1}),
                "renew_interval_seconds",
            ),
            (
                serde_json::json!({"timeout_minutes": 30, "pool_timeout_seconds": u64::MAX}),
                "pool_timeout_seconds",
            ),
            (
                serde_json::json!({"timeout_minutes": 30, "pool_timeout_seconds": 0}),
                "pool_timeout_seconds",
            ),
            (
                serde_json::json!({"timeout_minutes": 30, "purge_interval_seconds": u64::MAX}),
                "purge_interval_seconds",
            ),
            (
                serde_json::json!({"timeout_minutes": 30, "pool_size": 0}),
                "pool_size",
            ),
            (
                serde_json::json!({"timeout_minutes": 30, "trusted_origins": ["example.com"]}),
                "trusted_origins",
            ),
        ] {
            let problem = problem(section.clone());
            assert!(
                problem.contains(&format!("`session.{key}`")),
                "{section}: {problem}"
            );
        }
    }

    #[test]
    fn the_renew_interval_is_shorter_than_the_timeout() {
        let error =
            problem(serde_json::json!({"timeout_minutes": 1, "renew_interval_seconds": 60}));
        assert!(
            error.contains("`session.renew_interval_seconds`") && error.contains("60 s"),
            "{error}"
        );
        let fine =
            settings(serde_json::json!({"timeout_minutes": 1, "renew_interval_seconds": 59}))
                .unwrap();
        assert_eq!(fine.renew_interval, chrono::Duration::seconds(59));
    }

    #[test]
    fn cookie_prefixes_are_checked_at_launch() {
        let host = |extra: serde_json::Value| {
            let mut section =
                serde_json::json!({"timeout_minutes": 30, "cookie_name": "__Host-sid"});
            if let (Some(section), serde_json::Value::Object(extra)) =
                (section.as_object_mut(), extra)
            {
                section.extend(extra);
            }
            section
        };
        let insecure = problem(host(serde_json::json!({})));
        assert!(
            insecure.contains("`session.cookie_secure`") && insecure.contains("__Host-"),
            "{insecure}"
        );
        let path = problem(host(
            serde_json::json!({"cookie_secure": true, "cookie_path": "/app"}),
        ));
        assert!(
            path.contains("`session.cookie_path`") && path.contains("__Host-"),
            "{path}"
        );
        let domain = problem(host(
            serde_json::json!({"cookie_secure": true, "cookie_domain": "example.com"}),
        ));
        assert!(
            domain.contains("`session.cookie_domain`") && domain.contains("__Host-"),
            "{domain}"
        );
        assert!(settings(host(serde_json::json!({"cookie_secure": true}))).is_ok());
        let secure =
            problem(serde_json::json!({"timeout_minutes": 30, "cookie_name": "__Secure-sid"}));
        assert!(
            secure.contains("`session.cookie_secure`") && secure.contains("__Secure-"),
            "{secure}"
        );
        assert!(settings(serde_json::json!({
            "timeout_minutes": 30, "cookie_name": "__Secure-sid", "cookie_secure": true, "cookie_path": "/app"
        }))
        .is_ok());
    }
}
