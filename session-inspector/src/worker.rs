//! The database worker: a named thread that owns the open database, takes
//! [`Request`]s over a channel and answers with [`Response`]s, waking the UI
//! with `request_repaint`. The UI never waits on the database.
//!
//! Writes are not checked here: a database opened read-only refuses them at the
//! connection, and the failure comes back as [`Response::Failed`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

use shared_model::{
    Actor, Error as ModelError, Page, SessionData, SessionFilter, SessionId, SessionManager, Status,
};

use crate::export::{export, ExportFormat};
use crate::mask::Masking;
use crate::messages::{
    BulkAction, ConnectionInfo, DatabaseUrl, HistoryScope, Op, Request, Response, Row, BULK_BATCH,
    HISTORY_LIMIT,
};
pub use crate::messages::{STATS_HOURS, STATS_TOP_USERS};
use crate::open::{open, OpenOptions, Opened};

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
                    opened: None,
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

    /// Waits up to `timeout` for the next response (for tests and scripts; the
    /// app never waits).
    #[must_use]
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<Response> {
        self.responses.recv_timeout(timeout).ok()
    }

    /// Tells the worker that table requests older than `generation` are stale,
    /// so it skips them instead of running them.
    pub fn set_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::Relaxed);
    }
}

struct WorkerState {
    opened: Option<Opened>,
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
            Err(error) => failed(
                Op::Count {
                    generation: job_generation,
                },
                error,
            ),
        };
        if !send(response) {
            return;
        }
    }
}

fn failed(op: Op, error: impl std::fmt::Display) -> Response {
    Response::Failed {
        op,
        message: error.to_string(),
    }
}

impl WorkerState {
    fn is_stale(&self, generation: u64) -> bool {
        generation < self.generation.load(Ordering::Relaxed)
    }

    /// Runs one request; false when the UI has gone away.
    fn handle(&mut self, request: Request, send: &impl Fn(Response) -> bool) -> bool {
        if let Request::Connect { url, read_only } = request {
            return send(self.connect(url, read_only));
        }
        let Some(opened) = &self.opened else {
            return send(failed(
                Op::NotConnected,
                "not connected; pick a database in the connection bar",
            ));
        };
        let manager = opened.manager.clone();
        let read_only = opened.read_only;
        let response = match request {
            Request::Connect { .. } => return true,
            Request::Count { generation, filter } => {
                // The count thread answers; a send fails only when it has stopped.
                if self
                    .counts
                    .send(CountJob::Count { generation, filter })
                    .is_err()
                {
                    failed(Op::Count { generation }, "the count thread has stopped")
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
                    Err(error) => failed(Op::LoadPage, error),
                }
            }
            Request::Get { session_id } => get(&manager, session_id),
            Request::Save {
                session_id,
                data,
                expected_version,
            } => save(&manager, session_id, data, expected_version, read_only),
            Request::SetExpiry { session_id, change } => {
                match manager.change_expiry(&session_id, change) {
                    Ok(expires_at) => Response::ExpiryChanged {
                        session_id,
                        expires_at,
                        change,
                    },
                    Err(error) => write_failed(Op::ChangeExpiry(change), error, read_only),
                }
            }
            Request::Delete { session_id } => match manager.delete(&session_id) {
                Ok(existed) => Response::Deleted {
                    session_id,
                    existed,
                },
                Err(error) => write_failed(Op::Delete, error, read_only),
            },
            Request::DeleteUser { user_id } => match manager.delete_for_user(&user_id) {
                Ok(count) => Response::DeletedUser { user_id, count },
                Err(error) => write_failed(Op::DeleteUser, error, read_only),
            },
            Request::Purge => return purge(&manager, read_only, send),
            Request::Stats => match manager.stats(STATS_HOURS, STATS_TOP_USERS) {
                Ok(stats) => Response::Stats(Box::new(stats)),
                Err(error) => failed(Op::Stats, error),
            },
            Request::CountMatching { action, filter } => match manager.count(&filter) {
                Ok(count) => Response::MatchingCounted {
                    action,
                    filter,
                    count,
                },
                Err(error) => failed(Op::CountMatching(action), error),
            },
            Request::Bulk {
                action,
                filter,
                at_most,
                cancel,
            } => bulk(&manager, action, &filter, at_most, &cancel, read_only, send),
            Request::Export {
                filter,
                format,
                masking,
                path,
                replace,
                cancel,
            } => export_to_file(
                &ExportJob {
                    manager: &manager,
                    filter: &filter,
                    format,
                    masking: &masking,
                    path,
                    replace,
                    cancel: &cancel,
                },
                send,
            ),
            Request::History { scope } => {
                let events = match &scope {
                    HistoryScope::Session(id) => manager.events_of_session(id, HISTORY_LIMIT),
                    HistoryScope::User(user) => manager.events_of_user(user, HISTORY_LIMIT),
                };
                match events {
                    Ok(events) => Response::History { scope, events },
                    Err(error) => failed(Op::History, error),
                }
            }
        };
        send(response)
    }

    fn connect(&mut self, url: DatabaseUrl, read_only: bool) -> Response {
        let options = OpenOptions {
            read_only,
            // One connection for this thread, one for the count thread.
            connections: 2,
            actor: Actor::Inspector,
        };
        match open(url.expose(), options) {
            Ok(opened) => {
                let db = opened.manager.database();
                let info = ConnectionInfo {
                    display_url: db.display_url().to_owned(),
                    backend: db.backend(),
                    url,
                    read_only: opened.read_only,
                    device_columns: opened.schema.device_columns,
                    events_table: opened.schema.events_table,
                    warnings: opened.schema.warnings(),
                };
                if self
                    .counts
                    .send(CountJob::Use(opened.manager.clone()))
                    .is_err()
                {
                    return failed(Op::Connect, "the count thread has stopped");
                }
                self.opened = Some(opened);
                Response::Connected(info)
            }
            // Keep working on the previous database, if any.
            Err(error) => Response::ConnectFailed {
                message: without_url_secrets(error.to_string(), &url),
                url,
            },
        }
    }
}

/// `message` with the URL's passwords hidden: an error may quote the URL as
/// given (an SQLite path is all of it).
fn without_url_secrets(message: String, url: &DatabaseUrl) -> String {
    let exposed = url.expose();
    let redacted = url.redacted();
    if exposed == redacted {
        return message;
    }
    let mut message = message.replace(exposed, &redacted);
    if let (Some(path), Some(shown)) = (
        exposed.strip_prefix("sqlite://"),
        redacted.strip_prefix("sqlite://"),
    ) {
        message = message.replace(path, shown);
    }
    message
}

/// What a write refused by a read-only connection adds to its error.
pub const READ_ONLY_REFUSAL: &str =
    "the database is open read-only, so the connection refused the write";

/// A write that failed; on a read-only connection the message says that the
/// connection refused it ([`READ_ONLY_REFUSAL`]).
fn write_failed(op: Op, error: impl std::fmt::Display, read_only: bool) -> Response {
    let message = if read_only {
        format!("{error} ({READ_ONLY_REFUSAL})")
    } else {
        error.to_string()
    };
    Response::Failed { op, message }
}

fn get(manager: &SessionManager, session_id: SessionId) -> Response {
    match manager.get(&session_id) {
        Ok(session) => Response::Loaded {
            session_id,
            session: session.map(Ok),
        },
        Err(ModelError::CorruptData(corrupt)) => Response::Loaded {
            session_id,
            session: Some(Err(corrupt.reason)),
        },
        Err(error) => failed(Op::Load { session_id }, error),
    }
}

fn save(
    manager: &SessionManager,
    session_id: SessionId,
    data: SessionData,
    expected_version: i64,
    read_only: bool,
) -> Response {
    match manager.replace_data(&session_id, data.clone(), expected_version) {
        Ok(session) => Response::Saved {
            session_id,
            session,
        },
        Err(ModelError::Conflict { expected, current }) => Response::Conflict {
            session_id,
            mine: data,
            expected_version: expected,
            current: *current,
        },
        Err(error) => write_failed(Op::Save, error, read_only),
    }
}

/// Runs "Expire/Delete all matching": at most `at_most` sessions (the count
/// the admin confirmed), in batches, reporting progress, until done or
/// cancelled. Cancelled before it starts, it runs no batch at all.
fn bulk(
    manager: &SessionManager,
    action: BulkAction,
    filter: &SessionFilter,
    at_most: u64,
    cancel: &AtomicBool,
    read_only: bool,
    send: &impl Fn(Response) -> bool,
) -> Response {
    if cancel.load(Ordering::Relaxed) {
        return Response::BulkDone {
            action,
            done: 0,
            cancelled: true,
        };
    }
    let progress = |done| {
        // Progress is best effort; the UI may have gone.
        send(Response::BulkProgress { action, done }) && !cancel.load(Ordering::Relaxed)
    };
    let result = match action {
        BulkAction::Expire => manager.expire_matching(filter, at_most, BULK_BATCH, progress),
        BulkAction::Delete => manager.delete_matching(filter, at_most, BULK_BATCH, progress),
    };
    match result {
        Ok(done) => Response::BulkDone {
            action,
            done,
            cancelled: cancel.load(Ordering::Relaxed),
        },
        Err(error) => write_failed(Op::Bulk(action), error, read_only),
    }
}

fn purge(manager: &SessionManager, read_only: bool, send: &impl Fn(Response) -> bool) -> bool {
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
        Err(error) => return send(failed(Op::Purge, error)),
    }
    let result = manager.purge_expired_with(shared_model::DEFAULT_PURGE_BATCH, |removed| {
        send(Response::PurgeProgress { removed });
    });
    send(match result {
        Ok(removed) => Response::PurgeDone { removed },
        Err(error) => write_failed(Op::Purge, error, read_only),
    })
}

/// An export's parameters.
struct ExportJob<'a> {
    manager: &'a SessionManager,
    filter: &'a SessionFilter,
    format: ExportFormat,
    masking: &'a Masking,
    path: PathBuf,
    /// Whether an existing file at `path` may be replaced.
    replace: bool,
    cancel: &'a AtomicBool,
}

/// The file an export writes before it is complete.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// Whether something (a file, a folder, even a dangling link) is at `path`.
#[must_use]
pub fn occupied(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Creates a new file readable and writable by its owner only (mode 0600 on
/// unix): an export holds session data, masked or not. Refuses to open a file
/// that exists.
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Why an export will not replace the file at `path`.
fn not_replaced(path: &Path) -> String {
    format!(
        "{} exists and was not replaced (tick \"Replace the existing file\" to replace it)",
        path.display()
    )
}

/// Exports to `<path>.part` (created new, mode 0600), then renames it to
/// `path`: a cancelled or failed export leaves no file and never replaces an
/// existing one; a complete one replaces an existing file only when
/// `job.replace` says so.
fn export_to_file(job: &ExportJob<'_>, send: &impl Fn(Response) -> bool) -> Response {
    if !job.replace && occupied(&job.path) {
        return failed(Op::Export, not_replaced(&job.path));
    }
    let partial = partial_path(&job.path);
    let file = match create_private(&partial) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            // Not ours to remove: another export may be writing it.
            return failed(
                Op::Export,
                format!(
                    "{} exists (another export is writing it, or one was interrupted): \
                     remove it and export again",
                    partial.display()
                ),
            );
        }
        Err(error) => {
            return failed(
                Op::Export,
                format!("cannot create {}: {error}", partial.display()),
            )
        }
    };
    let mut out = BufWriter::new(file);
    let written = export(
        job.manager,
        job.filter,
        job.format,
        job.masking,
        &mut out,
        |written| send(Response::ExportProgress { written }) && !job.cancel.load(Ordering::Relaxed),
    )
    .and_then(|written| {
        out.flush()?;
        Ok(written)
    });
    drop(out);
    let cancelled = job.cancel.load(Ordering::Relaxed);
    let result = written
        .map_err(|error| error.to_string())
        .and_then(|written| {
            if cancelled {
                return Ok(written);
            }
            // Checked again: a file may have appeared while the export ran.
            if !job.replace && occupied(&job.path) {
                return Err(not_replaced(&job.path));
            }
            match std::fs::rename(&partial, &job.path) {
                Ok(()) => Ok(written),
                Err(error) => Err(format!("cannot write {}: {error}", job.path.display())),
            }
        });
    // A cancelled or failed export keeps nothing.
    let leftover = if cancelled || result.is_err() {
        match std::fs::remove_file(&partial) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Some(format!(
                "; {} could not be removed: {error}",
                partial.display()
            )),
            _ => None,
        }
    } else {
        None
    };
    match (result, leftover) {
        (Ok(written), None) => Response::ExportDone {
            path: job.path.clone(),
            written,
            cancelled,
        },
        (Ok(_), Some(leftover)) => failed(Op::Export, format!("cancelled{leftover}")),
        (Err(error), leftover) => failed(
            Op::Export,
            format!("{error}{}", leftover.unwrap_or_default()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{partial_path, without_url_secrets};
    use crate::messages::DatabaseUrl;
    use std::path::Path;

    #[test]
    fn a_connect_error_never_quotes_a_password() {
        for url in [
            "/tmp/x.sqlite?password=hunter2",
            "sqlite:///tmp/x.sqlite?password=hunter2",
        ] {
            let url = DatabaseUrl::new(url);
            let message = without_url_secrets(
                "no SQLite database at /tmp/x.sqlite?password=hunter2".to_owned(),
                &url,
            );
            assert_eq!(message, "no SQLite database at /tmp/x.sqlite?password=***");
        }
        let plain = DatabaseUrl::new("db.sqlite");
        assert_eq!(without_url_secrets("as is".to_owned(), &plain), "as is");
    }

    #[test]
    fn the_partial_file_sits_next_to_the_target() {
        assert_eq!(
            partial_path(Path::new("/tmp/out/sessions.csv")),
            Path::new("/tmp/out/sessions.csv.part")
        );
    }
}
