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

use crate::config::{Config, SameSite, Settings};
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
/// Configuration comes from the `session` section of Rocket's figment, or from
/// a [`Config`] given to [`custom`](Self::custom). Attach it once; the order
/// among other fairings does not matter.
///
/// At ignite it opens the database and manages, as Rocket state, a
/// [`SessionManager`] (handlers take `&State<SessionManager>`; code holding the
/// `Rocket` calls `rocket.state::<SessionManager>()`) and the [`Config`] it
/// runs with (`rocket.state::<Config>()`, e.g. to follow its `run_migrations`).
///
/// # Warning
///
/// `&State<SessionManager>` is plain managed state: unlike the guards of this
/// crate it makes no origin check. A route that changes sessions through the
/// manager must also take [`CsrfHeader`](crate::CsrfHeader) or
/// [`CsrfForm`](crate::CsrfForm), which make the origin check and require the
/// session's CSRF token; otherwise another site can make a signed-in admin's
/// browser send it.
pub struct Sessions {
    config: Option<Config>,
    clock: Option<Arc<dyn Clock>>,
    count_statements: bool,
}

impl Sessions {
    /// The fairing, configured from the `session` section of Rocket's figment
    /// at ignite.
    #[must_use]
    pub fn fairing() -> Self {
        Self {
            config: None,
            clock: None,
            count_statements: false,
        }
    }

    /// The fairing with `config`, for apps that build their configuration in
    /// code; the figment's `session` section is not read. The figment still
    /// gives the profile (the `cookie_secure` default), `workers` (the pool
    /// size default) and the `databases.<name>` section `config.database`
    /// names. See [`Config`] for an example.
    #[must_use]
    pub fn custom(config: Config) -> Self {
        Self {
            config: Some(config),
            ..Self::fairing()
        }
    }

    /// Reads "now" from `clock` instead of the system clock (for tests of
    /// expiry, with [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Counts the pool's statements by kind, for tests and benchmarks: read
    /// them with `manager.database().statement_counts()`. Costs a few µs per
    /// statement.
    #[must_use]
    pub fn count_statements(mut self) -> Self {
        self.count_statements = true;
        self
    }
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

/// Runs blocking [`SessionManager`] work off the async executor (the manager's
/// methods block on the database), for handlers that take
/// `&State<SessionManager>`.
///
/// A panic in `work` is resumed in the caller's task: in a handler or guard,
/// Rocket answers `500`; elsewhere (an `AdHoc` fairing, a spawned task) it
/// unwinds like any panic there.
///
/// # Errors
///
/// [`Error::Store`] with what `work` returned; [`Error::ShuttingDown`] when the
/// runtime dropped the task before it ran.
///
/// # Examples
///
/// ```rust
/// # #[macro_use] extern crate rocket;
/// use rocket::State;
/// use session_fairing::{blocking, CsrfHeader, Error, SessionManager};
///
/// /// "Log out everywhere" for a user, from an admin page's script.
/// #[post("/admin/users/<user>/sign-out")]
/// async fn sign_out(manager: &State<SessionManager>, _csrf: CsrfHeader, user: String) -> Result<String, Error> {
///     let manager = manager.inner().clone();
///     let removed = blocking(move || manager.delete_for_user(&user)).await?;
///     Ok(format!("{removed} sessions signed out"))
/// }
/// ```
pub async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    F: FnOnce() -> shared_model::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match rocket::tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(Error::from),
        Err(join_error) => match join_error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => Err(Error::ShuttingDown),
        },
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
        let config = match &self.config {
            Some(config) => {
                if rocket.figment().contains("session") {
                    tracing::warn!(
                        "sessions: configured in code (`Sessions::custom`); the `session` \
                         section of Rocket.toml / ROCKET_SESSION is not read"
                    );
                }
                Ok(config.clone())
            }
            None => Config::from_figment(rocket.figment()),
        };
        let resolved = config.and_then(|config| {
            Settings::resolve(config.clone(), rocket.figment()).map(|settings| (config, settings))
        });
        let (config, settings) = match resolved {
            Ok(resolved) => resolved,
            Err(error) => {
                tracing::error!("{error}");
                return Err(rocket);
            }
        };
        let url = settings.database_url.clone();
        let (pool_size, pool_timeout) = (settings.pool_size, settings.pool_timeout);
        let durable = settings.durable_commits;
        let count_statements = self.count_statements;
        let (migrate, audit) = (settings.run_migrations, settings.audit);
        let opened =
            rocket::tokio::task::spawn_blocking(move || -> shared_model::Result<Database> {
                let builder = Database::builder(&url)
                    .pool_size(pool_size)
                    .connection_timeout(pool_timeout)
                    .busy_timeout(pool_timeout)
                    .durable_commits(durable)
                    .count_statements(count_statements);
                if migrate {
                    let db = builder.connect()?;
                    for version in db.run_migrations()? {
                        tracing::info!("sessions: applied migration {version}");
                    }
                    Ok(db)
                } else {
                    // The app may start before its database (requests get 503 until
                    // it is up); one that is up must have tables we can use.
                    let db = builder.connect_lazy()?;
                    check_schema(&db, audit)?;
                    Ok(db)
                }
            })
            .await;
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(error)) => {
                tracing::error!(
                    "sessions: cannot open {}: {error}",
                    redact_url(&settings.database_url)
                );
                return Err(rocket);
            }
            Err(join_error) => {
                tracing::error!(
                    "sessions: opening {} did not finish: {join_error}",
                    redact_url(&settings.database_url)
                );
                return Err(rocket);
            }
        };
        tracing::info!("sessions: {} at {}", db.backend(), db.display_url());
        if !settings.durable_commits {
            if db.backend() == shared_model::Backend::Postgres {
                tracing::warn!(
                    "sessions: durable_commits = false: a database crash loses the last \
                     fraction of a second of session writes"
                );
            } else {
                tracing::warn!(
                    "sessions: durable_commits = false has no effect on {}",
                    db.backend()
                );
            }
        }
        let mut manager = SessionManager::new(db)
            .with_max_data_bytes(settings.max_data_bytes)
            .with_audit_if(settings.audit, Actor::App);
        if let Some(cap) = settings.max_sessions_per_user {
            manager = manager.with_max_sessions_per_user(cap);
        }
        if let Some(clock) = &self.clock {
            manager = manager.with_clock(Arc::clone(clock));
        }
        // Handlers reach the manager as `&State<SessionManager>`; our guards
        // read the private `Store` (a clone of it, sharing the pool).
        Ok(rocket
            .manage(manager.clone())
            .manage(config)
            .manage(Store { manager, settings }))
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
                // Not `blocking`: a panicking purge must not end the loop.
                match rocket::tokio::task::spawn_blocking(move || purge(&manager, retention)).await
                {
                    Ok(Ok((0, 0))) => {}
                    Ok(Ok((sessions, events))) => tracing::info!(
                        "sessions: purged {sessions} expired sessions and {events} old audit events"
                    ),
                    Ok(Err(error)) => {
                        tracing::warn!("sessions: purge failed (will retry): {error}")
                    }
                    Err(error) => {
                        tracing::error!("sessions: purge task failed (will retry): {error}")
                    }
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
        match rocket::tokio::task::spawn_blocking(move || execute(&manager, plan)).await {
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
            Err(join_error) if join_error.is_cancelled() => {
                fail(response, &Error::ShuttingDown, &store.settings, false);
            }
            Err(join_error) => {
                // A panic while saving: a bug. Answered here, since unwinding
                // out of a response fairing would drop the connection.
                tracing::error!("sessions: the save panicked: {join_error}");
                refuse(
                    response,
                    Status::InternalServerError,
                    &store.settings,
                    false,
                );
            }
        }
    }
}

/// With `run_migrations = false`: the tables the fairing writes must be there,
/// with columns it can read. A database that cannot be reached yet is not an
/// error (requests get `503` until it is up).
fn check_schema(db: &Database, audit: bool) -> shared_model::Result<()> {
    let report = match db.inspect_schema() {
        Ok(report) => report,
        Err(error) if error.is_unavailable() => {
            tracing::warn!("sessions: cannot check the sessions table yet: {error}");
            return Ok(());
        }
        Err(error) => return Err(error),
    };
    let mut problems = Vec::new();
    if !report.device_columns {
        problems.push(
            "the devices columns (ip_address, user_agent, last_seen_at, timeout_seconds) are missing"
                .to_owned(),
        );
    }
    if audit && !report.events_table {
        problems.push("`audit = true` needs the session_events table, which is missing".to_owned());
    }
    if !problems.is_empty() {
        return Err(shared_model::Error::Schema { problems });
    }
    for warning in report.warnings() {
        tracing::warn!("sessions: {warning}");
    }
    Ok(())
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
    // SQLite in WAL mode with idle connections to spare reads in place (a
    // primary-key lookup that waits for no writer; see `try_load_now` for
    // when it can still wait); everything else goes to a blocking thread.
    let loaded = match store.manager.try_load_now(&id) {
        Some(loaded) => loaded.map_err(Error::from),
        None => {
            let manager = store.manager.clone();
            blocking(move || manager.load(&id)).await
        }
    };
    match loaded {
        Ok(Some(row)) if within_absolute_timeout(&row, &store.settings, store.manager.now()) => {
            Loaded::Ready(Mutex::new(State::from_row(row, token, client)))
        }
        Ok(_) => Loaded::Ready(Mutex::new(State::fresh(client))),
        Err(Error::Store(
            error @ (shared_model::Error::CorruptData(_) | shared_model::Error::TooLarge { .. }),
        )) => {
            tracing::warn!("sessions: not adopting session {}…: {error}", id.short());
            Loaded::Ready(Mutex::new(State::fresh(client)))
        }
        Err(error) => {
            tracing::error!("sessions: cannot load a session: {error}");
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
            changes,
            new_token,
            expires_at,
            loaded,
        } => {
            let written = manager
                .apply_loaded(*loaded, &changes, expires_at)
                .map_err(failed)?;
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
    let sessions = match manager.purge_expired(shared_model::DEFAULT_PURGE_BATCH) {
        Ok(sessions) => sessions,
        // Another app instance (or the inspector) is purging this database.
        Err(shared_model::Error::PurgeRunning) => {
            tracing::debug!("sessions: another process is purging; skipped this round");
            0
        }
        Err(error) => return Err(error),
    };
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
            tracing::warn!("sessions: not saved, the session ended during the request: {error}");
        }
        Status::PayloadTooLarge => tracing::warn!("sessions: not saved: {error}"),
        _ => tracing::error!("sessions: could not save the session: {error}"),
    }
    refuse(response, status, settings, deleted);
}

/// [`fail`]'s response: `status`, a plain-text body saying what was not saved,
/// no session cookie (a removal cookie when `deleted`).
fn refuse(response: &mut Response<'_>, status: Status, settings: &Settings, deleted: bool) {
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
