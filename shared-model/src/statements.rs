//! The hot-path `UPDATE`s as fixed statements.
//!
//! Diesel never caches a prepared `UPDATE` built with `update(..).set(..)` (its
//! changesets may skip columns, so the SQL can vary), and re-parsing the SQL costs
//! more than running it on SQLite. These have one SQL text each, so they
//! declare a static query id and every backend reuses the prepared statement.

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text, Timestamp};
use diesel::{QueryResult, RunQueryDsl};

/// `UPDATE sessions SET expires_at = ?, updated_at = ?, last_seen_at = ?,
/// version = version + 1[, ip_address = ?, user_agent = ?] WHERE id = ? AND
/// expires_at > ?`: a renewal, recording the client only when `CLIENT`.
pub(crate) struct Touch<'a, const CLIENT: bool> {
    pub id: &'a str,
    pub expires_at: NaiveDateTime,
    pub now: NaiveDateTime,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl<const CLIENT: bool> QueryId for Touch<'_, CLIENT> {
    type QueryId = Touch<'static, CLIENT>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB, const CLIENT: bool> QueryFragment<DB> for Touch<'_, CLIENT>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<Nullable<Text>> + HasSqlType<Timestamp>,
    NaiveDateTime: ToSql<Timestamp, DB>,
    str: ToSql<Text, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE sessions SET expires_at = ");
        out.push_bind_param::<Timestamp, _>(&self.expires_at)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", last_seen_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", version = version + 1");
        if CLIENT {
            // An address or agent the client lacks keeps the stored one.
            out.push_sql(", ip_address = COALESCE(");
            out.push_bind_param::<Nullable<Text>, _>(&self.ip_address)?;
            out.push_sql(", ip_address), user_agent = COALESCE(");
            out.push_bind_param::<Nullable<Text>, _>(&self.user_agent)?;
            out.push_sql(", user_agent)");
        }
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.id)?;
        out.push_sql(" AND expires_at > ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        Ok(())
    }
}

impl<C, const CLIENT: bool> RunQueryDsl<C> for Touch<'_, CLIENT> {}

/// `UPDATE sessions SET user_id = ?, data = ?, expires_at = ?, updated_at = ?,
/// created_at = ?, version = ?, ip_address = ?, user_agent = ?, last_seen_at = ?,
/// timeout_seconds = ?[, id = ?] WHERE id = ? AND version = ?`: the row a
/// merge wrote, only over the version it was merged into (every write bumps
/// `version`, so a match means the row, its expiry included, is the one the
/// merge read). The id column is only in the statement when `CYCLE` (a new
/// id), so a plain save leaves the indexes that contain `id` alone.
///
/// The expiry is not in the `WHERE`: the caller checked it on the row it
/// read. With `expires_at > ?` there MariaDB may walk the `expires_at` index
/// to the row, locking it in the opposite order to a `SELECT ... FOR UPDATE`
/// by id, and the two deadlock.
pub(crate) struct Save<'a, const CYCLE: bool> {
    pub id: &'a str,
    pub new_id: &'a str,
    pub user_id: Option<&'a str>,
    pub data: &'a str,
    pub expires_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Unchanged but for another user's login, which starts the session over.
    pub created_at: NaiveDateTime,
    pub version: i64,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub last_seen_at: Option<NaiveDateTime>,
    pub timeout_seconds: Option<i64>,
    /// The version the merge started from: the row must still have it.
    pub expected_version: i64,
}

impl<'a> Save<'a, false> {
    /// The same write, also moving the row to `new_id`.
    pub fn cycled_to(self, new_id: &'a str) -> Save<'a, true> {
        Save {
            id: self.id,
            new_id,
            user_id: self.user_id,
            data: self.data,
            expires_at: self.expires_at,
            updated_at: self.updated_at,
            created_at: self.created_at,
            version: self.version,
            ip_address: self.ip_address,
            user_agent: self.user_agent,
            last_seen_at: self.last_seen_at,
            timeout_seconds: self.timeout_seconds,
            expected_version: self.expected_version,
        }
    }
}

impl<const CYCLE: bool> QueryId for Save<'_, CYCLE> {
    type QueryId = Save<'static, CYCLE>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB, const CYCLE: bool> QueryFragment<DB> for Save<'_, CYCLE>
where
    DB: Backend
        + HasSqlType<Text>
        + HasSqlType<Nullable<Text>>
        + HasSqlType<Timestamp>
        + HasSqlType<Nullable<Timestamp>>
        + HasSqlType<BigInt>
        + HasSqlType<Nullable<BigInt>>,
    NaiveDateTime: ToSql<Timestamp, DB>,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE sessions SET user_id = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.user_id)?;
        out.push_sql(", data = ");
        out.push_bind_param::<Text, _>(self.data)?;
        out.push_sql(", expires_at = ");
        out.push_bind_param::<Timestamp, _>(&self.expires_at)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<Timestamp, _>(&self.updated_at)?;
        out.push_sql(", created_at = ");
        out.push_bind_param::<Timestamp, _>(&self.created_at)?;
        out.push_sql(", version = ");
        out.push_bind_param::<BigInt, _>(&self.version)?;
        out.push_sql(", ip_address = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.ip_address)?;
        out.push_sql(", user_agent = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.user_agent)?;
        out.push_sql(", last_seen_at = ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.last_seen_at)?;
        out.push_sql(", timeout_seconds = ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.timeout_seconds)?;
        if CYCLE {
            out.push_sql(", id = ");
            out.push_bind_param::<Text, _>(self.new_id)?;
        }
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.id)?;
        out.push_sql(" AND version = ");
        out.push_bind_param::<BigInt, _>(&self.expected_version)?;
        Ok(())
    }
}

impl<C, const CYCLE: bool> RunQueryDsl<C> for Save<'_, CYCLE> {}
