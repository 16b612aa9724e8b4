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
    });
    for (key, value) in session.as_object().unwrap() {
        settings[key] = value.clone();
    }
    let figment = demo_app::figment()
        .merge(Serialized::global("session", settings))
        .merge(Serialized::global("log_level", "critical"));
    let sessions = session_fairing::Sessions::fairing().count_statements();
    Client::tracked(demo_app::rocket_with(figment, sessions))
        .await
        .expect("the demo launches")
}

async fn start_demo(db: &TestDatabase) -> Client {
    start_demo_with(db.url(), json!({})).await
}

fn manager(client: &Client) -> &SessionManager {
    client
        .rocket()
        .state::<SessionManager>()
        .expect("Sessions fairing attached")
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

// ---- remember me and "Your devices" ------------------------------------------------

const CHROME_ON_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
const FIREFOX_ON_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CURL: &str = "curl/8.5.0";

/// A public id no session has (well-formed, so only the lookup can miss).
const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

/// One browser on an untracked client: it keeps its own session cookie and
/// sends its own `User-Agent` from its own address, so several of them on
/// one app are several devices.
struct Browser<'c> {
    client: &'c Client,
    user_agent: &'static str,
    address: std::net::SocketAddr,
    cookie: Option<String>,
}

impl<'c> Browser<'c> {
    /// `client` must be untracked (see [`start_devices_demo`]).
    fn new(client: &'c Client, user_agent: &'static str, ip: [u8; 4]) -> Self {
        Self {
            client,
            user_agent,
            address: std::net::SocketAddr::from((ip, 40_000)),
            cookie: None,
        }
    }

    fn ip(&self) -> String {
        self.address.ip().to_string()
    }

    /// Sends a request as this browser and keeps the cookie the answer sets
    /// (an expired removal cookie drops it).
    async fn send(
        &mut self,
        method: rocket::http::Method,
        path: &str,
        form: Option<String>,
    ) -> LocalResponse<'c> {
        let mut request = self
            .client
            .req(method, path.to_owned())
            .header(Header::new("User-Agent", self.user_agent))
            .remote(self.address);
        if let Some(cookie) = &self.cookie {
            request = request.cookie(Cookie::new("session_id", cookie.clone()));
        }
        if let Some(form) = form {
            request = request.header(ContentType::Form).body(form);
        }
        let response = request.dispatch().await;
        if let Some(cookie) = session_cookie(&response) {
            self.cookie = Some(cookie.value().to_owned()).filter(|value| !value.is_empty());
        }
        response
    }

    async fn get(&mut self, path: &str) -> LocalResponse<'c> {
        self.send(rocket::http::Method::Get, path, None).await
    }

    async fn page(&mut self, path: &str) -> (Status, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.into_string().await.unwrap_or_default())
    }

    async fn post(&mut self, path: &str, form: &str) -> LocalResponse<'c> {
        self.send(rocket::http::Method::Post, path, Some(form.to_owned()))
            .await
    }

    async fn delete(&mut self, path: &str) -> LocalResponse<'c> {
        self.send(rocket::http::Method::Delete, path, None).await
    }

    /// Logs in through the form (with its token when the browser has a session).
    async fn log_in(&mut self, username: &str, password: &str, remember: bool) {
        let (status, form) = self.page("/login").await;
        assert_eq!(status, Status::Ok);
        let mut fields = format!(
            "csrf_token={}&username={username}&password={password}",
            form_token(&form)
        );
        if remember {
            fields.push_str("&remember=on");
        }
        let response = self.post("/login", &fields).await;
        assert_eq!(response.status(), Status::SeeOther, "{username} logs in");
    }

    /// `/api/session`'s `user_id`: who this browser is signed in as.
    async fn signed_in_as(&mut self) -> Value {
        let response = self.get("/api/session").await;
        assert_eq!(response.status(), Status::Ok);
        let session: Value = response.into_json().await.unwrap();
        session["user_id"].clone()
    }

    /// `/api/devices` as this browser sees it (it must be signed in).
    async fn devices(&mut self) -> Vec<Value> {
        let response = self.get("/api/devices").await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.content_type(), Some(ContentType::JSON));
        let devices: Value = response.into_json().await.unwrap();
        devices.as_array().expect("an array").clone()
    }

    /// This browser's own public id, as `/api/devices` marks it.
    async fn session_id(&mut self) -> String {
        let devices = self.devices().await;
        let current: Vec<&Value> = devices.iter().filter(|d| d["current"] == true).collect();
        assert_eq!(current.len(), 1, "exactly one current device: {devices:?}");
        current[0]["id"].as_str().unwrap().to_owned()
    }

    /// The CSRF token of the devices page's forms.
    async fn devices_token(&mut self) -> String {
        let (status, html) = self.page("/devices").await;
        assert_eq!(status, Status::Ok);
        form_token(&html)
    }
}

/// The demo with an untracked client: each [`Browser`] carries its own cookie.
async fn start_devices_demo(db: &TestDatabase) -> Client {
    let figment = demo_app::figment()
        .merge(Serialized::global(
            "session",
            json!({"database_url": db.url(), "purge_interval_seconds": 0}),
        ))
        .merge(Serialized::global("log_level", "critical"));
    Client::untracked(demo_app::rocket_from(figment))
        .await
        .expect("the demo launches")
}

/// The rows of the devices table (`<tr …>…</tr>` of its body), as HTML.
fn device_rows(html: &str) -> Vec<String> {
    let body = html
        .split_once("<tbody>")
        .and_then(|(_, rest)| rest.split_once("</tbody>"))
        .map(|(rows, _)| rows)
        .unwrap_or_else(|| panic!("no devices table in {html}"));
    body.split("</tr>")
        .filter(|row| row.contains("<tr"))
        .map(str::to_owned)
        .collect()
}

fn remember_me_gives_a_lasting_cookie(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let (_, form) = page(&client, "/login").await;
        assert!(
            form.contains(r#"<input id="remember" type="checkbox" name="remember" value="on">"#),
            "{form}"
        );
        assert!(form.contains("Remember me for 30 days"), "{form}");

        // Not ticked: a browser-session cookie, the configured 30 minutes.
        let response = login(&client, "alice", "wonderland").await;
        assert_eq!(response.status(), Status::SeeOther);
        let cookie = session_cookie(&response).unwrap();
        assert_eq!(cookie.max_age(), None, "{cookie}");
        let left = expires_in(&api_session(&client).await);
        assert!(left <= chrono::Duration::minutes(31), "{left}");

        // Ticked: Max-Age of 30 days, and the session lasts as long.
        let remembered = start_demo(db).await;
        let response = post_form(
            &remembered,
            "/login",
            "username=alice&password=wonderland&remember=on",
        )
        .await;
        assert_eq!(response.status(), Status::SeeOther);
        let cookie = session_cookie(&response).unwrap();
        let max_age = cookie.max_age().expect("a remembered cookie has Max-Age");
        let thirty_days = rocket::time::Duration::days(30);
        assert!(
            max_age <= thirty_days && max_age > thirty_days - rocket::time::Duration::minutes(1),
            "{cookie}"
        );
        assert_eq!(cookie.http_only(), Some(true));
        let left = expires_in(&api_session(&remembered).await);
        assert!(
            left > chrono::Duration::days(29) && left <= chrono::Duration::days(30),
            "{left}"
        );
        // A later write sends the cookie again, still lasting.
        let response = remembered.post("/api/counter").dispatch().await;
        assert_eq!(response.status(), Status::Ok);
        let cookie = session_cookie(&response).expect("the cookie is refreshed");
        assert!(cookie
            .max_age()
            .is_some_and(|age| age > thirty_days - rocket::time::Duration::minutes(1)));

        // The devices list says which of alice's sessions is remembered.
        let devices: Value = remembered
            .get("/api/devices")
            .dispatch()
            .await
            .into_json()
            .await
            .unwrap();
        let remembered_flags: Vec<(bool, bool)> = devices
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["current"] == true, d["remembered"] == true))
            .collect();
        assert_eq!(remembered_flags.len(), 2, "{devices}");
        assert!(remembered_flags.contains(&(true, true)), "{devices}");
        assert!(remembered_flags.contains(&(false, false)), "{devices}");
    });
}

/// How long until the session of `/api/session`'s answer expires.
fn expires_in(session: &Value) -> chrono::Duration {
    let expires = chrono::DateTime::parse_from_rfc3339(session["expires_at"].as_str().unwrap())
        .expect("RFC 3339");
    expires.with_timezone(&chrono::Utc) - chrono::Utc::now()
}

fn devices_lists_each_browser_of_the_user(db: &TestDatabase) {
    run(async {
        let client = start_devices_demo(db).await;
        let mut chrome = Browser::new(&client, CHROME_ON_LINUX, [192, 0, 2, 10]);
        let mut firefox = Browser::new(&client, FIREFOX_ON_WINDOWS, [198, 51, 100, 7]);
        let mut bobs = Browser::new(&client, CURL, [203, 0, 113, 5]);
        chrome.log_in("alice", "wonderland", false).await;
        firefox.log_in("alice", "wonderland", true).await;
        bobs.log_in("bob", "builder", false).await;
        let chrome_id = chrome.session_id().await;
        let firefox_id = firefox.session_id().await;
        assert_ne!(chrome_id, firefox_id);

        // The page: one row per device of alice's, this one marked, a sign-out
        // form for the other, none of bob's.
        let (status, html) = chrome.page("/devices").await;
        assert_eq!(status, Status::Ok);
        assert!(html.contains("<h1>Your devices</h1>"), "{html}");
        assert!(
            html.contains(r#"<a href="/devices">Devices</a>"#),
            "the nav links it"
        );
        let rows = device_rows(&html);
        assert_eq!(rows.len(), 2, "{html}");
        let row_of = |label: &str| -> &String {
            rows.iter()
                .find(|row| row.contains(label))
                .unwrap_or_else(|| panic!("no row with {label:?} in {html}"))
        };
        let this = row_of("Chrome 156 on Linux");
        assert!(this.contains("This device"), "{this}");
        assert!(this.contains(r#"<td class="ip">192.0.2.10</td>"#), "{this}");
        assert!(
            !this.contains("Sign out"),
            "no button for this device: {this}"
        );
        assert!(!this.contains("Remembered"), "{this}");
        let other = row_of("Firefox 128 on Windows");
        assert!(!other.contains("This device"), "{other}");
        assert!(
            other.contains(r#"<td class="ip">198.51.100.7</td>"#),
            "{other}"
        );
        assert!(other.contains("Remembered"), "{other}");
        assert!(
            other.contains(&format!(r#"action="/devices/{firefox_id}/sign-out""#)),
            "{other}"
        );
        assert!(other.contains(r#"name="csrf_token""#), "{other}");
        assert!(
            html.contains(r#"action="/devices/sign-out-others""#),
            "{html}"
        );
        assert!(
            !html.contains("curl"),
            "bob's session is not alice's: {html}"
        );

        // The JSON view: the documented fields, the same marking.
        let devices = chrome.devices().await;
        assert_eq!(devices.len(), 2, "{devices:?}");
        for device in &devices {
            let mut keys: Vec<&str> = device
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "created_at",
                    "current",
                    "expires_at",
                    "id",
                    "ip_address",
                    "last_seen_at",
                    "remembered",
                    "user_agent"
                ]
            );
            for time in ["created_at", "last_seen_at", "expires_at"] {
                let text = device[time]
                    .as_str()
                    .unwrap_or_else(|| panic!("{time}: {device}"));
                chrono::DateTime::parse_from_rfc3339(text)
                    .unwrap_or_else(|e| panic!("{time} {text}: {e}"));
            }
        }
        let by_id = |id: &str| devices.iter().find(|d| d["id"] == id).unwrap().clone();
        let (this, other) = (by_id(&chrome_id), by_id(&firefox_id));
        assert_eq!(this["current"], json!(true));
        assert_eq!(this["user_agent"], json!(CHROME_ON_LINUX));
        assert_eq!(this["ip_address"], json!(chrome.ip()));
        assert_eq!(this["remembered"], json!(false));
        assert_eq!(other["current"], json!(false));
        assert_eq!(other["user_agent"], json!(FIREFOX_ON_WINDOWS));
        assert_eq!(other["ip_address"], json!(firefox.ip()));
        assert_eq!(other["remembered"], json!(true));

        // The other browser sees the same two, itself marked.
        let seen_by_firefox = firefox.devices().await;
        let current: Vec<&Value> = seen_by_firefox
            .iter()
            .filter(|d| d["current"] == true)
            .map(|d| &d["id"])
            .collect();
        assert_eq!(current, [&json!(firefox_id)]);
        assert_eq!(seen_by_firefox.len(), 2);
        // Bob sees only his own.
        assert_eq!(bobs.devices().await.len(), 1);
    });
}

fn a_revoked_device_is_signed_out(db: &TestDatabase) {
    run(async {
        let client = start_devices_demo(db).await;
        let mut chrome = Browser::new(&client, CHROME_ON_LINUX, [192, 0, 2, 10]);
        let mut firefox = Browser::new(&client, FIREFOX_ON_WINDOWS, [198, 51, 100, 7]);
        chrome.log_in("alice", "wonderland", false).await;
        firefox.log_in("alice", "wonderland", false).await;
        let firefox_id = firefox.session_id().await;
        let alice = json!(alice_id(&client).to_string());
        assert_eq!(firefox.signed_in_as().await, alice);

        let response = chrome.delete(&format!("/api/devices/{firefox_id}")).await;
        assert_eq!(response.status(), Status::NoContent);
        assert!(response.into_string().await.unwrap_or_default().is_empty());

        // The other browser's cookie no longer signs anyone in.
        assert_eq!(firefox.signed_in_as().await, Value::Null);
        let response = firefox.get("/profile").await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response).as_deref(), Some("/login?from=profile"));
        // This one is still signed in, and alone.
        assert_eq!(chrome.signed_in_as().await, alice);
        assert_eq!(chrome.devices().await.len(), 1);

        // Gone is gone; malformed or unknown ids are not found either.
        for id in [
            firefox_id.clone(),
            UNKNOWN_ID.to_owned(),
            firefox_id.to_uppercase(),
            "not-a-session-id".to_owned(),
            "123".to_owned(),
        ] {
            let response = chrome.delete(&format!("/api/devices/{id}")).await;
            assert_eq!(response.status(), Status::NotFound, "{id}");
            let body: Value = response.into_json().await.unwrap();
            assert_eq!(body, json!({"error": "Not Found"}), "{id}");
        }
        assert_eq!(chrome.signed_in_as().await, alice);
    });
}

fn another_users_device_is_not_found(db: &TestDatabase) {
    run(async {
        let client = start_devices_demo(db).await;
        let mut alices = Browser::new(&client, CHROME_ON_LINUX, [192, 0, 2, 10]);
        let mut bobs = Browser::new(&client, FIREFOX_ON_WINDOWS, [198, 51, 100, 7]);
        alices.log_in("alice", "wonderland", false).await;
        bobs.log_in("bob", "builder", false).await;
        let bob = bobs.signed_in_as().await;
        let bobs_id = bobs.session_id().await;

        let response = alices.delete(&format!("/api/devices/{bobs_id}")).await;
        assert_eq!(response.status(), Status::NotFound);
        assert_eq!(bobs.signed_in_as().await, bob, "bob is still signed in");

        // Nor through the page's form: nothing happens, and the page says so.
        let token = alices.devices_token().await;
        let path = format!("/devices/{bobs_id}/sign-out");
        let response = alices.post(&path, &format!("csrf_token={token}")).await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response).as_deref(), Some("/devices"));
        let (_, html) = alices.page("/devices").await;
        assert!(
            html.contains(&flash_html("warning", "That device is not signed in.")),
            "{html}"
        );
        assert_eq!(bobs.signed_in_as().await, bob, "bob is still signed in");
        let (status, _) = bobs.page("/profile").await;
        assert_eq!(status, Status::Ok);
        // And bob's "sign out others" leaves alice alone.
        let response = bobs.post("/api/devices/sign-out-others", "").await;
        assert_eq!(
            response.into_json::<Value>().await.unwrap(),
            json!({"revoked": 0})
        );
        assert_eq!(
            alices.signed_in_as().await,
            json!(alice_id(&client).to_string())
        );
    });
}

fn the_sign_out_button_signs_out_that_device(db: &TestDatabase) {
    run(async {
        let client = start_devices_demo(db).await;
        let mut chrome = Browser::new(&client, CHROME_ON_LINUX, [192, 0, 2, 10]);
        let mut firefox = Browser::new(&client, FIREFOX_ON_WINDOWS, [198, 51, 100, 7]);
        chrome.log_in("alice", "wonderland", false).await;
        firefox.log_in("alice", "wonderland", false).await;
        let firefox_id = firefox.session_id().await;

        let token = chrome.devices_token().await;
        let path = format!("/devices/{firefox_id}/sign-out");
        let response = chrome.post(&path, &format!("csrf_token={token}")).await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response).as_deref(), Some("/devices"));
        let (status, html) = chrome.page("/devices").await;
        assert_eq!(status, Status::Ok);
        assert!(
            html.contains(&flash_html("success", "The device has been signed out.")),
            "{html}"
        );
        assert_eq!(device_rows(&html).len(), 1, "{html}");
        assert!(html.contains("No other device is signed in"), "{html}");
        assert!(!html.contains("sign-out-others"), "{html}");
        assert_eq!(firefox.signed_in_as().await, Value::Null);

        // Its own id (a forged button) is a logout.
        let chrome_id = chrome.session_id().await;
        let token = chrome.devices_token().await;
        let path = format!("/devices/{chrome_id}/sign-out");
        let response = chrome.post(&path, &format!("csrf_token={token}")).await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response).as_deref(), Some("/"));
        let (_, home) = chrome.page("/").await;
        assert!(home.contains("Hello, guest"), "{home}");
        assert!(
            home.contains(&flash_html("info", "You have been logged out.")),
            "{home}"
        );
    });
}

fn sign_out_others_keeps_only_this_device(db: &TestDatabase) {
    run(async {
        let client = start_devices_demo(db).await;
        let mut chrome = Browser::new(&client, CHROME_ON_LINUX, [192, 0, 2, 10]);
        let mut firefox = Browser::new(&client, FIREFOX_ON_WINDOWS, [198, 51, 100, 7]);
        let mut script = Browser::new(&client, CURL, [192, 0, 2, 11]);
        let mut bobs = Browser::new(&client, CURL, [203, 0, 113, 5]);
        chrome.log_in("alice", "wonderland", false).await;
        firefox.log_in("alice", "wonderland", false).await;
        script.log_in("alice", "wonderland", false).await;
        bobs.log_in("bob", "builder", false).await;
        let alice = chrome.signed_in_as().await;
        let bob = bobs.signed_in_as().await;

        let response = chrome.post("/api/devices/sign-out-others", "").await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(response.content_type(), Some(ContentType::JSON));
        assert_eq!(
            response.into_json::<Value>().await.unwrap(),
            json!({"revoked": 2})
        );
        assert_eq!(chrome.signed_in_as().await, alice, "this one stays");
        assert_eq!(firefox.signed_in_as().await, Value::Null);
        assert_eq!(script.signed_in_as().await, Value::Null);
        assert_eq!(bobs.signed_in_as().await, bob, "another user's stay");
        let response = chrome.post("/api/devices/sign-out-others", "").await;
        assert_eq!(
            response.into_json::<Value>().await.unwrap(),
            json!({"revoked": 0})
        );

        // The page's button does the same and says how many.
        firefox.log_in("alice", "wonderland", false).await;
        let token = chrome.devices_token().await;
        let response = chrome
            .post("/devices/sign-out-others", &format!("csrf_token={token}"))
            .await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response).as_deref(), Some("/devices"));
        let (_, html) = chrome.page("/devices").await;
        assert!(
            html.contains(&flash_html("success", "Signed out 1 other device.")),
            "{html}"
        );
        assert_eq!(device_rows(&html).len(), 1);
        assert_eq!(firefox.signed_in_as().await, Value::Null);
        assert_eq!(chrome.signed_in_as().await, alice);
    });
}

fn device_forms_need_the_token(db: &TestDatabase) {
    run(async {
        let client = start_devices_demo(db).await;
        let mut chrome = Browser::new(&client, CHROME_ON_LINUX, [192, 0, 2, 10]);
        let mut firefox = Browser::new(&client, FIREFOX_ON_WINDOWS, [198, 51, 100, 7]);
        chrome.log_in("alice", "wonderland", false).await;
        firefox.log_in("alice", "wonderland", false).await;
        let firefox_id = firefox.session_id().await;
        let firefox_token = firefox.devices_token().await;
        let sign_out = format!("/devices/{firefox_id}/sign-out");

        for path in [sign_out.as_str(), "/devices/sign-out-others"] {
            for fields in [
                String::new(),
                format!("csrf_token={}", "x".repeat(86)),
                // Another session's token is not this one's.
                format!("csrf_token={firefox_token}"),
            ] {
                let response = chrome.post(path, &fields).await;
                assert_eq!(response.status(), Status::Forbidden, "{path} {fields}");
                assert!(set_cookies(&response).is_empty(), "{path}");
                let body = response.into_string().await.unwrap();
                assert!(body.contains("nothing was changed"), "{body}");
            }
        }
        assert_eq!(
            firefox.signed_in_as().await,
            json!(alice_id(&client).to_string())
        );
        assert_eq!(chrome.devices().await.len(), 2);
    });
}

fn guests_are_sent_to_log_in_from_devices(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        let response = client.get("/devices").dispatch().await;
        assert_eq!(response.status(), Status::SeeOther);
        assert_eq!(location(&response).as_deref(), Some("/login?from=devices"));
        assert!(set_cookies(&response).is_empty());
        let (status, form) = page(&client, "/login?from=devices").await;
        assert_eq!(status, Status::Ok);
        assert!(
            form.contains(&flash_html("warning", "Please log in to see your devices.")),
            "{form}"
        );
        assert!(
            !form.contains(r#"href="/devices""#),
            "no nav link for guests"
        );

        // The API answers 401 and stores nothing either.
        for (method, path) in [
            (rocket::http::Method::Get, "/api/devices".to_owned()),
            (
                rocket::http::Method::Delete,
                format!("/api/devices/{UNKNOWN_ID}"),
            ),
            (
                rocket::http::Method::Post,
                "/api/devices/sign-out-others".to_owned(),
            ),
        ] {
            let response = client.req(method, path.clone()).dispatch().await;
            assert_eq!(response.status(), Status::Unauthorized, "{path}");
            assert!(set_cookies(&response).is_empty(), "{path}");
            let body: Value = response.into_json().await.unwrap();
            assert_eq!(body, json!({"error": "not signed in"}));
        }
        assert_eq!(rows(&client), 0, "no session row for a guest");

        // A guest with a session (a cart) gets the notice as a flash.
        let response = post_form(&client, "/cart", "item=teapot").await;
        assert_eq!(response.status(), Status::SeeOther);
        let response = client.get("/devices").dispatch().await;
        assert_eq!(location(&response).as_deref(), Some("/login"));
        let (_, form) = page(&client, "/login").await;
        assert!(
            form.contains(&flash_html("warning", "Please log in to see your devices.")),
            "{form}"
        );
    });
}

fn the_eleventh_login_signs_out_the_least_recently_used(db: &TestDatabase) {
    run(async {
        let client = start_devices_demo(db).await;
        let mut bobs = Browser::new(&client, CURL, [203, 0, 113, 5]);
        bobs.log_in("bob", "builder", false).await;
        let bob = bobs.signed_in_as().await;
        assert!(bob.is_string(), "{bob}");
        let mut browsers: Vec<Browser<'_>> = (1..=10)
            .map(|n| Browser::new(&client, CHROME_ON_LINUX, [192, 0, 2, n]))
            .collect();
        for browser in &mut browsers {
            browser.log_in("alice", "wonderland", false).await;
        }
        let alice = json!(alice_id(&client).to_string());
        // The first one is used again; the second is now the least recently used.
        let response = browsers[0].post("/api/counter", "").await;
        assert_eq!(response.status(), Status::Ok);
        assert_eq!(browsers[9].devices().await.len(), 10);

        let mut eleventh = Browser::new(&client, FIREFOX_ON_WINDOWS, [198, 51, 100, 7]);
        eleventh.log_in("alice", "wonderland", false).await;
        assert_eq!(eleventh.signed_in_as().await, alice);
        let devices = eleventh.devices().await;
        assert_eq!(devices.len(), 10, "{devices:?}");
        let addresses: Vec<&str> = devices
            .iter()
            .filter_map(|d| d["ip_address"].as_str())
            .collect();
        assert!(!addresses.contains(&"192.0.2.2"), "{addresses:?}");
        for (n, browser) in browsers.iter_mut().enumerate() {
            let expected = if n == 1 { Value::Null } else { alice.clone() };
            assert_eq!(browser.signed_in_as().await, expected, "browser {}", n + 1);
        }
        assert_eq!(bobs.signed_in_as().await, bob, "bob is not capped by alice");
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
    remember_me_gives_a_lasting_cookie,
    devices_lists_each_browser_of_the_user,
    a_revoked_device_is_signed_out,
    another_users_device_is_not_found,
    the_sign_out_button_signs_out_that_device,
    sign_out_others_keeps_only_this_device,
    device_forms_need_the_token,
    guests_are_sent_to_log_in_from_devices,
    the_eleventh_login_signs_out_the_least_recently_used,
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

#[test]
fn the_demo_audits_and_caps_sessions_unless_configured_otherwise() {
    let settings = |figment: rocket::figment::Figment| -> (bool, Option<u32>) {
        (
            figment.extract_inner("session.audit").unwrap(),
            figment
                .extract_inner("session.max_sessions_per_user")
                .unwrap(),
        )
    };
    assert_eq!(settings(demo_app::figment()), (true, Some(10)));
    let env = demo_app::figment().merge(Serialized::global(
        "session",
        json!({"database_url": "postgres://db/app", "audit": false, "max_sessions_per_user": 3}),
    ));
    assert_eq!(settings(env), (false, Some(3)));
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
