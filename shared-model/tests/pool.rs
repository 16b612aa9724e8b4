//! Pool settings reach every connection the pool opens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

/// `durable_commits(false)` turns PostgreSQL's `synchronous_commit` off on the
/// pool's connections (all of them: the pool opens several); the default
/// leaves it on.
#[cfg(feature = "postgres")]
#[test]
fn durable_commits_off_reaches_every_postgres_connection() {
    use diesel::prelude::*;
    use shared_model::test_util::TestDatabase;
    use shared_model::Database;

    /// The setting and where it came from (`session` when the pool set it).
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        synchronous_commit: String,
    }
    const SHOW: &str = "SELECT setting || '/' || (source = 'session')::text AS synchronous_commit \
                        FROM pg_settings WHERE name = 'synchronous_commit'";
    let show = |db: &Database| -> Vec<String> {
        // Two connections at once, so both come from the pool's own opening.
        let first = shared_model::with_connection!(db, |conn| {
            let outer = diesel::sql_query(SHOW)
                .get_result::<Setting>(conn)
                .map_err(shared_model::Error::from)?;
            let inner = shared_model::with_connection!(db, |conn| diesel::sql_query(SHOW)
                .get_result::<Setting>(conn)
                .map_err(shared_model::Error::from))?;
            Ok::<_, shared_model::Error>(vec![outer.synchronous_commit, inner.synchronous_commit])
        });
        first.unwrap()
    };
    let test_db = TestDatabase::postgres();
    let relaxed = Database::builder(test_db.url())
        .durable_commits(false)
        .pool_size(2)
        .connect()
        .unwrap();
    assert_eq!(show(&relaxed), ["off/true", "off/true"]);
    let durable = Database::builder(test_db.url())
        .pool_size(2)
        .connect()
        .unwrap();
    // The default pool sets nothing: the server's own setting stands.
    let durable = show(&durable);
    assert!(durable.iter().all(|s| s.ends_with("/false")), "{durable:?}");
}
