//! [`InspectorApp`]: the eframe app. It owns the [`AppState`] and the
//! [`Worker`]; each frame it applies the worker's responses, draws the UI
//! functions and applies the [`Command`]s they return.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

use chrono::Utc;
use egui::{Key, KeyboardShortcut, Modifiers};

use crate::bench::{BenchAction, BenchRecorder};
use crate::state::{
    pretty, AppState, Confirm, ConflictState, Connected, Editor, Loaded, Selection, Tab, PAGE_SIZE,
};
use crate::ui::{
    confirm_ui, connection_bar_ui, detail_ui, filter_bar_ui, overview_ui, status_bar_ui, table_ui,
    Command, TableView,
};
use crate::worker::{ExpiryChange, Request, Response, Worker};

/// The storage key of the recent connections.
const RECENT_KEY: &str = "recent-connections";
/// The storage key of the auto-refresh settings.
const REFRESH_KEY: &str = "auto-refresh";

/// Which session to select once the table is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitialSelection {
    /// The first row.
    First,
    /// The session with this id.
    Id(String),
}

/// How the app starts.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// The database to open.
    pub database_url: String,
    /// A session to select once loaded.
    pub select: Option<InitialSelection>,
    /// Timing mode: measure, print the figures and close (see [`crate::bench`]).
    pub bench: Option<Instant>,
    /// Timing mode: the users to time the filter with (none: the first row's).
    pub bench_users: Vec<String>,
    /// Start with auto-refresh every this many seconds.
    pub auto_refresh_secs: Option<u32>,
}

/// The session inspector window.
pub struct InspectorApp {
    state: AppState,
    worker: Option<Worker>,
    initial_selection: Option<InitialSelection>,
    file_dialog: Option<Receiver<Option<PathBuf>>>,
    bench: Option<BenchRecorder>,
}

impl std::fmt::Debug for InspectorApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InspectorApp")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl InspectorApp {
    /// Starts the worker thread and opens `options.database_url`. `storage`
    /// (eframe persistence) restores the recent connections.
    #[must_use]
    pub fn new(
        ctx: &egui::Context,
        options: AppOptions,
        storage: Option<&dyn eframe::Storage>,
    ) -> Self {
        let mut state = AppState {
            extend_minutes: 30,
            now: Utc::now(),
            ..AppState::default()
        };
        if let Some(storage) = storage {
            if let Some(recent) = eframe::get_value::<Vec<String>>(storage, RECENT_KEY) {
                // Oldest last, so `remember` keeps the order (and strips any
                // password an older version persisted).
                for url in recent.iter().rev() {
                    state.connection.remember(url);
                }
            }
            if let Some((auto, interval)) = eframe::get_value::<(bool, u32)>(storage, REFRESH_KEY) {
                state.refresh.auto = auto;
                state.refresh.interval_secs = interval.max(1);
            }
        }
        if let Some(seconds) = options.auto_refresh_secs {
            state.refresh.auto = true;
            state.refresh.interval_secs = seconds.max(1);
        }
        let repaint = ctx.clone();
        let worker = match Worker::spawn(move || repaint.request_repaint()) {
            Ok(worker) => Some(worker),
            Err(error) => {
                state.error(format!("cannot start the database thread: {error}"));
                None
            }
        };
        let mut app = Self {
            state,
            worker,
            initial_selection: options.select,
            file_dialog: None,
            bench: options
                .bench
                .map(|launched| BenchRecorder::new(launched, options.bench_users)),
        };
        app.connect(options.database_url);
        app
    }

    /// The app's state (for tests and the benchmark).
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    fn send(&mut self, request: Request) {
        let sent = self
            .worker
            .as_ref()
            .is_some_and(|worker| worker.send(request));
        if !sent {
            self.state
                .error("the database thread has stopped; restart the inspector");
        }
    }

    fn connect(&mut self, url: String) {
        let url = url.trim().to_owned();
        if url.is_empty() {
            self.state
                .error("enter a database URL or pick an SQLite file");
            return;
        }
        self.state.connection.url_input.clone_from(&url);
        self.state.connection.connecting = Some(url.clone());
        self.send(Request::Connect { url });
    }

    /// Starts a new table query with the current filter fields and `sort`.
    fn restart_table(&mut self, sort: shared_model::Sort) {
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

    fn refresh(&mut self, now: f64) {
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
        if let Some(selection) = &self.state.selection {
            let session_id = selection.session_id.clone();
            self.send(Request::Get { session_id });
        }
        if self.state.tab == Tab::Overview {
            self.load_stats();
        }
    }

    fn load_stats(&mut self) {
        self.state.stats_loading = true;
        self.send(Request::Stats);
    }

    fn select(&mut self, session_id: String, user_id: Option<String>) {
        if self
            .state
            .selection
            .as_ref()
            .is_some_and(|s| s.session_id == session_id)
        {
            return;
        }
        self.state.selection = Some(Selection {
            session_id: session_id.clone(),
            user_id,
            loaded: Loaded::Loading,
        });
        self.state.editor = None;
        self.state.conflict = None;
        self.send(Request::Get { session_id });
    }

    fn selected_id(&self) -> Option<String> {
        self.state.selection.as_ref().map(|s| s.session_id.clone())
    }

    /// Applies one worker response to the state.
    fn handle_response(&mut self, response: Response, now: f64) {
        match response {
            Response::Connected {
                url,
                display_url,
                backend,
                pending_migrations,
            } => {
                let changed = self
                    .state
                    .connection
                    .current
                    .as_ref()
                    .is_none_or(|current| current.url != url);
                self.state.connection.connecting = None;
                self.state.connection.remember(&url);
                self.state.info(format!("Opened {display_url} ({backend})"));
                self.state.connection.current = Some(Connected {
                    url,
                    display_url,
                    backend,
                    pending_migrations,
                });
                if changed {
                    self.state.selection = None;
                    self.state.editor = None;
                    self.state.conflict = None;
                    self.state.stats = None;
                }
                self.state.refresh.last = now;
                self.restart_table(self.state.table.sort);
                if self.state.tab == Tab::Overview {
                    self.load_stats();
                }
                if let Some(InitialSelection::Id(session_id)) = &self.initial_selection {
                    let session_id = session_id.clone();
                    self.initial_selection = None;
                    self.select(session_id, None);
                }
            }
            Response::ConnectFailed { url, message } => {
                self.state.connection.connecting = None;
                if let Some(current) = &self.state.connection.current {
                    self.state.connection.url_input = shared_model::strip_password(&current.url);
                }
                self.state.error(format!(
                    "cannot open {}: {message}",
                    shared_model::redact_url(&url)
                ));
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
                if let Some(bench) = &mut self.bench {
                    bench.page_loaded(elapsed);
                }
                let first = rows
                    .first()
                    .map(|row| (row.session_id.clone(), row.user_id.clone()));
                if self.state.table.insert_page(generation, index, rows)
                    && index == 0
                    && self.initial_selection == Some(InitialSelection::First)
                {
                    if let Some((session_id, user_id)) = first {
                        self.initial_selection = None;
                        self.select(session_id, user_id);
                    }
                }
            }
            Response::Loaded {
                session_id,
                session,
            } => self.loaded(&session_id, session),
            Response::Saved { session } => {
                self.state.info(format!(
                    "Saved session {} (version {})",
                    session.id.short(),
                    session.version
                ));
                self.state.editor = Some(Editor::for_session(&session));
                self.state.conflict = None;
                if let Some(selection) = &mut self.state.selection {
                    if selection.session_id == session.id.to_string() {
                        selection.loaded = Loaded::Session(Box::new(session));
                    }
                }
                self.refresh(now);
            }
            Response::Conflict {
                mine,
                expected_version,
                current,
            } => {
                if let Some(editor) = &mut self.state.editor {
                    editor.saving = false;
                }
                self.state.error(format!(
                    "not saved: session {} changed meanwhile (version {expected_version} is now {})",
                    current.id.short(),
                    current.version
                ));
                self.state.conflict = Some(ConflictState {
                    mine_text: pretty(&mine),
                    mine,
                    expected_version,
                    current_text: pretty(&current.data),
                    current: Box::new(current),
                });
            }
            Response::ExpiryChanged {
                session_id,
                expires_at,
                change,
            } => {
                let short: String = session_id.chars().take(8).collect();
                match change {
                    ExpiryChange::Now => self.state.info(format!("Expired session {short}")),
                    ExpiryChange::ExtendMinutes(minutes) => self.state.info(format!(
                        "Extended session {short} by {minutes} min, until {}",
                        crate::format::timestamp(expires_at)
                    )),
                }
                self.refresh(now);
            }
            Response::Deleted {
                session_id,
                user_id,
                count,
            } => {
                let selected = self.selected_id();
                let selection_gone = match (&session_id, &user_id) {
                    (Some(id), _) => selected.as_ref() == Some(id),
                    (None, Some(user)) => self
                        .state
                        .selection
                        .as_ref()
                        .is_some_and(|s| s.user_id.as_ref() == Some(user)),
                    (None, None) => false,
                };
                if selection_gone {
                    self.state.selection = None;
                    self.state.editor = None;
                    self.state.conflict = None;
                }
                match (session_id, user_id) {
                    (Some(id), _) if count == 0 => {
                        self.state.error(format!("session {id} was already gone"));
                    }
                    (Some(id), _) => self.state.info(format!("Deleted session {id}")),
                    (None, Some(user)) => {
                        self.state
                            .info(format!("Deleted {count} session(s) of {user}"));
                    }
                    (None, None) => {}
                }
                self.refresh(now);
                if self.state.stats.is_some() {
                    self.load_stats();
                }
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
                self.refresh(now);
                if self.state.stats.is_some() {
                    self.load_stats();
                }
            }
            Response::Stats(stats) => {
                self.state.stats_loading = false;
                self.state.stats = Some(*stats);
            }
            Response::Failed { context, message } => {
                if let Some(editor) = &mut self.state.editor {
                    editor.saving = false;
                }
                if context.starts_with("purging") || context.starts_with("counting expired") {
                    self.state.purge.running = false;
                }
                if context.starts_with("loading statistics") {
                    self.state.stats_loading = false;
                }
                if context.starts_with("loading sessions") {
                    // Let the view ask again on a later frame.
                    self.state.table.requested.clear();
                }
                self.state.error(format!("{context}: {message}"));
            }
        }
    }

    fn loaded(&mut self, session_id: &str, session: Option<Result<shared_model::Session, String>>) {
        let Some(selection) = &mut self.state.selection else {
            return;
        };
        if selection.session_id != session_id {
            return;
        }
        match session {
            None => {
                selection.loaded = Loaded::Missing;
                self.state.editor = None;
            }
            Some(Err(reason)) => {
                selection.loaded = Loaded::Corrupt(reason);
                self.state.editor = None;
            }
            Some(Ok(session)) => {
                selection.user_id.clone_from(&session.user_id);
                // Keep an edit in progress: saving it later runs the version check.
                let keep_edit = self.state.editor.as_ref().is_some_and(Editor::is_dirty);
                if !keep_edit {
                    self.state.editor = Some(Editor::for_session(&session));
                }
                selection.loaded = Loaded::Session(Box::new(session));
            }
        }
    }

    /// Applies one command from the UI.
    fn apply(&mut self, ctx: &egui::Context, command: Command, now: f64) {
        match command {
            Command::Connect(url) => self.connect(url),
            Command::PickSqliteFile => self.pick_file(ctx),
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
            Command::LoadPages(pages) => {
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
            Command::Select {
                session_id,
                user_id,
            } => self.select(session_id, user_id),
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
                    self.state.editor = Some(Editor::for_session(&conflict.current));
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
                        session_id: conflict.current.id.to_string(),
                        data: conflict.mine,
                        expected_version: conflict.current.version,
                    });
                }
            }
            Command::SetExpiry(change) => {
                if let Some(session_id) = self.selected_id() {
                    self.send(Request::SetExpiry { session_id, change });
                }
            }
            Command::AskDeleteSession => {
                if let Some(session_id) = self.selected_id() {
                    self.state.confirm = Some(Confirm::DeleteSession { session_id });
                }
            }
            Command::AskDeleteUser(user_id) => {
                self.state.confirm = Some(Confirm::DeleteUser { user_id });
            }
            Command::AskPurge => self.state.confirm = Some(Confirm::Purge),
            Command::Confirmed => match self.state.confirm.take() {
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
                None => {}
            },
            Command::CancelConfirm => self.state.confirm = None,
            Command::ShowTab(tab) => {
                self.state.tab = tab;
                if tab == Tab::Overview && self.state.stats.is_none() && !self.state.stats_loading {
                    self.load_stats();
                }
            }
            Command::LoadStats => self.load_stats(),
            Command::DismissStatus => self.state.status = None,
        }
    }

    fn save(&mut self) {
        let Some(session_id) = self.selected_id() else {
            return;
        };
        let Some(editor) = &mut self.state.editor else {
            return;
        };
        let Some(data) = editor.validate() else {
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

    fn pick_file(&mut self, ctx: &egui::Context) {
        let (tx, rx) = mpsc::channel();
        let repaint = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("inspector-file-dialog".to_owned())
            .spawn(move || {
                let picked = rfd::FileDialog::new()
                    .set_title("Open an SQLite sessions database")
                    .add_filter("SQLite", &["sqlite", "sqlite3", "db"])
                    .add_filter("All files", &["*"])
                    .pick_file();
                // The app may have closed meanwhile; nobody is left to tell.
                let _closed = tx.send(picked);
                repaint.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.state.connection.picking_file = true;
                self.file_dialog = Some(rx);
            }
            Err(error) => self
                .state
                .error(format!("cannot open a file dialog: {error}")),
        }
    }

    /// Global keyboard shortcuts, read before any widget sees the keys.
    fn shortcuts(&mut self, ctx: &egui::Context) -> Vec<Command> {
        let mut commands = Vec::new();
        let typing = ctx.egui_wants_keyboard_input();
        ctx.input_mut(|input| {
            if input.consume_shortcut(&KeyboardShortcut::new(Modifiers::COMMAND, Key::F)) {
                self.state.focus_filter = true;
                commands.push(Command::ShowTab(Tab::Sessions));
            }
            if input.consume_key(Modifiers::NONE, Key::F5) {
                commands.push(Command::Refresh);
            }
            if input.consume_key(Modifiers::NONE, Key::Escape) {
                if self.state.confirm.is_some() {
                    commands.push(Command::CancelConfirm);
                } else if self.state.conflict.is_some()
                    || self.state.editor.as_ref().is_some_and(Editor::is_dirty)
                {
                    commands.push(Command::CancelEdit);
                }
            }
            if !typing
                && self.state.selection.is_some()
                && self.state.confirm.is_none()
                && input.consume_key(Modifiers::NONE, Key::Delete)
            {
                commands.push(Command::AskDeleteSession);
            }
        });
        commands
    }

    fn poll(&mut self, ctx: &egui::Context) {
        let now = ctx.input(|i| i.time);
        while let Some(response) = self.worker.as_ref().and_then(Worker::try_recv) {
            self.handle_response(response, now);
        }
        if let Some(rx) = &self.file_dialog {
            if let Ok(picked) = rx.try_recv() {
                self.file_dialog = None;
                self.state.connection.picking_file = false;
                if let Some(path) = picked {
                    self.connect(path.display().to_string());
                }
            }
        }
        let refresh = self.state.refresh;
        if refresh.auto && self.state.connection.current.is_some() {
            let due = refresh.last + f64::from(refresh.interval_secs);
            if now >= due {
                self.refresh(now);
            } else {
                ctx.request_repaint_after(std::time::Duration::from_secs_f64(due - now));
            }
        }
    }

    fn busy(&self) -> bool {
        self.state.connection.connecting.is_some()
            || self.state.stats_loading
            || self.state.purge.running
            || self.state.editor.as_ref().is_some_and(|e| e.saving)
            || self.state.table.requested.iter().any(|index| {
                self.state
                    .table
                    .pages
                    .get(index)
                    .is_none_or(|page| page.generation != self.state.table.generation)
            })
    }
}

impl eframe::App for InspectorApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.poll(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let started = Instant::now();
        let ctx = ui.ctx().clone();
        let now = ctx.input(|i| i.time);
        self.state.now = Utc::now();
        // Relative times ("in 12 min") stay current without a busy loop.
        ctx.request_repaint_after(std::time::Duration::from_secs(10));

        let mut view = TableView::default();
        let mut commands = Vec::new();
        if let Some(bench) = &mut self.bench {
            let (action, bench_view) = bench.before_frame(&self.state);
            view = bench_view;
            match action {
                Some(BenchAction::FilterUser(user)) => {
                    self.state.filter_input.user_id = user;
                    commands.push(Command::ApplyFilter);
                }
                Some(BenchAction::ClearFilter) => {
                    self.state.filter_input.user_id.clear();
                    commands.push(Command::ApplyFilter);
                }
                Some(BenchAction::Finish(report)) => {
                    println!("{report}");
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                }
                None => {}
            }
            ctx.request_repaint();
        }
        for command in commands.drain(..) {
            self.apply(&ctx, command, now);
        }

        commands.extend(self.shortcuts(&ctx));
        egui::Panel::top("connection-bar").show(ui, |ui| {
            ui.add_space(4.0);
            commands.extend(connection_bar_ui(ui, &mut self.state.connection));
            ui.add_space(2.0);
        });
        egui::Panel::bottom("status-bar").show(ui, |ui| {
            commands.extend(status_bar_ui(ui, &self.state, self.busy()));
        });
        egui::Panel::top("toolbar").show(ui, |ui| {
            ui.add_space(4.0);
            ui.horizontal(|ui| {
                for (tab, name) in [(Tab::Sessions, "Sessions"), (Tab::Overview, "Overview")] {
                    if ui
                        .selectable_label(self.state.tab == tab, egui::RichText::new(name).strong())
                        .clicked()
                    {
                        commands.push(Command::ShowTab(tab));
                    }
                }
            });
            if self.state.tab == Tab::Sessions {
                commands.extend(filter_bar_ui(ui, &mut self.state));
            }
            ui.add_space(2.0);
        });
        match self.state.tab {
            Tab::Sessions => {
                egui::Panel::right("detail")
                    .resizable(true)
                    .default_size(480.0)
                    .min_size(320.0)
                    .show(ui, |ui| {
                        ui.add_space(4.0);
                        commands.extend(detail_ui(ui, &mut self.state));
                    });
                egui::CentralPanel::default().show(ui, |ui| {
                    let selected = self.selected_id();
                    commands.extend(table_ui(
                        ui,
                        &mut self.state.table,
                        selected.as_deref(),
                        self.state.now,
                        view,
                    ));
                });
            }
            Tab::Overview => {
                egui::CentralPanel::default().show(ui, |ui| {
                    commands.extend(overview_ui(ui, &self.state));
                });
            }
        }
        commands.extend(confirm_ui(&ctx, self.state.confirm.as_ref()));
        for command in commands {
            self.apply(&ctx, command, now);
        }
        self.state.table.evict();
        if let Some(bench) = &mut self.bench {
            bench.after_frame(&self.state, started.elapsed());
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, RECENT_KEY, &self.state.connection.recent);
        eframe::set_value(
            storage,
            REFRESH_KEY,
            &(self.state.refresh.auto, self.state.refresh.interval_secs),
        );
    }
}
