//! Applying the UI's [`Command`]s: state changes and requests to the worker.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use chrono::Utc;
use shared_model::{SessionId, SessionToken};

use super::{FilePurpose, InspectorApp};
use crate::export::ExportFormat;
use crate::mask::Masking;
use crate::messages::{BulkAction, DatabaseUrl, HistoryScope, Request};
use crate::state::{
    BulkConfirm, Confirm, DetailView, Editor, ExportDialog, HistoryState, JobKind, JobState,
    Loaded, Selection, Tab, PAGE_SIZE,
};
use crate::ui::Command;

impl InspectorApp {
    /// Applies one command from the UI.
    pub(super) fn apply(&mut self, ctx: &egui::Context, command: Command, now: f64) {
        match command {
            Command::Connect(url) => self.connect(url),
            Command::SetReadOnly(read_only) => self.set_read_only(read_only),
            Command::AskWritable => {
                if self.state.connection.read_only_at_launch {
                    self.refuse_writable();
                } else {
                    self.state.confirm = Some(Confirm::Writable);
                }
            }
            Command::PickSqliteFile => self.open_file_dialog(ctx, FilePurpose::OpenSqlite),
            Command::ApplyFilter => {
                self.restart_table(self.state.table.sort);
            }
            Command::SortBy(key) => {
                let count = self.state.table.count;
                let sort = self.state.table.next_sort(key);
                self.restart_table(sort);
                self.state.table.count = self.state.table.count.or(count);
            }
            Command::Refresh => self.refresh(now),
            Command::LoadPages(pages) => self.load_pages(pages),
            Command::Select {
                session_id,
                user_id,
            } => self.select(session_id, user_id, false),
            Command::FindByCookie => self.find_by_cookie(),
            Command::Copy(text) => {
                self.state.info(format!("Copied {text}"));
                ctx.copy_text(text);
            }
            Command::Save => self.save(),
            Command::CancelEdit => {
                if let Some(editor) = &mut self.state.editor {
                    editor.revert();
                }
                self.state.conflict = None;
            }
            Command::ReloadAfterConflict => self.reload_after_conflict(),
            Command::OverwriteAfterConflict => self.overwrite_after_conflict(),
            Command::SetExpiry(change) => {
                if let Some(session_id) = self.state.selected_id() {
                    self.send(Request::SetExpiry { session_id, change });
                }
            }
            Command::AskDeleteSession => {
                if let Some(session_id) = self.state.selected_id() {
                    self.state.confirm = Some(Confirm::DeleteSession { session_id });
                }
            }
            Command::AskDeleteUser(user_id) => {
                self.state.confirm = Some(Confirm::DeleteUser { user_id });
            }
            Command::AskPurge => self.state.confirm = Some(Confirm::Purge),
            Command::AskBulk(action) => self.ask_bulk(action),
            Command::Confirmed => self.confirmed(),
            Command::CancelConfirm => self.state.confirm = None,
            Command::CancelJob => {
                if let Some(cancel) = &self.job_cancel {
                    cancel.store(true, Ordering::Relaxed);
                }
                if let Some(job) = &mut self.state.job {
                    job.cancelling = true;
                }
            }
            Command::AskExport => {
                let format = ExportFormat::Csv;
                self.state.export_dialog = Some(ExportDialog {
                    format,
                    path: default_export_path(format),
                    replace: false,
                });
            }
            Command::PickExportFile => {
                if let Some(dialog) = &self.state.export_dialog {
                    let purpose = FilePurpose::Export(dialog.format);
                    self.open_file_dialog(ctx, purpose);
                }
            }
            Command::StartExport => self.start_export(),
            Command::CloseExport => self.state.export_dialog = None,
            Command::ShowTab(tab) => {
                self.state.tab = tab;
                if tab == Tab::Overview && self.state.stats.is_none() && !self.state.stats_loading {
                    self.load_stats();
                }
            }
            Command::ShowDetail(view) => {
                self.state.detail_view = view;
                match (view, self.state.selected_id()) {
                    (DetailView::History, Some(session_id)) => {
                        self.load_history(HistoryScope::Session(session_id));
                    }
                    (DetailView::History, None) => {}
                    (DetailView::Data, _) => self.state.history = None,
                }
            }
            Command::ShowUserHistory(user_id) => {
                self.state.detail_view = DetailView::History;
                self.load_history(HistoryScope::User(user_id));
            }
            Command::Reveal(path) => {
                self.state.revealed.insert(path);
                self.rebuild_clean_editor();
            }
            Command::Conceal(path) => {
                self.state.revealed.remove(&path);
                self.rebuild_clean_editor();
            }
            Command::MaskingChanged => {
                self.state.masking.patterns = Masking::parse_patterns(&self.state.patterns_input);
                self.rebuild_clean_editor();
            }
            Command::LoadStats => self.load_stats(),
            Command::DismissStatus => self.state.status = None,
        }
    }

    pub(super) fn connect(&mut self, url: String) {
        let url = url.trim().to_owned();
        if url.is_empty() {
            self.state
                .error("enter a database URL or pick an SQLite file");
            return;
        }
        // The field shows the open URL without its password; opening it again
        // (or toggling read-only) reuses the password kept in memory.
        let url = match &self.state.connection.current {
            Some(current) if current.url.without_password() == url => current.url.clone(),
            _ => DatabaseUrl::new(url),
        };
        self.reconnect(url);
    }

    /// Opens `url` in the mode the read-only toggle says.
    pub(super) fn reconnect(&mut self, url: DatabaseUrl) {
        self.state.connection.url_input = url.without_password();
        self.state.connection.connecting = Some(url.clone());
        let read_only = self.state.connection.read_only;
        self.send(Request::Connect { url, read_only });
    }

    /// Starts a new table query with the current filter fields and `sort`.
    pub(super) fn restart_table(&mut self, sort: shared_model::Sort) {
        let filter = self.state.filter_input.to_filter();
        self.state.table.restart(filter.clone(), sort);
        let generation = self.state.table.generation;
        if let Some(worker) = &self.worker {
            worker.set_generation(generation);
        }
        self.send(Request::Page {
            generation,
            filter: filter.clone(),
            sort,
            index: 0,
            limit: PAGE_SIZE,
        });
        self.state.table.requested.insert(0);
        self.send(Request::Count { generation, filter });
    }

    fn load_pages(&mut self, pages: Vec<usize>) {
        if self.state.connection.current.is_none() {
            return;
        }
        for index in pages {
            if !self.state.table.requested.insert(index) {
                continue;
            }
            self.send(Request::Page {
                generation: self.state.table.generation,
                filter: self.state.table.filter.clone(),
                sort: self.state.table.sort,
                index,
                limit: PAGE_SIZE,
            });
        }
    }

    /// Reloads what is on screen: the table, the selection, the history and
    /// the overview.
    pub(super) fn refresh(&mut self, now: f64) {
        if self.state.connection.current.is_none() {
            return;
        }
        self.state.refresh.last = now;
        self.state.table.refresh();
        let generation = self.state.table.generation;
        if let Some(worker) = &self.worker {
            worker.set_generation(generation);
        }
        self.send(Request::Count {
            generation,
            filter: self.state.table.filter.clone(),
        });
        if let Some(session_id) = self.state.selected_id() {
            self.send(Request::Get { session_id });
        }
        self.reload_history();
        if self.state.tab == Tab::Overview {
            self.load_stats();
        }
    }

    pub(super) fn load_stats(&mut self) {
        self.state.stats_loading = true;
        self.send(Request::Stats);
    }

    /// Loads the history of `scope` into the detail panel.
    fn load_history(&mut self, scope: HistoryScope) {
        if !self.state.connection.events_table() {
            // The panel says there is no audit table; nothing to ask.
            self.state.history = Some(HistoryState {
                scope,
                events: Some(Vec::new()),
            });
            return;
        }
        self.state.history = Some(HistoryState {
            scope: scope.clone(),
            events: None,
        });
        self.send(Request::History { scope });
    }

    /// Reloads the history on screen, keeping the old events until new ones come.
    pub(super) fn reload_history(&mut self) {
        if self.state.detail_view != DetailView::History || !self.state.connection.events_table() {
            return;
        }
        if let Some(history) = &self.state.history {
            let scope = history.scope.clone();
            self.send(Request::History { scope });
        }
    }

    /// Selects a session and loads it. `by_cookie`: it was looked up by its
    /// cookie (say whether it was found; load it again even when selected).
    pub(super) fn select(
        &mut self,
        session_id: SessionId,
        user_id: Option<String>,
        by_cookie: bool,
    ) {
        if !by_cookie && self.state.selected_id() == Some(session_id) {
            // Selected already; from a user's history, show the session's own.
            let user_history = self
                .state
                .history
                .as_ref()
                .is_some_and(|history| matches!(history.scope, HistoryScope::User(_)));
            if user_history {
                self.load_history(HistoryScope::Session(session_id));
            }
            return;
        }
        self.state.selection = Some(Selection {
            session_id,
            user_id,
            loaded: Loaded::Loading,
            by_cookie,
        });
        self.state.editor = None;
        self.state.conflict = None;
        self.state.revealed.clear();
        self.send(Request::Get { session_id });
        if self.state.detail_view == DetailView::History {
            self.load_history(HistoryScope::Session(session_id));
        }
    }

    /// Hashes the pasted cookie to its public id and selects that session. The
    /// cookie is cleared from the field whatever happens: it is a secret.
    fn find_by_cookie(&mut self) {
        let cookie = self.state.cookie_input.take();
        match cookie.trim().parse::<SessionToken>() {
            Ok(token) => {
                let session_id = token.public_id();
                self.state.tab = Tab::Sessions;
                self.state.detail_view = DetailView::Data;
                self.state.history = None;
                self.select(session_id, None, true);
            }
            Err(error) => self
                .state
                .error(crate::Error::InvalidCookie(error).to_string()),
        }
    }

    /// Reopens the database read-only or writable. Writable is refused when
    /// the inspector was started with `--read-only`.
    fn set_read_only(&mut self, read_only: bool) {
        if !read_only && self.state.connection.read_only_at_launch {
            self.refuse_writable();
            return;
        }
        self.state.connection.read_only = read_only;
        if let Some(current) = &self.state.connection.current {
            let url = current.url.clone();
            self.reconnect(url);
        }
    }

    fn refuse_writable(&mut self) {
        self.state.error(
            "the inspector was started with --read-only; restart it without to make changes",
        );
    }

    /// The editor, when it is the selected session's (a save is for the
    /// session the text came from, never for whatever is selected later).
    fn selected_editor(&mut self) -> Option<&mut Editor> {
        let selected = self.state.selected_id()?;
        self.state
            .editor
            .as_mut()
            .filter(|editor| editor.session_id == selected)
    }

    fn save(&mut self) {
        let Some(editor) = self.selected_editor() else {
            return;
        };
        let Some(data) = editor.data_to_save() else {
            // Never sent: the editor says why (invalid JSON, or a masked
            // value moved or renamed).
            return;
        };
        editor.saving = true;
        let session_id = editor.session_id;
        let expected_version = editor.base_version;
        self.send(Request::Save {
            session_id,
            data,
            expected_version,
        });
    }

    /// Conflict: shows the current version, dropping the edit.
    fn reload_after_conflict(&mut self) {
        let Some(conflict) = self.state.conflict.take() else {
            return;
        };
        if self.state.selected_id() != Some(conflict.current.id) {
            return;
        }
        self.state.editor = Some(Editor::for_session(
            &conflict.current,
            &self.state.masking,
            &self.state.revealed,
        ));
        if let Some(selection) = &mut self.state.selection {
            selection.loaded = Loaded::Session(conflict.current);
        }
        self.state
            .info("Reloaded the current version; your edit was dropped");
    }

    /// Conflict: writes the edit over the current version. The masked values
    /// the edit left alone take the current version's secrets (the edit's
    /// text is unmasked again, against the current data).
    fn overwrite_after_conflict(&mut self) {
        let Some(mut conflict) = self.state.conflict.take() else {
            return;
        };
        let session_id = conflict.current.id;
        let Some(editor) = self
            .selected_editor()
            .filter(|editor| editor.session_id == session_id)
        else {
            return;
        };
        let Some(data) = editor.data_to_save_over(&conflict.current.data) else {
            conflict.error = editor.refusal.clone().or_else(|| editor.error.clone());
            self.state.conflict = Some(conflict);
            return;
        };
        editor.data.clone_from(&conflict.current.data);
        editor.base_version = conflict.current.version;
        editor.saving = true;
        let expected_version = conflict.current.version;
        self.send(Request::Save {
            session_id,
            data,
            expected_version,
        });
    }

    /// Regenerates the editor's text (masking or reveals changed), unless the
    /// user has edited it.
    fn rebuild_clean_editor(&mut self) {
        if self.state.editor.as_ref().is_some_and(Editor::is_dirty) {
            return;
        }
        if let Some(session) = self.state.selected_session() {
            let editor = Editor::for_session(session, &self.state.masking, &self.state.revealed);
            self.state.editor = Some(editor);
        }
    }

    /// Opens the bulk confirmation and counts what it would change.
    fn ask_bulk(&mut self, action: BulkAction) {
        if self.state.job.is_some() {
            return;
        }
        let filter = self.state.table.filter.clone();
        self.state.confirm = Some(Confirm::Bulk(BulkConfirm {
            action,
            filter: filter.clone(),
            count: None,
            typed: String::new(),
        }));
        self.send(Request::CountMatching { action, filter });
    }

    fn confirmed(&mut self) {
        match self.state.confirm.take() {
            Some(Confirm::DeleteSession { session_id }) => {
                self.send(Request::Delete { session_id });
            }
            Some(Confirm::DeleteUser { user_id }) => {
                self.send(Request::DeleteUser { user_id });
            }
            Some(Confirm::Purge) => {
                self.state.purge.running = true;
                self.state.purge.total = 0;
                self.state.purge.removed = 0;
                self.send(Request::Purge);
            }
            Some(Confirm::Writable) => self.set_read_only(false),
            Some(Confirm::Bulk(bulk)) => {
                // The count the dialog showed and the admin confirmed: the
                // action changes no more, whatever starts matching meanwhile.
                let idle = self.state.job.is_none();
                let Some(at_most) = bulk.count.filter(|_| bulk.is_confirmed() && idle) else {
                    // Not confirmed after all (or busy): keep asking.
                    self.state.confirm = Some(Confirm::Bulk(bulk));
                    return;
                };
                let cancel = Arc::new(AtomicBool::new(false));
                self.job_cancel = Some(Arc::clone(&cancel));
                self.state.job = Some(JobState {
                    kind: JobKind::Bulk(bulk.action),
                    done: 0,
                    total: bulk.count,
                    cancelling: false,
                });
                self.send(Request::Bulk {
                    action: bulk.action,
                    filter: bulk.filter,
                    at_most,
                    cancel,
                });
            }
            None => {}
        }
    }

    fn start_export(&mut self) {
        if self.state.job.is_some() {
            return;
        }
        let Some(dialog) = self.state.export_dialog.take() else {
            return;
        };
        let path = PathBuf::from(dialog.path.trim());
        if !dialog.replace && crate::worker::occupied(&path) {
            // The dialog says so and keeps Export disabled; a script gets told.
            self.state.error(format!(
                "{} exists; tick \"Replace the existing file\" to replace it",
                path.display()
            ));
            self.state.export_dialog = Some(dialog);
            return;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        self.job_cancel = Some(Arc::clone(&cancel));
        self.state.job = Some(JobState {
            kind: JobKind::Export,
            done: 0,
            total: self.state.table.count,
            cancelling: false,
        });
        self.send(Request::Export {
            filter: self.state.table.filter.clone(),
            format: dialog.format,
            masking: self.state.masking.clone(),
            path,
            replace: dialog.replace,
            cancel,
        });
    }

    /// Opens a native file dialog on its own thread (it blocks until closed).
    fn open_file_dialog(&mut self, ctx: &egui::Context, purpose: FilePurpose) {
        if self.file_dialog.is_some() {
            return;
        }
        let (tx, rx) = mpsc::channel();
        let repaint = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("inspector-file-dialog".to_owned())
            .spawn(move || {
                let picked = match purpose {
                    FilePurpose::OpenSqlite => rfd::FileDialog::new()
                        .set_title("Open an SQLite sessions database")
                        .add_filter("SQLite", &["sqlite", "sqlite3", "db"])
                        .add_filter("All files", &["*"])
                        .pick_file(),
                    FilePurpose::Export(format) => rfd::FileDialog::new()
                        .set_title("Export sessions")
                        .set_file_name(format!("sessions.{}", format.extension()))
                        .add_filter(format.extension().to_uppercase(), &[format.extension()])
                        .save_file(),
                };
                // The app may have closed meanwhile; nobody is left to tell.
                let _closed = tx.send(picked);
                repaint.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.state.connection.picking_file = purpose == FilePurpose::OpenSqlite;
                self.file_dialog = Some((purpose, rx));
            }
            Err(error) => self
                .state
                .error(format!("cannot open a file dialog: {error}")),
        }
    }

    pub(super) fn file_picked(&mut self, purpose: FilePurpose, picked: Option<PathBuf>) {
        let Some(path) = picked else {
            return;
        };
        match purpose {
            FilePurpose::OpenSqlite => self.connect(path.display().to_string()),
            FilePurpose::Export(_) => {
                if let Some(dialog) = &mut self.state.export_dialog {
                    dialog.path = path.display().to_string();
                    // The native save dialog asked before picking an existing file.
                    dialog.replace = true;
                }
            }
        }
    }
}

/// `~/sessions-20260301-120000.csv` (or in the current directory without a home).
fn default_export_path(format: ExportFormat) -> String {
    let name = format!(
        "sessions-{}.{}",
        Utc::now().format("%Y%m%d-%H%M%S"),
        format.extension()
    );
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(name).display().to_string(),
        None => name,
    }
}
