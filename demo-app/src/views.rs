//! The HTML pages, as maud templates (compiled in; no template files at run time).

use maud::{html, Markup, DOCTYPE};
use session_fairing::Flash;

/// Who the navigation bar shows.
#[derive(Debug, Clone, Copy)]
pub enum Nav<'a> {
    /// Not logged in: a "Log in" link.
    Guest,
    /// Logged in as this username: "Profile" and a "Log out" button.
    User(&'a str),
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

const STYLE: &str = r#"
:root { --fg: #1f2933; --muted: #616e7c; --accent: #3a5bd9; --bg: #f5f7fa; --line: #e4e7eb; }
* { box-sizing: border-box; }
a { color: var(--accent); }
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); }
header { background: #1f2933; color: #fff; }
.bar { max-width: 760px; margin: 0 auto; padding: .7rem 1.25rem; display: flex; align-items: center; gap: 1.1rem; }
.brand { font-weight: 700; color: #fff; text-decoration: none; margin-right: auto; }
nav { display: flex; align-items: center; gap: 1.1rem; }
nav a { color: #cbd2d9; text-decoration: none; }
nav a:hover { color: #fff; }
nav form { margin: 0; }
.who { color: #9aa5b1; font-size: .9rem; }
button, .button { font: inherit; cursor: pointer; border: 0; border-radius: 6px; padding: .45rem 1rem; background: var(--accent); color: #fff; text-decoration: none; display: inline-block; }
nav button { background: transparent; border: 1px solid #52606d; color: #e4e7eb; padding: .2rem .75rem; }
main { max-width: 760px; margin: 2rem auto; padding: 0 1.25rem; }
h1 { margin: 0 0 1.25rem; font-size: 1.9rem; }
h2 { margin: 0 0 .75rem; font-size: 1.15rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 1.2rem 1.5rem; margin-bottom: 1.25rem; }
.flash { border-radius: 8px; padding: .65rem 1rem; margin-bottom: 1rem; border-left: 5px solid; }
.flash.success { background: #e3f9e5; border-color: #31b237; color: #0e5814; }
.flash.info { background: #e6f6ff; border-color: #2186eb; color: #03449e; }
.flash.warning { background: #fffbea; border-color: #f0b429; color: #8d2b0b; }
.flash.error { background: #ffe3e3; border-color: #e12d39; color: #610316; }
label { display: block; font-weight: 600; margin: .8rem 0 .3rem; }
input[type=text], input[type=password] { width: 100%; font: inherit; padding: .5rem .65rem; border: 1px solid #cbd2d9; border-radius: 6px; }
form.inline { display: flex; gap: .6rem; margin-top: 1rem; }
form.inline input { flex: 1; }
.actions { margin-top: 1.2rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1.5rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
ul.items { margin: 0; padding-left: 1.2rem; }
code { background: #eef1f5; padding: .1rem .35rem; border-radius: 4px; font-size: .9em; }
.muted { color: var(--muted); }
"#;

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
                        Nav::User(username) => {
                            a href="/profile" { "Profile" }
                            span.who { "Signed in as " strong { (username) } }
                            form method="post" action="/logout" {
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

/// The page frame: navigation, flashes, then `body`.
pub fn layout(title: &str, who: Nav<'_>, flashes: &[Flash], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Session demo" }
                style { (maud::PreEscaped(STYLE)) }
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
        Nav::User(username) => username,
        Nav::Guest | Nav::Plain => "guest",
    };
    let body = html! {
        h1 { "Hello, " (greeting) }
        @if matches!(who, Nav::User(_)) {
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

/// `GET /login`, and `POST /login` when the credentials are wrong (`error`).
pub fn login(who: Nav<'_>, flashes: &[Flash], username: &str, error: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Log in" }
        @if let Some(error) = error {
            div.flash.error role="alert" { (error) }
        }
        div.card {
            form method="post" action="/login" {
                label for="username" { "Username" }
                input #username type="text" name="username" value=(username)
                    autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password"
                    autocomplete="current-password" required;
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
pub fn profile(flashes: &[Flash], username: &str, user_id: &str, expires_at: &str) -> Markup {
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
    layout("Profile", Nav::User(username), flashes, body)
}

/// `GET /cart`.
pub fn cart(who: Nav<'_>, flashes: &[Flash], items: &[String]) -> Markup {
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
                input type="text" name="item" aria-label="Item" placeholder="e.g. a teapot"
                    maxlength=(crate::routes::MAX_ITEM_CHARS) required;
                button type="submit" { "Add to cart" }
            }
        }
    };
    layout("Cart", who, flashes, body)
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
