//! Two demo processes, one database: a session started on one is the same
//! session on the other, and a logout on either ends it on both.
//!
//! The PostgreSQL and MariaDB runs are `#[ignore]`d for a plain `cargo test`
//! (they start the demo binary, see `common`); `.ci/run` runs them with
//! `--include-ignored` against the release build. Once run, a missing server
//! URL or a binary without the backend's feature fails them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

mod common;

use common::{form_token, http, session_cookie, Demo};
use serde_json::{json, Value};
use shared_model::test_util::TestDatabase;

fn body(response: ureq::http::Response<ureq::Body>) -> String {
    let mut response = response;
    response.body_mut().read_to_string().expect("a text body")
}

fn json_body(response: ureq::http::Response<ureq::Body>) -> Value {
    serde_json::from_str(&body(response)).expect("a JSON body")
}

fn cookie_header(session_id: &str) -> String {
    format!("session_id={session_id}")
}

fn two_instances_share_sessions(db: &TestDatabase) {
    let workdir = tempfile::tempdir().unwrap();
    // Both start at once on an empty database: their migration runs take turns.
    db.execute("DROP TABLE session_events");
    db.execute("DROP TABLE sessions");
    db.execute("DROP TABLE __diesel_schema_migrations");
    let mut first = Demo::spawn("first", db.url(), workdir.path());
    let mut second = Demo::spawn("second", db.url(), workdir.path());
    first.wait();
    second.wait();
    let agent = http();

    // Log in on the first instance.
    let response = agent
        .post(first.url("/login"))
        .send_form([("username", "alice"), ("password", "wonderland")])
        .unwrap();
    assert_eq!(response.status(), 303, "{}", first.log_text());
    assert_eq!(response.headers()["location"], "/");
    let session_id = session_cookie(&response).expect("login sets the session cookie");
    let cookie = cookie_header(&session_id);

    // The second instance knows the session.
    let response = agent
        .get(second.url("/profile"))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", second.log_text());
    let profile = body(response);
    assert!(
        profile.contains(r#"<dd id="profile-username">alice</dd>"#),
        "{profile}"
    );
    // The welcome flash was stored by the first and is shown (once) by the second.
    assert!(profile.contains("Welcome back!"), "{profile}");

    for expected in 1..=3 {
        let response = agent
            .post(second.url("/api/counter"))
            .header("Cookie", &cookie)
            .send_empty()
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(json_body(response), json!({ "counter": expected }));
    }
    // ...and the first sees what the second wrote.
    let response = agent
        .get(first.url("/api/session"))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    let session = json_body(response);
    assert_eq!(session["data"]["counter"], json!(3));
    assert_eq!(session["data"]["username"], json!("alice"));
    assert_eq!(session["is_new"], json!(false));

    // Log out on the second, with the token of a page the first rendered (it
    // belongs to the session, not to an instance)...
    let response = agent
        .get(first.url("/"))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    let token = form_token(&body(response));
    let response = agent
        .post(second.url("/logout"))
        .header("Cookie", &cookie)
        .send_form([("csrf_token", token)])
        .unwrap();
    assert_eq!(response.status(), 303);
    let after_logout = session_cookie(&response).expect("the logout flash's new session");
    assert_ne!(after_logout, session_id);

    // ...and the first has logged out too: the old cookie is worthless.
    let response = agent
        .get(first.url("/profile"))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(response.status(), 303);
    // A dead cookie is no session: the notice travels in the address.
    assert_eq!(response.headers()["location"], "/login?from=profile");
    let response = agent
        .get(first.url("/"))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    let home = body(response);
    assert!(home.contains("Hello, guest"), "{home}");

    // The browser's new cookie shows the logout flash on the first instance.
    let response = agent
        .get(first.url("/"))
        .header("Cookie", cookie_header(&after_logout))
        .call()
        .unwrap();
    let home = body(response);
    assert!(home.contains("You have been logged out."), "{home}");
    assert!(home.contains("Hello, guest"), "{home}");
}

/// SQLite works the same across processes (WAL); no server needed.
#[test]
fn sqlite() {
    two_instances_share_sessions(&TestDatabase::sqlite());
}

#[cfg(feature = "postgres")]
#[test]
#[ignore = "starts two demo processes on PostgreSQL; run by .ci/run (--include-ignored)"]
fn postgres() {
    two_instances_share_sessions(&TestDatabase::postgres());
}

#[cfg(feature = "mysql")]
#[test]
#[ignore = "starts two demo processes on MariaDB; run by .ci/run (--include-ignored)"]
fn mysql() {
    two_instances_share_sessions(&TestDatabase::mysql());
}
