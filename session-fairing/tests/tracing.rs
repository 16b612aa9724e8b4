//! A `tracing` subscriber gets the store's spans for what a request does, with
//! their fields. A test binary of its own: it installs the process's global
//! subscriber (the spans are entered on Rocket's blocking threads, which a
//! thread-local default would not see).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use rocket::figment::providers::Serialized;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::json;
use rocket::{get, put, routes};
use session_fairing::{Session, SessionId, Sessions};
use shared_model::test_util::TestDatabase;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

type Fields = BTreeMap<String, String>;

/// A closed span: its name, its fields (also those recorded after it began)
/// and the fields of each event inside it.
#[derive(Debug, Clone, Default)]
struct Closed {
    name: String,
    fields: Fields,
    events: Vec<Fields>,
}

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Closed>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut closed = Closed {
            name: attrs.metadata().name().to_owned(),
            ..Closed::default()
        };
        attrs.record(&mut Visitor(&mut closed.fields));
        ctx.span(id).unwrap().extensions_mut().insert(closed);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut extensions = span.extensions_mut();
        if let Some(closed) = extensions.get_mut::<Closed>() {
            values.record(&mut Visitor(&mut closed.fields));
        }
    }
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.event_span(event) {
            let mut fields = Fields::new();
            event.record(&mut Visitor(&mut fields));
            if let Some(closed) = span.extensions_mut().get_mut::<Closed>() {
                closed.events.push(fields);
            }
        }
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let closed = span.extensions_mut().remove::<Closed>();
        if let Some(closed) = closed {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(closed);
        }
    }
}

#[put("/set", data = "<value>")]
fn set(session: Session<'_>, value: &str) -> Result<Status, session_fairing::Error> {
    session.insert("value", value)?;
    Ok(Status::NoContent)
}

#[get("/id")]
fn id(session: Session<'_>) -> String {
    session.id().map(|id| id.to_string()).unwrap_or_default()
}

#[rocket::async_test]
async fn a_subscriber_gets_load_and_save_spans_with_their_fields() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(capture.clone()))
        .unwrap();
    let db = TestDatabase::sqlite();
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(Serialized::default(
            "session",
            json!({"timeout_minutes": 30, "database_url": db.url(), "purge_interval_seconds": 0}),
        ));
    let client = Client::untracked(
        rocket::custom(figment)
            .attach(Sessions::fairing())
            .mount("/", routes![set, id]),
    )
    .await
    .unwrap();
    let created = client
        .put("/set")
        .header(ContentType::Text)
        .body("1")
        .dispatch()
        .await;
    assert_eq!(created.status(), Status::NoContent);
    let cookie = created
        .headers()
        .get_one("Set-Cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = cookie.trim_start_matches("session_id=").to_owned();
    let loaded = client
        .get("/id")
        .header(Header::new("Cookie", cookie))
        .dispatch()
        .await;
    let id: SessionId = loaded.into_string().await.unwrap().parse().unwrap();
    let short = id.short();

    let spans = capture
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let named = |name: &str| -> Vec<&Closed> { spans.iter().filter(|s| s.name == name).collect() };

    let saves = named("session.save");
    let save = saves
        .iter()
        .find(|s| s.fields.get("op").map(String::as_str) == Some("create"))
        .unwrap_or_else(|| panic!("no create span in {spans:#?}"));
    assert_eq!(save.fields.get("session"), Some(&short), "{save:#?}");
    assert_eq!(
        save.fields.get("statement").map(String::as_str),
        Some("INSERT"),
        "{save:#?}"
    );
    assert_done(save);

    let loads = named("session.load");
    let load = loads
        .iter()
        .find(|s| s.fields.get("session") == Some(&short))
        .unwrap_or_else(|| panic!("no load span of {short} in {spans:#?}"));
    assert_eq!(
        load.fields.get("statement").map(String::as_str),
        Some("SELECT"),
        "{load:#?}"
    );
    assert_done(load);
    // The cookie's token never appears in any field.
    let all_fields = format!("{spans:?}");
    assert!(!all_fields.contains(token.as_str()), "{all_fields}");
}

/// The span recorded its duration and ended with one `outcome = "ok"` event
/// carrying the same duration field.
fn assert_done(span: &Closed) {
    let elapsed = span
        .fields
        .get("elapsed_us")
        .unwrap_or_else(|| panic!("no elapsed_us on {span:#?}"));
    assert!(elapsed.parse::<u64>().is_ok(), "{span:#?}");
    let done: Vec<&Fields> = span
        .events
        .iter()
        .filter(|event| event.contains_key("outcome"))
        .collect();
    assert_eq!(done.len(), 1, "{span:#?}");
    assert_eq!(done[0].get("outcome").map(String::as_str), Some("ok"));
    assert!(done[0].contains_key("elapsed_us"), "{span:#?}");
}
