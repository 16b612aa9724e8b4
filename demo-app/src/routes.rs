//! The routes: the seed's login/profile/logout/flash examples, a cart,
//! "remember me" and the "Your devices" page, a small JSON API and a health
//! check. Handlers touch only the session (the fairing loads and saves it, and
//! lists and signs out the user's other sessions); only `POST /login` queries
//! the database itself.
//!
//! Cross-site request forgery: every state-changing route takes a guard of
//! `session_fairing` (`Session`, `CsrfForm`), which refuses a request a browser
//! marks as coming from another site. HTML forms also carry the session's
//! token (a hidden field rendered from `CsrfToken`) and their handlers take
//! `CsrfForm`, which refuses a post with a stored session but without the
//! token. The JSON API needs no token and relies on the origin check (a form
//! can reach its `PUT`/`DELETE` routes through Rocket's `_method` field, but
//! carries its own site's `Origin`).

use chrono::SecondsFormat;
use maud::Markup;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::{self, Redirect, Responder};
use rocket::serde::json::{json, Json, Value};
use rocket::{
    catch, catchers, delete, get, post, put, routes, uri, Catcher, Request, Route, State,
};
use session_fairing::{CsrfForm, CsrfToken, Device, Flash, NoFields, Session, SessionId};

use crate::users::Users;
use crate::views::{self, Nav, Summary};

/// The longest cart item name accepted.
pub const MAX_ITEM_CHARS: usize = 80;
/// The most items a cart holds (the session's data has a size limit).
pub const MAX_CART_ITEMS: usize = 50;

const USER_ID: &str = "user_id";
const USERNAME: &str = "username";
const IS_AUTHENTICATED: &str = "is_authenticated";
const CART: &str = "cart";
const COUNTER: &str = "counter";
const LAST_SEEN: &str = "last_seen";

/// What `/profile` tells a visitor who is not signed in.
const PROFILE_NOTICE: &str = "Please log in to view your profile.";
/// What `/devices` tells a visitor who is not signed in.
const DEVICES_NOTICE: &str = "Please log in to see your devices.";

/// How long "Remember me" keeps a session signed in without use, in days
/// (the fairing caps it at `remember_max_days`, 30 by default).
pub const REMEMBER_DAYS: u64 = 30;

/// Keys only `/login` and `/logout` may change: writing them through the API
/// would let anyone claim to be logged in.
const RESERVED_KEYS: [&str; 3] = [USER_ID, USERNAME, IS_AUTHENTICATED];

pub fn routes() -> Vec<Route> {
    routes![
        healthz,
        home,
        login_form,
        login_submit,
        profile,
        logout,
        cart_add,
        cart_page,
        devices_page,
        device_sign_out,
        devices_sign_out_others,
        api_session,
        api_counter,
        api_heartbeat,
        api_put_key,
        api_delete_key,
        api_devices,
        api_device_revoke,
        api_devices_sign_out_others,
    ]
}

pub fn catchers() -> Vec<Catcher> {
    catchers![any_error]
}

/// The logged-in username, as the seed decides it: `is_authenticated` and a
/// `username` in the session.
fn logged_in(session: &Session<'_>) -> Option<String> {
    if session.get::<bool>(IS_AUTHENTICATED) == Some(true) {
        session.get::<String>(USERNAME)
    } else {
        None
    }
}

/// The signed-in username, when the session also carries the login's
/// `user_id` column: what the devices routes need (the fairing lists and
/// signs out sessions by that column).
fn signed_in_user(session: &Session<'_>) -> Option<String> {
    logged_in(session).filter(|_| session.user_id().is_some())
}

/// Where a page for signed-in users sends a guest: the login form with
/// `notice`. A visitor with a stored session gets it as a flash; one without
/// gets it through the address (`from`), so viewing a page stores nothing.
fn sign_in_first(session: &Session<'_>, from: &'static str, notice: &str) -> Box<Redirect> {
    if session.is_new() {
        Box::new(Redirect::to(uri!(login_form(from = Some(from)))))
    } else {
        session.flash(notice, "warning");
        Box::new(Redirect::to(uri!(login_form(from = None::<&str>))))
    }
}

/// The navigation bar for `username`; a signed-in user's has the logout form,
/// which needs the session's CSRF token.
fn nav<'a>(username: Option<&'a str>, csrf_token: &'a str) -> Nav<'a> {
    username.map_or(Nav::Guest, |username| Nav::User {
        username,
        csrf_token,
    })
}

fn expiry(session: &Session<'_>) -> String {
    session
        .expires_at()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// A server-side failure; the catcher renders the page. Logged once, when made.
#[derive(Debug)]
pub struct Failure(Status);

impl From<crate::Error> for Failure {
    fn from(error: crate::Error) -> Self {
        log::error!("demo: {error}");
        Self(if error.is_unavailable() {
            Status::ServiceUnavailable
        } else {
            Status::InternalServerError
        })
    }
}

impl From<session_fairing::Error> for Failure {
    fn from(error: session_fairing::Error) -> Self {
        log::error!("demo: {error}");
        Self(error.status())
    }
}

impl<'r> Responder<'r, 'static> for Failure {
    fn respond_to(self, _request: &'r Request<'_>) -> response::Result<'static> {
        Err(self.0)
    }
}

/// For load balancers and uptime checks: no session guard, so it answers
/// without touching the database, whatever cookie comes along.
#[get("/healthz")]
fn healthz() -> &'static str {
    "ok"
}

#[get("/")]
fn home(session: Session<'_>, csrf: CsrfToken<'_>) -> Markup {
    let flashes = session.take_flashes();
    let username = logged_in(&session);
    let summary = Summary {
        stored: !session.is_new(),
        user_id: session.user_id(),
        cart_items: session
            .get::<Vec<String>>(CART)
            .map_or(0, |cart| cart.len()),
        counter: session.get::<i64>(COUNTER),
        expires_at: expiry(&session),
    };
    let csrf_token = csrf.value();
    views::home(nav(username.as_deref(), &csrf_token), &flashes, &summary)
}

/// `from=profile` or `from=devices`: a guest without a stored session was
/// sent here from that page; the notice is shown from the address, so that
/// page view creates no session row.
#[get("/login?<from>")]
fn login_form(session: Session<'_>, csrf: CsrfToken<'_>, from: Option<&str>) -> Markup {
    let mut flashes = session.take_flashes();
    let notice = match from {
        Some("profile") => Some(PROFILE_NOTICE),
        Some("devices") => Some(DEVICES_NOTICE),
        _ => None,
    };
    if let Some(notice) = notice.filter(|_| flashes.is_empty()) {
        flashes.push(Flash {
            message: notice.to_owned(),
            category: "warning".to_owned(),
        });
    }
    let username = logged_in(&session);
    let csrf_token = csrf.value();
    views::login(
        nav(username.as_deref(), &csrf_token),
        &flashes,
        &csrf_token,
        "",
        false,
        None,
    )
}

/// The login form. `remember` is the "Remember me" checkbox: absent (not
/// ticked) is `false`.
#[derive(Debug, FromForm)]
struct Credentials {
    username: String,
    password: String,
    remember: bool,
}

#[derive(Responder)]
enum LoginOutcome {
    LoggedIn(Box<Redirect>),
    #[response(status = 401)]
    Refused(Markup),
}

/// `CsrfForm`: a signed-in user's session cannot be switched to another
/// account by a forged post (login CSRF). A first login, without a stored
/// session, has no token to check and relies on the origin check.
#[post("/login", data = "<form>")]
async fn login_submit(
    session: Session<'_>,
    csrf: CsrfToken<'_>,
    users: &State<Users>,
    form: CsrfForm<Credentials>,
) -> Result<LoginOutcome, Failure> {
    let Credentials {
        username,
        password,
        remember,
    } = form.into_inner();
    let typed = username.trim().to_owned();
    let Some(user) = users.authenticate(typed.clone(), password).await? else {
        let current = logged_in(&session);
        let csrf_token = csrf.value();
        return Ok(LoginOutcome::Refused(views::login(
            nav(current.as_deref(), &csrf_token),
            &[],
            &csrf_token,
            &typed,
            remember,
            Some("Invalid username or password."),
        )));
    };
    // A new id for the new privilege level: an id planted before login is worthless.
    session.login(user.id.to_string());
    session.insert(USER_ID, &user.id)?;
    session.insert(USERNAME, &user.username)?;
    session.insert(IS_AUTHENTICATED, &true)?;
    if remember {
        // Its own idle timeout and a cookie with `Max-Age`: it survives a
        // browser restart and stays signed in for 30 days without use.
        session.remember(std::time::Duration::from_secs(REMEMBER_DAYS * 24 * 60 * 60));
    }
    session.flash("Welcome back!", "success");
    Ok(LoginOutcome::LoggedIn(Box::new(Redirect::to(uri!(home)))))
}

#[get("/profile")]
fn profile(session: Session<'_>, csrf: CsrfToken<'_>) -> Result<Markup, Box<Redirect>> {
    let user_id = session.get_value(USER_ID).map(|value| match value {
        Value::String(text) => text,
        other => other.to_string(),
    });
    match (logged_in(&session), user_id) {
        (Some(username), Some(user_id)) => Ok(views::profile(
            &session.take_flashes(),
            &csrf.value(),
            &username,
            &user_id,
            &expiry(&session),
        )),
        // A visitor with a stored session gets the seed's flash; one without
        // gets it through the address, so viewing a page still stores nothing.
        _ => Err(sign_in_first(&session, "profile", PROFILE_NOTICE)),
    }
}

/// A form post (the nav's button), so a forged one is refused by `CsrfForm`:
/// logging someone out is a change they did not ask for.
#[post("/logout", data = "<_form>")]
fn logout(session: Session<'_>, _form: CsrfForm<NoFields>) -> Redirect {
    session.delete();
    // Goes into a brand-new session, so the next page can show it.
    session.flash("You have been logged out.", "info");
    Redirect::to(uri!(home))
}

#[derive(Debug, FromForm)]
struct CartItem {
    item: String,
}

#[post("/cart", data = "<form>")]
fn cart_add(session: Session<'_>, form: CsrfForm<CartItem>) -> Result<Redirect, Failure> {
    let item = form.item.trim();
    let mut cart: Vec<String> = session.get(CART).unwrap_or_default();
    if item.is_empty() {
        session.flash("Type a name to add an item to the cart.", "warning");
    } else if item.chars().count() > MAX_ITEM_CHARS {
        session.flash(
            format!("Item names are at most {MAX_ITEM_CHARS} characters."),
            "warning",
        );
    } else if cart.len() >= MAX_CART_ITEMS {
        session.flash(
            format!("Your cart is full ({MAX_CART_ITEMS} items)."),
            "warning",
        );
    } else {
        cart.push(item.to_owned());
        session.insert(CART, &cart)?;
    }
    Ok(Redirect::to(uri!(cart_page)))
}

#[get("/cart")]
fn cart_page(session: Session<'_>, csrf: CsrfToken<'_>) -> Markup {
    let flashes = session.take_flashes();
    let username = logged_in(&session);
    let items: Vec<String> = session.get(CART).unwrap_or_default();
    let csrf_token = csrf.value();
    views::cart(
        nav(username.as_deref(), &csrf_token),
        &flashes,
        &csrf_token,
        &items,
    )
}

#[derive(Responder)]
enum PageOutcome {
    Shown(Markup),
    SignInFirst(Box<Redirect>),
}

/// "Your devices": every valid session of the signed-in user, this one marked,
/// with a button to sign out each other one, or all of them.
#[get("/devices")]
async fn devices_page(session: Session<'_>, csrf: CsrfToken<'_>) -> Result<PageOutcome, Failure> {
    let Some(username) = signed_in_user(&session) else {
        return Ok(PageOutcome::SignInFirst(sign_in_first(
            &session,
            "devices",
            DEVICES_NOTICE,
        )));
    };
    let devices = session.devices().await?;
    let csrf_token = csrf.value();
    Ok(PageOutcome::Shown(views::devices(
        &session.take_flashes(),
        &csrf_token,
        &username,
        &devices,
    )))
}

/// The "Sign out" button of one device on `/devices`. An id that is not one
/// of the user's sessions (signed out meanwhile, mistyped, someone else's)
/// changes nothing and says so. This device's own id is a logout.
#[post("/devices/<session_id>/sign-out", data = "<_form>")]
async fn device_sign_out(
    session: Session<'_>,
    session_id: &str,
    _form: CsrfForm<NoFields>,
) -> Result<Redirect, Failure> {
    if signed_in_user(&session).is_none() {
        return Ok(*sign_in_first(&session, "devices", DEVICES_NOTICE));
    }
    let Ok(session_id) = session_id.parse::<SessionId>() else {
        session.flash("That device is not signed in.", "warning");
        return Ok(Redirect::to(uri!(devices_page)));
    };
    let this_device = session.id() == Some(session_id);
    if !session.revoke(session_id).await? {
        session.flash("That device is not signed in.", "warning");
    } else if this_device {
        // Revoking this session logged it out; the flash goes into a new one.
        session.flash("You have been logged out.", "info");
        return Ok(Redirect::to(uri!(home)));
    } else {
        session.flash("The device has been signed out.", "success");
    }
    Ok(Redirect::to(uri!(devices_page)))
}

/// The "Sign out all other devices" button on `/devices`.
#[post("/devices/sign-out-others", data = "<_form>")]
async fn devices_sign_out_others(
    session: Session<'_>,
    _form: CsrfForm<NoFields>,
) -> Result<Redirect, Failure> {
    if signed_in_user(&session).is_none() {
        return Ok(*sign_in_first(&session, "devices", DEVICES_NOTICE));
    }
    match session.revoke_others().await? {
        0 => session.flash("No other device was signed in.", "info"),
        1 => session.flash("Signed out 1 other device.", "success"),
        count => session.flash(format!("Signed out {count} other devices."), "success"),
    }
    Ok(Redirect::to(uri!(devices_page)))
}

#[get("/api/session")]
fn api_session(session: Session<'_>) -> Json<Value> {
    Json(json!({
        "data": session.data(),
        "is_new": session.is_new(),
        "user_id": session.user_id(),
        "expires_at": session.expires_at().to_rfc3339_opts(SecondsFormat::Secs, true),
    }))
}

#[post("/api/counter")]
fn api_counter(session: Session<'_>) -> Result<Json<Value>, Failure> {
    let counter = session.get::<i64>(COUNTER).unwrap_or(0).saturating_add(1);
    session.insert(COUNTER, &counter)?;
    Ok(Json(json!({ "counter": counter })))
}

#[derive(Responder)]
enum HeartbeatOutcome {
    Done(Status),
    #[response(status = 401)]
    SignedOut(Json<Value>),
}

/// What a single-page app sends to keep a login fresh: records when the user
/// was last seen and writes back the `user_id` it loaded, as apps that refresh
/// their login state on activity do. Guests get `401` and nothing is stored.
/// If a logout ends the session while this request runs, the save is refused
/// (`409`): the write never logs the user back in.
#[post("/api/heartbeat")]
fn api_heartbeat(session: Session<'_>) -> Result<HeartbeatOutcome, Failure> {
    let (Some(_), Some(user_id)) = (logged_in(&session), session.get_value(USER_ID)) else {
        return Ok(HeartbeatOutcome::SignedOut(Json(
            json!({ "error": "not signed in" }),
        )));
    };
    session.insert(USER_ID, &user_id)?;
    let now = chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    session.insert(LAST_SEEN, &now)?;
    Ok(HeartbeatOutcome::Done(Status::NoContent))
}

/// The JSON answer to an API call that needs a signed-in user.
#[derive(Responder)]
enum SignedInOutcome<T> {
    Done(T),
    #[response(status = 401)]
    SignedOut(Json<Value>),
}

fn not_signed_in<T>() -> SignedInOutcome<T> {
    SignedInOutcome::SignedOut(Json(json!({ "error": "not signed in" })))
}

/// A device as `/api/devices` shows it; times are RFC 3339 (UTC), `null` when
/// unknown.
fn device_json(device: &Device) -> Value {
    let time = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({
        "id": device.id.to_string(),
        "current": device.current,
        "ip_address": device.ip_address,
        "user_agent": device.user_agent,
        "created_at": time(device.created_at),
        "last_seen_at": device.last_seen_at.map(time),
        "expires_at": time(device.expires_at),
        "remembered": device.remembered,
    })
}

/// The signed-in user's sessions, most recently used first; guests get `401`.
#[get("/api/devices")]
async fn api_devices(session: Session<'_>) -> Result<SignedInOutcome<Json<Value>>, Failure> {
    if signed_in_user(&session).is_none() {
        return Ok(not_signed_in());
    }
    let devices = session.devices().await?;
    Ok(SignedInOutcome::Done(Json(Value::Array(
        devices.iter().map(device_json).collect(),
    ))))
}

/// Signs out one of the user's sessions: `204`; `404` when `session_id` is
/// not one of them (malformed, unknown, expired or another user's). The
/// caller's own id is a logout.
#[delete("/api/devices/<session_id>")]
async fn api_device_revoke(
    session: Session<'_>,
    session_id: &str,
) -> Result<SignedInOutcome<Status>, Failure> {
    if signed_in_user(&session).is_none() {
        return Ok(not_signed_in());
    }
    let Ok(session_id) = session_id.parse::<SessionId>() else {
        return Ok(SignedInOutcome::Done(Status::NotFound));
    };
    Ok(SignedInOutcome::Done(
        if session.revoke(session_id).await? {
            Status::NoContent
        } else {
            Status::NotFound
        },
    ))
}

/// Signs out every other session of the user: `{"revoked": n}`.
#[post("/api/devices/sign-out-others")]
async fn api_devices_sign_out_others(
    session: Session<'_>,
) -> Result<SignedInOutcome<Json<Value>>, Failure> {
    if signed_in_user(&session).is_none() {
        return Ok(not_signed_in());
    }
    let revoked = session.revoke_others().await?;
    Ok(SignedInOutcome::Done(Json(json!({ "revoked": revoked }))))
}

#[derive(Responder)]
enum KeyOutcome {
    Done(Status),
    #[response(status = 403)]
    Reserved(Json<Value>),
}

fn reserved(name: &str) -> Option<KeyOutcome> {
    RESERVED_KEYS.contains(&name).then(|| {
        KeyOutcome::Reserved(Json(json!({
            "error": format!("`{name}` is managed by /login and /logout"),
        })))
    })
}

#[put("/api/keys/<name>", data = "<value>")]
fn api_put_key(
    session: Session<'_>,
    name: &str,
    value: Json<Value>,
) -> Result<KeyOutcome, Failure> {
    if let Some(refusal) = reserved(name) {
        return Ok(refusal);
    }
    session.insert(name, &value.into_inner())?;
    Ok(KeyOutcome::Done(Status::NoContent))
}

#[delete("/api/keys/<name>")]
fn api_delete_key(session: Session<'_>, name: &str) -> KeyOutcome {
    if let Some(refusal) = reserved(name) {
        return refusal;
    }
    session.remove(name);
    KeyOutcome::Done(Status::NoContent)
}

#[derive(Responder)]
enum ErrorPage {
    Json((Status, Json<Value>)),
    Html((Status, Markup)),
}

/// Every error status: JSON under `/api/`, a small page elsewhere.
#[catch(default)]
fn any_error(status: Status, request: &Request<'_>) -> ErrorPage {
    let reason = status.reason().unwrap_or("Error");
    if request.uri().path().starts_with("/api/") {
        return ErrorPage::Json((status, Json(json!({ "error": reason }))));
    }
    let explanation = match status.code {
        404 => "There is no page at this address.",
        400 | 422 => "The form was incomplete or malformed.",
        403 => "The form was out of date or came from another site, so nothing was changed. Go back, reload the page and try again.",
        503 => "The session store is unavailable right now; please try again shortly.",
        code if code >= 500 => "Something went wrong on our side; nothing was saved.",
        _ => "The request could not be completed.",
    };
    ErrorPage::Html((status, views::error_page(status.code, reason, explanation)))
}
