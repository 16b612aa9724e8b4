//! The manager's `tracing` spans as a subscriber sees them. One test in its
//! own binary: it installs the process-wide subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use shared_model::test_util::TestDatabase;
use shared_model::{
    Actor, ChangeSet, Clock, Error, ManualClock, NewSession, SessionManager, SessionToken,
    StatementCounts,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};

/// Field values as text, by field name.
type Fields = BTreeMap<String, String>;

#[derive(Debug, Clone)]
struct SpanSeen {
    name: &'static str,
    level: Level,
    /// Given at creation and recorded later.
    fields: Fields,
    /// Events emitted while the span was current.
    events: Vec<(Level, Fields)>,
}

#[derive(Debug, Default)]
struct Seen {
    spans: Vec<SpanSeen>,
    /// Events outside any span.
    loose_events: Vec<Fields>,
}

/// A layer that writes down every span (with all its fields) and event.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

/// Where a span's record is in [`Seen::spans`] (kept in the span's extensions:
/// the registry reuses the ids of closed spans).
#[derive(Clone, Copy)]
struct Index(usize);

struct Text<'a>(&'a mut Fields);

impl Visit for Text<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Text(&mut fields));
        let mut seen = self.0.lock().unwrap();
        seen.spans.push(SpanSeen {
            name: attrs.metadata().name(),
            level: *attrs.metadata().level(),
            fields,
            events: Vec::new(),
        });
        let index = Index(seen.spans.len() - 1);
        ctx.span(id).unwrap().extensions_mut().insert(index);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Index(index) = *ctx.span(id).unwrap().extensions().get::<Index>().unwrap();
        values.record(&mut Text(&mut self.0.lock().unwrap().spans[index].fields));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Text(&mut fields));
        let index = ctx
            .event_span(event)
            .and_then(|span| span.extensions().get::<Index>().copied());
        let mut seen = self.0.lock().unwrap();
        match index {
            Some(Index(index)) => seen.spans[index]
                .events
                .push((*event.metadata().level(), fields)),
            None => seen.loose_events.push(fields),
        }
    }
}

impl Recorder {
    /// Runs `op` and returns what it gave, the one span it opened, and the
    /// statements it ran.
    fn one_span<T>(&self, manager: &SessionManager, op: impl FnOnce() -> T) -> (T, SpanSeen) {
        let (result, span, _) = self.one_span_counted(manager, op);
        (result, span)
    }

    fn one_span_counted<T>(
        &self,
        manager: &SessionManager,
        op: impl FnOnce() -> T,
    ) -> (T, SpanSeen, StatementCounts) {
        let spans_before = self.0.lock().unwrap().spans.len();
        let counts_before = manager.database().statement_counts();
        let result = op();
        let counts = manager.database().statement_counts() - counts_before;
        let seen = self.0.lock().unwrap();
        let new = &seen.spans[spans_before..];
        assert_eq!(new.len(), 1, "one span per call: {new:#?}");
        (result, new[0].clone(), counts)
    }
}

/// Checks what every span must have, and that `statement` names the kinds of
/// statement the call really ran (as the pool counted them).
fn check(span: &SpanSeen, name: &str, session: &str, statement: &str, outcome: &str) {
    assert_eq!(span.name, name, "{span:#?}");
    assert_eq!(span.level, Level::DEBUG, "{span:#?}");
    assert_eq!(span.fields["session"], session, "{span:#?}");
    assert_eq!(span.fields["statement"], statement, "{span:#?}");
    let elapsed: u64 = span.fields["elapsed_us"]
        .parse()
        .expect("elapsed_us recorded");
    assert_eq!(span.events.len(), 1, "one closing event: {span:#?}");
    let (level, event) = &span.events[0];
    assert_eq!(*level, Level::DEBUG);
    assert_eq!(event["outcome"], outcome, "{span:#?}");
    assert_eq!(event["elapsed_us"], elapsed.to_string(), "{span:#?}");
}

/// `statement` agrees with the statements the pool counted: a `SELECT` listed
/// if and only if one ran, a write listed if and only if one ran, and no more
/// kinds listed than statements ran.
fn check_counts(span: &SpanSeen, counts: StatementCounts) {
    let kinds: Vec<&str> = span.fields["statement"].split('+').collect();
    let selects = kinds.iter().filter(|kind| **kind == "SELECT").count() as u64;
    let writes = kinds
        .iter()
        .filter(|kind| matches!(**kind, "INSERT" | "UPDATE" | "DELETE"))
        .count() as u64;
    assert_eq!(selects + writes, kinds.len() as u64, "{span:#?}");
    assert_eq!(selects == 0, counts.reads == 0, "{span:#?} {counts:?}");
    assert_eq!(writes == 0, counts.writes == 0, "{span:#?} {counts:?}");
    assert!(
        selects <= counts.reads && writes <= counts.writes,
        "{span:#?} {counts:?}"
    );
}

#[test]
fn operations_open_named_spans_with_short_ids_and_statement_kinds() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(Registry::default().with(recorder.clone())).unwrap();

    let db = TestDatabase::sqlite();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let clock = ManualClock::new(start);
    let manager = db.manager().with_clock(clock.clone());
    let expires = start + Duration::minutes(30);
    let token = SessionToken::generate().unwrap();
    let secret_value = "apple-4f1c9e";

    // create → load → apply → touch → logout → purge
    let (created, span, counts) = recorder.one_span_counted(&manager, || {
        manager
            .create(&token, NewSession::expiring(expires))
            .unwrap()
    });
    let id = created.id;
    let short = id.short();
    check(&span, "session.save", &short, "INSERT", "ok");
    check_counts(&span, counts);
    assert_eq!(span.fields["op"], "create");

    let (loaded, span, counts) = recorder.one_span_counted(&manager, || manager.load(&id));
    assert!(loaded.unwrap().is_some());
    check(&span, "session.load", &short, "SELECT", "ok");
    check_counts(&span, counts);
    assert_eq!(span.fields["op"], "load");

    let mut changes = ChangeSet::default();
    changes.set("cart", json!([secret_value]));
    let (applied, span, counts) =
        recorder.one_span_counted(&manager, || manager.apply(&id, &changes, expires));
    assert_eq!(applied.unwrap().version, 2);
    check(&span, "session.save", &short, "SELECT+UPDATE", "ok");
    check_counts(&span, counts);
    assert_eq!(span.fields["op"], "apply");

    let (touched, span, counts) =
        recorder.one_span_counted(&manager, || manager.touch(&id, expires, None));
    assert!(touched.unwrap());
    check(&span, "session.renew", &short, "UPDATE", "ok");
    check_counts(&span, counts);

    let (signed_out, span, counts) = recorder.one_span_counted(&manager, || manager.logout(&id));
    assert!(signed_out.unwrap());
    check(&span, "session.logout", &short, "DELETE", "ok");
    check_counts(&span, counts);
    assert_eq!(span.fields["op"], "logout");

    // A failed call says so, and only that.
    let (late, span) = recorder.one_span(&manager, || manager.apply(&id, &changes, expires));
    assert!(matches!(late, Err(Error::Gone(_))));
    check(&span, "session.save", &short, "SELECT+UPDATE", "error");

    manager
        .create(
            &SessionToken::generate().unwrap(),
            NewSession::expiring(expires),
        )
        .unwrap();
    clock.advance(Duration::hours(1));
    let (purged, span, counts) = recorder.one_span_counted(&manager, || manager.purge_expired(10));
    assert_eq!(purged.unwrap(), 1);
    check(&span, "session.purge", "-", "DELETE", "ok");
    check_counts(&span, counts);
    assert_eq!(span.fields["op"], "purge_expired");
    assert_eq!(span.fields["rows"], "1");
    // The closing event repeats the count for `log`, which sees no later fields.
    assert_eq!(span.events[0].1["rows"], "1");

    // Auditing adds the events' INSERTs, and the statement kinds follow.
    let audited = db
        .manager()
        .with_clock(clock.clone())
        .with_audit(Actor::App);
    let expires = clock.now() + Duration::minutes(30);
    let session = audited
        .create(
            &SessionToken::generate().unwrap(),
            NewSession::expiring(expires),
        )
        .unwrap();
    let (signed_out, span, counts) =
        recorder.one_span_counted(&audited, || audited.logout(&session.id));
    assert!(signed_out.unwrap());
    check(
        &span,
        "session.logout",
        &session.id.short(),
        "SELECT+INSERT+DELETE",
        "ok",
    );
    check_counts(&span, counts);

    // The per-user cap's revocation shows in a login's statements.
    let capped = db
        .manager()
        .with_clock(clock.clone())
        .with_audit(Actor::App)
        .with_max_sessions_per_user(1);
    let alice = || NewSession {
        user_id: Some("alice"),
        ..NewSession::expiring(expires)
    };
    capped
        .create(&SessionToken::generate().unwrap(), alice())
        .unwrap();
    let second = SessionToken::generate().unwrap();
    let (_, span, counts) =
        recorder.one_span_counted(&capped, || capped.create(&second, alice()).unwrap());
    check(
        &span,
        "session.save",
        &second.public_id().short(),
        "SELECT+INSERT+DELETE+INSERT",
        "ok",
    );
    check_counts(&span, counts);
    let (revoked, span) = recorder.one_span(&capped, || capped.delete_for_user("alice"));
    assert_eq!(revoked.unwrap(), 1);
    check(&span, "session.admin", "-", "SELECT+INSERT+DELETE", "ok");
    assert_eq!(span.fields["action"], "delete_for_user");
    assert_eq!(span.fields["rows"], "1");

    // Nothing secret in any field: not the token, not the data, not a whole id.
    let seen = recorder.0.lock().unwrap();
    assert!(seen.loose_events.is_empty(), "{:#?}", seen.loose_events);
    let all_text: Vec<&String> = seen
        .spans
        .iter()
        .flat_map(|span| {
            span.fields
                .values()
                .chain(span.events.iter().flat_map(|e| e.1.values()))
        })
        .collect();
    for text in all_text {
        assert!(!text.contains(token.expose_secret()), "{text}");
        assert!(!text.contains(secret_value), "{text}");
        assert!(!text.contains(&id.to_string()), "{text}");
    }
}
