//! SessionManager operations on SQLite (file, WAL), and on PostgreSQL when
//! `SESSIONS_TEST_POSTGRES_URL` is set and the `postgres` feature is on, next to a
//! bare Diesel `SELECT` by primary key; then `list` / `count` on 1,000,000 rows.
//!
//! `cargo bench -p shared-model --bench manager [--features postgres]`
//!
//! With `SESSIONS_BENCH_SKIP_1M` set (to anything) the million-row group is
//! left out (its setup seeds 1,000,000 rows whatever criterion's filter says).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{Duration, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use diesel::prelude::*;
use serde_json::json;
use shared_model::schema::sessions;
use shared_model::test_util::TestDatabase;
use shared_model::{
    ChangeSet, NewSession, Page, Session, SessionData, SessionFilter, SessionManager, SessionToken,
    Sort, SortKey, Status,
};

fn sample_data() -> SessionData {
    match json!({"user_id": 42, "username": "alice", "is_authenticated": true, "cart": ["apple", "pear"], "flash_messages": []})
    {
        serde_json::Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// A bare `SELECT` of the same row with a connection of the same backend.
fn bare_select(c: &mut Criterion, name: &str, url: &str, id: &str) {
    macro_rules! bench_with {
        ($conn:ty) => {{
            let mut conn = <$conn>::establish(url).unwrap();
            c.bench_function(&format!("{name}/bare_select_by_pk"), |b| {
                b.iter(|| {
                    sessions::table
                        .find(id)
                        .select((sessions::id, sessions::data, sessions::expires_at))
                        .get_result::<(String, String, chrono::NaiveDateTime)>(&mut conn)
                        .unwrap()
                })
            });
        }};
    }
    match shared_model::Backend::from_url(url) {
        shared_model::Backend::Sqlite => bench_with!(diesel::SqliteConnection),
        #[cfg(feature = "postgres")]
        shared_model::Backend::Postgres => bench_with!(diesel::PgConnection),
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

fn operations(c: &mut Criterion, name: &str, db: &TestDatabase) {
    let manager = db.manager();
    let expires = || Utc::now() + Duration::minutes(30);
    let session = manager
        .create(
            &SessionToken::generate().unwrap(),
            NewSession {
                data: sample_data(),
                user_id: Some("42"),
                ..NewSession::expiring(expires())
            },
        )
        .unwrap();
    bare_select(c, name, db.url(), &session.id.to_string());
    c.bench_function(&format!("{name}/load"), |b| {
        b.iter(|| manager.load(&session.id).unwrap().unwrap())
    });
    // The parts of a load: decoding the stored JSON, and (SQLite) the load
    // run in place, as the fairing does, on a pool with connections to spare.
    let text = serde_json::to_string(&sample_data()).unwrap();
    c.bench_function(&format!("{name}/decode_data_only"), |b| {
        b.iter(|| serde_json::from_str::<SessionData>(&text).unwrap())
    });
    if db.backend() == shared_model::Backend::Sqlite {
        let spare = SessionManager::new(
            shared_model::Database::builder(db.url())
                .min_idle(2)
                .connect()
                .unwrap(),
        );
        c.bench_function(&format!("{name}/try_load_now"), |b| {
            b.iter(|| spare.try_load_now(&session.id).unwrap().unwrap().unwrap())
        });
    }
    let mut counter = 0u64;
    c.bench_function(&format!("{name}/apply_one_key"), |b| {
        b.iter(|| {
            counter += 1;
            let mut changes = ChangeSet::default();
            changes.set("counter", json!(counter));
            manager.apply(&session.id, &changes, expires()).unwrap()
        })
    });
    // A request's write: one `UPDATE` over the version it loaded.
    let mut current = manager.load(&session.id).unwrap().unwrap();
    c.bench_function(&format!("{name}/apply_loaded_one_key"), |b| {
        b.iter(|| {
            counter += 1;
            let mut changes = ChangeSet::default();
            changes.set("counter", json!(counter));
            let mut copy = current.clone();
            changes.replay(&mut copy.data);
            current = manager.apply_loaded(copy, &changes, expires()).unwrap();
        })
    });
    c.bench_function(&format!("{name}/touch"), |b| {
        b.iter(|| manager.touch(&session.id, expires(), None).unwrap())
    });
    c.bench_function(&format!("{name}/create"), |b| {
        b.iter_batched(
            || (SessionToken::generate().unwrap(), sample_data()),
            |(token, data)| {
                manager
                    .create(
                        &token,
                        NewSession {
                            data,
                            user_id: Some("42"),
                            ..NewSession::expiring(expires())
                        },
                    )
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
}

fn backends(c: &mut Criterion) {
    let sqlite = TestDatabase::sqlite();
    operations(c, "sqlite", &sqlite);
    #[cfg(feature = "postgres")]
    if std::env::var(shared_model::test_util::POSTGRES_URL_VAR).is_ok() {
        let postgres = TestDatabase::postgres();
        operations(c, "postgres", &postgres);
    }
}

/// 1,000,000 sessions: 2,000 users with 375 sessions each, a quarter anonymous;
/// a third expired.
fn million(manager: &SessionManager) {
    let now = manager.now();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..1_000_000u32 {
        let created_at = now - Duration::seconds(i64::from(i % 86_400));
        batch.push(Session {
            id: SessionToken::generate().unwrap().public_id(),
            user_id: (i % 4 != 0).then(|| format!("user{}", i % 2_000)),
            data: match json!({"n": i, "cart": ["item"]}) {
                serde_json::Value::Object(map) => map,
                _ => unreachable!(),
            },
            expires_at: if i % 3 == 0 {
                now - Duration::minutes(5)
            } else {
                now + Duration::minutes(30)
            },
            created_at,
            updated_at: created_at,
            version: 1,
            ip_address: None,
            user_agent: None,
            last_seen_at: Some(created_at),
            timeout_seconds: None,
        });
        if batch.len() == batch.capacity() {
            manager.import(&batch).unwrap();
            batch.clear();
        }
    }
    manager.import(&batch).unwrap();
}

fn million_rows(c: &mut Criterion) {
    if std::env::var_os("SESSIONS_BENCH_SKIP_1M").is_some() {
        return;
    }
    let db = TestDatabase::sqlite();
    let manager = db.manager();
    million(&manager);
    // A user with five devices among the million rows (what a devices page lists).
    let expires = manager.now() + Duration::days(1);
    let client = shared_model::Client::new(
        Some(std::net::IpAddr::from([203, 0, 113, 5])),
        Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"),
    );
    for _ in 0..5 {
        manager
            .create(
                &SessionToken::generate().unwrap(),
                NewSession {
                    user_id: Some("device-user"),
                    client: Some(&client),
                    ..NewSession::expiring(expires)
                },
            )
            .unwrap();
    }
    let mut group = c.benchmark_group("sqlite_1m");
    group.sample_size(20);
    group.bench_function("devices_of_a_user_with_5", |b| {
        b.iter(|| manager.devices("device-user", None).unwrap())
    });
    group.bench_function("devices_of_a_user_with_375", |b| {
        b.iter(|| manager.devices("user1234", None).unwrap())
    });
    let user = SessionFilter {
        user_id: Some("user1234".into()),
        ..Default::default()
    };
    let newest = Sort::default();
    group.bench_function("list_page_user_filter", |b| {
        b.iter(|| manager.list(&user, newest, Page::first(100)).unwrap())
    });
    group.bench_function("count_user_filter", |b| {
        b.iter(|| manager.count(&user).unwrap())
    });
    group.bench_function("list_first_page_unfiltered", |b| {
        b.iter(|| {
            manager
                .list(&SessionFilter::default(), newest, Page::first(100))
                .unwrap()
        })
    });
    let active = SessionFilter {
        status: Status::Active,
        ..Default::default()
    };
    let by_expiry = Sort {
        key: SortKey::ExpiresAt,
        descending: false,
    };
    group.bench_function("list_page_active_by_expiry", |b| {
        b.iter(|| manager.list(&active, by_expiry, Page::first(100)).unwrap())
    });
    group.bench_function("list_offset_500000", |b| {
        b.iter(|| {
            manager
                .list(
                    &SessionFilter::default(),
                    newest,
                    Page::Offset {
                        offset: 500_000,
                        limit: 100,
                    },
                )
                .unwrap()
        })
    });
    group.bench_function("count_all", |b| {
        b.iter(|| manager.count(&SessionFilter::default()).unwrap())
    });
    group.bench_function("count_active", |b| {
        b.iter(|| manager.count(&active).unwrap())
    });
    let prefix = SessionFilter {
        id_prefix: Some("abc".into()),
        ..Default::default()
    };
    group.bench_function("list_page_id_prefix", |b| {
        b.iter(|| manager.list(&prefix, newest, Page::first(100)).unwrap())
    });
    group.sample_size(10);
    let text = SessionFilter {
        data_contains: Some("\"n\":4242".into()),
        ..Default::default()
    };
    group.bench_function("count_data_contains_scan", |b| {
        b.iter(|| manager.count(&text).unwrap())
    });
    group.bench_function("stats_24h", |b| b.iter(|| manager.stats(24, 10).unwrap()));
    group.finish();
}

criterion_group!(benches, backends, million_rows);
criterion_main!(benches);
