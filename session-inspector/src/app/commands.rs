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
            Command::SetReadOnly(read_only) => {
                self.state.connection.read_only = read_only;
                if let Some(current) = &self.state.connection.current {
                    let url = current.url.clone();
                    self.reconnect(url);
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
            Command::ReloadAfterConflict => {
                if let Some(conflict) = self.state.conflict.take() {
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
            }
            Command::OverwriteAfterConflict => {
                if let Some(conflict) = self.state.conflict.take() {
                    if let Some(editor) = &mut self.state.editor {
                        editor.text.clone_from(&conflict.mine_text);
                        editor.base_version = conflict.current.version;
                        editor.saving = true;
                    }
                    self.send(Request::Save {
                        session_id: conflict.current.id,
                        data: conflict.mine,
                        expected_version: conflict.current.version,
                    });
                }
            }
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
        let cookie = std::mem::take(&mut self.state.cookie_input);
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

    fn save(&mut self) {
        let Some(session_id) = self.state.selected_id() else {
            return;
        };
        let Some(editor) = &mut self.state.editor else {
            return;
        };
        let Some(data) = editor.data_to_save() else {
            // Invalid JSON is never sent; the editor shows where it is wrong.
            return;
        };
        editor.saving = true;
        let expected_version = editor.base_version;
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
            Some(Confirm::Bulk(bulk)) => {
                if !bulk.is_confirmed() || self.state.job.is_some() {
                    // Not confirmed after all: keep asking.
                    self.state.confirm = Some(Confirm::Bulk(bulk));
                    return;
                }
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
