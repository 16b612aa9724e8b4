//! The routes: the seed's login/profile/logout/flash examples, a cart, a
//! small JSON API and a health check. Handlers touch only the session (the
//! fairing loads and saves it); only `POST /login` queries the database itself.
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
use session_fairing::{CsrfForm, CsrfToken, Flash, NoFields, Session};

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
        api_session,
        api_counter,
        api_heartbeat,
        api_put_key,
        api_delete_key,
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

/// `from=profile`: a guest without a stored session was sent here from
/// `/profile`; the notice is shown from the address, so that page view creates
/// no session row.
#[get("/login?<from>")]
fn login_form(session: Session<'_>, csrf: CsrfToken<'_>, from: Option<&str>) -> Markup {
    let mut flashes = session.take_flashes();
    if from == Some("profile") && flashes.is_empty() {
        flashes.push(Flash {
            message: PROFILE_NOTICE.to_owned(),
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
        None,
    )
}

#[derive(Debug, FromForm)]
struct Credentials {
    username: String,
    password: String,
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
    let Credentials { username, password } = form.into_inner();
    let typed = username.trim().to_owned();
    let Some(user) = users.authenticate(typed.clone(), password).await? else {
        let current = logged_in(&session);
        let csrf_token = csrf.value();
        return Ok(LoginOutcome::Refused(views::login(
            nav(current.as_deref(), &csrf_token),
            &[],
            &csrf_token,
            &typed,
            Some("Invalid username or password."),
        )));
    };
    // A new id for the new privilege level: an id planted before login is worthless.
    session.login(user.id.to_string());
    session.insert(USER_ID, &user.id)?;
    session.insert(USERNAME, &user.username)?;
    session.insert(IS_AUTHENTICATED, &true)?;
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
        _ if session.is_new() => Err(Box::new(Redirect::to(uri!(login_form(
            from = Some("profile")
        ))))),
        _ => {
            session.flash(PROFILE_NOTICE, "warning");
            Err(Box::new(Redirect::to(uri!(login_form(
                from = None::<&str>
            )))))
        }
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
