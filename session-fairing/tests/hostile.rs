//! Hostile cookies: a property test over arbitrary `Cookie` headers, and one test
//! per nasty input with its expected result.
//!
//! `PROPTEST_CASES` sets the number of generated headers (default 2,000; the full
//! run in BENCHMARKS.md/RELIABILITY.md uses 1,000,000 with `--release`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rocket::figment::providers::Serialized;
use rocket::http::{Header, Status};
use rocket::local::blocking::Client;
use rocket::serde::json::{json, Json, Value};
use rocket::{get, post, routes};
use session_fairing::{Session, SessionManager, Sessions};
use shared_model::test_util::TestDatabase;
use shared_model::SessionToken;

#[get("/whoami")]
fn whoami(session: Session<'_>) -> Json<Value> {
    Json(json!({"id": session.id().map(|id| id.to_string()), "is_new": session.is_new()}))
}

#[post("/remember")]
fn remember(session: Session<'_>) -> String {
    session.insert("remembered", &true).unwrap();
    "ok".into()
}

#[get("/statements")]
fn statements(manager: &rocket::State<SessionManager>) -> Json<Value> {
    let counts = manager.database().statement_counts();
    Json(json!({"total": counts.total()}))
}

fn rocket(url: &str) -> rocket::Rocket<rocket::Build> {
    rocket_on(url, 0)
}

fn rocket_on(url: &str, port: u16) -> rocket::Rocket<rocket::Build> {
    // Renewal is pushed past any run's length, so a lookup is exactly one statement.
    let figment = rocket::Config::figment()
        .merge(("port", port))
        .merge(Serialized::default(
            "session",
            json!({"timeout_minutes": 600, "renew_interval_seconds": 35999, "database_url": url, "purge_interval_seconds": 0}),
        ))
        .merge(("log_level", "off"));
    rocket::custom(figment)
        .attach(Sessions::fairing().count_statements())
        .mount("/", routes![whoami, remember, statements])
}

struct App {
    client: Client,
    /// The cookie token of the one stored session.
    known: String,
    /// Its public id, as `/whoami` reports it.
    known_id: Value,
}

impl App {
    fn new(db: &TestDatabase) -> Self {
        let client = Client::untracked(rocket(db.url())).unwrap();
        let cookie = {
            let reply = client.post("/remember").dispatch();
            reply.headers().get_one("Set-Cookie").unwrap().to_owned()
        };
        let known = cookie["session_id=".len()..]
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let known_id = json!(known
            .parse::<SessionToken>()
            .unwrap()
            .public_id()
            .to_string());
        Self {
            client,
            known,
            known_id,
        }
    }

    fn statements(&self) -> u64 {
        let reply = self.client.get("/statements").dispatch();
        reply.into_json::<Value>().unwrap()["total"]
            .as_u64()
            .unwrap()
    }

    /// `GET /whoami` with raw `Cookie` header values; returns (status, body, statements).
    fn whoami(&self, cookie_headers: &[&str]) -> (Status, Value, u64) {
        let before = self.statements();
        let mut request = self.client.get("/whoami");
        for header in cookie_headers {
            request = request.header(Header::new("Cookie", (*header).to_owned()));
        }
        let reply = request.dispatch();
        let status = reply.status();
        let body = reply.into_json::<Value>().unwrap_or(Value::Null);
        (status, body, self.statements() - before)
    }
}

/// The test's model of the rule, formulated apart from the fairing's
/// split-and-trim: one pass over each header's characters (in header order)
/// with a `;` appended, collecting a name up to the first `=` and a value up to
/// the next `;`. The first pair whose name is `session_id` and whose value
/// looks like a token, both without surrounding spaces and tabs (RFC 6265's
/// whitespace; other Unicode spaces stay), wins.
fn expected_token(cookie_headers: &[&str]) -> Option<String> {
    for header in cookie_headers {
        let (mut name, mut value, mut in_value) = (String::new(), String::new(), false);
        for c in header.chars().chain(std::iter::once(';')) {
            match (c, in_value) {
                (';', _) => {
                    let (pair_name, pair_value) = (strip(&name), strip(&value));
                    if in_value && pair_name == "session_id" && looks_like_token(pair_value) {
                        return Some(pair_value.to_owned());
                    }
                    (name, value, in_value) = (String::new(), String::new(), false);
                }
                ('=', false) => in_value = true,
                (c, false) => name.push(c),
                (c, true) => value.push(c),
            }
        }
    }
    None
}

/// `text` without leading and trailing spaces and tabs.
fn strip(text: &str) -> &str {
    let start = text.find(|c| c != ' ' && c != '\t').unwrap_or(text.len());
    let end = text
        .rfind(|c| c != ' ' && c != '\t')
        .map_or(start, |i| i + 1);
    text.get(start..end.max(start)).unwrap_or_default()
}

/// A token as the issue defines it: 43 characters of `[A-Za-z0-9_-]` whose last
/// one carries no stray bits (32 bytes use only the top 4 of its 6 bits).
fn looks_like_token(value: &str) -> bool {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const LAST: &str = "AEIMQUYcgkosw048";
    value.chars().count() == 43
        && value.chars().all(|c| ALPHABET.contains(c))
        && value.chars().last().is_some_and(|c| LAST.contains(c))
}

fn new_token() -> String {
    SessionToken::generate().unwrap().expose_secret().to_owned()
}

fn cookie_value(known: String, known_id: String) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(known),
        any::<u8>().prop_map(|_| new_token()),
        // Near misses: a valid token with one character replaced, dropped or added.
        (any::<usize>(), any::<char>()).prop_map(|(at, c)| {
            let mut token: Vec<char> = new_token().chars().collect();
            let at = at % token.len();
            token[at] = c;
            token.into_iter().collect()
        }),
        any::<u8>().prop_map(|_| new_token()[1..].to_owned()),
        any::<u8>().prop_map(|_| format!("{}A", new_token())),
        any::<u8>().prop_map(|_| format!("\"{}\"", new_token())),
        // What a database reader knows: the public id is not a cookie.
        Just(known_id),
        // Random 43-character texts: mostly stray bits in the last one.
        "[A-Za-z0-9_-]{43}",
        Just("' OR '1'='1".to_owned()),
        Just("x'; DROP TABLE sessions; --".to_owned()),
        Just("%27%20OR%201%3D1".to_owned()),
        "\\PC{0,80}",
    ]
}

fn cookie_header(known: String, known_id: String) -> impl Strategy<Value = String> {
    let name = prop_oneof![
        4 => Just("session_id".to_owned()),
        1 => Just("SESSION_ID".to_owned()),
        1 => Just("session_id2".to_owned()),
        1 => Just(" session_id ".to_owned()),
        1 => "[a-z_]{1,12}",
    ];
    let pair =
        (name, cookie_value(known, known_id)).prop_map(|(name, value)| format!("{name}={value}"));
    prop_oneof![
        3 => proptest::collection::vec(pair, 0..6).prop_map(|pairs| pairs.join("; ")),
        1 => "\\PC{0,300}",
        1 => ".{0,300}",
    ]
}

fn arbitrary_cookie_headers_never_panic_and_malformed_ids_never_query(db: &TestDatabase) {
    let app = App::new(db);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let known_id = app.known_id.as_str().unwrap().to_owned();
    let strategy = proptest::collection::vec(cookie_header(app.known.clone(), known_id), 1..3);
    runner
        .run(&strategy, |headers| {
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            let (status, body, statements) = app.whoami(&headers);
            prop_assert_eq!(status, Status::Ok);
            match expected_token(&headers) {
                None => {
                    prop_assert_eq!(statements, 0, "a malformed token reached the database");
                    prop_assert_eq!(&body["is_new"], &json!(true));
                }
                Some(token) => {
                    prop_assert_eq!(statements, 1, "one lookup for a well-formed token");
                    let adopted = token == app.known;
                    prop_assert_eq!(&body["is_new"], &json!(!adopted));
                    if adopted {
                        prop_assert_eq!(&body["id"], &app.known_id);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

fn oversized_cookie_header_is_just_no_session(db: &TestDatabase) {
    let app = App::new(db);
    let huge = format!("session_id={}", "a".repeat(64 * 1024));
    let (status, body, statements) = app.whoami(&[&huge]);
    assert_eq!(
        (status, body["is_new"].clone(), statements),
        (Status::Ok, json!(true), 0)
    );
    let padded = format!("{}; session_id={}", "x=y; ".repeat(5_000), app.known);
    let (status, body, statements) = app.whoami(&[&padded]);
    assert_eq!(
        (status, body["id"].clone(), statements),
        (Status::Ok, app.known_id.clone(), 1)
    );
}

fn many_cookies_and_repeated_session_cookies(db: &TestDatabase) {
    let app = App::new(db);
    let unknown = new_token();
    // The first well-formed value wins, whatever follows it.
    let (_, body, statements) = app.whoami(&[&format!(
        "session_id=bad; session_id={}; session_id={unknown}",
        app.known
    )]);
    assert_eq!((body["id"].clone(), statements), (app.known_id.clone(), 1));
    let (_, body, statements) =
        app.whoami(&[&format!("session_id={unknown}; session_id={}", app.known)]);
    assert_eq!(
        (body["is_new"].clone(), statements),
        (json!(true), 1),
        "an unknown first id is not skipped"
    );
    // Across several Cookie headers, header order decides.
    let (_, body, _) = app.whoami(&["theme=dark", &format!("session_id={}", app.known)]);
    assert_eq!(body["id"], app.known_id);
    let many: Vec<String> = (0..500).map(|i| format!("c{i}=v{i}")).collect();
    let (status, body, statements) = app.whoami(&[&many.join("; ")]);
    assert_eq!(
        (status, body["is_new"].clone(), statements),
        (Status::Ok, json!(true), 0)
    );
}

fn sql_metacharacters_are_not_ids(db: &TestDatabase) {
    let app = App::new(db);
    for value in [
        "' OR '1'='1",
        "1; DELETE FROM sessions",
        "\\x00",
        "%",
        "_",
        "*",
        &format!("{}' --", app.known),
        &format!("{}\\0", app.known),
    ] {
        let (status, body, statements) = app.whoami(&[&format!("session_id={value}")]);
        assert_eq!(
            (status, body["is_new"].clone(), statements),
            (Status::Ok, json!(true), 0),
            "{value:?}"
        );
    }
    let (_, body, _) = app.whoami(&[&format!("session_id={}", app.known)]);
    assert_eq!(body["id"], app.known_id, "the session survived");
}

shared_model::backend_tests!(
    arbitrary_cookie_headers_never_panic_and_malformed_ids_never_query,
    oversized_cookie_header_is_just_no_session,
    many_cookies_and_repeated_session_cookies,
    sql_metacharacters_are_not_ids,
);

/// Non-UTF-8 bytes can only arrive over real HTTP: Rocket drops such a header, so
/// the request has no session cookie.
/// The oracle on hand-made headers, so the property run rests on a model that
/// is right for the cases a reader can check.
#[test]
fn the_model_reads_cookie_headers_as_specified() {
    let token = new_token();
    let cases: Vec<(String, Option<&str>)> = vec![
        (format!("session_id={token}"), Some(&token)),
        (format!(" \tsession_id = {token} \t; x=y"), Some(&token)),
        (format!("a=b;session_id={token}"), Some(&token)),
        (format!("session_id=junk; session_id={token}"), Some(&token)),
        (format!("session_id=\u{3000}{token}"), None),
        (format!("session_id={token}="), None),
        (format!("xsession_id={token}"), None),
        (format!("session_id\u{a0}={token}"), None),
        (format!("session_id;={token}"), None),
        ("session_id=".to_owned(), None),
    ];
    for (header, expected) in cases {
        assert_eq!(
            expected_token(&[&header]).as_deref(),
            expected,
            "{header:?}"
        );
    }
}

#[test]
fn non_utf8_cookie_bytes_over_http() {
    let db = TestDatabase::sqlite();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = db.url().to_owned();
    let server = std::thread::spawn(move || {
        rocket::execute(async move {
            let _ = rocket_on(&url, port).launch().await;
        })
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let send = |raw: &[u8]| -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        stream.write_all(raw).ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        Some(String::from_utf8_lossy(&response).into_owned())
    };
    let request = |cookie: &[u8]| {
        let mut raw =
            b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: ".to_vec();
        raw.extend_from_slice(cookie);
        raw.extend_from_slice(b"\r\n\r\n");
        raw
    };
    let ok = loop {
        if let Some(response) = send(&request(b"theme=dark")) {
            break response;
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let mut hostile = b"session_id=".to_vec();
    hostile.extend_from_slice(&[0xff, 0xfe, 0x80, b'a', 0xc3, 0x28]);
    let response = send(&request(&hostile)).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"is_new\":true"), "{response}");
    drop(server); // the server thread ends with the test process
}
