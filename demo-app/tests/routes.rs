//! Every route through Rocket's local client, on every compiled backend
//! (SQLite always; PostgreSQL and MariaDB with their features and URLs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

mod common;

use common::form_token;
use rocket::figment::providers::{Format, Serialized, Toml};
use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::serde::json::{json, Value};
use shared_model::test_util::TestDatabase;
use shared_model::{backend_tests, Backend, Database, SessionFilter, SessionManager};

// ---- helpers ------------------------------------------------------------------

/// The demo on `db`, counting its statements; `session` settings are merged
/// over the test defaults.
async fn start_demo_with(database_url: &str, session: Value) -> Client {
    let mut settings = json!({
        "database_url": database_url,
        "purge_interval_seconds": 0,
        "count_statements": true,
    });
    for (key, value) in session.as_object().unwrap() {
        settings[key] = value.clone();
    }
    let figment = demo_app::figment()
        .merge(Serialized::global("session", settings))
        .merge(Serialized::global("log_level", "critical"));
    Client::tracked(demo_app::rocket_from(figment))
        .await
        .expect("the demo launches")
}

async fn start_demo(db: &TestDatabase) -> Client {
    start_demo_with(db.url(), json!({})).await
}

fn manager(client: &Client) -> &SessionManager {
    session_fairing::manager(client.rocket()).expect("Sessions fairing attached")
}

fn rows(client: &Client) -> u64 {
    manager(client).count(&SessionFilter::default()).unwrap()
}

fn alice_id(client: &Client) -> i32 {
    let users = client.rocket().state::<demo_app::Users>().unwrap();
    users.find("alice").unwrap().expect("alice exists").id
}

/// The `Set-Cookie` headers of a response.
fn set_cookies(response: &LocalResponse<'_>) -> Vec<String> {
    response
        .headers()
        .get("Set-Cookie")
        .map(str::to_owned)
        .collect()
}

fn session_cookie(response: &LocalResponse<'_>) -> Option<Cookie<'static>> {
    set_cookies(response)
        .into_iter()
        .filter_map(|header| Cookie::parse(header).ok())
        .find(|cookie| cookie.name() == "session_id")
}

async fn page(client: &Client, path: &str) -> (Status, String) {
    let response = client.get(path).dispatch().await;
    let status = response.status();
    (status, response.into_string().await.unwrap_or_default())
}

async fn post_form<'c>(client: &'c Client, path: &'c str, body: &str) -> LocalResponse<'c> {
    client
        .post(path)
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await
}

/// Logs in through the form as a first visit does: no stored session, so no
/// token to send.
async fn login<'c>(client: &'c Client, username: &str, password: &str) -> LocalResponse<'c> {
    post_form(
        client,
        "/login",
        &format!("username={username}&password={password}"),
    )
    .await
}

/// The token the form on `path` carries, as a user who opens the page gets it
/// (the page's flashes are taken, as a visit takes them).
async fn page_token(client: &Client, path: &str) -> String {
    let (status, html) = page(client, path).await;
    assert_eq!(status, Status::Ok, "{path}");
    form_token(&html)
}

/// Posts `body` with the session's CSRF `token` in the form, as the demo's pages do.
async fn post_form_with_token<'c>(
    client: &'c Client,
    path: &'c str,
    body: &str,
    token: &str,
) -> LocalResponse<'c> {
    let body = if body.is_empty() {
        format!("csrf_token={token}")
    } else {
        format!("csrf_token={token}&{body}")
    };
    post_form(client, path, &body).await
}

/// Logs out through the nav's form, with the token a page gave.
async fn logout<'c>(client: &'c Client, token: &str) -> LocalResponse<'c> {
    post_form_with_token(client, "/logout", "", token).await
}

fn location(response: &LocalResponse<'_>) -> Option<String> {
    response.headers().get_one("Location").map(str::to_owned)
}

async fn api_session(client: &Client) -> Value {
    let response = client.get("/api/session").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::JSON));
    response.into_json().await.unwrap()
}

fn flash_html(category: &str, message: &str) -> String {
    format!(r#"<div class="flash {category}" role="status">{message}</div>"#)
}

fn run(test: impl std::future::Future<Output = ()>) {
    rocket::async_test(test);
}

// ---- the seed's flows -----------------------------------------------------------

fn seed_flow_login_flash_profile_logout(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;

        let response = login(&client, "alice", "wonderland").await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response).as_deref(), Some("/"));
        let cookie = session_cookie(&response).expect("login sets the session cookie");
        assert_eq!(cookie.http_only(), Some(true));

        // The welcome flash shows once.
        let (status, home) = page(&client, "/").await;
        assert_eq!(status, Status::Ok);
        assert!(home.contains("Hello, alice"), "{home}");
        assert!(
            home.contains(&flash_html("success", "Welcome back!")),
            "{home}"
        );
        let (_, again) = page(&client, "/").await;
        assert!(again.contains("Hello, alice"));
        assert!(
            !again.contains("Welcome back!"),
            "the flash is gone: {again}"
        );

        // The nav shows the login state.
        assert!(again.contains(r#"action="/logout""#) && again.contains(r#"href="/profile""#));
        assert!(!again.contains(r#"href="/login""#));

        let (status, profile) = page(&client, "/profile").await;
        assert_eq!(status, Status::Ok);
        assert!(
            profile.contains(r#"<dd id="profile-username">alice</dd>"#),
            "{profile}"
        );
        let id = alice_id(&client);
        assert!(
            profile.contains(&format!(r#"<dd id="profile-user-id">{id}</dd>"#)),
            "{profile}"
        );

        // The nav's logout button, with the token the profile page carries.
        let response = logout(&client, &form_token(&profile)).await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response).as_deref(), Some("/"));
        let after = session_cookie(&response).expect("the new session's cookie");
        assert_ne!(after.value(), cookie.value(), "logout starts a new session");

        let (_, home) = page(&client, "/").await;
        assert!(home.contains("Hello, guest"), "{home}");
        assert!(
            home.contains(&flash_html("info", "You have been logged out.")),
            "{home}"
        );
        assert!(home.contains(r#"href="/login""#) && !home.contains(r#"action="/logout""#));

        let response = client.get("/profile").dispatch().await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response).as_deref(), Some("/login"));
        let (status, form) = page(&client, "/login").await;
        assert_eq!(status, Status::Ok);
        assert!(form.contains(&flash_html(
            "warning",
            "Please log in to view your profile."
        )));

        // The old id is worthless now.
        let stale = client
            .get("/api/session")
            .cookie(Cookie::new("session_id", cookie.value().to_owned()))
            .dispatch()
            .await;
        let stale: Value = stale.into_json().await.unwrap();
        assert_ne!(stale["data"]["username"], json!("alice"));
    });
}

fn login_rotates_the_id_and_keeps_the_cart(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let response = post_form(&client, "/cart", "item=teapot").await;
        let guest = session_cookie(&response).expect("adding to the cart starts a session");

        // The guest now has a stored session: the login form carries its token.
        let token = page_token(&client, "/login").await;
        let response =
            post_form_with_token(&client, "/login", "username=bob&password=builder", &token).await;
        let user = session_cookie(&response).expect("login sends the new id");
        assert_ne!(
            user.value(),
            guest.value(),
            "session fixation: the id changes"
        );
        assert_eq!(rows(&client), 1, "the id moved; no second row");

        let session = api_session(&client).await;
        assert_eq!(session["data"]["username"], json!("bob"));
        assert_eq!(session["data"]["cart"], json!(["teapot"]));

        let old = client
            .get("/api/session")
            .cookie(Cookie::new("session_id", guest.value().to_owned()))
            .dispatch()
            .await;
        let old: Value = old.into_json().await.unwrap();
        assert_eq!(old["is_new"], json!(true), "the pre-login id loads nothing");
    });
}

fn a_guest_who_stores_nothing_gets_no_cookie_and_no_row(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let before = manager(&client).database().statement_counts();
        // The pages render a CSRF token for their forms; that stores nothing either.
        for path in [
            "/",
            "/login",
            "/login?from=profile",
            "/profile",
            "/cart",
            "/api/session",
            "/nowhere",
            "/healthz",
            "/static/style.css",
        ] {
            let response = client.get(path).dispatch().await;
            assert!(
                set_cookies(&response).is_empty(),
                "{path} set a cookie: {:?}",
                set_cookies(&response)
            );
        }
        // A guest sent from /profile to the login form still sees why.
        let response = client.get("/profile").dispatch().await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response).as_deref(), Some("/login?from=profile"));
        let (_, form) = page(&client, "/login?from=profile").await;
        assert!(form.contains(&flash_html(
            "warning",
            "Please log in to view your profile."
        )));
        let session = api_session(&client).await;
        assert_eq!(session["is_new"], json!(true));
        assert_eq!(session["data"], json!({}));
        let spent = manager(&client).database().statement_counts() - before;
        assert_eq!(
            spent.total(),
            0,
            "cookieless requests never touch the database"
        );
        assert_eq!(rows(&client), 0);
    });
}

fn wrong_password_is_401_and_stays_unauthenticated(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        for (username, password) in [
            ("alice", "builder"),
            ("nobody", "wonderland"),
            ("alice", ""),
        ] {
            let response = login(&client, username, password).await;
            assert_eq!(response.status(), Status::Unauthorized);
            assert!(set_cookies(&response).is_empty());
            let body = response.into_string().await.unwrap();
            assert!(body.contains("Invalid username or password."), "{body}");
            assert!(body.contains(r#"<form method="post" action="/login">"#));
            assert!(
                body.contains(&format!(r#"value="{username}""#)),
                "keeps the username"
            );
        }
        assert_eq!(rows(&client), 0);
        let (_, home) = page(&client, "/").await;
        assert!(home.contains("Hello, guest"));
        let response = client.get("/profile").dispatch().await;
        assert_eq!(response.status(), Status::SeeOther);

        // A guest with a session stays a guest after a failed login.
        // (The /profile redirect stored a flash: the guest has a session and
        // posts from the cart page with its token.)
        let token = page_token(&client, "/cart").await;
        let response = post_form_with_token(&client, "/cart", "item=kettle", &token).await;
        assert_eq!(response.status(), Status::SeeOther);
        let token = page_token(&client, "/login").await;
        let response = post_form_with_token(
            &client,
            "/login",
            "username=bob&password=wonderland",
            &token,
        )
        .await;
        assert_eq!(response.status(), Status::Unauthorized);
        // The refusal's form carries a token that works for the next try.
        let retry = form_token(&response.into_string().await.unwrap());
        let session = api_session(&client).await;
        assert_eq!(session["user_id"], Value::Null);
        assert_eq!(session["data"].get("is_authenticated"), None);
        assert_eq!(session["data"]["cart"], json!(["kettle"]));
        let response =
            post_form_with_token(&client, "/login", "username=bob&password=builder", &retry).await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(api_session(&client).await["data"]["username"], json!("bob"));
    });
}

fn both_demo_users_log_in(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        for (username, password) in demo_app::users::DEMO_USERS {
            // After the first logout the browser holds the flash's session, so
            // the form's token counts.
            let token = page_token(&client, "/login").await;
            let response = post_form_with_token(
                &client,
                "/login",
                &format!("username={username}&password={password}"),
                &token,
            )
            .await;
            assert_eq!(response.status(), Status::SeeOther, "{username}");
            let (_, home) = page(&client, "/").await;
            assert!(home.contains(&format!("Hello, {username}")), "{home}");
            let response = logout(&client, &form_token(&home)).await;
            assert_eq!(response.status(), Status::SeeOther, "{username}");
        }
    });
}

// ---- cart -------------------------------------------------------------------------

fn cart_adds_and_lists_items(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let (status, empty) = page(&client, "/cart").await;
        assert_eq!(status, Status::Ok);
        assert!(empty.contains("Your cart is empty."));

        // Each post goes with the token of the page it was sent from (the
        // first visit's token is for a session that does not exist yet).
        let mut token = form_token(&empty);
        for item in ["Teapot", "<b>Tea</b> & biscuits"] {
            let response = post_form_with_token(
                &client,
                "/cart",
                &format!("item={}", item.replace('&', "%26").replace(' ', "+")),
                &token,
            )
            .await;
            assert_eq!(response.status(), Status::SeeOther);
            assert_eq!(location(&response).as_deref(), Some("/cart"));
            token = page_token(&client, "/cart").await;
        }
        let (_, cart) = page(&client, "/cart").await;
        assert!(
            cart.contains(
                r#"<ul class="items" id="cart-items"><li>Teapot</li><li>&lt;b&gt;Tea&lt;/b&gt; &amp; biscuits</li></ul>"#
            ),
            "{cart}"
        );
        let session = api_session(&client).await;
        assert_eq!(
            session["data"]["cart"],
            json!(["Teapot", "<b>Tea</b> & biscuits"])
        );

        // A blank item adds nothing and says why.
        let response = post_form_with_token(&client, "/cart", "item=+++", &token).await;
        assert_eq!(response.status(), Status::SeeOther);
        let (_, cart) = page(&client, "/cart").await;
        assert!(cart.contains(&flash_html(
            "warning",
            "Type a name to add an item to the cart."
        )));
        assert_eq!(
            api_session(&client).await["data"]["cart"]
                .as_array()
                .unwrap()
                .len(),
            2
        );

        let (_, home) = page(&client, "/").await;
        assert!(home.contains("2 items in your cart"), "{home}");
    });
}

// ---- JSON API --------------------------------------------------------------------

fn api_session_has_the_documented_shape(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        login(&client, "alice", "wonderland").await;
        let session = api_session(&client).await;
        let mut keys: Vec<&str> = session
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["data", "expires_at", "is_new", "user_id"]);
        let id = alice_id(&client);
        assert_eq!(session["is_new"], json!(false));
        assert_eq!(session["user_id"], json!(id.to_string()));
        assert_eq!(session["data"]["user_id"], json!(id));
        assert_eq!(session["data"]["username"], json!("alice"));
        assert_eq!(session["data"]["is_authenticated"], json!(true));
        assert_eq!(
            session["data"]["flash_messages"],
            json!([{"message": "Welcome back!", "category": "success"}])
        );
        let expires = chrono::DateTime::parse_from_rfc3339(session["expires_at"].as_str().unwrap())
            .expect("RFC 3339");
        let left = expires.with_timezone(&chrono::Utc) - chrono::Utc::now();
        assert!(
            left > chrono::Duration::minutes(25) && left <= chrono::Duration::minutes(31),
            "expires in the default 30 minutes, found {left}"
        );
    });
}

fn counter_increments(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        for expected in 1..=3 {
            let response = client.post("/api/counter").dispatch().await;
            assert_eq!(response.status(), Status::Ok);
            let body: Value = response.into_json().await.unwrap();
            assert_eq!(body, json!({ "counter": expected }));
        }
        assert_eq!(api_session(&client).await["data"]["counter"], json!(3));
        assert_eq!(rows(&client), 1);

        // Another visitor (here through a second app instance) has its own counter.
        let other = start_demo(db).await;
        let response = other.post("/api/counter").dispatch().await;
        let body: Value = response.into_json().await.unwrap();
        assert_eq!(body, json!({ "counter": 1 }));
        assert_eq!(api_session(&client).await["data"]["counter"], json!(3));
    });
}

fn keys_put_and_delete(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let response = client
            .put("/api/keys/theme")
            .header(ContentType::JSON)
            .body(r#"{"dark": true, "size": [1, 2]}"#)
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::NoContent);
        assert!(response.into_string().await.unwrap_or_default().is_empty());
        let session = api_session(&client).await;
        assert_eq!(
            session["data"]["theme"],
            json!({"dark": true, "size": [1, 2]})
        );

        let response = client
            .put("/api/keys/note")
            .header(ContentType::JSON)
            .body(r#""hello""#)
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::NoContent);

        let response = client.delete("/api/keys/theme").dispatch().await;
        assert_eq!(response.status(), Status::NoContent);
        let session = api_session(&client).await;
        assert_eq!(session["data"], json!({"note": "hello"}));

        // Deleting a key that is not there is still 204.
        let response = client.delete("/api/keys/missing").dispatch().await;
        assert_eq!(response.status(), Status::NoContent);

        // Not JSON: refused, nothing stored.
        let response = client
            .put("/api/keys/broken")
            .header(ContentType::JSON)
            .body("{not json")
            .dispatch()
            .await;
        assert!(response.status().code == 400 || response.status().code == 422);
        let body: Value = response.into_json().await.unwrap();
        assert!(body["error"].is_string());
        assert_eq!(api_session(&client).await["data"], json!({"note": "hello"}));
    });
}

fn keys_cannot_forge_a_login(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        for key in ["user_id", "username", "is_authenticated"] {
            let response = client
                .put(format!("/api/keys/{key}"))
                .header(ContentType::JSON)
                .body("true")
                .dispatch()
                .await;
            assert_eq!(response.status(), Status::Forbidden, "{key}");
        }
        let session = api_session(&client).await;
        assert_eq!(session["data"], json!({}));
        assert_eq!(session["user_id"], Value::Null);

        login(&client, "alice", "wonderland").await;
        let response = client.delete("/api/keys/username").dispatch().await;
        assert_eq!(response.status(), Status::Forbidden);
        assert_eq!(
            api_session(&client).await["data"]["username"],
            json!("alice")
        );
    });
}

// ---- error pages, migrations, restarts -------------------------------------------

fn error_pages_are_html_or_json(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let (status, body) = page(&client, "/no/such/page").await;
        assert_eq!(status, Status::NotFound);
        assert!(body.contains("404 Not Found") && body.contains("Back to the home page"));
        let response = client.get("/api/nothing").dispatch().await;
        assert_eq!(response.status(), Status::NotFound);
        let body: Value = response.into_json().await.unwrap();
        assert_eq!(body, json!({"error": "Not Found"}));
        let response = post_form(&client, "/login", "username=alice").await;
        assert_eq!(response.status(), Status::UnprocessableEntity);
    });
}

fn migrations_coexist_and_restarts_keep_users(db: &TestDatabase) {
    run(async {
        let first = start_demo(db).await;
        let id = alice_id(&first);
        drop(first);
        // The sessions harness ignores the demo's version and vice versa.
        let sessions = Database::connect(db.url()).unwrap();
        assert!(sessions.pending_migrations().unwrap().is_empty());
        let users = demo_app::Users::new(sessions.clone());
        assert!(users.run_migrations().unwrap().is_empty());
        assert!(
            users.ensure_demo_users().unwrap().is_empty(),
            "users exist already"
        );

        let second = start_demo(db).await;
        assert_eq!(alice_id(&second), id, "a restart does not recreate users");
        let response = login(&second, "alice", "wonderland").await;
        assert_eq!(response.status(), Status::SeeOther);
    });
}

// ---- health check and static files ----------------------------------------------

/// A cookie of a real, signed-in session on `db` (from a demo instance that is
/// dropped again).
async fn signed_in_cookie(db: &TestDatabase) -> Cookie<'static> {
    let client = start_demo(db).await;
    let response = login(&client, "alice", "wonderland").await;
    assert_eq!(response.status(), Status::SeeOther);
    session_cookie(&response).expect("login sets the session cookie")
}

/// `GET path` with `cookie` in a `Cookie` header, as a browser sends it (the
/// header wins over the test client's own cookie jar).
async fn get_with<'c>(
    client: &'c Client,
    path: &'c str,
    cookie: &Cookie<'static>,
) -> LocalResponse<'c> {
    client
        .get(path)
        .header(cookie_header(cookie))
        .dispatch()
        .await
}

fn cookie_header(cookie: &Cookie<'static>) -> Header<'static> {
    Header::new("Cookie", format!("session_id={}", cookie.value()))
}

/// What `/healthz` and `/static/style.css` must answer, whatever the session.
async fn assert_health_and_static(client: &Client, cookie: &Cookie<'static>) {
    let response = get_with(client, "/healthz", cookie).await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::Plain));
    assert!(set_cookies(&response).is_empty());
    assert_eq!(response.headers().get_one("Vary"), None, "cacheable");
    assert_eq!(response.into_string().await.as_deref(), Some("ok"));

    let response = get_with(client, "/static/style.css", cookie).await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.content_type(), Some(ContentType::CSS));
    assert!(set_cookies(&response).is_empty());
    assert_eq!(response.headers().get_one("Vary"), None, "cacheable");
    let css = response.into_string().await.unwrap();
    assert!(css.contains(".flash.success {"), "{css}");
}

fn health_and_static_cost_no_statements_with_a_session_cookie(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let response = login(&client, "alice", "wonderland").await;
        let cookie = session_cookie(&response).unwrap();
        // The pages use the stylesheet instead of an inline one.
        let (_, home) = page(&client, "/").await;
        assert!(
            home.contains(r#"<link rel="stylesheet" href="/static/style.css">"#),
            "{home}"
        );
        assert!(!home.contains("<style"), "{home}");

        let before = manager(&client).database().statement_counts();
        assert_health_and_static(&client, &cookie).await;
        let spent = manager(&client).database().statement_counts() - before;
        assert_eq!(spent.total(), 0, "no session was loaded: {spent:?}");

        // The same cookie on a page loads the session: the counting works.
        let (_, home) = page(&client, "/").await;
        assert!(home.contains("Hello, alice"));
        let spent = manager(&client).database().statement_counts() - before;
        assert!(spent.reads > 0, "{spent:?}");
    });
}

/// A URL of `db`'s backend that nothing answers: an SQLite file in a missing
/// directory, a server port nobody listens on.
fn unreachable_url(db: &TestDatabase) -> String {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    match db.backend() {
        Backend::Postgres => format!("postgres://postgres@127.0.0.1:{closed_port}/test"),
        Backend::Mysql => format!("mysql://root@127.0.0.1:{closed_port}/test"),
        _ => "/nonexistent-directory/for/sure/sessions.sqlite".to_owned(),
    }
}

fn health_and_static_answer_while_the_database_is_unreachable(db: &TestDatabase) {
    run(async {
        let cookie = signed_in_cookie(db).await;
        // `run_migrations = false`: the demo starts without its database.
        let client = start_demo_with(
            &unreachable_url(db),
            json!({"run_migrations": false, "pool_timeout_seconds": 1}),
        )
        .await;
        assert_health_and_static(&client, &cookie).await;
        let spent = manager(&client).database().statement_counts();
        assert_eq!(spent.total(), 0);

        // The same cookie on a route that needs the session: 503, with a page
        // that says so (the cookie really is sent and looked up).
        let response = get_with(&client, "/", &cookie).await;
        assert_eq!(response.status(), Status::ServiceUnavailable);
        let body = response.into_string().await.unwrap();
        assert!(body.contains("The session store is unavailable"), "{body}");
        let response = get_with(&client, "/api/session", &cookie).await;
        assert_eq!(response.status(), Status::ServiceUnavailable);
        // Logging in needs the users table: 503 too, not a crash or a 500.
        let response = login(&client, "alice", "wonderland").await;
        assert_eq!(response.status(), Status::ServiceUnavailable);
        assert!(set_cookies(&response).is_empty());
        // ...and the health check still answers afterwards.
        assert_health_and_static(&client, &cookie).await;
    });
}

// ---- CSRF -------------------------------------------------------------------------

/// What a user could notice about their session: data and user.
async fn observable(client: &Client) -> (Value, Value) {
    let session = api_session(client).await;
    (session["data"].clone(), session["user_id"].clone())
}

/// Alice signed in with one cart item and a counter of 1; returns a token
/// from her cart page.
async fn alice_with_a_cart(client: &Client) -> String {
    assert_eq!(
        login(client, "alice", "wonderland").await.status(),
        Status::SeeOther
    );
    let token = page_token(client, "/cart").await;
    let response = post_form_with_token(client, "/cart", "item=teapot", &token).await;
    assert_eq!(response.status(), Status::SeeOther);
    assert_eq!(
        client.post("/api/counter").dispatch().await.status(),
        Status::Ok
    );
    let session = api_session(client).await;
    assert_eq!(session["data"]["cart"], json!(["teapot"]));
    assert_eq!(session["data"]["username"], json!("alice"));
    page_token(client, "/cart").await
}

fn signed_in_form_posts_need_the_token(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let token = alice_with_a_cart(&client).await;
        let before = observable(&client).await;

        // Without the token, or with another session's, every form is refused
        // before its handler runs.
        let bob = start_demo(db).await;
        login(&bob, "bob", "builder").await;
        let bobs_token = page_token(&bob, "/cart").await;
        for (path, fields) in [
            ("/cart", "item=kettle"),
            ("/logout", ""),
            ("/login", "username=bob&password=builder"),
        ] {
            let response = post_form(&client, path, fields).await;
            assert_eq!(
                response.status(),
                Status::Forbidden,
                "{path} without a token"
            );
            assert!(set_cookies(&response).is_empty(), "{path}");
            let body = response.into_string().await.unwrap();
            assert!(body.contains("nothing was changed"), "{body}");
            let response = post_form_with_token(&client, path, fields, &bobs_token).await;
            assert_eq!(
                response.status(),
                Status::Forbidden,
                "{path} with bob's token"
            );
            let response =
                post_form_with_token(&client, path, fields, "x".repeat(86).as_str()).await;
            assert_eq!(
                response.status(),
                Status::Forbidden,
                "{path} with a made-up token"
            );
        }
        assert_eq!(observable(&client).await, before, "nothing changed");
        let (status, _) = page(&client, "/profile").await;
        assert_eq!(status, Status::Ok, "still signed in");
        assert_eq!(rows(&client), 2, "alice's and bob's sessions, no others");

        // The token in the header works as well as in the field.
        let response = client
            .post("/cart")
            .header(ContentType::Form)
            .header(Header::new("X-CSRF-Token", token.clone()))
            .body("item=kettle")
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(
            api_session(&client).await["data"]["cart"],
            json!(["teapot", "kettle"])
        );

        // With the token the forms work: switch to bob, then log out.
        let response =
            post_form_with_token(&client, "/login", "username=bob&password=builder", &token).await;
        assert_eq!(response.status(), Status::SeeOther);
        let session = api_session(&client).await;
        assert_eq!(session["data"]["username"], json!("bob"));
        assert_eq!(
            session["data"].get("cart"),
            None,
            "another user's login starts clean"
        );
        // Login cycled the session's token: the old page's token is dead.
        let response = logout(&client, &token).await;
        assert_eq!(response.status(), Status::Forbidden);
        let token = page_token(&client, "/").await;
        let response = logout(&client, &token).await;
        assert_eq!(response.status(), Status::SeeOther);
        let (_, home) = page(&client, "/").await;
        assert!(home.contains("Hello, guest"), "{home}");
    });
}

/// The two ways a browser says a request comes from another site.
const CROSS_SITE: [(&str, &str); 2] = [
    ("Origin", "https://evil.example"),
    ("Sec-Fetch-Site", "cross-site"),
];

async fn cross_site<'c>(
    client: &'c Client,
    method: rocket::http::Method,
    path: &'c str,
    body: String,
    (name, value): (&'static str, &'static str),
) -> LocalResponse<'c> {
    client
        .req(method, path)
        .header(ContentType::Form)
        .header(Header::new(name, value))
        .body(body)
        .dispatch()
        .await
}

fn cross_site_posts_are_refused(db: &TestDatabase) {
    use rocket::http::Method::{Delete, Post, Put};
    run(async {
        for header in CROSS_SITE {
            // A visitor without a session: no token to check, the origin check
            // alone refuses (a forged login would sign the visitor in as alice).
            let client = start_demo(db).await;
            let stored = rows(&client);
            for (method, path, body) in [
                (Post, "/login", "username=alice&password=wonderland"),
                (Post, "/cart", "item=bomb"),
                (Post, "/logout", ""),
                (Post, "/api/counter", ""),
            ] {
                let response = cross_site(&client, method, path, body.to_owned(), header).await;
                assert_eq!(response.status(), Status::Forbidden, "{header:?} {path}");
                assert!(set_cookies(&response).is_empty(), "{header:?} {path}");
            }
            assert_eq!(rows(&client), stored, "{header:?}: nothing stored");
            let session = api_session(&client).await;
            assert_eq!(session["is_new"], json!(true));

            // Signed in, and even with the right token: refused, nothing changes.
            let token = alice_with_a_cart(&client).await;
            let before = observable(&client).await;
            for (method, path, body) in [
                (Post, "/login", "username=bob&password=builder"),
                (Post, "/cart", "item=bomb"),
                (Post, "/logout", ""),
                (Post, "/api/counter", ""),
                (Post, "/api/heartbeat", ""),
                (Put, "/api/keys/cart", "[]"),
                (Delete, "/api/keys/cart", ""),
            ] {
                let body = format!("csrf_token={token}&{body}");
                let response = cross_site(&client, method, path, body, header).await;
                assert_eq!(response.status(), Status::Forbidden, "{header:?} {path}");
                assert!(set_cookies(&response).is_empty(), "{header:?} {path}");
                if path.starts_with("/api/") {
                    let body: Value = response.into_json().await.unwrap();
                    assert_eq!(body, json!({"error": "Forbidden"}));
                }
            }
            assert_eq!(observable(&client).await, before, "{header:?}");
            let (status, _) = page(&client, "/profile").await;
            assert_eq!(status, Status::Ok, "{header:?}: still signed in");
        }
    });
}

fn same_origin_and_headerless_api_calls_work(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let same_origin = [
            vec![],
            vec![
                Header::new("Host", "demo.example:8000"),
                Header::new("Origin", "http://demo.example:8000"),
                Header::new("Sec-Fetch-Site", "same-origin"),
            ],
            vec![Header::new("Sec-Fetch-Site", "same-site")],
            vec![Header::new("Sec-Fetch-Site", "none")],
        ];
        for (count, headers) in same_origin.iter().enumerate() {
            let mut request = client.post("/api/counter");
            for header in headers {
                request = request.header(header.clone());
            }
            let response = request.dispatch().await;
            assert_eq!(response.status(), Status::Ok, "{headers:?}");
            let body: Value = response.into_json().await.unwrap();
            assert_eq!(body, json!({ "counter": count + 1 }), "{headers:?}");
        }
        let response = client
            .put("/api/keys/theme")
            .header(ContentType::JSON)
            .header(Header::new("Host", "demo.example"))
            .header(Header::new("Origin", "https://demo.example"))
            .body("\"dark\"")
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::NoContent);
        let response = client.delete("/api/keys/theme").dispatch().await;
        assert_eq!(response.status(), Status::NoContent);
        assert_eq!(api_session(&client).await["data"], json!({"counter": 4}));

        // A browser's same-origin form post (it always sends `Origin`) works.
        let token = page_token(&client, "/login").await;
        let response = client
            .post("/login")
            .header(ContentType::Form)
            .header(Header::new("Host", "demo.example:8000"))
            .header(Header::new("Origin", "http://demo.example:8000"))
            .body(format!(
                "csrf_token={token}&username=alice&password=wonderland"
            ))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(
            api_session(&client).await["data"]["username"],
            json!("alice")
        );
    });
}

fn heartbeat_reasserts_only_a_signed_in_user(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let response = client.post("/api/heartbeat").dispatch().await;
        assert_eq!(response.status(), Status::Unauthorized);
        assert!(set_cookies(&response).is_empty());
        assert_eq!(rows(&client), 0, "a guest's heartbeat stores nothing");

        let cookie = session_cookie(&login(&client, "alice", "wonderland").await).unwrap();
        let response = client.post("/api/heartbeat").dispatch().await;
        assert_eq!(response.status(), Status::NoContent);
        let session = api_session(&client).await;
        let id = alice_id(&client).to_string();
        assert_eq!(session["user_id"], json!(id));
        assert!(session["data"]["last_seen"].is_string(), "{session}");

        // After logout the old cookie's heartbeat finds no login to refresh.
        let token = page_token(&client, "/").await;
        assert_eq!(logout(&client, &token).await.status(), Status::SeeOther);
        let response = client
            .post("/api/heartbeat")
            .header(cookie_header(&cookie))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Unauthorized);
        let alices = SessionFilter {
            user_id: Some(id),
            ..SessionFilter::default()
        };
        assert_eq!(manager(&client).count(&alices).unwrap(), 0);
    });
}

backend_tests!(
    seed_flow_login_flash_profile_logout,
    login_rotates_the_id_and_keeps_the_cart,
    a_guest_who_stores_nothing_gets_no_cookie_and_no_row,
    wrong_password_is_401_and_stays_unauthenticated,
    both_demo_users_log_in,
    cart_adds_and_lists_items,
    api_session_has_the_documented_shape,
    counter_increments,
    keys_put_and_delete,
    keys_cannot_forge_a_login,
    error_pages_are_html_or_json,
    migrations_coexist_and_restarts_keep_users,
    health_and_static_cost_no_statements_with_a_session_cookie,
    health_and_static_answer_while_the_database_is_unreachable,
    signed_in_form_posts_need_the_token,
    cross_site_posts_are_refused,
    same_origin_and_headerless_api_calls_work,
    heartbeat_reasserts_only_a_signed_in_user,
);

// ---- configuration (no database needed) -----------------------------------------

#[test]
fn the_default_timeout_yields_to_configuration() {
    let timeout = |figment: rocket::figment::Figment| -> i64 {
        figment.extract_inner("session.timeout_minutes").unwrap()
    };
    assert_eq!(
        timeout(demo_app::figment()),
        demo_app::DEFAULT_TIMEOUT_MINUTES
    );
    // `ROCKET_SESSION={database_url=...}` keeps the default timeout...
    let url_only = demo_app::figment().merge(Serialized::global(
        "session",
        json!({"database_url": "postgres://db/app"}),
    ));
    assert_eq!(timeout(url_only.clone()), demo_app::DEFAULT_TIMEOUT_MINUTES);
    assert_eq!(
        url_only
            .extract_inner::<String>("session.database_url")
            .unwrap(),
        "postgres://db/app"
    );
    // ...and Rocket.toml or the environment override it.
    let toml =
        demo_app::figment().merge(Toml::string("[default.session]\ntimeout_minutes = 7").nested());
    assert_eq!(timeout(toml), 7);
    let env =
        demo_app::figment().merge(Serialized::global("session", json!({"timeout_minutes": 5})));
    assert_eq!(timeout(env), 5);
}

// ---- PostgreSQL: a locked sessions table ------------------------------------------

/// Another connection holds `ACCESS EXCLUSIVE` on `sessions` (a migration, a
/// `VACUUM FULL`, an admin's mistake): every session load waits for it. The
/// health check and the stylesheet must not, even with a session cookie.
#[cfg(feature = "postgres")]
#[test]
fn postgres_health_and_static_ignore_a_locked_sessions_table() {
    use std::time::Duration;

    use diesel::connection::SimpleConnection as _;
    use diesel::Connection as _;

    const POOL_TIMEOUT: Duration = Duration::from_secs(5);

    let db = TestDatabase::postgres();
    run(async {
        let client = start_demo_with(
            db.url(),
            json!({"pool_timeout_seconds": POOL_TIMEOUT.as_secs()}),
        )
        .await;
        let response = login(&client, "alice", "wonderland").await;
        let cookie = session_cookie(&response).unwrap();

        let mut locker = diesel::PgConnection::establish(db.url()).unwrap();
        locker
            .batch_execute("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE;")
            .unwrap();

        // A session load would wait for the lock as long as it is held: the
        // bound only turns such a regression into a failure instead of a hang.
        let answered =
            rocket::tokio::time::timeout(POOL_TIMEOUT, assert_health_and_static(&client, &cookie))
                .await;
        assert!(
            answered.is_ok(),
            "the health check or the stylesheet waited for the locked sessions table"
        );

        // The same cookie on a page waits for the lock: no answer while it is held...
        let page = get_with(&client, "/", &cookie);
        rocket::tokio::pin!(page);
        let held = Duration::from_millis(1500);
        let early = rocket::tokio::time::timeout(held, &mut page).await;
        assert!(
            early.is_err(),
            "a session page answered while its row was locked"
        );
        // ...and the page once it is released.
        locker.batch_execute("COMMIT").unwrap();
        let response = rocket::tokio::time::timeout(POOL_TIMEOUT, page)
            .await
            .expect("the page answers once the lock is released");
        assert_eq!(response.status(), Status::Ok);
        let home = response.into_string().await.unwrap();
        assert!(home.contains("Hello, alice"), "{home}");
    });
}
