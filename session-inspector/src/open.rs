//! Opening a database to inspect: never creates, migrates or retunes it,
//! checks the `sessions` table's columns (not Diesel's bookkeeping), and
//! optionally refuses every write at the connection.

use shared_model::{Actor, Database, SchemaReport, SessionManager};

use crate::config::sqlite_file;
use crate::{Error, Result};

/// How to open a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Refuse every write at the connection (SQLite `mode=ro`, read-only
    /// transactions on PostgreSQL and MySQL).
    pub read_only: bool,
    /// Pooled connections (one per thread that queries).
    pub connections: u32,
    /// Who the audit events of this tool's writes name.
    pub actor: Actor,
}

/// An open database and what it looks like.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The manager: adapted to the schema, auditing as the actor when the
    /// database has `session_events` (and is writable).
    pub manager: SessionManager,
    /// The shape of the session tables.
    pub schema: SchemaReport,
    /// Whether writes are refused.
    pub read_only: bool,
}

impl Opened {
    /// Refuses `action` when the database was opened read-only.
    ///
    /// # Errors
    ///
    /// [`Error::ReadOnly`] naming the action.
    pub fn writable(&self, action: impl FnOnce() -> String) -> Result<&SessionManager> {
        if self.read_only {
            return Err(Error::ReadOnly { action: action() });
        }
        Ok(&self.manager)
    }
}

/// Opens an existing database for inspection.
///
/// Refuses a missing SQLite file (it is never created), leaves an SQLite
/// file's journal mode alone, runs no migration, and checks the `sessions`
/// table's columns: missing Diesel bookkeeping or an older schema are
/// warnings ([`SchemaReport::warnings`]), missing or mistyped columns an error
/// naming them.
///
/// # Errors
///
/// [`Error::NoSuchDatabase`] for a missing SQLite file; connection errors;
/// `shared_model::Error::Schema` for a table that cannot be used.
pub fn open(url: &str, options: OpenOptions) -> Result<Opened> {
    if let Some(path) = sqlite_file(url) {
        if !path.is_file() {
            return Err(Error::NoSuchDatabase {
                path: path.display().to_string(),
            });
        }
    }
    // No more connections than threads that query, and none opened in the
    // background: a process exiting while libpq sets one up can crash in
    // OpenSSL's exit handlers.
    let db = Database::builder(url)
        .pool_size(options.connections)
        .min_idle(0)
        .read_only(options.read_only)
        .tune_sqlite(false)
        .connect()?;
    let schema = db.inspect_schema()?;
    let manager = SessionManager::new(db)
        .with_audit_if(!options.read_only, options.actor)
        .for_schema(&schema);
    Ok(Opened {
        manager,
        schema,
        read_only: options.read_only,
    })
}
