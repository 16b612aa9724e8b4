//! Which database to open: `--database-url`, `DATABASE_URL`, `session.database_url`
//! in `./Rocket.toml`, else `db.sqlite`.

use std::fmt;
use std::path::Path;

use shared_model::Backend;

use crate::{Error, Result};

/// The URL used when nothing else names a database.
pub const DEFAULT_DATABASE_URL: &str = "db.sqlite";

/// Where the database URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlSource {
    /// The `--database-url` option.
    Argument,
    /// The `DATABASE_URL` environment variable.
    Environment,
    /// `session.database_url` in `Rocket.toml`.
    RocketToml,
    /// Nothing named one: [`DEFAULT_DATABASE_URL`].
    Default,
}

impl fmt::Display for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Argument => "--database-url",
            Self::Environment => "DATABASE_URL",
            Self::RocketToml => "Rocket.toml",
            Self::Default => "default",
        })
    }
}

/// Picks the database URL from, in order, the command-line argument, the
/// environment variable's value and the text of `Rocket.toml`.
///
/// In `Rocket.toml`, `[global.session]` wins over `[default.session]`, as in Rocket.
/// Empty values are ignored.
///
/// # Errors
///
/// [`Error::ParseConfig`] when `rocket_toml` is given but is not valid TOML.
///
/// # Examples
///
/// ```
/// use session_inspector::config::{resolve_database_url, UrlSource};
///
/// let toml = "[default.session]\ndatabase_url = \"demo.sqlite\"\n";
/// assert_eq!(
///     resolve_database_url(None, None, Some(("Rocket.toml".as_ref(), toml)))?,
///     ("demo.sqlite".to_owned(), UrlSource::RocketToml)
/// );
/// assert_eq!(
///     resolve_database_url(Some("a.sqlite"), Some("b.sqlite".into()), None)?,
///     ("a.sqlite".to_owned(), UrlSource::Argument)
/// );
/// # Ok::<(), session_inspector::Error>(())
/// ```
pub fn resolve_database_url(
    argument: Option<&str>,
    environment: Option<String>,
    rocket_toml: Option<(&Path, &str)>,
) -> Result<(String, UrlSource)> {
    if let Some(url) = argument.map(str::trim).filter(|url| !url.is_empty()) {
        return Ok((url.to_owned(), UrlSource::Argument));
    }
    if let Some(url) = environment
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty())
    {
        return Ok((url.to_owned(), UrlSource::Environment));
    }
    if let Some((path, text)) = rocket_toml {
        if let Some(url) = rocket_toml_url(path, text)? {
            return Ok((url, UrlSource::RocketToml));
        }
    }
    Ok((DEFAULT_DATABASE_URL.to_owned(), UrlSource::Default))
}

/// `session.database_url` from the text of a `Rocket.toml`.
fn rocket_toml_url(path: &Path, text: &str) -> Result<Option<String>> {
    let table: toml::Table = text.parse().map_err(|reason| Error::ParseConfig {
        path: path.to_owned(),
        reason,
    })?;
    let url_in = |profile: &str| {
        table
            .get(profile)
            .and_then(|p| p.get("session"))
            .and_then(|s| s.get("database_url"))
            .and_then(toml::Value::as_str)
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
    };
    Ok(url_in("global").or_else(|| url_in("default")))
}

/// [`resolve_database_url`] with the real environment and `./Rocket.toml`.
///
/// # Errors
///
/// [`Error::ReadConfig`] / [`Error::ParseConfig`] when `./Rocket.toml` exists but
/// cannot be read or parsed (and no earlier source named a database).
pub fn database_url_from_environment(argument: Option<&str>) -> Result<(String, UrlSource)> {
    let environment = std::env::var("DATABASE_URL").ok();
    let has_earlier = argument.is_some_and(|a| !a.trim().is_empty())
        || environment.as_deref().is_some_and(|e| !e.trim().is_empty());
    let path = Path::new("Rocket.toml");
    let text = if !has_earlier && path.exists() {
        Some(
            std::fs::read_to_string(path).map_err(|reason| Error::ReadConfig {
                path: path.to_owned(),
                reason,
            })?,
        )
    } else {
        None
    };
    resolve_database_url(
        argument,
        environment,
        text.as_deref().map(|text| (path, text)),
    )
}

/// The SQLite file a URL names, or `None` for server URLs and in-memory databases.
#[must_use]
pub fn sqlite_file(url: &str) -> Option<&Path> {
    if Backend::from_url(url) != Backend::Sqlite {
        return None;
    }
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    if let Some(uri) = path.strip_prefix("file:") {
        // A `file:` URI: its path, without parameters or an empty authority.
        if uri.contains("mode=memory") {
            return None;
        }
        let uri = uri.split('?').next().unwrap_or(uri);
        let uri = uri.strip_prefix("//localhost").unwrap_or(uri);
        let uri = match uri.strip_prefix("//") {
            Some(rest) => rest
                .get(rest.find('/').unwrap_or(rest.len())..)
                .unwrap_or(rest),
            None => uri,
        };
        return (!uri.is_empty() && uri != ":memory:").then(|| Path::new(uri));
    }
    // A plain path names the file literally (`?` included), as SQLite reads it.
    if path == ":memory:" || path.is_empty() {
        return None;
    }
    Some(Path::new(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml(text: &str) -> Option<(&'static Path, &str)> {
        Some((Path::new("Rocket.toml"), text))
    }

    #[test]
    fn order_is_argument_environment_rocket_toml_default() {
        let text = "[default.session]\ndatabase_url = \"toml.sqlite\"\n";
        assert_eq!(
            resolve_database_url(Some("arg.sqlite"), Some("env.sqlite".into()), toml(text))
                .unwrap(),
            ("arg.sqlite".into(), UrlSource::Argument)
        );
        assert_eq!(
            resolve_database_url(None, Some("env.sqlite".into()), toml(text)).unwrap(),
            ("env.sqlite".into(), UrlSource::Environment)
        );
        assert_eq!(
            resolve_database_url(Some(""), Some(" ".into()), toml(text)).unwrap(),
            ("toml.sqlite".into(), UrlSource::RocketToml)
        );
        assert_eq!(
            resolve_database_url(None, None, None).unwrap(),
            (DEFAULT_DATABASE_URL.into(), UrlSource::Default)
        );
    }

    #[test]
    fn global_profile_wins_and_other_keys_are_ignored() {
        let text = "[default.session]\ndatabase_url = \"default.sqlite\"\n\
                    [global.session]\ndatabase_url = \"global.sqlite\"\n";
        assert_eq!(
            resolve_database_url(None, None, toml(text)).unwrap().0,
            "global.sqlite"
        );
        let unrelated = "[default]\nport = 8000\n";
        assert_eq!(
            resolve_database_url(None, None, toml(unrelated)).unwrap(),
            (DEFAULT_DATABASE_URL.into(), UrlSource::Default)
        );
    }

    #[test]
    fn broken_rocket_toml_is_an_error_naming_the_file() {
        let error = resolve_database_url(None, None, toml("[default\n")).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("Rocket.toml is not valid TOML"));
    }

    #[test]
    fn sqlite_file_only_for_sqlite_paths() {
        assert_eq!(sqlite_file("db.sqlite"), Some(Path::new("db.sqlite")));
        assert_eq!(sqlite_file("sqlite://a/b.db"), Some(Path::new("a/b.db")));
        assert_eq!(sqlite_file(":memory:"), None);
        assert_eq!(sqlite_file("q?x.db"), Some(Path::new("q?x.db")));
        assert_eq!(
            sqlite_file("file:/tmp/a.db?mode=rw"),
            Some(Path::new("/tmp/a.db"))
        );
        assert_eq!(
            sqlite_file("file:///tmp/a.db"),
            Some(Path::new("/tmp/a.db"))
        );
        assert_eq!(sqlite_file("file:a.db"), Some(Path::new("a.db")));
        assert_eq!(sqlite_file("file::memory:?cache=shared"), None);
        assert_eq!(sqlite_file("postgres://localhost/x"), None);
    }
}
