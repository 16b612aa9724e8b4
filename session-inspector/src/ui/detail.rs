//! The detail panel of the selected session: metadata, actions, the JSON tree,
//! the raw JSON editor, the conflict view and the history timeline.

use egui::{Color32, RichText};
use shared_model::Session;

use super::{history_ui, json_tree_ui, write_refusal, Command};
use crate::format::{byte_size, relative_expiry, relative_time, short_duration, timestamp};
use crate::messages::{ExpiryChange, HistoryScope};
use crate::state::{AppState, ConflictState, DetailView, Editor, Loaded};

/// What "Expire now" does, in its tooltip.
fn expire_help() -> String {
    format!(
        "Expire this session: its expiry becomes a fixed instant in the past ({}), so no \
         clock skew between this machine, the database and the app can keep it valid. The \
         app stops accepting it at once, and cannot slide it back.",
        timestamp(shared_model::EXPIRED_AT)
    )
}

/// What "Extend" does, in its tooltip and under the actions.
const EXTEND_HELP: &str = "Extend never shortens: it counts from the later of the current \
     expiry and now. The app's next write to this session slides its expiry again.";

/// Draws the detail panel.
pub fn detail_ui(ui: &mut egui::Ui, state: &mut AppState) -> Vec<Command> {
    let mut commands = Vec::new();
    let user_history = state.detail_view == DetailView::History
        && state
            .history
            .as_ref()
            .is_some_and(|history| matches!(history.scope, HistoryScope::User(_)));
    if user_history {
        ui.horizontal(|ui| {
            if ui
                .button("✖ Close history")
                .on_hover_text("Back to the selected session")
                .clicked()
            {
                commands.push(Command::ShowDetail(DetailView::Data));
            }
        });
        commands.extend(history_ui(
            ui,
            state.history.as_ref(),
            state.connection.events_table(),
            state.now,
            &state.masking,
        ));
        return commands;
    }
    let Some(selection) = &state.selection else {
        ui.add_space(12.0);
        ui.label(RichText::new("Select a session in the table to see its data.").weak());
        return commands;
    };
    let session_id = selection.session_id;
    ui.horizontal(|ui| {
        ui.heading("Session");
        ui.label(RichText::new(session_id.to_string()).monospace());
        if ui
            .small_button("📋")
            .on_hover_text("Copy the session id")
            .clicked()
        {
            commands.push(Command::Copy(session_id.to_string()));
        }
    });
    ui.horizontal(|ui| {
        for (view, name) in [
            (DetailView::Data, "Details"),
            (DetailView::History, "History"),
        ] {
            if ui
                .selectable_label(state.detail_view == view, RichText::new(name).strong())
                .clicked()
            {
                commands.push(Command::ShowDetail(view));
            }
        }
    });
    ui.separator();
    if state.detail_view == DetailView::History {
        commands.extend(history_ui(
            ui,
            state.history.as_ref(),
            state.connection.events_table(),
            state.now,
            &state.masking,
        ));
        return commands;
    }
    let refusal = write_refusal(&state.connection);
    let session = match &selection.loaded {
        Loaded::Loading => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Loading…");
            });
            return commands;
        }
        Loaded::Failed(message) => {
            ui.label(
                RichText::new(format!("✖ Could not load this session: {message}"))
                    .color(ui.visuals().error_fg_color),
            );
            ui.label("⟳ Refresh (F5) tries again.");
            return commands;
        }
        Loaded::Missing => {
            ui.label(
                RichText::new("This session no longer exists (deleted or purged).")
                    .color(ui.visuals().warn_fg_color),
            );
            return commands;
        }
        Loaded::Corrupt(reason) => {
            ui.label(
                RichText::new(format!("⚠ Corrupt row: {reason}"))
                    .color(ui.visuals().error_fg_color),
            );
            ui.label("Its data cannot be shown or edited; it can still be expired or deleted.");
            let user_id = selection.user_id.clone();
            actions_ui(
                ui,
                &mut state.extend_minutes,
                user_id.as_deref(),
                refusal,
                &mut commands,
            );
            return commands;
        }
        Loaded::Session(session) => session.clone(),
    };
    metadata_ui(ui, &session, state);
    actions_ui(
        ui,
        &mut state.extend_minutes,
        session.user_id.as_deref(),
        refusal,
        &mut commands,
    );
    ui.separator();
    if let Some(conflict) = &state.conflict {
        conflict_ui(ui, conflict, refusal, &mut commands);
        return commands;
    }
    // The tree gets at most ~40 % of the height and scrolls on its own, so the
    // editor's Save bar stays on screen however large the data is.
    let tree_height = (ui.available_height() * 0.4).clamp(120.0, 320.0);
    let masking_note = if state.masking.enabled {
        "secret values masked"
    } else {
        "masking off"
    };
    egui::CollapsingHeader::new(RichText::new("Data").strong())
        .id_salt("data-tree")
        .default_open(true)
        .show(ui, |ui| {
            ui.weak(masking_note);
            egui::ScrollArea::vertical()
                .id_salt("data-tree-scroll")
                .max_height(tree_height)
                .auto_shrink([false, true])
                .show(ui, |ui| {
                    commands.extend(json_tree_ui(
                        ui,
                        &session.data,
                        &state.masking,
                        &state.revealed,
                    ));
                });
        });
    ui.add_space(6.0);
    if let Some(editor) = &mut state.editor {
        editor_ui(ui, editor, refusal, &mut commands);
    }
    commands
}

fn metadata_ui(ui: &mut egui::Ui, session: &Session, state: &AppState) {
    let now = state.now;
    let devices = state.connection.device_columns();
    egui::Grid::new("session-metadata")
        .num_columns(2)
        .spacing([12.0, 2.0])
        .show(ui, |ui| {
            ui.weak("User");
            ui.label(session.user_id.as_deref().unwrap_or("anonymous"));
            ui.end_row();
            ui.weak("Version");
            ui.label(session.version.to_string());
            ui.end_row();
            ui.weak("Created");
            ui.label(format!(
                "{} ({})",
                relative_time(session.created_at, now),
                timestamp(session.created_at)
            ));
            ui.end_row();
            ui.weak("Updated");
            ui.label(format!(
                "{} ({})",
                relative_time(session.updated_at, now),
                timestamp(session.updated_at)
            ));
            ui.end_row();
            ui.weak("Expires");
            let expiry = relative_expiry(session.expires_at, now);
            let color = if session.expires_at > now {
                Color32::from_rgb(90, 190, 110)
            } else {
                ui.visuals().warn_fg_color
            };
            ui.label(
                RichText::new(format!("{expiry} ({})", timestamp(session.expires_at))).color(color),
            );
            ui.end_row();
            if devices {
                ui.weak("Last seen");
                match session.last_seen_at {
                    Some(at) => ui.label(format!("{} ({})", relative_time(at, now), timestamp(at))),
                    None => ui.weak("not recorded"),
                };
                ui.end_row();
                ui.weak("IP address");
                match &session.ip_address {
                    Some(ip) => ui.label(RichText::new(ip).monospace()),
                    None => ui.weak("not recorded"),
                };
                ui.end_row();
                ui.weak("Browser");
                match &session.user_agent {
                    Some(agent) => ui
                        .label(shared_model::browser_label(Some(agent)))
                        .on_hover_text(agent),
                    None => ui.weak("not recorded"),
                };
                ui.end_row();
                ui.weak("Remember me");
                match session.timeout_seconds {
                    Some(seconds) => {
                        ui.label(format!("yes: idle timeout {}", short_duration(seconds)))
                    }
                    None => ui.label("no: the app's idle timeout"),
                };
                ui.end_row();
            }
            ui.weak("Size");
            ui.label(byte_size(session.data_size()));
            ui.end_row();
        });
}

fn actions_ui(
    ui: &mut egui::Ui,
    extend_minutes: &mut u32,
    user_id: Option<&str>,
    refusal: Option<&'static str>,
    commands: &mut Vec<Command>,
) {
    let writable = refusal.is_none();
    let why = refusal.unwrap_or_default();
    ui.horizontal_wrapped(|ui| {
        if ui
            .add_enabled(writable, egui::Button::new("⏹ Expire now"))
            .on_hover_text(expire_help())
            .on_disabled_hover_text(why)
            .clicked()
        {
            commands.push(Command::SetExpiry(ExpiryChange::ExpireNow));
        }
        let label = ui.label("by");
        if ui
            .add_enabled(writable, egui::Button::new("⏩ Extend"))
            .on_hover_text(EXTEND_HELP)
            .on_disabled_hover_text(why)
            .clicked()
        {
            commands.push(Command::SetExpiry(ExpiryChange::ExtendMinutes(
                *extend_minutes,
            )));
        }
        ui.add_enabled(
            writable,
            egui::DragValue::new(extend_minutes)
                .range(1..=60 * 24 * 30)
                .suffix(" min"),
        )
        .labelled_by(label.id);
        if ui
            .add_enabled(writable, egui::Button::new("🗑 Delete…"))
            .on_disabled_hover_text(why)
            .clicked()
        {
            commands.push(Command::AskDeleteSession);
        }
        if let Some(user_id) = user_id {
            if ui
                .add_enabled(
                    writable,
                    egui::Button::new(format!("🗑 Delete all of {user_id}…")),
                )
                .on_hover_text("Log this user out everywhere")
                .on_disabled_hover_text(why)
                .clicked()
            {
                commands.push(Command::AskDeleteUser(user_id.to_owned()));
            }
        }
    });
    ui.label(RichText::new(format!("ℹ {EXTEND_HELP}")).weak());
}

/// Lays the editor's text out in monospace, with the line the JSON error is on
/// (1-based) on a red background.
fn highlight_error_line(
    ui: &egui::Ui,
    text: &str,
    error_line: Option<usize>,
    wrap_width: f32,
) -> std::sync::Arc<egui::Galley> {
    let font = egui::TextStyle::Monospace.resolve(ui.style());
    let color = ui.visuals().text_color();
    let error_background = ui.visuals().error_fg_color.gamma_multiply(0.3);
    let mut job = egui::text::LayoutJob::default();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let mut format = egui::TextFormat::simple(font.clone(), color);
        if error_line == Some(index + 1) {
            format.background = error_background;
        }
        job.append(line, 0.0, format);
    }
    job.wrap.max_width = wrap_width;
    ui.fonts_mut(|fonts| fonts.layout_job(job))
}

fn editor_ui(
    ui: &mut egui::Ui,
    editor: &mut Editor,
    refusal: Option<&'static str>,
    commands: &mut Vec<Command>,
) {
    let read_only = refusal.is_some();
    let mut label = None;
    ui.horizontal(|ui| {
        label = Some(ui.strong("Raw JSON").id);
        let can_save = editor.is_dirty()
            && editor.error.is_none()
            && editor.refusal.is_none()
            && !editor.saving
            && !read_only;
        let save = ui
            .add_enabled(can_save, egui::Button::new("💾 Save"))
            .on_hover_text(
                "Save the edited data (refused if the session changed meanwhile); \
                 values left as •••• keep their stored value",
            );
        let save = match refusal {
            Some(why) => save.on_disabled_hover_text(why),
            None => save,
        };
        if save.clicked() {
            commands.push(Command::Save);
        }
        if ui
            .add_enabled(editor.is_dirty(), egui::Button::new("↺ Revert"))
            .on_hover_text("Drop the edit (Esc)")
            .clicked()
        {
            commands.push(Command::CancelEdit);
        }
        if editor.saving {
            ui.spinner();
        }
        if editor.error.is_none() && editor.refusal.is_none() {
            if editor.is_dirty() {
                ui.label(
                    RichText::new("✔ Valid JSON object, not saved")
                        .color(Color32::from_rgb(90, 190, 110)),
                );
            } else {
                ui.weak(format!("Version {}", editor.base_version));
            }
        }
    });
    if let Some(error) = &editor.error {
        ui.label(RichText::new(format!("✖ Invalid: {error}")).color(ui.visuals().error_fg_color));
    }
    if let Some(refusal) = &editor.refusal {
        ui.label(
            RichText::new(format!("✖ Not saved: {refusal}")).color(ui.visuals().error_fg_color),
        );
    }
    let error_line = editor.error_line;
    let mut layouter = |ui: &egui::Ui, text: &dyn egui::TextBuffer, wrap_width: f32| {
        highlight_error_line(ui, text.as_str(), error_line, wrap_width)
    };
    egui::ScrollArea::vertical()
        .id_salt("raw-json-scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let mut response = ui.add(
                egui::TextEdit::multiline(&mut editor.text)
                    .id_salt("raw-json-editor")
                    .code_editor()
                    .desired_rows(12)
                    .desired_width(f32::INFINITY)
                    .interactive(!read_only)
                    .layouter(&mut layouter),
            );
            if let Some(label) = label {
                response = response.labelled_by(label);
            }
            if response.changed() {
                editor.validate();
            }
        });
}

fn conflict_ui(
    ui: &mut egui::Ui,
    conflict: &ConflictState,
    refusal: Option<&'static str>,
    commands: &mut Vec<Command>,
) {
    ui.label(
        RichText::new("⚠ Conflict: this session changed while you were editing it")
            .strong()
            .color(ui.visuals().warn_fg_color),
    );
    ui.label(format!(
        "You edited version {}; the database now has version {}. Nothing was saved.",
        conflict.expected_version, conflict.current.version
    ));
    if let Some(error) = &conflict.error {
        ui.label(
            RichText::new(format!("✖ Not overwritten: {error}")).color(ui.visuals().error_fg_color),
        );
    }
    ui.horizontal(|ui| {
        if ui
            .button("↺ Reload")
            .on_hover_text("Drop your edit and show the current version")
            .clicked()
        {
            commands.push(Command::ReloadAfterConflict);
        }
        if ui
            .add_enabled(
                refusal.is_none(),
                egui::Button::new("⚠ Overwrite with mine"),
            )
            .on_hover_text("Replace the current version with your edit")
            .on_disabled_hover_text(refusal.unwrap_or_default())
            .clicked()
        {
            commands.push(Command::OverwriteAfterConflict);
        }
    });
    ui.columns(2, |columns| {
        let [mine, current] = columns else {
            return;
        };
        mine.strong("Your version");
        show_json_text(mine, "conflict-mine", &conflict.mine_text);
        current.strong(format!("Current (version {})", conflict.current.version));
        show_json_text(current, "conflict-current", &conflict.current_text);
    });
}

fn show_json_text(ui: &mut egui::Ui, id: &str, text: &str) {
    egui::ScrollArea::vertical()
        .id_salt(id)
        .max_height(360.0)
        .show(ui, |ui| {
            ui.add(egui::Label::new(RichText::new(text).monospace()).wrap());
        });
}
