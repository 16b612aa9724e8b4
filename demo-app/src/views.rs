//! The HTML pages, as maud templates (compiled in; no template files at run time).

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use session_fairing::{Device, Flash, CSRF_FIELD};

use session_fairing::store::browser_label;

/// Who the navigation bar shows.
#[derive(Debug, Clone, Copy)]
pub enum Nav<'a> {
    /// Not logged in: a "Log in" link.
    Guest,
    /// Logged in: "Profile", "Devices" and a "Log out" button, a form that
    /// carries the session's CSRF token.
    User {
        /// Shown as "Signed in as …".
        username: &'a str,
        /// The masked token for the logout form (`CsrfToken::value`).
        csrf_token: &'a str,
    },
    /// Error pages, rendered without a session.
    Plain,
}

/// What the home page summarises about the current session (all read from the
/// session itself: the page does no database work of its own).
#[derive(Debug)]
pub struct Summary {
    /// Whether a stored session backs this request (a cookie came in).
    pub stored: bool,
    /// The `user_id` column.
    pub user_id: Option<String>,
    /// Items in `cart`.
    pub cart_items: usize,
    /// The `counter` value, if any.
    pub counter: Option<i64>,
    /// When the session expires, formatted.
    pub expires_at: String,
}

/// Where the stylesheet is served (`static/style.css`, through Rocket's
/// `FileServer`): a file, so browsers cache it and fetching it costs the app
/// no session work.
const STYLESHEET: &str = "/static/style.css";

/// The CSS class for a flash category; unknown categories look like `info`.
fn flash_class(category: &str) -> &'static str {
    match category {
        "success" => "success",
        "warning" => "warning",
        "error" | "danger" => "error",
        _ => "info",
    }
}

fn nav(nav: Nav<'_>) -> Markup {
    html! {
        header {
            div.bar {
                a.brand href="/" { "Session demo" }
                nav {
                    a href="/" { "Home" }
                    a href="/cart" { "Cart" }
                    @match nav {
                        Nav::Guest => { a href="/login" { "Log in" } }
                        Nav::User { username, csrf_token } => {
                            a href="/profile" { "Profile" }
                            a href="/devices" { "Devices" }
                            span.who { "Signed in as " strong { (username) } }
                            form method="post" action="/logout" {
                                (csrf_field(csrf_token))
                                button type="submit" { "Log out" }
                            }
                        }
                        Nav::Plain => {}
                    }
                }
            }
        }
    }
}

/// The hidden field that carries the session's CSRF token in every form:
/// `CsrfForm` refuses a signed-in (stored-session) post without it.
fn csrf_field(csrf_token: &str) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(csrf_token); }
}

/// The page frame: navigation, flashes, then `body`.
pub fn layout(title: &str, who: Nav<'_>, flashes: &[Flash], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Session demo" }
                link rel="stylesheet" href=(STYLESHEET);
            }
            body {
                (nav(who))
                main {
                    @for flash in flashes {
                        div class={ "flash " (flash_class(&flash.category)) } role="status" {
                            (flash.message)
                        }
                    }
                    (body)
                }
            }
        }
    }
}

/// `GET /`.
pub fn home(who: Nav<'_>, flashes: &[Flash], summary: &Summary) -> Markup {
    let greeting = match who {
        Nav::User { username, .. } => username,
        Nav::Guest | Nav::Plain => "guest",
    };
    let body = html! {
        h1 { "Hello, " (greeting) }
        @if matches!(who, Nav::User { .. }) {
            div.card {
                h2 { "Your session" }
                dl {
                    dt { "User id" }
                    dd { (summary.user_id.as_deref().unwrap_or("–")) }
                    dt { "Cart" }
                    dd { a href="/cart" { (items_label(summary.cart_items)) } }
                    dt { "API counter" }
                    dd { (summary.counter.map_or_else(|| "not started".to_owned(), |n| n.to_string())) }
                    dt { "Expires" }
                    dd { (summary.expires_at) " " span.muted { "(renewed while you use the site)" } }
                }
                p.actions { a.button href="/profile" { "View your profile" } }
            }
        } @else {
            div.card {
                h2 { "Welcome" }
                p {
                    "This app keeps your state in a server-side session stored in the database; "
                    "your browser only holds an opaque, HttpOnly session cookie."
                }
                p {
                    "Log in as " code { "alice" } " / " code { "wonderland" }
                    " or " code { "bob" } " / " code { "builder" } "."
                }
                @if summary.stored {
                    p.muted { "You have a session: " (items_label(summary.cart_items)) " in your cart." }
                } @else {
                    p.muted { "You have no session yet: nothing is stored until you log in or add to the cart." }
                }
                p.actions { a.button href="/login" { "Log in" } }
            }
        }
        div.card {
            h2 { "Try it" }
            ul.items {
                li { a href="/cart" { "Add items to your cart" } " (works logged in or not)" }
                li { a href="/profile" { "Open your profile" } " (redirects to the login form for guests)" }
                li { a href="/api/session" { "See this session as JSON" } " at " code { "/api/session" } }
            }
        }
    };
    layout("Home", who, flashes, body)
}

fn items_label(count: usize) -> String {
    match count {
        1 => "1 item".to_owned(),
        n => format!("{n} items"),
    }
}

/// `GET /login`, and `POST /login` when the credentials are wrong (`error`;
/// the form keeps the username and the "Remember me" tick).
pub fn login(
    who: Nav<'_>,
    flashes: &[Flash],
    csrf_token: &str,
    username: &str,
    remember: bool,
    error: Option<&str>,
) -> Markup {
    let body = html! {
        h1 { "Log in" }
        @if let Some(error) = error {
            div.flash.error role="alert" { (error) }
        }
        div.card {
            form method="post" action="/login" {
                (csrf_field(csrf_token))
                label for="username" { "Username" }
                input #username type="text" name="username" value=(username)
                    autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password"
                    autocomplete="current-password" required;
                label.check for="remember" {
                    input #remember type="checkbox" name="remember" value="on" checked[remember];
                    " Remember me for " (crate::routes::REMEMBER_DAYS) " days"
                }
                p.actions { button type="submit" { "Log in" } }
            }
            p.muted {
                "Demo accounts: " code { "alice" } " / " code { "wonderland" }
                ", " code { "bob" } " / " code { "builder" } "."
            }
        }
    };
    layout("Log in", who, flashes, body)
}

/// `GET /profile` for a logged-in user.
pub fn profile(
    flashes: &[Flash],
    csrf_token: &str,
    username: &str,
    user_id: &str,
    expires_at: &str,
) -> Markup {
    let body = html! {
        h1 { "Profile" }
        div.card {
            dl {
                dt { "Username" }
                dd #profile-username { (username) }
                dt { "User id" }
                dd #profile-user-id { (user_id) }
                dt { "Session expires" }
                dd { (expires_at) }
            }
        }
    };
    let who = Nav::User {
        username,
        csrf_token,
    };
    layout("Profile", who, flashes, body)
}

/// `GET /cart`.
pub fn cart(who: Nav<'_>, flashes: &[Flash], csrf_token: &str, items: &[String]) -> Markup {
    let body = html! {
        h1 { "Cart" }
        div.card {
            @if items.is_empty() {
                p.muted #cart-empty { "Your cart is empty." }
            } @else {
                ul.items #cart-items {
                    @for item in items { li { (item) } }
                }
            }
            form.inline method="post" action="/cart" {
                (csrf_field(csrf_token))
                input type="text" name="item" aria-label="Item" placeholder="e.g. a teapot"
                    maxlength=(crate::routes::MAX_ITEM_CHARS) required;
                button type="submit" { "Add to cart" }
            }
        }
    };
    layout("Cart", who, flashes, body)
}

/// When a device was signed in or seen, as the devices page shows it.
fn device_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

/// `GET /devices`: the user's sessions, most recently used first, with a
/// "Sign out" form (carrying the CSRF token) for each other one.
pub fn devices(flashes: &[Flash], csrf_token: &str, username: &str, devices: &[Device]) -> Markup {
    let others = devices.iter().filter(|device| !device.current).count();
    let body = html! {
        h1 { "Your devices" }
        div.card {
            p.muted.intro {
                "Where your account is signed in, most recently used first. "
                "Sign out a device you do not recognise; times are UTC."
            }
            table #devices {
                thead {
                    tr {
                        th scope="col" { "Browser" }
                        th scope="col" { "IP address" }
                        th scope="col" { "Signed in" }
                        th scope="col" { "Last seen" }
                        th scope="col" { span.visually-hidden { "Action" } }
                    }
                }
                tbody {
                    @for device in devices {
                        @let browser = browser_label(device.user_agent.as_deref());
                        tr.current[device.current] data-session-id=(device.id) {
                            td {
                                span.browser title=[device.user_agent.as_deref()] { (browser) }
                                @if device.current || device.remembered {
                                    div.badges {
                                        @if device.current { span.badge.this { "This device" } }
                                        @if device.remembered { span.badge { "Remembered" } }
                                    }
                                }
                            }
                            td.ip { (device.ip_address.as_deref().unwrap_or("unknown")) }
                            td { time datetime=(device.created_at.to_rfc3339()) { (device_time(device.created_at)) } }
                            td {
                                @match device.last_seen_at {
                                    Some(at) => { time datetime=(at.to_rfc3339()) { (device_time(at)) } }
                                    None => { span.muted { "unknown" } }
                                }
                            }
                            td.action {
                                @if !device.current {
                                    form method="post" action={ "/devices/" (device.id) "/sign-out" } {
                                        (csrf_field(csrf_token))
                                        button.secondary type="submit"
                                            aria-label={ "Sign out " (browser) } { "Sign out" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if others > 0 {
                form.actions method="post" action="/devices/sign-out-others" {
                    (csrf_field(csrf_token))
                    button.danger type="submit" { "Sign out all other devices" }
                }
            } @else {
                p.muted #devices-only-this { "No other device is signed in to your account." }
            }
        }
    };
    let who = Nav::User {
        username,
        csrf_token,
    };
    layout("Your devices", who, flashes, body)
}

/// Error pages (catchers): no session, a short explanation.
pub fn error_page(code: u16, reason: &str, explanation: &str) -> Markup {
    let body = html! {
        h1 { (code) " " (reason) }
        div.card {
            p { (explanation) }
            p.actions { a.button href="/" { "Back to the home page" } }
        }
    };
    layout(reason, Nav::Plain, &[], body)
}
