//! The hot-path `UPDATE`s as fixed statements.
//!
//! Diesel never caches a prepared `UPDATE` built with `update(..).set(..)` (its
//! changesets may skip columns, so the SQL can vary), and re-parsing the SQL costs
//! more than running it on SQLite. These two have one SQL text each, so they
//! declare a static query id and every backend reuses the prepared statement.

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text, Timestamp};
use diesel::{QueryResult, RunQueryDsl};

/// `UPDATE sessions SET expires_at = ?, updated_at = ?, version = version + 1
/// WHERE id = ? AND expires_at > ?`
pub(crate) struct Touch<'a> {
    pub id: &'a str,
    pub expires_at: NaiveDateTime,
    pub now: NaiveDateTime,
}

impl QueryId for Touch<'_> {
    type QueryId = Touch<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> QueryFragment<DB> for Touch<'_>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<Timestamp>,
    NaiveDateTime: ToSql<Timestamp, DB>,
    str: ToSql<Text, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE sessions SET expires_at = ");
        out.push_bind_param::<Timestamp, _>(&self.expires_at)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        out.push_sql(", version = version + 1 WHERE id = ");
        out.push_bind_param::<Text, _>(self.id)?;
        out.push_sql(" AND expires_at > ");
        out.push_bind_param::<Timestamp, _>(&self.now)?;
        Ok(())
    }
}

impl<C> RunQueryDsl<C> for Touch<'_> {}

/// `UPDATE sessions SET user_id = ?, data = ?, expires_at = ?, updated_at = ?,
/// version = ?[, id = ?] WHERE id = ?`: the row a merge wrote. The id column is
/// only in the statement when `CYCLE` (a new id), so a plain save leaves the
/// indexes that contain `id` alone.
pub(crate) struct Save<'a, const CYCLE: bool> {
    pub id: &'a str,
    pub new_id: &'a str,
    pub user_id: Option<&'a str>,
    pub data: &'a str,
    pub expires_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub version: i64,
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
            version: self.version,
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
        + HasSqlType<BigInt>,
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
        out.push_sql(", version = ");
        out.push_bind_param::<BigInt, _>(&self.version)?;
        if CYCLE {
            out.push_sql(", id = ");
            out.push_bind_param::<Text, _>(self.new_id)?;
        }
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<Text, _>(self.id)?;
        Ok(())
    }
}

impl<C, const CYCLE: bool> RunQueryDsl<C> for Save<'_, CYCLE> {}
