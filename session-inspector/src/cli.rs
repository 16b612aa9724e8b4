//! The command line: with no subcommand the window opens; subcommands are for
//! scripts and cron. Built with `clap`.

use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use shared_model::{
    browser_label, Actor, Database, Error as ModelError, Event, ExpiryChange, ListedSession, Page,
    SessionFilter, SessionId, SessionManager, SessionToken, Sort, Stats, Status,
    DEFAULT_PURGE_BATCH,
};

use crate::export::{export, listed_id, status_at, ExportFormat, SessionRecord};
use crate::format::{byte_size, relative_expiry, relative_time, timestamp, top_level_keys};
use crate::mask::Masking;
use crate::open::{open, OpenOptions, Opened};
use crate::worker::{STATS_HOURS, STATS_TOP_USERS};
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
    /// Never write: commands that would change the database (and the window's
    /// edits) refuse, and the connection itself is opened read-only.
    #[arg(long, global = true)]
    pub read_only: bool,
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
    /// scroll through the table, prints the figures and closes (cargo
    /// feature `bench`).
    #[cfg(feature = "bench")]
    #[arg(long)]
    pub bench: bool,
    /// Timing mode: time the filter for this user (repeatable; default: the
    /// user of the first row).
    #[cfg(feature = "bench")]
    #[arg(long, value_name = "ID", requires = "bench")]
    pub bench_user: Vec<String>,
    /// A command to run instead of opening the window.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Which sessions a `--status` filter keeps.
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

/// The filters `list`, `expire`, `delete` and `export` share. A session must
/// match every filter given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct FilterArgs {
    /// Only this user's sessions.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Active, expired or all sessions [default: all].
    #[arg(long, value_enum, value_name = "STATUS")]
    pub status: Option<StatusArg>,
    /// Only sessions whose data contains this text (ASCII case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Only sessions last used from this IP address (a whole address matches
    /// exactly), or from one starting with this text (`203.0.113.` for a /24).
    #[arg(long, value_name = "PREFIX")]
    pub ip: Option<String>,
    /// Only sessions whose id starts with this text.
    #[arg(long, value_name = "PREFIX")]
    pub id_prefix: Option<String>,
}

impl FilterArgs {
    /// Whether no filter was given.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The filter as shared-model takes it.
    #[must_use]
    pub fn to_filter(&self) -> SessionFilter {
        SessionFilter {
            id_prefix: self.id_prefix.clone(),
            user_id: self.user.clone(),
            status: self.status.map_or(Status::All, Status::from),
            data_contains: self.search.clone(),
            ip_prefix: self.ip.clone(),
        }
    }
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// List sessions, newest first.
    List {
        /// Which sessions.
        #[command(flatten)]
        filter: FilterArgs,
        /// At most this many sessions.
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// JSON: show secret values (passwords, tokens, ...) instead of masking them.
        #[arg(long)]
        reveal: bool,
    },
    /// Print one session as JSON (expired or not), by id or by its cookie.
    #[command(group(ArgGroup::new("session").required(true).args(["id", "cookie"])))]
    Show {
        /// The session id.
        id: Option<String>,
        /// The session cookie's value (`-`: read it from standard input, so it
        /// stays out of the shell history).
        #[arg(long, value_name = "TOKEN", allow_hyphen_values = true)]
        cookie: Option<String>,
        /// Show secret values (passwords, tokens, ...) instead of masking them.
        #[arg(long)]
        reveal: bool,
    },
    /// Expire one session now, or every session matching the filters.
    #[command(group(target_group()))]
    Expire {
        /// The session id (or give filters instead).
        #[arg(conflicts_with_all = FILTER_IDS)]
        id: Option<String>,
        /// Which sessions, instead of an id.
        #[command(flatten)]
        filter: FilterArgs,
        /// Go ahead when more than one session matches.
        #[arg(long)]
        yes: bool,
    },
    /// Move a session's expiry later (counted from now when it has expired).
    Extend {
        /// The session id.
        id: String,
        /// How many minutes (at most ten years' worth).
        #[arg(
            long,
            value_name = "N",
            value_parser = clap::value_parser!(u32).range(1..=i64::from(shared_model::MAX_EXTEND_MINUTES))
        )]
        minutes: u32,
    },
    /// Delete one session, or every session matching the filters.
    #[command(group(target_group()))]
    Delete {
        /// The session id (or give filters instead).
        #[arg(conflicts_with_all = FILTER_IDS)]
        id: Option<String>,
        /// Which sessions, instead of an id.
        #[command(flatten)]
        filter: FilterArgs,
        /// Go ahead when more than one session matches.
        #[arg(long)]
        yes: bool,
    },
    /// Delete every expired session and print how many were removed. Exits
    /// with status 3, deleting nothing, when another process is purging the
    /// same database (PostgreSQL, MySQL).
    Purge {
        /// Rows per batch, at most 10,000 (a batch is one transaction: with
        /// the audit log, the rows' `expired` events and their delete; it
        /// holds the write lock for its own time only, and larger batches
        /// write fewer pages per row).
        #[arg(long, default_value_t = DEFAULT_PURGE_BATCH, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch_size: u32,
    },
    /// Counts, sessions per hour and top users.
    Stats {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The audit log of a session or of a user's sessions, newest first.
    #[command(group(ArgGroup::new("whose").required(true).args(["id", "user"])))]
    History {
        /// The session id.
        id: Option<String>,
        /// All the sessions of this user.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: u32,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Write the sessions matching the filters as CSV or NDJSON, newest first.
    Export {
        /// The file format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Write to this file (created or truncated) instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Which sessions.
        #[command(flatten)]
        filter: FilterArgs,
        /// Export secret values (passwords, tokens, ...) instead of masking them.
        #[arg(long)]
        reveal: bool,
    },
    /// Fill the database with realistic fake sessions.
    ///
    /// Creates the schema only when there is no sessions table; refuses a
    /// database that already holds sessions unless `--force`.
    Seed {
        /// How many sessions.
        #[arg(long, value_name = "N")]
        count: u64,
        /// Make the data reproducible, session ids included (so never on a
        /// database an app serves: the seed gives the cookies away).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Every seeded session has already expired (for purge benchmarks).
        #[arg(long)]
        expired: bool,
        /// Add sessions to a database that already holds some.
        #[arg(long)]
        force: bool,
    },
}

/// The ids of [`FilterArgs`]' arguments.
const FILTER_IDS: [&str; 5] = ["user", "status", "search", "ip", "id_prefix"];

/// `expire` and `delete` need a session id or at least one filter.
fn target_group() -> ArgGroup {
    ArgGroup::new("target").required(true).multiple(true).args([
        "id",
        "user",
        "status",
        "search",
        "ip",
        "id_prefix",
    ])
}

/// An audit event as `history --json` prints it.
#[derive(Debug, Serialize)]
struct EventJson<'a> {
    id: i64,
    at: DateTime<Utc>,
    kind: &'a str,
    actor: &'a str,
    session_id: &'a str,
    user_id: Option<&'a str>,
    ip_address: Option<&'a str>,
    user_agent: Option<&'a str>,
    detail: &'a serde_json::Value,
}

fn event_json(event: &Event) -> EventJson<'_> {
    EventJson {
        id: event.id,
        at: event.at,
        kind: &event.kind_text,
        actor: actor_text(event),
        session_id: &event.session_id,
        user_id: event.user_id.as_deref(),
        ip_address: event.ip_address.as_deref(),
        user_agent: event.user_agent.as_deref(),
        detail: &event.detail,
    }
}

fn actor_text(event: &Event) -> &'static str {
    event.actor.map_or("unknown", Actor::as_str)
}

/// True at most once per interval: for progress lines.
struct Every {
    interval: Duration,
    last: Instant,
}

impl Every {
    fn second() -> Self {
        Self {
            interval: Duration::from_secs(1),
            last: Instant::now(),
        }
    }

    fn due(&mut self) -> bool {
        if self.last.elapsed() >= self.interval {
            self.last = Instant::now();
            true
        } else {
            false
        }
    }
}

/// Opens an existing database (never creating, migrating or retuning it) and
/// prints what is odd about its schema as `warning:` lines on `err`.
fn open_database(url: &str, read_only: bool, err: &mut dyn Write) -> Result<Opened> {
    // One connection: a command runs one query at a time.
    let opened = open(
        url,
        OpenOptions {
            read_only,
            connections: 1,
            actor: Actor::Cli,
        },
    )?;
    for warning in opened.schema.warnings() {
        writeln!(err, "warning: {warning}")?;
    }
    Ok(opened)
}

/// Runs a subcommand on `url`, writing its output to `out` and warnings and
/// progress to `err`. With `read_only`, commands that write refuse before
/// changing anything, and the connection is read-only too.
///
/// # Errors
///
/// Every failure, as one [`Error`]: a bad id or cookie, a missing session, an
/// unreachable database or one whose sessions table cannot be used, a write
/// refused ([`Error::ReadOnly`], [`Error::NeedsYes`], [`Error::NotEmpty`]), an
/// output error.
pub fn run(
    command: &Command,
    url: &str,
    read_only: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    match command {
        Command::List {
            filter,
            limit,
            json,
            reveal,
        } => {
            let opened = open_database(url, read_only, err)?;
            list(
                &opened.manager,
                filter,
                *limit,
                *json,
                masking(*reveal),
                out,
            )
        }
        Command::Show { id, cookie, reveal } => {
            let session_id = match cookie {
                Some(cookie) => cookie_session_id(cookie)?,
                None => parse_id(id.as_deref().unwrap_or_default())?,
            };
            let opened = open_database(url, read_only, err)?;
            show(&opened.manager, &session_id, masking(*reveal), out)
        }
        Command::Expire { id, filter, yes } => {
            if let Some(id) = id {
                let session_id = parse_id(id)?;
                let opened = open_database(url, read_only, err)?;
                let manager = opened.writable(|| format!("expire session {session_id}"))?;
                change_expiry(manager, &session_id, ExpiryChange::ExpireNow)?;
                writeln!(out, "expired session {session_id}")?;
                Ok(())
            } else {
                let opened = open_database(url, read_only, err)?;
                bulk(&opened, filter, *yes, Bulk::Expire, out, err)
            }
        }
        Command::Extend { id, minutes } => {
            let session_id = parse_id(id)?;
            let opened = open_database(url, read_only, err)?;
            let manager = opened.writable(|| format!("extend session {session_id}"))?;
            let expires_at =
                change_expiry(manager, &session_id, ExpiryChange::ExtendMinutes(*minutes))?;
            writeln!(
                out,
                "extended session {session_id}: it expires at {}",
                timestamp(expires_at)
            )?;
            Ok(())
        }
        Command::Delete { id, filter, yes } => {
            if let Some(id) = id {
                let session_id = parse_id(id)?;
                let opened = open_database(url, read_only, err)?;
                let manager = opened.writable(|| format!("delete session {session_id}"))?;
                if !manager.delete(&session_id)? {
                    return Err(Error::NotFound(session_id.to_string()));
                }
                writeln!(out, "deleted session {session_id}")?;
                Ok(())
            } else {
                let opened = open_database(url, read_only, err)?;
                bulk(&opened, filter, *yes, Bulk::Delete, out, err)
            }
        }
        Command::Purge { batch_size } => {
            let opened = open_database(url, read_only, err)?;
            let manager = opened.writable(|| "purge the expired sessions".to_owned())?;
            let removed = manager.purge_expired(*batch_size)?;
            writeln!(out, "removed {removed} expired session(s)")?;
            Ok(())
        }
        Command::Stats { json } => {
            let opened = open_database(url, read_only, err)?;
            let stats = opened.manager.stats(STATS_HOURS, STATS_TOP_USERS)?;
            if *json {
                print_json(out, &stats)?;
            } else {
                print_stats(out, &stats)?;
            }
            Ok(())
        }
        Command::History {
            id,
            user,
            limit,
            json,
        } => {
            let session_id = match user {
                Some(_) => None,
                None => Some(parse_id(id.as_deref().unwrap_or_default())?),
            };
            let opened = open_database(url, read_only, err)?;
            if !opened.schema.events_table {
                return Err(Error::NoEventsTable);
            }
            let events = match (&session_id, user) {
                (Some(session_id), _) => opened.manager.events_of_session(session_id, *limit)?,
                (None, user) => opened
                    .manager
                    .events_of_user(user.as_deref().unwrap_or_default(), *limit)?,
            };
            if *json {
                let items: Vec<EventJson<'_>> = events.iter().map(event_json).collect();
                print_json(out, &items)?;
            } else {
                print_events(out, &events)?;
            }
            Ok(())
        }
        Command::Export {
            format,
            output,
            filter,
            reveal,
        } => {
            let opened = open_database(url, read_only, err)?;
            export_to(
                &opened.manager,
                filter,
                *format,
                output.as_deref(),
                &masking(*reveal),
                out,
                err,
            )
        }
        Command::Seed {
            count,
            seed: rng_seed,
            expired,
            force,
        } => {
            if read_only {
                return Err(Error::ReadOnly {
                    action: "seed fake sessions".to_owned(),
                });
            }
            seed_database(url, *count, *rng_seed, *expired, *force, out, err)
        }
    }
}

fn masking(reveal: bool) -> Masking {
    if reveal {
        Masking::off()
    } else {
        Masking::default()
    }
}

/// The public id of the session a cookie value names (`-`: one line read from
/// standard input). A whole `name=value` pair is accepted too (the token
/// itself never contains `=`).
fn cookie_session_id(cookie: &str) -> Result<SessionId> {
    let text = if cookie == "-" {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    } else {
        cookie.to_owned()
    };
    let value = text.trim().rsplit('=').next().unwrap_or_default().trim();
    Ok(value.parse::<SessionToken>()?.public_id())
}

/// `change_expiry`, with a missing session reported as [`Error::NotFound`].
fn change_expiry(
    manager: &SessionManager,
    session_id: &SessionId,
    change: ExpiryChange,
) -> Result<DateTime<Utc>> {
    match manager.change_expiry(session_id, change) {
        Err(ModelError::Gone(_)) => Err(Error::NotFound(session_id.to_string())),
        other => Ok(other?),
    }
}

fn list(
    manager: &SessionManager,
    filter: &FilterArgs,
    limit: u32,
    json: bool,
    masking: Masking,
    out: &mut dyn Write,
) -> Result<()> {
    let rows = manager.list(&filter.to_filter(), Sort::default(), Page::first(limit))?;
    let now = manager.now();
    if json {
        let items: Vec<SessionRecord<'_>> = rows
            .iter()
            .map(|listed| SessionRecord::new(listed, now, &masking))
            .collect();
        print_json(out, &items)?;
    } else {
        print_table(out, &rows, now)?;
    }
    Ok(())
}

fn show(
    manager: &SessionManager,
    session_id: &SessionId,
    masking: Masking,
    out: &mut dyn Write,
) -> Result<()> {
    let listed: ListedSession = match manager.get(session_id) {
        Ok(Some(session)) => Ok(session),
        Ok(None) => return Err(Error::NotFound(session_id.to_string())),
        Err(ModelError::CorruptData(corrupt)) => Err(*corrupt),
        Err(error) => return Err(error.into()),
    };
    let record = SessionRecord::new(&listed, manager.now(), &masking);
    print_json(out, &record)?;
    Ok(())
}

/// What `expire` or `delete` does to every matching session.
#[derive(Debug, Clone, Copy)]
enum Bulk {
    Expire,
    Delete,
}

impl Bulk {
    fn verb(self) -> &'static str {
        match self {
            Self::Expire => "expire",
            Self::Delete => "delete",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Self::Expire => "expired",
            Self::Delete => "deleted",
        }
    }
}

/// Expires or deletes the sessions matching `filter`: counted first, more
/// than one needs `yes`, and no more than were counted are changed (a row
/// that starts matching meanwhile is left alone).
fn bulk(
    opened: &Opened,
    filter: &FilterArgs,
    yes: bool,
    action: Bulk,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let manager = opened.writable(|| format!("{} the matching sessions", action.verb()))?;
    let filter = filter.to_filter();
    let matching = manager.count(&filter)?;
    if matching > 1 && !yes {
        return Err(Error::NeedsYes {
            count: matching,
            action: action.verb(),
        });
    }
    let mut every = Every::second();
    let progress = |done: u64| {
        if every.due() {
            // Progress is best effort; the final line is what matters.
            let _ignored = writeln!(err, "{} {done} of {matching}…", action.past());
        }
        true
    };
    let done = match action {
        Bulk::Expire => {
            manager.expire_matching(&filter, matching, DEFAULT_PURGE_BATCH, progress)?
        }
        Bulk::Delete => {
            manager.delete_matching(&filter, matching, DEFAULT_PURGE_BATCH, progress)?
        }
    };
    writeln!(out, "{} {done} session(s)", action.past())?;
    Ok(())
}

fn export_to(
    manager: &SessionManager,
    filter: &FilterArgs,
    format: ExportFormat,
    output: Option<&Path>,
    masking: &Masking,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let filter = filter.to_filter();
    let mut every = Every::second();
    let mut progress = |done: u64| {
        if every.due() {
            // Progress is best effort; the final line is what matters.
            let _ignored = writeln!(err, "exported {done}…");
        }
        true
    };
    // The file is only created once the database opened.
    let (written, destination) = match output {
        Some(path) => {
            let file = File::create(path).map_err(|error| {
                std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
            })?;
            let mut writer = BufWriter::new(file);
            let written = export(
                manager,
                &filter,
                format,
                masking,
                &mut writer,
                &mut progress,
            )?;
            writer.flush()?;
            (written, format!(" to {}", path.display()))
        }
        None => (
            export(manager, &filter, format, masking, out, &mut progress)?,
            String::new(),
        ),
    };
    writeln!(err, "exported {written} session(s){destination}")?;
    Ok(())
}

fn seed_database(
    url: &str,
    count: u64,
    rng_seed: Option<u64>,
    all_expired: bool,
    force: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let existing_file = match config::sqlite_file(url) {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                if !parent.is_dir() {
                    return Err(Error::NoSuchDatabase {
                        path: path.display().to_string(),
                    });
                }
            }
            path.is_file()
        }
        None => true,
    };
    // One connection, as for the other commands. A file seed creates is set up
    // as the app would (WAL); an existing one keeps its journal mode.
    let db = Database::builder(url)
        .pool_size(1)
        .min_idle(0)
        .tune_sqlite(!existing_file)
        .connect()?;
    // The schema is only created where there is no sessions table: a table
    // made by another tool (without Diesel's bookkeeping) gets rows, not
    // a failing `CREATE TABLE`.
    let schema = match db.inspect_schema() {
        Ok(schema) => {
            for warning in schema.warnings() {
                writeln!(err, "warning: {warning}")?;
            }
            schema
        }
        Err(ModelError::NoSessionsTable) => {
            db.run_migrations()?;
            db.inspect_schema()?
        }
        Err(error) => return Err(error.into()),
    };
    if !schema.device_columns {
        return Err(ModelError::Schema {
            problems: vec![
                "column ip_address is missing (an older schema): seed writes the current \
                 schema; run the application's migrations first"
                    .to_owned(),
            ],
        }
        .into());
    }
    let manager = SessionManager::new(db).for_schema(&schema);
    let already = manager.count(&SessionFilter::default())?;
    if already > 0 && !force {
        return Err(Error::NotEmpty { count: already });
    }
    if rng_seed.is_some() {
        writeln!(
            err,
            "warning: --seed makes reproducible session ids: anyone who knows the seed can \
             recompute these sessions' cookies, so this is not for a database an app serves"
        )?;
    }
    let started = Instant::now();
    let mut every = Every::second();
    let inserted = seed::seed(&manager, count, rng_seed, all_expired, |done| {
        if every.due() {
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
    Ok(())
}

/// `value` as indented JSON and a newline.
fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `text` cut to `width` characters, with `…` when cut.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

fn print_table(out: &mut dyn Write, rows: &[ListedSession], now: DateTime<Utc>) -> Result<()> {
    writeln!(
        out,
        "{:<36}  {:<14}  {:<19}  {:<22}  {:<12}  {:<20}  {:<7}  {:>9}  KEYS",
        "ID", "USER", "IP", "BROWSER", "CREATED", "EXPIRES", "STATUS", "SIZE"
    )?;
    for listed in rows {
        let (user, ip, browser, created, expires, size, keys) = match listed {
            Ok(session) => (
                session.user_id.as_deref(),
                session.ip_address.as_deref(),
                session
                    .user_agent
                    .as_deref()
                    .map(|agent| browser_label(Some(agent))),
                session.created_at,
                session.expires_at,
                session.data_size(),
                top_level_keys(&session.data, 5),
            ),
            Err(corrupt) => (
                corrupt.user_id.as_deref(),
                None,
                None,
                corrupt.created_at,
                corrupt.expires_at,
                corrupt.raw_data.len(),
                format!("CORRUPT: {}", corrupt.reason),
            ),
        };
        writeln!(
            out,
            "{:<36}  {:<14}  {:<19}  {:<22}  {:<12}  {:<20}  {:<7}  {:>9}  {}",
            listed_id(listed),
            clip(user.unwrap_or("-"), 14),
            clip(ip.unwrap_or("-"), 19),
            clip(browser.as_deref().unwrap_or("-"), 22),
            relative_time(created, now),
            relative_expiry(expires, now),
            status_at(expires, now),
            byte_size(size),
            keys
        )?;
    }
    writeln!(out, "{} session(s)", rows.len())?;
    Ok(())
}

fn print_events(out: &mut dyn Write, events: &[Event]) -> Result<()> {
    writeln!(
        out,
        "{:<23}  {:<14}  {:<9}  {:<8}  {:<19}  DETAIL",
        "TIME", "KIND", "ACTOR", "SESSION", "IP"
    )?;
    for event in events {
        let detail = match &event.detail {
            serde_json::Value::Object(map) if map.is_empty() => "-".to_owned(),
            other => other.to_string(),
        };
        let session: String = event.session_id.chars().take(8).collect();
        writeln!(
            out,
            "{:<23}  {:<14}  {:<9}  {:<8}  {:<19}  {}",
            timestamp(event.at),
            event.kind_text,
            actor_text(event),
            session,
            clip(event.ip_address.as_deref().unwrap_or("-"), 19),
            detail
        )?;
    }
    writeln!(out, "{} event(s)", events.len())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn clip_keeps_short_text_and_marks_cut_text() {
        assert_eq!(clip("203.0.113.7", 15), "203.0.113.7");
        assert_eq!(clip("2001:db8::1234:5678:9abc", 15), "2001:db8::1234…");
        assert_eq!(clip("2001:db8::1234:5678:9abc", 15).chars().count(), 15);
    }
}
