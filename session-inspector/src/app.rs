//! [`InspectorApp`]: the eframe app. It owns the [`AppState`] and the
//! [`Worker`]; each frame it applies the worker's responses (module
//! `app::responses`), draws the UI functions and applies the [`Command`]s
//! they return (module `app::commands`).

mod commands;
mod responses;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
#[cfg(feature = "bench")]
use std::time::Instant;

use chrono::Utc;
use egui::{Key, KeyboardShortcut, Modifiers};

#[cfg(feature = "bench")]
use crate::bench::{BenchAction, BenchRecorder};
use crate::export::ExportFormat;
use crate::messages::Request;
use crate::settings::Settings;
use crate::state::{describe_filter, AppState, Editor, Tab};
use crate::ui::{
    actions_bar_ui, confirm_ui, connection_bar_ui, detail_ui, export_dialog_ui, filter_bar_ui,
    masking_menu_ui, overview_ui, status_bar_ui, table_ui, write_refusal, Command, ExportSummary,
    TableView,
};
use crate::worker::Worker;

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
    /// Open it read-only: the connection refuses every write, and the
    /// Read-only toggle stays on (`--read-only`).
    pub read_only: bool,
    /// A session to select once loaded.
    pub select: Option<InitialSelection>,
    /// Timing mode: measure, print the figures and close (see `bench.rs`;
    /// cargo feature `bench`).
    #[cfg(feature = "bench")]
    pub bench: Option<Instant>,
    /// Timing mode: the users to time the filter with (none: the first row's).
    #[cfg(feature = "bench")]
    pub bench_users: Vec<String>,
    /// Start with auto-refresh every this many seconds.
    pub auto_refresh_secs: Option<u32>,
}

/// What a native file dialog was opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FilePurpose {
    /// Pick an SQLite database to open.
    OpenSqlite,
    /// Name the export file.
    Export(ExportFormat),
}

/// The session inspector window.
pub struct InspectorApp {
    state: AppState,
    worker: Option<Worker>,
    initial_selection: Option<InitialSelection>,
    file_dialog: Option<(FilePurpose, Receiver<Option<PathBuf>>)>,
    /// Set to stop the running bulk action or export.
    job_cancel: Option<Arc<AtomicBool>>,
    #[cfg(feature = "bench")]
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
    /// (eframe persistence) restores the [`Settings`].
    #[must_use]
    pub fn new(
        ctx: &egui::Context,
        options: AppOptions,
        storage: Option<&dyn eframe::Storage>,
    ) -> Self {
        let settings = storage.map(Settings::load).unwrap_or_default();
        let mut state = AppState {
            now: Utc::now(),
            ..AppState::default()
        };
        state.connection.recent = settings.recent_connections;
        state.connection.read_only = options.read_only;
        state.connection.read_only_at_launch = options.read_only;
        state.refresh.auto = settings.auto_refresh;
        state.refresh.interval_secs = settings.refresh_interval_secs;
        state.patterns_input = settings.masking.patterns.join(", ");
        state.masking = settings.masking;
        state.extend_minutes = settings.extend_minutes;
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
            job_cancel: None,
            #[cfg(feature = "bench")]
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

    /// Applies `command` as if the UI had issued it, without the checks the
    /// UI makes by disabling controls (for scripts and tests: a write on a
    /// read-only database goes to the connection, which refuses it).
    pub fn run_command(&mut self, ctx: &egui::Context, command: Command) {
        let now = ctx.input(|i| i.time);
        self.apply(ctx, command, now);
    }

    /// The settings to remember.
    #[must_use]
    pub fn settings(&self) -> Settings {
        Settings {
            recent_connections: self.state.connection.recent.clone(),
            auto_refresh: self.state.refresh.auto,
            refresh_interval_secs: self.state.refresh.interval_secs,
            masking: self.state.masking.clone(),
            extend_minutes: self.state.extend_minutes,
        }
        .cleaned()
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

    /// Global keyboard shortcuts, read before any widget sees the keys.
    fn shortcuts(&mut self, ctx: &egui::Context) -> Vec<Command> {
        let mut commands = Vec::new();
        let typing = ctx.egui_wants_keyboard_input();
        let writable = write_refusal(&self.state.connection).is_none();
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
                } else if self.state.export_dialog.is_some() {
                    commands.push(Command::CloseExport);
                } else if self.state.conflict.is_some()
                    || self.state.editor.as_ref().is_some_and(Editor::is_dirty)
                {
                    commands.push(Command::CancelEdit);
                }
            }
            if writable
                && !typing
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
        if let Some((purpose, rx)) = &self.file_dialog {
            let purpose = *purpose;
            if let Ok(picked) = rx.try_recv() {
                self.file_dialog = None;
                self.state.connection.picking_file = false;
                self.file_picked(purpose, picked);
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
            || self.state.job.is_some()
            || self.state.editor.as_ref().is_some_and(|e| e.saving)
            || self.state.table.requested.iter().any(|index| {
                self.state
                    .table
                    .pages
                    .get(index)
                    .is_none_or(|page| page.generation != self.state.table.generation)
            })
    }

    /// The toolbar: tabs, masking, and on the sessions tab the filter and
    /// actions bars.
    fn toolbar_ui(&mut self, ui: &mut egui::Ui) -> Vec<Command> {
        let mut commands = Vec::new();
        ui.horizontal(|ui| {
            for (tab, name) in [(Tab::Sessions, "Sessions"), (Tab::Overview, "Overview")] {
                if ui
                    .selectable_label(self.state.tab == tab, egui::RichText::new(name).strong())
                    .clicked()
                {
                    commands.push(Command::ShowTab(tab));
                }
            }
            ui.separator();
            commands.extend(masking_menu_ui(ui, &mut self.state));
        });
        if self.state.tab == Tab::Sessions {
            commands.extend(filter_bar_ui(ui, &mut self.state));
            commands.extend(actions_bar_ui(ui, &mut self.state));
        }
        commands
    }
}

#[cfg(feature = "bench")]
impl InspectorApp {
    /// The timing mode's part of a frame: its scripted filter and scroll, and
    /// the report (printed to stdout) when it is done.
    fn bench_before_frame(
        &mut self,
        ctx: &egui::Context,
        view: &mut TableView,
        commands: &mut Vec<Command>,
    ) {
        let Some(bench) = &mut self.bench else {
            return;
        };
        let (action, bench_view) = bench.before_frame(&self.state);
        *view = bench_view;
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
}

impl eframe::App for InspectorApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.poll(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        #[cfg(feature = "bench")]
        let started = Instant::now();
        let ctx = ui.ctx().clone();
        let now = ctx.input(|i| i.time);
        self.state.now = Utc::now();
        // Relative times ("in 12 min") stay current without a busy loop.
        ctx.request_repaint_after(std::time::Duration::from_secs(10));

        #[cfg_attr(not(feature = "bench"), allow(unused_mut))]
        let mut view = TableView::default();
        let mut commands = Vec::new();
        #[cfg(feature = "bench")]
        self.bench_before_frame(&ctx, &mut view, &mut commands);
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
            commands.extend(self.toolbar_ui(ui));
            ui.add_space(2.0);
        });
        match self.state.tab {
            Tab::Sessions => {
                egui::Panel::right("detail")
                    .resizable(true)
                    .default_size(400.0)
                    .min_size(320.0)
                    .show(ui, |ui| {
                        ui.add_space(4.0);
                        commands.extend(detail_ui(ui, &mut self.state));
                    });
                egui::CentralPanel::default().show(ui, |ui| {
                    let selected = self.state.selected_id();
                    let devices = self.state.connection.device_columns();
                    commands.extend(table_ui(
                        ui,
                        &mut self.state.table,
                        selected,
                        self.state.now,
                        devices,
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
        let refusal = write_refusal(&self.state.connection);
        commands.extend(confirm_ui(&ctx, self.state.confirm.as_mut(), refusal));
        let summary = ExportSummary {
            filter: describe_filter(&self.state.table.filter),
            count: self.state.table.count,
            masked: self.state.masking.enabled,
            busy: self.state.job.is_some(),
            target_exists: self.state.export_dialog.as_ref().is_some_and(|dialog| {
                let path = dialog.path.trim();
                !path.is_empty() && crate::worker::occupied(std::path::Path::new(path))
            }),
        };
        commands.extend(export_dialog_ui(
            &ctx,
            self.state.export_dialog.as_mut(),
            &summary,
        ));
        for command in commands {
            self.apply(&ctx, command, now);
        }
        self.state.table.evict();
        #[cfg(feature = "bench")]
        if let Some(bench) = &mut self.bench {
            bench.after_frame(&self.state, started.elapsed());
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings().save(storage);
    }
}
