//! The app the behaviour suites drive, and a harness around Rocket's local client.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)] // test code

use chrono::{DateTime, TimeZone, Utc};
use rocket::fairing::AdHoc;
use rocket::figment::providers::Serialized;
use rocket::form::FromForm;
use rocket::http::{ContentType, Cookie, CookieJar, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::serde::json::{json, Json, Value};
use rocket::{delete, get, post, put, routes, Build, Rocket};
use session_fairing::{CsrfForm, CsrfHeader, CsrfToken, Session, Sessions};
use shared_model::test_util::TestDatabase;
use shared_model::{
    ManualClock, SessionFilter, SessionId, SessionManager, SessionToken, StatementCounts,
};

/// The public id of the session a cookie token names.
pub fn pid(token: &str) -> SessionId {
    token
        .parse::<SessionToken>()
        .unwrap_or_else(|_| panic!("not a token: {token:?}"))
        .public_id()
}

// ---- the app under test ----------------------------------------------------

#[get("/info")]
pub fn info(session: Session<'_>) -> Json<Value> {
    Json(json!({
        "id": session.id().map(|id| id.to_string()),
        "is_new": session.is_new(),
        "is_modified": session.is_modified(),
        "user_id": session.user_id(),
        "keys": session.keys(),
        "expires_at": session.expires_at().to_rfc3339(),
        "data": session.data(),
    }))
}

#[get("/get/<key>")]
fn get_key(session: Session<'_>, key: &str) -> Option<Json<Value>> {
    session.get::<Value>(key).map(Json)
}

#[get("/typed/<key>")]
fn typed(session: Session<'_>, key: &str) -> String {
    match session.try_get::<i64>(key) {
        Ok(Some(n)) => format!("int {n}"),
        Ok(None) => "absent".into(),
        Err(e) => format!("error {e}"),
    }
}

#[put("/set/<key>", data = "<value>")]
pub fn set_key(
    session: Session<'_>,
    key: &str,
    value: Json<Value>,
) -> Result<Status, session_fairing::Error> {
    session.insert(key, &value.into_inner())?;
    Ok(Status::NoContent)
}

#[delete("/remove/<key>")]
fn remove_key(session: Session<'_>, key: &str) -> Json<Value> {
    Json(json!({"removed": session.remove(key), "contains": session.contains_key(key)}))
}

#[post("/clear")]
fn clear(session: Session<'_>) -> Status {
    session.clear();
    Status::NoContent
}

#[post("/logout?<then>")]
fn logout(session: Session<'_>, then: Option<&str>) -> Json<Value> {
    session.delete();
    if let Some(key) = then {
        session.insert(key, &true).unwrap();
    }
    Json(json!({"is_new": session.is_new(), "keys": session.keys()}))
}

#[post("/login/<user>")]
fn login(session: Session<'_>, user: &str) -> Status {
    session.login(user);
    session.insert("username", user).unwrap();
    Status::NoContent
}

#[post("/cycle")]
fn cycle(session: Session<'_>) -> Status {
    session.cycle_id();
    Status::NoContent
}

#[post("/user/<user>")]
fn set_user(session: Session<'_>, user: &str) -> Status {
    if user == "none" {
        session.set_user_id(None::<String>);
    } else {
        session.set_user_id(Some(user));
    }
    Status::NoContent
}

#[post("/flash/<category>/<message>")]
fn flash(session: Session<'_>, category: &str, message: &str) -> Status {
    session.flash(message, category);
    Status::NoContent
}

#[get("/flashes")]
fn flashes(session: Session<'_>) -> Json<Value> {
    Json(json!(session.take_flashes()))
}

/// Stores too much after setting two cookies of its own through the jar: one of
/// another name, one with the session cookie's name.
#[post("/big-with-cookies")]
fn big_with_cookies(session: Session<'_>, jar: &CookieJar<'_>) -> Status {
    jar.add(Cookie::new("theme", "dark"));
    jar.add(Cookie::new("session_id", "set-by-the-handler"));
    session.insert("big", &"x".repeat(500)).unwrap();
    Status::NoContent
}

/// Logs out, then stores too much in the new session.
#[post("/logout-then-big")]
fn logout_then_big(session: Session<'_>) -> Status {
    session.delete();
    session.insert("big", &"x".repeat(500)).unwrap();
    Status::NoContent
}

/// The late write of the deterministic logout race: loads the session, tells
/// the test, waits until the test has logged the session out, then writes back
/// the user it loaded.
#[post("/carry-user-after-gate")]
async fn carry_user_after_gate(session: Session<'_>, gate: &rocket::State<Gate>) -> Status {
    let user = session.user_id();
    gate.loaded.notify_one();
    gate.release.notified().await;
    session.insert("user_id", &user).unwrap();
    Status::NoContent
}

/// Two signals between a test and `carry_user_after_gate`.
#[derive(Default)]
pub struct Gate {
    pub loaded: rocket::tokio::sync::Notify,
    pub release: rocket::tokio::sync::Notify,
}

#[post("/write-then-fail")]
fn write_then_fail(session: Session<'_>) -> Status {
    session.insert("doomed", &1).unwrap();
    Status::InternalServerError
}

#[post("/admin/logout-everywhere/<user>")]
async fn logout_everywhere(
    manager: &rocket::State<SessionManager>,
    _csrf: CsrfHeader,
    user: &str,
) -> String {
    let (manager, user) = (manager.inner().clone(), user.to_owned());
    let removed = rocket::tokio::task::spawn_blocking(move || manager.delete_for_user(&user))
        .await
        .unwrap()
        .unwrap();
    removed.to_string()
}

#[post("/remember/<days>")]
fn remember(session: Session<'_>, days: u64) -> Status {
    session.remember(std::time::Duration::from_secs(days * 24 * 3600));
    Status::NoContent
}

/// "Remember me" ticked on a login form: remember, then log in.
#[post("/login-remembered/<user>")]
fn login_remembered(session: Session<'_>, user: &str) -> Status {
    session.remember(std::time::Duration::from_secs(30 * 24 * 3600));
    session.login(user);
    Status::NoContent
}

#[get("/devices")]
async fn devices(session: Session<'_>) -> Result<Json<Value>, session_fairing::Error> {
    Ok(Json(json!(session.devices().await?)))
}

#[post("/revoke/<id>")]
async fn revoke(session: Session<'_>, id: &str) -> Result<String, session_fairing::Error> {
    let id: SessionId = id.parse().unwrap();
    Ok(session.revoke(id).await?.to_string())
}

#[post("/revoke-others")]
async fn revoke_others(session: Session<'_>) -> Result<String, session_fairing::Error> {
    Ok(session.revoke_others().await?.to_string())
}

#[get("/plain")]
fn plain() -> &'static str {
    "no session here"
}

/// Re-asserts the user the loaded session had: a late write that carries the
/// authentication state it read.
#[post("/carry-user")]
fn carry_user(session: Session<'_>) -> Status {
    let user = session.user_id();
    session.insert("user_id", &user).unwrap();
    session.insert("carried", &true).unwrap();
    Status::NoContent
}

#[get("/csrf")]
fn csrf_token(csrf: CsrfToken<'_>) -> String {
    csrf.value()
}

#[derive(FromForm)]
pub struct Note {
    note: String,
}

#[post("/note", data = "<form>")]
fn note_form(session: Session<'_>, form: CsrfForm<Note>) -> Status {
    session.insert("note", &form.note).unwrap();
    Status::NoContent
}

#[post("/note-header/<note>")]
fn note_header(session: Session<'_>, _csrf: CsrfHeader, note: &str) -> Status {
    session.insert("note", note).unwrap();
    Status::NoContent
}

#[post("/login-then-csrf/<user>")]
fn login_then_csrf(session: Session<'_>, csrf: CsrfToken<'_>, user: &str) -> String {
    session.login(user);
    csrf.value()
}

#[derive(rocket::Responder)]
struct Cached {
    body: &'static str,
    cache_control: Header<'static>,
}

#[get("/cached")]
fn cached(session: Session<'_>) -> Cached {
    session.insert("seen", &true).unwrap();
    Cached {
        body: "cached",
        cache_control: Header::new("Cache-Control", "public, max-age=3600"),
    }
}

pub fn app(url: &str, extra: Value) -> Rocket<Build> {
    let mut section =
        json!({"timeout_minutes": 30, "database_url": url, "purge_interval_seconds": 0});
    section
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    let figment = rocket::Config::figment()
        .merge(Serialized::default("session", section))
        .merge(("log_level", "critical"));
    rocket::custom(figment)
        .manage(Gate::default())
        // Another fairing's headers, set before ours run: a failed save keeps them.
        .attach(AdHoc::on_response("HSTS", |_, response| {
            Box::pin(async move {
                response.set_header(Header::new("Strict-Transport-Security", "max-age=60"));
            })
        }))
        .mount(
            "/",
            routes![
                info,
                get_key,
                typed,
                set_key,
                remove_key,
                clear,
                logout,
                login,
                cycle,
                set_user,
                flash,
                flashes,
                write_then_fail,
                plain,
                cached,
                logout_everywhere,
                carry_user,
                csrf_token,
                note_form,
                note_header,
                login_then_csrf,
                big_with_cookies,
                logout_then_big,
                carry_user_after_gate,
                remember,
                login_remembered,
                devices,
                revoke,
                revoke_others
            ],
        )
}

pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap()
}

pub struct Harness {
    pub client: Client,
    pub clock: ManualClock,
}

impl Harness {
    pub async fn new(db: &TestDatabase, extra: Value) -> Self {
        let clock = ManualClock::new(start());
        let rocket = app(db.url(), extra).attach(
            Sessions::fairing()
                .with_clock(clock.clone())
                .count_statements(),
        );
        let client = Client::untracked(rocket).await.expect("launch");
        Self { client, clock }
    }

    pub fn manager(&self) -> &SessionManager {
        self.client.rocket().state::<SessionManager>().unwrap()
    }

    pub fn counts(&self) -> StatementCounts {
        self.manager().database().statement_counts()
    }

    pub fn rows(&self) -> u64 {
        self.manager().count(&SessionFilter::default()).unwrap()
    }

    pub async fn request(
        &self,
        method: rocket::http::Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.request_with(method, path, cookie, body, &[]).await
    }

    /// A request with extra headers (`Origin`, `Sec-Fetch-Site`, ...).
    pub async fn request_with(
        &self,
        method: rocket::http::Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.client.req(method, path.to_owned());
        if let Some(cookie) = cookie {
            request = request.header(Header::new("Cookie", cookie.to_owned()));
        }
        if let Some(body) = body {
            request = request.header(ContentType::JSON).body(body.to_string());
        }
        for (name, value) in headers {
            request = request.header(Header::new(name.to_string(), value.to_string()));
        }
        Reply::read(request.dispatch().await).await
    }

    /// A form post (`application/x-www-form-urlencoded`) with extra headers.
    pub async fn post_form(
        &self,
        path: &str,
        id: Option<&str>,
        form: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .client
            .post(path.to_owned())
            .header(ContentType::Form)
            .body(form);
        if let Some(id) = id {
            request = request.header(Header::new("Cookie", format!("session_id={id}")));
        }
        for (name, value) in headers {
            request = request.header(Header::new(name.to_string(), value.to_string()));
        }
        Reply::read(request.dispatch().await).await
    }

    /// The stored session a cookie token names (valid ones only).
    pub fn stored(&self, token: &str) -> Option<shared_model::Session> {
        self.manager().load(&pid(token)).unwrap()
    }

    pub async fn get(&self, path: &str, id: Option<&str>) -> Reply {
        self.request(
            rocket::http::Method::Get,
            path,
            id.map(|id| format!("session_id={id}")).as_deref(),
            None,
        )
        .await
    }

    pub async fn post(&self, path: &str, id: Option<&str>) -> Reply {
        self.request(
            rocket::http::Method::Post,
            path,
            id.map(|id| format!("session_id={id}")).as_deref(),
            None,
        )
        .await
    }

    pub async fn put(&self, path: &str, id: Option<&str>, body: Value) -> Reply {
        self.request(
            rocket::http::Method::Put,
            path,
            id.map(|id| format!("session_id={id}")).as_deref(),
            Some(body),
        )
        .await
    }
}

/// What a test looks at in a response.
#[derive(Debug)]
pub struct Reply {
    pub status: Status,
    pub set_cookies: Vec<String>,
    pub cache_control: Option<String>,
    pub vary: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub async fn read(response: LocalResponse<'_>) -> Self {
        let status = response.status();
        let set_cookies = response
            .headers()
            .get("Set-Cookie")
            .map(str::to_owned)
            .collect();
        let cache_control = response
            .headers()
            .get_one("Cache-Control")
            .map(str::to_owned);
        let vary = response.headers().get("Vary").map(str::to_owned).collect();
        let headers = response
            .headers()
            .iter()
            .map(|header| (header.name().to_string(), header.value().to_owned()))
            .collect();
        let body = response.into_string().await.unwrap_or_default();
        Self {
            status,
            set_cookies,
            cache_control,
            vary,
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The header's value, if the response has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The session token the response sets, if it sets one (not a removal).
    pub fn new_id(&self) -> Option<String> {
        self.set_cookies.iter().find_map(|cookie| {
            let value = cookie.strip_prefix("session_id=")?.split(';').next()?;
            (!value.is_empty()).then(|| value.to_owned())
        })
    }

    pub fn removes_cookie(&self) -> bool {
        self.set_cookies
            .iter()
            .any(|cookie| cookie.starts_with("session_id=;") && cookie.contains("Max-Age=0"))
    }
}

pub fn attributes(cookie: &str) -> Vec<String> {
    let mut parts: Vec<String> = cookie.split("; ").skip(1).map(str::to_owned).collect();
    parts.retain(|part| !part.starts_with("Expires="));
    parts.sort();
    parts
}
