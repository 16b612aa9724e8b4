//! Applying the worker's [`Response`]s to the state.

use shared_model::{Session, SessionData, SessionId};

use super::{InitialSelection, InspectorApp};
use crate::messages::{BulkAction, ConnectionInfo, ExpiryChange, Op, Response};
use crate::state::{pretty, Confirm, ConflictState, DetailView, Editor, Loaded};

impl InspectorApp {
    /// Applies one worker response to the state.
    pub(super) fn handle_response(&mut self, response: Response, now: f64) {
        match response {
            Response::Connected(info) => self.connected(info, now),
            Response::ConnectFailed { url, message } => {
                self.state.connection.connecting = None;
                if let Some(current) = &self.state.connection.current {
                    self.state.connection.url_input = current.url.without_password();
                    self.state.connection.read_only = current.read_only;
                }
                self.state
                    .error(format!("cannot open {}: {message}", url.redacted()));
            }
            Response::Counted { generation, count } => {
                if generation == self.state.table.generation {
                    self.state.table.count = Some(count);
                }
            }
            Response::PageLoaded {
                generation,
                index,
                rows,
                elapsed,
            } => {
                self.state.table.last_query = Some(elapsed);
                #[cfg(feature = "bench")]
                if let Some(bench) = &mut self.bench {
                    bench.page_loaded(elapsed);
                }
                let first = rows.first().and_then(|row| {
                    row.row_id
                        .session_id()
                        .map(|session_id| (session_id, row.user_id.clone()))
                });
                if self.state.table.insert_page(generation, index, rows)
                    && index == 0
                    && self.initial_selection == Some(InitialSelection::First)
                {
                    if let Some((session_id, user_id)) = first {
                        self.initial_selection = None;
                        self.select(session_id, user_id, false);
                    }
                }
            }
            Response::Loaded {
                session_id,
                session,
            } => self.loaded(session_id, session),
            Response::Saved {
                session_id,
                session,
            } => {
                self.state.info(format!(
                    "Saved session {} (version {})",
                    session_id.short(),
                    session.version
                ));
                // Another session selected meanwhile keeps its own editor.
                if self.state.selected_id() == Some(session_id) {
                    self.state.editor = Some(Editor::for_session(
                        &session,
                        &self.state.masking,
                        &self.state.revealed,
                    ));
                    self.state.conflict = None;
                    if let Some(selection) = &mut self.state.selection {
                        selection.loaded = Loaded::Session(Box::new(session));
                    }
                }
                self.refresh(now);
            }
            Response::Conflict {
                session_id,
                mine,
                expected_version,
                current,
            } => self.conflict(session_id, mine, expected_version, current),
            Response::ExpiryChanged {
                session_id,
                expires_at,
                change,
            } => {
                let short = session_id.short();
                match change {
                    ExpiryChange::ExpireNow => self.state.info(format!("Expired session {short}")),
                    ExpiryChange::ExtendMinutes(minutes) => self.state.info(format!(
                        "Extended session {short} by {minutes} min, until {}",
                        crate::format::timestamp(expires_at)
                    )),
                }
                self.refresh(now);
            }
            Response::Deleted {
                session_id,
                existed,
            } => {
                if self.state.selected_id() == Some(session_id) {
                    self.clear_selection();
                }
                if existed {
                    self.state.info(format!("Deleted session {session_id}"));
                } else {
                    self.state
                        .error(format!("session {session_id} was already gone"));
                }
                self.after_deleting(now);
            }
            Response::DeletedUser { user_id, count } => {
                if self
                    .state
                    .selection
                    .as_ref()
                    .is_some_and(|s| s.user_id.as_ref() == Some(&user_id))
                {
                    self.clear_selection();
                }
                self.state
                    .info(format!("Deleted {count} session(s) of {user_id}"));
                self.after_deleting(now);
            }
            Response::PurgeStarted { total } => {
                self.state.purge.running = true;
                self.state.purge.total = total;
                self.state.purge.removed = 0;
            }
            Response::PurgeProgress { removed } => {
                self.state.purge.removed = removed;
            }
            Response::PurgeDone { removed } => {
                self.state.purge.running = false;
                self.state.purge.removed = removed;
                self.state.purge.last_removed = Some(removed);
                self.state
                    .info(format!("Purged {removed} expired session(s)"));
                self.after_deleting(now);
            }
            Response::Stats(stats) => {
                self.state.stats_loading = false;
                self.state.stats = Some(*stats);
            }
            Response::MatchingCounted {
                action,
                filter,
                count,
            } => {
                if let Some(Confirm::Bulk(bulk)) = &mut self.state.confirm {
                    if bulk.action == action && bulk.filter == filter {
                        bulk.count = Some(count);
                    }
                }
            }
            Response::BulkProgress { done, .. } => {
                if let Some(job) = &mut self.state.job {
                    job.done = done;
                }
            }
            Response::BulkDone {
                action,
                done,
                cancelled,
            } => {
                self.state.job = None;
                self.job_cancel = None;
                let verb = match action {
                    BulkAction::Expire => "Expired",
                    BulkAction::Delete => "Deleted",
                };
                let stopped = if cancelled {
                    " before it was cancelled"
                } else {
                    ""
                };
                self.state
                    .info(format!("{verb} {done} matching session(s){stopped}"));
                // The refresh reloads the selection too, showing whether it went.
                self.after_deleting(now);
            }
            Response::ExportProgress { written } => {
                if let Some(job) = &mut self.state.job {
                    job.done = written;
                }
            }
            Response::ExportDone {
                path,
                written,
                cancelled,
            } => {
                self.state.job = None;
                self.job_cancel = None;
                if cancelled {
                    self.state.info(format!(
                        "Export cancelled; {} was not written",
                        path.display()
                    ));
                } else {
                    self.state.info(format!(
                        "Exported {written} session(s) to {}",
                        path.display()
                    ));
                }
            }
            Response::History { scope, events } => {
                if let Some(history) = &mut self.state.history {
                    if history.scope == scope {
                        history.events = Some(events);
                    }
                }
            }
            Response::Failed { op, message } => self.failed(op, &message, now),
        }
    }

    fn connected(&mut self, info: ConnectionInfo, now: f64) {
        let same_database = self
            .state
            .connection
            .current
            .as_ref()
            .is_some_and(|current| current.url == info.url);
        self.state.connection.connecting = None;
        self.state.connection.remember(&info.url.without_password());
        self.state.connection.read_only = info.read_only;
        let mode = if info.read_only { ", read-only" } else { "" };
        let opened = format!("Opened {} ({}{mode})", info.display_url, info.backend);
        if info.warnings.is_empty() {
            self.state.info(opened);
        } else {
            self.state
                .warn(format!("{opened}: {}", info.warnings.join("; ")));
        }
        if !info.device_columns {
            self.state.filter_input.ip_prefix.clear();
        }
        let events_table = info.events_table;
        self.state.connection.current = Some(info);
        if same_database {
            // Reopened in another mode: reload what is shown.
            if let Some(session_id) = self.state.selected_id() {
                self.send(crate::messages::Request::Get { session_id });
            }
            self.reload_history();
        } else {
            self.clear_selection();
            self.state.stats = None;
            self.state.history = None;
            self.state.detail_view = DetailView::Data;
        }
        if !events_table {
            self.state.history = None;
        }
        self.state.refresh.last = now;
        self.restart_table(self.state.table.sort);
        if self.state.tab == crate::state::Tab::Overview {
            self.load_stats();
        }
        if let Some(InitialSelection::Id(text)) = &self.initial_selection {
            let parsed = crate::parse_id(text);
            self.initial_selection = None;
            match parsed {
                Ok(session_id) => self.select(session_id, None, false),
                Err(error) => self.state.error(format!("--select: {error}")),
            }
        }
    }

    /// A save was refused because the session changed meanwhile: the
    /// conflict view, if the session is still the one selected.
    fn conflict(
        &mut self,
        session_id: SessionId,
        mine: SessionData,
        expected_version: i64,
        current: Session,
    ) {
        let changed = format!(
            "not saved: session {} changed meanwhile (version {expected_version} is now {})",
            session_id.short(),
            current.version
        );
        if self.state.selected_id() != Some(session_id) {
            self.state.error(changed);
            return;
        }
        if let Some(editor) = &mut self.state.editor {
            editor.saving = false;
        }
        self.state.error(changed);
        self.state.conflict = Some(ConflictState {
            mine_text: pretty(&self.state.shown_data(&mine)),
            mine,
            expected_version,
            current_text: pretty(&self.state.shown_data(&current.data)),
            current: Box::new(current),
            error: None,
        });
    }

    fn failed(&mut self, op: Op, message: &str, now: f64) {
        match op {
            Op::Save => {
                if let Some(editor) = &mut self.state.editor {
                    editor.saving = false;
                }
            }
            Op::Load { session_id } => {
                // A failed reload keeps what is shown; a first load says why.
                if let Some(selection) = &mut self.state.selection {
                    if selection.session_id == session_id && selection.loaded == Loaded::Loading {
                        selection.loaded = Loaded::Failed(message.to_owned());
                    }
                }
            }
            Op::Count { generation } => {
                if generation == self.state.table.generation {
                    self.state.table.count_error = Some(message.to_owned());
                }
            }
            Op::Purge => self.state.purge.running = false,
            Op::Stats => self.state.stats_loading = false,
            // Let the view ask again on a later frame.
            Op::LoadPage => self.state.table.requested.clear(),
            Op::CountMatching(_) => {
                if matches!(self.state.confirm, Some(Confirm::Bulk(_))) {
                    self.state.confirm = None;
                }
            }
            Op::Bulk(_) | Op::Export => {
                self.state.job = None;
                self.job_cancel = None;
            }
            Op::History => {
                self.state.history = None;
                self.state.detail_view = DetailView::Data;
            }
            Op::Connect => self.state.connection.connecting = None,
            Op::NotConnected | Op::ChangeExpiry(_) | Op::Delete | Op::DeleteUser => {}
        }
        if matches!(op, Op::Bulk(_)) {
            // Earlier batches stay done: show what is left.
            self.after_deleting(now);
        }
        self.state.error(format!("{op}: {message}"));
    }

    /// After rows went or changed in bulk: reload the table and the overview.
    fn after_deleting(&mut self, now: f64) {
        self.refresh(now);
        if self.state.stats.is_some() {
            self.load_stats();
        }
    }

    fn clear_selection(&mut self) {
        self.state.selection = None;
        self.state.editor = None;
        self.state.conflict = None;
        self.state.revealed.clear();
        if self.state.history.as_ref().is_some_and(|history| {
            matches!(history.scope, crate::messages::HistoryScope::Session(_))
        }) {
            self.state.history = None;
            self.state.detail_view = DetailView::Data;
        }
    }

    fn loaded(&mut self, session_id: SessionId, session: Option<Result<Session, String>>) {
        let Some(selection) = &mut self.state.selection else {
            return;
        };
        if selection.session_id != session_id {
            return;
        }
        let by_cookie = std::mem::take(&mut selection.by_cookie);
        match session {
            None => {
                selection.loaded = Loaded::Missing;
                self.state.editor = None;
                if by_cookie {
                    self.state.error(format!(
                        "no session has this cookie (its public id {session_id} is not in this \
                         database: logged out, expired and purged, or another database)"
                    ));
                }
            }
            Some(Err(reason)) => {
                selection.loaded = Loaded::Corrupt(reason);
                self.state.editor = None;
            }
            Some(Ok(session)) => {
                selection.user_id.clone_from(&session.user_id);
                // Keep an edit in progress: saving it later runs the version check.
                let keep_edit = self
                    .state
                    .editor
                    .as_ref()
                    .is_some_and(|editor| editor.session_id == session.id && editor.is_dirty());
                if !keep_edit {
                    self.state.editor = Some(Editor::for_session(
                        &session,
                        &self.state.masking,
                        &self.state.revealed,
                    ));
                }
                let found = by_cookie.then(|| {
                    let user = session.user_id.as_deref().unwrap_or("anonymous");
                    format!(
                        "Found session {} ({user}) for this cookie",
                        session.id.short()
                    )
                });
                selection.loaded = Loaded::Session(Box::new(session));
                if let Some(found) = found {
                    self.state.info(found);
                }
            }
        }
    }
}
