//! The `Session` request guard.

use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::de::DeserializeOwned;
use rocket::serde::{Deserialize, Serialize};
use rocket::{Ignite, Rocket, Sentinel};
use serde_json::Value;
use shared_model::{Device, SessionId};

use crate::error::NOT_ATTACHED;
use crate::fairing::{blocking, load, Loaded, RequestSession, Store};
use crate::state::State;
use crate::{Error, Result};

/// The data key that holds flash messages, as in the seed framework.
pub const FLASH_KEY: &str = "flash_messages";

/// A one-time message for the next page, stored under [`FLASH_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(crate = "rocket::serde")]
pub struct Flash {
    /// The text.
    pub message: String,
    /// A category for styling, e.g. `success`, `info`, `warning`, `error`.
    pub category: String,
}

/// The current request's session: a JSON object you read and change like a map.
///
/// Changes are saved when the response leaves, if its status is below 500: a new
/// session is inserted then (a visitor who stores nothing gets no row and no
/// cookie), an existing one is saved as a change set merged into the stored data,
/// so concurrent requests that change different keys all keep their changes.
///
/// Use it as a request guard:
///
/// ```rust
/// # #[macro_use] extern crate rocket;
/// use session_fairing::Session;
///
/// #[post("/cart/<item>")]
/// fn add(session: Session<'_>, item: &str) -> Result<String, session_fairing::Error> {
///     let mut cart: Vec<String> = session.get("cart").unwrap_or_default();
///     cart.push(item.to_owned());
///     session.insert("cart", &cart)?;
///     Ok(format!("{} items", cart.len()))
/// }
/// ```
///
/// The row is loaded the first time a guard of this crate asks for it in a
/// request (one `SELECT`, off the async executor), never before: routes
/// without these guards cost no query. If the session could not be loaded
/// (database down), the guard fails with `503 Service Unavailable`. On a
/// state-changing request (`POST`, `PUT`, `PATCH`, `DELETE`) that a browser
/// marks as coming from another site, it fails with `403 Forbidden` (see
/// [`CsrfToken`](crate::CsrfToken)). Using the guard without the fairing
/// attached aborts launch.
pub struct Session<'r> {
    state: &'r Mutex<State>,
    store: &'r Store,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Session")
            .field("id", &state.bound.as_ref().map(|bound| bound.id))
            .field("is_new", &state.bound.is_none())
            .field("is_modified", &state.is_modified())
            .field("keys", &state.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The request's session state, loaded on first use: what every guard of this
/// crate starts with. Refuses cross-site state-changing requests first.
pub(crate) async fn request_state<'r>(
    request: &'r Request<'_>,
) -> Outcome<(&'r Store, &'r Mutex<State>), &'r Error> {
    let Some(store) = request.rocket().state::<Store>() else {
        tracing::error!("{NOT_ATTACHED}");
        return NOT_ATTACHED.outcome();
    };
    if let Err(error) = crate::csrf::check_origin(request, &store.settings) {
        return error.outcome();
    }
    let loaded = request
        .local_cache_async(async { RequestSession(load(request, store).await) })
        .await;
    match &loaded.0 {
        Loaded::Ready(state) => Outcome::Success((store, state)),
        // Logged once, when the load failed.
        Loaded::Failed(error) => error.outcome(),
        Loaded::Absent => {
            tracing::error!("sessions: the request's session slot was taken before it was loaded");
            NOT_ATTACHED.outcome()
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Session<'r> {
    type Error = &'r Error;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, &'r Error> {
        let (store, state) = rocket::outcome::try_outcome!(request_state(request).await);
        Outcome::Success(Session { state, store })
    }
}

impl Sentinel for Session<'_> {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        if rocket.state::<Store>().is_none() {
            tracing::error!("a route uses a session guard but {NOT_ATTACHED}");
            return true;
        }
        false
    }
}

impl Session<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value under `key`, converted to `T`; `None` when the key is absent or
    /// holds something that is not a `T` (use [`try_get`](Self::try_get) to tell
    /// the two apart).
    #[must_use]
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.try_get(key).ok().flatten()
    }

    /// The value under `key`, converted to `T`.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] when the stored value is not a `T`.
    pub fn try_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(value) = self.get_value(key) else {
            return Ok(None);
        };
        serde_json::from_value(value)
            .map(Some)
            .map_err(|source| Error::Json {
                key: key.to_owned(),
                source,
            })
    }

    /// The raw JSON value under `key`.
    #[must_use]
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.lock().data.get(key).cloned()
    }

    /// Stores `value` under `key`. Storing under `user_id` also sets the session's
    /// [`user_id`](Self::user_id) column (a string as is, a number as its digits,
    /// `null` clears it).
    ///
    /// # Errors
    ///
    /// [`Error::Json`] when `value` cannot be represented as JSON (e.g. a map with
    /// non-string keys).
    pub fn insert<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<()> {
        let value = serde_json::to_value(value).map_err(|source| Error::Json {
            key: key.to_owned(),
            source,
        })?;
        self.lock().set(key.to_owned(), value);
        Ok(())
    }

    /// Removes `key` and returns its value, if it was there. Removing `user_id`
    /// also clears the `user_id` column, even when only the column was set.
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.lock().remove(key)
    }

    /// Whether `key` is set.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.lock().data.contains_key(key)
    }

    /// The keys, in order.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.lock().data.keys().cloned().collect()
    }

    /// A copy of all the data.
    #[must_use]
    pub fn data(&self) -> shared_model::SessionData {
        self.lock().data.clone()
    }

    /// Empties the data and the user, keeping the session (and its id).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Logout: the stored session and its cookie are deleted when the response
    /// leaves. Anything stored afterwards in the same request goes into a brand-new
    /// session with a new id.
    pub fn delete(&self) {
        self.lock().delete();
    }

    /// True when no stored session backs this request yet: no valid cookie came in,
    /// or [`delete`](Self::delete) was called.
    #[must_use]
    pub fn is_new(&self) -> bool {
        self.lock().bound.is_none()
    }

    /// True when this request changed the session (it will be written).
    #[must_use]
    pub fn is_modified(&self) -> bool {
        self.lock().is_modified()
    }

    /// The public id of the stored session, `None` while the session is new (a
    /// new session gets its id when it is first saved). Safe to log or show: it
    /// is a hash of the cookie's secret token, not the token.
    #[must_use]
    pub fn id(&self) -> Option<SessionId> {
        self.lock().bound.as_ref().map(|bound| bound.id)
    }

    /// The `user_id` column.
    #[must_use]
    pub fn user_id(&self) -> Option<String> {
        self.lock().user_id.clone()
    }

    /// Sets the `user_id` column (the data is unchanged).
    pub fn set_user_id(&self, user_id: Option<impl Into<String>>) {
        self.lock().set_user_id(user_id.map(Into::into));
    }

    /// Gives the session a new token (and so a new id) when saved, same data.
    /// Call it whenever the privilege level changes; [`login`](Self::login) does.
    pub fn cycle_id(&self) {
        self.lock().cycle_id();
    }

    /// Signs `user_id` in: sets the `user_id` column and cycles the token, so a
    /// cookie planted before login (session fixation) is worthless after it.
    ///
    /// If the session belonged to a *different* user, its data is cleared first:
    /// the next user of a shared browser does not inherit anything. An
    /// anonymous session keeps its data (a guest's cart survives signing in).
    pub fn login(&self, user_id: impl Into<String>) {
        self.lock().login(user_id.into());
    }

    /// Makes this session long-lived ("remember me"): it gets its own idle
    /// timeout of `duration` (at most `remember_max_days`, at least the
    /// configured idle timeout), stored in its row
    /// and used by every renewal, and its cookie gets `Max-Age` (refreshed on
    /// each renewal) so it survives a browser restart. Sessions that are not
    /// remembered keep browser-session cookies unless `cookie_persistent` is
    /// set. `absolute_timeout_minutes` still caps a remembered session.
    ///
    /// ```rust
    /// # #[macro_use] extern crate rocket;
    /// use session_fairing::Session;
    ///
    /// use std::time::Duration;
    ///
    /// #[post("/login?<remember>")]
    /// fn login(session: Session<'_>, remember: bool) -> &'static str {
    ///     session.login("alice");
    ///     if remember {
    ///         session.remember(Duration::from_secs(30 * 24 * 3600));
    ///     }
    ///     "signed in"
    /// }
    /// ```
    pub fn remember(&self, duration: std::time::Duration) {
        let settings = &self.store.settings;
        let capped = chrono::Duration::from_std(duration)
            .unwrap_or(chrono::Duration::MAX)
            .min(settings.remember_max)
            .max(settings.timeout);
        self.lock().remember(capped);
    }

    /// Whether the session has its own idle timeout ([`remember`](Self::remember)).
    #[must_use]
    pub fn is_remembered(&self) -> bool {
        self.lock().is_remembered()
    }

    /// The signed-in user's valid sessions ("your devices"), most recently seen
    /// first, with this request's marked `current`. Empty when no user is
    /// signed in. One indexed query.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the database cannot be read.
    pub async fn devices(&self) -> Result<Vec<Device>> {
        let (user_id, current) = {
            let state = self.lock();
            (
                state.user_id.clone(),
                state.bound.as_ref().map(|bound| bound.id),
            )
        };
        let Some(user_id) = user_id else {
            return Ok(Vec::new());
        };
        let manager = self.store.manager.clone();
        blocking(move || manager.devices(&user_id, current.as_ref())).await
    }

    /// Signs out one of the signed-in user's sessions by its public id, now.
    /// Returns `false` when `id` is not a valid session of this user (unknown,
    /// expired or someone else's: all "not found"). Revoking this request's own
    /// session is a logout ([`delete`](Self::delete)).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the database cannot be written.
    pub async fn revoke(&self, id: SessionId) -> Result<bool> {
        let (user_id, current) = {
            let state = self.lock();
            (
                state.user_id.clone(),
                state.bound.as_ref().map(|bound| bound.id),
            )
        };
        let Some(user_id) = user_id else {
            return Ok(false);
        };
        if current == Some(id) {
            self.delete();
            return Ok(true);
        }
        let manager = self.store.manager.clone();
        blocking(move || manager.revoke(&user_id, &id, current.as_ref())).await
    }

    /// Signs out every other session of the signed-in user, now, keeping this
    /// one ("sign out other devices"; call it after a password change too).
    /// Returns how many were signed out; 0 when no user is signed in.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the database cannot be written.
    pub async fn revoke_others(&self) -> Result<u64> {
        let (user_id, keep) = {
            let mut state = self.lock();
            let keep = match &state.bound {
                Some(bound) => Some(bound.id),
                // A session stored at the end of this request keeps the id
                // its token gives it.
                None => state
                    .token_after()
                    .map(shared_model::SessionToken::public_id),
            };
            (state.user_id.clone(), keep)
        };
        let (Some(user_id), Some(keep)) = (user_id, keep) else {
            return Ok(0);
        };
        let manager = self.store.manager.clone();
        blocking(move || manager.revoke_others(&user_id, &keep)).await
    }

    /// When the session expires after this request (renewals included).
    #[must_use]
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.lock()
            .expires_at_after(&self.store.settings, self.store.manager.now())
    }

    /// Adds a flash message for a later request.
    pub fn flash(&self, message: impl Into<String>, category: impl Into<String>) {
        let mut state = self.lock();
        let mut flashes = flashes_in(&state);
        flashes.push(Flash {
            message: message.into(),
            category: category.into(),
        });
        let value = flashes
            .into_iter()
            .map(|flash| serde_json::json!({"message": flash.message, "category": flash.category}))
            .collect();
        state.set(FLASH_KEY.to_owned(), Value::Array(value));
    }

    /// Returns the flash messages and removes them, so they show once. Changes
    /// nothing when there are none.
    #[must_use]
    pub fn take_flashes(&self) -> Vec<Flash> {
        let mut state = self.lock();
        let flashes = flashes_in(&state);
        if state.data.contains_key(FLASH_KEY) {
            state.remove(FLASH_KEY);
        }
        flashes
    }
}

/// The stored flashes; entries that are not `{message, category}` are dropped.
fn flashes_in(state: &State) -> Vec<Flash> {
    match state.data.get(FLASH_KEY) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| serde_json::from_value(item.clone()).ok())
            .collect(),
        _ => Vec::new(),
    }
}
