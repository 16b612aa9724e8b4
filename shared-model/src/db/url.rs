//! Database URLs: which [`Backend`] a URL selects, its SQLite path, and
//! hiding its passwords before it is printed or stored.

use std::fmt;

/// The database engine behind a [`Database`](crate::Database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file (or `:memory:`), bundled: works with no server and no system library.
    Sqlite,
    /// PostgreSQL (cargo feature `postgres`).
    Postgres,
    /// MySQL or MariaDB (cargo feature `mysql`).
    Mysql,
}

impl Backend {
    /// Which backend a URL selects: `postgres://` and `postgresql://` select
    /// PostgreSQL, `mysql://` MySQL/MariaDB, anything else is an SQLite path
    /// (an optional `sqlite://` prefix is removed).
    ///
    /// # Examples
    ///
    /// ```
    /// use shared_model::Backend;
    ///
    /// assert_eq!(Backend::from_url("postgres://localhost/app"), Backend::Postgres);
    /// assert_eq!(Backend::from_url("mysql://root@localhost/app"), Backend::Mysql);
    /// assert_eq!(Backend::from_url("sqlite://db.sqlite"), Backend::Sqlite);
    /// assert_eq!(Backend::from_url(":memory:"), Backend::Sqlite);
    /// ```
    #[must_use]
    pub fn from_url(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres
        } else if url.starts_with("mysql://") {
            Self::Mysql
        } else {
            Self::Sqlite
        }
    }

    /// The engine's name, as [`Display`](fmt::Display) writes it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
            Self::Mysql => "MySQL",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An SQLite path as a `file:` URI that opens it read-only (`mode=ro`). A
/// plain path names a file literally (as SQLite reads it when not a URI), so
/// `?`, `#` and `%` are escaped; a `file:` URI keeps its parameters.
pub(super) fn read_only_uri(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("file:") {
        let joiner = if rest.contains('?') { '&' } else { '?' };
        return format!("file:{rest}{joiner}mode=ro");
    }
    // `file://x` would make `x` an authority: one leading slash names the same file.
    let path = if path.starts_with("//") {
        format!("/{}", path.trim_start_matches('/'))
    } else {
        path.to_owned()
    };
    let mut encoded = String::with_capacity(path.len());
    for ch in path.chars() {
        match ch {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3f"),
            '#' => encoded.push_str("%23"),
            other => encoded.push(other),
        }
    }
    format!("file:{encoded}?mode=ro")
}

/// The SQLite path of a URL: the text after an optional `sqlite://` prefix.
pub(super) fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://").unwrap_or(url)
}

/// `url` with every password replaced by `***`: the one in `user:password@` and
/// any query parameter whose name contains `password` (libpq's `?password=`,
/// `sslpassword=`). Use it wherever a database URL is printed or stored.
///
/// # Examples
///
/// ```
/// use shared_model::redact_url;
///
/// assert_eq!(redact_url("postgres://app:s3cret@db/app"), "postgres://app:***@db/app");
/// assert_eq!(
///     redact_url("postgres://db/app?user=app&password=s3cret&sslmode=require"),
///     "postgres://db/app?user=app&password=***&sslmode=require"
/// );
/// assert_eq!(redact_url("db.sqlite"), "db.sqlite");
/// ```
#[must_use]
pub fn redact_url(url: &str) -> String {
    rewrite_passwords(url, Some("***"))
}

/// `url` without its passwords (see [`redact_url`] for which): what may be
/// stored, e.g. in a list of recent connections. Connecting with it again needs
/// the password from elsewhere (libpq's `PGPASSWORD` or `~/.pgpass`).
///
/// # Examples
///
/// ```
/// use shared_model::strip_password;
///
/// assert_eq!(strip_password("postgres://app:s3cret@db/app"), "postgres://app@db/app");
/// assert_eq!(
///     strip_password("postgres://db/app?password=s3cret&sslmode=require"),
///     "postgres://db/app?sslmode=require"
/// );
/// ```
#[must_use]
pub fn strip_password(url: &str) -> String {
    rewrite_passwords(url, None)
}

/// Replaces every password in `url` with `replacement`, or drops it.
fn rewrite_passwords(url: &str, replacement: Option<&str>) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return rewrite_query(url, replacement);
    };
    // The authority ends at the first `/`, `?` or `#`; credentials end at its
    // last `@` (a password may hold an unescaped `@`).
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (credentials, host, tail) = match authority.rsplit_once('@') {
        Some((credentials, host)) => (Some(credentials), host, tail),
        // A `:` followed by something other than a port means an unescaped `/`,
        // `?` or `#` in a password cut the authority short: everything up to the
        // last `@` is credentials. This may hide too much, never too little.
        None if has_non_numeric_port(authority) && rest.contains('@') => {
            match rest.rsplit_once('@') {
                Some((credentials, after)) => {
                    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
                    let (host, tail) = after.split_at(end);
                    (Some(credentials), host, tail)
                }
                None => (None, authority, tail),
            }
        }
        None => (None, authority, tail),
    };
    let credentials = match (credentials, replacement) {
        (None, _) => String::new(),
        (Some(credentials), replacement) => match (credentials.split_once(':'), replacement) {
            (Some((user, _)), Some(replacement)) => format!("{user}:{replacement}@"),
            (Some((user, _)), None) => format!("{user}@"),
            (None, _) => format!("{credentials}@"),
        },
    };
    format!(
        "{scheme}://{credentials}{host}{}",
        rewrite_query(tail, replacement)
    )
}

/// Whether `authority` (without credentials) has a `:` not followed by digits only.
fn has_non_numeric_port(authority: &str) -> bool {
    authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.bytes().all(|b| b.is_ascii_digit()))
}

/// `path?query#fragment` with password parameters replaced or dropped.
fn rewrite_query(text: &str, replacement: Option<&str>) -> String {
    let Some((path, query)) = text.split_once('?') else {
        return text.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .filter_map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                replacement.map(|replacement| format!("{key}={replacement}"))
            }
            _ => Some(pair.to_owned()),
        })
        .collect();
    if pairs.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", pairs.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact_url("postgres://app:secret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact_url("mysql://root@localhost/test"),
            "mysql://root@localhost/test"
        );
        assert_eq!(redact_url("db.sqlite"), "db.sqlite");
        // A password containing `@` and `:` still disappears whole.
        assert_eq!(
            redact_url("postgres://app:p@ss:w@rd@db/x?sslmode=require"),
            "postgres://app:***@db/x?sslmode=require"
        );
        assert_eq!(
            redact_url("mysql://root:a?b/c@db/x"),
            "mysql://root:***@db/x"
        );
        assert_eq!(
            redact_url("postgresql:///x?host=/run&PassWord=hunter2&sslpassword=k&user=u"),
            "postgresql:///x?host=/run&PassWord=***&sslpassword=***&user=u"
        );
        assert_eq!(
            strip_password("postgresql://u:p@h/x?password=a&sslmode=require&sslpassword=b"),
            "postgresql://u@h/x?sslmode=require"
        );
        assert_eq!(
            strip_password("mysql://root@h/x?password=a"),
            "mysql://root@h/x"
        );
        assert_eq!(strip_password("db.sqlite"), "db.sqlite");
        // An `@` after the host (Azure's user@server names) is not the end of
        // the credentials.
        assert_eq!(
            redact_url("postgres://db/app?user=me@corp&password=s3cret"),
            "postgres://db/app?user=me@corp&password=***"
        );
        assert_eq!(
            redact_url("postgres://app:pw@db/app?options=a@b&password=s3cret"),
            "postgres://app:***@db/app?options=a@b&password=***"
        );
        assert_eq!(
            strip_password("postgres://app:pw@db/app?options=a@b&password=s3cret"),
            "postgres://app@db/app?options=a@b"
        );
        assert_eq!(
            redact_url("postgres://db:5432/app"),
            "postgres://db:5432/app"
        );
        assert_eq!(
            redact_url("db.sqlite?password=x&mode=ro"),
            "db.sqlite?password=***&mode=ro"
        );
        // Whatever the shape, a password never survives.
        for url in [
            "postgres://app:s3cret@db/x",
            "postgres://app:s3/cret@db/x",
            "postgres://app:s3?cret@db/x",
            "postgres://app:s3#cret@db/x",
            "postgres://app:s3@cret@db/x?o=a@b",
            "mysql://app:s3cret@db:3306/x?password=s3cret",
        ] {
            assert!(
                !redact_url(url).contains("s3"),
                "{url} -> {}",
                redact_url(url)
            );
            assert!(
                !strip_password(url).contains("s3"),
                "{url} -> {}",
                strip_password(url)
            );
        }
    }

    #[test]
    fn read_only_uris_name_the_file_literally() {
        assert_eq!(read_only_uri("a b.db"), "file:a b.db?mode=ro");
        assert_eq!(read_only_uri("q?x#y%.db"), "file:q%3fx%23y%25.db?mode=ro");
        assert_eq!(read_only_uri("//tmp/x.db"), "file:/tmp/x.db?mode=ro");
        assert_eq!(
            read_only_uri("file:x.db?cache=shared"),
            "file:x.db?cache=shared&mode=ro"
        );
    }

    #[test]
    fn sqlite_prefix_is_optional() {
        assert_eq!(sqlite_path("sqlite://a/b.db"), "a/b.db");
        assert_eq!(sqlite_path("a/b.db"), "a/b.db");
    }
}
