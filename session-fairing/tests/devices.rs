//! Devices, remember me, the per-user cap, client metadata and the audit log,
//! through real requests on every compiled backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

mod common;

use chrono::Duration;
use common::{pid, start, Harness, Reply};
use rocket::http::Method;
use rocket::serde::json::json;
use shared_model::test_util::TestDatabase;
use shared_model::{backend_tests, EventKind, SessionFilter};

/// A request from a client at `ip` with `agent`, carrying `token` if any.
async fn from(
    h: &Harness,
    method: Method,
    path: &str,
    token: Option<&str>,
    (ip, agent): (&str, &str),
) -> Reply {
    let cookie = token.map(|token| format!("session_id={token}"));
    // `PUT /set/<key>` takes a JSON value.
    let body = (method == Method::Put).then(|| json!(["x"]));
    h.request_with(
        method,
        path,
        cookie.as_deref(),
        body,
        &[("X-Real-IP", ip), ("User-Agent", agent)],
    )
    .await
}

const LAPTOP: (&str, &str) = ("203.0.113.5", "Laptop/1.0");
const PHONE: (&str, &str) = ("198.51.100.7", "Phone/2.0");
const TABLET: (&str, &str) = ("192.0.2.9", "Tablet/3.0");

/// Signs `user` in from a new client; returns its cookie token.
async fn sign_in(h: &Harness, user: &str, client: (&str, &str)) -> String {
    let reply = from(h, Method::Post, &format!("/login/{user}"), None, client).await;
    assert_eq!(reply.status.code, 204, "{}", reply.body);
    reply.new_id().expect("a login stores the session")
}

fn max_age(reply: &Reply) -> Option<i64> {
    reply
        .set_cookies
        .iter()
        .find(|cookie| cookie.starts_with("session_id="))?
        .split("; ")
        .find_map(|part| part.strip_prefix("Max-Age="))?
        .parse()
        .ok()
}

fn client_metadata_rides_on_writes_the_request_makes_anyway(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({"audit": true})).await;
        let token = from(&h, Method::Put, "/set/a", None, LAPTOP).await;
        let token = token.new_id().unwrap();
        let stored = h.stored(&token).unwrap();
        assert_eq!(stored.ip_address.as_deref(), Some("203.0.113.5"));
        assert_eq!(stored.user_agent.as_deref(), Some("Laptop/1.0"));
        assert_eq!(stored.last_seen_at, Some(start()));

        // Inside the renew interval a read-only request writes nothing, even
        // from another client: one SELECT, no write.
        h.clock.advance(Duration::seconds(30));
        let before = h.counts();
        from(&h, Method::Get, "/info", Some(&token), PHONE).await;
        let spent = h.counts() - before;
        assert_eq!((spent.reads, spent.writes, spent.other), (1, 0, 0));
        assert_eq!(
            h.stored(&token).unwrap().user_agent.as_deref(),
            Some("Laptop/1.0")
        );

        // The renewal is still one UPDATE, and now carries the new client.
        h.clock.advance(Duration::seconds(30));
        let before = h.counts();
        from(&h, Method::Get, "/info", Some(&token), PHONE).await;
        let spent = h.counts() - before;
        assert_eq!((spent.reads, spent.writes, spent.other), (1, 1, 0));
        let stored = h.stored(&token).unwrap();
        assert_eq!(stored.ip_address.as_deref(), Some("198.51.100.7"));
        assert_eq!(stored.user_agent.as_deref(), Some("Phone/2.0"));
        assert_eq!(stored.last_seen_at, Some(start() + Duration::seconds(60)));

        // A save records it too.
        h.clock.advance(Duration::seconds(5));
        from(&h, Method::Put, "/set/b", Some(&token), TABLET).await;
        let stored = h.stored(&token).unwrap();
        assert_eq!(stored.user_agent.as_deref(), Some("Tablet/3.0"));
        assert_eq!(stored.last_seen_at, Some(start() + Duration::seconds(65)));

        // A 600-byte agent is stored cut to 512 bytes.
        let long = "x".repeat(600);
        let reply = from(&h, Method::Put, "/set/a", None, ("192.0.2.1", &long)).await;
        let stored = h.stored(&reply.new_id().unwrap()).unwrap();
        assert_eq!(stored.user_agent.map(|agent| agent.len()), Some(512));

        // record_client = false stores neither.
        let private = Harness::new(db, json!({"record_client": false})).await;
        let token = from(&private, Method::Put, "/set/a", None, LAPTOP).await;
        let stored = private.stored(&token.new_id().unwrap()).unwrap();
        assert_eq!((stored.ip_address, stored.user_agent), (None, None));
    })
}

fn remember_me_outlives_the_idle_timeout(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({"remember_max_days": 30})).await;
        let reply = from(&h, Method::Post, "/login/alice", None, LAPTOP).await;
        assert_eq!(
            max_age(&reply),
            None,
            "not remembered: a browser-session cookie"
        );
        let plain = reply.new_id().unwrap();
        let remembered = sign_in(&h, "alice", PHONE).await;
        let reply = h.post("/remember/90", Some(&remembered)).await;
        assert_eq!(
            max_age(&reply),
            Some(30 * 24 * 3600),
            "capped at remember_max_days, and persistent: {:?}",
            reply.set_cookies
        );
        assert_eq!(
            h.stored(&remembered).unwrap().timeout_seconds,
            Some(30 * 24 * 3600)
        );

        // Two hours idle: far past the 30-minute timeout.
        h.clock.advance(Duration::hours(2));
        assert_eq!(
            h.get("/info", Some(&plain)).await.json()["is_new"],
            json!(true)
        );
        let reply = h.get("/info", Some(&remembered)).await;
        assert_eq!(
            reply.json()["user_id"],
            json!("alice"),
            "remembered session still signed in"
        );
        assert_eq!(
            max_age(&reply),
            Some(30 * 24 * 3600),
            "the renewal refreshes Max-Age"
        );
        let expires = h.stored(&remembered).unwrap().expires_at;
        assert_eq!(expires, start() + Duration::hours(2) + Duration::days(30));

        // The purge honours the row's own timeout: kept until it lapses.
        h.clock.advance(Duration::days(29));
        assert_eq!(
            h.manager().purge_expired(100).unwrap(),
            1,
            "only the plain session"
        );
        assert!(h.stored(&remembered).is_some());
        h.clock.advance(Duration::days(1) + Duration::hours(2));
        assert_eq!(h.manager().purge_expired(100).unwrap(), 1);
        assert_eq!(
            h.get("/info", Some(&remembered)).await.json()["is_new"],
            json!(true)
        );
    })
}

fn another_users_login_does_not_inherit_remember_me(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let alice = sign_in(&h, "alice", LAPTOP).await;
        h.post("/remember/30", Some(&alice)).await;
        // Alice signs in again on her own browser: still remembered.
        let again = h.post("/login/alice", Some(&alice)).await;
        assert_eq!(max_age(&again), Some(30 * 24 * 3600));
        let again = again.new_id().unwrap();
        assert_eq!(
            h.stored(&again).unwrap().timeout_seconds,
            Some(30 * 24 * 3600)
        );
        // An hour later Bob signs in on the browser she left: a
        // browser-session cookie, the configured timeout, a new start.
        h.clock.advance(Duration::hours(1));
        let bob = h.post("/login/bob", Some(&again)).await;
        assert_eq!(max_age(&bob), None, "{:?}", bob.set_cookies);
        let bob = bob.new_id().unwrap();
        let stored = h.stored(&bob).unwrap();
        assert_eq!(stored.timeout_seconds, None);
        assert_eq!(stored.created_at, start() + Duration::hours(1));
        assert_eq!(
            stored.expires_at,
            start() + Duration::hours(1) + Duration::minutes(30)
        );
        let devices = h.get("/devices", Some(&bob)).await.json();
        assert_eq!(devices[0]["created_at"], json!(stored.created_at));

        // Carol ticks "Remember me" on Bob's browser: the remember made with
        // her login is hers, whatever the order of the calls.
        let carol = h.post("/login-remembered/carol", Some(&bob)).await;
        assert_eq!(
            max_age(&carol),
            Some(30 * 24 * 3600),
            "{:?}",
            carol.set_cookies
        );
        let stored = h.stored(&carol.new_id().unwrap()).unwrap();
        assert_eq!(stored.timeout_seconds, Some(30 * 24 * 3600));
        assert_eq!(
            stored.expires_at,
            start() + Duration::hours(1) + Duration::days(30)
        );
    })
}

fn devices_are_listed_and_revoked_per_user(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({})).await;
        let laptop = sign_in(&h, "alice", LAPTOP).await;
        h.clock.advance(Duration::minutes(1));
        let phone = sign_in(&h, "alice", PHONE).await;
        let bobs = sign_in(&h, "bob", TABLET).await;

        let devices = from(&h, Method::Get, "/devices", Some(&laptop), LAPTOP)
            .await
            .json();
        let devices = devices.as_array().unwrap();
        assert_eq!(devices.len(), 2, "{devices:?}");
        assert_eq!(
            devices[0]["id"],
            json!(pid(&phone).to_string()),
            "most recently seen first"
        );
        assert_eq!(devices[0]["current"], json!(false));
        assert_eq!(devices[0]["user_agent"], json!("Phone/2.0"));
        assert_eq!(devices[0]["ip_address"], json!("198.51.100.7"));
        assert_eq!(devices[1]["id"], json!(pid(&laptop).to_string()));
        assert_eq!(devices[1]["current"], json!(true));
        assert_eq!(devices[1]["remembered"], json!(false));
        assert_eq!(
            h.get("/devices", None).await.json(),
            json!([]),
            "a guest has none"
        );

        // Bob's session is not Alice's to revoke: "not found", and it lives on.
        let reply = h
            .post(&format!("/revoke/{}", pid(&bobs)), Some(&laptop))
            .await;
        assert_eq!(reply.body, "false");
        assert_eq!(
            h.get("/info", Some(&bobs)).await.json()["user_id"],
            json!("bob")
        );

        // Her phone is.
        let reply = h
            .post(&format!("/revoke/{}", pid(&phone)), Some(&laptop))
            .await;
        assert_eq!(reply.body, "true");
        let info = h.get("/info", Some(&phone)).await.json();
        assert_eq!(
            (info["is_new"].clone(), info["user_id"].clone()),
            (json!(true), json!(null))
        );
        assert_eq!(
            h.get("/info", Some(&laptop)).await.json()["user_id"],
            json!("alice")
        );

        // Sign out other devices: both new ones go, this one and Bob's stay.
        let phone = sign_in(&h, "alice", PHONE).await;
        let tablet = sign_in(&h, "alice", TABLET).await;
        let reply = h.post("/revoke-others", Some(&laptop)).await;
        assert_eq!(reply.body, "2");
        for gone in [&phone, &tablet] {
            assert_eq!(
                h.get("/info", Some(gone)).await.json()["is_new"],
                json!(true)
            );
        }
        assert_eq!(
            h.get("/info", Some(&laptop)).await.json()["user_id"],
            json!("alice")
        );
        assert_eq!(
            h.get("/info", Some(&bobs)).await.json()["user_id"],
            json!("bob")
        );
        assert_eq!(
            h.post("/revoke-others", None).await.body,
            "0",
            "a guest revokes nothing"
        );
    })
}

fn the_per_user_cap_signs_out_the_least_recently_seen(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({"max_sessions_per_user": 2})).await;
        let first = sign_in(&h, "alice", LAPTOP).await;
        h.clock.advance(Duration::minutes(2));
        let second = sign_in(&h, "alice", PHONE).await;
        // The first is used again (a renewal): now the second is the stalest.
        h.clock.advance(Duration::minutes(2));
        h.get("/info", Some(&first)).await;
        h.clock.advance(Duration::minutes(2));
        let third = sign_in(&h, "alice", TABLET).await;
        let bob = sign_in(&h, "bob", TABLET).await;
        // Checked through the manager: a request would renew (and so "see") them.
        assert!(h.stored(&second).is_none(), "the least recently seen went");
        assert!(h.stored(&first).is_some() && h.stored(&third).is_some());
        assert!(h.stored(&bob).is_some(), "other users are not counted");
        let filter = SessionFilter {
            user_id: Some("alice".into()),
            ..SessionFilter::default()
        };
        assert_eq!(h.manager().count(&filter).unwrap(), 2);

        // Signing an existing anonymous session in counts the same way.
        let anonymous = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
        h.clock.advance(Duration::minutes(1));
        let fourth = h
            .post("/login/alice", Some(&anonymous))
            .await
            .new_id()
            .unwrap();
        assert_eq!(h.manager().count(&filter).unwrap(), 2);
        assert!(h.stored(&third).is_some() && h.stored(&fourth).is_some());
        assert!(h.stored(&first).is_none(), "now the stalest");
        assert_eq!(
            h.get("/info", Some(&second)).await.json()["is_new"],
            json!(true)
        );
    })
}

fn lifecycle_events_are_recorded_only_when_auditing(db: &TestDatabase) {
    rocket::execute(async {
        let h = Harness::new(db, json!({"audit": true})).await;
        let anonymous = from(&h, Method::Put, "/set/cart", None, LAPTOP)
            .await
            .new_id()
            .unwrap();
        let signed_in = from(&h, Method::Post, "/login/alice", Some(&anonymous), LAPTOP)
            .await
            .new_id()
            .unwrap();
        let other = sign_in(&h, "alice", PHONE).await;
        let third = sign_in(&h, "alice", TABLET).await;
        assert_eq!(
            h.post(&format!("/revoke/{}", pid(&other)), Some(&signed_in))
                .await
                .body,
            "true"
        );
        assert_eq!(h.post("/revoke-others", Some(&signed_in)).await.body, "1");
        h.post("/logout", Some(&signed_in)).await;

        let kinds_of = |token: &str| -> Vec<EventKind> {
            let mut events = h.manager().events_of_session(&pid(token), 10).unwrap();
            events.reverse();
            events
                .into_iter()
                .map(|event| event.kind.unwrap())
                .collect()
        };
        assert_eq!(kinds_of(&anonymous), vec![EventKind::Created]);
        assert_eq!(
            kinds_of(&signed_in),
            vec![
                EventKind::Login,
                EventKind::RevokedOthers,
                EventKind::Logout
            ]
        );
        assert_eq!(kinds_of(&other), vec![EventKind::Login, EventKind::Revoked]);
        assert_eq!(kinds_of(&third), vec![EventKind::Login, EventKind::Revoked]);
        let login = &h.manager().events_of_session(&pid(&signed_in), 10).unwrap()[2];
        assert_eq!(
            login.detail["previous_id"],
            json!(pid(&anonymous).to_string())
        );
        assert_eq!(login.user_agent.as_deref(), Some("Laptop/1.0"));
        let revoked = &h.manager().events_of_session(&pid(&other), 10).unwrap()[0];
        assert_eq!(revoked.detail["by"], json!(pid(&signed_in).to_string()));
        assert_eq!(
            revoked.user_agent.as_deref(),
            Some("Phone/2.0"),
            "the revoked device's client"
        );
        // Nothing in any event is a token or a value.
        let all = h.manager().events_of_user("alice", 100).unwrap();
        let text = serde_json::to_string(&all).unwrap();
        for token in [&anonymous, &signed_in, &other, &third] {
            assert!(!text.contains(token.as_str()));
        }
        assert!(!text.contains("\"x\""), "no data values");

        // Renewals and data writes are not events.
        let quiet = sign_in(&h, "carol", LAPTOP).await;
        h.clock.advance(Duration::minutes(5));
        h.get("/info", Some(&quiet)).await;
        h.put("/set/a", Some(&quiet), json!(2)).await;
        assert_eq!(kinds_of(&quiet), vec![EventKind::Login]);

        // Off by default: the same flow leaves the table empty.
        let silent = Harness::new(db, json!({})).await;
        let token = sign_in(&silent, "dave", LAPTOP).await;
        silent.post("/logout", Some(&token)).await;
        assert!(silent
            .manager()
            .events_of_user("dave", 10)
            .unwrap()
            .is_empty());
        assert!(silent
            .manager()
            .events_of_session(&pid(&token), 10)
            .unwrap()
            .is_empty());
    })
}

fn auditing_a_login_costs_one_insert(db: &TestDatabase) {
    rocket::execute(async {
        let (mut existing, mut new) = (Vec::new(), Vec::new());
        for audit in [false, true] {
            let h = Harness::new(db, json!({"audit": audit})).await;
            let token = h.put("/set/a", None, json!(1)).await.new_id().unwrap();
            let before = h.counts();
            h.post("/login/alice", Some(&token)).await;
            existing.push(h.counts() - before);
            let before = h.counts();
            h.post("/login/bob", None).await;
            new.push(h.counts() - before);
        }
        // Signing in a stored session: the event joins the login's transaction.
        let (off, on) = (existing[0], existing[1]);
        assert_eq!(on.reads, off.reads, "{off:?} vs {on:?}");
        assert_eq!(on.writes, off.writes + 1, "one INSERT: {off:?} vs {on:?}");
        assert_eq!(on.other, off.other, "{off:?} vs {on:?}");
        // A login that stores a new session: its INSERT becomes a transaction
        // of two (BEGIN and COMMIT are the only other cost).
        let (off, on) = (new[0], new[1]);
        assert_eq!(on.reads, off.reads, "{off:?} vs {on:?}");
        assert_eq!(on.writes, off.writes + 1, "one INSERT: {off:?} vs {on:?}");
        assert_eq!(on.other, off.other + 2, "BEGIN, COMMIT: {off:?} vs {on:?}");
    })
}

backend_tests!(
    client_metadata_rides_on_writes_the_request_makes_anyway,
    remember_me_outlives_the_idle_timeout,
    another_users_login_does_not_inherit_remember_me,
    devices_are_listed_and_revoked_per_user,
    the_per_user_cap_signs_out_the_least_recently_seen,
    lifecycle_events_are_recorded_only_when_auditing,
    auditing_a_login_costs_one_insert,
);
