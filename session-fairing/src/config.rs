//! The `session` configuration section.

use std::time::Duration;

use rocket::figment::Figment;
use rocket::serde::Deserialize;

/// The `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(crate = "rocket::serde", rename_all = "lowercase")]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Also sent on top-level navigations from other sites (the default).
    Lax,
    /// Sent with every request; requires `cookie_secure = true`.
    None,
}

/// The `[default.session]` section of `Rocket.toml` (or `ROCKET_SESSION={...}`),
/// as written. [`Settings`] is the validated form the fairing uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(crate = "rocket::serde", deny_unknown_fields)]
pub struct Config {
    /// Idle timeout in minutes. **Required**, positive.
    pub timeout_minutes: Option<i64>,
    /// Cookie name. Default `session_id`. A name starting with `__Host-` makes
    /// browsers refuse the cookie unless it is `Secure`, has `Path=/` and no
    /// `Domain`: a sibling subdomain then cannot plant ("toss") a session cookie
    /// on this host. Launch checks those rules (and `Secure` for `__Secure-`).
    #[serde(default = "default_cookie_name")]
    pub cookie_name: String,
    /// Database URL (SQLite path, `postgres://…` or `mysql://…`). Default `db.sqlite`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// Hard cap in minutes from `created_at`, whatever the activity. Default none.
    pub absolute_timeout_minutes: Option<i64>,
    /// A request that changes nothing renews `expires_at` only when the last
    /// renewal is older than this; `0` renews on every request.
    /// Default `min(60, timeout_minutes * 60 / 10)`.
    pub renew_interval_seconds: Option<i64>,
    /// `Secure` attribute. Default `true`, except `false` under Rocket's `debug` profile.
    pub cookie_secure: Option<bool>,
    /// `SameSite` attribute: `strict`, `lax` or `none`. Default `lax`.
    #[serde(default = "default_same_site")]
    pub cookie_same_site: SameSite,
    /// `HttpOnly` attribute. Default `true`.
    #[serde(default = "default_true")]
    pub cookie_http_only: bool,
    /// `Path` attribute. Default `/`.
    #[serde(default = "default_cookie_path")]
    pub cookie_path: String,
    /// `Domain` attribute. Default none (host-only cookie).
    pub cookie_domain: Option<String>,
    /// `true` adds `Max-Age` (the time left until expiry) so the cookie survives a
    /// browser restart. Default `false` (a browser-session cookie).
    #[serde(default)]
    pub cookie_persistent: bool,
    /// Largest session data, as compact JSON, in bytes. Default 65536.
    #[serde(default = "default_max_data_bytes")]
    pub max_data_bytes: usize,
    /// Seconds between background purges of expired rows; `0` turns purging off.
    /// Default 300.
    #[serde(default = "default_purge_interval")]
    pub purge_interval_seconds: u64,
    /// Run pending migrations at ignite. Default `true`.
    #[serde(default = "default_true")]
    pub run_migrations: bool,
    /// Database pool size. Default: Rocket's `workers` × 2.
    pub pool_size: Option<u32>,
    /// Seconds a request waits for a database connection before it gets `503`.
    /// Default 5.
    #[serde(default = "default_pool_timeout")]
    pub pool_timeout_seconds: u64,
    /// Count database statements by kind (see `SessionStore`'s
    /// `database().statement_counts()`); costs a few µs per statement. Default `false`.
    #[serde(default)]
    pub count_statements: bool,
    /// Origins besides the app's own (`https://admin.example.com`) whose
    /// state-changing requests our guards accept. Default none: a `POST`,
    /// `PUT`, `PATCH` or `DELETE` whose `Origin` names another origin, or whose
    /// `Sec-Fetch-Site` is `cross-site`, is refused with `403`.
    #[serde(default)]
    pub trusted_origins: Vec<String>,
    /// Record each session's client IP address (Rocket's `client_ip()`, which
    /// honours its `ip_header` setting) and `User-Agent` (first 512 bytes), for
    /// the devices list and the audit log. Default `true`; `false` stores
    /// neither, for deployments that must not keep IP addresses.
    ///
    /// # Warning
    ///
    /// Rocket's default `ip_header` is `X-Real-IP`: unless a proxy in front
    /// overwrites it, a client chooses the address stored. Without such a
    /// proxy, set Rocket's `ip_header = false`.
    #[serde(default = "default_true")]
    pub record_client: bool,
    /// The longest a handler may [`remember`](crate::Session::remember) a
    /// session, in days (1 to 3650). Default 30.
    #[serde(default = "default_remember_max_days")]
    pub remember_max_days: u32,
    /// The most valid sessions one user may have; a login beyond it signs out
    /// that user's least recently seen sessions. Default none.
    pub max_sessions_per_user: Option<u32>,
    /// Write a `session_events` row for each lifecycle change (created, login,
    /// rotated, logout, revoked, revoked_others, expired) in the change's own
    /// transaction. Default `false`.
    #[serde(default)]
    pub audit: bool,
    /// Days audit events are kept; the background purge deletes older ones
    /// (1 to 36500). Default 90.
    #[serde(default = "default_audit_retention_days")]
    pub audit_retention_days: u32,
}

fn default_cookie_name() -> String {
    "session_id".into()
}
fn default_database_url() -> String {
    "db.sqlite".into()
}
fn default_same_site() -> SameSite {
    SameSite::Lax
}
fn default_true() -> bool {
    true
}
fn default_cookie_path() -> String {
    "/".into()
}
fn default_max_data_bytes() -> usize {
    shared_model::DEFAULT_MAX_DATA_BYTES
}
fn default_purge_interval() -> u64 {
    300
}
fn default_pool_timeout() -> u64 {
    5
}
fn default_remember_max_days() -> u32 {
    30
}
fn default_audit_retention_days() -> u32 {
    90
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Idle timeout.
    pub timeout: chrono::Duration,
    /// Hard cap from creation, if any.
    pub absolute_timeout: Option<chrono::Duration>,
    /// Minimum age of the last renewal before a read-only request renews.
    pub renew_interval: chrono::Duration,
    /// Cookie name.
    pub cookie_name: String,
    /// Database URL.
    pub database_url: String,
    /// `Secure`.
    pub cookie_secure: bool,
    /// `SameSite`.
    pub cookie_same_site: SameSite,
    /// `HttpOnly`.
    pub cookie_http_only: bool,
    /// `Path`.
    pub cookie_path: String,
    /// `Domain`.
    pub cookie_domain: Option<String>,
    /// Whether cookies carry `Max-Age`.
    pub cookie_persistent: bool,
    /// Data size limit in bytes.
    pub max_data_bytes: usize,
    /// Background purge period, if enabled.
    pub purge_interval: Option<Duration>,
    /// Run migrations at ignite.
    pub run_migrations: bool,
    /// Pool size.
    pub pool_size: u32,
    /// Connection wait limit.
    pub pool_timeout: Duration,
    /// Whether the pool counts statements.
    pub count_statements: bool,
    /// Other origins allowed to send state-changing requests, as
    /// `scheme://host[:port]`, lowercase.
    pub trusted_origins: Vec<String>,
    /// Whether client IP addresses and user agents are stored.
    pub record_client: bool,
    /// The longest idle timeout `remember` may give a session.
    pub remember_max: chrono::Duration,
    /// The per-user session cap.
    pub max_sessions_per_user: Option<u32>,
    /// Whether lifecycle events are written.
    pub audit: bool,
    /// How long audit events are kept.
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

impl Settings {
    /// Reads and validates the `session` section of a Rocket figment.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the offending key: `timeout_minutes` missing or not a
    /// positive number, an unknown key, a wrong type, an invalid cookie name,
    /// `cookie_same_site = "none"` without `cookie_secure`.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let config: Config = if figment.contains("session") {
            figment.extract_inner("session").map_err(Box::new)?
        } else {
            // Every key has a default but `timeout_minutes`, reported below.
            Figment::new().extract::<Config>().map_err(Box::new)?
        };
        let release = figment.profile() != rocket::Config::DEBUG_PROFILE;
        let workers = figment
            .extract_inner::<u32>(rocket::Config::WORKERS)
            .unwrap_or(rocket::Config::default().workers as u32);
        Self::from_config(config, release, workers)
    }

    fn from_config(config: Config, release: bool, workers: u32) -> Result<Self, ConfigError> {
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
        bounded(
            "pool_timeout_seconds",
            config.pool_timeout_seconds,
            1,
            3_600,
        )?;
        bounded(
            "purge_interval_seconds",
            config.purge_interval_seconds,
            0,
            366 * 24 * 3_600,
        )?;
        if let Some(size) = config.pool_size {
            bounded("pool_size", u64::from(size), 1, 10_000)?;
        }
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
            database_url: config.database_url,
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
            pool_size: config.pool_size.unwrap_or(workers.saturating_mul(2).max(2)),
            pool_timeout: Duration::from_secs(config.pool_timeout_seconds),
            count_statements: config.count_statements,
            trusted_origins,
            record_client: config.record_client,
            remember_max: chrono::Duration::days(i64::from(config.remember_max_days)),
            max_sessions_per_user: config.max_sessions_per_user,
            audit: config.audit,
            audit_retention: chrono::Duration::days(i64::from(config.audit_retention_days)),
        })
    }
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
