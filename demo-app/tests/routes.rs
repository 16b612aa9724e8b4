//! Every route through Rocket's local client, on every compiled backend
//! (SQLite always; PostgreSQL and MariaDB with their features and URLs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use rocket::figment::providers::{Format, Serialized, Toml};
use rocket::http::{ContentType, Cookie, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::serde::json::{json, Value};
use shared_model::test_util::TestDatabase;
use shared_model::{backend_tests, Database, SessionFilter, SessionManager};

// ---- helpers ------------------------------------------------------------------

async fn start_demo(db: &TestDatabase) -> Client {
    let figment = demo_app::figment()
        .merge(Serialized::global(
            "session",
            json!({"database_url": db.url(), "purge_interval_seconds": 0}),
        ))
        .merge(Serialized::global("log_level", "critical"));
    Client::tracked(demo_app::rocket_from(figment))
        .await
        .expect("the demo launches")
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

async fn login<'c>(client: &'c Client, username: &str, password: &str) -> LocalResponse<'c> {
    post_form(
        client,
        "/login",
        &format!("username={username}&password={password}"),
    )
    .await
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

        let response = client.post("/logout").dispatch().await;
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

        let response = login(&client, "bob", "builder").await;
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
        for path in ["/", "/login", "/cart", "/api/session", "/nowhere"] {
            let response = client.get(path).dispatch().await;
            assert!(
                set_cookies(&response).is_empty(),
                "{path} set a cookie: {:?}",
                set_cookies(&response)
            );
        }
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
        post_form(&client, "/cart", "item=kettle").await;
        let response = login(&client, "bob", "wonderland").await;
        assert_eq!(response.status(), Status::Unauthorized);
        let session = api_session(&client).await;
        assert_eq!(session["user_id"], Value::Null);
        assert_eq!(session["data"].get("is_authenticated"), None);
        assert_eq!(session["data"]["cart"], json!(["kettle"]));
    });
}

fn both_demo_users_log_in(db: &TestDatabase) {
    run(async {
        let client = start_demo(db).await;
        for (username, password) in demo_app::users::DEMO_USERS {
            let response = login(&client, username, password).await;
            assert_eq!(response.status(), Status::SeeOther, "{username}");
            let (_, home) = page(&client, "/").await;
            assert!(home.contains(&format!("Hello, {username}")), "{home}");
            client.post("/logout").dispatch().await;
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

        for item in ["Teapot", "<b>Tea</b> & biscuits"] {
            let response = post_form(
                &client,
                "/cart",
                &format!("item={}", item.replace('&', "%26").replace(' ', "+")),
            )
            .await;
            assert_eq!(response.status(), Status::SeeOther);
            assert_eq!(location(&response).as_deref(), Some("/cart"));
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
        let response = post_form(&client, "/cart", "item=+++").await;
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
