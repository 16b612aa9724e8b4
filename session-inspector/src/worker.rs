//! The database worker: a named thread that owns the [`SessionManager`], takes
//! [`Request`]s over a channel and answers with [`Response`]s, waking the UI with
//! `request_repaint`. The UI never waits on the database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use shared_model::{
    Backend, Error as ModelError, ListedSession, Page, Session, SessionData, SessionFilter,
    SessionManager, Sort, Stats, Status,
};

use crate::format::top_level_keys;
use crate::{config, parse_id, Error};

/// The worker thread's name (shown by debuggers and in panics).
pub const THREAD_NAME: &str = "inspector-db";

/// The name of the worker's helper thread that runs row counts, which can scan
/// a whole table, so they never hold up pages and edits.
pub const COUNT_THREAD_NAME: &str = "inspector-db-count";

/// Work for the count thread, from the worker thread.
enum CountJob {
    /// Count on this database from now on.
    Use(SessionManager),
    /// Count the rows matching `filter` for table generation `generation`.
    Count {
        generation: u64,
        filter: SessionFilter,
    },
}

/// Hours of history and look-ahead in the overview's plots.
pub const STATS_HOURS: u32 = 48;

/// Users listed in the overview's "top users" plot.
pub const STATS_TOP_USERS: u32 = 10;

/// A change to a session's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryChange {
    /// Expire it now.
    Now,
    /// Move the expiry this many minutes later (counted from now when it has
    /// already expired).
    ExtendMinutes(u32),
}

/// Work for the database thread.
#[derive(Debug, Clone)]
pub enum Request {
    /// Open this database (replacing the current one).
    Connect {
        /// The URL.
        url: String,
    },
    /// Count the rows matching a filter.
    Count {
        /// The table generation this is for; stale ones are skipped.
        generation: u64,
        /// The filter.
        filter: SessionFilter,
    },
    /// Load one page of the table.
    Page {
        /// The table generation this is for; stale ones are skipped.
        generation: u64,
        /// The filter.
        filter: SessionFilter,
        /// The order.
        sort: Sort,
        /// Page number (rows `index * limit ..`).
        index: usize,
        /// Rows per page.
        limit: u32,
    },
    /// Load one session in full.
    Get {
        /// Its id.
        session_id: String,
    },
    /// Replace a session's data if its version is still `expected_version`.
    Save {
        /// Its id.
        session_id: String,
        /// The new data.
        data: SessionData,
        /// The version the edit was based on.
        expected_version: i64,
    },
    /// Change a session's expiry.
    SetExpiry {
        /// Its id.
        session_id: String,
        /// How.
        change: ExpiryChange,
    },
    /// Delete one session.
    Delete {
        /// Its id.
        session_id: String,
    },
    /// Delete every session of a user.
    DeleteUser {
        /// The user.
        user_id: String,
    },
    /// Delete every expired session, reporting progress.
    Purge,
    /// Totals and histograms for the overview.
    Stats,
}

/// One table row, summarised on the worker so the UI thread only draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The full id as stored.
    pub session_id: String,
    /// The user, if any.
    pub user_id: Option<String>,
    /// `created_at`.
    pub created_at: DateTime<Utc>,
    /// `updated_at`.
    pub updated_at: DateTime<Utc>,
    /// `expires_at`.
    pub expires_at: DateTime<Utc>,
    /// `version`.
    pub version: i64,
    /// Size of the stored data in bytes.
    pub data_size: usize,
    /// The top-level keys, as text.
    pub keys: String,
    /// Why the row could not be decoded, for corrupt rows.
    pub corrupt: Option<String>,
}

impl Row {
    fn from_listed(listed: ListedSession) -> Self {
        match listed {
            Ok(session) => Self::from_session(&session),
            Err(corrupt) => Self {
                session_id: corrupt.id,
                user_id: corrupt.user_id,
                created_at: corrupt.created_at,
                updated_at: corrupt.updated_at,
                expires_at: corrupt.expires_at,
                version: corrupt.version,
                data_size: corrupt.raw_data.len(),
                keys: String::new(),
                corrupt: Some(corrupt.reason),
            },
        }
    }

    /// The row of a decoded session.
    #[must_use]
    pub fn from_session(session: &Session) -> Self {
        Self {
            session_id: session.id.to_string(),
            user_id: session.user_id.clone(),
            created_at: session.created_at,
            updated_at: session.updated_at,
            expires_at: session.expires_at,
            version: session.version,
            data_size: session.data_size(),
            keys: top_level_keys(&session.data, 4),
            corrupt: None,
        }
    }
}

/// The worker's answers.
#[derive(Debug, Clone)]
pub enum Response {
    /// The database is open.
    Connected {
        /// The URL as given.
        url: String,
        /// The URL without password.
        display_url: String,
        /// The engine.
        backend: Backend,
        /// Migrations the database has not run (the inspector does not run them).
        pending_migrations: Vec<String>,
    },
    /// The database could not be opened.
    ConnectFailed {
        /// The URL as given.
        url: String,
        /// Why.
        message: String,
    },
    /// A row count.
    Counted {
        /// The table generation.
        generation: u64,
        /// Matching rows.
        count: u64,
    },
    /// A page of rows.
    PageLoaded {
        /// The table generation.
        generation: u64,
        /// Page number.
        index: usize,
        /// The rows.
        rows: Vec<Row>,
        /// How long the query took.
        elapsed: Duration,
    },
    /// A session loaded in full (`None`: it does not exist any more).
    Loaded {
        /// The id asked for.
        session_id: String,
        /// The session, or why it could not be decoded.
        session: Option<Result<Session, String>>,
    },
    /// An edit was saved.
    Saved {
        /// The session as written.
        session: Session,
    },
    /// An edit was refused because someone else wrote the session meanwhile.
    Conflict {
        /// The data the user tried to save.
        mine: SessionData,
        /// The version the edit was based on.
        expected_version: i64,
        /// The session as it is now.
        current: Session,
    },
    /// A session's expiry was changed.
    ExpiryChanged {
        /// The session.
        session_id: String,
        /// Its new expiry.
        expires_at: DateTime<Utc>,
        /// What was done.
        change: ExpiryChange,
    },
    /// Sessions were deleted.
    Deleted {
        /// The single session deleted, if the request named one.
        session_id: Option<String>,
        /// The user whose sessions were deleted, if the request named one.
        user_id: Option<String>,
        /// How many rows went.
        count: u64,
    },
    /// A purge started; `total` expired rows are to go.
    PurgeStarted {
        /// Expired rows when the purge started.
        total: u64,
    },
    /// A purge batch finished.
    PurgeProgress {
        /// Rows removed so far.
        removed: u64,
    },
    /// A purge finished.
    PurgeDone {
        /// Rows removed.
        removed: u64,
    },
    /// Statistics for the overview.
    Stats(Box<Stats>),
    /// A request failed; the app keeps working.
    Failed {
        /// What was being done.
        context: String,
        /// Why it failed.
        message: String,
    },
}

/// The UI's handle on the worker thread. Dropping it ends the thread once its
/// current request is done.
#[derive(Debug)]
pub struct Worker {
    requests: Sender<Request>,
    responses: Receiver<Response>,
    generation: Arc<AtomicU64>,
}

impl Worker {
    /// Starts the worker thread; it calls `wake` after each response (the app
    /// passes `ctx.request_repaint`).
    ///
    /// # Errors
    ///
    /// When the operating system cannot start a thread.
    pub fn spawn(wake: impl Fn() + Send + Sync + 'static) -> std::io::Result<Self> {
        let (request_tx, request_rx) = mpsc::channel::<Request>();
        let (response_tx, response_rx) = mpsc::channel::<Response>();
        let (count_tx, count_rx) = mpsc::channel::<CountJob>();
        let generation = Arc::new(AtomicU64::new(0));
        let wake = Arc::new(wake);
        let count_generation = Arc::clone(&generation);
        let count_responses = response_tx.clone();
        let count_wake = Arc::clone(&wake);
        std::thread::Builder::new()
            .name(COUNT_THREAD_NAME.to_owned())
            .spawn(move || {
                run_counts(&count_rx, &count_generation, |response| {
                    let delivered = count_responses.send(response).is_ok();
                    count_wake();
                    delivered
                });
            })?;
        let current = Arc::clone(&generation);
        std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                let mut state = WorkerState {
                    manager: None,
                    generation: current,
                    counts: count_tx,
                };
                let send = |response: Response| {
                    let delivered = response_tx.send(response).is_ok();
                    wake();
                    delivered
                };
                while let Ok(request) = request_rx.recv() {
                    if !state.handle(request, &send) {
                        break;
                    }
                }
            })?;
        Ok(Self {
            requests: request_tx,
            responses: response_rx,
            generation,
        })
    }

    /// Queues a request. Returns false when the worker has stopped.
    pub fn send(&self, request: Request) -> bool {
        self.requests.send(request).is_ok()
    }

    /// The next response, if one is waiting.
    #[must_use]
    pub fn try_recv(&self) -> Option<Response> {
        self.responses.try_recv().ok()
    }

    /// Tells the worker that table requests older than `generation` are stale,
    /// so it skips them instead of running them.
    pub fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::Relaxed);
    }
}

struct WorkerState {
    manager: Option<SessionManager>,
    generation: Arc<AtomicU64>,
    counts: Sender<CountJob>,
}

/// The count thread's loop: counts for the latest table generation only.
fn run_counts(jobs: &Receiver<CountJob>, generation: &AtomicU64, send: impl Fn(Response) -> bool) {
    let mut manager: Option<SessionManager> = None;
    while let Ok(job) = jobs.recv() {
        let (job_generation, filter) = match job {
            CountJob::Use(new_manager) => {
                manager = Some(new_manager);
                continue;
            }
            CountJob::Count { generation, filter } => (generation, filter),
        };
        if job_generation < generation.load(Ordering::Relaxed) {
            continue;
        }
        let Some(manager) = &manager else {
            continue;
        };
        let response = match manager.count(&filter) {
            Ok(count) => Response::Counted {
                generation: job_generation,
                count,
            },
            Err(error) => failed("counting sessions", error),
        };
        if !send(response) {
            return;
        }
    }
}

fn failed(context: impl Into<String>, error: impl std::fmt::Display) -> Response {
    Response::Failed {
        context: context.into(),
        message: error.to_string(),
    }
}

impl WorkerState {
    fn is_stale(&self, generation: u64) -> bool {
        generation < self.generation.load(Ordering::Relaxed)
    }

    /// Runs one request; false when the UI has gone away.
    fn handle(&mut self, request: Request, send: &impl Fn(Response) -> bool) -> bool {
        if let Request::Connect { url } = request {
            return send(self.connect(url));
        }
        let Some(manager) = self.manager.clone() else {
            return send(failed(
                "no database",
                "not connected; pick a database in the connection bar",
            ));
        };
        let response = match request {
            Request::Connect { .. } => return true,
            Request::Count { generation, filter } => {
                // The count thread answers; a send fails only when it has stopped.
                if self
                    .counts
                    .send(CountJob::Count { generation, filter })
                    .is_err()
                {
                    failed("counting sessions", "the count thread has stopped")
                } else {
                    return true;
                }
            }
            Request::Page {
                generation,
                filter,
                sort,
                index,
                limit,
            } => {
                if self.is_stale(generation) {
                    return true;
                }
                let started = Instant::now();
                let offset = (index as u64).saturating_mul(u64::from(limit));
                match manager.list(&filter, sort, Page::Offset { offset, limit }) {
                    Ok(rows) => Response::PageLoaded {
                        generation,
                        index,
                        rows: rows.into_iter().map(Row::from_listed).collect(),
                        elapsed: started.elapsed(),
                    },
                    Err(error) => failed("loading sessions", error),
                }
            }
            Request::Get { session_id } => get(&manager, session_id),
            Request::Save {
                session_id,
                data,
                expected_version,
            } => save(&manager, &session_id, data, expected_version),
            Request::SetExpiry { session_id, change } => set_expiry(&manager, &session_id, change),
            Request::Delete { session_id } => {
                match parse_id(&session_id).and_then(|id| Ok(manager.delete(&id)?)) {
                    Ok(deleted) => Response::Deleted {
                        session_id: Some(session_id),
                        user_id: None,
                        count: u64::from(deleted),
                    },
                    Err(error) => failed("deleting the session", error),
                }
            }
            Request::DeleteUser { user_id } => match manager.delete_for_user(&user_id) {
                Ok(count) => Response::Deleted {
                    session_id: None,
                    user_id: Some(user_id),
                    count,
                },
                Err(error) => failed(format!("deleting the sessions of {user_id}"), error),
            },
            Request::Purge => {
                let expired = SessionFilter {
                    status: Status::Expired,
                    ..SessionFilter::default()
                };
                match manager.count(&expired) {
                    Ok(total) => {
                        if !send(Response::PurgeStarted { total }) {
                            return false;
                        }
                    }
                    Err(error) => return send(failed("counting expired sessions", error)),
                }
                let result =
                    manager.purge_expired_with(shared_model::DEFAULT_PURGE_BATCH, |removed| {
                        send(Response::PurgeProgress { removed });
                    });
                match result {
                    Ok(removed) => Response::PurgeDone { removed },
                    Err(error) => failed("purging expired sessions", error),
                }
            }
            Request::Stats => match manager.stats(STATS_HOURS, STATS_TOP_USERS) {
                Ok(stats) => Response::Stats(Box::new(stats)),
                Err(error) => failed("loading statistics", error),
            },
        };
        send(response)
    }

    fn connect(&mut self, url: String) -> Response {
        // Two connections: one for this thread, one for the count thread.
        match config::open_existing(&url, 2) {
            Ok((db, pending_migrations)) => {
                let response = Response::Connected {
                    display_url: db.display_url().to_owned(),
                    backend: db.backend(),
                    url,
                    pending_migrations,
                };
                let manager = SessionManager::new(db);
                if self.counts.send(CountJob::Use(manager.clone())).is_err() {
                    return failed("opening the database", "the count thread has stopped");
                }
                self.manager = Some(manager);
                response
            }
            Err(error) => {
                // Keep working on the previous database, if any.
                Response::ConnectFailed {
                    url,
                    message: error.to_string(),
                }
            }
        }
    }
}

fn get(manager: &SessionManager, session_id: String) -> Response {
    let id = match parse_id(&session_id) {
        Ok(id) => id,
        Err(error) => return failed("loading the session", error),
    };
    match manager.get(&id) {
        Ok(session) => Response::Loaded {
            session_id,
            session: session.map(Ok),
        },
        Err(ModelError::CorruptData(corrupt)) => Response::Loaded {
            session_id,
            session: Some(Err(corrupt.reason)),
        },
        Err(error) => failed("loading the session", error),
    }
}

fn save(
    manager: &SessionManager,
    session_id: &str,
    data: SessionData,
    expected_version: i64,
) -> Response {
    let id = match parse_id(session_id) {
        Ok(id) => id,
        Err(error) => return failed("saving the session", error),
    };
    match manager.replace_data(&id, data.clone(), expected_version) {
        Ok(session) => Response::Saved { session },
        Err(ModelError::Conflict { expected, current }) => Response::Conflict {
            mine: data,
            expected_version: expected,
            current: *current,
        },
        Err(error) => failed("saving the session", error),
    }
}

fn set_expiry(manager: &SessionManager, session_id: &str, change: ExpiryChange) -> Response {
    let context = match change {
        ExpiryChange::Now => "expiring the session",
        ExpiryChange::ExtendMinutes(_) => "extending the session",
    };
    match parse_id(session_id).and_then(|id| change_expiry(manager, &id, change)) {
        Ok(expires_at) => Response::ExpiryChanged {
            session_id: session_id.to_owned(),
            expires_at,
            change,
        },
        Err(error) => failed(context, error),
    }
}

/// Expires a session now or extends it, and returns its new expiry.
///
/// Expiring a session that has already expired keeps its expiry (it is not
/// moved later to "now"); extending an expired session counts from now.
/// Corrupt rows can be expired and extended too: only the expiry is read.
///
/// # Errors
///
/// [`Error::NotFound`] when the session does not exist; database errors.
pub fn change_expiry(
    manager: &SessionManager,
    id: &shared_model::SessionId,
    change: ExpiryChange,
) -> crate::Result<DateTime<Utc>> {
    let current = match manager.get(id) {
        Ok(Some(session)) => session.expires_at,
        Ok(None) => return Err(Error::NotFound(id.to_string())),
        Err(ModelError::CorruptData(corrupt)) => corrupt.expires_at,
        Err(error) => return Err(error.into()),
    };
    let now = manager.now();
    let expires_at = match change {
        ExpiryChange::Now => current.min(now),
        ExpiryChange::ExtendMinutes(minutes) => {
            current.max(now) + chrono::Duration::minutes(i64::from(minutes))
        }
    };
    match manager.set_expiry(id, expires_at) {
        Ok(()) => Ok(expires_at),
        Err(ModelError::Gone(_)) => Err(Error::NotFound(id.to_string())),
        Err(error) => Err(error.into()),
    }
}
