//! The demo's `users` table: its own embedded migrations, the demo accounts and
//! password checks. It lives in the session database and uses the session
//! store's pool (`Database::run_app_migrations`, `session_fairing::store::with_connection!`).

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::embed_migrations;
use session_fairing::store::{with_connection, AppMigrations, Database};
use session_fairing::StoreError;

use crate::schema::users;
use crate::{Error, Result};

/// The demo's migrations, one folder per backend (`demo-app/migrations/*`).
/// All three are embedded whatever the features; the session database's
/// backend picks one.
const MIGRATIONS: AppMigrations = AppMigrations::new()
    .sqlite(embed_migrations!("migrations/sqlite"))
    .postgres(embed_migrations!("migrations/postgres"))
    .mysql(embed_migrations!("migrations/mysql"));

/// The accounts the demo creates when they are missing: `(username, password)`.
pub const DEMO_USERS: [(&str, &str); 2] = [("alice", "wonderland"), ("bob", "builder")];

/// A row of `users`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    /// The primary key, stored in the session as `user_id`.
    pub id: i32,
    /// The login name.
    pub username: String,
    /// An Argon2id PHC string.
    pub password_hash: String,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUser<'a> {
    username: &'a str,
    password_hash: &'a str,
}

/// Argon2id with 4 MiB of memory and 3 passes: a debug build hashes or checks a
/// password in about 0.2 s on this project's 2-core machines (a release build in
/// a few milliseconds), so logging in to the demo never feels slow and the
/// workspace needs no raised `opt-level` for dependencies. A production app
/// would follow the OWASP minimum (19 MiB, 2 passes) or more.
fn hasher() -> Result<Argon2<'static>> {
    let params = Params::new(4 * 1024, 3, 1, None).map_err(|e| Error::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A fresh salted hash of `password`.
///
/// # Errors
///
/// [`Error::Hash`] if Argon2 rejects its parameters (it does not with the ones above).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (whose own parameters are used).
fn password_matches(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(error) => {
            log::warn!("users: stored password hash is not a PHC string: {error}");
            false
        }
    }
}

/// A hash that matches no password the form can send, checked for unknown
/// usernames so they take as long as wrong passwords.
pub(crate) fn decoy_hash() -> Option<&'static str> {
    static DECOY: OnceLock<Option<String>> = OnceLock::new();
    DECOY
        .get_or_init(|| hash_password("\u{0}decoy\u{0}").ok())
        .as_deref()
}

/// The `users` table of the session database, on the session store's pool.
#[derive(Clone)]
pub struct Users {
    db: Database,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").field("db", &self.db).finish()
    }
}

impl Users {
    /// The `users` table in `db` (the session store's database).
    #[must_use]
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Applies the demo's pending migrations and returns their versions. They
    /// share `__diesel_schema_migrations` with the `sessions` migrations, under
    /// versions of their own.
    ///
    /// # Errors
    ///
    /// [`Error::Migration`] when a migration fails.
    pub fn run_migrations(&self) -> Result<Vec<String>> {
        // Under the lock the `sessions` migrations take, so demo instances
        // starting together do not race.
        self.db
            .run_app_migrations(&MIGRATIONS)
            .map_err(|error| match error {
                StoreError::Migration(error) => Error::Migration(Box::new(error)),
                other => Error::Store(other),
            })
    }

    /// The user called `username`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Query`] / [`Error::Store`] when the database fails.
    pub fn find(&self, username: &str) -> Result<Option<User>> {
        with_connection!(self.db, |conn| Ok(users::table
            .filter(users::username.eq(username))
            .select(User::as_select())
            .first(conn)
            .optional()?))
    }

    /// Creates `username` with `password` unless a user of that name exists;
    /// returns whether it created one. Safe to race with another instance doing
    /// the same.
    ///
    /// # Errors
    ///
    /// As [`find`](Self::find), and [`Error::Hash`].
    pub fn ensure(&self, username: &str, password: &str) -> Result<bool> {
        if self.find(username)?.is_some() {
            return Ok(false);
        }
        let password_hash = hash_password(password)?;
        let row = NewUser {
            username,
            password_hash: &password_hash,
        };
        with_connection!(self.db, |conn| match diesel::insert_into(users::table)
            .values(&row)
            .execute(conn)
        {
            Ok(_) => Ok(true),
            // Another instance created it between our check and insert.
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
            Err(error) => Err(error.into()),
        })
    }

    /// Creates the [`DEMO_USERS`] that are missing; returns the names created.
    ///
    /// # Errors
    ///
    /// As [`ensure`](Self::ensure).
    pub fn ensure_demo_users(&self) -> Result<Vec<&'static str>> {
        let mut created = Vec::new();
        for (username, password) in DEMO_USERS {
            if self.ensure(username, password)? {
                created.push(username);
            }
        }
        Ok(created)
    }

    /// The user when `password` is theirs; `None` for a wrong password or an
    /// unknown username (both take about as long). Blocking: call it through
    /// [`Users::authenticate`] from async code.
    ///
    /// # Errors
    ///
    /// As [`find`](Self::find).
    pub fn check_password(&self, username: &str, password: &str) -> Result<Option<User>> {
        // The connection goes back to the pool before the (slow) hash check.
        match self.find(username)? {
            Some(user) if password_matches(password, &user.password_hash) => Ok(Some(user)),
            Some(_) => Ok(None),
            None => {
                if let Some(decoy) = decoy_hash() {
                    password_matches(password, decoy);
                }
                Ok(None)
            }
        }
    }

    /// [`check_password`](Self::check_password) on a blocking thread, off the
    /// async executor.
    ///
    /// # Errors
    ///
    /// As [`check_password`](Self::check_password), and [`Error::Task`] if the
    /// blocking task panicked.
    pub async fn authenticate(&self, username: String, password: String) -> Result<Option<User>> {
        let users = self.clone();
        rocket::tokio::task::spawn_blocking(move || users.check_password(&username, &password))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_and_verify() {
        let first = hash_password("wonderland").unwrap();
        let second = hash_password("wonderland").unwrap();
        assert_ne!(first, second, "each hash has its own salt");
        assert!(first.starts_with("$argon2id$"));
        assert!(password_matches("wonderland", &first));
        assert!(!password_matches("Wonderland", &first));
        assert!(!password_matches("wonderland", "not a hash"));
    }
}
