//! The fairing and guard through Rocket's local client, on every compiled backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::sync::Arc;

use chrono::Duration;
use rocket::figment::providers::Serialized;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::routes;
use rocket::serde::json::{json, Value};
use session_fairing::Sessions;
use shared_model::test_util::TestDatabase;
use shared_model::{backend_tests, SessionFilter, SessionToken};

mod common;

use common::{app, attributes, info, pid, start, Harness};

// ---- the suite ---------------------------------------------------------------

fn untouched_sessions_leave_no_row_and_no_cookie(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let before = h.counts();
        let reply = h.get("/info", None).await;
        assert_eq!(reply.status, Status::Ok);
        assert_eq!(reply.json()["is_new"], json!(true));
        assert_eq!(reply.json()["id"], Value::Null);
        assert!(reply.set_cookies.is_empty(), "{:?}", reply.set_cookies);
        assert_eq!((h.counts() - before).total(), 0, "no statement at all");
        assert_eq!(h.rows(), 0);
        // Reading flashes that are not there changes nothing either.
        let reply = h.get("/flashes", None).await;
        assert_eq!(reply.json(), json!([]));
        assert!(reply.set_cookies.is_empty());
        assert_eq!(h.rows(), 0);
    })
}

fn first_write_creates_the_row_and_the_cookie(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let reply = h.put("/set/cart", None, json!(["apple"])).await;
        assert_eq!(reply.status, Status::NoContent);
        let id = reply.new_id().expect("cookie set");
        assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
        let cookie = &reply.set_cookies[0];
        assert_eq!(
            attributes(cookie),
            vec!["HttpOnly", "Path=/", "SameSite=Lax"],
            "{cookie}"
        );
        assert_eq!(h.rows(), 1);
        let stored = h.stored(&id).unwrap();
        assert_eq!(stored.data["cart"], json!(["apple"]));
        assert_eq!(stored.expires_at, start() + Duration::minutes(30));

        let info = h.get("/info", Some(&id)).await;
        assert_eq!(info.json()["is_new"], json!(false));
        assert_eq!(info.json()["is_modified"], json!(false));
        assert_eq!(info.json()["id"], json!(pid(&id).to_string()));
        assert_eq!(info.json()["keys"], json!(["cart"]));
        assert!(
            info.set_cookies.is_empty(),
            "an existing session cookie is not resent"
        );
    })
}

fn the_map_api_reads_and_writes_data(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let raw_id = h.put("/set/n", None, json!(41)).await.new_id().unwrap();
        let id = Some(raw_id.as_str());
        assert_eq!(h.get("/get/n", id).await.json(), json!(41));
        assert_eq!(h.get("/get/missing", id).await.status, Status::NotFound);
        assert_eq!(h.get("/typed/n", id).await.body, "int 41");
        h.put("/set/word", id, json!("hello")).await;
        assert!(h
            .get("/typed/word", id)
            .await
            .body
            .starts_with("error session value \"word\""));
        assert_eq!(h.get("/typed/missing", id).await.body, "absent");
        let removed = h
            .request(
                rocket::http::Method::Delete,
                "/remove/n",
                Some(&format!("session_id={raw_id}")),
                None,
            )
            .await;
        assert_eq!(removed.json(), json!({"removed": 41, "contains": false}));
        assert_eq!(h.get("/info", id).await.json()["keys"], json!(["word"]));
        // Setting the data key `user_id` sets the column too.
        h.put("/set/user_id", id, json!(7)).await;
        assert_eq!(h.get("/info", id).await.json()["user_id"], json!("7"));
        assert_eq!(
            h.manager()
                .load(&pid(&raw_id))
                .unwrap()
                .unwrap()
                .user_id
                .as_deref(),
            Some("7")
        );
        // clear() empties data and user but keeps the session and its id.
        let cleared = h.post("/clear", id).await;
        assert!(cleared.set_cookies.is_empty());
        let info = h.get("/info", id).await.json();
        assert_eq!(info["keys"], json!([]));
        assert_eq!(info["user_id"], Value::Null);
        assert_eq!(info["id"], json!(pid(&raw_id).to_string()));
        // set_user_id sets only the column.
        h.post("/user/bob", id).await;
        let info = h.get("/info", id).await.json();
        assert_eq!(
            (info["user_id"].clone(), info["keys"].clone()),
            (json!("bob"), json!([]))
        );
        h.post("/user/none", id).await;
        assert_eq!(h.get("/info", id).await.json()["user_id"], Value::Null);
    })
}

fn flashes_show_once(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let id = h
            .post("/flash/success/Welcome%20back!", None)
            .await
            .new_id()
            .unwrap();
        h.post("/flash/info/second", Some(&id)).await;
        let stored = h.stored(&id).unwrap();
        assert_eq!(
            stored.data["flash_messages"],
            json!([{"message": "Welcome back!", "category": "success"}, {"message": "second", "category": "info"}])
        );
        let first = h.get("/flashes", Some(&id)).await.json();
        assert_eq!(first.as_array().unwrap().len(), 2);
        assert_eq!(first[0]["message"], json!("Welcome back!"));
        assert_eq!(
            h.get("/flashes", Some(&id)).await.json(),
            json!([]),
            "gone after reading"
        );
    })
}

fn malformed_and_unknown_cookies_are_never_adopted(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        for malformed in [
            "not-an-id",
            "' OR 1=1 --",
            // A public id (what the cookie held before tokens) is not a token.
            "9b2f0c4e-1d3a-4f6b-8c2d-0e1f2a3b4c5d",
            "9B2F0C4E-1D3A-4F6B-8C2D-0E1F2A3B4C5D",
            // 42 and 44 characters, a `+`, a last character with stray bits.
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
            "",
        ] {
            let before = h.counts();
            let reply = h.get("/info", Some(malformed)).await;
            assert_eq!(reply.json()["is_new"], json!(true), "{malformed:?}");
            assert_eq!(
                (h.counts() - before).total(),
                0,
                "{malformed:?} reached the database"
            );
        }
        // Well-formed but unknown (forged or tampered): one lookup, then a fresh session
        // with a new id, never the one sent.
        let forged = SessionToken::generate().unwrap().expose_secret().to_owned();
        let before = h.counts();
        let reply = h.put("/set/a", Some(&forged), json!(1)).await;
        let spent = h.counts() - before;
        assert_eq!(spent.reads, 1);
        let issued = reply.new_id().unwrap();
        assert_ne!(issued, forged);
        assert!(h.manager().get(&pid(&forged)).unwrap().is_none());
        // A tampered copy of a real id (one character changed) is unknown too.
        let mut tampered = issued.clone().into_bytes();
        tampered[0] = if tampered[0] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            h.get("/info", Some(&tampered)).await.json()["is_new"],
            json!(true)
        );
        // Repeated cookies: the first well-formed id is used.
        let reply = h
            .request(
                rocket::http::Method::Get,
                "/info",
                Some(&format!(
                    "session_id=junk; session_id={issued}; session_id={forged}"
                )),
                None,
            )
            .await;
        assert_eq!(reply.json()["id"], json!(pid(&issued).to_string()));
    })
}

fn idle_and_absolute_expiry_follow_the_clock(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(
            db,
            json!({"absolute_timeout_minutes": 60, "renew_interval_seconds": 0}),
        )
        .await;
        let id = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        // Idle: valid until 30 minutes after the last activity, renewed by each request.
        h.clock.advance(Duration::minutes(29));
        assert_eq!(
            h.get("/info", Some(&id)).await.json()["is_new"],
            json!(false)
        );
        h.clock.advance(Duration::minutes(29));
        let info = h.get("/info", Some(&id)).await.json();
        assert_eq!(info["is_new"], json!(false), "renewed at minute 29");
        // Absolute: created at 0, capped at 60 whatever the activity.
        let expected_cap = start() + Duration::minutes(60);
        assert_eq!(info["expires_at"], json!(expected_cap.to_rfc3339()));
        h.clock.set(expected_cap - Duration::seconds(1));
        assert_eq!(
            h.get("/info", Some(&id)).await.json()["is_new"],
            json!(false)
        );
        h.clock.set(expected_cap);
        assert_eq!(
            h.get("/info", Some(&id)).await.json()["is_new"],
            json!(true),
            "absolute timeout"
        );

        // Idle expiry without activity.
        let other = h.put("/set/b", None, json!(2)).await.new_id().unwrap();
        h.clock.advance(Duration::minutes(30));
        let reply = h.put("/set/c", Some(&other), json!(3)).await;
        assert_ne!(
            reply.new_id().unwrap(),
            other,
            "an expired id is never adopted"
        );
        assert_eq!(
            h.get("/info", Some(&reply.new_id().unwrap())).await.json()["keys"],
            json!(["c"])
        );
    })
}

fn renewals_are_throttled(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await; // renew interval min(60 s, 3 min) = 60 s
        let id = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        h.clock.advance(Duration::seconds(59));
        let before = h.counts();
        h.get("/info", Some(&id)).await;
        let spent = h.counts() - before;
        assert_eq!(
            (spent.reads, spent.writes),
            (1, 0),
            "one SELECT, no write within the interval"
        );
        h.clock.advance(Duration::seconds(1));
        let before = h.counts();
        let reply = h.get("/info", Some(&id)).await;
        let spent = h.counts() - before;
        assert_eq!(
            (spent.reads, spent.writes),
            (1, 1),
            "one SELECT and one UPDATE when due"
        );
        assert!(
            reply.set_cookies.is_empty(),
            "browser-session cookies are not resent on renewal"
        );
        let stored = h.stored(&id).unwrap();
        assert_eq!(
            stored.expires_at,
            start() + Duration::seconds(60) + Duration::minutes(30)
        );

        let eager = Harness::new(db, json!({"renew_interval_seconds": 0})).await;
        let id = eager.put("/set/a", None, json!(1)).await.new_id().unwrap();
        for _ in 0..3 {
            eager.clock.advance(Duration::seconds(1));
            let before = eager.counts();
            eager.get("/info", Some(&id)).await;
            assert_eq!(
                (eager.counts() - before).writes,
                1,
                "renew_interval_seconds = 0 renews every time"
            );
        }
    })
}

fn login_rotates_the_id(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let planted = h
            .put("/set/cart", None, json!(["x"]))
            .await
            .new_id()
            .unwrap();
        let reply = h.post("/login/alice", Some(&planted)).await;
        let authenticated = reply.new_id().expect("new cookie");
        assert_ne!(authenticated, planted);
        let info = h.get("/info", Some(&authenticated)).await.json();
        assert_eq!(info["user_id"], json!("alice"));
        assert_eq!(info["data"], json!({"cart": ["x"], "username": "alice"}));
        let old = h.get("/info", Some(&planted)).await.json();
        assert_eq!(old["is_new"], json!(true), "the pre-login id is dead");
        assert_eq!(old["keys"], json!([]));
        assert_eq!(h.rows(), 1);
        // cycle_id alone: same data, new id.
        let cycled = h
            .post("/cycle", Some(&authenticated))
            .await
            .new_id()
            .unwrap();
        assert_ne!(cycled, authenticated);
        assert_eq!(
            h.get("/info", Some(&cycled)).await.json()["data"],
            info["data"]
        );
        // A new session logging in just gets its first id.
        let fresh = h.post("/login/bob", None).await;
        assert_eq!(
            h.get("/info", Some(&fresh.new_id().unwrap())).await.json()["user_id"],
            json!("bob")
        );
    })
}

fn logout_deletes_row_and_cookie(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(
            db,
            json!({"cookie_domain": "example.test", "cookie_path": "/app"}),
        )
        .await;
        let id = h.post("/login/alice", None).await.new_id().unwrap();
        let reply = h.post("/logout", Some(&id)).await;
        assert_eq!(reply.json(), json!({"is_new": true, "keys": []}));
        assert!(reply.removes_cookie(), "{:?}", reply.set_cookies);
        assert_eq!(
            attributes(&reply.set_cookies[0]),
            vec![
                "Domain=example.test",
                "HttpOnly",
                "Max-Age=0",
                "Path=/app",
                "SameSite=Lax"
            ]
        );
        assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
        assert_eq!(h.rows(), 0);
        assert_eq!(
            h.get("/info", Some(&id)).await.json()["is_new"],
            json!(true),
            "stolen id is worthless"
        );
    })
}

fn delete_then_insert_starts_a_new_session(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let id = h.post("/login/alice", None).await.new_id().unwrap();
        let reply = h.post("/logout?then=flash", Some(&id)).await;
        assert_eq!(reply.json(), json!({"is_new": true, "keys": ["flash"]}));
        let new_id = reply.new_id().expect("new session cookie");
        assert_ne!(new_id, id);
        assert!(!reply.removes_cookie());
        assert!(h.manager().get(&pid(&id)).unwrap().is_none());
        let fresh = h.stored(&new_id).unwrap();
        assert_eq!(Value::Object(fresh.data), json!({"flash": true}));
        assert_eq!(fresh.user_id, None);
        assert_eq!(h.rows(), 1);
    })
}

fn server_errors_save_nothing(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let reply = h.post("/write-then-fail", None).await;
        assert_eq!(reply.status, Status::InternalServerError);
        assert!(reply.set_cookies.is_empty());
        assert_eq!(h.rows(), 0);
        let id = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        h.post("/write-then-fail", Some(&id)).await;
        assert_eq!(h.get("/info", Some(&id)).await.json()["keys"], json!(["a"]));
    })
}

fn failed_saves_are_errors_not_silent_losses(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({"max_data_bytes": 64})).await;
        let reply = h.put("/set/big", None, json!("x".repeat(100))).await;
        assert_eq!(reply.status, Status::PayloadTooLarge);
        assert!(reply.set_cookies.is_empty());
        assert!(reply.body.contains("size limit"), "{}", reply.body);
        assert_eq!(h.rows(), 0);
        let id = h.put("/set/small", None, json!(1)).await.new_id().unwrap();
        let reply = h.put("/set/big", Some(&id), json!("x".repeat(100))).await;
        assert_eq!(reply.status, Status::PayloadTooLarge);
        // Another fairing's header survives the replaced response.
        assert_eq!(
            reply.header("Strict-Transport-Security"),
            Some("max-age=60")
        );
        assert_eq!(
            reply.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            h.get("/info", Some(&id)).await.json()["keys"],
            json!(["small"])
        );
        // A login that would cycle the id and store too much (the login route
        // stores the user name): nothing moves, the old cookie stays valid, no
        // new cookie is handed out, nobody is signed in.
        let long_name = "n".repeat(100);
        let reply = h.post(&format!("/login/{long_name}"), Some(&id)).await;
        assert_eq!(reply.status, Status::PayloadTooLarge);
        assert!(reply.new_id().is_none(), "{:?}", reply.set_cookies);
        let info = h.get("/info", Some(&id)).await.json();
        assert_eq!(
            (info["is_new"].clone(), info["user_id"].clone()),
            (json!(false), Value::Null)
        );
        assert_eq!(h.rows(), 1);
        // The handler's own cookies: another name is kept, one under the session
        // cookie's name is not.
        let reply = h.post("/big-with-cookies", Some(&id)).await;
        assert_eq!(reply.status, Status::PayloadTooLarge);
        assert!(
            reply
                .set_cookies
                .iter()
                .any(|c| c.starts_with("theme=dark")),
            "{:?}",
            reply.set_cookies
        );
        assert!(
            !reply
                .set_cookies
                .iter()
                .any(|c| c.starts_with("session_id=")),
            "{:?}",
            reply.set_cookies
        );
        // A logout whose new session is too big: the old session is gone (the
        // browser is told to drop it) and the answer says so.
        let reply = h.post("/logout-then-big", Some(&id)).await;
        assert_eq!(reply.status, Status::PayloadTooLarge);
        assert!(reply.removes_cookie(), "{:?}", reply.set_cookies);
        assert!(reply.body.contains("signed out"), "{}", reply.body);
        assert!(h.stored(&id).is_none());
        assert_eq!(h.rows(), 0);
    })
}

fn cookie_attributes_follow_the_config(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(
            db,
            json!({
                "cookie_name": "sid", "cookie_secure": true, "cookie_same_site": "strict",
                "cookie_http_only": false, "cookie_persistent": true, "renew_interval_seconds": 0
            }),
        )
        .await;
        let reply = h.put("/set/a", None, json!(1)).await;
        let cookie = reply.set_cookies[0].clone();
        assert!(cookie.starts_with("sid="), "{cookie}");
        assert_eq!(
            attributes(&cookie),
            vec!["Max-Age=1800", "Path=/", "SameSite=Strict", "Secure"]
        );
        let id = cookie
            .strip_prefix("sid=")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        // Persistent cookies are refreshed when the expiry moves.
        h.clock.advance(Duration::minutes(10));
        let renewal = h
            .request(
                rocket::http::Method::Get,
                "/info",
                Some(&format!("sid={id}")),
                None,
            )
            .await;
        assert_eq!(renewal.set_cookies.len(), 1);
        assert!(renewal.set_cookies[0].contains("Max-Age=1800"));
        // A response that hands out a cookie is never cacheable, whatever the
        // handler said.
        let cached = h
            .request(rocket::http::Method::Get, "/cached", None, None)
            .await;
        assert_eq!(cached.set_cookies.len(), 1);
        assert_eq!(cached.cache_control.as_deref(), Some("no-store"));
        assert_eq!(cached.vary, vec!["Cookie"]);
    })
}

fn concurrent_writers_of_different_keys_all_win(db: &TestDatabase) {
    rocket::execute(async {
        let h = Arc::new(Harness::new(db, json!({})).await);
        let id = h.put("/set/base", None, json!(0)).await.new_id().unwrap();
        let writers: Vec<_> = (0..16)
            .map(|i| {
                let h = Arc::clone(&h);
                let id = id.clone();
                rocket::tokio::spawn(async move {
                    h.put(&format!("/set/k{i}"), Some(&id), json!(i))
                        .await
                        .status
                })
            })
            .collect();
        for writer in writers {
            assert_eq!(writer.await.unwrap(), Status::NoContent);
        }
        let data = h.get("/info", Some(&id)).await.json()["data"].clone();
        for i in 0..16 {
            assert_eq!(data[format!("k{i}")], json!(i), "k{i} lost: {data}");
        }
    })
}

fn logout_racing_a_write_stays_logged_out(db: &TestDatabase) {
    rocket::execute(async {
        let h = Arc::new(Harness::new(db, json!({})).await);
        let alice = SessionFilter {
            user_id: Some("alice".into()),
            ..SessionFilter::default()
        };
        for _ in 0..20 {
            let id = h.post("/login/alice", None).await.new_id().unwrap();
            // The late write re-asserts the user it read: if it were saved after the
            // logout in any form, an authenticated session would survive.
            let writer = {
                let (h, id) = (Arc::clone(&h), id.clone());
                rocket::tokio::spawn(async move { h.post("/carry-user", Some(&id)).await })
            };
            let logout = {
                let (h, id) = (Arc::clone(&h), id.clone());
                rocket::tokio::spawn(async move { h.post("/logout", Some(&id)).await })
            };
            let (written, logged_out) = (writer.await.unwrap(), logout.await.unwrap());
            assert!(logged_out.removes_cookie());
            // The write landed before the logout, was refused during it (409), or came
            // after it and started a new anonymous session; never is the old id back.
            assert!(
                written.status == Status::NoContent || written.status == Status::Conflict,
                "{written:?}"
            );
            assert_eq!(
                h.manager().count(&alice).unwrap(),
                0,
                "an authenticated session survived the logout: {written:?}"
            );
            if let Some(new_id) = written.new_id() {
                assert_ne!(new_id, id);
                let fresh = h.stored(&new_id).unwrap();
                assert_eq!(fresh.user_id, None, "the new session is anonymous");
                assert_eq!(fresh.data["user_id"], Value::Null);
                h.manager().delete(&fresh.id).unwrap();
            }
            assert!(
                h.manager().get(&pid(&id)).unwrap().is_none(),
                "not resurrected"
            );
            assert_eq!(
                h.get("/info", Some(&id)).await.json()["is_new"],
                json!(true)
            );
        }
        assert_eq!(h.rows(), 0);
    })
}

/// The race above, forced into its worst order: the write loads the signed-in
/// session, the logout completes, then the write saves what it loaded.
fn a_write_that_loaded_before_a_logout_cannot_sign_back_in(db: &TestDatabase) {
    rocket::execute(async {
        let h = Arc::new(Harness::new(db, json!({})).await);
        let gate = h.client.rocket().state::<common::Gate>().unwrap();
        let id = h.post("/login/alice", None).await.new_id().unwrap();
        let writer = {
            let (h, id) = (Arc::clone(&h), id.clone());
            rocket::tokio::spawn(async move { h.post("/carry-user-after-gate", Some(&id)).await })
        };
        gate.loaded.notified().await;
        assert!(h.post("/logout", Some(&id)).await.removes_cookie());
        gate.release.notify_one();
        let written = writer.await.unwrap();
        assert_eq!(written.status, Status::Conflict, "{written:?}");
        assert!(written.new_id().is_none());
        let alice = SessionFilter {
            user_id: Some("alice".into()),
            ..SessionFilter::default()
        };
        assert_eq!(h.manager().count(&alice).unwrap(), 0);
        assert_eq!(h.rows(), 0);
    })
}

fn a_user_can_be_logged_out_everywhere(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let laptop = h.post("/login/alice", None).await.new_id().unwrap();
        let phone = h.post("/login/alice", None).await.new_id().unwrap();
        let bob = h.post("/login/bob", None).await.new_id().unwrap();
        let reply = h.post("/admin/logout-everywhere/alice", None).await;
        assert_eq!(reply.body, "2");
        assert_eq!(
            h.get("/info", Some(&laptop)).await.json()["is_new"],
            json!(true)
        );
        assert_eq!(
            h.get("/info", Some(&phone)).await.json()["is_new"],
            json!(true)
        );
        assert_eq!(
            h.get("/info", Some(&bob)).await.json()["user_id"],
            json!("bob")
        );
    })
}

fn tokens_are_cookies_and_public_ids_are_stored(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let token = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        assert_eq!(token.len(), 43);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let public = pid(&token).to_string();
        assert_eq!(
            db.query_strings("SELECT id AS value FROM sessions"),
            vec![public.clone()]
        );
        let stored = db.query_strings(
            "SELECT CONCAT(id, '|', COALESCE(user_id, ''), '|', data) AS value FROM sessions",
        );
        assert!(
            !stored.concat().contains(&token),
            "the token reached the table"
        );
        assert_eq!(
            h.get("/info", Some(&token)).await.json()["id"],
            json!(public)
        );
        // Someone who read the table holds a public id: as a cookie it is nothing.
        let before = h.counts();
        let reply = h.put("/set/b", Some(&public), json!(2)).await;
        assert_eq!(reply.status, Status::NoContent);
        assert_ne!(reply.new_id().as_deref(), Some(token.as_str()));
        assert_eq!((h.counts() - before).reads, 0, "no lookup for a public id");
        assert_eq!(
            h.stored(&token).unwrap().data.len(),
            1,
            "the victim's session is untouched"
        );
    })
}

fn routes_without_the_guard_cost_nothing(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let token = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        // Even when a renewal is due, a route that never asks costs nothing.
        h.clock.advance(Duration::minutes(5));
        for path in ["/plain", "/no-such-route"] {
            let before = h.counts();
            let reply = h.get(path, Some(&token)).await;
            assert_eq!(
                (h.counts() - before).total(),
                0,
                "{path} touched the database"
            );
            assert!(reply.set_cookies.is_empty(), "{path}");
            assert!(reply.vary.is_empty(), "{path}: {:?}", reply.vary);
        }
        let before = h.counts();
        let reply = h.get("/info", Some(&token)).await;
        let spent = h.counts() - before;
        assert_eq!(
            (spent.reads, spent.writes),
            (1, 1),
            "loaded once, renewed once"
        );
        assert_eq!(reply.vary, vec!["Cookie"], "the page depends on the cookie");
        // A write on the session this request loaded: the load's SELECT and
        // one UPDATE over the version it read, no transaction around it.
        let before = h.counts();
        h.put("/set/b", Some(&token), json!(2)).await;
        let spent = h.counts() - before;
        assert_eq!((spent.reads, spent.writes, spent.other), (1, 1, 0));
        assert_eq!(h.stored(&token).unwrap().data["b"], json!(2));
        // Two guards in one request still load once: one SELECT for the load, one
        // for the row the merge locks (a second load would make it three).
        let before = h.counts();
        h.post("/login-then-csrf/alice", Some(&token)).await;
        let spent = h.counts() - before;
        assert_eq!((spent.reads, spent.writes), (2, 1));
    })
}

fn a_cached_page_is_keyed_on_the_cookie(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let token = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        // The handler asks for public caching and writes the session, but hands
        // out no cookie: its Cache-Control stands, and caches vary on the cookie.
        let reply = h.get("/cached", Some(&token)).await;
        assert!(reply.set_cookies.is_empty());
        assert_eq!(reply.cache_control.as_deref(), Some("public, max-age=3600"));
        assert_eq!(reply.vary, vec!["Cookie"]);
        assert_eq!(h.stored(&token).unwrap().data["seen"], json!(true));
        // Logging out clears the cookie: never cacheable.
        let reply = h.post("/logout", Some(&token)).await;
        assert!(reply.removes_cookie());
        assert_eq!(reply.cache_control.as_deref(), Some("no-store"));
    })
}

fn login_as_another_user_starts_clean(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let alice = h.post("/login/alice", None).await.new_id().unwrap();
        h.put("/set/cart", Some(&alice), json!(["alice's book"]))
            .await;
        // Bob signs in on the browser alice left signed in: nothing of hers stays.
        let bob = h.post("/login/bob", Some(&alice)).await.new_id().unwrap();
        assert_ne!(bob, alice);
        let info = h.get("/info", Some(&bob)).await.json();
        assert_eq!(info["user_id"], json!("bob"));
        assert_eq!(info["data"], json!({"username": "bob"}));
        let stored = h.stored(&bob).unwrap();
        assert_eq!(Value::Object(stored.data), json!({"username": "bob"}));
        assert!(h.stored(&alice).is_none());
        // Signing in again as the same user keeps the data.
        h.put("/set/cart", Some(&bob), json!(["bob's pen"])).await;
        let again = h.post("/login/bob", Some(&bob)).await.new_id().unwrap();
        assert_eq!(
            h.get("/info", Some(&again)).await.json()["data"],
            json!({"cart": ["bob's pen"], "username": "bob"})
        );
        // Removing `user_id` clears the column even when only the column was set.
        h.request(
            rocket::http::Method::Delete,
            "/remove/user_id",
            Some(&format!("session_id={again}")),
            None,
        )
        .await;
        assert_eq!(h.stored(&again).unwrap().user_id, None);
        assert_eq!(
            h.get("/info", Some(&again)).await.json()["user_id"],
            Value::Null
        );
    })
}

fn csrf_tokens_guard_forms_and_headers(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        // No stored session: nothing to forge, the form goes through (and starts one).
        let reply = h.post_form("/note", None, "note=first", &[]).await;
        assert_eq!(reply.status, Status::NoContent);
        let token = reply.new_id().unwrap();
        let note = |token: String| {
            let h = &h;
            async move { h.stored(&token).unwrap().data["note"].clone() }
        };
        // A stored session: the form needs the session's token.
        let refused = h.post_form("/note", Some(&token), "note=forged", &[]).await;
        assert_eq!(refused.status, Status::Forbidden);
        assert_eq!(note(token.clone()).await, json!("first"), "nothing changed");
        let csrf = h.get("/csrf", Some(&token)).await.body;
        assert_eq!(csrf.len(), 86);
        assert_ne!(
            h.get("/csrf", Some(&token)).await.body,
            csrf,
            "masked afresh each time"
        );
        let other = h.put("/set/x", None, json!(1)).await.new_id().unwrap();
        let foreign = h.get("/csrf", Some(&other)).await.body;
        for bad in [foreign.as_str(), "", "not-a-token", &csrf[..85]] {
            let form = format!("note=forged&csrf_token={bad}");
            let reply = h.post_form("/note", Some(&token), &form, &[]).await;
            assert_eq!(reply.status, Status::Forbidden, "{bad:?}");
        }
        assert_eq!(note(token.clone()).await, json!("first"));
        let form = format!("note=second&csrf_token={csrf}");
        assert_eq!(
            h.post_form("/note", Some(&token), &form, &[]).await.status,
            Status::NoContent
        );
        assert_eq!(note(token.clone()).await, json!("second"));
        // The header works for forms and for other bodies.
        let header = [("X-CSRF-Token", csrf.as_str())];
        assert_eq!(
            h.post_form("/note", Some(&token), "note=third", &header)
                .await
                .status,
            Status::NoContent
        );
        let cookie = format!("session_id={token}");
        let plain = h
            .request(
                rocket::http::Method::Post,
                "/note-header/fourth",
                Some(&cookie),
                None,
            )
            .await;
        assert_eq!(plain.status, Status::Forbidden);
        let with = h
            .request_with(
                rocket::http::Method::Post,
                "/note-header/fourth",
                Some(&cookie),
                None,
                &header,
            )
            .await;
        assert_eq!(with.status, Status::NoContent);
        assert_eq!(note(token.clone()).await, json!("fourth"));
        // The token is nowhere in the table.
        let stored = db.query_strings("SELECT data AS value FROM sessions");
        assert!(!stored.concat().contains(&csrf));
        // Login rotates it: the response's token is the new session's, the old one is dead.
        let reply = h.post("/login-then-csrf/alice", Some(&token)).await;
        let rotated = reply.new_id().unwrap();
        let fresh_csrf = reply.body;
        let old = format!("note=stale&csrf_token={csrf}");
        assert_eq!(
            h.post_form("/note", Some(&rotated), &old, &[]).await.status,
            Status::Forbidden
        );
        let new = format!("note=after-login&csrf_token={fresh_csrf}");
        assert_eq!(
            h.post_form("/note", Some(&rotated), &new, &[]).await.status,
            Status::NoContent
        );
        assert_eq!(note(rotated).await, json!("after-login"));
    })
}

fn cross_site_requests_are_refused(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(
            db,
            json!({"trusted_origins": ["https://admin.example.test"]}),
        )
        .await;
        let put = |cookie: Option<String>, headers: Vec<(&'static str, &'static str)>| {
            let h = &h;
            async move {
                h.request_with(
                    rocket::http::Method::Put,
                    "/set/evil",
                    cookie.as_deref(),
                    Some(json!(true)),
                    &headers,
                )
                .await
            }
        };
        let host = ("Host", "app.example.test");
        // Without a session (a login form, say) and with one.
        for headers in [
            vec![host, ("Origin", "https://evil.example")],
            vec![host, ("Origin", "null")],
            vec![host, ("Sec-Fetch-Site", "cross-site")],
            vec![
                host,
                ("Origin", "https://app.example.test"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            // Another port of the same host is another origin.
            vec![host, ("Origin", "https://app.example.test:8443")],
            vec![
                ("Host", "app.example.test:8000"),
                ("Origin", "http://app.example.test"),
            ],
            // No `Host` to compare an `Origin` with.
            vec![("Origin", "https://app.example.test")],
        ] {
            let reply = put(None, headers.clone()).await;
            assert_eq!(reply.status, Status::Forbidden, "{headers:?}");
            assert!(reply.set_cookies.is_empty());
            assert_eq!(h.rows(), 0, "{headers:?}");
        }
        let token = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        let cookie = Some(format!("session_id={token}"));
        let reply = put(
            cookie.clone(),
            vec![host, ("Origin", "https://evil.example")],
        )
        .await;
        assert_eq!(reply.status, Status::Forbidden);
        assert!(h.stored(&token).unwrap().data.get("evil").is_none());
        // Same origin, a trusted origin, same-site navigation, and tools that send
        // neither header are let through.
        for headers in [
            vec![host, ("Origin", "https://app.example.test")],
            vec![host, ("Origin", "http://app.example.test:80")],
            vec![host, ("Origin", "https://admin.example.test")],
            vec![host, ("Sec-Fetch-Site", "same-origin")],
            vec![host, ("Sec-Fetch-Site", "same-site")],
            vec![],
        ] {
            let reply = put(cookie.clone(), headers.clone()).await;
            assert_eq!(reply.status, Status::NoContent, "{headers:?}");
        }
        // With `Secure` cookies the app is served over HTTPS: an `http` page of
        // the same host is another origin.
        let secure = Harness::new(db, json!({"cookie_secure": true})).await;
        let refused = secure
            .request_with(
                rocket::http::Method::Put,
                "/set/a",
                None,
                Some(json!(1)),
                &[host, ("Origin", "http://app.example.test")],
            )
            .await;
        assert_eq!(refused.status, Status::Forbidden);
        let accepted = secure
            .request_with(
                rocket::http::Method::Put,
                "/set/a",
                None,
                Some(json!(1)),
                &[host, ("Origin", "https://app.example.test")],
            )
            .await;
        assert_eq!(accepted.status, Status::NoContent);
        // Browsers send `Secure` cookies to `http://localhost` too: the app
        // itself on a loopback host is the same origin over plain HTTP.
        let local = secure
            .request_with(
                rocket::http::Method::Put,
                "/set/a",
                None,
                Some(json!(1)),
                &[
                    ("Host", "127.0.0.1:8000"),
                    ("Origin", "http://127.0.0.1:8000"),
                ],
            )
            .await;
        assert_eq!(local.status, Status::NoContent);
        // The admin route pairs `&State<SessionManager>` with `CsrfHeader`,
        // which checks the origin as well.
        let reply = h
            .request_with(
                rocket::http::Method::Post,
                "/admin/logout-everywhere/alice",
                None,
                None,
                &[host, ("Origin", "https://evil.example")],
            )
            .await;
        assert_eq!(reply.status, Status::Forbidden);
        // Reading is never refused.
        let reply = h
            .request_with(
                rocket::http::Method::Get,
                "/info",
                cookie.as_deref(),
                None,
                &[host, ("Sec-Fetch-Site", "cross-site")],
            )
            .await;
        assert_eq!(reply.status, Status::Ok);
    })
}

backend_tests!(
    tokens_are_cookies_and_public_ids_are_stored,
    routes_without_the_guard_cost_nothing,
    a_cached_page_is_keyed_on_the_cookie,
    login_as_another_user_starts_clean,
    csrf_tokens_guard_forms_and_headers,
    cross_site_requests_are_refused,
    a_write_that_loaded_before_a_logout_cannot_sign_back_in,
    a_user_can_be_logged_out_everywhere,
    untouched_sessions_leave_no_row_and_no_cookie,
    first_write_creates_the_row_and_the_cookie,
    the_map_api_reads_and_writes_data,
    flashes_show_once,
    malformed_and_unknown_cookies_are_never_adopted,
    idle_and_absolute_expiry_follow_the_clock,
    renewals_are_throttled,
    login_rotates_the_id,
    logout_deletes_row_and_cookie,
    delete_then_insert_starts_a_new_session,
    server_errors_save_nothing,
    failed_saves_are_errors_not_silent_losses,
    cookie_attributes_follow_the_config,
    concurrent_writers_of_different_keys_all_win,
    logout_racing_a_write_stays_logged_out,
);

// ---- launch-time checks (backend independent) --------------------------------

#[rocket::async_test]
async fn missing_timeout_fails_launch() {
    let db = TestDatabase::sqlite();
    let figment = rocket::Config::figment()
        .merge(("session", json!({"database_url": db.url()})))
        .merge(("log_level", "off"));
    let rocket = rocket::custom(figment).attach(Sessions::fairing());
    let error = rocket.ignite().await.expect_err("launch must fail");
    assert!(
        matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(names) if names[0].name == "Sessions")
    );
}

/// A `databases.<name>` section as `rocket_db_pools` reads it.
fn databases(name: &str, url: &str) -> Value {
    json!({ name: {"url": url, "max_connections": 3, "connect_timeout": 2} })
}

#[rocket::async_test]
async fn database_takes_the_url_from_a_databases_section() {
    let db = TestDatabase::sqlite();
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(Serialized::default(
            "databases",
            databases("main", db.url()),
        ))
        .merge(Serialized::default(
            "session",
            json!({"timeout_minutes": 30, "database": "main", "purge_interval_seconds": 0}),
        ));
    let client = Client::untracked(
        rocket::custom(figment)
            .mount("/", routes![common::set_key])
            .attach(Sessions::fairing()),
    )
    .await
    .expect("launch");
    let response = client
        .put("/set/a")
        .header(ContentType::JSON)
        .body("1")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::NoContent);
    // The row is in the named database, seen through a pool of our own.
    assert_eq!(
        db.manager()
            .count(&shared_model::SessionFilter::default())
            .unwrap(),
        1
    );

    // Both ways of naming the database at once: launch fails.
    let both = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(Serialized::default(
            "databases",
            databases("main", db.url()),
        ))
        .merge(Serialized::default(
            "session",
            json!({"timeout_minutes": 30, "database": "main", "database_url": db.url()}),
        ));
    let error = rocket::custom(both)
        .attach(Sessions::fairing())
        .ignite()
        .await
        .expect_err("launch must fail");
    assert!(
        matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(names) if names[0].name == "Sessions")
    );
    // A name without a section: launch fails too.
    let dangling =
        rocket::Config::figment()
            .merge(("log_level", "off"))
            .merge(Serialized::default(
                "session",
                json!({"timeout_minutes": 30, "database": "main"}),
            ));
    let error = rocket::custom(dangling)
        .attach(Sessions::fairing())
        .ignite()
        .await
        .expect_err("launch must fail");
    assert!(matches!(
        error.kind(),
        rocket::error::ErrorKind::FailedFairings(_)
    ));
}

#[rocket::async_test]
async fn a_config_built_in_code_replaces_the_section() {
    let db = TestDatabase::sqlite();
    // The figment's own section would fail launch (no timeout); it is not read.
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("session", json!({"cookie_name": "from_the_figment"})));
    let config = session_fairing::Config {
        timeout_minutes: Some(30),
        cookie_name: "from_code".into(),
        database_url: Some(db.url().to_owned()),
        purge_interval_seconds: 0,
        ..session_fairing::Config::default()
    };
    let client = Client::untracked(
        rocket::custom(figment)
            .mount("/", routes![common::set_key])
            .attach(Sessions::custom(config)),
    )
    .await
    .expect("launch");
    let response = client
        .put("/set/a")
        .header(ContentType::JSON)
        .body("1")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::NoContent);
    let cookie = response.headers().get_one("Set-Cookie").unwrap();
    assert!(cookie.starts_with("from_code="), "{cookie}");
}

#[rocket::async_test]
async fn attach_order_does_not_matter_and_the_fairing_is_a_singleton() {
    let db = TestDatabase::sqlite();
    // Routes first, an unrelated fairing before it, the fairing attached twice.
    let rocket = app(db.url(), json!({}))
        .attach(rocket::fairing::AdHoc::on_request("noop", |_, _| {
            Box::pin(async {})
        }))
        .attach(Sessions::fairing())
        .attach(Sessions::fairing());
    let client = Client::untracked(rocket).await.expect("launch");
    let response = client
        .put("/set/a")
        .header(ContentType::JSON)
        .body("1")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::NoContent);
    assert_eq!(
        response.headers().get("Set-Cookie").count(),
        1,
        "one fairing, one cookie"
    );
    let manager = client
        .rocket()
        .state::<session_fairing::SessionManager>()
        .unwrap();
    assert_eq!(
        manager
            .count(&shared_model::SessionFilter::default())
            .unwrap(),
        1
    );
}

#[rocket::async_test]
async fn guard_without_fairing_aborts_launch() {
    let figment = rocket::Config::figment().merge(("log_level", "off"));
    let rocket = rocket::custom(figment).mount("/", routes![info]);
    let error = rocket.ignite().await.expect_err("sentinel must abort");
    assert!(
        matches!(error.kind(), rocket::error::ErrorKind::SentinelAborts(_)),
        "{error:?}"
    );
}

#[rocket::async_test]
async fn unreachable_database_gives_503_and_other_routes_work() {
    let dir = tempfile_dir();
    let url = format!("{}/missing/dir/sessions.sqlite", dir.display());
    let rocket = app(
        &url,
        json!({"run_migrations": false, "pool_timeout_seconds": 1}),
    )
    .attach(Sessions::fairing());
    let client = Client::untracked(rocket)
        .await
        .expect("launches with a lazy pool");
    let token = SessionToken::generate().unwrap();
    let id = token.expose_secret();
    let response = client
        .get("/info")
        .header(Header::new("Cookie", format!("session_id={id}")))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    // A route without the guard answers at once, cookie and all: nothing is loaded.
    let response = client
        .get("/plain")
        .header(Header::new("Cookie", format!("session_id={id}")))
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.into_string().await.unwrap(), "no session here");
    // A new session's first write fails to save: 503, no cookie.
    let response = client
        .put("/set/a")
        .header(ContentType::JSON)
        .body("1")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::ServiceUnavailable);
    assert!(response.headers().get_one("Set-Cookie").is_none());
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "session-fairing-{}",
        SessionToken::generate().unwrap().public_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
