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

    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        synchronous_commit: String,
    }
    let show = |db: &Database| -> Vec<String> {
        // Two connections at once, so both come from the pool's own opening.
        let first = shared_model::with_connection!(db, |conn| {
            let outer = diesel::sql_query("SHOW synchronous_commit")
                .get_result::<Setting>(conn)
                .map_err(shared_model::Error::from)?;
            let inner = shared_model::with_connection!(db, |conn| diesel::sql_query(
                "SHOW synchronous_commit"
            )
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
    assert_eq!(show(&relaxed), ["off", "off"]);
    let durable = Database::builder(test_db.url())
        .pool_size(2)
        .connect()
        .unwrap();
    assert_eq!(show(&durable), ["on", "on"]);
}
