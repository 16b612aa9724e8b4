//! The `Sessions` fairing: save at response (the guards load on first use),
//! purge in the background.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::{Build, Orbit, Request, Response, Rocket};
use shared_model::{
    redact_url, Actor, Client, Clock, Database, NewSession, SessionManager, SessionToken,
};

use crate::config::{SameSite, Settings};
use crate::state::{within_absolute_timeout, Plan, State, Write};
use crate::Error;

/// The fairing that gives every request a database-backed session.
///
/// ```rust,no_run
/// # #[macro_use] extern crate rocket;
/// use session_fairing::Sessions;
///
/// #[launch]
/// fn rocket() -> _ {
///     rocket::build().attach(Sessions::fairing())
/// }
/// ```
///
/// Configuration comes from the `session` section of Rocket's figment (see
/// [`Config`](crate::Config)). Attach it once; the order among other fairings
/// does not matter.
pub struct Sessions {
    clock: Option<Arc<dyn Clock>>,
}

impl Sessions {
    /// The fairing, configured from Rocket's figment at ignite.
    #[must_use]
    pub fn fairing() -> Self {
        Self { clock: None }
    }

    /// Reads "now" from `clock` instead of the system clock (for tests of expiry).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }
}

/// The session manager of a Rocket that has the fairing attached (after ignite),
/// for work outside a request's own session: "log out everywhere"
/// (`delete_for_user`), admin pages, statistics.
///
/// The manager is synchronous: call it inside `rocket::tokio::task::spawn_blocking`.
#[must_use]
pub fn manager<P: rocket::Phase>(rocket: &Rocket<P>) -> Option<&SessionManager> {
    rocket.state::<Store>().map(|store| &store.manager)
}

/// The validated settings of a Rocket that has the fairing attached (after ignite).
#[must_use]
pub fn settings<P: rocket::Phase>(rocket: &Rocket<P>) -> Option<&Settings> {
    rocket.state::<Store>().map(|store| &store.settings)
}

/// Managed state: the manager and the validated settings.
pub(crate) struct Store {
    pub manager: SessionManager,
    pub settings: Settings,
}

/// Request-local state (a private type so no one else can occupy the slot).
pub(crate) struct RequestSession(pub Loaded);

#[allow(clippy::large_enum_variant)] // one per request, cached in place and never moved
pub(crate) enum Loaded {
    Absent,
    Ready(Mutex<State>),
    Failed(Error),
}

impl RequestSession {
    pub fn absent() -> Self {
        Self(Loaded::Absent)
    }
}

/// Runs blocking database work off the async executor.
pub(crate) async fn run_blocking<T, F>(work: F) -> Result<T, Error>
where
    F: FnOnce() -> shared_model::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match rocket::tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(Error::from),
        Err(join_error) => Err(Error::Task(join_error.to_string())),
    }
}

#[rocket::async_trait]
impl Fairing for Sessions {
    fn info(&self) -> Info {
        Info {
            name: "Sessions",
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let settings = match Settings::from_figment(rocket.figment()) {
            Ok(settings) => settings,
            Err(error) => {
                log::error!("{error}");
                return Err(rocket);
            }
        };
        let url = settings.database_url.clone();
        let (pool_size, pool_timeout) = (settings.pool_size, settings.pool_timeout);
        let count_statements = settings.count_statements;
        let migrate = settings.run_migrations;
        let opened = run_blocking(move || {
            let builder = Database::builder(&url)
                .pool_size(pool_size)
                .connection_timeout(pool_timeout)
                .busy_timeout(pool_timeout)
                .count_statements(count_statements);
            if !migrate {
                // The app may start before its database; requests get 503 until it is up.
                return builder.connect_lazy();
            }
            let db = builder.connect()?;
            for version in db.run_migrations()? {
                log::info!("sessions: applied migration {version}");
            }
            Ok(db)
        })
        .await;
        let db = match opened {
            Ok(db) => db,
            Err(error) => {
                log::error!(
                    "sessions: cannot open {}: {error}",
                    redact_url(&settings.database_url)
                );
                return Err(rocket);
            }
        };
        log::info!("sessions: {} at {}", db.backend(), db.display_url());
        let mut manager = SessionManager::new(db).with_max_data_bytes(settings.max_data_bytes);
        if settings.audit {
            manager = manager.with_audit(Actor::App);
        }
        if let Some(cap) = settings.max_sessions_per_user {
            manager = manager.with_max_sessions_per_user(cap);
        }
        if let Some(clock) = &self.clock {
            manager = manager.with_clock(Arc::clone(clock));
        }
        Ok(rocket.manage(Store { manager, settings }))
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let Some(store) = rocket.state::<Store>() else {
            return;
        };
        let Some(period) = store.settings.purge_interval else {
            return;
        };
        let manager = store.manager.clone();
        let retention = store
            .settings
            .audit
            .then_some(store.settings.audit_retention);
        let mut shutdown = rocket.shutdown();
        rocket::tokio::spawn(async move {
            let mut ticks = rocket::tokio::time::interval(period);
            ticks.set_missed_tick_behavior(rocket::tokio::time::MissedTickBehavior::Delay);
            loop {
                rocket::tokio::select! {
                    _ = &mut shutdown => break,
                    _ = ticks.tick() => {}
                }
                let manager = manager.clone();
                match run_blocking(move || purge(&manager, retention)).await {
                    Ok((0, 0)) => {}
                    Ok((sessions, events)) => log::info!(
                        "sessions: purged {sessions} expired sessions and {events} old audit events"
                    ),
                    Err(error) => log::warn!("sessions: purge failed (will retry): {error}"),
                }
            }
        });
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let Some(store) = request.rocket().state::<Store>() else {
            return;
        };
        let state = match &request.local_cache(RequestSession::absent).0 {
            // No guard of ours ran: nothing was loaded, nothing to write.
            Loaded::Absent => return,
            Loaded::Failed(_) => {
                vary_on_cookie(response);
                return;
            }
            Loaded::Ready(state) => state,
        };
        // The page depends on the session: shared caches must key on the cookie.
        vary_on_cookie(response);
        if response.status().code >= 500 {
            return;
        }
        let now = store.manager.now();
        let (plan, cookie_token, persistent) = {
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            // A persistent (or remembered) cookie is sent again with every
            // renewal, with its new Max-Age.
            let persistent = store.settings.cookie_persistent || state.is_remembered();
            (
                state.plan(&store.settings, now),
                state.cookie_token().filter(|_| persistent).cloned(),
                persistent,
            )
        };
        let plan = match plan {
            Ok(plan) => plan,
            // No randomness for a token: nothing can be stored safely.
            Err(error) => return fail(response, &Error::from(error), &store.settings, false),
        };
        if plan.is_empty() {
            // The common read-only request inside the renew interval: no thread hop.
            return;
        }
        let manager = store.manager.clone();
        match run_blocking(move || Ok(execute(&manager, plan))).await {
            Ok(Ok(Saved::Nothing)) => {}
            Ok(Ok(Saved::Deleted)) => add_cookie(response, removal_cookie(&store.settings)),
            Ok(Ok(Saved::Stored {
                new_token,
                expires_at,
            })) => {
                if let Some(token) = new_token.or(cookie_token) {
                    let max_age = persistent.then(|| expires_at - now);
                    add_cookie(response, session_cookie(&store.settings, &token, max_age));
                }
            }
            Ok(Err(SaveError { error, deleted })) => {
                fail(response, &Error::from(error), &store.settings, deleted);
            }
            Err(error) => fail(response, &error, &store.settings, false),
        }
    }
}

/// Loads the session named by the request's cookie. Unknown, expired,
/// absolutely timed out, corrupt or oversized rows are never adopted: the
/// request starts a fresh session. A cookie that is not a token never reaches
/// the database.
pub(crate) async fn load(request: &Request<'_>, store: &Store) -> Loaded {
    let client = store
        .settings
        .record_client
        .then(|| Client::new(request.client_ip(), request.headers().get_one("User-Agent")));
    let Some(token) = token_from_cookies(request, &store.settings.cookie_name) else {
        return Loaded::Ready(Mutex::new(State::fresh(client)));
    };
    let id = token.public_id();
    let manager = store.manager.clone();
    match run_blocking(move || manager.load(&id)).await {
        Ok(Some(row)) if within_absolute_timeout(&row, &store.settings, store.manager.now()) => {
            Loaded::Ready(Mutex::new(State::from_row(row, token, client)))
        }
        Ok(_) => Loaded::Ready(Mutex::new(State::fresh(client))),
        Err(Error::Store(error))
            if matches!(
                *error,
                shared_model::Error::CorruptData(_) | shared_model::Error::TooLarge { .. }
            ) =>
        {
            log::warn!("sessions: not adopting session {}…: {error}", id.short());
            Loaded::Ready(Mutex::new(State::fresh(client)))
        }
        Err(error) => {
            log::error!("sessions: cannot load a session: {error}");
            Loaded::Failed(error)
        }
    }
}

/// The first well-formed session token among the cookies named `name`, in
/// header order (several `Cookie` headers and repeated names included). Values
/// are taken verbatim: no percent-decoding, no quotes. Without a `Cookie` header
/// (Rocket's local test client), the cookie jar is read instead.
fn token_from_cookies(request: &Request<'_>, name: &str) -> Option<SessionToken> {
    if !request.headers().contains("Cookie") {
        return request.cookies().get(name)?.value().parse().ok();
    }
    request
        .headers()
        .get("Cookie")
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            // Cookie headers separate pairs with `; ` (RFC 6265: spaces and tabs).
            (key.trim_matches([' ', '\t']) == name).then(|| value.trim_matches([' ', '\t']))
        })
        .find_map(|value| value.parse::<SessionToken>().ok())
}

/// Adds `Cookie` to the response's `Vary` unless it is there (or `*`).
fn vary_on_cookie(response: &mut Response<'_>) {
    let covered = response.headers().get("Vary").any(|value| {
        value
            .split(',')
            .any(|name| name.trim() == "*" || name.trim().eq_ignore_ascii_case("cookie"))
    });
    if !covered {
        response.adjoin_header(Header::new("Vary", "Cookie"));
    }
}

/// What the end-of-request writes did.
enum Saved {
    /// Nothing was written (or a renewal found the row gone).
    Nothing,
    /// The session was deleted and no new one stored.
    Deleted,
    /// The session row now lives until `expires_at`.
    Stored {
        /// The token the browser must be given (a new session, a cycled id).
        new_token: Option<SessionToken>,
        expires_at: DateTime<Utc>,
    },
}

/// A failed end-of-request write, and whether a logout's delete had already
/// committed (the old session is gone even though the new one was not stored).
struct SaveError {
    error: shared_model::Error,
    deleted: bool,
}

/// Carries out a plan: the delete first (logout), then the write.
fn execute(manager: &SessionManager, plan: Plan) -> Result<Saved, SaveError> {
    let mut deleted = false;
    if let Some(id) = plan.delete {
        manager
            .logout(&id)
            .map_err(|error| SaveError { error, deleted })?;
        deleted = true;
    }
    let failed = |error| SaveError { error, deleted };
    Ok(match plan.write {
        Write::Nothing if deleted => Saved::Deleted,
        Write::Nothing => Saved::Nothing,
        Write::Create {
            token,
            data,
            user_id,
            expires_at,
            timeout_seconds,
            client,
        } => {
            let new = NewSession {
                data,
                user_id: user_id.as_deref(),
                expires_at,
                timeout_seconds,
                client: client.as_ref(),
            };
            let created = manager.create(&token, new).map_err(failed)?;
            Saved::Stored {
                new_token: Some(token),
                expires_at: created.expires_at,
            }
        }
        Write::Apply {
            id,
            changes,
            new_token,
            expires_at,
        } => {
            let written = manager.apply(&id, &changes, expires_at).map_err(failed)?;
            Saved::Stored {
                new_token,
                expires_at: written.expires_at,
            }
        }
        Write::Touch {
            id,
            expires_at,
            client,
        } => {
            if manager
                .touch(&id, expires_at, client.as_ref())
                .map_err(failed)?
            {
                Saved::Stored {
                    new_token: None,
                    expires_at,
                }
            } else {
                Saved::Nothing
            }
        }
    })
}

/// The session cookie with every configured attribute.
fn cookie_base(settings: &Settings, value: String) -> Cookie<'static> {
    let mut cookie = Cookie::build((settings.cookie_name.clone(), value))
        .path(settings.cookie_path.clone())
        .secure(settings.cookie_secure)
        .http_only(settings.cookie_http_only)
        .same_site(match settings.cookie_same_site {
            SameSite::Strict => rocket::http::SameSite::Strict,
            SameSite::Lax => rocket::http::SameSite::Lax,
            SameSite::None => rocket::http::SameSite::None,
        })
        .build();
    if let Some(domain) = &settings.cookie_domain {
        cookie.set_domain(domain.clone());
    }
    cookie
}

/// The session cookie; with `max_age` (a persistent or remembered session) it
/// outlives the browser session.
fn session_cookie(
    settings: &Settings,
    token: &SessionToken,
    max_age: Option<chrono::Duration>,
) -> Cookie<'static> {
    let mut cookie = cookie_base(settings, token.expose_secret().to_owned());
    if let Some(max_age) = max_age {
        let seconds = max_age.num_seconds().max(0);
        cookie.set_max_age(rocket::time::Duration::seconds(seconds));
    }
    cookie
}

/// One background purge: expired sessions, then (when auditing) events older
/// than the retention. Returns how many of each went.
fn purge(
    manager: &SessionManager,
    retention: Option<chrono::Duration>,
) -> shared_model::Result<(u64, u64)> {
    let sessions = manager.purge_expired(shared_model::DEFAULT_PURGE_BATCH)?;
    let events = match retention {
        Some(retention) => {
            manager.purge_events(manager.now() - retention, shared_model::DEFAULT_PURGE_BATCH)?
        }
        None => 0,
    };
    Ok((sessions, events))
}

/// A cookie that makes the browser drop the session cookie: same name, Path,
/// Domain, Secure, HttpOnly and SameSite, empty value, expired.
fn removal_cookie(settings: &Settings) -> Cookie<'static> {
    let mut cookie = cookie_base(settings, String::new());
    cookie.make_removal();
    cookie
}

/// Adds `Set-Cookie` directly (cookies added to the jar in `on_response` are
/// dropped) and keeps the response out of every cache, whatever the handler
/// asked for: a cached response would hand the cookie to someone else.
fn add_cookie(response: &mut Response<'_>, cookie: Cookie<'static>) {
    response.adjoin_header(cookie);
    response.set_header(Header::new("Cache-Control", "no-store"));
}

/// Replaces the handler's status and body when the session could not be
/// saved: the client must not believe a change was stored. Headers other
/// fairings set (CORS, HSTS) stay; a session cookie the handler set goes. When
/// a logout's delete went through (`deleted`), the browser is told to drop its
/// cookie and the body says the session ended.
fn fail(response: &mut Response<'_>, error: &Error, settings: &Settings, deleted: bool) {
    let status = error.status();
    match status {
        Status::Conflict => {
            log::warn!("sessions: not saved, the session ended during the request: {error}");
        }
        Status::PayloadTooLarge => log::warn!("sessions: not saved: {error}"),
        _ => log::error!("sessions: could not save the session: {error}"),
    }
    let body = match status {
        _ if deleted => "signed out; what this request stored afterwards was not saved\n",
        Status::Conflict => "session ended during the request; nothing was saved\n",
        Status::PayloadTooLarge => "session data over the size limit; nothing was saved\n",
        Status::ServiceUnavailable => "session store unavailable; nothing was saved\n",
        _ => "could not save the session\n",
    };
    let own_cookie = format!("{}=", settings.cookie_name);
    let other_cookies: Vec<String> = response
        .headers()
        .get("Set-Cookie")
        .filter(|cookie| !cookie.trim_start().starts_with(&own_cookie))
        .map(str::to_owned)
        .collect();
    response.remove_header("Set-Cookie");
    for cookie in other_cookies {
        response.adjoin_header(Header::new("Set-Cookie", cookie));
    }
    if deleted {
        response.adjoin_header(removal_cookie(settings));
    }
    response.set_status(status);
    response.set_header(ContentType::Plain);
    response.set_header(Header::new("Cache-Control", "no-store"));
    response.set_sized_body(body.len(), std::io::Cursor::new(body));
}
