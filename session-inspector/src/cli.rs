//! The command line: with no subcommand the window opens; subcommands are for
//! scripts and cron. Built with `clap`.

use std::io::Write;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use shared_model::{
    Database, Error as ModelError, ListedSession, Page, SessionFilter, SessionManager, Sort, Stats,
    Status,
};

use crate::format::{byte_size, relative_expiry, relative_time, top_level_keys};
use crate::worker::{change_expiry, ExpiryChange, STATS_HOURS, STATS_TOP_USERS};
use crate::{config, parse_id, seed, Error, Result};

/// Browse, edit and expire the sessions stored by rocket-db-sessions.
///
/// With no subcommand the window opens. The database is, in order:
/// `--database-url`, `DATABASE_URL`, `session.database_url` in `./Rocket.toml`,
/// else `db.sqlite`.
#[derive(Debug, Parser)]
#[command(name = "session-inspector", version, about, long_about = None)]
pub struct Cli {
    /// Database URL: an SQLite path, `postgres://…` or `mysql://…`.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Window: select the session with this id once it is loaded.
    #[arg(long, value_name = "ID", conflicts_with = "select_first")]
    pub select: Option<String>,
    /// Window: select the first session of the table once it is loaded.
    #[arg(long)]
    pub select_first: bool,
    /// Window: refresh the table every this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub auto_refresh: Option<u32>,
    /// Window: timing mode. Measures launch to first page, a user filter and a
    /// scroll through the table, prints the figures and closes.
    #[arg(long)]
    pub bench: bool,
    /// Timing mode: time the filter for this user (repeatable; default: the
    /// user of the first row).
    #[arg(long, value_name = "ID", requires = "bench")]
    pub bench_user: Vec<String>,
    /// A command to run instead of opening the window.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Which sessions `list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Not yet expired.
    Active,
    /// Expired, not yet purged.
    Expired,
    /// Both.
    All,
}

impl From<StatusArg> for Status {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Active => Self::Active,
            StatusArg::Expired => Self::Expired,
            StatusArg::All => Self::All,
        }
    }
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// List sessions, newest first.
    List {
        /// Only this user's sessions.
        #[arg(long, value_name = "ID")]
        user: Option<String>,
        /// Active, expired or all sessions.
        #[arg(long, value_enum, default_value_t = StatusArg::All)]
        status: StatusArg,
        /// At most this many sessions.
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one session as JSON (expired or not).
    Show {
        /// The session id.
        id: String,
    },
    /// Expire a session now.
    Expire {
        /// The session id.
        id: String,
    },
    /// Delete a session.
    Delete {
        /// The session id.
        id: String,
    },
    /// Delete every expired session and print how many were removed.
    Purge,
    /// Counts, sessions per hour and top users.
    Stats {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Fill the database with realistic fake sessions (runs the migrations first).
    Seed {
        /// How many sessions.
        #[arg(long, value_name = "N")]
        count: u64,
        /// Make the data reproducible.
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Every seeded session has already expired (for purge benchmarks).
        #[arg(long)]
        expired: bool,
    },
}

/// A session as `list --json` and `show` print it.
#[derive(Debug, Serialize)]
struct SessionJson<'a> {
    id: &'a str,
    user_id: Option<&'a str>,
    status: &'static str,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
    version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a shared_model::SessionData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    corrupt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_data: Option<&'a str>,
}

fn session_json<'a>(
    id: &'a str,
    listed: &'a ListedSession,
    now: chrono::DateTime<chrono::Utc>,
) -> SessionJson<'a> {
    let status = |expires_at| {
        if expires_at > now {
            "active"
        } else {
            "expired"
        }
    };
    match listed {
        Ok(session) => SessionJson {
            id,
            user_id: session.user_id.as_deref(),
            status: status(session.expires_at),
            created_at: session.created_at,
            updated_at: session.updated_at,
            expires_at: session.expires_at,
            version: session.version,
            data: Some(&session.data),
            corrupt: None,
            raw_data: None,
        },
        Err(corrupt) => SessionJson {
            id,
            user_id: corrupt.user_id.as_deref(),
            status: status(corrupt.expires_at),
            created_at: corrupt.created_at,
            updated_at: corrupt.updated_at,
            expires_at: corrupt.expires_at,
            version: corrupt.version,
            data: None,
            corrupt: Some(&corrupt.reason),
            raw_data: Some(&corrupt.raw_data),
        },
    }
}

/// Opens the database for a command other than `seed`: it must exist and be
/// fully migrated (commands never migrate).
fn open(url: &str) -> Result<SessionManager> {
    // One connection: a command runs one query at a time.
    let (db, pending) = config::open_existing(url, 1)?;
    if !pending.is_empty() {
        return Err(Error::PendingMigrations { pending });
    }
    Ok(SessionManager::new(db))
}

/// Runs a subcommand on `url`, writing its output to `out` and progress to `err`.
///
/// # Errors
///
/// Every failure, as one [`Error`]: a bad id, a missing session, an unreachable
/// or unmigrated database, an output error.
pub fn run(command: &Command, url: &str, out: &mut dyn Write, err: &mut dyn Write) -> Result<()> {
    match command {
        Command::List {
            user,
            status,
            limit,
            json,
        } => {
            let manager = open(url)?;
            let filter = SessionFilter {
                user_id: user.clone(),
                status: (*status).into(),
                ..SessionFilter::default()
            };
            let rows = manager.list(&filter, Sort::default(), Page::first(*limit))?;
            let now = manager.now();
            if *json {
                let ids: Vec<String> = rows.iter().map(listed_id).collect();
                let items: Vec<SessionJson<'_>> = rows
                    .iter()
                    .zip(&ids)
                    .map(|(listed, id)| session_json(id, listed, now))
                    .collect();
                serde_json::to_writer_pretty(&mut *out, &items)?;
                writeln!(out)?;
            } else {
                print_table(out, &rows, now)?;
            }
        }
        Command::Show { id } => {
            let manager = open(url)?;
            let session_id = parse_id(id)?;
            let listed: ListedSession = match manager.get(&session_id) {
                Ok(Some(session)) => Ok(session),
                Ok(None) => return Err(Error::NotFound(session_id.to_string())),
                Err(ModelError::CorruptData(corrupt)) => Err(*corrupt),
                Err(error) => return Err(error.into()),
            };
            let text = session_id.to_string();
            let json = session_json(&text, &listed, manager.now());
            serde_json::to_writer_pretty(&mut *out, &json)?;
            writeln!(out)?;
        }
        Command::Expire { id } => {
            let manager = open(url)?;
            let session_id = parse_id(id)?;
            change_expiry(&manager, &session_id, ExpiryChange::Now)?;
            writeln!(out, "expired session {session_id}")?;
        }
        Command::Delete { id } => {
            let manager = open(url)?;
            let session_id = parse_id(id)?;
            if !manager.delete(&session_id)? {
                return Err(Error::NotFound(session_id.to_string()));
            }
            writeln!(out, "deleted session {session_id}")?;
        }
        Command::Purge => {
            let manager = open(url)?;
            let removed = manager.purge_expired(shared_model::DEFAULT_PURGE_BATCH)?;
            writeln!(out, "removed {removed} expired session(s)")?;
        }
        Command::Stats { json } => {
            let manager = open(url)?;
            let stats = manager.stats(STATS_HOURS, STATS_TOP_USERS)?;
            if *json {
                serde_json::to_writer_pretty(&mut *out, &stats)?;
                writeln!(out)?;
            } else {
                print_stats(out, &stats)?;
            }
        }
        Command::Seed {
            count,
            seed: rng_seed,
            expired,
        } => {
            if let Some(path) = config::sqlite_file(url) {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    if !parent.is_dir() {
                        return Err(Error::NoSuchDatabase {
                            path: path.display().to_string(),
                        });
                    }
                }
            }
            // One connection, as in `open`.
            let db = Database::builder(url).pool_size(1).connect()?;
            db.run_migrations()?;
            let manager = SessionManager::new(db);
            let started = Instant::now();
            let mut last_report = Instant::now();
            let inserted = seed::seed(&manager, *count, *rng_seed, *expired, |done| {
                if last_report.elapsed().as_secs() >= 2 {
                    last_report = Instant::now();
                    // Progress is best effort; the final line is what matters.
                    let _ignored = writeln!(err, "seeded {done} of {count}…");
                }
            })?;
            writeln!(
                out,
                "inserted {inserted} fake session(s) into {} in {:.1} s",
                manager.database().display_url(),
                started.elapsed().as_secs_f64()
            )?;
        }
    }
    Ok(())
}

fn listed_id(listed: &ListedSession) -> String {
    match listed {
        Ok(session) => session.id.to_string(),
        Err(corrupt) => corrupt.id.clone(),
    }
}

fn print_table(
    out: &mut dyn Write,
    rows: &[ListedSession],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    writeln!(
        out,
        "{:<36}  {:<14}  {:<12}  {:<20}  {:<7}  {:>9}  KEYS",
        "ID", "USER", "CREATED", "EXPIRES", "STATUS", "SIZE"
    )?;
    for listed in rows {
        let (user, created, expires, size, keys) = match listed {
            Ok(session) => (
                session.user_id.as_deref(),
                session.created_at,
                session.expires_at,
                session.data_size(),
                top_level_keys(&session.data, 5),
            ),
            Err(corrupt) => (
                corrupt.user_id.as_deref(),
                corrupt.created_at,
                corrupt.expires_at,
                corrupt.raw_data.len(),
                format!("CORRUPT: {}", corrupt.reason),
            ),
        };
        let status = if expires > now { "active" } else { "expired" };
        writeln!(
            out,
            "{:<36}  {:<14}  {:<12}  {:<20}  {:<7}  {:>9}  {}",
            listed_id(listed),
            user.unwrap_or("-"),
            relative_time(created, now),
            relative_expiry(expires, now),
            status,
            byte_size(size),
            keys
        )?;
    }
    writeln!(out, "{} session(s)", rows.len())?;
    Ok(())
}

fn print_stats(out: &mut dyn Write, stats: &Stats) -> Result<()> {
    writeln!(out, "total           {}", stats.total)?;
    writeln!(out, "active          {}", stats.active)?;
    writeln!(out, "expired         {}", stats.expired)?;
    writeln!(out, "distinct users  {}", stats.distinct_users)?;
    let created: u64 = stats.created_per_hour.iter().map(|h| h.sessions).sum();
    let expiring: u64 = stats.expiring_per_hour.iter().map(|h| h.sessions).sum();
    writeln!(out, "created in the last {STATS_HOURS} h   {created}")?;
    writeln!(out, "expiring in the next {STATS_HOURS} h  {expiring}")?;
    if !stats.top_users.is_empty() {
        writeln!(out, "top users:")?;
        for user in &stats.top_users {
            writeln!(out, "  {:<20} {}", user.user_id, user.sessions)?;
        }
    }
    Ok(())
}
